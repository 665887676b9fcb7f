/*
 * test_namespace.c - namespaces are isolation domains: keys, reads, deletes,
 * prefix matches and deduplication never cross them; NULL and "" both mean
 * "default".  Uses only the public header.
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

/* ---- tests ----------------------------------------------------------------- */

static void test_isolation_get(void **state) {
  (void)state;
  cascade *c = tu_open_with("dram.capacity", "4m", NULL);
  uint8_t a[300], b[500], d[70];
  tu_fill(a, sizeof a, 1);
  tu_fill(b, sizeof b, 2);
  tu_fill(d, sizeof d, 3);
  assert_int_equal(tu_put_s(c, "model-a", "k", a, sizeof a, NULL), 0);
  tu_check_absent(c, "model-b", "k");
  tu_check_absent(c, NULL, "k");
  assert_int_equal(tu_put_s(c, "model-b", "k", b, sizeof b, NULL), 0);
  assert_int_equal(tu_put_s(c, NULL, "k", d, sizeof d, NULL), 0);
  tu_check_value(c, "model-a", "k", a, sizeof a);
  tu_check_value(c, "model-b", "k", b, sizeof b);
  tu_check_value(c, NULL, "k", d, sizeof d);
  /* namespace names are compared exactly */
  tu_check_absent(c, "model-A", "k");
  tu_check_absent(c, "model-", "k");
  tu_check_absent(c, "model-aa", "k");

  struct cascade_key_info ki;
  assert_int_equal(cascade_key_info(c, "model-a", "k", 1, &ki), 0);
  assert_int_equal(ki.vlen, sizeof a);
  assert_int_equal(cascade_key_info(c, "model-b", "k", 1, &ki), 0);
  assert_int_equal(ki.vlen, sizeof b);

  struct cascade_stats s = tu_stats_of(c);
  assert_int_equal(s.keys, 3);
  assert_int_equal(DRAM(s).blocks, 3);
  cascade_close(c);
}

static void test_isolation_delete(void **state) {
  (void)state;
  cascade *c = tu_open_with("dram.capacity", "4m", NULL);
  uint8_t a[300], b[300];
  tu_fill(a, sizeof a, 4);
  tu_fill(b, sizeof b, 5);
  assert_int_equal(tu_put_s(c, "x", "key", a, sizeof a, NULL), 0);
  assert_int_equal(tu_put_s(c, "y", "key", b, sizeof b, NULL), 0);
  assert_int_equal(cascade_delete(c, "x", "key", 3), 0);
  tu_check_absent(c, "x", "key");
  tu_check_value(c, "y", "key", b, sizeof b);
  assert_int_equal(cascade_delete(c, "x", "key", 3), -ENOENT);
  assert_int_equal(cascade_delete(c, "z", "key", 3), -ENOENT);
  tu_check_value(c, "y", "key", b, sizeof b);

  /* TTL and priority changes stay in their namespace too */
  assert_int_equal(tu_put_s(c, "x", "key", a, sizeof a, NULL), 0);
  assert_int_equal(cascade_set_ttl(c, "x", "key", 3, 600000), 0);
  assert_int_equal(cascade_set_priority(c, "x", "key", 3, CASCADE_PRIO_HIGH),
                   0);
  struct cascade_key_info ki;
  assert_int_equal(cascade_key_info(c, "y", "key", 3, &ki), 0);
  assert_int_equal(ki.ttl_ms, -1);
  assert_int_equal(ki.priority, CASCADE_PRIO_NORMAL);
  assert_int_equal(cascade_key_info(c, "x", "key", 3, &ki), 0);
  assert_true(ki.ttl_ms > 0);
  assert_int_equal(ki.priority, CASCADE_PRIO_HIGH);
  assert_int_equal(cascade_set_ttl(c, "w", "key", 3, 10), -ENOENT);
  assert_int_equal(cascade_set_priority(c, "w", "key", 3, 1), -ENOENT);
  cascade_close(c);
}

