# SPDX-License-Identifier: MIT
## Raw declarations of the shmgraph C API (lib/shmgraph.h, lib/graph.h).
##
## The structs below copy the C layouts field by field (64-bit Linux); the
## C headers are not included, so the binding does not depend on where they
## are installed. Sizes are checked at compile time against the figures the
## headers imply. Everything here is low level: use the `shmgraph` module.
##
## Linking: `-d:shgLibDir=DIR` links `DIR/libshmgraph.so` with an rpath;
## otherwise `pkg-config --libs shmgraph` is asked at compile time; if that
## finds nothing, the build tree next to this package (`build/.libs` at the
## repository top) is used.

import std/os

const shgLibDir* {.strdefine.} = ""

const repoLibDir = currentSourcePath.parentDir.parentDir.parentDir.parentDir.parentDir /
  "build" / ".libs"

when shgLibDir.len > 0:
  {.passL: "-L" & shgLibDir & " -Wl,-rpath," & shgLibDir & " -lshmgraph".}
else:
  import std/strutils
  const pcLibs = staticExec("pkg-config --libs shmgraph 2>/dev/null").strip
  const pcDir = staticExec("pkg-config --variable=libdir shmgraph 2>/dev/null").strip
  when pcLibs.len > 0:
    {.passL: pcLibs & " -Wl,-rpath," & pcDir.}
  else:
    {.passL: "-L" & repoLibDir & " -Wl,-rpath," & repoLibDir & " -lshmgraph".}

type
  CSeg* = object    ## struct shg_seg (opaque)
  CRoot* = object   ## struct shg_root (opaque)
  CTxn* = object    ## struct shg_txn (opaque)
  CPin* = object    ## struct shg_pin (opaque)

  ShgOff* {.bycopy.} = object ## struct shg_off
    v*: uint64

  ShgOpts* {.bycopy.} = object ## struct shg_opts
    size*: csize_t
    capacity*: uint64
    mode*: uint32
    flags*: uint32
    maxProcs*: uint32
    maxThreads*: uint32
    maxRoots*: uint32
    numaPolicy*: int32
    numaNode*: int32
    flavor*: int32
    retireBudget*: uint64

  ShgVal* {.bycopy.} = object ## struct shg_val: kind, then a 16-byte union
    kind*: int32
    pad: int32
    a*: uint64  ## u64 / i64 / f64 bits / bytes.p / node.v / root (low 32 bits)
    b*: uint64  ## bytes.len

  ShgRef* {.bycopy.} = object ## struct shg_ref
    node*: ShgOff
    field*: cuint
    pad: cuint

  ShgFieldDef* {.bycopy.} = object ## struct shg_field_def
    name*: cstring
    kind*: int32
    pad: int32

  ShgVersionInfo* {.bycopy.} = object ## struct shg_version_info
    node*: ShgOff
    graph*: uint64
    seq*: uint64
    parent*: uint64
    commitNs*: uint64
    bytes*: uint64
    nodes*: uint64

  ShgMapIter* {.bycopy.} = object ## struct shg_map_iter
    seg*: ptr CSeg
    depth: uint32
    pos: array[14, uint32]
    stack: array[14, uint64]

  ShgRootInfo* {.bycopy.} = object ## struct shg_root_info
    name*: array[64, char]
    slot*: uint32
    holds*: uint32
    removed*: bool
    value*: ShgOff
    generation*: uint64
    createdNs*: uint64
    lastPublishNs*: uint64

  ShgCheckReport* {.bycopy.} = object ## struct shg_check_report
    problems*: uint32
    deadProcs*: uint32
    deadThreads*: uint32
    freeBytes*: uint64
    usedBytes*: uint64
    retiredBytes*: uint64
    leakedBytes*: uint64
    graphs*: uint32
    pins*: uint32
    graphNodes*: uint64
    graphBytes*: uint64

  ShgTypeField* {.bycopy.} = object ## one field of struct shg_type_info
    name*: array[24, char]
    kind*: int32

  ShgTypeInfo* {.bycopy.} = object ## struct shg_type_info
    name*: array[32, char]
    id*: uint32
    nfields*: uint32
    field*: array[64, ShgTypeField]

  UpdateFn* = proc (txn: ptr CTxn; arg: pointer): cint {.cdecl.}

