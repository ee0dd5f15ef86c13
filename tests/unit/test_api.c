/* SPDX-License-Identifier: MIT */
/*
 * Tests of the API's safety and convenience contract: every txn operation
 * checks the declared kind of its target field first and refuses a
 * mistake with -EINVAL while the txn stays usable (a U64 field whose value
 * equals a live container's offset is never taken for the container);
 * corruption codes only for corrupt data; map values and vector elements
 * made mutable in place; following root refs; field lookup by name;
 * shg_update's backoff.
 */
#include "testutil.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* One field of every kind and every container. */
enum {
	F_U64,
	F_I64,
	F_F64,
	F_BYTES,
	F_NULL, /* NODE, null */
	F_USER, /* NODE, a user node */
	F_MAPU, /* NODE, map U64 -> NODE */
	F_MAPB, /* NODE, map BYTES -> U64 */
	F_VEC, /* NODE, vector of NODE */
	F_ROOT,
	NF,
};

static const struct shg_field_def all_fields[NF] = {
	{ "u64", SHG_KIND_U64 },   { "i64", SHG_KIND_I64 },
	{ "f64", SHG_KIND_F64 },   { "bytes", SHG_KIND_BYTES },
	{ "null", SHG_KIND_NODE }, { "user", SHG_KIND_NODE },
	{ "mapu", SHG_KIND_NODE }, { "mapb", SHG_KIND_NODE },
	{ "vec", SHG_KIND_NODE },  { "root", SHG_KIND_ROOT },
};

struct fx {
	struct tu_env e;
	uint32_t type;
};

static int fx_setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	tu_env_open(&f->e, 128u << 20, "main");
	tu_ok(shg_type_register(f->e.seg, "all", all_fields, NF, &f->type));
	*state = f;
	return 0;
}

static int fx_teardown(void **state)
{
	struct fx *f = *state;

	tu_env_close(&f->e);
	free(f);
	return 0;
}

static struct shg_ref fld(struct shg_off n, unsigned field)
{
	return (struct shg_ref){ n, field };
}

static struct shg_val vnode(struct shg_off n)
{
	return (struct shg_val){ .kind = SHG_KIND_NODE, .node = n };
}

static struct shg_val vu64(uint64_t v)
{
	return (struct shg_val){ .kind = SHG_KIND_U64, .u64 = v };
}

/* Graph: root = an "all" node with every field set; mapu[1] and vec[0]
 * are "all" nodes with u64 = 11 and 22; mapb["k"] = 33. */
static void build_all(struct fx *f)
{
	struct shg_txn *txn;
	struct shg_off r, a, b, u;
	struct shg_val v;

	tu_ok(shg_txn_begin(f->e.root, &txn));
	tu_ok(shg_txn_node_new(txn, f->type, &r));
	tu_ok(shg_txn_node_new(txn, f->type, &a));
	tu_ok(shg_txn_node_new(txn, f->type, &b));
	tu_ok(shg_txn_node_new(txn, f->type, &u));
	tu_ok(shg_txn_set_node(txn, SHG_REF_ROOT, r));
	tu_ok(shg_txn_set_u64(txn, fld(r, F_U64), 1));
	tu_ok(shg_txn_set_i64(txn, fld(r, F_I64), -1));
	tu_ok(shg_txn_set_f64(txn, fld(r, F_F64), 0.5));
	tu_ok(shg_txn_set_bytes(txn, fld(r, F_BYTES), "xy", 2));
	tu_ok(shg_txn_set_node(txn, fld(r, F_USER), u));
	tu_ok(shg_txn_set_root(txn, fld(r, F_ROOT), f->e.root));
	tu_ok(shg_txn_map_new(txn, fld(r, F_MAPU), SHG_KIND_U64,
			      SHG_KIND_NODE));
	tu_ok(shg_txn_set_u64(txn, fld(a, F_U64), 11));
	v = vnode(a);
	tu_ok(shg_txn_map_put_u64(txn, fld(r, F_MAPU), 1, &v));
	tu_ok(shg_txn_map_new(txn, fld(r, F_MAPB), SHG_KIND_BYTES,
			      SHG_KIND_U64));
	v = vu64(33);
	tu_ok(shg_txn_map_put_bytes(txn, fld(r, F_MAPB), "k", 1, &v));
	tu_ok(shg_txn_vec_new(txn, fld(r, F_VEC), SHG_KIND_NODE));
	tu_ok(shg_txn_set_u64(txn, fld(b, F_U64), 22));
	v = vnode(b);
	tu_ok(shg_txn_vec_push(txn, fld(r, F_VEC), &v));
	tu_ok(shg_txn_commit(txn));
}

