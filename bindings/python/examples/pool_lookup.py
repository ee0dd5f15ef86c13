#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Workers of a multiprocessing.Pool share a 1M-entry lookup table and a
small config graph that the control process updates while they work.

    python3 pool_lookup.py [--entries N] [--workers N] [--start fork|spawn]

The table is a map in a shmgraph segment, built once; workers open the
segment (the Segment object pickles as its name) and look keys up in read
sections without copying the table. The control process commits new
config versions while they run; each worker checks every lookup
(value == key * the config's multiplier), checks that the config
versions it sees never go backwards, and reports which it saw.
"""
import argparse
import multiprocessing as mp
import os
import random
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import shmgraph as sg  # noqa: E402


@sg.node_type
class Config:
    version: int
    multiplier: int
    label: str


def build(seg, entries, multiplier):
    table = seg.root("table", create=True)
    config = seg.root("config", create=True)
    # One transaction: 1M puts, one version (committed once).
    with table.txn() as t:
        t.root = sg.Map(int, int)
        m = t.root
        for k in range(entries):
            m[k] = k * multiplier
    with config.txn() as t:
        t.root = Config(version=1, multiplier=multiplier, label="initial")
    return table, config


def work(seg, entries, seconds, seed):
    table = seg.root("table")
    config = seg.root("config")
    rnd = random.Random(seed)
    seen = set()
    last = 0
    lookups = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        with seg.read():
            cfg = config.get()
            m = table.get()
            mult = cfg.multiplier
            if cfg.version < last:
                raise AssertionError(f"config went back: {cfg.version}")
            last = cfg.version
            seen.add(last)
            for _ in range(1000):
                k = rnd.randrange(entries)
                if m[k] != k * mult:
                    raise AssertionError(f"key {k}: {m[k]} != {k}*{mult}")
            lookups += 1000
    return os.getpid(), lookups, sorted(seen)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--entries", type=int, default=1_000_000)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--start", choices=["fork", "spawn"], default="spawn")
    args = ap.parse_args()

    name = f"/shg-pool-example-{os.getpid()}"
    with sg.Segment.create(name, capacity=1 << 30) as seg:
        try:
            t0 = time.monotonic()
            table, config = build(seg, args.entries, 3)
            print(f"built {args.entries} entries in "
                  f"{time.monotonic() - t0:.1f} s")
            ctx = mp.get_context(args.start)
            with ctx.Pool(args.workers) as pool:
                res = pool.starmap_async(
                    work, [(seg, args.entries, args.seconds, i)
                           for i in range(args.workers)])
                v = 1
                while not res.ready():
                    time.sleep(0.2)
                    v += 1

                    def bump(t, v=v):
                        t.root.version = v
                        t.root.label = f"update {v}"
                    config.update(bump)
                for pid, n, seen in res.get():
                    print(f"worker {pid}: {n / args.seconds:,.0f} lookups/s,"
                          f" saw config versions {seen[0]}..{seen[-1]} "
                          f"({len(seen)} distinct)")
            print(f"control committed {v - 1} config updates")
            rep, problems = seg.check()
            print(f"check: {rep['problems']} problems, {rep['graphs']} "
                  f"graphs, {rep['graph_bytes'] / 1e6:.1f} MB reachable")
            table.close()
            config.close()
        finally:
            sg.Segment.unlink(name, missing_ok=True)


if __name__ == "__main__":
    main()
