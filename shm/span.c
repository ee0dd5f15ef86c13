/* SPDX-License-Identifier: MIT */
/*
 * Extents and per-node arenas: the span-level half of the allocator.
 *
 * The heap is cut into spans of SHG_SPAN_SIZE bytes. A run of spans (an
 * extent) is free, holds one large block, or (one span) holds small blocks
 * of one size class. This file finds, splits, coalesces and grows extents,
 * keeps each arena's bins of free extents and its lists of ownerless
 * (abandoned) small spans, and rebuilds all of that from the span
 * descriptors when a lock holder died.
 *
 * Theory of operation
 * ===================
 *
 * THE TILING. Descriptor i describes span i. The first span of an extent
 * (its head) holds word = (state, node, class, count); the other spans are
 * TAIL with the same node. A scan from span 0 that steps by head counts up
 * to heap_top visits exactly the heads. Every change of the tiling is
 * committed by ONE release store of a head word, made after everything
 * that word relies on has been written, so a crash at any instruction
 * leaves a scannable tiling:
 *
 *  - split [h, h+n) into [h, h+c) and a free rest r = h+c: r's boundary
 *    tag and FREE word are written first (r still lies inside h's extent,
 *    scans step over it), then h's word with count c.
 *  - free b and merge a free right neighbour r: tag the last span, store
 *    b's word FREE with the sum (frees and merges in one store), then turn
 *    r's old head word into TAIL.
 *  - merge a free left neighbour h: tag, store h's word with the sum, then
 *    turn b's word into TAIL.
 *
 * Between such a commit and the TAIL rewrite the absorbed span keeps a
 * stale FREE word inside another extent. That is harmless: scans step over
 * it, shg_free() and shg_block_size() accept only SMALL and LARGE heads,
 * and the backward-coalescing test rejects it (boundary tag and bin
 * membership do not match). Only a crash can make it last, and every such
 * change happens under the arena lock, whose next holder rebuilds the
 * arena (below). Stale words are never SMALL or LARGE.
 *
 * BOUNDARY TAGS. The last span of a free extent has head = the extent's
 * head index (a one-span extent: its own index), so freeing extent b finds
 * a free left neighbour through span b-1 in O(1). The candidate is trusted
 * only if its word is a FREE head of the same node ending exactly at b-1
 * and it is linked in the arena's bin for its size. Non-last spans of a
 * free extent carry no useful head. LARGE extents keep head = head index
 * in every tail (written at allocation), which the checker verifies.
 *
 * LOCKS. Every change to the word of a span placed on node N, to N's bins
 * and abandoned lists, and to a SMALL span's owner, is made under arena
 * N's robust mutex. The node of a span is fixed when its chunk is carved
 * and every word later stored to it carries that node, so arena N can be
 * rebuilt while other arenas keep working: the rebuild looks only at spans
 * whose word names node N, and those cannot change under it. Lock order:
 * an arena lock, then hdr.grow_lock. No thread ever holds two arena locks
 * (allocation drops its own before trying another arena's bins, and
 * shg__arena_repair takes them one at a time), except shg_check, which
 * takes all of them in node order and then no other lock
 * (shg__arenas_lock_all): with everyone else holding at most one, that
 * order cannot deadlock.
 *
 * GROWTH. Under grow_lock, a chunk of max(count, 32) spans past heap_top is
 * backed (posix_fallocate), placed (mbind), given descriptors (a FREE head,
 * TAIL spans, the boundary tag), and only then is heap_top published with
 * a release store; whoever loads heap_top with acquire sees the chunk's
 * words. A crash before the publish leaves garbage above heap_top that the
 * next growth overwrites; grow_lock needs no repair.
 *
 * REPAIR. When an arena lock comes back EOWNERDEAD, the arena is rebuilt
 * from one scan of the descriptors: bins, boundary tags, TAIL words,
 * abandoned lists (SMALL spans with owner 0) and span_bytes; adjacent free
 * extents are merged; corrupt heads (count 0, a TAIL or UNUSED word where a
 * head must be) become one-span free extents, runs past heap_top or into
 * another node are clamped. Abandoned spans and spans set aside for the
 * leak sweep (owner SHG_OWNER_SWEEP, never listed) whose blocks have all
 * been freed (remotely) become free extents. The rebuild is idempotent and keeps
 * the tiling valid at every store, so a crash during a repair is repaired
 * again.
 */
#include <errno.h>
#include <string.h>

#include "internal.h"

#define SPAN_BYTES ((uint64_t)SHG_SPAN_SIZE)
#define CHUNK_SPANS 32u
#define BIG_BIN (SHG_SPAN_BINS - 1)

/* Arena whose lock this thread is taking (for the EOWNERDEAD repair). */
static __thread int tl_arena = -1;

/*
 * Plain descriptor fields are written under the arena lock (or by the
 * owner) and read by concurrent scans (stats, checks); relaxed atomic
 * accesses keep those reads well defined without ordering cost.
 */
static inline uint64_t word_load(const struct shg_span *sp)
{
	return atomic_load_explicit(&sp->word, memory_order_acquire);
}

/* Release: the fields prepared before a commit are visible with it. */
static inline void word_store(struct shg_span *sp, uint64_t w)
{
	atomic_store_explicit(&sp->word, w, memory_order_release);
}