/* Read back everything build_all() made (u64 may have been changed). */
static void check_all(struct fx *f, uint64_t want_u64)
{
	struct shg_seg *seg = f->e.seg;
	struct shg_off r, m, n;
	struct shg_val v;
	uint64_t u;
	int64_t i;
	double d;
	const void *p;
	size_t len;
	uint32_t slot;

	tu_ok(shg_read_lock(seg));
	r = tu_cur_node(&f->e);
	tu_ok(shg_get_u64(seg, r, F_U64, &u));
	assert_int_equal(u, want_u64);
	tu_ok(shg_get_i64(seg, r, F_I64, &i));
	assert_int_equal(i, -1);
	tu_ok(shg_get_f64(seg, r, F_F64, &d));
	assert_true(d == 0.5);
	tu_ok(shg_get_bytes(seg, r, F_BYTES, &p, &len));
	assert_int_equal(len, 2);
	assert_memory_equal(p, "xy", 2);
	tu_ok(shg_get_node(seg, r, F_NULL, &n));
	assert_true(shg_off_is_null(n));
	tu_ok(shg_get_root(seg, r, F_ROOT, &slot));
	tu_ok(shg_get_node(seg, r, F_MAPU, &m));
	assert_int_equal(shg_map_count(seg, m), 1);
	tu_ok(shg_map_get_u64(seg, m, 1, &v));
	tu_ok(shg_get_u64(seg, v.node, F_U64, &u));
	assert_int_equal(u, 11);
	tu_ok(shg_get_node(seg, r, F_MAPB, &m));
	tu_ok(shg_map_get_bytes(seg, m, "k", 1, &v));
	assert_int_equal(v.u64, 33);
	tu_ok(shg_get_node(seg, r, F_VEC, &m));
	assert_int_equal(shg_vec_len(seg, m), 1);
	tu_ok(shg_vec_get(seg, m, 0, &v));
	tu_ok(shg_get_u64(seg, v.node, F_U64, &u));
	assert_int_equal(u, 22);
	shg_read_unlock(seg);
	TU_CHECK_SOUND(seg);
}

/* ---- every operation, as one call on (txn, ref) ------------------------- */

struct op {
	const char *name;
	int (*fn)(struct shg_txn *txn, struct shg_ref ref, struct fx *f);
	unsigned ok_mask; /* fields where the op is legal */
};

#define NODE_FIELDS                                                          \
	((1u << F_NULL) | (1u << F_USER) | (1u << F_MAPU) | (1u << F_MAPB) | \
	 (1u << F_VEC))

