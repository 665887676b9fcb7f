/*
 * suite_hdf5.c - the "hdf5" system of `cascade bench suite`: the blocks as
 * the rows of one chunked HDF5 dataset (libhdf5, the real library).
 *
 * Layout.  One file, cfg->dir/blocks.h5, holding one 2-D dataset
 * "/blocks" of uint8, shape (rows, block), chunked (1, block): a block is
 * one row and one chunk, so a block is written and read as one contiguous
 * extent of the file with no read-modify-write of neighbours.  This is how
 * an HPC code stores many equal-sized records: aggregated into one dataset
 * (one object, one chunk index) rather than one dataset per record
 * (thousands of objects, each with its own header and B-tree).  The rows
 * dimension is unlimited, so the dataset can grow past cfg->nblocks.
 * Creation settings, as a user who cares about I/O sets them:
 *   libver bounds "latest"   the 1.10 chunk indexes (an extensible array
 *                            instead of the version-1 B-tree)
 *   alignment 4096           chunks start on page boundaries
 *   fill time "never"        a row is written whole before it is read, so
 *                            filling new chunks would only double the I/O
 *   chunk cache off          each row is written once and read whole: the
 *                            cache would only add a copy
 *
 * Keys.  HDF5 stores arrays, not keys: the adapter maps a key to a row.
 * The harness's keys "blk:%016llx" (16 hex digits) with a number below
 * cfg->nblocks map to that row, so the layout on disk does not depend on
 * the order threads happened to write in; any other key gets the next row
 * past cfg->nblocks, from a hash table kept by the adapter.  Which rows
 * hold a block is kept in memory too (`present`): an absent key is -ENOENT
 * without touching the file.
 *
 * Calls:
 *   put       H5Dwrite of each row (a one-row hyperslab of the file space)
 *   get       H5Dread of each row into the caller's buffer
 *   contains  the `present` map
 *   sync      H5Fflush, then fsync of the file (through H5Fget_vfd_handle):
 *             H5Fflush only hands HDF5's buffers to the kernel, and the
 *             write is timed to durability as the other disk systems' are
 *   cold      close the file (which also empties HDF5's metadata cache),
 *             fdatasync + POSIX_FADV_DONTNEED on it, reopen: the reads then
 *             start as a new process's would
 *   clear     close, unlink, syncfs, create an empty file (HDF5 never
 *             returns the space of deleted objects to the file system, so
 *             a fresh file is the only way back to an empty store)
 *   fini      close, unlink
 *
 * Threads.  The Debian libhdf5 is the serial (non thread-safe) build, so
 * every HDF5 call runs under h5_lib, one process-wide mutex (the library
 * is the shared state, not the store): a batch holds it for its whole
 * duration, and handles are the store itself.  Threads therefore add no
 * parallelism to this system; the harness reports the system as "hdf5"
 * regardless.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "suite.h"

#define H5_FILE "blocks.h5"
#define H5_DSET "blocks"
#define H5_ALIGN 4096
#define CHUNK_MAX 0xffffffffull /* HDF5's limit on a chunk's bytes */

static pthread_mutex_t h5_lib = PTHREAD_MUTEX_INITIALIZER;

/* A key that is not "blk:<16 hex digits>" below nblocks, and its row. */
typedef struct h5_slot {
  char *key; /* owned; NULL: empty slot */
  size_t klen;
  uint64_t row;
} h5_slot;

typedef struct h5_store {
  char path[PATH_MAX];
  uint64_t block, nblocks;
  hid_t fapl, dapl, file, dset, fspace, mspace;
  uint64_t rows;    /* the dataset's current first dimension */
  uint8_t *present; /* rows entries: 1 when the row holds a block */
  h5_slot *map;     /* open addressing, mapcap a power of two */
  uint64_t mapcap, mapused, next_row;
  char version[32];
} h5_store;

/* ---- errors -------------------------------------------------------------- */

struct h5_walk {
  char text[256];
};

/* Keep the innermost entry of HDF5's error stack: the actual cause. */
static herr_t h5_walk_cb(unsigned n, const H5E_error2_t *e, void *arg) {
  struct h5_walk *w = arg;

  (void)n;
  snprintf(w->text, sizeof w->text, "%s(): %s", e->func_name,
           e->desc ? e->desc : "?");
  return 0;
}

static int h5_fail(char *msg, size_t cap, int err, const char *what) {
  struct h5_walk w = {"no detail"};

  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, h5_walk_cb, &w);
  H5Eclear2(H5E_DEFAULT);
  snprintf(msg, cap, "hdf5: %s failed: %s", what, w.text);
  return err;
}

