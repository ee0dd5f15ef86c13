/* SPDX-License-Identifier: MIT */
/*
 * Process and thread registry: who is attached to a segment, whether they
 * are still alive, and giving back what the dead held.
 *
 * THEORY OF OPERATION
 *
 * Claiming. A process first takes the OFD lock of process slot p (byte
 * SHG_LIVE_LOCK_BASE + p of the segment file, through its own O_CLOEXEC
 * descriptor), then CASes its token (64 random bits, see platform.c) into
 * slot.token; a thread claims a thread slot with one CAS of its process
 * token into slot.owner. A claim is a single atomic step, so a crash
 * leaves a slot either free or owned by a token found dead later.
 *
 * Liveness, attested by the kernel, never by a pid. A process slot is
 * alive iff its byte is OFD-locked through another open file description
 * (F_OFD_GETLK) and it still carries the token asked about. The kernel
 * drops the lock when the owner dies or execs (the descriptor is
 * O_CLOEXEC and no other descriptor shares its description: a forked
 * child closes its inherited copies in an atfork handler), in any PID or
 * time namespace, with or without /proc, whatever the clocks say; OFD
 * locks do not survive a reboot, so a file segment's slots from an earlier
 * boot are dead. An error from fcntl answers "alive" (never "dead" from an
 * I/O error). A token no process slot carries is dead (its slot was
 * released; tokens are never reused). A thread slot is alive iff its
 * owner token is alive: a thread that ends on its own runs the key
 * destructor below, which releases its slot; a thread vanishes without it
 * only with its whole process (exit_group, a signal, exec), which drops
 * the OFD lock. (A robust mutex per thread slot was the alternative; its
 * glibc robust-list links would point into a mapping shg_seg_close may
 * unmap while other threads still hold it, and it would cost a futex per
 * registration. A raw SYS_exit of one thread is not supported: its slot
 * stays alive until the process ends, which delays reclamation only.)
 * Liveness is checked only on slow paths (open, synchronize waiting on a
 * slot, recover).
 *
 * Releasing. Whoever notices a dead owner first releases its slots. A
 * per-slot recover_lock word (CAS 0 -> our token; a dead holder's lock may
 * be taken over) makes the release single-handed; every step is idempotent,
 * so a releaser that dies half-way is simply redone by the next. Order:
 * thread slots first (seal their retire batches, abandon their spans, clear
 * epoch, then owner = 0), then root holds, then the process slot's token.
 *
 * Thread contexts. Each (thread, segment) pair has a process-local struct
 * shg__tctx, found through a thread-local list (most recent first, so the
 * common one-segment case is one compare). A pthread key destructor
 * unregisters a thread's contexts at thread exit. Closing a segment marks
 * its contexts released (live_seg = NULL); their memory is reclaimed by
 * the owning thread's next lookup or exit, never under its feet.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

static pthread_key_t tls_key;
static pthread_once_t tls_once = PTHREAD_ONCE_INIT;
/*
 * Orders a thread-exit destructor against shg_seg_close in another thread
 * of the process. The destructor reads ctx->live_seg and then locks that
 * segment's ctx_lock; a close that released the context and freed the
 * handle in between would leave it locking freed memory. Both take this
 * lock (before ctx_lock): a destructor that found the handle live keeps
 * it from being freed until it is done, and a close that released the
 * contexts first leaves live_seg NULL (stored under both locks), which a
 * later destructor reads under this lock. Taken only on these rare paths.
 */
static pthread_mutex_t ctx_exit_lock = PTHREAD_MUTEX_INITIALIZER;
__thread struct shg__tctx *shg__tls_head SHG_TLS_IE;
#define tls_head shg__tls_head
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
/* Bumped in every forked child: handles opened before the fork belong to
 * the parent (its process slot, token and thread slots). */
_Atomic uint64_t shg__fork_gen;
static _Atomic uint64_t seg_ids = 1;

static uint64_t slot_byte(uint32_t p)
{
	return SHG_LIVE_LOCK_BASE + p;
}

