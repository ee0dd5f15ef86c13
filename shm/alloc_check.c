/* SPDX-License-Identifier: MIT */
/*
 * The allocator's slow, read-mostly side: statistics, its part of the
 * checker, the walk over allocated blocks and the live leak sweep's view.
 * Not compiled on its own: alloc.c includes it at its end (it shares
 * alloc.c's static helpers and class table), so the hot path in alloc.c
 * stays short to read while everything still inlines as one unit.
 */

/* ---- statistics ---------------------------------------------------------- */

static void stats_tables(struct shg_seg *seg, struct shg_stats *st)
{
	uint32_t i;

	for (i = 0; i < seg->max_procs; i++)
		if (atomic_load_explicit(&seg->procs[i].token,
					 memory_order_relaxed))
			st->procs++;
	for (i = 0; i < seg->max_threads; i++)
		if (atomic_load_explicit(&seg->threads[i].owner,
					 memory_order_relaxed))
			st->threads++;
	for (i = 0; i < seg->max_roots; i++)
		if (atomic_load_explicit(&seg->roots[i].state,
					 memory_order_relaxed) != SHG_ROOT_FREE)
			st->roots++;
}

/* One SMALL span into @st (relaxed loads: may be slightly stale). */
static void stats_small(struct shg_seg *seg, struct shg_stats *st, uint32_t idx,
			uint64_t w)
{
	unsigned cls = SHG_SPAN_CLASS(w), node = SHG_SPAN_NODE(w);
	const struct cls_info *ci;
	uint32_t used;

	if (cls >= SHG_NUM_CLASSES)
		return;
	ci = &cls_tab[cls];
	used = used_load(&seg->spans[idx]);
	if (used > ci->cap)
		used = ci->cap;
	st->cls[cls].spans++;
	st->cls[cls].used_blocks += used;
	st->cls[cls].total_blocks += ci->cap;
	st->small_used_bytes += (uint64_t)used * ci->size;
	if (node < SHG_MAX_NODES)
		st->node[node].used_bytes += (uint64_t)used * ci->size;
}

/**
 * shg_stats_get() - see shmgraph.h. Scans the span descriptors with
 * relaxed loads; on a live segment the figures may be slightly stale.
 * Large blocks count whole spans; used blocks of a small span include
 * remote frees its owner has not collected yet.
 */
int shg_stats_get(struct shg_seg *seg, struct shg_stats *st)
{
	struct shg_hdr *hdr;
	uint32_t top, i, c;
	unsigned k, node;
	uint64_t w;

	if (!seg || !st)
		return -EINVAL;
	memset(st, 0, sizeof(*st));
	hdr = seg->hdr;
	st->capacity = seg->capacity;
	st->backed = atomic_load_explicit(&hdr->backed, memory_order_relaxed);
	st->retired_bytes = shg__retired_total(seg);
	st->reclaimed_bytes = atomic_load_explicit(&hdr->reclaimed_bytes,
						   memory_order_relaxed);
	st->reclaimed_blocks = atomic_load_explicit(&hdr->reclaimed_blocks,
						    memory_order_relaxed);
	st->global_epoch =
		atomic_load_explicit(&hdr->epoch, memory_order_relaxed);
	st->nodes = seg->nodes;
	for (k = 0; k < SHG_NUM_CLASSES; k++)
		st->cls[k].size = cls_tab[k].size;
	stats_tables(seg, st);

	top = heap_spans(seg);
	st->heap_bytes = (uint64_t)top * SPAN_BYTES;
	for (i = 0; i < top; i += c) {
		w = word_load(&seg->spans[i]);
		c = SHG_SPAN_COUNT(w);
		node = SHG_SPAN_NODE(w);
		if (c == 0 || c > top - i)
			c = 1;
		switch (SHG_SPAN_STATE(w)) {
		case SHG_SPAN_FREE:
			st->free_span_bytes += (uint64_t)c * SPAN_BYTES;
			break;
		case SHG_SPAN_SMALL:
			c = 1;
			stats_small(seg, st, i, w);
			break;
		case SHG_SPAN_LARGE:
			st->large_used_bytes += (uint64_t)c * SPAN_BYTES;
			if (node < SHG_MAX_NODES)
				st->node[node].used_bytes +=
					(uint64_t)c * SPAN_BYTES;
			break;
		default: /* transient (live segment) or corrupt: step on */
			c = 1;
			continue;
		}
		if (node < SHG_MAX_NODES)
			st->node[node].span_bytes += (uint64_t)c * SPAN_BYTES;
	}
	return 0;
}

