/* SPDX-License-Identifier: MIT */
/*
 * The shmgraph system of the map benchmark: a persistent map (u64 -> u64)
 * as the root node of one root of a segment. Readers look keys up inside
 * a read section taken with the inline handle (shg_thread_read_lock):
 * load the root's current version, its root node, then shg_map_get_u64.
 * Writers commit one txn per update or per batch (path copying; the
 * replaced nodes are retired with the commit's sequence and reclaimed by
 * the library). Worker processes open the segment by name.
 * Keys wider than 8 bytes use a map with BYTES keys (shg_map_get_bytes),
 * values wider than 8 bytes BYTES values; 8-byte ones stay U64.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "peers.h"
#include <shmgraph.h>

#define SEG_CAPACITY (16ull << 30)
#define MAP_ROOT "map"

struct shandle {
	struct shg_seg *seg;
	struct shg_thread *t;
	struct shg_root *root;
	unsigned ksize, vsize; /* bytes per key / value */
	bool created; /* this handle created (and unlinks) the segment */
};

struct sstate {
	char name[PATH_MAX]; /* shm name, or a file in peer.huge_dir */
	struct shandle main;
	unsigned builds; /* roots made by build() */
};

static int sfail(struct peer *p, const char *what, int err)
{
	peer_fail(p, "%s: %s", what, shg_strerror(err));
	return err;
}

static void handle_close(struct sstate *s, struct shandle *h)
{
	if (h->root)
		shg_root_close(h->root);
	h->root = NULL;
	if (h->seg)
		shg_seg_close(h->seg);
	h->seg = NULL;
	if (h->created && shg_seg_unlink(s->name))
		fprintf(stderr, "bench_map: could not unlink %s\n", s->name);
	h->created = false;
}

/* One put of the key_fill() / val_fill() bytes of @key / @val (wide
 * keys or values); @what names the call on failure. */
static int put_wide(struct shg_txn *txn, unsigned ks, unsigned vs, uint64_t key,
		    uint64_t val, const char **what)
{
	unsigned char kb[PEER_KEY_MAX], vb[PEER_VAL_MAX];
	struct shg_val v = { .kind = SHG_KIND_U64, .u64 = val };

	if (vs > 8) {
		val_fill(vb, val, vs);
		v.kind = SHG_KIND_BYTES;
		v.bytes.p = vb;
		v.bytes.len = vs;
	}
	if (ks > 8) {
		key_fill(kb, key, ks);
		*what = "shg_txn_map_put_bytes";
		return shg_txn_map_put_bytes(txn, SHG_REF_ROOT, kb, ks, &v);
	}
	*what = "shg_txn_map_put_u64";
	return shg_txn_map_put_u64(txn, SHG_REF_ROOT, key, &v);
}

static int put_txn_wide(struct peer *p, struct shg_root *root, bool create,
			const uint64_t *keys, const uint64_t *vals, unsigned n)
{
	unsigned ks = peer_ksize(p), vs = peer_vsize(p);
	const char *what = "";
	int tries, err = 0;

	for (tries = 0; tries < 64; tries++) {
		struct shg_txn *txn;
		unsigned i;

		err = shg_txn_begin(root, &txn);
		if (err)
			return sfail(p, "shg_txn_begin", err);
		if (create) {
			err = shg_txn_map_new(
				txn, SHG_REF_ROOT,
				ks > 8 ? SHG_KIND_BYTES : SHG_KIND_U64,
				vs > 8 ? SHG_KIND_BYTES : SHG_KIND_U64);
			if (err) {
				shg_txn_abort(txn);
				return sfail(p, "shg_txn_map_new", err);
			}
		}
		for (i = 0; i < n; i++) {
			err = put_wide(txn, ks, vs, keys[i], vals[i], &what);
			if (peer_unlikely(err)) {
				shg_txn_abort(txn);
				return sfail(p, what, err);
			}
		}
		err = shg_txn_commit(txn);
		if (!err)
			return 0;
		if (err != SHG_ECONFLICT)
			return sfail(p, "shg_txn_commit", err);
		shg_txn_abort(txn);
	}
	return sfail(p, "shg_txn_commit", err);
}

