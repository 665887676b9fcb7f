/*
 * client.c - cascade_client_*: the zero-copy path to a cascaded on the same
 * node, over its Unix socket.
 *
 * Connect: AUTH (if a password is given), then CASCADE.SHM; the daemon's
 * reply carries a read-only descriptor of its DRAM arena (SCM_RIGHTS),
 * which is mapped once, read-only.  A get is CASCADE.LEASE: the daemon pins
 * the block and answers with its offset and length in the arena, so the
 * caller reads the value in place - no byte crosses the socket.  A release
 * is queued and sent ahead of the next command in the same write (or at
 * 256 queued, or at close), its reply read and checked in order; closing
 * the connection, or a crash of the client, releases everything it held.
 *
 * cascade_client_get_into copies values out instead.  It first asks for
 * the daemon's shared-memory index (CASCADE.SHMINDEX, mapped read-only;
 * format and reader protocol in src/core/shmidx.h) and reads a value found
 * there with no request at all; the rest go through leases in one round
 * trip.  The keys read that way are queued and sent as CASCADE.TOUCH (once
 * per key per second) so that the daemon's policy sees the uses.
 *
 * A put copies the value into a staging area shared with the daemon
 * (CASCADE.STAGE, a sealed memfd mapped by both; grown on demand) and sends
 * CASCADE.PUTSTAGED: the daemon copies it into its arena from there.  The
 * bytes are copied twice in memory (into staging, into the arena), never
 * through the socket.
 *
 * A client handle is used by one thread at a time.  Replies are parsed by a
 * small RESP2 reader (only the types these commands answer with).
 */
#define _GNU_SOURCE
#include "cascade.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "core/copy.h"
#include "core/internal.h"
#include "core/shmidx.h"

#define RBUF_MIN 4096
#define RELEASE_MAX 256           /* releases queued before a forced send */
#define STAGE_MIN (8u << 20)      /* smallest staging area asked for */
#define ERRMSG 256
#define ARENA_CHUNK (UINT64_C(2) << 20) /* page tables filled at a time */
#define TOUCH_MAX 256             /* index reads queued before a TOUCH */
#define UNREAD_MAX 1024           /* unread replies before a read waits */
#define ALIVE_NS 1000000          /* index reads trust the connection this
                                     long before looking at it again */
#define TOUCH_EPOCH_NS 1000000000 /* a key read again within this is not
                                     told again */
#define TOUCH_HOLD_NS 100000000   /* queued touches wait at most this */
#define TFILTER 16384             /* keys remembered for that, by hash */

struct cascade_client {
  int fd;
  const uint8_t *arena; /* mapped read-only */
  size_t arena_len;
  struct shared_map *am; /* the arena's mapping, shared in the process */
  _Atomic uint64_t *mapped; /* its bit per ARENA_CHUNK whose page tables
                               are filled (am's) */
  uint8_t *stage; /* mapped read-write */
  size_t stage_len;
  int got_fd; /* a descriptor received, not yet claimed; -1 if none */
  /* input */
  char *rb;
  size_t rlen, rpos, rcap;
  /* output under construction */
  char *wb;
  size_t wlen, wcap;
  /* queued releases; their replies are read before the next reply */
  uint64_t rel[RELEASE_MAX];
  size_t nrel;
  size_t unread; /* replies of queued release commands not yet read */
  int broken;    /* the stream is out of step: every call fails */
  char err[ERRMSG];
  /* the shared-memory index (src/core/shmidx.h), mapped read-only */
  int idx_state; /* 0 not asked yet, 1 mapped, -1 not available */
  const shmidx_hdr *ih;
  const shmidx_slot *islots;
  size_t idx_len;
  uint64_t imask, iseed, iseed2, alive_ns;
  /* keys read through the index, to be told to the daemon (TOUCH) */
  char *tk;
  size_t tklen, tkcap, ntouch;
  uint32_t toff[TOUCH_MAX + 1];
  uint32_t tepoch, tf[TFILTER];
  uint64_t mono_ns, tfirst_ns; /* the last clock read; the oldest touch */
};

const char *cascade_client_error(const cascade_client *cl) {
  return cl && cl->err[0] ? cl->err : "";
}

/* Set the error message (fmt has one %s, for a, which may be cl->err). */
static int fail(cascade_client *cl, int rc, const char *fmt, const char *a) {
  char arg[ERRMSG];
  snprintf(arg, sizeof arg, "%s", a ? a : "");
  char msg[2 * ERRMSG];
  snprintf(msg, sizeof msg, fmt, arg);
  memcpy(cl->err, msg, ERRMSG - 1);
  cl->err[ERRMSG - 1] = 0;
  return rc;
}

/* ---- output --------------------------------------------------------------- */

static int w_put(cascade_client *cl, const void *p, size_t n) {
  if (cl->wlen + n > cl->wcap) {
    size_t nc = cl->wcap ? cl->wcap : 256;
    while (nc < cl->wlen + n) nc *= 2;
    char *b = realloc(cl->wb, nc);
    if (!b) return -ENOMEM;
    cl->wb = b;
    cl->wcap = nc;
  }
  memcpy(cl->wb + cl->wlen, p, n);
  cl->wlen += n;
  return 0;
}

/* "<type><n>\r\n" into h (32 bytes); its length.  (snprintf costs more
 * than the rest of a short argument.) */
static size_t w_head(char *h, char type, size_t n) {
  char d[24];
  size_t k = 0, o = 0;
  do d[k++] = (char)('0' + n % 10);
  while ((n /= 10) != 0);
  h[o++] = type;
  while (k) h[o++] = d[--k];
  h[o++] = '\r';
  h[o++] = '\n';
  return o;
}

