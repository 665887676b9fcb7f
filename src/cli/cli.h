/*
 * cli.h - private interface between the source files of the `cascade`
 * command-line tool (src/cli/).  Nothing here is part of libcascade: the
 * tool uses only the public header cascade.h, like any other program.
 *
 * Files:
 *   main.c        argument parsing, help texts, dispatch, `config`
 *   util.c        sizes, numbers, time, progress line, tables, JSON
 *                 strings, machine facts, printing cascade_stats
 *   demo.c        `cascade demo`: a checked walk through the API
 *   bench_dram.c  `cascade bench dram`: the DRAM tier against memcpy and
 *                 OpenSSL SHA-256
 *   bench_disk.c  `cascade bench disk`: the disk tier against fio and a
 *                 file-per-block layout
 *   bench_server.c `cascade bench server`: cascaded against redis-server
 *                 over RESP, and its shared-memory path against memcpy
 *   suite.c       `cascade bench suite`: the same workloads on many real
 *                 storage systems, each behind an adapter (suite.h,
 *                 suite_*.c)
 *   report.c      `cascade bench report`: bench suite's result files as
 *                 Markdown tables and gnuplot PNGs
 *   servers.c     real servers started by the benchmarks: free port,
 *                 spawn with a death signal, wait for PING, stop and reap
 *   replay.c      `cascade replay`: a trace (or the synthetic workload)
 *                 through the engine or the simulator (src/sim/)
 *   client.c      the client commands (put, get, del, exists, stat, ping):
 *                 a running cascaded over RESP2, with hiredis
 *
 * Conventions: every function shared between files has the cli_ prefix;
 * commands return an exit status (CLI_OK, CLI_FAIL, CLI_USAGE) and print
 * their own messages on stderr, prefixed "cascade: ".
 */
#ifndef CASCADE_CLI_H
#define CASCADE_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "cascade.h"

/* Exit statuses of the tool. */
enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2 };

#if defined(__GNUC__)
#define CLI_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define CLI_PRINTF(f, a)
#endif

/* ---- Options shared by every command ------------------------------------ */

#define CLI_MAX_SETTINGS 64
#define CLI_MAX_SETTING_NAME 64

/* One engine setting given on the command line, in the order given.
 * name is a copy; value points into argv (which lives as long as main). */
typedef struct cli_setting {
  char name[CLI_MAX_SETTING_NAME];
  const char *value;
} cli_setting;

/* Where the client commands find cascaded: --host, --port, --unix, --user,
 * --password as given (pointers into argv), NULL where not given; the
 * environment and the defaults fill the rest at connect time. */
typedef struct cli_conn {
  const char *host, *port, *unix_path, *user, *password;
} cli_conn;

/* The options every command accepts: --set NAME=VALUE, --dram SIZE,
 * --policy NAME, all turned into settings for cascade_config_set; and the
 * connection options, used by the client commands only. */
typedef struct cli_common {
  cli_setting set[CLI_MAX_SETTINGS];
  size_t nset;
  cli_conn conn;
} cli_common;

/*
 * If argv[*i] is a common option, record it in co, advance *i past its
 * value and return 1.  Return 0 if it is not a common option (nothing
 * changed), or -1 after printing a message if it is one but malformed
 * (missing value, no '=', too many settings).
 */
int cli_common_option(cli_common *co, int argc, char **argv, int *i);

/*
 * Parse the arguments of a command that takes only -h/--help and the common
 * options, into co.  Returns -1 to go on, or the exit code to return now
 * (CLI_OK after printing usage(stdout) for help, CLI_USAGE after a message
 * naming cmd for anything else).
 */
int cli_parse_common_only(cli_common *co, int argc, char **argv,
                          const char *cmd, void (*usage)(FILE *));

/*
 * Match option `name` (e.g. "--seconds") at argv[*i], taking its value
 * from "--name=VALUE" or from the next argument.  Returns 1 with *val set
 * and *i advanced past the value, 0 if argv[*i] is another option, -1
 * (message printed) if the value is missing.
 */
int cli_opt_value(int argc, char **argv, int *i, const char *name,
                  const char **val);

