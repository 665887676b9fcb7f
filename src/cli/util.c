/*
 * util.c - small helpers shared by the commands of the `cascade` tool:
 * the common options (--set/--dram/--policy), size parsing and formatting,
 * a monotonic clock, a progress line on stderr, text tables, JSON string
 * escaping, facts about the machine and its file systems (for benchmark
 * headers), model presets, medians, removing a directory tree, and a
 * readable dump of cascade_stats.
 *
 * Nothing here keeps global state except the progress line's "shown" flag;
 * the tool is single-threaded.  Tables own copies of their cells and are
 * freed by their creator.
 */
#define _GNU_SOURCE /* nftw */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/magic.h>
#include <ftw.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "cli.h"

/* ---- Messages ------------------------------------------------------------ */

void cli_err(const char *fmt, ...) {
  va_list ap;

  cli_progress_done();
  fputs("cascade: ", stderr);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
}

/* ---- Options ------------------------------------------------------------- */

int cli_opt_value(int argc, char **argv, int *i, const char *name,
                  const char **val) {
  const char *a = argv[*i];
  size_t n = strlen(name);

  if (strncmp(a, name, n) != 0) return 0;
  if (a[n] == '=') {
    *val = a + n + 1;
    *i += 1;
    return 1;
  }
  if (a[n] != '\0') return 0;
  if (*i + 1 >= argc) {
    cli_err("option %s needs a value", name);
    return -1;
  }
  *val = argv[*i + 1];
  *i += 2;
  return 1;
}

static int add_setting(cli_common *co, const char *name, size_t nlen,
                       const char *value, const char *opt) {
  if (co->nset >= CLI_MAX_SETTINGS) {
    cli_err("too many settings (at most %d)", CLI_MAX_SETTINGS);
    return -1;
  }
  if (nlen == 0 || nlen >= CLI_MAX_SETTING_NAME) {
    cli_err("%s: bad setting name", opt);
    return -1;
  }
  memcpy(co->set[co->nset].name, name, nlen);
  co->set[co->nset].name[nlen] = '\0';
  co->set[co->nset].value = value;
  co->nset++;
  return 1;
}

int cli_parse_common_only(cli_common *co, int argc, char **argv,
                          const char *cmd, void (*usage)(FILE *)) {
  for (int i = 1; i < argc;) {
    if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
      usage(stdout);
      return CLI_OK;
    }
    int r = cli_common_option(co, argc, argv, &i);
    if (r < 0) return CLI_USAGE;
    if (r == 0) {
      cli_err("%s: unexpected argument '%s' (see cascade %s --help)", cmd,
              argv[i], cmd);
      return CLI_USAGE;
    }
  }
  return -1;
}

int cli_common_option(cli_common *co, int argc, char **argv, int *i) {
  const char *v;
  int r;

  if ((r = cli_opt_value(argc, argv, i, "--set", &v)) != 0) {
    const char *eq;

    if (r < 0) return -1;
    eq = strchr(v, '=');
    if (eq == NULL) {
      cli_err("--set %s: expected NAME=VALUE", v);
      return -1;
    }
    return add_setting(co, v, (size_t)(eq - v), eq + 1, "--set");
  }
  if ((r = cli_opt_value(argc, argv, i, "--dram", &v)) != 0)
    return r < 0 ? -1 : add_setting(co, "dram.capacity", 13, v, "--dram");
  if ((r = cli_opt_value(argc, argv, i, "--policy", &v)) != 0)
    return r < 0 ? -1 : add_setting(co, "policy", 6, v, "--policy");
  return 0;
}

int cli_config_set(cascade_config *cfg, const char *name, const char *value,
                   const char *what) {
  int rc = cascade_config_set(cfg, name, value);

  if (rc != 0)
    cli_err("%s: setting %s=%s: %s", what, name, value, cascade_strerror(rc));
  return rc;
}

