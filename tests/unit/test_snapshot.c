/* SPDX-License-Identifier: MIT */
/*
 * Snapshots (lib/snapshot.c, lib/snapshot_import.c): round trips of maps,
 * vectors, user types, bytes values, shared nodes and root references
 * into another segment, byte-identical re-export; every kind of damaged
 * or forged file refused with its specific error and the target segment
 * left exactly as it was (no root, no bytes in use, checker clean);
 * replace, type conflicts, missing roots, a build that runs out of
 * capacity, exports taken while another process commits, and
 * shg_version_pinned().
 *
 * Forged files are written by a small independent encoder below that
 * follows docs/SNAPSHOT.md, so the tests also check the documented format.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "snapshot.h"
#include "testutil.h"

static void problem_print(void *arg, int code, const char *msg)
{
	(void)arg;
	print_message("check: %s (%s)\n", msg, shg_strerror(code));
}

/* Bytes in use after reclaiming what can be; asserts the checker is clean. */
static uint64_t used_bytes(struct shg_seg *seg)
{
	struct shg_check_report rep;

	tu_ok(shg_synchronize(seg, 5000));
	(void)shg_reclaim(seg);
	assert_int_equal(shg_check(seg, problem_print, NULL, &rep), 0);
	return rep.used_bytes;
}

static void assert_same_file(const uint8_t *a, size_t alen, const uint8_t *b,
			     size_t blen)
{
	assert_int_equal(alen, blen);
	assert_memory_equal(a, b, alen);
}

/* Current graph root node of @r (caller holds a read section). */
static struct shg_off top_node(struct shg_seg *seg, struct shg_root *r)
{
	struct shg_version_info vi;

	tu_ok(shg_version_info(seg, shg_version_current(r), &vi));
	return vi.node;
}

/* ---- a graph with every kind of value ------------------------------------ */

enum {
	F_A,
	F_B,
	F_C,
	F_D,
	F_E,
	F_RAW,
	F_S,
	F_LABEL,
	F_N,
	F_F,
	F_OWNER,
	F_FLAG
};

static const struct shg_field_def box_fields[] = {
	{ "a", SHG_KIND_NODE },	    { "b", SHG_KIND_NODE },
	{ "c", SHG_KIND_NODE },	    { "d", SHG_KIND_NODE },
	{ "e", SHG_KIND_NODE },	    { "raw", SHG_KIND_NODE },
	{ "s", SHG_KIND_NODE },	    { "label", SHG_KIND_BYTES },
	{ "n", SHG_KIND_I64 },	    { "f", SHG_KIND_F64 },
	{ "owner", SHG_KIND_ROOT }, { "flag", SHG_KIND_U64 },
};
#define NBOX (sizeof(box_fields) / sizeof(box_fields[0]))
/* box_fields' first three, the second retyped. */
static const struct shg_field_def box_clash[] = { { "a", SHG_KIND_NODE },
						  { "b", SHG_KIND_U64 },
						  { "c", SHG_KIND_NODE } };

static const uint8_t bin[] = { 0x00, 0xff, 0x10, 'x', 0x80, 0x0a };
static const uint64_t nan_bits = 0x7ff4000000000123ull; /* NaN with payload */

static struct shg_ref at(struct shg_off n, unsigned f)
{
	return (struct shg_ref){ n, f };
}

static struct shg_val vbytes(const void *p, size_t len)
{
	struct shg_val v = { .kind = SHG_KIND_BYTES };

	v.bytes.p = p;
	v.bytes.len = len;
	return v;
}

static struct shg_val vnode(struct shg_off o)
{
	struct shg_val v = { .kind = SHG_KIND_NODE };

	v.node = o;
	return v;
}

static struct shg_val vf64(uint64_t bits)
{
	struct shg_val v = { .kind = SHG_KIND_F64 };

	memcpy(&v.f64, &bits, 8);
	return v;
}

/* Containers hanging off box @b (fields a..e). */
static void fill_containers(struct shg_txn *t, struct shg_off b, uint32_t box,
			    struct shg_root *g, struct shg_root *other)
{
	struct shg_val v = { 0 };
	struct shg_off leaf, p1, p2;
	char key[16];
	int i;