/*
 * Apply the common settings to cfg, in order.  Returns CLI_OK, or
 * CLI_USAGE after printing "cascade: --set NAME=VALUE: <cascade_strerror>".
 */
int cli_apply_settings(const cli_common *co, cascade_config *cfg);

/* Set one setting; on failure print "cascade: <what>: setting NAME=VALUE:
 * <cascade_strerror>" and return the library's error code. */
int cli_config_set(cascade_config *cfg, const char *name, const char *value,
                   const char *what);

/*
 * If argv[*i] is a connection option (--host H, --port P, --unix PATH,
 * --user NS, --password PW; also --opt=VALUE), record it in co->conn,
 * advance *i past its value and return 1.  Return 0 if it is not one, or -1
 * after printing a message if it is one but malformed (missing value, a port
 * outside 1..65535).  In client.c.
 */
int cli_conn_option(cli_common *co, int argc, char **argv, int *i);

/* ---- Messages ------------------------------------------------------------ */

/* Print "cascade: " + message + newline on stderr. */
void cli_err(const char *fmt, ...) CLI_PRINTF(1, 2);

/* ---- Numbers, sizes, time ------------------------------------------------ */

/*
 * Parse a size: decimal digits with an optional binary suffix k, m, g, t
 * (also kb/kib, mb/mib, ..., case-insensitive; "b" alone means bytes).
 * Returns 0, or -1 for junk or overflow.
 */
int cli_parse_size(const char *s, uint64_t *out);

/* "4 KiB", "64 MiB", "1.5 GiB", "100 B" into buf; returns buf. */
const char *cli_fmt_size(uint64_t bytes, char *buf, size_t cap);

/* 1234567 -> "1,234,567" into buf; returns buf. */
const char *cli_fmt_count(uint64_t n, char *buf, size_t cap);

/* A duration in ns as "850 ns", "1.2 us", "3.4 ms", "1.20 s". */
const char *cli_fmt_ns(uint64_t ns, char *buf, size_t cap);

/* Monotonic clock in seconds. */
double cli_now(void);

/* ---- Progress line (stderr, only when stderr is a terminal) -------------- */

/* Show "[idx/total] what" on one self-overwriting line. */
void cli_progress(int idx, int total, const char *what);
/* Erase the progress line (no-op if none was shown). */
void cli_progress_done(void);

/* ---- Tables -------------------------------------------------------------- */

/*
 * A text table: columns sized to their widest cell, printed once complete.
 * align has one character per column: 'l' left, 'r' right.  Cells are
 * copied.  A row whose cells are all NULL prints as an empty line.
 */
typedef struct cli_table cli_table;

cli_table *cli_table_new(int ncols, const char *const *headers,
                         const char *align);
/* Add one row of ncols cells (NULL = empty cell).  Returns 0 or -ENOMEM. */
int cli_table_row(cli_table *t, const char *const *cells);
void cli_table_print(const cli_table *t, FILE *f, const char *indent);
void cli_table_free(cli_table *t);

/* ---- JSON ---------------------------------------------------------------- */

/* Write s as a JSON string literal (quotes, escapes) to f. */
void cli_json_str(FILE *f, const char *s);
/* Write a double as a JSON number (or null if not finite). */
void cli_json_num(FILE *f, double v);
/* A target's outcome (1 met, 0 missed, < 0 no target or no peer) as JSON
 * (true/false/null), and as a table cell (ok/MISSED/n/a). */
void cli_json_met(FILE *f, int met);

/* splitmix64's finaliser, and bytes (a multiple of 8 is filled) of the
 * splitmix64 stream from seed: the benchmarks' incompressible, seeded data
 * (word k = cli_mix64(seed + (k + 1) * 0x9e3779b97f4a7c15)). */
static inline uint64_t cli_mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}
void cli_fill_pool(uint8_t *p, size_t bytes, uint64_t seed);

/* JSON (json-c): the member key of object o (NULL if absent or o is not an
 * object); the string there (NULL if absent or not a string); the number
 * there (NaN if absent, null or not a number). */
struct json_object;
struct json_object *cli_jget(struct json_object *o, const char *key);
const char *cli_jstr(struct json_object *o, const char *key);
double cli_jnum(struct json_object *o, const char *key);