/* One txn of @n puts on the map at the graph root of @root (creating the
 * map first with @create); retried on conflict. */
static int put_txn(struct peer *p, struct shg_root *root, bool create,
		   const uint64_t *keys, const uint64_t *vals, unsigned n)
{
	int tries, err = 0;

	if (!peer_narrow(p))
		return put_txn_wide(p, root, create, keys, vals, n);
	for (tries = 0; tries < 64; tries++) {
		struct shg_txn *txn;
		unsigned i;

		err = shg_txn_begin(root, &txn);
		if (err)
			return sfail(p, "shg_txn_begin", err);
		if (create) {
			err = shg_txn_map_new(txn, SHG_REF_ROOT, SHG_KIND_U64,
					      SHG_KIND_U64);
			if (err) {
				shg_txn_abort(txn);
				return sfail(p, "shg_txn_map_new", err);
			}
		}
		for (i = 0; i < n; i++) {
			struct shg_val v = { .kind = SHG_KIND_U64,
					     .u64 = vals[i] };

			err = shg_txn_map_put_u64(txn, SHG_REF_ROOT, keys[i],
						  &v);
			if (peer_unlikely(err)) {
				shg_txn_abort(txn);
				return sfail(p, "shg_txn_map_put_u64", err);
			}
		}
		err = shg_txn_commit(txn);
		if (!err)
			return 0;
		/* Only a conflict leaves the txn valid (to abort here). */
		if (err != SHG_ECONFLICT)
			return sfail(p, "shg_txn_commit", err);
		shg_txn_abort(txn);
	}
	return sfail(p, "shg_txn_commit", err);
}

static int fill(struct peer *p, struct shg_root *root, uint64_t nkeys,
		unsigned batch)
{
	uint64_t keys[1000], vals[1000], i = 0;
	int err;

	if (batch > 1000 || batch == 0)
		batch = 1000;
	err = put_txn(p, root, true, NULL, NULL, 0);
	while (!err && i < nkeys) {
		unsigned n = 0;

		for (; n < batch && i < nkeys; n++, i++) {
			keys[n] = key_of(i);
			vals[n] = val_of(keys[n], 0);
		}
		err = put_txn(p, root, false, keys, vals, n);
	}
	return err;
}

/* Wait for a grace period and reclaim what it released (twice: a batch
 * sealed by the first pass is freed by the second). */
static void settle(struct shg_seg *seg)
{
	int i;

	for (i = 0; i < 2; i++) {
		if (shg_synchronize(seg, 10000))
			break;
		shg_reclaim(seg);
	}
}

static int used_bytes(struct shg_seg *seg, long long *used, long long *retired)
{
	struct shg_stats st;
	int err = shg_stats_get(seg, &st);

	if (err)
		return err;
	*used = (long long)(st.small_used_bytes + st.large_used_bytes);
	if (retired)
		*retired = (long long)st.retired_bytes;
	return 0;
}

static int version_bytes(struct shandle *h, struct shg_off ver,
			 long long *bytes)
{
	struct shg_version_info vi;
	int err = shg_version_info(h->seg, ver, &vi);

	if (!err)
		*bytes = (long long)vi.bytes;
	return err;
}

static int current_bytes(struct shandle *h, long long *bytes)
{
	int err;

	shg_thread_read_lock(h->t);
	err = version_bytes(h, shg_version_current(h->root), bytes);
	shg_thread_read_unlock(h->t);
	return err;
}

/* The read-section flavor every process of this system uses. */
static int32_t flavor_of(const struct peer *p)
{
	return p->ops == &peer_shmgraph_fence_ops ? SHG_FLAVOR_FENCE :
						    SHG_FLAVOR_AUTO;
}

/* Open flags of every process of this system. */
static uint32_t open_flags(const struct peer *p)
{
	return p->ops == &peer_shmgraph_huge_ops ? SHG_OPEN_HUGE : 0;
}

/*
 * JSON fields saying whether the segment is on huge pages: "huge_pages"
 * is what the file system gives ("none" when not asked for), with the
 * bytes mapped huge after the build and the huge page size.
 */
