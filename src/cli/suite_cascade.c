/*
 * suite_cascade.c - the Cascade adapters of `cascade bench suite` (suite.h):
 *
 *   cascade         the library, embedded in this process: one store, all
 *                   threads share it (a handle holds the thread's batch
 *                   arrays).  put = cascade_put_batch, get =
 *                   cascade_get_batch (straight into the caller's buffers),
 *                   contains = cascade_exists.  Defaults otherwise: dedup
 *                   on (every put is hashed with SHA-256; the suite's
 *                   blocks are all different, so it never hits), policy
 *                   semantic, disk.write=back, disk.sync=batch, disk.io
 *                   auto.  The store: dram.capacity = 5/4 of the blocks
 *                   held at most (cfg->capacity) + 64 MiB (every block
 *                   fits: hot reads come from DRAM), dram.prefault = true
 *                   (the arena allocated at open, as a cache sized for its
 *                   machine is, and as LMCache's CPU backend allocates its
 *                   pinned buffer: otherwise the first put of every page
 *                   takes a page fault, which halves write, mixed and
 *                   replay here), disk.dir = the system's directory.  sync =
 *                   cascade_flush: writes every block to the disk tier and
 *                   fdatasyncs.  cold = cascade_close, cascade_open on the
 *                   same directory with a small DRAM (64 MiB, or 2 x
 *                   threads x batch blocks if more; the restart rebuilds
 *                   the disk index), cascade_drop_page_cache: the cold
 *                   reads come from the device (blocks are promoted to
 *                   DRAM only after disk.promote_after = 3 reads).  clear =
 *                   close, remove the files, open again as at init.
 *   cascade-shm     a real cascaded (cfg->cascaded) on a free loopback port
 *                   and a Unix socket in the system's directory, DRAM only
 *                   (dram.capacity and dram.prefault as above, its
 *                   defaults otherwise: dedup on).  A handle is a cascade_client on the socket: put =
 *                   cascade_client_put_batch (the batch's values through
 *                   the shared staging area, one round trip), get =
 *                   cascade_client_get_into (values found in the
 *                   daemon's shared-memory index copied with no request;
 *                   the rest leased in one round trip, copied, released);
 *                   contains = cascade_client_get_batch, released unread.
 *                   No cold read.
 *   cascade-server  the same cascaded over RESP on TCP loopback: a handle is
 *                   a hiredis connection; a batch is one pipeline of SET /
 *                   GET / EXISTS (servers.c).  No cold read.
 *
 * Without cascaded (cfg->cascaded NULL) the two daemon adapters answer
 * SUITE_SKIP.  The daemon's output goes to DIR/cascaded.log; it is stopped
 * with SHUTDOWN NOSAVE at fini (servers.c).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <hiredis.h>

#include "cli.h"
#include "suite.h"

#define SUITE_BATCH_MAX 64 /* items per cascade_client_put_batch */

#define DRAM_SLACK (64ull << 20)
#define SMALL_DRAM (64ull << 20)
#define DIR_BYTES 1024

static int errmsg(char *msg, size_t cap, int rc, const char *what) {
  snprintf(msg, cap, "%s: %s", what, cascade_strerror(rc));
  return rc;
}

static uint64_t dram_for(const suite_cfg *cfg) {
  uint64_t d = cfg->block * cfg->capacity;

  return d + d / 4 + DRAM_SLACK;
}

/* ---- cascade: the library ------------------------------------------------ */

struct cas {
  suite_cfg cfg;
  char dir[DIR_BYTES];
  cascade *c;
  char version[160];
};

struct cas_h {
  struct cas *st;
  cascade_put_item *pi;
  cascade_get_item *gi;
};

