/*
 * trace.c - traces for the replayer: the in-memory model (trace.h), the
 * Mooncake JSONL loader (json-c), the Azure CSV loader and the synthetic
 * chat/RAG generator.
 *
 * Layout: requests in req[] (arrival order), their block ids back to back
 * in blk[] (dense ids), raw[] maps a dense id back to its 64-bit id.  The
 * raw -> dense map is an open-addressing table with linear probing, kept at
 * most half full; raw id 0 is stored as ~0 (0 marks an empty slot) and
 * fresh ids start at 2^63, where neither Mooncake's small integers nor the
 * generator's (top bit cleared) ids go.
 *
 * Synthetic workload (sim_trace_synth): sessions arrive as a Poisson
 * process; a session picks a system prompt (Zipf over system_prompts) and,
 * with probability rag_share, a document (Zipf over the docs pool), then
 * runs a geometric number of turns separated by exponential think times.
 * Turn k's input is: system prompt, document, then every earlier user
 * message and answer, then the new user message; its output is the new
 * answer.  Every segment is a whole number of blocks; block i's id chains
 * the content of block i onto block i-1's id, so requests share exactly
 * their common prefix.  Requests are emitted in time order; the generator
 * keeps adding sessions until the first `requests` turns in time order are
 * final (every later session arrives after them).
 */
#define _GNU_SOURCE
#include "trace.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#define FRESH_BASE (UINT64_C(1) << 63)

static uint64_t mix64(uint64_t z) {
  z += UINT64_C(0x9e3779b97f4a7c15);
  z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
  z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
  return z ^ (z >> 31);
}

void sim_trace_init(sim_trace *t, uint32_t tpb, const char *source) {
  memset(t, 0, sizeof *t);
  t->tokens_per_block = tpb ? tpb : 1;
  t->fresh = FRESH_BASE;
  snprintf(t->source, sizeof t->source, "%s", source ? source : "");
}

void sim_trace_free(sim_trace *t) {
  free(t->req);
  free(t->blk);
  free(t->raw);
  free(t->map_key);
  free(t->map_val);
  memset(t, 0, sizeof *t);
}

uint64_t sim_trace_fresh(sim_trace *t) { return t->fresh++; }

static int grow(void **p, size_t *cap, size_t need, size_t elem) {
  if (need <= *cap) return 0;
  size_t ncap = *cap ? *cap : 1024;
  while (ncap < need) ncap *= 2;
  void *np = realloc(*p, ncap * elem);
  if (!np) return -ENOMEM;
  *p = np;
  *cap = ncap;
  return 0;
}

static int map_grow(sim_trace *t) {
  size_t ncap = t->map_cap ? t->map_cap * 2 : 4096;
  uint64_t *nk = calloc(ncap, sizeof *nk);
  uint32_t *nv = malloc(ncap * sizeof *nv);
  if (!nk || !nv) {
    free(nk);
    free(nv);
    return -ENOMEM;
  }
  for (size_t i = 0; i < t->map_cap; i++) {
    if (!t->map_key[i]) continue;
    size_t j = mix64(t->map_key[i]) & (ncap - 1);
    while (nk[j]) j = (j + 1) & (ncap - 1);
    nk[j] = t->map_key[i];
    nv[j] = t->map_val[i];
  }
  free(t->map_key);
  free(t->map_val);
  t->map_key = nk;
  t->map_val = nv;
  t->map_cap = ncap;
  return 0;
}

/* The dense id of raw, adding it if new.  -ENOMEM on failure. */
static int64_t dense_of(sim_trace *t, uint64_t raw) {
  uint64_t k = raw ? raw : ~UINT64_C(0);
  if ((t->nuniq + 1) * 2 > t->map_cap && map_grow(t) < 0) return -ENOMEM;
  size_t j = mix64(k) & (t->map_cap - 1);
  while (t->map_key[j]) {
    if (t->map_key[j] == k) return t->map_val[j];
    j = (j + 1) & (t->map_cap - 1);
  }
  if (t->nuniq >= UINT32_MAX - 1) return -ENOMEM;
  if (grow((void **)&t->raw, &t->raw_cap, t->nuniq + 1, sizeof *t->raw) < 0)
    return -ENOMEM;
  t->map_key[j] = k;
  t->map_val[j] = (uint32_t)t->nuniq;
  t->raw[t->nuniq] = raw;
  return (int64_t)t->nuniq++;
}