static void huge_json(struct peer *p, struct shg_seg *seg)
{
	struct shg_huge_info hi = { .size = sizeof(hi) };

	if (!open_flags(p) || shg_seg_huge(seg, &hi) != 0) {
		snprintf(p->json_sys, sizeof(p->json_sys),
			 ",\"huge_pages\":\"none\"");
		return;
	}
	snprintf(p->json_sys, sizeof(p->json_sys),
		 ",\"huge_pages\":\"%s%s\",\"huge_bytes\":%llu,"
		 "\"huge_page_size\":%llu",
		 hi.policy, hi.backing == SHG_HUGE_COLLAPSE ? " collapse" : "",
		 (unsigned long long)hi.huge_bytes,
		 (unsigned long long)hi.page_size);
}

/* The configuration with wide keys or values (shorter, to fit). */
static void wide_variant(struct peer *p, const struct shandle *h)
{
	p->variant[0] = '\0';
	peer_variant_add(
		p,
		"persistent hash map (HAMT) in shm, %u B %s keys, %u B %s "
		"values, %s read sections (flavor %s), lookup = current "
		"version + shg_map_get_%s; txn per update or batch",
		h->ksize, h->ksize > 8 ? "BYTES" : "U64", h->vsize,
		h->vsize > 8 ? "BYTES" : "U64",
		shg_seg_flavor(h->seg) == SHG_FLAVOR_FENCE ? "fence" :
							     "membarrier",
		flavor_of(p) == SHG_FLAVOR_FENCE ? "FENCE" : "AUTO",
		h->ksize > 8 ? "bytes" : "u64");
}

static int s_create(struct peer *p, uint64_t nkeys)
{
	static unsigned counter;
	struct shg_opts o = { .size = sizeof(o) };
	struct sstate *s = calloc(1, sizeof(*s));
	struct shandle *h;
	int err;

	if (!s)
		return -ENOMEM;
	h = &s->main;
	if (open_flags(p) && p->huge_dir) {
		snprintf(s->name, sizeof(s->name), "%s/shg-bench-%d-map-%u",
			 p->huge_dir, (int)getpid(), counter++);
		bench_cleanup_path(s->name, false);
	} else {
		snprintf(s->name, sizeof(s->name), "/shg-bench-%d-map-%u",
			 (int)getpid(), counter++);
		bench_cleanup_shm(s->name);
	}
	o.capacity = SEG_CAPACITY;
	o.flavor = flavor_of(p);
	o.flags = open_flags(p);
	o.numa_policy = p->numa_policy;
	o.numa_node = p->numa_node;
	err = shg_seg_create(s->name, &o, &h->seg);
	if (err) {
		free(s);
		return sfail(p, "shg_seg_create", err);
	}
	h->created = true;
	h->ksize = peer_ksize(p);
	h->vsize = peer_vsize(p);
	err = shg_thread_get(h->seg, &h->t);
	if (err) {
		sfail(p, "shg_thread_get", err);
		goto fail;
	}
	err = shg_root_create(h->seg, MAP_ROOT, &h->root);
	if (err) {
		sfail(p, "shg_root_create", err);
		goto fail;
	}
	err = fill(p, h->root, nkeys, 1000);
	if (err)
		goto fail;
	settle(h->seg);
	p->priv = s;
	p->main_handle = h;
	p->nkeys = nkeys;
	snprintf(p->variant, sizeof(p->variant),
		 "persistent hash map (HAMT) in a shm segment%s, %s read "
		 "sections (flavor %s; inline handle), lookup = current "
		 "version + shg_map_get_u64; txn per update or batch",
		 open_flags(p) ? " on huge pages" : "",
		 shg_seg_flavor(h->seg) == SHG_FLAVOR_FENCE ? "fence" :
							      "membarrier",
		 flavor_of(p) == SHG_FLAVOR_FENCE ? "FENCE" : "AUTO");
	huge_json(p, h->seg);
	if (h->ksize != 8 || h->vsize != 8)
		wide_variant(p, h);
	return 0;
fail:
	handle_close(s, h);
	free(s);
	return err;
}

