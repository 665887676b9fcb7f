/*
 * cascade.h - the public API of libcascade, a multi-tier, content-addressed
 * KV-cache store for LLM inference.
 *
 * Conventions (apply to every call unless its comment says otherwise):
 *
 *  - Errors.  Functions return 0 (or a non-negative count) on success and a
 *    negative errno value on failure (-ENOENT, -ENOSPC, -EINVAL, ...).
 *    Codes specific to Cascade sit in the reserved range
 *    [CASCADE_ERR_LAST, CASCADE_ERR_FIRST]; cascade_strerror() names them all.
 *    No call aborts the process on bad input or out-of-memory.
 *
 *  - Ownership.  Pointers passed in are borrowed for the duration of the call
 *    only; the library copies what it keeps.  Pointers handed out say how long
 *    they stay valid.  A view (cascade_get_view) needs exactly one
 *    cascade_view_release().
 *
 *  - Threads.  A cascade handle may be used from any number of threads at
 *    once.  A cascade_config is not thread-safe; configure it from one thread.
 *
 *  - Namespaces.  `ns` is a NUL-terminated namespace name of 1..255 bytes;
 *    NULL or "" means the namespace "default".  Keys, reads and
 *    deduplication never cross namespaces.
 *
 *  - Keys are byte strings of 1..CASCADE_MAX_KEY bytes (binary allowed).
 *    Values are 0..max_value bytes (setting "max_value", default 1 GiB).
 */
#ifndef CASCADE_H
#define CASCADE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define CASCADE_API __attribute__((visibility("default")))
#else
#define CASCADE_API
#endif

#define CASCADE_VERSION_MAJOR 0
#define CASCADE_VERSION_MINOR 1
#define CASCADE_VERSION_PATCH 0

/* Longest key accepted, in bytes. */
#define CASCADE_MAX_KEY 4096
/* Longest namespace name accepted, in bytes (without the NUL). */
#define CASCADE_MAX_NS 255

/* ---- Error codes specific to Cascade (negative, reserved range) -------- */
#define CASCADE_ERR_FIRST (-30600)
/* cascade_config_set: no setting by that name. */
#define CASCADE_EUNKNOWN (-30600)
/* stored data failed verification (checksum / content id mismatch). */
#define CASCADE_ECORRUPT (-30601)
/* the store is closing or closed. */
#define CASCADE_ECLOSED (-30602)
#define CASCADE_ERR_LAST (-30602)

/* Library version string, e.g. "0.1.0". Static storage. */
CASCADE_API const char *cascade_version(void);

/*
 * Human-readable text for a return code (negative errno or a CASCADE_E*
 * code; the sign is ignored for errno values).  Static storage, never NULL.
 */
CASCADE_API const char *cascade_strerror(int err);

/* ---- Configuration ------------------------------------------------------ */

typedef struct cascade_config cascade_config;

/*
 * Create a configuration holding the defaults.  Free it with
 * cascade_config_free().  Errors: -ENOMEM.
 */
CASCADE_API int cascade_config_new(cascade_config **out);

/* Free a configuration.  NULL is accepted. */
CASCADE_API void cascade_config_free(cascade_config *cfg);

