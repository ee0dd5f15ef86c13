/* SPDX-License-Identifier: MIT */
/*
 * bench_pin - retained memory over time while an old version is pinned.
 *
 * For each system: build an N-key map (v1), let another process pin v1
 * (shmgraph: shg_pin_current; lmdb: a read txn left open, LMDB's "long
 * reader"), then run K single-update commits (--txn-size: updates per
 * commit) from the benchmark process and sample memory every K/40
 * commits without forcing reclamation (what a user would see); settle
 * (grace period + reclaim) and sample; release the pin, run K/4 more
 * commits with samples, settle and sample again.
 *
 *   shmgraph  used = allocator used bytes (small + large), retired =
 *             retired-not-yet-freed bytes, live = the current version's
 *             own size; v1 = the pinned version's own size.
 *   lmdb      used = psize x (last_pgno + 1), the pages of the file in use
 *             or held for the reader (LMDB cannot reuse a page freed after
 *             the oldest reader's snapshot); live = tree pages now; v1 =
 *             tree pages when pinned. The file never shrinks.
 *
 * Records: workload "retained_over_time" (one per sample: t_ms, commits,
 * phase, bytes = used, version_bytes = v1, retired_bytes, live_bytes) and
 * "retained_with_pin" (settled figures, as in bench_map), plus a table.
 * Retained by the pin = (used pinned, settled) - (used unpinned, settled),
 * as a multiple of v1's size; the goal (bench/README.md, "Goals") is <= 1.1x.
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "benchutil.h"
#include "knobs.h"
#include "peers.h"

#define SAMPLES 40 /* while pinned */
#define MAX_RECS 256
#define LMDB_CAP (1ull << 30) /* stop LMDB's pinned phase at 1 GiB used */

static struct bench_knobs K;
static char config_json[1024];

static struct bench_case recs[MAX_RECS];
static char extras[MAX_RECS][256];
static char variants[MAX_RECS][200];
static size_t nrecs;

struct holder {
	pid_t pid;
	int to_child, from_child;
};

/* Fork a process that attaches, holds the current version, reports its
 * size and waits until told to release. */
static int holder_start(struct peer *p, struct holder *h, long long *v1)
{
	int a[2], b[2];
	pid_t parent = getpid();
	struct {
		int err;
		long long bytes;
	} msg = { 0, 0 };

	if (pipe(a) || pipe(b))
		return -errno;
	fflush(NULL);
	h->pid = fork();
	if (h->pid < 0)
		return -errno;
	if (h->pid == 0) {
		void *handle = NULL, *tok = NULL;
		char c;

		close(a[0]);
		close(b[1]);
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) || getppid() != parent)
			_exit(4);
		msg.err = p->ops->attach(p, &handle);
		if (!msg.err)
			msg.err = p->ops->hold(p, handle, &tok, &msg.bytes);
		if (write(a[1], &msg, sizeof(msg)) != sizeof(msg))
			_exit(3);
		if (msg.err)
			_exit(2);
		while (read(b[0], &c, 1) < 0 && errno == EINTR)
			;
		p->ops->release(p, handle, tok);
		p->ops->detach(p, handle);
		_exit(0);
	}
	close(a[1]);
	close(b[0]);
	h->from_child = a[0];
	h->to_child = b[1];
	if (read(h->from_child, &msg, sizeof(msg)) != sizeof(msg))
		return -ECHILD;
	*v1 = msg.bytes;
	return msg.err;
}

static void holder_stop(struct holder *h)
{
	int st;

	if (h->pid <= 0)
		return;
	if (write(h->to_child, "x", 1) != 1)
		kill(h->pid, SIGKILL);
	waitpid(h->pid, &st, 0);
	close(h->to_child);
	close(h->from_child);
	h->pid = -1;
}

/* ---- records ---------------------------------------------------------------- */