static int s_attach(struct peer *p, void **handle)
{
	struct shg_opts o = { .size = sizeof(o) };
	struct sstate *s = p->priv;
	struct shandle *h = calloc(1, sizeof(*h));
	int err;

	if (!h)
		return -ENOMEM;
	h->ksize = peer_ksize(p);
	h->vsize = peer_vsize(p);
	o.flavor = flavor_of(p);
	o.flags = open_flags(p);
	err = shg_seg_open(s->name, &o, &h->seg);
	if (err) {
		free(h);
		return sfail(p, "shg_seg_open", err);
	}
	err = shg_thread_get(h->seg, &h->t);
	if (err) {
		sfail(p, "shg_thread_get", err);
		goto fail;
	}
	err = shg_root_open(h->seg, MAP_ROOT, &h->root);
	if (err) {
		sfail(p, "shg_root_open", err);
		goto fail;
	}
	*handle = h;
	return 0;
fail:
	shg_seg_close(h->seg);
	free(h);
	return err;
}

static void s_detach(struct peer *p, void *handle)
{
	struct shandle *h = handle;

	(void)p;
	if (!h)
		return;
	if (h->root)
		shg_root_close(h->root);
	shg_seg_close(h->seg);
	free(h);
}

static inline bool s_get(struct shandle *h, uint64_t key, uint64_t *val)
{
	struct shg_version_info vi;
	struct shg_val v;
	bool found = false;

	shg_thread_read_lock(h->t);
	if (shg_version_info(h->seg, shg_version_current(h->root), &vi) == 0 &&
	    shg_map_get_u64(h->seg, vi.node, key, &v) == 0) {
		*val = v.u64;
		found = true;
	}
	shg_thread_read_unlock(h->t);
	return found;
}

/* @key in the map @map (wide or narrow keys and values); context: a read
 * section or a pin keeps @map alive. */
static inline bool map_lookup(struct shandle *h, struct shg_off map,
			      uint64_t key, uint64_t *val)
{
	unsigned char kb[PEER_KEY_MAX];
	struct shg_val v;
	int err;

	if (h->ksize > 8) {
		key_fill(kb, key, h->ksize);
		err = shg_map_get_bytes(h->seg, map, kb, h->ksize, &v);
	} else {
		err = shg_map_get_u64(h->seg, map, key, &v);
	}
	if (err)
		return false;
	if (h->vsize > 8)
		return v.kind == SHG_KIND_BYTES &&
		       val_read(v.bytes.p, v.bytes.len, h->vsize, val);
	*val = v.u64;
	return true;
}

static inline bool s_get_wide(struct shandle *h, uint64_t key, uint64_t *val)
{
	struct shg_version_info vi;
	bool found = false;

	shg_thread_read_lock(h->t);
	if (shg_version_info(h->seg, shg_version_current(h->root), &vi) == 0)
		found = map_lookup(h, vi.node, key, val);
	shg_thread_read_unlock(h->t);
	return found;
}

static bool s_get_one(struct peer *p, void *handle, uint64_t key, uint64_t *val)
{
	struct shandle *h = handle;

	(void)p;
	if (h->ksize != 8 || h->vsize != 8)
		return s_get_wide(h, key, val);
	return s_get(h, key, val);
}

/*
 * The lookup_many loop: batches of j->batch random keys, one read section
 * and one shg_map_get_many_u64() per batch (current version as in
 * s_get()), every key verified; ops count keys. Every 4th batch is timed
 * on its own and recorded as its time per key (the clock reads, ~25 ns,
 * are spread over the batch).
 */
static int s_lookup_many_loop(struct peer *p, struct shandle *h,
			      struct lookup_job *j)
{
	uint64_t rng = j->seed | 1, n = j->iters, miss = 0, i, end = 0, t0;
	unsigned b = j->batch, k, nb = 0;

