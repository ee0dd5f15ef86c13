/* SPDX-License-Identifier: MIT */
/*
 * Persistent hash map: random put/overwrite/delete/get sequences checked
 * against an in-process reference model (u64 and bytes keys, forced hash
 * collisions, large values), canonical shape (iteration order independent
 * of the insertion order), complete iteration, structural sharing of a
 * one-key commit, committed versions left intact, key-kind errors, batched
 * lookups (shg_map_get_many_*) equal to single ones, also on corrupt
 * nodes, and a rough lookup timing. SHG_LONG_TESTS=1 runs longer sequences.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "map_internal.h"
#include "testutil.h"

static unsigned rng_below(uint64_t *s, unsigned n)
{
	return (unsigned)(tu_rng_next(s) % n);
}

static void new_map(struct tu_env *e, enum shg_kind kk, enum shg_kind vk,
		    unsigned flags)
{
	struct shg_txn *txn;

	tu_ok(shg_txn_begin(e->root, &txn));
	tu_ok(shg__txn_map_new_flags(txn, SHG_REF_ROOT, kk, vk, flags));
	tu_ok(shg_txn_commit(txn));
}

static struct shg_val u64v(uint64_t x)
{
	struct shg_val v = { .kind = SHG_KIND_U64 };

	v.u64 = x;
	return v;
}

/* ---- shape invariants (layout documented in lib/map.c) ----------------- */

struct shape {
	unsigned nodes, leaves, coll, maxdepth;
};

/*
 * Walk the subtree at @off (depth @d) checking the canonical form: bitmap
 * nodes with disjoint maps and count = entries + children's counts; every
 * non-root subtree holds >= 2 entries and is a leaf (u64 keys ascending)
 * exactly when it fits one: up to MAP_LEAF_MAX entries with u64 keys, any
 * number at depth 13 (@coll counts those). Returns the subtree's count.
 */
static unsigned shape_walk(struct tu_env *e, uint64_t off, unsigned d,
			   struct shape *sh)
{
	const uint8_t *p = shg_ptr(e->seg, (struct shg_off){ off }, 32);
	const uint64_t *slot;
	uint32_t type, dm, nm, count, nd, nc, sum;

	assert_non_null(p);
	memcpy(&type, p, 4);
	memcpy(&dm, p + 16, 4);
	memcpy(&nm, p + 20, 4);
	memcpy(&count, p + 24, 4);
	assert_int_equal(p[31], d);
	slot = (const uint64_t *)(p + 32);
	sh->nodes++;
	if (d > sh->maxdepth)
		sh->maxdepth = d;
	if (d > 0 && count <= leaf_max(p[28], d)) {
		assert_int_equal(type, SHG_TYPE_MAP_LEAF);
		assert_true(count >= 2);
		sh->leaves++;
		sh->coll += d == 13;
		if (p[28] == SHG_KIND_U64)
			for (unsigned i = 1; i < count; i++)
				assert_true(slot[2 * i - 2] < slot[2 * i]);
		return count;
	}
	assert_int_equal(type, SHG_TYPE_MAP);
	assert_true(d < 13);
	assert_int_equal(dm & nm, 0);
	nd = (uint32_t)__builtin_popcount(dm);
	nc = (uint32_t)__builtin_popcount(nm);
	sum = nd;
	for (unsigned i = 0; i < nc; i++)
		sum += shape_walk(e, slot[2 * nd + i], d + 1, sh);
	assert_int_equal(sum, count);
	return count;
}

static void check_shape(struct tu_env *e, struct shg_off map, struct shape *sh)
{
	memset(sh, 0, sizeof(*sh));
	shape_walk(e, map.v, 0, sh);
}

/* ---- u64 keys against a reference array -------------------------------- */

struct u64model {
	unsigned n; /* key universe: keys 0..n-1 (scrambled below) */
	bool *present;
	uint64_t *val;
	unsigned count;
};

/* Key of index i: i in the low 32 bits (so the low byte drives the test
 * hash), a scramble of i above. */
static uint64_t ukey(unsigned i)
{
	return (uint64_t)i | ((uint64_t)(uint32_t)(i * 2654435761u) << 32);
}

static void u64_verify_all(struct tu_env *e, const struct u64model *m,
			   struct shg_off map)
{
	struct shg_val v;
	unsigned i;
	int err;

	assert_int_equal(shg_map_count(e->seg, map), m->count);
	for (i = 0; i < m->n; i++) {
		err = shg_map_get_u64(e->seg, map, ukey(i), &v);
		if (m->present[i]) {
			assert_int_equal(err, 0);
			assert_int_equal(v.kind, SHG_KIND_U64);
			assert_true(v.u64 == m->val[i]);
		} else {
			assert_int_equal(err, -ENOENT);
		}
	}
}

/* Every entry exactly once, keys in the model, values right. */
static void u64_verify_iter(struct tu_env *e, const struct u64model *m,
			    struct shg_off map)
{
	struct shg_map_iter it;
	struct shg_val k, v;
	uint8_t *seen = calloc(m->n, 1);
	unsigned n = 0;
	int err;

	assert_non_null(seen);
	tu_ok(shg_map_iter_init(e->seg, map, &it));
	while ((err = shg_map_iter_next(&it, &k, &v)) == 0) {
		unsigned i;

		assert_int_equal(k.kind, SHG_KIND_U64);
		i = (uint32_t)k.u64;
		assert_true(i < m->n);
		assert_true(ukey(i) == k.u64);
		assert_true(m->present[i]);
		assert_false(seen[i]);
		seen[i] = 1;
		assert_true(v.u64 == m->val[i]);
		n++;
	}
	assert_int_equal(err, -ENOENT);
	assert_int_equal(n, m->count);
	free(seen);
}

/*
 * Random ops on a u64 map: @ops in commits of 1..1000, keys from a
 * universe of @nkeys; then delete everything. Checks each op against the
 * model inside the txn, all keys and the iteration after some commits.
 */
