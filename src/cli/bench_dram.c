/*
 * bench_dram.c - `cascade bench dram`: the DRAM tier measured against the
 * two things that bound it, memcpy and OpenSSL SHA-256, in one run.
 *
 * For each block size the run measures six cells, in this order:
 *
 *   memcpy       single-thread memcpy, source block j -> destination block j
 *   sha256       OpenSSL SHA-256, EVP_Digest over the source blocks (the
 *                digest fetched once, as a careful caller would)
 *   put_nodedup  cascade_put into store 0 ("dedup"=false)
 *   put_dedup    cascade_put into store 1 ("dedup"=true): every put hashes
 *   get          cascade_get of store 0's block j into destination block j
 *   get_view     cascade_get_view + cascade_view_release on store 0
 *
 * Working set.  Source and destination are two private anonymous buffers of
 * n blocks, n = max(4, 256 MiB / block): eight times the 32 MiB L3 cache of
 * the reference machine, so every cell streams from DRAM.  Both are written
 * once before measuring (pre-faulted).  Cell operation k uses block
 * j = k mod n, walking the working set in order, over and over.
 *
 * Placement.  The source starts SRC_SKEW and the destination DST_SKEW bytes
 * (odd numbers of pages) into their mappings.  On the reference VM, copying
 * block j of one buffer to block j of another whose start is a large
 * power of two away (as adjacent 256 MiB mmaps are) ran at ~10 GB/s, and
 * at 12-14 GB/s with the destination moved by a few pages or blocks
 * (cache/DRAM mapping of physically contiguous memory).  The arena's
 * blocks sit at multiples of the block size from a page-aligned base, so
 * the skews keep memcpy, put (source -> arena) and get (arena ->
 * destination) all off that unlucky alignment, and the ratios compare
 * like with like.
 *
 * Content.  Word w (8 bytes) of source block j is mix64(j, w), so any byte
 * read back can be checked without a copy of the data.  Before each put,
 * word 0 of the block is overwritten with a fresh 64-bit stamp: every value
 * put is distinct (dedup never hits, every put stores), and the stamp of
 * slot j's current value is remembered per store.
 *
 * Keys.  32 bytes (the size of a chain key): "cascade-bench-v1", the block
 * size and the slot j.  The first pass over the working set inserts n new
 * keys; later passes replace their values (the old copy is freed), so the
 * store holds n blocks and never needs to evict.  After each size every key
 * is deleted, untimed.
 *
 * Timing.  Per size, each op first makes one untimed warm-up pass over
 * the working set; then NTRIALS rounds each run one timed trial of every
 * op in turn (interleaved, so a slow phase of the machine hits all ops
 * alike), a trial lasting at least seconds/NTRIALS.  The clock is read once
 * per batch of operations so that small blocks do not measure the clock.
 * Reported: the median trial's rate; GB/s = 1e9 bytes/s of block payload
 * (for get_view the "memcpy-equivalent" block_bytes / time per view).  A
 * ratio is the median over rounds of (op rate / memcpy or sha256 rate in
 * the same round), so a slow round, which this VM has, cancels out.
 *
 * Checks (a failed one ends the run with exit status 1): every get and view
 * has the right length; during warm-up every block read back is compared
 * in full (every word against its stamp or pattern), during the timed
 * trials one read in VERIFY_EVERY has three words checked (the stamp, the
 * last word and one chosen by k); after the trials one block of the dedup
 * store is compared in full with the source and its content id with
 * SHA-256 of the source.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "cli.h"

#define NTRIALS 9               /* odd: the median is one trial */
#define WS_BYTES (256ull << 20) /* working set per block size */
#define WS_MIN_BLOCKS 4
#define VERIFY_EVERY 16 /* timed gets/views: check one in this many */
#define MAX_SIZES 16
#define MIN_BLOCK 64ull
#define MAX_BLOCK (256ull << 20)
#define BENCH_NS "bench"
#define KEY_BYTES 32
#define PAGE 4096u
#define SRC_SKEW (5 * PAGE) /* see "Placement" above */
#define DST_SKEW (17 * PAGE)

enum {
  OP_MEMCPY,
  OP_SHA256,
  OP_STREAM,
  OP_PUT_NODEDUP,
  OP_PUT_DEDUP,
  OP_GET,
  OP_GET_VIEW,
  NOPS
};

static const char *const op_name[NOPS] = {
    "memcpy",    "sha256", "stream_copy", "put_nodedup",
    "put_dedup", "get",    "get_view"};

struct result {
  int op;
  uint64_t bs;
  double ops_per_sec; /* median trial */
  double gbps, gbps_min, gbps_max;
  double ratio_memcpy;     /* median over rounds of rate / memcpy rate */
  double ratio_sha;        /* the same against sha256 */
  double ratio_stream;     /* the same against stream_copy */
  uint64_t ops;            /* timed operations, all trials */
  double secs;             /* timed seconds, all trials */
  const char *target;      /* NULL if the op has no target at this size */
  const char *target_text; /* the same, for the table */
  int met;
};

struct bench {
  /* options */
  uint64_t sizes[MAX_SIZES];
  int nsizes;
  double seconds;
  int json, stats;
  uint64_t capacity;

