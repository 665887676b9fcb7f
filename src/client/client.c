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
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define RBUF_MIN 4096
#define RELEASE_MAX 256           /* releases queued before a forced send */
#define STAGE_MIN (8u << 20)      /* smallest staging area asked for */
#define ERRMSG 256

struct cascade_client {
  int fd;
  const uint8_t *arena; /* mapped read-only */
  size_t arena_len;
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

/* Append one command: argv[i] of len[i] bytes, as a RESP multibulk. */
static int w_cmd(cascade_client *cl, size_t argc, const void *const *argv,
                 const size_t *len) {
  size_t undo = cl->wlen; /* a command half written would put the stream
                             out of step: on failure it is taken back */
  char h[32];
  int n = snprintf(h, sizeof h, "*%zu\r\n", argc);
  int rc = w_put(cl, h, (size_t)n);
  for (size_t i = 0; i < argc && rc == 0; i++) {
    n = snprintf(h, sizeof h, "$%zu\r\n", len[i]);
    rc = w_put(cl, h, (size_t)n);
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
      rc = fail(cl, -EPROTO, "CASCADE.RELEASE failed: %s", cl->err);
    }
    cl->unread--;
  }
  return rc;
}

static int start(cascade_client *cl) {
  if (cl->broken)
    return fail(cl, -EPIPE, "the connection to cascaded is broken%s", "");
  cl->err[0] = 0;
  return w_releases(cl);
}

/* ---- the calls ------------------------------------------------------------ */

/* A descriptor that came with the reply just read, or -1. */
static int take_fd(cascade_client *cl) {
  int fd = cl->got_fd;
  cl->got_fd = -1;
  return fd;
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
  if (rc == 0) {
    void *p = mmap(NULL, (size_t)n, PROT_READ, MAP_SHARED, afd, 0);
    if (p == MAP_FAILED) {
      rc = -errno;
    } else {
      cl->arena = p;
      cl->arena_len = (size_t)n;
    }
  }
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
  if (cl->arena) munmap((void *)cl->arena, cl->arena_len);
  if (cl->stage) munmap(cl->stage, cl->stage_len);
  if (cl->got_fd >= 0) close(cl->got_fd);
  if (cl->fd >= 0) close(cl->fd);
  free(cl->rb);
  free(cl->wb);
  free(cl);
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
    size_t off = 0;
    for (size_t k = i; k < j && rc == 0; k++) {
      if (!put_ok(&items[k])) {
        items[k].rc = -EINVAL;
        continue;
      }
      if (items[k].vlen) memcpy(cl->stage + off, items[k].value, items[k].vlen);
      rc = w_putstaged(cl, &items[k], off);
      off += items[k].vlen;
    }
    if (rc == 0) rc = roundtrip(cl);
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
