/* SPDX-License-Identifier: MIT */
/*
 * Workers of the map benchmark: a reader or writer that runs in its own
 * process (forked from the benchmark, attaching its own handles to the
 * system under test) or, for in-process systems, in a thread.
 *
 * Theory of operation. The benchmark and a worker share one control block
 * (an anonymous MAP_SHARED mapping, so a forked child sees it). A command
 * is posted by writing its parameters, then incrementing cmd_seq (release)
 * and waking the futex on it; the worker waits on cmd_seq (acquire), runs
 * the command, writes its results, then stores done_seq = cmd_seq
 * (release) and wakes the benchmark, which waits on done_seq (acquire) and
 * reads the results. The release/acquire pairs order parameters before
 * the command and results before its completion. A writer runs until the
 * stop flag is set; it counts its updates in progress (relaxed: only a
 * hint that it started). Idle workers sleep in FUTEX_WAIT, so they cost
 * nothing while other cases run. A worker process dies with the
 * benchmark (PR_SET_PDEATHSIG), and the benchmark kills a worker that does
 * not answer in time.
 */
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "peers.h"

#define WORKER_TIMEOUT_NS (600ull * 1000000000ull) /* one command, at most */

void peer_fail(struct peer *p, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(p->err, sizeof(p->err), fmt, ap);
	va_end(ap);
}

void peer_variant_add(struct peer *p, const char *fmt, ...)
{
	size_t len = strnlen(p->variant, sizeof(p->variant) - 1);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(p->variant + len, sizeof(p->variant) - len, fmt, ap);
	va_end(ap);
}

struct worker_ctl {
	_Atomic uint32_t cmd_seq;
	_Atomic uint32_t done_seq;
	_Atomic int ready; /* 1: attached; -1: attach failed */
	_Atomic int stop; /* writer: leave the loop */
	_Atomic uint64_t progress; /* writer: updates so far */
	int cmd; /* enum worker_cmd */
	uint64_t rate; /* writer: txns/s, 0 = flat out */
	unsigned txn_size; /* writer: updates per txn (>= 1) */
	struct bench_keydist wdist; /* writer: key ranks (n = 0: uniform) */
	int cpu_seen; /* sched_getcpu() after the last command */
	struct lookup_job job; /* lookup: parameters and results */
	bool want_hist;
	int result; /* 0 or negative code */
	uint64_t w_ops, w_ns; /* writer: updates done, their time */
	char err[256];
	struct bench_hist hist; /* lookup: sampled latencies */
	struct bench_hist w_hist; /* writer: every 16th txn's latency */
};

struct worker {
	struct worker_ctl *ctl;
	struct peer *peer;
	bool thread;
	pid_t pid;
	pthread_t th;
	int cpu;
	uint32_t seq;
};

static long futex(_Atomic uint32_t *addr, int op, uint32_t val,
		  const struct timespec *ts)
{
	return syscall(SYS_futex, (uint32_t *)addr, op, val, ts, NULL, 0);
}

static void wake(_Atomic uint32_t *addr)
{
	futex(addr, FUTEX_WAKE, INT32_MAX, NULL);
}

/* ---- worker side ------------------------------------------------------ */

static void ctl_error(struct worker_ctl *c, const char *what, const char *msg)
{
	snprintf(c->err, sizeof(c->err), "%s: %.200s", what, msg);
}

/* Lookups and updates mixed: read_pct % lookups, the rest updates in
 * txns of txn_size keys. Every 64th lookup timed, as in the pure loop. */
