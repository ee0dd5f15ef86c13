/* SPDX-License-Identifier: MIT */
/*
 * Robust process-shared mutexes in the segment, and what to do when the
 * kernel cannot tell us their owner died.
 *
 * A robust mutex whose owner dies (or execs) is handed to the next locker
 * with EOWNERDEAD: the kernel walks the dying thread's robust list and
 * marks the word FUTEX_OWNER_DIED, whatever PID namespace the thread is
 * in. We repair what the lock guarded and mark it consistent. The kernel
 * cannot do that for a lock word written in another boot (a file-path
 * segment that survived a crash of the machine) or forged in a corrupt
 * file: every locker would wait forever.
 *
 * Ownership is never decided from the TID in the lock word: a TID means
 * nothing outside its PID namespace, and two namespaces reuse the same
 * TIDs. Instead every locker ANNOUNCES itself: it increments the `locks`
 * count of its process slot before it tries the mutex and decrements it
 * after it unlocked (or gave up). A held word while no other live process
 * announces anything, and the calling process announces nothing beyond
 * what this thread itself holds or attempts (thread-local count), is held
 * by nobody alive: an orphan.
 *
 * TAKE-OVER (slow path, after each 100 ms slice of a timed lock):
 *  1. w = the word; it must name a holder (TID bits) and not be marked
 *     FUTEX_OWNER_DIED (then glibc hands it over by itself). Then check
 *     the announcements: any other one -> give up for this slice.
 *  2. CAS w -> CLAIM (a TID no thread can have, keeping FUTEX_WAITERS):
 *     the word is now "held", so no locker can take it from under us.
 *  3. Check the announcements again. Any -> CAS CLAIM -> w back. (glibc
 *     refuses to unlock a word that is not its owner's, so a live holder
 *     unlocking meanwhile gets EPERM and shg__unlock retries, putting its
 *     own TID back itself if needed: it still announces, so no taker turns
 *     CLAIM into "owner died" meanwhile.)
 *  4. CAS CLAIM -> FUTEX_OWNER_DIED (keeping FUTEX_WAITERS) and wake one
 *     waiter: the next locker gets EOWNERDEAD and repairs.
 *
 * Why a live holder is never robbed. Let R hold the mutex when our CAS of
 * step 2 succeeds. R's announcement (a seq_cst RMW, then a release fence)
 * precedes R's acquiring CAS of the word; our step-2 CAS is an acquire RMW
 * that reads R's value or a later one in its release sequence (waiters
 * only add FUTEX_WAITERS by RMW, unlock is an exchange). So R's
 * announcement happens-before our step-3 loads, which see it unless R
 * already withdrew it; R withdraws only after its successful unlock
 * (release), which needs the word to carry R's TID, so an acquire load of
 * the withdrawn count orders that unlock (an exchange to 0 after the word
 * stopped being CLAIM) before our step-4 CAS, which fails. Step 1 is
 * only a filter: it is step 3 that decides. A TID collision between
 * namespaces cannot fool this, as no TID is interpreted.
 *
 * Cost: one RMW on the process slot line per lock and unlock. The price of
 * safety: an orphaned word with several waiters (each sees the others'
 * announcements) is not taken over; they get SHG_ESTUCK after the cap.
 * A file segment from an earlier boot has no live announcer, so its lock
 * words are taken over by the first waiter.
 *
 * A lock held by a live participant for longer than SHG_LOCK_MAX_NS (a
 * stopped or stuck process) gives SHG_ESTUCK instead of a hang. Reading
 * the lock word relies on glibc's layout of pthread_mutex_t (the futex
 * word first); elsewhere only the cap applies.
 */
#include <errno.h>
#include <linux/futex.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

/* A TID no thread has (pid_max <= 2^22): "claimed by a take-over". */
#define LOCK_CLAIM_TID ((int)FUTEX_TID_MASK)
#define LOCK_SLICE_NS (100ull * 1000 * 1000) /* owner check period */
#define SHG_LOCK_MAX_NS (10ull * 1000 * 1000 * 1000) /* live owner cap */

