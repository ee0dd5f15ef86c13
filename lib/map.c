/* SPDX-License-Identifier: MIT */
/*
 * Persistent hash map: a CHAMP-style hash array mapped trie (Steindorfer &
 * Vinju, OOPSLA 2015) with leaf buckets, whose nodes live in the segment.
 * Lookups walk at most 14 nodes without writing anything; a txn updates it
 * by path copying (each node copied once per txn, later edits in place).
 *
 * HOW IT WORKS
 *
 * A key's 64-bit hash is consumed 5 bits per level: level d (0..12) uses
 * bits [5d, 5d+5) (level 12 has only 4 bits left). A bitmap node keeps two
 * 32-bit maps: @datamap marks positions holding an entry inline, @nodemap
 * positions holding a child subtree; the two never overlap. Entries come
 * first in the slot array, ordered by position, then the child offsets,
 * ordered by position. A leaf (type SHG_TYPE_MAP_LEAF) is a plain array
 * of entries sorted by key (u64 ascending, bytes lexicographic).
 *
 * Canonical form: a subtree other than the root that holds a single entry
 * is that entry, inline in its parent (CHAMP); one that holds 2 or more is
 * a leaf if it fits one, else a bitmap node. A leaf fits up to
 * MAP_LEAF_MAX (64) entries in a map with u64 keys, and any number at
 * depth 13, where two keys have equal 64-bit hashes (leaf_max(); bytes
 * keys have leaves at depth 13 only, so their subtrees of 2 are chains
 * down to where the hashes differ). Inserting into a full leaf splits it
 * into the subtree its entries make; a delete that leaves a bitmap node
 * with few enough entries gathers them into a leaf, and one that leaves a
 * subtree with one entry inlines it, bottom-up. So the shape depends only
 * on the set of keys, never on the order of operations: equal maps have
 * equal shapes, and iteration (depth first, a node's entries before its
 * children, positions ascending; a leaf in key order) visits equal maps
 * in the same order.
 *
 * Why leaves: with 32-way bitmap nodes a map of 32^k keys gets a partial
 * extra level of small nodes (a 1M-key map: 4.65 nodes a lookup, the last
 * two usually cache misses). A leaf of up to 64 keys ends the walk one or
 * two levels earlier (1M keys: 3 bitmap levels and leaves of ~30 entries,
 * one miss a lookup, found by binary search), a path copy has fewer nodes
 * to copy and retire, and the map has fewer node headers (19 bytes an
 * entry instead of 30 at 1M keys).
 *
 * Every node records the number of entries in its subtree (@count), its
 * key and value kinds, flags and its depth. Readers check each node's
 * kinds/flags/depth word against the root's with one comparison, which
 * also bounds any walk over corrupt data (depth strictly increases).
 *
 * Hash: a 64-bit finalizer (u64 keys) or a multiply-mix hash (bytes keys),
 * both seeded from the segment's uuid so that all processes agree and the
 * layout of one segment says nothing about another's. Consequence: map
 * nodes cannot be copied verbatim into another segment; a portable export
 * must re-insert the entries. Bytes keys are stored as bytes nodes whose
 * @hash field caches the low 32 bits of the map hash (compared before the
 * length and the data).
 *
 * Files: map_internal.h (layout, hashing, validation, the lookup walk),
 * map_read.c (lookups, iteration, traversal hooks), this file (edits).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "map_internal.h"

/* ---- write side ------------------------------------------------------------ */

/* One map edit: the key, its hash, the value word. */
struct mop {
	struct shg_txn *txn;
	struct shg_seg *seg;
	uint32_t word; /* root's kinds/flags word (depth 0) */
	unsigned kk, vk, flags;
	uint64_t h; /* key hash */
	uint64_t key; /* U64 key, or bytes key node once created */
	const void *kp; /* bytes key */
	size_t klen;
	bool knode; /* bytes key node created for this op */
	bool mut; /* map_mut: make the present value node mutable */
	uint64_t val; /* value word (map_mut: the mutable node) */
};

/* Whether entry key word @ek is the op's key (1/0/negative). */
static inline int op_key_eq(struct mop *op, uint64_t ek)
{
	if (op->kk == SHG_KIND_U64)
		return ek == op->key;
	if (op->knode)
		return ek == op->key;
	return bkey_eq(op->seg, ek, op->kp, op->klen, op->h);
}

/* Full hash of an entry's key word (recomputed for bytes keys). */
static int entry_hash(struct mop *op, uint64_t ek, uint64_t *h)
{
	const struct shg_bytes *b;
	int err = 0;

	if (op->kk == SHG_KIND_U64) {
		*h = map_hash_u64(op->seg, op->flags, ek);
		return 0;
	}
	if (ek == 0) {
		*h = map_hash_bytes(op->seg, op->flags, shg__map_empty, 0);
		return 0;
	}
	b = bytes_at(op->seg, ek, &err);
	if (!b)
		return err;
	*h = map_hash_bytes(op->seg, op->flags, b->data, b->len);
	return 0;
}