static int run_mixed(struct peer *p, void *h, struct lookup_job *j)
{
	uint64_t rng = j->seed | 1, t0 = bench_now_ns(), end = 0, i, n;
	uint64_t keys[1000], vals[1000], miss = 0, upd = 0;
	unsigned txn = j->txn_size ? j->txn_size : 1, k;
	uint32_t gen = (uint32_t)(j->seed >> 40) | 1;
	int err;

	if (txn > 1000)
		txn = 1000;
	if (!p->ops->lookup_one || p->ops->read_only) {
		peer_fail(p, "%s has no mixed read/write loop", p->ops->system);
		return -ENOTSUP;
	}
	n = j->duration_ns ? UINT64_MAX : j->iters;
	if (j->duration_ns)
		end = t0 + j->duration_ns;
	for (i = 0; i < n;) {
		if ((bench_rand64(&rng) >> 32) % 100 < j->read_pct) {
			uint64_t key = key_of(job_index(j, &rng)), v = 0, s;
			bool f;

			if ((i & 63) == 0 && j->hist) {
				s = bench_now_ns();
				f = p->ops->lookup_one(p, h, key, &v);
				bench_hist_record(j->hist, bench_now_ns() - s);
			} else {
				f = p->ops->lookup_one(p, h, key, &v);
			}
			miss += !f || !val_ok(key, v);
			i++;
		} else {
			for (k = 0; k < txn; k++) {
				keys[k] = key_of(job_index(j, &rng));
				vals[k] = val_of(keys[k], gen);
			}
			gen++;
			err = txn == 1 ?
				      p->ops->update(p, h, keys[0], vals[0]) :
				      p->ops->update_batch(p, h, keys, vals,
							   txn);
			if (err)
				return err;
			upd += txn;
			i += txn;
		}
		if (end && (i & 255) < txn && bench_now_ns() >= end)
			break;
	}
	j->ns = bench_now_ns() - t0;
	j->ops = i;
	j->misses = miss;
	j->updates = upd;
	return 0;
}

static int run_lookup(struct worker *w, void *h)
{
	struct worker_ctl *c = w->ctl;
	struct peer *p = w->peer;
	int err;

	bench_hist_reset(&c->hist);
	c->job.hist = c->want_hist ? &c->hist : NULL;
	c->job.updates = 0;
	if (c->job.read_pct > 0 && c->job.read_pct < 100)
		err = run_mixed(p, h, &c->job);
	else
		err = p->ops->lookup_loop(p, h, &c->job);
	c->job.hist = NULL;
	if (err)
		ctl_error(c, "lookup", p->err[0] ? p->err : strerror(-err));
	return err;
}

static void sleep_until(uint64_t t)
{
	struct timespec ts = { (time_t)(t / 1000000000ull),
			       (long)(t % 1000000000ull) };

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) ==
	       EINTR)
		;
}

static int run_write(struct worker *w, void *h)
{
	struct worker_ctl *c = w->ctl;
	struct peer *p = w->peer;
	uint64_t rng = 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid(), n = 0;
	uint64_t period = c->rate ? 1000000000ull / c->rate : 0;
	uint64_t t0 = bench_now_ns(), next = t0, txns = 0;
	uint64_t keys[1000], vals[1000];
	unsigned txn = c->txn_size ? c->txn_size : 1, k;
	uint32_t gen = 1;
	int err = 0;

	if (txn > 1000)
		txn = 1000;
	bench_hist_reset(&c->w_hist);
	while (!atomic_load_explicit(&c->stop, memory_order_relaxed)) {
		bool timed = (txns++ & 15) == 0;
		uint64_t s = timed ? bench_now_ns() : 0;

		for (k = 0; k < txn; k++) {
			keys[k] = key_of(
				c->wdist.n ?
					bench_keydist_next(&c->wdist, &rng) :
					rand_index(&rng, p->nkeys));
			vals[k] = val_of(keys[k], gen);
		}
		gen++;
		err = txn == 1 ? p->ops->update(p, h, keys[0], vals[0]) :
				 p->ops->update_batch(p, h, keys, vals, txn);
		if (err) {
			ctl_error(c, "update",
				  p->err[0] ? p->err : strerror(-err));
			break;
		}
		if (timed)
			bench_hist_record(&c->w_hist, bench_now_ns() - s);
		n += txn;
		atomic_store_explicit(&c->progress, n, memory_order_relaxed);
		if (period) {
			next += period;
			if (next > bench_now_ns())
				sleep_until(next);
		}
	}
	c->w_ns = bench_now_ns() - t0;
	c->w_ops = n;
	return err;
}

