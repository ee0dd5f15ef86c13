/* SPDX-License-Identifier: MIT */
/*
 * The checker and recovery entry points.
 *
 * shg_check() verifies the invariants of every module (header, registry,
 * allocator, retired lists, root table) and the ones that cross modules:
 * a root's value is an allocated block that is not retired, and no block
 * is retired twice. Each module's checker reads shared memory defensively
 * (one load per field, validated before use), so a corrupt or forged
 * segment yields problems, never a crash. On a live segment concurrent
 * writers can make a check see a transient state; re-run to confirm.
 *
 * shg_recover() releases what dead processes held (slots, holds, retired
 * batches, spans, pins), then runs the live leak sweep (shg__sweep_live),
 * which frees blocks that dead processes allocated and nobody can reach,
 * while other processes keep working, then reclaims. shg__sweep is the
 * older full sweep, for quiescent segments only (tests, offline tools).
 * The graph layer (lib/gcheck.c) supplies the graph-aware parts: marking
 * through the type table, and the graph invariants of shg_check.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "util.h"

void shg__problem(shg_problem_fn fn, void *arg, struct shg_check_report *rep,
		  int code, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	if (rep)
		rep->problems++;
	if (!fn)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fn(arg, code, msg);
}

/* Re-validate the header against the geometry validated at open. */
static void check_header(struct shg_seg *seg, shg_problem_fn fn, void *arg,
			 struct shg_check_report *rep)
{
	struct shg_hdr *h = seg->hdr;
	uint64_t backed = atomic_load(&h->backed);
	uint64_t top = atomic_load(&h->heap_top);

	if (memcmp(h->magic, SHG_MAGIC, 8) != 0)
		shg__problem(fn, arg, rep, SHG_EMAGIC, "header: bad magic");
	if (h->version != SHG_FORMAT_VERSION || h->hdr_size != SHG_HDR_SIZE ||
	    h->layout_hash != shg__seg_layout_hash(seg))
		shg__problem(fn, arg, rep, SHG_ELAYOUT,
			     "header: version/size/layout hash changed");
	if (h->capacity != seg->capacity || h->nspans != seg->nspans ||
	    h->max_procs != seg->max_procs ||
	    h->max_threads != seg->max_threads ||
	    h->max_roots != seg->max_roots || h->heap_off != seg->heap_off)
		shg__problem(fn, arg, rep, SHG_ECORRUPT,
			     "header: geometry changed since open");
	if (backed < seg->heap_off || backed > seg->capacity)
		shg__problem(fn, arg, rep, SHG_ECORRUPT,
			     "header: backed %llu outside [heap, capacity]",
			     (unsigned long long)backed);
	if (top % SHG_SPAN_SIZE ||
	    top > (uint64_t)seg->nspans * SHG_SPAN_SIZE ||
	    seg->heap_off + top > backed)
		shg__problem(fn, arg, rep, SHG_ECORRUPT,
			     "header: heap top %llu not backed or misaligned",
			     (unsigned long long)top);
	if (atomic_load(&h->epoch) == 0)
		shg__problem(fn, arg, rep, SHG_ECORRUPT,
			     "header: global epoch is 0");
}

/* ---- sets filled by callbacks ------------------------------------------ */

/* An offset set filled by a void callback: the first failure is kept. */
struct cb_set {
	struct shg__offset_set s;
	int err; /* -ENOMEM once an add failed */
};

static void set_add(void *arg, uint64_t off)
{
	struct cb_set *c = arg;

	/* -EINVAL (offset 0) cannot happen: 0 is never a block. */
	if (shg__oset_add(&c->s, off) == -ENOMEM)
		c->err = -ENOMEM;
}

/* Retired entry -> its confirmation token (shg__limbo_walk_retired). */
struct cb_tokens {
	struct shg__omap m;
	int err; /* -ENOMEM once an add failed */
};

static void token_add(void *arg, uint64_t off, uint64_t token)
{
	struct cb_tokens *c = arg;

	if (shg__omap_add(&c->m, off, token, NULL) == -ENOMEM)
		c->err = -ENOMEM;
}

