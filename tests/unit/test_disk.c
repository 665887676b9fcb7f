/*
 * test_disk.c - unit tests for the disk tier (src/tier/disk.c): records of
 * every type and size round-trip before and after flush and across
 * restarts; reads verify what they return; corruption and torn tails are
 * found at open; the rank lock; compaction; capacity and a full file
 * system; buffered and O_DIRECT modes; batched reads; concurrent use.
 *
 * Everything happens under a fresh directory (mkdtemp in $TMPDIR or /tmp)
 * that is removed at the end.  The file-system-full case mounts a small
 * tmpfs and is skipped where mounting is not allowed.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* mkdtemp, nftw, O_DIRECT */
#endif

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"
#include "tier/disk.h"

#define KiB ((uint64_t)1 << 10)
#define MiB ((uint64_t)1 << 20)
#define REC_FIXED 80 /* bytes of a record header before ns and key */

/* ---- helpers ------------------------------------------------------------- */

static char g_root[1024]; /* per-run temp dir */

static int rm_cb(const char *p, const struct stat *sb, int flag,
                 struct FTW *f) {
  (void)sb;
  (void)flag;
  (void)f;
  return remove(p);
}

static void rm_rf(const char *p) { nftw(p, rm_cb, 16, FTW_DEPTH | FTW_PHYS); }

/* A fresh directory name under the run's temp dir (not created). */
static void subdir(char *buf, size_t cap, const char *name) {
  snprintf(buf, cap, "%s/%s", g_root, name);
}

static disk_opts opts_for(const char *dir) {
  disk_opts o = {
      .dir = dir,
      .rank = 7,
      .segment_size = 4 * MiB,
      .capacity = 0,
      .sync = DISK_SYNC_BATCH,
      .io = DISK_IO_AUTO,
      .queue_depth = 4,
      .write_buffer = 64 * KiB,
      .compact_threshold = 0.5,
  };
  return o;
}

static cascade_cid cid_of(uint64_t seed) {
  cascade_cid c;
  tu_fill(c.b, sizeof c.b, seed ^ 0xc1dc1dc1dULL);
  return c;
}

/* One record as appended by a test, with its value's seed. */
struct item {
  disk_rec rec;
  char ns[32];
  char key[32];
  uint64_t seed;
  disk_loc loc;
  uint64_t bytes;
  int live;
};

static void item_init(struct item *it, int type, const char *ns,
                      const char *key, uint64_t vlen, uint64_t seed) {
  memset(it, 0, sizeof *it);
  snprintf(it->ns, sizeof it->ns, "%s", ns);
  it->rec.type = type;
  it->rec.ns = it->ns;
  it->rec.nslen = (uint32_t)strlen(it->ns);
  if (key != NULL) {
    snprintf(it->key, sizeof it->key, "%s", key);
    it->rec.key = it->key;
    it->rec.klen = (uint32_t)strlen(it->key);
  }
  it->rec.cid = cid_of(seed);
  it->rec.vlen = vlen;
  it->seed = seed;
  if (type == DISK_REC_KEY) {
    it->rec.expire_ns = 1000000000ULL * seed;
    it->rec.prio = 2;
    it->rec.kflags = 1;
  }
}

static int append_item(disk *d, struct item *it) {
  void *v = NULL;
  if (it->rec.type == DISK_REC_VALUE) {
    v = malloc(it->rec.vlen ? it->rec.vlen : 1);
    assert_non_null(v);
    tu_fill(v, it->rec.vlen, it->seed);
  }
  int r = disk_append(d, &it->rec, v, &it->loc, &it->bytes);
  free(v);
  if (r == 0) {
    assert_int_not_equal(it->loc, DISK_LOC_NONE);
    assert_true(it->bytes >= REC_FIXED + it->rec.nslen + it->rec.klen);
    assert_int_equal(it->bytes % DISK_REC_ALIGN, 0);
    it->live = 1;
  }
  return r;
}

static void append_ok(disk *d, struct item *it) {
  assert_int_equal(append_item(d, it), 0);
}

/* The want of a VALUE item (with its fields, not the ones from disk). */
static disk_rec want_of(const struct item *it) {
  disk_rec w = {.type = DISK_REC_VALUE,
                .ns = it->ns,
                .nslen = it->rec.nslen,
                .cid = it->rec.cid,
                .vlen = it->rec.vlen};
  return w;
}

/* disk_read of a VALUE item; returns its rc, checks the bytes on success. */
static int read_item(disk *d, const struct item *it) {
  uint64_t n = it->rec.vlen;
  uint8_t *buf = malloc(n ? n : 1), *exp = malloc(n ? n : 1);
  assert_non_null(buf);
  assert_non_null(exp);
  disk_rec w = want_of(it);
  int r = disk_read(d, it->loc, &w, buf, n);
  if (r == 0) {
    tu_fill(exp, n, it->seed);
    assert_memory_equal(buf, exp, n);
  }
  free(buf);
  free(exp);
  return r;
}

static void read_ok(disk *d, const struct item *it) {
  assert_int_equal(read_item(d, it), 0);
}

/* Records reported by the scan at open. */
struct found {
  int type;
  char ns[256];
  uint32_t nslen;
  char key[64];
  uint32_t klen;
  cascade_cid cid;
  uint64_t vlen, expire, seq, bytes;
  int8_t prio;
  uint8_t kflags;
  disk_loc loc;
};

struct scan_log {
  struct found *v;
  size_t n, cap;
};

static void on_rec(void *ctx, const disk_rec *rec, disk_loc loc,
                   uint64_t bytes) {
  struct scan_log *s = ctx;
  if (s->n == s->cap) {
    s->cap = s->cap ? 2 * s->cap : 64;
    s->v = realloc(s->v, s->cap * sizeof *s->v);
    assert_non_null(s->v);
  }
  struct found *f = &s->v[s->n++];
  memset(f, 0, sizeof *f);
  f->type = rec->type;
  assert_true(rec->nslen < sizeof f->ns);
  assert_true(rec->klen < sizeof f->key);
  memcpy(f->ns, rec->ns, rec->nslen);
  f->nslen = rec->nslen;
  if (rec->klen) memcpy(f->key, rec->key, rec->klen);
  f->klen = rec->klen;
  f->cid = rec->cid;
  f->vlen = rec->vlen;
  f->expire = rec->expire_ns;
  f->seq = rec->seq;
  f->prio = rec->prio;
  f->kflags = rec->kflags;
  f->loc = loc;
  f->bytes = bytes;
}

static disk *open_scan(const disk_opts *o, struct scan_log *log) {
  memset(log, 0, sizeof *log);
  disk *d = NULL;
  int r = disk_open(o, on_rec, log, &d);
  assert_int_equal(r, 0);
  assert_non_null(d);
  return d;
}

static disk *open_ok(const disk_opts *o) {
  disk *d = NULL;
  assert_int_equal(disk_open(o, NULL, NULL, &d), 0);
  assert_non_null(d);
  return d;
}

