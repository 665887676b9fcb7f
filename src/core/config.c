/*
 * config.c - the configuration object: string-typed settings so that the
 * daemon, the CLI and config files can pass any setting through by name.
 *
 * One table describes every setting (name, type, where it is stored, its
 * bounds); set/get/names are all driven by it, so adding a setting is one
 * line here plus its use in the engine.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/internal.h"

enum st { ST_SIZE, ST_BOOL, ST_ENUM, ST_UINT, ST_STR };

struct setting {
  const char *name;
  enum st type;
  size_t off;                 /* offsetof in struct cascade_config */
  uint64_t min, max;          /* ST_SIZE, ST_UINT */
  const char *const *choices; /* ST_ENUM: NULL-terminated */
};

/* ST_STR settings are stored in char arrays of CASCADE_CFG_STR bytes
 * (max - 1 characters). */

static const char *const backing_names[] = {"memfd", "shm", NULL};
static const char *const sync_names[] = {"none", "batch", "always", NULL};
static const char *const write_names[] = {"back", "through", "selective", NULL};
static const char *const io_names[] = {"auto", "direct", "buffered", NULL};

#define OFF(f) offsetof(struct cascade_config, f)
/* X(name, type, field, min, max, choices) */
#define SETTINGS(X)                                                            \
  X("dram.capacity", ST_SIZE, dram_capacity, DRAM_ALIGN, UINT64_C(1) << 50,    \
    NULL)                                                                      \
  X("dram.hugepages", ST_BOOL, dram_hugepages, 0, 1, NULL)                     \
  X("dram.prefault", ST_BOOL, dram_prefault, 0, 1, NULL)                       \
  X("dram.backing", ST_ENUM, dram_backing, 0, 0, backing_names)                \
  X("max_value", ST_SIZE, max_value, 1, UINT64_C(1) << 40, NULL)               \
  X("dedup", ST_BOOL, dedup, 0, 1, NULL)                                       \
  X("pool.threads", ST_UINT, pool_threads, 0, 64, NULL)                        \
  X("policy", ST_ENUM, policy, 0, 0, policy_names)                             \
  X("index.shards", ST_UINT, shards, 1, 4096, NULL)                            \
  X("stats.latency", ST_BOOL, stats_latency, 0, 1, NULL)                       \
  X("disk.dir", ST_STR, disk_dir, 0, CASCADE_CFG_STR, NULL)                    \
  X("disk.rank", ST_UINT, disk_rank, 0, 999, NULL)                             \
  X("disk.capacity", ST_SIZE, disk_capacity, 0, UINT64_C(1) << 60, NULL)       \
  X("disk.segment_size", ST_SIZE, disk_segment_size, UINT64_C(1) << 20,        \
    UINT64_C(1) << 40, NULL)                                                   \
  X("disk.sync", ST_ENUM, disk_sync, 0, 0, sync_names)                         \
  X("disk.write", ST_ENUM, disk_write, 0, 0, write_names)                      \
  X("disk.write_after", ST_UINT, disk_write_after, 1, 1u << 30, NULL)          \
  X("disk.promote_after", ST_UINT, disk_promote_after, 0, 1u << 30, NULL)      \
  X("disk.io", ST_ENUM, disk_io, 0, 0, io_names)                               \
  X("disk.queue_depth", ST_UINT, disk_queue_depth, 1, 256, NULL)               \
  X("disk.write_buffer", ST_UINT, disk_write_buffer, UINT64_C(64) << 10,       \
    UINT64_C(256) << 20, NULL)                                                 \
  X("disk.compact_below", ST_UINT, disk_compact_below, 1, 100, NULL)           \
  X("disk.stripe_count", ST_UINT, disk_stripe_count, 0, 65535, NULL)           \
  X("disk.stripe_size", ST_SIZE, disk_stripe_size, 0, UINT64_C(1) << 40, NULL)

#define AS_SETTING(n, t, f, lo, hi, ch) {n, t, OFF(f), lo, hi, ch},
#define AS_NAME(n, t, f, lo, hi, ch) n,
static const struct setting settings[] = {SETTINGS(AS_SETTING)};
static const char *const setting_names[] = {SETTINGS(AS_NAME) NULL};
#define NSETTINGS (sizeof settings / sizeof settings[0])

void config_defaults(struct cascade_config *cfg) {
  memset(cfg, 0, sizeof *cfg);
  cfg->dram_capacity = UINT64_C(1) << 30;
  cfg->dram_backing = DRAM_BACKING_MEMFD;
  cfg->max_value = UINT64_C(1) << 30;
  cfg->dedup = 1;
  snprintf(cfg->policy, sizeof cfg->policy, "%s", "semantic");
  cfg->shards = 64;
  cfg->stats_latency = 1;
  cfg->disk_segment_size = UINT64_C(256) << 20;
  cfg->disk_sync = 1; /* batch */
  cfg->disk_write_after = 2;
  cfg->disk_promote_after = 3;
  cfg->disk_queue_depth = 8;
  cfg->disk_write_buffer = UINT32_C(2) << 20;
  cfg->disk_compact_below = 50;
}

int cascade_config_new(cascade_config **out) {
  if (!out) return -EINVAL;
  cascade_config *cfg = malloc(sizeof *cfg);
  if (!cfg) return -ENOMEM;
  config_defaults(cfg);
  *out = cfg;
  return 0;
}

void cascade_config_free(cascade_config *cfg) { free(cfg); }

static const struct setting *find_setting(const char *name) {
  for (size_t i = 0; i < NSETTINGS; i++)
    if (strcmp(settings[i].name, name) == 0) return &settings[i];
  return NULL;
}