/* ---- check --------------------------------------------------------------- */

enum {
	F_HEAD = 1, /* extent head */
	F_LISTED = 2, /* seen on a bin or abandoned list */
	F_FREE = 4, /* FREE head: must be in a bin */
	F_ORPHAN = 8, /* SMALL with owner 0: must be on an abandoned list */
};

struct chk {
	struct shg_seg *seg;
	shg_problem_fn fn;
	void *arg;
	struct shg_check_report *rep;
	uint32_t top;
	uint8_t *fl; /* per span: F_* */
	uint8_t *tslot; /* per thread slot: 0 unknown, 1 live, 2 dead, 3 free */
	uint64_t free_b, used_b, waste_b, leaked_b;
	uint64_t node_b[SHG_MAX_NODES];
	uint32_t problems;
	bool tiling_bad;
};

#define PROBLEM(ck, ...)                                                   \
	do {                                                               \
		(ck)->problems++;                                          \
		shg__problem((ck)->fn, (ck)->arg, (ck)->rep, SHG_ECORRUPT, \
			     __VA_ARGS__);                                 \
	} while (0)

static unsigned tslot_state(struct chk *ck, uint32_t t)
{
	if (!ck->tslot[t]) {
		if (!atomic_load_explicit(&ck->seg->threads[t].owner,
					  memory_order_relaxed))
			ck->tslot[t] = 3;
		else
			ck->tslot[t] = shg__tslot_alive(ck->seg, t) ? 1 : 2;
	}
	return ck->tslot[t];
}

/* A free list problem found by one walk: reported unless a re-walk of a
 * live owner's span shows it was a race (check_small). */
struct list_problem {
	char msg[112];
};

/* Walk one free list of span @i; marks entries in @seen. Returns its
 * length; records a bad entry or a repeat (cycle, or on both lists) in
 * @lp (the first only). */
static uint32_t check_list(struct chk *ck, uint32_t i,
			   const struct cls_info *ci, uint32_t bump, uint64_t b,
			   uint64_t *seen, const char *what,
			   struct list_problem *lp)
{
	uint64_t base = span_off(ck->seg, i);
	uint32_t n = 0, k;

	for (; b; b = blk_next(ck->seg, b)) {
		k = blk_index(b - base, ci, bump);
		if (k == UINT32_MAX) {
			snprintf(
				lp->msg, sizeof(lp->msg),
				"span %u: %s free list entry %#llx is not a handed-out block",
				i, what, (unsigned long long)b);
			break;
		}
		if (seen[k / 64] >> (k % 64) & 1) {
			snprintf(
				lp->msg, sizeof(lp->msg),
				"span %u: block %u twice on the free lists (%s)",
				i, k, what);
			break;
		}
		seen[k / 64] |= 1ull << (k % 64);
		n++;
	}
	return n;
}

/*
 * A live owner pops and pushes its local free list without a lock, and
 * other threads push onto the remote list, so a walk can follow a block
 * that was handed out meanwhile (its first word is then node data). A
 * problem in a live owner's span counts only when two walks in a row find
 * it and neither saw the list heads or bump move while it walked; a
 * changing list decides nothing (LIVE_TRIES walks at most). A dead or
 * idle owner's lists do not move, so a real problem is found on the first
 * two walks.
 */
#define LIVE_TRIES 4

struct list_heads {
	uint64_t local, remote;
	uint32_t bump;
};

static struct list_heads read_heads(struct shg_span *sp)
{
	struct list_heads h;

	h.local = shg__ld64_relaxed(&sp->free_head);
	h.remote = atomic_load_explicit(&sp->remote_head, memory_order_acquire);
	h.bump = shg__ld32_relaxed(&sp->bump);
	return h;
}

static bool heads_equal(struct list_heads a, struct list_heads b)
{
	return a.local == b.local && a.remote == b.remote && a.bump == b.bump;
}

/* Walk both free lists of span @i once: *@l, *@r their lengths. Returns
 * whether the heads stayed put; @lp gets the first problem ("" if none). */
