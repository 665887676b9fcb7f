/*
 * servers.c - real servers started by the benchmarks (bench server, bench
 * suite): find the program, pick a free loopback port, spawn it with its
 * output in a log file and a death signal, wait until it answers PING over
 * RESP, and stop it (SHUTDOWN NOSAVE, SIGKILL after a grace period) and
 * reap it.
 *
 * Also the RESP client of `bench suite`'s server adapters (redis,
 * cascade-server): a batch of SET, GET or EXISTS sent as one pipeline with
 * hiredis (redisAppendCommandArgv: no format parsing), then its replies
 * read in order.
 *
 * A cli_server is owned by its caller; pid 0 means "not running".  A
 * spawned child gets PR_SET_PDEATHSIG(SIGKILL), so it never outlives the
 * tool, even when the tool is killed.  Every call here is made from the
 * tool's main thread.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hiredis.h>

#include "cli.h"
#include "suite.h"

int cli_find_on_path(const char *name, char *out, size_t cap) {
  const char *path = getenv("PATH");

  if (path == NULL || *path == '\0') path = "/usr/local/bin:/usr/bin:/bin";
  while (*path != '\0') {
    size_t len = strcspn(path, ":");

    if (len > 0 && len + strlen(name) + 2 < cap) {
      snprintf(out, cap, "%.*s/%s", (int)len, path, name);
      if (access(out, X_OK) == 0) return 0;
    }
    path += len;
    if (*path == ':') path++;
  }
  out[0] = '\0';
  return -1;
}

int cli_exe_dir(char *out, size_t cap, int up) {
  ssize_t n = readlink("/proc/self/exe", out, cap - 1);

  if (n <= 0) return -1;
  out[n] = '\0';
  for (int k = 0; k < up; k++) {
    char *slash = strrchr(out, '/');

    if (slash == NULL) return -1;
    *slash = '\0';
  }
  return 0;
}

int cli_find_cascaded(const char *opt, char *out, size_t cap) {
  char exe[1024];

  if (opt != NULL) {
    snprintf(out, cap, "%s", opt);
    return access(out, X_OK);
  }
  if (cli_exe_dir(exe, sizeof exe, 1) == 0) {
    snprintf(out, cap, "%.1000s/cascaded", exe);
    if (access(out, X_OK) == 0) return 0;
  }
  return cli_find_on_path("cascaded", out, cap);
}

int cli_free_port(void) {
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t al = sizeof a;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port = -1;

  if (fd < 0) return -1;
  if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
      getsockname(fd, (struct sockaddr *)&a, &al) == 0)
    port = ntohs(a.sin_port);
  close(fd);
  return port;
}

pid_t cli_spawn(char *const argv[], const char *logpath) {
  pid_t parent = getpid(), pid;
  int lfd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

  if (lfd < 0) return -1;
  pid = fork();
  if (pid == 0) {
    int nul = open("/dev/null", O_RDONLY);

    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    if (nul >= 0) dup2(nul, 0);
    dup2(lfd, 1);
    dup2(lfd, 2);
    signal(SIGPIPE, SIG_DFL);
    execv(argv[0], argv);
    dprintf(2, "cannot run %s: %s\n", argv[0], strerror(errno));
    _exit(127);
  }
  close(lfd);
  return pid;
}

void cli_log_tail(const char *path, char *out, size_t cap) {
  char buf[401];
  FILE *f = fopen(path, "r");
  size_t n = 0;
  long sz;

  out[0] = '\0';
  if (f == NULL) return;
  fseek(f, 0, SEEK_END);
  sz = ftell(f);
  if (sz > 400) fseek(f, sz - 400, SEEK_SET);
  else fseek(f, 0, SEEK_SET);
  n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  for (size_t i = 0; i < n; i++)
    if (buf[i] == '\n' || buf[i] == '\r') buf[i] = ' ';
  snprintf(out, cap, "%s", buf);
}

redisContext *cli_connect_tcp(int port, double timeout_s) {
  struct timeval tv = {(time_t)timeout_s,
                       (suseconds_t)((timeout_s - (time_t)timeout_s) * 1e6)};
  struct timeval io = {CLI_SERVER_IO_TIMEOUT_S, 0};
  redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);

  if (c == NULL) return NULL;
  if (c->err) {
    redisFree(c);
    return NULL;
  }
  redisSetTimeout(c, io);
  return c;
}

void cli_server_kill(cli_server *s) {
  if (s->admin != NULL) redisFree(s->admin);
  s->admin = NULL;
  if (s->pid > 0) {
    kill(s->pid, SIGKILL);
    while (waitpid(s->pid, NULL, 0) < 0 && errno == EINTR)
      ;
  }
  s->pid = 0;
}

/* Wait up to secs for the process to exit; 1 if it did (status in *st). */
static int wait_exit(pid_t pid, double secs, int *st) {
  double end = cli_now() + secs;

  for (;;) {
    pid_t r = waitpid(pid, st, WNOHANG);

    if (r == pid) return 1;
    if (r < 0 && errno != EINTR) return 1;
    if (cli_now() >= end) return 0;
    usleep(10000);
  }
}

