/*
 * store.c - the engine: index, namespaces, deduplication, the DRAM tier's
 * eviction, TTLs and priorities.  Structures and locking rules are in
 * internal.h; read that first.
 *
 * Put (cascade_put is a batch of one):
 *   0. no lock:   hash every value (SHA-256) unless a content id was given
 *                 or dedup is off.
 *   1. mem_lock:  NX/XX checks; a value whose content is stored already is
 *                 attached to that block at once (no copy); otherwise an
 *                 extent is allocated, evicting as needed.  The new block is
 *                 invisible: not in the index, content table or policy.
 *   2. no lock:   copy the values into their extents.
 *   3. mem_lock:  re-check NX/XX (the lock was dropped); if another put
 *                 stored the same content meanwhile, drop ours and share
 *                 theirs; otherwise publish the block and point the key at
 *                 it (shard lock held only for the pointer switch).
 * Get: shard lock -> find key -> pin block, raise its access tick -> unlock
 *   -> copy -> unpin.  No global lock, no allocation.
 * Eviction (mem_lock held): expired keys first, then the lowest priority
 *   class's policy victim; pinned victims are set aside and put back after.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
  return k->hash == lk->h && k->klen == lk->klen &&
         k->ns->len == lk->nslen && memcmp(k->key, lk->key, lk->klen) == 0 &&
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

static const ns_obj *ns_intern(cascade *c, const lookup *lk) {
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
    if (l < c->nttl && c->ttl[l]->expire_ns < mv) m = l, mv = c->ttl[l]->expire_ns;
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
  if (b->ext_freed && b->drefs == 0) blk_release(c, b);
}

static void blk_free_ext(cascade *c, cascade_blk *b) {
  dram_free(c->dram, b->ext);
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
  if (pol_in(&b->pi)) policy_remove(&c->pol[b->cls], &b->pi);
  blk_unparent(c, b);
  c->nblocks--;
  c->bytes -= b->len;
  b->live = 0;
  uint32_t old = atomic_fetch_or_explicit(&b->pins, BLK_DEAD,
                                          memory_order_acq_rel);
  if ((old & ~BLK_DEAD) == 0) blk_free_ext(c, b);
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
}

/* Change the flags and priority of a key attached to its block. */
static void key_set_attrs(cascade *c, kent *k, unsigned flags, int prio) {
  cascade_blk *b = k->blk;
  b->nprefix -= (k->flags & CASCADE_PUT_PREFIX) != 0;
  b->nprio[prio_class(k->prio)]--;
  k->flags = (uint8_t)(flags & CASCADE_PUT_PREFIX);
  k->prio = (int8_t)prio;
  b->nprefix += (k->flags & CASCADE_PUT_PREFIX) != 0;
  b->nprio[prio_class(k->prio)]++;
  blk_refresh(c, b);
}

/* Unlink k from block b's key list (k->blk itself is left alone: readers
 * may be looking at it); removes b if k was its last key. */
static void key_detach(cascade *c, kent *k, cascade_blk *b) {
  if (k->bprev)
    k->bprev->bnext = k->bnext;
  else
    b->keys = k->bnext;
  if (k->bnext) k->bnext->bprev = k->bprev;
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
  free(k);
}

