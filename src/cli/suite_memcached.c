/*
 * suite_memcached.c - the "memcached" system of `cascade bench suite`: a
 * real memcached server, started and stopped here, driven through
 * libmemcached (the C client most memcached users link).
 *
 * The server.  /usr/bin/memcached (or the first memcached in PATH; none:
 * SUITE_SKIP) listening only on 127.0.0.1, on a port found free by binding
 * port 0 (if another process takes it first the server exits, and the
 * start is retried on a new port, START_TRIES times):
 *   -m  the working set (blocks + per-item overhead) x 5/4 + 64 MiB, in
 *       MiB: items larger than the slab page are stored as chunks from
 *       several slab classes, whose rounding the 5/4 covers
 *   -I  the block + 1 KiB (header, key), rounded up to a multiple of
 *       512 KiB (memcached's largest chunk: it refuses other values), at
 *       least the default 1 MiB; memcached accepts at most 1 GiB (and at
 *       most half of -m), so a larger block is SUITE_SKIP
 *   -M  refuse a set when memory is full instead of evicting: a benchmark
 *       must fail loudly, never lose a block silently
 *   -t  one worker thread per client thread, at most the online CPUs
 *   -U 0 no UDP; -u root only when running as root (memcached refuses
 *       root otherwise)
 * Its stdout/stderr go to cfg->dir/memcached.log (quoted in errors).  The
 * child asks for SIGKILL when its parent dies (PR_SET_PDEATHSIG), so a
 * crashed or killed harness leaves no server behind; fini sends SIGTERM,
 * then SIGKILL after FINI_WAIT_MS, and reaps it.  If working set + margin
 * exceeds MemAvailable, init is SUITE_SKIP (the server would swap or be
 * killed, which measures nothing).
 *
 * The client.  One memcached_st per handle (a connection per worker
 * thread; a memcached_st is not thread-safe), text protocol (the binary
 * protocol is deprecated in memcached 1.6), TCP_NODELAY, NO_BLOCK and
 * BUFFER_REQUESTS:
 *   put       memcached_set per block; with BUFFER_REQUESTS the sets of a
 *             batch are queued and written back to back without waiting
 *             for each STORED (pipelining).  The batch ends with
 *             memcached_exist on its last key: libmemcached reads every
 *             pending reply before that answer, so when put returns the
 *             server has stored (or refused) every block; a refusal (out
 *             of memory under -M, too large) fails the whole batch, since
 *             libmemcached drops the per-set replies of a pipeline
 *   get       memcached_mget of the batch's keys (one "get k1 k2 ..."),
 *             then memcached_fetch_result into the handle's own result
 *             (its buffer is reused: no allocation per block); each value
 *             is copied into the caller's buffer; a key not returned is
 *             -ENOENT
 *   contains  memcached_exist per key (libmemcached's existence check; no
 *             value crosses the socket)
 *   sync      nothing to do: every put is complete when it returns, and
 *             memcached has no durability
 *   cold      -ENOTSUP: everything is in memory
 *   clear     memcached_flush (flush_all) on a connection of its own
 * version is the server's own answer to "version" ("1.6.18").
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libmemcached/memcached.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "suite.h"

#define MC_HOST "127.0.0.1"
#define START_TRIES 5
#define START_WAIT_MS 10000      /* until the server answers */
#define FINI_WAIT_MS 3000        /* after SIGTERM, before SIGKILL */
#define ITEM_MAX (1ull << 30)    /* memcached's largest -I */
#define ITEM_OVERHEAD 1024ull    /* item header + key, rounded up */
#define CHUNK_MAX (512ull << 10) /* memcached's default slab_chunk_max */
#define MEM_MARGIN (64ull << 20)
#define POLL_TIMEOUT_MS 30000 /* a big batch on two shared cores */

typedef struct mc_store {
  pid_t pid;
  int port;
  char bin[PATH_MAX];
  char log[PATH_MAX];
  char version[64];
} mc_store;

typedef struct mc_handle {
  memcached_st *mc;
  memcached_result_st res; /* reused by every get */
  const char **keys;       /* mget's arrays, grown to the largest batch */
  size_t *klens;
  int cap;
} mc_handle;