static void worker_loop(struct worker *w)
{
	struct worker_ctl *c = w->ctl;
	struct peer *p = w->peer;
	uint32_t seen = 0;
	void *h = NULL;
	int err;

	if (w->cpu >= 0)
		bench_pin_cpu(w->cpu);
	err = p->ops->attach(p, &h);
	if (err) {
		ctl_error(c, "attach", p->err[0] ? p->err : strerror(-err));
		atomic_store_explicit(&c->ready, -1, memory_order_release);
		return;
	}
	c->cpu_seen = sched_getcpu();
	atomic_store_explicit(&c->ready, 1, memory_order_release);
	for (;;) {
		struct timespec ts = { 0, 200000000 };
		uint32_t s =
			atomic_load_explicit(&c->cmd_seq, memory_order_acquire);

		if (s == seen) {
			futex(&c->cmd_seq, FUTEX_WAIT, s, &ts);
			continue;
		}
		seen = s;
		if (c->cmd == WCMD_EXIT)
			break;
		c->err[0] = '\0';
		if (c->cmd == WCMD_LOOKUP)
			c->result = run_lookup(w, h);
		else if (c->cmd == WCMD_WRITE)
			c->result = run_write(w, h);
		else
			c->result = -EINVAL;
		c->cpu_seen = sched_getcpu();
		atomic_store_explicit(&c->done_seq, seen, memory_order_release);
		wake(&c->done_seq);
	}
	p->ops->detach(p, h);
	atomic_store_explicit(&c->done_seq, seen, memory_order_release);
	wake(&c->done_seq);
}

static void *worker_thread(void *arg)
{
	worker_loop(arg);
	return NULL;
}

/* ---- benchmark side --------------------------------------------------- */

static bool worker_alive(struct worker *w)
{
	int st;

	if (w->thread)
		return true;
	if (w->pid <= 0)
		return false;
	if (waitpid(w->pid, &st, WNOHANG) == w->pid) {
		w->pid = -1;
		return false;
	}
	return true;
}

int worker_start(struct peer *p, int cpu, struct worker **out)
{
	struct worker *w = calloc(1, sizeof(*w));
	pid_t parent = getpid();
	int i;

	if (!w)
		return -ENOMEM;
	w->ctl = mmap(NULL, sizeof(*w->ctl), PROT_READ | PROT_WRITE,
		      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (w->ctl == MAP_FAILED) {
		free(w);
		return -ENOMEM;
	}
	w->peer = p;
	w->cpu = cpu;
	w->thread = p->ops->in_process;
	if (w->thread) {
		int err = pthread_create(&w->th, NULL, worker_thread, w);

		if (err) {
			munmap(w->ctl, sizeof(*w->ctl));
			free(w);
			return -err;
		}
	} else {
		fflush(NULL);
		w->pid = fork();
		if (w->pid < 0) {
			int err = -errno;

			munmap(w->ctl, sizeof(*w->ctl));
			free(w);
			return err;
		}
		if (w->pid == 0) {
			if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 ||
			    getppid() != parent)
				_exit(4);
			worker_loop(w);
			_exit(0);
		}
	}
	*out = w;
	for (i = 0; i < 30000; i++) { /* 30 s */
		struct timespec ts = { 0, 1000000 };
		int r = atomic_load_explicit(&w->ctl->ready,
					     memory_order_acquire);

		if (r == 1)
			return 0;
		if (r < 0 || !worker_alive(w))
			break;
		nanosleep(&ts, NULL);
	}
	snprintf(p->err, sizeof(p->err), "worker did not start: %.200s",
		 w->ctl->err[0] ? w->ctl->err : "no answer");
	worker_stop(w);
	*out = NULL;
	return -ECHILD;
}

static int post(struct worker *w, int cmd)
{
	w->ctl->cmd = cmd;
	w->seq++;
	atomic_store_explicit(&w->ctl->cmd_seq, w->seq, memory_order_release);
	wake(&w->ctl->cmd_seq);
	return 0;
}

