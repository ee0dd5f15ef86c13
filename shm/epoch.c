/* SPDX-License-Identifier: MIT */
/*
 * Read-side critical sections, grace periods and deferred reclamation
 * across processes. Readers publish the global epoch in their own thread
 * slot; writers retire unlinked blocks into per-thread batches that live in
 * the segment; sealed batches wait in one FIFO until no reader that could
 * still reach them is left; survivors finish what dead threads left behind.
 *
 * THEORY OF OPERATION
 *
 * State: the global epoch E (hdr.epoch, >= 1, only grows); per thread slot
 * s the word s.epoch (0 = quiescent, else the value of E read on entry);
 * per thread one open batch (s.limbo_open); the FIFO of sealed batches
 * (hdr.limbo_head .. limbo_tail, under limbo_lock), each with a tag.
 *
 *   read_lock    e = load_acquire(E); s.epoch = e; F_r
 *                F_r: full fence (fence flavor) or compiler barrier
 *                (membarrier flavor)
 *   read_unlock  store_release(s.epoch, 0)
 *   retire(b)    b is already unlinked (release CAS of a root); append it
 *                to the open batch
 *   seal(B)      F_w; under limbo_lock: tag = fetch_add(E, 1); B.tag = tag;
 *                append B to the FIFO
 *   reclaim      E0 = load_acquire(E); F_x (full fence, plus membarrier()
 *                if some process reads in the membarrier flavor);
 *                m = min(E0, every non-zero s.epoch) (acquire loads);
 *                pop and free every FIFO batch with tag < m.
 *
 * Claim: reclaim never frees a block that a read section can reach. Let b
 * be in batch B with tag t < m, unlinked before B's seal, and R a section.
 *  (0) t < E0: the reclaimer's acquire load of E read the seal's RMW or a
 *      later one (all writes of E are RMWs: one release sequence), so the
 *      seal's F_w happens before F_x and precedes it in the SC order.
 *  (1) The scan saw R's slot at e <= t: then m <= t, B is not freed.
 *  (2) The scan saw e > t: R's acquire load of E read the seal's RMW or a
 *      later one, so the unlink happens before R's loads: R cannot reach b.
 *  (3) The scan saw 0. Either R had ended (its release store of 0 is read
 *      by the scan's acquire load, so R's accesses to b happen before the
 *      free), or R's store of e was not visible yet. Then F_r and F_x are
 *      SC fences: if F_r precedes F_x, the scan after F_x would have seen
 *      R's store; so F_x precedes F_r, hence F_w (0) precedes F_r, and R's
 *      load of the root after F_r sees the unlink sequenced before F_w
 *      (store buffering with fences on all sides). In the membarrier flavor
 *      F_r is a compiler barrier and membarrier() executes a full barrier
 *      on every CPU running a thread of a registered process between F_x
 *      and the scan, which stands in for F_r (the liburcu memb argument).
 * Without bounding m by E0, a batch sealed after the scan (by another
 * thread) could be popped on the strength of a scan that could not have
 * seen a reader that entered just before its unlink.
 *
 * Tags along the FIFO strictly increase (fetch_add under limbo_lock), so
 * reclaim stops at the first batch with tag >= m, and every walk that
 * requires increasing tags is cycle-free. Reclaim never waits.
 *
 * shg_synchronize: s = fetch_add(E, 1); F_x; poll until each slot shows 0
 * or an epoch > s. Sections that read E after the fetch_add show > s and
 * see the caller's earlier writes (2); a section whose slot store a poll
 * missed sees them by (3). The increment keeps a thread that re-enters
 * back to back from starving the waiter.
 *
 * Interval-based reclamation (IBR). An entry is {off, death}: death 0 is a
 * plain block (freed after its grace period); a graph node replaced by the
 * commit of sequence d is retired with death d (shg__retire_with_death). Such a
 * node is in exactly the versions of its graph with seq in [birth, d).
 * After the batch's grace period the reclaimer takes ONE pin snapshot per
 * pass, after its slot scan (struct pass; the argument is there: a pin of
 * a version < d was taken inside a read section the grace period covered,
 * so its record is visible, or derives from a pin still present) and frees
 * each entry unless a pin of the node's graph (read from the node header,
 * still intact) has seq in [birth, d). Entries still pinned move to held
 * batches (bare offsets and one death bound, grouped by holding pin, tag =
 * that pin's key) on the held list (hdr.held_head, under limbo_lock;
 * hdr.held_bytes their exact total). Held batches whose pin is gone are
 * re-examined when the pin table gen moved past hdr.held_gen, in passes
 * that freed something or are explicit (shg_reclaim, shg_synchronize),
 * each decided with a snapshot taken after it was popped (rescan_held). So
 * a pin holds exactly its version's dead nodes, not other garbage.
 *
 * Crash tolerance (any process may die at any instruction; the stores a
 * killed process made are not lost, so its program order is what a
 * survivor sees):
 *  - retire: ent[count] = {off, death}; count + 1; bytes += size. An open batch's
 *    own total is its only count; adoption recomputes it from the entries.
 *    hdr.retired_bytes counts sealed batches only and changes only under
 *    limbo_lock (seal adds, pop subtracts), so repair recomputes it exactly.
 *  - seal links the batch and clears limbo_open in one limbo_lock hold; a
 *    death in between leaves the batch both in the FIFO and open. The lock
 *    is then reported EOWNERDEAD and shg__limbo_repair() drops such stale
 *    slot records; shg__limbo_adopt() also checks FIFO membership.
 *  - reclaim records a popped batch in s.reclaiming before unlinking it
 *    (same lock hold), frees entries from the end storing count - 1 before
 *    each free, clears s.reclaiming, frees the batch block last. A death
 *    leaks at most one entry or the batch block (the leak sweep finds
 *    them) and never frees a block twice.
 *  - held entries: the held batches are built privately; then, in one
 *    limbo_lock hold, the moved entries are zeroed in the reclaiming batch
 *    (the free loop skips 0) and the held batches linked or merged into
 *    linked ones of the same pin (entry, count + 1, bytes, held_bytes). A
 *    death leaks the moved entries at worst (the sweep finds them), never
 *    frees one twice; repair recounts every held batch and held_bytes. A
 *    held batch is re-examined like a popped one: recorded in s.reclaiming
 *    and unlinked in one hold (repair and adoption check held-list
 *    membership as they do the FIFO's).
 *  - a dead reader's slot blocks reclamation until its liveness is checked
 *    (the OFD lock of its process slot, see registry.c); the registry then
 *    releases it.
 */
