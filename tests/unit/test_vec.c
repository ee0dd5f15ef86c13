/* SPDX-License-Identifier: MIT */
/*
 * Persistent vector: push/pop/set/get against a reference array across
 * the 32 / 1024 / 32768 height boundaries and down to empty, random
 * sequences in commits of random sizes, bytes values, structural sharing
 * of a one-element set, committed versions left intact, and errors.
 * SHG_LONG_TESTS=1 runs longer sequences.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph_internal.h"
#include "testutil.h"

static struct shg_val u64v(uint64_t x)
{
	struct shg_val v = { .kind = SHG_KIND_U64 };

	v.u64 = x;
	return v;
}

static void new_vec(struct tu_env *e, enum shg_kind vk)
{
	struct shg_txn *txn;

	tu_ok(shg_txn_begin(e->root, &txn));
	tu_ok(shg_txn_vec_new(txn, SHG_REF_ROOT, vk));
	tu_ok(shg_txn_commit(txn));
}

struct model {
	uint64_t *v;
	uint64_t len;
	size_t cap;
};

static void model_push(struct model *m, uint64_t x)
{
	assert_int_equal(shg__grow(&m->v, &m->cap, m->len + 1, sizeof(*m->v)),
			 0);
	m->v[m->len++] = x;
}

static void verify(struct tu_env *e, const struct model *m, struct shg_off vec)
{
	struct shg_val v;
	uint64_t i;

	assert_int_equal(shg_vec_len(e->seg, vec), m->len);
	for (i = 0; i < m->len; i++) {
		tu_ok(shg_vec_get(e->seg, vec, i, &v));
		assert_int_equal(v.kind, SHG_KIND_U64);
		assert_true(v.u64 == m->v[i]);
	}
	assert_int_equal(shg_vec_get(e->seg, vec, m->len, &v), -ERANGE);
}

static void verify_current(struct tu_env *e, const struct model *m)
{
	tu_ok(shg_read_lock(e->seg));
	verify(e, m, tu_cur_node(e));
	shg_read_unlock(e->seg);
}

/* Grow past each height boundary and shrink back, checking at each. */
static void test_vec_boundaries(void **state)
{
	static const uint64_t marks[] = { 1,	31,   32,    33,    1023,
					  1024, 1025, 32767, 32768, 32769 };
	struct model m = { 0 };
	struct tu_env e;
	struct shg_txn *txn;
	struct shg_val v;
	unsigned k;

	(void)state;
	tu_env_open(&e, 256u << 20, "vec");
	new_vec(&e, SHG_KIND_U64);
	for (k = 0; k < sizeof(marks) / sizeof(marks[0]); k++) {
		tu_ok(shg_txn_begin(e.root, &txn));
		while (m.len < marks[k]) {
			v = u64v(m.len * 3 + 1);
			tu_ok(shg_txn_vec_push(txn, SHG_REF_ROOT, &v));
			model_push(&m, m.len * 3 + 1);
		}
		tu_ok(shg_txn_commit(txn));
		verify_current(&e, &m);
	}
	for (k = sizeof(marks) / sizeof(marks[0]); k-- > 0;) {
		uint64_t target = k ? marks[k - 1] : 0;

		tu_ok(shg_txn_begin(e.root, &txn));
		while (m.len > target) {
			tu_ok(shg_txn_vec_pop(txn, SHG_REF_ROOT));
			m.len--;
			if (m.len % 997 == 0)
				verify(&e, &m, shg_txn_root_node(txn));
		}
		tu_ok(shg_txn_commit(txn));
		verify_current(&e, &m);
	}
	tu_ok(shg_txn_begin(e.root, &txn));
	assert_int_equal(shg_txn_vec_pop(txn, SHG_REF_ROOT), -ERANGE);
	v = u64v(5);
	assert_int_equal(shg_txn_vec_set(txn, SHG_REF_ROOT, 0, &v), -ERANGE);
	tu_ok(shg_txn_abort(txn));
	TU_CHECK_SOUND(e.seg);
	tu_env_close(&e);
	free(m.v);
}