/*
 * Cross-module: root values are allocated blocks that are not retired.
 * In one read section: the retired entries, then the root values, then
 * a mark; a value found retired counts only if its entry was still in
 * the same life after the value was read (shg__limbo_confirmed), since a
 * retired version record may be freed and reused by a later commit while
 * the lists are read.
 */
static void check_roots_vs_retired(struct shg_seg *seg, shg_problem_fn fn,
				   void *arg, struct shg_check_report *rep)
{
	struct cb_tokens retired = { 0 };
	struct shg__limbo_mark then, now;
	uint64_t tok;
	uint32_t r, n = 0;

	struct {
		uint32_t r;
		uint64_t v, tok;
	} hit[8];

	if (shg_read_lock(seg))
		return;
	shg__limbo_mark(seg, &then);
	shg__limbo_walk_retired(seg, token_add, &retired);
	for (r = 0; !retired.err && r < seg->max_roots; r++) {
		struct shg_rslot *rs = &seg->roots[r];
		uint32_t st = atomic_load(&rs->state);
		uint64_t v = atomic_load(&rs->value);

		if (st == SHG_ROOT_FREE || v == 0 ||
		    !shg__omap_get(&retired.m, v, &tok))
			continue;
		if (n < sizeof(hit) / sizeof(hit[0]))
			hit[n++] = (typeof(hit[0])){ r, v, tok };
	}
	shg__limbo_mark(seg, &now);
	shg_read_unlock(seg);
	for (r = 0; r < n; r++)
		if (shg__limbo_confirmed(&then, &now, hit[r].tok))
			shg__problem(fn, arg, rep, SHG_ECORRUPT,
				     "root %u: value %llu is retired", hit[r].r,
				     (unsigned long long)hit[r].v);
	shg__omap_free(&retired.m);
}

int shg_check(struct shg_seg *seg, shg_problem_fn fn, void *arg,
	      struct shg_check_report *rep)
{
	struct shg_check_report local;

	if (!seg)
		return -EINVAL;
	if (!rep)
		rep = &local;
	memset(rep, 0, sizeof(*rep));
	check_header(seg, fn, arg, rep);
	if (rep->problems)
		return (int)rep->problems; /* geometry untrusted: stop */
	shg__registry_check(seg, fn, arg, rep);
	shg__alloc_check(seg, fn, arg, rep);
	shg__limbo_check(seg, fn, arg, rep);
	shg__roots_check(seg, fn, arg, rep);
	check_roots_vs_retired(seg, fn, arg, rep);
	if (seg->ops && seg->ops->check)
		seg->ops->check(seg, fn, arg, rep);
	return (int)rep->problems;
}

/* ---- marking ------------------------------------------------------------ */

/* A graph walk the upper layer defers to after the pass's read section. */
struct mark_later {
	void (*fn)(struct shg__marker *mk, struct shg_seg *seg, void *ctx);
	void *ctx;
};

struct shg__marker {
	struct shg_seg *seg;
	struct cb_set live; /* marked block offsets */
	int err; /* a walk failed: the marking is incomplete */
	SHG_VEC(struct mark_later) later; /* walks to run after the section */
	bool lists_again; /* a deferred walk saw a pin go: mark the lists */
};

void shg__mark(struct shg__marker *mk, uint64_t off)
{
	if (shg_block_size(mk->seg, (struct shg_off){ off }) > 0)
		set_add(&mk->live, off);
}

void shg__mark_fail(struct shg__marker *mk, int err)
{
	if (!mk->err)
		mk->err = err;
}

int shg__mark_later(struct shg__marker *mk,
		    void (*fn)(struct shg__marker *mk, struct shg_seg *seg,
			       void *ctx),
		    void *ctx)
{
	if (shg__vec_push(&mk->later, ((struct mark_later){ fn, ctx })))
		return -ENOMEM;
	return 0;
}

void shg__mark_lists_again(struct shg__marker *mk)
{
	mk->lists_again = true;
}

