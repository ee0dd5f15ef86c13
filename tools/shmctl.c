/* SPDX-License-Identifier: MIT */
/*
 * shmctl: inspect, check and repair shmgraph segments.
 *
 *   shmctl COMMAND SEGMENT [ARGS...] [--json]
 *
 * SEGMENT is a POSIX shm name ("/demo") or a file path. Every command
 * prints a readable table, or with --json one JSON object with stable field
 * names. Exit status: 0 success, 1 check found problems, 2 usage or
 * runtime error (with a one-line message on stderr).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "shmgraph.h"

#define EXIT_PROBLEMS 1
#define EXIT_ERROR 2

struct cli {
	const char *cmd;
	const char *seg_name;
	bool json;
	uint64_t size;
	unsigned mode;
	int numa_policy;
	int numa_node;
	bool as_int; /* put: store an unsigned integer value */
	const char *arg[3]; /* positional arguments after SEGMENT */
	int nargs;
};

static int usage(FILE *f)
{
	fprintf(f,
		"usage: shmctl COMMAND SEGMENT [OPTIONS] [--json]\n"
		"\n"
		"SEGMENT is a POSIX shm name (/name) or a file path.\n"
		"\n"
		"commands:\n"
		"  create SEG [--size BYTES[k|m|g]] [--mode OCTAL]\n"
		"             [--numa local|interleave|bind:N]\n"
		"  destroy SEG          remove the segment's name\n"
		"  info SEG             format, capacity, usage, epoch, counts\n"
		"  roots SEG            the root table\n"
		"  readers SEG          registered threads, epochs, stalls\n"
		"  stats SEG            allocator by size class and NUMA node\n"
		"  check SEG            verify invariants (exit 1 on problems)\n"
		"  recover SEG          release what dead processes held\n"
		"  put SEG ROOT KEY VALUE [--int]\n"
		"                       set KEY in the map at ROOT (created if\n"
		"                       absent: string keys, string or --int values)\n"
		"  get SEG ROOT KEY     print KEY's value (exit 1 if absent)\n"
		"  del SEG ROOT KEY     delete KEY (exit 1 if absent)\n"
		"  ls SEG ROOT          list the map's entries\n"
		"\n"
		"exit status: 0 ok, 1 check found problems, 2 error\n");
	return f == stdout ? 0 : EXIT_ERROR;
}

static int fail(const char *what, int err)
{
	fprintf(stderr, "shmctl: %s: %s\n", what, shg_strerror(err));
	return EXIT_ERROR;
}

static bool parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		return false;
	switch (*end) {
	case 'k':
	case 'K':
		v <<= 10;
		end++;
		break;
	case 'm':
	case 'M':
		v <<= 20;
		end++;
		break;
	case 'g':
	case 'G':
		v <<= 30;
		end++;
		break;
	default:
		break;
	}
	if (*end)
		return false;
	*out = v;
	return true;
}

static int parse_args(int argc, char **argv, struct cli *c)
{
	int i;

	memset(c, 0, sizeof(*c));
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "--json")) {
			c->json = true;
		} else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			exit(usage(stdout));
		} else if (!strcmp(a, "--size") && i + 1 < argc) {
			if (!parse_size(argv[++i], &c->size))
				return -EINVAL;
		} else if (!strcmp(a, "--mode") && i + 1 < argc) {
			char *end;

			c->mode = (unsigned)strtoul(argv[++i], &end, 8);
			if (*end || c->mode > 0777 || c->mode == 0)
				return -EINVAL;
		} else if (!strcmp(a, "--numa") && i + 1 < argc) {
			const char *p = argv[++i];

			if (!strcmp(p, "local"))
				c->numa_policy = SHG_NUMA_LOCAL;
			else if (!strcmp(p, "interleave"))
				c->numa_policy = SHG_NUMA_INTERLEAVE;
			else if (!strncmp(p, "bind:", 5)) {
				c->numa_policy = SHG_NUMA_BIND;
				c->numa_node = atoi(p + 5);
			} else
				return -EINVAL;
		} else if (!strcmp(a, "--int")) {
			c->as_int = true;
		} else if (a[0] == '-' && a[1] == '-') {
			return -EINVAL;
		} else if (!c->cmd) {
			c->cmd = a;
		} else if (!c->seg_name) {
			c->seg_name = a;
		} else if (c->nargs < 3) {
			c->arg[c->nargs++] = a;
		} else {
			return -EINVAL;
		}
	}
	return c->cmd && c->seg_name ? 0 : -EINVAL;
}

