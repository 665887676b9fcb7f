/*
 * test_eviction.c - the DRAM tier's capacity is a hard limit, and what gets
 * evicted when it is full: LRU order, the semantic policy (protected
 * prefixes last, chain leaves before parents, shared blocks kept longer),
 * priority classes under both policies, pinned blocks never evicted
 * (-ENOSPC when nothing else is left), and the evictions counter.
 *
 * Block sizes are multiples of 64 bytes (the allocator's granule) and the
 * arena holds exactly NBLK of them, so "full" is exact.  Presence is checked
 * with cascade_exists on keys expected to be ABSENT wherever possible, so
 * that checking does not itself refresh a block's recency.
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

#define BLK 4096u     /* value size: a multiple of 64 */
#define NBLK 4        /* blocks that fit */
#define CAP_STR "16k" /* NBLK * BLK */

/* ---- helpers ----------------------------------------------------------- */

/* Put a BLK-byte block under key with content derived from `key`. */
static int put_blk(cascade *c, const char *key, const cascade_put_opts *o) {
  uint8_t v[BLK];
  tu_fill(v, BLK, tu_seed_of(key));
  return cascade_put(c, NULL, key, strlen(key), v, BLK, o);
}

static void must_put(cascade *c, const char *key, const cascade_put_opts *o) {
  int rc = put_blk(c, key, o);
  if (rc != 0)
    fail_msg("put(%s) = %d (%s)", key, rc, cascade_strerror(rc));
}

static int present(cascade *c, const char *key) {
  int rc = cascade_exists(c, NULL, key, strlen(key));
  assert_true(rc == 0 || rc == 1);
  return rc;
}

static void must_be_gone(cascade *c, const char *key, const char *why) {
  if (present(c, key))
    fail_msg("%s should have been evicted (%s)", key, why);
}

static void must_be_there(cascade *c, const char *key) {
  uint8_t v[BLK], buf[BLK];
  tu_fill(v, BLK, tu_seed_of(key));
  size_t got = 0;
  int rc = cascade_get(c, NULL, key, strlen(key), buf, sizeof buf, &got);
  if (rc != 0)
    fail_msg("%s should be present, get = %d", key, rc);
  assert_int_equal(got, BLK);
  assert_memory_equal(buf, v, BLK);
}

static void check_keys(cascade *c, uint64_t keys) {
  struct cascade_stats s = tu_stats_of(c);
  if (s.keys != keys)
    fail_msg("keys = %llu, want %llu", (unsigned long long)s.keys,
             (unsigned long long)keys);
  assert_true(DRAM(s).bytes <= DRAM(s).capacity);
}

/* Put and pin a filler block: pinned blocks are never evicted, so fillers
 * take up room without competing for eviction. */
static void put_pinned(cascade *c, const char *key, cascade_view *view) {
  must_put(c, key, NULL);
  int rc = cascade_get_view(c, NULL, key, strlen(key), view);
  if (rc != 0)
    fail_msg("get_view(%s) = %d", key, rc);
}

/* ---- capacity ---------------------------------------------------------------- */