/* Order of keys in a leaf: u64 ascending, bytes lexicographic. */
static int key_cmp(struct mop *op, uint64_t a, uint64_t b, int *cmp)
{
	const struct shg_bytes *ba, *bb;
	size_t la = 0, lb = 0, m;
	int err = 0, r;

	if (op->kk == SHG_KIND_U64) {
		*cmp = a < b ? -1 : a > b;
		return 0;
	}
	ba = a ? bytes_at(op->seg, a, &err) : NULL;
	bb = b ? bytes_at(op->seg, b, &err) : NULL;
	if (err)
		return err;
	la = ba ? ba->len : 0;
	lb = bb ? bb->len : 0;
	m = la < lb ? la : lb;
	r = m ? memcmp(ba->data, bb->data, m) : 0;
	*cmp = r ? r : (la < lb ? -1 : la > lb);
	return 0;
}

/* Create the bytes key node (once) when the key is inserted. */
static int op_key_word(struct mop *op, uint64_t *out)
{
	struct shg_bytes *b;
	uint64_t off;
	int err;

	if (op->kk == SHG_KIND_U64 || op->knode) {
		*out = op->key;
		return 0;
	}
	if (op->klen == 0) {
		op->key = 0;
		op->knode = true;
		*out = 0;
		return 0;
	}
	err = shg__txn_bytes(op->txn, op->kp, op->klen, &off);
	if (err)
		return err;
	b = shg__at(op->seg, off);
	b->hash = (uint32_t)op->h; /* the map's hash (test flag included) */
	op->key = off;
	op->knode = true;
	*out = off;
	return 0;
}

/* Entry word @w of @kind leaves the map: its bytes or node go too. */
static void drop_word(struct mop *op, unsigned kind, uint64_t w)
{
	if (kind == SHG_KIND_BYTES && w != 0)
		shg__txn_drop(op->txn, w);
	else if (kind == SHG_KIND_NODE)
		(void)shg__txn_unlink_value(op->txn, w); /* poisons on error */
}

/* Allocate an owned map node (a leaf if @leaf) at @depth, @size bytes. */
static int node_alloc(struct mop *op, unsigned depth, size_t size, bool leaf,
		      struct shg_map_node **out, uint64_t *off)
{
	struct shg_map_node *m;
	int err;

	err = shg__txn_alloc(op->txn, leaf ? SHG_TYPE_MAP_LEAF : SHG_TYPE_MAP,
			     size, off);
	if (err)
		return err;
	m = shg__at(op->seg, *off);
	m->keykind = (uint8_t)op->kk;
	m->valkind = (uint8_t)op->vk;
	m->flags = (uint8_t)op->flags;
	m->depth = (uint8_t)depth;
	*out = m;
	return 0;
}

/*
 * Make the node at *@pslot (validated in @v) mutable with room for @need
 * bytes; stores the (possibly new) offset at *@pslot.
 */
static int node_mut(struct mop *op, uint64_t *pslot, const struct mview *v,
		    size_t need, struct shg_map_node **out)
{
	uint64_t noff;
	int err;

	/* Owned and no bigger: its block holds its layout already (an owned
	 * node's block was allocated for at least its current layout). */
	if (need <= v->size && shg__txn_owns_node(op->txn, *pslot, &v->n->h)) {
		*out = shg__at(op->seg, *pslot);
		return 0;
	}
	err = shg__txn_copy_hdr(op->txn, *pslot, &v->n->h,
				v->size > need ? v->size : need, &noff);
	if (err)
		return err;
	*pslot = noff;
	*out = shg__at(op->seg, noff);
	return 0;
}

/* Prefetch the child in slot word @idx of the validated node @v. */
static inline void child_prefetch(struct mop *op, const struct mview *v,
				  unsigned idx)
{
	struct mbound b;
	uint64_t c = v->n->slot[idx];

	mbound_init(op->seg, &b);
	if (mb_hdr_ok(&b, c))
		(void)map_prefetch(op->seg, c, v->n->count);
}

/*
 * Rewrite the slots of @m (maps @odm/@onm) for the maps @ndm/@nnm: an
 * entry position in both keeps its entry, likewise children; position @bit
 * takes the entry {@k, @v} if it is new in @ndm, or @child if new in @nnm.
 * The block must have room for the new layout.
 */
