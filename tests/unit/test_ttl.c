/*
 * test_ttl.c - time to live: ttl_ms on put, key_info's remaining ttl,
 * cascade_set_ttl (0 = persist), the expired counter, expired keys treated
 * as absent by every read path, and expired blocks reclaimed before any
 * live block under memory pressure.
 *
 * The only test binary that sleeps.  TTLs are 100-200 ms and every wait
 * past a TTL is at least twice the TTL, so a loaded machine (sanitizers,
 * two cores) does not make the tests flaky.  Uses only the public header.
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
#include <time.h>

#include "cascade.h"
#include "testutil.h"

#define BLK 4096u
#define NBLK 4
#define CAP_STR "16k"

/* ---- helpers ----------------------------------------------------------- */

static void sleep_ms(unsigned ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0) {
  }
}

static int put_ttl(cascade *c, const char *key, size_t len, uint64_t ttl,
                   const cascade_put_opts *base) {
  uint8_t v[BLK];
  tu_fill(v, len, tu_seed_of(key));
  cascade_put_opts o;
  if (base)
    o = *base;
  else
    memset(&o, 0, sizeof o);
  o.ttl_ms = ttl;
  return cascade_put(c, NULL, key, strlen(key), v, len, &o);
}

static void must_put(cascade *c, const char *key, size_t len, uint64_t ttl) {
  int rc = put_ttl(c, key, len, ttl, NULL);
  if (rc != 0)
    fail_msg("put(%s) = %d", key, rc);
}

static void must_be_there(cascade *c, const char *key, size_t len) {
  uint8_t v[BLK], buf[BLK];
  tu_fill(v, len, tu_seed_of(key));
  size_t got = 0;
  int rc = cascade_get(c, NULL, key, strlen(key), buf, sizeof buf, &got);
  if (rc != 0)
    fail_msg("%s should be present, get = %d", key, rc);
  assert_int_equal(got, len);
  assert_memory_equal(buf, v, len);
}

static void must_be_expired(cascade *c, const char *key) {
  uint8_t buf[BLK];
  size_t got = 0;
  size_t kl = strlen(key);
  int rc = cascade_get(c, NULL, key, kl, buf, sizeof buf, &got);
  if (rc != -ENOENT)
    fail_msg("%s should have expired, get = %d", key, rc);
  assert_int_equal(cascade_exists(c, NULL, key, kl), 0);
  struct cascade_key_info ki;
  assert_int_equal(cascade_key_info(c, NULL, key, kl, &ki), -ENOENT);
  cascade_view view;
  assert_int_equal(cascade_get_view(c, NULL, key, kl, &view), -ENOENT);
}

static int64_t ttl_left(cascade *c, const char *key) {
  struct cascade_key_info ki;
  int rc = cascade_key_info(c, NULL, key, strlen(key), &ki);
  if (rc != 0)
    fail_msg("key_info(%s) = %d", key, rc);
  return ki.ttl_ms;
}

/* ---- tests ----------------------------------------------------------------- */

static void test_ttl_expires(void **state) {
  (void)state;
  cascade *c = tu_open_with("dram.capacity", "1m", NULL);
  uint64_t t0 = tu_now_ms();
  must_put(c, "short", 1000, 200);
  must_put(c, "forever", 1000, 0);
  /* present before */
  must_be_there(c, "short", 1000);
  assert_int_equal(cascade_exists(c, NULL, "short", 5), 1);
  int64_t left = ttl_left(c, "short");
  assert_true(left > 0 && left <= 200);
  if (tu_now_ms() - t0 > 150) { /* machine too slow to tell */
    cascade_close(c);
    skip();
  }
  /* absent after */
  sleep_ms(500);
  must_be_expired(c, "short");
  must_be_there(c, "forever", 1000);
  assert_int_equal(ttl_left(c, "forever"), -1);
  assert_int_equal(cascade_delete(c, NULL, "short", 5), -ENOENT);
  assert_int_equal(cascade_set_ttl(c, NULL, "short", 5, 1000), -ENOENT);
  assert_int_equal(cascade_set_priority(c, NULL, "short", 5, 1), -ENOENT);
  struct cascade_stats s = tu_stats_of(c);
  assert_int_equal(s.expired, 1);
  assert_int_equal(s.keys, 1);
  assert_int_equal(DRAM(s).blocks, 1);
  assert_int_equal(DRAM(s).bytes, 1000);
  /* the key can be stored again */
  must_put(c, "short", 1000, 0);
  must_be_there(c, "short", 1000);
  cascade_close(c);
}

