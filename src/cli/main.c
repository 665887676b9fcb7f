/*
 * main.c - the `cascade` command-line tool: parses the options common to
 * every command, dispatches to the command, and implements the small
 * commands (help, version, config) and the `bench` dispatch.
 *
 *   cascade [OPTIONS] COMMAND [ARGS...]
 *
 * Common options (--set NAME=VALUE, --dram SIZE, --policy NAME) may come
 * before or after COMMAND; they become cascade_config_set() calls, applied
 * in the order given, after the command's own defaults.  The connection
 * options (--host, --port, --unix, --user, --password) may too; they are for
 * the client commands (client.c), which talk to a running cascaded.
 *
 * Exit status: 0 success, 1 failure (the store or a check failed), 2 usage
 * error (bad option, unknown command or setting).
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static void usage(FILE *f) {
  fprintf(f,
          "Usage: cascade [OPTIONS] COMMAND [ARGS...]\n"
          "\n"
          "Cascade %s - a multi-tier, content-addressed KV-cache store.\n"
          "\n"
          "Commands on a running cascaded (`cascade COMMAND --help` for "
          "more):\n"
          "  put KEY [FILE|-]   store FILE (or stdin) as the value of KEY; "
          "--prefix,\n"
          "                     --parent KEY, --priority low|normal|high, "
          "--ttl MS\n"
          "  get KEY [-o FILE]  write the value of KEY to stdout or FILE "
          "(missing: exit 1)\n"
          "  del KEY...         delete keys, print how many existed\n"
          "  exists KEY...      print how many of the keys exist (exit 1 "
          "unless all)\n"
          "  stat               the daemon's state: clients, memory, tiers, "
          "keyspace\n"
          "  ping               check that the daemon answers\n"
          "\n"
          "Commands on an embedded store (in this process):\n"
          "  demo          walk through the API on an embedded store, checking "
          "each step\n"
          "  bench dram    measure the DRAM tier against memcpy and OpenSSL "
          "SHA-256\n"
          "  bench disk    measure the disk tier against fio and a "
          "file-per-block layout\n"
          "  bench server  run cascaded and redis-server, compare them over "
          "RESP, and the\n"
          "                shared-memory path against memcpy\n"
          "  bench suite   the same workloads on Cascade and real baselines "
          "(redis,\n"
          "                memcached, posix files, LMDB, HDF5), every byte "
          "checked\n"
          "  bench report  bench suite's results as Markdown tables and "
          "gnuplot PNGs\n"
          "  replay        replay a trace (or a synthetic workload) through "
          "the store;\n"
          "                --compare: every policy, Belady and infinite "
          "capacity\n"
          "  config        print every engine setting with its value\n"
          "  help [CMD]    show this help, or the help of CMD\n"
          "  version       print the library version\n"
          "\n"
          "Options (before or after COMMAND):\n"
          "  -h, --help        show help (`cascade COMMAND --help` for a "
          "command)\n"
          "  -V, --version     print the version\n"
          "\n"
          "Settings of the embedded store (before or after COMMAND):\n"
          "  --set NAME=VALUE  set an engine setting (repeatable); "
          "`cascade config` lists them\n"
          "  --dram SIZE       DRAM arena capacity (= --set "
          "dram.capacity=SIZE)\n"
          "  --policy NAME     eviction policy (= --set policy=NAME)\n"
          "\n",
          cascade_version());
  cli_conn_usage(f);
  fprintf(f, "\n"
             "Sizes take a binary suffix: 4k = 4096 bytes; also m, g, t "
             "(or kb, kib, ...).\n"
             "Exit status: 0 success, 1 failure, 2 usage error.\n");
}

static void config_usage(FILE *f) {
  fprintf(f, "Usage: cascade config [--set NAME=VALUE]... [--dram SIZE] "
             "[--policy NAME]\n"
             "\n"
             "Print every engine setting with its value: the defaults, changed "
             "by the\n"
             "settings given.  A bad name or value is reported as a usage "
             "error (exit 2),\n"
             "so this also checks settings before they are used.\n");
}

static void version_usage(FILE *f) {
  fprintf(f, "Usage: cascade version\n\nPrint the library version.\n");
}

static void help_usage(FILE *f) {
  fprintf(f, "Usage: cascade help [COMMAND]\n\nShow the help of the tool "
             "or of COMMAND.\n");
}

static int is_help(const char *a) {
  return strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0;
}

static int cmd_version(int argc, char **argv, const cli_common *co) {
  (void)co;
  for (int i = 1; i < argc; i++) {
    if (is_help(argv[i])) {
      version_usage(stdout);
      return CLI_OK;
    }
    cli_err("version: unexpected argument '%s'", argv[i]);
    return CLI_USAGE;
  }
  printf("cascade %s\n", cascade_version());
  return CLI_OK;
}

static int cmd_config(int argc, char **argv, const cli_common *co0) {
  cli_common co = *co0;
  cascade_config *cfg = NULL;
  cli_table *t;
  static const char *const hd[2] = {"setting", "value"};
  const char *const *names;
  int rc;

  if ((rc = cli_parse_common_only(&co, argc, argv, "config", config_usage)) >=
      0)
    return rc;
  rc = cascade_config_new(&cfg);
  if (rc != 0) {
    cli_err("config: cascade_config_new: %s", cascade_strerror(rc));
    return CLI_FAIL;
  }
  rc = cli_apply_settings(&co, cfg);
  if (rc != CLI_OK) {
    cascade_config_free(cfg);
    return rc;
  }
  t = cli_table_new(2, hd, "ll");
  if (t == NULL) {
    cascade_config_free(cfg);
    cli_err("config: out of memory");
    return CLI_FAIL;
  }
  rc = CLI_OK;
  names = cascade_config_names();
  for (size_t k = 0; names != NULL && names[k] != NULL; k++) {
    char val[256];
    const char *cells[2];
    int e = cascade_config_get(cfg, names[k], val, sizeof val);

    if (e != 0) {
      cli_err("config: cascade_config_get(%s): %s", names[k],
              cascade_strerror(e));
      snprintf(val, sizeof val, "<%s>", cascade_strerror(e));
      rc = CLI_FAIL;
    }
    cells[0] = names[k];
    cells[1] = val;
    cli_table_row(t, cells);
  }
  cli_table_print(t, stdout, "");
  cli_table_free(t);
  cascade_config_free(cfg);
  return rc;
}

/* ---- bench ---------------------------------------------------------------- */

