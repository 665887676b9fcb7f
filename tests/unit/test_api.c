/*
 * test_api.c - the public API contract of include/cascade.h: configuration,
 * error strings, life cycle, put/get/delete/exists/key_info, argument
 * validation, NX/XX/KEEPTTL, size limits, zero-copy views, prefix matching,
 * batches, statistics and the shared-memory arena.
 *
 * Uses only the public header.  Every test opens and closes its own store
 * with a small arena so the binary stays cheap under ASan/TSan.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cascade.h"
#include "testutil.h"

#define KiB ((size_t)1024)
#define MiB ((size_t)1024 * 1024)
#define GiB ((size_t)1024 * 1024 * 1024)

/* ---- helpers ----------------------------------------------------------- */

static void *xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  assert_non_null(p);
  return p;
}

static void *make_value(size_t n, uint64_t seed) {
  void *p = xmalloc(n);
  tu_fill(p, n, seed);
  return p;
}

static void cfg_get(const cascade_config *cfg, const char *name, char *buf,
                    size_t cap) {
  assert_int_equal(cascade_config_get(cfg, name, buf, cap), 0);
  assert_non_null(memchr(buf, '\0', cap));
}

/* Canonical form of `value` for `name`, via a fresh configuration. */
static void canonical(const char *name, const char *value, char *buf,
                      size_t cap) {
  cascade_config *cfg = NULL;
  assert_int_equal(cascade_config_new(&cfg), 0);
  assert_int_equal(cascade_config_set(cfg, name, value), 0);
  cfg_get(cfg, name, buf, cap);
  cascade_config_free(cfg);
}

/*
 * Parse a size string in the documented syntax (digits, optional
 * k/m/g/t with optional "b"/"ib", case-insensitive).  Returns 0 and *out or
 * -1 if the string is not a size.  Used to check that the canonical form
 * printed by cascade_config_get denotes the expected number of bytes.
 */
static int parse_size(const char *s, uint64_t *out) {
  const char *p = s;
  uint64_t v = 0;
  if (!isdigit((unsigned char)*p))
    return -1;
  while (isdigit((unsigned char)*p)) {
    v = v * 10 + (uint64_t)(*p - '0');
    p++;
  }
  int shift = 0;
  switch (tolower((unsigned char)*p)) {
  case 'k':
    shift = 10;
    break;
  case 'm':
    shift = 20;
    break;
  case 'g':
    shift = 30;
    break;
  case 't':
    shift = 40;
    break;
  case '\0':
    break;
  default:
    return -1;
  }
  if (shift) {
    p++;
    if (tolower((unsigned char)*p) == 'i') {
      p++;
      if (tolower((unsigned char)*p) != 'b')
        return -1;
      p++;
    } else if (tolower((unsigned char)*p) == 'b') {
      p++;
    }
  }
  if (*p)
    return -1;
  *out = v << shift;
  return 0;
}

static const char *const documented_names[] = {
    "dram.capacity", "dram.hugepages", "dram.prefault",
    "dram.backing",  "max_value",      "dedup",
    "policy",        "index.shards",   "stats.latency",
};
#define NDOC (sizeof documented_names / sizeof documented_names[0])

/* ---- version / strerror --------------------------------------------------- */

static void test_version(void **state) {
  (void)state;
  char want[32];
  snprintf(want, sizeof want, "%d.%d.%d", CASCADE_VERSION_MAJOR,
           CASCADE_VERSION_MINOR, CASCADE_VERSION_PATCH);
  assert_non_null(cascade_version());
  assert_string_equal(cascade_version(), want);
}

static void test_strerror(void **state) {
  (void)state;
  const int errnos[] = {ENOENT, ENOSPC, EINVAL, EFBIG, EEXIST, ENOBUFS, ENOMEM};
  for (size_t i = 0; i < sizeof errnos / sizeof errnos[0]; i++) {
    const char *neg = cascade_strerror(-errnos[i]);
    const char *pos = cascade_strerror(errnos[i]);
    assert_non_null(neg);
    assert_non_null(pos);
    assert_true(strlen(neg) > 0);
    /* "the sign is ignored for errno values" */
    assert_string_equal(neg, pos);
    /* distinct errnos have distinct texts */
    for (size_t j = 0; j < i; j++)
      assert_string_not_equal(neg, cascade_strerror(-errnos[j]));
  }
  const char *e1 = cascade_strerror(CASCADE_EUNKNOWN);
  const char *e2 = cascade_strerror(CASCADE_ECORRUPT);
  const char *e3 = cascade_strerror(CASCADE_ECLOSED);
  assert_non_null(e1);
  assert_non_null(e2);
  assert_non_null(e3);
  assert_true(strlen(e1) > 0 && strlen(e2) > 0 && strlen(e3) > 0);
  assert_string_not_equal(e1, e2);
  assert_string_not_equal(e1, e3);
  assert_string_not_equal(e2, e3);
  /* Cascade codes are not confused with plain errno texts. */
  assert_string_not_equal(e1, cascade_strerror(-EINVAL));
  assert_string_not_equal(e2, cascade_strerror(-EINVAL));
  /* range constants as documented */
  assert_int_equal(CASCADE_ERR_FIRST, CASCADE_EUNKNOWN);
  assert_int_equal(CASCADE_ERR_LAST, CASCADE_ECLOSED);
  /* never NULL, even for 0 and for codes nobody defined */
  assert_non_null(cascade_strerror(0));
  assert_non_null(cascade_strerror(-123456));
  assert_non_null(cascade_strerror(123456));
  assert_non_null(cascade_strerror(CASCADE_ERR_LAST - 1));
}

/* Any int is accepted, INT_MIN included (no undefined behaviour when the
 * sign is dropped).  Last in the list: UBSan halts the binary on failure. */
static void test_strerror_int_min(void **state) {
  (void)state;
  assert_non_null(cascade_strerror(-2147483647 - 1));
  assert_non_null(cascade_strerror(2147483647));
}

/* ---- configuration ------------------------------------------------------- */

static void test_config_free_null(void **state) {
  (void)state;
  cascade_config_free(NULL); /* documented: NULL accepted */
  cascade_close(NULL);       /* documented: NULL accepted */
}

static void test_config_names(void **state) {
  (void)state;
  const char *const *names = cascade_config_names();
  assert_non_null(names);
  size_t n = 0;
  while (names[n])
    n++;
  assert_true(n >= NDOC);
  for (size_t d = 0; d < NDOC; d++) {
    size_t found = 0;
    for (size_t i = 0; i < n; i++)
      if (strcmp(names[i], documented_names[d]) == 0)
        found++;
    if (found != 1)
      fail_msg("setting %s listed %zu times", documented_names[d], found);
  }
  /* static: a second call gives the same array */
  assert_ptr_equal(cascade_config_names(), names);
}

static void test_config_names_roundtrip(void **state) {
  (void)state;
  const char *const *names = cascade_config_names();
  cascade_config *cfg = NULL;
  assert_int_equal(cascade_config_new(&cfg), 0);
  for (size_t i = 0; names[i]; i++) {
    char a[256], b[256];
    cfg_get(cfg, names[i], a, sizeof a);
    int rc = cascade_config_set(cfg, names[i], a);
    if (rc != 0)
      fail_msg("set(%s, \"%s\") = %d", names[i], a, rc);
    cfg_get(cfg, names[i], b, sizeof b);
    if (strcmp(a, b) != 0)
      fail_msg("%s: \"%s\" -> \"%s\"", names[i], a, b);
  }
  cascade_config_free(cfg);
}

static void test_config_defaults(void **state) {
  (void)state;
  /* default of each setting, as documented, in canonical form */
  static const char *const defaults[][2] = {
      {"dram.capacity", "1g"},    {"dram.hugepages", "false"},
      {"dram.prefault", "false"}, {"dram.backing", "memfd"},
      {"max_value", "1g"},        {"dedup", "true"},
      {"policy", "semantic"},     {"index.shards", "64"},
      {"stats.latency", "true"},
  };
  cascade_config *cfg = NULL;
  assert_int_equal(cascade_config_new(&cfg), 0);
  for (size_t i = 0; i < sizeof defaults / sizeof defaults[0]; i++) {
    char got[256], want[256];
    cfg_get(cfg, defaults[i][0], got, sizeof got);
    canonical(defaults[i][0], defaults[i][1], want, sizeof want);
    if (strcmp(got, want) != 0)
      fail_msg("default of %s is \"%s\", want \"%s\"", defaults[i][0], got,
               want);
  }
  char buf[64];
  uint64_t v = 0;
  cfg_get(cfg, "dram.capacity", buf, sizeof buf);
  assert_int_equal(parse_size(buf, &v), 0);
  assert_int_equal(v, GiB);
  cfg_get(cfg, "max_value", buf, sizeof buf);
  assert_int_equal(parse_size(buf, &v), 0);
  assert_int_equal(v, GiB);
  cfg_get(cfg, "policy", buf, sizeof buf);
  assert_string_equal(buf, "semantic");
  cfg_get(cfg, "dram.backing", buf, sizeof buf);
  assert_string_equal(buf, "memfd");
  cfg_get(cfg, "index.shards", buf, sizeof buf);
  assert_string_equal(buf, "64");
  cascade_config_free(cfg);
}

