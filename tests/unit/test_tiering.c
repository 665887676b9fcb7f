/*
 * test_tiering.c - DRAM and disk tiers together, through the public API:
 * write-back demotion on DRAM eviction, reads from disk, promotion after
 * disk.promote_after reads, write-through, selective write-back, views of
 * disk-only blocks, batch gets from disk, cascade_flush + restart (every
 * block back, byte-exact, with its attributes), deletes and overwrites that
 * stay deleted / overwritten across a restart, dedup against disk blocks,
 * a corrupted record read as a miss (never bytes), and a second open of the
 * same directory refused.
 *
 * Each test works in its own fresh directory under $TMPDIR (or /var/tmp: a
 * real file system, so O_DIRECT is exercised), removed at the end.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cascade.h"
#include "testutil.h"

#define DISK(s) ((s).tier[CASCADE_TIER_DISK])
#define BLK (64u << 10) /* 64 KiB blocks */

static char dir[512];

static int setup(void **state) {
  const char *t = getenv("TMPDIR");
  snprintf(dir, sizeof dir, "%s/cascade-tiering-XXXXXX",
           t && *t ? t : "/var/tmp");
  assert_non_null(mkdtemp(dir));
  return 0;
}

static int teardown(void **state) {
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  assert_int_equal(system(cmd), 0);
  return 0;
}

/* A store with a disk tier in dir, DRAM holding `dram` bytes, and extra
 * name/value settings (NULL-terminated). */
static cascade *open_tiered(const char *dram, ...) {
  cascade_config *cfg;
  assert_int_equal(cascade_config_new(&cfg), 0);
  assert_int_equal(cascade_config_set(cfg, "dram.capacity", dram), 0);
  assert_int_equal(cascade_config_set(cfg, "disk.dir", dir), 0);
  assert_int_equal(cascade_config_set(cfg, "disk.segment_size", "4m"), 0);
  va_list ap;
  va_start(ap, dram);
  const char *n;
  while ((n = va_arg(ap, const char *))) {
    const char *v = va_arg(ap, const char *);
    assert_int_equal(cascade_config_set(cfg, n, v), 0);
  }
  va_end(ap);
  cascade *c = NULL;
  int rc = cascade_open(cfg, &c);
  cascade_config_free(cfg);
  assert_int_equal(rc, 0);
  return c;
}

static void key_of(char *k, size_t cap, int i) {
  snprintf(k, cap, "blk-%05d", i);
}

static void put_i(cascade *c, int i, const cascade_put_opts *o) {
  static uint8_t v[BLK];
  char k[32];
  key_of(k, sizeof k, i);
  tu_fill(v, BLK, (uint64_t)i + 1);
  assert_int_equal(cascade_put(c, "ns", k, strlen(k), v, BLK, o), 0);
}

static void check_i(cascade *c, int i) {
  static uint8_t v[BLK];
  char k[32];
  key_of(k, sizeof k, i);
  tu_fill(v, BLK, (uint64_t)i + 1);
  tu_check_value(c, "ns", k, v, BLK);
}

static int tier_of(cascade *c, int i) {
  char k[32];
  struct cascade_key_info info;
  key_of(k, sizeof k, i);
  assert_int_equal(cascade_key_info(c, "ns", k, strlen(k), &info), 0);
  return info.tier;
}

/* DRAM holds 4 blocks; 16 are put: the 12 oldest are demoted, not lost,
 * and read back byte-exact from disk. */
static void test_writeback_demotion(void **state) {
  cascade *c = open_tiered("256k", NULL);
  struct cascade_stats s = tu_stats_of(c);
  assert_true(DISK(s).present);
  assert_true(strlen(s.disk_mode) > 0);
  for (int i = 0; i < 16; i++) put_i(c, i, NULL);
  s = tu_stats_of(c);
  assert_int_equal(DRAM(s).blocks, 4);
  assert_int_equal(DRAM(s).demotions, 12);
  assert_int_equal(DISK(s).blocks, 12);
  assert_int_equal(DRAM(s).evictions, 0);
  assert_int_equal(s.keys, 16);
  assert_int_equal(tier_of(c, 0), CASCADE_TIER_DISK);
  assert_int_equal(tier_of(c, 15), CASCADE_TIER_DRAM);
  for (int i = 0; i < 16; i++) check_i(c, i);
  s = tu_stats_of(c);
  assert_true(DISK(s).hits >= 12);
  cascade_close(c);
}

