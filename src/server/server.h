/*
 * server.h - cascaded, the node daemon: shared structures of src/server.
 *
 * Shape
 *   main.c   start-up: configuration (file, then flags), checks, daemonise,
 *            pid file, the store, signals, the workers; shutdown.
 *   conf.c   the daemon's settings and their parsing (Redis-style "name
 *            value" lines; the same names as --flags).
 *   net.c    listeners and the workers: each worker thread runs its own
 *            epoll loop over the connections it accepted; connections,
 *            input parsing (resp.c), the output queue, limits, the
 *            Prometheus endpoint.
 *   cmd.c    the command table and the commands.
 *   info.c   INFO and the Prometheus text.
 *
 * Threads
 *   The main thread waits for signals (signalfd) and runs nothing else.
 *   Listeners are in every worker's epoll set with EPOLLEXCLUSIVE (one
 *   worker wakes per new connection); the worker that accepts deals the
 *   socket round-robin (through the target's inbox and eventfd).  Each
 *   worker owns its connections and executes their commands itself,
 *   calling the store, which is thread-safe.  A connection is touched by its worker only, so
 *   connection state has no lock.  Server-wide counters are atomics.
 *
 * The daemon uses the public API of libcascade only (include/cascade.h).
 */
#ifndef CASCADE_SERVER_H
#define CASCADE_SERVER_H

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "cascade.h"
#include "server/resp.h"

#define SRV_MAX_BIND 16
#define SRV_NAME_MAX 256
/* Views the daemon holds for clients at once, all connections together:
 * far below the store's pin counter range, whatever clients do. */
#define SRV_HELD_MAX (UINT64_C(1) << 24)

/* A namespace a client may authenticate into: AUTH name password. */
typedef struct srv_ns {
  char name[CASCADE_MAX_NS + 1];
  char *pass;
} srv_ns;

typedef struct srv_conf {
  char *file; /* the configuration file, or NULL */
  int port;   /* TCP port; 0 = no TCP */
  char *bind[SRV_MAX_BIND];
  int nbind;
  char *unixsocket; /* NULL = none */
  unsigned unixperm;
  int threads;
  char *requirepass; /* password of the default namespace, or NULL */
  srv_ns *ns;        /* namespaces with passwords */
  int nns;
  int daemonize;
  char *pidfile;
  char *logfile;
  int loglevel; /* 0 debug, 1 verbose, 2 notice, 3 warning */
  uint32_t maxclients;
  uint64_t max_bulk;   /* proto-max-bulk-len */
  uint64_t obuf_limit; /* client-output-buffer-limit, bytes; 0 = none */
  uint32_t timeout_s;  /* idle clients closed after this; 0 = never */
  int metrics_port;    /* 0 = no /metrics endpoint */
  char *metrics_bind;
  cascade_config *engine; /* every engine setting */
} srv_conf;

/* conf.c */
void conf_init(srv_conf *c);
void conf_free(srv_conf *c);
/* Apply "name value..." (argv[0] = name, without "--").  0, or -1 with a
 * message in err. */
int conf_apply(srv_conf *c, int argc, char **argv, char *err, size_t cap);
/* Read a configuration file.  0, or -1 with a message in err. */
int conf_load(srv_conf *c, const char *path, char *err, size_t cap);
/* Parse the command line (configuration file first, then flags).  0 ok,
 * 1 help/version printed (exit 0), -1 error (printed). */
int conf_from_args(srv_conf *c, int argc, char **argv);
/* Does any password protect the server? */
int conf_auth_required(const srv_conf *c);
/* Is the address a loopback one (127.0.0.0/8, ::1, localhost)? */
int conf_is_loopback(const char *addr);
/* The value of a daemon setting (CONFIG GET); NULL if not one. */
int conf_get(const srv_conf *c, const char *name, char *buf, size_t cap);
/* Names of the daemon's own settings, NULL-terminated. */
extern const char *const conf_names[];

