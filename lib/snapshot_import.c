/* SPDX-License-Identifier: MIT */
/*
 * Snapshot import (shg_import, shg_import_mem): validate a snapshot file
 * completely in process memory, then build its graph in one transaction.
 * The format and the safety argument are described in snapshot.c and
 * docs/SNAPSHOT.md.
 *
 * Three passes over the NODE section share one record decoder
 * (decode_rec), which checks every record each time: (1) structure, types
 * and roots used; (2) reachability, descending; (3) the build, inside
 * shg_update() so that a conflicting commit (REPLACE on a busy root)
 * rebuilds on the new base.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "snapshot.h"

struct im_type {
	char name[SHG_TYPE_NAME_MAX + 1];
	uint32_t nfields;
	uint8_t kind[SHG_MAX_FIELDS];
	char fname[SHG_MAX_FIELDS][SHG_FIELD_NAME_MAX + 1];
	uint32_t id; /* in the target segment */
	bool used;
	bool known; /* the target's newest version has these fields and
		     * maybe more: nodes are made as that version */
};

struct im_root {
	bool self;
	bool used;
	char name[SHG_ROOT_NAME_MAX + 1];
	struct shg_root *h; /* opened for the build */
	uint32_t slot;
};

struct im {
	struct im_type *types;
	uint32_t ntypes;
	struct im_root *roots;
	uint32_t nroots;
	struct cur nodes; /* NODE section payload */
	uint32_t nnodes;
	size_t *rec; /* start of each record in the payload */
	uint32_t root_node; /* graph root: index + 1, 0 = none */
	uint8_t *mark; /* reachability */
	uint64_t *off; /* build: node offsets in the txn */
};

/* One record's header, as decoded. */
struct rec {
	unsigned kind; /* REC_* */
	uint32_t type; /* REC_USER: file type index */
	unsigned kk, vk, flags; /* REC_MAP, REC_VEC (vk) */
	uint64_t count; /* fields, entries or elements */
};

struct rec_ops {
	int (*begin)(void *arg, const struct rec *r);
	/* Item @i: a field, a map entry (@k: its key) or an element. */
	int (*item)(void *arg, uint64_t i, const struct sval *k,
		    const struct sval *v);
	int (*end)(void *arg, const struct rec *r);
};

/* Read a value of kind @kind in record @idx; references are checked. */
static int read_val(const struct im *im, struct cur *c, uint32_t idx,
		    unsigned kind, struct sval *v)
{
	memset(v, 0, sizeof(*v));
	v->kind = kind;
	switch (kind) {
	case SHG_KIND_BYTES:
		v->len = (uint32_t)cur_le(c, 4);
		v->p = cur_take(c, v->len);
		break;
	case SHG_KIND_NODE:
		v->ref = (uint32_t)cur_le(c, 4);
		if (v->ref > idx) /* only earlier nodes: no cycles */
			return SHG_CORRUPT();
		break;
	case SHG_KIND_ROOT:
		v->ref = (uint32_t)cur_le(c, 4);
		if (v->ref > im->nroots)
			return SHG_CORRUPT();
		break;
	default:
		v->w = cur_le(c, 8);
		break;
	}
	return c->bad ? SHG_CORRUPT() : 0;
}

