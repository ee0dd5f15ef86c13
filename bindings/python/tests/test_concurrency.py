# SPDX-License-Identifier: MIT
"""Threads and processes: readers during commits, fork and spawn workers,
inherited handles, and a reader killed with SIGKILL."""
import multiprocessing as mp
import os
import pickle
import signal
import threading
import time

import pytest

import shmgraph as sg
from helpers import N_KEYS, hold_and_wait, read_consistent, write_version


def _writer(root, stop, versions):
    v = 1
    while not stop.is_set():
        v += 1
        write_version(root, v)
        versions.append(v)
    return v


def test_threads_read_while_writer_commits(seg):
    r = seg.root("t", create=True)
    write_version(r, 1)
    results, errors = [], []

    def reader():
        try:
            results.append(read_consistent(seg, "t", 0.7))
        except BaseException as e:  # surfaced below
            errors.append(e)
    before = len(seg.readers())
    ths = [threading.Thread(target=reader) for _ in range(3)]
    for th in ths:
        th.start()
    stop = threading.Event()
    versions = []
    w = threading.Thread(target=_writer, args=(r, stop, versions))
    w.start()
    for th in ths:
        th.join()
    stop.set()
    w.join()
    assert errors == []
    assert len(results) == 3 and all(n > 0 for n, _ in results)
    assert len(versions) > 1
    # Each reader thread registered on first use; its slot went at exit.
    deadline = time.monotonic() + 5
    while len(seg.readers()) > before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(seg.readers()) <= before


def _pool_readers(ctx_name, segment, seconds=0.8, workers=2):
    ctx = mp.get_context(ctx_name)
    r = segment.root("t", create=True)
    write_version(r, 1)
    stop = threading.Event()
    versions = []
    w = threading.Thread(target=_writer, args=(r, stop, versions))
    with ctx.Pool(workers) as pool:
        w.start()
        try:
            res = pool.starmap(read_consistent,
                               [(segment.name, "t", seconds)] * workers)
        finally:
            stop.set()
            w.join()
    assert all(n > 0 for n, _ in res)
    assert any(seen > 1 for _, seen in res), (res, len(versions))
    rep, problems = segment.check()
    assert problems == []


def test_fork_workers_read_while_writer_commits(seg):
    _pool_readers("fork", seg)


def test_spawn_workers_read_while_writer_commits(seg):
    _pool_readers("spawn", seg)


def _child_uses_inherited(seg, root, q):
    try:
        with seg.read():
            q.put(("ok", root.get()[0]))
    except BaseException as e:
        q.put(("err", repr(e)))


def test_inherited_handles_reopen_in_child(seg):
    r = seg.root("t", create=True)
    write_version(r, 5)
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=_child_uses_inherited, args=(seg, r, q))
    p.start()
    assert q.get(timeout=30) == ("ok", 5)
    p.join()
    # The child's exit released only its own slots: ours still work.
    write_version(r, 6)
    with seg.read():
        assert r.get()[0] == 6
    # The child ended by os._exit without closing: its slot is dead, and
    # recovery (also run by open and synchronize) releases it.
    assert all(x["pid"] == os.getpid() or not x["alive"]
               for x in seg.readers())
    seg.recover()
    assert all(x["pid"] == os.getpid() for x in seg.readers())


def test_segment_and_root_pickle(seg):
    r = seg.root("t", create=True)
    write_version(r, 3)
    s2 = pickle.loads(pickle.dumps(seg))
    r2 = pickle.loads(pickle.dumps(r))
    with s2.read():
        assert s2.root("t").get()[0] == 3
    assert r2.segment is not seg  # a new handle, as in another process
    with r2.segment.read():
        assert r2.get()[0] == 3
    r2.segment.close()
    s2.close()


def test_sigkilled_reader_is_recovered(seg):
    r = seg.root("t", create=True)
    write_version(r, 1)
    ctx = mp.get_context("fork")
    ready = ctx.Event()
    p = ctx.Process(target=hold_and_wait, args=(seg.name, "t", ready))
    p.start()
    assert ready.wait(30)
    pins = [x for x in seg.pins() if x["pid"] == p.pid]
    assert len(pins) == 1 and pins[0]["alive"]
    assert any(x["pid"] == p.pid and x["in_section"]
               for x in seg.readers())
    os.kill(p.pid, signal.SIGKILL)
    p.join()
    assert p.exitcode == -signal.SIGKILL
    for v in range(2, 6):
        write_version(r, v)
    rep, problems = seg.check()
    assert rep["dead_procs"] >= 1 or rep["dead_threads"] >= 1
    rec = seg.recover()
    assert rec["procs_released"] >= 1 and rec["threads_released"] >= 1
    assert [x for x in seg.pins() if x["pid"] == p.pid] == []
    assert [x for x in seg.readers() if x["pid"] == p.pid] == []
    seg.synchronize(timeout_ms=5000)  # no dead reader holds it up
    rep, problems = seg.check()
    assert problems == [] and rep["dead_procs"] == 0 and rep["pins"] == 0
    with seg.read():
        assert r.get()[N_KEYS - 1] == 5


def test_pin_closed_by_another_thread_while_reading(seg):
    r = seg.root("m", create=True)
    with r.txn() as t:
        t.root = sg.Map(int, bytes, {i: b"x" * 100 for i in range(2000)})
    for n in range(5):
        pin = r.pin()
        m = pin.get()
        seen = []

        def reader():
            try:
                while True:
                    for k, v in m.items():
                        assert len(v) == 100
                    seen.append(1)
            except sg.ViewClosedError:
                seen.append("closed")
        th = threading.Thread(target=reader)
        th.start()
        time.sleep(0.02)
        with r.txn() as t:  # the pinned version's nodes become garbage
            for i in range(0, 2000, 7):
                t.root[i] = bytes([n]) * 100
        pin.close()
        seg.synchronize()
        seg.reclaim()
        th.join()
        assert seen[-1] == "closed"


def test_close_refused_while_another_thread_reads(seg):
    r = seg.root("m", create=True)
    write_version(r, 1)
    inside, leave = threading.Event(), threading.Event()

    def reader():
        with seg.read():
            inside.set()
            leave.wait(10)
    th = threading.Thread(target=reader)
    th.start()
    inside.wait(10)
    with pytest.raises(sg.NestedError):
        seg.close()
    leave.set()
    th.join()