static void node_relayout(struct shg_map_node *m, uint32_t ndm, uint32_t nnm,
			  uint32_t bit, uint64_t k, uint64_t v, uint64_t child)
{
	uint32_t odm = m->datamap, onm = m->nodemap, rest, b;
	unsigned ond = pc32(odm), i = 0, o;
	uint64_t tmp[96];

	for (rest = ndm; rest; rest &= rest - 1) {
		b = rest & -rest;
		if (b == bit && !(odm & bit)) {
			tmp[i++] = k;
			tmp[i++] = v;
			continue;
		}
		o = pc32(odm & (b - 1));
		tmp[i++] = m->slot[2 * o];
		tmp[i++] = m->slot[2 * o + 1];
	}
	for (rest = nnm; rest; rest &= rest - 1) {
		b = rest & -rest;
		if (b == bit && !(onm & bit)) {
			tmp[i++] = child;
			continue;
		}
		o = pc32(onm & (b - 1));
		tmp[i++] = m->slot[2 * ond + o];
	}
	memcpy(m->slot, tmp, i * sizeof(uint64_t));
	m->datamap = ndm;
	m->nodemap = nnm;
}

/*
 * Drop the map nodes of the subtree at @off (depth @depth), not the keys
 * and values of its entries (they moved elsewhere): published nodes
 * become garbage, owned ones are freed. Depth bounds the recursion.
 */
static void drop_tree(struct mop *op, uint64_t off, unsigned depth)
{
	struct mview v;
	unsigned j;

	if (depth > MAP_COLL_DEPTH ||
	    map_view(op->seg, off, with_depth(op->word, depth), &v))
		return;
	for (j = 0; j < v.nc; j++)
		drop_tree(op, v.n->slot[2 * v.nd + j], depth + 1);
	shg__txn_drop(op->txn, off);
}

/*
 * Build the subtree at @depth holding two entries with different keys
 * (hashes @h1, @h2): a leaf where leaves of two are allowed, else a chain
 * down to where the hashes differ (bytes keys), or a leaf at depth 13.
 */
static int make_pair(struct mop *op, unsigned depth, uint64_t k1, uint64_t v1,
		     uint64_t h1, uint64_t k2, uint64_t v2, uint64_t h2,
		     uint64_t *out)
{
	struct shg_map_node *m;
	uint32_t b1, b2;
	uint64_t child;
	int err, cmp;

	if (leaf_max(op->kk, depth) >= 2) {
		err = key_cmp(op, k1, k2, &cmp);
		if (err)
			return err;
		err = node_alloc(op, depth, MAP_HDR + 32, true, &m, out);
		if (err)
			return err;
		m->count = 2;
		m->slot[cmp < 0 ? 0 : 2] = k1;
		m->slot[cmp < 0 ? 1 : 3] = v1;
		m->slot[cmp < 0 ? 2 : 0] = k2;
		m->slot[cmp < 0 ? 3 : 1] = v2;
		return 0;
	}
	b1 = 1u << ((h1 >> (MAP_BITS * depth)) & 31);
	b2 = 1u << ((h2 >> (MAP_BITS * depth)) & 31);
	if (b1 == b2) {
		err = make_pair(op, depth + 1, k1, v1, h1, k2, v2, h2, &child);
		if (err)
			return err;
		err = node_alloc(op, depth, MAP_HDR + 8, false, &m, out);
		if (err) {
			drop_tree(op, child, depth + 1);
			return err;
		}
		m->nodemap = b1;
		m->count = 2;
		m->slot[0] = child;
		return 0;
	}
	err = node_alloc(op, depth, MAP_HDR + 32, false, &m, out);
	if (err)
		return err;
	m->datamap = b1 | b2;
	m->count = 2;
	m->slot[b1 < b2 ? 0 : 2] = k1;
	m->slot[b1 < b2 ? 1 : 3] = v1;
	m->slot[b1 < b2 ? 2 : 0] = k2;
	m->slot[b1 < b2 ? 3 : 1] = v2;
	return 0;
}

/* An entry being rebuilt into a subtree: key, value, hash. */
struct ment {
	uint64_t k, v, h;
};

/*
 * Build the canonical subtree at @depth (>= 1) of the @n >= 2 entries @e,
 * in key order with distinct keys: a leaf if @n fits one, else a bitmap
 * node whose positions hold single entries inline and subtrees of two or
 * more built the same way one level down. U64 keys only (bytes keys are
 * never rebuilt). On failure nothing built is left.
 */