int sim_trace_add(sim_trace *t, uint64_t t_us, uint32_t in_tokens,
                  uint32_t out_tokens, const uint64_t *ids, uint32_t nin,
                  uint32_t nout, uint32_t nprefix) {
  size_t n = (size_t)nin + nout;
  if (grow((void **)&t->req, &t->req_cap, t->nreq + 1, sizeof *t->req) < 0 ||
      grow((void **)&t->blk, &t->blk_cap, t->nblk + n, sizeof *t->blk) < 0)
    return -ENOMEM;
  for (size_t i = 0; i < n; i++) {
    int64_t d = dense_of(t, ids[i]);
    if (d < 0) return (int)d; /* ids added so far stay unused: harmless */
    t->blk[t->nblk + i] = (uint32_t)d;
  }
  sim_req *r = &t->req[t->nreq++];
  r->t_us = t_us;
  r->in_tokens = in_tokens;
  r->out_tokens = out_tokens;
  r->nin = nin;
  r->nout = nout;
  r->nprefix = nprefix > nin ? nin : nprefix;
  r->off = t->nblk;
  t->nblk += n;
  return 0;
}

size_t sim_trace_unique(const sim_trace *t, int with_output) {
  uint8_t *seen = calloc(t->nuniq ? t->nuniq : 1, 1);
  size_t n = 0;
  if (!seen) return t->nuniq;
  for (size_t r = 0; r < t->nreq; r++) {
    const sim_req *q = &t->req[r];
    size_t m = q->nin + (with_output ? q->nout : 0);
    for (size_t i = 0; i < m; i++) {
      uint32_t id = t->blk[q->off + i];
      if (!seen[id]) seen[id] = 1, n++;
    }
  }
  free(seen);
  return n;
}

/* Output blocks of a request of in + out tokens with nin input blocks. */
static uint32_t out_blocks(uint64_t in, uint64_t out, uint32_t tpb,
                           uint32_t nin) {
  uint64_t all = (in + out + tpb - 1) / tpb;
  return all > nin ? (uint32_t)(all - nin) : 0;
}

/* ---- Mooncake JSONL ------------------------------------------------------- */

static int get_uint(json_object *o, const char *name, uint64_t max,
                    uint64_t *out, int allow_float) {
  json_object *v;
  if (!json_object_object_get_ex(o, name, &v)) return -1;
  if (json_object_is_type(v, json_type_int)) {
    int64_t x = json_object_get_int64(v);
    if (x < 0 || (uint64_t)x > max) return -2;
    *out = (uint64_t)x;
    return 0;
  }
  if (allow_float && json_object_is_type(v, json_type_double)) {
    double x = json_object_get_double(v);
    if (!(x >= 0) || x > (double)max) return -2;
    *out = (uint64_t)x;
    return 0;
  }
  return -3;
}

static const char *uint_why(int e) {
  return e == -1 ? "missing" : e == -2 ? "out of range" : "not an integer";
}

/* The end of a loader's read loop: a read error or an empty trace is an
 * error too (rc: the loop's result so far). */
static int load_end(int rc, FILE *f, const sim_trace *t, const char *path,
                    char *err, size_t errcap) {
  if (rc == 0 && ferror(f)) {
    rc = -EIO;
    snprintf(err, errcap, "%s: read error", path);
  }
  if (rc == 0 && t->nreq == 0) {
    rc = -EINVAL;
    snprintf(err, errcap, "%s: no requests in the trace", path);
  }
  return rc;
}