int cli_apply_settings(const cli_common *co, cascade_config *cfg) {
  for (size_t k = 0; k < co->nset; k++) {
    int rc = cascade_config_set(cfg, co->set[k].name, co->set[k].value);

    if (rc != 0) {
      cli_err("--set %s=%s: %s", co->set[k].name, co->set[k].value,
              cascade_strerror(rc));
      if (rc == CASCADE_EUNKNOWN)
        cli_err("run `cascade config` to list the settings");
      return CLI_USAGE;
    }
  }
  return CLI_OK;
}

/* ---- Sizes and numbers --------------------------------------------------- */

int cli_parse_size(const char *s, uint64_t *out) {
  uint64_t v = 0, mul = 1;
  const char *p = s;
  char suf[8];
  size_t n = 0;

  if (s == NULL || !isdigit((unsigned char)*p)) return -1;
  for (; isdigit((unsigned char)*p); p++) {
    unsigned d = (unsigned)(*p - '0');

    if (v > (UINT64_MAX - d) / 10) return -1;
    v = v * 10 + d;
  }
  while (*p != '\0' && n < sizeof suf - 1)
    suf[n++] = (char)tolower((unsigned char)*p++);
  if (*p != '\0') return -1;
  suf[n] = '\0';
  if (n > 0) {
    switch (suf[0]) {
    case 'b':
      mul = 1;
      break;
    case 'k':
      mul = 1ull << 10;
      break;
    case 'm':
      mul = 1ull << 20;
      break;
    case 'g':
      mul = 1ull << 30;
      break;
    case 't':
      mul = 1ull << 40;
      break;
    default:
      return -1;
    }
    if (suf[0] == 'b' ? n != 1
                      : !(n == 1 || (n == 2 && suf[1] == 'b') ||
                          (n == 3 && suf[1] == 'i' && suf[2] == 'b')))
      return -1;
  }
  if (v > UINT64_MAX / mul) return -1;
  *out = v * mul;
  return 0;
}

const char *cli_fmt_size(uint64_t b, char *buf, size_t cap) {
  static const char *const unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  uint64_t div = 1;

  while (u < 4 && b >= div * 1024) {
    div *= 1024;
    u++;
  }
  if (b % div == 0)
    snprintf(buf, cap, "%" PRIu64 " %s", b / div, unit[u]);
  else
    snprintf(buf, cap, "%.1f %s", (double)b / (double)div, unit[u]);
  return buf;
}

const char *cli_fmt_count(uint64_t n, char *buf, size_t cap) {
  char tmp[32];
  int len = snprintf(tmp, sizeof tmp, "%" PRIu64, n);
  size_t o = 0;

  for (int k = 0; k < len && o + 2 < cap; k++) {
    if (k > 0 && (len - k) % 3 == 0) buf[o++] = ',';
    buf[o++] = tmp[k];
  }
  buf[o < cap ? o : cap - 1] = '\0';
  return buf;
}

const char *cli_fmt_ns(uint64_t ns, char *buf, size_t cap) {
  if (ns < 1000)
    snprintf(buf, cap, "%" PRIu64 " ns", ns);
  else if (ns < 1000000)
    snprintf(buf, cap, "%.1f us", (double)ns / 1e3);
  else if (ns < 1000000000)
    snprintf(buf, cap, "%.1f ms", (double)ns / 1e6);
  else
    snprintf(buf, cap, "%.2f s", (double)ns / 1e9);
  return buf;
}

