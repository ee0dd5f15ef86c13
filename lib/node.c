/* SPDX-License-Identifier: MIT */
/*
 * Node validation and typed field access (read side). Every offset that
 * comes out of shared memory is checked here before it is dereferenced:
 * non-null, 16-aligned, the start of an allocated block inside the backed
 * heap, large enough for its header and for the layout its type (from the
 * type table) implies. Nothing here writes shared memory or allocates;
 * callers hold a read section or a pin on a version that reaches the node.
 */
#include <errno.h>
#include <string.h>

#include "graph_internal.h"

/*
 * Minimum block size of a node of built-in type @type (1..6): their
 * layouts are code, not type table records.
 */
static inline size_t builtin_min(uint32_t type)
{
	if (type == SHG_TYPE_VERSION)
		return sizeof(struct shg_version);
	if (type == SHG_TYPE_BYTES)
		return sizeof(struct shg_bytes);
	return sizeof(struct shg_node);
}

/*
 * The common part: @off is a 16-aligned block start of @bs bytes inside
 * the backed heap (or @bs is 0); check its type and sizes. A built-in type
 * needs no table lookup unless its record is asked for.
 */
static inline __attribute__((always_inline)) const struct shg_node *
node_check(struct shg_seg *seg, uint64_t off, size_t bs, size_t min_size,
	   size_t *size, const struct shg_type_rec **rec, int *err)
{
	const struct shg_type_rec *r = NULL;
	const struct shg_node *n;
	uint32_t type;
	int e = SHG_EBADOFF;

	if (shg_unlikely(!bs || !shg__off_ok(seg, off, bs, 16)))
		goto fail;
	e = SHG_ECORRUPT; /* from here on, a failure is corrupt data */
	if (shg_unlikely(bs < min_size || bs < sizeof(struct shg_node)))
		goto fail;
	n = shg__at(seg, off);
	type = n->type;
	if (shg_likely(type - 1u < SHG_TYPE_VEC_NODE)) {
		if (shg_unlikely(bs < builtin_min(type)))
			goto fail;
		if (rec)
			r = shg__type_get(seg, type);
	} else {
		r = shg__type_get(seg, type);
		if (shg_unlikely(!r))
			goto fail;
		if (!(r->flags & SHG_TYPEF_BUILTIN) &&
		    shg_unlikely(bs < shg__user_node_size(r->nfields)))
			goto fail;
	}
	if (size)
		*size = bs;
	if (rec)
		*rec = r;
	return n;
fail:
	if (e == SHG_ECORRUPT)
		(void)SHG_CORRUPT();
	if (err)
		*err = e;
	return NULL;
}

const struct shg_node *shg__node_rec(struct shg_seg *seg, uint64_t off,
				     size_t min_size, size_t *size,
				     const struct shg_type_rec **rec, int *err)
{
	if (shg_unlikely(!off || (off & 15))) {
		if (err)
			*err = SHG_EBADOFF;
		return NULL;
	}
	return node_check(seg, off,
			  shg_block_size(seg, (struct shg_off){ off }),
			  min_size, size, rec, err);
}

const struct shg_node *shg__node(struct shg_seg *seg, uint64_t off,
				 size_t min_size, size_t *size, int *err)
{
	if (shg_unlikely(!off || (off & 15))) {
		if (err)
			*err = SHG_EBADOFF;
		return NULL;
	}
	return node_check(seg, off,
			  shg_block_size(seg, (struct shg_off){ off }),
			  min_size, size, NULL, err);
}

/* Validated bytes node and its length (read once). */
static const struct shg_bytes *bytes_get(struct shg_seg *seg, uint64_t off,
					 uint32_t *len, int *err)
{
	const struct shg_bytes *b;
	size_t size;
	uint32_t l;

	b = (const struct shg_bytes *)shg__node(
		seg, off, sizeof(struct shg_bytes), &size, err);
	if (!b)
		return NULL;
	l = b->len;
	if (b->h.type != SHG_TYPE_BYTES ||
	    l > size - sizeof(struct shg_bytes)) {
		if (err)
			*err = SHG_CORRUPT();
		return NULL;
	}
	*len = l;
	return b;
}

const struct shg_bytes *shg__bytes(struct shg_seg *seg, uint64_t off, int *err)
{
	uint32_t len;

	return bytes_get(seg, off, &len, err);
}

uint32_t shg_node_type(struct shg_seg *seg, struct shg_off node, int *err)
{
	const struct shg_type_rec *r;
	const struct shg_node *n;

	n = shg__node_rec(seg, node.v, 0, NULL, &r, err);
	if (!n)
		return 0;
	if (err)
		*err = 0;
	return shg__type_base(r); /* every version answers its type's id */
}

int shg_node_version(struct shg_seg *seg, struct shg_off node,
		     unsigned *version, unsigned *nfields)
{
	const struct shg_type_rec *r, *q;
	const struct shg_node *n;
	uint32_t id, base;
	unsigned v = 0;
	int err;

	n = shg__node_rec(seg, node.v, 0, NULL, &r, &err);
	if (!n)
		return err;
	if (r->flags & SHG_TYPEF_BUILTIN)
		return -EINVAL;
	/* Versions of a type are listed in id order: count the earlier. */
	base = shg__type_base(r);
	for (id = base; id < r->id; id++) {
		q = shg__type_get(seg, id);
		if (q && shg__type_base(q) == base)
			v++;
	}
	if (version)
		*version = v;
	if (nfields)
		*nfields = r->nfields;
	return 0;
}