static void test_default_namespace(void **state) {
  (void)state;
  cascade *c = tu_open_with("dram.capacity", "4m", NULL);
  uint8_t a[100], b[100], d[100];
  tu_fill(a, sizeof a, 6);
  tu_fill(b, sizeof b, 7);
  tu_fill(d, sizeof d, 8);
  /* NULL, "" and "default" are one namespace */
  assert_int_equal(tu_put_s(c, NULL, "n", a, sizeof a, NULL), 0);
  tu_check_value(c, "", "n", a, sizeof a);
  tu_check_value(c, "default", "n", a, sizeof a);
  assert_int_equal(tu_put_s(c, "", "e", b, sizeof b, NULL), 0);
  tu_check_value(c, NULL, "e", b, sizeof b);
  tu_check_value(c, "default", "e", b, sizeof b);
  assert_int_equal(tu_put_s(c, "default", "d", d, sizeof d, NULL), 0);
  tu_check_value(c, NULL, "d", d, sizeof d);
  tu_check_value(c, "", "d", d, sizeof d);
  /* overwrite through one name, read through another */
  assert_int_equal(tu_put_s(c, "", "n", d, sizeof d, NULL), 0);
  tu_check_value(c, NULL, "n", d, sizeof d);
  /* delete through one name */
  assert_int_equal(cascade_delete(c, "default", "e", 1), 0);
  tu_check_absent(c, NULL, "e");
  tu_check_absent(c, "", "e");
  /* and it is a real namespace: not visible from others */
  tu_check_absent(c, "Default", "n");
  tu_check_absent(c, "other", "n");
  struct cascade_stats s = tu_stats_of(c);
  assert_int_equal(s.keys, 2);
  /* dedup inside "default" works across the three spellings */
  uint64_t hits0 = s.dedup_hits;
  assert_int_equal(tu_put_s(c, NULL, "copy", d, sizeof d, NULL), 0);
  s = tu_stats_of(c);
  assert_int_equal(s.dedup_hits, hits0 + 1);
  assert_int_equal(DRAM(s).blocks, 1);
  cascade_close(c);
}

static void test_namespace_names(void **state) {
  (void)state;
  cascade *c = tu_open_with("dram.capacity", "4m", NULL);
  uint8_t a[64], b[64];
  tu_fill(a, sizeof a, 9);
  tu_fill(b, sizeof b, 10);
  char ns255[CASCADE_MAX_NS + 1], ns255b[CASCADE_MAX_NS + 1];
  char ns256[CASCADE_MAX_NS + 2];
  memset(ns255, 'q', CASCADE_MAX_NS);
  ns255[CASCADE_MAX_NS] = 0;
  memcpy(ns255b, ns255, sizeof ns255);
  ns255b[CASCADE_MAX_NS - 1] = 'r'; /* differs only in the last byte */
  memset(ns256, 'q', CASCADE_MAX_NS + 1);
  ns256[CASCADE_MAX_NS + 1] = 0;
  assert_int_equal(tu_put_s(c, ns255, "k", a, sizeof a, NULL), 0);
  assert_int_equal(tu_put_s(c, ns255b, "k", b, sizeof b, NULL), 0);
  tu_check_value(c, ns255, "k", a, sizeof a);
  tu_check_value(c, ns255b, "k", b, sizeof b);
  assert_int_equal(tu_put_s(c, ns256, "k", a, sizeof a, NULL), -EINVAL);
  uint8_t buf[64];
  size_t got;
  assert_int_equal(cascade_get(c, ns256, "k", 1, buf, sizeof buf, &got),
                   -EINVAL);
  /* a 256-byte name is not silently truncated to the 255-byte one */
  assert_int_equal(cascade_exists(c, ns256, "k", 1), -EINVAL);
  /* one-byte names and names with odd characters */
  assert_int_equal(tu_put_s(c, "a", "k", a, sizeof a, NULL), 0);
  assert_int_equal(tu_put_s(c, "a/b:c d", "k", b, sizeof b, NULL), 0);
  tu_check_value(c, "a", "k", a, sizeof a);
  tu_check_value(c, "a/b:c d", "k", b, sizeof b);
  assert_int_equal(tu_stats_of(c).keys, 4);
  cascade_close(c);
}

