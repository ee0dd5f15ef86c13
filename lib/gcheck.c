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
 * Everything here reads shared memory only, validates every offset through
 * shg__node()/shg__walk(), and is bounded on corrupt data (the walk keeps a
 * visited set). On a live segment, pins may come and go during a check and
 * give a transient problem: re-run to confirm.
 */
#include <errno.h>
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

void shg__graph_mark_value(struct shg__marker *mk, struct shg_seg *seg,
			   uint64_t v)
{
	int rc;

	if (!version_at(seg, v))
		return; /* a raw block: marked alone by the caller */
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
		/* Acquire: a pin seen gone orders its owner's earlier
		 * retires before our later limbo walk. */
		v = atomic_load_explicit(&pt->rec[i].version,
					 memory_order_acquire);
		if (!v)
			continue;
		shg__mark(mk, v);
		shg__graph_mark_value(mk, seg, v);
	}
}

/* ---- checker ------------------------------------------------------------ */

struct gcheck {
	struct shg_seg *seg;
	shg_problem_fn fn;
	void *arg;
	struct shg_check_report *rep;
	struct shg__offset_set retired; /* retired/held entries */
	struct shg__omap owner; /* node -> graph, over every current version */
	bool oom; /* owner could not grow: isolation checked in part */
	/* the walk in progress */
	uint32_t root; /* root slot */
	uint32_t graph; /* its graph id */
	bool current; /* a current version (else pinned) */
	uint64_t bytes, nodes, problems;
};

#define GPROBLEM(gc, code, ...)                                      \
	do {                                                         \
		(gc)->problems++;                                    \
		shg__problem((gc)->fn, (gc)->arg, (gc)->rep, (code), \
			     __VA_ARGS__);                           \
	} while (0)

static void retired_add(void *arg, uint64_t off)
{
	struct shg__offset_set *s = arg;

	if (off)
		(void)shg__oset_add(s, off);
}

/* One reachable node: graph, isolation, retirement, totals. */
static int check_visit(void *arg, uint64_t off, const struct shg_node *n,
		       size_t size)
{
	struct gcheck *gc = arg;
	uint32_t g = n->graph;
	uint64_t prev;
	int rc;

	gc->bytes += size;
	gc->nodes++;
	if (g != gc->graph)
		GPROBLEM(gc, SHG_ECORRUPT,
			 "root %u: node %#llx belongs to graph %u, not %u",
			 gc->root, (unsigned long long)off, g, gc->graph);
	if (!gc->current)
		return 0; /* pinned versions may reach retired/held nodes */
	if (shg__oset_has(&gc->retired, off))
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
	rc = shg__walk(gc->seg, v, check_visit, NULL, gc);
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
		check_version(gc, v, rs->graph, true, "root");
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
		check_version(gc, v, 0, false, "pinned root");
	}
}

/**
 * shg__graph_check() - the graph layer's invariants (see the top of the
 * file). Called by shg_check() after the foundation checks. Runs its walks
 * inside a read section. Return: problems found, or a negative code.
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
	shg__limbo_walk(seg, retired_add, &gc.retired);
	check_roots(&gc);
	check_pins(&gc);
	shg_read_unlock(seg);
	if (gc.oom)
		GPROBLEM(&gc, -ENOMEM, "graph check: out of memory");
	shg__oset_free(&gc.retired);
	shg__omap_free(&gc.owner);
	return (int)gc.problems;
}
