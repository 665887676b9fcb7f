/*
 * bench_disk.c - `cascade bench disk`: the disk tier measured against fio
 * and against a file-per-block layout, in one run.
 *
 * For each block size, three systems each write TOTAL bytes and read them
 * back cold, at queue depth QD.  Six cells, in the order of the table:
 *
 *   fio_write      the `fio` program (a child process, no shell) on one
 *                  file: --direct=1 --ioengine=io_uring --iodepth=QD
 *                  --bs=BLOCK --size=TOTAL --rw=write --end_fsync=1
 *                  (fio's runtime includes the final fsync)
 *   posix_write    "posix-file-per-block", the layout of LMCache's local
 *                  disk backend: one file per block in a subdirectory,
 *                  open/write/close (buffered), then an fsync of every
 *                  file and of the directory; the time includes the fsyncs
 *   cascade_write  cascade_put_batch of B blocks per call into a store
 *                  with disk.write=through, disk.sync=batch, dedup off,
 *                  disk.queue_depth=QD, then cascade_flush; the time
 *                  includes the flush.  B = BATCH_BYTES / block, at most
 *                  BATCH_MAX (the engine's chunk) and at least QD: the
 *                  blocks of one request, as an inference engine asks
 *                  for them; the store's DRAM holds B + 4 blocks and is
 *                  prefaulted at open (dram.prefault), as the DRAM of a
 *                  store that has been serving is: first-touch page
 *                  faults are not disk work
 *   fio_read       fio --rw=read on the same file, after dropping its pages
 *                  from the page cache (O_DIRECT bypasses it anyway)
 *   posix_read     open/read/close of every file, after
 *                  posix_fadvise(POSIX_FADV_DONTNEED) on each
 *   cascade_read   cascade_close, cascade_open on the same directory (the
 *                  restart rebuilds the disk index), cascade_drop_page_cache,
 *                  then cascade_get_batch of B blocks per call into the
 *                  caller's buffers, 4096-aligned (posix_memalign, as an
 *                  engine's pinned, page-aligned buffers are)
 *
 * The CLI sees only the public API, so the store is driven exactly as an
 * application would drive it.
 *
 * Content.  A pool of POOL_BYTES (+ the largest block) is filled once from
 * a seeded generator (splitmix64: incompressible).  Block j is the window
 * of the pool starting at byte 8 * ((j * ODD) mod POOL_BYTES / 8), distinct
 * for j < POOL_BYTES / 8: every block differs, no block is generated or
 * copied inside a timed region, and a block read back is checked against
 * its window, byte for byte, without keeping a copy.  posix and cascade
 * write these bytes; fio writes its own random buffers (seeded with the
 * same seed through --randseed), which the bench cannot choose.
 *
 * Timing.  Write cells: one span from the first write to the end of the
 * last fsync/flush.  Read cells: the sum of the spans of the read calls;
 * verification and the cache drops before it are outside.  fio cells: the
 * bytes and runtime fio reports (terse output, version 3).  A cell is run
 * once (--repeat N: N times, interleaved by system, median reported);
 * ratios are medians of the per-repetition ratios, as in bench dram.
 *
 * Files.  Everything lives in one fresh directory made with mkdtemp (in
 * --dir, else $TMPDIR, else /var/tmp): fio.dat, posix/block-NNNNNNNN,
 * cascade/ (the store's disk.dir).  A system's files are removed after its
 * read (then syncfs, so the next timed cell does not pay for the unlinks),
 * so a size needs about TOTAL bytes of free space; the directory is removed
 * at the end unless --keep (which also keeps the last size's files).
 *
 * Failures.  A failure of posix or cascade, or any wrong byte read back, is
 * reported naming the system and the error; the other systems still run,
 * and the exit status is 1.  Without fio its rows are left out (if fio
 * fails, they read "failed") and the targets against fio are "n/a"; the
 * exit status does not change.  Missed targets never change it either.
 *
 * Single-threaded; no global state.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"

extern char **environ;

#define MAX_SIZES 16
#define MAX_REPEAT 99
#define MIN_BLOCK (4ull << 10)   /* O_DIRECT needs whole sectors */
#define MAX_BLOCK (256ull << 20) /* below the default max_value */
#define MAX_QD 256               /* disk.queue_depth's range */
#define MAX_BUFFERS (4ull << 30) /* QD read buffers of the largest block */
#define POOL_BYTES (64ull << 20) /* a power of two, see "Content" */
#define ODD 0x9e3779b97f4a7c15ull
#define SEED 0x6361736361646531ull
#define DRAM_MIN (64ull << 20) /* cascade store: max(64 MiB, B + 4 blocks) */
#define BATCH_MAX 64             /* blocks per cascade call, at most ... */
#define BATCH_BYTES (256ull << 20) /* ... and bytes, unless QD is more */
#define SPACE_SLACK (512ull << 20)
#define BENCH_NS "bench"
#define KEY_BYTES 32
#define FIO_OUT_MAX (1u << 20)
#define DIR_MAX 1024             /* the work directory's path */
#define PATH_BUF (DIR_MAX + 64)  /* a path in it */
#define ERR_MAX (PATH_BUF + 512) /* a message */

enum { SYS_FIO, SYS_POSIX, SYS_CASCADE, NSYS };

enum {
  OP_FIO_WRITE,
  OP_POSIX_WRITE,
  OP_CASCADE_WRITE,
  OP_FIO_READ,
  OP_POSIX_READ,
  OP_CASCADE_READ,
  NOPS
};

static const char *const op_name[NOPS] = {"fio_write",     "posix_write",
                                          "cascade_write", "fio_read",
                                          "posix_read",    "cascade_read"};
static const char *const sys_name[NSYS] = {"fio", "posix-file-per-block",
                                           "cascade"};

static int op_sys(int op) { return op % NSYS; }

/* Blocks per cascade_put_batch / cascade_get_batch call for block size
 * bs at queue depth qd. */
static uint64_t batch_blocks(uint64_t bs, int qd) {
  uint64_t n = BATCH_BYTES / bs;
  if (n > BATCH_MAX) n = BATCH_MAX;
  return n > (uint64_t)qd ? n : (uint64_t)qd;
}
static int op_is_read(int op) { return op >= OP_FIO_READ; }
/* The op of system sys in the same direction as op. */
static int op_of(int sys, int op) {
  return (op_is_read(op) ? OP_FIO_READ : OP_FIO_WRITE) + sys;
}

/* One timed run of one cell. */
struct run {
  double secs;    /* timed seconds */
  uint64_t bytes; /* bytes moved */
  uint64_t ops;   /* blocks moved (fio: its I/Os) */
};

enum { CELL_NONE, CELL_OK, CELL_FAILED };

struct result {
  int op;
  uint64_t bs, bytes, blocks;
  int state; /* CELL_OK or CELL_FAILED */
  char err[ERR_MAX];
  double gbps, gbps_min, gbps_max, ops_per_s, secs; /* median run */
  double ratio_fio, ratio_posix;                    /* NAN when not available */
  int has_target;
  int met_fio, met_posix; /* 1 met, 0 missed, -1 n/a */
};

struct bench {
  /* options */
  uint64_t sizes[MAX_SIZES];
  int nsizes;
  uint64_t total;
  int qd, repeat, json, keep;
  int small_pages;           /* --small-pages: read buffers on 4 KiB pages */
  int huge;                  /* the read buffers are on huge pages */
  const char *dir_opt;
  cli_common co;

