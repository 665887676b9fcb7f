/*
 * shmidx.c - the engine's side of the shared-memory index (format and
 * reader protocol in shmidx.h): created on the first cascade_shm_index()
 * call, then kept in step with the key -> block mapping and with blocks
 * entering and leaving DRAM.  Every function here runs under mem_lock,
 * which makes the engine the index's only writer.
 */
#define _GNU_SOURCE /* memfd_create */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <xxhash.h>

#include "core/internal.h"
#include "core/shmidx.h"

#define PUB_MIN_SLOTS (UINT64_C(1) << 16)
#define PUB_MAX_SLOTS (UINT64_C(1) << 20)
#define PUB_BYTES_PER_SLOT (UINT64_C(8) << 10)

static int is_default_ns(const ns_obj *ns) {
  return ns->len == 7 && memcmp(ns->name, "default", 7) == 0;
}

static shmidx_slot *slot_at(cascade *c, uint64_t i) {
  return &c->pub_slots[i & c->pub_mask];
}

/* Open slot s for writing (seq odd); pub_end closes it (seq even). */
static void pub_begin(shmidx_slot *s) {
  uint64_t q = atomic_load_explicit(&s->seq, memory_order_relaxed);
  atomic_store_explicit(&s->seq, q + 1, memory_order_relaxed);
  shmidx_fence(memory_order_seq_cst);
}

static void pub_end(shmidx_slot *s) {
  uint64_t q = atomic_load_explicit(&s->seq, memory_order_relaxed);
  atomic_store_explicit(&s->seq, q + 1, memory_order_release);
}

/* The slot's value fields; with its key fields (h, h2) when the slot is
 * new to the key (a key keeps its slot until it is taken out). */
static void slot_fill(cascade *c, shmidx_slot *s, const kent *k,
                      uint64_t off, int new_slot) {
  const cascade_blk *b = k->blk;
  if (new_slot) {
    atomic_store_explicit(&s->h, shmidx_h(k->hash), memory_order_relaxed);
    atomic_store_explicit(
        &s->h2, XXH3_64bits_withSeed(k->key, k->klen, c->pub_seed2),
        memory_order_relaxed);
  }
  atomic_store_explicit(&s->off, b->len ? off : 0, memory_order_relaxed);
  atomic_store_explicit(&s->len, b->len, memory_order_relaxed);
  atomic_store_explicit(&s->expire_ns, k->expire_ns, memory_order_relaxed);
}

/* Empty a slot; then tombstones left at the end of the run become empty
 * too, so lookups stop early again. */
static void slot_clear(cascade *c, uint64_t i) {
  shmidx_slot *s = slot_at(c, i);
  pub_begin(s);
  atomic_store_explicit(&s->h, SHMIDX_TOMB, memory_order_relaxed);
  pub_end(s);
  if (atomic_load_explicit(&slot_at(c, i + 1)->h, memory_order_relaxed) !=
      SHMIDX_EMPTY)
    return;
  for (uint64_t j = i, n = 0; n <= c->pub_mask; j--, n++) {
    shmidx_slot *t = slot_at(c, j);
    if (atomic_load_explicit(&t->h, memory_order_relaxed) != SHMIDX_TOMB)
      break;
    atomic_store_explicit(&t->h, SHMIDX_EMPTY, memory_order_release);
  }
}

void pub_unkey(cascade *c, kent *k) {
  if (!c->pub_slots || k->pslot == UINT32_MAX) return;
  slot_clear(c, k->pslot);
  k->pslot = UINT32_MAX;
}

/* Publish k as it is now: its block's DRAM offset, length and expiry; or
 * take it out if its block is not in DRAM. */