static void capacity_hard_limit(const char *policy) {
  const uint64_t cap = 64 * 1024;
  cascade *c = tu_open_with("dram.capacity", "64k", "policy", policy, NULL);
  enum { NPUT = 400 };
  static size_t lens[NPUT];
  uint64_t rng = 42;
  uint8_t *v = malloc(20000);
  uint8_t *buf = malloc(20000);
  assert_non_null(v);
  assert_non_null(buf);
  for (int i = 0; i < NPUT; i++) {
    lens[i] = 1 + (size_t)(tu_splitmix(&rng) % 20000);
    char key[16];
    snprintf(key, sizeof key, "cap%d", i);
    tu_fill(v, lens[i], (uint64_t)i + 7777);
    int rc = cascade_put(c, NULL, key, strlen(key), v, lens[i], NULL);
    if (rc != 0)
      fail_msg("put #%d (%zu bytes) = %d", i, lens[i], rc);
    struct cascade_stats s = tu_stats_of(c);
    if (DRAM(s).bytes > cap)
      fail_msg("after put #%d: %llu bytes stored > capacity %llu", i,
               (unsigned long long)DRAM(s).bytes, (unsigned long long)cap);
    assert_int_equal(DRAM(s).capacity, cap);
    assert_true(s.dram_free_bytes <= cap);
    /* the value just written is there, byte-exact */
    size_t got = 0;
    assert_int_equal(cascade_get(c, NULL, key, strlen(key), buf, 20000, &got),
                     0);
    assert_int_equal(got, lens[i]);
    assert_memory_equal(buf, v, lens[i]);
  }
  /* every surviving key reads its own bytes; the count matches stats */
  uint64_t alive = 0, bytes = 0;
  for (int i = 0; i < NPUT; i++) {
    char key[16];
    snprintf(key, sizeof key, "cap%d", i);
    size_t got = 0;
    int rc = cascade_get(c, NULL, key, strlen(key), buf, 20000, &got);
    if (rc == -ENOENT)
      continue;
    assert_int_equal(rc, 0);
    assert_int_equal(got, lens[i]);
    tu_fill(v, lens[i], (uint64_t)i + 7777);
    assert_memory_equal(buf, v, lens[i]);
    alive++;
    bytes += lens[i];
  }
  struct cascade_stats s = tu_stats_of(c);
  assert_int_equal(s.keys, alive);
  assert_int_equal(DRAM(s).blocks, alive);
  assert_int_equal(DRAM(s).bytes, bytes);
  assert_true(bytes <= cap);
  /* distinct contents, no deletes: every block not alive was evicted */
  assert_int_equal(DRAM(s).evictions, NPUT - alive);
  assert_true(DRAM(s).evictions > 0);
  free(v);
  free(buf);
  cascade_close(c);
}

static void test_capacity_hard_limit_lru(void **state) {
  (void)state;
  capacity_hard_limit("lru");
}

static void test_capacity_hard_limit_semantic(void **state) {
  (void)state;
  capacity_hard_limit("semantic");
}

static void test_exact_fit(void **state) {
  (void)state;
  /* NBLK blocks fit without any eviction */
  cascade *c = tu_open_with("dram.capacity", CAP_STR, NULL);
  must_put(c, "a", NULL);
  must_put(c, "b", NULL);
  must_put(c, "c", NULL);
  must_put(c, "d", NULL);
  struct cascade_stats s = tu_stats_of(c);
  assert_int_equal(DRAM(s).evictions, 0);
  assert_int_equal(DRAM(s).blocks, NBLK);
  assert_int_equal(DRAM(s).bytes, NBLK * BLK);
  assert_int_equal(s.dram_free_bytes, 0);
  must_be_there(c, "a");
  must_be_there(c, "b");
  must_be_there(c, "c");
  must_be_there(c, "d");
  cascade_close(c);
}

/* ---- LRU -------------------------------------------------------------------- */

static void test_lru_order(void **state) {
  (void)state;
  cascade *c = tu_open_with("dram.capacity", CAP_STR, "policy", "lru", NULL);
  assert_string_equal(tu_stats_of(c).policy, "lru");
  must_put(c, "k0", NULL);
  must_put(c, "k1", NULL);
  must_put(c, "k2", NULL);
  must_put(c, "k3", NULL);
  /* touch k0 then k2: recency, least recent first, is k1 k3 k0 k2 */
  uint8_t buf[BLK];
  size_t got;
  assert_int_equal(cascade_get(c, NULL, "k0", 2, buf, sizeof buf, &got), 0);
  assert_int_equal(cascade_get(c, NULL, "k2", 2, buf, sizeof buf, &got), 0);
  assert_int_equal(DRAM(tu_stats_of(c)).evictions, 0);

  must_put(c, "k4", NULL);
  must_be_gone(c, "k1", "least recently used");
  check_keys(c, NBLK);
  must_put(c, "k5", NULL);
  must_be_gone(c, "k3", "least recently used after k1");
  check_keys(c, NBLK);
  must_put(c, "k6", NULL);
  must_be_gone(c, "k0", "touched first");
  check_keys(c, NBLK);
  must_put(c, "k7", NULL);
  must_be_gone(c, "k2", "touched last");
  check_keys(c, NBLK);
  must_be_there(c, "k4");
  must_be_there(c, "k5");
  must_be_there(c, "k6");
  must_be_there(c, "k7");
  assert_int_equal(DRAM(tu_stats_of(c)).evictions, 4);
  cascade_close(c);
}

