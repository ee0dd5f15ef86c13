/* SPDX-License-Identifier: MIT */
/*
 * Byte layout of a shmgraph segment. Every struct here lives in shared
 * memory, is mapped by several processes at different addresses, and is
 * read by code that must not trust it. Each field is commented; sizes and
 * key offsets are _Static_assert'ed and folded into the layout hash
 * (shg__layout_hash) stored in the header, so a build with another layout
 * refuses the segment instead of misreading it.
 *
 * Segment map (all offsets from the start of the mapping, all regions
 * 64-byte aligned, the heap 64 KiB aligned):
 *
 *   0            struct shg_hdr                 (4096 bytes)
 *   procs_off    struct shg_pslot[max_procs]    (64 bytes each)
 *   threads_off  struct shg_tslot[max_threads]  (128 bytes each)
 *   roots_off    struct shg_rslot[max_roots]    (192 bytes each)
 *   holds_off    struct shg_hold[max_holds]     (16 bytes each)
 *   arenas_off   struct shg_arena[SHG_MAX_NODES]
 *   spans_off    struct shg_span[nspans]        (64 bytes each)
 *   heap_off     heap: nspans spans of SHG_SPAN_SIZE bytes
 *
 * Everything below heap_off is backed (fallocated) at creation. The heap is
 * backed as it grows (hdr.backed), so no access ever faults past EOF.
 *
 * Rule for readers of this memory: load a shared field once into a local,
 * validate the local, then use it.
 */
#ifndef SHG_LAYOUT_H
#define SHG_LAYOUT_H

#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <shmgraph.h>

#define SHG_MAGIC "SHMGRAPH" /* 8 bytes, no NUL stored */
/* 2: attachment tokens are random and liveness is an OFD lock per process
 * slot (pslot.locks, pslot.pidns); version-1 tokens meant pid + start time. */
#define SHG_FORMAT_VERSION 2u
#define SHG_HDR_SIZE 4096u
#define SHG_CACHE_LINE 64u
#define SHG_SPAN_SHIFT 16u
#define SHG_SPAN_SIZE (1u << SHG_SPAN_SHIFT) /* 64 KiB */
#define SHG_SMALL_MAX 16384u /* larger requests take whole spans */
#define SHG_SPAN_BINS 33u /* free extents: 1..32 spans, then "more" */
#define SHG_MIN_CAPACITY (4u << 20) /* smallest segment: 4 MiB */
#define SHG_MAX_CAPACITY (1ull << 40) /* largest segment: 1 TiB */
#define SHG_MAX_PROCS 4096u
#define SHG_MAX_THREADS 65535u /* owner fields store index+1 in 16 bits */
#define SHG_MAX_ROOTS 65536u
#define SHG_MAX_HOLDS (4u * SHG_MAX_ROOTS)

/* hdr.create_flags bits. SHG_HDR_F_HUGE: created with SHG_OPEN_HUGE; every
 * opener collapses into huge pages what it backs (segment.c, huge_setup),
 * where the host allows it, whether or not it asked. */
#define SHG_HDR_F_HUGE 0x1ull

/* -------------------------------------------------------------------------
 * Header (offset 0). Lines 0-2 are immutable after creation except
 * boot_id; hot mutable words sit on lines of their own.
 */
struct shg_hdr {
	/* line 0: identity */
	char magic[8]; /* SHG_MAGIC */
	uint32_t version; /* SHG_FORMAT_VERSION */
	uint32_t hdr_size; /* SHG_HDR_SIZE */
	uint64_t layout_hash; /* shg__layout_hash() of the creating build */
	uint64_t capacity; /* total bytes of the segment (mapping size) */
	uint8_t uuid[16]; /* random id of this segment */
	uint64_t created_ns; /* CLOCK_REALTIME at creation */
	uint32_t creator_pid; /* pid of the creating process */
	uint32_t creator_uid; /* uid of the creating process */

