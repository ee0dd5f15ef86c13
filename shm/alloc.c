/* SPDX-License-Identifier: MIT */
/*
 * Small blocks and the public allocation API: size classes, spans owned by
 * threads, remote frees, large blocks, statistics, the allocator's part of
 * the checker and the walk over allocated blocks used by the leak sweep.
 *
 * Theory of operation
 * ===================
 *
 * SIZE CLASSES. 36 classes: 16..128 in steps of 16, then four per doubling
 * up to 16384 (160, 192, 224, 256, 320, ...). Every size is a multiple of
 * 16 and spans are 64 KiB aligned, so blocks are 16-byte aligned. Larger
 * requests take whole extents (span.c).
 *
 * SPAN OWNERSHIP. A SMALL span holds blocks of one class at span_base +
 * k * size and is owned by one thread slot (span.owner = slot + 1). Only
 * the owner touches free_head, bump and used (relaxed stores, so scans may
 * read them), and each owner step is ONE store that leaves the lists well
 * formed: pop = load head, load its next, store head; push = write the
 * block's next, store head. A crash between steps leaks at most the block
 * in flight; it never corrupts a list.
 *
 * REMOTE FREES. A thread that does not own the span pushes the block on
 * span.remote_head with a CAS (release: the block's next link, poison and
 * the freer's last writes are visible to the owner). The owner takes the
 * whole stack with an exchange (acquire) and splices it into its local
 * list. Only the owner ever removes entries, and it removes all of them at
 * once, so no ABA is possible: a pusher's CAS fails only if the head moved.
 *
 * USED AND EMPTY SPANS. span.used counts blocks handed out minus blocks
 * back on the local list: allocated blocks plus remote frees not yet
 * collected. A remote free happens only for an allocated block, which is
 * counted in used until the owner collects it after the pusher's CAS; the
 * pusher touches nothing after its CAS. Hence used == 0 (read by the owner
 * after collecting) means no block is allocated and no remote push can be
 * in flight or start, and the owner may hand the span back to its arena.
 * A crash may leave used off by the block in flight (too high: the span is
 * kept, a leak; too low only by a block nobody holds); whoever adopts a
 * span of a dead owner recounts it from the lists.
 *
 * THREAD CACHE. Per class, ctx->cur is the span allocations come from and
 * ctx->owned a ring of the thread's other spans of that class (linked by
 * span.next/prev, owner-only while owned). The fast path (cur has a free
 * block) is a TLS lookup, a few loads and stores, no atomic RMW, no lock.
 * The slow path collects cur's remote stack, then looks for remote or local
 * frees in up to 8 owned spans, then adopts an abandoned span of its arena,
 * then asks span.c for a new span.
 *
 * EXIT AND DEATH. A thread that exits (or a survivor, for a dead thread)
 * gives up its spans: empty ones go back to the arena, the others become
 * ownerless on their arena's abandoned list (span.c) and are adopted by the
 * next thread of that node that needs the class. An abandoned span whose
 * blocks all get freed meanwhile is returned to the free extents by the
 * next arena rebuild (recovery of a dead thread, shg__arena_repair).
 */
#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "util.h"

#define SPAN_BYTES ((uint64_t)SHG_SPAN_SIZE)
#define SPAN_MASK (SPAN_BYTES - 1)
#define MAX_BLOCKS (SHG_SPAN_SIZE / 16u) /* blocks per span, smallest class */
#define OWNED_SCAN 8u /* owned spans looked at per slow path */
#define ADOPT_TRIES 8u /* abandoned spans looked at per slow path */
#define POISON_BYTE 0xDB
#define POISON_LARGE_MAX SPAN_BYTES

/* Per class: block size, ceil(2^32 / size) for exact division of span
 * offsets (< 2^16, so (d * recip) >> 32 == d / size), blocks per span. */
struct cls_info {
	uint32_t size;
	uint32_t recip;
	uint32_t cap;
};

#define CLS(sz)                                                     \
	{                                                           \
		(sz), (uint32_t)((0x100000000ull + (sz)-1) / (sz)), \
			SHG_SPAN_SIZE / (sz)                        \
	}

static const struct cls_info cls_tab[SHG_NUM_CLASSES] = {
	CLS(16),   CLS(32),   CLS(48),	  CLS(64),    CLS(80),	  CLS(96),
	CLS(112),  CLS(128),  CLS(160),	  CLS(192),   CLS(224),	  CLS(256),
	CLS(320),  CLS(384),  CLS(448),	  CLS(512),   CLS(640),	  CLS(768),
	CLS(896),  CLS(1024), CLS(1280),  CLS(1536),  CLS(1792),  CLS(2048),
	CLS(2560), CLS(3072), CLS(3584),  CLS(4096),  CLS(5120),  CLS(6144),
	CLS(7168), CLS(8192), CLS(10240), CLS(12288), CLS(14336), CLS(16384),
};