  /* resources */
  cascade *store[2];          /* [0] dedup off, [1] dedup on */
  uint8_t *src, *dst;         /* working sets, buf_bytes each */
  uint8_t *src_map, *dst_map; /* their mappings, map_bytes each */
  size_t buf_bytes, map_bytes;
  uint64_t *stamp[2]; /* per slot: stamp of the value in store[s] */
  size_t stamp_cap;
  uint64_t next_stamp;
  EVP_MD *md_fetched; /* OpenSSL 3: SHA-256 fetched once; else NULL */
  const EVP_MD *md;

  /* the size being measured */
  uint64_t bs, n, nw; /* block bytes, blocks, words per block */
  int s;              /* store used by put/get ops */
  int verify_all;     /* 1 during warm-up */

  struct result res[MAX_SIZES * NOPS];
  int nres;
  char err[512];
  volatile uint64_t sink;
};

typedef int (*op_fn)(struct bench *b, uint64_t k);

void cli_bench_dram_usage(FILE *f) {
  fprintf(
      f,
      "Usage: cascade bench dram [--quick] [--json] [--sizes LIST] "
      "[--seconds S]\n"
      "                          [--capacity SIZE] [--stats] "
      "[--set NAME=VALUE]...\n"
      "\n"
      "Measure the DRAM tier against its bounds, for each block size:\n"
      "  memcpy       single-thread memcpy over a 256 MiB working set "
      "(DRAM, not cache)\n"
      "  sha256       OpenSSL SHA-256 on one core (EVP), same blocks\n"
      "  stream_copy  copy with streaming (non-temporal) stores, the engine's"
      " own\n"
      "               routine: the bound for puts and large gets\n"
      "  put_nodedup  cascade_put, dedup off        (target >= 0.8x "
      "memcpy)\n"
      "  put_dedup    cascade_put, dedup on: hashes  (ratio to memcpy "
      "and to sha256;\n"
      "               target >= 0.8x sha256)\n"
      "  get          cascade_get copy-out          (target >= 0.9x "
      "memcpy from 1 MiB)\n"
      "  get_view     cascade_get_view + release, as block bytes per "
      "view time\n"
      "               (target >= 10x memcpy)\n"
      "\n"
      "Options:\n"
      "  --sizes LIST     block sizes [4k,64k,1m,16m,64m; --quick: "
      "4k,1m,16m]\n"
      "  --seconds S      timed seconds per cell, split over %d trials "
      "(median\n"
      "                   reported) [0.5; --quick: 0.2]\n"
      "  --quick          fewer sizes, shorter cells\n"
      "  --capacity SIZE  DRAM arena of each of the two stores [512m]\n"
      "  --json           one JSON object per line: a machine record, "
      "then results\n"
      "  --stats          print both stores' statistics at the end\n"
      "  --set, --dram, --policy   engine settings (applied before "
      "dedup is set\n"
      "                   per store; prefault is on unless set off)\n"
      "\n"
      "Bytes read back are checked; wrong bytes end the run with exit "
      "status 1.\n",
      NTRIALS);
}

/* ---- Content ------------------------------------------------------------- */

static inline uint64_t mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  x ^= x >> 31;
  return x;
}

/* Word w of source block j (word 0 is replaced by the stamp on put). */
static inline uint64_t pat(uint64_t j, uint64_t w) {
  return mix64(0x243f6a8885a308d3ull ^ (j * 0x9e3779b97f4a7c15ull) ^ (w << 1));
}

static inline uint64_t load64(const uint8_t *p) {
  uint64_t v;

  memcpy(&v, p, sizeof v);
  return v;
}

static void fill_src(struct bench *b) {
  for (uint64_t j = 0; j < b->n; j++) {
    uint8_t *p = b->src + j * b->bs;

    for (uint64_t w = 0; w < b->nw; w++) {
      uint64_t v = pat(j, w);

      memcpy(p + w * 8, &v, sizeof v);
    }
  }
}

static int bad_word(struct bench *b, uint64_t j, uint64_t w, uint64_t want,
                    uint64_t got, const char *how) {
  snprintf(b->err, sizeof b->err,
           "store returned wrong bytes (%s): block %" PRIu64 " word %" PRIu64
           ": expected 0x%016" PRIx64 ", got 0x%016" PRIx64,
           how, j, w, want, got);
  return CASCADE_ECORRUPT;
}

/* Check three words of a block read back: the stamp, the last word, and
 * one chosen by k. */
static int verify_sample(struct bench *b, const uint8_t *p, uint64_t j,
                         uint64_t stamp, uint64_t k) {
  uint64_t w = 1 + (k * 2654435761ull) % (b->nw - 1), v;

  if ((v = load64(p)) != stamp) return bad_word(b, j, 0, stamp, v, "stamp");
  if ((v = load64(p + (b->nw - 1) * 8)) != pat(j, b->nw - 1))
    return bad_word(b, j, b->nw - 1, pat(j, b->nw - 1), v, "sample");
  if ((v = load64(p + w * 8)) != pat(j, w))
    return bad_word(b, j, w, pat(j, w), v, "sample");
  return 0;
}

