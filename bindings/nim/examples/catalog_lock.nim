# SPDX-License-Identifier: MIT
## The same catalog program the "big giant lock" way: a mutable graph
## (a table of item objects) in one process, guarded by one process-local
## rwlock. Readers take the read lock per lookup; the writer takes the write
## lock for each batch of updates, so readers wait for the whole batch. To
## keep old versions readable it must copy the whole table (under the read
## lock) every 16th batch. Other processes cannot read it at all: this
## version runs its readers as threads only (threads + procs of them).
##
##   catalog_lock [--items N] [--seconds S] [--threads R] [--procs P]
##                [--batch B] [--keep K] [--prefer-writer]
## glibc's rwlock prefers readers by default (a busy reader set can starve
## the writer); --prefer-writer makes readers queue behind a waiting writer.
## Prints one line "RESULT key=value ..." at the end (read by bench_catalog).

import std/[posix, random, tables, times]
import benchutil

type
  Item = object
    name: string
    price: float
    stock: int
  Catalog = object
    title: string
    batches: int
    items: Table[uint64, Item]

var cat: Catalog
var lock: Pthread_rwlock

proc pthread_rwlockattr_setkind_np(attr: ptr Pthread_rwlockattr;
                                   pref: cint): cint {.importc, header: "<pthread.h>".}
const PreferWriterNonrecursive = 2.cint # PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP

type ReaderArg = object
  items: int
  seconds: float
  seed: int
  result: ptr int
  lat: ptr Samples
  cpu: ptr int64

proc readerThread(a: ReaderArg) {.thread.} =
  {.cast(gcsafe).}:
    let c0 = threadCpuNs()
    var rng = initRand(a.seed)
    let stop = epochTime() + a.seconds
    var n = 0
    while true:
      for _ in 0 ..< 256:
        let id = uint64(rng.rand(a.items - 1))
        timed(a.lat[], n):
          discard pthread_rwlock_rdlock(addr lock)
          cat.items.withValue(id, it):
            doAssert it.price == float(it.stock) * 0.5, "torn read"
            doAssert it.name.len > 0
          discard pthread_rwlock_unlock(addr lock)
        inc n
      if epochTime() >= stop: break
    a.result[] = n
    a.cpu[] = threadCpuNs() - c0

proc main() =
  let o = parseOpts()
  var attr: Pthread_rwlockattr
  discard pthread_rwlockattr_init(addr attr)
  if o.preferWriter:
    discard pthread_rwlockattr_setkind_np(addr attr, PreferWriterNonrecursive)
  discard pthread_rwlock_init(addr lock, addr attr)
  cat.title = "catalog"
  for id in 0 ..< o.items:
    cat.items[uint64(id)] = Item(name: "item-" & $id, stock: id mod 100,
                                 price: float(id mod 100) * 0.5)
  let readers = o.threads + o.procs
  var counts = newSeq[int](readers)
  var lats = newSeq[Samples](readers)
  var cpus = newSeq[int64](readers)
  var ths = newSeq[Thread[ReaderArg]](readers)
  for t in 0 ..< readers:
    createThread(ths[t], readerThread, ReaderArg(items: o.items,
      seconds: o.seconds, seed: t, result: addr counts[t], lat: addr lats[t],
      cpu: addr cpus[t]))

  var kept: seq[Catalog]
  var rng = initRand(42)
  var commits, updates = 0
  let t0 = epochTime()
  let wcpu0 = threadCpuNs()
  let stop = t0 + o.seconds
  while epochTime() < stop:
    discard pthread_rwlock_wrlock(addr lock)
    inc cat.batches
    for _ in 0 ..< o.batch:
      let id = uint64(rng.rand(o.items - 1))
      let stock = rng.rand(1000)
      cat.items[id] = Item(name: "item-" & $id, stock: stock,
                           price: float(stock) * 0.5)
    discard pthread_rwlock_unlock(addr lock)
    inc commits
    updates += o.batch
    if commits mod 16 == 0:
      discard pthread_rwlock_rdlock(addr lock)
      kept.add cat             # a deep copy: the only way to keep a version
      discard pthread_rwlock_unlock(addr lock)
      if kept.len > o.keep: kept.delete(0)
  let wsecs = epochTime() - t0
  let wcpu = threadCpuNs() - wcpu0
  joinThreads(ths)
  var total = 0
  for c in counts: total += c
  var rcpu: int64
  for c in cpus: rcpu += c
  var lat: Samples
  for l in lats: lat.merge l
  if kept.len > 0:
    echo "oldest kept version: batches=", kept[0].batches, " items=", kept[0].items.len
  echo "RESULT system=", (if o.preferWriter: "rwlock-prefer-writer" else: "rwlock"),
    " readers=", readers,
    " lookups_per_s_per_reader=", int(float(total) / o.seconds / float(max(readers, 1))),
    " thread_lookups_per_s=", int(float(total) / o.seconds),
    " process_lookups_per_s=0",
    " updates_per_s=", int(float(updates) / wsecs),
    " commits_per_s=", int(float(commits) / wsecs),
    " kept_versions=", kept.len,
    " reader_cpu_ns_per_lookup=", rcpu div max(total, 1),
    " writer_cpu_ns_per_update=", wcpu div max(updates, 1),
    " lookup_p50_ns=", lat.pct(50), " lookup_p99_ns=", lat.pct(99),
    " lookup_max_ns=", lat.pct(100)

main()
