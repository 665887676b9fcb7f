/*
 * replay.c - `cascade replay`: drive a store with a request trace, the way
 * an inference engine would (see src/sim/sim.h for the request model), and
 * report prefix hit ratios, bytes read per tier, evictions, promotions,
 * demotions, dedup savings, throughput and prefill tokens saved.
 *
 * Workloads: a Mooncake JSONL or Azure LLM CSV trace (--trace), or the
 * built-in synthetic chat/RAG generator (the default; src/sim/trace.c).
 * Modes:
 *   engine (default)  an embedded store with real bytes: DRAM (--dram) and,
 *                     with --disk SIZE, a disk tier in --disk-dir or in a
 *                     temporary directory removed at the end;
 *   --dry-run         the metadata-only simulator (src/sim/sim.c), with the
 *                     same policy code, for capacities beyond this machine;
 *   --compare         every policy of policy_names[] (through the engine,
 *                     or the simulator with --dry-run), plus Belady and the
 *                     infinite-capacity bound (simulator), at one or more
 *                     capacities (--capacities 1%,5%,...: shares of the
 *                     trace's distinct blocks, or sizes); --plot FILE.png
 *                     draws hit ratio against capacity with gnuplot.
 *
 * Block size: bytes_per_token (--model preset or --bytes-per-token) x
 * tokens_per_block.  For Mooncake a block stands for 512 tokens of the
 * trace whatever --tokens-per-block says: that option only scales the
 * block's bytes down so real-bytes runs fit.
 *
 * Output: text tables on stdout, or with --json one JSON object per line
 * (a "replay" record per run, a "compare" record per policy and
 * capacity).  Progress on stderr when it is a terminal.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../sim/sim.h"
#include "cli.h"

/* The simulator's policies (src/policy/policy.h, compiled into the CLI):
 * declared here so that this file sees include/ and src/sim only. */
extern const char *const policy_names[];
const struct policy_ops *policy_find(const char *name);

#define MAX_CAPS 16
#define MAX_RUNS 16

enum fmt { FMT_AUTO, FMT_MOONCAKE, FMT_AZURE, FMT_SYNTH };

struct rep {
  const char *trace, *disk_dir, *plot, *model, *caps_arg;
  enum fmt fmt;
  size_t limit;
  uint32_t shared_prefix;
  uint64_t bpt, tpb, disk, dram, blocks;
  int have_bpt, have_tpb, have_dram, dry, compare, json, with_output,
      no_prefix;
  double speed;
  const char *policy;
  sim_synth syn;
  uint64_t sys_tokens, doc_tokens, user_tokens, out_tokens;
  /* derived */
  uint64_t block_bytes;
  size_t uniq;
  sim_trace t;
  char trace_desc[512];
};

void cli_replay_usage(FILE *f) {
  fprintf(
      f,
      "Usage: cascade replay [OPTIONS]\n"
      "\n"
      "Replay a request trace through an embedded store (real tiers, real "
      "bytes), as\n"
      "an inference engine would: per request, match the prefix of its block "
      "keys,\n"
      "read the hits, store the missing blocks with parent links.  Prints "
      "prefix\n"
      "hit ratios (overall and per tier), bytes read per tier, evictions, "
      "promotions,\n"
      "demotions, dedup savings, throughput and prefill tokens saved.\n"
      "\n"
      "Workload (default: the synthetic chat/RAG generator):\n"
      "  --trace FILE          Mooncake JSONL or Azure LLM CSV trace\n"
      "  --format F            mooncake, azure or synthetic [by the file's "
      "name]\n"
      "  --limit N             replay the first N requests only\n"
      "  --shared-prefix TOK   Azure: tokens every request shares (a system "
      "prompt) [0]\n"
      "  synthetic: --seed N [1] --requests N [2000] --system-prompts N [8]\n"
      "    --system-tokens N [1024] --docs N [200] --doc-tokens N [1024] "
      "--zipf S [1.0]\n"
      "    --rag-share F [0.5] --turns F [4] --user-tokens N [64] "
      "--output-tokens N [128]\n"
      "    --rate R new sessions/s [2] --think S seconds between turns [20]\n"
      "\n"
      "Blocks:\n"
      "  --model NAME          KV size preset: llama3-8b (128 KiB/token), "
      "llama3-70b\n"
      "                        (320 KiB), qwen2.5-7b (56 KiB), qwen2.5-32b "
      "(256 KiB),\n"
      "                        qwen2.5-72b (320 KiB) [llama3-8b; synthetic: "
      "1 KiB/token]\n"
      "  --bytes-per-token SZ  KV bytes per token (instead of --model)\n"
      "  --tokens-per-block N  tokens per block [512 for Mooncake, else 16]; "
      "for Mooncake\n"
      "                        only the block's bytes shrink (ids stay "
      "512-token blocks)\n"
      "  --with-output         also store each request's output blocks\n"
      "  --no-prefix-flag      do not mark system prompts / documents as "
      "protected\n"
      "\n"
      "Store:\n"
      "  --dram SIZE           DRAM tier capacity [64m]\n"
      "  --disk SIZE           add a disk tier of SIZE (in --disk-dir, or a "
      "temporary\n"
      "                        directory removed at the end)\n"
      "  --disk-dir DIR        directory for the disk tier's files\n"
      "  --policy NAME         eviction policy (%s",
      policy_names[0]);
  for (int i = 1; policy_names[i]; i++) fprintf(f, ", %s", policy_names[i]);
  fprintf(
      f,
      ")\n"
      "  --set NAME=VALUE      any engine setting (cascade config lists "
      "them)\n"
      "  --speed X             0 = as fast as possible [0]; X = arrival "
      "times / X\n"
      "\n"
      "Modes:\n"
      "  --dry-run             simulate: metadata only, no payload bytes, "
      "DRAM only\n"
      "  --blocks N            --dry-run capacity in blocks (else --dram, "
      "else 10%%)\n"
      "  --compare             every policy plus belady (offline optimum) "
      "and infinite\n"
      "  --capacities LIST     --compare at these capacities: P%% of the "
      "trace's distinct\n"
      "                        blocks or sizes, e.g. 1%%,5%%,10%%,20%% "
      "[the --dram capacity]\n"
      "  --plot FILE.png       with --compare: hit ratio against capacity "
      "(gnuplot)\n"
      "  --json                one JSON object per line instead of tables\n");
}