bool shg__pslot_alive(struct shg_seg *seg, uint32_t p, uint64_t tok)
{
	int r;

	if (tok == 0 || p >= seg->max_procs)
		return false;
	/* Our own slot: its lock is ours, which F_OFD_GETLK does not show. */
	if (tok == seg->token && p == seg->pslot && shg__seg_own(seg))
		return true;
	r = shg__ofd_probe(seg->fd, slot_byte(p));
	if (r < 0)
		return true; /* never "dead" from an error */
	if (r == 0)
		return false;
	/*
	 * Held: by the owner of the token the slot carries now. Acquire, and
	 * after the probe: a claimer locks the byte before its CAS of the
	 * token, so a still-old token under a held lock means "a new owner is
	 * taking over": alive for a moment longer, never dead too early.
	 */
	return atomic_load_explicit(&seg->procs[p].token,
				    memory_order_acquire) == tok;
}

bool shg__token_alive(struct shg_seg *seg, uint64_t tok)
{
	uint32_t p;

	if (tok == 0 || tok == SHG_TOKEN_MIXED)
		return false;
	if (tok == seg->token && shg__seg_own(seg))
		return true;
	for (p = 0; p < seg->max_procs; p++)
		if (atomic_load_explicit(&seg->procs[p].token,
					 memory_order_acquire) == tok)
			return shg__pslot_alive(seg, p, tok);
	return false; /* released: tokens are never reused */
}

static bool pslot_alive(struct shg_seg *seg, uint32_t p, uint64_t token)
{
	return shg__pslot_alive(seg, p, token);
}

bool shg__tslot_alive(struct shg_seg *seg, uint32_t idx)
{
	struct shg_tslot *ts;
	uint64_t owner;
	uint32_t p;

	if (idx >= seg->max_threads)
		return false;
	ts = &seg->threads[idx];
	owner = atomic_load_explicit(&ts->owner, memory_order_acquire);
	if (owner == 0)
		return false;
	if (owner == seg->token && shg__seg_own(seg))
		return true;
	p = ts->proc;
	if (p < seg->max_procs &&
	    atomic_load_explicit(&seg->procs[p].token, memory_order_acquire) ==
		    owner)
		return pslot_alive(seg, p, owner);
	/*
	 * A claimer writes ts->proc just after its CAS of the owner, so a
	 * stale index does not mean a dead owner: the owner's token decides
	 * (a slot whose process slot was released has a dead token).
	 */
	return shg__token_alive(seg, owner);
}

/* Take a slot's recover_lock: free, or held by a dead releaser. */
static bool recover_trylock(struct shg_seg *seg, _Atomic uint64_t *lock,
			    uint64_t me)
{
	uint64_t cur = 0;

	if (atomic_compare_exchange_strong(lock, &cur, me))
		return true;
	/* Held by a live process, possibly another thread of ours: the
	 * token names processes, so that thread is releasing it now. */
	if (shg__token_alive(seg, cur))
		return false;
	return atomic_compare_exchange_strong(lock, &cur, me);
}

static void recover_unlock(_Atomic uint64_t *lock)
{
	atomic_store_explicit(lock, 0, memory_order_release);
}

/*
 * Give back thread slot @t owned by @owner (dead, or the exiting thread
 * itself when @ctx != NULL). Idempotent.
 */
static bool release_tslot(struct shg_seg *seg, uint32_t t, uint64_t owner,
			  struct shg__tctx *ctx, struct shg_recover_report *rep)
{
	struct shg_tslot *ts = &seg->threads[t];
	uint32_t spans;

	if (!recover_trylock(seg, &ts->recover_lock, seg->token))
		return false;
	if (atomic_load_explicit(&ts->owner, memory_order_acquire) != owner) {
		recover_unlock(&ts->recover_lock);
		return false;
	}
	shg__limbo_adopt(seg, t, rep);
	SHG_CRASH_POINT("recover.tslot_limbo_adopted");
	/* Leaving: free what is due before the spans are given up, so that
	 * blocks freed here land on our own spans, which may then go back to
	 * the arena empty. */
	shg__exit_reclaim(seg, ctx);
	spans = shg__alloc_abandon(seg, t, ctx);
	if (rep)
		rep->spans_adopted += spans;
	SHG_CRASH_POINT("recover.tslot_spans_given_up");
	/* The owner is gone (or leaving): its section, if any, is over. */
	atomic_store_explicit(&ts->epoch, 0, memory_order_release);
	atomic_store_explicit(&ts->blocked_since_ns, 0, memory_order_relaxed);
	atomic_store_explicit(&ts->blocked_bytes, 0, memory_order_relaxed);
	ts->tid = 0;
	/* Release: everything above is visible before the slot is free. */
	atomic_store_explicit(&ts->owner, 0, memory_order_release);
	SHG_CRASH_POINT("recover.tslot_freed");
	recover_unlock(&ts->recover_lock);
	if (owner != seg->token && ts->proc < seg->max_procs) {
		struct shg_pslot *ps = &seg->procs[ts->proc];

		if (atomic_load(&ps->token) == owner)
			atomic_fetch_sub(&ps->nthreads, 1);
	}
	return true;
}

