// SPDX-License-Identifier: MIT
/*
 * Replication messages (docs/REPLICATION.md): encoding a map delta between
 * two versions of a root, snapshot frames, validation, and applying either
 * to a replica root. No network here: lib/repl_nats.c carries them.
 *
 * HOW A DELTA IS FOUND. Both versions are pinned by the caller, so every
 * node read here stays allocated and immutable. Path copying gives the
 * property the walk relies on: a map subtree that no commit between the
 * two versions touched is the same block, at the same offset, in both.
 * diff() walks the two hash tries together from their roots and returns
 * at once where the offsets are equal; at a bitmap node it pairs the 32
 * positions (the same position at the same depth covers the same hash
 * bits on both sides). Where both hold a child it descends; anywhere else
 * (an entry against an entry, a child or nothing; a leaf against
 * anything) it gathers the entries under that position on both sides --
 * few, since a position holds a single entry until two keys share its
 * hash prefix -- sorts them by key and merges: a key only in the new
 * version, or with another value, is a put; one only in the old is a
 * delete. The result does not depend on the segment's hash seed: it is a
 * set of key/value changes, applied by the ordinary map API on the
 * replica (whose seed differs).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "graph_internal.h"
#include "map_internal.h"
#include "snapshot.h"

#include <shmgraph/repl.h>
#include <shmgraph/snapshot.h>

#define DELTA_MAGIC "SHGDELT" /* 8 bytes with its NUL */
#define FRAME_MAGIC "SHGRSNP"
#define REPL_VERSION 1u
#define DELTA_HDR 64u
#define FRAME_HDR 48u
#define REPL_TRAILER 8u
#define DELTA_KIND_MAP 1u
#define STATE_ROOT "shg.repl"
#define STATE_LEN 24u

/* ---- gathering and merging entries ------------------------------------ */

struct dent {
	struct sval k; /* key (bytes: points into the segment) */
	uint64_t vw; /* value word as stored */
};

struct dvec {
	struct dent *e;
	size_t n, cap;
};

struct dctx {
	struct shg_seg *seg;
	struct mbound b;
	uint32_t word; /* kinds/flags word of the maps (depth 0) */
	unsigned kk, vk;
	struct buf puts, dels;
	uint32_t nput, ndel;
	struct dvec a, b2; /* scratch for one position */
};

static int key_of(struct dctx *x, uint64_t kw, struct sval *k)
{
	const struct shg_bytes *bn;
	int err = 0;

	memset(k, 0, sizeof(*k));
	k->kind = x->kk;
	if (x->kk == SHG_KIND_U64) {
		k->w = kw;
		return 0;
	}
	if (kw == 0) {
		k->p = shg__map_empty;
		return 0;
	}
	bn = bytes_at(x->seg, kw, &err);
	if (!bn)
		return err;
	k->p = bn->data;
	k->len = bn->len;
	return 0;
}

static int dvec_add(struct dctx *x, struct dvec *v, uint64_t kw, uint64_t vw)
{
	int err;

	if (shg__grow(&v->e, &v->cap, v->n + 1, sizeof(*v->e)))
		return -ENOMEM;
	err = key_of(x, kw, &v->e[v->n].k);
	if (err)
		return err;
	v->e[v->n++].vw = vw;
	return 0;
}

/* Append every entry of the subtree at @off (depth @d) to @v. */
static int gather(struct dctx *x, uint64_t off, unsigned d, struct dvec *v)
{
	struct mview mv;
	unsigned i;
	int err;

	if (d > MAP_COLL_DEPTH)
		return SHG_CORRUPT();
	err = map_view_b(x->seg, &x->b, off, with_depth(x->word, d), &mv);
	for (i = 0; !err && i < mv.nd; i++)
		err = dvec_add(x, v, mv.n->slot[2 * i], mv.n->slot[2 * i + 1]);
	for (i = 0; !err && i < mv.nc; i++)
		err = gather(x, mv.n->slot[2 * mv.nd + i], d + 1, v);
	return err;
}

static int dent_cmp(const void *a, const void *b)
{
	return key_cmp(&((const struct dent *)a)->k,
		       &((const struct dent *)b)->k);
}

static int val_sval(struct dctx *x, uint64_t w, struct sval *s)
{
	struct shg_val v;
	int err;

	memset(s, 0, sizeof(*s));
	s->kind = x->vk;
	s->w = w;
	if (x->vk != SHG_KIND_BYTES)
		return 0;
	err = shg__val_out(x->seg, SHG_KIND_BYTES, w, &v);
	if (err)
		return err;
	s->p = v.bytes.p;
	s->len = (uint32_t)v.bytes.len;
	return 0;
}