_Static_assert(SHG_SMALL_MAX == 16384, "class table ends at SHG_SMALL_MAX");

unsigned shg__size_class(size_t size)
{
	size_t s;
	unsigned b;

	if (size <= 128)
		return size ? (unsigned)((size + 15) >> 4) - 1 : 0;
	if (size > SHG_SMALL_MAX)
		return SHG_NUM_CLASSES;
	s = size - 1;
	b = 63u - (unsigned)__builtin_clzll((unsigned long long)s); /* >= 7 */
	return 8u + (b - 7u) * 4u + (unsigned)((s >> (b - 2u)) - 4u);
}

uint32_t shg__class_size(unsigned cls)
{
	return cls < SHG_NUM_CLASSES ? cls_tab[cls].size : 0;
}

/* ---- helpers ------------------------------------------------------------ */

static inline uint64_t word_load(const struct shg_span *sp)
{
	return atomic_load_explicit(&sp->word, memory_order_acquire);
}

static uint32_t heap_spans(const struct shg_seg *seg)
{
	uint64_t top =
		atomic_load_explicit(&seg->hdr->heap_top, memory_order_acquire);
	uint64_t n = top >> SHG_SPAN_SHIFT;

	return n > seg->nspans ? seg->nspans : (uint32_t)n;
}

static inline uint64_t span_off(const struct shg_seg *seg, uint32_t idx)
{
	return seg->heap_off + ((uint64_t)idx << SHG_SPAN_SHIFT);
}

/* Block index of span offset @d, or UINT32_MAX if @d is not a block start
 * below @bump. */
static inline uint32_t blk_index(uint64_t d, const struct cls_info *ci,
				 uint32_t bump)
{
	uint32_t k;

	if (d >= SPAN_BYTES)
		return UINT32_MAX;
	k = (uint32_t)((d * ci->recip) >> 32);
	if ((uint64_t)k * ci->size != d || k >= bump)
		return UINT32_MAX;
	return k;
}

/* The free-list link in a block's first 8 bytes (racy only on misuse). */
static inline uint64_t blk_next(const struct shg_seg *seg, uint64_t off)
{
	return __atomic_load_n((uint64_t *)(seg->base + off), __ATOMIC_RELAXED);
}

static inline void blk_set_next(struct shg_seg *seg, uint64_t off,
				uint64_t next)
{
	__atomic_store_n((uint64_t *)(seg->base + off), next, __ATOMIC_RELAXED);
}

static inline uint32_t used_load(const struct shg_span *sp)
{
	return atomic_load_explicit(&sp->used, memory_order_relaxed);
}

static inline void used_store(struct shg_span *sp, uint32_t v)
{
	atomic_store_explicit(&sp->used, v, memory_order_relaxed);
}

static int poison_flag = -1; /* -1: not read yet */

/* The environment is read once per process: a forked child reads again. */
static void poison_atfork_child(void)
{
	poison_flag = -1;
}

__attribute__((constructor)) static void poison_init(void)
{
	pthread_atfork(NULL, NULL, poison_atfork_child);
}

static __attribute__((noinline)) bool poison_read(void)
{
	const char *e = getenv("SHG_DEBUG_POISON");
	int v = e && *e && strcmp(e, "0") != 0;

	__atomic_store_n(&poison_flag, v, __ATOMIC_RELAXED);
	return v;
}

/* SHG_DEBUG_POISON set (and not "0"): fill freed blocks with 0xDB. */
static inline bool poison_on(void)
{
	int v = __atomic_load_n(&poison_flag, __ATOMIC_RELAXED);

	if (shg_likely(v == 0))
		return false;
	return v > 0 || poison_read();
}

/* ---- owner-side span operations ----------------------------------------- */

static __attribute__((noinline)) uint32_t
collect_remote(struct shg_seg *seg, uint32_t idx, const struct cls_info *ci);

/*
 * Pop a block of span @idx (owner only): local list first, then bump. A
 * corrupt link ends the list there (the rest leaks). 0 when full.
 * Remote frees pending are collected before a block is taken from the
 * local list: a block freed both locally and remotely is then still on
 * both lists, where collect_remote detects it, instead of being handed
 * out from one list and again from the other. (Bump blocks were never
 * freed: no check needed.) The remote_head load shares the span's cache
 * line with free_head.
 */
