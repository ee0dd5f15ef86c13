/* SPDX-License-Identifier: MIT */
/*
 * Internals of the persistent hash map shared by its read side
 * (map_read.c: lookups, iteration, traversal) and its write side (map.c:
 * put, delete, creation): the node layout, hashing, bounds and node
 * validation. See map.c for how the map works.
 */
#ifndef SHG_MAP_INTERNAL_H
#define SHG_MAP_INTERNAL_H

#include <errno.h>
#include <string.h>

#include "graph_internal.h"

/*
 * Map node: a bitmap node, SHG_TYPE_MAP (depth 0..12), or a leaf,
 * SHG_TYPE_MAP_LEAF (depth 1..13: entries sorted by key, no maps).
 *
 *   off  size  field
 *     0    16  struct shg_node header (type, graph, birth)
 *    16     4  datamap   positions holding an inline entry (MAP only)
 *    20     4  nodemap   positions holding a child (MAP only)
 *    24     4  count     entries in this subtree (COLL: entries here)
 *    28     1  keykind   enum shg_kind of the keys (U64 or BYTES)
 *    29     1  valkind   enum shg_kind of the values
 *    30     1  flags     SHG_MAP_F_* (same in every node of a map)
 *    31     1  depth     0 for the map's root, +1 per level, 13 = COLL
 *    32  16*E  entries   {key, value} words, E = popcount(datamap) (MAP)
 *                        or count (COLL)
 *  32+16E 8*C  children  offsets of child nodes, C = popcount(nodemap)
 *
 * Key word: the u64 key, or the offset of a bytes node (0 = empty key).
 * Value word: by value kind (U64/I64/F64 bits; BYTES: offset of a bytes
 * node, 0 = empty; NODE: node offset, 0 = null; ROOT: SHG_ROOTREF).
 */
struct shg_map_node {
	struct shg_node h;
	uint32_t datamap;
	uint32_t nodemap;
	uint32_t count;
	uint8_t keykind;
	uint8_t valkind;
	uint8_t flags;
	uint8_t depth;
	uint64_t slot[];
};
_Static_assert(offsetof(struct shg_map_node, datamap) == 16, "map layout");
_Static_assert(offsetof(struct shg_map_node, count) == 24, "map layout");
_Static_assert(offsetof(struct shg_map_node, keykind) == 28, "map layout");
_Static_assert(offsetof(struct shg_map_node, depth) == 31, "map layout");
_Static_assert(offsetof(struct shg_map_node, slot) == 32, "map layout");
_Static_assert(sizeof(struct shg_map_node) == 32, "map layout");

#define MAP_HDR 32u
#define MAP_BITS 5u
#define MAP_MAX_DEPTH 12u /* deepest bitmap level */
#define MAP_COLL_DEPTH 13u /* no hash bits left: leaves of any size */
#define MAP_MAX_COLL (1u << 24) /* sanity bound on a depth-13 leaf */
/* Most entries of a leaf above depth 13 (maps with U64 keys only). */
#define MAP_LEAF_MAX 64u
#define MAP_LEAF_BYTES (MAP_HDR + 16u * MAP_LEAF_MAX)
/* Largest bitmap node whose maps are disjoint: 32 entries of 16 bytes. */
#define MAP_NODE_MAX (MAP_HDR + 32u * 16u)

static const uint8_t shg__map_empty[1];

/*
 * Most entries a leaf at @depth may hold in a map with keys of kind @kk:
 * a subtree other than the root with 2..leaf_max entries is one leaf (see
 * map.c). Bytes keys have no leaves above depth 13 (a leaf is searched by
 * comparing keys, and a bytes key is a node of its own); at depth 13 the
 * hash has no bits left and a leaf holds every key with that hash.
 */
static inline uint32_t leaf_max(unsigned kk, unsigned depth)
{
	if (depth >= MAP_COLL_DEPTH)
		return MAP_MAX_COLL;
	return kk == SHG_KIND_U64 ? MAP_LEAF_MAX : 1;
}

/* ---- population count ---------------------------------------------------- */

