/* SPDX-License-Identifier: MIT */
/*
 * Graph-layer checker and the graph half of the leak sweep's marking.
 *
 * shg__graph_check() (called by shg_check) verifies the type table
 * (shg__types_check), then, for every root whose value is a version
 * record: the record (graph id, sequence), that every node reachable from
 * it is a valid typed block of the root's graph, that
 * no node is reachable from two graphs (a process-local map node -> graph
 * over all roots), that no node reachable from a CURRENT version is
 * retired or held, and that the version's bytes/nodes totals equal the
 * walk's. Then the pin table: every record belongs to a live process
 * (else "dead pin: run recover") and names a valid version whose nodes are
 * all allocated (they may be retired or held: the pin keeps them).
 * Root values that are not version records are raw blocks (the foundation
 * layer allows them) and are left to shm/check.c.
 *
 * shg__graph_mark_value() and shg__graph_mark_extra() mark, for the leak
 * sweep (shm/check.c), the graph reached from a root value, the type table
 * and its records, the pin table and every pinned or detached version with
 * its graph. A walk that fails marks the sweep failed (nothing is freed).
 *
 * BOUNDED READ SECTIONS. Neither a check nor a sweep pass walks a graph
 * inside a long read section: that would hold back every grace period for
 * the length of the walk and push writers past their retire budget. The
 * roots and pin records are read in one short section; a root's current
 * version is pinned there (shg__pin_take, the ordinary way: loaded from
 * the root inside a read section, see lib/version.c) and walked after the
 * section with no section at all: the pin keeps every node of that
 * version allocated (interval-based reclamation holds only that version's
 * nodes, not every grace period), and a version never changes after it is
 * published. A version pinned by another process cannot be pinned by us
 * safely (its owner may unpin between our load and our record store, and
 * no ordering then makes our record visible to a reclaimer), so it is
 * walked in read sections of at most WALK_CHUNK nodes, each of which
 * re-reads the record (acquire) when it begins and the last one when it
 * ends: while the record names the same version, seq and owner, the pin
 * held the version's nodes over the whole walk (a record that went away
 * and came back with the same version was pinned again from a version
 * still held), so the walk read only live nodes. If the record changed,
 * the walk is dropped: a check discards what that walk found (a transient
 * state), a sweep pass asks for a last walk of the retire lists
 * (shg__mark_lists_again; shm/check.c, mark_pass), which comes after the
 * acquire load that saw the change. If
 * the pin table is full, a root's version is walked inside the short
 * section as before (correct, not bounded).
 *
 * Everything here reads shared memory only, validates every offset through
 * shg__node()/shg__walk(), and is bounded on corrupt data (the walk keeps a
 * visited set). On a live segment, pins may come and go during a check and
 * give a transient problem: re-run to confirm.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph_internal.h"

/* ---- marking for the sweep ---------------------------------------------- */

static int mark_visit(void *arg, uint64_t off, const struct shg_node *n,
		      size_t size)
{
	struct shg__marker *mk = arg;

	(void)n;
	(void)size;
	shg__mark(mk, off);
	return 0;
}

/* The version record at @v, validated, or NULL. */
static const struct shg_version *version_at(struct shg_seg *seg, uint64_t v)
{
	const struct shg_node *n;
	int err;

	n = shg__node(seg, v, sizeof(struct shg_version), NULL, &err);
	if (!n || n->type != SHG_TYPE_VERSION)
		return NULL;
	return (const struct shg_version *)n;
}

/* ---- walks outside long read sections ------------------------------------ */

/* Nodes walked per read section when walking another process's pin. */
#define WALK_CHUNK 4096u

/* A walk of the version that pin record @pr names, in bounded sections. */
struct chunked {
	struct shg_seg *seg;
	_Atomic uint32_t *proc1p; /* the record's fields */
	_Atomic uint64_t *versionp, *seqp;
	uint32_t proc1; /* what they said when the record was read */
	uint64_t version, seq;
	int (*visit)(void *arg, uint64_t off, const struct shg_node *n,
		     size_t size);
	void *arg;
	unsigned n; /* nodes visited in this section */
	bool locked; /* inside our read section */
	bool gone; /* the record changed: the walk is void */
};

