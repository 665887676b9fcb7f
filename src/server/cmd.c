/*
 * cmd.c - the commands of cascaded: the Redis subset inference engines and
 * their connectors use (GET/SET/MGET/MSET/EXISTS/DEL/GETRANGE/TTLs/...,
 * with Redis's replies and error wording) and the CASCADE.* commands for
 * what Redis has no words for (prefix chains, priorities, pins, stats).
 *
 * Every key lives in the connection's namespace (c->ns), set at connect
 * (no passwords configured: "default") or by AUTH; a client cannot name
 * another namespace.  Values are sent from the store's arena without a copy
 * (reply_bulk_view).  Commands run on the connection's worker thread; the
 * store is thread-safe, and nothing here keeps state across connections.
 */
#define _GNU_SOURCE
#include "server/server.h"

#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <linux/falloc.h>
#include <sys/mman.h>
#include <unistd.h>

/* CASCADE.PIN: views one connection may hold (PIN and UNPIN look a key up
 * among them: a pipeline of them costs at most MAX_PINS^2 compares) */
#define MAX_PINS 4096

typedef void (*cmd_fn)(conn *c, resp_arg *argv, size_t argc);

enum {
  F_NOAUTH = 1, /* allowed before AUTH */
};

typedef struct command {
  const char *name;
  cmd_fn fn;
  int arity; /* > 0 exact, < 0 at least -arity (the name counted) */
  int flags;
  int first, last, step; /* key positions, for COMMAND */
} command;

static int aeq(const resp_arg *a, const char *s) {
  size_t n = strlen(s);
  return a->len == n && strncasecmp(a->p, s, n) == 0;
}

/* A strict decimal integer (Redis's string2ll rules: no spaces, no '+', no
 * leading zeros but "0"). */
static int arg_ll(const resp_arg *a, long long *out) {
  const char *p = a->p;
  size_t n = a->len, i = 0;
  int neg = 0;
  if (n == 0 || n > 20) return -1;
  if (p[0] == '-') {
    neg = 1;
    i = 1;
    if (n == 1) return -1;
  }
  if (p[i] == '0' && n > i + 1) return -1;
  unsigned long long v = 0;
  for (; i < n; i++) {
    if (p[i] < '0' || p[i] > '9') return -1;
    unsigned d = (unsigned)(p[i] - '0');
    if (v > (ULLONG_MAX - d) / 10) return -1;
    v = v * 10 + d;
  }
  if (neg) {
    if (v > (unsigned long long)LLONG_MAX + 1) return -1;
    *out = v == (unsigned long long)LLONG_MAX + 1 ? LLONG_MIN : -(long long)v;
  } else {
    if (v > LLONG_MAX) return -1;
    *out = (long long)v;
  }
  return 0;
}

static void err_not_int(conn *c) {
  reply_error(c, "ERR value is not an integer or out of range");
}

static void err_syntax(conn *c) { reply_error(c, "ERR syntax error"); }

/* Reply with the error a store call returned. */
static void err_store(conn *c, int rc) {
  switch (rc) {
  case -EFBIG:
    reply_error(c, "ERR value too large for the store (larger than "
                   "max_value or than the DRAM tier)");
    break;
  case -ENOSPC:
    reply_error(c, "OOM no room in the store even after eviction (every "
                   "block is pinned)");
    break;
  case -ENOMEM:
    reply_error(c, "OOM out of memory");
    break;
  case -EBUSY:
    reply_error(c, "ERR too many blocks held for clients at once (pins, "
                   "leases, replies being sent): try again");
    break;
  default:
    reply_error(c, "ERR %s", cascade_strerror(rc));
    break;
  }
}

/* Keys: the store takes 1..CASCADE_MAX_KEY bytes. */
/* A command's name as Redis prints it (lower case). */
static void lower_name(const char *name, char *out, size_t cap) {
  size_t i = 0;
  for (; name[i] && i + 1 < cap; i++)
    out[i] = (char)(name[i] >= 'A' && name[i] <= 'Z' ? name[i] + 32 : name[i]);
  out[i] = 0;
}

/* Redis's arity error for the command named name. */
static void err_arity(conn *c, const char *name) {
  char lower[64];
  lower_name(name, lower, sizeof lower);
  reply_error(c, "ERR wrong number of arguments for '%s' command", lower);
}

/* A key the store takes (no reply). */
static int key_valid(const resp_arg *k) {
  return k->len > 0 && k->len <= CASCADE_MAX_KEY;
}

static int key_ok(conn *c, const resp_arg *k) {
  if (k->len == 0) {
    reply_error(c, "ERR empty keys are not supported");
    return 0;
  }
  if (k->len > CASCADE_MAX_KEY) {
    reply_error(c, "ERR key too long (%zu bytes; at most %d)", k->len,
                CASCADE_MAX_KEY);
    return 0;
  }
  return 1;
}

static void count_hit(int hit) {
  atomic_fetch_add_explicit(hit ? &g_srv.keyspace_hits
                                : &g_srv.keyspace_misses,
                            1, memory_order_relaxed);
}

/* Take a view for a client (pin or lease): counted against the
 * daemon-wide bound.  0, or a negative errno (replied by the caller). */
static int held_get(conn *c, const resp_arg *k, cascade_view *v) {
  if (atomic_fetch_add_explicit(&g_srv.nheld, 1, memory_order_relaxed) >=
      SRV_HELD_MAX) {
    atomic_fetch_sub_explicit(&g_srv.nheld, 1, memory_order_relaxed);
    return -EBUSY;
  }
  int rc = !key_valid(k)
               ? -ENOENT
               : cascade_get_view(g_srv.store, c->ns, k->p, k->len, v);
  if (rc < 0) atomic_fetch_sub_explicit(&g_srv.nheld, 1, memory_order_relaxed);
  return rc;
}

static void held_put(cascade_view *v) {
  cascade_view_release(g_srv.store, v);
  atomic_fetch_sub_explicit(&g_srv.nheld, 1, memory_order_relaxed);
}

/* ---- connection ---------------------------------------------------------- */

static void cmd_ping(conn *c, resp_arg *argv, size_t argc) {
  if (argc > 2) {
    reply_error(c, "ERR wrong number of arguments for 'ping' command");
  } else if (argc == 2) {
    reply_bulk(c, argv[1].p, argv[1].len);
  } else {
    reply_simple(c, "PONG");
  }
}

static void cmd_echo(conn *c, resp_arg *argv, size_t argc) {
  (void)argc;
  reply_bulk(c, argv[1].p, argv[1].len);
}

static int secret_eq(const char *want, const resp_arg *got) {
  /* length and bytes, without an early exit on the first difference */
  size_t n = strlen(want);
  unsigned char d = n != got->len;
  for (size_t i = 0; i < got->len; i++)
    d |= (unsigned char)(want[i < n ? i : 0] ^ got->p[i]);
  return d == 0 && n == got->len;
}

/* Authenticate as (user, pass); user NULL: the default namespace.  Sets
 * c->ns and returns 1, or replies with the error and returns 0. */