static:
  doAssert sizeof(ShgOpts) == 56
  doAssert sizeof(ShgVal) == 24
  doAssert sizeof(ShgRef) == 16
  doAssert sizeof(ShgFieldDef) == 16
  doAssert sizeof(ShgVersionInfo) == 56
  doAssert sizeof(ShgMapIter) == 184
  doAssert sizeof(ShgRootInfo) == 112
  doAssert sizeof(ShgCheckReport) == 72
  doAssert sizeof(ShgTypeInfo) == 32 + 8 + 64 * 28

const
  KindU64* = 1'i32
  KindI64* = 2'i32
  KindF64* = 3'i32
  KindBytes* = 4'i32
  KindNode* = 5'i32
  KindRoot* = 6'i32

  SHG_EMAGIC* = -4096
  SHG_EVERSION* = -4097
  SHG_ELAYOUT* = -4098
  SHG_ETRUNC* = -4099
  SHG_ETOOSMALL* = -4100
  SHG_ENOTREG* = -4101
  SHG_EOWNER* = -4102
  SHG_EMODE* = -4103
  SHG_ENLINK* = -4104
  SHG_ECORRUPT* = -4105
  SHG_ECONFLICT* = -4106
  SHG_EDEADOWNER* = -4107
  SHG_EBUDGET* = -4108
  SHG_ECAPACITY* = -4109
  SHG_ESLOTS* = -4110
  SHG_EBADOFF* = -4111
  SHG_ENESTED* = -4112
  SHG_EBOOT* = -4113
  SHG_ESTUCK* = -4114
  SHG_ENOHUGE* = -4115
  SHG_EREPLICA* = -4116

{.push importc, cdecl.}
proc shg_strerror*(err: cint): cstring
proc shg_seg_create*(name: cstring; opts: ptr ShgOpts; o: ptr ptr CSeg): cint
proc shg_seg_open*(name: cstring; opts: ptr ShgOpts; o: ptr ptr CSeg): cint
proc shg_seg_close*(seg: ptr CSeg): cint
proc shg_seg_unlink*(name: cstring): cint
proc shg_thread_register*(seg: ptr CSeg): cint
proc shg_thread_unregister*(seg: ptr CSeg): cint
proc shg_read_lock*(seg: ptr CSeg): cint
proc shg_read_unlock*(seg: ptr CSeg)
proc shg_read_locked*(seg: ptr CSeg): bool
proc shg_synchronize*(seg: ptr CSeg; timeoutMs: cuint): cint
proc shg_reclaim*(seg: ptr CSeg): int64
proc shg_root_create*(seg: ptr CSeg; name: cstring; o: ptr ptr CRoot): cint
proc shg_root_open*(seg: ptr CSeg; name: cstring; o: ptr ptr CRoot): cint
proc shg_root_close*(root: ptr CRoot): cint
proc shg_root_remove*(seg: ptr CSeg; name: cstring): cint
proc shg_root_generation*(root: ptr CRoot): uint64
proc shg_root_name*(root: ptr CRoot): cstring
proc shg_root_list*(seg: ptr CSeg; o: ptr ShgRootInfo; max: cuint): cint
proc shg_check*(seg: ptr CSeg; fn: pointer; arg: pointer;
                rep: ptr ShgCheckReport): cint
proc shg_type_register*(seg: ptr CSeg; name: cstring; f: ptr ShgFieldDef;
                        nfields: cuint; id: ptr uint32): cint
proc shg_type_find*(seg: ptr CSeg; name: cstring; id: ptr uint32): cint
proc shg_type_info*(seg: ptr CSeg; id: uint32; o: ptr ShgTypeInfo): cint
proc shg_node_type*(seg: ptr CSeg; node: ShgOff; err: ptr cint): uint32
proc shg_node_version*(seg: ptr CSeg; node: ShgOff;
                       version, nfields: ptr cuint): cint
proc shg_get_u64*(seg: ptr CSeg; node: ShgOff; field: cuint; o: ptr uint64): cint
proc shg_get_i64*(seg: ptr CSeg; node: ShgOff; field: cuint; o: ptr int64): cint
proc shg_get_f64*(seg: ptr CSeg; node: ShgOff; field: cuint; o: ptr float64): cint
proc shg_get_bytes*(seg: ptr CSeg; node: ShgOff; field: cuint; p: ptr pointer;
                    len: ptr csize_t): cint
proc shg_get_node*(seg: ptr CSeg; node: ShgOff; field: cuint; o: ptr ShgOff): cint
proc shg_get_root*(seg: ptr CSeg; node: ShgOff; field: cuint; slot: ptr uint32): cint
proc shg_version_current*(root: ptr CRoot): ShgOff
proc shg_version_info*(seg: ptr CSeg; version: ShgOff;
                       o: ptr ShgVersionInfo): cint