static void test_config_sizes(void **state) {
  (void)state;
  static const struct {
    const char *in;
    uint64_t bytes;
  } cases[] = {
      {"1g", GiB},          {"1G", GiB},         {"1gb", GiB},
      {"1GiB", GiB},        {"1024m", GiB},      {"1073741824", GiB},
      {"512m", 512 * MiB},  {"512M", 512 * MiB}, {"512MiB", 512 * MiB},
      {"64KiB", 64 * KiB},  {"64k", 64 * KiB},   {"64kb", 64 * KiB},
      {"64kib", 64 * KiB},  {"65536", 64 * KiB}, {"4096", 4096},
      {"4k", 4096},         {"4m", 4 * MiB},     {"1t", 1ull << 40},
      {"1TiB", 1ull << 40}, {"3g", 3 * GiB},
  };
  const char *settings[] = {"dram.capacity", "max_value"};
  for (size_t s = 0; s < 2; s++) {
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
      cascade_config *cfg = NULL;
      assert_int_equal(cascade_config_new(&cfg), 0);
      int rc = cascade_config_set(cfg, settings[s], cases[i].in);
      if (rc != 0)
        fail_msg("set(%s, \"%s\") = %d", settings[s], cases[i].in, rc);
      char buf[64];
      cfg_get(cfg, settings[s], buf, sizeof buf);
      uint64_t v = 0;
      if (parse_size(buf, &v) != 0 || v != cases[i].bytes)
        fail_msg("%s \"%s\" reads back as \"%s\", want %llu bytes", settings[s],
                 cases[i].in, buf, (unsigned long long)cases[i].bytes);
      /* the canonical form is unique: equal sizes print equally */
      char plain[64], canon[64];
      snprintf(plain, sizeof plain, "%llu", (unsigned long long)cases[i].bytes);
      canonical(settings[s], plain, canon, sizeof canon);
      assert_string_equal(buf, canon);
      cascade_config_free(cfg);
    }
  }
  /* different sizes print differently */
  char a[64], b[64];
  canonical("max_value", "4096", a, sizeof a);
  canonical("max_value", "4097", b, sizeof b);
  assert_string_not_equal(a, b);
  canonical("max_value", "1g", a, sizeof a);
  canonical("max_value", "512m", b, sizeof b);
  assert_string_not_equal(a, b);
}

static void test_config_bools(void **state) {
  (void)state;
  const char *bools[] = {"dram.hugepages", "dram.prefault", "dedup",
                         "stats.latency"};
  const char *trues[] = {"true", "yes", "on", "1"};
  const char *falses[] = {"false", "no", "off", "0"};
  for (size_t b = 0; b < 4; b++) {
    char t0[64], f0[64], x[64];
    canonical(bools[b], "true", t0, sizeof t0);
    canonical(bools[b], "false", f0, sizeof f0);
    assert_string_not_equal(t0, f0);
    for (size_t i = 0; i < 4; i++) {
      canonical(bools[b], trues[i], x, sizeof x);
      if (strcmp(x, t0) != 0)
        fail_msg("%s=%s gives \"%s\" not \"%s\"", bools[b], trues[i], x, t0);
      canonical(bools[b], falses[i], x, sizeof x);
      if (strcmp(x, f0) != 0)
        fail_msg("%s=%s gives \"%s\" not \"%s\"", bools[b], falses[i], x, f0);
    }
  }
  /* enumerations */
  char x[64];
  canonical("policy", "lru", x, sizeof x);
  assert_string_equal(x, "lru");
  canonical("policy", "semantic", x, sizeof x);
  assert_string_equal(x, "semantic");
  canonical("dram.backing", "shm", x, sizeof x);
  assert_string_equal(x, "shm");
  canonical("dram.backing", "memfd", x, sizeof x);
  assert_string_equal(x, "memfd");
  canonical("index.shards", "1", x, sizeof x);
  assert_string_equal(x, "1");
  canonical("index.shards", "4096", x, sizeof x);
  assert_string_equal(x, "4096");
  canonical("index.shards", "128", x, sizeof x);
  assert_string_equal(x, "128");
}

static void test_config_bad_values(void **state) {
  (void)state;
  static const struct {
    const char *name, *good, *bad[12];
  } cases[] = {
      {"dram.capacity",
       "4m",
       {"", "abc", "-1", "12x", "1gg", "k", "g1", "1.5.3g",
        "99999999999999999999999", "17179869184g", NULL}},
      {"max_value",
       "1m",
       {"", "abc", "-5", "7q", "1mm", "m", "18446744073709551616", "16777216t",
        NULL}},
      {"dram.hugepages",
       "true",
       {"", "maybe", "2", "truee", "yess", "-1", NULL}},
      {"dram.prefault", "false", {"", "maybe", "10", "of", NULL}},
      {"dedup", "false", {"", "nah", "01x", NULL}},
      {"stats.latency", "true", {"", "enable", "t r u e", NULL}},
      {"dram.backing", "shm", {"", "tmpfs", "memfd2", "file", NULL}},
      {"policy", "lru", {"", "fifo", "lruu", "random", NULL}},
      {"index.shards",
       "16",
       {"", "0", "3", "12", "8192", "5000", "-64", "abc", "64k", NULL}},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    cascade_config *cfg = NULL;
    assert_int_equal(cascade_config_new(&cfg), 0);
    assert_int_equal(cascade_config_set(cfg, cases[i].name, cases[i].good), 0);
    char before[128], after[128];
    cfg_get(cfg, cases[i].name, before, sizeof before);
    for (size_t j = 0; cases[i].bad[j]; j++) {
      int rc = cascade_config_set(cfg, cases[i].name, cases[i].bad[j]);
      if (rc != -EINVAL)
        fail_msg("set(%s, \"%s\") = %d, want -EINVAL", cases[i].name,
                 cases[i].bad[j], rc);
      cfg_get(cfg, cases[i].name, after, sizeof after);
      if (strcmp(before, after) != 0)
        fail_msg("%s changed to \"%s\" by a rejected value \"%s\"",
                 cases[i].name, after, cases[i].bad[j]);
    }
    /* other settings unaffected too */
    char cap[64], want[64];
    cfg_get(cfg, "dram.capacity", cap, sizeof cap);
    canonical("dram.capacity",
              strcmp(cases[i].name, "dram.capacity") ? "1g" : "4m", want,
              sizeof want);
    assert_string_equal(cap, want);
    cascade_config_free(cfg);
  }
}

static void test_config_unknown(void **state) {
  (void)state;
  cascade_config *cfg = NULL;
  assert_int_equal(cascade_config_new(&cfg), 0);
  char buf[64];
  assert_int_equal(cascade_config_set(cfg, "no.such.setting", "1"),
                   CASCADE_EUNKNOWN);
  assert_int_equal(cascade_config_set(cfg, "", "1"), CASCADE_EUNKNOWN);
  assert_int_equal(cascade_config_set(cfg, "dram.capacityx", "1g"),
                   CASCADE_EUNKNOWN);
  assert_int_equal(cascade_config_set(cfg, "dram", "1g"), CASCADE_EUNKNOWN);
  assert_int_equal(cascade_config_get(cfg, "no.such.setting", buf, sizeof buf),
                   CASCADE_EUNKNOWN);
  assert_int_equal(cascade_config_get(cfg, "dram.", buf, sizeof buf),
                   CASCADE_EUNKNOWN);
  cascade_config_free(cfg);
}

static void test_config_enobufs(void **state) {
  (void)state;
  cascade_config *cfg = NULL;
  assert_int_equal(cascade_config_new(&cfg), 0);
  for (size_t i = 0; i < NDOC; i++) {
    char full[256];
    cfg_get(cfg, documented_names[i], full, sizeof full);
    size_t need = strlen(full) + 1;
    assert_true(need >= 2);
    char small[256];
    /* exactly enough room: ok */
    memset(small, 'X', sizeof small);
    assert_int_equal(cascade_config_get(cfg, documented_names[i], small, need),
                     0);
    assert_string_equal(small, full);
    /* one byte short, one byte, zero bytes: -ENOBUFS */
    assert_int_equal(
        cascade_config_get(cfg, documented_names[i], small, need - 1),
        -ENOBUFS);
    assert_int_equal(cascade_config_get(cfg, documented_names[i], small, 1),
                     -ENOBUFS);
    assert_int_equal(cascade_config_get(cfg, documented_names[i], small, 0),
                     -ENOBUFS);
  }
  cascade_config_free(cfg);
}

/* ---- open ----------------------------------------------------------------- */

static void test_open_null_cfg(void **state) {
  (void)state;
  cascade *c = NULL;
  assert_int_equal(cascade_open(NULL, &c), 0);
  assert_non_null(c);
  struct cascade_stats s = tu_stats_of(c);
  assert_int_equal(s.tier[CASCADE_TIER_DRAM].present, 1);
  assert_int_equal(s.tier[CASCADE_TIER_DRAM].capacity, GiB);
  assert_int_equal(s.tier[CASCADE_TIER_DRAM].blocks, 0);
  assert_int_equal(s.tier[CASCADE_TIER_DRAM].bytes, 0);
  assert_int_equal(s.keys, 0);
  assert_string_equal(s.policy, "semantic");
  uint8_t v[100];
  tu_fill(v, sizeof v, 1);
  assert_int_equal(tu_put_s(c, NULL, "k", v, sizeof v, NULL), 0);
  tu_check_value(c, NULL, "k", v, sizeof v);
  cascade_close(c);
}

static void test_open_cfg_copied(void **state) {
  (void)state;
  cascade_config *cfg = NULL;
  assert_int_equal(cascade_config_new(&cfg), 0);
  assert_int_equal(cascade_config_set(cfg, "dram.capacity", "4m"), 0);
  assert_int_equal(cascade_config_set(cfg, "policy", "lru"), 0);
  cascade *c = NULL;
  assert_int_equal(cascade_open(cfg, &c), 0);
  /* changing or freeing the config after open does not affect the store */
  assert_int_equal(cascade_config_set(cfg, "dram.capacity", "8m"), 0);
  cascade_config_free(cfg);
  struct cascade_stats s = tu_stats_of(c);
  assert_int_equal(s.tier[CASCADE_TIER_DRAM].capacity, 4 * MiB);
  assert_string_equal(s.policy, "lru");
  cascade_close(c);
}

