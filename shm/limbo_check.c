/* SPDX-License-Identifier: MIT */
/*
 * Checking and walking the retire lists (FIFO, held list, open and
 * reclaiming batches) for shg_check and the leak sweep. Read-only.
 */
#include "limbo.h"

#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

struct lcheck {
	shg_problem_fn fn;
	void *arg;
	struct shg_check_report *rep;
	struct shg__offvec all; /* every batch block and retired entry */
	int all_err; /* -ENOMEM once a push failed: all is incomplete */
	uint64_t sum; /* bytes over all batches */
	uint64_t sealed; /* bytes over the sealed FIFO */
};

/* Append @x to @c->all; a failure is kept in @c->all_err. */
static void all_push(struct lcheck *c, uint64_t x)
{
	if (shg__offvec_push(&c->all, x))
		c->all_err = -ENOMEM;
}

/*
 * Reads of an open batch whose total disagrees with its entries: its
 * owner appends without a lock (entry, count + 1, bytes += size), so a
 * read can fall between two of those stores. A mismatch counts only when
 * a read saw the batch unchanged (count and bytes the same before and
 * after summing the entries) in each of OPEN_TRIES reads; a read that saw
 * it change (its owner is appending) decides nothing. A batch whose owner
 * is dead or idle reads the same every time, so a real mismatch is found.
 */
#define OPEN_TRIES 64

/* Whether open batch @b's total agrees with its entries (see above). */
static bool open_agrees(struct shg_seg *seg, struct shg_batch *b)
{
	uint64_t sizes, bytes;
	uint32_t i, n, t;
	bool stable_mismatch = true;

	for (t = 0; t < OPEN_TRIES; t++) {
		bytes = shg__ld64_relaxed(&b->bytes);
		n = batch_count(b);
		sizes = 0;
		for (i = 0; i < n; i++)
			sizes += shg_block_size(
				seg, (struct shg_off){ ent_off(b, i) });
		if (sizes == bytes)
			return true;
		if (n != batch_count(b) ||
		    bytes != shg__ld64_relaxed(&b->bytes))
			stable_mismatch = false;
		sched_yield();
	}
	return !stable_mismatch;
}

/* Check one batch (@kind: "sealed", "open", "reclaiming"); NULL if bad. */
static struct shg_batch *check_batch(struct shg_seg *seg, struct lcheck *c,
				     uint64_t off, const char *kind)
{
	struct shg_batch *b = batch_at(seg, off);
	uint64_t sizes = 0, e, bytes;
	uint32_t i, n;
	size_t sz;

	bool open = b && !strcmp(kind, "open");

	if (!b) {
		shg__problem(c->fn, c->arg, c->rep, SHG_ECORRUPT,
			     "limbo: %s batch at %#llx is invalid", kind,
			     (unsigned long long)off);
		return NULL;
	}
	if (shg_block_size(seg, (struct shg_off){ off }) < SHG_BATCH_BYTES)
		shg__problem(
			c->fn, c->arg, c->rep, SHG_ECORRUPT,
			"limbo: %s batch at %#llx is not an allocated block",
			kind, (unsigned long long)off);
	all_push(c, off);
	n = batch_count(b);
	for (i = 0; i < n; i++) {
		e = ent_off(b, i);
		if (!e && !strcmp(kind, "reclaiming"))
			continue; /* moved to a held batch */
		sz = shg_block_size(seg, (struct shg_off){ e });
		if (!sz)
			shg__problem(
				c->fn, c->arg, c->rep, SHG_ECORRUPT,
				"limbo: retired %#llx (batch %#llx) is not an allocated block",
				(unsigned long long)e, (unsigned long long)off);
		sizes += sz;
		all_push(c, e);
	}
	bytes = shg__ld64_relaxed(&b->bytes);
	/* A reclaiming batch keeps its total while its count shrinks. */
	if (strcmp(kind, "reclaiming") && bytes != sizes &&
	    (!open || !open_agrees(seg, b)))
		shg__problem(
			c->fn, c->arg, c->rep, SHG_ECORRUPT,
			"limbo: %s batch %#llx says %llu bytes, entries hold %llu",
			kind, (unsigned long long)off,
			(unsigned long long)bytes, (unsigned long long)sizes);
	c->sum += bytes;
	return b;
}