/*
 * Give back what the dead owner @tok of process slot @p held: its thread
 * slots (by token), its root holds and pins (by slot index), its
 * membarrier count. Caller holds @p's recover_lock.
 */
static void release_owned(struct shg_seg *seg, uint32_t p, uint64_t tok,
			  struct shg_recover_report *rep)
{
	struct shg_pslot *ps = &seg->procs[p];
	uint32_t t, holds;

	for (t = 0; t < seg->max_threads; t++) {
		uint64_t o = atomic_load_explicit(&seg->threads[t].owner,
						  memory_order_acquire);

		if (o == tok && release_tslot(seg, t, tok, NULL, rep) && rep)
			rep->threads_released++;
	}
	SHG_CRASH_POINT("recover.proc_threads_released");
	holds = shg__roots_release_proc(seg, p);
	if (rep)
		rep->holds_released += holds;
	if (seg->ops && seg->ops->release_proc) /* upper layer: its pins */
		seg->ops->release_proc(seg, p);
	/* Clear the flavor mark before the count: a crash in between leaves
	 * the count too high (extra membarriers), never too low. */
	if (ps->flavor == SHG_FLAVOR_MEMBARRIER) {
		ps->flavor = SHG_FLAVOR_FENCE;
		atomic_thread_fence(memory_order_seq_cst);
		atomic_fetch_sub(&seg->hdr->asym_procs, 1);
	}
}

/* Release dead process slot @p (token @tok) and everything it owned. */
static void release_proc(struct shg_seg *seg, uint32_t p, uint64_t tok,
			 struct shg_recover_report *rep)
{
	struct shg_pslot *ps = &seg->procs[p];

	if (!recover_trylock(seg, &ps->recover_lock, seg->token))
		return;
	if (atomic_load_explicit(&ps->token, memory_order_acquire) != tok) {
		recover_unlock(&ps->recover_lock);
		return;
	}
	release_owned(seg, p, tok, rep);
	SHG_CRASH_POINT("recover.proc_owned_released");
	atomic_store_explicit(&ps->nthreads, 0, memory_order_relaxed);
	/* CAS: a process taking the slot over (it locked the slot's byte,
	 * so the dead owner's token is what it replaces) keeps it. */
	(void)atomic_compare_exchange_strong_explicit(&ps->token, &tok, 0,
						      memory_order_release,
						      memory_order_relaxed);
	recover_unlock(&ps->recover_lock);
	if (rep)
		rep->procs_released++;
}

int shg__release_dead(struct shg_seg *seg, struct shg_recover_report *rep)
{
	uint32_t p;
	uint32_t t;

	for (p = 0; p < seg->max_procs; p++) {
		uint64_t tok = atomic_load_explicit(&seg->procs[p].token,
						    memory_order_acquire);

		if (tok && !pslot_alive(seg, p, tok))
			release_proc(seg, p, tok, rep);
	}
	/* Thread slots whose process slot no longer carries their token
	 * (released or reused): orphans of a release that died half-way. */
	for (t = 0; t < seg->max_threads; t++) {
		uint64_t o = atomic_load_explicit(&seg->threads[t].owner,
						  memory_order_acquire);

		if (o && !shg__tslot_alive(seg, t) &&
		    release_tslot(seg, t, o, NULL, rep) && rep)
			rep->threads_released++;
	}
	return 0;
}

/* ---- process attach/detach -------------------------------------------- */

/*
 * Handles opened by this process, so that a forked child can close its
 * copies of their descriptors: an inherited descriptor shares the open
 * file description, whose OFD locks would otherwise keep the parent's
 * process slot "alive" after the parent died or exec'd.
 */
