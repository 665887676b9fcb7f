/*
 * net.c - listeners, workers and connections of cascaded.
 *
 * Workers
 *   Each worker thread has an epoll set holding every listener (with
 *   EPOLLEXCLUSIVE: one worker wakes per new connection, accepts it and
 *   deals it round-robin to a worker, which owns it for its life), an
 *   eventfd that wakes it for handed-over sockets and for shutdown, and its
 *   own connections (level-triggered).  A connection's
 *   commands run on its worker, so one client sending a 160 MiB value
 *   delays only the clients of that worker by the time of one read() at a
 *   time, never by the whole transfer: reads are non-blocking, and a
 *   command is executed only once all its bytes are in.
 *
 * Input
 *   ib holds [0, ilen) bytes read; [0, ipos) are parsed commands already
 *   executed, and the partial command starts at ipos.  After each round the
 *   partial command is moved to the front.  When the parser knows the size
 *   of a large bulk, ib grows once to hold it (no repeated doubling and
 *   copying of a 160 MiB value); a buffer grown past IB_KEEP is given back
 *   once the connection has been idle for a while, so RSS follows the work in
 *   flight.
 *
 * Output
 *   Replies are queued as segments: bytes in chunks (small replies are
 *   appended to the last chunk) and views of values in the store's arena
 *   (a GET of a large value is sent straight from the arena with writev:
 *   no copy; the view keeps the block pinned until it is sent).  A round of
 *   commands is followed by one writev of as many segments as fit; what the
 *   socket does not take waits for EPOLLOUT.  While more than OUT_PAUSE
 *   bytes are queued, no further commands of that client are executed and
 *   its input is not read (back-pressure); past client-output-buffer-limit
 *   the client is disconnected, as Redis does.
 *
 * Limits: maxclients (an error reply, then close), proto-max-bulk-len (a
 * protocol error, then close), the output limit, the idle timeout (checked
 * once a second).
 */
#define _GNU_SOURCE
#include "server/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define IB_MIN (16 * 1024)          /* input buffer: initial size */
#define IB_KEEP (1024 * 1024)       /* shrink back past this when idle */
#define IB_IDLE_MS 2000             /* ... for this long */
#define READ_MAX (16 * 1024 * 1024) /* bytes read per wake-up */
#define CHUNK (16 * 1024)           /* output chunk */
#define VIEW_MIN (16 * 1024)        /* values at least this large: zero-copy */
#define OUT_PAUSE (4 * 1024 * 1024) /* back-pressure threshold */
#define IOV_BATCH 64
#define UNAUTH_BULK (16 * 1024) /* before AUTH: longest bulk */
#define UNAUTH_ARGS 10          /* before AUTH: most arguments */
#define UNAUTH_INPUT (64 * 1024) /* before AUTH: input held */
#define METRICS_MAX 64          /* metrics connections at once */

server g_srv;

uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- output ------------------------------------------------------------- */

static oseg *seg_chunk(conn *c, size_t need) {
  oseg *t = c->ot;
  if (t && t->cap && t->cap - t->fill >= need) return t;
  size_t cap = need > CHUNK ? need : CHUNK;
  oseg *s = malloc(sizeof *s + cap);
  if (!s) return NULL;
  memset(s, 0, sizeof *s);
  s->cap = cap;
  s->p = s->data;
  if (c->ot)
    c->ot->next = s;
  else
    c->oh = s;
  c->ot = s;
  return s;
}

static void out_account(conn *c, size_t n) {
  c->obytes += n;
  if (g_srv.conf->obuf_limit && c->obytes > g_srv.conf->obuf_limit &&
      !c->dead) {
    srv_log(LOG_WARNING,
            "client id=%llu addr=%s closed: output buffer limit reached "
            "(%llu bytes queued, client-output-buffer-limit %llu)",
            (unsigned long long)c->id, c->addr,
            (unsigned long long)c->obytes,
            (unsigned long long)g_srv.conf->obuf_limit);
    c->dead = 1;
  }
}

void reply_raw(conn *c, const void *p, size_t n) {
  if (c->dead || n == 0) return;
  const char *src = p;
  while (n > 0) {
    oseg *s = seg_chunk(c, n);
    if (!s) {
      srv_log(LOG_WARNING, "client id=%llu closed: out of memory for a reply",
              (unsigned long long)c->id);
      c->dead = 1;
      return;
    }
    size_t k = s->cap - s->fill;
    if (k > n) k = n;
    memcpy(s->data + s->fill, src, k);
    s->fill += k;
    s->len += k;
    src += k;
    n -= k;
    out_account(c, k);
  }
}

