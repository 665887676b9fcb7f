/*
 * policy.c - the registry, the dispatch of the policy interface, the lazy
 * 4-ary min-heap shared by the heap-ordered policies (lru, semantic, lfu),
 * and the lists and ghost directory shared by the queue policies (arc,
 * s3fifo).
 *
 * Heap policies.  Each item's ordering key (k[0], k[1]) comes from its
 * policy's lazy_key() function, or key() without one.  The heap stores, per item, the key as last
 * computed, inline in the heap slot, so sifting compares keys without
 * loading the items (moving an item still writes its heap index).
 * Readers raise atime/nhits without any lock, so an item's true key can be
 * larger than the stored one, never smaller (key() does not decrease when
 * only atime and nhits change; every other change goes through
 * policy_update, which re-sifts in both directions).  policy_victim
 * therefore looks at the top: if its true key equals the stored one it is
 * the true minimum (every other item's true key >= its stored key >= the
 * top's); otherwise it stores the true key, sifts the item down and looks
 * again.  Victim selection is exact while the hit path stays lock-free.
 *
 * Queue policies.  Resident items sit in q[0..n), dense (a removal moves
 * the last slot into the hole, so policy_at is q[i]), each linked into one
 * of two lists l[] by slot index; it->hidx is the slot.  Ghost entries (ids
 * of evicted items) sit in g[0..ng), dense the same way, linked into gl[],
 * and are found by id through gh, an open-addressing table (linear probing,
 * backward-shift deletion) of entry index + 1, at most half full.  All
 * three arrays are sized by policy_reserve (cap slots, cap ghost entries,
 * 2 * cap rounded up to a power of two hash slots): inserts, evictions and
 * ghost updates never allocate.  The policies keep ng <= ghost_mult *
 * number of items at the last eviction <= gcap (= ghost_mult * cap; a heap
 * policy with qevict, semantic, gets the ghost directory without q).
 *
 * Not thread-safe: the caller serialises all calls (engine memory lock).
 */
#include "policy/policy.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

extern const struct policy_ops policy_lru_ops;
extern const struct policy_ops policy_semantic_ops;
extern const struct policy_ops policy_lfu_ops;
extern const struct policy_ops policy_arc_ops;
extern const struct policy_ops policy_s3fifo_ops;

static const struct policy_ops *const all_policies[] = {
    &policy_lru_ops, &policy_arc_ops,      &policy_s3fifo_ops,
    &policy_lfu_ops, &policy_semantic_ops,
};

const char *const policy_names[] = {"lru", "arc", "s3fifo", "lfu", "semantic",
                                    NULL};

const struct policy_ops *policy_find(const char *name) {
  for (size_t i = 0; i < sizeof all_policies / sizeof all_policies[0]; i++)
    if (strcmp(all_policies[i]->name, name) == 0) return all_policies[i];
  return NULL;
}

static int is_heap(const policy *p) { return p->ops->qvictim == NULL; }

static void heap_key(const policy *p, const pol_item *it, const uint64_t *old,
                     uint64_t k[2]) {
  if (p->ops->lazy_key)
    p->ops->lazy_key(p, it, old, k);
  else
    p->ops->key(it, k);
}

void policy_init(policy *p, const struct policy_ops *ops) {
  memset(p, 0, sizeof *p);
  p->ops = ops;
  for (int i = 0; i < 2; i++) {
    p->l[i].head = p->l[i].tail = POL_NIL;
    p->gl[i].head = p->gl[i].tail = POL_NIL;
  }
}

void policy_fini(policy *p) {
  for (size_t i = 0; i < p->n; i++) policy_at(p, i)->hidx = POL_NOT_IN;
  free(p->heap);
  free(p->q);
  free(p->g);
  free(p->gh);
  policy_init(p, p->ops);
}

pol_item *policy_at(const policy *p, size_t i) {
  return is_heap(p) ? p->heap[i].it : p->q[i].it;
}

/* ---- the lazy heap ---------------------------------------------------------- */

static int key_lt(const uint64_t a[2], const uint64_t b[2]) {
  return a[0] < b[0] || (a[0] == b[0] && a[1] < b[1]);
}

static void heap_set(policy *p, size_t i, pol_hent e) {
  p->heap[i] = e;
  e.it->hidx = (uint32_t)i;
}

/* A 4-ary heap: half the depth of a binary one, so a sift moves (and
 * writes the hidx of) half as many items; the four children's keys sit
 * side by side in the heap array. */
#define ARITY 4

static void sift_up(policy *p, size_t i) {
  pol_hent e = p->heap[i];
  while (i > 0) {
    size_t parent = (i - 1) / ARITY;
    if (!key_lt(e.k, p->heap[parent].k)) break;
    heap_set(p, i, p->heap[parent]);
    i = parent;
  }
  heap_set(p, i, e);
}