/*
 * Set one setting from its string form, e.g.
 *   cascade_config_set(cfg, "dram.capacity", "8g");
 * Sizes take an optional binary suffix k/m/g/t (also "kb", "kib", ...,
 * case-insensitive); booleans take true/false, yes/no, on/off, 1/0.
 *
 * Settings (default in brackets):
 *   dram.capacity   size of the shared-memory DRAM arena, 64 B..1 PiB [1g];
 *                   a hard limit
 *   dram.hugepages  back the arena with huge pages (falls back to normal
 *                   pages if the system has none; cascade_stats says) [false]
 *   dram.prefault   populate the arena's pages at open [false]
 *   dram.backing    "memfd" (anonymous memory file) or "shm" (a 0600 file in
 *                   /dev/shm, unlinked at once) [memfd]
 *   max_value       largest value accepted, 1 B..1 TiB [1g]
 *   dedup           share one copy between keys with equal content [true]
 *   policy          eviction policy: "lru", "arc", "s3fifo", "lfu" or
 *                   "semantic" [semantic]
 *   index.shards    number of index shards, a power of two 1..4096 [64]
 *   stats.latency   record get/put latency percentiles [true]
 *
 * Disk tier (off unless disk.dir is set; see docs/ARCHITECTURE.md):
 *   disk.dir        directory of the segment files; "" = no disk tier [""]
 *   disk.rank       writer rank: files agg_rank{rank}_*.bin, 0..999 [0]
 *   disk.capacity   bound on the segment files' total size; 0 = only the
 *                   file system's [0]
 *   disk.segment_size  bytes per segment file, >= 1m [256m]
 *   disk.sync       "none", "batch" (cascade_flush() and close make
 *                   everything durable) or "always" (every write) [batch]
 *   disk.write      "back" (a block goes to disk when DRAM evicts it),
 *                   "through" (every put is written at once) or
 *                   "selective" (written back only once read
 *                   disk.write_after times; colder blocks are dropped) [back]
 *   disk.write_after  reads before "selective" writes a block back [2]
 *   disk.promote_after  a block read from disk more than this many times
 *                   is copied back up into DRAM; 0 = never [3]
 *   disk.io         "auto" (O_DIRECT where the file system allows it),
 *                   "direct" or "buffered" [auto]
 *   disk.queue_depth  I/Os in flight per batch, 1..256 [8]
 *   disk.write_buffer  bytes per write buffer, 64k..256m [2m]
 *   disk.compact_below  compact segments whose live share is under this
 *                   percentage, 1..100 [50]
 *   disk.stripe_count, disk.stripe_size  on Lustre, `lfs setstripe -c/-S`
 *                   for new segment files; 0 = the file system's default [0]
 *
 * Errors: -EINVAL (bad value; the configuration is unchanged),
 * CASCADE_EUNKNOWN (no such setting), -ENOMEM.
 */
CASCADE_API int cascade_config_set(cascade_config *cfg, const char *name,
                                   const char *value);

/*
 * Write the current value of a setting, in canonical string form, into
 * buf (NUL-terminated).  Errors: CASCADE_EUNKNOWN, -ENOBUFS (cap too small).
 */
CASCADE_API int cascade_config_get(const cascade_config *cfg, const char *name,
                                   char *buf, size_t cap);

/*
 * The names of all settings, in a NULL-terminated static array (for help
 * texts and for passing settings through from a daemon or CLI).
 */
CASCADE_API const char *const *cascade_config_names(void);

/* ---- Life cycle ---------------------------------------------------------- */

typedef struct cascade cascade;

/*
 * Open a store.  cfg may be NULL (all defaults); it is copied, so the caller
 * keeps ownership and may free it right after.
 * Errors: -ENOMEM, -EINVAL (inconsistent settings), or the errno of a
 * failed memfd_create/open/ftruncate/mmap.
 */
CASCADE_API int cascade_open(const cascade_config *cfg, cascade **out);

/*
 * Close a store and free everything it holds.  NULL is accepted.  Every
 * view must have been released and no other thread may be using the handle;
 * views still held become invalid.
 */
CASCADE_API void cascade_close(cascade *c);

/*
 * Make every block stored so far durable on the disk tier: blocks only in
 * DRAM are written, buffered records are written out, and (unless
 * disk.sync = none) the files are fdatasync()ed.  After it returns 0, a
 * crash loses none of those blocks; cascade_close() does the same.  Without
 * a disk tier it does nothing and returns 0.  Errors: -ENOSPC (the disk tier
 * is full: blocks that did not fit are still in DRAM), -EIO and other
 * -errno from the file system.
 */