static void u64_random(uint64_t seed, unsigned nkeys, unsigned long ops,
		       unsigned flags)
{
	struct u64model m = { .n = nkeys };
	struct shape sh;
	struct tu_env e;
	struct shg_txn *txn;
	struct shg_val v;
	unsigned long done = 0;
	unsigned commits = 0, i;
	uint64_t s = seed;
	int err;

	m.present = calloc(nkeys, sizeof(*m.present));
	m.val = calloc(nkeys, sizeof(*m.val));
	assert_non_null(m.present);
	assert_non_null(m.val);
	tu_env_open(&e, 512u << 20, "map");
	new_map(&e, SHG_KIND_U64, SHG_KIND_U64, flags);
	while (done < ops) {
		unsigned batch = 1 + rng_below(&s, 1000);

		tu_ok(shg_txn_begin(e.root, &txn));
		for (unsigned b = 0; b < batch; b++, done++) {
			unsigned r = rng_below(&s, 100);

			i = rng_below(&s, nkeys);
			if (r < 55) {
				uint64_t x = tu_rng_next(&s);
				struct shg_val pv = u64v(x);

				tu_ok(shg_txn_map_put_u64(txn, SHG_REF_ROOT,
							  ukey(i), &pv));
				m.count += !m.present[i];
				m.present[i] = true;
				m.val[i] = x;
			} else if (r < 95) {
				err = shg_txn_map_del_u64(txn, SHG_REF_ROOT,
							  ukey(i));
				assert_int_equal(err,
						 m.present[i] ? 0 : -ENOENT);
				m.count -= m.present[i];
				m.present[i] = false;
			}
			err = shg_map_get_u64(e.seg, shg_txn_root_node(txn),
					      ukey(i), &v);
			assert_int_equal(err, m.present[i] ? 0 : -ENOENT);
			if (!err)
				assert_true(v.u64 == m.val[i]);
		}
		assert_int_equal(shg_map_count(e.seg, shg_txn_root_node(txn)),
				 m.count);
		tu_ok(shg_txn_commit(txn));
		if (++commits % 64 == 1) {
			tu_ok(shg_read_lock(e.seg));
			u64_verify_all(&e, &m, tu_cur_node(&e));
			u64_verify_iter(&e, &m, tu_cur_node(&e));
			check_shape(&e, tu_cur_node(&e), &sh);
			shg_read_unlock(e.seg);
		}
	}
	tu_ok(shg_read_lock(e.seg));
	u64_verify_all(&e, &m, tu_cur_node(&e));
	u64_verify_iter(&e, &m, tu_cur_node(&e));
	check_shape(&e, tu_cur_node(&e), &sh);
	shg_read_unlock(e.seg);
	print_message("seed %llu: %u keys live after %lu ops in %u commits; "
		      "%u nodes, %u leaves (%u at depth 13), depth %u\n",
		      (unsigned long long)seed, m.count, done, commits,
		      sh.nodes, sh.leaves, sh.coll, sh.maxdepth);
	assert_true(m.count < 2 || sh.leaves > 0);
	/* The test hash has 256 values, each shared by the keys i + 256 j:
	 * well over MAP_LEAF_MAX keys a value need chains down to depth 13. */
	if ((flags & SHG_MAP_F_TESTHASH) && m.count > 256 * 80)
		assert_true(sh.coll > 0 && sh.maxdepth == 13);

	/* delete down to empty, in random batches */
	while (m.count) {
		unsigned batch = 1 + rng_below(&s, 1000);

		tu_ok(shg_txn_begin(e.root, &txn));
		for (i = rng_below(&s, nkeys); batch && m.count;
		     i = (i + 7919) % nkeys) {
			if (!m.present[i])
				continue;
			tu_ok(shg_txn_map_del_u64(txn, SHG_REF_ROOT, ukey(i)));
			m.present[i] = false;
			m.count--;
			batch--;
		}
		tu_ok(shg_txn_commit(txn));
	}
	tu_ok(shg_read_lock(e.seg));
	u64_verify_all(&e, &m, tu_cur_node(&e));
	u64_verify_iter(&e, &m, tu_cur_node(&e));
	check_shape(&e, tu_cur_node(&e), &sh);
	assert_int_equal(sh.nodes, 1); /* empty: the root alone */
	shg_read_unlock(e.seg);
	TU_CHECK_SOUND(e.seg);
	tu_env_close(&e);
	free(m.present);
	free(m.val);
}

static void test_map_u64_random(void **state)
{
	unsigned long ops = tu_long_tests() ? 4000000 : 400000;

	(void)state;
	u64_random(1, 20000, ops, 0);
	u64_random(2, 2000, ops, 0);
	u64_random(3, 200000, ops / 2, 0);
}

static void test_map_u64_collisions(void **state)
{
	unsigned long ops = tu_long_tests() ? 1000000 : 150000;

	(void)state;
	/* hash = key & 0xff: ~8 keys per hash value, leaves at depth 2 */
	u64_random(4, 2048, ops, SHG_MAP_F_TESTHASH);
	/* a few keys: leaves of two, collapse on delete */
	u64_random(5, 600, ops, SHG_MAP_F_TESTHASH);
	/* ~90 live keys per hash value: chains of single-child nodes down to
	 * leaves at depth 13, split and merged back as they pass
	 * MAP_LEAF_MAX */
	u64_random(6, 40000, ops, SHG_MAP_F_TESTHASH);
}

/* ---- bytes keys and values --------------------------------------------- */

struct bmodel {
	unsigned n;
	char **key; /* key strings (length varies, one is empty) */
	size_t *klen;
	uint8_t **val; /* NULL = absent */
	size_t *vlen;
	unsigned count;
};

static void bmodel_init(struct bmodel *m, unsigned n, uint64_t *s)
{
	unsigned i;

	m->n = n;
	m->count = 0;
	m->key = calloc(n, sizeof(*m->key));
	m->klen = calloc(n, sizeof(*m->klen));
	m->val = calloc(n, sizeof(*m->val));
	m->vlen = calloc(n, sizeof(*m->vlen));
	assert_non_null(m->vlen);
	for (i = 0; i < n; i++) {
		char buf[128];
		unsigned pad = rng_below(s, 40);

		if (i == 0) {
			buf[0] = 0; /* the empty key */
		} else {
			int l = snprintf(buf, sizeof(buf), "key-%u-", i);

			memset(buf + l, 'a' + (char)(i % 26), pad);
			buf[l + pad] = 0;
		}
		m->key[i] = strdup(buf);
		m->klen[i] = strlen(buf);
	}
}

static void bmodel_free(struct bmodel *m)
{
	for (unsigned i = 0; i < m->n; i++) {
		free(m->key[i]);
		free(m->val[i]);
	}
	free(m->key);
	free(m->klen);
	free(m->val);
	free(m->vlen);
}

static void bytes_verify(struct tu_env *e, const struct bmodel *m,
			 struct shg_off map)
{
	struct shg_map_iter it;
	struct shg_val k, v;
	unsigned i, n = 0;
	int err;

	assert_int_equal(shg_map_count(e->seg, map), m->count);
	for (i = 0; i < m->n; i++) {
		err = shg_map_get_bytes(e->seg, map, m->key[i], m->klen[i], &v);
		if (!m->val[i]) {
			assert_int_equal(err, -ENOENT);
			continue;
		}
		assert_int_equal(err, 0);
		assert_int_equal(v.kind, SHG_KIND_BYTES);
		assert_int_equal(v.bytes.len, m->vlen[i]);
		assert_memory_equal(v.bytes.p, m->val[i], m->vlen[i] + 0);
	}
	tu_ok(shg_map_iter_init(e->seg, map, &it));
	while ((err = shg_map_iter_next(&it, &k, &v)) == 0) {
		assert_int_equal(k.kind, SHG_KIND_BYTES);
		n++;
	}
	assert_int_equal(err, -ENOENT);
	assert_int_equal(n, m->count);
}

static void bytes_random(uint64_t seed, unsigned nkeys, unsigned long ops,
			 unsigned flags)
{
	struct bmodel m;
	struct tu_env e;
	struct shg_txn *txn;
	struct shg_val v = { .kind = SHG_KIND_BYTES };
	unsigned long done = 0;
	unsigned i, commits = 0;
	uint64_t s = seed;
	uint8_t *buf = malloc(65536);
	int err;

	assert_non_null(buf);
	bmodel_init(&m, nkeys, &s);
	tu_env_open(&e, 512u << 20, "map");
	new_map(&e, SHG_KIND_BYTES, SHG_KIND_BYTES, flags);
	while (done < ops) {
		unsigned batch = 1 + rng_below(&s, 1000);

		tu_ok(shg_txn_begin(e.root, &txn));
		for (unsigned b = 0; b < batch; b++, done++) {
			i = rng_below(&s, nkeys);
			if (rng_below(&s, 100) < 60) {
				size_t len = rng_below(&s, 1000) == 0 ?
						     65536 :
						     rng_below(&s, 100);

				for (size_t j = 0; j < len; j += 8) {
					uint64_t x = tu_rng_next(&s);

					memcpy(buf + j, &x,
					       len - j < 8 ? len - j : 8);
				}
				v.bytes.p = buf;
				v.bytes.len = len;
				tu_ok(shg_txn_map_put_bytes(txn, SHG_REF_ROOT,
							    m.key[i], m.klen[i],
							    &v));
				m.count += !m.val[i];
				free(m.val[i]);
				m.val[i] = malloc(len + 1);
				memcpy(m.val[i], buf, len);
				m.vlen[i] = len;
			} else {
				err = shg_txn_map_del_bytes(
					txn, SHG_REF_ROOT, m.key[i], m.klen[i]);
				assert_int_equal(err, m.val[i] ? 0 : -ENOENT);
				m.count -= m.val[i] != NULL;
				free(m.val[i]);
				m.val[i] = NULL;
			}
		}
		tu_ok(shg_txn_commit(txn));
		if (++commits % 16 == 1) {
			tu_ok(shg_read_lock(e.seg));
			bytes_verify(&e, &m, tu_cur_node(&e));
			shg_read_unlock(e.seg);
		}
	}
	tu_ok(shg_txn_begin(e.root, &txn));
	for (i = 0; i < nkeys; i++) {
		if (!m.val[i])
			continue;
		tu_ok(shg_txn_map_del_bytes(txn, SHG_REF_ROOT, m.key[i],
					    m.klen[i]));
		free(m.val[i]);
		m.val[i] = NULL;
		m.count--;
	}
	tu_ok(shg_txn_commit(txn));
	tu_ok(shg_read_lock(e.seg));
	bytes_verify(&e, &m, tu_cur_node(&e));
	shg_read_unlock(e.seg);
	TU_CHECK_SOUND(e.seg);
	tu_env_close(&e);
	bmodel_free(&m);
	free(buf);
}