static void test_lru_shared_block_evicts_all_its_keys(void **state) {
  (void)state;
  cascade *c = tu_open_with("dram.capacity", CAP_STR, "policy", "lru", NULL);
  uint8_t v[BLK];
  tu_fill(v, BLK, 99);
  assert_int_equal(cascade_put(c, NULL, "s1", 2, v, BLK, NULL), 0);
  assert_int_equal(cascade_put(c, NULL, "s2", 2, v, BLK, NULL), 0);
  must_put(c, "a", NULL);
  must_put(c, "b", NULL);
  must_put(c, "c", NULL);
  check_keys(c, 5);
  must_put(c, "d", NULL); /* evicts the shared (least recent) block */
  must_be_gone(c, "s1", "shared block was least recently used");
  must_be_gone(c, "s2", "its block was evicted");
  check_keys(c, 4);
  struct cascade_stats s = tu_stats_of(c);
  assert_int_equal(DRAM(s).blocks, NBLK);
  assert_int_equal(DRAM(s).evictions, 1);
  assert_int_equal(s.dedup_bytes_saved, 0);
  cascade_close(c);
}

/* ---- semantic policy ----------------------------------------------------------- */

static void test_semantic_prefix_outlives(void **state) {
  (void)state;
  cascade *c =
      tu_open_with("dram.capacity", CAP_STR, "policy", "semantic", NULL);
  assert_string_equal(tu_stats_of(c).policy, "semantic");
  cascade_put_opts pre;
  memset(&pre, 0, sizeof pre);
  pre.flags = CASCADE_PUT_PREFIX;
  must_put(c, "system-prompt", &pre); /* oldest, never touched again */
  for (int i = 0; i < 20; i++) {
    char key[16];
    snprintf(key, sizeof key, "n%d", i);
    must_put(c, key, NULL);
  }
  struct cascade_stats s = tu_stats_of(c);
  assert_int_equal(s.keys, NBLK);
  assert_int_equal(DRAM(s).evictions, 20 + 1 - NBLK);
  must_be_there(c, "system-prompt");
  struct cascade_key_info ki;
  assert_int_equal(cascade_key_info(c, NULL, "system-prompt", 13, &ki), 0);
  assert_true(ki.flags & CASCADE_PUT_PREFIX);
  cascade_close(c);
}

static void test_lru_ignores_prefix_flag(void **state) {
  (void)state;
  /* control for the test above: under plain LRU the untouched prefix block
   * is simply the least recently used one */
  cascade *c = tu_open_with("dram.capacity", CAP_STR, "policy", "lru", NULL);
  cascade_put_opts pre;
  memset(&pre, 0, sizeof pre);
  pre.flags = CASCADE_PUT_PREFIX;
  must_put(c, "system-prompt", &pre);
  must_put(c, "n0", NULL);
  must_put(c, "n1", NULL);
  must_put(c, "n2", NULL);
  must_put(c, "n3", NULL);
  must_be_gone(c, "system-prompt", "LRU, untouched since first put");
  cascade_close(c);
}

