/*
 * client.c - the client commands of `cascade`: put, get, del, exists, stat
 * and ping against a running cascaded, over RESP2 with hiredis.
 *
 *   cascade [--host H] [--port P] [--unix PATH] [--user NS] [--password PW]
 *           COMMAND [ARGS...]
 *
 * Where: --unix wins over --host/--port; without any of the three,
 * CASCADE_UNIX, then CASCADE_HOST/CASCADE_PORT, then 127.0.0.1:6380.
 * --user/--password (or CASCADE_USER/CASCADE_PASSWORD) send AUTH [NS] PW
 * right after connecting.  The connection options may come before or after
 * COMMAND; the engine settings (--set, --dram, --policy) are refused: they
 * configure an embedded store, and these commands use the daemon's.
 *
 * Values are binary-safe both ways (CASCADE.PUT and GET with lengths).
 * Error replies of the daemon are printed as they came, after
 * "cascade: COMMAND: ".  Exit status: 0 success, 1 failure (no connection,
 * an error reply, a missing key), 2 usage error.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <hiredis.h>

#include "cli.h"

#define DEFAULT_HOST "127.0.0.1"
#define DEFAULT_PORT 6380
#define CONNECT_TIMEOUT_S 5

/* ---- Options ------------------------------------------------------------- */

/* A TCP port: 1..65535, decimal digits only.  Returns it, or -1. */
static int parse_port(const char *s) {
  long v = 0;

  if (s == NULL || *s == '\0' || strlen(s) > 5) return -1;
  for (const char *p = s; *p; p++) {
    if (*p < '0' || *p > '9') return -1;
    v = v * 10 + (*p - '0');
  }
  return v >= 1 && v <= 65535 ? (int)v : -1;
}

int cli_conn_option(cli_common *co, int argc, char **argv, int *i) {
  static const char *const names[] = {"--host", "--port", "--unix", "--user",
                                      "--password"};
  const char **slot[] = {&co->conn.host, &co->conn.port, &co->conn.unix_path,
                         &co->conn.user, &co->conn.password};

  for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
    const char *v;
    int r = cli_opt_value(argc, argv, i, names[k], &v);

    if (r == 0) continue;
    if (r < 0) return -1;
    if (k == 1 && parse_port(v) < 0) {
      cli_err("--port %s: expected a TCP port, 1 to 65535", v);
      return -1;
    }
    if (*v == '\0' && k != 4) {
      cli_err("%s: empty value", names[k]);
      return -1;
    }
    *slot[k] = v;
    return 1;
  }
  return 0;
}

void cli_conn_usage(FILE *f) {
  fprintf(f,
          "Connection (before or after COMMAND):\n"
          "  --host HOST     cascaded's address [$CASCADE_HOST, else "
          "127.0.0.1]\n"
          "  --port PORT     its TCP port [$CASCADE_PORT, else 6380]\n"
          "  --unix PATH     its Unix socket instead [$CASCADE_UNIX]; wins "
          "over host/port\n"
          "  --user NS       the namespace to AUTH as [$CASCADE_USER; else "
          "the default]\n"
          "  --password PW   AUTH [NS] PW on connecting [$CASCADE_PASSWORD, "
          "hidden from ps]\n"
          "  $CASCADE_UNIX applies only when none of --unix, --host, --port "
          "is given.\n");
}

/*
 * The arguments of a client command: its own options are matched by the
 * command (own() returns 1 consumed, 0 not its option, -1 error); the
 * connection options are recorded in co; everything else not starting with
 * '-' (or "-" itself, or anything after "--") is positional, collected in
 * pos[] (at most maxpos, or a usage error).  Returns -1 to go on, or the
 * exit code to return now.
 */
typedef int (*own_opt_fn)(void *ctx, int argc, char **argv, int *i);

static int parse_client_args(cli_common *co, int argc, char **argv,
                             const char *cmd, void (*usage)(FILE *),
                             own_opt_fn own, void *ctx, char **pos,
                             int maxpos, int *npos) {
  int dashdash = 0;

  *npos = 0;
  if (co->nset > 0) {
    cli_err("%s: --set, --dram and --policy configure an embedded store; "
            "%s talks to cascaded (configure the daemon instead)",
            cmd, cmd);
    return CLI_USAGE;
  }
  for (int i = 1; i < argc;) {
    const char *a = argv[i];
    int r;

    if (!dashdash && a[0] == '-' && a[1] != '\0') {
      if (strcmp(a, "--") == 0) {
        dashdash = 1;
        i++;
        continue;
      }
      if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
        usage(stdout);
        return CLI_OK;
      }
      r = own != NULL ? own(ctx, argc, argv, &i) : 0;
      if (r < 0) return CLI_USAGE;
      if (r > 0) continue;
      r = cli_conn_option(co, argc, argv, &i);
      if (r < 0) return CLI_USAGE;
      if (r > 0) continue;
      r = cli_common_option(co, argc, argv, &i);
      if (r < 0) return CLI_USAGE;
      if (r > 0) {
        cli_err("%s: --set, --dram and --policy configure an embedded store; "
                "%s talks to cascaded (configure the daemon instead)",
                cmd, cmd);
        return CLI_USAGE;
      }
      cli_err("%s: unknown option '%s' (see cascade %s --help; "
              "-- ends the options)",
              cmd, a, cmd);
      return CLI_USAGE;
    }
    if (*npos >= maxpos) {
      cli_err("%s: unexpected argument '%s' (see cascade %s --help)", cmd, a,
              cmd);
      return CLI_USAGE;
    }
    pos[(*npos)++] = argv[i++];
  }
  return -1;
}