void reply_simple(conn *c, const char *s) {
  char b[256];
  int n = snprintf(b, sizeof b, "+%s\r\n", s);
  reply_raw(c, b, (size_t)n < sizeof b ? (size_t)n : sizeof b - 1);
}

void reply_error(conn *c, const char *fmt, ...) {
  char b[512];
  va_list ap;
  b[0] = '-';
  va_start(ap, fmt);
  int n = vsnprintf(b + 1, sizeof b - 3, fmt, ap);
  va_end(ap);
  if (n < 0) n = 0;
  size_t len = 1 + ((size_t)n < sizeof b - 3 ? (size_t)n : sizeof b - 4);
  /* an error is one line: no CR or LF inside */
  for (size_t i = 1; i < len; i++)
    if (b[i] == '\r' || b[i] == '\n') b[i] = ' ';
  b[len++] = '\r';
  b[len++] = '\n';
  atomic_fetch_add_explicit(&g_srv.errors_total, 1, memory_order_relaxed);
  reply_raw(c, b, len);
}

void reply_int(conn *c, int64_t v) {
  char b[32];
  int n = snprintf(b, sizeof b, ":%lld\r\n", (long long)v);
  reply_raw(c, b, (size_t)n);
}

static void reply_len(conn *c, char t, int64_t n) {
  char b[32];
  int k = snprintf(b, sizeof b, "%c%lld\r\n", t, (long long)n);
  reply_raw(c, b, (size_t)k);
}

void reply_bulk(conn *c, const void *p, size_t n) {
  reply_len(c, '$', (int64_t)n);
  reply_raw(c, p, n);
  reply_raw(c, "\r\n", 2);
}

void reply_bulk_str(conn *c, const char *s) { reply_bulk(c, s, strlen(s)); }

void reply_null(conn *c) { reply_raw(c, "$-1\r\n", 5); }

void reply_array(conn *c, int64_t n) { reply_len(c, '*', n); }

void reply_bulk_view(conn *c, cascade_view *v) {
  if (c->dead) {
    cascade_view_release(g_srv.store, v);
    return;
  }
  /* small: a copy is cheaper than a segment; and past the daemon-wide
   * bound on views held for clients, copies too (memory the output
   * limit bounds) */
  if (v->len < VIEW_MIN ||
      atomic_fetch_add_explicit(&g_srv.nheld, 1, memory_order_relaxed) >=
          SRV_HELD_MAX) {
    if (v->len >= VIEW_MIN)
      atomic_fetch_sub_explicit(&g_srv.nheld, 1, memory_order_relaxed);
    reply_bulk(c, v->data, v->len);
    cascade_view_release(g_srv.store, v);
    return;
  }
  reply_len(c, '$', (int64_t)v->len);
  oseg *s = calloc(1, sizeof *s);
  if (!s) {
    cascade_view_release(g_srv.store, v);
    atomic_fetch_sub_explicit(&g_srv.nheld, 1, memory_order_relaxed);
    c->dead = 1;
    return;
  }
  s->p = v->data;
  s->len = v->len;
  s->view = *v;
  memset(v, 0, sizeof *v);
  if (c->ot)
    c->ot->next = s;
  else
    c->oh = s;
  c->ot = s;
  out_account(c, s->len);
  reply_raw(c, "\r\n", 2);
}

static void seg_free(oseg *s) {
  if (s->view.blk_) {
    cascade_view_release(g_srv.store, &s->view);
    atomic_fetch_sub_explicit(&g_srv.nheld, 1, memory_order_relaxed);
  }
  free(s);
}

static void out_clear(conn *c) {
  while (c->oh) {
    oseg *n = c->oh->next;
    seg_free(c->oh);
    c->oh = n;
  }
  c->ot = NULL;
  c->obytes = 0;
}