static bool walk_lists(struct chk *ck, uint32_t i, const struct cls_info *ci,
		       uint32_t *l, uint32_t *r, struct list_problem *lp)
{
	struct shg_span *sp = &ck->seg->spans[i];
	uint64_t seen[MAX_BLOCKS / 64] = { 0 };
	struct list_heads h = read_heads(sp), h2;
	uint32_t bump = h.bump > ci->cap ? ci->cap : h.bump;
	struct list_problem second = { { 0 } };

	lp->msg[0] = 0;
	*l = check_list(ck, i, ci, bump, h.local, seen, "local", lp);
	*r = check_list(ck, i, ci, bump, h.remote, seen, "remote",
			lp->msg[0] ? &second : lp);
	h2 = read_heads(sp);
	return heads_equal(h, h2);
}

/* Both lists of span @i, re-walked while a live owner's race may explain
 * a problem (see LIVE_TRIES); returns the allocated block count. */
static uint32_t check_lists(struct chk *ck, uint32_t i,
			    const struct cls_info *ci, bool live)
{
	struct list_problem lp, prev = { { 0 } };
	uint32_t l = 0, r = 0, t, bump;
	bool stable, prev_stable = false;

	for (t = 0; t < LIVE_TRIES; t++) {
		stable = walk_lists(ck, i, ci, &l, &r, &lp);
		if (!lp.msg[0])
			break;
		if (!live ||
		    (stable && prev_stable && !strcmp(lp.msg, prev.msg))) {
			PROBLEM(ck, "%s", lp.msg);
			break;
		}
		prev = lp;
		prev_stable = stable;
	}
	bump = shg__ld32_relaxed(&ck->seg->spans[i].bump);
	if (bump > ci->cap)
		bump = ci->cap;
	return l + r > bump ? 0 : bump - l - r;
}

static void check_small(struct chk *ck, uint32_t i, uint64_t w)
{
	struct shg_span *sp = &ck->seg->spans[i];
	unsigned cls = SHG_SPAN_CLASS(w), node = SHG_SPAN_NODE(w);
	const struct cls_info *ci;
	uint32_t bump, alloc, owner;
	bool live;

	if (cls >= SHG_NUM_CLASSES) {
		PROBLEM(ck, "span %u: size class %u out of range", i, cls);
		return;
	}
	ci = &cls_tab[cls];
	bump = shg__ld32_relaxed(&sp->bump);
	if (bump > ci->cap)
		PROBLEM(ck, "span %u: bump %u over capacity %u", i, bump,
			ci->cap);
	owner = atomic_load_explicit(&sp->owner, memory_order_relaxed);
	live = owner && owner <= ck->seg->max_threads &&
	       tslot_state(ck, owner - 1) == 1;
	alloc = check_lists(ck, i, ci, live);
	ck->free_b += (uint64_t)(ci->cap - alloc) * ci->size;
	ck->used_b += (uint64_t)alloc * ci->size;
	ck->waste_b += SPAN_BYTES - (uint64_t)ci->cap * ci->size;
	if (owner == 0) {
		ck->fl[i] |= F_ORPHAN;
	} else if (owner == SHG_OWNER_SWEEP) {
		/* a dead thread's span waiting for the leak sweep */
		ck->leaked_b += (uint64_t)(ci->cap - alloc) * ci->size;
	} else if (owner > ck->seg->max_threads) {
		PROBLEM(ck, "span %u: owner %u out of range", i, owner);
	} else if (tslot_state(ck, owner - 1) == 3) {
		PROBLEM(ck, "span %u: owned by free thread slot %u", i,
			owner - 1);
	} else if (tslot_state(ck, owner - 1) == 2) {
		ck->leaked_b += (uint64_t)(ci->cap - alloc) * ci->size;
	}
	(void)node;
}