static int h5_sys(char *msg, size_t cap, int err, const char *what) {
  snprintf(msg, cap, "hdf5: %s: %s", what, strerror(err));
  return -err;
}

/* ---- the key -> row map -------------------------------------------------- */

static uint64_t h5_hash(const unsigned char *k, size_t n) {
  uint64_t h = 1469598103934665603ull;

  for (size_t i = 0; i < n; i++)
    h = (h ^ k[i]) * 1099511628211ull;
  return h;
}

/* The row of the harness's key "blk:%016llx", or UINT64_MAX. */
static uint64_t h5_blk_row(const h5_store *s, const char *k, size_t n) {
  uint64_t v = 0;

  if (n != 20 || memcmp(k, "blk:", 4) != 0)
    return UINT64_MAX;
  for (size_t i = 4; i < 20; i++) {
    int c = k[i], d = c >= '0' && c <= '9'   ? c - '0'
                      : c >= 'a' && c <= 'f' ? c - 'a' + 10
                      : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                             : -1;

    if (d < 0)
      return UINT64_MAX;
    v = v << 4 | (uint64_t)d;
  }
  return v < s->nblocks ? v : UINT64_MAX;
}

static h5_slot *h5_slot_of(h5_store *s, const void *k, size_t n) {
  uint64_t i = h5_hash(k, n) & (s->mapcap - 1);

  while (s->map[i].key &&
         (s->map[i].klen != n || memcmp(s->map[i].key, k, n) != 0))
    i = (i + 1) & (s->mapcap - 1);
  return &s->map[i];
}

static int h5_map_grow(h5_store *s) {
  uint64_t ncap = s->mapcap ? s->mapcap * 2 : 1024;
  h5_slot *old = s->map, *nm = calloc(ncap, sizeof *nm);
  uint64_t ocap = s->mapcap;

  if (!nm)
    return -ENOMEM;
  s->map = nm;
  s->mapcap = ncap;
  for (uint64_t i = 0; i < ocap; i++)
    if (old[i].key)
      *h5_slot_of(s, old[i].key, old[i].klen) = old[i];
  free(old);
  return 0;
}

static void h5_map_free(h5_store *s) {
  for (uint64_t i = 0; i < s->mapcap; i++)
    free(s->map[i].key);
  free(s->map);
  s->map = NULL;
  s->mapcap = s->mapused = 0;
  s->next_row = s->nblocks;
}

/* The row of key k: 0, or -ENOENT for a key never put (add: a new row
 * for a new key), or -ENOMEM. */
static int h5_row(h5_store *s, const void *k, size_t n, int add,
                  uint64_t *row) {
  h5_slot *e;

  if ((*row = h5_blk_row(s, k, n)) != UINT64_MAX)
    return 0;
  if (!add) {
    if (s->mapcap == 0 || !(e = h5_slot_of(s, k, n))->key)
      return -ENOENT;
    *row = e->row;
    return 0;
  }
  if ((s->mapused + 1) * 2 > s->mapcap && h5_map_grow(s) != 0)
    return -ENOMEM;
  e = h5_slot_of(s, k, n);
  if (!e->key) {
    if (!(e->key = malloc(n ? n : 1)))
      return -ENOMEM;
    memcpy(e->key, k, n);
    e->klen = n;
    e->row = s->next_row++;
    s->mapused++;
  }
  *row = e->row;
  return 0;
}

/* ---- the file ------------------------------------------------------------ */

static void h5_close_file(h5_store *s) {
  if (s->fspace >= 0)
    H5Sclose(s->fspace);
  if (s->dset >= 0)
    H5Dclose(s->dset);
  if (s->file >= 0)
    H5Fclose(s->file);
  s->fspace = s->dset = s->file = H5I_INVALID_HID;
}