/*
 * x86-64 builds without -mpopcnt would get a library call (gcc) or a
 * dozen instructions (SWAR) for __builtin_popcount: the map checks the CPU
 * once (map_read.c) and issues the instruction itself when it exists.
 */
#if defined(__x86_64__) && !defined(__POPCNT__)
extern SHG_HIDDEN bool shg__map_popcnt;
#endif

static inline __attribute__((always_inline)) unsigned pc32(uint32_t x)
{
#if defined(__POPCNT__) || defined(__aarch64__)
	return (unsigned)__builtin_popcount(x);
#else
#if defined(__x86_64__)
	if (shg_likely(shg__map_popcnt)) {
		uint32_t r;

		__asm__("popcntl %1, %0" : "=r"(r) : "rm"(x) : "cc");
		return r;
	}
#endif
	x = x - ((x >> 1) & 0x55555555u);
	x = (x & 0x33333333u) + ((x >> 2) & 0x33333333u);
	x = (x + (x >> 4)) & 0x0f0f0f0fu;
	return (x * 0x01010101u) >> 24;
#endif
}

/*
 * pc32() with the CPU check hoisted out: @hw says the POPCNT instruction
 * exists (callers test shg__map_popcnt once and inline a walk for each
 * answer; builds that have the instruction ignore @hw).
 */
static inline __attribute__((always_inline)) unsigned pc32_hw(uint32_t x,
							      bool hw)
{
#if defined(__x86_64__) && !defined(__POPCNT__)
	if (hw) {
		uint32_t r;

		__asm__("popcntl %1, %0" : "=r"(r) : "rm"(x) : "cc");
		return r;
	}
	x = x - ((x >> 1) & 0x55555555u);
	x = (x & 0x33333333u) + ((x >> 2) & 0x33333333u);
	x = (x + (x >> 4)) & 0x0f0f0f0fu;
	return (x * 0x01010101u) >> 24;
#else
	(void)hw;
	return pc32(x);
#endif
}

/* Whether the CPU has POPCNT (always, for builds that assume it). */
static inline bool map_has_popcnt(void)
{
#if defined(__x86_64__) && !defined(__POPCNT__)
	return shg__map_popcnt;
#else
	return true;
#endif
}

/* ---- hashing ------------------------------------------------------------- */

/* The segment's seed from its uuid (immutable after creation). */
static inline uint64_t seg_seed_compute(struct shg_seg *seg)
{
	uint64_t a, b;

	memcpy(&a, seg->hdr->uuid, 8);
	memcpy(&b, seg->hdr->uuid + 8, 8);
	return shg__mix64(a ^ (b * 0x9e3779b97f4a7c15ull));
}

/*
 * The seed of every hash of @seg, cached in the handle: one load on the
 * lookup path instead of two loads, a multiply and a mix. A seed of 0
 * (one uuid in 2^64) is simply recomputed each time. Relaxed: the value
 * depends only on the immutable uuid, so any thread's store is right.
 */
static inline uint64_t seg_seed(struct shg_seg *seg)
{
	uint64_t s =
		atomic_load_explicit(&seg->hash_seed, memory_order_relaxed);

	if (shg_unlikely(s == 0)) {
		s = seg_seed_compute(seg);
		atomic_store_explicit(&seg->hash_seed, s, memory_order_relaxed);
	}
	return s;
}

static inline uint64_t hash_u64(struct shg_seg *seg, uint64_t key)
{
	return shg__mix64(key ^ seg_seed(seg));
}

/* The test hash: 8 bits, so that many keys collide completely. */
static inline uint64_t test_hash_bytes(const void *data, size_t len)
{
	const uint8_t *p = data;
	uint64_t s = len;
	size_t i;

	for (i = 0; i < len; i++)
		s += p[i];
	return s & 0xff;
}

static inline uint64_t map_hash_u64(struct shg_seg *seg, unsigned flags,
				    uint64_t key)
{
	if (shg_unlikely(flags & SHG_MAP_F_TESTHASH))
		return key & 0xff;
	return hash_u64(seg, key);
}

static inline uint64_t map_hash_bytes(struct shg_seg *seg, unsigned flags,
				      const void *p, size_t len)
{
	if (shg_unlikely(flags & SHG_MAP_F_TESTHASH))
		return test_hash_bytes(p, len);
	return shg__hash_bytes(seg, p, len);
}