int shg__mutex_init(pthread_mutex_t *m)
{
	pthread_mutexattr_t a;
	int err;

	err = pthread_mutexattr_init(&a);
	if (err)
		return -err;
	err = pthread_mutexattr_settype(&a, PTHREAD_MUTEX_NORMAL);
	if (!err)
		err = pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
	if (!err)
		err = pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
	if (!err)
		err = pthread_mutex_init(m, &a);
	pthread_mutexattr_destroy(&a);
	return -err;
}

/* Statistics for tests (process-local): step-3 restores, unlocks that met
 * a CLAIM. */
_Atomic uint64_t shg__lock_restores, shg__lock_unlock_retries;

/*
 * Locks announced by the calling thread, per segment header (process-local;
 * a thread rarely holds locks of more than one segment at once). An
 * overflow makes take-over refuse (safe side).
 */
#define TL_SEGS 4
static __thread struct {
	const void *hdr;
	uint32_t n;
} tl_locks[TL_SEGS];
static __thread bool tl_overflow;

static _Atomic uint32_t *announce_word(struct shg_seg *seg)
{
	if (seg->pslot >= seg->max_procs)
		return NULL;
	return &seg->procs[seg->pslot].locks;
}

static void tl_add(struct shg_seg *seg, int d)
{
	int i, free_i = -1;

	for (i = 0; i < TL_SEGS; i++) {
		if (tl_locks[i].hdr == seg->hdr) {
			tl_locks[i].n += (uint32_t)d;
			if (!tl_locks[i].n)
				tl_locks[i].hdr = NULL;
			return;
		}
		if (!tl_locks[i].hdr && free_i < 0)
			free_i = i;
	}
	if (d > 0 && free_i >= 0) {
		tl_locks[free_i].hdr = seg->hdr;
		tl_locks[free_i].n = (uint32_t)d;
	} else {
		tl_overflow = true;
	}
}

static uint32_t tl_count(struct shg_seg *seg)
{
	int i;

	for (i = 0; i < TL_SEGS; i++)
		if (tl_locks[i].hdr == seg->hdr)
			return tl_locks[i].n;
	return 0;
}

static void announce(struct shg_seg *seg)
{
	_Atomic uint32_t *w = announce_word(seg);

	if (w)
		atomic_fetch_add_explicit(w, 1, memory_order_seq_cst);
	tl_add(seg, 1);
	/* Release: the announcement is visible to whoever reads the value
	 * our coming CAS of the lock word writes (see the theory above). */
	atomic_thread_fence(memory_order_release);
}

static void withdraw(struct shg_seg *seg)
{
	_Atomic uint32_t *w = announce_word(seg);

	tl_add(seg, -1);
	/* Release: our unlock of the word precedes the withdrawal. */
	if (w)
		atomic_fetch_sub_explicit(w, 1, memory_order_release);
}

bool shg__lock_others_active(struct shg_seg *seg)
{
	uint32_t p, mine = tl_count(seg);

	if (tl_overflow)
		return true;
	for (p = 0; p < seg->max_procs; p++) {
		struct shg_pslot *ps = &seg->procs[p];
		uint64_t tok =
			atomic_load_explicit(&ps->token, memory_order_acquire);
		uint32_t n;

		if (!tok)
			continue;
		/* Acquire: pairs with withdraw()'s release. */
		n = atomic_load_explicit(&ps->locks, memory_order_acquire);
		if (p == seg->pslot && tok == seg->token) {
			if (n > mine)
				return true; /* another thread of ours */
			continue;
		}
		if (n && shg__pslot_alive(seg, p, tok))
			return true;
	}
	return false;
}

#ifdef __GLIBC__

/*
 * If the word of @m is held while nobody alive announces a lock, turn it
 * into "owner died" and wake a waiter. Return whether it did.
 */
