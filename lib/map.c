/* SPDX-License-Identifier: MIT */
/*
 * Persistent hash map: a CHAMP-style hash array mapped trie (Steindorfer &
 * Vinju, OOPSLA 2015) whose nodes live in the segment. Lookups walk at most
 * 14 nodes without writing anything; a txn updates it by path copying
 * (each node copied once per txn, later edits in place).
 *
 * HOW IT WORKS
 *
 * A key's 64-bit hash is consumed 5 bits per level: level d (0..12) uses
 * bits [5d, 5d+5) (level 12 has only 4 bits left). A bitmap node keeps two
 * 32-bit maps: @datamap marks positions holding an entry inline, @nodemap
 * positions holding a child subtree; the two never overlap. Entries come
 * first in the slot array, ordered by position, then the child offsets,
 * ordered by position. Two keys whose 64-bit hashes are equal end in a
 * collision node at depth 13: a plain array of entries sorted by key.
 *
 * Canonical form (CHAMP): a subtree other than the root that holds a single
 * entry is always inlined into its parent; deletion restores this bottom-up
 * (a child whose count falls to 1 turns back into an entry, recursively).
 * Insertion creates exactly the chain of nodes needed to separate two keys.
 * So the shape depends only on the set of keys, never on the order of
 * operations: equal maps have equal shapes, and iteration (depth first,
 * a node's entries before its children, positions ascending) visits equal
 * maps in the same order.
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
 */
#include <errno.h>
#include <string.h>

#include "graph_internal.h"

/*
 * Map node, SHG_TYPE_MAP (depth 0..12) or SHG_TYPE_MAP_COLL (depth 13).
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
#define MAP_COLL_DEPTH 13u /* collision nodes */
#define MAP_MAX_COLL (1u << 24) /* sanity bound on a collision node */

static const uint8_t empty_bytes[1];

/* ---- hashing ------------------------------------------------------------ */

static inline uint64_t mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	x ^= x >> 31;
	return x;
}

static inline uint64_t seg_seed(struct shg_seg *seg)
{
	uint64_t a, b;

	/* uuid is immutable after creation (header line 0). */
	memcpy(&a, seg->hdr->uuid, 8);
	memcpy(&b, seg->hdr->uuid + 8, 8);
	return mix64(a ^ (b * 0x9e3779b97f4a7c15ull));
}

static inline uint64_t hash_u64(struct shg_seg *seg, uint64_t key)
{
	return mix64(key ^ seg_seed(seg));
}

uint64_t shg__hash_u64(struct shg_seg *seg, uint64_t key)
{
	return hash_u64(seg, key);
}

static inline uint64_t mum(uint64_t a, uint64_t b)
{
	__uint128_t r = (__uint128_t)a * b;

	return (uint64_t)r ^ (uint64_t)(r >> 64);
}

static inline uint64_t rd64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v;
}

static inline uint64_t rd32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

#define HB_P0 0xa0761d6478bd642full
#define HB_P1 0xe7037ed1a0b428dbull
#define HB_P2 0x8ebc6af09c88c6e3ull

/* A wyhash-style hash: 16 bytes per multiply, overlapping tail reads. */
static uint64_t hash_bytes_seeded(uint64_t seed, const void *data, size_t len)
{
	const uint8_t *p = data;
	uint64_t h = seed ^ HB_P0, a = 0, b = 0;
	size_t n = len;

	while (n > 16) {
		h = mum(rd64(p) ^ HB_P1, rd64(p + 8) ^ h);
		p += 16;
		n -= 16;
	}
	if (n >= 8) {
		a = rd64(p);
		b = rd64(p + n - 8);
	} else if (n >= 4) {
		a = rd32(p);
		b = rd32(p + n - 4);
	} else if (n > 0) {
		a = ((uint64_t)p[0] << 16) | ((uint64_t)p[n >> 1] << 8) |
		    p[n - 1];
	}
	h = mum(a ^ HB_P1, b ^ h);
	return mum(h ^ HB_P2, (uint64_t)len ^ HB_P1);
}

uint64_t shg__hash_bytes(struct shg_seg *seg, const void *p, size_t len)
{
	return hash_bytes_seeded(seg_seed(seg), p, len);
}

/* The test hash: 8 bits, so that many keys collide completely. */
static uint64_t test_hash_bytes(const void *data, size_t len)
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

/* ---- node validation (read side) ----------------------------------------- */

