/* SPDX-License-Identifier: MIT */
/*
 * The graph layer's front to segments: shg_seg_create() and shg_seg_open()
 * hand shm/ the graph layer's operations (struct shg__upper_ops), so that
 * shm/ reaches this layer only through that table and never names it.
 */
#include "graph_internal.h"

/* A node's graph and birth, for the held list's interval checks. The
 * header is intact: the node is retired, not yet freed. */
static bool node_interval(struct shg_seg *seg, uint64_t off, uint32_t *graph,
			  uint64_t *birth)
{
	const struct shg_node *n = shg__node(seg, off, 0, NULL, NULL);

	if (!n)
		return false;
	*graph = n->graph;
	*birth = n->birth;
	return true;
}

const struct shg__upper_ops shg__graph_ops = {
	.rules = SHG_GRAPH_RULES,
	.root_drop = shg__graph_drop,
	.mark_value = shg__graph_mark_value,
	.mark_extra = shg__graph_mark_extra,
	.check = shg__graph_check,
	.release_proc = shg__pins_release_proc,
	.pinsnap_take = shg__pinsnap_take,
	.pins_gen = shg__pins_gen,
	.node_interval = node_interval,
};

int shg_seg_create(const char *name, const struct shg_opts *opts,
		   struct shg_seg **out)
{
	return shg__seg_create(name, opts, &shg__graph_ops, out);
}

int shg_seg_open(const char *name, const struct shg_opts *opts,
		 struct shg_seg **out)
{
	return shg__seg_open(name, opts, &shg__graph_ops, out);
}