static void test_semantic_chain_leaves_first(void **state) {
  (void)state;
  cascade *c =
      tu_open_with("dram.capacity", CAP_STR, "policy", "semantic", NULL);
  cascade_put_opts o;
  memset(&o, 0, sizeof o);
  must_put(c, "A", NULL);
  o.parent = "A";
  o.parent_len = 1;
  must_put(c, "B", &o);
  o.parent = "B";
  must_put(c, "C", &o);
  /* make A the least recently used of the three by far */
  uint8_t buf[BLK];
  size_t got;
  assert_int_equal(cascade_get(c, NULL, "C", 1, buf, sizeof buf, &got), 0);
  assert_int_equal(cascade_get(c, NULL, "B", 1, buf, sizeof buf, &got), 0);
  assert_int_equal(cascade_get(c, NULL, "C", 1, buf, sizeof buf, &got), 0);
  /* the fourth slot: a pinned filler */
  cascade_view f[4];
  put_pinned(c, "F0", &f[0]);
  assert_int_equal(DRAM(tu_stats_of(c)).evictions, 0);

  put_pinned(c, "F1", &f[1]);
  must_be_gone(c, "C", "leaf of the chain goes first");
  check_keys(c, NBLK);
  put_pinned(c, "F2", &f[2]);
  must_be_gone(c, "B", "then the new leaf");
  check_keys(c, NBLK);
  put_pinned(c, "F3", &f[3]);
  must_be_gone(c, "A", "root last");
  check_keys(c, NBLK);
  assert_int_equal(DRAM(tu_stats_of(c)).evictions, 3);
  for (int i = 0; i < 4; i++)
    cascade_view_release(c, &f[i]);
  cascade_close(c);
}

static void test_semantic_chain_partial(void **state) {
  (void)state;
  /* chain A<-B<-C, only one eviction needed: it is C even though A and B
   * are older and were never touched */
  cascade *c =
      tu_open_with("dram.capacity", CAP_STR, "policy", "semantic", NULL);
  cascade_put_opts o;
  memset(&o, 0, sizeof o);
  must_put(c, "A", NULL);
  o.parent = "A";
  o.parent_len = 1;
  must_put(c, "B", &o);
  o.parent = "B";
  must_put(c, "C", &o);
  cascade_view f0, f1;
  put_pinned(c, "F0", &f0);
  put_pinned(c, "F1", &f1);
  must_be_gone(c, "C", "leaf");
  must_be_there(c, "A");
  must_be_there(c, "B");
  cascade_view_release(c, &f0);
  cascade_view_release(c, &f1);
  cascade_close(c);
}

static void test_semantic_shared_outlives(void **state) {
  (void)state;
  cascade *c =
      tu_open_with("dram.capacity", CAP_STR, "policy", "semantic", NULL);
  uint8_t v[BLK];
  tu_fill(v, BLK, 1234);
  /* the two-key block is put first (the older one) */
  assert_int_equal(cascade_put(c, NULL, "two-a", 5, v, BLK, NULL), 0);
  assert_int_equal(cascade_put(c, NULL, "two-b", 5, v, BLK, NULL), 0);
  must_put(c, "one", NULL);
  struct cascade_key_info ki;
  assert_int_equal(cascade_key_info(c, NULL, "two-a", 5, &ki), 0);
  assert_int_equal(ki.refs, 2);
  cascade_view f0, f1, f2;
  put_pinned(c, "F0", &f0);
  put_pinned(c, "F1", &f1);
  assert_int_equal(DRAM(tu_stats_of(c)).evictions, 0);
  put_pinned(c, "F2", &f2); /* one of "one" / the shared block must go */
  must_be_gone(c, "one", "a one-key block goes before a two-key block");
  check_keys(c, 5); /* two-a, two-b, F0, F1, F2 */
  uint8_t buf[BLK];
  size_t got;
  assert_int_equal(cascade_get(c, NULL, "two-a", 5, buf, sizeof buf, &got), 0);
  assert_memory_equal(buf, v, BLK);
  assert_int_equal(cascade_get(c, NULL, "two-b", 5, buf, sizeof buf, &got), 0);
  assert_memory_equal(buf, v, BLK);
  cascade_view_release(c, &f0);
  cascade_view_release(c, &f1);
  cascade_view_release(c, &f2);
  cascade_close(c);
}