static inline uint64_t tail_word(unsigned node)
{
	return SHG_SPAN_WORD(SHG_SPAN_TAIL, node, 0, 0);
}

static inline uint64_t free_word(unsigned node, uint32_t count)
{
	return SHG_SPAN_WORD(SHG_SPAN_FREE, node, 0, count);
}

/* Spans carved so far (heap_top validated against the geometry). */
static uint32_t heap_spans(const struct shg_seg *seg)
{
	uint64_t top =
		atomic_load_explicit(&seg->hdr->heap_top, memory_order_acquire);
	uint64_t n = top >> SHG_SPAN_SHIFT;

	return n > seg->nspans ? seg->nspans : (uint32_t)n;
}

static inline unsigned bin_of(uint32_t count)
{
	return count <= BIG_BIN ? count - 1 : BIG_BIN;
}

/* The arena node used for a request from @node (policy BIND: one node). */
static unsigned eff_node(const struct shg_seg *seg, unsigned node)
{
	int32_t pol = seg->hdr->numa_policy;
	int32_t bind = seg->hdr->numa_node;
	unsigned nodes = seg->nodes ? seg->nodes : 1;

	if (pol == SHG_NUMA_BIND && bind >= 0 && (uint32_t)bind < nodes)
		return (unsigned)bind;
	return node < nodes ? node : node % nodes;
}

static int arena_lock(struct shg_seg *seg, unsigned node)
{
	int saved = tl_arena;
	int rc;

	tl_arena = (int)node;
	rc = shg__lock(seg, &seg->arenas[node].lock, shg__arena_repair);
	tl_arena = saved;
	return rc;
}

static void arena_unlock(struct shg_seg *seg, unsigned node)
{
	shg__unlock(seg, &seg->arenas[node].lock);
}

unsigned shg__arenas_lock_all(struct shg_seg *seg)
{
	unsigned n;

	for (n = 0; n < seg->nodes; n++)
		if (arena_lock(seg, n))
			break;
	return n;
}

void shg__arenas_unlock(struct shg_seg *seg, unsigned n)
{
	while (n--)
		arena_unlock(seg, n);
}

/* ---- bins ---------------------------------------------------------------
 * All under the arena lock. A false return means the lists disagree with
 * the descriptors (corruption): nothing was changed, the caller rebuilds.
 */

static bool in_bin(struct shg_seg *seg, struct shg_arena *a, uint32_t idx,
		   uint32_t count)
{
	uint32_t prev = shg__ld32_relaxed(&seg->spans[idx].prev);

	if (prev)
		return prev <= seg->nspans &&
		       shg__ld32_relaxed(&seg->spans[prev - 1].next) == idx + 1;
	return shg__ld32_relaxed(&a->bins[bin_of(count)]) == idx + 1;
}

static bool bin_remove(struct shg_seg *seg, struct shg_arena *a, uint32_t idx,
		       uint32_t count)
{
	struct shg_span *sp = &seg->spans[idx];
	uint32_t next = shg__ld32_relaxed(&sp->next),
		 prev = shg__ld32_relaxed(&sp->prev);
	uint32_t *link;

	if (next > seg->nspans || prev > seg->nspans)
		return false;
	link = prev ? &seg->spans[prev - 1].next : &a->bins[bin_of(count)];
	if (shg__ld32_relaxed(link) != idx + 1)
		return false;
	if (next && shg__ld32_relaxed(&seg->spans[next - 1].prev) != idx + 1)
		return false;
	shg__st32_relaxed(link, next);
	if (next)
		shg__st32_relaxed(&seg->spans[next - 1].prev, prev);
	shg__st32_relaxed(&sp->next, 0);
	shg__st32_relaxed(&sp->prev, 0);
	return true;
}

static bool bin_insert(struct shg_seg *seg, struct shg_arena *a, uint32_t idx,
		       uint32_t count)
{
	struct shg_span *sp = &seg->spans[idx];
	uint32_t *bin = &a->bins[bin_of(count)];
	uint32_t first = shg__ld32_relaxed(bin);

	if (first > seg->nspans || first == idx + 1)
		return false;
	shg__st32_relaxed(&sp->prev, 0);
	shg__st32_relaxed(&sp->next, first);
	if (first)
		shg__st32_relaxed(&seg->spans[first - 1].prev, idx + 1);
	shg__st32_relaxed(bin, idx + 1);
	return true;
}

/* Whether span @x (< @top) is a FREE head of @node; its count in *@count. */
static bool free_head_ok(struct shg_seg *seg, unsigned node, uint32_t x,
			 uint32_t top, uint32_t *count)
{
	uint64_t w = word_load(&seg->spans[x]);
	uint32_t c = SHG_SPAN_COUNT(w);

	if (SHG_SPAN_STATE(w) != SHG_SPAN_FREE || SHG_SPAN_NODE(w) != node ||
	    c == 0 || c > top - x)
		return false;
	*count = c;
	return true;
}