/* Decode a record header into @r; the counts are bounded by the bytes. */
static int read_rec_hdr(const struct im *im, struct cur *c, struct rec *r)
{
	unsigned pad;

	memset(r, 0, sizeof(*r));
	r->kind = (unsigned)cur_le(c, 1);
	switch (r->kind) {
	case REC_USER:
		r->type = (uint32_t)cur_le(c, 4);
		if (c->bad || r->type >= im->ntypes)
			return SHG_CORRUPT();
		r->count = im->types[r->type].nfields;
		return 0;
	case REC_MAP:
		r->kk = (unsigned)cur_le(c, 1);
		r->vk = (unsigned)cur_le(c, 1);
		r->flags = (unsigned)cur_le(c, 1);
		pad = (unsigned)cur_le(c, 1);
		r->count = cur_le(c, 4);
		if (c->bad || pad ||
		    (r->kk != SHG_KIND_U64 && r->kk != SHG_KIND_BYTES) ||
		    !kind_ok(r->vk) || (r->flags & ~SHG_MAP_F_ALL) ||
		    r->count >
			    cur_left(c) / (kind_min(r->kk) + kind_min(r->vk)))
			return SHG_CORRUPT();
		return 0;
	case REC_VEC:
		r->vk = (unsigned)cur_le(c, 1);
		pad = (unsigned)cur_le(c, 3);
		r->count = cur_le(c, 8);
		if (c->bad || pad || !kind_ok(r->vk) ||
		    r->count > cur_left(c) / kind_min(r->vk))
			return SHG_CORRUPT();
		return 0;
	case REC_BYTES:
		r->vk = SHG_KIND_BYTES;
		r->count = 1;
		return c->bad ? SHG_CORRUPT() : 0;
	default:
		return SHG_CORRUPT();
	}
}

/*
 * Decode record @idx at @c, checking everything (kinds, references to
 * earlier nodes only, map keys strictly ascending), calling @ops.
 */
static int decode_rec(const struct im *im, struct cur *c, uint32_t idx,
		      const struct rec_ops *ops, void *arg)
{
	struct sval k, prev, v;
	struct rec r;
	unsigned vk;
	uint64_t i;
	int err;

	memset(&prev, 0, sizeof(prev));

	err = read_rec_hdr(im, c, &r);
	if (!err && ops->begin)
		err = ops->begin(arg, &r);
	for (i = 0; !err && i < r.count; i++) {
		vk = r.kind == REC_USER ? im->types[r.type].kind[i] : r.vk;
		if (r.kind == REC_MAP) {
			err = read_val(im, c, idx, r.kk, &k);
			if (!err && i && key_cmp(&prev, &k) >= 0)
				err = SHG_CORRUPT(); /* unsorted or duplicate */
			prev = k;
		}
		if (!err)
			err = read_val(im, c, idx, vk, &v);
		/* Containers cannot hold a null root reference. */
		if (!err && vk == SHG_KIND_ROOT && !v.ref && r.kind != REC_USER)
			err = SHG_CORRUPT();
		if (!err && ops->item)
			err = ops->item(arg, i, r.kind == REC_MAP ? &k : NULL,
					&v);
	}
	if (!err && ops->end)
		err = ops->end(arg, &r);
	return err;
}

/* ---- pass 1: structure ------------------------------------------------- */

/* Printable ASCII name of 1..@max bytes, copied NUL-terminated to @out. */
static int read_name(struct cur *c, size_t max, bool ascii, char *out)
{
	size_t len = (size_t)cur_le(c, 1), i;
	const uint8_t *s = cur_take(c, len);

	if (!s || len == 0 || len > max)
		return SHG_CORRUPT();
	for (i = 0; i < len; i++)
		if (s[i] < 0x20 || s[i] == 0x7f || (ascii && s[i] > 0x7e))
			return SHG_CORRUPT();
	memcpy(out, s, len);
	out[len] = '\0';
	return 0;
}

static int parse_type(struct cur *c, struct im_type *t)
{
	uint32_t i, j;
	int err;

	err = read_name(c, SHG_TYPE_NAME_MAX, true, t->name);
	if (err)
		return err;
	t->nfields = (uint32_t)cur_le(c, 1);
	if (c->bad || t->nfields > SHG_MAX_FIELDS)
		return SHG_CORRUPT();
	for (i = 0; i < t->nfields; i++) {
		t->kind[i] = (uint8_t)cur_le(c, 1);
		if (!kind_ok(t->kind[i]))
			return SHG_CORRUPT();
		err = read_name(c, SHG_FIELD_NAME_MAX, true, t->fname[i]);
		if (err)
			return err;
		for (j = 0; j < i; j++)
			if (!strcmp(t->fname[i], t->fname[j]))
				return SHG_CORRUPT();
	}
	return 0;
}

