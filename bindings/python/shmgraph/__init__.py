# SPDX-License-Identifier: MIT
"""shmgraph: persistent object graphs in shared memory, from Python.

A thin ctypes binding of libshmgraph (the C library is the one
implementation). Segments, roots, read sections, pins, transactions,
maps and vectors as collections.abc views, node types from classes.
See docs/PYTHON.md.
"""
from . import _lib
from .core import (I64, OPEN_ALLOW_GROUP, OPEN_NO_RECOVER, U64, Map,
                   MapView, MutMap, MutNode, MutVec, Node, NodeView, Pin,
                   Root, RootRef, Section, Segment, Txn, Vec, VecView,
                   node_type)
from .errors import (BudgetError, CapacityError, ConflictError,
                     CorruptError, CrossGraphError, DeadOwnerError,
                     ExistsError, FormatError, InvalidError, NestedError,
                     NotFoundError, ShmgraphError, SlotsError,
                     ViewClosedError, strerror)

__version__ = "0.1.0"
LIBRARY_PATH = _lib.path
"""Path of the libshmgraph that was loaded."""
LIBRARY_FOUND_BY = _lib.how
"""How it was found: SHMGRAPH_LIB, build tree, pkg-config or ctypes.util."""

__all__ = [
    "Segment", "Root", "Section", "Pin", "Txn", "NodeView", "MapView",
    "VecView", "MutNode", "MutMap", "MutVec", "Map", "Vec", "Node",
    "RootRef", "U64", "I64", "node_type", "OPEN_ALLOW_GROUP",
    "OPEN_NO_RECOVER", "ShmgraphError", "ConflictError", "NotFoundError",
    "ExistsError", "BudgetError", "CapacityError", "SlotsError",
    "CorruptError", "NestedError", "FormatError", "DeadOwnerError",
    "CrossGraphError", "InvalidError", "ViewClosedError", "strerror",
    "LIBRARY_PATH", "LIBRARY_FOUND_BY",
]