	/* line 1: geometry */
	uint32_t max_procs; /* entries in the process slot table */
	uint32_t max_threads; /* entries in the thread slot table */
	uint32_t max_roots; /* entries in the root table */
	uint32_t max_holds; /* entries in the hold table */
	uint32_t nspans; /* span descriptors == spans the heap can hold */
	uint32_t nodes; /* NUMA nodes (arenas) in use, 1..SHG_MAX_NODES */
	int32_t numa_policy; /* enum shg_numa_policy */
	int32_t numa_node; /* node for SHG_NUMA_BIND */
	uint64_t procs_off; /* offset of struct shg_pslot[max_procs] */
	uint64_t threads_off; /* offset of struct shg_tslot[max_threads] */
	uint64_t roots_off; /* offset of struct shg_rslot[max_roots] */
	uint64_t holds_off; /* offset of struct shg_hold[max_holds] */

	/* line 2 */
	uint64_t arenas_off; /* offset of struct shg_arena[SHG_MAX_NODES] */
	uint64_t spans_off; /* offset of struct shg_span[nspans] */
	uint64_t heap_off; /* offset of span 0, SHG_SPAN_SIZE aligned */
	uint64_t retire_budget; /* max retired-unfreed bytes (SHG_EBUDGET) */
	uint8_t boot_id[16]; /* kernel boot id at creation or at the last
			      * reset of an earlier boot's locks (0: unknown) */
	uint64_t create_flags; /* SHG_HDR_F_*: what every opener follows
				* (0 in segments of older builds) */
	uint64_t reserved2; /* zero */

	/* line 3: the global epoch, alone on its line (read by every reader) */
	alignas(64) _Atomic uint64_t epoch; /* grace-period counter, >= 1 */
	uint64_t pad3[7];

	/* line 4: heap growth */
	alignas(64) _Atomic uint64_t backed; /* bytes of file with storage */
	_Atomic uint64_t heap_top; /* heap bytes carved into extents */
	_Atomic uint32_t asym_procs; /* processes using the membarrier flavor */
	uint32_t pad4a;
	uint64_t pad4[5];

	/* line 5: reclamation totals */
	alignas(64) _Atomic uint64_t retired_bytes; /* in sealed+open batches */
	_Atomic uint64_t reclaimed_bytes; /* total ever reclaimed */
	_Atomic uint64_t reclaimed_blocks; /* total blocks ever reclaimed */
	uint64_t limbo_head; /* oldest sealed batch (under limbo_lock) */
	uint64_t limbo_tail; /* newest sealed batch (under limbo_lock) */
	_Atomic uint64_t commits; /* publishes on all roots (statistics) */
	_Atomic uint32_t next_graph; /* last graph id handed out */
	uint32_t pad5a;
	_Atomic uint64_t sweep_lock; /* token of the process sweeping leaks */

	/* line 6: offsets owned by upper layers (graph layer type table...) */
	alignas(64) _Atomic uint64_t ext[8]; /* 0 until an upper layer sets */

	/* line 7: retired entries held by pins (interval-based reclamation) */
	alignas(64) uint64_t held_head; /* held batch list (limbo_lock) */
	_Atomic uint64_t held_bytes; /* bytes of held batches (limbo_lock) */
	_Atomic uint64_t held_gen; /* pin table gen of the last full scan of
				    * the held list; UINT64_MAX = rescan */
	uint64_t held_unlinks; /* batches ever unlinked from the held list
				* (limbo_lock): a scan's saved position is
				* valid while this has not moved */
	uint64_t pad7[4];

	/* robust, process-shared mutexes for the rare paths */
	alignas(64) pthread_mutex_t limbo_lock; /* sealed batch list */
	alignas(64) pthread_mutex_t root_lock; /* root names, holds */
	alignas(64) pthread_mutex_t grow_lock; /* heap_top and backed growth */
};

_Static_assert(sizeof(struct shg_hdr) <= SHG_HDR_SIZE, "header too big");
_Static_assert(offsetof(struct shg_hdr, layout_hash) == 16, "layout");
_Static_assert(offsetof(struct shg_hdr, max_procs) == 64, "layout");
_Static_assert(offsetof(struct shg_hdr, arenas_off) == 128, "layout");
_Static_assert(offsetof(struct shg_hdr, create_flags) == 176, "layout");
_Static_assert(offsetof(struct shg_hdr, epoch) == 192, "layout");
_Static_assert(offsetof(struct shg_hdr, backed) == 256, "layout");
_Static_assert(offsetof(struct shg_hdr, retired_bytes) == 320, "layout");
_Static_assert(offsetof(struct shg_hdr, ext) == 384, "layout");
_Static_assert(offsetof(struct shg_hdr, held_head) == 448, "layout");

