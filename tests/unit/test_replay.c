/*
 * test_replay.c - the trace replayer (src/sim): the simulator's LRU against
 * an independent, straightforward LRU (exact equality of counts), the
 * simulator against the real engine (same hit counts at a DRAM capacity of
 * exactly N blocks), the bounds (Belady >= every policy, infinite >=
 * Belady), and trace parsing errors reported with their line number.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cascade.h"
#include "policy/policy.h"
#include "sim/sim.h"
#include "sim/trace.h"
#include "testutil.h"

/* ---- traces ------------------------------------------------------------------ */

/* Add a request of input ids ids[0..n) (raw ids), no output blocks. */
static void add(sim_trace *t, const uint64_t *ids, uint32_t n) {
  assert_int_equal(sim_trace_add(t, t->nreq * 1000, n * t->tokens_per_block,
                                 16, ids, n, 0, 0),
                   0);
}

/* A random prefix-chained trace: requests walk down a random tree from the
 * root, going to an existing child with probability `reuse`, else to a new
 * node; raw id = node + 1 (ids are prefix-chained by construction). */
static void random_trace(sim_trace *t, uint64_t seed, size_t nreq,
                         uint32_t maxlen, unsigned reuse_pct) {
  enum { MAXN = 1 << 16, MAXC = 6 };
  static uint32_t child[MAXN][MAXC], nch[MAXN];
  uint32_t nodes = 1; /* node 0: the root, not a block */
  uint64_t s = seed, ids[512];
  memset(nch, 0, sizeof nch);
  sim_trace_init(t, 16, "random");
  for (size_t r = 0; r < nreq; r++) {
    uint32_t len = 1 + (uint32_t)(tu_splitmix(&s) % maxlen), cur = 0, n = 0;
    for (uint32_t i = 0; i < len; i++) {
      uint32_t nxt;
      if (nch[cur] && (tu_splitmix(&s) % 100 < reuse_pct || nch[cur] == MAXC ||
                       nodes == MAXN))
        nxt = child[cur][tu_splitmix(&s) % nch[cur]];
      else if (nodes < MAXN)
        child[cur][nch[cur]++] = nxt = nodes++;
      else
        break;
      ids[n++] = nxt; /* raw id = node number (>= 1) */
      cur = nxt;
    }
    if (n) add(t, ids, n);
  }
}

/* ---- an independent LRU, straightforward ------------------------------------ */

/* The request model of sim.h, written out with a timestamp per block and a
 * linear scan for the least recently used one. */
static void plain_lru(const sim_trace *t, uint64_t cap, uint64_t *hits,
                      uint64_t *evictions, uint64_t *stored,
                      uint64_t *rejected) {
  uint8_t *in = calloc(t->nuniq, 1), *pend = calloc(t->nuniq, 1);
  uint64_t *last = calloc(t->nuniq, sizeof *last), clock = 0, used = 0;
  assert_non_null(in);
  assert_non_null(pend);
  assert_non_null(last);
  *hits = *evictions = *stored = *rejected = 0;
  for (size_t r = 0; r < t->nreq; r++) {
    const sim_req *q = &t->req[r];
    const uint32_t *id = t->blk + q->off;
    uint32_t h = 0;
    while (h < q->nin && in[id[h]]) h++;
    *hits += h;
    for (uint32_t i = 0; i < h; i++) last[id[i]] = ++clock;
    for (uint32_t start = h; start < q->nin; start += REP_PUT_CHUNK) {
      uint32_t end = q->nin - start > REP_PUT_CHUNK ? start + REP_PUT_CHUNK
                                                    : q->nin;
      uint32_t batch[REP_PUT_CHUNK], nb = 0;
      for (uint32_t j = start; j < end; j++) {
        uint32_t x = id[j];
        if (in[x]) {
          last[x] = ++clock;
          continue;
        }
        if (pend[x]) continue;
        while (used + nb >= cap && used > 0) {
          size_t victim = SIZE_MAX;
          for (size_t b = 0; b < t->nuniq; b++)
            if (in[b] && (victim == SIZE_MAX || last[b] < last[victim]))
              victim = b;
          in[victim] = 0;
          used--;
          (*evictions)++;
        }
        if (used + nb >= cap) {
          (*rejected)++;
          continue;
        }
        pend[x] = 1;
        batch[nb++] = x;
      }
      for (uint32_t k = 0; k < nb; k++) {
        pend[batch[k]] = 0;
        in[batch[k]] = 1;
        last[batch[k]] = ++clock;
        used++;
        (*stored)++;
      }
    }
  }
  free(in);
  free(pend);
  free(last);
}

