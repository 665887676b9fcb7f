/*
 * test_dram.c - unit tests for the DRAM tier (src/tier/dram.c): arena
 * creation on both backings, the TLSF allocator's accounting, splitting and
 * coalescing, exact largest_free, and a randomized stress run checked
 * against an independent model (a sorted array of allocated intervals).
 *
 * Set CASCADE_TEST_SEED to replay the stress test with another seed.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* readlink, fcntl flags in the tests */
#endif

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
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tier/dram.h"

#define KiB ((uint64_t)1 << 10)
#define MiB ((uint64_t)1 << 20)
#define GiB ((uint64_t)1 << 30)
#define TiB ((uint64_t)1 << 40)

static dram *open_or_fail(uint64_t capacity, int backing) {
  dram_opts o = {.capacity = capacity, .backing = backing};
  dram *d = NULL;
  int r = dram_open(&o, &d);
  assert_int_equal(r, 0);
  assert_non_null(d);
  return d;
}

static dram_usage usage(const dram *d) {
  dram_usage u;
  dram_get_usage(d, &u);
  assert_int_equal(u.free, u.capacity - u.used);
  return u;
}

static dram_ext *alloc_ok(dram *d, uint64_t len, uint64_t *off) {
  dram_ext *e = NULL;
  uint64_t o = 0;
  int r = dram_alloc(d, len, &e, &o);
  assert_int_equal(r, 0);
  assert_non_null(e);
  assert_int_equal(o, dram_ext_off(e));
  assert_int_equal(o % DRAM_ALIGN, 0);
  assert_true(dram_ext_size(e) >= len);
  assert_true(dram_ext_size(e) < len + DRAM_ALIGN);
  assert_int_equal(dram_ext_size(e) % DRAM_ALIGN, 0);
  assert_true(o + dram_ext_size(e) <= dram_capacity(d));
  if (off != NULL)
    *off = o;
  return e;
}

static void assert_empty(const dram *d) {
  dram_usage u = usage(d);
  assert_int_equal(u.used, 0);
  assert_int_equal(u.extents, 0);
  assert_int_equal(u.free_extents, 1);
  assert_int_equal(u.largest_free, u.capacity);
}

/* Number of /dev/shm entries named cascade-<our pid>-*. */
static int shm_leftovers(void) {
  char prefix[64];
  snprintf(prefix, sizeof prefix, "cascade-%ld-", (long)getpid());
  DIR *dir = opendir("/dev/shm");
  if (dir == NULL)
    return 0;
  int n = 0;
  struct dirent *de;
  while ((de = readdir(dir)) != NULL)
    if (strncmp(de->d_name, prefix, strlen(prefix)) == 0)
      n++;
  closedir(dir);
  return n;
}

/* ---- arena --------------------------------------------------------------- */

static void test_open_close_memfd(void **state) {
  (void)state;
  dram *d = open_or_fail(4 * MiB, DRAM_BACKING_MEMFD);
  assert_non_null(dram_base(d));
  assert_true(dram_fd(d) >= 0);
  assert_int_equal(dram_capacity(d), 4 * MiB);
  struct stat st;
  assert_int_equal(fstat(dram_fd(d), &st), 0);
  assert_int_equal((uint64_t)st.st_size, 4 * MiB);
  assert_empty(d);
  dram_usage u = usage(d);
  assert_int_equal(u.hugepages, 0);
  dram_close(d);
  dram_close(NULL);
}

static void test_open_close_shm(void **state) {
  (void)state;
  dram *d = open_or_fail(4 * MiB, DRAM_BACKING_SHM);
  assert_non_null(dram_base(d));
  assert_true(dram_fd(d) >= 0);
  assert_empty(d);
  struct stat st;
  assert_int_equal(fstat(dram_fd(d), &st), 0);
  assert_int_equal((uint64_t)st.st_size, 4 * MiB);
  assert_int_equal(st.st_mode & 0777, 0600);
  assert_int_equal(st.st_nlink, 0); /* unlinked */
  dram_close(d);
}

static void test_open_bad_args(void **state) {
  (void)state;
  dram *d = (dram *)&d;
  dram_opts o = {.capacity = 0};
  assert_int_equal(dram_open(&o, &d), -EINVAL);
  assert_null(d);
  o.capacity = DRAM_ALIGN - 1; /* rounds down to 0 */
  assert_int_equal(dram_open(&o, &d), -EINVAL);
  o.capacity = MiB;
  o.backing = 7;
  assert_int_equal(dram_open(&o, &d), -EINVAL);
  o.backing = DRAM_BACKING_MEMFD;
  assert_int_equal(dram_open(NULL, &d), -EINVAL);
  assert_int_equal(dram_open(&o, NULL), -EINVAL);
  o.capacity = UINT64_MAX;
  assert_int_equal(dram_open(&o, &d), -EFBIG);
  assert_null(d);
}

