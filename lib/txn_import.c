/* SPDX-License-Identifier: MIT */
/*
 * Import: copy a subgraph (of any graph or version) into a txn. One walk
 * collects the nodes (stopping at root refs), each gets an owned copy,
 * then child offsets inside the copies are remapped through the old -> new
 * table: user types by field kind, map and vector nodes by their own remap
 * functions (shg__map_remap / shg__vec_remap). See txn.c for
 * transactions.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "graph_internal.h"

/* ---- import ------------------------------------------------------------ */

/*
 * Container remapping, provided by map.c and vec.c (always linked): rewrite
 * in @copy (a byte copy of the container node at @off) every child offset c
 * (as reported by the children function) with the value @map gives for it.
 */

struct import {
	struct shg_txn *txn;
	struct shg__omap memo; /* old -> copy */
	struct shg__offvec order; /* old offsets, in visit order */
};

/* Pass 1: copy every reachable node byte for byte into an owned block. */
static int import_visit(void *arg, uint64_t off, const struct shg_node *n,
			size_t size)
{
	struct import *im = arg;
	struct shg_txn *txn = im->txn;
	uint64_t copy;
	int err;

	if (n->type == SHG_TYPE_VERSION)
		return SHG_CORRUPT(); /* versions are not graph nodes */
	err = shg__txn_alloc(txn, n->type, size, &copy);
	if (err)
		return err;
	memcpy((uint8_t *)shg__at(txn->seg, copy) + sizeof(*n), n + 1,
	       size - sizeof(*n));
	err = shg__omap_put(&im->memo, off, copy);
	if (!err)
		err = shg__offvec_push(&im->order, off);
	if (err)
		shg__txn_drop(txn, copy);
	return err;
}

static int memo_map(void *arg, uint64_t child, uint64_t *out)
{
	struct import *im = arg;

	*out = 0;
	return shg__omap_get(&im->memo, child, out) || !child ? 0 :
								SHG_CORRUPT();
}

/* Pass 2: point the copy of @off at the copies of its children. */
static int import_fix(struct import *im, uint64_t off)
{
	struct shg_seg *seg = im->txn->seg;
	uint64_t copy = 0, *slot;
	const struct shg_type_rec *r;
	const struct shg_node *n;
	uint32_t i;
	int err;

	(void)shg__omap_get(&im->memo, off, &copy);
	n = shg__node_rec(seg, copy, 0, NULL, &r, &err);
	if (!n)
		return err;
	switch (n->type) {
	case SHG_TYPE_BYTES:
		return 0;
	case SHG_TYPE_MAP:
	case SHG_TYPE_MAP_LEAF:
		return shg__map_remap(seg, off, shg__at(seg, copy), memo_map,
				      im);
	case SHG_TYPE_VEC:
	case SHG_TYPE_VEC_NODE:
		return shg__vec_remap(seg, off, shg__at(seg, copy), memo_map,
				      im);
	default:
		break;
	}
	if (r->flags & SHG_TYPEF_BUILTIN)
		return SHG_CORRUPT();
	slot = (uint64_t *)((uint8_t *)shg__at(seg, copy) + sizeof(*n));
	for (i = 0; i < r->nfields; i++) {
		if (r->kind[i] != SHG_KIND_NODE && r->kind[i] != SHG_KIND_BYTES)
			continue;
		err = memo_map(im, slot[i], &slot[i]);
		if (err)
			return err;
	}
	return 0;
}

int shg_txn_import(struct shg_txn *txn, struct shg_off node,
		   struct shg_off *out)
{
	struct import im = { .txn = txn };
	size_t i;
	int err;

	if (!txn || !out)
		return -EINVAL;
	if (txn->err)
		return txn->err;
	out->v = 0;
	if (!node.v)
		return 0;
	txn->walk_owned = true;
	err = shg__walk(txn->seg, node.v, import_visit, NULL, &im);
	SHG_CRASH_POINT("import.walked");
	for (i = 0; !err && i < im.order.n; i++)
		err = import_fix(&im, im.order.v[i]);
	if (!err) {
		(void)shg__omap_get(&im.memo, node.v, &out->v);
	} else {
		for (i = 0; i < im.memo.cap; i++)
			if (im.memo.slot[2 * i])
				shg__txn_drop(txn, im.memo.slot[2 * i + 1]);
	}
	shg__omap_free(&im.memo);
	free(im.order.v);
	return err;
}
