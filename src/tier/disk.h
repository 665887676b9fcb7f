/*
 * disk.h - the disk tier: a log of records in aggregated segment files.
 *
 * A disk object owns one directory for one rank: segment files
 *   <dir>/agg_rank{rank:03d}_{file:06d}.bin
 * of segment_size bytes each (the last one may be shorter), and a lock file
 *   <dir>/agg_rank{rank:03d}.lock
 * held with flock(LOCK_EX|LOCK_NB) while the object is open, so a second
 * process (or a second open in this one) on the same rank's files fails with
 * -EBUSY.  It knows nothing of keys, blocks or policies: it appends records,
 * reads them back verified, and tells the engine what it found at open.
 *
 * Records
 *   Every record is a header followed by an optional value.  The header
 *   (little-endian) holds: magic, format version, type, namespace, key,
 *   value length, content id, a sequence number (per rank, strictly
 *   increasing across restarts), the key's attributes (expiry, priority,
 *   flags), an XXH3-64 of the value and an XXH3-64 of the header itself.
 *   Records start at DISK_REC_ALIGN-aligned offsets inside a segment.  A
 *   value of 64 KiB or more starts at a 4096-aligned file offset: zero
 *   padding (its length stated in the header) follows the header.
 *   Types:
 *     DISK_REC_VALUE   a stored content: namespace + content id + value
 *                      (key empty).  One per block, however many keys.
 *     DISK_REC_KEY     a key mapping: namespace + key -> content id, with
 *                      the key's attributes.  No value.
 *     DISK_REC_DELETE  a tombstone: namespace + key removed (or replaced
 *                      by a value that is not on disk).  No value.
 *   At open, for each (namespace, key) the record with the highest sequence
 *   number wins; a KEY whose content has no VALUE record is dropped by the
 *   engine.
 *
 * Locations
 *   disk_loc packs (segment file number, offset / DISK_REC_ALIGN) in 64
 *   bits; 0 is DISK_LOC_NONE (file numbers start at 1).  A location stays
 *   valid until disk_release() of it, or a compaction moves the record
 *   (then the move callback reports the new one).
 *
 * I/O
 *   Segment files are opened O_DIRECT where the file system supports it
 *   (probed at open; tmpfs and some network file systems do not), else
 *   buffered.  Writes go through aligned write buffers of write_buffer
 *   bytes: disk_append() copies the record in, full buffers are submitted
 *   to io_uring (liburing) without waiting, up to queue_depth in flight;
 *   without io_uring (disabled by the kernel or a sandbox) pwrite is used.
 *   disk_mode() names the mode in use, e.g. "direct+io_uring",
 *   "buffered+pwrite".  New segment files are fallocate()d to their full
 *   size, so a full file system shows up as -ENOSPC when a segment is
 *   created, before any record is lost.  On Lustre (the directory's
 *   statfs f_type is LL_SUPER_MAGIC and `lfs` is on PATH) new segment
 *   files are created with `lfs setstripe -c COUNT -S SIZE` first.
 *
 * Durability (sync)
 *   DISK_SYNC_NONE    records reach the file when their buffer is written
 *                     (full, disk_flush, close); never fsync.
 *   DISK_SYNC_BATCH   disk_flush() writes every buffered record and
 *                     fdatasync()s the segments it wrote; close does too.
 *   DISK_SYNC_ALWAYS  every disk_append() returns only once its record is
 *                     written and fdatasync()ed.
 *   A record whose disk_append() returned before a successful disk_flush()
 *   (or, with ALWAYS, any appended record) survives a crash of the process
 *   or of the machine.
 *
 * Integrity
 *   disk_read() checks the header checksum, that the header is the one
 *   asked for (type, namespace, key, content id, length as passed in), and
 *   the value checksum; any mismatch is -EBADMSG (counted in
 *   disk_stats.read_errors), never bytes.  At open every header is checked;
 *   in the last segment (the one being written when the process stopped)
 *   values are checked too, and the scan of a segment stops at the first
 *   record that fails (a torn tail); what follows it is not reported.
 *
 * Space
 *   disk_release() marks a record dead (its bytes count as garbage in its
 *   segment).  disk_compact_step() picks the sealed segment with the least
 *   live data, if its live ratio is under compact_threshold, and moves up
 *   to `budget` bytes of its live records to the head of the log (asking
 *   the engine which records are live, and telling it where each one went);
 *   when a segment has no live record left its file is deleted.  capacity
 *   bounds the total size of segment files: disk_append() returns -ENOSPC
 *   when a new segment would exceed it (the engine then evicts disk blocks
 *   and compacts), and also when the file system is full.
 *
 * Threads
 *   All functions are safe to call from several threads.  One internal
 *   mutex (a leaf lock: held only inside this module, never while calling
 *   back into the engine except from disk_open's scan and
 *   disk_compact_step's callbacks, which run with it released) protects
 *   the write state and the segment table; reads run without it, on
 *   reference-counted segment handles, so a segment deleted by compaction
 *   stays readable by reads already under way.
 */
