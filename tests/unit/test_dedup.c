/*
 * test_dedup.c - content-addressed deduplication: keys with equal bytes
 * share one stored block with a reference count; deletes and overwrites
 * drop references; "dedup"=false keeps copies; CASCADE_PUT_HAVE_CID skips
 * hashing; content ids are the first 16 bytes of SHA-256.
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
#include "testutil.h"

/* ---- helpers ----------------------------------------------------------- */

/* Every key of these tests lives in namespace "d". */
static int put_s(cascade *c, const char *key, const void *v, size_t vlen,
                 const cascade_put_opts *o) {
  return tu_put_s(c, "d", key, v, vlen, o);
}

static void check_value(cascade *c, const char *key, const void *v,
                        size_t vlen) {
  tu_check_value(c, "d", key, v, vlen);
}

static struct cascade_key_info info_of(cascade *c, const char *key) {
  struct cascade_key_info ki;
  memset(&ki, 0xEE, sizeof ki);
  int rc = cascade_key_info(c, "d", key, strlen(key), &ki);
  if (rc != 0)
    fail_msg("key_info(%s) = %d", key, rc);
  return ki;
}

static void check_blocks(cascade *c, uint64_t blocks, uint64_t bytes,
                         uint64_t keys) {
  struct cascade_stats s = tu_stats_of(c);
  if (DRAM(s).blocks != blocks || DRAM(s).bytes != bytes || s.keys != keys)
    fail_msg("blocks/bytes/keys = %llu/%llu/%llu, want %llu/%llu/%llu",
             (unsigned long long)DRAM(s).blocks,
             (unsigned long long)DRAM(s).bytes, (unsigned long long)s.keys,
             (unsigned long long)blocks, (unsigned long long)bytes,
             (unsigned long long)keys);
}

static void hex_to_bytes(const char *hex, uint8_t *out, size_t n) {
  for (size_t i = 0; i < n; i++) {
    unsigned x;
    assert_int_equal(sscanf(hex + 2 * i, "%2x", &x), 1);
    out[i] = (uint8_t)x;
  }
}

/* ---- tests ----------------------------------------------------------------- */

static void test_shared_block_refs(void **state) {
  (void)state;
  cascade *c = tu_open_with("dram.capacity", "4m", NULL);
  const size_t n = 4096;
  uint8_t *v = malloc(n);
  assert_non_null(v);
  tu_fill(v, n, 1);
  cascade_cid cid;
  assert_int_equal(cascade_content_id(v, n, &cid), 0);

  assert_int_equal(put_s(c, "k1", v, n, NULL), 0);
  assert_int_equal(info_of(c, "k1").refs, 1);
  assert_int_equal(put_s(c, "k2", v, n, NULL), 0);
  struct cascade_key_info i1 = info_of(c, "k1"), i2 = info_of(c, "k2");
  assert_int_equal(i1.refs, 2);
  assert_int_equal(i2.refs, 2);
  assert_memory_equal(i1.cid.b, cid.b, CASCADE_CID_BYTES);
  assert_memory_equal(i2.cid.b, cid.b, CASCADE_CID_BYTES);
  check_blocks(c, 1, n, 2);
  struct cascade_stats s = tu_stats_of(c);
  assert_int_equal(s.dedup_hits, 1);
  assert_int_equal(s.dedup_bytes_saved, n);

  /* both views show the same stored copy */
  cascade_view a, b;
  assert_int_equal(cascade_get_view(c, "d", "k1", 2, &a), 0);
  assert_int_equal(cascade_get_view(c, "d", "k2", 2, &b), 0);
  assert_ptr_equal(a.data, b.data);
  assert_int_equal(info_of(c, "k1").pins, 2);
  cascade_view_release(c, &a);
  cascade_view_release(c, &b);

  /* delete k1: k2 still byte-exact, refs 1 */
  assert_int_equal(cascade_delete(c, "d", "k1", 2), 0);
  check_value(c, "k2", v, n);
  assert_int_equal(info_of(c, "k2").refs, 1);
  check_blocks(c, 1, n, 1);
  s = tu_stats_of(c);
  assert_int_equal(s.dedup_bytes_saved, 0);
  assert_int_equal(s.dedup_hits, 1); /* a counter of events: stays */

  /* delete k2: block gone */
  assert_int_equal(cascade_delete(c, "d", "k2", 2), 0);
  check_blocks(c, 0, 0, 0);
  free(v);
  cascade_close(c);
}