/* Acquire loads: a change seen orders the owner's earlier retires (and
 * its unpin's release) before what we do next. */
static bool chunk_same(struct chunked *c)
{
	return atomic_load_explicit(c->versionp, memory_order_acquire) ==
		       c->version &&
	       atomic_load_explicit(c->proc1p, memory_order_acquire) ==
		       c->proc1 &&
	       atomic_load_explicit(c->seqp, memory_order_relaxed) == c->seq;
}

/* Enter a section and re-validate. Return 0, or < 0 (not inside). */
static int chunk_enter(struct chunked *c)
{
	int err = shg_read_lock(c->seg);

	if (err)
		return err;
	c->locked = true;
	c->n = 0;
	if (!chunk_same(c)) {
		c->gone = true;
		return -ESTALE;
	}
	return 0;
}

/* Re-validate (everything read in this section was live) and leave. */
static void chunk_leave(struct chunked *c)
{
	if (!c->locked)
		return;
	if (!c->gone && !chunk_same(c))
		c->gone = true;
	shg_read_unlock(c->seg);
	c->locked = false;
}

static int chunk_visit(void *arg, uint64_t off, const struct shg_node *n,
		       size_t size)
{
	struct chunked *c = arg;
	int err;

	/* @n was validated in this section; the walk reads its children
	 * after we return: the record, still the same when the next
	 * section begins, kept it allocated in between. */
	if (++c->n >= WALK_CHUNK) {
		chunk_leave(c);
		if (c->gone)
			return -ESTALE;
		err = chunk_enter(c);
		if (err)
			return err;
	}
	return c->visit(c->arg, off, n, size);
}

static void chunk_init(struct chunked *c, struct shg_seg *seg,
		       struct shg_pinrec *pr, uint32_t proc1, uint64_t v,
		       uint64_t seq)
{
	memset(c, 0, sizeof(*c));
	c->seg = seg;
	c->proc1p = &pr->proc1;
	c->versionp = &pr->version;
	c->seqp = &pr->seq;
	c->proc1 = proc1;
	c->version = v;
	c->seq = seq;
}

/* ---- marking for the sweep ---------------------------------------------- */

/* A deferred marking walk: our pin, or another process's record. */
struct mark_job {
	struct shg_pin *pin; /* ours (NULL: @rec's) */
	struct shg_pinrec *rec;
	uint32_t proc1;
	uint64_t version, seq;
};

static void mark_job_run(struct shg__marker *mk, struct shg_seg *seg, void *ctx)
{
	struct mark_job *j = ctx;
	struct chunked c;
	int rc;

	if (j->pin) {
		/* Our pin keeps the version: no read section needed. */
		rc = shg__walk(seg, j->version, mark_visit, NULL, mk);
		(void)shg_unpin(j->pin);
		if (rc < 0)
			shg__mark_fail(mk, rc);
		free(j);
		return;
	}
	chunk_init(&c, seg, j->rec, j->proc1, j->version, j->seq);
	c.visit = mark_visit;
	c.arg = mk;
	rc = chunk_enter(&c);
	if (!rc)
		rc = shg__walk(seg, j->version, chunk_visit, NULL, &c);
	chunk_leave(&c);
	/* A record seen changed: its owner's retires are marked by the
	 * last walk of the lists it asks for; the partial walk marked extra. */
	if (c.gone)
		shg__mark_lists_again(mk);
	else if (rc < 0)
		shg__mark_fail(mk, rc);
	free(j);
}

/* Defer @j; if that cannot be done, walk now (inside the section). */
static void mark_defer(struct shg__marker *mk, struct shg_seg *seg,
		       struct mark_job *j)
{
	int rc;

	if (!shg__mark_later(mk, mark_job_run, j))
		return;
	if (j->pin)
		(void)shg_unpin(j->pin);
	rc = shg__walk(seg, j->version, mark_visit, NULL, mk);
	if (rc < 0)
		shg__mark_fail(mk, rc);
	free(j);
}

static struct shg_pin_table *pins_table(struct shg_seg *seg, uint64_t *off);

