/*
 * suite_posix.c - the "posix-file-per-block" system of `cascade bench
 * suite`: one file per block, named by its key, written and read with
 * plain POSIX calls.
 *
 * Layout.  This is the layout of LMCache's local disk backend (and of most
 * "spill the KV cache to disk" code): a directory, one file per block,
 * the file's name derived from the key, the whole value written with
 * open/write/close and read with open/read/close.  Nothing is batched or
 * aggregated: a block is a file, so the file system does the indexing
 * (its directory index) and the allocation.  In cfg->dir:
 *
 *   <name>        when the working set has at most FANOUT_MIN blocks
 *   <xx>/<name>   otherwise: 256 subdirectories, xx = a hash of the key in
 *                 hex, so that no directory grows past a few thousand
 *                 entries (what a user does once a flat directory gets
 *                 large; LMCache itself keeps one flat directory)
 *
 * <name> is the key with every byte outside [A-Za-z0-9_:-] (and a leading
 * '.') written as %XX: "blk:00000000000000a1" stays readable, and no key
 * can make "..", a '/' or a NUL.  A name longer than NAME_MAX is refused
 * (-ENAMETOOLONG).
 *
 * Calls:
 *   put       openat(O_CREAT|O_TRUNC), write, close per block (buffered:
 *             the page cache takes the write); the block's path goes on the
 *             dirty list
 *   sync      fsync of every file on the dirty list, then of the
 *             subdirectories that gained entries and of cfg->dir: what a
 *             careful user of this layout does to make the files durable,
 *             as `cascade bench disk` does for the same layout
 *   get       openat, fstat (the size), read, close; ENOENT -> -ENOENT
 *   contains  fstatat
 *   cold      fsync of anything still dirty (a dirty page cannot be
 *             dropped), then posix_fadvise(POSIX_FADV_DONTNEED) on every
 *             file; directory entries and inodes stay cached (dropping
 *             them needs /proc/sys/vm/drop_caches, i.e. root)
 *   clear     unlink every file, then syncfs so that the next timed write
 *             does not pay for the unlinks
 *   fini      clear, remove the subdirectories (cfg->dir itself belongs
 *             to the harness)
 *
 * Threads.  The files are the state: handles are the store itself, and
 * put/get/contains from many threads need no lock but the dirty list's
 * (one lock per put batch).  sync, cold, clear and fini run while no
 * put/get is in flight (the harness's phases).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "cli.h"
#include "suite.h"

#define FANOUT_MIN 4096 /* blocks in a flat directory, at most */
#define NFAN 256
#define REL_MAX (3 + NAME_MAX + 1) /* "xx/" + name + NUL */

typedef struct px_store {
  int dirfd;          /* cfg->dir */
  int fanout;         /* 1: <xx>/<name> */
  pthread_mutex_t mu; /* dirty list and dirty_dir */
  char *dirty;        /* NUL-separated relative paths written since sync */
  size_t dirty_len, dirty_cap;
  unsigned char dirty_dir[NFAN]; /* subdirectories that gained entries */
  int dirty_top;                 /* cfg->dir gained entries */
  char version[128];             /* "Linux <release>, <file system>" */
} px_store;

/* The name of subdirectory i ("00".."ff"). */
static void px_sub(char out[4], unsigned i) {
  static const char hex[] = "0123456789abcdef";

  out[0] = hex[(i >> 4) & 15];
  out[1] = hex[i & 15];
  out[2] = '\0';
}

static int px_err(char *msg, size_t cap, int err, const char *fmt, ...) {
  va_list ap;
  size_t len;

  va_start(ap, fmt);
  vsnprintf(msg, cap, fmt, ap);
  va_end(ap);
  len = strlen(msg);
  if (len < cap)
    snprintf(msg + len, cap - len, ": %s", strerror(err));
  return -err;
}

/* FNV-1a: a stable spread of keys over the subdirectories. */
static unsigned px_hash(const unsigned char *k, size_t n) {
  uint32_t h = 2166136261u;

  for (size_t i = 0; i < n; i++)
    h = (h ^ k[i]) * 16777619u;
  return h ^ (h >> 16);
}