/* The found record matches the appended item exactly. */
static void match(const struct found *f, const struct item *it) {
  assert_int_equal(f->type, it->rec.type);
  assert_int_equal(f->nslen, it->rec.nslen);
  assert_memory_equal(f->ns, it->ns, f->nslen);
  assert_int_equal(f->klen, it->rec.klen);
  if (f->klen) assert_memory_equal(f->key, it->key, f->klen);
  assert_memory_equal(f->cid.b, it->rec.cid.b, CASCADE_CID_BYTES);
  assert_int_equal(f->vlen, it->rec.vlen);
  assert_int_equal(f->seq, it->rec.seq);
  assert_int_equal(f->loc, it->loc);
  assert_int_equal(f->bytes, it->bytes);
  assert_int_equal(f->expire, it->rec.expire_ns);
  assert_int_equal(f->prio, it->rec.prio);
  assert_int_equal(f->kflags, it->rec.kflags);
}

static disk_stats stats(disk *d) {
  disk_stats s;
  disk_get_stats(d, &s);
  return s;
}

/* Segment files of rank in dir, and the highest file number. */
static int count_segments(const char *dir, uint32_t rank, uint32_t *max) {
  char prefix[32];
  snprintf(prefix, sizeof prefix, "agg_rank%03u_", rank);
  DIR *dh = opendir(dir);
  assert_non_null(dh);
  int n = 0;
  if (max) *max = 0;
  struct dirent *e;
  while ((e = readdir(dh)) != NULL) {
    if (strncmp(e->d_name, prefix, strlen(prefix)) != 0) continue;
    n++;
    uint32_t f = (uint32_t)strtoul(e->d_name + strlen(prefix), NULL, 10);
    if (max && f > *max) *max = f;
  }
  closedir(dh);
  return n;
}

static void seg_file(char *buf, size_t cap, const char *dir, uint32_t rank,
                     uint32_t fileno) {
  int n = snprintf(buf, cap, "%s/agg_rank%03u_%06u.bin", dir, rank, fileno);
  assert_true(n > 0 && (size_t)n < cap);
}

/* The location's file number and byte offset (the packing of disk.c). */
static uint32_t loc_file(disk_loc l) { return (uint32_t)(l >> 34); }
static uint64_t loc_off(disk_loc l) {
  return (l & ((1ULL << 34) - 1)) * DISK_REC_ALIGN;
}

/* XOR one byte of a file with 0xff. */
static void flip_byte(const char *path, uint64_t off) {
  int fd = open(path, O_RDWR);
  assert_true(fd >= 0);
  uint8_t b;
  assert_int_equal(pread(fd, &b, 1, (off_t)off), 1);
  b ^= 0xff;
  assert_int_equal(pwrite(fd, &b, 1, (off_t)off), 1);
  close(fd);
}

/* File offset of the value of the VALUE record at loc in path: after the
 * header (REC_FIXED + nslen bytes) and its vpad (u32 at header byte 20:
 * values of 64 KiB or more start IO_ALIGN-aligned). */
static uint64_t value_off(const char *path, disk_loc loc, uint32_t nslen) {
  int fd = open(path, O_RDONLY);
  assert_true(fd >= 0);
  uint8_t b[4];
  assert_int_equal(pread(fd, b, 4, (off_t)(loc_off(loc) + 20)), 4);
  close(fd);
  uint32_t vpad = b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
                  (uint32_t)b[3] << 24;
  return loc_off(loc) + REC_FIXED + nslen + vpad;
}

/* ---- 1: round trip -------------------------------------------------------- */

static void test_roundtrip(void **state) {
  char dir[PATH_MAX];
  subdir(dir, sizeof dir, "roundtrip");
  disk_opts o = opts_for(dir);
  struct scan_log log;
  disk *d = open_scan(&o, &log);
  assert_int_equal(log.n, 0);

  enum { N = 9 };
  struct item it[N + 1];
  item_init(&it[0], DISK_REC_VALUE, "ns1", NULL, 1, 1);
  item_init(&it[1], DISK_REC_VALUE, "ns1", NULL, 4 * KiB, 2);
  item_init(&it[2], DISK_REC_KEY, "ns1", "key-one", 4 * KiB, 2);
  item_init(&it[3], DISK_REC_VALUE, "a-longer-namespace", NULL, MiB, 3);
  item_init(&it[4], DISK_REC_VALUE, "ns2", NULL, 200 * KiB + 7, 4);
  item_init(&it[5], DISK_REC_DELETE, "ns2", "gone", 0, 5);
  item_init(&it[6], DISK_REC_VALUE, "", NULL, 0, 6); /* empty value */
  /* 3 MiB does not fit in what is left of the first 4 MiB segment */
  item_init(&it[7], DISK_REC_VALUE, "ns3", NULL, 3 * MiB, 7);
  item_init(&it[8], DISK_REC_VALUE, "ns3", NULL, 100, 8);
  for (int i = 0; i < N; i++) {
    append_ok(d, &it[i]);
    if (i > 0) assert_true(it[i].rec.seq > it[i - 1].rec.seq);
  }
  assert_int_equal(loc_file(it[0].loc), 1);
  assert_int_equal(loc_file(it[6].loc), 1);
  assert_int_equal(loc_file(it[7].loc), 2);
  assert_true(strncmp(disk_mode(d), "direct", 6) == 0 ||
              strncmp(disk_mode(d), "buffered", 8) == 0);

  /* from the write buffers and the file, before any flush */
  for (int i = 0; i < N; i++)
    if (it[i].rec.type == DISK_REC_VALUE) {
      read_ok(d, &it[i]);
    }
  assert_int_equal(disk_flush(d), 0);
  disk_drop_cache(d);
  for (int i = 0; i < N; i++)
    if (it[i].rec.type == DISK_REC_VALUE) read_ok(d, &it[i]);
  disk_stats s = stats(d);
  assert_int_equal(s.appends, N);
  assert_int_equal(s.segments, 2);
  assert_int_equal(s.file_bytes, 8 * MiB);
  assert_int_equal(s.read_errors, 0);
  assert_true(s.syncs >= 1);
  uint64_t live = 0;
  for (int i = 0; i < N; i++) live += it[i].bytes;
  assert_int_equal(s.live_bytes, live);
  assert_int_equal(disk_close(d), 0);

  /* restart: exactly the records appended, in order */
  d = open_scan(&o, &log);
  assert_int_equal(log.n, N);
  for (int i = 0; i < N; i++) match(&log.v[i], &it[i]);
  s = stats(d);
  assert_int_equal(s.torn_records, 0);
  assert_int_equal(s.live_bytes, live);
  for (int i = 0; i < N; i++)
    if (it[i].rec.type == DISK_REC_VALUE) read_ok(d, &it[i]);
  free(log.v);

  /* appends go on in a new file, seq after the highest seen */
  item_init(&it[N], DISK_REC_VALUE, "ns4", NULL, 5000, 9);
  append_ok(d, &it[N]);
  assert_true(it[N].rec.seq > it[N - 1].rec.seq);
  assert_int_equal(loc_file(it[N].loc), 3);
  read_ok(d, &it[N]);
  assert_int_equal(disk_close(d), 0);

  /* an open without appends creates no file */
  d = open_scan(&o, &log);
  assert_int_equal(log.n, N + 1);
  for (int i = 0; i <= N; i++) match(&log.v[i], &it[i]);
  free(log.v);
  assert_int_equal(disk_close(d), 0);
  assert_int_equal(count_segments(dir, o.rank, NULL), 3);
  rm_rf(dir);
}

