/*
 * suite.c - `cascade bench suite`: the same workloads, with the same data,
 * on many real storage systems, each behind an adapter (suite.h; the
 * adapters are in suite_*.c, weak symbols: one not built in is absent).
 *
 * Systems, in this order: cascade (the library, embedded), cascade-shm and
 * cascade-server (a real cascaded: its shared-memory index and leases over
 * its Unix socket, RESP over TCP), redis, memcached, posix-file-per-block, lmdb, hdf5, and
 * the peers whose only client is Python, run by their drivers in
 * bench/peers (run_driver; suite_peers.c): mooncake, lmcache-cpu,
 * lmcache-disk, lmcache-server -
 * each by the name its adapter gives.  Per system: init (start it, in its own subdirectory
 * of the data directory), the workloads in the order write, hot-read,
 * mixed, contention, cold-read, then clear (checked: the first keys must be gone) and fini.
 * A system whose init answers SUITE_SKIP (not installed...) is skipped with
 * its reason; the exit status does not change.
 *
 * Repeats.  --repeat N (1..20, default 1) runs that whole sequence (init,
 * the workloads, clear, fini, in a fresh directory) N times, interleaved
 * by system: round 1 runs every system in order, then round 2..., so the
 * device's slow and fast moments fall on all systems alike (as `cascade
 * bench disk --repeat`).  Per (system, workload) the row reports the
 * median GB/s, ops/s and seconds over the runs (the mean of the middle two
 * when N is even), the min-max GB/s, and the latency of the median run:
 * the run of rank (N-1)/2 (from 0) by GB/s, not pooled.  A failure in any
 * run fails that system as in one run: its later workloads and rounds are
 * not run, and its other rows report the runs they completed.  The rows
 * of a system are written when it is done (after its last round, or its
 * failure); with N = 1 they hold what one run gives, as before.
 *
 * Data.  A pool of POOL_BYTES (+ one block) is filled once from the seed
 * (splitmix64: incompressible).  Block i is the window of the pool at byte
 * 8 * (((i + mix(seed)) * ODD) mod (POOL_BYTES / 8)): a different start for
 * every i < POOL_BYTES / 8, so no two blocks are equal (dedup never hits),
 * nothing is generated in a timed region, and a block read back is
 * compared with its window byte for byte.  Key i is "blk:%016llx".
 *
 * Workloads.  T threads (--threads), thread t owning the blocks
 * [t*N/T, (t+1)*N/T), in calls of B blocks (--batch); every thread has its
 * own handle (adapter open), opened before the workload and closed after
 * it (untimed).  sync, cold and clear are called while no thread uses a
 * handle (cold and clear with none open).
 *   write     put every block once, then sync; the time is one span from
 *             the start (all threads released together) to the end of
 *             sync.
 *   hot-read  get every block (after write, or after an untimed load
 *             when write is not run) and compare every byte.
 *   mixed     the same walk, each call a put (with probability
 *             --write-pct, drawn from the seed) of new blocks
 *             nblocks + j.. (never rewritten, never read: dedup cannot
 *             help), or else a get of the thread's blocks j..; keys go
 *             up to 2 * nblocks, and the adapters size for that
 *             (suite_cfg.capacity).
 *   contention --contention-threads threads (not --threads) all get the
 *             first --hot-blocks blocks over and over, at once (a shared
 *             prompt prefix), each as many blocks as it owns: nblocks in
 *             all.
 *   cold-read adapter cold() (untimed), then as hot-read.  -ENOTSUP:
 *             skipped, with the reason.
 *   Reads: every thread reads its blocks into a buffer of its own that
 *   holds them all (prefaulted, on transparent huge pages); the time is one span from the start to
 *   the end of the last get; every byte is compared after it.  A working
 *   set over a quarter of the memory is read in one buffer of B blocks per
 *   thread instead, compared after each call; the time is then the
 *   largest, over threads, of the sum of that thread's get-call spans.
 *   mixed and contention always read that way (put-call spans counted
 *   too in mixed).
 * Latency: the span of each put/get call (B blocks), all threads together,
 * nearest-rank p50/p90/p99/p999 and max: per call, not per block.
 * Throughput: bytes / time (GB/s, 10^9 bytes), blocks / time (ops/s).
 *
 * Failures.  A wrong length or byte, a block missing on read (or not
 * counted by contains after write), an item that a put rejected, or a
 * failed call fails that system: its remaining workloads are not run, a
 * message names the system and the key, and the exit status is 1.  The
 * other systems still run.
 *
 * Results.  One JSON file per (system, workload) run, results/
 * {system}_{workload}_1n_{timestamp}.json (timestamp of the start of the
 * run, UTC, e.g. 20261123T153000Z): configuration (with repeat: N),
 * machine facts (with the file system and device of the data directory),
 * the system's version, throughput, latency, errors; with N > 1 the
 * result is the median one, with gbps_min, gbps_max and runs: every
 * completed run's seconds, GB/s, ops/s and latency.  --json also prints each object (and the
 * skipped ones) on stdout, one per line, and the human text goes to
 * stderr.  Then a table: system, workload,
 * block, GB/s, ops/s, p50/p99 per call, and GB/s against the best
 * baseline (the best system whose name does not start with "cascade"),
 * all medians with N > 1 (and a min-max GB/s column).
 *
 * Single-threaded except for the workers of a workload; no global state.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/magic.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "../sim/trace.h"
#include "cli.h"
#include "suite.h"

#define HUGE_ALIGN ((size_t)2 << 20) /* read buffers: huge pages */

#define POOL_BYTES (64ull << 20) /* a power of two, see "Data" */
#define ODD 0x9e3779b97f4a7c15ull
#define DEFAULT_SEED 0x6361736361646533ull
#define MIN_BLOCK 64ull
#define MAX_BLOCK (256ull << 20)
#define MAX_THREADS 64
#define MAX_BATCH 1024
#define KEY_LEN 20 /* "blk:" + 16 hex digits */
#define DIR_MAX 1024
#define MSG_MAX (SUITE_MSG + 256)
#define MAX_REPEAT 20

enum { WL_WRITE, WL_HOT, WL_MIXED, WL_CONTENTION, WL_COLD, WL_REPLAY, NWL };
static const char *const wl_name[NWL] = {"write",      "hot-read",
                                         "mixed",      "contention",
                                         "cold-read",  "replay"};

enum { ST_OK, ST_FAILED, ST_SKIPPED };

/* The adapters, in the order of the table; NULL = not built in. */
static const suite_adapter *adapter_at(int k) {
  switch (k) {
  case 0: return &suite_cascade;
  case 1: return &suite_cascade_shm;
  case 2: return &suite_cascade_server;
  case 3: return &suite_redis;
  case 4: return &suite_memcached;
  case 5: return &suite_posix;
  case 6: return &suite_lmdb;
  case 7: return &suite_hdf5;
  case 8: return &suite_mooncake;
  case 9: return &suite_lmcache_cpu;
  case 10: return &suite_lmcache_disk;
  case 11: return &suite_lmcache_server;
  default: return NULL;
  }
}
#define NADAPTERS 12


/* One run of one (system, workload). */
struct run {
  double secs, gbps, ops, mean;
  uint64_t calls, errors;
  uint64_t p50, p90, p99, p999, max;
};

struct result {
  const suite_adapter *a;
  double hit;     /* replay: share of input blocks found (prefix hits) */
  uint64_t reqs;  /* replay: requests */
  int wl, status;
  char reason[MSG_MAX];
  char version[256];
  double secs, gbps, ops; /* with runs: the medians */
  uint64_t bytes, blocks, calls, errors;
  uint64_t p50, p90, p99, p999, max; /* with runs: of the median run */
  double mean;
  double gbps_min, gbps_max;
  int nrun, mrun; /* completed runs; the median run (index in run) */
  struct run run[MAX_REPEAT];
};

struct suite {
  /* options */
  uint64_t block, nblocks, seed;
  int threads, batch, quick, json, keep, seed_given;
  int write_pct; /* mixed: percent of calls that put */
  int cthreads;  /* contention: its threads */
  uint64_t hot;  /* contention: blocks of the shared prefix */
  const char *trace_opt; /* replay: the trace file (NULL: synthetic) */
  sim_trace tr;          /* replay: its requests */
  size_t nreq;           /* replay: the leading requests replayed */
  uint64_t rblocks;      /* replay: their input blocks */
  int with_output;       /* replay: answers are stored too (synthetic) */
  char trace_desc[256];
  int repeat; /* rounds of every system (--repeat) */
  int whole; /* reads: every block kept, compared after the pass */
  FILE *out; /* the human text: stdout, stderr with --json */
  int wl[NWL];
  const char *model;
  uint64_t tpb;
  const char *dir_opt, *results, *cascaded_opt, *peers_opt;
  const suite_adapter *sys[NADAPTERS];
  int nsys;

  /* resources */
  char cascaded[1056];
  int have_cascaded;
  char base[DIR_MAX], work[DIR_MAX];
  char fs_type[64], device[256];
  char stamp[32];
  cli_machine m;
  char host[256];
  uint8_t *pool;
  size_t pool_len;
  char (*keys)[KEY_LEN + 1];
  uint64_t pool_off;

  struct result *res;
  int nres, failed;
  int step, nsteps;
  int done[NADAPTERS]; /* by index in sys: failed or skipped */
};

/* The start of a pass: workers wait for go (1: run, -1: give up). */
struct start {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int go;
};

struct worker {
  struct suite *s;
  const suite_adapter *a;
  void *h;
  int t, wl; /* wl: WL_WRITE puts, WL_MIXED both, WL_REPLAY requests,
                else gets */
  uint64_t hits, looked, moved; /* replay: prefix hits, input blocks, blocks
                                   read or written */
  int whole;  /* reads into one buffer of all its blocks, compared after */
  uint64_t *idx; /* the blocks of the current call */
  pthread_t th;
  struct start *go;
  uint64_t first, last;
  suite_item *it;
  uint8_t *buf;
  uint64_t *lat;
  size_t nlat;
  double busy, t_end;
  uint64_t errors;
  int fail;
  char msg[MSG_MAX];
};