static int parse_types(struct im *im, struct cur *c, uint32_t count)
{
	uint32_t i, j;
	int err;

	/* A type takes at least 3 bytes: a bound before allocating. */
	if (count > SHG_MAX_TYPES || count > cur_left(c) / 3)
		return SHG_CORRUPT();
	im->types = calloc(count + 1, sizeof(*im->types));
	if (!im->types)
		return -ENOMEM;
	im->ntypes = count;
	for (i = 0; i < count; i++) {
		err = parse_type(c, &im->types[i]);
		if (err)
			return err;
		for (j = 0; j < i; j++)
			if (!strcmp(im->types[i].name, im->types[j].name))
				return SHG_CORRUPT();
	}
	return cur_left(c) ? SHG_CORRUPT() : 0;
}

static int parse_roots(struct im *im, struct cur *c, uint32_t count)
{
	struct im_root *r;
	unsigned flags;
	uint32_t i, j;
	int err;

	if (count > cur_left(c) / 2)
		return SHG_CORRUPT();
	im->roots = calloc(count + 1, sizeof(*im->roots));
	if (!im->roots)
		return -ENOMEM;
	im->nroots = count;
	for (i = 0; i < count; i++) {
		r = &im->roots[i];
		flags = (unsigned)cur_le(c, 1);
		if (flags & ~ROOTREF_SELF)
			return SHG_CORRUPT();
		r->self = flags & ROOTREF_SELF;
		if (r->self) {
			if (cur_le(c, 1) != 0 || c->bad)
				return SHG_CORRUPT();
		} else {
			err = read_name(c, SHG_ROOT_NAME_MAX, false, r->name);
			if (err)
				return err;
		}
		for (j = 0; j < i; j++)
			if (im->roots[j].self == r->self &&
			    !strcmp(im->roots[j].name, r->name))
				return SHG_CORRUPT();
	}
	return cur_left(c) ? SHG_CORRUPT() : 0;
}

static int p1_begin(void *arg, const struct rec *r)
{
	struct im *im = arg;

	if (r->kind == REC_USER)
		im->types[r->type].used = true;
	return 0;
}

static int p1_item(void *arg, uint64_t i, const struct sval *k,
		   const struct sval *v)
{
	struct im *im = arg;

	(void)i;
	(void)k;
	if (v->kind == SHG_KIND_ROOT && v->ref)
		im->roots[v->ref - 1].used = true;
	return 0;
}

static const struct rec_ops p1_ops = { .begin = p1_begin, .item = p1_item };

static int parse_nodes(struct im *im, uint32_t count)
{
	uint32_t i;
	int err;

	/* A record takes at least 5 bytes. */
	if (count > SNAP_MAX_NODES || count > cur_left(&im->nodes) / 5)
		return SHG_CORRUPT();
	im->nnodes = count;
	im->rec = calloc((size_t)count + 1, sizeof(*im->rec));
	if (!im->rec)
		return -ENOMEM;
	for (i = 0; i < count; i++) {
		im->rec[i] = im->nodes.pos;
		err = decode_rec(im, &im->nodes, i, &p1_ops, im);
		if (err)
			return err;
	}
	return cur_left(&im->nodes) ? SHG_CORRUPT() : 0;
}

/* ---- pass 2: reachability ---------------------------------------------- */

static int p2_item(void *arg, uint64_t i, const struct sval *k,
		   const struct sval *v)
{
	struct im *im = arg;

	(void)i;
	(void)k;
	if (v->kind == SHG_KIND_NODE && v->ref)
		im->mark[v->ref - 1] = 1;
	return 0;
}

static const struct rec_ops p2_ops = { .item = p2_item };

/*
 * Every node reachable from the graph root, every type and root used.
 * References point backwards, so one descending sweep marks everything.
 */
static int check_reach(struct im *im)
{
	struct cur c = im->nodes;
	uint32_t i;
	int err;

	if (im->root_node > im->nnodes || (!im->root_node && im->nnodes))
		return SHG_CORRUPT();
	im->mark = calloc((size_t)im->nnodes + 1, 1);
	if (!im->mark)
		return -ENOMEM;
	if (im->root_node)
		im->mark[im->root_node - 1] = 1;
	for (i = im->nnodes; i-- > 0;) {
		if (!im->mark[i])
			return SHG_CORRUPT(); /* nothing later can reach it */
		c.pos = im->rec[i];
		c.bad = false;
		err = decode_rec(im, &c, i, &p2_ops, im);
		if (err)
			return err;
	}
	for (i = 0; i < im->ntypes; i++)
		if (!im->types[i].used)
			return SHG_CORRUPT();
	for (i = 0; i < im->nroots; i++)
		if (!im->roots[i].used)
			return SHG_CORRUPT();
	return 0;
}