static void test_capacity_rounding(void **state) {
  (void)state;
  struct {
    uint64_t asked, got;
  } cases[] = {
      {64, 64}, {127, 64}, {1000, 960}, {MiB + 63, MiB}, {MiB + 64, MiB + 64}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    dram *d = open_or_fail(cases[i].asked, DRAM_BACKING_MEMFD);
    assert_int_equal(dram_capacity(d), cases[i].got);
    dram_usage u = usage(d);
    assert_int_equal(u.capacity, cases[i].got);
    assert_int_equal(u.largest_free, cases[i].got);
    struct stat st;
    assert_int_equal(fstat(dram_fd(d), &st), 0);
    assert_int_equal((uint64_t)st.st_size, cases[i].got);
    /* the whole capacity is one allocation */
    uint64_t off;
    dram_ext *e = alloc_ok(d, cases[i].got, &off);
    assert_int_equal(off, 0);
    dram_free(d, e);
    assert_empty(d);
    dram_close(d);
  }
}

/* A 64-byte arena: the smallest possible. */
static void test_tiny_arena(void **state) {
  (void)state;
  dram *d = open_or_fail(64, DRAM_BACKING_MEMFD);
  dram_ext *e, *e2;
  uint64_t off;
  e = alloc_ok(d, 1, &off);
  assert_int_equal(off, 0);
  assert_int_equal(dram_ext_size(e), 64);
  assert_int_equal(dram_alloc(d, 1, &e2, &off), -ENOSPC);
  assert_null(e2);
  assert_int_equal(off, DRAM_OFF_EMPTY);
  assert_int_equal(dram_alloc(d, 65, &e2, &off), -EFBIG);
  dram_usage u = usage(d);
  assert_int_equal(u.largest_free, 0);
  assert_int_equal(u.free_extents, 0);
  dram_free(d, e);
  assert_empty(d);
  dram_close(d);
}

/* ---- allocator ----------------------------------------------------------- */

static void test_alloc_free_exact(void **state) {
  (void)state;
  dram *d = open_or_fail(MiB, DRAM_BACKING_MEMFD);
  uint64_t lens[] = {1, 63, 64, 65, 100, 4095, 4096, 4097, 65536, 100000};
  uint64_t want[] = {64, 64, 64, 128, 128, 4096, 4096, 4160, 65536, 100032};
  dram_ext *e[10];
  uint64_t sum = 0, next = 0;
  for (int i = 0; i < 10; i++) {
    uint64_t off;
    e[i] = alloc_ok(d, lens[i], &off);
    assert_int_equal(dram_ext_size(e[i]), want[i]);
    /* an empty arena is carved front to back */
    assert_int_equal(off, next);
    next += want[i];
    sum += want[i];
    dram_usage u = usage(d);
    assert_int_equal(u.used, sum);
    assert_int_equal(u.extents, (uint64_t)i + 1);
    assert_int_equal(u.free_extents, 1);
    assert_int_equal(u.largest_free, MiB - sum);
  }
  for (int i = 9; i >= 0; i--) {
    dram_free(d, e[i]);
    sum -= want[i];
    dram_usage u = usage(d);
    assert_int_equal(u.used, sum);
    assert_int_equal(u.extents, (uint64_t)i);
    assert_int_equal(u.free_extents, 1);
    assert_int_equal(u.largest_free, MiB - sum);
  }
  assert_empty(d);
  dram_free(d, NULL); /* no-op */
  assert_empty(d);
  assert_int_equal(dram_ext_off(NULL), DRAM_OFF_EMPTY);
  assert_int_equal(dram_ext_size(NULL), 0);
  dram_close(d);
}

static void test_alignment(void **state) {
  (void)state;
  dram *d = open_or_fail(8 * MiB, DRAM_BACKING_MEMFD);
  assert_int_equal((uintptr_t)dram_base(d) % 4096, 0);
  dram_ext *e[500];
  uint64_t len = 1;
  for (int i = 0; i < 500; i++) {
    uint64_t off;
    e[i] = alloc_ok(d, len, &off);
    assert_int_equal(off % DRAM_ALIGN, 0);
    assert_int_equal((uintptr_t)(dram_base(d) + off) % DRAM_ALIGN, 0);
    len = (len * 7 + 13) % 9000 + 1;
  }
  for (int i = 0; i < 500; i += 2)
    dram_free(d, e[i]);
  for (int i = 0; i < 500; i += 2) {
    uint64_t off;
    e[i] = alloc_ok(d, (uint64_t)i * 3 + 1, &off);
    assert_int_equal(off % DRAM_ALIGN, 0);
  }
  for (int i = 0; i < 500; i++)
    dram_free(d, e[i]);
  assert_empty(d);
  dram_close(d);
}