  /* environment */
  char base[DIR_MAX];   /* where the work directory is made */
  char work[DIR_MAX];   /* ours: removed at the end unless --keep */
  int base_made;        /* we made --dir: remove it too */
  char fio[DIR_MAX];    /* fio's path, "" if not found */
  char fio_version[64]; /* first line of `fio --version` */
  char fs_type[64];     /* the work directory's file system */
  char device[256];     /* the mount's source, "" if unknown */
  int on_tmpfs;
  char disk_mode[32];        /* the store's stats.disk_mode */
  int cascade_ok;            /* the probe store opened with a disk tier */
  char cascade_err[ERR_MAX]; /* why not */

  /* memory */
  uint8_t *pool; /* POOL_BYTES + largest block */
  uint8_t *buf;  /* read buffers: B blocks of the size that needs most */
  uint64_t max_bs, max_batch; /* largest block; largest B x block */

  /* the size being measured */
  uint64_t bs, n; /* block bytes, blocks per system */
  int cell, ncells;

  struct result res[MAX_SIZES * NOPS];
  int nres;
  int failed;      /* a posix or cascade cell failed */
  int wrong_bytes; /* some system read back wrong bytes */
  char err[ERR_MAX];
};

void cli_bench_disk_usage(FILE *f) {
  fprintf(f, "Usage: cascade bench disk [--quick] [--json] [--sizes LIST] "
             "[--total SIZE]\n"
             "                          [--qd N] [--repeat N] [--dir DIR] "
             "[--keep]\n"
             "                          [--set NAME=VALUE]...\n"
             "\n"
             "Measure the disk tier against fio and a file-per-block layout: "
             "for each block\n"
             "size, each system writes TOTAL bytes and reads them back cold, "
             "at queue depth N:\n"
             "  fio_write, fio_read      fio on one file: O_DIRECT, io_uring, "
             "iodepth N; the\n"
             "                           write ends with an fsync (skipped "
             "without fio)\n"
             "  posix_write, posix_read  posix-file-per-block (the layout of "
             "LMCache's local\n"
             "                           disk backend): one file per block, "
             "open/write/close,\n"
             "                           fsync of every file; read with "
             "open/read/close\n"
             "  cascade_write            cascade_put_batch of B blocks per "
             "call (B: 256 MiB\n"
             "                           of blocks, at most 64, at least N), "
             "disk.write=\n"
             "                           through, then cascade_flush\n"
             "                           (target >= 0.9x fio_write and > "
             "posix_write)\n"
             "  cascade_read             reopen the store, "
             "cascade_drop_page_cache, then\n"
             "                           cascade_get_batch of B blocks per "
             "call into\n"
             "                           buffers on transparent huge pages "
             "(--small-pages:\n"
             "                           4 KiB pages)\n"
             "                           (target >= 0.9x fio_read and > "
             "posix_read)\n"
             "Reads follow a page cache drop (posix_fadvise DONTNEED).\n"
             "\n"
             "Options:\n"
             "  --sizes LIST   block sizes, multiples of 4 KiB up to 256 MiB\n"
             "                 [256k,1m,4m,16m; --quick: 256k,4m]\n"
             "  --total SIZE   bytes written and read per size and system "
             "[1g; --quick: 256m]\n"
             "  --qd N         fio's iodepth, blocks per cascade batch, "
             "disk.queue_depth [8]\n"
             "  --repeat N     run every cell N times, report the median [1]\n"
             "  --dir DIR      make the data directory in DIR [$TMPDIR, else "
             "/var/tmp];\n"
             "                 on tmpfs the results are not disk results\n"
             "  --keep         keep the data directory and the last size's "
             "files\n"
             "  --small-pages  read into buffers on 4 KiB pages instead of "
             "huge pages\n"
             "                 (a 1 MiB O_DIRECT read into 4 KiB pages is "
             "split where a\n"
             "                 device takes fewer segments per request)\n"
             "  --quick        fewer sizes, less data\n"
             "  --json         one JSON object per line: a machine record, "
             "then results\n"
             "  --set, --dram, --policy   engine settings of the cascade "
             "store, applied\n"
             "                 after the bench's own (disk.dir excepted)\n"
             "\n"
             "Bytes read back are checked.  Wrong bytes, or a failure of posix "
             "or cascade,\n"
             "end the run with exit status 1; without fio, or if fio fails, "
             "its rows are\n"
             "left out or marked failed and the targets against fio are n/a.  "
             "Missed targets\n"
             "do not change the exit status.\n");
}

/* ---- Content ------------------------------------------------------------- */

/* The bytes of block j (bs bytes from here). */
static const uint8_t *block_src(const struct bench *b, uint64_t j) {
  return b->pool + ((j * ODD) % (POOL_BYTES / 8)) * 8;
}

/* Compare block j read back with what was written. */
static int verify_block(struct bench *b, const uint8_t *got, uint64_t j) {
  const uint8_t *want = block_src(b, j);
  uint64_t k = 0;

  if (memcmp(got, want, b->bs) == 0) return 0;
  while (k < b->bs && got[k] == want[k]) k++;
  snprintf(b->err, sizeof b->err,
           "wrong bytes read back: block %" PRIu64 " byte %" PRIu64
           ": expected 0x%02x, got 0x%02x",
           j, k, want[k], got[k]);
  b->wrong_bytes = 1;
  return CASCADE_ECORRUPT;
}

static inline void make_key(uint8_t key[KEY_BYTES], uint64_t bs, uint64_t j) {
  memcpy(key, "cascade-bench-dk", 16);
  memcpy(key + 16, &bs, 8);
  memcpy(key + 24, &j, 8);
}

/* ---- Files --------------------------------------------------------------- */

static int sys_err(struct bench *b, const char *what, const char *path) {
  int e = errno;

  snprintf(b->err, sizeof b->err, "%s %s: %s", what, path, strerror(e));
  return -e;
}

