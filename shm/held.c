/* SPDX-License-Identifier: MIT */
/*
 * The held list: retired graph nodes whose grace period is over but that a
 * pinned version still reaches (interval-based reclamation; the argument
 * is in epoch.c's theory of operation). Entries move from a reclaiming
 * batch into held batches grouped by holding pin, and are re-examined when
 * a pin goes away.
 */
#include "limbo.h"

#include <stdlib.h>
#include <string.h>

/* ---- interval checks (graph nodes retired with a death) --------------- */

const struct shg__pinsnap *shg__pass_snap(struct shg_seg *seg, struct pass *p)
{
	if (!p->taken) {
		p->taken = true;
		if (seg->ops && seg->ops->pinsnap_take) {
			p->failed = seg->ops->pinsnap_take(seg, &p->snap) != 0;
		} else { /* no upper layer: no pins */
			memset(&p->snap, 0, sizeof(p->snap));
			p->snap.min_seq = UINT64_MAX;
		}
	}
	return p->failed ? NULL : &p->snap;
}

void shg__pass_done(struct pass *p)
{
	if (p->taken && !p->failed)
		shg__pinsnap_free(&p->snap);
	memset(p, 0, sizeof(*p));
}

/*
 * Key of a pin that still needs graph node @off, dead at @death (0: free
 * it; HOLD_ANY: no snapshot, keep it). The header is intact: the node is
 * not freed yet. A block that is not a valid node is freed like a plain
 * retired block (it was retired all the same).
 */
static uint64_t holder(struct shg_seg *seg, struct pass *p, uint64_t off,
		       uint64_t death)
{
	const struct shg__pinsnap *snap;
	uint32_t graph;
	uint64_t birth;

	if (!death)
		return 0;
	snap = shg__pass_snap(seg, p);
	/* A pin holds the node only if its sequence is below the death: with
	 * no pin that old (in any graph), skip reading the node. */
	if (snap && death <= snap->min_seq)
		return 0;
	if (!seg->ops || !seg->ops->node_interval ||
	    !seg->ops->node_interval(seg, off, &graph, &birth))
		return 0;
	if (!snap)
		return HOLD_ANY;
	return shg__pinsnap_holder(snap, graph, birth, death);
}

/* retire_now: whether node @off dead at @death is pinned right now. */
bool shg__node_pinned(struct shg_seg *seg, uint64_t off, uint64_t death)
{
	struct pass p = { 0 };
	bool held;

	held = holder(seg, &p, off, death) != 0;
	shg__pass_done(&p);
	return held;
}

/*
 * Push held batch @b (at @bo) on the held list; limbo_lock held. Crash
 * ordering: next, head (release), then the total; repair recounts the
 * total from the list after a death inside the lock. If a pin went away
 * since the snapshot the decision was made with (gen moved), force the
 * next reclaim pass to re-examine the list.
 */
static void held_push_locked(struct shg_seg *seg, uint64_t bo,
			     struct shg_batch *b, uint64_t snap_gen)
{
	struct shg_hdr *hdr = seg->hdr;

	shg__st64_relaxed(&b->next, shg__ld64_relaxed(&hdr->held_head));
	__atomic_store_n(&hdr->held_head, bo, __ATOMIC_RELEASE);
	atomic_fetch_add_explicit(&hdr->held_bytes,
				  shg__ld64_relaxed(&b->bytes),
				  memory_order_relaxed);
	if (snap_gen != shg__upper_pins_gen(seg))
		atomic_store_explicit(&hdr->held_gen, UINT64_MAX,
				      memory_order_relaxed);
}

/* hold_whole's step under limbo_lock. */
static void hold_whole_locked(struct shg_seg *seg, struct shg_tslot *s,
			      uint64_t bo, struct shg_batch *b,
			      uint64_t snap_gen)
{
	shg__batch_fix_bytes(seg, b); /* entries moved earlier (tombstones) */
	shg__st64_relaxed(&b->tag, 0);
	held_push_locked(seg, bo, b, snap_gen);
	SHG_CRASH_POINT("hold.whole_pushed");
	atomic_store_explicit(&s->reclaiming, 0, memory_order_release);
}

