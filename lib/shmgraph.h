/* SPDX-License-Identifier: MIT */
/*
 * shmgraph public API.
 *
 * Cooperating processes share persistent object graphs that live in one
 * shared-memory segment. Each process maps the segment at its own address,
 * so everything inside it is named by an offset (struct shg_off), never by a
 * pointer. This header is the foundation layer: segments, threads, read-side
 * critical sections across processes (epochs), deferred reclamation, the
 * allocator, the root table, and the checker.
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
 */
#ifndef SHMGRAPH_H
#define SHMGRAPH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(SHG_BUILDING_LIB)
#define SHG_API __attribute__((visibility("default")))
#else
#define SHG_API
#endif
#define SHG_MUST_CHECK __attribute__((warn_unused_result))

/* Library version (also in shmgraph.pc). */
#define SHG_VERSION_MAJOR 0
#define SHG_VERSION_MINOR 1

/* -------------------------------------------------------------------------
 * Error codes (all below -4095 so they never collide with -errno).
 */
enum shg_error {
	SHG_EMAGIC = -4096, /* not a shmgraph segment (bad magic) */
	SHG_EVERSION = -4097, /* segment format newer than this library */
	SHG_ELAYOUT = -4098, /* layout hash mismatch (other build/ABI) */
	SHG_ETRUNC = -4099, /* file shorter than its header claims */
	SHG_ETOOSMALL = -4100, /* file too small to hold a header */
	SHG_ENOTREG = -4101, /* not a regular file */
	SHG_EOWNER = -4102, /* file owned by another user */
	SHG_EMODE = -4103, /* group/other writable and not allowed */
	SHG_ENLINK = -4104, /* file has more than one hard link */
	SHG_ECORRUPT = -4105, /* inconsistent data in the segment */
	SHG_ECONFLICT = -4106, /* compare-and-swap lost to another writer */
	SHG_EDEADOWNER = -4107, /* the owner of a resource is dead */
	SHG_EBUDGET = -4108, /* retired memory over budget: a reader stalls */
	SHG_ECAPACITY = -4109, /* segment capacity exhausted */
	SHG_ESLOTS = -4110, /* no free process/thread/root slot */
	SHG_EBADOFF = -4111, /* offset null, out of range or misaligned */
	SHG_ENESTED = -4112, /* call not allowed inside a read section */
	SHG_EBOOT = -4113, /* segment from another boot (recovered) */
	SHG_ESTUCK = -4114, /* a live process held a segment lock too long */
	SHG_ELAST = -4114,
};

/**
 * shg_strerror() - describe an error code.
 * @err: 0, a negative errno value or an SHG_E* code.
 *
 * Context: any. Return: a static string, never NULL.
 */
SHG_API const char *shg_strerror(int err);

/* -------------------------------------------------------------------------
 * Offsets.
 */

/*
 * struct shg_off - position of a block inside a segment; v == 0 is null.
 * A distinct struct so the compiler rejects mixing offsets and pointers.
 */
struct shg_off {
	uint64_t v;
};

#define SHG_OFF_NULL ((struct shg_off){ 0 })

static inline bool shg_off_is_null(struct shg_off o)
{
	return o.v == 0;
}

static inline bool shg_off_eq(struct shg_off a, struct shg_off b)
{
	return a.v == b.v;
}

/* -------------------------------------------------------------------------
 * Segments.
 */
struct shg_seg; /* per-process handle of a mapped segment */

enum shg_numa_policy {
	SHG_NUMA_LOCAL = 0, /* heap pages on the allocating thread's node */
	SHG_NUMA_INTERLEAVE = 1, /* heap pages interleaved over all nodes */
	SHG_NUMA_BIND = 2, /* heap pages bound to one node */
};

enum shg_flavor {
	SHG_FLAVOR_AUTO = 0, /* membarrier if the kernel has it, else fence */
	SHG_FLAVOR_FENCE = 1, /* full fence on read-lock; works everywhere */
	SHG_FLAVOR_MEMBARRIER = 2, /* compiler barrier on read-lock; writers
				    * issue membarrier(GLOBAL_EXPEDITED) */
};

/* Open flags. */
#define SHG_OPEN_ALLOW_GROUP 0x1u /* accept group-writable segments */
#define SHG_OPEN_NO_RECOVER 0x2u /* do not release dead slots on open */

/*
 * struct shg_opts - options for shg_seg_create() and shg_seg_open().
 * Zero-initialise, set ->size = sizeof(struct shg_opts); zero fields take
 * defaults. The leading size lets the struct grow without breaking ABI.
 */