CASCADE_API int cascade_flush(cascade *c);

/*
 * Drop the operating system's page cache of the disk tier's files
 * (posix_fadvise DONTNEED), so that the next reads come from the device.
 * A no-op without a disk tier.  Errors: -EINVAL.
 */
CASCADE_API int cascade_drop_page_cache(cascade *c);

/* ---- Content ids --------------------------------------------------------- */

#define CASCADE_CID_BYTES 16
#define CASCADE_CID_HEX 33 /* 32 hex digits + NUL */

/* A content id: the first 16 bytes of SHA-256 over a value's bytes. */
typedef struct cascade_cid {
  uint8_t b[CASCADE_CID_BYTES];
} cascade_cid;

/* Compute the content id of len bytes at data (OpenSSL SHA-256).
 * With "dedup" off the store does not hash values: the ids it reports
 * (views, cascade_key_info) are then all zeros unless the put supplied one
 * with CASCADE_PUT_HAVE_CID. */
CASCADE_API int cascade_content_id(const void *data, size_t len,
                                   cascade_cid *out);

/* Print a content id as 32 lower-case hex digits into hex[33]. */
CASCADE_API void cascade_cid_hex(const cascade_cid *cid,
                                 char hex[CASCADE_CID_HEX]);

/* ---- Put ------------------------------------------------------------------ */

/* Priority classes: every block of a lower class is evicted before any of a
 * higher class; the policy orders blocks inside a class.  NORMAL is 0 so that
 * zeroed options mean normal priority. */
enum cascade_priority {
  CASCADE_PRIO_LOW = -1,
  CASCADE_PRIO_NORMAL = 0,
  CASCADE_PRIO_HIGH = 1,
};

/* Flags for cascade_put_opts.flags. */
enum {
  /* The block is a protected prefix (system prompt, shared document):
   * the semantic policy evicts it last. */
  CASCADE_PUT_PREFIX = 1u << 0,
  /* opts.cid holds the value's content id already; skip hashing.  The caller
   * vouches for it: a wrong id makes deduplication share wrong bytes
   * (inside that namespace only). */
  CASCADE_PUT_HAVE_CID = 1u << 1,
  /* Only store if the key is absent (-EEXIST otherwise). */
  CASCADE_PUT_NX = 1u << 2,
  /* Only store if the key is present (-ENOENT otherwise). */
  CASCADE_PUT_XX = 1u << 3,
  /* Keep the key's current TTL when overwriting (Redis KEEPTTL). */
  CASCADE_PUT_KEEPTTL = 1u << 4,
};

/* Options of a put.  Zero-initialise, then set what you need. */
typedef struct cascade_put_opts {
  unsigned flags;     /* CASCADE_PUT_* */
  const void *parent; /* key of the previous block of the prefix chain,
                              or NULL; borrowed for the call */
  size_t parent_len;
  int priority;    /* enum cascade_priority (0 = NORMAL) */
  uint64_t ttl_ms; /* time to live in ms; 0 = no expiry */
  cascade_cid cid; /* with CASCADE_PUT_HAVE_CID */
} cascade_put_opts;

/*
 * Store a value under (ns, key), replacing any previous value.  The bytes
 * are copied; value is borrowed for the call.  opts may be NULL.
 * Errors: -EINVAL (bad key/ns/opts), -EFBIG (vlen > max_value or larger
 * than the tier), -ENOSPC (no room even after eviction: everything else is
 * pinned), -EEXIST (NX and present), -ENOENT (XX and absent), -ENOMEM.
 * On error nothing is changed.
 */
CASCADE_API int cascade_put(cascade *c, const char *ns, const void *key,
                            size_t klen, const void *value, size_t vlen,
                            const cascade_put_opts *opts);

/* ---- Get ------------------------------------------------------------------ */

