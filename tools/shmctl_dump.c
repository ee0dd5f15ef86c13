/* SPDX-License-Identifier: MIT */
/*
 * shmctl dump: print any graph through the segment's type table -- maps
 * (entries sorted by key) and vectors as such, user types field by field,
 * root references as references (never followed), a node reached twice
 * printed once and referred to after. --depth bounds the nesting shown,
 * --limit the items shown per container.
 *
 * Which version: the root's current one, pinned for the dump; or, with
 * --version SEQ, that version if it is current or another process still
 * pins it. An older version is read without a pin of our own (see
 * shg_version_pinned): the output is buffered and printed only if the
 * version was still pinned when the dump finished.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "shmctl.h"

#define DUMP_MAX_TYPES 1024 /* type ids with a cached name */
#define DUMP_MAX_DEPTH 2000u /* recursion: ~0.9 KiB of stack a level (ASan) */

struct dump {
	struct shg_seg *seg;
	FILE *f;
	bool json;
	unsigned max_depth;
	uint64_t limit; /* items per container, 0 = all */
	struct root_names rn;
	struct shg_type_info *ti[DUMP_MAX_TYPES];
	struct shg__offset_set seen; /* printed nodes (out of memory: a
				      * node is printed again) */
	int err; /* first unreadable node */
};

/* ---- small output helpers ---------------------------------------------------- */

static void indent(struct dump *d, unsigned n)
{
	if (!d->json)
		fprintf(d->f, "%*s", (int)n, "");
}

static void note_err(struct dump *d, int err)
{
	if (!d->err)
		d->err = err;
}

static const char *type_name(struct dump *d, uint32_t id, char *buf, size_t len)
{
	if (id < DUMP_MAX_TYPES && !d->ti[id]) {
		d->ti[id] = malloc(sizeof(*d->ti[id]));
		if (d->ti[id] && shg_type_info(d->seg, id, d->ti[id])) {
			free(d->ti[id]);
			d->ti[id] = NULL;
		}
	}
	if (id < DUMP_MAX_TYPES && d->ti[id])
		return d->ti[id]->name;
	snprintf(buf, len, "type#%u", id);
	return buf;
}

static int entry_cmp(const void *a, const void *b)
{
	const struct shg_val *x = a, *y = b;
	size_t n;
	int c;

	if (x->kind == SHG_KIND_U64)
		return x->u64 < y->u64 ? -1 : x->u64 > y->u64;
	n = x->bytes.len < y->bytes.len ? x->bytes.len : y->bytes.len;
	c = n ? memcmp(x->bytes.p, y->bytes.p, n) : 0;
	if (c)
		return c;
	return x->bytes.len < y->bytes.len ? -1 : x->bytes.len > y->bytes.len;
}

static void dump_node(struct dump *d, struct shg_off n, unsigned depth,
		      unsigned ind);

/* A value inside a container or field: nodes recursively. */
static void dump_val(struct dump *d, const struct shg_val *v, unsigned depth,
		     unsigned ind)
{
	if (v->kind == SHG_KIND_NODE) {
		dump_node(d, v->node, depth, ind);
		return;
	}
	val_out(d->f, v, d->json, &d->rn, true);
	if (!d->json)
		fputc('\n', d->f);
}

/* "... N more" after a container cut by --limit. */
static void more(struct dump *d, uint64_t shown, uint64_t count, unsigned ind)
{
	if (d->json) {
		fprintf(d->f, "],\"truncated\":%s}",
			shown < count ? "true" : "false");
		return;
	}
	if (shown < count) {
		indent(d, ind);
		fprintf(d->f, "... %" PRIu64 " more (--limit)\n",
			count - shown);
	}
}

/* ---- containers ----------------------------------------------------------------- */