	/* a: bytes -> bytes, binary and empty keys/values. */
	tu_ok(shg_txn_map_new(t, at(b, F_A), SHG_KIND_BYTES, SHG_KIND_BYTES));
	for (i = 0; i < 20; i++) {
		snprintf(key, sizeof(key), "key%02d", i);
		v = vbytes(key, strlen(key));
		tu_ok(shg_txn_map_put_bytes(t, at(b, F_A), key, strlen(key),
					    &v));
	}
	v = vbytes(bin, sizeof(bin));
	tu_ok(shg_txn_map_put_bytes(t, at(b, F_A), bin, sizeof(bin), &v));
	v = vbytes("", 0);
	tu_ok(shg_txn_map_put_bytes(t, at(b, F_A), "", 0, &v));
	/* b: f64 vector with NaN payload, -0.0, infinity. */
	tu_ok(shg_txn_vec_new(t, at(b, F_B), SHG_KIND_F64));
	for (i = 0; i < 40; i++) {
		double d = i * 0.5;
		uint64_t bits;

		memcpy(&bits, &d, 8);
		if (i == 3)
			bits = nan_bits;
		if (i == 4)
			bits = 0x8000000000000000ull;
		if (i == 5)
			bits = 0x7ff0000000000000ull;
		v = vf64(bits);
		tu_ok(shg_txn_vec_push(t, at(b, F_B), &v));
	}
	/* c: u64 -> node, one leaf under two keys (a DAG) and a null. */
	tu_ok(shg_txn_node_new(t, box, &leaf));
	tu_ok(shg_txn_set_root(t, at(leaf, F_OWNER), g)); /* self */
	tu_ok(shg_txn_set_u64(t, at(leaf, F_FLAG), 99));
	tu_ok(shg_txn_map_new(t, at(b, F_C), SHG_KIND_U64, SHG_KIND_NODE));
	v = vnode(leaf);
	tu_ok(shg_txn_map_put_u64(t, at(b, F_C), 1, &v));
	tu_ok(shg_txn_map_put_u64(t, at(b, F_C), 2, &v));
	v = vnode(SHG_OFF_NULL);
	tu_ok(shg_txn_map_put_u64(t, at(b, F_C), 3, &v));
	/* d: bytes -> root references (another root and this one). */
	tu_ok(shg_txn_map_new(t, at(b, F_D), SHG_KIND_BYTES, SHG_KIND_ROOT));
	v.kind = SHG_KIND_ROOT;
	v.root = shg__root_slot(other);
	tu_ok(shg_txn_map_put_bytes(t, at(b, F_D), "o", 1, &v));
	v.root = shg__root_slot(g);
	tu_ok(shg_txn_map_put_bytes(t, at(b, F_D), "me", 2, &v));
	/* e: vector of nodes: a two-node list with empty containers. */
	tu_ok(shg_txn_node_new(t, box, &p1));
	tu_ok(shg_txn_node_new(t, box, &p2));
	tu_ok(shg_txn_set_node(t, at(p1, F_A), p2));
	tu_ok(shg_txn_set_i64(t, at(p2, F_N), INT64_MIN));
	tu_ok(shg_txn_map_new(t, at(p2, F_B), SHG_KIND_U64, SHG_KIND_I64));
	tu_ok(shg_txn_vec_new(t, at(p2, F_C), SHG_KIND_ROOT));
	tu_ok(shg_txn_set_node(t, at(p2, F_D), leaf)); /* shared again */
	tu_ok(shg_txn_vec_new(t, at(b, F_E), SHG_KIND_NODE));
	v = vnode(p1);
	tu_ok(shg_txn_vec_push(t, at(b, F_E), &v));
	tu_ok(shg_txn_vec_push(t, at(b, F_E), &v));
}

/* Build the sample graph under root "g" of @seg (creates "g", "other"). */
static void build_sample(struct shg_seg *seg)
{
	struct shg_root *g, *other, *gone;
	struct shg_txn *t;
	struct shg_off b, st;
	uint64_t raw, nb = nan_bits;
	uint32_t box;
	double d;

	tu_ok(shg_type_register(seg, "box", box_fields, NBOX, &box));
	tu_ok(shg_root_create(seg, "other", &other));
	tu_ok(shg_root_create(seg, "g", &g));
	tu_ok(shg_root_create(seg, "gone", &gone));
	tu_ok(shg_txn_begin(g, &t));
	tu_ok(shg_txn_node_new(t, box, &b));
	tu_ok(shg_txn_set_node(t, SHG_REF_ROOT, b));
	fill_containers(t, b, box, g, other);
	tu_ok(shg_txn_set_bytes(t, at(b, F_LABEL), bin, sizeof(bin)));
	tu_ok(shg_txn_set_i64(t, at(b, F_N), -5));
	memcpy(&d, &nb, 8);
	tu_ok(shg_txn_set_f64(t, at(b, F_F), d));
	tu_ok(shg_txn_set_root(t, at(b, F_OWNER), other));
	tu_ok(shg_txn_set_u64(t, at(b, F_FLAG), UINT64_MAX));
	tu_ok(shg__txn_bytes(t, "raw!", 4, &raw));
	tu_ok(shg_txn_set_node(t, at(b, F_RAW), (struct shg_off){ raw }));
	/* A reference to a root that will be removed: exported as null. */
	tu_ok(shg_txn_node_new(t, box, &st));
	tu_ok(shg_txn_set_root(t, at(st, F_OWNER), gone));
	tu_ok(shg_txn_set_node(t, at(b, F_S), st));
	tu_ok(shg_txn_commit(t));
	shg_root_close(gone);
	tu_ok(shg_root_remove(seg, "gone"));
	shg_root_close(g);
	shg_root_close(other);
}

/* Check a few values of the imported sample graph under @name. */
static void verify_sample(struct shg_seg *seg, const char *name)
{
	struct shg_root *r;
	struct shg_off top, m, leaf1, leaf2;
	struct shg_val v;
	const void *p;
	uint32_t slot;
	uint64_t bits;
	size_t len;
	double d;

	tu_ok(shg_root_open(seg, name, &r));
	tu_ok(shg_read_lock(seg));
	top = top_node(seg, r);
	tu_ok(shg_get_bytes(seg, top, F_LABEL, &p, &len));
	assert_int_equal(len, sizeof(bin));
	assert_memory_equal(p, bin, len);
	tu_ok(shg_get_f64(seg, top, F_F, &d));
	memcpy(&bits, &d, 8);
	assert_true(bits == nan_bits);
	tu_ok(shg_get_root(seg, top, F_OWNER, &slot));
	tu_ok(shg_get_node(seg, top, F_A, &m));
	assert_int_equal(shg_map_count(seg, m), 22);
	tu_ok(shg_map_get_bytes(seg, m, bin, sizeof(bin), &v));
	assert_int_equal(v.bytes.len, sizeof(bin));
	tu_ok(shg_get_node(seg, top, F_C, &m));
	tu_ok(shg_map_get_u64(seg, m, 1, &v));
	leaf1 = v.node;
	tu_ok(shg_map_get_u64(seg, m, 2, &v));
	leaf2 = v.node;
	assert_true(leaf1.v && leaf1.v == leaf2.v); /* still shared */
	tu_ok(shg_get_root(seg, leaf1, F_OWNER, &slot));
	assert_int_equal(slot, shg__root_slot(r)); /* self -> this root */
	tu_ok(shg_get_node(seg, top, F_S, &m));
	assert_int_equal(shg_get_root(seg, m, F_OWNER, &slot), -ENOENT);
	tu_ok(shg_get_node(seg, top, F_B, &m));
	tu_ok(shg_vec_get(seg, m, 3, &v));
	memcpy(&bits, &v.f64, 8);
	assert_true(bits == nan_bits);
	shg_read_unlock(seg);
	shg_root_close(r);
}