static void test_namespace_count(void **state) {
  (void)state;
  cascade *c = tu_open_with("dram.capacity", "4m", NULL);
  uint8_t a[64];
  tu_fill(a, sizeof a, 11);
  uint64_t n0 = tu_stats_of(c).namespaces;
  assert_int_equal(tu_put_s(c, "one", "k", a, sizeof a, NULL), 0);
  assert_int_equal(tu_stats_of(c).namespaces, n0 + 1);
  assert_int_equal(tu_put_s(c, "two", "k", a, sizeof a, NULL), 0);
  assert_int_equal(tu_stats_of(c).namespaces, n0 + 2);
  assert_int_equal(tu_put_s(c, "one", "k2", a, sizeof a, NULL), 0);
  assert_int_equal(tu_stats_of(c).namespaces, n0 + 2);
  cascade_close(c);
}

/* cascade_ns_keys counts per namespace; cascade_ns_flush empties one
 * namespace and nothing else, shared content included. */
static void test_namespace_keys_and_flush(void **state) {
  (void)state;
  cascade *c = tu_open_with("dram.capacity", "4m", NULL);
  uint8_t a[256], b[256];
  tu_fill(a, sizeof a, 21);
  tu_fill(b, sizeof b, 22);
  char key[32];
  assert_int_equal(cascade_ns_keys(c, "one"), 0); /* never used */
  for (int i = 0; i < 300; i++) {                  /* > one shard's worth */
    snprintf(key, sizeof key, "k%d", i);
    assert_int_equal(tu_put_s(c, "one", key, i % 2 ? a : b, sizeof a, NULL),
                     0);
  }
  assert_int_equal(tu_put_s(c, "two", "k1", a, sizeof a, NULL), 0);
  assert_int_equal(tu_put_s(c, NULL, "k1", b, sizeof b, NULL), 0);
  assert_int_equal(cascade_ns_keys(c, "one"), 300);
  assert_int_equal(cascade_ns_keys(c, "two"), 1);
  assert_int_equal(cascade_ns_keys(c, NULL), 1);
  assert_int_equal(cascade_ns_keys(c, "default"), 1);
  assert_int_equal(cascade_delete(c, "one", "k7", 2), 0);
  assert_int_equal(cascade_ns_keys(c, "one"), 299);
  /* an overwrite is not a new key */
  assert_int_equal(tu_put_s(c, "one", "k8", a, sizeof a, NULL), 0);
  assert_int_equal(cascade_ns_keys(c, "one"), 299);

  assert_int_equal(cascade_ns_flush(c, "one"), 299);
  assert_int_equal(cascade_ns_keys(c, "one"), 0);
  assert_int_equal(tu_stats_of(c).keys, 2);
  tu_check_absent(c, "one", "k1");
  tu_check_absent(c, "one", "k299");
  tu_check_value(c, "two", "k1", a, sizeof a);
  tu_check_value(c, NULL, "k1", b, sizeof b);
  assert_int_equal(cascade_ns_flush(c, "one"), 0); /* already empty */
  assert_int_equal(cascade_ns_flush(c, "never"), 0);
  /* the namespace works after a flush */
  assert_int_equal(tu_put_s(c, "one", "k1", a, sizeof a, NULL), 0);
  assert_int_equal(cascade_ns_keys(c, "one"), 1);
  tu_check_value(c, "one", "k1", a, sizeof a);

  char longns[CASCADE_MAX_NS + 2];
  memset(longns, 'n', sizeof longns - 1);
  longns[sizeof longns - 1] = 0;
  assert_int_equal(cascade_ns_keys(c, longns), -EINVAL);
  assert_int_equal(cascade_ns_flush(c, longns), -EINVAL);
  assert_int_equal(cascade_ns_keys(NULL, "one"), -EINVAL);
  assert_int_equal(cascade_ns_flush(NULL, "one"), -EINVAL);
  cascade_close(c);
}