static void test_map_bytes_random(void **state)
{
	unsigned long ops = tu_long_tests() ? 1000000 : 150000;

	(void)state;
	bytes_random(11, 5000, ops, 0);
	bytes_random(12, 3000, ops / 2, SHG_MAP_F_TESTHASH);
}

/* ---- canonical shape and iteration order ----------------------------- */

/* Iterate @map into @keys (capacity @cap); returns the count. */
static unsigned iter_keys(struct tu_env *e, struct shg_off map, uint64_t *keys,
			  unsigned cap)
{
	struct shg_map_iter it;
	struct shg_val k, v;
	unsigned n = 0;
	int err;

	tu_ok(shg_map_iter_init(e->seg, map, &it));
	while ((err = shg_map_iter_next(&it, &k, &v)) == 0) {
		assert_true(n < cap);
		assert_true(v.u64 == ~k.u64);
		keys[n++] = k.u64;
	}
	assert_int_equal(err, -ENOENT);
	return n;
}

/*
 * Builds the same key set three ways (ascending, descending, and with
 * extra keys put then deleted) in three roots and compares the iteration
 * orders; also iterates twice.
 */
static void canonical_case(unsigned nkeys, unsigned flags)
{
	static const char *names[3] = { "a", "b", "c" };
	struct shg_root *roots[3];
	struct shg_off maps[3];
	struct shape sh[3];
	uint64_t *ks[4];
	struct tu_env e;
	struct shg_txn *txn;
	unsigned r, i, n[4];

	tu_env_open(&e, 256u << 20, "map");
	for (r = 0; r < 3; r++) {
		struct shg_ref ref = SHG_REF_ROOT;

		tu_ok(shg_root_create(e.seg, names[r], &roots[r]));
		tu_ok(shg_txn_begin(roots[r], &txn));
		tu_ok(shg__txn_map_new_flags(txn, ref, SHG_KIND_U64,
					     SHG_KIND_U64, flags));
		for (i = 0; i < nkeys; i++) {
			unsigned j = r == 1 ? nkeys - 1 - i : i;
			struct shg_val v = u64v(~ukey(j * 3));

			tu_ok(shg_txn_map_put_u64(txn, ref, ukey(j * 3), &v));
			if (r == 2) { /* noise: insert and remove other keys */
				v = u64v(1);
				tu_ok(shg_txn_map_put_u64(txn, ref,
							  ukey(j * 3 + 1), &v));
			}
		}
		if (r == 2) {
			for (i = 0; i < nkeys; i++)
				tu_ok(shg_txn_map_del_u64(txn, ref,
							  ukey(i * 3 + 1)));
		}
		tu_ok(shg_txn_commit(txn));
	}
	for (i = 0; i < 4; i++) {
		ks[i] = calloc(nkeys + 1, sizeof(uint64_t));
		assert_non_null(ks[i]);
	}
	tu_ok(shg_read_lock(e.seg));
	for (r = 0; r < 3; r++) {
		struct shg_version_info vi;

		tu_ok(shg_version_info(e.seg, shg_version_current(roots[r]),
				       &vi));
		maps[r] = vi.node;
		n[r] = iter_keys(&e, maps[r], ks[r], nkeys + 1);
		assert_int_equal(n[r], nkeys);
		check_shape(&e, maps[r], &sh[r]);
		assert_int_equal(sh[r].nodes, sh[0].nodes);
	}
	n[3] = iter_keys(&e, maps[0], ks[3], nkeys + 1);
	shg_read_unlock(e.seg);
	assert_memory_equal(ks[0], ks[1], nkeys * sizeof(uint64_t));
	assert_memory_equal(ks[0], ks[2], nkeys * sizeof(uint64_t));
	assert_memory_equal(ks[0], ks[3], nkeys * sizeof(uint64_t));
	for (i = 0; i < 4; i++)
		free(ks[i]);
	for (r = 0; r < 3; r++)
		shg_root_close(roots[r]);
	TU_CHECK_SOUND(e.seg);
	tu_env_close(&e);
}

static void test_map_canonical_order(void **state)
{
	(void)state;
	canonical_case(5000, 0);
	canonical_case(3000, SHG_MAP_F_TESTHASH);
	canonical_case(1, 0);
	canonical_case(2, SHG_MAP_F_TESTHASH);
}

/* ---- structural sharing -------------------------------------------------- */

/* Nodes on the path of @key's hash (root included). */
static unsigned path_nodes(struct tu_env *e, struct shg_off map, uint64_t key)
{
	uint64_t h = shg__hash_u64(e->seg, key), off = map.v;
	unsigned d;

	for (d = 0; d < 14; d++) {
		const uint8_t *p = shg_ptr(e->seg, (struct shg_off){ off }, 32);
		uint32_t dm, nm, bit;

		assert_non_null(p);
		memcpy(&dm, p + 16, 4);
		memcpy(&nm, p + 20, 4);
		bit = 1u << ((h >> (5 * d)) & 31);
		if (!(nm & bit))
			return d + 1;
		off = ((const uint64_t
				*)(p + 32))[2 * __builtin_popcount(dm) +
					    __builtin_popcount(nm & (bit - 1))];
	}
	fail_msg("path too deep");
	return 0;
}

static void test_map_sharing(void **state)
{
	struct tu_env e;
	struct shg_txn *txn;
	struct shg_val v = u64v(7);
	unsigned i, path;
	size_t owned;

	(void)state;
	tu_env_open(&e, 256u << 20, "map");
	new_map(&e, SHG_KIND_U64, SHG_KIND_U64, 0);
	tu_ok(shg_txn_begin(e.root, &txn));
	for (i = 0; i < 100000; i++)
		tu_ok(shg_txn_map_put_u64(txn, SHG_REF_ROOT, ukey(i), &v));
	tu_ok(shg_txn_commit(txn));

	/* overwrite: exactly the path is copied */
	tu_ok(shg_txn_begin(e.root, &txn));
	tu_ok(shg_txn_map_put_u64(txn, SHG_REF_ROOT, ukey(500), &v));
	path = path_nodes(&e, shg_txn_root_node(txn), ukey(500));
	owned = txn->owned.n;
	print_message("overwrite: path %u nodes, txn owns %zu\n", path, owned);
	assert_true(owned <= path);
	/* a second edit on the same path copies nothing more */
	tu_ok(shg_txn_map_put_u64(txn, SHG_REF_ROOT, ukey(500), &v));
	assert_int_equal(txn->owned.n, owned);
	tu_ok(shg_txn_commit(txn));

	/* new key: the path, plus at most one node to split an entry */
	tu_ok(shg_txn_begin(e.root, &txn));
	tu_ok(shg_txn_map_put_u64(txn, SHG_REF_ROOT, ukey(100001), &v));
	path = path_nodes(&e, shg_txn_root_node(txn), ukey(100001));
	print_message("insert: path %u nodes, txn owns %zu\n", path,
		      txn->owned.n);
	assert_true(txn->owned.n <= path + 1);
	assert_true(path <= 6);
	tu_ok(shg_txn_abort(txn));
	tu_env_close(&e);
}