static void json_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			printf("\\%c", ch);
		else if (ch < 0x20)
			printf("\\u%04x", ch);
		else
			putchar(ch);
	}
	putchar('"');
}

static const char *fmt_bytes(uint64_t b, char *buf, size_t len)
{
	const char *u[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)b;
	int i = 0;

	while (v >= 1024 && i < 4) {
		v /= 1024;
		i++;
	}
	snprintf(buf, len, i ? "%.1f %s" : "%.0f %s", v, u[i]);
	return buf;
}

static int cmd_create(struct cli *c)
{
	struct shg_opts o = { .size = sizeof(o) };
	struct shg_seg *seg;
	int err;

	o.capacity = c->size;
	o.mode = c->mode;
	o.numa_policy = c->numa_policy;
	o.numa_node = c->numa_node;
	err = shg_seg_create(c->seg_name, &o, &seg);
	if (err)
		return fail(c->seg_name, err);
	if (c->json) {
		printf("{\"segment\":");
		json_str(c->seg_name);
		printf(",\"capacity\":%" PRIu64 "}\n", shg_seg_capacity(seg));
	} else {
		char b[32];

		printf("created %s (capacity %s)\n", c->seg_name,
		       fmt_bytes(shg_seg_capacity(seg), b, sizeof(b)));
	}
	shg_seg_close(seg);
	return 0;
}

static int cmd_destroy(struct cli *c)
{
	int err = shg_seg_unlink(c->seg_name);

	if (err)
		return fail(c->seg_name, err);
	if (c->json)
		printf("{\"destroyed\":true}\n");
	else
		printf("destroyed %s\n", c->seg_name);
	return 0;
}

static int cmd_info(struct cli *c, struct shg_seg *seg)
{
	struct shg_stats st;
	char b1[32], b2[32], b3[32], b4[32];
	uint64_t used;
	int err = shg_stats_get(seg, &st);

	if (err)
		return fail("stats", err);
	used = st.small_used_bytes + st.large_used_bytes;
	if (c->json) {
		printf("{\"segment\":");
		json_str(c->seg_name);
		printf(",\"format\":1,\"capacity\":%" PRIu64
		       ",\"backed\":%" PRIu64 ",\"heap\":%" PRIu64
		       ",\"used\":%" PRIu64 ",\"free\":%" PRIu64
		       ",\"retired_pending\":%" PRIu64 ",\"epoch\":%" PRIu64
		       ",\"roots\":%u,\"processes\":%u,\"threads\":%u"
		       ",\"numa_nodes\":%u,\"flavor\":\"%s\"}\n",
		       st.capacity, st.backed, st.heap_bytes, used,
		       st.capacity - used, st.retired_bytes, st.global_epoch,
		       st.roots, st.procs, st.threads, st.nodes,
		       shg_seg_flavor(seg) == SHG_FLAVOR_FENCE ? "fence" :
								 "membarrier");
		return 0;
	}
	printf("%-18s %s\n", "segment", c->seg_name);
	printf("%-18s %d\n", "format", 1);
	printf("%-18s %s\n", "capacity",
	       fmt_bytes(st.capacity, b1, sizeof(b1)));
	printf("%-18s %s\n", "backed", fmt_bytes(st.backed, b2, sizeof(b2)));
	printf("%-18s %s\n", "used", fmt_bytes(used, b3, sizeof(b3)));
	printf("%-18s %s\n", "retired pending",
	       fmt_bytes(st.retired_bytes, b4, sizeof(b4)));
	printf("%-18s %" PRIu64 "\n", "epoch", st.global_epoch);
	printf("%-18s %u\n", "roots", st.roots);
	printf("%-18s %u\n", "processes", st.procs);
	printf("%-18s %u\n", "threads", st.threads);
	printf("%-18s %u\n", "numa nodes", st.nodes);
	return 0;
}

/*
 * Snapshot a list (roots, readers): ask for the count, allocate, fill.
 * Returns the entries in *@out (caller frees) and their number, or a
 * negative code.
 */
typedef int (*list_fn)(struct shg_seg *seg, void *out, unsigned max);

static int fetch_list(struct shg_seg *seg, list_fn fn, size_t size, void **out)
{
	int n = fn(seg, NULL, 0);
	int got;

	if (n < 0)
		return n;
	*out = calloc((size_t)n + 1, size);
	if (!*out)
		return -ENOMEM;
	got = fn(seg, *out, (unsigned)n);
	if (got < 0) {
		free(*out);
		return got;
	}
	return got > n ? n : got;
}

