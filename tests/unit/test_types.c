/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the type table (lib/types.c), node validation and typed
 * field access (lib/node.c) and the generic traversal (lib/walk.c). Nodes
 * are built by hand in freshly allocated blocks (header and fields written
 * directly), so most tests depend only on the foundation layer; one walks
 * maps and vectors made through the txn API.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "graph_internal.h"
#include "testutil.h"

/* ---- helpers ------------------------------------------------------------ */

static struct shg_seg *g_seg;
static char g_name[128];

static int setup(void **state)
{
	(void)state;
	g_seg = tu_create(g_name, 0);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	tu_destroy(g_seg, g_name);
	g_seg = NULL;
	return 0;
}

static struct shg_type_table *table_of(struct shg_seg *seg)
{
	uint64_t off = atomic_load(&seg->hdr->ext[SHG_EXT_TYPES]);

	assert_true(off != 0);
	return shg_ptr(seg, (struct shg_off){ off },
		       sizeof(struct shg_type_table));
}

/* A zeroed block of @size bytes with a node header of @type. */
static uint64_t mk_node(struct shg_seg *seg, uint32_t type, size_t size)
{
	struct shg_node *n;
	struct shg_off o;

	tu_ok(shg_alloc(seg, size, &o));
	n = shg_ptr(seg, o, size);
	assert_non_null(n);
	memset(n, 0, size);
	n->type = type;
	n->graph = 1;
	n->birth = 1;
	return o.v;
}

static void set_field(struct shg_seg *seg, uint64_t node, unsigned i,
		      uint64_t v)
{
	uint64_t *slot = shg_ptr(seg, (struct shg_off){ node },
				 shg__user_node_size(i + 1));

	assert_non_null(slot);
	slot[2 + i] = v;
}

static uint64_t mk_bytes(struct shg_seg *seg, const char *s)
{
	size_t len = strlen(s);
	uint64_t off = mk_node(seg, SHG_TYPE_BYTES, 24 + len);
	struct shg_bytes *b = shg_ptr(seg, (struct shg_off){ off }, 24 + len);

	b->len = (uint32_t)len;
	memcpy(b->data, s, len);
	return off;
}

static uint32_t reg(struct shg_seg *seg, const char *name,
		    const struct shg_field_def *f, unsigned nf)
{
	uint32_t id = 0;

	tu_ok(shg_type_register(seg, name, f, nf, &id));
	return id;
}

static unsigned types_problems(struct shg_seg *seg)
{
	struct shg_check_report rep;

	memset(&rep, 0, sizeof(rep));
	tu_ok(shg__types_check(seg, NULL, NULL, &rep));
	return rep.problems;
}

struct blocks {
	struct shg_seg *seg;
	unsigned n;
	bool all_blocks;
};

static void block_fn(void *arg, uint64_t off)
{
	struct blocks *b = arg;

	b->n++;
	if (!shg_block_size(b->seg, (struct shg_off){ off }))
		b->all_blocks = false;
}

/* ---- type table ----------------------------------------------------------- */

static void test_types_builtins(void **state)
{
	static const char *const names[] = { NULL,	     "shg.version",
					     "shg.bytes",    "shg.map",
					     "shg.map_coll", "shg.vec",
					     "shg.vec_node" };
	struct shg_type_info ti;
	uint32_t id, i;

	(void)state;
	/* Fresh segment: no table yet; built-ins are known anyway (their
	 * layout is code), user ids are not. */
	assert_int_equal(atomic_load(&g_seg->hdr->ext[SHG_EXT_TYPES]), 0);
	assert_non_null(shg__type_get(g_seg, SHG_TYPE_BYTES));
	assert_null(shg__type_get(g_seg, SHG_TYPE_FIRST_USER));
	for (i = 1; i <= 6; i++) {
		tu_ok(shg_type_find(g_seg, names[i], &id));
		assert_int_equal(id, i);
		tu_ok(shg_type_info(g_seg, i, &ti));
		assert_string_equal(ti.name, names[i]);
		assert_int_equal(ti.id, i);
		assert_int_equal(ti.nfields, 0);
		assert_non_null(shg__type_get(g_seg, i));
		assert_true(shg__type_get(g_seg, i)->flags & SHG_TYPEF_BUILTIN);
	}
	/* 0 and the reserved ids 7..15 are not types; users start at 16. */
	assert_null(shg__type_get(g_seg, 0));
	for (i = 7; i < SHG_TYPE_FIRST_USER; i++) {
		assert_null(shg__type_get(g_seg, i));
		assert_int_equal(shg_type_info(g_seg, i, &ti), -ENOENT);
	}
	assert_int_equal(shg_type_info(g_seg, 16, &ti), -ENOENT);
	assert_int_equal(shg_type_find(g_seg, "nope", &id), -ENOENT);
	assert_int_equal(atomic_load(&table_of(g_seg)->count),
			 SHG_TYPE_FIRST_USER);
	/* Idempotent init. */
	tu_ok(shg__types_init(g_seg));
	assert_int_equal(reg(g_seg, "first", NULL, 0), SHG_TYPE_FIRST_USER);
	assert_int_equal(types_problems(g_seg), 0);
	{
		struct blocks bl = { g_seg, 0, true };

		shg__types_blocks(g_seg, block_fn, &bl);
		assert_int_equal(bl.n, 1 + 6 + 1); /* table, built-ins, one */
		assert_true(bl.all_blocks);
	}
}

static void test_types_register_roundtrip(void **state)
{
	const struct shg_field_def pt[] = {
		{ "x", SHG_KIND_U64 },	   { "y", SHG_KIND_I64 },
		{ "z", SHG_KIND_F64 },	   { "label", SHG_KIND_BYTES },
		{ "next", SHG_KIND_NODE }, { "other", SHG_KIND_ROOT },
	};
	const struct shg_field_def pt_kind[] = {
		{ "x", SHG_KIND_U64 },	   { "y", SHG_KIND_U64 },
		{ "z", SHG_KIND_F64 },	   { "label", SHG_KIND_BYTES },
		{ "next", SHG_KIND_NODE }, { "other", SHG_KIND_ROOT },
	};
	const struct shg_field_def pt_name[] = {
		{ "x", SHG_KIND_U64 },	  { "y", SHG_KIND_I64 },
		{ "z", SHG_KIND_F64 },	  { "label", SHG_KIND_BYTES },
		{ "nxt", SHG_KIND_NODE }, { "other", SHG_KIND_ROOT },
	};
	char tname[SHG_TYPE_NAME_MAX + 1], fname[SHG_FIELD_NAME_MAX + 1];
	struct shg_field_def longf = { fname, SHG_KIND_U64 };
	struct shg_type_info ti;
	uint32_t id, id2, id3, i;

	(void)state;
	id = reg(g_seg, "point", pt, 6);
	assert_int_equal(id, SHG_TYPE_FIRST_USER);
	assert_int_equal(reg(g_seg, "point", pt, 6), id);
	assert_int_equal(shg_type_register(g_seg, "point", pt, 5, &id2),
			 -EEXIST);
	assert_int_equal(shg_type_register(g_seg, "point", pt_kind, 6, &id2),
			 -EEXIST);
	assert_int_equal(shg_type_register(g_seg, "point", pt_name, 6, &id2),
			 -EEXIST);
	assert_int_equal(shg_type_register(g_seg, "point", NULL, 0, &id2),
			 -EEXIST);
	/* Built-in names are taken. */
	assert_int_equal(shg_type_register(g_seg, "shg.map", NULL, 0, &id2),
			 -EEXIST);
	id2 = reg(g_seg, "empty", NULL, 0);
	assert_int_equal(id2, id + 1);
	assert_int_equal(reg(g_seg, "empty", NULL, 0), id2);

	/* Longest names are accepted. */
	memset(tname, 'T', SHG_TYPE_NAME_MAX);
	tname[SHG_TYPE_NAME_MAX] = 0;
	memset(fname, 'f', SHG_FIELD_NAME_MAX);
	fname[SHG_FIELD_NAME_MAX] = 0;
	id3 = reg(g_seg, tname, &longf, 1);
	assert_int_equal(id3, id2 + 1);
	tu_ok(shg_type_find(g_seg, tname, &i));
	assert_int_equal(i, id3);
	tu_ok(shg_type_info(g_seg, id3, &ti));
	assert_string_equal(ti.name, tname);
	assert_string_equal(ti.field[0].name, fname);

	tu_ok(shg_type_find(g_seg, "point", &i));
	assert_int_equal(i, id);
	tu_ok(shg_type_info(g_seg, id, &ti));
	assert_string_equal(ti.name, "point");
	assert_int_equal(ti.id, id);
	assert_int_equal(ti.nfields, 6);
	for (i = 0; i < 6; i++) {
		assert_string_equal(ti.field[i].name, pt[i].name);
		assert_int_equal(ti.field[i].kind, pt[i].kind);
	}
	/* The info is enough to register the same type again. */
	{
		struct shg_field_def back[6];

		for (i = 0; i < 6; i++) {
			back[i].name = ti.field[i].name;
			back[i].kind = ti.field[i].kind;
		}
		assert_int_equal(reg(g_seg, ti.name, back, ti.nfields), id);
	}
}

