/* SPDX-License-Identifier: MIT */
/*
 * Robust process-shared mutexes in the segment, and what to do when the
 * kernel cannot tell us their owner died.
 *
 * A robust mutex whose owner dies is handed to the next locker with
 * EOWNERDEAD (the kernel walks the dead thread's robust list): we repair
 * what it guarded and mark it consistent. The kernel cannot do that for a
 * lock word written in another boot (a file-path segment that survived a
 * crash of the machine) or forged in a corrupt file: the owner TID names
 * no thread, or an unrelated one, and every locker would wait forever.
 *
 * So the slow path waits in slices (timed lock). After each slice it looks
 * at the owner TID in the lock word: if no thread of a live registered
 * process of this segment has that TID, no participant holds the lock, and
 * we do what the kernel does for a dead owner: replace the word by
 * FUTEX_OWNER_DIED (keeping FUTEX_WAITERS) with one CAS from the value we
 * examined, and wake one waiter. The next locker (perhaps us) gets
 * EOWNERDEAD and repairs. The CAS fails if the word changed meanwhile (the
 * owner released it; someone else took it): then we just wait on.
 * A lock held by a live participant for longer than SHG_LOCK_MAX_NS (a
 * stopped or stuck process) gives SHG_ESTUCK instead of a hang.
 *
 * Participants register their process slot (pid + start-time token)
 * before they take any segment lock, so a live owner is always found in
 * the registry. Reading the lock word relies on glibc's layout of
 * pthread_mutex_t (the futex word first); elsewhere only the cap applies.
 */
#include <errno.h>
#include <linux/futex.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

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

/* Thread group of thread @tid, 0 if there is no such thread. */
static pid_t tid_tgid(pid_t tid)
{
	char path[64], line[128];
	pid_t tgid = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)tid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Tgid: %d", &tgid) == 1)
			break;
	fclose(f);
	return tgid;
}

bool shg__lock_owner_orphaned(struct shg_seg *seg, pid_t tid)
{
	pid_t tgid = tid_tgid(tid);

	return !tgid || !shg__pid_participates(seg, tgid);
}

/*
 * If the owner TID in @m's futex word is no participant's thread, turn the
 * word into "owner died" and wake a waiter. Return whether it did.
 */
static bool take_over_orphan(struct shg_seg *seg, pthread_mutex_t *m)
{
#ifdef __GLIBC__
	int *word = &m->__data.__lock;
	int old = __atomic_load_n(word, __ATOMIC_RELAXED);
	pid_t tid = old & FUTEX_TID_MASK;

	if (!tid || !shg__lock_owner_orphaned(seg, tid))
		return false;
	/* Acquire/release: the dead owner's stores are as visible as they
	 * will ever be; ours to the word pair with the next locker's CAS. */
	if (!__atomic_compare_exchange_n(
		    word, &old, (old & FUTEX_WAITERS) | FUTEX_OWNER_DIED, false,
		    __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
		return false;
	syscall(SYS_futex, word, FUTEX_WAKE, 1, NULL, NULL, 0);
	return true;
#else
	(void)seg;
	(void)m;
	return false;
#endif
}

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
		if (take_over_orphan(seg, m))
			continue;
		waited += LOCK_SLICE_NS;
		if (waited >= SHG_LOCK_MAX_NS)
			return -SHG_ESTUCK; /* positive, as pthread codes */
	}
}

int shg__lock(struct shg_seg *seg, pthread_mutex_t *m,
	      void (*repair)(struct shg_seg *seg))
{
	int err = pthread_mutex_trylock(m);

	if (err == EBUSY)
		err = lock_slow(seg, m);
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

void shg__unlock(pthread_mutex_t *m)
{
	pthread_mutex_unlock(m);
}