/*
 * No memory for held batches: keep the whole reclaiming batch @b (at @bo)
 * as a held batch of unknown holder (tag 0, re-examined on any pin
 * change). Push and forgetting s.reclaiming share one lock hold (repair
 * drops a reclaiming record naming a held batch). If limbo_lock is
 * unusable too, @b stays recorded in s.reclaiming: see shg__held_park.
 */
static bool hold_whole(struct shg_seg *seg, struct shg_tslot *s, uint64_t bo,
		       struct shg_batch *b, uint64_t snap_gen)
{
	if (shg__lock(seg, &seg->hdr->limbo_lock, shg__limbo_repair))
		return false;
	hold_whole_locked(seg, s, bo, b, snap_gen);
	shg__unlock(seg, &seg->hdr->limbo_lock);
	return true;
}

/*
 * A batch that shg__hold_split could neither split nor hold (no memory for
 * held batches and limbo_lock unusable: a stopped holder, ENOTRECOVERABLE)
 * is left whole in @self->reclaiming, nothing freed: pinned entries must
 * never be freed, and leaking them would lose them for good. There it is
 * marked by the leak sweep (every word of a reclaiming batch), finished by
 * adoption if the thread exits or dies, and parked here by the slot's
 * next pop (FIFO or held list), which holds limbo_lock: it becomes a held
 * batch of unknown holder, re-examined on the next rescan. Any other
 * non-zero record at that point is stale (a pop always starts with none),
 * and is dropped if the batch is in the FIFO or on the held list already.
 */
void shg__held_park_locked(struct shg_seg *seg, struct shg_tslot *self)
{
	uint64_t r =
		atomic_load_explicit(&self->reclaiming, memory_order_relaxed);
	struct shg_batch *b;

	if (shg_likely(!r))
		return;
	b = batch_at(seg, r);
	if (b && !shg__fifo_contains(seg, r) && !shg__held_contains(seg, r)) {
		SHG_CRASH_POINT("park.before_hold");
		hold_whole_locked(seg, self, r, b, UINT64_MAX - 1);
	} else {
		atomic_store_explicit(&self->reclaiming, 0,
				      memory_order_release);
	}
}

#define HELD_MERGE_LOOK 64 /* held batches searched for room */

/*
 * Move entries of the private held batch @nb into a linked held batch of
 * the same holder with room (limbo_lock held), so held memory is not
 * dominated by half-empty batch blocks. Crash ordering: append to the
 * linked batch (entry, count + 1 with release, its bytes, held_bytes),
 * then shorten @nb; a death in between leaves the entry linked once and
 * @nb private (leaked); repair recomputes the linked batch's bytes and
 * held_bytes.
 */
static void held_merge_locked(struct shg_seg *seg, struct shg_batch *nb)
{
	uint64_t cur = shg__ld64_relaxed(&seg->hdr->held_head),
		 key = shg__ld64_relaxed(&nb->tag);
	uint64_t off, size, death = shg__ld64_relaxed(&as_held(nb)->death);
	struct shg_batch *t;
	uint32_t n = 0, c, m;

	while (key && cur && n++ < HELD_MERGE_LOOK &&
	       (t = batch_at(seg, cur)) && (m = batch_count(nb))) {
		cur = shg__ld64_relaxed(&t->next);
		if (shg__ld64_relaxed(&t->tag) != key || !is_held(t))
			continue;
		/* Raise the bound before any entry relies on it. */
		if (shg__ld64_relaxed(&as_held(t)->death) < death)
			shg__st64_relaxed(&as_held(t)->death, death);
		while ((c = batch_count(t)) < HELD_CAP && m) {
			off = shg__ld64_relaxed(&as_held(nb)->off[m - 1]);
			size = shg_block_size(seg, (struct shg_off){ off });
			shg__st64_relaxed(&as_held(t)->off[c], off);
			__atomic_store_n(&t->count, c + 1, __ATOMIC_RELEASE);
			shg__st64_relaxed(&t->bytes,
					  shg__ld64_relaxed(&t->bytes) + size);
			atomic_fetch_add_explicit(&seg->hdr->held_bytes, size,
						  memory_order_relaxed);
			SHG_CRASH_POINT("hold.merge_appended");
			__atomic_store_n(&nb->count, --m, __ATOMIC_RELAXED);
			shg__st64_relaxed(&nb->bytes,
					  shg__ld64_relaxed(&nb->bytes) - size);
		}
	}
}