static void test_open_variants(void **state) {
  (void)state;
  /* huge pages fall back to normal pages; shm backing; prefault */
  const char *sets[][2][2] = {
      {{"dram.hugepages", "true"}, {"dram.capacity", "4m"}},
      {{"dram.backing", "shm"}, {"dram.capacity", "4m"}},
      {{"dram.prefault", "true"}, {"dram.capacity", "4m"}},
      {{"index.shards", "1"}, {"dram.capacity", "4m"}},
      {{"index.shards", "4096"}, {"dram.capacity", "4m"}},
  };
  for (size_t i = 0; i < sizeof sets / sizeof sets[0]; i++) {
    cascade *c = tu_open_with(sets[i][0][0], sets[i][0][1], sets[i][1][0],
                              sets[i][1][1], NULL);
    uint8_t v[5000];
    for (int k = 0; k < 50; k++) {
      char key[16];
      snprintf(key, sizeof key, "k%d", k);
      tu_fill(v, sizeof v, (uint64_t)k + 100 * i);
      assert_int_equal(tu_put_s(c, NULL, key, v, sizeof v, NULL), 0);
    }
    for (int k = 0; k < 50; k++) {
      char key[16];
      snprintf(key, sizeof key, "k%d", k);
      tu_fill(v, sizeof v, (uint64_t)k + 100 * i);
      tu_check_value(c, NULL, key, v, sizeof v);
    }
    struct cascade_stats s = tu_stats_of(c);
    assert_int_equal(s.keys, 50);
    assert_int_equal(s.tier[CASCADE_TIER_DRAM].capacity, 4 * MiB);
    assert_true(s.dram_hugepages == 0 || s.dram_hugepages == 1);
    int fd = -1;
    size_t size = 0;
    const void *base = NULL;
    assert_int_equal(cascade_arena(c, &fd, &size, &base), 0);
    assert_true(fd >= 0);
    assert_int_equal(size, 4 * MiB);
    cascade_close(c);
  }
}

/* ---- put / get ------------------------------------------------------------ */

static void test_put_get_sizes(void **state) {
  (void)state;
  cascade *c = tu_open_with("dram.capacity", "4m", NULL);
  const size_t sizes[] = {0, 1, 63, 64, 65, 4096, MiB + 7};
  const size_t n = sizeof sizes / sizeof sizes[0];
  uint64_t total = 0;
  for (size_t i = 0; i < n; i++) {
    char key[32];
    snprintf(key, sizeof key, "size-%zu", sizes[i]);
    uint8_t *v = make_value(sizes[i], 1000 + i);
    assert_int_equal(tu_put_s(c, "t", key, v, sizes[i], NULL), 0);
    total += sizes[i];
    free(v);
  }
  for (size_t i = 0; i < n; i++) {
    char key[32];
    snprintf(key, sizeof key, "size-%zu", sizes[i]);
    uint8_t *v = make_value(sizes[i], 1000 + i);
    tu_check_value(c, "t", key, v, sizes[i]);
    /* exactly-sized buffer works too */
    uint8_t *buf = xmalloc(sizes[i]);
    size_t got = 12345;
    assert_int_equal(cascade_get(c, "t", key, strlen(key), buf, sizes[i], &got),
                     0);
    assert_int_equal(got, sizes[i]);
    if (sizes[i])
      assert_memory_equal(buf, v, sizes[i]);
    free(buf);
    free(v);
  }
  struct cascade_stats s = tu_stats_of(c);
  assert_int_equal(s.keys, n);
  assert_int_equal(s.tier[CASCADE_TIER_DRAM].bytes, total);
  cascade_close(c);
}

static void test_get_miss(void **state) {
  (void)state;
  cascade *c = tu_open_with("dram.capacity", "4m", NULL);
  tu_check_absent(c, NULL, "nothing");
  uint8_t v[10] = {1, 2, 3};
  assert_int_equal(tu_put_s(c, NULL, "abc", v, sizeof v, NULL), 0);
  tu_check_absent(c, NULL, "abd");
  tu_check_absent(c, NULL, "ab");
  tu_check_absent(c, NULL, "abcd");
  tu_check_absent(c, "other", "abc");
  cascade_close(c);
}

static void test_get_enobufs(void **state) {
  (void)state;
  cascade *c = tu_open_with("dram.capacity", "4m", NULL);
  uint8_t *v = make_value(4096, 7);
  assert_int_equal(tu_put_s(c, NULL, "k", v, 4096, NULL), 0);
  uint8_t buf[4096];
  const size_t caps[] = {0, 1, 4095};
  for (size_t i = 0; i < 3; i++) {
    memset(buf, 0xAB, sizeof buf);
    size_t got = 0;
    assert_int_equal(cascade_get(c, NULL, "k", 1, buf, caps[i], &got),
                     -ENOBUFS);
    assert_int_equal(got, 4096);
    for (size_t j = 0; j < sizeof buf; j++)
      assert_int_equal(buf[j], 0xAB);
  }
  /* and the value is still there */
  tu_check_value(c, NULL, "k", v, 4096);
  free(v);
  cascade_close(c);
}

static void test_overwrite(void **state) {
  (void)state;
  cascade *c = tu_open_with("dram.capacity", "4m", NULL);
  uint8_t *v1 = make_value(10000, 1), *v2 = make_value(300, 2);
  assert_int_equal(tu_put_s(c, NULL, "k", v1, 10000, NULL), 0);
  tu_check_value(c, NULL, "k", v1, 10000);
  assert_int_equal(tu_put_s(c, NULL, "k", v2, 300, NULL), 0);
  tu_check_value(c, NULL, "k", v2, 300);
  struct cascade_stats s = tu_stats_of(c);
  assert_int_equal(s.keys, 1);
  assert_int_equal(s.tier[CASCADE_TIER_DRAM].blocks, 1);
  assert_int_equal(s.tier[CASCADE_TIER_DRAM].bytes, 300);
  /* overwrite with the same bytes keeps one block */
  assert_int_equal(tu_put_s(c, NULL, "k", v2, 300, NULL), 0);
  s = tu_stats_of(c);
  assert_int_equal(s.keys, 1);
  assert_int_equal(s.tier[CASCADE_TIER_DRAM].blocks, 1);
  assert_int_equal(s.tier[CASCADE_TIER_DRAM].bytes, 300);
  tu_check_value(c, NULL, "k", v2, 300);
  free(v1);
  free(v2);
  cascade_close(c);
}

static void test_delete_exists(void **state) {
  (void)state;
  cascade *c = tu_open_with("dram.capacity", "4m", NULL);
  uint8_t v[200];
  tu_fill(v, sizeof v, 3);
  assert_int_equal(cascade_exists(c, NULL, "k", 1), 0);
  assert_int_equal(cascade_delete(c, NULL, "k", 1), -ENOENT);
  assert_int_equal(tu_put_s(c, NULL, "k", v, sizeof v, NULL), 0);
  assert_int_equal(tu_put_s(c, NULL, "j", v + 1, 100, NULL), 0);
  assert_int_equal(cascade_exists(c, NULL, "k", 1), 1);
  assert_int_equal(cascade_delete(c, NULL, "k", 1), 0);
  assert_int_equal(cascade_exists(c, NULL, "k", 1), 0);
  tu_check_absent(c, NULL, "k");
  assert_int_equal(cascade_delete(c, NULL, "k", 1), -ENOENT);
  tu_check_value(c, NULL, "j", v + 1, 100);
  struct cascade_stats s = tu_stats_of(c);
  assert_int_equal(s.keys, 1);
  assert_int_equal(s.deletes, 1);
  assert_int_equal(s.tier[CASCADE_TIER_DRAM].blocks, 1);
  assert_int_equal(s.tier[CASCADE_TIER_DRAM].bytes, 100);
  assert_int_equal(cascade_delete(c, NULL, "j", 1), 0);
  s = tu_stats_of(c);
  assert_int_equal(s.keys, 0);
  assert_int_equal(s.tier[CASCADE_TIER_DRAM].blocks, 0);
  assert_int_equal(s.tier[CASCADE_TIER_DRAM].bytes, 0);
  /* re-put after delete */
  assert_int_equal(tu_put_s(c, NULL, "k", v, sizeof v, NULL), 0);
  tu_check_value(c, NULL, "k", v, sizeof v);
  cascade_close(c);
}

static void test_binary_keys(void **state) {
  (void)state;
  cascade *c = tu_open_with("dram.capacity", "4m", NULL);
  const uint8_t k1[] = {'a', 0, 'b'}, k2[] = {'a', 0, 'c'}, k3[] = {'a'};
  const uint8_t k4[] = {0}, k5[] = {0, 0};
  uint8_t v[5][32];
  for (int i = 0; i < 5; i++)
    tu_fill(v[i], 32, 50 + (uint64_t)i);
  assert_int_equal(cascade_put(c, NULL, k1, 3, v[0], 32, NULL), 0);
  assert_int_equal(cascade_put(c, NULL, k2, 3, v[1], 32, NULL), 0);
  assert_int_equal(cascade_put(c, NULL, k3, 1, v[2], 32, NULL), 0);
  assert_int_equal(cascade_put(c, NULL, k4, 1, v[3], 32, NULL), 0);
  assert_int_equal(cascade_put(c, NULL, k5, 2, v[4], 32, NULL), 0);
  const struct {
    const uint8_t *k;
    size_t l;
  } keys[] = {{k1, 3}, {k2, 3}, {k3, 1}, {k4, 1}, {k5, 2}};
  for (int i = 0; i < 5; i++) {
    uint8_t buf[64];
    size_t got = 0;
    assert_int_equal(
        cascade_get(c, NULL, keys[i].k, keys[i].l, buf, sizeof buf, &got), 0);
    assert_int_equal(got, 32);
    assert_memory_equal(buf, v[i], 32);
  }
  /* longest key */
  uint8_t *big = make_value(CASCADE_MAX_KEY, 9);
  assert_int_equal(cascade_put(c, NULL, big, CASCADE_MAX_KEY, v[0], 32, NULL),
                   0);
  assert_int_equal(cascade_exists(c, NULL, big, CASCADE_MAX_KEY), 1);
  assert_int_equal(cascade_exists(c, NULL, big, CASCADE_MAX_KEY - 1), 0);
  big[CASCADE_MAX_KEY - 1] ^= 1;
  assert_int_equal(cascade_exists(c, NULL, big, CASCADE_MAX_KEY), 0);
  free(big);
  cascade_close(c);
}