/* ---- committed versions stay intact -------------------------------------- */

static void test_map_versions_intact(void **state)
{
	struct tu_env e;
	struct shg_txn *txn;
	struct shg_pin *pin;
	struct shg_version_info vi;
	struct shg_val v;
	unsigned i, round;
	int err;

	(void)state;
	tu_env_open(&e, 256u << 20, "map");
	new_map(&e, SHG_KIND_U64, SHG_KIND_U64, 0);
	tu_ok(shg_txn_begin(e.root, &txn));
	for (i = 0; i < 20000; i++) {
		v = u64v(i);
		tu_ok(shg_txn_map_put_u64(txn, SHG_REF_ROOT, ukey(i), &v));
	}
	tu_ok(shg_txn_commit(txn));
	tu_ok(shg_pin_current(e.root, &pin));
	for (round = 1; round <= 50; round++) {
		tu_ok(shg_txn_begin(e.root, &txn));
		for (i = round; i < 20000; i += 7) {
			v = u64v(i + round * 100000u);
			tu_ok(shg_txn_map_put_u64(txn, SHG_REF_ROOT, ukey(i),
						  &v));
			err = shg_txn_map_del_u64(txn, SHG_REF_ROOT,
						  ukey(i + 1));
			assert_true(err == 0 || err == -ENOENT);
		}
		tu_ok(shg_txn_commit(txn));
		tu_ok(shg_synchronize(e.seg, 0));
	}
	/* the pinned version still has every original value */
	tu_ok(shg_version_info(e.seg, shg_pin_version(pin), &vi));
	assert_int_equal(shg_map_count(e.seg, vi.node), 20000);
	for (i = 0; i < 20000; i++) {
		tu_ok(shg_map_get_u64(e.seg, vi.node, ukey(i), &v));
		assert_true(v.u64 == i);
	}
	tu_ok(shg_unpin(pin));
	TU_CHECK_SOUND(e.seg);
	tu_env_close(&e);
}

/*
 * A reader process checks snapshot consistency while the parent commits:
 * every commit sets all keys to its round number, so a version seen inside
 * one read section must hold one value for all keys (and never memory that
 * was freed: freed blocks are poisoned, which breaks validation).
 */
#define CR_KEYS 2000u
#define CR_ROUNDS 300u

static int reader_child(void *arg)
{
	const char *name = arg;
	struct shg_seg *seg;
	struct shg_root *root;
	struct shg_version_info vi;
	struct shg_val v;
	uint64_t first = 0, seen = 0;
	unsigned i;

	if (shg_seg_open(name, NULL, &seg) || shg_root_open(seg, "map", &root))
		return 2;
	while (first != CR_ROUNDS) {
		if (shg_read_lock(seg))
			return 3;
		if (shg_version_info(seg, shg_version_current(root), &vi) ||
		    shg_map_get_u64(seg, vi.node, ukey(0), &v)) {
			shg_read_unlock(seg);
			return 4;
		}
		first = v.u64;
		for (i = 1; i < CR_KEYS; i++) {
			if (shg_map_get_u64(seg, vi.node, ukey(i), &v) ||
			    v.u64 != first) {
				shg_read_unlock(seg);
				return 5;
			}
		}
		shg_read_unlock(seg);
		seen++;
	}
	shg_root_close(root);
	shg_seg_close(seg);
	return seen > 1 ? 0 : 6;
}

static void test_map_concurrent_reader(void **state)
{
	struct tu_env e;
	struct shg_txn *txn;
	struct shg_val v;
	unsigned i, round;
	pid_t pid;

	(void)state;
	tu_env_open(&e, 256u << 20, "map");
	new_map(&e, SHG_KIND_U64, SHG_KIND_U64, 0);
	tu_ok(shg_txn_begin(e.root, &txn));
	for (i = 0; i < CR_KEYS; i++) {
		v = u64v(0);
		tu_ok(shg_txn_map_put_u64(txn, SHG_REF_ROOT, ukey(i), &v));
	}
	tu_ok(shg_txn_commit(txn));
	pid = tu_fork(reader_child, e.name);
	for (round = 1; round <= CR_ROUNDS; round++) {
		tu_ok(shg_txn_begin(e.root, &txn));
		for (i = 0; i < CR_KEYS; i++) {
			v = u64v(round);
			tu_ok(shg_txn_map_put_u64(txn, SHG_REF_ROOT, ukey(i),
						  &v));
		}
		tu_ok(shg_txn_commit(txn));
	}
	assert_int_equal(tu_wait(pid), 0);
	TU_CHECK_SOUND(e.seg);
	tu_env_close(&e);
}

/* ---- node and root values, children, import ----------------------------- */

struct kids {
	unsigned nodes, roots;
	uint64_t last_root;
};

static void kid_fn(void *arg, uint64_t child)
{
	((struct kids *)arg)->nodes += child != 0;
}

static void kid_root(void *arg, uint64_t ref)
{
	((struct kids *)arg)->roots++;
	((struct kids *)arg)->last_root = ref;
}

static void test_map_node_values_import(void **state)
{
	static const struct shg_field_def f[] = { { "x", SHG_KIND_U64 } };
	struct shg_root *other;
	struct tu_env e;
	struct shg_txn *txn;
	struct shg_val v = { .kind = SHG_KIND_NODE }, out;
	struct shg_off node, map, copy;
	struct kids k = { 0 };
	uint32_t type;
	uint64_t x;
	unsigned i;

	(void)state;
	tu_env_open(&e, 0, "map");
	tu_ok(shg_type_register(e.seg, "item", f, 1, &type));
	tu_ok(shg_root_create(e.seg, "other", &other));
	tu_ok(shg_txn_begin(e.root, &txn));
	tu_ok(shg_txn_map_new(txn, SHG_REF_ROOT, SHG_KIND_U64, SHG_KIND_NODE));
	for (i = 0; i < 300; i++) {
		tu_ok(shg_txn_node_new(txn, type, &node));
		tu_ok(shg_txn_set_u64(txn, (struct shg_ref){ node, 0 }, i));
		v.node = node;
		tu_ok(shg_txn_map_put_u64(txn, SHG_REF_ROOT, i, &v));
	}
	v.node = SHG_OFF_NULL; /* a null node value */
	tu_ok(shg_txn_map_put_u64(txn, SHG_REF_ROOT, 1000, &v));
	tu_ok(shg_txn_commit(txn));

	/* children: 300 nodes + child map nodes; no roots */
	tu_ok(shg_read_lock(e.seg));
	map = tu_cur_node(&e);
	tu_ok(shg__map_children(e.seg, map.v, kid_fn, kid_root, &k));
	shg_read_unlock(e.seg);
	assert_int_equal(k.roots, 0);
	assert_true(k.nodes > 0);

	/* import the map into the other graph, look up through the copy */
	tu_ok(shg_txn_begin(other, &txn));
	tu_ok(shg_read_lock(e.seg));
	map = tu_cur_node(&e);
	shg_read_unlock(e.seg);
	tu_ok(shg_txn_import(txn, map, &copy));
	tu_ok(shg_txn_set_node(txn, SHG_REF_ROOT, copy));
	/* a node of graph "map" cannot be stored as a value in "other" */
	tu_ok(shg_map_get_u64(e.seg, map, 5, &out));
	assert_int_equal(shg_txn_map_put_u64(txn, SHG_REF_ROOT, 5, &out),
			 -EXDEV);
	tu_ok(shg_txn_commit(txn));
	tu_ok(shg_read_lock(e.seg));
	{
		struct shg_version_info vi;

		tu_ok(shg_version_info(e.seg, shg_version_current(other), &vi));
		assert_int_equal(shg_map_count(e.seg, vi.node), 301);
		for (i = 0; i < 300; i++) {
			tu_ok(shg_map_get_u64(e.seg, vi.node, i, &out));
			assert_int_equal(out.kind, SHG_KIND_NODE);
			tu_ok(shg_get_u64(e.seg, out.node, 0, &x));
			assert_true(x == i);
			assert_int_equal(((const struct shg_node *)shg_ptr(
						  e.seg, out.node, 16))
						 ->graph,
					 ((const struct shg_node *)shg_ptr(
						  e.seg, vi.node, 16))
						 ->graph);
		}
		tu_ok(shg_map_get_u64(e.seg, vi.node, 1000, &out));
		assert_true(shg_off_is_null(out.node));
	}
	shg_read_unlock(e.seg);

	/* root values: a map of root refs (in a fresh root: replacing the
	 * map above would unlink it without dropping it) */
	shg_root_close(other);
	tu_ok(shg_root_create(e.seg, "links", &other));
	tu_ok(shg_txn_begin(other, &txn));
	tu_ok(shg_txn_map_new(txn, SHG_REF_ROOT, SHG_KIND_BYTES,
			      SHG_KIND_ROOT));
	v.kind = SHG_KIND_ROOT;
	v.root = shg__root_slot(e.root);
	tu_ok(shg_txn_map_put_bytes(txn, SHG_REF_ROOT, "link", 4, &v));
	tu_ok(shg_txn_commit(txn));
	tu_ok(shg_read_lock(e.seg));
	{
		struct shg_version_info vi;

		tu_ok(shg_version_info(e.seg, shg_version_current(other), &vi));
		tu_ok(shg_map_get_bytes(e.seg, vi.node, "link", 4, &out));
		assert_int_equal(out.kind, SHG_KIND_ROOT);
		assert_int_equal(out.root, shg__root_slot(e.root));
		memset(&k, 0, sizeof(k));
		tu_ok(shg__map_children(e.seg, vi.node.v, kid_fn, kid_root,
					&k));
		assert_int_equal(k.roots, 1);
		assert_int_equal(SHG_ROOTREF_SLOT(k.last_root),
				 shg__root_slot(e.root));
		assert_int_equal(k.nodes, 1); /* the bytes key */
	}
	shg_read_unlock(e.seg);
	shg_root_close(other);
	TU_CHECK_SOUND(e.seg);
	tu_env_close(&e);
}