static void test_bad_args(void **state) {
  char dir[PATH_MAX];
  subdir(dir, sizeof dir, "badargs");
  disk_opts o = opts_for(dir);
  disk *d = (disk *)&o;
  assert_int_equal(disk_open(NULL, NULL, NULL, &d), -EINVAL);
  assert_null(d);
  disk_opts b = o;
  b.segment_size = MiB - 1;
  assert_int_equal(disk_open(&b, NULL, NULL, &d), -EINVAL);
  b = o;
  b.write_buffer = 1024;
  assert_int_equal(disk_open(&b, NULL, NULL, &d), -EINVAL);
  b = o;
  b.queue_depth = 0;
  assert_int_equal(disk_open(&b, NULL, NULL, &d), -EINVAL);
  b = o;
  b.rank = 1000;
  assert_int_equal(disk_open(&b, NULL, NULL, &d), -EINVAL);
  b = o;
  b.dir = NULL;
  assert_int_equal(disk_open(&b, NULL, NULL, &d), -EINVAL);

  o.segment_size = MiB;
  d = open_ok(&o);
  struct item it;
  item_init(&it, DISK_REC_VALUE, "ns", NULL, MiB, 1); /* > segment */
  assert_int_equal(append_item(d, &it), -EFBIG);
  item_init(&it, 7, "ns", NULL, 1, 1);
  assert_int_equal(append_item(d, &it), -EINVAL);
  disk_rec r = {.type = DISK_REC_VALUE, .vlen = 10};
  disk_loc l;
  uint64_t n;
  assert_int_equal(disk_append(d, &r, NULL, &l, &n), -EINVAL);
  assert_int_equal(stats(d).segments, 0);
  assert_int_equal(disk_close(d), 0);
  assert_int_equal(disk_close(NULL), 0);
  rm_rf(dir);
}

/* ---- 2: reads check what they return -------------------------------------- */

static void test_wrong_want(void **state) {
  char dir[PATH_MAX];
  subdir(dir, sizeof dir, "want");
  disk_opts o = opts_for(dir);
  disk *d = open_ok(&o);
  struct item it;
  item_init(&it, DISK_REC_VALUE, "nsA", NULL, 10 * KiB, 11);
  append_ok(d, &it);
  uint8_t *buf = malloc(20 * KiB);
  assert_non_null(buf);
  uint64_t errs = 0;
  for (int pass = 0; pass < 2; pass++) { /* from the buffer, then the file */
    read_ok(d, &it);
    disk_rec w = want_of(&it);
    w.cid.b[3] ^= 1;
    assert_int_equal(disk_read(d, it.loc, &w, buf, 20 * KiB), -EBADMSG);
    w = want_of(&it);
    w.ns = "nsB";
    assert_int_equal(disk_read(d, it.loc, &w, buf, 20 * KiB), -EBADMSG);
    w = want_of(&it);
    w.nslen = 2;
    assert_int_equal(disk_read(d, it.loc, &w, buf, 20 * KiB), -EBADMSG);
    w = want_of(&it);
    w.vlen--;
    assert_int_equal(disk_read(d, it.loc, &w, buf, 20 * KiB), -EBADMSG);
    w = want_of(&it);
    w.vlen++;
    assert_int_equal(disk_read(d, it.loc, &w, buf, 20 * KiB), -EBADMSG);
    w = want_of(&it);
    w.vlen = 5 * MiB; /* past the segment */
    assert_int_equal(disk_read(d, it.loc, &w, buf, 20 * KiB), -EINVAL);
    w = want_of(&it); /* a location that is not a record start */
    assert_int_equal(disk_read(d, it.loc + 1, &w, buf, 20 * KiB), -EBADMSG);
    errs += 6;
    assert_int_equal(stats(d).read_errors, errs);
    /* no such segment */
    assert_int_equal(disk_read(d, it.loc + (5ULL << 34), &w, buf, 20 * KiB),
                     -ENOENT);
    assert_int_equal(disk_read(d, DISK_LOC_NONE, &w, buf, 20 * KiB), -ENOENT);
    assert_int_equal(stats(d).read_errors, errs);
    assert_int_equal(disk_flush(d), 0);
    disk_drop_cache(d);
  }
  free(buf);
  disk_close(d);
  rm_rf(dir);
}

/* ---- 3: corruption -------------------------------------------------------- */

/* Three 300 KiB values per 1 MiB segment, 9 of them: 3 segment files. */
static disk *fill_three_segments(const disk_opts *o, struct item *it) {
  disk *d = open_ok(o);
  for (int i = 0; i < 9; i++) {
    item_init(&it[i], DISK_REC_VALUE, "c", NULL, 300 * KiB, 100 + i);
    append_ok(d, &it[i]);
    assert_int_equal(loc_file(it[i].loc), 1 + i / 3);
  }
  assert_int_equal(disk_close(d), 0);
  return d;
}

static void test_corrupt_value(void **state) {
  char dir[PATH_MAX], path[PATH_MAX];
  subdir(dir, sizeof dir, "corrupt_value");
  disk_opts o = opts_for(dir);
  o.segment_size = MiB;
  struct item it[9];
  fill_three_segments(&o, it);
  /* a value byte of record 1 (sealed segment 1), and of record 7 (last) */
  seg_file(path, sizeof path, dir, o.rank, 1);
  flip_byte(path, value_off(path, it[1].loc, 1) + 1000);

  struct scan_log log;
  disk *d = open_scan(&o, &log);
  /* values are not checked outside the last segment: all reported */
  assert_int_equal(log.n, 9);
  assert_int_equal(stats(d).torn_records, 0);
  assert_int_equal(read_item(d, &it[1]), -EBADMSG);
  assert_int_equal(stats(d).read_errors, 1);
  for (int i = 0; i < 9; i++)
    if (i != 1) read_ok(d, &it[i]);
  free(log.v);
  disk_close(d);

  /* in the last segment the scan checks values: it stops there */
  seg_file(path, sizeof path, dir, o.rank, 3);
  flip_byte(path, value_off(path, it[7].loc, 1) + 5);
  d = open_scan(&o, &log);
  assert_int_equal(log.n, 7);
  for (int i = 0; i < 7; i++) match(&log.v[i], &it[i]);
  assert_int_equal(stats(d).torn_records, 1);
  assert_int_equal(read_item(d, &it[7]), -EBADMSG);
  free(log.v);
  disk_close(d);
  rm_rf(dir);
}