/* Walk the FIFO, checking links, tags and the tail. */
static void check_fifo(struct shg_seg *seg, struct lcheck *c)
{
	struct shg_hdr *hdr = seg->hdr;
	uint64_t cur = shg__ld64_relaxed(&hdr->limbo_head), last = 0,
		 prev_tag = 0, n = 0;
	uint64_t bound = fifo_bound(seg),
		 tail = shg__ld64_relaxed(&hdr->limbo_tail);
	struct shg_batch *b;

	while (cur) {
		if (++n > bound) {
			shg__problem(
				c->fn, c->arg, c->rep, SHG_ECORRUPT,
				"limbo: FIFO longer than the heap can hold");
			return;
		}
		b = check_batch(seg, c, cur, "sealed");
		if (!b)
			return;
		c->sealed += shg__ld64_relaxed(&b->bytes);
		if (n > 1 && shg__ld64_relaxed(&b->tag) <= prev_tag) {
			shg__problem(
				c->fn, c->arg, c->rep, SHG_ECORRUPT,
				"limbo: tag of batch %#llx does not increase (cycle?)",
				(unsigned long long)cur);
			return;
		}
		prev_tag = shg__ld64_relaxed(&b->tag);
		last = cur;
		cur = shg__ld64_relaxed(&b->next);
	}
	if (tail != last)
		shg__problem(c->fn, c->arg, c->rep, SHG_ECORRUPT,
			     "limbo: tail %#llx is not the last batch %#llx",
			     (unsigned long long)tail,
			     (unsigned long long)last);
}

/* Walk the held list, checking each batch and the held total. */
static void check_held(struct shg_seg *seg, struct lcheck *c)
{
	uint64_t cur = shg__ld64_relaxed(&seg->hdr->held_head), n = 0, sum = 0,
		 total;
	uint64_t bound = fifo_bound(seg), head = cur;
	uint64_t before = shg__held_bytes(seg);
	struct shg_batch *b;

	while (cur) {
		if (++n > bound) {
			shg__problem(c->fn, c->arg, c->rep, SHG_ECORRUPT,
				     "limbo: held list longer than the heap "
				     "can hold (cycle?)");
			return;
		}
		b = check_batch(seg, c, cur, "held");
		if (!b)
			return;
		sum += shg__ld64_relaxed(&b->bytes);
		cur = shg__ld64_relaxed(&b->next);
	}
	total = shg__held_bytes(seg);
	if (total != before || shg__ld64_relaxed(&seg->hdr->held_head) != head)
		return; /* changed under the walk: the total decides nothing */
	if (total != sum)
		shg__problem(
			c->fn, c->arg, c->rep, SHG_ECORRUPT,
			"limbo: held_bytes is %llu, held batches hold %llu",
			(unsigned long long)total, (unsigned long long)sum);
}

int shg__limbo_check(struct shg_seg *seg, shg_problem_fn fn, void *arg,
		     struct shg_check_report *rep)
{
	struct lcheck c = { .fn = fn, .arg = arg, .rep = rep };
	uint64_t hdr_bytes;
	uint32_t i;
	size_t k;
	bool locked;