struct held_ent {
	uint64_t key;
	uint32_t i;
};

static int cmp_held(const void *a, const void *b)
{
	const struct held_ent *x = a, *y = b;

	return x->key < y->key ? -1 : x->key > y->key;
}

/* A private held batch for entries @h[0..k) of @b (all one key). */
static uint64_t held_build(struct shg_seg *seg, struct shg_batch *b,
			   const struct held_ent *h, uint32_t k)
{
	struct shg_held_batch *nb;
	struct shg_off o;
	uint64_t sum = 0, off, death = 0, d;
	uint32_t j;

	if (shg_alloc(seg, SHG_BATCH_BYTES, &o))
		return 0;
	nb = shg_ptr(seg, o, SHG_BATCH_BYTES);
	if (!nb) {
		shg_free(seg, o);
		return 0;
	}
	for (j = 0; j < k; j++) {
		off = ent_off(b, h[j].i);
		d = ent_death(b, h[j].i);
		death = d > death ? d : death;
		shg__st64_relaxed(&nb->off[j], off);
		sum += shg_block_size(seg, (struct shg_off){ off });
	}
	shg__st64_relaxed(&nb->next, 0);
	shg__st64_relaxed(&nb->tag, h[0].key == HOLD_ANY ? 0 : h[0].key);
	shg__st64_relaxed(&nb->bytes, sum);
	shg__st64_relaxed(&nb->death, death);
	__atomic_store_n(&nb->cap, HELD_CAP, __ATOMIC_RELAXED);
	__atomic_store_n(&nb->count, k, __ATOMIC_RELEASE);
	return o.v;
}

/*
 * Move the entries of reclaiming batch @b that a pin still needs into new
 * held batches, one per holding pin. Order (crash at any point: never a
 * double free, nothing leaked but private batch blocks, which the live
 * leak sweep frees): build the held batches privately; under limbo_lock,
 * push (or merge) the held batches, then zero the moved entries in @b
 * (tombstones: the free loop and a survivor finishing @b skip them). A
 * death in between leaves entries both linked in the held list and in @b;
 * the next locker's repair (shg__dedupe_held) zeroes them in @b. A death
 * before a batch is linked leaves its entries in @b only, where whoever
 * finishes @b decides them again with a fresh pin snapshot (held again if
 * still pinned); a death inside the pushes is repaired by recounting
 * held_bytes.
 * Return: bytes moved, or UINT64_MAX if @b itself became a held batch or
 * stays whole in s.reclaiming (nothing of it may be freed now).
 */
uint64_t shg__hold_split(struct shg_seg *seg, struct shg_tslot *s, uint64_t bo,
			 struct shg_batch *b, struct pass *p)
{
	struct held_ent h[HELD_CAP];
	uint64_t hb[HELD_CAP], key, moved = 0, gen;
	uint32_t i, j, k = 0, nhb = 0, n = batch_count(b);

