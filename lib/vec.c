/* SPDX-License-Identifier: MIT */
/*
 * Persistent vector: a head node (length, height, value kind) over a
 * 32-way radix trie whose leaves hold the values, in the style of
 * Clojure's PersistentVector (without its tail buffer). Reads index the
 * trie without writing; a txn updates it by path copying like the map
 * (each node copied once per txn, later edits in place).
 *
 * Shape: index i lives in the leaf reached by the 5-bit digits of i, most
 * significant first, from the root at level shift / 5. Trie nodes hold
 * only the slots in use (the rightmost path is partly filled, every other
 * node is full), and the height is minimal for the length (an internal
 * root has at least two children; an empty vector has no trie). So the
 * shape depends only on the length.
 */
#include <errno.h>
#include <string.h>

#include "graph_internal.h"

/*
 * Vector head, SHG_TYPE_VEC.
 *
 *   off  size  field
 *     0    16  struct shg_node header
 *    16     8  len       number of elements
 *    24     4  shift     5 * (trie height - 1); 0 when empty
 *    28     1  valkind   enum shg_kind of the elements
 *    29     3  pad       zero
 *    32     8  root      offset of the trie root (0 when len == 0)
 *    40     8  reserved  zero
 */
struct shg_vec_head {
	struct shg_node h;
	uint64_t len;
	uint32_t shift;
	uint8_t valkind;
	uint8_t pad[3];
	uint64_t root;
	uint64_t reserved;
};
_Static_assert(offsetof(struct shg_vec_head, len) == 16, "vec layout");
_Static_assert(offsetof(struct shg_vec_head, shift) == 24, "vec layout");
_Static_assert(offsetof(struct shg_vec_head, valkind) == 28, "vec layout");
_Static_assert(offsetof(struct shg_vec_head, root) == 32, "vec layout");
_Static_assert(sizeof(struct shg_vec_head) == 48, "vec layout");

/*
 * Trie node, SHG_TYPE_VEC_NODE.
 *
 *   off  size  field
 *     0    16  struct shg_node header
 *    16     4  n         slots in use, 1..32
 *    20     1  level     0 = leaf (values), else children one level down
 *    21     1  valkind   same as the head's
 *    22     2  pad       zero
 *    24   8*n  slot      values (leaf) or child offsets (internal)
 */
struct shg_vec_node {
	struct shg_node h;
	uint32_t n;
	uint8_t level;
	uint8_t valkind;
	uint16_t pad;
	uint64_t slot[];
};
_Static_assert(offsetof(struct shg_vec_node, n) == 16, "vec layout");
_Static_assert(offsetof(struct shg_vec_node, level) == 20, "vec layout");
_Static_assert(offsetof(struct shg_vec_node, slot) == 24, "vec layout");

#define VEC_HDR 24u
#define VEC_BITS 5u
#define VEC_WIDTH 32u
#define VEC_MAX_SHIFT 60u

/* ---- read side ------------------------------------------------------------ */

static int head_at(struct shg_seg *seg, uint64_t off,
		   const struct shg_vec_head **out)
{
	const struct shg_vec_head *hd;
	uint32_t shift;
	uint64_t len, root;

	if (!shg__off_ok(seg, off, sizeof(*hd), 16))
		return SHG_EBADOFF;
	hd = shg__at(seg, off);
	if (hd->h.type != SHG_TYPE_VEC)
		return SHG_CORRUPT();
	len = hd->len;
	shift = hd->shift;
	root = hd->root;
	if (hd->valkind < SHG_KIND_U64 || hd->valkind > SHG_KIND_ROOT ||
	    shift % VEC_BITS || shift > VEC_MAX_SHIFT ||
	    (len == 0) != (root == 0) || (len == 0 && shift != 0))
		return SHG_CORRUPT();
	*out = hd;
	return 0;
}

