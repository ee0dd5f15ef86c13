/* SPDX-License-Identifier: MIT */
/*
 * bench_graph - object graphs through the public graph API (graph.h),
 * against the same structure edited in place under a process-shared
 * rwlock in shared memory (the locked baseline; no versions, no copies):
 *
 *   graph_edit     one txn edits one random leaf of a complete binary tree
 *                  of depth D (8, 12, 16 by default): shg_txn_mut down the
 *                  path (D nodes copied once each), shg_txn_set_u64, commit.
 *                  With --txn-size K, K random leaves per txn (shared path
 *                  prefixes copied once: batched copy-on-write).
 *   graph_read     one read section walks from the root to a random leaf
 *                  (D-1 shg_get_node + shg_get_u64), value verified.
 *   wide_edit      edit one of the 64 children of a 64-field node (the
 *                  widest node type): the wide node and the leaf copied;
 *                  and one child of a map with F children (u64 -> node,
 *                  F = 100k, quick 10k): a new leaf + HAMT path copied.
 *   wide_read      read a random child of each wide node.
 *   value_write    replace a bytes value of S bytes (1 KiB, 64 KiB, 1 MiB;
 *                  quick: 1 KiB, 64 KiB) in one txn.
 *   value_read     copy the S-byte value out inside a read section.
 *
 * Count-driven cases are calibrated once, then repeated interleaved;
 * medians and min-max of the reps; every edit (txn) and every 64th read is
 * timed for p50/p99/p999. `bytes` in the JSON is what one operation copies
 * (node bytes for edits, S for values).
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "benchutil.h"
#include "knobs.h"
#include "peers.h"
#include <shmgraph.h>

#define MAX_DEPTHS BENCH_MAX_SIZES
#define WIDE 64
#define MAX_CASES 64
#define NODE_HDR 16 /* node header bytes (graph.h) */

enum { F_VAL = 0, F_LEFT = 1, F_RIGHT = 2 };

static struct bench_knobs K;
static char config_json[1024];

static struct {
	char name[64];
	struct shg_seg *seg;
	struct shg_thread *t;
	uint32_t tnode, twide, tleaf, tblob;
} G;

static const char *gerr(int err)
{
	return shg_strerror(err);
}

/* ---- the locked baseline: the same tree / values in shared memory ----- */

struct lk_node {
	uint64_t val;
	uint32_t left, right; /* index + 1, 0 = none */
};

struct locked {
	pthread_rwlock_t lock;
	struct lk_node *nodes; /* heap of a complete binary tree */
	size_t size;
	void *blob;
	size_t blob_len;
};