	/*
	 * The FIFO under limbo_lock, which every change of the FIFO and of
	 * retired_bytes takes, so they agree exactly on a live segment too.
	 * The hold lasts one pass over the sealed entries, which the retire
	 * budget bounds; writers wait for the lock only to seal or pop a
	 * batch. If the lock cannot be taken (not recoverable), the FIFO is
	 * read without it.
	 */
	locked = !shg__lock(seg, &seg->hdr->limbo_lock, shg__limbo_repair);
	if (!locked)
		shg__problem(fn, arg, rep, SHG_ECORRUPT,
			     "limbo: limbo_lock cannot be taken");
	check_fifo(seg, &c);
	hdr_bytes = atomic_load_explicit(&seg->hdr->retired_bytes,
					 memory_order_relaxed);
	if (locked)
		shg__unlock(seg, &seg->hdr->limbo_lock);
	/* The held list can be as long as a pinned version (a check's own
	 * pins make it so on a busy segment): walked without the lock; its
	 * total is compared only if the list did not change meanwhile. */
	check_held(seg, &c);
	for (i = 0; i < seg->max_threads; i++) {
		struct shg_tslot *s = &seg->threads[i];
		uint64_t o = atomic_load_explicit(&s->limbo_open,
						  memory_order_acquire);
		uint64_t r = atomic_load_explicit(&s->reclaiming,
						  memory_order_acquire);

		if (o)
			check_batch(seg, &c, o, "open");
		if (r)
			check_batch(seg, &c, r, "reclaiming");
	}
	if (c.all_err) {
		free(c.all.v);
		return -ENOMEM;
	}
	if (c.all.n)
		qsort(c.all.v, c.all.n, sizeof(*c.all.v), shg__cmp_u64);
	for (k = 1; k < c.all.n; k++)
		if (c.all.v[k] == c.all.v[k - 1])
			shg__problem(fn, arg, rep, SHG_ECORRUPT,
				     "limbo: block %#llx is retired twice",
				     (unsigned long long)c.all.v[k]);
	free(c.all.v);
	if (hdr_bytes != c.sealed)
		shg__problem(fn, arg, rep, SHG_ECORRUPT,
			     "limbo: retired_bytes is %llu, sealed batches "
			     "hold %llu",
			     (unsigned long long)hdr_bytes,
			     (unsigned long long)c.sealed);
	if (rep)
		rep->retired_bytes = c.sum;
	return 0;
}

/* Report batch @off and its entries to @fn. */
static void walk_batch(struct shg_batch *b, uint64_t off,
		       void (*fn)(void *arg, uint64_t off), void *arg)
{
	uint32_t i, n = batch_count(b);

	fn(arg, off);
	for (i = 0; i < n; i++)
		if (ent_off(b, i))
			fn(arg, ent_off(b, i));
}

static void limbo_walk(struct shg_seg *seg, void (*fn)(void *arg, uint64_t off),
		       void *arg, bool staged);

void shg__limbo_walk(struct shg_seg *seg, void (*fn)(void *arg, uint64_t off),
		     void *arg)
{
	limbo_walk(seg, fn, arg, true);
}

/* Without the staged retires: a commit stages the blocks it will replace
 * before its root CAS, so until then they are still reachable. */
void shg__limbo_walk_retired(struct shg_seg *seg,
			     void (*fn)(void *arg, uint64_t off), void *arg)
{
	limbo_walk(seg, fn, arg, false);
}

static void limbo_walk(struct shg_seg *seg, void (*fn)(void *arg, uint64_t off),
		       void *arg, bool staged)
{
	uint64_t cur = shg__ld64_relaxed(&seg->hdr->limbo_head), prev_tag = 0,
		 n = 0;
	uint64_t bound = fifo_bound(seg);
	struct shg_batch *b;
	uint32_t i;

	while (cur && n++ < bound && (b = batch_at(seg, cur))) {
		if (n > 1 && shg__ld64_relaxed(&b->tag) <= prev_tag)
			break;
		prev_tag = shg__ld64_relaxed(&b->tag);
		walk_batch(b, cur, fn, arg);
		cur = shg__ld64_relaxed(&b->next);
	}
	cur = shg__ld64_relaxed(&seg->hdr->held_head);
	n = 0;
	while (cur && n++ < bound && (b = batch_at(seg, cur))) {
		walk_batch(b, cur, fn, arg);
		cur = shg__ld64_relaxed(&b->next);
	}
	for (i = 0; i < seg->max_threads; i++) {
		struct shg_tslot *s = &seg->threads[i];
		uint64_t o = atomic_load_explicit(&s->limbo_open,
						  memory_order_acquire);
		uint64_t r = atomic_load_explicit(&s->reclaiming,
						  memory_order_acquire);

		uint64_t c = atomic_load_explicit(&s->stage_chain,
						  memory_order_acquire);

		if ((b = batch_at(seg, o)))
			walk_batch(b, o, fn, arg);
		if ((b = batch_at(seg, r)))
			walk_batch(b, r, fn, arg);
		/* A commit's staged retires (epoch_stage.c): private batches
		 * that only the slot names until they are linked. */
		for (n = 0;
		     staged && c && n++ < bound && (b = batch_at(seg, c));
		     c = shg__ld64_relaxed(&b->next))
			walk_batch(b, c, fn, arg);
	}
}
