/* SPDX-License-Identifier: MIT */
/*
 * Internal interfaces of the shm/ layer: the per-process segment handle,
 * the per-(thread, segment) context, and the functions the modules call
 * across files (prefix shg__). Nothing here is exported from the library.
 *
 * Modules:
 *   platform.c  process tokens, boot id, clocks, membarrier, NUMA (+ sim)
 *   segment.c   create/open/validate/map/close/unlink, growth, offsets,
 *               robust mutexes, layout hash
 *   registry.c  process and thread slots, liveness, TLS contexts,
 *               releasing dead owners' slots
 *   epoch.c     read sections, grace periods, retire batches, reclaim;
 *               includes epoch_budget.c (retire budget, reader list) and
 *               epoch_recover.c (adopting dead threads' batches)
 *   alloc.c     size classes, per-thread spans, remote frees; includes
 *               alloc_check.c (statistics, checker, walks for the sweep)
 *   span.c      per-node arenas of free extents (spans), heap growth,
 *               large blocks
 *   roots.c     the root table
 *   check.c     shg_check / shg_recover orchestration, leak sweep
 *   held.c      the held list (retired nodes a pinned version still needs)
 *   pinsnap.c   interval snapshots of the pins (search)
 *   atomic.h    relaxed/acquire/release helpers for plain shared words,
 *               the crash-ordering barrier
 *   util.h      offset set, offset map, growable arrays (header only)
 *   limbo_check.c  checks of the retire FIFO and the held list
 *   lock.c      robust segment locks, take-over of unrepairable ones
 *   error.c     shg_strerror
 *
 * upper.h is the only way to the layer above (lib/): an operations table
 * handed down at create/open. Nothing in shm/ includes a lib/ header.
 */
#ifndef SHG_INTERNAL_H
#define SHG_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <urcu/list.h>

#include "crash.h"
#include "layout.h"
#include <shmgraph.h>

#define SHG_HIDDEN __attribute__((visibility("hidden")))

#include "upper.h"
#define shg_likely(x) __builtin_expect(!!(x), 1)
#define shg_unlikely(x) __builtin_expect(!!(x), 0)

/*
 * Assertion of process-local internal invariants (never for bad input or
 * anything read from the segment: that returns an error). Checked in debug
 * builds (no NDEBUG), compiled away otherwise.
 */
#include <assert.h>
#define SHG_ASSERT(x) assert(x)

#include "atomic.h"

/*
 * SHG_CORRUPT() - the one reporting point for corrupt segment data: records
 * where it was found (this thread's last, shg__corrupt_where(); printed to
 * stderr when SHG_DEBUG_CORRUPT=1) and evaluates to SHG_ECORRUPT.
 */
#define SHG_CORRUPT() (shg__corrupt_at(__FILE__, __LINE__), SHG_ECORRUPT)
void shg__corrupt_at(const char *file, int line)
	__attribute__((visibility("hidden"), cold));
bool shg__corrupt_where(const char **file, int *line)
	__attribute__((visibility("hidden")));

/* -------------------------------------------------------------------------
 * Per-process segment handle. Geometry fields are copies validated at open;
 * code uses these, never the header's fields, for bounds.
 */
/* What the file system of a segment's file gives in huge pages. */
struct shg__huge {
	int kind; /* enum shg_huge_backing */
	uint64_t page_size; /* huge page size (0: none) */
	char policy[32]; /* what decided @kind, for people */
};

struct shg_seg {
	uint8_t *base; /* start of this process's mapping */
	struct shg_hdr *hdr; /* == base */
	uint64_t capacity; /* validated mapping size */
	int fd; /* open descriptor, kept for growth */
	bool is_shm; /* POSIX shm name (else a file path) */
	bool huge_req; /* opened with SHG_OPEN_HUGE */
	struct shg__huge huge; /* the file system's huge pages (probed at
				* open; tmpfs details only if huge_req) */
	char *name; /* as given to open/create */

	/* validated geometry */
	uint32_t max_procs, max_threads, max_roots, max_holds;
	uint32_t nspans; /* span descriptors / heap spans */
	uint32_t nodes; /* arenas in use */
	struct shg_pslot *procs;
	struct shg_tslot *threads;
	struct shg_rslot *roots;
	struct shg_hold *holds;
	struct shg_arena *arenas;
	struct shg_span *spans;
	uint64_t heap_off; /* offset of span 0 */

