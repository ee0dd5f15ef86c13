/* SPDX-License-Identifier: MIT */
/*
 * Generic traversal of graph nodes through the type table, shared by the
 * checker, import, the sweep and dump: the children of one node
 * (shg__node_children), and a full walk from a start node (shg__walk).
 *
 * The walk is an iterative depth-first search with an explicit stack on
 * the process heap and a visited set, so it handles deep graphs without
 * recursion, visits a shared node once, and terminates on cycles, which a
 * well-formed graph never has but corrupt data may. Every node is validated
 * (shg__node_rec) before its fields are read; an invalid offset ends the
 * walk with SHG_EBADOFF or SHG_ECORRUPT.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "graph_internal.h"

/* ---- children of one node ------------------------------------------------ */

/* Fields of a user node @n (validated, block of @size bytes). */
static int user_children(const struct shg_node *n, size_t size,
			 const struct shg_type_rec *r,
			 void (*fn)(void *arg, uint64_t child),
			 void (*rootfn)(void *arg, uint64_t rootref), void *arg)
{
	const uint64_t *slot = (const uint64_t *)(n + 1);
	uint32_t i, nf = r->nfields;
	uint64_t v;

	if (nf > SHG_MAX_FIELDS || shg__user_node_size(nf) > size)
		return SHG_CORRUPT();
	for (i = 0; i < nf; i++) {
		v = slot[i];
		if (!v)
			continue;
		switch (r->kind[i]) {
		case SHG_KIND_NODE:
		case SHG_KIND_BYTES:
			fn(arg, v);
			break;
		case SHG_KIND_ROOT:
			if (rootfn)
				rootfn(arg, v);
			break;
		default:
			break;
		}
	}
	return 0;
}

/* Children of the validated node @n at @off (type record @r). */
static int children_of(struct shg_seg *seg, uint64_t off,
		       const struct shg_node *n, size_t size,
		       const struct shg_type_rec *r,
		       void (*fn)(void *arg, uint64_t child),
		       void (*rootfn)(void *arg, uint64_t rootref), void *arg)
{
	const struct shg_version *ver;
	const struct shg_bytes *b;
	uint64_t v;

	if (!(r->flags & SHG_TYPEF_BUILTIN))
		return user_children(n, size, r, fn, rootfn, arg);
	switch (r->id) {
	case SHG_TYPE_VERSION:
		ver = (const struct shg_version *)n;
		v = ver->node;
		if (v)
			fn(arg, v);
		return 0;
	case SHG_TYPE_BYTES:
		b = (const struct shg_bytes *)n;
		if (b->len > size - sizeof(struct shg_bytes))
			return SHG_CORRUPT();
		return 0;
	case SHG_TYPE_MAP:
	case SHG_TYPE_MAP_LEAF:
		return shg__map_children(seg, off, fn, rootfn, arg);
	case SHG_TYPE_VEC:
	case SHG_TYPE_VEC_NODE:
		return shg__vec_children(seg, off, fn, rootfn, arg);
	default:
		return SHG_CORRUPT();
	}
}

int shg__node_children(struct shg_seg *seg, uint64_t off,
		       void (*fn)(void *arg, uint64_t child),
		       void (*rootfn)(void *arg, uint64_t rootref), void *arg)
{
	const struct shg_type_rec *r;
	const struct shg_node *n;
	size_t size;
	int err;

	n = shg__node_rec(seg, off, 0, &size, &r, &err);
	if (!n)
		return err;
	return children_of(seg, off, n, size, r, fn, rootfn, arg);
}

/* ---- full walk ------------------------------------------------------------ */

struct walk {
	struct shg__offset_set seen; /* every offset ever pushed */
	struct shg__offvec stack; /* offsets still to visit */
	int err; /* first allocation failure */
	void (*rootfn)(void *arg, uint64_t rootref); /* caller's */
	void *arg; /* caller's argument */
};

static void walk_root(void *arg, uint64_t rootref)
{
	struct walk *w = arg;

	w->rootfn(w->arg, rootref);
}

static void walk_push(void *arg, uint64_t child)
{
	struct walk *w = arg;
	int err;

	if (w->err || shg__oset_has(&w->seen, child))
		return;
	err = shg__oset_add(&w->seen, child);
	if (!err)
		err = shg__offvec_push(&w->stack, child);
	if (err)
		w->err = err;
}

int shg__walk(struct shg_seg *seg, uint64_t start,
	      int (*visit)(void *arg, uint64_t off, const struct shg_node *n,
			   size_t size),
	      void (*rootfn)(void *arg, uint64_t rootref), void *arg)
{
	const struct shg_type_rec *r;
	const struct shg_node *n;
	struct walk w;
	uint64_t off;
	size_t size;
	int rc = 0;

	if (!start)
		return 0;
	memset(&w, 0, sizeof(w));
	w.rootfn = rootfn;
	w.arg = arg;
	walk_push(&w, start);
	while (!w.err && w.stack.n) {
		off = w.stack.v[--w.stack.n];
		n = shg__node_rec(seg, off, 0, &size, &r, &rc);
		if (!n)
			break;
		rc = visit ? visit(arg, off, n, size) : 0;
		if (rc < 0)
			break;
		if (rc > 0) {
			rc = 0;
			continue;
		}
		rc = children_of(seg, off, n, size, r, walk_push,
				 rootfn ? walk_root : NULL, &w);
		if (rc)
			break;
	}
	if (!rc)
		rc = w.err;
	shg__oset_free(&w.seen);
	free(w.stack.v);
	return rc;
}