/* ---- arguments ------------------------------------------------------------ */

static int parse_u64(const char *opt, const char *v, uint64_t *out) {
  char *end;
  errno = 0;
  unsigned long long x = strtoull(v, &end, 10);
  if (errno || end == v || *end || v[0] == '-') {
    cli_err("replay: %s %s: expected a whole number", opt, v);
    return -1;
  }
  *out = x;
  return 0;
}

static int parse_dbl(const char *opt, const char *v, double lo, double hi,
                     double *out) {
  char *end;
  double x = strtod(v, &end);
  if (end == v || *end || !(x >= lo && x <= hi)) {
    cli_err("replay: %s %s: expected a number in [%g, %g]", opt, v, lo, hi);
    return -1;
  }
  *out = x;
  return 0;
}

static int parse_args(struct rep *p, cli_common *co, int argc, char **argv) {
  sim_synth_defaults(&p->syn);
  p->sys_tokens = 1024;
  p->doc_tokens = 1024;
  p->user_tokens = 64;
  p->out_tokens = 128;
  for (int i = 1; i < argc;) {
    const char *a = argv[i], *v;
    int r;
    uint64_t u;
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
      cli_replay_usage(stdout);
      return 1;
    }
#define FLAG(nm, field)                                                        \
  if (strcmp(a, nm) == 0) {                                                    \
    p->field = 1;                                                              \
    i++;                                                                       \
    continue;                                                                  \
  }
    FLAG("--dry-run", dry)
    FLAG("--compare", compare)
    FLAG("--json", json)
    FLAG("--with-output", with_output)
    FLAG("--no-prefix-flag", no_prefix)
#undef FLAG
#define OPT(nm)                                                                \
  if ((r = cli_opt_value(argc, argv, &i, nm, &v)) < 0) return -1;             \
  if (r > 0)
    OPT("--trace") {
      p->trace = v;
      continue;
    }
    OPT("--format") {
      if (strcmp(v, "mooncake") == 0)
        p->fmt = FMT_MOONCAKE;
      else if (strcmp(v, "azure") == 0)
        p->fmt = FMT_AZURE;
      else if (strcmp(v, "synthetic") == 0)
        p->fmt = FMT_SYNTH;
      else {
        cli_err("replay: --format %s: expected mooncake, azure or synthetic",
                v);
        return -1;
      }
      continue;
    }
    OPT("--limit") {
      if (parse_u64(a, v, &u) < 0) return -1;
      p->limit = (size_t)u;
      continue;
    }
    OPT("--shared-prefix") {
      if (parse_u64(a, v, &u) < 0 || u > UINT32_MAX) return -1;
      p->shared_prefix = (uint32_t)u;
      continue;
    }
    OPT("--model") {
      p->model = v;
      continue;
    }
    OPT("--bytes-per-token") {
      if (cli_parse_size(v, &p->bpt) < 0 || p->bpt == 0) {
        cli_err("replay: --bytes-per-token %s: not a size", v);
        return -1;
      }
      p->have_bpt = 1;
      continue;
    }
    OPT("--tokens-per-block") {
      if (parse_u64(a, v, &p->tpb) < 0) return -1;
      if (p->tpb == 0 || p->tpb > 1u << 20) {
        cli_err("replay: --tokens-per-block %s: expected 1..1048576", v);
        return -1;
      }
      p->have_tpb = 1;
      continue;
    }
    OPT("--disk") {
      if (cli_parse_size(v, &p->disk) < 0 || p->disk < (8u << 20)) {
        cli_err("replay: --disk %s: expected a size of at least 8m", v);
        return -1;
      }
      continue;
    }
    OPT("--disk-dir") {
      p->disk_dir = v;
      continue;
    }
    OPT("--speed") {
      if (parse_dbl(a, v, 0, 1e9, &p->speed) < 0) return -1;
      continue;
    }
    OPT("--blocks") {
      if (parse_u64(a, v, &p->blocks) < 0) return -1;
      continue;
    }
    OPT("--capacities") {
      p->caps_arg = v;
      continue;
    }
    OPT("--plot") {
      p->plot = v;
      continue;
    }
#define SYN_U(nm, dst, lo)                                                     \
  OPT(nm) {                                                                    \
    if (parse_u64(a, v, &u) < 0) return -1;                                    \
    if (u + 1 < (uint64_t)(lo) + 1 || u > UINT32_MAX) {                                          \
      cli_err("replay: %s %s: out of range", nm, v);                           \
      return -1;                                                               \
    }                                                                          \
    dst = u;                                                                   \
    continue;                                                                  \
  }
    OPT("--seed") {
      if (parse_u64(a, v, &p->syn.seed) < 0) return -1;
      continue;
    }
    SYN_U("--requests", p->syn.requests, 1)
    SYN_U("--system-prompts", p->syn.system_prompts, 1)
    SYN_U("--system-tokens", p->sys_tokens, 1)
    SYN_U("--docs", p->syn.docs, 0)
    SYN_U("--doc-tokens", p->doc_tokens, 1)
    SYN_U("--user-tokens", p->user_tokens, 1)
    SYN_U("--output-tokens", p->out_tokens, 1)
#undef SYN_U
    OPT("--zipf") {
      if (parse_dbl(a, v, 0, 10, &p->syn.zipf) < 0) return -1;
      continue;
    }
    OPT("--rag-share") {
      if (parse_dbl(a, v, 0, 1, &p->syn.rag_share) < 0) return -1;
      continue;
    }
    OPT("--turns") {
      if (parse_dbl(a, v, 1, 1000, &p->syn.turns) < 0) return -1;
      continue;
    }
    OPT("--rate") {
      if (parse_dbl(a, v, 1e-6, 1e9, &p->syn.rate) < 0) return -1;
      continue;
    }
    OPT("--think") {
      if (parse_dbl(a, v, 0, 1e9, &p->syn.think_s) < 0) return -1;
      continue;
    }
#undef OPT
    r = cli_common_option(co, argc, argv, &i);
    if (r < 0) return -1;
    if (r == 0) {
      cli_err("replay: unexpected argument '%s' (see cascade replay --help)",
              a);
      return -1;
    }
  }
  /* --dram / --policy are common options: read them back. */
  for (size_t k = 0; k < co->nset; k++) {
    if (strcmp(co->set[k].name, "dram.capacity") == 0) {
      if (cli_parse_size(co->set[k].value, &p->dram) < 0) {
        cli_err("replay: --dram %s: not a size", co->set[k].value);
        return -1;
      }
      p->have_dram = 1;
    } else if (strcmp(co->set[k].name, "policy") == 0) {
      p->policy = co->set[k].value;
    }
  }
  if (!p->have_dram) p->dram = 64u << 20;
  if (p->fmt == FMT_AUTO) {
    if (!p->trace) {
      p->fmt = FMT_SYNTH;
    } else {
      size_t n = strlen(p->trace);
      p->fmt = n >= 4 && strcmp(p->trace + n - 4, ".csv") == 0 ? FMT_AZURE
                                                               : FMT_MOONCAKE;
    }
  }
  if (p->fmt != FMT_SYNTH && !p->trace) {
    cli_err("replay: --format %s needs --trace FILE",
            p->fmt == FMT_AZURE ? "azure" : "mooncake");
    return -1;
  }
  if (p->fmt == FMT_SYNTH && p->trace) {
    cli_err("replay: --trace and --format synthetic exclude each other");
    return -1;
  }
  if (p->model && p->have_bpt) {
    cli_err("replay: give --model or --bytes-per-token, not both");
    return -1;
  }
  if (p->model) {
    if ((p->bpt = cli_model_bpt(p->model)) == 0) {
      cli_err("replay: --model %s: unknown (llama3-8b, llama3-70b, "
              "qwen2.5-7b, qwen2.5-32b, qwen2.5-72b)",
              p->model);
      return -1;
    }
  } else if (!p->have_bpt) {
    p->model = p->fmt == FMT_SYNTH ? NULL : cli_model_name(0);
    p->bpt = p->fmt == FMT_SYNTH ? 1024 : cli_model_bpt(cli_model_name(0));
  }
  if (!p->have_tpb) p->tpb = p->fmt == FMT_MOONCAKE ? 512 : 16;
  if (p->bpt > UINT64_MAX / p->tpb) {
    cli_err("replay: block size overflows");
    return -1;
  }
  p->block_bytes = p->bpt * p->tpb;
  if (p->policy && !policy_find(p->policy)) {
    cli_err("replay: --policy %s: unknown", p->policy);
    return -1;
  }
  if (p->plot && !p->compare) {
    cli_err("replay: --plot needs --compare");
    return -1;
  }
  if (p->disk_dir && !p->disk) {
    cli_err("replay: --disk-dir needs --disk SIZE");
    return -1;
  }
  if (p->disk && p->dry) {
    cli_err("replay: --dry-run simulates the DRAM tier only (drop --disk)");
    return -1;
  }
  return 0;
}