/* ---- header and sections ------------------------------------------------ */

/* Section @tag at *@pos (below @end): checksum, then its payload. */
static int sec_get(const uint8_t *p, size_t end, size_t *pos, uint32_t tag,
		   struct cur *out, uint32_t *count)
{
	const uint8_t *s = p + *pos;
	uint64_t plen;

	if (end - *pos < SNAP_SEC_HDR + SNAP_SEC_CRC)
		return SHG_CORRUPT();
	plen = get_le(s + 8, 8);
	if (plen > end - *pos - SNAP_SEC_HDR - SNAP_SEC_CRC)
		return SHG_CORRUPT();
	if (shg__crc32c(s, SNAP_SEC_HDR + plen) !=
	    (uint32_t)get_le(s + SNAP_SEC_HDR + plen, 4))
		return -EBADMSG;
	if (get_le(s, 4) != tag)
		return SHG_CORRUPT();
	*count = (uint32_t)get_le(s + 4, 4);
	out->p = s + SNAP_SEC_HDR;
	out->n = plen;
	out->pos = 0;
	out->bad = false;
	*pos += SNAP_SEC_HDR + plen + SNAP_SEC_CRC;
	return 0;
}

/* Magic, version, header checksum, length, trailer checksum. */
static int check_frame(const uint8_t *p, size_t len)
{
	uint64_t total;

	if (len < 8)
		return SHG_ETOOSMALL;
	if (memcmp(p, SNAP_MAGIC, 8))
		return SHG_EMAGIC;
	if (len < SNAP_HDR)
		return SHG_ETOOSMALL;
	if (get_le(p + 8, 4) != SNAP_VERSION)
		return SHG_EVERSION;
	if (shg__crc32c(p, 28) != (uint32_t)get_le(p + 28, 4))
		return -EBADMSG;
	total = get_le(p + 16, 8);
	if (get_le(p + 12, 4) != 0 || get_le(p + 24, 4) != SNAP_NSECTIONS ||
	    total < SNAP_HDR + SNAP_TRAILER)
		return SHG_CORRUPT();
	if (total > len)
		return SHG_ETRUNC;
	if (total < len)
		return SHG_CORRUPT(); /* bytes after the end */
	if (get_le(p + len - 8, 4) != SNAP_END)
		return SHG_CORRUPT();
	if (shg__crc32c(p, len - 4) != (uint32_t)get_le(p + len - 4, 4))
		return -EBADMSG;
	return 0;
}

/* Validate the whole file into @im; nothing in any segment is touched. */
static int im_parse(struct im *im, const uint8_t *p, size_t len)
{
	size_t pos = SNAP_HDR, end;
	struct cur c;
	uint32_t count;
	int err;

	err = check_frame(p, len);
	if (err)
		return err;
	end = len - SNAP_TRAILER;
	err = sec_get(p, end, &pos, SEC_TYPES, &c, &count);
	if (!err)
		err = parse_types(im, &c, count);
	if (!err)
		err = sec_get(p, end, &pos, SEC_ROOTS, &c, &count);
	if (!err)
		err = parse_roots(im, &c, count);
	if (!err)
		err = sec_get(p, end, &pos, SEC_NODES, &im->nodes, &count);
	if (!err)
		err = parse_nodes(im, count);
	if (!err)
		err = sec_get(p, end, &pos, SEC_GRAPH, &c, &count);
	if (err)
		return err;
	im->root_node = (uint32_t)cur_le(&c, 4);
	if (count != 1 || cur_le(&c, 4) != 0 || c.bad || cur_left(&c) ||
	    pos != end)
		return SHG_CORRUPT();
	return check_reach(im);
}