static void test_semantic_parent_becomes_leaf(void **state) {
  (void)state;
  /* A<-B; once B is deleted, A is a leaf again and competes by recency:
   * older than X, it goes first */
  cascade *c =
      tu_open_with("dram.capacity", CAP_STR, "policy", "semantic", NULL);
  cascade_put_opts o;
  memset(&o, 0, sizeof o);
  must_put(c, "A", NULL);
  o.parent = "A";
  o.parent_len = 1;
  must_put(c, "B", &o);
  must_put(c, "X", NULL);
  assert_int_equal(cascade_delete(c, NULL, "B", 1), 0);
  cascade_view f[3];
  put_pinned(c, "F0", &f[0]);
  put_pinned(c, "F1", &f[1]);
  assert_int_equal(DRAM(tu_stats_of(c)).evictions, 0);
  put_pinned(c, "F2", &f[2]);
  must_be_gone(c, "A", "a parent whose only child is gone is a plain leaf");
  must_be_there(c, "X");
  for (int i = 0; i < 3; i++)
    cascade_view_release(c, &f[i]);
  cascade_close(c);
}

static void test_fragmentation(void **state) {
  (void)state;
  /* four 4 KiB blocks; delete two; pin the other two.  Whether an 8 KiB
   * value then fits depends only on where the pinned blocks lie, which the
   * arena offsets of their views tell. */
  cascade *c = tu_open_with("dram.capacity", CAP_STR, NULL);
  must_put(c, "b0", NULL);
  must_put(c, "b1", NULL);
  must_put(c, "b2", NULL);
  must_put(c, "b3", NULL);
  cascade_view v0, v2;
  assert_int_equal(cascade_get_view(c, NULL, "b0", 2, &v0), 0);
  assert_int_equal(cascade_get_view(c, NULL, "b2", 2, &v2), 0);
  assert_int_equal(cascade_delete(c, NULL, "b1", 2), 0);
  assert_int_equal(cascade_delete(c, NULL, "b3", 2), 0);
  int fd;
  size_t size;
  const void *base;
  assert_int_equal(cascade_arena(c, &fd, &size, &base), 0);
  size_t o0 = (size_t)((const char *)v0.data - (const char *)base);
  size_t o2 = (size_t)((const char *)v2.data - (const char *)base);
  size_t lo = o0 < o2 ? o0 : o2, hi = o0 < o2 ? o2 : o0;
  /* free runs: [0, lo), [lo + BLK, hi), [hi + BLK, size) */
  size_t run = lo;
  if (hi - (lo + BLK) > run)
    run = hi - (lo + BLK);
  if (size - (hi + BLK) > run)
    run = size - (hi + BLK);
  struct cascade_stats s = tu_stats_of(c);
  assert_int_equal(s.dram_free_bytes, 2 * BLK);
  assert_int_equal(s.dram_largest_free, run);
  double frag = 1.0 - (double)run / (double)(2 * BLK);
  assert_true(s.dram_fragmentation > frag - 1e-9 &&
              s.dram_fragmentation < frag + 1e-9);
  uint8_t *big = malloc(2 * BLK);
  assert_non_null(big);
  tu_fill(big, 2 * BLK, 4321);
  int rc = cascade_put(c, NULL, "big", 3, big, 2 * BLK, NULL);
  if (run >= 2 * BLK) {
    assert_int_equal(rc, 0);
  } else {
    /* room in total but not in one piece, and nothing evictable */
    assert_int_equal(rc, -ENOSPC);
    assert_int_equal(cascade_exists(c, NULL, "big", 3), 0);
  }
  /* releasing a pin makes room in one piece */
  cascade_view_release(c, &v0);
  cascade_view_release(c, &v2);
  assert_int_equal(cascade_put(c, NULL, "big", 3, big, 2 * BLK, NULL), 0);
  uint8_t *buf = malloc(2 * BLK);
  assert_non_null(buf);
  size_t got = 0;
  assert_int_equal(cascade_get(c, NULL, "big", 3, buf, 2 * BLK, &got), 0);
  assert_int_equal(got, 2 * BLK);
  assert_memory_equal(buf, big, 2 * BLK);
  free(buf);
  free(big);
  cascade_close(c);
}