static void mark_cb(void *arg, uint64_t off)
{
	shg__mark(arg, off);
}

/*
 * Mark every aligned word of batch block @off that is a block start:
 * a batch being freed (tslot.reclaiming) keeps the entries past its count
 * in memory while its reclaimer frees them one by one, so conservatively
 * marking them all keeps the sweep from freeing a block a reclaimer is
 * about to free. Extra marks only make the sweep free less.
 */
static void mark_batch_words(struct shg__marker *mk, uint64_t off)
{
	struct shg_seg *seg = mk->seg;
	size_t bs = shg_block_size(seg, (struct shg_off){ off }), i;
	const uint64_t *w;

	if (!bs || !shg__off_ok(seg, off, bs, 16))
		return;
	shg__mark(mk, off);
	w = shg__at(seg, off);
	for (i = 0; i < bs / 8; i++) {
		uint64_t v = __atomic_load_n(&w[i], __ATOMIC_RELAXED);

		if (v && !(v & 15))
			shg__mark(mk, v);
	}
}

/*
 * One marking pass (caller in a read section): header ext[] blocks, root
 * values with their graphs, the graph layer's extra roots (type table,
 * pin table, every pinned or detached version), the caller's @mark, and
 * the retired/held lists and every word of the batches being reclaimed.
 */
static void mark_limbo(struct shg__marker *mk);

static void mark_all(struct shg__marker *mk,
		     void (*mark)(struct shg__marker *mk, struct shg_seg *seg,
				  uint64_t root_value, void *arg),
		     void *arg)
{
	struct shg_seg *seg = mk->seg;
	uint32_t r, i;

	for (i = 0; i < 8; i++)
		shg__mark(mk, atomic_load_explicit(&seg->hdr->ext[i],
						   memory_order_acquire));
	/* Pins before roots and limbo: an unpin is ordered after its owner's
	 * retires, so an acquire load that sees a pin gone sees those retire
	 * entries in the limbo walks below. */
	if (seg->ops && seg->ops->mark_extra)
		seg->ops->mark_extra(mk, seg);
	for (r = 0; r < seg->max_roots; r++) {
		struct shg_rslot *rs = &seg->roots[r];
		uint64_t v =
			atomic_load_explicit(&rs->value, memory_order_acquire);

		if (atomic_load_explicit(&rs->state, memory_order_acquire) ==
			    SHG_ROOT_FREE ||
		    v == 0)
			continue;
		shg__mark(mk, v);
		if (seg->ops && seg->ops->mark_value)
			seg->ops->mark_value(mk, seg, r, v);
		if (mark)
			mark(mk, seg, v, arg);
	}
	mark_limbo(mk);
}

/*
 * The retired and held lists, and every word of the batches being
 * reclaimed. The walk only adds offsets to a process-local set. Its
 * length is bounded by the retire budget for the retired FIFO and by the
 * garbage that live pins keep for the held list; writers wait for
 * limbo_lock only when they seal or pop a batch, so the hold is short
 * next to a graph walk.
 */
static void mark_limbo(struct shg__marker *mk)
{
	struct shg_seg *seg = mk->seg;
	uint32_t r;
	int err;

	/* Under limbo_lock, which every move of a batch or of entries
	 * between lists takes (seal, pop, split into held batches, pop of a
	 * held batch), so no batch or entry is between two lists while we
	 * walk; only appends to open batches and the frees of batches being
	 * reclaimed go on (the latter covered by mark_batch_words). Nothing
	 * waits for a grace period under this lock, so taking it inside a
	 * read section cannot deadlock. */
	err = shg__lock(seg, &seg->hdr->limbo_lock, shg__limbo_repair);
	if (err) {
		shg__mark_fail(mk, err);
		return;
	}
	shg__limbo_walk(seg, mark_cb, mk);
	for (r = 0; r < seg->max_threads; r++) {
		struct shg_tslot *ts = &seg->threads[r];

		mark_batch_words(mk,
				 atomic_load_explicit(&ts->reclaiming,
						      memory_order_acquire));
		/* After reclaiming: the owner sets freeing before it drops
		 * the record and clears it after the free (epoch.c). */
		mark_batch_words(mk,
				 atomic_load_explicit(&ts->freeing,
						      memory_order_acquire));
	}
	shg__unlock(seg, &seg->hdr->limbo_lock);
	if (mk->live.err)
		shg__mark_fail(mk, mk->live.err);
}