double cli_now(void) {
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- Progress line ------------------------------------------------------- */

static int progress_shown;

void cli_progress(int idx, int total, const char *what) {
  if (!isatty(STDERR_FILENO)) return;
  fprintf(stderr, "\r\033[K[%d/%d] %s", idx, total, what);
  fflush(stderr);
  progress_shown = 1;
}

void cli_progress_done(void) {
  if (!progress_shown) return;
  fputs("\r\033[K", stderr);
  fflush(stderr);
  progress_shown = 0;
}

/* ---- Tables -------------------------------------------------------------- */

struct cli_table {
  int ncols;
  char align[16];
  char **cells; /* nrows * ncols, row 0 = headers; NULL = empty */
  size_t nrows, cap;
};

#define TABLE_MAX_COLS 16

cli_table *cli_table_new(int ncols, const char *const *headers,
                         const char *align) {
  cli_table *t;

  if (ncols < 1 || ncols > TABLE_MAX_COLS) return NULL;
  t = calloc(1, sizeof *t);
  if (t == NULL) return NULL;
  t->ncols = ncols;
  for (int c = 0; c < ncols; c++)
    t->align[c] = (align != NULL && align[c] == 'r') ? 'r' : 'l';
  if (cli_table_row(t, headers) != 0) {
    free(t);
    return NULL;
  }
  return t;
}

int cli_table_row(cli_table *t, const char *const *cells) {
  if (t->nrows == t->cap) {
    size_t ncap = t->cap ? t->cap * 2 : 16;
    char **p = realloc(t->cells, ncap * (size_t)t->ncols * sizeof *p);

    if (p == NULL) return -ENOMEM;
    t->cells = p;
    t->cap = ncap;
  }
  for (int c = 0; c < t->ncols; c++) {
    char **dst = &t->cells[t->nrows * (size_t)t->ncols + (size_t)c];

    *dst = NULL;
    if (cells != NULL && cells[c] != NULL) {
      *dst = strdup(cells[c]);
      if (*dst == NULL) {
        for (int d = 0; d < c; d++)
          free(t->cells[t->nrows * (size_t)t->ncols + (size_t)d]);
        return -ENOMEM;
      }
    }
  }
  t->nrows++;
  return 0;
}

void cli_table_print(const cli_table *t, FILE *f, const char *indent) {
  int w[TABLE_MAX_COLS] = {0};

  for (size_t r = 0; r < t->nrows; r++)
    for (int c = 0; c < t->ncols; c++) {
      const char *s = t->cells[r * (size_t)t->ncols + (size_t)c];
      int len = s ? (int)strlen(s) : 0;

      if (len > w[c]) w[c] = len;
    }
  for (size_t r = 0; r < t->nrows; r++) {
    char line[1024];
    size_t o = 0;
    int blank = 1;

    for (int c = 0; c < t->ncols; c++)
      if (t->cells[r * (size_t)t->ncols + (size_t)c] != NULL) blank = 0;
    if (blank) {
      fputc('\n', f);
      continue;
    }
    for (int c = 0; c < t->ncols && o < sizeof line; c++) {
      const char *s = t->cells[r * (size_t)t->ncols + (size_t)c];
      int n;

      if (s == NULL) s = "";
      if (t->align[c] == 'r')
        n = snprintf(line + o, sizeof line - o, "%s%*s", c ? "  " : "", w[c],
                     s);
      else
        n = snprintf(line + o, sizeof line - o, "%s%-*s", c ? "  " : "", w[c],
                     s);
      if (n < 0) break;
      o += (size_t)n;
    }
    if (o >= sizeof line) o = sizeof line - 1;
    while (o > 0 && line[o - 1] == ' ') o--;
    line[o] = '\0';
    fprintf(f, "%s%s\n", indent ? indent : "", line);
  }
}

void cli_table_free(cli_table *t) {
  if (t == NULL) return;
  for (size_t k = 0; k < t->nrows * (size_t)t->ncols; k++) free(t->cells[k]);
  free(t->cells);
  free(t);
}

/* ---- JSON ---------------------------------------------------------------- */

void cli_json_str(FILE *f, const char *s) {
  fputc('"', f);
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    switch (*p) {
    case '"':
      fputs("\\\"", f);
      break;
    case '\\':
      fputs("\\\\", f);
      break;
    case '\n':
      fputs("\\n", f);
      break;
    case '\r':
      fputs("\\r", f);
      break;
    case '\t':
      fputs("\\t", f);
      break;
    default:
      if (*p < 0x20 || *p == 0x7f)
        fprintf(f, "\\u%04x", *p);
      else
        fputc(*p, f); /* UTF-8 passes through; JSON allows it */
    }
  }
  fputc('"', f);
}