/* ---- the trace ---------------------------------------------------------------- */

static int load_trace(struct rep *p) {
  char err[512] = "";
  int rc;
  if (p->fmt == FMT_MOONCAKE) {
    sim_trace_init(&p->t, 512, "mooncake");
    rc = sim_trace_load_mooncake(&p->t, p->trace, p->limit, err, sizeof err);
  } else if (p->fmt == FMT_AZURE) {
    sim_trace_init(&p->t, (uint32_t)p->tpb, "azure");
    rc = sim_trace_load_azure(&p->t, p->trace, p->limit, (uint32_t)p->tpb,
                              p->shared_prefix, err, sizeof err);
  } else {
    sim_synth *s = &p->syn;
    uint64_t tpb = p->tpb;
    s->tpb = (uint32_t)tpb;
    s->system_blocks = (uint32_t)((p->sys_tokens + tpb - 1) / tpb);
    s->doc_blocks = (uint32_t)((p->doc_tokens + tpb - 1) / tpb);
    s->user_blocks = (uint32_t)((p->user_tokens + tpb - 1) / tpb);
    s->output_blocks = (uint32_t)((p->out_tokens + tpb - 1) / tpb);
    if (p->limit && p->limit < s->requests) s->requests = (uint32_t)p->limit;
    sim_trace_init(&p->t, (uint32_t)tpb, "synthetic");
    rc = sim_trace_synth(&p->t, s, err, sizeof err);
  }
  if (rc < 0) {
    cli_err("replay: %s", err);
    return -1;
  }
  p->uniq = sim_trace_unique(&p->t, p->with_output);
  if (p->fmt == FMT_SYNTH)
    snprintf(p->trace_desc, sizeof p->trace_desc,
             "synthetic (seed %" PRIu64 ", %u system prompts, %u documents, "
             "zipf %.2g)",
             p->syn.seed, p->syn.system_prompts, p->syn.docs, p->syn.zipf);
  else
    snprintf(p->trace_desc, sizeof p->trace_desc, "%s (%s)", p->trace,
             p->t.source);
  return 0;
}