/* The free extent of @node ending at span @p, if any, via its tag. */
static bool left_free(struct shg_seg *seg, struct shg_arena *a, unsigned node,
		      uint32_t p, uint32_t top, uint32_t *h, uint32_t *hn)
{
	uint64_t w = word_load(&seg->spans[p]);
	uint32_t head, c;

	if (SHG_SPAN_NODE(w) != node)
		return false;
	switch (SHG_SPAN_STATE(w)) {
	case SHG_SPAN_FREE:
		head = p;
		break;
	case SHG_SPAN_TAIL:
		head = shg__ld32_relaxed(&seg->spans[p].head);
		if (head >= p)
			return false;
		break;
	default:
		return false;
	}
	if (shg__ld32_relaxed(&seg->spans[p].head) != head ||
	    !free_head_ok(seg, node, head, top, &c) ||
	    (uint64_t)head + c - 1 != p || !in_bin(seg, a, head, c))
		return false;
	*h = head;
	*hn = c;
	return true;
}

/*
 * Turn extent [b, b+nb) of @node (a SMALL/LARGE head, or a FREE head not
 * in any bin) into a free extent, merged with free neighbours, and bin it.
 * Commit order: see "THE TILING". Returns 0 or -EAGAIN (lists corrupt).
 */
static int coalesce_insert(struct shg_seg *seg, unsigned node, uint32_t b,
			   uint32_t nb)
{
	struct shg_arena *a = &seg->arenas[node];
	uint32_t top = heap_spans(seg);
	uint32_t r = b + nb, rn = 0, h = 0, hn = 0, tot;
	bool right = false, left = false;
	struct shg_span *sb = &seg->spans[b];

	if (r < top && free_head_ok(seg, node, r, top, &rn) &&
	    in_bin(seg, a, r, rn))
		right = true;
	if (b > 0 && left_free(seg, a, node, b - 1, top, &h, &hn))
		left = true;
	if (right && !bin_remove(seg, a, r, rn))
		return -EAGAIN;
	if (left && !bin_remove(seg, a, h, hn))
		return -EAGAIN;
	SHG_CRASH_POINT("span.coalesce_unbinned");

	tot = nb + rn;
	atomic_store_explicit(&sb->owner, 0, memory_order_relaxed);
	shg__st32_relaxed(&sb->next, 0);
	shg__st32_relaxed(&sb->prev, 0);
	shg__st32_relaxed(&sb->head, b);
	shg__st32_relaxed(&seg->spans[b + tot - 1].head, b);
	word_store(sb, free_word(node, tot)); /* commit: freed (+ right) */
	SHG_CRASH_POINT("span.coalesce_committed");
	if (right)
		word_store(&seg->spans[r], tail_word(node));
	if (left) {
		shg__st32_relaxed(&seg->spans[b + tot - 1].head, h);
		word_store(&seg->spans[h], free_word(node, hn + tot));
		word_store(sb, tail_word(node));
		b = h;
		tot += hn;
	}
	return bin_insert(seg, a, b, tot) ? 0 : -EAGAIN;
}

static void rebuild_arena(struct shg_seg *seg, unsigned node);

/* ---- taking extents ----------------------------------------------------- */

struct ext_init {
	unsigned state; /* SHG_SPAN_SMALL or SHG_SPAN_LARGE */
	unsigned cls; /* SMALL: size class */
	uint32_t owner; /* SMALL: thread slot + 1 */
};

/* Prepare the fields of the new head @x, then commit its word. */
static void head_commit(struct shg_seg *seg, unsigned node, uint32_t x,
			uint32_t count, const struct ext_init *in)
{
	struct shg_span *sp = &seg->spans[x];
	uint32_t j;

	shg__st32_relaxed(&sp->next, 0);
	shg__st32_relaxed(&sp->prev, 0);
	shg__st32_relaxed(&sp->head, x);
	shg__st64_relaxed(&sp->free_head, 0);
	atomic_store_explicit(&sp->remote_head, 0, memory_order_relaxed);
	shg__st32_relaxed(&sp->bump, 0);
	atomic_store_explicit(&sp->used, 0, memory_order_relaxed);
	/* Before the commit: a sweep that sees the new word sees our token,
	 * never a dead previous user's (it would free our block). */
	shg__st64_relaxed(&sp->owner_token, seg->token);
	if (in->state == SHG_SPAN_SMALL) {
		atomic_store_explicit(&sp->owner, in->owner,
				      memory_order_relaxed);
		shg__st64_relaxed(&sp->large_bytes, 0);
		word_store(sp, SHG_SPAN_WORD(SHG_SPAN_SMALL, node, in->cls, 1));
		return;
	}
	for (j = 1; j < count; j++) {
		shg__st32_relaxed(&seg->spans[x + j].head, x);
		if (word_load(&seg->spans[x + j]) != tail_word(node))
			word_store(&seg->spans[x + j], tail_word(node));
	}
	atomic_store_explicit(&sp->owner, 0, memory_order_relaxed);
	shg__st64_relaxed(&sp->large_bytes, (uint64_t)count * SPAN_BYTES);
	word_store(sp, SHG_SPAN_WORD(SHG_SPAN_LARGE, node, 0, count));
}

