# SPDX-License-Identifier: MIT
"""Exceptions: one class per family of SHG_* / -errno codes."""
import errno

from . import _lib

# enum shg_error (lib/shmgraph.h)
EMAGIC = -4096
EVERSION = -4097
ELAYOUT = -4098
ETRUNC = -4099
ETOOSMALL = -4100
ENOTREG = -4101
EOWNER = -4102
EMODE = -4103
ENLINK = -4104
ECORRUPT = -4105
ECONFLICT = -4106
EDEADOWNER = -4107
EBUDGET = -4108
ECAPACITY = -4109
ESLOTS = -4110
EBADOFF = -4111
ENESTED = -4112
EBOOT = -4113
ESTUCK = -4114
ENOHUGE = -4115
EREPLICA = -4116


def strerror(code):
    """shg_strerror(): the library's text for a code (0, -errno, SHG_E*)."""
    return _lib.fast.shg_strerror(int(code)).decode("utf-8", "replace")


class ShmgraphError(Exception):
    """A negative code returned by libshmgraph.

    ``.code`` is the code (-errno or an SHG_E* value), ``.strerror`` the
    text shg_strerror() gives for it, ``.op`` the C function that failed.
    """

    def __init__(self, code, op=None):
        self.code = int(code)
        self.strerror = strerror(code)
        self.op = op
        where = f"{op}: " if op else ""
        super().__init__(f"{where}{self.strerror} ({self.code})")


class ConflictError(ShmgraphError):
    """SHG_ECONFLICT: another writer published first."""


class NotFoundError(ShmgraphError):
    """-ENOENT: no such segment, root, type or key."""


class ExistsError(ShmgraphError):
    """-EEXIST: the segment, root or type (with other fields) exists."""


class BudgetError(ShmgraphError):
    """SHG_EBUDGET: retired memory over budget, a reader stalls."""


class CapacityError(ShmgraphError):
    """SHG_ECAPACITY or -ENOSPC: the segment is full."""


class SlotsError(ShmgraphError):
    """SHG_ESLOTS: no free process, thread, root, pin or type slot."""


class CorruptError(ShmgraphError):
    """SHG_ECORRUPT or SHG_EBADOFF: inconsistent data in the segment."""


class NestedError(ShmgraphError):
    """SHG_ENESTED: the call is not allowed inside a read section."""


class FormatError(ShmgraphError):
    """The file is not a segment this library can map (magic, version,
    layout, size, file type, owner, mode, links, boot)."""


class DeadOwnerError(ShmgraphError):
    """SHG_EDEADOWNER or SHG_ESTUCK: a lock holder died or stalled."""


class CrossGraphError(ShmgraphError):
    """-EXDEV: a node of another graph or an older version was linked."""


class InvalidError(ShmgraphError):
    """-EINVAL: bad argument (wrong kind, index or name)."""


class ViewClosedError(RuntimeError):
    """A view was used after its read section ended or its pin was closed,
    from a thread that does not own its read section, or after the segment
    was closed or inherited across fork. No shared memory was touched."""


_BY_CODE = {
    ECONFLICT: ConflictError,
    -errno.ENOENT: NotFoundError,
    -errno.EEXIST: ExistsError,
    EBUDGET: BudgetError,
    ECAPACITY: CapacityError,
    -errno.ENOSPC: CapacityError,
    ESLOTS: SlotsError,
    ECORRUPT: CorruptError,
    EBADOFF: CorruptError,
    ENESTED: NestedError,
    EDEADOWNER: DeadOwnerError,
    ESTUCK: DeadOwnerError,
    -errno.EXDEV: CrossGraphError,
    -errno.EINVAL: InvalidError,
}
for _c in (EMAGIC, EVERSION, ELAYOUT, ETRUNC, ETOOSMALL, ENOTREG, EOWNER,
           EMODE, ENLINK, EBOOT):
    _BY_CODE[_c] = FormatError


def error_for(code, op=None):
    """The exception instance for a negative code."""
    return _BY_CODE.get(int(code), ShmgraphError)(code, op)


def check(rc, op=None):
    """Raise the mapped exception if ``rc`` is negative, else return it."""
    if rc < 0:
        raise error_for(rc, op)
    return rc