static void test_zero_length(void **state) {
  (void)state;
  dram *d = open_or_fail(64, DRAM_BACKING_MEMFD);
  dram_ext *e = (dram_ext *)&e;
  uint64_t off = 0;
  assert_int_equal(dram_alloc(d, 0, &e, &off), 0);
  assert_null(e);
  assert_int_equal(off, DRAM_OFF_EMPTY);
  assert_empty(d);
  /* still succeeds with the arena full */
  dram_ext *full = alloc_ok(d, 64, NULL);
  assert_int_equal(dram_alloc(d, 0, &e, &off), 0);
  assert_null(e);
  assert_int_equal(off, DRAM_OFF_EMPTY);
  dram_free(d, e); /* freeing the zero-length "extent" is a no-op */
  dram_free(d, full);
  assert_empty(d);
  dram_close(d);
}

static void test_efbig(void **state) {
  (void)state;
  dram *d = open_or_fail(MiB + 100, DRAM_BACKING_MEMFD); /* capacity MiB+64 */
  dram_ext *e;
  uint64_t off;
  assert_int_equal(dram_alloc(d, MiB + 65, &e, &off), -EFBIG);
  assert_int_equal(dram_alloc(d, MiB + 100, &e, &off), -EFBIG);
  assert_int_equal(dram_alloc(d, UINT64_MAX, &e, &off), -EFBIG);
  assert_null(e);
  assert_int_equal(off, DRAM_OFF_EMPTY);
  /* -EFBIG even when the arena is in use: it is about capacity, not space */
  dram_ext *a = alloc_ok(d, 64, NULL);
  assert_int_equal(dram_alloc(d, MiB + 65, &e, &off), -EFBIG);
  assert_int_equal(dram_alloc(d, MiB + 64, &e, &off), -ENOSPC);
  dram_free(d, a);
  e = alloc_ok(d, MiB + 64, &off); /* exactly capacity fits */
  assert_int_equal(off, 0);
  dram_free(d, e);
  assert_empty(d);
  dram_close(d);
}

static void test_fill_then_enospc(void **state) {
  (void)state;
  /* 1: fill with equal pieces */
  dram *d = open_or_fail(4 * MiB, DRAM_BACKING_MEMFD);
  dram_ext *e[64];
  for (int i = 0; i < 64; i++)
    e[i] = alloc_ok(d, 64 * KiB, NULL);
  dram_usage u = usage(d);
  assert_int_equal(u.used, 4 * MiB);
  assert_int_equal(u.free, 0);
  assert_int_equal(u.largest_free, 0);
  assert_int_equal(u.free_extents, 0);
  dram_ext *x;
  uint64_t off;
  assert_int_equal(dram_alloc(d, 1, &x, &off), -ENOSPC);
  assert_null(x);
  assert_int_equal(off, DRAM_OFF_EMPTY);
  for (int i = 0; i < 64; i++)
    dram_free(d, e[i]);
  assert_empty(d);

  /* 2: mixed sizes whose sum is exactly the capacity, last one odd */
  dram_ext *a = alloc_ok(d, 3 * MiB + 1, NULL); /* 3 MiB + 64 */
  dram_ext *b = alloc_ok(d, 512 * KiB - 64, NULL);
  dram_ext *c = alloc_ok(d, 512 * KiB - 100, NULL); /* rounds to 512K - 64 */
  u = usage(d);
  assert_int_equal(u.free, 64);
  assert_int_equal(u.largest_free, 64);
  assert_int_equal(dram_alloc(d, 65, &x, &off), -ENOSPC);
  dram_ext *last = alloc_ok(d, 64, NULL);
  assert_int_equal(usage(d).free, 0);
  assert_int_equal(dram_alloc(d, 1, &x, &off), -ENOSPC);
  dram_free(d, a);
  dram_free(d, b);
  dram_free(d, c);
  dram_free(d, last);
  assert_empty(d);
  dram_close(d);

  /* 3: a free block just below a class boundary must still serve a request
   * that the good-fit rounding would send to the next class. */
  d = open_or_fail(MiB + 32 * KiB - 64 + 64, DRAM_BACKING_MEMFD);
  dram_ext *hole = alloc_ok(d, MiB + 32 * KiB - 64, NULL); /* [0, 1M+32K-64) */
  dram_ext *tail = alloc_ok(d, 64, NULL);
  dram_free(d, hole);
  x = alloc_ok(d, MiB + 64, &off);
  assert_int_equal(off, 0);
  u = usage(d);
  assert_int_equal(u.largest_free, 32 * KiB - 128);
  dram_free(d, x);
  dram_free(d, tail);
  assert_empty(d);
  dram_close(d);
}