static void dump_map(struct dump *d, struct shg_off m, unsigned depth,
		     unsigned ind)
{
	int64_t count = shg_map_count(d->seg, m);
	struct shg_val *ent = NULL;
	struct shg_map_iter it;
	uint64_t i, n = 0, shown;
	int err;

	if (count < 0) {
		note_err(d, (int)count);
		count = 0;
	}
	ent = calloc((size_t)count * 2 + 2, sizeof(*ent));
	if (!ent)
		note_err(d, -ENOMEM);
	err = ent ? shg_map_iter_init(d->seg, m, &it) : -ENOMEM;
	while (!err && n < (uint64_t)count &&
	       !(err = shg_map_iter_next(&it, &ent[2 * n], &ent[2 * n + 1])))
		n++;
	if (err && err != -ENOENT)
		note_err(d, err);
	else if (n != (uint64_t)count)
		note_err(d, SHG_ECORRUPT); /* count and entries disagree */
	if (n > 1)
		qsort(ent, n, 2 * sizeof(*ent), entry_cmp);
	if (d->json) {
		fprintf(d->f, "{\"type\":\"map\",\"id\":\"%#" PRIx64 "\"", m.v);
		fprintf(d->f, ",\"key_kind\":");
		fprintf(d->f, n ? "\"%s\"" : "null", kind_name(ent[0].kind));
		fprintf(d->f, ",\"value_kind\":");
		fprintf(d->f, n ? "\"%s\"" : "null", kind_name(ent[1].kind));
		fprintf(d->f, ",\"count\":%" PRIu64, (uint64_t)count);
	} else {
		fprintf(d->f, "map<%s,%s> (%" PRIu64 " entries)",
			n ? kind_name(ent[0].kind) : "?",
			n ? kind_name(ent[1].kind) : "?", (uint64_t)count);
	}
	if (depth >= d->max_depth && count) {
		fprintf(d->f, d->json ? ",\"elided\":true}" : " ...\n");
		free(ent);
		return;
	}
	fprintf(d->f, d->json ? ",\"entries\":[" : "\n");
	shown = d->limit && d->limit < n ? d->limit : n;
	for (i = 0; i < shown; i++) {
		if (d->json)
			fprintf(d->f, "%s{\"key\":", i ? "," : "");
		indent(d, ind + 2);
		val_out(d->f, &ent[2 * i], d->json, &d->rn, true);
		fprintf(d->f, d->json ? ",\"value\":" : ": ");
		dump_val(d, &ent[2 * i + 1], depth + 1, ind + 2);
		if (d->json)
			fputc('}', d->f);
	}
	more(d, shown, (uint64_t)count, ind + 2);
	free(ent);
}

static void dump_vec(struct dump *d, struct shg_off vec, unsigned depth,
		     unsigned ind)
{
	int64_t len = shg_vec_len(d->seg, vec);
	struct shg_val v = { 0 };
	uint64_t i, shown;
	int err = 0;

	if (len < 0) {
		note_err(d, (int)len);
		len = 0;
	}
	if (len)
		err = shg_vec_get(d->seg, vec, 0, &v);
	if (d->json)
		fprintf(d->f,
			"{\"type\":\"vector\",\"id\":\"%#" PRIx64
			"\",\"value_kind\":%s%s%s,\"count\":%" PRIu64,
			vec.v, len && !err ? "\"" : "",
			len && !err ? kind_name(v.kind) : "null",
			len && !err ? "\"" : "", (uint64_t)len);
	else
		fprintf(d->f, "vector<%s> (%" PRIu64 " items)",
			len && !err ? kind_name(v.kind) : "?", (uint64_t)len);
	if (depth >= d->max_depth && len) {
		fprintf(d->f, d->json ? ",\"elided\":true}" : " ...\n");
		return;
	}
	fprintf(d->f, d->json ? ",\"items\":[" : "\n");
	shown = d->limit && d->limit < (uint64_t)len ? d->limit : (uint64_t)len;
	for (i = 0; i < shown && !err; i++) {
		err = shg_vec_get(d->seg, vec, i, &v);
		if (err)
			break;
		if (d->json && i)
			fputc(',', d->f);
		indent(d, ind + 2);
		if (!d->json)
			fprintf(d->f, "[%" PRIu64 "] ", i);
		dump_val(d, &v, depth + 1, ind + 2);
	}
	if (err) {
		note_err(d, err);
		shown = i;
	}
	more(d, shown, (uint64_t)len, ind + 2);
}