/* Append one command: argv[i] of len[i] bytes, as a RESP multibulk. */
static int w_cmd(cascade_client *cl, size_t argc, const void *const *argv,
                 const size_t *len) {
  size_t undo = cl->wlen; /* a command half written would put the stream
                             out of step: on failure it is taken back */
  char h[32];
  int rc = w_put(cl, h, w_head(h, '*', argc));
  for (size_t i = 0; i < argc && rc == 0; i++) {
    rc = w_put(cl, h, w_head(h, '$', len[i]));
    if (rc == 0) rc = w_put(cl, argv[i], len[i]);
    if (rc == 0) rc = w_put(cl, "\r\n", 2);
  }
  if (rc < 0) cl->wlen = undo;
  return rc;
}

/* Queue the pending releases as one command ahead of what follows. */
static int w_releases(cascade_client *cl) {
  if (cl->nrel == 0) return 0;
  char nums[RELEASE_MAX][24];
  const void *argv[RELEASE_MAX + 1];
  size_t len[RELEASE_MAX + 1];
  argv[0] = "CASCADE.RELEASE";
  len[0] = 15;
  for (size_t i = 0; i < cl->nrel; i++) {
    len[i + 1] = (size_t)snprintf(nums[i], sizeof nums[i], "%llu",
                                  (unsigned long long)cl->rel[i]);
    argv[i + 1] = nums[i];
  }
  int rc = w_cmd(cl, cl->nrel + 1, argv, len);
  if (rc == 0) {
    cl->nrel = 0;
    cl->unread++;
  }
  return rc;
}

static int w_flush(cascade_client *cl) {
  size_t off = 0;
  while (off < cl->wlen) {
    ssize_t w = send(cl->fd, cl->wb + off, cl->wlen - off, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR) continue;
      cl->broken = 1;
      return fail(cl, -errno, "send to cascaded: %s", strerror(errno));
    }
    off += (size_t)w;
  }
  cl->wlen = 0;
  return 0;
}

/* ---- input ---------------------------------------------------------------- */

/* Read more bytes (and a descriptor, if one comes). */
static int r_fill(cascade_client *cl) {
  if (cl->rpos > 0 && cl->rpos == cl->rlen) cl->rpos = cl->rlen = 0;
  if (cl->rcap - cl->rlen < RBUF_MIN) {
    if (cl->rpos > 0) {
      memmove(cl->rb, cl->rb + cl->rpos, cl->rlen - cl->rpos);
      cl->rlen -= cl->rpos;
      cl->rpos = 0;
    }
    if (cl->rcap - cl->rlen < RBUF_MIN) {
      size_t nc = cl->rcap ? cl->rcap * 2 : 2 * RBUF_MIN;
      char *b = realloc(cl->rb, nc);
      if (!b) return -ENOMEM;
      cl->rb = b;
      cl->rcap = nc;
    }
  }
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } cm;
  struct iovec iov = {cl->rb + cl->rlen, cl->rcap - cl->rlen};
  struct msghdr mh = {.msg_iov = &iov,
                      .msg_iovlen = 1,
                      .msg_control = cm.buf,
                      .msg_controllen = sizeof cm.buf};
  ssize_t r;
  do r = recvmsg(cl->fd, &mh, MSG_CMSG_CLOEXEC);
  while (r < 0 && errno == EINTR);
  if (r <= 0) {
    cl->broken = 1;
    return r == 0 ? fail(cl, -ECONNRESET, "cascaded closed the connection%s",
                         "")
                  : fail(cl, -errno, "recv from cascaded: %s",
                         strerror(errno));
  }
  for (struct cmsghdr *h = CMSG_FIRSTHDR(&mh); h; h = CMSG_NXTHDR(&mh, h))
    if (h->cmsg_level == SOL_SOCKET && h->cmsg_type == SCM_RIGHTS) {
      int fd;
      memcpy(&fd, CMSG_DATA(h), sizeof fd);
      if (cl->got_fd >= 0) close(cl->got_fd);
      cl->got_fd = fd;
    }
  cl->rlen += (size_t)r;
  return 0;
}

/* The next line (without CRLF) and its length. */
static int r_line(cascade_client *cl, const char **line, size_t *n) {
  for (;;) {
    char *s = cl->rb + cl->rpos;
    char *e = cl->rlen > cl->rpos ? memchr(s, '\n', cl->rlen - cl->rpos) : NULL;
    if (e && e > s && e[-1] == '\r') {
      *line = s;
      *n = (size_t)(e - 1 - s);
      cl->rpos += (size_t)(e + 1 - s);
      return 0;
    }
    if (cl->rlen - cl->rpos > (1u << 20)) {
      cl->broken = 1;
      return fail(cl, -EPROTO, "reply line too long%s", "");
    }
    int rc = r_fill(cl);
    if (rc < 0) return rc;
  }
}

static int to_ll(const char *p, size_t n, long long *out) {
  char b[32];
  if (n == 0 || n >= sizeof b) return -1;
  memcpy(b, p, n);
  b[n] = 0;
  char *end;
  errno = 0;
  *out = strtoll(b, &end, 10);
  return errno || *end ? -1 : 0;
}

/* A reply header: its type byte and the number after it (for ':' '*' '$'),
 * or for '-' the error text in cl->err.  '+' lines are returned as type. */
static int r_head(cascade_client *cl, char *type, long long *num) {
  const char *l = NULL;
  size_t n = 0;
  int rc = r_line(cl, &l, &n);
  if (rc < 0) return rc;
  if (n == 0) goto bad;
  *type = l[0];
  *num = 0;
  switch (l[0]) {
  case '+':
    return 0;
  case '-':
    snprintf(cl->err, sizeof cl->err, "%.*s", (int)(n - 1), l + 1);
    return 0;
  case ':':
  case '*':
  case '$':
    if (to_ll(l + 1, n - 1, num) != 0) goto bad;
    return 0;
  default:
    break;
  }
bad:
  cl->broken = 1;
  return fail(cl, -EPROTO, "unexpected reply from cascaded%s", "");
}

/* The error code for the daemon's error reply in cl->err. */
static int err_code(const cascade_client *cl) {
  const char *e = cl->err;
  if (!strncmp(e, "NOAUTH", 6) || !strncmp(e, "WRONGPASS", 9) ||
      !strncmp(e, "NOPERM", 6))
    return -EACCES;
  if (!strncmp(e, "OOM", 3)) return -ENOSPC;
  if (strstr(e, "too large")) return -EFBIG;
  if (strstr(e, "key too long") || strstr(e, "empty keys")) return -EINVAL;
  return -EREMOTEIO;
}