static void test_corrupt_header(void **state) {
  char dir[PATH_MAX], path[PATH_MAX];
  subdir(dir, sizeof dir, "corrupt_header");
  disk_opts o = opts_for(dir);
  o.segment_size = MiB;
  struct item it[9];
  fill_three_segments(&o, it);
  /* the namespace byte in the header of record 4 (segment 2 of 3) */
  seg_file(path, sizeof path, dir, o.rank, 2);
  flip_byte(path, loc_off(it[4].loc) + REC_FIXED);

  struct scan_log log;
  disk *d = open_scan(&o, &log);
  /* 0..3 found, 4 and what follows it in segment 2 (5) not, 6..8 found */
  assert_int_equal(log.n, 7);
  int want[] = {0, 1, 2, 3, 6, 7, 8};
  for (int i = 0; i < 7; i++) match(&log.v[i], &it[want[i]]);
  disk_stats s = stats(d);
  assert_true(s.torn_records > 0);
  assert_int_equal(read_item(d, &it[4]), -EBADMSG);
  read_ok(d, &it[5]); /* still intact, just not reported */
  read_ok(d, &it[8]);
  free(log.v);
  disk_close(d);
  rm_rf(dir);
}

/* ---- 4: torn tail --------------------------------------------------------- */

static void torn_case(const char *name, int truncate_it) {
  char dir[PATH_MAX], path[PATH_MAX];
  subdir(dir, sizeof dir, name);
  disk_opts o = opts_for(dir);
  disk *d = open_ok(&o);
  enum { N = 10 };
  struct item it[N + 2];
  for (int i = 0; i < N - 1; i++) {
    item_init(&it[i], i % 3 == 2 ? DISK_REC_KEY : DISK_REC_VALUE, "t",
              i % 3 == 2 ? "k" : NULL, 100 * KiB, 200 + i);
    append_ok(d, &it[i]);
  }
  item_init(&it[N - 1], DISK_REC_VALUE, "t", NULL, 100 * KiB, 300);
  append_ok(d, &it[N - 1]); /* the last record: a value, torn below */
  assert_int_equal(disk_close(d), 0);

  seg_file(path, sizeof path, dir, o.rank, 1);
  uint64_t off = loc_off(it[N - 1].loc);
  if (truncate_it) {
    assert_int_equal(truncate(path, (off_t)(off + 50 * KiB)), 0);
  } else {
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    uint8_t junk[4096];
    tu_fill(junk, sizeof junk, 99);
    assert_int_equal(pwrite(fd, junk, sizeof junk, (off_t)(off + 20 * KiB)),
                     (ssize_t)sizeof junk);
    close(fd);
  }

  /* every record before the torn one */
  struct scan_log log;
  d = open_scan(&o, &log);
  assert_int_equal(log.n, N - 1);
  for (int i = 0; i < N - 1; i++) match(&log.v[i], &it[i]);
  assert_int_equal(stats(d).torn_records, 1);
  free(log.v);
  item_init(&it[N], DISK_REC_VALUE, "t", NULL, 3 * KiB, 400);
  append_ok(d, &it[N]);
  assert_true(it[N].rec.seq > it[N - 2].rec.seq);
  assert_int_equal(loc_file(it[N].loc), 2);
  read_ok(d, &it[N]);
  assert_int_equal(disk_close(d), 0);

  /* the torn tail was cut at the first open: not counted again */
  d = open_scan(&o, &log);
  assert_int_equal(log.n, N);
  for (int i = 0; i < N - 1; i++) match(&log.v[i], &it[i]);
  match(&log.v[N - 1], &it[N]);
  assert_int_equal(stats(d).torn_records, 0);
  read_ok(d, &it[N]);
  read_ok(d, &it[0]);
  free(log.v);
  assert_int_equal(disk_close(d), 0);
  rm_rf(dir);
}

static void test_torn_tail_truncated(void **state) {
  torn_case("torn_trunc", 1);
}

static void test_torn_tail_garbage(void **state) { torn_case("torn_junk", 0); }

/* ---- 5: the rank lock ----------------------------------------------------- */

static void test_lock(void **state) {
  char dir[PATH_MAX];
  subdir(dir, sizeof dir, "lock");
  disk_opts o = opts_for(dir);
  disk *d = open_ok(&o), *d2 = NULL;
  assert_int_equal(disk_open(&o, NULL, NULL, &d2), -EBUSY);
  assert_null(d2);
  disk_opts o2 = o;
  o2.rank = 8;
  d2 = open_ok(&o2);
  disk_close(d2);
  disk_close(d);
  d = open_ok(&o); /* free again after close */
  disk_close(d);

  /* held by another process */
  int up[2], down[2];
  assert_int_equal(pipe(up), 0);
  assert_int_equal(pipe(down), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    close(up[0]);
    close(down[1]);
    disk *c = NULL;
    char ok = disk_open(&o, NULL, NULL, &c) == 0 ? 'y' : 'n';
    if (write(up[1], &ok, 1) != 1) _exit(2);
    char go;
    if (read(down[0], &go, 1) != 1) _exit(3);
    disk_close(c);
    _exit(ok == 'y' ? 0 : 1);
  }
  close(up[1]);
  close(down[0]);
  char ok = 0;
  assert_int_equal(read(up[0], &ok, 1), 1);
  assert_int_equal(ok, 'y');
  d = NULL;
  assert_int_equal(disk_open(&o, NULL, NULL, &d), -EBUSY);
  assert_int_equal(write(down[1], "g", 1), 1);
  int st = 0;
  assert_int_equal(waitpid(pid, &st, 0), pid);
  assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  close(up[0]);
  close(down[1]);
  d = open_ok(&o);
  disk_close(d);
  rm_rf(dir);
}

/* ---- 6: compaction -------------------------------------------------------- */

struct cmap {
  struct item *it;
  int n;
  int moves, live_calls;
  uint64_t moved_bytes;
};

static struct item *cmap_find(struct cmap *m, disk_loc loc) {
  for (int i = 0; i < m->n; i++)
    if (m->it[i].loc == loc) return &m->it[i];
  return NULL;
}

static int c_is_live(void *ctx, const disk_rec *rec, disk_loc loc) {
  struct cmap *m = ctx;
  m->live_calls++;
  struct item *it = cmap_find(m, loc);
  assert_non_null(it); /* every record of a victim was appended by us */
  assert_memory_equal(rec->cid.b, it->rec.cid.b, CASCADE_CID_BYTES);
  assert_int_equal(rec->seq, it->rec.seq);
  return it->live;
}

static void c_moved(void *ctx, const disk_rec *rec, disk_loc old,
                    disk_loc new_loc, uint64_t bytes) {
  struct cmap *m = ctx;
  struct item *it = cmap_find(m, old);
  assert_non_null(it);
  assert_true(it->live);
  assert_int_equal(rec->seq, it->rec.seq);
  assert_int_equal(bytes, it->bytes);
  assert_int_not_equal(loc_file(new_loc), loc_file(old));
  it->loc = new_loc;
  m->moves++;
  m->moved_bytes += bytes;
}