/* ---- round trips ---------------------------------------------------------- */

static void test_snapshot_roundtrip_all_kinds(void **state)
{
	char n1[64], n2[64];
	struct shg_seg *a = tu_create(n1, 0), *b = tu_create(n2, 0);
	struct shg_root *other;
	uint8_t *f1, *f2, *f3;
	size_t l1, l2, l3;

	(void)state;
	build_sample(a);
	f1 = tu_export_mem(a, "g", &l1);
	/* Another segment: other hash seed, other offsets and type ids. */
	tu_ok(shg_type_register(b, "unrelated", box_fields, 2,
				&(uint32_t){ 0 }));
	tu_ok(shg_root_create(b, "other", &other));
	shg_root_close(other);
	tu_ok(shg_import_mem(b, "g", f1, l1, 0));
	verify_sample(b, "g");
	f2 = tu_export_mem(b, "g", &l2);
	assert_same_file(f1, l1, f2, l2);
	/* Under another name in the same segment: self refs follow. */
	tu_ok(shg_import_mem(a, "copy", f1, l1, 0));
	verify_sample(a, "copy");
	f3 = tu_export_mem(a, "copy", &l3);
	assert_same_file(f1, l1, f3, l3);
	assert_int_equal(shg_check(a, problem_print, NULL, NULL), 0);
	assert_int_equal(shg_check(b, problem_print, NULL, NULL), 0);
	free(f1);
	free(f2);
	free(f3);
	tu_destroy(a, n1);
	tu_destroy(b, n2);
}

static void test_snapshot_roundtrip_fd_and_empty(void **state)
{
	char n1[64];
	struct shg_seg *a = tu_create(n1, 0);
	struct shg_root *r;
	uint8_t *f1, *f2;
	size_t l1, l2;
	int fd;

	(void)state;
	/* A root that never committed: an empty graph. */
	tu_ok(shg_root_create(a, "empty", &r));
	shg_root_close(r);
	f1 = tu_export_mem(a, "empty", &l1);
	tu_ok(shg_import_mem(a, "empty2", f1, l1, 0));
	f2 = tu_export_mem(a, "empty2", &l2);
	assert_same_file(f1, l1, f2, l2);
	free(f2);
	/* shg_import from a descriptor. */
	fd = memfd_create("in", 0);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, f1, l1), (ssize_t)l1);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	tu_ok(shg_import(a, "empty3", fd, 0));
	close(fd);
	/* Errors of the descriptor pass through. */
	assert_int_equal(shg_export(a, "empty", -1), -EINVAL);
	fd = open("/dev/null", O_RDONLY);
	assert_int_equal(shg_export(a, "empty", fd), -EBADF);
	close(fd);
	assert_int_equal(shg_export(a, "nosuch", 1), -ENOENT);
	free(f1);
	tu_destroy(a, n1);
}

static int map_put_n(struct shg_txn *t, void *arg)
{
	uint64_t i, n = *(uint64_t *)arg;
	struct shg_val v = { .kind = SHG_KIND_U64 };
	int err = shg_txn_map_new(t, SHG_REF_ROOT, SHG_KIND_U64, SHG_KIND_U64);

	for (i = 0; i < n && !err; i++) {
		v.u64 = i * 3;
		err = shg_txn_map_put_u64(t, SHG_REF_ROOT, i, &v);
	}
	return err;
}

static void make_map_root(struct shg_seg *seg, const char *name, uint64_t n)
{
	struct shg_root *r;

	tu_ok(shg_root_create(seg, name, &r));
	tu_ok(shg_update(r, map_put_n, &n, 0));
	shg_root_close(r);
}

static void test_snapshot_replace(void **state)
{
	char n1[64];
	struct shg_seg *a = tu_create(n1, 0);
	struct shg_root *r;
	struct shg_val v;
	uint64_t base;
	uint8_t *f;
	size_t l;

	(void)state;
	make_map_root(a, "small", 3);
	make_map_root(a, "big", 500);
	f = tu_export_mem(a, "small", &l);
	base = used_bytes(a);
	assert_int_equal(shg_import_mem(a, "big", f, l, 0), -EEXIST);
	assert_int_equal(used_bytes(a), base);
	tu_ok(shg_import_mem(a, "big", f, l, SHG_IMPORT_REPLACE));
	tu_ok(shg_root_open(a, "big", &r));
	tu_ok(shg_read_lock(a));
	assert_int_equal(shg_map_count(a, top_node(a, r)), 3);
	tu_ok(shg_map_get_u64(a, top_node(a, r), 2, &v));
	assert_int_equal(v.u64, 6);
	shg_read_unlock(a);
	shg_root_close(r);
	/* The 500-entry version was retired and reclaimed. */
	assert_true(used_bytes(a) < base);
	/* REPLACE on a missing root creates it. */
	tu_ok(shg_import_mem(a, "fresh", f, l, SHG_IMPORT_REPLACE));
	free(f);
	tu_destroy(a, n1);
}

/* A 50,000-node linked list: export and import walk without recursion. */
#define DEEP_N 50000

