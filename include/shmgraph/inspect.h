/* SPDX-License-Identifier: MIT */
/*
 * shmgraph/inspect.h - readers, statistics, the checker and recovery.
 * Include <shmgraph.h> rather than this file.
 */
#ifndef SHMGRAPH_INSPECT_H
#define SHMGRAPH_INSPECT_H

#include <shmgraph/base.h>
#include <shmgraph/segment.h>

#ifdef __cplusplus
extern "C" {
#endif

/* -------------------------------------------------------------------------
 * Readers, statistics, check and recover.
 */

/* struct shg_reader_info - one registered thread, see shg_reader_list(). */
struct shg_reader_info {
	uint32_t slot; /* thread slot index */
	pid_t pid; /* owning process */
	pid_t tid; /* kernel thread id */
	bool alive; /* owning process is alive (its slot's OFD lock held) */
	bool in_section; /* inside a read section now */
	bool other_pidns; /* @pid and @tid are from another PID namespace */
	int32_t flavor; /* enum shg_flavor of its process */
	uint64_t epoch; /* epoch it entered with (0 = none) */
	uint64_t epoch_lag; /* global epoch minus its epoch */
	uint64_t blocked_ns; /* how long it has blocked reclamation (0 if not) */
	uint64_t held_bytes; /* retired bytes it holds back */
};

/**
 * shg_reader_list() - snapshot of the thread slots: who reads, since when,
 * and how much retired memory each holds back (see shg_stalled_reader()).
 * A monitoring read. Context: any.
 * Return: the number of registered threads (may exceed @max; @out gets
 * the first @max), or a negative code.
 */
SHG_API int shg_reader_list(struct shg_seg *seg, struct shg_reader_info *out,
			    unsigned max);

#define SHG_NUM_CLASSES 36 /* small size classes */
#define SHG_MAX_NODES 16 /* NUMA nodes tracked per segment */

/* struct shg_stats - allocator and reclamation totals. */
struct shg_stats {
	uint64_t capacity; /* segment bytes */
	uint64_t backed; /* bytes with storage reserved */
	uint64_t heap_bytes; /* bytes of heap carved into spans */
	uint64_t free_span_bytes; /* bytes in free spans */
	uint64_t small_used_bytes; /* allocated bytes in small classes */
	uint64_t large_used_bytes; /* allocated bytes in large blocks */
	uint64_t retired_bytes; /* retired, not yet reclaimed */
	uint64_t reclaimed_bytes; /* total ever reclaimed */
	uint64_t reclaimed_blocks; /* total blocks ever reclaimed */
	uint64_t global_epoch; /* current epoch */
	uint32_t nodes; /* NUMA nodes in use (simulated or real) */
	uint32_t procs; /* live process slots */
	uint32_t threads; /* live thread slots */
	uint32_t roots; /* roots in use */
	struct {
		uint32_t size; /* block size */
		uint32_t spans; /* spans of this class */
		uint64_t used_blocks; /* blocks allocated */
		uint64_t total_blocks; /* blocks in those spans */
	} cls[SHG_NUM_CLASSES];
	struct {
		uint64_t span_bytes; /* bytes of spans placed on this node */
		uint64_t used_bytes; /* allocated bytes on this node */
	} node[SHG_MAX_NODES];
};

/**
 * shg_stats_get() - allocator and reclamation totals (a monitoring read;
 * counters are read without stopping writers). Context: any.
 * Return: 0, -EINVAL.
 */
SHG_API SHG_MUST_CHECK int shg_stats_get(struct shg_seg *seg,
					 struct shg_stats *st);

/*
 * Checker. Each problem found is reported through @fn (if not NULL) with a
 * code (SHG_E*) and a one-line message.
 */
typedef void (*shg_problem_fn)(void *arg, int code, const char *msg);

struct shg_check_report {
	uint32_t problems; /* violations found */
	uint32_t dead_procs; /* process slots whose owner is dead */
	uint32_t dead_threads; /* thread slots whose owner is dead */
	uint64_t free_bytes; /* bytes on free lists and free spans */
	uint64_t used_bytes; /* bytes allocated */
	uint64_t retired_bytes; /* bytes in retired lists */
	uint64_t leaked_bytes; /* held by dead owners, recoverable */
	/* graph layer (appended) */
	uint32_t graphs; /* roots whose value is a graph version */
	uint32_t pins; /* pin records in use (live processes) */
	uint64_t graph_nodes; /* blocks walked from current and pinned
			       * versions (version records included) */
	uint64_t graph_bytes; /* their block bytes */
};

/**
 * shg_check() - verify the segment's invariants.
 *
 * Safe on a live segment: it changes no data, and what writers change
 * while it reads is not reported as a problem: the retire lists are read
 * in one limbo_lock hold in an order that a block's next life cannot
 * enter twice; a retired block counts as reachable only if it was still
 * unfreed when the version was loaded; free lists of live owners are
 * re-walked, and an allocator pass that finds a problem is repeated
 * holding the arena locks, and only that pass reports. It holds no long read
 * section, so writers are never pushed past their retire budget whatever
 * the graphs' size: each root's current version is pinned in one short
 * read section and walked outside it (the pin keeps only that version),
 * versions pinned by other processes are walked in read sections of a few
 * thousand nodes, and the retire lists are read under limbo_lock for one
 * pass. So it takes a pin record per graph root while it runs (a full pin
 * table makes it walk that root inside a read section). Never reads
 * outside the mapping. Context: outside read sections (inside one, the
 * walks stay in it).
 * Return: the number of problems (0 = sound) or a negative code.
 */
SHG_API int shg_check(struct shg_seg *seg, shg_problem_fn fn, void *arg,
		      struct shg_check_report *rep);

struct shg_recover_report {
	uint32_t procs_released; /* dead process slots released */
	uint32_t threads_released; /* dead thread slots released */
	uint32_t holds_released; /* root holds of dead processes */
	uint32_t spans_adopted; /* spans of dead threads made available */
	uint64_t retired_adopted; /* retired bytes moved to survivors */
	uint64_t leaked_freed; /* bytes freed by a reachability sweep */
	int32_t sweep_err; /* 0, or why the sweep did not finish (e.g.
			    * SHG_EBUDGET: a live reader stalled its grace
			    * period; -EBUSY: another sweep was running) */
};

/**
 * shg_recover() - release everything dead processes held.
 *
 * Releases dead processes' slots, holds, pins and retired lists, then runs
 * a live leak sweep (mark from roots, pins and live txns; a grace period;
 * mark again) and frees what nothing reaches. Safe while other processes
 * read and write; the marks walk the graphs outside long read sections, as
 * shg_check() does, so writers keep within their retire budget. Context: outside read sections. Return: 0, even when
 * the sweep could not finish (then @rep->sweep_err says why); SHG_ENESTED
 * inside a read section; -EINVAL.
 */
SHG_API SHG_MUST_CHECK int shg_recover(struct shg_seg *seg,
				       struct shg_recover_report *rep);

#ifdef __cplusplus
}
#endif
#endif /* SHMGRAPH_INSPECT_H */
