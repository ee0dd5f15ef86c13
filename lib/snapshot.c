/* SPDX-License-Identifier: MIT */
/*
 * Snapshots: a root's graph as a portable file (shg_export), read back
 * into any segment (shg_import, shg_import_mem); and shg_version_pinned(),
 * which finds an older version of a root that a pin still holds.
 *
 * THE FORMAT (docs/SNAPSHOT.md is the reference)
 *
 * Little-endian, fixed widths, no offsets or addresses: nodes are numbered
 * in the file. A 32-byte header (magic, format version, total length,
 * header CRC32C), four sections in a fixed order -- TYPE (the user types
 * the nodes use), ROOT (the roots that root references name), NODE (one
 * record per node), GRPH (which node is the graph's root) -- each with
 * its own CRC32C, and an 8-byte trailer with the CRC32C of the whole file.
 * Maps and vectors are logical records (their entries and values), not
 * their trie nodes: the map hash is seeded per segment, so the trie shape
 * of a map means nothing in another segment.
 *
 * Canonical form, so that export -> import -> export is byte-identical:
 * nodes are numbered in post-order of a depth-first walk from the graph's
 * root (children in field order, map entries sorted by key, vector
 * elements in index order), a shared node once, at its first visit; types
 * and roots are listed in order of first use. Nothing else (sequence
 * numbers, times, the root's own name) is written.
 *
 * IMPORT SAFETY
 *
 * The file is untrusted. Import first validates all of it in process
 * memory, touching nothing in the segment: lengths against the bytes that
 * remain (so a huge count fails before any allocation it would imply),
 * checksums, names, kinds, type and root indexes, map keys strictly
 * ascending (no duplicates), and every node reference pointing to an
 * EARLIER node -- post-order makes that true for every exported graph, and
 * it makes cycles impossible. Every node must be reachable from the graph
 * root and every listed type and root used. Only then are the types
 * registered and the graph built in one transaction, which is committed
 * whole or aborted (its nodes freed); a root that the import created is
 * removed again if the build fails.
 *
 * EXPORT CONSISTENCY
 *
 * Export pins the root's current version (shg_pin_current) and reads
 * only that version, so concurrent commits do not disturb it; every node
 * is still validated (shg__node_rec and the map/vector readers) before it
 * is read, and a cycle in corrupt data is detected by the walk.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "snapshot.h"

/* ---- CRC32C (Castagnoli), slice-by-8 ----------------------------------- */

static uint32_t crc_tab[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
	uint32_t i, j, c;

	for (i = 0; i < 256; i++) {
		c = i;
		for (j = 0; j < 8; j++)
			c = (c >> 1) ^ (0x82f63b78u & (0u - (c & 1u)));
		crc_tab[0][i] = c;
	}
	for (i = 0; i < 256; i++)
		for (j = 1; j < 8; j++)
			crc_tab[j][i] = (crc_tab[j - 1][i] >> 8) ^
					crc_tab[0][crc_tab[j - 1][i] & 0xff];
}

