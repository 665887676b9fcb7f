#!/usr/bin/env python3
"""mooncake_drv.py - the suite's workloads on a real Mooncake Store
(PyPI mooncake-transfer-engine-non-cuda): starts a real mooncake_master (with
its built-in HTTP metadata server) on free loopback ports, optionally a
separate real store server process (mooncake_client, which owns the memory
segment, so every byte crosses the TCP transport), and drives it through the
Python client MooncakeDistributedStore, protocol "tcp", 127.0.0.1.

  --api zerocopy   put_from / get_into (batch_put_from / batch_get_into when
                   --batch > 1) on buffers registered with register_buffer:
                   the pool (source) and one read buffer holding every block
  --api bytes      put(key, memoryview) / get(key) -> bytes (put_batch /
                   get_batch), the copy into the read buffer is timed
  --segment local  the driver's own client mounts the global segment
                   (Mooncake then uses memcpy, not TCP, for its own segment)
  --segment server a separate mooncake_client process mounts it; the driver
                   mounts none (global_segment_size=0): data go over TCP

Prints one JSON object per workload (suite schema) on stdout; logs on stderr.
"""
import ctypes
import os
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version as pkg_version

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peer_common as pc  # noqa: E402

MB = 1 << 20


def addr(a):
    return a.__array_interface__["data"][0]