/* Send what the socket takes.  0 all sent, 1 more left, -1 error. */
static int out_send(conn *c) {
  for (;;) {
    /* drop what was sent; an emptied tail chunk is kept for reuse */
    while (c->oh && c->oh->len == 0) {
      oseg *s = c->oh;
      if (s == c->ot && s->cap) {
        s->fill = 0;
        s->p = s->data;
        return 0;
      }
      c->oh = s->next;
      if (!c->oh) c->ot = NULL;
      seg_free(s);
    }
    if (!c->oh) return 0;
    struct iovec iov[IOV_BATCH];
    int n = 0;
    for (oseg *s = c->oh; s && n < IOV_BATCH; s = s->next)
      if (s->len > 0) {
        iov[n].iov_base = (void *)s->p;
        iov[n].iov_len = s->len;
        n++;
      }
    struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)n};
    /* a descriptor to pass (CASCADE.SHM, CASCADE.STAGE) rides on these
     * bytes, which hold its reply or precede it */
    union {
      char buf[CMSG_SPACE(sizeof(int))];
      struct cmsghdr align;
    } cm;
    if (c->send_fd >= 0) {
      memset(&cm, 0, sizeof cm);
      mh.msg_control = cm.buf;
      mh.msg_controllen = sizeof cm.buf;
      struct cmsghdr *h = CMSG_FIRSTHDR(&mh);
      h->cmsg_level = SOL_SOCKET;
      h->cmsg_type = SCM_RIGHTS;
      h->cmsg_len = CMSG_LEN(sizeof(int));
      memcpy(CMSG_DATA(h), &c->send_fd, sizeof(int));
    }
    ssize_t w = sendmsg(c->fd, &mh, MSG_NOSIGNAL);
    if (w > 0) c->send_fd = -1; /* passed; its owner closes it */
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return 1;
      return -1;
    }
    atomic_fetch_add_explicit(&g_srv.net_out, (uint64_t)w,
                              memory_order_relaxed);
    c->last_ms = now_ms(); /* a client taking a long reply is not idle */
    size_t left = (size_t)w;
    c->obytes -= left < c->obytes ? left : c->obytes;
    for (oseg *s = c->oh; s && left > 0; s = s->next) {
      size_t k = left < s->len ? left : s->len;
      s->p += k;
      s->len -= k;
      left -= k;
    }
  }
}

/* ---- connections ---------------------------------------------------------- */

static void conn_free(conn *c) {
  worker *w = c->w;
  epoll_ctl(w->epfd, EPOLL_CTL_DEL, c->fd, NULL);
  close(c->fd);
  if (c->kind == CONN_CLIENT) {
    cmd_conn_gone(c);
    atomic_fetch_sub_explicit(&g_srv.nclients, 1, memory_order_relaxed);
  } else {
    atomic_fetch_sub_explicit(&g_srv.nmetrics, 1, memory_order_relaxed);
  }
  out_clear(c);
  resp_fini(&c->rp);
  free(c->ib);
  free(c->pins);
  free(c->leases);
  free(c->lfree);
  if (c->prev)
    c->prev->next = c->next;
  else
    w->conns = c->next;
  if (c->next) c->next->prev = c->prev;
  srv_log(LOG_VERBOSE, "client id=%llu addr=%s closed",
          (unsigned long long)c->id, c->addr);
  free(c);
}

/* Make room for at least need bytes of input in total. */
static int ib_reserve(conn *c, size_t need) {
  if (need <= c->icap) return 0;
  size_t cap = c->icap ? c->icap : IB_MIN;
  /* doubling keeps growth by many bulks linear; one large bulk beyond
   * double the buffer gets exactly its size (a 512 MiB value must not
   * allocate 1 GiB) */
  if (need > 2 * cap && need > IB_KEEP)
    cap = need;
  else
    while (cap < need) cap = cap < (SIZE_MAX >> 1) ? cap * 2 : need;
  char *n = realloc(c->ib, cap);
  if (!n) return -1;
  c->ib = n;
  c->icap = cap;
  return 0;
}

/* Execute the complete commands held. */
static void conn_process(conn *c) {
  while (!c->dead && !c->closing && c->ipos < c->ilen &&
         c->obytes <= OUT_PAUSE) {
    resp_arg *argv;
    size_t argc, used, need = 0;
    int r = resp_parse(&c->rp, c->ib + c->ipos, c->ilen - c->ipos, &argv,
                       &argc, &used, &need);
    if (r == RESP_MORE) {
      if (need > 0 && ib_reserve(c, c->ipos + need) != 0) {
        srv_log(LOG_WARNING,
                "client id=%llu closed: out of memory for a %zu-byte "
                "command",
                (unsigned long long)c->id, need);
        c->dead = 1;
      }
      break;
    }
    if (r == RESP_ERROR || r == RESP_NOMEM) {
      reply_error(c, "ERR %s",
                  r == RESP_NOMEM ? "out of memory parsing the request"
                                  : c->rp.err);
      srv_log(LOG_VERBOSE, "client id=%llu addr=%s: %s; closing",
              (unsigned long long)c->id, c->addr,
              r == RESP_NOMEM ? "out of memory" : c->rp.err);
      c->closing = 1;
      break;
    }
    c->ipos += used;
    if (argc == 0) continue;
    c->cmds++;
    atomic_fetch_add_explicit(&g_srv.cmds_total, 1, memory_order_relaxed);
    cmd_exec(c, argv, argc);
  }
  /* keep the partial command at the front */
  if (c->ipos > 0) {
    memmove(c->ib, c->ib + c->ipos, c->ilen - c->ipos);
    c->ilen -= c->ipos;
    c->ipos = 0;
  }
}

