/* SPDX-License-Identifier: MIT */
/*
 * shmctl replicate: read replicas through NATS JetStream
 * (docs/REPLICATION.md).
 *
 *   shmctl replicate publish SEGMENT ROOT... --nats URL [--stream NAME]
 *           [--replicas N] [--snap-every N] [-v]
 *   shmctl replicate follow SEGMENT --nats URL [--stream NAME]
 *           [--roots A,B] [--durable NAME] [-v]
 *   shmctl replicate status SEGMENT [--nats URL] [--stream NAME] [--json]
 *   shmctl replicate promote|demote SEGMENT ROOT...
 *
 * publish and follow run until SIGINT or SIGTERM; with -v they say what
 * they do and print their counters every 5 s on stderr. status reads the
 * replica state kept in the segment (root "shg.repl") and, with --nats,
 * the newest seq on the stream for each root: the lag in versions.
 * promote clears the replica mark of each ROOT (failover: the replica
 * becomes writable; stop its follower first, which would mark it again),
 * demote sets it (local writes then fail with SHG_EREPLICA). Neither needs
 * NATS.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "shmctl.h"

#define MAX_ROOTS 64

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
	(void)sig;
	stop_flag = 1;
}

struct rargs {
	const char *sub, *seg;
	const char *roots[MAX_ROOTS];
	unsigned nroots;
	char *roots_buf; /* --roots, split in place */
	struct shg_repl_opts o;
	bool json;
};

static int usage_repl(FILE *f)
{
	fprintf(f,
		"usage: shmctl replicate publish SEGMENT ROOT... --nats URL "
		"[--stream NAME]\n"
		"                 [--replicas N] [--snap-every N] [-v]\n"
		"       shmctl replicate follow SEGMENT --nats URL "
		"[--stream NAME] [--roots A,B]\n"
		"                 [--durable NAME] [-v]\n"
		"       shmctl replicate status SEGMENT [--nats URL] "
		"[--stream NAME] [--json]\n"
		"       shmctl replicate promote|demote SEGMENT ROOT...\n\n"
		"Read replicas on other hosts through NATS JetStream "
		"(docs/REPLICATION.md).\n"
		"publish: one message per new version of each ROOT (a delta, "
		"or a snapshot).\n"
		"follow: applies the stream into SEGMENT (durable consumer "
		"NAME, default\n"
		"  shg-<hostname>); replica roots are for reading only.\n"
		"status: per replicated root the primary's seq applied, its "
		"age and the\n"
		"  replication lag; with --nats also the stream's newest seq "
		"(lag in versions).\n"
		"promote: clears the replica mark of each ROOT: it becomes "
		"writable (stop\n"
		"  the follower first: it marks the roots it applies into "
		"again).\n"
		"demote: sets the mark: local writes to ROOT fail until it is "
		"promoted.\n");
	return f == stdout ? 0 : EXIT_ERROR;
}

static int parse_u(const char *s, unsigned *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || end == s || v > 1000000000ul)
		return -EINVAL;
	*out = (unsigned)v;
	return 0;
}

static int split_roots(struct rargs *a, const char *list)
{
	char *save = NULL, *t;

	a->roots_buf = strdup(list);
	if (!a->roots_buf)
		return -ENOMEM;
	for (t = strtok_r(a->roots_buf, ",", &save); t;
	     t = strtok_r(NULL, ",", &save)) {
		if (a->nroots == MAX_ROOTS)
			return -E2BIG;
		a->roots[a->nroots++] = t;
	}
	return 0;
}

