# SPDX-License-Identifier: MIT
"""Segments, roots, read sections, pins, views, transactions and node types.

Everything here is a thin layer over libshmgraph: each operation is one or a
few C calls, and no graph algorithm (lookup, path copying, retrying,
reclamation) is repeated in Python.

Rules that keep views safe (they are checked, never trusted):

* A view (NodeView, MapView, VecView) belongs to the read section or pin it
  was obtained in. Each access first checks that this section or pin is
  still open (and, for a section, that the calling thread is the one that
  opened it), then reads through a C accessor called with the GIL held
  (_lib.fast). Closing a section or unpinning also needs the GIL, so the
  check and the read cannot be separated by another Python thread; a stale
  view raises ViewClosedError and never reads memory that may have been
  reclaimed. Values read out of a view (int, float, bytes, str) are copies
  and outlive it.
* A mutable view (MutNode, MutMap, MutVec) belongs to its transaction and
  raises ViewClosedError once the transaction has committed or aborted.
* Handles inherited across fork belong to the parent: the child never
  closes them in C (that would release the parent's slots). A Segment
  object used in a forked child opens the segment again by name on first
  use; roots opened through it reopen themselves likewise. Sections, pins
  and transactions of the parent raise ViewClosedError in the child.
"""
import ctypes
import dataclasses
import errno
import os
import threading
import typing
import weakref

from . import _lib
from .errors import ShmgraphError, ViewClosedError, check, error_for

_F = _lib.fast
_MISSING = object()
_L = _lib.lib
_NULL = _lib.Off(0)


def _b(s):
    """Encode a str key/value/name as UTF-8; pass bytes-likes through."""
    if isinstance(s, str):
        return s.encode("utf-8")
    return bytes(s)


# ---- value kinds and node types --------------------------------------------

class U64(int):
    """Annotation (and value wrapper) for an unsigned 64-bit field."""


class I64(int):
    """Annotation for a signed 64-bit field (plain ``int`` means I64)."""


class RootRef:
    """A reference to another root (a weak link by slot, see graph.h).

    As an annotation it declares a ROOT field. Read back, ``.slot`` is the
    root slot and ``.name`` its name (None if the root is gone); open it
    with ``seg.root(ref.name)``.
    """

    def __init__(self, slot, name):
        self.slot = slot
        self.name = name

    def __repr__(self):
        return f"RootRef(slot={self.slot}, name={self.name!r})"

    def __eq__(self, other):
        return isinstance(other, RootRef) and other.slot == self.slot \
            and other.name == self.name

    def __hash__(self):
        return hash((self.slot, self.name))


class Node:
    """Annotation for a NODE field holding any node (or None)."""


class Map:
    """A new map to store: ``Map(key, value, items=None)``.

    ``key`` is ``int`` (U64 keys) or ``bytes``/``str`` (byte-string keys);
    ``value`` is ``int``/``I64``, ``U64``, ``float``, ``bytes``/``str``,
    ``Node`` (or a node class) or ``RootRef``. ``items`` (a mapping or
    pairs) fills it. As an annotation, ``Map`` declares a NODE field.
    """

    def __init__(self, key=bytes, value=int, items=None):
        self.key_kind = _KEY_KINDS[key]
        self.val_kind = _kind_of(value)
        self.items = items


class Vec:
    """A new vector to store: ``Vec(value, items=None)``; see Map."""

    def __init__(self, value=int, items=None):
        self.val_kind = _kind_of(value)
        self.items = items


_KEY_KINDS = {int: _lib.KIND_U64, U64: _lib.KIND_U64,
              bytes: _lib.KIND_BYTES, str: _lib.KIND_BYTES}


def _kind_of(t):
    if t is U64:
        return _lib.KIND_U64
    if t is int or t is I64:
        return _lib.KIND_I64
    if t is float:
        return _lib.KIND_F64
    if t in (bytes, str):
        return _lib.KIND_BYTES
    if t is RootRef:
        return _lib.KIND_ROOT
    if t in (Node, Map, Vec) or getattr(t, "__shg_fields__", None) is not None:
        return _lib.KIND_NODE
    origin = typing.get_origin(t)
    if origin is typing.Union:  # Optional[X]
        args = [a for a in typing.get_args(t) if a is not type(None)]
        if len(args) == 1:
            return _kind_of(args[0])
    raise TypeError(f"no shmgraph field kind for {t!r}")


def node_type(cls=None, *, name=None):
    """Class decorator: declare a node type from annotated fields.

    Fields are taken in annotation order; their kinds come from the
    annotations (``int``/``I64``, ``U64``, ``float``, ``str``, ``bytes``,
    ``Map``, ``Vec``, ``Node`` or another node class, ``RootRef``). The
    class becomes a dataclass whose fields default to None (unset fields
    are stored as 0 / empty / null). It is registered in a segment's type
    table under ``name`` (default: the class name) with these field names,
    so ``shmctl dump`` shows them, the first time a transaction creates
    one (or by ``seg.register(cls)``).
    """
    def wrap(c):
        hints = typing.get_type_hints(c)
        own = [n for n in c.__dict__.get("__annotations__", {})]
        fields = []
        for n in own:
            t = hints[n]
            if len(n.encode()) > _lib.FIELD_NAME_MAX:
                raise ValueError(f"field name too long: {n}")
            fields.append((n, _kind_of(t), t))
            if not hasattr(c, n):
                setattr(c, n, None)
        if len(fields) > _lib.MAX_FIELDS:
            raise ValueError("too many fields")
        c = dataclasses.dataclass(c)
        c.__shg_fields__ = tuple(fields)
        c.__shg_name__ = name or c.__name__
        if len(c.__shg_name__.encode()) > _lib.TYPE_NAME_MAX:
            raise ValueError(f"type name too long: {c.__shg_name__}")
        return c
    return wrap if cls is None else wrap(cls)


class _TypeDesc:
    """A type table entry as the binding uses it."""

    def __init__(self, tid, name, fields, cls=None):
        self.id = tid
        self.name = name
        self.fields = fields  # [(name, kind, annotation or None)]
        self.index = {f[0]: i for i, f in enumerate(fields)}
        self.cls = cls


# ---- segment -----------------------------------------------------------------

_live_segments = weakref.WeakSet()


def _after_fork_in_child():
    for s in list(_live_segments):
        s._inherited()


os.register_at_fork(after_in_child=_after_fork_in_child)


