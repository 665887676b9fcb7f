/*
 * report.c - `cascade bench report`: the results of `cascade bench suite`
 * (one JSON object per file, {system}_{workload}_1n_{timestamp}.json, as
 * suite.c's json_result writes them) turned into a Markdown table per
 * workload and PNG plots drawn by gnuplot.
 *
 * Input.  Every regular file named *.json in the results directory, in
 * name order, read whole (at most MAX_FILE bytes) and parsed with json-c.
 * A file is a suite result if it holds exactly one JSON object (white
 * space after it only) with "bench":"suite", a "system" and a "workload"
 * (non-empty strings that fit their fields), a "status" of ok, failed or
 * skipped, and a "config" object whose "block" is an integer > 0; an ok
 * one must also have a finite "result"."gbps".  Anything else (the JSON
 * lines of bench dram/disk/server, a truncated file, a foreign object) is
 * skipped with one line on stderr.  Missing optional fields (a latency
 * percentile, the machine facts, runs) are left out of the output, never
 * invented.  Of the results with the same (system, workload, block), the
 * one with the newest "timestamp" (UTC, YYYYMMDDTHHMMSSZ: it sorts as a
 * string; the file name's last field if absent; the later file name on a
 * tie) is used, the others are named on stderr and dropped.
 *
 * Markdown (stdout, or --out FILE via FILE.tmp and rename).  A header
 * list: the machine facts, the configuration, the timestamps and the
 * systems' versions, each the distinct values over the results used
 * (several when the results come from different runs).  Then one table per
 * workload (write, hot-read, cold-read first, others after them in name
 * order): rows by block size, then ok rows by GB/s descending, then failed
 * and skipped rows with their status and reason.  "x best baseline" is the
 * row's GB/s over that of the best ok baseline (a system whose name does
 * not start with "cascade") of the same workload and block, as in the
 * suite's own table.  GB/s shows "(min-max)" where the result holds
 * runs (--repeat > 1).
 *
 * Plots (into --plots DIR, default the results directory; none with
 * --no-plots).  Each plot is a gnuplot script and its data files in a
 * private temporary directory (mkdtemp), run as `gnuplot SCRIPT` by
 * fork/exec with that directory as its working directory (the data files
 * are named relatively; the PNG path is absolute, quoted as a gnuplot
 * single-quoted string, in which only ' needs escaping, as '').  Its exit
 * status and the PNG it should have written are checked; the temporary
 * directory is removed, or kept and named if gnuplot failed.
 *   throughput.png            one block size in all results: clustered
 *                             bars, a cluster per workload, a bar per
 *                             system (min-max whiskers where runs exist)
 *   throughput_WORKLOAD.png   several block sizes: GB/s against block
 *                             size (log 2 axis), a line per system
 *   latency_WORKLOAD.png      per system, the latency per call at p50,
 *                             p90, p99, p99.9 and max as a step plot (x:
 *                             latency, log scale; y: the percentiles on a
 *                             "nines" scale, -log10(1 - p), max on top);
 *                             with several block sizes one per (workload,
 *                             block): latency_WORKLOAD_BLOCK.png
 * A system keeps its colour in every plot (its index among the systems:
 * cascade* first, then the baselines, each in name order).  Without
 * gnuplot on $PATH the Markdown is still written and a note says why there
 * are no plots; the exit status stays 0.
 *
 * gnuplot's stdin is /dev/null and its stdout goes to stderr (stdout may
 * be the Markdown).
 *
 * Exit status: 0 (also without gnuplot), 1 if the directory cannot be
 * read, holds no suite result, or a plot failed (the Markdown is written
 * first, so it is there even then), 2 for a usage error.
 *
 * Single-threaded; no global state.  The records (struct rec) are owned by
 * the report (struct report) and freed at the end; its lists of systems
 * and workloads point into them.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <json-c/json.h>

#include "cli.h"

#define MAX_FILE (4u << 20) /* a suite result is a few KiB */
#define RP_PATH 4096
#define NPCT 5

/* The latency percentiles of a result, in the order plotted; y is the
 * position on the "nines" axis (-log10(1 - p); max above p99.9). */
static const struct {
  const char *key, *label;
  double y;
} pct[NPCT] = {{"p50", "p50", 0.30103},
               {"p90", "p90", 1.0},
               {"p99", "p99", 2.0},
               {"p999", "p99.9", 3.0},
               {"max", "max", 4.0}};

/* The workloads of the suite, in its order; others follow by name. */
static const char *const known_wl[] = {"write", "hot-read", "cold-read"};
#define NKNOWN_WL 3

/* Colours of the systems (gnuplot linetypes 1..NCOLOURS, then again). */
static const char *const colours[] = {
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b",
    "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#637939"};
#define NCOLOURS (sizeof colours / sizeof colours[0])

/* One suite result, as read from its file. */
struct rec {
  char file[256]; /* base name */
  char system[64], workload[32], status[16], stamp[32];
  char reason[256], version[128];
  uint64_t block, blocks;            /* blocks 0: unknown */
  int threads, batch, repeat, quick; /* 0: unknown (quick: -1) */
  char machine[512], storage[320];   /* one line each, "" unknown */
  double gbps, ops;                  /* NaN: absent */
  double lat[NPCT];                  /* ns; NaN: absent */
  int nrun;                          /* runs in the file (0: none) */
  double gbps_min, gbps_max;
  int sys;     /* index in report.sys */
  int dropped; /* a newer result of the same key is used */
};

/* A set of distinct strings, in the order added. */
typedef struct strset {
  char **v;
  int n, cap;
} strset;

struct report {
  /* options */
  const char *results, *out, *plots;
  int no_plots;

  struct rec *r;
  int n, cap;
  int nused;
  const char **sys; /* distinct systems of the used records, plot order */
  int nsys;
  const char **wl; /* distinct workloads, table order */
  int nwl;
  uint64_t *blk; /* distinct block sizes, ascending */
  int nblk;
  int *order; /* the used records by block, system, workload (nused) */
  int any_runs;

  /* plots */
  char gnuplot[RP_PATH];
  char tmp[RP_PATH];    /* the temporary directory, "" none */
  char absdir[RP_PATH]; /* the plot directory, absolute */
  const char *plotdir;  /* as given, for the messages */
  int nplot, plot_failed;
};

/* ---- Small helpers ------------------------------------------------------- */

static int strset_add(strset *s, const char *v) {
  char *c;

  for (int k = 0; k < s->n; k++)
    if (strcmp(s->v[k], v) == 0) return 0;
  if (s->n == s->cap) {
    int cap = s->cap ? 2 * s->cap : 8;
    char **nv = realloc(s->v, (size_t)cap * sizeof *nv);

    if (nv == NULL) return -1;
    s->v = nv;
    s->cap = cap;
  }
  c = strdup(v);
  if (c == NULL) return -1;
  s->v[s->n++] = c;
  return 0;
}

static void strset_free(strset *s) {
  for (int k = 0; k < s->n; k++) free(s->v[k]);
  free(s->v);
  s->v = NULL;
  s->n = s->cap = 0;
}

/* Print the members of s joined by sep, or dflt if none. */
static void strset_print(const strset *s, FILE *f, const char *sep,
                         const char *dflt) {
  if (s->n == 0) fputs(dflt, f);
  for (int k = 0; k < s->n; k++) fprintf(f, "%s%s", k ? sep : "", s->v[k]);
}