static int parse(int argc, char **argv, struct rargs *a)
{
	int i;

	memset(a, 0, sizeof(*a));
	a->o.size = sizeof(a->o);
	if (argc < 2)
		return usage_repl(stderr);
	a->sub = argv[1];
	if (!strcmp(a->sub, "--help") || !strcmp(a->sub, "-h"))
		return usage_repl(stdout) ? EXIT_ERROR : -1;
	for (i = 2; i < argc; i++) {
		const char *s = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(s, "-v") || !strcmp(s, "--verbose")) {
			a->o.verbose = true;
			continue;
		}
		if (!strcmp(s, "--json")) {
			a->json = true;
			continue;
		}
		if (!strcmp(s, "--help") || !strcmp(s, "-h"))
			return usage_repl(stdout) ? EXIT_ERROR : -1;
		if (s[0] == '-' && s[1] == '-') {
			if (!v)
				return failf("option %s needs a value", s);
			i++;
			if (!strcmp(s, "--nats"))
				a->o.url = v;
			else if (!strcmp(s, "--stream"))
				a->o.stream = v;
			else if (!strcmp(s, "--durable"))
				a->o.durable = v;
			else if (!strcmp(s, "--replicas")) {
				if (parse_u(v, &a->o.replicas))
					return failf("bad --replicas: %s", v);
			} else if (!strcmp(s, "--snap-every")) {
				if (parse_u(v, &a->o.snap_every))
					return failf("bad --snap-every: %s", v);
			} else if (!strcmp(s, "--roots")) {
				if (split_roots(a, v))
					return failf("bad --roots: %s", v);
			} else {
				return failf("unknown option %s (see shmctl "
					     "replicate --help)",
					     s);
			}
			continue;
		}
		if (!a->seg)
			a->seg = s;
		else if (a->nroots < MAX_ROOTS && !a->roots_buf)
			a->roots[a->nroots++] = s;
		else
			return failf("too many arguments: %s", s);
	}
	if (!a->seg)
		return usage_repl(stderr);
	if (!strchr(a->seg, '/'))
		return failf("'%s' is neither a shm name nor a path: did you "
			     "mean /%s?",
			     a->seg, a->seg);
	return 0;
}

static void say_status(const char *what, const struct shg_repl_status *st,
		       double secs, uint64_t bytes0)
{
	fprintf(stderr,
		"shmctl: %s: %" PRIu64 " messages (%" PRIu64 " deltas, %" PRIu64
		" snapshots), %.0f bytes/s, %" PRIu64 " skipped, %" PRIu64
		" resyncs, last seq %" PRIu64 ", last error: %s\n",
		what, st->msgs, st->deltas, st->snaps,
		secs > 0 ? (double)(st->bytes - bytes0) / secs : 0.0,
		st->skipped, st->resyncs, st->last_seq,
		st->last_error ? shg_strerror(st->last_error) : "none");
}

static double mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

/* Errors of a cluster that is down or electing leaders. */
static bool transient(int err)
{
	return err == -ECONNREFUSED || err == -ETIMEDOUT || err == -EIO;
}

static int run_publish(struct rargs *a, struct shg_seg *seg)
{
	struct shg_repl_status st;
	struct shg_repl_pub *p;
	double t0 = mono(), t;
	uint64_t b0 = 0;
	int err;

	if (!a->nroots)
		return failf("publish: name at least one ROOT");
	signals();
	/* NATS not (yet) there, or electing leaders: retry until stopped. */
	while ((err = shg_repl_pub_open(seg, a->roots, a->nroots, &a->o, &p)) &&
	       transient(err) && !stop_flag) {
		if (a->o.verbose)
			fprintf(stderr, "shmctl: publish: %s (retrying)\n",
				shg_strerror(err));
		usleep(200000);
	}
	if (err)
		return stop_flag ? 0 : fail("publish", err);
	while (!stop_flag) {
		err = shg_repl_pub_step(p, 200);
		if (err < 0) {
			if (a->o.verbose)
				fprintf(stderr,
					"shmctl: publish: %s (retrying)\n",
					shg_strerror(err));
			usleep(100000);
		}
		t = mono();
		if (a->o.verbose && t - t0 >= 5) {
			shg_repl_pub_status(p, &st);
			say_status("publish", &st, t - t0, b0);
			t0 = t;
			b0 = st.bytes;
		}
	}
	shg_repl_pub_close(p);
	return 0;
}