static int build_sub(struct mop *op, const struct ment *e, unsigned n,
		     unsigned depth, uint64_t *out)
{
	struct ment g[MAP_LEAF_MAX + 1];
	uint64_t kid[32], c;
	unsigned cnt[32] = { 0 }, start[32], p, i, nd = 0, nc = 0, at;
	struct shg_map_node *m;
	uint32_t dm = 0, nm = 0;
	int err = 0;

	if (n <= leaf_max(op->kk, depth)) {
		err = node_alloc(op, depth, MAP_HDR + 16ull * n, true, &m, out);
		if (err)
			return err;
		for (i = 0; i < n; i++) {
			m->slot[2 * i] = e[i].k;
			m->slot[2 * i + 1] = e[i].v;
		}
		m->count = n;
		return 0;
	}
	if (n > MAP_LEAF_MAX + 1 || depth >= MAP_COLL_DEPTH)
		return SHG_CORRUPT(); /* not reachable from a valid map */
	/* Stable counting sort by position: key order within each. */
	for (i = 0; i < n; i++)
		cnt[(e[i].h >> (MAP_BITS * depth)) & 31]++;
	for (p = 0, at = 0; p < 32; p++) {
		start[p] = at;
		at += cnt[p];
		if (cnt[p] == 1) {
			dm |= 1u << p;
			nd++;
		} else if (cnt[p] > 1) {
			nm |= 1u << p;
		}
	}
	for (i = 0; i < n; i++)
		g[start[(e[i].h >> (MAP_BITS * depth)) & 31]++] = e[i];
	for (p = 0, at = 0; p < 32 && !err; at += cnt[p], p++) {
		if (cnt[p] > 1) {
			err = build_sub(op, g + at, cnt[p], depth + 1, &c);
			if (!err)
				kid[nc++] = c;
		}
	}
	if (!err)
		err = node_alloc(op, depth, MAP_HDR + 16ull * nd + 8ull * nc,
				 false, &m, out);
	if (err) {
		while (nc)
			drop_tree(op, kid[--nc], depth + 1);
		return err;
	}
	m->datamap = dm;
	m->nodemap = nm;
	m->count = n;
	for (p = 0, at = 0, i = 0; p < 32; at += cnt[p], p++) {
		if (cnt[p] == 1) {
			m->slot[2 * i] = g[at].k;
			m->slot[2 * i + 1] = g[at].v;
			i++;
		}
	}
	memcpy(&m->slot[2 * nd], kid, nc * sizeof(kid[0]));
	return 0;
}

/*
 * The leaf's @n entries plus the new one {@k, op value} at index @at
 * exceed a leaf: replace the leaf by the subtree they make (U64 keys).
 */
static int leaf_split(struct mop *op, uint64_t *pslot, const struct mview *v,
		      unsigned depth, unsigned at, uint64_t k)
{
	struct ment e[MAP_LEAF_MAX + 1];
	unsigned n = v->nd + 1, i, j;
	uint64_t off;
	int err;

	if (op->kk != SHG_KIND_U64 || v->nd > MAP_LEAF_MAX)
		return SHG_CORRUPT();
	for (i = 0, j = 0; i < n; i++) {
		if (i == at) {
			e[i] = (struct ment){ k, op->val, op->h };
			continue;
		}
		e[i].k = v->n->slot[2 * j];
		e[i].v = v->n->slot[2 * j + 1];
		e[i].h = map_hash_u64(op->seg, op->flags, e[i].k);
		j++;
	}
	err = build_sub(op, e, n, depth, &off);
	if (err)
		return err;
	shg__txn_drop(op->txn, *pslot); /* its entries moved */
	*pslot = off;
	return 0;
}

/* Put into a leaf: overwrite, insert in key order, or split it. */
static int leaf_put(struct mop *op, uint64_t *pslot, const struct mview *v,
		    unsigned depth, int *added)
{
	struct shg_map_node *m;
	unsigned i, at = v->nd;
	uint64_t k, old;
	bool hit = false;
	int err, r, cmp;

	/* the parent asked for 512 bytes (not a collision leaf's all) */
	for (i = 512; i < v->size && i < MAP_LEAF_BYTES; i += 64)
		__builtin_prefetch((const uint8_t *)v->n + i);
	if (op->kk == SHG_KIND_U64) {
		at = leaf_lower_u64(v->n, v->nd, op->key);
		hit = at < v->nd && v->n->slot[2 * at] == op->key;
	} else {
		for (i = 0; i < v->nd && !hit; i++) {
			r = op_key_eq(op, v->n->slot[2 * i]);
			if (r < 0)
				return r;
			if (r) {
				at = i;
				hit = true;
			}
		}
	}
	if (hit) {
		err = node_mut(op, pslot, v, v->size, &m);
		if (err)
			return err;
		if (op->mut)
			return shg__txn_slot_mut(op->txn, &m->slot[2 * at + 1],
						 &op->val);
		old = m->slot[2 * at + 1];
		m->slot[2 * at + 1] = op->val;
		drop_word(op, op->vk, old);
		*added = 0;
		return 0;
	}
	err = op_key_word(op, &k);
	if (err)
		return err;
	if (op->kk != SHG_KIND_U64) { /* bytes: the insertion point */
		for (at = 0; at < v->nd; at++) {
			err = key_cmp(op, k, v->n->slot[2 * at], &cmp);
			if (err)
				return err;
			if (cmp < 0)
				break;
		}
	}
	if (v->nd + 1 > leaf_max(op->kk, depth)) {
		err = leaf_split(op, pslot, v, depth, at, k);
	} else {
		err = node_mut(op, pslot, v, v->size + 16, &m);
		if (!err) {
			memmove(&m->slot[2 * at + 2], &m->slot[2 * at],
				(size_t)(v->nd - at) * 16);
			m->slot[2 * at] = k;
			m->slot[2 * at + 1] = op->val;
			m->count = v->nd + 1;
		}
	}
	if (!err)
		*added = 1;
	return err;
}