static void test_overwrite_moves_refs(void **state) {
  (void)state;
  cascade *c = tu_open_with("dram.capacity", "4m", NULL);
  uint8_t V[1024], W[2048], X[512];
  tu_fill(V, sizeof V, 2);
  tu_fill(W, sizeof W, 3);
  tu_fill(X, sizeof X, 4);
  /* k1,k2,k3 -> V ; k4 -> W */
  assert_int_equal(put_s(c, "k1", V, sizeof V, NULL), 0);
  assert_int_equal(put_s(c, "k2", V, sizeof V, NULL), 0);
  assert_int_equal(put_s(c, "k3", V, sizeof V, NULL), 0);
  assert_int_equal(put_s(c, "k4", W, sizeof W, NULL), 0);
  check_blocks(c, 2, 1024 + 2048, 4);
  assert_int_equal(info_of(c, "k1").refs, 3);
  assert_int_equal(info_of(c, "k4").refs, 1);
  assert_int_equal(tu_stats_of(c).dedup_bytes_saved, 2 * 1024);

  /* overwrite k2 with W: V refs 2, W refs 2, still two blocks */
  assert_int_equal(put_s(c, "k2", W, sizeof W, NULL), 0);
  check_value(c, "k2", W, sizeof W);
  check_value(c, "k1", V, sizeof V);
  assert_int_equal(info_of(c, "k1").refs, 2);
  assert_int_equal(info_of(c, "k3").refs, 2);
  assert_int_equal(info_of(c, "k2").refs, 2);
  assert_int_equal(info_of(c, "k4").refs, 2);
  check_blocks(c, 2, 1024 + 2048, 4);
  assert_int_equal(tu_stats_of(c).dedup_bytes_saved, 1024 + 2048);

  /* overwrite k1 and k3 with X: V is gone, X has 2 refs */
  assert_int_equal(put_s(c, "k1", X, sizeof X, NULL), 0);
  check_blocks(c, 3, 1024 + 2048 + 512, 4);
  assert_int_equal(info_of(c, "k3").refs, 1);
  check_value(c, "k3", V, sizeof V);
  assert_int_equal(put_s(c, "k3", X, sizeof X, NULL), 0);
  check_blocks(c, 2, 2048 + 512, 4);
  assert_int_equal(info_of(c, "k1").refs, 2);
  check_value(c, "k1", X, sizeof X);
  check_value(c, "k3", X, sizeof X);
  check_value(c, "k2", W, sizeof W);
  check_value(c, "k4", W, sizeof W);

  /* overwrite a key with its own content: nothing changes */
  assert_int_equal(put_s(c, "k4", W, sizeof W, NULL), 0);
  check_blocks(c, 2, 2048 + 512, 4);
  assert_int_equal(info_of(c, "k4").refs, 2);

  /* delete everything */
  const char *keys[] = {"k1", "k2", "k3", "k4"};
  for (int i = 0; i < 4; i++)
    assert_int_equal(cascade_delete(c, "d", keys[i], 2), 0);
  check_blocks(c, 0, 0, 0);
  struct cascade_stats s = tu_stats_of(c);
  assert_int_equal(s.dedup_bytes_saved, 0);
  assert_int_equal(s.dram_free_bytes, 4u << 20);
  cascade_close(c);
}