static int do_auth(conn *c, const resp_arg *user, const resp_arg *pass) {
  const srv_conf *cf = g_srv.conf;
  if (!conf_auth_required(cf)) {
    if (user && aeq(user, "default")) {
      c->ns = "default"; /* Redis: the default user without a password
                            takes any (redis://default:x@host URLs work) */
      return 1;
    }
    if (!user)
      reply_error(c, "ERR AUTH <password> called without any password "
                     "configured for the default user. Are you sure your "
                     "configuration is correct?");
    else
      reply_error(c, "WRONGPASS invalid username-password pair or user is "
                     "disabled.");
    return 0;
  }
  const char *ns = NULL;
  if (!user || aeq(user, "default")) {
    if (cf->requirepass && secret_eq(cf->requirepass, pass)) ns = "default";
  } else {
    for (int i = 0; i < cf->nns && !ns; i++)
      if (user->len == strlen(cf->ns[i].name) &&
          memcmp(user->p, cf->ns[i].name, user->len) == 0 &&
          secret_eq(cf->ns[i].pass, pass))
        ns = cf->ns[i].name;
  }
  if (ns) {
    c->ns = ns;
    /* the limits of an authenticated client (net.c keeps those of one
     * that is not small) */
    c->rp.max_bulk = cf->max_bulk;
    c->rp.max_args = RESP_MAX_ARGS_DEFAULT;
    return 1;
  }
  srv_log(LOG_VERBOSE, "client id=%llu addr=%s: AUTH failed",
          (unsigned long long)c->id, c->addr);
  reply_error(c,
              "WRONGPASS invalid username-password pair or user is disabled.");
  return 0;
}

static void cmd_auth(conn *c, resp_arg *argv, size_t argc) {
  if (argc > 3) {
    err_syntax(c);
    return;
  }
  if (do_auth(c, argc == 3 ? &argv[1] : NULL, &argv[argc - 1]))
    reply_simple(c, "OK");
}

/* Client names: printable, no spaces (Redis's rule). */
static int name_ok(conn *c, const resp_arg *a) {
  for (size_t i = 0; i < a->len; i++)
    if (a->p[i] <= ' ' || a->p[i] > '~') {
      reply_error(c, "ERR Client names cannot contain spaces, newlines or "
                     "special characters.");
      return 0;
    }
  return 1;
}

static void cmd_hello(conn *c, resp_arg *argv, size_t argc) {
  size_t i = 1;
  if (argc >= 2) {
    long long v;
    if (arg_ll(&argv[1], &v) != 0) {
      reply_error(c, "ERR Protocol version is not an integer or out of range");
      return;
    }
    if (v != 2) {
      reply_error(c, "NOPROTO sorry, this protocol version is not supported.");
      return;
    }
    i = 2;
  }
  for (; i < argc; i++) {
    if (aeq(&argv[i], "AUTH") && i + 2 < argc) {
      if (!do_auth(c, &argv[i + 1], &argv[i + 2])) return;
      i += 2;
    } else if (aeq(&argv[i], "SETNAME") && i + 1 < argc) {
      if (!name_ok(c, &argv[i + 1])) return;
      size_t n = argv[i + 1].len < SRV_NAME_MAX ? argv[i + 1].len
                                                : SRV_NAME_MAX;
      memcpy(c->name, argv[i + 1].p, n);
      c->name[n] = 0;
      i++;
    } else {
      reply_error(c, "ERR Syntax error in HELLO option '%.*s'",
                  (int)(argv[i].len > 64 ? 64 : argv[i].len), argv[i].p);
      return;
    }
  }
  if (!c->ns) {
    reply_error(c, "NOAUTH HELLO must be called with the client already "
                   "authenticated, otherwise the HELLO <proto> AUTH <user> "
                   "<pass> option can be used to authenticate the client and "
                   "select the RESP protocol version at the same time");
    return;
  }
  reply_array(c, 14);
  reply_bulk_str(c, "server");
  reply_bulk_str(c, "cascade");
  reply_bulk_str(c, "version");
  reply_bulk_str(c, cascade_version());
  reply_bulk_str(c, "proto");
  reply_int(c, 2);
  reply_bulk_str(c, "id");
  reply_int(c, (int64_t)c->id);
  reply_bulk_str(c, "mode");
  reply_bulk_str(c, "standalone");
  reply_bulk_str(c, "role");
  reply_bulk_str(c, "master");
  reply_bulk_str(c, "modules");
  reply_array(c, 0);
}

static void cmd_select(conn *c, resp_arg *argv, size_t argc) {
  (void)argc;
  long long db;
  if (arg_ll(&argv[1], &db) != 0) {
    err_not_int(c);
  } else if (db != 0) {
    reply_error(c, "ERR DB index is out of range (cascaded has one database "
                   "per namespace: AUTH into another namespace instead)");
  } else {
    reply_simple(c, "OK");
  }
}

static void cmd_quit(conn *c, resp_arg *argv, size_t argc) {
  (void)argv;
  (void)argc;
  reply_simple(c, "OK");
  c->closing = 1;
}

static void cmd_client(conn *c, resp_arg *argv, size_t argc) {
  resp_arg *sub = &argv[1];
  if (aeq(sub, "SETNAME") && argc == 3) {
    if (!name_ok(c, &argv[2])) return;
    size_t n = argv[2].len < SRV_NAME_MAX ? argv[2].len : SRV_NAME_MAX;
    memcpy(c->name, argv[2].p, n);
    c->name[n] = 0;
    reply_simple(c, "OK");
  } else if (aeq(sub, "GETNAME") && argc == 2) {
    if (c->name[0])
      reply_bulk_str(c, c->name);
    else
      reply_null(c);
  } else if (aeq(sub, "ID") && argc == 2) {
    reply_int(c, (int64_t)c->id);
  } else if (aeq(sub, "SETINFO") && argc == 4) {
    reply_simple(c, "OK"); /* client library name/version: accepted */
  } else if ((aeq(sub, "INFO") && argc == 2) ||
             (aeq(sub, "LIST") && argc == 2)) {
    char b[512];
    uint64_t now = now_ms();
    int n = snprintf(b, sizeof b,
                     "id=%llu addr=%s name=%s age=%llu idle=%llu ns=%s "
                     "cmds=%llu pins=%zu\n",
                     (unsigned long long)c->id, c->addr, c->name,
                     (unsigned long long)((now - c->created_ms) / 1000),
                     (unsigned long long)((now - c->last_ms) / 1000),
                     c->ns ? c->ns : "", (unsigned long long)c->cmds,
                     c->npins);
    reply_bulk(c, b, (size_t)n < sizeof b ? (size_t)n : sizeof b - 1);
  } else {
    reply_error(c,
                "ERR unknown subcommand or wrong number of arguments for "
                "'%.*s'. Try CLIENT HELP.",
                (int)(sub->len > 64 ? 64 : sub->len), sub->p);
  }
}

/* ---- keys ---------------------------------------------------------------- */

static void cmd_get(conn *c, resp_arg *argv, size_t argc) {
  (void)argc;
  if (!key_ok(c, &argv[1])) return;
  cascade_view v;
  int rc = cascade_get_view(g_srv.store, c->ns, argv[1].p, argv[1].len, &v);
  count_hit(rc == 0);
  if (rc == -ENOENT)
    reply_null(c);
  else if (rc < 0)
    err_store(c, rc);
  else
    reply_bulk_view(c, &v);
}

static void cmd_mget(conn *c, resp_arg *argv, size_t argc) {
  reply_array(c, (int64_t)argc - 1);
  for (size_t i = 1; i < argc; i++) {
    cascade_view v;
    int rc = !key_valid(&argv[i])
                 ? -ENOENT
                 : cascade_get_view(g_srv.store, c->ns, argv[i].p,
                                    argv[i].len, &v);
    count_hit(rc == 0);
    if (rc == 0)
      reply_bulk_view(c, &v);
    else
      reply_null(c); /* Redis's MGET has no per-key errors */
  }
}

