/*
 * dram.c - the DRAM tier: a shared-memory arena and a two-level segregated
 * fit (TLSF) allocator over it.
 *
 * What
 *   dram_open() creates one arena file - a memfd ("cascade-dram"), or for
 *   DRAM_BACKING_SHM an O_EXCL 0600 file /dev/shm/cascade-<pid>-<random>
 *   that is unlinked at once - sizes it and maps it MAP_SHARED read-write.
 *   The fd can be passed to other processes, which map it read-only.
 *   dram_alloc()/dram_free() hand out and take back extents of the arena in
 *   O(1) with the TLSF scheme of Masmano et al. (2004).
 *
 * Memory layout
 *   Arena: bytes [0, capacity) of the file, capacity a multiple of
 *   DRAM_ALIGN.  With huge pages the file and the mapping are rounded up to
 *   2 MiB; the tail past capacity is never handed out.  Without huge pages
 *   the file is exactly capacity bytes long.  The arena holds value bytes
 *   only: no headers, no footers, no free-list links.
 *
 *   Metadata (private heap, never in the arena, so a client that maps the
 *   arena can neither read nor corrupt it):
 *     - one struct dram_ext per extent, free or allocated: offset, size,
 *       links to its physical neighbours (the extents just below and just
 *       above it in the arena), links in its free list, and a state;
 *     - the free lists: heads[fl][sl], with a 64-bit first-level bitmap
 *       (bit fl set <=> some list in row fl is non-empty) and one 32-bit
 *       second-level bitmap per row (bit sl set <=> heads[fl][sl] non-empty);
 *     - a pool of unused descriptors, carved from malloc'd chunks that are
 *       only released by dram_close(), so steady-state alloc/free does not
 *       call malloc.
 *
 * Size classes
 *   Sizes are multiples of 64 (ALIGN_LOG = 6), SL_LOG = 5 (32 lists per
 *   row).  Sizes below 2 KiB live in row 0, one exact list per multiple of
 *   64.  A size s >= 2 KiB with top bit f goes to row f - 10, list
 *   (s >> (f - 5)) - 32: each power-of-two range is cut into 32 equal
 *   slices.  54 rows cover every 64-bit size.
 *
 * Allocation
 *   Good fit: the request is rounded up to the next list boundary
 *   (mapping_search), so the head of the first non-empty list at or above
 *   that one always fits; two find-first-set operations find it.  If that
 *   finds nothing, the request's own list (blocks of roughly its size,
 *   some of them large enough) is scanned first-fit, so -ENOSPC really means
 *   "no free extent is large enough" - e.g. allocating the whole arena
 *   works.  That fallback is the one path that is not O(1); it runs only
 *   when every larger class is empty.  The chosen block is split: the
 *   front is returned, a remainder (always >= DRAM_ALIGN when non-zero)
 *   goes back to the free lists as a new extent.
 *
 * Free
 *   The extent is merged with a free physical predecessor and a free
 *   physical successor (dropping their descriptors into the pool) and the
 *   result is put on its free list.  Free never allocates, so it cannot
 *   fail.
 *
 * largest_free
 *   A cached maximum: inserting a free extent raises it; removing a free
 *   extent of exactly the cached size invalidates it.  While valid,
 *   dram_get_usage() is O(1).  While invalid, dram_get_usage() scans the
 *   single highest non-empty list (found with the bitmaps) for its largest
 *   member: exact, and O(length of that one list), because all sizes in a
 *   list are within 1/32 of each other and any extent in a lower list is
 *   smaller.  The scan does not write back (dram_get_usage takes a const
 *   handle).
 *
 * Invariants
 *   - Extents tile [0, capacity): walking phys_next from offset 0 visits
 *     every extent once, each starting where the previous one ended.
 *   - No two free extents are physical neighbours (free coalesces).
 *   - Every free extent is on exactly the list mapping_insert(size) names,
 *     and a bitmap bit is set iff its list/row is non-empty.
 *   - used = sum of sizes of allocated extents; n_used / n_free count them.
 *   - An allocated extent's descriptor, offset and size never change until
 *     it is freed: the dram_ext pointer and dram_ext_off() are stable for
 *     the extent's whole life.
 *
 * Locking
 *   None.  Not thread-safe: the caller serialises dram_alloc, dram_free and
 *   dram_get_usage (the engine's memory lock).  Reading or writing the
 *   bytes of an allocated extent needs no lock.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memfd_create, fallocate, MAP_POPULATE, getrandom */
