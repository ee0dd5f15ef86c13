/* SPDX-License-Identifier: MIT */
/*
 * bench_micro - micro-benchmarks of shmgraph's foundation layer, measured
 * side by side with their peers in one run:
 *
 *   read_lock_pair  ns per read lock + unlock pair around an empty body:
 *                   shmgraph fence and membarrier flavors, each through the
 *                   function API (shg_read_lock: TLS lookup) and the inline
 *                   handle (shg_thread_read_lock), against liburcu memb and
 *                   qsbr (LGPL static inline versions) and an empty loop.
 *   grace_period    latency of shg_synchronize() idle and with a busy
 *                   reader process on the other core, against
 *                   urcu_memb_synchronize_rcu() idle and with a busy reader
 *                   thread; p50/p99 from a latency histogram.
 *   alloc_free      ns per shg_alloc + shg_free pair, 16..1024 bytes, LIFO
 *                   and batches of 1000, against glibc malloc/free.
 *   retire_reclaim  ns per shg_retire of a 64-byte block, shg_reclaim
 *                   every 1000 retires included.
 *
 * All cases are calibrated once, then repeated interleaved (A B C A B C
 * ...), and the median of the reps is reported. JSON lines (one per case)
 * go to --json FILE (appended) or stdout; the table goes to stdout (stderr
 * when the JSON lines go to stdout).
 */
#define _LGPL_SOURCE
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <urcu/urcu-memb.h>
#include <urcu/urcu-qsbr.h>

#include "benchutil.h"
#include "knobs.h"
#include <shmgraph.h>

#define unlikely(x) __builtin_expect(!!(x), 0)

#define PAIR_MIN_ITERS 10000000ull /* pairs per rep, full run */
#define PAIR_MIN_ITERS_QUICK 1000000ull
#define BATCH 1000 /* blocks per batch (alloc_free batch, retire) */
#define GLIBC_TRIM_THRESHOLD (64 << 20) /* see main() */
#define READER_WORK 16 /* multiply-adds inside a busy reader's section */

/* ---- global state ------------------------------------------------------ */

struct micro {
	bool quick;
	bool pin;
	int reader_cpu; /* CPU of the busy reader, -1: do not pin */
	char name[2][64]; /* segment names: fence, membarrier */
	struct shg_seg *seg[2];
	bool created[2]; /* we created (and must unlink) the segment */
	struct shg_thread *thr[2];
	const char *seg_skip[2]; /* why a segment is missing */
	char seg_skip_buf[2][128];
};

enum { FENCE = 0, MEMB = 1 };

static const int flavor_of[2] = { SHG_FLAVOR_FENCE, SHG_FLAVOR_MEMBARRIER };
static const char *const flavor_name[2] = { "fence", "membarrier" };

/* Start/stop handshake with a busy reader (thread or forked process);
 * lives in a MAP_SHARED page so that a child process sees it too. */
struct reader_sync {
	_Atomic int ready; /* reader is registered and looping */
	_Atomic int stop; /* reader must leave */
	_Atomic uint64_t sections; /* sections done (published every 1024) */
};

static struct micro M;
static struct reader_sync *sync_page;

/* ---- read_lock_pair ---------------------------------------------------- */

static int pair_empty(struct bench_case *c, const struct bench_ctl *ctl,
		      struct bench_sample *out)
{
	uint64_t i, n = ctl->iters, t0 = bench_now_ns();

	for (i = 0; i < n; i++)
		bench_barrier();
	out->ns = bench_now_ns() - t0;
	out->ops = n;
	return 0;
}

static int pair_shg_fn(struct bench_case *c, const struct bench_ctl *ctl,
		       struct bench_sample *out)
{
	struct shg_seg *seg = c->arg;
	uint64_t i, n = ctl->iters, t0 = bench_now_ns();

	for (i = 0; i < n; i++) {
		if (unlikely(shg_read_lock(seg) != 0))
			return SHG_ESLOTS;
		bench_barrier();
		shg_read_unlock(seg);
	}
	out->ns = bench_now_ns() - t0;
	out->ops = n;
	return 0;
}

static int pair_shg_inline(struct bench_case *c, const struct bench_ctl *ctl,
			   struct bench_sample *out)
{
	struct shg_thread *t = c->arg;
	uint64_t i, n = ctl->iters, t0 = bench_now_ns();

