/* testutil.c - helpers shared by the unit tests; see testutil.h. */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "testutil.h"

uint64_t tu_splitmix(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

void tu_fill(void *buf, size_t n, uint64_t seed) {
  uint8_t *p = buf;
  uint64_t s = seed * 0x100000001b3ull + 1;
  for (size_t i = 0; i < n; i++) {
    if (i % 8 == 0)
      s ^= tu_splitmix(&s);
    p[i] = (uint8_t)(s >> (8 * (i % 8)));
  }
}

uint64_t tu_seed_of(const char *key) {
  uint64_t h = 1469598103934665603ull;
  for (const char *p = key; *p; p++)
    h = (h ^ (uint8_t)*p) * 1099511628211ull;
  return h;
}

uint64_t tu_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

cascade *tu_open_with(const char *name, ...) {
  cascade_config *cfg = NULL;
  assert_int_equal(cascade_config_new(&cfg), 0);
  assert_non_null(cfg);
  va_list ap;
  va_start(ap, name);
  for (const char *n = name; n; n = va_arg(ap, const char *)) {
    const char *v = va_arg(ap, const char *);
    assert_int_equal(cascade_config_set(cfg, n, v), 0);
  }
  va_end(ap);
  cascade *c = NULL;
  assert_int_equal(cascade_open(cfg, &c), 0);
  assert_non_null(c);
  cascade_config_free(cfg);
  return c;
}

struct cascade_stats tu_stats_of(cascade *c) {
  struct cascade_stats s;
  memset(&s, 0xEE, sizeof s);
  assert_int_equal(cascade_stats(c, &s), 0);
  return s;
}

int tu_put_s(cascade *c, const char *ns, const char *key, const void *v,
             size_t vlen, const cascade_put_opts *o) {
  return cascade_put(c, ns, key, strlen(key), v, vlen, o);
}

void tu_check_value(cascade *c, const char *ns, const char *key, const void *v,
                    size_t vlen) {
  uint8_t *buf = malloc(vlen + 16);
  assert_non_null(buf);
  size_t got = (size_t)-1;
  int rc = cascade_get(c, ns, key, strlen(key), buf, vlen + 16, &got);
  if (rc != 0) {
    free(buf);
    fail_msg("get(%s, %s) = %d", ns ? ns : "(null)", key, rc);
  }
  assert_int_equal(got, vlen);
  if (vlen)
    assert_memory_equal(buf, v, vlen);
  free(buf);
}

void tu_check_absent(cascade *c, const char *ns, const char *key) {
  uint8_t buf[8];
  size_t got = 0;
  assert_int_equal(cascade_get(c, ns, key, strlen(key), buf, sizeof buf, &got),
                   -ENOENT);
  assert_int_equal(cascade_exists(c, ns, key, strlen(key)), 0);
}