static void test_compaction(void **state) {
  char dir[PATH_MAX];
  subdir(dir, sizeof dir, "compact");
  disk_opts o = opts_for(dir);
  o.segment_size = MiB;
  o.compact_threshold = 0.5;
  disk *d = open_ok(&o);
  enum { N = 48 };
  struct item it[N];
  for (int i = 0; i < N; i++) {
    item_init(&it[i], DISK_REC_VALUE, "cmp", NULL, 60 * KiB + (uint64_t)i,
              500 + i);
    append_ok(d, &it[i]);
  }
  assert_int_equal(disk_flush(d), 0);
  disk_stats s0 = stats(d);
  assert_true(s0.segments >= 3);
  int nfiles0 = count_segments(dir, o.rank, NULL);
  assert_int_equal(nfiles0, (int)s0.segments);
  /* keep every 5th: the sealed segments fall under the threshold */
  uint64_t live = 0;
  for (int i = 0; i < N; i++) {
    if (i % 5 == 0) {
      live += it[i].bytes;
      continue;
    }
    disk_release(d, it[i].loc, it[i].bytes);
    it[i].live = 0;
  }
  assert_int_equal(stats(d).live_bytes, live);

  struct cmap m = {.it = it, .n = N};
  int steps = 0;
  int64_t r;
  while ((r = disk_compact_step(d, 128 * KiB, c_is_live, c_moved, &m)) > 0) {
    assert_true(r <= (int64_t)(128 * KiB + 64 * KiB)); /* budget + 1 rec */
    steps++;
    assert_true(steps < 100);
    /* the engine reads moved records while compaction goes on */
    for (int i = 0; i < N; i += 5) read_ok(d, &it[i]);
  }
  assert_int_equal(r, 0);
  assert_true(steps >= 2); /* the budget split the work */
  assert_true(m.moves > 0);
  disk_stats s = stats(d);
  assert_true(s.compactions >= 2);
  assert_int_equal(s.compacted_bytes, m.moved_bytes);
  assert_true(s.segments < s0.segments);
  assert_true(s.file_bytes < s0.file_bytes);
  assert_int_equal(count_segments(dir, o.rank, NULL), (int)s.segments);
  assert_int_equal(s.live_bytes, live);
  for (int i = 0; i < N; i += 5) read_ok(d, &it[i]);
  assert_int_equal(disk_compact_step(d, MiB, c_is_live, c_moved, &m), 0);
  assert_int_equal(disk_close(d), 0);

  /* restart: every live record found, where it went, with its seq */
  struct scan_log log;
  d = open_scan(&o, &log);
  assert_int_equal(stats(d).torn_records, 0);
  for (int i = 0; i < N; i += 5) {
    int hits = 0;
    for (size_t k = 0; k < log.n; k++)
      if (log.v[k].loc == it[i].loc) {
        match(&log.v[k], &it[i]);
        hits++;
      }
    assert_int_equal(hits, 1);
    read_ok(d, &it[i]);
  }
  /* no record is reported twice (by cid), and fewer than before */
  assert_true(log.n < N);
  for (size_t a = 0; a < log.n; a++)
    for (size_t b = a + 1; b < log.n; b++)
      assert_memory_not_equal(log.v[a].cid.b, log.v[b].cid.b,
                              CASCADE_CID_BYTES);
  free(log.v);
  disk_close(d);
  rm_rf(dir);
}

/* ---- 7: capacity ---------------------------------------------------------- */

static void test_capacity(void **state) {
  char dir[PATH_MAX];
  subdir(dir, sizeof dir, "capacity");
  disk_opts o = opts_for(dir);
  o.segment_size = MiB;
  o.capacity = 2 * MiB;
  disk *d = open_ok(&o);
  enum { MAX = 64 };
  struct item it[MAX];
  int n = 0, r = 0;
  for (; n < MAX; n++) {
    item_init(&it[n], DISK_REC_VALUE, "cap", NULL, 100 * KiB, 600 + n);
    r = append_item(d, &it[n]);
    if (r != 0) break;
  }
  assert_int_equal(r, -ENOSPC);
  assert_true(n >= 18 && n <= 20);
  assert_int_equal(append_item(d, &it[n]), -ENOSPC);
  disk_stats s = stats(d);
  assert_int_equal(s.segments, 2);
  assert_true(s.file_bytes <= o.capacity);
  assert_int_equal(s.appends, (uint64_t)n);
  for (int i = 0; i < n; i++) read_ok(d, &it[i]);
  /* small records still fit in what is left of the current segment */
  struct item small;
  item_init(&small, DISK_REC_DELETE, "cap", "x", 0, 1);
  append_ok(d, &small);
  assert_int_equal(disk_close(d), 0);
  struct scan_log log;
  d = open_scan(&o, &log);
  assert_int_equal(log.n, (size_t)n + 1);
  free(log.v);
  disk_close(d);
  rm_rf(dir);
}

/* ---- 8: a full file system ------------------------------------------------ */

static void test_fs_full(void **state) {
  char mnt[PATH_MAX], dir[PATH_MAX];
  subdir(mnt, sizeof mnt, "tmpfs");
  assert_int_equal(mkdir(mnt, 0755), 0);
  if (mount("cascade-test", mnt, "tmpfs", 0, "size=4m") != 0) {
    print_message("fs_full: cannot mount a tmpfs (%s): skipped\n",
                  strerror(errno));
    rmdir(mnt);
    skip();
  }
  int pl = snprintf(dir, sizeof dir, "%s/d", mnt);
  assert_true(pl > 0 && (size_t)pl < sizeof dir);
  disk_opts o = opts_for(dir);
  o.segment_size = MiB;
  disk *d = open_ok(&o);
  enum { MAX = 64 };
  struct item it[MAX];
  int n = 0, r = 0;
  for (; n < MAX; n++) {
    item_init(&it[n], DISK_REC_VALUE, "full", NULL, 100 * KiB, 700 + n);
    r = append_item(d, &it[n]);
    if (r != 0) break;
  }
  assert_int_equal(r, -ENOSPC);
  assert_true(n >= 20); /* at least two segments went in */
  assert_int_equal(stats(d).write_errors, 0);
  for (int i = 0; i < n; i++) read_ok(d, &it[i]);
  assert_int_equal(disk_flush(d), 0);
  assert_int_equal(disk_close(d), 0);
  struct scan_log log;
  d = open_scan(&o, &log);
  assert_int_equal(log.n, (size_t)n);
  free(log.v);
  disk_close(d);
  umount2(mnt, MNT_DETACH);
  rmdir(mnt);
}

/* ---- 9: I/O modes --------------------------------------------------------- */