void cli_json_num(FILE *f, double v) {
  if (!isfinite(v))
    fputs("null", f);
  else if (v == floor(v) && fabs(v) < 1e15)
    fprintf(f, "%.0f", v);
  else if (fabs(v) >= 1000 && fabs(v) < 1e15)
    fprintf(f, "%.1f", v); /* no exponent for large rates */
  else
    fprintf(f, "%.6g", v);
}

void cli_json_met(FILE *f, int met) {
  fputs(met < 0 ? "null" : met ? "true" : "false", f);
}

void cli_fill_pool(uint8_t *p, size_t bytes, uint64_t seed) {
  uint64_t x = seed;

  for (size_t o = 0; o + 8 <= bytes; o += 8) {
    uint64_t z = cli_mix64(x += 0x9e3779b97f4a7c15ull);

    memcpy(p + o, &z, 8);
  }
}

json_object *cli_jget(json_object *o, const char *key) {
  json_object *v = NULL;

  if (o == NULL || !json_object_is_type(o, json_type_object) ||
      !json_object_object_get_ex(o, key, &v))
    return NULL;
  return v;
}

/* The string at key, or NULL if absent or not a string. */
const char *cli_jstr(json_object *o, const char *key) {
  json_object *v = cli_jget(o, key);

  return v != NULL && json_object_is_type(v, json_type_string)
             ? json_object_get_string(v)
             : NULL;
}

/* The number at key, or NaN if absent, null or not a number. */
double cli_jnum(json_object *o, const char *key) {
  json_object *v = cli_jget(o, key);

  if (v != NULL && (json_object_is_type(v, json_type_int) ||
                    json_object_is_type(v, json_type_double)))
    return json_object_get_double(v);
  return NAN;
}

int cli_is_baseline(const char *system) {
  return strncmp(system, "cascade", 7) != 0;
}

const char *cli_met_text(int met) {
  return met < 0 ? "n/a" : met ? "ok" : "MISSED";
}

/* ---- Machine facts ------------------------------------------------------- */

static void read_line(const char *path, char *buf, size_t cap) {
  FILE *f = fopen(path, "r");

  buf[0] = '\0';
  if (f == NULL) return;
  if (fgets(buf, (int)cap, f) == NULL) buf[0] = '\0';
  fclose(f);
  buf[strcspn(buf, "\n")] = '\0';
}

void cli_machine_facts(cli_machine *m) {
  FILE *f;
  char line[512];
  struct utsname u;

  memset(m, 0, sizeof *m);
  snprintf(m->cpu, sizeof m->cpu, "unknown");
  f = fopen("/proc/cpuinfo", "r");
  if (f != NULL) {
    while (fgets(line, sizeof line, f) != NULL) {
      if (strncmp(line, "model name", 10) == 0) {
        const char *p = strchr(line, ':');

        if (p != NULL) {
          p++;
          while (*p == ' ' || *p == '\t') p++;
          snprintf(m->cpu, sizeof m->cpu, "%s", p);
          m->cpu[strcspn(m->cpu, "\n")] = '\0';
        }
        break;
      }
    }
    fclose(f);
  }
  m->cores = sysconf(_SC_NPROCESSORS_ONLN);
  if (uname(&u) == 0)
    snprintf(m->kernel, sizeof m->kernel, "%s %s %s", u.sysname, u.release,
             u.machine);
  for (int i = 0; i < 8; i++) {
    char path[128], lvl[32], sz[32];
    uint64_t v;

    snprintf(path, sizeof path,
             "/sys/devices/system/cpu/cpu0/cache/index%d/level", i);
    read_line(path, lvl, sizeof lvl);
    if (strcmp(lvl, "3") != 0) continue;
    snprintf(path, sizeof path,
             "/sys/devices/system/cpu/cpu0/cache/index%d/size", i);
    read_line(path, sz, sizeof sz);
    if (cli_parse_size(sz, &v) == 0) m->l3 = v;
  }
  f = fopen("/proc/meminfo", "r");
  if (f != NULL) {
    unsigned long long kb;

    while (fgets(line, sizeof line, f) != NULL)
      if (sscanf(line, "MemTotal: %llu kB", &kb) == 1) {
        m->mem = (uint64_t)kb * 1024;
        break;
      }
    fclose(f);
  }
  read_line("/sys/kernel/mm/transparent_hugepage/enabled", m->thp,
            sizeof m->thp);
}

