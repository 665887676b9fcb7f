/*
 * suite_lmdb.c - the "lmdb" system of `cascade bench suite`: the blocks in
 * one LMDB environment (liblmdb, the real library), key -> value.
 *
 * Layout.  One environment in cfg->dir (data.mdb, lock.mdb), its unnamed
 * main database, one record per block: the key as given, the block as the
 * value.  A value larger than a page lives on contiguous overflow pages,
 * so a block is one run of the memory-mapped file and a read is a copy out
 * of the map: the way LMDB is used as a blob/KV-cache store.  No named
 * databases: there is one kind of record.
 *
 * Flags, as an engineer tuning LMDB for bulk blocks would set them:
 *   MDB_NOSYNC   commits do not fsync; sync() calls mdb_env_sync(env, 1)
 *                once, which makes every committed batch durable (one
 *                fdatasync instead of one per batch, as the harness's
 *                sync is the durability point of the timed write)
 *   MDB_NOTLS    read transactions belong to a handle, not to a thread
 *                (the harness moves a handle between calls; each handle
 *                keeps one read transaction, reset after a batch and
 *                renewed at the next, LMDB's cheap way to read repeatedly)
 *   no MDB_WRITEMAP: the default, safe mode (a stray write through the map
 *                cannot corrupt the file); MDB_RESERVE still lets a put copy
 *                the block once, straight into the page LMDB will write
 * The map size is the working set's pages twice over plus MAP_MARGIN:
 * LMDB is copy-on-write, so an overwritten block's new pages are
 * allocated before its old ones are freed, and freed pages are reused only
 * once no reader sees them.  The file grows only as pages are used.
 *
 * Calls:
 *   put       one write transaction per batch (LMDB serializes writers
 *             with its own mutex), mdb_put(MDB_RESERVE) + memcpy per
 *             block, commit; a failed put aborts the batch (an LMDB
 *             transaction is unusable after most errors)
 *   get       one read transaction per batch (renewed/reset), mdb_get,
 *             the bytes copied out before the transaction ends
 *   contains  mdb_get in a read transaction, no copy
 *   sync      mdb_env_sync(env, 1)
 *   cold      sync, close the environment, POSIX_FADV_DONTNEED on
 *             data.mdb, reopen.  The close is needed: LMDB reads through
 *             mmap, and the kernel does not drop page-cache pages that are
 *             mapped, so fadvise alone would leave the blocks resident
 *   clear     close, unlink data.mdb and lock.mdb, syncfs, reopen empty:
 *             every workload starts from the same empty file (mdb_drop
 *             would leave the file full of free pages whose reuse, a
 *             search of the free list for runs of overflow pages, would
 *             carry one workload's fragmentation into the next)
 *   fini      close, unlink the files
 *
 * Threads.  put/get/contains may run on many handles at once.  cold,
 * clear and fini run while none is in flight (the harness's phases); they
 * end every handle's read transaction (the handle list, under mu) before
 * closing the environment, and a handle begins a new one on its next read.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "suite.h"

#define MAP_MARGIN (64ull << 20)
#define PAGE 4096ull    /* LMDB's page size on Linux x86-64 and arm64 */
#define MIN_READERS 126 /* LMDB's default */

typedef struct lm_handle lm_handle;

typedef struct lm_store {
  MDB_env *env;
  MDB_dbi dbi;
  size_t mapsize;
  unsigned readers;
  char dir[PATH_MAX];
  char version[32];
  pthread_mutex_t mu; /* handles */
  lm_handle *handles;
} lm_store;

struct lm_handle {
  lm_store *s;
  MDB_txn *rtxn; /* reset between batches; NULL until the first read */
  lm_handle *prev, *next;
};

static int lm_fail(char *msg, size_t cap, int err, const char *fmt, ...) {
  va_list ap;
  size_t len;

  va_start(ap, fmt);
  vsnprintf(msg, cap, fmt, ap);
  va_end(ap);
  len = strlen(msg);
  /* mdb_strerror knows LMDB's own codes and errno's */
  if (len < cap)
    snprintf(msg + len, cap - len, ": %s", mdb_strerror(err));
  return err;
}