static int list_roots(struct shg_seg *seg, void *out, unsigned max)
{
	return shg_root_list(seg, out, max);
}

static int list_readers(struct shg_seg *seg, void *out, unsigned max)
{
	return shg_reader_list(seg, out, max);
}

static int cmd_roots(struct cli *c, struct shg_seg *seg)
{
	struct shg_root_info *ri;
	int i, got = fetch_list(seg, list_roots, sizeof(*ri), (void **)&ri);

	if (got < 0)
		return fail("roots", got);
	if (c->json)
		printf("{\"roots\":[");
	else
		printf("%-24s %6s %12s %6s %8s %s\n", "NAME", "SLOT",
		       "GENERATION", "HOLDS", "STATE", "VALUE");
	for (i = 0; i < got; i++) {
		if (c->json) {
			printf("%s{\"name\":", i ? "," : "");
			json_str(ri[i].name);
			printf(",\"slot\":%u,\"generation\":%" PRIu64
			       ",\"holds\":%u,\"removed\":%s,\"value\":%" PRIu64
			       ",\"last_publish_ns\":%" PRIu64 "}",
			       ri[i].slot, ri[i].generation, ri[i].holds,
			       ri[i].removed ? "true" : "false", ri[i].value.v,
			       ri[i].last_publish_ns);
		} else {
			printf("%-24s %6u %12" PRIu64 " %6u %8s %" PRIu64 "\n",
			       ri[i].name, ri[i].slot, ri[i].generation,
			       ri[i].holds, ri[i].removed ? "removed" : "live",
			       ri[i].value.v);
		}
	}
	if (c->json)
		printf("]}\n");
	free(ri);
	return 0;
}

static int cmd_readers(struct cli *c, struct shg_seg *seg)
{
	struct shg_reader_info *ri;
	int i, got = fetch_list(seg, list_readers, sizeof(*ri), (void **)&ri);

	if (got < 0)
		return fail("readers", got);
	if (c->json)
		printf("{\"readers\":[");
	else
		printf("%6s %8s %8s %6s %11s %8s %10s %12s %12s\n", "SLOT",
		       "PID", "TID", "ALIVE", "FLAVOR", "SECTION", "EPOCH_LAG",
		       "BLOCKED_MS", "HELD_BYTES");
	for (i = 0; i < got; i++) {
		const char *fl = ri[i].flavor == SHG_FLAVOR_FENCE ?
					 "fence" :
					 "membarrier";

		if (c->json)
			printf("%s{\"slot\":%u,\"pid\":%d,\"tid\":%d,"
			       "\"alive\":%s,\"flavor\":\"%s\","
			       "\"in_section\":%s,\"epoch\":%" PRIu64
			       ",\"epoch_lag\":%" PRIu64
			       ",\"blocked_ns\":%" PRIu64
			       ",\"held_bytes\":%" PRIu64 "}",
			       i ? "," : "", ri[i].slot, (int)ri[i].pid,
			       (int)ri[i].tid, ri[i].alive ? "true" : "false",
			       fl, ri[i].in_section ? "true" : "false",
			       ri[i].epoch, ri[i].epoch_lag, ri[i].blocked_ns,
			       ri[i].held_bytes);
		else
			printf("%6u %8d %8d %6s %11s %8s %10" PRIu64
			       " %12.1f %12" PRIu64 "\n",
			       ri[i].slot, (int)ri[i].pid, (int)ri[i].tid,
			       ri[i].alive ? "yes" : "DEAD", fl,
			       ri[i].in_section ? "yes" : "no", ri[i].epoch_lag,
			       ri[i].blocked_ns / 1e6, ri[i].held_bytes);
	}
	if (c->json)
		printf("]}\n");
	free(ri);
	return 0;
}