static int verify_full(struct bench *b, const uint8_t *p, uint64_t j,
                       uint64_t stamp) {
  uint64_t v;

  if ((v = load64(p)) != stamp)
    return bad_word(b, j, 0, stamp, v, "full check");
  for (uint64_t w = 1; w < b->nw; w++)
    if ((v = load64(p + w * 8)) != pat(j, w))
      return bad_word(b, j, w, pat(j, w), v, "full check");
  return 0;
}

static inline void make_key(uint8_t key[KEY_BYTES], uint64_t bs,
                            uint64_t slot) {
  memcpy(key, "cascade-bench-v1", 16);
  memcpy(key + 16, &bs, 8);
  memcpy(key + 24, &slot, 8);
}

/* ---- Operations (one call = one block) ----------------------------------- */

static int op_memcpy(struct bench *b, uint64_t k) {
  uint64_t j = k % b->n;

  memcpy(b->dst + j * b->bs, b->src + j * b->bs, b->bs);
  atomic_signal_fence(memory_order_seq_cst);
  return 0;
}

/* The engine's own streaming-store copy (src/core/copy.c, compiled into
 * this program): the bound for puts, which copy into the arena with it. */
void copy_stream(void *dst, const void *src, size_t n);

static int op_stream(struct bench *b, uint64_t k) {
  uint64_t j = k % b->n;

  copy_stream(b->dst + j * b->bs, b->src + j * b->bs, b->bs);
  atomic_signal_fence(memory_order_seq_cst);
  return 0;
}

static int op_sha256(struct bench *b, uint64_t k) {
  uint64_t j = k % b->n;
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0;

  if (EVP_Digest(b->src + j * b->bs, b->bs, md, &mdlen, b->md, NULL) != 1) {
    snprintf(b->err, sizeof b->err, "OpenSSL EVP_Digest(SHA-256) failed");
    return -EIO;
  }
  b->sink += md[0];
  return 0;
}

static int op_put(struct bench *b, uint64_t k) {
  uint64_t j = k % b->n, stamp = ++b->next_stamp;
  uint8_t *p = b->src + j * b->bs;
  uint8_t key[KEY_BYTES];
  int rc;

  memcpy(p, &stamp, sizeof stamp);
  make_key(key, b->bs, j);
  rc = cascade_put(b->store[b->s], BENCH_NS, key, KEY_BYTES, p, b->bs, NULL);
  if (rc != 0) {
    snprintf(b->err, sizeof b->err, "cascade_put(block %" PRIu64 "): %s", j,
             cascade_strerror(rc));
    return rc;
  }
  b->stamp[b->s][j] = stamp;
  return 0;
}

static int op_get(struct bench *b, uint64_t k) {
  uint64_t j = k % b->n;
  uint8_t *p = b->dst + j * b->bs;
  uint8_t key[KEY_BYTES];
  size_t vlen = 0;
  int rc;

  make_key(key, b->bs, j);
  rc = cascade_get(b->store[b->s], BENCH_NS, key, KEY_BYTES, p, b->bs, &vlen);
  if (rc != 0) {
    snprintf(b->err, sizeof b->err, "cascade_get(block %" PRIu64 "): %s", j,
             cascade_strerror(rc));
    return rc;
  }
  if (vlen != b->bs) {
    snprintf(b->err, sizeof b->err,
             "cascade_get(block %" PRIu64 ") returned %zu bytes, not %" PRIu64,
             j, vlen, b->bs);
    return CASCADE_ECORRUPT;
  }
  if (b->verify_all) return verify_full(b, p, j, b->stamp[b->s][j]);
  if (k % VERIFY_EVERY == 0)
    return verify_sample(b, p, j, b->stamp[b->s][j], k);
  return 0;
}

static int op_view(struct bench *b, uint64_t k) {
  uint64_t j = k % b->n;
  uint8_t key[KEY_BYTES];
  cascade_view v;
  int rc = 0;

  make_key(key, b->bs, j);
  rc = cascade_get_view(b->store[b->s], BENCH_NS, key, KEY_BYTES, &v);
  if (rc != 0) {
    snprintf(b->err, sizeof b->err, "cascade_get_view(block %" PRIu64 "): %s",
             j, cascade_strerror(rc));
    return rc;
  }
  if (v.len != b->bs || v.data == NULL) {
    snprintf(b->err, sizeof b->err,
             "cascade_get_view(block %" PRIu64 ") gave %zu bytes, not %" PRIu64,
             j, v.len, b->bs);
    rc = CASCADE_ECORRUPT;
  } else if (b->verify_all) {
    rc = verify_full(b, v.data, j, b->stamp[b->s][j]);
  } else if (k % VERIFY_EVERY == 0) {
    rc = verify_sample(b, v.data, j, b->stamp[b->s][j], k);
  }
  cascade_view_release(b->store[b->s], &v);
  return rc;
}

/* ---- Measuring one cell -------------------------------------------------- */

/* One untimed pass over the working set, checking every block read in
 * full. */