/* ---- errors -------------------------------------------------------------- */

static int mc_errno(memcached_return_t rc) {
  switch (rc) {
  case MEMCACHED_SUCCESS:
    return 0;
  case MEMCACHED_NOTFOUND:
    return -ENOENT;
  case MEMCACHED_E2BIG:
    return -EFBIG;
  case MEMCACHED_MEMORY_ALLOCATION_FAILURE:
  case MEMCACHED_SERVER_MEMORY_ALLOCATION_FAILURE:
    return -ENOMEM;
  case MEMCACHED_BAD_KEY_PROVIDED:
  case MEMCACHED_KEY_TOO_BIG:
    return -EINVAL;
  case MEMCACHED_TIMEOUT:
    return -ETIMEDOUT;
  case MEMCACHED_CONNECTION_FAILURE:
  case MEMCACHED_CONNECTION_SOCKET_CREATE_FAILURE:
    return -ECONNREFUSED;
  default:
    return -EIO;
  }
}

static int mc_fail(memcached_st *mc, memcached_return_t rc, char *msg,
                   size_t cap, const char *what) {
  snprintf(msg, cap, "memcached: %s: %s", what,
           mc ? memcached_last_error_message(mc)
              : memcached_strerror(NULL, rc));
  return mc_errno(rc);
}

static int mc_sys(char *msg, size_t cap, int err, const char *what) {
  snprintf(msg, cap, "memcached: %s: %s", what, strerror(err));
  return -err;
}

/* ---- the server ---------------------------------------------------------- */

/* Ask the server its version on a plain socket: 0 and the version once
 * it answers, -EAGAIN while it does not listen yet. */
static int mc_probe(int port, char *ver, size_t cap) {
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
  char buf[128];
  size_t got = 0;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), rc = -EAGAIN;

  if (fd < 0)
    return -errno;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
      write(fd, "version\r\n", 9) != 9)
    goto out;
  while (got < sizeof buf - 1) {
    struct pollfd p = {fd, POLLIN, 0};
    ssize_t r;

    if (poll(&p, 1, 1000) <= 0)
      break;
    if ((r = read(fd, buf + got, sizeof buf - 1 - got)) <= 0)
      break;
    got += (size_t)r;
    buf[got] = '\0';
    if (strstr(buf, "\r\n")) {
      if (sscanf(buf, "VERSION %63s", ver) == 1 && strlen(ver) < cap)
        rc = 0;
      break;
    }
  }
out:
  close(fd);
  return rc;
}

static void mc_stop(mc_store *s) {
  if (s->pid > 0)
    cli_stop_pid(s->pid, FINI_WAIT_MS / 1000.0);
  s->pid = 0;
}

/* Start the server with argv (argv[2] is the port's slot) and wait until
 * it answers.  -EADDRINUSE: it exited at once, try another port. */
static int mc_start(mc_store *s, char **argv, char *msg, size_t cap) {
  double t0;
  int status;

  s->pid = cli_spawn(argv, s->log);
  if (s->pid < 0)
    return mc_sys(msg, cap, errno, "start memcached");
  t0 = cli_now();
  for (;;) {
    char tail[256];

    if (mc_probe(s->port, s->version, sizeof s->version) == 0)
      return 0;
    if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
      s->pid = 0;
      cli_log_tail(s->log, tail, sizeof tail);
      if (strstr(tail, "in use") || strstr(tail, "bind"))
        return -EADDRINUSE;
      snprintf(msg, cap,
               "memcached: the server exited at start (status %d):"
               " %s",
               WIFEXITED(status) ? WEXITSTATUS(status) : -1,
               tail[0] ? tail : "no message");
      return -ECHILD;
    }
    if ((cli_now() - t0) * 1000 > START_WAIT_MS) {
      mc_stop(s);
      snprintf(msg, cap, "memcached: no answer on port %d after %d ms", s->port,
               START_WAIT_MS);
      return -ETIMEDOUT;
    }
    usleep(10000);
  }
}

/* MemAvailable from /proc/meminfo, in bytes (0: unknown). */
static uint64_t mc_mem_available(void) {
  char line[256];
  unsigned long long kb = 0;
  FILE *f = fopen("/proc/meminfo", "re");

  if (!f)
    return 0;
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1)
      break;
  fclose(f);
  return kb * 1024ull;
}