static int write_all(int fd, const uint8_t *p, uint64_t len) {
  while (len > 0) {
    ssize_t w = write(fd, p, len);

    if (w < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    p += w;
    len -= (uint64_t)w;
  }
  return 0;
}

/* Read exactly len bytes; a short file sets errno = EIO. */
static int read_all(int fd, uint8_t *p, uint64_t len) {
  while (len > 0) {
    ssize_t r = read(fd, p, len);

    if (r < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    if (r == 0) {
      errno = EIO;
      return -1;
    }
    p += r;
    len -= (uint64_t)r;
  }
  return 0;
}

/* Drop a file's pages from the page cache. */
static int drop_file_cache(struct bench *b, const char *path) {
  int fd = open(path, O_RDONLY | O_CLOEXEC), rc;

  if (fd < 0) return sys_err(b, "open", path);
  rc = posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  close(fd);
  if (rc != 0) {
    errno = rc;
    return sys_err(b, "posix_fadvise(DONTNEED)", path);
  }
  return 0;
}

static void work_path(const struct bench *b, const char *name, char *out,
                      size_t cap) {
  snprintf(out, cap, "%s/%s", b->work, name);
}

/* Remove a system's files, then commit the file system's journal so that
 * the next timed cell does not pay for the unlinks. */
static void clear_system(struct bench *b, int sys) {
  static const char *const name[NSYS] = {"fio.dat", "posix", "cascade"};
  char path[PATH_BUF];
  int fd;

  work_path(b, name[sys], path, sizeof path);
  if (cli_rm_tree(path, 0) != 0)
    cli_err("bench disk: warning: cannot remove %s: %s", path, strerror(errno));
  fd = open(b->work, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    syncfs(fd);
    close(fd);
  }
}

/* ---- fio ---------------------------------------------------------------- */

/* Find an executable `fio` on $PATH. */
static int find_fio(char *out, size_t cap) {
  const char *path = getenv("PATH");

  if (path == NULL || *path == '\0') path = "/usr/local/bin:/usr/bin:/bin";
  while (*path != '\0') {
    size_t len = strcspn(path, ":");

    if (len > 0 && len + 5 < cap) {
      snprintf(out, cap, "%.*s/fio", (int)len, path);
      if (access(out, X_OK) == 0) return 0;
    }
    path += len;
    if (*path == ':') path++;
  }
  out[0] = '\0';
  return -1;
}

/*
 * Run argv[0] with stdout and stderr into one pipe; return the exit status
 * (or -errno if it could not run), the output in *out (NUL-terminated, at
 * most FIO_OUT_MAX bytes kept; free it).
 */
static int spawn_capture(char *const argv[], char **out) {
  posix_spawn_file_actions_t fa;
  int p[2], status = 0, rc;
  size_t len = 0, cap = 4096;
  char *buf = malloc(cap);
  pid_t pid;

  *out = NULL;
  if (buf == NULL) return -ENOMEM;
  if (pipe2(p, O_CLOEXEC) != 0) {
    free(buf);
    return -errno;
  }
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, p[1], 1);
  posix_spawn_file_actions_adddup2(&fa, p[1], 2);
  rc = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  close(p[1]);
  if (rc != 0) {
    close(p[0]);
    free(buf);
    return -rc;
  }
  for (;;) {
    ssize_t r;

    if (cap - len < 1024 && cap < FIO_OUT_MAX) {
      char *nb = realloc(buf, cap * 2);

      if (nb != NULL) {
        buf = nb;
        cap *= 2;
      }
    }
    if (cap - len <= 1) { /* full: drain and drop the rest */
      char sink[4096];

      r = read(p[0], sink, sizeof sink);
    } else {
      r = read(p[0], buf + len, cap - len - 1);
      if (r > 0) len += (size_t)r;
    }
    if (r == 0 || (r < 0 && errno != EINTR)) break;
  }
  close(p[0]);
  buf[len] = '\0';
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
    ;
  *out = buf;
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

/* Collapse fio's output into one line for a message. */
static void one_line(const char *s, char *out, size_t cap) {
  size_t o = 0;

  for (; *s != '\0' && o + 1 < cap; s++) {
    if (*s == '\n' || *s == '\r' || *s == '\t') {
      if (o > 0 && out[o - 1] != ' ' && s[1] != '\0') out[o++] = ' ';
    } else {
      out[o++] = *s;
    }
  }
  while (o > 0 && out[o - 1] == ' ') o--;
  out[o] = '\0';
}

static void fio_version(struct bench *b) {
  char *argv[] = {b->fio, "--version", NULL};
  char *out = NULL;

  snprintf(b->fio_version, sizeof b->fio_version, "?");
  if (spawn_capture(argv, &out) == 0 && out != NULL) {
    out[strcspn(out, "\r\n")] = '\0';
    if (out[0] != '\0')
      snprintf(b->fio_version, sizeof b->fio_version, "%s", out);
  }
  free(out);
}

/*
 * Field k (1-based) of fio's terse (version 3) line, as a number.  Fields
 * used: 5 error; read: 6 KiB moved, 9 runtime in ms; write: 47 and 50.
 */
static int terse_field(const char *line, int k, double *v) {
  const char *p = line;
  char *end;

  for (int i = 1; i < k; i++) {
    p = strchr(p, ';');
    if (p == NULL) return -1;
    p++;
  }
  *v = strtod(p, &end);
  return end == p || (*end != ';' && *end != '\0' && *end != '\n') ? -1 : 0;
}

static int run_fio(struct bench *b, int write, struct run *r) {
  char path[PATH_BUF], a_file[PATH_BUF + 16], a_qd[32], a_bs[48], a_size[48],
      a_seed[48], msg[256];
  char *argv[] = {b->fio,
                  "--name=cascade-bench-disk",
                  a_file,
                  "--direct=1",
                  "--ioengine=io_uring",
                  a_qd,
                  a_bs,
                  a_size,
                  write ? "--rw=write" : "--rw=read",
                  write ? "--end_fsync=1" : "--end_fsync=0",
                  a_seed,
                  "--output-format=terse",
                  "--terse-version=3",
                  NULL};
  const char *line;
  char *out = NULL;
  double err = 0, kib = 0, ms = 0;
  int base = write ? 47 : 6, rc;

  work_path(b, "fio.dat", path, sizeof path);
  snprintf(a_file, sizeof a_file, "--filename=%s", path);
  snprintf(a_qd, sizeof a_qd, "--iodepth=%d", b->qd);
  snprintf(a_bs, sizeof a_bs, "--bs=%" PRIu64, b->bs);
  snprintf(a_size, sizeof a_size, "--size=%" PRIu64, b->n * b->bs);
  snprintf(a_seed, sizeof a_seed, "--randseed=%" PRIu64, (uint64_t)(SEED >> 1));
  if (!write && (rc = drop_file_cache(b, path)) != 0) return rc;

  rc = spawn_capture(argv, &out);
  if (rc < 0) {
    snprintf(b->err, sizeof b->err, "cannot run %s: %s", b->fio, strerror(-rc));
    free(out);
    return rc;
  }
  /* The terse line starts "3;"; anything else is fio talking. */
  for (line = out; line != NULL && *line != '\0';) {
    if (strncmp(line, "3;", 2) == 0) break;
    line = strchr(line, '\n');
    if (line != NULL) line++;
  }
  if (line == NULL || *line == '\0' || terse_field(line, 5, &err) != 0 ||
      terse_field(line, base, &kib) != 0 ||
      terse_field(line, base + 3, &ms) != 0 || rc != 0 || err != 0) {
    one_line(out, msg, sizeof msg);
    snprintf(b->err, sizeof b->err,
             "fio exited with status %d (error %.0f): %s", rc, err,
             msg[0] ? msg : "no output");
    free(out);
    return -EIO;
  }
  free(out);
  r->bytes = (uint64_t)kib * 1024;
  r->secs = ms / 1e3;
  if (r->bytes != b->n * b->bs || ms <= 0) {
    snprintf(b->err, sizeof b->err,
             "fio moved %" PRIu64 " bytes in %.0f ms, expected %" PRIu64
             " bytes",
             r->bytes, ms, b->n * b->bs);
    return -EIO;
  }
  r->ops = b->n;
  return 0;
}

/* ---- posix-file-per-block ----------------------------------------------- */

static void posix_path(const struct bench *b, uint64_t j, char *out,
                       size_t cap) {
  snprintf(out, cap, "%s/posix/block-%08" PRIu64, b->work, j);
}

static int posix_write(struct bench *b, struct run *r) {
  char dir[PATH_BUF], path[PATH_BUF];
  double t0;
  int fd;

  work_path(b, "posix", dir, sizeof dir);
  if (mkdir(dir, 0755) != 0) return sys_err(b, "mkdir", dir);

  t0 = cli_now();
  for (uint64_t j = 0; j < b->n; j++) {
    posix_path(b, j, path, sizeof path);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return sys_err(b, "open", path);
    if (write_all(fd, block_src(b, j), b->bs) != 0) {
      int rc = sys_err(b, "write", path);

      close(fd);
      return rc;
    }
    if (close(fd) != 0) return sys_err(b, "close", path);
  }
  for (uint64_t j = 0; j < b->n; j++) {
    posix_path(b, j, path, sizeof path);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return sys_err(b, "open", path);
    if (fsync(fd) != 0) {
      int rc = sys_err(b, "fsync", path);

      close(fd);
      return rc;
    }
    close(fd);
  }
  fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0 || fsync(fd) != 0) {
    int rc = sys_err(b, "fsync", dir);

    if (fd >= 0) close(fd);
    return rc;
  }
  close(fd);
  r->secs = cli_now() - t0;
  r->bytes = b->n * b->bs;
  r->ops = b->n;
  return 0;
}

static int posix_read(struct bench *b, struct run *r) {
  char path[PATH_BUF];
  int rc;

  for (uint64_t j = 0; j < b->n; j++) {
    posix_path(b, j, path, sizeof path);
    if ((rc = drop_file_cache(b, path)) != 0) return rc;
  }
  r->secs = 0;
  for (uint64_t j = 0; j < b->n; j++) {
    double t0;
    int fd;

    posix_path(b, j, path, sizeof path);
    t0 = cli_now();
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return sys_err(b, "open", path);
    if (read_all(fd, b->buf, b->bs) != 0) {
      rc = sys_err(b, "read", path);
      close(fd);
      return rc;
    }
    close(fd);
    r->secs += cli_now() - t0;
    if ((rc = verify_block(b, b->buf, j)) != 0) return rc;
  }
  r->bytes = b->n * b->bs;
  r->ops = b->n;
  return 0;
}

/* ---- cascade ------------------------------------------------------------ */

/*
 * Open a store on <work>/cascade for block size bs: the bench's settings,
 * then the user's (--set, --dram, --policy), then disk.dir again (the
 * bench removes that directory).  On failure b->err says why.
 */
static int cascade_store_open(struct bench *b, uint64_t bs, cascade **out) {
  char dir[PATH_BUF], cap[32], qd[16];
  uint64_t dram = (batch_blocks(bs, b->qd) + 4) * bs;
  const char *const set[][2] = {
      {"dram.capacity", cap},      {"dedup", "false"},
      {"disk.dir", dir},           {"disk.write", "through"},
      {"disk.sync", "batch"},      {"disk.queue_depth", qd},
      {"disk.promote_after", "0"},
      {"dram.prefault", "true"}, /* warm, as a serving store's DRAM is */
  };
  cascade_config *cfg = NULL;
  int rc;

  *out = NULL;
  work_path(b, "cascade", dir, sizeof dir);
  if (mkdir(dir, 0755) != 0 && errno != EEXIST) return sys_err(b, "mkdir", dir);
  if (dram < DRAM_MIN) dram = DRAM_MIN;
  snprintf(cap, sizeof cap, "%" PRIu64, dram);
  snprintf(qd, sizeof qd, "%d", b->qd);
  rc = cascade_config_new(&cfg);
  if (rc != 0) {
    snprintf(b->err, sizeof b->err, "cascade_config_new: %s",
             cascade_strerror(rc));
    return rc;
  }
  for (size_t k = 0; k < sizeof set / sizeof set[0]; k++)
    if ((rc = cascade_config_set(cfg, set[k][0], set[k][1])) != 0) {
      snprintf(b->err, sizeof b->err, "setting %s=%s: %s", set[k][0], set[k][1],
               cascade_strerror(rc));
      goto out;
    }
  for (size_t k = 0; k < b->co.nset; k++)
    if ((rc = cascade_config_set(cfg, b->co.set[k].name, b->co.set[k].value)) !=
        0) {
      snprintf(b->err, sizeof b->err, "--set %s=%s: %s", b->co.set[k].name,
               b->co.set[k].value, cascade_strerror(rc));
      goto out;
    }
  if ((rc = cascade_config_set(cfg, "disk.dir", dir)) != 0) {
    snprintf(b->err, sizeof b->err, "setting disk.dir=%s: %s", dir,
             cascade_strerror(rc));
    goto out;
  }
  rc = cascade_open(cfg, out);
  if (rc != 0)
    snprintf(b->err, sizeof b->err, "cascade_open (disk.dir=%s): %s", dir,
             cascade_strerror(rc));
out:
  cascade_config_free(cfg);
  return rc;
}

/* The store's disk mode into b->disk_mode; fails if it has no disk tier. */
static int cascade_disk_mode(struct bench *b, cascade *c) {
  struct cascade_stats st;
  int rc;

  memset(&st, 0, sizeof st);
  if ((rc = cascade_stats(c, &st)) != 0) {
    snprintf(b->err, sizeof b->err, "cascade_stats: %s", cascade_strerror(rc));
    return rc;
  }
  if (!st.tier[CASCADE_TIER_DISK].present) {
    snprintf(b->err, sizeof b->err,
             "the store opened without a disk tier (disk.dir is set)");
    return -ENOTSUP;
  }
  memcpy(b->disk_mode, st.disk_mode,
         sizeof st.disk_mode < sizeof b->disk_mode ? sizeof st.disk_mode
                                                   : sizeof b->disk_mode - 1);
  b->disk_mode[sizeof b->disk_mode - 1] = '\0';
  if (b->disk_mode[0] == '\0') snprintf(b->disk_mode, sizeof b->disk_mode, "?");
  return 0;
}

/* Open and close a store once before measuring: learns the disk mode for
 * the header, and finds out early whether this libcascade has a disk
 * tier. */
static void cascade_probe(struct bench *b) {
  cascade *c = NULL;

  snprintf(b->disk_mode, sizeof b->disk_mode, "unavailable");
  b->bs = b->sizes[0];
  b->cascade_ok =
      cascade_store_open(b, b->bs, &c) == 0 && cascade_disk_mode(b, c) == 0;
  if (!b->cascade_ok)
    snprintf(b->cascade_err, sizeof b->cascade_err, "%s", b->err);
  cascade_close(c);
  clear_system(b, SYS_CASCADE);
}

/* A batch that did not do all m items: the first failed item (rc of
 * items i..), or the call's own error, as a message. */
static int batch_err(struct bench *b, const char *call, uint64_t j0, int got,
                     size_t m, size_t bad, int bad_rc) {
  if (bad < m) {
    snprintf(b->err, sizeof b->err, "%s (block %" PRIu64 "): %s", call,
             j0 + bad, cascade_strerror(bad_rc));
    return bad_rc;
  }
  snprintf(b->err, sizeof b->err, "%s (blocks from %" PRIu64 "): %s", call, j0,
           got < 0 ? cascade_strerror(got) : "short count, no item failed");
  return got < 0 ? got : -EIO;
}

static int cascade_write(struct bench *b, cascade *c, struct run *r) {
  cascade_put_item items[MAX_QD > BATCH_MAX ? MAX_QD : BATCH_MAX];
  uint8_t keys[MAX_QD > BATCH_MAX ? MAX_QD : BATCH_MAX][KEY_BYTES];
  uint64_t batch = batch_blocks(b->bs, b->qd);
  double t0 = cli_now();
  int rc;

  for (uint64_t j = 0; j < b->n; j += batch) {
    size_t m = b->n - j < batch ? (size_t)(b->n - j) : (size_t)batch;
    int got;

    for (size_t i = 0; i < m; i++) {
      make_key(keys[i], b->bs, j + i);
      items[i] = (cascade_put_item){.key = keys[i],
                                    .klen = KEY_BYTES,
                                    .value = block_src(b, j + i),
                                    .vlen = b->bs};
    }
    got = cascade_put_batch(c, BENCH_NS, items, m);
    if (got != (int)m) {
      size_t i = 0;

      while (i < m && items[i].rc == 0) i++;
      return batch_err(b, "cascade_put_batch", j, got, m, i,
                       i < m ? items[i].rc : 0);
    }
  }
  if ((rc = cascade_flush(c)) != 0) {
    snprintf(b->err, sizeof b->err, "cascade_flush: %s", cascade_strerror(rc));
    return rc;
  }
  r->secs = cli_now() - t0;
  r->bytes = b->n * b->bs;
  r->ops = b->n;
  return 0;
}

static int cascade_read(struct bench *b, cascade *c, struct run *r) {
  cascade_get_item items[MAX_QD > BATCH_MAX ? MAX_QD : BATCH_MAX];
  uint8_t keys[MAX_QD > BATCH_MAX ? MAX_QD : BATCH_MAX][KEY_BYTES];
  uint64_t batch = batch_blocks(b->bs, b->qd);
  int rc;

  if ((rc = cascade_drop_page_cache(c)) != 0) {
    snprintf(b->err, sizeof b->err, "cascade_drop_page_cache: %s",
             cascade_strerror(rc));
    return rc;
  }
  r->secs = 0;
  for (uint64_t j = 0; j < b->n; j += batch) {
    size_t m = b->n - j < batch ? (size_t)(b->n - j) : (size_t)batch;
    double t0;
    int got;

    for (size_t i = 0; i < m; i++) {
      make_key(keys[i], b->bs, j + i);
      items[i] = (cascade_get_item){.key = keys[i],
                                    .klen = KEY_BYTES,
                                    .buf = b->buf + i * b->bs,
                                    .cap = b->bs};
    }
    t0 = cli_now();
    got = cascade_get_batch(c, BENCH_NS, items, m);
    r->secs += cli_now() - t0;
    if (got != (int)m) {
      size_t i = 0;

      while (i < m && items[i].rc == 0) i++;
      return batch_err(b, "cascade_get_batch", j, got, m, i,
                       i < m ? items[i].rc : 0);
    }
    for (size_t i = 0; i < m; i++) {
      if (items[i].vlen != b->bs) {
        snprintf(b->err, sizeof b->err,
                 "cascade_get_batch (block %" PRIu64 ") returned %zu bytes, "
                 "not %" PRIu64,
                 j + i, items[i].vlen, b->bs);
        b->wrong_bytes = 1;
        return CASCADE_ECORRUPT;
      }
      if ((rc = verify_block(b, items[i].buf, j + i)) != 0) return rc;
    }
  }
  r->bytes = b->n * b->bs;
  r->ops = b->n;
  return 0;
}

/*
 * Both cascade cells: write (timed), close, reopen (untimed: the restart
 * rebuilds the index from the disk), read cold (timed).  *wst and *rst
 * are set to CELL_OK or CELL_FAILED (message in b->err); a read that is
 * never attempted is CELL_NONE.
 */
static void progress(struct bench *b, int op, int rep);

static void cascade_cells(struct bench *b, int rep, struct run *w,
                          struct run *rd, int *wst, int *rst) {
  struct cascade_stats st;
  cascade *c = NULL;

  *wst = CELL_FAILED;
  *rst = CELL_NONE;
  if (cascade_store_open(b, b->bs, &c) != 0) return;
  if (cascade_write(b, c, w) != 0) {
    cascade_close(c);
    return;
  }
  *wst = CELL_OK;
  cascade_close(c);
  c = NULL;
  progress(b, OP_CASCADE_READ, rep);
  *rst = CELL_FAILED;
  if (cascade_store_open(b, b->bs, &c) != 0) {
    static const char pre[] = "reopening: ";
    size_t len = strlen(b->err);

    if (len + sizeof pre > sizeof b->err) len = sizeof b->err - sizeof pre;
    memmove(b->err + sizeof pre - 1, b->err, len);
    memcpy(b->err, pre, sizeof pre - 1);
    b->err[len + sizeof pre - 1] = '\0';
    return;
  }
  if (cascade_read(b, c, rd) == 0) {
    *rst = CELL_OK;
    memset(&st, 0, sizeof st);
    if (cascade_stats(c, &st) == 0 && st.tier[CASCADE_TIER_DRAM].hits != 0)
      cli_err("bench disk: warning: cascade_read: %" PRIu64
              " reads were served from DRAM after the restart: not a cold "
              "read",
              st.tier[CASCADE_TIER_DRAM].hits);
  }
  cascade_close(c);
}

/* ---- Measuring one size -------------------------------------------------- */

static void progress(struct bench *b, int op, int rep) {
  char sz[32], what[96];

  cli_fmt_size(b->bs, sz, sizeof sz);
  if (b->repeat > 1)
    snprintf(what, sizeof what, "%s %s (run %d/%d)", op_name[op], sz, rep + 1,
             b->repeat);
  else
    snprintf(what, sizeof what, "%s %s", op_name[op], sz);
  cli_progress(++b->cell, b->ncells, what);
}

/* Record a failed cell and say so. */
static void cell_failed(struct bench *b, struct result *r, int op) {
  char sz[32];

  if (r->state == CELL_FAILED) return;
  r->state = CELL_FAILED;
  snprintf(r->err, sizeof r->err, "%s", b->err);
  cli_err("bench disk: %s %s (%s): %s", op_name[op],
          cli_fmt_size(b->bs, sz, sizeof sz), sys_name[op_sys(op)], b->err);
  if (op_sys(op) == SYS_FIO)
    cli_err("bench disk: targets against fio are n/a at this size");
  else
    b->failed = 1;
}

static void set_targets(struct result *res) {
  for (int op = OP_CASCADE_WRITE; op < NOPS; op += NSYS) {
    struct result *r = &res[op];
    const struct result *f = &res[op_of(SYS_FIO, op)];
    const struct result *p = &res[op_of(SYS_POSIX, op)];

    r->has_target = 1;
    r->met_fio = f->state != CELL_OK   ? -1
                 : r->state != CELL_OK ? 0
                                       : r->ratio_fio >= 0.9;
    r->met_posix = p->state != CELL_OK   ? -1
                   : r->state != CELL_OK ? 0
                                         : r->ratio_posix > 1.0;
  }
}

static void json_result(const struct bench *b, const struct result *r);

static void run_size(struct bench *b, int size_idx) {
  struct result *res = &b->res[b->nres];
  double rate[NOPS][MAX_REPEAT];
  struct run run[NOPS][MAX_REPEAT];
  int nok[NOPS] = {0};

  b->bs = b->sizes[size_idx];
  b->n = b->total / b->bs ? b->total / b->bs : 1;
  memset(run, 0, sizeof run);
  for (int op = 0; op < NOPS; op++) {
    memset(&res[op], 0, sizeof res[op]);
    res[op].op = op;
    res[op].bs = b->bs;
    res[op].blocks = b->n;
    res[op].bytes = b->n * b->bs;
    res[op].ratio_fio = res[op].ratio_posix = NAN;
    res[op].met_fio = res[op].met_posix = -1;
  }
  if (!b->fio[0]) {
    res[OP_FIO_WRITE].state = res[OP_FIO_READ].state = CELL_NONE;
  }
  if (!b->cascade_ok) {
    for (int op = OP_CASCADE_WRITE; op < NOPS; op += NSYS) {
      res[op].state = CELL_FAILED;
      snprintf(res[op].err, sizeof res[op].err, "%s", b->cascade_err);
    }
  }

  /* Interleaved by system: a slow phase of the machine hits all alike. */
  for (int rep = 0; rep < b->repeat; rep++) {
    for (int sys = 0; sys < NSYS; sys++) {
      int w = op_of(sys, OP_FIO_WRITE), rd = op_of(sys, OP_FIO_READ);
      int wst = CELL_FAILED, rst = CELL_NONE;

      if ((sys == SYS_FIO && !b->fio[0]) || res[w].state == CELL_FAILED ||
          res[rd].state == CELL_FAILED)
        continue;
      progress(b, w, rep);
      if (sys == SYS_FIO) {
        wst = run_fio(b, 1, &run[w][rep]) == 0 ? CELL_OK : CELL_FAILED;
        if (wst == CELL_OK) {
          progress(b, rd, rep);
          rst = run_fio(b, 0, &run[rd][rep]) == 0 ? CELL_OK : CELL_FAILED;
        }
      } else if (sys == SYS_POSIX) {
        wst = posix_write(b, &run[w][rep]) == 0 ? CELL_OK : CELL_FAILED;
        if (wst == CELL_OK) {
          progress(b, rd, rep);
          rst = posix_read(b, &run[rd][rep]) == 0 ? CELL_OK : CELL_FAILED;
        }
      } else {
        cascade_cells(b, rep, &run[w][rep], &run[rd][rep], &wst, &rst);
      }
      if (wst == CELL_OK) {
        rate[w][nok[w]++] = (double)run[w][rep].bytes / run[w][rep].secs;
      } else {
        cell_failed(b, &res[w], w);
      }
      if (rst == CELL_OK) {
        rate[rd][nok[rd]++] = (double)run[rd][rep].bytes / run[rd][rep].secs;
      } else if (rst == CELL_FAILED) {
        cell_failed(b, &res[rd], rd);
      } else if (wst != CELL_OK) {
        res[rd].state = CELL_FAILED;
        snprintf(res[rd].err, sizeof res[rd].err, "not run: %s_write failed",
                 sys == SYS_POSIX ? "posix" : sys_name[sys]);
        if (sys != SYS_FIO) b->failed = 1;
      }
      if (!(b->keep && size_idx == b->nsizes - 1 && rep == b->repeat - 1))
        clear_system(b, sys);
    }
  }

  /* Medians; ratios are medians of the per-repetition ratios. */
  for (int op = 0; op < NOPS; op++) {
    struct result *r = &res[op];
    double v[MAX_REPEAT], s[MAX_REPEAT], rf[MAX_REPEAT], rp[MAX_REPEAT];
    int f = op_of(SYS_FIO, op), p = op_of(SYS_POSIX, op), nf = 0, np = 0;

    if (r->state == CELL_FAILED || nok[op] != b->repeat) continue;
    r->state = CELL_OK;
    for (int k = 0; k < b->repeat; k++) {
      v[k] = rate[op][k];
      s[k] = run[op][k].secs;
      if (nok[f] == b->repeat && res[f].state != CELL_FAILED)
        rf[nf++] = rate[op][k] / rate[f][k];
      if (nok[p] == b->repeat && res[p].state != CELL_FAILED)
        rp[np++] = rate[op][k] / rate[p][k];
    }
    r->gbps = cli_median(v, b->repeat) / 1e9;
    r->gbps_min = v[0] / 1e9;
    r->gbps_max = v[b->repeat - 1] / 1e9;
    r->ops_per_s = r->gbps * 1e9 / (double)b->bs;
    r->secs = cli_median(s, b->repeat);
    r->ratio_fio = nf ? cli_median(rf, nf) : NAN;
    r->ratio_posix = np ? cli_median(rp, np) : NAN;
  }
  set_targets(res);
  for (int op = 0; op < NOPS; op++)
    if (b->json && res[op].state != CELL_NONE) {
      cli_progress_done();
      json_result(b, &res[op]);
    }
  b->nres += NOPS;
}

/* ---- Reporting ----------------------------------------------------------- */

static void json_result(const struct bench *b, const struct result *r) {
  printf("{\"type\":\"result\",\"op\":");
  cli_json_str(stdout, op_name[r->op]);
  printf(",\"system\":");
  cli_json_str(stdout, sys_name[op_sys(r->op)]);
  printf(",\"block_bytes\":%" PRIu64 ",\"total_bytes\":%" PRIu64
         ",\"blocks\":%" PRIu64 ",\"queue_depth\":%d,\"repeat\":%d",
         r->bs, r->bytes, r->blocks, b->qd, b->repeat);
  if (op_sys(r->op) == SYS_CASCADE) {
    printf(",\"disk_mode\":");
    cli_json_str(stdout, b->disk_mode);
  }
  printf(",\"ok\":%s", r->state == CELL_OK ? "true" : "false");
  if (r->state != CELL_OK) {
    printf(",\"error\":");
    cli_json_str(stdout, r->err);
  }
  printf(",\"gbps\":");
  cli_json_num(stdout, r->state == CELL_OK ? r->gbps : NAN);
  printf(",\"gbps_min\":");
  cli_json_num(stdout, r->state == CELL_OK ? r->gbps_min : NAN);
  printf(",\"gbps_max\":");
  cli_json_num(stdout, r->state == CELL_OK ? r->gbps_max : NAN);
  printf(",\"ops_per_s\":");
  cli_json_num(stdout, r->state == CELL_OK ? r->ops_per_s : NAN);
  printf(",\"seconds\":");
  cli_json_num(stdout, r->state == CELL_OK ? r->secs : NAN);
  printf(",\"ratio_to_fio\":");
  cli_json_num(stdout, op_sys(r->op) == SYS_FIO && r->state == CELL_OK
                           ? 1.0
                           : r->ratio_fio);
  printf(",\"ratio_to_posix\":");
  cli_json_num(stdout, r->ratio_posix);
  if (r->has_target) {
    int met = r->met_fio == 0 || r->met_posix == 0 ? 0
              : r->met_fio < 0 && r->met_posix < 0 ? -1
                                                   : 1;

    printf(",\"target\":");
    cli_json_str(stdout, "ratio_to_fio>=0.9 && ratio_to_posix>1");
    printf(",\"target_met\":");
    cli_json_met(stdout, met);
    printf(",\"target_fio_met\":");
    cli_json_met(stdout, r->met_fio);
    printf(",\"target_posix_met\":");
    cli_json_met(stdout, r->met_posix);
  } else {
    printf(",\"target\":null,\"target_met\":null");
  }
  printf("}\n");
  fflush(stdout);
}

static void print_table(const struct bench *b) {
  static const char *const hd[6] = {"op",    "block", "GB/s",
                                    "ops/s", "x fio", "target"};
  cli_table *t = cli_table_new(6, hd, "lrrrrl");
  int met = 0, targets = 0;

  if (t == NULL) return;
  for (int i = 0; i < b->nres; i++) {
    const struct result *r = &b->res[i];
    char sz[32], g[32], o[32], rf[32], tg[96];
    const char *cells[6];

    if (r->state == CELL_NONE) continue; /* fio not found */
    if (i > 0 && i % NOPS == 0) cli_table_row(t, NULL);
    cells[0] = op_name[r->op];
    cells[1] = cli_fmt_size(r->bs, sz, sizeof sz);
    if (r->state == CELL_OK) {
      cells[2] = cli_fmt_rate(r->gbps, g, sizeof g);
      cells[3] = cli_fmt_count((uint64_t)(r->ops_per_s + 0.5), o, sizeof o);
      cells[4] = op_sys(r->op) == SYS_FIO
                     ? "1.00"
                     : cli_fmt_rate(r->ratio_fio, rf, sizeof rf);
    } else {
      cells[2] = "failed";
      cells[3] = "";
      cells[4] = "";
    }
    tg[0] = '\0';
    if (r->has_target) {
      snprintf(tg, sizeof tg, ">= 0.9x fio %s, > posix %s",
               cli_met_text(r->met_fio), cli_met_text(r->met_posix));
      targets += (r->met_fio >= 0) + (r->met_posix >= 0);
      met += (r->met_fio > 0) + (r->met_posix > 0);
    }
    cells[5] = tg;
    cli_table_row(t, cells);
  }
  cli_table_print(t, stdout, "");
  cli_table_free(t);
  printf("\ntargets met: %d of %d\n", met, targets);
}

static void print_header(const struct bench *b, const cli_machine *m) {
  char mem[32], tot[32], dram[32];

  if (b->json) {
    printf("{\"type\":\"machine\",\"cpu_model\":");
    cli_json_str(stdout, m->cpu);
    printf(",\"cores\":%ld,\"mem_total_bytes\":%" PRIu64 ",\"kernel\":",
           m->cores, m->mem);
    cli_json_str(stdout, m->kernel);
    printf(",\"cascade_version\":");
    cli_json_str(stdout, cascade_version());
    printf(",\"data_dir\":");
    cli_json_str(stdout, b->work);
    printf(",\"fs_type\":");
    cli_json_str(stdout, b->fs_type);
    printf(",\"device\":");
    cli_json_str(stdout, b->device);
    printf(",\"fio_version\":");
    if (b->fio[0])
      cli_json_str(stdout, b->fio_version);
    else
      fputs("null", stdout);
    printf(",\"disk_mode\":");
    if (b->cascade_ok)
      cli_json_str(stdout, b->disk_mode);
    else
      fputs("null", stdout);
    printf(",\"total_bytes\":%" PRIu64 ",\"queue_depth\":%d,\"repeat\":%d"
           ",\"read_buffers\":\"%s\"}\n",
           b->total, b->qd, b->repeat, b->huge ? "huge_pages" : "4k_pages");
    fflush(stdout);
    return;
  }
  printf("cascade bench disk: cascade %s, %s\n", cascade_version(),
         b->fio[0] ? b->fio_version : "no fio");
  printf("machine: %s, %ld cores, RAM %s, %s\n", m->cpu, m->cores,
         cli_fmt_size(m->mem, mem, sizeof mem), m->kernel);
  printf("data:    %s (%s%s%s)%s\n", b->work, b->fs_type,
         b->device[0] ? " on " : "", b->device,
         b->keep ? ", kept" : ", removed at the end");
  if (b->cascade_ok)
    printf("cascade: disk mode %s; disk.write=through, disk.sync=batch, "
           "dedup off, DRAM max(%s, B + 4 blocks) prefaulted\n",
           b->disk_mode, cli_fmt_size(DRAM_MIN, dram, sizeof dram));
  else
    printf("cascade: unavailable (%s)\n", b->cascade_err);
  printf("method:  %s per size and system, queue depth %d, %s; reads "
         "after dropping the page cache;\n"
         "         cascade: B blocks per put/get batch call (256 MiB of "
         "blocks, at most %d,\n"
         "         at least the queue depth), read into buffers on %s; "
         "fio reads\n"
         "         into its own buffers (4 KiB pages)\n\n",
         cli_fmt_size(b->total, tot, sizeof tot), b->qd,
         b->repeat > 1 ? "median of --repeat runs" : "one run per cell",
         BATCH_MAX,
         b->huge ? "transparent huge pages (MADV_HUGEPAGE)" : "4 KiB pages");
  fflush(stdout);
}

/* ---- The data directory -------------------------------------------------- */

/* The file system of path and the mount's source (cli_fs_facts). */
static void fs_facts(struct bench *b, const char *path) {
  b->on_tmpfs = cli_fs_facts(path, b->fs_type, sizeof b->fs_type, b->device,
                             sizeof b->device);
}

/* Make b->work: a fresh directory in --dir, $TMPDIR or /var/tmp. */
static int make_work_dir(struct bench *b) {
  const char *tmp = getenv("TMPDIR");

  if (b->dir_opt != NULL)
    snprintf(b->base, sizeof b->base, "%s", b->dir_opt);
  else
    snprintf(b->base, sizeof b->base, "%s",
             tmp != NULL && tmp[0] != '\0' ? tmp : "/var/tmp");
  if (b->dir_opt != NULL && mkdir(b->base, 0755) == 0) b->base_made = 1;
  if (snprintf(b->work, sizeof b->work, "%s/cascade-bench-disk.XXXXXX",
               b->base) >= (int)sizeof b->work) {
    cli_err("bench disk: %s: path too long", b->base);
    return -1;
  }
  if (mkdtemp(b->work) == NULL) {
    cli_err("bench disk: cannot make a directory in %s: %s", b->base,
            strerror(errno));
    b->work[0] = '\0';
    return -1;
  }
  return 0;
}

static void remove_work_dir(struct bench *b) {
  if (b->work[0] == '\0') return;
  if (b->keep) {
    cli_err("bench disk: kept %s", b->work);
    return;
  }
  if (cli_rm_tree(b->work, 0) != 0)
    cli_err("bench disk: warning: cannot remove %s: %s", b->work,
            strerror(errno));
  if (b->base_made) rmdir(b->base);
}

/* ---- Option parsing ------------------------------------------------------ */

static int parse_sizes(struct bench *b, const char *list) {
  const char *p = list;

  b->nsizes = 0;
  while (*p != '\0') {
    char item[64];
    size_t len = strcspn(p, ",");
    uint64_t v;

    if (len == 0 || len >= sizeof item || b->nsizes == MAX_SIZES) {
      cli_err("bench disk: --sizes %s: expected up to %d sizes, comma "
              "separated",
              list, MAX_SIZES);
      return -1;
    }
    memcpy(item, p, len);
    item[len] = '\0';
    if (cli_parse_size(item, &v) != 0 || v < MIN_BLOCK || v > MAX_BLOCK ||
        v % MIN_BLOCK != 0) {
      cli_err("bench disk: --sizes: bad block size '%s' (a multiple of 4 "
              "KiB, up to 256 MiB)",
              item);
      return -1;
    }
    b->sizes[b->nsizes++] = v;
    p += len;
    if (*p == ',') p++;
  }
  if (b->nsizes == 0) {
    cli_err("bench disk: --sizes: empty list");
    return -1;
  }
  return 0;
}

static int parse_int(const char *opt, const char *v, int lo, int hi, int *out) {
  char *end;
  long n;

  errno = 0;
  n = strtol(v, &end, 10);
  if (end == v || *end != '\0' || errno != 0 || n < lo || n > hi) {
    cli_err("bench disk: %s %s: expected a number from %d to %d", opt, v, lo,
            hi);
    return -1;
  }
  *out = (int)n;
  return 0;
}

/* Returns 0 to run, 1 after printing help, -1 after a usage message. */
static int parse_args(struct bench *b, int argc, char **argv) {
  const char *sizes = NULL, *total = NULL;
  int quick = 0;

  b->qd = 8;
  b->repeat = 1;
  for (int i = 0; i < argc;) {
    const char *v;
    int r;

    if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
      cli_bench_disk_usage(stdout);
      return 1;
    }
    if (strcmp(argv[i], "--quick") == 0) {
      quick = 1;
      i++;
      continue;
    }
    if (strcmp(argv[i], "--json") == 0) {
      b->json = 1;
      i++;
      continue;
    }
    if (strcmp(argv[i], "--small-pages") == 0) {
      b->small_pages = 1;
      i++;
      continue;
    }
    if (strcmp(argv[i], "--keep") == 0) {
      b->keep = 1;
      i++;
      continue;
    }
    if ((r = cli_opt_value(argc, argv, &i, "--sizes", &v)) != 0) {
      if (r < 0) return -1;
      sizes = v;
      continue;
    }
    if ((r = cli_opt_value(argc, argv, &i, "--total", &v)) != 0) {
      if (r < 0) return -1;
      total = v;
      continue;
    }
    if ((r = cli_opt_value(argc, argv, &i, "--dir", &v)) != 0) {
      if (r < 0) return -1;
      if (v[0] == '\0') {
        cli_err("bench disk: --dir: empty path");
        return -1;
      }
      b->dir_opt = v;
      continue;
    }
    if ((r = cli_opt_value(argc, argv, &i, "--qd", &v)) != 0) {
      if (r < 0 || parse_int("--qd", v, 1, MAX_QD, &b->qd) != 0) return -1;
      continue;
    }
    if ((r = cli_opt_value(argc, argv, &i, "--repeat", &v)) != 0) {
      if (r < 0 || parse_int("--repeat", v, 1, MAX_REPEAT, &b->repeat) != 0)
        return -1;
      continue;
    }
    r = cli_common_option(&b->co, argc, argv, &i);
    if (r < 0) return -1;
    if (r == 0) {
      cli_err("bench disk: unexpected argument '%s' (see cascade bench "
              "--help)",
              argv[i]);
      return -1;
    }
  }
  if (parse_sizes(b, sizes ? sizes : quick ? "256k,4m" : "256k,1m,4m,16m") != 0)
    return -1;
  b->total = quick ? 256ull << 20 : 1ull << 30;
  if (total != NULL &&
      (cli_parse_size(total, &b->total) != 0 || b->total == 0)) {
    cli_err("bench disk: --total %s: not a size", total);
    return -1;
  }
  for (int k = 0; k < b->nsizes; k++) {
    uint64_t n = b->total / b->sizes[k];

    if (b->sizes[k] > b->max_bs) b->max_bs = b->sizes[k];
    if (batch_blocks(b->sizes[k], b->qd) * b->sizes[k] > b->max_batch)
      b->max_batch = batch_blocks(b->sizes[k], b->qd) * b->sizes[k];
    if (n > POOL_BYTES / 8) {
      cli_err("bench disk: --total / block size must be at most %llu "
              "blocks",
              (unsigned long long)(POOL_BYTES / 8));
      return -1;
    }
  }
  if (b->max_batch > MAX_BUFFERS) {
    cli_err("bench disk: --qd %d x %llu-byte blocks: more than 4 GiB of read "
            "buffers",
            b->qd, (unsigned long long)b->max_bs);
    return -1;
  }
  return 0;
}