/* Recursive put below *@pslot at @depth; *@added = 1 if the key is new. */
static int put_rec(struct mop *op, uint64_t *pslot, unsigned depth, int *added)
{
	struct shg_map_node *m;
	struct mview v;
	uint32_t bit, dm, nm;
	uint64_t ek, ev, eh, k, sub, old;
	int err, r;

	err = map_view(op->seg, *pslot, with_depth(op->word, depth), &v);
	if (err)
		return err;
	if (v.n->h.type == SHG_TYPE_MAP_LEAF)
		return leaf_put(op, pslot, &v, depth, added);
	bit = 1u << ((op->h >> (MAP_BITS * depth)) & 31);
	dm = v.n->datamap;
	nm = v.n->nodemap;
	if (dm & bit) {
		unsigned i = pc32(dm & (bit - 1));

		ek = v.n->slot[2 * i];
		ev = v.n->slot[2 * i + 1];
		r = op_key_eq(op, ek);
		if (r < 0)
			return r;
		if (r) { /* overwrite */
			err = node_mut(op, pslot, &v, v.size, &m);
			if (err)
				return err;
			if (op->mut)
				return shg__txn_slot_mut(
					op->txn, &m->slot[2 * i + 1], &op->val);
			m->slot[2 * i + 1] = op->val;
			drop_word(op, op->vk, ev);
			*added = 0;
			return 0;
		}
		/* push the resident entry down next to the new one; the node
		 * is made mutable first so that a failure leaves no subtree
		 * to undo (the copy is equivalent) */
		err = entry_hash(op, ek, &eh);
		if (!err)
			err = op_key_word(op, &k);
		if (!err)
			err = node_mut(op, pslot, &v, v.size, &m);
		if (!err)
			err = make_pair(op, depth + 1, ek, ev, eh, k, op->val,
					op->h, &sub);
		if (err)
			return err;
		node_relayout(m, dm & ~bit, nm | bit, bit, 0, 0, sub);
		m->count++;
		*added = 1;
		return 0;
	}
	if (nm & bit) {
		unsigned j = pc32(nm & (bit - 1));

		/* the child's lines load while this node is copied */
		child_prefetch(op, &v, v.nd + j);
		err = node_mut(op, pslot, &v, v.size, &m);
		if (err)
			return err;
		err = put_rec(op, &m->slot[2 * v.nd + j], depth + 1, added);
		if (!err)
			m->count += (uint32_t)*added;
		return err;
	}
	err = op_key_word(op, &k);
	if (err)
		return err;
	err = node_mut(op, pslot, &v, v.size + 16, &m);
	if (err)
		return err;
	old = m->count;
	node_relayout(m, dm | bit, nm, bit, k, op->val, 0);
	m->count = (uint32_t)old + 1;
	*added = 1;
	return 0;
}

/*
 * A subtree of count 2 loses the op's key: return the other entry and drop
 * every node of the subtree (a chain ending in a node with two entries)
 * and the removed entry's bytes.
 */
static int collapse_take(struct mop *op, uint64_t off, unsigned depth,
			 uint64_t *k, uint64_t *val)
{
	struct mview v;
	unsigned i;
	int err, r;

	for (; depth <= MAP_COLL_DEPTH; depth++) {
		err = map_view(op->seg, off, with_depth(op->word, depth), &v);
		if (err)
			return err;
		if (v.n->count != 2)
			return SHG_CORRUPT();
		if (v.nd == 0 && v.nc == 1) {
			uint64_t next = v.n->slot[0];

			shg__txn_drop(op->txn, off); /* read before: may free */
			off = next;
			continue;
		}
		if (v.nd != 2 || v.nc != 0)
			return SHG_CORRUPT();
		r = op_key_eq(op, v.n->slot[0]);
		if (r < 0)
			return r;
		i = r ? 1 : 0;
		if (!r && (r = op_key_eq(op, v.n->slot[2])) <= 0)
			return r < 0 ? r : SHG_CORRUPT();
		*k = v.n->slot[2 * i];
		*val = v.n->slot[2 * i + 1];
		drop_word(op, op->kk, v.n->slot[2 * (1 - i)]);
		drop_word(op, op->vk, v.n->slot[2 * (1 - i) + 1]);
		shg__txn_drop(op->txn, off);
		return 0;
	}
	return SHG_CORRUPT();
}