/* ---- Statistics ---------------------------------------------------------- */

static const char *const tier_name[CASCADE_NTIERS] = {"gpu", "dram", "remote",
                                                      "disk"};

/* Append a (label, value) pair to a 4-column key/value table row. */
static void kv_row(cli_table *t, const char *k1, const char *v1, const char *k2,
                   const char *v2) {
  const char *cells[4] = {k1, v1, k2, v2};

  cli_table_row(t, cells);
}

void cli_print_stats(FILE *f, const struct cascade_stats *st,
                     const char *indent) {
  char a[32], b[32], c[32], d[32], e[32], g[32], h[32], i[32];
  cli_table *t;

  if (indent == NULL) indent = "";

  /* Keys and operations. */
  {
    static const char *const hd[4] = {"store", "", "", ""};

    t = cli_table_new(4, hd, "lrlr");
    if (t == NULL) return;
    kv_row(t, "keys", cli_fmt_count(st->keys, a, sizeof a), "namespaces",
           cli_fmt_count(st->namespaces, b, sizeof b));
    kv_row(t, "puts", cli_fmt_count(st->puts, c, sizeof c), "gets",
           cli_fmt_count(st->gets, d, sizeof d));
    kv_row(t, "hits", cli_fmt_count(st->hits, e, sizeof e), "misses",
           cli_fmt_count(st->misses, g, sizeof g));
    kv_row(t, "deletes", cli_fmt_count(st->deletes, h, sizeof h), "expired",
           cli_fmt_count(st->expired, i, sizeof i));
    kv_row(t, "dedup hits", cli_fmt_count(st->dedup_hits, a, sizeof a),
           "dedup bytes saved",
           cli_fmt_size(st->dedup_bytes_saved, b, sizeof b));
    {
      /* policy[] need not be NUL-terminated when the name fills it. */
      char pol[sizeof st->policy + 1];

      memcpy(pol, st->policy, sizeof st->policy);
      pol[sizeof st->policy] = '\0';
      kv_row(t, "views held", cli_fmt_count(st->views, c, sizeof c), "policy",
             pol[0] ? pol : "?");
    }
    kv_row(t, "dram free", cli_fmt_size(st->dram_free_bytes, d, sizeof d),
           "dram largest free",
           cli_fmt_size(st->dram_largest_free, e, sizeof e));
    snprintf(g, sizeof g, "%.1f%%", st->dram_fragmentation * 100.0);
    kv_row(t, "dram fragmentation", g, "dram huge pages",
           st->dram_hugepages ? "yes" : "no");
    cli_table_print(t, f, indent);
    cli_table_free(t);
  }

  /* Tiers that are configured. */
  {
    static const char *const hd[9] = {"tier",     "blocks",   "bytes",
                                      "capacity", "hits",     "misses",
                                      "evicted",  "promoted", "demoted"};

    t = cli_table_new(9, hd, "lrrrrrrrr");
    if (t == NULL) return;
    for (int k = 0; k < CASCADE_NTIERS; k++) {
      const cascade_tier_stats *ts = &st->tier[k];
      const char *cells[9];

      if (!ts->present) continue;
      cells[0] = tier_name[k];
      cells[1] = cli_fmt_count(ts->blocks, a, sizeof a);
      cells[2] = cli_fmt_size(ts->bytes, b, sizeof b);
      cells[3] = cli_fmt_size(ts->capacity, c, sizeof c);
      cells[4] = cli_fmt_count(ts->hits, d, sizeof d);
      cells[5] = cli_fmt_count(ts->misses, e, sizeof e);
      cells[6] = cli_fmt_count(ts->evictions, g, sizeof g);
      cells[7] = cli_fmt_count(ts->promotions, h, sizeof h);
      cells[8] = cli_fmt_count(ts->demotions, i, sizeof i);
      cli_table_row(t, cells);
    }
    fputc('\n', f);
    cli_table_print(t, f, indent);
    cli_table_free(t);
  }

  /* The disk tier's files (only with one). */
  if (st->tier[CASCADE_TIER_DISK].present) {
    static const char *const hd[4] = {"disk tier", "", "", ""};
    char mode[sizeof st->disk_mode + 1];

    memcpy(mode, st->disk_mode, sizeof st->disk_mode);
    mode[sizeof st->disk_mode] = '\0';
    t = cli_table_new(4, hd, "lrlr");
    if (t == NULL) return;
    kv_row(t, "i/o mode", mode[0] ? mode : "?", "keys recovered at open",
           cli_fmt_count(st->disk_recovered, a, sizeof a));
    kv_row(t, "segment files", cli_fmt_size(st->disk_file_bytes, b, sizeof b),
           "live records", cli_fmt_size(st->disk_live_bytes, c, sizeof c));
    kv_row(t, "compactions", cli_fmt_count(st->disk_compactions, d, sizeof d),
           "read errors (missed)",
           cli_fmt_count(st->disk_read_errors, e, sizeof e));
    kv_row(t, "write errors", cli_fmt_count(st->disk_write_errors, g, sizeof g),
           "", "");
    fputc('\n', f);
    cli_table_print(t, f, indent);
    cli_table_free(t);
  }

  /* Latency percentiles (only if recorded). */
  if (st->get_latency.count > 0 || st->put_latency.count > 0) {
    static const char *const hd[7] = {"latency", "count", "p50", "p90",
                                      "p99",     "p99.9", "max"};
    const cascade_latency *l[2] = {&st->get_latency, &st->put_latency};
    static const char *const nm[2] = {"get", "put"};

    t = cli_table_new(7, hd, "lrrrrrr");
    if (t == NULL) return;
    for (int k = 0; k < 2; k++) {
      const char *cells[7];

      cells[0] = nm[k];
      cells[1] = cli_fmt_count(l[k]->count, a, sizeof a);
      cells[2] = cli_fmt_ns(l[k]->p50, b, sizeof b);
      cells[3] = cli_fmt_ns(l[k]->p90, c, sizeof c);
      cells[4] = cli_fmt_ns(l[k]->p99, d, sizeof d);
      cells[5] = cli_fmt_ns(l[k]->p999, e, sizeof e);
      cells[6] = cli_fmt_ns(l[k]->max, g, sizeof g);
      cli_table_row(t, cells);
    }
    fputc('\n', f);
    cli_table_print(t, f, indent);
    cli_table_free(t);
  }
}