/* ---- Connection ---------------------------------------------------------- */

typedef struct client {
  redisContext *rc;
  const char *cmd;  /* for messages: "put", "get", ... */
  char where[300];  /* "127.0.0.1:6380" or the socket's path */
} client;

/* Connect as co->conn, the environment and the defaults say, and AUTH if a
 * password was given.  Returns CLI_OK, or the exit code after a message. */
static int client_open(client *cl, const cli_common *co, const char *cmd) {
  const cli_conn *o = &co->conn;
  const char *unix_path = o->unix_path, *host = o->host, *port_s = o->port;
  const char *user = o->user, *pass = o->password;
  struct timeval tv = {CONNECT_TIMEOUT_S, 0};
  struct timeval none = {0, 0};
  int port = DEFAULT_PORT;

  memset(cl, 0, sizeof *cl);
  cl->cmd = cmd;
  /* A write to a daemon that closed the connection must be an error
   * message, not a silent death. */
  signal(SIGPIPE, SIG_IGN);

  if (unix_path == NULL && host == NULL && port_s == NULL) {
    const char *e = getenv("CASCADE_UNIX");

    if (e != NULL && *e != '\0') unix_path = e;
  }
  if (host == NULL) host = getenv("CASCADE_HOST");
  if (host == NULL || *host == '\0') host = DEFAULT_HOST;
  if (port_s == NULL) {
    port_s = getenv("CASCADE_PORT");
    if (port_s != NULL && *port_s == '\0') port_s = NULL;
    if (port_s != NULL && unix_path == NULL && parse_port(port_s) < 0) {
      cli_err("CASCADE_PORT=%s: expected a TCP port, 1 to 65535", port_s);
      return CLI_USAGE;
    }
  }
  if (port_s != NULL) port = parse_port(port_s);
  if (user == NULL) {
    user = getenv("CASCADE_USER");
    if (user != NULL && *user == '\0') user = NULL;
  }
  if (pass == NULL) {
    pass = getenv("CASCADE_PASSWORD");
    if (pass != NULL && *pass == '\0') pass = NULL;
  }
  if (user != NULL && pass == NULL) {
    cli_err("%s: --user %s needs --password (or CASCADE_PASSWORD)", cmd,
            user);
    return CLI_USAGE;
  }

  if (unix_path != NULL) {
    snprintf(cl->where, sizeof cl->where, "%s", unix_path);
    cl->rc = redisConnectUnixWithTimeout(unix_path, tv);
  } else {
    snprintf(cl->where, sizeof cl->where,
             strchr(host, ':') != NULL ? "[%s]:%d" : "%s:%d", host, port);
    cl->rc = redisConnectWithTimeout(host, port, tv);
  }
  if (cl->rc == NULL) {
    cli_err("cannot connect to %s: out of memory", cl->where);
    return CLI_FAIL;
  }
  if (cl->rc->err) {
    const char *e = cl->rc->errstr;
    int down = strstr(e, "refused") != NULL ||
               strstr(e, "No such file") != NULL;

    cli_err("cannot connect to %s: %s%s", cl->where, e,
            down ? " (is cascaded running?)" : "");
    redisFree(cl->rc);
    cl->rc = NULL;
    return CLI_FAIL;
  }
  /* The timeout was for connecting only: a large value may take longer. */
  redisSetTimeout(cl->rc, none);

  if (pass != NULL) {
    const char *av[3];
    size_t al[3];
    int n = 0;
    redisReply *r;

    av[n++] = "AUTH";
    if (user != NULL) av[n++] = user;
    av[n++] = pass;
    for (int k = 0; k < n; k++) al[k] = strlen(av[k]);
    r = redisCommandArgv(cl->rc, n, av, al);
    if (r == NULL) {
      cli_err("%s: AUTH: connection to %s lost: %s", cmd, cl->where,
              cl->rc->errstr[0] ? cl->rc->errstr : "closed");
      redisFree(cl->rc);
      cl->rc = NULL;
      return CLI_FAIL;
    }
    if (r->type == REDIS_REPLY_ERROR) {
      cli_err("%s: AUTH: %.*s", cmd, (int)r->len, r->str);
      freeReplyObject(r);
      redisFree(cl->rc);
      cl->rc = NULL;
      return CLI_FAIL;
    }
    freeReplyObject(r);
  }
  return CLI_OK;
}

