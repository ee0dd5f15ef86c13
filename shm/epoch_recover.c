/* SPDX-License-Identifier: MIT */
/*
 * Recovery of the epoch layer: adopting a dead thread's open and
 * reclaiming batches and its held records. Not compiled on its own:
 * epoch.c includes it at its end, sharing its static helpers.
 */

/* ---- recovery --------------------------------------------------------- */

/* Drop removed root value @v again, from the start, in a read section of
 * ours (staged like any drop when we can stage; slot index unknown). */
static void stage_redo_drop(struct shg_seg *seg, uint64_t v)
{
	bool rl = shg_read_lock(seg) == 0;
	uint32_t t;

	if (rl &&
	    !shg__stage_begin(seg, SHG_STAGE_DROP | ~SHG_STAGE_DROP, v, &t))
		shg__stage_drop_owned(seg, v); /* ours alone: see there */
	shg__root_drop_value(seg, (struct shg_off){ v });
	if (rl)
		shg_read_unlock(seg);
}

/*
 * The block a dead (or leaving) reclaimer named in s.freeing; limbo_lock
 * and the slot's recover_lock held; @r is its reclaiming batch if that
 * will be finished (0 if none). Returns the block to free after the
 * unlock, or 0. Cases, in the reclaimer's program order: the entry is
 * still covered by r's count, or the block is r itself (finishing r
 * frees it once); the count was shortened and the mark is intact (the
 * free did not happen: free it); the mark is gone (freed: word 0 was
 * overwritten by the free, and by whoever got the block next).
 */
static uint64_t freeing_resolve_locked(struct shg_seg *seg, struct shg_tslot *s,
				       uint64_t r)
{
	uint64_t f = atomic_load_explicit(&s->freeing, memory_order_acquire);
	struct shg_batch *rb = r ? batch_at(seg, r) : NULL;
	uint32_t c = rb ? batch_count(rb) : 0;

	atomic_store_explicit(&s->freeing, 0, memory_order_release);
	if (!f || f == r || (c && ent_off(rb, c - 1) == f))
		return 0;
	return freeing_marked(seg, f,
			      atomic_load_explicit(&s->owner,
						   memory_order_relaxed)) ?
		       f :
		       0;
}

void shg__limbo_adopt(struct shg_seg *seg, uint32_t tidx,
		      struct shg_recover_report *rep)
{
	struct shg_hdr *hdr = seg->hdr;
	struct shg__tctx *ctx = shg__tctx_peek(seg);
	struct shg_batch *b = NULL;
	struct shg_tslot *s;
	uint64_t r, o, empty = 0, adopted = 0, drop, tofree, redo = 0;

	if (tidx >= seg->max_threads)
		return;
	s = &seg->threads[tidx];
	/* F_w of the seal below. An exiting thread's unlinks precede it in
	 * program order; a dead thread's were all performed before the
	 * kernel reported it dead. */
	atomic_thread_fence(memory_order_seq_cst);
	if (shg__lock(seg, &hdr->limbo_lock, shg__limbo_repair))
		return;
	/* A commit staged before its publish: finish or drop its retires
	 * before the open batch is sealed (epoch_stage.c). */
	drop = stage_resolve_locked(seg, s, &redo);
	r = atomic_load_explicit(&s->reclaiming, memory_order_acquire);
	if (r && (fifo_contains(seg, r) || shg__held_contains(seg, r)))
		r = 0; /* died before unlinking it */
	o = atomic_load_explicit(&s->limbo_open, memory_order_acquire);
	if (o && !fifo_contains(seg, o) && (b = batch_at(seg, o))) {
		if (!batch_count(b)) {
			empty = o;
		} else {
			adopted = shg__batch_fix_bytes(seg, b);
			seal_locked(seg, o, b);
		}
	}
	SHG_CRASH_POINT("recover.limbo_sealed");
	atomic_store_explicit(&s->limbo_open, 0, memory_order_release);
	if (!r)
		atomic_store_explicit(&s->reclaiming, 0, memory_order_release);
	tofree = freeing_resolve_locked(seg, s, r);
	shg__unlock(seg, &hdr->limbo_lock);
	/* Popped (tag below a past scan's m, or held) and ours alone:
	 * finish it, with a pin snapshot taken now (after its grace). */
	SHG_CRASH_POINT("recover.limbo_unlocked");
	if (r) {
		struct pass p = { 0 };

		adopted += shg__finish_batch(seg, ctx, s, r, &p);
		shg__pass_done(&p);
	}
	if (empty)
		shg__free_now(seg, ctx, empty);
	if (tofree)
		shg__free_now(seg, ctx, tofree);
	chain_free(seg, ctx, drop);
	if (redo) /* a drop that died half-way: drop the graph again */
		stage_redo_drop(seg, redo);
	if (rep)
		rep->retired_adopted += adopted;
}