void cli_bench_usage(FILE *f) {
  fprintf(f,
          "Usage: cascade bench dram|disk|server|suite|report [OPTIONS]\n\n");
  cli_bench_dram_usage(f);
  fputc('\n', f);
  cli_bench_disk_usage(f);
  fputc('\n', f);
  cli_bench_server_usage(f);
  fputc('\n', f);
  cli_bench_suite_usage(f);
  fputc('\n', f);
  cli_bench_report_usage(f);
}

int cli_cmd_bench(int argc, char **argv, const cli_common *co) {
  if (argc < 2) {
    cli_err("bench: which benchmark? (known: dram, disk, server, suite, "
            "report; see cascade bench --help)");
    return CLI_USAGE;
  }
  if (is_help(argv[1])) {
    cli_bench_usage(stdout);
    return CLI_OK;
  }
  if (strcmp(argv[1], "dram") == 0)
    return cli_bench_dram(argc - 2, argv + 2, co);
  if (strcmp(argv[1], "disk") == 0)
    return cli_bench_disk(argc - 2, argv + 2, co);
  if (strcmp(argv[1], "server") == 0)
    return cli_bench_server(argc - 2, argv + 2, co);
  if (strcmp(argv[1], "suite") == 0)
    return cli_bench_suite(argc - 2, argv + 2, co);
  if (strcmp(argv[1], "report") == 0)
    return cli_bench_report(argc - 2, argv + 2, co);
  cli_err("bench: unknown benchmark '%s' (known: dram, disk, server, suite, "
          "report)",
          argv[1]);
  return CLI_USAGE;
}