static inline __attribute__((always_inline)) uint64_t
span_pop(struct shg_seg *seg, uint32_t idx, const struct cls_info *ci)
{
	struct shg_span *sp = &seg->spans[idx];
	uint64_t base = span_off(seg, idx),
		 b = shg__ld64_relaxed(&sp->free_head), next;
	uint32_t bump = shg__ld32_relaxed(&sp->bump);

	if (b) {
		if (shg_unlikely(atomic_load_explicit(&sp->remote_head,
						      memory_order_relaxed))) {
			collect_remote(seg, idx, ci);
			b = shg__ld64_relaxed(&sp->free_head);
		}
		if (shg_likely(blk_index(b - base, ci, bump) != UINT32_MAX)) {
			next = blk_next(seg, b);
			if (next &&
			    blk_index(next - base, ci, bump) == UINT32_MAX)
				next = 0;
			shg__st64_relaxed(&sp->free_head, next);
			used_store(sp, used_load(sp) + 1);
			return b;
		}
		shg__st64_relaxed(&sp->free_head, 0);
	}
	if (bump < ci->cap) {
		shg__st32_relaxed(&sp->bump, bump + 1);
		used_store(sp, used_load(sp) + 1);
		return base + (uint64_t)bump * ci->size;
	}
	return 0;
}

static inline bool span_has_free(struct shg_span *sp, const struct cls_info *ci)
{
	return shg__ld64_relaxed(&sp->free_head) != 0 ||
	       shg__ld32_relaxed(&sp->bump) < ci->cap;
}

/*
 * Take span @idx's remote stack (owner only) and splice it in front of the
 * local list. Entries are validated; a bad or repeated one (a double free)
 * cuts the chain there (the rest leaks), so no block is ever on the free
 * lists twice. A crash after the exchange leaks the stack, never
 * corrupts. Returns the number of blocks collected.
 *
 * A block freed both by the owner and by another thread is on both lists,
 * and the second free overwrote its link, so each list runs into the
 * other from that block on. The local list is walked first (cut at a bad
 * or repeated entry, as span_recount does) into the bitmap; the remote
 * chain then stops at its first block already seen: everything after it
 * is on the local list already. The blocks the overwritten link used to
 * lead to are lost (leaked), never handed out twice. used is recounted
 * as bump minus the blocks now on the local list (the owner's invariant:
 * blocks handed out, minus those back on the list), which also drops the
 * second decrement a double free would otherwise cause. The walk costs
 * one load per block on the local list, paid only when remote frees are
 * pending (out of line: span_pop calls here only then).
 */
static __attribute__((noinline)) uint32_t
collect_remote(struct shg_seg *seg, uint32_t idx, const struct cls_info *ci)
{
	struct shg_span *sp = &seg->spans[idx];
	uint64_t seen[MAX_BLOCKS / 64];
	uint64_t base = span_off(seg, idx), h, b, tail = 0, prev = 0;
	uint32_t bump, n = 0, nloc = 0, k;

	if (!atomic_load_explicit(&sp->remote_head, memory_order_relaxed))
		return 0;
	/* Acquire pairs with the pushers' release CAS. */
	h = atomic_exchange_explicit(&sp->remote_head, 0, memory_order_acquire);
	/* Until the splice below, the stack is on neither list (see
	 * dead_owned() for a death here). */
	SHG_CRASH_POINT("alloc.remote_taken");
	bump = shg__ld32_relaxed(&sp->bump);
	memset(seen, 0, (ci->cap + 63) / 64 * sizeof(seen[0]));
	for (b = shg__ld64_relaxed(&sp->free_head); b;
	     prev = b, b = blk_next(seg, b)) {
		k = blk_index(b - base, ci, bump);
		if (k == UINT32_MAX || (seen[k / 64] >> (k % 64) & 1)) {
			if (prev)
				blk_set_next(seg, prev, 0);
			else
				shg__st64_relaxed(&sp->free_head, 0);
			break;
		}
		seen[k / 64] |= 1ull << (k % 64);
		nloc++;
	}
	for (b = h; b; b = blk_next(seg, b)) {
		k = blk_index(b - base, ci, bump);
		if (k == UINT32_MAX || (seen[k / 64] >> (k % 64) & 1))
			break;
		seen[k / 64] |= 1ull << (k % 64);
		tail = b;
		n++;
	}
	if (n) {
		blk_set_next(seg, tail, shg__ld64_relaxed(&sp->free_head));
		shg__st64_relaxed(&sp->free_head, h);
	}
	used_store(sp, bump > nloc + n ? bump - (nloc + n) : 0);
	return n;
}

/*
 * Collect, then walk and repair the local list of span @idx whose previous
 * owner may have died mid-step: bump is clamped, the list is cut at the
 * first bad or repeated entry, used = bump - free blocks. Owner (or sole
 * recoverer of a dead owner) only. Returns the free blocks on the list.
 */