static int cmd_stats(struct cli *c, struct shg_seg *seg)
{
	struct shg_stats st;
	unsigned i;
	int err = shg_stats_get(seg, &st);

	if (err)
		return fail("stats", err);
	if (c->json) {
		printf("{\"heap_bytes\":%" PRIu64
		       ",\"free_span_bytes\":%" PRIu64
		       ",\"small_used_bytes\":%" PRIu64
		       ",\"large_used_bytes\":%" PRIu64
		       ",\"retired_bytes\":%" PRIu64
		       ",\"reclaimed_bytes\":%" PRIu64
		       ",\"reclaimed_blocks\":%" PRIu64 ",\"classes\":[",
		       st.heap_bytes, st.free_span_bytes, st.small_used_bytes,
		       st.large_used_bytes, st.retired_bytes,
		       st.reclaimed_bytes, st.reclaimed_blocks);
		for (i = 0; i < SHG_NUM_CLASSES; i++)
			printf("%s{\"size\":%u,\"spans\":%u,\"used_blocks\":%" PRIu64
			       ",\"total_blocks\":%" PRIu64 "}",
			       i ? "," : "", st.cls[i].size, st.cls[i].spans,
			       st.cls[i].used_blocks, st.cls[i].total_blocks);
		printf("],\"nodes\":[");
		for (i = 0; i < st.nodes && i < SHG_MAX_NODES; i++)
			printf("%s{\"node\":%u,\"span_bytes\":%" PRIu64
			       ",\"used_bytes\":%" PRIu64 "}",
			       i ? "," : "", i, st.node[i].span_bytes,
			       st.node[i].used_bytes);
		printf("]}\n");
		return 0;
	}
	printf("%8s %6s %12s %12s\n", "CLASS", "SPANS", "USED_BLOCKS",
	       "TOTAL_BLOCKS");
	for (i = 0; i < SHG_NUM_CLASSES; i++)
		if (st.cls[i].spans)
			printf("%8u %6u %12" PRIu64 " %12" PRIu64 "\n",
			       st.cls[i].size, st.cls[i].spans,
			       st.cls[i].used_blocks, st.cls[i].total_blocks);
	printf("\n%6s %14s %14s\n", "NODE", "SPAN_BYTES", "USED_BYTES");
	for (i = 0; i < st.nodes && i < SHG_MAX_NODES; i++)
		printf("%6u %14" PRIu64 " %14" PRIu64 "\n", i,
		       st.node[i].span_bytes, st.node[i].used_bytes);
	printf("\nretired %" PRIu64 " bytes pending, reclaimed %" PRIu64
	       " bytes in %" PRIu64 " blocks\n",
	       st.retired_bytes, st.reclaimed_bytes, st.reclaimed_blocks);
	return 0;
}

struct problems {
	bool json;
	unsigned n;
};

static void on_problem(void *arg, int code, const char *msg)
{
	struct problems *p = arg;

	if (p->json) {
		printf("%s{\"code\":%d,\"error\":", p->n ? "," : "", code);
		json_str(shg_strerror(code));
		printf(",\"message\":");
		json_str(msg);
		printf("}");
	} else {
		printf("PROBLEM %s: %s\n", shg_strerror(code), msg);
	}
	p->n++;
}

static int cmd_check(struct cli *c, struct shg_seg *seg)
{
	struct problems p = { .json = c->json };
	struct shg_check_report rep;
	int n;

	if (c->json)
		printf("{\"problems\":[");
	n = shg_check(seg, on_problem, &p, &rep);
	if (n < 0) {
		if (c->json)
			printf("]}\n");
		return fail("check", n);
	}
	if (c->json) {
		printf("],\"count\":%d,\"dead_procs\":%u,\"dead_threads\":%u"
		       ",\"free_bytes\":%" PRIu64 ",\"used_bytes\":%" PRIu64
		       ",\"retired_bytes\":%" PRIu64 ",\"ok\":%s}\n",
		       n, rep.dead_procs, rep.dead_threads, rep.free_bytes,
		       rep.used_bytes, rep.retired_bytes, n ? "false" : "true");
	} else {
		printf("%s: %d problem%s; %u dead process slot(s), %u dead "
		       "thread slot(s) (run recover to release them)\n",
		       n ? "FAILED" : "OK", n, n == 1 ? "" : "s",
		       rep.dead_procs, rep.dead_threads);
	}
	return n ? EXIT_PROBLEMS : 0;
}

static int cmd_recover(struct cli *c, struct shg_seg *seg)
{
	struct shg_recover_report r;
	int err = shg_recover(seg, &r);

	if (err)
		return fail("recover", err);
	if (c->json)
		printf("{\"procs_released\":%u,\"threads_released\":%u,"
		       "\"holds_released\":%u,\"spans_adopted\":%u,"
		       "\"retired_adopted\":%" PRIu64 "}\n",
		       r.procs_released, r.threads_released, r.holds_released,
		       r.spans_adopted, r.retired_adopted);
	else
		printf("released %u process slot(s), %u thread slot(s), %u "
		       "root hold(s); adopted %u span(s) and %" PRIu64
		       " retired bytes\n",
		       r.procs_released, r.threads_released, r.holds_released,
		       r.spans_adopted, r.retired_adopted);
	return 0;
}

