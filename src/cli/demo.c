/*
 * demo.c - `cascade demo`: a short, checked walk through the public API on
 * an embedded store (no daemon).
 *
 * Steps: prefix-chained keys from fake token ids, puts with parent links,
 * a copy-out get, prefix matching for a second request that shares the
 * first blocks, deduplication of two keys with equal bytes, a zero-copy
 * view that outlives a delete of its key, a TTL that expires, and the
 * store's statistics.
 *
 * Every step checks what the API promises and prints "ok" or "FAIL"; the
 * command exits 0 only if every check passed (it runs in `make run`).
 * The demo defaults to a 64 MiB arena; --set/--dram/--policy override.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

#define DEMO_BLOCK (64u * 1024u) /* bytes of fake KV per block */
#define DEMO_TPB 16              /* tokens per block */
#define DEMO_NBLK 3              /* blocks per request */
#define DEMO_NS "demo"           /* namespace used throughout */

struct demo {
  cascade *c;
  int checks, failed;
};

void cli_demo_usage(FILE *f) {
  fprintf(f, "Usage: cascade demo [--set NAME=VALUE]... [--dram SIZE] "
             "[--policy NAME]\n"
             "\n"
             "Walk through the API on an embedded store (64 MiB DRAM arena "
             "unless set):\n"
             "prefix-chained keys, put/get, prefix matching, deduplication, a "
             "zero-copy\n"
             "view, a TTL, the disk tier (a second store with a 1 MiB DRAM "
             "tier over a\n"
             "temporary directory in $TMPDIR or /var/tmp: demotion, reads "
             "from disk,\n"
             "restart), and the store's statistics.  Every step is checked; "
             "the exit\n"
             "status is 0 only if all checks pass.\n");
}

static void check(struct demo *d, int ok, const char *fmt, ...)
    CLI_PRINTF(3, 4);

static void check(struct demo *d, int ok, const char *fmt, ...) {
  va_list ap;

  d->checks++;
  if (!ok)
    d->failed++;
  printf("   %-4s ", ok ? "ok" : "FAIL");
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  putchar('\n');
}

/* Open a store with a 1 MiB DRAM tier over a disk tier in dir. */
static int open_disk_store(const char *dir, cascade **c) {
  cascade_config *cfg;
  int rc = cascade_config_new(&cfg);

  if (rc != 0) return rc;
  if ((rc = cascade_config_set(cfg, "dram.capacity", "1m")) == 0 &&
      (rc = cascade_config_set(cfg, "disk.dir", dir)) == 0 &&
      (rc = cascade_config_set(cfg, "disk.segment_size", "4m")) == 0)
    rc = cascade_open(cfg, c);
  cascade_config_free(cfg);
  return rc;
}

static void fill(uint8_t *p, size_t n, uint64_t seed);