#include "limbo.h"

#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <urcu/arch.h>

#define MS_NS 1000000ull
#define RECLAIM_DEAD_CHECK_NS (50 * MS_NS) /* blocked this long: alive? */
#define SYNC_DEAD_CHECK_NS (10 * MS_NS) /* synchronize waited this long */
#define RECLAIM_SEAL_NS MS_NS /* see reclaim_after_seal() */

/* pid of a thread slot's owner (in the owner's own PID namespace, display
 * only): its process slot's pid, 0 if that slot changed hands. */
static pid_t slot_pid(struct shg_seg *seg, struct shg_tslot *s, int32_t *flavor)
{
	uint64_t tok = atomic_load_explicit(&s->owner, memory_order_relaxed);
	uint32_t p = __atomic_load_n(&s->proc, __ATOMIC_RELAXED);
	pid_t pid = 0;

	if (flavor)
		*flavor = 0;
	if (p < seg->max_procs) {
		struct shg_pslot *ps = &seg->procs[p];

		if (atomic_load_explicit(&ps->token, memory_order_relaxed) ==
		    tok) {
			pid = __atomic_load_n(&ps->pid, __ATOMIC_RELAXED);
			if (flavor)
				*flavor = __atomic_load_n(&ps->flavor,
							  __ATOMIC_RELAXED);
		}
	}
	return pid;
}

/* Whether a slot's owner recorded another PID namespace than @mine (both
 * known): its pid and tid mean nothing here. Display only. */
static bool slot_other_pidns(struct shg_seg *seg, struct shg_tslot *s,
			     uint64_t mine)
{
	uint64_t tok = atomic_load_explicit(&s->owner, memory_order_relaxed);
	uint32_t p = __atomic_load_n(&s->proc, __ATOMIC_RELAXED);
	uint64_t ns;

	if (p >= seg->max_procs ||
	    atomic_load_explicit(&seg->procs[p].token, memory_order_relaxed) !=
		    tok)
		return false;
	ns = __atomic_load_n(&seg->procs[p].pidns, __ATOMIC_RELAXED);
	return mine && ns && ns != mine;
}

/* ---- read sections ---------------------------------------------------- */

int shg_read_lock(struct shg_seg *seg)
{
	struct shg__tctx *ctx = shg__tctx_fast(seg);
	int err;

	if (shg_unlikely(!ctx)) {
		err = shg__tctx_get(seg, &ctx);
		if (err)
			return err;
	}
	shg_thread_read_lock(&ctx->hot);
	SHG_CRASH_POINT("read.locked");
	return 0;
}

void shg_read_unlock(struct shg_seg *seg)
{
	struct shg__tctx *ctx = shg__tctx_fast(seg);

	if (shg_unlikely(!ctx))
		ctx = shg__tctx_peek(seg);

	/* Unbalanced unlock is a caller bug; never underflow the nesting. */
	if (ctx && ctx->hot.nest > 0)
		shg_thread_read_unlock(&ctx->hot);
}

bool shg_read_locked(struct shg_seg *seg)
{
	struct shg__tctx *ctx = shg__tctx_peek(seg);

	return ctx && ctx->hot.nest > 0;
}

/* shg_thread_get() is in registry.c, next to the contexts it hands out. */

/* ---- the sealed-batch FIFO (callers hold limbo_lock) ------------------ */

