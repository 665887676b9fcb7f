/*
 * disk.c - the disk tier: an append-only log of checksummed records in
 * aggregated segment files, written through aligned buffers (O_DIRECT and
 * io_uring where available), read back verified, compacted in bounded steps.
 * The interface and its semantics are in disk.h.
 *
 * Files
 *   <dir>/agg_rank{rank:03d}.lock          flock(LOCK_EX|LOCK_NB) while open
 *   <dir>/agg_rank{rank:03d}_{n:06d}.bin   segment file number n (n >= 1)
 *   A segment file is fallocate()d to segment_size when created.  Its first
 *   FILE_HDR (4096) bytes are the file header; records follow, each at a
 *   DISK_REC_ALIGN (64) aligned offset.  Bytes after the last record are
 *   zero (fallocated, or the zero padding of the last write), so a zero
 *   magic where a record would start is the clean end of a segment.
 *
 * File header (little-endian, in a block of FILE_HDR bytes, rest zero)
 *     0 u32 magic "CDS1"   4 u16 version   6 u16 0
 *     8 u32 rank          12 u32 file number
 *    16 u64 segment_size  24 u64 0
 *    32 u64 XXH3-64 of the whole FILE_HDR block with this field zeroed
 *
 * Record (little-endian)
 *     0 u32 magic "CDR1"   4 u16 version (1)
 *     6 u16 type           8 u32 hdr_len (= REC_FIXED + nslen + klen)
 *    12 u32 klen          16 u16 nslen    18 i8 prio      19 u8 kflags
 *    20 u32 vpad (zero bytes between header and value, < IO_ALIGN,
 *           VALUE only)
 *    24 u64 seq           32 u64 vlen (VALUE: stored bytes; KEY: the
 *                                        content's length, nothing stored)
 *    40 u64 expire_ns     48 16 bytes content id
 *    64 u64 vsum = XXH3-64 of the stored value (0 when none)
 *    72 u64 hsum = XXH3-64 of bytes [0, hdr_len) with hsum zeroed
 *    80 namespace (nslen bytes), key (klen bytes), vpad zero bytes, value
 *       (VALUE only), zero padding up to the next multiple of
 *       DISK_REC_ALIGN.
 *   Layout rule: a value of ALIGN_MIN (64 KiB) or more gets the vpad that
 *   puts it at an IO_ALIGN-aligned file offset (so O_DIRECT reads it
 *   straight into an aligned caller buffer); smaller values get none.  The
 *   rule depends only on the record's offset, header length and value
 *   length, so a reader predicts vpad from its want and checks it against
 *   the header.  The scan walks by hdr_len + vpad + vlen, so the padding
 *   needs no record of its own.  Cost: up to IO_ALIGN - 1 bytes per large
 *   value (1.5% at 256 KiB).
 *   A location is (file number << LOC_OFF_BITS) | (offset / DISK_REC_ALIGN).
 *
 * Write path
 *   The log head is one position (cur, pos) in the current segment.  Bytes
 *   are copied into a FIFO of write buffers, each write_buffer bytes,
 *   IO_ALIGN-aligned in memory and covering the segment range [off, off +
 *   cap), cap = min(write_buffer, segment_size - off).  The tail entry is
 *   the buffer being filled; the ones before it are sealed, either in
 *   flight (io_uring) or written but not yet popped.  Entries are popped
 *   from the head only, once written, so the bytes of the current segment
 *   held in memory are always one contiguous range [mem_lo, pos), and
 *   everything before mem_lo is in the file.  A full buffer is submitted
 *   without waiting; at most queue_depth are in flight (queue_depth + 1
 *   buffers).  Without io_uring there is one buffer, written with pwrite.
 *   A partial buffer is written (padded with zeros to IO_ALIGN) by
 *   disk_flush and stays the tail: later appends keep filling it and the
 *   next write starts at the IO_ALIGN block holding the first unwritten
 *   byte.  A record that does not fit in the rest of the segment seals it:
 *   its last buffer is written, every write in flight is waited for (so
 *   only the last segment can ever have a torn tail after a process
 *   crash), and a new segment file is created.  Records are streamed
 *   through the buffers, so a value may be larger than a buffer.
 *
 * Mode
 *   DISK_IO_AUTO opens segment files O_DIRECT when an O_DIRECT open of
 *   the lock file works, except on tmpfs/ramfs (memory already: direct
 *   I/O there only adds copies), which stay buffered.  DISK_IO_DIRECT
 *   where O_DIRECT fails is -EINVAL.  No io_uring (io_uring_queue_init
 *   fails) means pwrite/preadv.
 *
 * Write errors
 *   A failed write (io_uring completion or pwrite) is counted and kept in
 *   werr; the next disk_append (which then appends nothing), disk_flush or
 *   disk_close returns it, once.  The records of that buffer read back as
 *   -EBADMSG.  An error during an append's own synchronous writes (pwrite
 *   mode, or sync = ALWAYS) fails that append and its bytes are not
 *   counted as live.
 *
 * Read path
 *   disk_read takes the mutex only to find the segment, take a reference
 *   on it and copy the part of the record that is still in a write buffer;
 *   the rest is read from the file with the mutex released, in one preadv:
 *     buffered   [header + vpad -> job][value -> caller's buffer]
 *     O_DIRECT, aligned value and 4096-aligned caller buffer
 *                [header blocks -> bounce][whole blocks of the value ->
 *                caller's buffer][a partial last block -> bounce]
 *     O_DIRECT otherwise: the IO_ALIGN-aligned range into one bounce.
 *   Then the header is checked (identity, and that its vpad is the one
 *   predicted) and the value's checksum is computed over the caller's
 *   buffer; a mismatch is -EBADMSG.  Bounce buffers come from a pool in the
 *   disk object (pool_mu; at most POOL_KEEP bytes and 2 queue_depth + 2
 *   buffers kept), so reads do not allocate in steady state.
 *   disk_read_batch keeps up to queue_depth reads in flight on a second
 *   ring (read_mu) as a sliding window: when reads complete, the next ones
 *   are submitted first, then the completed ones are verified and copied
 *   while the device works on the rest.  Its jobs are allocated at the
 *   first batch and kept until close.
 *
 * Segments
 *   A sorted array of pointers (segs, by file number) under the mutex.
 *   Each segment has an atomic reference count: one for the table, one per
 *   reader or compaction in progress.  Compaction removes a segment from
 *   the table and unlinks its file at once; the fd is closed and the
 *   struct freed when the last reference goes.  live counts the bytes of
 *   records not released; a record found at open counts as live until the
 *   engine releases it.
 *
 * Open
 *   Segment files of the rank are scanned in file-number order.  Every
 *   record header is verified; in the last segment the values are too, and
 *   a torn tail found there is cut off by zeroing the rest of its IO_ALIGN
 *   block, so later opens stop at the same place.  The scan of a segment
 *   stops at the first invalid record (counted in torn_records).  Appends
 *   continue in a new segment file after the highest one (created at the
 *   first append), never after a possibly torn tail; seq continues from
 *   the highest seen + 1.
 *
 * Compaction
 *   A victim (sealed, live/size under compact_threshold, least live first)
 *   is walked with a cursor that survives between steps.  For each record
 *   the engine is asked is_live (mutex released); a live record is copied
 *   to the log head - value byte for byte, header with the same seq (so
 *   the newest record of a key still wins at the next open) but version 2
 *   and the vpad of its new offset, resealed - and moved() reports it.  When the
 *   cursor reaches the end, the moved copies are written (and synced,
 *   unless sync = NONE) and the victim's file is deleted.  Compaction may
 *   exceed capacity by one segment: it needs room to free room.
 *
 * Locking
 *   compact_mu -> mu -> (nothing); read_mu -> mu; read_mu -> pool_mu.  mu
 *   and pool_mu are leaf locks held only inside this module, never across
 *   a callback.  compact_mu serialises compaction steps (the victim and
 *   its cursor); read_mu guards the read ring and its jobs; pool_mu the
 *   bounce pool.  Read-side counters are atomics; every other
 *   field of struct disk is under mu, except the fields set at open and
 *   never changed (opts, mode, paths).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* O_DIRECT, fallocate, statx, syncfs */
#endif
#define _FILE_OFFSET_BITS 64

#include "disk.h"

#include <dirent.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <math.h>
#include <pthread.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>
#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t on the stack */
#include <xxhash.h>

extern char **environ;

/* ---- constants ----------------------------------------------------------- */

#define IO_ALIGN 4096u         /* O_DIRECT offset/length/memory alignment */
#define FILE_HDR IO_ALIGN      /* bytes of the file header block */
#define FILE_MAGIC 0x31534443u /* "CDS1" */
#define REC_MAGIC 0x31524443u  /* "CDR1" */
#define FORMAT_VERSION 1u /* file header */
#define REC_VERSION 1u
#define REC_FIXED 80u
#define REC_NS_MAX 255u
#define REC_HDR_MAX (REC_FIXED + REC_NS_MAX + CASCADE_MAX_KEY)
#define LOC_OFF_BITS 34 /* offset / 64 < 2^34: segments up to 1 TiB */
#define SEG_MIN ((uint64_t)1 << 20)
#define SEG_MAX ((uint64_t)1 << 40)
#define WBUF_MIN ((uint64_t)64 << 10)
#define WBUF_MAX ((uint64_t)1 << 30)
#define QD_MAX 4096u
#define SCAN_WIN ((uint64_t)1 << 20) /* scan window: > 2 * REC_HDR_MAX */
#define SCRATCH_KEEP ((uint64_t)16 << 20)
#define ALIGN_MIN ((uint64_t)64 << 10) /* values from here start aligned */
#define SMALL_BOUNCE (3 * IO_ALIGN)    /* header blocks + a tail block */
#define POOL_KEEP ((uint64_t)64 << 20) /* bounce bytes kept for reuse */
#define POOL_MAX 1024u                 /* bounce buffers kept, at most */

#define LL_SUPER_MAGIC 0x0BD00BD0L
#define TMPFS_MAGIC_ 0x01021994L
#define RAMFS_MAGIC_ 0x858458f6L

_Static_assert(SCAN_WIN >= 2 * (REC_HDR_MAX + IO_ALIGN), "scan window");
_Static_assert(FILE_HDR % DISK_REC_ALIGN == 0, "records start aligned");

/* ---- structures ---------------------------------------------------------- */