int sim_trace_load_mooncake(sim_trace *t, const char *path, size_t limit,
                            char *err, size_t errcap) {
  FILE *f = fopen(path, "r");
  if (!f) {
    int e = errno;
    snprintf(err, errcap, "%s: %s", path, strerror(e));
    return -e;
  }
  json_tokener *tok = json_tokener_new();
  char *line = NULL;
  size_t lcap = 0, lineno = 0;
  uint64_t *ids = NULL;
  size_t idcap = 0;
  int rc = 0;
  ssize_t len;
  if (!tok) {
    fclose(f);
    snprintf(err, errcap, "out of memory");
    return -ENOMEM;
  }
  while ((limit == 0 || t->nreq < limit) &&
         (len = getline(&line, &lcap, f)) >= 0) {
    lineno++;
    size_t s = 0;
    while (s < (size_t)len && isspace((unsigned char)line[s])) s++;
    if (s == (size_t)len) continue; /* blank */
    json_tokener_reset(tok);
    json_object *o = json_tokener_parse_ex(tok, line + s, (int)(len - s));
    enum json_tokener_error je = json_tokener_get_error(tok);
    if (!o || je != json_tokener_success) {
      snprintf(err, errcap, "%s:%zu: not valid JSON: %s", path, lineno,
               o ? "trailing data"
               : je == json_tokener_continue
                   ? "unexpected end of line"
                   : json_tokener_error_desc(je));
      json_object_put(o);
      rc = -EINVAL;
      break;
    }
    /* Anything after the object but white space is an error. */
    size_t used = s + (size_t)json_tokener_get_parse_end(tok);
    while (used < (size_t)len && isspace((unsigned char)line[used])) used++;
    const char *what = NULL, *why = NULL;
    uint64_t ts = 0, in = 0, out = 0;
    json_object *arr = NULL;
    int e;
    if (used != (size_t)len)
      what = "line", why = "trailing data after the JSON object";
    else if (!json_object_is_type(o, json_type_object))
      what = "line", why = "not a JSON object";
    else if ((e = get_uint(o, "timestamp", UINT64_MAX / 1000, &ts, 1)) < 0)
      what = "timestamp", why = uint_why(e);
    else if ((e = get_uint(o, "input_length", UINT32_MAX, &in, 0)) < 0)
      what = "input_length", why = uint_why(e);
    else if ((e = get_uint(o, "output_length", UINT32_MAX, &out, 0)) < 0)
      what = "output_length", why = uint_why(e);
    else if (!json_object_object_get_ex(o, "hash_ids", &arr))
      what = "hash_ids", why = "missing";
    else if (!json_object_is_type(arr, json_type_array))
      what = "hash_ids", why = "not an array";
    if (!what) {
      size_t n = json_object_array_length(arr);
      uint32_t nout = out_blocks(in, out, 512, (uint32_t)n);
      if (n > UINT32_MAX / 2 ||
          grow((void **)&ids, &idcap, n + nout + 1, sizeof *ids) < 0) {
        json_object_put(o);
        snprintf(err, errcap, "%s:%zu: out of memory", path, lineno);
        rc = -ENOMEM;
        break;
      }
      for (size_t i = 0; i < n && !what; i++) {
        json_object *v = json_object_array_get_idx(arr, i);
        if (!json_object_is_type(v, json_type_int) ||
            json_object_get_int64(v) < 0 ||
            (uint64_t)json_object_get_int64(v) >= FRESH_BASE)
          what = "hash_ids", why = "holds something other than an id >= 0";
        else
          ids[i] = (uint64_t)json_object_get_int64(v);
      }
      if (!what) {
        for (uint32_t i = 0; i < nout; i++) ids[n + i] = sim_trace_fresh(t);
        if (sim_trace_add(t, ts * 1000, (uint32_t)in, (uint32_t)out, ids,
                          (uint32_t)n, nout, 0) < 0) {
          json_object_put(o);
          snprintf(err, errcap, "%s:%zu: out of memory", path, lineno);
          rc = -ENOMEM;
          break;
        }
      }
    }
    json_object_put(o);
    if (what) {
      snprintf(err, errcap, "%s:%zu: %s: %s", path, lineno, what, why);
      rc = -EINVAL;
      break;
    }
  }
  rc = load_end(rc, f, t, path, err, errcap);
  free(ids);
  free(line);
  json_tokener_free(tok);
  fclose(f);
  return rc;
}

/* ---- Azure CSV ------------------------------------------------------------ */

