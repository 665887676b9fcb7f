/*
 * test_policy_arc.c - the arc policy on its own (src/policy/arc.c, ARC done
 * as CAR with lazy reference bits): a hand-worked sequence with the victim
 * order, the lists, the ghost lists and the adaptive target written out at
 * each step (T1 -> T2 promotion when the hand finds a reference, B1 and B2
 * ghost hits moving the target up and down, the directory bounds), and a
 * randomised cross-check against a plain reference CAR written with arrays,
 * under the same lazy-hit semantics (hits raise atime behind its back).
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

static void hit(pol_item *it) {
  atomic_store(&it->atime, ++tick);
  atomic_fetch_add(&it->nhits, 1);
}

static int evict(policy *p, pol_item *items) {
  pol_item *v = policy_victim(p);
  assert_non_null(v);
  policy_evict(p, v);
  assert_false(pol_in(v));
  return (int)(v - items);
}

enum { T1 = 0, T2 = 1, B1 = 0, B2 = 1 };

/* Assert that list lid of the resident items (or of the ghosts) holds
 * exactly want[0..n) (item indices, head = oldest first). */
static void check_list(const policy *p, pol_item *items, int lid,
                       const int *want, unsigned n) {
  assert_int_equal(p->l[lid].len, n);
  uint32_t i = p->l[lid].head;
  for (unsigned k = 0; k < n; k++, i = p->q[i].next)
    assert_int_equal((int)(p->q[i].it - items), want[k]);
  assert_int_equal(i, POL_NIL);
}

static void check_ghosts(const policy *p, int lid, const int *want,
                         unsigned n) {
  assert_int_equal(p->gl[lid].len, n);
  uint32_t i = p->gl[lid].head;
  for (unsigned k = 0; k < n; k++, i = p->g[i].next)
    assert_int_equal(p->g[i].id, (uint64_t)want[k] + 1); /* id = index + 1 */
  assert_int_equal(i, POL_NIL);
}

#define LIST(lid, ...)                                                         \
  do {                                                                         \
    int w_[] = {__VA_ARGS__};                                                  \
    check_list(&p, it, lid, w_, sizeof w_ / sizeof w_[0]);                     \
  } while (0)
#define EMPTY(lid) check_list(&p, it, lid, NULL, 0)
#define GHOSTS(lid, ...)                                                       \
  do {                                                                         \
    int w_[] = {__VA_ARGS__};                                                  \
    check_ghosts(&p, lid, w_, sizeof w_ / sizeof w_[0]);                       \
  } while (0)
#define NO_GHOSTS(lid) check_ghosts(&p, lid, NULL, 0)

enum { A, B, C, D, E, F };

