#!/usr/bin/env python3
"""lmcache_drv.py - the suite's workloads on LMCache's real storage backends
(PyPI lmcache; runs on CPU: torch's CUDA build installs but LMCache detects
no GPU and uses its CPU device), driven in process:

  --backend cpu   LocalCPUBackend: LMCache's in-memory hot cache (its
                  MixedMemoryAllocator, LRU policy); put = allocate a
                  MemoryObj + copy the block in + submit_put_task;
                  get = get_blocking + copy out
  --backend disk  LocalDiskBackend on --dir (one file per key; writes are
                  asynchronous on LMCache's disk worker, sync = wait until
                  every key is resident); cold-read writes its files back and
                  drops their page cache (fsync, posix_fadvise DONTNEED)
  --backend lm    RemoteBackend with remote_url lm://127.0.0.1:PORT to a
                  real `lmcache_server 127.0.0.1 PORT cpu` process (LMCache's
                  standalone server, its in-memory store); sync = wait for
                  every put future

Keys are CacheEngineKey("bench", 1, 0, i, uint8); a block is one KV_2LTD
MemoryObj of uint8 [2, 1, 256, block/512] (or [2, 1, 1, block/2]).
Prints one JSON object per workload (suite schema) on stdout; logs on stderr.
"""
import asyncio
import glob
import logging
import os
import subprocess
import sys
import tempfile
import threading
import time
from importlib.metadata import version as pkg_version

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peer_common as pc  # noqa: E402

GB = 1 << 30


