/*
 * suite_redis.c - the adapter `redis` of `cascade bench suite` (suite.h):
 * a real redis-server (found on $PATH; SUITE_SKIP without one), started on
 * a free loopback port in the system's directory as bench server starts
 * it: --save '' --appendonly no (persistence off) --protected-mode no
 * --maxmemory 0, its defaults otherwise (one thread).  A handle is a
 * hiredis connection; a batch is one pipeline of SET / GET / EXISTS
 * (servers.c).  Kind "memory": sync has nothing to do (every reply has
 * been read), no cold read.  clear = FLUSHALL; fini = SHUTDOWN NOSAVE.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis.h>

#include "cli.h"
#include "suite.h"

struct rd {
  cli_server srv;
  char version[96];
};

static int rd_init(const suite_cfg *cfg, void **out, char *msg, size_t cap) {
  struct rd *st = calloc(1, sizeof *st);
  char port[16], v[64];
  char *argv[] = {NULL,         "--port",       port,       "--bind",
                  "127.0.0.1",  "--save",       "",         "--appendonly",
                  "no",         "--protected-mode", "no",   "--maxmemory",
                  "0",          "--dir",        (char *)cfg->dir, NULL};
  int rc = -1;

  if (st == NULL) {
    snprintf(msg, cap, "out of memory");
    return -ENOMEM;
  }
  if (cli_find_on_path("redis-server", st->srv.path, sizeof st->srv.path) !=
      0) {
    free(st);
    snprintf(msg, cap, "redis-server not found on $PATH");
    return SUITE_SKIP;
  }
  argv[0] = st->srv.path;
  snprintf(st->srv.log, sizeof st->srv.log, "%s/redis.log", cfg->dir);
  for (int attempt = 0; attempt < 3 && rc != 0; attempt++) {
    st->srv.port = cli_free_port();
    snprintf(port, sizeof port, "%d", st->srv.port);
    rc = cli_server_start(&st->srv, argv, msg, cap);
  }
  if (rc != 0) {
    free(st);
    return -EIO;
  }
  cli_redis_info(st->srv.admin, "redis_version", v, sizeof v);
  snprintf(st->version, sizeof st->version, "redis-server %s", v);
  *out = st;
  return 0;
}

static const char *rd_version(void *st) { return ((struct rd *)st)->version; }

static int rd_open(void *sp, int t, void **out, char *msg, size_t cap) {
  struct rd *st = sp;
  redisContext *c = cli_connect_tcp(st->srv.port, 5);

  (void)t;
  if (c == NULL) {
    snprintf(msg, cap, "cannot connect to redis-server on port %d",
             st->srv.port);
    return -ECONNREFUSED;
  }
  *out = c;
  return 0;
}

static void rd_close(void *st, void *h) {
  (void)st;
  if (h != NULL) redisFree(h);
}

static int rd_put(void *h, suite_item *it, int n, char *msg, size_t cap) {
  return cli_resp_put(h, it, n, msg, cap);
}

static int rd_get(void *h, suite_item *it, int n, char *msg, size_t cap) {
  return cli_resp_get(h, it, n, msg, cap);
}

static int rd_contains(void *h, suite_item *it, int n, char *msg,
                       size_t cap) {
  return cli_resp_contains(h, it, n, msg, cap);
}

static int rd_sync(void *st, char *msg, size_t cap) {
  (void)st;
  (void)msg;
  (void)cap;
  return 0;
}

static int rd_cold(void *st, char *msg, size_t cap) {
  (void)st;
  snprintf(msg, cap, "redis keeps everything in memory");
  return -ENOTSUP;
}

static int rd_clear(void *st, char *msg, size_t cap) {
  return cli_resp_flush(((struct rd *)st)->srv.admin, msg, cap);
}

static void rd_fini(void *sp) {
  struct rd *st = sp;

  if (st == NULL) return;
  if (cli_server_stop(&st->srv) != 0)
    cli_err("bench suite: warning: redis-server did not exit cleanly (log: "
            "%s)",
            st->srv.log);
  free(st);
}

const suite_adapter suite_redis = {
    .name = "redis",
    .kind = "memory",
    .init = rd_init,
    .version = rd_version,
    .open = rd_open,
    .close = rd_close,
    .put = rd_put,
    .get = rd_get,
    .contains = rd_contains,
    .sync = rd_sync,
    .cold = rd_cold,
    .clear = rd_clear,
    .fini = rd_fini,
};
