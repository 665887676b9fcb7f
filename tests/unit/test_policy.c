/*
 * test_policy.c - the policy interface on its own (src/policy), without the
 * engine: hand-worked victim orders for lru and semantic, a randomised
 * check that the lazy heap always names the true minimum while access ticks
 * are raised behind its back (as the engine's lock-free hit path does), and,
 * for every policy of policy_names[], that policy_at walks exactly the
 * inserted items and that nothing is allocated within a reserve.
 * arc, s3fifo and lfu have their own files (test_policy_<name>.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "policy/policy.h"

static void item_init(pol_item *it, uint64_t atime) {
  memset(it, 0, sizeof *it);
  atomic_store(&it->atime, atime);
  it->refs = 1;
  it->hidx = POL_NOT_IN;
}

/* Pop victims until empty, writing their indices into order[]. */
static size_t drain(policy *p, pol_item *items, size_t *order) {
  size_t n = 0;
  pol_item *v;
  while ((v = policy_victim(p))) {
    order[n++] = (size_t)(v - items);
    policy_remove(p, v);
  }
  return n;
}

static void test_lookup(void **state) {
  (void)state;
  assert_non_null(policy_find("lru"));
  assert_non_null(policy_find("semantic"));
  assert_non_null(policy_find("arc"));
  assert_non_null(policy_find("s3fifo"));
  assert_non_null(policy_find("lfu"));
  assert_null(policy_find("nope"));
  for (int i = 0; policy_names[i]; i++)
    assert_non_null(policy_find(policy_names[i]));
}

static void test_lru_hand_worked(void **state) {
  (void)state;
  policy p;
  policy_init(&p, policy_find("lru"));
  pol_item it[5];
  for (int i = 0; i < 5; i++) {
    item_init(&it[i], (uint64_t)i + 1); /* inserted in order 0..4 */
    assert_int_equal(policy_insert(&p, &it[i]), 0);
  }
  /* accesses, as a reader would record them: 1, 3, 0 */
  atomic_store(&it[1].atime, 6);
  atomic_store(&it[3].atime, 7);
  atomic_store(&it[0].atime, 8);
  /* least recently used first: 2 (t3), 4 (t5), 1 (t6), 3 (t7), 0 (t8) */
  size_t order[5], want[5] = {2, 4, 1, 3, 0};
  assert_int_equal(drain(&p, it, order), 5);
  assert_memory_equal(order, want, sizeof want);
  assert_int_equal(policy_size(&p), 0);
  policy_fini(&p);
}

static void test_semantic_hand_worked(void **state) {
  (void)state;
  policy p;
  policy_init(&p, policy_find("semantic"));
  /* 0: protected prefix, oldest      4: chain root (has child 5)
   * 1: plain, shared by 3 keys       5: chain middle (has child 6)
   * 2: plain, newest                 6: chain leaf
   * 3: plain, older than 2 */
  pol_item it[7];
  for (int i = 0; i < 7; i++) item_init(&it[i], (uint64_t)i + 1);
  it[0].protect = 1;
  it[1].refs = 3;
  atomic_store(&it[2].atime, 100);
  it[4].nchildren = 1;
  it[5].nchildren = 1;
  for (int i = 0; i < 7; i++) assert_int_equal(policy_insert(&p, &it[i]), 0);
  /* leaves with 1 ref by recency: 3 (t4), 6 (t7), 2 (t100);
   * then the shared leaf 1; then inner chain blocks 4, 5 by recency;
   * the protected prefix 0 last. */
  size_t order[7], want[7] = {3, 6, 2, 1, 4, 5, 0};
  assert_int_equal(drain(&p, it, order), 7);
  assert_memory_equal(order, want, sizeof want);
  policy_fini(&p);
}