/* ---- argument errors and value kinds ------------------------------------- */

static void test_map_kinds(void **state)
{
	struct shg_root *other;
	struct tu_env e;
	struct shg_txn *txn;
	struct shg_val v = u64v(1), out;
	struct shg_off map;
	double d = -2.5;
	int64_t neg = -42;

	(void)state;
	tu_env_open(&e, 0, "map");
	new_map(&e, SHG_KIND_U64, SHG_KIND_F64, 0);
	tu_ok(shg_txn_begin(e.root, &txn));
	/* wrong value kind, wrong key kind */
	assert_int_equal(shg_txn_map_put_u64(txn, SHG_REF_ROOT, 1, &v),
			 -EINVAL);
	v.kind = SHG_KIND_F64;
	v.f64 = d;
	assert_int_equal(shg_txn_map_put_bytes(txn, SHG_REF_ROOT, "x", 1, &v),
			 -EINVAL);
	tu_ok(shg_txn_map_put_u64(txn, SHG_REF_ROOT, 1, &v));
	assert_int_equal(shg_txn_map_del_u64(txn, SHG_REF_ROOT, 2), -ENOENT);
	map = shg_txn_root_node(txn);
	tu_ok(shg_map_get_u64(e.seg, map, 1, &out));
	assert_int_equal(out.kind, SHG_KIND_F64);
	assert_true(out.f64 == d);
	assert_int_equal(shg_map_get_bytes(e.seg, map, "x", 1, &out), -EINVAL);
	assert_int_equal(shg_map_get_u64(e.seg, map, 2, &out), -ENOENT);
	assert_int_equal(shg_map_count(e.seg, SHG_OFF_NULL), 0);
	tu_ok(shg_txn_commit(txn));
	/* an I64 map in another root */
	tu_ok(shg_root_create(e.seg, "i64", &other));
	tu_ok(shg_txn_begin(other, &txn));
	tu_ok(shg_txn_map_new(txn, SHG_REF_ROOT, SHG_KIND_U64, SHG_KIND_I64));
	v.kind = SHG_KIND_I64;
	v.i64 = neg;
	tu_ok(shg_txn_map_put_u64(txn, SHG_REF_ROOT, 5, &v));
	tu_ok(shg_map_get_u64(e.seg, shg_txn_root_node(txn), 5, &out));
	assert_true(out.i64 == neg);
	assert_int_equal(shg_txn_map_new(txn, SHG_REF_ROOT, SHG_KIND_F64,
					 SHG_KIND_U64),
			 -EINVAL);
	tu_ok(shg_txn_commit(txn));
	/* a new map replacing a published one: the old one is retired */
	tu_ok(shg_txn_begin(other, &txn));
	tu_ok(shg_txn_map_new(txn, SHG_REF_ROOT, SHG_KIND_BYTES, SHG_KIND_U64));
	v = u64v(3);
	tu_ok(shg_txn_map_put_bytes(txn, SHG_REF_ROOT, "k", 1, &v));
	tu_ok(shg_txn_commit(txn));
	shg_root_close(other);
	TU_CHECK_SOUND(e.seg);
	/* not a map */
	assert_int_equal(shg_map_get_u64(e.seg, (struct shg_off){ 3 }, 1, &out),
			 SHG_EBADOFF);
	tu_env_close(&e);
}

/* ---- corrupt data ------------------------------------------------------------ */

struct offs {
	uint64_t v[65536];
	unsigned n;
};

static void collect(struct tu_env *e, uint64_t off, unsigned d, struct offs *o)
{
	const uint8_t *p = shg_ptr(e->seg, (struct shg_off){ off }, 32);
	uint32_t dm, nm, type;

	if (o->n < 65536)
		o->v[o->n++] = off;
	memcpy(&type, p, 4);
	if (type == SHG_TYPE_MAP_LEAF || d == 13)
		return; /* a leaf */
	memcpy(&dm, p + 16, 4);
	memcpy(&nm, p + 20, 4);
	for (unsigned i = 0; i < (unsigned)__builtin_popcount(nm); i++)
		collect(e,
			((const uint64_t *)(p +
					    32))[2 * __builtin_popcount(dm) + i],
			d + 1, o);
}

/* Flip bytes of published nodes: reads return codes, never crash/hang. */
static void test_map_corrupt(void **state)
{
	struct offs *o = calloc(1, sizeof(*o));
	struct shg_map_iter it;
	struct tu_env e;
	struct shg_txn *txn;
	struct shg_val v = u64v(1), k;
	struct shg_off map;
	uint64_t s = 77;
	unsigned i, round, bad = 0;

	(void)state;
	assert_non_null(o);
	tu_env_open(&e, 0, "map");
	new_map(&e, SHG_KIND_U64, SHG_KIND_U64, SHG_MAP_F_TESTHASH);
	tu_ok(shg_txn_begin(e.root, &txn));
	for (i = 0; i < 3000; i++)
		tu_ok(shg_txn_map_put_u64(txn, SHG_REF_ROOT, ukey(i), &v));
	tu_ok(shg_txn_commit(txn));
	tu_ok(shg_read_lock(e.seg));
	map = tu_cur_node(&e);
	collect(&e, map.v, 0, o);
	for (round = 0; round < 300; round++) {
		uint64_t off = o->v[rng_below(&s, o->n)];
		size_t size = shg_block_size(e.seg, (struct shg_off){ off });
		uint8_t *p = shg_ptr(e.seg, (struct shg_off){ off }, size);
		size_t at = 16 + rng_below(&s, (unsigned)(size - 16));
		uint8_t save = p[at];
		unsigned steps = 0;
		int err;

		p[at] ^= (uint8_t)(1u << rng_below(&s, 8));
		for (i = 0; i < 3000; i += 7)
			bad += shg_map_get_u64(e.seg, map, ukey(i), &v) != 0;
		(void)shg_map_count(e.seg, map);
		if (shg_map_iter_init(e.seg, map, &it) == 0) {
			while ((err = shg_map_iter_next(&it, &k, &v)) == 0)
				assert_true(++steps <= 100000);
		}
		p[at] = save;
	}
	print_message("%u lookups failed on corrupted nodes\n", bad);
	shg_read_unlock(e.seg);
	tu_env_close(&e);
	free(o);
}