static void test_snapshot_deep_list(void **state)
{
	static const struct shg_field_def cell[] = {
		{ "v", SHG_KIND_U64 }, { "next", SHG_KIND_NODE }
	};
	char n1[64], n2[64];
	struct shg_seg *a = tu_create(n1, 0), *b = tu_create(n2, 0);
	struct shg_off n, prev = SHG_OFF_NULL;
	struct shg_root *r;
	struct shg_txn *t;
	uint8_t *f1, *f2;
	size_t l1, l2, depth = 0;
	uint32_t type;
	uint64_t i, v;

	(void)state;
	tu_ok(shg_type_register(a, "cell", cell, 2, &type));
	tu_ok(shg_root_create(a, "list", &r));
	tu_ok(shg_txn_begin(r, &t));
	for (i = 0; i < DEEP_N; i++) {
		tu_ok(shg_txn_node_new(t, type, &n));
		tu_ok(shg_txn_set_u64(t, at(n, 0), i));
		tu_ok(shg_txn_set_node(t, at(n, 1), prev));
		prev = n;
	}
	tu_ok(shg_txn_set_node(t, SHG_REF_ROOT, prev));
	tu_ok(shg_txn_commit(t));
	shg_root_close(r);
	f1 = tu_export_mem(a, "list", &l1);
	tu_ok(shg_import_mem(b, "list", f1, l1, 0));
	f2 = tu_export_mem(b, "list", &l2);
	assert_same_file(f1, l1, f2, l2);
	tu_ok(shg_root_open(b, "list", &r));
	tu_ok(shg_read_lock(b));
	for (n = top_node(b, r); !shg_off_is_null(n); depth++) {
		tu_ok(shg_get_u64(b, n, 0, &v));
		assert_int_equal(v, DEEP_N - 1 - depth);
		tu_ok(shg_get_node(b, n, 1, &n));
	}
	shg_read_unlock(b);
	shg_root_close(r);
	assert_int_equal(depth, DEEP_N);
	free(f1);
	free(f2);
	tu_destroy(a, n1);
	tu_destroy(b, n2);
}

/* ---- refused imports leave everything unchanged --------------------------- */

/* Import must fail with @want, and @seg must be as it was. */
static void refused(struct shg_seg *seg, const void *f, size_t l, int want,
		    uint64_t base)
{
	struct shg_root *r;
	int err = shg_import_mem(seg, "target", f, l, 0);

	if (err != want)
		fail_msg("import: %d (%s), want %d (%s)", err,
			 shg_strerror(err), want, shg_strerror(want));
	assert_int_equal(shg_root_open(seg, "target", &r), -ENOENT);
	assert_int_equal(used_bytes(seg), base);
}

static void test_snapshot_type_conflict_and_missing_root(void **state)
{
	char n1[64], n2[64];
	struct shg_seg *a = tu_create(n1, 0), *b = tu_create(n2, 0);
	struct shg_root *other;
	uint64_t base;
	uint8_t *f;
	size_t l;

	(void)state;
	build_sample(a);
	f = tu_export_mem(a, "g", &l);
	/* "other" is referenced but missing in b. */
	base = used_bytes(b);
	refused(b, f, l, -ENOENT, base);
	/* "box" exists in b with a field of another kind (appending fields
	 * would be a new version of it, not a conflict). */
	tu_ok(shg_root_create(b, "other", &other));
	shg_root_close(other);
	tu_ok(shg_type_register(b, "box", box_clash, 3, &(uint32_t){ 0 }));
	base = used_bytes(b);
	refused(b, f, l, -EEXIST, base);
	free(f);
	tu_destroy(a, n1);
	tu_destroy(b, n2);
}

/* The build runs out of segment capacity: aborted, nothing leaks. */
static void test_snapshot_capacity_abort_no_leak(void **state)
{
	char n1[64], n2[64];
	struct shg_seg *a = tu_create(n1, 0), *b = tu_create(n2, 4u << 20);
	uint64_t base;
	uint8_t *f;
	size_t l;
	int err;

	(void)state;
	make_map_root(a, "m", 200000);
	f = tu_export_mem(a, "m", &l);
	assert_true(l < shg_seg_capacity(b)); /* passes the size check */
	/* The type table is created by the first transaction in a segment
	 * (segment infrastructure, not content): create it before taking
	 * the baseline. */
	assert_int_equal(shg_type_find(b, "none", &(uint32_t){ 0 }), -ENOENT);
	base = used_bytes(b);
	err = shg_import_mem(b, "target", f, l, 0);
	assert_true(err == SHG_ECAPACITY || err == -ENOSPC ||
		    err == SHG_EBUDGET);
	refused(b, f, l, err, base);
	/* Larger than the capacity: refused before parsing. */
	free(f);
	l = shg_seg_capacity(b) + 1;
	f = calloc(1, l);
	assert_non_null(f);
	refused(b, f, l, -EFBIG, base);
	free(f);
	tu_destroy(a, n1);
	tu_destroy(b, n2);
}

/* ---- damaged files ---------------------------------------------------------- */

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

/* Bitwise CRC32C, independent of the library's table version. */
static uint32_t crc32c_ref(const uint8_t *p, size_t n)
{
	uint32_t c = 0xffffffffu;
	int k;

	while (n--) {
		c ^= *p++;
		for (k = 0; k < 8; k++)
			c = (c >> 1) ^ (0x82f63b78u & (0u - (c & 1u)));
	}
	return ~c;
}

static void test_snapshot_crc_reference(void **state)
{
	(void)state;
	/* The CRC32C check value (RFC 3720 / iSCSI). */
	assert_int_equal(crc32c_ref((const uint8_t *)"123456789", 9),
			 0xe3069283u);
	assert_int_equal(shg__crc32c("123456789", 9), 0xe3069283u);
}