/* An LMDB return code as a negative errno. */
static int lm_errno(int rc) {
  switch (rc) {
  case 0:
    return 0;
  case MDB_NOTFOUND:
    return -ENOENT;
  case MDB_MAP_FULL:
  case MDB_TXN_FULL:
  case MDB_PAGE_FULL:
    return -ENOSPC;
  case MDB_BAD_VALSIZE:
    return -EINVAL;
  case MDB_READERS_FULL:
    return -EAGAIN;
  default:
    return rc > 0 ? -rc : -EIO; /* errno, or LMDB's corruption codes */
  }
}

static int lm_path(const lm_store *s, const char *file, char *out, size_t cap) {
  return snprintf(out, cap, "%s/%s", s->dir, file) < (int)cap ? 0
                                                              : -ENAMETOOLONG;
}

/* Create and open the environment on s->dir (empty or not). */
static int lm_env_open(lm_store *s, char *msg, size_t cap) {
  MDB_txn *txn;
  int rc;

  if ((rc = mdb_env_create(&s->env)) != 0)
    return lm_errno(lm_fail(msg, cap, rc, "lmdb: mdb_env_create"));
  if ((rc = mdb_env_set_mapsize(s->env, s->mapsize)) != 0 ||
      (rc = mdb_env_set_maxreaders(s->env, s->readers)) != 0) {
    lm_fail(msg, cap, rc, "lmdb: setting map size %zu, %u readers", s->mapsize,
            s->readers);
    goto fail;
  }
  rc = mdb_env_open(s->env, s->dir, MDB_NOSYNC | MDB_NOTLS, 0644);
  if (rc != 0) {
    lm_fail(msg, cap, rc, "lmdb: mdb_env_open %s", s->dir);
    goto fail;
  }
  if ((rc = mdb_txn_begin(s->env, NULL, 0, &txn)) != 0) {
    lm_fail(msg, cap, rc, "lmdb: mdb_txn_begin");
    goto fail;
  }
  if ((rc = mdb_dbi_open(txn, NULL, 0, &s->dbi)) != 0 ||
      (rc = mdb_txn_commit(txn)) != 0) {
    lm_fail(msg, cap, rc, "lmdb: opening the main database");
    goto fail;
  }
  return 0;
fail:
  mdb_env_close(s->env);
  s->env = NULL;
  return lm_errno(rc);
}

/* End every handle's read transaction, then close the environment. */
static void lm_env_close(lm_store *s) {
  pthread_mutex_lock(&s->mu);
  for (lm_handle *h = s->handles; h; h = h->next) {
    if (h->rtxn)
      mdb_txn_abort(h->rtxn);
    h->rtxn = NULL;
  }
  pthread_mutex_unlock(&s->mu);
  if (s->env)
    mdb_env_close(s->env);
  s->env = NULL;
}

static int lm_unlink_files(lm_store *s, char *msg, size_t cap) {
  static const char *const files[] = {"data.mdb", "lock.mdb"};
  char p[PATH_MAX];

  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
    if (lm_path(s, files[i], p, sizeof p) != 0)
      return lm_errno(lm_fail(msg, cap, ENAMETOOLONG, "lmdb: %s", files[i]));
    if (unlink(p) != 0 && errno != ENOENT)
      return -lm_fail(msg, cap, errno, "lmdb: unlink %s", p);
  }
  return 0;
}

static int lm_init(const suite_cfg *cfg, void **st, char *msg, size_t cap) {
  lm_store *s = calloc(1, sizeof *s);
  int major, minor, patch, rc;
  uint64_t per, map;

  *st = NULL;
  if (!s)
    return -lm_fail(msg, cap, ENOMEM, "lmdb: out of memory");
  if (snprintf(s->dir, sizeof s->dir, "%s", cfg->dir) >= (int)sizeof s->dir) {
    free(s);
    return -lm_fail(msg, cap, ENAMETOOLONG, "lmdb: %s", cfg->dir);
  }
  /* A block: its overflow pages (16-byte page header) plus its leaf node
   * (key + 8-byte node header + the page number), a generous 256 bytes. */
  per = (cfg->block + 16 + PAGE - 1) / PAGE * PAGE + 256;
  map = 2 * per * cfg->capacity + MAP_MARGIN;
  if (map / 2 / per < cfg->capacity || map > (uint64_t)SIZE_MAX / 2) {
    free(s);
    return -lm_fail(msg, cap, EFBIG, "lmdb: working set too large");
  }
  s->mapsize = (size_t)((map + PAGE - 1) / PAGE * PAGE);
  s->readers =
      cfg->threads + 8u > MIN_READERS ? cfg->threads + 8u : MIN_READERS;
  mdb_version(&major, &minor, &patch);
  snprintf(s->version, sizeof s->version, "%d.%d.%d", major, minor, patch);
  pthread_mutex_init(&s->mu, NULL);
  if ((rc = lm_env_open(s, msg, cap)) != 0) {
    pthread_mutex_destroy(&s->mu);
    free(s);
    return rc;
  }
  *st = s;
  return 0;
}

