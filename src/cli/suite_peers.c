/*
 * suite_peers.c - the peers whose only client is Python, in `cascade bench
 * suite`: Mooncake Store and LMCache.  Each is a driver in bench/peers
 * (mooncake_drv.py, lmcache_drv.py) that runs the suite's workloads itself,
 * on the same seeded data and keys, checks every byte, and prints the
 * suite's JSON; suite.c (run_driver) starts it in the system's directory
 * with the run's configuration and takes its rows.  These adapters only
 * name the driver, its virtual environment (under the peers directory:
 * --peers, $CASCADE_PEERS, else .peers) and its arguments; their hooks are
 * NULL.
 *
 *   mooncake        Mooncake Store (mooncake-transfer-engine-non-cuda): a
 *                   real mooncake_master and a mooncake_client process that
 *                   owns the memory segment, the driver's
 *                   MooncakeDistributedStore over the TCP transport on
 *                   loopback, batch_put_from / batch_get_into on registered
 *                   buffers (zero-copy API).
 *   lmcache-cpu     LMCache's LocalCPUBackend (pinned CPU memory).
 *   lmcache-disk    LMCache's LocalDiskBackend (a file per key; cold reads
 *                   after dropping the files' page cache).
 *   lmcache-server  LMCache's standalone lmcache_server through its
 *                   RemoteBackend (lm://127.0.0.1:PORT).
 * How to install them: bench/peers/README.md (`make bench` does it).
 */
#include <stddef.h>

#include "suite.h"

static const char *const mooncake_args[] = {"--segment", "server", "--api",
                                            "zerocopy", NULL};
static const char *const lmc_cpu_args[] = {"--backend", "cpu", NULL};
static const char *const lmc_disk_args[] = {"--backend", "disk", NULL};
static const char *const lmc_lm_args[] = {"--backend", "lm", NULL};

const suite_adapter suite_mooncake = {
    .name = "mooncake",
    .kind = "memory",
    .driver = "mooncake_drv.py",
    .venv = "venv",
    .pip = "mooncake-transfer-engine-non-cuda numpy",
    .dargs = mooncake_args,
};

const suite_adapter suite_lmcache_cpu = {
    .name = "lmcache-cpu",
    .kind = "memory",
    .driver = "lmcache_drv.py",
    .venv = "venv-lmc",
    .pip = "lmcache",
    .dargs = lmc_cpu_args,
};

const suite_adapter suite_lmcache_disk = {
    .name = "lmcache-disk",
    .kind = "disk",
    .driver = "lmcache_drv.py",
    .venv = "venv-lmc",
    .pip = "lmcache",
    .dargs = lmc_disk_args,
};

const suite_adapter suite_lmcache_server = {
    .name = "lmcache-server",
    .kind = "memory",
    .driver = "lmcache_drv.py",
    .venv = "venv-lmc",
    .pip = "lmcache",
    .dargs = lmc_lm_args,
};