static void test_many_refs(void **state) {
  (void)state;
  cascade *c = tu_open_with("dram.capacity", "4m", NULL);
  uint8_t V[640];
  tu_fill(V, sizeof V, 5);
  char key[16];
  for (int i = 0; i < 100; i++) {
    snprintf(key, sizeof key, "r%d", i);
    assert_int_equal(put_s(c, key, V, sizeof V, NULL), 0);
  }
  check_blocks(c, 1, sizeof V, 100);
  assert_int_equal(info_of(c, "r57").refs, 100);
  struct cascade_stats s = tu_stats_of(c);
  assert_int_equal(s.dedup_hits, 99);
  assert_int_equal(s.dedup_bytes_saved, 99 * sizeof V);
  for (int i = 0; i < 100; i += 2) {
    snprintf(key, sizeof key, "r%d", i);
    assert_int_equal(cascade_delete(c, "d", key, strlen(key)), 0);
  }
  assert_int_equal(info_of(c, "r57").refs, 50);
  check_blocks(c, 1, sizeof V, 50);
  for (int i = 1; i < 100; i += 2) {
    snprintf(key, sizeof key, "r%d", i);
    check_value(c, key, V, sizeof V);
  }
  cascade_close(c);
}

static void test_zero_length_dedup(void **state) {
  (void)state;
  cascade *c = tu_open_with("dram.capacity", "4m", NULL);
  assert_int_equal(put_s(c, "e1", "", 0, NULL), 0);
  assert_int_equal(put_s(c, "e2", "", 0, NULL), 0);
  struct cascade_key_info ki = info_of(c, "e1");
  assert_int_equal(ki.vlen, 0);
  assert_int_equal(ki.refs, 2);
  /* SHA-256("") = e3b0c442 98fc1c14 9afbf4c8 996fb924 27ae41e4 ... */
  uint8_t want[16];
  hex_to_bytes("e3b0c44298fc1c149afbf4c8996fb924", want, 16);
  assert_memory_equal(ki.cid.b, want, 16);
  check_value(c, "e2", "", 0);
  cascade_close(c);
}

static void test_dedup_disabled(void **state) {
  (void)state;
  cascade *c = tu_open_with("dram.capacity", "4m", "dedup", "false", NULL);
  const size_t n = 2048;
  uint8_t V[2048];
  tu_fill(V, n, 6);
  assert_int_equal(put_s(c, "k1", V, n, NULL), 0);
  assert_int_equal(put_s(c, "k2", V, n, NULL), 0);
  assert_int_equal(put_s(c, "k3", V, n, NULL), 0);
  check_blocks(c, 3, 3 * n, 3);
  struct cascade_stats s = tu_stats_of(c);
  assert_int_equal(s.dedup_hits, 0);
  assert_int_equal(s.dedup_bytes_saved, 0);
  struct cascade_key_info i1 = info_of(c, "k1"), i2 = info_of(c, "k2");
  assert_int_equal(i1.refs, 1);
  assert_int_equal(i2.refs, 1);
  /* separate copies: separate views */
  cascade_view a, b;
  assert_int_equal(cascade_get_view(c, "d", "k1", 2, &a), 0);
  assert_int_equal(cascade_get_view(c, "d", "k2", 2, &b), 0);
  assert_ptr_not_equal(a.data, b.data);
  assert_memory_equal(a.data, V, n);
  assert_memory_equal(b.data, V, n);
  cascade_view_release(c, &a);
  cascade_view_release(c, &b);
  assert_int_equal(cascade_delete(c, "d", "k1", 2), 0);
  check_blocks(c, 2, 2 * n, 2);
  check_value(c, "k2", V, n);
  check_value(c, "k3", V, n);
  cascade_close(c);
}