static void test_key_info(void **state) {
  (void)state;
  cascade *c = tu_open_with("dram.capacity", "4m", NULL);
  uint8_t *v = make_value(777, 11);
  cascade_cid cid;
  assert_int_equal(cascade_content_id(v, 777, &cid), 0);
  assert_int_equal(tu_put_s(c, "ns", "k", v, 777, NULL), 0);
  struct cascade_key_info ki;
  memset(&ki, 0xEE, sizeof ki);
  assert_int_equal(cascade_key_info(c, "ns", "k", 1, &ki), 0);
  assert_int_equal(ki.vlen, 777);
  assert_memory_equal(ki.cid.b, cid.b, CASCADE_CID_BYTES);
  assert_int_equal(ki.ttl_ms, -1);
  assert_int_equal(ki.priority, CASCADE_PRIO_NORMAL);
  assert_int_equal(ki.flags & CASCADE_PUT_PREFIX, 0);
  assert_int_equal(ki.tier, CASCADE_TIER_DRAM);
  assert_int_equal(ki.refs, 1);
  assert_int_equal(ki.pins, 0);

  cascade_put_opts o;
  memset(&o, 0, sizeof o);
  o.flags = CASCADE_PUT_PREFIX;
  o.priority = CASCADE_PRIO_HIGH;
  o.ttl_ms = 60000;
  assert_int_equal(tu_put_s(c, "ns", "p", v, 100, &o), 0);
  memset(&ki, 0xEE, sizeof ki);
  assert_int_equal(cascade_key_info(c, "ns", "p", 1, &ki), 0);
  assert_int_equal(ki.vlen, 100);
  assert_true(ki.flags & CASCADE_PUT_PREFIX);
  assert_int_equal(ki.priority, CASCADE_PRIO_HIGH);
  assert_true(ki.ttl_ms > 50000 && ki.ttl_ms <= 60000);
  assert_int_equal(ki.refs, 1);

  o.flags = 0;
  o.priority = CASCADE_PRIO_LOW;
  o.ttl_ms = 0;
  assert_int_equal(tu_put_s(c, "ns", "l", v + 1, 100, &o), 0);
  assert_int_equal(cascade_key_info(c, "ns", "l", 1, &ki), 0);
  assert_int_equal(ki.priority, CASCADE_PRIO_LOW);

  /* pins follow views */
  cascade_view view1, view2;
  assert_int_equal(cascade_get_view(c, "ns", "k", 1, &view1), 0);
  assert_int_equal(cascade_key_info(c, "ns", "k", 1, &ki), 0);
  assert_int_equal(ki.pins, 1);
  assert_int_equal(cascade_get_view(c, "ns", "k", 1, &view2), 0);
  assert_int_equal(cascade_key_info(c, "ns", "k", 1, &ki), 0);
  assert_int_equal(ki.pins, 2);
  assert_int_equal(tu_stats_of(c).views, 2);
  cascade_view_release(c, &view1);
  cascade_view_release(c, &view2);
  assert_int_equal(cascade_key_info(c, "ns", "k", 1, &ki), 0);
  assert_int_equal(ki.pins, 0);
  assert_int_equal(tu_stats_of(c).views, 0);

  assert_int_equal(cascade_key_info(c, "ns", "missing", 7, &ki), -ENOENT);
  assert_int_equal(cascade_key_info(c, "other", "k", 1, &ki), -ENOENT);
  free(v);
  cascade_close(c);
}

static void test_invalid_args(void **state) {
  (void)state;
  cascade *c = tu_open_with("dram.capacity", "4m", NULL);
  uint8_t v[64];
  tu_fill(v, sizeof v, 5);
  uint8_t v2[64];
  tu_fill(v2, sizeof v2, 6);
  assert_int_equal(tu_put_s(c, NULL, "k", v, sizeof v, NULL), 0);

  char longns[CASCADE_MAX_NS + 2];
  memset(longns, 'n', sizeof longns);
  longns[CASCADE_MAX_NS + 1] = '\0'; /* 256 bytes: too long */
  char okns[CASCADE_MAX_NS + 1];
  memset(okns, 'n', sizeof okns);
  okns[CASCADE_MAX_NS] = '\0'; /* 255 bytes: longest allowed */
  uint8_t *bigkey = make_value(CASCADE_MAX_KEY + 1, 1);
  cascade_put_opts bad;

  /* put */
  assert_int_equal(cascade_put(c, NULL, NULL, 3, v, sizeof v, NULL), -EINVAL);
  assert_int_equal(cascade_put(c, NULL, "k", 0, v2, sizeof v2, NULL), -EINVAL);
  assert_int_equal(
      cascade_put(c, NULL, bigkey, CASCADE_MAX_KEY + 1, v, sizeof v, NULL),
      -EINVAL);
  assert_int_equal(tu_put_s(c, longns, "k", v2, sizeof v2, NULL), -EINVAL);
  assert_int_equal(tu_put_s(c, NULL, "k", NULL, 5, NULL), -EINVAL);
  memset(&bad, 0, sizeof bad);
  bad.priority = 2;
  assert_int_equal(tu_put_s(c, NULL, "k", v2, sizeof v2, &bad), -EINVAL);
  bad.priority = -2;
  assert_int_equal(tu_put_s(c, NULL, "k", v2, sizeof v2, &bad), -EINVAL);
  bad.priority = 1000;
  assert_int_equal(tu_put_s(c, NULL, "new", v2, sizeof v2, &bad), -EINVAL);

  /* nothing changed */
  tu_check_value(c, NULL, "k", v, sizeof v);
  assert_int_equal(cascade_exists(c, NULL, "new", 3), 0);
  assert_int_equal(cascade_exists(c, NULL, bigkey, CASCADE_MAX_KEY), 0);
  struct cascade_stats s = tu_stats_of(c);
  assert_int_equal(s.keys, 1);
  assert_int_equal(s.tier[CASCADE_TIER_DRAM].blocks, 1);
  assert_int_equal(s.tier[CASCADE_TIER_DRAM].bytes, sizeof v);

  /* the boundaries themselves are accepted */
  assert_int_equal(cascade_put(c, NULL, bigkey, CASCADE_MAX_KEY, v, 1, NULL),
                   0);
  assert_int_equal(tu_put_s(c, okns, "k", v2, sizeof v2, NULL), 0);
  tu_check_value(c, okns, "k", v2, sizeof v2);
  assert_int_equal(tu_put_s(c, NULL, "empty", NULL, 0, NULL), 0);
  tu_check_value(c, NULL, "empty", NULL, 0);

  /* the other calls validate key and namespace too */
  uint8_t buf[128];
  size_t got;
  struct cascade_key_info ki;
  cascade_view view;
  assert_int_equal(cascade_get(c, NULL, NULL, 1, buf, sizeof buf, &got),
                   -EINVAL);
  assert_int_equal(cascade_get(c, NULL, "k", 0, buf, sizeof buf, &got),
                   -EINVAL);
  assert_int_equal(cascade_get(c, longns, "k", 1, buf, sizeof buf, &got),
                   -EINVAL);
  assert_int_equal(
      cascade_get(c, NULL, bigkey, CASCADE_MAX_KEY + 1, buf, sizeof buf, &got),
      -EINVAL);
  assert_int_equal(cascade_get_view(c, NULL, NULL, 1, &view), -EINVAL);
  assert_int_equal(cascade_get_view(c, longns, "k", 1, &view), -EINVAL);
  assert_int_equal(cascade_get_view(c, NULL, "k", 0, &view), -EINVAL);
  assert_int_equal(cascade_exists(c, NULL, NULL, 1), -EINVAL);
  assert_int_equal(cascade_exists(c, NULL, "k", 0), -EINVAL);
  assert_int_equal(cascade_exists(c, longns, "k", 1), -EINVAL);
  assert_int_equal(cascade_delete(c, NULL, NULL, 1), -EINVAL);
  assert_int_equal(cascade_delete(c, NULL, "k", 0), -EINVAL);
  assert_int_equal(cascade_delete(c, longns, "k", 1), -EINVAL);
  assert_int_equal(cascade_key_info(c, NULL, "k", 0, &ki), -EINVAL);
  assert_int_equal(cascade_key_info(c, longns, "k", 1, &ki), -EINVAL);
  assert_int_equal(cascade_set_ttl(c, NULL, "k", 0, 10), -EINVAL);
  assert_int_equal(cascade_set_ttl(c, longns, "k", 1, 10), -EINVAL);
  assert_int_equal(cascade_set_priority(c, NULL, "k", 0, 0), -EINVAL);
  assert_int_equal(cascade_set_priority(c, NULL, "k", 1, 2), -EINVAL);
  assert_int_equal(cascade_set_priority(c, NULL, "k", 1, -2), -EINVAL);
  assert_int_equal(cascade_set_priority(c, longns, "k", 1, 0), -EINVAL);
  cascade_key ks[1] = {{"k", 1}};
  assert_int_equal(cascade_match_prefix(c, longns, ks, 1), -EINVAL);
  assert_int_equal(cascade_match_prefix(c, NULL, NULL, 1), -EINVAL);
  assert_int_equal(cascade_stats(c, NULL), -EINVAL);
  assert_int_equal(cascade_stats(NULL, &s), -EINVAL);
  int fd;
  size_t size;
  const void *base;
  assert_int_equal(cascade_arena(NULL, &fd, &size, &base), -EINVAL);

  /* still unchanged, and the key's attributes too */
  tu_check_value(c, NULL, "k", v, sizeof v);
  assert_int_equal(cascade_key_info(c, NULL, "k", 1, &ki), 0);
  assert_int_equal(ki.priority, CASCADE_PRIO_NORMAL);
  assert_int_equal(ki.ttl_ms, -1);
  s = tu_stats_of(c);
  assert_int_equal(s.keys, 4);
  free(bigkey);
  cascade_close(c);
}

static void test_invalid_opts(void **state) {
  (void)state;
  /* "-EINVAL (bad key/ns/opts) ... On error nothing is changed" */
  cascade *c = tu_open_with("dram.capacity", "4m", NULL);
  uint8_t v[64], w[64];
  tu_fill(v, sizeof v, 7);
  tu_fill(w, sizeof w, 8);
  assert_int_equal(tu_put_s(c, NULL, "k", v, sizeof v, NULL), 0);
  cascade_put_opts o;
  memset(&o, 0, sizeof o);
  o.flags = CASCADE_PUT_NX | CASCADE_PUT_XX; /* contradictory */
  assert_int_equal(tu_put_s(c, NULL, "k", w, sizeof w, &o), -EINVAL);
  assert_int_equal(tu_put_s(c, NULL, "n", w, sizeof w, &o), -EINVAL);
  memset(&o, 0, sizeof o);
  o.flags = 1u << 20; /* no such flag */
  assert_int_equal(tu_put_s(c, NULL, "k", w, sizeof w, &o), -EINVAL);
  memset(&o, 0, sizeof o);
  o.parent = "p";
  o.parent_len = 0; /* a parent key of 0 bytes is not a key */
  assert_int_equal(tu_put_s(c, NULL, "k", w, sizeof w, &o), -EINVAL);
  uint8_t *bigp = make_value(CASCADE_MAX_KEY + 1, 3);
  o.parent = bigp;
  o.parent_len = CASCADE_MAX_KEY + 1;
  assert_int_equal(tu_put_s(c, NULL, "k", w, sizeof w, &o), -EINVAL);
  free(bigp);
  tu_check_value(c, NULL, "k", v, sizeof v);
  tu_check_absent(c, NULL, "n");
  assert_int_equal(tu_stats_of(c).keys, 1);
  cascade_close(c);
}