static void sift_down(policy *p, size_t i) {
  pol_hent e = p->heap[i];
  for (;;) {
    size_t first = ARITY * i + 1, m = i;
    const uint64_t *mk = e.k;
    for (size_t ch = first; ch < first + ARITY && ch < p->n; ch++)
      if (key_lt(p->heap[ch].k, mk)) m = ch, mk = p->heap[ch].k;
    if (m == i) break;
    heap_set(p, i, p->heap[m]);
    i = m;
  }
  heap_set(p, i, e);
}

static void heap_remove(policy *p, pol_item *it) {
  size_t i = it->hidx;
  it->hidx = POL_NOT_IN;
  if (--p->n == i) return;
  pol_hent moved = p->heap[p->n];
  heap_set(p, i, moved);
  sift_up(p, i);
  sift_down(p, moved.it->hidx);
}

static pol_item *heap_victim(policy *p) {
  while (p->n > 0) {
    pol_hent *top = &p->heap[0];
    uint64_t k[2];
    heap_key(p, top->it, top->k, k);
    if (k[0] == top->k[0] && k[1] == top->k[1]) {
      p->last_key[0] = k[0];
      p->last_key[1] = k[1];
      return top->it;
    }
    top->k[0] = k[0];
    top->k[1] = k[1];
    sift_down(p, 0);
  }
  return NULL;
}

/* ---- lists and the ghost directory ----------------------------------------- */

void pq_push(pol_qent *a, pol_list *l, uint8_t lid, uint32_t i) {
  a[i].list = lid;
  a[i].prev = l->tail;
  a[i].next = POL_NIL;
  if (l->tail != POL_NIL)
    a[l->tail].next = i;
  else
    l->head = i;
  l->tail = i;
  l->len++;
}

void pq_unlink(pol_qent *a, pol_list *l, uint32_t i) {
  if (a[i].prev != POL_NIL)
    a[a[i].prev].next = a[i].next;
  else
    l->head = a[i].next;
  if (a[i].next != POL_NIL)
    a[a[i].next].prev = a[i].prev;
  else
    l->tail = a[i].prev;
  l->len--;
}

/* Entry `from` of a (linked into l) now lives at `to`: fix its neighbours. */
static void pq_relink(pol_qent *a, pol_list *l, uint32_t from, uint32_t to) {
  a[to] = a[from];
  if (a[to].prev != POL_NIL)
    a[a[to].prev].next = to;
  else
    l->head = to;
  if (a[to].next != POL_NIL)
    a[a[to].next].prev = to;
  else
    l->tail = to;
}

void pq_move(policy *p, uint32_t i, uint8_t lid) {
  pq_unlink(p->q, &p->l[p->q[i].list], i);
  pq_push(p->q, &p->l[lid], lid, i);
}

static size_t gh_home(const policy *p, uint64_t id) {
  id ^= id >> 33; /* ids may be hashes or counters: mix */
  id *= UINT64_C(0xff51afd7ed558ccd);
  id ^= id >> 33;
  return (size_t)id & p->gmask;
}

uint32_t pq_ghost_find(const policy *p, uint64_t id) {
  if (!p->gh || id == 0) return POL_NIL;
  for (size_t s = gh_home(p, id);; s = (s + 1) & p->gmask) {
    uint32_t e = p->gh[s];
    if (e == 0) return POL_NIL;
    if (p->g[e - 1].id == id) return e - 1;
  }
}

/* The hash slot that holds entry gi. */
static size_t gh_slot(const policy *p, uint32_t gi) {
  size_t s = gh_home(p, p->g[gi].id);
  while (p->gh[s] != gi + 1) s = (s + 1) & p->gmask;
  return s;
}

static void gh_put(policy *p, uint32_t gi) {
  size_t s = gh_home(p, p->g[gi].id);
  while (p->gh[s]) s = (s + 1) & p->gmask;
  p->gh[s] = gi + 1;
}

void pq_ghost_del(policy *p, uint32_t gi) {
  /* out of the hash: backward-shift deletion */
  size_t hole = gh_slot(p, gi);
  for (size_t s = (hole + 1) & p->gmask; p->gh[s]; s = (s + 1) & p->gmask) {
    size_t home = gh_home(p, p->g[p->gh[s] - 1].id);
    /* the entry at s may move to the hole if its home is not in (hole, s] */
    if (((s - home) & p->gmask) >= ((s - hole) & p->gmask)) {
      p->gh[hole] = p->gh[s];
      hole = s;
    }
  }
  p->gh[hole] = 0;
  /* out of its list, and the last entry moves into its place */
  pq_unlink(p->g, &p->gl[p->g[gi].list], gi);
  uint32_t last = (uint32_t)--p->ng;
  if (gi != last) {
    p->gh[gh_slot(p, last)] = gi + 1;
    pq_relink(p->g, &p->gl[p->g[last].list], last, gi);
  }
}