static int op_set_u64(struct shg_txn *t, struct shg_ref r, struct fx *f)
{
	(void)f;
	return shg_txn_set_u64(t, r, 5);
}
static int op_set_i64(struct shg_txn *t, struct shg_ref r, struct fx *f)
{
	(void)f;
	return shg_txn_set_i64(t, r, 5);
}
static int op_set_f64(struct shg_txn *t, struct shg_ref r, struct fx *f)
{
	(void)f;
	return shg_txn_set_f64(t, r, 5.0);
}
static int op_set_bytes(struct shg_txn *t, struct shg_ref r, struct fx *f)
{
	(void)f;
	return shg_txn_set_bytes(t, r, "zz", 2);
}
static int op_set_node(struct shg_txn *t, struct shg_ref r, struct fx *f)
{
	(void)f;
	return shg_txn_set_node(t, r, SHG_OFF_NULL);
}
static int op_set_root(struct shg_txn *t, struct shg_ref r, struct fx *f)
{
	return shg_txn_set_root(t, r, f->e.root);
}
static int op_mut(struct shg_txn *t, struct shg_ref r, struct fx *f)
{
	struct shg_off o;

	(void)f;
	return shg_txn_mut(t, r, &o);
}
static int op_map_new(struct shg_txn *t, struct shg_ref r, struct fx *f)
{
	(void)f;
	return shg_txn_map_new(t, r, SHG_KIND_U64, SHG_KIND_U64);
}
static int op_map_put_u64(struct shg_txn *t, struct shg_ref r, struct fx *f)
{
	struct shg_val v = vnode(SHG_OFF_NULL);

	(void)f;
	return shg_txn_map_put_u64(t, r, 2, &v);
}
static int op_map_put_bytes(struct shg_txn *t, struct shg_ref r, struct fx *f)
{
	struct shg_val v = vu64(3);

	(void)f;
	return shg_txn_map_put_bytes(t, r, "q", 1, &v);
}
static int op_map_del_u64(struct shg_txn *t, struct shg_ref r, struct fx *f)
{
	(void)f;
	return shg_txn_map_del_u64(t, r, 99);
}
static int op_map_del_bytes(struct shg_txn *t, struct shg_ref r, struct fx *f)
{
	(void)f;
	return shg_txn_map_del_bytes(t, r, "nope", 4);
}
static int op_map_mut_u64(struct shg_txn *t, struct shg_ref r, struct fx *f)
{
	struct shg_off o;

	(void)f;
	return shg_txn_map_mut_u64(t, r, 1, &o);
}
static int op_map_mut_bytes(struct shg_txn *t, struct shg_ref r, struct fx *f)
{
	struct shg_off o;

	(void)f;
	return shg_txn_map_mut_bytes(t, r, "k", 1, &o);
}
static int op_vec_new(struct shg_txn *t, struct shg_ref r, struct fx *f)
{
	(void)f;
	return shg_txn_vec_new(t, r, SHG_KIND_U64);
}
static int op_vec_push(struct shg_txn *t, struct shg_ref r, struct fx *f)
{
	struct shg_val v = vnode(SHG_OFF_NULL);

	(void)f;
	return shg_txn_vec_push(t, r, &v);
}
static int op_vec_set(struct shg_txn *t, struct shg_ref r, struct fx *f)
{
	struct shg_val v = vnode(SHG_OFF_NULL);

	(void)f;
	return shg_txn_vec_set(t, r, 0, &v);
}
static int op_vec_pop(struct shg_txn *t, struct shg_ref r, struct fx *f)
{
	(void)f;
	return shg_txn_vec_pop(t, r);
}
static int op_vec_mut(struct shg_txn *t, struct shg_ref r, struct fx *f)
{
	struct shg_off o;

	(void)f;
	return shg_txn_vec_mut(t, r, 0, &o);
}

static const struct op ops[] = {
	{ "set_u64", op_set_u64, 1u << F_U64 },
	{ "set_i64", op_set_i64, 1u << F_I64 },
	{ "set_f64", op_set_f64, 1u << F_F64 },
	{ "set_bytes", op_set_bytes, 1u << F_BYTES },
	{ "set_node", op_set_node, NODE_FIELDS },
	{ "set_root", op_set_root, 1u << F_ROOT },
	{ "mut", op_mut, NODE_FIELDS },
	{ "map_new", op_map_new, NODE_FIELDS },
	{ "vec_new", op_vec_new, NODE_FIELDS },
	{ "map_put_u64", op_map_put_u64, 1u << F_MAPU },
	{ "map_del_u64", op_map_del_u64, 1u << F_MAPU },
	{ "map_mut_u64", op_map_mut_u64, 1u << F_MAPU },
	{ "map_put_bytes", op_map_put_bytes, 1u << F_MAPB },
	{ "map_del_bytes", op_map_del_bytes, 1u << F_MAPB },
	/* mapb holds U64 values: no node to make mutable anywhere */
	{ "map_mut_bytes", op_map_mut_bytes, 0 },
	{ "vec_push", op_vec_push, 1u << F_VEC },
	{ "vec_set", op_vec_set, 1u << F_VEC },
	{ "vec_pop", op_vec_pop, 1u << F_VEC },
	{ "vec_mut", op_vec_mut, 1u << F_VEC },
};

/*
 * Every operation at every field of a kind it does not accept, with each
 * scalar field holding the offset of a live container (the mistake that
 * used to be taken for the container): -EINVAL each time, nothing
 * changes, and the txn then commits a sound graph.
 */