/* Parse "123", "64k", "1.5g", "512MiB" (binary units) into bytes. */
static int parse_size(const char *s, uint64_t *out) {
  while (isspace((unsigned char)*s)) s++;
  if (!isdigit((unsigned char)*s)) return -EINVAL;
  errno = 0;
  char *end;
  uint64_t whole = strtoull(s, &end, 10);
  if (errno) return -EINVAL;
  uint64_t frac_num = 0, frac_den = 1;
  if (*end == '.') {
    end++;
    if (!isdigit((unsigned char)*end)) return -EINVAL;
    while (isdigit((unsigned char)*end)) {
      if (frac_den < UINT64_C(1000000000)) {
        frac_num = frac_num * 10 + (uint64_t)(*end - '0');
        frac_den *= 10;
      }
      end++;
    }
  }
  unsigned shift = 0;
  switch (tolower((unsigned char)*end)) {
  case 'k':
    shift = 10;
    break;
  case 'm':
    shift = 20;
    break;
  case 'g':
    shift = 30;
    break;
  case 't':
    shift = 40;
    break;
  default:
    break;
  }
  if (shift) {
    end++;
    if (tolower((unsigned char)*end) == 'i') end++;
    if (tolower((unsigned char)*end) == 'b') end++;
  } else if (tolower((unsigned char)*end) == 'b') {
    end++;
  }
  while (isspace((unsigned char)*end)) end++;
  if (*end) return -EINVAL;
  if (frac_num && !shift) return -EINVAL; /* "1.5" bytes */
  if (shift && whole > (UINT64_MAX >> shift)) return -EINVAL;
  uint64_t v = whole << shift;
  if (frac_num) v += (frac_num << shift) / frac_den;
  *out = v;
  return 0;
}

static int parse_bool(const char *s, int *out) {
  static const char *const yes[] = {"1", "true", "yes", "on"};
  static const char *const no[] = {"0", "false", "no", "off"};
  for (size_t i = 0; i < 4; i++) {
    if (strcasecmp(s, yes[i]) == 0) return *out = 1, 0;
    if (strcasecmp(s, no[i]) == 0) return *out = 0, 0;
  }
  return -EINVAL;
}

int cascade_config_set(cascade_config *cfg, const char *name,
                       const char *value) {
  if (!cfg || !name || !value) return -EINVAL;
  const struct setting *st = find_setting(name);
  if (!st) return CASCADE_EUNKNOWN;
  char *field = (char *)cfg + st->off;
  switch (st->type) {
  case ST_SIZE: {
    uint64_t v;
    if (parse_size(value, &v) < 0 || v < st->min || v > st->max) return -EINVAL;
    memcpy(field, &v, sizeof v);
    return 0;
  }
  case ST_UINT: {
    uint64_t v;
    if (parse_size(value, &v) < 0 || v < st->min || v > st->max) return -EINVAL;
    if (strcmp(name, "index.shards") == 0 && (v & (v - 1))) return -EINVAL;
    uint32_t v32 = (uint32_t)v;
    memcpy(field, &v32, sizeof v32);
    return 0;
  }
  case ST_STR: {
    size_t n = strlen(value);
    if (n >= st->max || memchr(value, '\n', n)) return -EINVAL;
    memcpy(field, value, n + 1);
    return 0;
  }
  case ST_BOOL: {
    int v;
    if (parse_bool(value, &v) < 0) return -EINVAL;
    memcpy(field, &v, sizeof v);
    return 0;
  }
  case ST_ENUM:
    for (int i = 0; st->choices[i]; i++) {
      if (strcasecmp(value, st->choices[i]) != 0) continue;
      if (st->choices == policy_names) /* stored by name */
        snprintf(cfg->policy, sizeof cfg->policy, "%s", st->choices[i]);
      else
        memcpy(field, &i, sizeof i);
      return 0;
    }
    return -EINVAL;
  }
  return -EINVAL;
}

int cascade_config_get(const cascade_config *cfg, const char *name, char *buf,
                       size_t cap) {
  if (!cfg || !name || (!buf && cap)) return -EINVAL;
  const struct setting *st = find_setting(name);
  if (!st) return CASCADE_EUNKNOWN;
  const char *field = (const char *)cfg + st->off;
  char tmp[CASCADE_CFG_STR];
  switch (st->type) {
  case ST_STR:
    snprintf(tmp, sizeof tmp, "%s", field);
    break;
  case ST_SIZE: {
    uint64_t v;
    memcpy(&v, field, sizeof v);
    snprintf(tmp, sizeof tmp, "%" PRIu64, v);
    break;
  }
  case ST_UINT: {
    uint32_t v;
    memcpy(&v, field, sizeof v);
    snprintf(tmp, sizeof tmp, "%" PRIu32, v);
    break;
  }
  case ST_BOOL: {
    int v;
    memcpy(&v, field, sizeof v);
    snprintf(tmp, sizeof tmp, "%s", v ? "true" : "false");
    break;
  }
  case ST_ENUM:
    if (st->choices == policy_names) {
      snprintf(tmp, sizeof tmp, "%s", cfg->policy);
    } else {
      int v;
      memcpy(&v, field, sizeof v);
      snprintf(tmp, sizeof tmp, "%s", st->choices[v]);
    }
    break;
  }
  size_t n = strlen(tmp);
  if (n + 1 > cap) return -ENOBUFS;
  memcpy(buf, tmp, n + 1);
  return 0;
}

const char *const *cascade_config_names(void) { return setting_names; }