static void test_batch_put_invalid_item(void **state) {
  (void)state;
  /* an invalid item gets rc -EINVAL "as cascade_put would return"; the
   * valid items of the batch are stored */
  cascade *c = tu_open_with("dram.capacity", "4m", NULL);
  uint8_t v[3][128];
  for (int i = 0; i < 3; i++)
    tu_fill(v[i], sizeof v[i], 300 + (uint64_t)i);
  cascade_put_opts bad;
  memset(&bad, 0, sizeof bad);
  bad.priority = 5;
  cascade_put_item it[4];
  memset(it, 0, sizeof it);
  it[0].key = "a";
  it[0].klen = 1;
  it[0].value = v[0];
  it[0].vlen = 128;
  it[1].key = "b";
  it[1].klen = 0;
  it[1].value = v[1];
  it[1].vlen = 128;
  it[2].key = "c";
  it[2].klen = 1;
  it[2].value = v[2];
  it[2].vlen = 128;
  it[2].opts = &bad;
  it[3].key = "d";
  it[3].klen = 1;
  it[3].value = v[2];
  it[3].vlen = 128;
  assert_int_equal(cascade_put_batch(c, "b", it, 4), 2);
  assert_int_equal(it[0].rc, 0);
  assert_int_equal(it[1].rc, -EINVAL);
  assert_int_equal(it[2].rc, -EINVAL);
  assert_int_equal(it[3].rc, 0);
  tu_check_value(c, "b", "a", v[0], 128);
  tu_check_absent(c, "b", "c");
  tu_check_value(c, "b", "d", v[2], 128);
  assert_int_equal(tu_stats_of(c).keys, 2);
  cascade_close(c);
}

static void test_nx_xx(void **state) {
  (void)state;
  cascade *c = tu_open_with("dram.capacity", "4m", NULL);
  uint8_t v1[100], v2[100], v3[50];
  tu_fill(v1, sizeof v1, 1);
  tu_fill(v2, sizeof v2, 2);
  tu_fill(v3, sizeof v3, 3);
  cascade_put_opts nx, xx;
  memset(&nx, 0, sizeof nx);
  memset(&xx, 0, sizeof xx);
  nx.flags = CASCADE_PUT_NX;
  xx.flags = CASCADE_PUT_XX;

  assert_int_equal(tu_put_s(c, NULL, "k", v1, sizeof v1, &nx), 0);
  tu_check_value(c, NULL, "k", v1, sizeof v1);
  assert_int_equal(tu_put_s(c, NULL, "k", v2, sizeof v2, &nx), -EEXIST);
  tu_check_value(c, NULL, "k", v1, sizeof v1);

  assert_int_equal(tu_put_s(c, NULL, "x", v2, sizeof v2, &xx), -ENOENT);
  tu_check_absent(c, NULL, "x");
  assert_int_equal(tu_put_s(c, NULL, "k", v3, sizeof v3, &xx), 0);
  tu_check_value(c, NULL, "k", v3, sizeof v3);

  /* NX is per namespace */
  assert_int_equal(tu_put_s(c, "other", "k", v2, sizeof v2, &nx), 0);
  tu_check_value(c, "other", "k", v2, sizeof v2);
  tu_check_value(c, NULL, "k", v3, sizeof v3);
  /* after delete, NX succeeds and XX fails */
  assert_int_equal(cascade_delete(c, NULL, "k", 1), 0);
  assert_int_equal(tu_put_s(c, NULL, "k", v1, sizeof v1, &xx), -ENOENT);
  tu_check_absent(c, NULL, "k");
  assert_int_equal(tu_put_s(c, NULL, "k", v1, sizeof v1, &nx), 0);
  tu_check_value(c, NULL, "k", v1, sizeof v1);

  struct cascade_stats s = tu_stats_of(c);
  assert_int_equal(s.keys, 2);
  assert_int_equal(s.tier[CASCADE_TIER_DRAM].blocks, 2);
  cascade_close(c);
}

static void test_keepttl(void **state) {
  (void)state;
  cascade *c = tu_open_with("dram.capacity", "4m", NULL);
  uint8_t v1[100], v2[100];
  tu_fill(v1, sizeof v1, 1);
  tu_fill(v2, sizeof v2, 2);
  cascade_put_opts o;
  memset(&o, 0, sizeof o);
  struct cascade_key_info ki;

  o.ttl_ms = 600000;
  assert_int_equal(tu_put_s(c, NULL, "k", v1, sizeof v1, &o), 0);
  assert_int_equal(cascade_key_info(c, NULL, "k", 1, &ki), 0);
  assert_true(ki.ttl_ms > 590000 && ki.ttl_ms <= 600000);

  /* KEEPTTL overwrite keeps the expiry */
  memset(&o, 0, sizeof o);
  o.flags = CASCADE_PUT_KEEPTTL;
  assert_int_equal(tu_put_s(c, NULL, "k", v2, sizeof v2, &o), 0);
  tu_check_value(c, NULL, "k", v2, sizeof v2);
  assert_int_equal(cascade_key_info(c, NULL, "k", 1, &ki), 0);
  assert_true(ki.ttl_ms > 590000 && ki.ttl_ms <= 600000);

  /* a plain overwrite without ttl removes the expiry */
  memset(&o, 0, sizeof o);
  assert_int_equal(tu_put_s(c, NULL, "k", v1, sizeof v1, &o), 0);
  assert_int_equal(cascade_key_info(c, NULL, "k", 1, &ki), 0);
  assert_int_equal(ki.ttl_ms, -1);
  assert_int_equal(tu_put_s(c, NULL, "k", v2, sizeof v2, NULL), 0);
  assert_int_equal(cascade_key_info(c, NULL, "k", 1, &ki), 0);
  assert_int_equal(ki.ttl_ms, -1);

  /* a plain overwrite with a ttl sets that ttl */
  o.ttl_ms = 600000;
  assert_int_equal(tu_put_s(c, NULL, "k", v1, sizeof v1, &o), 0);
  o.ttl_ms = 300000;
  assert_int_equal(tu_put_s(c, NULL, "k", v2, sizeof v2, &o), 0);
  assert_int_equal(cascade_key_info(c, NULL, "k", 1, &ki), 0);
  assert_true(ki.ttl_ms > 290000 && ki.ttl_ms <= 300000);

  /* KEEPTTL on a key without expiry keeps "no expiry" */
  assert_int_equal(tu_put_s(c, NULL, "p", v1, sizeof v1, NULL), 0);
  memset(&o, 0, sizeof o);
  o.flags = CASCADE_PUT_KEEPTTL;
  assert_int_equal(tu_put_s(c, NULL, "p", v2, sizeof v2, &o), 0);
  assert_int_equal(cascade_key_info(c, NULL, "p", 1, &ki), 0);
  assert_int_equal(ki.ttl_ms, -1);
  tu_check_value(c, NULL, "p", v2, sizeof v2);
  cascade_close(c);
}

static void test_many_keys(void **state) {
  (void)state;
  /* enough keys to make the index grow several times */
  cascade *c = tu_open_with("dram.capacity", "4m", "index.shards", "4", NULL);
  enum { N = 20000 };
  char key[32];
  uint8_t v[64], buf[64];
  for (int i = 0; i < N; i++) {
    snprintf(key, sizeof key, "many-%d", i);
    tu_fill(v, sizeof v, (uint64_t)i);
    assert_int_equal(tu_put_s(c, NULL, key, v, sizeof v, NULL), 0);
  }
  struct cascade_stats s = tu_stats_of(c);
  assert_int_equal(s.keys, N);
  assert_int_equal(s.tier[CASCADE_TIER_DRAM].blocks, N);
  assert_int_equal(s.tier[CASCADE_TIER_DRAM].evictions, 0);
  for (int i = 0; i < N; i++) {
    snprintf(key, sizeof key, "many-%d", i);
    tu_fill(v, sizeof v, (uint64_t)i);
    size_t got = 0;
    assert_int_equal(
        cascade_get(c, NULL, key, strlen(key), buf, sizeof buf, &got), 0);
    assert_int_equal(got, sizeof v);
    assert_memory_equal(buf, v, sizeof v);
  }
  for (int i = 0; i < N; i += 2) {
    snprintf(key, sizeof key, "many-%d", i);
    assert_int_equal(cascade_delete(c, NULL, key, strlen(key)), 0);
  }
  for (int i = 0; i < N; i++) {
    snprintf(key, sizeof key, "many-%d", i);
    assert_int_equal(cascade_exists(c, NULL, key, strlen(key)), i % 2);
  }
  assert_int_equal(tu_stats_of(c).keys, N / 2);
  cascade_close(c);
}

static void test_put_from_view(void **state) {
  (void)state;
  /* a view's bytes may be passed back as the value of a put (the value is
   * only borrowed for the call), even with the arena full and no dedup */
  cascade *c = tu_open_with("dram.capacity", "16k", "dedup", "false", "policy",
                            "lru", NULL);
  uint8_t v[4096];
  for (int i = 0; i < 4; i++) {
    char key[16];
    snprintf(key, sizeof key, "f%d", i);
    tu_fill(v, sizeof v, 500 + (uint64_t)i);
    assert_int_equal(tu_put_s(c, NULL, key, v, sizeof v, NULL), 0);
  }
  cascade_view view;
  assert_int_equal(cascade_get_view(c, NULL, "f0", 2, &view), 0);
  assert_int_equal(tu_put_s(c, NULL, "copy", view.data, view.len, NULL), 0);
  tu_fill(v, sizeof v, 500);
  assert_memory_equal(view.data, v, sizeof v);
  tu_check_value(c, NULL, "copy", v, sizeof v);
  tu_check_value(c, NULL, "f0", v, sizeof v);
  cascade_view_release(c, &view);
  cascade_close(c);
}