void cli_bench_suite_usage(FILE *f) {
  fprintf(
      f,
      "Usage: cascade bench suite [--systems LIST] [--workloads LIST]\n"
      "                           [--block SIZE | --model NAME "
      "[--tokens-per-block N]]\n"
      "                           [--blocks N | --total SIZE] [--threads N] "
      "[--batch N]\n"
      "                           [--dir DIR] [--results DIR] [--cascaded "
      "PATH]\n"
      "                           [--repeat N] [--seed N] [--quick] [--json] "
      "[--keep]\n"
      "                           [--write-pct P] [--contention-threads N] "
      "[--hot-blocks N]\n"
      "                           [--trace FILE] [--peers DIR]\n"
      "\n"
      "Run the same workloads, with the same data, on every storage system "
      "built in,\n"
      "each the real system behind an adapter (servers started on free "
      "loopback ports,\n"
      "files in their own directory), and check every byte read back:\n"
      "  write      put every block once in batches, then sync; timed end "
      "to end\n"
      "  hot-read   get every block (warm) and compare it\n"
      "  mixed      walk the blocks again, each call a put of new blocks "
      "(--write-pct\n"
      "             of the calls) or a get of old ones (compared)\n"
      "  contention --contention-threads threads all get the same first "
      "--hot-blocks\n"
      "             blocks (a shared prompt prefix), as many blocks in all "
      "as the\n"
      "             working set\n"
      "  replay     from an empty store, the requests of a trace (--trace, "
      "else a\n"
      "             synthetic chat/RAG workload) that fit in the working "
      "set: get the\n"
      "             prefix present, put the rest (prefix hit ratio, "
      "latency per request)\n"
      "  cold-read  the system's cold step (drop the page cache, restart "
      "the store on\n"
      "             its files), then as hot-read; skipped for systems that "
      "keep all\n"
      "             in memory\n"
      "\n"
      "Options:\n"
      "  --systems LIST     comma separated [all built in: cascade, "
      "cascade-shm,\n"
      "                     cascade-server, redis, memcached,\n"
      "                     posix-file-per-block, lmdb, hdf5, mooncake,\n"
      "                     lmcache-cpu, lmcache-disk, lmcache-server]\n"
      "  --workloads LIST   write, hot-read, mixed, contention, cold-read, "
      "replay [all]\n"
      "  --block SIZE       bytes per block [1m; --quick: 256k]\n"
      "  --model NAME       the block of NAME's KV cache: llama3-8b (128 "
      "KiB/token),\n"
      "                     llama3-70b (320 KiB), qwen2.5-7b (56 KiB), "
      "qwen2.5-32b\n"
      "                     (256 KiB), qwen2.5-72b (320 KiB); times "
      "--tokens-per-block\n"
      "                     [16]\n"
      "  --blocks N         blocks in the working set [--total / block]\n"
      "  --total SIZE       bytes in the working set [1g; --quick: 8m]\n"
      "  --threads N        worker threads, one handle (connection) each, "
      "1..%d [1]\n"
      "  --batch N          blocks per put/get call, 1..%d [16; --quick: 8]\n"
      "  --dir DIR          where the data directory is made (mkdtemp) "
      "[$TMPDIR, else\n"
      "                     /var/tmp]; one subdirectory per system\n"
      "  --results DIR      one JSON file per (system, workload) "
      "[results]\n"
      "  --cascaded PATH    cascaded to run [next to cascade, else $PATH]\n"
      "  --repeat N         run every system N times, 1..%d, interleaved by "
      "system (one\n"
      "                     round of all, then the next); report the median "
      "GB/s and\n"
      "                     ops/s, the min-max GB/s, the latency of the "
      "median run [1]\n"
      "  --seed N           seed of the data [fixed]\n"
      "  --peers DIR        the virtual environments of the Python peers "
      "(mooncake,\n"
      "                     lmcache-*; their drivers: bench/peers) "
      "[$CASCADE_PEERS, else\n"
      "                     .peers]; a peer not installed there is skipped\n"
      "  --write-pct P      mixed: percent of calls that put, 0..100 [20]\n"
      "  --contention-threads N  contention: threads, 1..%d [4]\n"
      "  --hot-blocks N     contention: blocks of the shared prefix "
      "[--batch]\n"
      "  --trace FILE       replay: a Mooncake JSONL trace, or an Azure LLM "
      "CSV (.csv)\n"
      "                     [synthetic chat/RAG, from --seed]\n"
      "  --keep             keep the data directory: each system's "
      "subdirectory of its\n"
      "                     last round (server logs; the adapters remove "
      "their data)\n"
      "  --quick            a tiny run of every system (for the tests)\n"
      "  --json             also print every result as one JSON object per "
      "line\n"
      "\n"
      "Latency is per put/get call of --batch blocks.  A wrong byte, a "
      "missing block or\n"
      "a failed call fails that system (the others still run): exit "
      "status 1.\n",
      MAX_THREADS, MAX_BATCH, MAX_REPEAT, MAX_THREADS);
}

/* ---- Data ---------------------------------------------------------------- */

static inline const uint8_t *block_src(const struct suite *s, uint64_t i) {
  uint64_t w = ((i + s->pool_off) * ODD) & (POOL_BYTES / 8 - 1);

  return s->pool + w * 8;
}

/* ---- Workers ------------------------------------------------------------- */

static void wfail(struct worker *w, const char *fmt, const char *key,
                  const char *detail) {
  if (w->fail) return;
  w->fail = 1;
  snprintf(w->msg, sizeof w->msg, fmt, key, detail);
}

/* Check the items of one get call, blocks w->idx[0..n): status and
 * length, and with bytes, every byte. */
static void check_gets(struct worker *w, int n, int bytes) {
  const struct suite *s = w->s;

  for (int k = 0; k < n && !w->fail; k++) {
    suite_item *it = &w->it[k];
    const char *key = s->keys[w->idx[k]];
    char d[64];

    if (it->rc != 0 || it->vlen != s->block) w->errors++;
    if (it->rc == -ENOENT) {
      wfail(w, "key %s: missing (%s)", key, "it was put");
    } else if (it->rc != 0) {
      wfail(w, "key %s: get failed: %s", key, cascade_strerror(it->rc));
    } else if (it->vlen != s->block) {
      snprintf(d, sizeof d, "%zu bytes, expected %" PRIu64, it->vlen,
               s->block);
      wfail(w, "key %s: wrong length: %s", key, d);
    } else if (bytes &&
               memcmp(it->val, block_src(s, w->idx[k]), s->block) != 0) {
      w->errors++;
      wfail(w, "key %s: %s", key, "wrong bytes");
    }
  }
}

/* Item k of the next call: block b, its value at val. */
static void set_item(struct worker *w, int k, uint64_t b, const void *val) {
  suite_item *it = &w->it[k];

  w->idx[k] = b;
  it->key = w->s->keys[b];
  it->klen = KEY_LEN;
  it->val = (void *)val;
  it->vlen = w->s->block;
  it->rc = -EINPROGRESS;
}

/* Put or get the n items set: the call's span in seconds.  A failed call,
 * or an item a put rejected, fails the worker (w->fail). */
static double call_batch(struct worker *w, int put, int n) {
  const struct suite *s = w->s;
  char msg[SUITE_MSG] = "";
  double t0 = cli_now(), t1;
  int r = put ? w->a->put(w->h, w->it, n, msg, sizeof msg)
              : w->a->get(w->h, w->it, n, msg, sizeof msg);

  t1 = cli_now();
  if (r < 0) {
    char d[SUITE_MSG + 64];

    w->errors++;
    snprintf(d, sizeof d, "%s (%s)", msg[0] ? msg : "failed",
             cascade_strerror(r));
    wfail(w, put ? "put of a batch from key %s: %s"
                 : "get of a batch from key %s: %s",
          s->keys[w->idx[0]], d);
  } else if (put) {
    for (int k = 0; k < n; k++)
      if (w->it[k].rc != 0) {
        w->errors++;
        wfail(w, "key %s: put failed: %s", s->keys[w->idx[k]],
              msg[0] ? msg : cascade_strerror(w->it[k].rc));
      }
  }
  return t1 - t0;
}

/* replay: requests t, t + T, ... of the trace, as an inference engine
 * makes them (src/sim/sim.h): get the input blocks in batches up to the
 * first one missing (the prefix hit; every byte of it compared), then put
 * the input blocks from there on (and, for the synthetic workload, the
 * answer's blocks, which its next turn repeats).  Block id d is key d,
 * bytes block_src(d).
 * The time and a request's latency are its calls' spans. */
static void replay_worker(struct worker *w) {
  const struct suite *s = w->s;

  for (size_t q = (size_t)w->t; q < s->nreq && !w->fail;
       q += (size_t)s->threads) {
    const sim_req *rq = &s->tr.req[q];
    const uint32_t *ids = s->tr.blk + rq->off;
    uint32_t h = 0;
    double span = 0;
    int missed = 0;

    for (int put = 0; put < 2 && !w->fail; put++, missed = 0)
      for (uint32_t j = h, end = rq->nin + (put && s->with_output ? rq->nout
                                                                 : 0);
           j < end && !missed && !w->fail;) {
        int n = (int)(end - j < (uint32_t)s->batch ? end - j
                                                   : (uint32_t)s->batch);
        int k = 0;

        for (int i = 0; i < n; i++) {
          uint64_t b = ids[j + (uint32_t)i];

          set_item(w, i, b, put ? (const void *)block_src(s, b)
                                : w->buf + (size_t)i * s->block);
        }
        span += call_batch(w, put, n);
        if (w->fail) break;
        if (put) {
          k = n;
        } else {
          while (k < n && w->it[k].rc == 0) k++;
          for (int i = k; i < n; i++)
            if (w->it[i].rc != 0 && w->it[i].rc != -ENOENT) {
              w->errors++;
              wfail(w, "key %s: get failed: %s", s->keys[w->idx[i]],
                    cascade_strerror(w->it[i].rc));
            }
          check_gets(w, k, 1); /* the prefix found */
          h += (uint32_t)k;
          if (k < n) missed = 1;
        }
        w->moved += (uint64_t)k;
        j += (uint32_t)n;
      }
    w->hits += h;
    w->looked += rq->nin;
    w->lat[w->nlat++] = (uint64_t)(span * 1e9);
    w->busy += span;
  }
}

/* The calls of a worker.  write: its blocks [first, last) in batches.
 * hot-read, cold-read: the same, gets.  mixed: the same walk, each call
 * a put with probability write_pct (of new blocks nblocks + j.., never
 * read: nothing is rewritten, dedup cannot help) or else a get of its
 * blocks j...  contention: every thread gets the first s->hot blocks
 * over and over (all threads on the same blocks at once), as many
 * blocks in all as it owns. */