/* Read what is there (up to READ_MAX), then execute.  -1: close. */
static int conn_read(conn *c) {
  size_t got = 0;
  /* before AUTH, little input is held: a client that sends more than a
   * few small commands' worth without authenticating is closed */
  size_t max = c->ns ? READ_MAX : UNAUTH_INPUT;
  if (!c->ns && c->ilen >= UNAUTH_INPUT) {
    srv_log(LOG_VERBOSE,
            "client id=%llu addr=%s closed: %zu bytes before AUTH",
            (unsigned long long)c->id, c->addr, c->ilen);
    return -1;
  }
  while (got < max) {
    if (c->icap - c->ilen < 4096 && ib_reserve(c, c->ilen + IB_MIN) != 0)
      return -1;
    ssize_t r = read(c->fd, c->ib + c->ilen, c->icap - c->ilen);
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      return -1;
    }
    if (r == 0) {
      /* the client closed (or half-closed) its side: the commands it sent
       * before still run and get their replies, then the connection
       * closes (conn_flush) */
      c->eof = 1;
      break;
    }
    c->ilen += (size_t)r;
    got += (size_t)r;
    atomic_fetch_add_explicit(&g_srv.net_in, (uint64_t)r,
                              memory_order_relaxed);
    if ((size_t)r < 4096) break;
  }
  c->last_ms = now_ms();
  conn_process(c);
  return 0;
}

/* After a round: send, and settle the epoll interest.  -1: close. */
static int conn_flush(conn *c) {
  if (c->dead) return -1;
  int r = out_send(c);
  if (r < 0) return -1;
  /* back-pressure lifted: run the commands that waited, for as long as the
   * socket takes the replies and commands are left (their input may all
   * be here already: no EPOLLIN would come for it) */
  while (r == 0 && c->kind == CONN_CLIENT && c->obytes <= OUT_PAUSE &&
         c->ilen > 0 && !c->closing) {
    size_t before = c->ilen;
    conn_process(c);
    if (c->dead) return -1;
    r = out_send(c);
    if (r < 0) return -1;
    if (c->ilen == before) break; /* only a partial command left */
  }
  /* the peer has half-closed and everything it sent is answered (a partial
   * command left can never complete) */
  if (r == 0 && c->eof && (c->obytes <= OUT_PAUSE || c->closing)) {
    if (c->ilen > 0)
      srv_log(LOG_VERBOSE,
              "client id=%llu addr=%s closed its side with %zu bytes of an "
              "incomplete command",
              (unsigned long long)c->id, c->addr, c->ilen);
    return -1;
  }
  if (r == 0 && c->closing) return -1;
  struct epoll_event ev = {.events = 0, .data.ptr = c};
  /* no EPOLLIN at EOF: a readable EOF would wake the loop forever */
  if (c->obytes <= OUT_PAUSE && !c->closing && !c->eof) ev.events |= EPOLLIN;
  if (r == 1) ev.events |= EPOLLOUT;
  epoll_ctl(c->w->epfd, EPOLL_CTL_MOD, c->fd, &ev);
  return 0;
}

static void addr_of(int fd, int is_unix, char *buf, size_t cap) {
  struct sockaddr_storage ss;
  socklen_t sl = sizeof ss;
  if (is_unix) {
    snprintf(buf, cap, "unix");
    return;
  }
  if (getpeername(fd, (struct sockaddr *)&ss, &sl) != 0) {
    snprintf(buf, cap, "?");
    return;
  }
  char host[INET6_ADDRSTRLEN] = "?";
  int port = 0;
  if (ss.ss_family == AF_INET) {
    struct sockaddr_in *a = (struct sockaddr_in *)&ss;
    inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
    port = ntohs(a->sin_port);
    snprintf(buf, cap, "%s:%d", host, port);
  } else if (ss.ss_family == AF_INET6) {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
    inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
    port = ntohs(a->sin6_port);
    snprintf(buf, cap, "[%s]:%d", host, port);
  } else {
    snprintf(buf, cap, "?");
  }
}

