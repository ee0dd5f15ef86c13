# SPDX-License-Identifier: MIT
## Helpers shared by the catalog examples: options and latency samples.

import std/[algorithm, monotimes, parseopt, posix, strutils, times]

type
  Opts* = object
    items*, threads*, procs*, batch*, keep*: int
    seconds*: float
    preferWriter*: bool
    args*: seq[string]
  Samples* = object
    ## Every 64th lookup's duration, in ns.
    ns*: seq[int64]

proc parseOpts*(): Opts =
  ## --items=N --seconds=S --threads=R --procs=P --batch=B --keep=K
  ## [--prefer-writer]; other words go to `args`.
  result = Opts(items: 100_000, seconds: 3, threads: 2, procs: 2, batch: 100,
                keep: 4)
  for kind, key, val in getopt():
    case kind
    of cmdLongOption, cmdShortOption:
      case key
      of "items": result.items = parseInt(val)
      of "seconds": result.seconds = parseFloat(val)
      of "threads": result.threads = parseInt(val)
      of "procs": result.procs = parseInt(val)
      of "batch": result.batch = parseInt(val)
      of "keep": result.keep = parseInt(val)
      of "prefer-writer": result.preferWriter = true
      else: quit("unknown option --" & key, 2)
    of cmdArgument: result.args.add key
    of cmdEnd: discard

template timed*(s: var Samples; i: int; body: untyped) =
  ## Runs `body`; every 64th time (by `i`), records how long it took.
  if (i and 63) == 0:
    let t0 = getMonoTime()
    body
    s.ns.add (getMonoTime() - t0).inNanoseconds
  else:
    body

proc merge*(a: var Samples; b: Samples) = a.ns.add b.ns

proc pct*(s: Samples; p: float): int64 =
  ## Percentile `p` (0..100) of the samples (0 when empty).
  if s.ns.len == 0: return 0
  var v = s.ns
  v.sort()
  v[min(v.high, int(float(v.len) * p / 100))]

proc encode*(s: Samples): string = s.ns.join(",")
proc decode*(t: string): Samples =
  for x in t.split(','):
    if x.len > 0: result.ns.add parseBiggestInt(x)

proc threadCpuNs*(): int64 =
  ## CPU time the calling thread has used, in ns (CLOCK_THREAD_CPUTIME_ID):
  ## on a shared machine, cost per operation in CPU time is steadier than
  ## wall-clock rates.
  var ts: Timespec
  discard clock_gettime(CLOCK_THREAD_CPUTIME_ID, ts)
  int64(ts.tv_sec) * 1_000_000_000 + int64(ts.tv_nsec)
