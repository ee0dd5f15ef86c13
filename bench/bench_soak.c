/* SPDX-License-Identifier: MIT */
/*
 * bench_soak - a long run of single-update commits: does commit latency
 * stay flat, and does memory? One writer (this process) runs shg_update()
 * of one random key on a map of --keys entries (1M), --commits times
 * (10M), while one reader process looks random keys up alongside
 * (--readers 0 leaves it out). Every commit is timed with clock_gettime
 * into a log-linear histogram (no sort of 10M values); each --window
 * commits (500k) the program prints and writes one record: commits/s,
 * commit latency p50/p99/p999/max, the allocator's used, backed and
 * retired bytes at the window's end (shg_stats_get), and the reader's
 * lookups/s over the window.
 *
 * At the end a verdict: p99 of the last window against the first window
 * after the warm-up (window 0 is the warm-up when there are 3 or more),
 * and used bytes likewise; "flat" when the p99 grew by at most 1.5x and
 * used bytes by at most 1.1x. Used bytes count what waits for a grace
 * period too, so one sample swings by a retire batch with the moment the
 * last reclaim pass ran: the verdict takes the median of MEM_SAMPLES
 * samples spread over each window (the end-of-window value, the maximum
 * and used - retired are reported beside it). It is a report, not a test: the exit status
 * says only whether the run itself worked.
 *
 *   bench_soak [--keys N] [--commits N] [--window N] [--readers 0|1]
 *              [--quick] [--no-pin] [--json FILE]
 *
 * --quick: 200k commits, windows of 20k. Counts take k/M suffixes.
 * JSON lines ("bench":"soak") are appended to --json FILE: one per
 * window, then a summary record ("summary":true).
 *
 * Theory of operation (the reader process). The reader and the writer
 * share one anonymous MAP_SHARED page holding three counters: the
 * reader's lookups and misses, and a stop flag. They carry statistics and
 * a request to stop, never access to other data, so every access is a
 * relaxed atomic: the writer reads a count that is at most one batch of
 * lookups stale, and the reader sees the stop flag a little late, which
 * costs nothing (the writer then waits for it with waitpid(), which
 * orders everything after the reader's exit). The "ready" count is the
 * same: the writer starts the clock once the reader has done its first
 * batch, so that window 0 has the reader running throughout. The map
 * itself is read in shmgraph read sections (shg_thread_read_lock), which
 * carry their own ordering (include/shmgraph/inline.h).
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../common/shgutil.h"
#include "benchutil.h"
#include <shmgraph.h>

#define SEG_CAPACITY (8ull << 30) /* reserved, backed on demand */
#define ROOT_NAME "soak"
#define BUILD_TXN 1000 /* puts per txn while building the map */
#define READER_BATCH 256 /* lookups between counter updates */
#define MAX_WINDOWS 4096
#define MEM_SAMPLES 16 /* used-bytes samples per window */
#define P99_FLAT 1.5 /* last / first p99 at most this: flat */
#define USED_FLAT 1.1 /* last / first used bytes at most this: flat */

struct shared {
	uint64_t lookups; /* reader: lookups done (relaxed) */
	uint64_t misses; /* reader: keys not found (relaxed) */
	uint64_t stop; /* writer: set to 1 to stop the reader */
	uint64_t failed; /* reader: nonzero if it could not run */
};

struct window {
	uint64_t commits; /* commits in the window */
	uint64_t end; /* commits done at its end */
	double secs;
	uint64_t p50, p99, p999, max;
	double mean;
	uint64_t used, backed, retired, reclaimed; /* at the window's end */
	uint64_t used_med, used_max; /* over MEM_SAMPLES samples */
	double lookups_per_s; /* -1: no reader */
	uint64_t misses;
};

static struct {
	uint64_t keys, commits, window;
	unsigned readers;
	bool pin;
	const char *json;
} O = { 1000000, 10000000, 500000, 1, true, NULL };

/* The i-th key: an odd multiplier is a bijection on 64-bit words, so the
 * keys are distinct and spread over the hash space. */
static uint64_t key_of(uint64_t i)
{
	return (i + 1) * 0x9e3779b97f4a7c15ull;
}

/* xorshift64*: 64 random bits. */
static uint64_t rnd(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545f4914f6cdd1dull;
}

