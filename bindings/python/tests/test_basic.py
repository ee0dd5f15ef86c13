# SPDX-License-Identifier: MIT
"""Segments, roots, types, values, views, transactions, errors."""
import collections.abc
import errno
import os
import shutil
import subprocess
import threading

import pytest

import shmgraph as sg
from helpers import Config, Leaf

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..",
                                    ".."))


def test_library_found():
    assert os.path.isfile(sg.LIBRARY_PATH)
    assert sg.LIBRARY_FOUND_BY in ("SHMGRAPH_LIB", "build tree",
                                   "pkg-config", "ctypes.util.find_library")


def test_create_open_close(segname):
    with sg.Segment.create(segname, capacity=32 << 20) as s:
        assert s.capacity == 32 << 20
        assert 0 < s.backed <= s.capacity
        with sg.Segment.open(segname) as s2:
            assert s2.capacity == 32 << 20
    assert s.closed
    with pytest.raises(sg.ViewClosedError):
        s.capacity


def test_errors_map_codes(segname):
    with pytest.raises(sg.NotFoundError) as ei:
        sg.Segment.open(segname)
    assert ei.value.code == -errno.ENOENT
    assert ei.value.strerror == os.strerror(errno.ENOENT)
    with sg.Segment.create(segname) as s:
        with pytest.raises(sg.ExistsError):
            sg.Segment.create(segname)
        with pytest.raises(sg.NotFoundError):
            s.root("nope")
    assert isinstance(sg.ConflictError(-4106), sg.ShmgraphError)
    assert "conflict" in sg.strerror(-4106).lower() or sg.strerror(-4106)
    assert sg.strerror(-4106) != sg.strerror(-4105)


def test_opts_reach_the_library(segname):
    # struct shg_opts: max_roots lands in its field (else the default 1024).
    with sg.Segment.create(segname, capacity=16 << 20, max_roots=2) as s:
        a = s.root("a", create=True)
        b = s.root("b", create=True)
        with pytest.raises(sg.SlotsError):
            s.root("c", create=True)
        assert s.stats()["capacity"] == 16 << 20
        assert s.stats()["roots"] == 2
        a.close()
        b.close()


def test_values_round_trip(seg):
    other = seg.root("other", create=True)
    r = seg.root("cfg", create=True)
    with r.txn() as t:
        t.root = Config(threads=-8, ratio=0.25, name="héllo", blob=b"\0\1",
                        big=sg.U64(2**64 - 1),
                        routes=sg.Map(bytes, int, {"a": 1, b"b": -2}),
                        tags=sg.Vec(float, [1.5, 2.5]),
                        child=Leaf(value=7, label="leaf"), other=other)
    with seg.read():
        c = r.get()
        assert isinstance(c, sg.NodeView) and c.type_name == "Config"
        assert c.threads == -8 and c.ratio == 0.25
        assert c.name == "héllo" and c.blob == b"\0\1"
        assert c.big == 2**64 - 1
        assert c.routes.to_dict() == {b"a": 1, b"b": -2}
        assert list(c.tags) == [1.5, 2.5]
        assert c.child.value == 7 and c.child.label == "leaf"
        assert c.other == sg.RootRef(c.other.slot, "other")
        assert c["threads"] == -8
        assert set(c.fields) == {f for f, _, _ in Config.__shg_fields__}
        with pytest.raises(AttributeError):
            c.nope
        v = r.version()
        assert v["seq"] >= 1 and v["node"] != 0
    other.close()


def test_type_table_has_field_names(seg):
    tid = seg.register(Config)
    name, tid2, fields = seg.type_info("Config")
    assert (name, tid2) == ("Config", tid)
    assert [f for f, _ in fields] == [f for f, _, _ in Config.__shg_fields__]
    assert [k for _, k in fields] == [k for _, k, _ in
                                      Config.__shg_fields__]
    assert seg.register(Config) == tid  # idempotent