static uint32_t span_recount(struct shg_seg *seg, uint32_t idx,
			     const struct cls_info *ci)
{
	struct shg_span *sp = &seg->spans[idx];
	uint64_t seen[MAX_BLOCKS / 64] = { 0 };
	uint64_t base = span_off(seg, idx), b, prev = 0;
	uint32_t bump = shg__ld32_relaxed(&sp->bump), n = 0, k;

	if (bump > ci->cap) {
		bump = ci->cap;
		shg__st32_relaxed(&sp->bump, bump);
	}
	collect_remote(seg, idx, ci);
	for (b = shg__ld64_relaxed(&sp->free_head); b; b = blk_next(seg, b)) {
		k = blk_index(b - base, ci, bump);
		if (k == UINT32_MAX || (seen[k / 64] >> (k % 64) & 1)) {
			if (prev)
				blk_set_next(seg, prev, 0);
			else
				shg__st64_relaxed(&sp->free_head, 0);
			break;
		}
		seen[k / 64] |= 1ull << (k % 64);
		prev = b;
		n++;
	}
	used_store(sp, bump - n);
	return n;
}

/* ---- the owned ring (per class, owner only) ----------------------------- */

static void ring_add(struct shg_seg *seg, struct shg__tctx *ctx, unsigned cls,
		     uint32_t idx)
{
	struct shg_span *sp = &seg->spans[idx];
	uint32_t h = ctx->owned[cls], t;

	t = h ? shg__ld32_relaxed(&seg->spans[h - 1].prev) : 0;
	if (!h || !t || t > seg->nspans) {
		/* empty (or a corrupt ring: restart it; lost members are
		 * found by the descriptor scan at exit) */
		shg__st32_relaxed(&sp->next, idx + 1);
		shg__st32_relaxed(&sp->prev, idx + 1);
		ctx->owned[cls] = idx + 1;
		ctx->owned_count[cls] = 1;
		return;
	}
	shg__st32_relaxed(&sp->next, h);
	shg__st32_relaxed(&sp->prev, t);
	shg__st32_relaxed(&seg->spans[t - 1].next, idx + 1);
	shg__st32_relaxed(&seg->spans[h - 1].prev, idx + 1);
	ctx->owned_count[cls]++;
}

static void ring_del(struct shg_seg *seg, struct shg__tctx *ctx, unsigned cls,
		     uint32_t idx)
{
	struct shg_span *sp = &seg->spans[idx];
	uint32_t n = shg__ld32_relaxed(&sp->next),
		 p = shg__ld32_relaxed(&sp->prev);

	if (n == idx + 1 || !n || !p || n > seg->nspans || p > seg->nspans) {
		ctx->owned[cls] = 0;
		ctx->owned_count[cls] = 0;
	} else {
		shg__st32_relaxed(&seg->spans[p - 1].next, n);
		shg__st32_relaxed(&seg->spans[n - 1].prev, p);
		if (ctx->owned[cls] == idx + 1)
			ctx->owned[cls] = n;
		if (ctx->owned_count[cls])
			ctx->owned_count[cls]--;
	}
	shg__st32_relaxed(&sp->next, 0);
	shg__st32_relaxed(&sp->prev, 0);
}

/* ---- allocation --------------------------------------------------------- */

/*
 * Look at up to OWNED_SCAN owned spans of @cls, collecting their remote
 * frees. Spans that turn out empty go back to the arena (used == 0: no
 * block allocated, no remote push in flight), except the first usable span
 * when @want: that one is taken out of the ring and returned (idx+1). With
 * !@want only spans with pending remote frees are touched. Rotates the
 * ring so that the next call looks at other spans.
 */
static uint32_t scan_owned(struct shg_seg *seg, struct shg__tctx *ctx,
			   unsigned cls, bool want)
{
	const struct cls_info *ci = &cls_tab[cls];
	uint32_t i, s, next, found = 0, look = ctx->owned_count[cls];
	struct shg_span *sp;

	if (look > OWNED_SCAN)
		look = OWNED_SCAN;
	for (i = 0, s = ctx->owned[cls]; i < look && s && s <= seg->nspans;
	     i++, s = next) {
		sp = &seg->spans[s - 1];
		next = shg__ld32_relaxed(&sp->next);
		if (next == s)
			next = 0; /* last member */
		if (!want && !atomic_load_explicit(&sp->remote_head,
						   memory_order_relaxed))
			continue;
		collect_remote(seg, s - 1, ci);
		if (want && !found && span_has_free(sp, ci)) {
			ring_del(seg, ctx, cls, s - 1);
			found = s;
		} else if (used_load(sp) == 0) {
			ring_del(seg, ctx, cls, s - 1);
			shg__span_free(seg, s - 1);
		}
	}
	if (s && s <= seg->nspans && ctx->owned[cls])
		ctx->owned[cls] = s;
	return found;
}

