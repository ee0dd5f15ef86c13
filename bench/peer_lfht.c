/* SPDX-License-Identifier: MIT */
/*
 * The urcu-lfht peer: liburcu's lock-free resizable hash table (cds_lfht)
 * with the memb flavor, in ONE process (reader and writer are threads):
 * the in-process upper bound. Lookups run inside urcu_memb_read_lock();
 * an update allocates a node, cds_lfht_add_replace() swaps it in and the
 * old node is freed by urcu_memb_call_rcu(). cds_lfht has no
 * transactions: a "batch" is that many single updates. Keys or values
 * wider than 8 bytes live in the node (struct lwnode); the hash is then
 * taken over the key bytes.
 */
#define _LGPL_SOURCE
#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <urcu/urcu-memb.h>
#include <urcu/rculfhash.h>

#include "peers.h"

struct lnode {
	struct cds_lfht_node node;
	uint64_t key;
	uint64_t val;
	struct rcu_head rcu;
};

/* A node with key_fill() / val_fill() bytes: the key, then the value. */
struct lwnode {
	struct cds_lfht_node node;
	struct rcu_head rcu;
	unsigned char data[];
};

struct wkey {
	const unsigned char *p;
	unsigned len;
};

struct lfht_state {
	struct cds_lfht *ht;
	unsigned ksize, vsize; /* bytes per key / value */
	long long heap_bytes; /* malloc'd by the build (mallinfo2) */
};

static int match(struct cds_lfht_node *node, const void *key)
{
	const struct lnode *n = caa_container_of(node, struct lnode, node);

	return n->key == *(const uint64_t *)key;
}

static void free_node(struct rcu_head *head)
{
	free(caa_container_of(head, struct lnode, rcu));
}

static int match_wide(struct cds_lfht_node *node, const void *key)
{
	const struct lwnode *n = caa_container_of(node, struct lwnode, node);
	const struct wkey *k = key;

	return memcmp(n->data, k->p, k->len) == 0;
}

static void free_wide(struct rcu_head *head)
{
	free(caa_container_of(head, struct lwnode, rcu));
}

/* A hash of the key bytes: the 8-byte words (the tail zero-padded) mixed
 * in turn. */
static unsigned long hash_bytes(const unsigned char *p, unsigned len)
{
	uint64_t h = len, w;
	unsigned o;

	for (o = 0; o < len; o += 8) {
		w = 0;
		memcpy(&w, p + o, len - o < 8 ? len - o : 8);
		h = shg__mix64(h ^ w) + 0x9e3779b97f4a7c15ull;
	}
	return (unsigned long)h;
}

static unsigned long pow2_at_least(uint64_t n)
{
	unsigned long c = 1;

	while (c < n)
		c <<= 1;
	return c;
}

static struct cds_lfht *ht_new(uint64_t nkeys)
{
	return cds_lfht_new_flavor(pow2_at_least(nkeys), 1, 0,
				   CDS_LFHT_AUTO_RESIZE | CDS_LFHT_ACCOUNTING,
				   &urcu_memb_flavor, NULL);
}

/* Replace or add; the old node (if any) is freed after a grace period. */
static int ht_put(struct cds_lfht *ht, uint64_t key, uint64_t val)
{
	struct lnode *n = malloc(sizeof(*n));
	struct cds_lfht_node *old;

	if (!n)
		return -ENOMEM;
	cds_lfht_node_init(&n->node);
	n->key = key;
	n->val = val;
	urcu_memb_read_lock();
	old = cds_lfht_add_replace(ht, shg__mix64(key), match, &key, &n->node);
	urcu_memb_read_unlock();
	if (old)
		urcu_memb_call_rcu(
			&caa_container_of(old, struct lnode, node)->rcu,
			free_node);
	return 0;
}