/* ---- bounds and node validation ------------------------------------------ */

/*
 * Heap bounds for one operation: shg__off_ok() with the backed size
 * loaded once (it only grows, so an older value is merely stricter).
 * @fast: a 16-aligned node at an offset in [lo, fast] has all of its
 * header and any slot of a bitmap node with disjoint maps inside the
 * heap, so a lookup checks one bound per node.
 */
struct mbound {
	uint64_t lo, hi;
	uint64_t nhi; /* last offset of a node header: hi - MAP_HDR (or 0) */
	uint64_t fast;
};

static inline void mbound_init(const struct shg_seg *seg, struct mbound *b)
{
	uint64_t backed =
		atomic_load_explicit(&seg->hdr->backed, memory_order_acquire);

	b->lo = seg->heap_off; /* > 0: the segment header comes first */
	b->hi = backed < seg->capacity ? backed : seg->capacity;
	b->nhi = b->hi >= MAP_HDR ? b->hi - MAP_HDR : 0;
	b->fast = b->hi >= MAP_NODE_MAX ? b->hi - MAP_NODE_MAX : 0;
}

static inline bool mb_ok(const struct mbound *b, uint64_t off, uint64_t len)
{
	return off >= b->lo && (off & 15) == 0 && len <= b->hi &&
	       off <= b->hi - len;
}

/* mb_ok(@b, @off, MAP_HDR): a node header fits at @off. */
static inline bool mb_hdr_ok(const struct mbound *b, uint64_t off)
{
	return off >= b->lo && off <= b->nhi && (off & 15) == 0;
}

/* The kinds/flags/depth word at offset 28, as one 32-bit value. */
static inline uint32_t kinds_word(unsigned kk, unsigned vk, unsigned fl,
				  unsigned depth)
{
	uint8_t b[4] = { (uint8_t)kk, (uint8_t)vk, (uint8_t)fl,
			 (uint8_t)depth };
	uint32_t w;

	memcpy(&w, b, 4);
	return w;
}

static inline uint32_t node_word(const struct shg_map_node *n)
{
	uint32_t w;

	memcpy(&w, &n->keykind, 4);
	return w;
}

static inline uint32_t with_depth(uint32_t w, unsigned depth)
{
	return (w & ~kinds_word(0, 0, 0, 0xff)) | kinds_word(0, 0, 0, depth);
}

/*
 * struct mview - a validated map node: entries and children counts.
 */
struct mview {
	const struct shg_map_node *n;
	unsigned nd; /* entries */
	unsigned nc; /* children */
	size_t size; /* logical size in bytes */
};

/*
 * Validate the node at @off against @word (kinds, flags, depth): in range,
 * aligned, right type for its depth, maps disjoint, slots inside the backed
 * heap. One comparison covers kinds, flags and depth.
 */
static inline __attribute__((always_inline)) int
map_view_b(struct shg_seg *seg, const struct mbound *b, uint64_t off,
	   uint32_t word, struct mview *v)
{
	const struct shg_map_node *n;
	uint32_t dm, nm, type;
	uint64_t size;

	if (shg_unlikely(!mb_hdr_ok(b, off)))
		return SHG_EBADOFF;
	n = shg__at(seg, off);
	type = n->h.type;
	if (shg_unlikely(node_word(n) != word))
		return SHG_CORRUPT();
	if (shg_likely(type == SHG_TYPE_MAP)) {
		dm = n->datamap;
		nm = n->nodemap;
		if (shg_unlikely((dm & nm) != 0 || n->depth > MAP_MAX_DEPTH))
			return SHG_CORRUPT();
		v->nd = pc32(dm);
		v->nc = pc32(nm);
	} else if (type == SHG_TYPE_MAP_LEAF) {
		v->nd = n->count;
		v->nc = 0;
		if (n->depth == 0 || n->depth > MAP_COLL_DEPTH || v->nd < 2 ||
		    v->nd > leaf_max(n->keykind, n->depth))
			return SHG_CORRUPT();
	} else {
		return SHG_CORRUPT();
	}
	size = MAP_HDR + 16ull * v->nd + 8ull * v->nc;
	if (shg_unlikely((off > b->fast || size > MAP_NODE_MAX) &&
			 !mb_ok(b, off, size)))
		return SHG_CORRUPT();
	v->n = n;
	v->size = (size_t)size;
	return 0;
}