bool shg__lock_take_over(struct shg_seg *seg, pthread_mutex_t *m, bool filter)
{
	int *word = &m->__data.__lock;
	int old = __atomic_load_n(word, __ATOMIC_RELAXED), cur, claim;

	if (!(old & FUTEX_TID_MASK) || (old & FUTEX_OWNER_DIED))
		return false;
	atomic_thread_fence(memory_order_acquire);
	if (filter && shg__lock_others_active(seg)) /* step 1: a filter */
		return false;
	claim = LOCK_CLAIM_TID | (old & FUTEX_WAITERS);
	/* Step 2. Acquire: see the theory (announcements before the word). */
	if (!__atomic_compare_exchange_n(word, &old, claim, false,
					 __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
		return false;
	cur = claim;
	if (shg__lock_others_active(seg)) { /* step 3 */
		/* Put the holder's word back, with any FUTEX_WAITERS added. */
		atomic_fetch_add_explicit(&shg__lock_restores, 1,
					  memory_order_relaxed);
		while (!__atomic_compare_exchange_n(
			word, &cur,
			(old & ~FUTEX_WAITERS) | (cur & FUTEX_WAITERS), false,
			__ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
			if ((cur & FUTEX_TID_MASK) != LOCK_CLAIM_TID)
				break; /* unlocked by its holder meanwhile */
		return false;
	}
	/* Step 4. Release: our view of the dead owner's stores passes on to
	 * the next locker's CAS. */
	while (!__atomic_compare_exchange_n(
		word, &cur, (cur & FUTEX_WAITERS) | FUTEX_OWNER_DIED, false,
		__ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
		if ((cur & FUTEX_TID_MASK) != LOCK_CLAIM_TID)
			return false;
	syscall(SYS_futex, word, FUTEX_WAKE, 1, NULL, NULL, 0);
	return true;
}
#else
bool shg__lock_take_over(struct shg_seg *seg, pthread_mutex_t *m, bool filter)
{
	(void)filter;
	(void)seg;
	(void)m;
	return false;
}
#endif

/* Contended lock: wait in slices, taking over orphaned locks. */
static int lock_slow(struct shg_seg *seg, pthread_mutex_t *m)
{
	uint64_t waited = 0;
	struct timespec dl;
	int err;

	for (;;) {
		clock_gettime(CLOCK_REALTIME, &dl);
		dl.tv_nsec += (long)LOCK_SLICE_NS;
		if (dl.tv_nsec >= 1000000000L) {
			dl.tv_sec++;
			dl.tv_nsec -= 1000000000L;
		}
		err = pthread_mutex_timedlock(m, &dl);
		if (err != ETIMEDOUT)
			return err;
		if (shg__lock_take_over(seg, m, true))
			continue;
		waited += LOCK_SLICE_NS;
		if (waited >= SHG_LOCK_MAX_NS)
			return -SHG_ESTUCK; /* positive, as pthread codes */
	}
}

int shg__lock(struct shg_seg *seg, pthread_mutex_t *m,
	      void (*repair)(struct shg_seg *seg))
{
	int err;

	announce(seg);
	err = pthread_mutex_trylock(m);
	if (err == EBUSY)
		err = lock_slow(seg, m);
	if (err && err != EOWNERDEAD) {
		withdraw(seg);
		return -err;
	}
	if (err == EOWNERDEAD) {
		/* The holder died inside the critical section: repair what
		 * it guarded, then make the mutex usable again. */
		if (repair)
			repair(seg);
		pthread_mutex_consistent(m);
		return 0;
	}
	return -err;
}

void shg__unlock(struct shg_seg *seg, pthread_mutex_t *m)
{
#ifdef __GLIBC__
	int *word = &m->__data.__lock;

	/*
	 * glibc refuses (EPERM) to unlock a word that does not carry our TID:
	 * a take-over holds it at CLAIM for a moment. It sees our
	 * announcement (still there: we withdraw after unlocking) and puts
	 * our word back; we may do it ourselves, in case it died in between
	 * (it never turns CLAIM into "owner died" while we announce).
	 */
	while (pthread_mutex_unlock(m) == EPERM) {
		int cur = __atomic_load_n(word, __ATOMIC_RELAXED);

		if ((cur & FUTEX_TID_MASK) == (int)shg__gettid())
			continue; /* the taker put it back meanwhile */
		if ((cur & FUTEX_TID_MASK) != LOCK_CLAIM_TID)
			break; /* not held by us at all: nothing to undo */
		atomic_fetch_add_explicit(&shg__lock_unlock_retries, 1,
					  memory_order_relaxed);
		(void)__atomic_compare_exchange_n(
			word, &cur, (cur & FUTEX_WAITERS) | (int)shg__gettid(),
			false, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED);
	}
#else
	pthread_mutex_unlock(m);
#endif
	withdraw(seg);
}
