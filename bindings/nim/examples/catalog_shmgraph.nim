# SPDX-License-Identifier: MIT
## The motivating case: a graph of objects (a catalog of items) shared by
## reader threads and reader processes while one writer batches updates and
## keeps a few old versions readable -- no lock anywhere.
##
## The writer owns nothing the readers wait on: each batch is one
## transaction that copies only the map paths and items it touches and
## publishes them with one CAS. Readers run lock-free read sections (one per
## lookup here), see whole versions only, and write no shared memory. Every
## K-th version is pinned and kept: it stays readable, holding only its own
## nodes, until the writer drops it.
##
##   catalog_shmgraph [--items N] [--seconds S] [--threads R] [--procs P]
##                    [--batch B] [--keep K]
## Prints one line "RESULT key=value ..." at the end (read by bench_catalog).
## Invariant checked by every lookup: price == stock * 0.5 (the writer
## always changes both in one transaction, so a torn read would break it).

import std/[os, osproc, random, strutils, times, streams]
import shmgraph
import benchutil

type
  Item = object
    name: string
    price: float
    stock: int
  Catalog = object
    title: string
    batches: int
    items: ShMap[uint64, NodeRef[Item]]
shmType Item
shmType Catalog

proc lookups(cat: ptr SharedRoot[Catalog]; items: int; seconds: float;
             seed: int; lat: var Samples; cpu: var int64): int =
  ## Lookups of random items until `seconds` pass; each one read section.
  ## Adds the CPU time they took to `cpu`.
  let c0 = threadCpuNs()
  defer: cpu += threadCpuNs() - c0
  var rng = initRand(seed)
  let stop = epochTime() + seconds
  var n = 0
  while true:
    for _ in 0 ..< 256:
      let id = uint64(rng.rand(items - 1))
      timed(lat, n):
        cat[].read(c):
          let it = c.items[id]
          doAssert it.price == float(it.stock) * 0.5, "torn read"
          doAssert it.name.len > 0
      inc n
    if epochTime() >= stop: break
  n

type ReaderArg = object
  cat: ptr SharedRoot[Catalog]
  items: int
  seconds: float
  seed: int
  result: ptr int
  lat: ptr Samples
  cpu: ptr int64

proc readerThread(a: ReaderArg) {.thread.} =
  let mine = a.cat[]              # this thread's own hold
  a.result[] = lookups(unsafeAddr mine, a.items, a.seconds, a.seed, a.lat[],
                       a.cpu[])

proc readerProcess(seg: string; items: int; seconds: float; seed: int) =
  let s = openSegment(seg)
  let cat = s.openRoot("catalog", Catalog)
  var lat: Samples
  var cpu: int64
  let n = lookups(unsafeAddr cat, items, seconds, seed, lat, cpu)
  echo n, " ", cpu, " ", lat.encode

proc fill(cat: SharedRoot[Catalog]; n: int) =
  var i = 0
  while i < n:                   # several transactions of 10k items
    let hi = min(n, i + 10_000)
    cat.update do (tx: var Txn[Catalog]):
      let c = tx.root
      c.title = "catalog"
      for id in i ..< hi:
        let it = tx.new(Item)
        it.name = "item-" & $id
        it.stock = id mod 100
        it.price = float(id mod 100) * 0.5
        c.items[uint64(id)] = it
    i = hi

proc main() =
  let o = parseOpts()
  let rest = o.args
  if rest.len >= 3 and rest[0] == "reader":
    readerProcess(rest[1], o.items, o.seconds, parseInt(rest[2]))
    return
  let segName = "/nim-catalog-" & $getCurrentProcessId()
  var seg = createSegment(segName, capacity = 1'u64 shl 30)
  defer: unlinkSegment(segName)
  let cat = seg.root("catalog", Catalog)
  fill(cat, o.items)

  var procs: seq[Process]
  for p in 0 ..< o.procs:
    procs.add startProcess(getAppFilename(), args = ["reader", segName,
      $(1000 + p), "--items=" & $o.items, "--seconds=" & $o.seconds],
      options = {})
  var counts = newSeq[int](o.threads)
  var lats = newSeq[Samples](o.threads)
  var cpus = newSeq[int64](o.threads)
  var ths = newSeq[Thread[ReaderArg]](o.threads)
  for t in 0 ..< o.threads:
    createThread(ths[t], readerThread, ReaderArg(cat: unsafeAddr cat,
      items: o.items, seconds: o.seconds, seed: t, result: addr counts[t],
      lat: addr lats[t], cpu: addr cpus[t]))

  # The writer: batches of `batch` updates, one commit each; every 16th
  # version is pinned, the newest `keep` pins are kept.
  var kept: seq[Version[Catalog]]
  var rng = initRand(42)
  var commits, updates = 0
  let t0 = epochTime()
  let wcpu0 = threadCpuNs()
  let stop = t0 + o.seconds
  while epochTime() < stop:
    cat.update do (tx: var Txn[Catalog]):
      let c = tx.root
      c.batches = c.batches + 1
      for _ in 0 ..< o.batch:
        let id = uint64(rng.rand(o.items - 1))
        let it = tx.new(Item)
        let stock = rng.rand(1000)
        it.name = "item-" & $id
        it.stock = stock
        it.price = float(stock) * 0.5
        c.items[id] = it
    inc commits
    updates += o.batch
    if commits mod 16 == 0:
      kept.add cat.pin
      if kept.len > o.keep: kept.delete(0)  # unpins the oldest
  let wsecs = epochTime() - t0
  let wcpu = threadCpuNs() - wcpu0
  joinThreads(ths)
  var procLookups = 0
  var lat: Samples
  var rcpu: int64
  for c in cpus: rcpu += c
  for p in procs:
    let line = p.outputStream.readAll.strip
    if p.waitForExit() != 0: quit("reader process failed", 1)
    let f = line.split(' ')
    procLookups += parseInt(f[0])
    rcpu += parseBiggestInt(f[1])
    if f.len > 2: lat.merge decode(f[2])
    p.close()
  var threadLookups = 0
  for c in counts: threadLookups += c
  for l in lats: lat.merge l

  # Old versions are still whole and readable.
  var oldest = "none"
  if kept.len > 0:
    let v = kept[0].root
    oldest = "seq " & $kept[0].seq & ": batches=" & $v.batches &
      " items=" & $v.items.len & " bytes=" & $kept[0].bytes
  let readers = o.threads + o.procs
  echo "oldest kept version ", oldest
  echo "RESULT system=shmgraph readers=", readers,
    " lookups_per_s_per_reader=", int(float(threadLookups + procLookups) /
      o.seconds / float(max(readers, 1))),
    " thread_lookups_per_s=", int(float(threadLookups) / o.seconds),
    " process_lookups_per_s=", int(float(procLookups) / o.seconds),
    " updates_per_s=", int(float(updates) / wsecs),
    " commits_per_s=", int(float(commits) / wsecs),
    " kept_versions=", kept.len,
    " reader_cpu_ns_per_lookup=", rcpu div max(threadLookups + procLookups, 1),
    " writer_cpu_ns_per_update=", wcpu div max(updates, 1),
    " lookup_p50_ns=", lat.pct(50), " lookup_p99_ns=", lat.pct(99),
    " lookup_max_ns=", lat.pct(100)
  kept.setLen(0)
  doAssert seg.check() == 0

main()
