/* SPDX-License-Identifier: MIT */
/*
 * shmctl map commands on a root whose graph is a map with string (bytes)
 * keys: put (creating the root and map if absent), get, del, ls. Values
 * are strings or bytes (given as text, --hex or --base64) or integers
 * (--int); get and ls print any value kind the map holds.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "shmctl.h"

#define ENOTMAP (-ENOTDIR) /* the graph's root node is not a map */

struct put_arg {
	struct shg_seg *seg;
	const char *key;
	struct shg_val val;
	bool create; /* the root was just created: make the map */
};

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

static int put_fn(struct shg_txn *txn, void *p)
{
	struct put_arg *a = p;
	int err = a->create ? 0 : txn_map_check(a->seg, txn);

	if (err)
		return err;
	if (a->create || shg_off_is_null(shg_txn_root_node(txn)))
		err = shg_txn_map_new(txn, SHG_REF_ROOT, SHG_KIND_BYTES,
				      a->val.kind);
	if (!err)
		err = shg_txn_map_put_bytes(txn, SHG_REF_ROOT, a->key,
					    strlen(a->key), &a->val);
	return err;
}

static int del_fn(struct shg_txn *txn, void *p)
{
	struct put_arg *a = p;
	int err = txn_map_check(a->seg, txn);

	return err ? err :
		     shg_txn_map_del_bytes(txn, SHG_REF_ROOT, a->key,
					   strlen(a->key));
}

static int open_map_root(struct cli *c, struct shg_seg *seg, bool create,
			 struct shg_root **root, bool *created)
{
	int err = shg_root_open(seg, c->arg[0], root);