static void test_coalescing(void **state) {
  (void)state;
  dram *d = open_or_fail(5 * MiB, DRAM_BACKING_MEMFD);
  dram_ext *e[5];
  uint64_t off[5];
  for (int i = 0; i < 5; i++) {
    e[i] = alloc_ok(d, MiB, &off[i]);
    assert_int_equal(off[i], (uint64_t)i * MiB);
  }
  dram_usage u = usage(d);
  assert_int_equal(u.free_extents, 0);

  /* free the middle: one hole */
  dram_free(d, e[2]);
  u = usage(d);
  assert_int_equal(u.free_extents, 1);
  assert_int_equal(u.largest_free, MiB);
  /* free its left neighbour: merges into 2 MiB */
  dram_free(d, e[1]);
  u = usage(d);
  assert_int_equal(u.free_extents, 1);
  assert_int_equal(u.largest_free, 2 * MiB);
  /* free the right neighbour: 3 MiB */
  dram_free(d, e[3]);
  u = usage(d);
  assert_int_equal(u.free_extents, 1);
  assert_int_equal(u.largest_free, 3 * MiB);
  assert_int_equal(u.extents, 2);
  /* the merged hole serves a 3 MiB request at offset 1 MiB */
  uint64_t o;
  dram_ext *big = alloc_ok(d, 3 * MiB, &o);
  assert_int_equal(o, MiB);
  assert_int_equal(usage(d).free_extents, 0);
  dram_free(d, big);

  /* free both ends, then something between two free extents: one extent */
  dram_free(d, e[0]);
  u = usage(d);
  assert_int_equal(u.free_extents, 1); /* [0, 4M) */
  assert_int_equal(u.largest_free, 4 * MiB);
  dram_free(d, e[4]);
  assert_empty(d);
  dram_ext *all = alloc_ok(d, 5 * MiB, &o);
  assert_int_equal(o, 0);
  dram_free(d, all);

  /* prev and next both free at once */
  dram_ext *p = alloc_ok(d, MiB, NULL);
  dram_ext *m = alloc_ok(d, MiB, NULL);
  dram_ext *n = alloc_ok(d, MiB, NULL);
  dram_ext *z = alloc_ok(d, MiB, NULL);
  dram_free(d, p);
  dram_free(d, n);
  u = usage(d);
  assert_int_equal(u.free_extents, 3); /* [0,1M), [2M,3M), tail [4M,5M) */
  dram_free(d, z);                     /* merges [2M,5M) */
  u = usage(d);
  assert_int_equal(u.free_extents, 2);
  assert_int_equal(u.largest_free, 3 * MiB);
  dram_free(d, m); /* both sides free */
  assert_empty(d);
  dram_close(d);
}

static void test_fragmentation(void **state) {
  (void)state;
  dram *d = open_or_fail(16 * MiB, DRAM_BACKING_MEMFD);
  dram_ext *e[16];
  for (int i = 0; i < 16; i++)
    e[i] = alloc_ok(d, MiB, NULL);
  for (int i = 0; i < 16; i += 2)
    dram_free(d, e[i]);
  dram_usage u = usage(d);
  assert_int_equal(u.free, 8 * MiB);
  assert_int_equal(u.free_extents, 8);
  assert_int_equal(u.largest_free, MiB);
  double frag = 1.0 - (double)u.largest_free / (double)u.free;
  assert_true(frag > 0.874 && frag < 0.876); /* 1 - 1/8 */

  /* a 2 MiB request cannot be met although 8 MiB are free */
  dram_ext *x;
  uint64_t off;
  assert_int_equal(dram_alloc(d, MiB + 64, &x, &off), -ENOSPC);

  /* freeing e[5] joins holes 4 and 6: [4M,7M) */
  dram_free(d, e[5]);
  u = usage(d);
  assert_int_equal(u.free, 9 * MiB);
  assert_int_equal(u.free_extents, 7);
  assert_int_equal(u.largest_free, 3 * MiB);

  /* carve 2 MiB + 64 out of it: the rest (1 MiB - 64) is no longer the
   * largest; the largest is a 1 MiB hole (the cache must be invalidated) */
  x = alloc_ok(d, 2 * MiB + 64, &off);
  assert_int_equal(off, 4 * MiB);
  u = usage(d);
  assert_int_equal(u.free_extents, 7);
  assert_int_equal(u.largest_free, MiB);

  /* holes of different sizes in the same size class: exact maximum */
  dram_free(d, x);
  x = alloc_ok(d, 3 * MiB - 128, &off); /* leaves a 128 B hole at 7M-128 */
  assert_int_equal(off, 4 * MiB);
  u = usage(d);
  assert_int_equal(u.largest_free, MiB);
  dram_free(d, e[0]);
  dram_free(d, x);
  for (int i = 1; i < 16; i += 2)
    if (i != 5)
      dram_free(d, e[i]);
  assert_empty(d);
  dram_close(d);
}