/* ht_put() of the key_fill() / val_fill() bytes, ks + vs bytes. */
static int ht_put_wide(struct cds_lfht *ht, unsigned ks, unsigned vs,
		       uint64_t key, uint64_t val)
{
	struct lwnode *n = malloc(sizeof(*n) + ks + vs);
	struct cds_lfht_node *old;
	struct wkey k;

	if (!n)
		return -ENOMEM;
	cds_lfht_node_init(&n->node);
	key_fill(n->data, key, ks);
	val_fill(n->data + ks, val, vs);
	k.p = n->data;
	k.len = ks;
	urcu_memb_read_lock();
	old = cds_lfht_add_replace(ht, hash_bytes(n->data, ks), match_wide, &k,
				   &n->node);
	urcu_memb_read_unlock();
	if (old)
		urcu_memb_call_rcu(
			&caa_container_of(old, struct lwnode, node)->rcu,
			free_wide);
	return 0;
}

static int s_put(const struct lfht_state *s, struct cds_lfht *ht, uint64_t key,
		 uint64_t val)
{
	if (s->ksize != 8 || s->vsize != 8)
		return ht_put_wide(ht, s->ksize, s->vsize, key, val);
	return ht_put(ht, key, val);
}

static int ht_fill(const struct lfht_state *s, struct cds_lfht *ht,
		   uint64_t nkeys)
{
	uint64_t i;
	int err;

	for (i = 0; i < nkeys; i++) {
		uint64_t key = key_of(i);

		err = s_put(s, ht, key, val_of(key, 0));
		if (err)
			return err;
	}
	return 0;
}

/* Remove and free every node (no reader uses @ht any more), destroy. */
static void ht_free(struct cds_lfht *ht, bool wide)
{
	struct cds_lfht_iter it;
	struct cds_lfht_node *node;

	urcu_memb_read_lock();
	cds_lfht_for_each(ht, &it, node) {
		if (cds_lfht_del(ht, node) != 0)
			continue;
		if (wide)
			urcu_memb_call_rcu(
				&caa_container_of(node, struct lwnode, node)
					 ->rcu,
				free_wide);
		else
			urcu_memb_call_rcu(
				&caa_container_of(node, struct lnode, node)->rcu,
				free_node);
	}
	urcu_memb_read_unlock();
	urcu_memb_barrier(); /* run the pending frees */
	cds_lfht_destroy(ht, NULL);
}

static bool main_registered;

static int f_create(struct peer *p, uint64_t nkeys)
{
	struct lfht_state *s = calloc(1, sizeof(*s));
	struct mallinfo2 before, after;
	int err;

	if (!s)
		return -ENOMEM;
	s->ksize = peer_ksize(p);
	s->vsize = peer_vsize(p);
	if (!main_registered) /* the benchmark thread, once */
		urcu_memb_register_thread();
	main_registered = true;
	before = mallinfo2();
	s->ht = ht_new(nkeys);
	if (!s->ht) {
		free(s);
		peer_fail(p, "cds_lfht_new failed");
		return -ENOMEM;
	}
	err = ht_fill(s, s->ht, nkeys);
	if (err) {
		peer_fail(p, "out of memory");
		ht_free(s->ht, !peer_narrow(p));
		free(s);
		return err;
	}
	after = mallinfo2();
	s->heap_bytes = (long long)(after.uordblks + after.hblkhd) -
			(long long)(before.uordblks + before.hblkhd);
	p->priv = s;
	p->main_handle = s;
	p->nkeys = nkeys;
	snprintf(p->variant, sizeof(p->variant),
		 "liburcu cds_lfht, memb flavor, one process (reader and "
		 "writer threads), AUTO_RESIZE, call_rcu frees");
	if (s->ksize != 8 || s->vsize != 8)
		peer_variant_add(p,
				 "; %u B keys and %u B values in the node, "
				 "hash of the key bytes",
				 s->ksize, s->vsize);
	return 0;
}

static int f_attach(struct peer *p, void **handle)
{
	urcu_memb_register_thread();
	*handle = p->priv;
	return 0;
}

static void f_detach(struct peer *p, void *handle)
{
	(void)p;
	(void)handle;
	urcu_memb_unregister_thread();
}

static inline bool f_get(struct cds_lfht *ht, uint64_t key, uint64_t *val)
{
	struct cds_lfht_iter it;
	struct cds_lfht_node *node;
	bool found = false;

	urcu_memb_read_lock();
	cds_lfht_lookup(ht, shg__mix64(key), match, &key, &it);
	node = cds_lfht_iter_get_node(&it);
	if (node) {
		*val = caa_container_of(node, struct lnode, node)->val;
		found = true;
	}
	urcu_memb_read_unlock();
	return found;
}

