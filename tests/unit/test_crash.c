/*
 * test_crash.c - crash consistency of the disk tier.
 *
 * Each iteration forks a child that opens a store (disk.sync = batch, a DRAM
 * tier smaller than what it writes, so blocks also move down by eviction),
 * puts blocks of varied sizes under keys "it<iter>-<n>", calls
 * cascade_flush() every few puts and, after each successful flush, reports
 * through a pipe the number of puts it has made so far.  The parent kills
 * it with SIGKILL at a random moment (seeded, printed), then reopens the
 * store itself and checks:
 *   - every block acknowledged as flushed (in this and every earlier
 *     iteration) is present and byte-exact;
 *   - every block present, flushed or not, is byte-exact (a block may be
 *     missing if it was not flushed, never wrong);
 *   - the store still accepts puts after the reopen.
 * ITERS (at least 20) iterations run in CI; CASCADE_CRASH_ITERS overrides.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cascade.h"
#include "testutil.h"

#define ITERS 24
#define MAXPUT 400 /* puts per child at most */
#define FLUSH_EVERY 7

static char dir[512];

static size_t size_of(int iter, int n) {
  uint64_t s = ((uint64_t)iter << 32) ^ (uint64_t)n ^ 0x5bd1e995;
  uint64_t r = tu_splitmix(&s);
  static const size_t sizes[] = {1, 100, 4096, 65536, 200000, 1 << 20};
  return sizes[r % 6];
}

static uint64_t seed_of(int iter, int n) {
  return ((uint64_t)iter << 20) ^ (uint64_t)n ^ 0x9e37;
}

static cascade *open_store(void) {
  cascade_config *cfg;
  if (cascade_config_new(&cfg) < 0) return NULL;
  cascade_config_set(cfg, "dram.capacity", "4m");
  cascade_config_set(cfg, "disk.dir", dir);
  cascade_config_set(cfg, "disk.segment_size", "8m");
  cascade_config_set(cfg, "disk.sync", "batch");
  cascade *c = NULL;
  int rc = cascade_open(cfg, &c);
  cascade_config_free(cfg);
  return rc == 0 ? c : NULL;
}

/* The child: put, flush every FLUSH_EVERY puts, report after each flush. */
static void child(int iter, int wfd) {
  cascade *c = NULL;
  /* the parent's store was closed; the lock may take a moment to go (it is
   * released by close before fork, so this is immediate) */
  if (!(c = open_store())) _exit(3);
  uint8_t *v = malloc(1 << 20);
  for (int n = 0; n < MAXPUT; n++) {
    char k[64];
    size_t len = size_of(iter, n);
    snprintf(k, sizeof k, "it%03d-%04d", iter, n);
    tu_fill(v, len, seed_of(iter, n));
    if (cascade_put(c, "crash", k, strlen(k), v, len, NULL) != 0) _exit(4);
    if ((n + 1) % FLUSH_EVERY == 0) {
      if (cascade_flush(c) != 0) _exit(5);
      int32_t done = n + 1;
      if (write(wfd, &done, sizeof done) != sizeof done) _exit(6);
    }
  }
  cascade_close(c);
  _exit(0);
}

static void test_crash_loop(void **state) {
  const char *t = getenv("TMPDIR");
  snprintf(dir, sizeof dir, "%s/cascade-crash-XXXXXX",
           t && *t ? t : "/var/tmp");
  assert_non_null(mkdtemp(dir));
  int iters = ITERS;
  const char *e = getenv("CASCADE_CRASH_ITERS");
  if (e && atoi(e) > 0) iters = atoi(e);
  uint64_t seed = (uint64_t)time(NULL);
  const char *se = getenv("CASCADE_CRASH_SEED");
  if (se) seed = strtoull(se, NULL, 0);
  printf("# crash test: %d iterations, seed %llu (CASCADE_CRASH_SEED)\n", iters,
         (unsigned long long)seed);
  int acked[ITERS * 4 + 64];
  int made[ITERS * 4 + 64];
  assert_true(iters <= (int)(sizeof acked / sizeof acked[0]));
  uint8_t *v = malloc(1 << 20), *got = malloc(1 << 20);
  int killed_midway = 0;

  for (int it = 0; it < iters; it++) {
    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
      close(pfd[0]);
      child(it, pfd[1]);
    }
    close(pfd[1]);
    /* kill after a random delay of 0..300 ms, reading acknowledgements */
    uint64_t delay = tu_splitmix(&seed) % 300;
    uint64_t t0 = tu_now_ms();
    acked[it] = 0;
    int status = 0, exited = 0;
    for (;;) {
      uint64_t now = tu_now_ms();
      int left = now - t0 >= delay ? 0 : (int)(delay - (now - t0));
      struct pollfd p = {pfd[0], POLLIN, 0};
      int pr = poll(&p, 1, left);
      if (pr > 0) {
        int32_t done;
        ssize_t r = read(pfd[0], &done, sizeof done);
        if (r == sizeof done) {
          acked[it] = done;
          continue;
        }
        exited = 1; /* EOF: the child finished */
        break;
      }
      if (pr == 0) break;
    }
    if (!exited) {
      kill(pid, SIGKILL);
      killed_midway++;
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    /* acknowledgements written just before the kill */
    int32_t done;
    while (read(pfd[0], &done, sizeof done) == sizeof done) acked[it] = done;
    close(pfd[0]);
    if (WIFEXITED(status)) assert_int_equal(WEXITSTATUS(status), 0);
    made[it] = WIFEXITED(status) ? MAXPUT : -1;

    cascade *c = open_store();
    assert_non_null(c);
    for (int j = 0; j <= it; j++) {
      int lim = made[j] >= 0 ? made[j] : MAXPUT;
      for (int n = 0; n < lim; n++) {
        char k[64];
        size_t len = size_of(j, n), glen = 0;
        snprintf(k, sizeof k, "it%03d-%04d", j, n);
        int rc = cascade_get(c, "crash", k, strlen(k), got, 1 << 20, &glen);
        if (n < acked[j] || made[j] == MAXPUT) {
          if (rc != 0)
            fail_msg("iteration %d: flushed block %s missing (%d), seed %llu",
                     j, k, rc, (unsigned long long)seed);
        } else if (rc == -ENOENT) {
          continue;
        }
        assert_int_equal(rc, 0);
        assert_int_equal(glen, len);
        tu_fill(v, len, seed_of(j, n));
        if (memcmp(got, v, len) != 0)
          fail_msg("iteration %d: block %s has wrong bytes, seed %llu", j, k,
                   (unsigned long long)seed);
      }
    }
    /* usable after the crash */
    assert_int_equal(tu_put_s(c, "crash", "after", "x", 1, NULL), 0);
    cascade_close(c);
  }
  printf("# %d of %d children killed mid-run\n", killed_midway, iters);
  assert_true(killed_midway > 0);
  free(v);
  free(got);
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  assert_int_equal(system(cmd), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_crash_loop)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
