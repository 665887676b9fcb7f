/*
 * info.c - the INFO text (Redis's "# Section" / "name:value" format, so
 * tools that parse Redis's INFO parse it) and the Prometheus text of
 * /metrics, both from cascade_stats() and the server's counters.
 */
#define _GNU_SOURCE
#include "server/server.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

typedef struct sbuf {
  char *p;
  size_t len, cap;
  int oom;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void sb_printf(sbuf *b, const char *fmt, ...) {
  if (b->oom) return;
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0,
                      fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if (b->p && b->len + (size_t)n < b->cap) {
      b->len += (size_t)n;
      return;
    }
    size_t nc = b->cap ? b->cap * 2 : 4096;
    while (nc < b->len + (size_t)n + 1) nc *= 2;
    char *np = realloc(b->p, nc);
    if (!np) {
      b->oom = 1;
      return;
    }
    b->p = np;
    b->cap = nc;
  }
}

static uint64_t rss_bytes(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  unsigned long long size = 0, res = 0;
  if (!f) return 0;
  if (fscanf(f, "%llu %llu", &size, &res) != 2) res = 0;
  fclose(f);
  return (uint64_t)res * (uint64_t)sysconf(_SC_PAGESIZE);
}

static const char *const tier_name[CASCADE_NTIERS] = {"gpu", "dram", "remote",
                                                      "disk"};

static int want(const char *sec, const char *name, int in_default) {
  if (!sec || !*sec || !strcasecmp(sec, "default")) return in_default;
  if (!strcasecmp(sec, "all") || !strcasecmp(sec, "everything")) return 1;
  return !strcasecmp(sec, name);
}