def test_shmctl_dump_shows_field_names(seg):
    shmctl = os.path.join(REPO, "build", "tools", "shmctl")
    if not os.access(shmctl, os.X_OK):
        shmctl = shutil.which("shmctl")
    if not shmctl:
        pytest.skip("shmctl not built")
    r = seg.root("cfg", create=True)
    with r.txn() as t:
        t.root = Leaf(value=41, label="x")
    out = subprocess.run([shmctl, "dump", seg.name, "cfg"],
                         capture_output=True, text=True, check=True).stdout
    assert "Leaf" in out and "value: 41" in out and "label" in out


def test_mapping_and_sequence_protocols(seg):
    r = seg.root("m", create=True)
    with r.txn() as t:
        t.root = sg.Map(int, bytes, {i: str(i) for i in range(100)})
    v = seg.root("v", create=True)
    with v.txn() as t:
        t.root = sg.Vec(int, range(50))
    with seg.read():
        m = r.get()
        assert isinstance(m, collections.abc.Mapping)
        assert len(m) == 100 and m[42] == b"42" and 42 in m
        assert 100 not in m and "x" not in m and -1 not in m
        assert m.get(100) is None and m.get(5) == b"5"
        assert sorted(m) == list(range(100))
        assert sorted(m.values()) == sorted(str(i).encode()
                                            for i in range(100))
        assert dict(m.items()) == {i: str(i).encode() for i in range(100)}
        with pytest.raises(KeyError):
            m[1000]
        s = v.get()
        assert isinstance(s, collections.abc.Sequence)
        assert len(s) == 50 and s[0] == 0 and s[-1] == 49
        assert s[10:13] == [10, 11, 12] and 25 in s
        with pytest.raises(IndexError):
            s[50]


def test_views_unusable_outside_section(seg):
    r = seg.root("m", create=True)
    with r.txn() as t:
        t.root = sg.Map(int, int, {1: 1})
    with pytest.raises(sg.ViewClosedError):
        r.get()  # no section
    with seg.read():
        m = r.get()
        assert m[1] == 1
        errs = []

        def other_thread():
            try:
                m[1]
            except sg.ViewClosedError as e:
                errs.append(e)
        th = threading.Thread(target=other_thread)
        th.start()
        th.join()
        assert len(errs) == 1
    for op in (lambda: m[1], lambda: len(m), lambda: list(m),
               lambda: 1 in m):
        with pytest.raises(sg.ViewClosedError):
            op()


def test_nested_sections_and_pin_outlives(seg):
    r = seg.root("m", create=True)
    with r.txn() as t:
        t.root = sg.Map(int, int, {1: 1})
    with seg.read():
        with seg.read():
            inner = r.get()
        assert seg.in_read_section()
        with pytest.raises(sg.ViewClosedError):
            inner[1]
    assert not seg.in_read_section()
    p = r.pin()
    old = p.get()
    with r.txn() as t:
        t.root[1] = 2
    assert old[1] == 1  # the pinned version, outside any section
    with seg.read():
        assert r.get()[1] == 2
    seq = p.seq
    p.close()
    with pytest.raises(sg.ViewClosedError):
        old[1]
    with r.pin() as p2:
        assert p2.seq == seq + 1


def test_txn_aborts_on_exception(seg):
    r = seg.root("m", create=True)
    with r.txn() as t:
        t.root = sg.Map(int, int, {1: 1})
    with pytest.raises(ZeroDivisionError):
        with r.txn() as t:
            t.root[1] = 5
            mut = t.root
            1 / 0
    with pytest.raises(sg.ViewClosedError):
        mut[1]
    with seg.read():
        assert r.get()[1] == 1


def test_conflict_error(seg):
    r = seg.root("m", create=True)
    with r.txn() as t:
        t.root = sg.Map(int, int, {1: 1})
    t1 = r.txn()
    t1.root[1] = 10
    with r.txn() as t2:
        t2.root[1] = 20
    with pytest.raises(sg.ConflictError) as ei:
        with t1:
            pass
    assert ei.value.code == -4106
    with seg.read():
        assert r.get()[1] == 20