/* "YYYY-MM-DD HH:MM:SS[.fraction]" -> microseconds since the epoch. */
static int parse_stamp(const char *s, const char *end, uint64_t *us) {
  struct tm tm;
  memset(&tm, 0, sizeof tm);
  int n = 0;
  if (sscanf(s, "%4d-%2d-%2d %2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon,
             &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &n) != 6)
    return -1;
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  time_t sec = timegm(&tm);
  if (sec == (time_t)-1 || sec < 0) return -1;
  const char *p = s + n;
  uint64_t frac = 0, scale = 1000000;
  if (p < end && *p == '.') {
    p++;
    while (p < end && isdigit((unsigned char)*p)) {
      if (scale > 1) {
        scale /= 10;
        frac += (uint64_t)(*p - '0') * scale;
      }
      p++;
    }
  }
  if (p != end) return -1;
  *us = (uint64_t)sec * 1000000 + frac;
  return 0;
}

static int parse_u32(const char *s, const char *end, uint32_t *out) {
  uint64_t v = 0;
  if (s == end) return -1;
  for (; s < end; s++) {
    if (!isdigit((unsigned char)*s)) return -1;
    v = v * 10 + (uint64_t)(*s - '0');
    if (v > UINT32_MAX) return -1;
  }
  *out = (uint32_t)v;
  return 0;
}

int sim_trace_load_azure(sim_trace *t, const char *path, size_t limit,
                         uint32_t tpb, uint32_t shared_prefix_tokens,
                         char *err, size_t errcap) {
  FILE *f = fopen(path, "r");
  if (!f) {
    int e = errno;
    snprintf(err, errcap, "%s: %s", path, strerror(e));
    return -e;
  }
  char *line = NULL;
  size_t lcap = 0, lineno = 0;
  uint64_t *ids = NULL, t0 = 0;
  size_t idcap = 0;
  int rc = 0, header = 0;
  ssize_t len;
  uint32_t nshared = shared_prefix_tokens / tpb;
  while ((limit == 0 || t->nreq < limit) &&
         (len = getline(&line, &lcap, f)) >= 0) {
    lineno++;
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
      line[--len] = '\0';
    if (len == 0) continue;
    if (!header) {
      if (strcmp(line, "TIMESTAMP,ContextTokens,GeneratedTokens") != 0) {
        snprintf(err, errcap,
                 "%s:%zu: expected the header "
                 "TIMESTAMP,ContextTokens,GeneratedTokens",
                 path, lineno);
        rc = -EINVAL;
        break;
      }
      header = 1;
      continue;
    }
    char *c1 = strchr(line, ','), *c2 = c1 ? strchr(c1 + 1, ',') : NULL;
    uint64_t us;
    uint32_t in, out;
    const char *why = NULL;
    if (!c1 || !c2 || strchr(c2 + 1, ','))
      why = "expected 3 comma-separated fields";
    else if (parse_stamp(line, c1, &us) < 0)
      why = "bad TIMESTAMP (want YYYY-MM-DD HH:MM:SS.fff)";
    else if (parse_u32(c1 + 1, c2, &in) < 0)
      why = "bad ContextTokens (want a count)";
    else if (parse_u32(c2 + 1, line + len, &out) < 0)
      why = "bad GeneratedTokens (want a count)";
    if (why) {
      snprintf(err, errcap, "%s:%zu: %s", path, lineno, why);
      rc = -EINVAL;
      break;
    }
    if (t->nreq == 0) t0 = us;
    uint32_t nin = (uint32_t)(((uint64_t)in + tpb - 1) / tpb);
    uint32_t nout = out_blocks(in, out, tpb, nin);
    uint32_t np = nshared < nin ? nshared : nin;
    if (grow((void **)&ids, &idcap, (size_t)nin + nout + 1, sizeof *ids) <
        0) {
      rc = -ENOMEM;
      snprintf(err, errcap, "out of memory");
      break;
    }
    for (uint32_t i = 0; i < nin + nout; i++)
      ids[i] = i < np ? mix64(UINT64_C(0xa2e) + i) >> 1 : sim_trace_fresh(t);
    if (sim_trace_add(t, us >= t0 ? us - t0 : 0, in, out, ids, nin, nout,
                      np) < 0) {
      rc = -ENOMEM;
      snprintf(err, errcap, "out of memory");
      break;
    }
  }
  rc = load_end(rc, f, t, path, err, errcap);
  free(ids);
  free(line);
  fclose(f);
  return rc;
}

/* ---- Synthetic ------------------------------------------------------------ */