/* SET's and CASCADE.PUT's expiry in ms from an option, or -1 (replied). */
static long long expiry_ms(conn *c, const resp_arg *opt, const resp_arg *val,
                           const char *cmd) {
  long long v;
  if (arg_ll(val, &v) != 0) {
    err_not_int(c);
    return -1;
  }
  long long now = (long long)time(NULL) * 1000;
  long long ms;
  /* an overflow is an expiry too far away: refused below */
  if (aeq(opt, "EX"))
    ms = v > LLONG_MAX / 1000 ? LLONG_MAX : v * 1000;
  else if (aeq(opt, "PX") || aeq(opt, "TTL"))
    ms = v;
  else if (aeq(opt, "EXAT"))
    ms = v > LLONG_MAX / 1000 ? LLONG_MAX : v * 1000 - now;
  else /* PXAT */
    ms = v - now;
  if (v <= 0 || ms > (1LL << 50)) {
    reply_error(c, "ERR invalid expire time in '%s' command", cmd);
    return -1;
  }
  return ms <= 0 ? 1 : ms; /* a time already past: expires at once */
}

static void cmd_set(conn *c, resp_arg *argv, size_t argc) {
  if (!key_ok(c, &argv[1])) return;
  cascade_put_opts o = {0};
  long long ttl = 0;
  int nx = 0, xx = 0, keepttl = 0, get = 0, have_exp = 0;
  for (size_t i = 3; i < argc; i++) {
    resp_arg *a = &argv[i];
    if (aeq(a, "NX") && !xx) {
      nx = 1;
    } else if (aeq(a, "XX") && !nx) {
      xx = 1;
    } else if (aeq(a, "KEEPTTL") && !have_exp) {
      keepttl = 1;
    } else if (aeq(a, "GET")) {
      get = 1;
    } else if ((aeq(a, "EX") || aeq(a, "PX") || aeq(a, "EXAT") ||
                aeq(a, "PXAT")) &&
               !keepttl && !have_exp && i + 1 < argc) {
      if ((ttl = expiry_ms(c, a, &argv[i + 1], "set")) < 0) return;
      have_exp = 1;
      i++;
    } else {
      err_syntax(c);
      return;
    }
  }
  cascade_view old = {0};
  int had = 0;
  if (get) {
    int rc = cascade_get_view(g_srv.store, c->ns, argv[1].p, argv[1].len,
                              &old);
    if (rc < 0 && rc != -ENOENT) {
      err_store(c, rc);
      return;
    }
    had = rc == 0;
  }
  o.flags = (nx ? CASCADE_PUT_NX : 0) | (xx ? CASCADE_PUT_XX : 0) |
            (keepttl ? CASCADE_PUT_KEEPTTL : 0);
  o.ttl_ms = (uint64_t)ttl;
  int rc = cascade_put(g_srv.store, c->ns, argv[1].p, argv[1].len, argv[2].p,
                       argv[2].len, &o);
  if (rc == -EEXIST || rc == -ENOENT) { /* NX / XX: not set */
    if (!get) reply_null(c);
  } else if (rc < 0) {
    if (had) cascade_view_release(g_srv.store, &old);
    err_store(c, rc);
    return;
  } else if (!get) {
    reply_simple(c, "OK");
  }
  if (get) {
    if (had)
      reply_bulk_view(c, &old);
    else
      reply_null(c);
  }
}

static void cmd_mset(conn *c, resp_arg *argv, size_t argc) {
  if (argc % 2 == 0) {
    err_arity(c, "MSET");
    return;
  }
  size_t n = (argc - 1) / 2;
  /* all or nothing, as Redis's MSET: what the store would refuse is
   * refused before anything is stored (running out of room midway, with
   * every block pinned, is the one case left that stores a part) */
  for (size_t i = 0; i < n; i++) {
    if (!key_ok(c, &argv[1 + 2 * i])) return;
    if (argv[2 + 2 * i].len > g_srv.value_max) {
      err_store(c, -EFBIG);
      return;
    }
  }
  cascade_put_item stack[32];
  cascade_put_item *it = n <= 32 ? stack : calloc(n, sizeof *it);
  if (!it) {
    err_store(c, -ENOMEM);
    return;
  }
  for (size_t i = 0; i < n; i++)
    it[i] = (cascade_put_item){.key = argv[1 + 2 * i].p,
                               .klen = argv[1 + 2 * i].len,
                               .value = argv[2 + 2 * i].p,
                               .vlen = argv[2 + 2 * i].len};
  int stored = cascade_put_batch(g_srv.store, c->ns, it, n);
  if (stored < 0) {
    err_store(c, stored);
  } else if ((size_t)stored < n) {
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) rc = it[i].rc;
    err_store(c, rc);
  } else {
    reply_simple(c, "OK");
  }
  if (it != stack) free(it);
}

/* EXISTS and DEL: how many of the keys fn found (a key the store cannot
 * hold is one it does not have). */
static void count_keys(conn *c, resp_arg *argv, size_t argc,
                       int (*fn)(cascade *, const char *, const void *,
                                 size_t),
                       int found) {
  int64_t n = 0;
  for (size_t i = 1; i < argc; i++)
    if (key_valid(&argv[i]) &&
        fn(g_srv.store, c->ns, argv[i].p, argv[i].len) == found)
      n++;
  reply_int(c, n);
}

static void cmd_exists(conn *c, resp_arg *argv, size_t argc) {
  count_keys(c, argv, argc, cascade_exists, 1);
}

static void cmd_del(conn *c, resp_arg *argv, size_t argc) {
  count_keys(c, argv, argc, cascade_delete, 0);
}

static void cmd_strlen(conn *c, resp_arg *argv, size_t argc) {
  (void)argc;
  struct cascade_key_info ki;
  if (!key_ok(c, &argv[1])) return;
  int rc = cascade_key_info(g_srv.store, c->ns, argv[1].p, argv[1].len, &ki);
  reply_int(c, rc == 0 ? (int64_t)ki.vlen : 0);
}

static void cmd_getrange(conn *c, resp_arg *argv, size_t argc) {
  (void)argc;
  long long start, end;
  if (arg_ll(&argv[2], &start) != 0 || arg_ll(&argv[3], &end) != 0) {
    err_not_int(c);
    return;
  }
  if (!key_ok(c, &argv[1])) return;
  cascade_view v;
  int rc = cascade_get_view(g_srv.store, c->ns, argv[1].p, argv[1].len, &v);
  count_hit(rc == 0);
  if (rc == -ENOENT) {
    reply_bulk(c, "", 0);
    return;
  }
  if (rc < 0) {
    err_store(c, rc);
    return;
  }
  /* Redis's rules: negative offsets count from the end, then clamp */
  long long len = (long long)v.len;
  if (start < 0 && end < 0 && start > end) {
    reply_bulk(c, "", 0);
  } else {
    if (start < 0) start = len + start;
    if (end < 0) end = len + end;
    if (start < 0) start = 0;
    if (end < 0) end = 0;
    if (end >= len) end = len - 1;
    if (len == 0 || start > end) {
      reply_bulk(c, "", 0);
    } else {
      reply_bulk(c, (const char *)v.data + start, (size_t)(end - start + 1));
    }
  }
  cascade_view_release(g_srv.store, &v);
}