void pq_ghost_add(policy *p, uint8_t lid, uint64_t id) {
  if (id == 0) return;
  uint32_t old = pq_ghost_find(p, id);
  if (old != POL_NIL) pq_ghost_del(p, old);
  uint32_t gi = (uint32_t)p->ng++;
  p->g[gi].id = id;
  p->g[gi].seen = 0;
  p->g[gi].freq = 0;
  pq_push(p->g, &p->gl[lid], lid, gi);
  gh_put(p, gi);
}

/* Drop queue slot i (linked), moving the last slot into its place. */
static void q_free(policy *p, uint32_t i) {
  p->q[i].it->hidx = POL_NOT_IN;
  pq_unlink(p->q, &p->l[p->q[i].list], i);
  uint32_t last = (uint32_t)--p->n;
  if (i != last) {
    pq_relink(p->q, &p->l[p->q[last].list], last, i);
    p->q[i].it->hidx = i;
  }
}

/* The ghost directory: cap entries and their hash (queue policies, and
 * heap policies that remember evicted ids: those with qevict). */
static int ghost_reserve(policy *p, size_t ncap) {
  ncap *= p->ops->ghost_mult ? p->ops->ghost_mult : 1;
  if (ncap >= POL_NIL) return -ENOMEM;
  size_t hsize = 1;
  while (hsize < 2 * ncap) hsize *= 2;
  uint32_t *gh = calloc(hsize, sizeof *gh);
  if (!gh) return -ENOMEM;
  /* a grown array that is not committed to (cap unchanged) is harmless */
  pol_qent *g = realloc(p->g, ncap * sizeof *g);
  if (!g) {
    free(gh);
    return -ENOMEM;
  }
  p->g = g;
  free(p->gh);
  p->gh = gh;
  p->gmask = hsize - 1;
  p->gcap = ncap;
  for (uint32_t gi = 0; gi < p->ng; gi++) gh_put(p, gi);
  return 0;
}

static int q_reserve(policy *p, size_t ncap) {
  if (ncap >= POL_NIL) return -ENOMEM;
  pol_qent *q = realloc(p->q, ncap * sizeof *q);
  if (!q) return -ENOMEM;
  p->q = q;
  return ghost_reserve(p, ncap);
}

/* ---- the interface ---------------------------------------------------------- */

int policy_reserve(policy *p, size_t n) {
  if (n <= p->cap) return 0;
  size_t ncap = p->cap ? p->cap : 64;
  while (ncap < n) ncap *= 2;
  if (is_heap(p)) {
    if (ncap >= POL_NIL) return -ENOMEM;
    pol_hent *nh = realloc(p->heap, ncap * sizeof *nh);
    if (!nh) return -ENOMEM;
    p->heap = nh;
    if (p->ops->qevict && ghost_reserve(p, ncap) < 0) return -ENOMEM;
  } else if (q_reserve(p, ncap) < 0) {
    return -ENOMEM;
  }
  p->cap = ncap;
  return 0;
}

int policy_insert(policy *p, pol_item *it) {
  if (p->n == p->cap && policy_reserve(p, p->n + 1) < 0) return -ENOMEM;
  if (is_heap(p)) {
    pol_hent e = {.it = it};
    heap_key(p, it, NULL, e.k);
    heap_set(p, p->n++, e);
    sift_up(p, p->n - 1);
    return 0;
  }
  uint32_t gi = pq_ghost_find(p, it->id);
  uint32_t slot = (uint32_t)p->n++;
  memset(&p->q[slot], 0, sizeof p->q[slot]);
  p->q[slot].it = it;
  it->hidx = slot;
  p->ops->qinsert(p, slot, gi);
  return 0;
}

void policy_remove(policy *p, pol_item *it) {
  if (is_heap(p))
    heap_remove(p, it);
  else
    q_free(p, it->hidx);
}

void policy_evict(policy *p, pol_item *it) {
  if (p->ops->qevict) p->ops->qevict(p, it->hidx);
  policy_remove(p, it);
}

void policy_update(policy *p, pol_item *it) {
  if (!is_heap(p)) return; /* arc and s3fifo read none of those fields */
  pol_hent *e = &p->heap[it->hidx];
  uint64_t k[2];
  heap_key(p, it, e->k, k);
  e->k[0] = k[0];
  e->k[1] = k[1];
  sift_up(p, it->hidx);
  sift_down(p, it->hidx);
}

pol_item *policy_victim(policy *p) {
  if (is_heap(p)) return heap_victim(p);
  if (p->n == 0) return NULL;
  return p->q[p->ops->qvictim(p)].it;
}
