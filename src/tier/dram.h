/*
 * dram.h - the DRAM tier: one shared-memory arena and a variable-size block
 * allocator over it.
 *
 * The arena is a memfd (or an unlinked 0600 file in /dev/shm) of exactly
 * `capacity` bytes, mapped MAP_SHARED read-write in this process, so that a
 * daemon can hand the fd to local clients which map it read-only.  All
 * allocator metadata lives in private heap memory, never inside the arena:
 * a client with the arena mapped can read values but can neither see nor
 * corrupt the allocator's state.
 *
 * The allocator is not thread-safe: the engine serialises every dram_alloc/
 * dram_free/dram_usage call under its memory lock.  Reading or writing the
 * bytes of an allocated extent needs no lock.
 */
#ifndef CASCADE_DRAM_H
#define CASCADE_DRAM_H

#include <stddef.h>
#include <stdint.h>

/* Every extent starts on, and is a multiple of, this many bytes. */
#define DRAM_ALIGN 64u

/* Offset returned for a zero-length allocation (no arena bytes used). */
#define DRAM_OFF_EMPTY UINT64_MAX

typedef struct dram dram;

enum dram_backing { DRAM_BACKING_MEMFD = 0, DRAM_BACKING_SHM = 1 };

typedef struct dram_opts {
  uint64_t capacity;       /* bytes; rounded down to DRAM_ALIGN; >= DRAM_ALIGN */
  int hugepages;           /* try MAP_HUGETLB/MFD_HUGETLB; fall back silently */
  int prefault;            /* populate every page at open */
  int backing;             /* enum dram_backing */
} dram_opts;

typedef struct dram_usage {
  uint64_t capacity;       /* arena bytes */
  uint64_t used;           /* bytes in allocated extents (rounded sizes) */
  uint64_t free;           /* capacity - used */
  uint64_t largest_free;   /* largest single free extent */
  uint64_t extents;        /* allocated extents */
  uint64_t free_extents;   /* free extents */
  int hugepages;           /* 1 if the arena really is on huge pages */
} dram_usage;

/* Create the arena.  Returns 0 or -errno (-EINVAL for capacity 0). */
int dram_open(const dram_opts *o, dram **out);
/* Unmap and close the arena, free all metadata.  NULL accepted. */
void dram_close(dram *d);

/* Base address of the mapping (read-write) and the arena fd. */
uint8_t *dram_base(const dram *d);
int dram_fd(const dram *d);
uint64_t dram_capacity(const dram *d);

/* An allocated extent.  Opaque; the engine keeps the pointer. */
typedef struct dram_ext dram_ext;

/*
 * Allocate an extent of at least len bytes (len rounded up to DRAM_ALIGN)
 * and return it in *ext, its arena offset in *off.
 * len == 0 gives *ext = NULL, *off = DRAM_OFF_EMPTY and always succeeds.
 * Returns 0, -ENOSPC if no free extent is large enough (the caller evicts
 * and retries), -EFBIG if len > capacity, -ENOMEM if metadata could not be
 * allocated.  O(1) (two-level segregated fit).
 */
int dram_alloc(dram *d, uint64_t len, dram_ext **ext, uint64_t *off);

/* Free an extent returned by dram_alloc (NULL is a no-op); coalesces with
 * free neighbours.  O(1). */
void dram_free(dram *d, dram_ext *ext);

/* Arena offset and rounded size of an extent (DRAM_OFF_EMPTY / 0 for NULL). */
uint64_t dram_ext_off(const dram_ext *ext);
uint64_t dram_ext_size(const dram_ext *ext);

/* Fill *u.  O(1) while the cached largest free extent is valid; otherwise
 * one walk of the highest non-empty free list. */
void dram_get_usage(const dram *d, dram_usage *u);

#endif /* CASCADE_DRAM_H */
