/*
 * engine.c - replaying a trace through a real store (public API only):
 * for each request, cascade_match_prefix over its input keys, read the
 * hit blocks with cascade_get_batch (checking their bytes), then store the
 * rest with cascade_put_batch, each block with its predecessor as parent
 * (see the request model in sim.h).
 *
 * Keys are the raw block id, 8 bytes little-endian.  A block's value is
 * block_bytes bytes, word w = mix(raw id, w): equal ids have equal bytes
 * (so deduplication sees what a real inference engine would give it) and a
 * read can be checked without keeping a copy.  Reads and puts go in
 * batches of REP_PUT_CHUNK blocks through two buffers of that many blocks,
 * allocated once.  Per-tier hit counts come from cascade_key_info just
 * before the read (the tier that serves it); evictions, promotions,
 * demotions and dedup savings from cascade_stats before and after.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cascade.h"
#include "sim.h"

static uint64_t mix64(uint64_t z) {
  z += UINT64_C(0x9e3779b97f4a7c15);
  z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
  z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
  return z ^ (z >> 31);
}

static uint64_t word_of(uint64_t raw, uint64_t w) {
  return mix64(raw * UINT64_C(0xd1342543de82ef95) + w);
}

void rep_block_fill(void *buf, size_t n, uint64_t raw) {
  uint8_t *p = buf;
  size_t w = 0;
  for (; (w + 1) * 8 <= n; w++) {
    uint64_t v = word_of(raw, w);
    memcpy(p + w * 8, &v, 8);
  }
  if (w * 8 < n) {
    uint64_t v = word_of(raw, w);
    memcpy(p + w * 8, &v, n - w * 8);
  }
}

/* First and last whole word as rep_block_fill wrote them. */
static int block_ok(const void *buf, size_t n, uint64_t raw) {
  uint64_t v;
  if (n < 8) {
    uint8_t want[8];
    rep_block_fill(want, n, raw);
    return memcmp(want, buf, n) == 0;
  }
  memcpy(&v, buf, 8);
  if (v != word_of(raw, 0)) return 0;
  size_t lw = n / 8 - 1;
  memcpy(&v, (const uint8_t *)buf + lw * 8, 8);
  return v == word_of(raw, lw);
}

static double mono_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void sleep_until(double when) {
  double now = mono_s();
  if (when <= now) return;
  double d = when - now;
  struct timespec ts = {(time_t)d, (long)((d - (double)(time_t)d) * 1e9)};
  nanosleep(&ts, NULL);
}