static void test_dedup_not_across_namespaces(void **state) {
  (void)state;
  cascade *c = tu_open_with("dram.capacity", "4m", NULL);
  const size_t n = 4096;
  uint8_t *v = malloc(n);
  assert_non_null(v);
  tu_fill(v, n, 12);
  assert_int_equal(tu_put_s(c, "tenant1", "k", v, n, NULL), 0);
  struct cascade_stats s = tu_stats_of(c);
  assert_int_equal(s.dedup_hits, 0);
  assert_int_equal(DRAM(s).blocks, 1);
  /* equal bytes, same key, other namespace: a second copy */
  assert_int_equal(tu_put_s(c, "tenant2", "k", v, n, NULL), 0);
  s = tu_stats_of(c);
  assert_int_equal(s.dedup_hits, 0);
  assert_int_equal(s.dedup_bytes_saved, 0);
  assert_int_equal(DRAM(s).blocks, 2);
  assert_int_equal(DRAM(s).bytes, 2 * n);
  /* and a different key in a third namespace: a third copy */
  assert_int_equal(tu_put_s(c, "tenant3", "other", v, n, NULL), 0);
  s = tu_stats_of(c);
  assert_int_equal(s.dedup_hits, 0);
  assert_int_equal(DRAM(s).blocks, 3);
  struct cascade_key_info ki;
  assert_int_equal(cascade_key_info(c, "tenant1", "k", 1, &ki), 0);
  assert_int_equal(ki.refs, 1);
  assert_int_equal(cascade_key_info(c, "tenant2", "k", 1, &ki), 0);
  assert_int_equal(ki.refs, 1);

  /* within one namespace it does dedup */
  assert_int_equal(tu_put_s(c, "tenant1", "k-copy", v, n, NULL), 0);
  s = tu_stats_of(c);
  assert_int_equal(s.dedup_hits, 1);
  assert_int_equal(s.dedup_bytes_saved, n);
  assert_int_equal(DRAM(s).blocks, 3);
  assert_int_equal(DRAM(s).bytes, 3 * n);
  assert_int_equal(cascade_key_info(c, "tenant1", "k", 1, &ki), 0);
  assert_int_equal(ki.refs, 2);
  assert_int_equal(cascade_key_info(c, "tenant2", "k", 1, &ki), 0);
  assert_int_equal(ki.refs, 1);

  /* deleting tenant1's keys leaves tenant2's copy intact */
  assert_int_equal(cascade_delete(c, "tenant1", "k", 1), 0);
  assert_int_equal(cascade_delete(c, "tenant1", "k-copy", 6), 0);
  tu_check_value(c, "tenant2", "k", v, n);
  tu_check_value(c, "tenant3", "other", v, n);
  s = tu_stats_of(c);
  assert_int_equal(DRAM(s).blocks, 2);
  assert_int_equal(s.dedup_bytes_saved, 0);
  free(v);
  cascade_close(c);
}

static void test_dedup_within_namespace(void **state) {
  (void)state;
  cascade *c = tu_open_with("dram.capacity", "4m", NULL);
  const size_t n = 1000;
  uint8_t v[1000];
  tu_fill(v, n, 13);
  assert_int_equal(tu_put_s(c, "ns", "k1", v, n, NULL), 0);
  assert_int_equal(tu_put_s(c, "ns", "k2", v, n, NULL), 0);
  struct cascade_stats s = tu_stats_of(c);
  assert_int_equal(DRAM(s).blocks, 1);
  assert_int_equal(DRAM(s).bytes, n);
  assert_int_equal(s.dedup_hits, 1);
  assert_int_equal(s.dedup_bytes_saved, n);
  assert_int_equal(s.keys, 2);
  tu_check_value(c, "ns", "k1", v, n);
  tu_check_value(c, "ns", "k2", v, n);
  cascade_close(c);
}