def _opts(capacity=0, mode=0, flags=0, max_procs=0, max_threads=0,
          max_roots=0, retire_budget=0, flavor=0):
    o = _lib.Opts()
    o.size = ctypes.sizeof(_lib.Opts)
    o.capacity = capacity
    o.mode = mode
    o.flags = flags
    o.max_procs = max_procs
    o.max_threads = max_threads
    o.max_roots = max_roots
    o.retire_budget = retire_budget
    o.flavor = flavor
    return o


OPEN_ALLOW_GROUP = 0x1
OPEN_NO_RECOVER = 0x2


def _reopen(name, flags):
    return Segment.open(name, flags=flags)


class Segment:
    """A mapped segment: ``Segment.create(name, ...)`` or
    ``Segment.open(name)``; a context manager that closes it.

    ``name`` is "/name" for POSIX shared memory or a file path. A Segment
    pickles as its name: unpickling (e.g. in a spawned worker) opens it.
    """

    def __init__(self, ptr, name, flags):
        self._ptr = ptr
        self.name = name
        self._flags = flags
        self._pid = os.getpid()
        self._tls = threading.local()
        self._types_by_id = {}
        self._types_by_cls = {}
        self._lock = threading.Lock()
        self._handles = weakref.WeakSet()  # roots, pins, txns to close
        self._nsections = 0  # read sections open in any thread
        self._gen = 0  # bumped when reopened after fork
        _live_segments.add(self)

    @classmethod
    def create(cls, name, *, capacity=0, mode=0, max_procs=0, max_threads=0,
               max_roots=0, retire_budget=0):
        """Create and map a new segment (shg_seg_create); zero = default
        (capacity 1 GiB, mode 0600, 256 processes, 1024 threads and
        roots, retire budget capacity/8). Raises ExistsError if it exists."""
        o = _opts(capacity, mode, 0, max_procs, max_threads, max_roots,
                  retire_budget)
        p = ctypes.c_void_p()
        check(_L.shg_seg_create(_b(name), ctypes.byref(o), ctypes.byref(p)),
              "shg_seg_create")
        return cls(p, name, 0)

    @classmethod
    def open(cls, name, *, flags=0):
        """Map an existing segment (shg_seg_open); ``flags`` are
        OPEN_ALLOW_GROUP / OPEN_NO_RECOVER."""
        p = ctypes.c_void_p()
        o = _opts(flags=flags)
        check(_L.shg_seg_open(_b(name), ctypes.byref(o), ctypes.byref(p)),
              "shg_seg_open")
        return cls(p, name, flags)

    @staticmethod
    def unlink(name, missing_ok=False):
        """Remove a segment's name (mappings stay valid)."""
        rc = _L.shg_seg_unlink(_b(name))
        if rc == -errno.ENOENT and missing_ok:
            return
        check(rc, "shg_seg_unlink")

    def __reduce__(self):
        return (_reopen, (self.name, self._flags))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        st = "closed" if self._ptr is None else "open"
        return f"<shmgraph.Segment {self.name!r} {st}>"

    # -- lifetime

    def _inherited(self):
        """In a forked child: forget the parent's handles without closing
        them in C (they name the parent's process and thread slots)."""
        for h in list(self._handles):
            h._forget()
        self._handles = weakref.WeakSet()
        self._tls = threading.local()
        self._lock = threading.Lock()
        self._nsections = 0
        if self._ptr is not None:
            self._ptr = "inherited"

    @property
    def ptr(self):
        """The struct shg_seg * (reopened in a forked child)."""
        p = self._ptr
        if p is None:
            raise ViewClosedError("segment is closed")
        if p == "inherited" or self._pid != os.getpid():
            self._reopen_after_fork()
            p = self._ptr
        return p

    def _reopen_after_fork(self):
        np = ctypes.c_void_p()
        o = _opts(flags=self._flags)
        check(_L.shg_seg_open(_b(self.name), ctypes.byref(o),
                              ctypes.byref(np)), "shg_seg_open")
        self._ptr = np
        self._pid = os.getpid()
        self._gen += 1

    def close(self):
        """Close every root, pin and transaction of this handle, then
        unmap (shg_seg_close). Idempotent. Raises NestedError if a read
        section of this handle is open in the calling thread."""
        if self._ptr is None:
            return
        if self._ptr == "inherited" or self._pid != os.getpid():
            self._ptr = None
            return
        with self._lock:
            if self._nsections:
                raise error_for(-4112, "Segment.close: a read section is "
                                "open")
        for h in list(self._handles):
            h._close_for_segment()
        p, self._ptr = self._ptr, None
        _L.shg_seg_close(p)

    def __del__(self):
        try:
            if self._ptr is not None and self._ptr != "inherited" and \
                    self._pid == os.getpid():
                self.close()
        except Exception:
            pass

    @property
    def closed(self):
        return self._ptr is None

    @property
    def capacity(self):
        """Total capacity in bytes."""
        return _F.shg_seg_capacity(self.ptr)

    @property
    def backed(self):
        """Bytes backed by storage."""
        return _F.shg_seg_backed(self.ptr)

    # -- roots and types

    def root(self, name, create=False):
        """Open root ``name``; with ``create=True`` create it if missing.
        Raises NotFoundError if absent (and not created)."""
        return Root(self, name, create)

    def remove_root(self, name):
        """Remove a root by name (its graph goes when its last holder does)."""
        check(_L.shg_root_remove(self.ptr, _b(name)), "shg_root_remove")

    def register(self, cls):
        """Register node class ``cls`` (see node_type) in the type table;
        idempotent. Returns the type id. Outside read sections."""
        d = self._types_by_cls.get(cls)
        if d is not None and d._gen == self._gen:
            return d.id
        fields = cls.__shg_fields__
        arr = (_lib.FieldDef * max(1, len(fields)))()
        keep = []
        for i, (n, k, _) in enumerate(fields):
            nb = n.encode()
            keep.append(nb)
            arr[i].name = nb
            arr[i].kind = k
        tid = ctypes.c_uint32()
        check(_L.shg_type_register(self.ptr, cls.__shg_name__.encode(), arr,
                                   len(fields), ctypes.byref(tid)),
              "shg_type_register")
        d = _TypeDesc(tid.value, cls.__shg_name__, list(fields), cls)
        d._gen = self._gen
        self._types_by_cls[cls] = d
        self._types_by_id[tid.value] = d
        return tid.value

    def _type(self, tid):
        d = self._types_by_id.get(tid)
        if d is not None:
            return d
        ti = _lib.TypeInfo()
        check(_F.shg_type_info(self.ptr, tid, ctypes.byref(ti)),
              "shg_type_info")
        fields = [(ti.field[i].name.decode(), ti.field[i].kind, None)
                  for i in range(ti.nfields)]
        d = _TypeDesc(tid, ti.name.decode(), fields)
        self._types_by_id[tid] = d
        return d

    def type_info(self, name_or_id):
        """(name, id, [(field, kind)]) of a type in the type table."""
        tid = name_or_id
        if isinstance(name_or_id, str):
            v = ctypes.c_uint32()
            check(_F.shg_type_find(self.ptr, name_or_id.encode(),
                                   ctypes.byref(v)), "shg_type_find")
            tid = v.value
        d = self._type(tid)
        return d.name, d.id, [(f[0], f[1]) for f in d.fields]

    # -- read sections

    def read(self):
        """A read section (context manager): views obtained inside it
        (``root.get()``) are valid until it ends, in this thread only."""
        return Section(self)

    def _section(self):
        s = getattr(self._tls, "sections", None)
        if not s:
            raise ViewClosedError(
                "not inside a read section of this segment in this thread "
                "(use `with seg.read():` or a pin)")
        return s[-1]

    def in_read_section(self):
        """Whether the calling thread is in a read section (C's view)."""
        return bool(_F.shg_read_locked(self.ptr))

    def synchronize(self, timeout_ms=0):
        """Wait for a grace period (shg_synchronize); outside sections."""
        check(_L.shg_synchronize(self.ptr, timeout_ms), "shg_synchronize")

    def reclaim(self):
        """Free retired blocks whose grace period has passed; bytes freed."""
        return check(_L.shg_reclaim(self.ptr), "shg_reclaim")

    def unregister_thread(self):
        """Release the calling thread's reader slot now (else at exit)."""
        check(_L.shg_thread_unregister(self.ptr), "shg_thread_unregister")

    # -- monitoring, check, recover

    def _list(self, fn, struct, op):
        n = 16
        while True:
            arr = (struct * n)()
            got = check(fn(self.ptr, arr, n), op)
            if got <= n:
                return [_as_dict(arr[i]) for i in range(got)]
            n = got + 16

    def roots(self):
        """shg_root_list() as a list of dicts."""
        out = self._list(_L.shg_root_list, _lib.RootInfo, "shg_root_list")
        for d in out:
            d["name"] = d["name"].decode()
            d["value"] = d["value"]["v"]
        return out

    def readers(self):
        """shg_reader_list() as a list of dicts."""
        return self._list(_L.shg_reader_list, _lib.ReaderInfo,
                          "shg_reader_list")

    def pins(self):
        """shg_pin_list() as a list of dicts."""
        return self._list(_L.shg_pin_list, _lib.PinInfo, "shg_pin_list")

    def stats(self):
        """shg_stats_get() as a dict (without the per-class arrays)."""
        st = _lib.Stats()
        check(_L.shg_stats_get(self.ptr, ctypes.byref(st)), "shg_stats_get")
        d = {n: getattr(st, n) for n, _ in _lib.Stats._fields_[:14]}
        return d

    def check(self):
        """shg_check(): returns (report dict, [(code, message)])."""
        problems = []

        def cb(_arg, code, msg):
            problems.append((code, msg.decode("utf-8", "replace")))

        fn = _lib.PROBLEM_FN(cb)
        rep = _lib.CheckReport()
        check(_L.shg_check(self.ptr, fn, None, ctypes.byref(rep)),
              "shg_check")
        return _as_dict(rep), problems

    def recover(self):
        """shg_recover(): release what dead processes held; report dict."""
        rep = _lib.RecoverReport()
        check(_L.shg_recover(self.ptr, ctypes.byref(rep)), "shg_recover")
        return _as_dict(rep)

    def _root_name(self, slot):
        for r in self.roots():
            if r["slot"] == slot and not r["removed"]:
                return r["name"]
        return None


