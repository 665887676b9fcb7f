/*
 * test_oatab.c - the open-addressed table (src/core/oatab.c) against a
 * plain array model: random inserts and removals with tags drawn from a few
 * values (so runs collide, wrap around the end and get shifted back), every
 * present entry findable and no removed one, through growth.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/oatab.h"

enum { N = 2000 };

static int find(const oat *t, uint64_t tag, const void *p) {
  for (uint64_t i = oat_first(t, tag); t->s[i].p; i = oat_next(t, i))
    if (t->s[i].tag == tag && t->s[i].p == p) return 1;
  return 0;
}

static void run(unsigned seed, uint64_t tagspace) {
  static char obj[N];
  static uint64_t tag[N];
  static int in[N];
  oat t;
  assert_int_equal(oat_init(&t, 8), 0);
  memset(in, 0, sizeof in);
  uint64_t n = 0;
  for (int op = 0; op < 40000; op++) {
    int i = rand_r(&seed) % N;
    if (in[i]) {
      oat_remove(&t, tag[i], &obj[i]);
      in[i] = 0;
      n--;
    } else {
      /* tags: few distinct low bits, so entries pile into the same runs */
      tag[i] = ((uint64_t)rand_r(&seed) << 32) |
               ((uint64_t)rand_r(&seed) % tagspace) * 7;
      assert_int_equal(oat_room(&t), 0);
      oat_insert(&t, tag[i], &obj[i]);
      in[i] = 1;
      n++;
    }
    assert_int_equal(t.n, n);
    assert_true(t.n * 4 <= (t.mask + 1) * 3);
    if (op % 97 == 0)
      for (int k = 0; k < N; k++)
        if (find(&t, tag[k], &obj[k]) != in[k])
          fail_msg("entry %d: found %d, expected %d (op %d)", k, !in[k],
                   in[k], op);
  }
  for (int k = 0; k < N; k++) assert_int_equal(find(&t, tag[k], &obj[k]), in[k]);
  oat_free(&t);
}

static void test_random_colliding(void **state) {
  (void)state;
  run(1, 16);
  run(2, 300);
  run(3, UINT32_MAX);
}

static void test_wraparound(void **state) {
  (void)state;
  oat t;
  assert_int_equal(oat_init(&t, 16), 0);
  char o[6];
  /* home the last slot: the run wraps to slots 0, 1, ... */
  for (int i = 0; i < 6; i++) {
    assert_int_equal(oat_room(&t), 0);
    oat_insert(&t, 15 + (i >= 3 ? 16 : 0), &o[i]);
  }
  oat_remove(&t, 15, &o[0]);
  for (int i = 1; i < 6; i++)
    assert_true(find(&t, 15 + (i >= 3 ? 16 : 0), &o[i]));
  assert_false(find(&t, 15, &o[0]));
  oat_free(&t);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_random_colliding),
      cmocka_unit_test(test_wraparound),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