/* A block read from disk more than promote_after (2) times moves up. */
static void test_promotion(void **state) {
  cascade *c = open_tiered("256k", "disk.promote_after", "2", NULL);
  for (int i = 0; i < 8; i++) put_i(c, i, NULL);
  assert_int_equal(tier_of(c, 0), CASCADE_TIER_DISK);
  check_i(c, 0);
  check_i(c, 0);
  assert_int_equal(tier_of(c, 0), CASCADE_TIER_DISK);
  check_i(c, 0); /* third read: promoted */
  assert_int_equal(tier_of(c, 0), CASCADE_TIER_DRAM);
  struct cascade_stats s = tu_stats_of(c);
  assert_int_equal(DRAM(s).promotions, 1);
  check_i(c, 0);
  /* the others are all still somewhere, byte-exact */
  for (int i = 0; i < 8; i++) check_i(c, i);
  cascade_close(c);
}

/* flush, close, reopen: every block is back, byte-exact, with its TTL and
 * priority; deleted and overwritten keys stay so. */
static void test_restart(void **state) {
  cascade *c = open_tiered("256k", NULL);
  cascade_put_opts hi = {.priority = CASCADE_PRIO_HIGH, .ttl_ms = 3600 * 1000};
  for (int i = 0; i < 20; i++) put_i(c, i, i == 3 ? &hi : NULL);
  char k[32];
  key_of(k, sizeof k, 5);
  assert_int_equal(cascade_delete(c, "ns", k, strlen(k)), 0); /* on disk */
  key_of(k, sizeof k, 19);
  assert_int_equal(cascade_delete(c, "ns", k, strlen(k)), 0); /* in DRAM */
  key_of(k, sizeof k, 6);
  assert_int_equal(tu_put_s(c, "ns", k, "new", 3, NULL), 0); /* overwrite */
  key_of(k, sizeof k, 4); /* on disk: a changed priority is rewritten */
  assert_int_equal(cascade_set_priority(c, "ns", k, strlen(k), CASCADE_PRIO_LOW),
                   0);
  put_i(c, 3, &hi); /* the same again: attributes unchanged */
  assert_int_equal(cascade_flush(c), 0);
  cascade_close(c);

  c = open_tiered("256k", NULL);
  struct cascade_stats s = tu_stats_of(c);
  assert_int_equal(s.keys, 18);
  assert_int_equal(s.disk_recovered, 18);
  for (int i = 0; i < 19; i++) {
    if (i == 5 || i == 6) continue;
    check_i(c, i);
  }
  tu_check_absent(c, "ns", "blk-00005");
  tu_check_absent(c, "ns", "blk-00019");
  tu_check_value(c, "ns", "blk-00006", "new", 3);
  struct cascade_key_info info;
  key_of(k, sizeof k, 3);
  assert_int_equal(cascade_key_info(c, "ns", k, strlen(k), &info), 0);
  assert_int_equal(info.priority, CASCADE_PRIO_HIGH);
  assert_true(info.ttl_ms > 3000 * 1000 && info.ttl_ms <= 3600 * 1000);
  key_of(k, sizeof k, 4);
  assert_int_equal(cascade_key_info(c, "ns", k, strlen(k), &info), 0);
  assert_int_equal(info.priority, CASCADE_PRIO_LOW);
  /* and a restart of the restart still has them (nothing was lost by
   * reading, promoting, or closing again) */
  cascade_close(c);
  c = open_tiered("256k", NULL);
  s = tu_stats_of(c);
  assert_int_equal(s.keys, 18);
  for (int i = 0; i < 19; i++)
    if (i != 5 && i != 6) check_i(c, i);
  cascade_close(c);
}

/* Two keys sharing content: one VALUE record; both keys come back, and a
 * put of the same content after the restart deduplicates against disk. */
