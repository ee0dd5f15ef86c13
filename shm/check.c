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
 * batches, spans) and reclaims. The leak sweep (shg__sweep) frees blocks
 * that are allocated but reachable from nothing; it needs quiescent writers
 * at this layer (see docs/ARCHITECTURE.md §8).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

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
	    h->layout_hash != shg__layout_hash())
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

/* ---- sets of offsets (sorted vector) ----------------------------------- */

struct offset_set {
	uint64_t *v;
	size_t n, cap;
	bool oom;
};

static void set_add(void *arg, uint64_t off)
{
	struct offset_set *s = arg;

	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 1024;
		uint64_t *v = realloc(s->v, cap * sizeof(*v));

		if (!v) {
			s->oom = true;
			return;
		}
		s->v = v;
		s->cap = cap;
	}
	s->v[s->n++] = off;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static bool set_has(const struct offset_set *s, uint64_t off)
{
	return s->n &&
	       bsearch(&off, s->v, s->n, sizeof(*s->v), cmp_u64) != NULL;
}

/* Cross-module: root values are allocated blocks that are not retired. */
static void check_roots_vs_retired(struct shg_seg *seg, shg_problem_fn fn,
				   void *arg, struct shg_check_report *rep)
{
	struct offset_set retired = { 0 };
	uint32_t r;

	shg__limbo_walk(seg, set_add, &retired);
	if (retired.oom) {
		free(retired.v);
		return;
	}
	if (retired.n)
		qsort(retired.v, retired.n, sizeof(*retired.v), cmp_u64);
	for (r = 0; r < seg->max_roots; r++) {
		struct shg_rslot *rs = &seg->roots[r];
		uint32_t st = atomic_load(&rs->state);
		uint64_t v = atomic_load(&rs->value);

		if (st == SHG_ROOT_FREE || v == 0)
			continue;
		if (set_has(&retired, v))
			shg__problem(fn, arg, rep, SHG_ECORRUPT,
				     "root %u: value %llu is retired", r,
				     (unsigned long long)v);
	}
	free(retired.v);
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
	return (int)rep->problems;
}

int shg_recover(struct shg_seg *seg, struct shg_recover_report *rep)
{
	struct shg_recover_report local;
	struct shg__tctx *ctx;

	if (!seg)
		return -EINVAL;
	ctx = shg__tctx_peek(seg);
	if (ctx && ctx->hot.nest)
		return SHG_ENESTED;
	if (!rep)
		rep = &local;
	memset(rep, 0, sizeof(*rep));
	shg__release_dead(seg, rep);
	shg_reclaim(seg);
	return 0;
}

/* ---- leak sweep ------------------------------------------------------- */

struct shg__marker {
	struct shg_seg *seg;
	struct offset_set live; /* marked block offsets (unsorted) */
};

void shg__mark(struct shg__marker *mk, uint64_t off)
{
	if (shg_block_size(mk->seg, (struct shg_off){ off }) > 0)
		set_add(&mk->live, off);
}

static void mark_cb(void *arg, uint64_t off)
{
	shg__mark(arg, off);
}

struct sweep_state {
	struct offset_set *live; /* sorted */
	struct offset_set dead; /* unreachable blocks */
	int64_t bytes;
};

static void sweep_cb(void *arg, uint64_t off, uint64_t size)
{
	struct sweep_state *st = arg;

	if (set_has(st->live, off))
		return;
	set_add(&st->dead, off);
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
	uint32_t r;
	size_t i;
	int err;

	for (r = 0; r < seg->max_roots; r++) {
		struct shg_rslot *rs = &seg->roots[r];
		uint64_t v = atomic_load(&rs->value);

		if (atomic_load(&rs->state) == SHG_ROOT_FREE || v == 0)
			continue;
		shg__mark(&mk, v);
		if (mark)
			mark(&mk, seg, v, arg);
	}
	shg__limbo_walk(seg, mark_cb, &mk);
	if (mk.live.oom) {
		free(mk.live.v);
		return -ENOMEM;
	}
	if (mk.live.n)
		qsort(mk.live.v, mk.live.n, sizeof(*mk.live.v), cmp_u64);
	st.live = &mk.live;
	err = shg__alloc_walk(seg, sweep_cb, &st);
	if (!err && st.dead.oom)
		err = -ENOMEM;
	if (!err && !dry_run && st.dead.n)
		err = shg__tctx_get(seg, &ctx);
	if (!err && !dry_run)
		for (i = 0; i < st.dead.n; i++)
			shg__free_now(seg, ctx, st.dead.v[i]);
	free(mk.live.v);
	free(st.dead.v);
	return err ? err : st.bytes;
}