def main():
    p = pc.base_args(__doc__.splitlines()[0])
    p.add_argument("--backend", choices=["cpu", "disk", "lm"], default="cpu")
    a = p.parse_args()
    name = {"cpu": "lmcache-cpu", "disk": "lmcache-disk",
            "lm": "lmcache-server"}[a.backend]
    kind = "disk" if a.backend == "disk" else "memory"
    try:
        import torch
        from lmcache.utils import CacheEngineKey
        from lmcache.v1.config import LMCacheEngineConfig
        from lmcache.v1.memory_management import MemoryFormat
        from lmcache.v1.metadata import LMCacheMetadata
        from lmcache.v1.storage_backend.local_cpu_backend import LocalCPUBackend
    except Exception as e:  # noqa: BLE001
        pc.emit([pc.result(name, kind, None, "write", a, 0, 0, 0, [], 0,
                           "skipped", "cannot import lmcache: %s" % e)], a.out)
        return 0
    logging.getLogger("lmcache").setLevel(logging.WARNING)
    ver = "lmcache %s (torch %s)" % (pkg_version("lmcache"), torch.__version__)
    if a.block % 2:
        raise SystemExit("--block must be even")
    shape = (torch.Size([2, 1, 256, a.block // 512]) if a.block % 512 == 0
             else torch.Size([2, 1, 1, a.block // 2]))
    total = a.block * a.blocks
    work = a.dir or tempfile.mkdtemp(prefix="lmcache-")
    os.makedirs(work, exist_ok=True)
    d = pc.Data(a.seed, a.block, a.blocks)
    pool_t = torch.from_numpy(d.pool)
    dst = np.zeros(total, dtype=np.uint8)
    dst[::4096] = 1
    dst_t = torch.from_numpy(dst)
    out, procs = [], []
    loop = thread = be = cpu = None
    cur = ["write"]  # the workload a failure is reported on
    cpu_gb = (total * 5 // 4 + GB // 4) / GB
    extra = {"backend": a.backend, "max_local_cpu_size_gb": round(cpu_gb, 3),
             "shape": list(shape), "fmt": "KV_2LTD"}
    try:
        cfgkw = dict(chunk_size=256, local_cpu=(a.backend == "cpu"),
                     max_local_cpu_size=cpu_gb, lmcache_instance_id="bench")
        if a.backend == "disk":
            cfgkw.update(local_disk=os.path.join(work, "disk"),
                         max_local_disk_size=total * 2 / GB + 1)
        if a.backend == "lm":
            port = pc.free_port()
            log = open(os.path.join(work, "lmcache_server.log"), "w")
            srv = subprocess.Popen(
                [os.path.join(os.path.dirname(sys.executable),
                              "lmcache_server"), "127.0.0.1", str(port),
                 "cpu"], stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)
            procs.append(srv)
            pc.wait_port(port, timeout=60, proc=srv)
            cfgkw.update(remote_url="lm://127.0.0.1:%d" % port,
                         remote_serde="naive")
            extra["remote_url"] = cfgkw["remote_url"]
        cfg = LMCacheEngineConfig.from_defaults(**cfgkw)
        md = LMCacheMetadata(model_name="bench", world_size=1,
                             local_world_size=1, worker_id=0,
                             local_worker_id=0, kv_dtype=torch.uint8,
                             kv_shape=(1, 2, shape[2], 1, shape[3]))
        cpu = LocalCPUBackend(cfg, md)
        if a.backend in ("disk", "lm"):
            loop = asyncio.new_event_loop()
            thread = threading.Thread(target=loop.run_forever, daemon=True)
            thread.start()
        if a.backend == "cpu":
            be = cpu
        elif a.backend == "disk":
            from lmcache.v1.storage_backend.local_disk_backend import \
                LocalDiskBackend
            be = LocalDiskBackend(config=cfg, loop=loop,
                                  local_cpu_backend=cpu, dst_device="cpu",
                                  metadata=md)
        else:
            from lmcache.v1.storage_backend.remote_backend import RemoteBackend
            be = RemoteBackend(cfg, md, loop, cpu, dst_device="cpu")
            if be.connection is None:
                raise RuntimeError("no connection to %s" % cfg.remote_url)
        keys = [CacheEngineKey("bench", 1, 0, i, torch.uint8)
                for i in range(a.blocks)]
        wls = a.workloads.split(",")

        # write: put every block, then sync (one span)
        lat, futs = [], []
        t0 = pc.now()
        for j in range(0, a.blocks, a.batch):
            c0 = pc.now()
            for i in range(j, min(j + a.batch, a.blocks)):
                mo = cpu.allocate(shape, torch.uint8, fmt=MemoryFormat.KV_2LTD)
                if mo is None:
                    raise RuntimeError("key %s: allocate failed" % d.keys[i])
                o = d.src_off(i)
                mo.tensor.view(-1).copy_(pool_t[o: o + a.block])
                f = be.submit_put_task(keys[i], mo)
                if a.backend == "lm":
                    futs.append((f, mo))
                else:
                    mo.ref_count_down()  # the backend holds its own ref
            lat.append(pc.now() - c0)
        # sync
        if a.backend == "lm":
            for f, mo in futs:
                f.result()
                mo.ref_count_down()
        elif a.backend == "disk":
            while not all(be.contains(k) for k in keys):
                time.sleep(0.0005)
        secs = (pc.now() - t0) / 1e9
        missing = [d.keys[i] for i, k in enumerate(keys) if not be.contains(k)]
        if missing:
            raise RuntimeError("key %s: missing after write (%d missing)" %
                               (missing[0], len(missing)))
        if "write" in wls:
            out.append(pc.result(name, kind, ver, "write", a, secs, total,
                                 a.blocks, lat, 0, extra=extra))

        def read(wl):
            cur[0] = wl
            lat = []
            dst[:] = 0
            t0 = pc.now()
            for j in range(0, a.blocks, a.batch):
                c0 = pc.now()
                for i in range(j, min(j + a.batch, a.blocks)):
                    mo = be.get_blocking(keys[i])
                    if mo is None:
                        raise RuntimeError("key %s: missing" % d.keys[i])
                    v = mo.tensor.view(-1)
                    if v.numel() != a.block:
                        raise RuntimeError("key %s: wrong length %d" %
                                           (d.keys[i], v.numel()))
                    dst_t[i * a.block: (i + 1) * a.block].copy_(v)
                    mo.ref_count_down()
                lat.append(pc.now() - c0)
            secs = (pc.now() - t0) / 1e9
            for i in range(a.blocks):
                o = i * a.block
                if not np.array_equal(dst[o: o + a.block], d.src(i)):
                    raise RuntimeError("key %s: wrong bytes" % d.keys[i])
            out.append(pc.result(name, kind, ver, wl, a, secs, total,
                                 a.blocks, lat, 0, extra=extra))

        if "hot-read" in wls:
            read("hot-read")
        if "cold-read" in wls:
            if a.backend == "disk":
                # dirty pages are not dropped: write them back first
                for fn in glob.glob(os.path.join(be.path, "*")):
                    fd = os.open(fn, os.O_RDONLY)
                    os.fsync(fd)
                    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                    os.close(fd)
                read("cold-read")
            else:
                out.append(pc.result(name, kind, ver, "cold-read", a, 0, 0, 0,
                                     [], 0, "skipped",
                                     "in memory: no cold read"))
        # clear (the lm server has no remove command: it is stopped instead)
        if a.backend == "cpu":
            cpu.clear()
        elif a.backend == "disk":
            for k in keys:
                be.remove(k)
        if a.backend != "lm":
            left = sum(1 for k in keys[:16] if be.contains(k))
            if left:
                raise RuntimeError("clear: %d of 16 keys still present" %
                                   left)
    except Exception as e:  # noqa: BLE001
        out.append(pc.result(name, kind, ver, cur[0], a, 0, 0, 0, [], 1,
                             "failed", "%s: %s: %s" % (cur[0], type(e).__name__,
                                                       e)))
    finally:
        for b in (be, cpu):
            try:
                if b is not None:
                    b.close()
            except Exception:  # noqa: BLE001
                pass
        if loop is not None:
            loop.call_soon_threadsafe(loop.stop)
        pc.stop_procs(procs)
    return pc.finish(out, a, work)


if __name__ == "__main__":
    sys.exit(main())