static void test_dedup_on_disk(void **state) {
  cascade *c = open_tiered("256k", NULL);
  uint8_t *v = malloc(BLK);
  tu_fill(v, BLK, 777);
  assert_int_equal(tu_put_s(c, "ns", "a", v, BLK, NULL), 0);
  assert_int_equal(tu_put_s(c, "ns", "b", v, BLK, NULL), 0);
  for (int i = 0; i < 8; i++) put_i(c, i, NULL); /* push a, b to disk */
  struct cascade_stats s = tu_stats_of(c);
  assert_int_equal(s.dedup_hits, 1);
  cascade_close(c);
  c = open_tiered("256k", NULL);
  tu_check_value(c, "ns", "a", v, BLK);
  tu_check_value(c, "ns", "b", v, BLK);
  assert_int_equal(tu_put_s(c, "ns", "c", v, BLK, NULL), 0);
  s = tu_stats_of(c);
  assert_int_equal(s.dedup_hits, 1);
  struct cascade_key_info info;
  assert_int_equal(cascade_key_info(c, "ns", "c", 1, &info), 0);
  assert_int_equal(info.refs, 3);
  cascade_close(c);
  free(v);
}

/* write-through: every put is on disk at once; a crash-free reopen after
 * flush finds them even though DRAM never evicted anything. */
static void test_write_through(void **state) {
  cascade *c = open_tiered("4m", "disk.write", "through", NULL);
  for (int i = 0; i < 8; i++) put_i(c, i, NULL);
  struct cascade_stats s = tu_stats_of(c);
  assert_int_equal(DISK(s).blocks, 8);
  assert_int_equal(DRAM(s).blocks, 8);
  assert_int_equal(tier_of(c, 0), CASCADE_TIER_DRAM);
  assert_int_equal(cascade_flush(c), 0);
  cascade_close(c);
  c = open_tiered("4m", "disk.write", "through", NULL);
  for (int i = 0; i < 8; i++) check_i(c, i);
  cascade_close(c);
}

/* selective: blocks never read are dropped, blocks read twice written.
 * Under LRU, so that block 1 is certain to leave DRAM: the default policy
 * (semantic) keeps a re-read block in DRAM for a while longer. */
static void test_selective(void **state) {
  cascade *c = open_tiered("256k", "disk.write", "selective",
                           "disk.write_after", "2", "policy", "lru", NULL);
  put_i(c, 0, NULL);
  put_i(c, 1, NULL);
  check_i(c, 1);
  check_i(c, 1);
  for (int i = 2; i < 8; i++) put_i(c, i, NULL);
  tu_check_absent(c, "ns", "blk-00000");
  check_i(c, 1);
  assert_int_equal(tier_of(c, 1), CASCADE_TIER_DISK);
  cascade_close(c);
}

/* A view of a block on disk only brings it into DRAM. */
static void test_view_of_disk_block(void **state) {
  cascade *c = open_tiered("256k", "disk.promote_after", "0", NULL);
  for (int i = 0; i < 8; i++) put_i(c, i, NULL);
  assert_int_equal(tier_of(c, 0), CASCADE_TIER_DISK);
  cascade_view view;
  assert_int_equal(cascade_get_view(c, "ns", "blk-00000", 9, &view), 0);
  uint8_t *v = malloc(BLK);
  tu_fill(v, BLK, 1);
  assert_int_equal(view.len, BLK);
  assert_memory_equal(view.data, v, BLK);
  assert_int_equal(tier_of(c, 0), CASCADE_TIER_DRAM);
  cascade_view_release(c, &view);
  free(v);
  cascade_close(c);
}

/* prefetch brings disk-only blocks up in the background; gets issued right
 * after wait for those reads instead of reading again (one disk hit per
 * block, not two). */
