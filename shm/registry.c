/* SPDX-License-Identifier: MIT */
/*
 * Process and thread registry: who is attached to a segment, whether they
 * are still alive, and giving back what the dead held.
 *
 * THEORY OF OPERATION
 *
 * Claiming. A process claims a process slot with one CAS of its token
 * (pid + start time, see platform.c) into slot.token; a thread claims a
 * thread slot with one CAS of its process token into slot.owner. A claim is
 * a single atomic step, so a crash leaves a slot either free or owned by a
 * token that a liveness check will later find dead.
 *
 * Liveness. A process slot is alive iff its token is alive (the pid exists
 * and has the same start time) and it was attached during this boot (a
 * file-backed segment outlives reboots; a slot attached before the boot
 * time is dead whatever its token says). A thread slot is alive iff its
 * owner token is the token of a live process slot. Liveness is checked
 * only on slow paths (open, synchronize waiting on a slot, recover).
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
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "graph_internal.h"

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

/* Boot time (CLOCK_REALTIME ns) from /proc/stat "btime", 0 if unknown. */
static uint64_t boot_time_ns(void)
{
	static _Atomic uint64_t cached;
	uint64_t v = atomic_load_explicit(&cached, memory_order_relaxed);
	char line[256];
	FILE *f;

	if (v)
		return v;
	f = fopen("/proc/stat", "re");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long bt;

		if (sscanf(line, "btime %llu", &bt) == 1) {
			v = (uint64_t)bt * 1000000000ull;
			break;
		}
	}
	fclose(f);
	atomic_store_explicit(&cached, v, memory_order_relaxed);
	return v;
}

static bool pslot_alive(struct shg_seg *seg, uint32_t p, uint64_t token)
{
	struct shg_pslot *ps = &seg->procs[p];
	uint64_t at;
	uint64_t bt;

	if (token == 0)
		return false;
	if (token == seg->token && p == seg->pslot)
		return true;
	if (!shg__token_alive(token))
		return false;
	/* attached_ns is written just after the claim: 0 means "being set
	 * up" by a live claimer. Otherwise it must be after this boot began
	 * (btime has one-second resolution). */
	at = ps->attached_ns;
	bt = boot_time_ns();
	if (at != 0 && bt != 0 && at + 1000000000ull < bt)
		return false;
	return true;
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
	if (owner == seg->token)
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
	return shg__token_alive(owner);
}

/* Take a slot's recover_lock: free, or held by a dead releaser. */
static bool recover_trylock(_Atomic uint64_t *lock, uint64_t me)
{
	uint64_t cur = 0;

	if (atomic_compare_exchange_strong(lock, &cur, me))
		return true;
	/* Held by a live process, possibly another thread of ours: the
	 * token names processes, so that thread is releasing it now. */
	if (shg__token_alive(cur))
		return false;
	return atomic_compare_exchange_strong(lock, &cur, me);
}

static void recover_unlock(_Atomic uint64_t *lock)
{
	atomic_store_explicit(lock, 0, memory_order_release);
}