static void test_api_every_op_at_every_wrong_kind(void **state)
{
	struct fx *f = *state;
	struct shg_txn *txn;
	struct shg_off r, mapu, vec;
	struct shg_val v;
	unsigned i, k, refused = 0;
	int rc;

	build_all(f);
	tu_ok(shg_txn_begin(f->e.root, &txn));
	tu_ok(shg_txn_mut(txn, SHG_REF_ROOT, &r));
	tu_ok(shg_get_node(f->e.seg, r, F_MAPU, &mapu));
	tu_ok(shg_get_node(f->e.seg, r, F_VEC, &vec));
	/* integers equal to live containers' offsets */
	tu_ok(shg_txn_set_u64(txn, fld(r, F_U64), mapu.v));
	tu_ok(shg_txn_set_i64(txn, fld(r, F_I64), (int64_t)vec.v));
	for (i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		for (k = 0; k < NF; k++) {
			if (ops[i].ok_mask & (1u << k))
				continue;
			rc = ops[i].fn(txn, fld(r, k), f);
			if (rc != -EINVAL)
				fail_msg(
					"%s at field %u: %d (%s), want -EINVAL",
					ops[i].name, k, rc, shg_strerror(rc));
			refused++;
		}
		/* the graph root is a user node, not a container */
		if (i >= 9) {
			rc = ops[i].fn(txn, SHG_REF_ROOT, f);
			if (rc != -EINVAL)
				fail_msg("%s at the root: %d (%s)", ops[i].name,
					 rc, shg_strerror(rc));
		}
	}
	assert_true(refused > 150);
	/* wrong value or key kinds at the right container */
	v = vu64(1);
	assert_int_equal(shg_txn_map_put_u64(txn, fld(r, F_MAPU), 1, &v),
			 -EINVAL);
	assert_int_equal(shg_txn_vec_push(txn, fld(r, F_VEC), &v), -EINVAL);
	assert_int_equal(shg_txn_vec_set(txn, fld(r, F_VEC), 0, &v), -EINVAL);
	v = vnode(SHG_OFF_NULL);
	assert_int_equal(shg_txn_map_put_bytes(txn, fld(r, F_MAPB), "k", 1, &v),
			 -EINVAL);
	assert_int_equal(shg_txn_map_put_bytes(txn, fld(r, F_MAPU), "k", 1, &v),
			 -EINVAL);
	/* caller mistakes that are not kinds: still not sticky */
	assert_int_equal(shg_txn_vec_set(txn, fld(r, F_VEC), 7, &v), -ERANGE);
	assert_int_equal(shg_txn_map_del_u64(txn, fld(r, F_MAPU), 5), -ENOENT);
	assert_int_equal(shg_txn_set_u64(txn, fld(r, NF), 1), -EINVAL);
	/* the txn is usable: restore the scalars, commit */
	tu_ok(shg_txn_set_u64(txn, fld(r, F_U64), 77));
	tu_ok(shg_txn_set_i64(txn, fld(r, F_I64), -1));
	tu_ok(shg_txn_commit(txn));
	check_all(f, 77);
}

/*
 * Regression: map_put at a U64 field whose value is a live map's offset
 * copied "the map" and retired the original while its NODE field still
 * reached it; after reclamation another root reused the block.
 */
static void test_api_map_put_at_u64_field_refused(void **state)
{
	struct fx *f = *state;
	struct shg_root *other;
	struct shg_txn *txn;
	struct shg_off r, m, n;
	struct shg_val v = vu64(7);
	int i;

	build_all(f);
	tu_ok(shg_txn_begin(f->e.root, &txn));
	tu_ok(shg_txn_mut(txn, SHG_REF_ROOT, &r));
	tu_ok(shg_get_node(f->e.seg, r, F_MAPB, &m));
	tu_ok(shg_txn_set_u64(txn, fld(r, F_U64), m.v));
	assert_int_equal(shg_txn_map_put_u64(txn, fld(r, F_U64), 2, &v),
			 -EINVAL);
	tu_ok(shg_txn_set_u64(txn, fld(r, F_U64), 1));
	tu_ok(shg_txn_commit(txn));
	/* reclaim, let another root allocate, then read the first graph */
	tu_ok(shg_synchronize(f->e.seg, 1000));
	shg_reclaim(f->e.seg);
	tu_ok(shg_root_create(f->e.seg, "other", &other));
	for (i = 0; i < 50; i++) {
		tu_ok(shg_txn_begin(other, &txn));
		tu_ok(shg_txn_node_new(txn, f->type, &n));
		tu_ok(shg_txn_set_node(txn, SHG_REF_ROOT, n));
		tu_ok(shg_txn_map_new(txn, fld(n, F_MAPB), SHG_KIND_BYTES,
				      SHG_KIND_U64));
		v = vu64(1000 + (uint64_t)i);
		tu_ok(shg_txn_map_put_bytes(txn, fld(n, F_MAPB), "k", 1, &v));
		tu_ok(shg_txn_commit(txn));
	}
	check_all(f, 1);
	shg_root_close(other);
}

/* Regression: vec_new/map_new at a U64 field returned 0 and turned the
 * integer into an uncounted container offset. */