static void mode_roundtrip(const char *dir, int io, const char *prefix) {
  disk_opts o = opts_for(dir);
  o.io = io;
  disk *d = open_ok(&o);
  print_message("%s: %s\n", dir, disk_mode(d));
  assert_true(strncmp(disk_mode(d), prefix, strlen(prefix)) == 0);
  struct item it[3];
  item_init(&it[0], DISK_REC_VALUE, "m", NULL, 777, 801);
  item_init(&it[1], DISK_REC_VALUE, "m", NULL, 300 * KiB + 3, 802);
  item_init(&it[2], DISK_REC_VALUE, "m", NULL, 5, 803);
  for (int i = 0; i < 3; i++) append_ok(d, &it[i]);
  for (int i = 0; i < 3; i++) read_ok(d, &it[i]);
  assert_int_equal(disk_flush(d), 0);
  disk_drop_cache(d);
  for (int i = 0; i < 3; i++) read_ok(d, &it[i]);
  assert_int_equal(disk_close(d), 0);
  struct scan_log log;
  d = open_scan(&o, &log);
  assert_int_equal(log.n, 3);
  for (int i = 0; i < 3; i++) {
    match(&log.v[i], &it[i]);
    read_ok(d, &it[i]);
  }
  free(log.v);
  disk_close(d);
}

static void test_mode_buffered_tmpfs(void **state) {
  char dir[] = "/dev/shm/cascade-disk-test-XXXXXX";
  if (mkdtemp(dir) == NULL) {
    print_message("no /dev/shm: skipped\n");
    skip();
  }
  mode_roundtrip(dir, DISK_IO_AUTO, "buffered");
  rm_rf(dir);
}

static void test_mode_direct(void **state) {
  char dir[] = "/var/tmp/cascade-disk-test-XXXXXX";
  if (mkdtemp(dir) == NULL) {
    print_message("no /var/tmp: skipped\n");
    skip();
  }
  char probe[PATH_MAX];
  snprintf(probe, sizeof probe, "%s/probe", dir);
  int fd = open(probe, O_RDWR | O_CREAT | O_DIRECT, 0644);
  if (fd < 0) {
    print_message("/var/tmp has no O_DIRECT: skipped\n");
    rm_rf(dir);
    skip();
  }
  close(fd);
  unlink(probe);
  mode_roundtrip(dir, DISK_IO_AUTO, "direct");
  rm_rf(dir);
  assert_non_null(mkdtemp(strcpy(dir, "/var/tmp/cascade-disk-test-XXXXXX")));
  mode_roundtrip(dir, DISK_IO_BUFFERED, "buffered");
  rm_rf(dir);
}

static void test_sync_modes(void **state) {
  const int modes[] = {DISK_SYNC_NONE, DISK_SYNC_ALWAYS};
  for (int m = 0; m < 2; m++) {
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s/sync%d", g_root, m);
    disk_opts o = opts_for(dir);
    o.sync = modes[m];
    disk *d = open_ok(&o);
    struct item it[20];
    for (int i = 0; i < 20; i++) {
      item_init(&it[i], DISK_REC_VALUE, "s", NULL, 1000 + 100 * (uint64_t)i,
                900 + i);
      append_ok(d, &it[i]);
    }
    disk_stats s = stats(d);
    if (modes[m] == DISK_SYNC_ALWAYS)
      assert_true(s.syncs >= 20);
    else
      assert_int_equal(s.syncs, 0);
    for (int i = 0; i < 20; i++) read_ok(d, &it[i]);
    assert_int_equal(disk_flush(d), 0);
    if (modes[m] == DISK_SYNC_NONE) assert_int_equal(stats(d).syncs, 0);
    assert_int_equal(disk_close(d), 0);
    struct scan_log log;
    d = open_scan(&o, &log);
    assert_int_equal(log.n, 20);
    for (int i = 0; i < 20; i++) read_ok(d, &it[i]);
    free(log.v);
    disk_close(d);
    rm_rf(dir);
  }
}

/* Without io_uring (a seccomp filter makes io_uring_setup fail, as a
 * sandbox would): "+pwrite" mode, one write buffer, same results.  Runs in
 * a child, with exit codes instead of cmocka asserts. */
static int no_uring_child(const char *dir) {
  struct sock_filter f[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  struct sock_fprog prog = {.len = sizeof f / sizeof f[0], .filter = f};
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
      prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0)
    return 77;
  disk_opts o = opts_for(dir);
  o.segment_size = MiB;
  disk *d = NULL;
  if (disk_open(&o, NULL, NULL, &d) != 0) return 10;
  if (strstr(disk_mode(d), "+pwrite") == NULL) return 11;
  enum { N = 12 };
  uint64_t len[N];
  disk_loc loc[N];
  disk_rec rec[N];
  uint8_t *buf = malloc(300 * KiB), *exp = malloc(300 * KiB);
  if (buf == NULL || exp == NULL) return 12;
  for (int i = 0; i < N; i++) {
    len[i] = i % 4 == 3 ? 250 * KiB : 1 + 977 * (uint64_t)i; /* > buffer */
    rec[i] = (disk_rec){.type = DISK_REC_VALUE,
                        .ns = "p",
                        .nslen = 1,
                        .cid = cid_of(50 + (uint64_t)i),
                        .vlen = len[i]};
    tu_fill(buf, len[i], 50 + (uint64_t)i);
    uint64_t b;
    if (disk_append(d, &rec[i], buf, &loc[i], &b) != 0) return 13;
  }
  for (int pass = 0; pass < 3; pass++) {
    if (pass == 1 && disk_flush(d) != 0) return 14;
    if (pass == 2) {
      if (disk_close(d) != 0 || disk_open(&o, NULL, NULL, &d) != 0) return 15;
    }
    for (int i = 0; i < N; i++) {
      if (disk_read(d, loc[i], &rec[i], buf, 300 * KiB) != 0) return 20 + pass;
      tu_fill(exp, len[i], 50 + (uint64_t)i);
      if (memcmp(buf, exp, len[i]) != 0) return 30 + pass;
    }
  }
  disk_read_req q = {
      .loc = loc[3], .want = &rec[3], .buf = buf, .cap = 300 * KiB};
  if (disk_read_batch(d, &q, 1) != 1 || q.rc != 0) return 40;
  disk_close(d);
  free(buf);
  free(exp);
  return 0;
}

static void test_no_io_uring(void **state) {
  char dir[PATH_MAX];
  subdir(dir, sizeof dir, "pwrite");
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) _exit(no_uring_child(dir));
  int st = 0;
  assert_int_equal(waitpid(pid, &st, 0), pid);
  assert_true(WIFEXITED(st));
  if (WEXITSTATUS(st) == 77) {
    print_message("no seccomp: skipped\n");
    rm_rf(dir);
    skip();
  }
  assert_int_equal(WEXITSTATUS(st), 0);
  rm_rf(dir);
}

/* ---- 10: batched reads ---------------------------------------------------- */