/*
 * One marking pass in bounded read sections. mark_all() runs inside a
 * short read section: it marks what it finds and the upper layer, rather
 * than walk a graph there, pins each root's current version (or notes a
 * pin record of another process) and defers the walk with
 * shg__mark_later(). The deferred walks run after that section: a walk of
 * our own pin needs no read section (the pin keeps every node of its
 * version allocated, and versions are immutable), a walk of another
 * process's pin runs in read sections of bounded length and re-validates
 * the record (lib/gcheck.c). If such a walk saw its record change
 * (shg__mark_lists_again), the limbo lists are marked once more, in a
 * read section of their own: the acquire load that saw the change is
 * sequenced before that walk, so the retire entries that pin's owner made
 * before its unpin (release) are marked (see THE LIVE LEAK SWEEP). Only
 * then: the held list may by now hold every node our own pins kept, and
 * it is walked under limbo_lock. A deferral that cannot be recorded (no
 * memory) fails the pass: nothing is freed.
 */
static int mark_pass(struct shg__marker *mk,
		     void (*mark)(struct shg__marker *mk, struct shg_seg *seg,
				  uint64_t root_value, void *arg),
		     void *arg)
{
	size_t i;
	int err = shg_read_lock(mk->seg);

	if (err)
		return err;
	mark_all(mk, mark, arg);
	shg_read_unlock(mk->seg);
	/* Every deferred walk runs (its ctx holds a pin to release). */
	for (i = 0; i < mk->later.n; i++)
		mk->later.v[i].fn(mk, mk->seg, mk->later.v[i].ctx);
	if (mk->lists_again && !mk->err) {
		err = shg_read_lock(mk->seg);
		if (err)
			shg__mark_fail(mk, err);
		else {
			mark_limbo(mk);
			shg_read_unlock(mk->seg);
		}
	}
	free(mk->later.v);
	mk->later.v = NULL;
	mk->later.n = mk->later.cap = 0;
	if (mk->live.err)
		shg__mark_fail(mk, mk->live.err);
	return mk->err;
}

/* ---- full sweep (quiescent) ------------------------------------------- */

struct sweep_state {
	const struct shg__offset_set *live; /* marked */
	struct shg__offvec dead; /* unreachable blocks */
	int err; /* -ENOMEM once a push failed */
	int64_t bytes;
};

static void sweep_cb(void *arg, uint64_t off, uint64_t size)
{
	struct sweep_state *st = arg;

	if (shg__oset_has(st->live, off))
		return;
	if (shg__offvec_push(&st->dead, off))
		st->err = -ENOMEM;
	st->bytes += (int64_t)size;
}

int64_t shg__sweep(struct shg_seg *seg,
		   void (*mark)(struct shg__marker *mk, struct shg_seg *seg,
				uint64_t root_value, void *arg),
		   void *arg, bool dry_run)
{
	struct shg__marker mk = { .seg = seg };
	struct sweep_state st = { 0 };
	struct shg__tctx *ctx = NULL;
	size_t i;
	int err;

	err = mark_pass(&mk, mark, arg);
	if (!err)
		err = shg__alloc_walk(seg, sweep_cb,
				      (st.live = &mk.live.s, &st));
	if (!err)
		err = st.err;
	if (!err && !dry_run && st.dead.n)
		err = shg__tctx_get(seg, &ctx);
	if (!err && !dry_run)
		for (i = 0; i < st.dead.n; i++)
			shg__free_now(seg, ctx, st.dead.v[i]);
	shg__oset_free(&mk.live.s);
	free(st.dead.v);
	return err ? err : st.bytes;
}