static pthread_mutex_t open_lock = PTHREAD_MUTEX_INITIALIZER;
static struct cds_list_head open_segs = CDS_LIST_HEAD_INIT(open_segs);

static void atfork_prepare(void)
{
	pthread_mutex_lock(&open_lock);
}

static void atfork_parent(void)
{
	pthread_mutex_unlock(&open_lock);
}

static void atfork_child(void)
{
	struct shg_seg *seg;

	/* The child inherits the forking thread's contexts, which name the
	 * parent's thread slots: forget them (their memory is the parent's
	 * copy, leaked in the child on purpose) and invalidate every
	 * inherited segment handle. */
	tls_head = NULL;
	/* Another thread of the parent may have held it at the fork. */
	pthread_mutex_init(&ctx_exit_lock, NULL);
	atomic_fetch_add(&shg__fork_gen, 1);
	/* Drop our references to the parent's open file descriptions: its
	 * OFD locks stay its own (they go when its last reference goes). The
	 * handles stay mapped until the child closes them. */
	cds_list_for_each_entry(seg, &open_segs, open_link) {
		if (seg->fd >= 0)
			close(seg->fd);
		seg->fd = -1;
	}
	pthread_mutex_unlock(&open_lock);
}

static void atfork_init(void)
{
	pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}

void shg__open_list_del(struct shg_seg *seg)
{
	pthread_mutex_lock(&open_lock);
	if (seg->open_link.next) {
		cds_list_del(&seg->open_link);
		seg->open_link.next = NULL;
	}
	pthread_mutex_unlock(&open_lock);
}

/* Fill our process slot @p (its token is ours already). */
static int pslot_fill(struct shg_seg *seg, uint32_t p)
{
	struct shg_pslot *ps = &seg->procs[p];

	ps->attached_ns = shg__realtime_ns();
	ps->pid = (int32_t)getpid();
	ps->pidns = shg__pidns_id();
	ps->uid = (uint32_t)geteuid();
	atomic_store_explicit(&ps->nthreads, 0, memory_order_relaxed);
	ps->flavor = seg->flavor;
	seg->pslot = p;
	/* Count membarrier readers before any of our sections can start: a
	 * reclaimer that sees the count issues membarrier(); seq_cst so the
	 * increment precedes our first slot store. */
	if (seg->flavor == SHG_FLAVOR_MEMBARRIER)
		atomic_fetch_add(&seg->hdr->asym_procs, 1);
	return 0;
}

/*
 * Every process slot is taken: take over one whose process is dead. Its
 * byte's OFD lock is free exactly when its owner is dead, and taking that
 * lock is the liveness check and the exclusive right to the slot at once.
 * The slot becomes ours by one CAS of its token (from then on we are a
 * live participant, which segment locks rely on: our announcements count),
 * then, under its recover_lock (a releaser that got there first finishes,
 * we wait for it), what the dead process held is released as release_proc
 * does: its threads (found by the old token), holds and pins (by slot
 * index: we hold none yet), its membarrier count. A death of ours in
 * between leaves a slot with our dead token: released normally, the old
 * owner's thread slots as orphans. A removed root whose last holder was
 * the dead process is finalized through the upper layer's drop hook,
 * which the handle carries from its creation (shg__upper_ops), so a
 * version a live pin still reaches is never plain-retired.
 */
#define TAKE_OVER_WAIT_MS 10000u

static int take_over_dead(struct shg_seg *seg, uint64_t tok)
{
	uint32_t p, waited;

	for (p = 0; p < seg->max_procs; p++) {
		struct shg_pslot *ps = &seg->procs[p];
		uint64_t old =
			atomic_load_explicit(&ps->token, memory_order_acquire);

		if (!old || shg__ofd_trylock(seg->fd, slot_byte(p)) != 0)
			continue;
		if (!atomic_compare_exchange_strong(&ps->token, &old, tok)) {
			(void)shg__ofd_unlock(seg->fd, slot_byte(p));
			continue;
		}
		atomic_store_explicit(&ps->locks, 0, memory_order_relaxed);
		seg->pslot = p;
		SHG_CRASH_POINT("takeover.claimed");
		/* A live releaser of @old finishes first. One stopped for
		 * good: give up (our token stays, dead once we close). */
		for (waited = 0; !recover_trylock(seg, &ps->recover_lock, tok);
		     waited++) {
			if (waited >= TAKE_OVER_WAIT_MS)
				return SHG_ESTUCK;
			usleep(1000);
		}
		release_owned(seg, p, old, NULL);
		SHG_CRASH_POINT("takeover.released");
		pslot_fill(seg, p);
		recover_unlock(&ps->recover_lock);
		return 0;
	}
	return SHG_ESLOTS;
}

