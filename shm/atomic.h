/* SPDX-License-Identifier: MIT */
/*
 * The one set of atomic helpers for plain (non-_Atomic) words that live in
 * the segment, with the memory order in the name.
 *
 * Layout structs (shm/layout.h) keep some words as plain integers because
 * their byte layout is part of the format; several processes read them
 * concurrently (checkers, stats, scans of another thread's span), so every
 * shared access goes through an atomic builtin, which keeps the race well
 * defined. Fields declared _Atomic use C11 atomic_*_explicit directly.
 * Neither ever relies on an implicit seq_cst atomic_load()/store().
 *
 * Crash ordering. A process may die at any instruction. Survivors look at
 * what it wrote only after they have seen it dead (a robust lock's
 * EOWNERDEAD, a liveness test), and the kernel's death processing orders
 * every store the dead process executed before that observation. So what
 * matters for a crash is only which stores were executed, in program
 * order: a compiler barrier, not a CPU fence. shg__crash_barrier() names
 * that: use it where a store must not be moved past another by the
 * compiler for the benefit of a recoverer (for ordering against live
 * concurrent readers use release/acquire as usual).
 */
#ifndef SHG_ATOMIC_H
#define SHG_ATOMIC_H

#include <stdatomic.h>
#include <stdint.h>

static inline uint32_t shg__ld32_relaxed(const uint32_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static inline void shg__st32_relaxed(uint32_t *p, uint32_t v)
{
	__atomic_store_n(p, v, __ATOMIC_RELAXED);
}

static inline uint64_t shg__ld64_relaxed(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static inline void shg__st64_relaxed(uint64_t *p, uint64_t v)
{
	__atomic_store_n(p, v, __ATOMIC_RELAXED);
}

static inline uint64_t shg__ld64_acquire(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static inline void shg__st64_release(uint64_t *p, uint64_t v)
{
	__atomic_store_n(p, v, __ATOMIC_RELEASE);
}

/* Keep the compiler from moving stores across this point, for crash
 * recovery (see the top of this file); emits no instruction. */
#define shg__crash_barrier() atomic_signal_fence(memory_order_seq_cst)

#endif /* SHG_ATOMIC_H */