void sim_synth_defaults(sim_synth *s) {
  memset(s, 0, sizeof *s);
  s->seed = 1;
  s->requests = 2000;
  s->tpb = 16;
  s->system_prompts = 8;
  s->system_blocks = 64;
  s->docs = 200;
  s->doc_blocks = 64;
  s->zipf = 1.0;
  s->rag_share = 0.5;
  s->turns = 4;
  s->user_blocks = 4;
  s->output_blocks = 8;
  s->rate = 2;
  s->think_s = 20;
}

typedef struct rng {
  uint64_t s;
} rng;

static uint64_t rnext(rng *r) {
  r->s += UINT64_C(0x9e3779b97f4a7c15);
  uint64_t z = r->s;
  z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
  z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
  return z ^ (z >> 31);
}

static double runit(rng *r) { /* (0, 1) */
  return ((double)(rnext(r) >> 11) + 0.5) / 9007199254740992.0;
}

static double rexp(rng *r, double mean) { return -mean * log(runit(r)); }

/* Uniform in [m/2, 3m/2], at least 1 (mean ~m). */
static uint32_t rspread(rng *r, uint32_t m) {
  if (m <= 1) return 1;
  uint32_t lo = m / 2, span = m + 1;
  uint32_t v = lo + (uint32_t)(rnext(r) % span);
  return v ? v : 1;
}

/* Zipf over 0..n-1 by inverse CDF. */
typedef struct zipf {
  double *cdf;
  uint32_t n;
} zipf;

static int zipf_init(zipf *z, uint32_t n, double s) {
  z->n = n;
  z->cdf = malloc((n ? n : 1) * sizeof *z->cdf);
  if (!z->cdf) return -ENOMEM;
  double sum = 0;
  for (uint32_t i = 0; i < n; i++) z->cdf[i] = sum += pow(i + 1.0, -s);
  for (uint32_t i = 0; i < n; i++) z->cdf[i] /= sum;
  return 0;
}

