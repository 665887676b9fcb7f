/*
 * conf.c - cascaded's settings: a Redis-style file of "name value..." lines
 * (# comments, "quoted values"), then command-line flags "--name value..."
 * that override it.  The daemon's own names are in the table below; any
 * engine setting (cascade_config_names(): dram.capacity, disk.dir, ...) is
 * accepted under its own name, so every engine setting is reachable.  A few
 * short names map onto engine settings (dram, disk, disk-dir, policy).
 */
#define _GNU_SOURCE
#include "server/server.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *const conf_names[] = {
    "port",        "bind",        "unixsocket",  "unixsocketperm",
    "threads",     "requirepass", "namespace",   "daemonize",
    "pidfile",     "logfile",     "loglevel",    "maxclients",
    "proto-max-bulk-len", "client-output-buffer-limit", "timeout",
    "metrics-port", "metrics-bind", "dram", "disk", "disk-dir", "policy",
    NULL};

void conf_init(srv_conf *c) {
  memset(c, 0, sizeof *c);
  c->port = 6380;
  c->unixperm = 0700;
  c->threads = 2;
  c->loglevel = LOG_NOTICE;
  c->maxclients = 10000;
  c->max_bulk = RESP_MAX_BULK_DEFAULT;
  c->obuf_limit = UINT64_C(1) << 30;
  c->metrics_bind = strdup("127.0.0.1");
}

void conf_free(srv_conf *c) {
  free(c->file);
  for (int i = 0; i < c->nbind; i++) free(c->bind[i]);
  free(c->unixsocket);
  free(c->requirepass);
  for (int i = 0; i < c->nns; i++) free(c->ns[i].pass);
  free(c->ns);
  free(c->pidfile);
  free(c->logfile);
  free(c->metrics_bind);
  cascade_config_free(c->engine);
  memset(c, 0, sizeof *c);
}

/* A size with an optional k/m/g/t (binary) suffix, or "kb", "mib"... */
static int parse_size(const char *s, uint64_t *out) {
  char *end;
  errno = 0;
  if (!isdigit((unsigned char)*s)) return -1;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno) return -1;
  int shift = 0;
  switch (tolower((unsigned char)*end)) {
  case 0: break;
  case 'b': shift = 0; end++; break;
  case 'k': shift = 10; end++; break;
  case 'm': shift = 20; end++; break;
  case 'g': shift = 30; end++; break;
  case 't': shift = 40; end++; break;
  default: return -1;
  }
  if (shift && (strcasecmp(end, "") == 0 || strcasecmp(end, "b") == 0 ||
                strcasecmp(end, "ib") == 0))
    end += strlen(end);
  if (*end) return -1;
  if (shift && v > (UINT64_MAX >> shift)) return -1;
  *out = (uint64_t)v << shift;
  return 0;
}

static int parse_uint(const char *s, uint64_t max, uint64_t *out) {
  char *end;
  errno = 0;
  if (!isdigit((unsigned char)*s)) return -1;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || *end || v > max) return -1;
  *out = v;
  return 0;
}

static int parse_bool(const char *s) {
  if (!strcasecmp(s, "yes") || !strcasecmp(s, "true") || !strcmp(s, "1") ||
      !strcasecmp(s, "on"))
    return 1;
  if (!strcasecmp(s, "no") || !strcasecmp(s, "false") || !strcmp(s, "0") ||
      !strcasecmp(s, "off"))
    return 0;
  return -1;
}

static int set_str(char **dst, const char *v) {
  char *n = strdup(v);
  if (!n) return -1;
  free(*dst);
  *dst = n;
  return 0;
}

static int is_engine_name(const char *name) {
  for (const char *const *n = cascade_config_names(); *n; n++)
    if (!strcmp(*n, name)) return 1;
  return 0;
}