	/* this process */
	uint32_t pslot; /* our process slot index */
	uint64_t token; /* our process token */
	enum shg_flavor flavor; /* FENCE or MEMBARRIER, never AUTO */
	bool closing; /* shg_seg_close in progress */
	uint64_t id; /* process-unique id of this handle */
	uint64_t fork_gen; /* shg__fork_gen when opened */
	struct cds_list_head open_link; /* in registry.c's list of handles */

	/* thread contexts of this process (process-local) */
	pthread_mutex_t ctx_lock; /* guards ctxs */
	struct cds_list_head ctxs; /* struct shg__tctx.link */

	/* next reclaim pass allowed to probe blockers' liveness (MONOTONIC) */
	_Atomic uint64_t next_probe_ns;

	/* last stalled reader seen by a budget check */
	pid_t stalled_pid; /* 0 = none */
	uint64_t stalled_bytes;

	/* the upper layer's operations (NULL: raw blocks only); set before
	 * the handle is used, never changed after */
	const struct shg__upper_ops *ops;

	/* called for a removed root's value when its last holder lets go
	 * (default: shg_retire); ops->root_drop, or a test's hook */
	int (*root_drop)(struct shg_seg *seg, struct shg_off value, void *arg);
	void *root_drop_arg;

	/* the upper layer's hash seed, derived from hdr->uuid on first use
	 * (0: not yet); relaxed atomic, every thread stores the same value */
	_Atomic uint64_t hash_seed;
};

/* The upper layer's pin generation (0: no upper layer or no pins). */
static inline uint64_t shg__upper_pins_gen(struct shg_seg *seg)
{
	return seg->ops && seg->ops->pins_gen ? seg->ops->pins_gen(seg) : 0;
}

/*
 * Per-(thread, segment) context; process-local memory, found through TLS.
 * @hot must stay first: shg_thread_get() hands out &ctx->hot.
 */
struct shg__tctx {
	struct shg_thread hot; /* inline read-lock fast path */
	struct shg_seg *seg; /* segment this context belongs to */
	struct shg_tslot *slot; /* our thread slot */
	uint32_t idx; /* our thread slot index */
	uint32_t node; /* NUMA node (real or simulated) */
	struct cds_list_head link; /* in seg->ctxs (under seg->ctx_lock) */
	struct shg__tctx *tls_next; /* this thread's list of contexts */
	uint64_t seg_id; /* seg->id at registration (detects reuse) */
	_Atomic(struct shg_seg *) live_seg; /* seg, or NULL once released */
	/* allocator thread cache: per class, the current span (index + 1)
	 * and a list of other owned spans (index + 1, linked by span.next) */
	uint32_t cur[SHG_NUM_CLASSES];
	uint32_t owned[SHG_NUM_CLASSES];
	uint32_t owned_count[SHG_NUM_CLASSES];
	/* a staged commit (epoch_stage.c): last chain batch, staged bytes in
	 * the open batch, a published stage whose chain is not linked yet */
	uint64_t stage_tail;
	uint64_t stage_bytes;
	bool stage_unlinked;
	/* membarrier-flavor segments: no pass after a seal before this
	 * (CLOCK_MONOTONIC ns; epoch.c, reclaim_after_seal) */
	uint64_t next_seal_pass_ns;
};

/* ---- platform.c -------------------------------------------------------- */
/* A fresh attachment token: random, never 0 or SHG_TOKEN_MIXED. */
SHG_HIDDEN uint64_t shg__new_token(void);
/* OFD locks on one byte of @fd: take (0, -EAGAIN if held through another
 * open file description, -errno), drop, and probe (1 held through another
 * description, 0 not, -errno). */