	for (i = 0; i < n; i++) {
		uint64_t off = ent_off(b, i);

		if (off && (key = holder(seg, p, off, ent_death(b, i)))) {
			/* n <= HELD_CAP: a batch never has more entries */
			SHG_ASSERT(k < HELD_CAP);
			h[k++] = (struct held_ent){ key, i };
		}
	}
	if (!k)
		return 0;
	/* The gen the decisions were made at (never equal: rescan). */
	gen = p->failed ? UINT64_MAX - 1 : p->snap.gen;
	qsort(h, k, sizeof(h[0]), cmp_held);
	for (i = 0; i < k; i = j) {
		for (j = i + 1; j < k && h[j].key == h[i].key; j++)
			;
		hb[nhb] = held_build(seg, b, h + i, j - i);
		if (!hb[nhb]) {
			while (nhb)
				shg__free_now(seg, NULL, hb[--nhb]);
			/* Held as a whole, or (lock unusable) left whole in
			 * s.reclaiming: either way nothing is freed now. */
			(void)hold_whole(seg, s, bo, b, gen);
			return UINT64_MAX;
		}
		nhb++;
	}
	if (shg__lock(seg, &seg->hdr->limbo_lock, shg__limbo_repair)) {
		/* Lock unusable: keep @b whole in s.reclaiming (see
		 * shg__held_park_locked), free nothing. */
		while (nhb)
			shg__free_now(seg, NULL, hb[--nhb]);
		return UINT64_MAX;
	}
	for (i = 0; i < nhb; i++) {
		struct shg_batch *nb = batch_at(seg, hb[i]);

		moved += shg__ld64_relaxed(&nb->bytes);
		held_merge_locked(seg, nb);
		if (batch_count(nb)) {
			held_push_locked(seg, hb[i], nb, gen);
			SHG_CRASH_POINT("hold.split_pushed");
			hb[i] = 0; /* linked: no longer ours */
		}
	}
	for (i = 0; i < k; i++)
		ent_clear(b, h[i].i);
	SHG_CRASH_POINT("hold.split_cleared");
	shg__unlock(seg, &seg->hdr->limbo_lock);
	/*
	 * Free the batches emptied into linked ones. Decided under the lock
	 * above: a pushed batch may be popped, finished and freed by another
	 * reclaimer as soon as the lock is dropped, so it must not even be
	 * looked at here.
	 */
	for (i = 0; i < nhb; i++)
		if (hb[i])
			shg__free_now(seg, NULL, hb[i]);
	return moved;
}

/*
 * Where one rescan has got to in the held list: the batch before the next
 * one to examine (0: the head), valid while hdr.held_unlinks is @unlinks
 * (pushes go to the head and merges change no link, so only an unlink can
 * take @prev out of the list). Without it every pop would walk again past
 * all the batches still held, quadratic in a long held list.
 */
struct held_cursor {
	uint64_t prev, unlinks, first_gen;
	bool valid;
};

/*
 * Pop the first held batch at or after @cur whose holding pin is not in
 * @snap (or whose holder is unknown), recording it in @self->reclaiming
 * first (same lock hold, as pop_freeable). None left: remember as scanned
 * the gen of the rescan's first snapshot (batches before the cursor were
 * examined with it or a later one), so a pin dropped since is not missed.
 */
static uint64_t pop_held(struct shg_seg *seg, struct shg_tslot *self,
			 const struct shg__pinsnap *snap,
			 struct held_cursor *hc)
{
	struct shg_hdr *hdr = seg->hdr;
	uint64_t cur, prev = 0, next, tag, n = 0, bound = fifo_bound(seg);
	struct shg_batch *b, *pb;