static void test_types_register_invalid(void **state)
{
	struct shg_field_def f[SHG_MAX_FIELDS + 1];
	char names[SHG_MAX_FIELDS + 1][8];
	const struct shg_field_def dup[] = { { "a", SHG_KIND_U64 },
					     { "a", SHG_KIND_I64 } };
	const struct shg_field_def k0[] = { { "a", 0 } };
	const struct shg_field_def k7[] = { { "a", 7 } };
	const struct shg_field_def nul[] = { { NULL, SHG_KIND_U64 } };
	const struct shg_field_def emp[] = { { "", SHG_KIND_U64 } };
	const struct shg_field_def ctl[] = { { "a\tb", SHG_KIND_U64 } };
	const struct shg_field_def lng[] = {
		{ "abcdefghijklmnopqrstuvwx", SHG_KIND_U64 } /* 24 bytes */
	};
	uint32_t id, before, i;

	(void)state;
	tu_ok(shg__types_init(g_seg));
	before = atomic_load(&table_of(g_seg)->count);
	for (i = 0; i <= SHG_MAX_FIELDS; i++) {
		snprintf(names[i], sizeof(names[i]), "f%u", i);
		f[i].name = names[i];
		f[i].kind = SHG_KIND_U64;
	}
	assert_int_equal(shg_type_register(g_seg, NULL, NULL, 0, &id), -EINVAL);
	assert_int_equal(shg_type_register(g_seg, "", NULL, 0, &id), -EINVAL);
	assert_int_equal(shg_type_register(g_seg,
					   "0123456789abcdef0123456789abcdef",
					   NULL, 0, &id),
			 -EINVAL); /* 32 bytes */
	assert_int_equal(shg_type_register(g_seg, "bad\nname", NULL, 0, &id),
			 -EINVAL);
	assert_int_equal(shg_type_register(g_seg, "bad\x80", NULL, 0, &id),
			 -EINVAL);
	assert_int_equal(shg_type_register(g_seg, "t", NULL, 0, NULL), -EINVAL);
	assert_int_equal(shg_type_register(NULL, "t", NULL, 0, &id), -EINVAL);
	assert_int_equal(shg_type_register(g_seg, "t", NULL, 1, &id), -EINVAL);
	assert_int_equal(shg_type_register(g_seg, "t", dup, 2, &id), -EINVAL);
	assert_int_equal(shg_type_register(g_seg, "t", k0, 1, &id), -EINVAL);
	assert_int_equal(shg_type_register(g_seg, "t", k7, 1, &id), -EINVAL);
	assert_int_equal(shg_type_register(g_seg, "t", nul, 1, &id), -EINVAL);
	assert_int_equal(shg_type_register(g_seg, "t", emp, 1, &id), -EINVAL);
	assert_int_equal(shg_type_register(g_seg, "t", ctl, 1, &id), -EINVAL);
	assert_int_equal(shg_type_register(g_seg, "t", lng, 1, &id), -EINVAL);
	assert_int_equal(shg_type_register(g_seg, "t", f, SHG_MAX_FIELDS + 1,
					   &id),
			 -EINVAL);
	assert_int_equal(shg_type_find(g_seg, "", &id), -EINVAL);
	assert_int_equal(shg_type_find(g_seg, NULL, &id), -EINVAL);
	/* Nothing was registered by the failures. */
	assert_int_equal(atomic_load(&table_of(g_seg)->count), before);
	/* SHG_MAX_FIELDS itself is fine. */
	id = reg(g_seg, "wide", f, SHG_MAX_FIELDS);
	assert_int_equal(shg__type_get(g_seg, id)->nfields, SHG_MAX_FIELDS);
}

static void test_types_table_full(void **state)
{
	char name[32];
	uint32_t id, i, n = 0;
	int err = 0;

	(void)state;
	for (i = 0; i < SHG_MAX_TYPES + 1; i++) {
		snprintf(name, sizeof(name), "t%u", i);
		err = shg_type_register(g_seg, name, NULL, 0, &id);
		if (err)
			break;
		assert_int_equal(id, SHG_TYPE_FIRST_USER + i);
		n++;
	}
	assert_int_equal(err, SHG_ESLOTS);
	assert_int_equal(n, SHG_MAX_TYPES - SHG_TYPE_FIRST_USER);
	/* Existing types are still found and re-registered. */
	assert_int_equal(reg(g_seg, "t0", NULL, 0), SHG_TYPE_FIRST_USER);
	tu_ok(shg_type_find(g_seg, "t1000", &id));
	assert_int_equal(id, SHG_TYPE_FIRST_USER + 1000);
}

/* ---- concurrent registration across processes ---------------------------- */

#define CONC_CHILDREN 4
#define CONC_ROUNDS 3

static const struct shg_field_def conc_fields[] = {
	{ "key", SHG_KIND_U64 },
	{ "val", SHG_KIND_BYTES },
	{ "next", SHG_KIND_NODE },
};

struct conc_arg {
	const char *seg_name;
	int go[2]; /* children block reading until the parent closes */
	unsigned idx;
};

static int conc_child(void *arg)
{
	struct conc_arg *ca = arg;
	struct shg_seg *seg = NULL;
	char own[32], c;
	uint32_t id, own_id, id2;

	close(ca->go[1]);
	if (shg_seg_open(ca->seg_name, NULL, &seg))
		return 250;
	if (read(ca->go[0], &c, 1) != 0)
		return 251;
	if (shg_type_register(seg, "shared.t", conc_fields, 3, &id))
		return 252;
	snprintf(own, sizeof(own), "own.%u", ca->idx);
	if (shg_type_register(seg, own, conc_fields, ca->idx % 3 + 1, &own_id))
		return 253;
	if (shg_type_register(seg, "shared.t", conc_fields, 3, &id2) ||
	    id2 != id || own_id == id)
		return 254;
	shg_seg_close(seg);
	return (int)id;
}

static void test_types_register_concurrent(void **state)
{
	struct shg_seg *seg;
	struct conc_arg ca;
	char name[128], own[32];
	pid_t pids[CONC_CHILDREN];
	uint32_t id, ids[CONC_CHILDREN], round, i, j;
	int rc;

	(void)state;
	for (round = 0; round < CONC_ROUNDS; round++) {
		/* A fresh segment each round: the children also race to
		 * create the table itself. */
		seg = tu_create(name, 0);
		ca.seg_name = name;
		assert_int_equal(pipe(ca.go), 0);
		for (i = 0; i < CONC_CHILDREN; i++) {
			ca.idx = i;
			pids[i] = tu_fork(conc_child, &ca);
		}
		close(ca.go[0]);
		close(ca.go[1]);
		for (i = 0; i < CONC_CHILDREN; i++) {
			rc = tu_wait(pids[i]);
			assert_true(rc >= SHG_TYPE_FIRST_USER && rc < 250);
			ids[i] = (uint32_t)rc;
		}
		tu_ok(shg_type_find(seg, "shared.t", &id));
		for (i = 0; i < CONC_CHILDREN; i++)
			assert_int_equal(ids[i], id);
		assert_int_equal(reg(seg, "shared.t", conc_fields, 3), id);
		/* Every child's own type is there, each with its own id. */
		for (i = 0; i < CONC_CHILDREN; i++) {
			snprintf(own, sizeof(own), "own.%u", i);
			tu_ok(shg_type_find(seg, own, &ids[i]));
			assert_int_equal(reg(seg, own, conc_fields, i % 3 + 1),
					 ids[i]);
			assert_true(ids[i] != id);
			for (j = 0; j < i; j++)
				assert_true(ids[j] != ids[i]);
		}
		assert_int_equal(atomic_load(&table_of(seg)->count),
				 SHG_TYPE_FIRST_USER + CONC_CHILDREN + 1);
		assert_int_equal(shg_check(seg, NULL, NULL, NULL), 0);
		assert_int_equal(types_problems(seg), 0);
		tu_destroy(seg, name);
	}
}

/* ---- lock repair ---------------------------------------------------------- */

struct repair_arg {
	const char *seg_name;
	int up[2]; /* child -> parent: "holding the lock now" */
	bool half; /* list a record without bumping count */
};

static int repair_child(void *arg)
{
	struct repair_arg *ra = arg;
	struct shg_type_table *t;
	struct shg_type_rec *r;
	struct shg_seg *seg = NULL;
	struct shg_off o;
	uint32_t n;

	if (shg_seg_open(ra->seg_name, NULL, &seg) || shg__types_init(seg))
		return 10;
	t = shg_ptr(
		seg,
		(struct shg_off){ atomic_load(&seg->hdr->ext[SHG_EXT_TYPES]) },
		sizeof(*t));
	if (!t || shg__lock(seg, &t->lock, NULL))
		return 11;
	/* What a registrant does, up to the crash point. */
	if (shg_alloc(seg, sizeof(*r), &o))
		return 12;
	r = shg_ptr(seg, o, sizeof(*r));
	memset(r, 0, sizeof(*r));
	n = atomic_load(&t->count);
	strcpy(r->name, "half.t");
	r->id = n;
	r->nfields = 1;
	r->kind[0] = SHG_KIND_U64;
	strcpy(r->fname[0], "v");
	if (ra->half)
		atomic_store(&t->rec[n], o.v);
	if (write(ra->up[1], "x", 1) != 1)
		return 13;
	raise(SIGKILL);
	return 14;
}

static void check_table_consistent(struct shg_seg *seg)
{
	struct shg_type_table *t = table_of(seg);
	struct shg_type_info ti;
	uint32_t count = atomic_load(&t->count), id, found;

	assert_true(count >= SHG_TYPE_FIRST_USER && count <= SHG_MAX_TYPES);
	for (id = 1; id < count; id++) {
		if (id > SHG_TYPE_VEC_NODE && id < SHG_TYPE_FIRST_USER)
			continue;
		tu_ok(shg_type_info(seg, id, &ti));
		tu_ok(shg_type_find(seg, ti.name, &found));
		assert_int_equal(found, id);
	}
	for (id = count; id < SHG_MAX_TYPES; id++)
		assert_null(shg__type_get(seg, id));
}