/* ---- maps at a root: put, get, del, ls ----------------------------------- */

struct put_arg {
	const char *key;
	struct shg_val val;
	bool create;
};

static int put_fn(struct shg_txn *txn, void *p)
{
	struct put_arg *a = p;
	int err = 0;

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
	const char *key = p;

	return shg_txn_map_del_bytes(txn, SHG_REF_ROOT, key, strlen(key));
}

static void print_val(struct cli *c, const struct shg_val *v)
{
	char buf[32];

	switch (v->kind) {
	case SHG_KIND_BYTES:
		if (c->json) {
			char *t = strndup(v->bytes.p ? v->bytes.p : "",
					  v->bytes.len);

			json_str(t ? t : "");
			free(t);
		} else {
			fwrite(v->bytes.p ? v->bytes.p : "", 1, v->bytes.len,
			       stdout);
		}
		return;
	case SHG_KIND_I64:
		snprintf(buf, sizeof(buf), "%" PRId64, v->i64);
		break;
	case SHG_KIND_F64:
		snprintf(buf, sizeof(buf), "%.17g", v->f64);
		break;
	default:
		snprintf(buf, sizeof(buf), "%" PRIu64, v->u64);
		break;
	}
	fputs(buf, stdout);
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
	if (err)
		return fail(c->arg[0], err);
	return 0;
}

static int cmd_put(struct cli *c, struct shg_seg *seg)
{
	struct put_arg a = { .key = c->arg[1] };
	struct shg_root *root;
	int err, rc;

	if (c->nargs != 3) {
		fprintf(stderr, "shmctl: put needs ROOT KEY VALUE\n");
		return EXIT_ERROR;
	}
	if (c->as_int) {
		char *end;

		errno = 0;
		a.val.kind = SHG_KIND_U64;
		a.val.u64 = strtoull(c->arg[2], &end, 0);
		if (errno || *end || end == c->arg[2]) {
			fprintf(stderr, "shmctl: not an integer: %s\n",
				c->arg[2]);
			return EXIT_ERROR;
		}
	} else {
		a.val.kind = SHG_KIND_BYTES;
		a.val.bytes.p = c->arg[2];
		a.val.bytes.len = strlen(c->arg[2]);
	}
	rc = open_map_root(c, seg, true, &root, &a.create);
	if (rc)
		return rc;
	err = shg_update(root, put_fn, &a, 0);
	shg_root_close(root);
	if (err == -EINVAL)
		fprintf(stderr,
			"shmctl: %s: not a map of string keys and %s "
			"values\n",
			c->arg[0], c->as_int ? "integer" : "string");
	if (err)
		return err == -EINVAL ? EXIT_ERROR : fail("put", err);
	if (c->json)
		printf("{\"ok\":true}\n");
	return 0;
}

/* Current map of @root (read section held); SHG_OFF_NULL if none. */
static struct shg_off current_map(struct shg_seg *seg, struct shg_root *root)
{
	struct shg_version_info vi;

	if (shg_version_info(seg, shg_version_current(root), &vi))
		return SHG_OFF_NULL;
	return vi.node;
}

static int cmd_get(struct cli *c, struct shg_seg *seg)
{
	struct shg_root *root;
	struct shg_val v;
	bool created;
	int err, rc;

	if (c->nargs != 2) {
		fprintf(stderr, "shmctl: get needs ROOT KEY\n");
		return EXIT_ERROR;
	}
	rc = open_map_root(c, seg, false, &root, &created);
	if (rc)
		return rc;
	err = shg_read_lock(seg);
	if (!err) {
		err = shg_map_get_bytes(seg, current_map(seg, root), c->arg[1],
					strlen(c->arg[1]), &v);
		if (!err) {
			if (c->json) {
				printf("{\"key\":");
				json_str(c->arg[1]);
				printf(",\"value\":");
			}
			print_val(c, &v);
			printf(c->json ? "}\n" : "\n");
		}
		shg_read_unlock(seg);
	}
	shg_root_close(root);
	if (err == -ENOENT) {
		fprintf(stderr, "shmctl: %s: no key '%s'\n", c->arg[0],
			c->arg[1]);
		return EXIT_PROBLEMS;
	}
	return err ? fail("get", err) : 0;
}

