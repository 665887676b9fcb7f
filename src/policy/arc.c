/*
 * arc.c - adaptive replacement (ARC, Megiddo & Modha, FAST 2003), done as
 * CAR - "Clock with Adaptive Replacement" (Bansal & Modha, FAST 2004) -
 * which is ARC with CLOCK reference bits in place of moves on every hit,
 * so that a hit needs no lock.
 *
 * Lists (p->l[], p->gl[]; head = oldest end):
 *   T1  resident items seen once (since they entered the cache)
 *   T2  resident items seen at least twice
 *   B1  ghosts: ids of items evicted from T1
 *   B2  ghosts: ids of items evicted from T2
 *   target (p in the papers): the size T1 should have, in items.
 * The reference bit of a resident item is lazy: "referenced" means its atime
 * differs from q[slot].seen, the atime when the policy last placed or
 * examined it.  Clearing the bit is seen = atime.  Hits therefore cost the
 * engine one relaxed store, as for every policy.
 *
 * Operations (CAR, with c = the number of resident items at the time, since
 * the engine's capacity is bytes and the policy counts items):
 *   insert x, id in B1: target = min(c, target + max(1, |B2| / |B1|)),
 *                       x leaves B1, enters T2's tail, unreferenced
 *   insert x, id in B2: target = max(0, target - max(1, |B1| / |B2|)),
 *                       x leaves B2, enters T2's tail, unreferenced
 *   insert x otherwise: x enters T1's tail, unreferenced
 *   victim:   repeat: if |T1| >= max(1, target) (or T2 is empty) look at
 *             T1's head: referenced -> clear, move to T2's tail; else it is
 *             the victim.  Otherwise look at T2's head: referenced -> clear,
 *             move to T2's tail; else it is the victim.
 *   evict x (the victim; c counts x): its id goes to the tail of B1 (x
 *             from T1) or B2 (x from T2), after the directory is trimmed
 *             to ARC's bounds as they will stand once the incoming item
 *             (that x makes room for) is in T1:
 *               |T1| + |B1| <= c: drop B1's oldest; if that is not enough
 *                 (T1 alone fills the cache), x is not remembered - ARC
 *                 case IV.A, "delete T1's LRU page" without a ghost;
 *               |B1| + |B2| <= c (|T1|+|T2|+|B1|+|B2| <= 2c): drop B2's
 *                 oldest (B1's when B2 is empty) - ARC case IV.B.
 *             So ghost memory stays <= c <= the reserved capacity.
 *   remove x (delete, move, set aside): no ghost.
 * Ratios are integer divisions (floor), as CAR's pseudocode is usually
 * implemented.
 *
 * Deviations from textbook ARC, all from doing it lazily as CAR:
 *   - a hit does not move an item to T2's MRU end at once: the item is
 *     moved when the clock hand reaches it (T1 -> T2's tail; in T2, to the
 *     tail again), which is CAR exactly; so recency inside T1 and T2 is
 *     CLOCK's approximation of LRU (second chance), not exact LRU.
 *   - ARC adapts on a ghost hit at the moment of the request and then runs
 *     REPLACE; here the engine evicts first (victim) and inserts after, so
 *     the adaptation of target happens at insert, after the eviction that
 *     made room for the item; the eviction uses the older target.  REPLACE's
 *     tie rule "x in B2 and |T1| == p" is lost for the same reason.
 *   - c is not a constant but the number of resident items: it is taken at
 *     each insert (for target's bound) and each eviction (for the ghost
 *     bounds).  When items are deleted, target may exceed c for a while:
 *     victims then come from T2 (from T1 once T2 is empty).
 *   - ARC trims the ghost directory only when the request is a complete
 *     miss; the policy cannot know at eviction time whether the incoming
 *     item will be a ghost hit, so it trims at every eviction.
 *   - the engine's put path raises atime before inserting, so a new item
 *     starts unreferenced; any atime raised after insert counts as a hit.
 *   - the victim loop is bounded by 2n + 2 looks: readers may raise atime
 *     concurrently (no lock), and without a bound a reader hitting every
 *     item faster than the hand sweeps could keep it going.  When the bound
 *     is reached the item under the hand is named even if referenced.
 *     Without concurrent hits the loop ends after at most n + 1 looks
 *     (every look either names the victim or clears one reference bit, and
 *     a cleared bit stays clear).
 */
