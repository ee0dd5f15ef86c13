/* SPDX-License-Identifier: MIT */
/*
 * The graphs the seed corpora are made of (fz_build_graphs): every kind of
 * node the type table knows -- a registered type with every field kind
 * (a DAG: two nodes share a child; a root reference), maps with u64 and
 * bytes keys, a map whose keys collide fully (collision nodes), vectors
 * of u64 (three levels) and bytes, a map inside a node field -- plus a raw
 * root value, a removed root, and old versions kept by a pin.
 */
#include <stdio.h>
#include <string.h>

#include "fuzz.h"
#include "graph_internal.h"

enum { F_ID, F_AGE, F_SCORE, F_NAME, F_NEXT, F_FRIEND, F_LINK, F_MAP };

static struct shg_ref fld(struct shg_off n, unsigned f)
{
	return (struct shg_ref){ n, f };
}

static struct shg_val u64v(uint64_t x)
{
	struct shg_val v = { .kind = SHG_KIND_U64, .u64 = x };

	return v;
}

/* "ids": a u64 -> u64 map of @n entries, committed in batches. */
static int build_ids(struct shg_seg *seg, struct shg_root *r, unsigned n)
{
	struct shg_txn *t;
	struct shg_val v;
	unsigned i;
	int err;

	for (i = 0; i < n; i++) {
		if (i % 100 == 0) {
			err = shg_txn_begin(r, &t);
			if (!err && i == 0)
				err = shg_txn_map_new(t, SHG_REF_ROOT,
						      SHG_KIND_U64,
						      SHG_KIND_U64);
			if (err)
				return err;
		}
		v = u64v(i);
		err = shg_txn_map_put_u64(t, SHG_REF_ROOT, (uint64_t)i * 7919u,
					  &v);
		if (!err && (i % 100 == 99 || i == n - 1))
			err = shg_txn_commit(t);
		if (err)
			return err;
	}
	(void)seg;
	return 0;
}

/* "cfg": bytes -> bytes; "coll": colliding u64 keys -> bytes. */
static int build_cfg(struct shg_root *cfg, struct shg_root *coll)
{
	struct shg_txn *t;
	struct shg_val v = { .kind = SHG_KIND_BYTES };
	char k[32], val[64];
	unsigned i;
	int err;

	err = shg_txn_begin(cfg, &t);
	if (!err)
		err = shg_txn_map_new(t, SHG_REF_ROOT, SHG_KIND_BYTES,
				      SHG_KIND_BYTES);
	for (i = 0; !err && i < 40; i++) {
		snprintf(k, sizeof(k), "key.%u", i);
		snprintf(val, sizeof(val), "value number %u", i * 31);
		v.bytes.p = val;
		v.bytes.len = i == 7 ? 0 : strlen(val);
		err = shg_txn_map_put_bytes(t, SHG_REF_ROOT, k, strlen(k), &v);
	}
	if (!err)
		err = shg_txn_commit(t);
	if (err)
		return err;
	err = shg_txn_begin(coll, &t);
	if (!err)
		err = shg__txn_map_new_flags(t, SHG_REF_ROOT, SHG_KIND_U64,
					     SHG_KIND_BYTES,
					     SHG_MAP_F_TESTHASH);
	for (i = 0; !err && i < 24; i++) {
		snprintf(val, sizeof(val), "c%u", i);
		v.bytes.p = val;
		v.bytes.len = strlen(val);
		/* Test hash = key & 0xff: keys 256 apart collide fully. */
		err = shg_txn_map_put_u64(t, SHG_REF_ROOT,
					  (uint64_t)(i % 3) + 256u * (i / 3),
					  &v);
	}
	return err ? err : shg_txn_commit(t);
}

/* "vec": 1100 u64 (three levels); "names": bytes. */
static int build_vecs(struct shg_root *vec, struct shg_root *names)
{
	struct shg_txn *t;
	struct shg_val v;
	char s[32];
	unsigned i;
	int err;

	err = shg_txn_begin(vec, &t);
	if (!err)
		err = shg_txn_vec_new(t, SHG_REF_ROOT, SHG_KIND_U64);
	for (i = 0; !err && i < 1100; i++) {
		v = u64v(i * 3u);
		err = shg_txn_vec_push(t, SHG_REF_ROOT, &v);
	}
	if (!err)
		err = shg_txn_commit(t);
	if (err)
		return err;
	err = shg_txn_begin(names, &t);
	if (!err)
		err = shg_txn_vec_new(t, SHG_REF_ROOT, SHG_KIND_BYTES);
	for (i = 0; !err && i < 40; i++) {
		snprintf(s, sizeof(s), "name-%u", i);
		v.kind = SHG_KIND_BYTES;
		v.bytes.p = s;
		v.bytes.len = strlen(s);
		err = shg_txn_vec_push(t, SHG_REF_ROOT, &v);
	}
	return err ? err : shg_txn_commit(t);
}