static int same_val(struct dctx *x, uint64_t a, uint64_t b)
{
	struct sval sa, sb;
	int err;

	if (a == b)
		return 1;
	if (x->vk != SHG_KIND_BYTES)
		return 0;
	err = val_sval(x, a, &sa);
	if (!err)
		err = val_sval(x, b, &sb);
	if (err)
		return err;
	return sa.len == sb.len && (!sa.len || !memcmp(sa.p, sb.p, sa.len));
}

static int emit_put(struct dctx *x, const struct dent *e)
{
	struct sval v;
	int err = val_sval(x, e->vw, &v);

	if (err)
		return err;
	put_sval(&x->puts, &e->k);
	put_sval(&x->puts, &v);
	x->nput++;
	return x->puts.err;
}

static int emit_del(struct dctx *x, const struct dent *e)
{
	put_sval(&x->dels, &e->k);
	x->ndel++;
	return x->dels.err;
}

/* Merge the sorted old entries @a with the new ones @b into puts/dels. */
static int merge(struct dctx *x, struct dvec *a, struct dvec *b)
{
	size_t i = 0, j = 0;
	int c, err = 0;

	if (a->n > 1) /* (an empty vector may have no array at all) */
		qsort(a->e, a->n, sizeof(*a->e), dent_cmp);
	if (b->n > 1)
		qsort(b->e, b->n, sizeof(*b->e), dent_cmp);
	while (!err && (i < a->n || j < b->n)) {
		if (i == a->n)
			c = 1;
		else if (j == b->n)
			c = -1;
		else
			c = key_cmp(&a->e[i].k, &b->e[j].k);
		if (c < 0) {
			err = emit_del(x, &a->e[i++]);
		} else if (c > 0) {
			err = emit_put(x, &b->e[j++]);
		} else {
			err = same_val(x, a->e[i].vw, b->e[j].vw);
			err = err < 0 ? err : err ? 0 : emit_put(x, &b->e[j]);
			i++;
			j++;
		}
	}
	a->n = 0;
	b->n = 0;
	return err;
}

/* One side of a bitmap position: nothing, an entry, or a child. */
static void position(const struct mview *mv, unsigned p, uint64_t *kw,
		     uint64_t *vw, uint64_t *child, int *what)
{
	uint32_t bit = 1u << p;
	unsigned i;

	*what = 0;
	if (mv->n->datamap & bit) {
		i = pc32(mv->n->datamap & (bit - 1));
		*kw = mv->n->slot[2 * i];
		*vw = mv->n->slot[2 * i + 1];
		*what = 1;
	} else if (mv->n->nodemap & bit) {
		i = pc32(mv->n->nodemap & (bit - 1));
		*child = mv->n->slot[2 * mv->nd + i];
		*what = 2;
	}
}

static int diff(struct dctx *x, uint64_t oa, uint64_t ob, unsigned d);

static int side_gather(struct dctx *x, int what, uint64_t kw, uint64_t vw,
		       uint64_t child, unsigned d, struct dvec *v)
{
	if (what == 1)
		return dvec_add(x, v, kw, vw);
	if (what == 2)
		return gather(x, child, d, v);
	return 0;
}

static int diff_bitmaps(struct dctx *x, const struct mview *va,
			const struct mview *vb, unsigned d)
{
	uint64_t ka = 0, wa = 0, ca = 0, kb = 0, wb = 0, cb = 0;
	int wha, whb, err = 0;
	unsigned p;

	for (p = 0; !err && p < 32; p++) {
		position(va, p, &ka, &wa, &ca, &wha);
		position(vb, p, &kb, &wb, &cb, &whb);
		if (!wha && !whb)
			continue;
		if (wha == 2 && whb == 2) {
			err = diff(x, ca, cb, d + 1);
			continue;
		}
		if (wha == 1 && whb == 1 && ka == kb && wa == wb)
			continue;
		err = side_gather(x, wha, ka, wa, ca, d + 1, &x->a);
		if (!err)
			err = side_gather(x, whb, kb, wb, cb, d + 1, &x->b2);
		if (!err)
			err = merge(x, &x->a, &x->b2);
	}
	return err;
}

