/* SPDX-License-Identifier: MIT */
/*
 * shmgraph public API.
 *
 * Cooperating processes share persistent object graphs that live in one
 * shared-memory segment. Each process maps the segment at its own address,
 * so everything inside it is named by an offset (struct shg_off), never by a
 * pointer.
 *
 * Conventions:
 *  - Commands return 0 (or a non-negative count where stated) or a negative
 *    code: either -errno (-ENOMEM, -ENOSPC, ...) or one of the SHG_E* codes
 *    below -4095. shg_strerror() names any of them.
 *  - Predicates return bool.
 *  - "Context" in each comment says whether the calling thread must be
 *    inside a read section (shg_read_lock) and whether it must not be.
 *  - Threads register implicitly on first use of a segment; registration
 *    can fail (no free slot), hence shg_read_lock() returns an int.
 *
 * This umbrella header includes every part of the API (include/shmgraph/):
 *   base.h      export attributes, error codes, offsets
 *   segment.h   segments, threads, read sections, allocator, deferred free
 *   inline.h    the inline read-lock fast path (its layout is ABI)
 *   roots.h     the root table
 *   inspect.h   readers, statistics, check, recover
 *   graph.h     typed nodes, versions, pins, transactions, maps, vectors
 *   snapshot.h  portable snapshots (export, import)
 *   repl.h      replication messages; NATS publisher and follower
 */
#ifndef SHMGRAPH_H
#define SHMGRAPH_H

#include <shmgraph/base.h>
#include <shmgraph/segment.h>
#include <shmgraph/inline.h>
#include <shmgraph/roots.h>
#include <shmgraph/inspect.h>
#include <shmgraph/graph.h>
#include <shmgraph/snapshot.h>
#include <shmgraph/repl.h>

#endif /* SHMGRAPH_H */