/* Copy s into out; -1 if it does not fit (out is then ""). */
static int copy_str(char *out, size_t cap, const char *s) {
  size_t n = strlen(s);

  if (n >= cap) {
    out[0] = '\0';
    return -1;
  }
  memcpy(out, s, n + 1);
  return 0;
}

/* A block size for a file name: "4k", "1m", "1g", else bytes. */
static void block_tag(uint64_t b, char *buf, size_t cap) {
  if (b >= (1ull << 30) && b % (1ull << 30) == 0)
    snprintf(buf, cap, "%" PRIu64 "g", b >> 30);
  else if (b >= (1ull << 20) && b % (1ull << 20) == 0)
    snprintf(buf, cap, "%" PRIu64 "m", b >> 20);
  else if (b >= 1024 && b % 1024 == 0)
    snprintf(buf, cap, "%" PRIu64 "k", b >> 10);
  else
    snprintf(buf, cap, "%" PRIu64, b);
}

/* s with every character but [A-Za-z0-9._-] replaced by '_'. */
static void file_tag(const char *s, char *buf, size_t cap) {
  size_t k = 0;

  for (; s[k] != '\0' && k + 1 < cap; k++) {
    unsigned char c = (unsigned char)s[k];

    buf[k] = (char)(isalnum(c) || c == '.' || c == '-' || c == '_' ? c : '_');
  }
  buf[k] = '\0';
}

/* One Markdown table cell: '|' escaped, line breaks as spaces. */
static void md_cell(FILE *f, const char *s) {
  fputs("| ", f);
  for (; *s != '\0'; s++) {
    if (*s == '|')
      fputs("\\|", f);
    else if (*s == '\n' || *s == '\r')
      fputc(' ', f);
    else
      fputc(*s, f);
  }
  fputc(' ', f);
}

/* s as a gnuplot single-quoted string (' doubled). */
static void gp_str(FILE *f, const char *s) {
  fputc('\'', f);
  for (; *s != '\0'; s++) {
    if (*s == '\'') fputc('\'', f);
    fputc(*s == '\n' ? ' ' : *s, f);
  }
  fputc('\'', f);
}

/* s as a gnuplot data-file string (double quotes; " and \ replaced). */
static void gp_data_str(FILE *f, const char *s) {
  fputc('"', f);
  for (; *s != '\0'; s++)
    fputc(*s == '"' || *s == '\\' || *s == '\n' ? '_' : *s, f);
  fputc('"', f);
}

/* ---- Reading the results ------------------------------------------------- */

/* The integer >= 0 at key into *out; 0, or -1 if absent or not one. */
static int juint(json_object *o, const char *key, uint64_t *out) {
  json_object *v = cli_jget(o, key);

  if (v == NULL || !json_object_is_type(v, json_type_int) ||
      json_object_get_int64(v) < 0)
    return -1;
  *out = (uint64_t)json_object_get_int64(v);
  return 0;
}

/* A small integer (1..1e6) at key, or 0. */
static int jsmall(json_object *o, const char *key) {
  uint64_t v;

  return juint(o, key, &v) == 0 && v >= 1 && v <= 1000000 ? (int)v : 0;
}

/* The machine facts of a result as two lines: the machine, the storage. */
static void machine_facts(json_object *m, struct rec *r) {
  const char *cpu = cli_jstr(m, "cpu"), *kernel = cli_jstr(m, "kernel"),
             *thp = cli_jstr(m, "thp"), *fs = cli_jstr(m, "fs"),
             *dev = cli_jstr(m, "device"), *host = cli_jstr(m, "host");
  uint64_t cores = 0, mem = 0, l3 = 0;
  char sz[32], thpv[64] = "";
  size_t len = 0, cap = sizeof r->machine;

  juint(m, "cores", &cores);
  juint(m, "memory", &mem);
  juint(m, "l3", &l3);
  if (thp != NULL && thp[0] != '\0') {
    /* "always [madvise] never": the bracketed one */
    const char *a = strchr(thp, '['), *b = a ? strchr(a, ']') : NULL;

    if (a != NULL && b != NULL)
      snprintf(thpv, sizeof thpv, "%.*s", (int)(b - a - 1), a + 1);
    else
      snprintf(thpv, sizeof thpv, "%.63s", thp);
  }
#define ADD(...)                                                               \
  do {                                                                         \
    if (len < cap)                                                             \
      len += (size_t)snprintf(r->machine + len, cap - len, __VA_ARGS__);       \
  } while (0)
  r->machine[0] = '\0';
  if (cpu != NULL && cpu[0] != '\0') ADD("%.200s", cpu);
  if (cores > 0) ADD("%s%" PRIu64 " cores", len ? ", " : "", cores);
  if (mem > 0)
    ADD("%s%s memory", len ? ", " : "", cli_fmt_size(mem, sz, sizeof sz));
  if (l3 > 0) ADD("%sL3 %s", len ? ", " : "", cli_fmt_size(l3, sz, sizeof sz));
  if (kernel != NULL && kernel[0] != '\0')
    ADD("%s%.160s", len ? "; " : "", kernel);
  if (thpv[0] != '\0') ADD("%sTHP %s", len ? "; " : "", thpv);
  if (host != NULL && host[0] != '\0')
    ADD("%shost %.64s", len ? "; " : "", host);
#undef ADD
  r->storage[0] = '\0';
  if (fs != NULL && fs[0] != '\0') {
    if (dev != NULL && dev[0] != '\0')
      snprintf(r->storage, sizeof r->storage, "%.64s on %.200s", fs, dev);
    else
      snprintf(r->storage, sizeof r->storage, "%.64s", fs);
  }
}

/*
 * Fill *r from the parsed object o of file name.  NULL if it is a suite
 * result, else why not (a constant string).
 */