/*
 * After adopting span @idx: its blocks are now allocated by this process
 * too. The span stays (or becomes) ours alone if it is empty, or if its
 * blocks were all allocated by us or by a process that is dead now (a
 * dead process holds nothing unpublished: its blocks are published,
 * retired or leaked, all of which the sweep tells apart). Otherwise it
 * holds blocks of another live process, which may be unpublished blocks
 * that process still uses (a thread of it exited and abandoned the span):
 * it becomes MIXED and the leak sweep never frees blocks in it. Adoption
 * is a slow path, so the liveness check (a /proc read) is affordable.
 * Owner-only field.
 */
static void note_adopter(struct shg_seg *seg, uint32_t idx)
{
	struct shg_span *sp = &seg->spans[idx];
	uint64_t tok = shg__ld64_relaxed(&sp->owner_token);

	if (tok == seg->token)
		return;
	if (used_load(sp) == 0 ||
	    (tok && tok != SHG_TOKEN_MIXED && !shg__token_alive(seg, tok)))
		shg__st64_relaxed(&sp->owner_token, seg->token);
	else
		shg__st64_relaxed(&sp->owner_token, SHG_TOKEN_MIXED);
}

/* Adopt abandoned spans of @cls from arena @node until one has a free
 * block (idx+1, or 0); full ones join the owned ring. */
static uint32_t adopt(struct shg_seg *seg, struct shg__tctx *ctx, unsigned cls,
		      unsigned node)
{
	const struct cls_info *ci = &cls_tab[cls];
	uint32_t t, idx;

	for (t = 0; t < ADOPT_TRIES; t++) {
		if (shg__span_adopt(seg, node, cls, ctx->idx, &idx))
			return 0;
		SHG_CRASH_POINT("alloc.adopted");
		span_recount(seg, idx, ci);
		note_adopter(seg, idx);
		if (span_has_free(&seg->spans[idx], ci))
			return idx + 1;
		ring_add(seg, ctx, cls, idx);
	}
	return 0;
}

static __attribute__((noinline)) int alloc_small_slow(struct shg_seg *seg,
						      struct shg__tctx *ctx,
						      unsigned cls,
						      struct shg_off *out)
{
	const struct cls_info *ci = &cls_tab[cls];
	uint32_t cur = ctx->cur[cls], idx, s;
	unsigned n;
	int rc = 0;
	SHG_CRASH_POINT("alloc.slow_path");

	if (cur) {
		collect_remote(seg, cur - 1, ci);
		out->v = span_pop(seg, cur - 1, ci);
		if (out->v) {
			if (ctx->owned_count[cls])
				scan_owned(seg, ctx, cls, false);
			return 0;
		}
		ctx->cur[cls] = 0;
		ring_add(seg, ctx, cls, cur - 1);
	}
	s = scan_owned(seg, ctx, cls, true);
	if (!s)
		s = adopt(seg, ctx, cls, ctx->node);
	if (!s) {
		rc = shg__span_alloc_small(seg, ctx->node, cls, ctx->idx, &idx);
		if (rc == 0) {
			s = idx + 1;
			SHG_CRASH_POINT("alloc.new_span");
		}
	}
	for (n = 0; !s && n < seg->nodes; n++)
		if (n != ctx->node)
			s = adopt(seg, ctx, cls, n);
	if (!s)
		return rc ? rc : SHG_ECAPACITY;
	ctx->cur[cls] = s;
	out->v = span_pop(seg, s - 1, ci);
	return out->v ? 0 : SHG_CORRUPT();
}

static __attribute__((noinline)) int alloc_large(struct shg_seg *seg,
						 struct shg__tctx *ctx,
						 size_t size,
						 struct shg_off *out)
{
	uint32_t idx, count;
	int rc;

	if (size > (uint64_t)seg->nspans * SPAN_BYTES)
		return SHG_ECAPACITY;
	count = (uint32_t)(((uint64_t)size + SPAN_MASK) >> SHG_SPAN_SHIFT);
	rc = shg__span_alloc(seg, ctx->node, count,
			     SHG_SPAN_WORD(SHG_SPAN_LARGE, 0, 0, 0), &idx);
	if (rc)
		return rc;
	SHG_CRASH_POINT("alloc.large_taken");
	shg__st64_relaxed(&seg->spans[idx].large_bytes, size);
	out->v = span_off(seg, idx);
	return 0;
}

/**
 * shg_alloc() - see shmgraph.h. @size 0 is -EINVAL.
 *
 * Fast path: the thread's current span of the class has a free block on
 * its local list or below its capacity; no atomic RMW, no lock.
 */