static void test_semantic_parent_becomes_leaf(void **state) {
  (void)state;
  policy p;
  policy_init(&p, policy_find("semantic"));
  pol_item a, b, x;
  item_init(&a, 1); /* root of chain a <- b */
  item_init(&b, 2);
  item_init(&x, 3); /* unrelated, newer than a */
  a.nchildren = 1;
  assert_int_equal(policy_insert(&p, &a), 0);
  assert_int_equal(policy_insert(&p, &b), 0);
  assert_int_equal(policy_insert(&p, &x), 0);
  assert_ptr_equal(policy_victim(&p), &b); /* leaf first */
  policy_remove(&p, &b);
  a.nchildren = 0; /* the engine's update when b goes */
  policy_update(&p, &a);
  assert_ptr_equal(policy_victim(&p), &a); /* now a leaf, and older than x */
  policy_fini(&p);
}

/* Brute-force minimum of the true keys. */
static pol_item *true_min(const struct policy_ops *ops, pol_item *items,
                          const int *in, size_t n) {
  pol_item *best = NULL;
  uint64_t bk[2] = {0, 0};
  for (size_t i = 0; i < n; i++) {
    if (!in[i]) continue;
    uint64_t k[2];
    ops->key(&items[i], k);
    if (!best || k[0] < bk[0] || (k[0] == bk[0] && k[1] < bk[1])) {
      best = &items[i];
      bk[0] = k[0];
      bk[1] = k[1];
    }
  }
  return best;
}

static void random_check(const char *name) {
  enum { N = 300, OPS = 20000 };
  const struct policy_ops *ops = policy_find(name);
  policy p;
  policy_init(&p, ops);
  pol_item *items = calloc(N, sizeof *items);
  int *in = calloc(N, sizeof *in);
  assert_non_null(items);
  assert_non_null(in);
  unsigned seed = 12345;
  uint64_t tick = 1;
  for (size_t i = 0; i < N; i++) item_init(&items[i], tick++);
  for (int op = 0; op < OPS; op++) {
    size_t i = (size_t)rand_r(&seed) % N;
    switch (rand_r(&seed) % 6) {
    case 0: /* insert or remove */
      if (in[i]) {
        policy_remove(&p, &items[i]);
        in[i] = 0;
      } else {
        atomic_store(&items[i].atime, tick++);
        assert_int_equal(policy_insert(&p, &items[i]), 0);
        in[i] = 1;
      }
      break;
    case 1: /* a hit: lock-free tick raise, no policy call */
    case 2:
      atomic_store(&items[i].atime, tick++);
      break;
    case 3: /* attribute change, reported */
      if (in[i]) {
        items[i].refs = 1 + (uint32_t)rand_r(&seed) % 3;
        items[i].nchildren = (uint32_t)rand_r(&seed) % 2;
        items[i].protect = rand_r(&seed) % 8 == 0;
        policy_update(&p, &items[i]);
      }
      break;
    default: { /* the victim must be the true minimum */
      pol_item *v = policy_victim(&p);
      assert_ptr_equal(v, true_min(ops, items, in, N));
      if (v && rand_r(&seed) % 2) {
        policy_remove(&p, v);
        in[v - items] = 0;
      }
    }
    }
  }
  size_t n = 0;
  for (size_t i = 0; i < N; i++) n += (size_t)in[i];
  assert_int_equal(policy_size(&p), n);
  policy_fini(&p);
  free(items);
  free(in);
}

static void test_lazy_heap_exact_lru(void **state) {
  (void)state;
  random_check("lru");
}

static void test_lazy_heap_exact_semantic(void **state) {
  (void)state;
  random_check("semantic");
}

static void test_reserve(void **state) {
  (void)state;
  policy p;
  policy_init(&p, policy_find("lru"));
  assert_int_equal(policy_reserve(&p, 1000), 0);
  assert_true(p.cap >= 1000);
  pol_item it[3];
  for (int i = 0; i < 3; i++) {
    item_init(&it[i], (uint64_t)(3 - i));
    assert_int_equal(policy_insert(&p, &it[i]), 0);
    assert_true(pol_in(&it[i]));
  }
  assert_ptr_equal(policy_victim(&p), &it[2]);
  policy_fini(&p);
  for (int i = 0; i < 3; i++) assert_false(pol_in(&it[i]));
}

