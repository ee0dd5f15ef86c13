/* SPDX-License-Identifier: MIT */
/*
 * bench_cg: repeatable instruction counts for the map's hot paths.
 *
 *   valgrind --tool=callgrind --instr-atstart=no bench/bench_cg N PHASE OPS
 *
 * Builds an N-key u64 map (not counted), then runs OPS operations of
 * PHASE with callgrind's instrumentation on: lookup (read section,
 * shg_current_node(), get; the random keys are drawn before counting
 * starts), commit (one put per txn) or batch (1,000 puts per txn; OPS
 * txns). Wall-clock figures belong to bench_map; this program
 * gives counts that do not depend on the machine's noise. Run through
 * scripts/callgrind.sh, which divides by the operations. Without
 * valgrind's headers it still runs, counting the whole program.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <shmgraph.h>

#if defined(__has_include)
#if __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h>
#define HAVE_CALLGRIND 1
#endif
#endif
#ifndef HAVE_CALLGRIND
#define CALLGRIND_ZERO_STATS
#define CALLGRIND_START_INSTRUMENTATION
#define CALLGRIND_STOP_INSTRUMENTATION
#endif

#define BATCH 1000

static void die(const char *what, int err)
{
	fprintf(stderr, "bench_cg: %s: %s\n", what, shg_strerror(err));
	exit(1);
}

/* A fixed key sequence: splitmix64 of the index. */
static uint64_t key_of(uint64_t i)
{
	uint64_t x = i + 0x9e3779b97f4a7c15ull;

	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static uint64_t pick(uint64_t *s, uint64_t n)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s % n;
}

/* One txn putting @n keys (creating the map first if @create). */
static void put_keys(struct shg_root *root, bool create, const uint64_t *k,
		     unsigned n, uint64_t salt)
{
	struct shg_txn *txn;
	struct shg_val v = { .kind = SHG_KIND_U64 };
	unsigned i;
	int err;

	for (;;) {
		err = shg_txn_begin(root, &txn);
		if (err)
			die("begin", err);
		if (create) {
			err = shg_txn_map_new(txn, SHG_REF_ROOT, SHG_KIND_U64,
					      SHG_KIND_U64);
			if (err)
				die("map_new", err);
		}
		for (i = 0; i < n; i++) {
			v.u64 = k[i] ^ salt;
			err = shg_txn_map_put_u64(txn, SHG_REF_ROOT, k[i], &v);
			if (err)
				die("put", err);
		}
		err = shg_txn_commit(txn);
		if (!err)
			return;
		if (err != SHG_ECONFLICT)
			die("commit", err);
		(void)shg_txn_abort(txn);
	}
}

static uint64_t run_lookups(struct shg_seg *seg, struct shg_root *root,
			    struct shg_thread *t, const uint64_t *keys,
			    uint64_t ops)
{
	struct shg_off node;
	struct shg_val v;
	uint64_t i, k, hits = 0;

	for (i = 0; i < ops; i++) {
		k = keys[i];
		shg_thread_read_lock(t);
		if (!shg_current_node(root, &node) &&
		    !shg_map_get_u64(seg, node, k, &v))
			hits += v.u64 == k;
		shg_thread_read_unlock(t);
	}
	return hits;
}

static void run_puts(struct shg_root *root, uint64_t n, uint64_t ops,
		     unsigned per_txn)
{
	static uint64_t k[BATCH];
	uint64_t i, rng = 88172645463325252ull;
	unsigned j;

	for (i = 0; i < ops; i++) {
		for (j = 0; j < per_txn; j++)
			k[j] = key_of(pick(&rng, n));
		put_keys(root, false, k, per_txn, i + 1);
	}
}

int main(int argc, char **argv)
{
	uint64_t n = argc > 1 ? strtoull(argv[1], NULL, 0) : 1000000;
	const char *phase = argc > 2 ? argv[2] : "lookup";
	uint64_t ops = argc > 3 ? strtoull(argv[3], NULL, 0) : 100000;
	struct shg_opts o = { .size = sizeof(o), .capacity = 8ull << 30 };
	static uint64_t k[BATCH];
	struct shg_thread *t;
	struct shg_root *root;
	struct shg_seg *seg;
	uint64_t i = 0, per_op = 1, hits = 0, *lkeys = NULL;
	char name[64];
	unsigned m;
	int err;

	if (n == 0 || ops == 0 ||
	    (strcmp(phase, "lookup") && strcmp(phase, "commit") &&
	     strcmp(phase, "batch"))) {
		fprintf(stderr, "usage: bench_cg N lookup|commit|batch OPS\n");
		return 2;
	}
	snprintf(name, sizeof(name), "/shg-cg-%d", (int)getpid());
	err = shg_seg_create(name, &o, &seg);
	if (!err)
		err = shg_thread_get(seg, &t);
	if (!err)
		err = shg_root_create(seg, "map", &root);
	if (err)
		die("setup", err);
	put_keys(root, true, NULL, 0, 0);
	while (i < n) {
		for (m = 0; m < BATCH && i < n; m++, i++)
			k[m] = key_of(i);
		put_keys(root, false, k, m, 0);
	}
	/* The lookup keys are drawn before counting starts, so that the
	 * count is the library's (read section, current node, get) plus a
	 * load and a compare of the loop. */
	if (!strcmp(phase, "lookup")) {
		uint64_t rng = 88172645463325252ull;

		lkeys = malloc(ops * sizeof(*lkeys));
		if (!lkeys)
			die("malloc", -ENOMEM);
		for (i = 0; i < ops; i++)
			lkeys[i] = key_of(pick(&rng, n));
	}
	if (shg_synchronize(seg, 0))
		fprintf(stderr, "bench_cg: synchronize failed\n");
	(void)shg_reclaim(seg);
	CALLGRIND_ZERO_STATS;
	CALLGRIND_START_INSTRUMENTATION;
	if (!strcmp(phase, "lookup"))
		hits = run_lookups(seg, root, t, lkeys, ops);
	else if (!strcmp(phase, "commit"))
		run_puts(root, n, ops, 1);
	else
		run_puts(root, n, ops, BATCH), per_op = BATCH;
	CALLGRIND_STOP_INSTRUMENTATION;
	printf("%s n=%" PRIu64 " ops=%" PRIu64 " hits=%" PRIu64 "\n", phase, n,
	       ops * per_op, hits);
	free(lkeys);
	shg_root_close(root);
	(void)shg_seg_close(seg);
	if (shg_seg_unlink(name))
		fprintf(stderr, "bench_cg: unlink %s failed\n", name);
	return strcmp(phase, "lookup") || hits == ops ? 0 : 1;
}