/* ---- running ------------------------------------------------------------------ */

static void progress(void *arg, size_t done, size_t total) {
  cli_progress((int)done, (int)total, (const char *)arg);
}

/* Remove the disk tier's files (a flat directory) and the directory. */
static void remove_dir(const char *dir) {
  DIR *d = opendir(dir);
  if (d) {
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
      char path[8192];
      if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
        continue;
      snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
      unlink(path);
    }
    closedir(d);
  }
  if (rmdir(dir) != 0) cli_err("replay: could not remove %s", dir);
}

/* The library's default policy name, into buf. */
static void default_policy(char *buf, size_t cap) {
  cascade_config *cfg = NULL;
  snprintf(buf, cap, "semantic");
  if (cascade_config_new(&cfg) == 0) {
    cascade_config_get(cfg, "policy", buf, cap);
    cascade_config_free(cfg);
  }
}

/* Open a store: the common settings first, then this run's capacity,
 * policy and disk tier. */
static int open_store(const struct rep *p, const cli_common *co,
                      const char *policy, uint64_t dram, const char *disk_dir,
                      cascade **out) {
  cascade_config *cfg = NULL;
  char v[64];
  int rc = cascade_config_new(&cfg);
  if (rc != 0) {
    cli_err("replay: cascade_config_new: %s", cascade_strerror(rc));
    return CLI_FAIL;
  }
  if ((rc = cli_apply_settings(co, cfg)) != CLI_OK) goto out;
  rc = CLI_USAGE;
  snprintf(v, sizeof v, "%" PRIu64, dram);
  if (cli_config_set(cfg, "dram.capacity", v, "replay") != 0) goto out;
  if (policy && cli_config_set(cfg, "policy", policy, "replay") != 0) goto out;
  if (disk_dir) {
    uint64_t seg = p->disk / 16;
    if (seg < p->block_bytes * 4) seg = p->block_bytes * 4;
    if (seg < (1u << 20)) seg = 1u << 20;
    if (seg > (256u << 20)) seg = 256u << 20;
    seg &= ~(uint64_t)((1u << 20) - 1);
    if (cli_config_set(cfg, "disk.dir", disk_dir, "replay") != 0) goto out;
    snprintf(v, sizeof v, "%" PRIu64, p->disk);
    if (cli_config_set(cfg, "disk.capacity", v, "replay") != 0) goto out;
    snprintf(v, sizeof v, "%" PRIu64, seg);
    if (cli_config_set(cfg, "disk.segment_size", v, "replay") != 0) goto out;
  }
  rc = cascade_open(cfg, out);
  if (rc != 0) {
    cli_err("replay: cascade_open: %s", cascade_strerror(rc));
    rc = CLI_FAIL;
    goto out;
  }
  rc = CLI_OK;
out:
  cascade_config_free(cfg);
  return rc;
}

/* One replay through the engine; the store is opened and closed here. */
static int run_engine(struct rep *p, const cli_common *co, const char *policy,
                      uint64_t dram, const char *disk_dir, rep_result *res,
                      char *polname, size_t polcap, const char *what) {
  cascade *c = NULL;
  int rc = open_store(p, co, policy, dram, disk_dir, &c);
  if (rc != CLI_OK) return rc;
  struct cascade_stats st;
  if (polname && cascade_stats(c, &st) == 0)
    snprintf(polname, polcap, "%.*s", (int)sizeof st.policy, st.policy);
  rep_engine_opts o = {.ns = "replay",
                       .block_bytes = p->block_bytes,
                       .with_output = p->with_output,
                       .speed = p->speed,
                       .limit = p->limit,
                       .prefix_flag = !p->no_prefix};
  int e = rep_engine_run(c, &p->t, &o, res, progress, (void *)what);
  cli_progress_done();
  cascade_close(c);
  if (e < 0) {
    cli_err("replay: %s", cascade_strerror(e));
    return CLI_FAIL;
  }
  if (res->read_errors) {
    cli_err("replay: %" PRIu64 " blocks read back wrong or failed",
            res->read_errors);
    return CLI_FAIL;
  }
  return CLI_OK;
}

static int run_sim(struct rep *p, enum sim_kind kind, const char *policy,
                   uint64_t blocks, rep_result *res, const char *what) {
  sim_cfg cfg = {.kind = kind,
                 .ops = policy ? policy_find(policy) : NULL,
                 .capacity = blocks,
                 .with_output = p->with_output,
                 .prefix_flag = !p->no_prefix,
                 .limit = p->limit};
  double t0 = cli_now();
  int rc = sim_run(&p->t, &cfg, res, progress, (void *)what);
  cli_progress_done();
  if (rc < 0) {
    cli_err("replay: simulator: %s", cascade_strerror(rc));
    return CLI_FAIL;
  }
  res->seconds = cli_now() - t0;
  res->tier_bytes[CASCADE_TIER_DRAM] = res->hits * p->block_bytes;
  res->bytes_put = res->stored * p->block_bytes;
  return CLI_OK;
}