/* Byte of the attach gate: shared while claiming a slot, exclusive while
 * resetting the locks of a segment from an earlier boot. */
static uint64_t gate_byte(void)
{
	return SHG_LIVE_LOCK_BASE - 1;
}

static int ofd_wait(int fd, uint64_t off, short type)
{
	struct flock fl;

	memset(&fl, 0, sizeof(fl));
	fl.l_type = type;
	fl.l_whence = SEEK_SET;
	fl.l_start = (off_t)off;
	fl.l_len = 1;
	while (fcntl(fd, F_OFD_SETLKW, &fl) < 0)
		if (errno != EINTR)
			return -errno;
	return 0;
}

/*
 * A file segment from an earlier boot (hdr.boot_id differs from ours, both
 * known): its lock words may name holders the kernel never saw die. Under
 * the exclusive gate, and only if no process slot's byte is locked (no
 * live participant: every attacher holds the gate shared until its slot is
 * claimed, so none can appear meanwhile), re-initialize the segment
 * mutexes and the stale announcement counts, then record our boot id.
 * Otherwise (a live participant: someone already attached in this boot
 * without being able to read the boot id) leave everything: take-over
 * handles orphaned words. An unreadable boot id decides nothing.
 */
static int boot_reset(struct shg_seg *seg, const uint8_t now[16])
{
	struct shg_hdr *h = seg->hdr;
	uint32_t p, i;
	int err;

	err = ofd_wait(seg->fd, gate_byte(), F_WRLCK);
	if (err)
		return err;
	if (memcmp(h->boot_id, now, 16) == 0)
		goto out; /* another opener did it */
	for (p = 0; p < seg->max_procs; p++)
		if (shg__ofd_probe(seg->fd, slot_byte(p)) != 0)
			goto out; /* alive, or unknown: do not guess */
	err = shg__mutex_init(&h->limbo_lock);
	if (!err)
		err = shg__mutex_init(&h->root_lock);
	if (!err)
		err = shg__mutex_init(&h->grow_lock);
	for (i = 0; !err && i < SHG_MAX_NODES; i++)
		err = shg__mutex_init(&seg->arenas[i].lock);
	for (p = 0; !err && p < seg->max_procs; p++)
		atomic_store_explicit(&seg->procs[p].locks, 0,
				      memory_order_relaxed);
	if (!err) {
		/* Release: the fresh locks before the new boot id. */
		atomic_thread_fence(memory_order_release);
		memcpy(h->boot_id, now, 16);
	}
out:
	(void)shg__ofd_unlock(seg->fd, gate_byte());
	return err;
}

static int claim_slot(struct shg_seg *seg, bool take_dead, uint64_t tok);

int shg__proc_attach(struct shg_seg *seg, bool take_dead)
{
	uint8_t now[16], zero[16] = { 0 };
	uint64_t tok = shg__new_token();
	int err;

	pthread_once(&atfork_once, atfork_init);
	seg->fork_gen = atomic_load(&shg__fork_gen);
	seg->id = atomic_fetch_add(&seg_ids, 1);
	seg->token = tok;
	seg->pslot = UINT32_MAX;
	if (seg->flavor == SHG_FLAVOR_MEMBARRIER) {
		err = shg__membarrier_register();
		if (err)
			return err;
	}
	pthread_mutex_lock(&open_lock);
	cds_list_add(&seg->open_link, &open_segs);
	pthread_mutex_unlock(&open_lock);
	if (take_dead && shg__boot_id(now) == 0 &&
	    memcmp(now, seg->hdr->boot_id, 16) != 0 &&
	    memcmp(seg->hdr->boot_id, zero, 16) != 0) {
		err = boot_reset(seg, now);
		if (err)
			return err;
	}
	err = ofd_wait(seg->fd, gate_byte(), F_RDLCK);
	if (err)
		return err;
	err = claim_slot(seg, take_dead, tok);
	(void)shg__ofd_unlock(seg->fd, gate_byte());
	return err;
}