char *info_text(conn *c, const char *sec, size_t *len) {
  sbuf b = {0};
  struct cascade_stats st;
  memset(&st, 0, sizeof st);
  cascade_stats(g_srv.store, &st);
  uint64_t up = (now_ms() - g_srv.start_ms) / 1000;
  int first = 1;
#define SECTION(name)                                                         \
  do {                                                                        \
    sb_printf(&b, "%s# %s\r\n", first ? "" : "\r\n", name);                   \
    first = 0;                                                                \
  } while (0)

  if (want(sec, "server", 1)) {
    SECTION("Server");
    sb_printf(&b,
              "redis_version:7.0.0\r\n"
              "cascade_version:%s\r\n"
              "redis_mode:standalone\r\n"
              "os:Linux\r\n"
              "process_id:%ld\r\n"
              "tcp_port:%d\r\n"
              "uptime_in_seconds:%llu\r\n"
              "uptime_in_days:%llu\r\n"
              "io_threads_active:%d\r\n"
              "executable:%s\r\n"
              "config_file:%s\r\n",
              cascade_version(), (long)getpid(), g_srv.conf->port,
              (unsigned long long)up, (unsigned long long)(up / 86400),
              g_srv.conf->threads, g_srv.exe,
              g_srv.conf->file ? g_srv.conf->file : "");
  }
  if (want(sec, "clients", 1)) {
    SECTION("Clients");
    sb_printf(&b,
              "connected_clients:%u\r\n"
              "maxclients:%u\r\n"
              "blocked_clients:0\r\n",
              atomic_load(&g_srv.nclients), g_srv.conf->maxclients);
  }
  if (want(sec, "memory", 1)) {
    const cascade_tier_stats *d = &st.tier[CASCADE_TIER_DRAM];
    SECTION("Memory");
    sb_printf(&b,
              "used_memory:%llu\r\n"
              "used_memory_rss:%llu\r\n"
              "maxmemory:%llu\r\n"
              "maxmemory_policy:%s\r\n"
              "dram_free_bytes:%llu\r\n"
              "dram_largest_free:%llu\r\n"
              "dram_fragmentation:%.4f\r\n"
              "dram_hugepages:%d\r\n",
              (unsigned long long)d->bytes, (unsigned long long)rss_bytes(),
              (unsigned long long)d->capacity, st.policy,
              (unsigned long long)st.dram_free_bytes,
              (unsigned long long)st.dram_largest_free,
              st.dram_fragmentation, st.dram_hugepages);
  }
  if (want(sec, "stats", 1)) {
    SECTION("Stats");
    sb_printf(
        &b,
        "total_connections_received:%llu\r\n"
        "total_commands_processed:%llu\r\n"
        "rejected_connections:%llu\r\n"
        "total_net_input_bytes:%llu\r\n"
        "total_net_output_bytes:%llu\r\n"
        "total_error_replies:%llu\r\n"
        "keyspace_hits:%llu\r\n"
        "keyspace_misses:%llu\r\n"
        "expired_keys:%llu\r\n"
        "evicted_keys:%llu\r\n"
        "store_puts:%llu\r\n"
        "store_gets:%llu\r\n"
        "store_deletes:%llu\r\n"
        "dedup_hits:%llu\r\n"
        "dedup_bytes_saved:%llu\r\n"
        "views_held:%llu\r\n",
        (unsigned long long)atomic_load(&g_srv.conns_total),
        (unsigned long long)atomic_load(&g_srv.cmds_total),
        (unsigned long long)atomic_load(&g_srv.conns_rejected),
        (unsigned long long)atomic_load(&g_srv.net_in),
        (unsigned long long)atomic_load(&g_srv.net_out),
        (unsigned long long)atomic_load(&g_srv.errors_total),
        (unsigned long long)atomic_load(&g_srv.keyspace_hits),
        (unsigned long long)atomic_load(&g_srv.keyspace_misses),
        (unsigned long long)st.expired,
        (unsigned long long)(st.tier[CASCADE_TIER_DRAM].evictions +
                             st.tier[CASCADE_TIER_DISK].evictions),
        (unsigned long long)st.puts, (unsigned long long)st.gets,
        (unsigned long long)st.deletes, (unsigned long long)st.dedup_hits,
        (unsigned long long)st.dedup_bytes_saved,
        (unsigned long long)st.views);
  }
  if (want(sec, "tiers", 1) || want(sec, "cascade", 0)) {
    SECTION("Tiers");
    for (int t = 0; t < CASCADE_NTIERS; t++) {
      const cascade_tier_stats *ts = &st.tier[t];
      if (!ts->present) continue;
      const char *n = tier_name[t];
      sb_printf(&b,
                "%s_blocks:%llu\r\n%s_bytes:%llu\r\n%s_capacity:%llu\r\n"
                "%s_hits:%llu\r\n%s_misses:%llu\r\n%s_evictions:%llu\r\n"
                "%s_promotions:%llu\r\n%s_demotions:%llu\r\n",
                n, (unsigned long long)ts->blocks, n,
                (unsigned long long)ts->bytes, n,
                (unsigned long long)ts->capacity, n,
                (unsigned long long)ts->hits, n,
                (unsigned long long)ts->misses, n,
                (unsigned long long)ts->evictions, n,
                (unsigned long long)ts->promotions, n,
                (unsigned long long)ts->demotions);
    }
    if (st.tier[CASCADE_TIER_DISK].present)
      sb_printf(&b,
                "disk_mode:%s\r\ndisk_file_bytes:%llu\r\n"
                "disk_live_bytes:%llu\r\ndisk_read_errors:%llu\r\n"
                "disk_write_errors:%llu\r\ndisk_compactions:%llu\r\n"
                "disk_recovered:%llu\r\n",
                st.disk_mode, (unsigned long long)st.disk_file_bytes,
                (unsigned long long)st.disk_live_bytes,
                (unsigned long long)st.disk_read_errors,
                (unsigned long long)st.disk_write_errors,
                (unsigned long long)st.disk_compactions,
                (unsigned long long)st.disk_recovered);
  }
  if (want(sec, "cascade", 0)) {
    SECTION("Latency");
    const cascade_latency *l[2] = {&st.get_latency, &st.put_latency};
    const char *ln[2] = {"get", "put"};
    for (int i = 0; i < 2; i++)
      sb_printf(&b,
                "%s_count:%llu\r\n%s_p50_ns:%llu\r\n%s_p99_ns:%llu\r\n"
                "%s_p999_ns:%llu\r\n%s_max_ns:%llu\r\n",
                ln[i], (unsigned long long)l[i]->count, ln[i],
                (unsigned long long)l[i]->p50, ln[i],
                (unsigned long long)l[i]->p99, ln[i],
                (unsigned long long)l[i]->p999, ln[i],
                (unsigned long long)l[i]->max);
  }
  if (want(sec, "keyspace", 1)) {
    SECTION("Keyspace");
    int64_t n = c && c->ns ? cascade_ns_keys(g_srv.store, c->ns) : 0;
    /* Redis's format (one "db0" per connection: its namespace) */
    if (n > 0) sb_printf(&b, "db0:keys=%lld,expires=0,avg_ttl=0\r\n", (long long)n);
  }
#undef SECTION
  if (b.oom) {
    free(b.p);
    return NULL;
  }
  if (!b.p) sb_printf(&b, "%s", "");
  *len = b.len;
  return b.p;
}