/* Best fit in the arena's bins; -ENOENT none, -EAGAIN corrupt lists. */
static int bins_find(struct shg_seg *seg, unsigned node, uint32_t count,
		     uint32_t *x, uint32_t *have)
{
	struct shg_arena *a = &seg->arenas[node];
	uint32_t top = heap_spans(seg), h, c, steps = 0;
	unsigned k;

	for (k = bin_of(count); k < BIG_BIN; k++) {
		h = shg__ld32_relaxed(&a->bins[k]);
		if (!h)
			continue;
		if (h > top || !free_head_ok(seg, node, h - 1, top, &c) ||
		    c != k + 1)
			return -EAGAIN;
		*x = h - 1;
		*have = c;
		return 0;
	}
	for (h = shg__ld32_relaxed(&a->bins[BIG_BIN]); h;
	     h = shg__ld32_relaxed(&seg->spans[h - 1].next)) {
		if (h > top || ++steps > top ||
		    !free_head_ok(seg, node, h - 1, top, &c) || c <= BIG_BIN)
			return -EAGAIN;
		if (c >= count) {
			*x = h - 1;
			*have = c;
			return 0;
		}
	}
	return -ENOENT;
}

/* Take @count spans from the arena's bins and commit them (lock held). */
static int extent_take(struct shg_seg *seg, unsigned node, uint32_t count,
		       const struct ext_init *in, uint32_t *idx)
{
	struct shg_arena *a = &seg->arenas[node];
	uint32_t x = 0, have = 0, r, rn;
	int rc;

	rc = bins_find(seg, node, count, &x, &have);
	if (rc)
		return rc;
	if (!bin_remove(seg, a, x, have))
		return -EAGAIN;
	if (have > count) {
		/* The rest first: it lies inside x's extent until x shrinks. */
		r = x + count;
		rn = have - count;
		shg__st32_relaxed(&seg->spans[r].next, 0);
		shg__st32_relaxed(&seg->spans[r].prev, 0);
		shg__st32_relaxed(&seg->spans[r].head, r);
		shg__st32_relaxed(&seg->spans[x + have - 1].head, r);
		word_store(&seg->spans[r], free_word(node, rn));
		SHG_CRASH_POINT("span.split_rest");
		head_commit(seg, node, x, count, in);
		SHG_CRASH_POINT("span.split_committed");
		if (!bin_insert(seg, a, r, rn))
			rebuild_arena(seg, node); /* x stays committed */
	} else {
		head_commit(seg, node, x, count, in);
	}
	*idx = x;
	return 0;
}

/* ---- growth ------------------------------------------------------------- */

static void grow_repair(struct shg_seg *seg)
{
	/* Nothing to do: see "GROWTH" in the theory of operation. */
	(void)seg;
}

static void chunk_place(struct shg_seg *seg, unsigned node, uint32_t first,
			uint32_t n)
{
	int32_t pol = seg->hdr->numa_policy;
	int pnode = (int)node;

	if (pol == SHG_NUMA_INTERLEAVE)
		pnode = -1;
	else if (pol == SHG_NUMA_BIND)
		pnode = seg->hdr->numa_node;
	else
		pol = SHG_NUMA_LOCAL;
	/* Placement is advisory: a failed mbind leaves the pages where the
	 * kernel's default policy puts them. */
	(void)shg__numa_place(seg->base + seg->heap_off +
				      (uint64_t)first * SPAN_BYTES,
			      (size_t)n * SPAN_BYTES, pol, pnode);
}

/* Carve a chunk for arena @node from heap_top (arena lock held). */
static int heap_grow(struct shg_seg *seg, unsigned node, uint32_t count)
{
	struct shg_hdr *hdr = seg->hdr;
	uint32_t top, want, j;
	int rc;

	rc = shg__lock(seg, &hdr->grow_lock, grow_repair);
	if (rc)
		return rc;
	top = heap_spans(seg);
	want = count > CHUNK_SPANS ? count : CHUNK_SPANS;
	if (want > seg->nspans - top)
		want = seg->nspans - top;
	if (want == 0) {
		rc = SHG_ECAPACITY;
		goto out;
	}
	rc = shg__ensure_backed(seg, (uint64_t)(top + want) * SPAN_BYTES);
	if (rc)
		goto out;
	SHG_CRASH_POINT("heap.backed");
	chunk_place(seg, node, top, want);
	for (j = want - 1; j > 0; j--) {
		struct shg_span *sp = &seg->spans[top + j];

		shg__st32_relaxed(&sp->head, top);
		shg__st32_relaxed(&sp->next, 0);
		shg__st32_relaxed(&sp->prev, 0);
		atomic_store_explicit(&sp->owner, 0, memory_order_relaxed);
		word_store(sp, tail_word(node));
	}
	shg__st32_relaxed(&seg->spans[top].head, top);
	shg__st32_relaxed(&seg->spans[top].next, 0);
	shg__st32_relaxed(&seg->spans[top].prev, 0);
	atomic_store_explicit(&seg->spans[top].owner, 0, memory_order_relaxed);
	word_store(&seg->spans[top], free_word(node, want));
	SHG_CRASH_POINT("heap.carved");
	/* Publish: the chunk's words were stored before (release). */
	atomic_store_explicit(&hdr->heap_top,
			      (uint64_t)(top + want) * SPAN_BYTES,
			      memory_order_release);
out:
	shg__unlock(seg, &hdr->grow_lock);
	if (rc)
		return rc;
	shg__st64_relaxed(&seg->arenas[node].span_bytes,
			  __atomic_load_n(&seg->arenas[node].span_bytes,
					  __ATOMIC_RELAXED) +
				  (uint64_t)want * SPAN_BYTES);
	SHG_CRASH_POINT("heap.published");
	return coalesce_insert(seg, node, top, want);
}

