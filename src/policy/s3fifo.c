/*
 * s3fifo.c - S3-FIFO (Yang et al., "FIFO queues are all you need for cache
 * eviction", SOSP 2023): three static FIFO queues.
 *
 * Lists (p->l[], p->gl[0]; head = oldest end):
 *   S  small FIFO: new items (about 10% of the resident items)
 *   M  main FIFO, a CLOCK with a 2-bit counter per item
 *   G  ghost FIFO: ids of items evicted from S (at most 90% of the
 *      resident items, in items)
 * Every item has freq (0..3): its hits since it was placed, saturating at 3,
 * decremented when M's hand passes it.
 *
 * Operations (n = resident items at the time):
 *   insert x, id in G: x leaves G, enters M's tail, freq 0
 *   insert x otherwise: x enters S's tail, freq 0
 *   victim: repeat:
 *     if S is not empty and (10 |S| >= n, or M is empty): look at S's head:
 *       freq >= 1 -> to M's tail with freq 0 (it was used while in S);
 *       else it is the victim (evicted from S: its id will go to G);
 *     else look at M's head: freq >= 1 -> freq - 1, to M's tail; else it
 *       is the victim (evicted from M: no ghost).
 *   evict x: if x is in S and has an id, x's id joins G's tail, G first
 *     dropping its oldest entries so that |G| <= floor(9n/10) after (n
 *     counts x; with n < 2 nothing is remembered).
 *   remove x (delete, move, set aside): no ghost.
 * This is libCacheSim's S3FIFO.c (move-to-main threshold 1, small queue
 * 10%, ghost 90%, main a 2-bit clock), except that sizes are in items and
 * the queues have no fixed capacities: the engine asks for one victim at a
 * time, so "evict from S while S holds >= 10% of the items, else from M"
 * replaces "S is full / M is full".
 *
 * Lazy hits: the hit path only raises nhits (no lock).  q[slot].seen is the
 * nhits last folded into freq; when the hand reaches an item, freq becomes
 * min(3, freq + nhits - seen) and seen = nhits.  Since hits only add to
 * freq (saturating) until the hand looks, folding them in at that moment
 * gives exactly the freq the textbook's per-hit increments would: S3-FIFO
 * needs no deviation for lock-free hits.  (A put that shares an existing
 * block raises atime but not nhits; it is not counted as a hit here.)
 *
 * The victim loop is bounded by 5n + 2 looks against readers hitting items
 * concurrently; without concurrent hits it ends within that bound anyway
 * (each S item is moved at most once, each M item at most 3 times before
 * its freq is 0), and it is O(1) amortised: every look that does not end
 * the loop uses up a hit or a move out of S.
 */
#include "policy/policy.h"

enum { S = 0, M = 1, G = 0 };

static uint32_t hits_of(const pol_item *it) {
  return atomic_load_explicit(&it->nhits, memory_order_relaxed);
}

static void s3_insert(policy *p, uint32_t slot, uint32_t ghost) {
  pol_qent *e = &p->q[slot];
  e->seen = hits_of(e->it);
  e->freq = 0;
  if (ghost != POL_NIL) {
    pq_ghost_del(p, ghost);
    pq_push(p->q, &p->l[M], M, slot);
  } else {
    pq_push(p->q, &p->l[S], S, slot);
  }
}

/* Fold the hits since the last look into freq. */
static void fold(pol_qent *e) {
  uint32_t h = hits_of(e->it);
  uint64_t f = e->freq + (uint64_t)(uint32_t)(h - (uint32_t)e->seen);
  e->freq = (uint8_t)(f > 3 ? 3 : f);
  e->seen = h;
}

static uint32_t s3_victim(policy *p) {
  size_t budget = 5 * p->n + 2;
  for (;;) {
    pol_list *s = &p->l[S], *m = &p->l[M];
    int from_s = s->len > 0 && ((size_t)s->len * 10 >= p->n || !m->len);
    uint32_t i = from_s ? s->head : m->head;
    pol_qent *e = &p->q[i];
    fold(e);
    if (e->freq == 0 || --budget == 0) return i;
    if (from_s)
      e->freq = 0;
    else
      e->freq--;
    pq_move(p, i, M);
  }
}

static void s3_evict(policy *p, uint32_t slot) {
  pol_item *it = p->q[slot].it;
  if (p->q[slot].list != S || it->id == 0) return;
  uint32_t old = pq_ghost_find(p, it->id);
  if (old != POL_NIL) pq_ghost_del(p, old);
  size_t bound = 9 * p->n / 10; /* n counts x */
  while (p->gl[G].len && p->gl[G].len + 1 > bound)
    pq_ghost_del(p, p->gl[G].head);
  if (bound >= 1) pq_ghost_add(p, G, it->id);
}

/* The rank of an item outside the queues (disk-tier reclaim): the 2-bit
 * frequency, then recency. */
static void s3_rank(const pol_item *it, uint64_t k[2]) {
  uint32_t h = hits_of(it);
  k[0] = h > 3 ? 3 : h;
  k[1] = atomic_load_explicit(&it->atime, memory_order_relaxed);
}

const struct policy_ops policy_s3fifo_ops = {.name = "s3fifo",
                                             .key = s3_rank,
                                             .qinsert = s3_insert,
                                             .qvictim = s3_victim,
                                             .qevict = s3_evict};
