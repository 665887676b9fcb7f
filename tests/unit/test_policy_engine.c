/*
 * test_policy_engine.c - every policy of policy_names[] drives the real
 * engine: the store opens with it by name, DRAM stays within capacity while
 * blocks are put and evicted, what survives reads back intact, and a block
 * read between every put (hot) outlives a stream of blocks read once
 * (which every policy here must get right: recency, frequency, CLOCK
 * references and S3-FIFO's main queue all keep it).  Also with a disk
 * tier, so that victims are demoted and read back (promotion re-inserts).
 * Uses the public header, and policy_names[] from src/policy.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cascade.h"
#include "policy/policy.h"
#include "testutil.h"

#define BLK 4096u
#define NBLK 16 /* blocks that fit */

static void put_key(cascade *c, const char *key) {
  uint8_t v[BLK];
  tu_fill(v, BLK, tu_seed_of(key));
  int rc = tu_put_s(c, NULL, key, v, BLK, NULL);
  if (rc != 0) fail_msg("put(%s) = %d", key, rc);
}

static void check_key(cascade *c, const char *key) {
  uint8_t v[BLK];
  tu_fill(v, BLK, tu_seed_of(key));
  tu_check_value(c, NULL, key, v, BLK);
}

static void churn(const char *policy, const char *disk_dir) {
  cascade *c = disk_dir ? tu_open_with("dram.capacity", "64k", "policy",
                                       policy, "disk.dir", disk_dir, NULL)
                        : tu_open_with("dram.capacity", "64k", "policy",
                                       policy, NULL);
  char key[32];
  put_key(c, "hot");
  check_key(c, "hot");
  for (int i = 0; i < 20 * NBLK; i++) {
    snprintf(key, sizeof key, "cold%d", i);
    put_key(c, key);
    check_key(c, "hot"); /* a hit, lock-free in the engine */
    struct cascade_stats s = tu_stats_of(c);
    if (DRAM(s).bytes > (uint64_t)NBLK * BLK)
      fail_msg("%s: %llu bytes in a 64k tier", policy,
               (unsigned long long)DRAM(s).bytes);
  }
  struct cascade_stats s = tu_stats_of(c);
  if (disk_dir) {
    /* everything is still somewhere: read every key back, some from disk
     * (each read may promote, which evicts again) */
    for (int i = 0; i < 20 * NBLK; i += 7) {
      snprintf(key, sizeof key, "cold%d", i);
      check_key(c, key);
    }
    check_key(c, "hot");
  } else {
    assert_true(DRAM(s).evictions >= 20 * NBLK - NBLK);
    /* the newest block is there, and the hot one survived */
    snprintf(key, sizeof key, "cold%d", 20 * NBLK - 1);
    check_key(c, key);
    check_key(c, "hot");
  }
  cascade_close(c);
}

static void test_every_policy(void **state) {
  (void)state;
  for (int i = 0; policy_names[i]; i++) churn(policy_names[i], NULL);
}

static void test_every_policy_with_disk(void **state) {
  (void)state;
  for (int i = 0; policy_names[i]; i++) {
    char dir[] = "/tmp/cascade-polXXXXXX";
    assert_non_null(mkdtemp(dir));
    churn(policy_names[i], dir);
    char cmd[64];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_every_policy),
      cmocka_unit_test(test_every_policy_with_disk),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