static inline int map_view(struct shg_seg *seg, uint64_t off, uint32_t word,
			   struct mview *v)
{
	struct mbound b;

	mbound_init(seg, &b);
	return map_view_b(seg, &b, off, word, v);
}

/*
 * A map's root node at @off: in range, a bitmap node of depth 0 with
 * valid kinds and flags. Returns its header (the slots are checked by
 * whoever reads them) or NULL with *@err.
 */
static inline __attribute__((always_inline)) const struct shg_map_node *
map_root_hdr(struct shg_seg *seg, const struct mbound *b, uint64_t off,
	     int *err)
{
	const struct shg_map_node *n;

	if (shg_unlikely(!mb_hdr_ok(b, off))) {
		*err = SHG_EBADOFF;
		return NULL;
	}
	n = shg__at(seg, off);
	if (shg_unlikely(n->h.type != SHG_TYPE_MAP || n->depth != 0 ||
			 (n->keykind != SHG_KIND_U64 &&
			  n->keykind != SHG_KIND_BYTES) ||
			 n->valkind < SHG_KIND_U64 ||
			 n->valkind > SHG_KIND_ROOT ||
			 (n->flags & ~SHG_MAP_F_ALL))) {
		*err = SHG_CORRUPT();
		return NULL;
	}
	return n;
}

/* Validate a map's root node (depth 0) and its slots. */
static inline __attribute__((always_inline)) int
map_root_b(struct shg_seg *seg, const struct mbound *b, uint64_t off,
	   struct mview *v)
{
	const struct shg_map_node *n;
	int err;

	n = map_root_hdr(seg, b, off, &err);
	if (!n)
		return err;
	return map_view_b(seg, b, off, node_word(n), v);
}

static inline int map_root(struct shg_seg *seg, uint64_t off, struct mview *v)
{
	struct mbound b;

	mbound_init(seg, &b);
	return map_root_b(seg, &b, off, v);
}

/* Validated bytes node (type, length inside the heap). */
static inline const struct shg_bytes *bytes_at(struct shg_seg *seg,
					       uint64_t off, int *err)
{
	const struct shg_bytes *b;

	if (shg_unlikely(!shg__off_ok(seg, off, sizeof(*b), 16))) {
		*err = SHG_EBADOFF;
		return NULL;
	}
	b = shg__at(seg, off);
	if (shg_unlikely(b->h.type != SHG_TYPE_BYTES ||
			 !shg__off_ok(seg, off, sizeof(*b) + (uint64_t)b->len,
				      16))) {
		*err = SHG_CORRUPT();
		return NULL;
	}
	return b;
}

/*
 * Whether entry key word @ek equals the bytes key (@p, @len, hash @h).
 * 1 equal, 0 not, negative on corrupt data.
 */
static inline int bkey_eq(struct shg_seg *seg, uint64_t ek, const void *p,
			  size_t len, uint64_t h)
{
	const struct shg_bytes *b;
	int err = 0;

	if (ek == 0)
		return len == 0;
	b = bytes_at(seg, ek, &err);
	if (!b)
		return err;
	return b->hash == (uint32_t)h && b->len == len &&
	       memcmp(b->data, p, len) == 0;
}

/* ---- lookup ---------------------------------------------------------------- */

/* A key to find: U64 (@key) or BYTES (@p, @len), by @kk. */
struct fkey {
	unsigned kk;
	uint64_t key;
	const void *p;
	size_t len;
};

static inline __attribute__((always_inline)) int
fkey_eq(struct shg_seg *seg, const struct fkey *k, uint64_t ek, uint64_t h)
{
	if (k->kk == SHG_KIND_U64)
		return ek == k->key;
	return bkey_eq(seg, ek, k->p, k->len, h);
}