/* Diff the subtrees at @oa (old) and @ob (new), both at depth @d. */
static int diff(struct dctx *x, uint64_t oa, uint64_t ob, unsigned d)
{
	struct mview va, vb;
	uint32_t w;
	int err;

	if (oa == ob)
		return 0; /* shared by both versions: unchanged */
	if (d > MAP_COLL_DEPTH)
		return SHG_CORRUPT();
	w = with_depth(x->word, d);
	err = map_view_b(x->seg, &x->b, oa, w, &va);
	if (!err)
		err = map_view_b(x->seg, &x->b, ob, w, &vb);
	if (err)
		return err;
	if (va.n->h.type == SHG_TYPE_MAP && vb.n->h.type == SHG_TYPE_MAP)
		return diff_bitmaps(x, &va, &vb, d);
	err = gather(x, oa, d, &x->a);
	if (!err)
		err = gather(x, ob, d, &x->b2);
	return err ? err : merge(x, &x->a, &x->b2);
}

/* A map root of delta-able kinds: its word, or -ENOTSUP. */
static int delta_map(struct shg_seg *seg, const struct mbound *b, uint64_t off,
		     uint32_t *word)
{
	const struct shg_map_node *n;
	int err;

	if (!off)
		return -ENOTSUP; /* an empty graph: sent as a snapshot */
	if (!mb_hdr_ok(b, off))
		return SHG_EBADOFF;
	if (((const struct shg_node *)shg__at(seg, off))->type != SHG_TYPE_MAP)
		return -ENOTSUP; /* a user node or a vector */
	n = map_root_hdr(seg, b, off, &err);
	if (!n)
		return err;
	if (n->valkind == SHG_KIND_NODE || n->valkind == SHG_KIND_ROOT)
		return -ENOTSUP;
	*word = node_word(n);
	return 0;
}

static void put_hdr_crc(uint8_t *p, size_t at)
{
	put_le(p + at, shg__crc32c(p, at), 4);
}

static void put_trailer(struct buf *o)
{
	uint8_t *t = buf_grow(o, REPL_TRAILER);

	if (!t)
		return;
	put_le(t, SNAP_END, 4);
	put_le(t + 4, shg__crc32c(o->p, o->n - 4), 4);
}

int shg_repl_delta(struct shg_seg *seg, struct shg_off base,
		   struct shg_off next, void **out, size_t *len)
{
	struct shg_version_info vb, vn;
	struct dctx x;
	struct buf o = { 0 };
	uint32_t wb = 0;
	uint8_t *h;
	int err;

	if (!seg || !out || !len)
		return -EINVAL;
	err = shg_version_info(seg, base, &vb);
	if (!err)
		err = shg_version_info(seg, next, &vn);
	if (err)
		return err;
	if (vb.graph != vn.graph || vb.seq >= vn.seq)
		return -EINVAL;
	memset(&x, 0, sizeof(x));
	x.seg = seg;
	mbound_init(seg, &x.b);
	err = delta_map(seg, &x.b, vb.node.v, &wb);
	if (!err)
		err = delta_map(seg, &x.b, vn.node.v, &x.word);
	if (!err && wb != x.word)
		err = -ENOTSUP; /* kinds or flags changed: a new map */
	if (err)
		return err;
	x.kk = ((const struct shg_map_node *)shg__at(seg, vn.node.v))->keykind;
	x.vk = ((const struct shg_map_node *)shg__at(seg, vn.node.v))->valkind;
	err = diff(&x, vb.node.v, vn.node.v, 0);
	h = err ? NULL : buf_grow(&o, DELTA_HDR);
	if (h) {
		memset(h, 0, DELTA_HDR);
		memcpy(h, DELTA_MAGIC, 8);
		put_le(h + 8, REPL_VERSION, 4);
		put_le(h + 12, DELTA_KIND_MAP, 4);
		put_le(h + 24, vn.seq, 8);
		put_le(h + 32, vb.seq, 8);
		put_le(h + 40, vn.commit_ns, 8);
		memcpy(h + 48, &x.word, 4);
		h[51] = 0; /* the depth byte: 0 at a map's root */
		put_le(h + 52, x.nput, 4);
		put_le(h + 56, x.ndel, 4);
		buf_put(&o, x.puts.p, x.puts.n);
		buf_put(&o, x.dels.p, x.dels.n);
		if (!o.err)
			put_le(o.p + 16, o.n + REPL_TRAILER, 8);
		if (!o.err)
			put_hdr_crc(o.p, 60);
		put_trailer(&o);
		err = o.err;
	} else if (!err) {
		err = o.err;
	}
	buf_free(&x.puts);
	buf_free(&x.dels);
	free(x.a.e);
	free(x.b2.e);
	if (err) {
		buf_free(&o);
		return err;
	}
	*out = o.p;
	*len = o.n;
	return 0;
}