static void test_read_batch(void **state) {
  char dir[PATH_MAX];
  subdir(dir, sizeof dir, "batch");
  disk_opts o = opts_for(dir);
  disk *d = open_ok(&o);
  enum { N = 30 };
  struct item it[N];
  for (int i = 0; i < N; i++) {
    item_init(&it[i], DISK_REC_VALUE, "b", NULL,
              1 + (uint64_t)(i * 3371) % (100 * KiB), 1000 + i);
    append_ok(d, &it[i]);
    if (i == 19) assert_int_equal(disk_flush(d), 0); /* 0..19 in the file */
  }
  disk_read_req q[N + 2];
  disk_rec w[N + 2];
  uint8_t *bufs[N + 2];
  for (int i = 0; i < N + 2; i++) {
    const struct item *src = &it[i < N ? i : i - N];
    w[i] = want_of(src);
    bufs[i] = malloc(src->rec.vlen);
    assert_non_null(bufs[i]);
    q[i] = (disk_read_req){.loc = src->loc,
                           .want = &w[i],
                           .buf = bufs[i],
                           .cap = src->rec.vlen,
                           .rc = 12345};
  }
  w[N].cid.b[0] ^= 0x80;                   /* bad want */
  q[N + 1].loc = it[1].loc + (9ULL << 34); /* no such segment */
  uint64_t errs0 = stats(d).read_errors;
  assert_int_equal(disk_read_batch(d, q, N + 2), N);
  for (int i = 0; i < N; i++) {
    assert_int_equal(q[i].rc, 0);
    uint8_t *exp = malloc(it[i].rec.vlen);
    tu_fill(exp, it[i].rec.vlen, it[i].seed);
    assert_memory_equal(bufs[i], exp, it[i].rec.vlen);
    free(exp);
  }
  assert_int_equal(q[N].rc, -EBADMSG);
  assert_int_equal(q[N + 1].rc, -ENOENT);
  assert_int_equal(stats(d).read_errors, errs0 + 1);
  assert_int_equal(disk_read_batch(d, q, 0), 0);
  assert_int_equal(disk_read_batch(d, q + 3, 1), 1);
  for (int i = 0; i < N + 2; i++) free(bufs[i]);
  disk_close(d);
  rm_rf(dir);
}

/* ---- 10b: aligned values, reads straight into the caller's buffer -------- */

/* A directory under /var/tmp on a file system with O_DIRECT, or 0. */
static int direct_dir(char *dir, size_t cap) {
  snprintf(dir, cap, "/var/tmp/cascade-disk-test-XXXXXX");
  if (mkdtemp(dir) == NULL) return 0;
  char probe[PATH_MAX + 16];
  snprintf(probe, sizeof probe, "%s/probe", dir);
  int fd = open(probe, O_RDWR | O_CREAT | O_DIRECT, 0644);
  if (fd < 0) {
    rm_rf(dir);
    return 0;
  }
  close(fd);
  unlink(probe);
  return 1;
}

/* Batch-read items[0..n) twice each (request i and n + i), the first into
 * a 4096-aligned buffer (direct: straight into it), the second into one
 * that is not (bounce); plus a request with a wrong content id.  With
 * queue_depth 2 the window slides over 2n + 1 requests. */
static void batch_check(disk *d, const struct item *items, int n) {
  enum { MAXN = 16 };
  assert_true(n <= MAXN);
  disk_read_req q[2 * MAXN + 1];
  disk_rec w[2 * MAXN + 1];
  uint8_t *mem[2 * MAXN + 1];
  int m = 2 * n + 1;
  for (int i = 0; i < m; i++) {
    const struct item *src = &items[i < 2 * n ? i % n : 0];
    uint64_t len = src->rec.vlen;
    void *p = NULL;
    assert_int_equal(posix_memalign(&p, 4096, len + 4096), 0);
    mem[i] = p;
    w[i] = want_of(src);
    q[i] = (disk_read_req){.loc = src->loc,
                           .want = &w[i],
                           .buf = mem[i] + (i < n ? 0 : 64),
                           .cap = len,
                           .rc = 12345};
  }
  w[2 * n].cid.b[3] ^= 1;
  uint64_t errs0 = stats(d).read_errors;
  assert_int_equal(disk_read_batch(d, q, (size_t)m), 2 * n);
  for (int i = 0; i < 2 * n; i++) {
    const struct item *src = &items[i % n];
    assert_int_equal(q[i].rc, 0);
    uint8_t *exp = malloc(src->rec.vlen + 1);
    assert_non_null(exp);
    tu_fill(exp, src->rec.vlen, src->seed);
    assert_memory_equal(q[i].buf, exp, src->rec.vlen);
    free(exp);
  }
  assert_int_equal(q[2 * n].rc, -EBADMSG);
  assert_int_equal(stats(d).read_errors, errs0 + 1);
  /* one at a time, both kinds of buffer */
  for (int i = 0; i < 2 * n; i++) {
    w[i] = want_of(&items[i % n]);
    memset(q[i].buf, 0xa5, items[i % n].rec.vlen);
    assert_int_equal(
        disk_read(d, q[i].loc, &w[i], q[i].buf, items[i % n].rec.vlen), 0);
  }
  for (int i = 0; i < m; i++) free(mem[i]);
}

static int a_is_live(void *ctx, const disk_rec *rec, disk_loc loc) {
  (void)ctx;
  (void)rec;
  (void)loc;
  return 1;
}

static void a_moved(void *ctx, const disk_rec *rec, disk_loc old,
                    disk_loc new_loc, uint64_t bytes) {
  struct item *items = ctx;
  (void)rec;
  for (int i = 0; i < 9; i++)
    if (items[i].loc == old) {
      items[i].loc = new_loc;
      items[i].bytes = bytes;
      return;
    }
  fail();
}

