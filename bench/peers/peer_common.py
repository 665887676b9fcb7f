"""peer_common.py - what the Python peer drivers share with `cascade bench
suite` (src/cli/suite.c): the same data (a 64 MiB splitmix64 pool from the
seed; block i is the window at 8 * (((i + mix64(seed)) * ODD) mod (POOL/8))),
the same keys ("blk:%016llx"), the same workloads (write = put every block
then sync, one span; hot-read = get every block into one buffer, one span,
then compare every byte), per-call latency percentiles, and one JSON object
per (system, workload) in the suite's schema (the "machine" part is left to
the harness).
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np

POOL_BYTES = 64 << 20
ODD = 0x9E3779B97F4A7C15
DEFAULT_SEED = 0x6361736361646533
M64 = (1 << 64) - 1


def mix64(z):
    z &= M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def make_pool(seed, block):
    """The suite's pool: POOL_BYTES + one block, word k = mix64(seed+(k+1)*ODD)."""
    n = (POOL_BYTES + block) // 8
    with np.errstate(over="ignore"):
        x = np.uint64(seed) + (np.arange(1, n + 1, dtype=np.uint64) *
                               np.uint64(ODD))
        z = x
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    pool = np.zeros(POOL_BYTES + block, dtype=np.uint8)
    pool[: n * 8] = z.view(np.uint8)
    return pool


class Data:
    def __init__(self, seed, block, nblocks):
        if nblocks > POOL_BYTES // 8:
            raise SystemExit("at most %d blocks" % (POOL_BYTES // 8))
        self.seed, self.block, self.nblocks = seed, block, nblocks
        self.pool = make_pool(seed, block)
        self.off = mix64(seed)
        self.keys = ["blk:%016x" % i for i in range(nblocks)]

    def src_off(self, i):
        w = (((i + self.off) * ODD) & M64) & (POOL_BYTES // 8 - 1)
        return w * 8

    def src(self, i):
        o = self.src_off(i)
        return self.pool[o: o + self.block]


def pct(lat, p):
    if not lat:
        return 0
    s = sorted(lat)
    k = max(0, min(len(s) - 1, int(-(-p * len(s) // 1)) - 1))  # nearest rank
    return s[k]


def result(sysname, kind, version, wl, a, secs, nbytes, nblocks, lat, errors,
           status="ok", reason=None, extra=None):
    o = {
        "bench": "suite", "system": sysname, "kind": kind, "version": version,
        "workload": wl, "nodes": 1,
        "timestamp": time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()),
        "status": status, "reason": reason,
        "config": {"block": a.block, "blocks": a.blocks,
                   "total_bytes": a.block * a.blocks, "threads": 1,
                   "batch": a.batch, "seed": a.seed, "model": None,
                   "keys": "blk:%016llx",
                   "data": "windows of a seeded splitmix64 pool, distinct per block"},
    }
    if status != "skipped":
        n = len(lat)
        o["result"] = {
            "seconds": secs, "bytes": nbytes, "blocks": nblocks,
            "gbps": nbytes / secs / 1e9 if secs > 0 else None,
            "ops_per_sec": nblocks / secs if secs > 0 else None,
            "calls": n, "errors": errors,
            "timing": ("one span, first put to end of sync" if wl == "write"
                       else "one span, first get to last get; every byte compared after it"),
            "latency_ns": {"per": "call of up to %d blocks" % a.batch,
                           "p50": pct(lat, 0.50), "p90": pct(lat, 0.90),
                           "p99": pct(lat, 0.99), "p999": pct(lat, 0.999),
                           "max": max(lat) if lat else 0,
                           "mean": (sum(lat) / n) if n else 0},
        }
    if extra:
        o["driver"] = extra
    return o


def base_args(desc):
    p = argparse.ArgumentParser(description=desc)
    p.add_argument("--block", type=int, default=1 << 20)
    p.add_argument("--blocks", type=int, default=1024)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--seed", type=lambda s: int(s, 0), default=DEFAULT_SEED)
    p.add_argument("--dir", default=None,
                   help="a fresh directory of this system's own")
    p.add_argument("--workloads", default="write,hot-read")
    p.add_argument("--out", default="-", help="JSON lines here (- = stdout)")
    return p


def emit(objs, out):
    f = sys.stdout if out == "-" else open(out, "w")
    for o in objs:
        f.write(json.dumps(o) + "\n")
    f.flush()
    if f is not sys.stdout:
        f.close()


def free_port():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_port(port, timeout=20.0, proc=None):
    import socket
    t = time.time()
    while time.time() - t < timeout:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("server exited with %d" % proc.returncode)
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("port %d not listening after %.0fs" % (port, timeout))


now = time.perf_counter_ns


def stop_procs(procs):
    """SIGTERM each started process group (newest first), SIGKILL after 5 s."""
    for pr in reversed(procs):
        if pr.poll() is None:
            os.killpg(pr.pid, signal.SIGTERM)
            try:
                pr.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(pr.pid, signal.SIGKILL)
                pr.wait()


def finish(out, args, work):
    """Remove a work directory the driver made, print the results, and the
    exit status: 1 if any workload failed."""
    if args.dir is None:
        shutil.rmtree(work, ignore_errors=True)
    emit(out, args.out)
    return 1 if any(o["status"] == "failed" for o in out) else 0