/* ---- repair ------------------------------------------------------------- */

/* Commit the free extent [h, h+n) found by a rebuild and bin it. */
static void rebuild_flush(struct shg_seg *seg, unsigned node, uint32_t h,
			  uint32_t n)
{
	struct shg_span *sp = &seg->spans[h];
	uint32_t j;

	shg__st32_relaxed(&sp->head, h);
	shg__st32_relaxed(&seg->spans[h + n - 1].head, h);
	if (word_load(sp) != free_word(node, n))
		word_store(sp, free_word(node, n));
	for (j = 1; j < n; j++)
		if (word_load(&seg->spans[h + j]) != tail_word(node))
			word_store(&seg->spans[h + j], tail_word(node));
	(void)bin_insert(seg, &seg->arenas[node], h, n);
}

/*
 * The extent of @node whose head is at @i, as a rebuild sees it: a corrupt
 * head (UNUSED, TAIL, count 0, SMALL with count != 1) becomes a one-span
 * FREE extent; a run past heap_top or into another node's span is clamped
 * (a clamped SMALL/LARGE head is stored at once: the spans it drops are
 * another node's or above heap_top). Returns the count, *@wp the word.
 */
static uint32_t rebuild_head(struct shg_seg *seg, unsigned node, uint32_t i,
			     uint32_t top, uint64_t *wp)
{
	uint64_t w = *wp;
	unsigned st = SHG_SPAN_STATE(w);
	uint32_t c = SHG_SPAN_COUNT(w), j;

	if ((st != SHG_SPAN_FREE && st != SHG_SPAN_SMALL &&
	     st != SHG_SPAN_LARGE) ||
	    c == 0 || (st == SHG_SPAN_SMALL && c != 1)) {
		st = SHG_SPAN_FREE;
		c = 1;
	}
	if (c > top - i)
		c = top - i;
	for (j = 1; j < c; j++)
		if (SHG_SPAN_NODE(word_load(&seg->spans[i + j])) != node)
			break;
	c = j;
	if (st == SHG_SPAN_FREE) {
		*wp = free_word(node, c); /* stored by rebuild_flush() */
		return c;
	}
	w = SHG_SPAN_WORD(st, node, SHG_SPAN_CLASS(w), c);
	if (w != *wp)
		word_store(&seg->spans[i], w);
	*wp = w;
	return c;
}

/* Count the valid, distinct blocks on free list @b of span @i; false on a
 * bad or repeated entry. */
static bool count_list(struct shg_seg *seg, uint32_t i, uint32_t size,
		       uint32_t bump, uint64_t b, uint64_t *seen, uint32_t *n)
{
	uint64_t base = seg->heap_off + ((uint64_t)i << SHG_SPAN_SHIFT), d;
	uint32_t k;

	for (; b; b = __atomic_load_n((uint64_t *)(seg->base + b),
				      __ATOMIC_RELAXED)) {
		d = b - base;
		if (d >= SPAN_BYTES || d % size)
			return false;
		k = (uint32_t)(d / size);
		if (k >= bump || (seen[k / 64] >> (k % 64) & 1))
			return false;
		seen[k / 64] |= 1ull << (k % 64);
		(*n)++;
	}
	return true;
}

/*
 * Whether ownerless SMALL span @i of class @cls has no allocated block
 * (rebuild, arena lock held: we stand in for the owner). Snapshot of both
 * lists: if every handed-out block is on them, none is allocated, so no
 * remote push is in flight or can start (a push needs an allocated block),
 * and the span may become FREE.
 */
static bool abandoned_empty(struct shg_seg *seg, uint32_t i, unsigned cls)
{
	uint64_t seen[SHG_SPAN_SIZE / 16 / 64] = { 0 };
	struct shg_span *sp = &seg->spans[i];
	uint32_t size = shg__class_size(cls),
		 bump = shg__ld32_relaxed(&sp->bump), n = 0;

	if (!size || bump > SHG_SPAN_SIZE / size)
		return false;
	if (!count_list(seg, i, size, bump,
			atomic_load_explicit(&sp->remote_head,
					     memory_order_acquire),
			seen, &n) ||
	    !count_list(seg, i, size, bump,
			__atomic_load_n(&sp->free_head, __ATOMIC_RELAXED), seen,
			&n))
		return false;
	return n == bump;
}

/* No thread owns the span: abandoned (0) or set aside for the sweep. */
static inline bool unowned(uint32_t owner)
{
	return owner == 0 || owner == SHG_OWNER_SWEEP;
}