/* Read, without waiting, the replies of queued releases and touches that
 * have come (single-line integers; anything else breaks the stream). */
static void r_drain(cascade_client *cl) {
  while (cl->unread > 0) {
    char *s = cl->rb + cl->rpos;
    char *e = cl->rlen > cl->rpos ? memchr(s, '\n', cl->rlen - cl->rpos) : NULL;
    if (!e) {
      if (cl->rpos > 0 && cl->rpos == cl->rlen) cl->rpos = cl->rlen = 0;
      if (cl->rcap - cl->rlen < 64) return; /* the next round trip reads */
      ssize_t r = recv(cl->fd, cl->rb + cl->rlen, cl->rcap - cl->rlen,
                       MSG_DONTWAIT);
      if (r <= 0) return; /* nothing yet; errors show at the next call */
      cl->rlen += (size_t)r;
      continue;
    }
    if (s[0] != ':' || e == s || e[-1] != '\r') {
      cl->broken = 1;
      fail(cl, -EPROTO, "CASCADE.RELEASE or TOUCH failed%s", "");
      return;
    }
    cl->rpos += (size_t)(e + 1 - s);
    cl->unread--;
  }
}

/* Send what is queued, then read (and check) the replies of queued
 * releases, so the next reply read is the caller's. */
static int roundtrip(cascade_client *cl) {
  int rc = w_flush(cl);
  while (rc == 0 && cl->unread > 0) {
    char t;
    long long n;
    rc = r_head(cl, &t, &n);
    if (rc == 0 && t != ':') {
      cl->broken = 1;
      rc = fail(cl, -EPROTO, "CASCADE.RELEASE or TOUCH failed: %s", cl->err);
    }
    cl->unread--;
  }
  return rc;
}

static int w_touches(cascade_client *cl);

static int start(cascade_client *cl) {
  if (cl->broken)
    return fail(cl, -EPIPE, "the connection to cascaded is broken%s", "");
  cl->err[0] = 0;
  int rc = w_releases(cl);
  return rc == 0 ? w_touches(cl) : rc;
}

/* ---- the calls ------------------------------------------------------------ */

/* A descriptor that came with the reply just read, or -1. */
static int take_fd(cascade_client *cl) {
  int fd = cl->got_fd;
  cl->got_fd = -1;
  return fd;
}

/* ---- the arena's mapping, one per process --------------------------------- */

/* The handles of a process (one per thread, typically) share one mapping
 * of a daemon's arena, found by the device and inode of the descriptor the
 * daemon passed: its page tables are filled once, not once per handle, and
 * the process holds one mapping, not one per handle.  Reference counted;
 * the last handle unmaps it.  A daemon that restarts has a new arena file,
 * so a new mapping. */
struct shared_map {
  struct shared_map *next;
  dev_t dev;
  ino_t ino;
  size_t len;
  const uint8_t *base;
  _Atomic uint64_t *mapped; /* a bit per ARENA_CHUNK, NULL: faults instead */
  int refs;
};
static pthread_mutex_t shared_maps_lock = PTHREAD_MUTEX_INITIALIZER;
static struct shared_map *shared_maps;

static int shared_map_get(cascade_client *cl, int fd, size_t len) {
  struct stat st;
  if (fstat(fd, &st) != 0) return -errno;
  pthread_mutex_lock(&shared_maps_lock);
  struct shared_map *m = shared_maps;
  while (m && !(m->dev == st.st_dev && m->ino == st.st_ino && m->len == len))
    m = m->next;
  if (m) {
    m->refs++;
  } else if ((m = calloc(1, sizeof *m)) != NULL) {
    void *p = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
      int e = -errno;
      free(m);
      pthread_mutex_unlock(&shared_maps_lock);
      return e;
    }
    /* huge page mappings where the daemon's arena is on huge pages
     * (shmem THP set to advise, or hugetlbfs): advice only */
    (void)madvise(p, len, MADV_HUGEPAGE);
    m->dev = st.st_dev;
    m->ino = st.st_ino;
    m->len = len;
    m->base = p;
    m->mapped = calloc((len / ARENA_CHUNK + 64) / 64, sizeof *m->mapped);
    m->refs = 1;
    m->next = shared_maps;
    shared_maps = m;
  }
  pthread_mutex_unlock(&shared_maps_lock);
  if (!m) return -ENOMEM;
  cl->am = m;
  cl->arena = m->base;
  cl->arena_len = len;
  cl->mapped = m->mapped;
  return 0;
}

static void shared_map_put(struct shared_map *m) {
  if (!m) return;
  pthread_mutex_lock(&shared_maps_lock);
  if (--m->refs == 0) {
    struct shared_map **pp = &shared_maps;
    while (*pp != m) pp = &(*pp)->next;
    *pp = m->next;
    munmap((void *)m->base, m->len);
    free((void *)m->mapped);
    free(m);
  }
  pthread_mutex_unlock(&shared_maps_lock);
}