/* Random push/pop/set/get in commits of 1..1000 ops. */
static void random_case(uint64_t seed, unsigned long ops)
{
	struct model m = { 0 };
	struct tu_env e;
	struct shg_txn *txn;
	struct shg_val v;
	unsigned long done = 0;
	unsigned commits = 0;
	uint64_t s = seed;

	tu_env_open(&e, 512u << 20, "vec");
	new_vec(&e, SHG_KIND_U64);
	while (done < ops) {
		unsigned batch = 1 + (unsigned)(tu_rng_next(&s) % 1000);
		/* drift: phases that grow and phases that shrink */
		unsigned grow = (done / 50000) % 3 ? 60 : 35;

		tu_ok(shg_txn_begin(e.root, &txn));
		for (unsigned b = 0; b < batch; b++, done++) {
			unsigned r = (unsigned)(tu_rng_next(&s) % 100);
			uint64_t x = tu_rng_next(&s);

			if (r < grow) {
				v = u64v(x);
				tu_ok(shg_txn_vec_push(txn, SHG_REF_ROOT, &v));
				model_push(&m, x);
			} else if (r < 70) {
				int err = shg_txn_vec_pop(txn, SHG_REF_ROOT);

				assert_int_equal(err, m.len ? 0 : -ERANGE);
				m.len -= m.len > 0;
			} else if (r < 90 && m.len) {
				uint64_t i = x % m.len;

				v = u64v(x ^ 1);
				tu_ok(shg_txn_vec_set(txn, SHG_REF_ROOT, i,
						      &v));
				m.v[i] = x ^ 1;
			} else if (m.len) {
				uint64_t i = x % m.len;

				tu_ok(shg_vec_get(e.seg, shg_txn_root_node(txn),
						  i, &v));
				assert_true(v.u64 == m.v[i]);
			}
		}
		assert_int_equal(shg_vec_len(e.seg, shg_txn_root_node(txn)),
				 m.len);
		tu_ok(shg_txn_commit(txn));
		if (++commits % 64 == 1)
			verify_current(&e, &m);
	}
	verify_current(&e, &m);
	/* pop to empty */
	tu_ok(shg_txn_begin(e.root, &txn));
	while (m.len) {
		tu_ok(shg_txn_vec_pop(txn, SHG_REF_ROOT));
		m.len--;
	}
	tu_ok(shg_txn_commit(txn));
	verify_current(&e, &m);
	TU_CHECK_SOUND(e.seg);
	tu_env_close(&e);
	free(m.v);
}

static void test_vec_random(void **state)
{
	unsigned long ops = tu_long_tests() ? 5000000 : 500000;

	(void)state;
	random_case(1, ops);
	random_case(2, ops / 2);
}

/* Bytes values: set and pop drop the replaced bytes nodes. */
static void test_vec_bytes(void **state)
{
	struct tu_env e;
	struct shg_txn *txn;
	struct shg_val v = { .kind = SHG_KIND_BYTES }, out;
	char buf[64];
	unsigned i;

	(void)state;
	tu_env_open(&e, 0, "vec");
	new_vec(&e, SHG_KIND_BYTES);
	tu_ok(shg_txn_begin(e.root, &txn));
	for (i = 0; i < 100; i++) {
		v.bytes.len = (size_t)snprintf(buf, sizeof(buf), "v%u", i);
		v.bytes.p = buf;
		if (i == 7)
			v.bytes.len = 0;
		tu_ok(shg_txn_vec_push(txn, SHG_REF_ROOT, &v));
	}
	tu_ok(shg_txn_commit(txn));
	tu_ok(shg_txn_begin(e.root, &txn));
	v.bytes.p = "changed";
	v.bytes.len = 7;
	tu_ok(shg_txn_vec_set(txn, SHG_REF_ROOT, 50, &v));
	tu_ok(shg_txn_vec_pop(txn, SHG_REF_ROOT));
	v.kind = SHG_KIND_U64;
	assert_int_equal(shg_txn_vec_push(txn, SHG_REF_ROOT, &v), -EINVAL);
	tu_ok(shg_txn_commit(txn));
	tu_ok(shg_read_lock(e.seg));
	assert_int_equal(shg_vec_len(e.seg, tu_cur_node(&e)), 99);
	for (i = 0; i < 99; i++) {
		tu_ok(shg_vec_get(e.seg, tu_cur_node(&e), i, &out));
		assert_int_equal(out.kind, SHG_KIND_BYTES);
		if (i == 50) {
			assert_int_equal(out.bytes.len, 7);
			assert_memory_equal(out.bytes.p, "changed", 7);
		} else if (i == 7) {
			assert_int_equal(out.bytes.len, 0);
		} else {
			int l = snprintf(buf, sizeof(buf), "v%u", i);

			assert_int_equal(out.bytes.len, l);
			assert_memory_equal(out.bytes.p, buf, (size_t)l);
		}
	}
	shg_read_unlock(e.seg);
	TU_CHECK_SOUND(e.seg);
	tu_env_close(&e);
}

