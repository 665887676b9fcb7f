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

void cli_demo_usage(FILE *f);
void cli_bench_usage(FILE *f);
void cli_replay_usage(FILE *f);
void cli_bench_dram_usage(FILE *f);
void cli_bench_disk_usage(FILE *f);
void cli_bench_server_usage(FILE *f);
void cli_put_usage(FILE *f);
void cli_get_usage(FILE *f);
void cli_del_usage(FILE *f);
void cli_exists_usage(FILE *f);
void cli_stat_usage(FILE *f);
void cli_ping_usage(FILE *f);
/* The connection options and environment, for the usage texts. */
void cli_conn_usage(FILE *f);

#endif /* CASCADE_CLI_H */