/* ---- Model presets ------------------------------------------------------------ */

/* KV bytes per token = layers x kv_heads x head_dim x 2 (K and V) x 2 (fp16):
 *   llama3-8b    32 x 8 x 128 x 2 x 2 = 131,072 (128 KiB)
 *   llama3-70b   80 x 8 x 128 x 2 x 2 = 327,680 (320 KiB)
 *   qwen2.5-7b   28 x 4 x 128 x 2 x 2 =  57,344 (56 KiB)
 *   qwen2.5-32b  64 x 8 x 128 x 2 x 2 = 262,144 (256 KiB)
 *   qwen2.5-72b  80 x 8 x 128 x 2 x 2 = 327,680 (320 KiB) */
static const struct {
  const char *name;
  unsigned layers, kv_heads, head_dim;
} models[] = {
    {"llama3-8b", 32, 8, 128},   {"llama3-70b", 80, 8, 128},
    {"qwen2.5-7b", 28, 4, 128},  {"qwen2.5-32b", 64, 8, 128},
    {"qwen2.5-72b", 80, 8, 128},
};

const char *cli_model_name(size_t i) {
  return i < sizeof models / sizeof models[0] ? models[i].name : NULL;
}

uint64_t cli_model_bpt(const char *name) {
  for (size_t k = 0; k < sizeof models / sizeof models[0]; k++)
    if (strcmp(models[k].name, name) == 0)
      return (uint64_t)models[k].layers * models[k].kv_heads *
             models[k].head_dim * 2 * 2;
  return 0;
}