static int wait_done(struct worker *w)
{
	uint64_t t0 = bench_now_ns();

	for (;;) {
		struct timespec ts = { 0, 50000000 };
		uint32_t d = atomic_load_explicit(&w->ctl->done_seq,
						  memory_order_acquire);

		if (d == w->seq)
			return w->ctl->result;
		if (!worker_alive(w)) {
			snprintf(w->ctl->err, sizeof(w->ctl->err),
				 "worker process died");
			return -ECHILD;
		}
		if (bench_now_ns() - t0 > WORKER_TIMEOUT_NS) {
			snprintf(w->ctl->err, sizeof(w->ctl->err),
				 "worker timed out");
			return -ETIMEDOUT;
		}
		futex(&w->ctl->done_seq, FUTEX_WAIT, d, &ts);
	}
}

void worker_lookup_post(struct worker *w, const struct lookup_job *j)
{
	w->ctl->job = *j;
	w->ctl->job.hist = NULL;
	w->ctl->want_hist = j->hist != NULL;
	post(w, WCMD_LOOKUP);
}

int worker_lookup_wait(struct worker *w, struct lookup_job *j)
{
	int err = wait_done(w);

	if (err)
		return err;
	j->ops = w->ctl->job.ops;
	j->ns = w->ctl->job.ns;
	j->misses = w->ctl->job.misses;
	j->updates = w->ctl->job.updates;
	j->cpu = w->ctl->cpu_seen;
	if (j->hist)
		bench_hist_merge(j->hist, &w->ctl->hist);
	return 0;
}

int worker_lookup(struct worker *w, struct lookup_job *j)
{
	worker_lookup_post(w, j);
	return worker_lookup_wait(w, j);
}

void worker_write_config(struct worker *w, unsigned txn_size,
			 const struct bench_keydist *d)
{
	w->ctl->txn_size = txn_size ? txn_size : 1;
	if (d)
		w->ctl->wdist = *d;
	else
		memset(&w->ctl->wdist, 0, sizeof(w->ctl->wdist));
}

const struct bench_hist *worker_write_hist(const struct worker *w)
{
	return &w->ctl->w_hist;
}

int worker_cpu(const struct worker *w)
{
	return w->ctl->cpu_seen;
}

int worker_pid(const struct worker *w)
{
	return w->thread || w->pid <= 0 ? -1 : (int)w->pid;
}

int worker_write_start(struct worker *w, uint64_t rate)
{
	uint64_t t0 = bench_now_ns();

	atomic_store(&w->ctl->stop, 0);
	atomic_store(&w->ctl->progress, 0);
	w->ctl->rate = rate;
	post(w, WCMD_WRITE);
	while (atomic_load_explicit(&w->ctl->progress, memory_order_relaxed) ==
	       0) {
		struct timespec ts = { 0, 20000 };

		if (atomic_load_explicit(&w->ctl->done_seq,
					 memory_order_acquire) == w->seq)
			return w->ctl->result ? w->ctl->result : -EIO;
		if (!worker_alive(w) || bench_now_ns() - t0 > 10000000000ull)
			return -ECHILD;
		nanosleep(&ts, NULL);
	}
	return 0;
}

int worker_write_stop(struct worker *w, uint64_t *ops, uint64_t *ns)
{
	int err;

	atomic_store(&w->ctl->stop, 1);
	err = wait_done(w);
	*ops = w->ctl->w_ops;
	*ns = w->ctl->w_ns;
	return err;
}

void worker_stop(struct worker *w)
{
	int i, st;

	if (!w)
		return;
	atomic_store(&w->ctl->stop, 1);
	if (w->thread) {
		post(w, WCMD_EXIT);
		pthread_join(w->th, NULL);
	} else if (w->pid > 0) {
		post(w, WCMD_EXIT);
		for (i = 0; i < 5000; i++) { /* 5 s */
			struct timespec ts = { 0, 1000000 };

			if (waitpid(w->pid, &st, WNOHANG) == w->pid) {
				w->pid = -1;
				break;
			}
			nanosleep(&ts, NULL);
		}
		if (w->pid > 0) {
			kill(w->pid, SIGKILL);
			waitpid(w->pid, &st, 0);
		}
	}
	munmap(w->ctl, sizeof(*w->ctl));
	free(w);
}

const char *worker_error(const struct worker *w)
{
	return w->ctl->err;
}