static void test_snapshot_damaged_files(void **state)
{
	char n1[64], n2[64];
	struct shg_seg *a = tu_create(n1, 0), *b = tu_create(n2, 0);
	struct shg_root *other;
	uint64_t base;
	uint8_t *f, *g;
	size_t l, i;
	int err;

	(void)state;
	build_sample(a);
	f = tu_export_mem(a, "g", &l);
	tu_ok(shg_root_create(b, "other", &other));
	shg_root_close(other);
	base = used_bytes(b);
	g = malloc(l + 1);
	assert_non_null(g);

	refused(b, f, 0, SHG_ETOOSMALL, base);
	refused(b, f, 7, SHG_ETOOSMALL, base);
	refused(b, f, 20, SHG_ETOOSMALL, base);
	refused(b, f, l - 1, SHG_ETRUNC, base);
	refused(b, f, l / 2, SHG_ETRUNC, base);
	memcpy(g, f, l);
	g[l] = 0;
	refused(b, g, l + 1, SHG_ECORRUPT, base); /* trailing byte */
	memcpy(g, f, l);
	memcpy(g, "NOTASNAP", 8);
	refused(b, g, l, SHG_EMAGIC, base);
	memcpy(g, f, l);
	put32(g + 8, 2); /* format version 2, header checksum fixed */
	put32(g + 28, crc32c_ref(g, 28));
	refused(b, g, l, SHG_EVERSION, base);
	memcpy(g, f, l);
	g[17] ^= 1; /* total length, header checksum now wrong */
	refused(b, g, l, -EBADMSG, base);
	memcpy(g, f, l);
	g[l / 2] ^= 0x40; /* payload */
	refused(b, g, l, -EBADMSG, base);
	/* Every byte, one bit each: always refused, never a crash. */
	for (i = 0; i < l; i++) {
		memcpy(g, f, l);
		g[i] ^= (uint8_t)(1u << (i % 8));
		err = shg_import_mem(b, "target", g, l, 0);
		if (err != -EBADMSG && err != SHG_EMAGIC &&
		    err != SHG_EVERSION && err != SHG_ETRUNC &&
		    err != SHG_ECORRUPT)
			fail_msg("flip at %zu: %d (%s)", i, err,
				 shg_strerror(err));
	}
	assert_int_equal(used_bytes(b), base);
	/* The intact file still imports. */
	tu_ok(shg_import_mem(b, "target", f, l, 0));
	free(g);
	free(f);
	tu_destroy(a, n1);
	tu_destroy(b, n2);
}

/* ---- forged files (checksums right, content hostile) ---------------------- */

struct pb {
	uint8_t b[2048];
	size_t n;
};

static void pb_le(struct pb *p, uint64_t v, unsigned bytes)
{
	unsigned i;

	assert_true(p->n + bytes <= sizeof(p->b));
	for (i = 0; i < bytes; i++)
		p->b[p->n++] = (uint8_t)(v >> (8 * i));
}

static void pb_str(struct pb *p, const char *s)
{
	size_t len = strlen(s);

	pb_le(p, len, 1);
	assert_true(p->n + len <= sizeof(p->b));
	memcpy(p->b + p->n, s, len);
	p->n += len;
}

static void sec(struct pb *out, const char *tag, uint32_t count,
		const struct pb *payload)
{
	size_t start = out->n;

	assert_true(out->n + 20 + payload->n <= sizeof(out->b));
	memcpy(out->b + out->n, tag, 4);
	out->n += 4;
	pb_le(out, count, 4);
	pb_le(out, payload->n, 8);
	memcpy(out->b + out->n, payload->b, payload->n);
	out->n += payload->n;
	pb_le(out, crc32c_ref(out->b + start, out->n - start), 4);
}

/* A file from its parts, following docs/SNAPSHOT.md. */
static size_t forge(struct pb *out, const struct pb *types, uint32_t nt,
		    const struct pb *roots, uint32_t nr, const struct pb *nodes,
		    uint32_t nn, uint32_t top)
{
	struct pb graph = { .n = 0 };

	pb_le(&graph, top, 4);
	pb_le(&graph, 0, 4);
	out->n = 0;
	memcpy(out->b, "SHGSNAP", 8);
	out->n = 8;
	pb_le(out, 1, 4); /* format version */
	pb_le(out, 0, 4); /* flags */
	pb_le(out, 32 + 4 * 20 + types->n + roots->n + nodes->n + 8 + 8, 8);
	pb_le(out, 4, 4); /* sections */
	pb_le(out, crc32c_ref(out->b, 28), 4);
	sec(out, "TYPE", nt, types);
	sec(out, "ROOT", nr, roots);
	sec(out, "NODE", nn, nodes);
	sec(out, "GRPH", 1, &graph);
	memcpy(out->b + out->n, "SEND", 4);
	out->n += 4;
	pb_le(out, crc32c_ref(out->b, out->n), 4);
	return out->n;
}

/* Type "pt" {v: U64, nx: NODE}. */
static void pt_type(struct pb *t)
{
	pb_str(t, "pt");
	pb_le(t, 2, 1);
	pb_le(t, SHG_KIND_U64, 1);
	pb_str(t, "v");
	pb_le(t, SHG_KIND_NODE, 1);
	pb_str(t, "nx");
}

/* A "pt" record: value @v, next = reference @nx (index + 1, 0 = null). */
static void pt_rec(struct pb *n, uint64_t v, uint32_t nx)
{
	pb_le(n, 1, 1); /* user node */
	pb_le(n, 0, 4); /* type 0 */
	pb_le(n, v, 8);
	pb_le(n, nx, 4);
}

