/* SPDX-License-Identifier: MIT */
/*
 * Interval snapshots (struct shg__pinsnap): a sorted array of pinned
 * (graph, sequence) keys that the reclaimer and the held list search to
 * decide whether a retired node is still reached by a pinned version. The
 * upper layer fills one from its pin records (shg__upper_ops.pinsnap_take);
 * everything here is a pure function of the array.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

void shg__pinsnap_free(struct shg__pinsnap *snap)
{
	free(snap->key);
	memset(snap, 0, sizeof(*snap));
}

/* First index with key >= @k. */
static size_t lower_bound(const struct shg__pinsnap *snap, uint64_t k)
{
	size_t lo = 0, hi = snap->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (snap->key[mid] < k)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

uint64_t shg__pinsnap_holder(const struct shg__pinsnap *snap, uint32_t graph,
			     uint64_t birth, uint64_t death)
{
	uint64_t lo, hi;
	size_t i;

	SHG_ASSERT(!snap->n || snap->key); /* process-local: our own array */
	if (!snap->n || death <= birth)
		return 0;
	lo = shg__pinsnap_key(graph, birth > SHG_IV_SEQ_MASK ? SHG_IV_SEQ_MASK :
							       birth);
	hi = ((uint64_t)graph << SHG_IV_SEQ_BITS) +
	     (death > SHG_IV_SEQ_MASK + 1 ? SHG_IV_SEQ_MASK + 1 : death);
	i = lower_bound(snap, lo);
	return i < snap->n && snap->key[i] < hi ? snap->key[i] : 0;
}

bool shg__pinsnap_holds(const struct shg__pinsnap *snap, uint32_t graph,
			uint64_t birth, uint64_t death)
{
	return shg__pinsnap_holder(snap, graph, birth, death) != 0;
}

bool shg__pinsnap_has(const struct shg__pinsnap *snap, uint64_t key)
{
	size_t i = lower_bound(snap, key);

	return i < snap->n && snap->key[i] == key;
}