/*
 * The leaf search of the u64 fast path against the plain binary search,
 * for every leaf size 1..MAP_LEAF_MAX: each key, each gap and both ends
 * of sorted leaves; on unsorted (corrupt) leaves, an answer inside the
 * leaf or just past it.
 */
static void test_map_leaf_search(void **state)
{
	static uint64_t buf[MAP_HDR / 8 + 2 * MAP_LEAF_MAX];
	struct shg_map_node *n = (struct shg_map_node *)buf;
	uint64_t s = 79, probe;
	unsigned cnt, i, j, round;

	(void)state;
	for (cnt = 1; cnt <= MAP_LEAF_MAX; cnt++) {
		for (round = 0; round < 20; round++) {
			uint64_t k = round == 0 ? 0 : rng_below(&s, 1000);

			for (i = 0; i < cnt; i++) {
				k += 1 + (round ? rng_below(&s, 1000) : 1);
				n->slot[2 * i] = k;
			}
			for (j = 0; j < 2 * cnt + 2; j++) {
				if (j == 2 * cnt + 1)
					probe = UINT64_MAX;
				else if (j == 2 * cnt)
					probe = 0;
				else if (j & 1)
					probe = n->slot[2 * (j / 2)] + 1;
				else
					probe = n->slot[j];
				assert_int_equal(
					(leaf_lower_pow2(n->slot, cnt, probe) -
					 n->slot) /
						2,
					leaf_lower_u64(n, cnt, probe));
			}
			/* unsorted: stays inside [0, cnt] */
			for (i = 0; i < cnt; i++)
				n->slot[2 * i] = rng_below(&s, 100);
			for (j = 0; j < 8; j++) {
				size_t at =
					(size_t)(leaf_lower_pow2(
							 n->slot, cnt,
							 rng_below(&s, 110)) -
						 n->slot);

				assert_true(at % 2 == 0 && at <= 2 * cnt);
			}
		}
	}
}

/*
 * Hostile child offsets for the u64 lookup's one-bound-per-node walk:
 * below the heap, misaligned, in the last bytes of the backed heap, at
 * and past its end, wrapping. Every child slot of every bitmap node gets
 * each value in turn; shg_map_get_u64() must give what the batched walk
 * (map_step(), every check made on the spot) gives for the same keys,
 * never crash, and report the bad offsets on the keys that reach them.
 */
static void test_map_get_u64_hostile_offsets(void **state)
{
	struct offs *o = calloc(1, sizeof(*o));
	struct tu_env e;
	struct shg_txn *txn;
	struct shg_val v = u64v(1);
	struct shg_off map;
	uint64_t keys[512], hi, lo, bad[10];
	struct shg_val vals[512];
	int res[512];
	int64_t ret;
	unsigned i, j, b, nodes = 0, flagged = 0;

	(void)state;
	assert_non_null(o);
	tu_env_open(&e, 0, "map");
	new_map(&e, SHG_KIND_U64, SHG_KIND_U64, 0);
	tu_ok(shg_txn_begin(e.root, &txn));
	for (i = 0; i < 4000; i++)
		tu_ok(shg_txn_map_put_u64(txn, SHG_REF_ROOT, ukey(i), &v));
	tu_ok(shg_txn_commit(txn));
	tu_ok(shg_read_lock(e.seg));
	map = tu_cur_node(&e);
	collect(&e, map.v, 0, o);
	hi = shg_seg_backed(e.seg);
	lo = e.seg->heap_off;
	bad[0] = 0;
	bad[1] = lo - 16;
	bad[2] = hi - MAP_LEAF_BYTES + 16; /* enterable only when checked */
	bad[3] = hi - MAP_HDR; /* a header fits, nothing more */
	bad[4] = hi - 16;
	bad[5] = hi;
	bad[6] = hi + 4096;
	bad[7] = UINT64_MAX - 15; /* wraps below the heap start */
	bad[8] = 1ull << 63;
	bad[9] = lo + 8; /* misaligned */
	for (i = 0; i < 512; i++)
		keys[i] = ukey(i * 7);
	for (i = 0; i < o->n; i++) {
		uint8_t *p = shg_ptr(e.seg, (struct shg_off){ o->v[i] }, 32);
		uint32_t type, dm, nm;
		uint64_t *slot, save;

		memcpy(&type, p, 4);
		if (type != SHG_TYPE_MAP)
			continue;
		memcpy(&dm, p + 16, 4);
		memcpy(&nm, p + 20, 4);
		if (!nm)
			continue;
		nodes++;
		slot = (uint64_t *)(p + 32) + 2 * __builtin_popcount(dm);
		for (b = 0; b < 10; b++) {
			unsigned c = b % (unsigned)__builtin_popcount(nm);

			save = slot[c];
			slot[c] = bad[b];
			ret = shg_map_get_many_u64(e.seg, map, 512, keys, vals,
						   res);
			for (j = 0; j < 512; j++) {
				struct shg_val one;
				int err = shg_map_get_u64(e.seg, map, keys[j],
							  &one);

				assert_int_equal(err, res[j]);
				if (err == 0)
					assert_true(one.u64 == vals[j].u64);
				if (err == SHG_EBADOFF || err == SHG_ECORRUPT) {
					flagged++;
					assert_true(ret < 0);
				}
			}
			slot[c] = save;
		}
		if (nodes >= 40)
			break;
	}
	print_message("%u bitmap nodes, %u lookups flagged\n", nodes, flagged);
	assert_true(nodes > 0);
	assert_true(flagged > 0);
	/* intact again: every key found */
	for (i = 0; i < 4000; i += 3)
		tu_ok(shg_map_get_u64(e.seg, map, ukey(i), &v));
	shg_read_unlock(e.seg);
	tu_env_close(&e);
	free(o);
}

/* ---- batched lookups ------------------------------------------------------ */

/*
 * shg_map_get_many_u64() on @n keys (indices drawn from 0..@universe-1,
 * so that some are absent, with repeats) against one shg_map_get_u64()
 * per key: the same result code and value for each, and the return is
 * the number found (or, when @may_fail, the first bad code).
 */
static void many_vs_single(struct tu_env *e, struct shg_off map, size_t n,
			   unsigned universe, uint64_t *s, bool may_fail)
{
	uint64_t *keys = calloc(n + 1, sizeof(*keys));
	struct shg_val *vals = calloc(n + 1, sizeof(*vals));
	int *res = calloc(n + 1, sizeof(*res));
	int64_t ret, found = 0;
	int first_bad = 0;
	size_t i;

	assert_non_null(keys);
	assert_non_null(vals);
	assert_non_null(res);
	for (i = 0; i < n; i++) {
		/* a quarter repeat an earlier key of the batch */
		if (i > 0 && rng_below(s, 4) == 0)
			keys[i] = keys[rng_below(s, (unsigned)i)];
		else
			keys[i] = ukey(rng_below(s, universe));
		res[i] = 12345; /* must be overwritten */
	}
	ret = shg_map_get_many_u64(e->seg, map, n, keys, vals, res);
	for (i = 0; i < n; i++) {
		struct shg_val v;
		int err = shg_map_get_u64(e->seg, map, keys[i], &v);

		assert_int_equal(res[i], err);
		if (err == 0) {
			assert_int_equal(vals[i].kind, v.kind);
			assert_true(vals[i].u64 == v.u64);
			found++;
		} else if (err != -ENOENT && !first_bad) {
			first_bad = err;
		}
	}
	if (!may_fail)
		assert_int_equal(first_bad, 0);
	assert_true(ret == (first_bad ? first_bad : found));
	/* membership only: the same codes without values */
	if (!first_bad) {
		for (i = 0; i < n; i++)
			res[i] = 12345;
		assert_true(shg_map_get_many_u64(e->seg, map, n, keys, NULL,
						 res) == found);
		for (i = 0; i < n; i++)
			assert_true(res[i] == 0 || res[i] == -ENOENT);
	}
	free(keys);
	free(vals);
	free(res);
}