static int warmup(struct bench *b, op_fn op, uint64_t *kp) {
  uint64_t k = *kp;
  int rc = 0;

  b->verify_all = 1;
  for (uint64_t end = k + b->n; k < end; k++)
    if ((rc = op(b, k)) != 0) break;
  b->verify_all = 0;
  *kp = k;
  return rc;
}

/* One timed trial of at least `secs` seconds; *rate = operations/s.  *kp
 * carries the position in the working set from trial to trial. */
static int trial(struct bench *b, op_fn op, uint64_t batch, double secs,
                 uint64_t *kp, double *rate, struct result *r) {
  uint64_t k = *kp, ops = 0;
  double t0 = cli_now(), el;
  int rc;

  do {
    for (uint64_t i = 0; i < batch; i++, k++)
      if ((rc = op(b, k)) != 0) return rc;
    ops += batch;
    el = cli_now() - t0;
  } while (el < secs);
  *kp = k;
  *rate = (double)ops / el;
  r->ops += ops;
  r->secs += el;
  return 0;
}

/* Median and extremes of the trials' rates into r (sorts rate). */
static void summarise(const struct bench *b, double *rate, struct result *r) {
  r->ops_per_sec = cli_median(rate, NTRIALS); /* sorts rate */
  r->gbps = r->ops_per_sec * (double)b->bs / 1e9;
  r->gbps_min = rate[0] * (double)b->bs / 1e9;
  r->gbps_max = rate[NTRIALS - 1] * (double)b->bs / 1e9;
}

/* ---- Set-up and tear-down ------------------------------------------------ */

static uint64_t ws_blocks(uint64_t bs) {
  uint64_t n = (WS_BYTES + bs - 1) / bs;

  return n < WS_MIN_BLOCKS ? WS_MIN_BLOCKS : n;
}

static void *map_buffer(size_t bytes) {
  void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

  if (p == MAP_FAILED) return NULL;
  memset(p, 0, bytes); /* pre-fault */
  return p;
}

static int open_store(struct bench *b, const cli_common *co, int dedup,
                      cascade **out) {
  cascade_config *cfg = NULL;
  char cap[32];
  int rc;

  rc = cascade_config_new(&cfg);
  if (rc != 0) {
    cli_err("bench dram: cascade_config_new: %s", cascade_strerror(rc));
    return CLI_FAIL;
  }
  snprintf(cap, sizeof cap, "%" PRIu64, b->capacity);
  if (cli_config_set(cfg, "dram.prefault", "true", "bench dram") != 0 ||
      cli_config_set(cfg, "dram.capacity", cap, "bench dram") != 0) {
    cascade_config_free(cfg);
    return CLI_FAIL;
  }
  rc = cli_apply_settings(co, cfg);
  if (rc == CLI_OK &&
      (cli_config_set(cfg, "dram.capacity", cap, "bench dram") != 0 ||
       cli_config_set(cfg, "dedup", dedup ? "true" : "false", "bench dram") !=
           0))
    rc = CLI_FAIL;
  if (rc != CLI_OK) {
    cascade_config_free(cfg);
    return rc;
  }
  rc = cascade_open(cfg, out);
  cascade_config_free(cfg);
  if (rc != 0) {
    cli_err("bench dram: cascade_open (capacity %" PRIu64 ", dedup %s): %s",
            b->capacity, dedup ? "on" : "off", cascade_strerror(rc));
    return CLI_FAIL;
  }
  return CLI_OK;
}

/* Delete every key of the current size from both stores. */
static int clear_size(struct bench *b) {
  uint8_t key[KEY_BYTES];

  for (int s = 0; s < 2; s++)
    for (uint64_t j = 0; j < b->n; j++) {
      int rc;

      make_key(key, b->bs, j);
      rc = cascade_delete(b->store[s], BENCH_NS, key, KEY_BYTES);
      if (rc != 0 && rc != -ENOENT) {
        snprintf(b->err, sizeof b->err, "cascade_delete(block %" PRIu64 "): %s",
                 j, cascade_strerror(rc));
        return rc;
      }
    }
  return 0;
}

/* After the trials: block 0 of the dedup store must equal the source block
 * with the stamp of its last put into that store, byte for byte, and its
 * content id must be SHA-256 of those bytes. */
static int check_dedup_store(struct bench *b) {
  uint8_t key[KEY_BYTES], md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0;
  cascade_view v;
  int rc;

  memcpy(b->src, &b->stamp[1][0], sizeof b->stamp[1][0]);
  make_key(key, b->bs, 0);
  rc = cascade_get_view(b->store[1], BENCH_NS, key, KEY_BYTES, &v);
  if (rc != 0) {
    snprintf(b->err, sizeof b->err, "dedup store: cascade_get_view: %s",
             cascade_strerror(rc));
    return rc;
  }
  if (v.len != b->bs || memcmp(v.data, b->src, b->bs) != 0) {
    snprintf(b->err, sizeof b->err,
             "dedup store: block 0 differs from the bytes put (%zu bytes)",
             v.len);
    rc = CASCADE_ECORRUPT;
  } else if (EVP_Digest(b->src, b->bs, md, &mdlen, b->md, NULL) != 1 ||
             memcmp(md, v.cid.b, CASCADE_CID_BYTES) != 0) {
    snprintf(b->err, sizeof b->err,
             "dedup store: block 0's content id is not SHA-256 of its bytes");
    rc = CASCADE_ECORRUPT;
  }
  cascade_view_release(b->store[1], &v);
  return rc;
}