int cascade_client_connect(const char *path, const char *ns,
                           const char *password, cascade_client **out) {
  if (!out) return -EINVAL;
  *out = NULL;
  if (!path) return -EINVAL;
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof sa.sun_path) return -ENAMETOOLONG;
  strcpy(sa.sun_path, path);
  cascade_client *cl = calloc(1, sizeof *cl);
  if (!cl) return -ENOMEM;
  cl->got_fd = -1;
  cl->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (cl->fd < 0 || connect(cl->fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
    int e = -errno;
    if (cl->fd >= 0) close(cl->fd);
    free(cl);
    return e;
  }
  int rc = 0;
  char t;
  long long n;
  if (password) { /* AUTH [namespace] password */
    const void *argv[3] = {"AUTH", ns, password};
    size_t len[3] = {4, ns ? strlen(ns) : 0, strlen(password)};
    if (!ns) {
      argv[1] = password;
      len[1] = len[2];
    }
    rc = w_cmd(cl, ns ? 3 : 2, argv, len);
  }
  const void *shm[1] = {"CASCADE.SHM"};
  size_t shmlen[1] = {11};
  if (rc == 0) rc = w_cmd(cl, 1, shm, shmlen);
  if (rc == 0) rc = w_flush(cl);
  if (rc == 0 && password) {
    rc = r_head(cl, &t, &n);
    if (rc == 0 && t != '+') rc = t == '-' ? err_code(cl) : -EPROTO;
  }
  if (rc == 0) {
    rc = r_head(cl, &t, &n);
    if (rc == 0 && t == '-') rc = err_code(cl);
    else if (rc == 0 && (t != '*' || n != 1)) rc = -EPROTO;
    if (rc == 0) rc = r_head(cl, &t, &n);
    if (rc == 0 && (t != ':' || n <= 0)) rc = -EPROTO;
  }
  int afd = take_fd(cl);
  if (rc == 0 && afd < 0) rc = -EPROTO;
  if (rc == 0) rc = shared_map_get(cl, afd, (size_t)n);
  if (afd >= 0) close(afd); /* the mapping keeps the memory */
  if (rc < 0) {
    cascade_client_close(cl);
    return rc;
  }
  *out = cl;
  return 0;
}

void cascade_client_close(cascade_client *cl) {
  if (!cl) return;
  /* the daemon releases every lease of a connection that closes */
  shared_map_put(cl->am);
  if (cl->ih) munmap((void *)cl->ih, cl->idx_len);
  free(cl->tk);
  if (cl->stage) munmap(cl->stage, cl->stage_len);
  if (cl->got_fd >= 0) close(cl->got_fd);
  if (cl->fd >= 0) close(cl->fd);
  free(cl->rb);
  free(cl->wb);
  free(cl);
}

/* Fill the page tables of the arena's chunks under [off, off + len) that
 * were not filled yet, one madvise(MADV_POPULATE_READ) per 2 MiB, instead
 * of a page fault per 4 KiB (64 KiB with fault-around) the first time a
 * value there is read: a fresh client reading a GiB would otherwise take
 * tens of thousands of faults.  Best effort: a kernel without it faults. */
static void arena_map(cascade_client *cl, uint64_t off, uint64_t len) {
  if (!cl->mapped || len == 0) return;
  for (uint64_t c = off / ARENA_CHUNK; c <= (off + len - 1) / ARENA_CHUNK;
       c++) {
    uint64_t bit = UINT64_C(1) << (c % 64);
    if (atomic_load_explicit(&cl->mapped[c / 64], memory_order_relaxed) & bit)
      continue;
    uint64_t o = c * ARENA_CHUNK;
    size_t n = (size_t)(cl->arena_len - o < ARENA_CHUNK ? cl->arena_len - o
                                                        : ARENA_CHUNK);
    /* two threads may fill the same chunk at once: harmless */
    (void)madvise((void *)(cl->arena + o), n, MADV_POPULATE_READ);
    atomic_fetch_or_explicit(&cl->mapped[c / 64], bit, memory_order_relaxed);
  }
}

/* Read one CASCADE.LEASE element: nil, or [offset, length, id]. */
static int r_lease(cascade_client *cl, cascade_lease *l) {
  char t;
  long long n, v[3];
  memset(l, 0, sizeof *l);
  int rc = r_head(cl, &t, &n);
  if (rc < 0) return rc;
  if ((t == '*' || t == '$') && n < 0) return -ENOENT;
  if (t != '*' || n != 3) {
    cl->broken = 1;
    return fail(cl, -EPROTO, "unexpected CASCADE.LEASE reply%s", "");
  }
  for (int i = 0; i < 3; i++) {
    rc = r_head(cl, &t, &v[i]);
    if (rc < 0) return rc;
    if (t != ':' || v[i] < 0) {
      cl->broken = 1;
      return fail(cl, -EPROTO, "unexpected CASCADE.LEASE reply%s", "");
    }
  }
  if ((uint64_t)v[0] > cl->arena_len ||
      (uint64_t)v[1] > cl->arena_len - (uint64_t)v[0]) {
    cl->broken = 1;
    return fail(cl, -EPROTO, "lease outside the arena%s", "");
  }
  arena_map(cl, (uint64_t)v[0], (uint64_t)v[1]);
  l->data = cl->arena + v[0];
  l->len = (size_t)v[1];
  l->id_ = (uint64_t)v[2];
  return 0;
}

int cascade_client_get_batch(cascade_client *cl, const cascade_key *keys,
                             size_t n, cascade_lease *leases) {
  if (!cl || (n && (!keys || !leases))) return -EINVAL;
  for (size_t i = 0; i < n; i++) {
    memset(&leases[i], 0, sizeof leases[i]);
    if (!keys[i].key || keys[i].len == 0 || keys[i].len > CASCADE_MAX_KEY)
      return -EINVAL;
  }
  if (n == 0) return 0;
  int rc = start(cl);
  if (rc < 0) return rc;
  const void *sv[65];
  size_t sl[65];
  const void **argv = n < 65 ? sv : malloc((n + 1) * sizeof *argv);
  size_t *len = n < 65 ? sl : malloc((n + 1) * sizeof *len);
  if (!argv || !len) {
    if (argv != sv) free(argv);
    if (len != sl) free(len);
    return -ENOMEM;
  }
  argv[0] = "CASCADE.LEASE";
  len[0] = 13;
  for (size_t i = 0; i < n; i++) {
    argv[i + 1] = keys[i].key;
    len[i + 1] = keys[i].len;
  }
  rc = w_cmd(cl, n + 1, argv, len);
  if (argv != sv) free(argv);
  if (len != sl) free(len);
  if (rc == 0) rc = roundtrip(cl);
  char t;
  long long cnt;
  if (rc == 0) rc = r_head(cl, &t, &cnt);
  if (rc < 0) return rc;
  if (t == '-') return err_code(cl);
  if (t != '*' || cnt != (long long)n) {
    cl->broken = 1;
    return fail(cl, -EPROTO, "unexpected CASCADE.LEASE reply%s", "");
  }
  int found = 0;
  for (size_t i = 0; i < n; i++) {
    rc = r_lease(cl, &leases[i]);
    if (rc == 0) {
      found++;
    } else if (rc != -ENOENT) {
      /* the stream is broken: no lease is held (the daemon frees them
       * with the connection, and this handle is of no more use) */
      for (size_t j = 0; j < n; j++) memset(&leases[j], 0, sizeof leases[j]);
      return rc;
    }
  }
  return found;
}

