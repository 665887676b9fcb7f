/*
 * test_chain_keys.c - cascade_chain_keys: deterministic prefix-chained
 * block keys from token ids.
 *
 * The golden vectors below were computed independently of the library with
 * Python's hashlib, straight from the definition in cascade.h:
 *
 *   import hashlib, struct
 *   def chain(tokens, tpb, seed=None):
 *       prev = seed if seed is not None else bytes(32)
 *       out = []
 *       for i in range(len(tokens) // tpb):
 *           blk = tokens[i*tpb:(i+1)*tpb]
 *           prev = hashlib.sha256(prev + b''.join(struct.pack('<I', t)
 *                                                 for t in blk)).digest()
 *           out.append(prev.hex())
 *       return out
 *   T = [1, 2, 3, 0xdeadbeef, 0x01020304, 0, 0xffffffff, 42, 7, 128000]
 *   chain(T, 4); chain(T, 4, bytes(range(32))); chain(T, 3); chain(T, 1)
 *   L = [(i * 2654435761) % 2**32 for i in range(64)]; chain(L, 16)
 *
 * Uses only the public header.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cascade.h"

#define KB CASCADE_CHAIN_KEY_BYTES

static const uint32_t T[10] = {1, 2,           3,  0xdeadbeefu, 0x01020304u,
                               0, 0xffffffffu, 42, 7,           128000};

/* chain(T, 4): two full blocks, the last two tokens ignored */
static const char *const V1[2] = {
    "9819f1fa7cefd22f2febdd37b08718873bc7a8df3cef40e6362c74cc2e66791d",
    "7fc31e2715fc4844f6318b8e686b0ad18a07cf7347fedc7e5fee91b7d68678fe",
};
/* chain(T, 4, seed = bytes 0..31) */
static const char *const V2[2] = {
    "1a081f3126f8cc55f29408839a04aa576c7cc449aeb44a1994ba4a6dfd15f89e",
    "3addd11ecc07d56d1a8262b3b5f53435367324d81735a01ecc98b9814d27ede6",
};
/* chain(T, 3): three full blocks, one token ignored */
static const char *const V3[3] = {
    "3db346a400ab6b8db792fcf156443a8885b27db208362dcf77084f8c7648e645",
    "1dc05c556760432db9be1996b70ead23a9d0b954654a066e72e97b668cf70b75",
    "596987d4dc685fbe8bb10b0c9dfc0ec587e0933bfa889d19d554e7f95481be75",
};
/* chain(L, 16) */
static const char *const V4[4] = {
    "333deb8588e6d96f0b7142208ca4696690743974cece136c6df32b9fbf5d844a",
    "e026a57549c5185722445d75eefe0a4b5730555367863688e3d44584781917d4",
    "cf2ca0a584ac93afb995a73ca2d4f94462c3c17c1ce11e054cdd57af884afec3",
    "1d9906d025069e5d21a845583fea9e458fa08db879a0540f430f57a10e83d1a7",
};
/* chain(T, 1), first three */
static const char *const V5[3] = {
    "71c99cc3bc21757feed5b712744ebb0f770d5c41d99189f9457495747bf11050",
    "a636de3ac1f5028cea2c2bb8947df03a611dda993ccfb7206e68524211683027",
    "f2032b5b5b68166de50faefebf08f31965507f5555eb836098863a12700dade7",
};

static void to_hex(const uint8_t *b, char out[2 * KB + 1]) {
  for (int i = 0; i < KB; i++)
    snprintf(out + 2 * i, 3, "%02x", b[i]);
}

static void check_keys(uint8_t (*keys)[KB], const char *const *want, size_t n) {
  for (size_t i = 0; i < n; i++) {
    char hex[2 * KB + 1];
    to_hex(keys[i], hex);
    if (strcmp(hex, want[i]) != 0)
      fail_msg("key[%zu] = %s, want %s", i, hex, want[i]);
  }
}

static void seq_L(uint32_t L[64]) {
  for (uint32_t i = 0; i < 64; i++)
    L[i] = (uint32_t)(i * 2654435761u);
}

static void test_golden_no_seed(void **state) {
  (void)state;
  uint8_t keys[4][KB];
  memset(keys, 0xA5, sizeof keys);
  assert_int_equal(cascade_chain_keys(T, 10, 4, NULL, keys, 4), 2);
  check_keys(keys, V1, 2);
  /* nothing written past the count */
  for (int i = 2; i < 4; i++)
    for (int j = 0; j < KB; j++)
      assert_int_equal(keys[i][j], 0xA5);

  assert_int_equal(cascade_chain_keys(T, 10, 3, NULL, keys, 4), 3);
  check_keys(keys, V3, 3);

  assert_int_equal(cascade_chain_keys(T, 10, 1, NULL, keys, 3), 10);
  check_keys(keys, V5, 3);

  uint32_t L[64];
  seq_L(L);
  assert_int_equal(cascade_chain_keys(L, 64, 16, NULL, keys, 4), 4);
  check_keys(keys, V4, 4);
}