/* Take over an accepted socket on worker w. */
static void conn_add(worker *w, int fd, int kind, int is_unix) {
  if (!is_unix) {
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  conn *c = calloc(1, sizeof *c);
  if (!c) {
    close(fd);
    if (kind == CONN_CLIENT)
      atomic_fetch_sub_explicit(&g_srv.nclients, 1, memory_order_relaxed);
    return;
  }
  c->fd = fd;
  c->w = w;
  c->kind = kind;
  c->is_unix = is_unix;
  c->send_fd = -1;
  c->stage_fd = -1;
  c->id = atomic_fetch_add_explicit(&g_srv.next_id, 1, memory_order_relaxed);
  c->last_ms = c->created_ms = now_ms();
  /* the metrics endpoint speaks HTTP only: never a namespace */
  c->ns = kind != CONN_CLIENT || conf_auth_required(g_srv.conf) ? NULL
                                                                : "default";
  addr_of(fd, is_unix, c->addr, sizeof c->addr);
  resp_init(&c->rp);
  c->rp.max_bulk = g_srv.conf->max_bulk;
  if (!c->ns) {
    /* before AUTH, small commands only (as Redis since CVE-2021-32675):
     * an unauthenticated client cannot make the daemon buffer 512 MiB */
    c->rp.max_bulk = UNAUTH_BULK;
    c->rp.max_args = UNAUTH_ARGS;
  }
  if (kind == CONN_METRICS)
    atomic_fetch_add_explicit(&g_srv.nmetrics, 1, memory_order_relaxed);
  c->next = w->conns;
  if (w->conns) w->conns->prev = c;
  w->conns = c;
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
  if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
    conn_free(c);
    return;
  }
  srv_log(LOG_VERBOSE, "client id=%llu addr=%s connected on worker %d",
          (unsigned long long)c->id, c->addr, w->idx);
}

/* Sockets handed over by other workers. */
static void inbox_drain(worker *w) {
  uint64_t v;
  ssize_t r = read(w->wakefd, &v, sizeof v);
  (void)r;
  pthread_mutex_lock(&w->inbox_mu);
  struct handoff *h = w->inbox;
  w->inbox = NULL;
  pthread_mutex_unlock(&w->inbox_mu);
  while (h) {
    struct handoff *n = h->next;
    if (atomic_load(&g_srv.stopping)) {
      close(h->fd);
      if (h->kind == CONN_CLIENT)
        atomic_fetch_sub_explicit(&g_srv.nclients, 1, memory_order_relaxed);
    } else {
      conn_add(w, h->fd, h->kind, h->is_unix);
    }
    free(h);
    h = n;
  }
}

/* Accept what is pending on a listener.  The listener wakes one worker
 * (EPOLLEXCLUSIVE) and the kernel tends to wake the same idle one, so new
 * connections are dealt round-robin: a socket for another worker goes to
 * its inbox and its eventfd is written. */
static void conn_accept(worker *w, int lfd, int kind, int is_unix) {
  for (int k = 0; k < 64; k++) {
    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0 && (errno == EMFILE || errno == ENFILE) && w->spare >= 0) {
      /* out of descriptors: the pending connection would keep the
       * (level-triggered) listener readable and this loop spinning.  Give
       * back the spare descriptor, take the connection, refuse it, and
       * take the spare again. */
      close(w->spare);
      fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd >= 0) {
        static const char msg[] =
            "-ERR max number of clients reached (out of descriptors)\r\n";
        ssize_t r = send(fd, msg, sizeof msg - 1, MSG_NOSIGNAL);
        (void)r;
        close(fd);
        atomic_fetch_add_explicit(&g_srv.conns_rejected, 1,
                                  memory_order_relaxed);
      }
      w->spare = open("/dev/null", O_RDONLY | O_CLOEXEC);
      uint64_t now = now_ms();
      if (now - w->emfile_ms > 1000) {
        w->emfile_ms = now;
        srv_log(LOG_WARNING, "connection refused: out of file descriptors "
                             "(raise the open-files limit or maxclients)");
      }
      continue;
    }
    if (fd < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != ECONNABORTED)
        srv_log(LOG_WARNING, "accept: %s", strerror(errno));
      return;
    }
    if (kind == CONN_CLIENT) {
      uint32_t n =
          atomic_fetch_add_explicit(&g_srv.nclients, 1, memory_order_relaxed);
      if (n >= g_srv.conf->maxclients) {
        atomic_fetch_sub_explicit(&g_srv.nclients, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&g_srv.conns_rejected, 1,
                                  memory_order_relaxed);
        static const char msg[] = "-ERR max number of clients reached\r\n";
        ssize_t r = send(fd, msg, sizeof msg - 1, MSG_NOSIGNAL);
        (void)r;
        close(fd);
        srv_log(LOG_WARNING, "connection refused: maxclients (%u) reached",
                g_srv.conf->maxclients);
        continue;
      }
      atomic_fetch_add_explicit(&g_srv.conns_total, 1, memory_order_relaxed);
    } else if (atomic_load(&g_srv.nmetrics) >= METRICS_MAX) {
      close(fd); /* a scraper needs one; a flood gets none */
      continue;
    }
    uint64_t rr =
        atomic_fetch_add_explicit(&g_srv.next_worker, 1, memory_order_relaxed);
    worker *t = &g_srv.workers[rr % (uint64_t)g_srv.nworkers];
    struct handoff *h = t == w ? NULL : malloc(sizeof *h);
    if (!h) {
      conn_add(w, fd, kind, is_unix);
      continue;
    }
    *h = (struct handoff){.fd = fd, .kind = kind, .is_unix = is_unix};
    pthread_mutex_lock(&t->inbox_mu);
    h->next = t->inbox;
    t->inbox = h;
    pthread_mutex_unlock(&t->inbox_mu);
    uint64_t one = 1;
    ssize_t r = write(t->wakefd, &one, sizeof one);
    (void)r;
  }
}

