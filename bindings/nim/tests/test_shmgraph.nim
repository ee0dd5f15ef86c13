# SPDX-License-Identifier: MIT
# Tests of the Nim binding (std/unittest). Run by scripts/test-nim.sh.
# The binary doubles as the child of the two-process tests: started with
# "--child MODE SEGMENT", it runs one child job and exits.

import std/[os, osproc, streams, strutils, unittest, times]
import shmgraph
import shmgraph/capi

type
  Team = object
    title: string
    size: int
  Person = object
    name: string
    age: int
    visits: uint64
    score: float
    active: bool
    blob: seq[byte]
    friend: NodeRef[Person]
    team: ShRoot[Team]
    tags: ShMap[string, int]
    byId: ShMap[uint64, NodeRef[Person]]
    history: ShVec[float]
    names: ShVec[string]
  Pair = object
    a: int
    b: int
  PairV2 = object # Pair with a field appended: a second version of "Pair"
    a: int
    b: int
    c: int
shmType Team
shmType Person
shmType Pair
shmType PairV2, "Pair"

const Sum = 1000

proc segName(tag: string): string = "/nimtest-" & $getCurrentProcessId() & "-" & tag

proc fresh(tag: string): Segment =
  let n = segName(tag)
  try: unlinkSegment(n) except ShmError: discard
  result = createSegment(n, capacity = 64'u64 shl 20)

proc holds(seg: Segment; name: string): int =
  var buf: array[16, ShgRootInfo]
  let n = shg_root_list(seg.handle, addr buf[0], 16)
  for i in 0 ..< min(n, 16):
    if $cast[cstring](addr buf[i].name[0]) == name: return int(buf[i].holds)
  -1

proc pinCount(seg: Segment): int =
  var rep: ShgCheckReport
  discard shg_check(seg.handle, nil, nil, addr rep)
  int(rep.pins)

# ---- child process jobs ---------------------------------------------------------

proc childMain(mode, name: string): int =
  let seg = openSegment(name)
  let r = seg.openRoot("pair", Pair)
  case mode
  of "read-write":
    # read what the parent wrote, then publish a commit of our own
    var a = 0
    r.read(p):
      a = p.a
    if a != 7: return 3
    r.update do (tx: var Txn[Pair]):
      tx.root.b = 42
    return 0
  of "read-loop":
    # read consistent snapshots while the parent commits; count versions
    discard seg.root("child-ready", Pair) # tells the parent to start
    var seen = 0
    var last = -1
    let deadline = epochTime() + 20
    while epochTime() < deadline:
      var a, b: int
      r.read(p):
        a = p.a
        b = p.b
      if a + b != Sum: return 4
      if a != last:
        inc seen
        last = a
      if a == Sum: break
    return (if seen >= 2 and last == Sum: 0 else: 5)
  of "pin-and-hang":
    # pin a version, say so, and wait to be killed
    let v = r.pin
    echo "pinned ", v.seq
    flushFile(stdout)
    sleep(60_000)
    return 6
  else:
    return 2

if paramCount() >= 3 and paramStr(1) == "--child":
  quit(childMain(paramStr(2), paramStr(3)))

proc runChild(mode, name: string): Process =
  startProcess(getAppFilename(), args = ["--child", mode, name],
               options = {poParentStreams})

# ---- tests ------------------------------------------------------------------------

suite "segments and errors":
  test "open of a missing segment raises ShmError with code and text":
    try:
      discard openSegment(segName("missing"))
      check false
    except ShmError as e:
      check e.code == -2
      check "No such file" in e.msg

  test "create twice: -EEXIST; unlink removes the name":
    var seg = fresh("twice")
    expect ShmError:
      discard createSegment(segName("twice"))
    unlinkSegment(segName("twice"))
    try:
      discard openSegment(segName("twice"))
      check false
    except ShmError as e:
      check e.code == -2
    seg.close()
    check not seg.isOpen

  test "strerror names SHG codes":
    check strerror(SHG_ECONFLICT).len > 0
    check newShmError(SHG_ECONFLICT, "x") of ConflictError

suite "roots, pins and transactions":
  var seg = fresh("roots")
  teardown:
    check seg.check() == 0

  test "SharedRoot: opening is a hold, a copy adds one, destroying drops it":
    block:
      let r = seg.root("held", Pair)
      check seg.holds("held") == 1
      block:
        let r2 = r
        check seg.holds("held") == 2
        check r2.name == "held"
      check r.name == "held" # r stays alive past the copy: a real copy
      check seg.holds("held") == 1
    check seg.holds("held") == 0

  test "scalars, strings, bytes, maps and vectors round-trip":
    let r = seg.root("people", Person)
    r.update do (tx: var Txn[Person]):
      let p = tx.root
      p.name = "ada"
      p.age = -36
      p.visits = 12'u64
      p.score = 2.5
      p.active = true
      p.blob = @[1'u8, 0, 255]
      p.tags["x"] = 1
      p.tags["y"] = 2
      p.tags["z"] = 3
      p.tags.del "z"
      p.tags.del "absent"
      for i in 0 ..< 100: p.history.add float(i) / 2
      p.history[3] = 99.0
      p.history.pop()
      p.names.add "a"
      p.names.add ""
      check p.tags.len == 2
      check p.tags["y"] == 2
      check p.name == "ada"
    r.read(p):
      check p.name == "ada"
      check $p.name == "ada"
      check p.name.len == 3
      var chars = 0
      for ch in p.name.toOpenArray: # in place, no copy
        if ch in {'a', 'd'}: inc chars
      check chars == 3
      check p.age == -36
      check p.visits == 12'u64
      check p.score == 2.5
      check p.active
      check p.blob.len == 3 and p.blob[2] == '\xff'
      check p.tags.len == 2
      check "x" in p.tags and "z" notin p.tags
      check p.tags["x"] == 1
      expect KeyError:
        discard p.tags["nope"]
      var keys: seq[string]
      var total = 0
      for k, v in p.tags:
        keys.add $k
        total += v
      check total == 3 and keys.len == 2 and "x" in keys and "y" in keys
      check p.history.len == 99
      check p.history[3] == 99.0
      check p.history[98] == 49.0
      var s = 0.0
      for x in p.history: s += x
      var want = 0.0
      for i in 0 ..< 99: want += (if i == 3: 99.0 else: float(i) / 2)
      check s == want
      expect IndexDefect:
        discard p.history[99]
      check p.names.len == 2 and p.names[0] == "a" and p.names[1].len == 0
      check p.friend.isNil
      check p.team.isNil
      check p.byId.len == 0

  test "the type table holds the Nim field names (what shmctl dump shows)":
    seg.register(Person)
    let f = seg.typeFields("Person")
    check f.len == 12
    check f[0] == ("name", KindBytes)
    check f[1] == ("age", KindI64)
    check f[2] == ("visits", KindU64)
    check f[3] == ("score", KindF64)
    check f[4] == ("active", KindU64)
    check f[6] == ("friend", KindNode)
    check f[7] == ("team", KindRoot)
    check f[8] == ("tags", KindNode)
    check f[11] == ("names", KindNode)
    let shmctl = getEnv("SHG_SHMCTL")
    if shmctl.len > 0:
      let r = seg.root("dumped", Person)
      r.update do (tx: var Txn[Person]):
        tx.root.name = "dumpme"
        tx.root.tags["k"] = 5
      let (output, rc) = execCmdEx(shmctl & " dump " & seg.name & " dumped")
      check rc == 0
      check "Person" in output and "name: \"dumpme\"" in output
      check "tags: map<bytes,i64>" in output and "history: null" in output
    else:
      echo "    (SHG_SHMCTL unset: shmctl dump not run)"

  test "Version: a pin keeps an old version readable; destroying unpins":
    let r = seg.root("versions", Pair)
    r.update do (tx: var Txn[Pair]):
      tx.root.a = 1
    let before = pinCount(seg)
    block:
      let v1 = r.pin
      check pinCount(seg) == before + 1
      r.update do (tx: var Txn[Pair]):
        tx.root.a = 2
      let v2 = r.pin
      check v1.root.a == 1
      check v2.root.a == 2
      check v2.seq > v1.seq and v2.parentSeq == v1.seq
      check v1.bytes > 0
    check pinCount(seg) == before

  test "path copying: editing a child leaves the pinned version intact":
    let r = seg.root("chain", Person)
    r.update do (tx: var Txn[Person]):
      let p = tx.root
      p.name = "parent"
      let c = tx.new(Person)
      c.name = "child"
      c.age = 1
      p.friend = c
    let old = r.pin
    r.update do (tx: var Txn[Person]):
      tx.root.friend.age = 2      # copies root and child once
      tx.root.friend.name = "child2"
      check tx.root.friend.name == "child2"
    check old.root.friend.age == 1
    check $old.root.friend.name == "child"
    r.read(p):
      check p.friend.age == 2 and p.friend.name == "child2"
      check p.name == "parent"
    r.update do (tx: var Txn[Person]):  # strings straight from a view
      tx.root.tags[$old.root.friend.name] = 9
      tx.root.names.add old.root.friend.name
      tx.root.friend.name = old.root.name
    r.read(p):
      check p.tags["child"] == 9 and p.names[0] == "child"
      check p.friend.name == "parent"
    r.update do (tx: var Txn[Person]):
      tx.root.friend = nil
    r.read(p):
      check p.friend.isNil

  test "explicit begin/commit; a lost race raises ConflictError":
    let r = seg.root("race", Pair)
    var t1 = r.begin
    var t2 = r.begin
    t1.root.a = 10
    t2.root.a = 20
    t1.commit()
    check not t1.isOpen
    expect ConflictError:
      t2.commit()
    check t2.isOpen
    t2.abort()
    check not t2.isOpen
    r.read(p):
      check p.a == 10
    block:
      var t3 = r.begin
      t3.root.a = 30 # destroyed unfinished: aborted
    r.read(p):
      check p.a == 10

  test "update retries on conflict and runs the function again":
    let r = seg.root("retry", Pair)
    var tries = 0
    r.update do (tx: var Txn[Pair]):
      inc tries
      if tries == 1:
        var other = r.begin     # another writer wins meanwhile
        other.root.b = 5
        other.commit()
      tx.root.a = tx.root.a + 1
    check tries == 2
    r.read(p):
      check p.a == 1 and p.b == 5

  test "an exception in update aborts and propagates":
    let r = seg.root("raise", Pair)
    let gen = r.generation
    expect ValueError:
      r.update do (tx: var Txn[Pair]):
        tx.root.a = 99
        raise newException(ValueError, "no")
    check r.generation == gen

  test "detach, then publish by CAS or under another root":
    let r = seg.root("fork", Pair)
    let other = seg.root("fork-copy", Pair)
    r.update do (tx: var Txn[Pair]):
      tx.root.a = 1
    var t = r.begin
    t.root.a = 2
    var d = t.detach
    check d.root.a == 2
    r.read(p):
      check p.a == 1
    d.publishAs(other)
    d.publish(r)
    r.read(p):
      check p.a == 2
    other.read(p):
      check p.a == 2
    var t2 = r.begin
    t2.root.b = 1
    var d2 = t2.detach
    r.update do (tx: var Txn[Pair]):
      tx.root.b = 7
    expect ConflictError:
      d2.publish(r)

  test "linking another graph's node copies it; a root ref links by reference":
    let a = seg.root("graph-a", Person)
    let b = seg.root("graph-b", Person)
    let team = seg.root("team", Team)
    team.update do (tx: var Txn[Team]):
      tx.root.title = "core"
      tx.root.size = 3
    a.update do (tx: var Txn[Person]):
      tx.root.name = "in-a"
    let va = a.pin
    b.update do (tx: var Txn[Person]):
      tx.root.friend = va.root      # another graph: imported (copied)
      tx.root.byId[1] = va.root     # as a map value too
      tx.root.team = team           # a root ref: by reference
    a.update do (tx: var Txn[Person]):
      tx.root.name = "changed"
    team.update do (tx: var Txn[Team]):
      tx.root.size = 4
    b.read(p):
      check p.friend.name == "in-a"
      check p.friend.offset != va.root.offset
      check p.byId[1].name == "in-a"
      check not p.team.isNil
      check p.team.rootName == "team"
      let t = p.team.open
      t.read(tv):
        check tv.size == 4 and tv.title == "core"
    seg.removeRoot("team")
    b.read(p):
      discard p.name # the removed root is still held by `team`
    check seg.check() == 0

  test "map and vector roots":
    let m = seg.root("table", ShMap[uint64, string])
    m.update do (tx: var Txn[ShMap[uint64, string]]):
      for i in 1'u64 .. 300: tx.root[i] = "v" & $i
      tx.root.del 2
    m.read(t):
      check t.len == 299
      check t[300] == "v300"
      check 2'u64 notin t
      var n = 0
      for k, v in t:
        check v == "v" & $k
        inc n
      check n == 299
    let v = seg.root("list", ShVec[int])
    v.update do (tx: var Txn[ShVec[int]]):
      for i in 0 ..< 70: tx.root.add i * i
    v.read(x):
      check x.len == 70 and x[69] == 69 * 69
      var i = 0
      for e in x:
        check e == i * i
        inc i

  test "getMany: many keys in one lookup of one version":
    let s2 = fresh("many")
    block:
      let m = s2.root("many", ShMap[uint64, string])
      m.update do (tx: var Txn[ShMap[uint64, string]]):
        for i in 1'u64 .. 300: tx.root[i] = "v" & $i
      m.read(t):
        let r = t.getMany([5'u64, 301, 300, 5])
        check r.len == 4
        check r[0].isSome and r[0].get == "v5"
        check r[1].isNone
        check r[2].get == "v300" and r[3].get == "v5"
        check t.getMany(newSeq[uint64]()).len == 0
        var ks: seq[uint64]
        for i in 0'u64 ..< 400: ks.add i * 3
        let all = t.getMany(ks)
        for i, k in ks:
          check all[i].isSome == (k in t)
          if all[i].isSome: check all[i].get == "v" & $k
      let b = s2.root("bk", ShMap[string, int])
      b.update do (tx: var Txn[ShMap[string, int]]):
        tx.root["a"] = 1
        tx.root["bb"] = 2
        tx.root[""] = 3
      b.read(t):
        check t.getMany(["bb", "x", "", "a"]) ==
          @[some(2), none(int), some(3), some(1)]
      let v = m.pin # the pinned version keeps answering after a commit
      m.update do (tx: var Txn[ShMap[uint64, string]]):
        tx.root[5] = "new"
        tx.root.del 6
      let old = v.root.getMany([5'u64, 6])
      check old[0].get == "v5" and old[1].get == "v6"
      m.read(t):
        let cur = t.getMany([5'u64, 6])
        check cur[0].get == "new" and cur[1].isNone
    unlinkSegment(s2.name)

  test "nodeVersion: which version of its type a node was made under":
    let s2 = fresh("ver")
    block:
      let p = s2.root("pv", Pair)
      p.update do (tx: var Txn[Pair]):
        tx.root.a = 1
      s2.register(PairV2)
      let p2 = s2.root("pv2", PairV2)
      p2.update do (tx: var Txn[PairV2]):
        tx.root.c = 3
      p.read(x):
        check x.nodeVersion == (version: 0, nfields: 2)
      p2.read(x):
        check x.nodeVersion == (version: 1, nfields: 3)
        check x.c == 3
      p.update do (tx: var Txn[Pair]):
        tx.root.b = 2 # copied as the newest version
        check tx.root.nodeVersion == (version: 1, nfields: 3)
      p.read(x):
        check x.nodeVersion == (version: 1, nfields: 3)
        check x.a == 1 and x.b == 2
    unlinkSegment(s2.name)

  test "a view used after its section raises ViewEscapeDefect":
    let r = seg.root("escape", Person)
    r.update do (tx: var Txn[Person]):
      tx.root.name = "x"
    var leaked: BytesView
    r.read(p):
      leaked = p.name
      check leaked == "x"
    expect ViewEscapeDefect:
      discard $leaked
    var node: Node[Person]
    r.read(p):
      node = p
    expect ViewEscapeDefect:
      discard node.age
    r.read(p):
      expect ViewEscapeDefect: # another section: still refused
        discard node.age

  test "view outside a section is refused":
    let r = seg.root("noview", Pair)
    expect ShmError:
      discard r.view
    seg.read:
      discard r.view.isNil

  unlinkSegment(seg.name)

suite "threads":
  test "reader threads see consistent versions while a writer commits":
    var seg = fresh("threads")
    let r = seg.root("pair", Pair)
    r.update do (tx: var Txn[Pair]):
      tx.root.a = 0
      tx.root.b = Sum

    # Nim 1.6 never destroys a Thread's argument, so threads get a pointer
    # to the root (a copy would be a hold released only at process exit).
    proc reader(rp: ptr SharedRoot[Pair]) {.thread.} =
      let r = rp[]    # a copy: this thread's own hold, dropped at return
      var last = -1
      while true:
        var a, b: int
        r.read(p):
          a = p.a
          b = p.b
        doAssert a + b == Sum, "torn read"
        doAssert a >= last, "went back in time"
        last = a
        if a == Sum: break

    var ths: array[3, Thread[ptr SharedRoot[Pair]]]
    for t in ths.mitems: createThread(t, reader, unsafeAddr r)
    for i in 1 .. Sum:
      r.update do (tx: var Txn[Pair]):
        tx.root.a = i
        tx.root.b = Sum - i
    joinThreads(ths)
    check seg.holds("pair") == 1
    check seg.check() == 0
    unlinkSegment(seg.name)

suite "processes":
  test "a child process reads the parent's commit and commits its own":
    var seg = fresh("proc1")
    let r = seg.root("pair", Pair)
    r.update do (tx: var Txn[Pair]):
      tx.root.a = 7
    let p = runChild("read-write", seg.name)
    check p.waitForExit() == 0
    p.close()
    r.read(x):
      check x.a == 7 and x.b == 42
    check seg.check() == 0
    unlinkSegment(seg.name)

  test "a reader process sees only whole versions while the parent commits":
    var seg = fresh("proc2")
    let r = seg.root("pair", Pair)
    r.update do (tx: var Txn[Pair]):
      tx.root.a = 0
      tx.root.b = Sum
    let p = runChild("read-loop", seg.name)
    let t0 = epochTime()
    while "child-ready" notin seg.rootNames and epochTime() < t0 + 30:
      sleep(5)
    for i in 1 .. Sum:
      r.update do (tx: var Txn[Pair]):
        tx.root.a = i
        tx.root.b = Sum - i
      if i mod 100 == 0: sleep(2)
    check p.waitForExit() == 0
    p.close()
    check seg.check() == 0
    unlinkSegment(seg.name)

  test "a reader process killed with SIGKILL leaves no pin behind":
    var seg = fresh("proc3")
    let r = seg.root("pair", Pair)
    r.update do (tx: var Txn[Pair]):
      tx.root.a = 1
    let before = pinCount(seg)
    let p = startProcess(getAppFilename(), args = ["--child", "pin-and-hang",
                         seg.name], options = {})
    let line = p.outputStream.readLine
    check line.startsWith("pinned ")
    check pinCount(seg) == before + 1
    p.kill()                      # SIGKILL
    discard p.waitForExit()
    p.close()
    check pinCount(seg) == before # pins of dead processes do not count
    r.update do (tx: var Txn[Pair]):
      tx.root.a = 2
    var again = openSegment(seg.name) # opening releases dead slots
    again.close()
    check seg.check() == 0
    unlinkSegment(seg.name)