static void test_hand_worked(void **state) {
  (void)state;
  policy p;
  policy_init(&p, policy_find("arc"));
  pol_item it[6];
  for (int i = A; i <= F; i++) item_init(&it[i], (uint64_t)i + 1);
  for (int i = A; i <= D; i++) assert_int_equal(policy_insert(&p, &it[i]), 0);
  LIST(T1, A, B, C, D);
  EMPTY(T2);
  hit(&it[A]);
  hit(&it[B]);
  /* victim 1 (target 0, so T1 while it has >= 1): a referenced -> T2,
   * b referenced -> T2, c not -> victim.  c (n 4) -> B1: |T1|+|B1| = 2+1
   * with the incoming item, <= 4. */
  assert_int_equal(evict(&p, it), C);
  LIST(T1, D);
  LIST(T2, A, B);
  GHOSTS(B1, C);
  NO_GHOSTS(B2);
  item_init(&it[E], E + 1);
  assert_int_equal(policy_insert(&p, &it[E]), 0); /* new: T1 */
  /* c again: a B1 hit; target = min(c = 5, 0 + max(1, |B2|/|B1| = 0)) = 1 */
  assert_int_equal(policy_insert(&p, &it[C]), 0);
  assert_int_equal(p.target, 1);
  LIST(T1, D, E);
  LIST(T2, A, B, C);
  NO_GHOSTS(B1);
  hit(&it[A]);
  /* victim 2: |T1| = 2 >= 1: d, not referenced.  B1 = [d]. */
  assert_int_equal(evict(&p, it), D);
  /* victim 3: |T1| = 1 >= 1: e.  B1 = [d e] (1 + 2 <= n 4). */
  assert_int_equal(evict(&p, it), E);
  EMPTY(T1);
  GHOSTS(B1, D, E);
  /* victim 4: T1 empty -> T2: a referenced (hit after it moved) -> T2's
   * tail; b not -> victim, into B2 (|B1|+|B2| = 3 <= n 3) */
  assert_int_equal(evict(&p, it), B);
  LIST(T2, C, A);
  GHOSTS(B2, B);
  /* b again: a B2 hit; target = max(0, 1 - max(1, |B1|/|B2| = 2)) = 0 */
  assert_int_equal(policy_insert(&p, &it[B]), 0);
  assert_int_equal(p.target, 0);
  LIST(T2, C, A, B);
  NO_GHOSTS(B2);
  item_init(&it[F], F + 1);
  assert_int_equal(policy_insert(&p, &it[F]), 0);
  /* victim 5: |T1| = 1 >= max(1, 0): f -> B1 = [d e f] (1+3 <= n 4) */
  assert_int_equal(evict(&p, it), F);
  GHOSTS(B1, D, E, F);
  /* victim 6: T2's c (n 3).  Bounds: |T1|+|B1| <= 3 counting the incoming
   * item in T1: B1 drops d; |B1|+|B2|+1 <= 3: fits.  B2 = [c] */
  assert_int_equal(evict(&p, it), C);
  GHOSTS(B1, E, F);
  GHOSTS(B2, C);
  /* victim 7: a (n 2): B1 drops e (1 + |B1| <= 2); |B1|+|B2|+1 <= 2: B2
   * drops c.  B2 = [a] */
  assert_int_equal(evict(&p, it), A);
  GHOSTS(B1, F);
  GHOSTS(B2, A);
  /* victim 8: b (n 1): B1 drops f, B2 drops a.  B2 = [b] */
  assert_int_equal(evict(&p, it), B);
  NO_GHOSTS(B1);
  GHOSTS(B2, B);
  assert_null(policy_victim(&p));
  policy_fini(&p);
}

/* With the whole cache in T1, ARC evicts T1's LRU without a ghost. */
static void test_t1_full_no_ghost(void **state) {
  (void)state;
  policy p;
  policy_init(&p, policy_find("arc"));
  pol_item it[3];
  for (int i = 0; i < 3; i++) {
    item_init(&it[i], (uint64_t)i + 1);
    assert_int_equal(policy_insert(&p, &it[i]), 0);
  }
  assert_int_equal(evict(&p, it), 0);
  assert_int_equal(p.ng, 0);
  assert_int_equal(policy_insert(&p, &it[0]), 0); /* no ghost hit: T1 */
  assert_int_equal(p.q[it[0].hidx].list, T1);
  policy_fini(&p);
}

/* ---- reference CAR (arrays, O(n) per operation) --------------------------- */

#define RN 200
typedef struct ref {
  int t[2][RN], nt[2]; /* T1, T2: item indices, head first */
  uint64_t b[2][RN];   /* B1, B2: ids, oldest first */
  int nb[2];
  uint64_t target;
  uint64_t seen[RN];
} ref;

static void del_int(int *a, int *n, int k) {
  memmove(a + k, a + k + 1, (size_t)(*n - k - 1) * sizeof *a);
  (*n)--;
}

static void del_id(ref *r, int l, int k) {
  memmove(r->b[l] + k, r->b[l] + k + 1,
          (size_t)(r->nb[l] - k - 1) * sizeof r->b[l][0]);
  r->nb[l]--;
}

static int find_id(const ref *r, uint64_t id, int *l) {
  for (*l = 0; *l < 2; (*l)++)
    for (int k = 0; k < r->nb[*l]; k++)
      if (r->b[*l][k] == id) return k;
  return -1;
}

static void ref_insert(ref *r, pol_item *items, int x) {
  int n = r->nt[0] + r->nt[1] + 1, l;
  r->seen[x] = atomic_load(&items[x].atime);
  int k = items[x].id ? find_id(r, items[x].id, &l) : -1;
  if (k < 0) {
    r->t[0][r->nt[0]++] = x;
    return;
  }
  uint64_t b1 = (uint64_t)r->nb[0], b2 = (uint64_t)r->nb[1];
  if (l == 0) {
    uint64_t d = b2 / b1 > 1 ? b2 / b1 : 1;
    r->target = r->target + d < (uint64_t)n ? r->target + d : (uint64_t)n;
  } else {
    uint64_t d = b1 / b2 > 1 ? b1 / b2 : 1;
    r->target = r->target > d ? r->target - d : 0;
  }
  del_id(r, l, k);
  r->t[1][r->nt[1]++] = x;
}