/* Rebuild arena @node from the descriptors (its lock held). */
static void rebuild_arena(struct shg_seg *seg, unsigned node)
{
	struct shg_arena *a = &seg->arenas[node];
	uint32_t top = heap_spans(seg), i = 0, j, c, fh = 0, fn = 0;
	uint64_t bytes = 0, w;
	unsigned k;

	for (k = 0; k < SHG_SPAN_BINS; k++)
		shg__st32_relaxed(&a->bins[k], 0);
	for (k = 0; k < SHG_NUM_CLASSES; k++)
		shg__st32_relaxed(&a->abandoned[k], 0);
	while (i < top) {
		w = word_load(&seg->spans[i]);
		/* UNUSED words below heap_top (word 0) are node 0's leaks. */
		if (SHG_SPAN_NODE(w) != node) {
			if (fn) {
				rebuild_flush(seg, node, fh, fn);
				fn = 0;
			}
			i++;
			continue;
		}
		c = rebuild_head(seg, node, i, top, &w);
		bytes += (uint64_t)c * SPAN_BYTES;
		if (SHG_SPAN_STATE(w) == SHG_SPAN_SMALL &&
		    SHG_SPAN_CLASS(w) < SHG_NUM_CLASSES &&
		    unowned(atomic_load_explicit(&seg->spans[i].owner,
						 memory_order_relaxed)) &&
		    abandoned_empty(seg, i, SHG_SPAN_CLASS(w))) {
			/* One store: an empty abandoned (or sweep-pending:
			 * nothing left to sweep) span becomes free. */
			w = free_word(node, 1);
			shg__st32_relaxed(&seg->spans[i].head, i);
			word_store(&seg->spans[i], w);
		}
		if (SHG_SPAN_STATE(w) == SHG_SPAN_FREE) {
			if (!fn)
				fh = i;
			fn += c;
			i += c;
			continue;
		}
		if (fn) {
			rebuild_flush(seg, node, fh, fn);
			fn = 0;
		}
		for (j = 1; j < c; j++) {
			shg__st32_relaxed(&seg->spans[i + j].head, i);
			if (word_load(&seg->spans[i + j]) != tail_word(node))
				word_store(&seg->spans[i + j], tail_word(node));
		}
		if (SHG_SPAN_STATE(w) == SHG_SPAN_SMALL &&
		    SHG_SPAN_CLASS(w) < SHG_NUM_CLASSES &&
		    atomic_load_explicit(&seg->spans[i].owner,
					 memory_order_relaxed) == 0) {
			k = SHG_SPAN_CLASS(w);
			shg__st32_relaxed(&seg->spans[i].next,
					  shg__ld32_relaxed(&a->abandoned[k]));
			shg__st32_relaxed(&seg->spans[i].prev, 0);
			shg__st32_relaxed(&a->abandoned[k], i + 1);
		}
		i += c;
	}
	if (fn)
		rebuild_flush(seg, node, fh, fn);
	shg__st64_relaxed(&a->span_bytes, bytes);
}

void shg__arena_repair(struct shg_seg *seg)
{
	unsigned n;

	if (tl_arena >= 0) {
		/* EOWNERDEAD on arena tl_arena: we hold its lock. */
		if ((unsigned)tl_arena < seg->nodes)
			rebuild_arena(seg, (unsigned)tl_arena);
		return;
	}
	/* Explicit call (recovery), no arena lock held: clear a dead holder
	 * of grow_lock, then rebuild every arena under its own lock. */
	if (shg__lock(seg, &seg->hdr->grow_lock, grow_repair) == 0)
		shg__unlock(seg, &seg->hdr->grow_lock);
	for (n = 0; n < seg->nodes && n < SHG_MAX_NODES; n++) {
		if (arena_lock(seg, n))
			continue;
		rebuild_arena(seg, n);
		arena_unlock(seg, n);
	}
}

/* ---- public entry points ------------------------------------------------ */

/* Allocate in arena @node; grow the heap if @grow. Retries once after a
 * rebuild when the lists turn out corrupt. */
static int alloc_in(struct shg_seg *seg, unsigned node, uint32_t count,
		    const struct ext_init *in, bool grow, uint32_t *idx)
{
	bool rebuilt = false;
	int rc;

	rc = arena_lock(seg, node);
	if (rc)
		return rc;
	for (;;) {
		rc = extent_take(seg, node, count, in, idx);
		if (rc == -ENOENT && grow) {
			grow = false;
			rc = heap_grow(seg, node, count);
			if (rc == 0)
				continue;
		}
		if (rc != -EAGAIN)
			break;
		if (rebuilt) {
			rc = SHG_CORRUPT();
			break;
		}
		rebuild_arena(seg, node);
		rebuilt = true;
	}
	arena_unlock(seg, node);
	return rc;
}

static int span_alloc(struct shg_seg *seg, unsigned node, uint32_t count,
		      const struct ext_init *in, uint32_t *idx)
{
	unsigned n, m;
	int rc, first;

	if (count == 0)
		return -EINVAL;
	if (count > seg->nspans)
		return SHG_ECAPACITY;
	n = eff_node(seg, node);
	rc = alloc_in(seg, n, count, in, true, idx);
	if (rc != -ENOENT && rc != SHG_ECAPACITY && rc != -ENOSPC)
		return rc;
	first = rc == -ENOENT ? SHG_ECAPACITY : rc;
	/* The heap cannot grow: take free extents of other nodes. */
	for (m = 0; m < seg->nodes; m++) {
		if (m == n)
			continue;
		if (alloc_in(seg, m, count, in, false, idx) == 0)
			return 0;
	}
	return first;
}