static int run_follow(struct rargs *a, struct shg_seg *seg)
{
	struct shg_repl_status st;
	struct shg_repl_fol *f;
	char durable[128], host[64] = "host";
	double t0 = mono(), t;
	uint64_t b0 = 0;
	int err;

	if (!a->o.durable) {
		gethostname(host, sizeof(host) - 1);
		host[strcspn(host, ".*> \t")] = 0;
		snprintf(durable, sizeof(durable), "shg-%s", host);
		a->o.durable = durable;
	}
	signals();
	/* -ENOENT: the publisher has not created the stream yet. */
	while ((err = shg_repl_fol_open(seg, a->nroots ? a->roots : NULL,
					a->nroots, &a->o, &f)) &&
	       (transient(err) || err == -ENOENT) && !stop_flag) {
		if (a->o.verbose)
			fprintf(stderr, "shmctl: follow: %s (retrying)\n",
				shg_strerror(err));
		usleep(200000);
	}
	if (err)
		return stop_flag ? 0 : fail("follow", err);
	while (!stop_flag) {
		err = shg_repl_fol_step(f, 200);
		if (err < 0) {
			if (a->o.verbose)
				fprintf(stderr,
					"shmctl: follow: %s (retrying)\n",
					shg_strerror(err));
			usleep(100000);
		}
		t = mono();
		if (a->o.verbose && t - t0 >= 5) {
			shg_repl_fol_status(f, &st);
			say_status("follow", &st, t - t0, b0);
			t0 = t;
			b0 = st.bytes;
		}
	}
	shg_repl_fol_close(f);
	return 0;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int run_status(struct rargs *a, struct shg_seg *seg)
{
	struct shg_root *r;
	struct shg_map_iter it;
	struct shg_val k;
	struct shg_off node = { 0 };
	char names[MAX_ROOTS][SHG_ROOT_NAME_MAX + 1];
	unsigned n = 0, i;
	int err;

	err = shg_root_open(seg, "shg.repl", &r);
	if (err == -ENOENT) {
		if (a->json)
			printf("{\"roots\":[]}\n");
		else
			printf("no replicated roots in this segment\n");
		return 0;
	}
	if (err)
		return fail("status", err);
	err = shg_read_lock(seg);
	if (!err)
		err = shg_current_node(r, &node);
	if (!err)
		err = shg_map_iter_init(seg, node, &it);
	while (!err && n < MAX_ROOTS && !shg_map_iter_next(&it, &k, NULL)) {
		size_t l = k.bytes.len <= SHG_ROOT_NAME_MAX ? k.bytes.len :
							      SHG_ROOT_NAME_MAX;

		memcpy(names[n], k.bytes.p, l);
		names[n++][l] = 0;
	}
	shg_read_unlock(seg);
	shg_root_close(r);
	if (err)
		return fail("status", err);
	if (a->json)
		printf("{\"roots\":[");
	else
		printf("%-20s %12s %12s %12s %10s %14s\n", "ROOT", "SEQ",
		       "STREAM_SEQ", "LAG_VERS", "LAG_MS", "AGE");
	for (i = 0; i < n; i++) {
		struct shg_repl_state st;
		uint64_t sseq = 0, sns = 0;
		double lag_ms;
		char age[64];
		int serr = -ENOTSUP;

		err = shg_repl_state(seg, names[i], &st);
		if (err)
			return fail(names[i], err);
		if (a->o.url)
			serr = shg_repl_stream_last(&a->o, names[i], &sseq,
						    &sns);
		if (a->o.url && serr)
			fprintf(stderr, "shmctl: %s: stream: %s\n", names[i],
				shg_strerror(serr));
		/* Lag: how long after the primary's commit it was applied;
		 * behind the stream: from the newest commit there to now. */
		lag_ms = (double)(st.applied_ns - st.commit_ns) / 1e6;
		if (!serr && sseq > st.seq)
			lag_ms = (double)(now_ns() - sns) / 1e6;
		fmt_age(st.applied_ns, age, sizeof(age));
		if (a->json) {
			printf("%s{\"root\":\"%s\",\"seq\":%" PRIu64
			       ",\"commit_ns\":%" PRIu64
			       ",\"applied_ns\":%" PRIu64 ",\"lag_ms\":%.3f",
			       i ? "," : "", names[i], st.seq, st.commit_ns,
			       st.applied_ns, lag_ms);
			if (!serr)
				printf(",\"stream_seq\":%" PRIu64
				       ",\"lag_versions\":%" PRIu64,
				       sseq, sseq > st.seq ? sseq - st.seq : 0);
			printf("}");
		} else if (!serr) {
			printf("%-20s %12" PRIu64 " %12" PRIu64 " %12" PRIu64
			       " %10.1f %14s\n",
			       names[i], st.seq, sseq,
			       sseq > st.seq ? sseq - st.seq : 0, lag_ms, age);
		} else {
			printf("%-20s %12" PRIu64 " %12s %12s %10.1f %14s\n",
			       names[i], st.seq, "-", "-", lag_ms, age);
		}
	}
	if (a->json)
		printf("]}\n");
	return 0;
}

void repl_roots_note(struct shg_seg *seg)
{
	struct shg_repl_state st;
	struct shg_map_iter it;
	struct shg_root *r;
	struct shg_off node = { 0 };
	struct shg_val k;
	char name[SHG_ROOT_NAME_MAX + 1], age[64];
	int err;

	if (shg_root_open(seg, "shg.repl", &r))
		return; /* not a replica */
	err = shg_read_lock(seg);
	if (err) {
		shg_root_close(r);
		return;
	}
	printf("replica roots (primary's sequence numbers; shmctl replicate "
	       "status):\n");
	err = shg_current_node(r, &node);
	if (!err)
		err = shg_map_iter_init(seg, node, &it);
	while (!err && !shg_map_iter_next(&it, &k, NULL)) {
		size_t l = k.bytes.len <= SHG_ROOT_NAME_MAX ? k.bytes.len :
							      SHG_ROOT_NAME_MAX;

		memcpy(name, k.bytes.p, l);
		name[l] = 0;
		if (shg_repl_state(seg, name, &st))
			continue;
		fmt_age(st.applied_ns, age, sizeof(age));
		printf("  %-20s primary seq %" PRIu64
		       ", lag %.1f ms, applied %s\n",
		       name, st.seq,
		       (double)(st.applied_ns - st.commit_ns) / 1e6, age);
	}
	shg_read_unlock(seg);
	shg_root_close(r);
}

/* promote / demote: clear or set the replica mark of each named root. */
static int run_mark(struct rargs *a, struct shg_seg *seg, bool replica)
{
	struct shg_root *r;
	unsigned i;
	bool was;
	int err, rc = 0;

	if (!a->nroots)
		return failf("replicate %s: name at least one ROOT", a->sub);
	for (i = 0; i < a->nroots; i++) {
		err = shg_root_open(seg, a->roots[i], &r);
		if (err) {
			rc = fail(a->roots[i], err);
			continue;
		}
		was = shg_root_is_replica(r);
		err = shg_root_set_replica(r, replica);
		shg_root_close(r);
		if (err) {
			rc = fail(a->roots[i], err);
			continue;
		}
		if (was == replica)
			printf("%s: %s\n", a->roots[i],
			       replica ? "already a replica" :
					 "not a replica (writable)");
		else
			printf("%s: %s\n", a->roots[i],
			       replica ? "marked as a read-only replica" :
					 "promoted: writable");
	}
	return rc;
}

static bool mark_sub(const char *sub)
{
	return !strcmp(sub, "promote") || !strcmp(sub, "demote");
}

int shmctl_replicate(int argc, char **argv)
{
	struct shg_opts so = { .size = sizeof(so) };
	struct shg_seg *seg = NULL;
	struct rargs a;
	int rc, err;

	rc = parse(argc, argv, &a);
	if (rc) {
		free(a.roots_buf);
		return rc < 0 ? 0 : rc;
	}
	if (strcmp(a.sub, "publish") && strcmp(a.sub, "follow") &&
	    strcmp(a.sub, "status") && !mark_sub(a.sub)) {
		free(a.roots_buf);
		return failf("replicate: unknown subcommand '%s' (publish, "
			     "follow, status, promote, demote)",
			     a.sub);
	}
	if (strcmp(a.sub, "status") && !mark_sub(a.sub) &&
	    !shg_repl_available()) {
		free(a.roots_buf);
		return failf("replicate: this shmgraph was built without "
			     "libnats (configure found no libnats-dev)");
	}
	if (strcmp(a.sub, "status") && !mark_sub(a.sub) && !a.o.url) {
		free(a.roots_buf);
		return failf("replicate %s: --nats URL is required", a.sub);
	}
	err = shg_seg_open(a.seg, &so, &seg);
	if (err) {
		free(a.roots_buf);
		return fail(a.seg, err);
	}
	if (!strcmp(a.sub, "publish"))
		rc = run_publish(&a, seg);
	else if (!strcmp(a.sub, "follow"))
		rc = run_follow(&a, seg);
	else if (mark_sub(a.sub))
		rc = run_mark(&a, seg, !strcmp(a.sub, "demote"));
	else
		rc = run_status(&a, seg);
	shg_seg_close(seg);
	free(a.roots_buf);
	return rc;
}