/*
 * Ask for a child's lines at once: the header line tells where the wanted
 * slot is, and that slot is often a few lines further on; fetching them in
 * parallel turns two dependent cache misses per level into about one. How
 * many: a parent with @count >= 256 entries has big children (bitmap
 * nodes up to 544 bytes, leaves of ~8 to 64 entries): 8 lines (a leaf
 * asks for the rest itself); a smaller parent has small children (2
 * lines). Returns the bytes asked for. Only called on an offset inside
 * the heap; a prefetch never faults.
 */
static inline __attribute__((always_inline)) uint32_t
map_prefetch(struct shg_seg *seg, uint64_t off, uint32_t count)
{
	const uint8_t *p = seg->base + off;

	__builtin_prefetch(p);
	__builtin_prefetch(p + 64);
	if (count >= 256) {
		__builtin_prefetch(p + 128);
		__builtin_prefetch(p + 192);
		__builtin_prefetch(p + 256);
		__builtin_prefetch(p + 320);
		__builtin_prefetch(p + 384);
		__builtin_prefetch(p + 448);
		return 512;
	}
	return 128;
}

/* Whether the @nwords slot words from word @idx of the node at @off are
 * inside the heap (one comparison unless the node is near the end). */
static inline __attribute__((always_inline)) bool
slots_ok(const struct mbound *b, uint64_t off, uint64_t idx, uint64_t nwords)
{
	return shg_likely(off <= b->fast) ||
	       mb_ok(b, off, MAP_HDR + 8 * (idx + nwords));
}

/*
 * Index of the first of the @cnt (>= 1) entries of leaf @n, u64 keys
 * ascending, whose key is >= @key (@cnt if none): a branch-free binary
 * search. On a leaf whose keys are not sorted (corrupt data) it still
 * returns an index <= @cnt.
 */
static inline unsigned leaf_lower_u64(const struct shg_map_node *n,
				      unsigned cnt, uint64_t key)
{
	unsigned lo = 0, len = cnt;

	while (len > 1) {
		unsigned half = len / 2;

		lo = n->slot[2 * (lo + half)] < key ? lo + half : lo;
		len -= half;
	}
	return lo + (n->slot[2 * lo] < key);
}

/*
 * The entry for @k in the leaf at @off (depth @d, header checked by the
 * caller): its count is checked against the depth's bound and its entries
 * against the heap; the lines beyond the @pf bytes the parent prefetched
 * are asked for at once.
 */
static inline int leaf_find(struct shg_seg *seg, const struct mbound *b,
			    uint64_t off, unsigned d, uint32_t pf, uint64_t h,
			    const struct fkey *k, const uint64_t **found)
{
	const struct shg_map_node *n = shg__at(seg, off);
	uint32_t cnt = n->count, i;
	uint64_t size = MAP_HDR + 16ull * cnt;
	int r;

	if (shg_unlikely(cnt < 2 || cnt > leaf_max(k->kk, d) ||
			 !mb_ok(b, off, size)))
		return SHG_CORRUPT();
	if (k->kk == SHG_KIND_U64) {
		for (i = pf; i < size && i < MAP_LEAF_BYTES; i += 64)
			__builtin_prefetch((const uint8_t *)n + i);
		i = leaf_lower_u64(n, cnt, k->key);
		if (i < cnt && n->slot[2 * i] == k->key) {
			*found = &n->slot[2 * i];
			return 0;
		}
		return -ENOENT;
	}
	for (i = 0; i < cnt; i++) {
		r = fkey_eq(seg, k, n->slot[2 * i], h);
		if (r < 0)
			return r;
		if (r) {
			*found = &n->slot[2 * i];
			return 0;
		}
	}
	return -ENOENT;
}

/*
 * Lookups walk one level per step (map_step()): a single lookup
 * (map_find()) steps one key to the end; batched lookups
 * (shg_map_get_many_*) step many keys a level at a time, so that the
 * cache misses of different keys overlap.
 *
 * struct mstep - one key's position in the walk. @n is the node at @off,
 * expected to carry @word (kinds, flags, depth @d); the offset passed
 * mb_hdr_ok() (or map_root_hdr() for the root) and its lines were
 * prefetched (@pf bytes) when the step that reached it ran. @hs holds the
 * hash bits of the levels still to come.
 */