static int mc_init(const suite_cfg *cfg, void **st, char *msg, size_t cap) {
  mc_store *s = calloc(1, sizeof *s);
  uint64_t item, mem, avail;
  char port[16], mib[24], imax[24], thr[16];
  char *argv[] = {s ? s->bin : NULL,
                  "-p",
                  port,
                  "-l",
                  MC_HOST,
                  "-U",
                  "0",
                  "-m",
                  mib,
                  "-I",
                  imax,
                  "-t",
                  thr,
                  "-M",
                  NULL,
                  NULL,
                  NULL};
  long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
  int threads = cfg->threads < 1 ? 1 : cfg->threads, rc = -EADDRINUSE;

  *st = NULL;
  if (!s)
    return mc_sys(msg, cap, ENOMEM, "init");
  if (access("/usr/bin/memcached", X_OK) == 0)
    snprintf(s->bin, sizeof s->bin, "/usr/bin/memcached");
  else if (cli_find_on_path("memcached", s->bin, sizeof s->bin) != 0) {
    snprintf(msg, cap,
             "memcached is not installed (no memcached in "
             "/usr/bin or PATH)");
    free(s);
    return SUITE_SKIP;
  }
  /* memcached wants -I a multiple of its largest chunk (slab_chunk_max,
   * half the 1 MiB slab page) */
  item = (cfg->block + ITEM_OVERHEAD + CHUNK_MAX - 1) / CHUNK_MAX * CHUNK_MAX;
  if (item < (1ull << 20))
    item = 1ull << 20;
  if (item > ITEM_MAX) {
    snprintf(msg, cap,
             "memcached stores items of at most 1 GiB (-I); a "
             "%llu-byte block does not fit",
             (unsigned long long)cfg->block);
    free(s);
    return SUITE_SKIP;
  }
  mem = (cfg->block + ITEM_OVERHEAD) * cfg->capacity / 4 * 5 + MEM_MARGIN;
  if (mem < 2 * item)
    mem = 2 * item; /* memcached: -I at most -m / 2 */
  avail = mc_mem_available();
  if (avail && mem > avail) {
    snprintf(msg, cap,
             "memcached would need %llu MiB of memory, %llu MiB "
             "are available",
             (unsigned long long)(mem >> 20),
             (unsigned long long)(avail >> 20));
    free(s);
    return SUITE_SKIP;
  }
  if (ncpu > 0 && threads > ncpu)
    threads = (int)ncpu;
  snprintf(mib, sizeof mib, "%llu",
           (unsigned long long)((mem + (1 << 20) - 1) >> 20));
  snprintf(imax, sizeof imax, "%lluk", (unsigned long long)(item >> 10));
  snprintf(thr, sizeof thr, "%d", threads);
  if (geteuid() == 0) {
    struct passwd *pw = getpwuid(0);

    argv[14] = "-u";
    argv[15] = pw ? pw->pw_name : "root";
  }
  if (snprintf(s->log, sizeof s->log, "%s/memcached.log", cfg->dir) >=
      (int)sizeof s->log) {
    free(s);
    return mc_sys(msg, cap, ENAMETOOLONG, cfg->dir);
  }
  for (int i = 0; i < START_TRIES && rc == -EADDRINUSE; i++) {
    if ((s->port = cli_free_port()) < 0) {
      rc = mc_sys(msg, cap, EADDRNOTAVAIL, "finding a free port");
      break;
    }
    snprintf(port, sizeof port, "%d", s->port);
    rc = mc_start(s, argv, msg, cap);
  }
  if (rc == -EADDRINUSE)
    snprintf(msg, cap, "memcached: no free port in %d tries", START_TRIES);
  if (rc != 0) {
    unlink(s->log);
    free(s);
    return rc;
  }
  *st = s;
  return 0;
}

static const char *mc_version(void *st) {
  return ((mc_store *)st)->version;
}

/* ---- the client ---------------------------------------------------------- */

