/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: segment images, through what `shmctl info/roots/readers/
 * stats/check/dump` do.
 *
 * An input is an encoded segment image (fuzz.h). It is written to a
 * scratch file, opened with shg_seg_open() (inspection mode, without
 * recovery, unless the image's FZ_F_RECOVER flag asks for a normal open
 * that releases dead processes' slots), then: shg_check(), the statistics,
 * reader and root listings, and a dump of every root's graph through the
 * type table with the public read API (versions, typed fields, map
 * iteration and lookups, vector access), inside a read section, bounded in
 * depth and node count the way a dump must be on corrupt data.
 *
 * With the image's FZ_F_RECOVER_ALL flag, shg_recover() (what `shmctl
 * recover` runs) follows, and shg_check() once more.
 *
 * Findings: a crash, an access outside the mapping (SIGSEGV/SIGBUS), a
 * sanitizer report, a hang (libFuzzer -timeout), or a result that is not 0
 * or a negative code (fz_rc()).
 *
 * The seed corpus (tests/fuzz/corpus/fuzz_segment/, regenerate with
 * `fuzz_segment --make-seeds DIR`) holds real segments: empty; with typed
 * graphs, maps (u64 and bytes keys, hash collisions), vectors, a raw root
 * value, a removed root and old versions held by a pin; the same left by a
 * process killed with open handles, pins and a txn in flight; and that
 * state after an open with recovery and after shg_recover().
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fuzz.h"
#include "graph_internal.h"

const char fz_target_name[] = "fuzz_segment";

#define MAX_DEPTH 48 /* nesting a dump follows */
#define NODE_BUDGET 4096 /* nodes, entries and elements visited per input */
#define SEEN_CAP 16384 /* open addressing; > 2 * NODE_BUDGET */
#define MAX_LIST 64

struct dump {
	struct shg_seg *seg;
	unsigned budget;
	uint64_t sum; /* of every byte and word read (keeps reads real) */
	uint64_t seen[SEEN_CAP];
	struct shg_type_info ti; /* scratch */
};

static struct dump dump_state;

/* Whether @off was dumped already (and mark it). */
static bool seen(struct dump *d, uint64_t off)
{
	size_t i = (size_t)((off >> 4) * 0x9e3779b97f4a7c15ull >> 50);

	for (;; i = (i + 1) % SEEN_CAP) {
		if (d->seen[i] == off)
			return true;
		if (!d->seen[i]) {
			d->seen[i] = off;
			return false;
		}
	}
}

static bool spend(struct dump *d)
{
	if (!d->budget)
		return false;
	d->budget--;
	return true;
}

static void touch(struct dump *d, const void *p, size_t len)
{
	const volatile uint8_t *b = p;
	size_t i;

	if (len && !p)
		fz_fail("bytes value with length %zu and no data", len);
	for (i = 0; i < len; i++)
		d->sum += b[i];
}

static void dump_node(struct dump *d, uint64_t off, unsigned depth);

static void dump_val(struct dump *d, const struct shg_val *v, unsigned depth)
{
	switch (v->kind) {
	case SHG_KIND_BYTES:
		touch(d, v->bytes.p, v->bytes.len);
		break;
	case SHG_KIND_NODE:
		dump_node(d, v->node.v, depth + 1);
		break;
	case SHG_KIND_ROOT:
		d->sum += v->root;
		break;
	case SHG_KIND_U64:
	case SHG_KIND_I64:
	case SHG_KIND_F64:
		d->sum += v->u64;
		break;
	default:
		fz_fail("value of unknown kind %d", (int)v->kind);
	}
}

/* Look the entry up again by its key: the lookup path, not the iterator. */
static void map_lookup(struct dump *d, uint64_t map, const struct shg_val *k)
{
	struct shg_val v;
	int rc;

	if (k->kind == SHG_KIND_U64)
		rc = shg_map_get_u64(d->seg, (struct shg_off){ map }, k->u64,
				     &v);
	else if (k->kind == SHG_KIND_BYTES)
		rc = shg_map_get_bytes(d->seg, (struct shg_off){ map },
				       k->bytes.p, k->bytes.len, &v);
	else
		fz_fail("map key of kind %d", (int)k->kind);
	fz_rc("shg_map_get", rc);
	if (rc == 0 && v.kind == SHG_KIND_BYTES)
		touch(d, v.bytes.p, v.bytes.len);
}

static void dump_map(struct dump *d, uint64_t off, unsigned depth)
{
	struct shg_off map = { off };
	struct shg_map_iter it;
	struct shg_val k, v;
	int64_t count;
	int rc;

	count = shg_map_count(d->seg, map);
	fz_rc("shg_map_count", count);
	rc = shg_map_get_u64(d->seg, map, 0x5eed, &v);
	fz_rc("shg_map_get_u64", rc);
	rc = shg_map_get_bytes(d->seg, map, "zz", 2, &v);
	fz_rc("shg_map_get_bytes", rc);
	rc = shg_map_iter_init(d->seg, map, &it);
	fz_rc("shg_map_iter_init", rc);
	if (rc)
		return;
	while (spend(d)) {
		memset(&k, 0, sizeof(k));
		memset(&v, 0, sizeof(v));
		rc = shg_map_iter_next(&it, &k, &v);
		if (rc == -ENOENT)
			break;
		fz_rc("shg_map_iter_next", rc);
		if (rc)
			break;
		map_lookup(d, off, &k);
		if (k.kind == SHG_KIND_BYTES)
			touch(d, k.bytes.p, k.bytes.len);
		dump_val(d, &v, depth);
	}
}

static void dump_vec(struct dump *d, uint64_t off, unsigned depth)
{
	struct shg_off vec = { off };
	struct shg_val v;
	int64_t len, i;
	int rc;

	len = shg_vec_len(d->seg, vec);
	fz_rc("shg_vec_len", len);
	if (len < 0)
		return;
	rc = shg_vec_get(d->seg, vec, (uint64_t)len, &v);
	if (rc == 0)
		fz_fail("shg_vec_get past the length %lld succeeded",
			(long long)len);
	fz_rc("shg_vec_get", rc);
	for (i = 0; i < len && spend(d); i++) {
		memset(&v, 0, sizeof(v));
		rc = shg_vec_get(d->seg, vec, (uint64_t)i, &v);
		fz_rc("shg_vec_get", rc);
		if (rc)
			break;
		dump_val(d, &v, depth);
	}
}

/* A node of a registered type: every field through the typed getters. */
static void dump_user(struct dump *d, uint64_t off, uint32_t type,
		      unsigned depth)
{
	struct shg_off node = { off }, child;
	unsigned i, nf;
	const void *p;
	uint64_t u;
	int64_t s;
	double f;
	size_t len;
	uint32_t slot;
	enum shg_kind kind[SHG_MAX_FIELDS];
	int rc;

	rc = shg_type_info(d->seg, type, &d->ti);
	fz_rc("shg_type_info", rc);
	if (rc)
		return;
	nf = d->ti.nfields;
	if (nf > SHG_MAX_FIELDS)
		fz_fail("type %u has %u fields", type, nf);
	for (i = 0; i < nf; i++)
		kind[i] = d->ti.field[i].kind;
	/* Past the last field: must be refused. */
	rc = shg_get_u64(d->seg, node, nf, &u);
	if (rc == 0)
		fz_fail("field %u of a %u-field node read", nf, nf);
	fz_rc("shg_get_u64", rc);
	for (i = 0; i < nf; i++) {
		switch (kind[i]) {
		case SHG_KIND_U64:
			rc = shg_get_u64(d->seg, node, i, &u);
			d->sum += rc ? 0 : u;
			break;
		case SHG_KIND_I64:
			rc = shg_get_i64(d->seg, node, i, &s);
			d->sum += rc ? 0 : (uint64_t)s;
			break;
		case SHG_KIND_F64:
			rc = shg_get_f64(d->seg, node, i, &f);
			d->sum += rc ? 0 : (uint64_t)(f == f);
			break;
		case SHG_KIND_BYTES:
			rc = shg_get_bytes(d->seg, node, i, &p, &len);
			if (!rc)
				touch(d, p, len);
			break;
		case SHG_KIND_NODE:
			rc = shg_get_node(d->seg, node, i, &child);
			if (!rc)
				dump_node(d, child.v, depth + 1);
			break;
		case SHG_KIND_ROOT:
			rc = shg_get_root(d->seg, node, i, &slot);
			d->sum += rc ? 0 : slot;
			break;
		default:
			fz_fail("type %u field %u: kind %d", type, i,
				(int)kind[i]);
		}
		fz_rc("shg_get_*", rc);
	}
}

static void dump_node(struct dump *d, uint64_t off, unsigned depth)
{
	struct shg_version_info vi;
	uint32_t type;
	int err = 0, rc;

	if (!off || depth > MAX_DEPTH || seen(d, off) || !spend(d))
		return;
	type = shg_node_type(d->seg, (struct shg_off){ off }, &err);
	if (!type) {
		if (err >= 0)
			fz_fail("shg_node_type: type 0 without an error");
		fz_rc("shg_node_type", err);
		return;
	}
	switch (type) {
	case SHG_TYPE_VERSION:
		rc = shg_version_info(d->seg, (struct shg_off){ off }, &vi);
		fz_rc("shg_version_info", rc);
		if (!rc)
			dump_node(d, vi.node.v, depth + 1);
		break;
	case SHG_TYPE_BYTES:
		break; /* reached through fields and values only */
	case SHG_TYPE_MAP:
	case SHG_TYPE_MAP_LEAF:
		dump_map(d, off, depth);
		break;
	case SHG_TYPE_VEC:
	case SHG_TYPE_VEC_NODE:
		dump_vec(d, off, depth);
		break;
	default:
		dump_user(d, off, type, depth);
		break;
	}
}

static int verbose = -1; /* $SHG_FUZZ_VERBOSE: print what was found */

static void problem(void *arg, int code, const char *msg)
{
	(void)arg;
	if (verbose > 0)
		printf("  check: %s (%s)\n", msg, shg_strerror(code));
	fz_rc("shg_check problem code", code);
	if (code >= 0)
		fz_fail("shg_check reported a problem with code %d", code);
	if (strnlen(msg, 4096) == 4096)
		fz_fail("shg_check message not terminated");
}

static void inspect(struct shg_seg *seg)
{
	static struct shg_root_info roots[MAX_LIST];
	static struct shg_reader_info readers[MAX_LIST];
	struct shg_check_report rep;
	struct shg_stats st;
	struct shg_root *root;
	struct dump *d = &dump_state;
	uint64_t bytes;
	pid_t pid;
	int n, i, rc;

	rc = shg_check(seg, problem, NULL, &rep);
	fz_rc("shg_check", rc);
	if (rc >= 0 && (uint32_t)rc != rep.problems)
		fz_fail("shg_check returned %d but reported %u problems", rc,
			rep.problems);
	fz_rc("shg_stats_get", shg_stats_get(seg, &st));
	n = shg_reader_list(seg, readers, MAX_LIST);
	fz_rc("shg_reader_list", n);
	(void)shg_stalled_reader(seg, &pid, &bytes);
	n = shg_root_list(seg, roots, MAX_LIST);
	fz_rc("shg_root_list", n);
	if (n > MAX_LIST)
		n = MAX_LIST;
	memset(d, 0, sizeof(*d));
	d->seg = seg;
	d->budget = NODE_BUDGET;
	rc = shg_read_lock(seg);
	fz_rc("shg_read_lock", rc);
	if (rc)
		return;
	for (i = 0; i < n; i++) {
		roots[i].name[SHG_ROOT_NAME_MAX] = '\0';
		(void)shg_block_size(seg, roots[i].value);
		dump_node(d, roots[i].value.v, 0);
		/* As a dump by name does: open, current version, close. */
		rc = shg_root_open(seg, roots[i].name, &root);
		fz_rc("shg_root_open", rc);
		if (rc)
			continue;
		dump_node(d, shg_version_current(root).v, 0);
		shg_root_close(root);
	}
	shg_read_unlock(seg);
	if (verbose > 0)
		printf("  check %d, %d roots, %u nodes dumped\n", rep.problems,
		       n, NODE_BUDGET - d->budget);
}

static char scratch[512];

static void scratch_unlink(void)
{
	unlink(scratch);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int fd = -1;
	struct shg_opts o = { .size = sizeof(o) };
	struct shg_seg *seg;
	int flags, rc;

	if (fd < 0) {
		fz_tmp_path(scratch, sizeof(scratch), "seg");
		fd = open(scratch, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0)
			fz_fail("cannot create %s", scratch);
		/* A run killed by a finding leaves it in the tmp dir. */
		atexit(scratch_unlink);
	}
	flags = fz_image_write(fd, data, size);
	if (flags < 0)
		return 0;
	o.flavor = SHG_FLAVOR_FENCE;
	o.flags = flags & FZ_F_RECOVER ? 0 : SHG_OPEN_NO_RECOVER;
	rc = shg_seg_open(scratch, &o, &seg);
	if (verbose < 0)
		verbose = getenv("SHG_FUZZ_VERBOSE") != NULL;
	if (verbose > 0)
		printf("  open: %s\n", shg_strerror(rc));
	fz_rc("shg_seg_open", rc);
	if (rc)
		return 0;
	inspect(seg);
	if (flags & FZ_F_RECOVER_ALL) {
		struct shg_recover_report rr;

		rc = shg_recover(seg, &rr);
		if (verbose > 0)
			printf("  recover: %s\n", shg_strerror(rc));
		fz_rc("shg_recover", rc);
		rc = shg_check(seg, NULL, NULL, NULL);
		fz_rc("shg_check after recover", rc);
	}
	shg_seg_close(seg);
	return 0;
}

#ifdef SHG_LIBFUZZER
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size,
			       unsigned int seed);

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size,
			       unsigned int seed)
{
	return fz_image_mutate(data, size, max_size, seed);
}
#endif

/* ---- seed corpus ---------------------------------------------------------- */

/* In a child: create the segment at @path and build variant @v. */
static int child_build(const char *path, int v)
{
	struct shg_opts o = { .size = sizeof(o) };
	struct shg_seg *seg;
	int err;

	o.capacity = 4u << 20;
	o.max_procs = 4;
	o.max_threads = 8;
	o.max_roots = 16;
	o.flavor = SHG_FLAVOR_FENCE;
	err = shg_seg_create(path, &o, &seg);
	if (err)
		return err;
	if (v == 0) {
		shg_seg_close(seg);
		return 0;
	}
	err = fz_build_graphs(seg, v >= 2);
	if (v >= 2)
		_exit(err ? 1 : 0); /* killed with everything open */
	shg_seg_close(seg);
	return err;
}

static const char *const variant_names[] = { "empty", "graphs", "crashed",
					     "crashed-reopened",
					     "crashed-recovered" };

static int make_variant(const char *dir, int v)
{
	struct shg_opts o = { .size = sizeof(o) };
	struct fz_buf img = { 0 };
	struct shg_recover_report rr;
	struct shg_seg *seg;
	char path[512], name[64];
	int status, err;
	pid_t pid;

	fz_tmp_path(path, sizeof(path), "seed");
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0)
		_exit(child_build(path, v) ? 1 : 0);
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) ||
	    WEXITSTATUS(status)) {
		unlink(path);
		return -ECHILD;
	}
	err = 0;
	if (v >= 3) {
		o.flavor = SHG_FLAVOR_FENCE;
		err = shg_seg_open(path, &o, &seg);
		if (!err && v == 4)
			err = shg_recover(seg, &rr);
		if (!err)
			shg_seg_close(seg);
	}
	if (!err)
		err = fz_image_encode_file(path, 0, &img);
	unlink(path);
	snprintf(name, sizeof(name), "seed-%s", variant_names[v]);
	if (!err)
		err = fz_write_file(dir, name, img.p, img.n);
	if (!err)
		printf("%s: %s/%s (%zu bytes)\n", fz_target_name, dir, name,
		       img.n);
	/* The crashed state opened with recovery, and then recovered. */
	if (!err && v == 2) {
		img.p[4] |= FZ_F_RECOVER;
		snprintf(name, sizeof(name), "seed-%s-recover-on-open",
			 variant_names[v]);
		err = fz_write_file(dir, name, img.p, img.n);
		img.p[4] |= FZ_F_RECOVER_ALL;
		snprintf(name, sizeof(name), "seed-%s-recover-all",
			 variant_names[v]);
		if (!err)
			err = fz_write_file(dir, name, img.p, img.n);
	}
	free(img.p);
	return err;
}

int fz_make_seeds(const char *dir)
{
	int v, err;

	for (v = 0; v < 5; v++) {
		err = make_variant(dir, v);
		if (err)
			return err;
	}
	return 0;
}