struct forged {
	struct pb types, roots, nodes, file;
	uint32_t nt, nr, nn, top;
};

/* Start from a valid two-node list: pt{1} <- pt{2} (the root). */
static void forged_init(struct forged *f)
{
	memset(f, 0, sizeof(*f));
	pt_type(&f->types);
	f->nt = 1;
	pt_rec(&f->nodes, 1, 0);
	pt_rec(&f->nodes, 2, 1);
	f->nn = 2;
	f->top = 2;
}

static void forged_try(struct shg_seg *seg, struct forged *f, int want,
		       uint64_t base)
{
	size_t l = forge(&f->file, &f->types, f->nt, &f->roots, f->nr,
			 &f->nodes, f->nn, f->top);

	refused(seg, f->file.b, l, want, base);
}

/* A map record header: kinds, flags, count. */
static void map_hdr(struct pb *n, unsigned kk, unsigned vk, uint32_t count)
{
	pb_le(n, 2, 1);
	pb_le(n, kk, 1);
	pb_le(n, vk, 1);
	pb_le(n, 0, 1);
	pb_le(n, 0, 1);
	pb_le(n, count, 4);
}

/* Forged files go to a segment holding one valid import ("control"). */
struct fx {
	char name[64];
	struct shg_seg *seg;
	uint64_t base; /* bytes in use before each refused import */
};

static int fx_setup(void **state)
{
	struct fx *x = calloc(1, sizeof(*x));
	struct forged f;
	size_t l;

	assert_non_null(x);
	x->seg = tu_create(x->name, 0);
	forged_init(&f);
	l = forge(&f.file, &f.types, f.nt, &f.roots, f.nr, &f.nodes, f.nn,
		  f.top);
	tu_ok(shg_import_mem(x->seg, "control", f.file.b, l, 0));
	x->base = used_bytes(x->seg);
	*state = x;
	return 0;
}

static int fx_teardown(void **state)
{
	struct fx *x = *state;

	tu_destroy(x->seg, x->name);
	free(x);
	return 0;
}

/* Positive control: the test encoder's valid file imported whole. */
static void test_snapshot_forged_control(void **state)
{
	struct fx *x = *state;
	struct shg_off top, nx;
	struct shg_root *r;
	uint64_t v;

	tu_ok(shg_root_open(x->seg, "control", &r));
	tu_ok(shg_read_lock(x->seg));
	top = top_node(x->seg, r);
	tu_ok(shg_get_u64(x->seg, top, 0, &v));
	assert_int_equal(v, 2);
	tu_ok(shg_get_node(x->seg, top, 1, &nx));
	tu_ok(shg_get_u64(x->seg, nx, 0, &v));
	assert_int_equal(v, 1);
	shg_read_unlock(x->seg);
	shg_root_close(r);
}

/* Node references: forward, self, out of range, unreachable. */
static void test_snapshot_forged_references(void **state)
{
	struct fx *x = *state;
	struct forged f;

	/* A reference to a later node (a cycle would need one). */
	forged_init(&f);
	f.nodes.n = 0;
	pt_rec(&f.nodes, 1, 2);
	pt_rec(&f.nodes, 2, 1);
	forged_try(x->seg, &f, SHG_ECORRUPT, x->base);
	/* A node referencing itself. */
	forged_init(&f);
	f.nodes.n = 0;
	pt_rec(&f.nodes, 1, 1);
	f.nn = 1;
	f.top = 1;
	forged_try(x->seg, &f, SHG_ECORRUPT, x->base);
	/* Node index out of range. */
	forged_init(&f);
	f.nodes.n = 0;
	pt_rec(&f.nodes, 1, 0);
	pt_rec(&f.nodes, 2, 99);
	forged_try(x->seg, &f, SHG_ECORRUPT, x->base);
	/* Graph root out of range, or none with nodes present. */
	forged_init(&f);
	f.top = 3;
	forged_try(x->seg, &f, SHG_ECORRUPT, x->base);
	forged_init(&f);
	f.top = 0;
	forged_try(x->seg, &f, SHG_ECORRUPT, x->base);
	/* An unreachable node. */
	forged_init(&f);
	f.nodes.n = 0;
	pt_rec(&f.nodes, 1, 0);
	pt_rec(&f.nodes, 2, 0);
	forged_try(x->seg, &f, SHG_ECORRUPT, x->base);
}

/*
 * A file whose one type, @name, has a first field of kind @k1 named @n1
 * and a NODE field named @n2: refused as corrupt, nothing changed.
 */
static void forged_type(struct fx *x, const char *name, unsigned k1,
			const char *n1, const char *n2)
{
	struct forged f;

	forged_init(&f);
	f.types.n = 0;
	pb_str(&f.types, name);
	pb_le(&f.types, 2, 1);
	pb_le(&f.types, k1, 1);
	pb_str(&f.types, n1);
	pb_le(&f.types, SHG_KIND_NODE, 1);
	pb_str(&f.types, n2);
	forged_try(x->seg, &f, SHG_ECORRUPT, x->base);
}