static void *worker_main(void *arg) {
  struct worker *w = arg;
  const struct suite *s = w->s;
  uint64_t hc = 0; /* contention: the next block of the hot prefix */

  pthread_mutex_lock(&w->go->mu);
  while (w->go->go == 0) pthread_cond_wait(&w->go->cv, &w->go->mu);
  if (w->go->go < 0) w->fail = 1;
  pthread_mutex_unlock(&w->go->mu);
  if (w->wl == WL_REPLAY) {
    replay_worker(w);
    w->t_end = cli_now();
    return NULL;
  }
  for (uint64_t c = 0, j = w->first; j < w->last && !w->fail; c++) {
    int n = (int)(w->last - j < (uint64_t)s->batch ? w->last - j
                                                   : (uint64_t)s->batch);
    int put = w->wl == WL_WRITE;
    uint64_t b0 = j;
    double span;

    if (w->wl == WL_MIXED) {
      put = cli_mix64(s->seed ^ ((uint64_t)w->t << 40) ^ c) % 100 <
            (uint64_t)s->write_pct;
      if (put) b0 = s->nblocks + j;
    } else if (w->wl == WL_CONTENTION) {
      b0 = hc;
      if ((uint64_t)n > s->hot - hc) n = (int)(s->hot - hc);
      hc = (hc + (uint64_t)n) % s->hot;
    }
    for (int k = 0; k < n; k++) {
      uint64_t b = b0 + (uint64_t)k;

      set_item(w, k, b,
               put        ? (const void *)block_src(s, b)
               : w->whole ? w->buf + (size_t)(b - w->first) * s->block
                          : w->buf + (size_t)k * s->block);
    }
    span = call_batch(w, put, n);
    w->lat[w->nlat++] = (uint64_t)(span * 1e9);
    w->busy += span;
    if (w->fail) break;
    if (!put) check_gets(w, n, !w->whole);
    j += (uint64_t)n;
  }
  w->t_end = cli_now();
  return NULL;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

  return x < y ? -1 : x > y;
}

static uint64_t pct(const uint64_t *v, size_t n, double p) {
  size_t k;

  if (n == 0) return 0;
  k = (size_t)(p * (double)n + 0.999999999);
  if (k < 1) k = 1;
  if (k > n) k = n;
  return v[k - 1];
}

/* Run one pass (puts for WL_WRITE, else gets) of every block; with sync
 * for writes.  Fills r (timing, latency) unless r is NULL (a load). */
static int run_pass(struct suite *s, const suite_adapter *a, void *st,
                    int wl, struct result *r, char *err, size_t cap) {
  int T = wl == WL_CONTENTION ? s->cthreads : s->threads, started = 0,
      rc = -1;
  struct worker *w = calloc((size_t)T, sizeof *w);
  struct start go = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};
  uint64_t *all = NULL;
  size_t nall = 0;
  double t0 = 0, t1;
  uint64_t errors = 0;

  err[0] = '\0';
  if (w == NULL) {
    snprintf(err, cap, "out of memory");
    return -1;
  }
  for (int t = 0; t < T; t++) {
    struct worker *x = &w[t];
    uint64_t calls;
    size_t bufsz;
    char msg[SUITE_MSG] = "";
    int e;

    x->s = s;
    x->a = a;
    x->t = t;
    x->wl = wl;
    x->go = &go;
    x->first = s->nblocks * (uint64_t)t / (uint64_t)T;
    x->last = s->nblocks * (uint64_t)(t + 1) / (uint64_t)T;
    x->whole = s->whole && (wl == WL_HOT || wl == WL_COLD);
    calls = (x->last - x->first + (uint64_t)s->batch - 1) / (uint64_t)s->batch;
    if (wl == WL_CONTENTION) /* calls stop at the end of the hot prefix */
      calls += (x->last - x->first) / s->hot + 1;
    if (wl == WL_REPLAY) /* a latency per request */
      calls = s->nreq / (uint64_t)T + 1;
    x->it = calloc((size_t)s->batch, sizeof *x->it);
    x->idx = calloc((size_t)s->batch, sizeof *x->idx);
    x->lat = calloc(calls + 1, sizeof *x->lat);
    bufsz = (size_t)(x->whole ? x->last - x->first : (uint64_t)s->batch) *
            s->block;
    /* read buffers on transparent huge pages, as an engine's large
     * staging buffers are (and as `cascade bench disk` reads): with 4 KiB
     * pages a 1 MiB O_DIRECT read is split where a device takes fewer
     * segments per request; systems reading through the page cache are
     * indifferent to it */
    if (wl != WL_WRITE &&
        posix_memalign((void **)&x->buf, HUGE_ALIGN, bufsz))
      x->buf = NULL;
    else if (wl != WL_WRITE)
      (void)madvise(x->buf, bufsz, MADV_HUGEPAGE); /* advice only */
    if (x->it == NULL || x->idx == NULL || x->lat == NULL ||
        (wl != WL_WRITE && !x->buf)) {
      snprintf(err, cap, "out of memory");
      goto out;
    }
    if (wl != WL_WRITE) memset(x->buf, 0, bufsz); /* no faults timed */
    e = a->open(st, t, &x->h, msg, sizeof msg);
    if (e != 0) {
      x->h = NULL;
      snprintf(err, cap, "open (thread %d): %s (%s)", t,
               msg[0] ? msg : "failed", cascade_strerror(e));
      goto out;
    }
  }
  for (; started < T; started++)
    if (pthread_create(&w[started].th, NULL, worker_main, &w[started]) !=
        0) {
      snprintf(err, cap, "cannot start a thread");
      break;
    }
  t0 = cli_now();
  pthread_mutex_lock(&go.mu);
  go.go = started < T ? -1 : 1;
  pthread_cond_broadcast(&go.cv);
  pthread_mutex_unlock(&go.mu);
  for (int t = 0; t < started; t++) pthread_join(w[t].th, NULL);
  if (started < T) goto out;
  for (int t = 0; t < T; t++) {
    errors += w[t].errors;
    if (w[t].fail && err[0] == '\0') snprintf(err, cap, "%s", w[t].msg);
  }
  t1 = t0;
  for (int t = 0; t < T; t++)
    if (w[t].t_end > t1) t1 = w[t].t_end;
  /* reads kept whole: every byte compared now, outside the timing */
  for (int t = 0; t < T && w[t].whole && !err[0]; t++)
    for (uint64_t j = w[t].first; j < w[t].last; j++)
      if (memcmp(w[t].buf + (size_t)(j - w[t].first) * s->block,
                 block_src(s, j), s->block) != 0) {
        snprintf(err, cap, "key %s: wrong bytes", s->keys[j]);
        errors++;
        break;
      }
  if (err[0] != '\0') {
    if (r != NULL) r->errors = errors;
    goto out;
  }
  if (wl == WL_WRITE) {
    char msg[SUITE_MSG] = "";
    int e = a->sync(st, msg, sizeof msg);

    if (e != 0) {
      snprintf(err, cap, "sync: %s (%s)", msg[0] ? msg : "failed",
               cascade_strerror(e));
      if (r != NULL) r->errors = errors + 1;
      goto out;
    }
  }
  if (wl == WL_WRITE) t1 = cli_now();
  if (r != NULL) {
    double secs = t1 - t0;

    if (wl != WL_WRITE && !w[0].whole) {
      secs = 0;
      for (int t = 0; t < T; t++)
        if (w[t].busy > secs) secs = w[t].busy;
    }
    for (int t = 0; t < T; t++) nall += w[t].nlat;
    all = malloc((nall + 1) * sizeof *all);
    if (all == NULL) {
      snprintf(err, cap, "out of memory");
      goto out;
    }
    nall = 0;
    r->mean = 0;
    for (int t = 0; t < T; t++)
      for (size_t k = 0; k < w[t].nlat; k++) {
        all[nall++] = w[t].lat[k];
        r->mean += (double)w[t].lat[k];
      }
    qsort(all, nall, sizeof *all, cmp_u64);
    r->calls = nall;
    r->mean = nall ? r->mean / (double)nall : 0;
    r->p50 = pct(all, nall, 0.50);
    r->p90 = pct(all, nall, 0.90);
    r->p99 = pct(all, nall, 0.99);
    r->p999 = pct(all, nall, 0.999);
    r->max = nall ? all[nall - 1] : 0;
    r->secs = secs;
    r->blocks = s->nblocks;
    if (wl == WL_REPLAY) {
      uint64_t hits = 0, looked = 0;

      r->blocks = 0;
      for (int t = 0; t < T; t++) {
        r->blocks += w[t].moved;
        hits += w[t].hits;
        looked += w[t].looked;
      }
      r->hit = looked ? (double)hits / (double)looked : 0;
      r->reqs = s->nreq;
    }
    r->bytes = r->blocks * s->block;
    r->gbps = secs > 0 ? (double)r->bytes / secs / 1e9 : 0;
    r->ops = secs > 0 ? (double)r->blocks / secs : 0;
    r->errors = errors;
  }
  rc = 0;
out:
  for (int t = 0; t < T; t++) {
    if (w[t].h != NULL) a->close(st, w[t].h);
    free(w[t].it);
    free(w[t].idx);
    free(w[t].lat);
    free(w[t].buf);
  }
  free(all);
  free(w);
  return rc;
}

/* After write: contains must count every block. */
static int check_contains(struct suite *s, const suite_adapter *a, void *st,
                          int want_all, char *err, size_t cap) {
  void *h = NULL;
  suite_item *it = calloc((size_t)s->batch, sizeof *it);
  char msg[SUITE_MSG] = "";
  uint64_t last = want_all ? s->nblocks : (uint64_t)s->batch;
  int e, rc = -1;

  if (last > s->nblocks) last = s->nblocks;
  if (a->contains == NULL) {
    free(it);
    return 0;
  }
  if (it == NULL) {
    snprintf(err, cap, "out of memory");
    return -1;
  }
  e = a->open(st, 0, &h, msg, sizeof msg);
  if (e != 0) {
    snprintf(err, cap, "open: %s (%s)", msg[0] ? msg : "failed",
             cascade_strerror(e));
    free(it);
    return -1;
  }
  for (uint64_t j = 0; j < last;) {
    int n = (int)(last - j < (uint64_t)s->batch ? last - j
                                                 : (uint64_t)s->batch);

    for (int k = 0; k < n; k++) {
      it[k].key = s->keys[j + (uint64_t)k];
      it[k].klen = KEY_LEN;
      it[k].val = NULL;
      it[k].vlen = 0;
      it[k].rc = -EINPROGRESS;
    }
    e = a->contains(h, it, n, msg, sizeof msg);
    if (e < 0) {
      snprintf(err, cap, "contains: %s (%s)", msg[0] ? msg : "failed",
               cascade_strerror(e));
      goto out;
    }
    if (want_all && e != n) {
      int k = 0;

      while (k < n - 1 && it[k].rc == 0) k++;
      snprintf(err, cap,
               "key %s: missing after write (contains: %d of the %d keys "
               "from %s)",
               s->keys[j + (uint64_t)k], e, n, s->keys[j]);
      goto out;
    }
    if (!want_all && e != 0) {
      snprintf(err, cap, "clear: %d of the %d keys from %s still present", e,
               n, s->keys[j]);
      goto out;
    }
    j += (uint64_t)n;
  }
  rc = 0;
out:
  a->close(st, h);
  free(it);
  return rc;
}