/* Every policy: random inserts (ids shared, so ghost hits happen), hits,
 * attribute updates, deletes and evictions within one reserve; policy_at
 * must enumerate exactly the inserted items, and the policy's arrays must
 * not move (no allocation after reserve). */
static void walk_check(const char *name) {
  enum { N = 257, OPS = 40000 };
  policy p;
  policy_init(&p, policy_find(name));
  assert_non_null(p.ops);
  pol_item *items = calloc(N, sizeof *items);
  int *in = calloc(N, sizeof *in), *seen = calloc(N, sizeof *seen);
  assert_non_null(items);
  assert_non_null(in);
  assert_non_null(seen);
  uint64_t tick = 1;
  for (size_t i = 0; i < N; i++) {
    item_init(&items[i], tick++);
    items[i].id = i % 100 + 1;
  }
  assert_int_equal(policy_reserve(&p, N), 0);
  const void *heap = p.heap, *q = p.q, *g = p.g, *gh = p.gh;
  unsigned seed = 31;
  for (int op = 0; op < OPS; op++) {
    size_t i = (size_t)rand_r(&seed) % N;
    switch (rand_r(&seed) % 6) {
    case 0:
      if (!in[i]) {
        assert_int_equal(policy_insert(&p, &items[i]), 0);
        in[i] = 1;
      } else if (rand_r(&seed) % 3 == 0) {
        policy_remove(&p, &items[i]);
        in[i] = 0;
      }
      break;
    case 1:
      atomic_store(&items[i].atime, tick++);
      atomic_fetch_add(&items[i].nhits, 1);
      break;
    case 2:
      if (in[i]) {
        items[i].refs = 1 + (uint32_t)rand_r(&seed) % 3;
        items[i].nchildren = (uint32_t)rand_r(&seed) % 2;
        policy_update(&p, &items[i]);
      }
      break;
    default: {
      pol_item *v = policy_victim(&p);
      if (v) {
        assert_true(pol_in(v));
        assert_true(in[v - items]);
        if (rand_r(&seed) % 3) {
          policy_evict(&p, v);
          in[v - items] = 0;
        }
      }
    }
    }
    if (op % 97 == 0 || op == OPS - 1) {
      size_t n = 0;
      for (size_t k = 0; k < N; k++) n += (size_t)in[k], seen[k] = 0;
      assert_int_equal(policy_size(&p), n);
      for (size_t k = 0; k < policy_size(&p); k++) {
        pol_item *it = policy_at(&p, k);
        size_t x = (size_t)(it - items);
        assert_true(x < N);
        assert_true(in[x]);
        assert_false(seen[x]);
        assert_true(pol_in(it));
        seen[x] = 1;
      }
      for (size_t k = 0; k < N; k++) assert_int_equal(pol_in(&items[k]), in[k]);
    }
  }
  assert_ptr_equal(p.heap, heap);
  assert_ptr_equal(p.q, q);
  assert_ptr_equal(p.g, g);
  assert_ptr_equal(p.gh, gh);
  /* the ghost directory stays within its reserve (ghost_mult per item:
   * semantic remembers more evicted ids than it holds items) */
  assert_true(p.ng <= p.gcap);
  assert_true(p.ng == 0 ||
              p.gcap == p.cap * (p.ops->ghost_mult ? p.ops->ghost_mult : 1));
  policy_fini(&p);
  for (size_t k = 0; k < N; k++) assert_false(pol_in(&items[k]));
  free(items);
  free(in);
  free(seen);
}

static void test_walk_every_policy(void **state) {
  (void)state;
  for (int i = 0; policy_names[i]; i++) walk_check(policy_names[i]);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_lookup),
      cmocka_unit_test(test_lru_hand_worked),
      cmocka_unit_test(test_semantic_hand_worked),
      cmocka_unit_test(test_semantic_parent_becomes_leaf),
      cmocka_unit_test(test_lazy_heap_exact_lru),
      cmocka_unit_test(test_lazy_heap_exact_semantic),
      cmocka_unit_test(test_reserve),
      cmocka_unit_test(test_walk_every_policy),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