/* Whether @off is linked in the FIFO. Bounded, stops at a bad link. */
static bool fifo_contains(struct shg_seg *seg, uint64_t off)
{
	uint64_t cur = shg__ld64_relaxed(&seg->hdr->limbo_head), prev_tag = 0,
		 n = 0;
	uint64_t bound = fifo_bound(seg);
	struct shg_batch *b;

	while (cur && n++ < bound && (b = batch_at(seg, cur))) {
		uint64_t tag = shg__ld64_relaxed(&b->tag);

		if (n > 1 && tag <= prev_tag)
			break; /* tags strictly increase: a cycle ends here */
		if (cur == off)
			return true;
		prev_tag = tag;
		cur = shg__ld64_relaxed(&b->next);
	}
	return false;
}

bool shg__fifo_contains(struct shg_seg *seg, uint64_t off)
{
	return fifo_contains(seg, off);
}

/*
 * Link @b (at @bo) after the tail. Crash ordering: b->next, then the link,
 * then the tail (release stores keep the compiler from reordering them);
 * repair recomputes the tail by walking from the head.
 */
static void fifo_append(struct shg_seg *seg, uint64_t bo, struct shg_batch *b)
{
	struct shg_hdr *hdr = seg->hdr;
	uint64_t t = shg__ld64_relaxed(&hdr->limbo_tail);
	struct shg_batch *tb = batch_at(seg, t);

	if ((t && !tb) || (!t && shg__ld64_relaxed(&hdr->limbo_head))) {
		shg__limbo_repair(seg);
		t = shg__ld64_relaxed(&hdr->limbo_tail);
		tb = batch_at(seg, t);
	}
	shg__st64_relaxed(&b->next, 0);
	if (tb)
		__atomic_store_n(&tb->next, bo, __ATOMIC_RELEASE);
	else
		__atomic_store_n(&hdr->limbo_head, bo, __ATOMIC_RELEASE);
	__atomic_store_n(&hdr->limbo_tail, bo, __ATOMIC_RELEASE);
}

/*
 * Tag @b and link it; limbo_lock held, caller issued F_w. The fetch_add is
 * seq_cst and taken under the lock, so tags strictly increase along the
 * FIFO; readers that load E after it see E > tag (case 2).
 */
static void seal_locked(struct shg_seg *seg, uint64_t bo, struct shg_batch *b)
{
	uint64_t tag = atomic_fetch_add_explicit(&seg->hdr->epoch, 1,
						 memory_order_seq_cst);

	shg__st64_relaxed(&b->tag, tag);
	SHG_CRASH_POINT("seal.tagged");
	fifo_append(seg, bo, b);
	/* Under limbo_lock: repair recomputes it from the FIFO exactly. */
	atomic_fetch_add_explicit(&seg->hdr->retired_bytes,
				  shg__ld64_relaxed(&b->bytes),
				  memory_order_relaxed);
}

/* Seal the open batch @b (at @bo) of slot @s. Return 0 or -errno. */
static int seal(struct shg_seg *seg, struct shg_tslot *s, uint64_t bo,
		struct shg_batch *b)
{
	struct shg_hdr *hdr = seg->hdr;
	int err;

	/*
	 * F_w: the unlinks of every block in @b are sequenced before this
	 * SC fence. A reclaimer that frees @b first reads E > tag (the RMW
	 * below or later) and only then issues its own SC fence F_x, so F_w
	 * precedes F_x in the SC order: case (0)/(3) of the proof. It also
	 * orders the batch's entry stores before its tag and link.
	 */
	atomic_thread_fence(memory_order_seq_cst);
	err = shg__lock(seg, &hdr->limbo_lock, shg__limbo_repair);
	if (err)
		return err;
	SHG_CRASH_POINT("seal.locked");
	seal_locked(seg, bo, b);
	SHG_CRASH_POINT("seal.linked");
	/* Same lock hold as the link: see repair for a death in between. */
	atomic_store_explicit(&s->limbo_open, 0, memory_order_release);
	SHG_CRASH_POINT("seal.open_cleared");
	shg__unlock(seg, &hdr->limbo_lock);
	return 0;
}

/*
 * Pop the head if its tag is below @m, recording it in @self->reclaiming
 * first. Return its offset or 0; *@oldest gets the tag left at the head
 * (0 when the FIFO is empty).
 */
static uint64_t pop_freeable(struct shg_seg *seg, struct shg_tslot *self,
			     uint64_t m, uint64_t *oldest)
{
	struct shg_hdr *hdr = seg->hdr;
	struct shg_batch *b;
	uint64_t h, next, tag;

	*oldest = 0;
	if (!shg__ld64_relaxed(
		    &hdr->limbo_head)) /* hint; confirmed under the lock */
		return 0;
	if (shg__lock(seg, &hdr->limbo_lock, shg__limbo_repair))
		return 0;
	shg__held_park_locked(seg, self); /* a batch a failed hold left */
	h = shg__ld64_relaxed(&hdr->limbo_head);
	b = batch_at(seg, h);
	if (h && !b) {
		shg__limbo_repair(seg);
		h = shg__ld64_relaxed(&hdr->limbo_head);
		b = batch_at(seg, h);
	}
	if (!b) {
		shg__unlock(seg, &hdr->limbo_lock);
		return 0;
	}
	tag = shg__ld64_relaxed(&b->tag);
	if (tag >= m) {
		*oldest = tag;
		shg__unlock(seg, &hdr->limbo_lock);
		return 0;
	}
	next = shg__ld64_relaxed(&b->next);
	if (next && !batch_at(seg, next))
		next = 0; /* bad link: the rest is leaked, never misread */
	/* Crash ordering: record, then unlink (release keeps the order). */
	atomic_store_explicit(&self->reclaiming, h, memory_order_relaxed);
	SHG_CRASH_POINT("reclaim.pop_recorded");
	sat_sub(&hdr->retired_bytes, shg__ld64_relaxed(&b->bytes));
	__atomic_store_n(&hdr->limbo_head, next, __ATOMIC_RELEASE);
	if (!next)
		shg__st64_relaxed(&hdr->limbo_tail, 0);
	SHG_CRASH_POINT("reclaim.pop_unlinked");
	shg__unlock(seg, &hdr->limbo_lock);
	return h;
}