static const char *lm_version(void *st) {
  return ((lm_store *)st)->version;
}

static int lm_open(void *st, int t, void **h, char *msg, size_t cap) {
  lm_store *s = st;
  lm_handle *x = calloc(1, sizeof *x);

  (void)t;
  *h = NULL;
  if (!x)
    return -lm_fail(msg, cap, ENOMEM, "lmdb: out of memory");
  x->s = s;
  pthread_mutex_lock(&s->mu);
  x->next = s->handles;
  if (s->handles)
    s->handles->prev = x;
  s->handles = x;
  pthread_mutex_unlock(&s->mu);
  *h = x;
  return 0;
}

static void lm_close(void *st, void *h) {
  lm_store *s = st;
  lm_handle *x = h;

  if (!x)
    return;
  pthread_mutex_lock(&s->mu);
  if (x->prev)
    x->prev->next = x->next;
  else
    s->handles = x->next;
  if (x->next)
    x->next->prev = x->prev;
  pthread_mutex_unlock(&s->mu);
  if (x->rtxn)
    mdb_txn_abort(x->rtxn);
  free(x);
}

/* After a failed cold or clear the environment stays closed. */
static int lm_closed(char *msg, size_t cap) {
  snprintf(msg, cap,
           "lmdb: the environment is closed (a cold restart or "
           "a clear failed)");
  return -EBADF;
}

static int lm_put(void *h, suite_item *it, int n, char *msg, size_t cap) {
  lm_handle *x = h;
  lm_store *s = x->s;
  MDB_txn *txn;
  int rc, bad = -1;

  if (!s->env)
    return lm_closed(msg, cap);
  if ((rc = mdb_txn_begin(s->env, NULL, 0, &txn)) != 0)
    return lm_errno(lm_fail(msg, cap, rc, "lmdb: mdb_txn_begin"));
  for (int i = 0; i < n && rc == 0; i++) {
    MDB_val k = {it[i].klen, (void *)it[i].key};
    MDB_val v = {it[i].vlen, NULL};

    rc = mdb_put(txn, s->dbi, &k, &v, MDB_RESERVE);
    if (rc == 0)
      memcpy(v.mv_data, it[i].val, it[i].vlen);
    else
      bad = i;
  }
  if (rc == 0) {
    rc = mdb_txn_commit(txn);
    if (rc != 0)
      lm_fail(msg, cap, rc, "lmdb: mdb_txn_commit");
  } else {
    mdb_txn_abort(txn);
    lm_fail(msg, cap, rc, "lmdb: mdb_put of block %d of %d (batch aborted)",
            bad, n);
  }
  /* The transaction is the unit: all blocks are stored, or none is. */
  for (int i = 0; i < n; i++)
    it[i].rc = lm_errno(rc);
  return rc == 0 ? n : lm_errno(rc);
}

/* Begin (or renew) the handle's read transaction. */
static int lm_read_begin(lm_handle *x, char *msg, size_t cap) {
  int rc;

  if (!x->s->env)
    return lm_closed(msg, cap);
  rc = x->rtxn ? mdb_txn_renew(x->rtxn)
               : mdb_txn_begin(x->s->env, NULL, MDB_RDONLY, &x->rtxn);
  if (rc != 0) {
    if (x->rtxn)
      mdb_txn_abort(x->rtxn);
    x->rtxn = NULL;
    return lm_errno(lm_fail(msg, cap, rc, "lmdb: read transaction"));
  }
  return 0;
}