/* Validated trie node at @level with valkind @vk; *@n = slots in use. */
static inline const struct shg_vec_node *vnode_at(struct shg_seg *seg,
						  uint64_t off, unsigned level,
						  unsigned vk, unsigned *n,
						  int *err)
{
	const struct shg_vec_node *v;
	uint32_t cnt;

	if (shg_unlikely(!shg__off_ok(seg, off, VEC_HDR, 16))) {
		*err = SHG_EBADOFF;
		return NULL;
	}
	v = shg__at(seg, off);
	cnt = v->n;
	if (shg_unlikely(v->h.type != SHG_TYPE_VEC_NODE || v->level != level ||
			 v->valkind != vk || cnt == 0 || cnt > VEC_WIDTH ||
			 !shg__off_ok(seg, off, VEC_HDR + 8ull * cnt, 16))) {
		*err = SHG_CORRUPT();
		return NULL;
	}
	*n = cnt;
	return v;
}

int64_t shg_vec_len(struct shg_seg *seg, struct shg_off vec)
{
	const struct shg_vec_head *hd;
	int err;

	if (vec.v == 0)
		return 0;
	err = head_at(seg, vec.v, &hd);
	if (err)
		return err;
	if (hd->len > INT64_MAX)
		return SHG_CORRUPT();
	return (int64_t)hd->len;
}

int shg_vec_get(struct shg_seg *seg, struct shg_off vec, uint64_t index,
		struct shg_val *out)
{
	const struct shg_vec_head *hd;
	const struct shg_vec_node *v;
	unsigned level, vk, n, idx;
	uint64_t off;
	int err = 0;

	if (vec.v == 0)
		return -ERANGE;
	err = head_at(seg, vec.v, &hd);
	if (err)
		return err;
	if (index >= hd->len)
		return -ERANGE;
	vk = hd->valkind;
	off = hd->root;
	for (level = hd->shift / VEC_BITS;; level--) {
		v = vnode_at(seg, off, level, vk, &n, &err);
		if (!v)
			return err;
		idx = (unsigned)(index >> (VEC_BITS * level)) & (VEC_WIDTH - 1);
		if (idx >= n)
			return SHG_CORRUPT();
		off = v->slot[idx];
		if (level == 0)
			break;
	}
	return shg__val_out(seg, vk, off, out);
}

int shg__vec_children(struct shg_seg *seg, uint64_t off,
		      void (*fn)(void *arg, uint64_t child),
		      void (*rootfn)(void *arg, uint64_t rootref), void *arg)
{
	const struct shg_vec_head *hd;
	const struct shg_vec_node *v;
	unsigned i, n, vk, level;
	uint64_t w;
	int err = 0;

	if (!shg__off_ok(seg, off, VEC_HDR, 16))
		return SHG_EBADOFF;
	if (((const struct shg_node *)shg__at(seg, off))->type ==
	    SHG_TYPE_VEC) {
		err = head_at(seg, off, &hd);
		if (err)
			return err;
		if (shg_block_size(seg, (struct shg_off){ off }) < sizeof(*hd))
			return SHG_CORRUPT();
		if (hd->root && fn)
			fn(arg, hd->root);
		return 0;
	}
	v = shg__at(seg, off);
	level = v->level;
	vk = v->valkind;
	if (level > VEC_MAX_SHIFT / VEC_BITS || vk < SHG_KIND_U64 ||
	    vk > SHG_KIND_ROOT)
		return SHG_CORRUPT();
	v = vnode_at(seg, off, level, vk, &n, &err);
	if (!v)
		return err;
	/* Off the lookup path: also check the slots fit the block itself. */
	if (shg_block_size(seg, (struct shg_off){ off }) < VEC_HDR + 8u * n)
		return SHG_CORRUPT();
	for (i = 0; i < n; i++) {
		w = v->slot[i];
		if (level > 0) {
			if (fn)
				fn(arg, w);
		} else if (w == 0) {
			continue;
		} else if (vk == SHG_KIND_BYTES || vk == SHG_KIND_NODE) {
			if (fn)
				fn(arg, w);
		} else if (vk == SHG_KIND_ROOT && rootfn) {
			rootfn(arg, w);
		}
	}
	return 0;
}