int conf_apply(srv_conf *c, int argc, char **argv, char *err, size_t cap) {
  const char *name = argv[0];
  uint64_t u;
  int nv = argc - 1;
  const char *v = nv >= 1 ? argv[1] : NULL;
#define NEED(n)                                                               \
  do {                                                                        \
    if (nv != (n)) {                                                          \
      snprintf(err, cap, "'%s' takes %d value%s, got %d", name, (n),          \
               (n) == 1 ? "" : "s", nv);                                      \
      return -1;                                                              \
    }                                                                         \
  } while (0)
#define BAD()                                                                 \
  do {                                                                        \
    snprintf(err, cap, "bad value for '%s': '%s'", name, v);                  \
    return -1;                                                                \
  } while (0)

  if (!c->engine && cascade_config_new(&c->engine) != 0) {
    snprintf(err, cap, "out of memory");
    return -1;
  }
  /* short names of engine settings */
  const char *ename = !strcmp(name, "dram")       ? "dram.capacity"
                      : !strcmp(name, "disk")     ? "disk.capacity"
                      : !strcmp(name, "disk-dir") ? "disk.dir"
                      : !strcmp(name, "policy")   ? "policy"
                      : is_engine_name(name)      ? name
                                                  : NULL;
  if (ename) {
    NEED(1);
    int rc = cascade_config_set(c->engine, ename, v);
    if (rc != 0) {
      snprintf(err, cap, "bad value for '%s': '%s' (%s)", name, v,
               cascade_strerror(rc));
      return -1;
    }
    /* a disk capacity without a directory is an error at open; a disk
     * directory alone is fine (no capacity bound) */
    return 0;
  }
  if (!strcmp(name, "port")) {
    NEED(1);
    if (parse_uint(v, 65535, &u)) BAD();
    c->port = (int)u;
  } else if (!strcmp(name, "bind")) {
    if (nv < 1 || nv > SRV_MAX_BIND) {
      snprintf(err, cap, "'bind' takes 1 to %d addresses", SRV_MAX_BIND);
      return -1;
    }
    for (int i = 0; i < c->nbind; i++) free(c->bind[i]);
    c->nbind = 0;
    for (int i = 0; i < nv; i++) {
      if (!(c->bind[i] = strdup(argv[1 + i]))) return -1;
      c->nbind++;
    }
  } else if (!strcmp(name, "unixsocket") || !strcmp(name, "unix")) {
    NEED(1);
    if (strlen(v) >= 108) { /* sizeof sun_path */
      snprintf(err, cap, "unixsocket path too long (at most 107 bytes)");
      return -1;
    }
    if (set_str(&c->unixsocket, v)) return -1;
  } else if (!strcmp(name, "unixsocketperm")) {
    NEED(1);
    char *end;
    unsigned long p = strtoul(v, &end, 8);
    if (*end || p > 0777) BAD();
    c->unixperm = (unsigned)p;
  } else if (!strcmp(name, "threads") || !strcmp(name, "io-threads")) {
    NEED(1);
    if (parse_uint(v, 128, &u) || u == 0) BAD();
    c->threads = (int)u;
  } else if (!strcmp(name, "requirepass")) {
    NEED(1);
    if (*v == 0) {
      free(c->requirepass);
      c->requirepass = NULL;
    } else if (set_str(&c->requirepass, v)) {
      return -1;
    }
  } else if (!strcmp(name, "namespace")) {
    NEED(2);
    const char *pw = argv[2];
    if (!*v || strlen(v) > CASCADE_MAX_NS || !strcmp(v, "default")) {
      snprintf(err, cap,
               "bad namespace name '%s' (1 to %d bytes; the default "
               "namespace's password is requirepass)",
               v, CASCADE_MAX_NS);
      return -1;
    }
    if (!*pw) {
      snprintf(err, cap, "namespace '%s' needs a password", v);
      return -1;
    }
    int i;
    for (i = 0; i < c->nns; i++)
      if (!strcmp(c->ns[i].name, v)) break;
    if (i == c->nns) {
      srv_ns *n = realloc(c->ns, (size_t)(c->nns + 1) * sizeof *n);
      if (!n) return -1;
      c->ns = n;
      memset(&c->ns[i], 0, sizeof c->ns[i]);
      snprintf(c->ns[i].name, sizeof c->ns[i].name, "%s", v);
      c->nns++;
    }
    if (set_str(&c->ns[i].pass, pw)) return -1;
  } else if (!strcmp(name, "daemonize")) {
    if (nv == 0) {
      c->daemonize = 1;
      return 0;
    }
    NEED(1);
    int b = parse_bool(v);
    if (b < 0) BAD();
    c->daemonize = b;
  } else if (!strcmp(name, "pidfile")) {
    NEED(1);
    if (set_str(&c->pidfile, v)) return -1;
  } else if (!strcmp(name, "logfile")) {
    NEED(1);
    if (set_str(&c->logfile, v)) return -1;
  } else if (!strcmp(name, "loglevel")) {
    NEED(1);
    static const char *const lv[] = {"debug", "verbose", "notice", "warning"};
    int i;
    for (i = 0; i < 4; i++)
      if (!strcasecmp(v, lv[i])) break;
    if (i == 4) BAD();
    c->loglevel = i;
  } else if (!strcmp(name, "maxclients")) {
    NEED(1);
    if (parse_uint(v, 1000000, &u) || u == 0) BAD();
    c->maxclients = (uint32_t)u;
  } else if (!strcmp(name, "proto-max-bulk-len")) {
    NEED(1);
    if (parse_size(v, &u) || u < 1024 || u > (UINT64_C(1) << 40)) BAD();
    c->max_bulk = u;
  } else if (!strcmp(name, "client-output-buffer-limit")) {
    NEED(1);
    if (parse_size(v, &u)) BAD();
    c->obuf_limit = u;
  } else if (!strcmp(name, "timeout")) {
    NEED(1);
    if (parse_uint(v, 100000000, &u)) BAD();
    c->timeout_s = (uint32_t)u;
  } else if (!strcmp(name, "metrics-port")) {
    NEED(1);
    if (parse_uint(v, 65535, &u)) BAD();
    c->metrics_port = (int)u;
  } else if (!strcmp(name, "metrics-bind")) {
    NEED(1);
    if (set_str(&c->metrics_bind, v)) return -1;
  } else {
    snprintf(err, cap, "unknown setting '%s' (cascaded --help lists them)",
             name);
    return -1;
  }
  return 0;
#undef NEED
#undef BAD
}

