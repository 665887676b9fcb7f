/*
 * bench_server.c - `cascade bench server`: the daemon cascaded measured
 * against a real redis-server, in one run, with the same client and the
 * same values, plus cascaded's shared-memory path against memcpy.
 *
 * Servers.  The bench starts both itself (with servers.c), in a fresh
 * directory made with mkdtemp ($TMPDIR, else /tmp):
 *
 *   redis-server  (found on $PATH, or --redis PATH) --port P --bind
 *                 127.0.0.1 --save '' --appendonly no --protected-mode no
 *                 --maxmemory 0 --dir DIR: persistence off, its defaults
 *                 otherwise (one thread)
 *   cascaded      (next to this program, else on $PATH, or --cascaded PATH)
 *                 --port Q --bind 127.0.0.1 --unixsocket DIR/s
 *                 --dram.capacity SIZE, then every --set NAME=VALUE given
 *                 (as --NAME VALUE): its defaults otherwise (dedup on, so
 *                 every SET is hashed with SHA-256; Redis does not hash)
 *
 * P and Q are free loopback ports (asked of the kernel).  Each is waited
 * for with PING, stopped at the end with SHUTDOWN NOSAVE (SIGKILL if it has
 * not exited 10 s later) and reaped; on any error path it is killed; it also
 * dies with the bench (PR_SET_PDEATHSIG).  Their output goes to DIR/redis.log, DIR/cascaded.log.
 * Without redis-server, its rows are left out and the targets against it
 * are n/a; the exit status does not change.
 *
 * Rows.  For each value size and each connection count C:
 *
 *   redis_set, cascaded_set   SET key value, C connections over TCP
 *                             loopback, one thread each, pipelined
 *   redis_get, cascaded_get   GET key, the same way
 *   shm_lease                 C threads, each with its own cascade_client
 *                             on the Unix socket: cascade_client_get_batch
 *                             of a batch of keys (32 MiB of values, at
 *                             most 64: the blocks of a request) - one
 *                             round trip -, memcpy of each value into the
 *                             caller's buffer, release - so the bytes end
 *                             in the caller's memory, as after a Redis GET
 *   shm_get                   the same batches through
 *                             cascade_client_get_into: values found in the
 *                             daemon's shared-memory index are copied with
 *                             no request at all
 *   memcpy                    C threads copying the same values from a
 *                             private buffer into the same buffers, in
 *                             the same batches: the bound of shm_get
 *                             (C = 1: single-thread memcpy).  Each thread
 *                             has its own copy of its connection's values,
 *                             laid out like the arena, so the bytes read
 *                             are as many (and fit the caches as well) as
 *                             shm_get's
 *
 * Client.  The same for both servers.  By default (--client direct) a
 * connection is opened with hiredis (which sets TCP_NODELAY), and the timed
 * traffic is written and parsed by this file: a window of W commands is
 * sent with one sendmsg (SET: header, value straight from the value pool,
 * CRLF - no copy), then the W replies are read with a 256 KiB buffered
 * reader that receives a large value straight into the caller's buffer.
 * --client hiredis uses redisAppendCommand / redisGetReply for everything
 * instead (hiredis 0.14 reads 16 KiB per read() and copies a value twice,
 * so at 1 MiB and above it measures mostly the client).  W = 4 MiB of
 * values, at least 1, at most 64 commands.
 *
 * Keys and values.  Connection t owns K keys per size, K = max(4,
 * --per-conn bytes / value size) (fixed 28-byte names); C connections use
 * the keys of owners 0..C-1.  Values are windows of a seeded,
 * incompressible pool (splitmix64), chosen by (owner, key, version): every
 * SET writes a new version (so dedup never hits), and no byte is generated
 * in a timed region.  Per size: SET every key of every owner into both
 * servers (untimed), read every key back from both (and through shm) and
 * compare it in full, then the timed cells, then the full check again, then
 * FLUSHDB on both.
 *
 * Checks.  In the timed cells, every reply's type and length and three
 * 8-byte words of every value (first, last, one chosen by the op count) are
 * checked against the expected version; the untimed passes before and
 * after compare every key's value byte for byte.  A wrong byte, a missing
 * key or an error reply ends the run with exit status 1.
 *
 * Timing.  A cell: C threads start together (barrier) and run windows
 * until --seconds have passed (or --ops operations per connection); rate =
 * all operations / (last end - first start).  --repeat N runs every cell N
 * times, interleaved (all cells of a size, then again), and reports the
 * median; a ratio is the median of the per-repetition ratios (cascaded to
 * Redis in the same repetition), as in bench dram and bench disk.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hiredis.h>

#include "cli.h"

#define MAX_SIZES 16
#define MAX_CONNS 64
#define MAX_REPEAT 99
#define MIN_VALUE 64ull
#define MAX_VALUE (64ull << 20)
#define POOL_BYTES (64ull << 20) /* a power of two */
#define SEED 0x6361736361646532ull
#define WINDOW_BYTES (4ull << 20) /* values per pipelined window ... */
#define WINDOW_MAX 64             /* ... and commands, at most */
/* shm_get and memcpy take the blocks of a request at a time: 32 MiB of
 * values per cascade_client_get_batch (at most WINDOW_MAX), one round trip
 * for all of them.  The TCP cells keep 4 MiB windows: longer pipelines
 * only make the servers buffer more replies. */
#define SHM_WINDOW_BYTES (32ull << 20)
#define RBUF (256u << 10)         /* reader buffer of a connection */
#define RECV_DIRECT (64u << 10)   /* bulk tails this long: recv in place */
#define KEY_LEN 28
#define PATH_MAX_B 1024
#define ERR_MAX 1536

enum { SYS_REDIS, SYS_CASCADED, NSYS };
static const char *const sys_name[NSYS] = {"redis", "cascaded"};

enum {
  OP_REDIS_SET,
  OP_CASCADED_SET,
  OP_REDIS_GET,
  OP_CASCADED_GET,
  OP_SHM_LEASE,
  OP_SHM_GET,
  OP_MEMCPY,
  NOPS
};
static const char *const op_name[NOPS] = {"redis_set", "cascaded_set",
                                          "redis_get", "cascaded_get",
                                          "shm_lease", "shm_get",
                                          "memcpy"};

enum { K_SET, K_GET, K_SHM, K_MEMCPY };
static int op_kind(int op) {
  return op <= OP_CASCADED_SET   ? K_SET
         : op <= OP_CASCADED_GET ? K_GET
         : op <= OP_SHM_GET      ? K_SHM
                                 : K_MEMCPY;
}
/* The server an op talks to (memcpy: the versions cascaded holds). */
static int op_sys(int op) {
  return op == OP_REDIS_SET || op == OP_REDIS_GET ? SYS_REDIS : SYS_CASCADED;
}

enum { MODE_TIMED, MODE_LOAD, MODE_VERIFY };
enum { CLIENT_DIRECT, CLIENT_HIREDIS };


/* Per connection slot t: its connections and buffers. */
struct slot {
  redisContext *ctx[NSYS];
  cascade_client *shm;
  char *rbuf; /* reader (direct client) */
  size_t rpos, rlen;
  uint8_t *dst;  /* WINDOW values: the caller's buffer */
  uint8_t *priv; /* memcpy: every key's value, a private copy */
  char *cmd;     /* GET commands of a window */
  char (*hdr)[96]; /* SET headers of a window */
  struct iovec *iov;
  cascade_key *keys;
  cascade_lease *leases;
  cascade_get_item *items;
  uint64_t cursor[NOPS]; /* next key of each op's timed cells */
  uint32_t *ver[NSYS];   /* per key: the version each server holds */
};

struct result {
  int op, conns, present;
  uint64_t vs;
  double ops_per_sec, gbps, gbps_min, gbps_max, secs;
  uint64_t ops;
  double ratio_redis, ratio_memcpy; /* NAN where none */
  int has_target, met_redis, met_memcpy; /* 1 met, 0 missed, -1 n/a */
  double want_redis, want_memcpy;        /* 0: no such target */
};

struct bench {
  /* options */
  uint64_t sizes[MAX_SIZES];
  int nsizes;
  int conns[MAX_CONNS];
  int nconns, owners;
  double seconds;
  uint64_t ops; /* per connection per cell; 0 = --seconds */
  uint64_t per_conn;
  uint64_t capacity;
  int capacity_given;
  int repeat, json, keep, client;
  const char *redis_opt, *cascaded_opt;
  cli_common co;

  /* resources */
  char work[PATH_MAX_B];
  char sock[PATH_MAX_B + 32];
  cli_server srv[NSYS];
  int have_redis;
  uint8_t *pool;
  size_t pool_len;
  struct slot slot[MAX_CONNS];
  char (*keys)[32]; /* owners * nkeys */
  char cas_dedup[32], cas_policy[64], cas_threads[16], cas_cap[32];

  /* the size being measured */
  uint64_t vs, nkeys;
  size_t window;     /* TCP cells: commands per pipelined window */
  size_t shm_window; /* shm_get and memcpy: keys per batch */