/*
 * Copy the value of (ns, key) into buf (cap bytes) and set *vlen to its
 * length.  buf may be NULL when cap is 0 (to learn the length); vlen must
 * not be NULL.  Errors: -ENOENT (absent or expired), -ENOBUFS (cap <
 * length; *vlen is set, nothing copied), -EINVAL.
 */
CASCADE_API int cascade_get(cascade *c, const char *ns, const void *key,
                            size_t klen, void *buf, size_t cap, size_t *vlen);

/*
 * A zero-copy, read-only view of a DRAM-resident value.  While held, the
 * block is pinned: never evicted, moved or reused.  Its bytes stay valid
 * and unchanged until cascade_view_release(), even if the key is deleted or
 * overwritten meanwhile.
 */
typedef struct cascade_view {
  const void *data; /* len bytes, read-only */
  size_t len;
  cascade_cid cid;          /* the value's content id */
  struct cascade_blk *blk_; /* private */
} cascade_view;

/*
 * Get a view of (ns, key).  Errors: -ENOENT, -EINVAL.  On success the view
 * must be released exactly once with cascade_view_release().
 */
CASCADE_API int cascade_get_view(cascade *c, const char *ns, const void *key,
                                 size_t klen, cascade_view *view);

/* Release a view obtained from cascade_get_view; view->data is then invalid.
 * Releasing a zeroed view is a no-op. */
CASCADE_API void cascade_view_release(cascade *c, cascade_view *view);

/* ---- Keys ------------------------------------------------------------------ */

/* 1 if (ns, key) is present (and not expired), 0 if not, <0 on error. */
CASCADE_API int cascade_exists(cascade *c, const char *ns, const void *key,
                               size_t klen);

/* Delete (ns, key).  Other keys sharing its content are unaffected.
 * Errors: -ENOENT, -EINVAL. */
CASCADE_API int cascade_delete(cascade *c, const char *ns, const void *key,
                               size_t klen);

/* Set the time to live of a key in ms from now; 0 removes any expiry.
 * Errors: -ENOENT, -EINVAL. */
CASCADE_API int cascade_set_ttl(cascade *c, const char *ns, const void *key,
                                size_t klen, uint64_t ttl_ms);

/* The number of keys in namespace ns (0 for a namespace never used),
 * expired keys not yet collected included.  Errors: -EINVAL. */
CASCADE_API int64_t cascade_ns_keys(cascade *c, const char *ns);

/* Delete every key of namespace ns; other namespaces are untouched.
 * Returns the number of keys deleted.  Errors: -EINVAL, -ENOMEM (nothing
 * deleted). */
CASCADE_API int64_t cascade_ns_flush(cascade *c, const char *ns);

/* Set a key's priority (enum cascade_priority).  Errors: -ENOENT, -EINVAL. */
CASCADE_API int cascade_set_priority(cascade *c, const char *ns,
                                     const void *key, size_t klen,
                                     int priority);

enum cascade_tier {
  CASCADE_TIER_GPU = 0,
  CASCADE_TIER_DRAM = 1,
  CASCADE_TIER_REMOTE = 2,
  CASCADE_TIER_DISK = 3,
  CASCADE_NTIERS = 4,
};

/* What cascade_key_info reports about one key.  (A struct tag, not a
 * typedef: the name is also the function's.) */
struct cascade_key_info {
  uint64_t vlen;   /* value length */
  cascade_cid cid; /* content id */
  int64_t ttl_ms;  /* ms left to live, -1 = no expiry */
  int priority;    /* the key's priority (its block is ranked by the
                              highest priority among the keys sharing it) */
  unsigned flags;  /* CASCADE_PUT_PREFIX if protected */
  int tier;        /* enum cascade_tier holding the value */
  uint32_t refs;   /* keys sharing this content (>= 1) */
  uint32_t pins;   /* views currently held on the content */
};

/* Describe (ns, key) without reading its value.  Errors: -ENOENT, -EINVAL. */
CASCADE_API int cascade_key_info(cascade *c, const char *ns, const void *key,
                                 size_t klen, struct cascade_key_info *info);