static int claim_slot(struct shg_seg *seg, bool take_dead, uint64_t tok)
{
	uint32_t p;
	int err;

	for (p = 0; p < seg->max_procs; p++) {
		struct shg_pslot *ps = &seg->procs[p];
		uint64_t zero = 0;

		if (atomic_load_explicit(&ps->token, memory_order_relaxed))
			continue;
		/* The byte first: a live claimer holds it (skip the slot);
		 * a file system without OFD locks is an error. */
		err = shg__ofd_trylock(seg->fd, slot_byte(p));
		if (err == -EAGAIN)
			continue;
		if (err)
			return err;
		if (atomic_compare_exchange_strong(&ps->token, &zero, tok)) {
			atomic_store_explicit(&ps->locks, 0,
					      memory_order_relaxed);
			return pslot_fill(seg, p);
		}
		(void)shg__ofd_unlock(seg->fd, slot_byte(p));
	}
	return take_dead ? take_over_dead(seg, tok) : SHG_ESLOTS;
}

static void tls_key_init(void);

/* Release a context's slot and unlink it from seg->ctxs (ctx_lock held). */
static void ctx_release_locked(struct shg_seg *seg, struct shg__tctx *ctx)
{
	if (!atomic_load_explicit(&ctx->live_seg, memory_order_relaxed))
		return;
	SHG_ASSERT(ctx->seg == seg && ctx->idx < seg->max_threads);
	release_tslot(seg, ctx->idx, seg->token, ctx, NULL);
	atomic_fetch_sub(&seg->procs[seg->pslot].nthreads, 1);
	cds_list_del(&ctx->link);
	atomic_store_explicit(&ctx->live_seg, NULL, memory_order_release);
}

void shg__proc_detach(struct shg_seg *seg)
{
	struct shg__tctx *ctx, *tmp;
	struct shg_pslot *ps;

	/* A handle inherited across fork names the parent's slots, holds
	 * and pins: closing it in the child leaves them alone. */
	if (!shg__seg_own(seg) || seg->pslot >= seg->max_procs)
		return;
	ps = &seg->procs[seg->pslot];
	/* Holds first: dropping the last hold of a removed root retires its
	 * value, which needs this thread's context. */
	shg__roots_release_proc(seg, seg->pslot);
	if (seg->ops && seg->ops->release_proc) /* pins left open */
		seg->ops->release_proc(seg, seg->pslot);
	pthread_mutex_lock(&ctx_exit_lock);
	pthread_mutex_lock(&seg->ctx_lock);
	cds_list_for_each_entry_safe(ctx, tmp, &seg->ctxs, link)
		ctx_release_locked(seg, ctx);
	pthread_mutex_unlock(&seg->ctx_lock);
	pthread_mutex_unlock(&ctx_exit_lock);
	if (ps->flavor == SHG_FLAVOR_MEMBARRIER) {
		ps->flavor = SHG_FLAVOR_FENCE;
		atomic_thread_fence(memory_order_seq_cst);
		atomic_fetch_sub(&seg->hdr->asym_procs, 1);
	}
	/* Token first, then the byte: a claimer that gets the byte finds
	 * the slot free. */
	atomic_store_explicit(&ps->token, 0, memory_order_release);
	(void)shg__ofd_unlock(seg->fd, slot_byte(seg->pslot));
}

/* ---- thread contexts ------------------------------------------------- */

/* Free released contexts in this thread's list. */
static void tls_prune(void)
{
	struct shg__tctx **pp = &tls_head;

	while (*pp) {
		struct shg__tctx *c = *pp;

		if (atomic_load_explicit(&c->live_seg, memory_order_acquire)) {
			pp = &c->tls_next;
			continue;
		}
		*pp = c->tls_next;
		free(c);
	}
}

static void tls_destructor(void *unused)
{
	struct shg__tctx *c;

	pthread_mutex_lock(&ctx_exit_lock); /* the handle stays allocated */
	for (c = tls_head; c; c = c->tls_next) {
		struct shg_seg *seg = atomic_load_explicit(
			&c->live_seg, memory_order_acquire);

		if (!seg)
			continue;
		pthread_mutex_lock(&seg->ctx_lock);
		ctx_release_locked(seg, c);
		pthread_mutex_unlock(&seg->ctx_lock);
	}
	pthread_mutex_unlock(&ctx_exit_lock);
	tls_prune();
}