static double ratio(uint64_t a, uint64_t b) {
  return b ? (double)a / (double)b : 0.0;
}

static const char *pct(double r, char *buf, size_t cap) {
  snprintf(buf, cap, "%.1f%%", 100.0 * r);
  return buf;
}

static void kv(cli_table *t, const char *a, const char *b, const char *c,
               const char *d) {
  const char *cells[4] = {a, b, c, d};
  cli_table_row(t, cells);
}

static void print_header(const struct rep *p, FILE *f) {
  char a[32], b[32];
  size_t n = p->limit && p->limit < p->t.nreq ? p->limit : p->t.nreq;
  uint64_t lookups = 0;
  for (size_t r = 0; r < n; r++) lookups += p->t.req[r].nin;
  fprintf(f, "cascade replay: %s\n", p->trace_desc);
  fprintf(f,
          "trace:  %s requests, %s block lookups, %s distinct blocks "
          "(%u tokens each)\n",
          cli_fmt_count(n, a, sizeof a),
          cli_fmt_count(lookups, b, sizeof b),
          cli_fmt_count(p->uniq, (char[32]){0}, 32), p->t.tokens_per_block);
  fprintf(f, "blocks: %" PRIu64 " tokens x %s/token%s%s%s = %s\n", p->tpb,
          cli_fmt_size(p->bpt, a, sizeof a), p->model ? " (" : "",
          p->model ? p->model : "", p->model ? ")" : "",
          cli_fmt_size(p->block_bytes, b, sizeof b));
}

static void json_result(const struct rep *p, const char *mode,
                        const char *policy, uint64_t cap_blocks,
                        const rep_result *r) {
  static const char *const tn[4] = {"gpu", "dram", "remote", "disk"};
  printf("{\"type\":\"replay\",\"workload\":");
  cli_json_str(stdout, p->trace_desc);
  printf(",\"source\":");
  cli_json_str(stdout, p->t.source);
  printf(",\"mode\":");
  cli_json_str(stdout, mode);
  printf(",\"policy\":");
  cli_json_str(stdout, policy);
  printf(",\"block_bytes\":%" PRIu64 ",\"tokens_per_block\":%u"
         ",\"capacity_blocks\":%" PRIu64 ",\"disk_bytes\":%" PRIu64
         ",\"distinct_blocks\":%zu",
         p->block_bytes, p->t.tokens_per_block, cap_blocks, p->disk, p->uniq);
  printf(",\"requests\":%" PRIu64 ",\"lookups\":%" PRIu64 ",\"hits\":%" PRIu64
         ",\"hit_ratio\":",
         r->requests, r->lookups, r->hits);
  cli_json_num(stdout, ratio(r->hits, r->lookups));
  printf(",\"tiers\":{");
  int first = 1;
  for (int k = 0; k < 4; k++) {
    if (k != CASCADE_TIER_DRAM && !(k == CASCADE_TIER_DISK && p->disk))
      continue;
    printf("%s\"%s\":{\"hits\":%" PRIu64 ",\"hit_ratio\":", first ? "" : ",",
           tn[k], r->tier_hits[k]);
    cli_json_num(stdout, ratio(r->tier_hits[k], r->lookups));
    printf(",\"bytes_read\":%" PRIu64 "}", r->tier_bytes[k]);
    first = 0;
  }
  printf("},\"stored\":%" PRIu64 ",\"rejected\":%" PRIu64
         ",\"bytes_put\":%" PRIu64 ",\"evictions\":%" PRIu64
         ",\"promotions\":%" PRIu64 ",\"demotions\":%" PRIu64
         ",\"dedup_hits\":%" PRIu64 ",\"dedup_bytes_saved\":%" PRIu64
         ",\"prefill_tokens\":%" PRIu64 ",\"prefill_tokens_saved\":%" PRIu64
         ",\"matched_then_gone\":%" PRIu64 ",\"seconds\":",
         r->stored, r->rejected, r->bytes_put, r->evictions, r->promotions,
         r->demotions, r->dedup_hits, r->dedup_bytes_saved, r->tokens_in,
         r->tokens_saved, r->lost);
  cli_json_num(stdout, r->seconds);
  printf(",\"requests_per_s\":");
  cli_json_num(stdout, r->seconds > 0 ? (double)r->requests / r->seconds : 0);
  printf(",\"read_seconds\":");
  cli_json_num(stdout, r->read_seconds);
  printf(",\"put_seconds\":");
  cli_json_num(stdout, r->put_seconds);
  printf("}\n");
}