static void repair_case(bool half)
{
	const struct shg_field_def hf[] = { { "v", SHG_KIND_U64 } };
	struct repair_arg ra;
	uint32_t before, id;
	pid_t pid;
	char c;

	tu_ok(shg__types_init(g_seg));
	before = reg(g_seg, half ? "pre.half" : "pre.none", NULL, 0) + 1;
	ra.seg_name = g_name;
	ra.half = half;
	assert_int_equal(pipe(ra.up), 0);
	pid = tu_fork(repair_child, &ra);
	assert_int_equal(read(ra.up[0], &c, 1), 1);
	assert_int_equal(tu_wait(pid), 128 + SIGKILL);
	close(ra.up[0]);
	close(ra.up[1]);
	/* The child died holding the lock; count was not bumped. */
	assert_int_equal(atomic_load(&table_of(g_seg)->count), before);
	if (half) {
		/* Its record was listed: repair counts it, and the same
		 * definition gets that id. */
		id = reg(g_seg, "half.t", hf, 1);
		assert_int_equal(id, before);
		assert_int_equal(reg(g_seg, "after", NULL, 0), before + 1);
	} else {
		id = reg(g_seg, "after", NULL, 0);
		assert_int_equal(id, before);
		assert_int_equal(reg(g_seg, "half.t", hf, 1), before + 1);
	}
	check_table_consistent(g_seg);
	assert_int_equal(types_problems(g_seg), 0);
}

static void test_types_lock_repair_none(void **state)
{
	(void)state;
	repair_case(false);
}

static void test_types_lock_repair_half(void **state)
{
	(void)state;
	repair_case(true);
}

/* Corrupt table words are rejected, never followed. */
static void test_types_corrupt_table(void **state)
{
	struct shg_type_table *t;
	struct shg_type_info ti;
	uint64_t saved, ext;
	uint32_t id, cnt;

	(void)state;
	id = reg(g_seg, "victim", NULL, 0);
	t = table_of(g_seg);
	saved = atomic_load(&t->rec[id]);
	atomic_store(&t->rec[id], 0x7ffffffff8ull);
	assert_null(shg__type_get(g_seg, id));
	assert_int_equal(shg_type_info(g_seg, id, &ti), -ENOENT);
	atomic_store(&t->rec[id], saved + 8); /* misread record: bad id */
	assert_null(shg__type_get(g_seg, id));
	atomic_store(&t->rec[id], saved);
	assert_non_null(shg__type_get(g_seg, id));
	/* A record naming another id is rejected. */
	atomic_store(&t->rec[id], atomic_load(&t->rec[SHG_TYPE_MAP]));
	assert_null(shg__type_get(g_seg, id));
	atomic_store(&t->rec[id], saved);
	/* Absurd count: clamped, never indexes past the table. */
	cnt = atomic_load(&t->count);
	atomic_store(&t->count, 0xffffffffu);
	assert_null(shg__type_get(g_seg, SHG_MAX_TYPES + 5));
	assert_null(shg__type_get(g_seg, SHG_MAX_TYPES - 1));
	assert_non_null(shg__type_get(g_seg, id));
	atomic_store(&t->count, cnt);
	/* The checker sees a duplicate name, a bad field name, a used
	 * reserved id and a record that does not validate. */
	assert_int_equal(types_problems(g_seg), 0);
	{
		struct shg_type_rec *r =
			shg_ptr(g_seg, (struct shg_off){ saved }, sizeof(*r));
		const struct shg_field_def f2[] = { { "p", SHG_KIND_U64 },
						    { "q", SHG_KIND_U64 } };
		uint32_t id2 = reg(g_seg, "twofields", f2, 2);
		struct shg_type_rec *r2 = shg_ptr(
			g_seg, (struct shg_off){ atomic_load(&t->rec[id2]) },
			sizeof(*r2));

		strcpy(r->name, "shg.map");
		assert_int_equal(types_problems(g_seg), 1);
		strcpy(r->name, "victim");
		r2->fname[1][0] = 'p'; /* fields p and p */
		assert_int_equal(types_problems(g_seg), 1);
		r2->fname[1][0] = 'q';
		atomic_store(&t->rec[9], saved);
		assert_int_equal(types_problems(g_seg), 1);
		atomic_store(&t->rec[9], 0);
		atomic_store(&t->rec[id], saved + 8);
		assert_int_equal(types_problems(g_seg), 1);
		atomic_store(&t->rec[id], saved);
		assert_int_equal(types_problems(g_seg), 0);
	}
	/* A bad table offset. */
	ext = atomic_load(&g_seg->hdr->ext[SHG_EXT_TYPES]);
	atomic_store(&g_seg->hdr->ext[SHG_EXT_TYPES], 0x10);
	assert_null(shg__type_get(g_seg, id));
	assert_int_equal(shg_type_find(g_seg, "victim", &id), SHG_ECORRUPT);
	assert_int_equal(types_problems(g_seg), 1);
	atomic_store(&g_seg->hdr->ext[SHG_EXT_TYPES], ext);
	tu_ok(shg_type_find(g_seg, "victim", &id));
}

/* ---- nodes and getters ------------------------------------------------------ */

static const struct shg_field_def all_fields[] = {
	{ "u", SHG_KIND_U64 },	  { "i", SHG_KIND_I64 },
	{ "f", SHG_KIND_F64 },	  { "b", SHG_KIND_BYTES },
	{ "n", SHG_KIND_NODE },	  { "r", SHG_KIND_ROOT },
	{ "b0", SHG_KIND_BYTES }, { "n0", SHG_KIND_NODE },
	{ "r0", SHG_KIND_ROOT },
};
#define ALL_N 9

static void test_types_getters(void **state)
{
	struct shg_off node, other, bad;
	double d = 2.5, fv;
	const void *p;
	uint64_t u, bits;
	int64_t i;
	size_t len;
	struct shg_root *r;
	uint32_t slot, t;
	int err;

	(void)state;
	t = reg(g_seg, "all", all_fields, ALL_N);
	node.v = mk_node(g_seg, t, shg__user_node_size(ALL_N));
	other.v = mk_node(g_seg, t, shg__user_node_size(ALL_N));
	memcpy(&bits, &d, sizeof(bits));
	set_field(g_seg, node.v, 0, 7);
	set_field(g_seg, node.v, 1, (uint64_t)-5);
	set_field(g_seg, node.v, 2, bits);
	set_field(g_seg, node.v, 3, mk_bytes(g_seg, "hello"));
	set_field(g_seg, node.v, 4, other.v);
	tu_ok(shg_root_create(g_seg, "getters", &r));
	set_field(g_seg, node.v, 5,
		  SHG_ROOTREF(shg__root_slot(r), shg__root_incarnation(r)));

	assert_int_equal(shg_node_type(g_seg, node, &err), t);
	assert_int_equal(err, 0);
	tu_ok(shg_get_u64(g_seg, node, 0, &u));
	assert_int_equal(u, 7);
	tu_ok(shg_get_i64(g_seg, node, 1, &i));
	assert_int_equal(i, -5);
	tu_ok(shg_get_f64(g_seg, node, 2, &fv));
	assert_true(fv == 2.5);
	tu_ok(shg_get_bytes(g_seg, node, 3, &p, &len));
	assert_int_equal(len, 5);
	assert_memory_equal(p, "hello", 5);
	tu_ok(shg_get_node(g_seg, node, 4, &other));
	assert_int_equal(other.v, ((uint64_t *)shg_ptr(g_seg, node, 64))[6]);
	tu_ok(shg_get_root(g_seg, node, 5, &slot));
	assert_int_equal(slot, shg__root_slot(r));
	/* a ref to an incarnation that does not exist dangles */
	set_field(g_seg, other.v, 5,
		  SHG_ROOTREF(shg__root_slot(r), shg__root_incarnation(r) + 1));
	assert_int_equal(shg_get_root(g_seg, other, 5, &slot), -ENOENT);
	tu_ok(shg_root_remove(g_seg, "getters"));
	shg_root_close(r);
	assert_int_equal(shg_get_root(g_seg, node, 5, &slot), -ENOENT);
	/* Zero fields: empty bytes, null node, no root. */
	tu_ok(shg_get_bytes(g_seg, node, 6, &p, &len));
	assert_int_equal(len, 0);
	assert_non_null(p);
	tu_ok(shg_get_node(g_seg, node, 7, &other));
	assert_int_equal(other.v, 0);
	assert_int_equal(shg_get_root(g_seg, node, 8, &slot), -ENOENT);

	/* Wrong kind. */
	assert_int_equal(shg_get_u64(g_seg, node, 1, &u), -EINVAL);
	assert_int_equal(shg_get_i64(g_seg, node, 0, &i), -EINVAL);
	assert_int_equal(shg_get_f64(g_seg, node, 0, &fv), -EINVAL);
	assert_int_equal(shg_get_bytes(g_seg, node, 4, &p, &len), -EINVAL);
	assert_int_equal(shg_get_node(g_seg, node, 3, &other), -EINVAL);
	assert_int_equal(shg_get_root(g_seg, node, 4, &slot), -EINVAL);
	assert_int_equal(shg_get_u64(g_seg, node, 5, &u), -EINVAL);
	/* Wrong index. */
	assert_int_equal(shg_get_u64(g_seg, node, ALL_N, &u), -EINVAL);
	assert_int_equal(shg_get_u64(g_seg, node, 100000, &u), -EINVAL);
	/* Built-in node: no fields. */
	bad.v = mk_bytes(g_seg, "x");
	assert_int_equal(shg_node_type(g_seg, bad, &err), SHG_TYPE_BYTES);
	assert_int_equal(shg_get_u64(g_seg, bad, 0, &u), -EINVAL);
}