proc shg_pin_current*(root: ptr CRoot; o: ptr ptr CPin): cint
proc shg_pin_version*(pin: ptr CPin): ShgOff
proc shg_unpin*(pin: ptr CPin): cint
proc shg_map_get_u64*(seg: ptr CSeg; map: ShgOff; key: uint64; o: ptr ShgVal): cint
proc shg_map_get_bytes*(seg: ptr CSeg; map: ShgOff; key: pointer; klen: csize_t;
                        o: ptr ShgVal): cint
proc shg_map_get_many_u64*(seg: ptr CSeg; map: ShgOff; n: csize_t;
                           keys: ptr uint64; vals: ptr ShgVal;
                           results: ptr cint): int64
proc shg_map_get_many_bytes*(seg: ptr CSeg; map: ShgOff; n: csize_t;
                             keys: ptr pointer; lens: ptr csize_t;
                             vals: ptr ShgVal; results: ptr cint): int64
proc shg_map_count*(seg: ptr CSeg; map: ShgOff): int64
proc shg_map_iter_init*(seg: ptr CSeg; map: ShgOff; it: ptr ShgMapIter): cint
proc shg_map_iter_next*(it: ptr ShgMapIter; key, val: ptr ShgVal): cint
proc shg_vec_len*(seg: ptr CSeg; vec: ShgOff): int64
proc shg_vec_get*(seg: ptr CSeg; vec: ShgOff; index: uint64; o: ptr ShgVal): cint
proc shg_txn_begin*(root: ptr CRoot; o: ptr ptr CTxn): cint
proc shg_txn_root_node*(txn: ptr CTxn): ShgOff
proc shg_txn_node_new*(txn: ptr CTxn; typ: uint32; o: ptr ShgOff): cint
proc shg_txn_mut*(txn: ptr CTxn; r: ShgRef; o: ptr ShgOff): cint
proc shg_txn_set_u64*(txn: ptr CTxn; r: ShgRef; v: uint64): cint
proc shg_txn_set_i64*(txn: ptr CTxn; r: ShgRef; v: int64): cint
proc shg_txn_set_f64*(txn: ptr CTxn; r: ShgRef; v: float64): cint
proc shg_txn_set_bytes*(txn: ptr CTxn; r: ShgRef; p: pointer; len: csize_t): cint
proc shg_txn_set_node*(txn: ptr CTxn; r: ShgRef; node: ShgOff): cint
proc shg_txn_set_root*(txn: ptr CTxn; r: ShgRef; target: ptr CRoot): cint
proc shg_txn_import*(txn: ptr CTxn; node: ShgOff; o: ptr ShgOff): cint
proc shg_txn_map_new*(txn: ptr CTxn; r: ShgRef; keyKind, valKind: int32): cint
proc shg_txn_map_put_u64*(txn: ptr CTxn; r: ShgRef; key: uint64;
                          val: ptr ShgVal): cint
proc shg_txn_map_put_bytes*(txn: ptr CTxn; r: ShgRef; key: pointer;
                            klen: csize_t; val: ptr ShgVal): cint
proc shg_txn_map_del_u64*(txn: ptr CTxn; r: ShgRef; key: uint64): cint
proc shg_txn_map_del_bytes*(txn: ptr CTxn; r: ShgRef; key: pointer;
                            klen: csize_t): cint
proc shg_txn_vec_new*(txn: ptr CTxn; r: ShgRef; valKind: int32): cint
proc shg_txn_vec_push*(txn: ptr CTxn; r: ShgRef; val: ptr ShgVal): cint
proc shg_txn_vec_set*(txn: ptr CTxn; r: ShgRef; index: uint64; val: ptr ShgVal): cint
proc shg_txn_vec_pop*(txn: ptr CTxn; r: ShgRef): cint
proc shg_txn_commit*(txn: ptr CTxn): cint
proc shg_txn_abort*(txn: ptr CTxn): cint
proc shg_txn_detach*(txn: ptr CTxn; o: ptr ptr CPin): cint
proc shg_pin_publish*(pin: ptr CPin; root: ptr CRoot): cint
proc shg_pin_publish_as*(pin: ptr CPin; other: ptr CRoot): cint
proc shg_update*(root: ptr CRoot; fn: UpdateFn; arg: pointer; maxTries: cuint): cint
{.pop.}