/* ---- reclamation ------------------------------------------------------ */

/* Mark block @off, about to be freed by slot owner @tomb (see freeing). */
static void freeing_mark(struct shg_seg *seg, uint64_t off, uint64_t tomb)
{
	uint64_t *w = shg__at(seg, off);

	shg__st64_relaxed(&w[0], SHG_FREEING_MARK);
	shg__st64_relaxed(&w[1], tomb);
}

/* Whether block @off still carries the mark of slot owner @tomb. */
static bool freeing_marked(struct shg_seg *seg, uint64_t off, uint64_t tomb)
{
	const uint64_t *w;

	if (!off || !tomb || !shg_block_size(seg, (struct shg_off){ off }))
		return false;
	w = shg__at(seg, off);
	return shg__ld64_relaxed(&w[0]) == SHG_FREEING_MARK &&
	       shg__ld64_relaxed(&w[1]) == tomb;
}

/*
 * Free the batch at @bo, recorded in @s->reclaiming and in no list, its
 * grace period over; entries a pin still needs move to held batches
 * first. Return the bytes freed.
 */
uint64_t shg__finish_batch(struct shg_seg *seg, struct shg__tctx *ctx,
			   struct shg_tslot *s, uint64_t bo, struct pass *p)
{
	struct shg_hdr *hdr = seg->hdr;
	struct shg_batch *b = batch_at(seg, bo);
	uint64_t bytes, held, blocks = 0, tomb;
	uint32_t n;

	if (!b) { /* corrupt record: forget it, the sweep finds the rest */
		atomic_store_explicit(&s->reclaiming, 0, memory_order_release);
		return 0;
	}
	SHG_CRASH_POINT("reclaim.finish_begin");
	held = shg__hold_split(seg, s, bo, b, p);
	if (held == UINT64_MAX)
		return 0; /* @b is a held batch now, or kept in s.reclaiming */
	tomb = atomic_load_explicit(&s->owner, memory_order_relaxed);
	n = batch_count(b);
	while (n > 0) {
		uint64_t off = ent_off(b, --n);
		bool ok = off && shg_block_size(seg, (struct shg_off){ off });

		/*
		 * Crash ordering: name the block in s.freeing and mark it
		 * (its grace period is over and no pin needs it: nobody
		 * reads it), then store the shorter count, then free it,
		 * which overwrites the mark (compiler barriers; a killed
		 * process's stores are not lost). A survivor finishing this
		 * batch never frees the entry twice (count), and the
		 * recoverer of this slot frees s.freeing only while its
		 * mark is intact, i.e. the free did not happen
		 * (freeing_resolve_locked).
		 */
		if (ok) {
			atomic_store_explicit(&s->freeing, off,
					      memory_order_relaxed);
			freeing_mark(seg, off, tomb);
		}
		atomic_signal_fence(memory_order_seq_cst);
		__atomic_store_n(&b->count, n, __ATOMIC_RELAXED);
		atomic_signal_fence(memory_order_seq_cst);
		if (!ok)
			continue; /* moved, or not a block (corrupt): skip */
		SHG_CRASH_POINT("reclaim.entry_dropped");
		shg__free_now(seg, ctx, off);
		blocks++;
		SHG_CRASH_POINT("reclaim.mid_free");
	}
	SHG_CRASH_POINT("reclaim.entries_freed");
	bytes = shg__ld64_relaxed(&b->bytes);
	bytes = bytes > held ? bytes - held : 0;
	atomic_fetch_add_explicit(&hdr->reclaimed_bytes, bytes,
				  memory_order_relaxed);
	atomic_fetch_add_explicit(&hdr->reclaimed_blocks, blocks,
				  memory_order_relaxed);
	/* The batch block the same way: named in `freeing` and marked
	 * before the record is dropped, freed, then `freeing` cleared
	 * (release). A live leak sweep reads reclaiming, then freeing,
	 * with acquire, under limbo_lock: it marks the block or finds it
	 * freed. */
	atomic_store_explicit(&s->freeing, bo, memory_order_relaxed);
	freeing_mark(seg, bo, tomb);
	atomic_signal_fence(memory_order_seq_cst);
	atomic_store_explicit(&s->reclaiming, 0, memory_order_release);
	atomic_signal_fence(memory_order_seq_cst);
	SHG_CRASH_POINT("reclaim.record_cleared");
	shg__free_now(seg, ctx, bo);
	atomic_store_explicit(&s->freeing, 0, memory_order_release);
	return bytes;
}