/* ---- Results -------------------------------------------------------------- */

/* With --repeat N > 1: the spread and every completed run (in the result
 * object, after its latency). */
static void json_runs(const struct result *r, FILE *f) {
  fprintf(f, ",\"runs_completed\":%d,\"gbps_min\":", r->nrun);
  cli_json_num(f, r->nrun ? r->gbps_min : 0);
  fprintf(f, ",\"gbps_max\":");
  cli_json_num(f, r->nrun ? r->gbps_max : 0);
  fprintf(f, ",\"median\":\"gbps, ops_per_sec, seconds: medians of the "
             "runs; latency: of the median run (rank (n-1)/2 by gbps)\"");
  if (r->nrun > 0) fprintf(f, ",\"median_run\":%d", r->mrun + 1);
  fprintf(f, ",\"runs\":[");
  for (int k = 0; k < r->nrun; k++) {
    const struct run *u = &r->run[k];

    fprintf(f, "%s{\"run\":%d,\"seconds\":%.6f,\"gbps\":", k ? "," : "",
            k + 1, u->secs);
    cli_json_num(f, u->gbps);
    fprintf(f, ",\"ops_per_sec\":");
    cli_json_num(f, u->ops);
    fprintf(f,
            ",\"calls\":%" PRIu64 ",\"errors\":%" PRIu64
            ",\"latency_ns\":{\"p50\":%" PRIu64 ",\"p90\":%" PRIu64
            ",\"p99\":%" PRIu64 ",\"p999\":%" PRIu64 ",\"max\":%" PRIu64
            ",\"mean\":%.0f}}",
            u->calls, u->errors, u->p50, u->p90, u->p99, u->p999, u->max,
            u->mean);
  }
  fprintf(f, "]");
}

static void json_result(const struct suite *s, const struct result *r,
                        FILE *f) {
  static const char *const status[] = {"ok", "failed", "skipped"};

  fprintf(f, "{\"bench\":\"suite\",\"system\":");
  cli_json_str(f, r->a->name);
  fprintf(f, ",\"kind\":");
  cli_json_str(f, r->a->kind);
  fprintf(f, ",\"version\":");
  cli_json_str(f, r->version);
  fprintf(f, ",\"workload\":\"%s\",\"nodes\":1,\"timestamp\":\"%s\"",
          wl_name[r->wl], s->stamp);
  fprintf(f, ",\"status\":\"%s\",\"reason\":", status[r->status]);
  cli_json_str(f, r->reason);
  fprintf(f,
          ",\"config\":{\"block\":%" PRIu64 ",\"blocks\":%" PRIu64
          ",\"total_bytes\":%" PRIu64 ",\"threads\":%d,\"batch\":%d,"
          "\"repeat\":%d,\"seed\":%" PRIu64 ",\"write_pct\":%d,"
          "\"contention_threads\":%d,\"hot_blocks\":%" PRIu64 ",\"model\":",
          s->block, s->nblocks, s->block * s->nblocks,
          r->wl == WL_CONTENTION ? s->cthreads : s->threads, s->batch,
          s->repeat, s->seed, s->write_pct, s->cthreads, s->hot);
  if (s->model != NULL) {
    cli_json_str(f, s->model);
    fprintf(f, ",\"tokens_per_block\":%" PRIu64, s->tpb);
  } else {
    fprintf(f, "null");
  }
  fprintf(f, ",\"quick\":%s,\"dir\":", s->quick ? "true" : "false");
  cli_json_str(f, s->work);
  fprintf(f, ",\"cascaded\":");
  if (s->have_cascaded)
    cli_json_str(f, s->cascaded);
  else
    fprintf(f, "null");
  fprintf(f, ",\"keys\":\"blk:%%016llx\",\"data\":\"windows of a "
             "seeded splitmix64 pool, distinct per block\"}");
  fprintf(f, ",\"machine\":{\"host\":");
  cli_json_str(f, s->host);
  fprintf(f, ",\"cpu\":");
  cli_json_str(f, s->m.cpu);
  fprintf(f, ",\"cores\":%ld,\"memory\":%" PRIu64 ",\"l3\":%" PRIu64
             ",\"kernel\":",
          s->m.cores, s->m.mem, s->m.l3);
  cli_json_str(f, s->m.kernel);
  fprintf(f, ",\"thp\":");
  cli_json_str(f, s->m.thp);
  fprintf(f, ",\"fs\":");
  cli_json_str(f, s->fs_type);
  fprintf(f, ",\"device\":");
  cli_json_str(f, s->device);
  fprintf(f, "}");
  if (r->status != ST_SKIPPED) {
    fprintf(f,
            ",\"result\":{\"seconds\":%.6f,\"bytes\":%" PRIu64
            ",\"blocks\":%" PRIu64 ",\"gbps\":",
            r->secs, r->bytes, r->blocks);
    cli_json_num(f, r->gbps);
    fprintf(f, ",\"ops_per_sec\":");
    cli_json_num(f, r->ops);
    fprintf(f,
            ",\"calls\":%" PRIu64 ",\"errors\":%" PRIu64
            ",\"timing\":\"%s\","
            "\"latency_ns\":{\"per\":\"call of up to %d blocks\","
            "\"p50\":%" PRIu64 ",\"p90\":%" PRIu64 ",\"p99\":%" PRIu64
            ",\"p999\":%" PRIu64 ",\"max\":%" PRIu64 ",\"mean\":%.0f}",
            r->calls, r->errors,
            r->wl == WL_WRITE ? "one span, first put to end of sync"
            : s->whole && (r->wl == WL_HOT || r->wl == WL_COLD)
                ? "one span, first get to last get; every byte "
                  "compared after it"
            : r->wl == WL_MIXED || r->wl == WL_REPLAY
                ? "largest per-thread sum of put- and get-call spans, "
                  "every byte read compared between calls"
                : "largest per-thread sum of get-call spans, every "
                  "byte compared between calls",
            s->batch, r->p50, r->p90, r->p99, r->p999, r->max, r->mean);
    if (r->wl == WL_REPLAY) {
      fprintf(f, ",\"replay\":{\"trace\":");
      cli_json_str(f, s->trace_desc);
      fprintf(f, ",\"requests\":%" PRIu64 ",\"input_blocks\":%" PRIu64
                 ",\"prefix_hit_ratio\":",
              r->reqs, s->rblocks);
      cli_json_num(f, r->hit);
      fprintf(f, ",\"requests_per_sec\":");
      cli_json_num(f, r->secs > 0 ? (double)r->reqs / r->secs : 0);
      fprintf(f, ",\"latency\":\"per request: the spans of its get and "
                 "put calls\"}");
    }
    if (s->repeat > 1) json_runs(r, f);
    fprintf(f, "}");
  }
  fprintf(f, "}\n");
}

static void write_result(struct suite *s, const struct result *r) {
  char path[DIR_MAX + 128], tmp[DIR_MAX + 140];
  FILE *f;

  if (s->json) json_result(s, r, stdout);
  if (r->status == ST_SKIPPED) return;
  snprintf(path, sizeof path, "%s/%s_%s_1n_%s.json", s->results, r->a->name,
           wl_name[r->wl], s->stamp);
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  f = fopen(tmp, "w");
  if (f == NULL) {
    cli_err("bench suite: cannot write %s: %s", tmp, strerror(errno));
    return;
  }
  json_result(s, r, f);
  if (fclose(f) != 0 || rename(tmp, path) != 0) {
    cli_err("bench suite: cannot write %s: %s", path, strerror(errno));
    unlink(tmp);
  }
}

static void print_table(const struct suite *s) {
  static const char *const hd[9] = {"system",  "workload", "block",
                                    "GB/s",    "ops/s",    "p50/call",
                                    "p99/call", "errors",  "vs best baseline"};
  /* --repeat N > 1: medians, and a min-max GB/s column after GB/s */
  static const char *const hdr[10] = {
      "system",   "workload", "block",  "GB/s", "min-max GB/s",
      "ops/s",    "p50/call", "p99/call", "errors", "vs best baseline"};
  int rp = s->repeat > 1;
  cli_table *t = rp ? cli_table_new(10, hdr, "lllrrrrrrl")
                    : cli_table_new(9, hd, "lllrrrrrl");
  char bs[32];

  if (t == NULL) return;
  cli_fmt_size(s->block, bs, sizeof bs);
  for (int wl = 0; wl < NWL; wl++) {
    const struct result *best = NULL;

    for (int k = 0; k < s->nres; k++) {
      const struct result *r = &s->res[k];

      if (r->wl == wl && r->status == ST_OK && cli_is_baseline(r->a->name) &&
          (best == NULL || r->gbps > best->gbps))
        best = r;
    }
    for (int k = 0; k < s->nres; k++) {
      const struct result *r = &s->res[k];
      char g[32] = "", o[32] = "", p50[32] = "", p99[32] = "", e[32] = "",
           vs[96] = "", mm[64] = "";
      const char *cells[10];

      if (r->wl != wl) continue;
      if (r->status == ST_OK) {
        snprintf(g, sizeof g, "%.3f", r->gbps);
        snprintf(o, sizeof o, "%.0f", r->ops);
        if (r->nrun > 0)
          snprintf(mm, sizeof mm, "%.3f-%.3f", r->gbps_min, r->gbps_max);
        if (r->nrun > 0 && r->nrun < s->repeat)
          snprintf(mm + strlen(mm), sizeof mm - strlen(mm), " (%d run%s)",
                   r->nrun, r->nrun == 1 ? "" : "s");
        cli_fmt_ns(r->p50, p50, sizeof p50);
        cli_fmt_ns(r->p99, p99, sizeof p99);
        snprintf(e, sizeof e, "%" PRIu64, r->errors);
        if (best != NULL && best->gbps > 0)
          snprintf(vs, sizeof vs, "%.2fx %s", r->gbps / best->gbps,
                   best->a->name);
        else
          snprintf(vs, sizeof vs, "n/a");
      } else {
        snprintf(g, sizeof g, "%s",
                 r->status == ST_FAILED ? "FAILED" : "skipped");
        snprintf(vs, sizeof vs, "%.80s", r->reason);
        if (r->status == ST_FAILED)
          snprintf(e, sizeof e, "%" PRIu64, r->errors);
      }
      cells[0] = r->a->name;
      cells[1] = wl_name[wl];
      cells[2] = bs;
      cells[3] = g;
      cells[4] = o;
      cells[5] = p50;
      cells[6] = p99;
      cells[7] = e;
      cells[8] = vs;
      if (rp) {
        for (int c = 9; c > 4; c--) cells[c] = cells[c - 1];
        cells[4] = mm;
      }
      cli_table_row(t, cells);
    }
  }
  cli_table_print(t, s->out, "  ");
  cli_table_free(t);
}