/* A baseline of the benchmark tables: any system whose name does not start
 * with "cascade". */
int cli_is_baseline(const char *system);
const char *cli_met_text(int met);

/* ---- Machine facts (for benchmark headers) ------------------------------- */

typedef struct cli_machine {
  char cpu[256];    /* CPU model name, "unknown" if not found */
  long cores;       /* online CPUs */
  char kernel[512]; /* "Linux <release> <arch>" */
  uint64_t l3, mem; /* L3 cache of cpu0 and total memory, bytes; 0 unknown */
  char thp[128];    /* transparent huge pages setting, "" unknown */
} cli_machine;

/* Fill *m from /proc and /sys; what cannot be read is left empty/zero. */
void cli_machine_facts(cli_machine *m);

/* ---- Servers started by the benchmarks (servers.c) ----------------------- */

#define CLI_SERVER_START_S 15    /* to answer PING after the start */
#define CLI_SERVER_STOP_S 10     /* to exit after SHUTDOWN NOSAVE */
#define CLI_SERVER_IO_TIMEOUT_S 60 /* per command on a connection */

struct redisContext; /* hiredis */

/* A server process the tool started.  pid 0: not running.  admin: a RESP
 * connection kept open for SHUTDOWN (and INFO, FLUSHDB...), or NULL. */
typedef struct cli_server {
  char path[1056]; /* the program */
  char log[1056];  /* its stdout and stderr (emptied at start) */
  char version[64];
  pid_t pid;
  int port;
  struct redisContext *admin;
} cli_server;

/* An executable `name` on $PATH into out; 0, or -1 (out ""). */
int cli_find_on_path(const char *name, char *out, size_t cap);
/* The path of this program with its last up components removed (up 1:
 * its directory); 0, or -1. */
int cli_exe_dir(char *out, size_t cap, int up);
/* cascaded: opt if not NULL (0 if executable), else next to this program,
 * else on $PATH; 0, or -1. */
int cli_find_cascaded(const char *opt, char *out, size_t cap);
/* A free TCP port on 127.0.0.1 (asked of the kernel), or -1. */
int cli_free_port(void);
/* Start argv[0] (no shell) with stdin /dev/null and its output in logpath
 * (emptied); it gets SIGKILL when the tool dies.  Its pid, or -1 (errno). */
pid_t cli_spawn(char *const argv[], const char *logpath);
/* SIGTERM, up to secs for it to exit, then SIGKILL; reaped. */
void cli_stop_pid(pid_t pid, double secs);
/* The last 400 bytes of a log file on one line into out ("" if none). */
void cli_log_tail(const char *path, char *out, size_t cap);
/* A hiredis connection to 127.0.0.1:port (connect timeout timeout_s, then
 * CLI_SERVER_IO_TIMEOUT_S per command), or NULL. */
struct redisContext *cli_connect_tcp(int port, double timeout_s);
/* Spawn s->path with argv (argv[0] = s->path; s->port, s->log set) and
 * wait up to CLI_SERVER_START_S for PING; s->admin is then connected.
 * 0, or -1 with the reason in err (the log's tail if it exited); the
 * process is then gone. */
int cli_server_start(cli_server *s, char *const argv[], char *err,
                     size_t cap);
/* SHUTDOWN NOSAVE on s->admin (SIGTERM without one), wait up to
 * CLI_SERVER_STOP_S, reap.  0 if it exited by itself with status 0, -1 if
 * with another status, -ETIMEDOUT if it had to be killed.  No-op (0) if
 * not running. */
int cli_server_stop(cli_server *s);
/* SIGKILL and reap at once; closes s->admin.  No-op if not running. */
void cli_server_kill(cli_server *s);
/* "field:value" of the reply to INFO server into out ("?" if absent). */
void cli_redis_info(struct redisContext *c, const char *field, char *out,
                    size_t cap);
/* CONFIG GET name into out ("?" if it fails). */
void cli_redis_config_get(struct redisContext *c, const char *name,
                          char *out, size_t cap);

