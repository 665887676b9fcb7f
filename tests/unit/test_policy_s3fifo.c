/*
 * test_policy_s3fifo.c - the s3fifo policy on its own (src/policy/s3fifo.c):
 * hand-worked victim orders (small queue drained by quick demotion, moves
 * to main, main's 2-bit clock, a ghost hit straight into main, the ghost
 * queue's bound), and a randomised cross-check against a plain reference
 * S3-FIFO written with arrays, under the same lazy-hit semantics (hits
 * raise nhits behind the policy's back).
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

static void item_init(pol_item *it, uint64_t id) {
  memset(it, 0, sizeof *it);
  atomic_store(&it->atime, ++tick);
  it->refs = 1;
  it->id = id;
  it->hidx = POL_NOT_IN;
}

/* A reader's hit: what the engine's lock-free hit path does. */
static void hit(pol_item *it, int times) {
  while (times-- > 0) {
    atomic_store(&it->atime, ++tick);
    atomic_fetch_add(&it->nhits, 1);
  }
}

/* Name the victim, evict it; returns its index in items. */
static int evict(policy *p, pol_item *items) {
  pol_item *v = policy_victim(p);
  assert_non_null(v);
  policy_evict(p, v);
  assert_false(pol_in(v));
  return (int)(v - items);
}

static int in_ghost(const policy *p, uint64_t id) {
  return pq_ghost_find(p, id) != POL_NIL;
}

enum { A, B, C, D, E, F, G, H, I, J, K };

static void test_hand_worked(void **state) {
  (void)state;
  policy p;
  policy_init(&p, policy_find("s3fifo"));
  pol_item it[11];
  /* insert a..j: all go to S (nothing in the ghost queue) */
  for (int i = A; i <= J; i++) {
    item_init(&it[i], (uint64_t)i + 1);
    assert_int_equal(policy_insert(&p, &it[i]), 0);
  }
  hit(&it[C], 2);
  hit(&it[E], 1);
  /* S holds 10 of 10 items (>= 10%): S's head goes unless it was used.
   *   a: unused -> victim (ghost a)         n 10 -> 9
   *   b: unused -> victim (ghost b)         n 9 -> 8
   *   c: used -> M;  d: unused -> victim    n 8 -> 7
   *   e: used -> M;  f: unused -> victim    n 7 -> 6 */
  int want1[] = {A, B, D, F};
  for (int k = 0; k < 4; k++) assert_int_equal(evict(&p, it), want1[k]);
  /* S = [g h i j], M = [c e], G = [a b d f] */
  assert_int_equal(p.l[0].len, 4);
  assert_int_equal(p.l[1].len, 2);
  assert_int_equal(p.gl[0].len, 4);
  for (int i = A; i <= F; i++)
    assert_int_equal(in_ghost(&p, (uint64_t)i + 1),
                     i == A || i == B || i == D || i == F);
  /* b comes back: a ghost hit, straight into M; k is new, into S */
  assert_int_equal(policy_insert(&p, &it[B]), 0);
  assert_int_equal(p.q[it[B].hidx].list, 1);
  assert_false(in_ghost(&p, B + 1));
  item_init(&it[K], K + 1);
  assert_int_equal(policy_insert(&p, &it[K]), 0);
  assert_int_equal(p.q[it[K].hidx].list, 0);
  /* S = [g h i j k], M = [c e b], n = 8 */
  hit(&it[C], 1);
  hit(&it[G], 1);
  /*   g: used -> M (freq 0); h: victim                 n 8 -> 7
   *   i, j, k: S still >= 10% of n -> victims         n -> 4
   * S empty: M = [c e b g] with c hit once since it moved:
   *   c: freq 1 -> 0, to M's tail; e: victim; then b, g, c. */
  int want2[] = {H, I, J, K, E, B, G, C};
  for (int k = 0; k < 8; k++) assert_int_equal(evict(&p, it), want2[k]);
  assert_int_equal(policy_size(&p), 0);
  /* G after each S eviction, bounded by floor(9n/10), n counting the
   * victim: h (n 8): [a d f h]; i (n 7, <= 6): [a d f h i];
   * j (n 6, <= 5): [d f h i j]; k (n 5, <= 4): [h i j k]; evictions from
   * M leave no ghost. */
  assert_int_equal(p.gl[0].len, 4);
  for (int i = A; i <= K; i++)
    assert_int_equal(in_ghost(&p, (uint64_t)i + 1),
                     i == H || i == I || i == J || i == K);
  assert_int_equal(p.g[p.gl[0].head].id, H + 1); /* oldest */
  assert_int_equal(p.g[p.gl[0].tail].id, K + 1); /* newest */
  policy_fini(&p);
}