static void print_header(const struct suite *s) {
  char bs[32], tot[32], mem[32];

  fprintf(s->out, "cascade bench suite: %s\n", s->stamp);
  fprintf(s->out, "machine:  %s, %ld cores, %s memory; %s\n", s->m.cpu, s->m.cores,
         cli_fmt_size(s->m.mem, mem, sizeof mem), s->m.kernel);
  fprintf(s->out, "data:     %s (%s on %s)\n", s->work, s->fs_type,
         s->device[0] ? s->device : "?");
  fprintf(s->out, "blocks:   %" PRIu64 " x %s = %s", s->nblocks,
         cli_fmt_size(s->block, bs, sizeof bs),
         cli_fmt_size(s->nblocks * s->block, tot, sizeof tot));
  if (s->model != NULL)
    fprintf(s->out, " (%s, %" PRIu64 " tokens per block)", s->model, s->tpb);
  fprintf(s->out, "; %d thread%s, %d blocks per call\n", s->threads,
         s->threads == 1 ? "" : "s", s->batch);
  fprintf(s->out,
          "latency:  per call of %d blocks; reads: every byte compared, "
          "outside the timing%s\n",
          s->batch, s->whole ? "" : " (between calls)");
  if (s->repeat > 1)
    fprintf(s->out,
            "repeat:   %d runs of every system, interleaved by system; "
            "medians, min-max GB/s,\n"
            "          latency of the median run (rank (n-1)/2 by GB/s)\n",
            s->repeat);
  fprintf(s->out, "results:  %s/<system>_<workload>_1n_%s.json\n\n", s->results,
         s->stamp);
  fflush(s->out);
}

/* ---- One system ------------------------------------------------------------ */

static struct result *new_result(struct suite *s, const suite_adapter *a,
                                 int wl, const char *version) {
  struct result *r = &s->res[s->nres++];

  memset(r, 0, sizeof *r);
  r->a = a;
  r->wl = wl;
  snprintf(r->version, sizeof r->version, "%s", version ? version : "?");
  return r;
}

/* The row of (a, wl): made in round 0, found in the later rounds (a system
 * that completes round 0 has a row for every workload run). */
static struct result *get_result(struct suite *s, const suite_adapter *a,
                                 int wl, const char *version, int rep) {
  if (rep > 0)
    for (int k = 0; k < s->nres; k++)
      if (s->res[k].a == a && s->res[k].wl == wl) return &s->res[k];
  return new_result(s, a, wl, version);
}

static void fail_result(struct suite *s, struct result *r, const char *what,
                        const char *err, int *bad) {
  *bad = 1;
  r->status = ST_FAILED;
  snprintf(r->reason, sizeof r->reason, "%s: %s", what, err);
  cli_err("bench suite: %s FAILED: %s: %s", r->a->name, what, err);
  s->failed = 1;
}

/* Before a run: no measures (the runs before it are kept in run). */
static void clear_measures(struct result *r) {
  r->secs = r->gbps = r->ops = r->mean = 0;
  r->bytes = r->blocks = r->calls = r->errors = 0;
  r->p50 = r->p90 = r->p99 = r->p999 = r->max = 0;
}

/* Keep the measures of the run just made (run_pass filled r). */
static void add_run(struct result *r) {
  struct run *u;

  if (r->nrun >= MAX_REPEAT) return;
  u = &r->run[r->nrun++];
  u->secs = r->secs;
  u->gbps = r->gbps;
  u->ops = r->ops;
  u->mean = r->mean;
  u->calls = r->calls;
  u->errors = r->errors;
  u->p50 = r->p50;
  u->p90 = r->p90;
  u->p99 = r->p99;
  u->p999 = r->p999;
  u->max = r->max;
}

/* A row that ran: medians of its runs, min-max, the latency of the
 * median run (rank (n-1)/2 by GB/s).  One run gives that run's values. */
static void finish_result(struct result *r) {
  double g[MAX_REPEAT], o[MAX_REPEAT], t[MAX_REPEAT];
  int idx[MAX_REPEAT], n = r->nrun;
  const struct run *m;

  if (r->status != ST_OK || n == 0) return;
  for (int k = 0; k < n; k++) {
    g[k] = r->run[k].gbps;
    o[k] = r->run[k].ops;
    t[k] = r->run[k].secs;
    idx[k] = k;
  }
  for (int i = 1; i < n; i++) /* stable: equal rates keep run order */
    for (int j = i; j > 0 && r->run[idx[j - 1]].gbps > r->run[idx[j]].gbps;
         j--) {
      int x = idx[j];

      idx[j] = idx[j - 1];
      idx[j - 1] = x;
    }
  r->mrun = idx[(n - 1) / 2];
  r->gbps_min = r->run[idx[0]].gbps;
  r->gbps_max = r->run[idx[n - 1]].gbps;
  r->gbps = cli_median(g, n);
  r->ops = cli_median(o, n);
  r->secs = cli_median(t, n);
  m = &r->run[r->mrun];
  r->mean = m->mean;
  r->calls = m->calls;
  r->p50 = m->p50;
  r->p90 = m->p90;
  r->p99 = m->p99;
  r->p999 = m->p999;
  r->max = m->max;
  r->errors = 0;
  for (int k = 0; k < n; k++) r->errors += r->run[k].errors;
}

/* After a round of system si: count its steps (and those of the rounds it
 * will not run); after its last round, or a failure, its rows are done. */
static void system_rows(struct suite *s, int si, int rep, int step0,
                        int nwl) {
  s->step = step0 + nwl * (s->done[si] ? s->repeat - rep : 1);
  if (!s->done[si] && rep < s->repeat - 1) return;
  for (int k = 0; k < s->nres; k++)
    if (s->res[k].a == s->sys[si]) {
      finish_result(&s->res[k]);
      write_result(s, &s->res[k]);
    }
}

/* One round (rep, from 0) of the system s->sys[si]: init, the workloads,
 * clear, fini.  A failure or a skip makes the system done (no more rounds);
 * its rows are finished and written when it is done or after its last
 * round. */
static void run_system(struct suite *s, int si, int rep) {
  const suite_adapter *a = s->sys[si];
  suite_cfg cfg;
  char dir[DIR_MAX + 64], msg[SUITE_MSG] = "", err[MSG_MAX] = "",
       what[160], run[48] = "", stage[96];
  const char *version = NULL;
  void *st = NULL;
  int loaded = 0, bad = 0, e, step0 = s->step, nwl = 0;

  for (int wl = 0; wl < NWL; wl++) nwl += s->wl[wl];
  if (s->repeat > 1) snprintf(run, sizeof run, " (run %d/%d)", rep + 1,
                              s->repeat);
  snprintf(dir, sizeof dir, "%s/%s", s->work, a->name);
  (void)cli_rm_tree(dir, 0); /* a kept earlier round's */
  if (mkdir(dir, 0755) != 0) {
    cli_err("bench suite: %s: mkdir %s: %s", a->name, dir, strerror(errno));
    s->failed = 1;
    s->done[si] = 1;
    goto rows;
  }
  memset(&cfg, 0, sizeof cfg);
  cfg.block = s->block;
  cfg.nblocks = s->nblocks;
  /* mixed puts new blocks: at most one per block it walks */
  cfg.capacity = s->nblocks * (s->wl[WL_MIXED] ? 2 : 1);
  cfg.threads = s->threads > s->cthreads ? s->threads : s->cthreads;
  cfg.batch = s->batch;
  cfg.dir = dir;
  cfg.cascaded = s->have_cascaded ? s->cascaded : NULL;
  cfg.seed = s->seed;

  snprintf(what, sizeof what, "%s: starting%s", a->name, run);
  cli_progress(s->step, s->nsteps, what);
  e = a->init(&cfg, &st, msg, sizeof msg);
  if (e == SUITE_SKIP && rep == 0) {
    cli_err("bench suite: %s skipped: %s", a->name, msg);
    for (int wl = 0; wl < NWL; wl++)
      if (s->wl[wl]) {
        struct result *r = new_result(s, a, wl, NULL);

        r->status = ST_SKIPPED;
        snprintf(r->reason, sizeof r->reason, "%s", msg);
      }
    if (!s->keep) cli_rm_tree(dir, 0);
    s->done[si] = 1;
    goto rows;
  }
  if (e != 0) {
    struct result *r;
    int first = WL_WRITE;

    if (rep > 0) /* the row of the first workload run */
      while (first < NWL - 1 && !s->wl[first]) first++;
    r = get_result(s, a, first, NULL, rep);
    snprintf(err, sizeof err, "%s (%s)", msg[0] ? msg : "failed",
             e == SUITE_SKIP ? "skipped after a run" : cascade_strerror(e));
    snprintf(stage, sizeof stage, "init%s", run);
    fail_result(s, r, stage, err, &bad);
    if (!s->keep) cli_rm_tree(dir, 0);
    s->done[si] = 1;
    goto rows;
  }
  version = a->version ? a->version(st) : NULL;

  for (int wl = 0; wl < NWL; wl++) {
    struct result *r;

    if (!s->wl[wl]) continue;
    s->step++;
    r = get_result(s, a, wl, version, rep);
    err[0] = '\0';
    if (wl == WL_REPLAY) { /* from an empty store (untimed clear) */
      if (s->nreq == 0 && r->nrun == 0) {
        r->status = ST_SKIPPED;
        snprintf(r->reason, sizeof r->reason, "%s", s->trace_desc);
        continue;
      }
      msg[0] = '\0';
      e = a->clear(st, msg, sizeof msg);
      if (e != 0) {
        snprintf(err, sizeof err, "%s (%s)", msg[0] ? msg : "failed",
                 cascade_strerror(e));
        snprintf(stage, sizeof stage, "clear before replay%s", run);
        fail_result(s, r, stage, err, &bad);
        break;
      }
      loaded = 1; /* nothing to load: it stores what it misses */
    }
    if (wl != WL_WRITE && !loaded) {
      snprintf(what, sizeof what, "%s: loading%s", a->name, run);
      cli_progress(s->step, s->nsteps, what);
      if (run_pass(s, a, st, WL_WRITE, NULL, err, sizeof err) != 0 ||
          check_contains(s, a, st, 1, err, sizeof err) != 0) {
        snprintf(stage, sizeof stage, "load%s", run);
        fail_result(s, r, stage, err, &bad);
        break;
      }
      loaded = 1;
    }
    if (wl == WL_COLD) {
      msg[0] = '\0';
      e = a->cold(st, msg, sizeof msg);
      if (e == -ENOTSUP && r->nrun == 0) {
        r->status = ST_SKIPPED;
        snprintf(r->reason, sizeof r->reason, "no cold read (%s%s%s)",
                 a->kind, msg[0] ? ": " : "", msg);
        continue;
      }
      if (e != 0) {
        snprintf(err, sizeof err, "%s (%s)", msg[0] ? msg : "failed",
                 cascade_strerror(e));
        snprintf(stage, sizeof stage, "cold%s", run);
        fail_result(s, r, stage, err, &bad);
        break;
      }
    }
    snprintf(what, sizeof what, "%s: %s%s", a->name, wl_name[wl], run);
    cli_progress(s->step, s->nsteps, what);
    clear_measures(r); /* a run that fails shows none, as in round 0 */
    if (run_pass(s, a, st, wl, r, err, sizeof err) != 0 ||
        (wl == WL_WRITE && check_contains(s, a, st, 1, err, sizeof err))) {
      snprintf(stage, sizeof stage, "%s%s", wl_name[wl], run);
      fail_result(s, r, stage, err, &bad);
      break;
    }
    add_run(r);
    if (wl == WL_WRITE) loaded = 1;
  }
  if (!bad) {
    /* clear, checked on the first keys */
    msg[0] = '\0';
    e = a->clear(st, msg, sizeof msg);
    if (e != 0 || check_contains(s, a, st, 0, err, sizeof err) != 0) {
      struct result *last = NULL;

      if (e != 0)
        snprintf(err, sizeof err, "%s (%s)", msg[0] ? msg : "failed",
                 cascade_strerror(e));
      for (int k = 0; k < s->nres; k++)
        if (s->res[k].a == a) last = &s->res[k];
      if (last != NULL) {
        /* the failure goes on the system's last row (and its file) */
        last->status = ST_FAILED;
        snprintf(last->reason, sizeof last->reason, "clear%s: %.400s", run,
                 err);
      }
      cli_err("bench suite: %s FAILED: clear%s: %s", a->name, run, err);
      s->failed = 1;
      bad = 1;
    }
  }
  if (bad) s->done[si] = 1;
  a->fini(st);
  if (!s->keep) cli_rm_tree(dir, 0);
  /* settle before the next system: its files' deletion and the page
   * cache's dirty pages written back now, not while the next one is
   * timed */
  sync();

rows:
  system_rows(s, si, rep, step0, nwl);
}