int shg_repl_snap(struct shg_root *root, struct shg_off ver, unsigned flags,
		  void **out, size_t *len)
{
	struct shg_version_info vi = { 0 };
	struct buf o = { 0 }, snap = { 0 };
	struct shg_seg *seg;
	uint8_t *h;
	int err = 0;

	if (!root || !out || !len || (flags & ~SHG_REPL_SNAP_RESET))
		return -EINVAL;
	seg = shg__root_seg(root);
	if (ver.v)
		err = shg_version_info(seg, ver, &vi);
	if (err)
		return err;
	h = buf_grow(&o, FRAME_HDR);
	if (!h)
		return -ENOMEM;
	memset(h, 0, FRAME_HDR);
	memcpy(h, FRAME_MAGIC, 8);
	put_le(h + 8, REPL_VERSION, 4);
	put_le(h + 12, flags, 4);
	put_le(h + 24, vi.seq, 8);
	put_le(h + 32, vi.commit_ns, 8);
	err = shg__export_version(seg, root, ver.v, &snap);
	if (!err)
		buf_put(&o, snap.p, snap.n);
	buf_free(&snap);
	if (!err && !o.err) {
		put_le(o.p + 16, o.n + REPL_TRAILER, 8);
		put_hdr_crc(o.p, 44);
		put_trailer(&o);
	}
	err = err ? err : o.err;
	if (err) {
		buf_free(&o);
		return err;
	}
	*out = o.p;
	*len = o.n;
	return 0;
}

/* ---- validation ---------------------------------------------------------- */

/* Read one value of kind @k (snapshot encoding) at the cursor. */
static void read_sval(struct cur *c, unsigned k, struct sval *s)
{
	memset(s, 0, sizeof(*s));
	s->kind = k;
	if (k == SHG_KIND_BYTES) {
		s->len = (uint32_t)cur_le(c, 4);
		s->p = cur_take(c, s->len);
	} else {
		s->w = cur_le(c, 8);
	}
}

/* Check the frame common to both kinds: size, magic, version, CRCs. */
static int check_frame(const uint8_t *p, size_t len, size_t hdr, size_t crc_at,
		       const char *magic)
{
	uint64_t total;

	if (len < 8)
		return SHG_ETOOSMALL;
	if (memcmp(p, magic, 8))
		return SHG_EMAGIC;
	if (len < hdr + REPL_TRAILER)
		return SHG_ETOOSMALL;
	if (get_le(p + crc_at, 4) != shg__crc32c(p, crc_at))
		return -EBADMSG;
	if (get_le(p + 8, 4) != REPL_VERSION)
		return SHG_EVERSION;
	total = get_le(p + 16, 8);
	if (total > len)
		return SHG_ETRUNC;
	if (total < len || total < hdr + REPL_TRAILER)
		return SHG_ECORRUPT;
	if (get_le(p + len - 8, 4) != SNAP_END)
		return SHG_ECORRUPT;
	if (get_le(p + len - 4, 4) != shg__crc32c(p, len - 4))
		return -EBADMSG;
	return 0;
}

static bool delta_kinds_ok(const uint8_t *h)
{
	return (h[48] == SHG_KIND_U64 || h[48] == SHG_KIND_BYTES) &&
	       h[49] >= SHG_KIND_U64 && h[49] <= SHG_KIND_BYTES &&
	       !(h[50] & ~SHG_MAP_F_ALL) && h[51] == 0;
}

/* Walk a validated delta's entries; @fn may be NULL (validation only). */
static int delta_walk(const uint8_t *p, size_t len,
		      int (*fn)(void *arg, bool put, const struct sval *k,
				const struct sval *v),
		      void *arg)
{
	struct cur c = { p, len - REPL_TRAILER, DELTA_HDR, false };
	uint32_t nput = (uint32_t)get_le(p + 52, 4);
	uint32_t ndel = (uint32_t)get_le(p + 56, 4);
	struct sval k, v;
	uint64_t i;
	int err = 0;

	/* Each item takes at least 4 bytes: a forged count fails here. */
	if (((uint64_t)nput * 8 + (uint64_t)ndel * 4) > cur_left(&c))
		return SHG_ECORRUPT;
	for (i = 0; !err && i < (uint64_t)nput + ndel; i++) {
		read_sval(&c, p[48], &k);
		if (i < nput)
			read_sval(&c, p[49], &v);
		if (c.bad)
			return SHG_ECORRUPT;
		if (fn)
			err = fn(arg, i < nput, &k, &v);
	}
	if (!err && cur_left(&c))
		return SHG_ECORRUPT; /* bytes after the last item */
	return err;
}