static void test_api_container_new_at_u64_field_refused(void **state)
{
	struct fx *f = *state;
	struct shg_txn *txn;
	struct shg_off r;

	build_all(f);
	tu_ok(shg_txn_begin(f->e.root, &txn));
	tu_ok(shg_txn_mut(txn, SHG_REF_ROOT, &r));
	assert_int_equal(shg_txn_vec_new(txn, fld(r, F_U64), SHG_KIND_U64),
			 -EINVAL);
	assert_int_equal(shg_txn_map_new(txn, fld(r, F_U64), SHG_KIND_U64,
					 SHG_KIND_U64),
			 -EINVAL);
	assert_int_equal(shg_txn_vec_new(txn, fld(r, F_ROOT), SHG_KIND_U64),
			 -EINVAL);
	tu_ok(shg_txn_commit(txn));
	check_all(f, 1);
}

/* Mistakes used to return sticky corruption codes: vec_push on a map
 * field (SHG_ECORRUPT), map_put_bytes on a U64-keyed map. */
static void test_api_mistakes_not_sticky(void **state)
{
	struct fx *f = *state;
	struct shg_txn *txn;
	struct shg_off r;
	struct shg_val v = vnode(SHG_OFF_NULL);

	build_all(f);
	tu_ok(shg_txn_begin(f->e.root, &txn));
	tu_ok(shg_txn_mut(txn, SHG_REF_ROOT, &r));
	assert_int_equal(shg_txn_vec_push(txn, fld(r, F_MAPU), &v), -EINVAL);
	assert_int_equal(shg_txn_map_put_bytes(txn, fld(r, F_MAPU), "a", 1, &v),
			 -EINVAL);
	assert_int_equal(shg_txn_map_put_u64(txn, fld(r, F_VEC), 1, &v),
			 -EINVAL);
	assert_int_equal(shg_txn_map_put_u64(txn, fld(r, F_NULL), 1, &v),
			 -EINVAL);
	tu_ok(shg_txn_set_u64(txn, fld(r, F_U64), 9));
	tu_ok(shg_txn_commit(txn));
	check_all(f, 9);
}

/* map_mut/vec_mut: the value node is copied once, edited in place; the
 * old version is untouched; the map and vector path is copied. */
static void test_api_map_and_vec_mut(void **state)
{
	struct fx *f = *state;
	struct shg_seg *seg = f->e.seg;
	struct shg_txn *txn;
	struct shg_pin *pin;
	struct shg_off r, a, a2, b, m;
	struct shg_version_info vi;
	struct shg_val v;
	uint64_t u;

	build_all(f);
	tu_ok(shg_pin_current(f->e.root, &pin));
	tu_ok(shg_txn_begin(f->e.root, &txn));
	tu_ok(shg_txn_mut(txn, SHG_REF_ROOT, &r));
	tu_ok(shg_txn_map_mut_u64(txn, fld(r, F_MAPU), 1, &a));
	tu_ok(shg_txn_map_mut_u64(txn, fld(r, F_MAPU), 1, &a2));
	assert_true(shg_off_eq(a, a2)); /* copied once */
	tu_ok(shg_txn_set_u64(txn, fld(a, F_U64), 111));
	assert_int_equal(shg_txn_map_mut_u64(txn, fld(r, F_MAPU), 2, &a2),
			 -ENOENT);
	tu_ok(shg_txn_vec_mut(txn, fld(r, F_VEC), 0, &b));
	tu_ok(shg_txn_set_u64(txn, fld(b, F_U64), 222));
	assert_int_equal(shg_txn_vec_mut(txn, fld(r, F_VEC), 1, &b), -ERANGE);
	/* a null value is not made up */
	v = vnode(SHG_OFF_NULL);
	tu_ok(shg_txn_map_put_u64(txn, fld(r, F_MAPU), 3, &v));
	assert_int_equal(shg_txn_map_mut_u64(txn, fld(r, F_MAPU), 3, &a2),
			 -ENOENT);
	tu_ok(shg_txn_commit(txn));

	tu_ok(shg_read_lock(seg));
	r = tu_cur_node(&f->e);
	tu_ok(shg_get_node(seg, r, F_MAPU, &m));
	tu_ok(shg_map_get_u64(seg, m, 1, &v));
	tu_ok(shg_get_u64(seg, v.node, F_U64, &u));
	assert_int_equal(u, 111);
	tu_ok(shg_get_node(seg, r, F_VEC, &m));
	tu_ok(shg_vec_get(seg, m, 0, &v));
	tu_ok(shg_get_u64(seg, v.node, F_U64, &u));
	assert_int_equal(u, 222);
	shg_read_unlock(seg);
	/* the pinned version still reads the old values */
	tu_ok(shg_version_info(seg, shg_pin_version(pin), &vi));
	tu_ok(shg_get_node(seg, vi.node, F_MAPU, &m));
	tu_ok(shg_map_get_u64(seg, m, 1, &v));
	tu_ok(shg_get_u64(seg, v.node, F_U64, &u));
	assert_int_equal(u, 11);
	tu_ok(shg_get_node(seg, vi.node, F_VEC, &m));
	tu_ok(shg_vec_get(seg, m, 0, &v));
	tu_ok(shg_get_u64(seg, v.node, F_U64, &u));
	assert_int_equal(u, 22);
	tu_ok(shg_unpin(pin));
	TU_CHECK_SOUND(seg);
}