/* ---- the metrics endpoint (HTTP/1.0, one request per connection) -------- */

static void metrics_read(conn *c) {
  if (ib_reserve(c, c->ilen + 1024) != 0) {
    c->dead = 1;
    return;
  }
  ssize_t r = read(c->fd, c->ib + c->ilen, c->icap - c->ilen - 1);
  if (r <= 0) {
    if (r < 0 && (errno == EAGAIN || errno == EINTR)) return;
    c->dead = 1;
    return;
  }
  c->ilen += (size_t)r;
  c->ib[c->ilen] = 0;
  if (!strstr(c->ib, "\r\n\r\n") && !strstr(c->ib, "\n\n")) {
    if (c->ilen > 8192) c->dead = 1; /* no such request is that long */
    return;
  }
  char hdr[256];
  if (strncmp(c->ib, "GET /metrics ", 13) == 0 ||
      strncmp(c->ib, "GET /metrics?", 13) == 0) {
    size_t len;
    char *body = metrics_text(&len);
    if (!body) {
      c->dead = 1;
      return;
    }
    int n = snprintf(hdr, sizeof hdr,
                     "HTTP/1.0 200 OK\r\nContent-Type: text/plain; "
                     "version=0.0.4\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n",
                     len);
    reply_raw(c, hdr, (size_t)n);
    reply_raw(c, body, len);
    free(body);
  } else {
    static const char body[] = "not found: try GET /metrics\n";
    int n = snprintf(hdr, sizeof hdr,
                     "HTTP/1.0 404 Not Found\r\nContent-Type: text/plain\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                     sizeof body - 1);
    reply_raw(c, hdr, (size_t)n);
    reply_raw(c, body, sizeof body - 1);
  }
  c->closing = 1;
}

/* ---- workers ------------------------------------------------------------- */

static void idle_check(worker *w, uint64_t now) {
  uint32_t t = g_srv.conf->timeout_s;
  for (conn *c = w->conns, *n; c; c = n) {
    n = c->next;
    /* a buffer grown for large values goes back once the client has been
     * quiet for a while (not after every command: a client storing 1 MiB
     * values would pay a fresh mapping and its page faults each time) */
    if (c->ilen == 0 && c->icap > IB_KEEP && now - c->last_ms > IB_IDLE_MS) {
      free(c->ib);
      c->ib = NULL;
      c->icap = 0;
      /* the parser's argument arrays too (a command of a million
       * arguments grew them) */
      uint64_t mb = c->rp.max_bulk;
      uint32_t ma = c->rp.max_args;
      resp_fini(&c->rp);
      resp_init(&c->rp);
      c->rp.max_bulk = mb;
      c->rp.max_args = ma;
    }
    uint64_t limit = c->kind == CONN_METRICS ? 10000 : (uint64_t)t * 1000;
    /* a client holding leases or pins may read them from its mapping for
     * as long as it likes: closing it would free blocks under its reads */
    if (c->nleases || c->npins || c->oh) limit = 0;
    if (limit && now - c->last_ms > limit) {
      srv_log(LOG_VERBOSE, "client id=%llu addr=%s closed: idle for %llu s",
              (unsigned long long)c->id, c->addr,
              (unsigned long long)((now - c->last_ms) / 1000));
      conn_free(c);
    }
  }
}

static void *worker_main(void *arg) {
  worker *w = arg;
  struct epoll_event ev[64];
  uint64_t last_check = now_ms();
  while (!atomic_load(&g_srv.stopping)) {
    int n = epoll_wait(w->epfd, ev, 64, 1000);
    if (n < 0 && errno != EINTR) {
      srv_log(LOG_WARNING, "worker %d: epoll_wait: %s", w->idx,
              strerror(errno));
      break;
    }
    for (int i = 0; i < n; i++) {
      void *p = ev[i].data.ptr;
      if ((uintptr_t)p < 4096) { /* a listener or the wake fd */
        uint64_t tag = (uintptr_t)p;
        if (tag == 0) continue;
        int idx = (int)(tag - 1);
        if (idx == g_srv.nlfd) { /* wake: handed-over sockets, or stop */
          inbox_drain(w);
          continue;
        }
        if (atomic_load(&g_srv.stopping)) continue;
        int lfd = idx < g_srv.nlfd ? g_srv.lfd[idx] : g_srv.metricsfd;
        conn_accept(w, lfd, idx < g_srv.nlfd ? CONN_CLIENT : CONN_METRICS,
                    idx == g_srv.unixfd);
        continue;
      }
      conn *c = p;
      int bad = 0;
      if (ev[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        if (c->kind == CONN_METRICS)
          metrics_read(c);
        else if (conn_read(c) != 0)
          bad = 1;
      }
      if (!bad && conn_flush(c) != 0) bad = 1;
      if (bad) conn_free(c);
    }
    uint64_t now = now_ms();
    if (now - last_check >= 1000) {
      idle_check(w, now);
      last_check = now;
    }
  }
  /* shutdown: commands already executed get their replies, briefly */
  uint64_t deadline = now_ms() + 2000;
  while (w->conns && now_ms() < deadline) {
    int pending = 0;
    for (conn *c = w->conns; c; c = c->next)
      if (c->oh && !c->dead && out_send(c) == 1) pending = 1;
    if (!pending) break;
    struct timespec ts = {0, 10 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  while (w->conns) conn_free(w->conns);
  inbox_drain(w); /* closes what is left there */
  return NULL;
}

/* ---- listeners ------------------------------------------------------------ */

static int listen_tcp(const char *addr, int port) {
  struct addrinfo hints = {.ai_family = AF_UNSPEC,
                           .ai_socktype = SOCK_STREAM,
                           .ai_flags = AI_PASSIVE | AI_NUMERICSERV},
                  *res = NULL;
  char ps[16];
  snprintf(ps, sizeof ps, "%d", port);
  int e = getaddrinfo(strcmp(addr, "*") ? addr : NULL, ps, &hints, &res);
  if (e != 0) {
    srv_log(LOG_WARNING, "bind %s: %s", addr, gai_strerror(e));
    return -1;
  }
  int fd = -1;
  for (struct addrinfo *a = res; a; a = a->ai_next) {
    fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                a->ai_protocol);
    if (fd < 0) continue;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (a->ai_family == AF_INET6)
      setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (bind(fd, a->ai_addr, a->ai_addrlen) == 0 && listen(fd, 511) == 0)
      break;
    srv_log(LOG_WARNING, "cannot listen on %s:%d: %s", addr, port,
            strerror(errno));
    close(fd);
    fd = -1;
  }
  freeaddrinfo(res);
  return fd;
}

static int listen_unix(const char *path, unsigned perm) {
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof sa.sun_path) return -1;
  strcpy(sa.sun_path, path);
  /* a socket file someone answers on belongs to a running daemon: never
   * take it over (unlinking it would cut that daemon off); one nobody
   * answers on is left over from an earlier run */
  int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (probe >= 0) {
    int live = connect(probe, (struct sockaddr *)&sa, sizeof sa) == 0;
    close(probe);
    if (live) {
      srv_log(LOG_WARNING,
              "unix socket %s is in use (another cascaded running?)", path);
      return -2;
    }
  }
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  unlink(path); /* a stale socket of an earlier run */
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, 511) != 0) {
    srv_log(LOG_WARNING, "cannot listen on unix socket %s: %s", path,
            strerror(errno));
    close(fd);
    return -1;
  }
  if (chmod(path, perm) != 0)
    srv_log(LOG_WARNING, "chmod %o %s: %s", perm, path, strerror(errno));
  return fd;
}