#endif
#define _FILE_OFFSET_BITS 64

#include "dram.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#ifndef MFD_HUGE_2MB
#define MFD_HUGE_2MB (21u << 26) /* linux/memfd.h: log2(2 MiB) << 26 */
#endif

/* ---- size classes -------------------------------------------------------- */

#define ALIGN_LOG 6
#define SL_LOG 5
#define SL_COUNT (1u << SL_LOG)
#define FL_SHIFT (SL_LOG + ALIGN_LOG)
#define SMALL_SIZE ((uint64_t)1 << FL_SHIFT)
#define FL_COUNT (64 - FL_SHIFT + 1)

#define HUGE_PAGE ((uint64_t)2 << 20)
/* Largest capacity accepted: far beyond any machine, and small enough that
 * rounding a size up (to 2 MiB, or to a list boundary) cannot overflow and
 * that the file size fits in off_t. */
#define DRAM_CAP_MAX ((uint64_t)1 << 62)

_Static_assert(DRAM_ALIGN == (1u << ALIGN_LOG),
               "DRAM_ALIGN must be 2^ALIGN_LOG");
_Static_assert(FL_COUNT <= 64, "first-level bitmap is 64 bits");
_Static_assert(SL_COUNT <= 32, "second-level bitmap is 32 bits");

/* First descriptor chunk and the cap on its doubling. */
#define POOL_FIRST 64
#define POOL_MAX 4096

enum { EXT_POOLED = 0, EXT_FREE = 1, EXT_USED = 2 };

struct dram_ext {
  uint64_t off;               /* arena offset, multiple of DRAM_ALIGN */
  uint64_t size;              /* bytes, multiple of DRAM_ALIGN, > 0 */
  struct dram_ext *phys_prev; /* extent ending at off, or NULL */
  struct dram_ext *phys_next; /* extent starting at off + size, or NULL */
  struct dram_ext *free_prev; /* free-list links (EXT_FREE only) */
  struct dram_ext *free_next; /* also the pool link (EXT_POOLED) */
  int state;                  /* EXT_POOLED / EXT_FREE / EXT_USED */
};

struct dram_chunk {
  struct dram_chunk *next;
  dram_ext ext[];
};

struct dram {
  uint8_t *base; /* mapping, map_len bytes */
  size_t map_len;
  int fd;
  int hugepages;
  uint64_t capacity; /* usable bytes, multiple of DRAM_ALIGN */

  uint64_t used;     /* bytes in allocated extents */
  uint64_t n_used;   /* allocated extents */
  uint64_t n_free;   /* free extents */
  uint64_t lf_cache; /* largest free size, when lf_valid */
  int lf_valid;

  uint64_t fl_bitmap;
  uint32_t sl_bitmap[FL_COUNT];
  dram_ext *heads[FL_COUNT][SL_COUNT];

  dram_ext *pool;            /* unused descriptors */
  struct dram_chunk *chunks; /* every chunk, for dram_close */
  size_t next_chunk;         /* descriptors in the next chunk */
};

/* ---- helpers ------------------------------------------------------------- */

static inline unsigned dram_fls64(uint64_t x) /* x != 0 */
{
  return 63u - (unsigned)__builtin_clzll(x);
}

static inline unsigned dram_ffs64(uint64_t x) /* x != 0 */
{
  return (unsigned)__builtin_ctzll(x);
}

static inline unsigned dram_ffs32(uint32_t x) /* x != 0 */
{
  return (unsigned)__builtin_ctz(x);
}

static inline uint64_t dram_round_up(uint64_t x, uint64_t a) /* a = 2^k */
{
  return (x + a - 1) & ~(a - 1);
}

/* The list that holds free extents of exactly this size. */
static void dram_mapping_insert(uint64_t size, unsigned *fl, unsigned *sl) {
  if (size < SMALL_SIZE) {
    *fl = 0;
    *sl = (unsigned)(size >> ALIGN_LOG);
  } else {
    unsigned f = dram_fls64(size);
    *sl = (unsigned)(size >> (f - SL_LOG)) ^ SL_COUNT;
    *fl = f - (FL_SHIFT - 1);
  }
}

/* The first list all of whose extents are >= size. */
static void dram_mapping_search(uint64_t size, unsigned *fl, unsigned *sl) {
  if (size >= SMALL_SIZE)
    size += ((uint64_t)1 << (dram_fls64(size) - SL_LOG)) - 1;
  dram_mapping_insert(size, fl, sl);
}