struct mstep {
	const struct shg_map_node *n;
	uint64_t off;
	uint64_t hs;
	uint32_t word;
	uint32_t pf;
	unsigned d;
};

/* Start @st at the root @off (checked by map_root_hdr(); word @word). */
static inline __attribute__((always_inline)) void
map_step_init(struct shg_seg *seg, struct mstep *st, uint64_t off,
	      uint32_t word, uint64_t h)
{
	st->off = off;
	st->n = shg__at(seg, off);
	st->hs = h;
	st->word = with_depth(word, 0);
	st->pf = 0;
	st->d = 0;
}

/*
 * map_step() - one level of the walk for the key @k (hash @h) at @st:
 * node word, type, depth, disjoint maps, the slot inside the heap, the
 * child's bound. map_find() is this step in a loop, so a batched lookup
 * rejects exactly the data a single lookup rejects. On descending it
 * prefetches the child's lines and returns without reading them: the
 * next step does, after the caller has advanced its other keys.
 * Return: 1 (descended: call again), 0 and *@found, -ENOENT, or
 * SHG_EBADOFF / SHG_ECORRUPT.
 */
static inline __attribute__((always_inline)) int
map_step(struct shg_seg *seg, const struct mbound *b, struct mstep *st,
	 uint64_t h, const struct fkey *k, const uint64_t **found)
{
	const struct shg_map_node *n = st->n;
	uint32_t dm, nm, bit;
	uint64_t idx, c;
	int r;

	/* The root passed map_root_hdr() (a bitmap node of depth 0); a
	 * child is checked here, by the step after the one that reached it
	 * (its lines have had that long to arrive). */
	if (st->d > 0) {
		if (shg_unlikely(node_word(n) != st->word))
			return SHG_CORRUPT();
		if (n->h.type == SHG_TYPE_MAP_LEAF)
			return leaf_find(seg, b, st->off, st->d, st->pf, h, k,
					 found);
		if (shg_unlikely(n->h.type != SHG_TYPE_MAP ||
				 st->d > MAP_MAX_DEPTH))
			return SHG_CORRUPT();
	}
	dm = n->datamap;
	nm = n->nodemap;
	bit = 1u << (st->hs & 31);
	if (shg_unlikely(dm & nm))
		return SHG_CORRUPT();
	if (dm & bit) {
		idx = 2 * pc32(dm & (bit - 1));
		if (shg_unlikely(!slots_ok(b, st->off, idx, 2)))
			return SHG_CORRUPT();
		r = fkey_eq(seg, k, n->slot[idx], h);
		if (r <= 0)
			return r < 0 ? r : -ENOENT;
		*found = &n->slot[idx];
		return 0;
	}
	if (!(nm & bit))
		return -ENOENT;
	idx = 2 * pc32(dm) + pc32(nm & (bit - 1));
	if (shg_unlikely(!slots_ok(b, st->off, idx, 1)))
		return SHG_CORRUPT();
	c = n->slot[idx];
	if (shg_unlikely(!mb_hdr_ok(b, c)))
		return SHG_EBADOFF;
	st->pf = map_prefetch(seg, c, n->count);
	st->off = c;
	st->n = shg__at(seg, c);
	st->hs >>= MAP_BITS;
	st->d++;
	st->word += kinds_word(0, 0, 0, 1); /* depth d (d <= 13: no carry) */
	return 1;
}

/*
 * map_find() - the entry for key @k (hash @h) in the map whose root node
 * at @off passed map_root_hdr() (its word: @word): map_step() until the
 * walk ends, so that a single lookup and a batched one make the same
 * checks.
 *
 * Per bitmap level it reads the node's header words and the one slot it
 * needs: the node was checked when its parent's slot was read (one bound,
 * its type, and its kinds/flags/depth word, whose depth must grow by one a
 * level, which also ends any walk over corrupt data after 14 nodes); the
 * slot is inside the heap by the node's bound when the maps are disjoint.
 * A leaf ends the walk (leaf_find()).
 * Return: 0 and *@found (the {key, value} words), -ENOENT, or
 * SHG_EBADOFF / SHG_ECORRUPT on corrupt data.
 */