/* Population count (a library call without -mpopcnt: avoid it). */
static inline unsigned pc32(uint32_t x)
{
#ifdef __POPCNT__
	return (unsigned)__builtin_popcount(x);
#else
	x = x - ((x >> 1) & 0x55555555u);
	x = (x & 0x33333333u) + ((x >> 2) & 0x33333333u);
	x = (x + (x >> 4)) & 0x0f0f0f0fu;
	return (x * 0x01010101u) >> 24;
#endif
}

/*
 * Heap bounds for one operation: shg__off_ok() with the backed size
 * loaded once (it only grows, so an older value is merely stricter).
 */
struct mbound {
	uint64_t lo, hi;
};

static inline void mbound_init(const struct shg_seg *seg, struct mbound *b)
{
	uint64_t backed =
		atomic_load_explicit(&seg->hdr->backed, memory_order_acquire);

	b->lo = seg->heap_off;
	b->hi = backed < seg->capacity ? backed : seg->capacity;
}

static inline bool mb_ok(const struct mbound *b, uint64_t off, uint64_t len)
{
	return off >= b->lo && (off & 15) == 0 && len <= b->hi &&
	       off <= b->hi - len;
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

	if (shg_unlikely(!mb_ok(b, off, MAP_HDR)))
		return SHG_EBADOFF;
	n = shg__at(seg, off);
	type = n->h.type;
	if (shg_unlikely(node_word(n) != word))
		return SHG_ECORRUPT;
	if (shg_likely(type == SHG_TYPE_MAP)) {
		dm = n->datamap;
		nm = n->nodemap;
		if (shg_unlikely((dm & nm) != 0 || n->depth > MAP_MAX_DEPTH))
			return SHG_ECORRUPT;
		v->nd = pc32(dm);
		v->nc = pc32(nm);
	} else if (type == SHG_TYPE_MAP_COLL) {
		v->nd = n->count;
		v->nc = 0;
		if (n->depth != MAP_COLL_DEPTH || v->nd < 2 ||
		    v->nd > MAP_MAX_COLL)
			return SHG_ECORRUPT;
	} else {
		return SHG_ECORRUPT;
	}
	size = MAP_HDR + 16ull * v->nd + 8ull * v->nc;
	if (shg_unlikely(!mb_ok(b, off, size)))
		return SHG_ECORRUPT;
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

/* Validate a map's root node (depth 0) and return its word. */
static inline __attribute__((always_inline)) int
map_root_b(struct shg_seg *seg, const struct mbound *b, uint64_t off,
	   struct mview *v)
{
	const struct shg_map_node *n;

	if (!mb_ok(b, off, MAP_HDR))
		return SHG_EBADOFF;
	n = shg__at(seg, off);
	if (n->depth != 0 ||
	    (n->keykind != SHG_KIND_U64 && n->keykind != SHG_KIND_BYTES) ||
	    n->valkind < SHG_KIND_U64 || n->valkind > SHG_KIND_ROOT ||
	    (n->flags & ~SHG_MAP_F_ALL))
		return SHG_ECORRUPT;
	return map_view_b(seg, b, off, node_word(n), v);
}

static int map_root(struct shg_seg *seg, uint64_t off, struct mview *v)
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
		*err = SHG_ECORRUPT;
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

/* Fill @out from a value word of kind @vk. */
static int val_out(struct shg_seg *seg, unsigned vk, uint64_t w,
		   struct shg_val *out)
{
	const struct shg_bytes *b;
	int err = 0;

	if (!out)
		return 0;
	out->kind = (enum shg_kind)vk;
	switch (vk) {
	case SHG_KIND_BYTES:
		if (w == 0) {
			out->bytes.p = empty_bytes;
			out->bytes.len = 0;
			return 0;
		}
		b = bytes_at(seg, w, &err);
		if (!b)
			return err;
		out->bytes.p = b->data;
		out->bytes.len = b->len;
		return 0;
	case SHG_KIND_NODE:
		out->node.v = w;
		return 0;
	case SHG_KIND_ROOT:
		out->root = SHG_ROOTREF_SLOT(w);
		return 0;
	default:
		out->u64 = w;
		return 0;
	}
}

/* ---- lookups ------------------------------------------------------------- */

/*
 * Ask for a child's first lines at once: the header line tells where the
 * wanted slot is, and that slot is usually one or two lines further on;
 * fetching them in parallel turns two dependent cache misses per level into
 * about one. A prefetch never faults, so a bad offset is harmless here (it
 * is validated before any load).
 */
static inline void map_prefetch(struct shg_seg *seg, uint64_t off)
{
	const uint8_t *p = seg->base + off;

	__builtin_prefetch(p);
	__builtin_prefetch(p + 64);
	__builtin_prefetch(p + 128);
	__builtin_prefetch(p + 192);
}

/*
 * Find the entry for hash @h: returns a pointer to its {key, value} pair
 * (compared by @eq), NULL and 0 if absent, NULL and *err if corrupt. The
 * callers below inline their key comparison.
 */
#define MAP_FIND(seg, v, word, h, found, err, EQ)                               \
	do {                                                                    \
		unsigned d_ = 0;                                                \
		struct mbound b_;                                               \
		mbound_init((seg), &b_);                                        \
		for (;;) {                                                      \
			const struct shg_map_node *n_ = (v).n;                  \
			uint32_t bit_, dm_, below_;                             \
			uint64_t c_;                                            \
			if (shg_unlikely(d_ == MAP_COLL_DEPTH)) {               \
				for (unsigned i_ = 0; i_ < (v).nd; i_++) {      \
					const uint64_t *e_ =                    \
						&n_->slot[2 * i_];              \
					int r_ = (EQ);                          \
					if (r_ < 0) {                           \
						(err) = r_;                     \
						break;                          \
					}                                       \
					if (r_) {                               \
						(found) = e_;                   \
						break;                          \
					}                                       \
				}                                               \
				break;                                          \
			}                                                       \
			bit_ = 1u << (((h) >> (MAP_BITS * d_)) & 31);           \
			dm_ = n_->datamap;                                      \
			below_ = bit_ - 1;                                      \
			if (dm_ & bit_) {                                       \
				const uint64_t *e_ =                            \
					&n_->slot[2 * pc32(dm_ & below_)];      \
				int r_ = (EQ);                                  \
				if (r_ < 0)                                     \
					(err) = r_;                             \
				else if (r_)                                    \
					(found) = e_;                           \
				break;                                          \
			}                                                       \
			if (!(n_->nodemap & bit_))                              \
				break;                                          \
			c_ = n_->slot[2 * (v).nd + pc32(n_->nodemap & below_)]; \
			map_prefetch((seg), c_);                                \
			d_++;                                                   \
			(err) = map_view_b((seg), &b_, c_,                      \
					   with_depth((word), d_), &(v));       \
			if (shg_unlikely(err))                                  \
				break;                                          \
		}                                                               \
	} while (0)

int shg_map_get_u64(struct shg_seg *seg, struct shg_off map, uint64_t key,
		    struct shg_val *out)
{
	const uint64_t *found = NULL;
	struct mbound b;
	struct mview v;
	uint32_t word;
	uint64_t h;
	int err;

	if (map.v == 0)
		return -ENOENT; /* null map: empty */
	mbound_init(seg, &b);
	err = map_root_b(seg, &b, map.v, &v);
	if (err)
		return err;
	if (v.n->keykind != SHG_KIND_U64)
		return -EINVAL;
	word = node_word(v.n);
	h = map_hash_u64(seg, v.n->flags, key);
	MAP_FIND(seg, v, word, h, found, err, e_[0] == key);
	if (err)
		return err;
	if (!found)
		return -ENOENT;
	return val_out(seg, v.n->valkind, found[1], out);
}

int shg_map_get_bytes(struct shg_seg *seg, struct shg_off map, const void *key,
		      size_t klen, struct shg_val *out)
{
	const uint64_t *found = NULL;
	struct mbound b;
	struct mview v;
	uint32_t word;
	uint64_t h;
	int err;

	if (!key && klen)
		return -EINVAL;
	if (!key)
		key = empty_bytes;
	if (map.v == 0)
		return -ENOENT;
	mbound_init(seg, &b);
	err = map_root_b(seg, &b, map.v, &v);
	if (err)
		return err;
	if (v.n->keykind != SHG_KIND_BYTES)
		return -EINVAL;
	word = node_word(v.n);
	h = map_hash_bytes(seg, v.n->flags, key, klen);
	MAP_FIND(seg, v, word, h, found, err,
		 bkey_eq(seg, e_[0], key, klen, h));
	if (err)
		return err;
	if (!found)
		return -ENOENT;
	return val_out(seg, v.n->valkind, found[1], out);
}

int64_t shg_map_count(struct shg_seg *seg, struct shg_off map)
{
	struct mview v;
	int err;

	if (map.v == 0)
		return 0;
	err = map_root(seg, map.v, &v);
	if (err)
		return err;
	return v.n->count;
}

/* ---- iteration ------------------------------------------------------------ */

_Static_assert(MAP_COLL_DEPTH + 1 <= sizeof(((struct shg_map_iter *)0)->pos) /
					     sizeof(uint32_t),
	       "iterator stack covers depths 0..13");

int shg_map_iter_init(struct shg_seg *seg, struct shg_off map,
		      struct shg_map_iter *it)
{
	struct mview v;
	int err;

	memset(it, 0, sizeof(*it));
	it->seg = seg;
	if (map.v == 0)
		return 0; /* empty: stack[0] null ends at once */
	err = map_root(seg, map.v, &v);
	if (err)
		return err;
	it->stack[0] = map;
	return 0;
}

static int key_out(struct shg_seg *seg, unsigned kk, uint64_t w,
		   struct shg_val *key)
{
	if (!key)
		return 0;
	if (kk == SHG_KIND_BYTES)
		return val_out(seg, SHG_KIND_BYTES, w, key);
	key->kind = SHG_KIND_U64;
	key->u64 = w;
	return 0;
}

int shg_map_iter_next(struct shg_map_iter *it, struct shg_val *key,
		      struct shg_val *val)
{
	struct shg_seg *seg = it->seg;
	struct mview root, v;
	uint32_t word, d, p;
	int err;

	if (it->stack[0].v == 0)
		return -ENOENT;
	err = map_root(seg, it->stack[0].v, &root);
	if (err)
		goto fail;
	word = node_word(root.n);
	for (;;) {
		d = it->depth;
		if (d > MAP_COLL_DEPTH) {
			err = SHG_ECORRUPT;
			goto fail;
		}
		err = map_view(seg, it->stack[d].v, with_depth(word, d), &v);
		if (err)
			goto fail;
		p = it->pos[d];
		if (p < v.nd) {
			it->pos[d] = p + 1;
			err = key_out(seg, root.n->keykind, v.n->slot[2 * p],
				      key);
			if (!err)
				err = val_out(seg, root.n->valkind,
					      v.n->slot[2 * p + 1], val);
			if (err)
				goto fail;
			return 0;
		}
		if (p < v.nd + v.nc) {
			it->pos[d] = p + 1;
			if (d + 1 > MAP_COLL_DEPTH) {
				err = SHG_ECORRUPT;
				goto fail;
			}
			it->stack[d + 1].v = v.n->slot[2 * v.nd + (p - v.nd)];
			it->pos[d + 1] = 0;
			it->depth = d + 1;
			continue;
		}
		if (d == 0) {
			it->stack[0].v = 0;
			return -ENOENT;
		}
		it->depth = d - 1;
	}
fail:
	it->stack[0].v = 0;
	return err;
}

/* ---- traversal ------------------------------------------------------------ */

int shg__map_children(struct shg_seg *seg, uint64_t off,
		      void (*fn)(void *arg, uint64_t child),
		      void (*rootfn)(void *arg, uint64_t rootref), void *arg)
{
	const struct shg_map_node *n;
	struct mview v;
	unsigned i, kk, vk;
	uint64_t w;
	int err;

	if (!shg__off_ok(seg, off, MAP_HDR, 16))
		return SHG_EBADOFF;
	n = shg__at(seg, off);
	kk = n->keykind;
	vk = n->valkind;
	if ((kk != SHG_KIND_U64 && kk != SHG_KIND_BYTES) || vk < SHG_KIND_U64 ||
	    vk > SHG_KIND_ROOT)
		return SHG_ECORRUPT;
	err = map_view(seg, off, node_word(n), &v);
	if (err)
		return err;
	/* Off the lookup path: also check the slots fit the block itself. */
	if (shg_block_size(seg, (struct shg_off){ off }) < v.size)
		return SHG_ECORRUPT;
	for (i = 0; i < v.nd; i++) {
		w = n->slot[2 * i];
		if (kk == SHG_KIND_BYTES && w != 0 && fn)
			fn(arg, w);
		w = n->slot[2 * i + 1];
		if (w == 0)
			continue;
		if ((vk == SHG_KIND_BYTES || vk == SHG_KIND_NODE) && fn)
			fn(arg, w);
		else if (vk == SHG_KIND_ROOT && rootfn)
			rootfn(arg, w);
	}
	for (i = 0; i < v.nc && fn; i++)
		fn(arg, n->slot[2 * v.nd + i]);
	return 0;
}

/*
 * Import: in @copy, a byte copy of the node at @off, replace bytes keys,
 * bytes/node values and child offsets by what @map gives for them.
 */
int shg__map_remap(struct shg_seg *seg, uint64_t off, void *copy,
		   int (*map)(void *arg, uint64_t child, uint64_t *out),
		   void *arg)
{
	const struct shg_map_node *n;
	struct shg_map_node *c = copy;
	struct mview v;
	unsigned i, kk, vk;
	int err;

	if (!shg__off_ok(seg, off, MAP_HDR, 16))
		return SHG_EBADOFF;
	n = shg__at(seg, off);
	kk = n->keykind;
	vk = n->valkind;
	err = map_view(seg, off, node_word(n), &v);
	if (err)
		return err;
	for (i = 0; i < v.nd; i++) {
		if (kk == SHG_KIND_BYTES && n->slot[2 * i]) {
			err = map(arg, n->slot[2 * i], &c->slot[2 * i]);
			if (err)
				return err;
		}
		if ((vk == SHG_KIND_BYTES || vk == SHG_KIND_NODE) &&
		    n->slot[2 * i + 1]) {
			err = map(arg, n->slot[2 * i + 1], &c->slot[2 * i + 1]);
			if (err)
				return err;
		}
	}
	for (i = 0; i < v.nc; i++) {
		err = map(arg, n->slot[2 * v.nd + i], &c->slot[2 * v.nd + i]);
		if (err)
			return err;
	}
	return 0;
}

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
	uint64_t val; /* value word */
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
		*h = map_hash_bytes(op->seg, op->flags, empty_bytes, 0);
		return 0;
	}
	b = bytes_at(op->seg, ek, &err);
	if (!b)
		return err;
	*h = map_hash_bytes(op->seg, op->flags, b->data, b->len);
	return 0;
}

