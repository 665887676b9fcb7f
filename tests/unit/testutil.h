/* testutil.h - helpers shared by the cmocka unit tests (tests/unit/test_*.c).
 *
 * Every .c file under tests/unit not named test_* is built into a helper
 * library linked into every test, so these are ordinary external functions.
 * The assertion helpers use cmocka and fail the running test on error. */
#ifndef CASCADE_TESTUTIL_H
#define CASCADE_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

#include "cascade.h"

/* The DRAM tier's counters in a struct cascade_stats. */
#define DRAM(s) ((s).tier[CASCADE_TIER_DRAM])

/* One step of the splitmix64 generator: advances *s, returns the next value. */
uint64_t tu_splitmix(uint64_t *s);

/* Deterministic pseudo-random bytes (splitmix64-based); different seeds give
 * different bytes and buf[0..n) depends only on (n, seed).  Golden data in the
 * tests depends on this exact pattern: do not change it. */
void tu_fill(void *buf, size_t n, uint64_t seed);

/* FNV-1a hash of a NUL-terminated key, used as a per-key tu_fill() seed. */
uint64_t tu_seed_of(const char *key);

/* CLOCK_MONOTONIC in milliseconds. */
uint64_t tu_now_ms(void);

/* Open a store configured with NULL-terminated name/value string pairs,
 * e.g. tu_open_with("dram.capacity", "64k", NULL).  Asserts that every
 * setting and the open succeed. */
cascade *tu_open_with(const char *name, ...);

/* cascade_stats() of c, asserting success (poisoned with 0xEE beforehand). */
struct cascade_stats tu_stats_of(cascade *c);

/* cascade_put() with a NUL-terminated key; returns its result. */
int tu_put_s(cascade *c, const char *ns, const char *key, const void *v,
             size_t vlen, const cascade_put_opts *o);

/* Assert (ns,key) holds exactly v[0..vlen): get succeeds, returns vlen bytes
 * equal to v. */
void tu_check_value(cascade *c, const char *ns, const char *key, const void *v,
                    size_t vlen);

/* Assert (ns,key) is absent: get returns -ENOENT and exists returns 0. */
void tu_check_absent(cascade *c, const char *ns, const char *key);

#endif /* CASCADE_TESTUTIL_H */