void pub_key(cascade *c, kent *k) {
  if (!c->pub_slots || !is_default_ns(k->ns)) return;
  const cascade_blk *b = k->blk;
  uint64_t off = atomic_load_explicit(&b->off, memory_order_relaxed);
  if (!b->live || !b->in_dram || off == BLK_OFF_NONE) {
    pub_unkey(c, k);
    return;
  }
  int new_slot = k->pslot == UINT32_MAX;
  if (new_slot) {
    uint64_t home = shmidx_h(k->hash);
    for (uint64_t p = 0; p < SHMIDX_WINDOW; p++) {
      uint64_t h = atomic_load_explicit(&slot_at(c, home + p)->h,
                                        memory_order_relaxed);
      if (h == SHMIDX_EMPTY || h == SHMIDX_TOMB) {
        k->pslot = (uint32_t)((home + p) & c->pub_mask);
        break;
      }
    }
    if (k->pslot == UINT32_MAX)
      return; /* no room in its window: clients ask the daemon */
  }
  shmidx_slot *s = slot_at(c, k->pslot);
  pub_begin(s);
  slot_fill(c, s, k, off, new_slot);
  pub_end(s);
}

void pub_blk(cascade *c, cascade_blk *b) {
  if (!c->pub_slots || !is_default_ns(b->ns)) return;
  for (kent *k = b->keys; k; k = k->bnext) pub_key(c, k);
}

void pub_blk_leave(cascade *c, cascade_blk *b) {
  if (!c->pub_slots) return;
  for (kent *k = b->keys; k; k = k->bnext) pub_unkey(c, k);
}

void pub_close(cascade *c) {
  if (c->pub_slots) {
    atomic_store(&((shmidx_hdr *)c->pub_map)->closed, 1);
    munmap(c->pub_map, c->pub_size);
  }
  if (c->pub_fd >= 0) close(c->pub_fd);
  c->pub_slots = NULL;
  c->pub_fd = -1;
}

static uint64_t pow2_at_least(uint64_t n) {
  uint64_t p = 1;
  while (p < n) p <<= 1;
  return p;
}

int cascade_shm_index(cascade *c, int *fd, size_t *size) {
  if (!c || !fd || !size) return -EINVAL;
  pthread_mutex_lock(&c->mem_lock);
  int rc = 0;
  if (!c->pub_slots) {
    uint64_t n = pow2_at_least(dram_capacity(c->dram) / PUB_BYTES_PER_SLOT);
    if (n < PUB_MIN_SLOTS) n = PUB_MIN_SLOTS;
    if (n > PUB_MAX_SLOTS) n = PUB_MAX_SLOTS;
    size_t bytes = SHMIDX_HDR + n * sizeof(shmidx_slot);
    int f = memfd_create("cascade-index", MFD_CLOEXEC);
    void *m = MAP_FAILED;
    if (f < 0 || ftruncate(f, (off_t)bytes) < 0 ||
        (m = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, f, 0)) ==
            MAP_FAILED) {
      rc = -errno;
      if (f >= 0) close(f);
      pthread_mutex_unlock(&c->mem_lock);
      return rc;
    }
    shmidx_hdr *hd = m;
    hd->magic = SHMIDX_MAGIC;
    hd->version = SHMIDX_VERSION;
    hd->slot_size = sizeof(shmidx_slot);
    hd->nslots = n;
    hd->seed = c->seed ^ XXH3_64bits_withSeed("default", 7, c->seed);
    c->pub_seed2 = hd->seed2 = c->seed * UINT64_C(0x9E3779B97F4A7C15) + 1;
    hd->arena = dram_capacity(c->dram);
    hd->window = SHMIDX_WINDOW;
    c->pub_fd = f;
    c->pub_map = m;
    c->pub_size = bytes;
    c->pub_mask = n - 1;
    c->pub_slots = (shmidx_slot *)((char *)m + SHMIDX_HDR);
    /* the keys there are already: every default-namespace key whose
     * block is in DRAM (the tables change only under mem_lock) */
    for (uint32_t i = 0; i < c->nshards; i++) {
      const oat *t = &c->shards[i].tab;
      for (uint64_t j = 0; t->n && j <= t->mask; j++)
        if (t->s[j].p) pub_key(c, t->s[j].p);
    }
  }
  *fd = c->pub_fd;
  *size = c->pub_size;
  pthread_mutex_unlock(&c->mem_lock);
  return rc;
}