static void test_dedup_disabled_reports_cid(void **state) {
  (void)state;
  /* cascade.h: with dedup off the store does not hash, so the ids it
   * reports are all zeros unless the put supplied one (HAVE_CID).  The store
   * is closed before asserting so that a failure reports no leak. */
  cascade *c = tu_open_with("dram.capacity", "4m", "dedup", "false", NULL);
  const size_t n = 2048;
  uint8_t V[2048];
  tu_fill(V, n, 6);
  cascade_cid cid, vcid, zero;
  memset(&zero, 0, sizeof zero);
  assert_int_equal(cascade_content_id(V, n, &cid), 0);
  cascade_put_opts o;
  memset(&o, 0, sizeof o);
  o.flags = CASCADE_PUT_HAVE_CID;
  o.cid = cid;
  assert_int_equal(put_s(c, "k1", V, n, NULL), 0);
  assert_int_equal(put_s(c, "k2", V, n, &o), 0);
  struct cascade_key_info i1 = info_of(c, "k1");
  struct cascade_key_info i2 = info_of(c, "k2");
  cascade_view view;
  assert_int_equal(cascade_get_view(c, "d", "k1", 2, &view), 0);
  vcid = view.cid;
  cascade_view_release(c, &view);
  cascade_close(c);
  char want[CASCADE_CID_HEX], zhex[CASCADE_CID_HEX], got_info[CASCADE_CID_HEX],
      got_view[CASCADE_CID_HEX], got2[CASCADE_CID_HEX];
  cascade_cid_hex(&cid, want);
  cascade_cid_hex(&zero, zhex);
  cascade_cid_hex(&i1.cid, got_info);
  cascade_cid_hex(&vcid, got_view);
  cascade_cid_hex(&i2.cid, got2);
  assert_string_equal(got_info, zhex);
  assert_string_equal(got_view, zhex);
  assert_string_equal(got2, want); /* supplied id is kept */
}

static void test_have_cid(void **state) {
  (void)state;
  cascade *c = tu_open_with("dram.capacity", "4m", NULL);
  const size_t n = 3000;
  uint8_t V[3000], W[3000];
  tu_fill(V, n, 7);
  tu_fill(W, n, 8);
  cascade_put_opts o;
  memset(&o, 0, sizeof o);
  o.flags = CASCADE_PUT_HAVE_CID;

  /* hashed first, then HAVE_CID with the same id: dedups */
  assert_int_equal(put_s(c, "hashed", V, n, NULL), 0);
  assert_int_equal(cascade_content_id(V, n, &o.cid), 0);
  assert_int_equal(put_s(c, "given", V, n, &o), 0);
  check_blocks(c, 1, n, 2);
  struct cascade_stats s = tu_stats_of(c);
  assert_int_equal(s.dedup_hits, 1);
  assert_int_equal(info_of(c, "given").refs, 2);
  assert_memory_equal(info_of(c, "given").cid.b, o.cid.b, CASCADE_CID_BYTES);
  check_value(c, "given", V, n);

  /* HAVE_CID first, then a hashed put: dedups too */
  assert_int_equal(cascade_content_id(W, n, &o.cid), 0);
  assert_int_equal(put_s(c, "given2", W, n, &o), 0);
  assert_int_equal(put_s(c, "hashed2", W, n, NULL), 0);
  check_blocks(c, 2, 2 * n, 4);
  s = tu_stats_of(c);
  assert_int_equal(s.dedup_hits, 2);
  assert_int_equal(info_of(c, "hashed2").refs, 2);
  check_value(c, "hashed2", W, n);

  /* the caller's id is what is stored: key_info and views report it */
  cascade_view view;
  assert_int_equal(cascade_get_view(c, "d", "given2", 6, &view), 0);
  assert_memory_equal(view.cid.b, o.cid.b, CASCADE_CID_BYTES);
  cascade_view_release(c, &view);
  cascade_close(c);
}

