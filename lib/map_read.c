/* SPDX-License-Identifier: MIT */
/*
 * Persistent hash map, read side: hashing, lookups, count, iteration and
 * the traversal hooks (children, import remapping). Nothing here writes
 * shared memory; every offset read from the segment is checked before it
 * is dereferenced (map_internal.h). The layout and the write side: map.c.
 */
#include <errno.h>
#include <string.h>

#include "map_internal.h"

#if defined(__x86_64__) && !defined(__POPCNT__)
#include <cpuid.h>

bool shg__map_popcnt;

/* Whether the CPU has POPCNT (checked once, at load). */
__attribute__((constructor)) static void map_cpu_init(void)
{
	unsigned a, b, c, d;

	if (__get_cpuid(1, &a, &b, &c, &d))
		shg__map_popcnt = (c & bit_POPCNT) != 0;
}
#endif

/* ---- hashing ------------------------------------------------------------ */

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

int shg__val_out(struct shg_seg *seg, unsigned vk, uint64_t w,
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
			out->bytes.p = shg__map_empty;
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

/* Fill @out from the value word @w of kind @vk (scalars inline). */
static inline __attribute__((always_inline)) int
val_fill(struct shg_seg *seg, unsigned vk, uint64_t w, struct shg_val *out)
{
	if (shg_likely(out && vk <= SHG_KIND_F64)) {
		out->kind = (enum shg_kind)vk;
		out->u64 = w;
		return 0;
	}
	return shg__val_out(seg, vk, w, out);
}

/* shg_map_get_u64() with every check of map_find(): the exact codes. */
static __attribute__((noinline)) int get_u64_checked(struct shg_seg *seg,
						     struct shg_off map,
						     uint64_t key,
						     struct shg_val *out)
{
	const struct fkey k = { .kk = SHG_KIND_U64, .key = key };
	const struct shg_map_node *root;
	const uint64_t *found;
	struct mbound b;
	int err;

	mbound_init(seg, &b);
	root = map_root_hdr(seg, &b, map.v, &err);
	if (!root)
		return err;
	if (root->keykind != SHG_KIND_U64)
		return -EINVAL;
	err = map_find(seg, &b, map.v, node_word(root),
		       map_hash_u64(seg, root->flags, key), &k, &found);
	if (err)
		return err;
	return val_fill(seg, root->valkind, found[1], out);
}

/*
 * The fast path (map_find_u64()) for a root that passes one bound and one
 * comparison of its word: a bitmap node of depth 0 with U64 keys, a value
 * kind in U64..ROOT and known flags, as map_root_hdr() requires. Anything
 * else, and any walk the fast path cannot finish, goes through
 * get_u64_checked().
 */
int shg_map_get_u64(struct shg_seg *seg, struct shg_off map, uint64_t key,
		    struct shg_val *out)
{
	const struct shg_map_node *root;
	const uint64_t *found;
	struct mfast f;
	uint32_t w, vk;
	int r;

	if (map.v == 0)
		return -ENOENT; /* null map: empty */
	mfast_init(seg, &f);
	if (shg_likely(mfast_ok(&f, map.v))) {
		root = (const struct shg_map_node *)(f.base + map.v);
		w = node_word(root);
		vk = (w >> 8) & 0xff;
		if (shg_likely(root->h.type == SHG_TYPE_MAP &&
			       (w & ~kinds_word(0, 0xff, SHG_MAP_F_ALL, 0)) ==
				       kinds_word(SHG_KIND_U64, 0, 0, 0) &&
			       vk - SHG_KIND_U64 <=
				       SHG_KIND_ROOT - SHG_KIND_U64)) {
			uint64_t h = map_hash_u64(seg, (w >> 16) & 0xff, key);

			/* one walk per answer of the CPU check */
			if (shg_likely(map_has_popcnt()))
				r = map_find_u64(&f, map.v, w, h, key, &found,
						 true);
			else
				r = map_find_u64(&f, map.v, w, h, key, &found,
						 false);
			if (r == 0)
				return val_fill(seg, vk, found[1], out);
			if (r < 0)
				return r;
		}
	}
	return get_u64_checked(seg, map, key, out);
}

int shg_map_get_bytes(struct shg_seg *seg, struct shg_off map, const void *key,
		      size_t klen, struct shg_val *out)
{
	struct fkey k = { .kk = SHG_KIND_BYTES, .p = key, .len = klen };
	const struct shg_map_node *root;
	const uint64_t *found;
	struct mbound b;
	int err;

	if (!key && klen)
		return -EINVAL;
	if (!key)
		k.p = shg__map_empty;
	if (map.v == 0)
		return -ENOENT;
	mbound_init(seg, &b);
	root = map_root_hdr(seg, &b, map.v, &err);
	if (!root)
		return err;
	if (root->keykind != SHG_KIND_BYTES)
		return -EINVAL;
	err = map_find(seg, &b, map.v, node_word(root),
		       map_hash_bytes(seg, root->flags, k.p, klen), &k, &found);
	if (err)
		return err;
	return val_fill(seg, root->valkind, found[1], out);
}

/* ---- batched lookups ------------------------------------------------------- */

/*
 * How many keys walk together: enough that the misses of one level of
 * every key are in flight at once (a core tracks 10-20 outstanding
 * lines; each step asks for 2 to 8 lines of one node), few enough that
 * the walk states stay in registers and L1.
 */
#define MAP_GROUP 16u

/* The key @i of a batch as a struct fkey (u64 or bytes, by @kk). */
static inline __attribute__((always_inline)) void
many_key(struct fkey *k, unsigned kk, const uint64_t *ukeys,
	 const void *const *bkeys, const size_t *blens, size_t i)
{
	k->kk = kk;
	if (kk == SHG_KIND_U64) {
		k->key = ukeys[i];
		return;
	}
	k->p = bkeys[i] ? bkeys[i] : shg__map_empty;
	k->len = blens[i];
}

/*
 * Theory of operation. A single lookup walks one key down the map: per
 * level it reads the node's maps and one slot, then follows a child
 * offset; the child's lines come from memory (~100 ns at 1M keys) before
 * the next level can start, so a lookup costs about one miss per level
 * and the core waits through each. A batch walks up to MAP_GROUP keys
 * level by level: one step of each key ends by prefetching the child it
 * goes to (map_step()), and the key is only stepped again after every
 * other key of the group has been stepped, so the misses of the group
 * overlap and each key's wait is shared by the group. The steps make the
 * same checks as map_find(), so corrupt data gives the same codes; a
 * prefetch of a checked offset cannot fault.
 *
 * Memory ordering: none of its own. Like the single lookup it runs on a
 * version made readable by the caller (read section, pin, or the txn's
 * own): that version's nodes are immutable and were published with
 * release before the caller acquired it, so plain loads (and prefetches)
 * of them see their final contents. The backed size is loaded once with
 * acquire (mbound_init()); it only grows.
 */
static inline __attribute__((always_inline)) int64_t
get_many(struct shg_seg *seg, struct shg_off map, unsigned kk, size_t n,
	 const uint64_t *ukeys, const void *const *bkeys, const size_t *blens,
	 struct shg_val *vals, int *res)
{
	const struct shg_map_node *root;
	struct mstep st[MAP_GROUP];
	struct fkey k[MAP_GROUP];
	uint64_t h[MAP_GROUP];
	unsigned live[MAP_GROUP];
	int64_t nfound = 0;
	int bad = 0, err = 0;
	struct mbound b;
	size_t base, i;

	if (n && (!res || (kk == SHG_KIND_U64 ? !ukeys : !bkeys || !blens)))
		return -EINVAL;
	if (n == 0)
		return 0;
	if (map.v == 0) {
		err = -ENOENT; /* null map: empty */
		goto all;
	}
	mbound_init(seg, &b);
	root = map_root_hdr(seg, &b, map.v, &err);
	if (!root)
		goto all;
	if (root->keykind != kk) {
		err = -EINVAL;
		goto all;
	}
	for (base = 0; base < n; base += MAP_GROUP) {
		unsigned g = n - base < MAP_GROUP ? (unsigned)(n - base) :
						    MAP_GROUP;
		unsigned j, nl = 0;

		for (j = 0; j < g; j++) {
			many_key(&k[j], kk, ukeys, bkeys, blens, base + j);
			if (kk == SHG_KIND_BYTES && !bkeys[base + j] &&
			    blens[base + j]) {
				res[base + j] = -EINVAL;
				continue;
			}
			h[j] = kk == SHG_KIND_U64 ?
				       map_hash_u64(seg, root->flags,
						    k[j].key) :
				       map_hash_bytes(seg, root->flags, k[j].p,
						      k[j].len);
			map_step_init(seg, &st[j], map.v, node_word(root),
				      h[j]);
			live[nl++] = j;
		}
		while (nl) {
			unsigned m = 0;

			for (i = 0; i < nl; i++) {
				const uint64_t *found;
				int r;

				j = live[i];
				r = map_step(seg, &b, &st[j], h[j], &k[j],
					     &found);
				if (r == 1) {
					live[m++] = j;
					continue;
				}
				if (r == 0)
					r = val_fill(
						seg, root->valkind, found[1],
						vals ? &vals[base + j] : NULL);
				res[base + j] = r;
				nfound += r == 0;
				if (shg_unlikely(r < 0 && r != -ENOENT &&
						 r != -EINVAL && !bad))
					bad = r;
			}
			nl = m;
		}
	}
	return bad ? bad : nfound;
all:
	for (i = 0; i < n; i++)
		res[i] = err;
	return err == -ENOENT ? 0 : err;
}

int64_t shg_map_get_many_u64(struct shg_seg *seg, struct shg_off map, size_t n,
			     const uint64_t *keys, struct shg_val *vals,
			     int *results)
{
	return get_many(seg, map, SHG_KIND_U64, n, keys, NULL, NULL, vals,
			results);
}

int64_t shg_map_get_many_bytes(struct shg_seg *seg, struct shg_off map,
			       size_t n, const void *const *keys,
			       const size_t *lens, struct shg_val *vals,
			       int *results)
{
	return get_many(seg, map, SHG_KIND_BYTES, n, NULL, keys, lens, vals,
			results);
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
		return shg__val_out(seg, SHG_KIND_BYTES, w, key);
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
			err = SHG_CORRUPT();
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
				err = shg__val_out(seg, root.n->valkind,
						   v.n->slot[2 * p + 1], val);
			if (err)
				goto fail;
			return 0;
		}
		if (p < v.nd + v.nc) {
			it->pos[d] = p + 1;
			if (d + 1 > MAP_COLL_DEPTH) {
				err = SHG_CORRUPT();
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
		return SHG_CORRUPT();
	err = map_view(seg, off, node_word(n), &v);
	if (err)
		return err;
	/* Off the lookup path: also check the slots fit the block itself. */
	if (shg_block_size(seg, (struct shg_off){ off }) < v.size)
		return SHG_CORRUPT();
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