static int locked_init(struct locked *l, unsigned depth, size_t blob)
{
	pthread_rwlockattr_t a;
	uint64_t n = (1ull << depth) - 1, i;

	memset(l, 0, sizeof(*l));
	l->size = n * sizeof(struct lk_node) + blob + 4096;
	l->nodes = mmap(NULL, l->size, PROT_READ | PROT_WRITE,
			MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (l->nodes == MAP_FAILED)
		return -errno;
	for (i = 0; i < n; i++) {
		l->nodes[i].val = val_of(key_of(i), 0);
		l->nodes[i].left = 2 * i + 1 < n ? (uint32_t)(2 * i + 2) : 0;
		l->nodes[i].right = 2 * i + 2 < n ? (uint32_t)(2 * i + 3) : 0;
	}
	l->blob = (char *)l->nodes + n * sizeof(struct lk_node);
	l->blob_len = blob;
	memset(l->blob, 0x5a, blob);
	pthread_rwlockattr_init(&a);
	pthread_rwlockattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
	pthread_rwlock_init(&l->lock, &a);
	pthread_rwlockattr_destroy(&a);
	return 0;
}

static void locked_free(struct locked *l)
{
	if (l->nodes && l->nodes != MAP_FAILED)
		munmap(l->nodes, l->size);
	l->nodes = NULL;
}

/* ---- building ----------------------------------------------------------- */

static int register_types(void)
{
	static const struct shg_field_def tree[] = {
		{ "val", SHG_KIND_U64 },
		{ "left", SHG_KIND_NODE },
		{ "right", SHG_KIND_NODE },
	};
	static const struct shg_field_def leaf[] = { { "val", SHG_KIND_U64 } };
	static const struct shg_field_def blob[] = { { "data",
						       SHG_KIND_BYTES } };
	struct shg_field_def wide[WIDE];
	static char names[WIDE][8];
	int err, i;

	for (i = 0; i < WIDE; i++) {
		snprintf(names[i], sizeof(names[i]), "c%d", i);
		wide[i].name = names[i];
		wide[i].kind = SHG_KIND_NODE;
	}
	err = shg_type_register(G.seg, "bench_tree", tree, 3, &G.tnode);
	if (!err)
		err = shg_type_register(G.seg, "bench_wide", wide, WIDE,
					&G.twide);
	if (!err)
		err = shg_type_register(G.seg, "bench_leaf", leaf, 1, &G.tleaf);
	if (!err)
		err = shg_type_register(G.seg, "bench_blob", blob, 1, &G.tblob);
	return err;
}

/* Make the subtree of heap index @i (depth left @d) at @ref. */
static int build_subtree(struct shg_txn *txn, struct shg_ref ref, uint64_t i,
			 unsigned d)
{
	struct shg_off n;
	int err;

	err = shg_txn_node_new(txn, G.tnode, &n);
	if (!err)
		err = shg_txn_set_node(txn, ref, n);
	if (!err)
		err = shg_txn_set_u64(txn, (struct shg_ref){ n, F_VAL },
				      val_of(key_of(i), 0));
	if (err || d == 1)
		return err;
	err = build_subtree(txn, (struct shg_ref){ n, F_LEFT }, 2 * i + 1,
			    d - 1);
	if (!err)
		err = build_subtree(txn, (struct shg_ref){ n, F_RIGHT },
				    2 * i + 2, d - 1);
	return err;
}

static int commit_or_abort(struct shg_txn *txn, int err)
{
	if (err) {
		shg_txn_abort(txn);
		return err;
	}
	err = shg_txn_commit(txn);
	if (err)
		shg_txn_abort(txn);
	return err;
}

static int build_tree(struct shg_root *root, unsigned depth)
{
	struct shg_txn *txn;
	int err = shg_txn_begin(root, &txn);

	if (err)
		return err;
	return commit_or_abort(txn, build_subtree(txn, SHG_REF_ROOT, 0, depth));
}

static int new_leaf(struct shg_txn *txn, uint64_t v, struct shg_off *out)
{
	int err = shg_txn_node_new(txn, G.tleaf, out);

	if (!err)
		err = shg_txn_set_u64(txn, (struct shg_ref){ *out, 0 }, v);
	return err;
}

static int build_wide(struct shg_root *root)
{
	struct shg_txn *txn;
	struct shg_off w, leaf;
	int err = shg_txn_begin(root, &txn), i;

	if (err)
		return err;
	err = shg_txn_node_new(txn, G.twide, &w);
	if (!err)
		err = shg_txn_set_node(txn, SHG_REF_ROOT, w);
	for (i = 0; i < WIDE && !err; i++) {
		err = new_leaf(txn, val_of(key_of((uint64_t)i), 0), &leaf);
		if (!err)
			err = shg_txn_set_node(
				txn, (struct shg_ref){ w, (unsigned)i }, leaf);
	}
	return commit_or_abort(txn, err);
}

static int build_map(struct shg_root *root, uint64_t f)
{
	uint64_t i = 0;
	int err = 0;

	while (i < f && !err) {
		struct shg_txn *txn;
		uint64_t end = i + 1000 < f ? i + 1000 : f;

		err = shg_txn_begin(root, &txn);
		if (err)
			return err;
		if (i == 0)
			err = shg_txn_map_new(txn, SHG_REF_ROOT, SHG_KIND_U64,
					      SHG_KIND_NODE);
		for (; i < end && !err; i++) {
			struct shg_val v = { .kind = SHG_KIND_NODE };

			err = new_leaf(txn, val_of(key_of(i), 0), &v.node);
			if (!err)
				err = shg_txn_map_put_u64(txn, SHG_REF_ROOT,
							  key_of(i), &v);
		}
		err = commit_or_abort(txn, err);
	}
	return err;
}

static int build_blob(struct shg_root *root, size_t len)
{
	struct shg_txn *txn;
	struct shg_off n;
	void *buf = malloc(len);
	int err;

	if (!buf)
		return -ENOMEM;
	memset(buf, 0x5a, len);
	err = shg_txn_begin(root, &txn);
	if (err) {
		free(buf);
		return err;
	}
	err = shg_txn_node_new(txn, G.tblob, &n);
	if (!err)
		err = shg_txn_set_node(txn, SHG_REF_ROOT, n);
	if (!err)
		err = shg_txn_set_bytes(txn, (struct shg_ref){ n, 0 }, buf,
					len);
	free(buf);
	return commit_or_abort(txn, err);
}

/* ---- cases ----------------------------------------------------------------- */

enum kind {
	K_EDIT,
	K_READ,
	K_WIDE_EDIT,
	K_WIDE_READ,
	K_MAP_EDIT,
	K_MAP_READ,
	K_VAL_WRITE,
	K_VAL_READ
};

struct garg {
	enum kind kind;
	bool locked; /* the rwlock baseline */
	struct shg_root *root;
	struct locked *lk;
	unsigned depth; /* tree depth */
	uint64_t n; /* leaves / children */
	size_t len; /* value bytes */
	unsigned per_txn;
	uint64_t rng;
	uint32_t gen;
	uint64_t bad; /* verification failures */
	void *buf;
	char label[64], variant[256];
};

static struct bench_case cases[MAX_CASES];
static struct garg args[MAX_CASES];
static size_t ncases;

/* Edit leaf @leaf (0..2^(d-1)-1) of the tree in @txn: mut down the path. */
static int tree_edit(struct shg_txn *txn, unsigned d, uint64_t leaf, uint64_t v)
{
	struct shg_ref ref = SHG_REF_ROOT;
	struct shg_off cur;
	unsigned lvl;
	int err = shg_txn_mut(txn, ref, &cur);

	for (lvl = d - 1; lvl > 0 && !err; lvl--) {
		ref.node = cur;
		ref.field = (leaf >> (lvl - 1)) & 1 ? F_RIGHT : F_LEFT;
		err = shg_txn_mut(txn, ref, &cur);
	}
	if (!err)
		err = shg_txn_set_u64(txn, (struct shg_ref){ cur, F_VAL }, v);
	return err;
}

/* Heap index of leaf @leaf of a depth-@d tree. */
static uint64_t leaf_index(unsigned d, uint64_t leaf)
{
	return (1ull << (d - 1)) - 1 + leaf;
}

static int do_edit(struct garg *a, uint64_t *ops)
{
	struct shg_txn *txn;
	unsigned k;
	int err = shg_txn_begin(a->root, &txn);

	if (err)
		return err;
	a->gen++;
	for (k = 0; k < a->per_txn && !err; k++) {
		uint64_t leaf = rand_index(&a->rng, a->n);
		uint64_t key = key_of(leaf_index(a->depth, leaf));

		err = tree_edit(txn, a->depth, leaf, val_of(key, a->gen));
	}
	*ops += a->per_txn;
	return commit_or_abort(txn, err);
}

static void locked_edit(struct garg *a)
{
	struct locked *l = a->lk;
	uint64_t leaf = rand_index(&a->rng, a->n), i = 0;
	unsigned lvl;

	pthread_rwlock_wrlock(&l->lock);
	for (lvl = a->depth - 1; lvl > 0; lvl--)
		i = ((leaf >> (lvl - 1)) & 1 ? l->nodes[i].right :
					       l->nodes[i].left) -
		    1;
	l->nodes[i].val = val_of(key_of(i), ++a->gen);
	pthread_rwlock_unlock(&l->lock);
}

static bool tree_read(struct garg *a)
{
	uint64_t leaf = rand_index(&a->rng, a->n), v = 0;
	struct shg_version_info vi;
	struct shg_off cur;
	unsigned lvl;
	bool ok = false;

	shg_thread_read_lock(G.t);
	if (shg_version_info(G.seg, shg_version_current(a->root), &vi))
		goto out;
	cur = vi.node;
	for (lvl = a->depth - 1; lvl > 0; lvl--)
		if (shg_get_node(G.seg, cur,
				 (leaf >> (lvl - 1)) & 1 ? F_RIGHT : F_LEFT,
				 &cur))
			goto out;
	ok = shg_get_u64(G.seg, cur, F_VAL, &v) == 0 &&
	     val_ok(key_of(leaf_index(a->depth, leaf)), v);
out:
	shg_thread_read_unlock(G.t);
	return ok;
}

static bool locked_read(struct garg *a)
{
	struct locked *l = a->lk;
	uint64_t leaf = rand_index(&a->rng, a->n), i = 0, v;
	unsigned lvl;

	pthread_rwlock_rdlock(&l->lock);
	for (lvl = a->depth - 1; lvl > 0; lvl--)
		i = ((leaf >> (lvl - 1)) & 1 ? l->nodes[i].right :
					       l->nodes[i].left) -
		    1;
	v = l->nodes[i].val;
	pthread_rwlock_unlock(&l->lock);
	return val_ok(key_of(i), v);
}

static int wide_edit(struct garg *a)
{
	uint64_t c = rand_index(&a->rng, a->n);
	struct shg_txn *txn;
	struct shg_off w, leaf;
	struct shg_val v = { .kind = SHG_KIND_NODE };
	int err = shg_txn_begin(a->root, &txn);

	if (err)
		return err;
	a->gen++;
	if (a->kind == K_WIDE_EDIT) {
		err = shg_txn_mut(txn, SHG_REF_ROOT, &w);
		if (!err)
			err = shg_txn_mut(
				txn, (struct shg_ref){ w, (unsigned)c }, &leaf);
		if (!err)
			err = shg_txn_set_u64(txn, (struct shg_ref){ leaf, 0 },
					      val_of(key_of(c), a->gen));
		return commit_or_abort(txn, err);
	}
	err = new_leaf(txn, val_of(key_of(c), a->gen), &v.node);
	if (!err)
		err = shg_txn_map_put_u64(txn, SHG_REF_ROOT, key_of(c), &v);
	return commit_or_abort(txn, err);
}

static bool wide_read(struct garg *a)
{
	uint64_t c = rand_index(&a->rng, a->n), v = 0;
	struct shg_version_info vi;
	struct shg_off leaf;
	struct shg_val mv;
	bool ok = false;

	shg_thread_read_lock(G.t);
	if (shg_version_info(G.seg, shg_version_current(a->root), &vi))
		goto out;
	if (a->kind == K_WIDE_READ) {
		if (shg_get_node(G.seg, vi.node, (unsigned)c, &leaf))
			goto out;
	} else {
		if (shg_map_get_u64(G.seg, vi.node, key_of(c), &mv))
			goto out;
		leaf = mv.node;
	}
	ok = shg_get_u64(G.seg, leaf, 0, &v) == 0 && val_ok(key_of(c), v);
out:
	shg_thread_read_unlock(G.t);
	return ok;
}

static int value_write(struct garg *a)
{
	struct shg_txn *txn;
	struct shg_off n;
	int err;

	if (a->locked) {
		pthread_rwlock_wrlock(&a->lk->lock);
		memcpy(a->lk->blob, a->buf, a->len);
		pthread_rwlock_unlock(&a->lk->lock);
		return 0;
	}
	err = shg_txn_begin(a->root, &txn);
	if (err)
		return err;
	err = shg_txn_mut(txn, SHG_REF_ROOT, &n);
	if (!err)
		err = shg_txn_set_bytes(txn, (struct shg_ref){ n, 0 }, a->buf,
					a->len);
	return commit_or_abort(txn, err);
}

static bool value_read(struct garg *a)
{
	struct shg_version_info vi;
	const void *p;
	size_t len;
	bool ok = false;

	if (a->locked) {
		pthread_rwlock_rdlock(&a->lk->lock);
		memcpy(a->buf, a->lk->blob, a->len);
		pthread_rwlock_unlock(&a->lk->lock);
		return ((char *)a->buf)[a->len - 1] == 0x5a;
	}
	shg_thread_read_lock(G.t);
	if (shg_version_info(G.seg, shg_version_current(a->root), &vi) == 0 &&
	    shg_get_bytes(G.seg, vi.node, 0, &p, &len) == 0 && len == a->len) {
		memcpy(a->buf, p, len);
		ok = ((char *)a->buf)[len - 1] == 0x5a;
	}
	shg_thread_read_unlock(G.t);
	return ok;
}

static bool is_write(enum kind k)
{
	return k == K_EDIT || k == K_WIDE_EDIT || k == K_MAP_EDIT ||
	       k == K_VAL_WRITE;
}

/* One write operation (a txn, or a locked update); adds to *ops. */
static int write_op(struct garg *a, uint64_t *ops)
{
	switch (a->kind) {
	case K_EDIT:
		if (a->locked) {
			locked_edit(a);
			(*ops)++;
			return 0;
		}
		return do_edit(a, ops);
	case K_WIDE_EDIT:
	case K_MAP_EDIT:
		(*ops)++;
		return wide_edit(a);
	default:
		(*ops)++;
		return value_write(a);
	}
}

static bool read_op(struct garg *a)
{
	switch (a->kind) {
	case K_READ:
		return a->locked ? locked_read(a) : tree_read(a);
	case K_WIDE_READ:
	case K_MAP_READ:
		return wide_read(a);
	default:
		return value_read(a);
	}
}

static int run_case(struct bench_case *c, const struct bench_ctl *ctl,
		    struct bench_sample *out)
{
	struct garg *a = c->arg;
	uint64_t i, ops = 0, t0 = bench_now_ns();
	int err;

	for (i = 0; i < ctl->iters; i++) {
		bool timed = ctl->hist && (is_write(a->kind) || (i & 63) == 0);
		uint64_t s = timed ? bench_now_ns() : 0;

		if (is_write(a->kind)) {
			err = write_op(a, &ops);
			if (err) {
				bench_case_skip(c, "failed: %s", gerr(err));
				return err;
			}
		} else {
			a->bad += !read_op(a);
			ops++;
		}
		if (timed)
			bench_hist_record(ctl->hist, bench_now_ns() - s);
	}
	out->ns = bench_now_ns() - t0;
	out->ops = ops;
	return 0;
}

/* ---- setup ----------------------------------------------------------------- */

static struct bench_case *add(enum kind k, bool locked, struct shg_root *root,
			      struct locked *lk, const char *workload)
{
	struct bench_case *c;
	struct garg *a;

	if (ncases >= MAX_CASES) {
		fprintf(stderr, "bench_graph: too many cases\n");
		exit(2);
	}
	c = &cases[ncases];
	a = &args[ncases++];
	memset(a, 0, sizeof(*a));
	a->kind = k;
	a->locked = locked;
	a->root = root;
	a->lk = lk;
	a->rng = 0x2545f4914f6cdd1dull + ncases;
	a->per_txn = 1;
	bench_case_init(c);
	c->system = locked ? "rwlock-shm" : "shmgraph";
	c->workload = workload;
	c->run = run_case;
	c->arg = a;
	c->latency = true;
	c->numa = locked ? NULL : K.numa;
	c->readers = is_write(k) ? 0 : 1;
	c->writers = is_write(k) ? 1 : 0;
	c->label = a->label;
	c->variant = a->variant;
	c->min_iters = 100;
	return c;
}

static int open_segment(void)
{
	struct shg_opts o = { .size = sizeof(o) };
	int err;

	snprintf(G.name, sizeof(G.name), "/shg-bench-%d-graph", (int)getpid());
	bench_cleanup_shm(G.name);
	o.capacity = 8ull << 30;
	o.numa_policy = K.numa_policy;
	o.numa_node = K.numa_node;
	err = shg_seg_create(G.name, &o, &G.seg);
	if (!err)
		err = shg_thread_get(G.seg, &G.t);
	if (!err)
		err = register_types();
	return err;
}

static void tree_cases(unsigned d, struct locked *lk, int *peer_edit,
		       int *peer_read)
{
	struct shg_root *root;
	char name[32];
	struct bench_case *c;
	struct garg *a;
	unsigned per[2] = { K.txn_size, 64 }, j;
	size_t node = NODE_HDR + 3 * 8;
	int err;

	snprintf(name, sizeof(name), "tree-%u", d);
	err = shg_root_create(G.seg, name, &root);
	if (!err)
		err = build_tree(root, d);
	if (!err)
		err = locked_init(lk, d, 0);
	for (j = 0; j < 2; j++) {
		if (j == 1 &&
		    (K.txn_size == 64 || d != K.depths[K.ndepths - 1]))
			break;
		c = add(K_EDIT, false, root, lk, "graph_edit");
		a = c->arg;
		a->depth = d;
		a->n = 1ull << (d - 1);
		a->per_txn = per[j];
		c->keys = (long long)((1ull << d) - 1);
		c->bytes = (long long)(d * node);
		snprintf(a->label, sizeof(a->label),
			 "edit leaf at depth %u, %u per txn", d, per[j]);
		snprintf(a->variant, sizeof(a->variant),
			 "complete binary tree of %llu nodes (%zu B each); txn "
			 "= shg_txn_mut along the path + set_u64, %u random "
			 "leaves per commit",
			 (unsigned long long)c->keys, node, per[j]);
		if (err)
			bench_case_skip(c, "build failed: %s", gerr(err));
		if (j == 0)
			*peer_edit = (int)ncases - 1;
	}
	c = add(K_EDIT, true, NULL, lk, "graph_edit");
	a = c->arg;
	a->depth = d;
	a->n = 1ull << (d - 1);
	c->keys = (long long)((1ull << d) - 1);
	snprintf(a->label, sizeof(a->label), "edit leaf at depth %u, 1 per txn",
		 d);
	snprintf(a->variant, sizeof(a->variant),
		 "the same tree (16 B nodes) in MAP_SHARED memory, edited in "
		 "place under a PROCESS_SHARED rwlock");
	cases[*peer_edit].peer = (int)ncases - 1;
	c = add(K_READ, false, root, lk, "graph_read");
	a = c->arg;
	a->depth = d;
	a->n = 1ull << (d - 1);
	c->keys = (long long)((1ull << d) - 1);
	c->min_iters = 10000;
	snprintf(a->label, sizeof(a->label), "read leaf at depth %u", d);
	snprintf(a->variant, sizeof(a->variant),
		 "read section: current version, %u x shg_get_node, "
		 "shg_get_u64, verified",
		 d - 1);
	if (err)
		bench_case_skip(c, "build failed: %s", gerr(err));
	*peer_read = (int)ncases - 1;
	c = add(K_READ, true, NULL, lk, "graph_read");
	a = c->arg;
	a->depth = d;
	a->n = 1ull << (d - 1);
	c->keys = (long long)((1ull << d) - 1);
	c->min_iters = 10000;
	snprintf(a->label, sizeof(a->label), "read leaf at depth %u", d);
	snprintf(a->variant, sizeof(a->variant),
		 "read lock, walk %u levels, read, unlock", d - 1);
	cases[*peer_read].peer = (int)ncases - 1;
}

static void wide_cases(uint64_t f)
{
	struct shg_root *rw, *rm;
	struct bench_case *c;
	struct garg *a;
	int err, k;

	err = shg_root_create(G.seg, "wide", &rw);
	if (!err)
		err = build_wide(rw);
	for (k = 0; k < 2; k++) {
		c = add(k ? K_WIDE_READ : K_WIDE_EDIT, false, rw, NULL,
			k ? "wide_read" : "wide_edit");
		a = c->arg;
		a->n = WIDE;
		c->keys = WIDE;
		c->bytes = k ? -1 : NODE_HDR + WIDE * 8 + NODE_HDR + 8;
		if (k)
			c->min_iters = 10000;
		snprintf(a->label, sizeof(a->label),
			 "%s child of a %d-field node", k ? "read a" : "edit a",
			 WIDE);
		snprintf(a->variant, sizeof(a->variant),
			 "node with %d NODE fields, each a leaf; %s", WIDE,
			 k ? "read section, shg_get_node + shg_get_u64" :
			     "txn: shg_txn_mut(wide), shg_txn_mut(child), "
			     "set_u64");
		if (err)
			bench_case_skip(c, "build failed: %s", gerr(err));
	}
	err = shg_root_create(G.seg, "wide-map", &rm);
	if (!err)
		err = build_map(rm, f);
	for (k = 0; k < 2; k++) {
		c = add(k ? K_MAP_READ : K_MAP_EDIT, false, rm, NULL,
			k ? "wide_read" : "wide_edit");
		a = c->arg;
		a->n = f;
		c->keys = (long long)f;
		if (k)
			c->min_iters = 10000;
		snprintf(a->label, sizeof(a->label),
			 "%s child of a map of %llu", k ? "read a" : "edit a",
			 (unsigned long long)f);
		snprintf(a->variant, sizeof(a->variant),
			 "map u64 -> node with %llu leaf children; %s",
			 (unsigned long long)f,
			 k ? "read section, shg_map_get_u64 + shg_get_u64" :
			     "txn: new leaf + shg_txn_map_put_u64");
		if (err)
			bench_case_skip(c, "build failed: %s", gerr(err));
	}
}

static void value_cases(size_t len, struct locked *lk)
{
	struct shg_root *root;
	struct bench_case *c;
	struct garg *a;
	char name[32];
	int err, k, first = (int)ncases;

	snprintf(name, sizeof(name), "blob-%zu", len);
	err = shg_root_create(G.seg, name, &root);
	if (!err)
		err = build_blob(root, len);
	if (!err)
		err = locked_init(lk, 1, len);
	for (k = 0; k < 4; k++) {
		bool locked = k & 1, rd = k >= 2;

		c = add(rd ? K_VAL_READ : K_VAL_WRITE, locked, root, lk,
			rd ? "value_read" : "value_write");
		a = c->arg;
		a->len = len;
		a->buf = malloc(len);
		if (!a->buf) {
			bench_case_skip(c, "out of memory");
			continue;
		}
		memset(a->buf, 0x5a, len);
		c->bytes = (long long)len;
		c->min_iters = 10;
		snprintf(a->label, sizeof(a->label), "%s %zu B value",
			 rd ? "read" : "replace", len);
		snprintf(a->variant, sizeof(a->variant), "%s",
			 locked ? (rd ? "read lock, memcpy out, unlock" :
					"write lock, memcpy in place, unlock") :
			 rd	? "read section, shg_get_bytes, memcpy out" :
				  "txn: shg_txn_mut + shg_txn_set_bytes, commit");
		if (err)
			bench_case_skip(c, "setup failed: %s", gerr(err));
		if (locked)
			cases[ncases - 2].peer = (int)ncases - 1;
	}
	(void)first;
}

static const char usage_text[] =
	"bench_graph: deep trees (edit/read a leaf at depth D), wide nodes,\n"
	"large values; shmgraph vs the same structure under a shared rwlock.\n"
	"Defaults: --depths 8,12,16, --txn-size 1 (plus 64 at the deepest),\n"
	"--value-size: 1 KiB, 64 KiB, 1 MiB (or the one given),\n"
	"--reps 5 (quick 3), --duration-ms 50 (quick 10).\n";

static void notes(FILE *f)
{
	size_t i;

	for (i = 0; i < ncases; i++) {
		if (args[i].bad) {
			fprintf(f,
				"  %s / %s: %llu reads failed verification\n",
				cases[i].system, args[i].label,
				(unsigned long long)args[i].bad);
			cases[i].misses = (long long)args[i].bad;
		} else if (!is_write(args[i].kind)) {
			cases[i].misses = 0;
		}
	}
}

int main(int argc, char **argv)
{
	static struct locked lk_tree[MAX_DEPTHS], lk_val[3];
	size_t lens[3] = { 1024, 65536, 1 << 20 };
	unsigned nlens = 3, i;
	struct bench_opts o = { 0 };
	FILE *jf = stdout, *tf = stderr;
	int pe, pr, err;

	if (bench_knobs_parse(&K, "bench_graph",
			      BK_TXN | BK_DEPTH | BK_SIZES | BK_NUMA,
			      usage_text, argc, argv))
		return 2;
	if (!K.ndepths) {
		K.depths[0] = 8;
		K.depths[1] = 12;
		K.depths[2] = 16;
		K.ndepths = 3;
	}
	if (!K.reps)
		K.reps = K.quick ? 3 : 5;
	if (!K.time_ms)
		K.time_ms = K.quick ? 10 : 50;
	if (K.value_size != 8) {
		lens[0] = K.value_size;
		nlens = 1;
	} else if (K.quick) {
		nlens = 2;
	}
	bench_knobs_json(&K, config_json, sizeof(config_json));
	bench_set_config(config_json);
	err = open_segment();
	if (err) {
		fprintf(stderr, "bench_graph: segment: %s\n", gerr(err));
		return 1;
	}
	for (i = 0; i < K.ndepths; i++)
		tree_cases(K.depths[i], &lk_tree[i], &pe, &pr);
	wide_cases(K.quick ? 10000 : 100000);
	for (i = 0; i < nlens; i++)
		value_cases(lens[i], &lk_val[i]);
	if (K.json && strcmp(K.json, "-") != 0) {
		jf = fopen(K.json, "ae");
		if (!jf) {
			perror(K.json);
			return 1;
		}
		tf = stdout;
	}
	o.reps = K.reps;
	o.target_ns = (uint64_t)K.time_ms * 1000000ull;
	o.verbose = K.verbose;
	err = bench_run(cases, ncases, &o);
	notes(tf);
	bench_json_write(jf, cases, ncases);
	bench_table_print(tf, cases, ncases,
			  "bench_graph: median ns per operation (edit = one "
			  "leaf; a txn of K leaves counts K), every txn and "
			  "every 64th read timed");
	bench_peer_matrix(
		tf, cases, ncases,
		"shmgraph vs the locked in-place structure:", "shmgraph");
	bench_cases_free(cases, ncases);
	for (i = 0; i < ncases; i++)
		free(args[i].buf);
	for (i = 0; i < K.ndepths; i++)
		locked_free(&lk_tree[i]);
	for (i = 0; i < nlens; i++)
		locked_free(&lk_val[i]);
	shg_seg_close(G.seg);
	if (shg_seg_unlink(G.name))
		fprintf(stderr, "bench_graph: could not unlink %s\n", G.name);
	if (jf != stdout)
		fclose(jf);
	return err ? 1 : 0;
}