/* ---- priorities -------------------------------------------------------------- */

static void priority_order(const char *policy) {
  cascade *c = tu_open_with("dram.capacity", CAP_STR, "policy", policy, NULL);
  cascade_put_opts hi, lo;
  memset(&hi, 0, sizeof hi);
  memset(&lo, 0, sizeof lo);
  hi.priority = CASCADE_PRIO_HIGH;
  lo.priority = CASCADE_PRIO_LOW;
  /* oldest first: HIGH, then NORMAL, then LOW, so recency alone would
   * pick the opposite order */
  must_put(c, "high", &hi);
  must_put(c, "normal", NULL);
  must_put(c, "low", &lo);
  cascade_view f[4];
  put_pinned(c, "F0", &f[0]);
  put_pinned(c, "F1", &f[1]);
  must_be_gone(c, "low", "LOW class goes first");
  check_keys(c, NBLK);
  put_pinned(c, "F2", &f[2]);
  must_be_gone(c, "normal", "NORMAL before HIGH");
  check_keys(c, NBLK);
  must_be_there(c, "high");
  put_pinned(c, "F3", &f[3]);
  must_be_gone(c, "high", "last unpinned block");
  assert_int_equal(DRAM(tu_stats_of(c)).evictions, 3);
  for (int i = 0; i < 4; i++)
    cascade_view_release(c, &f[i]);
  cascade_close(c);
}

static void test_priority_order_lru(void **state) {
  (void)state;
  priority_order("lru");
}

static void test_priority_order_semantic(void **state) {
  (void)state;
  priority_order("semantic");
}

static void test_priority_beats_prefix_and_refs(void **state) {
  (void)state;
  /* "every block of a lower class is evicted before any of a higher class;
   * the policy orders blocks inside a class": a LOW protected prefix still
   * goes before a NORMAL plain block */
  cascade *c =
      tu_open_with("dram.capacity", CAP_STR, "policy", "semantic", NULL);
  cascade_put_opts lowpre;
  memset(&lowpre, 0, sizeof lowpre);
  lowpre.flags = CASCADE_PUT_PREFIX;
  lowpre.priority = CASCADE_PRIO_LOW;
  must_put(c, "normal", NULL);
  must_put(c, "low-prefix", &lowpre);
  cascade_view f[3];
  put_pinned(c, "F0", &f[0]);
  put_pinned(c, "F1", &f[1]);
  put_pinned(c, "F2", &f[2]);
  must_be_gone(c, "low-prefix", "LOW class before NORMAL, prefix or not");
  must_be_there(c, "normal");
  for (int i = 0; i < 3; i++)
    cascade_view_release(c, &f[i]);
  cascade_close(c);
}

static void set_priority_changes(const char *policy) {
  cascade *c = tu_open_with("dram.capacity", CAP_STR, "policy", policy, NULL);
  must_put(c, "A", NULL);
  must_put(c, "B", NULL);
  must_put(c, "C", NULL);
  assert_int_equal(cascade_set_priority(c, NULL, "A", 1, CASCADE_PRIO_HIGH), 0);
  assert_int_equal(cascade_set_priority(c, NULL, "C", 1, CASCADE_PRIO_LOW), 0);
  assert_int_equal(cascade_set_priority(c, NULL, "Z", 1, CASCADE_PRIO_LOW),
                   -ENOENT);
  struct cascade_key_info ki;
  assert_int_equal(cascade_key_info(c, NULL, "A", 1, &ki), 0);
  assert_int_equal(ki.priority, CASCADE_PRIO_HIGH);
  assert_int_equal(cascade_key_info(c, NULL, "C", 1, &ki), 0);
  assert_int_equal(ki.priority, CASCADE_PRIO_LOW);
  cascade_view f[3];
  put_pinned(c, "F0", &f[0]);
  put_pinned(c, "F1", &f[1]);
  must_be_gone(c, "C", "lowered to LOW");
  put_pinned(c, "F2", &f[2]);
  must_be_gone(c, "B", "NORMAL before the raised A, although A is older");
  must_be_there(c, "A");
  for (int i = 0; i < 3; i++)
    cascade_view_release(c, &f[i]);
  cascade_close(c);
}

