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

/* Where an entry of lcheck.all was found, in its low bits (offsets are
 * 8-aligned): the pair (HELD, RECLAIMING) is an entry being moved. */
enum { SRC_LIST = 0, SRC_HELD = 1, SRC_RECLAIMING = 2, SRC_MASK = 7 };

/* Open batches whose total disagreed under limbo_lock, re-read after. */
#define MAX_DEFERRED 16

struct lcheck {
	shg_problem_fn fn;
	void *arg;
	struct shg_check_report *rep;
	struct shg__offvec all; /* every batch block and retired entry,
				 * SRC_* in the low bits */
	uint64_t deferred[MAX_DEFERRED]; /* open batches to re-read */
	uint32_t ndeferred;
	int all_err; /* -ENOMEM once a push failed: all is incomplete */
	uint64_t sum; /* bytes over all batches */
	uint64_t sealed; /* bytes over the sealed FIFO */
};

/* Append @x (found in a list of kind @src) to @c->all; a failure is
 * kept in @c->all_err. */
static void all_push(struct lcheck *c, uint64_t x, unsigned src)
{
	if (shg__offvec_push(&c->all, x | src))
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

/* Source bits for a batch of @kind. */
static unsigned kind_src(const char *kind)
{
	if (!strcmp(kind, "held"))
		return SRC_HELD;
	if (!strcmp(kind, "reclaiming"))
		return SRC_RECLAIMING;
	return SRC_LIST;
}

/* Check one batch (@kind: "sealed", "held", "open", "reclaiming"); NULL
 * if bad. An open batch whose total disagrees is re-read after limbo_lock
 * is released (open_agrees may wait for its owner). */
static struct shg_batch *check_batch(struct shg_seg *seg, struct lcheck *c,
				     uint64_t off, const char *kind)
{
	struct shg_batch *b = batch_at(seg, off);
	uint64_t sizes = 0, e, bytes;
	unsigned src = kind_src(kind);
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
	all_push(c, off, src);
	n = batch_count(b);
	for (i = 0; i < n; i++) {
		e = ent_off(b, i);
		if (!e && src == SRC_RECLAIMING)
			continue; /* moved to a held batch */
		sz = shg_block_size(seg, (struct shg_off){ e });
		if (!sz || (e & SRC_MASK))
			shg__problem(
				c->fn, c->arg, c->rep, SHG_ECORRUPT,
				"limbo: retired %#llx (batch %#llx) is not an allocated block",
				(unsigned long long)e, (unsigned long long)off);
		sizes += sz;
		all_push(c, e & ~(uint64_t)SRC_MASK, src);
	}
	bytes = shg__ld64_relaxed(&b->bytes);
	/* A reclaiming batch keeps its total while its count shrinks. */
	if (src != SRC_RECLAIMING && bytes != sizes) {
		if (open && c->ndeferred < MAX_DEFERRED)
			c->deferred[c->ndeferred++] = off;
		else if (!open || !open_agrees(seg, b))
			shg__problem(
				c->fn, c->arg, c->rep, SHG_ECORRUPT,
				"limbo: %s batch %#llx says %llu bytes, entries hold %llu",
				kind, (unsigned long long)off,
				(unsigned long long)bytes,
				(unsigned long long)sizes);
	}
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

/* Every thread slot's batches of @kind ("open" or "reclaiming"). */
static void check_slots(struct shg_seg *seg, struct lcheck *c, const char *kind)
{
	bool open = !strcmp(kind, "open");
	uint64_t o;
	uint32_t i;

	for (i = 0; i < seg->max_threads; i++) {
		struct shg_tslot *s = &seg->threads[i];

		o = atomic_load_explicit(open ? &s->limbo_open : &s->reclaiming,
					 memory_order_acquire);
		if (o)
			check_batch(seg, c, o, kind);
	}
}

/* Report each block found twice, except an entry being moved from a
 * reclaiming batch to a held one (linked first, then zeroed). */
static void report_twice(struct lcheck *c)
{
	uint64_t a, b;
	size_t k;

	if (c->all.n)
		qsort(c->all.v, c->all.n, sizeof(*c->all.v), shg__cmp_u64);
	for (k = 1; k < c->all.n; k++) {
		a = c->all.v[k - 1];
		b = c->all.v[k];
		if ((a & ~(uint64_t)SRC_MASK) != (b & ~(uint64_t)SRC_MASK))
			continue;
		if ((a & SRC_MASK) == SRC_HELD &&
		    (b & SRC_MASK) == SRC_RECLAIMING)
			continue;
		shg__problem(c->fn, c->arg, c->rep, SHG_ECORRUPT,
			     "limbo: block %#llx is retired twice",
			     (unsigned long long)(b & ~(uint64_t)SRC_MASK));
	}
}

/*
 * Reading order (why a live segment yields no false "retired twice").
 * A block has one life at a time: allocated, retired into one batch,
 * freed. Everything is read under limbo_lock, which every seal, pop and
 * held-list change takes: while it is held no sealed or held batch is
 * freed or moved, and no open batch is sealed, so a block found in the
 * FIFO, the held list or an open batch stays in that life until the lock
 * is released. The only frees meanwhile are of reclaiming batches'
 * entries, and such an entry may be reused and retired again into an open
 * batch; the reclaiming batches are read last, and a reclaimer stores the
 * shorter count before it frees the entry (epoch.c), so the acquire load
 * of that count (batch_count) that follows our read of the re-retired
 * entry excludes the freed one. Two sightings of one block are thus two
 * lives at once, a real double retire, except a reclaiming entry already
 * linked into a held batch and not yet zeroed (skipped). Writers wait for
 * the lock only to seal or pop; the hold is one pass over the retired
 * entries, which the retire budget bounds.
 */
int shg__limbo_check(struct shg_seg *seg, shg_problem_fn fn, void *arg,
		     struct shg_check_report *rep)
{
	struct lcheck c = { .fn = fn, .arg = arg, .rep = rep };
	uint64_t hdr_bytes;
	struct shg_batch *b;
	uint32_t i;
	bool locked;

	locked = !shg__lock(seg, &seg->hdr->limbo_lock, shg__limbo_repair);
	if (!locked) /* not recoverable: read without it */
		shg__problem(fn, arg, rep, SHG_ECORRUPT,
			     "limbo: limbo_lock cannot be taken");
	check_fifo(seg, &c);
	hdr_bytes = atomic_load_explicit(&seg->hdr->retired_bytes,
					 memory_order_relaxed);
	check_held(seg, &c);
	check_slots(seg, &c, "open");
	check_slots(seg, &c, "reclaiming");
	if (locked)
		shg__unlock(seg, &seg->hdr->limbo_lock);
	for (i = 0; i < c.ndeferred; i++) {
		b = batch_at(seg, c.deferred[i]);
		if (b && !open_agrees(seg, b))
			shg__problem(fn, arg, rep, SHG_ECORRUPT,
				     "limbo: open batch %#llx: its total "
				     "disagrees with its entries",
				     (unsigned long long)c.deferred[i]);
	}
	if (c.all_err) {
		free(c.all.v);
		return -ENOMEM;
	}
	report_twice(&c);
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

/*
 * Retired entries for shg_check's graph walk (lib/gcheck.c), each with a
 * token that says how to confirm later that the entry was still in the
 * same life (not freed) at a later instant (shg__limbo_confirmed):
 *
 *  - open batches: a batch seen open is sealed after the caller's read
 *    section began, so its tag is at least the caller's epoch and no
 *    reclaimer frees it before the section ends (the grace-period rule):
 *    always confirmed (SHG__RT_OPEN);
 *  - sealed batches: popped in FIFO order, their entries freed only after
 *    the pop, so an entry is unfreed while its batch's tag is at least the
 *    FIFO head's (tag << 2 | SHG__RT_FIFO);
 *  - held batches: entries leave only by an unlink, which advances
 *    held_unlinks (SHG__RT_HELD, confirmed while it did not move);
 *  - reclaiming batches: being freed now; not reported at all. Nor are
 *    staged retires of commits in flight, which are still reachable
 *    until their root CAS.
 * A pop can happen while a batch is read, so an entry read from a batch
 * popped meanwhile may already be freed and reused: confirmation after the
 * caller's reads is what makes the entry count.
 */
void shg__limbo_mark(struct shg_seg *seg, struct shg__limbo_mark *m)
{
	uint64_t head, h2;
	struct shg_batch *b;
	int tries;

	m->held_unlinks =
		__atomic_load_n(&seg->hdr->held_unlinks, __ATOMIC_ACQUIRE);
	m->head_tag = UINT64_MAX; /* unknown or empty: confirms nothing */
	for (tries = 0; tries < 8; tries++) {
		head = atomic_load_explicit(
			(_Atomic uint64_t *)&seg->hdr->limbo_head,
			memory_order_acquire);
		b = batch_at(seg, head);
		if (!b)
			return;
		m->head_tag = shg__ld64_relaxed(&b->tag);
		atomic_thread_fence(memory_order_acquire);
		h2 = shg__ld64_relaxed(&seg->hdr->limbo_head);
		if (h2 == head)
			return; /* the tag was read while it was the head */
		m->head_tag = UINT64_MAX;
	}
}

bool shg__limbo_confirmed(const struct shg__limbo_mark *then,
			  const struct shg__limbo_mark *now, uint64_t token)
{
	switch (token & 3) {
	case SHG__RT_OPEN:
		return true;
	case SHG__RT_HELD:
		return then->held_unlinks == now->held_unlinks;
	case SHG__RT_FIFO:
		return (token >> 2) >= now->head_tag;
	default:
		return false;
	}
}

/*
 * Every batch, with its token (see above; 0: reclaiming or staged, which
 * shg_check does not report): the FIFO, the held list, then each thread
 * slot's open, reclaiming and staged batches.
 */
struct lists_walk {
	void (*batch)(struct lists_walk *w, struct shg_batch *b, uint64_t off,
		      uint64_t token);
	void (*fn)(void *arg, uint64_t off); /* shg__limbo_walk */
	void (*tfn)(void *arg, uint64_t off, uint64_t token); /* _retired */
	void *arg;
};

static void walk_lists(struct shg_seg *seg, struct lists_walk *w)
{
	uint64_t cur = shg__ld64_relaxed(&seg->hdr->limbo_head), prev_tag = 0,
		 n = 0, tag;
	uint64_t bound = fifo_bound(seg);
	struct shg_batch *b;
	uint32_t i;

	while (cur && n++ < bound && (b = batch_at(seg, cur))) {
		tag = shg__ld64_relaxed(&b->tag);
		if (n > 1 && tag <= prev_tag)
			break;
		prev_tag = tag;
		w->batch(w, b, cur, tag >> 62 ? 0 : tag << 2 | SHG__RT_FIFO);
		cur = shg__ld64_relaxed(&b->next);
	}
	cur = shg__ld64_relaxed(&seg->hdr->held_head);
	n = 0;
	while (cur && n++ < bound && (b = batch_at(seg, cur))) {
		w->batch(w, b, cur, SHG__RT_HELD);
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
			w->batch(w, b, o, SHG__RT_OPEN);
		if ((b = batch_at(seg, r)))
			w->batch(w, b, r, 0);
		/* A commit's staged retires (epoch_stage.c): private batches
		 * that only the slot names until they are linked. */
		for (n = 0; c && n++ < bound && (b = batch_at(seg, c));
		     c = shg__ld64_relaxed(&b->next))
			w->batch(w, b, c, 0);
	}
}

/* shg__limbo_walk's step: the batch block and its entries. */
static void batch_blocks(struct lists_walk *w, struct shg_batch *b,
			 uint64_t off, uint64_t token)
{
	uint32_t i, n = batch_count(b);

	(void)token;
	w->fn(w->arg, off);
	for (i = 0; i < n; i++)
		if (ent_off(b, i))
			w->fn(w->arg, ent_off(b, i));
}

/* shg__limbo_walk_retired's step: entries of reportable batches. */
static void batch_tokens(struct lists_walk *w, struct shg_batch *b,
			 uint64_t off, uint64_t token)
{
	uint32_t i, n = batch_count(b);

	(void)off;
	for (i = 0; token && i < n; i++)
		if (ent_off(b, i))
			w->tfn(w->arg, ent_off(b, i), token);
}

void shg__limbo_walk_retired(struct shg_seg *seg,
			     void (*fn)(void *arg, uint64_t off,
					uint64_t token),
			     void *arg)
{
	struct lists_walk w = { .batch = batch_tokens, .tfn = fn, .arg = arg };

	walk_lists(seg, &w);
}

void shg__limbo_walk(struct shg_seg *seg, void (*fn)(void *arg, uint64_t off),
		     void *arg)
{
	struct lists_walk w = { .batch = batch_blocks, .fn = fn, .arg = arg };

	walk_lists(seg, &w);
}