static int cas_open_store(struct cas *st, uint64_t dram, char *msg,
                          size_t cap) {
  cascade_config *cfg = NULL;
  char v[32];
  int rc = cascade_config_new(&cfg);

  if (rc != 0) return errmsg(msg, cap, rc, "cascade_config_new");
  snprintf(v, sizeof v, "%" PRIu64, dram);
  if ((rc = cascade_config_set(cfg, "dram.capacity", v)) != 0 ||
      (rc = cascade_config_set(cfg, "disk.dir", st->dir)) != 0 ||
      (rc = cascade_config_set(cfg, "dram.prefault", "true")) != 0) {
    cascade_config_free(cfg);
    return errmsg(msg, cap, rc, "cascade_config_set");
  }
  rc = cascade_open(cfg, &st->c);
  cascade_config_free(cfg);
  if (rc != 0) {
    st->c = NULL;
    return errmsg(msg, cap, rc, "cascade_open");
  }
  return 0;
}

static int cas_init(const suite_cfg *cfg, void **out, char *msg, size_t cap) {
  struct cas *st = calloc(1, sizeof *st);
  struct cascade_stats sx;
  int rc;

  if (st == NULL) return errmsg(msg, cap, -ENOMEM, "init");
  st->cfg = *cfg;
  snprintf(st->dir, sizeof st->dir, "%s", cfg->dir);
  rc = cas_open_store(st, dram_for(cfg), msg, cap);
  if (rc != 0) {
    free(st);
    return rc;
  }
  snprintf(st->version, sizeof st->version, "libcascade %s",
           cascade_version());
  if (cascade_stats(st->c, &sx) == 0 && sx.disk_mode[0] != '\0')
    snprintf(st->version, sizeof st->version, "libcascade %s (disk: %s)",
             cascade_version(), sx.disk_mode);
  *out = st;
  return 0;
}

static const char *cas_version(void *st) {
  return ((struct cas *)st)->version;
}

static int cas_hopen(void *st, int t, void **out, char *msg, size_t cap) {
  struct cas *s = st;
  struct cas_h *h = calloc(1, sizeof *h);

  (void)t;
  if (h != NULL) {
    h->pi = calloc((size_t)s->cfg.batch, sizeof *h->pi);
    h->gi = calloc((size_t)s->cfg.batch, sizeof *h->gi);
  }
  if (h == NULL || h->pi == NULL || h->gi == NULL) {
    if (h != NULL) {
      free(h->pi);
      free(h->gi);
    }
    free(h);
    return errmsg(msg, cap, -ENOMEM, "open");
  }
  h->st = s;
  *out = h;
  return 0;
}

static void cas_hclose(void *st, void *hp) {
  struct cas_h *h = hp;

  (void)st;
  if (h == NULL) return;
  free(h->pi);
  free(h->gi);
  free(h);
}

static int cas_put(void *hp, suite_item *it, int n, char *msg, size_t cap) {
  struct cas_h *h = hp;
  int r;

  if (n > h->st->cfg.batch) return errmsg(msg, cap, -EINVAL, "put");
  for (int k = 0; k < n; k++) {
    h->pi[k].key = it[k].key;
    h->pi[k].klen = it[k].klen;
    h->pi[k].value = it[k].val;
    h->pi[k].vlen = it[k].vlen;
    h->pi[k].opts = NULL;
  }
  r = cascade_put_batch(h->st->c, NULL, h->pi, (size_t)n);
  if (r < 0) return errmsg(msg, cap, r, "cascade_put_batch");
  for (int k = 0; k < n; k++) {
    it[k].rc = h->pi[k].rc;
    if (it[k].rc != 0)
      snprintf(msg, cap, "cascade_put_batch: %s",
               cascade_strerror(it[k].rc));
  }
  return r;
}

static int cas_get(void *hp, suite_item *it, int n, char *msg, size_t cap) {
  struct cas_h *h = hp;
  int r;

  if (n > h->st->cfg.batch) return errmsg(msg, cap, -EINVAL, "get");
  for (int k = 0; k < n; k++) {
    h->gi[k].key = it[k].key;
    h->gi[k].klen = it[k].klen;
    h->gi[k].buf = it[k].val;
    h->gi[k].cap = it[k].vlen;
  }
  r = cascade_get_batch(h->st->c, NULL, h->gi, (size_t)n);
  if (r < 0) return errmsg(msg, cap, r, "cascade_get_batch");
  for (int k = 0; k < n; k++) {
    it[k].rc = h->gi[k].rc;
    it[k].vlen = h->gi[k].vlen;
  }
  return r;
}