/* ---- The run ------------------------------------------------------------- */

/* Free space for the largest size: about TOTAL per system at a time (all
 * three with --keep), plus slack for the store's segment files. */
static int check_space(struct bench *b) {
  struct statvfs sv;
  uint64_t need = 0, have;
  char c1[32], c2[32];

  for (int k = 0; k < b->nsizes; k++) {
    uint64_t n = b->total / b->sizes[k] ? b->total / b->sizes[k] : 1;

    if (n * b->sizes[k] > need) need = n * b->sizes[k];
  }
  need = need * (b->keep ? 3 : 1) + SPACE_SLACK;
  if (statvfs(b->work, &sv) != 0)
    return 0; /* cannot tell: let the writes say */
  have = (uint64_t)sv.f_bavail * sv.f_frsize;
  if (have < need) {
    cli_err("bench disk: %s has %s free; the run needs about %s (see "
            "--total, --dir)",
            b->work, cli_fmt_size(have, c1, sizeof c1),
            cli_fmt_size(need, c2, sizeof c2));
    return -1;
  }
  return 0;
}

int cli_bench_disk(int argc, char **argv, const cli_common *co) {
  struct bench *b;
  cli_machine m;
  int rc;

  b = calloc(1, sizeof *b);
  if (b == NULL) {
    cli_err("bench disk: out of memory");
    return CLI_FAIL;
  }
  b->co = *co;
  rc = parse_args(b, argc, argv);
  if (rc != 0) {
    free(b);
    return rc > 0 ? CLI_OK : CLI_USAGE;
  }
  /* A bad --set is a usage error, found before anything runs.  (Settings
   * this libcascade does not know at all fail here too.) */
  {
    cascade_config *cfg = NULL;

    rc = cascade_config_new(&cfg);
    if (rc == 0) {
      rc = cli_apply_settings(&b->co, cfg);
      cascade_config_free(cfg);
    } else {
      cli_err("bench disk: cascade_config_new: %s", cascade_strerror(rc));
      rc = CLI_FAIL;
    }
    if (rc != CLI_OK) {
      free(b);
      return rc;
    }
  }

  if (find_fio(b->fio, sizeof b->fio) != 0)
    cli_err("bench disk: fio not found: `make bench` installs it; the fio "
            "rows are skipped and targets against fio are n/a");
  else
    fio_version(b);

  if (make_work_dir(b) != 0) {
    free(b);
    return CLI_FAIL;
  }
  fs_facts(b, b->work);
  if (b->on_tmpfs)
    cli_err("bench disk: warning: %s is on %s, which is memory: these are "
            "not disk results (use --dir on a disk)",
            b->work, b->fs_type);
  if (check_space(b) != 0) {
    remove_work_dir(b);
    free(b);
    return CLI_FAIL;
  }

  b->pool = malloc(POOL_BYTES + b->max_bs);
  /* Read buffers: 2 MiB aligned and on transparent huge pages unless
   * --small-pages, as an engine's large pinned staging buffers would be.
   * Physically contiguous memory lets one O_DIRECT read of a block be one
   * device request (4 KiB pages give one segment each, and devices cap the
   * segments per request: vda here takes 254, so a 1 MiB read into 4 KiB
   * pages is split in two). */
  if (posix_memalign((void **)&b->buf, b->small_pages ? 4096 : 2u << 20,
                     (size_t)b->max_batch) != 0)
    b->buf = NULL;
  else if (!b->small_pages)
    b->huge = madvise(b->buf, (size_t)b->max_batch, MADV_HUGEPAGE) == 0;
  if (b->pool == NULL || b->buf == NULL) {
    cli_err("bench disk: cannot allocate %llu + %llu bytes of buffers",
            (unsigned long long)(POOL_BYTES + b->max_bs),
            (unsigned long long)b->max_batch);
    rc = CLI_FAIL;
    goto out;
  }
  cli_progress(0, 1, "generating the data");
  cli_fill_pool(b->pool, POOL_BYTES + b->max_bs, SEED);

  cli_progress(0, 1, "opening a cascade store with a disk tier");
  cascade_probe(b);
  if (!b->cascade_ok) {
    cli_err("bench disk: cascade: cannot open a store with a disk tier: %s; "
            "the cascade rows fail",
            b->cascade_err);
    b->failed = 1;
  }

  cli_machine_facts(&m);
  print_header(b, &m);

  b->ncells = b->nsizes * b->repeat * 2 *
              (1 + (b->fio[0] != '\0') + (b->cascade_ok != 0));
  for (int i = 0; i < b->nsizes; i++) run_size(b, i);
  cli_progress_done();
  if (!b->json) print_table(b);

  rc = CLI_OK;
  if (b->wrong_bytes) {
    cli_err("bench disk: FAILED: wrong bytes were read back (see above)");
    rc = CLI_FAIL;
  } else if (b->failed) {
    cli_err("bench disk: FAILED: a system failed (see above)");
    rc = CLI_FAIL;
  }
out:
  remove_work_dir(b);
  free(b->pool);
  free(b->buf);
  free(b);
  return rc;
}
