/*
 * test_large.c - values the size of real KV blocks: a Llama-3-70B block of
 * 512 tokens is 160 MiB.  Stored, read back byte-exact (copy and view),
 * hashed to the right content id, and evicted whole when a fourth one does
 * not fit.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cascade.h"

#define BLOCK (160u << 20)

static void fill(uint8_t *v, size_t n, uint32_t seed) {
  uint64_t x = 0x9e3779b97f4a7c15u * (seed + 1);
  for (size_t i = 0; i + 8 <= n; i += 8) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    memcpy(v + i, &x, 8);
  }
}

static void test_160mib_blocks(void **state) {
  (void)state;
  cascade_config *cfg;
  assert_int_equal(cascade_config_new(&cfg), 0);
  assert_int_equal(cascade_config_set(cfg, "dram.capacity", "500m"), 0);
  assert_int_equal(cascade_config_set(cfg, "policy", "lru"), 0);
  cascade *c;
  assert_int_equal(cascade_open(cfg, &c), 0);
  cascade_config_free(cfg);
  uint8_t *v = malloc(BLOCK), *out = malloc(BLOCK);
  assert_non_null(v);
  assert_non_null(out);

  for (uint32_t i = 0; i < 4; i++) {
    fill(v, BLOCK, i);
    assert_int_equal(cascade_put(c, "llama-70b", &i, sizeof i, v, BLOCK, NULL),
                     0);
  }
  /* 500 MiB hold three: the first (least recently used) went */
  uint32_t k0 = 0;
  assert_int_equal(cascade_exists(c, "llama-70b", &k0, sizeof k0), 0);
  for (uint32_t i = 1; i < 4; i++) {
    size_t n = 0;
    fill(v, BLOCK, i);
    memset(out, 0, BLOCK);
    assert_int_equal(
        cascade_get(c, "llama-70b", &i, sizeof i, out, BLOCK, &n), 0);
    assert_int_equal(n, BLOCK);
    assert_memory_equal(out, v, BLOCK);
    cascade_view view;
    assert_int_equal(cascade_get_view(c, "llama-70b", &i, sizeof i, &view), 0);
    assert_int_equal(view.len, BLOCK);
    assert_memory_equal(view.data, v, BLOCK);
    cascade_cid want;
    assert_int_equal(cascade_content_id(v, BLOCK, &want), 0);
    assert_memory_equal(view.cid.b, want.b, CASCADE_CID_BYTES);
    cascade_view_release(c, &view);
  }
  struct cascade_stats st;
  assert_int_equal(cascade_stats(c, &st), 0);
  assert_int_equal(st.tier[CASCADE_TIER_DRAM].blocks, 3);
  assert_int_equal(st.tier[CASCADE_TIER_DRAM].bytes, 3ull * BLOCK);
  assert_int_equal(st.tier[CASCADE_TIER_DRAM].evictions, 1);
  cascade_close(c);
  free(v);
  free(out);
}

static void test_max_value_default_and_over(void **state) {
  (void)state;
  cascade_config *cfg;
  assert_int_equal(cascade_config_new(&cfg), 0);
  char buf[32];
  assert_int_equal(cascade_config_get(cfg, "max_value", buf, sizeof buf), 0);
  assert_string_equal(buf, "1073741824");
  assert_int_equal(cascade_config_set(cfg, "dram.capacity", "400m"), 0);
  assert_int_equal(cascade_config_set(cfg, "max_value", "160m"), 0);
  cascade *c;
  assert_int_equal(cascade_open(cfg, &c), 0);
  cascade_config_free(cfg);
  uint8_t *v = calloc(1, BLOCK + 1);
  assert_non_null(v);
  assert_int_equal(cascade_put(c, NULL, "at", 2, v, BLOCK, NULL), 0);
  assert_int_equal(cascade_put(c, NULL, "over", 4, v, BLOCK + 1, NULL),
                   -EFBIG);
  assert_int_equal(cascade_exists(c, NULL, "over", 4), 0);
  assert_int_equal(cascade_exists(c, NULL, "at", 2), 1);
  cascade_close(c);
  free(v);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_160mib_blocks),
      cmocka_unit_test(test_max_value_default_and_over),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
