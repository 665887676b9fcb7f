/*
 * test_policy_lfu.c - the lfu policy on its own (src/policy/lfu.c, LFU with
 * dynamic aging on the lazy heap): a hand-worked victim order with the keys
 * written out (frequency, aging by L, ties by recency, hits noticed when an
 * item reaches the top), and a randomised cross-check against a brute-force
 * LFU-DA that applies the same lazy rule with O(n) scans.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "policy/policy.h"

static uint64_t tick;

static void item_init(pol_item *it) {
  memset(it, 0, sizeof *it);
  atomic_store(&it->atime, ++tick);
  it->refs = 1;
  it->hidx = POL_NOT_IN;
}

static void hit(pol_item *it) {
  atomic_store(&it->atime, ++tick);
  atomic_fetch_add(&it->nhits, 1);
}

static int evict(policy *p, pol_item *items) {
  pol_item *v = policy_victim(p);
  assert_non_null(v);
  policy_evict(p, v);
  return (int)(v - items);
}

enum { A, B, C, D, E, F };

static void test_hand_worked(void **state) {
  (void)state;
  tick = 0;
  policy p;
  policy_init(&p, policy_find("lfu"));
  pol_item it[6];
  /* key = (L + nhits + 1, atime), L = 0: a (1,t1) b (1,t2) c (1,t3)
   * d (1,t4) */
  for (int i = A; i <= D; i++) {
    item_init(&it[i]);
    assert_int_equal(policy_insert(&p, &it[i]), 0);
  }
  hit(&it[A]); /* t5 */
  hit(&it[A]); /* t6 */
  hit(&it[C]); /* t7 */
  /* victim 1: a on top, stale -> (0 + 3, t6); b (1,t2) fresh: b, L = 1 */
  assert_int_equal(evict(&p, it), B);
  assert_int_equal(p.last_key[0], 1);
  item_init(&it[E]); /* t8: (L 1 + 1, t8) = (2,t8) */
  assert_int_equal(policy_insert(&p, &it[E]), 0);
  /* victim 2: c stale -> (1 + 2, t7); d (1,t4): d, L = 1 */
  assert_int_equal(evict(&p, it), D);
  /* victim 3: e (2,t8) below a (3,t6) and c (3,t7): e, L = 2 */
  assert_int_equal(evict(&p, it), E);
  assert_int_equal(p.last_key[0], 2);
  item_init(&it[F]); /* t9: (2 + 1, t9) = (3,t9) */
  assert_int_equal(policy_insert(&p, &it[F]), 0);
  hit(&it[C]); /* t10, nhits 2 */
  /* victim 4: a (3,t6), fresh: a (hit twice, but long ago), L = 3 */
  assert_int_equal(evict(&p, it), A);
  /* victim 5: c (3,t7) stale -> (L 3 + 3, t10) = (6,t10); f (3,t9): f.
   * c was hit twice like a, but later: aging kept it. */
  assert_int_equal(evict(&p, it), F);
  assert_int_equal(evict(&p, it), C);
  assert_null(policy_victim(&p));
  policy_fini(&p);
}

/* Without aging a block hit many times long ago would stay for ever; with
 * it, once L has passed its key, newer blocks outlive it. */
static void test_aging(void **state) {
  (void)state;
  policy p;
  policy_init(&p, policy_find("lfu"));
  enum { N = 8 };
  pol_item old, it[N];
  item_init(&old);
  assert_int_equal(policy_insert(&p, &old), 0);
  for (int h = 0; h < 3; h++) hit(&old); /* key 4 once noticed */
  /* a stream of once-hit blocks: each lives at key L + 2 */
  int gone = 0;
  for (int round = 0; round < 10 && !gone; round++) {
    for (int i = 0; i < N; i++) {
      item_init(&it[i]);
      assert_int_equal(policy_insert(&p, &it[i]), 0);
      hit(&it[i]);
    }
    for (int i = 0; i < N; i++) {
      pol_item *v = policy_victim(&p);
      if (v == &old) gone = 1;
      policy_evict(&p, v);
    }
    while (policy_size(&p) > (gone ? 0u : 1u))
      policy_evict(&p, policy_victim(&p)); /* keep only old */
  }
  assert_true(gone);
  policy_fini(&p);
}

/* ---- brute-force LFU-DA with the same lazy rule --------------------------- */

#define RN 300
static uint64_t rk[RN][2]; /* stored keys */
static int rin[RN];
static uint64_t rl; /* L */

static void ref_key(pol_item *items, int x) {
  rk[x][0] = rl + atomic_load(&items[x].nhits) + 1;
  rk[x][1] = atomic_load(&items[x].atime);
}

static int ref_victim(pol_item *items) {
  for (;;) {
    int best = -1;
    for (int i = 0; i < RN; i++)
      if (rin[i] && (best < 0 || rk[i][0] < rk[best][0] ||
                     (rk[i][0] == rk[best][0] && rk[i][1] < rk[best][1])))
        best = i;
    if (best < 0) return -1;
    if (atomic_load(&items[best].atime) == rk[best][1]) {
      rl = rk[best][0];
      return best;
    }
    ref_key(items, best); /* noticed: re-keyed with the current L */
  }
}

static void test_random_vs_brute_force(void **state) {
  (void)state;
  policy p;
  policy_init(&p, policy_find("lfu"));
  static pol_item items[RN];
  memset(rin, 0, sizeof rin);
  rl = 0;
  for (int i = 0; i < RN; i++) item_init(&items[i]);
  unsigned seed = 99;
  for (int op = 0; op < 30000; op++) {
    int x = rand_r(&seed) % RN;
    switch (rand_r(&seed) % 7) {
    case 0:
    case 1:
      if (!rin[x]) {
        atomic_store(&items[x].atime, ++tick);
        assert_int_equal(policy_insert(&p, &items[x]), 0);
        ref_key(items, x);
        rin[x] = 1;
      }
      break;
    case 2:
    case 3:
      hit(&items[x]); /* also on items not inserted: harmless */
      break;
    case 4:
      if (rin[x] && rand_r(&seed) % 3 == 0) {
        policy_remove(&p, &items[x]);
        rin[x] = 0;
      }
      break;
    default: {
      pol_item *v = policy_victim(&p);
      int want = ref_victim(items);
      if (want < 0) {
        assert_null(v);
        break;
      }
      assert_non_null(v);
      assert_int_equal((int)(v - items), want);
      assert_int_equal(p.last_key[0], rl);
      if (rand_r(&seed) % 2) {
        policy_evict(&p, v);
        rin[want] = 0;
      }
    }
    }
  }
  assert_true(rl > 1); /* L moved: aging was exercised */
  policy_fini(&p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_hand_worked),
      cmocka_unit_test(test_aging),
      cmocka_unit_test(test_random_vs_brute_force),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