static int cmd_del(struct cli *c, struct shg_seg *seg)
{
	struct shg_root *root;
	bool created;
	int err, rc;

	if (c->nargs != 2) {
		fprintf(stderr, "shmctl: del needs ROOT KEY\n");
		return EXIT_ERROR;
	}
	rc = open_map_root(c, seg, false, &root, &created);
	if (rc)
		return rc;
	err = shg_update(root, del_fn, (void *)c->arg[1], 0);
	shg_root_close(root);
	if (err == -ENOENT) {
		fprintf(stderr, "shmctl: %s: no key '%s'\n", c->arg[0],
			c->arg[1]);
		return EXIT_PROBLEMS;
	}
	return err ? fail("del", err) : 0;
}

static int cmd_ls(struct cli *c, struct shg_seg *seg)
{
	struct shg_map_iter it;
	struct shg_root *root;
	struct shg_val k, v;
	bool created;
	int err, rc, n = 0;

	if (c->nargs != 1) {
		fprintf(stderr, "shmctl: ls needs ROOT\n");
		return EXIT_ERROR;
	}
	rc = open_map_root(c, seg, false, &root, &created);
	if (rc)
		return rc;
	err = shg_read_lock(seg);
	if (!err) {
		struct shg_off map = current_map(seg, root);

		if (c->json)
			printf("{\"entries\":[");
		err = shg_off_is_null(map) ? 0 :
					     shg_map_iter_init(seg, map, &it);
		while (!err && !shg_off_is_null(map) &&
		       (err = shg_map_iter_next(&it, &k, &v)) == 0) {
			if (c->json)
				printf("%s{\"key\":", n ? "," : "");
			print_val(c, &k);
			printf(c->json ? ",\"value\":" : "\t");
			print_val(c, &v);
			printf(c->json ? "}" : "\n");
			n++;
		}
		if (err == -ENOENT)
			err = 0;
		if (c->json)
			printf("],\"count\":%d}\n", n);
		shg_read_unlock(seg);
	}
	shg_root_close(root);
	return err ? fail("ls", err) : 0;
}

int main(int argc, char **argv)
{
	struct shg_opts o = { .size = sizeof(o) };
	struct shg_seg *seg;
	struct cli c;
	int err, rc;

	if (argc < 2)
		return usage(stderr);
	if (parse_args(argc, argv, &c)) {
		fprintf(stderr, "shmctl: bad arguments (see shmctl --help)\n");
		return EXIT_ERROR;
	}
	if (!strcmp(c.cmd, "create"))
		return cmd_create(&c);
	if (!strcmp(c.cmd, "destroy"))
		return cmd_destroy(&c);
	if (strcmp(c.cmd, "info") && strcmp(c.cmd, "roots") &&
	    strcmp(c.cmd, "readers") && strcmp(c.cmd, "stats") &&
	    strcmp(c.cmd, "check") && strcmp(c.cmd, "recover") &&
	    strcmp(c.cmd, "put") && strcmp(c.cmd, "get") &&
	    strcmp(c.cmd, "del") && strcmp(c.cmd, "ls")) {
		fprintf(stderr, "shmctl: unknown command '%s'\n", c.cmd);
		return EXIT_ERROR;
	}
	/* Inspection must not change what it inspects: only recover
	 * releases dead processes' slots. */
	if (strcmp(c.cmd, "recover"))
		o.flags |= SHG_OPEN_NO_RECOVER;
	o.flavor = SHG_FLAVOR_FENCE;
	err = shg_seg_open(c.seg_name, &o, &seg);
	if (err)
		return fail(c.seg_name, err);
	if (!strcmp(c.cmd, "info"))
		rc = cmd_info(&c, seg);
	else if (!strcmp(c.cmd, "roots"))
		rc = cmd_roots(&c, seg);
	else if (!strcmp(c.cmd, "readers"))
		rc = cmd_readers(&c, seg);
	else if (!strcmp(c.cmd, "stats"))
		rc = cmd_stats(&c, seg);
	else if (!strcmp(c.cmd, "check"))
		rc = cmd_check(&c, seg);
	else if (!strcmp(c.cmd, "put"))
		rc = cmd_put(&c, seg);
	else if (!strcmp(c.cmd, "get"))
		rc = cmd_get(&c, seg);
	else if (!strcmp(c.cmd, "del"))
		rc = cmd_del(&c, seg);
	else if (!strcmp(c.cmd, "ls"))
		rc = cmd_ls(&c, seg);
	else
		rc = cmd_recover(&c, seg);
	shg_seg_close(seg);
	return rc;
}