/* ---- reads through the shared-memory index -------------------------------- */

/* Queue the keys read through the index as one CASCADE.TOUCH, so that the
 * daemon's eviction policy counts those uses. */
static int w_touches(cascade_client *cl) {
  if (cl->ntouch == 0) return 0;
  const void *argv[TOUCH_MAX + 1];
  size_t len[TOUCH_MAX + 1];
  argv[0] = "CASCADE.TOUCH";
  len[0] = 13;
  for (size_t i = 0; i < cl->ntouch; i++) {
    argv[i + 1] = cl->tk + cl->toff[i];
    len[i + 1] = cl->toff[i + 1] - cl->toff[i];
  }
  int rc = w_cmd(cl, cl->ntouch + 1, argv, len);
  if (rc == 0) {
    cl->ntouch = cl->tklen = 0;
    cl->unread++;
  }
  return rc;
}

static void touch_key(cascade_client *cl, const void *key, size_t klen,
                      uint64_t h) {
  /* once per key per TOUCH_EPOCH_NS is enough for a policy's clock, and
   * keeps a client that rereads a hot set from flooding the daemon */
  uint32_t tag = (uint32_t)(h >> 32) ^ (cl->tepoch * 0x9E3779B1u);
  uint32_t *f = &cl->tf[h & (TFILTER - 1)];
  if (*f == tag) return;
  *f = tag;
  if (cl->ntouch == TOUCH_MAX && !cl->broken) {
    /* send them now; the replies are read with the next round trip, or
     * here once UNREAD_MAX are waiting */
    if (w_touches(cl) == 0 && w_flush(cl) == 0) {
      if (cl->unread >= UNREAD_MAX)
        (void)roundtrip(cl); /* the daemon is far behind: wait for it */
      else
        r_drain(cl);
    }
  }
  if (cl->ntouch == TOUCH_MAX) return; /* a hint only: dropped */
  if (cl->tklen + klen > cl->tkcap) {
    size_t nc = cl->tkcap ? cl->tkcap * 2 : 16384;
    while (nc < cl->tklen + klen) nc *= 2;
    char *b = realloc(cl->tk, nc);
    if (!b) return;
    cl->tk = b;
    cl->tkcap = nc;
  }
  memcpy(cl->tk + cl->tklen, key, klen);
  if (cl->ntouch == 0) cl->tfirst_ns = cl->mono_ns;
  cl->toff[cl->ntouch] = (uint32_t)cl->tklen;
  cl->tklen += klen;
  cl->toff[++cl->ntouch] = (uint32_t)cl->tklen;
}

/* Ask for the index and map it.  A daemon without one (or a bad one)
 * leaves the index off: reads then go through leases.  Returns only
 * connection errors. */
static int idx_open(cascade_client *cl) {
  cl->idx_state = -1;
  const void *argv[1] = {"CASCADE.SHMINDEX"};
  size_t len[1] = {16};
  int rc = start(cl);
  if (rc == 0) rc = w_cmd(cl, 1, argv, len);
  if (rc == 0) rc = roundtrip(cl);
  char t;
  long long v = 0;
  if (rc == 0) rc = r_head(cl, &t, &v);
  if (rc < 0) return rc;
  if (t == '-') {
    cl->err[0] = 0;
    return 0; /* an older daemon, or the index is not available */
  }
  if (t != '*' || v != 1 || r_head(cl, &t, &v) < 0 || t != ':' ||
      v < SHMIDX_HDR) {
    cl->broken = 1;
    return fail(cl, -EPROTO, "unexpected CASCADE.SHMINDEX reply%s", "");
  }
  int fd = take_fd(cl);
  if (fd < 0) return 0;
  void *p = mmap(NULL, (size_t)v, PROT_READ, MAP_SHARED, fd, 0);
  close(fd);
  if (p == MAP_FAILED) return 0;
  const shmidx_hdr *h = p;
  if (h->magic != SHMIDX_MAGIC || h->version != SHMIDX_VERSION ||
      h->slot_size != sizeof(shmidx_slot) || h->window != SHMIDX_WINDOW ||
      h->nslots == 0 || (h->nslots & (h->nslots - 1)) != 0 ||
      h->nslots > ((uint64_t)v - SHMIDX_HDR) / sizeof(shmidx_slot) ||
      h->arena != cl->arena_len) {
    munmap(p, (size_t)v);
    return 0;
  }
  cl->ih = h;
  cl->idx_len = (size_t)v;
  cl->islots = (const shmidx_slot *)((const char *)p + SHMIDX_HDR);
  cl->imask = h->nslots - 1;
  cl->iseed = h->seed;
  cl->iseed2 = h->seed2;
  cl->alive_ns = now_mono_ns();
  cl->idx_state = 1;
  return 0;
}

/* Whether the index still holds: the store did not close it, and (looked
 * at once per ALIVE_NS) the daemon is still at the other end - a killed
 * daemon cannot say it closed. */
static int idx_live(cascade_client *cl) {
  if (atomic_load_explicit(&cl->ih->closed, memory_order_acquire)) {
    cl->idx_state = -1;
    return 0;
  }
  uint64_t now = now_mono_ns();
  cl->mono_ns = now;
  cl->tepoch = (uint32_t)(now / TOUCH_EPOCH_NS) + 1;
  if (now - cl->alive_ns < ALIVE_NS) return 1;
  r_drain(cl); /* replies due before a close would hide it from the peek */
  char b;
  ssize_t r = recv(cl->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
  if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK &&
                 errno != EINTR)) {
    cl->idx_state = -1; /* the next request finds out what happened */
    return 0;
  }
  cl->alive_ns = now;
  return 1;
}

