/*
 * internal.h - engine structures shared by the files of src/core.
 *
 * Objects
 *   cascade        the store: index shards, content table, DRAM tier,
 *                  disk tier (optional), per-class policies, TTL heap,
 *                  counters, the compactor and prefetch threads.
 *   ns_obj         an interned namespace name (created on first put, freed
 *                  at close).
 *   kent           a key: (namespace, key bytes) -> block, with its TTL,
 *                  priority and flags.  Lives in one index shard's table and
 *                  in its block's key list.
 *   cascade_blk    a stored block (one per distinct content per namespace
 *                  with dedup on): its DRAM extent and/or its VALUE record
 *                  on disk, content id, pins, the keys that share it, its
 *                  policy item, its prefix-chain parent.  A key whose block
 *                  is on disk has a KEY record there too (kent.kloc).
 *
 * Locking (order: mem_lock -> shard lock; never the other way)
 *   shard[i].lock  protects shard i's hash table, the kent fields read by
 *                  lookups (blk, expire, flags) and the shard's counters.
 *                  The hit path takes only this lock, and only briefly: it
 *                  pins the block, raises its access tick and unlocks before
 *                  copying.
 *   mem_lock       serialises every change of the key -> block mapping
 *                  (insert, overwrite, delete, expiry, eviction), the
 *                  allocator, the policies, the content table and the TTL
 *                  heap.  Taken by puts, deletes and setters, never by gets.
 *   blk->pins      atomic count of views and in-flight copies, with
 *                  BLK_DEAD set once the block has been removed.  Whoever
 *                  sees (DEAD, 0 pins) first - the remover, or the last
 *                  unpinner - frees the arena extent.
 *   blk->off       a reader pins, then loads off (both seq_cst); a
 *                  demotion stores BLK_OFF_NONE, then loads the pins: with
 *                  none it frees the extent at once, else it parks it in
 *                  blk->retired and sets BLK_RETIRED, and the unpinner that
 *                  clears that bit frees it.  A reader thus either copies
 *                  from an extent that stays allocated, or reads from disk.
 *   pf_lock        (leaf) the prefetch queue; load_cv wakes readers waiting
 *                  for a block a prefetch is bringing up (blk->loading).
 *   the disk tier  has its own lock (a leaf, src/tier/disk.h); compaction
 *                  and disk eviction run their callbacks under mem_lock.
 *
 * Invariants
 *   - A kent in a shard table points at a live block (not DEAD).
 *   - blk->refs == number of kents pointing at it; a live block has
 *     refs >= 1 (a block whose last key goes away is removed at once).
 *   - A block descriptor is freed when it is no longer live, its extent is
 *     freed, and nothing refers to it (drefs == 0: no child block points at
 *     it and no eviction holds it aside).
 */
#ifndef CASCADE_INTERNAL_H
#define CASCADE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "cascade.h"
#include "core/copy.h"
#include "core/oatab.h"
#include "policy/policy.h"
#include "tier/disk.h"
#include "tier/dram.h"

#define BLK_DEAD 0x80000000u
#define BLK_RETIRED 0x40000000u /* a demotion left an extent to free */
#define BLK_PINS 0x3fffffffu
/* blk->off of a block that is not in DRAM (a zero-length block in DRAM has
 * DRAM_OFF_EMPTY) */
#define BLK_OFF_NONE (UINT64_MAX - 1)
#define NCLASSES 3 /* priority classes LOW, NORMAL, HIGH */

#define CASCADE_CFG_STR 4096 /* bytes of a string setting, with its NUL */

struct cascade_config {
  uint64_t dram_capacity;
  int dram_hugepages;
  int dram_prefault;
  int dram_backing;
  uint64_t max_value;
  int dedup;
  char policy[16];
  uint32_t shards;
  int stats_latency;
  char disk_dir[CASCADE_CFG_STR]; /* "" = no disk tier */
  uint32_t disk_rank;
  uint64_t disk_capacity;
  uint64_t disk_segment_size;
  int disk_sync;  /* enum disk_sync */
  int disk_write; /* enum disk_write */
  uint32_t disk_write_after;
  uint32_t disk_promote_after;
  int disk_io; /* enum disk_io */
  uint32_t disk_queue_depth;
  uint32_t disk_write_buffer;
  uint32_t disk_compact_below; /* percent */
  uint32_t disk_stripe_count;
  uint64_t disk_stripe_size;
  uint32_t pool_threads; /* 0: auto (workpool.c) */
};