int shg_alloc(struct shg_seg *seg, size_t size, struct shg_off *out)
{
	struct shg__tctx *ctx;
	unsigned cls;
	uint32_t cur;
	int rc;

	if (shg_unlikely(!seg || !out || size == 0)) {
		if (out)
			out->v = 0;
		return -EINVAL;
	}
	out->v = 0;
	rc = shg__tctx_get(seg, &ctx);
	if (shg_unlikely(rc))
		return rc;
	if (shg_unlikely(size > SHG_SMALL_MAX))
		return alloc_large(seg, ctx, size, out);
	cls = shg__size_class(size);
	cur = ctx->cur[cls];
	if (shg_likely(cur != 0)) {
		out->v = span_pop(seg, cur - 1, &cls_tab[cls]);
		if (shg_likely(out->v != 0))
			return 0;
	}
	return alloc_small_slow(seg, ctx, cls, out);
}

/* ---- free --------------------------------------------------------------- */

/* A non-current span of the owner became empty: back to the arena. */
static __attribute__((noinline)) void span_emptied(struct shg_seg *seg,
						   struct shg__tctx *ctx,
						   uint32_t idx, unsigned cls)
{
	/* used == 0: no block allocated, so no remote push in flight. */
	ring_del(seg, ctx, cls, idx);
	shg__span_free(seg, idx);
}

static __attribute__((noinline)) void poison_small(struct shg_seg *seg,
						   unsigned cls, uint64_t off)
{
	memset(seg->base + off + 8, POISON_BYTE, cls_tab[cls].size - 8);
}

/* Owner frees into its local list (fast path: two loads, three stores). */
static inline __attribute__((always_inline)) int
free_local(struct shg_seg *seg, struct shg__tctx *ctx, uint32_t idx,
	   unsigned cls, uint64_t off)
{
	struct shg_span *sp = &seg->spans[idx];
	uint32_t used = used_load(sp);

	if (shg_unlikely(used == 0))
		return SHG_EBADOFF; /* double free */
	if (shg_unlikely(poison_on()))
		poison_small(seg, cls, off);
	blk_set_next(seg, off, shg__ld64_relaxed(&sp->free_head));
	shg__st64_relaxed(&sp->free_head, off);
	used_store(sp, used - 1);
	if (shg_unlikely(used == 1) && ctx->cur[cls] != idx + 1)
		span_emptied(seg, ctx, idx, cls);
	return 0;
}

static __attribute__((noinline)) void free_remote(struct shg_seg *seg,
						  struct shg_span *sp,
						  unsigned cls, uint64_t off)
{
	uint64_t old;

	if (shg_unlikely(poison_on()))
		poison_small(seg, cls, off);
	old = atomic_load_explicit(&sp->remote_head, memory_order_relaxed);
	do {
		blk_set_next(seg, off, old);
		/* Release: the link and the block's contents before the push.
		 * Nothing of the span is touched after a successful CAS. */
	} while (!atomic_compare_exchange_weak_explicit(
		&sp->remote_head, &old, off, memory_order_release,
		memory_order_relaxed));
}

static __attribute__((noinline)) int
free_large(struct shg_seg *seg, uint32_t idx, uint64_t w, uint64_t off)
{
	if (SHG_SPAN_STATE(w) != SHG_SPAN_LARGE ||
	    (off - seg->heap_off) & SPAN_MASK)
		return SHG_EBADOFF;
	/* Every free overwrites word 0 (a small block's free-list link): a
	 * recoverer tells a freed block from one a dead reclaimer marked
	 * and did not free yet (epoch.c, SHG_FREEING_MARK). */
	shg__st64_relaxed((uint64_t *)(seg->base + off), 0);
	if (poison_on()) {
		uint64_t n = (uint64_t)SHG_SPAN_COUNT(w) * SPAN_BYTES;

		memset(seg->base + off, POISON_BYTE,
		       n < POISON_LARGE_MAX ? n : POISON_LARGE_MAX);
	}
	shg__span_free(seg, idx);
	return 0;
}