/* Types and record kinds. */
static void test_snapshot_forged_types(void **state)
{
	struct fx *x = *state;
	struct forged f;

	/* Type index out of range; unknown record kind. */
	forged_init(&f);
	f.nodes.n = 0;
	pb_le(&f.nodes, 1, 1);
	pb_le(&f.nodes, 7, 4);
	pb_le(&f.nodes, 0, 8);
	pb_le(&f.nodes, 0, 4);
	f.nn = 1;
	f.top = 1;
	forged_try(x->seg, &f, SHG_ECORRUPT, x->base);
	forged_init(&f);
	f.nodes.n = 0;
	pb_le(&f.nodes, 9, 1);
	f.nn = 1;
	f.top = 1;
	forged_try(x->seg, &f, SHG_ECORRUPT, x->base);
	/* A field of unknown kind; a type name with a control byte; two
	 * fields of one name; a type listed but never used. */
	forged_type(x, "pt", 9, "v", "nx");
	forged_type(x, "p\x01", SHG_KIND_U64, "v", "nx");
	forged_type(x, "pt", SHG_KIND_U64, "v", "v");
	forged_init(&f);
	pb_str(&f.types, "spare");
	pb_le(&f.types, 0, 1);
	f.nt = 2;
	forged_try(x->seg, &f, SHG_ECORRUPT, x->base);
}

/* Counts far beyond the bytes that follow. */
static void test_snapshot_forged_counts(void **state)
{
	struct fx *x = *state;
	struct forged f;

	/* Huge counts: types, nodes, map entries, vector elements. */
	forged_init(&f);
	f.nt = 0xffffffffu;
	forged_try(x->seg, &f, SHG_ECORRUPT, x->base);
	forged_init(&f);
	f.nn = 0xfffffff0u;
	forged_try(x->seg, &f, SHG_ECORRUPT, x->base);
	forged_init(&f);
	f.types.n = 0;
	f.nt = 0;
	f.nodes.n = 0;
	map_hdr(&f.nodes, SHG_KIND_U64, SHG_KIND_U64, 0xffffffffu);
	f.nn = 1;
	f.top = 1;
	forged_try(x->seg, &f, SHG_ECORRUPT, x->base);
	forged_init(&f);
	f.types.n = 0;
	f.nt = 0;
	f.nodes.n = 0;
	pb_le(&f.nodes, 3, 1); /* vector */
	pb_le(&f.nodes, SHG_KIND_U64, 1);
	pb_le(&f.nodes, 0, 3);
	pb_le(&f.nodes, UINT64_MAX / 2, 8);
	f.nn = 1;
	f.top = 1;
	forged_try(x->seg, &f, SHG_ECORRUPT, x->base);
}

/* Map keys, bytes lengths, root references, section order. */
static void test_snapshot_forged_keys_roots_sections(void **state)
{
	struct fx *x = *state;
	struct forged f;
	size_t l;

	/* Map keys out of order, duplicated; bytes longer than the file. */
	forged_init(&f);
	f.types.n = 0;
	f.nt = 0;
	f.nodes.n = 0;
	map_hdr(&f.nodes, SHG_KIND_U64, SHG_KIND_U64, 2);
	pb_le(&f.nodes, 2, 8);
	pb_le(&f.nodes, 0, 8);
	pb_le(&f.nodes, 1, 8);
	pb_le(&f.nodes, 0, 8);
	f.nn = 1;
	f.top = 1;
	forged_try(x->seg, &f, SHG_ECORRUPT, x->base);
	f.nodes.n = 0;
	map_hdr(&f.nodes, SHG_KIND_U64, SHG_KIND_U64, 2);
	pb_le(&f.nodes, 1, 8);
	pb_le(&f.nodes, 0, 8);
	pb_le(&f.nodes, 1, 8);
	pb_le(&f.nodes, 0, 8);
	forged_try(x->seg, &f, SHG_ECORRUPT, x->base);
	f.nodes.n = 0;
	map_hdr(&f.nodes, SHG_KIND_BYTES, SHG_KIND_U64, 1);
	pb_le(&f.nodes, 0x7fffffff, 4);
	pb_le(&f.nodes, 0, 8);
	forged_try(x->seg, &f, SHG_ECORRUPT, x->base);
	/* Root references: index out of range, null in a map, unused. */
	f.nodes.n = 0;
	map_hdr(&f.nodes, SHG_KIND_U64, SHG_KIND_ROOT, 1);
	pb_le(&f.nodes, 1, 8);
	pb_le(&f.nodes, 5, 4);
	forged_try(x->seg, &f, SHG_ECORRUPT, x->base);
	f.nodes.n = 0;
	map_hdr(&f.nodes, SHG_KIND_U64, SHG_KIND_ROOT, 1);
	pb_le(&f.nodes, 1, 8);
	pb_le(&f.nodes, 0, 4);
	forged_try(x->seg, &f, SHG_ECORRUPT, x->base);
	forged_init(&f);
	pb_le(&f.roots, 0, 1);
	pb_str(&f.roots, "control");
	f.nr = 1;
	forged_try(x->seg, &f, SHG_ECORRUPT, x->base);
	/* Sections out of order (checksums right). */
	forged_init(&f);
	l = forge(&f.file, &f.types, f.nt, &f.roots, f.nr, &f.nodes, f.nn,
		  f.top);
	memcpy(f.file.b + 32, "ROOT", 4);
	put32(f.file.b + 32 + 16 + f.types.n,
	      crc32c_ref(f.file.b + 32, 16 + f.types.n));
	put32(f.file.b + l - 4, crc32c_ref(f.file.b, l - 4));
	refused(x->seg, f.file.b, l, SHG_ECORRUPT, x->base);
	assert_int_equal(le32(f.file.b + l - 8), le32((const uint8_t *)"SEND"));
}

/* ---- consistency while another process commits ------------------------------ */

struct committer {
	const char *name;
	int stop[2]; /* pipe: the parent closes [1] when done */
};

#define NGEN_KEYS 64

