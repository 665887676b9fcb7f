/*
 * store.c - the engine: index, namespaces, deduplication, the DRAM tier's
 * eviction, TTLs and priorities, and the movement of blocks between DRAM
 * and the disk tier (src/tier/disk.c).  Structures and locking rules are in
 * internal.h; read that first.
 *
 * Put (cascade_put is a batch of one):
 *   0. no lock:   hash every value (SHA-256) unless a content id was given
 *                 or dedup is off; a batch of large values on the work
 *                 pool's threads too (workpool.c, pool.threads).
 *   1. mem_lock:  NX/XX checks; a value whose content is stored already is
 *                 attached to that block at once (no copy); otherwise an
 *                 extent is allocated, evicting as needed.  The new block is
 *                 invisible: not in the index, content table or policy.
 *   2. no lock:   copy the values into their extents (and, with
 *                 disk.write = through, append them to the disk tier).
 *   3. mem_lock:  re-check NX/XX (the lock was dropped); if another put
 *                 stored the same content meanwhile, drop ours and share
 *                 theirs; otherwise publish the block and point the key at
 *                 it (shard lock held only for the pointer switch).
 * Get: shard lock -> find key -> pin block, raise its access tick -> unlock
 *   -> copy (a batch's large values on the work pool's threads too) ->
 *   unpin.  No global lock, no allocation.
 * Eviction (mem_lock held): expired keys first, then the lowest priority
 *   class's policy victim; pinned victims are set aside and put back after.
 * Disk tier (when disk.dir is set):
 *   - demotion: a DRAM victim is written back (VALUE record from the arena,
 *     KEY records for its keys) unless disk.write = selective says it is
 *     too cold; a block already on disk just leaves DRAM.  Blocks on disk
 *     only keep their descriptor and keys, with blk->off = BLK_OFF_NONE.
 *   - reads of such a block go to disk (verified; a failure is a miss and
 *     drops the block); after disk.promote_after reads it is copied up.
 *     cascade_prefetch queues blocks for a worker thread that brings them
 *     up; readers of a block on its way wait for that read.
 *   - deletes and overwrites of keys with a KEY record append a tombstone,
 *     so a restart does not bring the old mapping back.
 *   - cascade_open scans the records and rebuilds keys and blocks (newest
 *     record per key and per content wins); cascade_flush and
 *     cascade_close write every DRAM-only block and make the log durable.
 *   - a compactor thread reclaims garbage in bounded steps; a full disk
 *     tier reclaims its oldest segment, the policy choosing what survives.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/random.h>
#include <time.h>
#include <xxhash.h>

#include "core/internal.h"

/* ---- time -------------------------------------------------------------- */