struct series {
	struct peer *p;
	const char *system;
	long long v1;
	uint64_t t0, commits;
	long long peak_extra; /* max(used - live) while pinned */
	long long used_pinned, used_unpinned, used_before;
	uint64_t commits_pinned;
	bool pinned_ok;
	char stop[320]; /* why the pinned phase stopped early */
};

static struct bench_case *rec(const char *system, const char *workload)
{
	struct bench_case *c;

	if (nrecs >= MAX_RECS)
		return NULL;
	c = &recs[nrecs];
	bench_case_init(c);
	c->system = system;
	c->workload = workload;
	c->static_rec = true;
	c->variant = variants[nrecs];
	c->json_extra = extras[nrecs];
	c->keys = (long long)K.keys[0];
	c->readers = 1; /* the holder */
	c->writers = 1;
	c->numa = K.numa;
	nrecs++;
	return c;
}

static int sample(struct series *s, const char *phase, bool settle)
{
	long long used, retired, live;
	struct bench_case *c;
	int err = s->p->ops->mem(s->p, settle, &used, &retired, &live);

	if (err)
		return err;
	if (!strcmp(phase, "pinned") && used - live > s->peak_extra)
		s->peak_extra = used - live;
	c = rec(s->system, "retained_over_time");
	if (!c)
		return 0;
	c->bytes = used;
	c->version_bytes = s->v1;
	snprintf(variants[nrecs - 1], sizeof(variants[0]), "%s; %s",
		 s->p->variant, phase);
	snprintf(extras[nrecs - 1], sizeof(extras[0]),
		 ",\"t_ms\":%.1f,\"commits\":%llu,\"phase\":\"%s\","
		 "\"retired_bytes\":%lld,\"live_bytes\":%lld,\"settled\":%s",
		 (double)(bench_now_ns() - s->t0) / 1e6,
		 (unsigned long long)s->commits, phase, retired, live,
		 settle ? "true" : "false");
	if (settle && !strcmp(phase, "pinned")) {
		s->used_pinned = used;
		s->commits_pinned = s->commits;
	}
	if (settle && !strcmp(phase, "unpinned"))
		s->used_unpinned = used;
	return 0;
}

/* @n commits of txn_size random updates, sampled every @every. */
static int commits(struct series *s, uint64_t n, uint64_t every,
		   const char *phase, uint64_t *rng)
{
	uint64_t keys[1000], vals[1000], i;
	unsigned t = K.txn_size, k;
	int err = 0;

	for (i = 0; i < n && !err; i++) {
		for (k = 0; k < t; k++) {
			keys[k] = key_of(rand_index(rng, s->p->nkeys));
			vals[k] = val_of(keys[k], (uint32_t)s->commits + 1);
		}
		err = t == 1 ? s->p->ops->update(s->p, s->p->main_handle,
						 keys[0], vals[0]) :
			       s->p->ops->update_batch(s->p, s->p->main_handle,
						       keys, vals, t);
		if (err)
			break;
		s->commits++;
		if ((i + 1) % every == 0) {
			long long used, retired, live;

			err = sample(s, phase, false);
			if (!err && !strcmp(phase, "pinned") &&
			    !strcmp(s->system, "lmdb") &&
			    !s->p->ops->mem(s->p, false, &used, &retired,
					    &live) &&
			    (unsigned long long)used > LMDB_CAP) {
				snprintf(s->stop, sizeof(s->stop),
					 "stopped after %llu commits: file "
					 "pages over the %llu MiB cap of this "
					 "benchmark",
					 (unsigned long long)s->commits,
					 LMDB_CAP >> 20);
				break;
			}
		}
	}
	if (err)
		snprintf(s->stop, sizeof(s->stop),
			 "stopped after %llu "
			 "commits: %.200s",
			 (unsigned long long)s->commits, s->p->err);
	return err;
}

static int run_system(const struct peer_ops *ops, uint64_t n, uint64_t k,
		      struct series *s)
{
	static struct peer p;
	struct holder h = { .pid = -1 };
	uint64_t every = k / SAMPLES ? k / SAMPLES : 1, rng = 99;
	long long live, retired;
	int err;