/* Validate @off as an allocated block and free it. */
static inline __attribute__((always_inline)) int
free_block(struct shg_seg *seg, struct shg__tctx *ctx, uint64_t off)
{
	uint64_t rel = off - seg->heap_off, w;
	uint32_t idx, owner;
	struct shg_span *sp;
	unsigned cls;

	if (shg_unlikely(off < seg->heap_off ||
			 (rel >> SHG_SPAN_SHIFT) >= heap_spans(seg)))
		return SHG_EBADOFF;
	idx = (uint32_t)(rel >> SHG_SPAN_SHIFT);
	sp = &seg->spans[idx];
	w = word_load(sp);
	if (shg_unlikely(SHG_SPAN_STATE(w) != SHG_SPAN_SMALL))
		return free_large(seg, idx, w, off);
	cls = SHG_SPAN_CLASS(w);
	if (shg_unlikely(cls >= SHG_NUM_CLASSES ||
			 blk_index(rel & SPAN_MASK, &cls_tab[cls],
				   shg__ld32_relaxed(&sp->bump)) == UINT32_MAX))
		return SHG_EBADOFF;
	owner = atomic_load_explicit(&sp->owner, memory_order_relaxed);
	if (shg_likely(ctx && owner == ctx->idx + 1))
		return free_local(seg, ctx, idx, cls, off);
	free_remote(seg, sp, cls, off);
	return 0;
}

/**
 * shg_free() - see shmgraph.h.
 *
 * Detects: offsets outside the carved heap, not at a block start, in free
 * spans, inside large blocks, above the span's bump index, and a double
 * free by the owner when the span has no allocated block left. A double
 * free of a small block is not detected at free time in general; one freed
 * by the owner and by another thread is cut off when the owner collects
 * (collect_remote), so it is never handed out twice; shg_check reports
 * other list damage.
 */
int shg_free(struct shg_seg *seg, struct shg_off off)
{
	if (!seg)
		return -EINVAL;
	return free_block(seg, shg__tctx_peek(seg), off.v);
}

/* Free a block now (after its grace period); bad offsets are ignored. */
void shg__free_now(struct shg_seg *seg, struct shg__tctx *ctx, uint64_t off)
{
	if (!ctx)
		ctx = shg__tctx_peek(seg);
	(void)free_block(seg, ctx, off);
}

size_t shg_block_size(struct shg_seg *seg, struct shg_off off)
{
	uint64_t rel = off.v - (seg ? seg->heap_off : 0), w;
	struct shg_span *sp;
	unsigned cls;

	if (!seg || off.v < seg->heap_off ||
	    (rel >> SHG_SPAN_SHIFT) >= heap_spans(seg))
		return 0;
	sp = &seg->spans[rel >> SHG_SPAN_SHIFT];
	w = word_load(sp);
	if (SHG_SPAN_STATE(w) == SHG_SPAN_SMALL) {
		cls = SHG_SPAN_CLASS(w);
		if (cls >= SHG_NUM_CLASSES ||
		    blk_index(rel & SPAN_MASK, &cls_tab[cls],
			      shg__ld32_relaxed(&sp->bump)) == UINT32_MAX)
			return 0;
		return cls_tab[cls].size;
	}
	if (SHG_SPAN_STATE(w) == SHG_SPAN_LARGE && (rel & SPAN_MASK) == 0)
		return (size_t)SHG_SPAN_COUNT(w) * SPAN_BYTES;
	return 0;
}

/* ---- exit and death ------------------------------------------------------ */

/*
 * Whether every block of span @sp, owned by a thread of the dead process
 * @dead_token, was allocated by processes that are dead now: its
 * owner_token is @dead_token, or another process's token that is no
 * longer alive. The second case is a thread that died while adopting the
 * span, after taking it (span.owner is its slot) and before note_adopter
 * made the token its own: it allocated nothing from it yet, and the
 * span's blocks are the previous dead owner's. Without it such a span
 * would be abandoned, and the blocks its dead adopter was holding when it
 * died would leak until a quiescent sweep: collect_remote() holds the
 * remote stack it exchanged out only in a register until it splices it
 * onto the local list, so a death there loses that chain from both lists
 * (the span's recount then counts those blocks as allocated). On a SWEEP
 * span the leak sweep frees them; MIXED spans are never swept.
 */
static bool dead_owned(struct shg_seg *seg, struct shg_span *sp,
		       uint64_t dead_token)
{
	uint64_t tok = shg__ld64_relaxed(&sp->owner_token);

	if (dead_token == SHG_TOKEN_MIXED || tok == 0 || tok == SHG_TOKEN_MIXED)
		return false;
	return tok == dead_token || !shg__token_alive(seg, tok);
}

/*
 * Give up SMALL span @idx of slot @tidx: back to the arena if empty, else
 * abandoned. @dead_token: the dead owner's process token (0 for an exiting
 * thread); the span is recounted, and if every block in it was allocated by
 * that dead process it is set aside for the leak sweep (SHG_OWNER_SWEEP)
 * instead of being abandoned. Returns 1 if given up.
 */
