/* SPDX-License-Identifier: MIT */
/*
 * shmgraph/inline.h - the inline read-lock fast path (struct shg_thread).
 *
 * ABI NOTICE: the layout of struct shg_thread and the bodies of the inline
 * functions below are compiled into programs. Changing either changes the
 * library's ABI (bump the libtool current and the soname). Include
 * <shmgraph.h> rather than this file.
 */
#ifndef SHMGRAPH_INLINE_H
#define SHMGRAPH_INLINE_H

#include <shmgraph/base.h>
#include <shmgraph/segment.h>

#ifdef __cplusplus
extern "C" {
#endif

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

#ifdef __cplusplus
}
#endif
#endif /* SHMGRAPH_INLINE_H */
