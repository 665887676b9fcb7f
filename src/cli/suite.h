/*
 * suite.h - `cascade bench suite`: one harness that runs the same workload
 * on many storage systems, each behind an adapter.  Every system is the
 * real one (a real server started and stopped by its adapter, or the real
 * library), named by its real name; data are identical across systems
 * (the same seed) and every byte read is checked.
 *
 * Life cycle of an adapter, driven by the harness (suite.c):
 *   init(cfg)              start the system (server on a free loopback port,
 *                          files in cfg->dir, ...); 0, SUITE_SKIP with the
 *                          reason in msg (not installed, cannot run here),
 *                          or an error (msg)
 *   version                the system's version string (for the results)
 *   open(t) / close        one handle per worker thread (a connection, a
 *                          transaction context...); handles are used by one
 *                          thread at a time
 *   put / get              a batch of n blocks (the blocks of one request);
 *                          adapters with a batch API use it (pipelining,
 *                          MGET, get_batch), others loop
 *   contains               how many of n keys are present
 *   sync                   make everything put so far complete and durable
 *                          as the system offers it (fsync, flush...): part
 *                          of the timed write
 *   cold                   make the next reads come from the device: drop
 *                          the page cache of its files, or restart the
 *                          store on its files; -ENOTSUP for systems that
 *                          keep everything in memory (no cold read)
 *   clear                  remove every block (between workloads)
 *   fini                   stop the system, remove its files
 * Errors are negative errno values; the harness reports them with msg.
 */
#ifndef CASCADE_SUITE_H
#define CASCADE_SUITE_H

#include <stddef.h>
#include <stdint.h>

#define SUITE_SKIP 77 /* init: the system cannot run here (msg says why) */
#define SUITE_MSG 512

typedef struct suite_cfg {
  uint64_t block;   /* bytes per block */
  uint64_t nblocks; /* blocks in the working set */
  uint64_t capacity; /* blocks held at once at most: nblocks, plus the new
                        blocks the mixed workload puts (size for this) */
  int threads;      /* worker threads (connections) */
  int batch;        /* blocks per put/get call */
  const char *dir;  /* a fresh, empty directory of this system's own (on
                       the file system under test) */
  const char *cascaded; /* path of the cascaded binary */
  uint64_t seed;
} suite_cfg;

typedef struct suite_item {
  const void *key;
  size_t klen;
  void *val;   /* put: the value (read only); get: the buffer */
  size_t vlen; /* put: its length; get: in: buffer size, out: length */
  int rc;      /* out: 0, -ENOENT (get: absent), or another error */
} suite_item;

typedef struct suite_adapter {
  const char *name; /* e.g. "redis", "posix-file-per-block" */
  const char *kind; /* "memory", "disk" or "tiered": what cold means */
  int (*init)(const suite_cfg *cfg, void **st, char *msg, size_t cap);
  const char *(*version)(void *st);
  int (*open)(void *st, int t, void **h, char *msg, size_t cap);
  void (*close)(void *st, void *h);
  /* Return the number of items with rc 0, or a negative errno when the
   * whole call failed (msg set). */
  int (*put)(void *h, suite_item *it, int n, char *msg, size_t cap);
  int (*get)(void *h, suite_item *it, int n, char *msg, size_t cap);
  int (*contains)(void *h, suite_item *it, int n, char *msg, size_t cap);
  int (*sync)(void *st, char *msg, size_t cap);
  int (*cold)(void *st, char *msg, size_t cap);
  int (*clear)(void *st, char *msg, size_t cap);
  void (*fini)(void *st);
  /* A peer whose only client is Python (suite_peers.c): the driver, a
   * script in bench/peers, runs the workloads itself and prints the
   * suite's JSON; it runs on the python of the virtual environment venv
   * (under the peers directory), where `pip install pip` puts the peer.
   * Its hooks above are NULL. */
  const char *driver;
  const char *venv;
  const char *pip;
  const char *const *dargs; /* the driver's own arguments, NULL-ended */
} suite_adapter;

/* The adapters (weak: one not built in is simply absent). */
extern const suite_adapter suite_cascade __attribute__((weak));
extern const suite_adapter suite_cascade_server __attribute__((weak));
extern const suite_adapter suite_cascade_shm __attribute__((weak));
extern const suite_adapter suite_redis __attribute__((weak));
extern const suite_adapter suite_memcached __attribute__((weak));
extern const suite_adapter suite_posix __attribute__((weak));
extern const suite_adapter suite_lmdb __attribute__((weak));
extern const suite_adapter suite_hdf5 __attribute__((weak));
extern const suite_adapter suite_mooncake __attribute__((weak));
extern const suite_adapter suite_lmcache_cpu __attribute__((weak));
extern const suite_adapter suite_lmcache_disk __attribute__((weak));
extern const suite_adapter suite_lmcache_server __attribute__((weak));

#endif /* CASCADE_SUITE_H */