static int lm_read(void *h, suite_item *it, int n, int copy, char *msg,
                   size_t cap) {
  lm_handle *x = h;
  int rc, ok = 0;

  if ((rc = lm_read_begin(x, msg, cap)) != 0)
    return rc;
  for (int i = 0; i < n; i++) {
    MDB_val k = {it[i].klen, (void *)it[i].key}, v;

    rc = mdb_get(x->rtxn, x->s->dbi, &k, &v);
    if (rc == MDB_NOTFOUND) {
      it[i].rc = -ENOENT; /* an answer, not an error: no msg */
      continue;
    }
    if (rc != 0) {
      it[i].rc = lm_errno(lm_fail(msg, cap, rc, "lmdb: mdb_get"));
      continue;
    }
    if (copy) {
      if (v.mv_size > it[i].vlen) {
        it[i].rc = -EMSGSIZE;
        snprintf(msg, cap, "lmdb: a %zu-byte value, a %zu-byte buffer",
                 v.mv_size, it[i].vlen);
        continue;
      }
      /* v points into the map: valid only until the transaction ends */
      memcpy(it[i].val, v.mv_data, v.mv_size);
      it[i].vlen = v.mv_size;
    }
    it[i].rc = 0;
    ok++;
  }
  mdb_txn_reset(x->rtxn);
  return ok;
}

static int lm_get(void *h, suite_item *it, int n, char *msg, size_t cap) {
  return lm_read(h, it, n, 1, msg, cap);
}

static int lm_contains(void *h, suite_item *it, int n, char *msg, size_t cap) {
  return lm_read(h, it, n, 0, msg, cap);
}

static int lm_sync(void *st, char *msg, size_t cap) {
  lm_store *s = st;
  int rc;

  if (!s->env)
    return lm_closed(msg, cap);
  rc = mdb_env_sync(s->env, 1);
  return rc ? lm_errno(lm_fail(msg, cap, rc, "lmdb: mdb_env_sync")) : 0;
}

static int lm_cold(void *st, char *msg, size_t cap) {
  lm_store *s = st;
  char p[PATH_MAX];
  int fd, rc;

  /* Dirty pages cannot be dropped: make them clean first. */
  if ((rc = lm_sync(st, msg, cap)) != 0)
    return rc;
  lm_env_close(s);
  if (lm_path(s, "data.mdb", p, sizeof p) != 0)
    return -lm_fail(msg, cap, ENAMETOOLONG, "lmdb: data.mdb");
  fd = open(p, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    rc = -lm_fail(msg, cap, errno, "lmdb: open %s", p);
  } else {
    rc = posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    if (rc != 0)
      rc = -lm_fail(msg, cap, rc, "lmdb: posix_fadvise %s", p);
    close(fd);
  }
  if (rc == 0)
    rc = lm_env_open(s, msg, cap);
  return rc;
}

static int lm_clear(void *st, char *msg, size_t cap) {
  lm_store *s = st;
  int rc, fd;

  lm_env_close(s);
  if ((rc = lm_unlink_files(s, msg, cap)) != 0)
    return rc;
  /* so that the next timed write does not pay for freeing the old file */
  fd = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0 || syncfs(fd) != 0) {
    rc = -lm_fail(msg, cap, errno, "lmdb: syncfs %s", s->dir);
    if (fd >= 0)
      close(fd);
    return rc;
  }
  close(fd);
  return lm_env_open(s, msg, cap);
}

static void lm_fini(void *st) {
  lm_store *s = st;
  char msg[SUITE_MSG];

  if (!s)
    return;
  lm_env_close(s);
  (void)lm_unlink_files(s, msg, sizeof msg);
  /* the harness closes its handles first; free any it did not */
  while (s->handles) {
    lm_handle *x = s->handles;

    s->handles = x->next;
    free(x);
  }
  pthread_mutex_destroy(&s->mu);
  free(s);
}

const suite_adapter suite_lmdb = {
    .name = "lmdb",
    .kind = "disk",
    .init = lm_init,
    .version = lm_version,
    .open = lm_open,
    .close = lm_close,
    .put = lm_put,
    .get = lm_get,
    .contains = lm_contains,
    .sync = lm_sync,
    .cold = lm_cold,
    .clear = lm_clear,
    .fini = lm_fini,
};