enum disk_write {
  DISK_WRITE_BACK = 0,
  DISK_WRITE_THROUGH,
  DISK_WRITE_SELECTIVE
};

/* Default-initialise a configuration. */
void config_defaults(struct cascade_config *cfg);

typedef struct ns_obj {
  struct ns_obj *next;
  uint32_t id;
  uint32_t len;
  uint64_t hash;
  char name[CASCADE_MAX_NS + 1];
  uint64_t nkeys; /* live keys (mem_lock) */
} ns_obj;

typedef struct kent {
  struct kent *bprev, *bnext; /* block's key list (mem_lock) */
  struct cascade_blk *blk;
  ns_obj *ns;
  uint64_t hash;
  uint64_t expire_ns; /* CLOCK_REALTIME ns; 0 = never */
  uint32_t tidx;      /* TTL heap slot or UINT32_MAX */
  int8_t prio;        /* enum cascade_priority */
  uint8_t flags;      /* CASCADE_PUT_PREFIX */
  disk_loc kloc;      /* its KEY record, or DISK_LOC_NONE */
  uint64_t kbytes;    /* that record's size */
  uint32_t pslot;     /* its shared-memory index slot, or UINT32_MAX */
  uint32_t klen;
  uint8_t key[];
} kent;

typedef struct cascade_blk {
  /* first cache line: everything the hit path touches */
  pol_item pi;           /* must stay first (container_of); atime */
  _Atomic uint64_t off;  /* arena offset (DRAM_OFF_EMPTY if empty),
                            BLK_OFF_NONE if not in DRAM (disk only) */
  uint64_t len;          /* value bytes */
  _Atomic uint32_t pins; /* count | BLK_DEAD | BLK_RETIRED */
  int cls;               /* policy class the item is in, -1 none */
  /* the rest: puts, removal, eviction (mem_lock) */
  dram_ext *ext;            /* NULL when not in DRAM */
  dram_ext *retired;        /* left by a demotion while pinned */
  _Atomic uint64_t dloc;    /* VALUE record on disk, DISK_LOC_NONE */
  uint64_t dbytes;          /* that record's size */
  _Atomic uint32_t dreads;  /* reads served from disk */
  _Atomic uint32_t loading; /* a prefetch is bringing it up */
  cascade_cid dcid;         /* identity on disk: cid, or a unique
                               synthetic id without dedup */
  cascade_cid cid;
  const ns_obj *ns;
  uint32_t nprefix;               /* keys with CASCADE_PUT_PREFIX */
  uint32_t nprio[NCLASSES];       /* keys per priority class */
  uint32_t drefs;                 /* live (1) + children pointing here
                                     + 1 while on an eviction aside list */
  kent *keys;                     /* key list head */
  struct cascade_blk *parent;     /* previous block of its prefix chain */
  struct cascade_blk *cache_next; /* descriptor cache link */
  struct cascade_blk *aside;      /* pinned victims set aside by eviction */
  /* live: published, not removed; in_dram: has a DRAM copy (ext may be
   * NULL for an empty value); in_ctab/in_dtab: registered in ctab/dtab */
  uint8_t live, in_ctab, ext_freed, has_cid, in_dtab, in_dram;
} __attribute__((aligned(64))) cascade_blk;

typedef struct shard {
  pthread_mutex_t lock;
  oat tab; /* key hash -> kent */
  uint64_t gets, hits, misses;
  char pad[64];
} shard;

/* Latency histogram: log-linear buckets, striped to spread contention. */
#define LAT_SUB_BITS 4
#define LAT_BUCKETS (64 << LAT_SUB_BITS)
#define LAT_STRIPES 8
typedef struct lat_hist {
  _Atomic uint64_t b[LAT_STRIPES][LAT_BUCKETS];
} lat_hist;

void lat_record(lat_hist *h, uint64_t ns);
void lat_summary(const lat_hist *h, cascade_latency *out);