static rep_result sim_with(const sim_trace *t, enum sim_kind kind,
                           const char *policy, uint64_t cap) {
  sim_cfg cfg = {.kind = kind,
                 .ops = policy ? policy_find(policy) : NULL,
                 .capacity = cap};
  rep_result r;
  assert_int_equal(sim_run(t, &cfg, &r, NULL, NULL), 0);
  return r;
}

static void check_lru_exact(const sim_trace *t, uint64_t cap) {
  uint64_t hits, ev, st, rej;
  plain_lru(t, cap, &hits, &ev, &st, &rej);
  rep_result r = sim_with(t, SIM_POLICY, "lru", cap);
  assert_int_equal(r.hits, hits);
  assert_int_equal(r.evictions, ev);
  assert_int_equal(r.stored, st);
  assert_int_equal(r.rejected, rej);
}

/* A hand-worked trace, capacity 3 blocks.
 *   r0 [1 2 3]   miss x3                      cache 1 2 3
 *   r1 [1 2 4]   hits 1 2; 4 evicts 3         cache 1 2 4
 *   r2 [5]       evicts 1 (LRU)               cache 2 4 5
 *   r3 [1 2 3]   no hit (1 gone); the batch: 1 evicts 2 (the LRU,
 *                touched before 4), so 2 is new too and evicts 4, 3 evicts
 *                5 (new blocks of a batch are not evictable)  cache 1 2 3
 *   r4 [1 2 3]   hits 3
 * hits 5, evictions 5, stored 8. */
static void test_lru_hand_worked(void **state) {
  sim_trace t;
  sim_trace_init(&t, 512, "hand");
  const uint64_t a[] = {1, 2, 3}, b[] = {1, 2, 4}, c[] = {5};
  add(&t, a, 3);
  add(&t, b, 3);
  add(&t, c, 1);
  add(&t, a, 3);
  add(&t, a, 3);
  rep_result r = sim_with(&t, SIM_POLICY, "lru", 3);
  assert_int_equal(r.hits, 5);
  assert_int_equal(r.evictions, 5);
  assert_int_equal(r.stored, 8);
  assert_int_equal(r.lookups, 13);
  assert_int_equal(r.tokens_saved, 5 * 512);
  check_lru_exact(&t, 3);
  /* infinite: r1 2 hits, r3 3, r4 3 */
  assert_int_equal(sim_with(&t, SIM_INFINITE, NULL, 0).hits, 8);
  sim_trace_free(&t);
}

static void test_lru_exact_random(void **state) {
  static const uint64_t caps[] = {1, 2, 5, 17, 64, 100, 300, 1000};
  for (uint64_t seed = 1; seed <= 4; seed++) {
    sim_trace t;
    random_trace(&t, seed, 400, seed == 4 ? 150 : 12, 70);
    for (size_t k = 0; k < sizeof caps / sizeof caps[0]; k++)
      check_lru_exact(&t, caps[k]);
    sim_trace_free(&t);
  }
}

/* ---- simulator against the engine ---------------------------------------------- */

static void check_engine(const sim_trace *t, const char *policy,
                         uint64_t nblocks, int with_disk) {
  const uint64_t B = 4096; /* a multiple of 64: the arena fits N exactly */
  char cap[32];
  snprintf(cap, sizeof cap, "%llu", (unsigned long long)(nblocks * B));
  cascade *c = tu_open_with("dram.capacity", cap, "policy", policy,
                            "index.shards", "1", "stats.latency", "false",
                            NULL);
  rep_engine_opts o = {.block_bytes = B};
  rep_result e;
  assert_int_equal(rep_engine_run(c, t, &o, &e, NULL, NULL), 0);
  cascade_close(c);
  rep_result s = sim_with(t, SIM_POLICY, policy, nblocks);
  (void)with_disk;
  assert_int_equal(e.read_errors, 0);
  assert_int_equal(e.requests, s.requests);
  assert_int_equal(e.lookups, s.lookups);
  assert_int_equal(e.hits, s.hits);
  assert_int_equal(e.tier_hits[CASCADE_TIER_DRAM], s.hits);
  assert_int_equal(e.tokens_saved, s.tokens_saved);
  assert_int_equal(e.stored, s.stored);
  assert_int_equal(e.rejected, s.rejected);
  assert_int_equal(e.evictions, s.evictions);
}

