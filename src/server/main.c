/*
 * main.c - cascaded's start-up and shutdown.
 *
 * Order: settings (file, flags) -> checks (a non-loopback bind needs a
 * password) -> listeners (so a busy port fails before anything else) ->
 * daemonise -> pid file -> the store (the disk tier is rebuilt here) ->
 * workers -> wait for signals.  SIGTERM/SIGINT (or SHUTDOWN): the workers
 * stop accepting, send what replies are queued and close their clients;
 * then cascade_flush makes write-back blocks durable, the store closes and
 * the process exits 0.  SIGHUP reopens the log file (for logrotate).
 */
#define _GNU_SOURCE
#include "server/server.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static FILE *log_fp;
static int log_level = LOG_NOTICE;

void srv_log(int level, const char *fmt, ...) {
  if (level < log_level) return;
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  localtime_r(&ts.tv_sec, &tm);
  char tb[64];
  strftime(tb, sizeof tb, "%d %b %Y %H:%M:%S", &tm);
  static const char mark[] = ".-*#";
  pthread_mutex_lock(&log_mu);
  FILE *f = log_fp ? log_fp : stderr;
  fprintf(f, "%ld:M %s.%03ld %c ", (long)getpid(), tb, ts.tv_nsec / 1000000,
          mark[level & 3]);
  va_list ap;
  va_start(ap, fmt);
  vfprintf(f, fmt, ap);
  va_end(ap);
  fputc('\n', f);
  fflush(f);
  pthread_mutex_unlock(&log_mu);
}

static int log_open(const char *path) {
  FILE *f = fopen(path, "a");
  if (!f) return -1;
  pthread_mutex_lock(&log_mu);
  FILE *old = log_fp;
  log_fp = f;
  pthread_mutex_unlock(&log_mu);
  if (old) fclose(old);
  return 0;
}

/* Go to the background.  The parent waits until the child says how its
 * start-up went (ready_fd, see daemon_ready) and exits with that status, so
 * `cascaded --daemonize` fails when the daemon could not start (a busy
 * disk directory, say), as a script expects. */
static int ready_fd = -1;

static int daemonize(void) {
  int pfd[2];
  if (pipe(pfd) != 0) return -1;
  pid_t p = fork();
  if (p < 0) return -1;
  if (p > 0) {
    close(pfd[1]);
    unsigned char st = 1;
    ssize_t r;
    do r = read(pfd[0], &st, 1);
    while (r < 0 && errno == EINTR);
    _exit(r == 1 ? st : 1); /* no word (the child died): a failure */
  }
  close(pfd[0]);
  if (setsid() < 0) return -1;
  p = fork(); /* never a session leader again: no controlling terminal */
  if (p < 0) return -1;
  if (p > 0) _exit(0);
  ready_fd = pfd[1];
  int fd = open("/dev/null", O_RDWR);
  if (fd >= 0) {
    dup2(fd, STDIN_FILENO);
    dup2(fd, STDOUT_FILENO);
    if (log_fp) dup2(fd, STDERR_FILENO); /* no log file: stderr stays */
    if (fd > STDERR_FILENO) close(fd);
  }
  return 0;
}

/* Tell the waiting parent of --daemonize how start-up went (0: ready). */
static void daemon_ready(int status) {
  if (ready_fd < 0) return;
  unsigned char st = (unsigned char)status;
  ssize_t r = write(ready_fd, &st, 1);
  (void)r;
  close(ready_fd);
  ready_fd = -1;
}

static int write_pidfile(const char *path) {
  FILE *f = fopen(path, "w");
  if (!f) return -1;
  fprintf(f, "%ld\n", (long)getpid());
  return fclose(f);
}