static void test_types_node_invalid(void **state)
{
	struct shg_off node, bad;
	uint64_t u;
	size_t len;
	uint32_t t;
	int err;

	(void)state;
	t = reg(g_seg, "all", all_fields, ALL_N);
	node.v = mk_node(g_seg, t, shg__user_node_size(ALL_N));
	/* Bad offsets. */
	bad.v = 0;
	assert_int_equal(shg_get_u64(g_seg, bad, 0, &u), SHG_EBADOFF);
	assert_int_equal(shg_node_type(g_seg, bad, &err), 0);
	assert_int_equal(err, SHG_EBADOFF);
	bad.v = node.v + 8;
	assert_int_equal(shg_get_u64(g_seg, bad, 0, &u), SHG_EBADOFF);
	bad.v = node.v + 16; /* inside the block, not its start */
	assert_int_equal(shg_get_u64(g_seg, bad, 0, &u), SHG_EBADOFF);
	bad.v = 4096; /* header, below the heap */
	assert_int_equal(shg_get_u64(g_seg, bad, 0, &u), SHG_EBADOFF);
	bad.v = shg_seg_capacity(g_seg) + 4096;
	assert_int_equal(shg_get_u64(g_seg, bad, 0, &u), SHG_EBADOFF);
	bad.v = ~0ull << 4;
	assert_int_equal(shg_get_u64(g_seg, bad, 0, &u), SHG_EBADOFF);
	/* Unknown, reserved and zero type ids. */
	bad.v = mk_node(g_seg, 999, 64);
	assert_int_equal(shg_get_u64(g_seg, bad, 0, &u), SHG_ECORRUPT);
	assert_int_equal(shg_node_type(g_seg, bad, &err), 0);
	assert_int_equal(err, SHG_ECORRUPT);
	bad.v = mk_node(g_seg, 7, 64);
	assert_int_equal(shg_get_u64(g_seg, bad, 0, &u), SHG_ECORRUPT);
	bad.v = mk_node(g_seg, 0, 64);
	assert_int_equal(shg_get_u64(g_seg, bad, 0, &u), SHG_ECORRUPT);
	/* A block too small for its type's fields (9 fields need 88). */
	bad.v = mk_node(g_seg, t, 64);
	assert_int_equal(shg_get_u64(g_seg, bad, 0, &u), SHG_ECORRUPT);
	/* A version record needs 64 bytes. */
	bad.v = mk_node(g_seg, SHG_TYPE_VERSION, 48);
	assert_null(shg__node(g_seg, bad.v, 0, NULL, &err));
	assert_int_equal(err, SHG_ECORRUPT);
	/* min_size larger than the block. */
	assert_null(shg__node(g_seg, node.v, 4096, NULL, &err));
	assert_int_equal(err, SHG_ECORRUPT);
	assert_non_null(shg__node(g_seg, node.v, 96, &len, &err));
	assert_int_equal(len, 96);
}

static void test_types_bytes_validation(void **state)
{
	struct shg_off node, b;
	struct shg_bytes *bp;
	const void *p;
	size_t len;
	uint32_t t;
	int err;

	(void)state;
	t = reg(g_seg, "all", all_fields, ALL_N);
	node.v = mk_node(g_seg, t, shg__user_node_size(ALL_N));
	/* 40-byte request -> 48-byte class: room for 24 bytes of data. */
	b.v = mk_bytes(g_seg, "0123456789abcdef");
	assert_int_equal(shg_block_size(g_seg, b), 48);
	bp = shg_ptr(g_seg, b, 48);
	set_field(g_seg, node.v, 3, b.v);
	tu_ok(shg_get_bytes(g_seg, node, 3, &p, &len));
	assert_int_equal(len, 16);
	bp->len = 24; /* exactly fills the block */
	tu_ok(shg_get_bytes(g_seg, node, 3, &p, &len));
	assert_int_equal(len, 24);
	assert_non_null(shg__bytes(g_seg, b.v, &err));
	bp->len = 25; /* one past the block */
	assert_int_equal(shg_get_bytes(g_seg, node, 3, &p, &len), SHG_ECORRUPT);
	assert_null(shg__bytes(g_seg, b.v, &err));
	assert_int_equal(err, SHG_ECORRUPT);
	bp->len = 0xffffffffu;
	assert_null(shg__bytes(g_seg, b.v, &err));
	assert_int_equal(err, SHG_ECORRUPT);
	bp->len = 3;
	/* A bytes field pointing at a node of another type. */
	set_field(g_seg, node.v, 3, node.v);
	assert_int_equal(shg_get_bytes(g_seg, node, 3, &p, &len), SHG_ECORRUPT);
	/* A bytes field pointing nowhere. */
	set_field(g_seg, node.v, 3, b.v + 16);
	assert_int_equal(shg_get_bytes(g_seg, node, 3, &p, &len), SHG_EBADOFF);
	/* A large bytes node (whole-span block). */
	{
		size_t n = 100000;
		uint64_t off = mk_node(g_seg, SHG_TYPE_BYTES, 24 + n);
		struct shg_bytes *lb =
			shg_ptr(g_seg, (struct shg_off){ off }, 24 + n);

		lb->len = (uint32_t)n;
		memset(lb->data, 'z', n);
		set_field(g_seg, node.v, 3, off);
		tu_ok(shg_get_bytes(g_seg, node, 3, &p, &len));
		assert_int_equal(len, n);
		assert_int_equal(((const char *)p)[n - 1], 'z');
		/* Freed large block: no longer a block at all. */
		tu_ok(shg_free(g_seg, (struct shg_off){ off }));
		assert_int_equal(shg_get_bytes(g_seg, node, 3, &p, &len),
				 SHG_EBADOFF);
	}
}

/* ---- traversal ------------------------------------------------------------- */

static const struct shg_field_def walk_fields[] = {
	{ "a", SHG_KIND_NODE }, { "b", SHG_KIND_NODE }, { "s", SHG_KIND_BYTES },
	{ "r", SHG_KIND_ROOT }, { "x", SHG_KIND_U64 },
};
#define WALK_N 5

struct visits {
	uint64_t off[64];
	unsigned count[64];
	unsigned n; /* distinct offsets seen */
	unsigned total; /* visit calls */
	unsigned roots;
	uint64_t lastroot;
	int stop_at; /* return -42 at this visit number (0 = never) */
	uint64_t skip; /* return 1 for this offset */
};

static int visit_fn(void *arg, uint64_t off, const struct shg_node *n,
		    size_t size)
{
	struct visits *v = arg;
	unsigned i;

	assert_non_null(n);
	assert_true(size >= 16);
	v->total++;
	for (i = 0; i < v->n; i++)
		if (v->off[i] == off)
			break;
	if (i == v->n && v->n < 64)
		v->off[v->n++] = off;
	if (i < 64)
		v->count[i]++;
	if (v->stop_at && (int)v->total == v->stop_at)
		return -42;
	return off == v->skip ? 1 : 0;
}

static void root_fn(void *arg, uint64_t ref)
{
	struct visits *v = arg;

	v->roots++;
	v->lastroot = ref;
}

struct dag {
	uint64_t ver, r, a, b, c, s;
};

/* version -> R; R.a = A, R.b = B, R.r = root ref; A.a = C; B.a = B.b = C;
 * C.s = bytes. */
static void build_dag(struct dag *d)
{
	struct shg_version *v;
	uint32_t t = reg(g_seg, "walk.t", walk_fields, WALK_N);
	size_t sz = shg__user_node_size(WALK_N);

	d->ver = mk_node(g_seg, SHG_TYPE_VERSION, sizeof(*v));
	d->r = mk_node(g_seg, t, sz);
	d->a = mk_node(g_seg, t, sz);
	d->b = mk_node(g_seg, t, sz);
	d->c = mk_node(g_seg, t, sz);
	d->s = mk_bytes(g_seg, "leaf");
	v = shg_ptr(g_seg, (struct shg_off){ d->ver }, sizeof(*v));
	v->node = d->r;
	set_field(g_seg, d->r, 0, d->a);
	set_field(g_seg, d->r, 1, d->b);
	set_field(g_seg, d->r, 3, SHG_ROOTREF(5, 2));
	set_field(g_seg, d->a, 0, d->c);
	set_field(g_seg, d->b, 0, d->c);
	set_field(g_seg, d->b, 1, d->c);
	set_field(g_seg, d->c, 2, d->s);
	set_field(g_seg, d->c, 4, 12345); /* U64: never followed */
}

static void child_fn(void *arg, uint64_t child)
{
	struct visits *v = arg;

	if (v->n < 64)
		v->off[v->n++] = child;
}

static void test_types_walk_dag(void **state)
{
	struct visits v;
	struct dag d;
	unsigned i;

	(void)state;
	build_dag(&d);
	memset(&v, 0, sizeof(v));
	tu_ok(shg__node_children(g_seg, d.r, child_fn, root_fn, &v));
	assert_int_equal(v.n, 2);
	assert_int_equal(v.off[0], d.a);
	assert_int_equal(v.off[1], d.b);
	assert_int_equal(v.roots, 1);
	assert_int_equal(v.lastroot, SHG_ROOTREF(5, 2));
	memset(&v, 0, sizeof(v));
	tu_ok(shg__node_children(g_seg, d.ver, child_fn, NULL, &v));
	assert_int_equal(v.n, 1);
	assert_int_equal(v.off[0], d.r);
	memset(&v, 0, sizeof(v));
	tu_ok(shg__node_children(g_seg, d.s, child_fn, NULL, &v));
	assert_int_equal(v.n, 0);

	memset(&v, 0, sizeof(v));
	tu_ok(shg__walk(g_seg, d.ver, visit_fn, root_fn, &v));
	assert_int_equal(v.n, 6); /* ver, R, A, B, C, bytes */
	assert_int_equal(v.total, 6);
	for (i = 0; i < v.n; i++)
		assert_int_equal(v.count[i], 1); /* C shared, visited once */
	assert_int_equal(v.roots, 1);
	/* Without a root callback, and from null. */
	memset(&v, 0, sizeof(v));
	tu_ok(shg__walk(g_seg, d.r, visit_fn, NULL, &v));
	assert_int_equal(v.total, 5);
	tu_ok(shg__walk(g_seg, 0, visit_fn, NULL, &v));
	assert_int_equal(v.total, 5);
	/* The visitor stops the walk, or prunes a subtree. */
	memset(&v, 0, sizeof(v));
	v.stop_at = 3;
	assert_int_equal(shg__walk(g_seg, d.ver, visit_fn, NULL, &v), -42);
	assert_int_equal(v.total, 3);
	memset(&v, 0, sizeof(v));
	v.skip = d.r;
	tu_ok(shg__walk(g_seg, d.ver, visit_fn, NULL, &v));
	assert_int_equal(v.total, 2);
}