/* ---- Peers run by their Python drivers ---------------------------------------- */

#define DRIVER_TIMEOUT_S 1800

/* The directory of the drivers: $CASCADE_PEER_DRIVERS, else bench/peers
 * of the source tree the binary was built in (build/bin/cascade ->
 * ../../bench/peers), else bench/peers under the current directory. */
static int driver_dir(char *out, size_t cap) {
  const char *env = getenv("CASCADE_PEER_DRIVERS");
  char exe[DIR_MAX];

  if (env != NULL && env[0] != '\0') {
    snprintf(out, cap, "%s", env);
    return access(out, R_OK);
  }
  if (cli_exe_dir(exe, sizeof exe, 3) == 0) {
    snprintf(out, cap, "%.1000s/bench/peers", exe);
    if (access(out, R_OK) == 0) return 0;
  }
  snprintf(out, cap, "bench/peers");
  return access(out, R_OK);
}

/* Run the driver to its end (or DRIVER_TIMEOUT_S): 0, or -1 with err. */
static int driver_exec(char *const *argv, const char *log, char *err,
                       size_t cap) {
  pid_t pid = fork();
  int st = 0;

  if (pid < 0) {
    snprintf(err, cap, "fork: %s", strerror(errno));
    return -1;
  }
  if (pid == 0) {
    int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

    setpgid(0, 0); /* its servers go with it on a timeout */
    if (fd >= 0) {
      dup2(fd, STDOUT_FILENO);
      dup2(fd, STDERR_FILENO);
    }
    execv(argv[0], argv);
    _exit(127);
  }
  for (int ms = 0;; ms += 100) {
    pid_t r = waitpid(pid, &st, WNOHANG);

    if (r == pid) break;
    if (r < 0 && errno != EINTR) {
      snprintf(err, cap, "waitpid: %s", strerror(errno));
      return -1;
    }
    if (ms >= DRIVER_TIMEOUT_S * 1000) {
      kill(-pid, SIGKILL);
      waitpid(pid, &st, 0);
      snprintf(err, cap, "no result after %d s: killed (log: %.400s)",
               DRIVER_TIMEOUT_S, log);
      return -1;
    }
    usleep(100000);
  }
  kill(-pid, SIGKILL); /* anything it left behind */
  if (!WIFEXITED(st) || WEXITSTATUS(st) == 127) {
    snprintf(err, cap, "the driver did not run (status %d; log: %.400s)", st,
             log);
    return -1;
  }
  return 0; /* exit 1 = a workload failed: its row says so */
}

/* A number of a driver's result: 0 if absent (it is checked elsewhere). */
static double jnum0(json_object *o, const char *k) {
  double v = cli_jnum(o, k);

  return isfinite(v) ? v : 0;
}

/* One round of a peer run by its driver: the workloads it runs (write,
 * hot-read, cold-read; one thread), its rows from its JSON lines. */
static void run_driver(struct suite *s, int si, int rep) {
  const suite_adapter *a = s->sys[si];
  char dir[DIR_MAX + 64], ddir[DIR_MAX], py[DIR_MAX + 64],
       script[DIR_MAX + 64], out[DIR_MAX + 96], log[DIR_MAX + 96],
       err[MSG_MAX] = "", what[160], run[48] = "", wls[64] = "", num[4][32];
  const char *peers = s->peers_opt ? s->peers_opt
                      : getenv("CASCADE_PEERS") ? getenv("CASCADE_PEERS")
                                                : ".peers";
  char *argv[32];
  int argc = 0, step0 = s->step, nwl = 0, bad = 0, seen[NWL] = {0};
  const char *skip = NULL;
  char why[MSG_MAX];
  FILE *f = NULL;

  for (int wl = 0; wl < NWL; wl++) nwl += s->wl[wl];
  if (s->repeat > 1)
    snprintf(run, sizeof run, " (run %d/%d)", rep + 1, s->repeat);
  snprintf(py, sizeof py, "%s/%s/bin/python", peers, a->venv);
  if (driver_dir(ddir, sizeof ddir) != 0) {
    snprintf(why, sizeof why, "its driver (%s) is not found: set "
             "CASCADE_PEER_DRIVERS to the bench/peers directory", a->driver);
    skip = why;
  } else if (access(py, X_OK) != 0) {
    snprintf(why, sizeof why, "not installed: `make bench` installs it "
             "(python3 -m venv %s/%s && %s/%s/bin/pip install %s)", peers,
             a->venv, peers, a->venv, a->pip);
    skip = why;
  } else if (s->threads > 1) {
    snprintf(why, sizeof why, "its driver runs one thread (--threads %d)",
             s->threads);
    skip = why;
  }
  if (skip != NULL) {
    if (rep == 0) {
      cli_err("bench suite: %s skipped: %s", a->name, skip);
      for (int wl = 0; wl < NWL; wl++)
        if (s->wl[wl]) {
          struct result *r = new_result(s, a, wl, NULL);

          r->status = ST_SKIPPED;
          snprintf(r->reason, sizeof r->reason, "%s", skip);
        }
    }
    s->done[si] = 1;
    system_rows(s, si, rep, step0, nwl);
    return;
  }
  snprintf(script, sizeof script, "%s/%s", ddir, a->driver);
  snprintf(dir, sizeof dir, "%s/%s", s->work, a->name);
  snprintf(out, sizeof out, "%s/results.jsonl", dir);
  snprintf(log, sizeof log, "%s/../%s-driver.log", dir, a->name);
  for (int wl = 0; wl < NWL; wl++)
    if (s->wl[wl] && (wl == WL_WRITE || wl == WL_HOT || wl == WL_COLD))
      snprintf(wls + strlen(wls), sizeof wls - strlen(wls), "%s%s",
               wls[0] ? "," : "", wl_name[wl]);
  if (wls[0] == '\0') snprintf(wls, sizeof wls, "write");
  snprintf(num[0], sizeof num[0], "%" PRIu64, s->block);
  snprintf(num[1], sizeof num[1], "%" PRIu64, s->nblocks);
  snprintf(num[2], sizeof num[2], "%d", s->batch);
  snprintf(num[3], sizeof num[3], "0x%" PRIx64, s->seed);
  argv[argc++] = py;
  argv[argc++] = script;
  argv[argc++] = "--block";
  argv[argc++] = num[0];
  argv[argc++] = "--blocks";
  argv[argc++] = num[1];
  argv[argc++] = "--batch";
  argv[argc++] = num[2];
  argv[argc++] = "--seed";
  argv[argc++] = num[3];
  argv[argc++] = "--workloads";
  argv[argc++] = wls;
  argv[argc++] = "--dir";
  argv[argc++] = dir;
  argv[argc++] = "--out";
  argv[argc++] = out;
  for (int k = 0; a->dargs[k] != NULL && argc < 31; k++)
    argv[argc++] = (char *)a->dargs[k];
  argv[argc] = NULL;

  snprintf(what, sizeof what, "%s: driver%s", a->name, run);
  cli_progress(s->step, s->nsteps, what);
  (void)cli_rm_tree(dir, 0); /* a kept earlier round's */
  if (mkdir(dir, 0755) != 0) {
    snprintf(err, sizeof err, "mkdir %.400s: %s", dir, strerror(errno));
  } else if (driver_exec(argv, log, err, sizeof err) == 0 &&
             (f = fopen(out, "r")) == NULL) {
    snprintf(err, sizeof err, "no results from the driver (log: %.400s)", log);
  } else if (err[0] == '\0' && f != NULL) {
    char line[1 << 16];

    while (fgets(line, sizeof line, f) != NULL) {
      json_object *o = json_tokener_parse(line), *res, *lat;
      const char *w = o ? cli_jstr(o, "workload") : NULL,
                 *st = o ? cli_jstr(o, "status") : NULL;
      int wl = -1;
      struct result *r;

      for (int k = 0; w != NULL && k < NWL; k++)
        if (strcmp(w, wl_name[k]) == 0) wl = k;
      if (o == NULL || st == NULL || wl < 0 || !s->wl[wl]) {
        if (o == NULL)
          snprintf(err, sizeof err, "the driver wrote a line that is not "
                   "JSON (%.400s)", out);
        json_object_put(o);
        continue;
      }
      seen[wl] = 1;
      /* a failure is reported on the row of the workload it names, which
       * may have a result already (the driver stops at a failure) */
      r = NULL;
      for (int k = 0; k < s->nres && r == NULL; k++)
        if (s->res[k].a == a && s->res[k].wl == wl) r = &s->res[k];
      if (r == NULL) r = new_result(s, a, wl, cli_jstr(o, "version"));
      if (strcmp(st, "skipped") == 0 && r->nrun == 0) {
        r->status = ST_SKIPPED;
        snprintf(r->reason, sizeof r->reason, "%s",
                 cli_jstr(o, "reason") ? cli_jstr(o, "reason") : "skipped");
      } else if (strcmp(st, "ok") == 0 &&
                 json_object_object_get_ex(o, "result", &res) &&
                 json_object_object_get_ex(res, "latency_ns", &lat)) {
        clear_measures(r);
        r->secs = jnum0(res, "seconds");
        r->bytes = (uint64_t)jnum0(res, "bytes");
        r->blocks = (uint64_t)jnum0(res, "blocks");
        r->gbps = jnum0(res, "gbps");
        r->ops = jnum0(res, "ops_per_sec");
        r->calls = (uint64_t)jnum0(res, "calls");
        r->errors = (uint64_t)jnum0(res, "errors");
        r->p50 = (uint64_t)jnum0(lat, "p50");
        r->p90 = (uint64_t)jnum0(lat, "p90");
        r->p99 = (uint64_t)jnum0(lat, "p99");
        r->p999 = (uint64_t)jnum0(lat, "p999");
        r->max = (uint64_t)jnum0(lat, "max");
        r->mean = jnum0(lat, "mean");
        add_run(r);
      } else {
        char stage[96];

        snprintf(stage, sizeof stage, "%s%s", wl_name[wl], run);
        fail_result(s, r, stage,
                    cli_jstr(o, "reason") ? cli_jstr(o, "reason") : "failed", &bad);
      }
      json_object_put(o);
    }
    fclose(f);
  }
  if (err[0] != '\0') {
    int first = 0;

    while (first < NWL - 1 && !s->wl[first]) first++;
    fail_result(s, get_result(s, a, first, NULL, rep), "driver", err, &bad);
  }
  /* the workloads it does not run, or did not answer for */
  for (int wl = 0; wl < NWL && !bad; wl++)
    if (s->wl[wl] && !seen[wl] && rep == 0) {
      struct result *r = new_result(s, a, wl, NULL);

      r->status = ST_SKIPPED;
      snprintf(r->reason, sizeof r->reason, "%s",
               wl == WL_MIXED || wl == WL_CONTENTION || wl == WL_REPLAY
                   ? "its driver runs write, hot-read and cold-read only"
                   : wl == WL_COLD ? "no cold read (memory)"
                                   : "its driver gave no result");
    }
  if (bad) s->done[si] = 1;
  if (!s->keep) cli_rm_tree(dir, 0);
  sync();
  system_rows(s, si, rep, step0, nwl);
}