struct command {
  const char *name;
  int (*run)(int argc, char **argv, const cli_common *co);
  void (*usage)(FILE *f);
  int client; /* talks to cascaded: takes the connection options */
};

static int cmd_help(int argc, char **argv, const cli_common *co);

static const struct command commands[] = {
    {"put", cli_cmd_put, cli_put_usage, 1},
    {"get", cli_cmd_get, cli_get_usage, 1},
    {"del", cli_cmd_del, cli_del_usage, 1},
    {"exists", cli_cmd_exists, cli_exists_usage, 1},
    {"stat", cli_cmd_stat, cli_stat_usage, 1},
    {"ping", cli_cmd_ping, cli_ping_usage, 1},
    {"demo", cli_cmd_demo, cli_demo_usage, 0},
    {"bench", cli_cmd_bench, cli_bench_usage, 0},
    {"replay", cli_cmd_replay, cli_replay_usage, 0},
    {"config", cmd_config, config_usage, 0},
    {"version", cmd_version, version_usage, 0},
    {"help", cmd_help, help_usage, 0},
};

#define NCOMMANDS (sizeof commands / sizeof commands[0])

static const struct command *find_command(const char *name) {
  for (size_t k = 0; k < NCOMMANDS; k++)
    if (strcmp(commands[k].name, name) == 0) return &commands[k];
  return NULL;
}

static int cmd_help(int argc, char **argv, const cli_common *co) {
  const struct command *c;

  (void)co;
  if (argc < 2) {
    usage(stdout);
    return CLI_OK;
  }
  if (is_help(argv[1])) {
    help_usage(stdout);
    return CLI_OK;
  }
  c = find_command(argv[1]);
  if (c == NULL) {
    cli_err("help: unknown command '%s' (see cascade --help)", argv[1]);
    return CLI_USAGE;
  }
  c->usage(stdout);
  return CLI_OK;
}

int main(int argc, char **argv) {
  cli_common co;
  const struct command *c;
  char conn_opt[16] = "";
  int i = 1;

  memset(&co, 0, sizeof co);
  while (i < argc) {
    const char *a = argv[i];
    int r;

    if (is_help(a)) {
      usage(stdout);
      return CLI_OK;
    }
    if (strcmp(a, "-V") == 0 || strcmp(a, "--version") == 0) {
      printf("cascade %s\n", cascade_version());
      return CLI_OK;
    }
    r = cli_common_option(&co, argc, argv, &i);
    if (r < 0) return CLI_USAGE;
    if (r > 0) continue;
    r = cli_conn_option(&co, argc, argv, &i);
    if (r < 0) return CLI_USAGE;
    if (r > 0) {
      /* the option's name only: never a password in a message */
      snprintf(conn_opt, sizeof conn_opt, "%.*s", (int)strcspn(a, "="), a);
      continue;
    }
    if (a[0] == '-') {
      cli_err("unknown option '%s' (see cascade --help)", a);
      return CLI_USAGE;
    }
    break;
  }
  if (i >= argc) {
    cli_err("no command given (see cascade --help)");
    return CLI_USAGE;
  }
  c = find_command(argv[i]);
  if (c == NULL) {
    cli_err("unknown command '%s' (see cascade --help)", argv[i]);
    return CLI_USAGE;
  }
  if (conn_opt[0] != '\0' && !c->client) {
    cli_err("%s: %s is for the commands that talk to cascaded (put, get, "
            "del, exists, stat, ping)",
            c->name, conn_opt);
    return CLI_USAGE;
  }
  return c->run(argc - i, argv + i, &co);
}
