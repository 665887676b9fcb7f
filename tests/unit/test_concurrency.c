/*
 * test_concurrency.c - one cascade handle used from many threads at once
 * (cascade.h: "A cascade handle may be used from any number of threads at
 * once").  Also run under ThreadSanitizer (ctest label "concurrency").
 *
 *  - same content under many keys, put and deleted concurrently: the shared
 *    block's reference count stays exact (every remaining key reads its
 *    bytes; after deleting everything no block and no byte is left);
 *  - overlapping keys with concurrent put/get/view/delete: every successful
 *    read returns exactly one value that was written for that key (each
 *    value names its key, writer and sequence number and its payload is
 *    derived from them, so a torn, mixed or foreign value is detected);
 *  - eviction pressure in a small arena while views are held and released:
 *    held views never change, puts never fail;
 *  - cascade_match_prefix concurrently with writers that grow and shrink
 *    their chains, round after round: the answer always lies within bounds
 *    the writer published before and after the call.
 *
 * cmocka's assertions are not thread-safe: worker threads record failures
 * in `g_fail` and the main thread asserts.  Each test is bounded by an
 * iteration count and a wall-clock deadline.  Uses only the public header.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cascade.h"
#include "testutil.h"

#define NTHREADS 8
#define DEADLINE_MS 3000 /* per phase */

/* ---- helpers ----------------------------------------------------------- */

/* Failures seen by worker threads. */
static struct {
  atomic_int count;
  pthread_mutex_t lock;
  char first[512];
} g_fail = {0, PTHREAD_MUTEX_INITIALIZER, ""};

static void thread_fail(const char *fmt, ...) {
  if (atomic_fetch_add(&g_fail.count, 1) == 0) {
    pthread_mutex_lock(&g_fail.lock);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_fail.first, sizeof g_fail.first, fmt, ap);
    va_end(ap);
    pthread_mutex_unlock(&g_fail.lock);
  }
}

static void reset_failures(void) {
  atomic_store(&g_fail.count, 0);
  g_fail.first[0] = '\0';
}

static void check_no_failures(void) {
  int n = atomic_load(&g_fail.count);
  if (n)
    fail_msg("%d failure(s) in worker threads; first: %s", n, g_fail.first);
}

static void run_threads(int n, void *(*fn)(void *), void *args, size_t argsz) {
  pthread_t th[32];
  assert_true(n <= 32);
  for (int i = 0; i < n; i++)
    assert_int_equal(
        pthread_create(&th[i], NULL, fn, (char *)args + (size_t)i * argsz), 0);
  for (int i = 0; i < n; i++)
    assert_int_equal(pthread_join(th[i], NULL), 0);
}

/* ---- 1. same content under many keys ------------------------------------- */

#define SC_LEN 4096
#define SC_KEYS 4

struct sc_arg {
  cascade *c;
  int id;
  const uint8_t *v;
  int present[SC_KEYS]; /* out: final state of this thread's keys */
};

static void sc_key(char *buf, size_t cap, int thread, int k) {
  snprintf(buf, cap, "same-t%d-k%d", thread, k);
}

static int sc_check(cascade *c, const char *key, const uint8_t *v,
                    uint8_t *buf) {
  size_t got = 0;
  int rc = cascade_get(c, "sc", key, strlen(key), buf, SC_LEN, &got);
  if (rc != 0)
    return rc;
  if (got != SC_LEN || memcmp(buf, v, SC_LEN) != 0)
    return 1;
  return 0;
}