/**
 * shg__span_alloc() - allocate an extent of @count spans for a large block.
 * @word_bits: SHG_SPAN_WORD(SHG_SPAN_LARGE, ...); node and count are set
 *             here. SMALL spans come from shg__span_alloc_small().
 *
 * Prefers arena @node (policy BIND: the bound node), grows the heap, then
 * falls back to other arenas. Tails get head = *@idx, large_bytes = count
 * spans. Return: 0, -EINVAL, SHG_ECAPACITY, -ENOSPC, SHG_ECORRUPT.
 */
int shg__span_alloc(struct shg_seg *seg, unsigned node, uint32_t count,
		    uint64_t word_bits, uint32_t *idx)
{
	struct ext_init in = { .state = SHG_SPAN_STATE(word_bits) };

	if (in.state != SHG_SPAN_LARGE)
		return -EINVAL;
	return span_alloc(seg, node, count, &in, idx);
}

/**
 * shg__span_alloc_small() - a new one-span SMALL extent owned by @tidx.
 *
 * The owner and the empty lists are written under the arena lock before
 * the SMALL word is committed, so no crash leaves a SMALL span with garbage
 * fields or without an owner. Return: as shg__span_alloc().
 */
int shg__span_alloc_small(struct shg_seg *seg, unsigned node, unsigned cls,
			  uint32_t tidx, uint32_t *idx)
{
	struct ext_init in = { .state = SHG_SPAN_SMALL,
			       .cls = cls,
			       .owner = tidx + 1 };

	if (cls >= SHG_NUM_CLASSES || tidx >= seg->max_threads)
		return -EINVAL;
	return span_alloc(seg, node, 1, &in, idx);
}

/**
 * shg__span_free() - return the SMALL or LARGE extent headed by @idx to its
 * arena, coalesced with free neighbours of the same node.
 *
 * Anything else at @idx (already free, a tail, out of range) is ignored.
 * For a SMALL span the caller guarantees no block is allocated and no
 * remote free can be in flight (see alloc.c).
 */
void shg__span_free(struct shg_seg *seg, uint32_t idx)
{
	uint32_t top = heap_spans(seg), count;
	bool rebuilt = false;
	unsigned node, st;
	uint64_t w;

	if (idx >= top)
		return;
	node = SHG_SPAN_NODE(word_load(&seg->spans[idx]));
	if (node >= seg->nodes || arena_lock(seg, node))
		return;
	for (;;) {
		w = word_load(&seg->spans[idx]);
		st = SHG_SPAN_STATE(w);
		count = SHG_SPAN_COUNT(w);
		if ((st != SHG_SPAN_SMALL && st != SHG_SPAN_LARGE) ||
		    SHG_SPAN_NODE(w) != node || count == 0 ||
		    count > top - idx || (st == SHG_SPAN_SMALL && count != 1))
			break;
		if (coalesce_insert(seg, node, idx, count) != -EAGAIN ||
		    rebuilt)
			break;
		rebuild_arena(seg, node);
		rebuilt = true;
	}
	arena_unlock(seg, node);
}

/*
 * If span @idx is a SMALL span of a valid class owned by @expect, give it
 * to @to under its arena lock: 0 = ownerless, pushed on the arena's
 * abandoned list for its class; SHG_OWNER_SWEEP = set aside on no list
 * (release: the sweep reads its blocks after seeing the owner). Return 0
 * or -ESTALE if @idx is not such a span.
 */
static int span_reown(struct shg_seg *seg, uint32_t idx, uint32_t expect,
		      uint32_t to)
{
	struct shg_span *sp;
	struct shg_arena *a;
	unsigned node, cls;
	uint64_t w;
	int rc = -ESTALE;

	if (idx >= heap_spans(seg))
		return rc;
	sp = &seg->spans[idx];
	node = SHG_SPAN_NODE(word_load(sp));
	if (node >= seg->nodes || arena_lock(seg, node))
		return rc;
	a = &seg->arenas[node];
	w = word_load(sp);
	cls = SHG_SPAN_CLASS(w);
	if (SHG_SPAN_STATE(w) == SHG_SPAN_SMALL && SHG_SPAN_NODE(w) == node &&
	    cls < SHG_NUM_CLASSES &&
	    atomic_load_explicit(&sp->owner, memory_order_relaxed) == expect) {
		if (to == 0) {
			uint32_t first = shg__ld32_relaxed(&a->abandoned[cls]);

			shg__st32_relaxed(&sp->next,
					  first <= seg->nspans ? first : 0);
			shg__st32_relaxed(&sp->prev, 0);
			atomic_store_explicit(&sp->owner, 0,
					      memory_order_relaxed);
			shg__st32_relaxed(&a->abandoned[cls], idx + 1);
			SHG_CRASH_POINT("span.abandoned");
		} else {
			shg__st32_relaxed(&sp->next, 0);
			shg__st32_relaxed(&sp->prev, 0);
			atomic_store_explicit(&sp->owner, to,
					      memory_order_release);
			SHG_CRASH_POINT("span.swept_aside");
		}
		rc = 0;
	}
	arena_unlock(seg, node);
	return rc;
}

/**
 * shg__span_abandon() - make SMALL span @idx, owned by thread slot @tidx,
 * ownerless and list it on its arena's abandoned list for its class.
 *
 * Remote frees keep landing on its remote stack; the adopter collects
 * them. Return: 0, or -ESTALE if @idx is not such a span.
 */