/* Split a configuration line into words, with "double" and 'single'
 * quotes; modifies line.  Returns the number of words, -1 on unbalanced
 * quotes. */
static int split_line(char *line, char **w, int max) {
  int n = 0;
  char *p = line;
  for (;;) {
    while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') p++;
    if (!*p || *p == '#') return n;
    if (n == max) return -1;
    char q = (*p == '"' || *p == '\'') ? *p++ : 0;
    w[n++] = p;
    char *o = p;
    while (*p && (q ? *p != q : !(*p == ' ' || *p == '\t' || *p == '\r' ||
                                  *p == '\n'))) {
      if (q == '"' && *p == '\\' && p[1]) p++;
      *o++ = *p++;
    }
    if (q && *p != q) return -1;
    if (*p) p++;
    *o = 0;
  }
}

int conf_load(srv_conf *c, const char *path, char *err, size_t cap) {
  FILE *f = fopen(path, "r");
  if (!f) {
    snprintf(err, cap, "cannot open configuration file %s: %s", path,
             strerror(errno));
    return -1;
  }
  char *line = NULL;
  size_t lcap = 0;
  int lineno = 0, rc = 0;
  while (getline(&line, &lcap, f) > 0) {
    lineno++;
    char *w[SRV_MAX_BIND + 2];
    int n = split_line(line, w, SRV_MAX_BIND + 2);
    if (n == 0) continue;
    char msg[512];
    if (n < 0) {
      snprintf(err, cap, "%s:%d: unbalanced quotes or too many values", path,
               lineno);
      rc = -1;
      break;
    }
    if (conf_apply(c, n, w, msg, sizeof msg) != 0) {
      snprintf(err, cap, "%s:%d: %s", path, lineno, msg);
      rc = -1;
      break;
    }
  }
  free(line);
  fclose(f);
  return rc;
}

