/*
 * test_hiredis.c - cascaded through hiredis, the C client most Redis
 * connectors build on (synchronous API).
 *
 * What it checks (the real daemon binary, started here with fork/exec on a
 * free loopback port and a Unix socket in a fresh temp dir):
 *   - TCP and Unix-socket connections; a key written over one is read over
 *     the other;
 *   - pipelined SET/GET of 32 x 1 MiB values (redisAppendCommand, then
 *     redisGetReply for each), byte-exact, and the same through MGET;
 *   - binary keys and values (NUL, CR, LF, every byte value) with %b;
 *   - reply types: status, integer (EXISTS/DEL/STRLEN), nil, arrays with
 *     nil elements (MGET), and errors as REDIS_REPLY_ERROR with Redis's
 *     wording, after which the connection still works;
 *   - SIGTERM: the daemon exits 0 and its stderr holds no sanitizer report.
 *
 * Usage: test_hiredis /path/to/cascaded   (or CASCADED=...)
 * Exit 0 pass, 1 fail, 77 skip (no daemon binary given).
 * Build: cc -std=c11 test_hiredis.c -lhiredis  (CMake: only if hiredis is
 * found).
 */
#define _GNU_SOURCE
#include <hiredis/hiredis.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char g_tmp[256];
static char g_sock[300];
static char g_err[300];
static pid_t g_pid = -1;
static int g_port;
static int g_failed;

#define CHECK(cond, ...)                                                      \
  do {                                                                        \
    if (!(cond)) {                                                            \
      fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);         \
      fprintf(stderr, __VA_ARGS__);                                           \
      fputc('\n', stderr);                                                    \
      g_failed = 1;                                                           \
      return -1;                                                              \
    }                                                                         \
  } while (0)

static void msleep(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static int free_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t l = sizeof a;
  if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
      getsockname(fd, (struct sockaddr *)&a, &l) != 0) {
    perror("free_port");
    exit(1);
  }
  close(fd);
  return ntohs(a.sin_port);
}

static void dump_stderr(void) {
  FILE *f = fopen(g_err, "r");
  if (!f) return;
  char line[1024];
  fprintf(stderr, "--- daemon stderr\n");
  while (fgets(line, sizeof line, f)) fputs(line, stderr);
  fclose(f);
}

static int stderr_has_sanitizer_report(void) {
  FILE *f = fopen(g_err, "r");
  if (!f) return 0;
  char line[4096];
  int bad = 0;
  while (fgets(line, sizeof line, f))
    if (strstr(line, "ERROR: AddressSanitizer") ||
        strstr(line, "ERROR: LeakSanitizer") || strstr(line, "runtime error:"))
      bad = 1;
  fclose(f);
  return bad;
}