/* EXPIRE/PEXPIRE key time [NX|XX|GT|LT] */
static void expire_generic(conn *c, resp_arg *argv, size_t argc, int unit_ms) {
  long long t;
  if (arg_ll(&argv[2], &t) != 0) {
    err_not_int(c);
    return;
  }
  if (!unit_ms && (t > LLONG_MAX / 1000 || t < LLONG_MIN / 1000)) {
    reply_error(c, "ERR invalid expire time in '%s' command",
                unit_ms ? "pexpire" : "expire");
    return;
  }
  long long ms = unit_ms ? t : t * 1000;
  int nx = 0, xx = 0, gt = 0, lt = 0;
  for (size_t i = 3; i < argc; i++) {
    if (aeq(&argv[i], "NX"))
      nx = 1;
    else if (aeq(&argv[i], "XX"))
      xx = 1;
    else if (aeq(&argv[i], "GT"))
      gt = 1;
    else if (aeq(&argv[i], "LT"))
      lt = 1;
    else {
      reply_error(c, "ERR Unsupported option %.*s",
                  (int)(argv[i].len > 32 ? 32 : argv[i].len), argv[i].p);
      return;
    }
  }
  if (nx && (xx || gt || lt)) {
    reply_error(c, "ERR NX and XX, GT or LT options at the same time are "
                   "not compatible");
    return;
  }
  if (gt && lt) {
    reply_error(c, "ERR GT and LT options at the same time are not "
                   "compatible");
    return;
  }
  if (!key_ok(c, &argv[1])) return;
  struct cascade_key_info ki;
  if (cascade_key_info(g_srv.store, c->ns, argv[1].p, argv[1].len, &ki) != 0) {
    reply_int(c, 0);
    return;
  }
  int has = ki.ttl_ms >= 0;
  /* Redis: a key without a TTL counts as an infinite one for GT/LT */
  if ((nx && has) || (xx && !has) || (gt && (!has || ms <= ki.ttl_ms)) ||
      (lt && has && ms >= ki.ttl_ms)) {
    reply_int(c, 0);
    return;
  }
  int rc;
  if (ms <= 0)
    rc = cascade_delete(g_srv.store, c->ns, argv[1].p, argv[1].len);
  else if (ms > (1LL << 50)) {
    reply_error(c, "ERR invalid expire time in '%s' command",
                unit_ms ? "pexpire" : "expire");
    return;
  } else
    rc = cascade_set_ttl(g_srv.store, c->ns, argv[1].p, argv[1].len,
                         (uint64_t)ms);
  reply_int(c, rc == 0);
}

static void cmd_expire(conn *c, resp_arg *argv, size_t argc) {
  expire_generic(c, argv, argc, 0);
}
static void cmd_pexpire(conn *c, resp_arg *argv, size_t argc) {
  expire_generic(c, argv, argc, 1);
}

static void ttl_generic(conn *c, resp_arg *argv, int unit_ms) {
  if (!key_ok(c, &argv[1])) return;
  struct cascade_key_info ki;
  if (cascade_key_info(g_srv.store, c->ns, argv[1].p, argv[1].len, &ki) != 0)
    reply_int(c, -2);
  else if (ki.ttl_ms < 0)
    reply_int(c, -1);
  else
    reply_int(c, unit_ms ? ki.ttl_ms : (ki.ttl_ms + 500) / 1000);
}

static void cmd_ttl(conn *c, resp_arg *argv, size_t argc) {
  (void)argc;
  ttl_generic(c, argv, 0);
}
static void cmd_pttl(conn *c, resp_arg *argv, size_t argc) {
  (void)argc;
  ttl_generic(c, argv, 1);
}

static void cmd_persist(conn *c, resp_arg *argv, size_t argc) {
  (void)argc;
  if (!key_ok(c, &argv[1])) return;
  struct cascade_key_info ki;
  if (cascade_key_info(g_srv.store, c->ns, argv[1].p, argv[1].len, &ki) != 0 ||
      ki.ttl_ms < 0) {
    reply_int(c, 0);
    return;
  }
  reply_int(c, cascade_set_ttl(g_srv.store, c->ns, argv[1].p, argv[1].len,
                               0) == 0);
}

static void cmd_dbsize(conn *c, resp_arg *argv, size_t argc) {
  (void)argv;
  (void)argc;
  int64_t n = cascade_ns_keys(g_srv.store, c->ns);
  if (n < 0)
    err_store(c, (int)n);
  else
    reply_int(c, n);
}

static void cmd_flushdb(conn *c, resp_arg *argv, size_t argc) {
  if (argc > 2 ||
      (argc == 2 && !aeq(&argv[1], "ASYNC") && !aeq(&argv[1], "SYNC"))) {
    err_syntax(c);
    return;
  }
  int64_t n = cascade_ns_flush(g_srv.store, c->ns);
  if (n < 0) {
    err_store(c, (int)n);
    return;
  }
  srv_log(LOG_NOTICE, "namespace %s flushed by client id=%llu: %lld keys",
          c->ns, (unsigned long long)c->id, (long long)n);
  reply_simple(c, "OK");
}

/* ---- server -------------------------------------------------------------- */

static void cmd_info(conn *c, resp_arg *argv, size_t argc) {
  char sec[64] = "";
  if (argc > 2) {
    err_syntax(c);
    return;
  }
  if (argc == 2)
    snprintf(sec, sizeof sec, "%.*s",
             (int)(argv[1].len < sizeof sec ? argv[1].len : sizeof sec - 1),
             argv[1].p);
  size_t len;
  char *t = info_text(c, sec, &len);
  if (!t) {
    err_store(c, -ENOMEM);
    return;
  }
  reply_bulk(c, t, len);
  free(t);
}

/* CONFIG GET pattern...: the daemon's settings, the engine's, and the two
 * Redis ones redis-benchmark asks for. */
static void cmd_config(conn *c, resp_arg *argv, size_t argc) {
  if (!aeq(&argv[1], "GET")) {
    if (aeq(&argv[1], "SET"))
      reply_error(c, "ERR CONFIG SET is not supported: restart cascaded with "
                     "the new setting");
    else
      reply_error(c, "ERR unknown subcommand '%.*s'. Try CONFIG GET.",
                  (int)(argv[1].len > 64 ? 64 : argv[1].len), argv[1].p);
    return;
  }
  if (argc < 3) {
    reply_error(c, "ERR wrong number of arguments for 'config|get' command");
    return;
  }
  static const char *const compat[][2] = {{"save", ""},
                                          {"appendonly", "no"},
                                          {"databases", "1"}};
  /* name/value pairs into a temporary list, then the reply */
  char *names[256], *vals[256];
  size_t n = 0;
  for (size_t a = 2; a < argc; a++) {
    char pat[256];
    snprintf(pat, sizeof pat, "%.*s",
             (int)(argv[a].len < sizeof pat ? argv[a].len : sizeof pat - 1),
             argv[a].p);
    char val[4096];
    for (const char *const *nm = conf_names; *nm && n < 256; nm++)
      if (fnmatch(pat, *nm, FNM_CASEFOLD) == 0 &&
          conf_get(g_srv.conf, *nm, val, sizeof val) == 0) {
        names[n] = strdup(*nm);
        vals[n++] = strdup(val);
      }
    for (const char *const *nm = cascade_config_names(); *nm && n < 256; nm++)
      if (fnmatch(pat, *nm, FNM_CASEFOLD) == 0 &&
          cascade_config_get(g_srv.conf->engine, *nm, val, sizeof val) == 0) {
        names[n] = strdup(*nm);
        vals[n++] = strdup(val);
      }
    for (size_t k = 0; k < sizeof compat / sizeof compat[0] && n < 256; k++)
      if (fnmatch(pat, compat[k][0], FNM_CASEFOLD) == 0) {
        names[n] = strdup(compat[k][0]);
        vals[n++] = strdup(compat[k][1]);
      }
  }
  /* a name matched by two patterns is listed once */
  size_t m = 0;
  for (size_t i = 0; i < n; i++) {
    int dup = 0;
    for (size_t j = 0; j < m && !dup; j++)
      dup = names[i] && names[j] && !strcmp(names[i], names[j]);
    if (dup || !names[i] || !vals[i]) {
      free(names[i]);
      free(vals[i]);
      continue;
    }
    names[m] = names[i];
    vals[m++] = vals[i];
  }
  reply_array(c, (int64_t)(2 * m));
  for (size_t i = 0; i < m; i++) {
    reply_bulk_str(c, names[i]);
    reply_bulk_str(c, vals[i]);
    free(names[i]);
    free(vals[i]);
  }
}