static void print_result(const struct rep *p, const rep_result *r) {
  char a[48], b[48], c[48], d[160];
  static const char *const hd[4] = {"result", "", "", ""};
  cli_table *t = cli_table_new(4, hd, "lrlr");
  if (!t) return;
  snprintf(c, sizeof c, "%.0f req/s",
           r->seconds > 0 ? (double)r->requests / r->seconds : 0);
  kv(t, "requests", cli_fmt_count(r->requests, a, sizeof a), "throughput", c);
  snprintf(d, sizeof d, "%s (%s)", cli_fmt_count(r->hits, b, sizeof b),
           pct(ratio(r->hits, r->lookups), c, sizeof c));
  kv(t, "block lookups", cli_fmt_count(r->lookups, a, sizeof a),
     "prefix hits", d);
  static const char *const tn[4] = {"gpu", "dram", "remote", "disk"};
  for (int k = 0; k < 4; k++) {
    char l1[32], l2[32];
    if (k != CASCADE_TIER_DRAM && !(k == CASCADE_TIER_DISK && p->disk))
      continue;
    snprintf(l1, sizeof l1, "%s hits", tn[k]);
    snprintf(l2, sizeof l2, "%s bytes read", tn[k]);
    snprintf(d, sizeof d, "%s (%s)", cli_fmt_count(r->tier_hits[k], a, sizeof a),
             pct(ratio(r->tier_hits[k], r->lookups), c, sizeof c));
    kv(t, l1, d, l2, cli_fmt_size(r->tier_bytes[k], b, sizeof b));
  }
  kv(t, "blocks stored", cli_fmt_count(r->stored, a, sizeof a),
     "no room (not stored)", cli_fmt_count(r->rejected, b, sizeof b));
  snprintf(d, sizeof d, "%s / %s", cli_fmt_count(r->promotions, b, sizeof b),
           cli_fmt_count(r->demotions, c, sizeof c));
  kv(t, "evicted (dropped)", cli_fmt_count(r->evictions, a, sizeof a),
     "promotions / demotions", d);
  kv(t, "dedup hits", cli_fmt_count(r->dedup_hits, a, sizeof a),
     "dedup bytes saved", cli_fmt_size(r->dedup_bytes_saved, b, sizeof b));
  snprintf(d, sizeof d, "%s of %s (%s)",
           cli_fmt_count(r->tokens_saved, a, sizeof a),
           cli_fmt_count(r->tokens_in, b, sizeof b),
           pct(ratio(r->tokens_saved, r->tokens_in), c, sizeof c));
  kv(t, "bytes stored", cli_fmt_size(r->bytes_put, b, sizeof b),
     "prefill tokens saved", d);
  if (!p->dry) {
    /* bytes over the time spent in the store's calls (block generation
     * and checking excluded); reads cover every tier the hits came from */
    uint64_t rd = 0;
    for (int k = 0; k < 4; k++) rd += r->tier_bytes[k];
    snprintf(a, sizeof a, "%.2f GB/s",
             r->read_seconds > 0 ? (double)rd / r->read_seconds / 1e9 : 0);
    snprintf(b, sizeof b, "%.2f GB/s",
             r->put_seconds > 0 ? (double)r->bytes_put / r->put_seconds / 1e9
                                : 0);
    kv(t, "read (get_batch)", a, "write (put_batch)", b);
  }
  if (r->lost)
    kv(t, "matched, gone at read", cli_fmt_count(r->lost, a, sizeof a), "",
       "");
  fputc('\n', stdout);
  cli_table_print(t, stdout, "");
  cli_table_free(t);
}

/* ---- --compare -------------------------------------------------------------- */

struct cap {
  char label[32];
  uint64_t blocks;
};

static int parse_caps(const struct rep *p, const char *list, struct cap *caps,
                      int *ncaps) {
  char buf[512];
  snprintf(buf, sizeof buf, "%s", list);
  *ncaps = 0;
  for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
       tok = strtok_r(NULL, ",", &save)) {
    struct cap *c = &caps[*ncaps];
    size_t n = strlen(tok);
    if (*ncaps >= MAX_CAPS) {
      cli_err("replay: --capacities: at most %d", MAX_CAPS);
      return -1;
    }
    if (n > 1 && tok[n - 1] == '%') {
      char *end;
      tok[n - 1] = '\0';
      double v = strtod(tok, &end);
      if (end == tok || *end || !(v > 0 && v <= 100)) {
        cli_err("replay: --capacities: %s%%: expected a share in (0, 100]",
                tok);
        return -1;
      }
      c->blocks = (uint64_t)ceil(v / 100.0 * (double)p->uniq);
      snprintf(c->label, sizeof c->label, "%s%%", tok);
    } else {
      uint64_t bytes;
      if (cli_parse_size(tok, &bytes) < 0) {
        cli_err("replay: --capacities: %s: expected P%% or a size", tok);
        return -1;
      }
      c->blocks = bytes / p->block_bytes;
      snprintf(c->label, sizeof c->label, "%s", tok);
    }
    if (c->blocks == 0) c->blocks = 1;
    (*ncaps)++;
  }
  if (*ncaps == 0) {
    cli_err("replay: --capacities: empty list");
    return -1;
  }
  return 0;
}