SHG_HIDDEN int shg__ofd_trylock(int fd, uint64_t off);
SHG_HIDDEN int shg__ofd_unlock(int fd, uint64_t off);
SHG_HIDDEN int shg__ofd_probe(int fd, uint64_t off);
SHG_HIDDEN uint64_t shg__pidns_id(void); /* display only; 0 = unknown */
SHG_HIDDEN int shg__boot_id(uint8_t out[16]);
SHG_HIDDEN uint64_t shg__now_ns(void); /* CLOCK_MONOTONIC */
SHG_HIDDEN uint64_t shg__realtime_ns(void); /* CLOCK_REALTIME */
SHG_HIDDEN pid_t shg__gettid(void);
SHG_HIDDEN bool shg__membarrier_supported(void);
SHG_HIDDEN int shg__membarrier_register(void);
SHG_HIDDEN int shg__membarrier(void);
SHG_HIDDEN unsigned shg__numa_nodes(void); /* >= 1; SHG_NUMA_SIM=N */
SHG_HIDDEN bool shg__numa_simulated(void);
SHG_HIDDEN unsigned shg__numa_node_self(void);
SHG_HIDDEN int shg__numa_place(void *addr, size_t len, int policy, int node);
SHG_HIDDEN void shg__random_bytes(uint8_t *buf, size_t len);
/* Probe the file system of @fd; tmpfs mount options and sysfs only when
 * @thp (reads /proc/self/mountinfo). Return: 0 or -errno. */
SHG_HIDDEN int shg__huge_probe(int fd, bool thp, struct shg__huge *h);
/* madvise(MADV_COLLAPSE) of a mapped range; 0 or -errno. */
SHG_HIDDEN int shg__huge_collapse(void *addr, size_t len);
/* Bytes of the mappings inside [base, base + len) mapped by huge pages in
 * this process (/proc/self/smaps). Return: 0 or -errno. */
SHG_HIDDEN int shg__huge_mapped(const void *base, uint64_t len, uint64_t *out);

/* ---- segment.c --------------------------------------------------------- */
/* Layout hash of this build's shm/ structs folded with @upper_rules
 * (shg__upper_ops.rules); shg__seg_layout_hash uses the handle's. */
SHG_HIDDEN uint64_t shg__layout_hash(uint32_t upper_rules);
SHG_HIDDEN uint64_t shg__seg_layout_hash(const struct shg_seg *seg);
/* Make sure heap bytes [0, heap_bytes) are backed; -ENOSPC, ECAPACITY. */
SHG_HIDDEN int shg__ensure_backed(struct shg_seg *seg, uint64_t heap_bytes);
/* ---- lock.c ------------------------------------------------------------ */
/* Robust process-shared mutex; on EOWNERDEAD runs @repair then marks the
 * mutex consistent. A held lock word while no other live participant holds
 * or is taking any segment lock (word from another boot, forged) is taken
 * over as if its owner died. Returns 0, -ENOTRECOVERABLE, or SHG_ESTUCK (a
 * live owner held it for longer than 10 s). */
SHG_HIDDEN int shg__mutex_init(pthread_mutex_t *m);
SHG_HIDDEN int shg__lock(struct shg_seg *seg, pthread_mutex_t *m,
			 void (*repair)(struct shg_seg *seg));
SHG_HIDDEN void shg__unlock(struct shg_seg *seg, pthread_mutex_t *m);
/* Whether a live participant other than the calling thread holds or is
 * taking a segment lock of @seg (take-over is then refused). */
SHG_HIDDEN bool shg__lock_others_active(struct shg_seg *seg);
/* One take-over attempt on @m (lock_slow's, after each slice): true if
 * the word was held by nobody alive and is now "owner died". @filter:
 * step 1's early check (false only in tests, to exercise steps 2-3). */
SHG_HIDDEN bool shg__lock_take_over(struct shg_seg *seg, pthread_mutex_t *m,
				    bool filter);
extern _Atomic uint64_t shg__lock_restores, shg__lock_unlock_retries;

/* Offsets: bounds-checked conversion (NULL when bad) and trusted ones. */
static inline bool shg__off_ok(const struct shg_seg *seg, uint64_t off,
			       uint64_t len, uint64_t align)
{
	uint64_t backed =
		atomic_load_explicit(&seg->hdr->backed, memory_order_acquire);

	if (backed > seg->capacity)
		backed = seg->capacity;
	return off >= seg->heap_off && (off & (align - 1)) == 0 &&
	       len <= backed && off <= backed - len;
}

static inline void *shg__at(const struct shg_seg *seg, uint64_t off)
{
	return seg->base + off;
}

static inline uint64_t shg__off(const struct shg_seg *seg, const void *p)
{
	return (uint64_t)((const uint8_t *)p - seg->base);
}

/* ---- registry.c -------------------------------------------------------- */
extern _Atomic uint64_t shg__fork_gen;
/* Whether attachment token @tok is alive: its process slot's OFD lock is
 * held (never "dead" from an I/O error). */