struct shg_opts {
	size_t size; /* sizeof(struct shg_opts) */
	uint64_t capacity; /* create: max segment bytes (default 1 GiB) */
	uint32_t mode; /* create: file mode, set exactly (default 0600) */
	uint32_t flags; /* SHG_OPEN_* */
	uint32_t max_procs; /* create: process slots (default 256) */
	uint32_t max_threads; /* create: thread slots (default 1024) */
	uint32_t max_roots; /* create: root slots (default 1024) */
	int32_t numa_policy; /* create: enum shg_numa_policy */
	int32_t numa_node; /* create: node for SHG_NUMA_BIND */
	int32_t flavor; /* open/create: enum shg_flavor for this process */
	uint64_t retire_budget; /* create: max retired-unfreed bytes before
				 * writers get SHG_EBUDGET (default cap/8) */
};

/**
 * shg_seg_create() - create and map a new segment.
 * @name: "/name" (one leading slash, no other) for POSIX shm under /dev/shm,
 *        otherwise a file path.
 * @opts: options, or NULL for defaults.
 * @out:  receives the handle.
 *
 * Creates with O_CREAT|O_EXCL|O_NOFOLLOW and the exact mode (umask ignored).
 * Context: no read section held. Return: 0, -EEXIST, -ENOSPC, -EINVAL, ...
 */
SHG_API SHG_MUST_CHECK int shg_seg_create(const char *name,
					  const struct shg_opts *opts,
					  struct shg_seg **out);

/**
 * shg_seg_open() - map an existing segment; never creates one.
 *
 * Validates the file (regular, owner, mode, link count, size) and the header
 * (magic, version, layout hash, region table) before trusting any field.
 * Releases slots of dead processes unless SHG_OPEN_NO_RECOVER. Liveness
 * is an OFD lock on the file (fcntl F_OFD_SETLK): a file system without
 * them fails with -EINVAL or -ENOLCK.
 * Context: no read section held. Return: 0 or a negative code (SHG_EMAGIC,
 * SHG_EVERSION, SHG_ELAYOUT, SHG_ETRUNC, SHG_ETOOSMALL, SHG_ENOTREG,
 * SHG_EOWNER, SHG_EMODE, SHG_ENLINK, SHG_ECORRUPT, SHG_ESLOTS, SHG_ESTUCK
 * (taking over a dead process's slot waited 10 s for a stopped releaser),
 * -ELOOP, -ENOENT, ...).
 */
SHG_API SHG_MUST_CHECK int shg_seg_open(const char *name,
					const struct shg_opts *opts,
					struct shg_seg **out);

/**
 * shg_seg_close() - unregister this process and unmap.
 *
 * Context: no thread of this process may use @seg afterwards; threads
 * registered with it are unregistered. In a child forked after @seg was
 * opened, closing the inherited handle only unmaps it and frees the
 * child's memory: the parent's slots, holds and pins stay (the same holds
 * for shg_root_close() and shg_unpin() on inherited handles). Return: 0.
 */
SHG_API int shg_seg_close(struct shg_seg *seg);

/**
 * shg_seg_unlink() - remove a segment's name; mappings stay valid.
 * Return: 0 or -errno.
 */
SHG_API SHG_MUST_CHECK int shg_seg_unlink(const char *name);

/* Bytes of the segment: total capacity, and bytes backed by storage. */
SHG_API uint64_t shg_seg_capacity(const struct shg_seg *seg);
SHG_API uint64_t shg_seg_backed(const struct shg_seg *seg);

/* The flavor this process uses for read sections (never AUTO). */
SHG_API enum shg_flavor shg_seg_flavor(const struct shg_seg *seg);

/* -------------------------------------------------------------------------
 * Threads and read sections (RCU-style, across processes).
 */

/**
 * shg_thread_register() - give the calling thread a reader slot.
 *
 * Optional: the first shg_read_lock() or allocation registers implicitly.
 * Idempotent. The slot is released at thread exit or shg_thread_unregister.
 * Return: 0, SHG_ESLOTS.
 */
SHG_API SHG_MUST_CHECK int shg_thread_register(struct shg_seg *seg);

/**
 * shg_thread_unregister() - release the calling thread's slot.
 * Context: outside read sections. Seals the thread's retired blocks so
 * that other threads reclaim them. Return: 0, SHG_ENESTED.
 */
SHG_API int shg_thread_unregister(struct shg_seg *seg);

/**
 * shg_read_lock() - enter a read-side critical section (nestable).
 *
 * Everything reachable from an offset loaded inside the section stays
 * allocated until the matching outermost shg_read_unlock(). Writes only
 * the thread's own slot (its own cache line); never waits.
 * Ordering: loads in the section are ordered after the slot store (full
 * fence in the fence flavor; the writer's membarrier in the other).
 * Return: 0, or SHG_ESLOTS if implicit registration failed.
 */