static int plot(const struct rep *p, const char *const *names, int nrows,
                const struct cap *caps, int ncaps, rep_result (*res)[MAX_CAPS]) {
  if (system("command -v gnuplot >/dev/null 2>&1") != 0) {
    cli_err("replay: --plot needs gnuplot, which is not installed: install "
            "the Debian package gnuplot-nox (scripts/deps.sh bench)");
    return CLI_FAIL;
  }
  FILE *g = popen("gnuplot", "w");
  if (!g) {
    cli_err("replay: could not run gnuplot: %s", strerror(errno));
    return CLI_FAIL;
  }
  uint64_t lo = caps[0].blocks, hi = caps[0].blocks;
  for (int c = 1; c < ncaps; c++) {
    if (caps[c].blocks < lo) lo = caps[c].blocks;
    if (caps[c].blocks > hi) hi = caps[c].blocks;
  }
  fprintf(g, "set terminal pngcairo size 960,600 noenhanced\n");
  fprintf(g, "set output '");
  for (const char *s = p->plot; *s; s++) fputs(*s == '\'' ? "''" : (char[2]){*s, 0}, g);
  fprintf(g, "'\nset title '%s prefix hit ratio against capacity'\n",
          p->t.source);
  fprintf(g, "set xlabel 'capacity (%% of the %zu distinct blocks)'\n",
          p->uniq);
  fprintf(g, "set ylabel 'prefix hit ratio (%%)'\nset grid\n"
             "set key right bottom\nset yrange [0:*]\n");
  if (hi >= 8 * lo) fprintf(g, "set logscale x\n");
  fprintf(g, "set xrange [%.6g:%.6g]\n", 100.0 * (double)lo / (double)p->uniq,
          100.0 * (double)hi / (double)p->uniq);
  fprintf(g, "$d << EOD\n");
  for (int c = 0; c < ncaps; c++) {
    fprintf(g, "%.6g", 100.0 * (double)caps[c].blocks / (double)p->uniq);
    for (int r = 0; r < nrows; r++)
      fprintf(g, " %.6g",
              100.0 * ratio(res[r][c].hits, res[r][c].lookups));
    fputc('\n', g);
  }
  fprintf(g, "EOD\nplot ");
  for (int r = 0; r < nrows; r++)
    fprintf(g, "%s$d using 1:%d with linespoints lw 2 title '%s'",
            r ? ", " : "", r + 2, names[r]);
  fprintf(g, "\n");
  int st = pclose(g);
  if (st != 0) {
    cli_err("replay: gnuplot failed (status %d)", st);
    return CLI_FAIL;
  }
  if (!p->json) printf("\nplot: %s\n", p->plot);
  return CLI_OK;
}

static int compare(struct rep *p, const cli_common *co) {
  struct cap caps[MAX_CAPS];
  int ncaps = 0, nrows = 0, rc = CLI_OK;
  const char *names[MAX_RUNS];
  static rep_result res[MAX_RUNS][MAX_CAPS];
  char what[160];

  if (p->caps_arg) {
    if (parse_caps(p, p->caps_arg, caps, &ncaps) < 0) return CLI_USAGE;
  } else if (p->plot) {
    parse_caps(p, "1%,2%,5%,10%,20%,50%", caps, &ncaps);
  } else {
    caps[0].blocks = p->blocks ? p->blocks : p->dram / p->block_bytes;
    if (!caps[0].blocks) caps[0].blocks = 1;
    snprintf(caps[0].label, sizeof caps[0].label, "%" PRIu64 " blocks",
             caps[0].blocks);
    ncaps = 1;
  }
  for (int i = 0; policy_names[i] && nrows < MAX_RUNS - 2; i++)
    names[nrows++] = policy_names[i];
  int npol = nrows;
  names[nrows++] = "belady";
  names[nrows++] = "infinite";
  if (!p->json) {
    print_header(p, stdout);
    printf("mode:   %s; capacities:", p->dry ? "simulated (--dry-run)"
                                              : "engine (DRAM only) for the "
                                                "policies, simulated bounds");
    for (int c = 0; c < ncaps; c++) {
      char a[32], b[32];
      printf("%s %s = %s blocks (%s)", c ? "," : "", caps[c].label,
             cli_fmt_count(caps[c].blocks, a, sizeof a),
             cli_fmt_size(caps[c].blocks * p->block_bytes, b, sizeof b));
    }
    printf("\n");
    fflush(stdout);
  }
  for (int r = 0; r < nrows; r++) {
    for (int c = 0; c < ncaps; c++) {
      snprintf(what, sizeof what, "%.40s at %.31s", names[r], caps[c].label);
      if (r == nrows - 1 && c > 0) { /* infinite: one run serves all */
        res[r][c] = res[r][0];
        continue;
      }
      if (r < npol && !p->dry)
        rc = run_engine(p, co, names[r], caps[c].blocks * p->block_bytes, NULL,
                        &res[r][c], NULL, 0, what);
      else
        rc = run_sim(p,
                     r < npol         ? SIM_POLICY
                     : r == nrows - 2 ? SIM_BELADY
                                      : SIM_INFINITE,
                     r < npol ? names[r] : NULL, caps[c].blocks, &res[r][c],
                     what);
      if (rc != CLI_OK) return rc;
      if (p->json) {
        const rep_result *x = &res[r][c];
        printf("{\"type\":\"compare\",\"source\":");
        cli_json_str(stdout, p->t.source);
        printf(",\"policy\":");
        cli_json_str(stdout, names[r]);
        printf(",\"mode\":\"%s\",\"capacity\":",
               r < npol && !p->dry ? "engine" : "simulated");
        cli_json_str(stdout, caps[c].label);
        printf(",\"capacity_blocks\":%" PRIu64 ",\"capacity_bytes\":%" PRIu64
               ",\"distinct_blocks\":%zu,\"requests\":%" PRIu64
               ",\"lookups\":%" PRIu64 ",\"hits\":%" PRIu64 ",\"hit_ratio\":",
               caps[c].blocks, caps[c].blocks * p->block_bytes, p->uniq,
               x->requests, x->lookups, x->hits);
        cli_json_num(stdout, ratio(x->hits, x->lookups));
        printf(",\"evictions\":%" PRIu64 ",\"prefill_tokens\":%" PRIu64
               ",\"prefill_tokens_saved\":%" PRIu64 ",\"seconds\":",
               x->evictions, x->tokens_in, x->tokens_saved);
        cli_json_num(stdout, x->seconds);
        printf("}\n");
        fflush(stdout);
      }
    }
  }
  if (!p->json) {
    const char *hd[MAX_CAPS + 1];
    char align[MAX_CAPS + 2];
    hd[0] = "prefix hit ratio";
    align[0] = 'l';
    for (int c = 0; c < ncaps; c++) hd[c + 1] = caps[c].label, align[c + 1] = 'r';
    align[ncaps + 1] = '\0';
    cli_table *t = cli_table_new(ncaps + 1, hd, align);
    hd[0] = "prefill tokens saved";
    cli_table *u = cli_table_new(ncaps + 1, hd, align);
    if (!t || !u) {
      cli_table_free(t);
      cli_table_free(u);
      return CLI_FAIL;
    }
    for (int r = 0; r < nrows; r++) {
      char cell[MAX_CAPS][32], cell2[MAX_CAPS][32];
      const char *cells[MAX_CAPS + 1], *cells2[MAX_CAPS + 1];
      cells[0] = cells2[0] = names[r];
      for (int c = 0; c < ncaps; c++) {
        cells[c + 1] = pct(ratio(res[r][c].hits, res[r][c].lookups), cell[c],
                           sizeof cell[c]);
        cells2[c + 1] = pct(ratio(res[r][c].tokens_saved, res[r][c].tokens_in),
                            cell2[c], sizeof cell2[c]);
      }
      cli_table_row(t, cells);
      cli_table_row(u, cells2);
    }
    printf("\n");
    cli_table_print(t, stdout, "");
    printf("\n");
    cli_table_print(u, stdout, "");
    cli_table_free(t);
    cli_table_free(u);
  }
  if (p->plot) rc = plot(p, names, nrows, caps, ncaps, res);
  return rc;
}