/* One call from a root ref to the target's version or handle; null and
 * dangling refs told apart. */
static void test_api_root_ref_follow(void **state)
{
	struct fx *f = *state;
	struct shg_seg *seg = f->e.seg;
	struct shg_root *tgt, *h;
	struct shg_txn *txn;
	struct shg_off r, ver, node;
	uint32_t slot;

	tu_ok(shg_root_create(seg, "target", &tgt));
	build_all(f); /* F_ROOT names "main" itself */
	tu_ok(shg_txn_begin(f->e.root, &txn));
	tu_ok(shg_txn_mut(txn, SHG_REF_ROOT, &r));
	tu_ok(shg_txn_set_root(txn, fld(r, F_ROOT), tgt));
	tu_ok(shg_txn_commit(txn));
	/* target never committed: a null version */
	tu_ok(shg_read_lock(seg));
	tu_ok(shg_current_node(f->e.root, &r));
	tu_ok(shg_get_root_version(seg, r, F_ROOT, &ver));
	assert_true(shg_off_is_null(ver));
	assert_int_equal(shg_get_root_version(seg, r, F_U64, &ver), -EINVAL);
	assert_int_equal(shg_get_root_version(seg, r, F_NULL, &ver), -EINVAL);
	shg_read_unlock(seg);
	/* commit on the target: the ref reaches its current version */
	tu_ok(shg_txn_begin(tgt, &txn));
	tu_ok(shg_txn_node_new(txn, f->type, &node));
	tu_ok(shg_txn_set_u64(txn, fld(node, F_U64), 4242));
	tu_ok(shg_txn_set_node(txn, SHG_REF_ROOT, node));
	tu_ok(shg_txn_commit(txn));
	tu_ok(shg_read_lock(seg));
	tu_ok(shg_current_node(f->e.root, &r));
	tu_ok(shg_get_root_version(seg, r, F_ROOT, &ver));
	assert_true(shg_off_eq(ver, shg_version_current(tgt)));
	shg_read_unlock(seg);
	tu_ok(shg_read_lock(seg));
	r = tu_cur_node(&f->e);
	tu_ok(shg_get_root_open(seg, r, F_ROOT, &h));
	shg_read_unlock(seg);
	assert_string_equal(shg_root_name(h), "target");
	tu_ok(shg_read_lock(seg));
	tu_ok(shg_current_node(h, &node));
	{
		uint64_t u;

		tu_ok(shg_get_u64(seg, node, F_U64, &u));
		assert_int_equal(u, 4242);
	}
	shg_read_unlock(seg);
	shg_root_close(h);
	/* removed, then a new root in the same slot: dangling */
	shg_root_close(tgt);
	tu_ok(shg_root_remove(seg, "target"));
	tu_ok(shg_root_create(seg, "target", &tgt));
	tu_ok(shg_read_lock(seg));
	r = tu_cur_node(&f->e);
	assert_int_equal(shg_get_root_version(seg, r, F_ROOT, &ver), -ESTALE);
	assert_int_equal(shg_get_root_open(seg, r, F_ROOT, &h), -ESTALE);
	assert_int_equal(shg_get_root(seg, r, F_ROOT, &slot), -ENOENT);
	assert_int_not_equal(slot, SHG_ROOT_SLOT_NONE);
	shg_read_unlock(seg);
	/* a null ref */
	tu_ok(shg_txn_begin(f->e.root, &txn));
	tu_ok(shg_txn_mut(txn, SHG_REF_ROOT, &r));
	tu_ok(shg_txn_set_root(txn, fld(r, F_ROOT), NULL));
	tu_ok(shg_txn_commit(txn));
	tu_ok(shg_read_lock(seg));
	r = tu_cur_node(&f->e);
	assert_int_equal(shg_get_root_version(seg, r, F_ROOT, &ver), -ENOENT);
	assert_int_equal(shg_get_root_open(seg, r, F_ROOT, &h), -ENOENT);
	assert_int_equal(shg_get_root(seg, r, F_ROOT, &slot), -ENOENT);
	assert_int_equal(slot, SHG_ROOT_SLOT_NONE);
	shg_read_unlock(seg);
	shg_root_close(tgt);
}