def _as_dict(s):
    out = {}
    for n, _t in s._fields_:
        v = getattr(s, n)
        if isinstance(v, ctypes.Structure):
            v = _as_dict(v)
        out[n] = v
    return out


# ---- read sections and pins ----------------------------------------------------

class Section:
    """A read-side critical section (shg_read_lock/unlock) of one thread.

    Views obtained while it is open are valid until it ends. Sections nest;
    a view belongs to the innermost section open when it was obtained.
    """

    def __init__(self, seg):
        self._seg = seg
        self._alive = False
        self._thread = None
        self._lock = threading.RLock()

    def __enter__(self):
        seg = self._seg
        p = seg.ptr
        check(_F.shg_read_lock(p), "shg_read_lock")
        with seg._lock:
            seg._nsections += 1
        stack = getattr(seg._tls, "sections", None)
        if stack is None:
            stack = seg._tls.sections = []
        stack.append(self)
        self._thread = threading.get_ident()
        self._alive = True
        self._segptr = p
        return self

    def __exit__(self, *exc):
        if not self._alive:
            return
        if threading.get_ident() != self._thread:
            raise RuntimeError("read section left from another thread")
        self._alive = False
        stack = self._seg._tls.sections
        if stack and stack[-1] is self:
            stack.pop()
        if self._seg._ptr is self._segptr:
            _F.shg_read_unlock(self._segptr)
            with self._seg._lock:
                self._seg._nsections -= 1

    def _ok(self):
        if not self._alive:
            raise ViewClosedError("the read section of this view has ended")
        if threading.get_ident() != self._thread:
            raise ViewClosedError("view used outside the thread that owns "
                                  "its read section")
        if self._seg._ptr is not self._segptr:
            raise ViewClosedError("the segment was closed or reopened")
        return self._segptr

    def get(self, root):
        """``root.get()`` in this section."""
        return root._value(self)


class Pin:
    """A pinned version of a root (shg_pin_current): readable outside read
    sections, from any thread, until ``close()``. A context manager."""

    def __init__(self, root):
        self._seg = root._seg
        self._alive = False
        self._lock = threading.RLock()
        p = ctypes.c_void_p()
        check(_L.shg_pin_current(root.ptr, ctypes.byref(p)),
              "shg_pin_current")
        self._ptr = p
        self._segptr = self._seg._ptr
        self._alive = True
        self._seg._handles.add(self)
        v = _F.shg_pin_version(p)
        self._version = v.v
        self.seq = 0
        self._node = 0
        if v.v:
            vi = _lib.VersionInfo()
            check(_F.shg_version_info(self._segptr, v, ctypes.byref(vi)),
                  "shg_version_info")
            self.seq = vi.seq
            self._node = vi.node.v

    def _ok(self):
        if not self._alive:
            raise ViewClosedError("the pin of this view was closed")
        if self._seg._ptr is not self._segptr:
            raise ViewClosedError("the segment was closed or reopened")
        return self._segptr

    def get(self):
        """The pinned version's root node as a view (None if empty)."""
        self._ok()
        return _node_view(self, self._node)

    def close(self):
        """Unpin (idempotent); views of this pin become unusable."""
        with self._lock:  # waits for reads through this pin in progress
            if self._alive:
                self._alive = False
                _L.shg_unpin(self._ptr)

    _close_for_segment = close

    def _forget(self):
        self._alive = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            if self._alive and self._seg._pid == os.getpid():
                self.close()
        except Exception:
            pass