/* One extent headed by @i: tails, tags, accounting. */
static void check_extent(struct chk *ck, uint32_t i, uint64_t w, uint32_t c,
			 int *prev_free)
{
	struct shg_span *spans = ck->seg->spans;
	unsigned st = SHG_SPAN_STATE(w), node = SHG_SPAN_NODE(w);
	uint64_t tw = SHG_SPAN_WORD(SHG_SPAN_TAIL, node, 0, 0);
	uint32_t j;

	ck->fl[i] |= F_HEAD;
	for (j = 1; j < c; j++) {
		if (word_load(&spans[i + j]) != tw) {
			PROBLEM(ck, "span %u: not a tail of extent %u", i + j,
				i);
			ck->tiling_bad = true;
			break;
		}
		if (st == SHG_SPAN_LARGE &&
		    shg__ld32_relaxed(&spans[i + j].head) != i) {
			PROBLEM(ck,
				"span %u: tail of large block %u names head %u",
				i + j, i,
				shg__ld32_relaxed(&spans[i + j].head));
			break;
		}
	}
	if (node < SHG_MAX_NODES)
		ck->node_b[node] += (uint64_t)c * SPAN_BYTES;
	switch (st) {
	case SHG_SPAN_FREE:
		ck->fl[i] |= F_FREE;
		ck->free_b += (uint64_t)c * SPAN_BYTES;
		if (shg__ld32_relaxed(&spans[i + c - 1].head) != i)
			PROBLEM(ck, "free extent %u: boundary tag names %u", i,
				shg__ld32_relaxed(&spans[i + c - 1].head));
		if (*prev_free == (int)node)
			PROBLEM(ck, "free extent %u: neighbour not coalesced",
				i);
		*prev_free = (int)node;
		return;
	case SHG_SPAN_SMALL:
		if (c != 1)
			PROBLEM(ck, "small span %u: count %u", i, c);
		check_small(ck, i, w);
		break;
	default:
		ck->used_b += (uint64_t)c * SPAN_BYTES;
		break;
	}
	*prev_free = -1;
}

static void check_tiling(struct chk *ck)
{
	uint32_t i = 0, c;
	int prev_free = -1;
	unsigned st;
	uint64_t w;

	while (i < ck->top) {
		w = word_load(&ck->seg->spans[i]);
		st = SHG_SPAN_STATE(w);
		c = SHG_SPAN_COUNT(w);
		if (st != SHG_SPAN_FREE && st != SHG_SPAN_SMALL &&
		    st != SHG_SPAN_LARGE) {
			PROBLEM(ck, "span %u: state %u where an extent starts",
				i, st);
			ck->tiling_bad = true;
			prev_free = -1;
			i++;
			continue;
		}
		if (c == 0 || c > ck->top - i) {
			PROBLEM(ck,
				"span %u: extent of %u spans past heap top %u",
				i, c, ck->top);
			ck->tiling_bad = true;
			prev_free = -1;
			i++;
			continue;
		}
		if (SHG_SPAN_NODE(w) >= ck->seg->nodes)
			PROBLEM(ck, "span %u: node %u out of range", i,
				SHG_SPAN_NODE(w));
		check_extent(ck, i, w, c, &prev_free);
		i += c;
	}
}

/* Walk one bin or abandoned list of arena @n. */
static void check_arena_list(struct chk *ck, unsigned n, uint32_t h, bool bin,
			     unsigned k)
{
	struct shg_span *spans = ck->seg->spans;
	uint32_t prev = 0, steps = 0, x, c;
	uint64_t w;

	for (; h; prev = h, h = shg__ld32_relaxed(&spans[h - 1].next)) {
		if (h > ck->top || ++steps > ck->top) {
			PROBLEM(ck, "arena %u %s %u: bad link %u", n,
				bin ? "bin" : "abandoned list", k, h);
			return;
		}
		x = h - 1;
		w = word_load(&spans[x]);
		c = SHG_SPAN_COUNT(w);
		if (!(ck->fl[x] & F_HEAD) || SHG_SPAN_NODE(w) != n ||
		    (bin &&
		     (SHG_SPAN_STATE(w) != SHG_SPAN_FREE ||
		      (c <= SHG_SPAN_BINS - 1 ? c - 1 : SHG_SPAN_BINS - 1) !=
			      k)) ||
		    (!bin && (SHG_SPAN_STATE(w) != SHG_SPAN_SMALL ||
			      SHG_SPAN_CLASS(w) != k ||
			      atomic_load_explicit(&spans[x].owner,
						   memory_order_relaxed)))) {
			PROBLEM(ck,
				"arena %u %s %u: span %u does not belong there",
				n, bin ? "bin" : "abandoned list", k, x);
			return;
		}
		if (ck->fl[x] & F_LISTED) {
			PROBLEM(ck, "arena %u: span %u listed twice", n, x);
			return;
		}
		ck->fl[x] |= F_LISTED;
		if (bin && shg__ld32_relaxed(&spans[x].prev) != prev)
			PROBLEM(ck,
				"arena %u bin %u: span %u back link %u, want %u",
				n, k, x, shg__ld32_relaxed(&spans[x].prev),
				prev);
	}
}