static int gen_fill(struct shg_txn *t, void *arg)
{
	uint64_t gen = *(uint64_t *)arg, i;
	struct shg_val v = { .kind = SHG_KIND_U64, .u64 = gen };
	int err = 0;

	if (gen == 1)
		err = shg_txn_map_new(t, SHG_REF_ROOT, SHG_KIND_U64,
				      SHG_KIND_U64);
	for (i = 0; i < NGEN_KEYS && !err; i++)
		err = shg_txn_map_put_u64(t, SHG_REF_ROOT, i, &v);
	return err;
}

static int committer_main(void *arg)
{
	struct committer *c = arg;
	struct shg_opts o = { .size = sizeof(o) };
	struct shg_root *r;
	struct shg_seg *seg;
	uint64_t gen;

	char ch;

	close(c->stop[1]);
	if (fcntl(c->stop[0], F_SETFL, O_NONBLOCK) ||
	    shg_seg_open(c->name, &o, &seg) || shg_root_open(seg, "gen", &r))
		return 1;
	/* Commit until the parent closes the pipe (read() returns 0). */
	for (gen = 2; read(c->stop[0], &ch, 1) < 0 && errno == EAGAIN; gen++)
		if (shg_update(r, gen_fill, &gen, 0))
			return 2;
	shg_root_close(r);
	shg_seg_close(seg);
	return 0;
}

/* Generation of the version under root @name of @seg (all values equal). */
static uint64_t gen_of(struct shg_seg *seg, const char *name)
{
	struct shg_map_iter it;
	struct shg_root *r;
	struct shg_val k, v;
	uint64_t first = 0;
	int n;

	tu_ok(shg_root_open(seg, name, &r));
	tu_ok(shg_read_lock(seg));
	tu_ok(shg_map_iter_init(seg, top_node(seg, r), &it));
	for (n = 0; shg_map_iter_next(&it, &k, &v) == 0; n++) {
		if (!n)
			first = v.u64;
		assert_int_equal(v.u64, first); /* one version, whole */
	}
	assert_int_equal(n, NGEN_KEYS);
	shg_read_unlock(seg);
	shg_root_close(r);
	return first;
}

static void test_snapshot_export_consistent_under_commits(void **state)
{
	char n1[64];
	struct shg_seg *seg = tu_create(n1, 0);
	struct committer c = { .name = n1 };
	struct shg_root *r;
	uint64_t gen = 1, last = 0, distinct = 0, seen = 1;
	uint8_t *f;
	size_t l;
	pid_t pid;
	int i, k;

	(void)state;
	tu_ok(shg_root_create(seg, "gen", &r));
	tu_ok(shg_update(r, gen_fill, &gen, 0));
	assert_int_equal(pipe(c.stop), 0);
	pid = tu_fork(committer_main, &c);
	close(c.stop[0]);
	/*
	 * Export while the other process commits: before each export, wait
	 * until it has published past what the previous export could have
	 * seen, so each export races with live commits and captures a newer
	 * version (deterministic; the deadline only guards against a hang).
	 */
	for (i = 0; i < 30; i++) {
		for (k = 0; shg_root_generation(r) <= seen && k < 100000; k++)
			usleep(100);
		assert_true(shg_root_generation(r) > seen);
		f = tu_export_mem(seg, "gen", &l);
		seen = shg_root_generation(r);
		tu_ok(shg_import_mem(seg, "check", f, l, SHG_IMPORT_REPLACE));
		free(f);
		gen = gen_of(seg, "check");
		distinct += gen != last;
		last = gen;
	}
	close(c.stop[1]);
	assert_int_equal(tu_wait(pid), 0);
	assert_int_equal(distinct, 30); /* a newer version each time */
	shg_root_close(r);
	assert_int_equal(shg_check(seg, problem_print, NULL, NULL), 0);
	tu_destroy(seg, n1);
}

/* ---- shg_version_pinned ------------------------------------------------------ */

static void test_snapshot_version_pinned(void **state)
{
	char n1[64];
	struct shg_seg *seg = tu_create(n1, 0);
	struct shg_version_info vi;
	struct shg_off found;
	struct shg_root *r;
	struct shg_pin *pin;
	uint64_t gen = 1;

	(void)state;
	tu_ok(shg_root_create(seg, "gen", &r));
	tu_ok(shg_update(r, gen_fill, &gen, 0));
	tu_ok(shg_pin_current(r, &pin));
	tu_ok(shg_version_info(seg, shg_pin_version(pin), &vi));
	gen = 2;
	tu_ok(shg_update(r, gen_fill, &gen, 0));
	tu_ok(shg_version_pinned(r, vi.seq, &found));
	assert_true(found.v == shg_pin_version(pin).v);
	assert_int_equal(shg_version_pinned(r, vi.seq + 100, &found), -ENOENT);
	shg_unpin(pin);
	assert_int_equal(shg_version_pinned(r, vi.seq, &found), -ENOENT);
	shg_root_close(r);
	tu_destroy(seg, n1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_snapshot_crc_reference),
		cmocka_unit_test(test_snapshot_roundtrip_all_kinds),
		cmocka_unit_test(test_snapshot_roundtrip_fd_and_empty),
		cmocka_unit_test(test_snapshot_deep_list),
		cmocka_unit_test(test_snapshot_replace),
		cmocka_unit_test(test_snapshot_type_conflict_and_missing_root),
		cmocka_unit_test(test_snapshot_capacity_abort_no_leak),
		cmocka_unit_test(test_snapshot_damaged_files),
		cmocka_unit_test_setup_teardown(test_snapshot_forged_control,
						fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_snapshot_forged_references,
						fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_snapshot_forged_types,
						fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_snapshot_forged_counts,
						fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(
			test_snapshot_forged_keys_roots_sections, fx_setup,
			fx_teardown),
		cmocka_unit_test(test_snapshot_export_consistent_under_commits),
		cmocka_unit_test(test_snapshot_version_pinned),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
