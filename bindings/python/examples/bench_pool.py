#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Benchmark: a 1M-entry lookup table shared by multiprocessing.Pool
workers, three ways.

* shmgraph: a map in a shmgraph segment; workers look keys up in read
  sections (1,000 lookups a section); the control process updates with
  transactions.
* Manager().dict(): a dict in a manager process; every lookup and update
  is a round trip to it.
* shared_memory + pickle: the control process pickles the whole dict into
  a multiprocessing.shared_memory block (a version word guards it,
  seqlock-style); each worker unpickles its own copy, looks keys up in
  it, and re-unpickles whenever the version changes.

Measured per way: lookups/s per worker (random keys, all checked), memory
(per worker PSS and private bytes from /proc/self/smaps_rollup, plus the
shared store: segment bytes in use, manager process RSS, or the block),
and update latency (control changes one key; a worker polling that key
sees the new value: median and max over --updates changes, including any
re-pickling). Workers are started with "spawn" so that their memory is
their own, not pages inherited by fork.

Writes bench/results/python-pool.json and bench/results/python-pool.txt
(with a machine description).

    python3 bench_pool.py [--entries 1000000] [--workers 2] [--seconds 3]
"""
import argparse
import json
import multiprocessing as mp
import os
import pickle
import platform
import random
import statistics
import struct
import subprocess
import sys
import time
from multiprocessing import shared_memory

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
import shmgraph as sg  # noqa: E402

REPO = os.path.abspath(os.path.join(HERE, "..", "..", ".."))


def value_of(k):
    return k * 7 + 1


def mem_self():
    """This process's memory (bytes) from smaps_rollup."""
    out = {}
    with open("/proc/self/smaps_rollup") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 2 and parts[0].endswith(":"):
                out[parts[0][:-1]] = int(parts[1]) * 1024
    return {"rss": out.get("Rss", 0), "pss": out.get("Pss", 0),
            "private": out.get("Private_Clean", 0) +
            out.get("Private_Dirty", 0)}