static void test_max_value(void **state) {
  (void)state;
  cascade *c = tu_open_with("dram.capacity", "4m", "max_value", "1m", NULL);
  uint8_t *v = make_value(MiB + 1, 21);
  assert_int_equal(tu_put_s(c, NULL, "big", v, MiB, NULL), 0);
  tu_check_value(c, NULL, "big", v, MiB);
  struct cascade_stats s0 = tu_stats_of(c);
  assert_int_equal(tu_put_s(c, NULL, "bigger", v, MiB + 1, NULL), -EFBIG);
  assert_int_equal(tu_put_s(c, NULL, "big", v, MiB + 1, NULL), -EFBIG);
  tu_check_absent(c, NULL, "bigger");
  tu_check_value(c, NULL, "big", v, MiB);
  struct cascade_stats s1 = tu_stats_of(c);
  assert_int_equal(s1.keys, s0.keys);
  assert_int_equal(s1.tier[CASCADE_TIER_DRAM].bytes, MiB);
  assert_int_equal(s1.tier[CASCADE_TIER_DRAM].blocks, 1);
  free(v);
  cascade_close(c);
}

static void test_value_larger_than_tier(void **state) {
  (void)state;
  cascade *c = tu_open_with("dram.capacity", "64k", NULL);
  uint8_t *v = make_value(64 * KiB + 64, 22);
  uint8_t small[100];
  tu_fill(small, sizeof small, 23);
  assert_int_equal(tu_put_s(c, NULL, "s", small, sizeof small, NULL), 0);
  assert_int_equal(tu_put_s(c, NULL, "big", v, 64 * KiB + 1, NULL), -EFBIG);
  assert_int_equal(tu_put_s(c, NULL, "big", v, 64 * KiB + 64, NULL), -EFBIG);
  assert_int_equal(tu_put_s(c, NULL, "s", v, 64 * KiB + 1, NULL), -EFBIG);
  /* nothing changed: "s" still there, nothing evicted for the failed put */
  tu_check_value(c, NULL, "s", small, sizeof small);
  tu_check_absent(c, NULL, "big");
  struct cascade_stats s = tu_stats_of(c);
  assert_int_equal(s.keys, 1);
  assert_int_equal(s.tier[CASCADE_TIER_DRAM].evictions, 0);
  /* a value exactly the size of the tier fits (evicting the rest) */
  assert_int_equal(tu_put_s(c, NULL, "full", v, 64 * KiB, NULL), 0);
  tu_check_value(c, NULL, "full", v, 64 * KiB);
  free(v);
  cascade_close(c);
}

/* ---- views ----------------------------------------------------------------- */

static void test_view_basic(void **state) {
  (void)state;
  cascade *c = tu_open_with("dram.capacity", "4m", NULL);
  uint8_t *v = make_value(5000, 31);
  assert_int_equal(tu_put_s(c, "n", "k", v, 5000, NULL), 0);
  cascade_view view;
  memset(&view, 0, sizeof view);
  assert_int_equal(cascade_get_view(c, "n", "k", 1, &view), 0);
  assert_non_null(view.data);
  assert_int_equal(view.len, 5000);
  assert_memory_equal(view.data, v, 5000);
  cascade_cid cid;
  assert_int_equal(cascade_content_id(v, 5000, &cid), 0);
  assert_memory_equal(view.cid.b, cid.b, CASCADE_CID_BYTES);
  cascade_view_release(c, &view);

  /* a zero-length value has a zero-length view */
  assert_int_equal(tu_put_s(c, "n", "z", v, 0, NULL), 0);
  assert_int_equal(cascade_get_view(c, "n", "z", 1, &view), 0);
  assert_int_equal(view.len, 0);
  cascade_view_release(c, &view);

  assert_int_equal(cascade_get_view(c, "n", "missing", 7, &view), -ENOENT);
  assert_int_equal(cascade_get_view(c, "m", "k", 1, &view), -ENOENT);
  assert_int_equal(tu_stats_of(c).views, 0);
  free(v);
  cascade_close(c);
}

static void test_view_survives_delete_overwrite(void **state) {
  (void)state;
  cascade *c = tu_open_with("dram.capacity", "4m", NULL);
  uint8_t *v1 = make_value(8192, 41), *v2 = make_value(8192, 42);
  assert_int_equal(tu_put_s(c, NULL, "d", v1, 8192, NULL), 0);
  assert_int_equal(tu_put_s(c, NULL, "o", v2, 8192, NULL), 0);
  cascade_view vd, vo;
  assert_int_equal(cascade_get_view(c, NULL, "d", 1, &vd), 0);
  assert_int_equal(cascade_get_view(c, NULL, "o", 1, &vo), 0);

  assert_int_equal(cascade_delete(c, NULL, "d", 1), 0);
  tu_check_absent(c, NULL, "d");
  /* overwrite "o" with v1's bytes and then with other bytes: the view must
   * keep showing v2 */
  assert_int_equal(tu_put_s(c, NULL, "o", v1, 8192, NULL), 0);
  tu_check_value(c, NULL, "o", v1, 8192);
  uint8_t *v3 = make_value(8192, 43);
  for (int i = 0; i < 20; i++) {
    tu_fill(v3, 8192, 1000 + (uint64_t)i);
    assert_int_equal(tu_put_s(c, NULL, "o", v3, 8192, NULL), 0);
    char key[16];
    snprintf(key, sizeof key, "fill%d", i);
    assert_int_equal(tu_put_s(c, NULL, key, v3, 8192, NULL), 0);
  }
  assert_int_equal(vd.len, 8192);
  assert_int_equal(vo.len, 8192);
  assert_memory_equal(vd.data, v1, 8192);
  assert_memory_equal(vo.data, v2, 8192);
  cascade_view_release(c, &vd);
  cascade_view_release(c, &vo);

  /* after release the orphaned blocks are gone: 20 fills + "o" */
  struct cascade_stats s = tu_stats_of(c);
  assert_int_equal(s.views, 0);
  assert_int_equal(s.keys, 21);
  assert_int_equal(s.tier[CASCADE_TIER_DRAM].blocks, 20);
  assert_int_equal(s.tier[CASCADE_TIER_DRAM].bytes, 20 * 8192);
  free(v1);
  free(v2);
  free(v3);
  cascade_close(c);
}

static void test_view_survives_eviction(void **state) {
  (void)state;
  /* 16 blocks of 4 KiB fit; write 200 more while a view is held */
  cascade *c = tu_open_with("dram.capacity", "64k", NULL);
  uint8_t *v0 = make_value(4096, 51), *v = make_value(4096, 52);
  assert_int_equal(tu_put_s(c, NULL, "pinned", v0, 4096, NULL), 0);
  cascade_view view;
  assert_int_equal(cascade_get_view(c, NULL, "pinned", 6, &view), 0);
  const void *where = view.data;
  for (int i = 0; i < 200; i++) {
    char key[16];
    snprintf(key, sizeof key, "e%d", i);
    tu_fill(v, 4096, 2000 + (uint64_t)i);
    assert_int_equal(tu_put_s(c, NULL, key, v, 4096, NULL), 0);
    if (i % 37 == 0)
      assert_memory_equal(view.data, v0, 4096);
  }
  assert_ptr_equal(view.data, where);
  assert_int_equal(view.len, 4096);
  assert_memory_equal(view.data, v0, 4096);
  /* a pinned block is never evicted, so its key still reads */
  tu_check_value(c, NULL, "pinned", v0, 4096);
  struct cascade_stats s = tu_stats_of(c);
  assert_true(s.tier[CASCADE_TIER_DRAM].evictions > 0);
  assert_int_equal(s.views, 1);
  assert_true(s.tier[CASCADE_TIER_DRAM].bytes <= 64 * KiB);
  cascade_view_release(c, &view);
  assert_int_equal(tu_stats_of(c).views, 0);
  free(v0);
  free(v);
  cascade_close(c);
}

static void test_view_release_zeroed(void **state) {
  (void)state;
  cascade *c = tu_open_with("dram.capacity", "4m", NULL);
  uint8_t v[64];
  tu_fill(v, sizeof v, 61);
  assert_int_equal(tu_put_s(c, NULL, "k", v, sizeof v, NULL), 0);
  cascade_view z;
  memset(&z, 0, sizeof z);
  cascade_view_release(c, &z); /* no-op */
  cascade_view_release(c, &z); /* still a no-op */
  struct cascade_stats s = tu_stats_of(c);
  assert_int_equal(s.views, 0);
  assert_int_equal(s.keys, 1);
  struct cascade_key_info ki;
  assert_int_equal(cascade_key_info(c, NULL, "k", 1, &ki), 0);
  assert_int_equal(ki.pins, 0);
  tu_check_value(c, NULL, "k", v, sizeof v);
  /* a real view still works and releases normally afterwards */
  cascade_view view;
  assert_int_equal(cascade_get_view(c, NULL, "k", 1, &view), 0);
  assert_memory_equal(view.data, v, sizeof v);
  cascade_view_release(c, &view);
  assert_int_equal(tu_stats_of(c).views, 0);
  cascade_close(c);
}

/* ---- match_prefix ------------------------------------------------------------ */