/* A key as a (pointer, length) pair, for the calls that take many. */
typedef struct cascade_key {
  const void *key;
  size_t len;
} cascade_key;

/*
 * How many of the leading keys of a prefix chain are present: returns k
 * such that keys[0..k-1] are all present and keys[k] is not (k == n if all
 * are).  One call per request, as an inference engine asks it.  Errors:
 * -EINVAL.
 */
CASCADE_API int cascade_match_prefix(cascade *c, const char *ns,
                                     const cascade_key *keys, size_t n);

/* ---- Batches ------------------------------------------------------------------ */

typedef struct cascade_put_item {
  const void *key;
  size_t klen;
  const void *value;
  size_t vlen;
  const cascade_put_opts *opts; /* may be NULL */
  int rc;                       /* out: as cascade_put would return */
} cascade_put_item;

/*
 * Put n items in one lock round.  Items are independent: a bad item gets
 * its own rc (as cascade_put would return) and the others are stored.
 * Returns the number of items stored (rc == 0), or, with nothing done,
 * -EINVAL (bad c, items or ns) or -ENOMEM.
 */
CASCADE_API int cascade_put_batch(cascade *c, const char *ns,
                                  cascade_put_item *items, size_t n);

typedef struct cascade_get_item {
  const void *key;
  size_t klen;
  void *buf;
  size_t cap;
  size_t vlen; /* out */
  int rc;      /* out: as cascade_get would return */
} cascade_get_item;

/*
 * Get n items, locking each index shard once for the whole batch (in chunks
 * of 64 keys).  Items are independent, each with its own rc.  Returns the
 * number of items copied (rc == 0), or -EINVAL (bad c, items or ns).
 */
CASCADE_API int cascade_get_batch(cascade *c, const char *ns,
                                  cascade_get_item *items, size_t n);

/*
 * Start bringing the blocks of keys that are on disk only up into DRAM, in
 * the background, and return at once.  A get of a block being brought up
 * waits for that read instead of reading it a second time.  Keys that are
 * missing, already in DRAM or already on their way are skipped.  Returns the
 * number of blocks queued (0 without a disk tier), or -EINVAL.
 */
CASCADE_API int cascade_prefetch(cascade *c, const char *ns,
                                 const cascade_key *keys, size_t n);

/* ---- Statistics ---------------------------------------------------------------- */

typedef struct cascade_tier_stats {
  int present;       /* 1 if this tier is configured */
  uint64_t blocks;   /* stored copies (after deduplication) */
  uint64_t bytes;    /* value bytes stored */
  uint64_t capacity; /* bytes */
  uint64_t hits, misses;
  uint64_t evictions;  /* blocks dropped to make room */
  uint64_t promotions; /* blocks moved up into this tier */
  uint64_t demotions;  /* blocks moved down out of this tier */
} cascade_tier_stats;

/* Latency percentiles in ns: p50, p90, p99, p999, max. */
typedef struct cascade_latency {
  uint64_t count;
  uint64_t p50, p90, p99, p999, max;
} cascade_latency;

/* Counters of a store.  (A struct tag, not a typedef: the name is also the
 * function's.) */