static int cas_contains(void *hp, suite_item *it, int n, char *msg,
                        size_t cap) {
  struct cas_h *h = hp;
  int found = 0;

  for (int k = 0; k < n; k++) {
    int r = cascade_exists(h->st->c, NULL, it[k].key, it[k].klen);

    if (r < 0) return errmsg(msg, cap, r, "cascade_exists");
    it[k].rc = r ? 0 : -ENOENT;
    found += r;
  }
  return found;
}

static int cas_sync(void *st, char *msg, size_t cap) {
  int rc = cascade_flush(((struct cas *)st)->c);

  return rc ? errmsg(msg, cap, rc, "cascade_flush") : 0;
}

static int cas_cold(void *sp, char *msg, size_t cap) {
  struct cas *st = sp;
  uint64_t small = 2ull * (uint64_t)st->cfg.threads * (uint64_t)st->cfg.batch *
                   st->cfg.block;
  int rc;

  cascade_close(st->c);
  st->c = NULL;
  rc = cas_open_store(st, small > SMALL_DRAM ? small : SMALL_DRAM, msg, cap);
  if (rc != 0) return rc;
  rc = cascade_drop_page_cache(st->c);
  return rc ? errmsg(msg, cap, rc, "cascade_drop_page_cache") : 0;
}

static int cas_clear(void *sp, char *msg, size_t cap) {
  struct cas *st = sp;

  cascade_close(st->c);
  st->c = NULL;
  if (cli_rm_tree(st->dir, 1) != 0)
    return errmsg(msg, cap, -errno, st->dir);
  return cas_open_store(st, dram_for(&st->cfg), msg, cap);
}

static void cas_fini(void *sp) {
  struct cas *st = sp;

  if (st == NULL) return;
  cascade_close(st->c);
  cli_rm_tree(st->dir, 1);
  free(st);
}

const suite_adapter suite_cascade = {
    .name = "cascade",
    .kind = "tiered",
    .init = cas_init,
    .version = cas_version,
    .open = cas_hopen,
    .close = cas_hclose,
    .put = cas_put,
    .get = cas_get,
    .contains = cas_contains,
    .sync = cas_sync,
    .cold = cas_cold,
    .clear = cas_clear,
    .fini = cas_fini,
};

/* ---- cascade-shm and cascade-server: a real cascaded --------------------- */

struct cd {
  suite_cfg cfg;
  cli_server srv;
  char sock[DIR_BYTES + 8];
  char version[96];
};

struct cd_h {
  struct cd *st;
  cascade_client *cl;    /* cascade-shm */
  redisContext *ctx;     /* cascade-server */
  cascade_key *keys;
  cascade_lease *leases;
  cascade_get_item *items;
};

static int cd_init(const suite_cfg *cfg, void **out, char *msg, size_t cap) {
  struct cd *st;
  char port[16], dram[32];
  char *argv[14];
  int rc = -1;

  if (cfg->cascaded == NULL) {
    snprintf(msg, cap, "cascaded not found (next to cascade, on $PATH, or "
                       "--cascaded PATH)");
    return SUITE_SKIP;
  }
  st = calloc(1, sizeof *st);
  if (st == NULL) return errmsg(msg, cap, -ENOMEM, "init");
  st->cfg = *cfg;
  snprintf(st->srv.path, sizeof st->srv.path, "%s", cfg->cascaded);
  snprintf(st->srv.log, sizeof st->srv.log, "%s/cascaded.log", cfg->dir);
  snprintf(st->sock, sizeof st->sock, "%s/s", cfg->dir);
  snprintf(dram, sizeof dram, "%" PRIu64, dram_for(cfg));
  argv[0] = st->srv.path;
  argv[1] = "--port";
  argv[2] = port;
  argv[3] = "--bind";
  argv[4] = "127.0.0.1";
  argv[5] = "--unixsocket";
  argv[6] = st->sock;
  argv[7] = "--dram.capacity";
  argv[8] = dram;
  argv[9] = "--dram.prefault";
  argv[10] = "true";
  argv[11] = NULL;
  for (int attempt = 0; attempt < 3 && rc != 0; attempt++) {
    st->srv.port = cli_free_port();
    snprintf(port, sizeof port, "%d", st->srv.port);
    unlink(st->sock);
    rc = cli_server_start(&st->srv, argv, msg, cap);
  }
  if (rc != 0) {
    free(st);
    return -EIO;
  }
  {
    char v[64];

    cli_redis_info(st->srv.admin, "cascade_version", v, sizeof v);
    snprintf(st->version, sizeof st->version, "cascaded %s", v);
  }
  *out = st;
  return 0;
}