	for (i = 0; i < n; i++) {
		shg_thread_read_lock(t);
		bench_barrier();
		shg_thread_read_unlock(t);
	}
	out->ns = bench_now_ns() - t0;
	out->ops = n;
	return 0;
}

static int pair_urcu_memb(struct bench_case *c, const struct bench_ctl *ctl,
			  struct bench_sample *out)
{
	uint64_t i, n = ctl->iters, t0 = bench_now_ns();

	for (i = 0; i < n; i++) {
		urcu_memb_read_lock();
		bench_barrier();
		urcu_memb_read_unlock();
	}
	out->ns = bench_now_ns() - t0;
	out->ops = n;
	return 0;
}

static int pair_urcu_qsbr(struct bench_case *c, const struct bench_ctl *ctl,
			  struct bench_sample *out)
{
	uint64_t i, n = ctl->iters, t0 = bench_now_ns();

	for (i = 0; i < n; i++) {
		urcu_qsbr_read_lock();
		bench_barrier();
		urcu_qsbr_read_unlock();
	}
	out->ns = bench_now_ns() - t0;
	out->ops = n;
	return 0;
}

static int pair_urcu_qsbr_qs(struct bench_case *c, const struct bench_ctl *ctl,
			     struct bench_sample *out)
{
	uint64_t i, n = ctl->iters, t0 = bench_now_ns();

	for (i = 0; i < n; i++) {
		urcu_qsbr_read_lock();
		bench_barrier();
		urcu_qsbr_read_unlock();
		urcu_qsbr_quiescent_state();
	}
	out->ns = bench_now_ns() - t0;
	out->ops = n;
	return 0;
}

/* ---- busy readers ------------------------------------------------------ */

static inline uint64_t reader_work(uint64_t x)
{
	int k;

	for (k = 0; k < READER_WORK; k++) {
		x = x * 6364136223846793005ull + 1442695040888963407ull;
		bench_keep(x);
	}
	return x;
}

/* Body of the forked reader process: its own handle on the segment. Dies
 * with the parent, so that an interrupted run leaves no spinning child. */
static void reader_process(int flavor_idx, pid_t parent)
{
	struct shg_opts o = { .size = sizeof(o) };
	struct shg_seg *seg;
	struct shg_thread *t;
	uint64_t n = 0, x = 1;

	if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
		_exit(4);
	if (M.reader_cpu >= 0)
		bench_pin_cpu(M.reader_cpu);
	o.flavor = flavor_of[flavor_idx];
	if (shg_seg_open(M.name[flavor_idx], &o, &seg))
		_exit(2);
	if (shg_thread_get(seg, &t)) {
		shg_seg_close(seg);
		_exit(3);
	}
	atomic_store(&sync_page->ready, 1);
	while (!atomic_load_explicit(&sync_page->stop, memory_order_relaxed)) {
		shg_thread_read_lock(t);
		x = reader_work(x);
		shg_thread_read_unlock(t);
		if ((++n & 1023) == 0)
			atomic_store_explicit(&sync_page->sections, n,
					      memory_order_relaxed);
	}
	shg_seg_close(seg);
	_exit(0);
}

static void *reader_thread(void *arg)
{
	uint64_t n = 0, x = 1;

	(void)arg;
	if (M.reader_cpu >= 0)
		bench_pin_cpu(M.reader_cpu);
	urcu_memb_register_thread();
	atomic_store(&sync_page->ready, 1);
	while (!atomic_load_explicit(&sync_page->stop, memory_order_relaxed)) {
		urcu_memb_read_lock();
		x = reader_work(x);
		urcu_memb_read_unlock();
		if ((++n & 1023) == 0)
			atomic_store_explicit(&sync_page->sections, n,
					      memory_order_relaxed);
	}
	urcu_memb_unregister_thread();
	return NULL;
}

static void sync_reset(void)
{
	atomic_store(&sync_page->ready, 0);
	atomic_store(&sync_page->stop, 0);
	atomic_store(&sync_page->sections, 0);
}

/* Wait up to 5 s for the reader to be ready; false if it died first. */
static bool wait_ready(pid_t child)
{
	struct timespec ts = { 0, 100000 };
	int i, st;

	for (i = 0; i < 50000; i++) {
		if (atomic_load(&sync_page->ready))
			return true;
		if (child > 0 && waitpid(child, &st, WNOHANG) == child)
			return false;
		nanosleep(&ts, NULL);
	}
	return false;
}