/* Append the entries of the subtree at @off (@depth) to @e (room: MAP_LEAF_MAX). */
static int gather(struct mop *op, uint64_t off, unsigned depth, struct ment *e,
		  unsigned *n)
{
	struct mview v;
	unsigned i;
	int err;

	if (depth > MAP_COLL_DEPTH)
		return SHG_CORRUPT();
	err = map_view(op->seg, off, with_depth(op->word, depth), &v);
	if (err)
		return err;
	if (v.nd > MAP_LEAF_MAX - *n)
		return SHG_CORRUPT();
	for (i = 0; i < v.nd; i++, (*n)++) {
		e[*n].k = v.n->slot[2 * i];
		e[*n].v = v.n->slot[2 * i + 1];
	}
	for (i = 0; i < v.nc && !err; i++)
		err = gather(op, v.n->slot[2 * v.nd + i], depth + 1, e, n);
	return err;
}

/*
 * After a delete below it: the bitmap node at *@pslot (@depth >= 1) that
 * now holds few enough entries for a leaf becomes one (U64 keys).
 */
static int leafify(struct mop *op, uint64_t *pslot, unsigned depth)
{
	struct ment e[MAP_LEAF_MAX], t;
	struct shg_map_node *m;
	struct mview v;
	unsigned n = 0, i, j;
	uint64_t off;
	int err;

	err = map_view(op->seg, *pslot, with_depth(op->word, depth), &v);
	if (err || v.n->h.type != SHG_TYPE_MAP ||
	    v.n->count > leaf_max(op->kk, depth))
		return err;
	err = gather(op, *pslot, depth, e, &n);
	if (err)
		return err;
	if (n != v.n->count || n < 2)
		return SHG_CORRUPT();
	for (i = 1; i < n; i++) { /* key order */
		t = e[i];
		for (j = i; j > 0 && e[j - 1].k > t.k; j--)
			e[j] = e[j - 1];
		e[j] = t;
	}
	err = node_alloc(op, depth, MAP_HDR + 16ull * n, true, &m, &off);
	if (err)
		return err;
	for (i = 0; i < n; i++) {
		m->slot[2 * i] = e[i].k;
		m->slot[2 * i + 1] = e[i].v;
	}
	m->count = n;
	drop_tree(op, *pslot, depth);
	*pslot = off;
	return 0;
}

/* Delete from a leaf of 3 or more entries. */
static int leaf_del(struct mop *op, uint64_t *pslot, const struct mview *v)
{
	struct shg_map_node *m;
	unsigned i;
	uint64_t k, val;
	int err, r = 0;

	if (op->kk == SHG_KIND_U64) {
		i = leaf_lower_u64(v->n, v->nd, op->key);
		r = i < v->nd && v->n->slot[2 * i] == op->key;
	} else {
		for (i = 0; i < v->nd; i++) {
			r = op_key_eq(op, v->n->slot[2 * i]);
			if (r < 0)
				return r;
			if (r)
				break;
		}
	}
	if (!r || v->nd < 3)
		return SHG_CORRUPT();
	err = node_mut(op, pslot, v, v->size, &m);
	if (err)
		return err;
	k = m->slot[2 * i];
	val = m->slot[2 * i + 1];
	memmove(&m->slot[2 * i], &m->slot[2 * i + 2],
		(size_t)(v->nd - i - 1) * 16);
	m->count = v->nd - 1;
	drop_word(op, op->kk, k);
	drop_word(op, op->vk, val);
	return 0;
}

/* Recursive delete (the key is known to be present). */
static int del_rec(struct mop *op, uint64_t *pslot, unsigned depth)
{
	struct shg_map_node *m;
	struct mview v, cv;
	uint32_t bit, dm, nm;
	uint64_t c, k, val;
	unsigned i, j;
	int err, r;

	err = map_view(op->seg, *pslot, with_depth(op->word, depth), &v);
	if (err)
		return err;
	if (v.n->h.type == SHG_TYPE_MAP_LEAF) /* count >= 3 here */
		return leaf_del(op, pslot, &v);
	bit = 1u << ((op->h >> (MAP_BITS * depth)) & 31);
	dm = v.n->datamap;
	nm = v.n->nodemap;
	if (dm & bit) {
		i = pc32(dm & (bit - 1));
		r = op_key_eq(op, v.n->slot[2 * i]);
		if (r <= 0)
			return r < 0 ? r : SHG_CORRUPT();
		err = node_mut(op, pslot, &v, v.size, &m);
		if (err)
			return err;
		k = m->slot[2 * i];
		val = m->slot[2 * i + 1];
		node_relayout(m, dm & ~bit, nm, 0, 0, 0, 0);
		m->count--;
		drop_word(op, op->kk, k);
		drop_word(op, op->vk, val);
		return 0;
	}
	if (!(nm & bit))
		return SHG_CORRUPT();
	j = pc32(nm & (bit - 1));
	c = v.n->slot[2 * v.nd + j];
	err = map_view(op->seg, c, with_depth(op->word, depth + 1), &cv);
	if (err)
		return err;
	if (cv.n->count == 2) { /* the child collapses into an entry here */
		err = node_mut(op, pslot, &v, v.size + 8, &m);
		if (err)
			return err;
		err = collapse_take(op, c, depth + 1, &k, &val);
		if (err)
			return err;
		node_relayout(m, dm | bit, nm & ~bit, bit, k, val, 0);
		m->count--;
		return 0;
	}
	child_prefetch(op, &v, v.nd + j);
	err = node_mut(op, pslot, &v, v.size, &m);
	if (err)
		return err;
	err = del_rec(op, &m->slot[2 * v.nd + j], depth + 1);
	if (err)
		return err;
	m->count--;
	return leafify(op, &m->slot[2 * v.nd + j], depth + 1);
}