static void usage(FILE *out) {
  fprintf(
      out,
      "Usage: cascaded [/path/to/cascade.conf] [--name value...]...\n"
      "\n"
      "The Cascade node daemon: the Redis protocol (RESP2) over TCP and a "
      "Unix socket,\n"
      "namespaces with passwords, INFO and Prometheus metrics, over an "
      "embedded store\n"
      "(DRAM, optionally a disk tier).  Settings come from the file "
      "(\"name value\" lines,\n"
      "# comments), then from flags, which override it.\n"
      "\n"
      "Daemon settings (default in brackets):\n"
      "  --port N                 TCP port; 0 = no TCP [6380]\n"
      "  --bind ADDR...           addresses to listen on [127.0.0.1]; a "
      "non-loopback\n"
      "                           address needs a password (requirepass or "
      "namespace)\n"
      "  --unixsocket PATH        also listen on a Unix socket [none]\n"
      "  --unix PATH              the same\n"
      "  --unixsocketperm OCTAL   its permissions [700]\n"
      "  --threads N              I/O threads, 1..128 [2]\n"
      "  --requirepass PW         password of the default namespace: AUTH PW "
      "[none]\n"
      "  --namespace NAME PW      a namespace of its own: AUTH NAME PW "
      "(repeatable);\n"
      "                           a client sees only its namespace's keys\n"
      "  --daemonize [yes|no]     run in the background [no]\n"
      "  --pidfile PATH           write the pid there [none]\n"
      "  --logfile PATH           log there (SIGHUP reopens it) [stderr]\n"
      "  --loglevel LEVEL         debug, verbose, notice, warning [notice]\n"
      "  --maxclients N           connections at once [10000]\n"
      "  --proto-max-bulk-len SIZE   longest value a client may send [512m]\n"
      "  --client-output-buffer-limit SIZE   reply bytes queued for one "
      "client\n"
      "                           before it is disconnected; 0 = no limit "
      "[1g]\n"
      "  --timeout SECONDS        close idle clients; 0 = never [0]\n"
      "  --metrics-port N         serve Prometheus text at "
      "http://ADDR:N/metrics [off]\n"
      "  --metrics-bind ADDR      address of the metrics endpoint "
      "[127.0.0.1]\n"
      "\n"
      "Engine settings (see README, \"Configuration\"):\n"
      "  --dram SIZE              = dram.capacity [1g]\n"
      "  --disk-dir DIR           = disk.dir: enables the disk tier [none]\n"
      "  --disk SIZE              = disk.capacity [0: the file system's]\n"
      "  --policy NAME            = policy: lru, arc, s3fifo, lfu, semantic "
      "[semantic]\n"
      "  --NAME VALUE             any engine setting by its name:\n");
  int col = 0;
  for (const char *const *n = cascade_config_names(); *n; n++) {
    if (col == 0) fprintf(out, "                          ");
    fprintf(out, " %s", *n);
    if (++col == 4) {
      fputc('\n', out);
      col = 0;
    }
  }
  if (col) fputc('\n', out);
  fprintf(out,
          "\n"
          "  --help, --version\n"
          "\n"
          "Signals: SIGTERM/SIGINT stop (clients finish, the disk tier is "
          "flushed, exit 0);\n"
          "SIGHUP reopens the log file.\n");
}