int shg_repl_parse(const void *msg, size_t len, struct shg_repl_msg_info *info)
{
	const uint8_t *p = msg;
	struct shg_repl_msg_info i;
	int err;

	if (!msg && len)
		return -EINVAL;
	if (len < 8)
		return SHG_ETOOSMALL;
	memset(&i, 0, sizeof(i));
	i.len = len;
	if (!memcmp(p, DELTA_MAGIC, 8)) {
		err = check_frame(p, len, DELTA_HDR, 60, DELTA_MAGIC);
		if (!err &&
		    (get_le(p + 12, 4) != DELTA_KIND_MAP || !delta_kinds_ok(p)))
			err = SHG_ECORRUPT;
		if (!err)
			err = delta_walk(p, len, NULL, NULL);
		i.kind = SHG_REPL_DELTA;
		i.parent = get_le(p + 32, 8);
		i.nput = (uint32_t)get_le(p + 52, 4);
		i.ndel = (uint32_t)get_le(p + 56, 4);
		i.commit_ns = get_le(p + 40, 8);
	} else {
		err = check_frame(p, len, FRAME_HDR, 44, FRAME_MAGIC);
		if (!err && ((get_le(p + 12, 4) & ~SHG_REPL_SNAP_RESET) ||
			     get_le(p + 40, 4)))
			err = SHG_ECORRUPT;
		i.kind = SHG_REPL_SNAP;
		i.flags = (unsigned)get_le(p + 12, 4);
		i.commit_ns = get_le(p + 32, 8);
	}
	if (err)
		return err;
	i.seq = get_le(p + 24, 8);
	if (!i.seq || (i.kind == SHG_REPL_DELTA && i.parent >= i.seq))
		return SHG_ECORRUPT;
	if (info)
		*info = i;
	return 0;
}

/* ---- replica state: root "shg.repl", name -> {seq, commit, applied} ------ */

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int shg_repl_state(struct shg_seg *seg, const char *root,
		   struct shg_repl_state *out)
{
	struct shg_root *r;
	struct shg_off node = { 0 };
	struct shg_val v;
	int err;

	if (!seg || !root || !out)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	err = shg_root_open(seg, STATE_ROOT, &r);
	if (err == -ENOENT)
		return 0;
	if (err)
		return err;
	err = shg_read_lock(seg);
	if (err) {
		shg_root_close(r);
		return err;
	}
	err = shg_current_node(r, &node);
	if (!err && node.v)
		err = shg_map_get_bytes(seg, node, root, strlen(root), &v);
	else if (!err)
		err = -ENOENT;
	if (!err && v.bytes.len != STATE_LEN)
		err = SHG_CORRUPT();
	if (!err) {
		out->seq = get_le(v.bytes.p, 8);
		out->commit_ns = get_le((const uint8_t *)v.bytes.p + 8, 8);
		out->applied_ns = get_le((const uint8_t *)v.bytes.p + 16, 8);
	}
	shg_read_unlock(seg);
	shg_root_close(r);
	return err == -ENOENT ? 0 : err;
}

struct state_put {
	const char *name;
	uint8_t rec[STATE_LEN];
};

static int state_fn(struct shg_txn *txn, void *arg)
{
	struct state_put *s = arg;
	struct shg_val v = { .kind = SHG_KIND_BYTES };
	int err = 0;

	if (!shg_txn_root_node(txn).v)
		err = shg_txn_map_new(txn, SHG_REF_ROOT, SHG_KIND_BYTES,
				      SHG_KIND_BYTES);
	v.bytes.p = s->rec;
	v.bytes.len = STATE_LEN;
	if (!err)
		err = shg_txn_map_put_bytes(txn, SHG_REF_ROOT, s->name,
					    strlen(s->name), &v);
	return err;
}