	if (shg__lock(seg, &hdr->limbo_lock, shg__limbo_repair))
		return 0;
	shg__held_park_locked(seg, self);
	if (!hc->valid)
		hc->first_gen = snap->gen;
	cur = shg__ld64_relaxed(&hdr->held_head);
	if (hc->valid && hc->prev && hc->unlinks == hdr->held_unlinks &&
	    (pb = batch_at(seg, hc->prev))) {
		prev = hc->prev;
		cur = shg__ld64_relaxed(&pb->next);
	}
	while (cur && n++ < bound && (b = batch_at(seg, cur))) {
		tag = shg__ld64_relaxed(&b->tag);
		next = shg__ld64_relaxed(&b->next);
		if (tag && shg__pinsnap_has(snap, tag)) {
			prev = cur;
			cur = next;
			continue;
		}
		if (next && !batch_at(seg, next))
			next = 0; /* bad link: the rest is leaked */
		/* Crash ordering: record, then unlink (as pop_freeable). */
		atomic_store_explicit(&self->reclaiming, cur,
				      memory_order_relaxed);
		SHG_CRASH_POINT("hold.pop_recorded");
		sat_sub(&hdr->held_bytes, shg__ld64_relaxed(&b->bytes));
		pb = prev ? batch_at(seg, prev) : NULL;
		if (pb)
			__atomic_store_n(&pb->next, next, __ATOMIC_RELEASE);
		else
			__atomic_store_n(&hdr->held_head, next,
					 __ATOMIC_RELEASE);
		hdr->held_unlinks++;
		*hc = (struct held_cursor){ prev, hdr->held_unlinks,
					    hc->first_gen, true };
		shg__unlock(seg, &hdr->limbo_lock);
		return cur;
	}
	atomic_store_explicit(&hdr->held_gen, hc->first_gen,
			      memory_order_relaxed);
	shg__unlock(seg, &hdr->limbo_lock);
	return 0;
}

/*
 * Re-examine held batches if a pin went away since the last full scan.
 * A snapshot picks the batches whose pin is gone; each popped batch is
 * then decided with a NEW snapshot taken after the pop. Why: entries may
 * have been linked or merged into that batch after the first snapshot,
 * by a reclaimer whose grace period the first snapshot does not follow;
 * every link happens under limbo_lock before our pop, after that
 * reclaimer's scan, so a snapshot after the pop sees every pin that
 * could need them (the argument at struct pass). The newest snapshot
 * also picks the next batch, so batches just re-held are not picked again.
 */
int64_t shg__rescan_held(struct shg_seg *seg, struct shg__tctx *ctx)
{
	const struct shg__pinsnap *snap;
	struct held_cursor hc = { 0 };
	struct pass q = { 0 };
	uint64_t h, k;
	int64_t freed = 0;

	if (!shg__ld64_relaxed(&seg->hdr->held_head) ||
	    shg__upper_pins_gen(seg) ==
		    atomic_load_explicit(&seg->hdr->held_gen,
					 memory_order_relaxed))
		return 0;
	snap = shg__pass_snap(seg, &q);
	for (k = 0; snap && k < fifo_bound(seg); k++) {
		h = pop_held(seg, ctx->slot, snap, &hc);
		if (!h)
			break;
		shg__pass_done(&q);
		/* Failure: every node entry is held again (tag 0). */
		(void)shg__pass_snap(seg, &q);
		freed += (int64_t)shg__finish_batch(seg, ctx, ctx->slot, h, &q);
		snap = q.failed ? NULL : &q.snap;
	}
	shg__pass_done(&q);
	return freed;
}

uint64_t shg__held_bytes(struct shg_seg *seg)
{
	return atomic_load_explicit(&seg->hdr->held_bytes,
				    memory_order_relaxed);
}

/* Whether @off is linked in the held list (limbo_lock held). */
bool shg__held_contains(struct shg_seg *seg, uint64_t off)
{
	uint64_t cur = shg__ld64_relaxed(&seg->hdr->held_head), n = 0;
	uint64_t bound = fifo_bound(seg);
	struct shg_batch *b;

	while (cur && n++ < bound && (b = batch_at(seg, cur))) {
		if (cur == off)
			return true;
		cur = shg__ld64_relaxed(&b->next);
	}
	return false;
}

/*
 * Bytes of @b recomputed from its entries. A death between "count + 1"
 * and "bytes += size" in batch_append leaves bytes short.
 */
uint64_t shg__batch_fix_bytes(struct shg_seg *seg, struct shg_batch *b)
{
	uint64_t old = shg__ld64_relaxed(&b->bytes), sum = 0;
	uint32_t i, n = batch_count(b);

	for (i = 0; i < n; i++)
		sum += shg_block_size(seg, (struct shg_off){ ent_off(b, i) });
	if (sum != old)
		shg__st64_relaxed(&b->bytes, sum);
	return sum;
}