static int start_daemon(const char *bin) {
  g_port = free_port();
  g_pid = fork();
  if (g_pid < 0) return -1;
  if (g_pid == 0) {
    int fd = open(g_err, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int nul = open("/dev/null", O_RDONLY);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    if (nul >= 0) dup2(nul, 0);
    char port[16];
    snprintf(port, sizeof port, "%d", g_port);
    execl(bin, bin, "--port", port, "--unixsocket", g_sock, "--dram", "256m",
          "--threads", "2", (char *)NULL);
    _exit(127);
  }
  for (int i = 0; i < 600; i++) { /* up to a minute (sanitizer builds) */
    int st;
    if (waitpid(g_pid, &st, WNOHANG) == g_pid) {
      g_pid = -1;
      return -1;
    }
    struct timeval tv = {1, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", g_port, tv);
    if (c && !c->err) {
      redisReply *r = redisCommand(c, "PING");
      int ok = r && r->type == REDIS_REPLY_STATUS && !strcmp(r->str, "PONG");
      if (r) freeReplyObject(r);
      redisFree(c);
      if (ok) return 0;
    } else if (c) {
      redisFree(c);
    }
    msleep(100);
  }
  return -1;
}

static int stop_daemon(void) {
  if (g_pid <= 0) return -1;
  kill(g_pid, SIGTERM);
  int st = 0;
  for (int i = 0; i < 900; i++) {
    pid_t p = waitpid(g_pid, &st, WNOHANG);
    if (p == g_pid) break;
    if (i == 899) {
      kill(g_pid, SIGKILL);
      waitpid(g_pid, &st, 0);
      fprintf(stderr, "FAIL: daemon did not stop within 90 s\n");
      g_pid = -1;
      return -1;
    }
    msleep(100);
  }
  g_pid = -1;
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
    fprintf(stderr, "FAIL: daemon exit status %d (signal %d)\n",
            WIFEXITED(st) ? WEXITSTATUS(st) : -1,
            WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    return -1;
  }
  if (stderr_has_sanitizer_report()) {
    fprintf(stderr, "FAIL: sanitizer report in daemon stderr\n");
    return -1;
  }
  return 0;
}

static redisContext *tcp(void) {
  struct timeval tv = {30, 0};
  redisContext *c = redisConnectWithTimeout("127.0.0.1", g_port, tv);
  if (c && !c->err) redisSetTimeout(c, tv);
  return c;
}

/* A reply of an expected type; prints and frees on mismatch. */
static int expect_status(redisContext *c, redisReply *r, const char *want) {
  int ok = r && r->type == REDIS_REPLY_STATUS && !strcmp(r->str, want);
  if (!ok)
    fprintf(stderr, "  want +%s, got type %d %s (ctx err %s)\n", want,
            r ? r->type : -1, r && r->str ? r->str : "", c->errstr);
  if (r) freeReplyObject(r);
  return ok;
}

static int expect_int(redisReply *r, long long want) {
  int ok = r && r->type == REDIS_REPLY_INTEGER && r->integer == want;
  if (!ok)
    fprintf(stderr, "  want :%lld, got type %d %lld %s\n", want,
            r ? r->type : -1, r ? r->integer : 0, r && r->str ? r->str : "");
  if (r) freeReplyObject(r);
  return ok;
}

static int expect_error(redisReply *r, const char *needle) {
  int ok = r && r->type == REDIS_REPLY_ERROR && strstr(r->str, needle);
  if (!ok)
    fprintf(stderr, "  want an error with '%s', got type %d %s\n", needle,
            r ? r->type : -1, r && r->str ? r->str : "");
  if (r) freeReplyObject(r);
  return ok;
}

static int expect_bulk(redisReply *r, const void *want, size_t n) {
  int ok = r && r->type == REDIS_REPLY_STRING && r->len == n &&
           memcmp(r->str, want, n) == 0;
  if (!ok)
    fprintf(stderr, "  want a %zu-byte bulk, got type %d len %zu\n", n,
            r ? r->type : -1, r ? r->len : 0);
  if (r) freeReplyObject(r);
  return ok;
}

static int test_basic_tcp_unix(void) {
  redisContext *c = tcp();
  CHECK(c && !c->err, "connect tcp: %s", c ? c->errstr : "oom");
  CHECK(expect_status(c, redisCommand(c, "SET %s %s", "hk", "hello"), "OK"),
        "SET");
  CHECK(expect_bulk(redisCommand(c, "GET %s", "hk"), "hello", 5), "GET");
  redisReply *r = redisCommand(c, "GET %s", "absent");
  CHECK(r && r->type == REDIS_REPLY_NIL, "GET absent: type %d",
        r ? r->type : -1);
  freeReplyObject(r);
  CHECK(expect_int(redisCommand(c, "EXISTS hk absent hk"), 2), "EXISTS");
  CHECK(expect_int(redisCommand(c, "STRLEN hk"), 5), "STRLEN");

  redisContext *u = redisConnectUnix(g_sock);
  CHECK(u && !u->err, "connect unix %s: %s", g_sock, u ? u->errstr : "oom");
  CHECK(expect_bulk(redisCommand(u, "GET %s", "hk"), "hello", 5),
        "GET over unix socket");
  CHECK(expect_status(u, redisCommand(u, "SET %s %s", "uk", "via-unix"),
                      "OK"),
        "SET over unix");
  CHECK(expect_bulk(redisCommand(c, "GET uk"), "via-unix", 8),
        "unix SET seen over tcp");
  CHECK(expect_int(redisCommand(u, "DEL hk uk absent"), 2), "DEL");
  redisFree(u);
  redisFree(c);
  return 0;
}

static int test_binary(void) {
  redisContext *c = tcp();
  CHECK(c && !c->err, "connect");
  unsigned char all[256];
  for (int i = 0; i < 256; i++) all[i] = (unsigned char)i;
  const char k1[] = "bin\0key\r\n*1\r\n$3";
  unsigned char val[4096];
  for (size_t i = 0; i < sizeof val; i++) val[i] = (unsigned char)(i * 7);
  CHECK(expect_status(c,
                      redisCommand(c, "SET %b %b", k1, sizeof k1 - 1, val,
                                   sizeof val),
                      "OK"),
        "SET binary");
  CHECK(expect_status(c,
                      redisCommand(c, "SET %b %b", all, sizeof all, all,
                                   sizeof all),
                      "OK"),
        "SET all bytes");
  CHECK(expect_status(c, redisCommand(c, "SET %b %b", "\0", (size_t)1, "",
                                      (size_t)0),
                      "OK"),
        "SET NUL key, empty value");
  CHECK(expect_bulk(redisCommand(c, "GET %b", k1, sizeof k1 - 1), val,
                    sizeof val),
        "GET binary");
  CHECK(expect_bulk(redisCommand(c, "GET %b", all, sizeof all), all,
                    sizeof all),
        "GET all bytes");
  CHECK(expect_bulk(redisCommand(c, "GET %b", "\0", (size_t)1), "", 0),
        "GET NUL key");
  /* a key differing only after a NUL is another key */
  redisReply *r = redisCommand(c, "GET %b", "bin\0kez\r\n*1\r\n$3",
                               sizeof k1 - 1);
  CHECK(r && r->type == REDIS_REPLY_NIL, "near-miss binary key found");
  freeReplyObject(r);
  redisFree(c);
  return 0;
}

static int test_pipeline_1mib(void) {
  enum { N = 32, SZ = 1 << 20 };
  redisContext *c = tcp();
  CHECK(c && !c->err, "connect");
  unsigned char *vals = malloc((size_t)N * SZ);
  CHECK(vals != NULL, "malloc");
  uint64_t x = 0x9e3779b97f4a7c15ULL;
  for (size_t i = 0; i < (size_t)N * SZ; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    vals[i] = (unsigned char)x;
  }
  for (int i = 0; i < N; i++) {
    char k[32];
    int kl = snprintf(k, sizeof k, "pipe:%d", i);
    redisAppendCommand(c, "SET %b %b", k, (size_t)kl, vals + (size_t)i * SZ,
                       (size_t)SZ);
  }
  for (int i = 0; i < N; i++) {
    char k[32];
    int kl = snprintf(k, sizeof k, "pipe:%d", i);
    redisAppendCommand(c, "GET %b", k, (size_t)kl);
  }
  int bad = 0;
  for (int i = 0; i < N; i++) {
    redisReply *r = NULL;
    if (redisGetReply(c, (void **)&r) != REDIS_OK || !expect_status(c, r, "OK"))
      bad++;
  }
  for (int i = 0; i < N; i++) {
    redisReply *r = NULL;
    if (redisGetReply(c, (void **)&r) != REDIS_OK ||
        !expect_bulk(r, vals + (size_t)i * SZ, SZ))
      bad++;
  }
  if (bad) free(vals);
  CHECK(bad == 0, "%d pipelined replies wrong", bad);
  /* the same through one MGET */
  const char *argv[N + 1];
  size_t argl[N + 1];
  char keys[N][32];
  argv[0] = "MGET";
  argl[0] = 4;
  for (int i = 0; i < N; i++) {
    argl[i + 1] = (size_t)snprintf(keys[i], sizeof keys[i], "pipe:%d", i);
    argv[i + 1] = keys[i];
  }
  redisReply *r = redisCommandArgv(c, N + 1, argv, argl);
  int ok = r && r->type == REDIS_REPLY_ARRAY && r->elements == N;
  for (int i = 0; ok && i < N; i++)
    ok = r->element[i]->type == REDIS_REPLY_STRING &&
         r->element[i]->len == SZ &&
         memcmp(r->element[i]->str, vals + (size_t)i * SZ, SZ) == 0;
  if (r) freeReplyObject(r);
  free(vals);
  CHECK(ok, "MGET of 32 x 1 MiB differs");
  redisFree(c);
  return 0;
}

static int test_errors(void) {
  redisContext *c = tcp();
  CHECK(c && !c->err, "connect");
  CHECK(expect_error(redisCommand(c, "GET"),
                     "ERR wrong number of arguments for 'get' command"),
        "GET arity");
  CHECK(expect_error(redisCommand(c, "NOSUCHCMD a"),
                     "ERR unknown command 'NOSUCHCMD'"),
        "unknown command");
  CHECK(expect_error(redisCommand(c, "SELECT 1"), "DB index is out of range"),
        "SELECT 1");
  CHECK(expect_error(redisCommand(c, "SET k v EX 0"),
                     "invalid expire time in 'set' command"),
        "SET EX 0");
  CHECK(expect_error(redisCommand(c, "SET k v NX XX"), "ERR syntax error"),
        "SET NX XX");
  CHECK(expect_error(redisCommand(c, "HELLO 3"), "NOPROTO"), "HELLO 3");
  CHECK(expect_error(redisCommand(c, "AUTH x"), "without any password"),
        "AUTH without a password");
  /* the connection still works; the failed SETs stored nothing */
  CHECK(expect_status(c, redisCommand(c, "PING"), "PONG"), "PING after errors");
  CHECK(expect_int(redisCommand(c, "EXISTS k"), 0), "failed SET stored");
  /* MGET: nil elements for missing keys */
  CHECK(expect_status(c, redisCommand(c, "MSET a 1 c 3"), "OK"), "MSET");
  redisReply *r = redisCommand(c, "MGET a b c");
  CHECK(r && r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
            r->element[0]->type == REDIS_REPLY_STRING &&
            r->element[1]->type == REDIS_REPLY_NIL &&
            r->element[2]->type == REDIS_REPLY_STRING &&
            !strcmp(r->element[2]->str, "3"),
        "MGET with a missing key");
  freeReplyObject(r);
  /* errors inside a pipeline keep their place */
  redisAppendCommand(c, "SET p1 v");
  redisAppendCommand(c, "GETRANGE p1 x 1");
  redisAppendCommand(c, "GET p1");
  redisReply *r1 = NULL, *r2 = NULL, *r3 = NULL;
  CHECK(redisGetReply(c, (void **)&r1) == REDIS_OK &&
            redisGetReply(c, (void **)&r2) == REDIS_OK &&
            redisGetReply(c, (void **)&r3) == REDIS_OK,
        "pipeline replies");
  CHECK(expect_status(c, r1, "OK"), "pipelined SET");
  CHECK(expect_error(r2, "value is not an integer"), "pipelined error");
  CHECK(expect_bulk(r3, "v", 1), "pipelined GET after an error");
  redisFree(c);
  return 0;
}

int main(int argc, char **argv) {
  const char *bin = argc > 1 ? argv[1] : getenv("CASCADED");
  if (!bin || access(bin, X_OK) != 0) {
    printf("SKIP: cascaded binary not given (argv[1] or $CASCADED)\n");
    return 77;
  }
  signal(SIGPIPE, SIG_IGN);
  const char *td = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
  snprintf(g_tmp, sizeof g_tmp, "%s/cascaded-hiredis.XXXXXX", td);
  if (!mkdtemp(g_tmp)) {
    perror("mkdtemp");
    return 1;
  }
  snprintf(g_sock, sizeof g_sock, "%s/c.sock", g_tmp);
  snprintf(g_err, sizeof g_err, "%s/stderr", g_tmp);
  int started = 0;
  for (int i = 0; i < 3 && !started; i++) started = start_daemon(bin) == 0;
  if (!started) {
    fprintf(stderr, "FAIL: cascaded did not start\n");
    dump_stderr();
    return 1;
  }
  struct {
    const char *name;
    int (*fn)(void);
  } tests[] = {{"tcp_unix", test_basic_tcp_unix},
               {"binary", test_binary},
               {"pipeline_1mib", test_pipeline_1mib},
               {"errors", test_errors}};
  int failed = 0;
  for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
    g_failed = 0;
    int r = tests[i].fn();
    printf("%s %s\n", r == 0 && !g_failed ? "ok  " : "FAIL", tests[i].name);
    if (r != 0 || g_failed) failed++;
  }
  if (stop_daemon() != 0) {
    dump_stderr();
    failed++;
  } else {
    printf("ok   stop (SIGTERM, exit 0)\n");
  }
  if (failed) dump_stderr();
  unlink(g_err);
  unlink(g_sock);
  rmdir(g_tmp);
  printf("%s\n", failed ? "FAILED" : "all passed");
  return failed ? 1 : 0;
}