static const command *cmd_table(size_t *n);

static void cmd_command(conn *c, resp_arg *argv, size_t argc) {
  size_t n;
  const command *t = cmd_table(&n);
  if (argc >= 2 && aeq(&argv[1], "COUNT")) {
    reply_int(c, (int64_t)n);
    return;
  }
  if (argc >= 2 && aeq(&argv[1], "DOCS")) {
    reply_array(c, 0); /* no docs: redis-cli then shows no hints */
    return;
  }
  if (argc >= 2 && !aeq(&argv[1], "INFO") && !aeq(&argv[1], "LIST")) {
    reply_error(c, "ERR unknown subcommand '%.*s'. Try COMMAND HELP.",
                (int)(argv[1].len > 64 ? 64 : argv[1].len), argv[1].p);
    return;
  }
  if (argc >= 2 && aeq(&argv[1], "LIST")) {
    reply_array(c, (int64_t)n);
    for (size_t i = 0; i < n; i++) reply_bulk_str(c, t[i].name);
    return;
  }
  /* COMMAND, COMMAND INFO name...: [name, arity, flags, first, last, step] */
  size_t want = argc > 2 ? argc - 2 : n;
  reply_array(c, (int64_t)want);
  for (size_t k = 0; k < want; k++) {
    const command *e = NULL;
    if (argc > 2) {
      for (size_t i = 0; i < n && !e; i++)
        if (aeq(&argv[2 + k], t[i].name)) e = &t[i];
      if (!e) {
        reply_null(c);
        continue;
      }
    } else {
      e = &t[k];
    }
    char lower[64];
    lower_name(e->name, lower, sizeof lower);
    reply_array(c, 6);
    reply_bulk_str(c, lower);
    reply_int(c, e->arity);
    reply_array(c, 0);
    reply_int(c, e->first);
    reply_int(c, e->last);
    reply_int(c, e->step);
  }
}

static void cmd_shutdown(conn *c, resp_arg *argv, size_t argc) {
  for (size_t i = 1; i < argc; i++)
    if (!aeq(&argv[i], "NOSAVE") && !aeq(&argv[i], "SAVE") &&
        !aeq(&argv[i], "NOW") && !aeq(&argv[i], "FORCE")) {
      err_syntax(c);
      return;
    }
  if (conf_auth_required(g_srv.conf) && strcmp(c->ns, "default") != 0) {
    /* a tenant stops nobody else's cache */
    reply_error(c, "ERR SHUTDOWN is only allowed in the default namespace");
    return;
  }
  srv_log(LOG_NOTICE, "SHUTDOWN asked by client id=%llu addr=%s",
          (unsigned long long)c->id, c->addr);
  /* the main thread does the orderly stop, as for SIGTERM; like Redis,
   * no reply: the connection closes */
  kill(getpid(), SIGTERM);
  c->closing = 1;
}

/* ---- CASCADE.* ------------------------------------------------------------ */

/* CASCADE.PUT's options, argv[i..argc): [PREFIX] [PARENT key]
 * [PRIORITY low|normal|high] [TTL ms] [NX|XX].  0, or -1 (replied). */
static int put_opts(conn *c, resp_arg *argv, size_t i, size_t argc,
                    cascade_put_opts *o) {
  memset(o, 0, sizeof *o);
  for (; i < argc; i++) {
    resp_arg *a = &argv[i];
    if (aeq(a, "PREFIX")) {
      o->flags |= CASCADE_PUT_PREFIX;
    } else if (aeq(a, "NX")) {
      o->flags |= CASCADE_PUT_NX;
    } else if (aeq(a, "XX")) {
      o->flags |= CASCADE_PUT_XX;
    } else if (aeq(a, "PARENT") && i + 1 < argc) {
      if (!key_ok(c, &argv[i + 1])) return -1;
      o->parent = argv[i + 1].p;
      o->parent_len = argv[i + 1].len;
      i++;
    } else if (aeq(a, "PRIORITY") && i + 1 < argc) {
      resp_arg *v = &argv[++i];
      if (aeq(v, "low"))
        o->priority = CASCADE_PRIO_LOW;
      else if (aeq(v, "normal"))
        o->priority = CASCADE_PRIO_NORMAL;
      else if (aeq(v, "high"))
        o->priority = CASCADE_PRIO_HIGH;
      else {
        reply_error(c, "ERR PRIORITY must be low, normal or high");
        return -1;
      }
    } else if (aeq(a, "TTL") && i + 1 < argc) {
      long long ms = expiry_ms(c, a, &argv[i + 1], "cascade.put");
      if (ms < 0) return -1;
      o->ttl_ms = (uint64_t)ms;
      i++;
    } else {
      err_syntax(c);
      return -1;
    }
  }
  if ((o->flags & CASCADE_PUT_NX) && (o->flags & CASCADE_PUT_XX)) {
    err_syntax(c);
    return -1;
  }
  return 0;
}

static void put_reply(conn *c, int rc) {
  if (rc == -EEXIST || rc == -ENOENT) /* NX / XX: not stored */
    reply_null(c);
  else if (rc < 0)
    err_store(c, rc);
  else
    reply_simple(c, "OK");
}

/* CASCADE.PUT key value [options] */
static void cmd_cput(conn *c, resp_arg *argv, size_t argc) {
  cascade_put_opts o;
  if (!key_ok(c, &argv[1]) || put_opts(c, argv, 3, argc, &o) != 0) return;
  put_reply(c, cascade_put(g_srv.store, c->ns, argv[1].p, argv[1].len,
                           argv[2].p, argv[2].len, &o));
}

static void cmd_cmatch(conn *c, resp_arg *argv, size_t argc) {
  size_t n = argc - 1;
  cascade_key stack[64];
  cascade_key *k = n <= 64 ? stack : calloc(n, sizeof *k);
  if (!k) {
    err_store(c, -ENOMEM);
    return;
  }
  size_t good = 0;
  for (size_t i = 0; i < n; i++) {
    if (!key_valid(&argv[1 + i])) break;
    k[i] = (cascade_key){argv[1 + i].p, argv[1 + i].len};
    good++;
  }
  int r = good ? cascade_match_prefix(g_srv.store, c->ns, k, good) : 0;
  if (k != stack) free(k);
  if (r < 0)
    err_store(c, r);
  else
    reply_int(c, r);
}

/* A pin of this connection on key in its current namespace (a connection
 * may AUTH into another namespace while holding pins). */