/* ---- live sweep ------------------------------------------------------- */

/*
 * THE LIVE LEAK SWEEP (shg__sweep_live): free what dead processes
 * allocated and nobody can reach, while other processes keep working.
 *
 * Which blocks are candidates. Recovery sets a dead thread's SMALL spans
 * aside (owner SHG_OWNER_SWEEP: on no list, never adopted, so nobody
 * allocates from them) when every block in them was allocated by the dead
 * process (span.owner_token; spans adopted across processes are MIXED and
 * only abandoned). A LARGE block records its allocating process's token
 * before its word is committed. Candidates are the allocated blocks of
 * SWEEP spans and the large blocks whose token is dead: every candidate
 * was allocated by a dead process, and no new candidate can appear except
 * by another death.
 *
 * The sweep: (1) walk the candidates (and note the SWEEP spans), THEN
 * mark pass M1 inside a read section (below); C = the candidates not in
 * M1; (2) shg_synchronize: a full grace period; (3) mark pass M2 in a new
 * read section; walk the candidates again; (4) free each block of C that
 * is still allocated, still a candidate and not in M2; (5) release the
 * SWEEP spans seen in (1) to their arena's abandoned list. The order in
 * (1) matters: every block of C was allocated by a process that was dead
 * before M1 began, so nothing in C is published after M1 reads the roots
 * (candidates walked after M1 could include spans that a concurrent
 * recovery set aside for a process that died during M1, and blocks that
 * process published after M1 read the roots: M2 could then miss them the
 * way M1 did).
 * A marking pass marks: the header's ext[] blocks; the graph layer's own
 * blocks (type table and records, pin table); every version named by a pin
 * record (pinned, txn bases, detached versions) and everything reachable
 * from it; every root value (LIVE or REMOVED) and, if it is a version
 * record, its whole graph; every retired and held entry and batch block,
 * and every word of batches being reclaimed. Reads of the roots, of the
 * pin records and of the lists happen inside the pass's short read
 * section S; the graphs are walked after S: a root's version through a
 * pin taken in S on the value loaded in S (the walk marks exactly what
 * that version reached at its load: versions are immutable and the pin
 * keeps every node of it), a version pinned by another process in bounded
 * sections that re-validate its record (lib/gcheck.c); if such a walk saw
 * its record change, the lists are marked once more, in a section of
 * their own. A walk that fails (corrupt or
 * changing data) fails the sweep: nothing is freed, the next recovery
 * tries again. Extra marks are harmless (the sweep frees less).
 *
 * Why a block b freed in (4) cannot be in use by a live process. b was
 * allocated by a thread that was dead before M1 began, so it was never
 * published after that, and never will be.
 *  - Never published: no live process ever had its offset (it was in no
 *    root, version, pin or retire list), and no one can get it later.
 *  - Reachable from a root's current version: a commit replaces nodes
 *    only along the chain of current versions (a txn commits by CAS on
 *    its base, and a node that left the current version is never linked
 *    again), so if b is in no current version when M1 reads the roots it
 *    is in none afterwards. M1 read every root inside its section S and
 *    pinned the version it loaded, so b reachable then is in that version,
 *    which M1's walk after S marks.
 *  - In a pinned or detached version: a pin is claimed inside a read
 *    section on the version loaded there. A pin whose section ended before
 *    M2 began is visible to M2 (its section's release store of the slot
 *    epoch is read by the grace period's acquire scan, which happens
 *    before M2); a pin whose section began after the grace period began
 *    loaded a version that was current after M1, which does not reach b.
 *    While a pin is visible, M2 walks its version and marks b; if that
 *    walk sees the record changed (acquire load), the owner unpinned, and
 *    its retires, made before its unpin (release), are in the lists M2
 *    marks once more after that load (as for a pin seen gone, below); a
 *    b nobody retired is then in no pinned and no current version. A detached
 *    version is created (its pin recorded) before its base is unpinned.
 *  - Retired or held: in a retire batch (open, sealed, held or being
 *    reclaimed) when M2 walks them, so marked. Retired after M2 walked the
 *    lists: only a committer retires a published node, after its CAS and
 *    before unpinning its base, and its base reaches b; M2 reads the pins
 *    first, so it either sees that pin (b marked) or, by the release of
 *    the unpin and the acquire load that saw it gone, the retire entry.
 *    Freed by a reclaimer before M2: then it is not allocated when (3)
 *    walks the candidates again, or it is in a batch being reclaimed,
 *    whose words are all marked.
 *  - A reader in a read section that started before M1 and still holds
 *    an unlinked b: the grace period in (2) waited for it to end.
 *    Readers that entered after (2) began load roots that no longer reach
 *    b; pin holders are covered above.
 *  - A removed root's value in flight to the drop hook (exchanged out of
 *    the slot, not yet retired): covered only if the finalizing process
 *    does the exchange and the drop inside one read section (the grace
 *    period then waits for the drop, whose retires M2 sees).
 *  - A retire batch block that a reclaimer has finished: the reclaimer
 *    names it in tslot.freeing before it drops its record
 *    (tslot.reclaiming) and clears that after the free; M2 reads both,
 *    in that order, with acquire: it marks the block, or the free
 *    happened before (3) walks the candidates again.
 *  - A commit's staged retires (epoch_stage.c): their batches are named
 *    by the slot (stage_chain) or linked in the FIFO under limbo_lock, and
 *    their entries are nodes of the committer's pinned base.
 *  - Another sweeper: sweeps are serialized by hdr.sweep_lock (a dead
 *    holder's lock is taken over; its frees were of blocks unreachable
 *    then and now, and the next sweep sees them free).
 * A crash of the sweeper leaves SWEEP spans and some candidates: the next
 * recovery sweeps again (idempotent: freed blocks are no longer allocated,
 * unfreed ones are candidates again).
 */