	*created = false;
	if (err == -ENOENT && create) {
		err = shg_root_create(seg, c->arg[0], root);
		if (err == -EEXIST)
			err = shg_root_open(seg, c->arg[0], root);
		else if (!err)
			*created = true;
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

/* VALUE of put as --int: unsigned (U64) unless negative (I64). */
static int parse_int(const char *s, struct shg_val *v)
{
	char *end;

	errno = 0;
	if (s[0] == '-') {
		v->kind = SHG_KIND_I64;
		v->i64 = strtoll(s, &end, 0);
	} else {
		v->kind = SHG_KIND_U64;
		v->u64 = strtoull(s, &end, 0);
	}
	return errno || *end || end == s ? -EINVAL : 0;
}

/* Decode put's VALUE into @a->val; *@buf receives memory to free. */
static int put_value(struct cli *c, struct put_arg *a, uint8_t **buf)
{
	const char *s = c->arg[2];
	size_t len;
	int err = 0;

	*buf = NULL;
	switch (c->enc) {
	case ENC_INT:
		if (parse_int(s, &a->val))
			return failf("not an integer: %s", s);
		return 0;
	case ENC_HEX:
		err = hex_decode(s, buf, &len);
		break;
	case ENC_BASE64:
		err = base64_decode(s, buf, &len);
		break;
	default:
		a->val.kind = SHG_KIND_BYTES;
		a->val.bytes.p = s;
		a->val.bytes.len = strlen(s);
		return 0;
	}
	if (err)
		return failf("not %s: %s", c->enc == ENC_HEX ? "hex" : "base64",
			     s);
	a->val.kind = SHG_KIND_BYTES;
	a->val.bytes.p = *buf;
	a->val.bytes.len = len;
	return 0;
}

/*
 * An integer for a map of the other integer kind: retry as that kind if
 * the value fits (a map made by a program may hold i64 values).
 */
static bool int_other_kind(struct shg_val *v)
{
	if (v->kind == SHG_KIND_U64 && v->u64 <= INT64_MAX) {
		v->kind = SHG_KIND_I64;
		return true;
	}
	return false;
}

int cmd_put(struct cli *c, struct shg_seg *seg)
{
	struct put_arg a = { .seg = seg, .key = c->arg[1] };
	struct shg_root *root;
	uint8_t *buf;
	int err, rc;

	rc = put_value(c, &a, &buf);
	if (rc)
		return rc;
	rc = open_map_root(c, seg, true, &root, &a.create);
	if (rc) {
		free(buf);
		return rc;
	}
	err = shg_update(root, put_fn, &a, 0);
	if (err == -EINVAL && !a.create && int_other_kind(&a.val))
		err = shg_update(root, put_fn, &a, 0);
	shg_root_close(root);
	free(buf);
	if (err == ENOTMAP)
		return failf("%s: its graph is not a map (see shmctl dump)",
			     c->arg[0]);
	if (err == -EINVAL)
		return failf("%s: not a map of string keys and %s values",
			     c->arg[0],
			     c->enc == ENC_INT ? "integer" : "string/bytes");
	if (err)
		return fail("put", err);
	if (c->json) {
		printf("{\"ok\":true,\"root\":");
		shg__json_str(stdout, c->arg[0]);
		printf(",\"key\":");
		shg__json_str(stdout, c->arg[1]);
		printf(",\"created\":%s}\n", a.create ? "true" : "false");
	}
	return 0;
}

/* get's output of one value, in the encoding asked for. */
static void get_out(struct cli *c, const struct shg_val *v,
		    const struct root_names *rn)
{
	const char *tag = c->enc == ENC_HEX ? "hex" : "base64";
	const void *p = v->bytes.p ? v->bytes.p : "";

	if (v->kind != SHG_KIND_BYTES ||
	    (c->enc != ENC_HEX && c->enc != ENC_BASE64)) {
		val_out(stdout, v, c->json, rn, false);
		return;
	}
	if (c->json)
		printf("{\"%s\":\"", tag);
	if (c->enc == ENC_HEX)
		hex_out(stdout, p, v->bytes.len);
	else
		base64_out(stdout, p, v->bytes.len);
	if (c->json)
		printf("\"}");
}

/* Exit status and message of get/del for @err (0: success). */
static int key_result(struct cli *c, const char *what, int err)
{
	if (err == -ENOENT) {
		fprintf(stderr, "shmctl: %s: no key '%s'\n", c->arg[0],
			c->arg[1]);
		return EXIT_PROBLEMS;
	}
	if (err == ENOTMAP)
		return failf("%s: its graph is not a map (see shmctl dump)",
			     c->arg[0]);
	if (err == -EINVAL)
		return failf("%s: not a map with string keys", c->arg[0]);
	return err ? fail(what, err) : 0;
}

int cmd_get(struct cli *c, struct shg_seg *seg)
{
	struct root_names rn = { 0 };
	struct shg_root *root;
	struct shg_val v = { 0 };
	bool created;
	int err, rc;

	rc = open_map_root(c, seg, false, &root, &created);
	if (rc)
		return rc;
	(void)root_names_load(seg, &rn);
	err = shg_read_lock(seg);
	if (!err) {
		struct shg_off map;

		err = current_map(seg, root, &map);
		if (!err)
			err = shg_map_get_bytes(seg, map, c->arg[1],
						strlen(c->arg[1]), &v);
		if (!err) {
			if (c->json) {
				printf("{\"key\":");
				shg__json_str(stdout, c->arg[1]);
				printf(",\"kind\":\"%s\",\"value\":",
				       kind_name(v.kind));
			}
			get_out(c, &v, &rn);
			printf(c->json ? "}\n" : "\n");
		}
		shg_read_unlock(seg);
	}
	shg_root_close(root);
	root_names_free(&rn);
	return key_result(c, "get", err);
}

int cmd_del(struct cli *c, struct shg_seg *seg)
{
	struct put_arg a = { .seg = seg, .key = c->arg[1] };
	struct shg_root *root;
	bool created;
	int err, rc;

	rc = open_map_root(c, seg, false, &root, &created);
	if (rc)
		return rc;
	err = shg_update(root, del_fn, &a, 0);
	shg_root_close(root);
	if (err)
		return key_result(c, "del", err);
	if (c->json) {
		printf("{\"deleted\":true,\"key\":");
		shg__json_str(stdout, c->arg[1]);
		printf("}\n");
	}
	return 0;
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
		val_out(stdout, &v, c->json, rn, false);
		printf(c->json ? "}" : "\n");
		(*n)++;
	}
	return err == -ENOENT ? 0 : err;
}

int cmd_ls(struct cli *c, struct shg_seg *seg)
{
	struct root_names rn = { 0 };
	struct shg_root *root;
	bool created;
	int err, rc, n = 0;

	rc = open_map_root(c, seg, false, &root, &created);
	if (rc)
		return rc;
	(void)root_names_load(seg, &rn);
	err = shg_read_lock(seg);
	if (!err) {
		struct shg_off map;

		err = current_map(seg, root, &map);
		if (!err) {
			if (c->json)
				printf("{\"entries\":[");
			err = ls_entries(c, seg, map, &rn, &n);
			if (c->json)
				printf("],\"count\":%d}\n", n);
		}
		shg_read_unlock(seg);
	}
	shg_root_close(root);
	root_names_free(&rn);
	if (err == ENOTMAP)
		return failf("%s: its graph is not a map (see shmctl dump)",
			     c->arg[0]);
	return err ? fail("ls", err) : 0;
}