/*
 * Import: in @copy, a byte copy of the node at @off, replace the trie root,
 * child offsets and bytes/node values by what @map gives for them.
 */
int shg__vec_remap(struct shg_seg *seg, uint64_t off, void *copy,
		   int (*map)(void *arg, uint64_t child, uint64_t *out),
		   void *arg)
{
	const struct shg_vec_head *hd;
	const struct shg_vec_node *v;
	struct shg_vec_node *c = copy;
	unsigned i, n, vk, level;
	int err = 0;

	if (!shg__off_ok(seg, off, VEC_HDR, 16))
		return SHG_EBADOFF;
	if (((const struct shg_node *)shg__at(seg, off))->type ==
	    SHG_TYPE_VEC) {
		err = head_at(seg, off, &hd);
		if (err)
			return err;
		if (!hd->root)
			return 0;
		return map(arg, hd->root, &((struct shg_vec_head *)copy)->root);
	}
	v = shg__at(seg, off);
	level = v->level;
	vk = v->valkind;
	if (level > VEC_MAX_SHIFT / VEC_BITS || vk < SHG_KIND_U64 ||
	    vk > SHG_KIND_ROOT)
		return SHG_CORRUPT();
	v = vnode_at(seg, off, level, vk, &n, &err);
	if (!v)
		return err;
	if (level == 0 && vk != SHG_KIND_BYTES && vk != SHG_KIND_NODE)
		return 0;
	for (i = 0; i < n; i++) {
		if (!v->slot[i])
			continue;
		err = map(arg, v->slot[i], &c->slot[i]);
		if (err)
			return err;
	}
	return 0;
}

/* ---- write side ------------------------------------------------------------ */

struct vop {
	struct shg_txn *txn;
	struct shg_seg *seg;
	unsigned vk;
	bool mut; /* vec_mut: make the element's node mutable */
	uint64_t val; /* value word (push/set; vec_mut: the mutable node) */
};

/* Value word @w leaves the vector: its bytes or node go too. */
static void drop_val(struct vop *op, uint64_t w)
{
	if (op->vk == SHG_KIND_BYTES && w != 0)
		shg__txn_drop(op->txn, w);
	else if (op->vk == SHG_KIND_NODE)
		(void)shg__txn_unlink_value(op->txn, w); /* poisons on error */
}

/* A value word made for a failed push/set: bytes are ours to drop, a
 * node is the caller's. */
static void drop_new_val(struct vop *op, uint64_t w)
{
	if (op->vk == SHG_KIND_BYTES)
		drop_val(op, w);
}

/* Make trie node *@pslot mutable with @need slots; updates *@pslot. */
static int vnode_mut(struct vop *op, uint64_t *pslot, unsigned level,
		     unsigned need, struct shg_vec_node **out, unsigned *n)
{
	const struct shg_vec_node *v;
	uint64_t noff;
	int err = 0;

	v = vnode_at(op->seg, *pslot, level, op->vk, n, &err);
	if (!v)
		return err;
	if (need < *n)
		need = *n;
	err = shg__txn_copy(op->txn, *pslot, VEC_HDR + 8u * need, &noff);
	if (err)
		return err;
	*pslot = noff;
	*out = shg__at(op->seg, noff);
	return 0;
}

static int vchain_drop(struct vop *op, uint64_t off, unsigned level,
		       bool with_val);

/* A new chain of single-slot nodes from @level down to a leaf holding w. */
static int vchain(struct vop *op, unsigned level, uint64_t w, uint64_t *out)
{
	struct shg_vec_node *v;
	uint64_t child = w, off;
	unsigned l;
	int err;

	for (l = 0; l <= level; l++) {
		err = shg__txn_alloc(op->txn, SHG_TYPE_VEC_NODE, VEC_HDR + 8,
				     &off);
		if (err) {
			if (l > 0)
				vchain_drop(op, child, l - 1, false);
			return err;
		}
		v = shg__at(op->seg, off);
		v->n = 1;
		v->level = (uint8_t)l;
		v->valkind = (uint8_t)op->vk;
		v->slot[0] = child;
		child = off;
	}
	*out = child;
	return 0;
}

