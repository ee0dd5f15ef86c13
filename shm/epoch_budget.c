/* SPDX-License-Identifier: MIT */
/*
 * The retire budget and the reader list: how much retired memory may wait
 * for a stalled reader, who that reader is, and what every reader slot
 * shows. Not compiled on its own: epoch.c includes it, sharing its static
 * helpers.
 */

/* ---- retire budget ---------------------------------------------------- */

uint64_t shg__retired_total(struct shg_seg *seg)
{
	uint64_t sum = atomic_load_explicit(&seg->hdr->retired_bytes,
					    memory_order_relaxed) +
		       shg__held_bytes(seg);
	uint32_t i;

	for (i = 0; i < seg->max_threads; i++) {
		struct shg_tslot *s = &seg->threads[i];
		uint64_t o;
		struct shg_batch *b;

		if (!atomic_load_explicit(&s->owner, memory_order_relaxed))
			continue;
		o = atomic_load_explicit(&s->limbo_open, memory_order_acquire);
		b = o ? batch_at(seg, o) : NULL;
		if (b)
			sum += shg__ld64_relaxed(&b->bytes);
	}
	return sum;
}

/* Sealed bytes plus the caller's own open batch (cheap: no slot scan). */
static bool within_budget(struct shg_seg *seg, struct shg__tctx *ctx)
{
	uint64_t o = atomic_load_explicit(&ctx->slot->limbo_open,
					  memory_order_relaxed);
	struct shg_batch *b = o ? batch_at(seg, o) : NULL;
	uint64_t sum = atomic_load_explicit(&seg->hdr->retired_bytes,
					    memory_order_relaxed);

	return sum + (b ? shg__ld64_relaxed(&b->bytes) : 0) <=
	       seg->hdr->retire_budget;
}

int shg_budget_check(struct shg_seg *seg, unsigned timeout_ms)
{
	struct shg__tctx *ctx;
	pid_t pid;
	uint64_t bytes;
	int err;

	err = shg__tctx_get(seg, &ctx);
	if (err)
		return err;
	/* The common case costs two loads: no reclaim pass (and so no
	 * membarrier) unless the budget is exceeded. */
	if (within_budget(seg, ctx))
		return 0;
	reclaim_pass(seg, ctx);
	if (!within_budget(seg, ctx) && !ctx->hot.nest) {
		err = shg_synchronize(seg, timeout_ms);
		if (err && err != SHG_EBUDGET)
			return err;
		reclaim_pass(seg, ctx);
	}
	if (within_budget(seg, ctx)) {
		set_stall(seg, 0, 0);
		return 0;
	}
	if (shg_stalled_reader(seg, &pid, &bytes))
		set_stall(seg, pid, bytes);
	return SHG_EBUDGET;
}

bool shg_stalled_reader(struct shg_seg *seg, pid_t *pid, uint64_t *bytes)
{
	uint64_t first = UINT64_MAX, since;
	uint32_t i, best = seg->max_threads;

	for (i = 0; i < seg->max_threads; i++) {
		struct shg_tslot *s = &seg->threads[i];

		since = atomic_load_explicit(&s->blocked_since_ns,
					     memory_order_relaxed);
		if (!since || since >= first)
			continue;
		if (!atomic_load_explicit(&s->owner, memory_order_relaxed) ||
		    !atomic_load_explicit(&s->epoch, memory_order_relaxed) ||
		    !shg__tslot_alive(seg, i))
			continue;
		first = since;
		best = i;
	}
	if (best == seg->max_threads)
		return false;
	if (pid)
		*pid = slot_pid(seg, &seg->threads[best], NULL);
	if (bytes)
		*bytes = atomic_load_explicit(&seg->threads[best].blocked_bytes,
					      memory_order_relaxed);
	return true;
}

/* ---- readers ---------------------------------------------------------- */

int shg_reader_list(struct shg_seg *seg, struct shg_reader_info *out,
		    unsigned max)
{
	uint64_t global =
		atomic_load_explicit(&seg->hdr->epoch, memory_order_relaxed);
	uint64_t now = shg__now_ns(), mine = shg__pidns_id();
	unsigned n = 0;
	uint32_t i;

	for (i = 0; i < seg->max_threads; i++) {
		struct shg_tslot *s = &seg->threads[i];
		struct shg_reader_info *r;
		uint64_t e, since;

		if (!atomic_load_explicit(&s->owner, memory_order_acquire))
			continue;
		if (n++ >= max || !out)
			continue;
		r = &out[n - 1];
		memset(r, 0, sizeof(*r));
		e = atomic_load_explicit(&s->epoch, memory_order_relaxed);
		since = atomic_load_explicit(&s->blocked_since_ns,
					     memory_order_relaxed);
		r->slot = i;
		r->pid = slot_pid(seg, s, &r->flavor);
		r->tid = __atomic_load_n(&s->tid, __ATOMIC_RELAXED);
		r->other_pidns = slot_other_pidns(seg, s, mine);
		r->alive = shg__tslot_alive(seg, i);
		r->in_section = e != 0;
		r->epoch = e;
		r->epoch_lag = e && global >= e ? global - e : 0;
		r->blocked_ns = since && now > since ? now - since : 0;
		r->held_bytes =
			since ? atomic_load_explicit(&s->blocked_bytes,
						     memory_order_relaxed) :
				0;
	}
	return (int)n;
}