static void test_prefetch(void **state) {
  cascade *c = open_tiered("256k", "disk.promote_after", "0", NULL);
  for (int i = 0; i < 8; i++) put_i(c, i, NULL);
  struct cascade_stats s = tu_stats_of(c);
  assert_int_equal(DISK(s).hits, 0);
  char keys[5][32];
  cascade_key ks[5];
  /* blk 7 is in DRAM, and first: once the others are on their way up they
   * may push it down */
  for (int i = 0; i < 5; i++) {
    key_of(keys[i], sizeof keys[i], i == 0 ? 7 : i - 1);
    ks[i] = (cascade_key){keys[i], strlen(keys[i])};
  }
  assert_int_equal(cascade_prefetch(c, "ns", ks, 5), 4);
  for (int i = 0; i < 4; i++) check_i(c, i);
  s = tu_stats_of(c);
  assert_int_equal(DISK(s).hits, 4);
  assert_int_equal(DRAM(s).promotions, 4);
  for (int i = 0; i < 4; i++)
    assert_int_equal(tier_of(c, i), CASCADE_TIER_DRAM);
  /* bad input */
  assert_int_equal(cascade_prefetch(c, "ns", NULL, 1), -EINVAL);
  cascade_close(c);
}

/* A batch get mixing DRAM, disk and missing keys. */
static void test_batch_from_disk(void **state) {
  cascade *c = open_tiered("256k", NULL);
  for (int i = 0; i < 12; i++) put_i(c, i, NULL);
  enum { N = 13 };
  cascade_get_item it[N];
  char keys[N][32];
  uint8_t *buf = malloc((size_t)N * BLK);
  for (int i = 0; i < N; i++) {
    key_of(keys[i], sizeof keys[i], i);
    it[i] = (cascade_get_item){
        keys[i], strlen(keys[i]), buf + (size_t)i * BLK, BLK, 0, 0};
  }
  assert_int_equal(cascade_get_batch(c, "ns", it, N), 12);
  uint8_t *v = malloc(BLK);
  for (int i = 0; i < 12; i++) {
    assert_int_equal(it[i].rc, 0);
    assert_int_equal(it[i].vlen, BLK);
    tu_fill(v, BLK, (uint64_t)i + 1);
    assert_memory_equal(buf + (size_t)i * BLK, v, BLK);
  }
  assert_int_equal(it[12].rc, -ENOENT);
  free(v);
  free(buf);
  cascade_close(c);
}

/* Flip one byte of a value in a segment file: that block reads as missing
 * (counted), the others still read. */
static void test_corrupt_value_is_a_miss(void **state) {
  cascade *c = open_tiered("256k", NULL);
  /* content with a marker we can find in the file */
  uint8_t *v = malloc(BLK);
  memset(v, 0x5a, BLK);
  memcpy(v, "CORRUPT-ME-MARKER", 17);
  assert_int_equal(tu_put_s(c, "ns", "victim", v, BLK, NULL), 0);
  /* 5 MiB more: the victim's segment (4 MiB) is sealed, so the scan at open
   * checks only headers there and the damage is found by the read */
  for (int i = 0; i < 80; i++) put_i(c, i, NULL);
  assert_int_equal(cascade_flush(c), 0);
  cascade_close(c);

  /* find the marker in the segment files and flip a byte after it */
  DIR *d = opendir(dir);
  assert_non_null(d);
  struct dirent *e;
  int flipped = 0;
  while (!flipped && (e = readdir(d))) {
    if (strncmp(e->d_name, "agg_rank000_", 12) != 0) continue;
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    uint8_t *m = malloc((size_t)st.st_size);
    assert_int_equal(pread(fd, m, (size_t)st.st_size, 0), st.st_size);
    uint8_t *p = memmem(m, (size_t)st.st_size, "CORRUPT-ME-MARKER", 17);
    if (p) {
      uint8_t x = p[100] ^ 0xff;
      assert_int_equal(pwrite(fd, &x, 1, (p - m) + 100), 1);
      flipped = 1;
    }
    free(m);
    close(fd);
  }
  closedir(d);
  assert_true(flipped);

  c = open_tiered("256k", NULL);
  size_t n = 0;
  uint8_t *buf = malloc(BLK);
  assert_int_equal(cascade_get(c, "ns", "victim", 6, buf, BLK, &n), -ENOENT);
  struct cascade_stats s = tu_stats_of(c);
  assert_true(s.disk_read_errors >= 1);
  /* reported missing from now on, and the others are fine */
  tu_check_absent(c, "ns", "victim");
  for (int i = 0; i < 80; i++) check_i(c, i);
  free(buf);
  free(v);
  cascade_close(c);
}