/*
 * Drop the chain of single-slot nodes from @off at @level down, and the
 * value in its leaf if @with_val.
 */
static int vchain_drop(struct vop *op, uint64_t off, unsigned level,
		       bool with_val)
{
	const struct shg_vec_node *v;
	unsigned n;
	uint64_t next;
	int err = 0;

	for (;; level--) {
		v = vnode_at(op->seg, off, level, op->vk, &n, &err);
		if (!v)
			return err;
		if (n != 1)
			return SHG_CORRUPT();
		next = v->slot[0];
		shg__txn_drop(op->txn, off); /* read before: may free */
		if (level == 0) {
			if (with_val)
				drop_val(op, next);
			return 0;
		}
		off = next;
	}
}

/* Append at index @i (== len) below *@pslot at @level. */
static int push_rec(struct vop *op, uint64_t *pslot, unsigned level, uint64_t i)
{
	struct shg_vec_node *m;
	unsigned idx = (unsigned)(i >> (VEC_BITS * level)) & (VEC_WIDTH - 1);
	unsigned n;
	uint64_t chain;
	int err;

	if (level == 0) {
		err = vnode_mut(op, pslot, 0, idx + 1, &m, &n);
		if (err)
			return err;
		if (idx != n)
			return SHG_CORRUPT();
		m->slot[idx] = op->val;
		m->n = idx + 1;
		return 0;
	}
	if ((i & ((1ull << (VEC_BITS * level)) - 1)) == 0) {
		/* a new subtree starts at slot idx */
		err = vchain(op, level - 1, op->val, &chain);
		if (err)
			return err;
		err = vnode_mut(op, pslot, level, idx + 1, &m, &n);
		if (err || idx != n) {
			vchain_drop(op, chain, level - 1, false);
			return err ? err : SHG_CORRUPT();
		}
		m->slot[idx] = chain;
		m->n = idx + 1;
		return 0;
	}
	err = vnode_mut(op, pslot, level, idx + 1, &m, &n);
	if (err)
		return err;
	if (idx + 1 != n)
		return SHG_CORRUPT();
	return push_rec(op, &m->slot[idx], level - 1, i);
}

/* Remove index @i (== len - 1, not 0) below *@pslot at @level. */
static int pop_rec(struct vop *op, uint64_t *pslot, unsigned level, uint64_t i)
{
	struct shg_vec_node *m;
	unsigned idx = (unsigned)(i >> (VEC_BITS * level)) & (VEC_WIDTH - 1);
	unsigned n;
	uint64_t old;
	int err;

	err = vnode_mut(op, pslot, level, 0, &m, &n);
	if (err)
		return err;
	if (idx + 1 != n)
		return SHG_CORRUPT();
	if (level == 0) {
		old = m->slot[idx];
		m->slot[idx] = 0;
		m->n = idx;
		drop_val(op, old);
		return 0;
	}
	if ((i & ((1ull << (VEC_BITS * level)) - 1)) == 0) {
		/* the subtree at slot idx held only i */
		err = vchain_drop(op, m->slot[idx], level - 1, true);
		if (err)
			return err;
		m->slot[idx] = 0;
		m->n = idx;
		return 0;
	}
	return pop_rec(op, &m->slot[idx], level - 1, i);
}

/* Replace index @i below *@pslot at @level. */
static int set_rec(struct vop *op, uint64_t *pslot, unsigned level, uint64_t i)
{
	struct shg_vec_node *m;
	unsigned idx = (unsigned)(i >> (VEC_BITS * level)) & (VEC_WIDTH - 1);
	unsigned n;
	uint64_t old;
	int err;

	err = vnode_mut(op, pslot, level, 0, &m, &n);
	if (err)
		return err;
	if (idx >= n)
		return SHG_CORRUPT();
	if (level > 0)
		return set_rec(op, &m->slot[idx], level - 1, i);
	if (op->mut)
		return shg__txn_slot_mut(op->txn, &m->slot[idx], &op->val);
	old = m->slot[idx];
	m->slot[idx] = op->val;
	drop_val(op, old);
	return 0;
}