static void client_close(client *cl) {
  if (cl->rc != NULL) redisFree(cl->rc);
  cl->rc = NULL;
}

/*
 * Send one command (binary-safe) and return its reply, or NULL after a
 * message.  An error reply is printed ("cascade: CMD: <reply>") and freed:
 * NULL too.  *failed is set to the exit code for a NULL.
 */
static redisReply *client_call(client *cl, int n, const char **av,
                               const size_t *al) {
  redisReply *r = redisCommandArgv(cl->rc, n, av, al);

  if (r == NULL) {
    cli_err("%s: connection to %s lost: %s", cl->cmd, cl->where,
            cl->rc->errstr[0] ? cl->rc->errstr : "closed by cascaded");
    return NULL;
  }
  if (r->type == REDIS_REPLY_ERROR) {
    cli_err("%s: %.*s", cl->cmd, (int)r->len, r->str);
    if (strncmp(r->str, "NOAUTH", 6) == 0)
      cli_err("%s: cascaded wants a password: --password PW (or "
              "CASCADE_PASSWORD)",
              cl->cmd);
    freeReplyObject(r);
    return NULL;
  }
  return r;
}

/* Say that the reply was of an unexpected type; frees it. */
static int bad_reply(client *cl, redisReply *r) {
  cli_err("%s: unexpected reply from %s (type %d)", cl->cmd, cl->where,
          r->type);
  freeReplyObject(r);
  return CLI_FAIL;
}

/* A key for messages: printable bytes as they are, others as \xNN; at most
 * about 80 bytes shown. */
static const char *show_key(const char *k, char *buf, size_t cap) {
  size_t o = 0;

  for (const unsigned char *p = (const unsigned char *)k; *p && o + 8 < cap;
       p++) {
    if (o >= 80) {
      memcpy(buf + o, "...", 3);
      o += 3;
      break;
    }
    if (*p >= 0x20 && *p < 0x7f)
      buf[o++] = (char)*p;
    else
      o += (size_t)snprintf(buf + o, cap - o, "\\x%02x", *p);
  }
  buf[o] = '\0';
  return buf;
}

/* ---- put ----------------------------------------------------------------- */

void cli_put_usage(FILE *f) {
  fprintf(f,
          "Usage: cascade put [OPTIONS] KEY [FILE|-]\n"
          "\n"
          "Store the bytes of FILE (or of stdin: FILE omitted or -) as the "
          "value of KEY\n"
          "in a running cascaded (CASCADE.PUT).  Nothing is printed on "
          "success.\n"
          "\n"
          "Options:\n"
          "  --prefix              KEY is a block of a prefix chain "
          "(PREFIX)\n"
          "  --parent KEY          the block before it in its chain "
          "(PARENT)\n"
          "  --priority PRIO       low, normal or high: eviction priority "
          "[normal]\n"
          "  --ttl MS              expire after MS milliseconds [never]\n"
          "  --nx                  only if KEY does not exist (exit 1 if it "
          "does)\n"
          "  --xx                  only if KEY exists (exit 1 if not)\n"
          "\n");
  cli_conn_usage(f);
}

struct put_opts {
  int prefix, nx, xx;
  const char *parent, *priority, *ttl;
};

static int put_opt(void *ctx, int argc, char **argv, int *i) {
  struct put_opts *o = ctx;
  const char *a = argv[*i];
  int r;

  if (strcmp(a, "--prefix") == 0) {
    o->prefix = 1;
  } else if (strcmp(a, "--nx") == 0) {
    o->nx = 1;
  } else if (strcmp(a, "--xx") == 0) {
    o->xx = 1;
  } else if ((r = cli_opt_value(argc, argv, i, "--parent", &o->parent)) != 0) {
    return r;
  } else if ((r = cli_opt_value(argc, argv, i, "--priority", &o->priority)) !=
             0) {
    if (r < 0) return r;
    if (strcmp(o->priority, "low") != 0 &&
        strcmp(o->priority, "normal") != 0 &&
        strcmp(o->priority, "high") != 0) {
      cli_err("put: --priority %s: expected low, normal or high",
              o->priority);
      return -1;
    }
    return 1;
  } else if ((r = cli_opt_value(argc, argv, i, "--ttl", &o->ttl)) != 0) {
    if (r < 0) return r;
    if (o->ttl[0] < '1' || o->ttl[0] > '9' ||
        strspn(o->ttl, "0123456789") != strlen(o->ttl) ||
        strlen(o->ttl) > 18) {
      cli_err("put: --ttl %s: expected milliseconds, a positive integer",
              o->ttl);
      return -1;
    }
    return 1;
  } else {
    return 0;
  }
  *i += 1;
  return 1;
}