static void test_content_id_sha256(void **state) {
  (void)state;
  cascade_cid cid;
  uint8_t want[16];
  char hex[CASCADE_CID_HEX];

  /* SHA-256("abc") = ba7816bf8f01cfea414140de5dae2223 b00361a3... */
  memset(&cid, 0, sizeof cid);
  assert_int_equal(cascade_content_id("abc", 3, &cid), 0);
  hex_to_bytes("ba7816bf8f01cfea414140de5dae2223", want, 16);
  assert_memory_equal(cid.b, want, 16);
  memset(hex, 'Z', sizeof hex);
  cascade_cid_hex(&cid, hex);
  assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223");
  assert_int_equal(strlen(hex), 32);

  /* SHA-256("") */
  assert_int_equal(cascade_content_id("", 0, &cid), 0);
  cascade_cid_hex(&cid, hex);
  assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb924");

  /* SHA-256 of the 448-bit NIST message (two blocks of padding) */
  const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  assert_int_equal(cascade_content_id(m, strlen(m), &cid), 0);
  cascade_cid_hex(&cid, hex);
  assert_string_equal(hex, "248d6a61d20638b8e5c026930c3e6039");

  /* one million 'a' (NIST): cdc76e5c 9914fb92 81a1c7e2 84d73e67 ... */
  char *big = malloc(1000000);
  assert_non_null(big);
  memset(big, 'a', 1000000);
  assert_int_equal(cascade_content_id(big, 1000000, &cid), 0);
  cascade_cid_hex(&cid, hex);
  assert_string_equal(hex, "cdc76e5c9914fb9281a1c7e284d73e67");
  free(big);

  /* hex is lower case, covers every nibble */
  for (int i = 0; i < 16; i++)
    cid.b[i] = (uint8_t)(i * 0x11);
  cascade_cid_hex(&cid, hex);
  assert_string_equal(hex, "00112233445566778899aabbccddeeff");
  for (int i = 0; i < 16; i++)
    cid.b[i] = (uint8_t)(0xf0 | (15 - i));
  cascade_cid_hex(&cid, hex);
  assert_string_equal(hex, "fffefdfcfbfaf9f8f7f6f5f4f3f2f1f0");
}

static void test_content_id_matches_store(void **state) {
  (void)state;
  cascade *c = tu_open_with("dram.capacity", "4m", NULL);
  assert_int_equal(put_s(c, "abc", "abc", 3, NULL), 0);
  uint8_t want[16];
  hex_to_bytes("ba7816bf8f01cfea414140de5dae2223", want, 16);
  assert_memory_equal(info_of(c, "abc").cid.b, want, 16);
  cascade_view view;
  assert_int_equal(cascade_get_view(c, "d", "abc", 3, &view), 0);
  assert_memory_equal(view.cid.b, want, 16);
  assert_int_equal(view.len, 3);
  assert_memory_equal(view.data, "abc", 3);
  cascade_view_release(c, &view);
  cascade_close(c);
}

/* A batch of large values is hashed on the work pool's threads
 * (pool.threads): every key's content id is the SHA-256 of its own value,
 * equal values in the batch share one block, exactly as with the caller
 * hashing alone (pool.threads 1), for several batch sizes. */
static void test_hash_pool_batch(void **state) {
  (void)state;
  enum { N = 24, LEN = 96 << 10 };
  uint8_t *v = malloc((size_t)N * LEN);
  assert_non_null(v);
  for (int i = 0; i < N; i++) /* values 20..23 repeat values 0..3 */
    tu_fill(v + (size_t)i * LEN, LEN, (uint64_t)(i % 20));
  static const char *const threads[] = {"1", "2", "4", "16"};
  for (size_t t = 0; t < sizeof threads / sizeof threads[0]; t++) {
    cascade *c = tu_open_with("dram.capacity", "8m", "pool.threads",
                              threads[t], NULL);
    for (int n = 1; n <= N; n += 23) { /* a lone value, then a batch */
      cascade_put_item it[N];
      char keys[N][16];
      for (int i = 0; i < n; i++) {
        snprintf(keys[i], sizeof keys[i], "h%d-%d", n, i);
        it[i] = (cascade_put_item){keys[i], strlen(keys[i]),
                                   v + (size_t)i * LEN, LEN, NULL, 99};
      }
      assert_int_equal(cascade_put_batch(c, "d", it, (size_t)n), n);
      for (int i = 0; i < n; i++) {
        cascade_cid want;
        assert_int_equal(it[i].rc, 0);
        assert_int_equal(
            cascade_content_id(v + (size_t)i * LEN, LEN, &want), 0);
        assert_memory_equal(info_of(c, keys[i]).cid.b, want.b,
                            CASCADE_CID_BYTES);
        check_value(c, keys[i], v + (size_t)i * LEN, LEN);
      }
    }
    /* 1 + 24 keys over 20 distinct values: the lone value is value 0 */
    struct cascade_stats st = tu_stats_of(c);
    assert_int_equal(DRAM(st).blocks, 20);
    cascade_close(c);
  }
  free(v);
}

