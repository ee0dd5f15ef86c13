# SPDX-License-Identifier: MIT
## shmgraph for Nim: persistent copy-on-write object graphs in shared
## memory, shared by threads and processes.
##
## ```nim
## import shmgraph
## type Config = object
##   name: string
##   threads: int
## shmType Config
##
## let seg = createSegment("/demo")
## let cfg = seg.root("config", Config)
## cfg.update do (tx: var Txn[Config]):
##   tx.root.name = "prod"
##   tx.root.threads = 8
## cfg.read(c):                       # lock-free, in place, no copies
##   echo c.name, " ", c.threads      # views valid only inside the block
## ```
##
## Modules: `shmgraph/core` (segments, roots, sections, views,
## transactions, containers), `shmgraph/schema` (`shmType`),
## `shmgraph/errors` (`ShmError`), `shmgraph/capi` (the raw C API).
## See docs/NIM.md.

when not defined(gcArc) and not defined(gcOrc):
  {.error: "shmgraph needs destructors: compile with --mm:orc or --mm:arc".}

import shmgraph/[errors, core, schema]
export errors, core, schema