/* ---- pass 3: build ------------------------------------------------------ */

struct bctx {
	struct im *im;
	struct shg_txn *txn;
	uint32_t idx; /* record being built */
	unsigned kind;
	uint64_t cur; /* its node */
};

static int b_begin(void *arg, const struct rec *r)
{
	struct bctx *b = arg;
	struct shg_off o = SHG_OFF_NULL;
	int err;

	b->kind = r->kind;
	b->cur = 0;
	switch (r->kind) {
	case REC_USER:
		err = shg_txn_node_new(b->txn, b->im->types[r->type].id, &o);
		b->cur = o.v;
		return err;
	case REC_MAP:
		/* Built at the graph root's slot, then moved out of it. */
		err = shg_txn_set_node(b->txn, SHG_REF_ROOT, SHG_OFF_NULL);
		return err ? err :
			     shg__txn_map_new_flags(b->txn, SHG_REF_ROOT,
						    (enum shg_kind)r->kk,
						    (enum shg_kind)r->vk,
						    r->flags);
	case REC_VEC:
		err = shg_txn_set_node(b->txn, SHG_REF_ROOT, SHG_OFF_NULL);
		return err ? err :
			     shg_txn_vec_new(b->txn, SHG_REF_ROOT,
					     (enum shg_kind)r->vk);
	default:
		return 0;
	}
}

static void to_val(struct bctx *b, const struct sval *v, struct shg_val *out)
{
	memset(out, 0, sizeof(*out));
	out->kind = (enum shg_kind)v->kind;
	switch (v->kind) {
	case SHG_KIND_BYTES:
		out->bytes.p = v->p;
		out->bytes.len = v->len;
		break;
	case SHG_KIND_NODE:
		out->node.v = v->ref ? b->im->off[v->ref - 1] : 0;
		break;
	case SHG_KIND_ROOT:
		out->root = b->im->roots[v->ref - 1].slot;
		break;
	default:
		memcpy(&out->u64, &v->w, 8); /* F64 bits too */
		break;
	}
}

static int set_field(struct bctx *b, unsigned i, const struct sval *v)
{
	struct shg_ref ref = { { b->cur }, i };
	struct shg_val val;
	double d;

	switch (v->kind) {
	case SHG_KIND_U64:
		return shg_txn_set_u64(b->txn, ref, v->w);
	case SHG_KIND_I64:
		return shg_txn_set_i64(b->txn, ref, (int64_t)v->w);
	case SHG_KIND_F64:
		memcpy(&d, &v->w, 8);
		return shg_txn_set_f64(b->txn, ref, d);
	case SHG_KIND_BYTES:
		return shg_txn_set_bytes(b->txn, ref, v->p, v->len);
	case SHG_KIND_NODE:
		to_val(b, v, &val);
		return shg_txn_set_node(b->txn, ref, val.node);
	default: /* ROOT */
		return shg_txn_set_root(b->txn, ref,
					v->ref ? b->im->roots[v->ref - 1].h :
						 NULL);
	}
}

static int b_item(void *arg, uint64_t i, const struct sval *k,
		  const struct sval *v)
{
	struct bctx *b = arg;
	struct shg_val val;

	switch (b->kind) {
	case REC_USER:
		return set_field(b, (unsigned)i, v);
	case REC_MAP:
		to_val(b, v, &val);
		if (k->kind == SHG_KIND_U64)
			return shg_txn_map_put_u64(b->txn, SHG_REF_ROOT, k->w,
						   &val);
		return shg_txn_map_put_bytes(b->txn, SHG_REF_ROOT, k->p, k->len,
					     &val);
	case REC_VEC:
		to_val(b, v, &val);
		return shg_txn_vec_push(b->txn, SHG_REF_ROOT, &val);
	default: /* REC_BYTES */
		return shg__txn_bytes(b->txn, v->p, v->len, &b->cur);
	}
}

static int b_end(void *arg, const struct rec *r)
{
	struct bctx *b = arg;

	if (r->kind == REC_MAP || r->kind == REC_VEC) {
		b->cur = shg_txn_root_node(b->txn).v;
		b->im->off[b->idx] = b->cur;
		return shg_txn_set_node(b->txn, SHG_REF_ROOT, SHG_OFF_NULL);
	}
	b->im->off[b->idx] = b->cur;
	return 0;
}