static void *sc_worker(void *p) {
  struct sc_arg *a = p;
  uint8_t *buf = malloc(SC_LEN);
  char key[32];
  uint64_t rng = (uint64_t)a->id * 7919 + 1;
  uint64_t end = tu_now_ms() + DEADLINE_MS;
  if (!buf) {
    thread_fail("malloc");
    return NULL;
  }
  /* phase A: one key, put/delete back to back (the shared block's count
   * often drops to zero while other threads are adding references) */
  sc_key(key, sizeof key, a->id, 0);
  for (int i = 0; i < 1500 && tu_now_ms() < end; i++) {
    int rc = cascade_put(a->c, "sc", key, strlen(key), a->v, SC_LEN, NULL);
    if (rc != 0) {
      thread_fail("A: put(%s) = %d", key, rc);
      break;
    }
    rc = sc_check(a->c, key, a->v, buf);
    if (rc != 0) {
      thread_fail("A: get(%s) after put: %d", key, rc);
      break;
    }
    if (i % 4 == 0) {
      cascade_view view;
      rc = cascade_get_view(a->c, "sc", key, strlen(key), &view);
      if (rc != 0 || view.len != SC_LEN || memcmp(view.data, a->v, SC_LEN)) {
        thread_fail("A: view(%s) = %d", key, rc);
        if (rc == 0)
          cascade_view_release(a->c, &view);
        break;
      }
      rc = cascade_delete(a->c, "sc", key, strlen(key));
      if (memcmp(view.data, a->v, SC_LEN) != 0)
        thread_fail("A: view of %s changed after delete", key);
      cascade_view_release(a->c, &view);
    } else {
      rc = cascade_delete(a->c, "sc", key, strlen(key));
    }
    if (rc != 0) {
      thread_fail("A: delete(%s) = %d", key, rc);
      break;
    }
  }
  /* phase B: SC_KEYS keys, random put/delete, state tracked locally */
  memset(a->present, 0, sizeof a->present);
  end = tu_now_ms() + DEADLINE_MS;
  for (int i = 0; i < 3000 && tu_now_ms() < end; i++) {
    int k = (int)(tu_splitmix(&rng) % SC_KEYS);
    sc_key(key, sizeof key, a->id, k);
    if (tu_splitmix(&rng) % 2) {
      int rc = cascade_put(a->c, "sc", key, strlen(key), a->v, SC_LEN, NULL);
      if (rc != 0) {
        thread_fail("B: put(%s) = %d", key, rc);
        break;
      }
      a->present[k] = 1;
    } else {
      int rc = cascade_delete(a->c, "sc", key, strlen(key));
      int want = a->present[k] ? 0 : -ENOENT;
      if (rc != want) {
        thread_fail("B: delete(%s) = %d, want %d", key, rc, want);
        break;
      }
      a->present[k] = 0;
    }
    if (a->present[k]) {
      int rc = sc_check(a->c, key, a->v, buf);
      if (rc != 0) {
        thread_fail("B: get(%s) = %d", key, rc);
        break;
      }
    }
  }
  free(buf);
  return NULL;
}

static void test_concurrent_same_content(void **state) {
  (void)state;
  reset_failures();
  cascade *c = tu_open_with("dram.capacity", "4m", NULL);
  uint8_t *v = malloc(SC_LEN), *buf = malloc(SC_LEN);
  assert_non_null(v);
  assert_non_null(buf);
  tu_fill(v, SC_LEN, 4242);
  struct sc_arg args[NTHREADS];
  memset(args, 0, sizeof args);
  for (int i = 0; i < NTHREADS; i++) {
    args[i].c = c;
    args[i].id = i;
    args[i].v = v;
  }
  run_threads(NTHREADS, sc_worker, args, sizeof args[0]);
  check_no_failures();

  /* every remaining key reads byte-exact; refs equal the number of keys */
  uint32_t total = 0;
  char key[32];
  for (int t = 0; t < NTHREADS; t++)
    for (int k = 0; k < SC_KEYS; k++)
      total += (uint32_t)args[t].present[k];
  for (int t = 0; t < NTHREADS; t++) {
    for (int k = 0; k < SC_KEYS; k++) {
      sc_key(key, sizeof key, t, k);
      int ex = cascade_exists(c, "sc", key, strlen(key));
      assert_int_equal(ex, args[t].present[k]);
      if (!ex)
        continue;
      assert_int_equal(sc_check(c, key, v, buf), 0);
      struct cascade_key_info ki;
      assert_int_equal(cascade_key_info(c, "sc", key, strlen(key), &ki), 0);
      assert_int_equal(ki.refs, total);
      assert_int_equal(ki.pins, 0);
    }
  }
  struct cascade_stats s = tu_stats_of(c);
  assert_int_equal(s.keys, total);
  assert_int_equal(DRAM(s).blocks, total ? 1 : 0);
  assert_int_equal(DRAM(s).bytes, total ? SC_LEN : 0);
  assert_int_equal(s.dedup_bytes_saved,
                   total ? (uint64_t)(total - 1) * SC_LEN : 0);
  assert_int_equal(s.views, 0);

  /* delete everything, concurrently-created state included */
  for (int t = 0; t < NTHREADS; t++)
    for (int k = 0; k < SC_KEYS; k++) {
      sc_key(key, sizeof key, t, k);
      assert_int_equal(cascade_delete(c, "sc", key, strlen(key)),
                       args[t].present[k] ? 0 : -ENOENT);
    }
  s = tu_stats_of(c);
  assert_int_equal(s.keys, 0);
  assert_int_equal(DRAM(s).blocks, 0);
  assert_int_equal(DRAM(s).bytes, 0);
  assert_int_equal(s.dedup_bytes_saved, 0);
  assert_int_equal(s.dram_free_bytes, 4u << 20);
  free(v);
  free(buf);
  cascade_close(c);
}