/* ---- The replay's trace ----------------------------------------------------- */

/* The trace (--trace: a Mooncake JSONL file, or an Azure LLM CSV by its
 * .csv name, 16 tokens per block; else the built-in synthetic chat/RAG
 * workload, seeded from --seed), and how many of its leading requests the
 * working set holds: every input block id below nblocks (the trace numbers
 * ids in order of first appearance).  0, or -1 with a message. */
static int load_replay(struct suite *s) {
  char err[512] = "";
  int rc;
  size_t n = s->trace_opt ? strlen(s->trace_opt) : 0;

  if (s->trace_opt != NULL && n >= 4 &&
      strcmp(s->trace_opt + n - 4, ".csv") == 0) {
    sim_trace_init(&s->tr, 16, "azure");
    rc = sim_trace_load_azure(&s->tr, s->trace_opt, 0, 16, 0, err,
                              sizeof err);
  } else if (s->trace_opt != NULL) {
    sim_trace_init(&s->tr, 512, "mooncake");
    rc = sim_trace_load_mooncake(&s->tr, s->trace_opt, 0, err, sizeof err);
  } else {
    sim_synth syn;

    /* a suite block is a large KV chunk (256 tokens): prompts, documents,
     * messages and answers of a few blocks each */
    sim_synth_defaults(&syn);
    syn.seed = s->seed;
    syn.tpb = 256;
    syn.system_blocks = 4;
    syn.doc_blocks = 4;
    syn.user_blocks = 1;
    syn.output_blocks = 1;
    s->with_output = 1; /* the next turn's input repeats the answer's ids */
    sim_trace_init(&s->tr, syn.tpb, "synthetic");
    rc = sim_trace_synth(&s->tr, &syn, err, sizeof err);
  }
  if (rc < 0) {
    cli_err("bench suite: --trace: %s", err);
    return -1;
  }
  for (s->nreq = 0; s->nreq < s->tr.nreq; s->nreq++) {
    const sim_req *q = &s->tr.req[s->nreq];
    int fits = 1;

    for (uint32_t i = 0; i < q->nin + (s->with_output ? q->nout : 0) && fits;
         i++)
      fits = s->tr.blk[q->off + i] < s->nblocks;
    if (!fits) break;
    s->rblocks += q->nin;
  }
  if (s->nreq == 0)
    snprintf(s->trace_desc, sizeof s->trace_desc,
             "the trace's first request needs more than %" PRIu64
             " distinct blocks (--blocks)", s->nblocks);
  else
    snprintf(s->trace_desc, sizeof s->trace_desc,
             "%.120s: the first %zu of %zu requests (%" PRIu64
             " input blocks, at most %" PRIu64 " distinct%s)",
             s->trace_opt ? s->trace_opt : "synthetic chat/RAG", s->nreq,
             s->tr.nreq, s->rblocks, s->nblocks,
             s->with_output ? "; answers stored" : "");
  return 0;
}

/* ---- The data directory ----------------------------------------------------- */

/* The file system of path and the mount's source (cli_fs_facts). */
static void fs_facts(struct suite *s, const char *path) {
  (void)cli_fs_facts(path, s->fs_type, sizeof s->fs_type, s->device,
                     sizeof s->device);
}

static int make_work_dir(struct suite *s) {
  const char *tmp = getenv("TMPDIR");

  snprintf(s->base, sizeof s->base, "%s",
           s->dir_opt != NULL                ? s->dir_opt
           : tmp != NULL && tmp[0] != '\0' ? tmp
                                             : "/var/tmp");
  if (snprintf(s->work, sizeof s->work, "%s/cascade-bench-suite.XXXXXX",
               s->base) >= (int)sizeof s->work - 64) {
    cli_err("bench suite: %s: path too long", s->base);
    s->work[0] = '\0';
    return -1;
  }
  if (mkdtemp(s->work) == NULL) {
    cli_err("bench suite: cannot make a directory in %s: %s", s->base,
            strerror(errno));
    s->work[0] = '\0';
    return -1;
  }
  return 0;
}

/* ---- Options ------------------------------------------------------------------ */

static int parse_u64(const char *opt, const char *v, uint64_t lo, uint64_t hi,
                     uint64_t *out) {
  char *end;
  unsigned long long n;

  errno = 0;
  n = strtoull(v, &end, 0);
  if (errno != 0 || end == v || *end != '\0' || n < lo || n > hi) {
    cli_err("bench suite: %s %s: expected %" PRIu64 " to %" PRIu64, opt, v,
            lo, hi);
    return -1;
  }
  *out = n;
  return 0;
}

static const suite_adapter *find_system(const char *name, size_t len,
                                        int *known) {
  static const char *const names[NADAPTERS] = {
      "cascade", "cascade-shm", "cascade-server", "redis",
      "memcached", "posix-file-per-block", "lmdb", "hdf5",
      "mooncake", "lmcache-cpu", "lmcache-disk", "lmcache-server"};

  *known = 0;
  for (int k = 0; k < NADAPTERS; k++) {
    const suite_adapter *a = adapter_at(k);

    if (a != NULL && strlen(a->name) == len &&
        strncmp(a->name, name, len) == 0)
      return a;
    if (strlen(names[k]) == len && strncmp(names[k], name, len) == 0)
      *known = 1;
  }
  return NULL;
}

static void built_in(char *out, size_t cap) {
  size_t n = 0;

  out[0] = '\0';
  for (int k = 0; k < NADAPTERS; k++) {
    const suite_adapter *a = adapter_at(k);

    if (a != NULL && n < cap)
      n += (size_t)snprintf(out + n, cap - n, "%s%s", n ? ", " : "",
                            a->name);
  }
}

