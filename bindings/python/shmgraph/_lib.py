# SPDX-License-Identifier: MIT
"""Loading libshmgraph and the ctypes declarations of its C API.

Every C function the binding calls is declared here with its argtypes and
restype, and every C struct it passes is mirrored field by field from
lib/shmgraph.h and lib/graph.h (the headers are not read at run time, so
their install location does not matter).

Two handles on the same shared object are kept:

* ``lib`` (ctypes.CDLL) releases the GIL during the call. It is used for
  calls that may wait: segment open/close, commits, grace periods,
  recovery, transaction begin (which may wait for the retire budget).
* ``fast`` (ctypes.PyDLL) keeps the GIL held. It is used for the short
  read-side accessors (node fields, map lookups, iteration). Holding the
  GIL makes "check that the view's read section or pin is still open, then
  read through it" one step with respect to every other Python thread: no
  thread can close the section or unpin between the check and the read.
"""
import ctypes
import ctypes.util
import os
import pathlib
import subprocess

ENV_VAR = "SHMGRAPH_LIB"
SONAME = "libshmgraph.so.0"


def _build_tree_candidate():
    # bindings/python/shmgraph/_lib.py -> repository root is 3 levels up.
    here = pathlib.Path(__file__).resolve()
    if len(here.parents) < 4:
        return None
    p = here.parents[3] / "build" / ".libs" / SONAME
    return str(p) if p.is_file() else None


def _pkg_config_candidate():
    try:
        out = subprocess.run(
            ["pkg-config", "--variable=libdir", "shmgraph"],
            capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    libdir = out.stdout.strip()
    if out.returncode != 0 or not libdir:
        return None
    for name in (SONAME, "libshmgraph.so"):
        p = os.path.join(libdir, name)
        if os.path.isfile(p):
            return p
    return None


def find_library():
    """Return (path, how) of the libshmgraph to load.

    Order: $SHMGRAPH_LIB, the build tree of the checkout this package sits
    in (build/.libs/libshmgraph.so.0), ``pkg-config --variable=libdir
    shmgraph``, then ctypes.util.find_library("shmgraph"). Raises OSError
    when none is found.
    """
    env = os.environ.get(ENV_VAR)
    if env:
        if not os.path.isfile(env):
            raise OSError(f"{ENV_VAR}={env}: no such file")
        return env, ENV_VAR
    p = _build_tree_candidate()
    if p:
        return p, "build tree"
    p = _pkg_config_candidate()
    if p:
        return p, "pkg-config"
    p = ctypes.util.find_library("shmgraph")
    if p:
        return p, "ctypes.util.find_library"
    raise OSError("libshmgraph not found: set SHMGRAPH_LIB to the path of "
                  "libshmgraph.so.0, build the checkout (scripts/build.sh) "
                  "or install the library where pkg-config finds it")


# ---- C types ---------------------------------------------------------------

c_pid_t = ctypes.c_int32  # pid_t on Linux


class Off(ctypes.Structure):
    """struct shg_off."""
    _fields_ = [("v", ctypes.c_uint64)]


class Opts(ctypes.Structure):
    """struct shg_opts."""
    _fields_ = [
        ("size", ctypes.c_size_t),
        ("capacity", ctypes.c_uint64),
        ("mode", ctypes.c_uint32),
        ("flags", ctypes.c_uint32),
        ("max_procs", ctypes.c_uint32),
        ("max_threads", ctypes.c_uint32),
        ("max_roots", ctypes.c_uint32),
        ("numa_policy", ctypes.c_int32),
        ("numa_node", ctypes.c_int32),
        ("flavor", ctypes.c_int32),
        ("retire_budget", ctypes.c_uint64),
    ]


ROOT_NAME_MAX = 63
TYPE_NAME_MAX = 31
FIELD_NAME_MAX = 23
MAX_FIELDS = 64
NUM_CLASSES = 36
MAX_NODES = 16


class RootInfo(ctypes.Structure):
    """struct shg_root_info."""
    _fields_ = [
        ("name", ctypes.c_char * (ROOT_NAME_MAX + 1)),
        ("slot", ctypes.c_uint32),
        ("holds", ctypes.c_uint32),
        ("removed", ctypes.c_bool),
        ("value", Off),
        ("generation", ctypes.c_uint64),
        ("created_ns", ctypes.c_uint64),
        ("last_publish_ns", ctypes.c_uint64),
    ]


class ReaderInfo(ctypes.Structure):
    """struct shg_reader_info."""
    _fields_ = [
        ("slot", ctypes.c_uint32),
        ("pid", c_pid_t),
        ("tid", c_pid_t),
        ("alive", ctypes.c_bool),
        ("in_section", ctypes.c_bool),
        ("flavor", ctypes.c_int32),
        ("epoch", ctypes.c_uint64),
        ("epoch_lag", ctypes.c_uint64),
        ("blocked_ns", ctypes.c_uint64),
        ("held_bytes", ctypes.c_uint64),
    ]


class _StatsClass(ctypes.Structure):
    _fields_ = [
        ("size", ctypes.c_uint32),
        ("spans", ctypes.c_uint32),
        ("used_blocks", ctypes.c_uint64),
        ("total_blocks", ctypes.c_uint64),
    ]


class _StatsNode(ctypes.Structure):
    _fields_ = [
        ("span_bytes", ctypes.c_uint64),
        ("used_bytes", ctypes.c_uint64),
    ]


class Stats(ctypes.Structure):
    """struct shg_stats."""
    _fields_ = [
        ("capacity", ctypes.c_uint64),
        ("backed", ctypes.c_uint64),
        ("heap_bytes", ctypes.c_uint64),
        ("free_span_bytes", ctypes.c_uint64),
        ("small_used_bytes", ctypes.c_uint64),
        ("large_used_bytes", ctypes.c_uint64),
        ("retired_bytes", ctypes.c_uint64),
        ("reclaimed_bytes", ctypes.c_uint64),
        ("reclaimed_blocks", ctypes.c_uint64),
        ("global_epoch", ctypes.c_uint64),
        ("nodes", ctypes.c_uint32),
        ("procs", ctypes.c_uint32),
        ("threads", ctypes.c_uint32),
        ("roots", ctypes.c_uint32),
        ("cls", _StatsClass * NUM_CLASSES),
        ("node", _StatsNode * MAX_NODES),
    ]


PROBLEM_FN = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int,
                              ctypes.c_char_p)