int main(int argc, char **argv) {
  srv_conf cf;
  conf_init(&cf);
  int r = conf_from_args(&cf, argc, argv);
  if (r != 0) {
    conf_free(&cf);
    return r > 0 ? 0 : 1;
  }
  log_level = cf.loglevel;
  if (cf.logfile && log_open(cf.logfile) != 0) {
    fprintf(stderr, "cascaded: cannot open log file %s: %s\n", cf.logfile,
            strerror(errno));
    conf_free(&cf);
    return 1;
  }
  if (!conf_auth_required(&cf))
    for (int i = 0; i < cf.nbind; i++)
      if (cf.port > 0 && !conf_is_loopback(cf.bind[i])) {
        srv_log(LOG_WARNING,
                "refusing to listen on %s without a password: anyone who "
                "can reach it could read and write every key.  Set "
                "requirepass (or namespaces with passwords), or bind to "
                "127.0.0.1",
                cf.bind[i]);
        conf_free(&cf);
        return 1;
      }

  /* descriptors for maxclients connections and some to spare (segment
   * files, listeners, log): raise the soft limit as far as the hard one
   * allows, else serve fewer clients, as Redis does */
  struct rlimit rl;
  rlim_t want = (rlim_t)cf.maxclients + 128;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < want) {
    rlim_t cur = rl.rlim_cur;
    rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= want
                      ? want
                      : rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) rl.rlim_cur = cur;
    if (rl.rlim_cur < want) {
      uint32_t mc = rl.rlim_cur > 256 ? (uint32_t)(rl.rlim_cur - 128) : 128;
      srv_log(LOG_WARNING,
              "open-files limit %llu: maxclients lowered from %u to %u "
              "(raise `ulimit -n` for more)",
              (unsigned long long)rl.rlim_cur, cf.maxclients, mc);
      cf.maxclients = mc;
    }
  }

  server *s = &g_srv;
  s->conf = &cf;
  s->start_ms = now_ms();
  atomic_store(&s->next_id, 1);
  ssize_t el = readlink("/proc/self/exe", s->exe, sizeof s->exe - 1);
  s->exe[el > 0 ? el : 0] = 0;

  /* signals: blocked in every thread, read by the main thread */
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, NULL);
  signal(SIGPIPE, SIG_IGN);

  if (net_listen(s) != 0) {
    net_close_listeners(s);
    conf_free(&cf);
    return 1;
  }
  if (cf.daemonize && daemonize() != 0) {
    srv_log(LOG_WARNING, "cannot daemonize: %s", strerror(errno));
    return 1;
  }
  int sfd = signalfd(-1, &set, SFD_CLOEXEC);
  if (sfd < 0) {
    srv_log(LOG_WARNING, "signalfd: %s", strerror(errno));
    daemon_ready(1);
    return 1;
  }
  if (cf.pidfile && write_pidfile(cf.pidfile) != 0)
    srv_log(LOG_WARNING, "cannot write pid file %s: %s", cf.pidfile,
            strerror(errno));

  uint64_t t0 = now_ms();
  r = cascade_open(cf.engine, &s->store);
  if (r != 0) {
    char dir[4096] = "";
    cascade_config_get(cf.engine, "disk.dir", dir, sizeof dir);
    srv_log(LOG_WARNING, "cannot open the store%s%s%s: %s",
            dir[0] ? " (disk.dir " : "", dir[0] ? dir : "", dir[0] ? ")" : "",
            cascade_strerror(r));
    if (dir[0]) srv_log(LOG_WARNING, "(another cascaded on that directory?)");
    net_close_listeners(s);
    if (cf.pidfile) unlink(cf.pidfile);
    conf_free(&cf);
    daemon_ready(1);
    return 1;
  }
  struct cascade_stats st;
  memset(&st, 0, sizeof st);
  cascade_stats(s->store, &st);
  /* the largest value a put can take: max_value, and no more than DRAM */
  char mv[64] = "";
  cascade_config_get(cf.engine, "max_value", mv, sizeof mv);
  s->value_max = strtoull(mv, NULL, 10);
  if (!s->value_max || s->value_max > st.tier[CASCADE_TIER_DRAM].capacity)
    s->value_max = st.tier[CASCADE_TIER_DRAM].capacity;
  srv_log(LOG_NOTICE,
          "cascaded %s started, pid %ld: DRAM %llu MiB, policy %s%s%s, %d "
          "threads, %s",
          cascade_version(), (long)getpid(),
          (unsigned long long)(st.tier[CASCADE_TIER_DRAM].capacity >> 20),
          st.policy, st.tier[CASCADE_TIER_DISK].present ? ", disk " : "",
          st.tier[CASCADE_TIER_DISK].present ? st.disk_mode : "", cf.threads,
          conf_auth_required(&cf) ? "passwords required" : "no password");
  if (st.tier[CASCADE_TIER_DISK].present)
    srv_log(LOG_NOTICE, "disk tier: %llu keys recovered in %llu ms",
            (unsigned long long)st.disk_recovered,
            (unsigned long long)(now_ms() - t0));

  if (net_start(s) != 0) {
    srv_log(LOG_WARNING, "cannot start the workers: %s", strerror(errno));
    net_stop(s);
    cascade_close(s->store);
    conf_free(&cf);
    daemon_ready(1);
    return 1;
  }
  srv_log(LOG_NOTICE, "ready to accept connections");
  daemon_ready(0);

  for (;;) {
    struct signalfd_siginfo si;
    ssize_t n = read(sfd, &si, sizeof si);
    if (n != (ssize_t)sizeof si) {
      if (n < 0 && errno == EINTR) continue;
      srv_log(LOG_WARNING, "signalfd read: %s", strerror(errno));
      break;
    }
    if (si.ssi_signo == SIGHUP) {
      if (cf.logfile) {
        if (log_open(cf.logfile) != 0)
          srv_log(LOG_WARNING, "cannot reopen log file %s: %s", cf.logfile,
                  strerror(errno));
        else
          srv_log(LOG_NOTICE, "log file reopened (SIGHUP)");
      }
      continue;
    }
    srv_log(LOG_NOTICE, "%s received, shutting down",
            si.ssi_signo == SIGINT ? "SIGINT" : "SIGTERM");
    break;
  }
  net_stop(s);
  int code = 0;
  r = cascade_flush(s->store);
  if (r != 0) {
    srv_log(LOG_WARNING, "flushing the disk tier: %s", cascade_strerror(r));
    code = 1;
  }
  cascade_close(s->store);
  if (cf.pidfile) unlink(cf.pidfile);
  srv_log(LOG_NOTICE, "cascaded stopped%s", code ? " (with errors)" : "");
  close(sfd);
  conf_free(&cf);
  pthread_mutex_lock(&log_mu);
  if (log_fp) fclose(log_fp);
  log_fp = NULL;
  pthread_mutex_unlock(&log_mu);
  return code;
}