/* Read all of f into a malloc'ed buffer.  Returns 0, or an errno value. */
static int slurp(FILE *f, char **out, size_t *len) {
  struct stat sb;
  size_t cap = 1 << 16, n = 0;
  char *buf;

  if (fstat(fileno(f), &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_size > 0)
    cap = (size_t)sb.st_size + 1; /* +1: the read that sees EOF */
  buf = malloc(cap);
  if (buf == NULL) return ENOMEM;
  for (;;) {
    size_t got;

    if (n == cap) {
      size_t ncap = cap * 2;
      char *nb = ncap > cap ? realloc(buf, ncap) : NULL;

      if (nb == NULL) {
        free(buf);
        return ENOMEM;
      }
      buf = nb;
      cap = ncap;
    }
    got = fread(buf + n, 1, cap - n, f);
    n += got;
    if (got == 0) {
      if (ferror(f)) {
        int e = errno ? errno : EIO;

        free(buf);
        return e;
      }
      break;
    }
  }
  *out = buf;
  *len = n;
  return 0;
}

int cli_cmd_put(int argc, char **argv, const cli_common *co0) {
  cli_common co = *co0;
  struct put_opts o = {0};
  char *pos[2], *val = NULL;
  const char *av[12];
  size_t al[12], vlen = 0;
  char kb[128];
  client cl;
  redisReply *r;
  int npos, n = 0, rc, e;

  rc = parse_client_args(&co, argc, argv, "put", cli_put_usage, put_opt, &o,
                         pos, 2, &npos);
  if (rc >= 0) return rc;
  if (npos < 1) {
    cli_err("put: which KEY? (see cascade put --help)");
    return CLI_USAGE;
  }
  if (o.nx && o.xx) {
    cli_err("put: --nx and --xx exclude each other");
    return CLI_USAGE;
  }
  if (npos < 2 && isatty(STDIN_FILENO)) {
    cli_err("put: no FILE given and stdin is a terminal (give FILE, pipe the "
            "value in, or - to type it)");
    return CLI_USAGE;
  }

  if (npos < 2 || strcmp(pos[1], "-") == 0) {
    e = slurp(stdin, &val, &vlen);
    if (e != 0) {
      cli_err("put: reading stdin: %s", strerror(e));
      return CLI_FAIL;
    }
  } else {
    FILE *f = fopen(pos[1], "rb");

    if (f == NULL) {
      cli_err("put: %s: %s", pos[1], strerror(errno));
      return CLI_FAIL;
    }
    e = slurp(f, &val, &vlen);
    fclose(f);
    if (e != 0) {
      cli_err("put: reading %s: %s", pos[1], strerror(e));
      return CLI_FAIL;
    }
  }

  rc = client_open(&cl, &co, "put");
  if (rc != CLI_OK) {
    free(val);
    return rc;
  }
  av[n] = "CASCADE.PUT";
  al[n++] = 11;
  av[n] = pos[0];
  al[n++] = strlen(pos[0]);
  av[n] = val;
  al[n++] = vlen;
  if (o.prefix) {
    av[n] = "PREFIX";
    al[n++] = 6;
  }
  if (o.parent != NULL) {
    av[n] = "PARENT";
    al[n++] = 6;
    av[n] = o.parent;
    al[n++] = strlen(o.parent);
  }
  if (o.priority != NULL) {
    av[n] = "PRIORITY";
    al[n++] = 8;
    av[n] = o.priority;
    al[n++] = strlen(o.priority);
  }
  if (o.ttl != NULL) {
    av[n] = "TTL";
    al[n++] = 3;
    av[n] = o.ttl;
    al[n++] = strlen(o.ttl);
  }
  if (o.nx || o.xx) {
    av[n] = o.nx ? "NX" : "XX";
    al[n++] = 2;
  }
  r = client_call(&cl, n, av, al);
  free(val);
  if (r == NULL) {
    client_close(&cl);
    return CLI_FAIL;
  }
  rc = CLI_OK;
  if (r->type == REDIS_REPLY_NIL) {
    cli_err("put: %s not stored: %s", show_key(pos[0], kb, sizeof kb),
            o.nx ? "it exists (--nx)" : "no such key (--xx)");
    rc = CLI_FAIL;
  } else if (r->type != REDIS_REPLY_STATUS) {
    client_close(&cl);
    return bad_reply(&cl, r);
  }
  freeReplyObject(r);
  client_close(&cl);
  return rc;
}

/* ---- get ----------------------------------------------------------------- */

void cli_get_usage(FILE *f) {
  fprintf(f,
          "Usage: cascade get [-o FILE] KEY\n"
          "\n"
          "Write the value of KEY, byte for byte, to stdout or to FILE (GET).  "
          "A missing\n"
          "key is reported on stderr, with exit status 1 (FILE is then not "
          "created).\n"
          "\n"
          "Options:\n"
          "  -o, --output FILE     write the value to FILE instead of "
          "stdout\n"
          "\n");
  cli_conn_usage(f);
}

static int get_opt(void *ctx, int argc, char **argv, int *i) {
  const char **out = ctx;
  int r = cli_opt_value(argc, argv, i, "--output", out);

  return r != 0 ? r : cli_opt_value(argc, argv, i, "-o", out);
}

int cli_cmd_get(int argc, char **argv, const cli_common *co0) {
  cli_common co = *co0;
  const char *out = NULL;
  char *pos[1];
  const char *av[2];
  size_t al[2];
  char kb[128];
  client cl;
  redisReply *r;
  int npos, rc;

  rc = parse_client_args(&co, argc, argv, "get", cli_get_usage, get_opt,
                         (void *)&out, pos, 1, &npos);
  if (rc >= 0) return rc;
  if (npos < 1) {
    cli_err("get: which KEY? (see cascade get --help)");
    return CLI_USAGE;
  }
  rc = client_open(&cl, &co, "get");
  if (rc != CLI_OK) return rc;
  av[0] = "GET";
  al[0] = 3;
  av[1] = pos[0];
  al[1] = strlen(pos[0]);
  r = client_call(&cl, 2, av, al);
  client_close(&cl);
  if (r == NULL) return CLI_FAIL;
  if (r->type == REDIS_REPLY_NIL) {
    cli_err("get: %s: no such key", show_key(pos[0], kb, sizeof kb));
    freeReplyObject(r);
    return CLI_FAIL;
  }
  if (r->type != REDIS_REPLY_STRING) return bad_reply(&cl, r);

  rc = CLI_OK;
  if (out != NULL && strcmp(out, "-") != 0) {
    FILE *f = fopen(out, "wb");

    if (f == NULL) {
      cli_err("get: %s: %s", out, strerror(errno));
      rc = CLI_FAIL;
    } else {
      int bad = fwrite(r->str, 1, r->len, f) != r->len;
      int e = errno;

      if (fclose(f) != 0 && !bad) {
        bad = 1;
        e = errno;
      }
      if (bad) {
        cli_err("get: writing %s: %s", out, strerror(e));
        rc = CLI_FAIL;
      }
    }
  } else if (fwrite(r->str, 1, r->len, stdout) != r->len ||
             fflush(stdout) != 0) {
    /* a reader that went away (| head) is not worth a message */
    if (errno != EPIPE) cli_err("get: writing stdout: %s", strerror(errno));
    rc = CLI_FAIL;
  }
  freeReplyObject(r);
  return rc;
}

/* ---- del, exists ----------------------------------------------------------- */

void cli_del_usage(FILE *f) {
  fprintf(f,
          "Usage: cascade del KEY...\n"
          "\n"
          "Delete the KEYs (DEL) and print how many existed.  A key that "
          "does not exist\n"
          "is not an error.\n"
          "\n");
  cli_conn_usage(f);
}

void cli_exists_usage(FILE *f) {
  fprintf(f,
          "Usage: cascade exists KEY...\n"
          "\n"
          "Print how many of the KEYs exist (EXISTS; a key named twice "
          "counts twice).\n"
          "Exit status 0 if every KEY exists, 1 if one does not (or on "
          "failure).\n"
          "\n");
  cli_conn_usage(f);
}

/* DEL or EXISTS over the keys in argv; prints the count. */
static int keys_command(int argc, char **argv, const cli_common *co0,
                        const char *cmd, const char *verb,
                        void (*usage)(FILE *), int all_or_fail) {
  cli_common co = *co0;
  char **pos;
  const char **av;
  size_t *al;
  client cl;
  redisReply *r;
  int npos, rc;

  pos = calloc((size_t)argc + 1, sizeof *pos);
  av = calloc((size_t)argc + 2, sizeof *av);
  al = calloc((size_t)argc + 2, sizeof *al);
  if (pos == NULL || av == NULL || al == NULL) {
    cli_err("%s: out of memory", cmd);
    rc = CLI_FAIL;
    goto out;
  }
  rc = parse_client_args(&co, argc, argv, cmd, usage, NULL, NULL, pos, argc,
                         &npos);
  if (rc >= 0) goto out;
  if (npos < 1) {
    cli_err("%s: which KEY? (see cascade %s --help)", cmd, cmd);
    rc = CLI_USAGE;
    goto out;
  }
  rc = client_open(&cl, &co, cmd);
  if (rc != CLI_OK) goto out;
  av[0] = verb;
  al[0] = strlen(verb);
  for (int k = 0; k < npos; k++) {
    av[k + 1] = pos[k];
    al[k + 1] = strlen(pos[k]);
  }
  r = client_call(&cl, npos + 1, av, al);
  if (r == NULL) {
    rc = CLI_FAIL;
  } else if (r->type != REDIS_REPLY_INTEGER) {
    rc = bad_reply(&cl, r);
  } else {
    printf("%lld\n", r->integer);
    rc = all_or_fail && r->integer < npos ? CLI_FAIL : CLI_OK;
    freeReplyObject(r);
  }
  client_close(&cl);
out:
  free(pos);
  free(av);
  free(al);
  return rc;
}

int cli_cmd_del(int argc, char **argv, const cli_common *co) {
  return keys_command(argc, argv, co, "del", "DEL", cli_del_usage, 0);
}

int cli_cmd_exists(int argc, char **argv, const cli_common *co) {
  return keys_command(argc, argv, co, "exists", "EXISTS", cli_exists_usage,
                      1);
}

/* ---- ping ------------------------------------------------------------------ */

void cli_ping_usage(FILE *f) {
  fprintf(f,
          "Usage: cascade ping\n"
          "\n"
          "Check that cascaded answers (PING, after AUTH when a password is "
          "given):\n"
          "prints PONG and the round trip on success.\n"
          "\n");
  cli_conn_usage(f);
}

int cli_cmd_ping(int argc, char **argv, const cli_common *co0) {
  cli_common co = *co0;
  const char *av[1] = {"PING"};
  size_t al[1] = {4};
  char tb[32];
  client cl;
  redisReply *r;
  double t0;
  int npos, rc;

  rc = parse_client_args(&co, argc, argv, "ping", cli_ping_usage, NULL, NULL,
                         NULL, 0, &npos);
  if (rc >= 0) return rc;
  rc = client_open(&cl, &co, "ping");
  if (rc != CLI_OK) return rc;
  t0 = cli_now();
  r = client_call(&cl, 1, av, al);
  if (r == NULL) {
    client_close(&cl);
    return CLI_FAIL;
  }
  if (r->type != REDIS_REPLY_STATUS && r->type != REDIS_REPLY_STRING) {
    rc = bad_reply(&cl, r);
  } else {
    printf("%.*s (%s, %s)\n", (int)r->len, r->str, cl.where,
           cli_fmt_ns((uint64_t)((cli_now() - t0) * 1e9), tb, sizeof tb));
    freeReplyObject(r);
  }
  client_close(&cl);
  return rc;
}

/* ---- stat ------------------------------------------------------------------ */

void cli_stat_usage(FILE *f) {
  fprintf(f,
          "Usage: cascade stat [--raw]\n"
          "\n"
          "Show the state of cascaded (INFO all) as tables: server, clients, "
          "memory,\n"
          "operations, the tiers (blocks, bytes, hits, misses, evictions), "
          "latency and\n"
          "the keys of this connection's namespace.\n"
          "\n"
          "Options:\n"
          "  --raw                 print INFO's text as it came\n"
          "\n");
  cli_conn_usage(f);
}

#define INFO_MAX 512

/* INFO's "name:value" lines (the text is modified in place). */
struct info {
  const char *name[INFO_MAX], *value[INFO_MAX];
  int n;
};

static void info_parse(struct info *in, char *text) {
  char *save = NULL;

  in->n = 0;
  for (char *line = strtok_r(text, "\n", &save); line != NULL;
       line = strtok_r(NULL, "\n", &save)) {
    size_t len = strlen(line);
    char *colon;

    if (len > 0 && line[len - 1] == '\r') line[--len] = '\0';
    if (len == 0 || line[0] == '#') continue;
    colon = strchr(line, ':');
    if (colon == NULL || in->n >= INFO_MAX) continue;
    *colon = '\0';
    in->name[in->n] = line;
    in->value[in->n] = colon + 1;
    in->n++;
  }
}

static const char *info_get(const struct info *in, const char *name) {
  for (int k = 0; k < in->n; k++)
    if (strcmp(in->name[k], name) == 0) return in->value[k];
  return NULL;
}

enum vfmt { V_TEXT, V_COUNT, V_SIZE, V_NS, V_PCT, V_BOOL, V_SECS };

/* One INFO field, formatted into buf; NULL if INFO lacks it. */
static const char *info_fmt(const struct info *in, const char *name,
                            enum vfmt fmt, char *buf, size_t cap) {
  const char *v = info_get(in, name);
  char *end;
  unsigned long long u;
  double d;

  if (v == NULL) return NULL;
  switch (fmt) {
  case V_TEXT:
    snprintf(buf, cap, "%s", *v ? v : "-");
    return buf;
  case V_PCT:
    d = strtod(v, &end);
    if (end == v) break;
    snprintf(buf, cap, "%.1f%%", d * 100.0);
    return buf;
  default:
    errno = 0;
    u = strtoull(v, &end, 10);
    if (end == v || *end != '\0' || errno != 0) break;
    if (fmt == V_COUNT)
      cli_fmt_count(u, buf, cap);
    else if (fmt == V_SIZE)
      cli_fmt_size(u, buf, cap);
    else if (fmt == V_NS)
      cli_fmt_ns(u, buf, cap);
    else if (fmt == V_BOOL)
      snprintf(buf, cap, "%s", u ? "yes" : "no");
    else if (u >= 86400)
      snprintf(buf, cap, "%llud %lluh", u / 86400, u % 86400 / 3600);
    else if (u >= 3600)
      snprintf(buf, cap, "%lluh %llum", u / 3600, u % 3600 / 60);
    else if (u >= 60)
      snprintf(buf, cap, "%llum %llus", u / 60, u % 60);
    else
      snprintf(buf, cap, "%llus", u);
    return buf;
  }
  snprintf(buf, cap, "%s", v); /* not a number after all: as it came */
  return buf;
}

struct field {
  const char *label, *name;
  enum vfmt fmt;
};

/* A table of label/value pairs, two pairs a row, of the fields INFO has;
 * nothing when it has none.  *first: no blank line before the first. */
static void kv_table(FILE *f, const struct info *in, const char *title,
                     const struct field *fl, size_t n, int *first) {
  const char *hd[4] = {title, "", "", ""};
  const char *cells[4];
  char vb[2][256];
  cli_table *t = NULL;
  int col = 0;

  for (size_t k = 0; k < n; k++) {
    const char *v = info_fmt(in, fl[k].name, fl[k].fmt, vb[col], sizeof vb[0]);

    if (v == NULL) continue;
    if (t == NULL && (t = cli_table_new(4, hd, "lrlr")) == NULL) return;
    cells[2 * col] = fl[k].label;
    cells[2 * col + 1] = v;
    if (++col == 2) {
      cli_table_row(t, cells);
      col = 0;
    }
  }
  if (t == NULL) return;
  if (col == 1) {
    cells[2] = NULL;
    cells[3] = NULL;
    cli_table_row(t, cells);
  }
  if (!*first) fputc('\n', f);
  *first = 0;
  cli_table_print(t, f, "");
  cli_table_free(t);
}

static void print_info(FILE *f, const struct info *in) {
  static const struct field server[] = {
      {"version", "cascade_version", V_TEXT},
      {"process id", "process_id", V_TEXT},
      {"uptime", "uptime_in_seconds", V_SECS},
      {"tcp port", "tcp_port", V_TEXT},
      {"i/o threads", "io_threads_active", V_COUNT},
      {"config file", "config_file", V_TEXT},
      {"clients", "connected_clients", V_COUNT},
      {"max clients", "maxclients", V_COUNT},
      {"connections", "total_connections_received", V_COUNT},
      {"rejected", "rejected_connections", V_COUNT},
      {"commands", "total_commands_processed", V_COUNT},
      {"error replies", "total_error_replies", V_COUNT},
      {"net in", "total_net_input_bytes", V_SIZE},
      {"net out", "total_net_output_bytes", V_SIZE},
  };
  static const struct field memory[] = {
      {"dram used", "used_memory", V_SIZE},
      {"dram capacity", "maxmemory", V_SIZE},
      {"dram free", "dram_free_bytes", V_SIZE},
      {"largest free", "dram_largest_free", V_SIZE},
      {"fragmentation", "dram_fragmentation", V_PCT},
      {"huge pages", "dram_hugepages", V_BOOL},
      {"resident (rss)", "used_memory_rss", V_SIZE},
      {"policy", "maxmemory_policy", V_TEXT},
  };
  static const struct field ops[] = {
      {"keyspace hits", "keyspace_hits", V_COUNT},
      {"keyspace misses", "keyspace_misses", V_COUNT},
      {"puts", "store_puts", V_COUNT},
      {"gets", "store_gets", V_COUNT},
      {"deletes", "store_deletes", V_COUNT},
      {"expired", "expired_keys", V_COUNT},
      {"evicted", "evicted_keys", V_COUNT},
      {"views held", "views_held", V_COUNT},
      {"dedup hits", "dedup_hits", V_COUNT},
      {"dedup bytes saved", "dedup_bytes_saved", V_SIZE},
  };
  static const struct field disk[] = {
      {"i/o mode", "disk_mode", V_TEXT},
      {"keys recovered", "disk_recovered", V_COUNT},
      {"segment files", "disk_file_bytes", V_SIZE},
      {"live records", "disk_live_bytes", V_SIZE},
      {"compactions", "disk_compactions", V_COUNT},
      {"read errors", "disk_read_errors", V_COUNT},
      {"write errors", "disk_write_errors", V_COUNT},
  };
  static const char *const tiers[] = {"gpu", "dram", "remote", "disk"};
  static const char *const tcol[] = {"blocks", "bytes", "capacity",
                                     "hits", "misses", "evictions",
                                     "promotions", "demotions"};
  static const enum vfmt tfmt[] = {V_COUNT, V_SIZE,  V_SIZE,  V_COUNT,
                                   V_COUNT, V_COUNT, V_COUNT, V_COUNT};
  char b[9][64], name[64];
  int first = 1;
  cli_table *t;

  kv_table(f, in, "server", server, sizeof server / sizeof server[0], &first);
  kv_table(f, in, "memory", memory, sizeof memory / sizeof memory[0], &first);

  /* The keys of this connection's namespace: "db0:keys=N,..." (absent: 0),
   * then the operations. */
  {
    const char *db = info_get(in, "db0");
    const char *k = db != NULL ? strstr(db, "keys=") : NULL;
    unsigned long long nk = k != NULL ? strtoull(k + 5, NULL, 10) : 0;
    const char *hd[4] = {"keys", "", "", ""};
    const char *cells[4] = {"in this namespace", b[0], NULL, NULL};

    t = cli_table_new(4, hd, "lrlr");
    if (t != NULL) {
      size_t nops = sizeof ops / sizeof ops[0];
      int col = 1;

      cli_fmt_count(nk, b[0], sizeof b[0]);
      for (size_t q = 0; q < nops; q++) {
        const char *v = info_fmt(in, ops[q].name, ops[q].fmt, b[1 + col],
                                 sizeof b[0]);

        if (v == NULL) continue;
        cells[2 * col] = ops[q].label;
        cells[2 * col + 1] = v;
        if (++col == 2) {
          cli_table_row(t, cells);
          col = 0;
        }
      }
      if (col == 1) {
        cells[2] = cells[3] = NULL;
        cli_table_row(t, cells);
      }
      if (!first) fputc('\n', f);
      first = 0;
      cli_table_print(t, f, "");
      cli_table_free(t);
    }
  }

  /* One row per tier INFO reports. */
  {
    const char *hd[9] = {"tier", "blocks",  "bytes",    "capacity", "hits",
                         "misses", "evicted", "promoted", "demoted"};
    int rows = 0;

    t = cli_table_new(9, hd, "lrrrrrrrr");
    for (size_t k = 0; t != NULL && k < sizeof tiers / sizeof tiers[0]; k++) {
      const char *cells[9];

      snprintf(name, sizeof name, "%s_blocks", tiers[k]);
      if (info_get(in, name) == NULL) continue;
      cells[0] = tiers[k];
      for (int c = 0; c < 8; c++) {
        snprintf(name, sizeof name, "%s_%s", tiers[k], tcol[c]);
        cells[c + 1] = info_fmt(in, name, tfmt[c], b[c], sizeof b[0]);
        if (cells[c + 1] == NULL) cells[c + 1] = "-";
      }
      cli_table_row(t, cells);
      rows++;
    }
    if (t != NULL && rows > 0) {
      fputc('\n', f);
      cli_table_print(t, f, "");
    }
    cli_table_free(t);
  }

  kv_table(f, in, "disk tier", disk, sizeof disk / sizeof disk[0], &first);

  /* Latency, when INFO has it. */
  if (info_get(in, "get_count") != NULL || info_get(in, "put_count") != NULL) {
    const char *hd[6] = {"latency", "count", "p50", "p99", "p99.9", "max"};
    static const char *const op[2] = {"get", "put"};
    static const char *const col[5] = {"count", "p50_ns", "p99_ns",
                                       "p999_ns", "max_ns"};

    t = cli_table_new(6, hd, "lrrrrr");
    for (int k = 0; t != NULL && k < 2; k++) {
      const char *cells[6];

      cells[0] = op[k];
      for (int c = 0; c < 5; c++) {
        snprintf(name, sizeof name, "%s_%s", op[k], col[c]);
        cells[c + 1] = info_fmt(in, name, c == 0 ? V_COUNT : V_NS, b[c],
                                sizeof b[0]);
        if (cells[c + 1] == NULL) cells[c + 1] = "-";
      }
      cli_table_row(t, cells);
    }
    if (t != NULL) {
      fputc('\n', f);
      cli_table_print(t, f, "");
    }
    cli_table_free(t);
  }
}

static int stat_opt(void *ctx, int argc, char **argv, int *i) {
  (void)argc;
  if (strcmp(argv[*i], "--raw") != 0) return 0;
  *(int *)ctx = 1;
  *i += 1;
  return 1;
}

int cli_cmd_stat(int argc, char **argv, const cli_common *co0) {
  cli_common co = *co0;
  const char *av[2] = {"INFO", "all"};
  size_t al[2] = {4, 3};
  struct info *in;
  client cl;
  redisReply *r;
  char *text;
  int npos, rc, raw = 0;

  rc = parse_client_args(&co, argc, argv, "stat", cli_stat_usage, stat_opt,
                         &raw, NULL, 0, &npos);
  if (rc >= 0) return rc;
  rc = client_open(&cl, &co, "stat");
  if (rc != CLI_OK) return rc;
  r = client_call(&cl, 2, av, al);
  if (r == NULL) {
    client_close(&cl);
    return CLI_FAIL;
  }
  if (r->type != REDIS_REPLY_STRING) {
    rc = bad_reply(&cl, r);
    client_close(&cl);
    return rc;
  }
  if (raw) {
    fwrite(r->str, 1, r->len, stdout);
    freeReplyObject(r);
    client_close(&cl);
    return CLI_OK;
  }
  text = malloc(r->len + 1);
  in = malloc(sizeof *in);
  if (text == NULL || in == NULL) {
    cli_err("stat: out of memory");
    free(text);
    free(in);
    freeReplyObject(r);
    client_close(&cl);
    return CLI_FAIL;
  }
  memcpy(text, r->str, r->len);
  text[r->len] = '\0';
  freeReplyObject(r);
  info_parse(in, text);
  printf("cascaded at %s\n\n", cl.where);
  client_close(&cl);
  print_info(stdout, in);
  free(in);
  free(text);
  return CLI_OK;
}