/* ---- Reporting ----------------------------------------------------------- */

/* The targets of the engine issue: put without dedup >= 0.8x memcpy, put
 * with dedup >= 0.8x SHA-256, copy-out get >= 0.9x memcpy from 1 MiB, view
 * >= 10x memcpy. */
static void set_target(struct result *r) {
  r->target = NULL;
  if (r->op == OP_PUT_NODEDUP) {
    r->target = "ratio_to_memcpy>=0.8";
    r->target_text = ">= 0.8x memcpy";
    r->met = r->ratio_memcpy >= 0.8;
  } else if (r->op == OP_PUT_DEDUP) {
    r->target = "ratio_to_sha256>=0.8";
    r->target_text = ">= 0.8x sha256";
    r->met = r->ratio_sha >= 0.8;
  } else if (r->op == OP_GET && r->bs >= (1u << 20)) {
    r->target = "ratio_to_memcpy>=0.9";
    r->target_text = ">= 0.9x memcpy";
    r->met = r->ratio_memcpy >= 0.9;
  } else if (r->op == OP_GET_VIEW) {
    r->target = "ratio_to_memcpy>=10";
    r->target_text = ">= 10x memcpy";
    r->met = r->ratio_memcpy >= 10.0;
  }
}

/* Ops whose bound is a streaming copy: puts, and copy-out gets. */
static int has_stream_ratio(int op) {
  return op == OP_PUT_NODEDUP || op == OP_GET;
}

static void json_result(const struct result *r) {
  printf("{\"type\":\"result\",\"op\":");
  cli_json_str(stdout, op_name[r->op]);
  printf(",\"block_bytes\":%" PRIu64 ",\"gbps\":", r->bs);
  cli_json_num(stdout, r->gbps);
  printf(",\"ops_per_sec\":");
  cli_json_num(stdout, r->ops_per_sec);
  printf(",\"ratio_to_memcpy\":");
  cli_json_num(stdout, r->ratio_memcpy);
  if (r->op == OP_PUT_DEDUP) {
    printf(",\"ratio_to_sha256\":");
    cli_json_num(stdout, r->ratio_sha);
  }
  if (has_stream_ratio(r->op)) {
    printf(",\"ratio_to_stream\":");
    cli_json_num(stdout, r->ratio_stream);
  }
  printf(",\"gbps_min\":");
  cli_json_num(stdout, r->gbps_min);
  printf(",\"gbps_max\":");
  cli_json_num(stdout, r->gbps_max);
  printf(",\"trials\":%d,\"timed_ops\":%" PRIu64 ",\"timed_seconds\":", NTRIALS,
         r->ops);
  cli_json_num(stdout, r->secs);
  printf(",\"working_set_bytes\":%" PRIu64, ws_blocks(r->bs) * r->bs);
  if (r->target != NULL) {
    printf(",\"target\":");
    cli_json_str(stdout, r->target);
    printf(",\"target_met\":%s", r->met ? "true" : "false");
  }
  printf("}\n");
  fflush(stdout);
}

static void print_table(const struct bench *b) {
  static const char *const hd[8] = {"op",       "block",    "GB/s",
                                    "ops/s",    "x memcpy", "x stream",
                                    "x sha256", "target"};
  cli_table *t = cli_table_new(8, hd, "lrrrrrrl");
  int met = 0, targets = 0;

  if (t == NULL) return;
  for (int i = 0; i < b->nres; i++) {
    const struct result *r = &b->res[i];
    char sz[32], g[32], o[32], rm[32], rst[32], rs[32], tg[64];
    const char *cells[8];

    if (i > 0 && r->bs != b->res[i - 1].bs) cli_table_row(t, NULL);
    cells[0] = op_name[r->op];
    cells[1] = cli_fmt_size(r->bs, sz, sizeof sz);
    cells[2] = cli_fmt_rate(r->gbps, g, sizeof g);
    cells[3] = cli_fmt_count((uint64_t)(r->ops_per_sec + 0.5), o, sizeof o);
    cells[4] =
        r->op == OP_MEMCPY ? "1.00" : cli_fmt_rate(r->ratio_memcpy, rm, sizeof rm);
    cells[5] = has_stream_ratio(r->op)
                   ? cli_fmt_rate(r->ratio_stream, rst, sizeof rst)
                   : "";
    cells[6] =
        r->op == OP_PUT_DEDUP ? cli_fmt_rate(r->ratio_sha, rs, sizeof rs) : "";
    tg[0] = '\0';
    if (r->target != NULL) {
      targets++;
      met += r->met;
      snprintf(tg, sizeof tg, "%s %s", r->target_text,
               r->met ? "ok" : "MISSED");
    }
    cells[7] = tg;
    cli_table_row(t, cells);
  }
  cli_table_print(t, stdout, "");
  cli_table_free(t);
  printf("\ntargets met: %d of %d\n", met, targets);
}