/* Step 8: a second store with a disk tier under a small DRAM tier. */
static void demo_disk(struct demo *d, uint8_t *buf) {
  enum { N = 32 };
  const char *tmp = getenv("TMPDIR");
  char dir[512], key[32], h[32];
  cascade *c = NULL;
  struct cascade_stats st;
  struct cascade_key_info ki;
  size_t vlen = 0;
  int rc, ok = 1;

  snprintf(dir, sizeof dir, "%s/cascade-demo-XXXXXX",
           tmp != NULL && tmp[0] ? tmp : "/var/tmp");
  if (mkdtemp(dir) == NULL) {
    check(d, 0, "mkdtemp %s: %s", dir, strerror(errno));
    return;
  }
  if ((rc = open_disk_store(dir, &c)) != 0) {
    check(d, 0, "cascade_open with disk.dir = %s: %s", dir,
          cascade_strerror(rc));
    goto out;
  }
  for (int i = 0; i < N && ok; i++) {
    snprintf(key, sizeof key, "layer-block-%02d", i);
    fill(buf, DEMO_BLOCK, 9000u + (uint64_t)i);
    ok = cascade_put(c, DEMO_NS, key, strlen(key), buf, DEMO_BLOCK, NULL) == 0;
  }
  memset(&st, 0, sizeof st);
  cascade_stats(c, &st);
  check(d,
        ok && st.tier[CASCADE_TIER_DRAM].blocks == 16 &&
            st.tier[CASCADE_TIER_DRAM].demotions == N - 16 &&
            st.tier[CASCADE_TIER_DISK].blocks == N - 16,
        "%d puts of %s into 1 MiB of DRAM: %llu blocks in DRAM, %llu "
        "demoted to disk (%s)",
        N, cli_fmt_size(DEMO_BLOCK, h, sizeof h),
        (unsigned long long)st.tier[CASCADE_TIER_DRAM].blocks,
        (unsigned long long)st.tier[CASCADE_TIER_DISK].blocks, st.disk_mode);
  memset(&ki, 0, sizeof ki);
  cascade_key_info(c, DEMO_NS, "layer-block-00", 14, &ki);
  rc = cascade_get(c, DEMO_NS, "layer-block-00", 14, buf + DEMO_BLOCK,
                   DEMO_BLOCK, &vlen);
  fill(buf, DEMO_BLOCK, 9000u);
  check(d,
        ki.tier == CASCADE_TIER_DISK && rc == 0 && vlen == DEMO_BLOCK &&
            memcmp(buf, buf + DEMO_BLOCK, DEMO_BLOCK) == 0,
        "the oldest block is on disk; get reads it back byte-exact "
        "(checksum verified)");
  rc = cascade_flush(c);
  cascade_close(c);
  c = NULL;
  if (rc == 0) rc = open_disk_store(dir, &c);
  memset(&st, 0, sizeof st);
  if (c != NULL) cascade_stats(c, &st);
  ok = rc == 0 && st.keys == N;
  for (int i = 0; i < N && ok; i++) {
    snprintf(key, sizeof key, "layer-block-%02d", i);
    fill(buf, DEMO_BLOCK, 9000u + (uint64_t)i);
    ok = cascade_get(c, DEMO_NS, key, strlen(key), buf + DEMO_BLOCK,
                     DEMO_BLOCK, &vlen) == 0 &&
         vlen == DEMO_BLOCK && memcmp(buf, buf + DEMO_BLOCK, DEMO_BLOCK) == 0;
  }
  check(d, ok,
        "cascade_flush, close, reopen: %llu keys recovered from the segment "
        "files, all %d read back byte-exact",
        (unsigned long long)st.disk_recovered, N);
out:
  cascade_close(c);
  {
    char cmd[600];

    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
      fprintf(stderr, "cascade demo: could not remove %s\n", dir);
  }
}

/* Deterministic pseudo-random bytes standing in for KV tensors. */
static void fill(uint8_t *p, size_t n, uint64_t seed) {
  uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;

  for (size_t i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    p[i] = (uint8_t)x;
  }
}

/* First 4 bytes of a key as hex, for display. */
static const char *short_hex(const uint8_t *k, char buf[16]) {
  snprintf(buf, 16, "%02x%02x%02x%02x..", k[0], k[1], k[2], k[3]);
  return buf;
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

  while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
    ;
}

static int is_true(const char *v) {
  return strcmp(v, "true") == 0 || strcmp(v, "1") == 0 ||
         strcmp(v, "yes") == 0 || strcmp(v, "on") == 0;
}

/* A reported content id is right if it is SHA-256 of the bytes.  With
 * dedup off the engine may skip hashing and report all zeros (the header
 * does not promise either way yet); accept that, and say so. */
static int cid_ok(const cascade_cid *got, const cascade_cid *want, int dedup) {
  static const cascade_cid zero;

  if (memcmp(got, want, sizeof *want) == 0)
    return 1;
  return !dedup && memcmp(got, &zero, sizeof zero) == 0;
}

static uint64_t dram_blocks(cascade *c) {
  struct cascade_stats st;

  memset(&st, 0, sizeof st);
  if (cascade_stats(c, &st) != 0)
    return UINT64_MAX;
  return st.tier[CASCADE_TIER_DRAM].blocks;
}