static void test_wrong_cid_stays_in_namespace(void **state) {
  (void)state;
  /* "a wrong id makes deduplication share wrong bytes (inside that
   * namespace only)": a lie told in namespace "liar" must not leak into
   * namespace "honest". */
  cascade *c = tu_open_with("dram.capacity", "4m", NULL);
  uint8_t v1[512], v2[512];
  tu_fill(v1, sizeof v1, 14);
  tu_fill(v2, sizeof v2, 15);
  cascade_put_opts o;
  memset(&o, 0, sizeof o);
  o.flags = CASCADE_PUT_HAVE_CID;
  assert_int_equal(cascade_content_id(v2, sizeof v2, &o.cid), 0);
  /* store v1's bytes claiming v2's content id */
  assert_int_equal(tu_put_s(c, "liar", "k", v1, sizeof v1, &o), 0);
  /* an honest put of v2 in another namespace gets its own bytes */
  assert_int_equal(tu_put_s(c, "honest", "k", v2, sizeof v2, NULL), 0);
  tu_check_value(c, "honest", "k", v2, sizeof v2);
  assert_int_equal(tu_put_s(c, "honest", "k2", v2, sizeof v2, &o), 0);
  tu_check_value(c, "honest", "k2", v2, sizeof v2);
  struct cascade_stats s = tu_stats_of(c);
  assert_int_equal(DRAM(s).blocks, 2);
  cascade_close(c);
}

static void test_match_prefix_per_namespace(void **state) {
  (void)state;
  cascade *c = tu_open_with("dram.capacity", "4m", NULL);
  uint8_t v[64];
  cascade_key keys[4] = {{"c0", 2}, {"c1", 2}, {"c2", 2}, {"c3", 2}};
  for (int i = 0; i < 4; i++) {
    tu_fill(v, sizeof v, 20 + (uint64_t)i);
    assert_int_equal(cascade_put(c, "p", keys[i].key, 2, v, sizeof v, NULL), 0);
    if (i < 2)
      assert_int_equal(cascade_put(c, "q", keys[i].key, 2, v, sizeof v, NULL),
                       0);
  }
  assert_int_equal(cascade_match_prefix(c, "p", keys, 4), 4);
  assert_int_equal(cascade_match_prefix(c, "q", keys, 4), 2);
  assert_int_equal(cascade_match_prefix(c, "r", keys, 4), 0);
  assert_int_equal(cascade_match_prefix(c, NULL, keys, 4), 0);
  /* a batch sees only its namespace */
  uint8_t bufs[4][64];
  cascade_get_item it[4];
  memset(it, 0, sizeof it);
  for (int i = 0; i < 4; i++) {
    it[i].key = keys[i].key;
    it[i].klen = 2;
    it[i].buf = bufs[i];
    it[i].cap = sizeof bufs[i];
  }
  assert_int_equal(cascade_get_batch(c, "q", it, 4), 2);
  assert_int_equal(it[2].rc, -ENOENT);
  assert_int_equal(it[3].rc, -ENOENT);
  cascade_close(c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_isolation_get),
      cmocka_unit_test(test_isolation_delete),
      cmocka_unit_test(test_default_namespace),
      cmocka_unit_test(test_namespace_names),
      cmocka_unit_test(test_namespace_count),
      cmocka_unit_test(test_namespace_keys_and_flush),
      cmocka_unit_test(test_dedup_not_across_namespaces),
      cmocka_unit_test(test_dedup_within_namespace),
      cmocka_unit_test(test_wrong_cid_stays_in_namespace),
      cmocka_unit_test(test_match_prefix_per_namespace),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