uint32_t shg__crc32c(const void *buf, size_t n)
{
	const uint8_t *p = buf;
	uint32_t c = 0xffffffffu, lo, hi;

	pthread_once(&crc_once, crc_init);
	for (; n >= 8; n -= 8, p += 8) {
		lo = c ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 |
			  (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
		hi = (uint32_t)p[4] | (uint32_t)p[5] << 8 |
		     (uint32_t)p[6] << 16 | (uint32_t)p[7] << 24;
		c = crc_tab[7][lo & 0xff] ^ crc_tab[6][(lo >> 8) & 0xff] ^
		    crc_tab[5][(lo >> 16) & 0xff] ^ crc_tab[4][lo >> 24] ^
		    crc_tab[3][hi & 0xff] ^ crc_tab[2][(hi >> 8) & 0xff] ^
		    crc_tab[1][(hi >> 16) & 0xff] ^ crc_tab[0][hi >> 24];
	}
	while (n--)
		c = (c >> 8) ^ crc_tab[0][(c ^ *p++) & 0xff];
	return ~c;
}

/* =========================================================================
 * Export
 * ========================================================================= */

/* Offset -> file index (or IDX_BUSY while on the walk's stack). */
#define IDX_BUSY UINT32_MAX
/* One node on the export walk's stack. */
struct frame {
	uint64_t off;
	uint32_t type; /* type id */
	uint8_t kk, vk, flags; /* map / vector kinds and map flags */
	uint64_t *kids; /* child nodes, in canonical order */
	size_t nkids, kcap, pos;
	struct sval *key, *val; /* map entries (sorted) / vector elements */
	size_t nvals;
	uint64_t *words; /* user node: its field words */
	const struct shg_type_info *ti; /* user node: its type */
};

struct ex {
	struct shg_seg *seg;
	uint32_t self_slot; /* the exported root */
	uint64_t self_inc;
	uint64_t max_items; /* bound on a container's size (heap / 8) */
	struct shg__omap idx;
	uint32_t nnodes;
	struct shg_type_info *tinfo[SHG_MAX_TYPES]; /* loaded on first use */
	uint32_t tindex[SHG_MAX_TYPES]; /* type id -> file index + 1 */
	uint32_t ntypes;
	uint32_t *rindex; /* root slot -> file index + 1 (self too) */
	uint32_t nroots;
	struct buf types, roots, nodes;
	struct frame *stk;
	size_t depth, cap;
};

static void frame_free(struct frame *f)
{
	free(f->kids);
	free(f->key);
	free(f->val);
	free(f->words);
	memset(f, 0, sizeof(*f));
}

static const struct shg_type_info *ex_type(struct ex *x, uint32_t id)
{
	struct shg_type_info *ti;

	if (id >= SHG_MAX_TYPES)
		return NULL;
	if (x->tinfo[id])
		return x->tinfo[id];
	ti = malloc(sizeof(*ti));
	if (!ti)
		return NULL;
	if (shg_type_info(x->seg, id, ti) || ti->nfields > SHG_MAX_FIELDS) {
		free(ti);
		return NULL;
	}
	x->tinfo[id] = ti;
	return ti;
}

static int kids_add(struct frame *f, uint64_t off)
{
	if (!off)
		return 0;
	if (shg__grow(&f->kids, &f->kcap, f->nkids + 1, sizeof(*f->kids)))
		return -ENOMEM;
	f->kids[f->nkids++] = off;
	return 0;
}

/*
 * A user node of record @r: written as its type's newest version (the
 * snapshot lists each type once, with its newest fields), the fields its
 * own version lacks as zero, as every reader sees them.
 */
static int expand_user(struct ex *x, struct frame *f, const struct shg_node *n,
		       const struct shg_type_rec *r, size_t size)
{
	uint32_t i, nf, own = r->nfields;
	int err = 0;

	f->ti = ex_type(x, f->type);
	if (!f->ti)
		return SHG_CORRUPT();
	nf = f->ti->nfields;
	if (own > nf || shg__user_node_size(own) > size)
		return SHG_CORRUPT();
	f->words = calloc(nf ? nf : 1, sizeof(uint64_t));
	if (!f->words)
		return -ENOMEM;
	memcpy(f->words, n + 1, own * sizeof(uint64_t));
	for (i = 0; i < nf && !err; i++)
		if (f->ti->field[i].kind == SHG_KIND_NODE)
			err = kids_add(f, f->words[i]);
	return err;
}

/* Map value / vector element @v into the frame's arrays at @i. */
static int take_val(struct frame *f, size_t i, const struct shg_val *v)
{
	struct sval *s = &f->val[i];

	s->kind = v->kind;
	switch (v->kind) {
	case SHG_KIND_BYTES:
		if (v->bytes.len > UINT32_MAX)
			return SHG_CORRUPT();
		s->p = v->bytes.p;
		s->len = (uint32_t)v->bytes.len;
		return 0;
	case SHG_KIND_NODE:
		s->w = v->node.v;
		return kids_add(f, v->node.v);
	case SHG_KIND_ROOT:
		s->w = v->root;
		return 0;
	case SHG_KIND_F64:
		memcpy(&s->w, &v->f64, 8);
		return 0;
	case SHG_KIND_U64:
	case SHG_KIND_I64:
		s->w = v->u64;
		return 0;
	default:
		return SHG_CORRUPT();
	}
}

static int key_qcmp(const void *a, const void *b)
{
	return key_cmp(a, b);
}

/* Sort map entries by key (the same permutation on key[] and val[]). */
static int sort_entries(struct frame *f)
{
	struct sval *k2, *v2;
	size_t i;

	if (f->nvals < 2)
		return 0;
	k2 = malloc(f->nvals * sizeof(*k2));
	v2 = malloc(f->nvals * sizeof(*v2));
	if (!k2 || !v2) {
		free(k2);
		free(v2);
		return -ENOMEM;
	}
	/* Sort the keys themselves, carrying the original index in .ref. */
	for (i = 0; i < f->nvals; i++) {
		k2[i] = f->key[i];
		k2[i].ref = (uint32_t)i;
	}
	qsort(k2, f->nvals, sizeof(*k2), key_qcmp);
	for (i = 0; i < f->nvals; i++) {
		v2[i] = f->val[k2[i].ref];
		k2[i].ref = 0;
	}
	free(f->key);
	free(f->val);
	f->key = k2;
	f->val = v2;
	return 0;
}

static int expand_map(struct ex *x, struct frame *f, const struct shg_node *n)
{
	const uint8_t *h = (const uint8_t *)n;
	struct shg_map_iter it;
	struct shg_val k, v;
	int64_t count;
	size_t i;
	int err;

	f->kk = h[MAP_OFF_KEYKIND];
	f->vk = h[MAP_OFF_VALKIND];
	f->flags = h[MAP_OFF_FLAGS];
	count = shg_map_count(x->seg, (struct shg_off){ f->off });
	if (count < 0)
		return (int)count;
	if ((uint64_t)count > x->max_items || (uint64_t)count > UINT32_MAX)
		return SHG_CORRUPT();
	f->nvals = (size_t)count;
	f->key = calloc(f->nvals + 1, sizeof(*f->key));
	f->val = calloc(f->nvals + 1, sizeof(*f->val));
	if (!f->key || !f->val)
		return -ENOMEM;
	err = shg_map_iter_init(x->seg, (struct shg_off){ f->off }, &it);
	for (i = 0; !err; i++) {
		err = shg_map_iter_next(&it, &k, &v);
		if (err)
			break;
		if (i >= f->nvals || k.kind != f->kk || v.kind != f->vk)
			return SHG_CORRUPT();
		f->key[i].kind = k.kind;
		if (k.kind == SHG_KIND_U64) {
			f->key[i].w = k.u64;
		} else {
			if (k.bytes.len > UINT32_MAX)
				return SHG_CORRUPT();
			f->key[i].p = k.bytes.p;
			f->key[i].len = (uint32_t)k.bytes.len;
		}
		err = take_val(f, i, &v);
	}
	if (err != -ENOENT)
		return err;
	if (i != f->nvals)
		return SHG_CORRUPT();
	err = sort_entries(f);
	if (err)
		return err;
	/* Children again, now in sorted order. */
	f->nkids = 0;
	for (i = 0; i < f->nvals && !err; i++)
		if (f->vk == SHG_KIND_NODE)
			err = kids_add(f, f->val[i].w);
	return err;
}

static int expand_vec(struct ex *x, struct frame *f, const struct shg_node *n)
{
	struct shg_val v;
	int64_t len;
	size_t i;
	int err = 0;

	f->vk = ((const uint8_t *)n)[VEC_OFF_VALKIND];
	len = shg_vec_len(x->seg, (struct shg_off){ f->off });
	if (len < 0)
		return (int)len;
	if ((uint64_t)len > x->max_items)
		return SHG_CORRUPT();
	f->nvals = (size_t)len;
	f->val = calloc(f->nvals + 1, sizeof(*f->val));
	if (!f->val)
		return -ENOMEM;
	for (i = 0; i < f->nvals && !err; i++) {
		err = shg_vec_get(x->seg, (struct shg_off){ f->off }, i, &v);
		if (!err && v.kind != f->vk)
			err = SHG_CORRUPT();
		if (!err)
			err = take_val(f, i, &v);
	}
	return err;
}

/* Fill frame @f for the node at @off: its kind, values and children. */
static int expand(struct ex *x, struct frame *f, uint64_t off)
{
	const struct shg_type_rec *r;
	const struct shg_node *n;
	size_t size;
	int err;

	memset(f, 0, sizeof(*f));
	f->off = off;
	n = shg__node_rec(x->seg, off, 0, &size, &r, &err);
	if (!n)
		return err;
	f->type = shg__type_base(r); /* versions: their type */
	if (!(r->flags & SHG_TYPEF_BUILTIN))
		return expand_user(x, f, n, r, size);
	switch (f->type) {
	case SHG_TYPE_MAP:
		return size < MAP_MIN_SIZE ? SHG_CORRUPT() :
					     expand_map(x, f, n);
	case SHG_TYPE_VEC:
		return size < VEC_MIN_SIZE ? SHG_CORRUPT() :
					     expand_vec(x, f, n);
	case SHG_TYPE_BYTES:
		return 0;
	default:
		/* A version or a container's inner node is not a graph node. */
		return SHG_CORRUPT();
	}
}

/*
 * Root reference to slot @slot: its index + 1 in the file's root table
 * (added on first use), 0 for null. @check_inc: the reference carries an
 * incarnation @inc (node fields); one naming a root that no longer
 * exists exports as null. Map and vector values carry no incarnation: a
 * removed root there is -ENOENT.
 */
static int root_ref(struct ex *x, uint32_t slot, bool check_inc, uint32_t inc,
		    uint32_t *out)
{
	struct shg_seg *seg = x->seg;
	struct shg_rslot *rs;
	const char *end;
	char name[SHG_ROOT_NAME_MAX + 1];
	bool self;
	size_t len;

	if (slot >= seg->max_roots)
		return SHG_CORRUPT();
	rs = &seg->roots[slot];
	if (atomic_load_explicit(&rs->state, memory_order_acquire) !=
		    SHG_ROOT_LIVE ||
	    (check_inc && (uint32_t)__atomic_load_n(&rs->incarnation,
						    __ATOMIC_RELAXED) != inc)) {
		if (!check_inc)
			return -ENOENT;
		*out = 0;
		return 0;
	}
	if (x->rindex[slot]) {
		*out = x->rindex[slot];
		return 0;
	}
	self = slot == x->self_slot &&
	       (!check_inc || inc == (uint32_t)x->self_inc);
	memcpy(name, rs->name, SHG_ROOT_NAME_MAX);
	name[SHG_ROOT_NAME_MAX] = '\0';
	end = memchr(rs->name, 0, sizeof(rs->name));
	len = end ? (size_t)(end - rs->name) : sizeof(rs->name);
	if (!self && (len == 0 || len > SHG_ROOT_NAME_MAX))
		return SHG_CORRUPT();
	buf_u8(&x->roots, self ? ROOTREF_SELF : 0);
	buf_u8(&x->roots, self ? 0 : len);
	if (!self)
		buf_put(&x->roots, name, len);
	x->rindex[slot] = ++x->nroots;
	*out = x->nroots;
	return 0;
}

/* File index + 1 of node @off, which must have been emitted already. */
static int node_ref(struct ex *x, uint64_t off, uint32_t *out)
{
	uint64_t v;

	*out = 0;
	if (!off)
		return 0;
	if (!shg__omap_get(&x->idx, off, &v) || v == IDX_BUSY)
		return SHG_CORRUPT(); /* changed under us, or a cycle */
	*out = (uint32_t)v + 1;
	return 0;
}

/* Resolve a container value's NODE/ROOT reference into ->ref. */
static int val_ref(struct ex *x, struct sval *s)
{
	if (s->kind == SHG_KIND_NODE)
		return node_ref(x, s->w, &s->ref);
	if (s->kind == SHG_KIND_ROOT)
		return root_ref(x, (uint32_t)s->w, false, 0, &s->ref);
	return 0;
}

/* The file index + 1 of type @ti, listing it on first use. */
static uint32_t type_ref(struct ex *x, const struct shg_type_info *ti)
{
	uint32_t i;
	size_t len;

	if (x->tindex[ti->id])
		return x->tindex[ti->id];
	len = strnlen(ti->name, SHG_TYPE_NAME_MAX);
	buf_u8(&x->types, len);
	buf_put(&x->types, ti->name, len);
	buf_u8(&x->types, ti->nfields);
	for (i = 0; i < ti->nfields; i++) {
		len = strnlen(ti->field[i].name, SHG_FIELD_NAME_MAX);
		buf_u8(&x->types, (unsigned)ti->field[i].kind);
		buf_u8(&x->types, len);
		buf_put(&x->types, ti->field[i].name, len);
	}
	x->tindex[ti->id] = ++x->ntypes;
	return x->ntypes;
}

static int emit_user(struct ex *x, struct frame *f)
{
	const struct shg_bytes *b;
	struct sval s;
	uint32_t i;
	int err = 0;

	buf_u8(&x->nodes, REC_USER);
	buf_u32(&x->nodes, type_ref(x, f->ti) - 1);
	for (i = 0; i < f->ti->nfields && !err; i++) {
		memset(&s, 0, sizeof(s));
		s.kind = f->ti->field[i].kind;
		s.w = f->words[i];
		switch (s.kind) {
		case SHG_KIND_BYTES:
			if (s.w) {
				b = shg__bytes(x->seg, s.w, &err);
				if (!b)
					break;
				s.p = b->data;
				s.len = b->len;
			}
			break;
		case SHG_KIND_NODE:
			err = node_ref(x, s.w, &s.ref);
			break;
		case SHG_KIND_ROOT:
			if (s.w)
				err = root_ref(x, SHG_ROOTREF_SLOT(s.w), true,
					       SHG_ROOTREF_INC(s.w), &s.ref);
			break;
		default:
			break;
		}
		if (!err)
			put_sval(&x->nodes, &s);
	}
	return err;
}

static int emit_container(struct ex *x, struct frame *f)
{
	size_t i;
	int err = 0;

	if (f->type == SHG_TYPE_MAP) {
		buf_u8(&x->nodes, REC_MAP);
		buf_u8(&x->nodes, f->kk);
		buf_u8(&x->nodes, f->vk);
		buf_u8(&x->nodes, f->flags);
		buf_u8(&x->nodes, 0);
		buf_u32(&x->nodes, f->nvals);
	} else {
		buf_u8(&x->nodes, REC_VEC);
		buf_u8(&x->nodes, f->vk);
		buf_put(&x->nodes, "\0\0\0", 3);
		buf_u64(&x->nodes, f->nvals);
	}
	for (i = 0; i < f->nvals && !err; i++) {
		if (f->key)
			put_sval(&x->nodes, &f->key[i]);
		err = val_ref(x, &f->val[i]);
		if (!err)
			put_sval(&x->nodes, &f->val[i]);
	}
	return err;
}

/* Write node @f's record; its children all have their indexes. */
static int emit(struct ex *x, struct frame *f)
{
	const struct shg_bytes *b;
	int err;

	if (x->nnodes >= SNAP_MAX_NODES)
		return -E2BIG;
	if (f->ti) {
		err = emit_user(x, f);
	} else if (f->type == SHG_TYPE_BYTES) {
		b = shg__bytes(x->seg, f->off, &err);
		if (b) {
			buf_u8(&x->nodes, REC_BYTES);
			buf_u32(&x->nodes, b->len);
			buf_put(&x->nodes, b->data, b->len);
			err = 0;
		}
	} else {
		err = emit_container(x, f);
	}
	if (!err)
		err = shg__omap_put(&x->idx, f->off, x->nnodes++);
	return err ? err : x->nodes.err;
}

static int ex_push(struct ex *x, uint64_t off)
{
	int err;

	if (shg__grow(&x->stk, &x->cap, x->depth + 1, sizeof(*x->stk)))
		return -ENOMEM;
	err = shg__omap_put(&x->idx, off, IDX_BUSY);
	if (err)
		return err;
	err = expand(x, &x->stk[x->depth], off);
	x->depth++; /* even on error: the frame is freed with the stack */
	return err;
}

/*
 * Iterative post-order walk from @start: a node's record is written once
 * all its children have theirs, so every reference points backwards.
 */
static int ex_walk(struct ex *x, uint64_t start)
{
	struct frame *f;
	uint64_t c;
	uint64_t st;
	int err = 0;

	if (!start)
		return 0;
	err = ex_push(x, start);
	while (!err && x->depth) {
		f = &x->stk[x->depth - 1];
		if (f->pos < f->nkids) {
			c = f->kids[f->pos++];
			if (!shg__omap_get(&x->idx, c, &st))
				err = ex_push(x, c);
			else if (st == IDX_BUSY)
				err = SHG_CORRUPT(); /* a cycle */
			continue;
		}
		err = emit(x, f);
		frame_free(f);
		x->depth--;
	}
	return err;
}

static void sec_put(struct buf *out, uint32_t tag, uint32_t count,
		    const struct buf *payload)
{
	size_t start = out->n;

	buf_u32(out, tag);
	buf_u32(out, count);
	buf_u64(out, payload->n);
	buf_put(out, payload->p, payload->n);
	if (!out->err)
		buf_u32(out, shg__crc32c(out->p + start, out->n - start));
}

/* The whole file: header, the four sections, trailer. */
static int ex_assemble(struct ex *x, uint32_t root_ref_, struct buf *out)
{
	struct buf g = { 0 };
	uint64_t total;
	uint8_t *h;

	buf_u32(&g, root_ref_);
	buf_u32(&g, 0);
	total = SNAP_HDR + SNAP_TRAILER +
		SNAP_NSECTIONS * (uint64_t)(SNAP_SEC_HDR + SNAP_SEC_CRC) +
		x->types.n + x->roots.n + x->nodes.n + g.n;
	h = buf_grow(out, SNAP_HDR);
	if (h) {
		memcpy(h, SNAP_MAGIC, 8);
		put_le(h + 8, SNAP_VERSION, 4);
		put_le(h + 12, 0, 4);
		put_le(h + 16, total, 8);
		put_le(h + 24, SNAP_NSECTIONS, 4);
		put_le(h + 28, shg__crc32c(h, 28), 4);
	}
	sec_put(out, SEC_TYPES, x->ntypes, &x->types);
	sec_put(out, SEC_ROOTS, x->nroots, &x->roots);
	sec_put(out, SEC_NODES, x->nnodes, &x->nodes);
	sec_put(out, SEC_GRAPH, 1, &g);
	buf_free(&g);
	buf_u32(out, SNAP_END);
	if (!out->err)
		buf_u32(out, shg__crc32c(out->p, out->n));
	if (!out->err && out->n != total)
		return SHG_CORRUPT(); /* cannot happen: lengths add up */
	return out->err;
}

static void ex_free(struct ex *x)
{
	size_t i;

	while (x->depth)
		frame_free(&x->stk[--x->depth]);
	free(x->stk);
	for (i = 0; i < SHG_MAX_TYPES; i++)
		free(x->tinfo[i]);
	free(x->rindex);
	shg__omap_free(&x->idx);
	buf_free(&x->types);
	buf_free(&x->roots);
	buf_free(&x->nodes);
	free(x);
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
	ssize_t w;

	while (n) {
		w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Export the pinned version @ver (0: an empty graph) into @out. */
static int export_version(struct shg_seg *seg, struct shg_root *r, uint64_t ver,
			  struct buf *out)
{
	struct shg_version_info vi;
	uint32_t rootref = 0;
	struct ex *x;
	int err = 0;

	x = calloc(1, sizeof(*x));
	if (!x)
		return -ENOMEM;
	x->seg = seg;
	x->self_slot = shg__root_slot(r);
	x->self_inc = shg__root_incarnation(r);
	x->max_items = shg_seg_backed(seg) / 8;
	x->rindex = calloc(seg->max_roots, sizeof(*x->rindex));
	if (!x->rindex)
		err = -ENOMEM;
	if (!err && ver)
		err = shg_version_info(seg, (struct shg_off){ ver }, &vi);
	if (!err && ver)
		err = ex_walk(x, vi.node.v);
	if (!err && ver && vi.node.v)
		err = node_ref(x, vi.node.v, &rootref);
	if (!err)
		err = x->types.err ? x->types.err : x->roots.err;
	if (!err)
		err = ex_assemble(x, rootref, out);
	ex_free(x);
	return err;
}

int shg__export_version(struct shg_seg *seg, struct shg_root *r, uint64_t ver,
			struct buf *out)
{
	return export_version(seg, r, ver, out);
}

int shg_export(struct shg_seg *seg, const char *root, int fd)
{
	struct buf out = { 0 };
	struct shg_pin *pin = NULL;
	struct shg_root *r;
	int err;

	if (!seg || !root || fd < 0)
		return -EINVAL;
	err = shg_root_open(seg, root, &r);
	if (err)
		return err;
	/* One pin: the version read is consistent and stays allocated. */
	err = shg_pin_current(r, &pin);
	if (err == -ENOENT) /* never committed: an empty graph */
		err = 0;
	if (!err)
		err = export_version(seg, r, pin ? shg_pin_version(pin).v : 0,
				     &out);
	if (pin)
		shg_unpin(pin);
	shg_root_close(r);
	if (!err)
		err = write_all(fd, out.p, out.n);
	buf_free(&out);
	return err;
}

/* =========================================================================
 * Older versions held by pins
 * ========================================================================= */

int shg_version_pinned(struct shg_root *root, uint64_t seq, struct shg_off *out)
{
	const struct shg_version *v;
	const struct shg_node *n;
	struct shg_pin_table *t;
	struct shg_pinrec *r;
	struct shg_seg *seg;
	uint32_t slot, graph, i;
	uint64_t toff, ver;
	int err;

	if (!root || !out)
		return -EINVAL;
	seg = shg__root_seg(root);
	slot = shg__root_slot(root);
	if (slot >= seg->max_roots)
		return -EINVAL;
	graph = __atomic_load_n(&seg->roots[slot].graph, __ATOMIC_RELAXED);
	toff = atomic_load_explicit(&seg->hdr->ext[SHG_EXT_PINS],
				    memory_order_acquire);
	if (!toff ||
	    shg_block_size(seg, (struct shg_off){ toff }) < sizeof(*t) ||
	    !shg__off_ok(seg, toff, sizeof(*t), 16))
		return -ENOENT;
	t = shg__at(seg, toff);
	for (i = 0; i < SHG_MAX_PINS; i++) {
		r = &t->rec[i];
		if (!atomic_load_explicit(&r->proc1, memory_order_relaxed))
			continue;
		/* Acquire pairs with the pinner's release of version. */
		ver = atomic_load_explicit(&r->version, memory_order_acquire);
		if (!ver ||
		    __atomic_load_n(&r->root, __ATOMIC_RELAXED) != slot ||
		    __atomic_load_n(&r->graph, __ATOMIC_RELAXED) != graph ||
		    atomic_load_explicit(&r->seq, memory_order_relaxed) != seq)
			continue;
		n = shg__node(seg, ver, sizeof(*v), NULL, &err);
		if (!n || n->type != SHG_TYPE_VERSION || n->graph != graph)
			continue;
		v = (const struct shg_version *)n;
		if (v->seq != seq)
			continue;
		out->v = ver;
		return 0;
	}
	return -ENOENT;
}