/* Read it through the index (shmidx.h's reader protocol): 1 if done (rc
 * and vlen set), 0 if the daemon must be asked (not there, expired, or
 * changing under the read). */
static uint64_t idx_hash(const cascade_client *cl,
                         const cascade_get_item *it) {
  return shmidx_h(XXH3_64bits_withSeed(it->key, it->klen, cl->iseed));
}

typedef struct idx_hit {
  const shmidx_slot *s;
  uint64_t q, off, len;
} idx_hit;

/* Find it in the index (shmidx.h's reader protocol, up to the copy): 1 if
 * found (*hit says where), 0 if the daemon must be asked (not there,
 * expired, or changing under the read). */
static int idx_find(cascade_client *cl, const cascade_get_item *it,
                    uint64_t h, uint64_t *now, idx_hit *hit) {
  uint64_t h2 = 0;
  int have_h2 = 0;
  for (uint64_t p = 0; p < SHMIDX_WINDOW; p++) {
    const shmidx_slot *s = &cl->islots[(h + p) & cl->imask];
    uint64_t q = atomic_load_explicit(&s->seq, memory_order_acquire);
    if (q & 1) return 0;
    uint64_t sh = atomic_load_explicit(&s->h, memory_order_relaxed);
    if (sh == SHMIDX_EMPTY) return 0;
    if (sh != h) continue;
    if (!have_h2) {
      h2 = XXH3_64bits_withSeed(it->key, it->klen, cl->iseed2);
      have_h2 = 1;
    }
    uint64_t sh2 = atomic_load_explicit(&s->h2, memory_order_relaxed);
    uint64_t off = atomic_load_explicit(&s->off, memory_order_relaxed);
    uint64_t len = atomic_load_explicit(&s->len, memory_order_relaxed);
    uint64_t exp = atomic_load_explicit(&s->expire_ns, memory_order_relaxed);
    shmidx_fence(memory_order_acquire);
    if (atomic_load_explicit(&s->seq, memory_order_relaxed) != q) return 0;
    if (sh2 != h2) continue;
    if (exp) {
      if (!*now) *now = now_realtime_ns();
      if (exp <= *now) return 0;
    }
    if (off > cl->arena_len || len > cl->arena_len - off) return 0;
    arena_map(cl, off, len);
    hit->s = s;
    hit->q = q;
    hit->off = off;
    hit->len = len;
    return 1;
  }
  return 0;
}

/* Copy a value found: 1 if done (rc and vlen set), 0 if it changed under
 * the copy (the daemon must be asked). */
static int idx_copy(cascade_client *cl, cascade_get_item *it,
                    const idx_hit *hit) {
  it->vlen = (size_t)hit->len;
  if (hit->len > it->cap) {
    it->rc = -ENOBUFS;
    return 1;
  }
  copy_out(it->buf, cl->arena + hit->off, (size_t)hit->len);
  shmidx_fence(memory_order_acquire);
  if (atomic_load_explicit(&hit->s->seq, memory_order_relaxed) != hit->q) {
    it->vlen = 0;
    return 0;
  }
  it->rc = 0;
  return 1;
}

int cascade_client_get_into(cascade_client *cl, cascade_get_item *items,
                            size_t n) {
  if (!cl || (n && !items)) return -EINVAL;
  for (size_t i = 0; i < n; i++) {
    cascade_get_item *it = &items[i];
    if (!it->key || it->klen == 0 || it->klen > CASCADE_MAX_KEY ||
        (!it->buf && it->cap))
      return -EINVAL;
    it->rc = -ENOENT;
    it->vlen = 0;
  }
  if (n == 0) return 0;
  if (cl->broken)
    return fail(cl, -EPIPE, "the connection to cascaded is broken%s", "");
  int rc;
  if (cl->idx_state == 0 && (rc = idx_open(cl)) < 0) return rc;
  size_t sm[64], nmiss = 0, *miss = n <= 64 ? sm : malloc(n * sizeof *miss);
  if (!miss) return -ENOMEM;
  int done = 0;
  uint64_t now = 0;
  int fast = cl->idx_state == 1 && idx_live(cl);
  for (size_t i0 = 0; i0 < n; i0 += 64) {
    size_t m = n - i0 < 64 ? n - i0 : 64;
    uint64_t hs[64];
    /* the slots are scattered over the index: fetch them all at once */
    for (size_t j = 0; fast && j < m; j++) {
      hs[j] = idx_hash(cl, &items[i0 + j]);
      __builtin_prefetch(&cl->islots[hs[j] & cl->imask]);
    }
    /* then find them all, fetching the start of each value (and its
     * page's translation) while the others are looked up */
    idx_hit hit[64];
    uint8_t found[64];
    for (size_t j = 0; j < m; j++) {
      found[j] = fast && idx_find(cl, &items[i0 + j], hs[j], &now, &hit[j]);
      if (found[j]) __builtin_prefetch(cl->arena + hit[j].off);
    }
    for (size_t j = 0; j < m; j++) {
      cascade_get_item *it = &items[i0 + j];
      if (found[j] && idx_copy(cl, it, &hit[j])) {
        if (it->rc == 0) {
          done++;
          touch_key(cl, it->key, it->klen, hs[j]);
        }
      } else {
        miss[nmiss++] = i0 + j;
      }
    }
  }
  rc = 0;
  if (cl->ntouch && !nmiss && cl->mono_ns - cl->tfirst_ns > TOUCH_HOLD_NS &&
      w_touches(cl) == 0 && w_flush(cl) == 0)
    r_drain(cl); /* a slow reader's touches do not wait for 256 */
  if (nmiss) { /* the rest through leases: one round trip */
    cascade_key sk[64], *ks = nmiss <= 64 ? sk : malloc(nmiss * sizeof *ks);
    cascade_lease sl[64],
        *ls = nmiss <= 64 ? sl : malloc(nmiss * sizeof *ls);
    if (!ks || !ls) {
      rc = -ENOMEM;
    } else {
      for (size_t j = 0; j < nmiss; j++) {
        ks[j].key = items[miss[j]].key;
        ks[j].len = items[miss[j]].klen;
      }
      rc = cascade_client_get_batch(cl, ks, nmiss, ls);
    }
    for (size_t j = 0; rc >= 0 && j < nmiss; j++) {
      cascade_get_item *it = &items[miss[j]];
      if (!ls[j].data) continue;
      it->vlen = ls[j].len;
      if (ls[j].len > it->cap) {
        it->rc = -ENOBUFS;
      } else {
        copy_out(it->buf, ls[j].data, ls[j].len);
        it->rc = 0;
        done++;
      }
      cascade_client_release(cl, &ls[j]);
    }
    if (ks != sk) free(ks);
    if (ls != sl) free(ls);
  }
  if (miss != sm) free(miss);
  return rc < 0 ? rc : done;
}