	memset(&p, 0, sizeof(p));
	memset(s, 0, sizeof(*s));
	p.ops = ops;
	p.numa_policy = K.numa_policy;
	p.numa_node = K.numa_node;
	s->p = &p;
	s->system = ops->system;
	err = ops->create(&p, n);
	if (err)
		goto out;
	err = ops->mem(&p, true, &s->used_before, &retired, &live);
	if (!err)
		err = holder_start(&p, &h, &s->v1);
	if (err)
		goto out;
	s->pinned_ok = true;
	s->t0 = bench_now_ns();
	err = sample(s, "pinned", false);
	if (!err)
		commits(s, k, every, "pinned", &rng);
	if (!err)
		err = sample(s, "pinned", true);
	holder_stop(&h);
	if (!err)
		err = sample(s, "unpinned", false);
	if (!err)
		err = commits(s, k / 4, every, "unpinned", &rng);
	if (!err)
		err = sample(s, "unpinned", true);
out:
	holder_stop(&h);
	if (err && !s->stop[0])
		snprintf(s->stop, sizeof(s->stop), "failed: %.200s",
			 p.err[0] ? p.err : strerror(-err));
	if (p.priv)
		ops->destroy(&p);
	return err;
}

static void summary(FILE *f, struct series *s)
{
	struct bench_case *c;
	double ret, grow;
	char line[768];

	if (!s->pinned_ok) {
		fprintf(f, "  %-9s not run: %s\n", s->system, s->stop);
		return;
	}
	ret = s->v1 > 0 ? (double)(s->used_pinned - s->used_unpinned) /
				  (double)s->v1 :
			  0;
	grow = s->v1 > 0 ? (double)(s->used_pinned - s->used_before) /
				   (double)s->v1 :
			   0;
	snprintf(line, sizeof(line),
		 "v1 %.2f MiB; before %.2f MiB used; pinned after %llu "
		 "commits, settled: %.2f MiB; after unpin, settled: %.2f MiB; "
		 "growth while pinned (pinned - before) %.2fx v1; "
		 "freed by unpin (pinned - unpinned) %.2fx v1; peak (used - "
		 "live) while pinned %.2fx v1%s%s",
		 (double)s->v1 / 1048576.0, (double)s->used_before / 1048576.0,
		 (unsigned long long)s->commits_pinned,
		 (double)s->used_pinned / 1048576.0,
		 (double)s->used_unpinned / 1048576.0, grow, ret,
		 s->v1 > 0 ? (double)s->peak_extra / (double)s->v1 : 0,
		 s->stop[0] ? "; " : "", s->stop);
	fprintf(f, "  %-9s ", s->system);
	bench_print_wrapped(f, 12, line);
	c = rec(s->system, "retained_with_pin");
	if (!c)
		return;
	c->bytes = s->used_pinned;
	c->version_bytes = s->v1;
	snprintf(variants[nrecs - 1], sizeof(variants[0]),
		 "v1 pinned by another process, after the commits, settled");
	snprintf(extras[nrecs - 1], sizeof(extras[0]),
		 ",\"used_before\":%lld,\"used_unpinned\":%lld,"
		 "\"retained_ratio\":%.3f,\"growth_ratio\":%.3f,"
		 "\"peak_extra_ratio\":%.3f,\"commits_pinned\":%llu",
		 s->used_before, s->used_unpinned, ret, grow,
		 s->v1 > 0 ? (double)s->peak_extra / (double)s->v1 : 0,
		 (unsigned long long)s->commits_pinned);
	if (!strcmp(s->system, "shmgraph"))
		fprintf(f,
			"  goal (shmgraph): retained by the pin <= 1.1x "
			"v1 + one grace period of garbage: %.2fx, %s\n",
			ret, ret <= 1.1 ? "met" : "NOT met");
}