/* The path of key k relative to cfg->dir; -ENAMETOOLONG if it does not
 * fit a file name. */
static int px_rel(const px_store *s, const void *key, size_t klen,
                  char out[REL_MAX], unsigned *fan) {
  static const char hex[] = "0123456789abcdef";
  const unsigned char *k = key;
  size_t o = 0, start;

  *fan = s->fanout ? px_hash(k, klen) % NFAN : 0;
  if (s->fanout) {
    out[o++] = hex[*fan >> 4];
    out[o++] = hex[*fan & 15];
    out[o++] = '/';
  }
  start = o;
  for (size_t i = 0; i < klen; i++) {
    unsigned c = k[i];
    int plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                (c >= '0' && c <= '9') || c == '_' || c == ':' || c == '-' ||
                (c == '.' && i > 0);

    if (o - start + (plain ? 1 : 3) > NAME_MAX)
      return -ENAMETOOLONG;
    if (plain) {
      out[o++] = (char)c;
    } else {
      out[o++] = '%';
      out[o++] = hex[c >> 4];
      out[o++] = hex[c & 15];
    }
  }
  if (o == start)
    return -EINVAL; /* an empty key names no file */
  out[o] = '\0';
  return 0;
}

static int px_write_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);

    if (w < 0 && errno == EINTR)
      continue;
    if (w < 0)
      return -errno;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

static int px_read_all(int fd, char *p, size_t n) {
  while (n > 0) {
    ssize_t r = read(fd, p, n);

    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0)
      return -errno;
    if (r == 0)
      return -EIO; /* the file shrank under us */
    p += r;
    n -= (size_t)r;
  }
  return 0;
}

static int px_fsync_at(int dirfd, const char *rel) {
  int fd = openat(dirfd, rel, O_RDONLY | O_CLOEXEC);
  int rc = 0;

  if (fd < 0)
    return -errno;
  if (fsync(fd) != 0)
    rc = -errno;
  close(fd);
  return rc;
}

/* The "version" of this system: the kernel and the file system. */
static void px_set_version(px_store *s, const char *dir) {
  struct utsname u;
  char fs[64] = "", dev[256];

  cli_fs_facts(dir, fs, sizeof fs, dev, sizeof dev);
  if (uname(&u) != 0)
    snprintf(u.release, sizeof u.release, "?");
  snprintf(s->version, sizeof s->version, "Linux %.60s, %.40s", u.release,
           fs[0] ? fs : "unknown file system");
}