static const struct rec_ops build_ops = { b_begin, b_item, b_end };

/* shg_update() body: the whole graph in @txn (re-run after a conflict). */
static int build(struct shg_txn *txn, void *arg)
{
	struct bctx b = { .im = arg, .txn = txn };
	struct im *im = b.im;
	struct cur c = im->nodes;
	struct shg_off top = SHG_OFF_NULL;
	int err = 0;

	c.pos = 0;
	c.bad = false;
	/* The old graph (REPLACE) leaves in this commit. */
	err = shg_txn_set_node(txn, SHG_REF_ROOT, SHG_OFF_NULL);
	for (b.idx = 0; !err && b.idx < im->nnodes; b.idx++)
		err = decode_rec(im, &c, b.idx, &build_ops, &b);
	if (!err && im->root_node)
		top.v = im->off[im->root_node - 1];
	return err ? err : shg_txn_set_node(txn, SHG_REF_ROOT, top);
}

/*
 * Whether type @t conflicts with a registered type of the same name. The
 * fields both have must agree (the schema evolution rule); if the
 * target's newest version has at least @t's fields, @t is known (its
 * nodes are made as that version, the extra fields zero), else
 * registration makes @t a new version (or gives -EEXIST if another
 * process registered a conflicting version meanwhile).
 */
static int type_conflict(struct shg_seg *seg, struct im_type *t)
{
	struct shg_type_info *ti;
	uint32_t id, f, m;
	int err = shg_type_find(seg, t->name, &id);

	if (err == -ENOENT)
		return 0;
	if (err)
		return err;
	ti = malloc(sizeof(*ti));
	if (!ti)
		return -ENOMEM;
	err = shg_type_info(seg, id, ti);
	m = err ? 0 : ti->nfields < t->nfields ? ti->nfields : t->nfields;
	for (f = 0; !err && f < m; f++)
		if (ti->field[f].kind != (enum shg_kind)t->kind[f] ||
		    strcmp(ti->field[f].name, t->fname[f]))
			err = -EEXIST;
	if (!err && ti->nfields >= t->nfields) {
		t->known = true;
		t->id = id;
	}
	free(ti);
	return err;
}

/* Check every type, then register them (so a conflict registers none). */
static int register_types(struct im *im, struct shg_seg *seg)
{
	struct shg_field_def defs[SHG_MAX_FIELDS];
	struct im_type *t;
	uint32_t i, f;
	int err;

	for (i = 0; i < im->ntypes; i++) {
		err = type_conflict(seg, &im->types[i]);
		if (err)
			return err;
	}
	for (i = 0; i < im->ntypes; i++) {
		t = &im->types[i];
		if (t->known)
			continue;
		for (f = 0; f < t->nfields; f++) {
			defs[f].name = t->fname[f];
			defs[f].kind = (enum shg_kind)t->kind[f];
		}
		err = shg_type_register(seg, t->name, defs, t->nfields, &t->id);
		if (err)
			return err;
	}
	return 0;
}

/* Open the roots that references name (all but the target itself). */
static int open_roots(struct im *im, struct shg_seg *seg)
{
	struct im_root *r;
	uint32_t i;
	int err;

	for (i = 0; i < im->nroots; i++) {
		r = &im->roots[i];
		if (r->self)
			continue;
		err = shg_root_open(seg, r->name, &r->h);
		if (err)
			return err;
		r->slot = shg__root_slot(r->h);
	}
	return 0;
}

/* References to the exported root point to @target. */
static void self_roots(struct im *im, struct shg_root *target)
{
	uint32_t i;

	for (i = 0; i < im->nroots; i++) {
		if (!im->roots[i].self)
			continue;
		im->roots[i].h = target;
		im->roots[i].slot = shg__root_slot(target);
	}
}

static void close_roots(struct im *im)
{
	uint32_t i;

	for (i = 0; i < im->nroots; i++) {
		if (im->roots[i].h && !im->roots[i].self)
			shg_root_close(im->roots[i].h);
		im->roots[i].h = NULL;
	}
}