/* ---- 2. overlapping keys, put/get/view/delete -------------------------------- */

#define OV_KEYS 16
#define OV_MAX 8192
#define OV_MAGIC 0xCA5CADEu

struct ov_hdr {
  uint32_t magic, key, writer, seq, len, pad;
  uint64_t reserved;
};

static _Atomic uint32_t ov_last_seq[NTHREADS];

struct ov_arg {
  cascade *c;
  int id;
  uint64_t reads, hits, views;
};

static size_t ov_len(uint32_t writer, uint32_t seq) {
  uint64_t s = ((uint64_t)writer << 32) | seq;
  return sizeof(struct ov_hdr) +
         (size_t)(tu_splitmix(&s) % (OV_MAX - sizeof(struct ov_hdr) + 1));
}

static uint64_t ov_seed(uint32_t key, uint32_t writer, uint32_t seq) {
  return ((uint64_t)key << 40) ^ ((uint64_t)writer << 32) ^ seq ^ 0x5eed;
}

static void ov_make(uint8_t *buf, uint32_t key, uint32_t writer, uint32_t seq,
                    size_t *len) {
  size_t n = ov_len(writer, seq);
  struct ov_hdr h = {OV_MAGIC, key, writer, seq, (uint32_t)n, 0, 0};
  memcpy(buf, &h, sizeof h);
  tu_fill(buf + sizeof h, n - sizeof h, ov_seed(key, writer, seq));
  *len = n;
}

/* 0 if data[0..len) is a value once written for `key`. */
static int ov_verify(const uint8_t *data, size_t len, uint32_t key,
                     uint8_t *scratch, char *why, size_t whycap) {
  struct ov_hdr h;
  if (len < sizeof h) {
    snprintf(why, whycap, "short value (%zu bytes)", len);
    return -1;
  }
  memcpy(&h, data, sizeof h);
  if (h.magic != OV_MAGIC || h.key != key || h.writer >= NTHREADS ||
      h.len != len) {
    snprintf(why, whycap, "bad header magic %x key %u/%u writer %u len %u/%zu",
             h.magic, h.key, key, h.writer, h.len, len);
    return -1;
  }
  if (h.seq > atomic_load(&ov_last_seq[h.writer])) {
    snprintf(why, whycap, "seq %u of writer %u never written", h.seq, h.writer);
    return -1;
  }
  if (ov_len(h.writer, h.seq) != len) {
    snprintf(why, whycap, "length %zu does not match writer/seq", len);
    return -1;
  }
  tu_fill(scratch, len - sizeof h, ov_seed(key, h.writer, h.seq));
  if (memcmp(scratch, data + sizeof h, len - sizeof h) != 0) {
    snprintf(why, whycap, "payload differs (writer %u seq %u)", h.writer,
             h.seq);
    return -1;
  }
  return 0;
}