static inline __attribute__((always_inline)) int
map_find(struct shg_seg *seg, const struct mbound *b, uint64_t off,
	 uint32_t word, uint64_t h, const struct fkey *k,
	 const uint64_t **found)
{
	struct mstep st;
	int r;

	map_step_init(seg, &st, off, word, h);
	do
		r = map_step(seg, b, &st, h, k, found);
	while (r == 1);
	return r;
}

/* ---- the u64 lookup fast path -------------------------------------------- */

/*
 * shg_map_get_u64() walks with map_find_u64() first: the same checks as
 * map_find() on a u64 map, made cheaper by one bound per node. Any check
 * it cannot pass on the spot (a node in the last MAP_LEAF_BYTES of the
 * backed heap, a leaf of depth 13 or of more than MAP_LEAF_MAX entries,
 * corrupt data of any kind) ends it with MAP_SLOW, and the caller repeats
 * the lookup with map_find(), which gives the exact code. So a corrupt
 * segment gives the same codes as before, and the fast walk only has to
 * prove that it never reads outside the backed heap and that it accepts
 * only what map_find() accepts.
 *
 * The bound: a node at @off is entered only if off - lo16, rotated right
 * by 4, is below @lim (struct mfast). lo16 is the heap start rounded up
 * to 16, so an offset below it wraps to a huge value, a misaligned one
 * gets one of its low 4 bits rotated into bits 60..63, and both fail the
 * one comparison; @lim admits the 16-aligned offsets up to hi -
 * MAP_LEAF_BYTES. Every read of a node entered that way is inside its
 * first MAP_LEAF_BYTES: the header, a bitmap node's slot (index <= 2 * 32
 * + 31 even with overlapping maps: at most 800 bytes) and a leaf of at
 * most MAP_LEAF_MAX entries (1,056 bytes).
 */
#define MAP_SLOW 1

struct mfast {
	const uint8_t *base;
	uint64_t lo16; /* heap start rounded up to 16 */
	uint64_t lim; /* rotated offsets below this are enterable */
};

static inline __attribute__((always_inline)) void
mfast_init(const struct shg_seg *seg, struct mfast *f)
{
	uint64_t backed =
		atomic_load_explicit(&seg->hdr->backed, memory_order_acquire);
	uint64_t hi = backed < seg->capacity ? backed : seg->capacity;
	uint64_t lo16 = (seg->heap_off + 15) & ~(uint64_t)15;

	f->base = seg->base;
	f->lo16 = lo16;
	/* last enterable offset: hi - MAP_LEAF_BYTES; none if below lo16 */
	f->lim = hi >= lo16 + MAP_LEAF_BYTES ?
			 ((hi - MAP_LEAF_BYTES - lo16) >> 4) + 1 :
			 0;
}

static inline __attribute__((always_inline)) bool
mfast_ok(const struct mfast *f, uint64_t off)
{
	uint64_t x = off - f->lo16;

	return ((x >> 4) | (x << 60)) < f->lim;
}

/*
 * The first of the @cnt (1..MAP_LEAF_MAX) entries from @slot, u64 keys
 * ascending, whose key is >= @key (slot + 2 * @cnt if none), as
 * leaf_lower_u64() but with power-of-two steps: the answer is kept in a
 * window of s candidates starting at p, one comparison halves it. The
 * steps are unrolled (entered by the window's log2), each a compare and
 * a masked add: no branch on the keys, whose outcomes are coin tosses (a
 * version whose steps compiled to branches ran 40 % slower at 10k keys
 * than the loop of leaf_lower_u64()). Reads only entries < @cnt and
 * returns at most slot + 2 * @cnt even on unsorted (corrupt) keys.
 */
#define LEAF_STEP(c) p += -(uint64_t)(p[2 * (c)-2] < key) & (2 * (c))