static pinned *pin_find(conn *c, const resp_arg *k) {
  for (size_t i = 0; i < c->npins; i++)
    if (c->pins[i].ns == c->ns && c->pins[i].klen == k->len &&
        memcmp(c->pins[i].key, k->p, k->len) == 0)
      return &c->pins[i];
  return NULL;
}

/* CASCADE.PIN key: keep the block in DRAM until UNPIN or disconnect.
 * 1 pinned (or already pinned by this connection), 0 no such key. */
static void cmd_cpin(conn *c, resp_arg *argv, size_t argc) {
  (void)argc;
  if (!key_ok(c, &argv[1])) return;
  if (pin_find(c, &argv[1])) {
    reply_int(c, 1);
    return;
  }
  if (c->npins >= MAX_PINS) {
    reply_error(c, "ERR too many pins on this connection (at most %d)",
                MAX_PINS);
    return;
  }
  if (c->npins == c->cpins) {
    size_t nc = c->cpins ? 2 * c->cpins : 8;
    pinned *np = realloc(c->pins, nc * sizeof *np);
    if (!np) {
      err_store(c, -ENOMEM);
      return;
    }
    c->pins = np;
    c->cpins = nc;
  }
  pinned *p = &c->pins[c->npins];
  p->key = malloc(argv[1].len);
  if (!p->key) {
    err_store(c, -ENOMEM);
    return;
  }
  int rc = held_get(c, &argv[1], &p->view);
  if (rc < 0) {
    free(p->key);
    if (rc == -ENOENT)
      reply_int(c, 0);
    else
      err_store(c, rc);
    return;
  }
  memcpy(p->key, argv[1].p, argv[1].len);
  p->klen = argv[1].len;
  p->ns = c->ns;
  c->npins++;
  reply_int(c, 1);
}

static void cmd_cunpin(conn *c, resp_arg *argv, size_t argc) {
  (void)argc;
  pinned *p = pin_find(c, &argv[1]);
  if (!p) {
    reply_int(c, 0);
    return;
  }
  held_put(&p->view);
  free(p->key);
  *p = c->pins[--c->npins];
  reply_int(c, 1);
}

static void cmd_cstats(conn *c, resp_arg *argv, size_t argc) {
  (void)argv;
  (void)argc;
  size_t len;
  char *t = info_text(c, "cascade", &len);
  if (!t) {
    err_store(c, -ENOMEM);
    return;
  }
  reply_bulk(c, t, len);
  free(t);
}

/* ---- the shared-memory path ------------------------------------------------
 *
 * For clients on the same node, over the Unix socket only (a descriptor
 * cannot cross TCP):
 *   CASCADE.SHM                  -> [arena bytes]; the arena's descriptor
 *                                   comes with the reply (SCM_RIGHTS), to be
 *                                   mapped read-only
 *   CASCADE.LEASE key...         -> per key nil, or [offset, length, id]:
 *                                   the value is at offset in the arena and
 *                                   stays there until CASCADE.RELEASE id
 *                                   (or the connection closes)
 *   CASCADE.RELEASE id...        -> the number of leases released
 *   CASCADE.STAGE bytes          -> [bytes]; a fresh staging area (memfd)
 *                                   comes with the reply, to be mapped
 *                                   read-write
 *   CASCADE.PUTSTAGED key offset length [CASCADE.PUT options]
 *                                -> as CASCADE.PUT, the value read from the
 *                                   staging area: the bytes never cross the
 *                                   socket
 *   CASCADE.MPUTSTAGED key offset length [key offset length ...]
 *                                -> per value, as CASCADE.PUTSTAGED
 *                                   without options: one batch put
 *   CASCADE.SHMINDEX             -> [bytes]; the shared-memory index's
 *                                   descriptor comes with the reply
 *   CASCADE.TOUCH key...         -> keys read through the index: counted
 *                                   as hits, for the eviction policy
 * The client library is cascade_client_* (src/client/client.c). */

#define MAX_LEASES 65536
/* staging bytes kept between puts (a client stages a request's blocks,
 * up to 32 MiB, at once: cascade_client_put_batch) */
#define STAGE_KEEP (UINT64_C(32) << 20)

/* The shared-memory path maps the whole arena into the client: every
 * namespace's values can be read there.  So it is for the Unix socket
 * only, and where namespaces with passwords are configured, for the
 * default namespace only (the operator's). */
static int shm_allowed(conn *c) {
  if (!c->is_unix) {
    reply_error(c, "ERR the shared-memory path needs the Unix socket "
                   "(cascaded --unixsocket PATH)");
    return 0;
  }
  if (g_srv.conf->nns > 0 && strcmp(c->ns, "default") != 0) {
    reply_error(c, "NOPERM the shared-memory path maps the whole arena, "
                   "all namespaces' values: with namespaces configured only "
                   "the default namespace may use it");
    return 0;
  }
  return 1;
}

/* The arena's descriptor as clients get it: a read-only open of the same
 * memory (through /proc), so that a client can map it but can neither
 * write nor truncate it - a truncated arena would crash the daemon with
 * SIGBUS. */
static pthread_once_t arena_once = PTHREAD_ONCE_INIT, index_once =
                                                          PTHREAD_ONCE_INIT;
static int arena_ro = -1, index_ro = -1;
static size_t index_size;

static int reopen_ro(int fd, const char *what) {
  char path[64];
  snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
  int ro = open(path, O_RDONLY | O_CLOEXEC);
  if (ro < 0)
    srv_log(LOG_WARNING, "cannot reopen the %s read-only (%s): %s; it is "
                         "not shared", what, path, strerror(errno));
  return ro;
}

static void arena_ro_open(void) {
  int fd;
  size_t size;
  const void *base;
  if (cascade_arena(g_srv.store, &fd, &size, &base) == 0)
    arena_ro = reopen_ro(fd, "arena");
}

static void index_ro_open(void) {
  int fd, rc = cascade_shm_index(g_srv.store, &fd, &index_size);
  if (rc == 0)
    index_ro = reopen_ro(fd, "shared-memory index");
  else
    srv_log(LOG_WARNING, "no shared-memory index: %s", cascade_strerror(rc));
}

/* [size], with fd passed along (SCM_RIGHTS); fd is shared by all clients
 * and never closed.  fd < 0: what is not available. */
static void reply_shared_fd(conn *c, int fd, size_t size, const char *what) {
  if (fd < 0) {
    reply_error(c, "ERR the %s is not available (see the daemon's log)",
                what);
    return;
  }
  c->send_fd = fd;
  reply_array(c, 1);
  reply_int(c, (int64_t)size);
}

static void cmd_shm(conn *c, resp_arg *argv, size_t argc) {
  (void)argv;
  (void)argc;
  if (!shm_allowed(c)) return;
  int fd;
  size_t size;
  const void *base;
  int rc = cascade_arena(g_srv.store, &fd, &size, &base);
  if (rc < 0) {
    err_store(c, rc);
    return;
  }
  pthread_once(&arena_once, arena_ro_open);
  reply_shared_fd(c, arena_ro, size, "shared-memory path");
}

/* CASCADE.SHMINDEX -> [bytes], with the index's descriptor (read-only):
 * where each key of the default namespace lies in the arena, so that the
 * client reads values without asking (src/core/shmidx.h). */
static void cmd_shmindex(conn *c, resp_arg *argv, size_t argc) {
  (void)argv;
  (void)argc;
  if (!shm_allowed(c)) return;
  pthread_once(&index_once, index_ro_open);
  reply_shared_fd(c, index_ro, index_size, "shared-memory index");
}