  /* a cell */
  pthread_barrier_t barrier;
  int cell, ncells;

  struct result *res;
  int nres;
  char err[ERR_MAX];
};

struct worker {
  struct bench *b;
  int t, op, mode;
  pthread_t th;
  double t0, t1;
  uint64_t ops;
  int rc;
  char err[512];
};

void cli_bench_server_usage(FILE *f) {
  fprintf(
      f,
      "Usage: cascade bench server [--quick] [--json] [--sizes LIST] "
      "[--conns LIST]\n"
      "                            [--seconds S | --ops N] [--repeat N] "
      "[--keep]\n"
      "                            [--redis PATH] [--cascaded PATH] "
      "[--client direct|hiredis]\n"
      "                            [--per-conn SIZE] [--set NAME=VALUE]... "
      "[--dram SIZE]\n"
      "\n"
      "Measure the daemon cascaded against redis-server (both started by "
      "the bench on\n"
      "free loopback ports, persistence off), with the same client and the "
      "same values,\n"
      "for each value size and connection count:\n"
      "  redis_set, cascaded_set   SET over TCP loopback, one thread per "
      "connection,\n"
      "                            pipelined (target >= 1.0x redis below 1 "
      "MiB,\n"
      "                            >= 1.5x from 1 MiB)\n"
      "  redis_get, cascaded_get   GET, the same way (same targets)\n"
      "  shm_lease                 cascade_client_get_batch over the Unix "
      "socket (one\n"
      "                            round trip per batch), memcpy of each "
      "value into the\n"
      "                            caller's buffer, release (no target)\n"
      "  shm_get                   cascade_client_get_into: the same "
      "values copied into\n"
      "                            the caller's buffer, found through the "
      "daemon's\n"
      "                            shared-memory index (target >= 3x "
      "redis_get and\n"
      "                            >= 0.8x memcpy)\n"
      "  memcpy                    the same bytes copied from a private "
      "copy of the\n"
      "                            connection's values, one thread per "
      "connection: the\n"
      "                            bound of shm_get\n"
      "\n"
      "Options:\n"
      "  --sizes LIST     value sizes, 64 bytes to 64 MiB [4k,1m,16m; "
      "--quick: 4k,1m]\n"
      "  --conns LIST     connection counts [1,8; --quick: 1,2]\n"
      "  --seconds S      timed seconds per cell [1; --quick: 0.1]\n"
      "  --ops N          instead: operations per connection per cell\n"
      "  --repeat N       run every cell N times, interleaved; report the "
      "median [1]\n"
      "  --per-conn SIZE  bytes of keys each connection owns (at least 4 "
      "keys) [32m;\n"
      "                   --quick: 4m]\n"
      "  --client MODE    direct: hiredis connects, the bench writes and "
      "parses the\n"
      "                   pipelined traffic (values sent and received in "
      "place);\n"
      "                   hiredis: redisAppendCommand/redisGetReply "
      "[direct]\n"
      "  --redis PATH     redis-server to run [$PATH]; without one its rows "
      "are skipped\n"
      "  --cascaded PATH  cascaded to run [next to cascade, else $PATH]\n"
      "  --set NAME=VALUE a cascaded setting, passed as --NAME VALUE "
      "(repeatable;\n"
      "                   e.g. --set dedup=false); --dram SIZE: its DRAM "
      "[enough for\n"
      "                   the data, at least 1g]; --policy NAME\n"
      "  --keep           keep the work directory (server logs)\n"
      "  --quick          fewer sizes and connections, shorter cells\n"
      "  --json           one JSON object per line: a machine record, then "
      "results\n"
      "\n"
      "Values read back are checked (lengths and samples in the timed "
      "cells, every\n"
      "byte before and after them); wrong bytes, a missing key or an error "
      "reply end\n"
      "the run with exit status 1.  Missed targets do not change the exit "
      "status.\n");
}

/* ---- Values and keys ----------------------------------------------------- */

/* The bytes of version v of key i of owner t (vs bytes from here). */
static inline const uint8_t *value_of(const struct bench *b, int t, uint64_t i,
                                      uint32_t v) {
  uint64_t h = cli_mix64(((uint64_t)t << 56) ^ (i << 24) ^ v ^ b->vs);

  return b->pool + (h % (POOL_BYTES / 8)) * 8;
}

static inline const char *key_of(const struct bench *b, int t, uint64_t i) {
  return b->keys[(uint64_t)t * b->nkeys + i];
}

static inline uint64_t load64(const uint8_t *p) {
  uint64_t v;

  memcpy(&v, p, 8);
  return v;
}

/* Check a value read back against the expected bytes: three words, or
 * all of them. */
static int check_value(struct worker *w, const uint8_t *got, size_t len,
                       const uint8_t *want, uint64_t k, int full,
                       uint64_t i) {
  const struct bench *b = w->b;
  uint64_t nw = b->vs / 8, m = 1 + (k * 2654435761ull) % (nw - 1);

  if (len != b->vs) {
    snprintf(w->err, sizeof w->err,
             "key %" PRIu64 " of connection %d: %zu bytes, expected %" PRIu64,
             i, w->t, len, b->vs);
    return -EPROTO;
  }
  if (full ? memcmp(got, want, b->vs) != 0
           : load64(got) != load64(want) ||
                 load64(got + (nw - 1) * 8) != load64(want + (nw - 1) * 8) ||
                 load64(got + m * 8) != load64(want + m * 8)) {
    snprintf(w->err, sizeof w->err,
             "wrong bytes: key %" PRIu64 " of connection %d (%s check)", i,
             w->t, full ? "full" : "sampled");
    return CASCADE_ECORRUPT;
  }
  return 0;
}

/* ---- The direct RESP client ---------------------------------------------- */

static int send_iov(struct worker *w, int fd, struct iovec *iov, int n) {
  while (n > 0) {
    struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)n};
    ssize_t r = sendmsg(fd, &mh, MSG_NOSIGNAL);

    if (r < 0) {
      if (errno == EINTR) continue;
      snprintf(w->err, sizeof w->err, "send: %s", strerror(errno));
      return -errno;
    }
    while (n > 0 && (size_t)r >= iov->iov_len) {
      r -= (ssize_t)iov->iov_len;
      iov++;
      n--;
    }
    if (n > 0) {
      iov->iov_base = (char *)iov->iov_base + r;
      iov->iov_len -= (size_t)r;
    }
  }
  return 0;
}

static int recv_some(struct worker *w, int fd, void *p, size_t n, int all) {
  ssize_t r;

  do r = recv(fd, p, n, all ? MSG_WAITALL : 0);
  while (r < 0 && errno == EINTR);
  if (r > 0) return (int)(r > INT32_MAX ? INT32_MAX : r);
  snprintf(w->err, sizeof w->err, "recv: %s",
           r == 0                                       ? "connection closed"
           : errno == EAGAIN || errno == EWOULDBLOCK ? "timed out"
                                                     : strerror(errno));
  return r == 0 ? -ECONNRESET : -errno;
}

static int rd_fill(struct worker *w, struct slot *s, int fd) {
  int r;

  if (s->rpos == s->rlen) {
    s->rpos = s->rlen = 0;
  } else if (s->rpos > 0 && RBUF - s->rlen < 4096) {
    memmove(s->rbuf, s->rbuf + s->rpos, s->rlen - s->rpos);
    s->rlen -= s->rpos;
    s->rpos = 0;
  }
  if (s->rlen == RBUF) {
    snprintf(w->err, sizeof w->err, "reply line too long");
    return -EPROTO;
  }
  r = recv_some(w, fd, s->rbuf + s->rlen, RBUF - s->rlen, 0);
  if (r < 0) return r;
  s->rlen += (size_t)r;
  return 0;
}

/* The next reply line, without its CRLF (NUL-terminated in place). */
static int rd_line(struct worker *w, struct slot *s, int fd, char **line) {
  for (;;) {
    char *p = s->rbuf + s->rpos;
    char *e = s->rlen > s->rpos ? memchr(p, '\n', s->rlen - s->rpos) : NULL;

    if (e != NULL) {
      if (e == p || e[-1] != '\r') {
        snprintf(w->err, sizeof w->err, "malformed reply line");
        return -EPROTO;
      }
      e[-1] = '\0';
      *line = p;
      s->rpos += (size_t)(e + 1 - p);
      return 0;
    }
    int rc = rd_fill(w, s, fd);
    if (rc < 0) return rc;
  }
}

/* n bytes of the stream into dst: what is buffered, then straight from the
 * socket for a long tail. */