# ---- read-side views -------------------------------------------------------------

def _node_view(ctx, off):
    if not off:
        return None
    with ctx._lock:
        return _node_view_locked(ctx, off)


def _node_view_locked(ctx, off):
    segp = ctx._ok()
    err = ctypes.c_int(0)
    tid = _F.shg_node_type(segp, _lib.Off(off), ctypes.byref(err))
    if tid == 0:
        raise error_for(err.value or -4105, "shg_node_type")
    if tid == _lib.TYPE_MAP:
        return MapView(ctx, off)
    if tid == _lib.TYPE_VEC:
        return VecView(ctx, off)
    if tid < _lib.TYPE_FIRST_USER:
        raise error_for(-4105, "node of an unexpected built-in type")
    return NodeView(ctx, off, ctx._seg._type(tid))


def _decode_val(ctx, v):
    k = v.kind
    if k == _lib.KIND_U64:
        return v.u64
    if k == _lib.KIND_I64:
        return v.i64
    if k == _lib.KIND_F64:
        return v.f64
    if k == _lib.KIND_BYTES:
        n = v.bytes.len
        return ctypes.string_at(v.bytes.p, n) if n else b""
    if k == _lib.KIND_NODE:
        return _node_view(ctx, v.node.v)
    if k == _lib.KIND_ROOT:
        return RootRef(v.root, ctx._seg._root_name(v.root))
    raise error_for(-4105, "value of unknown kind")


def _read_field(ctx, off, idx, kind, ann):
    with ctx._lock:
        return _read_field_locked(ctx, off, idx, kind, ann)


def _read_field_locked(ctx, off, idx, kind, ann):
    segp = ctx._ok()
    o = _lib.Off(off)
    if kind == _lib.KIND_U64:
        x = ctypes.c_uint64()
        check(_F.shg_get_u64(segp, o, idx, ctypes.byref(x)), "shg_get_u64")
        return x.value
    if kind == _lib.KIND_I64:
        x = ctypes.c_int64()
        check(_F.shg_get_i64(segp, o, idx, ctypes.byref(x)), "shg_get_i64")
        return x.value
    if kind == _lib.KIND_F64:
        x = ctypes.c_double()
        check(_F.shg_get_f64(segp, o, idx, ctypes.byref(x)), "shg_get_f64")
        return x.value
    if kind == _lib.KIND_BYTES:
        p = ctypes.c_void_p()
        n = ctypes.c_size_t()
        check(_F.shg_get_bytes(segp, o, idx, ctypes.byref(p),
                               ctypes.byref(n)), "shg_get_bytes")
        b = ctypes.string_at(p.value, n.value) if n.value else b""
        return b.decode("utf-8") if ann is str else b
    if kind == _lib.KIND_NODE:
        x = _lib.Off()
        check(_F.shg_get_node(segp, o, idx, ctypes.byref(x)), "shg_get_node")
        return _node_view(ctx, x.v)
    if kind == _lib.KIND_ROOT:
        x = ctypes.c_uint32()
        rc = _F.shg_get_root(segp, o, idx, ctypes.byref(x))
        if rc == -errno.ENOENT:
            return None
        check(rc, "shg_get_root")
        return RootRef(x.value, ctx._seg._root_name(x.value))
    raise error_for(-4105, "field of unknown kind")


def _node_version(ctx, off):
    with ctx._lock:
        segp = ctx._ok()
        ver = ctypes.c_uint()
        nf = ctypes.c_uint()
        check(_F.shg_node_version(segp, _lib.Off(off), ctypes.byref(ver),
                                  ctypes.byref(nf)), "shg_node_version")
        return (ver.value, nf.value)


class NodeView:
    """A read-only view of a user node: fields as attributes (``n.threads``)
    or items (``n["threads"]``); ``type_name``, ``fields``, ``to_dict()``."""

    __slots__ = ("_ctx", "_off", "_type")

    def __init__(self, ctx, off, tdesc):
        self._ctx = ctx
        self._off = off
        self._type = tdesc

    @property
    def type_name(self):
        return self._type.name

    @property
    def fields(self):
        return [f[0] for f in self._type.fields]

    def __getitem__(self, name):
        i = self._type.index.get(name)
        if i is None:
            raise KeyError(name)
        _n, kind, ann = self._type.fields[i]
        return _read_field(self._ctx, self._off, i, kind, ann)

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self[name]
        except KeyError:
            raise AttributeError(
                f"{self._type.name} has no field {name!r}") from None

    def to_dict(self):
        """Fields as a dict; nested nodes, maps and vectors stay views."""
        return {f: self[f] for f in self.fields}

    def node_version(self):
        """``(version, nfields)`` of the type version this node was made
        under (shg_node_version): 0 is the type's first registration;
        fields at or above ``nfields`` read as zero (schema evolution)."""
        return _node_version(self._ctx, self._off)

    def __repr__(self):
        return f"<NodeView {self._type.name} @{self._off:#x}>"