/* Fields by name, resolved once, with an optional kind check; node type
 * check. */
static void test_api_field_find_and_type_check(void **state)
{
	struct fx *f = *state;
	struct shg_seg *seg = f->e.seg;
	struct shg_off r, m;
	unsigned idx = 99;
	uint32_t other;
	static const struct shg_field_def of[] = { { "x", SHG_KIND_U64 } };

	tu_ok(shg_field_find(seg, f->type, "mapb", 0, &idx));
	assert_int_equal(idx, F_MAPB);
	tu_ok(shg_field_find(seg, f->type, "root", SHG_KIND_ROOT, &idx));
	assert_int_equal(idx, F_ROOT);
	assert_int_equal(shg_field_find(seg, f->type, "u64", SHG_KIND_I64,
					&idx),
			 -EINVAL);
	assert_int_equal(shg_field_find(seg, f->type, "u6", 0, &idx), -ENOENT);
	assert_int_equal(shg_field_find(seg, f->type, "u644", 0, &idx),
			 -ENOENT);
	assert_int_equal(shg_field_find(seg, f->type, "", 0, &idx), -ENOENT);
	assert_int_equal(shg_field_find(seg, SHG_TYPE_MAP, "u64", 0, &idx),
			 -ENOENT);
	assert_int_equal(shg_field_find(seg, 9999, "u64", 0, &idx), -ENOENT);
	tu_ok(shg_type_register(seg, "other", of, 1, &other));
	build_all(f);
	tu_ok(shg_read_lock(seg));
	tu_ok(shg_current_node(f->e.root, &r));
	tu_ok(shg_node_is(seg, r, f->type));
	assert_int_equal(shg_node_is(seg, r, other), -EINVAL);
	tu_ok(shg_get_node(seg, r, F_MAPU, &m));
	tu_ok(shg_node_is(seg, m, SHG_TYPE_MAP));
	assert_int_equal(shg_node_is(seg, m, f->type), -EINVAL);
	assert_true(shg_node_is(seg, (struct shg_off){ 8 }, f->type) < 0);
	shg_read_unlock(seg);
}

/* shg_current_node: one call for the root node; null before any commit. */
static void test_api_current_node(void **state)
{
	struct fx *f = *state;
	struct shg_version_info vi;
	struct shg_off n;

	tu_ok(shg_read_lock(f->e.seg));
	tu_ok(shg_current_node(f->e.root, &n));
	assert_true(shg_off_is_null(n));
	shg_read_unlock(f->e.seg);
	build_all(f);
	tu_ok(shg_read_lock(f->e.seg));
	tu_ok(shg_current_node(f->e.root, &n));
	tu_ok(shg_version_info(f->e.seg, shg_version_current(f->e.root), &vi));
	assert_true(shg_off_eq(n, vi.node));
	assert_false(shg_off_is_null(n));
	shg_read_unlock(f->e.seg);
}

/* ---- waiting for reclamation ------------------------------------------- */

struct stall {
	struct shg_seg *seg;
	_Atomic int in; /* reader inside its section */
	_Atomic int release; /* reader may leave */
};

static void *stall_reader(void *arg)
{
	struct stall *st = arg;

	if (shg_read_lock(st->seg) != 0)
		return NULL;
	atomic_store(&st->in, 1);
	while (!atomic_load(&st->release))
		usleep(1000);
	shg_read_unlock(st->seg);
	return NULL;
}