static memcached_st *mc_connect(mc_store *s, char *msg, size_t cap, int *err) {
  memcached_st *mc = memcached_create(NULL);
  memcached_return_t rc;

  if (!mc) {
    *err = mc_sys(msg, cap, ENOMEM, "memcached_create");
    return NULL;
  }
  if ((rc = memcached_server_add(mc, MC_HOST, (in_port_t)s->port)) !=
          MEMCACHED_SUCCESS ||
      (rc = memcached_behavior_set(mc, MEMCACHED_BEHAVIOR_TCP_NODELAY, 1)) !=
          MEMCACHED_SUCCESS ||
      (rc = memcached_behavior_set(mc, MEMCACHED_BEHAVIOR_NO_BLOCK, 1)) !=
          MEMCACHED_SUCCESS ||
      (rc = memcached_behavior_set(mc, MEMCACHED_BEHAVIOR_BUFFER_REQUESTS,
                                   1)) != MEMCACHED_SUCCESS ||
      (rc = memcached_behavior_set(mc, MEMCACHED_BEHAVIOR_VERIFY_KEY, 1)) !=
          MEMCACHED_SUCCESS ||
      (rc = memcached_behavior_set(mc, MEMCACHED_BEHAVIOR_POLL_TIMEOUT,
                                   POLL_TIMEOUT_MS)) != MEMCACHED_SUCCESS) {
    *err = mc_fail(mc, rc, msg, cap, "configuring the client");
    memcached_free(mc);
    return NULL;
  }
  return mc;
}

static int mc_open(void *st, int t, void **h, char *msg, size_t cap) {
  mc_store *s = st;
  mc_handle *x = calloc(1, sizeof *x);
  int err = 0;

  (void)t;
  *h = NULL;
  if (!x)
    return mc_sys(msg, cap, ENOMEM, "open");
  if (!(x->mc = mc_connect(s, msg, cap, &err))) {
    free(x);
    return err;
  }
  if (!memcached_result_create(x->mc, &x->res)) {
    memcached_free(x->mc);
    free(x);
    return mc_sys(msg, cap, ENOMEM, "memcached_result_create");
  }
  *h = x;
  return 0;
}

static void mc_close(void *st, void *h) {
  mc_handle *x = h;

  (void)st;
  if (!x)
    return;
  memcached_result_free(&x->res);
  memcached_free(x->mc);
  free(x->keys);
  free(x->klens);
  free(x);
}

static int mc_put(void *h, suite_item *it, int n, char *msg, size_t cap) {
  mc_handle *x = h;
  memcached_return_t rc = MEMCACHED_SUCCESS;
  int err;

  if (n <= 0)
    return 0;
  for (int i = 0; i < n; i++) {
    rc = memcached_set(x->mc, it[i].key, it[i].klen, it[i].val, it[i].vlen, 0,
                       0);
    if (rc != MEMCACHED_BUFFERED && rc != MEMCACHED_SUCCESS) {
      err = mc_fail(x->mc, rc, msg, cap, "memcached_set");
      for (int j = 0; j < n; j++)
        it[j].rc = err;
      return err;
    }
  }
  /* the fence: every queued set's reply is read before this answer */
  rc = memcached_exist(x->mc, it[n - 1].key, it[n - 1].klen);
  if (rc != MEMCACHED_SUCCESS) {
    err = mc_fail(x->mc, rc, msg, cap,
                  "a pipelined set of the batch was not stored");
    if (err == -ENOENT)
      err = -EIO;
    for (int j = 0; j < n; j++)
      it[j].rc = err;
    return err;
  }
  for (int i = 0; i < n; i++)
    it[i].rc = 0;
  return n;
}

static int mc_grow(mc_handle *x, int n) {
  const char **k;
  size_t *l;

  if (n <= x->cap)
    return 0;
  k = realloc(x->keys, (size_t)n * sizeof *k);
  if (!k)
    return -ENOMEM;
  x->keys = k;
  l = realloc(x->klens, (size_t)n * sizeof *l);
  if (!l)
    return -ENOMEM;
  x->klens = l;
  x->cap = n;
  return 0;
}