/* Create (create=1, an empty store) or reopen the file. */
static int h5_open_file(h5_store *s, int create, char *msg, size_t cap) {
  hsize_t dims[2] = {s->rows, s->block};
  hsize_t maxd[2] = {H5S_UNLIMITED, s->block};
  hsize_t chunk[2] = {1, s->block};
  hid_t space = H5I_INVALID_HID, dcpl = H5I_INVALID_HID;
  int rc = 0;

  if (create) {
    s->file = H5Fcreate(s->path, H5F_ACC_TRUNC, H5P_DEFAULT, s->fapl);
    if (s->file < 0)
      return h5_fail(msg, cap, -EIO, "H5Fcreate");
    if ((space = H5Screate_simple(2, dims, maxd)) < 0 ||
        (dcpl = H5Pcreate(H5P_DATASET_CREATE)) < 0 ||
        H5Pset_chunk(dcpl, 2, chunk) < 0 ||
        H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER) < 0 ||
        H5Pset_alloc_time(dcpl, H5D_ALLOC_TIME_INCR) < 0) {
      rc = h5_fail(msg, cap, -EIO, "creating the dataspace");
    } else {
      s->dset = H5Dcreate2(s->file, H5_DSET, H5T_STD_U8LE, space, H5P_DEFAULT,
                           dcpl, s->dapl);
      if (s->dset < 0)
        rc = h5_fail(msg, cap, -EIO, "H5Dcreate2");
    }
    if (dcpl >= 0)
      H5Pclose(dcpl);
    if (space >= 0)
      H5Sclose(space);
  } else {
    s->file = H5Fopen(s->path, H5F_ACC_RDWR, s->fapl);
    if (s->file < 0)
      return h5_fail(msg, cap, -EIO, "H5Fopen");
    s->dset = H5Dopen2(s->file, H5_DSET, s->dapl);
    if (s->dset < 0)
      rc = h5_fail(msg, cap, -EIO, "H5Dopen2");
  }
  if (rc == 0 && (s->fspace = H5Dget_space(s->dset)) < 0)
    rc = h5_fail(msg, cap, -EIO, "H5Dget_space");
  if (rc != 0)
    h5_close_file(s);
  return rc;
}

/* Make row `row` exist: grow the dataset (doubling) and `present`. */
static int h5_reserve(h5_store *s, uint64_t row, char *msg, size_t cap) {
  uint64_t nrows = s->rows;
  hsize_t dims[2];
  uint8_t *p;

  if (row < s->rows)
    return 0;
  while (nrows <= row)
    nrows *= 2;
  dims[0] = nrows;
  dims[1] = s->block;
  if (!(p = realloc(s->present, nrows)))
    return h5_sys(msg, cap, ENOMEM, "growing the row map");
  memset(p + s->rows, 0, nrows - s->rows);
  s->present = p;
  if (H5Dset_extent(s->dset, dims) < 0)
    return h5_fail(msg, cap, -EIO, "H5Dset_extent");
  H5Sclose(s->fspace);
  if ((s->fspace = H5Dget_space(s->dset)) < 0)
    return h5_fail(msg, cap, -EIO, "H5Dget_space");
  s->rows = nrows;
  return 0;
}

static int h5_select_row(h5_store *s, uint64_t row) {
  hsize_t start[2] = {row, 0}, count[2] = {1, s->block};

  return H5Sselect_hyperslab(s->fspace, H5S_SELECT_SET, start, NULL, count,
                             NULL) < 0
             ? -EIO
             : 0;
}

static void h5_free(h5_store *s) {
  h5_close_file(s);
  if (s->mspace >= 0)
    H5Sclose(s->mspace);
  if (s->dapl >= 0)
    H5Pclose(s->dapl);
  if (s->fapl >= 0)
    H5Pclose(s->fapl);
  h5_map_free(s);
  free(s->present);
  free(s);
}

/* ---- the adapter --------------------------------------------------------- */

static int h5_init_locked(const suite_cfg *cfg, h5_store *s, char *msg,
                          size_t cap) {
  hsize_t mdims[2] = {1, cfg->block};
  unsigned maj, min, rel;

  if (cfg->block == 0 || cfg->block > CHUNK_MAX) {
    snprintf(msg, cap,
             "hdf5: a %llu-byte block cannot be one chunk (HDF5 "
             "chunks are 1 byte to 4 GiB - 1)",
             (unsigned long long)cfg->block);
    return SUITE_SKIP;
  }
  /* errors are reported through msg (h5_fail), not printed by HDF5 */
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
  H5get_libversion(&maj, &min, &rel);
  snprintf(s->version, sizeof s->version, "%u.%u.%u", maj, min, rel);
  if ((s->fapl = H5Pcreate(H5P_FILE_ACCESS)) < 0 ||
      H5Pset_libver_bounds(s->fapl, H5F_LIBVER_LATEST, H5F_LIBVER_LATEST) < 0 ||
      H5Pset_alignment(s->fapl, H5_ALIGN, H5_ALIGN) < 0 ||
      (s->dapl = H5Pcreate(H5P_DATASET_ACCESS)) < 0 ||
      H5Pset_chunk_cache(s->dapl, H5D_CHUNK_CACHE_NSLOTS_DEFAULT, 0,
                         H5D_CHUNK_CACHE_W0_DEFAULT) < 0 ||
      (s->mspace = H5Screate_simple(2, mdims, NULL)) < 0)
    return h5_fail(msg, cap, -EIO, "setting up the property lists");
  s->rows = cfg->nblocks ? cfg->nblocks : 1;
  if (!(s->present = calloc(s->rows, 1)))
    return h5_sys(msg, cap, ENOMEM, "the row map");
  return h5_open_file(s, 1, msg, cap);
}