static void test_engine_matches_sim(void **state) {
  for (uint64_t seed = 1; seed <= 3; seed++) {
    sim_trace t;
    random_trace(&t, seed, 300, seed == 3 ? 100 : 10, 70);
    check_engine(&t, "lru", 8, 0);
    check_engine(&t, "lru", 50, 0);
    check_engine(&t, "lru", 200, 0);
    check_engine(&t, "semantic", 50, 0);
    sim_trace_free(&t);
  }
}

/* ---- bounds ------------------------------------------------------------------ */

static void check_bounds(const sim_trace *t, uint64_t cap) {
  rep_result bel = sim_with(t, SIM_BELADY, NULL, cap);
  rep_result inf = sim_with(t, SIM_INFINITE, NULL, cap);
  assert_true(inf.hits >= bel.hits);
  assert_int_equal(inf.evictions, 0);
  for (int i = 0; policy_names[i]; i++) {
    rep_result r = sim_with(t, SIM_POLICY, policy_names[i], cap);
    if (r.hits > bel.hits)
      fail_msg("%s: %llu hits > belady's %llu at %llu blocks",
               policy_names[i], (unsigned long long)r.hits,
               (unsigned long long)bel.hits, (unsigned long long)cap);
    assert_true(r.hits <= inf.hits);
  }
}

static void test_bounds(void **state) {
  static const uint64_t caps[] = {1, 3, 10, 40, 150, 600};
  for (uint64_t seed = 1; seed <= 5; seed++) {
    sim_trace t;
    random_trace(&t, seed * 7, 500, seed == 5 ? 80 : 16, 60 + 5 * seed);
    for (size_t k = 0; k < sizeof caps / sizeof caps[0]; k++)
      check_bounds(&t, caps[k]);
    sim_trace_free(&t);
  }
  /* the synthetic workload, small */
  sim_synth s;
  sim_synth_defaults(&s);
  s.requests = 300;
  s.system_blocks = 8;
  s.doc_blocks = 8;
  s.docs = 30;
  sim_trace t;
  char err[256];
  sim_trace_init(&t, s.tpb, "synthetic");
  assert_int_equal(sim_trace_synth(&t, &s, err, sizeof err), 0);
  assert_int_equal(t.nreq, 300);
  for (size_t k = 0; k < sizeof caps / sizeof caps[0]; k++)
    check_bounds(&t, caps[k]);
  sim_trace_free(&t);
}

/* The generator is deterministic in its seed, and shares prefixes. */
static void test_synthetic(void **state) {
  sim_synth s;
  sim_synth_defaults(&s);
  s.requests = 200;
  sim_trace a, b;
  char err[256];
  sim_trace_init(&a, s.tpb, "synthetic");
  sim_trace_init(&b, s.tpb, "synthetic");
  assert_int_equal(sim_trace_synth(&a, &s, err, sizeof err), 0);
  assert_int_equal(sim_trace_synth(&b, &s, err, sizeof err), 0);
  assert_int_equal(a.nblk, b.nblk);
  for (size_t i = 0; i < a.nblk; i++)
    assert_true(a.raw[a.blk[i]] == b.raw[b.blk[i]]);
  for (size_t r = 1; r < a.nreq; r++)
    assert_true(a.req[r].t_us >= a.req[r - 1].t_us);
  rep_result inf = sim_with(&a, SIM_INFINITE, NULL, 0);
  assert_true(inf.hits > inf.lookups / 4); /* prompts and history reused */
  sim_trace_free(&a);
  sim_trace_free(&b);
}

/* ---- parsing ------------------------------------------------------------------ */

static char tmpfile_path[64];

static const char *write_tmp(const char *text) {
  snprintf(tmpfile_path, sizeof tmpfile_path, "/tmp/test_replay_XXXXXX");
  int fd = mkstemp(tmpfile_path);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
  close(fd);
  return tmpfile_path;
}

static void expect_mooncake_error(const char *text, const char *want) {
  sim_trace t;
  char err[512] = "";
  const char *path = write_tmp(text);
  sim_trace_init(&t, 512, "mooncake");
  int rc = sim_trace_load_mooncake(&t, path, 0, err, sizeof err);
  unlink(path);
  sim_trace_free(&t);
  assert_int_equal(rc, -EINVAL);
  if (!strstr(err, want)) fail_msg("error '%s' lacks '%s'", err, want);
}

static void expect_azure_error(const char *text, const char *want) {
  sim_trace t;
  char err[512] = "";
  const char *path = write_tmp(text);
  sim_trace_init(&t, 16, "azure");
  int rc = sim_trace_load_azure(&t, path, 0, 16, 0, err, sizeof err);
  unlink(path);
  sim_trace_free(&t);
  assert_int_equal(rc, -EINVAL);
  if (!strstr(err, want)) fail_msg("error '%s' lacks '%s'", err, want);
}