/* disk.capacity bounds the segment files: the oldest segment is reclaimed,
 * what the policy ranks high (here: priority HIGH) survives, the rest is
 * evicted, puts keep working, and whatever is present reads back right. */
static void test_disk_capacity(void **state) {
  cascade *c = open_tiered("256k", "disk.segment_size", "1m", "disk.capacity",
                           "4m", NULL);
  cascade_put_opts hi = {.priority = CASCADE_PRIO_HIGH};
  enum { N = 200 }; /* 12.5 MiB through a 4 MiB disk tier */
  for (int i = 0; i < N; i++) put_i(c, i, i < 4 ? &hi : NULL);
  struct cascade_stats s = tu_stats_of(c);
  assert_true(DISK(s).evictions > 0);
  assert_true(s.disk_file_bytes <= (5u << 20)); /* capacity + one segment */
  assert_true(s.keys < N);
  for (int i = 0; i < 4; i++) check_i(c, i); /* HIGH: kept */
  int present = 0;
  for (int i = 4; i < N; i++) {
    char k[32];
    key_of(k, sizeof k, i);
    if (cascade_exists(c, "ns", k, strlen(k)) == 1) {
      check_i(c, i);
      present++;
    }
  }
  assert_int_equal(present + 4, (int)s.keys);
  /* the most recent ones are there */
  for (int i = N - 8; i < N; i++) check_i(c, i);
  /* and it survives a restart the same */
  assert_int_equal(cascade_flush(c), 0);
  cascade_close(c);
  c = open_tiered("256k", "disk.segment_size", "1m", "disk.capacity", "4m",
                  NULL);
  s = tu_stats_of(c);
  assert_int_equal((int)s.keys, present + 4);
  for (int i = 0; i < 4; i++) check_i(c, i);
  cascade_close(c);
}

/* A full file system (a 6 MiB tmpfs mounted by the test; skipped where
 * mounting is not allowed): -ENOSPC from the file system is handled like a
 * full tier - the oldest segment is reclaimed - puts keep working, and what
 * is present reads back right. */
static void test_file_system_full(void **state) {
  char mnt[sizeof dir];
  if (snprintf(mnt, sizeof mnt, "%s/small", dir) >= (int)sizeof mnt) skip();
  assert_int_equal(mkdir(mnt, 0700), 0);
  if (mount("cascade-test", mnt, "tmpfs", 0, "size=6m") != 0) {
    print_message("cannot mount a tmpfs (%s): skipped\n", strerror(errno));
    skip();
  }
  char saved[512];
  snprintf(saved, sizeof saved, "%s", dir);
  snprintf(dir, sizeof dir, "%s", mnt);
  cascade *c = open_tiered("256k", "disk.segment_size", "1m", NULL);
  enum { N = 200 }; /* 12.5 MiB into 6 MiB */
  for (int i = 0; i < N; i++) put_i(c, i, NULL);
  struct cascade_stats s = tu_stats_of(c);
  assert_true(DISK(s).evictions > 0);
  assert_true(strncmp(s.disk_mode, "buffered", 8) == 0);
  for (int i = 0; i < N; i++) {
    char k[32];
    key_of(k, sizeof k, i);
    if (cascade_exists(c, "ns", k, strlen(k)) == 1) check_i(c, i);
  }
  for (int i = N - 4; i < N; i++) check_i(c, i);
  cascade_close(c);
  c = open_tiered("256k", "disk.segment_size", "1m", NULL);
  s = tu_stats_of(c);
  assert_true(s.keys > 0);
  cascade_close(c);
  snprintf(dir, sizeof dir, "%s", saved);
  assert_int_equal(umount2(mnt, MNT_DETACH), 0);
}