static int rd_bytes(struct worker *w, struct slot *s, int fd, uint8_t *dst,
                    size_t n) {
  while (n > 0) {
    size_t have = s->rlen - s->rpos;

    if (have > 0) {
      size_t c = have < n ? have : n;

      memcpy(dst, s->rbuf + s->rpos, c);
      s->rpos += c;
      dst += c;
      n -= c;
    } else if (n >= RECV_DIRECT) {
      int r = recv_some(w, fd, dst, n, 1);

      if (r < 0) return r;
      dst += r;
      n -= (size_t)r;
    } else {
      int rc = rd_fill(w, s, fd);
      if (rc < 0) return rc;
    }
  }
  return 0;
}

static int reply_error_line(struct worker *w, const char *line) {
  snprintf(w->err, sizeof w->err, "%s replied: %.300s",
           sys_name[op_sys(w->op)], line[0] == '-' ? line + 1 : line);
  return -EREMOTEIO;
}

static void make_window_keys(struct worker *w, uint64_t first, size_t n,
                             uint64_t *idx) {
  for (size_t j = 0; j < n; j++) idx[j] = (first + j) % w->b->nkeys;
}

static int direct_set(struct worker *w, struct slot *s, const uint64_t *idx,
                      size_t n) {
  struct bench *b = w->b;
  int sys = op_sys(w->op), fd = s->ctx[sys]->fd, rc;

  for (size_t j = 0; j < n; j++) {
    uint32_t v = ++s->ver[sys][idx[j]];
    int hl = snprintf(s->hdr[j], sizeof s->hdr[j],
                      "%s*3\r\n$3\r\nSET\r\n$%d\r\n%.*s\r\n$%" PRIu64 "\r\n",
                      j ? "\r\n" : "", KEY_LEN, KEY_LEN,
                      key_of(b, w->t, idx[j]), b->vs);

    s->iov[2 * j].iov_base = s->hdr[j];
    s->iov[2 * j].iov_len = (size_t)hl;
    s->iov[2 * j + 1].iov_base = (void *)value_of(b, w->t, idx[j], v);
    s->iov[2 * j + 1].iov_len = b->vs;
  }
  s->iov[2 * n].iov_base = "\r\n";
  s->iov[2 * n].iov_len = 2;
  if ((rc = send_iov(w, fd, s->iov, (int)(2 * n + 1))) != 0) return rc;
  for (size_t j = 0; j < n; j++) {
    char *l;

    if ((rc = rd_line(w, s, fd, &l)) != 0) return rc;
    if (strcmp(l, "+OK") != 0) return reply_error_line(w, l);
  }
  return 0;
}

static int direct_get(struct worker *w, struct slot *s, const uint64_t *idx,
                      size_t n, uint64_t k) {
  struct bench *b = w->b;
  int sys = op_sys(w->op), fd = s->ctx[sys]->fd, rc;
  size_t len = 0;
  struct iovec iov;

  for (size_t j = 0; j < n; j++)
    len += (size_t)sprintf(s->cmd + len, "*2\r\n$3\r\nGET\r\n$%d\r\n%.*s\r\n",
                           KEY_LEN, KEY_LEN, key_of(b, w->t, idx[j]));
  iov.iov_base = s->cmd;
  iov.iov_len = len;
  if ((rc = send_iov(w, fd, &iov, 1)) != 0) return rc;
  for (size_t j = 0; j < n; j++) {
    uint8_t *d = s->dst + j * b->vs;
    char *l, crlf[2];
    long long blen;

    if ((rc = rd_line(w, s, fd, &l)) != 0) return rc;
    if (l[0] != '$') return reply_error_line(w, l);
    blen = strtoll(l + 1, NULL, 10);
    if (blen < 0) {
      snprintf(w->err, sizeof w->err,
               "%s: key %" PRIu64 " of connection %d is missing (evicted? "
               "raise --dram)",
               sys_name[sys], idx[j], w->t);
      return -ENOENT;
    }
    if ((uint64_t)blen != b->vs) {
      snprintf(w->err, sizeof w->err,
               "%s: key %" PRIu64 " of connection %d: %lld bytes, expected "
               "%" PRIu64,
               sys_name[sys], idx[j], w->t, blen, b->vs);
      return -EPROTO;
    }
    if ((rc = rd_bytes(w, s, fd, d, b->vs)) != 0 ||
        (rc = rd_bytes(w, s, fd, (uint8_t *)crlf, 2)) != 0)
      return rc;
    if (crlf[0] != '\r' || crlf[1] != '\n') {
      snprintf(w->err, sizeof w->err, "malformed bulk reply");
      return -EPROTO;
    }
    rc = check_value(w, d, b->vs,
                     value_of(b, w->t, idx[j], s->ver[sys][idx[j]]), k + j,
                     w->mode == MODE_VERIFY, idx[j]);
    if (rc != 0) return rc;
  }
  return 0;
}

/* ---- The hiredis client -------------------------------------------------- */

static int hiredis_window(struct worker *w, struct slot *s,
                          const uint64_t *idx, size_t n, uint64_t k) {
  struct bench *b = w->b;
  int sys = op_sys(w->op), set = op_kind(w->op) == K_SET, rc = 0;
  redisContext *c = s->ctx[sys];

  for (size_t j = 0; j < n; j++) {
    const char *key = key_of(b, w->t, idx[j]);
    int r;

    if (set) {
      uint32_t v = ++s->ver[sys][idx[j]];

      r = redisAppendCommand(c, "SET %b %b", key, (size_t)KEY_LEN,
                             value_of(b, w->t, idx[j], v), (size_t)b->vs);
    } else {
      r = redisAppendCommand(c, "GET %b", key, (size_t)KEY_LEN);
    }
    if (r != REDIS_OK) {
      snprintf(w->err, sizeof w->err, "hiredis: %s", c->errstr);
      return -EIO;
    }
  }
  for (size_t j = 0; j < n; j++) {
    redisReply *r = NULL;

    if (redisGetReply(c, (void **)&r) != REDIS_OK || r == NULL) {
      snprintf(w->err, sizeof w->err, "hiredis: %s", c->errstr);
      return -EIO;
    }
    if (rc == 0 && r->type == REDIS_REPLY_ERROR) {
      rc = reply_error_line(w, r->str);
    } else if (rc == 0 && set) {
      if (r->type != REDIS_REPLY_STATUS || strcmp(r->str, "OK") != 0) {
        snprintf(w->err, sizeof w->err, "SET: unexpected reply");
        rc = -EPROTO;
      }
    } else if (rc == 0) {
      if (r->type == REDIS_REPLY_NIL) {
        snprintf(w->err, sizeof w->err,
                 "%s: key %" PRIu64 " of connection %d is missing",
                 sys_name[sys], idx[j], w->t);
        rc = -ENOENT;
      } else if (r->type != REDIS_REPLY_STRING) {
        snprintf(w->err, sizeof w->err, "GET: unexpected reply");
        rc = -EPROTO;
      } else {
        rc = check_value(w, (const uint8_t *)r->str, (size_t)r->len,
                         value_of(b, w->t, idx[j], s->ver[sys][idx[j]]),
                         k + j, w->mode == MODE_VERIFY, idx[j]);
      }
    }
    freeReplyObject(r);
  }
  return rc;
}

/* ---- shm and memcpy ------------------------------------------------------ */

/* shm_get: cascade_client_get_into, the values copied into the caller's
 * buffers (through the shared-memory index, or leased and copied). */
static int shm_into(struct worker *w, struct slot *s, const uint64_t *idx,
                    size_t n, uint64_t k) {
  struct bench *b = w->b;
  int rc = 0, got;

  for (size_t j = 0; j < n; j++) {
    s->items[j].key = s->keys[j].key;
    s->items[j].klen = s->keys[j].len;
    s->items[j].buf = s->dst + j * b->vs;
    s->items[j].cap = b->vs;
  }
  got = cascade_client_get_into(s->shm, s->items, n);
  if (got < 0) {
    snprintf(w->err, sizeof w->err, "cascade_client_get_into: %s%s%s",
             cascade_strerror(got), cascade_client_error(s->shm)[0] ? ": " : "",
             cascade_client_error(s->shm));
    return got;
  }
  for (size_t j = 0; j < n && rc == 0; j++) {
    cascade_get_item *it = &s->items[j];
    if (it->rc == -ENOENT) {
      snprintf(w->err, sizeof w->err,
               "shm: key %" PRIu64 " of connection %d is missing", idx[j],
               w->t);
      rc = -ENOENT;
    } else if (it->rc != 0 || it->vlen != b->vs) {
      snprintf(w->err, sizeof w->err,
               "shm: key %" PRIu64 " of connection %d: %s, %zu bytes",
               idx[j], w->t, cascade_strerror(it->rc), it->vlen);
      rc = -EPROTO;
    } else {
      rc = check_value(w, it->buf, b->vs,
                       value_of(b, w->t, idx[j], s->ver[SYS_CASCADED][idx[j]]),
                       k + j, w->mode == MODE_VERIFY, idx[j]);
    }
  }
  return rc;
}