/* ---- descriptor pool ----------------------------------------------------- */

static dram_ext *dram_desc_get(dram *d) {
  if (d->pool == NULL) {
    size_t n = d->next_chunk;
    struct dram_chunk *c = malloc(sizeof *c + n * sizeof(dram_ext));
    if (c == NULL)
      return NULL;
    c->next = d->chunks;
    d->chunks = c;
    for (size_t i = 0; i < n; i++) {
      c->ext[i].state = EXT_POOLED;
      c->ext[i].free_next = i + 1 < n ? &c->ext[i + 1] : NULL;
    }
    d->pool = &c->ext[0];
    if (d->next_chunk < POOL_MAX)
      d->next_chunk *= 2;
  }
  dram_ext *e = d->pool;
  d->pool = e->free_next;
  memset(e, 0, sizeof *e);
  return e;
}

static void dram_desc_put(dram *d, dram_ext *e) {
  e->state = EXT_POOLED;
  e->phys_prev = e->phys_next = e->free_prev = NULL;
  e->free_next = d->pool;
  d->pool = e;
}

/* ---- free lists ---------------------------------------------------------- */

static void dram_insert_free(dram *d, dram_ext *b) {
  unsigned fl, sl;
  dram_mapping_insert(b->size, &fl, &sl);
  dram_ext *head = d->heads[fl][sl];
  b->state = EXT_FREE;
  b->free_prev = NULL;
  b->free_next = head;
  if (head != NULL)
    head->free_prev = b;
  d->heads[fl][sl] = b;
  d->fl_bitmap |= (uint64_t)1 << fl;
  d->sl_bitmap[fl] |= (uint32_t)1 << sl;
  d->n_free++;
  if (d->lf_valid && b->size > d->lf_cache)
    d->lf_cache = b->size;
}

static void dram_remove_free(dram *d, dram_ext *b) {
  unsigned fl, sl;
  dram_mapping_insert(b->size, &fl, &sl);
  if (b->free_prev != NULL)
    b->free_prev->free_next = b->free_next;
  else
    d->heads[fl][sl] = b->free_next;
  if (b->free_next != NULL)
    b->free_next->free_prev = b->free_prev;
  if (d->heads[fl][sl] == NULL) {
    d->sl_bitmap[fl] &= ~((uint32_t)1 << sl);
    if (d->sl_bitmap[fl] == 0)
      d->fl_bitmap &= ~((uint64_t)1 << fl);
  }
  b->free_prev = b->free_next = NULL;
  d->n_free--;
  if (d->n_free == 0) {
    d->lf_cache = 0;
    d->lf_valid = 1;
  } else if (b->size == d->lf_cache) {
    d->lf_valid = 0;
  }
}

/* A free extent of at least size bytes, or NULL.  See "Allocation". */
static dram_ext *dram_find_fit(const dram *d, uint64_t size) {
  unsigned fl, sl;
  dram_mapping_search(size, &fl, &sl);
  if (fl < FL_COUNT) {
    uint32_t slmap = d->sl_bitmap[fl] & (~(uint32_t)0 << sl);
    if (slmap == 0) {
      uint64_t flmap =
          fl + 1 < 64 ? d->fl_bitmap & (~(uint64_t)0 << (fl + 1)) : 0;
      if (flmap != 0) {
        fl = dram_ffs64(flmap);
        slmap = d->sl_bitmap[fl];
      }
    }
    if (slmap != 0)
      return d->heads[fl][dram_ffs32(slmap)];
  }
  /* Nothing in a class that surely fits: try the request's own class. */
  dram_mapping_insert(size, &fl, &sl);
  for (dram_ext *b = d->heads[fl][sl]; b != NULL; b = b->free_next)
    if (b->size >= size)
      return b;
  return NULL;
}

/* ---- the arena ----------------------------------------------------------- */

static uint64_t dram_random64(void) {
  uint64_t r;
  if (getrandom(&r, sizeof r, GRND_NONBLOCK) == (ssize_t)sizeof r)
    return r;
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  r = (uint64_t)ts.tv_nsec * 0x9E3779B97F4A7C15ull ^ (uint64_t)ts.tv_sec;
  r ^= (uint64_t)(uintptr_t)&ts;
  return r;
}