/* One set in a 100k vector copies the head and one path. */
static void test_vec_sharing(void **state)
{
	struct tu_env e;
	struct shg_txn *txn;
	struct shg_val v = u64v(1);
	unsigned i;

	(void)state;
	tu_env_open(&e, 0, "vec");
	new_vec(&e, SHG_KIND_U64);
	tu_ok(shg_txn_begin(e.root, &txn));
	for (i = 0; i < 100000; i++)
		tu_ok(shg_txn_vec_push(txn, SHG_REF_ROOT, &v));
	tu_ok(shg_txn_commit(txn));
	tu_ok(shg_txn_begin(e.root, &txn));
	tu_ok(shg_txn_vec_set(txn, SHG_REF_ROOT, 4242, &v));
	/* head + 4 levels (100000 < 32^4) */
	assert_int_equal(txn->owned.n, 5);
	tu_ok(shg_txn_vec_set(txn, SHG_REF_ROOT, 4243, &v));
	assert_int_equal(txn->owned.n, 5);
	tu_ok(shg_txn_abort(txn));
	tu_env_close(&e);
}

/* A pinned version keeps its contents while later commits change them. */
static void test_vec_versions_intact(void **state)
{
	struct model m = { 0 };
	struct tu_env e;
	struct shg_txn *txn;
	struct shg_pin *pin;
	struct shg_version_info vi;
	struct shg_val v;
	unsigned i, round;

	(void)state;
	tu_env_open(&e, 0, "vec");
	new_vec(&e, SHG_KIND_U64);
	tu_ok(shg_txn_begin(e.root, &txn));
	for (i = 0; i < 5000; i++) {
		v = u64v(i);
		tu_ok(shg_txn_vec_push(txn, SHG_REF_ROOT, &v));
		model_push(&m, i);
	}
	tu_ok(shg_txn_commit(txn));
	tu_ok(shg_pin_current(e.root, &pin));
	for (round = 0; round < 30; round++) {
		tu_ok(shg_txn_begin(e.root, &txn));
		for (i = round; i < 5000 - 100 * round; i += 13) {
			v = u64v(~(uint64_t)i);
			tu_ok(shg_txn_vec_set(txn, SHG_REF_ROOT, i, &v));
		}
		for (i = 0; i < 100; i++)
			tu_ok(shg_txn_vec_pop(txn, SHG_REF_ROOT));
		tu_ok(shg_txn_commit(txn));
		tu_ok(shg_synchronize(e.seg, 0));
	}
	tu_ok(shg_version_info(e.seg, shg_pin_version(pin), &vi));
	verify(&e, &m, vi.node);
	tu_ok(shg_unpin(pin));
	tu_env_close(&e);
	free(m.v);
}

static void count_child(void *arg, uint64_t child)
{
	*(unsigned *)arg += child != 0;
}