class CheckReport(ctypes.Structure):
    """struct shg_check_report."""
    _fields_ = [
        ("problems", ctypes.c_uint32),
        ("dead_procs", ctypes.c_uint32),
        ("dead_threads", ctypes.c_uint32),
        ("free_bytes", ctypes.c_uint64),
        ("used_bytes", ctypes.c_uint64),
        ("retired_bytes", ctypes.c_uint64),
        ("leaked_bytes", ctypes.c_uint64),
        ("graphs", ctypes.c_uint32),
        ("pins", ctypes.c_uint32),
        ("graph_nodes", ctypes.c_uint64),
        ("graph_bytes", ctypes.c_uint64),
    ]


class RecoverReport(ctypes.Structure):
    """struct shg_recover_report."""
    _fields_ = [
        ("procs_released", ctypes.c_uint32),
        ("threads_released", ctypes.c_uint32),
        ("holds_released", ctypes.c_uint32),
        ("spans_adopted", ctypes.c_uint32),
        ("retired_adopted", ctypes.c_uint64),
        ("leaked_freed", ctypes.c_uint64),
        ("sweep_err", ctypes.c_int32),
    ]


# enum shg_kind
KIND_U64, KIND_I64, KIND_F64, KIND_BYTES, KIND_NODE, KIND_ROOT = range(1, 7)
# enum shg_builtin_type
TYPE_VERSION, TYPE_BYTES, TYPE_MAP, TYPE_MAP_COLL, TYPE_VEC, TYPE_VEC_NODE = \
    range(1, 7)
TYPE_FIRST_USER = 16


class FieldDef(ctypes.Structure):
    """struct shg_field_def."""
    _fields_ = [("name", ctypes.c_char_p), ("kind", ctypes.c_int)]


class _TypeField(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char * (FIELD_NAME_MAX + 1)),
                ("kind", ctypes.c_int)]


class TypeInfo(ctypes.Structure):
    """struct shg_type_info."""
    _fields_ = [
        ("name", ctypes.c_char * (TYPE_NAME_MAX + 1)),
        ("id", ctypes.c_uint32),
        ("nfields", ctypes.c_uint32),
        ("field", _TypeField * MAX_FIELDS),
    ]


class PinInfo(ctypes.Structure):
    """struct shg_pin_info."""
    _fields_ = [
        ("pid", c_pid_t),
        ("alive", ctypes.c_bool),
        ("detached", ctypes.c_bool),
        ("root", ctypes.c_uint32),
        ("graph", ctypes.c_uint32),
        ("seq", ctypes.c_uint64),
        ("current_seq", ctypes.c_uint64),
        ("version_bytes", ctypes.c_uint64),
        ("held_bytes", ctypes.c_uint64),
    ]