/* CASCADE.TOUCH key... -> the number present: uses of values a client read
 * through the index, counted as gets (the eviction policy sees them). */
static void cmd_touch(conn *c, resp_arg *argv, size_t argc) {
  cascade_key ks[64];
  int64_t n = 0;
  for (size_t i = 1; i < argc;) {
    size_t m = 0;
    for (; m < 64 && i < argc; m++, i++) {
      ks[m].key = argv[i].p;
      ks[m].len = argv[i].len;
    }
    int rc = cascade_touch(g_srv.store, c->ns, ks, m);
    if (rc < 0) {
      err_store(c, rc);
      return;
    }
    atomic_fetch_add_explicit(&g_srv.keyspace_hits, (uint64_t)rc,
                              memory_order_relaxed);
    n += rc;
  }
  reply_int(c, n);
}

/* A free lease slot (growing the table up to MAX_LEASES), or -1. */
static int64_t lease_slot(conn *c) {
  if (c->nlfree > 0) return c->lfree[--c->nlfree];
  if (c->lused == c->cleases) {
    size_t nc = c->cleases ? 2 * c->cleases : 64;
    if (nc > MAX_LEASES) nc = MAX_LEASES;
    if (nc == c->cleases) return -1;
    struct lease *nl = realloc(c->leases, nc * sizeof *nl);
    if (!nl) return -1;
    c->leases = nl;
    uint32_t *nf = realloc(c->lfree, nc * sizeof *nf);
    if (!nf) return -1;
    c->lfree = nf;
    c->cleases = nc;
  }
  return (int64_t)c->lused++;
}

static void cmd_lease(conn *c, resp_arg *argv, size_t argc) {
  if (!shm_allowed(c)) return;
  int fd;
  size_t size;
  const void *base;
  int rc = cascade_arena(g_srv.store, &fd, &size, &base);
  if (rc < 0) {
    err_store(c, rc);
    return;
  }
  if (c->nleases + (argc - 1) > MAX_LEASES) {
    reply_error(c, "ERR too many leases on this connection (at most %d): "
                   "release some first", MAX_LEASES);
    return;
  }
  reply_array(c, (int64_t)argc - 1);
  for (size_t i = 1; i < argc; i++) {
    cascade_view v;
    int64_t slot = -1;
    rc = held_get(c, &argv[i], &v);
    count_hit(rc == 0);
    if (rc == 0 && (slot = lease_slot(c)) < 0) {
      held_put(&v);
      rc = -ENOMEM;
    }
    if (rc < 0) {
      reply_null(c); /* absent, or no room to hold it: the client reads it
                        another way */
      continue;
    }
    struct lease *l = &c->leases[slot];
    l->view = v;
    l->id = (++c->next_lease << LEASE_SLOT_BITS) | (uint64_t)slot;
    c->nleases++;
    reply_array(c, 3);
    reply_int(c, (int64_t)((const char *)v.data - (const char *)base));
    reply_int(c, (int64_t)v.len);
    reply_int(c, (int64_t)l->id);
  }
}

static void cmd_release(conn *c, resp_arg *argv, size_t argc) {
  int64_t n = 0;
  for (size_t i = 1; i < argc; i++) {
    long long id;
    if (arg_ll(&argv[i], &id) != 0 || id <= 0) {
      err_not_int(c);
      return;
    }
    uint64_t slot = (uint64_t)id & ((UINT64_C(1) << LEASE_SLOT_BITS) - 1);
    if (slot < c->lused && c->leases[slot].id == (uint64_t)id) {
      held_put(&c->leases[slot].view);
      c->leases[slot].id = 0;
      c->lfree[c->nlfree++] = (uint32_t)slot;
      c->nleases--;
      n++;
    }
  }
  reply_int(c, n);
}

static void stage_drop(conn *c) {
  if (c->stage) munmap(c->stage, c->stage_len);
  if (c->stage_fd >= 0) {
    if (c->send_fd == c->stage_fd) c->send_fd = -1; /* not passed yet */
    close(c->stage_fd);
  }
  c->stage = NULL;
  c->stage_len = 0;
  c->stage_fd = -1;
}

static void cmd_stage(conn *c, resp_arg *argv, size_t argc) {
  (void)argc;
  if (!shm_allowed(c)) return;
  long long n;
  if (arg_ll(&argv[1], &n) != 0 || n <= 0) {
    err_not_int(c);
    return;
  }
  if ((uint64_t)n > g_srv.value_max) {
    reply_error(c, "ERR value too large: a staging area larger than the "
                   "largest value the store takes (%llu bytes)",
                (unsigned long long)g_srv.value_max);
    return;
  }
  /* sealed at its size: a client that truncated it would crash the
   * daemon reading it (SIGBUS) */
  int fd = memfd_create("cascade-stage", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  void *p = MAP_FAILED;
  if (fd >= 0 && ftruncate(fd, (off_t)n) == 0 &&
      fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) == 0)
    p = mmap(NULL, (size_t)n, PROT_READ, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) {
    int e = errno;
    if (fd >= 0) close(fd);
    reply_error(c, "ERR cannot make a staging area of %lld bytes: %s", n,
                strerror(e));
    return;
  }
  stage_drop(c);
  c->stage = p;
  c->stage_len = (uint64_t)n;
  c->stage_fd = fd; /* kept: pages of a put are given back (cmd_putstaged) */
  c->send_fd = fd; /* owned by stage_fd */
  reply_array(c, 1);
  reply_int(c, n);
}

/* The staged value at (off, len) of a PUTSTAGED item, checked against the
 * staging area: 0, or -1 after the error reply. */
static int stage_slice(conn *c, const resp_arg *off_arg,
                       const resp_arg *len_arg, const uint8_t **p,
                       size_t *len) {
  long long off, n;
  if (arg_ll(off_arg, &off) != 0 || arg_ll(len_arg, &n) != 0) {
    err_not_int(c);
    return -1;
  }
  if (!c->stage) {
    reply_error(c, "ERR no staging area: CASCADE.STAGE first");
    return -1;
  }
  if (off < 0 || n < 0 || (uint64_t)off > c->stage_len ||
      (uint64_t)n > c->stage_len - (uint64_t)off) {
    reply_error(c, "ERR offset/length outside the staging area (%llu bytes)",
                (unsigned long long)c->stage_len);
    return -1;
  }
  *p = c->stage + off;
  *len = (size_t)n;
  return 0;
}

/* The store has its copies of the staged values in [start, end): give
 * back their staging pages beyond the first STAGE_KEEP bytes, so that a
 * staging area costs at most that much memory between puts, however large
 * a put was (or claimed to be).  The first STAGE_KEEP stay: freeing and
 * faulting them in again on every put (both sides, zeroed by the kernel)
 * would cost more than the copy. */
static void stage_trim(conn *c, uint64_t start, uint64_t end) {
  if (start < STAGE_KEEP) start = STAGE_KEEP;
  if (end > start)
    (void)fallocate(c->stage_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                    (off_t)start, (off_t)(end - start));
}

static void cmd_putstaged(conn *c, resp_arg *argv, size_t argc) {
  const uint8_t *p;
  size_t len;
  cascade_put_opts o;
  if (!shm_allowed(c) || !key_ok(c, &argv[1]) ||
      stage_slice(c, &argv[2], &argv[3], &p, &len) != 0 ||
      put_opts(c, argv, 4, argc, &o) != 0)
    return;
  put_reply(c, cascade_put(g_srv.store, c->ns, argv[1].p, argv[1].len, p,
                           len, &o));
  stage_trim(c, (uint64_t)(p - c->stage), (uint64_t)(p - c->stage) + len);
}