class _MapBase:
    # Every C call runs under the view's context lock (see the module
    # comment): a pin cannot be closed between the check and the read.

    def _lookup(self, key):
        """The decoded value under ``key``, or _MISSING."""
        if type(key) is int and self._offc is not None:
            # Fast path of a read-only view: its offset and value buffer
            # are reused (only under the context lock).
            if 0 <= key < 1 << 64:
                ctx = self._ctx
                with ctx._lock:
                    rc = _F.shg_map_get_u64(ctx._ok(), self._offc, key,
                                            self._vref)
                    if rc == 0:
                        return _decode_val(ctx, self._val)
                    if rc in (-errno.ENOENT, -errno.EINVAL):
                        return _MISSING
                    check(rc, "shg_map_get_u64")
            return _MISSING
        v = _lib.Val()
        if isinstance(key, int) and not isinstance(key, bool):
            if key < 0 or key >= 1 << 64:
                return _MISSING
            kb = None
        elif isinstance(key, (bytes, str, bytearray, memoryview)):
            kb = _b(key)
        else:
            return _MISSING
        ctx = self._ctx
        with ctx._lock:
            segp = ctx._ok()
            off = _lib.Off(self._map_off())
            if kb is None:
                rc = _F.shg_map_get_u64(segp, off, key, ctypes.byref(v))
            else:
                rc = _F.shg_map_get_bytes(segp, off, kb, len(kb),
                                          ctypes.byref(v))
            if rc in (-errno.ENOENT, -errno.EINVAL):
                return _MISSING
            check(rc, "shg_map_get")
            return _decode_val(ctx, v)

    def __getitem__(self, key):
        x = self._lookup(key)
        if x is _MISSING:
            raise KeyError(key)
        return x

    def get_many(self, keys):
        """The values under ``keys`` as a list in the same order, None for
        a key that is absent (or of the other key kind). One batched C
        lookup (shg_map_get_many_u64/_bytes), so every answer comes from
        the same version of the map and the keys' memory latencies
        overlap: cheaper per key than ``[m.get(k) for k in keys]`` on a
        large map. Keys are ints (u64 maps) or bytes/str (bytes maps);
        they may repeat. Raises ShmgraphError if the map is corrupt."""
        keys = list(keys)
        out = [None] * len(keys)
        ints, byts = [], []
        for i, k in enumerate(keys):
            if isinstance(k, int) and not isinstance(k, bool):
                if 0 <= k < 1 << 64:
                    ints.append((i, k))
            elif isinstance(k, (bytes, str, bytearray, memoryview)):
                byts.append((i, _b(k)))
        ctx = self._ctx
        with ctx._lock:
            segp = ctx._ok()
            off = _lib.Off(self._map_off())
            # Both batches run under the one context lock, inside the one
            # section, pin or txn of this view: the same version.
            for batch, is_u64 in ((ints, True), (byts, False)):
                if batch:
                    self._many_locked(ctx, segp, off, batch, is_u64, out)
        return out

    @staticmethod
    def _many_locked(ctx, segp, off, batch, is_u64, out):
        n = len(batch)
        vals = (_lib.Val * n)()
        res = (ctypes.c_int * n)()
        if is_u64:
            ks = (ctypes.c_uint64 * n)(*[k for _i, k in batch])
            rc = _F.shg_map_get_many_u64(segp, off, n, ks, vals, res)
        else:
            bufs = [ctypes.create_string_buffer(k, len(k) or 1)
                    for _i, k in batch]
            ps = (ctypes.c_void_p * n)(
                *[ctypes.addressof(b) for b in bufs])
            lens = (ctypes.c_size_t * n)(*[len(k) for _i, k in batch])
            rc = _F.shg_map_get_many_bytes(segp, off, n, ps, lens, vals, res)
        if rc == -errno.EINVAL:  # the map's keys are of the other kind
            return
        for j, (i, _k) in enumerate(batch):
            r = res[j]
            if r == 0:
                out[i] = _decode_val(ctx, vals[j])
            elif r not in (-errno.ENOENT, -errno.EINVAL):
                raise error_for(r, "shg_map_get_many")

    def __contains__(self, key):
        return self._lookup(key) is not _MISSING

    def __len__(self):
        ctx = self._ctx
        with ctx._lock:
            segp = ctx._ok()
            off = self._map_off()
            return check(_F.shg_map_count(segp, _lib.Off(off)),
                         "shg_map_count")

    def _entries(self):
        """Yield decoded (key, value) pairs; each step checks and reads
        under the context lock, so no step runs after the section or pin
        of the view has ended."""
        ctx = self._ctx
        it = _lib.MapIter()
        k = _lib.Val()
        v = _lib.Val()
        with ctx._lock:
            segp = ctx._ok()
            off = self._map_off()
            if not off:
                return
            check(_F.shg_map_iter_init(segp, _lib.Off(off),
                                       ctypes.byref(it)),
                  "shg_map_iter_init")
        while True:
            with ctx._lock:
                ctx._ok()
                rc = _F.shg_map_iter_next(ctypes.byref(it), ctypes.byref(k),
                                          ctypes.byref(v))
                if rc == -errno.ENOENT:
                    return
                check(rc, "shg_map_iter_next")
                pair = (_decode_val(ctx, k), _decode_val(ctx, v))
            yield pair

    def __iter__(self):
        for k, _v in self._entries():
            yield k

    def items(self):
        return list(self._entries())

    def to_dict(self):
        """A plain dict copy (nested nodes stay views)."""
        return dict(self._entries())


class MapView(_MapBase, typing.Mapping):
    """A read-only view of a map: a collections.abc.Mapping. Keys are ints
    (U64 maps) or bytes (bytes-key maps; str is accepted and encoded as
    UTF-8 for lookups). Byte-string values come back as bytes.
    ``get_many(keys)`` looks many keys up in one batched C call: a list
    of values in the order of ``keys``, None for absent ones, all from
    the same version (MutMap has it too)."""

    def __init__(self, ctx, off):
        self._ctx = ctx
        self._off = off
        self._offc = _lib.Off(off)
        self._val = _lib.Val()
        self._vref = ctypes.byref(self._val)

    def _map_off(self):
        return self._off

    def __repr__(self):
        return f"<MapView @{self._off:#x}>"


class _VecBase:
    def __len__(self):
        ctx = self._ctx
        with ctx._lock:
            segp = ctx._ok()
            return check(_F.shg_vec_len(segp, _lib.Off(self._vec_off())),
                         "shg_vec_len")

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        ctx = self._ctx
        with ctx._lock:
            segp = ctx._ok()
            off = _lib.Off(self._vec_off())
            n = check(_F.shg_vec_len(segp, off), "shg_vec_len")
            if i < 0:
                i += n
            if i < 0 or i >= n:
                raise IndexError("vector index out of range")
            v = _lib.Val()
            check(_F.shg_vec_get(segp, off, i, ctypes.byref(v)),
                  "shg_vec_get")
            return _decode_val(ctx, v)


class VecView(_VecBase, typing.Sequence):
    """A read-only view of a vector: a collections.abc.Sequence."""

    def __init__(self, ctx, off):
        self._ctx = ctx
        self._off = off

    def _vec_off(self):
        return self._off

    def __repr__(self):
        return f"<VecView @{self._off:#x}>"


# ---- roots -----------------------------------------------------------------