static inline __attribute__((always_inline)) const uint64_t *
leaf_lower_pow2(const uint64_t *slot, unsigned cnt, uint64_t key)
{
	unsigned k = 31 - (unsigned)__builtin_clz(cnt); /* s = 2^k <= cnt */
	unsigned s = 1u << k;
	/* window [cnt + 1 - s, cnt] if the s-th key is below @key, else
	 * [0, s - 1]; a mask, not a branch: the outcome is a coin toss */
	uint64_t m = -(uint64_t)(slot[2 * (s - 1)] < key);
	const uint64_t *p = slot + (m & (2 * (uint64_t)(cnt + 1 - s)));

	switch (k) {
	case 6:
		LEAF_STEP(32);
		/* fallthrough */
	case 5:
		LEAF_STEP(16);
		/* fallthrough */
	case 4:
		LEAF_STEP(8);
		/* fallthrough */
	case 3:
		LEAF_STEP(4);
		/* fallthrough */
	case 2:
		LEAF_STEP(2);
		/* fallthrough */
	case 1:
		LEAF_STEP(1);
		/* fallthrough */
	default:
		break;
	}
	return p;
}

#undef LEAF_STEP

/*
 * map_find_u64() - map_find() for u64 keys over nodes that pass
 * mfast_ok(); the root at @off has passed it and carries the word @word
 * of a valid root (bitmap node, depth 0, keys U64). Return: 0 and
 * *@found, -ENOENT, or MAP_SLOW (see above).
 */
static inline __attribute__((always_inline)) int
map_find_u64(const struct mfast *f, uint64_t off, uint32_t word, uint64_t h,
	     uint64_t key, const uint64_t **found, bool hw)
{
	const struct shg_map_node *n =
		(const struct shg_map_node *)(f->base + off);
	uint32_t dm, nm, bit, type, pf = 0;
	const uint64_t *e;
	bool big;
	unsigned d = 0, cnt, i;
	uint64_t c, idx;

	for (;;) {
		dm = n->datamap;
		nm = n->nodemap;
		bit = 1u << (h & 31);
		if (shg_unlikely(dm & nm))
			return MAP_SLOW;
		if (dm & bit) {
			idx = 2 * pc32_hw(dm & (bit - 1), hw);
			if (n->slot[idx] != key)
				return -ENOENT;
			*found = &n->slot[idx];
			return 0;
		}
		if (!(nm & bit))
			return -ENOENT;
		idx = 2 * pc32_hw(dm, hw) + pc32_hw(nm & (bit - 1), hw);
		c = n->slot[idx];
		if (shg_unlikely(!mfast_ok(f, c)))
			return MAP_SLOW;
		big = n->count >= 256;
		n = (const struct shg_map_node *)(f->base + c);
		/* the same lines as map_prefetch() */
		__builtin_prefetch((const uint8_t *)n);
		__builtin_prefetch((const uint8_t *)n + 64);
		pf = 128;
		if (big) {
			__builtin_prefetch((const uint8_t *)n + 128);
			__builtin_prefetch((const uint8_t *)n + 192);
			__builtin_prefetch((const uint8_t *)n + 256);
			__builtin_prefetch((const uint8_t *)n + 320);
			__builtin_prefetch((const uint8_t *)n + 384);
			__builtin_prefetch((const uint8_t *)n + 448);
			pf = 512;
		}
		h >>= MAP_BITS;
		d++;
		word += kinds_word(0, 0, 0,
				   1); /* depth d (d <= 13: no carry) */
		if (shg_unlikely(node_word(n) != word))
			return MAP_SLOW;
		type = n->h.type;
		if (type != SHG_TYPE_MAP)
			break;
		if (shg_unlikely(d > MAP_MAX_DEPTH))
			return MAP_SLOW;
	}
	if (shg_unlikely(type != SHG_TYPE_MAP_LEAF))
		return MAP_SLOW;
	cnt = n->count;
	/* 2..MAP_LEAF_MAX entries (a depth-13 leaf may hold more: slow) */
	if (shg_unlikely(cnt - 2 > MAP_LEAF_MAX - 2))
		return MAP_SLOW;
	for (i = pf; i < MAP_HDR + 16 * cnt; i += 64)
		__builtin_prefetch((const uint8_t *)n + i);
	e = leaf_lower_pow2(n->slot, cnt, key);
	if (e < n->slot + 2 * cnt && *e == key) {
		*found = e;
		return 0;
	}
	return -ENOENT;
}

#endif /* SHG_MAP_INTERNAL_H */