static int mc_get(void *h, suite_item *it, int n, char *msg, size_t cap) {
  mc_handle *x = h;
  memcached_return_t rc;
  int ok = 0, next = 0;

  if (n <= 0)
    return 0;
  if (mc_grow(x, n) != 0)
    return mc_sys(msg, cap, ENOMEM, "get");
  for (int i = 0; i < n; i++) {
    x->keys[i] = it[i].key;
    x->klens[i] = it[i].klen;
    it[i].rc = 1; /* not answered yet */
  }
  rc = memcached_mget(x->mc, x->keys, x->klens, (size_t)n);
  if (rc != MEMCACHED_SUCCESS)
    return mc_fail(x->mc, rc, msg, cap, "mget");
  while (memcached_fetch_result(x->mc, &x->res, &rc)) {
    const char *k = memcached_result_key_value(&x->res);
    size_t kl = memcached_result_key_length(&x->res);
    size_t vl = memcached_result_length(&x->res);
    int i = -1;

    /* One server answers in request order (hits only): look from the
     * last match on, wrapping for duplicate keys. */
    for (int c = 0; c < n; c++) {
      int j = (next + c) % n;

      if (it[j].rc == 1 && it[j].klen == kl && memcmp(it[j].key, k, kl) == 0) {
        i = j;
        break;
      }
    }
    if (i < 0)
      continue; /* a key we did not ask for: cannot happen */
    next = i + 1;
    if (vl > it[i].vlen) {
      snprintf(msg, cap, "memcached: a %zu-byte value, a %zu-byte buffer", vl,
               it[i].vlen);
      it[i].rc = -EMSGSIZE;
      continue;
    }
    memcpy(it[i].val, memcached_result_value(&x->res), vl);
    it[i].vlen = vl;
    it[i].rc = 0;
    ok++;
  }
  if (rc != MEMCACHED_END && rc != MEMCACHED_SUCCESS &&
      rc != MEMCACHED_NOTFOUND) {
    int err = mc_fail(x->mc, rc, msg, cap, "fetching the batch");

    for (int i = 0; i < n; i++)
      if (it[i].rc == 1)
        it[i].rc = err;
    return err;
  }
  for (int i = 0; i < n; i++)
    if (it[i].rc == 1)
      it[i].rc = -ENOENT; /* not returned: absent */
  return ok;
}

static int mc_contains(void *h, suite_item *it, int n, char *msg, size_t cap) {
  mc_handle *x = h;
  int found = 0;

  for (int i = 0; i < n; i++) {
    memcached_return_t rc = memcached_exist(x->mc, it[i].key, it[i].klen);

    if (rc == MEMCACHED_SUCCESS) {
      it[i].rc = 0;
      found++;
    } else if (rc == MEMCACHED_NOTFOUND) {
      it[i].rc = -ENOENT;
    } else {
      it[i].rc = mc_fail(x->mc, rc, msg, cap, "memcached_exist");
    }
  }
  return found;
}

static int mc_sync(void *st, char *msg, size_t cap) {
  (void)st, (void)msg, (void)cap;
  return 0; /* a put is complete when it returns; there is no disk */
}

static int mc_cold(void *st, char *msg, size_t cap) {
  (void)st;
  snprintf(msg, cap, "memcached keeps every block in memory: no cold read");
  return -ENOTSUP;
}

static int mc_clear(void *st, char *msg, size_t cap) {
  int err = 0;
  memcached_st *mc = mc_connect(st, msg, cap, &err);
  memcached_return_t rc;

  if (!mc)
    return err;
  rc = memcached_flush(mc, 0);
  err = rc == MEMCACHED_SUCCESS ? 0 : mc_fail(mc, rc, msg, cap, "flush_all");
  memcached_free(mc);
  return err;
}

static void mc_fini(void *st) {
  mc_store *s = st;

  if (!s)
    return;
  mc_stop(s);
  unlink(s->log);
  free(s);
}

const suite_adapter suite_memcached = {
    .name = "memcached",
    .kind = "memory",
    .init = mc_init,
    .version = mc_version,
    .open = mc_open,
    .close = mc_close,
    .put = mc_put,
    .get = mc_get,
    .contains = mc_contains,
    .sync = mc_sync,
    .cold = mc_cold,
    .clear = mc_clear,
    .fini = mc_fini,
};