#include "policy/policy.h"

enum { T1 = 0, T2 = 1, B1 = 0, B2 = 1 };

static uint64_t atime_of(const pol_item *it) {
  return atomic_load_explicit(&it->atime, memory_order_relaxed);
}

static void arc_insert(policy *p, uint32_t slot, uint32_t ghost) {
  pol_qent *e = &p->q[slot];
  e->seen = atime_of(e->it);
  if (ghost == POL_NIL) {
    pq_push(p->q, &p->l[T1], T1, slot);
    return;
  }
  uint64_t c = p->n, b1 = p->gl[B1].len, b2 = p->gl[B2].len;
  if (p->g[ghost].list == B1) {
    uint64_t d = b2 / b1 > 1 ? b2 / b1 : 1;
    p->target = p->target + d < c ? p->target + d : c;
  } else {
    uint64_t d = b1 / b2 > 1 ? b1 / b2 : 1;
    p->target = p->target > d ? p->target - d : 0;
  }
  pq_ghost_del(p, ghost);
  pq_push(p->q, &p->l[T2], T2, slot);
}

static uint32_t arc_victim(policy *p) {
  size_t budget = 2 * p->n + 2;
  for (;;) {
    uint64_t t = p->target ? p->target : 1;
    int from_t1 = p->l[T1].len > 0 && (p->l[T1].len >= t || !p->l[T2].len);
    uint32_t i = p->l[from_t1 ? T1 : T2].head;
    pol_qent *e = &p->q[i];
    uint64_t a = atime_of(e->it);
    if (a == e->seen || --budget == 0) return i;
    e->seen = a; /* clear the reference bit; promote or give a 2nd chance */
    pq_move(p, i, T2);
  }
}

static void drop_oldest(policy *p, int lid) {
  pq_ghost_del(p, p->gl[lid].head);
}

static void arc_evict(policy *p, uint32_t slot) {
  pol_item *it = p->q[slot].it;
  if (it->id == 0) return;
  uint32_t old = pq_ghost_find(p, it->id);
  if (old != POL_NIL) pq_ghost_del(p, old); /* the same id twice */
  size_t c = p->n; /* resident items, x included */
  int lid = p->q[slot].list == T1 ? B1 : B2;
  /* |T1| + |B1| <= c once the incoming item is in T1 (ARC case IV.A) */
  size_t t1_next = p->l[T1].len - (lid == B1) + 1, add1 = lid == B1;
  while (p->gl[B1].len && t1_next + p->gl[B1].len + add1 > c)
    drop_oldest(p, B1);
  if (t1_next + add1 > c) return; /* T1 fills the cache: x is forgotten */
  /* |B1| + |B2| <= c (ARC case IV.B: |T1|+|T2|+|B1|+|B2| <= 2c) */
  while (p->gl[B1].len + p->gl[B2].len + 1 > c)
    drop_oldest(p, p->gl[B2].len ? B2 : B1);
  pq_ghost_add(p, (uint8_t)lid, it->id);
}

/* The rank of an item outside the lists (disk-tier reclaim): items hit
 * since insertion (T2 material) above those that were not, then recency. */
static void arc_rank(const pol_item *it, uint64_t k[2]) {
  k[0] = atomic_load_explicit(&it->nhits, memory_order_relaxed) > 0;
  k[1] = atime_of(it);
}

const struct policy_ops policy_arc_ops = {.name = "arc",
                                          .key = arc_rank,
                                          .qinsert = arc_insert,
                                          .qvictim = arc_victim,
                                          .qevict = arc_evict};