/* ---- logging (main.c) ---- */
enum { LOG_DEBUG, LOG_VERBOSE, LOG_NOTICE, LOG_WARNING };
void srv_log(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ---- the output queue of a connection ---- */

/* A segment of a reply: bytes of a chunk, or a zero-copy view of a value
 * in the store's arena (released once sent). */
typedef struct oseg {
  struct oseg *next;
  const char *p; /* next byte to send */
  size_t len;    /* bytes left to send */
  cascade_view view; /* view.blk_ set: a view to release */
  size_t cap;        /* chunk: bytes allocated after the struct, else 0 */
  size_t fill;       /* chunk: bytes written into it */
  char data[];       /* chunk bytes */
} oseg;

struct worker;

typedef struct pinned {
  const char *ns; /* the namespace it was pinned in */
  char *key;
  size_t klen;
  cascade_view view;
} pinned;

typedef struct conn {
  struct conn *prev, *next; /* the worker's list */
  struct worker *w;
  int fd;
  int kind; /* CONN_CLIENT, CONN_METRICS */
  uint64_t id;
  char addr[64];
  char name[SRV_NAME_MAX + 1];
  const char *ns; /* namespace; NULL until authenticated */
  /* input */
  char *ib;
  size_t ilen, icap, ipos; /* bytes held, allocated, parsed */
  resp_parser rp;
  /* output */
  oseg *oh, *ot; /* queue head and tail */
  uint64_t obytes; /* bytes queued */
  int closing;     /* close once the output is sent (QUIT, errors) */
  int dead;        /* close now */
  int eof;         /* the peer closed its side: answer what came, close */
  uint64_t last_ms; /* last activity (monotonic ms) */
  uint64_t created_ms;
  uint64_t cmds;
  /* CASCADE.PIN: views this connection holds */
  pinned *pins;
  size_t npins, cpins;
  /* the shared-memory path (Unix socket only) */
  int is_unix;
  int send_fd;      /* a descriptor to pass with the next bytes sent, or -1
                       (the arena's or stage_fd: owned elsewhere) */
  struct lease *leases; /* CASCADE.LEASE: slots; id 0 = free */
  uint32_t *lfree;      /* free slots (a stack) */
  size_t nleases;       /* leases held */
  size_t lused, cleases, nlfree; /* slots ever used, allocated, free */
  uint64_t next_lease;
  uint8_t *stage;   /* CASCADE.STAGE: the staging area, mapped */
  uint64_t stage_len;
  int stage_fd;     /* its descriptor (to punch out used pages), or -1 */
} conn;

/* A block lent to a local client: it reads the bytes from its own mapping
 * of the arena while the view keeps the block pinned.  A lease's id is
 * (serial << LEASE_SLOT_BITS) | slot, so a release finds it at once. */
struct lease {
  uint64_t id;
  cascade_view view;
};
#define LEASE_SLOT_BITS 17

enum { CONN_CLIENT = 1, CONN_METRICS = 2 };

/* A socket accepted by one worker for another. */
struct handoff {
  struct handoff *next;
  int fd, kind, is_unix;
};

typedef struct worker {
  int idx;
  pthread_t thread;
  int epfd;
  int wakefd; /* eventfd: sockets in the inbox, or shutdown */
  conn *conns;
  pthread_mutex_t inbox_mu; /* leaf lock */
  struct handoff *inbox;
  int spare;          /* a descriptor to give back when out of them */
  uint64_t emfile_ms; /* last "out of descriptors" log line */
} worker;

/* The server: one per process. */
typedef struct server {
  srv_conf *conf;
  cascade *store;
  int lfd[SRV_MAX_BIND + 2]; /* TCP listeners, then the Unix one */
  int nlfd;
  int unixfd; /* index into lfd of the Unix listener, or -1 */
  int metricsfd;
  worker *workers;
  int nworkers; /* allocated */
  int nstarted; /* threads running */
  _Atomic int stopping;
  _Atomic uint32_t nclients;
  _Atomic uint64_t next_id;
  _Atomic uint64_t next_worker; /* round-robin of new connections */
  _Atomic uint64_t conns_total, conns_rejected, cmds_total, net_in, net_out;
  _Atomic uint64_t errors_total, keyspace_hits, keyspace_misses;
  uint64_t value_max;  /* largest value the store takes (max_value, DRAM) */
  _Atomic uint32_t nmetrics; /* metrics connections open */
  _Atomic uint64_t nheld; /* views held for clients: pins, leases, queued
                             GET replies (bounded: SRV_HELD_MAX) */
  uint64_t start_ms;   /* monotonic */
  char exe[PATH_MAX];
} server;

extern server g_srv;

/* net.c */
int net_listen(server *s);      /* open the listeners; -1 with a log line */
int net_start(server *s);       /* start the workers */
void net_stop(server *s);       /* stop accepting, close clients, join */
void net_close_listeners(server *s);
uint64_t now_ms(void);

/* output of replies (net.c) */
void reply_raw(conn *c, const void *p, size_t n);
void reply_simple(conn *c, const char *s);              /* +s */
void reply_error(conn *c, const char *fmt, ...)         /* -fmt */
    __attribute__((format(printf, 2, 3)));
void reply_int(conn *c, int64_t v);                     /* :v */
void reply_bulk(conn *c, const void *p, size_t n);      /* $n bytes */
void reply_bulk_str(conn *c, const char *s);
void reply_null(conn *c);                               /* $-1 */
void reply_array(conn *c, int64_t n);                   /* *n */
/* A value as a bulk reply without copying it: takes the view over (it is
 * released once sent or when the connection goes). */
void reply_bulk_view(conn *c, cascade_view *v);

/* cmd.c */
/* Execute one command; replies queued on c. */
void cmd_exec(conn *c, resp_arg *argv, size_t argc);
/* A connection goes: release what it holds (pins). */
void cmd_conn_gone(conn *c);

/* info.c */
/* INFO text for section (NULL/"" = default, "all", "everything" or a name)
 * into a malloc'd string; *len its length. */
char *info_text(conn *c, const char *section, size_t *len);
char *metrics_text(size_t *len);

#endif /* CASCADE_SERVER_H */