static void blk_evict(cascade *c, cascade_blk *b) {
  c->evictions++;
  /* the last key_remove removes the block itself */
  while (b->keys && b->keys->bnext) key_remove(c, b->keys);
  key_remove(c, b->keys);
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
  return atomic_load_explicit(&b->pins, memory_order_acquire) & ~BLK_DEAD;
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
      blk_evict(c, b);
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

static void unpin(cascade *c, cascade_blk *b) {
  uint32_t old = atomic_fetch_sub_explicit(&b->pins, 1, memory_order_acq_rel);
  if (old == (BLK_DEAD | 1)) {
    /* removed while we held it: we are the one to free its extent */
    pthread_mutex_lock(&c->mem_lock);
    blk_free_ext(c, b);
    blk_maybe_free(c, b);
    pthread_mutex_unlock(&c->mem_lock);
  }
}

/* Record a use of b: a new access tick (lock-free; see policy.h). */
static void touch(cascade *c, cascade_blk *b) {
  uint64_t t = atomic_fetch_add_explicit(&c->tick, 1, memory_order_relaxed);
  atomic_store_explicit(&b->pi.atime, t + 1, memory_order_relaxed);
}

/* shard lock held; the key points at a live block */
static void pin_and_touch(cascade *c, cascade_blk *b) {
  atomic_fetch_add_explicit(&b->pins, 1, memory_order_acq_rel);
  touch(c, b);
  uint32_t h = atomic_load_explicit(&b->pi.nhits, memory_order_relaxed);
  if (h != UINT32_MAX)
    atomic_store_explicit(&b->pi.nhits, h + 1, memory_order_relaxed);
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
  pthread_mutex_init(&c->mem_lock, NULL);
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
  *out = c;
  return 0;
fail:
  cascade_close(c);
  return rc;
}

void cascade_close(cascade *c) {
  if (!c) return;
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
  free(c->ttl);
  while (c->nslist) {
    ns_obj *n = c->nslist;
    c->nslist = n->next;
    free(n);
  }
  free(c->get_lat);
  free(c->put_lat);
  dram_close(c->dram);
  pthread_mutex_destroy(&c->mem_lock);
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
  cascade_blk *blk;        /* PS_NEW: the unpublished block */
  kent *spare;             /* pre-allocated key entry */
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
  if (o->flags & ~(unsigned)(CASCADE_PUT_PREFIX | CASCADE_PUT_HAVE_CID |
                             CASCADE_PUT_NX | CASCADE_PUT_XX |
                             CASCADE_PUT_KEEPTTL))
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
static int key_set(cascade *c, put_state *ps, const ns_obj *ns,
                   cascade_blk *b, const cascade_put_opts *o) {
  lookup *lk = &ps->lk;
  uint64_t now = 0; /* read the clock only if a TTL is involved */
  pthread_mutex_lock(&lk->sh->lock);
  kent *k = shard_find(lk);
  int is_new = !k;
  cascade_blk *old = NULL;
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
    k->expire_ns = 0;
    oat_insert(&lk->sh->tab, k->hash, k);
  } else {
    old = k->blk;
    if (expired(k, &now)) k->expire_ns = 0; /* a new life */
  }
  if (o->ttl_ms)
    k->expire_ns = (now ? now : now_realtime_ns()) + o->ttl_ms * 1000000u;
  else if (!(o->flags & CASCADE_PUT_KEEPTTL))
    k->expire_ns = 0;
  k->blk = b;
  pthread_mutex_unlock(&lk->sh->lock);

  if (old == b) { /* same content again: attributes only */
    key_set_attrs(c, k, o->flags, o->priority);
  } else {
    if (old) key_detach(c, k, old); /* with the old attributes */
    k->flags = (uint8_t)(o->flags & CASCADE_PUT_PREFIX);
    k->prio = (int8_t)o->priority;
    key_attach(c, k, b);
  }
  if (is_new) c->nkeys++;
  ttl_update(c, k); /* reserved: cannot fail */
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
  put_state *ps = n <= 16 ? stack_ps : calloc(n, sizeof *ps);
  if (!ps) return -ENOMEM;
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
      hash_sha256_cid(it->value, it->vlen, &ps[i].cid);
      ps[i].has_cid = 1;
    }
    ps[i].state = PS_NEW;
    it->rc = 0;
    nvalid++;
  }

  /* 1: conditions, dedup, allocation (mem_lock) */
  pthread_mutex_lock(&c->mem_lock);
  const ns_obj *nso = nvalid ? ns_intern(c, &nslk) : NULL;
  if (nvalid &&
      (!nso || ttl_reserve(c, c->nkeys + nvalid) < 0 ||
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
    for (;;) {
      rc = dram_alloc(c->dram, it->vlen, &b->ext, &b->off);
      if (rc != -ENOSPC || !evict_one(c, &aside)) break;
    }
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
    b->cls = -1;
    b->drefs = 1;
    b->pi.hidx = POL_NOT_IN;
    ps[i].blk = b;
  }
  put_back_aside(c, aside);
  pthread_mutex_unlock(&c->mem_lock);

  /* 2: copy values into the arena (no lock) */
  for (size_t i = 0; i < n; i++)
    if (ps[i].state == PS_NEW && items[i].vlen)
      copy_stream(c->base + ps[i].blk->off, items[i].value, items[i].vlen);

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
        if ((rc = key_set(c, &ps[i], nso, b, o)) < 0) { /* sets b->cls */
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

/* Copy a value out to a caller's buffer: streaming stores for blocks of at
 * least the L2 size (their destination would not stay in cache anyway),
 * memcpy otherwise. */
#define COPY_OUT_STREAM_MIN (UINT64_C(1) << 20)

static void copy_out(void *dst, const void *src, uint64_t n) {
  if (n >= COPY_OUT_STREAM_MIN)
    copy_stream(dst, src, n);
  else if (n)
    memcpy(dst, src, n);
}

/* shard lock held: the live block of lk, pinned, or NULL. */
static cascade_blk *lookup_pin(cascade *c, const lookup *lk) {
  shard *sh = lk->sh;
  kent *k = shard_find(lk);
  uint64_t now = 0;
  sh->gets++;
  if (!k || expired(k, &now)) {
    sh->misses++;
    return NULL;
  }
  sh->hits++;
  pin_and_touch(c, k->blk);
  return k->blk;
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
  if (b->len > cap) {
    rc = -ENOBUFS;
  } else {
    copy_out(buf, c->base + b->off, b->len);
  }
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
  view->data = b->len ? c->base + b->off : (const void *)c->base;
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
    size_t got = 0;
    for (size_t r = 0; r < nref; r++) {
      size_t i = ref[r].idx;
      cascade_get_item *it = &items[base + i];
      cascade_blk *b = blk[i];
      if (!b) {
        it->rc = -ENOENT;
        continue;
      }
      it->vlen = b->len;
      if (b->len > it->cap) {
        it->rc = -ENOBUFS;
      } else {
        copy_out(it->buf, c->base + b->off, b->len);
        it->rc = 0;
        hits++;
      }
      unpin(c, b);
      got++;
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
  if (k) key_set_attrs(c, k, k->flags, priority);
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
      info->ttl_ms =
          k->expire_ns > now ? (int64_t)((k->expire_ns - now + 999999) / 1000000)
                             : 0;
    } else {
      info->ttl_ms = -1;
    }
    info->priority = k->prio;
    info->flags = k->flags;
    info->tier = CASCADE_TIER_DRAM;
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
  cascade_tier_stats *t = &out->tier[CASCADE_TIER_DRAM];
  t->present = 1;
  t->blocks = c->nblocks;
  t->bytes = c->bytes;
  t->capacity = u.capacity;
  t->hits = hits;
  t->misses = misses;
  t->evictions = c->evictions;
  out->keys = c->nkeys;
  out->namespaces = c->nns;
  out->puts = c->puts;
  out->deletes = c->deletes;
  out->expired = c->expired;
  out->dedup_hits = c->dedup_hits;
  out->dedup_bytes_saved = c->dedup_saved;
  pthread_mutex_unlock(&c->mem_lock);
  out->gets = gets;
  out->hits = hits;
  out->misses = misses;
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