/* -------------------------------------------------------------------------
 * Process slot. A process claims one at open: it first takes an OFD write
 * lock (fcntl F_OFD_SETLK) on byte SHG_LIVE_LOCK_BASE + slot index of the
 * segment file through its O_CLOEXEC descriptor, then CASes token 0 -> its
 * token, and holds the lock for as long as it is attached. The token is 64
 * random bits naming that attachment (never 0, never SHG_TOKEN_MIXED); it
 * holds no pid. The slot is alive iff its byte is OFD-locked by someone and
 * its token is unchanged: the kernel drops the lock at death and at exec,
 * in any PID or time namespace, and no lock survives a reboot.
 */
#define SHG_LIVE_LOCK_BASE \
	0x10000ull /* byte of slot 0; the byte before it
				       * is the attach gate (registry.c) */

struct shg_pslot {
	_Atomic uint64_t token; /* owner token, 0 = free */
	_Atomic uint64_t recover_lock; /* token of the process releasing it */
	int32_t pid; /* owner pid in its own PID namespace (display only) */
	int32_t flavor; /* enum shg_flavor the owner reads with */
	uint64_t attached_ns; /* CLOCK_REALTIME when claimed (display only) */
	_Atomic uint32_t nthreads; /* thread slots owned by this process */
	uint32_t uid; /* owner uid */
	_Atomic uint32_t locks; /* segment locks held or being taken */
	uint32_t pad0; /* zero */
	uint64_t pidns; /* inode of the owner's PID namespace, 0 = unknown
			 * (display only: tells a pid from another namespace) */
	uint64_t pad[1];
};
_Static_assert(sizeof(struct shg_pslot) == 64, "pslot size");
_Static_assert(offsetof(struct shg_pslot, locks) == 40, "pslot");

/* -------------------------------------------------------------------------
 * Thread slot: the reader's epoch word and the writer's retire state.
 * Line 0 is written only by the owning thread; line 1 by others (rarely).
 */
struct shg_tslot {
	/* line 0: owner-written */
	_Atomic uint64_t epoch; /* 0 = quiescent; else epoch read at entry */
	_Atomic uint64_t owner; /* owning process token, 0 = free */
	uint32_t proc; /* owning process slot index */
	int32_t tid; /* thread id in its own PID namespace (display only) */
	_Atomic uint64_t limbo_open; /* offset of the open retire batch */
	_Atomic uint64_t reclaiming; /* offset of a batch being freed */
	uint64_t registered_ns; /* CLOCK_REALTIME at registration */
	uint32_t node; /* NUMA node of the thread at registration */
	uint32_t stage_n; /* staged retires in the open batch (epoch_stage.c) */
	_Atomic uint64_t freeing; /* block a reclaimer is freeing: a retired
				   * entry or a finished batch block, marked
				   * SHG_FREEING_MARK + owner (epoch.c) */

	/* line 1: written by reclaimers and recoverers; the stage fields by
	 * the owner while it commits and by the next committer */
	alignas(64) _Atomic uint64_t blocked_since_ns; /* MONOTONIC, 0 = no */
	_Atomic uint64_t blocked_bytes; /* retired bytes it held back then */
	_Atomic uint64_t recover_lock; /* token of the process recovering */
	uint32_t stage_from; /* open batch count when the stage began */
	uint32_t stage_root; /* root slot the staged commit publishes on */
	_Atomic uint64_t stage_chain; /* private batches of staged retires
				       * beyond the open batch, 0 = none */
	_Atomic uint64_t stage_ver; /* version a staged commit publishes, 0 =
				     * none; set first, cleared last */
	_Atomic uint64_t stage_seen; /* == stage_ver once a later commit read
				      * that version as its base (so it was
				      * published), set before its CAS */
	uint64_t pad2;
};
_Static_assert(sizeof(struct shg_tslot) == 128, "tslot size");
_Static_assert(offsetof(struct shg_tslot, blocked_since_ns) == 64, "tslot");

/* -------------------------------------------------------------------------
 * Root slot. Line 0 is what readers and publishers touch; lines 1-2 are the
 * namespace, changed under hdr.root_lock (except flags, see there).
 */