SHG_HIDDEN bool shg__token_alive(struct shg_seg *seg, uint64_t tok);
/* Whether process slot @p is alive with token @tok. */
SHG_HIDDEN bool shg__pslot_alive(struct shg_seg *seg, uint32_t p, uint64_t tok);
/* Whether @seg was opened by this process (false: inherited across fork;
 * such a handle may only be closed, which leaves shared state alone). */
static inline bool shg__seg_own(const struct shg_seg *seg)
{
	return seg->fork_gen ==
	       atomic_load_explicit(&shg__fork_gen, memory_order_relaxed);
}
#define SHG_TLS_IE __attribute__((tls_model("initial-exec")))
/* This thread's contexts, most recently used first. */
extern __thread struct shg__tctx *shg__tls_head SHG_TLS_IE;

/* Fast lookup of the calling thread's context for @seg (NULL: slow path). */
static inline struct shg__tctx *shg__tctx_fast(struct shg_seg *seg)
{
	struct shg__tctx *c = shg__tls_head;

	if (shg_likely(c && c->seg == seg && c->seg_id == seg->id &&
		       atomic_load_explicit(&c->live_seg,
					    memory_order_relaxed) == seg))
		return c;
	return NULL;
}
/* Claim a process slot; with @take_dead, take over a dead process's
 * slot when none is free. Return 0, SHG_ESLOTS, -errno. */
SHG_HIDDEN int shg__proc_attach(struct shg_seg *seg, bool take_dead);
SHG_HIDDEN void shg__proc_detach(struct shg_seg *seg);
/* Forget @seg in the list of open handles (before it is freed). */
SHG_HIDDEN void shg__open_list_del(struct shg_seg *seg);
/* The calling thread's context for @seg, registering it if needed. */
SHG_HIDDEN int shg__tctx_get(struct shg_seg *seg, struct shg__tctx **out);
/* Existing context or NULL (never registers). */
SHG_HIDDEN struct shg__tctx *shg__tctx_peek(struct shg_seg *seg);
SHG_HIDDEN bool shg__tslot_alive(struct shg_seg *seg, uint32_t idx);
/* Release every slot whose owner is dead; fills @rep if not NULL. */
SHG_HIDDEN int shg__release_dead(struct shg_seg *seg,
				 struct shg_recover_report *rep);
SHG_HIDDEN int shg__registry_check(struct shg_seg *seg, shg_problem_fn fn,
				   void *arg, struct shg_check_report *rep);

/* ---- epoch.c ----------------------------------------------------------- */
/* Seal a dead (or exiting) thread's open batch and finish its reclaiming
 * batch; called with the slot's recover_lock held (or by the owner). */
SHG_HIDDEN void shg__limbo_adopt(struct shg_seg *seg, uint32_t tidx,
				 struct shg_recover_report *rep);
/*
 * A reclaim pass by a thread that is leaving (its open batch already
 * sealed): frees what is due now, its own last batch included when no
 * reader is in a section, so a short-lived process leaves nothing that
 * waits for a later writer or a recover. Never waits.
 */
SHG_HIDDEN void shg__exit_reclaim(struct shg_seg *seg, struct shg__tctx *ctx);
SHG_HIDDEN int shg__limbo_check(struct shg_seg *seg, shg_problem_fn fn,
				void *arg, struct shg_check_report *rep);
/* Calls @fn for every retired block and every batch block (for sweeps). */
SHG_HIDDEN void shg__limbo_walk(struct shg_seg *seg,
				void (*fn)(void *arg, uint64_t off), void *arg);
/* What shg__limbo_confirmed compares: the FIFO head's tag (UINT64_MAX:
 * empty or unknown) and the held list's unlink count. */
struct shg__limbo_mark {
	uint64_t head_tag;
	uint64_t held_unlinks;
};
/* Tokens of shg__limbo_walk_retired (low 2 bits; FIFO: tag << 2). */
enum { SHG__RT_OPEN = 1, SHG__RT_HELD = 2, SHG__RT_FIFO = 3 };
SHG_HIDDEN void shg__limbo_mark(struct shg_seg *seg, struct shg__limbo_mark *m);
/* Retired entries (no staged, no reclaiming ones) for shg_check, each
 * with a token; shg__limbo_confirmed(@then, @now, token) says whether the
 * entry was still unfreed at @now if @then was read before the walk. */