static uint32_t zipf_draw(const zipf *z, rng *r) {
  double u = runit(r);
  uint32_t lo = 0, hi = z->n - 1;
  while (lo < hi) {
    uint32_t mid = lo + (hi - lo) / 2;
    if (z->cdf[mid] < u)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

/* One turn of a session: when, and where its input/output end in the
 * session's chain. */
typedef struct syn_turn {
  double t;
  uint32_t sess;
  uint32_t in_end, out_end; /* blocks of the chain */
  uint32_t nprefix;
} syn_turn;

typedef struct syn_sess {
  uint64_t *chain; /* chain ids of every block the session ever has */
  uint32_t n;
} syn_sess;

static int turn_cmp(const void *a, const void *b) {
  const syn_turn *x = a, *y = b;
  if (x->t != y->t) return x->t < y->t ? -1 : 1;
  if (x->sess != y->sess) return x->sess < y->sess ? -1 : 1;
  return x->in_end < y->in_end ? -1 : x->in_end > y->in_end;
}

int sim_trace_synth(sim_trace *t, const sim_synth *s, char *err,
                    size_t errcap) {
  if (!s->requests || !s->tpb || !s->system_prompts || !s->system_blocks ||
      !(s->turns >= 1) || !(s->rate > 0) || !(s->zipf >= 0) ||
      !(s->rag_share >= 0 && s->rag_share <= 1) || (s->rag_share > 0 && !s->docs)) {
    snprintf(err, errcap, "synthetic workload: bad parameters");
    return -EINVAL;
  }
  rng r = {s->seed * UINT64_C(0x2545f4914f6cdd1d) + 7};
  zipf zs = {0}, zd = {0};
  syn_turn *turns = NULL;
  syn_sess *sess = NULL;
  size_t nturns = 0, tcap = 0, nsess = 0, scap = 0;
  uint64_t *tmp = NULL;
  size_t tmpcap = 0;
  int rc = -ENOMEM;
  if (zipf_init(&zs, s->system_prompts, s->zipf) < 0 ||
      zipf_init(&zd, s->docs ? s->docs : 1, s->zipf) < 0)
    goto out;
  /* Sizes of each system prompt and document: fixed per item. */
  double now = 0;
  for (;;) {
    now += rexp(&r, 1.0 / s->rate);
    if (grow((void **)&sess, &scap, nsess + 1, sizeof *sess) < 0) goto out;
    syn_sess *ss = &sess[nsess];
    ss->chain = NULL;
    ss->n = 0;
    size_t ccap = 0;
    uint32_t sp = zipf_draw(&zs, &r);
    int has_doc = s->rag_share > 0 && runit(&r) < s->rag_share;
    uint32_t doc = has_doc ? zipf_draw(&zd, &r) : 0;
    rng rs = {mix64(s->seed ^ (UINT64_C(0x5157) << 32) ^ sp)};
    rng rd = {mix64(s->seed ^ (UINT64_C(0xd0c) << 32) ^ doc)};
    uint32_t nsys = rspread(&rs, s->system_blocks);
    uint32_t ndoc = has_doc ? rspread(&rd, s->doc_blocks) : 0;
    /* geometric number of turns with mean s->turns */
    uint32_t nt = 1;
    while (runit(&r) > 1.0 / s->turns && nt < 1000) nt++;
    uint64_t prev = mix64(s->seed ^ UINT64_C(0xc4a1));
    /* content ids: kind, item, turn, block */
#define ADD_BLOCK(kind, a, b, j)                                               \
  do {                                                                         \
    if (grow((void **)&ss->chain, &ccap, ss->n + 1, sizeof *ss->chain) < 0)   \
      goto out_sess;                                                           \
    uint64_t cid = mix64(mix64(mix64((uint64_t)(kind) << 56 ^ (a)) ^ (b)) ^ \
                         (j));                                                 \
    prev = mix64(prev ^ cid) >> 1; /* top bit clear: not a fresh id */         \
    ss->chain[ss->n++] = prev;                                                 \
  } while (0)
    for (uint32_t j = 0; j < nsys; j++) ADD_BLOCK(1, sp, 0, j);
    for (uint32_t j = 0; j < ndoc; j++) ADD_BLOCK(2, doc, 0, j);
    uint32_t nprefix = nsys + ndoc;
    double tt = now;
    for (uint32_t k = 0; k < nt; k++) {
      uint32_t nu = rspread(&r, s->user_blocks);
      uint32_t no = rspread(&r, s->output_blocks);
      for (uint32_t j = 0; j < nu; j++) ADD_BLOCK(3, nsess, k, j);
      uint32_t in_end = ss->n;
      for (uint32_t j = 0; j < no; j++) ADD_BLOCK(4, nsess, k, j);
      if (grow((void **)&turns, &tcap, nturns + 1, sizeof *turns) < 0)
        goto out_sess;
      turns[nturns++] = (syn_turn){tt, (uint32_t)nsess, in_end, ss->n, nprefix};
      tt += rexp(&r, s->think_s);
    }
#undef ADD_BLOCK
    nsess++;
    /* Done when the turns up to `now` number `requests`: every later session
     * arrives after now. */
    if (nturns >= s->requests && (nsess % 16) == 0) {
      size_t before = 0;
      for (size_t i = 0; i < nturns; i++) before += turns[i].t <= now;
      if (before >= s->requests) break;
    }
    continue;
  out_sess:
    free(ss->chain);
    goto out;
  }
  qsort(turns, nturns, sizeof *turns, turn_cmp);
  for (size_t i = 0; i < s->requests && i < nturns; i++) {
    const syn_turn *tu = &turns[i];
    const syn_sess *ss = &sess[tu->sess];
    uint32_t nin = tu->in_end, nout = tu->out_end - tu->in_end;
    if (grow((void **)&tmp, &tmpcap, (size_t)nin + nout, sizeof *tmp) < 0)
      goto out;
    memcpy(tmp, ss->chain, ((size_t)nin + nout) * sizeof *tmp);
    if (sim_trace_add(t, (uint64_t)(tu->t * 1e6), nin * s->tpb,
                      nout * s->tpb, tmp, nin, nout, tu->nprefix) < 0)
      goto out;
  }
  rc = 0;
out:
  if (rc < 0) snprintf(err, errcap, "synthetic workload: out of memory");
  for (size_t i = 0; i < nsess; i++) free(sess[i].chain);
  free(sess);
  free(turns);
  free(tmp);
  free(zs.cdf);
  free(zd.cdf);
  return rc;
}