struct cascade {
  struct cascade_config cfg;
  const struct policy_ops *pops;
  uint64_t seed; /* hash seed, random per store */
  shard *shards;
  uint32_t nshards;
  _Atomic uint64_t tick; /* access clock */

  pthread_mutex_t mem_lock;
  dram *dram;
  uint8_t *base;
  policy pol[NCLASSES];
  oat ctab;          /* (ns, cid) hash -> block, for dedup */
  disk *disk;        /* NULL without a disk tier */
  oat dtab;          /* (ns, dcid) hash -> block on disk */
  uint64_t syn_next; /* synthetic disk ids: seed ^ counter */
  pthread_t compactor;
  int compactor_on;
  int closing;   /* compactor stop flag (mem_lock) */
  int keep_disk; /* closing: removing keys from memory leaves their
                    records alone */
  int reclaiming; /* disk eviction under way (mem_lock) */
  uint64_t reclaim_kept; /* bytes it kept so far */
  uint64_t rng;          /* xorshift state for sampling (mem_lock) */
  pthread_cond_t compact_cv;
  /* prefetch: a queue of pinned blocks, one worker */
  pthread_mutex_t pf_lock;  /* leaf lock */
  pthread_cond_t pf_cv;     /* work queued, or stop */
  pthread_cond_t load_cv;   /* a block finished loading */
  struct cascade_blk **pfq; /* ring of cpf slots */
  size_t pf_head, npf, cpf;
  int pf_stop, pf_on;
  pthread_t pf_thread;
  kent **ttl; /* min-heap on expire_ns */
  size_t nttl, cttl;
  cascade_blk *blk_cache; /* recycled descriptors (via cache_next) */
  uint32_t nblk_cache;
  ns_obj *nslist;
  uint32_t nns;
  /* counters under mem_lock */
  uint64_t nkeys, nblocks, bytes, puts, deletes, expired, evictions, dedup_hits;
  /* nblocks/bytes: blocks in DRAM.  Disk tier: */
  uint64_t dblocks, dbytes_total, ddemotions, dpromotions, devictions,
      dwrite_fail, recovered;
  uint64_t dreclaims; /* segments freed by disk eviction */
  _Atomic uint64_t dhits, dmisses;
  uint64_t dedup_saved;   /* sum over live blocks of (refs-1)*len */
  _Atomic uint64_t views; /* views held */
  struct workpool *pool; /* NULL: batches are hashed and copied by their
                          caller alone */
  lat_hist *get_lat, *put_lat;
  /* the shared-memory index (shmidx.c; mem_lock), once asked for */
  struct shmidx_slot *pub_slots; /* NULL: none */
  void *pub_map;
  size_t pub_size;
  uint64_t pub_mask, pub_seed2;
  int pub_fd;
};

/* shmidx.c (mem_lock held; no-ops until cascade_shm_index is called) */
void pub_key(cascade *c, kent *k);   /* publish k as it is now */
void pub_unkey(cascade *c, kent *k); /* take k out */
void pub_blk(cascade *c, cascade_blk *b);       /* b entered DRAM */
void pub_blk_leave(cascade *c, cascade_blk *b); /* b leaves DRAM */
void pub_close(cascade *c);

/* hash.c */
void hash_sha256_cid(const void *data, size_t len, cascade_cid *out);

/* workpool.c: a batch's values hashed or copied on several threads */
enum work_op {
  WORK_HASH,     /* SHA-256 of src into *cid */
  WORK_COPY_IN,  /* src into the arena at dst (copy_stream) */
  WORK_COPY_OUT, /* the arena's src out to a caller's dst (copy_out) */
};
typedef struct work_job {
  enum work_op op;
  const void *src;
  size_t len;
  void *dst;
  cascade_cid *cid;
} work_job;
typedef struct workpool workpool;
int workpool_threads(uint32_t setting); /* threads for pool.threads */
/* threads <= 1: *out = NULL (no pool).  -ENOMEM. */
int workpool_open(int threads, workpool **out);
void workpool_close(workpool *p); /* NULL ok */
/* Do every job (p NULL, or the pool busy: in the calling thread). */
void workpool_run(workpool *p, work_job *jobs, size_t n);

/* time helpers */
uint64_t now_realtime_ns(void);
uint64_t now_mono_ns(void);

#endif /* CASCADE_INTERNAL_H */