struct cascade_stats {
  cascade_tier_stats tier[CASCADE_NTIERS]; /* indexed by enum cascade_tier */
  uint64_t keys;                           /* live keys, all namespaces */
  uint64_t namespaces;
  uint64_t puts, gets, hits, misses, deletes;
  uint64_t expired;           /* keys removed because their TTL passed */
  uint64_t dedup_hits;        /* puts that found their content stored */
  uint64_t dedup_bytes_saved; /* bytes not stored thanks to dedup (now) */
  uint64_t views;             /* views currently held (not yet released) */
  uint64_t dram_free_bytes;
  uint64_t dram_largest_free;
  double dram_fragmentation; /* 1 - largest_free / free (0 = none) */
  int dram_hugepages;        /* 1 if the arena is on huge pages */
  char policy[16];           /* eviction policy name */
  /* disk tier (zero without one) */
  char disk_mode[24];        /* "direct+io_uring", "buffered+pwrite", ... */
  uint64_t disk_file_bytes;  /* size of the segment files */
  uint64_t disk_live_bytes;  /* bytes of records still needed */
  uint64_t disk_read_errors; /* reads that failed verification (missed) */
  uint64_t disk_write_errors;
  uint64_t disk_compactions; /* segment files reclaimed */
  uint64_t disk_recovered;   /* keys found on disk at open */
  cascade_latency get_latency, put_latency;
};

/* Fill *out with a snapshot of the store's counters.  Errors: -EINVAL. */
CASCADE_API int cascade_stats(cascade *c, struct cascade_stats *out);

/* ---- Shared memory ----------------------------------------------------------------- */

/*
 * The file descriptor of the DRAM arena (a memfd or an unlinked /dev/shm
 * file) and its size, so a daemon can pass it to local clients.  The fd is
 * owned by the store; do not close it.  A view's data lies at
 * (const char *)view->data - base, where base is the arena's mapping
 * returned in *base.  Errors: -EINVAL.
 */
CASCADE_API int cascade_arena(cascade *c, int *fd, size_t *size,
                              const void **base);

/*
 * The shared-memory index: a file (memfd) that says where each key of the
 * default namespace with a DRAM copy lies in the arena, kept current by
 * the store, so that a local client with both mapped read-only finds and
 * copies a value with no request at all (cascade_client_get_into).  The
 * format and the reader's protocol (a seqlock per slot) are in
 * src/core/shmidx.h.  Made on the first call; the fd is owned by the
 * store.  Errors: -EINVAL, -errno of memfd_create/ftruncate/mmap.
 */
CASCADE_API int cascade_shm_index(cascade *c, int *fd, size_t *size);

/*
 * Record uses of keys that were read without the store (through the
 * shared-memory index): each present key's block gets the access and hit
 * a get would have given it, so the eviction policy sees them.  Bad keys
 * are skipped.  Returns the number present, or -EINVAL.
 */
CASCADE_API int cascade_touch(cascade *c, const char *ns,
                              const cascade_key *keys, size_t n);

/* ---- Client of a local daemon (zero-copy) ---------------------------------------- */

/*
 * A connection to a cascaded on the same node, over its Unix socket, that
 * reads values in place: the daemon's DRAM arena is mapped read-only into
 * this process, and a get returns a lease on a block (its bytes in that
 * mapping, pinned in the daemon until released), or
 * cascade_client_get_into copies values found through the daemon's
 * shared-memory index with no request at all.  Puts go through a
 * staging area shared with the daemon; no value crosses the socket.  One
 * thread at a time per handle.  If the client dies, the daemon releases
 * its leases.
 */
typedef struct cascade_client cascade_client;

/* A value lent by the daemon: len bytes at data, read-only, valid until
 * cascade_client_release() or cascade_client_close(). */
typedef struct cascade_lease {
  const void *data;
  size_t len;
  uint64_t id_; /* private */
} cascade_lease;

/*
 * Connect to the daemon's Unix socket at path.  With a password, first
 * authenticate: into namespace ns (AUTH ns password), or with ns NULL into
 * the default namespace (requirepass).  The namespace of the connection
 * holds every key it names.  Errors: -EINVAL, -ENAMETOOLONG, -EACCES
 * (wrong password, or one needed), -ENOMEM, -EPROTO (not a cascaded, or one
 * without the shared-memory path), -errno of socket/connect/mmap.
 */
CASCADE_API int cascade_client_connect(const char *path, const char *ns,
                                       const char *password,
                                       cascade_client **out);

/* Close the connection; every lease still held is released.  NULL ok. */
CASCADE_API void cascade_client_close(cascade_client *cl);