static uint32_t give_up(struct shg_seg *seg, uint32_t idx, uint32_t tidx,
			unsigned cls, uint64_t dead_token)
{
	struct shg_span *sp = &seg->spans[idx];

	if (dead_token)
		span_recount(seg, idx, &cls_tab[cls]);
	else
		collect_remote(seg, idx, &cls_tab[cls]);
	SHG_CRASH_POINT("span.give_up");
	if (used_load(sp) == 0) {
		/* No block allocated: no remote push can be in flight. */
		shg__span_free(seg, idx);
		return 1;
	}
	if (dead_token && dead_owned(seg, sp, dead_token))
		return shg__span_sweep_mark(seg, idx, tidx) == 0;
	return shg__span_abandon(seg, idx, tidx) == 0;
}

/* The SMALL span @idx's class if it is owned by @tidx, else -1. */
static int owned_by(struct shg_seg *seg, uint32_t idx, uint32_t tidx)
{
	uint64_t w;

	if (idx >= heap_spans(seg))
		return -1;
	w = word_load(&seg->spans[idx]);
	if (SHG_SPAN_STATE(w) != SHG_SPAN_SMALL ||
	    SHG_SPAN_CLASS(w) >= SHG_NUM_CLASSES ||
	    atomic_load_explicit(&seg->spans[idx].owner,
				 memory_order_relaxed) != tidx + 1)
		return -1;
	return (int)SHG_SPAN_CLASS(w);
}

/* Every span owned by @tidx, found by a scan of the descriptors. */
static uint32_t abandon_scan(struct shg_seg *seg, uint32_t tidx,
			     uint64_t dead_token)
{
	uint32_t i, top = heap_spans(seg), n = 0;
	int cls;

	for (i = 0; i < top; i++) {
		cls = owned_by(seg, i, tidx);
		if (cls >= 0)
			n += give_up(seg, i, tidx, (unsigned)cls, dead_token);
	}
	return n;
}

/* The spans in @ctx's cache; false if its lists turned out inconsistent. */
static bool abandon_ctx(struct shg_seg *seg, uint32_t tidx,
			struct shg__tctx *ctx, uint32_t *n)
{
	bool ok = true;
	uint32_t s, next, seen;
	unsigned c;

	/*
	 * The owned ring (spans found full) first, the current span last: the
	 * abandoned list is a stack and adoption looks at its first few
	 * spans only, so the span most likely to have free blocks must be on
	 * top. Otherwise short-lived processes bury the free blocks under
	 * full spans and each carves a new span.
	 */
	for (c = 0; c < SHG_NUM_CLASSES; c++) {
		s = ctx->owned[c];
		for (seen = 0; s && seen < ctx->owned_count[c]; seen++) {
			if (owned_by(seg, s - 1, tidx) != (int)c) {
				ok = false;
				break;
			}
			next = shg__ld32_relaxed(&seg->spans[s - 1].next);
			*n += give_up(seg, s - 1, tidx, c, 0);
			s = next == ctx->owned[c] ? 0 : next;
		}
		if (s)
			ok = false;
		ctx->owned[c] = 0;
		ctx->owned_count[c] = 0;
		s = ctx->cur[c];
		ctx->cur[c] = 0;
		if (s && owned_by(seg, s - 1, tidx) == (int)c)
			*n += give_up(seg, s - 1, tidx, c, 0);
		else if (s)
			ok = false;
	}
	return ok;
}

/**
 * shg__alloc_abandon() - give up the spans of thread slot @tidx.
 * @ctx: the exiting thread's context (its cache lists are walked), or NULL
 *       for a dead thread (the descriptors are scanned for owner == @tidx+1
 *       and each span is recounted, since the owner may have died mid-step;
 *       then every arena is rebuilt under its lock, which also repairs
 *       arenas whose lock the dead thread held).
 *
 * Empty spans go back to their arena, the others to its abandoned list;
 * except, for a dead thread, spans whose blocks were all allocated by the
 * dead process (span.owner_token): those are set aside for the leak sweep
 * (SHG_OWNER_SWEEP, see shg__sweep) and released to the abandoned list by
 * it. Context: the caller serializes recovery of one slot (recover_lock).
 * Return: the number of spans given up.
 */
uint32_t shg__alloc_abandon(struct shg_seg *seg, uint32_t tidx,
			    struct shg__tctx *ctx)
{
	uint32_t n = 0;
	uint64_t tok;

	if (!seg || tidx >= seg->max_threads)
		return 0;
	if (ctx) {
		if (!abandon_ctx(seg, tidx, ctx, &n))
			n += abandon_scan(seg, tidx, 0);
		return n;
	}
	/* The dead owner's token (the slot is released after this). */
	tok = atomic_load_explicit(&seg->threads[tidx].owner,
				   memory_order_acquire);
	n = abandon_scan(seg, tidx, tok ? tok : SHG_TOKEN_MIXED);
	shg__arena_repair(seg);
	return n;
}

#include "alloc_check.c" /* compiled as part of this file */