static void tls_key_init(void)
{
	if (pthread_key_create(&tls_key, tls_destructor) != 0)
		abort(); /* only at first use; nothing sane to do */
}

static int claim_tslot(struct shg_seg *seg, uint32_t *idx)
{
	uint32_t n = seg->max_threads;
	uint32_t start = (uint32_t)shg__gettid() % n;
	uint32_t i;

	for (i = 0; i < n; i++) {
		uint32_t t = (start + i) % n;
		struct shg_tslot *ts = &seg->threads[t];
		uint64_t zero = 0;

		if (atomic_load_explicit(&ts->owner, memory_order_relaxed))
			continue;
		if (!atomic_compare_exchange_strong(&ts->owner, &zero,
						    seg->token))
			continue;
		*idx = t;
		return 0;
	}
	return SHG_ESLOTS;
}

static int tctx_register(struct shg_seg *seg, struct shg__tctx **out)
{
	struct shg__tctx *ctx;
	struct shg_tslot *ts;
	uint32_t idx;
	int err;

	pthread_once(&tls_once, tls_key_init);
	ctx = aligned_alloc(64, (sizeof(*ctx) + 63) & ~(size_t)63);
	if (!ctx)
		return -ENOMEM;
	memset(ctx, 0, sizeof(*ctx));
	err = claim_tslot(seg, &idx);
	if (err == SHG_ESLOTS) {
		shg__release_dead(seg, NULL);
		err = claim_tslot(seg, &idx);
	}
	if (err) {
		free(ctx);
		return err;
	}
	ts = &seg->threads[idx];
	ts->proc = seg->pslot;
	ts->tid = (int32_t)shg__gettid();
	ts->registered_ns = shg__realtime_ns();
	ts->node = shg__numa_node_self();
	if (ts->node >= seg->nodes)
		ts->node %= seg->nodes;
	atomic_store_explicit(&ts->epoch, 0, memory_order_relaxed);
	atomic_fetch_add(&seg->procs[seg->pslot].nthreads, 1);

	ctx->hot.slot_epoch = (uint64_t *)&ts->epoch;
	ctx->hot.epoch = (const uint64_t *)&seg->hdr->epoch;
	ctx->hot.nest = 0;
	ctx->hot.fence = seg->flavor == SHG_FLAVOR_FENCE;
	ctx->seg = seg;
	ctx->slot = ts;
	ctx->idx = idx;
	ctx->node = ts->node;
	ctx->seg_id = seg->id;
	atomic_store_explicit(&ctx->live_seg, seg, memory_order_relaxed);

	pthread_mutex_lock(&seg->ctx_lock);
	cds_list_add(&ctx->link, &seg->ctxs);
	pthread_mutex_unlock(&seg->ctx_lock);
	ctx->tls_next = tls_head;
	tls_head = ctx;
	pthread_setspecific(tls_key, ctx);
	*out = ctx;
	return 0;
}

static inline bool ctx_matches(struct shg__tctx *c, struct shg_seg *seg)
{
	return atomic_load_explicit(&c->live_seg, memory_order_relaxed) ==
		       seg &&
	       c->seg_id == seg->id;
}

struct shg__tctx *shg__tctx_peek(struct shg_seg *seg)
{
	struct shg__tctx *c = tls_head;
	struct shg__tctx **pp;

	if (shg_likely(c && ctx_matches(c, seg)))
		return c;
	for (pp = &tls_head; (c = *pp); pp = &c->tls_next) {
		if (ctx_matches(c, seg)) {
			/* Move to front: the next lookup is one compare. */
			*pp = c->tls_next;
			c->tls_next = tls_head;
			tls_head = c;
			return c;
		}
	}
	return NULL;
}

int shg__tctx_get(struct shg_seg *seg, struct shg__tctx **out)
{
	struct shg__tctx *c = tls_head;

	if (shg_likely(c && ctx_matches(c, seg))) {
		*out = c;
		return 0;
	}
	c = shg__tctx_peek(seg);
	if (c) {
		*out = c;
		return 0;
	}
	if (seg->fork_gen != atomic_load(&shg__fork_gen))
		return -ECHILD; /* a handle inherited across fork */
	tls_prune();
	return tctx_register(seg, out);
}