/* Exact largest_free among free extents of one size class. */
static void test_largest_free_same_class(void **state) {
  (void)state;
  /* 1 MiB .. 1 MiB + 32 KiB is one class; make holes of 1M, 1M+8K, 1M+4K */
  uint64_t sizes[3] = {MiB, MiB + 8 * KiB, MiB + 4 * KiB};
  dram *d = open_or_fail(8 * MiB, DRAM_BACKING_MEMFD);
  dram_ext *h[3], *sep[3];
  for (int i = 0; i < 3; i++) {
    h[i] = alloc_ok(d, sizes[i], NULL);
    sep[i] = alloc_ok(d, 64, NULL);
  }
  dram_ext *rest = alloc_ok(d, usage(d).free, NULL);
  for (int i = 0; i < 3; i++)
    dram_free(d, h[i]);
  dram_usage u = usage(d);
  assert_int_equal(u.free_extents, 3);
  assert_int_equal(u.largest_free, MiB + 8 * KiB);
  /* take the largest one away exactly */
  uint64_t off;
  dram_ext *x = alloc_ok(d, MiB + 8 * KiB, &off);
  assert_int_equal(dram_ext_size(x), MiB + 8 * KiB);
  u = usage(d);
  assert_int_equal(u.free_extents, 2);
  assert_int_equal(u.largest_free, MiB + 4 * KiB);
  dram_free(d, x);
  u = usage(d);
  assert_int_equal(u.largest_free, MiB + 8 * KiB);
  dram_free(d, rest);
  for (int i = 0; i < 3; i++)
    dram_free(d, sep[i]);
  assert_empty(d);
  dram_close(d);
}

/* Terabyte capacity: metadata and size classes cope; memory is not touched. */
static void test_huge_capacity(void **state) {
  (void)state;
  dram_opts o = {.capacity = 4 * TiB + 12345, .backing = DRAM_BACKING_MEMFD};
  dram *d = NULL;
  int r = dram_open(&o, &d);
  if (r == -ENOMEM || r == -EFBIG || r == -EINVAL) {
    skip(); /* address space or file size limit on this machine */
    return;
  }
  assert_int_equal(r, 0);
  uint64_t cap = (4 * TiB + 12345) & ~(uint64_t)63;
  assert_int_equal(dram_capacity(d), cap);
  uint64_t off;
  dram_ext *a = alloc_ok(d, 3 * TiB, &off);
  dram_ext *b = alloc_ok(d, 64, &off);
  assert_int_equal(off, 3 * TiB);
  dram_ext *c = alloc_ok(d, cap - 3 * TiB - 64, &off); /* the exact rest */
  dram_ext *x;
  assert_int_equal(dram_alloc(d, 64, &x, &off), -ENOSPC);
  dram_free(d, b);
  dram_free(d, a);
  dram_usage u = usage(d);
  assert_int_equal(u.largest_free, 3 * TiB + 64);
  dram_free(d, c);
  assert_empty(d);
  /* write at both ends of the mapping */
  dram_base(d)[0] = 1;
  dram_base(d)[cap - 1] = 2;
  assert_int_equal(dram_base(d)[cap - 1], 2);
  dram_close(d);
}

/* ---- randomized stress against a model ----------------------------------- */

/*
 * The model is independent of the allocator: an unsorted array of the live
 * extents (offset, size, handle, tag) and a bitmap with one bit per 64-byte
 * granule of the arena, set while some live extent covers it.  Every
 * allocation must land on granules that are all clear (no overlap, inside
 * capacity); every free clears exactly the bits it set.  Periodically the
 * bitmap's runs of clear bits (the gaps between live extents) are compared
 * with the allocator's free extents: coalescing means each gap is exactly
 * one free extent, so free_extents = number of gaps and largest_free = the
 * longest gap.
 */
struct ival {
  uint64_t off, len;
  dram_ext *e;
  uint64_t tag;
};

struct model {
  uint64_t cap;
  uint64_t *bits; /* cap / 64 granules */
  size_t words;
  struct ival *v;
  size_t n, room;
  uint64_t used;
};

static uint64_t rng_state;

static uint64_t rnd(void) {
  uint64_t x = rng_state; /* xorshift64* */
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  rng_state = x;
  return x * 0x2545F4914F6CDD1Dull;
}

/* Random size 1 .. 1 MiB, log-uniform-ish so small sizes are common too. */
static uint64_t rnd_size(void) {
  unsigned bits = (unsigned)(rnd() % 20) + 1; /* 2^1 .. 2^20 */
  uint64_t s = rnd() % ((uint64_t)1 << bits) + 1;
  return s > MiB ? MiB : s;
}