/* The content table under churn: thousands of contents in three namespaces
 * stored, deleted at random (through its growth and its deletions), then
 * every content still stored must be found again by a put of equal bytes
 * (a dedup hit, no new block) and every deleted one must not. */
static void test_content_table_churn(void **state) {
  (void)state;
  enum { N = 6000, V = 64 };
  static const char *const nss[3] = {"a", "b", "c"};
  cascade *c = tu_open_with("dram.capacity", "4m", NULL);
  static uint8_t alive[N];
  uint64_t seed = 99;
  uint8_t v[V];
  char key[32];
  for (int i = 0; i < N; i++) {
    tu_fill(v, V, (uint64_t)i);
    snprintf(key, sizeof key, "k%d", i);
    assert_int_equal(cascade_put(c, nss[i % 3], key, strlen(key), v, V, NULL),
                     0);
    alive[i] = 1;
    if (i > 10 && tu_splitmix(&seed) % 2 == 0) { /* delete an earlier one */
      int j = (int)(tu_splitmix(&seed) % (uint64_t)i);
      if (alive[j]) {
        snprintf(key, sizeof key, "k%d", j);
        assert_int_equal(cascade_delete(c, nss[j % 3], key, strlen(key)), 0);
        alive[j] = 0;
      }
    }
  }
  struct cascade_stats st = tu_stats_of(c);
  uint64_t blocks = DRAM(st).blocks, hits = st.dedup_hits;
  uint64_t nalive = 0;
  for (int i = 0; i < N; i++) nalive += alive[i];
  assert_int_equal(blocks, nalive);
  /* the stored ones first (new entries could fill the holes deletions
   * left and hide a broken deletion), then the deleted ones */
  for (int pass = 1; pass >= 0; pass--) {
    for (int i = 0; i < N; i++) {
      if (alive[i] != pass) continue;
      tu_fill(v, V, (uint64_t)i);
      snprintf(key, sizeof key, "again%d", i);
      assert_int_equal(
          cascade_put(c, nss[i % 3], key, strlen(key), v, V, NULL), 0);
      st = tu_stats_of(c);
      if (pass) {
        assert_int_equal(st.dedup_hits, ++hits);
        assert_int_equal(DRAM(st).blocks, blocks);
      } else {
        assert_int_equal(st.dedup_hits, hits);
        assert_int_equal(DRAM(st).blocks, ++blocks);
      }
    }
  }
  cascade_close(c);
}

static void test_dedup_keeps_first_attributes_separate(void **state) {
  (void)state;
  /* sharing bytes does not share per-key attributes (TTL) */
  cascade *c = tu_open_with("dram.capacity", "4m", NULL);
  uint8_t V[256];
  tu_fill(V, sizeof V, 9);
  cascade_put_opts o;
  memset(&o, 0, sizeof o);
  o.ttl_ms = 600000;
  assert_int_equal(put_s(c, "ttl", V, sizeof V, &o), 0);
  assert_int_equal(put_s(c, "plain", V, sizeof V, NULL), 0);
  assert_int_equal(info_of(c, "plain").refs, 2);
  assert_int_equal(info_of(c, "plain").ttl_ms, -1);
  assert_true(info_of(c, "ttl").ttl_ms > 0);
  check_blocks(c, 1, sizeof V, 2);
  cascade_close(c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_shared_block_refs),
      cmocka_unit_test(test_overwrite_moves_refs),
      cmocka_unit_test(test_many_refs),
      cmocka_unit_test(test_zero_length_dedup),
      cmocka_unit_test(test_dedup_disabled),
      cmocka_unit_test(test_dedup_disabled_reports_cid),
      cmocka_unit_test(test_have_cid),
      cmocka_unit_test(test_content_id_sha256),
      cmocka_unit_test(test_content_id_matches_store),
      cmocka_unit_test(test_dedup_keeps_first_attributes_separate),
      cmocka_unit_test(test_content_table_churn),
      cmocka_unit_test(test_hash_pool_batch),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