int cascade_client_get(cascade_client *cl, const void *key, size_t klen,
                       cascade_lease *lease) {
  cascade_key k = {key, klen};
  int rc = cascade_client_get_batch(cl, &k, 1, lease);
  return rc < 0 ? rc : rc == 1 ? 0 : -ENOENT;
}

void cascade_client_release(cascade_client *cl, cascade_lease *lease) {
  if (!cl || !lease || !lease->data) return;
  if (cl->nrel == RELEASE_MAX && !cl->broken) {
    /* the queue is full: send it now, its reply is read later */
    if (w_releases(cl) == 0) w_flush(cl);
  }
  if (cl->nrel < RELEASE_MAX) cl->rel[cl->nrel++] = lease->id_;
  memset(lease, 0, sizeof *lease);
}

/* Make the staging area at least n bytes. */
static int stage_ask(cascade_client *cl, size_t want);

static int stage_reserve(cascade_client *cl, size_t n) {
  if (n <= cl->stage_len && cl->stage) return 0;
  int rc = stage_ask(cl, n < STAGE_MIN ? STAGE_MIN : n);
  /* a daemon with less DRAM than STAGE_MIN takes no larger area than a
   * value: ask for exactly this one's size */
  if (rc == -EFBIG && n < STAGE_MIN) rc = stage_ask(cl, n);
  return rc;
}

static int stage_ask(cascade_client *cl, size_t want) {
  char num[24];
  int k = snprintf(num, sizeof num, "%zu", want);
  const void *argv[2] = {"CASCADE.STAGE", num};
  size_t len[2] = {13, (size_t)k};
  int rc = w_cmd(cl, 2, argv, len);
  if (rc == 0) rc = roundtrip(cl);
  char t;
  long long v = 0;
  if (rc == 0) rc = r_head(cl, &t, &v);
  if (rc == 0 && t == '-') rc = err_code(cl);
  else if (rc == 0 && (t != '*' || v != 1)) rc = -EPROTO;
  if (rc == 0) rc = r_head(cl, &t, &v);
  if (rc == 0 && (t != ':' || (size_t)v != want)) rc = -EPROTO;
  int fd = take_fd(cl);
  if (rc == 0 && fd < 0) rc = -EPROTO;
  void *p = MAP_FAILED;
  if (rc == 0) {
    p = mmap(NULL, want, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) rc = -errno;
  }
  /* once CASCADE.STAGE was answered the daemon reads from the new area
   * only: the old one must not be written again, even if mapping the new
   * one failed (a put would store the new area's zeros) */
  if (cl->stage) munmap(cl->stage, cl->stage_len);
  cl->stage = p == MAP_FAILED ? NULL : p;
  cl->stage_len = p == MAP_FAILED ? 0 : want;
  if (fd >= 0) close(fd);
  if (rc == -EPROTO) cl->broken = 1;
  return rc;
}

static int put_ok(const cascade_put_item *it) {
  const cascade_put_opts *o = it->opts;
  if (!it->key || it->klen == 0 || it->klen > CASCADE_MAX_KEY ||
      (it->vlen && !it->value))
    return 0;
  if (o && (o->flags & CASCADE_PUT_KEEPTTL)) return 0;
  if (o && o->parent && (o->parent_len == 0 || o->parent_len > CASCADE_MAX_KEY))
    return 0;
  return 1;
}

/* Queue CASCADE.PUTSTAGED for a value at off in the staging area. */
static int w_putstaged(cascade_client *cl, const cascade_put_item *it,
                       size_t off) {
  const cascade_put_opts *opts = it->opts;
  char offs[24], lens[24], ttl[24];
  const void *argv[12];
  size_t len[12], argc = 0;
#define ARG(p, n)                                                             \
  do {                                                                        \
    argv[argc] = (p);                                                         \
    len[argc++] = (n);                                                        \
  } while (0)
  ARG("CASCADE.PUTSTAGED", 17);
  ARG(it->key, it->klen);
  ARG(offs, (size_t)snprintf(offs, sizeof offs, "%zu", off));
  ARG(lens, (size_t)snprintf(lens, sizeof lens, "%zu", it->vlen));
  if (opts) {
    if (opts->flags & CASCADE_PUT_PREFIX) ARG("PREFIX", 6);
    if (opts->flags & CASCADE_PUT_NX) ARG("NX", 2);
    if (opts->flags & CASCADE_PUT_XX) ARG("XX", 2);
    if (opts->parent) {
      ARG("PARENT", 6);
      ARG(opts->parent, opts->parent_len);
    }
    if (opts->priority) {
      ARG("PRIORITY", 8);
      if (opts->priority < 0)
        ARG("low", 3);
      else
        ARG("high", 4);
    }
    if (opts->ttl_ms) {
      ARG("TTL", 3);
      ARG(ttl, (size_t)snprintf(ttl, sizeof ttl, "%llu",
                                (unsigned long long)opts->ttl_ms));
    }
  }
#undef ARG
  return w_cmd(cl, argc, argv, len);
}