static const char *cd_version(void *st) {
  return ((struct cd *)st)->version;
}

static void cd_hclose(void *st, void *hp) {
  struct cd_h *h = hp;

  (void)st;
  if (h == NULL) return;
  cascade_client_close(h->cl);
  if (h->ctx != NULL) redisFree(h->ctx);
  free(h->keys);
  free(h->leases);
  free(h->items);
  free(h);
}

static int cd_hopen(struct cd *st, int shm, void **out, char *msg,
                    size_t cap) {
  struct cd_h *h = calloc(1, sizeof *h);
  int rc;

  if (h == NULL) return errmsg(msg, cap, -ENOMEM, "open");
  h->st = st;
  if (shm) {
    h->keys = calloc((size_t)st->cfg.batch, sizeof *h->keys);
    h->leases = calloc((size_t)st->cfg.batch, sizeof *h->leases);
    h->items = calloc((size_t)st->cfg.batch, sizeof *h->items);
    if (h->keys == NULL || h->leases == NULL || h->items == NULL) {
      cd_hclose(st, h);
      return errmsg(msg, cap, -ENOMEM, "open");
    }
    rc = cascade_client_connect(st->sock, NULL, NULL, &h->cl);
    if (rc != 0) {
      h->cl = NULL;
      cd_hclose(st, h);
      return errmsg(msg, cap, rc, "cascade_client_connect");
    }
  } else {
    h->ctx = cli_connect_tcp(st->srv.port, 5);
    if (h->ctx == NULL) {
      snprintf(msg, cap, "cannot connect to cascaded on port %d",
               st->srv.port);
      cd_hclose(st, h);
      return -ECONNREFUSED;
    }
  }
  *out = h;
  return 0;
}

static int shm_hopen(void *st, int t, void **out, char *msg, size_t cap) {
  (void)t;
  return cd_hopen(st, 1, out, msg, cap);
}

static int srv_hopen(void *st, int t, void **out, char *msg, size_t cap) {
  (void)t;
  return cd_hopen(st, 0, out, msg, cap);
}

static int shm_err(struct cd_h *h, int rc, const char *what, char *msg,
                   size_t cap) {
  const char *e = cascade_client_error(h->cl);

  snprintf(msg, cap, "%s: %s%s%s", what, cascade_strerror(rc),
           e && *e ? ": " : "", e ? e : "");
  return rc;
}

static int shm_put(void *hp, suite_item *it, int n, char *msg, size_t cap) {
  struct cd_h *h = hp;
  cascade_put_item pi[SUITE_BATCH_MAX];
  int ok = 0;

  /* one cascade_client_put_batch per SUITE_BATCH_MAX items: the values go
   * through the staging area together, one round trip */
  for (int base = 0; base < n; base += SUITE_BATCH_MAX) {
    int m = n - base < SUITE_BATCH_MAX ? n - base : SUITE_BATCH_MAX;
    for (int k = 0; k < m; k++)
      pi[k] = (cascade_put_item){it[base + k].key, it[base + k].klen,
                                 it[base + k].val, it[base + k].vlen, NULL,
                                 0};
    int rc = cascade_client_put_batch(h->cl, pi, (size_t)m);
    for (int k = 0; k < m; k++) {
      it[base + k].rc = rc < 0 && pi[k].rc == 0 ? rc : pi[k].rc;
      if (it[base + k].rc == 0)
        ok++;
      else
        shm_err(h, it[base + k].rc, "cascade_client_put_batch", msg, cap);
    }
    if (rc == -EPIPE || rc == -ECONNRESET || rc == -EPROTO)
      return shm_err(h, rc, "cascade_client_put_batch", msg, cap);
  }
  return ok;
}