int rep_engine_run(cascade *c, const sim_trace *t, const rep_engine_opts *o,
                   rep_result *res, rep_progress_fn progress, void *arg) {
  const char *ns = o->ns ? o->ns : "replay";
  const uint64_t B = o->block_bytes;
  size_t nreq = t->nreq, maxn = 1;
  struct cascade_stats st0, st1;
  int rc = 0;

  memset(res, 0, sizeof *res);
  if (!c || !B) return -EINVAL;
  if (o->limit && o->limit < nreq) nreq = o->limit;
  for (size_t r = 0; r < nreq; r++) {
    size_t n = t->req[r].nin + (size_t)t->req[r].nout;
    if (n > maxn) maxn = n;
  }
  uint8_t *kb = malloc(maxn * 8);
  cascade_key *keys = malloc(maxn * sizeof *keys);
  uint8_t *buf = malloc(REP_PUT_CHUNK * B);
  cascade_get_item *gi = malloc(REP_PUT_CHUNK * sizeof *gi);
  cascade_put_item *pi = malloc(REP_PUT_CHUNK * sizeof *pi);
  cascade_put_opts *po = malloc(REP_PUT_CHUNK * sizeof *po);
  int *tier = malloc(REP_PUT_CHUNK * sizeof *tier);
  if (!kb || !keys || !buf || !gi || !pi || !po || !tier) {
    rc = -ENOMEM;
    goto out;
  }
  if ((rc = cascade_stats(c, &st0)) < 0) goto out;
  double t0 = mono_s();
  for (size_t r = 0; r < nreq; r++) {
    const sim_req *q = &t->req[r];
    const uint32_t *ids = t->blk + q->off;
    uint32_t n = q->nin + (o->with_output ? q->nout : 0);

    if (o->speed > 0) sleep_until(t0 + (double)q->t_us / 1e6 / o->speed);
    for (uint32_t i = 0; i < q->nin + q->nout; i++) {
      uint64_t raw = t->raw[ids[i]];
      for (int b = 0; b < 8; b++) kb[i * 8 + b] = (uint8_t)(raw >> (8 * b));
      keys[i] = (cascade_key){kb + i * 8, 8};
    }
    int m = cascade_match_prefix(c, ns, keys, q->nin);
    if (m < 0) {
      rc = m;
      goto out;
    }
    /* Read the hits; the leading blocks read correctly count. */
    uint32_t h = 0;
    for (uint32_t start = 0; start < (uint32_t)m && h == start;
         start += REP_PUT_CHUNK) {
      uint32_t cnt = (uint32_t)m - start;
      if (cnt > REP_PUT_CHUNK) cnt = REP_PUT_CHUNK;
      for (uint32_t i = 0; i < cnt; i++) {
        struct cascade_key_info info;
        tier[i] = cascade_key_info(c, ns, keys[start + i].key, 8, &info) == 0
                      ? info.tier
                      : -1;
        gi[i] = (cascade_get_item){keys[start + i].key, 8, buf + i * B, B, 0,
                                   0};
      }
      double tg = mono_s();
      int g = cascade_get_batch(c, ns, gi, cnt);
      res->read_seconds += mono_s() - tg;
      if (g < 0) {
        rc = g;
        goto out;
      }
      for (uint32_t i = 0; i < cnt; i++) {
        /* A block matched but gone by the time it is read is a miss, not
         * an error: reading the earlier blocks of this request may have
         * promoted them, and the room that took may have evicted it (an
         * inference engine would recompute from there). */
        if (gi[i].rc == -ENOENT) {
          res->lost++;
          break;
        }
        int ok = gi[i].rc == 0 && gi[i].vlen == B &&
                 block_ok(buf + i * B, B, t->raw[ids[start + i]]);
        if (!ok) {
          res->read_errors++;
          break;
        }
        if (h != start + i) break;
        h++;
        if (tier[i] >= 0 && tier[i] < 4) {
          res->tier_hits[tier[i]]++;
          res->tier_bytes[tier[i]] += B;
        }
      }
    }
    rep_count_request(res, t, q, h);
    /* Store the rest, chained. */
    for (uint32_t start = h; start < n; start += REP_PUT_CHUNK) {
      uint32_t cnt = n - start > REP_PUT_CHUNK ? REP_PUT_CHUNK : n - start;
      for (uint32_t i = 0; i < cnt; i++) {
        uint32_t j = start + i;
        rep_block_fill(buf + i * B, B, t->raw[ids[j]]);
        memset(&po[i], 0, sizeof po[i]);
        if (j > 0) {
          po[i].parent = keys[j - 1].key;
          po[i].parent_len = 8;
        }
        if (o->prefix_flag && j < q->nprefix) po[i].flags = CASCADE_PUT_PREFIX;
        pi[i] = (cascade_put_item){keys[j].key, 8, buf + i * B, B, &po[i], 0};
      }
      double tp = mono_s();
      int p = cascade_put_batch(c, ns, pi, cnt);
      res->put_seconds += mono_s() - tp;
      if (p < 0) {
        rc = p;
        goto out;
      }
      for (uint32_t i = 0; i < cnt; i++) {
        if (pi[i].rc == 0) {
          res->puts++;
          res->bytes_put += B;
        } else {
          res->rejected++;
        }
      }
    }
    if (progress && (r % 64 == 0 || r + 1 == nreq)) progress(arg, r + 1, nreq);
  }
  res->seconds = mono_s() - t0;
  if ((rc = cascade_stats(c, &st1)) < 0) goto out;
  /* The DRAM tier's count is every block dropped from the store (the disk
   * tier's evictions are a subset of it); demoted blocks are not in it. */
  res->evictions = st1.tier[CASCADE_TIER_DRAM].evictions -
                   st0.tier[CASCADE_TIER_DRAM].evictions;
  res->promotions = st1.tier[CASCADE_TIER_DRAM].promotions -
                    st0.tier[CASCADE_TIER_DRAM].promotions;
  res->demotions = st1.tier[CASCADE_TIER_DRAM].demotions -
                   st0.tier[CASCADE_TIER_DRAM].demotions;
  res->dedup_hits = st1.dedup_hits - st0.dedup_hits;
  res->dedup_bytes_saved = st1.dedup_bytes_saved;
  res->stored = res->puts - res->dedup_hits;
out:
  free(kb);
  free(keys);
  free(buf);
  free(gi);
  free(pi);
  free(po);
  free(tier);
  return rc;
}