static void test_ttl_decreasing(void **state) {
  (void)state;
  cascade *c = tu_open_with("dram.capacity", "1m", NULL);
  must_put(c, "k", 100, 60000);
  int64_t t1 = ttl_left(c, "k");
  assert_true(t1 > 50000 && t1 <= 60000);
  sleep_ms(120);
  int64_t t2 = ttl_left(c, "k");
  if (!(t2 <= t1 - 100 && t2 > 40000))
    fail_msg("ttl went from %lld to %lld after 120 ms", (long long)t1,
             (long long)t2);
  sleep_ms(60);
  int64_t t3 = ttl_left(c, "k");
  assert_true(t3 < t2);
  must_be_there(c, "k", 100);
  cascade_close(c);
}

static void test_set_ttl(void **state) {
  (void)state;
  cascade *c = tu_open_with("dram.capacity", "1m", NULL);
  must_put(c, "k", 500, 0);
  assert_int_equal(ttl_left(c, "k"), -1);
  /* add an expiry */
  assert_int_equal(cascade_set_ttl(c, NULL, "k", 1, 200), 0);
  int64_t left = ttl_left(c, "k");
  assert_true(left > 0 && left <= 200);
  /* remove it again: 0 = persist */
  assert_int_equal(cascade_set_ttl(c, NULL, "k", 1, 0), 0);
  assert_int_equal(ttl_left(c, "k"), -1);
  sleep_ms(500);
  must_be_there(c, "k", 500);
  assert_int_equal(tu_stats_of(c).expired, 0);
  /* replace a long expiry with a short one */
  assert_int_equal(cascade_set_ttl(c, NULL, "k", 1, 600000), 0);
  left = ttl_left(c, "k");
  assert_true(left > 590000 && left <= 600000);
  assert_int_equal(cascade_set_ttl(c, NULL, "k", 1, 200), 0);
  left = ttl_left(c, "k");
  assert_true(left > 0 && left <= 200);
  sleep_ms(500);
  must_be_expired(c, "k");
  assert_int_equal(tu_stats_of(c).expired, 1);
  assert_int_equal(cascade_set_ttl(c, NULL, "nope", 4, 100), -ENOENT);
  assert_int_equal(cascade_set_ttl(c, NULL, "k", 1, 100), -ENOENT);
  cascade_close(c);
}

static void test_overwrite_resets_ttl(void **state) {
  (void)state;
  cascade *c = tu_open_with("dram.capacity", "1m", NULL);
  must_put(c, "k", 300, 200);
  /* a plain overwrite (no KEEPTTL, ttl 0) persists the key */
  must_put(c, "k", 300, 0);
  assert_int_equal(ttl_left(c, "k"), -1);
  /* KEEPTTL keeps a short expiry */
  must_put(c, "j", 300, 200);
  cascade_put_opts keep;
  memset(&keep, 0, sizeof keep);
  keep.flags = CASCADE_PUT_KEEPTTL;
  assert_int_equal(put_ttl(c, "j", 200, 0, &keep), 0);
  int64_t left = ttl_left(c, "j");
  assert_true(left > 0 && left <= 200);
  must_be_there(c, "j", 200);
  sleep_ms(500);
  must_be_there(c, "k", 300);
  must_be_expired(c, "j");
  assert_int_equal(tu_stats_of(c).expired, 1);
  cascade_close(c);
}