SHG_HIDDEN void shg__limbo_walk_retired(struct shg_seg *seg,
					void (*fn)(void *arg, uint64_t off,
						   uint64_t token),
					void *arg);
SHG_HIDDEN bool shg__limbo_confirmed(const struct shg__limbo_mark *then,
				     const struct shg__limbo_mark *now,
				     uint64_t token);
SHG_HIDDEN void shg__limbo_repair(struct shg_seg *seg);
/*
 * Interval-based reclamation: retire graph node @off that died at sequence
 * @death (> 0). After its grace period it is freed unless a pin of its
 * graph has a sequence in [node birth, @death); then it is held until that
 * pin goes. shg_retire() is the same with death 0 (no interval check).
 */
SHG_HIDDEN int shg__retire_with_death(struct shg_seg *seg, uint64_t off,
				      uint64_t death);
/* Bytes held by pins (retired, grace over, interval still pinned). */
SHG_HIDDEN uint64_t shg__held_bytes(struct shg_seg *seg);
/* Retired-unfreed bytes: sealed batches plus every open batch (relaxed). */
SHG_HIDDEN uint64_t shg__retired_total(struct shg_seg *seg);

/* ---- alloc.c / span.c -------------------------------------------------- */
SHG_HIDDEN unsigned shg__size_class(size_t size); /* SHG_NUM_CLASSES: large */
SHG_HIDDEN uint32_t shg__class_size(unsigned cls);
/* Free a block now (after its grace period), from any thread. */
SHG_HIDDEN void shg__free_now(struct shg_seg *seg, struct shg__tctx *ctx,
			      uint64_t off);
/* Give up the spans a thread slot owns (exit or death). */
SHG_HIDDEN uint32_t shg__alloc_abandon(struct shg_seg *seg, uint32_t tidx,
				       struct shg__tctx *ctx);
SHG_HIDDEN int shg__alloc_check(struct shg_seg *seg, shg_problem_fn fn,
				void *arg, struct shg_check_report *rep);
/* Every allocated block: @fn(arg, off, size). Quiescent use only. */
SHG_HIDDEN int
shg__alloc_walk(struct shg_seg *seg,
		void (*fn)(void *arg, uint64_t off, uint64_t size), void *arg);
SHG_HIDDEN void shg__arena_repair(struct shg_seg *seg);
/* Every arena lock in node order, for shg_check (see span.c's lock
 * order): returns how many were taken (all, unless one is unusable);
 * release them with shg__arenas_unlock(seg, that count). */
SHG_HIDDEN unsigned shg__arenas_lock_all(struct shg_seg *seg);
SHG_HIDDEN void shg__arenas_unlock(struct shg_seg *seg, unsigned n);
/* The live leak sweep's candidates: allocated blocks of SHG_OWNER_SWEEP
 * spans and dead-owner large blocks (@blk); SHG_OWNER_SWEEP spans (@span). */
SHG_HIDDEN int
shg__alloc_walk_sweepable(struct shg_seg *seg,
			  void (*blk)(void *arg, uint64_t off, uint64_t size),
			  void (*span)(void *arg, uint32_t idx), void *arg);
/* Free @off if still sweepable (large: owner_token == @large_token). */
SHG_HIDDEN int shg__alloc_sweep_free(struct shg_seg *seg, struct shg__tctx *ctx,
				     uint64_t off, uint64_t large_token);
SHG_HIDDEN uint64_t shg__alloc_owner_token(struct shg_seg *seg, uint64_t off);
/* span.c: extents */
SHG_HIDDEN int shg__span_alloc(struct shg_seg *seg, unsigned node,
			       uint32_t count, uint64_t word_bits,
			       uint32_t *idx);
SHG_HIDDEN void shg__span_free(struct shg_seg *seg, uint32_t idx);
/* span.c: a new SMALL span of class @cls owned by thread slot @tidx, its
 * fields set under the arena lock (shg__span_alloc takes LARGE only). */
SHG_HIDDEN int shg__span_alloc_small(struct shg_seg *seg, unsigned node,
				     unsigned cls, uint32_t tidx,
				     uint32_t *idx);
/* span.c: hand an owned SMALL span to its arena's abandoned list, or take
 * one from there for thread slot @tidx (-ESTALE, -ENOENT when none). */