/* Main's counter saturates at 3: an item hit 5 times and one hit 3 times
 * have the same standing, so the one nearer the hand goes first. */
static void test_two_bit_clock(void **state) {
  (void)state;
  policy p;
  policy_init(&p, policy_find("s3fifo"));
  enum { X, Y, Z };
  pol_item it[3];
  for (int i = X; i <= Z; i++) {
    item_init(&it[i], (uint64_t)i + 1);
    assert_int_equal(policy_insert(&p, &it[i]), 0);
  }
  hit(&it[X], 1);
  hit(&it[Y], 1);
  /* x, y used in S -> M (freq 0); z unused -> victim */
  assert_int_equal(evict(&p, it), Z);
  hit(&it[X], 5); /* freq 3, not 5 */
  hit(&it[Y], 3); /* freq 3 */
  /* M = [x y]: x 3->2, y 3->2, x 2->1, y 2->1, x 1->0, y 1->0, x victim.
   * Without saturation y (3 hits) would go before x (5 hits). */
  assert_int_equal(evict(&p, it), X);
  assert_int_equal(evict(&p, it), Y);
  assert_null(policy_victim(&p));
  policy_fini(&p);
}

/* Naming the victim twice without a hit in between names the same item;
 * removing it (a pinned victim set aside) leaves no ghost; an item without
 * an id is never remembered. */
static void test_victim_stable_and_remove(void **state) {
  (void)state;
  policy p;
  policy_init(&p, policy_find("s3fifo"));
  pol_item it[4];
  for (int i = 0; i < 4; i++) {
    item_init(&it[i], i == 3 ? 0 : (uint64_t)i + 1);
    assert_int_equal(policy_insert(&p, &it[i]), 0);
  }
  pol_item *v = policy_victim(&p);
  assert_ptr_equal(v, &it[0]);
  assert_ptr_equal(policy_victim(&p), v);
  policy_remove(&p, v); /* set aside: no ghost */
  assert_int_equal(p.ng, 0);
  assert_int_equal(policy_insert(&p, v), 0); /* put back: into S again */
  assert_int_equal(p.q[v->hidx].list, 0);
  policy_remove(&p, &it[1]);
  policy_remove(&p, &it[2]);
  /* S = [d(no id) a] */
  assert_int_equal(evict(&p, it), 3);
  assert_int_equal(p.ng, 0);
  policy_fini(&p);
  assert_false(pol_in(&it[0]));
}

/* ---- reference S3-FIFO (arrays, O(n) per operation) ----------------------- */

#define RN 200
typedef struct ref {
  int s[RN], ns, m[RN], nm; /* item indices, head first */
  uint64_t g[4 * RN];       /* ghost ids, oldest first */
  int ng;
  uint32_t seen[RN];
  int freq[RN];
} ref;

static void arr_del(int *a, int *n, int k) {
  memmove(a + k, a + k + 1, (size_t)(*n - k - 1) * sizeof *a);
  (*n)--;
}

static int ghost_pos(const ref *r, uint64_t id) {
  for (int k = 0; k < r->ng; k++)
    if (r->g[k] == id) return k;
  return -1;
}

static void ghost_del(ref *r, int k) {
  memmove(r->g + k, r->g + k + 1, (size_t)(r->ng - k - 1) * sizeof *r->g);
  r->ng--;
}

static void ref_insert(ref *r, pol_item *items, int x) {
  r->seen[x] = atomic_load(&items[x].nhits);
  r->freq[x] = 0;
  int k = items[x].id ? ghost_pos(r, items[x].id) : -1;
  if (k >= 0) {
    ghost_del(r, k);
    r->m[r->nm++] = x;
  } else {
    r->s[r->ns++] = x;
  }
}

static void ref_fold(ref *r, pol_item *items, int x) {
  uint32_t h = atomic_load(&items[x].nhits);
  int f = r->freq[x] + (int)(h - r->seen[x]);
  r->freq[x] = f > 3 ? 3 : f;
  r->seen[x] = h;
}