static void *ov_worker(void *p) {
  struct ov_arg *a = p;
  uint8_t *buf = malloc(OV_MAX), *scratch = malloc(OV_MAX);
  if (!buf || !scratch) {
    thread_fail("malloc");
    free(buf);
    free(scratch);
    return NULL;
  }
  uint64_t rng = (uint64_t)a->id * 104729 + 7;
  uint64_t end = tu_now_ms() + DEADLINE_MS;
  uint32_t seq = 0;
  char why[160];
  cascade_view held;
  int held_key = -1;
  memset(&held, 0, sizeof held);
  for (int i = 0; i < 4000 && tu_now_ms() < end; i++) {
    uint32_t k = (uint32_t)(tu_splitmix(&rng) % OV_KEYS);
    char key[16];
    snprintf(key, sizeof key, "ov%u", k);
    unsigned op = (unsigned)(tu_splitmix(&rng) % 100);
    if (op < 40) { /* put */
      size_t len;
      seq++;
      atomic_store(&ov_last_seq[a->id], seq);
      ov_make(buf, k, (uint32_t)a->id, seq, &len);
      int rc = cascade_put(a->c, "ov", key, strlen(key), buf, len, NULL);
      if (rc != 0) {
        thread_fail("put(%s) = %d", key, rc);
        break;
      }
    } else if (op < 75) { /* get */
      size_t got = 0;
      int rc = cascade_get(a->c, "ov", key, strlen(key), buf, OV_MAX, &got);
      a->reads++;
      if (rc == -ENOENT)
        continue;
      if (rc != 0) {
        thread_fail("get(%s) = %d", key, rc);
        break;
      }
      a->hits++;
      if (ov_verify(buf, got, k, scratch, why, sizeof why) != 0) {
        thread_fail("get(%s): %s", key, why);
        break;
      }
    } else if (op < 85) { /* view: verify, keep until the next view op */
      if (held_key >= 0) {
        if (ov_verify(held.data, held.len, (uint32_t)held_key, scratch, why,
                      sizeof why) != 0) {
          thread_fail("held view of ov%d changed: %s", held_key, why);
          break;
        }
        cascade_view_release(a->c, &held);
        held_key = -1;
      }
      int rc = cascade_get_view(a->c, "ov", key, strlen(key), &held);
      if (rc == -ENOENT)
        continue;
      if (rc != 0) {
        thread_fail("get_view(%s) = %d", key, rc);
        break;
      }
      a->views++;
      held_key = (int)k;
      if (ov_verify(held.data, held.len, k, scratch, why, sizeof why) != 0) {
        thread_fail("view(%s): %s", key, why);
        break;
      }
    } else { /* delete */
      int rc = cascade_delete(a->c, "ov", key, strlen(key));
      if (rc != 0 && rc != -ENOENT) {
        thread_fail("delete(%s) = %d", key, rc);
        break;
      }
    }
  }
  if (held_key >= 0) {
    if (ov_verify(held.data, held.len, (uint32_t)held_key, scratch, why,
                  sizeof why) != 0)
      thread_fail("held view of ov%d changed: %s", held_key, why);
    cascade_view_release(a->c, &held);
  }
  free(buf);
  free(scratch);
  return NULL;
}

static void test_concurrent_overlapping_keys(void **state) {
  (void)state;
  reset_failures();
  for (int i = 0; i < NTHREADS; i++)
    atomic_store(&ov_last_seq[i], 0);
  cascade *c = tu_open_with("dram.capacity", "4m", NULL);
  struct ov_arg args[NTHREADS];
  memset(args, 0, sizeof args);
  for (int i = 0; i < NTHREADS; i++) {
    args[i].c = c;
    args[i].id = i;
  }
  run_threads(NTHREADS, ov_worker, args, sizeof args[0]);
  check_no_failures();
  uint64_t hits = 0;
  for (int i = 0; i < NTHREADS; i++)
    hits += args[i].hits;
  assert_true(hits > 0); /* the test exercised concurrent reads */

  /* final state: every key absent or holding a valid value */
  uint8_t *buf = malloc(OV_MAX), *scratch = malloc(OV_MAX);
  assert_non_null(buf);
  assert_non_null(scratch);
  char why[160];
  uint64_t present = 0, bytes = 0;
  for (uint32_t k = 0; k < OV_KEYS; k++) {
    char key[16];
    snprintf(key, sizeof key, "ov%u", k);
    size_t got = 0;
    int rc = cascade_get(c, "ov", key, strlen(key), buf, OV_MAX, &got);
    if (rc == -ENOENT)
      continue;
    assert_int_equal(rc, 0);
    if (ov_verify(buf, got, k, scratch, why, sizeof why) != 0)
      fail_msg("final %s: %s", key, why);
    present++;
    bytes += got;
  }
  struct cascade_stats s = tu_stats_of(c);
  assert_int_equal(s.keys, present);
  assert_int_equal(DRAM(s).blocks, present); /* all values are distinct */
  assert_int_equal(DRAM(s).bytes, bytes);
  assert_int_equal(s.views, 0);
  free(buf);
  free(scratch);
  cascade_close(c);
}

/* ---- 3. eviction pressure with views ----------------------------------------- */

#define EV_LEN 16384 /* 32 blocks in 512 KiB */

struct ev_arg {
  cascade *c;
  int id;
  uint64_t views, puts;
};

static uint64_t ev_seed(int thread, int i) {
  return ((uint64_t)thread << 32) ^ (uint64_t)i ^ 0xe11c7;
}