static const char *parse_result(json_object *o, const char *name,
                                struct rec *r) {
  const char *bench, *system, *workload, *status, *stamp, *s;
  json_object *cfg, *res, *lat, *runs;
  uint64_t v;

  memset(r, 0, sizeof *r);
  if (!json_object_is_type(o, json_type_object)) return "not a JSON object";
  bench = cli_jstr(o, "bench");
  if (bench == NULL) return "no \"bench\" field: not a suite result";
  if (strcmp(bench, "suite") != 0) return "not a suite result (\"bench\")";
  system = cli_jstr(o, "system");
  workload = cli_jstr(o, "workload");
  status = cli_jstr(o, "status");
  if (system == NULL || system[0] == '\0') return "no \"system\"";
  if (copy_str(r->system, sizeof r->system, system) != 0)
    return "\"system\" too long";
  if (workload == NULL || workload[0] == '\0') return "no \"workload\"";
  if (copy_str(r->workload, sizeof r->workload, workload) != 0)
    return "\"workload\" too long";
  if (status == NULL ||
      (strcmp(status, "ok") != 0 && strcmp(status, "failed") != 0 &&
       strcmp(status, "skipped") != 0))
    return "no \"status\" of ok, failed or skipped";
  copy_str(r->status, sizeof r->status, status);
  cfg = cli_jget(o, "config");
  if (cfg == NULL || juint(cfg, "block", &r->block) != 0 || r->block == 0)
    return "no \"config\".\"block\"";

  copy_str(r->file, sizeof r->file, name);
  /* the timestamp, else the file name's last field */
  stamp = cli_jstr(o, "timestamp");
  if (stamp == NULL || copy_str(r->stamp, sizeof r->stamp, stamp) != 0) {
    const char *u = strrchr(name, '_');

    snprintf(r->stamp, sizeof r->stamp, "%.*s",
             u ? (int)strcspn(u + 1, ".") : 0, u ? u + 1 : "");
  }
  s = cli_jstr(o, "reason");
  snprintf(r->reason, sizeof r->reason, "%s", s ? s : "");
  s = cli_jstr(o, "version");
  snprintf(r->version, sizeof r->version, "%s", s ? s : "");
  if (juint(cfg, "blocks", &v) == 0) r->blocks = v;
  r->threads = jsmall(cfg, "threads");
  r->batch = jsmall(cfg, "batch");
  r->repeat = jsmall(cfg, "repeat");
  {
    json_object *q = cli_jget(cfg, "quick");

    r->quick = q != NULL && json_object_is_type(q, json_type_boolean)
                   ? json_object_get_boolean(q)
                   : -1;
  }
  machine_facts(cli_jget(o, "machine"), r);

  res = cli_jget(o, "result");
  r->gbps = cli_jnum(res, "gbps");
  r->ops = cli_jnum(res, "ops_per_sec");
  lat = cli_jget(res, "latency_ns");
  for (int k = 0; k < NPCT; k++) {
    double x = cli_jnum(lat, pct[k].key);

    r->lat[k] = isfinite(x) && x >= 0 ? x : NAN;
  }
  runs = cli_jget(res, "runs");
  if (runs != NULL && json_object_is_type(runs, json_type_array) &&
      json_object_array_length(runs) > 0) {
    r->nrun = (int)json_object_array_length(runs);
    r->gbps_min = cli_jnum(res, "gbps_min");
    r->gbps_max = cli_jnum(res, "gbps_max");
    if (!isfinite(r->gbps_min) || !isfinite(r->gbps_max)) r->nrun = 0;
  }
  if (strcmp(r->status, "ok") == 0 && !(isfinite(r->gbps) && r->gbps >= 0))
    return "status ok but no \"result\".\"gbps\"";
  return NULL;
}

static struct rec *new_rec(struct report *R) {
  if (R->n == R->cap) {
    int cap = R->cap ? 2 * R->cap : 32;
    struct rec *nr = realloc(R->r, (size_t)cap * sizeof *nr);

    if (nr == NULL) return NULL;
    R->r = nr;
    R->cap = cap;
  }
  return &R->r[R->n];
}

/* Read one file; a suite result is added to R->r, anything else skipped
 * with a note.  0, or -1 (out of memory). */
static int load_file(struct report *R, const char *name) {
  char path[RP_PATH];
  struct stat st;
  char *buf = NULL;
  size_t len = 0;
  const char *why = NULL;
  char whybuf[160];
  json_tokener *tok = NULL;
  json_object *o = NULL;
  struct rec *r;
  FILE *f;

  snprintf(path, sizeof path, "%s/%s", R->results, name);
  if (stat(path, &st) != 0) {
    cli_err("bench report: skipped %s: %s", path, strerror(errno));
    return 0;
  }
  if (!S_ISREG(st.st_mode)) {
    cli_err("bench report: skipped %s: not a regular file", path);
    return 0;
  }
  if (st.st_size > (off_t)MAX_FILE) {
    cli_err("bench report: skipped %s: over %u MiB, not a suite result", path,
            MAX_FILE >> 20);
    return 0;
  }
  f = fopen(path, "rb");
  if (f == NULL) {
    cli_err("bench report: skipped %s: %s", path, strerror(errno));
    return 0;
  }
  buf = malloc(MAX_FILE + 1);
  if (buf == NULL) {
    fclose(f);
    return -1;
  }
  len = fread(buf, 1, MAX_FILE + 1, f);
  if (ferror(f)) {
    snprintf(whybuf, sizeof whybuf, "read error: %s", strerror(errno));
    why = whybuf;
  }
  fclose(f);
  if (why == NULL && len > MAX_FILE) why = "too large for a suite result";
  if (why == NULL && len == 0) why = "empty";
  if (why == NULL) {
    enum json_tokener_error je;
    size_t end;

    tok = json_tokener_new();
    if (tok == NULL) {
      free(buf);
      return -1;
    }
    o = json_tokener_parse_ex(tok, buf, (int)len);
    je = json_tokener_get_error(tok);
    if (o == NULL || je != json_tokener_success) {
      snprintf(whybuf, sizeof whybuf, "not JSON: %s",
               je == json_tokener_continue ? "it ends inside a value"
                                           : json_tokener_error_desc(je));
      why = whybuf;
    } else {
      end = (size_t)json_tokener_get_parse_end(tok);
      while (end < len && isspace((unsigned char)buf[end])) end++;
      if (end < len)
        why = "more than one JSON value (JSON lines of another bench?)";
    }
  }
  if (why == NULL) {
    r = new_rec(R);
    if (r == NULL) {
      json_object_put(o);
      json_tokener_free(tok);
      free(buf);
      return -1;
    }
    why = parse_result(o, name, r);
    if (why == NULL) R->n++;
  }
  if (why != NULL) cli_err("bench report: skipped %s: %s", path, why);
  json_object_put(o);
  if (tok != NULL) json_tokener_free(tok);
  free(buf);
  return 0;
}