SHG_HIDDEN int shg__span_abandon(struct shg_seg *seg, uint32_t idx,
				 uint32_t tidx);
SHG_HIDDEN int shg__span_adopt(struct shg_seg *seg, unsigned node, unsigned cls,
			       uint32_t tidx, uint32_t *idx);
/* span.c: a dead thread's SMALL span set aside for the leak sweep
 * (owner SHG_OWNER_SWEEP, on no list), and its release after the sweep. */
SHG_HIDDEN int shg__span_sweep_mark(struct shg_seg *seg, uint32_t idx,
				    uint32_t tidx);
SHG_HIDDEN int shg__span_sweep_release(struct shg_seg *seg, uint32_t idx);

/* ---- roots.c ----------------------------------------------------------- */
SHG_HIDDEN uint32_t shg__roots_release_proc(struct shg_seg *seg, uint32_t pidx);
SHG_HIDDEN void shg__roots_repair(struct shg_seg *seg);
/* Handle internals, for the graph layer. */
SHG_HIDDEN struct shg_seg *shg__root_seg(const struct shg_root *root);
/* shg_root_cas without the replica check: the graph layer's commit paths
 * (which admit a replica's follower with SHG_TXN_REPLICA). */
SHG_HIDDEN int shg__root_publish(struct shg_root *root, struct shg_off expected,
				 struct shg_off desired);
/* shg_root_load() and shg__root_seg() in one call (the read path). */
SHG_HIDDEN uint64_t shg__root_load_seg(const struct shg_root *root,
				       struct shg_seg **seg);
SHG_HIDDEN uint32_t shg__root_slot(const struct shg_root *root);
SHG_HIDDEN uint64_t shg__root_incarnation(const struct shg_root *root);
SHG_HIDDEN int shg__roots_check(struct shg_seg *seg, shg_problem_fn fn,
				void *arg, struct shg_check_report *rep);

/* ---- check.c ----------------------------------------------------------- */
/* Report one problem (formats @fmt) and count it in @rep. */
SHG_HIDDEN void shg__problem(shg_problem_fn fn, void *arg,
			     struct shg_check_report *rep, int code,
			     const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

/*
 * Leak sweep: frees every allocated block that is neither reachable from a
 * root value through @mark (which calls shg__mark() on each block it
 * reaches), nor retired. Precondition: no live process holds allocated but
 * unpublished blocks (writers quiescent). Returns bytes freed or -errno.
 */
struct shg__marker;
SHG_HIDDEN void shg__mark(struct shg__marker *mk, uint64_t off);
/* A marking walk failed: the sweep frees nothing this time. */
SHG_HIDDEN void shg__mark_fail(struct shg__marker *mk, int err);
/* A deferred walk saw a pin record change: mark the retire lists again
 * after the deferred walks (check.c, mark_pass). */
SHG_HIDDEN void shg__mark_lists_again(struct shg__marker *mk);
/* Run @fn(mk, seg, @ctx) after the marking pass's read section (check.c):
 * for graph walks that must not hold a read section. @fn always runs once
 * if this returns 0, and owns @ctx. -ENOMEM: it will not run. */
SHG_HIDDEN int shg__mark_later(struct shg__marker *mk,
			       void (*fn)(struct shg__marker *mk,
					  struct shg_seg *seg, void *ctx),
			       void *ctx);
/* The live leak sweep used by shg_recover (see check.c): frees only blocks
 * allocated by dead processes, while others work. Bytes freed or < 0. */
SHG_HIDDEN int64_t shg__sweep_live(struct shg_seg *seg, bool dry_run);
SHG_HIDDEN int64_t shg__sweep(struct shg_seg *seg,
			      void (*mark)(struct shg__marker *mk,
					   struct shg_seg *seg,
					   uint64_t root_value, void *arg),
			      void *arg, bool dry_run);

/* ---- held.c ------------------------------------------------------------ */
/*
 * Add to @bytes[i] the bytes of the held batches whose holding pin key is
 * @keys[i] (@keys sorted, @n of them); takes limbo_lock briefly. Leaves
 * @bytes as is if the lock cannot be taken.
 */
SHG_HIDDEN void shg__held_by_key(struct shg_seg *seg, const uint64_t *keys,
				 uint64_t *bytes, size_t n);

#endif /* SHG_INTERNAL_H */