/* ---- txn entry points ------------------------------------------------------ */

/* Resolve @ref to its slot and validate the map there. */
static int op_init(struct mop *op, struct shg_txn *txn, struct shg_ref ref,
		   unsigned kk, uint64_t **pslot)
{
	const struct shg_map_node *n;
	struct mbound b;
	int err;

	if (!txn)
		return -EINVAL;
	if (txn->err)
		return txn->err;
	memset(op, 0, sizeof(*op));
	op->txn = txn;
	op->seg = txn->seg;
	/* A NODE field holding a map: checked before anything is read. */
	err = shg__txn_container_slot(txn, ref, SHG_TYPE_MAP, pslot);
	if (err)
		return err;
	/* The root's header; its slots are checked by the walk. */
	mbound_init(op->seg, &b);
	n = map_root_hdr(op->seg, &b, **pslot, &err);
	if (!n)
		return err;
	if (n->keykind != kk)
		return -EINVAL;
	op->word = node_word(n);
	op->kk = kk;
	op->vk = n->valkind;
	op->flags = n->flags;
	return 0;
}

/* Sticky error: anything but a refused argument poisons the txn. */
static int op_fail(struct shg_txn *txn, int err)
{
	if (err && err != -EINVAL && err != -ENOENT && err != -EXDEV &&
	    !txn->err)
		txn->err = err;
	return err;
}

/* The op's key in the map at @off (validated root): 0, -ENOENT, error. */
static int op_find(struct mop *op, uint64_t off, const uint64_t **found)
{
	const struct fkey k = {
		.kk = op->kk, .key = op->key, .p = op->kp, .len = op->klen
	};
	struct mbound b;

	mbound_init(op->seg, &b);
	return map_find(op->seg, &b, off, op->word, op->h, &k, found);
}

static int op_put(struct mop *op, uint64_t *pslot, const struct shg_val *val)
{
	const struct shg_map_node *root = shg__at(op->seg, *pslot);
	const uint64_t *found = NULL;
	int err, added = 0;

	/* root: header checked by op_init() */
	if (shg_unlikely(root->count == UINT32_MAX)) { /* full unless present */
		err = op_find(op, *pslot, &found);
		if (err)
			return err == -ENOENT ? -EOVERFLOW : err;
	}
	err = shg__txn_val_word(op->txn, op->vk, val, &op->val);
	if (err)
		return err;
	err = put_rec(op, pslot, 0, &added);
	if (err) {
		if (op->vk == SHG_KIND_BYTES) /* ours; a node is the caller's */
			drop_word(op, op->vk, op->val);
		if (op->knode)
			drop_word(op, op->kk, op->key);
	}
	return err;
}

/* Set up @op for key @key of a u64-keyed map at @ref. */
static int op_key_u64(struct mop *op, struct shg_txn *txn, struct shg_ref ref,
		      uint64_t key, uint64_t **pslot)
{
	int err = op_init(op, txn, ref, SHG_KIND_U64, pslot);

	if (err)
		return err;
	op->key = key;
	op->h = map_hash_u64(op->seg, op->flags, key);
	return 0;
}

/* Set up @op for key @key (@klen bytes) of a bytes-keyed map at @ref. */
static int op_key_bytes(struct mop *op, struct shg_txn *txn, struct shg_ref ref,
			const void *key, size_t klen, uint64_t **pslot)
{
	int err;

	if ((!key && klen) || klen > UINT32_MAX)
		return -EINVAL;
	err = op_init(op, txn, ref, SHG_KIND_BYTES, pslot);
	if (err)
		return err;
	op->kp = key ? key : shg__map_empty;
	op->klen = klen;
	op->h = map_hash_bytes(op->seg, op->flags, op->kp, klen);
	return 0;
}

/* @err, poisoning @txn (if any) as op_fail() does. */
static int op_done(struct shg_txn *txn, int err)
{
	return txn ? op_fail(txn, err) : err;
}