static void test_expired_everywhere_absent(void **state) {
  (void)state;
  cascade *c = tu_open_with("dram.capacity", "1m", NULL);
  /* chain c0 c1 c2 c3 with c1 short-lived */
  must_put(c, "c0", 64, 0);
  must_put(c, "c1", 64, 200);
  must_put(c, "c2", 64, 0);
  must_put(c, "c3", 64, 0);
  cascade_key keys[4] = {{"c0", 2}, {"c1", 2}, {"c2", 2}, {"c3", 2}};
  assert_int_equal(cascade_match_prefix(c, NULL, keys, 4), 4);
  sleep_ms(500);
  assert_int_equal(cascade_match_prefix(c, NULL, keys, 4), 1);
  uint8_t bufs[4][64];
  cascade_get_item it[4];
  memset(it, 0, sizeof it);
  for (int i = 0; i < 4; i++) {
    it[i].key = keys[i].key;
    it[i].klen = 2;
    it[i].buf = bufs[i];
    it[i].cap = 64;
  }
  assert_int_equal(cascade_get_batch(c, NULL, it, 4), 3);
  assert_int_equal(it[1].rc, -ENOENT);
  /* NX treats an expired key as absent, XX as absent too */
  cascade_put_opts nx;
  memset(&nx, 0, sizeof nx);
  nx.flags = CASCADE_PUT_NX;
  must_put(c, "x1", 64, 100);
  must_put(c, "x2", 64, 100);
  sleep_ms(300);
  assert_int_equal(put_ttl(c, "x1", 64, 0, &nx), 0);
  must_be_there(c, "x1", 64);
  cascade_put_opts xx;
  memset(&xx, 0, sizeof xx);
  xx.flags = CASCADE_PUT_XX;
  assert_int_equal(put_ttl(c, "x2", 64, 0, &xx), -ENOENT);
  assert_int_equal(cascade_exists(c, NULL, "x2", 2), 0);
  cascade_close(c);
}

static void test_expired_counter(void **state) {
  (void)state;
  cascade *c = tu_open_with("dram.capacity", "1m", NULL);
  must_put(c, "t0", 128, 100);
  must_put(c, "t1", 192, 100);
  must_put(c, "t2", 256, 100);
  must_put(c, "p0", 320, 0);
  must_put(c, "p1", 384, 0);
  assert_int_equal(tu_stats_of(c).expired, 0);
  sleep_ms(350);
  must_be_expired(c, "t0");
  must_be_expired(c, "t1");
  must_be_expired(c, "t2");
  must_be_there(c, "p0", 320);
  must_be_there(c, "p1", 384);
  struct cascade_stats s = tu_stats_of(c);
  assert_int_equal(s.expired, 3);
  assert_int_equal(s.keys, 2);
  assert_int_equal(DRAM(s).blocks, 2);
  assert_int_equal(DRAM(s).bytes, 320 + 384);
  assert_int_equal(s.deletes, 0);
  /* repeated reads of an expired key do not count it again */
  must_be_expired(c, "t0");
  assert_int_equal(tu_stats_of(c).expired, 3);
  cascade_close(c);
}

static void test_stats_count_only_live_keys(void **state) {
  (void)state;
  /* no read touches the expired keys: stats alone must not count them */
  cascade *c = tu_open_with("dram.capacity", "1m", NULL);
  must_put(c, "t0", 128, 100);
  must_put(c, "t1", 192, 100);
  must_put(c, "p0", 320, 0);
  assert_int_equal(tu_stats_of(c).keys, 3);
  sleep_ms(350);
  struct cascade_stats s = tu_stats_of(c);
  assert_int_equal(s.keys, 1);
  assert_int_equal(s.expired, 2);
  assert_int_equal(DRAM(s).blocks, 1);
  assert_int_equal(DRAM(s).bytes, 320);
  cascade_close(c);
}

static void test_expired_shared_block(void **state) {
  (void)state;
  /* two keys share bytes; one expires: the other keeps the block */
  cascade *c = tu_open_with("dram.capacity", "1m", NULL);
  must_put(c, "a", 1024, 100);
  uint8_t v[1024];
  tu_fill(v, sizeof v, tu_seed_of("a"));
  assert_int_equal(cascade_put(c, NULL, "b", 1, v, sizeof v, NULL), 0);
  struct cascade_key_info ki;
  assert_int_equal(cascade_key_info(c, NULL, "b", 1, &ki), 0);
  assert_int_equal(ki.refs, 2);
  assert_int_equal(ki.ttl_ms, -1);
  sleep_ms(300);
  must_be_expired(c, "a");
  uint8_t buf[1024];
  size_t got;
  assert_int_equal(cascade_get(c, NULL, "b", 1, buf, sizeof buf, &got), 0);
  assert_memory_equal(buf, v, sizeof v);
  assert_int_equal(cascade_key_info(c, NULL, "b", 1, &ki), 0);
  assert_int_equal(ki.refs, 1);
  struct cascade_stats s = tu_stats_of(c);
  assert_int_equal(DRAM(s).blocks, 1);
  assert_int_equal(s.keys, 1);
  cascade_close(c);
}

