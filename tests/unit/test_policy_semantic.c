/*
 * test_policy_semantic.c - the semantic policy on its own
 * (src/policy/semantic.c): hand-worked victim orders for the reuse
 * deadline (a re-referenced block is kept SEM_REUSE_BONUS = 8192 ticks
 * longer than a fresh one), the ghost list (a block stored again after its
 * eviction counts as re-referenced), the class bits ranking before the
 * deadline, and the bound on remembered ids.  The plain order (no reuse)
 * is checked in test_policy.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "policy/policy.h"

#define BONUS 8192 /* SEM_REUSE_BONUS */

static void item_init(pol_item *it, uint64_t atime, uint64_t id) {
  memset(it, 0, sizeof *it);
  atomic_store(&it->atime, atime);
  it->refs = 1;
  it->id = id;
  it->hidx = POL_NOT_IN;
}

static size_t drain(policy *p, pol_item *items, size_t *order) {
  size_t n = 0;
  pol_item *v;
  while ((v = policy_victim(p))) {
    order[n++] = (size_t)(v - items);
    policy_evict(p, v);
  }
  return n;
}

/* A hit (nhits > 0, raised behind the policy's back) moves the deadline
 * BONUS ticks past the access: 0 (hit at 10, deadline 8202) outlives 1 and
 * 2 (fresh, 100 and 8000) but not 3 (fresh, 9000). */
static void test_hit_bonus(void **state) {
  (void)state;
  policy p;
  policy_init(&p, policy_find("semantic"));
  pol_item it[4];
  item_init(&it[0], 1, 1);
  item_init(&it[1], 100, 2);
  item_init(&it[2], 8000, 3);
  item_init(&it[3], 9000, 4);
  for (int i = 0; i < 4; i++) assert_int_equal(policy_insert(&p, &it[i]), 0);
  atomic_store(&it[0].atime, 10); /* a reader's hit */
  atomic_store(&it[0].nhits, 1);
  size_t order[4], want[4] = {1, 2, 0, 3};
  assert_int_equal(drain(&p, it, order), 4);
  assert_memory_equal(order, want, sizeof want);
  policy_fini(&p);
}

/* A block evicted and stored again while the ghost list holds its id gets
 * the bonus although its nhits starts at 0; a block whose id was never
 * evicted (or id 0) does not. */
static void test_ghost_return(void **state) {
  (void)state;
  policy p;
  policy_init(&p, policy_find("semantic"));
  pol_item a, b, c, d;
  item_init(&a, 1, 7);
  item_init(&b, 2, 8);
  assert_int_equal(policy_insert(&p, &a), 0);
  assert_int_equal(policy_insert(&p, &b), 0);
  assert_ptr_equal(policy_victim(&p), &a);
  policy_evict(&p, &a); /* id 7 remembered */
  assert_int_equal(p.ng, 1);
  atomic_store(&a.atime, 20); /* asked for again: stored again */
  assert_int_equal(policy_insert(&p, &a), 0);
  item_init(&c, 30, 9); /* fresh, newer than a */
  item_init(&d, 40, 0); /* fresh, no identity */
  assert_int_equal(policy_insert(&p, &c), 0);
  assert_int_equal(policy_insert(&p, &d), 0);
  /* b (2), c (30), d (40), then a (20 + BONUS) */
  pol_item *want[4] = {&b, &c, &d, &a};
  for (int i = 0; i < 4; i++) {
    assert_ptr_equal(policy_victim(&p), want[i]);
    policy_evict(&p, want[i]);
  }
  assert_null(policy_victim(&p));
  policy_fini(&p);
}

/* The class bits rank before the deadline: a re-referenced inner block
 * goes after a fresh leaf, a fresh protected block after everything; once
 * the inner block loses its child it competes by deadline again. */
static void test_class_first(void **state) {
  (void)state;
  policy p;
  policy_init(&p, policy_find("semantic"));
  pol_item it[4];
  item_init(&it[0], 1, 1); /* root of 0 <- 1, hit */
  item_init(&it[1], 2, 2); /* its child, hit */
  item_init(&it[2], 3, 3); /* fresh leaf */
  item_init(&it[3], 4, 4); /* fresh, protected */
  it[0].nchildren = 1;
  it[3].protect = 1;
  for (int i = 0; i < 4; i++) assert_int_equal(policy_insert(&p, &it[i]), 0);
  atomic_store(&it[0].nhits, 1);
  atomic_store(&it[1].nhits, 1);
  /* leaves: 2 (deadline 3), 1 (2 + BONUS) */
  assert_ptr_equal(policy_victim(&p), &it[2]);
  policy_evict(&p, &it[2]);
  assert_ptr_equal(policy_victim(&p), &it[1]);
  policy_evict(&p, &it[1]);
  it[0].nchildren = 0; /* the caller's update when 1 goes */
  policy_update(&p, &it[0]);
  assert_ptr_equal(policy_victim(&p), &it[0]); /* a leaf now */
  policy_evict(&p, &it[0]);
  assert_ptr_equal(policy_victim(&p), &it[3]); /* protected last */
  policy_evict(&p, &it[3]);
  policy_fini(&p);
}

/* key() ranks like the heap for blocks no ghost remembers (the disk
 * tier's reclaim uses it). */
static void test_key_matches(void **state) {
  (void)state;
  const struct policy_ops *ops = policy_find("semantic");
  pol_item a, b;
  item_init(&a, 10, 1);
  item_init(&b, 100, 2);
  uint64_t ka[2], kb[2];
  ops->key(&a, ka);
  ops->key(&b, kb);
  assert_true(ka[0] == kb[0] && ka[1] < kb[1]);
  atomic_store(&a.nhits, 1); /* 10 + BONUS > 100 */
  ops->key(&a, ka);
  assert_true(ka[0] == kb[0] && ka[1] > kb[1]);
}

/* At most 4 remembered ids per resident block (n at eviction), within the
 * reserve; the oldest go first. */
static void test_ghost_bound(void **state) {
  (void)state;
  enum { N = 40 };
  policy p;
  policy_init(&p, policy_find("semantic"));
  assert_int_equal(policy_reserve(&p, 4), 0);
  assert_int_equal(p.gcap, 4 * p.cap);
  pol_item *it = calloc(N, sizeof *it);
  assert_non_null(it);
  for (int i = 0; i < N; i++) {
    item_init(&it[i], (uint64_t)i + 1, (uint64_t)i + 1);
    if (policy_size(&p) == 2) { /* two resident: evict one first */
      pol_item *v = policy_victim(&p);
      assert_ptr_equal(v, &it[i - 2]);
      policy_evict(&p, v);
      assert_true(p.ng <= 4 * 2);
    }
    assert_int_equal(policy_insert(&p, &it[i]), 0);
  }
  assert_int_equal(p.ng, 8);
  /* the last eight evicted (ids 31..38) are remembered, 30 is not */
  for (uint64_t id = 31; id <= 38; id++)
    assert_int_not_equal(pq_ghost_find(&p, id), POL_NIL);
  assert_int_equal(pq_ghost_find(&p, 30), POL_NIL);
  policy_fini(&p);
  free(it);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_hit_bonus),   cmocka_unit_test(test_ghost_return),
      cmocka_unit_test(test_class_first), cmocka_unit_test(test_key_matches),
      cmocka_unit_test(test_ghost_bound),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