class VersionInfo(ctypes.Structure):
    """struct shg_version_info."""
    _fields_ = [
        ("node", Off),
        ("graph", ctypes.c_uint64),
        ("seq", ctypes.c_uint64),
        ("parent", ctypes.c_uint64),
        ("commit_ns", ctypes.c_uint64),
        ("bytes", ctypes.c_uint64),
        ("nodes", ctypes.c_uint64),
    ]


class _ValBytes(ctypes.Structure):
    _fields_ = [("p", ctypes.c_void_p), ("len", ctypes.c_size_t)]


class _ValUnion(ctypes.Union):
    _fields_ = [
        ("u64", ctypes.c_uint64),
        ("i64", ctypes.c_int64),
        ("f64", ctypes.c_double),
        ("bytes", _ValBytes),
        ("node", Off),
        ("root", ctypes.c_uint32),
    ]


class Val(ctypes.Structure):
    """struct shg_val (the anonymous union is the member ``u``)."""
    _anonymous_ = ("u",)
    _fields_ = [("kind", ctypes.c_int), ("u", _ValUnion)]


class MapIter(ctypes.Structure):
    """struct shg_map_iter."""
    _fields_ = [
        ("seg", ctypes.c_void_p),
        ("depth", ctypes.c_uint32),
        ("pos", ctypes.c_uint32 * 14),
        ("stack", Off * 14),
    ]


class Ref(ctypes.Structure):
    """struct shg_ref."""
    _fields_ = [("node", Off), ("field", ctypes.c_uint)]


# ---- function declarations -------------------------------------------------

_vp = ctypes.c_void_p
_pvp = ctypes.POINTER(ctypes.c_void_p)
_int = ctypes.c_int
_u32 = ctypes.c_uint32
_u64 = ctypes.c_uint64
_i64 = ctypes.c_int64
_P = ctypes.POINTER
UPDATE_FN = ctypes.CFUNCTYPE(_int, _vp, _vp)