static uint64_t rnd_below(uint64_t *s, uint64_t n)
{
	return ((rnd(s) >> 32) * n) >> 32;
}

struct put_arg {
	const uint64_t *keys;
	uint64_t val;
	unsigned n;
	bool create;
};

static int put_fn(struct shg_txn *txn, void *arg)
{
	const struct put_arg *a = arg;
	struct shg_val v = { .kind = SHG_KIND_U64, .u64 = a->val };
	unsigned i;
	int err = 0;

	if (a->create)
		err = shg_txn_map_new(txn, SHG_REF_ROOT, SHG_KIND_U64,
				      SHG_KIND_U64);
	for (i = 0; !err && i < a->n; i++)
		err = shg_txn_map_put_u64(txn, SHG_REF_ROOT, a->keys[i], &v);
	return err;
}

static int build(struct shg_root *root, uint64_t n)
{
	uint64_t keys[BUILD_TXN], i = 0;
	struct put_arg a = { .keys = keys, .create = true };
	int err = shg_update(root, put_fn, &a, 0);

	a.create = false;
	while (!err && i < n) {
		for (a.n = 0; a.n < BUILD_TXN && i < n; a.n++, i++)
			keys[a.n] = key_of(i);
		a.val = i;
		err = shg_update(root, put_fn, &a, 0);
	}
	return err;
}

/* The reader process: random lookups in read sections until told to
 * stop (or the writer dies: PR_SET_PDEATHSIG). */
static void reader(const char *name, struct shared *sh, int cpu)
{
	struct shg_seg *seg;
	struct shg_root *root;
	struct shg_thread *t;
	uint64_t rng = 0x5eed0f5ea4ull | 1, sink = 0;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (cpu >= 0)
		(void)bench_pin_cpu(cpu);
	if (shg_seg_open(name, NULL, &seg)) {
		__atomic_store_n(&sh->failed, 1, __ATOMIC_RELAXED);
		_exit(10);
	}
	if (shg_root_open(seg, ROOT_NAME, &root) || shg_thread_get(seg, &t)) {
		__atomic_store_n(&sh->failed, 1, __ATOMIC_RELAXED);
		_exit(11);
	}
	while (!__atomic_load_n(&sh->stop, __ATOMIC_RELAXED)) {
		unsigned i, miss = 0;

		for (i = 0; i < READER_BATCH; i++) {
			uint64_t k = key_of(rnd_below(&rng, O.keys));
			struct shg_version_info vi;
			struct shg_val v;

			shg_thread_read_lock(t);
			if (shg_version_info(seg, shg_version_current(root),
					     &vi) == 0 &&
			    shg_map_get_u64(seg, vi.node, k, &v) == 0)
				sink += v.u64;
			else
				miss++;
			shg_thread_read_unlock(t);
		}
		bench_keep(sink);
		/* statistics only: relaxed (see the header) */
		__atomic_fetch_add(&sh->lookups, READER_BATCH,
				   __ATOMIC_RELAXED);
		if (miss)
			__atomic_fetch_add(&sh->misses, miss, __ATOMIC_RELAXED);
	}
	shg_root_close(root);
	shg_seg_close(seg);
	_exit(0);
}

static void json_head(FILE *f)
{
	const struct bench_machine *m = bench_machine();

	fputs("{\"bench\":\"soak\",\"system\":\"shmgraph\",\"commit\":", f);
	shg__json_str(f, m->commit);
	fputs(",\"machine\":", f);
	bench_json_machine(f, m);
	fprintf(f,
		",\"keys\":%llu,\"commits_total\":%llu,\"window_commits\":"
		"%llu,\"readers\":%u,\"pinned\":%s",
		(unsigned long long)O.keys, (unsigned long long)O.commits,
		(unsigned long long)O.window, O.readers,
		O.pin ? "true" : "false");
}