int net_listen(server *s) {
  srv_conf *cf = s->conf;
  s->nlfd = 0;
  s->unixfd = -1;
  s->metricsfd = -1;
  if (cf->port > 0)
    for (int i = 0; i < cf->nbind; i++) {
      int fd = listen_tcp(cf->bind[i], cf->port);
      if (fd < 0) return -1;
      s->lfd[s->nlfd++] = fd;
      srv_log(LOG_NOTICE, "listening on %s:%d", cf->bind[i], cf->port);
    }
  if (cf->unixsocket) {
    int fd = listen_unix(cf->unixsocket, cf->unixperm);
    if (fd < 0) return -1; /* unixfd stays -1: the path is not ours */
    s->unixfd = s->nlfd;
    s->lfd[s->nlfd++] = fd;
    srv_log(LOG_NOTICE, "listening on unix socket %s", cf->unixsocket);
  }
  if (s->nlfd == 0) {
    srv_log(LOG_WARNING, "nothing to listen on: port 0 and no unixsocket");
    return -1;
  }
  if (cf->metrics_port > 0) {
    s->metricsfd = listen_tcp(cf->metrics_bind, cf->metrics_port);
    if (s->metricsfd < 0) return -1;
    srv_log(LOG_NOTICE, "metrics at http://%s:%d/metrics", cf->metrics_bind,
            cf->metrics_port);
  }
  return 0;
}

