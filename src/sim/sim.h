/*
 * sim.h - replaying a trace (trace.h): the metadata-only cache simulator
 * (sim.c) and the driver that replays through a real store (engine.c).
 *
 * Request model, the same in both (an inference engine's view):
 *   1. match the prefix: h = number of leading input blocks present;
 *      those are the hits, and they are read (a use: atime and nhits rise,
 *      in block order);
 *   2. store the input blocks from h on (and, with with_output, the output
 *      blocks), each with the previous block as its parent, in batches of
 *      REP_PUT_CHUNK.  A block that is present already (a child whose
 *      parent was evicted) is only touched, as a put of equal content is.
 *      New blocks of one batch are not evictable until the batch is
 *      published, so a batch larger than the free room stores what fits.
 * This mirrors cascade_put_batch; with index.shards = 1 (reads touch blocks
 * in key order) and content unique per block, the simulator's hit counts
 * under a policy equal the engine's exactly (tests/unit/test_replay.c).
 *
 * Bounds (simulator only):
 *   belady    evicts the block whose next access is farthest away, or does
 *             not store an incoming block whose next access is farther
 *             than every cached one (the offline optimum; needs the whole
 *             trace).  Next accesses are positions in the block access
 *             sequence, so with prefix-chained ids a parent is always
 *             needed before its child and the cache stays prefix-closed.
 *   infinite  never evicts.
 *
 * Ownership: the caller owns traces and results; nothing is retained.
 */
#ifndef CASCADE_SIM_SIM_H
#define CASCADE_SIM_SIM_H

#include <stddef.h>
#include <stdint.h>

#include "trace.h"

#define REP_PUT_CHUNK 64 /* blocks per put batch */

struct policy_ops;
struct cascade;

/* What a replay measured.  Tier indices follow enum cascade_tier (the
 * simulator counts its single tier as DRAM, index 1). */
typedef struct rep_result {
  uint64_t requests;
  uint64_t lookups;      /* input blocks looked up */
  uint64_t hits;         /* leading blocks found and read */
  uint64_t tier_hits[4]; /* hits by the tier that served them */
  uint64_t tier_bytes[4];
  uint64_t puts;     /* blocks stored (or touched when present) */
  uint64_t stored;   /* new blocks stored */
  uint64_t rejected; /* blocks that found no room (or Belady bypassed) */
  uint64_t evictions; /* blocks dropped from the store (not demotions) */
  uint64_t promotions, demotions; /* into / out of DRAM */
  uint64_t dedup_hits, dedup_bytes_saved;
  uint64_t bytes_put;
  uint64_t tokens_in, tokens_saved; /* prompt tokens; saved = hits, capped */
  uint64_t read_errors;             /* engine: reads that failed/mismatched */
  uint64_t lost;                    /* engine: matched, gone when read */
  double seconds;
  double read_seconds; /* engine: in cascade_get_batch (the hits' bytes) */
  double put_seconds;  /* engine: in cascade_put_batch */
} rep_result;

/* Progress callback: done of total requests. */
typedef void (*rep_progress_fn)(void *arg, size_t done, size_t total);

enum sim_kind { SIM_POLICY, SIM_BELADY, SIM_INFINITE };

typedef struct sim_cfg {
  enum sim_kind kind;
  const struct policy_ops *ops; /* SIM_POLICY: policy_find(name) */
  uint64_t capacity;            /* blocks (ignored for SIM_INFINITE) */
  int with_output;              /* also store output blocks */
  int prefix_flag;              /* leading nprefix blocks are protected */
  size_t limit;                 /* first requests only; 0 = all */
} sim_cfg;

/*
 * Simulate the trace at a capacity in blocks.  Block byte counts are left
 * to the caller (multiply by the block size).  Returns 0, -EINVAL (bad
 * configuration) or -ENOMEM.
 */
int sim_run(const sim_trace *t, const sim_cfg *cfg, rep_result *res,
            rep_progress_fn progress, void *arg);

/* Options of a replay through a real store. */
typedef struct rep_engine_opts {
  const char *ns;       /* namespace of the keys ("replay" if NULL) */
  uint64_t block_bytes; /* bytes of every block (> 0) */
  int with_output;
  double speed;   /* 0: as fast as possible; x: arrival times / x */
  size_t limit;   /* first requests only; 0 = all */
  int prefix_flag; /* put the leading nprefix blocks with CASCADE_PUT_PREFIX */
} rep_engine_opts;

/*
 * Replay the trace through the open store c (DRAM, and disk if the store
 * has a disk tier).  Keys are the 8-byte little-endian raw ids; a block's
 * bytes are a deterministic function of its raw id (equal ids, equal
 * bytes), and every read is checked against them (a mismatch counts as a
 * read error and a miss).  Per-tier hits come from cascade_key_info before
 * the read; evictions, promotions, demotions and dedup from stats deltas.
 * Returns 0, or a negative errno (-ENOMEM, or the store's error from an
 * operation that failed as a whole).
 */
int rep_engine_run(struct cascade *c, const sim_trace *t,
                   const rep_engine_opts *o, rep_result *res,
                   rep_progress_fn progress, void *arg);

/* Count one request whose first h input blocks hit (both replayers). */
void rep_count_request(rep_result *res, const sim_trace *t, const sim_req *q,
                       uint32_t h);

/* Fill block bytes for raw id (exported for tests). */
void rep_block_fill(void *buf, size_t n, uint64_t raw);

#endif /* CASCADE_SIM_SIM_H */