static void test_match_prefix(void **state) {
  (void)state;
  cascade *c = tu_open_with("dram.capacity", "4m", NULL);
  char names[6][16];
  cascade_key keys[6];
  for (int i = 0; i < 6; i++) {
    snprintf(names[i], sizeof names[i], "blk%d", i);
    keys[i].key = names[i];
    keys[i].len = strlen(names[i]);
  }
  uint8_t v[128];
  assert_int_equal(cascade_match_prefix(c, "m", keys, 6), 0);
  assert_int_equal(cascade_match_prefix(c, "m", keys, 0), 0);
  /* present: 0,1,2 and 4 (a gap at 3) */
  const int present[] = {0, 1, 2, 4};
  for (int i = 0; i < 4; i++) {
    tu_fill(v, sizeof v, 70 + (uint64_t)present[i]);
    assert_int_equal(tu_put_s(c, "m", names[present[i]], v, sizeof v, NULL), 0);
  }
  assert_int_equal(cascade_match_prefix(c, "m", keys, 6), 3);
  assert_int_equal(cascade_match_prefix(c, "m", keys, 3), 3);
  assert_int_equal(cascade_match_prefix(c, "m", keys, 2), 2);
  assert_int_equal(cascade_match_prefix(c, "m", keys, 0), 0);
  assert_int_equal(cascade_match_prefix(c, "m", keys + 4, 2), 1);
  assert_int_equal(cascade_match_prefix(c, "m", keys + 3, 3), 0);
  /* other namespace sees nothing */
  assert_int_equal(cascade_match_prefix(c, "other", keys, 6), 0);
  assert_int_equal(cascade_match_prefix(c, NULL, keys, 6), 0);
  /* fill the gap: full match */
  tu_fill(v, sizeof v, 73);
  assert_int_equal(tu_put_s(c, "m", names[3], v, sizeof v, NULL), 0);
  tu_fill(v, sizeof v, 75);
  assert_int_equal(tu_put_s(c, "m", names[5], v, sizeof v, NULL), 0);
  assert_int_equal(cascade_match_prefix(c, "m", keys, 6), 6);
  /* delete the first: nothing matches */
  assert_int_equal(cascade_delete(c, "m", names[0], strlen(names[0])), 0);
  assert_int_equal(cascade_match_prefix(c, "m", keys, 6), 0);
  assert_int_equal(cascade_match_prefix(c, "m", keys + 1, 5), 5);
  /* an invalid key in the list */
  cascade_key badk[2] = {{names[1], strlen(names[1])}, {names[2], 0}};
  assert_int_equal(cascade_match_prefix(c, "m", badk, 2), -EINVAL);
  cascade_close(c);
}

/* ---- batches -------------------------------------------------------------- */

static void test_batch_put(void **state) {
  (void)state;
  cascade *c = tu_open_with("dram.capacity", "4m", NULL);
  uint8_t v[5][300], old[300];
  for (int i = 0; i < 5; i++)
    tu_fill(v[i], sizeof v[i], 80 + (uint64_t)i);
  tu_fill(old, sizeof old, 89);
  assert_int_equal(tu_put_s(c, "b", "k2", old, sizeof old, NULL), 0);
  cascade_put_opts nx, xx, pri;
  memset(&nx, 0, sizeof nx);
  memset(&xx, 0, sizeof xx);
  memset(&pri, 0, sizeof pri);
  nx.flags = CASCADE_PUT_NX;
  xx.flags = CASCADE_PUT_XX;
  pri.priority = CASCADE_PRIO_HIGH;
  cascade_put_item it[5];
  memset(it, 0, sizeof it);
  const char *keys[5] = {"k0", "k1", "k2", "k3", "k4"};
  const cascade_put_opts *opts[5] = {NULL, &pri, &nx, &xx, NULL};
  for (int i = 0; i < 5; i++) {
    it[i].key = keys[i];
    it[i].klen = 2;
    it[i].value = v[i];
    it[i].vlen = sizeof v[i] - (size_t)i;
    it[i].opts = opts[i];
    it[i].rc = 12345;
  }
  assert_int_equal(cascade_put_batch(c, "b", it, 5), 3);
  assert_int_equal(it[0].rc, 0);
  assert_int_equal(it[1].rc, 0);
  assert_int_equal(it[2].rc, -EEXIST);
  assert_int_equal(it[3].rc, -ENOENT);
  assert_int_equal(it[4].rc, 0);
  tu_check_value(c, "b", "k0", v[0], 300);
  tu_check_value(c, "b", "k1", v[1], 299);
  tu_check_value(c, "b", "k2", old, 300);
  tu_check_absent(c, "b", "k3");
  tu_check_value(c, "b", "k4", v[4], 296);
  struct cascade_key_info ki;
  assert_int_equal(cascade_key_info(c, "b", "k1", 2, &ki), 0);
  assert_int_equal(ki.priority, CASCADE_PRIO_HIGH);
  assert_int_equal(tu_stats_of(c).keys, 4);

  /* n == 0 stores nothing */
  assert_int_equal(cascade_put_batch(c, "b", it, 0), 0);
  /* batch-level errors: nothing done */
  char longns[CASCADE_MAX_NS + 2];
  memset(longns, 'x', sizeof longns);
  longns[CASCADE_MAX_NS + 1] = 0;
  it[0].key = "fresh";
  it[0].klen = 5;
  assert_int_equal(cascade_put_batch(c, longns, it, 1), -EINVAL);
  assert_int_equal(cascade_put_batch(c, "b", NULL, 3), -EINVAL);
  assert_int_equal(cascade_exists(c, "b", "fresh", 5), 0);
  assert_int_equal(tu_stats_of(c).keys, 4);
  cascade_close(c);
}

static void test_batch_get(void **state) {
  (void)state;
  cascade *c = tu_open_with("dram.capacity", "4m", NULL);
  uint8_t v0[1000], v1[2000];
  tu_fill(v0, sizeof v0, 90);
  tu_fill(v1, sizeof v1, 91);
  assert_int_equal(tu_put_s(c, "b", "k0", v0, sizeof v0, NULL), 0);
  assert_int_equal(tu_put_s(c, "b", "k1", v1, sizeof v1, NULL), 0);
  assert_int_equal(tu_put_s(c, "b", "k2", v1, 0, NULL), 0);
  static uint8_t bufs[5][2048];
  memset(bufs, 0xCD, sizeof bufs);
  cascade_get_item it[5];
  memset(it, 0, sizeof it);
  const char *keys[5] = {"k0", "k1", "kx", "k0", "k2"};
  const size_t caps[5] = {2048, 1999, 2048, 1000, 0};
  for (int i = 0; i < 5; i++) {
    it[i].key = keys[i];
    it[i].klen = 2;
    it[i].buf = bufs[i];
    it[i].cap = caps[i];
    it[i].rc = 12345;
    it[i].vlen = 777777;
  }
  assert_int_equal(cascade_get_batch(c, "b", it, 5), 3);
  assert_int_equal(it[0].rc, 0);
  assert_int_equal(it[0].vlen, 1000);
  assert_memory_equal(bufs[0], v0, 1000);
  assert_int_equal(it[1].rc, -ENOBUFS);
  assert_int_equal(it[1].vlen, 2000);
  for (size_t j = 0; j < sizeof bufs[1]; j++)
    assert_int_equal(bufs[1][j], 0xCD);
  assert_int_equal(it[2].rc, -ENOENT);
  for (size_t j = 0; j < sizeof bufs[2]; j++)
    assert_int_equal(bufs[2][j], 0xCD);
  assert_int_equal(it[3].rc, 0);
  assert_int_equal(it[3].vlen, 1000);
  assert_memory_equal(bufs[3], v0, 1000);
  assert_int_equal(it[4].rc, 0);
  assert_int_equal(it[4].vlen, 0);

  /* all misses in another namespace */
  for (int i = 0; i < 5; i++)
    it[i].cap = 2048;
  assert_int_equal(cascade_get_batch(c, "zz", it, 5), 0);
  for (int i = 0; i < 5; i++)
    assert_int_equal(it[i].rc, -ENOENT);
  assert_int_equal(cascade_get_batch(c, "b", it, 0), 0);
  assert_int_equal(cascade_get_batch(c, "b", NULL, 2), -EINVAL);
  cascade_close(c);
}

/* A batch of large values is copied out on the work pool's threads
 * (pool.threads; the first 64 items of this one are 4 MiB, over the pool's
 * threshold): every item gets its own bytes, and misses, short buffers and
 * empty values are reported as with the caller copying alone. */
static void test_batch_get_pool(void **state) {
  (void)state;
  enum { N = 70, LEN = 64 << 10, DISTINCT = 20 };
  uint8_t *v = malloc((size_t)DISTINCT * LEN), *bufs = malloc((size_t)N * LEN);
  assert_non_null(v);
  assert_non_null(bufs);
  for (int d = 0; d < DISTINCT; d++)
    tu_fill(v + (size_t)d * LEN, LEN, (uint64_t)(700 + d));
  static const char *const threads[] = {"1", "2", "4"};
  for (size_t t = 0; t < sizeof threads / sizeof threads[0]; t++) {
    cascade *c = tu_open_with("dram.capacity", "16m", "pool.threads",
                              threads[t], NULL);
    char keys[N][16];
    cascade_get_item it[N];
    memset(it, 0, sizeof it);
    for (int d = 0; d < DISTINCT; d++) {
      snprintf(keys[d], sizeof keys[d], "v%d", d);
      assert_int_equal(
          tu_put_s(c, "p", keys[d], v + (size_t)d * LEN, LEN, NULL), 0);
    }
    assert_int_equal(tu_put_s(c, "p", "empty", v, 0, NULL), 0);
    memset(bufs, 0xCD, (size_t)N * LEN);
    for (int i = 0; i < N; i++) {
      /* item 5: missing; 17: a buffer one byte short; 40: empty */
      if (i == 5)
        snprintf(keys[i], sizeof keys[i], "nothere");
      else if (i == 40)
        snprintf(keys[i], sizeof keys[i], "empty");
      else
        snprintf(keys[i], sizeof keys[i], "v%d", (i * 7) % DISTINCT);
      it[i] = (cascade_get_item){keys[i], strlen(keys[i]),
                                 bufs + (size_t)i * LEN,
                                 i == 17 ? LEN - 1 : LEN, 12345, 777777};
    }
    assert_int_equal(cascade_get_batch(c, "p", it, N), N - 2);
    for (int i = 0; i < N; i++) {
      uint8_t *b = bufs + (size_t)i * LEN;
      if (i == 5 || i == 17) {
        assert_int_equal(it[i].rc, i == 5 ? -ENOENT : -ENOBUFS);
        for (size_t j = 0; j < LEN; j++) assert_int_equal(b[j], 0xCD);
        continue;
      }
      assert_int_equal(it[i].rc, 0);
      if (i == 40) {
        assert_int_equal(it[i].vlen, 0);
        continue;
      }
      assert_int_equal(it[i].vlen, LEN);
      assert_memory_equal(b, v + (size_t)((i * 7) % DISTINCT) * LEN, LEN);
    }
    /* every pin was dropped */
    for (int d = 0; d < DISTINCT; d++) {
      char k[16];
      struct cascade_key_info ki;
      snprintf(k, sizeof k, "v%d", d);
      assert_int_equal(cascade_key_info(c, "p", k, strlen(k), &ki), 0);
      assert_int_equal(ki.pins, 0);
    }
    cascade_close(c);
  }
  free(bufs);
  free(v);
}

