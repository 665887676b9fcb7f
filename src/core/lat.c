/*
 * lat.c - latency histograms for get/put percentiles.
 *
 * Log-linear buckets: a value v (ns) falls in bucket (e << SUB) | m, where e
 * is the position of its highest set bit and m the next LAT_SUB_BITS bits,
 * so every bucket spans at most 1/16 of its value (<= 6.25 % error).  Values
 * below 2^SUB map exactly.  Each recording is one relaxed atomic add on one
 * of LAT_STRIPES copies chosen per thread, so threads rarely share a line.
 */
#include <string.h>

#include "core/internal.h"

static unsigned bucket_of(uint64_t v) {
  if (v < (1u << LAT_SUB_BITS)) return (unsigned)v;
  unsigned e = 63u - (unsigned)__builtin_clzll(v); /* >= LAT_SUB_BITS */
  unsigned m = (unsigned)(v >> (e - LAT_SUB_BITS)) & ((1u << LAT_SUB_BITS) - 1);
  return ((e - LAT_SUB_BITS + 1) << LAT_SUB_BITS) | m;
}

/* Upper bound of a bucket (the value reported for a percentile in it). */
static uint64_t bucket_high(unsigned b) {
  if (b < (1u << LAT_SUB_BITS)) return b;
  unsigned e = (b >> LAT_SUB_BITS) + LAT_SUB_BITS - 1;
  uint64_t m = b & ((1u << LAT_SUB_BITS) - 1);
  uint64_t lo = (UINT64_C(1) << e) | (m << (e - LAT_SUB_BITS));
  return lo + (UINT64_C(1) << (e - LAT_SUB_BITS)) - 1;
}

static _Atomic unsigned next_stripe;
static _Thread_local unsigned my_stripe = ~0u;

void lat_record(lat_hist *h, uint64_t ns) {
  if (my_stripe == ~0u)
    my_stripe = atomic_fetch_add_explicit(&next_stripe, 1,
                                          memory_order_relaxed) %
                LAT_STRIPES;
  atomic_fetch_add_explicit(&h->b[my_stripe][bucket_of(ns)], 1,
                            memory_order_relaxed);
}

void lat_summary(const lat_hist *h, cascade_latency *out) {
  uint64_t tot[LAT_BUCKETS];
  uint64_t n = 0;
  for (unsigned b = 0; b < LAT_BUCKETS; b++) {
    uint64_t s = 0;
    for (unsigned st = 0; st < LAT_STRIPES; st++)
      s += atomic_load_explicit(&h->b[st][b], memory_order_relaxed);
    tot[b] = s;
    n += s;
  }
  memset(out, 0, sizeof *out);
  out->count = n;
  if (!n) return;
  const double q[4] = {0.50, 0.90, 0.99, 0.999};
  uint64_t *dst[4] = {&out->p50, &out->p90, &out->p99, &out->p999};
  uint64_t seen = 0;
  int qi = 0;
  for (unsigned b = 0; b < LAT_BUCKETS; b++) {
    if (!tot[b]) continue;
    seen += tot[b];
    while (qi < 4 && (double)seen >= q[qi] * (double)n)
      *dst[qi++] = bucket_high(b);
    out->max = bucket_high(b);
  }
}