static int h5_init(const suite_cfg *cfg, void **st, char *msg, size_t cap) {
  h5_store *s = calloc(1, sizeof *s);
  int rc;

  *st = NULL;
  if (!s)
    return h5_sys(msg, cap, ENOMEM, "init");
  s->fapl = s->dapl = s->file = s->dset = s->fspace = s->mspace =
      H5I_INVALID_HID;
  s->block = cfg->block;
  s->nblocks = cfg->nblocks;
  s->next_row = cfg->nblocks;
  if (snprintf(s->path, sizeof s->path, "%s/%s", cfg->dir, H5_FILE) >=
      (int)sizeof s->path) {
    free(s);
    return h5_sys(msg, cap, ENAMETOOLONG, cfg->dir);
  }
  pthread_mutex_lock(&h5_lib);
  rc = h5_init_locked(cfg, s, msg, cap);
  if (rc != 0) {
    unlink(s->path);
    h5_free(s);
  }
  pthread_mutex_unlock(&h5_lib);
  if (rc == 0)
    *st = s;
  return rc;
}

static const char *h5_version(void *st) {
  return ((h5_store *)st)->version;
}

static int h5_open(void *st, int t, void **h, char *msg, size_t cap) {
  (void)t, (void)msg, (void)cap;
  *h = st; /* one lock for the library: nothing per thread */
  return 0;
}

static void h5_close(void *st, void *h) {
  (void)st, (void)h;
}

static int h5_closed(char *msg, size_t cap) {
  snprintf(msg, cap,
           "hdf5: the file is closed (a cold restart or a clear "
           "failed)");
  return -EBADF;
}

static int h5_put(void *h, suite_item *it, int n, char *msg, size_t cap) {
  h5_store *s = h;
  int ok = 0;

  pthread_mutex_lock(&h5_lib);
  if (s->file < 0) {
    pthread_mutex_unlock(&h5_lib);
    return h5_closed(msg, cap);
  }
  for (int i = 0; i < n; i++) {
    uint64_t row;
    int rc;

    if (it[i].vlen != s->block) {
      snprintf(msg, cap, "hdf5: a %zu-byte value; a row is %llu bytes",
               it[i].vlen, (unsigned long long)s->block);
      it[i].rc = -EINVAL;
      continue;
    }
    if ((rc = h5_row(s, it[i].key, it[i].klen, 1, &row)) != 0) {
      it[i].rc = h5_sys(msg, cap, -rc, "mapping a key to a row");
      continue;
    }
    if ((rc = h5_reserve(s, row, msg, cap)) != 0) {
      it[i].rc = rc;
      continue;
    }
    if (h5_select_row(s, row) != 0 ||
        H5Dwrite(s->dset, H5T_NATIVE_UINT8, s->mspace, s->fspace, H5P_DEFAULT,
                 it[i].val) < 0) {
      it[i].rc = h5_fail(msg, cap, -EIO, "H5Dwrite");
      continue;
    }
    s->present[row] = 1;
    it[i].rc = 0;
    ok++;
  }
  pthread_mutex_unlock(&h5_lib);
  return ok;
}