/*
 * Build the validated @im under root @name. Everything that can be
 * refused without changing the segment is checked first: the target
 * root, the referenced roots, type conflicts. Then types are registered,
 * the root created if needed, and the graph committed.
 */
static int im_apply(struct im *im, struct shg_seg *seg, const char *name,
		    unsigned flags)
{
	struct shg_root *target = NULL;
	bool created = false;
	int err;

	err = shg_root_open(seg, name, &target);
	if (!err && !(flags & SHG_IMPORT_REPLACE)) {
		shg_root_close(target);
		return -EEXIST;
	}
	if (err && err != -ENOENT)
		return err;
	/* A read-only replica root is written only by its follower. */
	if (target && !(flags & SHG_IMPORT_REPLICA) &&
	    shg_root_is_replica(target)) {
		shg_root_close(target);
		return SHG_EREPLICA;
	}
	im->off = calloc((size_t)im->nnodes + 1, sizeof(*im->off));
	err = im->off ? open_roots(im, seg) : -ENOMEM;
	if (!err)
		err = register_types(im, seg);
	SHG_CRASH_POINT("import.types_registered");
	if (!err && !target) {
		err = shg_root_create(seg, name, &target);
		created = !err;
	}
	SHG_CRASH_POINT("import.root_ready");
	if (!err) {
		self_roots(im, target);
		/* The follower's import: the root is its replica from the
		 * first version on (marked before the commit). */
		if (flags & SHG_IMPORT_REPLICA)
			(void)shg_root_set_replica(target, true);
		err = shg_update_flags(
			target,
			(flags & SHG_IMPORT_REPLICA) ? SHG_TXN_REPLICA : 0,
			build, im, 0);
	}
	SHG_CRASH_POINT("import.built");
	close_roots(im);
	if (err && created) {
		/* Undo the creation; if even that fails the root stays empty
		 * (never committed) and the first error is what matters. */
		int rm;

		(void)shg_root_set_replica(target, false);
		rm = shg_root_remove(seg, name);

		(void)rm;
	}
	if (target)
		shg_root_close(target);
	return err;
}

static void im_free(struct im *im)
{
	free(im->types);
	free(im->roots);
	free(im->rec);
	free(im->mark);
	free(im->off);
}

int shg_import_mem(struct shg_seg *seg, const char *root, const void *buf,
		   size_t len, unsigned flags)
{
	struct im im;
	int err;

	if (!seg || !root || (!buf && len) ||
	    (flags & ~(SHG_IMPORT_REPLACE | SHG_IMPORT_REPLICA)))
		return -EINVAL;
	if (shg_read_locked(seg))
		return SHG_ENESTED;
	/* A snapshot is smaller than the graph it holds. */
	if (len > shg_seg_capacity(seg))
		return -EFBIG;
	memset(&im, 0, sizeof(im));
	err = im_parse(&im, buf ? buf : (const void *)SNAP_MAGIC, len);
	if (!err)
		err = im_apply(&im, seg, root, flags);
	im_free(&im);
	return err;
}

#define READ_CHUNK 65536u

int shg_import(struct shg_seg *seg, const char *root, int fd, unsigned flags)
{
	struct buf in = { 0 };
	uint64_t cap;
	uint8_t *d;
	ssize_t r;
	int err = 0;

	if (!seg || !root || fd < 0)
		return -EINVAL;
	cap = shg_seg_capacity(seg);
	for (;;) {
		d = buf_grow(&in, READ_CHUNK);
		if (!d) {
			err = in.err;
			break;
		}
		r = read(fd, d, READ_CHUNK);
		in.n -= READ_CHUNK - (r > 0 ? (size_t)r : 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			err = -errno;
			break;
		}
		if (r == 0)
			break; /* end of file */
		if (in.n > cap) {
			err = -EFBIG; /* cannot fit: see shg_import_mem */
			break;
		}
	}
	if (!err)
		err = shg_import_mem(seg, root, in.p, in.n, flags);
	buf_free(&in);
	return err;
}