/* Import a bytes vector into another graph; children reporting. */
static void test_vec_import(void **state)
{
	struct shg_root *other;
	struct shg_version_info vi;
	struct tu_env e;
	struct shg_txn *txn;
	struct shg_val v = { .kind = SHG_KIND_BYTES }, out;
	struct shg_off vec, copy;
	char buf[32];
	unsigned i, kids = 0;

	(void)state;
	tu_env_open(&e, 0, "vec");
	new_vec(&e, SHG_KIND_BYTES);
	tu_ok(shg_txn_begin(e.root, &txn));
	for (i = 0; i < 2000; i++) {
		v.bytes.len = (size_t)snprintf(buf, sizeof(buf), "e%u", i);
		v.bytes.p = buf;
		tu_ok(shg_txn_vec_push(txn, SHG_REF_ROOT, &v));
	}
	tu_ok(shg_txn_commit(txn));
	tu_ok(shg_read_lock(e.seg));
	vec = tu_cur_node(&e);
	tu_ok(shg__vec_children(e.seg, vec.v, count_child, NULL, &kids));
	assert_int_equal(kids, 1); /* the trie root */
	shg_read_unlock(e.seg);

	tu_ok(shg_root_create(e.seg, "other", &other));
	tu_ok(shg_txn_begin(other, &txn));
	tu_ok(shg_txn_import(txn, vec, &copy));
	tu_ok(shg_txn_set_node(txn, SHG_REF_ROOT, copy));
	tu_ok(shg_txn_commit(txn));
	tu_ok(shg_read_lock(e.seg));
	tu_ok(shg_version_info(e.seg, shg_version_current(other), &vi));
	assert_int_equal(shg_vec_len(e.seg, vi.node), 2000);
	for (i = 0; i < 2000; i++) {
		int l = snprintf(buf, sizeof(buf), "e%u", i);

		tu_ok(shg_vec_get(e.seg, vi.node, i, &out));
		assert_int_equal(out.bytes.len, l);
		assert_memory_equal(out.bytes.p, buf, (size_t)l);
	}
	shg_read_unlock(e.seg);
	/* a new vector replacing the published copy: the old one is retired */
	tu_ok(shg_txn_begin(other, &txn));
	tu_ok(shg_txn_vec_new(txn, SHG_REF_ROOT, SHG_KIND_BYTES));
	tu_ok(shg_txn_vec_push(txn, SHG_REF_ROOT, &v));
	tu_ok(shg_txn_commit(txn));
	shg_root_close(other);
	TU_CHECK_SOUND(e.seg);
	tu_env_close(&e);
}

/* Fill a small segment until a push fails: the txn is poisoned, abort
 * gives everything back, and the segment stays sound. */
static void test_vec_out_of_memory(void **state)
{
	static uint8_t big[4096];
	struct shg_stats st0, st1;
	struct tu_env e;
	struct shg_txn *txn;
	struct shg_val v = { .kind = SHG_KIND_BYTES };
	unsigned i;
	int err = 0;

	(void)state;
	tu_env_open(&e, 8u << 20, "vec");
	new_vec(&e, SHG_KIND_BYTES);
	v.bytes.p = big;
	v.bytes.len = sizeof(big);
	tu_ok(shg_txn_begin(e.root, &txn));
	tu_ok(shg_stats_get(e.seg, &st0));
	for (i = 0; i < 100000 && !err; i++)
		err = shg_txn_vec_push(txn, SHG_REF_ROOT, &v);
	assert_true(err == SHG_ECAPACITY || err == -ENOSPC || err == -ENOMEM);
	assert_int_equal(shg_txn_vec_push(txn, SHG_REF_ROOT, &v), err);
	assert_int_equal(shg_txn_commit(txn), err);
	tu_ok(shg_txn_abort(txn));
	tu_ok(shg_stats_get(e.seg, &st1));
	assert_true(st1.small_used_bytes + st1.large_used_bytes ==
		    st0.small_used_bytes + st0.large_used_bytes);
	TU_CHECK_SOUND(e.seg);
	tu_env_close(&e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vec_boundaries),
		cmocka_unit_test(test_vec_bytes),
		cmocka_unit_test(test_vec_sharing),
		cmocka_unit_test(test_vec_versions_intact),
		cmocka_unit_test(test_vec_random),
		cmocka_unit_test(test_vec_import),
		cmocka_unit_test(test_vec_out_of_memory),
	};

	/* freed blocks poisoned: a read of freed memory fails validation */
	setenv("SHG_DEBUG_POISON", "1", 0);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