/* CASCADE.MPUTSTAGED key off len [key off len ...] -> an array, per value
 * what CASCADE.PUTSTAGED (without options) answers: a request's values
 * stored by one cascade_put_batch, so that the store hashes them on its
 * hash pool's threads.  A bad argument fails the whole command (nothing
 * stored). */
static void cmd_mputstaged(conn *c, resp_arg *argv, size_t argc) {
  if (!shm_allowed(c)) return;
  if ((argc - 1) % 3 != 0) {
    err_arity(c, "CASCADE.MPUTSTAGED");
    return;
  }
  size_t n = (argc - 1) / 3;
  cascade_put_item stack_it[16];
  cascade_put_item *it = n <= 16 ? stack_it : calloc(n, sizeof *it);
  if (!it) {
    err_store(c, -ENOMEM);
    return;
  }
  uint64_t start = UINT64_MAX, end = 0;
  for (size_t i = 0; i < n; i++) {
    const resp_arg *a = &argv[1 + 3 * i];
    const uint8_t *p;
    size_t len;
    if (!key_ok(c, &a[0]) || stage_slice(c, &a[1], &a[2], &p, &len) != 0)
      goto out;
    it[i] = (cascade_put_item){a[0].p, a[0].len, p, len, NULL, 0};
    uint64_t o = (uint64_t)(p - c->stage);
    if (o < start) start = o;
    if (o + len > end) end = o + len;
  }
  int stored = cascade_put_batch(g_srv.store, c->ns, it, n);
  if (stored < 0) {
    err_store(c, stored);
    goto out;
  }
  reply_array(c, (int64_t)n);
  for (size_t i = 0; i < n; i++) put_reply(c, it[i].rc);
  stage_trim(c, start, end); /* the values lie between, all stored */
out:
  if (it != stack_it) free(it);
}

void cmd_conn_gone(conn *c) {
  for (size_t i = 0; i < c->npins; i++) {
    held_put(&c->pins[i].view);
    free(c->pins[i].key);
  }
  c->npins = 0;
  /* a client that crashed holding leases leaves no block pinned */
  for (size_t i = 0; i < c->lused; i++)
    if (c->leases[i].id) held_put(&c->leases[i].view);
  c->nleases = c->lused = c->nlfree = 0;
  stage_drop(c);
}

/* ---- the table ------------------------------------------------------------ */

/* The most used first: lookups walk it in order. */
static const command commands[] = {
    {"GET", cmd_get, 2, 0, 1, 1, 1},
    {"SET", cmd_set, -3, 0, 1, 1, 1},
    {"EXISTS", cmd_exists, -2, 0, 1, -1, 1},
    {"MGET", cmd_mget, -2, 0, 1, -1, 1},
    {"MSET", cmd_mset, -3, 0, 1, -1, 2},
    {"DEL", cmd_del, -2, 0, 1, -1, 1},
    {"UNLINK", cmd_del, -2, 0, 1, -1, 1},
    {"GETRANGE", cmd_getrange, 4, 0, 1, 1, 1},
    {"STRLEN", cmd_strlen, 2, 0, 1, 1, 1},
    {"CASCADE.PUT", cmd_cput, -3, 0, 1, 1, 1},
    {"CASCADE.MATCH", cmd_cmatch, -2, 0, 1, -1, 1},
    {"CASCADE.PIN", cmd_cpin, 2, 0, 1, 1, 1},
    {"CASCADE.UNPIN", cmd_cunpin, 2, 0, 1, 1, 1},
    {"CASCADE.STATS", cmd_cstats, 1, 0, 0, 0, 0},
    {"CASCADE.LEASE", cmd_lease, -2, 0, 1, -1, 1},
    {"CASCADE.RELEASE", cmd_release, -2, 0, 0, 0, 0},
    {"CASCADE.SHMINDEX", cmd_shmindex, 1, 0, 0, 0, 0},
    {"CASCADE.TOUCH", cmd_touch, -2, 0, 1, -1, 1},
    {"CASCADE.MPUTSTAGED", cmd_mputstaged, -4, 0, 1, -1, 3},
    {"CASCADE.PUTSTAGED", cmd_putstaged, -4, 0, 1, 1, 1},
    {"CASCADE.STAGE", cmd_stage, 2, 0, 0, 0, 0},
    {"CASCADE.SHM", cmd_shm, 1, 0, 0, 0, 0},
    {"PING", cmd_ping, -1, 0, 0, 0, 0},
    {"ECHO", cmd_echo, 2, 0, 0, 0, 0},
    {"EXPIRE", cmd_expire, -3, 0, 1, 1, 1},
    {"PEXPIRE", cmd_pexpire, -3, 0, 1, 1, 1},
    {"TTL", cmd_ttl, 2, 0, 1, 1, 1},
    {"PTTL", cmd_pttl, 2, 0, 1, 1, 1},
    {"PERSIST", cmd_persist, 2, 0, 1, 1, 1},
    {"DBSIZE", cmd_dbsize, 1, 0, 0, 0, 0},
    {"FLUSHDB", cmd_flushdb, -1, 0, 0, 0, 0},
    {"FLUSHALL", cmd_flushdb, -1, 0, 0, 0, 0},
    {"AUTH", cmd_auth, -2, F_NOAUTH, 0, 0, 0},
    {"HELLO", cmd_hello, -1, F_NOAUTH, 0, 0, 0},
    {"SELECT", cmd_select, 2, 0, 0, 0, 0},
    {"QUIT", cmd_quit, -1, F_NOAUTH, 0, 0, 0},
    {"INFO", cmd_info, -1, 0, 0, 0, 0},
    {"CONFIG", cmd_config, -2, 0, 0, 0, 0},
    {"COMMAND", cmd_command, -1, 0, 0, 0, 0},
    {"CLIENT", cmd_client, -2, 0, 0, 0, 0},
    {"SHUTDOWN", cmd_shutdown, -1, 0, 0, 0, 0},
};

static const command *cmd_table(size_t *n) {
  *n = sizeof commands / sizeof commands[0];
  return commands;
}

void cmd_exec(conn *c, resp_arg *argv, size_t argc) {
  const command *e = NULL;
  for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
    if (aeq(&argv[0], commands[i].name)) {
      e = &commands[i];
      break;
    }
  if (!e) {
    /* Redis's wording: the name and the first arguments, shortened */
    char args[160] = "";
    size_t o = 0;
    for (size_t i = 1; i < argc && o < sizeof args - 40; i++)
      o += (size_t)snprintf(args + o, sizeof args - o, "'%.*s' ",
                            (int)(argv[i].len > 32 ? 32 : argv[i].len),
                            argv[i].p);
    reply_error(c, "ERR unknown command '%.*s', with args beginning with: %s",
                (int)(argv[0].len > 64 ? 64 : argv[0].len), argv[0].p, args);
    return;
  }
  if ((e->arity > 0 && argc != (size_t)e->arity) ||
      (e->arity < 0 && argc < (size_t)-e->arity)) {
    err_arity(c, e->name);
    return;
  }
  if (!c->ns && !(e->flags & F_NOAUTH)) {
    reply_error(c, "NOAUTH Authentication required.");
    return;
  }
  e->fn(c, argv, argc);
}