static void json_window(FILE *f, unsigned i, const struct window *w)
{
	json_head(f);
	fprintf(f,
		",\"window\":%u,\"commits\":%llu,\"commits_end\":%llu,"
		"\"secs\":%.3f,\"commits_per_s\":%.0f,\"p50_ns\":%llu,"
		"\"p99_ns\":%llu,\"p999_ns\":%llu,\"max_ns\":%llu,"
		"\"mean_ns\":%.1f,\"used_bytes\":%llu,\"backed_bytes\":%llu,"
		"\"retired_bytes\":%llu,\"reclaimed_bytes\":%llu,"
		"\"used_median_bytes\":%llu,\"used_max_bytes\":%llu,"
		"\"live_bytes\":%llu,\"reader_lookups_per_s\":",
		i, (unsigned long long)w->commits, (unsigned long long)w->end,
		w->secs, (double)w->commits / w->secs,
		(unsigned long long)w->p50, (unsigned long long)w->p99,
		(unsigned long long)w->p999, (unsigned long long)w->max,
		w->mean, (unsigned long long)w->used,
		(unsigned long long)w->backed, (unsigned long long)w->retired,
		(unsigned long long)w->reclaimed,
		(unsigned long long)w->used_med,
		(unsigned long long)w->used_max,
		(unsigned long long)(w->used - w->retired));
	if (w->lookups_per_s < 0)
		fputs("null,\"reader_misses\":null}\n", f);
	else
		fprintf(f, "%.0f,\"reader_misses\":%llu}\n", w->lookups_per_s,
			(unsigned long long)w->misses);
}

static void print_window(unsigned i, const struct window *w)
{
	char lk[32];

	if (w->lookups_per_s < 0)
		snprintf(lk, sizeof(lk), "-");
	else
		snprintf(lk, sizeof(lk), "%.2f", w->lookups_per_s / 1e6);
	printf("%4u %8.2f %9.0f %7.2f %7.2f %8.2f %9.1f %9.1f %9.1f %8.2f "
	       "%9s\n",
	       i, (double)w->end / 1e6, (double)w->commits / w->secs,
	       (double)w->p50 / 1e3, (double)w->p99 / 1e3,
	       (double)w->p999 / 1e3, (double)w->max / 1e3,
	       (double)w->used_med / 1048576.0, (double)w->backed / 1048576.0,
	       (double)w->retired / 1048576.0, lk);
	fflush(stdout);
}

static int parse_count(const char *opt, const char *s, uint64_t *out)
{
	if (shg__parse_count(s, out) || *out == 0) {
		fprintf(stderr, "bench_soak: bad value for %s: %s\n", opt, s);
		return -EINVAL;
	}
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: bench_soak [--keys N] [--commits N] [--window N] "
		"[--readers 0|1]\n"
		"                  [--quick] [--no-pin] [--json FILE]\n"
		"defaults: --keys 1M --commits 10M --window 500k --readers 1; "
		"--quick:\n200k commits in windows of 20k\n");
}

static int parse_args(int argc, char **argv)
{
	bool quick = false, commits = false, window = false;
	uint64_t v;
	int i;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : "";

		if (!strcmp(a, "--quick")) {
			quick = true;
		} else if (!strcmp(a, "--no-pin")) {
			O.pin = false;
		} else if (!strcmp(a, "--json") && i + 1 < argc) {
			O.json = argv[++i];
		} else if (!strcmp(a, "--keys") && i + 1 < argc) {
			if (parse_count(a, argv[++i], &O.keys))
				return -EINVAL;
		} else if (!strcmp(a, "--commits") && i + 1 < argc) {
			if (parse_count(a, argv[++i], &O.commits))
				return -EINVAL;
			commits = true;
		} else if (!strcmp(a, "--window") && i + 1 < argc) {
			if (parse_count(a, argv[++i], &O.window))
				return -EINVAL;
			window = true;
		} else if (!strcmp(a, "--readers") && i + 1 < argc) {
			if (shg__parse_count(argv[++i], &v) || v > 1) {
				fprintf(stderr,
					"bench_soak: --readers is 0 or 1\n");
				return -EINVAL;
			}
			O.readers = (unsigned)v;
		} else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			exit(0);
		} else if (!strncmp(a, "--", 2)) {
			/* scripts/bench.sh passes every program the same knobs */
			fprintf(stderr,
				"bench_soak: knob %s not used, ignored\n", a);
			if (*val && strncmp(val, "--", 2))
				i++;
		} else {
			usage(stderr);
			return -EINVAL;
		}
	}
	if (quick && !commits)
		O.commits = 200000;
	if (quick && !window)
		O.window = 20000;
	if (O.window > O.commits)
		O.window = O.commits;
	if (O.commits / O.window >= MAX_WINDOWS) {
		fprintf(stderr, "bench_soak: at most %d windows\n",
			MAX_WINDOWS - 1);
		return -EINVAL;
	}
	return 0;
}