/*
 * Sorted offsets of the FIFO's and the held list's batches (NULL if empty
 * or out of memory).
 */
static uint64_t *fifo_sorted(struct shg_seg *seg, size_t *n)
{
	uint64_t cur = shg__ld64_relaxed(&seg->hdr->limbo_head), prev_tag = 0,
		 tag;
	uint64_t bound = fifo_bound(seg), *v = NULL, *nv;
	size_t cap = 0;
	struct shg_batch *b;
	bool held = false;

	*n = 0;
	for (;;) {
		if (!cur || *n >= 2 * bound || !(b = batch_at(seg, cur))) {
			if (held)
				break;
			held = true; /* then the held list (no tag order) */
			cur = shg__ld64_relaxed(&seg->hdr->held_head);
			continue;
		}
		tag = shg__ld64_relaxed(&b->tag);
		if (!held && *n && tag <= prev_tag) {
			cur = 0;
			continue;
		}
		if (*n == cap) {
			cap = cap ? 2 * cap : 64;
			nv = realloc(v, cap * sizeof(*v));
			if (!nv) {
				free(v);
				*n = 0;
				return NULL;
			}
			v = nv;
		}
		v[(*n)++] = cur;
		prev_tag = tag;
		cur = shg__ld64_relaxed(&b->next);
	}
	if (v)
		qsort(v, *n, sizeof(*v), shg__cmp_u64);
	return v;
}

/*
 * Drop slot records (open or reclaiming) naming a batch that is in the
 * FIFO: their owner died between linking and clearing (seal) or between
 * recording and unlinking (pop), holding the lock that we now hold.
 */
static void drop_stale_records(struct shg_seg *seg)
{
	size_t n;
	uint64_t *v = fifo_sorted(seg, &n);
	uint32_t i;

	for (i = 0; i < seg->max_threads; i++) {
		struct shg_tslot *s = &seg->threads[i];
		uint64_t r = atomic_load_explicit(&s->reclaiming,
						  memory_order_relaxed);
		uint64_t o = atomic_load_explicit(&s->limbo_open,
						  memory_order_relaxed);

		if (r &&
		    (v ? bsearch(&r, v, n, sizeof(*v), shg__cmp_u64) != NULL :
			 fifo_contains(seg, r) || shg__held_contains(seg, r)))
			atomic_compare_exchange_strong(&s->reclaiming, &r, 0);
		if (o &&
		    (v ? bsearch(&o, v, n, sizeof(*v), shg__cmp_u64) != NULL :
			 fifo_contains(seg, o)))
			atomic_compare_exchange_strong(&s->limbo_open, &o, 0);
	}
	free(v);
}

/* hdr.retired_bytes := bytes of the sealed FIFO (limbo_lock held). */
static void recount_sealed(struct shg_seg *seg)
{
	uint64_t cur = shg__ld64_relaxed(&seg->hdr->limbo_head), sum = 0, n = 0;
	uint64_t bound = fifo_bound(seg);
	struct shg_batch *b;

	while (cur && (b = batch_at(seg, cur)) && n++ < bound) {
		sum += shg__ld64_relaxed(&b->bytes);
		cur = shg__ld64_relaxed(&b->next);
	}
	atomic_store_explicit(&seg->hdr->retired_bytes, sum,
			      memory_order_relaxed);
}

void shg__limbo_repair(struct shg_seg *seg)
{
	struct shg_hdr *hdr = seg->hdr;
	uint64_t cur = shg__ld64_relaxed(&hdr->limbo_head), last = 0, next,
		 n = 0;
	uint64_t bound = fifo_bound(seg);
	struct shg_batch *b, *nb;

	if (cur && !batch_at(seg, cur)) {
		shg__st64_relaxed(&hdr->limbo_head, 0);
		cur = 0;
	}
	while (cur) {
		b = batch_at(seg, cur);
		next = shg__ld64_relaxed(&b->next);
		nb = batch_at(seg, next);
		/* Cut at a bad link, a tag that does not increase (this
		 * also cuts every cycle) or an absurd length. */
		if (next && (!nb ||
			     shg__ld64_relaxed(&nb->tag) <=
				     shg__ld64_relaxed(&b->tag) ||
			     ++n >= bound)) {
			shg__st64_relaxed(&b->next, 0);
			next = 0;
		}
		last = cur;
		cur = next;
	}
	shg__st64_relaxed(&hdr->limbo_tail, last);
	recount_sealed(seg);
	shg__repair_held(seg);
	drop_stale_records(seg);
	shg__dedupe_held(seg);
}