static int px_init(const suite_cfg *cfg, void **st, char *msg, size_t cap) {
  px_store *s = calloc(1, sizeof *s);
  char sub[4];

  *st = NULL;
  if (!s)
    return px_err(msg, cap, ENOMEM, "posix: out of memory");
  s->dirfd = open(cfg->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (s->dirfd < 0) {
    int rc = px_err(msg, cap, errno, "posix: open %s", cfg->dir);

    free(s);
    return rc;
  }
  s->fanout = cfg->nblocks > FANOUT_MIN;
  for (int i = 0; s->fanout && i < NFAN; i++) {
    px_sub(sub, (unsigned)i);
    if (mkdirat(s->dirfd, sub, 0755) != 0 && errno != EEXIST) {
      int rc = px_err(msg, cap, errno, "posix: mkdir %s/%s", cfg->dir, sub);

      close(s->dirfd);
      free(s);
      return rc;
    }
  }
  s->dirty_top = s->fanout; /* the new subdirectories */
  px_set_version(s, cfg->dir);
  pthread_mutex_init(&s->mu, NULL);
  *st = s;
  return 0;
}

static const char *px_version(void *st) {
  return ((px_store *)st)->version;
}

static int px_open(void *st, int t, void **h, char *msg, size_t cap) {
  (void)t, (void)msg, (void)cap;
  *h = st; /* the files are the state: nothing per thread */
  return 0;
}

static void px_close(void *st, void *h) {
  (void)st, (void)h;
}

/* Append the paths of the blocks just written to the dirty list. */
static int px_mark_dirty(px_store *s, const char *rel, size_t len,
                         unsigned fan) {
  int rc = 0;

  pthread_mutex_lock(&s->mu);
  if (s->dirty_len + len + 1 > s->dirty_cap) {
    size_t ncap = s->dirty_cap ? s->dirty_cap * 2 : 1 << 16;
    char *p;

    while (ncap < s->dirty_len + len + 1)
      ncap *= 2;
    p = realloc(s->dirty, ncap);
    if (!p) {
      rc = -ENOMEM;
      goto out;
    }
    s->dirty = p;
    s->dirty_cap = ncap;
  }
  memcpy(s->dirty + s->dirty_len, rel, len + 1);
  s->dirty_len += len + 1;
  if (s->fanout)
    s->dirty_dir[fan] = 1;
  else
    s->dirty_top = 1;
out:
  pthread_mutex_unlock(&s->mu);
  return rc;
}

static int px_put(void *h, suite_item *it, int n, char *msg, size_t cap) {
  px_store *s = h;
  char rel[REL_MAX];
  unsigned fan;
  int ok = 0;

  for (int i = 0; i < n; i++) {
    int fd, rc = px_rel(s, it[i].key, it[i].klen, rel, &fan);

    if (rc != 0) {
      it[i].rc = px_err(msg, cap, -rc, "posix: key %d of the batch", i);
      continue;
    }
    fd = openat(s->dirfd, rel, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
      it[i].rc = px_err(msg, cap, errno, "posix: open %s", rel);
      continue;
    }
    rc = px_write_all(fd, it[i].val, it[i].vlen);
    if (close(fd) != 0 && rc == 0)
      rc = -errno;
    if (rc == 0)
      rc = px_mark_dirty(s, rel, strlen(rel), fan);
    if (rc != 0) {
      it[i].rc = px_err(msg, cap, -rc, "posix: write %s", rel);
      continue;
    }
    it[i].rc = 0;
    ok++;
  }
  return ok;
}

static int px_get(void *h, suite_item *it, int n, char *msg, size_t cap) {
  px_store *s = h;
  char rel[REL_MAX];
  unsigned fan;
  int ok = 0;

  for (int i = 0; i < n; i++) {
    struct stat sb;
    int fd, rc = px_rel(s, it[i].key, it[i].klen, rel, &fan);

    if (rc != 0) {
      it[i].rc = px_err(msg, cap, -rc, "posix: key %d of the batch", i);
      continue;
    }
    fd = openat(s->dirfd, rel, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      /* absent is an answer, not an error: no msg */
      it[i].rc = errno == ENOENT
                     ? -ENOENT
                     : px_err(msg, cap, errno, "posix: open %s", rel);
      continue;
    }
    if (fstat(fd, &sb) != 0) {
      rc = -errno;
    } else if ((uint64_t)sb.st_size > it[i].vlen) {
      rc = -EMSGSIZE;
    } else {
      rc = px_read_all(fd, it[i].val, (size_t)sb.st_size);
    }
    close(fd);
    if (rc != 0) {
      it[i].rc = px_err(msg, cap, -rc, "posix: read %s", rel);
      continue;
    }
    it[i].vlen = (size_t)sb.st_size;
    it[i].rc = 0;
    ok++;
  }
  return ok;
}

static int px_contains(void *h, suite_item *it, int n, char *msg, size_t cap) {
  px_store *s = h;
  char rel[REL_MAX];
  unsigned fan;
  int found = 0;

  for (int i = 0; i < n; i++) {
    struct stat sb;
    int rc = px_rel(s, it[i].key, it[i].klen, rel, &fan);

    if (rc != 0) {
      it[i].rc = px_err(msg, cap, -rc, "posix: key %d of the batch", i);
    } else if (fstatat(s->dirfd, rel, &sb, 0) == 0) {
      it[i].rc = 0;
      found++;
    } else {
      it[i].rc = errno == ENOENT
                     ? -ENOENT
                     : px_err(msg, cap, errno, "posix: stat %s", rel);
    }
  }
  return found;
}

static int px_sync(void *st, char *msg, size_t cap) {
  px_store *s = st;
  char sub[4];
  int rc;

  /* No put runs during sync: the list is ours without the lock. */
  for (size_t o = 0; o < s->dirty_len; o += strlen(s->dirty + o) + 1) {
    if ((rc = px_fsync_at(s->dirfd, s->dirty + o)) != 0)
      return px_err(msg, cap, -rc, "posix: fsync %s", s->dirty + o);
  }
  s->dirty_len = 0;
  /* The new names are durable once their directories are. */
  for (int i = 0; i < NFAN; i++) {
    if (!s->dirty_dir[i])
      continue;
    px_sub(sub, (unsigned)i);
    if ((rc = px_fsync_at(s->dirfd, sub)) != 0)
      return px_err(msg, cap, -rc, "posix: fsync directory %s", sub);
    s->dirty_dir[i] = 0;
  }
  if (s->dirty_top) {
    if (fsync(s->dirfd) != 0)
      return px_err(msg, cap, errno, "posix: fsync of the directory");
    s->dirty_top = 0;
  }
  return 0;
}

/* Call fn(dirfd of the file's directory, name) for every block file. */
static int px_walk(px_store *s, int (*fn)(int dfd, const char *name), char *msg,
                   size_t cap) {
  for (int i = 0; i < (s->fanout ? NFAN : 1); i++) {
    char sub[4];
    DIR *d;
    struct dirent *e;
    int dfd, rc = 0;

    px_sub(sub, (unsigned)i);
    dfd = s->fanout ? openat(s->dirfd, sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
                    : dup(s->dirfd);
    if (dfd < 0)
      return px_err(msg, cap, errno, "posix: open directory");
    d = fdopendir(dfd);
    if (!d) {
      rc = px_err(msg, cap, errno, "posix: opendir");
      close(dfd);
      return rc;
    }
    rewinddir(d); /* a dup shares the offset of the store's own fd */
    while (rc == 0 && (errno = 0, e = readdir(d)) != NULL) {
      if (e->d_name[0] == '.')
        continue; /* ".", "..": no block's name */
      if (e->d_type == DT_DIR)
        continue; /* the fan-out subdirectories */
      if ((rc = fn(dirfd(d), e->d_name)) != 0)
        rc = px_err(msg, cap, -rc, "posix: %s", e->d_name);
    }
    closedir(d);
    if (rc != 0)
      return rc;
  }
  return 0;
}

static int px_drop(int dfd, const char *name) {
  int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC), rc;

  if (fd < 0)
    return -errno;
  rc = posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  close(fd);
  return -rc; /* posix_fadvise returns the error */
}

static int px_unlink(int dfd, const char *name) {
  return unlinkat(dfd, name, 0) == 0 || errno == ENOENT ? 0 : -errno;
}

static int px_cold(void *st, char *msg, size_t cap) {
  px_store *s = st;
  int rc = px_sync(st, msg, cap);

  return rc != 0 ? rc : px_walk(s, px_drop, msg, cap);
}

static int px_clear(void *st, char *msg, size_t cap) {
  px_store *s = st;
  int rc = px_walk(s, px_unlink, msg, cap);

  s->dirty_len = 0;
  memset(s->dirty_dir, 0, sizeof s->dirty_dir);
  if (rc == 0 && syncfs(s->dirfd) != 0)
    rc = px_err(msg, cap, errno, "posix: syncfs");
  return rc;
}

static void px_fini(void *st) {
  px_store *s = st;
  char msg[SUITE_MSG], sub[4];

  if (!s)
    return;
  (void)px_walk(s, px_unlink, msg, sizeof msg);
  for (int i = 0; s->fanout && i < NFAN; i++) {
    px_sub(sub, (unsigned)i);
    (void)unlinkat(s->dirfd, sub, AT_REMOVEDIR);
  }
  close(s->dirfd);
  pthread_mutex_destroy(&s->mu);
  free(s->dirty);
  free(s);
}

const suite_adapter suite_posix = {
    .name = "posix-file-per-block",
    .kind = "disk",
    .init = px_init,
    .version = px_version,
    .open = px_open,
    .close = px_close,
    .put = px_put,
    .get = px_get,
    .contains = px_contains,
    .sync = px_sync,
    .cold = px_cold,
    .clear = px_clear,
    .fini = px_fini,
};