/*
 * Held list after a death inside limbo_lock: cut at a bad link or an
 * absurd length (which also cuts a cycle), recount held_bytes, and force
 * a rescan.
 */
void shg__repair_held(struct shg_seg *seg)
{
	struct shg_hdr *hdr = seg->hdr;
	uint64_t cur = shg__ld64_relaxed(&hdr->held_head), next, sum = 0, n = 0;
	uint64_t bound = fifo_bound(seg);
	struct shg_batch *b;

	if (cur && !batch_at(seg, cur)) {
		shg__st64_relaxed(&hdr->held_head, 0);
		cur = 0;
	}
	while (cur) {
		b = batch_at(seg, cur);
		sum += shg__batch_fix_bytes(seg, b);
		next = shg__ld64_relaxed(&b->next);
		if (next && (!batch_at(seg, next) || ++n >= bound)) {
			shg__st64_relaxed(&b->next, 0);
			next = 0;
		}
		cur = next;
	}
	atomic_store_explicit(&hdr->held_bytes, sum, memory_order_relaxed);
	atomic_store_explicit(&hdr->held_gen, UINT64_MAX, memory_order_relaxed);
	hdr->held_unlinks++; /* links may have been cut: no saved position */
}

/*
 * After a death inside limbo_lock (repair): zero, in every batch being
 * reclaimed, the entries the held list also holds. A reclaimer that died
 * inside shg__hold_split() after linking held batches and before zeroing
 * the moved entries left them in both; finishing its batch would free
 * nodes a pin still needs. Without memory for the index, every entry of a
 * dead slot's reclaiming batch is zeroed instead (a leak, never a double
 * free; the quiescent sweep finds them).
 */
void shg__dedupe_held(struct shg_seg *seg)
{
	uint64_t cur = shg__ld64_relaxed(&seg->hdr->held_head), n = 0;
	uint64_t bound = fifo_bound(seg), off;
	struct shg__offvec v = { 0 };
	struct shg_batch *b, *r;
	bool oom = false;
	uint32_t i, t, c;

	while (cur && n++ < bound && (b = batch_at(seg, cur))) {
		for (i = 0, c = batch_count(b); i < c && !oom; i++)
			if ((off = ent_off(b, i)) && shg__offvec_push(&v, off))
				oom = true;
		cur = shg__ld64_relaxed(&b->next);
	}
	if (!oom && !v.n)
		return;
	if (!oom)
		qsort(v.v, v.n, sizeof(v.v[0]), shg__cmp_u64);
	for (t = 0; t < seg->max_threads; t++) {
		r = batch_at(seg,
			     atomic_load_explicit(&seg->threads[t].reclaiming,
						  memory_order_relaxed));
		if (!r || (oom && shg__tslot_alive(seg, t)))
			continue;
		for (i = 0, c = batch_count(r); i < c; i++) {
			off = ent_off(r, i);
			if (off && (oom || bsearch(&off, v.v, v.n, sizeof(off),
						   shg__cmp_u64)))
				ent_clear(r, i);
		}
	}
	free(v.v);
}

void shg__held_by_key(struct shg_seg *seg, const uint64_t *keys,
		      uint64_t *bytes, size_t n)
{
	uint64_t cur, tag, k = 0, bound = fifo_bound(seg);
	const uint64_t *hit;
	struct shg_batch *b;

	if (!n || shg__lock(seg, &seg->hdr->limbo_lock, shg__limbo_repair))
		return;
	cur = shg__ld64_relaxed(&seg->hdr->held_head);
	while (cur && k++ < bound && (b = batch_at(seg, cur))) {
		tag = shg__ld64_relaxed(&b->tag);
		hit = tag ? bsearch(&tag, keys, n, sizeof(*keys),
				    shg__cmp_u64) :
			    NULL;
		if (hit)
			bytes[hit - keys] += shg__ld64_relaxed(&b->bytes);
		cur = shg__ld64_relaxed(&b->next);
	}
	shg__unlock(seg, &seg->hdr->limbo_lock);
}