/* ---- txn entry points ------------------------------------------------------ */

static int vop_fail(struct shg_txn *txn, int err)
{
	if (err && err != -EINVAL && err != -ERANGE && err != -ENOENT &&
	    err != -EXDEV && !txn->err)
		txn->err = err;
	return err;
}

/* Resolve @ref and validate the head there (read only). */
static int vop_init(struct vop *op, struct shg_txn *txn, struct shg_ref ref,
		    uint64_t **slot, const struct shg_vec_head **hd)
{
	int err;

	if (!txn)
		return -EINVAL;
	if (txn->err)
		return txn->err;
	memset(op, 0, sizeof(*op));
	op->txn = txn;
	op->seg = txn->seg;
	/* A NODE field holding a vector: checked before anything is read. */
	err = shg__txn_container_slot(txn, ref, SHG_TYPE_VEC, slot);
	if (err)
		return err;
	err = head_at(op->seg, **slot, hd);
	if (err)
		return err;
	op->vk = (*hd)->valkind;
	return 0;
}

/* Make the head at *@slot mutable (copied once per txn). */
static int head_mut(struct vop *op, uint64_t *slot, struct shg_vec_head **hd)
{
	uint64_t noff;
	int err;

	err = shg__txn_copy(op->txn, *slot, sizeof(**hd), &noff);
	if (err)
		return err;
	*slot = noff;
	*hd = shg__at(op->seg, noff);
	return 0;
}

int shg_txn_vec_new(struct shg_txn *txn, struct shg_ref ref,
		    enum shg_kind val_kind)
{
	struct shg_vec_head *hd;
	uint64_t *slot, off;
	int err;

	if (!txn || val_kind < SHG_KIND_U64 || val_kind > SHG_KIND_ROOT)
		return -EINVAL;
	if (txn->err)
		return txn->err;
	err = shg__txn_node_slot(txn, ref, &slot);
	if (err)
		return vop_fail(txn, err);
	err = shg__txn_alloc(txn, SHG_TYPE_VEC, sizeof(*hd), &off);
	if (err)
		return vop_fail(txn, err);
	hd = shg__at(txn->seg, off);
	hd->valkind = (uint8_t)val_kind;
	err = shg__txn_unlink_value(txn, *slot); /* the old value */
	if (err) {
		shg__txn_drop(txn, off);
		return vop_fail(txn, err);
	}
	*slot = off;
	return 0;
}

static int vec_push(struct vop *op, struct shg_vec_head *hd)
{
	struct shg_vec_node *r;
	uint64_t len = hd->len, chain, off;
	unsigned level = hd->shift / VEC_BITS;
	int err;

	if (len == 0)
		return vchain(op, 0, op->val, &hd->root);
	if (hd->shift + VEC_BITS < 64 && (len >> (hd->shift + VEC_BITS)) != 0) {
		/* full: a new root above the old one */
		if (hd->shift + VEC_BITS > VEC_MAX_SHIFT)
			return -EOVERFLOW;
		err = vchain(op, level, op->val, &chain);
		if (err)
			return err;
		err = shg__txn_alloc(op->txn, SHG_TYPE_VEC_NODE, VEC_HDR + 16,
				     &off);
		if (err) {
			vchain_drop(op, chain, level, false);
			return err;
		}
		r = shg__at(op->seg, off);
		r->n = 2;
		r->level = (uint8_t)(level + 1);
		r->valkind = (uint8_t)op->vk;
		r->slot[0] = hd->root;
		r->slot[1] = chain;
		hd->root = off;
		hd->shift += VEC_BITS;
		return 0;
	}
	return push_rec(op, &hd->root, level, len);
}