static int ref_victim(ref *r, pol_item *items) {
  for (;;) {
    uint64_t t = r->target ? r->target : 1;
    int l = r->nt[0] && ((uint64_t)r->nt[0] >= t || !r->nt[1]) ? 0 : 1;
    int x = r->t[l][0];
    uint64_t a = atomic_load(&items[x].atime);
    if (a == r->seen[x]) return x;
    r->seen[x] = a;
    del_int(r->t[l], &r->nt[l], 0);
    r->t[1][r->nt[1]++] = x;
  }
}

static void ref_remove(ref *r, pol_item *items, int x, int evicted) {
  int c = r->nt[0] + r->nt[1];
  for (int l = 0; l < 2; l++)
    for (int k = 0; k < r->nt[l]; k++) {
      if (r->t[l][k] != x) continue;
      uint64_t id = items[x].id;
      if (evicted && id) {
        int gl, old = find_id(r, id, &gl);
        if (old >= 0) del_id(r, gl, old);
        int t1_next = r->nt[0] - (l == 0) + 1, add1 = l == 0;
        while (r->nb[0] && t1_next + r->nb[0] + add1 > c) del_id(r, 0, 0);
        if (t1_next + add1 <= c) {
          while (r->nb[0] + r->nb[1] + 1 > c) del_id(r, r->nb[1] ? 1 : 0, 0);
          r->b[l][r->nb[l]++] = id;
        }
      }
      del_int(r->t[l], &r->nt[l], k);
      return;
    }
  fail_msg("item %d not in the reference", x);
}

static void test_random_vs_reference(void **state) {
  (void)state;
  policy p;
  policy_init(&p, policy_find("arc"));
  static pol_item items[RN];
  static ref r;
  memset(&r, 0, sizeof r);
  for (int i = 0; i < RN; i++) item_init(&items[i], (uint64_t)(i % 170) + 1);
  unsigned seed = 777;
  int b1_hits = 0, b2_hits = 0;
  uint64_t max_target = 0;
  for (int op = 0; op < 200000; op++) {
    int x = rand_r(&seed) % RN;
    int in = pol_in(&items[x]);
    switch (rand_r(&seed) % 8) {
    case 0:
    case 1:
      if (!in) {
        int l = -1;
        uint32_t g = pq_ghost_find(&p, items[x].id);
        if (g != POL_NIL) l = p.g[g].list;
        assert_int_equal(policy_insert(&p, &items[x]), 0);
        ref_insert(&r, items, x);
        b1_hits += l == B1;
        b2_hits += l == B2;
      }
      break;
    case 2:
    case 3:
      if (in && rand_r(&seed) % 2) hit(&items[x]);
      break;
    case 4:
      if (in && rand_r(&seed) % 4 == 0) {
        policy_remove(&p, &items[x]);
        ref_remove(&r, items, x, 0);
      }
      break;
    default: {
      pol_item *v = policy_victim(&p);
      if (!r.nt[0] && !r.nt[1]) {
        assert_null(v);
        break;
      }
      int want = ref_victim(&r, items);
      assert_non_null(v);
      assert_int_equal((int)(v - items), want);
      if (rand_r(&seed) % 8) {
        policy_evict(&p, v);
        ref_remove(&r, items, want, 1);
      }
    }
    }
    assert_int_equal(p.target, r.target);
    if (p.target > max_target) max_target = p.target;
    assert_int_equal(p.l[T1].len, r.nt[0]);
    assert_int_equal(p.l[T2].len, r.nt[1]);
    assert_int_equal(p.gl[B1].len, r.nb[0]);
    assert_int_equal(p.gl[B2].len, r.nb[1]);
    assert_true(p.ng <= p.cap);
  }
  for (int l = 0; l < 2; l++) {
    uint32_t gi = p.gl[l].head;
    for (int k = 0; k < r.nb[l]; k++, gi = p.g[gi].next)
      assert_int_equal(p.g[gi].id, r.b[l][k]);
    assert_int_equal(gi, POL_NIL);
  }
  assert_true(b1_hits > 20); /* 51 and 315 with this seed */
  assert_true(b2_hits > 100);
  assert_true(max_target > 1);
  policy_fini(&p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_hand_worked),
      cmocka_unit_test(test_t1_full_no_ghost),
      cmocka_unit_test(test_random_vs_reference),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