static void print_series(FILE *f)
{
	size_t i;

	fprintf(f, "\n%-9s %8s %9s %-9s %12s %12s %12s %12s\n", "system",
		"t ms", "commits", "phase", "used MiB", "retired MiB",
		"live MiB", "v1 MiB");
	for (i = 0; i < nrecs; i++) {
		const struct bench_case *c = &recs[i];
		double t = 0;
		unsigned long long cm = 0;
		long long rt = -1, lv = -1;
		char ph[16] = "", rts[32];
		const char *e = c->json_extra;

		if (strcmp(c->workload, "retained_over_time") ||
		    (i % 5 && !strstr(e, "\"settled\":true")))
			continue;
		sscanf(e,
		       ",\"t_ms\":%lf,\"commits\":%llu,\"phase\":\"%15[a-z]\","
		       "\"retired_bytes\":%lld,\"live_bytes\":%lld",
		       &t, &cm, ph, &rt, &lv);
		if (rt >= 0)
			snprintf(rts, sizeof(rts), "%.2f",
				 (double)rt / 1048576.0);
		else
			snprintf(rts, sizeof(rts), "-");
		fprintf(f,
			"%-9s %8.0f %9llu %-9s %11.2f %11s %11.2f %11.2f%s\n",
			c->system, t, cm, ph, (double)c->bytes / 1048576.0, rts,
			(double)lv / 1048576.0,
			(double)c->version_bytes / 1048576.0,
			strstr(e, "\"settled\":true") ? "  (settled)" : "");
	}
}

static const char usage_text[] =
	"bench_pin: memory over time while another process pins an old "
	"version\n(shmgraph pin vs an LMDB read txn left open).\n"
	"Defaults: --keys 1M (quick 10k); K = min(N, 1M) commits (quick "
	"20k)\nwhile pinned, K/4 after; --txn-size 1.\n";

int main(int argc, char **argv)
{
	static struct series ser[2];
	const struct peer_ops *ops[2] = { &peer_shmgraph_ops, NULL };
	FILE *jf = stdout, *tf = stderr;
	uint64_t n, k;
	int i, err = 0;

#ifdef HAVE_LMDB
	ops[1] = &peer_lmdb_ops;
#endif
	if (bench_knobs_parse(&K, "bench_pin",
			      BK_KEYS | BK_TXN | BK_NUMA | BK_SYSTEMS,
			      usage_text, argc, argv))
		return 2;
	if (!K.nkeys) {
		K.keys[0] = K.quick ? 10000 : 1000000;
		K.nkeys = 1;
	}
	n = K.keys[0];
	k = K.quick ? 20000 : (n < 1000000 ? n : 1000000);
	bench_knobs_json(&K, config_json, sizeof(config_json));
	bench_set_config(config_json);
	if (K.json && strcmp(K.json, "-") != 0) {
		jf = fopen(K.json, "ae");
		if (!jf) {
			perror(K.json);
			return 1;
		}
		tf = stdout;
	}
	for (i = 0; i < 2; i++) {
		if (!ops[i] ||
		    (K.systems && !strstr(K.systems, ops[i]->system)))
			continue;
		if (K.verbose)
			fprintf(stderr, "bench_pin: %s\n", ops[i]->system);
		if (run_system(ops[i], n, k, &ser[i]) && i == 0)
			err = 1;
	}
	fprintf(tf,
		"\nbench_pin, N = %llu keys, %llu commits of %u update(s) while "
		"pinned, %llu after\n",
		(unsigned long long)n, (unsigned long long)k, K.txn_size,
		(unsigned long long)k / 4);
	print_series(tf);
	fprintf(tf, "\nSummary:\n");
	for (i = 0; i < 2; i++)
		if (ser[i].system)
			summary(tf, &ser[i]);
	bench_json_write(jf, recs, nrecs);
	if (jf != stdout)
		fclose(jf);
	return err;
}