static void check_arenas(struct chk *ck)
{
	struct shg_seg *seg = ck->seg;
	unsigned n, k;
	uint32_t i;

	for (n = 0; n < SHG_MAX_NODES; n++) {
		struct shg_arena *a = &seg->arenas[n];

		for (k = 0; k < SHG_SPAN_BINS + SHG_NUM_CLASSES; k++) {
			bool bin = k < SHG_SPAN_BINS;
			uint32_t h =
				bin ? shg__ld32_relaxed(&a->bins[k]) :
				      shg__ld32_relaxed(
					      &a->abandoned[k - SHG_SPAN_BINS]);

			if (h && n >= seg->nodes)
				PROBLEM(ck, "arena %u (unused node) has lists",
					n);
			else if (h)
				check_arena_list(ck, n, h, bin,
						 bin ? k : k - SHG_SPAN_BINS);
		}
		if (n < seg->nodes &&
		    __atomic_load_n(&a->span_bytes, __ATOMIC_RELAXED) !=
			    ck->node_b[n])
			PROBLEM(ck,
				"arena %u: span_bytes %llu, extents hold %llu",
				n,
				(unsigned long long)__atomic_load_n(
					&a->span_bytes, __ATOMIC_RELAXED),
				(unsigned long long)ck->node_b[n]);
	}
	for (i = 0; i < ck->top; i++) {
		if ((ck->fl[i] & F_FREE) && !(ck->fl[i] & F_LISTED))
			PROBLEM(ck, "free extent %u is in no bin", i);
		if ((ck->fl[i] & F_ORPHAN) && !(ck->fl[i] & F_LISTED))
			PROBLEM(ck, "ownerless span %u is on no abandoned list",
				i);
	}
}

/**
 * shg__alloc_check() - verify the allocator's metadata.
 *
 * Checks the tiling (heads, tails, boundary tags, counts within heap_top,
 * nodes), every small span (class, bump, local free list and remote stack:
 * entries are handed-out block starts, no repeats, no block on both), the
 * arenas' bins and abandoned lists against the descriptors, span_bytes per
 * node, owners' thread slots, and that free + used + waste bytes add up to
 * heap_top. Adds to @rep's free_bytes, used_bytes and leaked_bytes (free
 * blocks in spans of dead owners). Reads only. On a live segment extents,
 * bins and owners move under it (under the arena locks), so a pass that
 * finds a problem is repeated holding every arena lock, where they stand
 * still, and only that pass reports; a healthy segment is checked without
 * delaying writers (a locked pass stops a writer that needs a new span
 * for its duration: about 70 ms at 500k blocks on the 2-core VM). Live
 * owners' free lists still move, and check_lists re-walks them before it
 * believes a problem. After a crash it must follow a repair of the
 * dead thread's arenas (shg__alloc_abandon with ctx NULL, shg_recover).
 * Return: the number of problems found, or -ENOMEM.
 */
static int alloc_check_pass(struct shg_seg *seg, shg_problem_fn fn, void *arg,
			    struct shg_check_report *rep, bool lock)
{
	struct chk ck = { .seg = seg, .fn = fn, .arg = arg, .rep = rep };
	uint64_t top_b, backed;
	unsigned locked = 0;

	/* Before heap_top: growth happens under an arena lock. */
	if (lock) {
		locked = shg__arenas_lock_all(seg);
		if (locked < seg->nodes)
			PROBLEM(&ck, "arena %u: its lock cannot be taken",
				locked);
	}
	top_b = atomic_load_explicit(&seg->hdr->heap_top, memory_order_acquire);
	backed = atomic_load_explicit(&seg->hdr->backed, memory_order_acquire);
	ck.top = heap_spans(seg);
	if ((top_b & SPAN_MASK) || top_b > (uint64_t)seg->nspans * SPAN_BYTES)
		PROBLEM(&ck,
			"heap_top %llu not a span multiple within %u spans",
			(unsigned long long)top_b, seg->nspans);
	else if (seg->heap_off + top_b > backed)
		PROBLEM(&ck, "heap_top %llu beyond backed bytes %llu",
			(unsigned long long)top_b, (unsigned long long)backed);
	ck.fl = calloc(ck.top ? ck.top : 1, 1);
	ck.tslot = calloc(seg->max_threads ? seg->max_threads : 1, 1);
	if (!ck.fl || !ck.tslot) {
		shg__arenas_unlock(seg, locked);
		free(ck.fl);
		free(ck.tslot);
		return -ENOMEM;
	}
	check_tiling(&ck);
	check_arenas(&ck);
	shg__arenas_unlock(seg, locked);
	if (!ck.tiling_bad &&
	    ck.free_b + ck.used_b + ck.waste_b != (uint64_t)ck.top * SPAN_BYTES)
		PROBLEM(&ck, "free %llu + used %llu + waste %llu != heap %llu",
			(unsigned long long)ck.free_b,
			(unsigned long long)ck.used_b,
			(unsigned long long)ck.waste_b,
			(unsigned long long)ck.top * SPAN_BYTES);
	if (rep) {
		rep->free_bytes += ck.free_b;
		rep->used_bytes += ck.used_b;
		rep->leaked_bytes += ck.leaked_b;
	}
	free(ck.fl);
	free(ck.tslot);
	return (int)ck.problems;
}