/* contains: lease the batch, the values unread.  Every lease is released
 * before returning. */
static int shm_contains(void *hp, suite_item *it, int n, char *msg,
                        size_t cap) {
  struct cd_h *h = hp;
  int r, found = 0;

  if (n > h->st->cfg.batch) return errmsg(msg, cap, -EINVAL, "get");
  for (int k = 0; k < n; k++) {
    h->keys[k].key = it[k].key;
    h->keys[k].len = it[k].klen;
  }
  r = cascade_client_get_batch(h->cl, h->keys, (size_t)n, h->leases);
  if (r < 0) return shm_err(h, r, "cascade_client_get_batch", msg, cap);
  for (int k = 0; k < n; k++) {
    cascade_lease *l = &h->leases[k];

    if (l->data == NULL) {
      it[k].rc = -ENOENT;
      continue;
    }
    it[k].rc = 0;
    found++;
    cascade_client_release(h->cl, l);
  }
  return found;
}

/* cascade_client_get_into: values found in the daemon's shared-memory
 * index are copied with no request, the rest leased in one round trip. */
static int shm_get(void *hp, suite_item *it, int n, char *msg, size_t cap) {
  struct cd_h *h = hp;
  int r;

  if (n > h->st->cfg.batch) return errmsg(msg, cap, -EINVAL, "get");
  for (int k = 0; k < n; k++)
    h->items[k] = (cascade_get_item){it[k].key, it[k].klen, it[k].val,
                                     it[k].vlen, 0, 0};
  r = cascade_client_get_into(h->cl, h->items, (size_t)n);
  if (r < 0) return shm_err(h, r, "cascade_client_get_into", msg, cap);
  for (int k = 0; k < n; k++) {
    it[k].rc = h->items[k].rc;
    it[k].vlen = h->items[k].vlen;
  }
  return r;
}

static int srv_put(void *hp, suite_item *it, int n, char *msg, size_t cap) {
  return cli_resp_put(((struct cd_h *)hp)->ctx, it, n, msg, cap);
}

static int srv_get(void *hp, suite_item *it, int n, char *msg, size_t cap) {
  return cli_resp_get(((struct cd_h *)hp)->ctx, it, n, msg, cap);
}

static int srv_contains(void *hp, suite_item *it, int n, char *msg,
                        size_t cap) {
  return cli_resp_contains(((struct cd_h *)hp)->ctx, it, n, msg, cap);
}

/* Every reply was read: every put is complete; DRAM only, nothing to make
 * durable. */
static int cd_sync(void *st, char *msg, size_t cap) {
  (void)st;
  (void)msg;
  (void)cap;
  return 0;
}

static int cd_cold(void *st, char *msg, size_t cap) {
  (void)st;
  snprintf(msg, cap, "cascaded runs DRAM only here");
  return -ENOTSUP;
}

static int cd_clear(void *st, char *msg, size_t cap) {
  return cli_resp_flush(((struct cd *)st)->srv.admin, msg, cap);
}

static void cd_fini(void *sp) {
  struct cd *st = sp;

  if (st == NULL) return;
  if (cli_server_stop(&st->srv) != 0)
    cli_err("bench suite: warning: cascaded did not exit cleanly (log: %s)",
            st->srv.log);
  unlink(st->sock);
  free(st);
}

const suite_adapter suite_cascade_shm = {
    .name = "cascade-shm",
    .kind = "memory",
    .init = cd_init,
    .version = cd_version,
    .open = shm_hopen,
    .close = cd_hclose,
    .put = shm_put,
    .get = shm_get,
    .contains = shm_contains,
    .sync = cd_sync,
    .cold = cd_cold,
    .clear = cd_clear,
    .fini = cd_fini,
};

const suite_adapter suite_cascade_server = {
    .name = "cascade-server",
    .kind = "memory",
    .init = cd_init,
    .version = cd_version,
    .open = srv_hopen,
    .close = cd_hclose,
    .put = srv_put,
    .get = srv_get,
    .contains = srv_contains,
    .sync = cd_sync,
    .cold = cd_cold,
    .clear = cd_clear,
    .fini = cd_fini,
};