static void print_header(const struct bench *b, const cli_machine *m,
                         const struct cascade_stats *st0, const char *policy,
                         const char *latency) {
  char l3[32], mem[32], cap[32], ws[32];

  if (b->json) {
    printf("{\"type\":\"machine\",\"cpu_model\":");
    cli_json_str(stdout, m->cpu);
    printf(",\"cores\":%ld,\"kernel\":", m->cores);
    cli_json_str(stdout, m->kernel);
    printf(",\"l3_bytes\":%" PRIu64 ",\"mem_total_bytes\":%" PRIu64 ",\"thp\":",
           m->l3, m->mem);
    cli_json_str(stdout, m->thp);
    printf(",\"cascade_version\":");
    cli_json_str(stdout, cascade_version());
    printf(",\"openssl\":");
    cli_json_str(stdout, OpenSSL_version(OPENSSL_VERSION));
    printf(",\"capacity_bytes\":%" PRIu64 ",\"dram_hugepages\":%s,\"policy\":",
           b->capacity, st0->dram_hugepages ? "true" : "false");
    cli_json_str(stdout, policy);
    printf(",\"stats_latency\":");
    cli_json_str(stdout, latency);
    printf(",\"seconds_per_cell\":");
    cli_json_num(stdout, b->seconds);
    printf(",\"trials\":%d,\"working_set_min_bytes\":%llu}\n", NTRIALS,
           (unsigned long long)WS_BYTES);
    fflush(stdout);
    return;
  }
  printf("cascade bench dram: cascade %s, %s\n", cascade_version(),
         OpenSSL_version(OPENSSL_VERSION));
  printf("machine: %s, %ld cores, L3 %s, RAM %s, %s, THP %s\n", m->cpu,
         m->cores, m->l3 ? cli_fmt_size(m->l3, l3, sizeof l3) : "?",
         cli_fmt_size(m->mem, mem, sizeof mem), m->kernel,
         m->thp[0] ? m->thp : "?");
  printf("stores:  2 (dedup off / on), DRAM arena %s each, prefault, huge "
         "pages %s, policy %s, stats.latency %s\n",
         cli_fmt_size(b->capacity, cap, sizeof cap),
         st0->dram_hugepages ? "yes" : "no", policy, latency);
  printf("method:  working set >= %s per size (>= %d blocks), %.2g s per "
         "cell, median of %d trials\n\n",
         cli_fmt_size(WS_BYTES, ws, sizeof ws), WS_MIN_BLOCKS, b->seconds,
         NTRIALS);
  fflush(stdout);
}

/* ---- Option parsing ------------------------------------------------------ */

static int parse_sizes(struct bench *b, const char *list) {
  const char *p = list;

  b->nsizes = 0;
  while (*p != '\0') {
    char item[64];
    size_t len = strcspn(p, ",");
    uint64_t v;

    if (len == 0 || len >= sizeof item || b->nsizes == MAX_SIZES) {
      cli_err("bench dram: --sizes %s: expected up to %d sizes, comma "
              "separated",
              list, MAX_SIZES);
      return -1;
    }
    memcpy(item, p, len);
    item[len] = '\0';
    if (cli_parse_size(item, &v) != 0 || v < MIN_BLOCK || v > MAX_BLOCK ||
        v % MIN_BLOCK != 0) {
      cli_err("bench dram: --sizes: bad block size '%s' (a multiple of 64 "
              "bytes, 64 bytes to 256 MiB)",
              item);
      return -1;
    }
    b->sizes[b->nsizes++] = v;
    p += len;
    if (*p == ',') p++;
  }
  if (b->nsizes == 0) {
    cli_err("bench dram: --sizes: empty list");
    return -1;
  }
  return 0;
}

static int parse_args(struct bench *b, cli_common *co, int argc, char **argv) {
  const char *sizes = NULL, *secs = NULL, *cap = NULL;
  int quick = 0;

  for (int i = 0; i < argc;) {
    const char *v;
    int r;

    if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
      cli_bench_dram_usage(stdout);
      return 1;
    }
    if (strcmp(argv[i], "--quick") == 0) {
      quick = 1;
      i++;
      continue;
    }
    if (strcmp(argv[i], "--json") == 0) {
      b->json = 1;
      i++;
      continue;
    }
    if (strcmp(argv[i], "--stats") == 0) {
      b->stats = 1;
      i++;
      continue;
    }
    if ((r = cli_opt_value(argc, argv, &i, "--sizes", &v)) != 0) {
      if (r < 0) return -1;
      sizes = v;
      continue;
    }
    if ((r = cli_opt_value(argc, argv, &i, "--seconds", &v)) != 0) {
      if (r < 0) return -1;
      secs = v;
      continue;
    }
    if ((r = cli_opt_value(argc, argv, &i, "--capacity", &v)) != 0) {
      if (r < 0) return -1;
      cap = v;
      continue;
    }
    r = cli_common_option(co, argc, argv, &i);
    if (r < 0) return -1;
    if (r == 0) {
      cli_err("bench dram: unexpected argument '%s' (see cascade bench "
              "--help)",
              argv[i]);
      return -1;
    }
  }
  if (parse_sizes(b, sizes   ? sizes
                     : quick ? "4k,1m,16m"
                             : "4k,64k,1m,16m,64m") != 0)
    return -1;
  b->seconds = quick ? 0.2 : 0.5;
  if (secs != NULL) {
    char *end;
    double s = strtod(secs, &end);

    if (end == secs || *end != '\0' || !(s >= 0.01 && s <= 600)) {
      cli_err("bench dram: --seconds %s: expected a number of seconds "
              "(0.01 to 600)",
              secs);
      return -1;
    }
    b->seconds = s;
  }
  b->capacity = 512ull << 20;
  /* --dram / --set dram.capacity also set the capacity; --capacity wins. */
  for (size_t k = 0; k < co->nset; k++)
    if (strcmp(co->set[k].name, "dram.capacity") == 0 &&
        cli_parse_size(co->set[k].value, &b->capacity) != 0) {
      cli_err("bench dram: dram.capacity=%s: not a size", co->set[k].value);
      return -1;
    }
  if (cap != NULL && cli_parse_size(cap, &b->capacity) != 0) {
    cli_err("bench dram: --capacity %s: not a size", cap);
    return -1;
  }
  return 0;
}

