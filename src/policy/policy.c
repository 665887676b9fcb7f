/*
 * policy.c - the lazy 4-ary min-heap shared by the heap-ordered policies,
 * and the policy registry.
 *
 * Each item's ordering key (k[0], k[1]) comes from its policy's key()
 * function.  The heap stores, per item, the key as last computed, inline in
 * the heap slot, so sifting compares keys without loading the items (moving
 * an item still writes its heap index).
 * Readers raise atime/nhits without any lock, so an item's true key can be
 * larger than the stored one, never smaller (key() is non-decreasing in
 * atime and nhits; every other change goes through policy_update, which
 * re-sifts in both directions).  policy_victim therefore looks at the top:
 * if its true key equals the stored one it is the true minimum (every other
 * item's true key >= its stored key >= the top's); otherwise it stores the
 * true key, sifts the item down and looks again.  Victim selection is exact
 * while the hit path stays lock-free.
 *
 * Not thread-safe: the caller serialises all calls (engine memory lock).
 */
#include "policy/policy.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

extern const struct policy_ops policy_lru_ops;
extern const struct policy_ops policy_semantic_ops;

static const struct policy_ops *const all_policies[] = {
    &policy_lru_ops,
    &policy_semantic_ops,
};

const char *const policy_names[] = {"lru", "semantic", NULL};

const struct policy_ops *policy_find(const char *name) {
  for (size_t i = 0; i < sizeof all_policies / sizeof all_policies[0]; i++)
    if (strcmp(all_policies[i]->name, name) == 0) return all_policies[i];
  return NULL;
}

void policy_init(policy *p, const struct policy_ops *ops) {
  memset(p, 0, sizeof *p);
  p->ops = ops;
}

void policy_fini(policy *p) {
  for (size_t i = 0; i < p->n; i++) p->heap[i].it->hidx = POL_NOT_IN;
  free(p->heap);
  p->heap = NULL;
  p->n = p->cap = 0;
}

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

int policy_reserve(policy *p, size_t n) {
  if (n <= p->cap) return 0;
  size_t ncap = p->cap ? p->cap : 64;
  while (ncap < n) ncap *= 2;
  pol_hent *nh = realloc(p->heap, ncap * sizeof *nh);
  if (!nh) return -ENOMEM;
  p->heap = nh;
  p->cap = ncap;
  return 0;
}

int policy_insert(policy *p, pol_item *it) {
  if (p->n == p->cap && policy_reserve(p, p->n + 1) < 0) return -ENOMEM;
  pol_hent e = {.it = it};
  p->ops->key(it, e.k);
  heap_set(p, p->n++, e);
  sift_up(p, p->n - 1);
  return 0;
}

void policy_remove(policy *p, pol_item *it) {
  size_t i = it->hidx;
  it->hidx = POL_NOT_IN;
  if (--p->n == i) return;
  pol_hent moved = p->heap[p->n];
  heap_set(p, i, moved);
  sift_up(p, i);
  sift_down(p, moved.it->hidx);
}

void policy_update(policy *p, pol_item *it) {
  p->ops->key(it, p->heap[it->hidx].k);
  sift_up(p, it->hidx);
  sift_down(p, it->hidx);
}

pol_item *policy_victim(policy *p) {
  while (p->n > 0) {
    pol_hent *top = &p->heap[0];
    uint64_t k[2];
    p->ops->key(top->it, k);
    if (k[0] == top->k[0] && k[1] == top->k[1]) return top->it;
    top->k[0] = k[0];
    top->k[1] = k[1];
    sift_down(p, 0);
  }
  return NULL;
}
