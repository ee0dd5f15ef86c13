# SPDX-License-Identifier: MIT
"""Node types and worker functions shared by the tests (importable by
spawned workers)."""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import shmgraph as sg  # noqa: E402

N_KEYS = 64


@sg.node_type
class Config:
    threads: int
    ratio: float
    name: str
    blob: bytes
    big: sg.U64
    routes: sg.Map
    tags: sg.Vec
    child: sg.Node
    other: sg.RootRef


@sg.node_type
class Leaf:
    value: int
    label: str


def write_version(root, v):
    """Every key of the map at the root gets the same value v."""
    with root.txn() as t:
        if t.root is None:
            t.root = sg.Map(int, int)
        m = t.root
        for k in range(N_KEYS):
            m[k] = v


def read_consistent(seg_or_name, root_name, seconds):
    """Read snapshots for `seconds`; every snapshot must hold one value
    under all keys. Returns (snapshots, distinct versions seen)."""
    seg = seg_or_name
    if isinstance(seg, str):
        seg = sg.Segment.open(seg)
    root = seg.root(root_name)
    seen = set()
    n = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        with seg.read():
            m = root.get()
            vals = {m[k] for k in range(N_KEYS)}
            if len(vals) != 1 or len(m) != N_KEYS:
                raise AssertionError(f"torn snapshot: {sorted(vals)[:5]}")
            seen.add(vals.pop())
        n += 1
    root.close()
    return n, len(seen)


def hold_and_wait(name, root_name, ready):
    """Pin, open a read section, signal, then sleep until killed."""
    seg = sg.Segment.open(name)
    root = seg.root(root_name)
    pin = root.pin()
    sec = seg.read()
    sec.__enter__()
    root.get()
    ready.set()
    time.sleep(3600)
    del pin