/* ---- the command ------------------------------------------------------------ */

int cli_cmd_replay(int argc, char **argv, const cli_common *co0) {
  cli_common co = *co0;
  struct rep p;
  int rc;

  memset(&p, 0, sizeof p);
  rc = parse_args(&p, &co, argc, argv);
  if (rc != 0) return rc > 0 ? CLI_OK : CLI_USAGE;
  if (load_trace(&p) < 0) {
    sim_trace_free(&p.t);
    return CLI_FAIL;
  }
  if (p.compare) {
    rc = compare(&p, &co);
    sim_trace_free(&p.t);
    return rc;
  }

  char polname[64], what[96];
  rep_result res;
  uint64_t cap_blocks;
  if (p.policy)
    snprintf(polname, sizeof polname, "%s", p.policy);
  else
    default_policy(polname, sizeof polname);
  snprintf(what, sizeof what, "replaying (%s)", polname);
  if (p.dry) {
    if (p.blocks)
      cap_blocks = p.blocks;
    else if (p.have_dram)
      cap_blocks = p.dram / p.block_bytes;
    else
      cap_blocks = (p.uniq + 9) / 10;
    if (!p.json) {
      char a[32], b[32];
      print_header(&p, stdout);
      printf("store:  simulated (--dry-run), one tier of %s blocks (%s), "
             "policy %s\n",
             cli_fmt_count(cap_blocks, a, sizeof a),
             cli_fmt_size(cap_blocks * p.block_bytes, b, sizeof b), polname);
      fflush(stdout);
    }
    rc = run_sim(&p, SIM_POLICY, polname, cap_blocks, &res, what);
  } else {
    char tmpl[4096];
    const char *dir = NULL;
    int made = 0;
    if (p.block_bytes > p.dram) {
      char a[32], b[32];
      cli_err("replay: a block (%s) does not fit the DRAM tier (%s): lower "
              "--tokens-per-block or --bytes-per-token, raise --dram, or "
              "use --dry-run",
              cli_fmt_size(p.block_bytes, a, sizeof a),
              cli_fmt_size(p.dram, b, sizeof b));
      sim_trace_free(&p.t);
      return CLI_USAGE;
    }
    if (p.disk) {
      if (p.disk_dir) {
        dir = p.disk_dir;
      } else {
        const char *tmp = getenv("TMPDIR");
        snprintf(tmpl, sizeof tmpl, "%s/cascade-replay-XXXXXX",
                 tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(tmpl)) {
          cli_err("replay: mkdtemp %s: %s", tmpl, strerror(errno));
          sim_trace_free(&p.t);
          return CLI_FAIL;
        }
        dir = tmpl;
        made = 1;
      }
    }
    cap_blocks = p.dram / p.block_bytes;
    if (!p.json) {
      char a[32], b[32];
      print_header(&p, stdout);
      printf("store:  engine (real bytes), DRAM %s", cli_fmt_size(p.dram, a,
                                                                sizeof a));
      if (dir)
        printf(" + disk %s in %s%s", cli_fmt_size(p.disk, b, sizeof b), dir,
               made ? " (temporary)" : "");
      printf(", policy %s%s\n", polname,
             p.speed > 0 ? "" : ", as fast as possible");
      fflush(stdout);
    }
    rc = run_engine(&p, &co, p.policy, p.dram, dir, &res, polname,
                    sizeof polname, what);
    if (made) remove_dir(tmpl);
  }
  if (rc == CLI_OK) {
    if (p.json)
      json_result(&p, p.dry ? "dry-run" : "engine", polname, cap_blocks, &res);
    else
      print_result(&p, &res);
  }
  sim_trace_free(&p.t);
  return rc;
}