int conf_from_args(srv_conf *c, int argc, char **argv) {
  char err[1024];
  int i = 1;
  for (int k = 1; k < argc; k++) {
    if (!strcmp(argv[k], "--help") || !strcmp(argv[k], "-h")) {
      usage(stdout);
      return 1;
    }
    if (!strcmp(argv[k], "--version") || !strcmp(argv[k], "-v")) {
      printf("cascaded %s\n", cascade_version());
      return 1;
    }
  }
  if (!c->engine && cascade_config_new(&c->engine) != 0) return -1;
  if (i < argc && strncmp(argv[i], "--", 2) != 0) {
    if (set_str(&c->file, argv[i])) return -1;
    if (conf_load(c, argv[i], err, sizeof err) != 0) {
      fprintf(stderr, "cascaded: %s\n", err);
      return -1;
    }
    i++;
  }
  while (i < argc) {
    if (strncmp(argv[i], "--", 2) != 0 || !argv[i][2]) {
      fprintf(stderr, "cascaded: unexpected argument '%s' (try --help)\n",
              argv[i]);
      return -1;
    }
    int j = i + 1;
    while (j < argc && strncmp(argv[j], "--", 2) != 0) j++;
    char *w[SRV_MAX_BIND + 2];
    int n = j - i;
    if (n > SRV_MAX_BIND + 1) {
      fprintf(stderr, "cascaded: too many values for %s\n", argv[i]);
      return -1;
    }
    w[0] = argv[i] + 2;
    for (int k = 1; k < n; k++) w[k] = argv[i + k];
    if (conf_apply(c, n, w, err, sizeof err) != 0) {
      fprintf(stderr, "cascaded: --%s: %s\n", w[0], err);
      return -1;
    }
    i = j;
  }
  if (c->nbind == 0 && !(c->bind[c->nbind++] = strdup("127.0.0.1"))) return -1;
  return 0;
}

int conf_auth_required(const srv_conf *c) {
  return c->requirepass != NULL || c->nns > 0;
}

int conf_is_loopback(const char *addr) {
  struct in_addr a4;
  struct in6_addr a6;
  if (!strcmp(addr, "localhost")) return 1;
  if (inet_pton(AF_INET, addr, &a4) == 1)
    return (ntohl(a4.s_addr) >> 24) == 127;
  if (inet_pton(AF_INET6, addr, &a6) == 1)
    return IN6_IS_ADDR_LOOPBACK(&a6);
  return 0;
}

int conf_get(const srv_conf *c, const char *name, char *buf, size_t cap) {
  if (!strcmp(name, "port")) {
    snprintf(buf, cap, "%d", c->port);
  } else if (!strcmp(name, "bind")) {
    size_t o = 0;
    buf[0] = 0;
    for (int i = 0; i < c->nbind && o < cap; i++)
      o += (size_t)snprintf(buf + o, cap - o, "%s%s", i ? " " : "",
                            c->bind[i]);
  } else if (!strcmp(name, "unixsocket")) {
    snprintf(buf, cap, "%s", c->unixsocket ? c->unixsocket : "");
  } else if (!strcmp(name, "unixsocketperm")) {
    snprintf(buf, cap, "%o", c->unixperm);
  } else if (!strcmp(name, "threads") || !strcmp(name, "io-threads")) {
    snprintf(buf, cap, "%d", c->threads);
  } else if (!strcmp(name, "requirepass") || !strcmp(name, "namespace")) {
    snprintf(buf, cap, "%s", ""); /* never shown */
  } else if (!strcmp(name, "daemonize")) {
    snprintf(buf, cap, "%s", c->daemonize ? "yes" : "no");
  } else if (!strcmp(name, "pidfile")) {
    snprintf(buf, cap, "%s", c->pidfile ? c->pidfile : "");
  } else if (!strcmp(name, "logfile")) {
    snprintf(buf, cap, "%s", c->logfile ? c->logfile : "");
  } else if (!strcmp(name, "loglevel")) {
    static const char *const lv[] = {"debug", "verbose", "notice", "warning"};
    snprintf(buf, cap, "%s", lv[c->loglevel]);
  } else if (!strcmp(name, "maxclients")) {
    snprintf(buf, cap, "%u", c->maxclients);
  } else if (!strcmp(name, "proto-max-bulk-len")) {
    snprintf(buf, cap, "%llu", (unsigned long long)c->max_bulk);
  } else if (!strcmp(name, "client-output-buffer-limit")) {
    snprintf(buf, cap, "%llu", (unsigned long long)c->obuf_limit);
  } else if (!strcmp(name, "timeout")) {
    snprintf(buf, cap, "%u", c->timeout_s);
  } else if (!strcmp(name, "metrics-port")) {
    snprintf(buf, cap, "%d", c->metrics_port);
  } else if (!strcmp(name, "metrics-bind")) {
    snprintf(buf, cap, "%s", c->metrics_bind ? c->metrics_bind : "");
  } else {
    return -1;
  }
  return 0;
}