/* ---- user nodes ------------------------------------------------------------------ */

/* Field @i of user node @n, kind @kind, as a value. */
static int field_val(struct dump *d, struct shg_off n, unsigned i,
		     unsigned kind, struct shg_val *v)
{
	const void *p;
	size_t len;
	int err;

	memset(v, 0, sizeof(*v));
	v->kind = (enum shg_kind)kind;
	switch (kind) {
	case SHG_KIND_U64:
		return shg_get_u64(d->seg, n, i, &v->u64);
	case SHG_KIND_I64:
		return shg_get_i64(d->seg, n, i, &v->i64);
	case SHG_KIND_F64:
		return shg_get_f64(d->seg, n, i, &v->f64);
	case SHG_KIND_BYTES:
		err = shg_get_bytes(d->seg, n, i, &p, &len);
		v->bytes.p = p;
		v->bytes.len = len;
		return err;
	case SHG_KIND_NODE:
		return shg_get_node(d->seg, n, i, &v->node);
	default:
		err = shg_get_root(d->seg, n, i, &v->root);
		if (err == -ENOENT && v->root != SHG_ROOT_SLOT_NONE)
			return 1; /* dangling: the slot it named in v->root */
		if (err == -ENOENT) { /* a null reference */
			v->kind = SHG_KIND_NODE;
			v->node = SHG_OFF_NULL;
			return 0;
		}
		return err;
	}
}

static void dump_user(struct dump *d, struct shg_off n, uint32_t id,
		      unsigned depth, unsigned ind)
{
	const struct shg_type_info *ti;
	struct shg_val v;
	char b[32];
	unsigned i;
	int err;

	type_name(d, id, b, sizeof(b));
	ti = id < DUMP_MAX_TYPES ? d->ti[id] : NULL;
	if (d->json) {
		fprintf(d->f, "{\"type\":");
		shg__json_str(d->f, ti ? ti->name : b);
		fprintf(d->f, ",\"id\":\"%#" PRIx64 "\"", n.v);
	} else {
		fprintf(d->f, "%s @%#" PRIx64, ti ? ti->name : b, n.v);
	}
	if (!ti || (depth >= d->max_depth && ti->nfields)) {
		if (!ti)
			note_err(d, SHG_ECORRUPT);
		fprintf(d->f, d->json ? ",\"elided\":true}" : " ...\n");
		return;
	}
	fprintf(d->f, d->json ? ",\"fields\":{" : "\n");
	for (i = 0; i < ti->nfields; i++) {
		if (d->json) {
			fprintf(d->f, "%s", i ? "," : "");
			shg__json_str(d->f, ti->field[i].name);
			fputc(':', d->f);
		} else {
			indent(d, ind + 2);
			fprintf(d->f, "%s: ", ti->field[i].name);
		}
		err = field_val(d, n, i, ti->field[i].kind, &v);
		if (err == 1) { /* a root that no longer exists (man page) */
			if (d->json)
				fprintf(d->f, "{\"root\":null,\"slot\":%u}",
					v.root);
			else
				fprintf(d->f, "root:#%u(gone)\n", v.root);
			continue;
		}
		if (err) {
			note_err(d, err);
			fprintf(d->f, d->json ? "null" : "(unreadable)\n");
			continue;
		}
		dump_val(d, &v, depth + 1, ind + 2);
	}
	if (d->json)
		fprintf(d->f, "}}");
}

static const char *builtin_name(uint32_t id)
{
	switch (id) {
	case SHG_TYPE_VERSION:
		return "version";
	case SHG_TYPE_BYTES:
		return "bytes";
	case SHG_TYPE_MAP_LEAF:
		return "map-collision-node";
	case SHG_TYPE_VEC_NODE:
		return "vector-trie-node";
	default:
		return "builtin";
	}
}