void cli_stop_pid(pid_t pid, double secs) {
  int st;

  kill(pid, SIGTERM);
  if (!wait_exit(pid, secs, &st)) {
    kill(pid, SIGKILL);
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
      ;
  }
}

int cli_server_start(cli_server *s, char *const argv[], char *err,
                     size_t cap) {
  double end;
  int st = 0;

  s->pid = cli_spawn(argv, s->log);
  if (s->pid < 0) {
    s->pid = 0;
    snprintf(err, cap, "cannot start %s: %s", s->path, strerror(errno));
    return -1;
  }
  end = cli_now() + CLI_SERVER_START_S;
  while (cli_now() < end) {
    redisReply *r;

    if (waitpid(s->pid, &st, WNOHANG) == s->pid) {
      char tail[512];
      int n;

      s->pid = 0;
      cli_log_tail(s->log, tail, sizeof tail);
      /* the message is cut to cap: the log tail is last */
      n = snprintf(err, cap, "%s exited at start (status %d): ", s->path,
                   WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
      if (n > 0 && (size_t)n < cap)
        memcpy(err + n, tail, strnlen(tail, cap - (size_t)n - 1) + 1);
      err[cap - 1] = 0;
      return -1;
    }
    s->admin = cli_connect_tcp(s->port, 0.2);
    if (s->admin != NULL) {
      r = redisCommand(s->admin, "PING");
      if (r != NULL && r->type == REDIS_REPLY_STATUS &&
          strcmp(r->str, "PONG") == 0) {
        freeReplyObject(r);
        return 0;
      }
      if (r != NULL) freeReplyObject(r);
      redisFree(s->admin);
      s->admin = NULL;
    }
    usleep(20000);
  }
  snprintf(err, cap, "%s did not answer PING on port %d in %d s", s->path,
           s->port, CLI_SERVER_START_S);
  cli_server_kill(s);
  return -1;
}

int cli_server_stop(cli_server *s) {
  int st = 0;

  if (s->pid <= 0) return 0;
  if (s->admin != NULL) {
    redisReply *r = redisCommand(s->admin, "SHUTDOWN NOSAVE");

    if (r != NULL) freeReplyObject(r);
    redisFree(s->admin);
    s->admin = NULL;
  } else {
    kill(s->pid, SIGTERM);
  }
  if (!wait_exit(s->pid, CLI_SERVER_STOP_S, &st)) {
    cli_server_kill(s);
    return -ETIMEDOUT;
  }
  s->pid = 0;
  return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

void cli_redis_info(redisContext *c, const char *field, char *out,
                    size_t cap) {
  redisReply *r = redisCommand(c, "INFO server");
  size_t fl = strlen(field);

  snprintf(out, cap, "?");
  if (r == NULL) return;
  if (r->type == REDIS_REPLY_STRING) {
    for (const char *p = r->str; p != NULL && *p; p = strchr(p, '\n')) {
      if (*p == '\n') p++;
      if (strncmp(p, field, fl) == 0 && p[fl] == ':') {
        snprintf(out, cap, "%.*s", (int)strcspn(p + fl + 1, "\r\n"),
                 p + fl + 1);
        break;
      }
    }
  }
  freeReplyObject(r);
}

void cli_redis_config_get(redisContext *c, const char *name, char *out,
                          size_t cap) {
  redisReply *r = redisCommand(c, "CONFIG GET %s", name);

  snprintf(out, cap, "?");
  if (r == NULL) return;
  if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
      r->element[1]->type == REDIS_REPLY_STRING)
    snprintf(out, cap, "%s", r->element[1]->str);
  freeReplyObject(r);
}

/* ---- Pipelined batches (bench suite) -------------------------------------- */

static int resp_fail(redisContext *c, const char *what, char *msg,
                     size_t cap) {
  snprintf(msg, cap, "%s: %s", what, c->errstr[0] ? c->errstr : "failed");
  return c->err == REDIS_ERR_IO && errno != 0 ? -errno : -EPROTO;
}

/* Append n commands "cmd key [value]" to the output buffer of c. */
static int resp_append(redisContext *c, const char *cmd, suite_item *it,
                       int n, int with_value, char *msg, size_t cap) {
  for (int k = 0; k < n; k++) {
    const char *argv[3] = {cmd, it[k].key, it[k].val};
    size_t len[3] = {strlen(cmd), it[k].klen, it[k].vlen};

    if (redisAppendCommandArgv(c, with_value ? 3 : 2, argv, len) != REDIS_OK)
      return resp_fail(c, cmd, msg, cap);
  }
  return 0;
}

int cli_resp_put(struct redisContext *c, struct suite_item *it, int n,
                 char *msg, size_t cap) {
  int ok = 0, rc = resp_append(c, "SET", it, n, 1, msg, cap);

  if (rc != 0) return rc;
  for (int k = 0; k < n; k++) {
    redisReply *r = NULL;

    if (redisGetReply(c, (void **)&r) != REDIS_OK || r == NULL)
      return resp_fail(c, "SET reply", msg, cap);
    if (r->type == REDIS_REPLY_STATUS && strcmp(r->str, "OK") == 0) {
      it[k].rc = 0;
      ok++;
    } else {
      it[k].rc = -EIO;
      snprintf(msg, cap, "SET: %s",
               r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
    }
    freeReplyObject(r);
  }
  return ok;
}

int cli_resp_get(struct redisContext *c, struct suite_item *it, int n,
                 char *msg, size_t cap) {
  int ok = 0, rc = resp_append(c, "GET", it, n, 0, msg, cap);

  if (rc != 0) return rc;
  for (int k = 0; k < n; k++) {
    redisReply *r = NULL;

    if (redisGetReply(c, (void **)&r) != REDIS_OK || r == NULL)
      return resp_fail(c, "GET reply", msg, cap);
    if (r->type == REDIS_REPLY_STRING) {
      if (r->len <= it[k].vlen) {
        memcpy(it[k].val, r->str, r->len);
        it[k].rc = 0;
        ok++;
      } else {
        it[k].rc = -ENOBUFS;
      }
      it[k].vlen = r->len;
    } else if (r->type == REDIS_REPLY_NIL) {
      it[k].rc = -ENOENT;
    } else {
      it[k].rc = -EIO;
      snprintf(msg, cap, "GET: %s",
               r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
    }
    freeReplyObject(r);
  }
  return ok;
}

int cli_resp_contains(struct redisContext *c, struct suite_item *it, int n,
                      char *msg, size_t cap) {
  int found = 0, rc = resp_append(c, "EXISTS", it, n, 0, msg, cap);

  if (rc != 0) return rc;
  for (int k = 0; k < n; k++) {
    redisReply *r = NULL;

    if (redisGetReply(c, (void **)&r) != REDIS_OK || r == NULL)
      return resp_fail(c, "EXISTS reply", msg, cap);
    if (r->type == REDIS_REPLY_INTEGER) {
      it[k].rc = r->integer > 0 ? 0 : -ENOENT;
      found += r->integer > 0;
    } else {
      it[k].rc = -EIO;
    }
    freeReplyObject(r);
  }
  return found;
}

int cli_resp_flush(struct redisContext *c, char *msg, size_t cap) {
  redisReply *r = redisCommand(c, "FLUSHALL");
  int ok = r != NULL && r->type == REDIS_REPLY_STATUS;

  if (!ok)
    snprintf(msg, cap, "FLUSHALL: %s",
             r == NULL                      ? c->errstr
             : r->type == REDIS_REPLY_ERROR ? r->str
                                            : "unexpected reply");
  if (r != NULL) freeReplyObject(r);
  return ok ? 0 : -EIO;
}