/* "people": a chain of typed nodes sharing a friend, with a map field. */
static int build_people(struct shg_seg *seg, struct shg_root *r,
			struct shg_root *link)
{
	static const struct shg_field_def f[] = {
		{ "id", SHG_KIND_U64 },	   { "age", SHG_KIND_I64 },
		{ "score", SHG_KIND_F64 }, { "name", SHG_KIND_BYTES },
		{ "next", SHG_KIND_NODE }, { "friend", SHG_KIND_NODE },
		{ "link", SHG_KIND_ROOT }, { "tags", SHG_KIND_NODE },
	};
	struct shg_off n, prev = SHG_OFF_NULL, friend;
	struct shg_txn *t;
	struct shg_val v;
	uint32_t type;
	char s[32];
	unsigned i;
	int err;

	err = shg_type_register(seg, "fz.person", f, 8, &type);
	if (!err)
		err = shg_txn_begin(r, &t);
	if (err)
		return err;
	err = shg_txn_node_new(t, type, &friend);
	if (!err)
		err = shg_txn_set_bytes(t, fld(friend, F_NAME), "friend", 6);
	for (i = 0; !err && i < 6; i++) {
		snprintf(s, sizeof(s), "person %u", i);
		err = shg_txn_node_new(t, type, &n);
		if (!err)
			err = shg_txn_set_u64(t, fld(n, F_ID), i);
		if (!err)
			err = shg_txn_set_i64(t, fld(n, F_AGE), -(int64_t)i);
		if (!err)
			err = shg_txn_set_f64(t, fld(n, F_SCORE), i * 0.5);
		if (!err && i != 2)
			err = shg_txn_set_bytes(t, fld(n, F_NAME), s,
						strlen(s));
		if (!err)
			err = shg_txn_set_node(t, fld(n, F_NEXT), prev);
		if (!err && i % 2)
			err = shg_txn_set_node(t, fld(n, F_FRIEND), friend);
		if (!err && i == 5)
			err = shg_txn_set_root(t, fld(n, F_LINK), link);
		if (!err && i == 5)
			err = shg_txn_map_new(t, fld(n, F_MAP), SHG_KIND_U64,
					      SHG_KIND_NODE);
		prev = n;
	}
	v.kind = SHG_KIND_NODE;
	v.node = friend;
	if (!err)
		err = shg_txn_map_put_u64(t, fld(n, F_MAP), 1, &v);
	if (!err)
		err = shg_txn_set_node(t, SHG_REF_ROOT, n);
	return err ? err : shg_txn_commit(t);
}

/* "raw": a plain block as value; "gone": committed, then removed. */
static int build_misc(struct shg_seg *seg, struct shg_root *raw,
		      struct shg_root *gone)
{
	struct shg_off b;
	struct shg_txn *t;
	struct shg_val v = u64v(1);
	int err;

	err = shg_alloc(seg, 100, &b);
	if (!err)
		memset(shg_ptr(seg, b, 100), 0xab, 100);
	if (!err)
		err = shg_root_cas(raw, SHG_OFF_NULL, b);
	if (!err)
		err = shg_txn_begin(gone, &t);
	if (!err)
		err = shg_txn_map_new(t, SHG_REF_ROOT, SHG_KIND_U64,
				      SHG_KIND_U64);
	if (!err)
		err = shg_txn_map_put_u64(t, SHG_REF_ROOT, 5, &v);
	if (!err)
		err = shg_txn_commit(t);
	if (!err)
		err = shg_root_remove(seg, "gone");
	return err;
}

const char *const fz_root_names[FZ_NROOTS] = {
	"ids", "cfg", "coll", "vec", "names", "people", "raw", "gone"
};
#define root_names fz_root_names
#define NROOTS FZ_NROOTS

/* See fuzz.h. */
int fz_build_graphs(struct shg_seg *seg, bool crash)
{
	struct shg_root *r[NROOTS];
	struct shg_pin *pin = NULL;
	struct shg_txn *t;
	struct shg_val v = u64v(42);
	unsigned i;
	int err = 0;

	for (i = 0; !err && i < NROOTS; i++)
		err = shg_root_create(seg, root_names[i], &r[i]);
	if (!err)
		err = build_ids(seg, r[0], 300);
	if (!err)
		err = shg_pin_current(r[0], &pin);
	if (!err)
		err = build_cfg(r[1], r[2]);
	if (!err)
		err = build_vecs(r[3], r[4]);
	if (!err)
		err = build_people(seg, r[5], r[3]);
	if (!err)
		err = build_misc(seg, r[6], r[7]);
	/* Replace part of "ids": garbage held by the pin, retire batches. */
	for (i = 0; !err && i < 3; i++) {
		err = shg_txn_begin(r[0], &t);
		if (!err)
			err = shg_txn_map_put_u64(t, SHG_REF_ROOT, i * 7919u,
						  &v);
		if (!err)
			err = shg_txn_map_del_u64(t, SHG_REF_ROOT,
						  (i + 10) * 7919u);
		if (!err)
			err = shg_txn_commit(t);
	}
	if (!err)
		err = shg_synchronize(seg, 1000);
	if (!err)
		(void)shg_reclaim(seg);
	if (err || crash) {
		if (!err)
			err = shg_txn_begin(r[1], &t);
		if (!err)
			err = shg_txn_map_del_bytes(t, SHG_REF_ROOT, "key.3",
						    5);
		return err; /* the caller _exit()s: all of it is left */
	}
	shg_unpin(pin);
	for (i = 0; i < NROOTS; i++)
		shg_root_close(r[i]);
	return shg_synchronize(seg, 1000);
}
