/* SPDX-License-Identifier: MIT */
/*
 * bench_update - two writer processes appending orders to one vector with
 * shg_update() (each txn pushes K orders), for a fixed time. Reports per
 * writer: commits, extra attempts (fn calls - commits), updates that gave
 * up with SHG_ECONFLICT after max_tries, and commits/s.
 *
 *   bench_update [--nobackoff] [K] [seconds]
 *
 * --nobackoff runs the same begin/fn/commit loop without waiting between
 * attempts (what shg_update did before it backed off), for comparison.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <shmgraph.h>

struct wstat {
	uint64_t commits, calls, gaveup;
};

struct order_arg {
	unsigned k;
	uint64_t calls;
	uint32_t type;
};

static int push_orders(struct shg_txn *txn, void *arg)
{
	struct order_arg *a = arg;
	struct shg_off root = shg_txn_root_node(txn), n;
	struct shg_val v = { .kind = SHG_KIND_NODE };
	unsigned i;
	int err;

	a->calls++;
	err = shg_txn_mut(txn, SHG_REF_ROOT, &root);
	for (i = 0; !err && i < a->k; i++) {
		err = shg_txn_node_new(txn, a->type, &n);
		if (!err)
			err = shg_txn_set_u64(txn, (struct shg_ref){ n, 0 }, i);
		v.node = n;
		if (!err)
			err = shg_txn_vec_push(txn, (struct shg_ref){ root, 0 },
					       &v);
	}
	return err;
}

/* The loop shg_update() ran before it backed off. */
static int update_nobackoff(struct shg_root *root, struct order_arg *a,
			    unsigned max_tries)
{
	struct shg_txn *txn;
	unsigned i;
	int err = SHG_ECONFLICT;

	for (i = 0; i < max_tries; i++) {
		err = shg_txn_begin(root, &txn);
		if (err)
			return err;
		err = push_orders(txn, a);
		if (err) {
			shg_txn_abort(txn);
			return err;
		}
		err = shg_txn_commit(txn);
		if (!err)
			return 0;
		shg_txn_abort(txn);
		if (err != SHG_ECONFLICT)
			return err;
	}
	return err;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int writer(const char *name, unsigned k, double secs, bool backoff,
		  struct wstat *out)
{
	struct order_arg a = { .k = k };
	struct shg_seg *seg;
	struct shg_root *root;
	double end;
	int err;

	err = shg_seg_open(name, NULL, &seg);
	if (!err)
		err = shg_root_open(seg, "orders", &root);
	if (!err)
		err = shg_type_find(seg, "Order", &a.type);
	if (err)
		return 1;
	end = now_s() + secs;
	while (now_s() < end) {
		err = backoff ? shg_update(root, push_orders, &a, 64) :
				update_nobackoff(root, &a, 64);
		if (err == SHG_ECONFLICT)
			out->gaveup++;
		else if (err == 0)
			out->commits++;
		else if (err != SHG_EBUDGET) {
			fprintf(stderr, "writer: %s\n", shg_strerror(err));
			return 1;
		}
	}
	out->calls = a.calls;
	shg_root_close(root);
	shg_seg_close(seg);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct shg_field_def of[] = { { "qty", SHG_KIND_U64 } };
	static const struct shg_field_def rf[] = { { "list", SHG_KIND_NODE } };
	struct shg_opts o = { .size = sizeof(o), .capacity = 1ull << 30 };
	char name[64];
	bool backoff = true;
	unsigned k = 10, i;
	double secs = 3;
	struct wstat *st;
	struct shg_seg *seg;
	struct shg_root *root;
	struct shg_txn *txn;
	struct shg_off r;
	uint32_t t, rt;
	pid_t pid[2];
	int argi = 1, err;

	if (argi < argc && !strcmp(argv[argi], "--nobackoff")) {
		backoff = false;
		argi++;
	}
	if (argi < argc)
		k = (unsigned)atoi(argv[argi++]);
	if (argi < argc)
		secs = atof(argv[argi++]);
	snprintf(name, sizeof(name), "/shg-bench-update-%d", (int)getpid());
	st = mmap(NULL, 2 * sizeof(*st), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (st == MAP_FAILED)
		return 1;
	memset(st, 0, 2 * sizeof(*st));
	err = shg_seg_create(name, &o, &seg);
	if (!err)
		err = shg_type_register(seg, "Order", of, 1, &t);
	if (!err)
		err = shg_type_register(seg, "Orders", rf, 1, &rt);
	if (!err)
		err = shg_root_create(seg, "orders", &root);
	if (!err)
		err = shg_txn_begin(root, &txn);
	if (!err)
		err = shg_txn_node_new(txn, rt, &r);
	if (!err)
		err = shg_txn_set_node(txn, SHG_REF_ROOT, r);
	if (!err)
		err = shg_txn_vec_new(txn, (struct shg_ref){ r, 0 },
				      SHG_KIND_NODE);
	if (!err)
		err = shg_txn_commit(txn);
	if (err) {
		fprintf(stderr, "setup: %s\n", shg_strerror(err));
		return 1;
	}
	for (i = 0; i < 2; i++) {
		pid[i] = fork();
		if (pid[i] == 0)
			_exit(writer(name, k, secs, backoff, &st[i]));
	}
	for (i = 0; i < 2; i++)
		waitpid(pid[i], NULL, 0);
	printf("{\"bench\":\"update\",\"backoff\":%s,\"orders_per_txn\":%u,"
	       "\"seconds\":%.1f",
	       backoff ? "true" : "false", k, secs);
	for (i = 0; i < 2; i++)
		printf(",\"w%u\":{\"commits\":%llu,\"retries\":%llu,"
		       "\"gave_up\":%llu,\"commits_per_s\":%.0f}",
		       i, (unsigned long long)st[i].commits,
		       (unsigned long long)(st[i].calls - st[i].commits),
		       (unsigned long long)st[i].gaveup, st[i].commits / secs);
	printf("}\n");
	shg_root_close(root);
	shg_seg_close(seg);
	if (shg_seg_unlink(name))
		return 1;
	return 0;
}