static void dump_node(struct dump *d, struct shg_off n, unsigned depth,
		      unsigned ind)
{
	uint32_t id;
	int err = 0;

	if (shg_off_is_null(n)) {
		fprintf(d->f, d->json ? "null" : "null\n");
		return;
	}
	if (shg__oset_has(&d->seen, n.v)) {
		if (d->json)
			fprintf(d->f, "{\"ref\":\"%#" PRIx64 "\"}", n.v);
		else
			fprintf(d->f, "@%#" PRIx64 " (shown above)\n", n.v);
		return;
	}
	id = shg_node_type(d->seg, n, &err);
	if (!id) {
		note_err(d, err);
		if (d->json)
			fprintf(d->f, "{\"error\":");
		else
			fprintf(d->f, "(unreadable node @%#" PRIx64 ": ", n.v);
		if (d->json)
			shg__json_str(d->f, shg_strerror(err));
		else
			fputs(shg_strerror(err), d->f);
		fprintf(d->f, d->json ? "}" : ")\n");
		return;
	}
	(void)shg__oset_add(&d->seen, n.v);
	if (id == SHG_TYPE_MAP) {
		dump_map(d, n, depth, ind);
	} else if (id == SHG_TYPE_VEC) {
		dump_vec(d, n, depth, ind);
	} else if (id < SHG_TYPE_FIRST_USER) {
		/* A bytes node linked as a node, or a version or container
		 * node where a graph node belongs: the public API reads
		 * none of them as values, so they are named only. */
		if (d->json)
			fprintf(d->f,
				"{\"type\":\"%s\",\"id\":\"%#" PRIx64 "\"}",
				builtin_name(id), n.v);
		else
			fprintf(d->f, "%s @%#" PRIx64 "\n", builtin_name(id),
				n.v);
	} else {
		dump_user(d, n, id, depth, ind);
	}
}

/* ---- the command ---------------------------------------------------------------- */

static void dump_header(struct dump *d, const char *root,
			const struct shg_version_info *vi, bool current)
{
	char b1[32], b2[32];

	if (d->json) {
		fprintf(d->f, "{\"root\":");
		shg__json_str(d->f, root);
		fprintf(d->f,
			",\"version\":{\"seq\":%" PRIu64 ",\"parent\":%" PRIu64
			",\"commit_ns\":%" PRIu64 ",\"bytes\":%" PRIu64
			",\"current\":%s},\"graph\":",
			vi->seq, vi->parent, vi->commit_ns, vi->bytes,
			current ? "true" : "false");
		return;
	}
	fprintf(d->f,
		"root '%s' version %" PRIu64 "%s (parent %" PRIu64
		", committed %s, %s reachable)\n",
		root, vi->seq, current ? "" : " [pinned, not current]",
		vi->parent, fmt_age(vi->commit_ns, b1, sizeof(b1)),
		shg__fmt_bytes(vi->bytes, b2, sizeof(b2)));
}

/* Dump the version at @ver into d->f. */
static int dump_version(struct dump *d, const char *root, struct shg_off ver,
			bool current)
{
	struct shg_version_info vi;
	int err = shg_version_info(d->seg, ver, &vi);

	if (err)
		return err;
	dump_header(d, root, &vi, current);
	dump_node(d, vi.node, 0, 0);
	if (d->json)
		fprintf(d->f, "}\n");
	return 0;
}

static void dump_free(struct dump *d)
{
	unsigned i;

	for (i = 0; i < DUMP_MAX_TYPES; i++)
		free(d->ti[i]);
	shg__oset_free(&d->seen);
	root_names_free(&d->rn);
}