def test_update_retries_from_threads(seg):
    r = seg.root("n", create=True)
    with r.txn() as t:
        t.root = Leaf(value=0, label="counter")

    def bump(t):
        t.root.value = t.root.value + 1

    def worker():
        for _ in range(40):
            r.update(bump)
    ths = [threading.Thread(target=worker) for _ in range(4)]
    for th in ths:
        th.start()
    for th in ths:
        th.join()
    with seg.read():
        assert r.get().value == 160
    with pytest.raises(KeyError):
        r.update(lambda t: {}["x"])
    with seg.read():
        assert r.get().value == 160
    assert r.update(lambda t: 42) == 42


def test_mutable_views_and_path_copying(seg):
    r = seg.root("cfg", create=True)
    with r.txn() as t:
        t.root = Config(threads=1, child=Leaf(value=1, label="a"),
                        routes=sg.Map(int, int), tags=sg.Vec(int))
    with r.pin() as before:
        with r.txn() as t:
            c = t.root
            c.child.value = 2  # copies child and root
            c.routes[5] = 50
            c.tags.append(3)
            c.tags.append(4)
            c.tags[0] = 30
            assert c.tags.pop() == 4
            c.routes.update({6: 60, 7: 70})
            del c.routes[6]
            with pytest.raises(KeyError):
                del c.routes[6]
            assert c.child.value == 2 and dict(c.routes.items()) == \
                {5: 50, 7: 70}
        b = before.get()
        assert b.child.value == 1 and len(b.routes) == 0 and \
            len(b.tags) == 0
    with seg.read():
        c = r.get()
        assert c.child.value == 2 and c.routes.to_dict() == {5: 50, 7: 70}
        assert list(c.tags) == [30]
    rep, problems = seg.check()
    assert problems == [] and rep["problems"] == 0 and rep["graphs"] == 1


def test_link_from_other_graph_copies(seg):
    a = seg.root("a", create=True)
    b = seg.root("b", create=True)
    with a.txn() as t:
        t.root = Config(child=Leaf(value=9, label="shared"))
    with b.txn() as t:
        t.root = Config()
    with a.pin() as p:
        with b.txn() as t:
            t.root.child = p.get().child  # another graph: imported
    with seg.read():
        assert b.get().child.value == 9
    rep, problems = seg.check()
    assert problems == []


def test_struct_arrays_round_trip(seg):
    # Arrays of structs returned by the library: a wrong struct size
    # would shift every entry after the first.
    roots = [seg.root(f"r{i}", create=True) for i in range(5)]
    for i, r in enumerate(roots):
        for j in range(i):
            with r.txn() as t:
                t.root = Leaf(value=j)
    infos = {d["name"]: d for d in seg.roots()}
    for i in range(5):
        assert infos[f"r{i}"]["generation"] == i
        assert infos[f"r{i}"]["holds"] == 1
        assert not infos[f"r{i}"]["removed"]
    pins = [r.pin() for r in roots[1:]]
    pl = seg.pins()
    assert sorted(p["seq"] for p in pl) == sorted(p.seq for p in pins)
    assert all(p["pid"] == os.getpid() and p["alive"] for p in pl)
    for p in pins:
        p.close()
    assert seg.pins() == []
    with seg.read():
        rl = seg.readers()
        me = [x for x in rl if x["tid"] == threading.get_native_id()]
        assert len(me) == 1 and me[0]["in_section"] and me[0]["alive"]
        assert me[0]["pid"] == os.getpid()