SHG_API SHG_MUST_CHECK int shg_read_lock(struct shg_seg *seg);

/**
 * shg_read_unlock() - leave a read-side critical section.
 * Ordering: release; all loads of the section complete before it.
 */
SHG_API void shg_read_unlock(struct shg_seg *seg);

/*
 * Fast path: a per-(thread, segment) handle whose read lock/unlock inline
 * to a few instructions. Get it once per thread with shg_thread_get(); it
 * stays valid until the thread unregisters or exits, or the segment closes.
 * Only the calling thread may use it. The fields are private.
 */
struct shg_thread {
	uint64_t *slot_epoch; /* private: this thread's slot epoch word */
	const uint64_t *epoch; /* private: the segment's global epoch */
	uint32_t nest; /* private: read-section nesting depth */
	int32_t fence; /* private: nonzero for the fence flavor */
};

/**
 * shg_thread_get() - the calling thread's handle for @seg (registers).
 * Return: 0 and *@out, or SHG_ESLOTS.
 */
SHG_API SHG_MUST_CHECK int shg_thread_get(struct shg_seg *seg,
					  struct shg_thread **out);

/*
 * shg_thread_read_lock() - shg_read_lock() on a handle; cannot fail.
 * Ordering: the global epoch is loaded with acquire, stored to the own slot,
 * then a full fence (fence flavor) or a compiler barrier (membarrier
 * flavor: the reclaimer's membarrier() supplies the fence), so the
 * section's loads cannot move before the slot store becomes visible to a
 * reclaimer's scan.
 */
static inline void shg_thread_read_lock(struct shg_thread *t)
{
	if (t->nest++ == 0) {
		uint64_t e = __atomic_load_n(t->epoch, __ATOMIC_ACQUIRE);

		__atomic_store_n(t->slot_epoch, e, __ATOMIC_RELAXED);
		if (t->fence)
			__atomic_thread_fence(__ATOMIC_SEQ_CST);
		else
			__atomic_signal_fence(__ATOMIC_SEQ_CST);
	}
}

/*
 * shg_thread_read_unlock() - leave; release store of 0 to the own slot so
 * the section's loads complete before a reclaimer can see it quiescent.
 */
static inline void shg_thread_read_unlock(struct shg_thread *t)
{
	if (--t->nest == 0)
		__atomic_store_n(t->slot_epoch, 0, __ATOMIC_RELEASE);
}

/* Whether the calling thread is inside a read section of @seg. */
SHG_API bool shg_read_locked(struct shg_seg *seg);

/**
 * shg_synchronize() - wait for a grace period.
 *
 * Returns once every read section (in any process) that was running when
 * it was called has ended. Slots of dead processes are released on the
 * way. Context: outside read sections (else SHG_ENESTED). Return: 0,
 * SHG_ENESTED, or SHG_EBUDGET if a live reader stalls longer than
 * @timeout_ms (0 = wait forever).
 */
SHG_API SHG_MUST_CHECK int shg_synchronize(struct shg_seg *seg,
					   unsigned timeout_ms);

/* -------------------------------------------------------------------------
 * Allocation and deferred free.
 */

/**
 * shg_alloc() - allocate @size bytes (16-byte aligned) in the segment.
 * Context: any; registers the thread if needed. The block is private to
 * the caller until published. Return: 0, -EINVAL, SHG_ECAPACITY, -ENOSPC.
 */
SHG_API SHG_MUST_CHECK int shg_alloc(struct shg_seg *seg, size_t size,
				     struct shg_off *out);

/**
 * shg_free() - free a block at once. Only for blocks never published (no
 * reader can hold them); published blocks go through shg_retire().
 * Return: 0, SHG_EBADOFF (not an allocated block).
 */
SHG_API int shg_free(struct shg_seg *seg, struct shg_off off);

/**
 * shg_retire() - free a block after a grace period (deferred free).
 *
 * The block must already be unreachable for new readers. Its bytes count
 * against the retire budget until reclaimed. Retired lists live in the
 * segment: if this process dies, a survivor reclaims them. Never loses the
 * block: if no memory is left for bookkeeping it waits for a grace period
 * and frees at once. Return: 0, SHG_EBADOFF.
 */
SHG_API int shg_retire(struct shg_seg *seg, struct shg_off off);

/**
 * shg_reclaim() - free retired blocks whose grace period has passed.
 *
 * Writers call it on their own; callable explicitly. Never waits for
 * readers. Context: outside read sections. Return: bytes freed (>= 0).
 */