static int parse_args(struct suite *s, int argc, char **argv) {
  const char *systems = NULL, *wls = NULL, *block = NULL, *blocks = NULL,
             *total = NULL, *threads = NULL, *batch = NULL, *tpb = NULL,
             *seed = NULL, *repeat = NULL, *wpct = NULL, *cthreads = NULL,
             *hot = NULL;
  uint64_t v;

  for (int i = 0; i < argc;) {
    const char *val;
    int r;

    if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
      cli_bench_suite_usage(stdout);
      return 1;
    }
    if (strcmp(argv[i], "--quick") == 0) {
      s->quick = 1;
      i++;
      continue;
    }
    if (strcmp(argv[i], "--json") == 0) {
      s->json = 1;
      i++;
      continue;
    }
    if (strcmp(argv[i], "--keep") == 0) {
      s->keep = 1;
      i++;
      continue;
    }
#define OPT(name, var)                                                        \
  if ((r = cli_opt_value(argc, argv, &i, name, &val)) != 0) {                 \
    if (r < 0) return -1;                                                     \
    var = val;                                                                \
    continue;                                                                 \
  }
    OPT("--systems", systems)
    OPT("--workloads", wls)
    OPT("--block", block)
    OPT("--model", s->model)
    OPT("--tokens-per-block", tpb)
    OPT("--blocks", blocks)
    OPT("--total", total)
    OPT("--threads", threads)
    OPT("--batch", batch)
    OPT("--dir", s->dir_opt)
    OPT("--results", s->results)
    OPT("--cascaded", s->cascaded_opt)
    OPT("--seed", seed)
    OPT("--repeat", repeat)
    OPT("--write-pct", wpct)
    OPT("--contention-threads", cthreads)
    OPT("--hot-blocks", hot)
    OPT("--peers", s->peers_opt)
    OPT("--trace", s->trace_opt)
#undef OPT
    cli_err("bench suite: unexpected argument '%s' (see cascade bench suite "
            "--help)",
            argv[i]);
    return -1;
  }

  /* block */
  s->block = s->quick ? (256ull << 10) : (1ull << 20);
  if (block != NULL && s->model != NULL) {
    cli_err("bench suite: --block and --model: give one");
    return -1;
  }
  if (tpb != NULL && s->model == NULL) {
    cli_err("bench suite: --tokens-per-block needs --model");
    return -1;
  }
  if (block != NULL && (cli_parse_size(block, &s->block) != 0 ||
                        s->block < MIN_BLOCK || s->block > MAX_BLOCK)) {
    cli_err("bench suite: --block %s: expected 64 bytes to 256 MiB", block);
    return -1;
  }
  if (s->model != NULL) {
    uint64_t bpt = cli_model_bpt(s->model);

    if (bpt == 0) {
      cli_err("bench suite: --model %s: unknown (llama3-8b, llama3-70b, "
              "qwen2.5-7b, qwen2.5-32b, qwen2.5-72b)",
              s->model);
      return -1;
    }
    s->tpb = 16;
    if (tpb != NULL && parse_u64("--tokens-per-block", tpb, 1, 65536,
                                 &s->tpb) != 0)
      return -1;
    s->block = bpt * s->tpb;
    if (s->block > MAX_BLOCK) {
      cli_err("bench suite: %s x %" PRIu64 " tokens: blocks over 256 MiB",
              s->model, s->tpb);
      return -1;
    }
  }

  /* working set */
  if (blocks != NULL && total != NULL) {
    cli_err("bench suite: --blocks and --total: give one");
    return -1;
  }
  {
    uint64_t t = s->quick ? (8ull << 20) : (1ull << 30);

    if (total != NULL &&
        (cli_parse_size(total, &t) != 0 || t == 0 || t > (1ull << 40))) {
      cli_err("bench suite: --total %s: expected a size up to 1 TiB", total);
      return -1;
    }
    s->nblocks = t / s->block ? t / s->block : 1;
  }
  /* blocks and the new blocks of mixed: all distinct windows */
  if (blocks != NULL &&
      parse_u64("--blocks", blocks, 1, POOL_BYTES / 16, &s->nblocks) != 0)
    return -1;
  if (s->nblocks > POOL_BYTES / 16) {
    cli_err("bench suite: at most %llu blocks", POOL_BYTES / 16);
    return -1;
  }

  s->threads = 1;
  if (threads != NULL) {
    if (parse_u64("--threads", threads, 1, MAX_THREADS, &v) != 0) return -1;
    s->threads = (int)v;
  }
  s->batch = s->quick ? 8 : 16;
  if (batch != NULL) {
    if (parse_u64("--batch", batch, 1, MAX_BATCH, &v) != 0) return -1;
    s->batch = (int)v;
  }
  s->write_pct = 20;
  if (wpct != NULL) {
    if (parse_u64("--write-pct", wpct, 0, 100, &v) != 0) return -1;
    s->write_pct = (int)v;
  }
  s->cthreads = 4;
  if (cthreads != NULL) {
    if (parse_u64("--contention-threads", cthreads, 1, MAX_THREADS, &v) != 0)
      return -1;
    s->cthreads = (int)v;
  }
  s->hot = (uint64_t)s->batch;
  if (hot != NULL &&
      parse_u64("--hot-blocks", hot, 1, POOL_BYTES / 16, &s->hot) != 0)
    return -1;
  if (s->hot > s->nblocks) s->hot = s->nblocks;
  s->repeat = 1;
  if (repeat != NULL) {
    if (parse_u64("--repeat", repeat, 1, MAX_REPEAT, &v) != 0) return -1;
    s->repeat = (int)v;
  }
  s->seed = DEFAULT_SEED;
  if (seed != NULL && parse_u64("--seed", seed, 0, UINT64_MAX, &s->seed) != 0)
    return -1;
  if (s->results == NULL) s->results = "results";

  /* workloads */
  if (wls == NULL) {
    for (int k = 0; k < NWL; k++) s->wl[k] = 1;
  } else {
    for (const char *p = wls; *p != '\0';) {
      size_t len = strcspn(p, ",");
      int found = 0;

      for (int k = 0; k < NWL; k++)
        if (strlen(wl_name[k]) == len && strncmp(wl_name[k], p, len) == 0)
          s->wl[k] = found = 1;
      if (!found) {
        cli_err("bench suite: --workloads: unknown '%.*s' (write, hot-read, "
                "mixed, contention, cold-read, replay)",
                (int)len, p);
        return -1;
      }
      p += len;
      if (*p == ',') p++;
    }
  }

  /* systems */
  if (systems == NULL) {
    for (int k = 0; k < NADAPTERS; k++)
      if (adapter_at(k) != NULL) s->sys[s->nsys++] = adapter_at(k);
  } else {
    for (const char *p = systems; *p != '\0';) {
      size_t len = strcspn(p, ",");
      int known, dup = 0;
      const suite_adapter *a = find_system(p, len, &known);

      if (a == NULL) {
        char list[512];

        built_in(list, sizeof list);
        cli_err("bench suite: --systems: '%.*s' is %s (built in: %s)",
                (int)len, p, known ? "not built in" : "unknown", list);
        return -1;
      }
      for (int k = 0; k < s->nsys; k++) dup |= s->sys[k] == a;
      if (!dup) s->sys[s->nsys++] = a;
      p += len;
      if (*p == ',') p++;
    }
  }
  if (s->nsys == 0) {
    cli_err("bench suite: no system built in");
    return -1;
  }
  return 0;
}

/* ---- The run ------------------------------------------------------------------- */

int cli_bench_suite(int argc, char **argv, const cli_common *co) {
  struct suite *s;
  struct sigaction ign = {.sa_handler = SIG_IGN}, old_pipe;
  time_t now = time(NULL);
  struct tm tm;
  int rc, nwl = 0;

  if (co->nset > 0) {
    cli_err("bench suite: --set/--dram/--policy are not taken: every system "
            "runs with the configuration its adapter documents");
    return CLI_USAGE;
  }
  s = calloc(1, sizeof *s);
  if (s == NULL) {
    cli_err("bench suite: out of memory");
    return CLI_FAIL;
  }
  rc = parse_args(s, argc, argv);
  if (rc != 0) {
    free(s);
    return rc > 0 ? CLI_OK : CLI_USAGE;
  }
  rc = CLI_FAIL;
  for (int k = 0; k < NWL; k++) nwl += s->wl[k];
  s->res = calloc((size_t)s->nsys * NWL, sizeof *s->res);
  s->keys = calloc(2 * s->nblocks, sizeof *s->keys); /* mixed: new ones */
  s->pool_len = POOL_BYTES + s->block;
  s->pool = mmap(NULL, s->pool_len, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (s->pool == MAP_FAILED) s->pool = NULL;
  if (s->res == NULL || s->keys == NULL || s->pool == NULL) {
    cli_err("bench suite: out of memory");
    goto done;
  }
  cli_fill_pool(s->pool, s->pool_len, s->seed);
  if (s->wl[WL_REPLAY] && load_replay(s) != 0) {
    rc = CLI_USAGE;
    goto done;
  }
  s->pool_off = cli_mix64(s->seed);
  for (uint64_t i = 0; i < 2 * s->nblocks; i++)
    snprintf(s->keys[i], sizeof s->keys[i], "blk:%016llx",
             (unsigned long long)i);

  s->have_cascaded =
      cli_find_cascaded(s->cascaded_opt, s->cascaded, sizeof s->cascaded) ==
      0;
  if (!s->have_cascaded && s->cascaded_opt != NULL) {
    cli_err("bench suite: --cascaded %s: not an executable", s->cascaded_opt);
    rc = CLI_USAGE;
    goto done;
  }
  if (mkdir(s->results, 0755) != 0 && errno != EEXIST) {
    cli_err("bench suite: --results %s: %s", s->results, strerror(errno));
    goto done;
  }
  if (make_work_dir(s) != 0) goto done;
  gmtime_r(&now, &tm);
  strftime(s->stamp, sizeof s->stamp, "%Y%m%dT%H%M%SZ", &tm);
  cli_machine_facts(&s->m);
  if (gethostname(s->host, sizeof s->host - 1) != 0) s->host[0] = '\0';
  fs_facts(s, s->work);
  /* reads keep every block (one span timed, compared after) unless the
   * working set is over a quarter of the memory */
  s->whole = s->nblocks * s->block <=
             (s->m.mem ? s->m.mem / 4 : (1ull << 30));
  s->out = s->json ? stderr : stdout;
  print_header(s);

  sigaction(SIGPIPE, &ign, &old_pipe);
  s->nsteps = s->nsys * nwl * s->repeat;
  /* interleaved: round r of every system, then round r + 1 */
  for (int rep = 0; rep < s->repeat; rep++)
    for (int k = 0; k < s->nsys; k++)
      if (!s->done[k]) {
        if (s->sys[k]->driver != NULL)
          run_driver(s, k, rep);
        else
          run_system(s, k, rep);
      }
  cli_progress_done();
  sigaction(SIGPIPE, &old_pipe, NULL);
  print_table(s);
  rc = s->failed ? CLI_FAIL : CLI_OK;

done:
  if (s->work[0] != '\0') {
    if (s->keep)
      cli_err("bench suite: kept %s", s->work);
    else if (cli_rm_tree(s->work, 0) != 0)
      cli_err("bench suite: warning: cannot remove %s: %s", s->work,
              strerror(errno));
  }
  if (s->pool != NULL) munmap(s->pool, s->pool_len);
  if (s->wl[WL_REPLAY]) sim_trace_free(&s->tr);
  free(s->keys);
  free(s->res);
  free(s);
  return rc;
}