int shg__span_abandon(struct shg_seg *seg, uint32_t idx, uint32_t tidx)
{
	return span_reown(seg, idx, tidx + 1, 0);
}

/**
 * shg__span_sweep_mark() - set SMALL span @idx, owned by dead thread slot
 * @tidx, aside for the leak sweep: owner = SHG_OWNER_SWEEP, on no list, so
 * no thread adopts it and allocates from it until shg__span_sweep_release.
 * Remote frees keep landing on its remote stack. Return: 0 or -ESTALE.
 */
int shg__span_sweep_mark(struct shg_seg *seg, uint32_t idx, uint32_t tidx)
{
	return span_reown(seg, idx, tidx + 1, SHG_OWNER_SWEEP);
}

/**
 * shg__span_sweep_release() - hand a swept SHG_OWNER_SWEEP span @idx to
 * its arena's abandoned list (owner 0), where it is adopted like any
 * ownerless span. Idempotent. Return: 0 or -ESTALE.
 */
int shg__span_sweep_release(struct shg_seg *seg, uint32_t idx)
{
	return span_reown(seg, idx, SHG_OWNER_SWEEP, 0);
}

/*
 * Whether a thread of our process may adopt abandoned span @sp. Not when
 * it holds blocks allocated by another process that is still alive (a
 * thread of it exited, its process lives on): our allocations would mix
 * with that process's in one span, and if we then died the leak sweep
 * could not tell our blocks (unreachable, to free) from its (maybe still
 * in use privately). Those spans wait for their process's own threads, or
 * for its death. @used may be stale high (remote frees not collected):
 * that only skips more.
 */
static bool adoptable(struct shg_seg *seg, struct shg_span *sp)
{
	uint64_t tok = shg__ld64_relaxed(&sp->owner_token);

	if (tok == seg->token ||
	    !atomic_load_explicit(&sp->used, memory_order_relaxed))
		return true;
	return tok && tok != SHG_TOKEN_MIXED && !shg__token_alive(seg, tok);
}

#define ADOPT_SCAN 8u /* abandoned spans looked at per adoption */

/*
 * Take a valid ownerless span of @cls that adoptable() allows, among the
 * first ADOPT_SCAN of the abandoned list, and give it to @owner (lock
 * held). -ENOENT: none; -EAGAIN: the list is damaged (rebuild).
 */
static int adopt_locked(struct shg_seg *seg, unsigned node, unsigned cls,
			uint32_t owner, uint32_t *idx)
{
	struct shg_arena *a = &seg->arenas[node];
	uint32_t top = heap_spans(seg),
		 h = shg__ld32_relaxed(&a->abandoned[cls]), next, prev = 0, n;
	struct shg_span *sp;
	uint32_t zero;
	uint64_t w;

	for (n = 0; h && n < ADOPT_SCAN; n++) {
		if (h > top)
			return -EAGAIN;
		sp = &seg->spans[h - 1];
		w = word_load(sp);
		next = shg__ld32_relaxed(&sp->next);
		if (SHG_SPAN_STATE(w) != SHG_SPAN_SMALL ||
		    SHG_SPAN_NODE(w) != node || SHG_SPAN_CLASS(w) != cls ||
		    SHG_SPAN_COUNT(w) != 1 || next > seg->nspans ||
		    atomic_load_explicit(&sp->owner, memory_order_relaxed))
			return -EAGAIN;
		if (!adoptable(seg, sp)) {
			prev = h;
			h = next;
			continue;
		}
		zero = 0;
		if (!atomic_compare_exchange_strong_explicit(
			    &sp->owner, &zero, owner, memory_order_acq_rel,
			    memory_order_relaxed))
			return -EAGAIN;
		SHG_CRASH_POINT("span.adopt_owned");
		/* Unlink (the list changes only under the arena lock). */
		if (prev)
			shg__st32_relaxed(&seg->spans[prev - 1].next, next);
		else
			shg__st32_relaxed(&a->abandoned[cls], next);
		shg__st32_relaxed(&sp->next, 0);
		shg__st32_relaxed(&sp->prev, 0);
		*idx = h - 1;
		return 0;
	}
	return -ENOENT;
}

/**
 * shg__span_adopt() - take an abandoned SMALL span of class @cls from arena
 * @node for thread slot @tidx.
 *
 * The span keeps its blocks and lists; the caller collects its remote
 * stack and recounts (its last owner may have died mid-operation).
 * Return: 0, -ENOENT (none), or a lock error.
 */
int shg__span_adopt(struct shg_seg *seg, unsigned node, unsigned cls,
		    uint32_t tidx, uint32_t *idx)
{
	bool rebuilt = false;
	int rc;

	if (cls >= SHG_NUM_CLASSES || tidx >= seg->max_threads)
		return -EINVAL;
	node = eff_node(seg, node);
	rc = arena_lock(seg, node);
	if (rc)
		return rc;
	while ((rc = adopt_locked(seg, node, cls, tidx + 1, idx)) == -EAGAIN) {
		if (rebuilt) {
			rc = SHG_CORRUPT();
			break;
		}
		rebuild_arena(seg, node);
		rebuilt = true;
	}
	arena_unlock(seg, node);
	return rc;
}
