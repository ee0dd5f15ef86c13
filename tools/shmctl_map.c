/* SPDX-License-Identifier: MIT */
/*
 * shmctl map commands on a root whose graph is a map: put (creating the
 * root and map if absent), get, del, ls.
 *
 * A map's key kind (U64 or BYTES) and value kind (U64, I64, F64, BYTES,
 * NODE, ROOT) are fixed when it is made, and KEY and VALUE are read as
 * those kinds. The public API has no call that returns them, so they are
 * found out: the key kind by a u64 lookup (-EINVAL on a bytes-keyed map),
 * the value kind from the first entry, and for an empty map by storing a
 * zero value of each kind in a txn that is then aborted (the map refuses
 * a value of another kind with -EINVAL and nothing is published).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "shmctl.h"

#define ENOTMAP (-ENOTDIR) /* the graph's root node is not a map */

/* What a map holds; 0: not known (no map yet). */
struct map_kinds {
	unsigned key; /* SHG_KIND_U64 or SHG_KIND_BYTES */
	unsigned val;
};

/* A KEY as the map's key kind reads it. */
struct map_key {
	unsigned kind;
	uint64_t u64;
	const void *p;
	size_t len;
	uint8_t *buf; /* decoded --key-hex, to free */
};

struct put_arg {
	struct shg_seg *seg;
	struct map_kinds mk; /* of the map to make if the graph is empty */
	struct map_key key;
	struct shg_val val;
};

/* "map<KEY,VALUE>", "?" for what is not known. */
static const char *map_desc(const struct map_kinds *mk, char *buf, size_t len)
{
	snprintf(buf, len, "map<%s,%s>", mk->key ? kind_name(mk->key) : "?",
		 mk->val ? kind_name(mk->val) : "?");
	return buf;
}

