# SPDX-License-Identifier: MIT
## Runs the catalog example both ways under a writer -- shmgraph (reader
## threads + reader processes, lock-free) and the big giant lock (reader
## threads behind a rwlock, glibc's default reader preference and writer
## preference) -- with the same parameters, and prints one table.
##
##   bench_catalog [--quick] [--out FILE] [--bin PREFIX] [catalog options]
## --bin PREFIX: the example binaries are PREFIX & "catalog_shmgraph" etc.
## (default: next to this program). --out FILE also writes the table, the
## parameters and the machine description to FILE.

import std/[os, osproc, strutils, tables, times]

proc machine(): string =
  var model = "?"
  for l in lines("/proc/cpuinfo"):
    if l.startsWith("model name"):
      model = l.split(':', 1)[1].strip
      break
  let load = readFile("/proc/loadavg").split(' ')[0 .. 2].join(" ")
  result = model & ", " & $countProcessors() & " cpus, " &
    execProcess("uname -sr").strip & ", load average " & load

proc run(bin: string; args: seq[string]): Table[string, string] =
  let (output, rc) = execCmdEx(quoteShellCommand(@[bin] & args))
  if rc != 0:
    quit(bin & " failed (" & $rc & "):\n" & output, 1)
  for line in output.splitLines:
    if line.startsWith("RESULT "):
      for kv in line[7 .. ^1].split(' '):
        let p = kv.split('=', 1)
        if p.len == 2: result[p[0]] = p[1]
  if result.len == 0: quit(bin & ": no RESULT line:\n" & output, 1)

proc main() =
  var quick = false
  var outFile = ""
  var prefix = getAppDir() & "/"
  var pass: seq[string]
  var i = 1
  while i <= paramCount():
    let a = paramStr(i)
    case a
    of "--quick": quick = true
    of "--out": inc i; outFile = paramStr(i)
    of "--bin": inc i; prefix = paramStr(i)
    else: pass.add a
    inc i
  var args = if quick: @["--items=10000", "--seconds=0.5", "--threads=1", "--procs=1"]
             else: @["--items=100000", "--seconds=5", "--threads=2", "--procs=2"]
  args.add pass
  let runs = [
    ("shmgraph", prefix & "catalog_shmgraph", newSeq[string]()),
    ("rwlock", prefix & "catalog_lock", newSeq[string]()),
    ("rwlock-prefer-writer", prefix & "catalog_lock", @["--prefer-writer"])]
  var rows: seq[Table[string, string]]
  for (name, bin, extra) in runs:
    rows.add run(bin, args & extra)
  let cols = ["system", "readers", "lookups_per_s_per_reader",
              "process_lookups_per_s", "reader_cpu_ns_per_lookup",
              "lookup_p50_ns", "lookup_p99_ns", "updates_per_s",
              "commits_per_s", "writer_cpu_ns_per_update", "kept_versions"]
  var text = "catalog example, " & args.join(" ") & "\n"
  text.add "machine: " & machine() & "\n"
  text.add "date: " & $now().utc & "\n\n"
  text.add "| " & cols.join(" | ") & " |\n"
  text.add "|" & "---|".repeat(cols.len) & "\n"
  for r in rows:
    var cells: seq[string]
    for c in cols: cells.add r.getOrDefault(c, "-")
    text.add "| " & cells.join(" | ") & " |\n"
  text.add """
Columns: lookups per second per reader (wall clock; reader threads and, for
shmgraph, reader processes), lookups per second of the reader processes,
reader CPU ns per lookup (CLOCK_THREAD_CPUTIME_ID, steadier than rates on a
shared machine), sampled lookup latency p50/p99, the writer's updates and
commits per second and its CPU ns per update (for the rwlock runs this
includes the deep copy of the table it makes every 16th batch to keep a
version), and the versions kept at the end. The rwlock programs run all
readers as threads of one process: other processes cannot read their table.
"""
  stdout.write text
  if outFile.len > 0:
    writeFile(outFile, text)

main()