#ifndef CASCADE_DISK_H
#define CASCADE_DISK_H

#include <stddef.h>
#include <stdint.h>

#include "cascade.h"

#define DISK_REC_ALIGN 64u /* record start alignment in a segment */
#define DISK_LOC_NONE 0u

typedef uint64_t disk_loc;
typedef struct disk disk;

enum disk_sync {
  DISK_SYNC_NONE = 0,
  DISK_SYNC_BATCH = 1,
  DISK_SYNC_ALWAYS = 2
};
enum disk_io { DISK_IO_AUTO = 0, DISK_IO_DIRECT = 1, DISK_IO_BUFFERED = 2 };
enum disk_rec_type {
  DISK_REC_VALUE = 1,
  DISK_REC_KEY = 2,
  DISK_REC_DELETE = 3
};

typedef struct disk_opts {
  const char *dir;          /* created (mkdir -p) if missing */
  uint32_t rank;            /* 0..999 */
  uint64_t segment_size;    /* bytes per segment file; >= 1 MiB */
  uint64_t capacity;        /* max total bytes of segment files; 0 = none */
  int sync;                 /* enum disk_sync */
  int io;                   /* enum disk_io: AUTO = direct if possible */
  uint32_t queue_depth;     /* write buffers / reads in flight, >= 1 */
  uint32_t write_buffer;    /* bytes per write buffer, >= 64 KiB */
  double compact_threshold; /* compact segments with live/size below */
  uint32_t stripe_count;    /* Lustre: lfs setstripe -c; 0 = default */
  uint64_t stripe_size;     /* Lustre: lfs setstripe -S; 0 = default */
} disk_opts;

/* One record as written or as found.  For disk_append, ns/key/value are
 * borrowed for the duration of the call. */
typedef struct disk_rec {
  int type;       /* enum disk_rec_type */
  const char *ns; /* namespace name, nslen bytes (no NUL) */
  uint32_t nslen;
  const void *key; /* KEY / DELETE only; klen bytes */
  uint32_t klen;
  cascade_cid cid;    /* VALUE, KEY */
  uint64_t vlen;      /* VALUE: value bytes; KEY: the content's
                                 length (for the engine's accounting) */
  uint64_t expire_ns; /* KEY: CLOCK_REALTIME ns, 0 = never */
  int8_t prio;        /* KEY: enum cascade_priority */
  uint8_t kflags;     /* KEY: CASCADE_PUT_PREFIX */
  uint64_t seq;       /* set by disk_append; reported by the scan */
} disk_rec;

/* Open (or create) the rank's directory and scan it.  For every valid
 * record found, in log order, on_record(ctx, rec, loc, rec_bytes) is called
 * (rec's pointers valid during the call only); the engine decides what is
 * live and calls disk_release() for the rest (it may do so from inside the
 * callback).  Errors: -EINVAL (bad opts), -EBUSY (the rank's directory is
 * locked by another open), -errno from the file system. */
typedef void (*disk_scan_fn)(void *ctx, const disk_rec *rec, disk_loc loc,
                             uint64_t rec_bytes);
int disk_open(const disk_opts *o, disk_scan_fn on_record, void *ctx,
              disk **out);

/* Write out and (unless sync = NONE) fdatasync everything buffered, then
 * close the files and drop the lock.  Returns the first write error (the
 * object is freed either way).  NULL is a no-op. */
int disk_close(disk *d);

/* Append a record (VALUE: with value, rec->vlen bytes; others: value NULL).
 * Sets rec->seq, *loc and *rec_bytes (bytes the record occupies, counted as
 * live until disk_release).  The value is copied before return.  Errors:
 * -ENOSPC (capacity reached or file system full: nothing was written),
 * -EIO and other -errno from a failed write (the store stays usable; the
 * records of the failed buffer read as -EBADMSG). */
