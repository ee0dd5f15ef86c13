/* SPDX-License-Identifier: MIT */
/*
 * bench_procs - many short-lived processes, one after the other, each
 * attaching, committing one update (shg_update on a small map) and
 * closing: the pattern of shell scripts, prefork workers and CGI-style
 * tools. Reports, at checkpoints, the segment's backed and used bytes and
 * what stays retired, so a reader sees whether memory stays flat.
 *
 *   bench_procs [--procs N | --quick] [--reader] [--json FILE]
 *
 * --quick runs 500 processes (default 10,000). --json appends one JSON
 * object (one line) to FILE, as the other bench programs do.
 * --reader keeps one reader process in read sections back to back the
 * whole time (retired bytes then wait for its sections, one grace period
 * at a time). Goal (docs/ARCHITECTURE.md §5, a leaving thread's reclaim
 * pass): backed and used flat after the first few hundred processes,
 * retired bounded by one grace period's garbage.
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <shmgraph.h>

#define KEYS 8u

static int put_fn(struct shg_txn *txn, void *arg)
{
	const uint64_t *i = arg;
	struct shg_val v = { .kind = SHG_KIND_U64, .u64 = *i };
	int err = 0;

	if (shg_off_is_null(shg_txn_root_node(txn)))
		err = shg_txn_map_new(txn, SHG_REF_ROOT, SHG_KIND_U64,
				      SHG_KIND_U64);
	return err ? err :
		     shg_txn_map_put_u64(txn, SHG_REF_ROOT, *i % KEYS, &v);
}

static int one_put(const char *name, uint64_t i)
{
	struct shg_seg *seg;
	struct shg_root *root;
	int err = shg_seg_open(name, NULL, &seg);

	if (err)
		return 10;
	err = shg_root_open(seg, "cfg", &root);
	if (!err) {
		err = shg_update(root, put_fn, &i, 0);
		shg_root_close(root);
	}
	shg_seg_close(seg);
	return err ? 11 : 0;
}

static void reader(const char *name)
{
	struct shg_seg *seg;
	struct shg_root *root;
	struct shg_version_info vi;
	struct shg_val out;
	volatile uint64_t sink = 0;

	if (shg_seg_open(name, NULL, &seg) || shg_root_open(seg, "cfg", &root))
		_exit(10);
	for (;;) {
		if (shg_read_lock(seg))
			_exit(12);
		if (!shg_off_is_null(shg_version_current(root)) &&
		    !shg_version_info(seg, shg_version_current(root), &vi) &&
		    !shg_map_get_u64(seg, vi.node, 1, &out))
			sink += out.u64;
		shg_read_unlock(seg);
	}
}

struct point {
	unsigned procs;
	uint64_t backed, used, retired, reclaimed;
	double ms_per_proc;
};

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void usage(void)
{
	fprintf(stderr, "usage: bench_procs [--procs N | --quick] [--reader] "
			"[--json FILE]\n");
}

int main(int argc, char **argv)
{
	static const unsigned marks[] = { 10,	50,   100,  200,  500,
					  1000, 2000, 5000, 10000 };
	struct shg_opts o = { .size = sizeof(o), .capacity = 256u << 20 };
	struct point pts[sizeof(marks) / sizeof(marks[0]) + 1];
	unsigned nprocs = 10000, npts = 0, i, m = 0;
	const char *json = NULL;
	bool with_reader = false;
	struct shg_seg *seg;
	struct shg_root *root;
	struct shg_stats st;
	char name[64];
	pid_t rd = 0, pid;
	double t0, tlast;
	int status, argi;
	FILE *f;

	for (argi = 1; argi < argc; argi++) {
		if (!strcmp(argv[argi], "--procs") && argi + 1 < argc) {
			nprocs = (unsigned)strtoul(argv[++argi], NULL, 10);
		} else if (!strcmp(argv[argi], "--quick")) {
			nprocs = 500;
		} else if (!strcmp(argv[argi], "--reader")) {
			with_reader = true;
		} else if (!strcmp(argv[argi], "--json") && argi + 1 < argc) {
			json = argv[++argi];
		} else if (!strcmp(argv[argi], "-h") ||
			   !strcmp(argv[argi], "--help")) {
			usage();
			return 0;
		} else if (!strncmp(argv[argi], "--", 2)) {
			/* scripts/bench.sh passes every program the same knobs */
			fprintf(stderr,
				"bench_procs: knob %s not used, ignored\n",
				argv[argi]);
			if (argi + 1 < argc && strncmp(argv[argi + 1], "--", 2))
				argi++;
		} else {
			usage();
			return 2;
		}
	}
	if (!nprocs) {
		usage();
		return 2;
	}
	snprintf(name, sizeof(name), "/shg-bench-procs-%d", (int)getpid());
	if (shg_seg_create(name, &o, &seg) ||
	    shg_root_create(seg, "cfg", &root)) {
		fprintf(stderr, "bench_procs: cannot create %s\n", name);
		return 1;
	}
	if (with_reader) {
		rd = fork();
		if (rd == 0)
			reader(name);
	}
	t0 = tlast = now_ms();
	for (i = 1; i <= nprocs; i++) {
		pid = fork();
		if (pid == 0)
			_exit(one_put(name, i));
		if (pid < 0 || waitpid(pid, &status, 0) != pid ||
		    !WIFEXITED(status) || WEXITSTATUS(status)) {
			fprintf(stderr, "bench_procs: process %u failed\n", i);
			break;
		}
		if (i == nprocs ||
		    (m < sizeof(marks) / sizeof(marks[0]) && i == marks[m])) {
			double t = now_ms();
			unsigned prev = npts ? pts[npts - 1].procs : 0;

			if (shg_stats_get(seg, &st))
				break;
			pts[npts++] = (struct point){
				i,
				st.backed,
				st.small_used_bytes + st.large_used_bytes,
				st.retired_bytes,
				st.reclaimed_bytes,
				(t - tlast) / (i - prev),
			};
			tlast = t;
			if (i == marks[m])
				m++;
		}
	}
	if (rd) {
		kill(rd, SIGKILL);
		waitpid(rd, NULL, 0);
	}
	printf("%u one-update processes in sequence%s (%.1f s)\n",
	       i > nprocs ? nprocs : i - 1,
	       with_reader ? ", one reader in sections throughout" : "",
	       (now_ms() - t0) / 1e3);
	printf("%8s %12s %12s %12s %14s %10s\n", "procs", "backed", "used",
	       "retired", "reclaimed", "ms/proc");
	for (m = 0; m < npts; m++)
		printf("%8u %12llu %12llu %12llu %14llu %10.2f\n", pts[m].procs,
		       (unsigned long long)pts[m].backed,
		       (unsigned long long)pts[m].used,
		       (unsigned long long)pts[m].retired,
		       (unsigned long long)pts[m].reclaimed,
		       pts[m].ms_per_proc);
	if (json && (f = fopen(json, "a"))) {
		fprintf(f, "{\"bench\":\"procs\",\"reader\":%s,\"points\":[",
			with_reader ? "true" : "false");
		for (m = 0; m < npts; m++)
			fprintf(f,
				"%s{\"procs\":%u,\"backed\":%llu,\"used\":%llu,"
				"\"retired\":%llu,\"reclaimed\":%llu,"
				"\"ms_per_proc\":%.3f}",
				m ? "," : "", pts[m].procs,
				(unsigned long long)pts[m].backed,
				(unsigned long long)pts[m].used,
				(unsigned long long)pts[m].retired,
				(unsigned long long)pts[m].reclaimed,
				pts[m].ms_per_proc);
		fprintf(f, "]}\n");
		fclose(f);
	}
	shg_root_close(root);
	shg_seg_close(seg);
	if (shg_seg_unlink(name))
		return 1;
	return npts && pts[npts - 1].procs == nprocs ? 0 : 1;
}
