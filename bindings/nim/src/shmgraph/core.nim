# SPDX-License-Identifier: MIT
## Handles, read sections, views, transactions and containers.
##
## Every operation is one or a few calls into the C library; this module
## keeps no copy of any of its algorithms. It adds Nim lifetimes: a
## `Segment` closes when destroyed, a `SharedRoot[T]` is one hold on a root
## slot (copying it takes another hold, destroying drops it), a
## `Version[T]` is one pin (destroying unpins), a `Txn[T]` aborts when it
## is destroyed unfinished.
##
## Views. Inside a `read` section, `Node[T]`, `BytesView`, `MapView`,
## `VecView` and `RootLink` are plain (segment, offset) pairs that read
## the shared graph in place: nothing is copied unless asked (`$`). The
## section guarantees the nodes stay allocated; once it ends, a view would
## read memory that may be reused. The rule: **a view made in a section
## must not outlive it**. Each view records its section's serial number,
## and every access checks it against the calling thread's current section,
## so a view that escaped raises `ViewEscapeDefect` instead of reading freed
## memory (compile with `-d:shgNoViewCheck` to drop the check). Views made
## from a `Version[T]` are valid while that version lives (not checked).
##
## Theory of operation (concurrency). The binding adds no shared-memory
## protocol: read sections, commits, pins and holds are the C library's,
## with its ordering (see docs/ARCHITECTURE.md). Its own process-local
## shared state is small: the type-id cache (`typeIds`, guarded by
## `typeLock`; a racing registration is harmless because
## `shg_type_register` is idempotent and returns the same id), and
## `threadsSeen`, an atomic counter that gives each thread a distinct serial
## base (only uniqueness matters, so no ordering is needed). Section depth
## and serials are thread-local.
##
## Threads. All handles hold only C pointers, and the C library registers
## each thread on first use, so `SharedRoot[T]` and `Version[T]` may be
## used from any thread (pass a copy of a root to each thread: a copy is
## another hold). Views and transactions stay in the thread that made them.

import std/[locks, options, tables]
import capi, errors
export options # getMany's results

type
  Segment* = object
    ## A mapped segment. Move-only; closed when destroyed. Every root,
    ## version and transaction of a segment must be gone before it closes.
    h: ptr CSeg
    name: string

  ShMap*[K, V] = object
    ## Schema marker: a persistent hash map field (keys: an integer type or
    ## `string`; values: integers, floats, `string`, `NodeRef`, `ShRoot`).
  ShVec*[V] = object
    ## Schema marker: a persistent vector field (values as for `ShMap`).
  NodeRef*[T] = object
    ## Schema marker: a field linking a node of type `T` of the same graph.
  ShRoot*[T] = object
    ## Schema marker: a field naming another root (a weak link by reference).

  SharedRoot*[T] = object
    ## One hold on a named root whose graph has shape `T` (a node type, a
    ## `ShMap` or a `ShVec`). Copying takes another hold; destroying drops it.
    seg: ptr CSeg
    h: ptr CRoot

  Version*[T] = object
    ## One pinned version of a root's graph, readable outside read sections
    ## from any thread. Move-only; destroying unpins.
    seg: ptr CSeg
    pin: ptr CPin
    info: ShgVersionInfo

  Txn*[T] = object
    ## A transaction on a root of shape `T`. Move-only; aborted when
    ## destroyed unfinished.
    seg: ptr CSeg
    root: ptr CRoot
    h: ptr CTxn
    owned: bool

  Node*[T] = object
    ## Read view of a node of type `T` (nil when `isNil`).
    seg: ptr CSeg
    off: uint64
    serial: uint64

  BytesView* = object
    ## Read view of a byte string in the segment; `$` copies it.
    p: ptr UncheckedArray[char]
    n: int
    serial: uint64

  MapView*[K, V] = object
    ## Read view of a map (empty when the field is null).
    seg: ptr CSeg
    off: uint64
    serial: uint64

  VecView*[V] = object
    ## Read view of a vector (empty when the field is null).
    seg: ptr CSeg
    off: uint64
    serial: uint64

  RootLink*[T] = object
    ## A root reference read from a field: the root slot it names, or nil
    ## when the field is null or the named root is gone.
    seg: ptr CSeg
    slot: uint32
    ok: bool

  MutNode*[T] = object
    ## A node of type `T` that is mutable in the transaction `txn` (created
    ## or copied in it). Valid until the transaction ends.
    txn: ptr CTxn
    seg: ptr CSeg
    off: uint64

  MutMap*[K, V] = object
    ## The map at one field of a mutable node (or the graph root), in a txn.
    txn: ptr CTxn
    seg: ptr CSeg
    r: ShgRef

  MutVec*[V] = object
    ## The vector at one field of a mutable node (or the graph root), in a txn.
    txn: ptr CTxn
    seg: ptr CSeg
    r: ShgRef

# ---- view lifetime check ----------------------------------------------------

var sectionSerial {.threadvar.}: uint64 # serial of the current section, 0: none
var sectionDepth {.threadvar.}: int
var sectionCount {.threadvar.}: uint64
var threadBase {.threadvar.}: uint64
var threadsSeen: int # atomic; distinguishes threads in serials