class Root:
    """An open root (a hold on it); ``seg.root(name)``. Close with
    ``close()`` or use as a context manager. Pickles as (segment, name)."""

    def __init__(self, seg, name, create=False):
        self._seg = seg
        self.name = name
        self._ptr = None
        self._open(create)
        seg._handles.add(self)

    def _open(self, create):
        seg = self._seg
        p = ctypes.c_void_p()
        rc = _L.shg_root_open(seg.ptr, _b(self.name), ctypes.byref(p))
        if rc == -errno.ENOENT and create:
            rc = _L.shg_root_create(seg.ptr, _b(self.name), ctypes.byref(p))
            if rc == -errno.EEXIST:  # lost a race with another creator
                rc = _L.shg_root_open(seg.ptr, _b(self.name), ctypes.byref(p))
        check(rc, "shg_root_open")
        self._ptr = p
        self._gen = seg._gen

    def __reduce__(self):
        return (Root, (self._seg, self.name))

    @property
    def ptr(self):
        """The struct shg_root * (reopened in a forked child)."""
        self._seg.ptr  # reopens the segment after a fork
        if self._ptr is None:
            raise ViewClosedError("root is closed")
        if self._gen != self._seg._gen:
            self._open(False)
        return self._ptr

    def close(self):
        """Drop the hold (idempotent)."""
        if self._ptr is not None:
            p, self._ptr = self._ptr, None
            if self._gen == self._seg._gen and self._seg._ptr is not None:
                _L.shg_root_close(p)

    _close_for_segment = close

    def _forget(self):
        self._gen = -1  # reopened on next use in the child

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            if self._seg._pid == os.getpid():
                self.close()
        except Exception:
            pass

    @property
    def segment(self):
        """The Segment this root was opened through."""
        return self._seg

    @property
    def generation(self):
        """Number of publishes on this root so far."""
        return _F.shg_root_generation(self.ptr)

    def _value(self, sec):
        sec._ok()
        v = _F.shg_version_current(self.ptr)
        if not v.v:
            return None
        vi = _lib.VersionInfo()
        check(_F.shg_version_info(sec._segptr, v, ctypes.byref(vi)),
              "shg_version_info")
        return _node_view(sec, vi.node.v)

    def get(self):
        """The current version's root node as a view (NodeView, MapView,
        VecView, or None if nothing was committed). Needs an open read
        section of the calling thread: ``with seg.read(): root.get()``."""
        return self._value(self._seg._section())

    def version(self):
        """The current version's info (seq, parent, commit_ns, bytes,
        nodes, graph) as a dict, or None; inside a read section."""
        sec = self._seg._section()
        sec._ok()
        v = _F.shg_version_current(self.ptr)
        if not v.v:
            return None
        vi = _lib.VersionInfo()
        check(_F.shg_version_info(sec._segptr, v, ctypes.byref(vi)),
              "shg_version_info")
        d = _as_dict(vi)
        d["node"] = d["node"]["v"]
        return d

    def pin(self):
        """Pin the current version: a Pin (close it, or use ``with``)."""
        return Pin(self)

    def txn(self):
        """A transaction on the current version: ``with root.txn() as t:``
        commits on normal exit (ConflictError if another commit won; the
        transaction is then aborted) and aborts on an exception."""
        return Txn(self)

    def update(self, fn, max_tries=0):
        """Run ``fn(txn)`` on the newest version until it commits
        (shg_update; at most ``max_tries`` attempts, 0 = 64). An exception
        from ``fn`` aborts and propagates. Returns fn's last result."""
        box = {}

        def cb(txnp, _arg):
            t = Txn(self, txnp)
            try:
                box["result"] = fn(t)
            except BaseException as e:  # re-raised after shg_update returns
                box["exc"] = e
                return -errno.ECANCELED
            finally:
                t._alive = False
            return 0

        c = _lib.UPDATE_FN(cb)
        rc = _L.shg_update(self.ptr, c, None, max_tries)
        if "exc" in box and rc == -errno.ECANCELED:
            raise box["exc"]
        check(rc, "shg_update")
        return box.get("result")

    def __repr__(self):
        return f"<shmgraph.Root {self.name!r}>"


# ---- transactions ----------------------------------------------------------

def _make_val(kind, x):
    v = _lib.Val()
    v.kind = kind
    if kind == _lib.KIND_U64:
        v.u64 = x
    elif kind == _lib.KIND_I64:
        v.i64 = x
    elif kind == _lib.KIND_F64:
        v.f64 = float(x)
    else:
        raise AssertionError(kind)
    return v


def _guess_kinds(x):
    """Candidate value kinds for a Python value (first is preferred)."""
    if isinstance(x, bool):
        raise TypeError("bool is not a shmgraph value; use int")
    if isinstance(x, U64):
        return [_lib.KIND_U64]
    if isinstance(x, I64):
        return [_lib.KIND_I64]
    if isinstance(x, int):
        if x < 0:
            return [_lib.KIND_I64]
        if x >= 1 << 63:
            return [_lib.KIND_U64]
        return [_lib.KIND_I64, _lib.KIND_U64]
    if isinstance(x, float):
        return [_lib.KIND_F64]
    if isinstance(x, (bytes, str, bytearray, memoryview)):
        return [_lib.KIND_BYTES]
    if isinstance(x, Root):
        return [_lib.KIND_ROOT]
    return [_lib.KIND_NODE]