/* The verdict over windows @w[0..n): base is the first window after the
 * warm-up (window 0 when there are fewer than 3). */
static void verdict(FILE *jf, const struct window *w, unsigned n,
		    const struct bench_hist *all, double secs)
{
	unsigned b = n >= 3 ? 1 : 0;
	double pr = (double)w[n - 1].p99 / (double)(w[b].p99 ? w[b].p99 : 1);
	double ur = (double)w[n - 1].used_med /
		    (double)(w[b].used_med ? w[b].used_med : 1);
	double br = (double)w[n - 1].backed /
		    (double)(w[b].backed ? w[b].backed : 1);
	bool pf = pr <= P99_FLAT, uf = ur <= USED_FLAT;

	printf("\nall %llu commits: p50 %.2f us, p99 %.2f us, p999 %.2f us, "
	       "max %.1f us; %.1f s\n",
	       (unsigned long long)all->count,
	       (double)bench_hist_quantile(all, 0.5) / 1e3,
	       (double)bench_hist_quantile(all, 0.99) / 1e3,
	       (double)bench_hist_quantile(all, 0.999) / 1e3,
	       (double)all->max / 1e3, secs);
	printf("verdict (window %u against window %u%s):\n", n - 1, b,
	       b ? ", window 0 is the warm-up" : "");
	printf("  commit p99  %.2f us -> %.2f us = %.2fx (<= %.1fx): %s\n",
	       (double)w[b].p99 / 1e3, (double)w[n - 1].p99 / 1e3, pr, P99_FLAT,
	       pf ? "flat" : "NOT flat");
	printf("  used bytes (window median) %.1f MiB -> %.1f MiB = %.3fx "
	       "(<= %.1fx): %s\n",
	       (double)w[b].used_med / 1048576.0,
	       (double)w[n - 1].used_med / 1048576.0, ur, USED_FLAT,
	       uf ? "flat" : "NOT flat");
	printf("  used bytes at the window's end %.1f MiB -> %.1f MiB, window "
	       "max %.1f -> %.1f MiB (information)\n",
	       (double)w[b].used / 1048576.0, (double)w[n - 1].used / 1048576.0,
	       (double)w[b].used_max / 1048576.0,
	       (double)w[n - 1].used_max / 1048576.0);
	printf("  backed      %.1f MiB -> %.1f MiB = %.3fx (information)\n",
	       (double)w[b].backed / 1048576.0,
	       (double)w[n - 1].backed / 1048576.0, br);
	printf("  used - retired (live) %.1f MiB -> %.1f MiB (information: "
	       "used also counts what waits for a grace period)\n",
	       (double)(w[b].used - w[b].retired) / 1048576.0,
	       (double)(w[n - 1].used - w[n - 1].retired) / 1048576.0);
	if (!jf)
		return;
	json_head(jf);
	fprintf(jf,
		",\"summary\":true,\"windows\":%u,\"base_window\":%u,"
		"\"secs\":%.3f,\"p50_ns\":%llu,\"p99_ns\":%llu,"
		"\"p999_ns\":%llu,\"max_ns\":%llu,\"p99_first_ns\":%llu,"
		"\"p99_last_ns\":%llu,\"p99_ratio\":%.4f,\"p99_limit\":%.2f,"
		"\"p99_flat\":%s,\"used_first\":%llu,\"used_last\":%llu,"
		"\"used_ratio\":%.4f,\"used_limit\":%.2f,\"used_flat\":%s,"
		"\"backed_first\":%llu,\"backed_last\":%llu}\n",
		n, b, secs, (unsigned long long)bench_hist_quantile(all, 0.5),
		(unsigned long long)bench_hist_quantile(all, 0.99),
		(unsigned long long)bench_hist_quantile(all, 0.999),
		(unsigned long long)all->max, (unsigned long long)w[b].p99,
		(unsigned long long)w[n - 1].p99, pr, P99_FLAT,
		pf ? "true" : "false", (unsigned long long)w[b].used_med,
		(unsigned long long)w[n - 1].used_med, ur, USED_FLAT,
		uf ? "true" : "false", (unsigned long long)w[b].backed,
		(unsigned long long)w[n - 1].backed);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Close window @w: latency from @h, memory now and over the window's
 * @ns used-bytes samples @smp (sorted here), the reader's rate. */
static int close_window(struct window *w, struct shg_seg *seg,
			const struct bench_hist *h, const struct shared *sh,
			uint64_t *smp, unsigned ns, uint64_t *lk0,
			uint64_t *ms0)
{
	struct shg_stats st;
	int err = shg_stats_get(seg, &st);

	if (err)
		return err;
	smp[ns++] = st.small_used_bytes + st.large_used_bytes;
	qsort(smp, ns, sizeof(*smp), cmp_u64);
	w->used_med = smp[ns / 2];
	w->used_max = smp[ns - 1];
	w->commits = h->count;
	w->p50 = bench_hist_quantile(h, 0.5);
	w->p99 = bench_hist_quantile(h, 0.99);
	w->p999 = bench_hist_quantile(h, 0.999);
	w->max = h->max;
	w->mean = bench_hist_mean(h);
	w->used = st.small_used_bytes + st.large_used_bytes;
	w->backed = st.backed;
	w->retired = st.retired_bytes;
	w->reclaimed = st.reclaimed_bytes;
	w->lookups_per_s = -1;
	if (sh) {
		uint64_t lk = __atomic_load_n(&sh->lookups, __ATOMIC_RELAXED);
		uint64_t ms = __atomic_load_n(&sh->misses, __ATOMIC_RELAXED);

		w->lookups_per_s = (double)(lk - *lk0) / w->secs;
		w->misses = ms - *ms0;
		*lk0 = lk;
		*ms0 = ms;
	}
	return 0;
}

static int run(struct shg_seg *seg, struct shg_root *root, struct shared *sh,
	       FILE *jf)
{
	static struct window w[MAX_WINDOWS];
	static struct bench_hist h, all;
	uint64_t rng = 0xc0ffee123ull | 1, done = 0, lk0 = 0, ms0 = 0;
	uint64_t t_start, t_win, smp[MEM_SAMPLES + 1];
	uint64_t every = O.window / MEM_SAMPLES ? O.window / MEM_SAMPLES : 1;
	unsigned nw = 0, ns = 0;
	int err = 0;

	bench_hist_reset(&h);
	bench_hist_reset(&all);
	printf("%4s %8s %9s %7s %7s %8s %9s %9s %9s %8s %9s\n", "win",
	       "Mcommits", "commits/s", "p50 us", "p99 us", "p999 us", "max us",
	       "used MiB", "backedMiB", "retMiB", "Mlookup/s");
	printf("(used: median of %d samples over the window; backed, retired: "
	       "at its end)\n",
	       MEM_SAMPLES);
	if (sh) {
		lk0 = __atomic_load_n(&sh->lookups, __ATOMIC_RELAXED);
		ms0 = __atomic_load_n(&sh->misses, __ATOMIC_RELAXED);
	}
	t_start = t_win = bench_now_ns();
	while (done < O.commits) {
		uint64_t key = key_of(rnd_below(&rng, O.keys));
		struct put_arg a = { .keys = &key, .n = 1, .val = done };
		uint64_t t0 = bench_now_ns(), t1;

		err = shg_update(root, put_fn, &a, 0);
		t1 = bench_now_ns();
		if (err) {
			fprintf(stderr, "bench_soak: commit %llu failed: %s\n",
				(unsigned long long)done, shg_strerror(err));
			break;
		}
		bench_hist_record(&h, t1 - t0);
		done++;
		/* used bytes at MEM_SAMPLES points of the window (not timed) */
		if (done % every == 0 && ns < MEM_SAMPLES &&
		    done % O.window != 0) {
			struct shg_stats st;

			if (shg_stats_get(seg, &st) == 0)
				smp[ns++] = st.small_used_bytes +
					    st.large_used_bytes;
		}
		if (done % O.window == 0 || done == O.commits) {
			w[nw].end = done;
			w[nw].secs = (double)(t1 - t_win) / 1e9;
			t_win = t1;
			err = close_window(&w[nw], seg, &h, sh, smp, ns, &lk0,
					   &ms0);
			ns = 0;
			if (err) {
				fprintf(stderr,
					"bench_soak: shg_stats_get: %s\n",
					shg_strerror(err));
				break;
			}
			bench_hist_merge(&all, &h);
			bench_hist_reset(&h);
			print_window(nw, &w[nw]);
			if (jf)
				json_window(jf, nw, &w[nw]);
			nw++;
		}
	}
	if (nw)
		verdict(jf, w, nw, &all,
			(double)(bench_now_ns() - t_start) / 1e9);
	if (sh) {
		uint64_t ms = __atomic_load_n(&sh->misses, __ATOMIC_RELAXED);

		printf("reader: %llu lookups, %llu misses%s\n",
		       (unsigned long long)__atomic_load_n(&sh->lookups,
							   __ATOMIC_RELAXED),
		       (unsigned long long)ms,
		       ms ? " (NOT expected: every key is in the map)" : "");
		if (ms && !err)
			err = -EIO;
	}
	return err;
}

int main(int argc, char **argv)
{
	struct shg_opts o = { .size = sizeof(o), .capacity = SEG_CAPACITY };
	const struct bench_machine *m = bench_machine();
	struct shared *sh = NULL;
	struct shg_seg *seg;
	struct shg_root *root;
	char name[64];
	FILE *jf = NULL;
	pid_t rd = 0;
	uint64_t t0;
	int err, status;

	if (parse_args(argc, argv))
		return 2;
	if (O.json) {
		jf = fopen(O.json, "ae");
		if (!jf) {
			fprintf(stderr, "bench_soak: %s: %s\n", O.json,
				strerror(errno));
			return 1;
		}
	}
	if (O.pin && m->cores >= 2)
		(void)bench_pin_cpu(0);
	else
		O.pin = false;
	snprintf(name, sizeof(name), "/shg-bench-soak-%d", (int)getpid());
	(void)bench_cleanup_shm(name);
	err = shg_seg_create(name, &o, &seg);
	if (!err)
		err = shg_root_create(seg, ROOT_NAME, &root);
	if (err) {
		fprintf(stderr, "bench_soak: cannot create %s: %s\n", name,
			shg_strerror(err));
		return 1;
	}
	t0 = bench_now_ns();
	err = build(root, O.keys);
	if (err) {
		fprintf(stderr, "bench_soak: building %llu keys: %s\n",
			(unsigned long long)O.keys, shg_strerror(err));
		goto out;
	}
	printf("bench_soak: %llu single-update commits (shg_update of one "
	       "random key) on a %llu-key map\n(built in %.1f s), windows of "
	       "%llu commits, %s reader process%s; commit %s\n",
	       (unsigned long long)O.commits, (unsigned long long)O.keys,
	       (double)(bench_now_ns() - t0) / 1e9,
	       (unsigned long long)O.window, O.readers ? "one" : "no",
	       O.pin ? ", writer on CPU 0, reader on the last CPU" :
		       " (not pinned)",
	       m->commit);
	if (O.readers) {
		sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
			  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		if (sh == MAP_FAILED) {
			err = -errno;
			sh = NULL;
			goto out;
		}
		memset(sh, 0, sizeof(*sh));
		fflush(NULL);
		rd = fork();
		if (rd == 0)
			reader(name, sh, O.pin ? m->cores - 1 : -1);
		if (rd < 0) {
			err = -errno;
			goto out;
		}
		/* window 0 starts with the reader running */
		while (!__atomic_load_n(&sh->lookups, __ATOMIC_RELAXED) &&
		       !__atomic_load_n(&sh->failed, __ATOMIC_RELAXED))
			usleep(1000);
		if (__atomic_load_n(&sh->failed, __ATOMIC_RELAXED)) {
			fprintf(stderr, "bench_soak: the reader could not "
					"open the segment\n");
			err = -EIO;
			goto out;
		}
	}
	err = run(seg, root, sh, jf);
out:
	if (rd > 0 && sh) {
		__atomic_store_n(&sh->stop, 1, __ATOMIC_RELAXED);
		if (waitpid(rd, &status, 0) == rd &&
		    (!WIFEXITED(status) || WEXITSTATUS(status)) && !err) {
			fprintf(stderr, "bench_soak: the reader failed\n");
			err = -EIO;
		}
	}
	if (sh)
		munmap(sh, sizeof(*sh));
	if (jf)
		fclose(jf);
	shg_root_close(root);
	shg_seg_close(seg);
	if (shg_seg_unlink(name)) {
		fprintf(stderr, "bench_soak: could not unlink %s\n", name);
		return 1;
	}
	return err ? 1 : 0;
}