static void *ev_worker(void *p) {
  struct ev_arg *a = p;
  uint8_t *v = malloc(EV_LEN), *want = malloc(EV_LEN);
  if (!v || !want) {
    thread_fail("malloc");
    free(v);
    free(want);
    return NULL;
  }
  uint64_t end = tu_now_ms() + DEADLINE_MS;
  uint64_t rng = (uint64_t)a->id + 99;
  cascade_view held;
  int held_i = -1, held_age = 0;
  memset(&held, 0, sizeof held);
  char key[32];
  for (int i = 0; i < 1500 && tu_now_ms() < end; i++) {
    snprintf(key, sizeof key, "ev-t%d-%d", a->id, i);
    tu_fill(v, EV_LEN, ev_seed(a->id, i));
    int rc = cascade_put(a->c, "ev", key, strlen(key), v, EV_LEN, NULL);
    if (rc != 0) {
      thread_fail("put(%s) = %d (at most %d views held)", key, rc, NTHREADS);
      break;
    }
    a->puts++;
    /* a held view never changes while others evict around it */
    if (held_i >= 0) {
      tu_fill(want, EV_LEN, ev_seed(a->id, held_i));
      if (held.len != EV_LEN || memcmp(held.data, want, EV_LEN) != 0) {
        thread_fail("view of ev-t%d-%d changed under eviction", a->id, held_i);
        break;
      }
      if (++held_age >= 6) {
        cascade_view_release(a->c, &held);
        held_i = -1;
      }
    }
    /* take a view of a recent key of ours (it may be evicted already) */
    if (held_i < 0 && i % 3 == 0) {
      int j = i - (int)(tu_splitmix(&rng) % 4);
      if (j < 0)
        j = 0;
      snprintf(key, sizeof key, "ev-t%d-%d", a->id, j);
      rc = cascade_get_view(a->c, "ev", key, strlen(key), &held);
      if (rc == 0) {
        held_i = j;
        held_age = 0;
        a->views++;
        tu_fill(want, EV_LEN, ev_seed(a->id, j));
        if (held.len != EV_LEN || memcmp(held.data, want, EV_LEN) != 0) {
          thread_fail("view of %s has wrong bytes", key);
          break;
        }
      } else if (rc != -ENOENT) {
        thread_fail("get_view(%s) = %d", key, rc);
        break;
      }
    }
    /* read someone else's key now and then */
    if (i % 5 == 0) {
      int t = (int)(tu_splitmix(&rng) % NTHREADS);
      int j = i - 1 - (int)(tu_splitmix(&rng) % 8);
      if (j >= 0) {
        snprintf(key, sizeof key, "ev-t%d-%d", t, j);
        size_t got = 0;
        rc = cascade_get(a->c, "ev", key, strlen(key), v, EV_LEN, &got);
        if (rc == 0) {
          tu_fill(want, EV_LEN, ev_seed(t, j));
          if (got != EV_LEN || memcmp(v, want, EV_LEN) != 0) {
            thread_fail("get(%s) wrong bytes", key);
            break;
          }
        } else if (rc != -ENOENT) {
          thread_fail("get(%s) = %d", key, rc);
          break;
        }
      }
    }
  }
  if (held_i >= 0)
    cascade_view_release(a->c, &held);
  free(v);
  free(want);
  return NULL;
}

static void test_concurrent_eviction_with_views(void **state) {
  (void)state;
  reset_failures();
  const uint64_t cap = 512 * 1024;
  cascade *c = tu_open_with("dram.capacity", "512k", NULL);
  struct ev_arg args[NTHREADS];
  memset(args, 0, sizeof args);
  for (int i = 0; i < NTHREADS; i++) {
    args[i].c = c;
    args[i].id = i;
  }
  run_threads(NTHREADS, ev_worker, args, sizeof args[0]);
  check_no_failures();
  uint64_t puts = 0, views = 0;
  for (int i = 0; i < NTHREADS; i++) {
    puts += args[i].puts;
    views += args[i].views;
  }
  assert_true(views > 0);
  struct cascade_stats s = tu_stats_of(c);
  assert_int_equal(s.views, 0);
  assert_true(DRAM(s).bytes <= cap);
  assert_true(DRAM(s).blocks <= cap / EV_LEN);
  assert_int_equal(s.keys, DRAM(s).blocks); /* distinct contents */
  assert_int_equal(DRAM(s).bytes, DRAM(s).blocks * EV_LEN);
  if (puts > cap / EV_LEN) {
    assert_int_equal(DRAM(s).evictions, puts - DRAM(s).blocks);
  }
  /* after the storm a full arena still takes new blocks */
  uint8_t *v = malloc(EV_LEN);
  assert_non_null(v);
  for (int i = 0; i < 40; i++) {
    char key[32];
    snprintf(key, sizeof key, "after%d", i);
    tu_fill(v, EV_LEN, (uint64_t)i);
    assert_int_equal(cascade_put(c, "ev", key, strlen(key), v, EV_LEN, NULL),
                     0);
  }
  free(v);
  cascade_close(c);
}