static void test_types_walk_cycle(void **state)
{
	struct visits v;
	struct dag d;

	(void)state;
	build_dag(&d);
	set_field(g_seg, d.c, 0, d.r); /* C -> R: a cycle */
	set_field(g_seg, d.c, 1, d.c); /* and a self loop */
	memset(&v, 0, sizeof(v));
	tu_ok(shg__walk(g_seg, d.ver, visit_fn, root_fn, &v));
	assert_int_equal(v.total, 6);
	/* A version that names itself as its node (corrupt). */
	((struct shg_version *)shg_ptr(g_seg, (struct shg_off){ d.ver }, 64))
		->node = d.ver;
	memset(&v, 0, sizeof(v));
	tu_ok(shg__walk(g_seg, d.ver, visit_fn, NULL, &v));
	assert_int_equal(v.total, 1);
}

static void test_types_walk_corrupt(void **state)
{
	struct visits v;
	struct dag d;
	uint64_t junk;

	(void)state;
	build_dag(&d);
	junk = mk_node(g_seg, 999, 64);
	set_field(g_seg, d.b, 1, d.c + 8); /* misaligned */
	memset(&v, 0, sizeof(v));
	assert_int_equal(shg__walk(g_seg, d.ver, visit_fn, NULL, &v),
			 SHG_EBADOFF);
	set_field(g_seg, d.b, 1, 1ull << 50); /* far outside the segment */
	assert_int_equal(shg__walk(g_seg, d.ver, visit_fn, NULL, &v),
			 SHG_EBADOFF);
	set_field(g_seg, d.b, 1, junk); /* a block of an unknown type */
	assert_int_equal(shg__walk(g_seg, d.ver, visit_fn, NULL, &v),
			 SHG_ECORRUPT);
	assert_int_equal(shg__node_children(g_seg, junk, child_fn, NULL, &v),
			 SHG_ECORRUPT);
	set_field(g_seg, d.b, 1, d.c);
	/* A bytes child whose length overruns its block. */
	((struct shg_bytes *)shg_ptr(g_seg, (struct shg_off){ d.s }, 32))->len =
		1000;
	assert_int_equal(shg__walk(g_seg, d.ver, visit_fn, NULL, &v),
			 SHG_ECORRUPT);
	((struct shg_bytes *)shg_ptr(g_seg, (struct shg_off){ d.s }, 32))->len =
		4;
	memset(&v, 0, sizeof(v));
	tu_ok(shg__walk(g_seg, d.ver, visit_fn, NULL, &v));
	assert_int_equal(v.total, 6);
}

static int count_fn(void *arg, uint64_t off, const struct shg_node *n,
		    size_t size)
{
	(void)off, (void)n, (void)size;
	++*(size_t *)arg;
	return 0;
}

/* A long chain: the walk is iterative (no recursion depth). */
static void test_types_walk_deep(void **state)
{
	const struct shg_field_def lf[] = { { "next", SHG_KIND_NODE } };
	size_t i, n = 200000, seen = 0;
	uint64_t head = 0, cur;
	uint32_t t;

	(void)state;
	t = reg(g_seg, "link", lf, 1);
	for (i = 0; i < n; i++) {
		cur = mk_node(g_seg, t, shg__user_node_size(1));
		set_field(g_seg, cur, 0, head);
		head = cur;
	}
	tu_ok(shg__walk(g_seg, head, count_fn, NULL, &seen));
	assert_int_equal(seen, n);
}

/* Built-in containers through the real txn API: the walk reaches every
 * map and vector node and each bytes value exactly once. */
struct by_type {
	unsigned n[SHG_TYPE_FIRST_USER + 1];
	unsigned total;
};

static int by_type_fn(void *arg, uint64_t off, const struct shg_node *n,
		      size_t size)
{
	struct by_type *bt = arg;

	(void)off, (void)size;
	bt->total++;
	bt->n[n->type < SHG_TYPE_FIRST_USER ? n->type : SHG_TYPE_FIRST_USER]++;
	return 0;
}

static void test_types_walk_containers(void **state)
{
	const struct shg_field_def hf[] = { { "m", SHG_KIND_NODE },
					    { "v", SHG_KIND_NODE },
					    { "r", SHG_KIND_ROOT } };
	struct shg_ref mref, vref, rref;
	const struct shg_version *ver;
	struct shg_root *root;
	struct shg_txn *txn;
	struct shg_off head, v;
	struct shg_val val;
	struct by_type bt;
	struct visits rv;
	char buf[32];
	uint64_t nodes;
	uint32_t t;
	unsigned i, n = 300;

	(void)state;
	t = reg(g_seg, "holder", hf, 3);
	tu_ok(shg_root_create(g_seg, "walked", &root));
	tu_ok(shg_txn_begin(root, &txn));
	tu_ok(shg_txn_node_new(txn, t, &head));
	tu_ok(shg_txn_set_node(txn, SHG_REF_ROOT, head));
	mref = (struct shg_ref){ head, 0 };
	vref = (struct shg_ref){ head, 1 };
	rref = (struct shg_ref){ head, 2 };
	tu_ok(shg_txn_set_root(txn, rref, root));
	tu_ok(shg_txn_map_new(txn, mref, SHG_KIND_U64, SHG_KIND_BYTES));
	tu_ok(shg_txn_vec_new(txn, vref, SHG_KIND_BYTES));
	for (i = 0; i < n; i++) {
		snprintf(buf, sizeof(buf), "value-%u-%s", i, "padding-padding");
		val.kind = SHG_KIND_BYTES;
		val.bytes.p = buf;
		val.bytes.len = strlen(buf);
		tu_ok(shg_txn_map_put_u64(txn, mref, i * 7919u, &val));
		tu_ok(shg_txn_vec_push(txn, vref, &val));
	}
	tu_ok(shg_txn_commit(txn));

	tu_ok(shg_read_lock(g_seg));
	v = shg_version_current(root);
	memset(&bt, 0, sizeof(bt));
	memset(&rv, 0, sizeof(rv));
	tu_ok(shg__walk(g_seg, v.v, NULL, root_fn, &rv));
	tu_ok(shg__walk(g_seg, v.v, by_type_fn, NULL, &bt));
	ver = shg_ptr(g_seg, v, sizeof(*ver));
	nodes = ver->nodes;
	print_message("walked %u blocks (version says %llu): %u map, %u coll, "
		      "%u vec, %u vec nodes, %u bytes\n",
		      bt.total, (unsigned long long)nodes, bt.n[SHG_TYPE_MAP],
		      bt.n[SHG_TYPE_MAP_LEAF], bt.n[SHG_TYPE_VEC],
		      bt.n[SHG_TYPE_VEC_NODE], bt.n[SHG_TYPE_BYTES]);
	shg_read_unlock(g_seg);
	assert_int_equal(bt.n[SHG_TYPE_VERSION], 1);
	assert_int_equal(bt.n[SHG_TYPE_FIRST_USER], 1);
	assert_int_equal(bt.n[SHG_TYPE_BYTES], 2 * n);
	/* 300 keys: more than a level (a root and leaves) */
	assert_true(bt.n[SHG_TYPE_MAP] + bt.n[SHG_TYPE_MAP_LEAF] >= 2);
	assert_int_equal(bt.n[SHG_TYPE_VEC], 1);
	assert_true(bt.n[SHG_TYPE_VEC_NODE] >= 2);
	assert_int_equal(rv.roots, 1);
	/* The version's count of reachable blocks excludes the record. */
	assert_int_equal(bt.total, nodes + 1);
	shg_root_close(root);
}

/* ---- schema evolution ------------------------------------------------------ */

/* Version 0 of "item": two fields; version 1 appends four of every kind. */
static const struct shg_field_def item_v1[] = {
	{ "a", SHG_KIND_U64 },	 { "b", SHG_KIND_I64 },	 { "c", SHG_KIND_F64 },
	{ "d", SHG_KIND_BYTES }, { "e", SHG_KIND_NODE }, { "f", SHG_KIND_ROOT },
	{ "g", SHG_KIND_U64 },
};
#define ITEM_V0 2u
#define ITEM_V1 6u
#define ITEM_V2 7u

/* The current root node of @root (null if none or on error). */
static struct shg_off root_node(struct shg_seg *seg, struct shg_root *root)
{
	struct shg_version_info vi;
	struct shg_off v = shg_version_current(root);

	if (shg_off_is_null(v) || shg_version_info(seg, v, &vi))
		return SHG_OFF_NULL;
	return vi.node;
}

static uint32_t count_of(struct shg_seg *seg)
{
	return atomic_load(&table_of(seg)->count);
}

/* Commit a new root @name whose root node is an "item" with a = @a. */
static struct shg_root *commit_item(struct shg_seg *seg, const char *name,
				    uint32_t type, uint64_t a,
				    struct shg_off *node)
{
	struct shg_root *root;
	struct shg_txn *txn;
	struct shg_off n;

