/*
 * test_tier_concurrency.c - DRAM and disk tiers under concurrent use (run
 * under ThreadSanitizer by `make tsan`).
 *
 * A store with a small DRAM tier (so blocks are demoted all the time), a
 * disk tier with small segments and a low compaction threshold (so the
 * background compactor moves records while others read them), and
 * promotion after one disk read (so blocks move back up while others hold
 * them).  Threads put, get (single and batch), take views, prefetch,
 * delete and flush at once over a shared key space.  Every value is derived
 * from its key and a version number written into its first 8 bytes, so any
 * bytes a reader gets can be checked: a read may miss, never return bytes
 * that were not written for that key.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cascade.h"
#include "testutil.h"

#define NKEYS 48
#define BLK 16384u
#define THREADS 4
#define OPS 1500

static cascade *store;
static atomic_int bad;

static void fill(uint8_t *v, int key, uint64_t version) {
  tu_fill(v, BLK, ((uint64_t)key << 32) ^ version);
  memcpy(v, &version, 8);
}

/* bytes read for key: must be some version's bytes */
static void check(const uint8_t *got, size_t len, int key) {
  uint64_t version;
  if (len != BLK) {
    atomic_fetch_add(&bad, 1);
    return;
  }
  memcpy(&version, got, 8);
  static _Thread_local uint8_t want[BLK];
  fill(want, key, version);
  if (memcmp(want, got, BLK) != 0) atomic_fetch_add(&bad, 1);
}

static void *worker(void *arg) {
  uint64_t seed = (uint64_t)(uintptr_t)arg * 7919 + 1;
  uint8_t *v = malloc(BLK), *buf = malloc((size_t)BLK * 4);
  char keys[4][32];
  for (int op = 0; op < OPS; op++) {
    uint64_t r = tu_splitmix(&seed);
    int key = (int)(r % NKEYS);
    char k[32];
    snprintf(k, sizeof k, "k%03d", key);
    switch ((r >> 32) % 10) {
    case 0:
    case 1:
    case 2: { /* put a new version */
      fill(v, key, r | 1);
      int rc = cascade_put(store, "t", k, strlen(k), v, BLK, NULL);
      if (rc != 0 && rc != -ENOSPC) atomic_fetch_add(&bad, 1);
      break;
    }
    case 3:
    case 4:
    case 5: { /* get */
      size_t n = 0;
      int rc = cascade_get(store, "t", k, strlen(k), buf, BLK, &n);
      if (rc == 0)
        check(buf, n, key);
      else if (rc != -ENOENT)
        atomic_fetch_add(&bad, 1);
      break;
    }
    case 6: { /* batch get of 4 */
      cascade_get_item it[4];
      for (int i = 0; i < 4; i++) {
        snprintf(keys[i], sizeof keys[i], "k%03d", (key + i * 7) % NKEYS);
        it[i] = (cascade_get_item){
            keys[i], strlen(keys[i]), buf + (size_t)i * BLK, BLK, 0, 0};
      }
      cascade_get_batch(store, "t", it, 4);
      for (int i = 0; i < 4; i++) {
        if (it[i].rc == 0)
          check(buf + (size_t)i * BLK, it[i].vlen, (key + i * 7) % NKEYS);
        else if (it[i].rc != -ENOENT)
          atomic_fetch_add(&bad, 1);
      }
      break;
    }
    case 7: { /* view */
      cascade_view view;
      int rc = cascade_get_view(store, "t", k, strlen(k), &view);
      if (rc == 0) {
        check(view.data, view.len, key);
        cascade_view_release(store, &view);
      } else if (rc != -ENOENT && rc != -ENOSPC) {
        atomic_fetch_add(&bad, 1);
      }
      break;
    }
    case 8: { /* prefetch 4, or flush now and then */
      if ((r >> 8) % 16 == 0) {
        if (cascade_flush(store) < 0) atomic_fetch_add(&bad, 1);
        break;
      }
      cascade_key ks[4];
      for (int i = 0; i < 4; i++) {
        snprintf(keys[i], sizeof keys[i], "k%03d", (key + i) % NKEYS);
        ks[i] = (cascade_key){keys[i], strlen(keys[i])};
      }
      if (cascade_prefetch(store, "t", ks, 4) < 0) atomic_fetch_add(&bad, 1);
      break;
    }
    default: { /* delete */
      int rc = cascade_delete(store, "t", k, strlen(k));
      if (rc != 0 && rc != -ENOENT) atomic_fetch_add(&bad, 1);
      break;
    }
    }
  }
  free(v);
  free(buf);
  return NULL;
}

static void test_tiers_under_concurrency(void **state) {
  char dir[512];
  const char *t = getenv("TMPDIR");
  snprintf(dir, sizeof dir, "%s/cascade-tconc-XXXXXX",
           t && *t ? t : "/var/tmp");
  assert_non_null(mkdtemp(dir));
  cascade_config *cfg;
  assert_int_equal(cascade_config_new(&cfg), 0);
  assert_int_equal(cascade_config_set(cfg, "dram.capacity", "128k"), 0);
  assert_int_equal(cascade_config_set(cfg, "disk.dir", dir), 0);
  assert_int_equal(cascade_config_set(cfg, "disk.segment_size", "1m"), 0);
  assert_int_equal(cascade_config_set(cfg, "disk.compact_below", "90"), 0);
  assert_int_equal(cascade_config_set(cfg, "disk.promote_after", "1"), 0);
  assert_int_equal(cascade_config_set(cfg, "disk.sync", "none"), 0);
  assert_int_equal(cascade_open(cfg, &store), 0);
  pthread_t th[THREADS];
  for (uintptr_t i = 0; i < THREADS; i++)
    assert_int_equal(pthread_create(&th[i], NULL, worker, (void *)(i + 1)), 0);
  for (int i = 0; i < THREADS; i++) pthread_join(th[i], NULL);
  assert_int_equal(atomic_load(&bad), 0);
  struct cascade_stats s = tu_stats_of(store);
  /* the run really moved blocks both ways and compacted */
  assert_true(s.tier[CASCADE_TIER_DRAM].demotions > 0);
  assert_true(s.tier[CASCADE_TIER_DRAM].promotions > 0);
  assert_int_equal(s.disk_read_errors, 0);
  printf("# demotions %llu promotions %llu compactions %llu disk hits %llu\n",
         (unsigned long long)s.tier[CASCADE_TIER_DRAM].demotions,
         (unsigned long long)s.tier[CASCADE_TIER_DRAM].promotions,
         (unsigned long long)s.disk_compactions,
         (unsigned long long)s.tier[CASCADE_TIER_DISK].hits);
  /* what is left reads back right after a restart */
  uint64_t keys = s.keys;
  cascade_close(store);
  assert_int_equal(cascade_open(cfg, &store), 0);
  s = tu_stats_of(store);
  assert_int_equal(s.keys, keys);
  uint8_t *buf = malloc(BLK);
  for (int key = 0; key < NKEYS; key++) {
    char k[32];
    size_t n = 0;
    snprintf(k, sizeof k, "k%03d", key);
    int rc = cascade_get(store, "t", k, strlen(k), buf, BLK, &n);
    if (rc == 0)
      check(buf, n, key);
    else
      assert_int_equal(rc, -ENOENT);
  }
  assert_int_equal(atomic_load(&bad), 0);
  free(buf);
  cascade_close(store);
  cascade_config_free(cfg);
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  assert_int_equal(system(cmd), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_tiers_under_concurrency)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