struct cand {
	uint64_t off, size, token; /* token: large blocks' owner */
};

struct live_sweep {
	struct shg_seg *seg;
	SHG_VEC(struct cand) c; /* candidates, in walk (= address) order */
	SHG_VEC(uint32_t) spans; /* SHG_OWNER_SWEEP spans seen */
	bool oom;
};

static void cand_add(void *arg, uint64_t off, uint64_t size)
{
	struct live_sweep *ls = arg;

	if (shg__vec_push(&ls->c,
			  ((struct cand){
				  off, size,
				  size > SHG_SMALL_MAX ?
					  shg__alloc_owner_token(ls->seg, off) :
					  0 })))
		ls->oom = true;
}

/* Keep the candidates that @m left unmarked. */
static void drop_marked(struct live_sweep *ls, const struct shg__marker *m)
{
	size_t i, k = 0;

	for (i = 0; i < ls->c.n; i++)
		if (!shg__oset_has(&m->live.s, ls->c.v[i].off))
			ls->c.v[k++] = ls->c.v[i];
	ls->c.n = k;
}

static void span_add(void *arg, uint32_t idx)
{
	struct live_sweep *ls = arg;

	if (shg__vec_push(&ls->spans, idx))
		ls->oom = true;
}

/* Second candidate walk: the sweepable blocks allocated now. */
static void still_add(void *arg, uint64_t off, uint64_t size)
{
	(void)size;
	set_add(arg, off);
}

static bool sweep_trylock(struct shg_seg *seg)
{
	_Atomic uint64_t *l = &seg->hdr->sweep_lock;
	uint64_t cur = 0;

	if (atomic_compare_exchange_strong(l, &cur, seg->token))
		return true;
	if (cur == seg->token || shg__token_alive(seg, cur))
		return false; /* another thread of ours, or a live sweeper */
	return atomic_compare_exchange_strong(l, &cur, seg->token);
}

static void sweep_unlock(struct shg_seg *seg)
{
	atomic_store_explicit(&seg->hdr->sweep_lock, 0, memory_order_release);
}