	if (b > PEER_BATCH_MAX || h->ksize != 8 || h->vsize != 8) {
		peer_fail(p,
			  "lookup_many: batches of 2..%d, 8-byte keys "
			  "and values only",
			  PEER_BATCH_MAX);
		return -EINVAL;
	}
	t0 = bench_now_ns();
	if (j->duration_ns) {
		n = UINT64_MAX;
		end = t0 + j->duration_ns;
	}
	for (i = 0; i < n; i += b, nb++) {
		uint64_t keys[PEER_BATCH_MAX], s = 0;
		struct shg_val vals[PEER_BATCH_MAX];
		int res[PEER_BATCH_MAX];
		struct shg_version_info vi;
		bool timed = j->hist && (nb & 3) == 0;
		int64_t got = -1;

		for (k = 0; k < b; k++)
			keys[k] = key_of(job_index(j, &rng));
		if (peer_unlikely(timed))
			s = bench_now_ns();
		shg_thread_read_lock(h->t);
		if (shg_version_info(h->seg, shg_version_current(h->root),
				     &vi) == 0)
			got = shg_map_get_many_u64(h->seg, vi.node, b, keys,
						   vals, res);
		shg_thread_read_unlock(h->t);
		if (peer_unlikely(timed))
			bench_hist_record(j->hist, (bench_now_ns() - s) / b);
		if (peer_unlikely(got < 0)) {
			miss += b;
			continue;
		}
		for (k = 0; k < b; k++)
			miss += res[k] != 0 || !val_ok(keys[k], vals[k].u64);
		if (peer_unlikely(end && (nb & 15) == 15 &&
				  bench_now_ns() >= end)) {
			i += b;
			break;
		}
	}
	j->ns = bench_now_ns() - t0;
	j->ops = i;
	j->misses = miss;
	return 0;
}

static int s_lookup_loop(struct peer *p, void *handle, struct lookup_job *j)
{
	struct shandle *h = handle;

	if (j->batch > 1)
		return s_lookup_many_loop(p, h, j);
	(void)p;
	if (h->ksize != 8 || h->vsize != 8)
		PEER_LOOKUP_LOOP(j, h, s_get_wide);
	else
		PEER_LOOKUP_LOOP(j, h, s_get);
	return 0;
}

static int s_update(struct peer *p, void *handle, uint64_t key, uint64_t val)
{
	struct shandle *h = handle;

	return put_txn(p, h->root, false, &key, &val, 1);
}

static int s_update_batch(struct peer *p, void *handle, const uint64_t *keys,
			  const uint64_t *vals, unsigned n)
{
	struct shandle *h = handle;

	return put_txn(p, h->root, false, keys, vals, n);
}

static int s_build(struct peer *p, uint64_t nkeys, unsigned batch, uint64_t *ns)
{
	struct sstate *s = p->priv;
	struct shg_root *root;
	char name[32];
	uint64_t t0;
	int err, err2;

	snprintf(name, sizeof(name), "build-%u", s->builds++);
	err = shg_root_create(s->main.seg, name, &root);
	if (err)
		return sfail(p, "shg_root_create", err);
	t0 = bench_now_ns();
	err = fill(p, root, nkeys, batch);
	*ns = bench_now_ns() - t0;
	shg_root_close(root);
	err2 = shg_root_remove(s->main.seg, name);
	if (!err && err2)
		err = sfail(p, "shg_root_remove", err2);
	settle(s->main.seg);
	return err;
}

static int s_bytes(struct peer *p, const char **variants, long long *bytes,
		   unsigned *n)
{
	struct sstate *s = p->priv;
	int err;

	settle(s->main.seg);
	err = used_bytes(s->main.seg, &bytes[0], NULL);
	if (err)
		return sfail(p, "shg_stats_get", err);
	variants[0] = "allocator used bytes (shg_stats_get small + large), "
		      "after build, synchronize and reclaim";
	err = current_bytes(&s->main, &bytes[1]);
	if (err)
		return sfail(p, "shg_version_info", err);
	variants[1] = "version bytes (shg_version_info .bytes)";
	*n = 2;
	return 0;
}

static void s_destroy(struct peer *p)
{
	struct sstate *s = p->priv;

	if (!s)
		return;
	handle_close(s, &s->main);
	free(s);
	p->priv = NULL;
	p->main_handle = NULL;
}

/* Look every key up in the pinned v1 (up to 1M of them): each must still
 * hold its value as built (generation 0). */
static void check_pinned(struct shandle *h, struct shg_pin *pin, uint64_t nkeys,
			 struct retained_result *r)
{
	struct shg_version_info vi;
	uint64_t i;