static inline bool f_get_wide(const struct lfht_state *s, uint64_t key,
			      uint64_t *val)
{
	unsigned char kb[PEER_KEY_MAX];
	struct wkey k = { kb, s->ksize };
	struct cds_lfht_iter it;
	struct cds_lfht_node *node;
	bool found = false;

	key_fill(kb, key, s->ksize);
	urcu_memb_read_lock();
	cds_lfht_lookup(s->ht, hash_bytes(kb, s->ksize), match_wide, &k, &it);
	node = cds_lfht_iter_get_node(&it);
	if (node)
		found = val_read(
			caa_container_of(node, struct lwnode, node)->data +
				s->ksize,
			s->vsize, s->vsize, val);
	urcu_memb_read_unlock();
	return found;
}

static bool f_get_one(struct peer *p, void *handle, uint64_t key, uint64_t *val)
{
	struct lfht_state *s = handle;

	(void)p;
	if (s->ksize != 8 || s->vsize != 8)
		return f_get_wide(s, key, val);
	return f_get(s->ht, key, val);
}

static int f_lookup_loop(struct peer *p, void *handle, struct lookup_job *j)
{
	struct lfht_state *s = handle;
	struct cds_lfht *ht = s->ht;

	(void)p;
	if (s->ksize != 8 || s->vsize != 8)
		PEER_LOOKUP_LOOP(j, s, f_get_wide);
	else
		PEER_LOOKUP_LOOP(j, ht, f_get);
	return 0;
}

static int f_update(struct peer *p, void *handle, uint64_t key, uint64_t val)
{
	struct lfht_state *s = handle;

	(void)p;
	return s_put(s, s->ht, key, val);
}

static int f_update_batch(struct peer *p, void *handle, const uint64_t *keys,
			  const uint64_t *vals, unsigned n)
{
	struct lfht_state *s = handle;
	unsigned i;
	int err;

	(void)p;
	for (i = 0; i < n; i++) {
		err = s_put(s, s->ht, keys[i], vals[i]);
		if (err)
			return err;
	}
	return 0;
}

static int f_build(struct peer *p, uint64_t nkeys, unsigned batch, uint64_t *ns)
{
	struct lfht_state *s = p->priv;
	struct cds_lfht *ht = ht_new(nkeys);
	uint64_t t0;
	int err;

	(void)batch;
	if (!ht) {
		peer_fail(p, "cds_lfht_new failed");
		return -ENOMEM;
	}
	t0 = bench_now_ns();
	err = ht_fill(s, ht, nkeys);
	*ns = bench_now_ns() - t0;
	ht_free(ht, s->ksize != 8 || s->vsize != 8);
	return err;
}

static int f_bytes(struct peer *p, const char **variants, long long *bytes,
		   unsigned *n)
{
	static char v[96];
	struct lfht_state *s = p->priv;

	if (s->ksize != 8 || s->vsize != 8) {
		snprintf(v, sizeof(v),
			 "malloc'd bytes of the build (mallinfo2: %zu B nodes "
			 "+ buckets)",
			 sizeof(struct lwnode) + s->ksize + s->vsize);
		variants[0] = v;
	} else {
		variants[0] = "malloc'd bytes of the build (mallinfo2: 48 B "
			      "nodes in 64 B chunks + buckets)";
	}
	bytes[0] = s->heap_bytes;
	*n = 1;
	return 0;
}

static void f_destroy(struct peer *p)
{
	struct lfht_state *s = p->priv;

	if (!s)
		return;
	ht_free(s->ht, s->ksize != 8 || s->vsize != 8);
	free(s);
	p->priv = NULL;
	p->main_handle = NULL;
}

const struct peer_ops peer_lfht_ops = {
	.system = "urcu-lfht",
	.in_process = true,
	.create = f_create,
	.attach = f_attach,
	.detach = f_detach,
	.lookup_loop = f_lookup_loop,
	.lookup_one = f_get_one,
	.update = f_update,
	.update_batch = f_update_batch,
	.build = f_build,
	.bytes = f_bytes,
	.destroy = f_destroy,
};