/* "ROOT: map<K,V>; " then the message: a kind mismatch, exit 2. */
static int kind_fail(const char *root, const struct map_kinds *mk,
		     const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int kind_fail(const char *root, const struct map_kinds *mk,
		     const char *fmt, ...)
{
	char d[64], m[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(m, sizeof(m), fmt, ap);
	va_end(ap);
	return failf("%s: %s; %s", root, map_desc(mk, d, sizeof(d)), m);
}

/* ENOTMAP unless the txn's graph is empty or a map (base pinned). */
static int txn_map_check(struct shg_seg *seg, struct shg_txn *txn)
{
	struct shg_off top = shg_txn_root_node(txn);
	int err = 0;

	if (shg_off_is_null(top) ||
	    shg_node_type(seg, top, &err) == SHG_TYPE_MAP)
		return 0;
	return err ? err : ENOTMAP;
}

static int map_put(struct shg_txn *txn, const struct map_key *k,
		   const struct shg_val *v)
{
	if (k->kind == SHG_KIND_U64)
		return shg_txn_map_put_u64(txn, SHG_REF_ROOT, k->u64, v);
	return shg_txn_map_put_bytes(txn, SHG_REF_ROOT, k->p, k->len, v);
}

static int put_fn(struct shg_txn *txn, void *p)
{
	struct put_arg *a = p;
	int err = txn_map_check(a->seg, txn);

	if (err)
		return err;
	if (shg_off_is_null(shg_txn_root_node(txn)))
		err = shg_txn_map_new(txn, SHG_REF_ROOT, a->key.kind,
				      a->val.kind);
	return err ? err : map_put(txn, &a->key, &a->val);
}

static int del_fn(struct shg_txn *txn, void *p)
{
	struct put_arg *a = p;
	int err = txn_map_check(a->seg, txn);

	if (err)
		return err;
	if (a->key.kind == SHG_KIND_U64)
		return shg_txn_map_del_u64(txn, SHG_REF_ROOT, a->key.u64);
	return shg_txn_map_del_bytes(txn, SHG_REF_ROOT, a->key.p, a->key.len);
}

static int open_map_root(struct cli *c, struct shg_seg *seg, bool create,
			 struct shg_root **root)
{
	int err = shg_root_open(seg, c->arg[0], root);

	if (err == -ENOENT && create) {
		err = shg_root_create(seg, c->arg[0], root);
		if (err == -EEXIST)
			err = shg_root_open(seg, c->arg[0], root);
	}
	if (err == -ENOENT)
		return failf("%s: no root '%s'", c->seg_name, c->arg[0]);
	if (err)
		return fail(c->arg[0], err);
	return 0;
}

/*
 * The map at @root's current version (read section held): null if the
 * root has no version or an empty graph; ENOTMAP if its root node is
 * something else.
 */
static int current_map(struct shg_seg *seg, struct shg_root *root,
		       struct shg_off *map)
{
	struct shg_version_info vi;
	uint32_t type;
	int err;

	*map = SHG_OFF_NULL;
	if (shg_version_info(seg, shg_version_current(root), &vi))
		return 0;
	if (shg_off_is_null(vi.node))
		return 0;
	type = shg_node_type(seg, vi.node, &err);
	if (!type)
		return err;
	if (type != SHG_TYPE_MAP)
		return ENOTMAP;
	*map = vi.node;
	return 0;
}

/*
 * Key and value kinds of @map (read section held); all 0 for a null map,
 * the value kind 0 for an empty one.
 */
static int read_kinds(struct shg_seg *seg, struct shg_off map,
		      struct map_kinds *mk)
{
	struct shg_map_iter it;
	struct shg_val k, v;
	int err;

	mk->key = mk->val = 0;
	if (shg_off_is_null(map))
		return 0;
	err = shg_map_get_u64(seg, map, 0, &v);
	if (err == -EINVAL)
		mk->key = SHG_KIND_BYTES;
	else if (!err || err == -ENOENT)
		mk->key = SHG_KIND_U64;
	else
		return err;
	err = shg_map_iter_init(seg, map, &it);
	if (!err)
		err = shg_map_iter_next(&it, &k, &v);
	if (!err)
		mk->val = v.kind;
	return err == -ENOENT ? 0 : err;
}

/*
 * The value kind of the empty map at @root (key kind known): store a zero
 * value of each kind in a txn that is aborted, so nothing is published.
 * A ROOT value is the one kind left when all others are refused.
 */
static int probe_val_kind(struct shg_seg *seg, struct shg_root *root,
			  struct map_kinds *mk)
{
	static const unsigned try[] = { SHG_KIND_U64, SHG_KIND_I64,
					SHG_KIND_F64, SHG_KIND_BYTES,
					SHG_KIND_NODE };
	struct map_key k = { .kind = mk->key, .p = "" };
	struct shg_txn *txn;
	unsigned i;
	int err;

	err = shg_txn_begin(root, &txn);
	if (err)
		return err;
	err = txn_map_check(seg, txn);
	for (i = 0; !err && i < sizeof(try) / sizeof(try[0]); i++) {
		struct shg_val v = { .kind = try[i] };

		if (try[i] == SHG_KIND_BYTES)
			v.bytes.p = "";
		err = map_put(txn, &k, &v);
		if (!err)
			mk->val = try[i];
		if (err != -EINVAL)
			break;
		err = 0;
	}
	if (!err && !mk->val)
		mk->val = SHG_KIND_ROOT;
	(void)shg_txn_abort(txn);
	return err;
}

/* A u64 in decimal or 0x-hex, nothing else (no sign, no spaces). */
static bool parse_u64_text(const char *s, uint64_t *out)
{
	int base = s[0] == '0' && (s[1] == 'x' || s[1] == 'X') ? 16 : 10;
	char *end;

	if (!(s[0] >= '0' && s[0] <= '9'))
		return false;
	errno = 0;
	*out = strtoull(s, &end, base);
	return !errno && end != s && !*end;
}

static bool parse_i64_text(const char *s, int64_t *out)
{
	const char *d = s[0] == '-' || s[0] == '+' ? s + 1 : s;
	uint64_t u;

	if (!parse_u64_text(d, &u))
		return false;
	if (s[0] == '-') {
		if (u > (uint64_t)INT64_MAX + 1)
			return false;
		*out = u ? -(int64_t)(u - 1) - 1 : 0;
		return true;
	}
	if (u > INT64_MAX)
		return false;
	*out = (int64_t)u;
	return true;
}

static bool parse_f64_text(const char *s, double *out)
{
	char *end;

	errno = 0;
	*out = strtod(s, &end);
	return end != s && !*end && errno != ERANGE;
}

/* KEY @s as @mk's key kind, or per --key-int for a new map. */
static int parse_key_text(struct cli *c, const struct map_kinds *mk,
			  const char *s, struct map_key *k)
{
	unsigned kind = mk->key	   ? mk->key :
			c->key_int ? SHG_KIND_U64 :
				     SHG_KIND_BYTES;

	memset(k, 0, sizeof(*k));
	k->kind = kind;
	if (c->key_int && kind != SHG_KIND_U64)
		return kind_fail(c->arg[0], mk,
				 "--key-int given, but its keys are bytes");
	if (c->key_hex && kind != SHG_KIND_BYTES)
		return kind_fail(c->arg[0], mk,
				 "--key-hex given, but its keys are u64");
	if (kind == SHG_KIND_U64) {
		if (!parse_u64_text(s, &k->u64))
			return kind_fail(c->arg[0], mk, "%s is not a u64 key",
					 s);
		return 0;
	}
	if (c->key_hex) {
		if (hex_decode(s, &k->buf, &k->len))
			return failf("--key-hex: not hex: %s", s);
		k->p = k->buf;
		return 0;
	}
	k->p = s;
	k->len = strlen(s);
	return 0;
}

/* KEY (c->arg[1]) as parse_key_text() reads it. */
static int parse_key(struct cli *c, const struct map_kinds *mk,
		     struct map_key *k)
{
	return parse_key_text(c, mk, c->arg[1], k);
}

/* The slot of the root named @name (or "root:NAME"), for a ROOT value. */
static int root_slot(struct shg_seg *seg, const char *name, uint32_t *slot)
{
	struct root_names rn = { 0 };
	int i, err;

	if (!strncmp(name, "root:", 5))
		name += 5;
	err = root_names_load(seg, &rn);
	if (err)
		return err;
	err = -ENOENT;
	for (i = 0; i < rn.n; i++)
		if (!rn.ri[i].removed && !strcmp(rn.ri[i].name, name)) {
			*slot = rn.ri[i].slot;
			err = 0;
			break;
		}
	root_names_free(&rn);
	return err;
}

/* The value kind put stores: the map's, else --kind, --int, bytes. */
static int put_kind(struct cli *c, const struct map_kinds *mk, unsigned *kind)
{
	const char *s = c->arg[2];

	if (mk->val) {
		*kind = mk->val;
		if (c->kind && c->kind != mk->val)
			return kind_fail(c->arg[0], mk,
					 "--kind %s given, but its values "
					 "differ",
					 kind_name(c->kind));
	} else if (c->kind) {
		*kind = c->kind;
	} else if (c->enc == ENC_INT) {
		*kind = s[0] == '-' ? SHG_KIND_I64 : SHG_KIND_U64;
	} else {
		*kind = SHG_KIND_BYTES;
	}
	if (c->enc == ENC_INT && *kind != SHG_KIND_U64 && *kind != SHG_KIND_I64)
		return kind_fail(c->arg[0], mk,
				 "--int given, but the values are %s",
				 kind_name(*kind));
	if ((c->enc == ENC_HEX || c->enc == ENC_BASE64) &&
	    *kind != SHG_KIND_BYTES)
		return kind_fail(c->arg[0], mk,
				 "--%s applies to bytes values only",
				 c->enc == ENC_HEX ? "hex" : "base64");
	if (*kind == SHG_KIND_NODE)
		return kind_fail(c->arg[0], mk,
				 "put: node values are read-only in shmctl "
				 "(see shmctl dump)");
	return 0;
}

/* VALUE (c->arg[2]) as @kind into @v; *@buf receives memory to free. */
static int put_value(struct cli *c, struct shg_seg *seg,
		     const struct map_kinds *mk, unsigned kind,
		     struct shg_val *v, uint8_t **buf)
{
	const char *s = c->arg[2];
	struct map_kinds shown = { mk->key    ? mk->key :
				   c->key_int ? SHG_KIND_U64 :
						SHG_KIND_BYTES,
				   kind };
	size_t len = 0;
	int err = 0;

	*buf = NULL;
	memset(v, 0, sizeof(*v));
	v->kind = (enum shg_kind)kind;
	switch (kind) {
	case SHG_KIND_U64:
		if (!parse_u64_text(s, &v->u64))
			return kind_fail(c->arg[0], &shown, "%s is not a u64",
					 s);
		return 0;
	case SHG_KIND_I64:
		if (!parse_i64_text(s, &v->i64))
			return kind_fail(c->arg[0], &shown, "%s is not an i64",
					 s);
		return 0;
	case SHG_KIND_F64:
		if (!parse_f64_text(s, &v->f64))
			return kind_fail(c->arg[0], &shown, "%s is not an f64",
					 s);
		return 0;
	case SHG_KIND_ROOT:
		err = root_slot(seg, s, &v->root);
		if (err == -ENOENT)
			return kind_fail(c->arg[0], &shown,
					 "%s does not name a root", s);
		return err ? fail("put", err) : 0;
	default:
		break;
	}
	if (c->enc == ENC_HEX)
		err = hex_decode(s, buf, &len);
	else if (c->enc == ENC_BASE64)
		err = base64_decode(s, buf, &len);
	if (err)
		return failf("not %s: %s", c->enc == ENC_HEX ? "hex" : "base64",
			     s);
	v->bytes.p = *buf ? (const void *)*buf : s;
	v->bytes.len = *buf ? len : strlen(s);
	return 0;
}

/* Message and exit status for a map that is not there as a map. */
static int map_err(struct cli *c, const char *what, int err)
{
	if (err == ENOTMAP)
		return failf("%s: its graph is not a map (see shmctl dump)",
			     c->arg[0]);
	return fail(what, err);
}

/*
 * Kinds of the map at @root, with the value kind of an empty map probed
 * if @need_val. Returns an exit status (0: go on).
 */
static int root_kinds(struct cli *c, struct shg_seg *seg, struct shg_root *root,
		      bool need_val, struct map_kinds *mk)
{
	struct shg_off map = SHG_OFF_NULL;
	int err = shg_read_lock(seg);

	if (!err) {
		err = current_map(seg, root, &map);
		if (!err)
			err = read_kinds(seg, map, mk);
		shg_read_unlock(seg);
	}
	if (!err && need_val && mk->key && !mk->val)
		err = probe_val_kind(seg, root, mk);
	return err ? map_err(c, c->cmd, err) : 0;
}

int cmd_put(struct cli *c, struct shg_seg *seg)
{
	struct put_arg a = { .seg = seg };
	struct shg_root *root = NULL;
	uint8_t *buf = NULL;
	unsigned kind;
	char d[64];
	int err, rc = 0;

	/* An absent root is made only once KEY and VALUE parse: a refused
	 * put leaves nothing behind. */
	err = shg_root_open(seg, c->arg[0], &root);
	if (err && err != -ENOENT)
		return fail(c->arg[0], err);
	if (!err)
		rc = root_kinds(c, seg, root, true, &a.mk);
	if (!rc)
		rc = put_kind(c, &a.mk, &kind);
	if (!rc)
		rc = parse_key(c, &a.mk, &a.key);
	if (!rc)
		rc = put_value(c, seg, &a.mk, kind, &a.val, &buf);
	if (!rc && !root)
		rc = open_map_root(c, seg, true, &root);
	if (rc) {
		if (root)
			shg_root_close(root);
		free(a.key.buf);
		free(buf);
		return rc;
	}
	err = shg_update(root, put_fn, &a, 0);
	shg_root_close(root);
	free(a.key.buf);
	free(buf);
	if (err == -EINVAL) /* the map was replaced since its kinds were read */
		return failf(
			"%s: the map is no longer a %s (changed meanwhile; "
			"see shmctl dump)",
			c->arg[0], map_desc(&a.mk, d, sizeof(d)));
	if (err == -ENOENT && a.val.kind == SHG_KIND_ROOT)
		return failf("%s: root value %s was removed meanwhile",
			     c->arg[0], c->arg[2]);
	if (err)
		return map_err(c, "put", err);
	if (c->json) {
		printf("{\"ok\":true,\"root\":");
		shg__json_str(stdout, c->arg[0]);
		printf(",\"key\":");
		shg__json_str(stdout, c->arg[1]);
		printf(",\"created\":%s}\n", a.mk.key ? "false" : "true");
	}
	return 0;
}

/* get's output of one value, in the encoding asked for. */
static int get_out(struct cli *c, struct shg_seg *seg, const struct shg_val *v,
		   const struct root_names *rn)
{
	const char *tag = c->enc == ENC_HEX ? "hex" : "base64";
	const void *p = v->bytes.p ? v->bytes.p : "";

	if (v->kind == SHG_KIND_NODE) /* dump's text ends in a newline */
		return dump_value(stdout, seg, v->node, c->json, 64);
	if (v->kind != SHG_KIND_BYTES ||
	    (c->enc != ENC_HEX && c->enc != ENC_BASE64)) {
		val_out(stdout, v, c->json, rn, false);
	} else {
		if (c->json)
			printf("{\"%s\":\"", tag);
		if (c->enc == ENC_HEX)
			hex_out(stdout, p, v->bytes.len);
		else
			base64_out(stdout, p, v->bytes.len);
		if (c->json)
			printf("\"}");
	}
	if (!c->json)
		putchar('\n');
	return 0;
}

/* Exit status and message of get/del for @err (0: success). */
static int key_result(struct cli *c, const char *what, int err)
{
	if (err == -ENOENT) {
		fprintf(stderr, "shmctl: %s: no key '%s'\n", c->arg[0],
			c->arg[1]);
		return EXIT_PROBLEMS;
	}
	return err ? map_err(c, what, err) : 0;
}

static void ls_val(struct shg_seg *seg, const struct shg_val *v, bool json,
		   const struct root_names *rn);

/* The keys of a get, parsed, and what the batched lookup gave for them. */
struct get_batch {
	size_t n;
	struct map_key *k;
	uint64_t *u64; /* keys of a u64-keyed map */
	const void **p; /* keys of a bytes-keyed map ... */
	size_t *len; /* ... and their lengths */
	struct shg_val *v;
	int *res; /* per key: 0, -ENOENT or a negative code */
};

static void get_batch_free(struct get_batch *b)
{
	size_t i;

	for (i = 0; b->k && i < b->n; i++)
		free(b->k[i].buf);
	free(b->k);
	free(b->u64);
	free(b->p);
	free(b->len);
	free(b->v);
	free(b->res);
}

/* Parse KEY... (c->arg[1..]) as @mk's key kind. Returns an exit status. */
static int get_batch_parse(struct cli *c, const struct map_kinds *mk,
			   struct get_batch *b)
{
	size_t i;
	int rc;

	b->n = (size_t)c->nargs - 1;
	b->k = calloc(b->n, sizeof(*b->k));
	b->u64 = calloc(b->n, sizeof(*b->u64));
	b->p = calloc(b->n, sizeof(*b->p));
	b->len = calloc(b->n, sizeof(*b->len));
	b->v = calloc(b->n, sizeof(*b->v));
	b->res = calloc(b->n, sizeof(*b->res));
	if (!b->k || !b->u64 || !b->p || !b->len || !b->v || !b->res)
		return fail("get", -ENOMEM);
	for (i = 0; i < b->n; i++) {
		rc = parse_key_text(c, mk, c->arg[1 + i], &b->k[i]);
		if (rc)
			return rc;
		b->u64[i] = b->k[i].u64;
		b->p[i] = b->k[i].p;
		b->len[i] = b->k[i].len;
	}
	return 0;
}

/*
 * Look every key of @b up in @map with one batched call (read section
 * held, so all results come from one version). Returns 0 or the code of
 * a bad map root; per-key codes are in b->res.
 */
static int get_batch_run(struct shg_seg *seg, struct shg_off map,
			 struct get_batch *b)
{
	int64_t r;
	size_t i;

	if (!b->n)
		return 0;
	if (b->k[0].kind == SHG_KIND_U64)
		r = shg_map_get_many_u64(seg, map, b->n, b->u64, b->v, b->res);
	else
		r = shg_map_get_many_bytes(seg, map, b->n, b->p, b->len, b->v,
					   b->res);
	if (r >= 0)
		return 0;
	/* A bad root gives every key its code; else only some keys met
	 * corrupt data and carry it, the others are answered. */
	for (i = 0; i < b->n; i++)
		if (b->res[i] != (int)r)
			return 0;
	return (int)r;
}

/* One key's line (text) or array element (JSON) of a several-key get. */
static void get_many_out(struct cli *c, struct shg_seg *seg,
			 const struct get_batch *b, size_t i,
			 const struct root_names *rn)
{
	const struct shg_val *v = &b->v[i];
	const char *key = c->arg[1 + i];

	if (c->json) {
		printf("%s{\"key\":", i ? "," : "");
		shg__json_str(stdout, key);
		if (b->res[i]) {
			printf(",\"found\":false");
			if (b->res[i] != -ENOENT) {
				printf(",\"error\":");
				shg__json_str(stdout, shg_strerror(b->res[i]));
			}
			printf("}");
			return;
		}
		printf(",\"found\":true,\"kind\":\"%s\",\"value\":",
		       kind_name(v->kind));
		(void)get_out(c, seg, v, rn);
		printf("}");
		return;
	}
	if (b->res[i] == -ENOENT) {
		fprintf(stderr, "shmctl: %s: no key '%s'\n", c->arg[0], key);
		return;
	}
	if (b->res[i]) {
		fprintf(stderr, "shmctl: %s: key '%s': %s\n", c->arg[0], key,
			shg_strerror(b->res[i]));
		return;
	}
	printf("%s\t", key);
	if (v->kind == SHG_KIND_NODE) { /* one line: as ls shows it */
		ls_val(seg, v, false, rn);
		putchar('\n');
		return;
	}
	(void)get_out(c, seg, v, rn);
}

/* The output of a one-key get, as it has always been. */
static void get_one_out(struct cli *c, struct shg_seg *seg,
			const struct get_batch *b, const struct root_names *rn)
{
	if (b->res[0])
		return;
	if (c->json) {
		printf("{\"key\":");
		shg__json_str(stdout, c->arg[1]);
		printf(",\"kind\":\"%s\",\"value\":", kind_name(b->v[0].kind));
	}
	(void)get_out(c, seg, &b->v[0], rn);
	if (c->json)
		printf("}\n");
}

/*
 * get ROOT KEY [KEY...]: all keys are parsed first (a bad one is exit 2
 * with no output), then answered in one read section from one version of
 * the map by one batched lookup. Exit 2 if any key's lookup failed, else
 * 1 if any is absent, else 0.
 */
int cmd_get(struct cli *c, struct shg_seg *seg)
{
	struct root_names rn = { 0 };
	struct map_kinds mk = { 0 };
	struct get_batch b = { 0 };
	struct shg_root *root;
	struct shg_off map;
	bool missing = false;
	int err, rc, bad = 0;
	size_t i;

	rc = open_map_root(c, seg, false, &root);
	if (rc)
		return rc;
	(void)root_names_load(seg, &rn);
	err = shg_read_lock(seg);
	if (err) {
		rc = fail("get", err);
		goto out;
	}
	err = current_map(seg, root, &map);
	if (!err)
		err = read_kinds(seg, map, &mk);
	if (!err)
		rc = get_batch_parse(c, &mk, &b);
	if (!err && !rc)
		err = get_batch_run(seg, map, &b);
	if (!err && !rc) {
		if (b.n == 1)
			get_one_out(c, seg, &b, &rn);
		else if (c->json)
			printf("[");
		for (i = 0; b.n > 1 && i < b.n; i++)
			get_many_out(c, seg, &b, i, &rn);
		if (b.n > 1 && c->json)
			printf("]\n");
	}
	shg_read_unlock(seg);
	if (rc || err) {
		if (!rc)
			rc = map_err(c, "get", err);
		goto out;
	}
	for (i = 0; i < b.n; i++) {
		missing |= b.res[i] == -ENOENT;
		if (b.res[i] && b.res[i] != -ENOENT && !bad)
			bad = b.res[i];
	}
	if (b.n == 1) /* message and status as before */
		rc = key_result(c, "get", b.res[0]);
	else if (bad)
		rc = EXIT_ERROR;
	else
		rc = missing ? EXIT_PROBLEMS : 0;
out:
	shg_root_close(root);
	root_names_free(&rn);
	get_batch_free(&b);
	return rc;
}

int cmd_del(struct cli *c, struct shg_seg *seg)
{
	struct put_arg a = { .seg = seg };
	struct shg_root *root;
	int err, rc;

	rc = open_map_root(c, seg, false, &root);
	if (rc)
		return rc;
	rc = root_kinds(c, seg, root, false, &a.mk);
	if (!rc)
		rc = parse_key(c, &a.mk, &a.key);
	if (rc) {
		shg_root_close(root);
		free(a.key.buf);
		return rc;
	}
	err = a.mk.key ? shg_update(root, del_fn, &a, 0) : -ENOENT;
	shg_root_close(root);
	free(a.key.buf);
	if (err)
		return key_result(c, "del", err);
	if (c->json) {
		printf("{\"deleted\":true,\"key\":");
		shg__json_str(stdout, c->arg[1]);
		printf("}\n");
	}
	return 0;
}

/* A value as ls shows it: node values as dump's first line of them. */
static void ls_val(struct shg_seg *seg, const struct shg_val *v, bool json,
		   const struct root_names *rn)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f;

	if (v->kind != SHG_KIND_NODE) {
		val_out(stdout, v, json, rn, false);
		return;
	}
	f = open_memstream(&buf, &len);
	if (!f) {
		val_out(stdout, v, json, rn, false);
		return;
	}
	(void)dump_value(f, seg, v->node, json, 0);
	fclose(f);
	if (len && buf[len - 1] == '\n')
		len--;
	fwrite(buf, 1, len, stdout);
	free(buf);
}

/* Every entry of the map at @map (read section held). */
static int ls_entries(struct cli *c, struct shg_seg *seg, struct shg_off map,
		      const struct root_names *rn, int *n)
{
	struct shg_map_iter it;
	struct shg_val k, v;
	int err;

	if (shg_off_is_null(map))
		return 0;
	err = shg_map_iter_init(seg, map, &it);
	while (!err && (err = shg_map_iter_next(&it, &k, &v)) == 0) {
		if (c->json)
			printf("%s{\"key\":", *n ? "," : "");
		val_out(stdout, &k, c->json, rn, false);
		printf(c->json ? ",\"value\":" : "\t");
		ls_val(seg, &v, c->json, rn);
		printf(c->json ? "}" : "\n");
		(*n)++;
	}
	return err == -ENOENT ? 0 : err;
}

int cmd_ls(struct cli *c, struct shg_seg *seg)
{
	struct root_names rn = { 0 };
	struct map_kinds mk = { 0 };
	struct shg_root *root;
	struct shg_off map;
	int err, rc, n = 0;

	rc = open_map_root(c, seg, false, &root);
	if (rc)
		return rc;
	(void)root_names_load(seg, &rn);
	err = shg_read_lock(seg);
	if (!err) {
		err = current_map(seg, root, &map);
		if (!err)
			err = read_kinds(seg, map, &mk);
		if (!err && c->json) {
			printf("{\"key_kind\":");
			printf(mk.key ? "\"%s\"" : "null", kind_name(mk.key));
			printf(",\"value_kind\":");
			printf(mk.val ? "\"%s\"" : "null", kind_name(mk.val));
			printf(",\"entries\":[");
		}
		if (!err)
			err = ls_entries(c, seg, map, &rn, &n);
		if (c->json && !err)
			printf("],\"count\":%d}\n", n);
		shg_read_unlock(seg);
	}
	shg_root_close(root);
	root_names_free(&rn);
	return err ? map_err(c, "ls", err) : 0;
}