struct disk_seg {
  uint32_t fileno;
  int fd;
  atomic_int refs;     /* table + readers + compaction */
  uint64_t file_bytes; /* counted against capacity */
  uint64_t live;       /* bytes of records not released (mu) */
  int sealed;          /* no more appends (mu) */
  int dirty;           /* written since its last fdatasync (mu) */
};

struct disk_wbuf {
  uint8_t *mem;          /* IO_ALIGN-aligned, wbuf bytes */
  struct disk_seg *seg;  /* segment it belongs to (table holds it) */
  uint64_t off;          /* segment offset of mem[0], IO_ALIGN-aligned */
  uint64_t cap;          /* usable bytes: min(wbuf, segment end - off) */
  uint64_t fill;         /* bytes [0, fill) hold data */
  uint64_t written;      /* bytes [0, written) are in the file (or failed) */
  uint64_t io_lo, io_hi; /* range of the write in flight */
  int inflight;
  int sealed; /* no more bytes will be added */
};

/* A pooled bounce buffer. */
struct disk_bbuf {
  uint8_t *mem; /* IO_ALIGN-aligned */
  uint64_t cap;
};

struct disk_rjob;

/* A sequential reader over one segment file (scan at open, compaction). */
struct disk_scan {
  int fd;
  uint64_t fsize;
  uint8_t *win; /* SCAN_WIN bytes, IO_ALIGN-aligned */
  uint64_t wlo, wlen;
};

struct disk {
  disk_opts o; /* dir points at dirpath */
  char *dirpath;
  uint64_t seg_size; /* segment_size rounded down to IO_ALIGN */
  uint64_t wbuf;     /* write_buffer rounded up to IO_ALIGN */
  int direct;        /* O_DIRECT on segment files */
  int lustre;        /* lfs setstripe before creating a segment */
  int lockfd;
  const char *mode;

  pthread_mutex_t mu;
  pthread_mutex_t compact_mu;
  pthread_mutex_t read_mu;
  pthread_mutex_t pool_mu;

  /* under mu */
  int uring; /* write ring usable */
  struct io_uring wring;
  struct disk_seg **segs; /* sorted by fileno */
  size_t nsegs, segcap;
  struct disk_seg *cur; /* current segment, NULL before the first append */
  uint64_t pos;         /* append offset in cur */
  struct disk_wbuf *wq; /* FIFO of nbuf write buffers */
  uint8_t *wmem;        /* their memory: one region, see wmem_alloc */
  uint32_t nbuf, qh, qn;
  uint32_t inflight;
  uint32_t next_file;
  uint64_t next_seq;
  uint64_t file_bytes, live_bytes;
  int werr; /* first write error not reported yet */
  uint64_t bytes_written, appends, write_errors, compactions;
  uint64_t compacted_bytes, torn_records, syncs;

  /* under read_mu */
  int rring_ok;
  struct io_uring rring;
  struct disk_rjob *rjobs; /* queue_depth jobs, made at the first batch */
  struct disk_rjob **rfree, **rdone;

  /* under pool_mu */
  struct disk_bbuf *pool; /* poolcap entries, npool in use */
  uint32_t npool, poolcap;
  uint64_t pool_bytes;

  /* under compact_mu */
  struct disk_seg *victim; /* with a reference */
  uint64_t vcur;
  struct disk_scan vscan;
  uint8_t *scratch;
  uint64_t scratch_cap;

  /* atomics */
  atomic_uint_least64_t bytes_read, reads, read_errors;
};

/* ---- small helpers ------------------------------------------------------- */

static inline uint64_t disk_up(uint64_t x, uint64_t a) /* a = 2^k */
{
  return (x + a - 1) & ~(a - 1);
}

static inline uint64_t disk_down(uint64_t x, uint64_t a) /* a = 2^k */
{
  return x & ~(a - 1);
}

static inline uint64_t disk_min(uint64_t a, uint64_t b) {
  return a < b ? a : b;
}

static void put16(uint8_t *p, uint16_t v) {
  v = htole16(v);
  memcpy(p, &v, 2);
}
static void put32(uint8_t *p, uint32_t v) {
  v = htole32(v);
  memcpy(p, &v, 4);
}
static void put64(uint8_t *p, uint64_t v) {
  v = htole64(v);
  memcpy(p, &v, 8);
}
static uint16_t get16(const uint8_t *p) {
  uint16_t v;
  memcpy(&v, p, 2);
  return le16toh(v);
}
static uint32_t get32(const uint8_t *p) {
  uint32_t v;
  memcpy(&v, p, 4);
  return le32toh(v);
}
static uint64_t get64(const uint8_t *p) {
  uint64_t v;
  memcpy(&v, p, 8);
  return le64toh(v);
}

static inline disk_loc disk_mkloc(uint32_t fileno, uint64_t off) {
  return ((uint64_t)fileno << LOC_OFF_BITS) | (off / DISK_REC_ALIGN);
}

static inline uint32_t disk_loc_file(disk_loc l) {
  return (uint32_t)(l >> LOC_OFF_BITS);
}

static inline uint64_t disk_loc_off(disk_loc l) {
  return (l & (((uint64_t)1 << LOC_OFF_BITS) - 1)) * DISK_REC_ALIGN;
}

static inline uint64_t rec_stored(int type, uint64_t vlen) {
  return type == DISK_REC_VALUE ? vlen : 0;
}

static void *disk_aalloc(uint64_t n) {
  if (n == 0) n = IO_ALIGN;
  return aligned_alloc(IO_ALIGN, disk_up(n, IO_ALIGN));
}

/* The write buffers' memory, n bytes.  Aligned to, and advised onto,
 * transparent huge pages where it spans one: a direct write from 4 KiB
 * pages is split where the device takes fewer segments per request than
 * the write has pages (virtio-blk: 254, so a 2 MiB write becomes three
 * requests); from a huge page it is one segment. */
#define HUGE_PAGE (UINT64_C(2) << 20)
static uint8_t *wmem_alloc(uint64_t n) {
  void *p = NULL;
  if (n < HUGE_PAGE) return disk_aalloc(n);
  if (posix_memalign(&p, HUGE_PAGE, disk_up(n, HUGE_PAGE)) != 0) return NULL;
  (void)madvise(p, disk_up(n, HUGE_PAGE), MADV_HUGEPAGE); /* advice only */
  return p;
}

static void seg_path(const disk *d, uint32_t fileno, char *buf, size_t cap) {
  snprintf(buf, cap, "%s/agg_rank%03u_%06u.bin", d->dirpath, d->o.rank, fileno);
}

/* Full pread/pwrite: loop over short transfers.  pread returns the bytes
 * read (fewer only at end of file) or -errno. */