int shg__alloc_check(struct shg_seg *seg, shg_problem_fn fn, void *arg,
		     struct shg_check_report *rep)
{
	struct shg_check_report quiet = { 0 };
	int n;

	if (!seg)
		return -EINVAL;
	n = alloc_check_pass(seg, NULL, NULL, &quiet, false);
	if (n != 0)
		return n < 0 ? n : alloc_check_pass(seg, fn, arg, rep, true);
	if (rep) {
		rep->free_bytes += quiet.free_bytes;
		rep->used_bytes += quiet.used_bytes;
		rep->leaked_bytes += quiet.leaked_bytes;
	}
	return 0;
}

/* ---- walk ---------------------------------------------------------------- */

/* Mark the blocks of one free list of span @i (validated, bounded). */
static void walk_mark(struct shg_seg *seg, uint32_t i,
		      const struct cls_info *ci, uint32_t bump, uint64_t b,
		      uint64_t *seen)
{
	uint64_t base = span_off(seg, i);
	uint32_t k;

	for (; b; b = blk_next(seg, b)) {
		k = blk_index(b - base, ci, bump);
		if (k == UINT32_MAX || (seen[k / 64] >> (k % 64) & 1))
			return;
		seen[k / 64] |= 1ull << (k % 64);
	}
}

static void walk_small(struct shg_seg *seg, uint32_t i, uint64_t w,
		       void (*fn)(void *arg, uint64_t off, uint64_t size),
		       void *arg)
{
	struct shg_span *sp = &seg->spans[i];
	uint64_t seen[MAX_BLOCKS / 64] = { 0 };
	unsigned cls = SHG_SPAN_CLASS(w);
	const struct cls_info *ci;
	uint32_t bump, k;

	if (cls >= SHG_NUM_CLASSES)
		return;
	ci = &cls_tab[cls];
	bump = shg__ld32_relaxed(&sp->bump);
	if (bump > ci->cap)
		bump = ci->cap;
	walk_mark(seg, i, ci, bump, shg__ld64_relaxed(&sp->free_head), seen);
	walk_mark(seg, i, ci, bump,
		  atomic_load_explicit(&sp->remote_head, memory_order_acquire),
		  seen);
	for (k = 0; k < bump; k++)
		if (!(seen[k / 64] >> (k % 64) & 1))
			fn(arg, span_off(seg, i) + (uint64_t)k * ci->size,
			   ci->size);
}

/**
 * shg__alloc_walk() - call @fn(@arg, off, size) for every allocated block:
 * small blocks handed out and on neither free list of their span, and each
 * large block (size = its whole spans). @fn may free the block it is given.
 * Quiescent use only (owners' lists are read without their cooperation).
 * Return: 0 or -EINVAL.
 */
int shg__alloc_walk(struct shg_seg *seg,
		    void (*fn)(void *arg, uint64_t off, uint64_t size),
		    void *arg)
{
	uint32_t top, i, c;
	uint64_t w;

	if (!seg || !fn)
		return -EINVAL;
	top = heap_spans(seg);
	for (i = 0; i < top; i += c) {
		w = word_load(&seg->spans[i]);
		c = SHG_SPAN_COUNT(w);
		if (c == 0 || c > top - i)
			c = 1;
		switch (SHG_SPAN_STATE(w)) {
		case SHG_SPAN_SMALL:
			c = 1;
			walk_small(seg, i, w, fn, arg);
			break;
		case SHG_SPAN_LARGE:
			fn(arg, span_off(seg, i), (uint64_t)c * SPAN_BYTES);
			break;
		case SHG_SPAN_FREE:
			break;
		default:
			c = 1;
			break;
		}
	}
	return 0;
}