char *metrics_text(size_t *len) {
  sbuf b = {0};
  struct cascade_stats st;
  memset(&st, 0, sizeof st);
  cascade_stats(g_srv.store, &st);
#define COUNTER(name, help, v)                                                \
  sb_printf(&b, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", name, help,     \
            name, name, (unsigned long long)(v))
#define GAUGE(name, help, v)                                                  \
  sb_printf(&b, "# HELP %s %s\n# TYPE %s gauge\n%s %llu\n", name, help, name, \
            name, (unsigned long long)(v))
  GAUGE("cascade_up", "1 while the daemon serves", 1);
  GAUGE("cascade_uptime_seconds", "Seconds since start",
        (now_ms() - g_srv.start_ms) / 1000);
  GAUGE("cascade_connected_clients", "Client connections open",
        atomic_load(&g_srv.nclients));
  COUNTER("cascade_connections_total", "Client connections accepted",
          atomic_load(&g_srv.conns_total));
  COUNTER("cascade_connections_rejected_total",
          "Connections refused (maxclients)",
          atomic_load(&g_srv.conns_rejected));
  COUNTER("cascade_commands_total", "Commands executed",
          atomic_load(&g_srv.cmds_total));
  COUNTER("cascade_error_replies_total", "Error replies sent",
          atomic_load(&g_srv.errors_total));
  COUNTER("cascade_net_input_bytes_total", "Bytes read from clients",
          atomic_load(&g_srv.net_in));
  COUNTER("cascade_net_output_bytes_total", "Bytes sent to clients",
          atomic_load(&g_srv.net_out));
  GAUGE("cascade_keys", "Keys stored, all namespaces", st.keys);
  GAUGE("cascade_resident_memory_bytes", "Resident set size of the daemon",
        rss_bytes());
  COUNTER("cascade_puts_total", "Puts", st.puts);
  COUNTER("cascade_gets_total", "Gets", st.gets);
  COUNTER("cascade_hits_total", "Gets that found their key", st.hits);
  COUNTER("cascade_misses_total", "Gets that did not", st.misses);
  COUNTER("cascade_expired_total", "Keys removed by their TTL", st.expired);
  COUNTER("cascade_dedup_hits_total", "Puts whose content was stored already",
          st.dedup_hits);
  static const char *const per_tier[][2] = {
      {"blocks", "Blocks stored in the tier"},
      {"bytes", "Value bytes stored in the tier"},
      {"capacity_bytes", "Capacity of the tier"},
      {"hits_total", "Reads served by the tier"},
      {"misses_total", "Reads the tier could not serve"},
      {"evictions_total", "Blocks dropped from the tier to make room"},
      {"promotions_total", "Blocks moved up into the tier"},
      {"demotions_total", "Blocks moved down out of the tier"}};
  for (size_t m = 0; m < sizeof per_tier / sizeof per_tier[0]; m++) {
    int counter = strstr(per_tier[m][0], "_total") != NULL;
    sb_printf(&b, "# HELP cascade_tier_%s %s\n# TYPE cascade_tier_%s %s\n",
              per_tier[m][0], per_tier[m][1], per_tier[m][0],
              counter ? "counter" : "gauge");
    for (int t = 0; t < CASCADE_NTIERS; t++) {
      const cascade_tier_stats *ts = &st.tier[t];
      if (!ts->present) continue;
      const uint64_t v[] = {ts->blocks,    ts->bytes,      ts->capacity,
                            ts->hits,      ts->misses,     ts->evictions,
                            ts->promotions, ts->demotions};
      sb_printf(&b, "cascade_tier_%s{tier=\"%s\"} %llu\n", per_tier[m][0],
                tier_name[t], (unsigned long long)v[m]);
    }
  }
  if (st.tier[CASCADE_TIER_DISK].present) {
    COUNTER("cascade_disk_read_errors_total",
            "Disk reads that failed verification", st.disk_read_errors);
    COUNTER("cascade_disk_write_errors_total", "Disk writes that failed",
            st.disk_write_errors);
    GAUGE("cascade_disk_file_bytes", "Size of the segment files",
          st.disk_file_bytes);
    GAUGE("cascade_disk_live_bytes", "Bytes of live records",
          st.disk_live_bytes);
  }
  const cascade_latency *l[2] = {&st.get_latency, &st.put_latency};
  const char *ln[2] = {"get", "put"};
  for (int i = 0; i < 2; i++) {
    /* a gauge per quantile, not a summary: the store keeps no sum */
    sb_printf(&b,
              "# HELP cascade_%s_latency_seconds Latency of store %ss, by "
              "quantile\n"
              "# TYPE cascade_%s_latency_seconds gauge\n",
              ln[i], ln[i], ln[i]);
    const double q[] = {0.5, 0.9, 0.99, 0.999};
    const uint64_t v[] = {l[i]->p50, l[i]->p90, l[i]->p99, l[i]->p999};
    for (int k = 0; k < 4; k++)
      sb_printf(&b, "cascade_%s_latency_seconds{quantile=\"%g\"} %.9f\n",
                ln[i], q[k], (double)v[k] / 1e9);
    sb_printf(&b,
              "# HELP cascade_%ss_timed_total Store %ss timed\n"
              "# TYPE cascade_%ss_timed_total counter\n"
              "cascade_%ss_timed_total %llu\n",
              ln[i], ln[i], ln[i], ln[i], (unsigned long long)l[i]->count);
  }
#undef COUNTER
#undef GAUGE
  if (b.oom) {
    free(b.p);
    return NULL;
  }
  *len = b.len;
  return b.p;
}