/* Stop a reader process: ask, wait up to 2 s, then SIGKILL. */
static int stop_child(pid_t child)
{
	struct timespec ts = { 0, 1000000 };
	int i, st = 0;

	atomic_store(&sync_page->stop, 1);
	for (i = 0; i < 2000; i++) {
		pid_t r = waitpid(child, &st, WNOHANG);

		if (r == child)
			return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 :
								       -ECHILD;
		if (r < 0)
			return -errno;
		nanosleep(&ts, NULL);
	}
	kill(child, SIGKILL);
	waitpid(child, &st, 0);
	return -ETIMEDOUT;
}

/* ---- grace_period ------------------------------------------------------ */

/* Time synchronize calls back to back for ctl->target_ns. */
static int gp_loop(struct bench_case *c, const struct bench_ctl *ctl,
		   struct bench_sample *out, bool urcu)
{
	uint64_t start = bench_now_ns(), now = start, n = 0;

	do {
		uint64_t t0 = now;
		int err = 0;

		if (urcu)
			urcu_memb_synchronize_rcu();
		else
			err = shg_synchronize(c->arg, 0);
		now = bench_now_ns();
		if (err) {
			bench_case_skip(c, "failed: shg_synchronize: %s",
					shg_strerror(err));
			return err;
		}
		if (ctl->hist)
			bench_hist_record(ctl->hist, now - t0);
		n++;
	} while (now - start < ctl->target_ns);
	out->ns = now - start;
	out->ops = n;
	return 0;
}

static int gp_shg_idle(struct bench_case *c, const struct bench_ctl *ctl,
		       struct bench_sample *out)
{
	return gp_loop(c, ctl, out, false);
}

static int gp_urcu_idle(struct bench_case *c, const struct bench_ctl *ctl,
			struct bench_sample *out)
{
	return gp_loop(c, ctl, out, true);
}

/* Checks that the busy reader actually ran during the measurement. */
static int reader_check(struct bench_case *c, uint64_t before)
{
	if (atomic_load(&sync_page->sections) > before)
		return 0;
	bench_case_skip(c, "failed: the busy reader made no progress");
	return -EAGAIN;
}

static int gp_shg_busy(struct bench_case *c, const struct bench_ctl *ctl,
		       struct bench_sample *out)
{
	int idx = c->arg == M.seg[FENCE] ? FENCE : MEMB;
	pid_t child, parent = getpid();
	uint64_t before;
	int err, err2;

	sync_reset();
	fflush(NULL);
	child = fork();
	if (child < 0) {
		bench_case_skip(c, "failed: fork: %s", strerror(errno));
		return -errno;
	}
	if (child == 0)
		reader_process(idx, parent);
	if (!wait_ready(child)) {
		stop_child(child);
		bench_case_skip(c, "failed: reader process did not start");
		return -ECHILD;
	}
	before = atomic_load(&sync_page->sections);
	err = gp_loop(c, ctl, out, false);
	if (!err)
		err = reader_check(c, before);
	err2 = stop_child(child);
	if (!err && err2) {
		bench_case_skip(c, "failed: reader process: %s",
				strerror(-err2));
		err = err2;
	}
	return err;
}

static int gp_urcu_busy(struct bench_case *c, const struct bench_ctl *ctl,
			struct bench_sample *out)
{
	pthread_t th;
	uint64_t before;
	int err;

	sync_reset();
	err = pthread_create(&th, NULL, reader_thread, NULL);
	if (err) {
		bench_case_skip(c, "failed: pthread_create: %s", strerror(err));
		return -err;
	}
	if (!wait_ready(0)) {
		atomic_store(&sync_page->stop, 1);
		pthread_join(th, NULL);
		bench_case_skip(c, "failed: reader thread did not start");
		return -EAGAIN;
	}
	before = atomic_load(&sync_page->sections);
	err = gp_loop(c, ctl, out, true);
	if (!err)
		err = reader_check(c, before);
	atomic_store(&sync_page->stop, 1);
	pthread_join(th, NULL);
	return err;
}

/* ---- alloc_free and retire_reclaim ------------------------------------- */

struct alloc_arg {
	size_t size;
	bool batch;
};