int shg_txn_vec_push(struct shg_txn *txn, struct shg_ref ref,
		     const struct shg_val *val)
{
	const struct shg_vec_head *ro;
	struct shg_vec_head *hd;
	struct vop op;
	uint64_t *slot;
	int err;

	err = vop_init(&op, txn, ref, &slot, &ro);
	if (err)
		return txn ? vop_fail(txn, err) : err;
	if (ro->len == UINT64_MAX)
		return -EOVERFLOW;
	err = shg__txn_val_word(txn, op.vk, val, &op.val);
	if (err)
		return vop_fail(txn, err);
	err = head_mut(&op, slot, &hd);
	if (!err)
		err = vec_push(&op, hd);
	if (err) {
		drop_new_val(&op, op.val);
		return vop_fail(txn, err);
	}
	hd->len++;
	return 0;
}

int shg_txn_vec_set(struct shg_txn *txn, struct shg_ref ref, uint64_t index,
		    const struct shg_val *val)
{
	const struct shg_vec_head *ro;
	struct shg_vec_head *hd;
	struct vop op;
	uint64_t *slot;
	int err;

	err = vop_init(&op, txn, ref, &slot, &ro);
	if (err)
		return txn ? vop_fail(txn, err) : err;
	if (index >= ro->len)
		return -ERANGE;
	err = shg__txn_val_word(txn, op.vk, val, &op.val);
	if (err)
		return vop_fail(txn, err);
	err = head_mut(&op, slot, &hd);
	if (!err)
		err = set_rec(&op, &hd->root, hd->shift / VEC_BITS, index);
	if (err) {
		drop_new_val(&op, op.val);
		return vop_fail(txn, err);
	}
	return 0;
}

int shg_txn_vec_pop(struct shg_txn *txn, struct shg_ref ref)
{
	const struct shg_vec_head *ro;
	const struct shg_vec_node *r;
	struct shg_vec_head *hd;
	struct vop op;
	unsigned level, n;
	uint64_t len, root, *slot;
	int err = 0;

	err = vop_init(&op, txn, ref, &slot, &ro);
	if (err)
		return txn ? vop_fail(txn, err) : err;
	if (ro->len == 0)
		return -ERANGE;
	err = head_mut(&op, slot, &hd);
	if (err)
		return vop_fail(txn, err);
	len = hd->len;
	level = hd->shift / VEC_BITS;
	if (len == 1) {
		err = vchain_drop(&op, hd->root, level, true);
		if (err)
			return vop_fail(txn, err);
		hd->root = 0;
		hd->shift = 0;
		hd->len = 0;
		return 0;
	}
	err = pop_rec(&op, &hd->root, level, len - 1);
	if (err)
		return vop_fail(txn, err);
	hd->len = len - 1;
	if (level == 0)
		return 0;
	r = vnode_at(op.seg, hd->root, level, op.vk, &n, &err);
	if (!r)
		return vop_fail(txn, err);
	if (n == 1) { /* keep the height minimal */
		root = r->slot[0];
		shg__txn_drop(txn, hd->root);
		hd->root = root;
		hd->shift -= VEC_BITS;
	}
	return 0;
}

int shg_txn_vec_mut(struct shg_txn *txn, struct shg_ref ref, uint64_t index,
		    struct shg_off *out)
{
	const struct shg_vec_head *ro;
	struct shg_vec_head *hd;
	struct shg_val cur;
	struct vop op;
	uint64_t *slot;
	int err;

	err = vop_init(&op, txn, ref, &slot, &ro);
	if (err)
		return txn ? vop_fail(txn, err) : err;
	if (!out || op.vk != SHG_KIND_NODE)
		return -EINVAL;
	if (index >= ro->len)
		return -ERANGE;
	/* read first: a null element copies nothing */
	err = shg_vec_get(op.seg, (struct shg_off){ *slot }, index, &cur);
	if (err)
		return vop_fail(txn, err);
	if (!cur.node.v)
		return -ENOENT;
	op.mut = true;
	err = head_mut(&op, slot, &hd);
	if (!err)
		err = set_rec(&op, &hd->root, hd->shift / VEC_BITS, index);
	if (err)
		return vop_fail(txn, err);
	out->v = op.val;
	return 0;
}