/* ---- statistics --------------------------------------------------------------- */

static void test_stats_counters(void **state) {
  (void)state;
  cascade *c = tu_open_with("dram.capacity", "4m", NULL);
  struct cascade_stats s = tu_stats_of(c);
  assert_int_equal(s.puts, 0);
  assert_int_equal(s.gets, 0);
  assert_int_equal(s.hits, 0);
  assert_int_equal(s.misses, 0);
  assert_int_equal(s.deletes, 0);
  assert_int_equal(s.keys, 0);
  assert_int_equal(s.expired, 0);
  assert_int_equal(s.dedup_hits, 0);
  assert_int_equal(s.dedup_bytes_saved, 0);
  assert_int_equal(s.views, 0);
  assert_int_equal(s.tier[CASCADE_TIER_DRAM].present, 1);
  assert_int_equal(s.tier[CASCADE_TIER_DRAM].blocks, 0);
  assert_int_equal(s.tier[CASCADE_TIER_DRAM].bytes, 0);
  assert_int_equal(s.tier[CASCADE_TIER_DRAM].capacity, 4 * MiB);
  assert_int_equal(s.tier[CASCADE_TIER_DRAM].evictions, 0);
  assert_int_equal(s.dram_free_bytes, 4 * MiB);
  assert_int_equal(s.dram_largest_free, 4 * MiB);
  assert_true(s.dram_fragmentation >= 0.0 && s.dram_fragmentation < 1e-9);
  assert_int_equal(s.get_latency.count, 0);
  assert_int_equal(s.put_latency.count, 0);

  uint8_t v[3][1000];
  for (int i = 0; i < 3; i++)
    tu_fill(v[i], sizeof v[i], 100 + (uint64_t)i);
  assert_int_equal(tu_put_s(c, NULL, "a", v[0], 1000, NULL), 0);
  assert_int_equal(tu_put_s(c, NULL, "b", v[1], 500, NULL), 0);
  assert_int_equal(tu_put_s(c, "x", "c", v[2], 64, NULL), 0);
  uint8_t buf[1000];
  size_t got;
  assert_int_equal(cascade_get(c, NULL, "a", 1, buf, sizeof buf, &got), 0);
  assert_int_equal(cascade_get(c, "x", "c", 1, buf, sizeof buf, &got), 0);
  assert_int_equal(cascade_get(c, NULL, "c", 1, buf, sizeof buf, &got),
                   -ENOENT);
  assert_int_equal(cascade_get(c, NULL, "a", 1, buf, sizeof buf, &got), 0);
  s = tu_stats_of(c);
  assert_int_equal(s.puts, 3);
  assert_int_equal(s.gets, 4);
  assert_int_equal(s.hits, 3);
  assert_int_equal(s.misses, 1);
  assert_int_equal(s.keys, 3);
  assert_int_equal(s.deletes, 0);
  assert_int_equal(s.tier[CASCADE_TIER_DRAM].blocks, 3);
  assert_int_equal(s.tier[CASCADE_TIER_DRAM].bytes, 1564);
  assert_int_equal(s.tier[CASCADE_TIER_DRAM].capacity, 4 * MiB);
  /* the allocator rounds each block to 64 bytes: 1024 + 512 + 64 used */
  assert_int_equal(s.dram_free_bytes, 4 * MiB - 1600);
  assert_true(s.dram_largest_free <= s.dram_free_bytes);
  assert_int_equal(s.dedup_hits, 0);

  assert_true(s.get_latency.count > 0);
  assert_true(s.get_latency.count <= 4);
  assert_true(s.put_latency.count > 0);
  assert_true(s.put_latency.count <= 3);
  const cascade_latency *ls[2] = {&s.get_latency, &s.put_latency};
  for (int i = 0; i < 2; i++) {
    assert_true(ls[i]->p50 <= ls[i]->p90);
    assert_true(ls[i]->p90 <= ls[i]->p99);
    assert_true(ls[i]->p99 <= ls[i]->p999);
    assert_true(ls[i]->p999 <= ls[i]->max);
    assert_true(ls[i]->max > 0);
  }

  assert_int_equal(cascade_delete(c, NULL, "b", 1), 0);
  assert_int_equal(cascade_delete(c, NULL, "b", 1), -ENOENT);
  s = tu_stats_of(c);
  assert_int_equal(s.deletes, 1);
  assert_int_equal(s.keys, 2);
  assert_int_equal(s.tier[CASCADE_TIER_DRAM].blocks, 2);
  assert_int_equal(s.tier[CASCADE_TIER_DRAM].bytes, 1064);
  assert_int_equal(s.dram_free_bytes, 4 * MiB - 1088);
  assert_string_equal(s.policy, "semantic");
  cascade_close(c);
}

static void test_stats_latency_off(void **state) {
  (void)state;
  cascade *c =
      tu_open_with("dram.capacity", "4m", "stats.latency", "false", NULL);
  uint8_t v[100], buf[100];
  size_t got;
  tu_fill(v, sizeof v, 1);
  for (int i = 0; i < 10; i++) {
    assert_int_equal(tu_put_s(c, NULL, "k", v, sizeof v, NULL), 0);
    assert_int_equal(cascade_get(c, NULL, "k", 1, buf, sizeof buf, &got), 0);
  }
  struct cascade_stats s = tu_stats_of(c);
  assert_int_equal(s.puts, 10);
  assert_int_equal(s.gets, 10);
  assert_int_equal(s.get_latency.count, 0);
  assert_int_equal(s.put_latency.count, 0);
  cascade_close(c);
}

/* ---- arena ------------------------------------------------------------------- */

static void test_arena(void **state) {
  (void)state;
  cascade *c = tu_open_with("dram.capacity", "4m", NULL);
  uint8_t *v1 = make_value(10000, 111), *v2 = make_value(70000, 112);
  assert_int_equal(tu_put_s(c, NULL, "a", v1, 10000, NULL), 0);
  assert_int_equal(tu_put_s(c, NULL, "b", v2, 70000, NULL), 0);
  int fd = -1;
  size_t size = 0;
  const void *base = NULL;
  assert_int_equal(cascade_arena(c, &fd, &size, &base), 0);
  assert_true(fd >= 0);
  assert_int_equal(size, 4 * MiB);
  assert_non_null(base);
  struct stat st;
  assert_int_equal(fstat(fd, &st), 0);
  assert_true((size_t)st.st_size >= size);

  /* the whole arena, mapped read-only through the fd */
  const uint8_t *map = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
  assert_true(map != MAP_FAILED);
  const char *keys[2] = {"a", "b"};
  const uint8_t *vals[2] = {v1, v2};
  const size_t lens[2] = {10000, 70000};
  long page = sysconf(_SC_PAGESIZE);
  for (int i = 0; i < 2; i++) {
    cascade_view view;
    assert_int_equal(cascade_get_view(c, NULL, keys[i], 1, &view), 0);
    assert_int_equal(view.len, lens[i]);
    const char *d = view.data;
    assert_true(d >= (const char *)base);
    size_t off = (size_t)(d - (const char *)base);
    assert_true(off + view.len <= size);
    assert_memory_equal(map + off, vals[i], lens[i]);
    /* and mapped at (page-aligned) offset, as a client would */
    size_t aoff = off & ~((size_t)page - 1);
    size_t mlen = off - aoff + view.len;
    const uint8_t *part =
        mmap(NULL, mlen, PROT_READ, MAP_SHARED, fd, (off_t)aoff);
    assert_true(part != MAP_FAILED);
    assert_memory_equal(part + (off - aoff), vals[i], lens[i]);
    assert_int_equal(munmap((void *)part, mlen), 0);
    cascade_view_release(c, &view);
  }
  assert_int_equal(munmap((void *)map, size), 0);
  /* the fd stays owned by the store: still valid */
  assert_int_equal(fstat(fd, &st), 0);
  free(v1);
  free(v2);
  cascade_close(c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_version),
      cmocka_unit_test(test_strerror),
      cmocka_unit_test(test_config_free_null),
      cmocka_unit_test(test_config_names),
      cmocka_unit_test(test_config_names_roundtrip),
      cmocka_unit_test(test_config_defaults),
      cmocka_unit_test(test_config_sizes),
      cmocka_unit_test(test_config_bools),
      cmocka_unit_test(test_config_bad_values),
      cmocka_unit_test(test_config_unknown),
      cmocka_unit_test(test_config_enobufs),
      cmocka_unit_test(test_open_null_cfg),
      cmocka_unit_test(test_open_cfg_copied),
      cmocka_unit_test(test_open_variants),
      cmocka_unit_test(test_put_get_sizes),
      cmocka_unit_test(test_get_miss),
      cmocka_unit_test(test_get_enobufs),
      cmocka_unit_test(test_overwrite),
      cmocka_unit_test(test_delete_exists),
      cmocka_unit_test(test_binary_keys),
      cmocka_unit_test(test_key_info),
      cmocka_unit_test(test_invalid_args),
      cmocka_unit_test(test_invalid_opts),
      cmocka_unit_test(test_nx_xx),
      cmocka_unit_test(test_keepttl),
      cmocka_unit_test(test_many_keys),
      cmocka_unit_test(test_put_from_view),
      cmocka_unit_test(test_max_value),
      cmocka_unit_test(test_value_larger_than_tier),
      cmocka_unit_test(test_view_basic),
      cmocka_unit_test(test_view_survives_delete_overwrite),
      cmocka_unit_test(test_view_survives_eviction),
      cmocka_unit_test(test_view_release_zeroed),
      cmocka_unit_test(test_match_prefix),
      cmocka_unit_test(test_batch_put),
      cmocka_unit_test(test_batch_put_invalid_item),
      cmocka_unit_test(test_batch_get),
      cmocka_unit_test(test_batch_get_pool),
      cmocka_unit_test(test_stats_counters),
      cmocka_unit_test(test_stats_latency_off),
      cmocka_unit_test(test_arena),
      cmocka_unit_test(test_strerror_int_min),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