static void *stall_release_later(void *arg)
{
	struct stall *st = arg;

	usleep(300 * 1000);
	atomic_store(&st->release, 1);
	return NULL;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/*
 * A reader stalled in its section holds retired memory back: past the
 * budget, shg_txn_begin() gives SHG_EBUDGET (after its short wait) and so
 * does shg_txn_begin_wait() with a short timeout; with a longer one it
 * rides out the stall and begins once the reader leaves.
 */
static void test_api_begin_wait_rides_out_stall(void **state)
{
	struct shg_opts o = { .size = sizeof(o) };
	char name[64];
	static char blob[16384];
	struct stall st = { 0 };
	struct shg_seg *seg;
	struct shg_root *root;
	struct shg_txn *txn;
	struct shg_off n;
	pthread_t rd, rel;
	uint32_t type;
	uint64_t t0;
	int i, rc = 0;

	(void)state;
	o.capacity = 64u << 20;
	o.retire_budget = 256u << 10;
	tu_shm_name(name, sizeof(name), "budget");
	tu_ok(shg_seg_create(name, &o, &seg));
	tu_ok(shg_type_register(seg, "all", all_fields, NF, &type));
	tu_ok(shg_root_create(seg, "main", &root));
	st.seg = seg;
	assert_int_equal(pthread_create(&rd, NULL, stall_reader, &st), 0);
	while (!atomic_load(&st.in))
		usleep(1000);
	/* each commit retires a 16 KiB bytes node */
	for (i = 0; i < 200; i++) {
		rc = shg_txn_begin(root, &txn);
		if (rc)
			break;
		if (i == 0) {
			tu_ok(shg_txn_node_new(txn, type, &n));
			tu_ok(shg_txn_set_node(txn, SHG_REF_ROOT, n));
		} else {
			tu_ok(shg_txn_mut(txn, SHG_REF_ROOT, &n));
		}
		tu_ok(shg_txn_set_bytes(txn, fld(n, F_BYTES), blob,
					sizeof(blob)));
		tu_ok(shg_txn_commit(txn));
	}
	assert_int_equal(rc, SHG_EBUDGET);
	assert_true(i > 4); /* the budget allowed some commits first */
	t0 = now_ms();
	assert_int_equal(shg_txn_begin_wait(root, 50, &txn), SHG_EBUDGET);
	assert_true(now_ms() - t0 >= 40);
	assert_int_equal(pthread_create(&rel, NULL, stall_release_later, &st),
			 0);
	t0 = now_ms();
	tu_ok(shg_txn_begin_wait(root, 10000, &txn));
	assert_true(now_ms() - t0 >= 200); /* it did wait for the reader */
	tu_ok(shg_txn_abort(txn));
	pthread_join(rel, NULL);
	pthread_join(rd, NULL);
	shg_root_close(root);
	tu_destroy(seg, name);
}

/* An fn that makes its own attempt lose: a commit on another handle. */
struct always_lose {
	struct shg_root *other;
	uint32_t type;
	unsigned calls;
};

static int lose_fn(struct shg_txn *txn, void *arg)
{
	struct always_lose *a = arg;
	struct shg_txn *t2;
	struct shg_off n;
	int err;

	(void)txn;
	a->calls++;
	err = shg_txn_begin(a->other, &t2);
	if (err)
		return err;
	err = shg_txn_node_new(t2, a->type, &n);
	if (!err)
		err = shg_txn_set_node(t2, SHG_REF_ROOT, n);
	if (!err)
		return shg_txn_commit(t2);
	shg_txn_abort(t2);
	return err;
}

/* shg_update under permanent conflict: fn runs max_tries times, the call
 * ends with SHG_ECONFLICT, and the backoff stays bounded (2 ms a try). */
static void test_api_update_backoff_bounded(void **state)
{
	struct fx *f = *state;
	struct always_lose a = { .type = f->type };
	uint64_t t0;

	tu_ok(shg_root_open(f->e.seg, "main", &a.other));
	t0 = now_ms();
	assert_int_equal(shg_update(f->e.root, lose_fn, &a, 30), SHG_ECONFLICT);
	assert_int_equal(a.calls, 30);
	assert_true(now_ms() - t0 < 30 * 2 + 2000); /* sleep <= 2 ms a try */
	shg_root_close(a.other);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)
		T(test_api_every_op_at_every_wrong_kind),
		T(test_api_map_put_at_u64_field_refused),
		T(test_api_container_new_at_u64_field_refused),
		T(test_api_mistakes_not_sticky),
		T(test_api_map_and_vec_mut),
		T(test_api_root_ref_follow),
		T(test_api_field_find_and_type_check),
		T(test_api_current_node),
		cmocka_unit_test(test_api_begin_wait_rides_out_stall),
		T(test_api_update_backoff_bounded),
#undef T
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