static void test_set_priority_lru(void **state) {
  (void)state;
  set_priority_changes("lru");
}

static void test_set_priority_semantic(void **state) {
  (void)state;
  set_priority_changes("semantic");
}

/* ---- pinned ---------------------------------------------------------------------- */

/* A block's class is the highest priority among the keys sharing it, kept
 * as counts per class: many keys on one block stay cheap, and the class
 * falls back when the last HIGH key goes. */
static void test_shared_block_class_follows_its_keys(void **state) {
  (void)state;
  cascade *c = tu_open_with("dram.capacity", CAP_STR, "policy", "lru", NULL);
  uint8_t v[BLK];
  tu_fill(v, BLK, 4242);
  cascade_put_opts hi;
  memset(&hi, 0, sizeof hi);
  hi.priority = CASCADE_PRIO_HIGH;
  /* the shared block S: 20,000 NORMAL keys and one HIGH key */
  for (int i = 0; i < 20000; i++) {
    char key[32];
    snprintf(key, sizeof key, "s%d", i);
    assert_int_equal(cascade_put(c, NULL, key, strlen(key), v, BLK, NULL), 0);
  }
  assert_int_equal(cascade_put(c, NULL, "s-high", 6, v, BLK, &hi), 0);
  assert_int_equal(DRAM(tu_stats_of(c)).blocks, 1);
  must_put(c, "plain", NULL); /* NORMAL, newer than S */
  cascade_view f[3];
  put_pinned(c, "F0", &f[0]);
  put_pinned(c, "F1", &f[1]);
  put_pinned(c, "F2", &f[2]);
  /* full: the NORMAL block goes, S (HIGH through one key) stays */
  must_be_gone(c, "plain", "NORMAL before the shared HIGH block");
  assert_int_equal(cascade_exists(c, NULL, "s0", 2), 1);
  /* without its HIGH key S is NORMAL again, and older than "plain2" */
  assert_int_equal(cascade_delete(c, NULL, "s-high", 6), 0);
  cascade_view_release(c, &f[2]);
  must_put(c, "plain2", NULL);
  put_pinned(c, "F3", &f[2]);
  assert_int_equal(cascade_exists(c, NULL, "s0", 2), 0);
  assert_int_equal(cascade_exists(c, NULL, "s19999", 6), 0);
  must_be_there(c, "plain2");
  struct cascade_stats st = tu_stats_of(c);
  assert_int_equal(st.keys, 4); /* plain2 + three pinned fillers */
  for (int i = 0; i < 3; i++)
    cascade_view_release(c, &f[i]);
  cascade_close(c);
}