/* The RESP client of bench suite's server adapters: one batch of SET key
 * value / GET key / EXISTS key sent as one pipeline, the replies read in
 * order, each item's rc set (suite.h's conventions: the number of items
 * with rc 0, or a negative errno with msg if the connection failed).
 * cli_resp_flush: FLUSHALL (0 or -EIO). */
struct suite_item;
int cli_resp_put(struct redisContext *c, struct suite_item *it, int n,
                 char *msg, size_t cap);
int cli_resp_get(struct redisContext *c, struct suite_item *it, int n,
                 char *msg, size_t cap);
int cli_resp_contains(struct redisContext *c, struct suite_item *it, int n,
                      char *msg, size_t cap);
int cli_resp_flush(struct redisContext *c, char *msg, size_t cap);

/* ---- Store statistics ---------------------------------------------------- */

/* Print a snapshot of cascade_stats as readable tables, each line prefixed
 * by indent. */
void cli_print_stats(FILE *f, const struct cascade_stats *st,
                     const char *indent);

/* ---- Commands ------------------------------------------------------------ */

/* argv[0] is the command name; the rest are its arguments. */
int cli_cmd_demo(int argc, char **argv, const cli_common *co);
int cli_cmd_bench(int argc, char **argv, const cli_common *co);
int cli_cmd_replay(int argc, char **argv, const cli_common *co);
/* The client commands (client.c). */
int cli_cmd_put(int argc, char **argv, const cli_common *co);
int cli_cmd_get(int argc, char **argv, const cli_common *co);
int cli_cmd_del(int argc, char **argv, const cli_common *co);
int cli_cmd_exists(int argc, char **argv, const cli_common *co);
int cli_cmd_stat(int argc, char **argv, const cli_common *co);
int cli_cmd_ping(int argc, char **argv, const cli_common *co);
/* The benchmarks of `cascade bench`; argv[0] is the first argument after
 * the benchmark's name. */
int cli_bench_dram(int argc, char **argv, const cli_common *co);
int cli_bench_disk(int argc, char **argv, const cli_common *co);
int cli_bench_server(int argc, char **argv, const cli_common *co);
int cli_bench_suite(int argc, char **argv, const cli_common *co);
int cli_bench_report(int argc, char **argv, const cli_common *co);

void cli_demo_usage(FILE *f);
void cli_bench_usage(FILE *f);
void cli_replay_usage(FILE *f);
void cli_bench_dram_usage(FILE *f);
void cli_bench_disk_usage(FILE *f);
void cli_bench_server_usage(FILE *f);
void cli_bench_suite_usage(FILE *f);
void cli_bench_report_usage(FILE *f);
void cli_put_usage(FILE *f);
void cli_get_usage(FILE *f);
void cli_del_usage(FILE *f);
void cli_exists_usage(FILE *f);
void cli_stat_usage(FILE *f);
void cli_ping_usage(FILE *f);
/* The connection options and environment, for the usage texts. */
void cli_conn_usage(FILE *f);

/* Model presets (util.c): KV bytes per token of model name (fp16 K and V
 * of every layer), 0 if unknown; the i-th preset's name, NULL past the
 * last. */
uint64_t cli_model_bpt(const char *name);
const char *cli_model_name(size_t i);

/* The file system of path: its type (from /proc/self/mountinfo, matched by
 * device number; else statfs's magic) into fs_type, the mount's source
 * into device ("" if unknown).  Returns 1 if it is memory (tmpfs, ramfs). */
int cli_fs_facts(const char *path, char *fs_type, size_t tcap, char *device,
                 size_t dcap);

/* Median of n values (sorts v in place; the mean of the middle two if n is
 * even; NaN if n <= 0), as every bench reports repeated runs. */
double cli_median(double *v, int n);

/* A rate or ratio for a table: "n/a" if not finite, else 2, 1 or 0
 * decimals as it grows past 100 and 10000.  Returns buf. */
const char *cli_fmt_rate(double v, char *buf, size_t cap);

/* Remove path and everything under it (it need not exist); with keep_top,
 * only what is under it.  0, or -1 with errno. */
int cli_rm_tree(const char *path, int keep_top);

#endif /* CASCADE_CLI_H */
