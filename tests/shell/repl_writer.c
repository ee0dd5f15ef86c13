/* SPDX-License-Identifier: MIT */
/*
 * repl_writer: a writer at full speed for the replication tests and
 * bench (tests/shell/test_repl.sh, bench/bench_repl.sh). Commits to the
 * u64 -> u64 map at ROOT of SEGMENT (created on the first commit) until
 * SECONDS have passed or COUNT commits were made, each commit putting
 * BATCH keys drawn from [0, KEYS) and deleting one key in eight commits;
 * then prints the last committed seq. Public API only.
 *
 *   repl_writer SEGMENT ROOT SECONDS COUNT KEYS BATCH [SEED] [--fill]
 *
 * --fill: first put keys 0..KEYS-1 (in commits of 10000 keys).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <shmgraph.h>

struct wr {
	uint64_t rng, keys, batch, n, lo, hi;
	bool fill;
};

static uint64_t next(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static int commit_fn(struct shg_txn *txn, void *arg)
{
	struct wr *w = arg;
	struct shg_val v = { .kind = SHG_KIND_U64 };
	uint64_t s = w->rng, i, k;
	int err = 0;

	if (!shg_txn_root_node(txn).v)
		err = shg_txn_map_new(txn, SHG_REF_ROOT, SHG_KIND_U64,
				      SHG_KIND_U64);
	if (w->fill) {
		for (k = w->lo; !err && k < w->hi; k++) {
			v.u64 = k;
			err = shg_txn_map_put_u64(txn, SHG_REF_ROOT, k, &v);
		}
		return err;
	}
	for (i = 0; !err && i < w->batch; i++) {
		k = next(&s) % w->keys;
		v.u64 = next(&s);
		err = shg_txn_map_put_u64(txn, SHG_REF_ROOT, k, &v);
	}
	if (!err && w->n % 8 == 7) {
		err = shg_txn_map_del_u64(txn, SHG_REF_ROOT,
					  next(&s) % w->keys);
		if (err == -ENOENT)
			err = 0;
	}
	return err;
}

static double mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
	struct shg_opts o = { .size = sizeof(o) };
	struct shg_version_info vi;
	struct shg_seg *seg;
	struct shg_root *r;
	struct wr w = { 0 };
	double secs, t0;
	uint64_t count;
	int err;

	if (argc < 7) {
		fprintf(stderr, "usage: repl_writer SEGMENT ROOT SECONDS COUNT "
				"KEYS BATCH [SEED] [--fill]\n");
		return 2;
	}
	secs = atof(argv[3]);
	count = strtoull(argv[4], NULL, 10);
	w.keys = strtoull(argv[5], NULL, 10);
	w.batch = strtoull(argv[6], NULL, 10);
	w.rng = argc > 7 ? strtoull(argv[7], NULL, 10) : 1;
	if (!w.keys)
		return 2;
	err = shg_seg_open(argv[1], &o, &seg);
	if (err) {
		fprintf(stderr, "repl_writer: %s: %s\n", argv[1],
			shg_strerror(err));
		return 2;
	}
	err = shg_root_open(seg, argv[2], &r);
	if (err == -ENOENT)
		err = shg_root_create(seg, argv[2], &r);
	if (!err && argc > 8 && !strcmp(argv[8], "--fill")) {
		w.fill = true;
		for (w.lo = 0; !err && w.lo < w.keys; w.lo = w.hi) {
			w.hi = w.lo + 10000 < w.keys ? w.lo + 10000 : w.keys;
			err = shg_update(r, commit_fn, &w, 0);
		}
		w.fill = false;
	}
	t0 = mono();
	while (!err && (!count || w.n < count) &&
	       (secs <= 0 || mono() - t0 < secs)) {
		err = shg_update(r, commit_fn, &w, 0);
		(void)next(&w.rng);
		w.n++;
	}
	if (!err) {
		err = shg_read_lock(seg);
		if (!err) {
			err = shg_version_info(seg, shg_version_current(r),
					       &vi);
			shg_read_unlock(seg);
		}
	}
	if (err) {
		fprintf(stderr, "repl_writer: %s\n", shg_strerror(err));
		return 2;
	}
	printf("%" PRIu64 "\n", vi.seq);
	fprintf(stderr, "repl_writer: %" PRIu64 " commits, %.0f/s\n", w.n,
		(double)w.n / (mono() - t0));
	shg_root_close(r);
	shg_seg_close(seg);
	return 0;
}