/* Steps (3)-(4): free the candidates M2 and the second walk allow. */
static int64_t sweep_free(struct live_sweep *ls, struct shg__marker *m2,
			  bool dry_run)
{
	struct cb_set now = { 0 };
	struct shg__tctx *ctx = NULL;
	int64_t bytes = 0;
	size_t i;
	int err;

	err = shg__alloc_walk_sweepable(ls->seg, still_add, NULL, &now);
	if (!err)
		err = now.err;
	if (!err && !dry_run)
		err = shg__tctx_get(ls->seg, &ctx);
	if (err) {
		shg__oset_free(&now.s);
		return err;
	}
	for (i = 0; i < ls->c.n; i++) {
		const struct cand *c = &ls->c.v[i];

		if (shg__oset_has(&m2->live.s, c->off) ||
		    !shg__oset_has(&now.s, c->off))
			continue;
		if (dry_run ||
		    shg__alloc_sweep_free(ls->seg, ctx, c->off, c->token) == 0)
			bytes += (int64_t)c->size;
		SHG_CRASH_POINT("sweep.candidate_done");
	}
	shg__oset_free(&now.s);
	return bytes;
}

/**
 * shg__sweep_live() - the live leak sweep (see THE LIVE LEAK SWEEP).
 * @dry_run: count what would be freed, free nothing, release no span.
 * Context: outside read sections. Return: bytes freed (>= 0), -EBUSY
 * (another live process sweeps), SHG_EBUDGET (a reader stalls the grace
 * period), -ENOMEM, or a marking error (nothing freed).
 */
int64_t shg__sweep_live(struct shg_seg *seg, bool dry_run)
{
	struct shg__marker m1 = { .seg = seg }, m2 = { .seg = seg };
	struct live_sweep ls = { .seg = seg };
	int64_t rc;
	size_t i;
	int err;

	if (!sweep_trylock(seg))
		return -EBUSY;
	SHG_CRASH_POINT("sweep.locked");
	/* The candidates first, then M1: see step (1). */
	err = shg__alloc_walk_sweepable(seg, cand_add, span_add, &ls);
	if (!err && ls.oom)
		err = -ENOMEM;
	if (!err)
		err = mark_pass(&m1, NULL, NULL);
	if (!err)
		drop_marked(&ls, &m1);
	SHG_CRASH_POINT("sweep.marked");
	if (!err && ls.c.n)
		err = shg_synchronize(seg, 2000);
	SHG_CRASH_POINT("sweep.synced");
	if (!err && ls.c.n)
		err = mark_pass(&m2, NULL, NULL);
	rc = err;
	if (!err)
		rc = ls.c.n ? sweep_free(&ls, &m2, dry_run) : 0;
	SHG_CRASH_POINT("sweep.freed");
	if (rc >= 0 && !dry_run)
		for (i = 0; i < ls.spans.n; i++)
			(void)shg__span_sweep_release(seg, ls.spans.v[i]);
	SHG_CRASH_POINT("sweep.spans_released");
	sweep_unlock(seg);
	shg__oset_free(&m1.live.s);
	shg__oset_free(&m2.live.s);
	free(ls.c.v);
	free(ls.spans.v);
	return rc;
}

int shg_recover(struct shg_seg *seg, struct shg_recover_report *rep)
{
	struct shg_recover_report local;
	struct shg__tctx *ctx;
	int64_t n;

	if (!seg)
		return -EINVAL;
	ctx = shg__tctx_peek(seg);
	if (ctx && ctx->hot.nest)
		return SHG_ENESTED;
	if (!rep)
		rep = &local;
	memset(rep, 0, sizeof(*rep));
	shg__release_dead(seg, rep);
	SHG_CRASH_POINT("recover.released_dead");
	n = shg__sweep_live(seg, false);
	if (n > 0)
		rep->leaked_freed = (uint64_t)n;
	else if (n < 0)
		rep->sweep_err = (int32_t)n;
	SHG_CRASH_POINT("recover.swept");
	shg_reclaim(seg);
	return 0;
}