/*
 * F_x: full fence, plus membarrier() when a process reads in the
 * membarrier flavor. Return 0 or -errno (then nothing may be freed).
 */
static int writer_barrier(struct shg_seg *seg)
{
	/*
	 * Orders everything before (the E0 load, our own unlinks and seals)
	 * before the slot loads of the scan that follows: the writer's half
	 * of the store-buffering pairing of case (3).
	 */
	atomic_thread_fence(memory_order_seq_cst);
	/*
	 * A process raises asym_procs with a seq_cst RMW before its first
	 * read section; reading 0 after our fence puts that RMW, and so all
	 * its readers' later loads, after our fence in the SC order: they
	 * see our unlinks without membarrier.
	 */
	if (!atomic_load_explicit(&seg->hdr->asym_procs, memory_order_seq_cst))
		return 0;
	/* Stands in for the fence that membarrier-flavor readers omit. */
	return shg__membarrier();
}

/* Scan result: the bound m of the proof, and whether marks need care. */
struct scan {
	uint64_t m; /* min(E0, non-zero slot epochs) */
	uint64_t min_epoch; /* min non-zero slot epoch, UINT64_MAX if none */
	bool marked; /* some slot has blocked_since_ns set */
};

/* E0, F_x, then the slot scan. Return 0 or -errno from membarrier. */
static int scan_slots(struct shg_seg *seg, struct scan *sc)
{
	uint32_t i;
	int err;

	/* Acquire: a batch with tag < E0 was sealed (F_w) before F_x. */
	sc->m = atomic_load_explicit(&seg->hdr->epoch, memory_order_acquire);
	err = writer_barrier(seg);
	if (err)
		return err;
	sc->min_epoch = UINT64_MAX;
	sc->marked = false;
	for (i = 0; i < seg->max_threads; i++) {
		struct shg_tslot *s = &seg->threads[i];
		uint64_t e;

		if (!atomic_load_explicit(&s->owner, memory_order_acquire))
			continue;
		/* Acquire pairs with read_unlock's release store of 0. */
		e = atomic_load_explicit(&s->epoch, memory_order_acquire);
		if (e && e < sc->min_epoch)
			sc->min_epoch = e;
		if (atomic_load_explicit(&s->blocked_since_ns,
					 memory_order_relaxed))
			sc->marked = true;
	}
	if (sc->min_epoch < sc->m)
		sc->m = sc->min_epoch;
	return 0;
}

/* Mark slot @s as blocking since @now (if not yet) holding @bytes. */
static uint64_t mark_blocked(struct shg_tslot *s, uint64_t now, uint64_t bytes)
{
	uint64_t since = atomic_load_explicit(&s->blocked_since_ns,
					      memory_order_relaxed);

	if (!since && atomic_compare_exchange_strong_explicit(
			      &s->blocked_since_ns, &since, now,
			      memory_order_relaxed, memory_order_relaxed))
		since = now;
	atomic_store_explicit(&s->blocked_bytes, bytes, memory_order_relaxed);
	return since;
}

static void clear_blocked(struct shg_tslot *s)
{
	atomic_store_explicit(&s->blocked_since_ns, 0, memory_order_relaxed);
	atomic_store_explicit(&s->blocked_bytes, 0, memory_order_relaxed);
}

/*
 * Update the blocked marks against the FIFO's oldest tag (0: empty); check
 * the liveness of slots that blocked too long. Return true if a dead
 * owner's slots were released (worth scanning again).
 */
static bool mark_blockers(struct shg_seg *seg, uint64_t oldest)
{
	uint64_t now = shg__now_ns(),
		 held = atomic_load_explicit(&seg->hdr->retired_bytes,
					     memory_order_relaxed);
	bool dead = false, probe;
	uint64_t next;
	uint32_t i;

	/* Liveness probes (one fcntl each) at most once per period per
	 * handle, not on every pass: a dead reader is found a period late
	 * at worst, which only delays reclamation. */
	next = atomic_load_explicit(&seg->next_probe_ns, memory_order_relaxed);
	probe = now >= next &&
		atomic_compare_exchange_strong_explicit(
			&seg->next_probe_ns, &next, now + RECLAIM_DEAD_CHECK_NS,
			memory_order_relaxed, memory_order_relaxed);
	for (i = 0; i < seg->max_threads; i++) {
		struct shg_tslot *s = &seg->threads[i];
		uint64_t e, since;

		e = atomic_load_explicit(&s->epoch, memory_order_acquire);
		if (atomic_load_explicit(&s->owner, memory_order_relaxed) &&
		    e && oldest && e <= oldest) {
			since = mark_blocked(s, now, held);
			if (probe && now - since > RECLAIM_DEAD_CHECK_NS &&
			    !shg__tslot_alive(seg, i))
				dead = true;
		} else if (atomic_load_explicit(&s->blocked_since_ns,
						memory_order_relaxed)) {
			clear_blocked(s);
		}
	}
	return dead && shg__release_dead(seg, NULL) >= 0;
}