bool shg__pid_participates(struct shg_seg *seg, pid_t pid)
{
	uint32_t p;

	for (p = 0; p < seg->max_procs; p++) {
		struct shg_pslot *ps = &seg->procs[p];
		uint64_t tok =
			atomic_load_explicit(&ps->token, memory_order_acquire);

		if (tok && (pid_t)(tok & SHG_TOKEN_PID_MASK) == pid &&
		    pslot_alive(seg, p, tok))
			return true;
	}
	return false;
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

	if (!recover_trylock(&ts->recover_lock, seg->token))
		return false;
	if (atomic_load_explicit(&ts->owner, memory_order_acquire) != owner) {
		recover_unlock(&ts->recover_lock);
		return false;
	}
	shg__limbo_adopt(seg, t, rep);
	spans = shg__alloc_abandon(seg, t, ctx);
	if (rep)
		rep->spans_adopted += spans;
	/* The owner is gone (or leaving): its section, if any, is over. */
	atomic_store_explicit(&ts->epoch, 0, memory_order_release);
	atomic_store_explicit(&ts->blocked_since_ns, 0, memory_order_relaxed);
	atomic_store_explicit(&ts->blocked_bytes, 0, memory_order_relaxed);
	ts->tid = 0;
	/* Release: everything above is visible before the slot is free. */
	atomic_store_explicit(&ts->owner, 0, memory_order_release);
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
	holds = shg__roots_release_proc(seg, p);
	if (rep)
		rep->holds_released += holds;
	shg__pins_release_proc(seg, p); /* graph layer: its pins */
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

	if (!recover_trylock(&ps->recover_lock, seg->token))
		return;
	if (atomic_load_explicit(&ps->token, memory_order_acquire) != tok) {
		recover_unlock(&ps->recover_lock);
		return;
	}
	release_owned(seg, p, tok, rep);
	atomic_store_explicit(&ps->nthreads, 0, memory_order_relaxed);
	atomic_store_explicit(&ps->token, 0, memory_order_release);
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

static void atfork_child(void)
{
	/* The child inherits the forking thread's contexts, which name the
	 * parent's thread slots: forget them (their memory is the parent's
	 * copy, leaked in the child on purpose) and invalidate every
	 * inherited segment handle. */
	tls_head = NULL;
	/* Another thread of the parent may have held it at the fork. */
	pthread_mutex_init(&ctx_exit_lock, NULL);
	atomic_fetch_add(&shg__fork_gen, 1);
}

static void atfork_init(void)
{
	pthread_atfork(NULL, NULL, atfork_child);
}

/* Fill our process slot @p (its token is ours already). */
static int pslot_fill(struct shg_seg *seg, uint32_t p)
{
	struct shg_pslot *ps = &seg->procs[p];

	ps->attached_ns = shg__realtime_ns();
	ps->pid = (int32_t)getpid();
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
 * Every process slot is taken: take over one whose process is dead. The
 * slot becomes ours by one CAS of its token (from then on we are a live
 * participant, which segment locks rely on), then, still under its
 * recover_lock, what the dead process held is released as release_proc
 * does: its threads (found by the old token), holds and pins (by slot
 * index: we hold none yet), its membarrier count. A death of ours in
 * between leaves a slot with our dead token: released normally, the old
 * owner's thread slots as orphans. No thread context is needed: a removed
 * root whose last holder was the dead process is not finalized here (no
 * drop hook is installed yet, and a plain retire would free a version a
 * live pin still reaches); shg_seg_open finalizes it once the graph layer
 * attached (shg__roots_finalize_pending).
 */
static int take_over_dead(struct shg_seg *seg, uint64_t tok)
{
	uint32_t p;

	for (p = 0; p < seg->max_procs; p++) {
		struct shg_pslot *ps = &seg->procs[p];
		uint64_t old =
			atomic_load_explicit(&ps->token, memory_order_acquire);

		if (!old || pslot_alive(seg, p, old) ||
		    !recover_trylock(&ps->recover_lock, tok))
			continue;
		if (!atomic_compare_exchange_strong(&ps->token, &old, tok)) {
			recover_unlock(&ps->recover_lock);
			continue;
		}
		release_owned(seg, p, old, NULL);
		pslot_fill(seg, p);
		recover_unlock(&ps->recover_lock);
		return 0;
	}
	return SHG_ESLOTS;
}

int shg__proc_attach(struct shg_seg *seg, bool take_dead)
{
	uint64_t tok = shg__self_token();
	uint32_t p;

	if (tok == 0)
		return -ESRCH;
	pthread_once(&atfork_once, atfork_init);
	seg->fork_gen = atomic_load(&shg__fork_gen);
	seg->id = atomic_fetch_add(&seg_ids, 1);
	seg->token = tok;
	if (seg->flavor == SHG_FLAVOR_MEMBARRIER) {
		int err = shg__membarrier_register();

		if (err)
			return err;
	}
	for (p = 0; p < seg->max_procs; p++) {
		struct shg_pslot *ps = &seg->procs[p];
		uint64_t zero = 0;

		if (atomic_load_explicit(&ps->token, memory_order_relaxed))
			continue;
		if (atomic_compare_exchange_strong(&ps->token, &zero, tok))
			return pslot_fill(seg, p);
	}
	return take_dead ? take_over_dead(seg, tok) : SHG_ESLOTS;
}

static void tls_key_init(void);

/* Release a context's slot and unlink it from seg->ctxs (ctx_lock held). */
static void ctx_release_locked(struct shg_seg *seg, struct shg__tctx *ctx)
{
	if (!atomic_load_explicit(&ctx->live_seg, memory_order_relaxed))
		return;
	release_tslot(seg, ctx->idx, seg->token, ctx, NULL);
	atomic_fetch_sub(&seg->procs[seg->pslot].nthreads, 1);
	cds_list_del(&ctx->link);
	atomic_store_explicit(&ctx->live_seg, NULL, memory_order_release);
}

void shg__proc_detach(struct shg_seg *seg)
{
	struct shg__tctx *ctx, *tmp;
	struct shg_pslot *ps = &seg->procs[seg->pslot];

	/* Holds first: dropping the last hold of a removed root retires its
	 * value, which needs this thread's context. */
	shg__roots_release_proc(seg, seg->pslot);
	shg__pins_release_proc(seg, seg->pslot); /* pins left open */
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
	atomic_store_explicit(&ps->token, 0, memory_order_release);
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
		if ((uint64_t)ps->pid != (tok & SHG_TOKEN_PID_MASK))
			shg__problem(fn, arg, rep, SHG_ECORRUPT,
				     "process slot %u: pid %d does not match "
				     "its token",
				     p, ps->pid);
		if (ps->flavor != SHG_FLAVOR_FENCE &&
		    ps->flavor != SHG_FLAVOR_MEMBARRIER)
			shg__problem(fn, arg, rep, SHG_ECORRUPT,
				     "process slot %u: bad flavor %d", p,
				     ps->flavor);
	}
	for (t = 0; t < seg->max_threads; t++) {
		struct shg_tslot *ts = &seg->threads[t];
		uint64_t o = atomic_load(&ts->owner);
		uint64_t e = atomic_load(&ts->epoch);

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
		if (e > global)
			shg__problem(fn, arg, rep, SHG_ECORRUPT,
				     "thread slot %u: epoch %llu ahead of the "
				     "global epoch %llu",
				     t, (unsigned long long)e,
				     (unsigned long long)global);
	}
	return 0;
}