	tu_ok(shg_root_create(seg, name, &root));
	tu_ok(shg_txn_begin(root, &txn));
	tu_ok(shg_txn_node_new(txn, type, &n));
	tu_ok(shg_txn_set_u64(txn, (struct shg_ref){ n, 0 }, a));
	tu_ok(shg_txn_set_i64(txn, (struct shg_ref){ n, 1 }, -(int64_t)a));
	tu_ok(shg_txn_set_node(txn, SHG_REF_ROOT, n));
	tu_ok(shg_txn_commit(txn));
	tu_ok(shg_read_lock(seg));
	*node = root_node(seg, root);
	shg_read_unlock(seg);
	return root;
}

static void expect_version(struct shg_seg *seg, struct shg_off n, unsigned v,
			   unsigned nf)
{
	unsigned ver = 99, nfields = 99;

	tu_ok(shg_node_version(seg, n, &ver, &nfields));
	assert_int_equal(ver, v);
	assert_int_equal(nfields, nf);
}

static void test_types_evolve_register(void **state)
{
	const struct shg_field_def renamed[] = { { "a", SHG_KIND_U64 },
						 { "bb", SHG_KIND_I64 },
						 { "c", SHG_KIND_F64 } };
	const struct shg_field_def retyped[] = { { "a", SHG_KIND_U64 },
						 { "b", SHG_KIND_U64 },
						 { "c", SHG_KIND_F64 } };
	const struct shg_field_def reordered[] = { { "b", SHG_KIND_I64 },
						   { "a", SHG_KIND_U64 } };
	const struct shg_field_def other[] = { { "a", SHG_KIND_U64 },
					       { "b", SHG_KIND_I64 },
					       { "x", SHG_KIND_U64 } };
	struct shg_type_info ti;
	uint32_t id, id2, before;
	unsigned idx;

	(void)state;
	id = reg(g_seg, "item", item_v1, ITEM_V0);
	before = count_of(g_seg);
	/* Appending fields: a new version, the same id, one more record. */
	assert_int_equal(reg(g_seg, "item", item_v1, ITEM_V1), id);
	assert_int_equal(count_of(g_seg), before + 1);
	/* Both versions' definitions register again (old and new code). */
	assert_int_equal(reg(g_seg, "item", item_v1, ITEM_V0), id);
	assert_int_equal(reg(g_seg, "item", item_v1, ITEM_V1), id);
	assert_int_equal(count_of(g_seg), before + 1);
	/* Removing a field (a prefix that is no version), renaming,
	 * retyping, reordering, appending to an older version: -EEXIST,
	 * nothing listed. */
	assert_int_equal(shg_type_register(g_seg, "item", item_v1, 1, &id2),
			 -EEXIST);
	assert_int_equal(shg_type_register(g_seg, "item", item_v1, 5, &id2),
			 -EEXIST);
	assert_int_equal(shg_type_register(g_seg, "item", NULL, 0, &id2),
			 -EEXIST);
	assert_int_equal(shg_type_register(g_seg, "item", renamed, 3, &id2),
			 -EEXIST);
	assert_int_equal(shg_type_register(g_seg, "item", retyped, 3, &id2),
			 -EEXIST);
	assert_int_equal(shg_type_register(g_seg, "item", reordered, 2, &id2),
			 -EEXIST);
	assert_int_equal(shg_type_register(g_seg, "item", other, 3, &id2),
			 -EEXIST);
	assert_int_equal(count_of(g_seg), before + 1);
	/* The type as seen by the API: its newest version. */
	tu_ok(shg_type_find(g_seg, "item", &id2));
	assert_int_equal(id2, id);
	tu_ok(shg_type_info(g_seg, id, &ti));
	assert_int_equal(ti.id, id);
	assert_int_equal(ti.nfields, ITEM_V1);
	assert_string_equal(ti.field[5].name, "f");
	tu_ok(shg_field_find(g_seg, id, "e", SHG_KIND_NODE, &idx));
	assert_int_equal(idx, 4);
	assert_int_equal(shg_field_find(g_seg, id, "g", 0, &idx), -ENOENT);
	/* The version's own table entry is not a type of the API. */
	assert_int_equal(shg_type_info(g_seg, before, &ti), -ENOENT);
	assert_int_equal(shg__type_get(g_seg, before)->link, id);
	assert_int_equal(shg__type_get(g_seg, id)->link, before);
	/* A third version; a new type after it gets the next entry. */
	assert_int_equal(reg(g_seg, "item", item_v1, ITEM_V2), id);
	assert_int_equal(shg__type_get(g_seg, id)->link, before + 1);
	assert_int_equal(reg(g_seg, "later", item_v1, 1), before + 2);
	assert_int_equal(types_problems(g_seg), 0);
	assert_int_equal(shg_check(g_seg, NULL, NULL, NULL), 0);

	/* The checker: a version that changes a field, a first record whose
	 * newest-version link names another type. */
	{
		struct shg_type_rec *v =
			(struct shg_type_rec *)shg__type_get(g_seg, before + 1);
		struct shg_type_rec *b =
			(struct shg_type_rec *)shg__type_get(g_seg, id);

		v->kind[1] = SHG_KIND_U64;
		assert_int_equal(types_problems(g_seg), 1);
		v->kind[1] = SHG_KIND_I64;
		b->link = before + 2;
		assert_int_equal(types_problems(g_seg), 1);
		b->link = 5000; /* beyond the table */
		assert_int_equal(types_problems(g_seg), 1);
		tu_ok(shg_type_info(g_seg, id, &ti)); /* ignored by readers */
		assert_int_equal(ti.nfields, ITEM_V0);
		b->link = before + 1;
		assert_int_equal(types_problems(g_seg), 0);
	}
}

static void test_types_evolve_read(void **state)
{
	struct shg_off old, nn, child;
	struct shg_root *root, *root2;
	struct shg_txn *txn;
	const void *p;
	uint64_t u;
	int64_t i;
	double d;
	size_t len;
	uint32_t id, slot;
	int err;

	(void)state;
	id = reg(g_seg, "item", item_v1, ITEM_V0);
	root = commit_item(g_seg, "old", id, 7, &old);
	assert_int_equal(reg(g_seg, "item", item_v1, ITEM_V1), id);

	tu_ok(shg_read_lock(g_seg));
	/* An old node read by new code: its fields, then zeros. */
	tu_ok(shg_get_u64(g_seg, old, 0, &u));
	assert_int_equal(u, 7);
	tu_ok(shg_get_i64(g_seg, old, 1, &i));
	assert_int_equal(i, -7);
	d = 1.5;
	tu_ok(shg_get_f64(g_seg, old, 2, &d));
	assert_true(d == 0.0);
	len = 9;
	tu_ok(shg_get_bytes(g_seg, old, 3, &p, &len));
	assert_int_equal(len, 0);
	child.v = 1;
	tu_ok(shg_get_node(g_seg, old, 4, &child));
	assert_true(shg_off_is_null(child));
	assert_int_equal(shg_get_root(g_seg, old, 5, &slot), -ENOENT);
	assert_int_equal(slot, SHG_ROOT_SLOT_NONE);
	/* Kinds and indexes are still checked against the newest version. */
	assert_int_equal(shg_get_u64(g_seg, old, 2, &u), -EINVAL);
	assert_int_equal(shg_get_u64(g_seg, old, 6, &u), -EINVAL);
	assert_int_equal(shg_get_u64(g_seg, old, SHG_MAX_FIELDS, &u), -EINVAL);
	/* Every version answers the type's id. */
	assert_int_equal(shg_node_type(g_seg, old, &err), id);
	tu_ok(shg_node_is(g_seg, old, id));
	expect_version(g_seg, old, 0, ITEM_V0);
	shg_read_unlock(g_seg);

	/* A node made now is the newest version; old code reads its own
	 * fields of it unchanged. */
	tu_ok(shg_root_create(g_seg, "new", &root2));
	tu_ok(shg_txn_begin(root2, &txn));
	tu_ok(shg_txn_node_new(txn, id, &nn));
	tu_ok(shg_txn_set_u64(txn, (struct shg_ref){ nn, 0 }, 8));
	tu_ok(shg_txn_set_i64(txn, (struct shg_ref){ nn, 1 }, -8));
	tu_ok(shg_txn_set_f64(txn, (struct shg_ref){ nn, 2 }, 2.5));
	tu_ok(shg_txn_set_bytes(txn, (struct shg_ref){ nn, 3 }, "hey", 3));
	tu_ok(shg_txn_set_root(txn, (struct shg_ref){ nn, 5 }, root));
	tu_ok(shg_txn_set_node(txn, SHG_REF_ROOT, nn));
	tu_ok(shg_txn_commit(txn));
	tu_ok(shg_read_lock(g_seg));
	nn = root_node(g_seg, root2);
	expect_version(g_seg, nn, 1, ITEM_V1);
	tu_ok(shg_get_u64(g_seg, nn, 0, &u));
	assert_int_equal(u, 8);
	tu_ok(shg_get_i64(g_seg, nn, 1, &i));
	assert_int_equal(i, -8);
	tu_ok(shg_get_f64(g_seg, nn, 2, &d));
	assert_true(d == 2.5);
	tu_ok(shg_get_bytes(g_seg, nn, 3, &p, &len));
	assert_int_equal(len, 3);
	assert_memory_equal(p, "hey", 3);
	tu_ok(shg_node_is(g_seg, nn, id));
	assert_int_equal(shg_node_version(g_seg, SHG_OFF_NULL, NULL, NULL),
			 SHG_EBADOFF);
	shg_read_unlock(g_seg);
	/* Mixed versions are a sound segment. */
	assert_int_equal(types_problems(g_seg), 0);
	assert_int_equal(shg_check(g_seg, NULL, NULL, NULL), 0);
	shg_root_close(root);
	shg_root_close(root2);
}