/*
 * One or two reclaim passes (again after releasing a dead reader), each
 * with its own pin snapshot taken after its scan. Held batches are
 * re-examined when a pin went away since their last scan, in a pass that
 * freed something or when @held (explicit reclaim or synchronize): every
 * commit unpins its base, so checking on every budget check would cost a
 * pin table scan per transaction.
 */
static int64_t reclaim(struct shg_seg *seg, struct shg__tctx *ctx, bool held)
{
	uint64_t oldest = 0, h, pops;
	int64_t freed = 0;
	struct pass p;
	struct scan sc;
	int round;

	/* Nothing sealed and no held list to revisit: skip the scan and its
	 * barrier (a relaxed hint; a batch sealed just after is reclaimed by
	 * its sealer's own pass). */
	if (!held && !shg__ld64_relaxed(&seg->hdr->limbo_head))
		return 0;
	for (round = 0; round < 2; round++) {
		if (scan_slots(seg, &sc))
			break; /* membarrier failed: free nothing this time */
		memset(&p, 0, sizeof(p)); /* snapshot after this scan only */
		for (pops = 0; pops < fifo_bound(seg); pops++) {
			h = pop_freeable(seg, ctx->slot, sc.m, &oldest);
			if (!h)
				break;
			freed += (int64_t)shg__finish_batch(seg, ctx, ctx->slot,
							    h, &p);
		}
		shg__pass_done(&p);
		if (pops || held)
			freed += shg__rescan_held(seg, ctx);
		if (!sc.marked && !(oldest && sc.min_epoch <= oldest))
			break;
		if (!mark_blockers(seg, oldest))
			break;
	}
	return freed;
}

static int64_t reclaim_pass(struct shg_seg *seg, struct shg__tctx *ctx)
{
	return reclaim(seg, ctx, false);
}

/*
 * The pass a thread runs after it sealed a batch. In a segment that a
 * process reads in the membarrier flavor every pass costs a membarrier():
 * a system call for the writer and an IPI that interrupts every reader's
 * CPU (bench_interfere: ~11-15 us of a reader's CPU per grace period on
 * the development VM, ~10 % of a lookup loop's rate while a writer sealed
 * a batch every ~30 commits). There a thread runs at most one such pass
 * per RECLAIM_SEAL_NS while the sealed bytes stay under a quarter of the
 * retire budget; batches sealed meanwhile wait for its next pass, any
 * other thread's, a budget check, an explicit shg_reclaim() or the
 * thread's exit. Reclamation then lags by up to that interval; the
 * budget still bounds what waits (above a quarter every seal reclaims,
 * and shg_budget_check() reclaims at once when it is exceeded). The
 * fence flavor's pass has no system call and is not limited.
 */
static int64_t reclaim_after_seal(struct shg_seg *seg, struct shg__tctx *ctx)
{
	uint64_t now;

	if (atomic_load_explicit(&seg->hdr->asym_procs, memory_order_relaxed) &&
	    atomic_load_explicit(&seg->hdr->retired_bytes,
				 memory_order_relaxed) <
		    seg->hdr->retire_budget / 4) {
		now = shg__now_ns();
		if (now < ctx->next_seal_pass_ns)
			return 0;
		ctx->next_seal_pass_ns = now + RECLAIM_SEAL_NS;
	}
	return reclaim(seg, ctx, false);
}

void shg__exit_reclaim(struct shg_seg *seg, struct shg__tctx *ctx)
{
	/* Outside a section only: inside one, our own epoch would hold back
	 * everything sealed since it began (nothing freed, a scan wasted). */
	if (ctx && !ctx->hot.nest)
		(void)reclaim(seg, ctx, false);
}

int64_t shg_reclaim(struct shg_seg *seg)
{
	struct shg__tctx *ctx;

	if (shg__tctx_get(seg, &ctx))
		return 0;
	return reclaim(seg, ctx, true);
}

/* ---- retire ----------------------------------------------------------- */

/* A fresh empty retire batch at *@nb, named by nothing yet. */
static struct shg_batch *batch_new(struct shg_seg *seg, struct shg_off *nb,
				   int *err)
{
	struct shg_batch *b;

	*err = shg_alloc(seg, SHG_BATCH_BYTES, nb);
	if (*err)
		return NULL;
	SHG_CRASH_POINT("retire.batch_allocated");
	b = shg_ptr(seg, *nb, SHG_BATCH_BYTES);
	if (!b) {
		*err = SHG_CORRUPT();
		return NULL;
	}
	shg__st64_relaxed(&b->next, 0);
	shg__st64_relaxed(&b->tag, 0);
	shg__st64_relaxed(&b->bytes, 0);
	__atomic_store_n(&b->count, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&b->cap, BATCH_CAP, __ATOMIC_RELAXED);
	return b;
}