static const size_t alloc_sizes[] = { 16, 64, 256, 1024 };
#define NSIZES (sizeof(alloc_sizes) / sizeof(alloc_sizes[0]))
static struct alloc_arg alloc_args[NSIZES][2];

static int alloc_fail(struct bench_case *c, const char *what, int err)
{
	bench_case_skip(c, "failed: %s: %s", what, shg_strerror(err));
	return err;
}

static int shg_lifo(struct bench_case *c, size_t size, uint64_t n)
{
	struct shg_seg *seg = M.seg[FENCE];
	uint64_t i;
	int err;

	for (i = 0; i < n; i++) {
		struct shg_off o;

		err = shg_alloc(seg, size, &o);
		if (unlikely(err))
			return alloc_fail(c, "shg_alloc", err);
		bench_keep(o.v);
		err = shg_free(seg, o);
		if (unlikely(err))
			return alloc_fail(c, "shg_free", err);
	}
	return 0;
}

static int shg_batch(struct bench_case *c, size_t size, uint64_t rounds)
{
	struct shg_seg *seg = M.seg[FENCE];
	struct shg_off offs[BATCH];
	uint64_t r;
	int i, err;

	for (r = 0; r < rounds; r++) {
		for (i = 0; i < BATCH; i++) {
			err = shg_alloc(seg, size, &offs[i]);
			if (unlikely(err))
				return alloc_fail(c, "shg_alloc", err);
		}
		bench_barrier();
		for (i = 0; i < BATCH; i++) {
			err = shg_free(seg, offs[i]);
			if (unlikely(err))
				return alloc_fail(c, "shg_free", err);
		}
	}
	return 0;
}

static int alloc_shg(struct bench_case *c, const struct bench_ctl *ctl,
		     struct bench_sample *out)
{
	const struct alloc_arg *a = c->arg;
	uint64_t n = ctl->iters, t0;
	int err;

	if (a->batch)
		n = (n + BATCH - 1) / BATCH * BATCH;
	t0 = bench_now_ns();
	err = a->batch ? shg_batch(c, a->size, n / BATCH) :
			 shg_lifo(c, a->size, n);
	out->ns = bench_now_ns() - t0;
	out->ops = n;
	return err;
}

static int alloc_glibc(struct bench_case *c, const struct bench_ctl *ctl,
		       struct bench_sample *out)
{
	const struct alloc_arg *a = c->arg;
	void *ptrs[BATCH];
	uint64_t i, n = ctl->iters, t0;
	int j;

	if (a->batch)
		n = (n + BATCH - 1) / BATCH * BATCH;
	t0 = bench_now_ns();
	if (!a->batch) {
		for (i = 0; i < n; i++) {
			void *p = malloc(a->size);

			bench_keep(p);
			free(p);
		}
	} else {
		for (i = 0; i < n; i += BATCH) {
			for (j = 0; j < BATCH; j++) {
				ptrs[j] = malloc(a->size);
				bench_keep(ptrs[j]);
			}
			bench_barrier();
			for (j = 0; j < BATCH; j++)
				free(ptrs[j]);
		}
	}
	out->ns = bench_now_ns() - t0;
	out->ops = n;
	return 0;
}

/* Blocks are allocated untimed; the clock covers BATCH shg_retire calls
 * and one shg_reclaim. */
static int retire_shg(struct bench_case *c, const struct bench_ctl *ctl,
		      struct bench_sample *out)
{
	struct shg_seg *seg = M.seg[FENCE];
	struct shg_off offs[BATCH];
	uint64_t r, rounds = (ctl->iters + BATCH - 1) / BATCH, ns = 0;
	int i, err;

	for (r = 0; r < rounds; r++) {
		uint64_t t0;
		int64_t freed;

		for (i = 0; i < BATCH; i++) {
			err = shg_alloc(seg, 64, &offs[i]);
			if (err)
				return alloc_fail(c, "shg_alloc", err);
		}
		t0 = bench_now_ns();
		for (i = 0; i < BATCH; i++) {
			err = shg_retire(seg, offs[i]);
			if (unlikely(err))
				return alloc_fail(c, "shg_retire", err);
		}
		freed = shg_reclaim(seg);
		ns += bench_now_ns() - t0;
		if (freed < 0)
			return alloc_fail(c, "shg_reclaim", (int)freed);
	}
	out->ns = ns;
	out->ops = rounds * BATCH;
	return 0;
}