static void test_types_evolve_mut_upgrades(void **state)
{
	/* Version 0: val, kid, pad (40-byte nodes in 48-byte blocks, so the
	 * allocator's rounding can hold a stale word where "tag" goes);
	 * version 1 appends tag, version 2 more. */
	const struct shg_field_def tree[] = { { "val", SHG_KIND_U64 },
					      { "kid", SHG_KIND_NODE },
					      { "pad", SHG_KIND_U64 },
					      { "tag", SHG_KIND_U64 },
					      { "more", SHG_KIND_U64 } };
	struct shg_off top, kid, n, fresh;
	struct shg_root *root;
	struct shg_txn *txn;
	uint64_t u, *slot;
	uint32_t id;

	(void)state;
	id = reg(g_seg, "tree", tree, 3);
	tu_ok(shg_root_create(g_seg, "t", &root));
	tu_ok(shg_txn_begin(root, &txn));
	tu_ok(shg_txn_node_new(txn, id, &top));
	tu_ok(shg_txn_node_new(txn, id, &kid));
	tu_ok(shg_txn_set_u64(txn, (struct shg_ref){ kid, 0 }, 2));
	tu_ok(shg_txn_set_node(txn, (struct shg_ref){ top, 1 }, kid));
	tu_ok(shg_txn_set_u64(txn, (struct shg_ref){ top, 0 }, 1));
	tu_ok(shg_txn_set_node(txn, SHG_REF_ROOT, top));
	tu_ok(shg_txn_commit(txn));
	assert_int_equal(reg(g_seg, "tree", tree, 4), id);

	/* Dirty the rounding of the published top node: its copy must not
	 * take the stale word for the new field. */
	tu_ok(shg_read_lock(g_seg));
	top = root_node(g_seg, root);
	shg_read_unlock(g_seg);
	assert_true(shg_block_size(g_seg, top) >= shg__user_node_size(4));
	slot = shg_ptr(g_seg, top, shg__user_node_size(4));
	slot[2 + 3] = 0xdead;
	tu_ok(shg_txn_begin(root, &txn));
	n = shg_txn_root_node(txn);
	tu_ok(shg_txn_mut(txn, SHG_REF_ROOT, &n));
	assert_true(n.v != top.v);
	expect_version(g_seg, n, 1, 4);
	tu_ok(shg_get_u64(g_seg, n, 3, &u));
	assert_int_equal(u, 0);
	tu_ok(shg_get_u64(g_seg, n, 0, &u));
	assert_int_equal(u, 1);
	tu_ok(shg_txn_set_u64(txn, (struct shg_ref){ n, 3 }, 33));
	tu_ok(shg_txn_commit(txn));

	tu_ok(shg_read_lock(g_seg));
	n = root_node(g_seg, root);
	expect_version(g_seg, n, 1, 4);
	tu_ok(shg_get_u64(g_seg, n, 3, &u));
	assert_int_equal(u, 33);
	/* The child was not copied: still version 0, shared. */
	tu_ok(shg_get_node(g_seg, n, 1, &kid));
	expect_version(g_seg, kid, 0, 3);
	tu_ok(shg_get_u64(g_seg, kid, 3, &u));
	assert_int_equal(u, 0);
	shg_read_unlock(g_seg);

	/* A node made in a txn before a version was registered stays the
	 * version it was made as: the new field is -EINVAL there, and the
	 * txn stays usable. */
	tu_ok(shg_txn_begin(root, &txn));
	tu_ok(shg_txn_node_new(txn, id, &fresh));
	expect_version(g_seg, fresh, 1, 4);
	tu_ok(shg_txn_set_u64(txn, (struct shg_ref){ fresh, 3 }, 5));
	tu_ok(shg_txn_mut(txn, SHG_REF_ROOT, &n));
	assert_int_equal(reg(g_seg, "tree", tree, 5), id);
	assert_int_equal(shg_txn_set_u64(txn, (struct shg_ref){ fresh, 4 }, 1),
			 -EINVAL);
	assert_int_equal(shg_txn_set_u64(txn, (struct shg_ref){ n, 4 }, 1),
			 -EINVAL);
	tu_ok(shg_txn_set_u64(txn, (struct shg_ref){ n, 0 }, 10));
	tu_ok(shg_txn_set_node(txn, (struct shg_ref){ n, 1 }, fresh));
	tu_ok(shg_txn_commit(txn));
	/* The next txn's copy is version 2. */
	tu_ok(shg_txn_begin(root, &txn));
	tu_ok(shg_txn_mut(txn, SHG_REF_ROOT, &n));
	expect_version(g_seg, n, 2, 5);
	tu_ok(shg_txn_set_u64(txn, (struct shg_ref){ n, 4 }, 1));
	tu_ok(shg_txn_commit(txn));
	assert_int_equal(shg_check(g_seg, NULL, NULL, NULL), 0);
	shg_root_close(root);
}

/*
 * A registrant that died after counting a new version but before linking
 * it as the newest: the type reads as its older version until the next
 * locker repairs the link.
 */
static void test_types_evolve_lock_repair(void **state)
{
	struct shg_type_rec *b;
	struct shg_type_info ti;
	struct repair_arg ra;
	uint32_t id, v1;
	pid_t pid;
	char c;

	(void)state;
	id = reg(g_seg, "rp", item_v1, 1);
	assert_int_equal(reg(g_seg, "rp", item_v1, 2), id);
	b = (struct shg_type_rec *)shg__type_get(g_seg, id);
	v1 = b->link;
	assert_true(v1 > id);
	b->link = 0; /* the store the registrant did not get to */
	tu_ok(shg_type_info(g_seg, id, &ti));
	assert_int_equal(ti.nfields, 1);
	ra.seg_name = g_name;
	ra.half = false;
	assert_int_equal(pipe(ra.up), 0);
	pid = tu_fork(repair_child, &ra);
	assert_int_equal(read(ra.up[0], &c, 1), 1);
	assert_int_equal(tu_wait(pid), 128 + SIGKILL);
	close(ra.up[0]);
	close(ra.up[1]);
	/* The next registration takes the lock, repairs, then registers. */
	assert_int_equal(reg(g_seg, "after", NULL, 0), v1 + 1);
	assert_int_equal(b->link, v1);
	tu_ok(shg_type_info(g_seg, id, &ti));
	assert_int_equal(ti.nfields, 2);
	assert_int_equal(reg(g_seg, "rp", item_v1, 2), id);
	assert_int_equal(types_problems(g_seg), 0);
}

/* Export root @name of @seg to a temporary file; returns its fd. */
static int export_tmp(struct shg_seg *seg, const char *name)
{
	FILE *f = tmpfile();
	int fd;

	assert_non_null(f);
	fd = dup(fileno(f));
	fclose(f);
	assert_true(fd >= 0);
	tu_ok(shg_export(seg, name, fd));
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	return fd;
}

static void test_types_evolve_snapshot(void **state)
{
	struct shg_off top, kid, old;
	struct shg_root *root, *r2;
	struct shg_seg *seg2;
	struct shg_txn *txn;
	struct shg_type_info ti;
	char name2[128];
	uint64_t u;
	uint32_t id, id2;
	int fd;

	(void)state;
	/* Mixed versions in one graph: a v1 top over a v0 child. */
	id = reg(g_seg, "item", item_v1, ITEM_V0);
	root = commit_item(g_seg, "snap", id, 3, &old);
	assert_int_equal(reg(g_seg, "item", item_v1, ITEM_V1), id);
	tu_ok(shg_txn_begin(root, &txn));
	tu_ok(shg_txn_node_new(txn, id, &top));
	tu_ok(shg_txn_set_u64(txn, (struct shg_ref){ top, 0 }, 4));
	tu_ok(shg_txn_set_node(txn, (struct shg_ref){ top, 4 },
			       shg_txn_root_node(txn)));
	tu_ok(shg_txn_set_node(txn, SHG_REF_ROOT, top));
	tu_ok(shg_txn_commit(txn));
	fd = export_tmp(g_seg, "snap");

	/* Into a segment that has only version 0: version 1 is registered
	 * (each type is written once, as its newest version). */
	seg2 = tu_create(name2, 0);
	id2 = reg(seg2, "item", item_v1, ITEM_V0);
	tu_ok(shg_import(seg2, "snap", fd, 0));
	tu_ok(shg_type_info(seg2, id2, &ti));
	assert_int_equal(ti.nfields, ITEM_V1);
	tu_ok(shg_root_open(seg2, "snap", &r2));
	tu_ok(shg_read_lock(seg2));
	top = root_node(seg2, r2);
	expect_version(seg2, top, 1, ITEM_V1);
	tu_ok(shg_get_node(seg2, top, 4, &kid));
	expect_version(seg2, kid, 1, ITEM_V1); /* made as the newest */
	tu_ok(shg_get_u64(seg2, kid, 0, &u));
	assert_int_equal(u, 3);
	assert_int_equal(shg_get_u64(seg2, kid, 6, &u), -EINVAL);
	shg_read_unlock(seg2);
	shg_root_close(r2);
	assert_int_equal(shg_check(seg2, NULL, NULL, NULL), 0);
	tu_destroy(seg2, name2);

	/* Into a segment with a newer version: the snapshot's fields are a
	 * prefix, its nodes are made as the newest version. */
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	seg2 = tu_create(name2, 0);
	id2 = reg(seg2, "item", item_v1, ITEM_V2);
	tu_ok(shg_import(seg2, "snap", fd, 0));
	assert_int_equal(count_of(seg2), id2 + 1); /* nothing registered */
	tu_ok(shg_root_open(seg2, "snap", &r2));
	tu_ok(shg_read_lock(seg2));
	top = root_node(seg2, r2);
	expect_version(seg2, top, 0, ITEM_V2);
	tu_ok(shg_get_u64(seg2, top, 6, &u));
	assert_int_equal(u, 0);
	shg_read_unlock(seg2);
	shg_root_close(r2);
	tu_destroy(seg2, name2);

	/* Into one where a field the snapshot has differs: -EEXIST. */
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	seg2 = tu_create(name2, 0);
	{
		const struct shg_field_def clash[] = { { "a", SHG_KIND_U64 },
						       { "b", SHG_KIND_I64 },
						       { "c", SHG_KIND_U64 } };

		reg(seg2, "item", clash, 3);
	}
	assert_int_equal(shg_import(seg2, "snap", fd, 0), -EEXIST);
	tu_destroy(seg2, name2);
	close(fd);
	shg_root_close(root);
}