static void test_golden_seed(void **state) {
  (void)state;
  uint8_t seed[KB], zero[KB];
  for (int i = 0; i < KB; i++)
    seed[i] = (uint8_t)i;
  memset(zero, 0, sizeof zero);
  uint8_t keys[2][KB], again[2][KB];
  assert_int_equal(cascade_chain_keys(T, 10, 4, seed, keys, 2), 2);
  check_keys(keys, V2, 2);
  /* a different seed gives different keys, every one of them */
  assert_int_equal(cascade_chain_keys(T, 10, 4, NULL, again, 2), 2);
  assert_memory_not_equal(keys[0], again[0], KB);
  assert_memory_not_equal(keys[1], again[1], KB);
  seed[31] ^= 1;
  assert_int_equal(cascade_chain_keys(T, 10, 4, seed, again, 2), 2);
  assert_memory_not_equal(keys[0], again[0], KB);
  assert_memory_not_equal(keys[1], again[1], KB);
  /* an all-zero seed is the same as no seed */
  assert_int_equal(cascade_chain_keys(T, 10, 4, zero, again, 2), 2);
  check_keys(again, V1, 2);
}

static void test_count_and_tail(void **state) {
  (void)state;
  uint8_t keys[12][KB];
  /* count = ntokens / tokens_per_block */
  const struct {
    size_t n, tpb;
    int want;
  } cases[] = {
      {10, 4, 2},  {8, 4, 2},   {7, 4, 1},   {4, 4, 1},  {3, 4, 0}, {0, 4, 0},
      {10, 1, 10}, {10, 10, 1}, {10, 11, 0}, {10, 5, 2}, {9, 3, 3},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    int rc = cascade_chain_keys(T, cases[i].n, cases[i].tpb, NULL, keys, 12);
    if (rc != cases[i].want)
      fail_msg("ntokens %zu tpb %zu: %d, want %d", cases[i].n, cases[i].tpb, rc,
               cases[i].want);
  }
  /* the partial tail does not affect the full blocks' keys */
  uint32_t t2[10];
  memcpy(t2, T, sizeof t2);
  t2[8] = 99;
  t2[9] = 100;
  assert_int_equal(cascade_chain_keys(t2, 10, 4, NULL, keys, 12), 2);
  check_keys(keys, V1, 2);
  assert_int_equal(cascade_chain_keys(T, 8, 4, NULL, keys, 12), 2);
  check_keys(keys, V1, 2);
  assert_int_equal(cascade_chain_keys(T, 9, 4, NULL, keys, 12), 2);
  check_keys(keys, V1, 2);
}

static void test_max_keys_smaller(void **state) {
  (void)state;
  uint32_t L[64];
  seq_L(L);
  uint8_t keys[4][KB];
  memset(keys, 0x5A, sizeof keys);
  /* 4 full blocks, room for 2: returns 4, writes 2 */
  assert_int_equal(cascade_chain_keys(L, 64, 16, NULL, keys, 2), 4);
  check_keys(keys, V4, 2);
  for (int i = 2; i < 4; i++)
    for (int j = 0; j < KB; j++)
      assert_int_equal(keys[i][j], 0x5A);
  /* room for 1 */
  memset(keys, 0x5A, sizeof keys);
  assert_int_equal(cascade_chain_keys(L, 64, 16, NULL, keys, 1), 4);
  check_keys(keys, V4, 1);
  for (int j = 0; j < KB; j++)
    assert_int_equal(keys[1][j], 0x5A);
  /* room for none: just the count (keys may then be NULL) */
  memset(keys, 0x5A, sizeof keys);
  assert_int_equal(cascade_chain_keys(L, 64, 16, NULL, keys, 0), 4);
  for (int j = 0; j < KB; j++)
    assert_int_equal(keys[0][j], 0x5A);
  assert_int_equal(cascade_chain_keys(L, 64, 16, NULL, NULL, 0), 4);
  /* no tokens: zero keys, tokens may be NULL */
  assert_int_equal(cascade_chain_keys(NULL, 0, 16, NULL, keys, 4), 0);
}