def rss_of(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


# ---- the three stores, worker side -------------------------------------------

class ShmgraphReader:
    def __init__(self, seg):
        self.seg = seg
        self.root = seg.root("table")

    def lookups(self, keys):
        with self.seg.read():
            m = self.root.get()
            for k in keys:
                if m[k] != value_of(k):
                    raise AssertionError(k)

    def probe(self, key):
        with self.seg.read():
            return self.root.get()[key]


class ManagerReader:
    def __init__(self, d):
        self.d = d

    def lookups(self, keys):
        d = self.d
        for k in keys:
            if d[k] != value_of(k):
                raise AssertionError(k)

    def probe(self, key):
        return self.d[key]


_HDR = struct.Struct("<QQ")  # version (odd while writing), payload length


class PickleReader:
    def __init__(self, shm_name):
        self.shm = shared_memory.SharedMemory(shm_name)
        self.version = -1
        self.table = None
        self.refresh()

    def refresh(self):
        buf = self.shm.buf
        while True:
            v, n = _HDR.unpack_from(buf, 0)
            if v == self.version:
                return
            if v & 1:
                continue
            data = bytes(buf[_HDR.size:_HDR.size + n])
            if _HDR.unpack_from(buf, 0)[0] != v:
                continue  # rewritten meanwhile: read again
            self.table = pickle.loads(data)
            self.version = v
            return

    def lookups(self, keys):
        self.refresh()
        t = self.table
        for k in keys:
            if t[k] != value_of(k):
                raise AssertionError(k)

    def probe(self, key):
        self.refresh()
        return self.table[key]


def make_reader(kind, handle):
    if kind == "shmgraph":
        return ShmgraphReader(handle)
    if kind == "manager":
        return ManagerReader(handle)
    return PickleReader(handle)


def worker_lookups(kind, handle, entries, seconds, seed):
    r = make_reader(kind, handle)
    rnd = random.Random(seed)
    n = 0
    keys = [rnd.randrange(entries) for _ in range(1000)]
    r.lookups(keys)  # warm up
    end = time.monotonic() + seconds
    t0 = time.monotonic()
    while time.monotonic() < end:
        keys = [rnd.randrange(entries) for _ in range(1000)]
        r.lookups(keys)
        n += len(keys)
    dt = time.monotonic() - t0
    return {"lookups_per_s": n / dt, "mem": mem_self()}


def worker_probe(kind, handle, key, expect, start_evt):
    """Poll `key` every 0.1 ms until it reads `expect`; return the
    monotonic time. (Sleeping between polls, like a worker with other
    work, keeps the scheduler from treating the poller as a CPU hog, which
    on a loaded machine would delay it by whole time slices.)"""
    r = make_reader(kind, handle)
    start_evt.set()
    while True:
        if r.probe(key) == expect:
            return time.monotonic()
        time.sleep(0.0001)


# ---- control side ------------------------------------------------------------------

class ShmgraphStore:
    kind = "shmgraph"

    def __init__(self, entries):
        self.name = f"/shg-bench-py-{os.getpid()}"
        sg.Segment.unlink(self.name, missing_ok=True)
        self.seg = sg.Segment.create(self.name, capacity=1 << 30)
        self.root = self.seg.root("table", create=True)
        with self.root.txn() as t:
            t.root = sg.Map(int, int)
            m = t.root
            for k in range(entries):
                m[k] = value_of(k)
        self.handle = self.seg

    def update(self, key, v):
        def fn(t):
            t.root[key] = v
        self.root.update(fn)

    def shared_bytes(self):
        st = self.seg.stats()
        return st["small_used_bytes"] + st["large_used_bytes"]

    def close(self):
        self.root.close()
        self.seg.close()
        sg.Segment.unlink(self.name, missing_ok=True)


class ManagerStore:
    kind = "manager"

    def __init__(self, entries, ctx):
        self.mgr = ctx.Manager()
        self.d = self.mgr.dict()
        chunk = 100_000
        for s in range(0, entries, chunk):
            self.d.update({k: value_of(k)
                           for k in range(s, min(entries, s + chunk))})
        self.handle = self.d

    def update(self, key, v):
        self.d[key] = v

    def shared_bytes(self):
        return rss_of(self.mgr._process.pid)

    def close(self):
        self.mgr.shutdown()


class PickleStore:
    kind = "shared_memory+pickle"

    def __init__(self, entries):
        self.table = {k: value_of(k) for k in range(entries)}
        data = pickle.dumps(self.table, protocol=pickle.HIGHEST_PROTOCOL)
        self.shm = shared_memory.SharedMemory(
            create=True, size=_HDR.size + 2 * len(data))
        self.version = 0
        self._write(data)
        self.handle = self.shm.name

    def _write(self, data):
        buf = self.shm.buf
        if _HDR.size + len(data) > len(buf):
            raise RuntimeError("table outgrew the block")
        self.version += 1  # odd: writing
        _HDR.pack_into(buf, 0, self.version, 0)
        buf[_HDR.size:_HDR.size + len(data)] = data
        self.version += 1  # even: stable
        _HDR.pack_into(buf, 0, self.version, len(data))

    def update(self, key, v):
        self.table[key] = v
        self._write(pickle.dumps(self.table,
                                 protocol=pickle.HIGHEST_PROTOCOL))

    def shared_bytes(self):
        return self.shm.size

    def close(self):
        self.shm.close()
        self.shm.unlink()


def run_store(store, ctx, args):
    res = {"system": store.kind}
    with ctx.Pool(args.workers) as pool:
        out = pool.starmap(worker_lookups,
                           [(store.kind, store.handle, args.entries,
                             args.seconds, i) for i in range(args.workers)])
    res["lookups_per_s_per_worker"] = [round(o["lookups_per_s"])
                                       for o in out]
    res["worker_mem"] = [o["mem"] for o in out]
    res["shared_bytes"] = store.shared_bytes()
    lat = []
    key = args.entries // 2
    with ctx.Pool(1) as pool:
        for i in range(args.updates):
            v = -(i + 1) if store.kind != "shmgraph" else 10**12 + i
            ready = _Ready(ctx)
            job = pool.apply_async(worker_probe,
                                   (store.kind, store.handle, key, v,
                                    ready.evt))
            ready.evt.wait(60)
            time.sleep(0.05)  # the worker is polling now
            t0 = time.monotonic()
            store.update(key, v)
            seen = job.get(120)
            lat.append((seen - t0) * 1e3)
            ready.close()
    res["update_latency_ms"] = {
        "median": round(statistics.median(lat), 3),
        "max": round(max(lat), 3),
        "samples": [round(x, 3) for x in lat]}
    return res


class _Ready:
    """An Event a Pool worker can receive (a manager proxy)."""
    _mgr = None

    def __init__(self, ctx):
        if _Ready._mgr is None:
            _Ready._mgr = ctx.Manager()
        self.evt = _Ready._mgr.Event()

    def close(self):
        pass


def machine():
    m = {"python": platform.python_version(), "kernel": platform.release(),
         "cores": os.cpu_count(), "loadavg_start": os.getloadavg()}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    m["cpu"] = line.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo") as f:
            m["mem_total_bytes"] = int(f.readline().split()[1]) * 1024
    except OSError:
        pass
    try:
        m["commit"] = subprocess.run(
            ["git", "-C", REPO, "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True).stdout.strip() or None
    except OSError:
        m["commit"] = None
    m["library"] = sg.LIBRARY_PATH
    return m


def table_text(doc):
    lines = [f"Python pool benchmark: {doc['config']['entries']:,} entries, "
             f"{doc['config']['workers']} spawn workers, "
             f"{doc['config']['seconds']} s of lookups each, "
             f"{doc['config']['updates']} updates",
             "machine: " + json.dumps(doc["machine"]), "",
             f"{'system':<22} {'lookups/s/worker':>17} {'worker PSS MB':>14}"
             f" {'worker priv MB':>15} {'shared MB':>10} "
             f"{'update ms (med/max)':>20}"]
    for r in doc["results"]:
        lps = statistics.mean(r["lookups_per_s_per_worker"])
        pss = statistics.mean(m["pss"] for m in r["worker_mem"]) / 1e6
        prv = statistics.mean(m["private"] for m in r["worker_mem"]) / 1e6
        u = r["update_latency_ms"]
        lines.append(f"{r['system']:<22} {lps:>17,.0f} {pss:>14.1f} "
                     f"{prv:>15.1f} {r['shared_bytes'] / 1e6:>10.1f} "
                     f"{u['median']:>9.2f}/{u['max']:<10.2f}")
    lines += ["", "shared MB: segment bytes in use (shmgraph), manager "
              "process RSS (manager), block size (shared_memory+pickle).",
              "update ms: from the control process starting an update of "
              "one key to a worker polling it every 0.1 ms seeing it.",
              "Lookups go through ctypes (one C call each for shmgraph); "
              "the loadavg at start is in the machine line."]
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--entries", type=int, default=1_000_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--updates", type=int, default=5)
    ap.add_argument("--out", default=os.path.join(REPO, "bench", "results",
                                                  "python-pool"))
    ap.add_argument("--only", choices=["shmgraph", "manager", "pickle"])
    args = ap.parse_args()
    ctx = mp.get_context("spawn")
    doc = {"config": vars(args).copy(), "machine": machine(), "results": []}
    builders = {"shmgraph": lambda: ShmgraphStore(args.entries),
                "manager": lambda: ManagerStore(args.entries, ctx),
                "pickle": lambda: PickleStore(args.entries)}
    for name, build in builders.items():
        if args.only and args.only != name:
            continue
        t0 = time.monotonic()
        store = build()
        setup = time.monotonic() - t0
        print(f"{store.kind}: set up in {setup:.1f} s", flush=True)
        try:
            r = run_store(store, ctx, args)
        finally:
            store.close()
        r["setup_s"] = round(setup, 2)
        doc["results"].append(r)
        print(json.dumps(r), flush=True)
    if _Ready._mgr is not None:
        _Ready._mgr.shutdown()
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out + ".json", "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    txt = table_text(doc)
    with open(args.out + ".txt", "w") as f:
        f.write(txt)
    print(txt)


if __name__ == "__main__":
    main()