/* An older version that another process pins: buffered, then checked. */
static int dump_pinned(struct dump *d, struct cli *c, struct shg_root *r,
		       uint64_t cur_seq)
{
	struct shg_off ver, again;
	char *buf = NULL;
	size_t len = 0;
	int err;

	err = shg_version_pinned(r, c->version, &ver);
	if (err == -ENOENT)
		return failf("%s: version %" PRIu64 " is not reachable: the "
			     "current version is %" PRIu64
			     " and no process pins %" PRIu64,
			     c->arg[0], c->version, cur_seq, c->version);
	if (err)
		return fail(c->arg[0], err);
	d->f = open_memstream(&buf, &len);
	if (!d->f)
		return fail("dump", -errno);
	err = dump_version(d, c->arg[0], ver, false);
	fclose(d->f);
	d->f = stdout;
	if (!err &&
	    (shg_version_pinned(r, c->version, &again) || again.v != ver.v)) {
		free(buf);
		return failf("%s: version %" PRIu64 " was released while it "
			     "was being read; nothing printed",
			     c->arg[0], c->version);
	}
	if (!err)
		fwrite(buf, 1, len, stdout);
	free(buf);
	return err ? fail("dump", err) : 0;
}

static int dump_root(struct dump *d, struct cli *c, struct shg_root *r)
{
	struct shg_version_info vi;
	struct shg_pin *pin;
	int err = shg_pin_current(r, &pin);

	if (err == -ENOENT) {
		if (c->seen & OPT_VERSION)
			return failf("%s: no version %" PRIu64
				     " (the root never committed)",
				     c->arg[0], c->version);
		if (c->json) {
			printf("{\"root\":");
			shg__json_str(stdout, c->arg[0]);
			printf(",\"version\":null,\"graph\":null}\n");
		} else {
			printf("root '%s' has no version yet\n", c->arg[0]);
		}
		return 0;
	}
	if (err)
		return fail(c->arg[0], err);
	err = shg_version_info(d->seg, shg_pin_version(pin), &vi);
	if (!err && (c->seen & OPT_VERSION) && vi.seq != c->version) {
		shg_unpin(pin);
		return dump_pinned(d, c, r, vi.seq);
	}
	if (!err)
		err = dump_version(d, c->arg[0], shg_pin_version(pin), true);
	shg_unpin(pin);
	return err ? fail("dump", err) : 0;
}

int dump_value(FILE *f, struct shg_seg *seg, struct shg_off node, bool json,
	       unsigned depth)
{
	struct dump *d = calloc(1, sizeof(*d));
	int err;

	if (!d)
		return -ENOMEM;
	d->seg = seg;
	d->f = f;
	d->json = json;
	d->max_depth = depth < DUMP_MAX_DEPTH ? depth : DUMP_MAX_DEPTH;
	(void)root_names_load(seg, &d->rn);
	dump_node(d, node, 0, 0);
	err = d->err;
	dump_free(d);
	free(d);
	return err;
}

int cmd_dump(struct cli *c, struct shg_seg *seg)
{
	struct shg_root *r;
	struct dump *d;
	int rc, err;

	d = calloc(1, sizeof(*d));
	if (!d)
		return fail("dump", -ENOMEM);
	d->seg = seg;
	d->f = stdout;
	d->json = c->json;
	d->max_depth = c->seen & OPT_DEPTH ? c->depth : 64;
	if (d->max_depth > DUMP_MAX_DEPTH)
		d->max_depth = DUMP_MAX_DEPTH;
	d->limit = c->limit;
	err = shg_root_open(seg, c->arg[0], &r);
	if (err) {
		free(d);
		if (err == -ENOENT)
			return failf("%s: no root '%s'", c->seg_name,
				     c->arg[0]);
		return fail(c->arg[0], err);
	}
	(void)root_names_load(seg, &d->rn);
	rc = dump_root(d, c, r);
	if (!rc && d->err)
		rc = failf("dump: %s: part of the graph is unreadable: %s",
			   c->arg[0], shg_strerror(d->err));
	shg_root_close(r);
	dump_free(d);
	free(d);
	return rc;
}