/* Inside the pass's short read section (shm/check.c, mark_all). */
void shg__graph_mark_value(struct shg__marker *mk, struct shg_seg *seg,
			   uint32_t root, uint64_t v)
{
	struct mark_job *j;
	uint64_t off;
	int rc;

	if (!version_at(seg, v))
		return; /* a raw block: marked alone by the caller */
	/* A pin needs the pin table: never create it here (a sweep or a
	 * check allocates nothing); without one, walk in the section. */
	j = pins_table(seg, &off) ? calloc(1, sizeof(*j)) : NULL;
	if (j && shg__pin_take(seg, root, v, false, &j->pin) == 0) {
		j->version = v;
		mark_defer(mk, seg, j);
		return;
	}
	free(j);
	/* No free pin record or no memory: walk inside the section. */
	rc = shg__walk(seg, v, mark_visit, NULL, mk);
	if (rc < 0)
		shg__mark_fail(mk, rc);
}

static struct shg_type_table *types_table(struct shg_seg *seg, uint64_t *off)
{
	*off = atomic_load_explicit(&seg->hdr->ext[SHG_EXT_TYPES],
				    memory_order_acquire);
	if (!*off || !shg__off_ok(seg, *off, sizeof(struct shg_type_table), 16))
		return NULL;
	return shg__at(seg, *off);
}

static struct shg_pin_table *pins_table(struct shg_seg *seg, uint64_t *off)
{
	*off = atomic_load_explicit(&seg->hdr->ext[SHG_EXT_PINS],
				    memory_order_acquire);
	if (!*off || !shg__off_ok(seg, *off, sizeof(struct shg_pin_table), 16))
		return NULL;
	return shg__at(seg, *off);
}

void shg__graph_mark_extra(struct shg__marker *mk, struct shg_seg *seg)
{
	struct shg_type_table *tt;
	struct shg_pin_table *pt;
	uint64_t off, v;
	uint32_t i, n;

	tt = types_table(seg, &off);
	if (tt) {
		shg__mark(mk, off);
		n = atomic_load_explicit(&tt->count, memory_order_acquire);
		/* Records above count may be listed by a dead registrant:
		 * mark every slot (extra marks are harmless). */
		(void)n;
		for (i = 0; i < SHG_MAX_TYPES; i++)
			shg__mark(mk,
				  atomic_load_explicit(&tt->rec[i],
						       memory_order_acquire));
	}
	pt = pins_table(seg, &off);
	if (!pt)
		return;
	shg__mark(mk, off);
	for (i = 0; i < SHG_MAX_PINS; i++) {
		struct shg_pinrec *pr = &pt->rec[i];
		struct mark_job *j;
		uint32_t p1;

		/* Acquire: a pin seen gone orders its owner's earlier
		 * retires before our later limbo walk. */
		v = atomic_load_explicit(&pr->version, memory_order_acquire);
		if (!v)
			continue;
		shg__mark(mk, v);
		if (!version_at(seg, v))
			continue;
		p1 = atomic_load_explicit(&pr->proc1, memory_order_acquire);
		j = calloc(1, sizeof(*j));
		if (!j) {
			shg__mark_fail(mk, -ENOMEM);
			continue;
		}
		j->rec = pr;
		j->proc1 = p1;
		j->version = v;
		j->seq = atomic_load_explicit(&pr->seq, memory_order_relaxed);
		mark_defer(mk, seg, j);
	}
}

/* ---- checker ------------------------------------------------------------ */

/* A root's current version, pinned by us. */
struct root_job {
	uint32_t root, graph;
	uint64_t version;
	struct shg_pin *pin;
};

/* A pin record's version, walked in bounded read sections. */
struct pin_job {
	struct shg_pinrec *rec;
	uint32_t idx, root, proc1;
	uint64_t version, seq;
};

struct gcheck {
	struct shg_seg *seg;
	shg_problem_fn fn;
	void *arg;
	struct shg_check_report *rep;
	struct shg__omap retired; /* retired entry -> confirmation token */
	struct shg__limbo_mark then, now; /* around the short section */
	struct shg__omap owner; /* node -> graph, over every current version */
	bool oom; /* owner could not grow: isolation checked in part */
	/* the walk in progress */
	uint32_t root; /* root slot */
	uint32_t graph; /* its graph id */
	bool current; /* a current version (else pinned) */
	uint64_t bytes, nodes, problems;
	struct chunked *chunk; /* walk in bounded sections (another's pin) */
	bool holding; /* hold problems back (gproblem_flush) */
	SHG_VEC(struct held_problem) held;
	SHG_VEC(struct root_job) roots; /* pinned in the short section */
	SHG_VEC(struct pin_job) pins; /* other pins, walked in chunks */
};