static int shm_window(struct worker *w, struct slot *s, const uint64_t *idx,
                      size_t n, uint64_t k) {
  struct bench *b = w->b;
  int rc, found;

  for (size_t j = 0; j < n; j++) {
    s->keys[j].key = key_of(b, w->t, idx[j]);
    s->keys[j].len = KEY_LEN;
  }
  if (w->op == OP_SHM_GET) return shm_into(w, s, idx, n, k);
  found = cascade_client_get_batch(s->shm, s->keys, n, s->leases);
  if (found < 0) {
    snprintf(w->err, sizeof w->err, "cascade_client_get_batch: %s%s%s",
             cascade_strerror(found), cascade_client_error(s->shm)[0] ? ": " : "",
             cascade_client_error(s->shm));
    return found;
  }
  rc = 0;
  for (size_t j = 0; j < n; j++) {
    cascade_lease *l = &s->leases[j];
    uint8_t *d = s->dst + j * b->vs;

    if (rc == 0 && l->data == NULL) {
      snprintf(w->err, sizeof w->err,
               "shm: key %" PRIu64 " of connection %d is missing", idx[j],
               w->t);
      rc = -ENOENT;
    } else if (rc == 0 && l->len != b->vs) {
      rc = check_value(w, l->data, l->len, NULL, 0, 0, idx[j]);
    } else if (rc == 0) {
      memcpy(d, l->data, b->vs);
      rc = check_value(w, d, b->vs,
                       value_of(b, w->t, idx[j], s->ver[SYS_CASCADED][idx[j]]),
                       k + j, w->mode == MODE_VERIFY, idx[j]);
    }
    cascade_client_release(s->shm, l);
  }
  return rc;
}

static int memcpy_window(struct worker *w, struct slot *s,
                         const uint64_t *idx, size_t n, uint64_t k) {
  struct bench *b = w->b;

  for (size_t j = 0; j < n; j++) {
    const uint8_t *src = s->priv + idx[j] * b->vs;
    uint8_t *d = s->dst + j * b->vs;
    int rc;

    memcpy(d, src, b->vs);
    rc = check_value(w, d, b->vs,
                     value_of(b, w->t, idx[j], s->ver[SYS_CASCADED][idx[j]]),
                     k + j, 0, idx[j]);
    if (rc != 0) return rc;
  }
  return 0;
}

/* ---- A cell --------------------------------------------------------------- */

static void *worker_main(void *arg) {
  struct worker *w = arg;
  struct bench *b = w->b;
  struct slot *s = &b->slot[w->t];
  int kind = op_kind(w->op);
  uint64_t local = 0, done = 0, idx[WINDOW_MAX];
  uint64_t *cur = w->mode == MODE_TIMED ? &s->cursor[w->op] : &local;
  double deadline;

  if (kind == K_MEMCPY) /* untimed: the values cascaded holds now */
    for (uint64_t i = 0; i < b->nkeys; i++)
      memcpy(s->priv + i * b->vs,
             value_of(b, w->t, i, s->ver[SYS_CASCADED][i]), b->vs);
  pthread_barrier_wait(&b->barrier);
  w->t0 = cli_now();
  deadline = w->t0 + b->seconds;
  for (;;) {
    size_t n = kind == K_SHM || kind == K_MEMCPY ? b->shm_window : b->window;
    int rc;

    if (w->mode != MODE_TIMED) {
      if (done >= b->nkeys) break;
      if (n > b->nkeys - done) n = b->nkeys - done;
    } else if (b->ops) {
      if (done >= b->ops) break;
      if (n > b->ops - done) n = b->ops - done;
    } else if (done > 0 && cli_now() >= deadline) {
      break;
    }
    make_window_keys(w, *cur, n, idx);
    if (kind == K_SHM)
      rc = shm_window(w, s, idx, n, done);
    else if (kind == K_MEMCPY)
      rc = memcpy_window(w, s, idx, n, done);
    else if (b->client == CLIENT_HIREDIS)
      rc = hiredis_window(w, s, idx, n, done);
    else if (kind == K_SET)
      rc = direct_set(w, s, idx, n);
    else
      rc = direct_get(w, s, idx, n, done);
    if (rc != 0) {
      w->rc = rc;
      break;
    }
    *cur += n;
    done += n;
  }
  w->t1 = cli_now();
  w->ops = done;
  return NULL;
}

/*
 * Run op on connections 0..conns-1, one thread each.  Returns 0 with the
 * rate in *ops_per_sec (and the span in *secs, ops in *ops), or an error
 * with the message in b->err.
 */
static int run_cell(struct bench *b, int op, int conns, int mode,
                    double *ops_per_sec, double *secs, uint64_t *ops) {
  struct worker w[MAX_CONNS];
  double t0 = INFINITY, t1 = 0;
  uint64_t total = 0;
  int started = 0, rc = 0;

  if (pthread_barrier_init(&b->barrier, NULL, (unsigned)conns) != 0) {
    snprintf(b->err, sizeof b->err, "pthread_barrier_init failed");
    return -ENOMEM;
  }
  memset(w, 0, sizeof w);
  for (int t = 0; t < conns; t++) {
    w[t].b = b;
    w[t].t = t;
    w[t].op = op;
    w[t].mode = mode;
  }
  /* threads 1.. are started, thread 0's work runs here */
  for (int t = 1; t < conns; t++) {
    if (pthread_create(&w[t].th, NULL, worker_main, &w[t]) != 0) {
      /* cannot happen in practice; the barrier would wait forever */
      snprintf(b->err, sizeof b->err, "pthread_create failed");
      abort();
    }
    started++;
  }
  worker_main(&w[0]);
  for (int t = 1; t <= started; t++) pthread_join(w[t].th, NULL);
  pthread_barrier_destroy(&b->barrier);
  for (int t = 0; t < conns; t++) {
    if (w[t].rc != 0 && rc == 0) {
      rc = w[t].rc;
      snprintf(b->err, sizeof b->err, "%s", w[t].err);
    }
    if (w[t].t0 < t0) t0 = w[t].t0;
    if (w[t].t1 > t1) t1 = w[t].t1;
    total += w[t].ops;
  }
  if (rc == 0) {
    *secs = t1 > t0 ? t1 - t0 : 1e-9;
    *ops = total;
    *ops_per_sec = (double)total / *secs;
  }
  return rc;
}

/* ---- Servers -------------------------------------------------------------- */

/* Start a server and wait until it answers PING. */
static int start_server(struct bench *b, int sys, char **argv) {
  return cli_server_start(&b->srv[sys], argv, b->err, sizeof b->err);
}

/* SHUTDOWN NOSAVE, wait; SIGKILL if it does not go.  Returns 0 if it exited
 * by itself with status 0. */
static int stop_server(cli_server *s) {
  int rc = cli_server_stop(s);

  if (rc == -ETIMEDOUT)
    cli_err("bench server: %s did not stop in %d s: killed", s->path,
            CLI_SERVER_STOP_S);
  return rc == 0 ? 0 : -1;
}

static int admin_ok(struct bench *b, int sys, const char *cmd) {
  redisReply *r = redisCommand(b->srv[sys].admin, cmd);
  int ok = r != NULL && r->type == REDIS_REPLY_STATUS;

  if (!ok)
    snprintf(b->err, sizeof b->err, "%s: %s: %s", sys_name[sys], cmd,
             r == NULL                          ? b->srv[sys].admin->errstr
             : r->type == REDIS_REPLY_ERROR ? r->str
                                            : "unexpected reply");
  if (r != NULL) freeReplyObject(r);
  return ok ? 0 : -1;
}

static int start_redis(struct bench *b) {
  cli_server *s = &b->srv[SYS_REDIS];
  char port[16];
  char *argv[] = {s->path,       "--port",        port,
                  "--bind",      "127.0.0.1",     "--save",
                  "",            "--appendonly",  "no",
                  "--protected-mode", "no",       "--maxmemory",
                  "0",           "--dir",         b->work,
                  NULL};

  for (int attempt = 0; attempt < 3; attempt++) {
    s->port = cli_free_port();
    snprintf(port, sizeof port, "%d", s->port);
    if (start_server(b, SYS_REDIS, argv) == 0) {
      cli_redis_info(s->admin, "redis_version", s->version, sizeof s->version);
      return 0;
    }
  }
  return -1;
}