/* ---- The run ------------------------------------------------------------- */

static void cleanup(struct bench *b) {
  cascade_close(b->store[0]);
  cascade_close(b->store[1]);
  if (b->src_map != NULL) munmap(b->src_map, b->map_bytes);
  if (b->dst_map != NULL) munmap(b->dst_map, b->map_bytes);
  free(b->stamp[0]);
  free(b->stamp[1]);
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
  EVP_MD_free(b->md_fetched);
#endif
}

/*
 * Measure every op at block size bs: first each op's warm-up pass (in op
 * order: the put passes fill the stores that get and get_view read), then
 * NTRIALS rounds, each running one timed trial of every op in turn.
 * Interleaving the trials means a slow phase of the machine (this is often
 * a VM) hits every op alike, so the ratios stay meaningful.
 */
static int run_size(struct bench *b, int size_idx, int ncells) {
  static const op_fn fn[NOPS] = {op_memcpy, op_sha256, op_stream, op_put,
                                 op_put,    op_get,    op_view};
  static const int store_of[NOPS] = {0, 0, 0, 0, 1, 0, 0};
  uint64_t bs = b->sizes[size_idx];
  struct result *res = &b->res[b->nres];
  double rate[NOPS][NTRIALS];
  uint64_t k[NOPS], batch[NOPS];
  char sz[32], what[96];
  int rc = 0, op = 0;

  b->bs = bs;
  b->n = ws_blocks(bs);
  b->nw = bs / 8;
  fill_src(b);
  cli_fmt_size(bs, sz, sizeof sz);

  for (op = 0; op < NOPS; op++) {
    memset(&res[op], 0, sizeof res[op]);
    res[op].op = op;
    res[op].bs = bs;
    k[op] = 0;
    batch[op] = op == OP_GET_VIEW ? 256 : (1u << 20) / bs;
    if (batch[op] < 1) batch[op] = 1;
    if (batch[op] > 256) batch[op] = 256;
  }

  for (op = 0; op < NOPS; op++) {
    snprintf(what, sizeof what, "%s %s: warm-up", op_name[op], sz);
    cli_progress(size_idx * NOPS + op + 1, ncells, what);
    b->s = store_of[op];
    if ((rc = warmup(b, fn[op], &k[op])) != 0) goto fail;
  }
  for (int t = 0; t < NTRIALS; t++)
    for (op = 0; op < NOPS; op++) {
      snprintf(what, sizeof what, "%s %s: trial %d/%d", op_name[op], sz, t + 1,
               NTRIALS);
      cli_progress(size_idx * NOPS + op + 1, ncells, what);
      b->s = store_of[op];
      rc = trial(b, fn[op], batch[op], b->seconds / NTRIALS, &k[op],
                 &rate[op][t], &res[op]);
      if (rc != 0) goto fail;
    }
  op = OP_PUT_DEDUP;
  if ((rc = check_dedup_store(b)) != 0) goto fail;

  /* Ratios pair each trial with the memcpy (sha256) trial of the same
   * round, then take the median: drift between rounds cancels. */
  for (op = 0; op < NOPS; op++) {
    double rm[NTRIALS], rs[NTRIALS], rst[NTRIALS];

    for (int t = 0; t < NTRIALS; t++) {
      rm[t] = rate[op][t] / rate[OP_MEMCPY][t];
      rs[t] = rate[op][t] / rate[OP_SHA256][t];
      rst[t] = rate[op][t] / rate[OP_STREAM][t];
    }
    res[op].ratio_memcpy = cli_median(rm, NTRIALS);
    res[op].ratio_sha = cli_median(rs, NTRIALS);
    res[op].ratio_stream = cli_median(rst, NTRIALS);
  }
  for (op = 0; op < NOPS; op++) {
    struct result *r = &res[op];

    summarise(b, rate[op], r);
    set_target(r);
    if (b->json) {
      cli_progress_done();
      json_result(r);
    }
  }
  b->nres += NOPS;

  if ((rc = clear_size(b)) != 0) {
    cli_err("bench dram: %s: clearing the stores: %s", sz, b->err);
    return CLI_FAIL;
  }
  return CLI_OK;

fail:
  cli_err("bench dram: %s %s: %s", op_name[op], sz, b->err);
  return CLI_FAIL;
}