/* Read the reply of one CASCADE.PUTSTAGED into it->rc.  0, or a negative
 * errno when the stream is broken. */
static int r_putstaged(cascade_client *cl, cascade_put_item *it) {
  char t;
  long long v;
  int rc = r_head(cl, &t, &v);
  if (rc < 0) return rc;
  if (t == '+')
    it->rc = 0;
  else if (t == '$' && v < 0) /* NX/XX: not stored */
    it->rc = it->opts && (it->opts->flags & CASCADE_PUT_NX) ? -EEXIST
                                                           : -ENOENT;
  else if (t == '-')
    it->rc = err_code(cl);
  else {
    cl->broken = 1;
    return fail(cl, -EPROTO, "unexpected CASCADE.PUTSTAGED reply%s", "");
  }
  return 0;
}

/* Values staged together (one round trip): what a request's blocks take. */
#define PUT_CHUNK (32u << 20)

/* Items [i, j) as one CASCADE.MPUTSTAGED (no options among them): the
 * daemon stores them with one batch put, hashing them on its hash pool.
 * offs[k - i]: item k's place in the staging area. */
static int w_mputstaged(cascade_client *cl, const cascade_put_item *items,
                        size_t i, size_t j, const size_t *offs) {
  size_t m = 0;
  for (size_t k = i; k < j; k++) m += put_ok(&items[k]);
  const void **argv = malloc((1 + 3 * m) * sizeof *argv);
  size_t *len = malloc((1 + 3 * m) * sizeof *len);
  char (*num)[24] = malloc(2 * m * sizeof *num);
  int rc = -ENOMEM;
  if (argv && len && num) {
    size_t a = 0, u = 0;
    argv[a] = "CASCADE.MPUTSTAGED";
    len[a++] = 18;
    for (size_t k = i; k < j; k++) {
      if (!put_ok(&items[k])) continue;
      argv[a] = items[k].key;
      len[a++] = items[k].klen;
      for (int f = 0; f < 2; f++, u++) {
        len[a] = (size_t)snprintf(num[u], sizeof num[u], "%zu",
                                  f ? items[k].vlen : offs[k - i]);
        argv[a++] = num[u];
      }
    }
    rc = w_cmd(cl, a, argv, len);
  }
  free(argv);
  free(len);
  free(num);
  return rc;
}

int cascade_client_put_batch(cascade_client *cl, cascade_put_item *items,
                             size_t n) {
  if (!cl || (n && !items)) return -EINVAL;
  int stored = 0;
  size_t i = 0, limit = PUT_CHUNK;
  while (i < n) {
    /* a chunk: items while their values fit in limit (at least one); bad
     * items get their rc and take no place */
    size_t j = i, total = 0;
    while (j < n && (j == i || total + items[j].vlen <= limit)) {
      if (put_ok(&items[j])) total += items[j].vlen;
      j++;
    }
    int rc = start(cl);
    if (rc == 0) rc = stage_reserve(cl, total ? total : 1);
    if (rc == -EFBIG && j - i > 1) {
      limit = 0; /* the daemon takes less at once: one value at a time */
      continue;
    }
    if (rc < 0) {
      /* -EFBIG: this one value is larger than the daemon takes; any other
       * error ends the batch */
      for (size_t k = i; k < (rc == -EFBIG ? j : n); k++) items[k].rc = rc;
      if (rc != -EFBIG) return stored ? stored : rc;
      i = j;
      continue;
    }
    /* several values without options go as one batch put */
    size_t off = 0, nok = 0, sofs[16], *offs = NULL;
    int batch = 1;
    for (size_t k = i; k < j; k++)
      if (put_ok(&items[k])) {
        nok++;
        batch &= items[k].opts == NULL;
      }
    batch &= nok > 1;
    if (batch && !(offs = j - i <= 16 ? sofs : malloc((j - i) * sizeof *offs)))
      batch = 0;
    for (size_t k = i; k < j && rc == 0; k++) {
      if (!put_ok(&items[k])) {
        items[k].rc = -EINVAL;
        continue;
      }
      if (items[k].vlen) memcpy(cl->stage + off, items[k].value, items[k].vlen);
      if (batch)
        offs[k - i] = off;
      else
        rc = w_putstaged(cl, &items[k], off);
      off += items[k].vlen;
    }
    if (rc == 0 && batch) rc = w_mputstaged(cl, items, i, j, offs);
    if (offs != sofs) free(offs);
    if (rc == 0) rc = roundtrip(cl);
    if (rc == 0 && batch) {
      char t;
      long long cnt;
      rc = r_head(cl, &t, &cnt);
      if (rc == 0 && t == '-') { /* the whole command refused */
        int e = err_code(cl);
        for (size_t k = i; k < j; k++)
          if (put_ok(&items[k])) items[k].rc = e;
        i = j;
        continue;
      }
      if (rc == 0 && (t != '*' || cnt != (long long)nok)) {
        cl->broken = 1;
        rc = fail(cl, -EPROTO, "unexpected CASCADE.MPUTSTAGED reply%s", "");
      }
    }
    for (size_t k = i; k < j && rc == 0; k++)
      if (put_ok(&items[k])) {
        rc = r_putstaged(cl, &items[k]);
        if (rc == 0 && items[k].rc == 0) stored++;
      }
    if (rc < 0) { /* the stream is broken: the rest is not stored */
      cl->broken = 1;
      for (size_t k = i; k < n; k++)
        if (k >= j || items[k].rc == 0) items[k].rc = rc;
      return stored ? stored : rc;
    }
    i = j;
  }
  return stored;
}

int cascade_client_put(cascade_client *cl, const void *key, size_t klen,
                       const void *value, size_t vlen,
                       const cascade_put_opts *opts) {
  cascade_put_item it = {key, klen, value, vlen, opts, 0};
  if (!cl) return -EINVAL;
  if (!put_ok(&it)) return -EINVAL;
  int rc = cascade_client_put_batch(cl, &it, 1);
  return rc < 0 ? rc : it.rc;
}