/* ---- 4. match_prefix against a growing and shrinking chain ---------------- */

#define MP_WRITERS 4
#define MP_READERS 4
#define MP_LEN 256
#define MP_ROUNDS 4

struct mp_shared {
  cascade *c;
  atomic_int lower[MP_WRITERS]; /* keys [0, lower) surely present */
  atomic_int upper[MP_WRITERS]; /* keys [upper, MP_LEN) surely absent */
  atomic_int phase[MP_WRITERS]; /* even: growing, odd: shrinking */
  pthread_barrier_t start;
  atomic_int writers_done;
  char names[MP_WRITERS][MP_LEN][32];
  cascade_key keys[MP_WRITERS][MP_LEN];
};

struct mp_arg {
  struct mp_shared *sh;
  int id;
  uint64_t calls;
};

static void *mp_writer(void *p) {
  struct mp_arg *a = p;
  struct mp_shared *sh = a->sh;
  int w = a->id;
  uint8_t v[1024];
  pthread_barrier_wait(&sh->start);
  for (int round = 0; round < MP_ROUNDS; round++) {
    /* grow: before put i, upper = i+1; after, lower = i+1 */
    for (int i = 0; i < MP_LEN; i++) {
      cascade_put_opts o;
      memset(&o, 0, sizeof o);
      if (i > 0) {
        o.parent = sh->keys[w][i - 1].key;
        o.parent_len = sh->keys[w][i - 1].len;
      }
      tu_fill(v, sizeof v, ((uint64_t)w << 20) | (uint64_t)i);
      atomic_store(&sh->upper[w], i + 1);
      int rc = cascade_put(sh->c, "mp", sh->keys[w][i].key, sh->keys[w][i].len,
                           v, sizeof v, &o);
      if (rc != 0) {
        thread_fail("writer %d put %d = %d", w, i, rc);
        goto out;
      }
      atomic_store(&sh->lower[w], i + 1);
    }
    atomic_fetch_add(&sh->phase[w], 1); /* now shrinking */
    /* shrink from the tail: before delete i, lower = i; after, upper = i */
    for (int i = MP_LEN - 1; i >= 0; i--) {
      atomic_store(&sh->lower[w], i);
      int rc =
          cascade_delete(sh->c, "mp", sh->keys[w][i].key, sh->keys[w][i].len);
      if (rc != 0) {
        thread_fail("writer %d delete %d = %d", w, i, rc);
        goto out;
      }
      atomic_store(&sh->upper[w], i);
    }
    atomic_fetch_add(&sh->phase[w], 1); /* growing again */
    if (atomic_load(&g_fail.count))
      break;
  }
out:
  atomic_fetch_add(&sh->writers_done, 1);
  return NULL;
}

static void *mp_reader(void *p) {
  struct mp_arg *a = p;
  struct mp_shared *sh = a->sh;
  uint64_t rng = (uint64_t)a->id * 31 + 5;
  pthread_barrier_wait(&sh->start);
  uint64_t end = tu_now_ms() + 2 * DEADLINE_MS;
  do {
    int w = (int)(tu_splitmix(&rng) % MP_WRITERS);
    int ph1 = atomic_load(&sh->phase[w]);
    int lo1 = atomic_load(&sh->lower[w]), hi1 = atomic_load(&sh->upper[w]);
    int r = cascade_match_prefix(sh->c, "mp", sh->keys[w], MP_LEN);
    int lo2 = atomic_load(&sh->lower[w]), hi2 = atomic_load(&sh->upper[w]);
    int ph2 = atomic_load(&sh->phase[w]);
    /* Inside one phase (even: growing, odd: shrinking) lower and upper are
     * monotonic, so over the call lower's minimum and upper's maximum are
     * at its ends.  A call spanning a grow->shrink turn may see the whole
     * chain; one spanning a shrink->grow turn may see none of it. */
    int lo = lo1 < lo2 ? lo1 : lo2, hi = hi1 > hi2 ? hi1 : hi2;
    if (ph2 == ph1 + 1 && ph1 % 2 == 0) {
      hi = MP_LEN;
    } else if (ph2 == ph1 + 1) {
      lo = 0;
    } else if (ph2 != ph1) {
      lo = 0;
      hi = MP_LEN;
    }
    a->calls++;
    if (r < lo || r > hi) {
      thread_fail("match_prefix(chain %d) = %d, outside [%d, %d]", w, r, lo,
                  hi);
      break;
    }
  } while (atomic_load(&sh->writers_done) < MP_WRITERS && tu_now_ms() < end);
  return NULL;
}