int cli_cmd_demo(int argc, char **argv, const cli_common *co0) {
  cli_common co = *co0;
  cascade_config *cfg = NULL;
  struct demo d;
  uint8_t *blk[DEMO_NBLK] = {NULL}, *doc = NULL, *buf = NULL;
  uint32_t tok_a[DEMO_NBLK * DEMO_TPB], tok_b[DEMO_NBLK * DEMO_TPB];
  uint8_t keys_a[DEMO_NBLK][CASCADE_CHAIN_KEY_BYTES];
  uint8_t keys_a2[DEMO_NBLK][CASCADE_CHAIN_KEY_BYTES];
  uint8_t keys_b[DEMO_NBLK][CASCADE_CHAIN_KEY_BYTES];
  cascade_key ka[DEMO_NBLK], kb[DEMO_NBLK];
  char cap_s[64] = "?", pol_s[64] = "?", dedup_s[64] = "?";
  char h1[16], h2[16], h3[16], sz[32];
  int dedup, rc, ret = CLI_FAIL;

  memset(&d, 0, sizeof d);
  if ((rc = cli_parse_common_only(&co, argc, argv, "demo", cli_demo_usage)) >=
      0)
    return rc;

  rc = cascade_config_new(&cfg);
  if (rc != 0) {
    cli_err("demo: cascade_config_new: %s", cascade_strerror(rc));
    return CLI_FAIL;
  }
  if (cli_config_set(cfg, "dram.capacity", "64m", "demo") != 0) {
    cascade_config_free(cfg);
    return CLI_FAIL;
  }
  rc = cli_apply_settings(&co, cfg);
  if (rc != CLI_OK) {
    cascade_config_free(cfg);
    return rc;
  }
  if (cascade_config_get(cfg, "dram.capacity", cap_s, sizeof cap_s) == 0) {
    uint64_t cap;

    if (cli_parse_size(cap_s, &cap) == 0)
      cli_fmt_size(cap, cap_s, sizeof cap_s);
  }
  cascade_config_get(cfg, "policy", pol_s, sizeof pol_s);
  cascade_config_get(cfg, "dedup", dedup_s, sizeof dedup_s);
  dedup = is_true(dedup_s);
  rc = cascade_open(cfg, &d.c);
  cascade_config_free(cfg);
  if (rc != 0) {
    cli_err("demo: cascade_open: %s", cascade_strerror(rc));
    return CLI_FAIL;
  }

  for (int i = 0; i < DEMO_NBLK; i++)
    blk[i] = malloc(DEMO_BLOCK);
  doc = malloc(DEMO_BLOCK);
  buf = malloc(2 * DEMO_BLOCK);
  if (blk[0] == NULL || blk[1] == NULL || blk[2] == NULL || doc == NULL ||
      buf == NULL) {
    cli_err("demo: out of memory");
    goto out;
  }

  printf("Cascade %s demo: an embedded store (no daemon)\n"
         "DRAM arena %s, policy %s, dedup %s\n",
         cascade_version(), cap_s, pol_s, dedup ? "on" : "off");

  /* 1. Keys. */
  printf("\n1. Block keys chained from token ids (cascade_chain_keys, %d "
         "tokens/block)\n",
         DEMO_TPB);
  for (int i = 0; i < DEMO_NBLK * DEMO_TPB; i++) {
    tok_a[i] = 1000u + (uint32_t)i * 7u;
    /* request B: same first two blocks (system prompt + document), then
     * a different question */
    tok_b[i] = i < 2 * DEMO_TPB ? tok_a[i] : 5000u + (uint32_t)i;
  }
  {
    int na = cascade_chain_keys(tok_a, DEMO_NBLK * DEMO_TPB, DEMO_TPB, NULL,
                                keys_a, DEMO_NBLK);
    int na2 = cascade_chain_keys(tok_a, DEMO_NBLK * DEMO_TPB, DEMO_TPB, NULL,
                                 keys_a2, DEMO_NBLK);
    int nb = cascade_chain_keys(tok_b, DEMO_NBLK * DEMO_TPB, DEMO_TPB, NULL,
                                keys_b, DEMO_NBLK);

    check(&d,
          na == DEMO_NBLK && na2 == na &&
              memcmp(keys_a, keys_a2, sizeof keys_a) == 0,
          "request A: %d tokens -> %d keys %s %s %s", DEMO_NBLK * DEMO_TPB, na,
          short_hex(keys_a[0], h1), short_hex(keys_a[1], h2),
          short_hex(keys_a[2], h3));
    check(&d,
          nb == DEMO_NBLK &&
              memcmp(keys_b[0], keys_a[0], sizeof keys_a[0]) == 0 &&
              memcmp(keys_b[1], keys_a[1], sizeof keys_a[1]) == 0 &&
              memcmp(keys_b[2], keys_a[2], sizeof keys_a[2]) != 0,
          "request B shares A's first %d tokens: same keys 0-1, key 2 %s",
          2 * DEMO_TPB, short_hex(keys_b[2], h1));
  }
  for (int i = 0; i < DEMO_NBLK; i++) {
    ka[i].key = keys_a[i];
    ka[i].len = CASCADE_CHAIN_KEY_BYTES;
    kb[i].key = keys_b[i];
    kb[i].len = CASCADE_CHAIN_KEY_BYTES;
  }

  /* 2. Put. */
  printf("\n2. Put A's %d blocks (%s of fake KV each; parent links; "
         "block 0 protected)\n",
         DEMO_NBLK, cli_fmt_size(DEMO_BLOCK, sz, sizeof sz));
  {
    int ok = 1;

    for (int i = 0; i < DEMO_NBLK; i++) {
      cascade_put_opts o;

      memset(&o, 0, sizeof o);
      fill(blk[i], DEMO_BLOCK, (uint64_t)i + 1);
      if (i > 0) {
        o.parent = keys_a[i - 1];
        o.parent_len = CASCADE_CHAIN_KEY_BYTES;
      } else {
        o.flags = CASCADE_PUT_PREFIX;
      }
      rc = cascade_put(d.c, DEMO_NS, keys_a[i], CASCADE_CHAIN_KEY_BYTES, blk[i],
                       DEMO_BLOCK, &o);
      if (rc != 0) {
        ok = 0;
        printf("   cascade_put(key %d): %s\n", i, cascade_strerror(rc));
      }
    }
    check(&d, ok, "cascade_put x %d", DEMO_NBLK);
  }

  /* 3. Get. */
  printf("\n3. Get copies the bytes out (cascade_get)\n");
  {
    size_t vlen = 0;

    memset(buf, 0, DEMO_BLOCK);
    rc = cascade_get(d.c, DEMO_NS, keys_a[1], CASCADE_CHAIN_KEY_BYTES, buf,
                     DEMO_BLOCK, &vlen);
    check(&d,
          rc == 0 && vlen == DEMO_BLOCK && memcmp(buf, blk[1], DEMO_BLOCK) == 0,
          "get key 1 -> %s, %zu bytes, equal to what was put",
          rc == 0 ? "0" : cascade_strerror(rc), vlen);
    vlen = 0;
    rc = cascade_get(d.c, DEMO_NS, keys_a[1], CASCADE_CHAIN_KEY_BYTES, buf, 100,
                     &vlen);
    check(&d, rc == -ENOBUFS && vlen == DEMO_BLOCK,
          "get into 100 bytes -> %s (length %zu)", cascade_strerror(rc), vlen);
  }

  /* 4. Prefix match. */
  printf("\n4. Prefix match: how much of a request is cached "
         "(cascade_match_prefix)\n");
  {
    int ma = cascade_match_prefix(d.c, DEMO_NS, ka, DEMO_NBLK);
    int mb = cascade_match_prefix(d.c, DEMO_NS, kb, DEMO_NBLK);

    check(&d, ma == DEMO_NBLK, "request A: %d of %d blocks cached", ma,
          DEMO_NBLK);
    check(&d, mb == 2,
          "request B: %d of %d blocks cached -> prefill only its last %d "
          "tokens",
          mb, DEMO_NBLK, (DEMO_NBLK - (mb > 0 ? mb : 0)) * DEMO_TPB);
  }

  /* 5. Dedup. */
  printf("\n5. Deduplication: two keys, equal bytes (content id: "
         "SHA-256, 16 bytes)\n");
  {
    uint64_t before = dram_blocks(d.c), after;
    struct cascade_key_info ia, ib;
    cascade_cid cid;
    char hex[CASCADE_CID_HEX] = "", hexa[CASCADE_CID_HEX] = "";
    int r1, r2, ra, rb;

    fill(doc, DEMO_BLOCK, 77);
    r1 = cascade_put(d.c, DEMO_NS, "doc:a", 5, doc, DEMO_BLOCK, NULL);
    r2 = cascade_put(d.c, DEMO_NS, "doc:b", 5, doc, DEMO_BLOCK, NULL);
    after = dram_blocks(d.c);
    memset(&ia, 0, sizeof ia);
    memset(&ib, 0, sizeof ib);
    ra = cascade_key_info(d.c, DEMO_NS, "doc:a", 5, &ia);
    rb = cascade_key_info(d.c, DEMO_NS, "doc:b", 5, &ib);
    cascade_content_id(doc, DEMO_BLOCK, &cid);
    cascade_cid_hex(&cid, hex);
    cascade_cid_hex(&ia.cid, hexa);
    check(&d,
          r1 == 0 && r2 == 0 && ra == 0 && rb == 0 &&
              cid_ok(&ia.cid, &cid, dedup) && cid_ok(&ib.cid, &cid, dedup),
          "doc:a and doc:b: content id %s%s", hexa,
          memcmp(&ia.cid, &cid, sizeof cid) != 0 ? " (not computed)" : "");
    if (dedup)
      check(&d, after == before + 1 && ia.refs == 2 && ib.refs == 2,
            "one stored copy: DRAM blocks %llu -> %llu, refs = %u",
            (unsigned long long)before, (unsigned long long)after,
            (unsigned)ia.refs);
    else
      check(&d, after == before + 2 && ia.refs == 1,
            "dedup off: two copies: DRAM blocks %llu -> %llu, refs = %u",
            (unsigned long long)before, (unsigned long long)after,
            (unsigned)ia.refs);
  }

  /* 6. View. */
  printf("\n6. Zero-copy view into the shared arena (cascade_get_view)\n");
  {
    cascade_view v;
    struct cascade_key_info ki;
    cascade_cid cid;
    const void *base = NULL;
    size_t asize = 0;
    int fd = -1, ri, m;

    memset(&v, 0, sizeof v);
    memset(&ki, 0, sizeof ki);
    rc = cascade_get_view(d.c, DEMO_NS, keys_a[2], CASCADE_CHAIN_KEY_BYTES, &v);
    if (rc != 0) {
      check(&d, 0, "get_view key 2 -> %s", cascade_strerror(rc));
    } else {
      int ra = cascade_arena(d.c, &fd, &asize, &base);
      long off = (long)((const char *)v.data - (const char *)base);

      cascade_content_id(blk[2], DEMO_BLOCK, &cid);
      check(&d,
            v.len == DEMO_BLOCK && memcmp(v.data, blk[2], v.len) == 0 &&
                cid_ok(&v.cid, &cid, dedup) && ra == 0 && off >= 0 &&
                (size_t)off + v.len <= asize,
            "view of key 2: %zu bytes at arena offset %ld (arena fd %d), "
            "no copy",
            v.len, off, fd);
      ri = cascade_key_info(d.c, DEMO_NS, keys_a[2], CASCADE_CHAIN_KEY_BYTES,
                            &ki);
      check(&d, ri == 0 && ki.pins == 1,
            "while held the block is pinned: pins = %u", (unsigned)ki.pins);
      rc = cascade_delete(d.c, DEMO_NS, keys_a[2], CASCADE_CHAIN_KEY_BYTES);
      check(&d, rc == 0 && memcmp(v.data, blk[2], DEMO_BLOCK) == 0,
            "delete key 2 while viewed: the view's bytes stay valid");
      cascade_view_release(d.c, &v);
      m = cascade_match_prefix(d.c, DEMO_NS, ka, DEMO_NBLK);
      check(&d, m == 2, "after release: request A now matches %d of %d", m,
            DEMO_NBLK);
    }
  }

  /* Counters so far (before the TTL step). */
  {
    struct cascade_stats st;
    uint64_t want_blocks = dedup ? 3 : 4;

    memset(&st, 0, sizeof st);
    rc = cascade_stats(d.c, &st);
    check(&d,
          rc == 0 && st.keys == 4 &&
              st.tier[CASCADE_TIER_DRAM].blocks == want_blocks &&
              st.tier[CASCADE_TIER_DRAM].bytes == want_blocks * DEMO_BLOCK &&
              (!dedup ||
               (st.dedup_hits >= 1 && st.dedup_bytes_saved == DEMO_BLOCK)),
          "stats: %llu keys, %llu DRAM blocks (%s), dedup hits %llu, "
          "saved %s",
          (unsigned long long)st.keys,
          (unsigned long long)st.tier[CASCADE_TIER_DRAM].blocks,
          cli_fmt_size(st.tier[CASCADE_TIER_DRAM].bytes, h1, sizeof h1),
          (unsigned long long)st.dedup_hits,
          cli_fmt_size(st.dedup_bytes_saved, sz, sizeof sz));
  }

  /* 7. TTL. */
  printf("\n7. Time to live (put with ttl_ms = 50)\n");
  {
    cascade_put_opts o;
    struct cascade_key_info ki;
    size_t vlen = 0;
    int e1, e2, ri, rg;

    memset(&o, 0, sizeof o);
    memset(&ki, 0, sizeof ki);
    o.ttl_ms = 50;
    rc = cascade_put(d.c, DEMO_NS, "scratch", 7, "temporary", 9, &o);
    e1 = cascade_exists(d.c, DEMO_NS, "scratch", 7);
    ri = cascade_key_info(d.c, DEMO_NS, "scratch", 7, &ki);
    check(&d, rc == 0 && e1 == 1 && ri == 0 && ki.ttl_ms > 0 && ki.ttl_ms <= 50,
          "right after the put: exists = %d, %lld ms left", e1,
          (long long)ki.ttl_ms);
    sleep_ms(100);
    e2 = cascade_exists(d.c, DEMO_NS, "scratch", 7);
    rg = cascade_get(d.c, DEMO_NS, "scratch", 7, buf, DEMO_BLOCK, &vlen);
    check(&d, e2 == 0 && rg == -ENOENT, "100 ms later: exists = %d, get -> %s",
          e2, rg == 0 ? "0 (still there)" : cascade_strerror(rg));
  }

  /* 8. Disk tier. */
  printf("\n8. The disk tier (disk.dir: blocks DRAM evicts go to segment "
         "files)\n");
  demo_disk(&d, buf);

  /* 9. Stats. */
  printf("\n9. Statistics (cascade_stats)\n\n");
  {
    struct cascade_stats st;

    memset(&st, 0, sizeof st);
    rc = cascade_stats(d.c, &st);
    if (rc != 0)
      check(&d, 0, "cascade_stats -> %s", cascade_strerror(rc));
    else
      cli_print_stats(stdout, &st, "   ");
  }

  if (d.failed == 0) {
    printf("\nAll %d checks passed.\n", d.checks);
    ret = CLI_OK;
  } else {
    printf("\n%d of %d checks FAILED.\n", d.failed, d.checks);
    cli_err("demo: %d of %d checks failed", d.failed, d.checks);
  }

out:
  cascade_close(d.c);
  for (int i = 0; i < DEMO_NBLK; i++)
    free(blk[i]);
  free(doc);
  free(buf);
  return ret;
}