/*
 * The calling thread's open batch with room for one more entry, sealing a
 * full one and allocating a new one as needed. NULL and *@err on failure.
 */
static struct shg_batch *open_batch(struct shg_seg *seg, struct shg__tctx *ctx,
				    uint64_t *bo, int *err)
{
	struct shg_tslot *s = ctx->slot;
	uint64_t o = atomic_load_explicit(&s->limbo_open, memory_order_relaxed);
	struct shg_batch *b = batch_at(seg, o);
	struct shg_off nb;

	if (b && batch_count(b) < BATCH_CAP) {
		*bo = o;
		return b;
	}
	if (b) { /* full: its seal failed earlier */
		*err = seal(seg, s, o, b);
		if (*err)
			return NULL;
	} else if (o) { /* corrupt: forget it (leaked, never misread) */
		atomic_store_explicit(&s->limbo_open, 0, memory_order_release);
	}
	b = batch_new(seg, &nb, err);
	if (!b)
		return NULL;
	/* Release: whoever finds it through limbo_open sees it initialised. */
	atomic_store_explicit(&s->limbo_open, nb.v, memory_order_release);
	*bo = nb.v;
	return b;
}

/* Record @off (@size bytes) in the open batch @b; seal it when full. */
static void batch_append(struct shg_seg *seg, struct shg__tctx *ctx,
			 uint64_t bo, struct shg_batch *b, uint64_t off,
			 uint64_t death, uint64_t size)
{
	uint32_t n = batch_count(b);

	/* The batch's own total is the only count of an open batch; the
	 * header counts sealed batches (under limbo_lock), so a death here
	 * leaves nothing for recovery to reconcile but this batch, whose
	 * total adoption recomputes from its entries. */
	shg__st64_relaxed(&b->ent[n].off, off);
	shg__st64_relaxed(&b->ent[n].death, death);
	SHG_CRASH_POINT("retire.entry_written");
	/* Release: the entry is complete before the count covers it. */
	__atomic_store_n(&b->count, n + 1, __ATOMIC_RELEASE);
	SHG_CRASH_POINT("retire.count_bumped");
	shg__st64_relaxed(&b->bytes, shg__ld64_relaxed(&b->bytes) + size);
	SHG_CRASH_POINT("retire.bytes_added");
	if (n + 1 == BATCH_CAP && seal(seg, ctx->slot, bo, b) == 0)
		reclaim_after_seal(seg, ctx);
}

/*
 * No batch available. Outside a read section: wait for a grace period and
 * free at once. Inside one we cannot wait: return @err, the block stays
 * the caller's (retire it again later); nothing is lost.
 */
static int retire_now(struct shg_seg *seg, struct shg__tctx *ctx, uint64_t off,
		      uint64_t death, uint64_t size, int err)
{
	if (ctx->hot.nest)
		return err;
	err = shg_synchronize(seg, 0);
	if (err)
		return err;
	/* A graph node still pinned cannot be recorded anywhere: leave it
	 * (the leak sweep frees it once no pin reaches it). */
	if (death && shg__node_pinned(seg, off, death))
		return 0;
	shg__free_now(seg, ctx, off);
	atomic_fetch_add_explicit(&seg->hdr->reclaimed_bytes, size,
				  memory_order_relaxed);
	atomic_fetch_add_explicit(&seg->hdr->reclaimed_blocks, 1,
				  memory_order_relaxed);
	return 0;
}

/* Retire @off with death @death (0: plain block). */
static int retire(struct shg_seg *seg, struct shg_off off, uint64_t death)
{
	size_t size = shg_block_size(seg, off);
	struct shg__tctx *ctx;
	struct shg_batch *b;
	uint64_t bo = 0;
	int err;

	if (!size)
		return SHG_EBADOFF;
	err = shg__tctx_get(seg, &ctx);
	if (err)
		return err;
	b = open_batch(seg, ctx, &bo, &err);
	if (!b && ctx->hot.nest) {
		/* Free what is already due (never waits), try once more. */
		reclaim_pass(seg, ctx);
		b = open_batch(seg, ctx, &bo, &err);
	}
	if (!b)
		return retire_now(seg, ctx, off.v, death, size, err);
	batch_append(seg, ctx, bo, b, off.v, death, size);
	return 0;
}

int shg_retire(struct shg_seg *seg, struct shg_off off)
{
	return retire(seg, off, 0);
}

int shg__retire_with_death(struct shg_seg *seg, uint64_t off, uint64_t death)
{
	return retire(seg, (struct shg_off){ off }, death);
}

/* ---- grace periods ---------------------------------------------------- */

/* Spin, then yield, then sleep up to 1 ms. */
static void backoff(unsigned iter)
{
	struct timespec ts = { 0, 0 };
	unsigned i, shift;

	if (iter < 32) {
		for (i = 0; i < 64; i++)
			caa_cpu_relax();
		return;
	}
	if (iter < 64) {
		sched_yield();
		return;
	}
	shift = iter - 64 < 7 ? iter - 64 : 7;
	ts.tv_nsec = (long)(10000u << shift); /* 10 us .. 1.28 ms */
	if (ts.tv_nsec > 1000000)
		ts.tv_nsec = 1000000;
	nanosleep(&ts, NULL);
}