/* ---- case table -------------------------------------------------------- */

#define MAX_CASES 48

struct case_list {
	struct bench_case c[MAX_CASES];
	size_t n;
};

static struct bench_case *add(struct case_list *l, const char *system,
			      const char *variant, const char *workload,
			      bench_fn run, void *arg)
{
	struct bench_case *c;

	if (l->n >= MAX_CASES) {
		fprintf(stderr, "bench_micro: too many cases\n");
		exit(2);
	}
	c = &l->c[l->n++];
	bench_case_init(c);
	c->system = system;
	c->variant = variant;
	c->workload = workload;
	c->run = run;
	c->arg = arg;
	return c;
}

/* Skip a shmgraph case whose segment could not be created. */
static void need_seg(struct bench_case *c, int idx)
{
	if (!M.seg[idx])
		bench_case_skip(c, "%s", M.seg_skip[idx]);
}

static void add_pair_cases(struct case_list *l)
{
	static char memb_variant[96];
	uint64_t min = M.quick ? PAIR_MIN_ITERS_QUICK : PAIR_MIN_ITERS;
	const char *wl = "read_lock_pair";
	size_t first = l->n, memb, i;
	struct bench_case *c;
	int f;

	add(l, "none", "empty loop + compiler barrier (loop overhead)", wl,
	    pair_empty, NULL);
	for (f = FENCE; f <= MEMB; f++) {
		c = add(l, "shmgraph",
			f == FENCE ?
				"fence / shg_read_lock (function, TLS)" :
				"membarrier / shg_read_lock (function, TLS)",
			wl, pair_shg_fn, M.seg[f]);
		c->goal_ns = f == FENCE ? 7 : 1;
		need_seg(c, f);
		c = add(l, "shmgraph",
			f == FENCE ?
				"fence / shg_thread_read_lock (inline)" :
				"membarrier / shg_thread_read_lock (inline)",
			wl, pair_shg_inline, M.thr[f]);
		c->goal_ns = f == FENCE ? 7 : 1;
		need_seg(c, f);
	}
	snprintf(memb_variant, sizeof(memb_variant),
		 "memb / LGPL inline (%s on the read side)",
		 urcu_memb_has_sys_membarrier ? "compiler barrier" : "smp_mb");
	memb = l->n;
	add(l, "urcu-memb", memb_variant, wl, pair_urcu_memb, NULL);
	c = add(l, "urcu-qsbr", "qsbr / LGPL inline, empty lock, no QS call",
		wl, pair_urcu_qsbr, NULL);
	c->note = "qsbr's read lock and unlock are empty; the reader must "
		  "also call urcu_qsbr_quiescent_state() now and then, which "
		  "the next row does after every pair.";
	add(l, "urcu-qsbr", "qsbr / LGPL inline + quiescent_state per pair", wl,
	    pair_urcu_qsbr_qs, NULL);
	for (i = first; i < l->n; i++) {
		l->c[i].readers = 1;
		l->c[i].writers = 0;
		l->c[i].min_iters = min;
		if (i != memb)
			l->c[i].peer = (int)memb;
	}
}

static void add_gp_cases(struct case_list *l)
{
	const char *wl = "grace_period";
	size_t idle, busy, first = l->n, i;
	struct bench_case *c;
	int f;

	idle = l->n;
	c = add(l, "urcu-memb", "urcu_memb_synchronize_rcu / idle", wl,
		gp_urcu_idle, NULL);
	c->readers = 0;
	busy = l->n;
	c = add(l, "urcu-memb",
		"urcu_memb_synchronize_rcu / busy reader thread", wl,
		gp_urcu_busy, NULL);
	c->readers = 1;
	for (f = FENCE; f <= MEMB; f++) {
		static char v[2][2][64];

		snprintf(v[f][0], sizeof(v[f][0]), "%s / idle", flavor_name[f]);
		snprintf(v[f][1], sizeof(v[f][1]), "%s / busy reader process",
			 flavor_name[f]);
		c = add(l, "shmgraph", v[f][0], wl, gp_shg_idle, M.seg[f]);
		c->readers = 0;
		c->peer = (int)idle;
		need_seg(c, f);
		c = add(l, "shmgraph", v[f][1], wl, gp_shg_busy, M.seg[f]);
		c->readers = 1;
		c->peer = (int)busy;
		need_seg(c, f);
	}
	for (i = first; i < l->n; i++) {
		l->c[i].writers = 1;
		l->c[i].timed = true;
		l->c[i].latency = true;
	}
	l->c[busy].note = "busy reader: a reader thread (urcu) or process "
			  "(shmgraph) on the other core looping lock, "
			  "a few multiply-adds, unlock.";
}