static int start_cascaded(struct bench *b) {
  cli_server *s = &b->srv[SYS_CASCADED];
  char port[16], cap[32], names[CLI_MAX_SETTINGS][CLI_MAX_SETTING_NAME + 2];
  char *argv[16 + 2 * CLI_MAX_SETTINGS];
  int n = 0;

  argv[n++] = s->path;
  argv[n++] = "--port";
  argv[n++] = port;
  argv[n++] = "--bind";
  argv[n++] = "127.0.0.1";
  argv[n++] = "--unixsocket";
  argv[n++] = b->sock;
  argv[n++] = "--dram.capacity";
  argv[n++] = cap;
  snprintf(cap, sizeof cap, "%" PRIu64, b->capacity);
  for (size_t k = 0; k < b->co.nset; k++) {
    if (strcmp(b->co.set[k].name, "dram.capacity") == 0) continue;
    snprintf(names[k], sizeof names[k], "--%s", b->co.set[k].name);
    argv[n++] = names[k];
    argv[n++] = (char *)b->co.set[k].value;
  }
  argv[n] = NULL;
  for (int attempt = 0; attempt < 3; attempt++) {
    s->port = cli_free_port();
    snprintf(port, sizeof port, "%d", s->port);
    unlink(b->sock);
    if (start_server(b, SYS_CASCADED, argv) == 0) {
      cli_redis_info(s->admin, "cascade_version", s->version, sizeof s->version);
      cli_redis_config_get(s->admin, "dedup", b->cas_dedup, sizeof b->cas_dedup);
      cli_redis_config_get(s->admin, "policy", b->cas_policy, sizeof b->cas_policy);
      cli_redis_config_get(s->admin, "threads", b->cas_threads, sizeof b->cas_threads);
      cli_redis_config_get(s->admin, "dram.capacity", b->cas_cap, sizeof b->cas_cap);
      return 0;
    }
  }
  return -1;
}

/* The path of cascaded: --cascaded, else next to this program, else $PATH. */
static int find_cascaded(struct bench *b, char *out, size_t cap) {
  return cli_find_cascaded(b->cascaded_opt, out, cap);
}

/* ---- Connections and buffers --------------------------------------------- */

static int open_connections(struct bench *b) {
  for (int t = 0; t < b->owners; t++) {
    struct slot *s = &b->slot[t];
    int rc;

    for (int sys = 0; sys < NSYS; sys++) {
      if (sys == SYS_REDIS && !b->have_redis) continue;
      s->ctx[sys] = cli_connect_tcp(b->srv[sys].port, 5);
      if (s->ctx[sys] == NULL) {
        snprintf(b->err, sizeof b->err, "cannot connect to %s on port %d",
                 sys_name[sys], b->srv[sys].port);
        return -1;
      }
    }
    rc = cascade_client_connect(b->sock, NULL, NULL, &s->shm);
    if (rc != 0) {
      snprintf(b->err, sizeof b->err, "cascade_client_connect(%s): %s",
               b->sock, cascade_strerror(rc));
      return -1;
    }
    s->rbuf = malloc(RBUF);
    s->cmd = malloc(WINDOW_MAX * 64);
    s->hdr = malloc(WINDOW_MAX * sizeof *s->hdr);
    s->iov = malloc((2 * WINDOW_MAX + 1) * sizeof *s->iov);
    s->keys = malloc(WINDOW_MAX * sizeof *s->keys);
    s->leases = calloc(WINDOW_MAX, sizeof *s->leases);
    s->items = calloc(WINDOW_MAX, sizeof *s->items);
    if (!s->rbuf || !s->cmd || !s->hdr || !s->iov || !s->keys || !s->leases ||
        !s->items) {
      snprintf(b->err, sizeof b->err, "out of memory");
      return -1;
    }
  }
  return 0;
}

static size_t dst_bytes(const struct bench *b);

static void free_size(struct bench *b) {
  for (int t = 0; t < b->owners; t++) {
    struct slot *s = &b->slot[t];

    if (s->dst != NULL) munmap(s->dst, dst_bytes(b));
    s->dst = NULL;
    if (s->priv != NULL) munmap(s->priv, (size_t)(b->nkeys * b->vs));
    s->priv = NULL;
    for (int sys = 0; sys < NSYS; sys++) {
      free(s->ver[sys]);
      s->ver[sys] = NULL;
    }
  }
  free(b->keys);
  b->keys = NULL;
}

static void cleanup(struct bench *b) {
  free_size(b);
  for (int t = 0; t < MAX_CONNS; t++) {
    struct slot *s = &b->slot[t];

    for (int sys = 0; sys < NSYS; sys++)
      if (s->ctx[sys] != NULL) redisFree(s->ctx[sys]);
    cascade_client_close(s->shm);
    free(s->rbuf);
    free(s->cmd);
    free(s->hdr);
    free(s->iov);
    free(s->keys);
    free(s->leases);
    free(s->items);
    memset(s, 0, sizeof *s);
  }
  for (int sys = 0; sys < NSYS; sys++) cli_server_kill(&b->srv[sys]);
  if (b->pool != NULL) munmap(b->pool, b->pool_len);
  b->pool = NULL;
  if (b->work[0] != '\0' && !b->keep) {
    DIR *d = opendir(b->work);
    struct dirent *e;

    while (d != NULL && (e = readdir(d)) != NULL) {
      char p[PATH_MAX_B + 300];

      if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
        continue;
      snprintf(p, sizeof p, "%s/%s", b->work, e->d_name);
      unlink(p);
    }
    if (d != NULL) closedir(d);
    rmdir(b->work);
  }
}

static uint64_t keys_per_owner(const struct bench *b, uint64_t vs) {
  uint64_t k = b->per_conn / vs;

  return k < 4 ? 4 : k;
}

static size_t window_bytes_of(uint64_t bytes, uint64_t vs) {
  uint64_t w = bytes / vs;

  return w < 1 ? 1 : w > WINDOW_MAX ? WINDOW_MAX : (size_t)w;
}

static size_t window_of(uint64_t vs) {
  return window_bytes_of(WINDOW_BYTES, vs);
}

/* Bytes of one connection's destination buffer: the larger window. */
static size_t dst_bytes(const struct bench *b) {
  size_t w = b->window > b->shm_window ? b->window : b->shm_window;
  return w * b->vs;
}