int disk_append(disk *d, disk_rec *rec, const void *value, disk_loc *loc,
                uint64_t *rec_bytes);

/* Read the value of the VALUE record at loc into buf (cap >= want->vlen),
 * checking it is the record of want->ns, want->cid and want->vlen and that
 * its checksums hold.  Reads records still in a write buffer from memory.
 * With O_DIRECT, a value of 64 KiB or more is read straight into buf when
 * buf is 4096-aligned (else through a bounce buffer); buf's contents are
 * unspecified after an error.
 * Errors: -EBADMSG (anything does not match: counted, nothing returned),
 * -ENOENT (no such segment), -EIO. */
int disk_read(disk *d, disk_loc loc, const disk_rec *want, void *buf,
              uint64_t cap);

/* Several reads, each as disk_read, with up to queue_depth in flight
 * (io_uring): a sliding window over any number of requests, each verified
 * as soon as it completes while the others are in flight.  reqs[i].rc
 * gets each result.  Returns the number that succeeded. */
typedef struct disk_read_req {
  disk_loc loc;
  const disk_rec *want;
  void *buf;
  uint64_t cap;
  int rc;
} disk_read_req;
int disk_read_batch(disk *d, disk_read_req *reqs, size_t n);

/* The record at loc, of rec_bytes bytes, is no longer needed. */
void disk_release(disk *d, disk_loc loc, uint64_t rec_bytes);

/* Make every record appended so far durable (see Durability). */
int disk_flush(disk *d);

/* Compaction.  is_live(ctx, rec, loc) says whether the record at loc is
 * still referenced; moved(ctx, rec, old, new_loc, rec_bytes) reports where
 * a live record went (the engine updates its pointer; the old location is
 * released by this module).  Both run without the module's lock held, and
 * the engine must hold whatever lock keeps the answer of is_live true until
 * moved returns (cascade holds mem_lock across the step).  Moves at most
 * `budget` bytes; returns the bytes moved (0: nothing to do) or -errno. */
typedef int (*disk_live_fn)(void *ctx, const disk_rec *rec, disk_loc loc);
typedef void (*disk_moved_fn)(void *ctx, const disk_rec *rec, disk_loc old,
                              disk_loc new_loc, uint64_t rec_bytes);
int64_t disk_compact_step(disk *d, uint64_t budget, disk_live_fn is_live,
                          disk_moved_fn moved, void *ctx);

/* Capacity eviction: like disk_compact_step, but the victim is the oldest
 * sealed segment whatever its live ratio (segment-granular FIFO, as in
 * log-structured flash caches), and is_live is the engine's keep-or-evict
 * decision: records it keeps are moved to the head of the log, the rest go
 * with the segment.  A victim already being compacted is finished first.
 * *freed (may be NULL) is set to 1 if a segment file was deleted.  Returns
 * the bytes moved or -errno. */
int64_t disk_reclaim_step(disk *d, uint64_t budget, disk_live_fn is_live,
                          disk_moved_fn moved, void *ctx, int *freed);

/* posix_fadvise(POSIX_FADV_DONTNEED) on every segment file, so the next
 * reads come from the device (matters in buffered mode only). */
void disk_drop_cache(disk *d);

typedef struct disk_stats {
  uint64_t segments;   /* segment files */
  uint64_t file_bytes; /* their total size */
  uint64_t live_bytes; /* bytes of records not released */
  uint64_t capacity;   /* opts.capacity (0 = none) */
  uint64_t bytes_written, bytes_read;
  uint64_t appends, reads;
  uint64_t read_errors;     /* reads that failed verification */
  uint64_t write_errors;    /* failed writes */
  uint64_t compactions;     /* segments reclaimed */
  uint64_t compacted_bytes; /* live bytes moved by compaction */
  uint64_t torn_records;    /* records skipped by the scan at open */
  uint64_t syncs;
} disk_stats;

void disk_get_stats(disk *d, disk_stats *st);

/* "direct+io_uring", "buffered+io_uring", "direct+pwrite" or
 * "buffered+pwrite". */
const char *disk_mode(const disk *d);

#endif /* CASCADE_DISK_H */