static void add_alloc_cases(struct case_list *l)
{
	static char v[NSIZES][2][48];
	size_t s, peer;
	int b;

	for (s = 0; s < NSIZES; s++) {
		for (b = 0; b < 2; b++) {
			struct alloc_arg *a = &alloc_args[s][b];
			struct bench_case *c;

			a->size = alloc_sizes[s];
			a->batch = b;
			snprintf(v[s][b], sizeof(v[s][b]), "%zu B, %s", a->size,
				 b ? "batch: 1000 allocs, 1000 frees" :
				     "LIFO: alloc, free");
			peer = l->n;
			c = add(l, "glibc-malloc", v[s][b], "alloc_free",
				alloc_glibc, a);
			if (s == 0 && b == 0)
				c->note =
					"glibc runs with M_TRIM_THRESHOLD = 64 "
					"MiB, so it does not give memory back "
					"(and fault it in again) between "
					"batches, like the shmgraph heap.";
			c->bytes = (long long)a->size;
			c->readers = 0;
			c->writers = 1;
			c = add(l, "shmgraph", v[s][b], "alloc_free", alloc_shg,
				a);
			c->bytes = (long long)a->size;
			c->readers = 0;
			c->writers = 1;
			c->peer = (int)peer;
			c->goal_ratio = 2;
			need_seg(c, FENCE);
		}
	}
}

static void add_retire_cases(struct case_list *l)
{
	struct bench_case *c;

	c = add(l, "shmgraph", "64 B, shg_reclaim every 1000 retires",
		"retire_reclaim", retire_shg, NULL);
	c->bytes = 64;
	c->readers = 0;
	c->writers = 1;
	c->min_iters = BATCH;
	c->note = "time of shg_retire plus the amortised shg_reclaim (which "
		  "frees the blocks); the allocations are not timed.";
	need_seg(c, FENCE);
}

/* ---- setup and main ---------------------------------------------------- */

static void open_segments(void)
{
	int f;

	for (f = FENCE; f <= MEMB; f++) {
		struct shg_opts o = { .size = sizeof(o) };
		int err;

		o.flavor = flavor_of[f];
		o.capacity = 1ull << 30;
		snprintf(M.name[f], sizeof(M.name[f]), "/shg-bench-%d-%s",
			 (int)getpid(), flavor_name[f]);
		M.seg_skip[f] = M.seg_skip_buf[f];
		bench_cleanup_shm(M.name[f]);
		err = shg_seg_create(M.name[f], &o, &M.seg[f]);
		M.created[f] = err == 0;
		if (!err)
			err = shg_thread_get(M.seg[f], &M.thr[f]);
		if (err == -ENOTSUP && f == MEMB)
			snprintf(
				M.seg_skip_buf[f], sizeof(M.seg_skip_buf[f]),
				"membarrier(GLOBAL_EXPEDITED) not supported by "
				"this kernel (or SHG_NO_MEMBARRIER=1)");
		else if (err)
			snprintf(M.seg_skip_buf[f], sizeof(M.seg_skip_buf[f]),
				 "%s segment unavailable: %s", flavor_name[f],
				 shg_strerror(err));
		else if ((int)shg_seg_flavor(M.seg[f]) != flavor_of[f])
			snprintf(M.seg_skip_buf[f], sizeof(M.seg_skip_buf[f]),
				 "segment opened with flavor %d, not %s",
				 (int)shg_seg_flavor(M.seg[f]), flavor_name[f]);
		if (M.seg_skip_buf[f][0] && M.seg[f]) {
			shg_seg_close(M.seg[f]);
			M.seg[f] = NULL;
			M.thr[f] = NULL;
		}
		if (!M.seg[f])
			fprintf(stderr, "bench_micro: skipping %s cases: %s\n",
				flavor_name[f], M.seg_skip[f]);
	}
}