struct mp_thread {
  struct mp_arg arg;
  int reader;
};

static void *mp_dispatch(void *p) {
  struct mp_thread *t = p;
  return t->reader ? mp_reader(&t->arg) : mp_writer(&t->arg);
}

static void test_concurrent_match_prefix(void **state) {
  (void)state;
  reset_failures();
  struct mp_shared *sh = calloc(1, sizeof *sh);
  assert_non_null(sh);
  sh->c = tu_open_with("dram.capacity", "4m", NULL);
  for (int w = 0; w < MP_WRITERS; w++) {
    atomic_store(&sh->lower[w], 0);
    atomic_store(&sh->upper[w], 0);
    atomic_store(&sh->phase[w], 0);
    for (int i = 0; i < MP_LEN; i++) {
      snprintf(sh->names[w][i], sizeof sh->names[w][i], "w%d-b%d", w, i);
      sh->keys[w][i].key = sh->names[w][i];
      sh->keys[w][i].len = strlen(sh->names[w][i]);
    }
  }
  atomic_store(&sh->writers_done, 0);
  assert_int_equal(
      pthread_barrier_init(&sh->start, NULL, MP_WRITERS + MP_READERS), 0);
  struct mp_thread th[MP_WRITERS + MP_READERS];
  memset(th, 0, sizeof th);
  for (int i = 0; i < MP_WRITERS + MP_READERS; i++) {
    th[i].arg.sh = sh;
    th[i].reader = i >= MP_WRITERS;
    th[i].arg.id = th[i].reader ? i - MP_WRITERS : i;
  }
  run_threads(MP_WRITERS + MP_READERS, mp_dispatch, th, sizeof th[0]);
  check_no_failures();
  uint64_t calls = 0;
  for (int i = MP_WRITERS; i < MP_WRITERS + MP_READERS; i++)
    calls += th[i].arg.calls;
  assert_true(calls > 0);
  for (int w = 0; w < MP_WRITERS; w++)
    assert_int_equal(cascade_match_prefix(sh->c, "mp", sh->keys[w], MP_LEN), 0);
  struct cascade_stats s = tu_stats_of(sh->c);
  assert_int_equal(s.keys, 0);
  assert_int_equal(DRAM(s).blocks, 0);
  cascade_close(sh->c);
  pthread_barrier_destroy(&sh->start);
  free(sh);
}

/* ---- 5. stats and batches while others write ----------------------------------- */

struct mix_arg {
  cascade *c;
  int id;
};

static void *mix_worker(void *p) {
  struct mix_arg *a = p;
  uint64_t end = tu_now_ms() + DEADLINE_MS;
  uint8_t vals[4][256], bufs[4][256];
  char names[4][16];
  for (int i = 0; i < 500 && tu_now_ms() < end; i++) {
    cascade_put_item pit[4];
    cascade_get_item git[4];
    memset(pit, 0, sizeof pit);
    memset(git, 0, sizeof git);
    for (int j = 0; j < 4; j++) {
      snprintf(names[j], sizeof names[j], "m%d-%d", a->id, (i + j) % 16);
      tu_fill(vals[j], sizeof vals[j],
              ((uint64_t)a->id << 16) | (uint64_t)((i + j) % 16));
      pit[j].key = names[j];
      pit[j].klen = strlen(names[j]);
      pit[j].value = vals[j];
      pit[j].vlen = sizeof vals[j];
      git[j].key = names[j];
      git[j].klen = strlen(names[j]);
      git[j].buf = bufs[j];
      git[j].cap = sizeof bufs[j];
    }
    int rc = cascade_put_batch(a->c, "mix", pit, 4);
    if (rc != 4) {
      thread_fail("put_batch = %d (rc %d %d %d %d)", rc, pit[0].rc, pit[1].rc,
                  pit[2].rc, pit[3].rc);
      break;
    }
    rc = cascade_get_batch(a->c, "mix", git, 4);
    if (rc != 4) {
      thread_fail("get_batch = %d", rc);
      break;
    }
    for (int j = 0; j < 4; j++)
      if (git[j].vlen != 256 || memcmp(bufs[j], vals[j], 256) != 0) {
        thread_fail("get_batch item %d wrong bytes", j);
        return NULL;
      }
    struct cascade_stats s;
    if (cascade_stats(a->c, &s) != 0 || DRAM(s).bytes > DRAM(s).capacity) {
      thread_fail("stats inconsistent");
      break;
    }
  }
  return NULL;
}