/* Children register "evo.t" version 1 as @fields (@nf) at once. */
struct evo_arg {
	const char *seg_name;
	int go[2];
	const struct shg_field_def *fields;
	unsigned nf;
};

static int evo_child(void *arg)
{
	struct evo_arg *ea = arg;
	struct shg_seg *seg = NULL;
	uint32_t id;
	char c;
	int err;

	close(ea->go[1]);
	if (shg_seg_open(ea->seg_name, NULL, &seg))
		return 250;
	if (read(ea->go[0], &c, 1) != 0)
		return 251;
	err = shg_type_register(seg, "evo.t", ea->fields, ea->nf, &id);
	shg_seg_close(seg);
	if (err == -EEXIST)
		return 200;
	return err ? 252 : (int)id;
}

#define EVO_ROUNDS 8
#define EVO_CHILDREN 6

static void test_types_evolve_concurrent(void **state)
{
	const struct shg_field_def va[] = { { "k", SHG_KIND_U64 },
					    { "a", SHG_KIND_U64 } };
	const struct shg_field_def vb[] = { { "k", SHG_KIND_U64 },
					    { "b", SHG_KIND_BYTES } };
	struct shg_type_info ti;
	struct evo_arg ea;
	struct shg_seg *seg;
	char name[128];
	pid_t pids[EVO_CHILDREN];
	int rc[EVO_CHILDREN];
	uint32_t id, before, round, i, won_a, won_b;

	(void)state;
	for (round = 0; round < EVO_ROUNDS; round++) {
		seg = tu_create(name, 0);
		id = reg(seg, "evo.t", va, 1);
		before = count_of(seg);
		ea.seg_name = name;
		assert_int_equal(pipe(ea.go), 0);
		/* Even children append "a", odd ones "b". */
		for (i = 0; i < EVO_CHILDREN; i++) {
			ea.fields = i % 2 ? vb : va;
			ea.nf = 2;
			pids[i] = tu_fork(evo_child, &ea);
		}
		close(ea.go[0]);
		close(ea.go[1]);
		won_a = won_b = 0;
		for (i = 0; i < EVO_CHILDREN; i++) {
			rc[i] = tu_wait(pids[i]);
			assert_true(rc[i] == (int)id || rc[i] == 200);
			if (rc[i] == (int)id)
				*(i % 2 ? &won_b : &won_a) += 1;
		}
		/* One definition won, for every child that proposed it; the
		 * other one's children all got -EEXIST. One version listed. */
		assert_true((won_a == EVO_CHILDREN / 2 && !won_b) ||
			    (won_b == EVO_CHILDREN / 2 && !won_a));
		assert_int_equal(count_of(seg), before + 1);
		tu_ok(shg_type_info(seg, id, &ti));
		assert_int_equal(ti.nfields, 2);
		assert_string_equal(ti.field[1].name, won_a ? "a" : "b");
		assert_int_equal(types_problems(seg), 0);
		tu_destroy(seg, name);
	}
}

/*
 * An old reader process keeps reading while a new writer adds a field:
 * the reader knows version 0 (a, b with b == 2a) and reads the current
 * root node in read sections until told to stop; the writer registers
 * version 1 (c == 3a) and commits updates that copy the node with
 * shg_txn_mut (so the reader sees version 0, then version 1 nodes).
 */
struct oldr_shared {
	_Atomic int started, stop;
};

struct oldr_arg {
	const char *seg_name;
	struct oldr_shared *sh;
};

static const struct shg_field_def ctr_v1[] = { { "a", SHG_KIND_U64 },
					       { "b", SHG_KIND_U64 },
					       { "c", SHG_KIND_U64 } };
#define OLDR_UPDATES 200u

static int oldr_child(void *arg)
{
	struct oldr_arg *oa = arg;
	struct shg_seg *seg = NULL;
	struct shg_root *root;
	struct shg_off n;
	uint64_t a = 0, b = 0, last = 0, v0_reads = 0, v1_reads = 0;
	unsigned ver = 0;
	uint32_t id, id2;
	int stop, err;

	if (shg_seg_open(oa->seg_name, NULL, &seg) ||
	    shg_type_register(seg, "ctr", ctr_v1, 2, &id) ||
	    shg_root_open(seg, "ctr", &root))
		return 250;
	atomic_store(&oa->sh->started, 1);
	do {
		/* Acquire: a stop seen means the last commit is visible. */
		stop = atomic_load(&oa->sh->stop);
		err = shg_read_lock(seg);
		if (err)
			return 251;
		n = root_node(seg, root);
		if (shg_node_is(seg, n, id) || shg_get_u64(seg, n, 0, &a) ||
		    shg_get_u64(seg, n, 1, &b) ||
		    shg_node_version(seg, n, &ver, NULL))
			err = 252;
		shg_read_unlock(seg);
		if (err)
			return err;
		if (b != 2 * a || a < last)
			return 253; /* torn, or gone backwards */
		last = a;
		if (ver)
			v1_reads++;
		else
			v0_reads++;
	} while (!stop);
	/* It read the last value, nodes of both versions, and old code
	 * registering its definition still gets the same id. */
	if (last != OLDR_UPDATES || !v0_reads || !v1_reads)
		return 254;
	if (shg_type_register(seg, "ctr", ctr_v1, 2, &id2) || id2 != id)
		return 255;
	shg_root_close(root);
	shg_seg_close(seg);
	return 0;
}

static void test_types_evolve_old_reader_process(void **state)
{
	struct oldr_shared *sh;
	struct oldr_arg oa;
	struct shg_root *root;
	struct shg_txn *txn;
	struct shg_off n;
	uint64_t a, c;
	uint32_t id;
	unsigned i;
	pid_t pid;

	(void)state;
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	assert_true(sh != MAP_FAILED);
	atomic_init(&sh->started, 0);
	atomic_init(&sh->stop, 0);
	id = reg(g_seg, "ctr", ctr_v1, 2);
	tu_ok(shg_root_create(g_seg, "ctr", &root));
	tu_ok(shg_txn_begin(root, &txn));
	tu_ok(shg_txn_node_new(txn, id, &n)); /* a = b = 0 */
	tu_ok(shg_txn_set_node(txn, SHG_REF_ROOT, n));
	tu_ok(shg_txn_commit(txn));
	oa.seg_name = g_name;
	oa.sh = sh;
	pid = tu_fork(oldr_child, &oa);
	while (!atomic_load(&sh->started))
		usleep(1000);
	for (i = 1; i <= OLDR_UPDATES; i++) {
		if (i == OLDR_UPDATES / 2) /* the new code arrives */
			assert_int_equal(reg(g_seg, "ctr", ctr_v1, 3), id);
		tu_ok(shg_txn_begin(root, &txn));
		tu_ok(shg_txn_mut(txn, SHG_REF_ROOT, &n));
		tu_ok(shg_txn_set_u64(txn, (struct shg_ref){ n, 0 }, i));
		tu_ok(shg_txn_set_u64(txn, (struct shg_ref){ n, 1 }, 2 * i));
		if (i >= OLDR_UPDATES / 2)
			tu_ok(shg_txn_set_u64(txn, (struct shg_ref){ n, 2 },
					      3 * i));
		else /* not yet a field of this node */
			assert_int_equal(
				shg_txn_set_u64(txn, (struct shg_ref){ n, 2 },
						1),
				-EINVAL);
		tu_ok(shg_txn_commit(txn));
		if (i % 20 == 0)
			usleep(2000); /* let the reader see each version */
	}
	/* Release: the reader that sees stop sees the last commit. */
	atomic_store(&sh->stop, 1);
	assert_int_equal(tu_wait(pid), 0);
	tu_ok(shg_read_lock(g_seg));
	n = root_node(g_seg, root);
	tu_ok(shg_get_u64(g_seg, n, 0, &a));
	tu_ok(shg_get_u64(g_seg, n, 2, &c));
	shg_read_unlock(g_seg);
	assert_int_equal(c, 3 * a);
	assert_int_equal(shg_check(g_seg, NULL, NULL, NULL), 0);
	shg_root_close(root);
	munmap(sh, sizeof(*sh));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_types_builtins, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_types_register_roundtrip,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_types_register_invalid,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_types_table_full, setup,
						teardown),
		cmocka_unit_test(test_types_register_concurrent),
		cmocka_unit_test_setup_teardown(test_types_lock_repair_none,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_types_lock_repair_half,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_types_corrupt_table, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_types_getters, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_types_node_invalid, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_types_bytes_validation,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_types_walk_dag, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_types_walk_cycle, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_types_walk_corrupt, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_types_walk_deep, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_types_walk_containers,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_types_evolve_register,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_types_evolve_read, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_types_evolve_mut_upgrades,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_types_evolve_snapshot,
						setup, teardown),
		cmocka_unit_test(test_types_evolve_concurrent),
		cmocka_unit_test_setup_teardown(test_types_evolve_lock_repair,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_types_evolve_old_reader_process, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