def test_struct_layout_matches_c(tmp_path):
    """Compare ctypes sizes and offsets with the C compiler's."""
    import ctypes
    from shmgraph import _lib
    inc = os.path.join(REPO, "include")
    if not os.path.isfile(os.path.join(inc, "shmgraph.h")):
        inc = None
    # shmgraph/version.h is generated by configure, in the build tree next
    # to the library under test.
    gen = os.path.join(os.path.dirname(os.path.dirname(_lib.path)),
                       "include")
    cc = shutil.which("cc") or shutil.which("gcc")
    if not inc or not cc:
        pytest.skip("needs a C compiler and the headers of a checkout")
    structs = {"shg_opts": _lib.Opts, "shg_root_info": _lib.RootInfo,
               "shg_reader_info": _lib.ReaderInfo, "shg_stats": _lib.Stats,
               "shg_check_report": _lib.CheckReport,
               "shg_recover_report": _lib.RecoverReport,
               "shg_type_info": _lib.TypeInfo,
               "shg_pin_info": _lib.PinInfo,
               "shg_version_info": _lib.VersionInfo, "shg_val": _lib.Val,
               "shg_map_iter": _lib.MapIter, "shg_ref": _lib.Ref,
               "shg_field_def": _lib.FieldDef}
    lines = ["#include <stdio.h>", "#include <stddef.h>",
             "#include <shmgraph.h>", "int main(void) {"]
    expect = []
    for cname, py in structs.items():
        lines.append(f'printf("%zu\\n", sizeof(struct {cname}));')
        expect.append(ctypes.sizeof(py))
        for fname, _t in py._fields_:
            if fname == "u":  # anonymous union of shg_val
                lines.append(f'printf("%zu\\n", offsetof(struct {cname}, '
                             'u64));')
            else:
                lines.append(f'printf("%zu\\n", offsetof(struct {cname}, '
                             f'{fname}));')
            expect.append(getattr(py, fname).offset)
    lines.append("return 0; }")
    src = tmp_path / "layout.c"
    src.write_text("\n".join(lines))
    exe = tmp_path / "layout"
    subprocess.run([cc, "-I", inc, "-I", gen, str(src), "-o", str(exe)],
                   check=True)
    got = [int(x) for x in subprocess.run(
        [str(exe)], capture_output=True, text=True,
        check=True).stdout.split()]
    assert got == expect


def test_get_many_u64_and_bytes_keys(seg):
    r = seg.root("m", create=True)
    with r.txn() as t:
        t.root = sg.Map(int, bytes, {i: str(i) for i in range(200)})
    b = seg.root("b", create=True)
    with b.txn() as t:
        t.root = sg.Map(bytes, int, {"k%d" % i: i for i in range(200)})
    with seg.read():
        m = r.get()
        keys = [5, 199, 200, 5, 0, 2**64 - 1, -1, "x"]
        assert m.get_many(keys) == [b"5", b"199", None, b"5", b"0", None,
                                    None, None]
        assert m.get_many([]) == []
        big = list(range(0, 400, 3))
        assert m.get_many(big) == [m.get(k) for k in big]
        bm = b.get()
        assert bm.get_many(["k7", b"k199", "k200", b"", 7]) == [7, 199, None,
                                                                None, None]
    with r.txn() as t:  # a txn's own map, before and after a change
        t.root[7] = "seven"
        del t.root[8]
        assert t.root.get_many([7, 8, 9]) == [b"seven", None, b"9"]


def test_get_many_reads_one_version(seg):
    r = seg.root("m", create=True)
    with r.txn() as t:
        t.root = sg.Map(int, int, {i: 1 for i in range(64)})
    with r.pin() as p:
        m = p.get()
        with r.txn() as t:  # committed while the view's pin holds
            for i in range(64):
                t.root[i] = 2
        assert m.get_many(range(64)) == [1] * 64
    with seg.read():
        assert r.get().get_many(range(64)) == [2] * 64


def test_get_many_outside_section_raises(seg):
    r = seg.root("m", create=True)
    with r.txn() as t:
        t.root = sg.Map(int, int, {1: 1})
    with seg.read():
        m = r.get()
    with pytest.raises(sg.ViewClosedError):
        m.get_many([1])


def test_node_version_after_fields_appended(seg):
    r = seg.root("n", create=True)
    with r.txn() as t:
        t.root = Leaf(value=1, label="old")

    @sg.node_type(name="Leaf")
    class Leaf2:
        value: int
        label: str
        weight: float

    seg.register(Leaf2)
    n2 = seg.root("n2", create=True)
    with n2.txn() as t:
        t.root = Leaf2(value=2, label="new", weight=0.5)
    with seg.read():
        assert r.get().node_version() == (0, 2)
        assert n2.get().node_version() == (1, 3)
    with r.txn() as t:
        assert t.root.node_version() == (0, 2)
        t.root.value = 3  # copied as the newest version
        assert t.root.node_version() == (1, 3)
    with seg.read():
        assert r.get().node_version() == (1, 3)