/* An unlinked O_EXCL 0600 file in /dev/shm.  Returns an fd or -errno. */
static int dram_shm_file(void) {
  for (int tries = 0; tries < 32; tries++) {
    char path[96];
    snprintf(path, sizeof path, "/dev/shm/cascade-%ld-%016llx", (long)getpid(),
             (unsigned long long)dram_random64());
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
      if (errno == EEXIST)
        continue;
      return -errno;
    }
    if (unlink(path) < 0) {
      int err = errno;
      close(fd);
      return -err;
    }
    return fd;
  }
  return -EEXIST;
}

/*
 * Create, size and map the arena file for capacity bytes, on huge pages if
 * huge.  On success fills d->fd/base/map_len and returns 0; on failure
 * leaves nothing behind and returns -errno.
 */
static int dram_arena_try(dram *d, const dram_opts *o, uint64_t capacity,
                          int huge) {
  uint64_t len = huge ? dram_round_up(capacity, HUGE_PAGE) : capacity;
#if SIZE_MAX < UINT64_MAX
  if (len > SIZE_MAX)
    return -EFBIG;
#endif
  int fd, err;

  if (o->backing == DRAM_BACKING_SHM) {
    if (huge)
      return -EOPNOTSUPP; /* tmpfs has no hugetlb pages */
    /* /dev/shm often has a size limit (64 MiB in a default container): a
     * sparse file past it would SIGBUS on first touch, so refuse early. */
    struct statvfs sv;
    if (statvfs("/dev/shm", &sv) == 0 && sv.f_blocks != 0 &&
        (uint64_t)sv.f_bavail * sv.f_frsize < len)
      return -ENOSPC;
    fd = dram_shm_file();
  } else {
    unsigned flags = MFD_CLOEXEC | (huge ? MFD_HUGETLB | MFD_HUGE_2MB : 0u);
    fd = memfd_create("cascade-dram", flags);
    if (fd < 0)
      fd = -errno;
  }
  if (fd < 0)
    return fd;

  if (ftruncate(fd, (off_t)len) < 0)
    goto fail;
  /* Prefault: reserve the pages in the file first, so that a too-small
   * tmpfs or memory limit fails here rather than as SIGBUS later
   * (MAP_POPULATE ignores such errors).  Hugetlb mappings reserve their
   * pages at mmap time already. */
  if (o->prefault && !huge && fallocate(fd, 0, 0, (off_t)len) < 0 &&
      errno != EOPNOTSUPP)
    goto fail;

  int mflags = MAP_SHARED | (o->prefault ? MAP_POPULATE : 0);
  void *p = mmap(NULL, (size_t)len, PROT_READ | PROT_WRITE, mflags, fd, 0);
  if (p == MAP_FAILED)
    goto fail;
  if (!huge && o->hugepages)
    (void)madvise(p, (size_t)len, MADV_HUGEPAGE); /* transparent, best effort */

  d->fd = fd;
  d->base = p;
  d->map_len = (size_t)len;
  return 0;

fail:
  err = errno;
  close(fd);
  return -err;
}

/* ---- public -------------------------------------------------------------- */

int dram_open(const dram_opts *o, dram **out) {
  if (out != NULL)
    *out = NULL;
  if (o == NULL || out == NULL)
    return -EINVAL;
  if (o->backing != DRAM_BACKING_MEMFD && o->backing != DRAM_BACKING_SHM)
    return -EINVAL;
  uint64_t capacity = o->capacity & ~(uint64_t)(DRAM_ALIGN - 1);
  if (capacity == 0)
    return -EINVAL;
  if (capacity > DRAM_CAP_MAX)
    return -EFBIG;

  dram *d = calloc(1, sizeof *d);
  if (d == NULL)
    return -ENOMEM;
  d->fd = -1;
  d->capacity = capacity;
  d->next_chunk = POOL_FIRST;
  d->lf_valid = 1;

  dram_ext *whole = dram_desc_get(d);
  if (whole == NULL) {
    free(d);
    return -ENOMEM;
  }

  int r = -EOPNOTSUPP;
  if (o->hugepages && o->backing == DRAM_BACKING_MEMFD) {
    r = dram_arena_try(d, o, capacity, 1);
    d->hugepages = r == 0;
  }
  if (r != 0)
    r = dram_arena_try(d, o, capacity, 0);
  if (r != 0) {
    dram_close(d);
    return r;
  }

  whole->off = 0;
  whole->size = capacity;
  dram_insert_free(d, whole);
  *out = d;
  return 0;
}