	if (shg_version_info(h->seg, shg_pin_version(pin), &vi)) {
		r->pinned_bad = nkeys;
		r->pinned_checked = nkeys;
		return;
	}
	for (i = 0; i < nkeys && i < 1000000; i++) {
		uint64_t key = key_of(i), v;

		if (!map_lookup(h, vi.node, key, &v) || v != val_of(key, 0))
			r->pinned_bad++;
		r->pinned_checked++;
	}
}

int peer_shmgraph_retained(struct peer *p, uint64_t k,
			   struct retained_result *r)
{
	struct sstate *s = p->priv;
	struct shandle *h = &s->main;
	uint64_t rng = 12345, i, t0;
	struct shg_pin *pin;
	int err;

	memset(r, 0, sizeof(*r));
	settle(h->seg);
	err = used_bytes(h->seg, &r->used_before, NULL);
	if (err)
		return sfail(p, "shg_stats_get", err);
	err = shg_pin_current(h->root, &pin);
	if (err)
		return sfail(p, "shg_pin_current", err);
	err = version_bytes(h, shg_pin_version(pin), &r->version_bytes);
	if (err) {
		shg_unpin(pin);
		return sfail(p, "shg_version_info", err);
	}
	check_pinned(h, pin, p->nkeys, r);
	r->pinned_bad_before = r->pinned_bad;
	r->pinned_bad = 0;
	r->pinned_checked = 0;
	t0 = bench_now_ns();
	for (i = 0; i < k && !err; i++) {
		uint64_t key = key_of(rand_index(&rng, p->nkeys));

		err = s_update(p, h, key, val_of(key, (uint32_t)i + 7));
	}
	r->ns = bench_now_ns() - t0;
	r->updates = i;
	if (!err)
		err = used_bytes(h->seg, &r->used_end, NULL);
	settle(h->seg);
	if (!err)
		check_pinned(h, pin, p->nkeys, r);
	if (!err)
		err = used_bytes(h->seg, &r->used_pinned, &r->retired_pinned);
	if (!err)
		err = current_bytes(h, &r->live_bytes);
	shg_unpin(pin);
	settle(h->seg);
	if (!err)
		err = used_bytes(h->seg, &r->used_unpinned, NULL);
	if (err && !p->err[0])
		sfail(p, "retained", err);
	return err;
}

const char *peer_shmgraph_seg_name(const struct peer *p)
{
	const struct sstate *s = p->priv;

	return s ? s->name : NULL;
}

static int s_hold(struct peer *p, void *handle, void **tok, long long *bytes)
{
	struct shandle *h = handle;
	struct shg_pin *pin;
	int err = shg_pin_current(h->root, &pin);

	if (err)
		return sfail(p, "shg_pin_current", err);
	err = version_bytes(h, shg_pin_version(pin), bytes);
	if (err) {
		shg_unpin(pin);
		return sfail(p, "shg_version_info", err);
	}
	*tok = pin;
	return 0;
}

static void s_release(struct peer *p, void *handle, void *tok)
{
	(void)p;
	(void)handle;
	shg_unpin(tok);
}

static int s_mem(struct peer *p, bool do_settle, long long *used,
		 long long *retired, long long *live)
{
	struct sstate *s = p->priv;
	int err;

	if (do_settle)
		settle(s->main.seg);
	err = used_bytes(s->main.seg, used, retired);
	if (!err)
		err = current_bytes(&s->main, live);
	return err ? sfail(p, "memory", err) : 0;
}

/* Three tables with the same functions: which one a peer uses (its
 * address) selects the flavor and huge pages (see above). */
#define SHMGRAPH_OPS                                                          \
	{                                                                     \
		.system = "shmgraph", .create = s_create, .attach = s_attach, \
		.detach = s_detach, .lookup_loop = s_lookup_loop,             \
		.lookup_one = s_get_one, .update = s_update,                  \
		.update_batch = s_update_batch, .build = s_build,             \
		.bytes = s_bytes, .hold = s_hold, .release = s_release,       \
		.mem = s_mem, .destroy = s_destroy,                           \
	}

const struct peer_ops peer_shmgraph_ops = SHMGRAPH_OPS;
const struct peer_ops peer_shmgraph_fence_ops = SHMGRAPH_OPS;
const struct peer_ops peer_shmgraph_huge_ops = SHMGRAPH_OPS;