#define GOOD "{\"timestamp\": 0, \"input_length\": 600, " \
             "\"output_length\": 10, \"hash_ids\": [0, 1]}\n"

static void test_parse_mooncake(void **state) {
  sim_trace t;
  char err[512] = "";
  const char *path = write_tmp(GOOD "\n" GOOD);
  sim_trace_init(&t, 512, "mooncake");
  assert_int_equal(sim_trace_load_mooncake(&t, path, 0, err, sizeof err), 0);
  unlink(path);
  assert_int_equal(t.nreq, 2);
  assert_int_equal(t.req[0].nin, 2);
  assert_int_equal(t.req[0].nout, 0); /* 610 tokens fit the 2 blocks */
  assert_int_equal(t.nuniq, 2);
  sim_trace_free(&t);

  expect_mooncake_error(GOOD GOOD "{\"timestamp\": 0, \n", ":3: not valid JSON");
  expect_mooncake_error(GOOD "{\"timestamp\": 1, \"input_length\": 5, "
                             "\"output_length\": 1}\n",
                        ":2: hash_ids: missing");
  expect_mooncake_error(GOOD GOOD GOOD "{\"timestamp\": 1, \"input_length\": "
                                       "\"x\", \"output_length\": 1, "
                                       "\"hash_ids\": []}\n",
                        ":4: input_length: not an integer");
  expect_mooncake_error("{\"timestamp\": 1, \"input_length\": 5, "
                        "\"output_length\": 1, \"hash_ids\": [1, -2]}\n",
                        ":1: hash_ids");
  expect_mooncake_error(GOOD "[1, 2]\n", ":2: line: not a JSON object");
  expect_mooncake_error(GOOD "{} {}\n", ":2:");
  expect_mooncake_error("", "no requests");

  char err2[256] = "";
  sim_trace_init(&t, 512, "mooncake");
  assert_int_equal(sim_trace_load_mooncake(&t, "/nonexistent/x.jsonl", 0,
                                           err2, sizeof err2),
                   -ENOENT);
  assert_non_null(strstr(err2, "/nonexistent/x.jsonl"));
  sim_trace_free(&t);
}

static void test_parse_azure(void **state) {
  sim_trace t;
  char err[512] = "";
  const char *path =
      write_tmp("TIMESTAMP,ContextTokens,GeneratedTokens\n"
                "2023-11-16 18:17:03.9799600,40,10\n"
                "2023-11-16 18:17:04.0319600,16,8\n");
  sim_trace_init(&t, 16, "azure");
  assert_int_equal(sim_trace_load_azure(&t, path, 0, 16, 16, err, sizeof err),
                   0);
  unlink(path);
  assert_int_equal(t.nreq, 2);
  assert_int_equal(t.req[0].nin, 3);
  assert_int_equal(t.req[0].nout, 1); /* 50 tokens: 4 blocks */
  assert_int_equal(t.req[1].t_us, 52000);
  assert_int_equal(t.req[0].nprefix, 1);
  /* the shared first block is the only reuse */
  assert_int_equal(t.blk[t.req[0].off], t.blk[t.req[1].off]);
  assert_int_equal(sim_with(&t, SIM_INFINITE, NULL, 0).hits, 1);
  sim_trace_free(&t);

  expect_azure_error("TIMESTAMP,Context\n", ":1: expected the header");
  expect_azure_error("TIMESTAMP,ContextTokens,GeneratedTokens\n"
                     "2023-11-16 18:17:03.97,40,10\n"
                     "2023-11-16 18:17:03.98,4x0,10\n",
                     ":3: bad ContextTokens");
  expect_azure_error("TIMESTAMP,ContextTokens,GeneratedTokens\n"
                     "yesterday,40,10\n",
                     ":2: bad TIMESTAMP");
  expect_azure_error("TIMESTAMP,ContextTokens,GeneratedTokens\n"
                     "2023-11-16 18:17:03.97,40\n",
                     ":2: expected 3");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_lru_hand_worked),
      cmocka_unit_test(test_lru_exact_random),
      cmocka_unit_test(test_engine_matches_sim),
      cmocka_unit_test(test_bounds),
      cmocka_unit_test(test_synthetic),
      cmocka_unit_test(test_parse_mooncake),
      cmocka_unit_test(test_parse_azure),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