void dram_close(dram *d) {
  if (d == NULL)
    return;
  if (d->base != NULL)
    munmap(d->base, d->map_len);
  if (d->fd >= 0)
    close(d->fd);
  struct dram_chunk *c = d->chunks;
  while (c != NULL) {
    struct dram_chunk *next = c->next;
    free(c);
    c = next;
  }
  free(d);
}

uint8_t *dram_base(const dram *d) {
  return d != NULL ? d->base : NULL;
}

int dram_fd(const dram *d) {
  return d != NULL ? d->fd : -1;
}

uint64_t dram_capacity(const dram *d) {
  return d != NULL ? d->capacity : 0;
}

int dram_alloc(dram *d, uint64_t len, dram_ext **ext, uint64_t *off) {
  if (ext != NULL)
    *ext = NULL;
  if (off != NULL)
    *off = DRAM_OFF_EMPTY;
  if (d == NULL || ext == NULL || off == NULL)
    return -EINVAL;
  if (len == 0)
    return 0;
  if (len > d->capacity)
    return -EFBIG;

  uint64_t size = dram_round_up(len, DRAM_ALIGN); /* <= capacity */
  dram_ext *b = dram_find_fit(d, size);
  if (b == NULL)
    return -ENOSPC;

  /* Take the remainder's descriptor before touching anything, so that
   * -ENOMEM leaves the allocator as it was. */
  uint64_t rest = b->size - size;
  dram_ext *r = NULL;
  if (rest != 0) {
    r = dram_desc_get(d);
    if (r == NULL)
      return -ENOMEM;
  }

  dram_remove_free(d, b);
  if (r != NULL) {
    r->off = b->off + size;
    r->size = rest;
    r->phys_prev = b;
    r->phys_next = b->phys_next;
    if (b->phys_next != NULL)
      b->phys_next->phys_prev = r;
    b->phys_next = r;
    b->size = size;
    dram_insert_free(d, r);
  }
  b->state = EXT_USED;
  d->used += size;
  d->n_used++;

  *ext = b;
  *off = b->off;
  return 0;
}

void dram_free(dram *d, dram_ext *e) {
  if (d == NULL || e == NULL || e->state != EXT_USED)
    return; /* NULL, or a double free caught before the descriptor is reused */

  d->used -= e->size;
  d->n_used--;

  dram_ext *prev = e->phys_prev;
  if (prev != NULL && prev->state == EXT_FREE) {
    dram_remove_free(d, prev);
    prev->size += e->size;
    prev->phys_next = e->phys_next;
    if (e->phys_next != NULL)
      e->phys_next->phys_prev = prev;
    dram_desc_put(d, e);
    e = prev;
  }
  dram_ext *next = e->phys_next;
  if (next != NULL && next->state == EXT_FREE) {
    dram_remove_free(d, next);
    e->size += next->size;
    e->phys_next = next->phys_next;
    if (next->phys_next != NULL)
      next->phys_next->phys_prev = e;
    dram_desc_put(d, next);
  }
  dram_insert_free(d, e);
}

uint64_t dram_ext_off(const dram_ext *ext) {
  return ext != NULL ? ext->off : DRAM_OFF_EMPTY;
}

uint64_t dram_ext_size(const dram_ext *ext) {
  return ext != NULL ? ext->size : 0;
}

/* The largest free extent, exactly; see "largest_free" above. */
static uint64_t dram_largest_free(const dram *d) {
  if (d->lf_valid)
    return d->lf_cache;
  if (d->fl_bitmap == 0)
    return 0;
  unsigned fl = dram_fls64(d->fl_bitmap);
  unsigned sl = dram_fls64(d->sl_bitmap[fl]);
  uint64_t max = 0;
  for (const dram_ext *b = d->heads[fl][sl]; b != NULL; b = b->free_next)
    if (b->size > max)
      max = b->size;
  return max;
}

void dram_get_usage(const dram *d, dram_usage *u) {
  if (u == NULL)
    return;
  memset(u, 0, sizeof *u);
  if (d == NULL)
    return;
  u->capacity = d->capacity;
  u->used = d->used;
  u->free = d->capacity - d->used;
  u->largest_free = dram_largest_free(d);
  u->extents = d->n_used;
  u->free_extents = d->n_free;
  u->hugepages = d->hugepages;
}