static void test_view_outlives_expiry(void **state) {
  (void)state;
  /* a held view keeps its bytes after the key's TTL passes */
  cascade *c = tu_open_with("dram.capacity", "1m", NULL);
  must_put(c, "v", 2048, 200);
  cascade_view view;
  assert_int_equal(cascade_get_view(c, NULL, "v", 1, &view), 0);
  sleep_ms(500);
  must_be_expired(c, "v");
  uint8_t want[2048];
  tu_fill(want, sizeof want, tu_seed_of("v"));
  assert_int_equal(view.len, sizeof want);
  assert_memory_equal(view.data, want, sizeof want);
  /* new puts may reuse space, but not the pinned bytes */
  for (int i = 0; i < 50; i++) {
    char key[16];
    snprintf(key, sizeof key, "x%d", i);
    must_put(c, key, 2048, 0);
  }
  assert_memory_equal(view.data, want, sizeof want);
  cascade_view_release(c, &view);
  struct cascade_stats s = tu_stats_of(c);
  assert_int_equal(s.views, 0);
  assert_int_equal(DRAM(s).blocks, 50);
  assert_int_equal(DRAM(s).bytes, 50 * 2048);
  cascade_close(c);
}

static void expired_reclaimed_first(const char *policy, int protect) {
  cascade *c = tu_open_with("dram.capacity", CAP_STR, "policy", policy, NULL);
  cascade_put_opts o;
  memset(&o, 0, sizeof o);
  if (protect) {
    o.flags = CASCADE_PUT_PREFIX;
    o.priority = CASCADE_PRIO_HIGH;
  }
  /* k0 is the oldest and least recently used; k2 is short-lived */
  must_put(c, "k0", BLK, 0);
  must_put(c, "k1", BLK, 0);
  assert_int_equal(put_ttl(c, "k2", BLK, 100, &o), 0);
  must_put(c, "k3", BLK, 0);
  sleep_ms(350);
  /* a fifth block needs room: the expired one goes, not k0 */
  must_put(c, "k4", BLK, 0);
  if (cascade_exists(c, NULL, "k0", 2) != 1)
    fail_msg("policy %s: live k0 was evicted while expired k2 was there",
             policy);
  must_be_there(c, "k0", BLK);
  must_be_there(c, "k1", BLK);
  must_be_there(c, "k3", BLK);
  must_be_there(c, "k4", BLK);
  must_be_expired(c, "k2");
  struct cascade_stats s = tu_stats_of(c);
  assert_int_equal(s.keys, 4);
  assert_int_equal(s.expired, 1);
  cascade_close(c);
}

static void test_expired_reclaimed_first_lru(void **state) {
  (void)state;
  expired_reclaimed_first("lru", 0);
}

static void test_expired_reclaimed_first_semantic(void **state) {
  (void)state;
  expired_reclaimed_first("semantic", 0);
}

static void test_expired_protected_reclaimed_first(void **state) {
  (void)state;
  /* an expired block is dead whatever its priority or prefix flag */
  expired_reclaimed_first("semantic", 1);
  expired_reclaimed_first("lru", 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_ttl_expires),
      cmocka_unit_test(test_ttl_decreasing),
      cmocka_unit_test(test_set_ttl),
      cmocka_unit_test(test_overwrite_resets_ttl),
      cmocka_unit_test(test_expired_everywhere_absent),
      cmocka_unit_test(test_expired_counter),
      cmocka_unit_test(test_stats_count_only_live_keys),
      cmocka_unit_test(test_expired_shared_block),
      cmocka_unit_test(test_view_outlives_expiry),
      cmocka_unit_test(test_expired_reclaimed_first_lru),
      cmocka_unit_test(test_expired_reclaimed_first_semantic),
      cmocka_unit_test(test_expired_protected_reclaimed_first),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