static int state_set(struct shg_seg *seg, const char *root, uint64_t seq,
		     uint64_t commit_ns)
{
	struct state_put s = { .name = root };
	struct shg_root *r;
	int err;

	put_le(s.rec, seq, 8);
	put_le(s.rec + 8, commit_ns, 8);
	put_le(s.rec + 16, now_ns(), 8);
	err = shg_root_open(seg, STATE_ROOT, &r);
	if (err == -ENOENT) {
		err = shg_root_create(seg, STATE_ROOT, &r);
		if (err == -EEXIST)
			err = shg_root_open(seg, STATE_ROOT, &r);
	}
	if (err)
		return err;
	err = shg_update(r, state_fn, &s, 0);
	shg_root_close(r);
	return err;
}

/* ---- applying ------------------------------------------------------------- */

struct apply_ctx {
	const uint8_t *p;
	size_t len;
	struct shg_seg *seg;
	struct shg_txn *txn;
};

static void to_val(const struct sval *s, struct shg_val *v)
{
	memset(v, 0, sizeof(*v));
	v->kind = (enum shg_kind)s->kind;
	if (s->kind == SHG_KIND_BYTES) {
		v->bytes.p = s->p;
		v->bytes.len = s->len;
	} else {
		v->u64 = s->w;
	}
}

static int apply_item(void *arg, bool put, const struct sval *k,
		      const struct sval *s)
{
	struct apply_ctx *a = arg;
	struct shg_val v;
	int err;

	if (put) {
		to_val(s, &v);
		if (k->kind == SHG_KIND_U64)
			return shg_txn_map_put_u64(a->txn, SHG_REF_ROOT, k->w,
						   &v);
		return shg_txn_map_put_bytes(a->txn, SHG_REF_ROOT, k->p, k->len,
					     &v);
	}
	if (k->kind == SHG_KIND_U64)
		err = shg_txn_map_del_u64(a->txn, SHG_REF_ROOT, k->w);
	else
		err = shg_txn_map_del_bytes(a->txn, SHG_REF_ROOT, k->p, k->len);
	/* Absent: the delta is being applied again after a crash that came
	 * between the data's commit and the state's (docs/REPLICATION.md). */
	return err == -ENOENT ? 0 : err;
}

static int apply_fn(struct shg_txn *txn, void *arg)
{
	struct apply_ctx *a = arg;
	struct shg_off node = shg_txn_root_node(txn);
	struct mbound b;
	uint32_t word;
	int err;

	/* The base is pinned by the txn: its nodes are readable. */
	mbound_init(a->seg, &b);
	err = delta_map(a->seg, &b, node.v, &word);
	if (err == -ENOTSUP || (!err && memcmp(&word, a->p + 48, 4)))
		return -ESTALE; /* not the map this delta continues */
	if (err)
		return err;
	a->txn = txn;
	return delta_walk(a->p, a->len, apply_item, a);
}

int shg_repl_apply(struct shg_seg *seg, const char *root, const void *msg,
		   size_t len, unsigned flags)
{
	struct shg_repl_msg_info mi;
	struct shg_repl_state st;
	struct apply_ctx a = { msg, len, seg, NULL };
	struct shg_root *r;
	int err;

	if (!seg || !root || (flags & ~SHG_REPL_NO_SNAP) ||
	    !strcmp(root, STATE_ROOT))
		return -EINVAL;
	if (shg_read_locked(seg))
		return SHG_ENESTED;
	err = shg_repl_parse(msg, len, &mi);
	if (!err)
		err = shg_repl_state(seg, root, &st);
	if (err)
		return err;
	if (mi.seq <= st.seq)
		return SHG_REPL_SKIPPED; /* applied already */
	if (mi.kind == SHG_REPL_SNAP) {
		if ((flags & SHG_REPL_NO_SNAP) && st.seq &&
		    !(mi.flags & SHG_REPL_SNAP_RESET))
			return SHG_REPL_SKIPPED;
		err = shg_import_mem(seg, root,
				     (const uint8_t *)msg + FRAME_HDR,
				     len - FRAME_HDR - REPL_TRAILER,
				     SHG_IMPORT_REPLACE | SHG_IMPORT_REPLICA);
	} else {
		if (mi.parent != st.seq)
			return -ESTALE; /* a gap: resync from a snapshot */
		err = shg_root_open(seg, root, &r);
		if (err)
			return err == -ENOENT ? -ESTALE : err;
		/* Ours: marked read-only for local writers (again, if a
		 * local user cleared the mark), written by our txns. */
		if (!shg_root_is_replica(r))
			(void)shg_root_set_replica(r, true);
		err = shg_update_flags(r, SHG_TXN_REPLICA, apply_fn, &a, 0);
		shg_root_close(r);
	}
	if (!err)
		err = state_set(seg, root, mi.seq, mi.commit_ns);
	return err;
}