/* Batches of 0, 1, 16, 17 and 1000 keys on maps of many sizes (with the
 * real hash and with the 8-bit test hash: leaves down to depth 13). */
static void test_map_get_many(void **state)
{
	static const unsigned sizes[] = { 0,   1,    2,	   5,	  64,	 65,
					  300, 1000, 5000, 30000, 200000 };
	static const size_t batch[] = { 0, 1, 16, 17, 1000 };
	uint64_t s = 4242;

	(void)state;
	for (unsigned f = 0; f < 2; f++) {
		unsigned flags = f ? SHG_MAP_F_TESTHASH : 0;

		for (unsigned z = 0; z < sizeof(sizes) / sizeof(sizes[0]);
		     z++) {
			unsigned n = sizes[z], i = 0;
			struct tu_env e;
			struct shg_txn *txn;
			struct shg_off map;

			if (flags && n > 30000)
				continue; /* long chains: slow to build */
			tu_env_open(&e, 512u << 20, "map");
			new_map(&e, SHG_KIND_U64, SHG_KIND_U64, flags);
			while (i < n) {
				tu_ok(shg_txn_begin(e.root, &txn));
				for (unsigned b = 0; b < 50000 && i < n;
				     b++, i++) {
					struct shg_val v =
						u64v(tu_rng_next(&s));

					/* even indices only: odd ones absent */
					tu_ok(shg_txn_map_put_u64(
						txn, SHG_REF_ROOT, ukey(2 * i),
						&v));
				}
				tu_ok(shg_txn_commit(txn));
			}
			tu_ok(shg_read_lock(e.seg));
			map = tu_cur_node(&e);
			for (unsigned b = 0;
			     b < sizeof(batch) / sizeof(batch[0]); b++)
				for (unsigned r = 0; r < 3; r++)
					many_vs_single(&e, map, batch[b],
						       2 * n + 2, &s, false);
			shg_read_unlock(e.seg);
			/* inside a txn: its own (mutable) map */
			tu_ok(shg_txn_begin(e.root, &txn));
			{
				struct shg_val v = u64v(7);

				tu_ok(shg_txn_map_put_u64(txn, SHG_REF_ROOT,
							  ukey(1), &v));
			}
			many_vs_single(&e, shg_txn_root_node(txn), 100,
				       2 * n + 2, &s, false);
			tu_ok(shg_txn_abort(txn));
			tu_env_close(&e);
		}
	}
}

/* Kinds, null map, argument errors, the bytes-keyed variant. */
static void test_map_get_many_kinds(void **state)
{
	const void *bk[4] = { "a", "bb", NULL, "zz" };
	size_t bl[4] = { 1, 2, 0, 2 };
	uint64_t keys[3] = { 1, 2, 1 };
	struct shg_val vals[4], v = u64v(0);
	struct shg_root *broot;
	struct shg_txn *txn;
	struct shg_off map, bmap;
	struct tu_env e;
	int res[4];

	(void)state;
	tu_env_open(&e, 0, "map");
	new_map(&e, SHG_KIND_U64, SHG_KIND_F64, 0);
	tu_ok(shg_txn_begin(e.root, &txn));
	v.kind = SHG_KIND_F64;
	v.f64 = 1.5;
	tu_ok(shg_txn_map_put_u64(txn, SHG_REF_ROOT, 1, &v));
	tu_ok(shg_txn_commit(txn));
	tu_ok(shg_root_create(e.seg, "bytes", &broot));
	tu_ok(shg_txn_begin(broot, &txn));
	tu_ok(shg_txn_map_new(txn, SHG_REF_ROOT, SHG_KIND_BYTES, SHG_KIND_U64));
	v = u64v(10);
	tu_ok(shg_txn_map_put_bytes(txn, SHG_REF_ROOT, "a", 1, &v));
	v = u64v(11);
	tu_ok(shg_txn_map_put_bytes(txn, SHG_REF_ROOT, NULL, 0, &v));
	tu_ok(shg_txn_commit(txn));

	tu_ok(shg_read_lock(e.seg));
	map = tu_cur_node(&e);
	{
		struct shg_version_info vi;

		tu_ok(shg_version_info(e.seg, shg_version_current(broot), &vi));
		bmap = vi.node;
	}
	/* u64 map: values keep their kind; duplicates; a missing key */
	assert_true(shg_map_get_many_u64(e.seg, map, 3, keys, vals, res) == 2);
	assert_int_equal(res[0], 0);
	assert_int_equal(res[1], -ENOENT);
	assert_int_equal(res[2], 0);
	assert_int_equal(vals[0].kind, SHG_KIND_F64);
	assert_true(vals[0].f64 == 1.5 && vals[2].f64 == 1.5);
	/* n = 0 needs no arrays; NULL arrays with n > 0 are refused */
	assert_true(shg_map_get_many_u64(e.seg, map, 0, NULL, NULL, NULL) == 0);
	assert_true(shg_map_get_many_u64(e.seg, map, 3, NULL, vals, res) ==
		    -EINVAL);
	assert_true(shg_map_get_many_u64(e.seg, map, 3, keys, vals, NULL) ==
		    -EINVAL);
	/* a null map is empty */
	assert_true(shg_map_get_many_u64(e.seg, SHG_OFF_NULL, 3, keys, vals,
					 res) == 0);
	assert_int_equal(res[0], -ENOENT);
	assert_int_equal(res[2], -ENOENT);
	/* wrong key kind, both ways: every result says so */
	assert_true(shg_map_get_many_u64(e.seg, bmap, 3, keys, vals, res) ==
		    -EINVAL);
	assert_int_equal(res[1], -EINVAL);
	assert_true(shg_map_get_many_bytes(e.seg, map, 4, bk, bl, vals, res) ==
		    -EINVAL);
	assert_int_equal(res[3], -EINVAL);
	/* bytes keys: "a", missing "bb", the empty key, missing "zz" */
	assert_true(shg_map_get_many_bytes(e.seg, bmap, 4, bk, bl, vals, res) ==
		    2);
	assert_int_equal(res[0], 0);
	assert_true(vals[0].u64 == 10);
	assert_int_equal(res[1], -ENOENT);
	assert_int_equal(res[2], 0);
	assert_true(vals[2].u64 == 11);
	assert_int_equal(res[3], -ENOENT);
	/* NULL key with a length: that key alone is refused */
	bl[2] = 3;
	assert_true(shg_map_get_many_bytes(e.seg, bmap, 4, bk, bl, vals, res) ==
		    1);
	assert_int_equal(res[2], -EINVAL);
	assert_int_equal(res[0], 0);
	assert_true(shg_map_get_many_bytes(e.seg, bmap, 4, bk, NULL, vals,
					   res) == -EINVAL);
	/* not a map: every result carries the code */
	assert_true(shg_map_get_many_u64(e.seg, (struct shg_off){ 3 }, 3, keys,
					 vals, res) == SHG_EBADOFF);
	assert_int_equal(res[0], SHG_EBADOFF);
	assert_int_equal(res[2], SHG_EBADOFF);
	shg_read_unlock(e.seg);
	shg_root_close(broot);
	tu_env_close(&e);
}

/*
 * Flip bits of published nodes (test hash: deep chains and leaves): each
 * batched result equals the single lookup's, error codes included, and a
 * batch that met corrupt data returns a negative code.
 */