SHG_API int64_t shg_reclaim(struct shg_seg *seg);

/**
 * shg_budget_check() - whether a writer may add garbage.
 *
 * Reclaims, and if retired-unfreed bytes still exceed the budget, waits up
 * to @timeout_ms for stalled readers. Return: 0 or SHG_EBUDGET; then
 * shg_stalled_reader() names the reader that holds memory back.
 */
SHG_API SHG_MUST_CHECK int shg_budget_check(struct shg_seg *seg,
					    unsigned timeout_ms);

/*
 * shg_stalled_reader() - the live reader blocking reclamation, if any.
 * Return: true and fills @pid and @bytes (retired bytes it holds back).
 */
SHG_API bool shg_stalled_reader(struct shg_seg *seg, pid_t *pid,
				uint64_t *bytes);

/**
 * shg_ptr() - pointer for an offset, bounds-checked.
 * @len: bytes the caller will access from the offset.
 * Return: a pointer valid in this process, or NULL when @off is null,
 * misaligned (8 bytes) or [off, off+len) is not inside the backed heap.
 */
SHG_API void *shg_ptr(struct shg_seg *seg, struct shg_off off, size_t len);

/* Offset of a pointer into this segment's mapping (SHG_OFF_NULL if not). */
SHG_API struct shg_off shg_off_of(struct shg_seg *seg, const void *p);

/* Usable size of an allocated block (0 if @off is not a block start). */
SHG_API size_t shg_block_size(struct shg_seg *seg, struct shg_off off);

/* -------------------------------------------------------------------------
 * Root table.
 */
struct shg_root; /* per-process handle on a named root slot */

#define SHG_ROOT_NAME_MAX 63 /* bytes, excluding the terminating NUL */

/**
 * shg_root_create() - create a named root (value null) and open it.
 * Return: 0, -EEXIST, -ENAMETOOLONG, -EINVAL, SHG_ESLOTS.
 */
SHG_API SHG_MUST_CHECK int
shg_root_create(struct shg_seg *seg, const char *name, struct shg_root **out);

/**
 * shg_root_open() - open an existing root; counts as a hold.
 * Return: 0, -ENOENT (absent or removed), SHG_ESLOTS.
 */
SHG_API SHG_MUST_CHECK int shg_root_open(struct shg_seg *seg, const char *name,
					 struct shg_root **out);

/* shg_root_close() - drop the hold; frees the handle. Return: 0. */
SHG_API int shg_root_close(struct shg_root *root);

/**
 * shg_root_remove() - remove a root by name.
 *
 * New opens fail at once; the slot and its value are released when the
 * last holder (in any process, dead ones included) lets go. The value
 * block is handed to the drop hook (default: shg_retire()).
 * Return: 0, -ENOENT.
 */
SHG_API SHG_MUST_CHECK int shg_root_remove(struct shg_seg *seg,
					   const char *name);

/**
 * shg_root_load() - the root's current value.
 * Context: inside a read section (or the value must be otherwise held).
 * Ordering: acquire; the block's contents as published are visible.
 */
SHG_API struct shg_off shg_root_load(const struct shg_root *root);

/**
 * shg_root_cas() - publish @desired if the value is still @expected.
 *
 * Ordering: release on success (the block's contents are visible to any
 * reader that loads the new value); the generation is bumped after.
 * Return: 0, or SHG_ECONFLICT (the value changed; nothing published),
 * -ENOENT if the root was removed.
 */
SHG_API SHG_MUST_CHECK int shg_root_cas(struct shg_root *root,
					struct shg_off expected,
					struct shg_off desired);

/* Number of successful publishes on this root so far. */
SHG_API uint64_t shg_root_generation(const struct shg_root *root);

/* Root's name (NUL-terminated, owned by the handle). */
SHG_API const char *shg_root_name(const struct shg_root *root);

/*
 * struct shg_root_info - one root slot, as listed by shg_root_list().
 */
struct shg_root_info {
	char name[SHG_ROOT_NAME_MAX + 1];
	uint32_t slot; /* index in the root table */
	uint32_t holds; /* open handles over all processes */
	bool removed; /* removed, waiting for its last holder */
	struct shg_off value; /* current value */
	uint64_t generation; /* publishes so far */
	uint64_t created_ns; /* CLOCK_REALTIME at creation */
	uint64_t last_publish_ns; /* CLOCK_REALTIME of the last publish */
};

/**
 * shg_root_list() - snapshot of the root table.
 * Fills up to @max entries; Return: the number of roots in use (may be
 * larger than @max) or a negative code.
 */