int shg_txn_map_put_u64(struct shg_txn *txn, struct shg_ref ref, uint64_t key,
			const struct shg_val *val)
{
	struct mop op;
	uint64_t *pslot;
	int err = op_key_u64(&op, txn, ref, key, &pslot);

	return op_done(txn, err ? err : op_put(&op, pslot, val));
}

int shg_txn_map_put_bytes(struct shg_txn *txn, struct shg_ref ref,
			  const void *key, size_t klen,
			  const struct shg_val *val)
{
	struct mop op;
	uint64_t *pslot;
	int err = op_key_bytes(&op, txn, ref, key, klen, &pslot);

	return op_done(txn, err ? err : op_put(&op, pslot, val));
}

/* Delete: a read-only lookup first, so that an absent key copies nothing. */
static int op_del(struct mop *op, uint64_t *pslot)
{
	const uint64_t *found = NULL;
	int err;

	err = op_find(op, *pslot, &found); /* root header: op_init() */
	if (err)
		return err;
	return del_rec(op, pslot, 0);
}

int shg_txn_map_del_u64(struct shg_txn *txn, struct shg_ref ref, uint64_t key)
{
	struct mop op;
	uint64_t *pslot;
	int err = op_key_u64(&op, txn, ref, key, &pslot);

	return op_done(txn, err ? err : op_del(&op, pslot));
}

int shg_txn_map_del_bytes(struct shg_txn *txn, struct shg_ref ref,
			  const void *key, size_t klen)
{
	struct mop op;
	uint64_t *pslot;
	int err = op_key_bytes(&op, txn, ref, key, klen, &pslot);

	return op_done(txn, err ? err : op_del(&op, pslot));
}

/*
 * Make the node value at the op's key mutable: a read-only lookup first (an
 * absent key or a null value copies nothing), then the put walk path-copies
 * the map down to the entry and copies the value node into it.
 */
static int op_mut(struct mop *op, uint64_t *pslot, struct shg_off *out)
{
	const uint64_t *found = NULL;
	int err, added = 0;

	if (!out || op->vk != SHG_KIND_NODE)
		return -EINVAL;
	err = op_find(op, *pslot, &found);
	if (err)
		return err;
	if (!found[1])
		return -ENOENT;
	op->mut = true;
	err = put_rec(op, pslot, 0, &added);
	if (err)
		return err;
	if (added) /* the lookup found it: corrupt if the walk did not */
		return SHG_CORRUPT();
	out->v = op->val;
	return 0;
}

int shg_txn_map_mut_u64(struct shg_txn *txn, struct shg_ref ref, uint64_t key,
			struct shg_off *out)
{
	struct mop op;
	uint64_t *pslot;
	int err = op_key_u64(&op, txn, ref, key, &pslot);

	return op_done(txn, err ? err : op_mut(&op, pslot, out));
}

int shg_txn_map_mut_bytes(struct shg_txn *txn, struct shg_ref ref,
			  const void *key, size_t klen, struct shg_off *out)
{
	struct mop op;
	uint64_t *pslot;
	int err = op_key_bytes(&op, txn, ref, key, klen, &pslot);

	return op_done(txn, err ? err : op_mut(&op, pslot, out));
}

int shg__txn_map_new_flags(struct shg_txn *txn, struct shg_ref ref,
			   enum shg_kind key_kind, enum shg_kind val_kind,
			   unsigned flags)
{
	struct shg_map_node *m;
	uint64_t *slot, off;
	int err;

	if (!txn || (key_kind != SHG_KIND_U64 && key_kind != SHG_KIND_BYTES) ||
	    val_kind < SHG_KIND_U64 || val_kind > SHG_KIND_ROOT ||
	    (flags & ~SHG_MAP_F_ALL))
		return -EINVAL;
	if (txn->err)
		return txn->err;
	err = shg__txn_node_slot(txn, ref, &slot);
	if (err)
		return op_fail(txn, err);
	err = shg__txn_alloc(txn, SHG_TYPE_MAP, MAP_HDR, &off);
	if (err)
		return op_fail(txn, err);
	m = shg__at(txn->seg, off);
	m->keykind = (uint8_t)key_kind;
	m->valkind = (uint8_t)val_kind;
	m->flags = (uint8_t)flags;
	m->depth = 0;
	err = shg__txn_unlink_value(txn, *slot); /* the old value */
	if (err) {
		shg__txn_drop(txn, off);
		return op_fail(txn, err);
	}
	*slot = off;
	return 0;
}

int shg_txn_map_new(struct shg_txn *txn, struct shg_ref ref,
		    enum shg_kind key_kind, enum shg_kind val_kind)
{
	return shg__txn_map_new_flags(txn, ref, key_kind, val_kind, 0);
}