static int ref_victim(ref *r, pol_item *items) {
  for (;;) {
    int n = r->ns + r->nm;
    if (r->ns && (r->ns * 10 >= n || !r->nm)) {
      int x = r->s[0];
      ref_fold(r, items, x);
      if (!r->freq[x]) return x;
      r->freq[x] = 0;
      arr_del(r->s, &r->ns, 0);
      r->m[r->nm++] = x;
    } else {
      int x = r->m[0];
      ref_fold(r, items, x);
      if (!r->freq[x]) return x;
      r->freq[x]--;
      arr_del(r->m, &r->nm, 0);
      r->m[r->nm++] = x;
    }
  }
}

/* Remove x; as an eviction, remember it in the ghost queue. */
static void ref_remove(ref *r, pol_item *items, int x, int evicted) {
  int n = r->ns + r->nm;
  for (int k = 0; k < r->ns; k++)
    if (r->s[k] == x) {
      arr_del(r->s, &r->ns, k);
      uint64_t id = items[x].id;
      if (!evicted || !id) return;
      int old = ghost_pos(r, id);
      if (old >= 0) ghost_del(r, old);
      int bound = 9 * n / 10;
      while (r->ng && r->ng + 1 > bound) ghost_del(r, 0);
      if (bound >= 1) r->g[r->ng++] = id;
      return;
    }
  for (int k = 0; k < r->nm; k++)
    if (r->m[k] == x) {
      arr_del(r->m, &r->nm, k);
      return;
    }
  fail_msg("item %d not in the reference", x);
}

static void test_random_vs_reference(void **state) {
  (void)state;
  policy p;
  policy_init(&p, policy_find("s3fifo"));
  static pol_item items[RN];
  static ref r;
  memset(&r, 0, sizeof r);
  assert_int_equal(policy_reserve(&p, RN), 0);
  for (int i = 0; i < RN; i++) item_init(&items[i], (uint64_t)(i % 150) + 1);
  unsigned seed = 4242;
  int ghost_hits = 0, main_evictions = 0;
  for (int op = 0; op < 200000; op++) {
    int x = rand_r(&seed) % RN;
    int in = pol_in(&items[x]);
    switch (rand_r(&seed) % 8) {
    case 0:
    case 1: /* insert (a re-insert may be a ghost hit) */
      if (!in) {
        assert_int_equal(policy_insert(&p, &items[x]), 0);
        ref_insert(&r, items, x);
        ghost_hits += p.q[items[x].hidx].list == 1;
      }
      break;
    case 2:
    case 3: /* hits, lock-free */
      if (in) hit(&items[x], 1 + rand_r(&seed) % 3);
      break;
    case 4: /* a delete */
      if (in && rand_r(&seed) % 4 == 0) {
        policy_remove(&p, &items[x]);
        ref_remove(&r, items, x, 0);
      }
      break;
    default: { /* victim, then evict (usually) */
      pol_item *v = policy_victim(&p);
      if (!r.ns && !r.nm) {
        assert_null(v);
        break;
      }
      int want = ref_victim(&r, items);
      assert_non_null(v);
      assert_int_equal((int)(v - items), want);
      if (rand_r(&seed) % 8) {
        main_evictions += p.q[v->hidx].list == 1;
        policy_evict(&p, v);
        ref_remove(&r, items, want, 1);
      }
    }
    }
    assert_int_equal(policy_size(&p), (size_t)(r.ns + r.nm));
    assert_int_equal(p.l[0].len, r.ns);
    assert_int_equal(p.ng, (size_t)r.ng);
  }
  assert_true(ghost_hits > 100);
  assert_true(main_evictions > 100);
  /* the ghost queues hold the same ids in the same order */
  uint32_t gi = p.gl[0].head;
  for (int k = 0; k < r.ng; k++, gi = p.g[gi].next)
    assert_int_equal(p.g[gi].id, r.g[k]);
  assert_int_equal(gi, POL_NIL);
  policy_fini(&p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_hand_worked),
      cmocka_unit_test(test_two_bit_clock),
      cmocka_unit_test(test_victim_stable_and_remove),
      cmocka_unit_test(test_random_vs_reference),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