/* Order of keys in a collision node: u64 ascending, bytes lexicographic. */
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

/* Allocate an owned map node at @depth with room for @size bytes. */
static int node_alloc(struct mop *op, unsigned depth, size_t size,
		      struct shg_map_node **out, uint64_t *off)
{
	struct shg_map_node *m;
	int err;

	err = shg__txn_alloc(op->txn,
			     depth == MAP_COLL_DEPTH ? SHG_TYPE_MAP_COLL :
						       SHG_TYPE_MAP,
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

	err = shg__txn_copy(op->txn, *pslot, v->size > need ? v->size : need,
			    &noff);
	if (err)
		return err;
	*pslot = noff;
	*out = shg__at(op->seg, noff);
	return 0;
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

/* Undo make_pair(): drop a fresh chain of single-child nodes and its end. */
static void drop_pair(struct mop *op, uint64_t off, unsigned depth)
{
	struct mview v;

	for (; depth <= MAP_COLL_DEPTH; depth++) {
		uint64_t next;

		if (map_view(op->seg, off, with_depth(op->word, depth), &v))
			return;
		next = v.nd == 0 && v.nc == 1 ? v.n->slot[0] : 0;
		shg__txn_drop(op->txn, off);
		if (!next)
			return;
		off = next;
	}
}

/*
 * Build the subtree at @depth holding two entries with different keys
 * (hashes @h1, @h2): a chain down to where the hashes differ, or a
 * collision node at depth 13.
 */
static int make_pair(struct mop *op, unsigned depth, uint64_t k1, uint64_t v1,
		     uint64_t h1, uint64_t k2, uint64_t v2, uint64_t h2,
		     uint64_t *out)
{
	struct shg_map_node *m;
	uint32_t b1, b2;
	uint64_t child;
	int err, cmp;

	if (depth == MAP_COLL_DEPTH) {
		err = key_cmp(op, k1, k2, &cmp);
		if (err)
			return err;
		err = node_alloc(op, depth, MAP_HDR + 32, &m, out);
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
		err = node_alloc(op, depth, MAP_HDR + 8, &m, out);
		if (err) {
			drop_pair(op, child, depth + 1);
			return err;
		}
		m->nodemap = b1;
		m->count = 2;
		m->slot[0] = child;
		return 0;
	}
	err = node_alloc(op, depth, MAP_HDR + 32, &m, out);
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

/* Put into a collision node: overwrite, or insert in key order. */
static int coll_put(struct mop *op, uint64_t *pslot, const struct mview *v,
		    int *added)
{
	struct shg_map_node *m;
	unsigned i, at = v->nd;
	uint64_t k, old;
	int err, r, cmp;

	for (i = 0; i < v->nd; i++) {
		r = op_key_eq(op, v->n->slot[2 * i]);
		if (r < 0)
			return r;
		if (r) {
			err = node_mut(op, pslot, v, v->size, &m);
			if (err)
				return err;
			old = m->slot[2 * i + 1];
			m->slot[2 * i + 1] = op->val;
			drop_word(op, op->vk, old);
			*added = 0;
			return 0;
		}
	}
	err = op_key_word(op, &k);
	if (err)
		return err;
	for (i = 0; i < v->nd; i++) {
		err = key_cmp(op, k, v->n->slot[2 * i], &cmp);
		if (err)
			return err;
		if (cmp < 0) {
			at = i;
			break;
		}
	}
	err = node_mut(op, pslot, v, v->size + 16, &m);
	if (err)
		return err;
	memmove(&m->slot[2 * at + 2], &m->slot[2 * at],
		(size_t)(v->nd - at) * 16);
	m->slot[2 * at] = k;
	m->slot[2 * at + 1] = op->val;
	m->count = v->nd + 1;
	*added = 1;
	return 0;
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
	if (depth == MAP_COLL_DEPTH)
		return coll_put(op, pslot, &v, added);
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
			return SHG_ECORRUPT;
		if (v.nd == 0 && v.nc == 1) {
			uint64_t next = v.n->slot[0];

			shg__txn_drop(op->txn, off); /* read before: may free */
			off = next;
			continue;
		}
		if (v.nd != 2 || v.nc != 0)
			return SHG_ECORRUPT;
		r = op_key_eq(op, v.n->slot[0]);
		if (r < 0)
			return r;
		i = r ? 1 : 0;
		if (!r && (r = op_key_eq(op, v.n->slot[2])) <= 0)
			return r < 0 ? r : SHG_ECORRUPT;
		*k = v.n->slot[2 * i];
		*val = v.n->slot[2 * i + 1];
		drop_word(op, op->kk, v.n->slot[2 * (1 - i)]);
		drop_word(op, op->vk, v.n->slot[2 * (1 - i) + 1]);
		shg__txn_drop(op->txn, off);
		return 0;
	}
	return SHG_ECORRUPT;
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
	if (depth == MAP_COLL_DEPTH) { /* count >= 3 here */
		for (i = 0; i < v.nd; i++) {
			r = op_key_eq(op, v.n->slot[2 * i]);
			if (r < 0)
				return r;
			if (r)
				break;
		}
		if (i == v.nd || v.nd < 3)
			return SHG_ECORRUPT;
		err = node_mut(op, pslot, &v, v.size, &m);
		if (err)
			return err;
		k = m->slot[2 * i];
		val = m->slot[2 * i + 1];
		memmove(&m->slot[2 * i], &m->slot[2 * i + 2],
			(size_t)(v.nd - i - 1) * 16);
		m->count = v.nd - 1;
		drop_word(op, op->kk, k);
		drop_word(op, op->vk, val);
		return 0;
	}
	bit = 1u << ((op->h >> (MAP_BITS * depth)) & 31);
	dm = v.n->datamap;
	nm = v.n->nodemap;
	if (dm & bit) {
		i = pc32(dm & (bit - 1));
		r = op_key_eq(op, v.n->slot[2 * i]);
		if (r <= 0)
			return r < 0 ? r : SHG_ECORRUPT;
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
		return SHG_ECORRUPT;
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
	err = node_mut(op, pslot, &v, v.size, &m);
	if (err)
		return err;
	err = del_rec(op, &m->slot[2 * v.nd + j], depth + 1);
	if (!err)
		m->count--;
	return err;
}

/* ---- txn entry points ------------------------------------------------------ */

/* Resolve @ref to its slot and validate the map there. */
static int op_init(struct mop *op, struct shg_txn *txn, struct shg_ref ref,
		   unsigned kk, uint64_t **pslot)
{
	struct mview v;
	int err;

	if (!txn)
		return -EINVAL;
	if (txn->err)
		return txn->err;
	memset(op, 0, sizeof(*op));
	op->txn = txn;
	op->seg = txn->seg;
	err = shg__txn_ref_slot(txn, ref, pslot);
	if (err)
		return err;
	err = map_root(op->seg, **pslot, &v);
	if (err)
		return err;
	if (v.n->keykind != kk)
		return -EINVAL;
	op->word = node_word(v.n);
	op->kk = kk;
	op->vk = v.n->valkind;
	op->flags = v.n->flags;
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

static int op_put(struct mop *op, uint64_t *pslot, const struct shg_val *val)
{
	const uint64_t *found = NULL;
	struct mview v;
	int err, added = 0;

	err = map_view(op->seg, *pslot, op->word, &v);
	if (err)
		return err;
	if (shg_unlikely(v.n->count == UINT32_MAX)) { /* full unless present */
		MAP_FIND(op->seg, v, op->word, op->h, found, err,
			 op_key_eq(op, e_[0]));
		if (err)
			return err;
		if (!found)
			return -EOVERFLOW;
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

int shg_txn_map_put_u64(struct shg_txn *txn, struct shg_ref ref, uint64_t key,
			const struct shg_val *val)
{
	struct mop op;
	uint64_t *pslot;
	int err;

	err = op_init(&op, txn, ref, SHG_KIND_U64, &pslot);
	if (err)
		return txn ? op_fail(txn, err) : err;
	op.key = key;
	op.h = map_hash_u64(op.seg, op.flags, key);
	return op_fail(txn, op_put(&op, pslot, val));
}

int shg_txn_map_put_bytes(struct shg_txn *txn, struct shg_ref ref,
			  const void *key, size_t klen,
			  const struct shg_val *val)
{
	struct mop op;
	uint64_t *pslot;
	int err;

	if ((!key && klen) || klen > UINT32_MAX)
		return -EINVAL;
	err = op_init(&op, txn, ref, SHG_KIND_BYTES, &pslot);
	if (err)
		return txn ? op_fail(txn, err) : err;
	op.kp = key ? key : empty_bytes;
	op.klen = klen;
	op.h = map_hash_bytes(op.seg, op.flags, op.kp, klen);
	return op_fail(txn, op_put(&op, pslot, val));
}

/* Delete: a read-only lookup first, so that an absent key copies nothing. */
static int op_del(struct mop *op, uint64_t *pslot)
{
	const uint64_t *found = NULL;
	struct mview v;
	int err;

	err = map_view(op->seg, *pslot, op->word, &v);
	if (err)
		return err;
	MAP_FIND(op->seg, v, op->word, op->h, found, err, op_key_eq(op, e_[0]));
	if (err)
		return err;
	if (!found)
		return -ENOENT;
	return del_rec(op, pslot, 0);
}

int shg_txn_map_del_u64(struct shg_txn *txn, struct shg_ref ref, uint64_t key)
{
	struct mop op;
	uint64_t *pslot;
	int err;

	err = op_init(&op, txn, ref, SHG_KIND_U64, &pslot);
	if (err)
		return txn ? op_fail(txn, err) : err;
	op.key = key;
	op.h = map_hash_u64(op.seg, op.flags, key);
	return op_fail(txn, op_del(&op, pslot));
}

int shg_txn_map_del_bytes(struct shg_txn *txn, struct shg_ref ref,
			  const void *key, size_t klen)
{
	struct mop op;
	uint64_t *pslot;
	int err;

	if ((!key && klen) || klen > UINT32_MAX)
		return -EINVAL;
	err = op_init(&op, txn, ref, SHG_KIND_BYTES, &pslot);
	if (err)
		return txn ? op_fail(txn, err) : err;
	op.kp = key ? key : empty_bytes;
	op.klen = klen;
	op.h = map_hash_bytes(op.seg, op.flags, op.kp, klen);
	return op_fail(txn, op_del(&op, pslot));
}

/*
 * A new container replaces the value at a slot: a published old value is
 * recorded as unlinked (commit retires what nothing else reaches, as for
 * shg_txn_set_node); an owned one is cleaned up by the commit.
 */
static int unlink_old(struct shg_txn *txn, uint64_t old)
{
	int err;

	if (!old || shg__txn_owns(txn, old))
		return 0;
	err = shg__offvec_push(&txn->unlinked, old);
	if (err)
		return err;
	txn->full_check = true;
	return 0;
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
	err = shg__txn_ref_slot(txn, ref, &slot);
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
	err = unlink_old(txn, *slot);
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