enum shg_root_state {
	SHG_ROOT_FREE = 0,
	SHG_ROOT_LIVE = 1,
	SHG_ROOT_REMOVED = 2, /* waiting for the last holder */
};

/* rslot.flags bits. SHG_ROOT_F_REPLICA: a read-only replica root, written
 * only by its replication follower (shg_root_set_replica, lib/txn.c). */
#define SHG_ROOT_F_REPLICA 0x1u

struct shg_rslot {
	/* line 0: published value */
	_Atomic uint64_t value; /* current value (offset), 0 = null */
	_Atomic uint64_t gen; /* successful publishes so far */
	_Atomic uint64_t last_publish_ns; /* CLOCK_REALTIME of the last one */
	_Atomic uint64_t next_seq; /* last txn sequence handed out */
	_Atomic uint32_t waiting; /* 1: a shg_root_wait() may sleep on the
				   * low half of gen (futex); a publish
				   * that clears it wakes them (roots.c) */
	uint32_t pad0a;
	uint64_t pad0[3];
	/* line 1 */
	char name[SHG_ROOT_NAME_MAX + 1]; /* NUL-terminated */
	/* line 2: namespace state (under root_lock) */
	_Atomic uint32_t state; /* enum shg_root_state */
	uint32_t holds; /* sum of hold records for this slot */
	uint64_t incarnation; /* bumped each time the slot is created */
	uint64_t created_ns; /* CLOCK_REALTIME at creation */
	_Atomic uint64_t refs; /* root refs naming it (graph layer) */
	uint32_t graph; /* graph id of this incarnation's graph */
	_Atomic uint32_t flags; /* SHG_ROOT_F_*: 0 at create; set and cleared
				 * by atomic RMW without root_lock, read
				 * relaxed by writers before they publish */
	uint64_t pad2[3];
};
_Static_assert(sizeof(struct shg_rslot) == 192, "rslot size");
_Static_assert(offsetof(struct shg_rslot, name) == 64, "rslot");
_Static_assert(offsetof(struct shg_rslot, state) == 128, "rslot");
_Static_assert(offsetof(struct shg_rslot, flags) == 164,
	       "rslot: flags where older builds had padding (zero)");

/* Hold record: @count holds of process slot @proc on root slot @root. */
struct shg_hold {
	uint32_t proc1; /* process slot index + 1, 0 = record free */
	uint32_t root; /* root slot index */
	uint32_t count; /* open handles */
	uint32_t incarnation; /* low bits of the root's incarnation */
};
_Static_assert(sizeof(struct shg_hold) == 16, "hold size");

/* -------------------------------------------------------------------------
 * Spans: the heap is cut into 64 KiB spans. A run of spans forms an
 * extent; the descriptor of its first span (the head) says what it is.
 *
 * span.word packs (one atomic store commits a change):
 *   bits  0..31  count: spans in the extent (head only)
 *   bits 32..39  class: size class (SMALL)
 *   bits 40..47  node:  NUMA node the extent was placed on
 *   bits 48..51  state: enum shg_span_state
 */
enum shg_span_state {
	SHG_SPAN_UNUSED = 0, /* never carved (above heap_top) */
	SHG_SPAN_FREE = 1, /* head of a free extent */
	SHG_SPAN_SMALL = 2, /* one span cut into blocks of one class */
	SHG_SPAN_LARGE = 3, /* head of an extent holding one large block */
	SHG_SPAN_TAIL = 4, /* non-head span of an extent (FREE or LARGE) */
};

#define SHG_SPAN_WORD(state, node, cls, count)                  \
	(((uint64_t)(state) << 48) | ((uint64_t)(node) << 40) | \
	 ((uint64_t)(cls) << 32) | (uint64_t)(count))
#define SHG_SPAN_STATE(w) ((unsigned)(((w) >> 48) & 0xf))
#define SHG_SPAN_NODE(w) ((unsigned)(((w) >> 40) & 0xff))
#define SHG_SPAN_CLASS(w) ((unsigned)(((w) >> 32) & 0xff))
#define SHG_SPAN_COUNT(w) ((uint32_t)((w)&0xffffffffu))