static int setup_size(struct bench *b, uint64_t vs) {
  b->vs = vs;
  b->nkeys = keys_per_owner(b, vs);
  b->window = window_of(vs);
  b->shm_window = window_bytes_of(SHM_WINDOW_BYTES, vs);
  b->keys = malloc((size_t)(b->owners * b->nkeys) * sizeof *b->keys);
  if (b->keys == NULL) goto oom;
  for (int t = 0; t < b->owners; t++)
    for (uint64_t i = 0; i < b->nkeys; i++) {
      char *k = b->keys[(uint64_t)t * b->nkeys + i];

      snprintf(k, 32, "cbs:%08x:%02x:%012llx", (unsigned)(vs & 0xffffffffu),
               (unsigned)(t & 0xff), (unsigned long long)(i & 0xffffffffffffull));
    }
  for (int t = 0; t < b->owners; t++) {
    struct slot *s = &b->slot[t];
    void *p = mmap(NULL, dst_bytes(b), PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

    if (p == MAP_FAILED) goto oom;
    memset(p, 0, dst_bytes(b)); /* pre-fault */
    s->dst = p;
    p = mmap(NULL, (size_t)(b->nkeys * vs), PROT_READ | PROT_WRITE,
             MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) goto oom;
    s->priv = p;
    for (int sys = 0; sys < NSYS; sys++) {
      s->ver[sys] = calloc(b->nkeys, sizeof(uint32_t));
      if (s->ver[sys] == NULL) goto oom;
    }
    memset(s->cursor, 0, sizeof s->cursor);
  }
  return 0;
oom:
  snprintf(b->err, sizeof b->err, "out of memory for value size %" PRIu64, vs);
  return -ENOMEM;
}

/* ---- Reporting ------------------------------------------------------------ */

static void set_target(struct result *r, int have_redis) {
  r->has_target = 0;
  r->met_redis = r->met_memcpy = -1;
  r->want_redis = r->want_memcpy = 0;
  if (r->op == OP_CASCADED_SET || r->op == OP_CASCADED_GET) {
    r->has_target = 1;
    r->want_redis = r->vs >= (1u << 20) ? 1.5 : 1.0;
  } else if (r->op == OP_SHM_GET) { /* shm_lease: no target of its own */
    r->has_target = 1;
    r->want_redis = 3.0;
    r->want_memcpy = 0.8;
    r->met_memcpy = r->ratio_memcpy >= r->want_memcpy;
  }
  if (r->want_redis > 0 && have_redis && isfinite(r->ratio_redis))
    r->met_redis = r->ratio_redis >= r->want_redis;
}

static void json_result(const struct bench *b, const struct result *r) {
  printf("{\"type\":\"result\",\"op\":");
  cli_json_str(stdout, op_name[r->op]);
  printf(",\"system\":");
  cli_json_str(stdout, r->op == OP_MEMCPY ? "memcpy"
                       : r->op == OP_SHM_GET   ? "cascaded-shm"
                       : r->op == OP_SHM_LEASE ? "cascaded-shm-lease"
                                             : sys_name[op_sys(r->op)]);
  printf(",\"value_bytes\":%" PRIu64 ",\"conns\":%d,\"keys_per_conn\":%" PRIu64
         ",\"pipeline\":%zu,\"repeat\":%d,\"gbps\":",
         r->vs, r->conns, keys_per_owner(b, r->vs), window_of(r->vs),
         b->repeat);
  cli_json_num(stdout, r->gbps);
  printf(",\"gbps_min\":");
  cli_json_num(stdout, r->gbps_min);
  printf(",\"gbps_max\":");
  cli_json_num(stdout, r->gbps_max);
  printf(",\"ops_per_sec\":");
  cli_json_num(stdout, r->ops_per_sec);
  printf(",\"timed_ops\":%" PRIu64 ",\"seconds\":", r->ops);
  cli_json_num(stdout, r->secs);
  printf(",\"ratio_to_redis\":");
  cli_json_num(stdout, r->op == OP_REDIS_SET || r->op == OP_REDIS_GET
                           ? 1.0
                           : r->ratio_redis);
  printf(",\"ratio_to_memcpy\":");
  cli_json_num(stdout, r->op == OP_MEMCPY ? 1.0 : r->ratio_memcpy);
  if (r->has_target) {
    char t[96];
    int met;

    if (r->want_memcpy > 0)
      snprintf(t, sizeof t, "ratio_to_redis>=%g && ratio_to_memcpy>=%g",
               r->want_redis, r->want_memcpy);
    else
      snprintf(t, sizeof t, "ratio_to_redis>=%g", r->want_redis);
    met = r->met_redis == 0 || r->met_memcpy == 0 ? 0
          : r->met_redis < 0 && r->met_memcpy < 0 ? -1
                                                  : 1;
    printf(",\"target\":");
    cli_json_str(stdout, t);
    printf(",\"target_met\":");
    cli_json_met(stdout, met);
    printf(",\"target_redis_met\":");
    cli_json_met(stdout, r->met_redis);
    if (r->want_memcpy > 0) {
      printf(",\"target_memcpy_met\":");
      cli_json_met(stdout, r->met_memcpy);
    }
  } else {
    printf(",\"target\":null,\"target_met\":null");
  }
  printf("}\n");
  fflush(stdout);
}

static void print_table(const struct bench *b) {
  static const char *const hd[8] = {"op",      "value",   "conns",
                                    "GB/s",    "ops/s",   "x redis",
                                    "x memcpy", "target"};
  cli_table *t = cli_table_new(8, hd, "lrrrrrrl");
  int met = 0, targets = 0;
  const struct result *prev = NULL;

  if (t == NULL) return;
  for (int i = 0; i < b->nres; i++) {
    const struct result *r = &b->res[i];
    char sz[32], cn[16], g[32], o[32], rr[32], rm[32], tg[128];
    const char *cells[8];

    if (!r->present) continue;
    if (prev != NULL && (r->vs != prev->vs || r->conns != prev->conns))
      cli_table_row(t, NULL);
    prev = r;
    snprintf(cn, sizeof cn, "%d", r->conns);
    cells[0] = op_name[r->op];
    cells[1] = cli_fmt_size(r->vs, sz, sizeof sz);
    cells[2] = cn;
    cells[3] = cli_fmt_rate(r->gbps, g, sizeof g);
    cells[4] = cli_fmt_count((uint64_t)(r->ops_per_sec + 0.5), o, sizeof o);
    cells[5] = r->op == OP_MEMCPY ? ""
               : r->op == OP_REDIS_SET || r->op == OP_REDIS_GET
                   ? "1.00"
                   : cli_fmt_rate(r->ratio_redis, rr, sizeof rr);
    cells[6] = op_kind(r->op) == K_SHM
                   ? cli_fmt_rate(r->ratio_memcpy, rm, sizeof rm)
               : r->op == OP_MEMCPY ? "1.00"
                                    : "";
    tg[0] = '\0';
    if (r->has_target) {
      if (r->want_memcpy > 0)
        snprintf(tg, sizeof tg, ">= %gx redis %s, >= %gx memcpy %s",
                 r->want_redis, cli_met_text(r->met_redis), r->want_memcpy,
                 cli_met_text(r->met_memcpy));
      else
        snprintf(tg, sizeof tg, ">= %.1fx redis %s", r->want_redis,
                 cli_met_text(r->met_redis));
      targets += (r->met_redis >= 0) + (r->met_memcpy >= 0);
      met += (r->met_redis > 0) + (r->met_memcpy > 0);
    }
    cells[7] = tg;
    cli_table_row(t, cells);
  }
  cli_table_print(t, stdout, "");
  cli_table_free(t);
  printf("\ntargets met: %d of %d%s\n", met, targets,
         b->have_redis ? "" : " (targets against redis: n/a, no redis-server)");
}

static void print_header(const struct bench *b, const cli_machine *m) {
  char mem[32], cap[32], pc[32];
  const cli_server *r = &b->srv[SYS_REDIS], *c = &b->srv[SYS_CASCADED];

  if (b->json) {
    printf("{\"type\":\"machine\",\"cpu_model\":");
    cli_json_str(stdout, m->cpu);
    printf(",\"cores\":%ld,\"mem_total_bytes\":%" PRIu64 ",\"kernel\":",
           m->cores, m->mem);
    cli_json_str(stdout, m->kernel);
    printf(",\"cascade_version\":");
    cli_json_str(stdout, cascade_version());
    printf(",\"redis_version\":");
    if (b->have_redis)
      cli_json_str(stdout, r->version);
    else
      fputs("null", stdout);
    printf(",\"redis_path\":");
    if (b->have_redis)
      cli_json_str(stdout, r->path);
    else
      fputs("null", stdout);
    printf(",\"cascaded_version\":");
    cli_json_str(stdout, c->version);
    printf(",\"cascaded_path\":");
    cli_json_str(stdout, c->path);
    printf(",\"cascaded_dedup\":");
    cli_json_str(stdout, b->cas_dedup);
    printf(",\"cascaded_policy\":");
    cli_json_str(stdout, b->cas_policy);
    printf(",\"cascaded_threads\":");
    cli_json_str(stdout, b->cas_threads);
    printf(",\"cascaded_dram_capacity\":");
    cli_json_str(stdout, b->cas_cap);
    printf(",\"cascaded_settings\":[");
    for (size_t k = 0; k < b->co.nset; k++) {
      char s[CLI_MAX_SETTING_NAME + 512];

      snprintf(s, sizeof s, "%s=%s", b->co.set[k].name, b->co.set[k].value);
      if (k) putchar(',');
      cli_json_str(stdout, s);
    }
    printf("],\"client\":");
    cli_json_str(stdout, b->client == CLIENT_HIREDIS ? "hiredis" : "direct");
    printf(",\"hiredis\":\"%d.%d.%d\",\"seconds_per_cell\":", HIREDIS_MAJOR,
           HIREDIS_MINOR, HIREDIS_PATCH);
    cli_json_num(stdout, b->ops ? NAN : b->seconds);
    printf(",\"ops_per_conn\":%" PRIu64 ",\"repeat\":%d,\"per_conn_bytes\":%"
           PRIu64 ",\"window_bytes\":%llu,\"window_max\":%d}\n",
           b->ops, b->repeat, b->per_conn, (unsigned long long)WINDOW_BYTES,
           WINDOW_MAX);
    fflush(stdout);
    return;
  }
  printf("cascade bench server: cascade %s, hiredis %d.%d.%d\n",
         cascade_version(), HIREDIS_MAJOR, HIREDIS_MINOR, HIREDIS_PATCH);
  printf("machine:  %s, %ld cores, RAM %s, %s\n", m->cpu, m->cores,
         cli_fmt_size(m->mem, mem, sizeof mem), m->kernel);
  if (b->have_redis)
    printf("redis:    %s %s on 127.0.0.1:%d; --save '' --appendonly no "
           "--maxmemory 0, its defaults otherwise\n",
           r->path, r->version, r->port);
  else
    printf("redis:    not found (--redis PATH): its rows are left out, "
           "targets against it n/a\n");
  printf("cascaded: %s %s on 127.0.0.1:%d and %s; threads %s, dram.capacity "
         "%s, dedup %s, policy %s",
         c->path, c->version, c->port, b->sock, b->cas_threads,
         b->cas_cap[0] >= '0' && b->cas_cap[0] <= '9'
             ? cli_fmt_size(strtoull(b->cas_cap, NULL, 10), cap, sizeof cap)
             : b->cas_cap,
         b->cas_dedup, b->cas_policy);
  if (b->co.nset > 0) {
    printf("; --set");
    for (size_t k = 0; k < b->co.nset; k++)
      printf(" %s=%s", b->co.set[k].name, b->co.set[k].value);
  }
  printf("\n");
  printf("client:   %s; TCP loopback, one thread per connection, pipelined "
         "(4 MiB of values,\n"
         "          1 to %d commands per window); each connection owns "
         "max(4, %s / value) keys;\n"
         "          shm_lease, shm_get and memcpy: 32 MiB of values per "
         "batch, 1 to %d keys\n",
         b->client == CLIENT_HIREDIS
             ? "hiredis (redisAppendCommand / redisGetReply)"
             : "direct (hiredis connects; values sent and received in place)",
         WINDOW_MAX, cli_fmt_size(b->per_conn, pc, sizeof pc), WINDOW_MAX);
  if (b->ops)
    printf("method:   %" PRIu64 " ops per connection per cell, %s\n", b->ops,
           b->repeat > 1 ? "median of --repeat runs, interleaved"
                         : "one run per cell");
  else
    printf("method:   %.3g s per cell, %s\n", b->seconds,
           b->repeat > 1 ? "median of --repeat runs, interleaved"
                         : "one run per cell");
  printf("checks:   timed: every length and 3 words of every value; every "
         "byte of every key\n"
         "          before and after the timed cells\n\n");
  fflush(stdout);
}

/* ---- One size -------------------------------------------------------------- */

static int op_present(const struct bench *b, int op) {
  return b->have_redis || op_sys(op) != SYS_REDIS || op == OP_MEMCPY ||
         op_kind(op) == K_SHM;
}

/* One untimed pass of op over every key of every owner. */
static int pass(struct bench *b, int op, int mode, const char *what) {
  double r, s;
  uint64_t n;
  char sz[32], msg[128];

  snprintf(msg, sizeof msg, "%s %s: %s", op_name[op],
           cli_fmt_size(b->vs, sz, sizeof sz), what);
  cli_progress(b->cell, b->ncells, msg);
  return run_cell(b, op, b->owners, mode, &r, &s, &n);
}

static int check_all(struct bench *b, const char *what) {
  static const int ops[4] = {OP_REDIS_GET, OP_CASCADED_GET, OP_SHM_LEASE,
                             OP_SHM_GET};

  for (int k = 0; k < 4; k++)
    if (op_present(b, ops[k]) && pass(b, ops[k], MODE_VERIFY, what) != 0)
      return -1;
  return 0;
}

static int run_size(struct bench *b, int si) {
  uint64_t vs = b->sizes[si];
  int nc = b->nconns, base = b->nres;
  double(*rate)[MAX_REPEAT] = NULL, (*secs)[MAX_REPEAT] = NULL;
  uint64_t(*ops)[MAX_REPEAT] = NULL;
  char sz[32];
  int rc = -1;

  cli_fmt_size(vs, sz, sizeof sz);
  rate = calloc((size_t)nc * NOPS, sizeof *rate);
  secs = calloc((size_t)nc * NOPS, sizeof *secs);
  ops = calloc((size_t)nc * NOPS, sizeof *ops);
  if (rate == NULL || secs == NULL || ops == NULL) {
    snprintf(b->err, sizeof b->err, "out of memory");
    goto out;
  }
  if (setup_size(b, vs) != 0) goto out;
  for (int sys = 0; sys < NSYS; sys++)
    if ((sys != SYS_REDIS || b->have_redis) && admin_ok(b, sys, "FLUSHDB"))
      goto out;
  if ((b->have_redis && pass(b, OP_REDIS_SET, MODE_LOAD, "load") != 0) ||
      pass(b, OP_CASCADED_SET, MODE_LOAD, "load") != 0 ||
      check_all(b, "check every byte") != 0)
    goto out;

  for (int rep = 0; rep < b->repeat; rep++)
    for (int ci = 0; ci < nc; ci++)
      for (int op = 0; op < NOPS; op++) {
        int cell = ci * NOPS + op;
        char what[128];

        if (!op_present(b, op)) continue;
        if (b->repeat > 1)
          snprintf(what, sizeof what, "%s %s x%d (run %d/%d)", op_name[op],
                   sz, b->conns[ci], rep + 1, b->repeat);
        else
          snprintf(what, sizeof what, "%s %s x%d", op_name[op], sz,
                   b->conns[ci]);
        cli_progress(++b->cell, b->ncells, what);
        if (run_cell(b, op, b->conns[ci], MODE_TIMED, &rate[cell][rep],
                     &secs[cell][rep], &ops[cell][rep]) != 0) {
          char e[ERR_MAX];

          memcpy(e, b->err, sizeof e);
          snprintf(b->err, sizeof b->err, "%.120s: %.1300s", what, e);
          goto out;
        }
      }
  if (check_all(b, "check every byte after the trials") != 0) goto out;
  for (int sys = 0; sys < NSYS; sys++)
    if ((sys != SYS_REDIS || b->have_redis) && admin_ok(b, sys, "FLUSHDB"))
      goto out;

  for (int ci = 0; ci < nc; ci++)
    for (int op = 0; op < NOPS; op++) {
      int cell = ci * NOPS + op, ref = -1;
      struct result *r = &b->res[b->nres++];
      double g[MAX_REPEAT], rr[MAX_REPEAT], rm[MAX_REPEAT], s[MAX_REPEAT];
      double o[MAX_REPEAT];

      memset(r, 0, sizeof *r);
      r->op = op;
      r->vs = vs;
      r->conns = b->conns[ci];
      r->present = op_present(b, op);
      r->ratio_redis = r->ratio_memcpy = NAN;
      if (!r->present) continue;
      if (op == OP_CASCADED_SET) ref = OP_REDIS_SET;
      if (op == OP_CASCADED_GET || op_kind(op) == K_SHM) ref = OP_REDIS_GET;
      for (int k = 0; k < b->repeat; k++) {
        o[k] = rate[cell][k];
        g[k] = rate[cell][k] * (double)vs / 1e9;
        s[k] = secs[cell][k];
        r->ops += ops[cell][k];
        if (ref >= 0 && b->have_redis)
          rr[k] = rate[cell][k] / rate[ci * NOPS + ref][k];
        if (op_kind(op) == K_SHM)
          rm[k] = rate[cell][k] / rate[ci * NOPS + OP_MEMCPY][k];
      }
      r->ops_per_sec = cli_median(o, b->repeat);
      r->gbps = cli_median(g, b->repeat);
      r->gbps_min = g[0];
      r->gbps_max = g[b->repeat - 1];
      r->secs = cli_median(s, b->repeat);
      if (ref >= 0 && b->have_redis)
        r->ratio_redis = cli_median(rr, b->repeat);
      if (op_kind(op) == K_SHM) r->ratio_memcpy = cli_median(rm, b->repeat);
      set_target(r, b->have_redis);
    }
  if (b->json) {
    cli_progress_done();
    for (int i = base; i < b->nres; i++)
      if (b->res[i].present) json_result(b, &b->res[i]);
  }
  rc = 0;
out:
  free_size(b);
  free(rate);
  free(secs);
  free(ops);
  return rc;
}

/* ---- Options ---------------------------------------------------------------- */

static int parse_list(const char *opt, const char *list, int sizes,
                      uint64_t *out, int max, int *n) {
  const char *p = list;

  *n = 0;
  while (*p != '\0') {
    char item[64];
    size_t len = strcspn(p, ",");
    uint64_t v;
    char *end;

    if (len == 0 || len >= sizeof item || *n == max) goto bad;
    memcpy(item, p, len);
    item[len] = '\0';
    if (sizes) {
      if (cli_parse_size(item, &v) != 0 || v < MIN_VALUE || v > MAX_VALUE ||
          v % 8 != 0) {
        cli_err("bench server: %s: bad value size '%s' (a multiple of 8 "
                "bytes, 64 bytes to 64 MiB)",
                opt, item);
        return -1;
      }
    } else {
      v = strtoull(item, &end, 10);
      if (*end != '\0' || v < 1 || v > MAX_CONNS) {
        cli_err("bench server: %s: bad connection count '%s' (1 to %d)", opt,
                item, MAX_CONNS);
        return -1;
      }
    }
    out[(*n)++] = v;
    p += len;
    if (*p == ',') p++;
  }
  if (*n > 0) return 0;
bad:
  cli_err("bench server: %s %s: expected up to %d items, comma separated",
          opt, list, max);
  return -1;
}

static int parse_args(struct bench *b, int argc, char **argv) {
  const char *sizes = NULL, *conns = NULL, *secs = NULL, *ops = NULL,
             *rep = NULL, *pc = NULL, *client = NULL;
  int quick = 0;
  uint64_t tmp[MAX_CONNS];

  for (int i = 0; i < argc;) {
    const char *v;
    int r;

    if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
      cli_bench_server_usage(stdout);
      return 1;
    }
    if (strcmp(argv[i], "--quick") == 0 || strcmp(argv[i], "--json") == 0 ||
        strcmp(argv[i], "--keep") == 0) {
      if (argv[i][2] == 'q') quick = 1;
      if (argv[i][2] == 'j') b->json = 1;
      if (argv[i][2] == 'k') b->keep = 1;
      i++;
      continue;
    }
#define OPT(name, var)                                                        \
  if ((r = cli_opt_value(argc, argv, &i, name, &v)) != 0) {                   \
    if (r < 0) return -1;                                                     \
    var = v;                                                                  \
    continue;                                                                 \
  }
    OPT("--sizes", sizes)
    OPT("--conns", conns)
    OPT("--seconds", secs)
    OPT("--ops", ops)
    OPT("--repeat", rep)
    OPT("--per-conn", pc)
    OPT("--client", client)
    OPT("--redis", b->redis_opt)
    OPT("--cascaded", b->cascaded_opt)
#undef OPT
    r = cli_common_option(&b->co, argc, argv, &i);
    if (r < 0) return -1;
    if (r == 0) {
      cli_err("bench server: unexpected argument '%s' (see cascade bench "
              "server --help)",
              argv[i]);
      return -1;
    }
  }
  if (parse_list("--sizes", sizes ? sizes : quick ? "4k,1m" : "4k,1m,16m", 1,
                 b->sizes, MAX_SIZES, &b->nsizes) != 0 ||
      parse_list("--conns", conns ? conns : quick ? "1,2" : "1,8", 0, tmp,
                 MAX_CONNS, &b->nconns) != 0)
    return -1;
  b->owners = 0;
  for (int k = 0; k < b->nconns; k++) {
    b->conns[k] = (int)tmp[k];
    if (b->conns[k] > b->owners) b->owners = b->conns[k];
  }
  b->seconds = quick ? 0.1 : 1.0;
  if (secs != NULL) {
    char *end;
    double s = strtod(secs, &end);

    if (end == secs || *end != '\0' || !(s >= 0.01 && s <= 600)) {
      cli_err("bench server: --seconds %s: expected 0.01 to 600", secs);
      return -1;
    }
    b->seconds = s;
  }
  if (ops != NULL) {
    char *end;

    b->ops = strtoull(ops, &end, 10);
    if (*end != '\0' || b->ops < 1 || b->ops > 1000000000ull) {
      cli_err("bench server: --ops %s: expected 1 to 1000000000", ops);
      return -1;
    }
  }
  b->repeat = 1;
  if (rep != NULL) {
    char *end;
    long n = strtol(rep, &end, 10);

    if (*end != '\0' || n < 1 || n > MAX_REPEAT) {
      cli_err("bench server: --repeat %s: expected 1 to %d", rep, MAX_REPEAT);
      return -1;
    }
    b->repeat = (int)n;
  }
  b->per_conn = quick ? (4ull << 20) : (32ull << 20);
  if (pc != NULL && (cli_parse_size(pc, &b->per_conn) != 0 ||
                     b->per_conn == 0 || b->per_conn > (1ull << 34))) {
    cli_err("bench server: --per-conn %s: expected a size up to 16 GiB", pc);
    return -1;
  }
  b->client = CLIENT_DIRECT;
  if (client != NULL) {
    if (strcmp(client, "hiredis") == 0)
      b->client = CLIENT_HIREDIS;
    else if (strcmp(client, "direct") != 0) {
      cli_err("bench server: --client %s: expected direct or hiredis",
              client);
      return -1;
    }
  }
  /* cascaded's DRAM: every owner's keys of the largest size, half again
   * for values being replaced and for fragmentation, at least 1 GiB;
   * --dram / --set dram.capacity win. */
  b->capacity = 1ull << 30;
  for (int k = 0; k < b->nsizes; k++) {
    uint64_t d = (uint64_t)b->owners * keys_per_owner(b, b->sizes[k]) *
                 b->sizes[k];
    uint64_t need = d + d / 2 + (64ull << 20);

    if (need > b->capacity) b->capacity = need;
  }
  for (size_t k = 0; k < b->co.nset; k++)
    if (strcmp(b->co.set[k].name, "dram.capacity") == 0) {
      if (cli_parse_size(b->co.set[k].value, &b->capacity) != 0) {
        cli_err("bench server: dram.capacity=%s: not a size",
                b->co.set[k].value);
        return -1;
      }
      b->capacity_given = 1;
    }
  return 0;
}