SHG_API int shg_root_list(struct shg_seg *seg, struct shg_root_info *out,
			  unsigned max);

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
 * Safe on a live segment (reads only; concurrent writers may make it
 * report a transient problem, re-run to confirm). Never reads outside the
 * mapping. Return: the number of problems (0 = sound) or a negative code.
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
 * read and write. Context: outside read sections. Return: 0, even when
 * the sweep could not finish (then @rep->sweep_err says why); SHG_ENESTED
 * inside a read section; -EINVAL.
 */
SHG_API SHG_MUST_CHECK int shg_recover(struct shg_seg *seg,
				       struct shg_recover_report *rep);

#include "graph.h"

/* -------------------------------------------------------------------------
 * Snapshots (lib/snapshot.c): one root's graph as a portable file --
 * little-endian, nodes numbered in the file (no offsets), versioned,
 * CRC32C-checked per section and as a whole, carrying the type
 * definitions it uses. Format: docs/SNAPSHOT.md.
 */

/* shg_import() flag: replace the graph of an existing root (or create it). */
#define SHG_IMPORT_REPLACE 0x1u

/**
 * shg_export() - write the current version of root @root's graph to @fd.
 *
 * The version is pinned for the whole export, so the file is one
 * consistent version however many commits happen meanwhile. The output is
 * canonical: equal graphs give byte-identical files, in any segment. A
 * root that never committed exports as an empty graph. A node field that
 * references a root that no longer exists is written as a null reference.
 * Context: any (no read section needed). Return: 0; -ENOENT (no such
 * root, or a map/vector value references a removed root); SHG_ECORRUPT or
 * SHG_EBADOFF (the graph is damaged); -ENOMEM; -errno of write().
 */
SHG_API SHG_MUST_CHECK int shg_export(struct shg_seg *seg, const char *root,
				      int fd);

/**
 * shg_import() - read a snapshot from @fd (to its end) into root @root.
 *
 * Reads the whole file, then shg_import_mem(). Return: as shg_import_mem,
 * or -errno of read(), -EFBIG (larger than the segment's capacity).
 */
SHG_API SHG_MUST_CHECK int shg_import(struct shg_seg *seg, const char *root,
				      int fd, unsigned flags);

/**
 * shg_import_mem() - build the graph of snapshot @buf (@len bytes) as the
 * new version of root @root.
 * @flags: 0 (the root must not exist: it is created) or
 *         SHG_IMPORT_REPLACE (an existing root's graph is replaced in one
 *         commit; a missing root is created).
 *
 * The whole file is validated before the segment is touched; then the
 * types it carries are registered (idempotent) and the graph is built in
 * one transaction that commits whole or not at all. On any error nothing
 * is published and nothing leaks (a root the import created is removed);
 * only types registered before a late failure remain. Root references
 * name roots by name: those roots must exist (a reference to the exported
 * root itself points to @root).
 * Context: outside read sections.
 * Return: 0; SHG_ETOOSMALL (shorter than a header); SHG_EMAGIC (not a
 * snapshot); SHG_EVERSION (unknown format version); SHG_ETRUNC (shorter
 * than its header says); -EBADMSG (a checksum does not match);
 * SHG_ECORRUPT (inconsistent content: bad lengths, counts, kinds, names,
 * node or type indexes, forward references, unsorted or duplicate keys,
 * unreachable nodes, trailing bytes); -EEXIST (@root exists without
 * SHG_IMPORT_REPLACE, or a type of the same name has other fields);
 * -ENOENT (a referenced root does not exist); -EFBIG; -EINVAL;
 * SHG_ENESTED; SHG_ECAPACITY, -ENOSPC, -ENOMEM, SHG_ECONFLICT.
 */
SHG_API SHG_MUST_CHECK int shg_import_mem(struct shg_seg *seg, const char *root,
					  const void *buf, size_t len,
					  unsigned flags);

/**
 * shg_version_pinned() - find version @seq of @root among the pins of
 * every process.
 *
 * An older version stays allocated only while some pin holds it, and this
 * call does not take one: read the version (nodes are validated, so a
 * version freed meanwhile yields errors or garbage, never a crash), then
 * call shg_version_pinned() again and trust what was read only if it
 * still returns the same offset (no pin of a non-current version can be
 * created anew, so one still held at the end was held throughout).
 * Context: any. Return: 0 and *@out (the version record), -ENOENT (no
 * pin holds that version), -EINVAL.
 */
SHG_API SHG_MUST_CHECK int
shg_version_pinned(struct shg_root *root, uint64_t seq, struct shg_off *out);

#ifdef __cplusplus
}
#endif
#endif /* SHMGRAPH_H */