static void test_einval(void **state) {
  (void)state;
  uint8_t keys[4][KB];
  memset(keys, 0x77, sizeof keys);
  assert_int_equal(cascade_chain_keys(T, 10, 0, NULL, keys, 4), -EINVAL);
  assert_int_equal(cascade_chain_keys(T, 0, 0, NULL, keys, 4), -EINVAL);
  assert_int_equal(cascade_chain_keys(NULL, 10, 4, NULL, keys, 4), -EINVAL);
  assert_int_equal(cascade_chain_keys(T, 10, 4, NULL, NULL, 4), -EINVAL);
  assert_int_equal(cascade_chain_keys(NULL, 1, 1, NULL, NULL, 1), -EINVAL);
  /* nothing written on error */
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < KB; j++)
      assert_int_equal(keys[i][j], 0x77);
}

static void test_deterministic_and_chained(void **state) {
  (void)state;
  enum { N = 4096, TPB = 16 };
  uint32_t *tok = malloc(N * sizeof *tok);
  assert_non_null(tok);
  for (uint32_t i = 0; i < N; i++)
    tok[i] = i * 7919u + 13u;
  static uint8_t a[N / TPB][KB], b[N / TPB][KB], p[N / TPB][KB];
  assert_int_equal(cascade_chain_keys(tok, N, TPB, NULL, a, N / TPB), N / TPB);
  assert_int_equal(cascade_chain_keys(tok, N, TPB, NULL, b, N / TPB), N / TPB);
  assert_memory_equal(a, b, sizeof a);
  /* all keys distinct */
  for (int i = 1; i < N / TPB; i++)
    assert_memory_not_equal(a[i], a[i - 1], KB);
  /* a prefix of the tokens gives a prefix of the keys */
  assert_int_equal(
      cascade_chain_keys(tok, 100 * TPB + 3, TPB, NULL, p, N / TPB), 100);
  assert_memory_equal(p, a, 100 * KB);
  /* changing one token of block 50 leaves keys 0..49 and changes 50.. */
  tok[50 * TPB + 5] ^= 0x80000000u;
  assert_int_equal(cascade_chain_keys(tok, N, TPB, NULL, b, N / TPB), N / TPB);
  assert_memory_equal(b, a, 50 * KB);
  for (int i = 50; i < N / TPB; i++)
    assert_memory_not_equal(b[i], a[i], KB);
  /* key i depends on order of blocks, not just their set */
  uint32_t swapped[8] = {5, 6, 7, 8, 1, 2, 3, 4},
           orig[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  uint8_t ks[2][KB], ko[2][KB];
  assert_int_equal(cascade_chain_keys(swapped, 8, 4, NULL, ks, 2), 2);
  assert_int_equal(cascade_chain_keys(orig, 8, 4, NULL, ko, 2), 2);
  assert_memory_not_equal(ks[1], ko[1], KB);
  free(tok);
}

static void test_keys_usable_in_store(void **state) {
  (void)state;
  /* chain keys feed cascade_put / cascade_match_prefix directly */
  cascade_config *cfg = NULL;
  assert_int_equal(cascade_config_new(&cfg), 0);
  assert_int_equal(cascade_config_set(cfg, "dram.capacity", "1m"), 0);
  cascade *c = NULL;
  assert_int_equal(cascade_open(cfg, &c), 0);
  cascade_config_free(cfg);
  uint32_t L[64];
  seq_L(L);
  uint8_t keys[4][KB];
  assert_int_equal(cascade_chain_keys(L, 64, 16, NULL, keys, 4), 4);
  cascade_key ck[4];
  for (int i = 0; i < 4; i++) {
    ck[i].key = keys[i];
    ck[i].len = KB;
  }
  uint8_t v[256];
  memset(v, 1, sizeof v);
  for (int i = 0; i < 3; i++) {
    cascade_put_opts o;
    memset(&o, 0, sizeof o);
    if (i > 0) {
      o.parent = keys[i - 1];
      o.parent_len = KB;
    }
    v[0] = (uint8_t)i;
    assert_int_equal(cascade_put(c, "m", keys[i], KB, v, sizeof v, &o), 0);
  }
  assert_int_equal(cascade_match_prefix(c, "m", ck, 4), 3);
  cascade_close(c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_golden_no_seed),
      cmocka_unit_test(test_golden_seed),
      cmocka_unit_test(test_count_and_tail),
      cmocka_unit_test(test_max_keys_smaller),
      cmocka_unit_test(test_einval),
      cmocka_unit_test(test_deterministic_and_chained),
      cmocka_unit_test(test_keys_usable_in_store),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