# name: (restype, argtypes, fast)
_DECLS = {
    "shg_strerror": (ctypes.c_char_p, [_int], True),
    "shg_seg_create": (_int, [ctypes.c_char_p, _P(Opts), _pvp], False),
    "shg_seg_open": (_int, [ctypes.c_char_p, _P(Opts), _pvp], False),
    "shg_seg_close": (_int, [_vp], False),
    "shg_seg_unlink": (_int, [ctypes.c_char_p], False),
    "shg_seg_capacity": (_u64, [_vp], True),
    "shg_seg_backed": (_u64, [_vp], True),
    "shg_seg_flavor": (_int, [_vp], True),
    "shg_thread_register": (_int, [_vp], False),
    "shg_thread_unregister": (_int, [_vp], False),
    "shg_read_lock": (_int, [_vp], True),
    "shg_read_unlock": (None, [_vp], True),
    "shg_read_locked": (ctypes.c_bool, [_vp], True),
    "shg_synchronize": (_int, [_vp, ctypes.c_uint], False),
    "shg_reclaim": (_i64, [_vp], False),
    "shg_root_create": (_int, [_vp, ctypes.c_char_p, _pvp], False),
    "shg_root_open": (_int, [_vp, ctypes.c_char_p, _pvp], False),
    "shg_root_close": (_int, [_vp], False),
    "shg_root_remove": (_int, [_vp, ctypes.c_char_p], False),
    "shg_root_generation": (_u64, [_vp], True),
    "shg_root_name": (ctypes.c_char_p, [_vp], True),
    "shg_root_list": (_int, [_vp, _P(RootInfo), ctypes.c_uint], False),
    "shg_reader_list": (_int, [_vp, _P(ReaderInfo), ctypes.c_uint], False),
    "shg_stats_get": (_int, [_vp, _P(Stats)], False),
    "shg_check": (_int, [_vp, PROBLEM_FN, _vp, _P(CheckReport)], False),
    "shg_recover": (_int, [_vp, _P(RecoverReport)], False),
    "shg_type_register": (_int, [_vp, ctypes.c_char_p, _P(FieldDef),
                                 ctypes.c_uint, _P(_u32)], False),
    "shg_type_find": (_int, [_vp, ctypes.c_char_p, _P(_u32)], True),
    "shg_type_info": (_int, [_vp, _u32, _P(TypeInfo)], True),
    "shg_node_type": (_u32, [_vp, Off, _P(_int)], True),
    "shg_node_version": (_int, [_vp, Off, _P(ctypes.c_uint),
                                _P(ctypes.c_uint)], True),
    "shg_get_u64": (_int, [_vp, Off, ctypes.c_uint, _P(_u64)], True),
    "shg_get_i64": (_int, [_vp, Off, ctypes.c_uint, _P(_i64)], True),
    "shg_get_f64": (_int, [_vp, Off, ctypes.c_uint,
                           _P(ctypes.c_double)], True),
    "shg_get_bytes": (_int, [_vp, Off, ctypes.c_uint, _pvp,
                             _P(ctypes.c_size_t)], True),
    "shg_get_node": (_int, [_vp, Off, ctypes.c_uint, _P(Off)], True),
    "shg_get_root": (_int, [_vp, Off, ctypes.c_uint, _P(_u32)], True),
    "shg_pin_list": (_int, [_vp, _P(PinInfo), ctypes.c_uint], False),
    "shg_version_current": (Off, [_vp], True),
    "shg_version_info": (_int, [_vp, Off, _P(VersionInfo)], True),
    "shg_pin_current": (_int, [_vp, _pvp], False),
    "shg_pin_version": (Off, [_vp], True),
    "shg_unpin": (_int, [_vp], False),
    "shg_map_get_u64": (_int, [_vp, Off, _u64, _P(Val)], True),
    "shg_map_get_bytes": (_int, [_vp, Off, ctypes.c_char_p, ctypes.c_size_t,
                                 _P(Val)], True),
    "shg_map_get_many_u64": (_i64, [_vp, Off, ctypes.c_size_t, _P(_u64),
                                    _P(Val), _P(_int)], True),
    "shg_map_get_many_bytes": (_i64, [_vp, Off, ctypes.c_size_t, _pvp,
                                      _P(ctypes.c_size_t), _P(Val),
                                      _P(_int)], True),
    "shg_map_count": (_i64, [_vp, Off], True),
    "shg_map_iter_init": (_int, [_vp, Off, _P(MapIter)], True),
    "shg_map_iter_next": (_int, [_P(MapIter), _P(Val), _P(Val)], True),
    "shg_vec_len": (_i64, [_vp, Off], True),
    "shg_vec_get": (_int, [_vp, Off, _u64, _P(Val)], True),
    "shg_txn_begin": (_int, [_vp, _pvp], False),
    "shg_txn_root_node": (Off, [_vp], True),
    "shg_txn_node_new": (_int, [_vp, _u32, _P(Off)], False),
    "shg_txn_mut": (_int, [_vp, Ref, _P(Off)], False),
    "shg_txn_set_u64": (_int, [_vp, Ref, _u64], False),
    "shg_txn_set_i64": (_int, [_vp, Ref, _i64], False),
    "shg_txn_set_f64": (_int, [_vp, Ref, ctypes.c_double], False),
    "shg_txn_set_bytes": (_int, [_vp, Ref, ctypes.c_char_p, ctypes.c_size_t],
                          False),
    "shg_txn_set_node": (_int, [_vp, Ref, Off], False),
    "shg_txn_set_root": (_int, [_vp, Ref, _vp], False),
    "shg_txn_import": (_int, [_vp, Off, _P(Off)], False),
    "shg_txn_map_new": (_int, [_vp, Ref, _int, _int], False),
    "shg_txn_map_put_u64": (_int, [_vp, Ref, _u64, _P(Val)], False),
    "shg_txn_map_put_bytes": (_int, [_vp, Ref, ctypes.c_char_p,
                                     ctypes.c_size_t, _P(Val)], False),
    "shg_txn_map_del_u64": (_int, [_vp, Ref, _u64], False),
    "shg_txn_map_del_bytes": (_int, [_vp, Ref, ctypes.c_char_p,
                                     ctypes.c_size_t], False),
    "shg_txn_vec_new": (_int, [_vp, Ref, _int], False),
    "shg_txn_vec_push": (_int, [_vp, Ref, _P(Val)], False),
    "shg_txn_vec_set": (_int, [_vp, Ref, _u64, _P(Val)], False),
    "shg_txn_vec_pop": (_int, [_vp, Ref], False),
    "shg_txn_commit": (_int, [_vp], False),
    "shg_txn_abort": (_int, [_vp], False),
    "shg_update": (_int, [_vp, UPDATE_FN, _vp, ctypes.c_uint], False),
}

path, how = find_library()
lib = ctypes.CDLL(path)
fast = ctypes.PyDLL(path)
for _name, (_res, _args, _fast) in _DECLS.items():
    for _h in (lib, fast):
        _f = getattr(_h, _name)
        _f.restype = _res
        _f.argtypes = _args