class Txn:
    """A batch of changes on a root's current version (shg_txn_*).

    ``t.root`` is the graph's root node as a mutable view (MutNode, MutMap,
    MutVec) or None; assign ``t.root = value`` to replace it. Path copying
    is done by the library as views are written. Commit with ``commit()``
    or by leaving ``with``; ``abort()`` drops everything.
    """

    def __init__(self, root, txnp=None):
        self._root = root
        self._seg = root._seg
        self._owned = txnp is None  # False: inside Root.update's callback
        if txnp is None:
            p = ctypes.c_void_p()
            check(_L.shg_txn_begin(root.ptr, ctypes.byref(p)),
                  "shg_txn_begin")
            txnp = p.value
            self._seg._handles.add(self)
        self._ptr = ctypes.c_void_p(txnp)
        self._segptr = self._seg._ptr
        self._lock = threading.RLock()
        self._alive = True

    def _ok(self):
        if not self._alive:
            raise ViewClosedError("the transaction has ended")
        if self._seg._ptr is not self._segptr:
            raise ViewClosedError("the segment was closed or reopened")
        return self._segptr

    # -- lifetime

    def commit(self):
        """Publish (shg_txn_commit). On ConflictError the transaction
        stays open: retry it elsewhere or abort()."""
        self._ok()
        if not self._owned:
            raise RuntimeError("Root.update commits for you")
        with self._lock:
            self._ok()
            check(_L.shg_txn_commit(self._ptr), "shg_txn_commit")
            self._alive = False

    def abort(self):
        """Drop the transaction (idempotent)."""
        with self._lock:
            if self._alive and self._owned:
                self._alive = False
                if self._seg._ptr is self._segptr:
                    _L.shg_txn_abort(self._ptr)

    _close_for_segment = abort

    def _forget(self):
        self._alive = False

    def __enter__(self):
        return self

    def __exit__(self, et, ev, tb):
        if not self._alive:  # committed or aborted explicitly
            return False
        if et is not None:
            self.abort()
            return False
        try:
            self.commit()
        except BaseException:
            self.abort()
            raise
        return False

    def __del__(self):
        try:
            if self._alive and self._owned and self._seg._pid == os.getpid():
                self.abort()
        except Exception:
            pass

    # -- root node

    @property
    def root(self):
        self._ok()
        return self._mut_view(None, 0, _F.shg_txn_root_node(self._ptr).v)

    @root.setter
    def root(self, value):
        self._assign(None, 0, _lib.KIND_NODE, value)

    def _mut_view(self, parent, idx, off):
        if not off:
            return None
        segp = self._ok()
        err = ctypes.c_int(0)
        tid = _F.shg_node_type(segp, _lib.Off(off), ctypes.byref(err))
        if tid == 0:
            raise error_for(err.value or -4105, "shg_node_type")
        if tid == _lib.TYPE_MAP:
            return MutMap(self, parent, idx)
        if tid == _lib.TYPE_VEC:
            return MutVec(self, parent, idx)
        return MutNode(self, parent, idx, self._seg._type(tid))

    # -- locations: (parent MutNode or None for the root, field index)

    def _ref(self, parent, idx):
        """A struct shg_ref at which to write (the parent made mutable)."""
        if parent is None:
            return _lib.Ref(_NULL, 0)
        return _lib.Ref(_lib.Off(parent._mutable()), idx)

    def _cur(self, parent, idx):
        """Offset of the node now at a location (without copying)."""
        segp = self._ok()
        if parent is None:
            return _F.shg_txn_root_node(self._ptr).v
        x = _lib.Off()
        check(_F.shg_get_node(segp, _lib.Off(parent._cur_off()), idx,
                              ctypes.byref(x)), "shg_get_node")
        return x.v

    def new(self, obj):
        """Create a node from an instance of a node class (its fields,
        nested Map/Vec specs and node instances included); returns its
        offset, to link with ``t.root = ...`` or a field assignment."""
        self._ok()
        cls = type(obj)
        tid = self._seg.register(cls)
        o = _lib.Off()
        check(_L.shg_txn_node_new(self._ptr, tid, ctypes.byref(o)),
              "shg_txn_node_new")
        for i, (n, k, _a) in enumerate(cls.__shg_fields__):
            x = getattr(obj, n)
            if x is None:
                continue
            self._assign_ref(_lib.Ref(o, i), k, x)
        return o.v

    def _assign(self, parent, idx, kind, value):
        self._ok()
        self._assign_ref(self._ref(parent, idx), kind, value)

    def _assign_ref(self, ref, kind, x):
        p = self._ptr
        if kind == _lib.KIND_U64:
            rc = _L.shg_txn_set_u64(p, ref, x)
        elif kind == _lib.KIND_I64:
            rc = _L.shg_txn_set_i64(p, ref, x)
        elif kind == _lib.KIND_F64:
            rc = _L.shg_txn_set_f64(p, ref, float(x))
        elif kind == _lib.KIND_BYTES:
            b = _b(x)
            rc = _L.shg_txn_set_bytes(p, ref, b, len(b))
        elif kind == _lib.KIND_ROOT:
            if not isinstance(x, Root):
                raise TypeError("a ROOT field takes an open Root")
            rc = _L.shg_txn_set_root(p, ref, x.ptr)
        elif kind == _lib.KIND_NODE:
            self._assign_node(ref, x)
            return
        else:
            raise TypeError(f"unknown kind {kind}")
        check(rc, "shg_txn_set")

    def _assign_node(self, ref, x):
        p = self._ptr
        if x is None:
            check(_L.shg_txn_set_node(p, ref, _NULL), "shg_txn_set_node")
        elif isinstance(x, Map):
            check(_L.shg_txn_map_new(p, ref, x.key_kind, x.val_kind),
                  "shg_txn_map_new")
            if x.items:
                items = x.items.items() if hasattr(x.items, "items") \
                    else x.items
                for k, v in items:
                    self._map_put(ref, k, v, x.val_kind)
        elif isinstance(x, Vec):
            check(_L.shg_txn_vec_new(p, ref, x.val_kind), "shg_txn_vec_new")
            for v in x.items or ():
                self._vec_op(ref, None, v, x.val_kind)
        elif getattr(type(x), "__shg_fields__", None) is not None:
            off = self.new(x)
            check(_L.shg_txn_set_node(p, ref, _lib.Off(off)),
                  "shg_txn_set_node")
        elif isinstance(x, (NodeView, MapView, VecView, MutNode, MutMap,
                            MutVec)):
            self._link(ref, x)
        else:
            raise TypeError(f"cannot store {type(x).__name__} in a NODE "
                            "field (use a node class instance, Map, Vec, "
                            "a view, or None)")

    def _node_off_of(self, x):
        """Offset of a node given as an instance/view (creating if new)."""
        if getattr(type(x), "__shg_fields__", None) is not None:
            return self.new(x)
        if isinstance(x, (NodeView, MapView, VecView)):
            return self._readable_off(x)
        if isinstance(x, (MutNode, MutMap, MutVec)):
            return x._cur_off()
        raise TypeError(f"cannot store {type(x).__name__} as a node value")

    def _readable_off(self, view):
        view._ctx._ok()
        return view._off

    def _link(self, ref, x):
        """Link a node; a node of another graph or version is copied
        (shg_txn_import) while its view is still readable."""
        off = self._node_off_of(x)
        rc = _L.shg_txn_set_node(self._ptr, ref, _lib.Off(off))
        if rc == -errno.EXDEV:
            off = self._import(x, off)
            rc = _L.shg_txn_set_node(self._ptr, ref, _lib.Off(off))
        check(rc, "shg_txn_set_node")

    def _import(self, x, off):
        if not isinstance(x, (NodeView, MapView, VecView)):
            raise error_for(-errno.EXDEV, "shg_txn_set_node")
        o = _lib.Off()
        with x._ctx._lock:  # the source stays readable while copied
            x._ctx._ok()
            check(_L.shg_txn_import(self._ptr, _lib.Off(off),
                                    ctypes.byref(o)), "shg_txn_import")
        return o.v

    def _val_for(self, kind, x):
        if kind == _lib.KIND_BYTES:
            b = _b(x)
            v = _lib.Val()
            v.kind = kind
            v.bytes.p = ctypes.cast(ctypes.c_char_p(b), ctypes.c_void_p)
            v.bytes.len = len(b)
            return v, b
        if kind == _lib.KIND_NODE:
            v = _lib.Val()
            v.kind = kind
            v.node = _lib.Off(self._node_off_of(x) if x is not None else 0)
            return v, None
        if kind == _lib.KIND_ROOT:
            raise TypeError("ROOT values in maps/vectors are not supported "
                            "by the Python binding; use a ROOT node field")
        return _make_val(kind, x), None

    def _map_put(self, ref, k, x, kind):
        v, keep = self._val_for(kind, x)
        if isinstance(k, int) and not isinstance(k, bool):
            rc = _L.shg_txn_map_put_u64(self._ptr, ref, k, ctypes.byref(v))
        else:
            kb = _b(k)
            rc = _L.shg_txn_map_put_bytes(self._ptr, ref, kb, len(kb),
                                          ctypes.byref(v))
        del keep
        return rc

    def _vec_op(self, ref, index, x, kind):
        v, keep = self._val_for(kind, x)
        if index is None:
            rc = _L.shg_txn_vec_push(self._ptr, ref, ctypes.byref(v))
        else:
            rc = _L.shg_txn_vec_set(self._ptr, ref, index, ctypes.byref(v))
        del keep
        return rc


