/*
 * test_copy.c - copy_stream (src/core/copy.c): streaming-store copies give
 * exactly memcpy's bytes for every length and every alignment of source and
 * destination, and never write outside the destination range.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/internal.h"

#define GUARD 256

static void check_one(const uint8_t *src, size_t soff, size_t doff, size_t n,
                      uint8_t *dst, size_t dcap) {
  memset(dst, 0xA5, dcap);
  copy_stream(dst + GUARD + doff, src + soff, n);
  assert_memory_equal(dst + GUARD + doff, src + soff, n);
  for (size_t i = 0; i < GUARD + doff; i++) assert_int_equal(dst[i], 0xA5);
  for (size_t i = GUARD + doff + n; i < dcap; i++)
    assert_int_equal(dst[i], 0xA5);
}

static void test_all_small_lengths_and_alignments(void **state) {
  (void)state;
  enum { MAXN = 1100 };
  size_t cap = 2 * GUARD + 64 + MAXN + 128;
  uint8_t *src = malloc(MAXN + 128), *dst = aligned_alloc(64, cap + 64 - cap % 64);
  assert_non_null(src);
  assert_non_null(dst);
  for (size_t i = 0; i < MAXN + 128; i++) src[i] = (uint8_t)(i * 31 + 7);
  for (size_t doff = 0; doff < 64; doff += 7)
    for (size_t soff = 0; soff < 64; soff += 13)
      for (size_t n = 0; n <= MAXN; n += (n < 300 ? 1 : 37))
        check_one(src, soff, doff, n, dst, cap);
  free(src);
  free(dst);
}

static void test_large_lengths(void **state) {
  (void)state;
  const size_t sizes[] = {4096, 65536 + 3, (1u << 20) - 1, (1u << 20) + 65,
                          (5u << 20) + 129};
  size_t maxn = (5u << 20) + 129;
  size_t cap = 2 * GUARD + 64 + maxn;
  uint8_t *src = malloc(maxn + 64), *dst = malloc(cap);
  assert_non_null(src);
  assert_non_null(dst);
  uint64_t x = 88172645463325252u;
  for (size_t i = 0; i < maxn + 64; i++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    src[i] = (uint8_t)x;
  }
  for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++)
    for (size_t doff = 0; doff < 64; doff += 21)
      check_one(src, (doff * 5) % 64, doff, sizes[k], dst, cap);
  free(src);
  free(dst);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_all_small_lengths_and_alignments),
      cmocka_unit_test(test_large_lengths),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