/* ---- public thread API ---------------------------------------------- */

int shg_thread_register(struct shg_seg *seg)
{
	struct shg__tctx *ctx;

	if (!seg)
		return -EINVAL;
	return shg__tctx_get(seg, &ctx);
}

int shg_thread_unregister(struct shg_seg *seg)
{
	struct shg__tctx *ctx;

	if (!seg)
		return -EINVAL;
	ctx = shg__tctx_peek(seg);
	if (!ctx)
		return 0;
	if (ctx->hot.nest)
		return SHG_ENESTED;
	pthread_mutex_lock(&seg->ctx_lock);
	ctx_release_locked(seg, ctx);
	pthread_mutex_unlock(&seg->ctx_lock);
	tls_prune();
	return 0;
}

int shg_thread_get(struct shg_seg *seg, struct shg_thread **out)
{
	struct shg__tctx *ctx;
	int err;

	if (!seg || !out)
		return -EINVAL;
	err = shg__tctx_get(seg, &ctx);
	if (err)
		return err;
	*out = &ctx->hot;
	return 0;
}

/* ---- checker ------------------------------------------------------- */

/* Whether live slot @ps (token @tok) holds a valid flavor. A process
 * claims its slot (token CAS) before it fills the slot (pslot_fill), so a
 * check may look in between: a bad flavor counts only if it stays while
 * the token does (re-read a few times, yielding). */
static bool pslot_flavor_ok(struct shg_pslot *ps, uint64_t tok)
{
	int f, tries;

	for (tries = 0; tries < 64; tries++) {
		f = __atomic_load_n(&ps->flavor, __ATOMIC_RELAXED);
		if (f == SHG_FLAVOR_FENCE || f == SHG_FLAVOR_MEMBARRIER ||
		    atomic_load(&ps->token) != tok)
			return true;
		sched_yield();
	}
	return false;
}

int shg__registry_check(struct shg_seg *seg, shg_problem_fn fn, void *arg,
			struct shg_check_report *rep)
{
	uint64_t global = atomic_load(&seg->hdr->epoch);
	uint32_t p, t;

	for (p = 0; p < seg->max_procs; p++) {
		struct shg_pslot *ps = &seg->procs[p];
		uint64_t tok = atomic_load(&ps->token);

		if (!tok)
			continue;
		if (!pslot_alive(seg, p, tok)) {
			rep->dead_procs++;
			continue;
		}
		if (!pslot_flavor_ok(ps, tok))
			shg__problem(fn, arg, rep, SHG_ECORRUPT,
				     "process slot %u: bad flavor %d", p,
				     ps->flavor);
	}
	for (t = 0; t < seg->max_threads; t++) {
		struct shg_tslot *ts = &seg->threads[t];
		uint64_t o = atomic_load(&ts->owner);
		uint64_t e = atomic_load(&ts->epoch);

		if (!o && e) { /* claimed or released meanwhile? re-read */
			sched_yield();
			o = atomic_load(&ts->owner);
			if (e != atomic_load(&ts->epoch))
				continue;
		}
		if (!o) {
			if (e)
				shg__problem(fn, arg, rep, SHG_ECORRUPT,
					     "thread slot %u: free but in a "
					     "read section (epoch %llu)",
					     t, (unsigned long long)e);
			continue;
		}
		if (ts->proc >= seg->max_procs) {
			shg__problem(fn, arg, rep, SHG_ECORRUPT,
				     "thread slot %u: process index %u out "
				     "of range",
				     t, ts->proc);
			continue;
		}
		if (!shg__tslot_alive(seg, t)) {
			rep->dead_threads++;
			continue;
		}
		/* The slot's epoch was read after global: a reader that
		 * entered since may hold a newer one. Re-read the global
		 * epoch (monotonic) after the slot's. */
		if (e > global)
			global = atomic_load(&seg->hdr->epoch);
		if (e > global)
			shg__problem(fn, arg, rep, SHG_ECORRUPT,
				     "thread slot %u: epoch %llu ahead of the "
				     "global epoch %llu",
				     t, (unsigned long long)e,
				     (unsigned long long)global);
	}
	return 0;
}