static void close_segments(void)
{
	int f;

	for (f = FENCE; f <= MEMB; f++) {
		if (M.seg[f]) {
			shg_seg_close(M.seg[f]);
			M.seg[f] = NULL;
		}
		if (M.created[f] && shg_seg_unlink(M.name[f]))
			fprintf(stderr, "bench_micro: could not unlink %s\n",
				M.name[f]);
	}
}

struct args {
	const char *json;
	unsigned reps;
	unsigned time_ms;
	bool verbose;
};

static const char usage_text[] =
	"bench_micro: read-lock pairs, grace periods, alloc/free, retire,\n"
	"against liburcu memb/qsbr and glibc malloc.\n"
	"Defaults: --reps 7 (quick 5), --duration-ms 100 (quick 15); no "
	"workload\nknob applies (--no-pin keeps the benchmark and the busy "
	"reader unpinned).\n";

static struct bench_knobs knobs;
static char config_json[1024];

static int parse_args(int argc, char **argv, struct args *a)
{
	if (bench_knobs_parse(&knobs, "bench_micro", 0, usage_text, argc, argv))
		return -EINVAL;
	M.quick = knobs.quick;
	M.pin = knobs.pin;
	a->json = knobs.json;
	a->verbose = knobs.verbose;
	a->reps = knobs.reps ? knobs.reps : M.quick ? 5 : 7;
	a->time_ms = knobs.time_ms ? knobs.time_ms : M.quick ? 15 : 100;
	knobs.reps = a->reps;
	knobs.time_ms = a->time_ms;
	bench_knobs_json(&knobs, config_json, sizeof(config_json));
	bench_set_config(config_json);
	return 0;
}

static void setup_cpus(void)
{
	const struct bench_machine *m = bench_machine();

	M.reader_cpu = -1;
	if (!M.pin || m->cores < 2)
		return;
	if (bench_pin_cpu(0) == 0)
		M.reader_cpu = m->cores - 1;
}

static void print_goals(FILE *f)
{
	fprintf(f, "Goals (bench/README.md): read-lock + unlock pair <= 1 ns "
		   "(membarrier flavor),\n<= 7 ns (fence flavor); alloc+free "
		   "<= 2x glibc malloc/free.\n");
	if (M.reader_cpu < 0)
		fprintf(f, "Busy readers were not pinned to their own CPU.\n");
	else
		fprintf(f,
			"Benchmark pinned to CPU 0, busy readers to CPU "
			"%d.\n",
			M.reader_cpu);
}

static int write_results(const struct args *a, struct case_list *l)
{
	FILE *jf = stdout, *tf = stderr;

	if (a->json && strcmp(a->json, "-") != 0) {
		jf = fopen(a->json, "ae");
		if (!jf) {
			fprintf(stderr, "bench_micro: %s: %s\n", a->json,
				strerror(errno));
			return -errno;
		}
		tf = stdout;
	}
	bench_json_write(jf, l->c, l->n);
	if (jf != stdout)
		fclose(jf);
	bench_table_print(tf, l->c, l->n,
			  "bench_micro: median ns/op over interleaved reps");
	print_goals(tf);
	return 0;
}

int main(int argc, char **argv)
{
	static struct case_list list;
	struct args a = { 0 };
	struct bench_opts o = { 0 };
	int err;

	if (parse_args(argc, argv, &a))
		return 2;
	sync_page = mmap(NULL, sizeof(*sync_page), PROT_READ | PROT_WRITE,
			 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sync_page == MAP_FAILED) {
		perror("bench_micro: mmap");
		return 1;
	}
	/* The shmgraph heap never returns memory to the kernel; keep glibc
	 * from trimming (brk shrink, then page faults on regrowth) between
	 * batches too, so that it is compared at its best. */
	mallopt(M_TRIM_THRESHOLD, GLIBC_TRIM_THRESHOLD);
	setup_cpus();
	open_segments();
	urcu_memb_register_thread();
	urcu_qsbr_register_thread();

	add_pair_cases(&list);
	add_gp_cases(&list);
	add_alloc_cases(&list);
	add_retire_cases(&list);

	o.reps = a.reps;
	o.target_ns = (uint64_t)a.time_ms * 1000000ull;
	o.verbose = a.verbose;
	err = bench_run(list.c, list.n, &o);

	urcu_qsbr_unregister_thread();
	urcu_memb_unregister_thread();
	close_segments();
	if (!err)
		err = write_results(&a, &list);
	bench_cases_free(list.c, list.n);
	return err ? 1 : 0;
}