struct shg_span {
	_Atomic uint64_t word; /* packed state, see above */
	_Atomic uint32_t owner; /* SMALL: owning thread slot + 1, 0 = none */
	uint32_t head; /* TAIL: index of the extent's head span */
	uint32_t next; /* bin / abandoned list: next span index + 1 */
	uint32_t prev; /* bin list: previous span index + 1 */
	uint32_t bump; /* SMALL: blocks ever handed out from the start */
	_Atomic uint32_t used; /* SMALL: blocks allocated (owner-updated) */
	uint64_t free_head; /* SMALL: owner's free list (offset, 0 end) */
	_Atomic uint64_t remote_head; /* SMALL: frees by other threads */
	uint64_t large_bytes; /* LARGE: bytes requested */
	/* LARGE: allocating process token. SMALL: token of the process whose
	 * threads allocated every block in the span, SHG_TOKEN_MIXED if the
	 * span was adopted across processes while it held blocks. */
	uint64_t owner_token;
};
#define SHG_TOKEN_MIXED UINT64_MAX
/* Word 0 of a block a reclaimer is about to free (word 1: its slot's owner
 * token). Odd, so never a free-list link (block offsets are 16-aligned);
 * every free overwrites word 0 (epoch.c, tslot.freeing). */
#define SHG_FREEING_MARK 0x5afe5afe5afe5afdull
/* span.owner of a dead thread's span awaiting the leak sweep (not on any
 * list, never adopted); above every thread slot + 1. */
#define SHG_OWNER_SWEEP 0xffffffffu
_Static_assert(sizeof(struct shg_span) == 64, "span size");

/* Per-NUMA-node arena: free extents and ownerless small spans. */
struct shg_arena {
	pthread_mutex_t lock; /* robust, process-shared */
	uint32_t bins[SHG_SPAN_BINS]; /* free extents by count, index + 1 */
	uint32_t abandoned[SHG_NUM_CLASSES]; /* ownerless SMALL spans */
	uint64_t span_bytes; /* bytes of extents placed on this node */
	uint64_t pad[3];
};
_Static_assert(offsetof(struct shg_arena, bins) == sizeof(pthread_mutex_t),
	       "arena");

/* -------------------------------------------------------------------------
 * Retire batch (a heap block). Sealed batches form a FIFO (limbo_head ..
 * limbo_tail) in seal order, so their tags never decrease along it. Held
 * batches (entries whose grace period is over but that a pin still needs)
 * form the held list (held_head), where @tag is the key of the pin that
 * holds them (0: re-examine on any pin change).
 */
struct shg_retired {
	uint64_t off; /* retired block (0: moved to a held batch) */
	uint64_t death; /* sequence that replaced it, 0 = plain block */
};
_Static_assert(sizeof(struct shg_retired) == 16, "retired entry");

struct shg_batch {
	uint64_t next; /* offset of the next batch in its list, 0 = last */
	uint64_t tag; /* sealed: epoch at seal, free when readers > tag;
		       * held: key (graph << 40 | seq) of the holding pin */
	uint32_t count; /* entries in use */
	uint32_t cap; /* entries that fit */
	uint64_t bytes; /* sum of the entries' block sizes */
	struct shg_retired ent[]; /* retired blocks */
};
_Static_assert(offsetof(struct shg_batch, ent) == 32, "batch");

/*
 * Held batch: a batch block in the held list (told apart by @cap ==
 * SHG_HELD_CAP). Same first fields as struct shg_batch; its entries are
 * bare offsets and one death bound for all of them (the largest death of
 * its entries: an interval check with it is conservative), so a held node
 * costs 8 bytes of bookkeeping.
 */
struct shg_held_batch {
	uint64_t next; /* next batch of the held list, 0 = last */
	uint64_t tag; /* key of the holding pin (0 = unknown) */
	uint32_t count; /* entries in use */
	uint32_t cap; /* SHG_HELD_CAP */
	uint64_t bytes; /* sum of the entries' block sizes */
	uint64_t death; /* >= the death of every entry */
	uint64_t off[]; /* held blocks (0: moved elsewhere) */
};
_Static_assert(offsetof(struct shg_held_batch, off) == 40, "held batch");
#define SHG_HELD_CAP ((SHG_BATCH_BYTES - 40u) / 8u)
#define SHG_BATCH_BYTES 4096u

#endif /* SHG_LAYOUT_H */