struct poll {
	uint32_t waiting; /* slots still in a section begun at <= s */
	uint32_t blocker; /* the one blocking longest (max_threads: none) */
	bool dead; /* one of them belongs to a dead process */
};

/*
 * One look at every slot for the grace period that began at epoch @s,
 * @waited ns ago. Slots still waited for after 1 ms are marked blocking;
 * after 10 ms their owners' liveness is checked on every look.
 */
static void grace_poll(struct shg_seg *seg, uint64_t s, uint64_t waited,
		       struct poll *p)
{
	uint64_t now = shg__now_ns(), first = UINT64_MAX, since, e;
	uint64_t held = atomic_load_explicit(&seg->hdr->retired_bytes,
					     memory_order_relaxed);
	uint32_t i;

	p->waiting = 0;
	p->blocker = seg->max_threads;
	p->dead = false;
	for (i = 0; i < seg->max_threads; i++) {
		struct shg_tslot *t = &seg->threads[i];

		if (!atomic_load_explicit(&t->owner, memory_order_acquire))
			continue;
		/* Acquire pairs with read_unlock: the section's loads
		 * happen before whatever the caller does next. */
		e = atomic_load_explicit(&t->epoch, memory_order_acquire);
		if (!e || e > s)
			continue;
		p->waiting++;
		since = waited > MS_NS ? mark_blocked(t, now, held) : now;
		if (since < first || p->blocker == seg->max_threads) {
			first = since;
			p->blocker = i;
		}
		if (waited > SYNC_DEAD_CHECK_NS && !shg__tslot_alive(seg, i))
			p->dead = true;
	}
}

/* seg->stalled_*: process-local, written by any thread that checks. */
static void set_stall(struct shg_seg *seg, pid_t pid, uint64_t bytes)
{
	__atomic_store_n(&seg->stalled_pid, pid, __ATOMIC_RELAXED);
	__atomic_store_n(&seg->stalled_bytes, bytes, __ATOMIC_RELAXED);
}

/* Remember the reader that made a budget check or synchronize fail. */
static void record_stall(struct shg_seg *seg, uint32_t idx)
{
	struct shg_tslot *s;

	if (idx >= seg->max_threads) {
		set_stall(seg, 0, 0);
		return;
	}
	s = &seg->threads[idx];
	set_stall(seg, slot_pid(seg, s, NULL),
		  atomic_load_explicit(&s->blocked_bytes,
				       memory_order_relaxed));
}

/* Wait until every section that could predate the call has ended. */
static int wait_grace(struct shg_seg *seg, unsigned timeout_ms)
{
	uint64_t s, start, now, limit = (uint64_t)timeout_ms * MS_NS;
	struct poll p;
	unsigned iter;
	int err;

	/* Sections that load E after this RMW show > s: not waited for. */
	s = atomic_fetch_add_explicit(&seg->hdr->epoch, 1,
				      memory_order_seq_cst);
	err = writer_barrier(seg); /* F_x: the caller's writes, then polls */
	if (err)
		return err;
	start = shg__now_ns();
	for (iter = 0;; iter++) {
		now = shg__now_ns();
		grace_poll(seg, s, now - start, &p);
		if (!p.waiting)
			return 0;
		if (p.dead) /* clears the dead slot; the next poll sees it */
			(void)shg__release_dead(seg, NULL);
		if (limit && now - start >= limit) {
			record_stall(seg, p.blocker);
			return SHG_EBUDGET;
		}
		backoff(iter);
	}
}

/* Seal the calling thread's open batch if it holds anything. */
static int seal_open(struct shg_seg *seg, struct shg__tctx *ctx)
{
	struct shg_tslot *s = ctx->slot;
	uint64_t o = atomic_load_explicit(&s->limbo_open, memory_order_relaxed);
	struct shg_batch *b;

	if (!o)
		return 0;
	b = batch_at(seg, o);
	if (!b) {
		atomic_store_explicit(&s->limbo_open, 0, memory_order_release);
		return SHG_CORRUPT();
	}
	if (!batch_count(b))
		return 0;
	return seal(seg, s, o, b);
}

int shg_synchronize(struct shg_seg *seg, unsigned timeout_ms)
{
	struct shg__tctx *ctx = shg__tctx_peek(seg);
	int err;

	if (ctx && ctx->hot.nest)
		return SHG_ENESTED;
	if (!ctx && shg__tctx_get(seg, &ctx))
		ctx = NULL; /* no slot: still wait, only reclaim needs one */
	if (ctx)
		(void)seal_open(seg, ctx); /* on failure it stays open */
	err = wait_grace(seg, timeout_ms);
	if (err)
		return err;
	if (ctx)
		reclaim(seg, ctx, true);
	return 0;
}

#include "epoch_stage.c" /* compiled as part of this file */

#include "epoch_budget.c" /* compiled as part of this file */

#include "epoch_recover.c" /* compiled as part of this file */