/* ---- File systems ------------------------------------------------------------- */

int cli_fs_facts(const char *path, char *fs_type, size_t tcap, char *device,
                 size_t dcap) {
  static const struct {
    long magic;
    const char *name;
  } magic[] = {{EXT4_SUPER_MAGIC, "ext2/3/4"},
               {XFS_SUPER_MAGIC, "xfs"},
               {BTRFS_SUPER_MAGIC, "btrfs"},
               {TMPFS_MAGIC, "tmpfs"},
               {RAMFS_MAGIC, "ramfs"},
               {NFS_SUPER_MAGIC, "nfs"},
               {OVERLAYFS_SUPER_MAGIC, "overlay"},
               {F2FS_SUPER_MAGIC, "f2fs"},
               {FUSE_SUPER_MAGIC, "fuse"},
               {0x0BD00BD0, "lustre"},
               {0x2FC12FC1, "zfs"},
               {0x47504653, "gpfs"}};
  struct statfs sf;
  struct stat st;
  FILE *f;
  char line[4096];
  int mem = 0;

  snprintf(fs_type, tcap, "?");
  device[0] = '\0';
  if (statfs(path, &sf) == 0) {
    mem = sf.f_type == TMPFS_MAGIC || sf.f_type == RAMFS_MAGIC;
    snprintf(fs_type, tcap, "0x%lx", (long)sf.f_type);
    for (size_t k = 0; k < sizeof magic / sizeof magic[0]; k++)
      if ((long)sf.f_type == magic[k].magic)
        snprintf(fs_type, tcap, "%s", magic[k].name);
  }
  if (stat(path, &st) != 0 || (f = fopen("/proc/self/mountinfo", "r")) == NULL)
    return mem;
  /* id parent major:minor root mountpoint options [tags] - type source */
  while (fgets(line, sizeof line, f) != NULL) {
    unsigned maj, min;
    char type[64], src[256];
    const char *sep;

    if (sscanf(line, "%*s %*s %u:%u", &maj, &min) != 2 ||
        makedev(maj, min) != st.st_dev)
      continue;
    sep = strstr(line, " - ");
    if (sep != NULL && sscanf(sep + 3, "%63s %255s", type, src) == 2) {
      snprintf(fs_type, tcap, "%s", type);
      snprintf(device, dcap, "%s", src);
      break;
    }
  }
  fclose(f);
  return mem;
}

/* ---- Medians ------------------------------------------------------------------ */

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;

  return (x > y) - (x < y);
}

double cli_median(double *v, int n) {
  if (n <= 0) return NAN;
  qsort(v, (size_t)n, sizeof v[0], cmp_double);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

const char *cli_fmt_rate(double v, char *buf, size_t cap) {
  if (!isfinite(v))
    snprintf(buf, cap, "n/a");
  else if (v < 100)
    snprintf(buf, cap, "%.2f", v);
  else if (v < 10000)
    snprintf(buf, cap, "%.1f", v);
  else
    snprintf(buf, cap, "%.0f", v);
  return buf;
}

/* ---- Directories -------------------------------------------------------------- */

static int rm_entry(const char *path, const struct stat *st, int flag,
                    struct FTW *ftw) {
  (void)st;
  (void)flag;
  (void)ftw;
  return remove(path) != 0 && errno != ENOENT ? -1 : 0;
}

static int rm_below(const char *path, const struct stat *st, int flag,
                    struct FTW *ftw) {
  return ftw->level == 0 ? 0 : rm_entry(path, st, flag, ftw);
}

int cli_rm_tree(const char *path, int keep_top) {
  struct stat st;

  if (lstat(path, &st) != 0) return errno == ENOENT ? 0 : -1;
  return nftw(path, keep_top ? rm_below : rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}