static void test_map_get_many_corrupt(void **state)
{
	struct offs *o = calloc(1, sizeof(*o));
	struct tu_env e;
	struct shg_txn *txn;
	struct shg_val v = u64v(1);
	struct shg_off map;
	uint64_t s = 78;
	unsigned i, round, failed = 0;

	(void)state;
	assert_non_null(o);
	tu_env_open(&e, 0, "map");
	new_map(&e, SHG_KIND_U64, SHG_KIND_U64, SHG_MAP_F_TESTHASH);
	tu_ok(shg_txn_begin(e.root, &txn));
	for (i = 0; i < 3000; i++)
		tu_ok(shg_txn_map_put_u64(txn, SHG_REF_ROOT, ukey(i), &v));
	tu_ok(shg_txn_commit(txn));
	tu_ok(shg_read_lock(e.seg));
	map = tu_cur_node(&e);
	collect(&e, map.v, 0, o);
	for (round = 0; round < 300; round++) {
		uint64_t off = o->v[rng_below(&s, o->n)];
		size_t size = shg_block_size(e.seg, (struct shg_off){ off });
		uint8_t *p = shg_ptr(e.seg, (struct shg_off){ off }, size);
		size_t at = 16 + rng_below(&s, (unsigned)(size - 16));
		uint8_t save = p[at];
		uint64_t keys[64];
		struct shg_val vals[64];
		int res[64];
		int64_t ret;

		p[at] ^= (uint8_t)(1u << rng_below(&s, 8));
		/* the full comparison on a batch of 64 */
		many_vs_single(&e, map, 64, 6000, &s, true);
		/* a batch over every 47th key: a failure shows in the return */
		for (i = 0; i < 64; i++)
			keys[i] = ukey(i * 47);
		ret = shg_map_get_many_u64(e.seg, map, 64, keys, vals, res);
		for (i = 0; i < 64; i++) {
			if (res[i] != 0 && res[i] != -ENOENT) {
				assert_true(res[i] == SHG_EBADOFF ||
					    res[i] == SHG_ECORRUPT);
				assert_true(ret < 0);
				failed++;
			}
		}
		p[at] = save;
	}
	print_message("%u batched lookups failed on corrupted nodes\n", failed);
	assert_true(failed > 0); /* the flips did reach the walks */
	shg_read_unlock(e.seg);
	tu_env_close(&e);
	free(o);
}

/* ---- running out of memory ------------------------------------------------- */

/* Fill a small segment until a put fails: the txn is poisoned, abort
 * gives everything back, and the segment stays sound. */
static void test_map_out_of_memory(void **state)
{
	static uint8_t big[4096];
	struct shg_stats st0, st1;
	struct tu_env e;
	struct shg_txn *txn;
	struct shg_val v = { .kind = SHG_KIND_BYTES };
	unsigned i;
	int err = 0;

	(void)state;
	tu_env_open(&e, 8u << 20, "map");
	new_map(&e, SHG_KIND_U64, SHG_KIND_BYTES, 0);
	v.bytes.p = big;
	v.bytes.len = sizeof(big);
	tu_ok(shg_txn_begin(e.root, &txn));
	tu_ok(shg_stats_get(e.seg, &st0)); /* after the pin table exists */
	for (i = 0; i < 100000 && !err; i++)
		err = shg_txn_map_put_u64(txn, SHG_REF_ROOT, i, &v);
	print_message("put %u failed: %s\n", i, shg_strerror(err));
	assert_true(err == SHG_ECAPACITY || err == -ENOSPC || err == -ENOMEM);
	/* poisoned: later edits and the commit fail the same way */
	assert_int_equal(shg_txn_map_put_u64(txn, SHG_REF_ROOT, 1, &v), err);
	assert_int_equal(shg_txn_commit(txn), err);
	tu_ok(shg_txn_abort(txn));
	tu_ok(shg_stats_get(e.seg, &st1));
	print_message("used before %llu, after abort %llu bytes\n",
		      (unsigned long long)(st0.small_used_bytes +
					   st0.large_used_bytes),
		      (unsigned long long)(st1.small_used_bytes +
					   st1.large_used_bytes));
	assert_true(st1.small_used_bytes + st1.large_used_bytes ==
		    st0.small_used_bytes + st0.large_used_bytes);
	TU_CHECK_SOUND(e.seg);
	tu_ok(shg_txn_begin(e.root, &txn));
	for (i = 0; i < 100; i++)
		tu_ok(shg_txn_map_put_u64(txn, SHG_REF_ROOT, i, &v));
	tu_ok(shg_txn_commit(txn));
	TU_CHECK_SOUND(e.seg);
	tu_env_close(&e);
}

/* ---- lookup cost ------------------------------------------------------------ */

static void test_map_lookup_timing(void **state)
{
	unsigned n = tu_long_tests() ? 1000000 : 200000, i, rounds = 2;
	struct tu_env e;
	struct shg_txn *txn;
	struct shg_val v = u64v(0);
	struct shg_off map;
	struct timespec t0, t1;
	uint64_t sum = 0, s = 99;
	double ns;

	(void)state;
	tu_env_open(&e, 512u << 20, "map");
	new_map(&e, SHG_KIND_U64, SHG_KIND_U64, 0);
	for (i = 0; i < n;) {
		tu_ok(shg_txn_begin(e.root, &txn));
		for (unsigned b = 0; b < 100000 && i < n; b++, i++) {
			v.u64 = i;
			tu_ok(shg_txn_map_put_u64(txn, SHG_REF_ROOT, i, &v));
		}
		tu_ok(shg_txn_commit(txn));
	}
	tu_ok(shg_read_lock(e.seg));
	map = tu_cur_node(&e);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 0; i < rounds * n; i++) {
		uint64_t k = tu_rng_next(&s) % n;

		tu_ok(shg_map_get_u64(e.seg, map, k, &v));
		sum += v.u64 == k;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ns = ((double)(t1.tv_sec - t0.tv_sec) * 1e9 +
	      (double)(t1.tv_nsec - t0.tv_nsec)) /
	     (rounds * n);
	assert_true(sum == (uint64_t)rounds * n);
	print_message("random lookup, %u keys: %.1f ns\n", n, ns);
	/* the same in batches of 16 (shg_map_get_many_u64) */
	sum = 0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 0; i < rounds * n; i += 16) {
		uint64_t keys[16];
		struct shg_val vals[16];
		int res[16];

		for (unsigned j = 0; j < 16; j++)
			keys[j] = tu_rng_next(&s) % n;
		assert_true(shg_map_get_many_u64(e.seg, map, 16, keys, vals,
						 res) == 16);
		for (unsigned j = 0; j < 16; j++)
			sum += vals[j].u64 == keys[j];
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	shg_read_unlock(e.seg);
	assert_true(sum == (uint64_t)i);
	print_message(
		"batched lookup (16 per call), %u keys: %.1f ns per key\n", n,
		((double)(t1.tv_sec - t0.tv_sec) * 1e9 +
		 (double)(t1.tv_nsec - t0.tv_nsec)) /
			i);
	tu_env_close(&e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_map_kinds),
		cmocka_unit_test(test_map_u64_random),
		cmocka_unit_test(test_map_u64_collisions),
		cmocka_unit_test(test_map_bytes_random),
		cmocka_unit_test(test_map_canonical_order),
		cmocka_unit_test(test_map_sharing),
		cmocka_unit_test(test_map_versions_intact),
		cmocka_unit_test(test_map_concurrent_reader),
		cmocka_unit_test(test_map_node_values_import),
		cmocka_unit_test(test_map_corrupt),
		cmocka_unit_test(test_map_get_many),
		cmocka_unit_test(test_map_get_many_kinds),
		cmocka_unit_test(test_map_get_many_corrupt),
		cmocka_unit_test(test_map_leaf_search),
		cmocka_unit_test(test_map_get_u64_hostile_offsets),
		cmocka_unit_test(test_map_out_of_memory),
		cmocka_unit_test(test_map_lookup_timing),
	};

	/* freed blocks poisoned: a read of freed memory fails validation */
	setenv("SHG_DEBUG_POISON", "1", 0);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