static int64_t disk_pread_full(int fd, void *buf, uint64_t n, uint64_t off) {
  uint64_t got = 0;
  while (got < n) {
    ssize_t r = pread(fd, (uint8_t *)buf + got, n - got, (off_t)(off + got));
    if (r < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    if (r == 0) break;
    got += (uint64_t)r;
  }
  return (int64_t)got;
}

static int disk_pwrite_full(int fd, const void *buf, uint64_t n, uint64_t off) {
  uint64_t done = 0;
  while (done < n) {
    ssize_t r =
        pwrite(fd, (const uint8_t *)buf + done, n - done, (off_t)(off + done));
    if (r < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    if (r == 0) return -EIO;
    done += (uint64_t)r;
  }
  return 0;
}

/* ---- record and file headers -------------------------------------------- */

/* Encode rec's header (without seq and hsum) into hb; returns hdr_len. */
static uint32_t rec_encode(const disk_rec *rec, uint64_t vsum, uint8_t *hb) {
  uint32_t hlen = REC_FIXED + rec->nslen + rec->klen;
  memset(hb, 0, REC_FIXED);
  put32(hb + 0, REC_MAGIC);
  put16(hb + 4, REC_VERSION);
  put16(hb + 6, (uint16_t)rec->type);
  put32(hb + 8, hlen);
  put32(hb + 12, rec->klen);
  put16(hb + 16, (uint16_t)rec->nslen);
  hb[18] = (uint8_t)rec->prio;
  hb[19] = rec->kflags;
  put64(hb + 32, rec->vlen);
  put64(hb + 40, rec->expire_ns);
  memcpy(hb + 48, rec->cid.b, CASCADE_CID_BYTES);
  put64(hb + 64, vsum);
  if (rec->nslen != 0) memcpy(hb + REC_FIXED, rec->ns, rec->nslen);
  if (rec->klen != 0) memcpy(hb + REC_FIXED + rec->nslen, rec->key, rec->klen);
  return hlen;
}

static void rec_seal(uint8_t *hb, uint32_t hlen, uint64_t seq) {
  put64(hb + 24, seq);
  put64(hb + 72, 0);
  put64(hb + 72, XXH3_64bits(hb, hlen));
}

/* Check the fixed part of a header (bounds only, not the checksum).
 * Returns hdr_len, or 0 when it is not a plausible header. */
static uint32_t rec_hlen_ok(const uint8_t *hb) {
  uint16_t ver = get16(hb + 4);
  if (get32(hb) != REC_MAGIC || ver != REC_VERSION) return 0;
  uint16_t type = get16(hb + 6);
  if (type < DISK_REC_VALUE || type > DISK_REC_DELETE) return 0;
  uint32_t vpad = get32(hb + 20);
  if (vpad >= IO_ALIGN || (vpad != 0 && type != DISK_REC_VALUE))
    return 0;
  uint32_t hlen = get32(hb + 8), klen = get32(hb + 12);
  uint16_t nslen = get16(hb + 16);
  if (nslen > REC_NS_MAX || klen > CASCADE_MAX_KEY ||
      hlen != REC_FIXED + nslen + klen)
    return 0;
  return hlen;
}

/* Zero bytes between the header and the value (version 2; 0 in 1). */
static uint32_t rec_vpad(const uint8_t *hb) { return get32(hb + 20); }

/* The layout rule: a value of ALIGN_MIN bytes or more starts at an
 * IO_ALIGN-aligned file offset, so that O_DIRECT can read it straight into
 * an aligned caller buffer; vpad zero bytes follow the header for that.
 * Smaller values follow their header directly. */
static uint32_t rec_vpad_at(uint64_t off, uint32_t hlen, uint64_t stored) {
  if (stored < ALIGN_MIN) return 0;
  return (uint32_t)(disk_up(off + hlen, IO_ALIGN) - (off + hlen));
}

/* Bytes a record occupies in its segment. */
static uint64_t rec_size(uint32_t hlen, uint32_t vpad, uint64_t stored) {
  return disk_up((uint64_t)hlen + vpad + stored, DISK_REC_ALIGN);
}

/* Verify the header checksum of the complete header at hb (hlen bytes). */
static int rec_hsum_ok(const uint8_t *hb, uint32_t hlen) {
  uint8_t fixed[REC_FIXED];
  memcpy(fixed, hb, REC_FIXED);
  uint64_t want = get64(fixed + 72);
  put64(fixed + 72, 0);
  XXH3_state_t st;
  XXH3_64bits_reset(&st);
  XXH3_64bits_update(&st, fixed, REC_FIXED);
  XXH3_64bits_update(&st, hb + REC_FIXED, hlen - REC_FIXED);
  return XXH3_64bits_digest(&st) == want;
}

/* Fill rec from a verified header (pointers into hb). */
static void rec_decode(const uint8_t *hb, disk_rec *rec) {
  memset(rec, 0, sizeof *rec);
  rec->type = get16(hb + 6);
  rec->klen = get32(hb + 12);
  rec->nslen = get16(hb + 16);
  rec->prio = (int8_t)hb[18];
  rec->kflags = hb[19];
  rec->seq = get64(hb + 24);
  rec->vlen = get64(hb + 32);
  rec->expire_ns = get64(hb + 40);
  memcpy(rec->cid.b, hb + 48, CASCADE_CID_BYTES);
  rec->ns = (const char *)hb + REC_FIXED;
  rec->key = rec->klen != 0 ? hb + REC_FIXED + rec->nslen : NULL;
}

static void file_hdr_encode(const disk *d, uint32_t fileno, uint8_t *b) {
  memset(b, 0, FILE_HDR);
  put32(b + 0, FILE_MAGIC);
  put16(b + 4, FORMAT_VERSION);
  put32(b + 8, d->o.rank);
  put32(b + 12, fileno);
  put64(b + 16, d->seg_size);
  put64(b + 32, XXH3_64bits(b, FILE_HDR));
}

static int file_hdr_ok(const disk *d, uint32_t fileno, const uint8_t *b) {
  if (get32(b) != FILE_MAGIC || get16(b + 4) != FORMAT_VERSION ||
      get32(b + 8) != d->o.rank || get32(b + 12) != fileno)
    return 0;
  uint8_t *tmp = malloc(FILE_HDR);
  if (tmp == NULL) return 0;
  memcpy(tmp, b, FILE_HDR);
  uint64_t want = get64(tmp + 32);
  put64(tmp + 32, 0);
  int ok = XXH3_64bits(tmp, FILE_HDR) == want;
  free(tmp);
  return ok;
}

/* ---- segments ------------------------------------------------------------ */

static void seg_put(struct disk_seg *s) {
  if (s != NULL && atomic_fetch_sub(&s->refs, 1) == 1) {
    if (s->fd >= 0) close(s->fd);
    free(s);
  }
}

/* Index of the first segment with fileno >= f. */
static size_t seg_lower(const disk *d, uint32_t f) {
  size_t lo = 0, hi = d->nsegs;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (d->segs[mid]->fileno < f)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

static struct disk_seg *seg_find_locked(const disk *d, uint32_t f) {
  size_t i = seg_lower(d, f);
  return i < d->nsegs && d->segs[i]->fileno == f ? d->segs[i] : NULL;
}

static int seg_insert_locked(disk *d, struct disk_seg *s) {
  if (d->nsegs == d->segcap) {
    size_t cap = d->segcap ? 2 * d->segcap : 16;
    struct disk_seg **n = realloc(d->segs, cap * sizeof *n);
    if (n == NULL) return -ENOMEM;
    d->segs = n;
    d->segcap = cap;
  }
  size_t i = seg_lower(d, s->fileno);
  memmove(d->segs + i + 1, d->segs + i, (d->nsegs - i) * sizeof *d->segs);
  d->segs[i] = s;
  d->nsegs++;
  d->file_bytes += s->file_bytes;
  return 0;
}

/* Remove s from the table, unlink its file and drop the table's
 * reference; readers holding one keep the fd. */
static void seg_delete_locked(disk *d, struct disk_seg *s) {
  size_t i = seg_lower(d, s->fileno);
  if (i >= d->nsegs || d->segs[i] != s) return;
  memmove(d->segs + i, d->segs + i + 1, (d->nsegs - i - 1) * sizeof *d->segs);
  d->nsegs--;
  d->file_bytes -= s->file_bytes;
  d->live_bytes -= disk_min(d->live_bytes, s->live);
  s->live = 0;
  char path[PATH_MAX];
  seg_path(d, s->fileno, path, sizeof path);
  unlink(path);
  seg_put(s);
}

/* ---- write buffers ------------------------------------------------------- */

static struct disk_wbuf *wq_tail(disk *d) {
  return d->qn ? &d->wq[(d->qh + d->qn - 1) % d->nbuf] : NULL;
}

static void wr_error(disk *d, int err) {
  d->write_errors++;
  if (d->werr == 0) d->werr = err;
}

/* A write of b finished with result res (bytes or -errno). */
static void wr_done(disk *d, struct disk_wbuf *b, int res) {
  uint64_t len = b->io_hi - b->io_lo;
  if (res < 0) {
    wr_error(d, res);
  } else if ((uint64_t)res < len) {
    /* short write: finish it synchronously, that gives the real error */
    int r = disk_pwrite_full(b->seg->fd, b->mem + b->io_lo + (uint64_t)res,
                             len - (uint64_t)res, b->off + b->io_lo + res);
    if (r < 0) wr_error(d, r);
  }
  b->inflight = 0;
  d->inflight--;
}

/* Wait for one write completion (io_uring) and handle it. */
static void wr_wait_one(disk *d) {
  struct io_uring_cqe *cqe = NULL;
  int r;
  do r = io_uring_wait_cqe(&d->wring, &cqe);
  while (r == -EINTR);
  if (r < 0 || cqe == NULL) {
    /* the ring is unusable: nothing can complete any more; give up on
     * every write in flight so nobody waits forever */
    wr_error(d, r < 0 ? r : -EIO);
    for (uint32_t i = 0; i < d->qn; i++) {
      struct disk_wbuf *b = &d->wq[(d->qh + i) % d->nbuf];
      if (b->inflight) {
        b->inflight = 0;
        d->inflight--;
      }
    }
    return;
  }
  struct disk_wbuf *b = io_uring_cqe_get_data(cqe);
  int res = cqe->res;
  io_uring_cqe_seen(&d->wring, cqe);
  if (b != NULL) wr_done(d, b, res);
}

/* Pop written, sealed buffers from the head of the FIFO. */
static void wq_pop(disk *d) {
  while (d->qn > 0) {
    struct disk_wbuf *b = &d->wq[d->qh];
    if (!b->sealed || b->inflight) break;
    d->qh = (d->qh + 1) % d->nbuf;
    d->qn--;
  }
}

static void wr_drain(disk *d) {
  while (d->inflight > 0) wr_wait_one(d);
  wq_pop(d);
}

/* Write b's bytes [lo, hi) at their segment offset: submitted to the ring
 * (not waited for), or written with pwrite. */
static void wr_submit(disk *d, struct disk_wbuf *b, uint64_t lo, uint64_t hi) {
  if (hi <= lo) return;
  b->seg->dirty = 1;
  d->bytes_written += hi - lo;
  b->io_lo = lo;
  b->io_hi = hi;
  if (d->uring) {
    struct io_uring_sqe *sqe = io_uring_get_sqe(&d->wring);
    while (sqe == NULL && d->inflight > 0) {
      wr_wait_one(d);
      sqe = io_uring_get_sqe(&d->wring);
    }
    if (sqe != NULL) {
      io_uring_prep_write(sqe, b->seg->fd, b->mem + lo, (unsigned)(hi - lo),
                          b->off + lo);
      io_uring_sqe_set_data(sqe, b);
      int r;
      do r = io_uring_submit(&d->wring);
      while (r == -EINTR);
      if (r >= 1) {
        b->inflight = 1;
        d->inflight++;
        return;
      }
      /* not submitted: the SQE stays queued; neutralise it */
      io_uring_prep_nop(sqe);
      io_uring_sqe_set_data(sqe, NULL);
    }
  }
  int r = disk_pwrite_full(b->seg->fd, b->mem + lo, hi - lo, b->off + lo);
  if (r < 0) wr_error(d, r);
}

/* Write out what b holds beyond what was written, padded with zeros to
 * IO_ALIGN. */
static void wr_write_out(disk *d, struct disk_wbuf *b) {
  if (b->fill <= b->written) return;
  uint64_t lo = disk_down(b->written, IO_ALIGN);
  uint64_t hi = disk_min(disk_up(b->fill, IO_ALIGN), b->cap);
  memset(b->mem + b->fill, 0, hi - b->fill);
  b->written = b->fill;
  wr_submit(d, b, lo, hi);
}

/* Start a new tail buffer for seg at offset off (IO_ALIGN-aligned). */
static void wq_push(disk *d, struct disk_seg *seg, uint64_t off) {
  while (d->qn == d->nbuf) {
    wq_pop(d);
    if (d->qn < d->nbuf) break;
    wr_wait_one(d);
  }
  struct disk_wbuf *b = &d->wq[(d->qh + d->qn) % d->nbuf];
  d->qn++;
  b->seg = seg;
  b->off = off;
  b->cap = disk_min(d->wbuf, d->seg_size - off);
  b->fill = b->written = 0;
  b->inflight = 0;
  b->sealed = 0;
}

/* Copy n bytes (src NULL: zeros) to the log head, through the buffers. */
static void wr_put(disk *d, const void *src, uint64_t n) {
  const uint8_t *p = src;
  while (n > 0) {
    struct disk_wbuf *b = wq_tail(d);
    if (b->fill == b->cap) {
      wr_write_out(d, b);
      b->sealed = 1;
      wq_push(d, d->cur, b->off + b->cap);
      continue;
    }
    uint64_t c = disk_min(n, b->cap - b->fill);
    if (p != NULL) {
      memcpy(b->mem + b->fill, p, c);
      p += c;
    } else {
      memset(b->mem + b->fill, 0, c);
    }
    b->fill += c;
    n -= c;
  }
}

/* Seal the current segment: write its last buffer, wait for all writes. */
static void wr_seal_segment(disk *d) {
  struct disk_wbuf *b = wq_tail(d);
  if (b != NULL && !b->sealed) {
    wr_write_out(d, b);
    b->sealed = 1;
  }
  wr_drain(d);
  if (d->cur != NULL) d->cur->sealed = 1;
  d->cur = NULL;
}

/* Is `lfs` an executable on PATH? */
static int disk_have_lfs(void) {
  const char *path = getenv("PATH");
  if (path == NULL) return 0;
  char buf[PATH_MAX];
  while (*path != '\0') {
    const char *end = strchr(path, ':');
    size_t len = end ? (size_t)(end - path) : strlen(path);
    if (len > 0 && len + 5 < sizeof buf) {
      memcpy(buf, path, len);
      memcpy(buf + len, "/lfs", 5);
      if (access(buf, X_OK) == 0) return 1;
    }
    if (end == NULL) break;
    path = end + 1;
  }
  return 0;
}

/* lfs setstripe on a new file; failures are ignored (the file is then
 * created with the directory's default layout). */
static void disk_setstripe(const disk *d, const char *path) {
  if (d->o.stripe_count == 0 && d->o.stripe_size == 0) return;
  char cnt[24], sz[24];
  char *argv[9];
  int a = 0;
  argv[a++] = "lfs";
  argv[a++] = "setstripe";
  if (d->o.stripe_count != 0) {
    snprintf(cnt, sizeof cnt, "%u", d->o.stripe_count);
    argv[a++] = "-c";
    argv[a++] = cnt;
  }
  if (d->o.stripe_size != 0) {
    snprintf(sz, sizeof sz, "%llu", (unsigned long long)d->o.stripe_size);
    argv[a++] = "-S";
    argv[a++] = sz;
  }
  argv[a++] = (char *)path;
  argv[a] = NULL;
  posix_spawn_file_actions_t fa;
  if (posix_spawn_file_actions_init(&fa) != 0) return;
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  pid_t pid;
  if (posix_spawnp(&pid, "lfs", &fa, NULL, argv, environ) == 0) {
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
      ;
  }
  posix_spawn_file_actions_destroy(&fa);
}

static int seg_open_flags(const disk *d) {
  return O_RDWR | O_CLOEXEC | (d->direct ? O_DIRECT : 0);
}

/* Create the next segment file (not current yet).  Nothing is written on
 * failure. */
static int seg_create_locked(disk *d, int compaction, struct disk_seg **out) {
  uint64_t limit = d->o.capacity;
  if (limit != 0 && compaction) limit += d->seg_size;
  if (limit != 0 && d->file_bytes + d->seg_size > limit) return -ENOSPC;
  if (d->next_file >= (1u << (64 - LOC_OFF_BITS)) - 1) return -EFBIG;

  uint32_t fileno = d->next_file;
  char path[PATH_MAX];
  seg_path(d, fileno, path, sizeof path);
  if (d->lustre) disk_setstripe(d, path);
  int fd = open(path, seg_open_flags(d) | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) return -errno;
  if (fallocate(fd, 0, 0, (off_t)d->seg_size) != 0) {
    int e = errno;
    if (e != EOPNOTSUPP && e != ENOSYS) {
      close(fd);
      unlink(path);
      return e == ENOSPC || e == EFBIG || e == EDQUOT ? -ENOSPC : -e;
    }
  }
  if (d->o.sync != DISK_SYNC_NONE) {
    /* the new name must survive a crash as well as the records in it */
    int dfd = open(d->dirpath, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
      fsync(dfd);
      close(dfd);
    }
  }
  struct disk_seg *s = calloc(1, sizeof *s);
  if (s == NULL) {
    close(fd);
    unlink(path);
    return -ENOMEM;
  }
  s->fileno = fileno;
  s->fd = fd;
  atomic_init(&s->refs, 1);
  s->file_bytes = d->seg_size;
  int r = seg_insert_locked(d, s);
  if (r != 0) {
    close(fd);
    free(s);
    unlink(path);
    return r;
  }
  d->next_file++;
  *out = s;
  return 0;
}

/* Make s the current segment, its file header in the first buffer. */
static void seg_start_locked(disk *d, struct disk_seg *s) {
  d->cur = s;
  wq_push(d, s, 0);
  struct disk_wbuf *b = wq_tail(d);
  file_hdr_encode(d, s->fileno, b->mem);
  b->fill = FILE_HDR;
  d->pos = FILE_HDR;
}

/* fdatasync every segment written since its last sync. */
static int wr_sync_locked(disk *d) {
  int err = 0;
  for (size_t i = 0; i < d->nsegs; i++) {
    struct disk_seg *s = d->segs[i];
    if (!s->dirty) continue;
    s->dirty = 0;
    if (fdatasync(s->fd) != 0 && err == 0) err = -errno;
    d->syncs++;
  }
  if (err != 0) wr_error(d, err);
  return err;
}

/* Write out the partial buffer, wait for every write, sync if asked.
 * Returns (and clears) the first write error not yet reported. */
static int flush_locked(disk *d, int sync) {
  struct disk_wbuf *b = wq_tail(d);
  if (b != NULL && !b->sealed) wr_write_out(d, b);
  wr_drain(d);
  if (sync) wr_sync_locked(d);
  int e = d->werr;
  d->werr = 0;
  return e;
}

/* Append one record: header hb (hlen bytes; version and vpad set here for
 * the position it lands at, then seq and hsum - keep_seq: the seq it has),
 * then `stored` value bytes.  Holds mu. */
static int append_locked(disk *d, uint8_t *hb, uint32_t hlen, const void *val,
                         uint64_t stored, int keep_seq, int compaction,
                         disk_loc *loc, uint64_t *rec_bytes, uint64_t *seq) {
  if (rec_size(hlen, rec_vpad_at(FILE_HDR, hlen, stored), stored) >
      d->seg_size - FILE_HDR)
    return -EFBIG;
  uint32_t vpad = d->cur != NULL ? rec_vpad_at(d->pos, hlen, stored) : 0;
  uint64_t rsize = rec_size(hlen, vpad, stored);
  if (d->cur == NULL || d->pos + rsize > d->seg_size) {
    /* the new file first: on failure the current segment stays open for
     * smaller records */
    struct disk_seg *s = NULL;
    int r = seg_create_locked(d, compaction, &s);
    if (r != 0) return r;
    if (d->cur != NULL) wr_seal_segment(d);
    seg_start_locked(d, s);
    vpad = rec_vpad_at(d->pos, hlen, stored);
    rsize = rec_size(hlen, vpad, stored);
  }
  put16(hb + 4, REC_VERSION);
  put32(hb + 20, vpad);
  if (!keep_seq) {
    rec_seal(hb, hlen, d->next_seq++);
  } else {
    rec_seal(hb, hlen, get64(hb + 24)); /* vpad may have changed */
    if (get64(hb + 24) >= d->next_seq) d->next_seq = get64(hb + 24) + 1;
  }

  uint64_t off = d->pos;
  uint64_t w0 = d->write_errors;
  wr_put(d, hb, hlen);
  if (vpad != 0) wr_put(d, NULL, vpad);
  if (stored != 0) wr_put(d, val, stored);
  if (rsize > hlen + vpad + stored) wr_put(d, NULL, rsize - hlen - vpad - stored);
  d->pos += rsize;
  d->appends++;
  d->cur->live += rsize;
  d->live_bytes += rsize;
  if (loc != NULL) *loc = disk_mkloc(d->cur->fileno, off);
  if (rec_bytes != NULL) *rec_bytes = rsize;
  if (seq != NULL) *seq = get64(hb + 24);

  int err = 0;
  if (d->o.sync == DISK_SYNC_ALWAYS)
    err = flush_locked(d, 1);
  else if (d->write_errors != w0) {
    err = d->werr;
    d->werr = 0;
  }
  if (err != 0) {
    /* this record's bytes may not have reached the file: not appended */
    d->cur->live -= disk_min(d->cur->live, rsize);
    d->live_bytes -= disk_min(d->live_bytes, rsize);
  }
  return err;
}

/* ---- bounce buffers ------------------------------------------------------ */

/* An IO_ALIGN-aligned buffer of at least n bytes (*cap: its size), from the
 * pool when one there is large enough (the smallest such), else new. */
static uint8_t *pool_get(disk *d, uint64_t n, uint64_t *cap) {
  n = disk_up(n ? n : 1, IO_ALIGN);
  pthread_mutex_lock(&d->pool_mu);
  uint32_t best = d->npool;
  for (uint32_t i = 0; i < d->npool; i++)
    if (d->pool[i].cap >= n &&
        (best == d->npool || d->pool[i].cap < d->pool[best].cap))
      best = i;
  if (best < d->npool) {
    uint8_t *p = d->pool[best].mem;
    *cap = d->pool[best].cap;
    d->pool_bytes -= *cap;
    d->pool[best] = d->pool[--d->npool];
    pthread_mutex_unlock(&d->pool_mu);
    return p;
  }
  pthread_mutex_unlock(&d->pool_mu);
  *cap = n;
  return disk_aalloc(n);
}

/* Give p (from pool_get) back: kept while the pool is under POOL_KEEP
 * bytes and poolcap buffers, else freed. */
static void pool_put(disk *d, uint8_t *p, uint64_t cap) {
  if (p == NULL) return;
  pthread_mutex_lock(&d->pool_mu);
  if (d->npool < d->poolcap && d->pool_bytes + cap <= POOL_KEEP) {
    d->pool[d->npool++] = (struct disk_bbuf){p, cap};
    d->pool_bytes += cap;
    p = NULL;
  }
  pthread_mutex_unlock(&d->pool_mu);
  free(p);
}

/* ---- reads --------------------------------------------------------------- */

struct disk_rjob {
  struct disk_seg *seg; /* reference held until rj_finish */
  const disk_rec *want;
  disk_loc loc;
  uint8_t *val; /* caller's buffer */
  uint64_t cap;
  uint64_t off; /* record's segment offset */
  uint32_t hlen, vpad;
  uint64_t total;  /* hlen + vpad + vlen */
  uint64_t dlen;   /* bytes [0, dlen) of the record come from disk */
  uint8_t *bounce; /* O_DIRECT: pooled, IO_ALIGN-aligned */
  uint64_t bcap;
  uint64_t blo;  /* file offset of bounce[0] */
  uint64_t body; /* direct into val: value bytes [0, body) are read there,
                    the header blocks and a partial last block into bounce
                    ([0, 2 IO_ALIGN) and [2 IO_ALIGN, 3 IO_ALIGN)) */
  int into_val;
  struct iovec iov[3];
  int niov;
  uint64_t ioff, need, got; /* file offset of iov, bytes that must arrive */
  size_t idx;               /* disk_read_batch: the request */
  int rc;
  uint8_t hdr[REC_HDR_MAX + IO_ALIGN]; /* header and vpad */
};

/* Copy n bytes at record offset rel from src into the header (and vpad)
 * or the value. */
static void rj_scatter(struct disk_rjob *j, uint64_t rel, const uint8_t *src,
                       uint64_t n) {
  uint64_t hv = (uint64_t)j->hlen + j->vpad;
  if (rel < hv) {
    uint64_t c = disk_min(n, hv - rel);
    memcpy(j->hdr + rel, src, c);
    rel += c;
    src += c;
    n -= c;
  }
  if (n > 0) memcpy(j->val + (rel - hv), src, n);
}

/* Resolve loc, take a segment reference, copy what is still in write
 * buffers and set up the file read of the rest.  The layout rule says
 * where the value is (checked against the header later).  0, or -errno
 * (done). */
static int rj_prepare(disk *d, struct disk_rjob *j, disk_loc loc,
                      const disk_rec *want, void *buf, uint64_t cap) {
  j->seg = NULL;
  j->bounce = NULL;
  j->bcap = 0;
  j->niov = 0;
  j->dlen = 0;
  j->body = 0;
  j->into_val = 0;
  j->need = j->got = 0;
  j->want = want;
  j->loc = loc;
  j->val = buf;
  j->cap = cap;
  if (want == NULL || (buf == NULL && want->vlen != 0) || cap < want->vlen ||
      want->nslen > REC_NS_MAX || want->klen > CASCADE_MAX_KEY ||
      (want->nslen != 0 && want->ns == NULL) ||
      (want->klen != 0 && want->key == NULL))
    return -EINVAL;
  if (want->type != 0 && want->type != DISK_REC_VALUE) return -EINVAL;
  j->hlen = REC_FIXED + want->nslen + want->klen;
  j->off = disk_loc_off(loc);
  uint32_t fileno = disk_loc_file(loc);
  if (loc == DISK_LOC_NONE || j->off < FILE_HDR || j->off >= d->seg_size)
    return -ENOENT;
  if (want->vlen > d->seg_size) return -EBADMSG; /* cannot be it */
  j->vpad = rec_vpad_at(j->off, j->hlen, want->vlen);
  j->total = (uint64_t)j->hlen + j->vpad + want->vlen;
  if (j->off + j->total > d->seg_size) return -EBADMSG;

  pthread_mutex_lock(&d->mu);
  struct disk_seg *s = seg_find_locked(d, fileno);
  if (s == NULL) {
    pthread_mutex_unlock(&d->mu);
    return -ENOENT;
  }
  atomic_fetch_add(&s->refs, 1);
  j->seg = s;
  uint64_t end = j->off + j->total, mem_lo = end;
  if (s == d->cur && end > d->pos) {
    pthread_mutex_unlock(&d->mu);
    return -EBADMSG; /* beyond the log head: no such record */
  }
  for (uint32_t i = 0; i < d->qn; i++) {
    struct disk_wbuf *b = &d->wq[(d->qh + i) % d->nbuf];
    if (b->seg != s) continue;
    if (b->off < mem_lo) mem_lo = b->off;
    uint64_t lo = b->off > j->off ? b->off : j->off;
    uint64_t hi = disk_min(b->off + b->fill, end);
    if (lo < hi) rj_scatter(j, lo - j->off, b->mem + (lo - b->off), hi - lo);
  }
  pthread_mutex_unlock(&d->mu);

  j->dlen = mem_lo > j->off ? disk_min(mem_lo, end) - j->off : 0;
  if (j->dlen == 0) return 0;
  uint64_t dend = j->off + j->dlen;           /* disk part: [off, dend) */
  uint64_t voff = j->off + j->hlen + j->vpad; /* the value's file offset */
  if (d->direct) {
    j->blo = disk_down(j->off, IO_ALIGN);
    j->ioff = j->blo;
    j->need = dend - j->blo;
    if (voff % IO_ALIGN == 0 && dend > voff &&
        (uintptr_t)buf % IO_ALIGN == 0 && voff - j->blo <= 2 * IO_ALIGN) {
      /* header blocks -> bounce, aligned body -> the caller's buffer, a
       * partial last block -> bounce; mem_lo is IO_ALIGN-aligned, so a
       * partial last block is the value's end */
      j->bounce = pool_get(d, SMALL_BOUNCE, &j->bcap);
      if (j->bounce == NULL) return -ENOMEM;
      j->into_val = 1;
      j->body = disk_down(dend - voff, IO_ALIGN);
      j->iov[j->niov++] = (struct iovec){j->bounce, voff - j->blo};
      if (j->body != 0) j->iov[j->niov++] = (struct iovec){j->val, j->body};
      if (dend - voff > j->body)
        j->iov[j->niov++] =
            (struct iovec){j->bounce + 2 * IO_ALIGN, IO_ALIGN};
    } else {
      uint64_t blen = disk_up(dend, IO_ALIGN) - j->blo;
      j->bounce = pool_get(d, blen, &j->bcap);
      if (j->bounce == NULL) return -ENOMEM;
      j->iov[j->niov++] = (struct iovec){j->bounce, blen};
    }
  } else {
    uint64_t h = disk_min(j->dlen, (uint64_t)j->hlen + j->vpad);
    j->iov[j->niov++] = (struct iovec){j->hdr, h};
    if (j->dlen > h) j->iov[j->niov++] = (struct iovec){j->val, j->dlen - h};
    j->ioff = j->off;
    j->need = j->dlen;
  }
  return 0;
}

/* Read whatever of the job's iov has not arrived yet, synchronously. */
static int rj_read_rest(struct disk_rjob *j) {
  while (j->got < j->need) {
    struct iovec v[3];
    int nv = 0;
    uint64_t skip = j->got;
    for (int i = 0; i < j->niov; i++) {
      if (skip >= j->iov[i].iov_len) {
        skip -= j->iov[i].iov_len;
        continue;
      }
      v[nv].iov_base = (uint8_t *)j->iov[i].iov_base + skip;
      v[nv].iov_len = j->iov[i].iov_len - skip;
      skip = 0;
      nv++;
    }
    ssize_t r = preadv(j->seg->fd, v, nv, (off_t)(j->ioff + j->got));
    if (r < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    if (r == 0) return -EBADMSG; /* the file ends inside the record */
    j->got += (uint64_t)r;
  }
  return 0;
}

/* Verify the assembled record against want; release the job. */
static int rj_finish(disk *d, struct disk_rjob *j, int rc) {
  if (rc == 0 && j->bounce != NULL) {
    if (j->into_val) {
      uint64_t voff = j->off + j->hlen + j->vpad;
      rj_scatter(j, 0, j->bounce + (j->off - j->blo), voff - j->off);
      uint64_t vd = j->off + j->dlen - voff;
      if (vd > j->body)
        memcpy(j->val + j->body, j->bounce + 2 * IO_ALIGN, vd - j->body);
    } else {
      rj_scatter(j, 0, j->bounce + (j->off - j->blo), j->dlen);
    }
  }
  const disk_rec *w = j->want;
  const uint8_t *h = j->hdr;
  int hdr_ok = rc == 0 && rec_hlen_ok(h) == j->hlen && rec_hsum_ok(h, j->hlen);
  if (rc == 0) {
    if (!hdr_ok || rec_vpad(h) != j->vpad || get16(h + 6) != DISK_REC_VALUE ||
        get32(h + 12) != w->klen || get16(h + 16) != w->nslen ||
        get64(h + 32) != w->vlen ||
        memcmp(h + 48, w->cid.b, CASCADE_CID_BYTES) != 0 ||
        (w->nslen != 0 && memcmp(h + REC_FIXED, w->ns, w->nslen) != 0) ||
        (w->klen != 0 &&
         memcmp(h + REC_FIXED + w->nslen, w->key, w->klen) != 0) ||
        (w->vlen != 0 ? XXH3_64bits(j->val, w->vlen) : 0) != get64(h + 64))
      rc = -EBADMSG;
  }
  pool_put(d, j->bounce, j->bcap);
  j->bounce = NULL;
  seg_put(j->seg);
  j->seg = NULL;
  j->rc = rc;
  atomic_fetch_add_explicit(&d->reads, 1, memory_order_relaxed);
  if (rc == 0)
    atomic_fetch_add_explicit(&d->bytes_read, j->want->vlen,
                              memory_order_relaxed);
  else if (rc == -EBADMSG)
    atomic_fetch_add_explicit(&d->read_errors, 1, memory_order_relaxed);
  return rc;
}

/* Finish a job whose reads were issued (rc: their result). */
static int rj_complete(disk *d, struct disk_rjob *j, int rc) {
  if (rc == 0) rc = rj_read_rest(j); /* short or unsubmitted reads */
  return rj_finish(d, j, rc);
}

/* ---- sequential scanning ------------------------------------------------- */

static int scan_init(struct disk_scan *s, int fd) {
  memset(s, 0, sizeof *s);
  s->fd = fd;
  struct stat st;
  if (fstat(fd, &st) != 0) return -errno;
  s->fsize = (uint64_t)st.st_size;
  s->win = disk_aalloc(SCAN_WIN);
  return s->win != NULL ? 0 : -ENOMEM;
}

static void scan_fini(struct disk_scan *s) {
  free(s->win);
  s->win = NULL;
}

/* Pointer to bytes [off, off + n) of the file (n <= SCAN_WIN / 2), or NULL
 * with *err = 0 (past end of file) or -errno. */
static const uint8_t *scan_get(struct disk_scan *s, uint64_t off, uint64_t n,
                               int *err) {
  *err = 0;
  if (off + n > s->fsize) return NULL;
  if (off >= s->wlo && off + n <= s->wlo + s->wlen)
    return s->win + (off - s->wlo);
  uint64_t lo = disk_down(off, IO_ALIGN);
  int64_t r = disk_pread_full(s->fd, s->win, SCAN_WIN, lo);
  if (r < 0) {
    s->wlen = 0;
    *err = (int)r;
    return NULL;
  }
  s->wlo = lo;
  s->wlen = (uint64_t)r;
  if (off + n > s->wlo + s->wlen) return NULL;
  return s->win + (off - s->wlo);
}

/* Copy n bytes at off to dst and/or hash them into st. */
static int scan_bytes(struct disk_scan *s, uint64_t off, uint64_t n,
                      uint8_t *dst, XXH3_state_t *st) {
  while (n > 0) {
    uint64_t c = disk_min(n, SCAN_WIN / 2);
    int err;
    const uint8_t *p = scan_get(s, off, c, &err);
    if (p == NULL) return err != 0 ? err : -EBADMSG;
    if (dst != NULL) {
      memcpy(dst, p, c);
      dst += c;
    }
    if (st != NULL) XXH3_64bits_update(st, p, c);
    off += c;
    n -= c;
  }
  return 0;
}

enum { SCAN_END = 0, SCAN_OK = 1, SCAN_BAD = 2 };

/* The record at off: header copied to hb, rec decoded from it.  With
 * check_value the value checksum is verified too.  Returns SCAN_OK,
 * SCAN_END (zero magic, or the file ends), SCAN_BAD, or -errno. */
static int scan_rec(struct disk_scan *s, uint64_t off, uint8_t *hb,
                    disk_rec *rec, uint32_t *hlen_out, uint32_t *vpad_out,
                    uint64_t *stored_out, int check_value) {
  int err;
  const uint8_t *p = scan_get(s, off, REC_FIXED, &err);
  if (p == NULL) return err != 0 ? err : SCAN_END;
  if (get32(p) == 0) return SCAN_END;
  uint32_t hlen = rec_hlen_ok(p);
  if (hlen == 0) return SCAN_BAD;
  p = scan_get(s, off, hlen, &err);
  if (p == NULL) return err != 0 ? err : SCAN_BAD;
  memcpy(hb, p, hlen);
  if (!rec_hsum_ok(hb, hlen)) return SCAN_BAD;
  rec_decode(hb, rec);
  uint64_t stored = rec_stored(rec->type, rec->vlen);
  uint32_t vpad = rec_vpad(hb);
  if (stored > s->fsize || off + hlen + vpad + stored > s->fsize)
    return SCAN_BAD;
  if (check_value && stored != 0) {
    XXH3_state_t st;
    XXH3_64bits_reset(&st);
    int r = scan_bytes(s, off + hlen + vpad, stored, NULL, &st);
    if (r < 0) return r == -EBADMSG ? SCAN_BAD : r;
    if (XXH3_64bits_digest(&st) != get64(hb + 64)) return SCAN_BAD;
  }
  *hlen_out = hlen;
  *vpad_out = vpad;
  *stored_out = stored;
  return SCAN_OK;
}

/* ---- open ---------------------------------------------------------------- */

static int disk_mkdirs(const char *dir) {
  char buf[PATH_MAX];
  size_t n = strlen(dir);
  if (n == 0 || n >= sizeof buf) return -ENAMETOOLONG;
  memcpy(buf, dir, n + 1);
  for (size_t i = 1; i <= n; i++) {
    if (buf[i] != '/' && buf[i] != '\0') continue;
    char c = buf[i];
    buf[i] = '\0';
    if (mkdir(buf, 0755) != 0 && errno != EEXIST) return -errno;
    buf[i] = c;
  }
  struct stat st;
  if (stat(dir, &st) != 0) return -errno;
  return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

/* File numbers of this rank's segment files, sorted. */
static int list_segments(const disk *d, uint32_t **out, size_t *n) {
  *out = NULL;
  *n = 0;
  DIR *dir = opendir(d->dirpath);
  if (dir == NULL) return -errno;
  char prefix[32];
  int plen = snprintf(prefix, sizeof prefix, "agg_rank%03u_", d->o.rank);
  size_t cap = 0;
  uint32_t *v = NULL;
  struct dirent *e;
  int err = 0;
  while ((e = readdir(dir)) != NULL) {
    const char *nm = e->d_name;
    if (strncmp(nm, prefix, (size_t)plen) != 0) continue;
    const char *p = nm + plen;
    uint64_t f = 0;
    int digits = 0;
    while (*p >= '0' && *p <= '9' && digits < 11) {
      f = f * 10 + (uint64_t)(*p - '0');
      p++;
      digits++;
    }
    if (digits == 0 || strcmp(p, ".bin") != 0 || f == 0 || f >= UINT32_MAX)
      continue;
    if (*n == cap) {
      cap = cap ? 2 * cap : 64;
      uint32_t *nv = realloc(v, cap * sizeof *nv);
      if (nv == NULL) {
        err = -ENOMEM;
        break;
      }
      v = nv;
    }
    v[(*n)++] = (uint32_t)f;
  }
  closedir(dir);
  if (err != 0) {
    free(v);
    *n = 0;
    return err;
  }
  if (*n > 1) qsort(v, *n, sizeof *v, cmp_u32);
  *out = v;
  return 0;
}

/* Zero the rest of the IO_ALIGN block from off on, so a later scan ends
 * there (cutting off a torn tail). */
static int scan_cut(const disk *d, int fd, uint64_t off) {
  uint8_t *blk = disk_aalloc(IO_ALIGN);
  if (blk == NULL) return -ENOMEM;
  uint64_t lo = disk_down(off, IO_ALIGN);
  int64_t r = disk_pread_full(fd, blk, IO_ALIGN, lo);
  int err = r < 0 ? (int)r : 0;
  if (err == 0) {
    memset(blk + (off - lo), 0, IO_ALIGN - (off - lo));
    err = disk_pwrite_full(fd, blk, IO_ALIGN, lo);
    if (err == 0 && d->o.sync != DISK_SYNC_NONE && fdatasync(fd) != 0)
      err = -errno;
  }
  free(blk);
  return err;
}

/* Open and scan segment file fileno, adding it to the table. */
static int scan_segment(disk *d, uint32_t fileno, int last,
                        disk_scan_fn on_record, void *ctx, uint64_t *max_seq,
                        uint8_t *hb) {
  char path[PATH_MAX];
  seg_path(d, fileno, path, sizeof path);
  int fd = open(path, seg_open_flags(d));
  if (fd < 0) return -errno;
  struct disk_seg *s = calloc(1, sizeof *s);
  if (s == NULL) {
    close(fd);
    return -ENOMEM;
  }
  struct disk_scan sc;
  int r = scan_init(&sc, fd);
  s->fileno = fileno;
  s->fd = fd;
  s->sealed = 1;
  s->file_bytes = sc.fsize;
  atomic_init(&s->refs, 1);
  if (r == 0) {
    pthread_mutex_lock(&d->mu);
    r = seg_insert_locked(d, s);
    pthread_mutex_unlock(&d->mu);
  }
  if (r != 0) {
    scan_fini(&sc);
    close(fd);
    free(s);
    return r;
  }
  if (fileno >= d->next_file) d->next_file = fileno + 1;

  int err;
  const uint8_t *fh = scan_get(&sc, 0, FILE_HDR, &err);
  if (fh == NULL || !file_hdr_ok(d, fileno, fh)) {
    scan_fini(&sc);
    if (err != 0) return err;
    if (sc.fsize != 0 || !last)
      d->torn_records++; /* an unusable file: nothing in it is reported */
    return 0;
  }
  uint64_t off = FILE_HDR;
  for (;;) {
    disk_rec rec;
    uint32_t hlen, vpad;
    uint64_t stored;
    r = scan_rec(&sc, off, hb, &rec, &hlen, &vpad, &stored, last);
    if (r < 0) {
      scan_fini(&sc);
      return r;
    }
    if (r == SCAN_END) break;
    if (r == SCAN_BAD) {
      d->torn_records++;
      if (last) r = scan_cut(d, fd, off);
      scan_fini(&sc);
      return r < 0 ? r : 0;
    }
    uint64_t rsize = rec_size(hlen, vpad, stored);
    pthread_mutex_lock(&d->mu);
    s->live += rsize;
    d->live_bytes += rsize;
    pthread_mutex_unlock(&d->mu);
    if (rec.seq > *max_seq) *max_seq = rec.seq;
    if (on_record != NULL) on_record(ctx, &rec, disk_mkloc(fileno, off), rsize);
    off += rsize;
    if (off > sc.fsize) break;
  }
  scan_fini(&sc);
  return 0;
}

static int opts_ok(const disk_opts *o) {
  if (o->dir == NULL || o->dir[0] == '\0' || o->rank > 999) return 0;
  if (o->segment_size < SEG_MIN || o->segment_size > SEG_MAX) return 0;
  if (o->sync < DISK_SYNC_NONE || o->sync > DISK_SYNC_ALWAYS) return 0;
  if (o->io < DISK_IO_AUTO || o->io > DISK_IO_BUFFERED) return 0;
  if (o->queue_depth < 1 || o->queue_depth > QD_MAX) return 0;
  if (o->write_buffer < WBUF_MIN || o->write_buffer > WBUF_MAX) return 0;
  if (isnan(o->compact_threshold) || o->compact_threshold < 0) return 0;
  return 1;
}

/* Decide O_DIRECT: asked for, or AUTO and the file system takes it (tmpfs
 * and ramfs are memory already: buffered). */
static int probe_direct(const disk *d, const char *lockpath) {
  if (d->o.io == DISK_IO_BUFFERED) return 0;
  struct statfs sf;
  if (d->o.io == DISK_IO_AUTO && statfs(d->dirpath, &sf) == 0 &&
      ((long)sf.f_type == TMPFS_MAGIC_ || (long)sf.f_type == RAMFS_MAGIC_))
    return 0;
  int fd = open(lockpath, O_RDONLY | O_DIRECT | O_CLOEXEC);
  if (fd < 0) {
    if (d->o.io == DISK_IO_DIRECT) return errno == EINVAL ? -EINVAL : -errno;
    return 0;
  }
  close(fd);
  return 1;
}

int disk_open(const disk_opts *o, disk_scan_fn on_record, void *ctx,
              disk **out) {
  if (out != NULL) *out = NULL;
  if (o == NULL || out == NULL || !opts_ok(o)) return -EINVAL;

  disk *d = calloc(1, sizeof *d);
  if (d == NULL) return -ENOMEM;
  d->o = *o;
  d->lockfd = -1;
  d->dirpath = strdup(o->dir);
  if (d->dirpath == NULL) {
    free(d);
    return -ENOMEM;
  }
  size_t dl = strlen(d->dirpath);
  while (dl > 1 && d->dirpath[dl - 1] == '/') d->dirpath[--dl] = '\0';
  d->o.dir = d->dirpath;
  d->seg_size = disk_down(o->segment_size, IO_ALIGN);
  d->wbuf = disk_up(o->write_buffer, IO_ALIGN);
  d->next_file = 1;
  d->next_seq = 1;
  pthread_mutex_init(&d->mu, NULL);
  pthread_mutex_init(&d->compact_mu, NULL);
  pthread_mutex_init(&d->read_mu, NULL);
  pthread_mutex_init(&d->pool_mu, NULL);
  atomic_init(&d->bytes_read, 0);
  atomic_init(&d->reads, 0);
  atomic_init(&d->read_errors, 0);

  int r = disk_mkdirs(d->dirpath);
  char lockpath[PATH_MAX];
  if (r == 0 &&
      (size_t)snprintf(lockpath, sizeof lockpath, "%s/agg_rank%03u.lock",
                       d->dirpath, o->rank) >= sizeof lockpath)
    r = -ENAMETOOLONG;
  if (r == 0) {
    d->lockfd = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (d->lockfd < 0)
      r = -errno;
    else if (flock(d->lockfd, LOCK_EX | LOCK_NB) != 0)
      r = errno == EWOULDBLOCK ? -EBUSY : -errno;
  }
  if (r == 0) {
    r = probe_direct(d, lockpath);
    if (r >= 0) {
      d->direct = r;
      r = 0;
    }
  }
  if (r == 0) {
    struct statfs sf;
    d->lustre = statfs(d->dirpath, &sf) == 0 &&
                (long)sf.f_type == LL_SUPER_MAGIC && disk_have_lfs();
    d->uring = io_uring_queue_init(o->queue_depth, &d->wring, 0) == 0;
    d->rring_ok =
        d->uring && io_uring_queue_init(o->queue_depth, &d->rring, 0) == 0;
    d->nbuf = d->uring ? o->queue_depth + 1 : 1;
    d->mode = d->direct ? (d->uring ? "direct+io_uring" : "direct+pwrite")
                        : (d->uring ? "buffered+io_uring" : "buffered+pwrite");
    d->wq = calloc(d->nbuf, sizeof *d->wq);
    if (d->wq == NULL) r = -ENOMEM;
    d->poolcap = disk_min(2 * (uint64_t)o->queue_depth + 2, POOL_MAX);
    d->pool = calloc(d->poolcap, sizeof *d->pool);
    if (d->pool == NULL) r = -ENOMEM;
    if (r == 0 && (d->wmem = wmem_alloc((uint64_t)d->nbuf * d->wbuf)) == NULL)
      r = -ENOMEM;
    for (uint32_t i = 0; r == 0 && i < d->nbuf; i++)
      d->wq[i].mem = d->wmem + (uint64_t)i * d->wbuf;
  }

  /* scan */
  uint32_t *files = NULL;
  size_t nfiles = 0;
  uint8_t *hb = NULL;
  if (r == 0) r = list_segments(d, &files, &nfiles);
  if (r == 0 && nfiles > 0) {
    hb = malloc(REC_HDR_MAX);
    if (hb == NULL) r = -ENOMEM;
  }
  uint64_t max_seq = 0;
  for (size_t i = 0; r == 0 && i < nfiles; i++)
    r = scan_segment(d, files[i], i + 1 == nfiles, on_record, ctx, &max_seq,
                     hb);
  free(files);
  free(hb);
  if (r != 0) {
    d->o.sync = DISK_SYNC_NONE; /* nothing to write out */
    disk_close(d);
    return r;
  }
  d->next_seq = max_seq + 1;
  *out = d;
  return 0;
}

/* ---- public -------------------------------------------------------------- */

int disk_close(disk *d) {
  if (d == NULL) return 0;
  int err = 0;
  pthread_mutex_lock(&d->compact_mu);
  if (d->victim != NULL) {
    seg_put(d->victim);
    d->victim = NULL;
    scan_fini(&d->vscan);
  }
  free(d->scratch);
  pthread_mutex_unlock(&d->compact_mu);

  pthread_mutex_lock(&d->mu);
  if (d->wq != NULL) err = flush_locked(d, d->o.sync != DISK_SYNC_NONE);
  for (size_t i = 0; i < d->nsegs; i++) seg_put(d->segs[i]);
  free(d->segs);
  free(d->wmem);
  free(d->wq);
  if (d->uring) io_uring_queue_exit(&d->wring);
  if (d->rring_ok) io_uring_queue_exit(&d->rring);
  pthread_mutex_unlock(&d->mu);
  free(d->rjobs);
  free(d->rfree);
  free(d->rdone);
  for (uint32_t i = 0; i < d->npool; i++) free(d->pool[i].mem);
  free(d->pool);

  if (d->lockfd >= 0) close(d->lockfd); /* drops the flock */
  pthread_mutex_destroy(&d->mu);
  pthread_mutex_destroy(&d->compact_mu);
  pthread_mutex_destroy(&d->read_mu);
  pthread_mutex_destroy(&d->pool_mu);
  free(d->dirpath);
  free(d);
  return err;
}

int disk_append(disk *d, disk_rec *rec, const void *value, disk_loc *loc,
                uint64_t *rec_bytes) {
  if (loc != NULL) *loc = DISK_LOC_NONE;
  if (rec_bytes != NULL) *rec_bytes = 0;
  if (d == NULL || rec == NULL) return -EINVAL;
  if (rec->type < DISK_REC_VALUE || rec->type > DISK_REC_DELETE ||
      rec->nslen > REC_NS_MAX || rec->klen > CASCADE_MAX_KEY ||
      (rec->nslen != 0 && rec->ns == NULL) ||
      (rec->klen != 0 && rec->key == NULL))
    return -EINVAL;
  uint64_t stored = rec_stored(rec->type, rec->vlen);
  if (stored != 0 && value == NULL) return -EINVAL;
  if (stored > d->seg_size) return -EFBIG;
  uint64_t hlen = REC_FIXED + rec->nslen + rec->klen;
  if (rec_size((uint32_t)hlen, rec_vpad_at(FILE_HDR, (uint32_t)hlen, stored),
               stored) > d->seg_size - FILE_HDR)
    return -EFBIG;

  /* checksum and header outside the lock */
  uint8_t hbs[REC_FIXED + REC_NS_MAX + 256];
  uint8_t *hb = hlen <= sizeof hbs ? hbs : malloc(hlen);
  if (hb == NULL) return -ENOMEM;
  uint64_t vsum = stored != 0 ? XXH3_64bits(value, stored) : 0;
  rec_encode(rec, vsum, hb);

  pthread_mutex_lock(&d->mu);
  int r = d->werr;
  d->werr = 0;
  uint64_t seq = 0;
  if (r == 0)
    r = append_locked(d, hb, (uint32_t)hlen, value, stored, 0, 0, loc,
                      rec_bytes, &seq);
  pthread_mutex_unlock(&d->mu);
  if (hb != hbs) free(hb);
  if (r != 0) {
    if (loc != NULL) *loc = DISK_LOC_NONE;
    if (rec_bytes != NULL) *rec_bytes = 0;
    return r;
  }
  rec->seq = seq;
  return 0;
}

int disk_read(disk *d, disk_loc loc, const disk_rec *want, void *buf,
              uint64_t cap) {
  if (d == NULL) return -EINVAL;
  struct disk_rjob job; /* ~8.6 KiB: the largest header and a vpad */
  int r = rj_prepare(d, &job, loc, want, buf, cap);
  if (r == -EINVAL && job.seg == NULL) return r; /* bad arguments: not a read */
  return r == 0 ? rj_complete(d, &job, 0) : rj_finish(d, &job, r);
}

static int read_one(disk *d, disk_read_req *q) {
  q->rc = disk_read(d, q->loc, q->want, q->buf, q->cap);
  return q->rc == 0;
}

/* Start the job for reqs[i]: prepare it and queue its read on the read
 * ring.  Returns 1 if an SQE was queued; 0 if the job is already done
 * (q->rc set: an error, or the record came from memory). */
static int read_start(disk *d, struct disk_rjob *j, disk_read_req *reqs,
                      size_t i) {
  disk_read_req *q = &reqs[i];
  j->idx = i;
  int r = rj_prepare(d, j, q->loc, q->want, q->buf, q->cap);
  if (r == -EINVAL && j->seg == NULL) {
    q->rc = -EINVAL;
    return 0;
  }
  struct io_uring_sqe *sqe = r == 0 && j->need != 0
                                 ? io_uring_get_sqe(&d->rring)
                                 : NULL;
  if (sqe == NULL) { /* done, or no SQE: read synchronously */
    q->rc = r == 0 ? rj_complete(d, j, 0) : rj_finish(d, j, r);
    return 0;
  }
  io_uring_prep_readv(sqe, j->seg->fd, j->iov, (unsigned)j->niov, j->ioff);
  io_uring_sqe_set_data(sqe, j);
  return 1;
}

/* The sliding window (read_mu held): keep queue_depth reads in flight; as
 * reads complete, the next ones are submitted first, then the completed
 * ones are verified and copied while the device works on the others. */
static int read_sliding(disk *d, disk_read_req *reqs, size_t n) {
  uint32_t qd = d->o.queue_depth, nfree = qd, ndone = 0, inflight = 0;
  struct disk_rjob **freel = d->rfree, **done = d->rdone;
  for (uint32_t k = 0; k < qd; k++) freel[k] = &d->rjobs[k];
  size_t next = 0;
  int ring_bad = 0;
  for (;;) {
    /* refill and submit */
    uint32_t queued = 0;
    while (next < n && nfree > 0) {
      struct disk_rjob *j = freel[nfree - 1];
      if (read_start(d, j, reqs, next++))
        queued++, nfree--;
    }
    if (queued > 0) {
      int r;
      do r = io_uring_submit(&d->rring);
      while (r == -EINTR);
      if (r > 0) inflight += (uint32_t)r;
      if (r != (int)queued) {
        ring_bad = 1;
        inflight += queued - (r > 0 ? (uint32_t)r : 0); /* finished below */
      }
    }
    /* verify and copy what completed, while the rest is in flight */
    for (uint32_t k = 0; k < ndone; k++) {
      struct disk_rjob *j = done[k];
      reqs[j->idx].rc = rj_complete(d, j, j->rc);
      freel[nfree++] = j;
    }
    ndone = 0;
    if (ring_bad || inflight == 0) {
      if (next < n && !ring_bad) continue;
      break;
    }
    /* wait for one completion, take every one that is there */
    struct io_uring_cqe *cqe = NULL;
    int r = io_uring_wait_cqe(&d->rring, &cqe);
    if (r == -EINTR) continue;
    if (r < 0) {
      ring_bad = 1;
      break;
    }
    unsigned head, seen = 0;
    io_uring_for_each_cqe(&d->rring, head, cqe) {
      struct disk_rjob *j = io_uring_cqe_get_data(cqe);
      seen++;
      j->rc = cqe->res < 0 ? cqe->res : 0;
      if (cqe->res > 0) j->got += (uint64_t)cqe->res;
      done[ndone++] = j;
      inflight--;
    }
    io_uring_cq_advance(&d->rring, seen);
  }
  if (ring_bad) {
    /* SQEs not submitted (or completions lost): tear the ring down (that
     * waits for what the kernel holds) and finish every job left
     * synchronously (rj_read_rest reads what did not arrive) */
    io_uring_queue_exit(&d->rring);
    d->rring_ok = 0;
    for (uint32_t k = 0; k < qd; k++) {
      struct disk_rjob *j = &d->rjobs[k];
      int is_free = 0;
      for (uint32_t f = 0; f < nfree && !is_free; f++) is_free = freel[f] == j;
      if (is_free) continue;
      reqs[j->idx].rc = rj_complete(d, j, 0);
    }
    for (; next < n; next++) read_one(d, &reqs[next]);
  }
  int ok = 0;
  for (size_t i = 0; i < n; i++) ok += reqs[i].rc == 0;
  return ok;
}

int disk_read_batch(disk *d, disk_read_req *reqs, size_t n) {
  if (d == NULL || (reqs == NULL && n != 0)) return -EINVAL;
  if (n > 1) {
    pthread_mutex_lock(&d->read_mu);
    if (d->rring_ok && d->rjobs == NULL) {
      /* kept until close: the batch path does not allocate */
      uint32_t qd = d->o.queue_depth;
      d->rjobs = malloc(sizeof *d->rjobs * qd);
      d->rfree = malloc(sizeof *d->rfree * qd);
      d->rdone = malloc(sizeof *d->rdone * qd);
      if (d->rjobs == NULL || d->rfree == NULL || d->rdone == NULL) {
        free(d->rjobs);
        free(d->rfree);
        free(d->rdone);
        d->rjobs = NULL;
        d->rfree = d->rdone = NULL;
      }
    }
    if (d->rring_ok && d->rjobs != NULL) {
      int ok = read_sliding(d, reqs, n);
      pthread_mutex_unlock(&d->read_mu);
      return ok;
    }
    pthread_mutex_unlock(&d->read_mu);
  }
  int ok = 0;
  for (size_t i = 0; i < n; i++) /* one request, no ring, or no memory */
    ok += read_one(d, &reqs[i]);
  return ok;
}

void disk_release(disk *d, disk_loc loc, uint64_t rec_bytes) {
  if (d == NULL || loc == DISK_LOC_NONE) return;
  pthread_mutex_lock(&d->mu);
  struct disk_seg *s = seg_find_locked(d, disk_loc_file(loc));
  if (s != NULL) {
    uint64_t n = disk_min(rec_bytes, s->live);
    s->live -= n;
    d->live_bytes -= disk_min(n, d->live_bytes);
  }
  pthread_mutex_unlock(&d->mu);
}

int disk_flush(disk *d) {
  if (d == NULL) return -EINVAL;
  pthread_mutex_lock(&d->mu);
  int r = flush_locked(d, d->o.sync != DISK_SYNC_NONE);
  pthread_mutex_unlock(&d->mu);
  return r;
}

/* The sealed segment with the lowest live ratio under the threshold; or,
 * with oldest, the sealed segment written first, whatever its ratio. */
static struct disk_seg *compact_pick_locked(disk *d, int oldest) {
  struct disk_seg *best = NULL;
  double best_ratio = 0;
  for (size_t i = 0; i < d->nsegs; i++) {
    struct disk_seg *s = d->segs[i];
    if (!s->sealed || s == d->cur || s == d->victim) continue;
    if (oldest) {
      if (best == NULL || s->fileno < best->fileno) best = s;
      continue;
    }
    double ratio =
        s->file_bytes ? (double)s->live / (double)s->file_bytes : 0.0;
    if (ratio >= d->o.compact_threshold && s->live != 0) continue;
    if (best == NULL || ratio < best_ratio) {
      best = s;
      best_ratio = ratio;
    }
  }
  return best;
}

/* The victim is done: make the moved copies durable, delete its file. */
static int compact_finish(disk *d) {
  pthread_mutex_lock(&d->mu);
  int r = flush_locked(d, d->o.sync != DISK_SYNC_NONE);
  if (r == 0) {
    seg_delete_locked(d, d->victim);
    d->compactions++;
  }
  pthread_mutex_unlock(&d->mu);
  seg_put(d->victim);
  d->victim = NULL;
  scan_fini(&d->vscan);
  return r;
}

static int64_t compact_step(disk *d, uint64_t budget, int oldest,
                            disk_live_fn is_live, disk_moved_fn moved,
                            void *ctx) {
  if (d == NULL || is_live == NULL) return -EINVAL;
  if (budget == 0) budget = 1;
  uint8_t *hb = malloc(REC_HDR_MAX);
  if (hb == NULL) return -ENOMEM;
  pthread_mutex_lock(&d->compact_mu);
  uint64_t done = 0;
  int err = 0;
  while (done < budget) {
    if (d->victim == NULL) {
      pthread_mutex_lock(&d->mu);
      struct disk_seg *v = compact_pick_locked(d, oldest);
      if (v != NULL && v->live == 0) {
        seg_delete_locked(d, v); /* nothing live: just delete it */
        d->compactions++;
        pthread_mutex_unlock(&d->mu);
        continue;
      }
      if (v != NULL) atomic_fetch_add(&v->refs, 1);
      pthread_mutex_unlock(&d->mu);
      if (v == NULL) break;
      err = scan_init(&d->vscan, v->fd);
      if (err != 0) {
        seg_put(v);
        break;
      }
      d->victim = v;
      d->vcur = FILE_HDR;
      int e;
      const uint8_t *fh = scan_get(&d->vscan, 0, FILE_HDR, &e);
      if (fh == NULL || !file_hdr_ok(d, v->fileno, fh))
        d->vcur = d->vscan.fsize; /* unusable file: nothing to move */
    }
    disk_rec rec;
    uint32_t hlen = 0, vpad = 0;
    uint64_t stored = 0;
    int r = d->vcur < d->vscan.fsize ? scan_rec(&d->vscan, d->vcur, hb, &rec,
                                                &hlen, &vpad, &stored, 0)
                                     : SCAN_END;
    if (r < 0) {
      err = r;
      break;
    }
    if (r != SCAN_OK) {
      err = compact_finish(d);
      if (err != 0) break;
      continue;
    }
    uint64_t rsize = rec_size(hlen, vpad, stored);
    disk_loc old = disk_mkloc(d->victim->fileno, d->vcur);
    if (is_live(ctx, &rec, old)) {
      if (stored > d->scratch_cap) {
        free(d->scratch);
        d->scratch = malloc(stored);
        d->scratch_cap = d->scratch != NULL ? stored : 0;
        if (d->scratch == NULL) {
          err = -ENOMEM;
          break;
        }
      }
      err = scan_bytes(&d->vscan, d->vcur + hlen + vpad, stored, d->scratch,
                       NULL);
      if (err != 0) break;
      disk_loc nl = DISK_LOC_NONE;
      uint64_t nb = 0;
      pthread_mutex_lock(&d->mu);
      err =
          append_locked(d, hb, hlen, d->scratch, stored, 1, 1, &nl, &nb, NULL);
      if (err == 0) {
        uint64_t n = disk_min(rsize, d->victim->live);
        d->victim->live -= n;
        d->live_bytes -= disk_min(n, d->live_bytes);
        d->compacted_bytes += rsize;
      }
      pthread_mutex_unlock(&d->mu);
      if (err != 0) break;
      rec_decode(hb, &rec); /* pointers into hb, as before */
      if (moved != NULL) moved(ctx, &rec, old, nl, nb);
      done += rsize;
    }
    d->vcur += rsize;
  }
  if (d->scratch_cap > SCRATCH_KEEP) {
    free(d->scratch);
    d->scratch = NULL;
    d->scratch_cap = 0;
  }
  pthread_mutex_unlock(&d->compact_mu);
  free(hb);
  return err != 0 ? err : (int64_t)done;
}

int64_t disk_compact_step(disk *d, uint64_t budget, disk_live_fn is_live,
                          disk_moved_fn moved, void *ctx) {
  return compact_step(d, budget, 0, is_live, moved, ctx);
}

int64_t disk_reclaim_step(disk *d, uint64_t budget, disk_live_fn is_live,
                          disk_moved_fn moved, void *ctx, int *freed) {
  uint64_t before = 0;
  if (d != NULL) {
    pthread_mutex_lock(&d->mu);
    before = d->compactions;
    pthread_mutex_unlock(&d->mu);
  }
  int64_t r = compact_step(d, budget, 1, is_live, moved, ctx);
  if (freed != NULL && d != NULL) {
    pthread_mutex_lock(&d->mu);
    *freed = d->compactions != before;
    pthread_mutex_unlock(&d->mu);
  }
  return r;
}

void disk_drop_cache(disk *d) {
  if (d == NULL) return;
  pthread_mutex_lock(&d->mu);
  int e = flush_locked(d, 0);
  if (e != 0 && d->werr == 0) d->werr = e; /* still to be reported */
  for (size_t i = 0; i < d->nsegs; i++)
    posix_fadvise(d->segs[i]->fd, 0, 0, POSIX_FADV_DONTNEED);
  pthread_mutex_unlock(&d->mu);
}

void disk_get_stats(disk *d, disk_stats *st) {
  if (st == NULL) return;
  memset(st, 0, sizeof *st);
  if (d == NULL) return;
  pthread_mutex_lock(&d->mu);
  st->segments = d->nsegs;
  st->file_bytes = d->file_bytes;
  st->live_bytes = d->live_bytes;
  st->capacity = d->o.capacity;
  st->bytes_written = d->bytes_written;
  st->appends = d->appends;
  st->write_errors = d->write_errors;
  st->compactions = d->compactions;
  st->compacted_bytes = d->compacted_bytes;
  st->torn_records = d->torn_records;
  st->syncs = d->syncs;
  pthread_mutex_unlock(&d->mu);
  st->bytes_read = atomic_load_explicit(&d->bytes_read, memory_order_relaxed);
  st->reads = atomic_load_explicit(&d->reads, memory_order_relaxed);
  st->read_errors = atomic_load_explicit(&d->read_errors, memory_order_relaxed);
}

const char *disk_mode(const disk *d) {
  return d != NULL && d->mode != NULL ? d->mode : "closed";
}