/*
 * The raw 8-byte value of field @field of the user node @node, which must
 * have kind @kind. Return: 0, SHG_EBADOFF, SHG_ECORRUPT, -EINVAL.
 */
static int field_get(struct shg_seg *seg, struct shg_off node, unsigned field,
		     enum shg_kind kind, uint64_t *v)
{
	const struct shg_type_rec *r;
	const struct shg_node *n;
	const uint64_t *slot;
	size_t size;
	int err;

	n = shg__node_rec(seg, node.v, 0, &size, &r, &err);
	if (!n)
		return err;
	if (shg_unlikely(field >= r->nfields) &&
	    !(r->flags & SHG_TYPEF_BUILTIN) && field < SHG_MAX_FIELDS) {
		/* A node of an older version: a field that a newer version
		 * appended reads as zero (versions only append, so the
		 * newest has the field's kind). */
		r = shg__type_newest(seg, r);
		if (field >= r->nfields || r->kind[field] != (uint8_t)kind)
			return -EINVAL;
		*v = 0;
		return 0;
	}
	if ((r->flags & SHG_TYPEF_BUILTIN) || field >= r->nfields ||
	    field >= SHG_MAX_FIELDS || r->kind[field] != (uint8_t)kind)
		return -EINVAL;
	if (shg__user_node_size(field + 1) > size)
		return SHG_CORRUPT();
	slot = (const uint64_t *)(n + 1);
	*v = slot[field];
	return 0;
}

int shg__field_word(struct shg_seg *seg, struct shg_off node, unsigned field,
		    enum shg_kind kind, uint64_t *v)
{
	return field_get(seg, node, field, kind, v);
}

int shg_get_u64(struct shg_seg *seg, struct shg_off node, unsigned field,
		uint64_t *out)
{
	if (!out)
		return -EINVAL;
	return field_get(seg, node, field, SHG_KIND_U64, out);
}

int shg_get_i64(struct shg_seg *seg, struct shg_off node, unsigned field,
		int64_t *out)
{
	uint64_t v;
	int err;

	if (!out)
		return -EINVAL;
	err = field_get(seg, node, field, SHG_KIND_I64, &v);
	if (!err)
		*out = (int64_t)v;
	return err;
}

int shg_get_f64(struct shg_seg *seg, struct shg_off node, unsigned field,
		double *out)
{
	uint64_t v;
	int err;

	if (!out)
		return -EINVAL;
	err = field_get(seg, node, field, SHG_KIND_F64, &v);
	if (!err)
		memcpy(out, &v, sizeof(*out));
	return err;
}

int shg_get_bytes(struct shg_seg *seg, struct shg_off node, unsigned field,
		  const void **p, size_t *len)
{
	const struct shg_bytes *b;
	uint32_t l;
	uint64_t v;
	int err;

	if (!p || !len)
		return -EINVAL;
	err = field_get(seg, node, field, SHG_KIND_BYTES, &v);
	if (err)
		return err;
	if (!v) {
		/* Empty: a valid pointer so that callers may memcpy 0 bytes. */
		*p = "";
		*len = 0;
		return 0;
	}
	b = bytes_get(seg, v, &l, &err);
	if (!b)
		return err;
	*p = b->data;
	*len = l;
	return 0;
}

int shg_get_node(struct shg_seg *seg, struct shg_off node, unsigned field,
		 struct shg_off *out)
{
	if (!out)
		return -EINVAL;
	/* The raw offset (0 = null); traversal validates what it follows. */
	return field_get(seg, node, field, SHG_KIND_NODE, &out->v);
}

int shg_get_root(struct shg_seg *seg, struct shg_off node, unsigned field,
		 uint32_t *slot)
{
	uint64_t v;
	int err;

	if (!slot)
		return -EINVAL;
	err = field_get(seg, node, field, SHG_KIND_ROOT, &v);
	if (err)
		return err;
	if (!v) {
		*slot = SHG_ROOT_SLOT_NONE;
		return -ENOENT; /* no root referenced */
	}
	err = shg__rootref_resolve(seg, v, slot);
	if (err == -ENOENT)
		*slot = SHG_ROOTREF_SLOT(v); /* dangling: the slot it named */
	return err;
}

int shg__rootref_resolve(struct shg_seg *seg, uint64_t ref, uint32_t *slot)
{
	uint32_t i = SHG_ROOTREF_SLOT(ref);
	struct shg_rslot *rs;

	if (i >= seg->max_roots)
		return SHG_CORRUPT();
	rs = &seg->roots[i];
	/* Weak reference: the slot must still hold the incarnation that was
	 * referenced (relaxed loads: a racing removal reads as either). */
	if (atomic_load_explicit(&rs->state, memory_order_acquire) !=
		    SHG_ROOT_LIVE ||
	    (uint32_t)__atomic_load_n(&rs->incarnation, __ATOMIC_RELAXED) !=
		    SHG_ROOTREF_INC(ref))
		return -ENOENT;
	*slot = i;
	return 0;
}