static uint64_t clock_ns(clockid_t id) {
  struct timespec ts;
  clock_gettime(id, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
uint64_t now_realtime_ns(void) { return clock_ns(CLOCK_REALTIME); }
uint64_t now_mono_ns(void) { return clock_ns(CLOCK_MONOTONIC); }

static int expired(const kent *k, uint64_t *now) {
  if (!k->expire_ns) return 0;
  if (!*now) *now = now_realtime_ns();
  return k->expire_ns <= *now;
}

/* ---- lookups ------------------------------------------------------------ */

/* A resolved (namespace, key) with its hash and shard. */
typedef struct lookup {
  const char *ns;
  size_t nslen;
  uint64_t nsh;
  const uint8_t *key;
  size_t klen;
  uint64_t h;
  shard *sh;
} lookup;

static int ns_resolve(const char *ns, const char **name, size_t *len) {
  if (!ns || !*ns) ns = "default";
  size_t n = strnlen(ns, CASCADE_MAX_NS + 1);
  if (n > CASCADE_MAX_NS) return -EINVAL;
  *name = ns;
  *len = n;
  return 0;
}

static void lk_key(cascade *c, lookup *lk, const void *key, size_t klen) {
  lk->key = key;
  lk->klen = klen;
  lk->h = XXH3_64bits_withSeed(key, klen, c->seed ^ lk->nsh);
  lk->sh = &c->shards[(lk->h >> 40) & (c->nshards - 1)];
}

static int lk_ns(cascade *c, lookup *lk, const char *ns) {
  int rc = ns_resolve(ns, &lk->ns, &lk->nslen);
  if (rc < 0) return rc;
  lk->nsh = XXH3_64bits_withSeed(lk->ns, lk->nslen, c->seed);
  return 0;
}

static int key_ok(const void *key, size_t klen) {
  return key && klen > 0 && klen <= CASCADE_MAX_KEY;
}

static int lk_init(cascade *c, lookup *lk, const char *ns, const void *key,
                   size_t klen) {
  if (!c || !key_ok(key, klen)) return -EINVAL;
  int rc = lk_ns(c, lk, ns);
  if (rc == 0) lk_key(c, lk, key, klen);
  return rc;
}

static int kent_is(const kent *k, const lookup *lk) {
  return k->hash == lk->h && k->klen == lk->klen && k->ns->len == lk->nslen &&
         memcmp(k->key, lk->key, lk->klen) == 0 &&
         memcmp(k->ns->name, lk->ns, lk->nslen) == 0;
}

/* shard lock held */
static kent *shard_find(const lookup *lk) {
  const oat *t = &lk->sh->tab;
  for (uint64_t i = oat_first(t, lk->h); t->s[i].p; i = oat_next(t, i))
    if (t->s[i].tag == lk->h && kent_is(t->s[i].p, lk)) return t->s[i].p;
  return NULL;
}

static shard *kent_shard(cascade *c, const kent *k) {
  return &c->shards[(k->hash >> 40) & (c->nshards - 1)];
}

/* ---- namespaces (mem_lock) ---------------------------------------------- */

static ns_obj *ns_intern(cascade *c, const lookup *lk) {
  for (ns_obj *n = c->nslist; n; n = n->next)
    if (n->len == lk->nslen && memcmp(n->name, lk->ns, lk->nslen) == 0)
      return n;
  ns_obj *n = calloc(1, sizeof *n);
  if (!n) return NULL;
  n->id = ++c->nns;
  n->len = (uint32_t)lk->nslen;
  n->hash = lk->nsh;
  memcpy(n->name, lk->ns, lk->nslen);
  n->next = c->nslist;
  c->nslist = n;
  return n;
}

/* ---- content table (mem_lock) ------------------------------------------- */

/* Tags are the hash of (namespace, content id); the table (oatab.h)
 * compares them in its slots, so looking up new content or removing a block
 * touches no block descriptor. */
static uint64_t ctab_tag(const ns_obj *ns, const cascade_cid *cid) {
  uint64_t h;
  memcpy(&h, cid->b, sizeof h);
  return h ^ ((uint64_t)ns->id * UINT64_C(0x9e3779b97f4a7c15));
}

static cascade_blk *ctab_find(cascade *c, const ns_obj *ns,
                              const cascade_cid *cid) {
  uint64_t tag = ctab_tag(ns, cid);
  const oat *t = &c->ctab;
  for (uint64_t i = oat_first(t, tag); t->s[i].p; i = oat_next(t, i)) {
    cascade_blk *b = t->s[i].p;
    if (t->s[i].tag == tag && b->ns == ns &&
        memcmp(b->cid.b, cid->b, CASCADE_CID_BYTES) == 0)
      return b;
  }
  return NULL;
}

/* Register b; if the table cannot grow, b is simply not registered (later
 * equal puts store their own copy). */
static void ctab_insert(cascade *c, cascade_blk *b) {
  if (oat_room(&c->ctab) < 0) return;
  oat_insert(&c->ctab, ctab_tag(b->ns, &b->cid), b);
  b->in_ctab = 1;
}

static void ctab_remove(cascade *c, cascade_blk *b) {
  oat_remove(&c->ctab, ctab_tag(b->ns, &b->cid), b);
  b->in_ctab = 0;
}

/* ---- disk tier: records of blocks and keys (mem_lock) -------------------- */

/* VALUE records whose content id is a synthetic identity, not a hash. */
#define DREC_SYNTHETIC 0x80

static cascade_blk *dtab_find(cascade *c, const ns_obj *ns,
                              const cascade_cid *dcid, disk_loc loc) {
  uint64_t tag = ctab_tag(ns, dcid);
  const oat *t = &c->dtab;
  for (uint64_t i = oat_first(t, tag); t->s[i].p; i = oat_next(t, i)) {
    cascade_blk *b = t->s[i].p;
    if (t->s[i].tag == tag && b->ns == ns &&
        memcmp(b->dcid.b, dcid->b, CASCADE_CID_BYTES) == 0 &&
        (loc == DISK_LOC_NONE || atomic_load(&b->dloc) == loc))
      return b;
  }
  return NULL;
}

/* A unique identity for content without a content id (dedup off): this
 * open's random seed and a counter. */
static void syn_id(cascade *c, cascade_cid *id) {
  uint64_t n = ++c->syn_next;
  memcpy(id->b, &c->seed, 8);
  memcpy(id->b + 8, &n, 8);
}

static void drec_ns(disk_rec *r, const ns_obj *ns) {
  r->ns = ns->name;
  r->nslen = ns->len;
}

/* b now has the VALUE record loc on disk. */
static void blk_set_disk(cascade *c, cascade_blk *b, disk_loc loc,
                         uint64_t nbytes) {
  atomic_store(&b->dloc, loc);
  b->dbytes = nbytes;
  if (oat_room(&c->dtab) == 0) {
    oat_insert(&c->dtab, ctab_tag(b->ns, &b->dcid), b);
    b->in_dtab = 1;
  }
  c->dblocks++;
  c->dbytes_total += b->len;
}

/* Drop b's copy on disk (the record becomes garbage for compaction). */
static void blk_disk_forget(cascade *c, cascade_blk *b) {
  disk_loc loc = atomic_load(&b->dloc);
  if (loc == DISK_LOC_NONE) return;
  if (b->in_dtab) oat_remove(&c->dtab, ctab_tag(b->ns, &b->dcid), b);
  b->in_dtab = 0;
  if (!c->keep_disk) disk_release(c->disk, loc, b->dbytes);
  atomic_store(&b->dloc, DISK_LOC_NONE);
  c->dblocks--;
  c->dbytes_total -= b->len;
}

/* Write k's KEY record if its block is on disk (replacing an older one),
 * so that the key is found again after a restart.  A failed write only
 * costs that: the key stays in memory. */
static void key_disk_write(cascade *c, kent *k) {
  cascade_blk *b = k->blk;
  if (!c->disk || c->keep_disk || atomic_load(&b->dloc) == DISK_LOC_NONE)
    return;
  disk_rec r = {.type = DISK_REC_KEY,
                .key = k->key,
                .klen = k->klen,
                .cid = b->dcid,
                .vlen = b->len,
                .expire_ns = k->expire_ns,
                .prio = k->prio,
                .kflags = k->flags};
  drec_ns(&r, k->ns);
  disk_loc loc;
  uint64_t nb;
  if (disk_append(c->disk, &r, NULL, &loc, &nb) < 0) {
    c->dwrite_fail++;
    return;
  }
  if (k->kloc != DISK_LOC_NONE) disk_release(c->disk, k->kloc, k->kbytes);
  k->kloc = loc;
  k->kbytes = nb;
}

/* k leaves its block: its KEY record becomes garbage, and a tombstone makes
 * sure a restart does not bring the old mapping back. */
static void key_disk_forget(cascade *c, kent *k) {
  if (k->kloc == DISK_LOC_NONE || c->keep_disk) return;
  disk_release(c->disk, k->kloc, k->kbytes);
  k->kloc = DISK_LOC_NONE;
  if (c->reclaiming) return; /* evicted: without its VALUE the KEY record
                                is dropped at restart anyway */
  disk_rec r = {.type = DISK_REC_DELETE, .key = k->key, .klen = k->klen};
  drec_ns(&r, k->ns);
  disk_loc loc;
  uint64_t nb;
  if (disk_append(c->disk, &r, NULL, &loc, &nb) < 0) c->dwrite_fail++;
}

static int64_t compact_locked(cascade *c, uint64_t budget);
static int disk_make_room(cascade *c);

/* b is in DRAM and not on disk: append its VALUE record from the arena and
 * its keys' KEY records.  On -ENOSPC one bounded compaction step is tried
 * before giving up. */
static int blk_write_disk(cascade *c, cascade_blk *b) {
  disk_rec r = {.type = DISK_REC_VALUE,
                .cid = b->dcid,
                .vlen = b->len,
                .kflags = b->has_cid ? 0 : DREC_SYNTHETIC};
  drec_ns(&r, b->ns);
  disk_loc loc;
  uint64_t nb;
  const void *v = b->len ? c->base + atomic_load(&b->off) : NULL;
  int rc = disk_append(c->disk, &r, v, &loc, &nb);
  /* full: first reclaim garbage, then evict from the disk tier (a few
   * segments at most: a block larger than what they free is not stored) */
  if (rc == -ENOSPC && compact_locked(c, UINT64_C(64) << 20) > 0)
    rc = disk_append(c->disk, &r, v, &loc, &nb);
  for (int tries = 0; rc == -ENOSPC && tries < 4 && disk_make_room(c); tries++)
    rc = disk_append(c->disk, &r, v, &loc, &nb);
  if (rc < 0) {
    c->dwrite_fail++;
    return rc;
  }
  blk_set_disk(c, b, loc, nb);
  for (kent *k = b->keys; k; k = k->bnext) key_disk_write(c, k);
  return 0;
}

/* b (live, in DRAM, on disk) leaves DRAM.  Readers that may still copy
 * from its extent hold pins: the extent is freed now if there are none,
 * else by the last of them (BLK_RETIRED).  The store of off and the load
 * of pins pair with pin-then-load-off in readers (both seq_cst): a reader
 * either is counted here or sees BLK_OFF_NONE. */
static void blk_leave_dram(cascade *c, cascade_blk *b) {
  pub_blk_leave(c, b); /* before its extent can be reused */
  if (pol_in(&b->pi)) policy_remove(&c->pol[b->cls], &b->pi);
  atomic_store_explicit(&b->off, BLK_OFF_NONE, memory_order_seq_cst);
  dram_ext *e = b->ext;
  b->ext = NULL;
  b->in_dram = 0;
  uint32_t p = atomic_load_explicit(&b->pins, memory_order_seq_cst);
  for (;;) {
    if ((p & BLK_PINS) == 0 || !e) {
      if (e) dram_free(c->dram, e);
      break;
    }
    b->retired = e;
    if (atomic_compare_exchange_weak_explicit(&b->pins, &p, p | BLK_RETIRED,
                                              memory_order_seq_cst,
                                              memory_order_seq_cst))
      break;
    b->retired = NULL;
  }
  atomic_store(&b->dreads, 0);
  c->nblocks--;
  c->bytes -= b->len;
}

/* ---- TTL heap (mem_lock) ------------------------------------------------ */

static void ttl_set(cascade *c, size_t i, kent *k) {
  c->ttl[i] = k;
  k->tidx = (uint32_t)i;
}

static void ttl_sift(cascade *c, size_t i) {
  kent *k = c->ttl[i];
  while (i > 0 && c->ttl[(i - 1) / 2]->expire_ns > k->expire_ns) {
    ttl_set(c, i, c->ttl[(i - 1) / 2]);
    i = (i - 1) / 2;
  }
  for (;;) {
    size_t l = 2 * i + 1, m = i;
    uint64_t mv = k->expire_ns;
    if (l < c->nttl && c->ttl[l]->expire_ns < mv)
      m = l, mv = c->ttl[l]->expire_ns;
    if (l + 1 < c->nttl && c->ttl[l + 1]->expire_ns < mv) m = l + 1;
    if (m == i) break;
    ttl_set(c, i, c->ttl[m]);
    i = m;
  }
  ttl_set(c, i, k);
}

static int ttl_reserve(cascade *c, size_t n) {
  if (n <= c->cttl) return 0;
  size_t nc = c->cttl ? c->cttl : 64;
  while (nc < n) nc *= 2;
  kent **nt = realloc(c->ttl, nc * sizeof *nt);
  if (!nt) return -ENOMEM;
  c->ttl = nt;
  c->cttl = nc;
  return 0;
}

static void ttl_del(cascade *c, kent *k) {
  if (k->tidx == UINT32_MAX) return;
  size_t i = k->tidx;
  k->tidx = UINT32_MAX;
  if (--c->nttl == i) return;
  ttl_set(c, i, c->ttl[c->nttl]);
  ttl_sift(c, i);
}

/* Put k in the heap (or re-order it) after its expire_ns changed. */
static int ttl_update(cascade *c, kent *k) {
  if (!k->expire_ns) {
    ttl_del(c, k);
    return 0;
  }
  if (k->tidx == UINT32_MAX) {
    if (ttl_reserve(c, c->nttl + 1) < 0) return -ENOMEM;
    ttl_set(c, c->nttl++, k);
  }
  ttl_sift(c, k->tidx);
  return 0;
}

/* ---- blocks (mem_lock) -------------------------------------------------- */

/* Block descriptors are recycled through a small cache (mem_lock), so a
 * steady stream of puts and evictions does not go through malloc. */
#define BLK_CACHE_MAX 4096

static cascade_blk *blk_new(cascade *c) {
  cascade_blk *b = c->blk_cache;
  if (b) {
    c->blk_cache = b->cache_next;
    c->nblk_cache--;
  } else if (!(b = aligned_alloc(64, sizeof *b))) { /* hit-path fields in
                                                      one cache line */
    return NULL;
  }
  memset(b, 0, sizeof *b);
  return b;
}

static void blk_release(cascade *c, cascade_blk *b) {
  if (c->nblk_cache < BLK_CACHE_MAX) {
    b->cache_next = c->blk_cache;
    c->blk_cache = b;
    c->nblk_cache++;
  } else {
    free(b);
  }
}

static void blk_maybe_free(cascade *c, cascade_blk *b) {
  if (b->ext_freed && b->drefs == 0 && !b->retired) blk_release(c, b);
}

static void blk_free_ext(cascade *c, cascade_blk *b) {
  if (b->ext) dram_free(c->dram, b->ext);
  b->ext = NULL;
  b->ext_freed = 1;
}

static void blk_put_dref(cascade *c, cascade_blk *b) {
  b->drefs--;
  blk_maybe_free(c, b);
}

/* The class of a block: the highest priority among its keys.  O(1): the
 * block counts its keys per class (a block may be shared by very many). */
static int blk_class(const cascade_blk *b) {
  for (int cls = NCLASSES - 1; cls > 0; cls--)
    if (b->nprio[cls]) return cls;
  return 0;
}

static int prio_class(int prio) { return prio - CASCADE_PRIO_LOW; }

/* Re-derive the policy attributes of a live block after its keys changed;
 * moves it between priority classes.  Blocks set aside by eviction are not
 * in any heap: they only get their class updated. */
static void blk_refresh(cascade *c, cascade_blk *b) {
  b->pi.protect = b->nprefix > 0;
  int cls = blk_class(b);
  if (!pol_in(&b->pi)) {
    b->cls = cls;
  } else if (cls != b->cls) {
    policy_remove(&c->pol[b->cls], &b->pi);
    b->cls = cls;
    policy_insert(&c->pol[cls], &b->pi); /* reserved: cannot fail */
  } else {
    policy_update(&c->pol[cls], &b->pi);
  }
}

static void blk_unparent(cascade *c, cascade_blk *b) {
  cascade_blk *p = b->parent;
  if (!p) return;
  b->parent = NULL;
  p->pi.nchildren--;
  if (p->live) blk_refresh(c, p);
  blk_put_dref(c, p);
}

/* Take a block out of everything once its last key is gone. */
static void blk_remove(cascade *c, cascade_blk *b) {
  if (b->in_ctab) ctab_remove(c, b);
  blk_disk_forget(c, b);
  if (pol_in(&b->pi)) policy_remove(&c->pol[b->cls], &b->pi);
  blk_unparent(c, b);
  if (b->in_dram) {
    c->nblocks--;
    c->bytes -= b->len;
  }
  b->in_dram = 0;
  b->live = 0;
  uint32_t old =
      atomic_fetch_or_explicit(&b->pins, BLK_DEAD, memory_order_seq_cst);
  if ((old & BLK_PINS) == 0) blk_free_ext(c, b);
  blk_put_dref(c, b);
}

/* Link k into b's key list; k->blk must already be b (set under the shard
 * lock by the caller). */
static void key_attach(cascade *c, kent *k, cascade_blk *b) {
  k->bprev = NULL;
  k->bnext = b->keys;
  if (b->keys) b->keys->bprev = k;
  b->keys = k;
  if (++b->pi.refs > 1) c->dedup_saved += b->len;
  if (k->flags & CASCADE_PUT_PREFIX) b->nprefix++;
  b->nprio[prio_class(k->prio)]++;
  blk_refresh(c, b);
  if (k->kloc == DISK_LOC_NONE) key_disk_write(c, k);
}

/* Change the flags and priority of a key attached to its block. */
/* Change the flags and priority of a key attached to its block; 1 if they
 * changed (the caller then rewrites the key's KEY record). */
static int key_set_attrs(cascade *c, kent *k, unsigned flags, int prio) {
  cascade_blk *b = k->blk;
  if (k->flags == (uint8_t)(flags & CASCADE_PUT_PREFIX) && k->prio == prio)
    return 0;
  b->nprefix -= (k->flags & CASCADE_PUT_PREFIX) != 0;
  b->nprio[prio_class(k->prio)]--;
  k->flags = (uint8_t)(flags & CASCADE_PUT_PREFIX);
  k->prio = (int8_t)prio;
  b->nprefix += (k->flags & CASCADE_PUT_PREFIX) != 0;
  b->nprio[prio_class(k->prio)]++;
  blk_refresh(c, b);
  return 1;
}

/* Unlink k from block b's key list (k->blk itself is left alone: readers
 * may be looking at it); removes b if k was its last key. */
static void key_detach(cascade *c, kent *k, cascade_blk *b) {
  pub_unkey(c, k); /* before b's extent can be freed */
  if (k->bprev)
    k->bprev->bnext = k->bnext;
  else
    b->keys = k->bnext;
  if (k->bnext) k->bnext->bprev = k->bprev;
  key_disk_forget(c, k);
  if (--b->pi.refs > 0) c->dedup_saved -= b->len;
  if (k->flags & CASCADE_PUT_PREFIX) b->nprefix--;
  b->nprio[prio_class(k->prio)]--;
  if (b->pi.refs == 0)
    blk_remove(c, b);
  else
    blk_refresh(c, b);
}

/* Remove a key entirely (delete, expiry, eviction). */
static void key_remove(cascade *c, kent *k) {
  shard *sh = kent_shard(c, k);
  pthread_mutex_lock(&sh->lock);
  oat_remove(&sh->tab, k->hash, k);
  pthread_mutex_unlock(&sh->lock);
  ttl_del(c, k);
  key_detach(c, k, k->blk);
  c->nkeys--;
  k->ns->nkeys--;
  free(k);
}

static void blk_evict(cascade *c, cascade_blk *b) {
  c->evictions++;
  /* the last key_remove removes the block itself */
  while (b->keys && b->keys->bnext) key_remove(c, b->keys);
  key_remove(c, b->keys);
}

/* DRAM must let go of b (unpinned): keep it on disk if it is there, or if
 * the write policy wants it written back.  0 if b is on disk now and out of
 * DRAM; -1 if it must be evicted instead. */
static int blk_demote(cascade *c, cascade_blk *b) {
  if (!c->disk) return -1;
  if (atomic_load(&b->dloc) == DISK_LOC_NONE) {
    if (c->cfg.disk_write == DISK_WRITE_SELECTIVE &&
        atomic_load_explicit(&b->pi.nhits, memory_order_relaxed) <
            c->cfg.disk_write_after)
      return -1;
    if (blk_write_disk(c, b) < 0) return -1;
  }
  blk_leave_dram(c, b);
  c->ddemotions++;
  return 0;
}

/* Remove up to max expired keys; returns how many. */
static int reap_expired(cascade *c, int max) {
  int n = 0;
  uint64_t now = 0;
  while (n < max && c->nttl > 0 && expired(c->ttl[0], &now)) {
    key_remove(c, c->ttl[0]);
    c->expired++;
    n++;
  }
  return n;
}

static uint32_t pin_count(const cascade_blk *b) {
  return atomic_load_explicit(&b->pins, memory_order_acquire) & BLK_PINS;
}

/* Free one unit of space: an expired key, else the best victim of the
 * lowest class.  Pinned victims go on *aside.  Returns 0 if nothing could
 * be freed. */
static int evict_one(cascade *c, cascade_blk **aside) {
  if (reap_expired(c, 1)) return 1;
  for (int cls = 0; cls < NCLASSES; cls++) {
    pol_item *it;
    while ((it = policy_victim(&c->pol[cls]))) {
      cascade_blk *b = (cascade_blk *)it;
      if (pin_count(b)) {
        /* the aside list holds a descriptor reference: the block may be
         * unpinned and removed before it is put back */
        policy_remove(&c->pol[cls], it);
        b->drefs++;
        b->aside = *aside;
        *aside = b;
        continue;
      }
      policy_evict(&c->pol[cls], it); /* ghost lists remember it */
      if (blk_demote(c, b) < 0) blk_evict(c, b);
      return 1;
    }
  }
  return 0;
}

static void put_back_aside(cascade *c, cascade_blk *aside) {
  while (aside) {
    cascade_blk *b = aside;
    aside = b->aside;
    b->aside = NULL;
    if (b->live) policy_insert(&c->pol[b->cls], &b->pi); /* reserved */
    blk_put_dref(c, b);
  }
}

/* The last unpinner of a removed block frees its extent (BLK_DEAD); the
 * last unpinner of a demoted one frees the extent the demotion left behind
 * (BLK_RETIRED: whoever clears the bit owns that extent). */
static void unpin(cascade *c, cascade_blk *b) {
  uint32_t old = atomic_fetch_sub_explicit(&b->pins, 1, memory_order_seq_cst);
  if ((old & BLK_PINS) != 1 || !(old & (BLK_DEAD | BLK_RETIRED))) return;
  uint32_t own = 0;
  if (old & BLK_RETIRED)
    own = atomic_fetch_and_explicit(&b->pins, ~BLK_RETIRED,
                                    memory_order_seq_cst) &
          BLK_RETIRED;
  if (!own && !(old & BLK_DEAD)) return;
  pthread_mutex_lock(&c->mem_lock);
  if (own && b->retired) {
    dram_free(c->dram, b->retired);
    b->retired = NULL;
  }
  if (old & BLK_DEAD) blk_free_ext(c, b);
  blk_maybe_free(c, b);
  pthread_mutex_unlock(&c->mem_lock);
}

/* Record a use of b: a new access tick (lock-free; see policy.h). */
static void touch(cascade *c, cascade_blk *b) {
  uint64_t t = atomic_fetch_add_explicit(&c->tick, 1, memory_order_relaxed);
  atomic_store_explicit(&b->pi.atime, t + 1, memory_order_relaxed);
}

/* A hit on b: a new access tick and one more hit (lock-free). */
static void hit(cascade *c, cascade_blk *b) {
  touch(c, b);
  uint32_t h = atomic_load_explicit(&b->pi.nhits, memory_order_relaxed);
  if (h != UINT32_MAX)
    atomic_store_explicit(&b->pi.nhits, h + 1, memory_order_relaxed);
}

/* shard lock held; the key points at a live block */
static void pin_and_touch(cascade *c, cascade_blk *b) {
  atomic_fetch_add_explicit(&b->pins, 1, memory_order_seq_cst);
  hit(c, b);
}

/* ---- disk tier: compaction and recovery ------------------------------------- */

/* The namespace object named like rec, or NULL (mem_lock). */
static ns_obj *ns_of_rec(cascade *c, const disk_rec *r) {
  for (ns_obj *n = c->nslist; n; n = n->next)
    if (n->len == r->nslen && memcmp(n->name, r->ns, r->nslen) == 0) return n;
  return NULL;
}

/* The key entry named by a KEY/DELETE record (mem_lock). */
static kent *kent_of_rec(cascade *c, const disk_rec *r) {
  char ns[CASCADE_MAX_NS + 1];
  if (r->nslen > CASCADE_MAX_NS) return NULL;
  memcpy(ns, r->ns, r->nslen);
  ns[r->nslen] = 0;
  lookup lk;
  if (lk_init(c, &lk, ns, r->key, r->klen) < 0) return NULL;
  pthread_mutex_lock(&lk.sh->lock);
  kent *k = shard_find(&lk);
  pthread_mutex_unlock(&lk.sh->lock);
  return k;
}

/* Compaction callbacks; mem_lock is held across the whole step. */
static int compact_is_live(void *ctx, const disk_rec *r, disk_loc loc) {
  cascade *c = ctx;
  ns_obj *ns = ns_of_rec(c, r);
  kent *k;
  switch (r->type) {
  case DISK_REC_VALUE:
    return ns && dtab_find(c, ns, &r->cid, loc) != NULL;
  case DISK_REC_KEY:
    return (k = kent_of_rec(c, r)) && k->kloc == loc;
  case DISK_REC_DELETE:
    /* needed until the key has a newer record (older KEY records of it
     * may sit in other segments) */
    return !((k = kent_of_rec(c, r)) && k->kloc != DISK_LOC_NONE);
  }
  return 0;
}

static void compact_moved(void *ctx, const disk_rec *r, disk_loc old,
                          disk_loc nloc, uint64_t nbytes) {
  cascade *c = ctx;
  ns_obj *ns = ns_of_rec(c, r);
  cascade_blk *b;
  kent *k;
  if (r->type == DISK_REC_VALUE && ns && (b = dtab_find(c, ns, &r->cid, old))) {
    atomic_store(&b->dloc, nloc);
    b->dbytes = nbytes;
  } else if (r->type == DISK_REC_KEY && (k = kent_of_rec(c, r)) &&
             k->kloc == old) {
    k->kloc = nloc;
    k->kbytes = nbytes;
  }
}

static int64_t compact_locked(cascade *c, uint64_t budget) {
  return disk_compact_step(c->disk, budget, compact_is_live, compact_moved, c);
}

/* ---- disk tier eviction --------------------------------------------------------
 *
 * When the disk tier is full (disk.capacity, or the file system), its
 * oldest segment is reclaimed as a whole (segment-granular FIFO, the way
 * log-structured flash caches evict: no random rewrites).  The configured
 * policy decides, record by record, what survives: a block that is also in
 * DRAM just loses its disk copy; a pinned or loading block is kept; a
 * block the policy ranks above the median of a random sample of other disk
 * blocks (same ordering as DRAM eviction: priority class, then the policy's
 * key) is moved to the head of the log, as long as what is kept stays under
 * half the segment; everything else is evicted from the store. */

#define RECLAIM_SAMPLE 8

/* The policy's rank of b: class first, then the policy key. */
static void blk_rank(const cascade *c, const cascade_blk *b, uint64_t r[3]) {
  uint64_t k[2];
  c->pops->key(&b->pi, k);
  r[0] = (uint64_t)(b->cls < 0 ? 0 : b->cls);
  r[1] = k[0];
  r[2] = k[1];
}

static int rank_cmp(const uint64_t a[3], const uint64_t b[3]) {
  for (int i = 0; i < 3; i++)
    if (a[i] != b[i]) return a[i] < b[i] ? -1 : 1;
  return 0;
}

/* Does the policy rank b above most of a random sample of disk blocks? */
static int policy_keeps(cascade *c, const cascade_blk *b) {
  const oat *t = &c->dtab;
  if (!t->n) return 0;
  uint64_t rb[3], rs[3];
  blk_rank(c, b, rb);
  int below = 0, seen = 0;
  /* RECLAIM_SAMPLE entries, each the first one at or after a random slot */
  for (int i = 0; i < RECLAIM_SAMPLE; i++) {
    c->rng ^= c->rng << 13; /* xorshift: any spread will do */
    c->rng ^= c->rng >> 7;
    c->rng ^= c->rng << 17;
    uint64_t j = c->rng & t->mask, left = t->mask + 1;
    while (left-- && (!t->s[j].p || t->s[j].p == b)) j = (j + 1) & t->mask;
    const cascade_blk *o = t->s[j].p;
    if (!o || o == b) break; /* b is alone */
    seen++;
    blk_rank(c, o, rs);
    below += rank_cmp(rs, rb) < 0;
  }
  return seen && below * 2 > seen;
}

static int reclaim_is_live(void *ctx, const disk_rec *r, disk_loc loc) {
  cascade *c = ctx;
  ns_obj *ns = ns_of_rec(c, r);
  kent *k;
  cascade_blk *b;
  switch (r->type) {
  case DISK_REC_VALUE:
    if (!ns || !(b = dtab_find(c, ns, &r->cid, loc))) return 0;
    if (pin_count(b) || atomic_load(&b->loading)) return 1;
    if (b->in_dram) { /* the copy in DRAM stays; written again if evicted */
      for (k = b->keys; k; k = k->bnext) key_disk_forget(c, k);
      blk_disk_forget(c, b);
      return 0;
    }
    if (c->reclaim_kept + b->dbytes <= c->cfg.disk_segment_size / 2 &&
        policy_keeps(c, b)) {
      c->reclaim_kept += b->dbytes;
      return 1;
    }
    c->devictions++;
    blk_evict(c, b); /* keys go, no tombstones (see keep_disk use) */
    return 0;
  case DISK_REC_KEY:
    /* live while its block keeps its disk copy */
    if (!(k = kent_of_rec(c, r)) || k->kloc != loc) return 0;
    if (atomic_load(&k->blk->dloc) != DISK_LOC_NONE) return 1;
    k->kloc = DISK_LOC_NONE;
    return 0;
  default:
    /* a tombstone in the oldest segment shadows nothing older */
    return 0;
  }
}

/* mem_lock held.  1 if a segment file was freed. */
static int disk_make_room(cascade *c) {
  int freed = 0;
  c->reclaim_kept = 0;
  c->reclaiming = 1;
  int64_t r = disk_reclaim_step(c->disk, UINT64_MAX, reclaim_is_live,
                                compact_moved, c, &freed);
  c->reclaiming = 0;
  c->dreclaims += freed;
  return r >= 0 && freed;
}

/* Background compaction: a bounded step (8 MiB moved at most, so puts wait
 * for mem_lock no longer than that takes) every 100 ms, sooner while there
 * is work. */
#define COMPACT_STEP_BYTES (UINT64_C(8) << 20)
static void *compactor_main(void *arg) {
  cascade *c = arg;
  pthread_mutex_lock(&c->mem_lock);
  while (!c->closing) {
    int64_t moved = compact_locked(c, COMPACT_STEP_BYTES);
    if (moved > 0) {
      /* let puts in between steps */
      pthread_mutex_unlock(&c->mem_lock);
      sched_yield();
      pthread_mutex_lock(&c->mem_lock);
      continue;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += 100000000;
    if (ts.tv_nsec >= 1000000000) ts.tv_sec++, ts.tv_nsec -= 1000000000;
    pthread_cond_timedwait(&c->compact_cv, &c->mem_lock, &ts);
  }
  pthread_mutex_unlock(&c->mem_lock);
  return NULL;
}

/* Recovery: the scan reports every record; they are gathered here, then
 * sorted so that, per content and per key, the newest record wins. */
typedef struct rrec {
  int type;
  ns_obj *ns;
  cascade_cid cid;
  uint64_t vlen, expire_ns, seq, nbytes;
  disk_loc loc;
  int8_t prio;
  uint8_t kflags;
  uint32_t klen;
  uint8_t *key;
  cascade_blk *blk; /* VALUE: the block made of it */
} rrec;

typedef struct rscan {
  cascade *c;
  rrec *v;
  size_t n, cap;
  int err;
} rscan;

static void recover_rec(void *ctx, const disk_rec *r, disk_loc loc,
                        uint64_t nbytes) {
  rscan *rs = ctx;
  if (rs->err) return;
  if (rs->n == rs->cap) {
    size_t nc = rs->cap ? rs->cap * 2 : 1024;
    rrec *v = realloc(rs->v, nc * sizeof *v);
    if (!v) {
      rs->err = -ENOMEM;
      return;
    }
    rs->v = v;
    rs->cap = nc;
  }
  char ns[CASCADE_MAX_NS + 1];
  lookup lk;
  if (r->nslen > CASCADE_MAX_NS) return;
  memcpy(ns, r->ns, r->nslen);
  ns[r->nslen] = 0;
  if (lk_ns(rs->c, &lk, ns) < 0) return;
  rrec *e = &rs->v[rs->n];
  memset(e, 0, sizeof *e);
  if (!(e->ns = ns_intern(rs->c, &lk)) ||
      (r->klen && !(e->key = malloc(r->klen)))) {
    rs->err = -ENOMEM;
    return;
  }
  if (r->klen) memcpy(e->key, r->key, r->klen);
  e->type = r->type;
  e->cid = r->cid;
  e->vlen = r->vlen;
  e->expire_ns = r->expire_ns;
  e->seq = r->seq;
  e->nbytes = nbytes;
  e->loc = loc;
  e->prio = r->prio;
  e->kflags = r->kflags;
  e->klen = r->klen;
  rs->n++;
}

/* VALUE records first, grouped by (ns, cid); then KEY/DELETE records grouped
 * by (ns, key); newest first within a group. */
static int rrec_cmp(const void *pa, const void *pb) {
  const rrec *a = pa, *b = pb;
  int ga = a->type != DISK_REC_VALUE, gb = b->type != DISK_REC_VALUE;
  if (ga != gb) return ga - gb;
  if (a->ns != b->ns) return a->ns->id < b->ns->id ? -1 : 1;
  int d;
  if (!ga) {
    if ((d = memcmp(a->cid.b, b->cid.b, CASCADE_CID_BYTES))) return d;
  } else {
    if (a->klen != b->klen) return a->klen < b->klen ? -1 : 1;
    if ((d = memcmp(a->key, b->key, a->klen))) return d;
  }
  return a->seq > b->seq ? -1 : a->seq < b->seq;
}

static int same_group(const rrec *a, const rrec *b) {
  if ((a->type == DISK_REC_VALUE) != (b->type == DISK_REC_VALUE) ||
      a->ns != b->ns)
    return 0;
  if (a->type == DISK_REC_VALUE)
    return memcmp(a->cid.b, b->cid.b, CASCADE_CID_BYTES) == 0;
  return a->klen == b->klen && memcmp(a->key, b->key, a->klen) == 0;
}

/* Rebuild the index from the records found by the scan (mem_lock held):
 * one disk-only block per newest VALUE record, one key per newest KEY
 * record whose content is there and whose TTL has not passed.  Everything
 * else is released as garbage, except tombstones still needed. */
static int recover(cascade *c, rscan *rs) {
  if (rs->n) qsort(rs->v, rs->n, sizeof *rs->v, rrec_cmp);
  uint64_t now = now_realtime_ns();
  int rc = 0;
  for (size_t i = 0; i < rs->n; i++) {
    rrec *e = &rs->v[i];
    int newest = i == 0 || !same_group(&rs->v[i - 1], e);
    if (e->type == DISK_REC_VALUE) {
      cascade_blk *b;
      if (!newest || rc || !(b = blk_new(c))) {
        if (newest && !rc) rc = -ENOMEM;
        disk_release(c->disk, e->loc, e->nbytes);
        continue;
      }
      atomic_store(&b->off, BLK_OFF_NONE);
      b->len = e->vlen;
      b->ns = e->ns;
      b->dcid = e->cid;
      b->has_cid = !(e->kflags & DREC_SYNTHETIC);
      if (b->has_cid) b->cid = e->cid;
      b->pi.id = ctab_tag(b->ns, &b->dcid);
      if (!b->pi.id) b->pi.id = 1;
      b->cls = -1;
      b->drefs = 1;
      b->live = 1;
      b->pi.hidx = POL_NOT_IN;
      blk_set_disk(c, b, e->loc, e->nbytes);
      if (c->cfg.dedup && b->has_cid) ctab_insert(c, b);
      e->blk = b;
      continue;
    }
    if (!newest || e->type == DISK_REC_DELETE) {
      /* an older record of a key; or a tombstone, kept (live) */
      if (!newest) disk_release(c->disk, e->loc, e->nbytes);
      continue;
    }
    cascade_blk *b = rc ? NULL : dtab_find(c, e->ns, &e->cid, DISK_LOC_NONE);
    kent *k = NULL;
    lookup lk = {0};
    char ns[CASCADE_MAX_NS + 1];
    memcpy(ns, e->ns->name, e->ns->len + 1);
    if (!b || (e->expire_ns && e->expire_ns <= now) || b->len != e->vlen ||
        lk_init(c, &lk, ns, e->key, e->klen) < 0 ||
        ttl_reserve(c, c->nkeys + 1) < 0 || oat_room(&lk.sh->tab) < 0 ||
        !(k = calloc(1, sizeof *k + e->klen))) {
      disk_release(c->disk, e->loc, e->nbytes);
      continue;
    }
    k->ns = e->ns;
    k->hash = lk.h;
    k->klen = e->klen;
    memcpy(k->key, e->key, e->klen);
    k->tidx = UINT32_MAX;
    k->pslot = UINT32_MAX;
    k->expire_ns = e->expire_ns;
    k->prio = e->prio;
    k->flags = e->kflags & CASCADE_PUT_PREFIX;
    k->kloc = e->loc;
    k->kbytes = e->nbytes;
    k->blk = b;
    pthread_mutex_lock(&lk.sh->lock);
    oat_insert(&lk.sh->tab, k->hash, k);
    pthread_mutex_unlock(&lk.sh->lock);
    key_attach(c, k, b);
    ttl_update(c, k);
    c->nkeys++;
    k->ns->nkeys++;
    c->recovered++;
  }
  /* content no key refers to any more */
  for (size_t i = 0; i < rs->n; i++) {
    rrec *e = &rs->v[i];
    if (e->blk && e->blk->pi.refs == 0) blk_remove(c, e->blk);
    free(e->key);
  }
  free(rs->v);
  return rc;
}

static void *prefetch_main(void *arg);

static int disk_start(cascade *c) {
  const struct cascade_config *g = &c->cfg;
  disk_opts o = {.dir = g->disk_dir,
                 .rank = g->disk_rank,
                 .segment_size = g->disk_segment_size,
                 .capacity = g->disk_capacity,
                 .sync = g->disk_sync,
                 .io = g->disk_io,
                 .queue_depth = g->disk_queue_depth,
                 .write_buffer = g->disk_write_buffer,
                 .compact_threshold = g->disk_compact_below / 100.0,
                 .stripe_count = g->disk_stripe_count,
                 .stripe_size = g->disk_stripe_size};
  if (oat_init(&c->dtab, 1024) < 0) return -ENOMEM;
  rscan rs = {.c = c};
  pthread_mutex_lock(&c->mem_lock);
  int rc = disk_open(&o, recover_rec, &rs, &c->disk);
  if (rc == 0) rc = rs.err;
  if (rc == 0) {
    rc = recover(c, &rs);
  } else {
    for (size_t i = 0; i < rs.n; i++) free(rs.v[i].key);
    free(rs.v);
  }
  pthread_mutex_unlock(&c->mem_lock);
  if (rc < 0) return rc;
  pthread_cond_init(&c->compact_cv, NULL);
  if (pthread_create(&c->compactor, NULL, compactor_main, c) != 0) {
    pthread_cond_destroy(&c->compact_cv);
    return -EAGAIN;
  }
  c->compactor_on = 1;
  if (pthread_create(&c->pf_thread, NULL, prefetch_main, c) != 0)
    return -EAGAIN;
  c->pf_on = 1;
  return 0;
}

/* Write every block only in DRAM to disk (mem_lock held).  A write that
 * finds the disk full reclaims space, which can re-order the heaps being
 * walked (evicting a block re-ranks its parent); only then is another
 * pass needed, and passes stop when one writes nothing. */
static int flush_locked(cascade *c) {
  int rc = 0;
  for (;;) {
    size_t todo = 0, wrote = 0;
    uint64_t reclaims = c->dreclaims;
    for (int cls = 0; cls < NCLASSES; cls++) {
      policy *p = &c->pol[cls];
      for (size_t i = 0; i < policy_size(p); i++) {
        cascade_blk *b = (cascade_blk *)policy_at(p, i);
        if (atomic_load(&b->dloc) != DISK_LOC_NONE) continue;
        todo++;
        int r = blk_write_disk(c, b);
        if (r == 0)
          wrote++;
        else if (!rc)
          rc = r;
      }
    }
    if (!todo || !wrote || c->dreclaims == reclaims) return todo == wrote ? 0 : rc;
  }
}

int cascade_flush(cascade *c) {
  if (!c) return -EINVAL;
  if (!c->disk) return 0;
  pthread_mutex_lock(&c->mem_lock);
  int rc = flush_locked(c);
  pthread_mutex_unlock(&c->mem_lock);
  int r = disk_flush(c->disk);
  return rc ? rc : r;
}

int cascade_drop_page_cache(cascade *c) {
  if (!c) return -EINVAL;
  if (c->disk) disk_drop_cache(c->disk);
  return 0;
}

/* ---- open / close ---------------------------------------------------------- */

int cascade_open(const cascade_config *cfg, cascade **out) {
  if (!out) return -EINVAL;
  *out = NULL;
  cascade *c = calloc(1, sizeof *c);
  if (!c) return -ENOMEM;
  if (cfg)
    c->cfg = *cfg;
  else
    config_defaults(&c->cfg);
  c->pops = policy_find(c->cfg.policy);
  if (!c->pops) {
    free(c);
    return -EINVAL;
  }
  if (getrandom(&c->seed, sizeof c->seed, GRND_NONBLOCK) != sizeof c->seed)
    c->seed = now_mono_ns() ^ (uint64_t)(uintptr_t)c;
  c->rng = c->seed | 1;
  c->pub_fd = -1;
  pthread_mutex_init(&c->mem_lock, NULL);
  pthread_mutex_init(&c->pf_lock, NULL);
  pthread_cond_init(&c->pf_cv, NULL);
  pthread_cond_init(&c->load_cv, NULL);
  for (int i = 0; i < NCLASSES; i++) policy_init(&c->pol[i], c->pops);
  int rc = -ENOMEM;
  c->nshards = c->cfg.shards;
  c->shards = calloc(c->nshards, sizeof *c->shards);
  if (!c->shards) goto fail;
  for (uint32_t i = 0; i < c->nshards; i++) {
    shard *sh = &c->shards[i];
    pthread_mutex_init(&sh->lock, NULL);
    if (oat_init(&sh->tab, 64) < 0) goto fail;
  }
  if (oat_init(&c->ctab, 1024) < 0) goto fail;
  if (c->cfg.stats_latency) {
    c->get_lat = calloc(1, sizeof *c->get_lat);
    c->put_lat = calloc(1, sizeof *c->put_lat);
    if (!c->get_lat || !c->put_lat) goto fail;
  }
  dram_opts dopt = {.capacity = c->cfg.dram_capacity,
                    .hugepages = c->cfg.dram_hugepages,
                    .prefault = c->cfg.dram_prefault,
                    .backing = c->cfg.dram_backing};
  rc = dram_open(&dopt, &c->dram);
  if (rc < 0) goto fail;
  c->base = dram_base(c->dram);
  if ((rc = workpool_open(workpool_threads(c->cfg.pool_threads), &c->pool)) <
      0)
    goto fail;
  if (c->cfg.disk_dir[0] && (rc = disk_start(c)) < 0) goto fail;
  *out = c;
  return 0;
fail:
  cascade_close(c);
  return rc;
}

void cascade_close(cascade *c) {
  if (!c) return;
  if (c->pf_on) { /* queued prefetches are dropped, not read */
    pthread_mutex_lock(&c->pf_lock);
    c->pf_stop = 1;
    pthread_cond_signal(&c->pf_cv);
    pthread_mutex_unlock(&c->pf_lock);
    pthread_join(c->pf_thread, NULL);
  }
  if (c->compactor_on) {
    pthread_mutex_lock(&c->mem_lock);
    c->closing = 1;
    pthread_cond_signal(&c->compact_cv);
    pthread_mutex_unlock(&c->mem_lock);
    pthread_join(c->compactor, NULL);
    pthread_cond_destroy(&c->compact_cv);
  }
  if (c->disk) {
    /* a clean close keeps everything: DRAM-only blocks are written (the
     * error, if any, cannot be reported: cascade_flush() first can) */
    pthread_mutex_lock(&c->mem_lock);
    (void)flush_locked(c);
    c->keep_disk = 1;
    pthread_mutex_unlock(&c->mem_lock);
  }
  pthread_mutex_lock(&c->mem_lock);
  pub_close(c); /* clients keep their mapping; it no longer changes */
  pthread_mutex_unlock(&c->mem_lock);
  if (c->shards) {
    pthread_mutex_lock(&c->mem_lock);
    for (uint32_t i = 0; i < c->nshards; i++) {
      shard *sh = &c->shards[i];
      /* removal shifts entries, possibly into slots already passed */
      while (sh->tab.n)
        for (uint64_t j = 0; j <= sh->tab.mask; j++)
          while (sh->tab.s[j].p) key_remove(c, sh->tab.s[j].p);
    }
    pthread_mutex_unlock(&c->mem_lock);
    for (uint32_t i = 0; i < c->nshards; i++) {
      oat_free(&c->shards[i].tab);
      pthread_mutex_destroy(&c->shards[i].lock);
    }
    free(c->shards);
  }
  for (int i = 0; i < NCLASSES; i++) policy_fini(&c->pol[i]);
  while (c->blk_cache) {
    cascade_blk *b = c->blk_cache;
    c->blk_cache = b->cache_next;
    free(b);
  }
  oat_free(&c->ctab);
  oat_free(&c->dtab);
  (void)disk_close(c->disk);
  free(c->ttl);
  while (c->nslist) {
    ns_obj *n = c->nslist;
    c->nslist = n->next;
    free(n);
  }
  free(c->get_lat);
  free(c->put_lat);
  workpool_close(c->pool);
  dram_close(c->dram);
  pthread_mutex_destroy(&c->mem_lock);
  pthread_mutex_destroy(&c->pf_lock);
  pthread_cond_destroy(&c->pf_cv);
  pthread_cond_destroy(&c->load_cv);
  free(c->pfq);
  free(c);
}

int cascade_arena(cascade *c, int *fd, size_t *size, const void **base) {
  if (!c) return -EINVAL;
  if (fd) *fd = dram_fd(c->dram);
  if (size) *size = (size_t)dram_capacity(c->dram);
  if (base) *base = c->base;
  return 0;
}

/* ---- put --------------------------------------------------------------------- */

enum { PS_SKIP = 0, PS_NEW, PS_DONE };

/* Per-item state of a put batch. */
typedef struct put_state {
  lookup lk;
  cascade_cid cid;
  cascade_blk *blk; /* PS_NEW: the unpublished block */
  kent *spare;      /* pre-allocated key entry */
  disk_loc dloc;    /* write-through: its VALUE record */
  uint64_t dbytes;
  uint8_t state, has_cid;
} put_state;

static const cascade_put_opts default_opts;

static int opts_ok(const cascade_put_opts *o) {
  if (o->priority < CASCADE_PRIO_LOW || o->priority > CASCADE_PRIO_HIGH)
    return 0;
  if (o->parent && (o->parent_len == 0 || o->parent_len > CASCADE_MAX_KEY))
    return 0;
  if (!o->parent && o->parent_len) return 0;
  if ((o->flags & CASCADE_PUT_NX) && (o->flags & CASCADE_PUT_XX)) return 0;
  if (o->flags &
      ~(unsigned)(CASCADE_PUT_PREFIX | CASCADE_PUT_HAVE_CID | CASCADE_PUT_NX |
                  CASCADE_PUT_XX | CASCADE_PUT_KEEPTTL))
    return 0;
  if (o->ttl_ms > UINT64_C(1) << 50) return 0;
  return 1;
}

/* mem_lock held: -EEXIST / -ENOENT if NX / XX forbid the put. */
static int put_cond(const lookup *lk, const cascade_put_opts *o) {
  if (!(o->flags & (CASCADE_PUT_NX | CASCADE_PUT_XX))) return 0;
  pthread_mutex_lock(&lk->sh->lock);
  kent *k = shard_find(lk);
  uint64_t now = 0;
  int present = k && !expired(k, &now);
  pthread_mutex_unlock(&lk->sh->lock);
  if ((o->flags & CASCADE_PUT_NX) && present) return -EEXIST;
  if ((o->flags & CASCADE_PUT_XX) && !present) return -ENOENT;
  return 0;
}

/* mem_lock held: the live block holding (ns, key), or NULL. */
static cascade_blk *find_blk(cascade *c, const lookup *ns_lk, const void *key,
                             size_t klen) {
  lookup lk = *ns_lk;
  lk_key(c, &lk, key, klen);
  pthread_mutex_lock(&lk.sh->lock);
  kent *k = shard_find(&lk);
  uint64_t now = 0;
  cascade_blk *b = k && !expired(k, &now) ? k->blk : NULL;
  pthread_mutex_unlock(&lk.sh->lock);
  return b;
}

/* mem_lock held: point (ns, key) at block b with the options' attributes.
 * ps->spare is consumed if the key is new.  -ENOMEM (nothing changed) if
 * the key is new and its index shard is full and cannot grow. */
static int key_set(cascade *c, put_state *ps, ns_obj *ns, cascade_blk *b,
                   const cascade_put_opts *o) {
  lookup *lk = &ps->lk;
  uint64_t now = 0; /* read the clock only if a TTL is involved */
  pthread_mutex_lock(&lk->sh->lock);
  kent *k = shard_find(lk);
  int is_new = !k;
  cascade_blk *old = NULL;
  uint64_t old_exp = 0;
  if (is_new && oat_room(&lk->sh->tab) < 0) {
    pthread_mutex_unlock(&lk->sh->lock);
    return -ENOMEM;
  }
  if (is_new) {
    k = ps->spare;
    ps->spare = NULL;
    k->ns = ns;
    k->hash = lk->h;
    k->klen = (uint32_t)lk->klen;
    memcpy(k->key, lk->key, lk->klen);
    k->tidx = UINT32_MAX;
    k->pslot = UINT32_MAX;
    k->expire_ns = 0;
    k->kloc = DISK_LOC_NONE;
    k->kbytes = 0;
    oat_insert(&lk->sh->tab, k->hash, k);
  } else {
    old = k->blk;
    old_exp = k->expire_ns;
    if (expired(k, &now)) k->expire_ns = 0; /* a new life */
  }
  if (o->ttl_ms)
    k->expire_ns = (now ? now : now_realtime_ns()) + o->ttl_ms * 1000000u;
  else if (!(o->flags & CASCADE_PUT_KEEPTTL))
    k->expire_ns = 0;
  k->blk = b;
  pthread_mutex_unlock(&lk->sh->lock);

  if (old == b) { /* same content again: attributes only, and a new KEY
                    * record on disk only if they changed */
    if (key_set_attrs(c, k, o->flags, o->priority) || k->expire_ns != old_exp)
      key_disk_write(c, k);
  } else {
    if (old) key_detach(c, k, old); /* with the old attributes */
    k->flags = (uint8_t)(o->flags & CASCADE_PUT_PREFIX);
    k->prio = (int8_t)o->priority;
    key_attach(c, k, b);
  }
  if (is_new) {
    c->nkeys++;
    ns->nkeys++;
  }
  ttl_update(c, k); /* reserved: cannot fail */
  pub_key(c, k);
  return 0;
}

/* mem_lock held: link b to its parent's block, once. */
static void blk_set_parent(cascade *c, cascade_blk *b, const lookup *lk,
                           const cascade_put_opts *o) {
  if (!o->parent || b->parent) return;
  cascade_blk *p = find_blk(c, lk, o->parent, o->parent_len);
  if (!p || p == b) return;
  for (cascade_blk *a = p->parent; a; a = a->parent)
    if (a == b) return; /* would make a cycle */
  b->parent = p;
  p->drefs++;
  p->pi.nchildren++;
  blk_refresh(c, p);
}

static void put_lat_record(cascade *c, uint64_t t0, size_t n) {
  if (c->put_lat && n) {
    uint64_t per = (now_mono_ns() - t0) / n;
    for (size_t i = 0; i < n; i++) lat_record(c->put_lat, per);
  }
}

int cascade_put_batch(cascade *c, const char *ns, cascade_put_item *items,
                      size_t n) {
  if (!c || (!items && n)) return -EINVAL;
  uint64_t t0 = c->put_lat ? now_mono_ns() : 0;
  lookup nslk;
  int rc = lk_ns(c, &nslk, ns);
  if (rc < 0) return rc;
  put_state stack_ps[16];
  work_job stack_wj[16];
  put_state *ps = n <= 16 ? stack_ps : calloc(n, sizeof *ps);
  work_job *wj = n <= 16 ? stack_wj : malloc(n * sizeof *wj);
  size_t nwj = 0;
  if (!ps || !wj) {
    if (ps != stack_ps) free(ps);
    if (wj != stack_wj) free(wj);
    return -ENOMEM;
  }
  if (ps == stack_ps) memset(ps, 0, n * sizeof *ps);
  uint64_t cap = dram_capacity(c->dram);
  size_t nvalid = 0;

  /* 0: validate, hash, pre-allocate key entries (no lock) */
  for (size_t i = 0; i < n; i++) {
    cascade_put_item *it = &items[i];
    const cascade_put_opts *o = it->opts ? it->opts : &default_opts;
    if (!key_ok(it->key, it->klen) || (!it->value && it->vlen) || !opts_ok(o)) {
      it->rc = -EINVAL;
      continue;
    }
    if (it->vlen > c->cfg.max_value || it->vlen > cap) {
      it->rc = -EFBIG;
      continue;
    }
    if (!(ps[i].spare = malloc(sizeof(kent) + it->klen))) {
      it->rc = -ENOMEM;
      continue;
    }
    ps[i].lk = nslk;
    lk_key(c, &ps[i].lk, it->key, it->klen);
    if (o->flags & CASCADE_PUT_HAVE_CID) {
      ps[i].cid = o->cid;
      ps[i].has_cid = 1;
    } else if (c->cfg.dedup) {
      wj[nwj++] = (work_job){.op = WORK_HASH,
                             .src = it->value,
                             .len = it->vlen,
                             .cid = &ps[i].cid};
      ps[i].has_cid = 1;
    }
    ps[i].state = PS_NEW;
    it->rc = 0;
    nvalid++;
  }
  workpool_run(c->pool, wj, nwj); /* the batch's values, on several
                                     threads when they are large */

  /* 1: conditions, dedup, allocation (mem_lock) */
  pthread_mutex_lock(&c->mem_lock);
  ns_obj *nso = nvalid ? ns_intern(c, &nslk) : NULL;
  if (nvalid && (!nso || ttl_reserve(c, c->nkeys + nvalid) < 0 ||
                 policy_reserve(&c->pol[0], c->nblocks + nvalid) < 0 ||
                 policy_reserve(&c->pol[1], c->nblocks + nvalid) < 0 ||
                 policy_reserve(&c->pol[2], c->nblocks + nvalid) < 0)) {
    for (size_t i = 0; i < n; i++)
      if (ps[i].state == PS_NEW) ps[i].state = PS_SKIP, items[i].rc = -ENOMEM;
    nvalid = 0;
  }
  reap_expired(c, 16);
  cascade_blk *aside = NULL;
  for (size_t i = 0; i < n; i++) {
    if (ps[i].state != PS_NEW) continue;
    cascade_put_item *it = &items[i];
    const cascade_put_opts *o = it->opts ? it->opts : &default_opts;
    if ((rc = put_cond(&ps[i].lk, o)) < 0) {
      it->rc = rc;
      ps[i].state = PS_SKIP;
      continue;
    }
    cascade_blk *b = NULL;
    if (c->cfg.dedup && ps[i].has_cid) b = ctab_find(c, nso, &ps[i].cid);
    if (b) { /* stored already: share it, no copy; a put is a use */
      touch(c, b);
      if ((rc = key_set(c, &ps[i], nso, b, o)) < 0) {
        it->rc = rc;
        ps[i].state = PS_SKIP;
        continue;
      }
      blk_set_parent(c, b, &nslk, o);
      c->dedup_hits++;
      c->puts++;
      ps[i].state = PS_DONE;
      continue;
    }
    b = blk_new(c);
    if (!b) {
      it->rc = -ENOMEM;
      ps[i].state = PS_SKIP;
      continue;
    }
    uint64_t off = 0;
    for (;;) {
      rc = dram_alloc(c->dram, it->vlen, &b->ext, &off);
      if (rc != -ENOSPC || !evict_one(c, &aside)) break;
    }
    atomic_store_explicit(&b->off, off, memory_order_relaxed);
    b->in_dram = 1;
    if (rc < 0) {
      blk_release(c, b);
      it->rc = rc;
      ps[i].state = PS_SKIP;
      continue;
    }
    b->len = it->vlen;
    b->ns = nso;
    b->cid = ps[i].cid;
    b->has_cid = ps[i].has_cid;
    if (b->has_cid)
      b->dcid = b->cid;
    else
      syn_id(c, &b->dcid);
    /* identity for ghost lists: the content, or without a content id the
     * key (a synthetic disk id changes on every put) */
    b->pi.id = b->has_cid ? ctab_tag(nso, &b->cid) : ps[i].lk.h;
    if (!b->pi.id) b->pi.id = 1;
    atomic_store_explicit(&b->dloc, DISK_LOC_NONE, memory_order_relaxed);
    b->cls = -1;
    b->drefs = 1;
    b->pi.hidx = POL_NOT_IN;
    ps[i].blk = b;
  }
  put_back_aside(c, aside);
  pthread_mutex_unlock(&c->mem_lock);

  /* 2: copy values into the arena, and with disk.write = through to the
   * disk tier (no lock of ours; the disk tier has its own) */
  nwj = 0;
  for (size_t i = 0; i < n; i++)
    if (ps[i].state == PS_NEW && items[i].vlen)
      wj[nwj++] = (work_job){
          .op = WORK_COPY_IN,
          .src = items[i].value,
          .len = items[i].vlen,
          .dst = c->base +
                 atomic_load_explicit(&ps[i].blk->off, memory_order_relaxed)};
  workpool_run(c->pool, wj, nwj);
  if (wj != stack_wj) free(wj);
  int through = c->disk && c->cfg.disk_write == DISK_WRITE_THROUGH;
  for (size_t i = 0; i < n && through; i++) {
    if (ps[i].state != PS_NEW) continue;
    cascade_blk *b = ps[i].blk;
    disk_rec r = {.type = DISK_REC_VALUE,
                  .cid = b->dcid,
                  .vlen = b->len,
                  .kflags = b->has_cid ? 0 : DREC_SYNTHETIC};
    drec_ns(&r, nso);
    if (disk_append(c->disk, &r, items[i].value, &ps[i].dloc, &ps[i].dbytes) <
        0)
      ps[i].dloc = DISK_LOC_NONE; /* written back on eviction instead */
  }

  /* 3: publish (mem_lock) */
  int stored = 0;
  pthread_mutex_lock(&c->mem_lock);
  for (size_t i = 0; i < n; i++) {
    cascade_put_item *it = &items[i];
    if (ps[i].state == PS_NEW) {
      const cascade_put_opts *o = it->opts ? it->opts : &default_opts;
      cascade_blk *b = ps[i].blk;
      cascade_blk *dup = NULL;
      if ((rc = put_cond(&ps[i].lk, o)) < 0) {
        it->rc = rc;
      } else if (c->cfg.dedup && b->has_cid &&
                 (dup = ctab_find(c, nso, &b->cid))) {
        touch(c, dup); /* raced with an equal put */
        if ((rc = key_set(c, &ps[i], nso, dup, o)) < 0) {
          it->rc = rc;
        } else {
          blk_set_parent(c, dup, &nslk, o);
          c->dedup_hits++;
          c->puts++;
        }
      } else {
        touch(c, b);
        b->live = 1;
        if (ps[i].dloc != DISK_LOC_NONE) {
          blk_set_disk(c, b, ps[i].dloc, ps[i].dbytes);
          ps[i].dloc = DISK_LOC_NONE;
        }
        if ((rc = key_set(c, &ps[i], nso, b, o)) < 0) { /* sets b->cls */
          blk_disk_forget(c, b);
          b->live = 0;
          it->rc = rc;
        } else {
          c->nblocks++;
          c->bytes += b->len;
          if (c->cfg.dedup && b->has_cid) ctab_insert(c, b);
          policy_insert(&c->pol[b->cls], &b->pi); /* reserved */
          blk_set_parent(c, b, &nslk, o);
          c->puts++;
          b = NULL;
        }
      }
      if (b) { /* not published */
        dram_free(c->dram, b->ext);
        blk_release(c, b);
      }
      if (ps[i].dloc != DISK_LOC_NONE) /* its write-through was for nothing */
        disk_release(c->disk, ps[i].dloc, ps[i].dbytes);
    }
    if (it->rc == 0) stored++;
    free(ps[i].spare);
  }
  pthread_mutex_unlock(&c->mem_lock);
  if (ps != stack_ps) free(ps);
  put_lat_record(c, t0, (size_t)stored);
  return stored;
}

int cascade_put(cascade *c, const char *ns, const void *key, size_t klen,
                const void *value, size_t vlen, const cascade_put_opts *opts) {
  cascade_put_item it = {key, klen, value, vlen, opts, 0};
  int rc = cascade_put_batch(c, ns, &it, 1);
  return rc < 0 ? rc : it.rc;
}

/* ---- get --------------------------------------------------------------------- */

/* ---- reads from the disk tier ------------------------------------------------ */

static void disk_want(const cascade_blk *b, disk_rec *w) {
  memset(w, 0, sizeof *w);
  w->type = DISK_REC_VALUE;
  drec_ns(w, b->ns);
  w->cid = b->dcid;
  w->vlen = b->len;
}

/* Copy b (pinned, read from disk into data) up into DRAM, if it is still
 * live, out of DRAM, and DRAM has room (evicting as a put would). */
static void blk_promote(cascade *c, cascade_blk *b, const void *data) {
  pthread_mutex_lock(&c->mem_lock);
  if (b->live && !b->in_dram && !b->retired &&
      b->len <= dram_capacity(c->dram) &&
      policy_reserve(&c->pol[b->cls], policy_size(&c->pol[b->cls]) + 1) == 0) {
    cascade_blk *aside = NULL;
    dram_ext *e = NULL;
    uint64_t off = 0;
    int rc;
    for (;;) {
      rc = dram_alloc(c->dram, b->len, &e, &off);
      if (rc != -ENOSPC || !evict_one(c, &aside)) break;
    }
    if (rc == 0 && b->live && !b->in_dram) {
      if (b->len) copy_stream(c->base + off, data, b->len);
      b->ext = e;
      b->in_dram = 1;
      atomic_store_explicit(&b->off, off, memory_order_seq_cst);
      policy_insert(&c->pol[b->cls], &b->pi); /* reserved */
      pub_blk(c, b);
      touch(c, b);
      c->nblocks++;
      c->bytes += b->len;
      c->dpromotions++;
    } else if (rc == 0 && e) {
      dram_free(c->dram, e);
    }
    put_back_aside(c, aside);
  }
  pthread_mutex_unlock(&c->mem_lock);
}

/* b's record at loc failed verification: it is missing.  A block that is
 * nowhere else is evicted (its keys go); one also in DRAM loses only its
 * disk copy. */
static void blk_drop_bad(cascade *c, cascade_blk *b, disk_loc loc) {
  pthread_mutex_lock(&c->mem_lock);
  if (b->live && atomic_load(&b->dloc) == loc) {
    if (b->in_dram) {
      blk_disk_forget(c, b);
    } else {
      c->devictions++;
      blk_evict(c, b);
    }
  }
  pthread_mutex_unlock(&c->mem_lock);
}

/* After a read of b (pinned) from disk: rc is disk_read's result.  Counts
 * it, promotes a block read often enough, and turns failures into misses
 * (never bytes). */
static int disk_read_done(cascade *c, cascade_blk *b, disk_loc loc, int rc,
                          const void *data) {
  if (rc == 0) {
    atomic_fetch_add_explicit(&c->dhits, 1, memory_order_relaxed);
    uint32_t n = atomic_fetch_add(&b->dreads, 1) + 1;
    if (c->cfg.disk_promote_after && n > c->cfg.disk_promote_after)
      blk_promote(c, b, data);
    return 0;
  }
  atomic_fetch_add_explicit(&c->dmisses, 1, memory_order_relaxed);
  if (rc == -EBADMSG) {
    blk_drop_bad(c, b, loc);
  }
  return -ENOENT;
}

/* Pinned b is being brought up by a prefetch: wait for that read, then
 * return its offset in DRAM (BLK_OFF_NONE if it could not be placed). */
static uint64_t wait_loaded(cascade *c, cascade_blk *b) {
  if (atomic_load_explicit(&b->loading, memory_order_acquire)) {
    pthread_mutex_lock(&c->pf_lock);
    while (atomic_load_explicit(&b->loading, memory_order_acquire))
      pthread_cond_wait(&c->load_cv, &c->pf_lock);
    pthread_mutex_unlock(&c->pf_lock);
  }
  return atomic_load_explicit(&b->off, memory_order_seq_cst);
}

/* Read pinned b, known not to be in DRAM, from disk into buf. */
static int blk_read_disk(cascade *c, cascade_blk *b, void *buf) {
  uint64_t off = wait_loaded(c, b);
  if (off != BLK_OFF_NONE) {
    copy_out(buf, c->base + off, b->len);
    return 0;
  }
  disk_rec want;
  disk_want(b, &want);
  int rc = -ENOENT;
  disk_loc loc = DISK_LOC_NONE;
  for (int tries = 0; tries < 2 && rc == -ENOENT; tries++) {
    /* a compaction may move the record and delete its segment between our
     * load of dloc and the read: then the new location is loaded */
    loc = atomic_load(&b->dloc);
    if (loc == DISK_LOC_NONE) break;
    rc = disk_read(c->disk, loc, &want, buf, b->len);
  }
  return disk_read_done(c, b, loc, rc, buf);
}

/* Copy pinned b into buf (cap >= b->len) from whichever tier holds it. */
static int blk_read(cascade *c, cascade_blk *b, void *buf) {
  uint64_t off = atomic_load_explicit(&b->off, memory_order_seq_cst);
  if (off != BLK_OFF_NONE) {
    copy_out(buf, c->base + off, b->len);
    return 0;
  }
  return blk_read_disk(c, b, buf);
}

/* ---- prefetch ------------------------------------------------------------------ */

static void *prefetch_main(void *arg) {
  cascade *c = arg;
  void *tmp = NULL;
  size_t tcap = 0;
  pthread_mutex_lock(&c->pf_lock);
  for (;;) {
    while (!c->npf && !c->pf_stop) pthread_cond_wait(&c->pf_cv, &c->pf_lock);
    if (!c->npf) break; /* stopping, queue drained */
    cascade_blk *b = c->pfq[c->pf_head];
    c->pf_head = (c->pf_head + 1) % c->cpf;
    c->npf--;
    int stop = c->pf_stop;
    pthread_mutex_unlock(&c->pf_lock);
    if (!stop && b->len > tcap) {
      void *t = realloc(tmp, b->len);
      if (t) tmp = t, tcap = b->len;
    }
    if (!stop && b->len <= tcap) {
      disk_rec want;
      disk_want(b, &want);
      disk_loc loc = atomic_load(&b->dloc);
      int rc = loc == DISK_LOC_NONE
                   ? -ENOENT
                   : disk_read(c->disk, loc, &want, tmp, b->len);
      if (rc == 0) {
        atomic_fetch_add_explicit(&c->dhits, 1, memory_order_relaxed);
        blk_promote(c, b, tmp);
      } else if (rc == -EBADMSG) {
            blk_drop_bad(c, b, loc);
      }
    }
    pthread_mutex_lock(&c->pf_lock);
    atomic_store_explicit(&b->loading, 0, memory_order_release);
    pthread_cond_broadcast(&c->load_cv);
    pthread_mutex_unlock(&c->pf_lock);
    unpin(c, b);
    pthread_mutex_lock(&c->pf_lock);
  }
  pthread_mutex_unlock(&c->pf_lock);
  free(tmp);
  return NULL;
}

int cascade_prefetch(cascade *c, const char *ns, const cascade_key *keys,
                     size_t n) {
  if (!c || (!keys && n)) return -EINVAL;
  lookup lk;
  int rc = lk_ns(c, &lk, ns);
  if (rc < 0) return rc;
  for (size_t i = 0; i < n; i++)
    if (!key_ok(keys[i].key, keys[i].len)) return -EINVAL;
  if (!c->pf_on) return 0;
  int queued = 0;
  uint64_t now = 0;
  for (size_t i = 0; i < n; i++) {
    lk_key(c, &lk, keys[i].key, keys[i].len);
    pthread_mutex_lock(&lk.sh->lock);
    kent *k = shard_find(&lk);
    cascade_blk *b = k && !expired(k, &now) ? k->blk : NULL;
    if (b) atomic_fetch_add_explicit(&b->pins, 1, memory_order_seq_cst);
    pthread_mutex_unlock(&lk.sh->lock);
    if (!b) continue;
    uint32_t zero = 0;
    if (atomic_load_explicit(&b->off, memory_order_seq_cst) != BLK_OFF_NONE ||
        !atomic_compare_exchange_strong(&b->loading, &zero, 1)) {
      unpin(c, b);
      continue;
    }
    pthread_mutex_lock(&c->pf_lock);
    if (c->npf == c->cpf) {
      size_t nc = c->cpf ? c->cpf * 2 : 64;
      cascade_blk **q = malloc(nc * sizeof *q);
      if (!q) {
        pthread_mutex_unlock(&c->pf_lock);
        atomic_store(&b->loading, 0);
        unpin(c, b);
        break;
      }
      for (size_t j = 0; j < c->npf; j++)
        q[j] = c->pfq[(c->pf_head + j) % c->cpf];
      free(c->pfq);
      c->pfq = q;
      c->cpf = nc;
      c->pf_head = 0;
    }
    c->pfq[(c->pf_head + c->npf) % c->cpf] = b;
    c->npf++;
    pthread_cond_signal(&c->pf_cv);
    pthread_mutex_unlock(&c->pf_lock);
    queued++;
  }
  return queued;
}

/* shard lock held: the live block of lk, counted as a get (and a hit or
 * a miss), or NULL. */
static cascade_blk *lookup_get(const lookup *lk) {
  shard *sh = lk->sh;
  kent *k = shard_find(lk);
  uint64_t now = 0;
  sh->gets++;
  if (!k || expired(k, &now)) {
    sh->misses++;
    return NULL;
  }
  sh->hits++;
  return k->blk;
}

/* shard lock held: the live block of lk, pinned, or NULL. */
static cascade_blk *lookup_pin(cascade *c, const lookup *lk) {
  cascade_blk *b = lookup_get(lk);
  if (b) pin_and_touch(c, b);
  return b;
}

int cascade_get(cascade *c, const char *ns, const void *key, size_t klen,
                void *buf, size_t cap, size_t *vlen) {
  lookup lk;
  int rc = lk_init(c, &lk, ns, key, klen);
  if (rc < 0 || (!buf && cap) || !vlen) return rc < 0 ? rc : -EINVAL;
  uint64_t t0 = c->get_lat ? now_mono_ns() : 0;
  pthread_mutex_lock(&lk.sh->lock);
  cascade_blk *b = lookup_pin(c, &lk);
  pthread_mutex_unlock(&lk.sh->lock);
  if (!b) return -ENOENT;
  *vlen = b->len;
  if (b->len > cap)
    rc = -ENOBUFS;
  else
    rc = blk_read(c, b, buf);
  unpin(c, b);
  if (c->get_lat) lat_record(c->get_lat, now_mono_ns() - t0);
  return rc;
}

int cascade_get_view(cascade *c, const char *ns, const void *key, size_t klen,
                     cascade_view *view) {
  lookup lk;
  int rc = lk_init(c, &lk, ns, key, klen);
  if (rc < 0 || !view) return rc < 0 ? rc : -EINVAL;
  memset(view, 0, sizeof *view);
  uint64_t t0 = c->get_lat ? now_mono_ns() : 0;
  pthread_mutex_lock(&lk.sh->lock);
  cascade_blk *b = lookup_pin(c, &lk);
  pthread_mutex_unlock(&lk.sh->lock);
  if (!b) return -ENOENT;
  uint64_t off = atomic_load_explicit(&b->off, memory_order_seq_cst);
  if (off == BLK_OFF_NONE) {
    /* on disk only: a view needs the block in DRAM; bring it up */
    void *tmp = malloc(b->len ? b->len : 1);
    rc = tmp ? blk_read_disk(c, b, tmp) : -ENOMEM;
    if (rc == 0) blk_promote(c, b, tmp);
    free(tmp);
    off = atomic_load_explicit(&b->off, memory_order_seq_cst);
    if (rc == 0 && off == BLK_OFF_NONE) rc = -ENOSPC;
    if (rc < 0) {
      unpin(c, b);
      return rc;
    }
  }
  view->data = b->len ? c->base + off : (const void *)c->base;
  view->len = b->len;
  view->cid = b->cid;
  view->blk_ = b;
  atomic_fetch_add_explicit(&c->views, 1, memory_order_relaxed);
  if (c->get_lat) lat_record(c->get_lat, now_mono_ns() - t0);
  return 0;
}

void cascade_view_release(cascade *c, cascade_view *view) {
  if (!c || !view || !view->blk_) return;
  unpin(c, view->blk_);
  atomic_fetch_sub_explicit(&c->views, 1, memory_order_relaxed);
  memset(view, 0, sizeof *view);
}

typedef struct get_ref {
  uint32_t shard;
  uint32_t idx;
} get_ref;

static int get_ref_cmp(const void *a, const void *b) {
  const get_ref *x = a, *y = b;
  return x->shard != y->shard ? (x->shard < y->shard ? -1 : 1)
                              : (x->idx < y->idx ? -1 : x->idx > y->idx);
}

/* Up to GET_CHUNK items: sort by shard, lock each shard once, pin. */
#define GET_CHUNK 64
int cascade_get_batch(cascade *c, const char *ns, cascade_get_item *items,
                      size_t n) {
  if (!c || (!items && n)) return -EINVAL;
  lookup nslk;
  int rc = lk_ns(c, &nslk, ns);
  if (rc < 0) return rc;
  int hits = 0;
  for (size_t base = 0; base < n; base += GET_CHUNK) {
    size_t m = n - base < GET_CHUNK ? n - base : GET_CHUNK;
    uint64_t t0 = c->get_lat ? now_mono_ns() : 0;
    lookup lk[GET_CHUNK];
    get_ref ref[GET_CHUNK];
    cascade_blk *blk[GET_CHUNK];
    size_t nref = 0;
    for (size_t i = 0; i < m; i++) {
      cascade_get_item *it = &items[base + i];
      blk[i] = NULL;
      if (!key_ok(it->key, it->klen) || (!it->buf && it->cap)) {
        it->rc = -EINVAL;
        continue;
      }
      lk[i] = nslk;
      lk_key(c, &lk[i], it->key, it->klen);
      ref[nref++] = (get_ref){(uint32_t)(lk[i].sh - c->shards), (uint32_t)i};
    }
    qsort(ref, nref, sizeof *ref, get_ref_cmp);
    for (size_t r = 0; r < nref;) {
      shard *sh = &c->shards[ref[r].shard];
      pthread_mutex_lock(&sh->lock);
      for (; r < nref && &c->shards[ref[r].shard] == sh; r++)
        blk[ref[r].idx] = lookup_pin(c, &lk[ref[r].idx]);
      pthread_mutex_unlock(&sh->lock);
    }
    size_t got = 0, nd = 0, nwj = 0;
    disk_read_req dreq[GET_CHUNK];
    disk_rec dwant[GET_CHUNK];
    size_t didx[GET_CHUNK];
    work_job wj[GET_CHUNK];
    cascade_blk *wblk[GET_CHUNK];
    for (size_t r = 0; r < nref; r++) {
      size_t i = ref[r].idx;
      cascade_get_item *it = &items[base + i];
      cascade_blk *b = blk[i];
      if (!b) {
        it->rc = -ENOENT;
        continue;
      }
      got++;
      it->vlen = b->len;
      uint64_t off = atomic_load_explicit(&b->off, memory_order_seq_cst);
      if (b->len > it->cap) {
        it->rc = -ENOBUFS;
      } else if (off != BLK_OFF_NONE) { /* copied below, with the others */
        wj[nwj] = (work_job){.op = WORK_COPY_OUT,
                             .src = c->base + off,
                             .len = b->len,
                             .dst = it->buf};
        wblk[nwj++] = b;
        it->rc = 0;
        hits++;
        continue;
      } else if (atomic_load_explicit(&b->loading, memory_order_acquire)) {
        it->rc = blk_read_disk(c, b, it->buf); /* waits for the prefetch */
        hits += it->rc == 0;
      } else { /* from disk, below, all at once */
        disk_want(b, &dwant[nd]);
        dreq[nd] = (disk_read_req){atomic_load(&b->dloc), &dwant[nd], it->buf,
                                   b->len, 0};
        didx[nd++] = i;
        continue;
      }
      unpin(c, b);
    }
    workpool_run(c->pool, wj, nwj); /* on several threads when large */
    for (size_t w = 0; w < nwj; w++) unpin(c, wblk[w]);
    if (nd) disk_read_batch(c->disk, dreq, nd);
    for (size_t d = 0; d < nd; d++) {
      cascade_get_item *it = &items[base + didx[d]];
      cascade_blk *b = blk[didx[d]];
      int rc2 = dreq[d].loc == DISK_LOC_NONE ? -ENOENT : dreq[d].rc;
      if (rc2 == -ENOENT) /* moved by a compaction meanwhile: once more */
        rc2 = blk_read_disk(c, b, it->buf);
      else
        rc2 = disk_read_done(c, b, dreq[d].loc, rc2, it->buf);
      it->rc = rc2;
      if (rc2 == 0) hits++;
      unpin(c, b);
    }
    if (c->get_lat && got) {
      uint64_t per = (now_mono_ns() - t0) / got;
      for (size_t i = 0; i < got; i++) lat_record(c->get_lat, per);
    }
  }
  return hits;
}

/* ---- keys --------------------------------------------------------------------- */

int cascade_exists(cascade *c, const char *ns, const void *key, size_t klen) {
  lookup lk;
  int rc = lk_init(c, &lk, ns, key, klen);
  if (rc < 0) return rc;
  pthread_mutex_lock(&lk.sh->lock);
  kent *k = shard_find(&lk);
  uint64_t now = 0;
  int present = k && !expired(k, &now);
  pthread_mutex_unlock(&lk.sh->lock);
  return present;
}

int cascade_touch(cascade *c, const char *ns, const cascade_key *keys,
                  size_t n) {
  if (!c || (!keys && n)) return -EINVAL;
  lookup lk;
  int rc = lk_ns(c, &lk, ns);
  if (rc < 0) return rc;
  if (n > (size_t)INT32_MAX) n = INT32_MAX;
  int found = 0;
  for (size_t i = 0; i < n; i++) {
    if (!key_ok(keys[i].key, keys[i].len)) continue;
    lk_key(c, &lk, keys[i].key, keys[i].len);
    pthread_mutex_lock(&lk.sh->lock);
    cascade_blk *b = lookup_get(&lk); /* counted as a get; no pin: nothing
                                         is read */
    if (b) {
      hit(c, b);
      found++;
    }
    pthread_mutex_unlock(&lk.sh->lock);
  }
  return found;
}

int cascade_match_prefix(cascade *c, const char *ns, const cascade_key *keys,
                         size_t n) {
  if (!c || (!keys && n)) return -EINVAL;
  lookup lk;
  int rc = lk_ns(c, &lk, ns);
  if (rc < 0) return rc;
  if (n > (size_t)INT32_MAX) n = INT32_MAX;
  for (size_t i = 0; i < n; i++)
    if (!key_ok(keys[i].key, keys[i].len)) return -EINVAL;
  uint64_t now = 0;
  for (size_t i = 0; i < n; i++) {
    lk_key(c, &lk, keys[i].key, keys[i].len);
    pthread_mutex_lock(&lk.sh->lock);
    kent *k = shard_find(&lk);
    int present = k && !expired(k, &now);
    pthread_mutex_unlock(&lk.sh->lock);
    if (!present) return (int)i;
  }
  return (int)n;
}

/* mem_lock held: the key entry of lk if present and not expired.  An expired
 * key found here is removed. */
static kent *find_live_locked(cascade *c, const lookup *lk) {
  pthread_mutex_lock(&lk->sh->lock);
  kent *k = shard_find(lk);
  uint64_t now = 0;
  int exp = k && expired(k, &now);
  pthread_mutex_unlock(&lk->sh->lock);
  if (exp) {
    key_remove(c, k);
    c->expired++;
    k = NULL;
  }
  return k;
}

int cascade_delete(cascade *c, const char *ns, const void *key, size_t klen) {
  lookup lk;
  int rc = lk_init(c, &lk, ns, key, klen);
  if (rc < 0) return rc;
  pthread_mutex_lock(&c->mem_lock);
  kent *k = find_live_locked(c, &lk);
  if (k) {
    key_remove(c, k);
    c->deletes++;
  }
  pthread_mutex_unlock(&c->mem_lock);
  return k ? 0 : -ENOENT;
}

/* The interned namespace named ns, or NULL if none was ever used
 * (mem_lock). */
static ns_obj *ns_lookup(cascade *c, const char *ns, int *rc) {
  lookup lk = {0};
  if ((*rc = c ? lk_ns(c, &lk, ns) : -EINVAL) < 0) return NULL;
  for (ns_obj *n = c->nslist; n; n = n->next)
    if (n->len == lk.nslen && memcmp(n->name, lk.ns, lk.nslen) == 0) return n;
  return NULL;
}

int64_t cascade_ns_keys(cascade *c, const char *ns) {
  int rc;
  if (!c) return -EINVAL;
  pthread_mutex_lock(&c->mem_lock);
  ns_obj *n = ns_lookup(c, ns, &rc);
  int64_t r = rc < 0 ? rc : n ? (int64_t)n->nkeys : 0;
  pthread_mutex_unlock(&c->mem_lock);
  return r;
}

int64_t cascade_ns_flush(cascade *c, const char *ns) {
  int rc;
  if (!c) return -EINVAL;
  pthread_mutex_lock(&c->mem_lock);
  ns_obj *n = ns_lookup(c, ns, &rc);
  if (rc < 0 || !n || n->nkeys == 0) {
    pthread_mutex_unlock(&c->mem_lock);
    return rc < 0 ? rc : 0;
  }
  /* collect first: removing from an open-addressed table shifts entries
   * back, under a walk it would skip some */
  kent **ks = malloc(n->nkeys * sizeof *ks);
  if (!ks) {
    pthread_mutex_unlock(&c->mem_lock);
    return -ENOMEM;
  }
  uint64_t nk = 0;
  for (uint32_t i = 0; i < c->nshards && nk < n->nkeys; i++) {
    shard *sh = &c->shards[i];
    pthread_mutex_lock(&sh->lock);
    for (uint64_t j = 0; j <= sh->tab.mask && nk < n->nkeys; j++) {
      kent *k = sh->tab.s[j].p;
      if (k && k->ns == n) ks[nk++] = k;
    }
    pthread_mutex_unlock(&sh->lock);
  }
  for (uint64_t i = 0; i < nk; i++) key_remove(c, ks[i]);
  c->deletes += nk;
  pthread_mutex_unlock(&c->mem_lock);
  free(ks);
  return (int64_t)nk;
}

int cascade_set_ttl(cascade *c, const char *ns, const void *key, size_t klen,
                    uint64_t ttl_ms) {
  lookup lk;
  int rc = lk_init(c, &lk, ns, key, klen);
  if (rc < 0) return rc;
  if (ttl_ms > UINT64_C(1) << 50) return -EINVAL;
  pthread_mutex_lock(&c->mem_lock);
  kent *k = find_live_locked(c, &lk);
  if (!k) {
    rc = -ENOENT;
  } else {
    uint64_t old = k->expire_ns;
    uint64_t nv = ttl_ms ? now_realtime_ns() + ttl_ms * 1000000u : 0;
    pthread_mutex_lock(&lk.sh->lock);
    k->expire_ns = nv;
    pthread_mutex_unlock(&lk.sh->lock);
    if ((rc = ttl_update(c, k)) < 0) {
      pthread_mutex_lock(&lk.sh->lock);
      k->expire_ns = old;
      pthread_mutex_unlock(&lk.sh->lock);
    } else {
      key_disk_write(c, k);
      pub_key(c, k);
    }
  }
  pthread_mutex_unlock(&c->mem_lock);
  return rc;
}

int cascade_set_priority(cascade *c, const char *ns, const void *key,
                         size_t klen, int priority) {
  lookup lk;
  int rc = lk_init(c, &lk, ns, key, klen);
  if (rc < 0) return rc;
  if (priority < CASCADE_PRIO_LOW || priority > CASCADE_PRIO_HIGH)
    return -EINVAL;
  pthread_mutex_lock(&c->mem_lock);
  kent *k = find_live_locked(c, &lk);
  if (k && key_set_attrs(c, k, k->flags, priority)) key_disk_write(c, k);
  pthread_mutex_unlock(&c->mem_lock);
  return k ? 0 : -ENOENT;
}

int cascade_key_info(cascade *c, const char *ns, const void *key, size_t klen,
                     struct cascade_key_info *info) {
  lookup lk;
  int rc = lk_init(c, &lk, ns, key, klen);
  if (rc < 0 || !info) return rc < 0 ? rc : -EINVAL;
  pthread_mutex_lock(&c->mem_lock);
  kent *k = find_live_locked(c, &lk);
  if (k) {
    const cascade_blk *b = k->blk;
    memset(info, 0, sizeof *info);
    info->vlen = b->len;
    info->cid = b->cid;
    if (k->expire_ns) {
      uint64_t now = now_realtime_ns();
      info->ttl_ms = k->expire_ns > now
                         ? (int64_t)((k->expire_ns - now + 999999) / 1000000)
                         : 0;
    } else {
      info->ttl_ms = -1;
    }
    info->priority = k->prio;
    info->flags = k->flags;
    info->tier = b->in_dram ? CASCADE_TIER_DRAM : CASCADE_TIER_DISK;
    info->refs = b->pi.refs;
    info->pins = pin_count(b);
  }
  pthread_mutex_unlock(&c->mem_lock);
  return k ? 0 : -ENOENT;
}

/* ---- stats --------------------------------------------------------------------- */

int cascade_stats(cascade *c, struct cascade_stats *out) {
  if (!c || !out) return -EINVAL;
  memset(out, 0, sizeof *out);
  uint64_t gets = 0, hits = 0, misses = 0;
  for (uint32_t i = 0; i < c->nshards; i++) {
    shard *sh = &c->shards[i];
    pthread_mutex_lock(&sh->lock);
    gets += sh->gets;
    hits += sh->hits;
    misses += sh->misses;
    pthread_mutex_unlock(&sh->lock);
  }
  dram_usage u;
  pthread_mutex_lock(&c->mem_lock);
  /* expired keys are reaped lazily; count only live ones */
  reap_expired(c, INT32_MAX);
  dram_get_usage(c->dram, &u);
  uint64_t dhits = atomic_load(&c->dhits), dmisses = atomic_load(&c->dmisses);
  cascade_tier_stats *t = &out->tier[CASCADE_TIER_DRAM];
  t->present = 1;
  t->blocks = c->nblocks;
  t->bytes = c->bytes;
  t->capacity = u.capacity;
  t->hits = hits - dhits - dmisses;
  t->misses = misses + dhits + dmisses;
  t->evictions = c->evictions;
  t->promotions = c->dpromotions;
  t->demotions = c->ddemotions;
  if (c->disk) {
    disk_stats ds;
    disk_get_stats(c->disk, &ds);
    t = &out->tier[CASCADE_TIER_DISK];
    t->present = 1;
    t->blocks = c->dblocks;
    t->bytes = c->dbytes_total;
    t->capacity = ds.capacity;
    t->hits = dhits;
    t->misses = misses + dmisses;
    t->evictions = c->devictions;
    snprintf(out->disk_mode, sizeof out->disk_mode, "%s", disk_mode(c->disk));
    out->disk_file_bytes = ds.file_bytes;
    out->disk_live_bytes = ds.live_bytes;
    out->disk_read_errors = ds.read_errors;
    out->disk_write_errors = ds.write_errors + c->dwrite_fail;
    out->disk_compactions = ds.compactions;
    out->disk_recovered = c->recovered;
  }
  out->keys = c->nkeys;
  out->namespaces = c->nns;
  out->puts = c->puts;
  out->deletes = c->deletes;
  out->expired = c->expired;
  out->dedup_hits = c->dedup_hits;
  out->dedup_bytes_saved = c->dedup_saved;
  pthread_mutex_unlock(&c->mem_lock);
  out->gets = gets;
  out->hits = hits - dmisses;
  out->misses = misses + dmisses;
  out->views = atomic_load(&c->views);
  out->dram_free_bytes = u.free;
  out->dram_largest_free = u.largest_free;
  out->dram_fragmentation =
      u.free ? 1.0 - (double)u.largest_free / (double)u.free : 0.0;
  out->dram_hugepages = u.hugepages;
  snprintf(out->policy, sizeof out->policy, "%s", c->pops->name);
  if (c->get_lat) lat_summary(c->get_lat, &out->get_latency);
  if (c->put_lat) lat_summary(c->put_lat, &out->put_latency);
  return 0;
}