def main():
    p = pc.base_args(__doc__.splitlines()[0])
    p.add_argument("--api", choices=["zerocopy", "bytes"], default="zerocopy")
    p.add_argument("--segment", choices=["local", "server"], default="server")
    p.add_argument("--bin", default=None, help="dir of mooncake_master / "
                   "mooncake_client (default: next to this python)")
    a = p.parse_args()
    try:
        from mooncake.store import MooncakeDistributedStore
    except ImportError as e:
        pc.emit([pc.result("mooncake", "memory", None, "write", a, 0, 0, 0,
                           [], 0, "skipped", "cannot import mooncake: %s" % e)],
                a.out)
        return 0
    ver = "mooncake-transfer-engine-non-cuda " + pkg_version(
        "mooncake-transfer-engine-non-cuda")
    bindir = a.bin or os.path.dirname(sys.executable)
    total = a.block * a.blocks
    # Eviction starts at 90% of the segment: keep the working set well below.
    seg = (total * 5 // 4 + 64 * MB + MB - 1) // MB * MB
    lbuf = max(64 * MB, 2 * a.batch * a.block)
    work = a.dir or tempfile.mkdtemp(prefix="mooncake-")
    os.makedirs(work, exist_ok=True)
    procs = []

    def spawn(name, args):
        log = open(os.path.join(work, name + ".log"), "w")
        pr = subprocess.Popen([os.path.join(bindir, name)] + args,
                              stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=True)
        procs.append(pr)
        return pr

    d = pc.Data(a.seed, a.block, a.blocks)
    out = []
    store = None
    cur = "write"  # the workload a failure is reported on
    try:
        rpc, meta, metrics = pc.free_port(), pc.free_port(), pc.free_port()
        m = spawn("mooncake_master", [
            "--rpc_port=%d" % rpc, "--rpc_address=127.0.0.1",
            "--enable_http_metadata_server=true",
            "--http_metadata_server_host=127.0.0.1",
            "--http_metadata_server_port=%d" % meta,
            "--metrics_host=127.0.0.1", "--metrics_port=%d" % metrics,
            "--enable_metric_reporting=false",
            # Leases would block clear (remove) for 10 s after a get.
            "--default_kv_lease_ttl=100"])
        pc.wait_port(rpc, proc=m)
        pc.wait_port(meta, proc=m)
        meta_url = "http://127.0.0.1:%d/metadata" % meta
        master = "127.0.0.1:%d" % rpc
        if a.segment == "server":
            cport = pc.free_port()
            c = spawn("mooncake_client", [
                "--host=127.0.0.1", "--port=%d" % cport,
                "--global_segment_size=%d" % seg, "--local_buffer_size=0",
                "--master_server_address=" + master,
                "--metadata_server=" + meta_url, "--protocol=tcp"])
            pc.wait_port(cport, proc=c)
        store = MooncakeDistributedStore()
        t0 = time.time()
        rc = store.setup("127.0.0.1", meta_url,
                         seg if a.segment == "local" else 0, lbuf, "tcp", "",
                         master)
        if rc != 0:
            raise RuntimeError("setup: %d" % rc)
        setup_s = time.time() - t0

        dst = np.zeros(total, dtype=np.uint8)
        dst[::4096] = 1  # prefault
        if a.api == "zerocopy":
            for buf in (d.pool, dst):
                rc = store.register_buffer(addr(buf), buf.nbytes)
                if rc != 0:
                    raise RuntimeError("register_buffer: %d" % rc)
        pool_a, dst_a = addr(d.pool), addr(dst)
        wls = a.workloads.split(",")
        extra = {"api": a.api, "segment": a.segment, "protocol": "tcp",
                 "global_segment_size": seg, "local_buffer_size": lbuf,
                 "setup_s": round(setup_s, 4)}

        # write
        lat, errs = [], 0
        t0 = pc.now()
        for j in range(0, a.blocks, a.batch):
            ks = d.keys[j: j + a.batch]
            idx = range(j, j + len(ks))
            c0 = pc.now()
            if a.api == "zerocopy":
                if len(ks) == 1:
                    rcs = [store.put_from(ks[0], pool_a + d.src_off(j),
                                          a.block)]
                else:
                    rcs = store.batch_put_from(
                        ks, [pool_a + d.src_off(i) for i in idx],
                        [a.block] * len(ks))
            else:
                if len(ks) == 1:
                    rcs = [store.put(ks[0], memoryview(d.src(j)))]
                else:
                    rcs = [store.put_batch(ks, [memoryview(d.src(i))
                                               for i in idx])]
            lat.append(pc.now() - c0)
            bad = [(k, r) for k, r in zip(ks, rcs) if r != 0]
            if bad:
                raise RuntimeError("put %s: %d" % bad[0])
        secs = (pc.now() - t0) / 1e9
        if "write" in wls:
            out.append(pc.result("mooncake", "memory", ver, "write", a, secs,
                                 total, a.blocks, lat, errs, extra=extra))

        # hot-read: into one buffer, then compare every byte
        cur = "hot-read"
        lat = []
        t0 = pc.now()
        for j in range(0, a.blocks, a.batch):
            ks = d.keys[j: j + a.batch]
            c0 = pc.now()
            if a.api == "zerocopy":
                if len(ks) == 1:
                    rcs = [store.get_into(ks[0], dst_a + j * a.block,
                                          a.block)]
                else:
                    rcs = store.batch_get_into(
                        ks, [dst_a + (j + k) * a.block
                             for k in range(len(ks))], [a.block] * len(ks))
            else:
                vs = [store.get(ks[0])] if len(ks) == 1 else \
                    store.get_batch(ks)
                rcs = []
                for k, v in enumerate(vs):
                    o = (j + k) * a.block
                    dst[o: o + len(v)] = np.frombuffer(v, dtype=np.uint8)
                    rcs.append(len(v))
            lat.append(pc.now() - c0)
            for k, r in zip(ks, rcs):
                if r != a.block:
                    raise RuntimeError("get %s: %d (want %d bytes)" %
                                       (k, r, a.block))
        secs = (pc.now() - t0) / 1e9
        for i in range(a.blocks):
            o = i * a.block
            if not np.array_equal(dst[o: o + a.block], d.src(i)):
                raise RuntimeError("key %s: wrong bytes" % d.keys[i])
        if "hot-read" in wls:
            out.append(pc.result("mooncake", "memory", ver, "hot-read", a,
                                 secs, total, a.blocks, lat, 0, extra=extra))

        # clear, checked on the first keys
        n = store.remove_all(True)
        left = sum(1 for k in d.keys[:16] if store.is_exist(k) == 1)
        if left:
            raise RuntimeError("clear: %d of 16 keys still present "
                               "(remove_all: %d)" % (left, n))
        if a.api == "zerocopy":
            store.unregister_buffer(pool_a)
            store.unregister_buffer(dst_a)
    except Exception as e:  # one failed result, with the reason
        out.append(pc.result("mooncake", "memory", ver, cur, a, 0, 0, 0,
                             [], 1, "failed", "%s: %s" % (cur, e)))
    finally:
        if store is not None:
            store.close()
        pc.stop_procs(procs)
    return pc.finish(out, a, work)


if __name__ == "__main__":
    sys.exit(main())
