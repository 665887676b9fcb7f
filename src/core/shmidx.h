/*
 * shmidx.h - the shared-memory index: where each key of the default
 * namespace that has a DRAM copy lies in the arena, published by the
 * engine in a memfd that local clients map read-only, so that a client
 * finds and copies a value with no round trip to the daemon.
 *
 * Layout: a header (one page), then nslots 64-byte slots (a power of two).
 * A key with hash h (the engine's index hash of the key in the default
 * namespace: XXH3_64bits_withSeed(key, klen, hdr->seed)) lives in one of
 * the SHMIDX_WINDOW slots from h & (nslots - 1) on, identified by h and a
 * second hash h2 (seed hdr->seed2): 128 bits, so a match is the key.  A
 * key with no free slot in its window is not published (clients ask the
 * daemon instead), so the index is a cache of the truth, never more.
 *
 * Slot states by h: SHMIDX_EMPTY (never used since the run was last
 * empty: a lookup stops here), SHMIDX_TOMB (was used: a lookup goes on),
 * else a key.
 *
 * Writers (the engine, under its mem_lock: one at a time) keep a seqlock
 * per slot: seq odd while the slot changes.  A slot's seq also changes
 * (odd, then even) before its value's extent can be freed or rewritten,
 * so a reader that copied a value and then finds seq unchanged copied
 * bytes that were the key's value all along:
 * A store that closes sets hdr->closed first; a daemon that is killed
 * cannot, so clients also watch their connection.
 *
 *   reader: s1 = seq (acquire); s1 even; read h, h2, off, len, expire;
 *           copy len bytes at off; fence (acquire); seq == s1, else retry.
 */
#ifndef CASCADE_SHMIDX_H
#define CASCADE_SHMIDX_H

#include <stdatomic.h>
#include <stdint.h>

#define SHMIDX_MAGIC UINT64_C(0x3158444943534143) /* "CASCIDX1" */
#define SHMIDX_VERSION 1
#define SHMIDX_HDR 4096
#define SHMIDX_WINDOW 32
#define SHMIDX_EMPTY UINT64_C(0)
#define SHMIDX_TOMB UINT64_C(1)

typedef struct shmidx_hdr {
  uint64_t magic;
  uint32_t version;
  uint32_t slot_size; /* sizeof(shmidx_slot) */
  uint64_t nslots;    /* a power of two */
  uint64_t seed;      /* h: XXH3_64bits_withSeed(key, klen, seed) */
  uint64_t seed2;     /* h2: the same with seed2 */
  uint64_t arena;     /* bytes of the arena the offsets are in */
  uint32_t window;    /* SHMIDX_WINDOW */
  uint32_t pad;
  _Atomic uint64_t closed; /* the store closed: nothing here holds */
} shmidx_hdr;

typedef struct shmidx_slot {
  _Atomic uint64_t seq;
  _Atomic uint64_t h;  /* SHMIDX_EMPTY, SHMIDX_TOMB, or the key's h */
  _Atomic uint64_t h2;
  _Atomic uint64_t off; /* in the arena */
  _Atomic uint64_t len;
  _Atomic uint64_t expire_ns; /* CLOCK_REALTIME; 0 = never */
  uint64_t pad[2];
} __attribute__((aligned(64))) shmidx_slot;

/* The protocol's fences.  GCC does not instrument fences under
 * ThreadSanitizer and warns (-Wtsan, an error with -Werror); the other side
 * of this protocol is another process, which TSan does not see anyway, so
 * the warning is silenced here and the fence kept. */
static inline void shmidx_fence(memory_order order) {
#if defined(__SANITIZE_THREAD__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wtsan"
#endif
  atomic_thread_fence(order);
#if defined(__SANITIZE_THREAD__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
}

/* The h of a key as stored: never one of the two markers. */
static inline uint64_t shmidx_h(uint64_t h) { return h < 2 ? h + 2 : h; }

#endif /* CASCADE_SHMIDX_H */