void net_close_listeners(server *s) {
  for (int i = 0; i < s->nlfd; i++)
    if (s->lfd[i] >= 0) close(s->lfd[i]);
  if (s->conf->unixsocket && s->unixfd >= 0) unlink(s->conf->unixsocket);
  if (s->metricsfd >= 0) close(s->metricsfd);
  s->nlfd = 0;
  s->metricsfd = -1;
}

int net_start(server *s) {
  s->nworkers = s->conf->threads;
  s->nstarted = 0;
  s->workers = calloc((size_t)s->nworkers, sizeof *s->workers);
  if (!s->workers) {
    s->nworkers = 0;
    return -1;
  }
  for (int i = 0; i < s->nworkers; i++) {
    worker *w = &s->workers[i];
    w->epfd = w->wakefd = w->spare = -1; /* net_stop closes what is open */
    pthread_mutex_init(&w->inbox_mu, NULL);
  }
  for (int i = 0; i < s->nworkers; i++) {
    worker *w = &s->workers[i];
    w->idx = i;
    w->spare = open("/dev/null", O_RDONLY | O_CLOEXEC);
    w->epfd = epoll_create1(EPOLL_CLOEXEC);
    w->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->epfd < 0 || w->wakefd < 0) return -1;
    /* listener k is tagged k + 1, the wake fd nlfd + 1, metrics nlfd + 2 */
    for (int k = 0; k <= s->nlfd + 1; k++) {
      int fd = k < s->nlfd ? s->lfd[k] : k == s->nlfd ? w->wakefd
                                                       : s->metricsfd;
      if (fd < 0) continue;
      struct epoll_event ev = {
          .events = EPOLLIN | (k == s->nlfd ? 0 : EPOLLEXCLUSIVE),
          .data.ptr = (void *)(uintptr_t)(k + 1)};
      if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        srv_log(LOG_WARNING, "epoll_ctl: %s", strerror(errno));
        return -1;
      }
    }
  }
  for (int i = 0; i < s->nworkers; i++) {
    if (pthread_create(&s->workers[i].thread, NULL, worker_main,
                       &s->workers[i]) != 0)
      return -1;
    s->nstarted = i + 1;
  }
  return 0;
}

void net_stop(server *s) {
  atomic_store(&s->stopping, 1);
  for (int i = 0; i < s->nworkers; i++) {
    uint64_t one = 1;
    ssize_t r = write(s->workers[i].wakefd, &one, sizeof one);
    (void)r;
  }
  for (int i = 0; i < s->nstarted; i++)
    pthread_join(s->workers[i].thread, NULL);
  s->nstarted = 0;
  net_close_listeners(s);
  for (int i = 0; i < s->nworkers; i++) {
    worker *w = &s->workers[i];
    /* a socket handed over after its worker's last look is closed here */
    for (struct handoff *h = w->inbox, *n; h; h = n) {
      n = h->next;
      close(h->fd);
      free(h);
    }
    w->inbox = NULL;
    if (w->epfd >= 0) close(w->epfd);
    if (w->wakefd >= 0) close(w->wakefd);
    if (w->spare >= 0) close(w->spare);
    pthread_mutex_destroy(&w->inbox_mu);
  }
  free(s->workers);
  s->workers = NULL;
  s->nworkers = 0;
}