static int h5_read(void *h, suite_item *it, int n, int copy, char *msg,
                   size_t cap) {
  h5_store *s = h;
  int ok = 0;

  pthread_mutex_lock(&h5_lib);
  if (s->file < 0) {
    pthread_mutex_unlock(&h5_lib);
    return h5_closed(msg, cap);
  }
  for (int i = 0; i < n; i++) {
    uint64_t row;

    if (h5_row(s, it[i].key, it[i].klen, 0, &row) != 0 || row >= s->rows ||
        !s->present[row]) {
      it[i].rc = -ENOENT; /* an answer, not an error: no msg */
      continue;
    }
    if (copy) {
      if (it[i].vlen < s->block) {
        snprintf(msg, cap, "hdf5: a %llu-byte row, a %zu-byte buffer",
                 (unsigned long long)s->block, it[i].vlen);
        it[i].rc = -EMSGSIZE;
        continue;
      }
      if (h5_select_row(s, row) != 0 ||
          H5Dread(s->dset, H5T_NATIVE_UINT8, s->mspace, s->fspace, H5P_DEFAULT,
                  it[i].val) < 0) {
        it[i].rc = h5_fail(msg, cap, -EIO, "H5Dread");
        continue;
      }
      it[i].vlen = s->block;
    }
    it[i].rc = 0;
    ok++;
  }
  pthread_mutex_unlock(&h5_lib);
  return ok;
}

static int h5_get(void *h, suite_item *it, int n, char *msg, size_t cap) {
  return h5_read(h, it, n, 1, msg, cap);
}

static int h5_contains(void *h, suite_item *it, int n, char *msg, size_t cap) {
  return h5_read(h, it, n, 0, msg, cap);
}

static int h5_sync_locked(h5_store *s, char *msg, size_t cap) {
  int *fd = NULL;

  if (s->file < 0)
    return h5_closed(msg, cap);
  if (H5Fflush(s->file, H5F_SCOPE_LOCAL) < 0)
    return h5_fail(msg, cap, -EIO, "H5Fflush");
  /* the sec2 driver's handle is a pointer to its file descriptor */
  if (H5Fget_vfd_handle(s->file, s->fapl, (void **)&fd) < 0 || !fd)
    return h5_fail(msg, cap, -EIO, "H5Fget_vfd_handle");
  if (fsync(*fd) != 0)
    return h5_sys(msg, cap, errno, "fsync");
  return 0;
}

static int h5_sync(void *st, char *msg, size_t cap) {
  int rc;

  pthread_mutex_lock(&h5_lib);
  rc = h5_sync_locked(st, msg, cap);
  pthread_mutex_unlock(&h5_lib);
  return rc;
}

static int h5_cold(void *st, char *msg, size_t cap) {
  h5_store *s = st;
  int fd, rc = 0;

  pthread_mutex_lock(&h5_lib);
  if (s->file < 0) {
    rc = h5_closed(msg, cap);
    goto out;
  }
  h5_close_file(s); /* writes everything HDF5 held back to the kernel */
  fd = open(s->path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    rc = h5_sys(msg, cap, errno, "open for the page cache drop");
  } else {
    /* dirty pages cannot be dropped: make them clean first */
    if (fdatasync(fd) != 0)
      rc = h5_sys(msg, cap, errno, "fdatasync");
    else if ((rc = posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED)) != 0)
      rc = h5_sys(msg, cap, rc, "posix_fadvise(DONTNEED)");
    close(fd);
  }
  if (rc == 0)
    rc = h5_open_file(s, 0, msg, cap);
out:
  pthread_mutex_unlock(&h5_lib);
  return rc;
}

static int h5_clear(void *st, char *msg, size_t cap) {
  h5_store *s = st;
  int fd, rc = 0;

  pthread_mutex_lock(&h5_lib);
  h5_close_file(s);
  if (unlink(s->path) != 0 && errno != ENOENT) {
    rc = h5_sys(msg, cap, errno, "unlink");
    goto out;
  }
  /* so that the next timed write does not pay for freeing the old file */
  fd = open(s->path, O_RDONLY | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0 || syncfs(fd) != 0) {
    rc = h5_sys(msg, cap, errno, "syncfs");
    if (fd >= 0)
      close(fd);
    goto out;
  }
  close(fd);
  h5_map_free(s);
  memset(s->present, 0, s->rows);
  rc = h5_open_file(s, 1, msg, cap);
out:
  pthread_mutex_unlock(&h5_lib);
  return rc;
}

static void h5_fini(void *st) {
  h5_store *s = st;

  if (!s)
    return;
  pthread_mutex_lock(&h5_lib);
  unlink(s->path);
  h5_free(s);
  pthread_mutex_unlock(&h5_lib);
}

const suite_adapter suite_hdf5 = {
    .name = "hdf5",
    .kind = "disk",
    .init = h5_init,
    .version = h5_version,
    .open = h5_open,
    .close = h5_close,
    .put = h5_put,
    .get = h5_get,
    .contains = h5_contains,
    .sync = h5_sync,
    .cold = h5_cold,
    .clear = h5_clear,
    .fini = h5_fini,
};