proc enterSection*(seg: ptr CSeg) =
  ## Enters a read section on `seg` (nestable). Prefer the `read` templates.
  chk shg_read_lock(seg), "shg_read_lock"
  if sectionDepth == 0:
    if threadBase == 0:
      threadBase = uint64(atomicInc(threadsSeen)) shl 40
    inc sectionCount
    sectionSerial = threadBase or (sectionCount and 0xff_ffff_ffff'u64)
  inc sectionDepth

proc leaveSection*(seg: ptr CSeg) =
  ## Leaves a read section entered with `enterSection`.
  dec sectionDepth
  if sectionDepth == 0:
    sectionSerial = 0
  shg_read_unlock(seg)

proc inSection*(): bool =
  ## Whether the calling thread is inside a read section.
  sectionDepth > 0

template checkView(serial: uint64) =
  when not defined(shgNoViewCheck):
    if serial != 0 and serial != sectionSerial:
      raise newException(ViewEscapeDefect,
        "shmgraph: a view was used outside the read section that made it")

# ---- type table cache --------------------------------------------------------

var typeLock: Lock
var typeIds: Table[(uint, string, int), uint32]
initLock(typeLock)

proc shgKindOf*(t: typedesc): int32 =
  ## The C field kind that stores a Nim field type.
  when t is bool or t is SomeUnsignedInt: KindU64
  elif t is SomeSignedInt: KindI64
  elif t is SomeFloat: KindF64
  elif t is string or t is seq[byte]: KindBytes
  elif t is NodeRef or t is ShMap or t is ShVec: KindNode
  elif t is ShRoot: KindRoot
  else: {.error: "shmgraph: unsupported field type " & $t.}

proc typeId*[T](seg: ptr CSeg; t: typedesc[T]): uint32 =
  ## The id of node type `T` in `seg`'s type table; registers it on first
  ## use (idempotent across processes, cached per process). Two Nim
  ## types of one registered name with different field counts are two
  ## versions of that type (schema evolution): each registers its own.
  mixin shgTypeName, shgFields
  let fields = shgFields(T)
  let key = (cast[uint](seg), shgTypeName(T), fields.len)
  {.cast(gcsafe).}:
    withLock typeLock:
      if key in typeIds:
        return typeIds[key]
    var defs = newSeq[ShgFieldDef](fields.len)
    for i, f in fields:
      defs[i] = ShgFieldDef(name: cstring(f[0]), kind: f[1])
    var id: uint32
    chk shg_type_register(seg, cstring(key[1]),
                          (if defs.len > 0: addr defs[0] else: nil),
                          cuint(defs.len), addr id), "shg_type_register " & key[1]
    withLock typeLock:
      typeIds[key] = id
    result = id

proc forgetSegment(seg: ptr CSeg) =
  {.cast(gcsafe).}:
    withLock typeLock:
      var gone: seq[(uint, string, int)]
      for k in typeIds.keys:
        if k[0] == cast[uint](seg): gone.add k
      for k in gone: typeIds.del k

# ---- segments ----------------------------------------------------------------

proc closeHandle(s: var Segment) =
  if s.h != nil:
    forgetSegment(s.h)
    discard shg_seg_close(s.h)
    s.h = nil

proc `=destroy`*(s: var Segment) =
  closeHandle(s)
  `=destroy`(s.name)

proc `=copy`*(d: var Segment; s: Segment) {.error.}

proc mkOpts(capacity: uint64; mode: int; maxThreads, maxRoots: int;
            allowGroup: bool): ShgOpts =
  result.size = csize_t(sizeof(ShgOpts))
  result.capacity = capacity
  result.mode = uint32(mode)
  result.maxThreads = uint32(maxThreads)
  result.maxRoots = uint32(maxRoots)
  if allowGroup: result.flags = 1

proc createSegment*(name: string; capacity = 0'u64; mode = 0; maxThreads = 0;
                    maxRoots = 0): Segment =
  ## Creates and maps a new segment: `"/name"` under /dev/shm or a file
  ## path. Zero options take the C defaults (1 GiB, mode 0600, 1024 threads
  ## and roots). Raises `ShmError` (-EEXIST, ...).
  var o = mkOpts(capacity, mode, maxThreads, maxRoots, false)
  var h: ptr CSeg
  chk shg_seg_create(cstring(name), addr o, addr h), "shg_seg_create " & name
  Segment(h: h, name: name)

proc openSegment*(name: string; allowGroup = false): Segment =
  ## Maps an existing segment (never creates one).
  var o = mkOpts(0, 0, 0, 0, allowGroup)
  var h: ptr CSeg
  chk shg_seg_open(cstring(name), addr o, addr h), "shg_seg_open " & name
  Segment(h: h, name: name)

proc unlinkSegment*(name: string) =
  ## Removes a segment's name; mappings stay valid.
  chk shg_seg_unlink(cstring(name)), "shg_seg_unlink " & name

proc close*(s: var Segment) =
  ## Closes now (as destroying does).
  closeHandle(s)

proc handle*(s: Segment): ptr CSeg = s.h
  ## The C handle, for calls into `shmgraph/capi`.
proc name*(s: Segment): string = s.name
  ## The name the segment was opened with.
proc isOpen*(s: Segment): bool = s.h != nil
  ## Whether the segment is mapped.

proc register*[T](s: Segment; t: typedesc[T]): uint32 {.discardable.} =
  ## Registers node type `T` now (otherwise done on first use).
  typeId(s.h, T)

proc typeFields*(s: Segment; name: string): seq[(string, int32)] =
  ## The fields (name, C kind) of type `name` in the segment's type table,
  ## as `shmctl dump` sees them. Raises `ShmError` (-ENOENT) if absent.
  var id: uint32
  chk shg_type_find(s.h, cstring(name), addr id), "shg_type_find " & name
  var info: ShgTypeInfo
  chk shg_type_info(s.h, id, addr info), "shg_type_info " & name
  for i in 0 ..< int(info.nfields):
    result.add ($cast[cstring](addr info.field[i].name[0]), info.field[i].kind)

proc check*(s: Segment): int =
  ## Runs the segment checker (`shmctl check`); returns the problems found.
  var rep: ShgCheckReport
  let rc = shg_check(s.h, nil, nil, addr rep)
  chk rc, "shg_check"
  rc

proc rootNames*(s: Segment): seq[string] =
  ## Names of the roots in use.
  var buf = newSeq[ShgRootInfo](64)
  while true:
    let n = shg_root_list(s.h, addr buf[0], cuint(buf.len))
    chk n, "shg_root_list"
    if n <= buf.len:
      for i in 0 ..< n:
        if not buf[i].removed: result.add $cast[cstring](addr buf[i].name[0])
      return
    buf.setLen(n)

proc removeRoot*(s: Segment; name: string) =
  ## Removes a root: its graph is freed once its last holder lets go.
  chk shg_root_remove(s.h, cstring(name)), "shg_root_remove " & name

proc synchronize*(s: Segment; timeoutMs = 0) =
  ## Waits for a grace period (every read section running now has ended).
  chk shg_synchronize(s.h, cuint(timeoutMs)), "shg_synchronize"

proc reclaim*(s: Segment): int64 {.discardable.} =
  ## Frees retired memory whose grace period has passed; bytes freed.
  shg_reclaim(s.h)

# ---- roots -------------------------------------------------------------------

proc `=destroy`*[T](r: var SharedRoot[T]) =
  if r.h != nil:
    discard shg_root_close(r.h)
    r.h = nil

proc `=copy`*[T](d: var SharedRoot[T]; s: SharedRoot[T]) =
  if d.h == s.h: return
  `=destroy`(d)
  d.seg = s.seg
  if s.h != nil:
    chk shg_root_open(s.seg, shg_root_name(s.h), addr d.h), "shg_root_open"

proc createRoot*[T](s: Segment; name: string; t: typedesc[T]): SharedRoot[T] =
  ## Creates root `name` (empty graph) and holds it. Raises on -EEXIST.
  result.seg = s.h
  chk shg_root_create(s.h, cstring(name), addr result.h), "shg_root_create " & name

proc openRoot*[T](s: Segment; name: string; t: typedesc[T]): SharedRoot[T] =
  ## Opens existing root `name` (a hold). Raises on -ENOENT.
  result.seg = s.h
  chk shg_root_open(s.h, cstring(name), addr result.h), "shg_root_open " & name

proc root*[T](s: Segment; name: string; t: typedesc[T]): SharedRoot[T] =
  ## Opens root `name`, creating it if it does not exist.
  result.seg = s.h
  for i in 0 ..< 8:
    var rc = shg_root_open(s.h, cstring(name), addr result.h)
    if rc == 0: return
    if rc != -2: chk rc, "shg_root_open " & name # -ENOENT: create it
    rc = shg_root_create(s.h, cstring(name), addr result.h)
    if rc == 0: return
    if rc != -17: chk rc, "shg_root_create " & name # -EEXIST: lost a race
  raise newShmError(-17, "shg_root_create " & name)

proc name*[T](r: SharedRoot[T]): string = $shg_root_name(r.h)
  ## The root's name.
proc generation*[T](r: SharedRoot[T]): uint64 = shg_root_generation(r.h)
  ## Publishes on this root so far.
proc handle*[T](r: SharedRoot[T]): ptr CRoot = r.h
  ## The C handle.
proc segHandle*[T](r: SharedRoot[T]): ptr CSeg = r.seg
  ## The C handle of the root's segment.

proc slotOf(seg: ptr CSeg; name: string): uint32 =
  var buf = newSeq[ShgRootInfo](64)
  while true:
    let n = shg_root_list(seg, addr buf[0], cuint(buf.len))
    chk n, "shg_root_list"
    if n <= buf.len:
      for i in 0 ..< n:
        if not buf[i].removed and $cast[cstring](addr buf[i].name[0]) == name:
          return buf[i].slot
      raise newShmError(-2, "root " & name)
    buf.setLen(n)

# ---- views -------------------------------------------------------------------

proc isNil*[T](n: Node[T]): bool = n.off == 0
  ## Whether the view is of a null link.
proc offset*[T](n: Node[T]): uint64 = n.off
  ## The node's offset in the segment.
proc typeName*[T](n: Node[T]): string =
  ## `T`'s registered name.
  mixin shgTypeName
  shgTypeName(T)

proc nodeVersion*[T](n: Node[T]): tuple[version, nfields: int] =
  ## The version of `T`'s registered type that `n` was made under (0: the
  ## first registration) and how many fields it stores; fields appended
  ## by later versions read as zero on it (schema evolution).
  checkView(n.serial)
  var v, f: cuint
  chk shg_node_version(n.seg, ShgOff(v: n.off), addr v, addr f),
    "shg_node_version"
  (int(v), int(f))

proc len*(b: BytesView): int =
  checkView(b.serial)
  b.n
proc `$`*(b: BytesView): string =
  ## Copies the bytes into a Nim string.
  checkView(b.serial)
  result = newString(b.n)
  if b.n > 0: copyMem(addr result[0], b.p, b.n)
proc `[]`*(b: BytesView; i: int): char =
  checkView(b.serial)
  if i < 0 or i >= b.n: raise newException(IndexDefect, "index out of bounds")
  b.p[i]
proc `==`*(b: BytesView; s: string): bool =
  ## Compares in place, without copying.
  checkView(b.serial)
  b.n == s.len and (b.n == 0 or equalMem(b.p, unsafeAddr s[0], b.n))
template `==`*(s: string; b: BytesView): bool = b == s
iterator items*(b: BytesView): char =
  checkView(b.serial)
  for i in 0 ..< b.n: yield b.p[i]
template toOpenArray*(b: BytesView): openArray[char] =
  ## The bytes in place, as an `openArray[char]` (same lifetime rule).
  checkView(b.serial)
  toOpenArray(b.p, 0, b.n - 1)

proc isNil*[T](l: RootLink[T]): bool = not l.ok
  ## Whether the link is null or names a root that is gone.
proc slot*[T](l: RootLink[T]): uint32 = l.slot
  ## The root slot the link names.
proc rootName*[T](l: RootLink[T]): string =
  ## The name of the root the link names.
  if not l.ok: raise newShmError(-2, "root link")
  var buf = newSeq[ShgRootInfo](64)
  while true:
    let n = shg_root_list(l.seg, addr buf[0], cuint(buf.len))
    chk n, "shg_root_list"
    if n <= buf.len:
      for i in 0 ..< n:
        if buf[i].slot == l.slot and not buf[i].removed:
          return $cast[cstring](addr buf[i].name[0])
      raise newShmError(-2, "root link")
    buf.setLen(n)
proc open*[T](l: RootLink[T]): SharedRoot[T] =
  ## Opens the root the link names (a new hold).
  result.seg = l.seg
  chk shg_root_open(l.seg, cstring(l.rootName), addr result.h), "shg_root_open"

# Decoding a value word of kind `t` into a view or a Nim value (one
# overload per shape; generic parameters of the schema markers carry the
# element types).
proc decodeVal[N: SomeNumber | bool](seg: ptr CSeg; v: ShgVal; serial: uint64;
                                    t: typedesc[N]): N =
  when N is bool: v.a != 0
  elif N is SomeUnsignedInt: N(v.a)
  elif N is SomeSignedInt: N(cast[int64](v.a))
  else: N(cast[float64](v.a))
proc decodeVal(seg: ptr CSeg; v: ShgVal; serial: uint64;
               t: typedesc[string | seq[byte]]): BytesView =
  BytesView(p: cast[ptr UncheckedArray[char]](v.a), n: int(v.b), serial: serial)
proc decodeVal[U](seg: ptr CSeg; v: ShgVal; serial: uint64;
                  t: typedesc[NodeRef[U]]): Node[U] =
  Node[U](seg: seg, off: v.a, serial: serial)
proc decodeVal[K, V](seg: ptr CSeg; v: ShgVal; serial: uint64;
                     t: typedesc[ShMap[K, V]]): MapView[K, V] =
  MapView[K, V](seg: seg, off: v.a, serial: serial)
proc decodeVal[V](seg: ptr CSeg; v: ShgVal; serial: uint64;
                  t: typedesc[ShVec[V]]): VecView[V] =
  VecView[V](seg: seg, off: v.a, serial: serial)
proc decodeVal[U](seg: ptr CSeg; v: ShgVal; serial: uint64;
                  t: typedesc[ShRoot[U]]): RootLink[U] =
  RootLink[U](seg: seg, slot: uint32(v.a and 0xffff_ffff'u64), ok: v.b == 0)

proc mkView*[T](seg: ptr CSeg; off: uint64; serial: uint64; t: typedesc[T]): Node[T] =
  ## The view of a graph whose root node is at `off`, shaped `t`.
  Node[T](seg: seg, off: off, serial: serial)
proc mkView*[K, V](seg: ptr CSeg; off: uint64; serial: uint64;
                   t: typedesc[ShMap[K, V]]): MapView[K, V] =
  MapView[K, V](seg: seg, off: off, serial: serial)
proc mkView*[V](seg: ptr CSeg; off: uint64; serial: uint64;
                t: typedesc[ShVec[V]]): VecView[V] =
  VecView[V](seg: seg, off: off, serial: serial)

proc readField*[T](n: Node[T]; idx: int; t: typedesc): auto =
  ## Field `idx` of `n`, stored as Nim type `t` (generated accessors call it).
  checkView(n.serial)
  let o = ShgOff(v: n.off)
  var v: ShgVal
  when t is bool or t is SomeUnsignedInt:
    chk shg_get_u64(n.seg, o, cuint(idx), addr v.a), "shg_get_u64"
  elif t is SomeSignedInt:
    chk shg_get_i64(n.seg, o, cuint(idx), cast[ptr int64](addr v.a)), "shg_get_i64"
  elif t is SomeFloat:
    chk shg_get_f64(n.seg, o, cuint(idx), cast[ptr float64](addr v.a)), "shg_get_f64"
  elif t is string or t is seq[byte]:
    var p: pointer
    var l: csize_t
    chk shg_get_bytes(n.seg, o, cuint(idx), addr p, addr l), "shg_get_bytes"
    v.a = cast[uint64](p)
    v.b = uint64(l)
  elif t is NodeRef or t is ShMap or t is ShVec:
    chk shg_get_node(n.seg, o, cuint(idx), cast[ptr ShgOff](addr v.a)), "shg_get_node"
  elif t is ShRoot:
    var s: uint32
    let rc = shg_get_root(n.seg, o, cuint(idx), addr s)
    if rc == -2:
      v.b = 1 # null or dangling: decodes as a nil link
    else:
      chk rc, "shg_get_root"
      v.a = s
  decodeVal(n.seg, v, n.serial, t)

# ---- maps (read side) ---------------------------------------------------------

proc len*[K, V](m: MapView[K, V]): int =
  ## Number of entries.
  checkView(m.serial)
  if m.off == 0: return 0
  let n = shg_map_count(m.seg, ShgOff(v: m.off))
  chk n, "shg_map_count"
  int(n)

proc lookup(seg: ptr CSeg; off: uint64; k: SomeInteger; v: var ShgVal): bool =
  if off == 0: return false
  let rc = shg_map_get_u64(seg, ShgOff(v: off), cast[uint64](k), addr v)
  if rc == -2: return false
  chk rc, "shg_map_get_u64"
  true

proc lookup(seg: ptr CSeg; off: uint64; k: openArray[char]; v: var ShgVal): bool =
  if off == 0: return false
  let p = if k.len > 0: unsafeAddr k[0] else: nil
  let rc = shg_map_get_bytes(seg, ShgOff(v: off), p, csize_t(k.len), addr v)
  if rc == -2: return false
  chk rc, "shg_map_get_bytes"
  true

proc contains*[K, V](m: MapView[K, V]; k: K): bool =
  ## Whether key `k` is present.
  checkView(m.serial)
  var v: ShgVal
  lookup(m.seg, m.off, k, v)

proc `[]`*[K, V](m: MapView[K, V]; k: K): auto =
  ## The value at `k` (a view for strings, nodes, maps); raises `KeyError`.
  checkView(m.serial)
  var v: ShgVal
  if not lookup(m.seg, m.off, k, v):
    raise newException(KeyError, "key not found: " & $k)
  decodeVal(m.seg, v, m.serial, V)

proc getOrDefault*[K, V](m: MapView[K, V]; k: K; def: V): V =
  ## The value at `k`, or `def` (scalar values only).
  checkView(m.serial)
  var v: ShgVal
  if lookup(m.seg, m.off, k, v): decodeVal(m.seg, v, m.serial, V) else: def

proc getMany*[K, V](m: MapView[K, V]; keys: openArray[K]): auto =
  ## The values at `keys`, in their order: `some(value)`, or `none` for
  ## an absent key (values as `[]` gives them). One batched lookup
  ## (shg_map_get_many_u64/_bytes): every answer comes from the same
  ## version, and the keys' memory latencies overlap, so a batch of 16
  ## costs less per key than 16 `[]` calls on a large map. Keys may
  ## repeat. Raises `ShmError` if a key's lookup meets corrupt data.
  checkView(m.serial)
  type R = typeof(decodeVal(m.seg, ShgVal(), 0'u64, V))
  var res = newSeq[Option[R]](keys.len)
  if keys.len > 0 and m.off != 0:
    var vals = newSeq[ShgVal](keys.len)
    var rcs = newSeq[cint](keys.len)
    var rc: int64
    when K is string:
      var ps = newSeq[pointer](keys.len)
      var ls = newSeq[csize_t](keys.len)
      for i in 0 ..< keys.len:
        ps[i] = if keys[i].len > 0: unsafeAddr keys[i][0] else: nil
        ls[i] = csize_t(keys[i].len)
      rc = shg_map_get_many_bytes(m.seg, ShgOff(v: m.off), csize_t(keys.len),
                                  addr ps[0], addr ls[0], addr vals[0],
                                  addr rcs[0])
    else:
      var ks = newSeq[uint64](keys.len)
      for i in 0 ..< keys.len: ks[i] = cast[uint64](keys[i])
      rc = shg_map_get_many_u64(m.seg, ShgOff(v: m.off), csize_t(keys.len),
                                addr ks[0], addr vals[0], addr rcs[0])
    for i in 0 ..< keys.len:
      if rcs[i] == 0:
        res[i] = some(decodeVal(m.seg, vals[i], m.serial, V))
      elif rcs[i] != -2:
        chk rcs[i], "shg_map_get_many"
    chk rc, "shg_map_get_many"
  res

template keyOut(K: typedesc; seg: ptr CSeg; kv: ShgVal; serial: uint64): untyped =
  when K is string: decodeVal(seg, kv, serial, string)
  else: K(kv.a)

iterator pairs*[K, V](m: MapView[K, V]): auto =
  ## Entries in the map's stable order; string keys come as `BytesView`.
  checkView(m.serial)
  if m.off != 0:
    var it: ShgMapIter
    chk shg_map_iter_init(m.seg, ShgOff(v: m.off), addr it), "shg_map_iter_init"
    var kv, vv: ShgVal
    while true:
      let rc = shg_map_iter_next(addr it, addr kv, addr vv)
      if rc == -2: break
      chk rc, "shg_map_iter_next"
      yield (keyOut(K, m.seg, kv, m.serial), decodeVal(m.seg, vv, m.serial, V))

iterator keys*[K, V](m: MapView[K, V]): auto =
  for k, _ in m.pairs: yield k

iterator values*[K, V](m: MapView[K, V]): auto =
  for _, v in m.pairs: yield v

proc isNil*[K, V](m: MapView[K, V]): bool = m.off == 0
  ## Whether the map field is null (reads as empty).

# ---- vectors (read side) --------------------------------------------------------

proc len*[V](x: VecView[V]): int =
  ## Number of elements.
  checkView(x.serial)
  if x.off == 0: return 0
  let n = shg_vec_len(x.seg, ShgOff(v: x.off))
  chk n, "shg_vec_len"
  int(n)

proc `[]`*[V](x: VecView[V]; i: int): auto =
  ## Element `i`; raises `IndexDefect` when out of range.
  checkView(x.serial)
  var v: ShgVal
  let rc = if x.off == 0: -2'i32 else: shg_vec_get(x.seg, ShgOff(v: x.off), uint64(i), addr v)
  if rc == -2 or rc == -22 or rc == -34:
    raise newException(IndexDefect, "index " & $i & " out of range")
  chk rc, "shg_vec_get"
  decodeVal(x.seg, v, x.serial, V)

iterator items*[V](x: VecView[V]): auto =
  for i in 0 ..< x.len: yield x[i]

iterator pairs*[V](x: VecView[V]): auto =
  for i in 0 ..< x.len: yield (i, x[i])

# ---- read sections -------------------------------------------------------------

proc currentOff(r: ptr CRoot; seg: ptr CSeg): uint64 =
  let ver = shg_version_current(r)
  if ver.v == 0: return 0
  var vi: ShgVersionInfo
  chk shg_version_info(seg, ver, addr vi), "shg_version_info"
  vi.node.v

proc view*[T](r: SharedRoot[T]): auto =
  ## The current version's graph, as a view; only inside a read section.
  if sectionDepth == 0:
    raise newShmError(SHG_ENESTED, "view outside a read section")
  mkView(r.seg, currentOff(r.h, r.seg), sectionSerial, T)

template read*[T](r: SharedRoot[T]; v, body: untyped) =
  ## Runs `body` in a read section with `v` bound to a view of the root's
  ## current version. Views must not leave the block (see the module doc).
  ## No locks, no writes to shared memory; never waits for writers.
  block:
    let shgSeg = r.segHandle
    enterSection(shgSeg)
    try:
      let v {.inject.} = r.view
      body
    finally:
      leaveSection(shgSeg)

template read*(s: Segment; body: untyped) =
  ## Runs `body` in a read section of `s`; use `root.view` inside. Every
  ## graph read in one section is consistent (one version per graph).
  block:
    let shgSeg = s.handle
    enterSection(shgSeg)
    try:
      body
    finally:
      leaveSection(shgSeg)

# ---- versions (pins) -------------------------------------------------------------

proc `=destroy`*[T](v: var Version[T]) =
  if v.pin != nil:
    discard shg_unpin(v.pin)
    v.pin = nil

proc `=copy`*[T](d: var Version[T]; s: Version[T]) {.error.}

proc fromPin[T](seg: ptr CSeg; pin: ptr CPin): Version[T] =
  result.seg = seg
  result.pin = pin
  let ver = shg_pin_version(pin)
  if ver.v != 0:
    chk shg_version_info(seg, ver, addr result.info), "shg_version_info"

proc pin*[T](r: SharedRoot[T]): Version[T] =
  ## Pins the root's current version (held until the `Version` is destroyed,
  ## or its process dies). Holds only that version's own nodes.
  var p: ptr CPin
  chk shg_pin_current(r.h, addr p), "shg_pin_current"
  fromPin[T](r.seg, p)

proc root*[T](v: Version[T]): auto =
  ## The pinned graph, as a view valid while `v` lives.
  mkView(v.seg, v.info.node.v, 0'u64, T)
proc seq*[T](v: Version[T]): uint64 = v.info.seq
  ## The version's sequence number within its graph.
proc parentSeq*[T](v: Version[T]): uint64 = v.info.parent
  ## The sequence of the version it was made from (0: none).
proc commitNs*[T](v: Version[T]): uint64 = v.info.commitNs
  ## CLOCK_REALTIME of its commit (0 for an unpublished detached version).
proc bytes*[T](v: Version[T]): uint64 = v.info.bytes
  ## Bytes of the nodes it reaches.
proc nodes*[T](v: Version[T]): uint64 = v.info.nodes
  ## Blocks it reaches.
proc isNil*[T](v: Version[T]): bool = v.pin == nil
  ## Whether `v` holds nothing (moved from, or the root never committed).

proc publish*[T](v: var Version[T]; r: SharedRoot[T]) =
  ## Publishes a detached version on its own root, by CAS on its base.
  ## Raises `ConflictError` if the root moved on meanwhile.
  chk shg_pin_publish(v.pin, r.h), "shg_pin_publish"
  let ver = shg_pin_version(v.pin)
  chk shg_version_info(v.seg, ver, addr v.info), "shg_version_info"

proc publishAs*[T](v: var Version[T]; other: SharedRoot[T]) =
  ## Publishes a copy of a detached version as `other`'s next version.
  chk shg_pin_publish_as(v.pin, other.h), "shg_pin_publish_as"

# ---- transactions --------------------------------------------------------------

proc `=destroy`*[T](tx: var Txn[T]) =
  if tx.h != nil and tx.owned:
    discard shg_txn_abort(tx.h)
  tx.h = nil

proc `=copy`*[T](d: var Txn[T]; s: Txn[T]) {.error.}

proc begin*[T](r: SharedRoot[T]): Txn[T] =
  ## Starts a transaction on the current version (pinned for its life).
  result.seg = r.seg
  result.root = r.h
  result.owned = true
  chk shg_txn_begin(r.h, addr result.h), "shg_txn_begin"

proc isOpen*[T](tx: Txn[T]): bool = tx.h != nil
  ## Whether the transaction is still open.

proc live(tx: Txn) =
  if tx.h == nil: raise newShmError(-22, "transaction already finished")

proc commit*[T](tx: var Txn[T]) =
  ## Publishes the transaction as the root's next version (one CAS). On
  ## `ConflictError` it stays open: abort, detach, or retry (`update`).
  tx.live
  if not tx.owned: raise newShmError(-22, "commit inside update")
  chk shg_txn_commit(tx.h), "shg_txn_commit"
  tx.h = nil

proc abort*[T](tx: var Txn[T]) =
  ## Drops the transaction and everything it made.
  if tx.h != nil and tx.owned:
    discard shg_txn_abort(tx.h)
    tx.h = nil

proc detach*[T](tx: var Txn[T]): Version[T] =
  ## Finishes as a detached version (a fork pinning its base), to keep,
  ## `publish` later by CAS or `publishAs` under another root.
  tx.live
  if not tx.owned: raise newShmError(-22, "detach inside update")
  var p: ptr CPin
  chk shg_txn_detach(tx.h, addr p), "shg_txn_detach"
  tx.h = nil
  fromPin[T](tx.seg, p)

proc new*[T; U](tx: var Txn[T]; t: typedesc[U]): MutNode[U] =
  ## A new zeroed node of type `U`, mutable in this transaction; link it
  ## into the graph by assigning it to a field.
  tx.live
  var o: ShgOff
  chk shg_txn_node_new(tx.h, typeId(tx.seg, U), addr o), "shg_txn_node_new"
  MutNode[U](txn: tx.h, seg: tx.seg, off: o.v)

proc root*[T](tx: var Txn[T]): MutNode[T] =
  ## The graph's root node, made mutable (copied once; created if the
  ## graph is empty). For a root shaped `ShMap`/`ShVec` it is a
  ## `MutMap`/`MutVec`.
  tx.live
  const rootRef = ShgRef()
  var o: ShgOff
  if shg_txn_root_node(tx.h).v == 0:
    chk shg_txn_node_new(tx.h, typeId(tx.seg, T), addr o), "shg_txn_node_new"
    chk shg_txn_set_node(tx.h, rootRef, o), "shg_txn_set_node"
  else:
    chk shg_txn_mut(tx.h, rootRef, addr o), "shg_txn_mut"
  MutNode[T](txn: tx.h, seg: tx.seg, off: o.v)
proc root*[K, V](tx: var Txn[ShMap[K, V]]): MutMap[K, V] =
  tx.live
  MutMap[K, V](txn: tx.h, seg: tx.seg, r: ShgRef())
proc root*[V](tx: var Txn[ShVec[V]]): MutVec[V] =
  tx.live
  MutVec[V](txn: tx.h, seg: tx.seg, r: ShgRef())

type UpdateCtx[T] = object
  fn: proc (tx: var Txn[T]) {.gcsafe.}
  seg: ptr CSeg
  root: ptr CRoot
  exc: ref Exception

proc updateTrampoline[T](txn: ptr CTxn; arg: pointer): cint {.cdecl.} =
  # Called by shg_update; no Nim exception may unwind through C frames,
  # so one is stored and the update is aborted with -ECANCELED.
  let c = cast[ptr UpdateCtx[T]](arg)
  var tx = Txn[T](seg: c.seg, root: c.root, h: txn, owned: false)
  try:
    c.fn(tx)
    result = 0
  except Exception as e:
    c.exc = e
    result = -125
  tx.h = nil

proc update*[T](r: SharedRoot[T]; fn: proc (tx: var Txn[T]) {.gcsafe.};
                maxTries = 0) =
  ## Runs `fn` in a transaction on the newest version and commits; on a
  ## conflict runs it again on the new version (C `shg_update`, up to
  ## `maxTries`, 0 = 64). An exception in `fn` aborts and propagates.
  var c = UpdateCtx[T](fn: fn, seg: r.seg, root: r.h)
  let rc = shg_update(r.h, updateTrampoline[T], addr c, cuint(maxTries))
  if c.exc != nil: raise c.exc
  chk rc, "shg_update"

# ---- mutable nodes --------------------------------------------------------------

proc isNil*[T](n: MutNode[T]): bool = n.off == 0
  ## Whether the link it came from was null.

proc fref(n: MutNode; idx: int): ShgRef = ShgRef(node: ShgOff(v: n.off), field: cuint(idx))

proc importNode(txn: ptr CTxn; off: uint64): uint64 =
  var o: ShgOff
  chk shg_txn_import(txn, ShgOff(v: off), addr o), "shg_txn_import"
  o.v

proc linkNode(txn: ptr CTxn; r: ShgRef; off: uint64) =
  # A node of another graph (or an older version) is refused with -EXDEV:
  # then it is copied into this graph (import), isolation kept.
  var rc = shg_txn_set_node(txn, r, ShgOff(v: off))
  if rc == -18:
    rc = shg_txn_set_node(txn, r, ShgOff(v: importNode(txn, off)))
  chk rc, "shg_txn_set_node"

proc bytesPtr(v: BytesView): pointer =
  checkView(v.serial)
  v.p
proc bytesPtr(v: string | seq[byte] | openArray[char] | openArray[byte]): pointer =
  if v.len > 0: unsafeAddr v[0] else: nil

proc nodeVersion*[T](n: MutNode[T]): tuple[version, nfields: int] =
  ## As for `Node`; a node created or copied in the txn is of the newest
  ## version its txn knows.
  var v, f: cuint
  chk shg_node_version(n.seg, ShgOff(v: n.off), addr v, addr f),
    "shg_node_version"
  (int(v), int(f))

proc mutField*[T; U](n: MutNode[T]; idx: int; t: typedesc[NodeRef[U]]): MutNode[U] =
  ## A `NodeRef` field of a mutable node, as a `MutNode` (the child is
  ## copied into the txn once: path copying; nil when the link is null).
  var o: ShgOff
  let rc = shg_txn_mut(n.txn, n.fref(idx), addr o)
  if rc != -2: chk rc, "shg_txn_mut"
  MutNode[U](txn: n.txn, seg: n.seg, off: o.v)
proc mutField*[T; K, V](n: MutNode[T]; idx: int; t: typedesc[ShMap[K, V]]): MutMap[K, V] =
  ## A map field, for editing (created on the first put).
  MutMap[K, V](txn: n.txn, seg: n.seg, r: n.fref(idx))
proc mutField*[T; V](n: MutNode[T]; idx: int; t: typedesc[ShVec[V]]): MutVec[V] =
  ## A vector field, for editing (created on the first push).
  MutVec[V](txn: n.txn, seg: n.seg, r: n.fref(idx))
proc mutField*[T](n: MutNode[T]; idx: int; t: typedesc[string]): string =
  ## A string field, copied.
  $readField(Node[T](seg: n.seg, off: n.off), idx, t)
proc mutField*[T](n: MutNode[T]; idx: int; t: typedesc[seq[byte]]): seq[byte] =
  ## A bytes field, copied.
  let b = readField(Node[T](seg: n.seg, off: n.off), idx, t)
  result = newSeq[byte](b.n)
  if b.n > 0: copyMem(addr result[0], b.p, b.n)
proc mutField*[T; N: SomeNumber | bool](n: MutNode[T]; idx: int; t: typedesc[N]): N =
  ## A number field.
  readField(Node[T](seg: n.seg, off: n.off), idx, t)
proc mutField*[T; U](n: MutNode[T]; idx: int; t: typedesc[ShRoot[U]]): RootLink[U] =
  ## A root-ref field.
  readField(Node[T](seg: n.seg, off: n.off), idx, t)

proc writeField*[T; X](n: MutNode[T]; idx: int; t: typedesc; v: X) =
  ## Stores `v` in field `idx` (generated setters call it).
  let r = n.fref(idx)
  when t is bool or t is SomeUnsignedInt:
    chk shg_txn_set_u64(n.txn, r, uint64(v)), "shg_txn_set_u64"
  elif t is SomeSignedInt:
    chk shg_txn_set_i64(n.txn, r, int64(v)), "shg_txn_set_i64"
  elif t is SomeFloat:
    chk shg_txn_set_f64(n.txn, r, float64(v)), "shg_txn_set_f64"
  elif t is string or t is seq[byte]:
    let p = bytesPtr(v)
    chk shg_txn_set_bytes(n.txn, r, p, csize_t(v.len)), "shg_txn_set_bytes"
  elif t is NodeRef:
    when X is typeof(nil): linkNode(n.txn, r, 0)
    else:
      static: doAssert X is MutNode or X is Node,
        "a NodeRef field takes a MutNode, a Node view or nil"
      linkNode(n.txn, r, v.off)
  elif t is ShRoot:
    when X is typeof(nil):
      chk shg_txn_set_root(n.txn, r, nil), "shg_txn_set_root"
    else:
      chk shg_txn_set_root(n.txn, r, v.handle), "shg_txn_set_root"
  else:
    {.error: "shmgraph: assign maps and vectors through their entries".}

# ---- mutable maps and vectors ---------------------------------------------------

proc curOff(txn: ptr CTxn; seg: ptr CSeg; r: ShgRef): uint64 =
  if r.node.v == 0: return shg_txn_root_node(txn).v
  var o: ShgOff
  chk shg_get_node(seg, r.node, r.field, addr o), "shg_get_node"
  o.v

proc keyKind(K: typedesc): int32 =
  when K is string: KindBytes
  elif K is SomeInteger: KindU64
  else: {.error: "shmgraph: map keys are integers or strings".}

proc ensure[K, V](m: MutMap[K, V]) =
  if curOff(m.txn, m.seg, m.r) == 0:
    chk shg_txn_map_new(m.txn, m.r, keyKind(K), shgKindOf(V)), "shg_txn_map_new"

proc ensure[V](x: MutVec[V]) =
  if curOff(x.txn, x.seg, x.r) == 0:
    chk shg_txn_vec_new(x.txn, x.r, shgKindOf(V)), "shg_txn_vec_new"

proc encode(txn: ptr CTxn; seg: ptr CSeg; t: typedesc; x: auto): ShgVal =
  # The value word for `x` as a value of kind `t` (strings: pointer to x's
  # bytes, valid while x lives; nodes of other graphs: imported).
  result.kind = shgKindOf(t)
  when t is bool or t is SomeUnsignedInt: result.a = uint64(x)
  elif t is SomeSignedInt: result.a = cast[uint64](int64(x))
  elif t is SomeFloat: result.a = cast[uint64](float64(x))
  elif t is string or t is seq[byte]:
    result.a = cast[uint64](bytesPtr(x))
    result.b = uint64(x.len)
  elif t is NodeRef:
    when x is typeof(nil): result.a = 0
    else: result.a = x.off
  elif t is ShRoot:
    result.a = slotOf(seg, x.name)
  else: {.error: "shmgraph: unsupported value type".}

template retryImport(txn: ptr CTxn; val: var ShgVal; t: typedesc; call: untyped): cint =
  var rc = call
  when t is NodeRef:
    if rc == -18 and val.a != 0:
      val.a = importNode(txn, val.a)
      rc = call
  rc

proc `[]=`*[K, V; X](m: MutMap[K, V]; k: K; v: X) =
  ## Inserts or replaces; node values of other graphs are copied in.
  m.ensure
  var val = encode(m.txn, m.seg, V, v)
  when K is string:
    let kp = if k.len > 0: unsafeAddr k[0] else: nil
    chk retryImport(m.txn, val, V,
      shg_txn_map_put_bytes(m.txn, m.r, kp, csize_t(k.len), addr val)), "shg_txn_map_put_bytes"
  else:
    chk retryImport(m.txn, val, V,
      shg_txn_map_put_u64(m.txn, m.r, uint64(k), addr val)), "shg_txn_map_put_u64"

proc del*[K, V](m: MutMap[K, V]; k: K) =
  ## Deletes `k` if present (like `Table.del`).
  if curOff(m.txn, m.seg, m.r) == 0: return
  let rc = when K is string:
      shg_txn_map_del_bytes(m.txn, m.r, (if k.len > 0: unsafeAddr k[0] else: nil),
                            csize_t(k.len))
    else:
      shg_txn_map_del_u64(m.txn, m.r, uint64(k))
  if rc != -2: chk rc, "shg_txn_map_del"

proc asView[K, V](m: MutMap[K, V]): MapView[K, V] =
  MapView[K, V](seg: m.seg, off: curOff(m.txn, m.seg, m.r))

proc len*[K, V](m: MutMap[K, V]): int = m.asView.len
  ## Number of entries as of the transaction.
proc contains*[K, V](m: MutMap[K, V]; k: K): bool = k in m.asView
  ## Whether `k` is present as of the transaction.
proc `[]`*[K, V](m: MutMap[K, V]; k: K): auto =
  ## The value at `k` as of the transaction (strings copied).
  let x = m.asView[k]
  when V is string: $x
  else: x

proc add*[V; X](x: MutVec[V]; v: X) =
  ## Appends `v`.
  x.ensure
  var val = encode(x.txn, x.seg, V, v)
  chk retryImport(x.txn, val, V, shg_txn_vec_push(x.txn, x.r, addr val)), "shg_txn_vec_push"

proc `[]=`*[V; X](x: MutVec[V]; i: int; v: X) =
  ## Replaces element `i`.
  var val = encode(x.txn, x.seg, V, v)
  chk retryImport(x.txn, val, V,
    shg_txn_vec_set(x.txn, x.r, uint64(i), addr val)), "shg_txn_vec_set"

proc pop*[V](x: MutVec[V]) =
  ## Removes the last element.
  chk shg_txn_vec_pop(x.txn, x.r), "shg_txn_vec_pop"

proc asView[V](x: MutVec[V]): VecView[V] =
  VecView[V](seg: x.seg, off: curOff(x.txn, x.seg, x.r))

proc len*[V](x: MutVec[V]): int = x.asView.len
  ## Number of elements as of the transaction.
proc `[]`*[V](x: MutVec[V]; i: int): auto =
  ## Element `i` as of the transaction (strings copied).
  let e = x.asView[i]
  when V is string: $e
  else: e