/* Set granules [g, g + cnt) that must all be clear; 0 if some was set. */
static int model_claim(struct model *m, uint64_t g, uint64_t cnt) {
  for (uint64_t i = g; i < g + cnt; i++)
    if (m->bits[i / 64] & ((uint64_t)1 << (i % 64)))
      return 0;
  for (uint64_t i = g; i < g + cnt; i++)
    m->bits[i / 64] |= (uint64_t)1 << (i % 64);
  return 1;
}

/* Clear granules [g, g + cnt) that must all be set; 0 if some was clear. */
static int model_release(struct model *m, uint64_t g, uint64_t cnt) {
  for (uint64_t i = g; i < g + cnt; i++) {
    uint64_t bit = (uint64_t)1 << (i % 64);
    if (!(m->bits[i / 64] & bit))
      return 0;
    m->bits[i / 64] &= ~bit;
  }
  return 1;
}

/* First granule at or after g whose bit equals set, or the granule count. */
static uint64_t model_next(const struct model *m, uint64_t g, int set) {
  uint64_t ngran = m->cap / 64;
  while (g < ngran) {
    uint64_t x = m->bits[g / 64];
    if (!set)
      x = ~x;
    x &= ~(uint64_t)0 << (g % 64);
    if (x != 0) {
      uint64_t r = g / 64 * 64 + (uint64_t)__builtin_ctzll(x);
      return r < ngran ? r : ngran;
    }
    g = (g / 64 + 1) * 64;
  }
  return ngran;
}

/* Compare the gaps in the bitmap with the allocator; returns the longest. */
static uint64_t model_check(const dram *d, const struct model *m) {
  uint64_t gaps = 0, max_run = 0, ngran = m->cap / 64;
  for (uint64_t g = 0; g < ngran;) {
    uint64_t set = model_next(m, g, 1);
    if (set > g) {
      gaps++;
      if (set - g > max_run)
        max_run = set - g;
    }
    g = model_next(m, set, 0);
  }
  dram_usage u = usage(d);
  assert_int_equal(u.used, m->used);
  assert_int_equal(u.extents, m->n);
  assert_int_equal(u.free_extents, gaps);
  assert_int_equal(u.largest_free, max_run * 64);
  return max_run * 64;
}

static void tag_write(uint8_t *base, const struct ival *v) {
  memcpy(base + v->off, &v->tag, 8);
  memcpy(base + v->off + v->len - 8, &v->tag, 8);
}

static void tag_check(const uint8_t *base, const struct ival *v) {
  uint64_t a, b;
  memcpy(&a, base + v->off, 8);
  memcpy(&b, base + v->off + v->len - 8, 8);
  assert_int_equal(a, v->tag);
  assert_int_equal(b, v->tag);
}

static void model_free_one(dram *d, struct model *m, const uint8_t *base,
                           size_t i) {
  struct ival *v = &m->v[i];
  tag_check(base, v);
  assert_int_equal(dram_ext_off(v->e), v->off);
  assert_int_equal(dram_ext_size(v->e), v->len);
  dram_free(d, v->e);
  assert_true(model_release(m, v->off / 64, v->len / 64));
  m->used -= v->len;
  m->v[i] = m->v[--m->n];
}