/*
 * Lease the value of key.  On success *lease holds the bytes in place; it
 * must be released exactly once.  Errors: -ENOENT, -EINVAL, -EPIPE or
 * -ECONNRESET (connection lost), -EPROTO, -EREMOTEIO (the daemon refused:
 * cascade_client_error() has its message).
 */
CASCADE_API int cascade_client_get(cascade_client *cl, const void *key,
                                   size_t klen, cascade_lease *lease);

/*
 * Lease n values in one round trip.  leases[i] is set for each key found
 * (data NULL for a key that is absent).  Returns the number found, or an
 * error as cascade_client_get (then no lease is held).
 */
CASCADE_API int cascade_client_get_batch(cascade_client *cl,
                                         const cascade_key *keys, size_t n,
                                         cascade_lease *leases);

/*
 * Copy n values into the caller's buffers, as cascade_get_batch() would in
 * the daemon's store: items[i].rc is 0 (vlen bytes copied), -ENOENT, or
 * -ENOBUFS (vlen says how many bytes the value has).  A key of the default
 * namespace with a DRAM copy is found in the daemon's shared-memory index
 * and copied with no request at all; the others are leased, copied and
 * released in one round trip.  The uses read through the index are sent
 * to the daemon later (CASCADE.TOUCH), in batches, so that its eviction
 * policy sees them.  Returns the number copied, or an error as
 * cascade_client_get (-EINVAL for a bad item).
 */
CASCADE_API int cascade_client_get_into(cascade_client *cl,
                                        cascade_get_item *items, size_t n);

/* Release a lease (sent to the daemon with the next call); the lease is
 * zeroed.  A zeroed lease is a no-op. */
CASCADE_API void cascade_client_release(cascade_client *cl,
                                        cascade_lease *lease);

/*
 * Store a value, as cascade_put() would in the daemon's store (opts: PREFIX,
 * NX, XX, parent, priority, ttl_ms; KEEPTTL is not supported: -EINVAL;
 * HAVE_CID is ignored, the daemon hashes).  Errors: as cascade_put(), plus
 * the connection errors of cascade_client_get.
 */
CASCADE_API int cascade_client_put(cascade_client *cl, const void *key,
                                   size_t klen, const void *value, size_t vlen,
                                   const cascade_put_opts *opts);

/*
 * Store n values in as few round trips as the staging area allows (the
 * values of up to 32 MiB go together): each item gets its own rc, as
 * cascade_client_put would return.  Returns the number stored, or a
 * negative errno when the connection failed before any was (items' rc
 * say which were not stored).
 */
CASCADE_API int cascade_client_put_batch(cascade_client *cl,
                                         cascade_put_item *items, size_t n);

/* The daemon's last error message on this connection ("" if none).  Valid
 * until the next call on cl. */
CASCADE_API const char *cascade_client_error(const cascade_client *cl);

/* ---- Prefix-chained keys ------------------------------------------------------------ */

#define CASCADE_CHAIN_KEY_BYTES 32

/*
 * Deterministic prefix-chained block keys from token ids, the same in every
 * process and on every machine:
 *   key[-1] = seed (32 bytes) or 32 zero bytes if seed is NULL
 *   key[i]  = SHA-256( key[i-1] || tokens of block i as little-endian u32 )
 * Only full blocks get keys: the count is ntokens / tokens_per_block, and
 * at most max_keys are written to keys.  Returns the number of full
 * blocks (which may exceed max_keys), or -EINVAL.
 */
CASCADE_API int cascade_chain_keys(const uint32_t *tokens, size_t ntokens,
                                   size_t tokens_per_block, const uint8_t *seed,
                                   uint8_t (*keys)[CASCADE_CHAIN_KEY_BYTES],
                                   size_t max_keys);

#ifdef __cplusplus
}
#endif

#endif /* CASCADE_H */