/* A problem held back until its walk is known valid (another's pin). */
struct held_problem {
	int code;
	char msg[256];
};

static void gproblem(struct gcheck *gc, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void gproblem(struct gcheck *gc, int code, const char *fmt, ...)
{
	struct held_problem hp = { .code = code };
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(hp.msg, sizeof(hp.msg), fmt, ap);
	va_end(ap);
	if (gc->holding) {
		if (shg__vec_push(&gc->held, hp))
			gc->oom = true;
		return;
	}
	gc->problems++;
	shg__problem(gc->fn, gc->arg, gc->rep, code, "%s", hp.msg);
}

/* Report the held-back problems (@keep) or drop them. */
static void gproblem_flush(struct gcheck *gc, bool keep)
{
	size_t i;

	gc->holding = false;
	for (i = 0; keep && i < gc->held.n; i++)
		gproblem(gc, gc->held.v[i].code, "%s", gc->held.v[i].msg);
	gc->held.n = 0;
}

#define GPROBLEM(gc, code, ...) gproblem((gc), (code), __VA_ARGS__)

static void retired_add(void *arg, uint64_t off, uint64_t token)
{
	struct shg__omap *m = arg;

	if (off)
		(void)shg__omap_add(m, off, token, NULL);
}

/* One reachable node: graph, isolation, retirement, totals. */
static int check_visit(void *arg, uint64_t off, const struct shg_node *n,
		       size_t size)
{
	struct gcheck *gc = arg;
	uint32_t g = n->graph;
	uint64_t prev, token;
	int rc;

	gc->bytes += size;
	gc->nodes++;
	if (g != gc->graph)
		GPROBLEM(gc, SHG_ECORRUPT,
			 "root %u: node %#llx belongs to graph %u, not %u",
			 gc->root, (unsigned long long)off, g, gc->graph);
	if (!gc->current)
		return 0; /* pinned versions may reach retired/held nodes */
	/* Retired and reachable at once: the entry was still in that life
	 * after the version was loaded (see shg__graph_check). */
	if (shg__omap_get(&gc->retired, off, &token) &&
	    shg__limbo_confirmed(&gc->then, &gc->now, token))
		GPROBLEM(gc, SHG_ECORRUPT,
			 "root %u: reachable node %#llx is retired", gc->root,
			 (unsigned long long)off);
	rc = shg__omap_add(&gc->owner, off, gc->graph, &prev);
	if (rc < 0)
		gc->oom = true;
	if (rc == 1 && prev != gc->graph) {
		GPROBLEM(gc, SHG_ECORRUPT,
			 "node %#llx reachable from graphs %u and %u",
			 (unsigned long long)off, (uint32_t)prev, gc->graph);
		return 1; /* its subtree was checked under the other graph */
	}
	return 0;
}

/* Walk version @v; @graph the graph it must belong to (0: its own). */
static void check_version(struct gcheck *gc, uint64_t v, uint32_t graph,
			  bool current, const char *what)
{
	const struct shg_version *ver = version_at(gc->seg, v);
	uint64_t vb, vn, seq, birth;
	int rc;

	if (!ver) {
		GPROBLEM(gc, SHG_ECORRUPT, "%s %u: version %#llx is invalid",
			 what, gc->root, (unsigned long long)v);
		return;
	}
	seq = ver->seq;
	birth = ver->h.birth;
	vb = ver->bytes;
	vn = ver->nodes;
	gc->graph = graph ? graph : ver->h.graph;
	gc->current = current;
	gc->bytes = 0;
	gc->nodes = 0;
	if (seq != birth)
		GPROBLEM(gc, SHG_ECORRUPT,
			 "%s %u: version seq %llu but birth %llu", what,
			 gc->root, (unsigned long long)seq,
			 (unsigned long long)birth);
	rc = gc->chunk ? shg__walk(gc->seg, v, chunk_visit, NULL, gc->chunk) :
			 shg__walk(gc->seg, v, check_visit, NULL, gc);
	if (rc < 0) {
		GPROBLEM(gc, rc,
			 "%s %u: graph walk failed (%s): a reachable offset "
			 "is invalid, free or untyped",
			 what, gc->root, shg_strerror(rc));
		return;
	}
	if (gc->rep) {
		gc->rep->graph_nodes += gc->nodes;
		gc->rep->graph_bytes += gc->bytes;
	}
	/* The walk counted the version record itself; the totals the txn
	 * keeps (base totals + its deltas) count the graph's blocks only. */
	gc->bytes -= shg_block_size(gc->seg, (struct shg_off){ v });
	gc->nodes--;
	if (vb != gc->bytes || vn != gc->nodes)
		GPROBLEM(gc, SHG_ECORRUPT,
			 "%s %u: version says %llu bytes / %llu nodes, its "
			 "graph has %llu / %llu",
			 what, gc->root, (unsigned long long)vb,
			 (unsigned long long)vn, (unsigned long long)gc->bytes,
			 (unsigned long long)gc->nodes);
}

static void check_roots(struct gcheck *gc)
{
	struct shg_seg *seg = gc->seg;
	const struct shg_version *ver;
	struct shg_pin *pin;
	uint64_t off;
	uint32_t r;

	for (r = 0; r < seg->max_roots; r++) {
		struct shg_rslot *rs = &seg->roots[r];
		uint32_t st =
			atomic_load_explicit(&rs->state, memory_order_acquire);
		uint64_t v =
			atomic_load_explicit(&rs->value, memory_order_acquire);
		uint64_t next = atomic_load_explicit(&rs->next_seq,
						     memory_order_relaxed);

		if (st == SHG_ROOT_FREE || !v)
			continue;
		ver = version_at(seg, v);
		if (!ver)
			continue; /* raw value: shm/check.c's business */
		gc->root = r;
		if (gc->rep)
			gc->rep->graphs++;
		if (ver->h.graph != rs->graph)
			GPROBLEM(gc, SHG_ECORRUPT,
				 "root %u: version of graph %u, root's graph "
				 "is %u",
				 r, ver->h.graph, rs->graph);
		if (ver->seq > next)
			GPROBLEM(gc, SHG_ECORRUPT,
				 "root %u: version seq %llu beyond next_seq "
				 "%llu",
				 r, (unsigned long long)ver->seq,
				 (unsigned long long)next);
		/* Pin it here, walk it after the section: the walk sees
		 * the version loaded now, as if it ran here. The retired
		 * set was read earlier in this section, so a block in it
		 * was unlinked by a commit this value follows; it is in this
		 * version only if a reclaimer freed it (its grace period
		 * over) and a commit reused it in between: a transient that
		 * a re-run does not repeat, as before pins. Pin table full,
		 * or no memory: walk now, inside the section. */
		pin = NULL;
		if (pins_table(seg, &off) &&
		    !shg__pin_take(seg, r, v, false, &pin) &&
		    !shg__vec_push(&gc->roots,
				   ((struct root_job){ r, rs->graph, v, pin })))
			continue;
		if (pin)
			(void)shg_unpin(pin);
		check_version(gc, v, rs->graph, true, "root");
	}
}

/* Walk the roots pinned by check_roots (outside any read section). */
static void walk_roots(struct gcheck *gc)
{
	size_t i;

	for (i = 0; i < gc->roots.n; i++) {
		struct root_job *j = &gc->roots.v[i];

		gc->root = j->root;
		check_version(gc, j->version, j->graph, true, "root");
		(void)shg_unpin(j->pin);
	}
}

static void check_pins(struct gcheck *gc)
{
	struct shg_seg *seg = gc->seg;
	struct shg_pin_table *pt;
	const struct shg_version *ver;
	uint64_t off, v, seq, tok;
	uint32_t i, p1;

	pt = pins_table(seg, &off);
	if (!pt)
		return;
	for (i = 0; i < SHG_MAX_PINS; i++) {
		struct shg_pinrec *pr = &pt->rec[i];

		p1 = atomic_load_explicit(&pr->proc1, memory_order_acquire);
		if (!p1)
			continue;
		if (p1 > seg->max_procs) {
			GPROBLEM(gc, SHG_ECORRUPT,
				 "pin %u: process slot %u out of range", i,
				 p1 - 1);
			continue;
		}
		tok = atomic_load_explicit(&seg->procs[p1 - 1].token,
					   memory_order_acquire);
		if (!tok || !shg__token_alive(seg, tok)) {
			GPROBLEM(gc, SHG_EDEADOWNER,
				 "pin %u: held by dead process slot %u: run "
				 "recover",
				 i, p1 - 1);
			continue;
		}
		v = atomic_load_explicit(&pr->version, memory_order_acquire);
		seq = atomic_load_explicit(&pr->seq, memory_order_relaxed);
		if (!v)
			continue; /* being set up or torn down */
		if (gc->rep)
			gc->rep->pins++;
		ver = version_at(seg, v);
		gc->root = pr->root;
		if (!ver) {
			GPROBLEM(gc, SHG_ECORRUPT,
				 "pin %u: version %#llx is invalid", i,
				 (unsigned long long)v);
			continue;
		}
		if (ver->seq != seq || ver->h.graph != pr->graph)
			GPROBLEM(gc, SHG_ECORRUPT,
				 "pin %u: says graph %u seq %llu, version is "
				 "graph %u seq %llu",
				 i, pr->graph, (unsigned long long)seq,
				 ver->h.graph, (unsigned long long)ver->seq);
		if (shg__vec_push(&gc->pins, ((struct pin_job){ pr, i, pr->root,
								p1, v, seq })))
			gc->oom = true;
	}
}

/*
 * Walk the versions check_pins found, each in bounded read sections that
 * re-validate its record; what a walk finds is reported only if the
 * record still named that version when its last section ended.
 */
static void walk_pins(struct gcheck *gc)
{
	struct chunked c;
	size_t i;

	for (i = 0; i < gc->pins.n; i++) {
		struct pin_job *j = &gc->pins.v[i];

		chunk_init(&c, gc->seg, j->rec, j->proc1, j->version, j->seq);
		c.visit = check_visit;
		c.arg = gc;
		gc->root = j->root;
		gc->holding = true;
		if (!chunk_enter(&c)) {
			gc->chunk = &c;
			check_version(gc, j->version, 0, false, "pinned root");
			gc->chunk = NULL;
		}
		chunk_leave(&c);
		gproblem_flush(gc, !c.gone);
	}
}

/**
 * shg__graph_check() - the graph layer's invariants (see the top of the
 * file). Called by shg_check() after the foundation checks. Reads the
 * roots and pins in one short read section and walks outside it (see
 * BOUNDED READ SECTIONS). Return: problems found, or a negative code.
 */
int shg__graph_check(struct shg_seg *seg, shg_problem_fn fn, void *arg,
		     struct shg_check_report *rep)
{
	struct gcheck gc = { .seg = seg, .fn = fn, .arg = arg, .rep = rep };
	uint64_t off;
	int err;

	/* The type table first: every node check below relies on it. */
	err = shg__types_check(seg, fn, arg, rep);
	if (err < 0)
		return err;
	if (!types_table(seg, &off) && !pins_table(seg, &off))
		return 0; /* no graph layer use in this segment */
	err = shg_read_lock(seg);
	if (err)
		return err;
	/* One short section: the retired set, then the pin records, then
	 * the roots, each current version pinned (see BOUNDED READ
	 * SECTIONS). The walks run after it. An entry of the retired set
	 * may be freed and its block reused by a commit before a root is
	 * loaded (its grace period began before this section); the marks
	 * before the set and after the roots tell which entries were still
	 * unfreed when the roots were loaded, and only those are reported
	 * when reachable (shg__limbo_confirmed). */
	shg__limbo_mark(seg, &gc.then);
	shg__limbo_walk_retired(seg, retired_add, &gc.retired);
	check_pins(&gc);
	check_roots(&gc);
	shg__limbo_mark(seg, &gc.now);
	shg_read_unlock(seg);
	walk_roots(&gc);
	walk_pins(&gc);
	if (gc.oom)
		GPROBLEM(&gc, -ENOMEM, "graph check: out of memory");
	shg__omap_free(&gc.retired);
	shg__omap_free(&gc.owner);
	free(gc.held.v);
	free(gc.roots.v);
	free(gc.pins.v);
	return (int)gc.problems;
}