static int cmp_name(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every *.json of the results directory, in name order.  0, or -1 after a
 * message. */
static int load_dir(struct report *R) {
  DIR *d = opendir(R->results);
  struct dirent *e;
  char **names = NULL;
  int n = 0, cap = 0, rc = 0;

  if (d == NULL) {
    cli_err("bench report: --results %s: %s", R->results, strerror(errno));
    return -1;
  }
  while ((e = readdir(d)) != NULL) {
    size_t len = strlen(e->d_name);

    if (len <= 5 || strcmp(e->d_name + len - 5, ".json") != 0 ||
        e->d_name[0] == '.')
      continue;
    if (n == cap) {
      int nc = cap ? 2 * cap : 64;
      char **nn = realloc(names, (size_t)nc * sizeof *nn);

      if (nn == NULL) {
        rc = -1;
        break;
      }
      names = nn;
      cap = nc;
    }
    if ((names[n] = strdup(e->d_name)) == NULL) {
      rc = -1;
      break;
    }
    n++;
  }
  closedir(d);
  if (rc == 0 && n > 0) qsort(names, (size_t)n, sizeof *names, cmp_name);
  for (int k = 0; rc == 0 && k < n; k++) rc = load_file(R, names[k]);
  for (int k = 0; k < n; k++) free(names[k]);
  free(names);
  if (rc != 0) cli_err("bench report: out of memory");
  return rc;
}

/* Drop all but the newest result of each (system, workload, block). */
static void drop_older(struct report *R) {
  for (int i = 0; i < R->n; i++) {
    struct rec *a = &R->r[i];

    for (int j = i + 1; j < R->n && !a->dropped; j++) {
      struct rec *b = &R->r[j], *old;
      int c;

      if (b->dropped || a->block != b->block ||
          strcmp(a->system, b->system) != 0 ||
          strcmp(a->workload, b->workload) != 0)
        continue;
      c = strcmp(a->stamp, b->stamp);
      if (c == 0) c = strcmp(a->file, b->file);
      old = c < 0 ? a : b;
      old->dropped = 1;
      cli_err("bench report: not used %s: %s is newer (same system, "
              "workload and block)",
              old->file, old == a ? b->file : a->file);
    }
  }
}

static int wl_rank(const char *w) {
  for (int k = 0; k < NKNOWN_WL; k++)
    if (strcmp(w, known_wl[k]) == 0) return k;
  return NKNOWN_WL;
}

static int cmp_wl(const void *a, const void *b) {
  const char *x = *(const char *const *)a, *y = *(const char *const *)b;
  int rx = wl_rank(x), ry = wl_rank(y);

  return rx != ry ? (rx < ry ? -1 : 1) : strcmp(x, y);
}

static int cmp_sys(const void *a, const void *b) {
  const char *x = *(const char *const *)a, *y = *(const char *const *)b;
  int bx = cli_is_baseline(x), by = cli_is_baseline(y);

  return bx != by ? bx - by : strcmp(x, y);
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

  return x < y ? -1 : x > y;
}

/* The order of the facts in the header: by block, system, workload. */
static int cmp_used(const struct rec *x, const struct rec *y) {
  int wx = wl_rank(x->workload), wy = wl_rank(y->workload);

  if (x->block != y->block) return x->block < y->block ? -1 : 1;
  if (x->sys != y->sys) return x->sys < y->sys ? -1 : 1;
  if (wx != wy) return wx < wy ? -1 : 1;
  return strcmp(x->workload, y->workload);
}

/* The distinct systems, workloads and block sizes of the used records;
 * each record's system index; their order.  0, or -1 (out of memory). */
static int index_records(struct report *R) {
  R->sys = calloc((size_t)R->n + 1, sizeof *R->sys);
  R->wl = calloc((size_t)R->n + 1, sizeof *R->wl);
  R->blk = calloc((size_t)R->n + 1, sizeof *R->blk);
  if (R->sys == NULL || R->wl == NULL || R->blk == NULL) return -1;
  for (int i = 0; i < R->n; i++) {
    const struct rec *r = &R->r[i];
    int k;

    if (r->dropped) continue;
    R->nused++;
    if (r->nrun > 0) R->any_runs = 1;
    for (k = 0; k < R->nsys && strcmp(R->sys[k], r->system) != 0; k++)
      ;
    if (k == R->nsys) R->sys[R->nsys++] = r->system;
    for (k = 0; k < R->nwl && strcmp(R->wl[k], r->workload) != 0; k++)
      ;
    if (k == R->nwl) R->wl[R->nwl++] = r->workload;
    for (k = 0; k < R->nblk && R->blk[k] != r->block; k++)
      ;
    if (k == R->nblk) R->blk[R->nblk++] = r->block;
  }
  qsort(R->sys, (size_t)R->nsys, sizeof *R->sys, cmp_sys);
  qsort(R->wl, (size_t)R->nwl, sizeof *R->wl, cmp_wl);
  qsort(R->blk, (size_t)R->nblk, sizeof *R->blk, cmp_u64);
  for (int i = 0; i < R->n; i++)
    for (int k = 0; k < R->nsys; k++)
      if (strcmp(R->sys[k], R->r[i].system) == 0) R->r[i].sys = k;
  R->order = calloc((size_t)R->n + 1, sizeof *R->order);
  if (R->order == NULL) return -1;
  for (int i = 0, k = 0; i < R->n; i++)
    if (!R->r[i].dropped) R->order[k++] = i;
  for (int i = 1; i < R->nused; i++) /* insertion sort: a few dozen */
    for (int j = i;
         j > 0 && cmp_used(&R->r[R->order[j - 1]], &R->r[R->order[j]]) > 0;
         j--) {
      int t = R->order[j];

      R->order[j] = R->order[j - 1];
      R->order[j - 1] = t;
    }
  return 0;
}

static int is_ok(const struct rec *r) {
  return strcmp(r->status, "ok") == 0;
}

/* The best ok baseline of (workload, block), or NULL. */
static const struct rec *best_baseline(const struct report *R, const char *wl,
                                       uint64_t block) {
  const struct rec *best = NULL;

  for (int i = 0; i < R->n; i++) {
    const struct rec *r = &R->r[i];

    if (!r->dropped && is_ok(r) && r->block == block &&
        strcmp(r->workload, wl) == 0 && cli_is_baseline(r->system) &&
        (best == NULL || r->gbps > best->gbps))
      best = r;
  }
  return best;
}

/* The used records of workload wl, in table order: by block, ok rows by
 * GB/s descending, then the others; by name on a tie. */
static int cmp_row(const void *a, const void *b) {
  const struct rec *x = *(const struct rec *const *)a,
                   *y = *(const struct rec *const *)b;
  int ox = is_ok(x), oy = is_ok(y);

  if (x->block != y->block) return x->block < y->block ? -1 : 1;
  if (ox != oy) return oy - ox;
  if (ox && x->gbps != y->gbps) return x->gbps > y->gbps ? -1 : 1;
  return strcmp(x->system, y->system);
}

static int rows_of(const struct report *R, const char *wl,
                   const struct rec **rows) {
  int n = 0;

  for (int i = 0; i < R->n; i++)
    if (!R->r[i].dropped && strcmp(R->r[i].workload, wl) == 0)
      rows[n++] = &R->r[i];
  qsort(rows, (size_t)n, sizeof *rows, cmp_row);
  return n;
}

/* ---- Markdown ------------------------------------------------------------ */

/* The distinct values of one fact over the used records (in R->order),
 * formatted by fn ("" = unknown, left out), into s.  0, or -1 (out of
 * memory). */
static int collect(const struct report *R, strset *s,
                   void (*fn)(const struct rec *, char *, size_t)) {
  char buf[1024];

  for (int i = 0; i < R->nused; i++) {
    fn(&R->r[R->order[i]], buf, sizeof buf);
    if (buf[0] != '\0' && strset_add(s, buf) != 0) return -1;
  }
  return 0;
}

static void f_machine(const struct rec *r, char *b, size_t cap) {
  snprintf(b, cap, "%s", r->machine);
}
static void f_storage(const struct rec *r, char *b, size_t cap) {
  snprintf(b, cap, "%s", r->storage);
}
static void f_block(const struct rec *r, char *b, size_t cap) {
  cli_fmt_size(r->block, b, cap);
}
static void f_blocks(const struct rec *r, char *b, size_t cap) {
  char sz[32];

  if (r->blocks == 0)
    b[0] = '\0';
  else
    snprintf(b, cap, "%" PRIu64 " blocks (%s)", r->blocks,
             cli_fmt_size(r->blocks * r->block, sz, sizeof sz));
}
static void f_threads(const struct rec *r, char *b, size_t cap) {
  if (r->threads > 0)
    snprintf(b, cap, "%d thread%s", r->threads, r->threads > 1 ? "s" : "");
  else
    b[0] = '\0';
}
static void f_batch(const struct rec *r, char *b, size_t cap) {
  if (r->batch > 0)
    snprintf(b, cap, "%d", r->batch);
  else
    b[0] = '\0';
}
static void f_repeat(const struct rec *r, char *b, size_t cap) {
  if (r->repeat > 0)
    snprintf(b, cap, "%d", r->repeat);
  else
    b[0] = '\0';
}
static void f_quick(const struct rec *r, char *b, size_t cap) {
  snprintf(b, cap, "%s", r->quick == 1 ? "--quick" : "");
}
static void f_stamp(const struct rec *r, char *b, size_t cap) {
  snprintf(b, cap, "%s", r->stamp);
}
static void f_version(const struct rec *r, char *b, size_t cap) {
  if (r->version[0] != '\0')
    snprintf(b, cap, "%s: %s", r->system, r->version);
  else
    b[0] = '\0';
}

/* One header line: "- **label:** values" (nothing if none known). */
static int fact_line(const struct report *R, FILE *f, const char *label,
                     void (*fn)(const struct rec *, char *, size_t),
                     const char *sep, int sorted) {
  strset s = {0};
  int rc = collect(R, &s, fn);

  if (rc == 0 && sorted && s.n > 1)
    qsort(s.v, (size_t)s.n, sizeof *s.v, cmp_name);
  if (rc == 0 && s.n > 0) {
    fprintf(f, "- %s", label);
    strset_print(&s, f, sep, "");
    fputc('\n', f);
  }
  strset_free(&s);
  return rc;
}

/* The configuration as one line "block 256 KiB; 32 blocks (8 MiB); ...",
 * each part with its distinct values joined by " / ". */
static int config_line(const struct report *R, FILE *f) {
  static const struct {
    const char *pre, *post;
    void (*fn)(const struct rec *, char *, size_t);
  } part[] = {{"block ", "", f_block},   {"", " per system", f_blocks},
              {"", "", f_threads},       {"", " blocks per call", f_batch},
              {"repeat ", "", f_repeat}, {"", "", f_quick}};
  int first = 1;

  fputs("- Config: ", f);
  for (size_t k = 0; k < sizeof part / sizeof part[0]; k++) {
    strset s = {0};

    if (collect(R, &s, part[k].fn) != 0) {
      strset_free(&s);
      return -1;
    }
    if (s.n > 0) {
      fprintf(f, "%s%s", first ? "" : "; ", part[k].pre);
      strset_print(&s, f, " / ", "");
      fputs(part[k].post, f);
      first = 0;
    }
    strset_free(&s);
  }
  if (first) fputs("unknown", f);
  fputc('\n', f);
  return 0;
}

static void fmt_lat(double ns, char *buf, size_t cap) {
  if (isfinite(ns))
    cli_fmt_ns((uint64_t)llround(ns), buf, cap);
  else
    snprintf(buf, cap, "n/a");
}

static int write_table(const struct report *R, FILE *f, const char *wl,
                       const struct rec **rows) {
  int n = rows_of(R, wl, rows), runs = 0;

  for (int k = 0; k < n; k++)
    if (rows[k]->nrun > 0) runs = 1;
  fprintf(f, "\n## %s\n\n", wl);
  fprintf(f,
          "| system | block | %s | ops/s | p50/call | p99/call | x best "
          "baseline |\n",
          runs ? "GB/s (min-max)" : "GB/s");
  fputs("|:--|--:|--:|--:|--:|--:|:--|\n", f);
  for (int k = 0; k < n; k++) {
    const struct rec *r = rows[k];
    char bs[32], g[96], o[32] = "", p50[32] = "", p99[32] = "", vs[320];

    cli_fmt_size(r->block, bs, sizeof bs);
    if (is_ok(r)) {
      const struct rec *best = best_baseline(R, wl, r->block);

      snprintf(g, sizeof g, "%.3f", r->gbps);
      if (r->nrun > 0)
        snprintf(g + strlen(g), sizeof g - strlen(g), " (%.3f-%.3f%s)",
                 r->gbps_min, r->gbps_max,
                 r->repeat > 0 && r->nrun < r->repeat ? ", not all runs" : "");
      if (isfinite(r->ops))
        snprintf(o, sizeof o, "%.0f", r->ops);
      else
        snprintf(o, sizeof o, "n/a");
      fmt_lat(r->lat[0], p50, sizeof p50);
      fmt_lat(r->lat[2], p99, sizeof p99);
      if (best != NULL && best->gbps > 0)
        snprintf(vs, sizeof vs, "%.2fx %s", r->gbps / best->gbps, best->system);
      else
        snprintf(vs, sizeof vs, "n/a");
    } else {
      snprintf(g, sizeof g, "%s",
               strcmp(r->status, "failed") == 0 ? "FAILED" : r->status);
      snprintf(vs, sizeof vs, "%s", r->reason[0] ? r->reason : "no reason");
    }
    md_cell(f, r->system);
    md_cell(f, bs);
    md_cell(f, g);
    md_cell(f, o);
    md_cell(f, p50);
    md_cell(f, p99);
    md_cell(f, vs);
    fputs("|\n", f);
  }
  return 0;
}

static int write_markdown(const struct report *R, FILE *f) {
  const struct rec **rows = calloc((size_t)R->n + 1, sizeof *rows);
  int batch = 0;

  if (rows == NULL) return -1;
  for (int i = 0; i < R->n; i++)
    if (!R->r[i].dropped && R->r[i].batch > 0) batch = R->r[i].batch;
  fprintf(f, "# Cascade bench suite: %s\n\n", R->results);
  if (fact_line(R, f, "Machine: ", f_machine, " / ", 0) != 0 ||
      fact_line(R, f, "Data directory on: ", f_storage, " / ", 0) != 0 ||
      config_line(R, f) != 0 ||
      fact_line(R, f, "Runs (UTC): ", f_stamp, ", ", 1) != 0 ||
      fact_line(R, f, "Versions: ", f_version, "; ", 0) != 0) {
    free(rows);
    return -1;
  }
  fprintf(f,
          "- %d results used; GB/s = 10^9 bytes/s; latency per put/get "
          "call",
          R->nused);
  if (batch > 0) fprintf(f, " (of up to %d blocks)", batch);
  fprintf(f,
          "%s; x best baseline: GB/s over the best system whose name "
          "does not start with \"cascade\", same workload and block\n",
          R->any_runs ? ", of the median run; GB/s and ops/s: medians of the "
                        "runs"
                      : "");
  for (int w = 0; w < R->nwl; w++) write_table(R, f, R->wl[w], rows);
  free(rows);
  return 0;
}

/* Write the Markdown to stdout or R->out (via R->out.tmp).  0 or -1. */
static int emit_markdown(const struct report *R) {
  char tmp[RP_PATH];
  FILE *f;
  int rc;

  if (R->out == NULL) {
    rc = write_markdown(R, stdout);
    if (fflush(stdout) != 0 || ferror(stdout)) {
      cli_err("bench report: writing stdout: %s", strerror(errno));
      return -1;
    }
    if (rc != 0) cli_err("bench report: out of memory");
    return rc;
  }
  snprintf(tmp, sizeof tmp, "%s.tmp", R->out);
  f = fopen(tmp, "w");
  if (f == NULL) {
    cli_err("bench report: --out %s: %s", tmp, strerror(errno));
    return -1;
  }
  rc = write_markdown(R, f);
  if (rc != 0) cli_err("bench report: out of memory");
  if (ferror(f)) rc = -1;
  if (fclose(f) != 0 || rc != 0 || rename(tmp, R->out) != 0) {
    if (rc == 0) cli_err("bench report: --out %s: %s", R->out, strerror(errno));
    unlink(tmp);
    return -1;
  }
  cli_err("bench report: wrote %s", R->out);
  return 0;
}

/* ---- Plots --------------------------------------------------------------- */

/* Open tmp/name for writing; NULL after a message. */
static FILE *tmp_file(struct report *R, const char *name) {
  char path[RP_PATH + 256];
  FILE *f;

  snprintf(path, sizeof path, "%s/%s", R->tmp, name);
  f = fopen(path, "w");
  if (f == NULL) cli_err("bench report: %s: %s", path, strerror(errno));
  return f;
}

/* Close f; 0, or -1 after a message. */
static int tmp_close(FILE *f, const char *name) {
  int bad = ferror(f);

  if (fclose(f) != 0 || bad) {
    cli_err("bench report: writing %s: %s", name, strerror(errno));
    return -1;
  }
  return 0;
}

/* The first lines of every script: the terminal, the output, the colours,
 * the grid and the key. */
static void gp_preamble(const struct report *R, FILE *f, const char *png) {
  char abs[RP_PATH * 2];

  snprintf(abs, sizeof abs, "%s/%s", R->absdir, png);
  fputs("if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) {\n"
        "  set terminal pngcairo size 1100,620 noenhanced font 'sans,10'\n"
        "} else {\n"
        "  set terminal png size 1100,620 noenhanced\n"
        "}\n"
        "set output ",
        f);
  gp_str(f, abs);
  fputc('\n', f);
  for (size_t k = 0; k < NCOLOURS; k++)
    fprintf(f, "set linetype %zu lc rgb '%s' lw 2 pt 7 ps 1.1\n", k + 1,
            colours[k]);
  fprintf(f, "set linetype cycle %zu\n", NCOLOURS);
  fputs("set grid\nset key outside right top\nset datafile missing '-'\n", f);
}

/* set title 'line1'."\n".'machine facts' */
static void gp_title(const struct report *R, FILE *f, const char *line1) {
  strset m = {0};
  char buf[1024] = "";

  if (collect(R, &m, f_machine) == 0 && m.n > 0)
    snprintf(buf, sizeof buf, "%s%s", m.v[0],
             m.n > 1 ? " (and other machines)" : "");
  strset_free(&m);
  fputs("set title ", f);
  gp_str(f, line1);
  if (buf[0] != '\0') {
    fputs(".\"\\n\".", f);
    gp_str(f, buf);
  }
  fputc('\n', f);
}

/* The configuration for a title, the facts all results share: "block 256
 * KiB, 1 thread, 8 blocks per call, median of 3 runs". */
static void config_words(const struct report *R, char *buf, size_t cap,
                         int with_block) {
  strset s[4] = {{0}};
  size_t len = 0;

  buf[0] = '\0';
  if (collect(R, &s[0], f_block) != 0 || collect(R, &s[1], f_threads) != 0 ||
      collect(R, &s[2], f_batch) != 0 || collect(R, &s[3], f_repeat) != 0)
    goto out;
  if (with_block && s[0].n == 1)
    len += (size_t)snprintf(buf + len, cap - len, "block %s", s[0].v[0]);
  if (s[1].n == 1 && len < cap)
    len += (size_t)snprintf(buf + len, cap - len, "%s%s", len ? ", " : "",
                            s[1].v[0]);
  if (s[2].n == 1 && len < cap)
    len += (size_t)snprintf(buf + len, cap - len, "%s%s blocks per call",
                            len ? ", " : "", s[2].v[0]);
  if (s[3].n == 1 && strcmp(s[3].v[0], "1") != 0 && len < cap)
    snprintf(buf + len, cap - len, "%smedian of %s runs", len ? ", " : "",
             s[3].v[0]);
out:
  for (int k = 0; k < 4; k++) strset_free(&s[k]);
}

/*
 * Run `gnuplot script` in the temporary directory, stdout sent to stderr
 * (stdout may be the Markdown), and check that it wrote png.  0, or -1
 * after a message (R->plot_failed set).
 */
static int run_gnuplot(struct report *R, const char *script, const char *png) {
  char abs[RP_PATH * 2];
  struct stat st;
  pid_t pid, w;
  int status = 0;

  snprintf(abs, sizeof abs, "%s/%s", R->absdir, png);
  unlink(abs); /* an old plot must not pass for a new one */
  fflush(stdout);
  fflush(stderr);
  pid = fork();
  if (pid < 0) {
    cli_err("bench report: fork: %s", strerror(errno));
    R->plot_failed = 1;
    return -1;
  }
  if (pid == 0) {
    int fd = open("/dev/null", O_RDONLY);

    if (fd >= 0) {
      dup2(fd, STDIN_FILENO);
      if (fd != STDIN_FILENO) close(fd);
    }
    dup2(STDERR_FILENO, STDOUT_FILENO);
    if (chdir(R->tmp) != 0) _exit(126);
    execl(R->gnuplot, "gnuplot", script, (char *)NULL);
    _exit(127);
  }
  do w = waitpid(pid, &status, 0);
  while (w < 0 && errno == EINTR);
  if (w < 0) {
    cli_err("bench report: waitpid(gnuplot): %s", strerror(errno));
    R->plot_failed = 1;
    return -1;
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    if (WIFEXITED(status))
      cli_err("bench report: %s %s/%s: exit status %d", R->gnuplot, R->tmp,
              script, WEXITSTATUS(status));
    else
      cli_err("bench report: %s %s/%s: killed by signal %d", R->gnuplot, R->tmp,
              script, WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    R->plot_failed = 1;
    return -1;
  }
  if (stat(abs, &st) != 0 || st.st_size == 0) {
    cli_err("bench report: gnuplot %s/%s exited 0 but wrote no %s", R->tmp,
            script, abs);
    R->plot_failed = 1;
    return -1;
  }
  cli_err("bench report: wrote %s/%s", R->plotdir, png);
  R->nplot++;
  return 0;
}

/* The ok record of (system k, workload wl, block), or NULL. */
static const struct rec *find_ok(const struct report *R, int k, const char *wl,
                                 uint64_t block) {
  for (int i = 0; i < R->n; i++) {
    const struct rec *r = &R->r[i];

    if (!r->dropped && r->sys == k && r->block == block && is_ok(r) &&
        strcmp(r->workload, wl) == 0)
      return r;
  }
  return NULL;
}

/* Does system k have an ok result in workload wl (NULL: any)? */
static int sys_has_ok(const struct report *R, int k, const char *wl) {
  for (int i = 0; i < R->n; i++) {
    const struct rec *r = &R->r[i];

    if (!r->dropped && r->sys == k && is_ok(r) &&
        (wl == NULL || strcmp(r->workload, wl) == 0))
      return 1;
  }
  return 0;
}

/* throughput.png: one block size; a cluster per workload, a bar per
 * system (columns gbps, min, max per system in the data file). */
static int plot_bars(struct report *R) {
  static const char *const png = "throughput.png";
  char words[256], title[512];
  FILE *f;
  int first = 1;

  f = tmp_file(R, "throughput.dat");
  if (f == NULL) return -1;
  for (int w = 0; w < R->nwl; w++) {
    gp_data_str(f, R->wl[w]);
    for (int k = 0; k < R->nsys; k++) {
      const struct rec *r = find_ok(R, k, R->wl[w], R->blk[0]);

      if (r == NULL)
        fputs(" - - -", f);
      else if (r->nrun > 0)
        fprintf(f, " %.6g %.6g %.6g", r->gbps, r->gbps_min, r->gbps_max);
      else
        fprintf(f, " %.6g %.6g %.6g", r->gbps, r->gbps, r->gbps);
    }
    fputc('\n', f);
  }
  if (tmp_close(f, "throughput.dat") != 0) return -1;

  f = tmp_file(R, "throughput.gp");
  if (f == NULL) return -1;
  gp_preamble(R, f, png);
  config_words(R, words, sizeof words, 1);
  snprintf(title, sizeof title, "Throughput by workload and system%s%s",
           words[0] ? ": " : "", words);
  gp_title(R, f, title);
  fputs("set style data histograms\n", f);
  if (R->any_runs)
    fputs("set style histogram errorbars gap 1 lw 1\n", f);
  else
    fputs("set style histogram clustered gap 1\n", f);
  fputs("set style fill solid 0.85 border -1\n"
        "set boxwidth 0.9 relative\n"
        "set grid noxtics ytics\n"
        "set yrange [0:*]\n"
        "set xlabel 'workload'\n",
        f);
  fprintf(f, "set ylabel '%s'\n",
          R->any_runs ? "GB/s (10^9 bytes/s): median, whiskers min-max"
                      : "GB/s (10^9 bytes/s)");
  fputs("plot ", f);
  for (int k = 0; k < R->nsys; k++) {
    int c = 2 + 3 * k;

    if (!sys_has_ok(R, k, NULL)) continue;
    fprintf(f, "%s'throughput.dat' using %d", first ? "" : ", \\\n     ", c);
    if (R->any_runs) fprintf(f, ":%d:%d", c + 1, c + 2);
    fprintf(f, "%s lt %d title ", first ? ":xtic(1)" : "",
            k % (int)NCOLOURS + 1);
    gp_str(f, R->sys[k]);
    first = 0;
  }
  fputc('\n', f);
  if (tmp_close(f, "throughput.gp") != 0) return -1;
  if (first) return 0; /* nothing ok: no plot */
  return run_gnuplot(R, "throughput.gp", png);
}

/* throughput_WORKLOAD.png: several block sizes; GB/s against block size,
 * a line per system (one data file each: block gbps min max). */
static int plot_lines(struct report *R, int w) {
  const char *wl = R->wl[w];
  char tag[64], png[128], gp[128], name[160], words[256], title[512];
  uint64_t lo = 0, hi = 0;
  FILE *f;
  int first = 1;

  file_tag(wl, tag, sizeof tag);
  snprintf(png, sizeof png, "throughput_%s.png", tag);
  snprintf(gp, sizeof gp, "throughput_%s.gp", tag);
  f = tmp_file(R, gp);
  if (f == NULL) return -1;
  gp_preamble(R, f, png);
  config_words(R, words, sizeof words, 0);
  snprintf(title, sizeof title, "Throughput by block size: %s%s%s", wl,
           words[0] ? " (" : "", words);
  if (words[0]) strncat(title, ")", sizeof title - strlen(title) - 1);
  gp_title(R, f, title);
  fputs("set logscale x 2\nset xtics (", f);
  for (int b = 0, nt = 0; b < R->nblk; b++) {
    char sz[32];
    int used = 0;

    for (int k = 0; k < R->nsys && !used; k++)
      used = find_ok(R, k, wl, R->blk[b]) != NULL;
    if (!used) continue;
    if (lo == 0) lo = R->blk[b];
    hi = R->blk[b];
    fprintf(f, "%s", nt++ ? ", " : "");
    gp_str(f, cli_fmt_size(R->blk[b], sz, sizeof sz));
    fprintf(f, " %" PRIu64, R->blk[b]);
  }
  fputs(")\n", f);
  if (lo == 0) {
    fclose(f);
    return 0; /* nothing ok in this workload */
  }
  fprintf(f, "set xrange [%.6g:%.6g]\n", (double)lo / 1.5, (double)hi * 1.5);
  fputs("set yrange [0:*]\nset xlabel 'block size (log scale)'\n", f);
  fprintf(f, "set ylabel '%s'\n",
          R->any_runs ? "GB/s (10^9 bytes/s): median, bars min-max"
                      : "GB/s (10^9 bytes/s)");
  fputs("plot ", f);
  for (int k = 0; k < R->nsys; k++) {
    FILE *d;
    int any = 0;

    if (!sys_has_ok(R, k, wl)) continue;
    snprintf(name, sizeof name, "throughput_%s_%d.dat", tag, k);
    d = tmp_file(R, name);
    if (d == NULL) {
      fclose(f);
      return -1;
    }
    for (int b = 0; b < R->nblk; b++) {
      const struct rec *r = find_ok(R, k, wl, R->blk[b]);

      if (r == NULL) continue;
      any |= r->nrun > 0;
      fprintf(d, "%" PRIu64 " %.6g %.6g %.6g\n", r->block, r->gbps,
              r->nrun > 0 ? r->gbps_min : r->gbps,
              r->nrun > 0 ? r->gbps_max : r->gbps);
    }
    if (tmp_close(d, name) != 0) {
      fclose(f);
      return -1;
    }
    fprintf(f, "%s'%s' using 1:2%s with %s lt %d title ",
            first ? "" : ", \\\n     ", name, any ? ":3:4" : "",
            any ? "yerrorlines" : "linespoints", k % (int)NCOLOURS + 1);
    gp_str(f, R->sys[k]);
    first = 0;
  }
  fputc('\n', f);
  if (tmp_close(f, gp) != 0) return -1;
  return run_gnuplot(R, gp, png);
}

/* latency_WORKLOAD[_BLOCK].png: per system a step plot of the latency
 * percentiles (one data file each: seconds nines). */
static int plot_latency(struct report *R, int w, uint64_t block,
                        int with_block) {
  const char *wl = R->wl[w];
  char tag[64], btag[32], png[160], gp[160], name[200], bs[32], words[256],
      title[512];
  FILE *f;
  int first = 1, batch = 0;

  file_tag(wl, tag, sizeof tag);
  block_tag(block, btag, sizeof btag);
  snprintf(png, sizeof png, "latency_%s%s%s.png", tag, with_block ? "_" : "",
           with_block ? btag : "");
  snprintf(gp, sizeof gp, "latency_%s_%s.gp", tag, btag);
  for (int i = 0; i < R->n; i++)
    if (!R->r[i].dropped && R->r[i].batch > 0) batch = R->r[i].batch;
  f = tmp_file(R, gp);
  if (f == NULL) return -1;
  gp_preamble(R, f, png);
  config_words(R, words, sizeof words, 0);
  snprintf(title, sizeof title, "Latency per call: %s, block %s%s%s", wl,
           cli_fmt_size(block, bs, sizeof bs), words[0] ? " (" : "", words);
  if (words[0]) strncat(title, ")", sizeof title - strlen(title) - 1);
  gp_title(R, f, title);
  fputs("set logscale x 10\nset mxtics 10\nset format x '%.0s %cs'\n", f);
  if (batch > 0)
    fprintf(f,
            "set xlabel 'latency per put/get call of up to %d blocks "
            "(log scale)'\n",
            batch);
  else
    fputs("set xlabel 'latency per put/get call (log scale)'\n", f);
  fprintf(f, "set ylabel 'percentile (nines scale)%s'\n",
          R->any_runs ? ", median run" : "");
  fputs("set ytics (", f);
  for (int p = 0; p < NPCT; p++) {
    fprintf(f, "%s", p ? ", " : "");
    gp_str(f, pct[p].label);
    fprintf(f, " %g", pct[p].y);
  }
  fputs(")\nset yrange [0:4.4]\nset key outside right top\n", f);
  fputs("plot ", f);
  for (int k = 0; k < R->nsys; k++) {
    const struct rec *r = find_ok(R, k, wl, block);
    FILE *d;
    int np = 0;

    if (r == NULL) continue;
    snprintf(name, sizeof name, "latency_%s_%s_%d.dat", tag, btag, k);
    d = tmp_file(R, name);
    if (d == NULL) {
      fclose(f);
      return -1;
    }
    for (int p = 0; p < NPCT; p++)
      if (isfinite(r->lat[p]) && r->lat[p] > 0) {
        fprintf(d, "%.9g %g\n", r->lat[p] * 1e-9, pct[p].y);
        np++;
      }
    if (tmp_close(d, name) != 0) {
      fclose(f);
      return -1;
    }
    if (np == 0) continue;
    fprintf(f, "%s'%s' using 1:2 with steps lt %d title ",
            first ? "" : ", \\\n     ", name, k % (int)NCOLOURS + 1);
    gp_str(f, r->system);
    fprintf(f, ", \\\n     '%s' using 1:2 with points lt %d notitle", name,
            k % (int)NCOLOURS + 1);
    first = 0;
  }
  fputc('\n', f);
  if (tmp_close(f, gp) != 0) return -1;
  if (first) return 0; /* no latency in this workload and block */
  return run_gnuplot(R, gp, png);
}

/* Every plot.  0 (also without gnuplot: a note), or -1 if one failed. */
static int make_plots(struct report *R) {
  const char *base = getenv("TMPDIR");
  char resolved[PATH_MAX];

  if (cli_find_on_path("gnuplot", R->gnuplot, sizeof R->gnuplot) != 0) {
    cli_err("bench report: gnuplot not found on $PATH (Debian: apt-get "
            "install gnuplot-nox): no plots written, the Markdown is "
            "complete");
    return 0;
  }
  R->plotdir = R->plots != NULL ? R->plots : R->results;
  if (mkdir(R->plotdir, 0755) != 0 && errno != EEXIST) {
    cli_err("bench report: --plots %s: %s", R->plotdir, strerror(errno));
    return -1;
  }
  if (realpath(R->plotdir, resolved) == NULL) {
    cli_err("bench report: --plots %s: %s", R->plotdir, strerror(errno));
    return -1;
  }
  if (copy_str(R->absdir, sizeof R->absdir, resolved) != 0 ||
      strchr(resolved, '\n') != NULL) {
    cli_err("bench report: --plots %s: path too long or holds a line break",
            R->plotdir);
    return -1;
  }
  if (base == NULL || base[0] == '\0') base = "/tmp";
  snprintf(R->tmp, sizeof R->tmp, "%s/cascade-report.XXXXXX", base);
  if (mkdtemp(R->tmp) == NULL) {
    cli_err("bench report: mkdtemp %s: %s", R->tmp, strerror(errno));
    R->tmp[0] = '\0';
    return -1;
  }

  if (R->nblk == 1)
    plot_bars(R);
  else
    for (int w = 0; w < R->nwl; w++) plot_lines(R, w);
  for (int w = 0; w < R->nwl; w++)
    for (int b = 0; b < R->nblk; b++)
      plot_latency(R, w, R->blk[b], R->nblk > 1);

  if (R->plot_failed) {
    cli_err("bench report: kept the gnuplot scripts and data in %s", R->tmp);
    return -1;
  }
  if (cli_rm_tree(R->tmp, 0) != 0)
    cli_err("bench report: warning: cannot remove %s: %s", R->tmp,
            strerror(errno));
  if (R->nplot == 0) cli_err("bench report: no ok results: no plots");
  return 0;
}

/* ---- Command ------------------------------------------------------------- */

void cli_bench_report_usage(FILE *f) {
  fprintf(f,
          "Usage: cascade bench report [--results DIR] [--out FILE]\n"
          "                            [--plots DIR | --no-plots]\n"
          "\n"
          "Turn the results of `cascade bench suite` (one JSON file per "
          "system and\n"
          "workload in DIR) into Markdown, a table per workload (systems by "
          "GB/s; ops/s,\n"
          "p50 and p99 latency per call, GB/s against the best baseline), and "
          "PNG plots\n"
          "drawn by gnuplot:\n"
          "  throughput.png           GB/s of every system, a group of bars "
          "per workload\n"
          "  throughput_WORKLOAD.png  instead, with several block sizes: GB/s "
          "against\n"
          "                           block size, a line per system\n"
          "  latency_WORKLOAD.png     the latency percentiles per call of "
          "every system,\n"
          "                           a step plot (_BLOCK added with several "
          "block sizes)\n"
          "Other files (other benches' JSON lines, anything not a suite "
          "result) are skipped\n"
          "with a note.  Of the results of one system, workload and block "
          "size, the newest\n"
          "is used.\n"
          "\n"
          "Options:\n"
          "  --results DIR   the suite's results [results]\n"
          "  --out FILE      write the Markdown to FILE [stdout]\n"
          "  --plots DIR     where the PNG files go [the results directory]\n"
          "  --no-plots      no plots (gnuplot not needed)\n"
          "\n"
          "Without gnuplot on $PATH (Debian: gnuplot-nox) the Markdown is "
          "still written\n"
          "and the status is 0.  Exit status: 1 if DIR cannot be read, holds "
          "no suite\n"
          "result, or gnuplot fails; 2 for a usage error.\n");
}

/* Options into R.  -1 to go on, else the exit status. */
static int parse_args(struct report *R, int argc, char **argv) {
  for (int i = 0; i < argc;) {
    const char *val;
    int r;

    if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
      cli_bench_report_usage(stdout);
      return CLI_OK;
    }
    if (strcmp(argv[i], "--no-plots") == 0) {
      R->no_plots = 1;
      i++;
      continue;
    }
#define OPT(name, var)                                                         \
  if ((r = cli_opt_value(argc, argv, &i, name, &val)) != 0) {                  \
    if (r < 0) return CLI_USAGE;                                               \
    if (val[0] == '\0') {                                                      \
      cli_err("bench report: %s: empty value", name);                          \
      return CLI_USAGE;                                                        \
    }                                                                          \
    var = val;                                                                 \
    continue;                                                                  \
  }
    OPT("--results", R->results)
    OPT("--out", R->out)
    OPT("--plots", R->plots)
#undef OPT
    cli_err("bench report: unexpected argument '%s' (see cascade bench "
            "report --help)",
            argv[i]);
    return CLI_USAGE;
  }
  if (R->no_plots && R->plots != NULL) {
    cli_err("bench report: --plots and --no-plots: give one");
    return CLI_USAGE;
  }
  return -1;
}

int cli_bench_report(int argc, char **argv, const cli_common *co) {
  struct report R;
  int rc;

  memset(&R, 0, sizeof R);
  R.results = "results";
  if (co->nset > 0) {
    cli_err("bench report: --set/--dram/--policy are not taken (it reads "
            "results, it runs no store)");
    return CLI_USAGE;
  }
  rc = parse_args(&R, argc, argv);
  if (rc >= 0) return rc;
  rc = CLI_FAIL;
  if (load_dir(&R) != 0) goto done;
  drop_older(&R);
  if (index_records(&R) != 0) {
    cli_err("bench report: out of memory");
    goto done;
  }
  if (R.nused == 0) {
    cli_err("bench report: no suite result in %s (run cascade bench suite "
            "--results %s)",
            R.results, R.results);
    goto done;
  }
  if (emit_markdown(&R) != 0) goto done;
  rc = CLI_OK;
  if (!R.no_plots && make_plots(&R) != 0) rc = CLI_FAIL;

done:
  free(R.r);
  free(R.sys);
  free(R.wl);
  free(R.blk);
  free(R.order);
  return rc;
}