/* ---- the live leak sweep's view ------------------------------------------ */

/*
 * Liveness of process tokens (token -> alive), memoized for one walk; a
 * token that cannot be memoized (-ENOMEM) is simply asked again.
 */
static bool token_dead(struct shg_seg *seg, struct shg__omap *m, uint64_t tok)
{
	uint64_t alive;

	if (tok == 0 || tok == SHG_TOKEN_MIXED)
		return false; /* unknown owner: never sweepable */
	if (shg__omap_get(m, tok, &alive))
		return !alive;
	alive = shg__token_alive(seg, tok);
	(void)shg__omap_put(m, tok, alive);
	return !alive;
}

/**
 * shg__alloc_walk_sweepable() - the blocks the live leak sweep may free:
 * @blk(arg, off, size) for every allocated block of a SHG_OWNER_SWEEP span
 * and every large block whose owner_token is a dead process's; @span(arg,
 * idx) for every SHG_OWNER_SWEEP span. Safe on a live segment: nobody owns
 * or allocates from those spans (only remote frees land on them, which the
 * walk reads with acquire), and a dead process allocates no large block.
 * Return: 0 or -EINVAL.
 */
int shg__alloc_walk_sweepable(struct shg_seg *seg,
			      void (*blk)(void *arg, uint64_t off,
					  uint64_t size),
			      void (*span)(void *arg, uint32_t idx), void *arg)
{
	struct shg__omap memo = { 0 };
	uint32_t top, i, c;
	uint64_t w;

	if (!seg || !blk)
		return -EINVAL;
	top = heap_spans(seg);
	for (i = 0; i < top; i += c) {
		w = word_load(&seg->spans[i]);
		c = SHG_SPAN_COUNT(w);
		if (c == 0 || c > top - i)
			c = 1;
		switch (SHG_SPAN_STATE(w)) {
		case SHG_SPAN_SMALL:
			c = 1;
			if (atomic_load_explicit(&seg->spans[i].owner,
						 memory_order_acquire) !=
			    SHG_OWNER_SWEEP)
				break;
			if (span)
				span(arg, i);
			walk_small(seg, i, w, blk, arg);
			break;
		case SHG_SPAN_LARGE:
			if (token_dead(seg, &memo,
				       shg__ld64_relaxed(
					       &seg->spans[i].owner_token)))
				blk(arg, span_off(seg, i),
				    (uint64_t)c * SPAN_BYTES);
			break;
		default:
			break;
		}
	}
	shg__omap_free(&memo);
	return 0;
}

/**
 * shg__alloc_sweep_free() - free block @off for the leak sweep, after
 * checking again that it is still sweepable: in a SHG_OWNER_SWEEP span, or
 * the head of a large block whose owner_token is @large_token (a dead
 * process's: such a word cannot be written again, since only a live
 * process stores its own token). Return: 0 or SHG_EBADOFF.
 */
int shg__alloc_sweep_free(struct shg_seg *seg, struct shg__tctx *ctx,
			  uint64_t off, uint64_t large_token)
{
	uint64_t rel = off - seg->heap_off, w;
	struct shg_span *sp;

	if (off < seg->heap_off || (rel >> SHG_SPAN_SHIFT) >= heap_spans(seg))
		return SHG_EBADOFF;
	sp = &seg->spans[rel >> SHG_SPAN_SHIFT];
	w = word_load(sp);
	if (SHG_SPAN_STATE(w) == SHG_SPAN_SMALL) {
		if (atomic_load_explicit(&sp->owner, memory_order_acquire) !=
		    SHG_OWNER_SWEEP)
			return SHG_EBADOFF;
	} else if (SHG_SPAN_STATE(w) != SHG_SPAN_LARGE ||
		   shg__ld64_relaxed(&sp->owner_token) != large_token ||
		   !large_token) {
		return SHG_EBADOFF;
	}
	return free_block(seg, ctx, off);
}

/* The owner_token of the span holding @off (large blocks: the head). */
uint64_t shg__alloc_owner_token(struct shg_seg *seg, uint64_t off)
{
	uint64_t rel = off - seg->heap_off;

	if (off < seg->heap_off || (rel >> SHG_SPAN_SHIFT) >= heap_spans(seg))
		return 0;
	return shg__ld64_relaxed(
		&seg->spans[rel >> SHG_SPAN_SHIFT].owner_token);
}