static void test_all_pinned_enospc(void **state) {
  (void)state;
  cascade *c = tu_open_with("dram.capacity", CAP_STR, NULL);
  const char *keys[NBLK] = {"p0", "p1", "p2", "p3"};
  cascade_view v[NBLK];
  for (int i = 0; i < NBLK; i++)
    put_pinned(c, keys[i], &v[i]);
  struct cascade_stats s0 = tu_stats_of(c);
  assert_int_equal(s0.views, NBLK);

  /* a new block: no room, nothing evictable */
  int rc = put_blk(c, "new", NULL);
  assert_int_equal(rc, -ENOSPC);
  assert_int_equal(present(c, "new"), 0);
  uint8_t small[64];
  tu_fill(small, sizeof small, 5);
  assert_int_equal(cascade_put(c, NULL, "tiny", 4, small, sizeof small, NULL),
                   -ENOSPC);
  /* overwriting a pinned key with new bytes needs room too; on error the
   * key keeps its value */
  assert_int_equal(cascade_put(c, NULL, "p0", 2, small, sizeof small, NULL),
                   -ENOSPC);
  must_be_there(c, "p0");

  /* nothing corrupted */
  for (int i = 0; i < NBLK; i++) {
    uint8_t want[BLK];
    tu_fill(want, BLK, tu_seed_of(keys[i]));
    assert_int_equal(v[i].len, BLK);
    assert_memory_equal(v[i].data, want, BLK);
    must_be_there(c, keys[i]);
  }
  struct cascade_stats s1 = tu_stats_of(c);
  assert_int_equal(s1.keys, NBLK);
  assert_int_equal(DRAM(s1).blocks, NBLK);
  assert_int_equal(DRAM(s1).bytes, NBLK * BLK);
  assert_int_equal(DRAM(s1).evictions, 0);

  /* content already stored needs no room: a deduplicated put succeeds */
  uint8_t same[BLK];
  tu_fill(same, BLK, tu_seed_of("p1"));
  assert_int_equal(cascade_put(c, NULL, "p1-copy", 7, same, BLK, NULL), 0);
  /* and so does an empty value */
  assert_int_equal(cascade_put(c, NULL, "empty", 5, same, 0, NULL), 0);

  /* release one view: now the put succeeds by evicting that block */
  cascade_view_release(c, &v[2]);
  must_put(c, "new", NULL);
  must_be_gone(c, "p2", "the only unpinned block");
  must_be_there(c, "new");
  for (int i = 0; i < NBLK; i++) {
    if (i == 2)
      continue;
    uint8_t want[BLK];
    tu_fill(want, BLK, tu_seed_of(keys[i]));
    assert_memory_equal(v[i].data, want, BLK);
    cascade_view_release(c, &v[i]);
  }
  assert_int_equal(tu_stats_of(c).views, 0);
  /* the store still serves */
  must_put(c, "after", NULL);
  must_be_there(c, "after");
  cascade_close(c);
}

static void test_evictions_counter(void **state) {
  (void)state;
  cascade *c = tu_open_with("dram.capacity", CAP_STR, NULL);
  for (int i = 0; i < 10; i++) {
    char key[16];
    snprintf(key, sizeof key, "e%d", i);
    must_put(c, key, NULL);
    struct cascade_stats s = tu_stats_of(c);
    uint64_t want = i + 1 > NBLK ? (uint64_t)(i + 1 - NBLK) : 0;
    if (DRAM(s).evictions != want)
      fail_msg("after %d puts: evictions %llu, want %llu", i + 1,
               (unsigned long long)DRAM(s).evictions, (unsigned long long)want);
    assert_int_equal(s.keys, i + 1 > NBLK ? NBLK : i + 1);
  }
  /* deletes are not evictions */
  assert_int_equal(cascade_delete(c, NULL, "e9", 2), 0);
  assert_int_equal(DRAM(tu_stats_of(c)).evictions, 6);
  /* evictions are not expirations */
  assert_int_equal(tu_stats_of(c).expired, 0);
  cascade_close(c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_capacity_hard_limit_lru),
      cmocka_unit_test(test_capacity_hard_limit_semantic),
      cmocka_unit_test(test_exact_fit),
      cmocka_unit_test(test_lru_order),
      cmocka_unit_test(test_lru_shared_block_evicts_all_its_keys),
      cmocka_unit_test(test_semantic_prefix_outlives),
      cmocka_unit_test(test_lru_ignores_prefix_flag),
      cmocka_unit_test(test_semantic_chain_leaves_first),
      cmocka_unit_test(test_semantic_chain_partial),
      cmocka_unit_test(test_semantic_shared_outlives),
      cmocka_unit_test(test_semantic_parent_becomes_leaf),
      cmocka_unit_test(test_fragmentation),
      cmocka_unit_test(test_priority_order_lru),
      cmocka_unit_test(test_priority_order_semantic),
      cmocka_unit_test(test_priority_beats_prefix_and_refs),
      cmocka_unit_test(test_set_priority_lru),
      cmocka_unit_test(test_set_priority_semantic),
      cmocka_unit_test(test_shared_block_class_follows_its_keys),
      cmocka_unit_test(test_all_pinned_enospc),
      cmocka_unit_test(test_evictions_counter),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