/* ---- The run ---------------------------------------------------------------- */

int cli_bench_server(int argc, char **argv, const cli_common *co) {
  struct bench *b;
  cli_machine m;
  const char *tmp;
  struct sigaction ign = {.sa_handler = SIG_IGN}, old_pipe;
  int rc = CLI_FAIL, r;

  b = calloc(1, sizeof *b);
  if (b == NULL) {
    cli_err("bench server: out of memory");
    return CLI_FAIL;
  }
  b->co = *co;
  r = parse_args(b, argc, argv);
  if (r != 0) {
    free(b);
    return r > 0 ? CLI_OK : CLI_USAGE;
  }
  b->res = calloc((size_t)b->nsizes * (size_t)b->nconns * NOPS,
                  sizeof *b->res);
  if (b->res == NULL) {
    cli_err("bench server: out of memory");
    free(b);
    return CLI_FAIL;
  }
  sigaction(SIGPIPE, &ign, &old_pipe);

  /* the servers */
  if (find_cascaded(b, b->srv[SYS_CASCADED].path,
                    sizeof b->srv[SYS_CASCADED].path) != 0) {
    cli_err("bench server: cannot find cascaded %s%s (next to cascade or on "
            "$PATH; --cascaded PATH)",
            b->cascaded_opt ? "at " : "",
            b->cascaded_opt ? b->cascaded_opt : "");
    rc = CLI_USAGE;
    goto done;
  }
  if (b->redis_opt != NULL) {
    snprintf(b->srv[SYS_REDIS].path, sizeof b->srv[SYS_REDIS].path, "%s",
             b->redis_opt);
    b->have_redis = access(b->redis_opt, X_OK) == 0;
    if (!b->have_redis) {
      cli_err("bench server: --redis %s: not an executable", b->redis_opt);
      rc = CLI_USAGE;
      goto done;
    }
  } else {
    b->have_redis =
        cli_find_on_path("redis-server", b->srv[SYS_REDIS].path,
                     sizeof b->srv[SYS_REDIS].path) == 0;
    if (!b->have_redis)
      cli_err("bench server: redis-server not found on $PATH: its rows are "
              "skipped, targets against it n/a");
  }
  tmp = getenv("TMPDIR");
  snprintf(b->work, sizeof b->work, "%s/cascade-bench-server.XXXXXX",
           tmp && *tmp ? tmp : "/tmp");
  if (mkdtemp(b->work) == NULL) {
    cli_err("bench server: mkdtemp(%s): %s", b->work, strerror(errno));
    b->work[0] = '\0';
    goto done;
  }
  snprintf(b->sock, sizeof b->sock, "%s/s", b->work);
  snprintf(b->srv[SYS_REDIS].log, sizeof b->srv[SYS_REDIS].log,
           "%s/redis.log", b->work);
  snprintf(b->srv[SYS_CASCADED].log, sizeof b->srv[SYS_CASCADED].log,
           "%s/cascaded.log", b->work);

  cli_progress(0, 1, "starting the servers");
  if ((b->have_redis && start_redis(b) != 0) || start_cascaded(b) != 0) {
    cli_progress_done();
    cli_err("bench server: %s", b->err);
    goto done;
  }
  if (open_connections(b) != 0) {
    cli_progress_done();
    cli_err("bench server: %s", b->err);
    goto done;
  }

  {
    uint64_t maxvs = 0;

    for (int k = 0; k < b->nsizes; k++)
      if (b->sizes[k] > maxvs) maxvs = b->sizes[k];
    b->pool_len = POOL_BYTES + maxvs;
    b->pool = mmap(NULL, b->pool_len, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (b->pool == MAP_FAILED) {
      b->pool = NULL;
      cli_err("bench server: cannot allocate the value pool");
      goto done;
    }
    cli_fill_pool(b->pool, b->pool_len, SEED);
  }

  cli_machine_facts(&m);
  cli_progress_done();
  print_header(b, &m);
  {
    int present = 0;

    for (int op = 0; op < NOPS; op++) present += op_present(b, op);
    b->ncells = b->nsizes * b->nconns * b->repeat * present;
  }
  rc = CLI_OK;
  for (int k = 0; k < b->nsizes && rc == CLI_OK; k++)
    if (run_size(b, k) != 0) {
      cli_progress_done();
      cli_err("bench server: %s", b->err);
      rc = CLI_FAIL;
    }
  cli_progress_done();
  if (rc == CLI_OK && !b->json) print_table(b);

  /* orderly stop; a server that does not exit 0 is worth a word */
  for (int t = 0; t < MAX_CONNS; t++) {
    struct slot *s = &b->slot[t];

    cascade_client_close(s->shm);
    s->shm = NULL;
    for (int sys = 0; sys < NSYS; sys++)
      if (s->ctx[sys] != NULL) {
        redisFree(s->ctx[sys]);
        s->ctx[sys] = NULL;
      }
  }
  for (int sys = 0; sys < NSYS; sys++)
    if (b->srv[sys].pid > 0 && stop_server(&b->srv[sys]) != 0)
      cli_err("bench server: warning: %s did not exit cleanly (log: %s%s)",
              sys_name[sys], b->srv[sys].log,
              b->keep ? "" : "; --keep keeps it");
  if (b->keep) cli_err("bench server: kept %s", b->work);

done:
  cleanup(b);
  sigaction(SIGPIPE, &old_pipe, NULL);
  free(b->res);
  free(b);
  return rc;
}