int cli_bench_dram(int argc, char **argv, const cli_common *co0) {
  struct bench *b;
  cli_common co = *co0;
  cli_machine m;
  struct cascade_stats st[2];
  char policy[64] = "?", latency[16] = "?";
  uint64_t need = 0;
  int rc;

  b = calloc(1, sizeof *b);
  if (b == NULL) {
    cli_err("bench dram: out of memory");
    return CLI_FAIL;
  }
  rc = parse_args(b, &co, argc, argv);
  if (rc != 0) {
    free(b);
    return rc > 0 ? CLI_OK : CLI_USAGE;
  }

  /* Room: the working set plus one block in flight while a value is being
   * replaced, plus alignment. */
  for (int i = 0; i < b->nsizes; i++) {
    uint64_t n = ws_blocks(b->sizes[i]), bytes = n * b->sizes[i];
    uint64_t room = bytes + b->sizes[i] + n * 64;

    if (bytes > b->buf_bytes) b->buf_bytes = bytes;
    if (room > need) need = room;
    if (n > b->stamp_cap) b->stamp_cap = n;
  }
  if (b->capacity < need) {
    char c1[32], c2[32];

    cli_err("bench dram: capacity %s is too small for the working set; "
            "need at least %s (--capacity)",
            cli_fmt_size(b->capacity, c1, sizeof c1),
            cli_fmt_size(need, c2, sizeof c2));
    free(b);
    return CLI_USAGE;
  }

  /* Engine settings first (a bad --set is a usage error), then buffers. */
  cli_progress(0, b->nsizes * NOPS, "opening the stores, pre-faulting");
  rc = open_store(b, &co, 0, &b->store[0]);
  if (rc == CLI_OK) rc = open_store(b, &co, 1, &b->store[1]);
  if (rc != CLI_OK) {
    cleanup(b);
    free(b);
    return rc;
  }
  {
    cascade_config *cfg = NULL;

    if (cascade_config_new(&cfg) == 0) {
      cli_apply_settings(&co, cfg);
      cascade_config_get(cfg, "policy", policy, sizeof policy);
      cascade_config_get(cfg, "stats.latency", latency, sizeof latency);
      cascade_config_free(cfg);
    }
  }

  b->map_bytes = b->buf_bytes + DST_SKEW;
  b->src_map = map_buffer(b->map_bytes);
  b->dst_map = map_buffer(b->map_bytes);
  b->src = b->src_map ? b->src_map + SRC_SKEW : NULL;
  b->dst = b->dst_map ? b->dst_map + DST_SKEW : NULL;
  b->stamp[0] = calloc(b->stamp_cap, sizeof(uint64_t));
  b->stamp[1] = calloc(b->stamp_cap, sizeof(uint64_t));
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
  b->md_fetched = EVP_MD_fetch(NULL, "SHA256", NULL);
  b->md = b->md_fetched;
#else
  b->md = EVP_sha256();
#endif
  if (b->src == NULL || b->dst == NULL || b->stamp[0] == NULL ||
      b->stamp[1] == NULL || b->md == NULL) {
    cli_err("bench dram: cannot allocate 2 x %zu bytes of buffers or set "
            "up OpenSSL SHA-256",
            b->buf_bytes);
    cleanup(b);
    free(b);
    return CLI_FAIL;
  }

  memset(st, 0, sizeof st);
  cascade_stats(b->store[0], &st[0]);
  cli_machine_facts(&m);
  print_header(b, &m, &st[0], policy, latency);

  rc = CLI_OK;
  for (int i = 0; i < b->nsizes && rc == CLI_OK; i++)
    rc = run_size(b, i, b->nsizes * NOPS);
  cli_progress_done();

  if (rc == CLI_OK) {
    if (!b->json) print_table(b);
    for (int s = 0; s < 2; s++) {
      memset(&st[s], 0, sizeof st[s]);
      if (cascade_stats(b->store[s], &st[s]) != 0) continue;
      if (st[s].tier[CASCADE_TIER_DRAM].evictions != 0)
        cli_err("warning: store %d (dedup %s) evicted %" PRIu64
                " blocks: the numbers include eviction; raise --capacity",
                s, s ? "on" : "off", st[s].tier[CASCADE_TIER_DRAM].evictions);
    }
    if (st[1].dedup_hits != 0)
      cli_err("warning: the dedup store reports %" PRIu64
              " dedup hits although every value put was distinct",
              st[1].dedup_hits);
    if (b->stats) {
      FILE *f = b->json ? stderr : stdout;

      for (int s = 0; s < 2; s++) {
        fprintf(f, "\nstore %d (dedup %s) after the run:\n\n", s,
                s ? "on" : "off");
        cli_print_stats(f, &st[s], "  ");
      }
    }
  }
  cleanup(b);
  free(b);
  return rc;
}