static void test_random_stress(void **state) {
  (void)state;
  const uint64_t cap = 64 * MiB;
  const int ops = 200000;
  const char *env = getenv("CASCADE_TEST_SEED");
  uint64_t seed = env != NULL ? strtoull(env, NULL, 0) : 0x5eedcafef00dull;
  if (seed == 0)
    seed = 1;
  rng_state = seed;
  print_message("stress seed %#llx\n", (unsigned long long)seed);

  dram *d = open_or_fail(cap, DRAM_BACKING_MEMFD);
  uint8_t *base = dram_base(d);
  struct model m = {
      .cap = cap, .words = (size_t)(cap / 64 + 63) / 64, .room = 1024};
  m.bits = calloc(m.words, sizeof *m.bits);
  m.v = malloc(m.room * sizeof *m.v);
  assert_non_null(m.bits);
  assert_non_null(m.v);
  uint64_t n_enospc = 0, n_alloc = 0, tagc = 0;

  for (int op = 0; op < ops; op++) {
    if (m.n == 0 || rnd() % 100 < 55) {
      uint64_t len = rnd_size();
      uint64_t sz = (len + 63) & ~(uint64_t)63;
      dram_ext *e;
      uint64_t off;
      int rc = dram_alloc(d, len, &e, &off);
      if (rc == -ENOSPC) {
        /* truthful -ENOSPC: no gap can hold the rounded size */
        n_enospc++;
        assert_true(model_check(d, &m) < sz);
        continue;
      }
      assert_int_equal(rc, 0);
      n_alloc++;
      assert_int_equal(off % DRAM_ALIGN, 0);
      assert_int_equal(dram_ext_size(e), sz);
      assert_true(off + sz <= cap);
      assert_true(model_claim(&m, off / 64, sz / 64)); /* no overlap */
      if (m.n == m.room) {
        m.room *= 2;
        m.v = realloc(m.v, m.room * sizeof *m.v);
        assert_non_null(m.v);
      }
      m.v[m.n] = (struct ival){
          .off = off, .len = sz, .e = e, .tag = ++tagc * 0x9E3779B97F4A7C15ull};
      tag_write(base, &m.v[m.n]);
      m.n++;
      m.used += sz;
    } else {
      model_free_one(d, &m, base, (size_t)(rnd() % m.n));
    }
    if (op % 64 == 0)
      model_check(d, &m);
  }
  model_check(d, &m);
  assert_true(n_enospc > 0); /* the run did reach a full arena */
  assert_true(n_alloc > (uint64_t)ops / 3);
  print_message("stress: %llu allocs, %llu ENOSPC, %zu live at end\n",
                (unsigned long long)n_alloc, (unsigned long long)n_enospc, m.n);

  /* free everything in random order: back to one extent == capacity */
  while (m.n > 0) {
    model_free_one(d, &m, base, (size_t)(rnd() % m.n));
    if (m.n % 1024 == 0)
      model_check(d, &m);
  }
  assert_empty(d);
  dram_ext *all = alloc_ok(d, cap, NULL);
  dram_free(d, all);
  free(m.v);
  free(m.bits);
  dram_close(d);
}

/* ---- the mapping is real ------------------------------------------------- */

static void fill_pattern(uint8_t *p, uint64_t len, uint64_t seed) {
  for (uint64_t i = 0; i < len; i++)
    p[i] = (uint8_t)((i * 131 + seed * 7) >> 3);
}

static int check_pattern(const uint8_t *p, uint64_t len, uint64_t seed) {
  for (uint64_t i = 0; i < len; i++)
    if (p[i] != (uint8_t)((i * 131 + seed * 7) >> 3))
      return 0;
  return 1;
}

static void mapping_roundtrip(int backing, int prefault) {
  dram_opts o = {.capacity = 8 * MiB, .backing = backing, .prefault = prefault};
  dram *d = NULL;
  assert_int_equal(dram_open(&o, &d), 0);
  uint8_t *base = dram_base(d);
  dram_ext *e[8];
  uint64_t off[8];
  for (int i = 0; i < 8; i++) {
    e[i] = alloc_ok(d, MiB - (uint64_t)i * 100, &off[i]);
    fill_pattern(base + off[i], dram_ext_size(e[i]), (uint64_t)i);
  }
  for (int i = 0; i < 8; i++)
    assert_true(check_pattern(base + off[i], dram_ext_size(e[i]), (uint64_t)i));

  /* a second, read-only mapping of the same fd sees the same bytes */
  struct stat st;
  assert_int_equal(fstat(dram_fd(d), &st), 0);
  assert_true((uint64_t)st.st_size >= dram_capacity(d));
  uint8_t *ro = mmap(NULL, (size_t)dram_capacity(d), PROT_READ, MAP_SHARED,
                     dram_fd(d), 0);
  assert_true(ro != MAP_FAILED);
  assert_ptr_not_equal(ro, base);
  for (int i = 0; i < 8; i++)
    assert_true(check_pattern(ro + off[i], dram_ext_size(e[i]), (uint64_t)i));
  /* writes after the second mapping was made show through too */
  base[off[3] + 5] ^= 0xff;
  assert_int_equal(ro[off[3] + 5], base[off[3] + 5]);
  munmap(ro, (size_t)dram_capacity(d));

  /* freeing and reallocating does not clear or move the bytes */
  dram_free(d, e[2]);
  dram_ext *again = alloc_ok(d, dram_ext_size(e[2]), NULL);
  assert_int_equal(dram_ext_off(again), off[2]);
  assert_true(check_pattern(base + off[2], dram_ext_size(again), 2));
  dram_free(d, again);
  for (int i = 0; i < 8; i++)
    if (i != 2)
      dram_free(d, e[i]);
  assert_empty(d);
  dram_close(d);
}

static void test_mapping_real_memfd(void **state) {
  (void)state;
  mapping_roundtrip(DRAM_BACKING_MEMFD, 0);
}

static void test_mapping_real_shm(void **state) {
  (void)state;
  mapping_roundtrip(DRAM_BACKING_SHM, 0);
}