static void test_concurrent_batches_and_stats(void **state) {
  (void)state;
  reset_failures();
  cascade *c = tu_open_with("dram.capacity", "4m", NULL);
  struct mix_arg args[NTHREADS];
  for (int i = 0; i < NTHREADS; i++) {
    args[i].c = c;
    args[i].id = i;
  }
  run_threads(NTHREADS, mix_worker, args, sizeof args[0]);
  check_no_failures();
  struct cascade_stats s = tu_stats_of(c);
  assert_int_equal(s.keys, NTHREADS * 16);
  assert_int_equal(DRAM(s).blocks, NTHREADS * 16);
  assert_int_equal(DRAM(s).bytes, NTHREADS * 16 * 256);
  cascade_close(c);
}

/* ---- 6. the work pool shared by many batches at once --------------------------- */

/* 4 values a batch: 2.5 MiB, over the pool's thresholds for hashing and for
 * copying, so puts hash and copy in, and gets copy out, on its threads */
#define HP_LEN (640 << 10)

static void *hp_worker(void *p) {
  struct mix_arg *a = p;
  uint64_t end = tu_now_ms() + DEADLINE_MS;
  uint8_t *vals = malloc(4 * (size_t)HP_LEN), *buf = malloc(4 * (size_t)HP_LEN);
  char names[4][24];
  if (!vals || !buf) {
    thread_fail("out of memory%s", "");
    free(vals);
    free(buf);
    return NULL;
  }
  for (int i = 0; i < 40 && tu_now_ms() < end; i++) {
    cascade_put_item pit[4];
    memset(pit, 0, sizeof pit);
    for (int j = 0; j < 4; j++) {
      snprintf(names[j], sizeof names[j], "hp%d-%d", a->id, (i * 4 + j) % 8);
      tu_fill(vals + (size_t)j * HP_LEN, HP_LEN,
              ((uint64_t)a->id << 32) | (uint64_t)(i * 4 + j));
      pit[j] = (cascade_put_item){names[j], strlen(names[j]),
                                  vals + (size_t)j * HP_LEN, HP_LEN, NULL,
                                  99};
    }
    int rc = cascade_put_batch(a->c, "hp", pit, 4);
    if (rc != 4) {
      thread_fail("put_batch = %d", rc);
      break;
    }
    cascade_get_item git[4];
    for (int j = 0; j < 4; j++)
      git[j] = (cascade_get_item){names[j], strlen(names[j]),
                                  buf + (size_t)j * HP_LEN, HP_LEN, 99, 0};
    rc = cascade_get_batch(a->c, "hp", git, 4);
    if (rc != 4) {
      thread_fail("get_batch = %d", rc);
      break;
    }
    for (int j = 0; j < 4; j++) {
      struct cascade_key_info ki;
      cascade_cid want;
      if (git[j].rc != 0 || git[j].vlen != HP_LEN ||
          memcmp(buf + (size_t)j * HP_LEN, vals + (size_t)j * HP_LEN,
                 HP_LEN)) {
        thread_fail("key %s: wrong bytes", names[j]);
        goto out;
      }
      cascade_content_id(vals + (size_t)j * HP_LEN, HP_LEN, &want);
      if (cascade_key_info(a->c, "hp", names[j], strlen(names[j]), &ki) !=
              0 ||
          memcmp(ki.cid.b, want.b, CASCADE_CID_BYTES) != 0) {
        thread_fail("key %s: wrong content id", names[j]);
        goto out;
      }
    }
  }
out:
  free(vals);
  free(buf);
  return NULL;
}

static void test_concurrent_work_pool(void **state) {
  (void)state;
  reset_failures();
  cascade *c = tu_open_with("dram.capacity", "64m", "pool.threads", "3", NULL);
  struct mix_arg args[NTHREADS];
  for (int i = 0; i < NTHREADS; i++) {
    args[i].c = c;
    args[i].id = i;
  }
  run_threads(NTHREADS, hp_worker, args, sizeof args[0]);
  check_no_failures();
  cascade_close(c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_concurrent_same_content),
      cmocka_unit_test(test_concurrent_overlapping_keys),
      cmocka_unit_test(test_concurrent_eviction_with_views),
      cmocka_unit_test(test_concurrent_match_prefix),
      cmocka_unit_test(test_concurrent_batches_and_stats),
      cmocka_unit_test(test_concurrent_work_pool),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