class MutNode:
    """A node as seen by a transaction: read fields as attributes, assign
    them to change the node (copied once, with its path, by the library).
    A NODE field reads as a mutable view of the child."""

    def __init__(self, txn, parent, idx, tdesc):
        object.__setattr__(self, "_txn", txn)
        object.__setattr__(self, "_parent", parent)
        object.__setattr__(self, "_idx", idx)
        object.__setattr__(self, "_type", tdesc)

    @property
    def type_name(self):
        return self._type.name

    def _cur_off(self):
        return self._txn._cur(self._parent, self._idx)

    def _mutable(self):
        t = self._txn
        ref = t._ref(self._parent, self._idx)
        o = _lib.Off()
        check(_L.shg_txn_mut(t._ptr, ref, ctypes.byref(o)), "shg_txn_mut")
        return o.v

    def node_version(self):
        """As NodeView.node_version(): a node made in this transaction is
        of its type's newest version."""
        return _node_version(self._txn, self._cur_off())

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        i = self._type.index.get(name)
        if i is None:
            raise AttributeError(f"{self._type.name} has no field {name!r}")
        _n, kind, ann = self._type.fields[i]
        if kind == _lib.KIND_NODE:
            return self._txn._mut_view(self, i,
                                       self._txn._cur(self, i))
        return _read_field(self._txn, self._cur_off(), i, kind, ann)

    def __setattr__(self, name, value):
        i = self._type.index.get(name)
        if i is None:
            raise AttributeError(f"{self._type.name} has no field {name!r}")
        self._txn._assign(self, i, self._type.fields[i][1], value)

    def __repr__(self):
        return f"<MutNode {self._type.name}>"


class _MutContainer:
    _offc = None  # no fast path: the map may move when written

    def __init__(self, txn, parent, idx):
        self._txn = txn
        self._parent = parent
        self._idx = idx
        self._kind = None
        self._ctx = txn  # read side: the txn keeps its nodes readable

    def _cur_off(self):
        return self._txn._cur(self._parent, self._idx)

    def _where(self):
        self._txn._ok()
        return self._txn._ref(self._parent, self._idx)

    def _store(self, op):
        """Run op(kind) with the value kind of this container: known, or
        tried in order (int may be I64 or U64) until one is accepted."""
        kinds = [self._kind] if self._kind else self._cands
        rc = -errno.EINVAL
        for k in kinds:
            rc = op(k)
            if rc != -errno.EINVAL:
                break
        check(rc, self._opname)
        self._kind = k


class MutMap(_MutContainer, _MapBase, typing.MutableMapping):
    """A map as seen by a transaction: a MutableMapping (``m[k] = v``,
    ``del m[k]``, ``update``) whose writes are map puts/deletes."""

    _opname = "shg_txn_map_put"

    def _map_off(self):
        return self._cur_off()

    def __setitem__(self, key, value):
        ref = self._where()
        self._cands = _guess_kinds(value)
        self._store(lambda k: self._txn._map_put(ref, key, value, k))

    def __delitem__(self, key):
        ref = self._where()
        if isinstance(key, int) and not isinstance(key, bool):
            rc = _L.shg_txn_map_del_u64(self._txn._ptr, ref, key)
        else:
            kb = _b(key)
            rc = _L.shg_txn_map_del_bytes(self._txn._ptr, ref, kb, len(kb))
        if rc == -errno.ENOENT:
            raise KeyError(key)
        check(rc, "shg_txn_map_del")

    def __repr__(self):
        return "<MutMap>"


class MutVec(_MutContainer, _VecBase, typing.MutableSequence):
    """A vector as seen by a transaction: ``append``, ``v[i] = x``,
    ``pop()`` (last element only), reads like VecView."""

    _opname = "shg_txn_vec"

    def _vec_off(self):
        return self._cur_off()

    def __setitem__(self, i, value):
        n = len(self)
        if i < 0:
            i += n
        if i < 0 or i >= n:
            raise IndexError("vector index out of range")
        ref = self._where()
        self._cands = _guess_kinds(value)
        self._store(lambda k: self._txn._vec_op(ref, i, value, k))

    def append(self, value):
        ref = self._where()
        self._cands = _guess_kinds(value)
        self._store(lambda k: self._txn._vec_op(ref, None, value, k))

    def pop(self, index=-1):
        n = len(self)
        if n == 0:
            raise IndexError("pop from empty vector")
        if index not in (-1, n - 1):
            raise ValueError("only the last element can be popped")
        x = self[n - 1]
        ref = self._where()
        check(_L.shg_txn_vec_pop(self._txn._ptr, ref), "shg_txn_vec_pop")
        return x

    def __delitem__(self, i):
        self.pop(i)

    def insert(self, i, value):
        if i != len(self):
            raise ValueError("vectors only grow at the end (append)")
        self.append(value)

    def __repr__(self):
        return "<MutVec>"