static void test_prefault(void **state) {
  (void)state;
  mapping_roundtrip(DRAM_BACKING_MEMFD, 1);
  mapping_roundtrip(DRAM_BACKING_SHM, 1);
}

static void test_memfd_is_memfd(void **state) {
  (void)state;
  dram *d = open_or_fail(MiB, DRAM_BACKING_MEMFD);
  char link[64], target[256];
  snprintf(link, sizeof link, "/proc/self/fd/%d", dram_fd(d));
  ssize_t n = readlink(link, target, sizeof target - 1);
  assert_true(n > 0);
  target[n] = '\0';
  assert_non_null(strstr(target, "memfd:cascade-dram"));
  /* close-on-exec */
  int fl = fcntl(dram_fd(d), F_GETFD);
  assert_true(fl >= 0);
  assert_true(fl & FD_CLOEXEC);
  dram_close(d);
}

static void test_shm_no_file_left(void **state) {
  (void)state;
  int before = shm_leftovers();
  assert_int_equal(before, 0);
  dram *d = open_or_fail(MiB, DRAM_BACKING_SHM);
  assert_int_equal(shm_leftovers(), 0);
  char link[64], target[256];
  snprintf(link, sizeof link, "/proc/self/fd/%d", dram_fd(d));
  ssize_t n = readlink(link, target, sizeof target - 1);
  assert_true(n > 0);
  target[n] = '\0';
  char want[64];
  snprintf(want, sizeof want, "/dev/shm/cascade-%ld-", (long)getpid());
  assert_non_null(strstr(target, want));
  assert_non_null(strstr(target, "(deleted)"));
  int fl = fcntl(dram_fd(d), F_GETFD);
  assert_true(fl & FD_CLOEXEC);
  /* two arenas at once get distinct files */
  dram *d2 = open_or_fail(MiB, DRAM_BACKING_SHM);
  assert_int_equal(shm_leftovers(), 0);
  dram_close(d2);
  dram_close(d);
  assert_int_equal(shm_leftovers(), 0);
}

/* HugePages_Free from /proc/meminfo, or -1. */
static long hugepages_free(void) {
  FILE *f = fopen("/proc/meminfo", "r");
  if (f == NULL)
    return -1;
  char line[256];
  long v = -1;
  while (fgets(line, sizeof line, f) != NULL)
    if (sscanf(line, "HugePages_Free: %ld", &v) == 1)
      break;
  fclose(f);
  return v;
}

static void test_hugepages_fallback(void **state) {
  (void)state;
  long hp = hugepages_free();
  for (int backing = 0; backing <= 1; backing++) {
    dram_opts o = {
        .capacity = 3 * MiB + 64, .hugepages = 1, .backing = backing};
    dram *d = NULL;
    assert_int_equal(dram_open(&o, &d), 0);
    dram_usage u = usage(d);
    assert_true(u.hugepages == 0 || u.hugepages == 1);
    if (hp == 0 || backing == DRAM_BACKING_SHM)
      assert_int_equal(u.hugepages, 0);
    /* the usable capacity stays as asked, whatever the page size */
    assert_int_equal(u.capacity, 3 * MiB + 64);
    assert_int_equal(u.largest_free, 3 * MiB + 64);
    dram_ext *e = alloc_ok(d, 3 * MiB + 64, NULL);
    fill_pattern(dram_base(d), 3 * MiB + 64, 9);
    assert_true(check_pattern(dram_base(d), 3 * MiB + 64, 9));
    dram_free(d, e);
    print_message("hugepages backing=%d: %d (HugePages_Free %ld)\n", backing,
                  u.hugepages, hp);
    dram_close(d);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_open_close_memfd),
      cmocka_unit_test(test_open_close_shm),
      cmocka_unit_test(test_open_bad_args),
      cmocka_unit_test(test_capacity_rounding),
      cmocka_unit_test(test_tiny_arena),
      cmocka_unit_test(test_alloc_free_exact),
      cmocka_unit_test(test_alignment),
      cmocka_unit_test(test_zero_length),
      cmocka_unit_test(test_efbig),
      cmocka_unit_test(test_fill_then_enospc),
      cmocka_unit_test(test_coalescing),
      cmocka_unit_test(test_fragmentation),
      cmocka_unit_test(test_largest_free_same_class),
      cmocka_unit_test(test_huge_capacity),
      cmocka_unit_test(test_random_stress),
      cmocka_unit_test(test_mapping_real_memfd),
      cmocka_unit_test(test_mapping_real_shm),
      cmocka_unit_test(test_prefault),
      cmocka_unit_test(test_memfd_is_memfd),
      cmocka_unit_test(test_shm_no_file_left),
      cmocka_unit_test(test_hugepages_fallback),
  };
  return cmocka_run_group_tests_name("dram", tests, NULL, NULL);
}