static void aligned_reads(const char *dir, int io) {
  disk_opts o = opts_for(dir);
  o.io = io;
  o.queue_depth = 2;
  o.segment_size = 2 * MiB;
  o.compact_threshold = 2.0; /* every sealed segment is a victim */
  static const char longns[] = /* 200 bytes: headers cross blocks */
      "nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn"
      "nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn"
      "nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn";
  const uint64_t len[9] = {100,          64 * KiB - 1, 64 * KiB,
                           200 * KiB + 7, 256 * KiB,   3000,
                           MiB + 123,    128 * KiB,    65 * KiB + 1};
  struct item it[9];
  disk *d = open_ok(&o);
  /* io_uring or the pwrite fallback, whichever this kernel allows */
  const char *want = io == DISK_IO_DIRECT ? "direct+" : "buffered+";
  assert_true(strncmp(disk_mode(d), want, strlen(want)) == 0);
  for (int i = 0; i < 9; i++) {
    item_init(&it[i], DISK_REC_VALUE, "a", NULL, len[i], 4000 + i);
    if (i % 3 == 1) { /* a long namespace: 280-byte header */
      snprintf(it[i].ns, sizeof it[i].ns, "%.31s", longns);
      it[i].rec.nslen = (uint32_t)strlen(it[i].ns);
    }
    append_ok(d, &it[i]);
  }
  /* not flushed: the last records are (partly) still in write buffers */
  batch_check(d, it, 9);
  assert_int_equal(disk_flush(d), 0);
  batch_check(d, it, 9);
  assert_int_equal(disk_close(d), 0);

  /* values of 64 KiB and more start 4096-aligned in the file */
  for (int i = 0; i < 9; i++) {
    char path[PATH_MAX];
    seg_file(path, sizeof path, dir, o.rank, loc_file(it[i].loc));
    uint64_t v = value_off(path, it[i].loc, it[i].rec.nslen);
    if (len[i] >= 64 * KiB)
      assert_int_equal(v % 4096, 0);
    else
      assert_int_equal(v, loc_off(it[i].loc) + REC_FIXED + it[i].rec.nslen);
  }

  /* cold, after a restart; then after compaction moved everything */
  d = open_ok(&o);
  batch_check(d, it, 9);
  while (disk_compact_step(d, MiB, a_is_live, a_moved, it) > 0)
    ;
  assert_int_equal(disk_flush(d), 0);
  batch_check(d, it, 9);
  assert_int_equal(disk_close(d), 0);
  d = open_ok(&o);
  batch_check(d, it, 9);

  /* a flipped byte in the aligned body, and in the partial last block, of
   * a value read straight into an aligned buffer: -EBADMSG */
  assert_int_equal(disk_close(d), 0);
  for (int k = 0; k < 2; k++) {
    const struct item *x = &it[k == 0 ? 4 : 3];
    char path[PATH_MAX];
    seg_file(path, sizeof path, dir, o.rank, loc_file(x->loc));
    flip_byte(path, value_off(path, x->loc, x->rec.nslen) +
                        (k == 0 ? 5000 : x->rec.vlen - 2));
  }
  d = open_ok(&o);
  for (int k = 0; k < 2; k++) {
    const struct item *x = &it[k == 0 ? 4 : 3];
    void *p = NULL;
    assert_int_equal(posix_memalign(&p, 4096, x->rec.vlen), 0);
    disk_rec w = want_of(x);
    assert_int_equal(disk_read(d, x->loc, &w, p, x->rec.vlen), -EBADMSG);
    disk_read_req q[2] = {{.loc = x->loc, .want = &w, .buf = p,
                           .cap = x->rec.vlen},
                          {.loc = it[0].loc, .want = &w, .buf = p,
                           .cap = x->rec.vlen}};
    assert_int_equal(disk_read_batch(d, q, 2), 0);
    assert_int_equal(q[0].rc, -EBADMSG);
    free(p);
  }
  disk_close(d);
}

static void test_aligned_reads(void **state) {
  char dir[PATH_MAX];
  if (!direct_dir(dir, sizeof dir)) {
    print_message("no O_DIRECT under /var/tmp: skipped\n");
    skip();
  }
  aligned_reads(dir, DISK_IO_DIRECT);
  rm_rf(dir);
  subdir(dir, sizeof dir, "aligned_buffered");
  aligned_reads(dir, DISK_IO_BUFFERED);
  rm_rf(dir);
}

/* ---- 11: concurrency ------------------------------------------------------ */

struct worker {
  disk *d;
  int id;
  int bad;
};

static void *worker_main(void *arg) {
  struct worker *w = arg;
  enum { N = 150 };
  struct item *it = calloc(N, sizeof *it);
  uint8_t *buf = malloc(24 * KiB), *exp = malloc(24 * KiB);
  uint64_t rng = 0x1234 + (uint64_t)w->id;
  char ns[16];
  snprintf(ns, sizeof ns, "w%d", w->id);
  for (int i = 0; i < N && !w->bad; i++) {
    uint64_t seed = ((uint64_t)w->id << 32) | (uint64_t)i;
    item_init(&it[i], DISK_REC_VALUE, ns, NULL,
              1 + tu_splitmix(&rng) % (20 * KiB), seed);
    tu_fill(buf, it[i].rec.vlen, seed);
    if (disk_append(w->d, &it[i].rec, buf, &it[i].loc, &it[i].bytes) != 0)
      w->bad = 1;
    int j = (int)(tu_splitmix(&rng) % (uint64_t)(i + 1));
    disk_rec want = want_of(&it[j]);
    if (disk_read(w->d, it[j].loc, &want, buf, 24 * KiB) != 0) {
      w->bad = 2;
      break;
    }
    tu_fill(exp, it[j].rec.vlen, it[j].seed);
    if (memcmp(buf, exp, it[j].rec.vlen) != 0) w->bad = 3;
    if (i % 50 == 49 && disk_flush(w->d) != 0) w->bad = 4;
    if (i % 3 == 0) disk_release(w->d, it[i].loc, it[i].bytes);
  }
  free(it);
  free(buf);
  free(exp);
  return NULL;
}

static void test_concurrency(void **state) {
  char dir[PATH_MAX];
  subdir(dir, sizeof dir, "conc");
  disk_opts o = opts_for(dir);
  o.segment_size = MiB; /* many segment switches */
  disk *d = open_ok(&o);
  enum { T = 4 };
  pthread_t th[T];
  struct worker w[T];
  for (int i = 0; i < T; i++) {
    w[i] = (struct worker){.d = d, .id = i};
    assert_int_equal(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
  }
  for (int i = 0; i < T; i++) {
    pthread_join(th[i], NULL);
    assert_int_equal(w[i].bad, 0);
  }
  disk_stats s = stats(d);
  assert_int_equal(s.appends, T * 150);
  assert_int_equal(s.read_errors, 0);
  assert_int_equal(disk_close(d), 0);
  struct scan_log log;
  d = open_scan(&o, &log);
  assert_int_equal(log.n, T * 150);
  for (size_t i = 1; i < log.n; i++)
    if (loc_file(log.v[i].loc) == loc_file(log.v[i - 1].loc))
      assert_true(log.v[i].seq > log.v[i - 1].seq);
  free(log.v);
  disk_close(d);
  rm_rf(dir);
}

/* ---- main ----------------------------------------------------------------- */

static int group_setup(void **state) {
  const char *t = getenv("TMPDIR");
  snprintf(g_root, sizeof g_root, "%s/cascade-disk-XXXXXX",
           t && *t ? t : "/tmp");
  return mkdtemp(g_root) != NULL ? 0 : -1;
}

static int group_teardown(void **state) {
  char mnt[PATH_MAX];
  subdir(mnt, sizeof mnt, "tmpfs");
  umount2(mnt, MNT_DETACH); /* left mounted by a failed test_fs_full */
  rm_rf(g_root);
  return 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_roundtrip),
      cmocka_unit_test(test_bad_args),
      cmocka_unit_test(test_wrong_want),
      cmocka_unit_test(test_corrupt_value),
      cmocka_unit_test(test_corrupt_header),
      cmocka_unit_test(test_torn_tail_truncated),
      cmocka_unit_test(test_torn_tail_garbage),
      cmocka_unit_test(test_lock),
      cmocka_unit_test(test_compaction),
      cmocka_unit_test(test_capacity),
      cmocka_unit_test(test_fs_full),
      cmocka_unit_test(test_mode_buffered_tmpfs),
      cmocka_unit_test(test_mode_direct),
      cmocka_unit_test(test_sync_modes),
      cmocka_unit_test(test_no_io_uring),
      cmocka_unit_test(test_read_batch),
      cmocka_unit_test(test_aligned_reads),
      cmocka_unit_test(test_concurrency),
  };
  return cmocka_run_group_tests_name("disk", tests, group_setup,
                                     group_teardown);
}