/* Deletes leave garbage; the background compactor rewrites segments whose
 * live share fell under disk.compact_below: the files shrink, the live
 * blocks still read back right, also after a restart. */
static void test_background_compaction(void **state) {
  cascade *c = open_tiered("256k", "disk.segment_size", "1m",
                           "disk.compact_below", "60", NULL);
  enum { N = 96 }; /* 6 MiB: six segments */
  for (int i = 0; i < N; i++) put_i(c, i, NULL);
  assert_int_equal(cascade_flush(c), 0);
  struct cascade_stats s = tu_stats_of(c);
  uint64_t before = s.disk_file_bytes;
  for (int i = 0; i < N; i++) {
    if (i % 4 == 0) continue; /* keep a quarter */
    char k[32];
    key_of(k, sizeof k, i);
    assert_int_equal(cascade_delete(c, "ns", k, strlen(k)), 0);
  }
  uint64_t t0 = tu_now_ms();
  do {
    s = tu_stats_of(c);
  } while ((s.disk_compactions == 0 || s.disk_file_bytes >= before) &&
           tu_now_ms() - t0 < 10000);
  assert_true(s.disk_compactions > 0);
  assert_true(s.disk_file_bytes < before);
  for (int i = 0; i < N; i += 4) check_i(c, i);
  cascade_close(c);
  c = open_tiered("256k", "disk.segment_size", "1m", NULL);
  s = tu_stats_of(c);
  assert_int_equal(s.keys, N / 4);
  for (int i = 0; i < N; i += 4) check_i(c, i);
  tu_check_absent(c, "ns", "blk-00001");
  cascade_close(c);
}

/* A second store on the same directory (and rank) is refused; another
 * rank is fine. */
static void test_second_open_refused(void **state) {
  cascade *c = open_tiered("256k", NULL);
  cascade_config *cfg;
  assert_int_equal(cascade_config_new(&cfg), 0);
  assert_int_equal(cascade_config_set(cfg, "dram.capacity", "256k"), 0);
  assert_int_equal(cascade_config_set(cfg, "disk.dir", dir), 0);
  cascade *c2 = NULL;
  assert_int_equal(cascade_open(cfg, &c2), -EBUSY);
  assert_null(c2);
  assert_int_equal(cascade_config_set(cfg, "disk.rank", "1"), 0);
  assert_int_equal(cascade_open(cfg, &c2), 0);
  cascade_close(c2);
  cascade_config_free(cfg);
  cascade_close(c);
}

/* Without a disk tier, eviction still drops blocks (and flush is a no-op). */
static void test_no_disk_tier(void **state) {
  cascade *c = tu_open_with("dram.capacity", "256k", NULL);
  for (int i = 0; i < 8; i++) put_i(c, i, NULL);
  struct cascade_stats s = tu_stats_of(c);
  assert_false(DISK(s).present);
  assert_int_equal(DRAM(s).evictions, 4);
  assert_int_equal(cascade_flush(c), 0);
  assert_int_equal(cascade_drop_page_cache(c), 0);
  cascade_close(c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_writeback_demotion, setup, teardown),
      cmocka_unit_test_setup_teardown(test_promotion, setup, teardown),
      cmocka_unit_test_setup_teardown(test_restart, setup, teardown),
      cmocka_unit_test_setup_teardown(test_dedup_on_disk, setup, teardown),
      cmocka_unit_test_setup_teardown(test_write_through, setup, teardown),
      cmocka_unit_test_setup_teardown(test_selective, setup, teardown),
      cmocka_unit_test_setup_teardown(test_view_of_disk_block, setup, teardown),
      cmocka_unit_test_setup_teardown(test_batch_from_disk, setup, teardown),
      cmocka_unit_test_setup_teardown(test_prefetch, setup, teardown),
      cmocka_unit_test_setup_teardown(test_corrupt_value_is_a_miss, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_disk_capacity, setup, teardown),
      cmocka_unit_test_setup_teardown(test_background_compaction, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_file_system_full, setup, teardown),
      cmocka_unit_test_setup_teardown(test_second_open_refused, setup,
                                      teardown),
      cmocka_unit_test(test_no_disk_tier),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
