/* SPDX-License-Identifier: MIT */
/*
 * shmgraph/segment.h - segments (create, open, close, unlink), threads and
 * read sections across processes (epochs), grace periods, the allocator
 * and deferred free. Include <shmgraph.h> rather than this file.
 */
#ifndef SHMGRAPH_SEGMENT_H
#define SHMGRAPH_SEGMENT_H

#include <shmgraph/base.h>

#ifdef __cplusplus
extern "C" {
#endif

/* -------------------------------------------------------------------------
 * Segments.
 */
struct shg_seg; /* per-process handle of a mapped segment */

enum shg_numa_policy {
	SHG_NUMA_LOCAL = 0, /* heap pages on the allocating thread's node */
	SHG_NUMA_INTERLEAVE = 1, /* heap pages interleaved over all nodes */
	SHG_NUMA_BIND = 2, /* heap pages bound to one node */
};

/*
 * Read-section flavor of a process (shg_opts.flavor). Membarrier makes a
 * read lock a few ns cheaper, but while any process of the segment reads
 * with it, every reclaim and grace period calls membarrier(); on the 2-core
 * VM writers committed 25-28 % more with every process on FENCE (2x with no
 * reader running), and readers were even with a writer running. Use FENCE
 * in every process for segments that are written steadily; AUTO for
 * read-mostly ones (bench/README.md, "Read-section flavor").
 */
enum shg_flavor {
	SHG_FLAVOR_AUTO = 0, /* membarrier if the kernel has it, else fence */
	SHG_FLAVOR_FENCE = 1, /* full fence on read-lock; works everywhere */
	SHG_FLAVOR_MEMBARRIER = 2, /* compiler barrier on read-lock; writers
				    * issue membarrier(GLOBAL_EXPEDITED) */
};

/* Open flags. */
#define SHG_OPEN_ALLOW_GROUP 0x1u /* accept group-writable segments */
#define SHG_OPEN_NO_RECOVER 0x2u /* do not release dead slots on open */
#define SHG_OPEN_HUGE 0x4u /* back the segment with huge pages (below) */

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
 * With SHG_OPEN_HUGE the capacity may be rounded up to the huge page size
 * (see "Huge pages" below).
 * Context: no read section held. Return: 0, -EEXIST, -ENOSPC, -EINVAL,
 * SHG_ENOHUGE, ...
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
 * SHG_EOWNER, SHG_EMODE, SHG_ENLINK, SHG_ECORRUPT, SHG_ESLOTS, SHG_ENOHUGE
 * (SHG_OPEN_HUGE where the file system gives no huge pages), SHG_ESTUCK
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

/* The segment's format version (the header's; this library opens only
 * its own, see SHG_EVERSION). */
SHG_API uint32_t shg_seg_format(const struct shg_seg *seg);

/* The flavor this process uses for read sections (never AUTO). */
SHG_API enum shg_flavor shg_seg_flavor(const struct shg_seg *seg);

/* -------------------------------------------------------------------------
 * Huge pages.
 *
 * SHG_OPEN_HUGE (create or open) asks for a segment whose pages are huge
 * (2 MiB on x86-64), so that a lookup's random accesses over a large heap
 * miss the TLB less. What a segment gets depends on the file system of its
 * file (POSIX shm names live on the /dev/shm tmpfs mount):
 *
 * - hugetlbfs: every page is huge. The capacity is rounded up to the huge
 *   page size; huge pages are taken from the pool as the heap is backed, so
 *   an empty pool gives -ENOSPC, never SIGBUS.
 * - tmpfs mounted with huge=always or huge=within_size (or any tmpfs when
 *   /sys/kernel/mm/transparent_hugepage/shmem_enabled reads [force]): the
 *   kernel allocates huge pages as the heap is backed, for every process;
 *   SHG_OPEN_HUGE rounds the capacity up to the huge page size.
 * - any other tmpfs mount (huge=never, the default, and huge=advise): the
 *   process opened with SHG_OPEN_HUGE collapses backed ranges into huge
 *   pages (MADV_COLLAPSE, Linux 6.1): all of the backed heap at open, and
 *   each range it backs as the heap grows. A segment created with
 *   SHG_OPEN_HUGE records it, and every process that opens it collapses
 *   likewise without asking (where its host allows it; an opener that did
 *   not ask is never refused). Collapse is best effort: without free huge
 *   pages the segment works in small pages.
 * - shmem_enabled [deny], other file systems, or kernels without
 *   MADV_COLLAPSE on a huge=never/advise mount: SHG_OPEN_HUGE fails with
 *   SHG_ENOHUGE (a create removes the file it made).
 *
 * Every process maps a segment at a huge-page-aligned address, so that huge
 * pages, whoever made them, are mapped whole (one TLB entry each).
 * shg_seg_huge() says which case applies and how many bytes are mapped by
 * huge pages, whether or not the segment was opened with SHG_OPEN_HUGE.
 */
enum shg_huge_backing {
	SHG_HUGE_NONE = 0, /* the file system gives no huge pages */
	SHG_HUGE_TMPFS = 1, /* tmpfs allocates huge pages itself */
	SHG_HUGE_COLLAPSE = 2, /* tmpfs; SHG_OPEN_HUGE collapses ranges */
	SHG_HUGE_HUGETLBFS = 3, /* hugetlbfs: every page huge */
};

/* struct shg_huge_info - huge-page state of a mapped segment. */
struct shg_huge_info {
	size_t size; /* sizeof(struct shg_huge_info), set by the caller */
	int32_t backing; /* enum shg_huge_backing */
	uint32_t requested; /* 1: huge pages asked for: this handle was
			     * opened with SHG_OPEN_HUGE, or the segment was
			     * created with it (every opener then collapses
			     * what it backs, where the host allows it) */
	uint64_t page_size; /* huge page size of the backing (0: none) */
	uint64_t backed; /* bytes of the segment backed by storage */
	uint64_t huge_bytes; /* of those, bytes this process maps huge */
	char policy[32]; /* what decided @backing, e.g. "huge=within_size",
			  * "huge=never", "shmem_enabled=deny", "hugetlbfs" */
};

/**
 * shg_seg_huge() - whether a segment is backed by huge pages.
 * @out: ->size set by the caller.
 *
 * Reads one byte in every huge page of the backed range (mapping those
 * pages into this process; writes nothing), then sums the huge-page fields
 * of /proc/self/smaps (ShmemPmdMapped, FilePmdMapped, *_Hugetlb) over the
 * mapping. Reads /proc/self/mountinfo and sysfs. Context: any, outside or
 * inside a read section. Return: 0, -EINVAL, or -errno from /proc.
 */
SHG_API SHG_MUST_CHECK int shg_seg_huge(struct shg_seg *seg,
					struct shg_huge_info *out);

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

/* Whether the calling thread is inside a read section of @seg. */
SHG_API bool shg_read_locked(struct shg_seg *seg);

/**
 * shg_synchronize() - wait for a grace period.
 *
 * Returns once every read section (in any process) that could have read
 * a value from before the call has ended. A section that was only
 * entering at the call (its epoch not yet published) may still run, but it
 * sees every store made before the call, so what the caller unlinked
 * before calling is unreachable to it. Slots of dead processes are
 * released on the way. Retired memory is not necessarily reclaimed by the
 * time it returns while other readers run. Context: outside read sections (else SHG_ENESTED). Return: 0,
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

#ifdef __cplusplus
}
#endif
#endif /* SHMGRAPH_SEGMENT_H */
