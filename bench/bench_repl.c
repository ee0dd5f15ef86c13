/* SPDX-License-Identifier: MIT */
/*
 * bench_repl: replication through NATS JetStream (docs/REPLICATION.md).
 * A primary map of --keys u64 keys (default 1M; 10k with --quick) is
 * replicated by a publisher process to a follower process on another
 * segment, through the servers at --url (bench/bench_repl.sh starts a
 * 3-server cluster on loopback). Two cases, each --seconds long at
 * --rate commits/s: "single" (one key put per commit) and "batch" (100
 * keys per commit). Measured: replication lag (the primary's commit to
 * the follower's commit of the same version, one clock) p50/p99/max, and
 * the delta bytes per version against the bytes of a full snapshot frame
 * of the same map. At the end the replica's export must equal the
 * primary's. Public API only.
 *
 *   bench_repl --url URLS [--keys N] [--seconds S] [--rate R] [--quick]
 *              [--json FILE]
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <shmgraph.h>

#define MAX_LAGS (1u << 20)

struct shared {
	volatile uint64_t nlag; /* lags recorded (follower) */
	volatile uint64_t lag_ns[MAX_LAGS];
};

static volatile sig_atomic_t stop;
static void on_term(int s)
{
	(void)s;
	stop = 1;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *what, int err)
{
	fprintf(stderr, "bench_repl: %s: %s\n", what, shg_strerror(err));
	exit(2);
}

struct put {
	uint64_t lo, n, val;
};

static int put_fn(struct shg_txn *txn, void *arg)
{
	struct put *p = arg;
	struct shg_val v = { .kind = SHG_KIND_U64 };
	uint64_t i;
	int err = 0;

	if (!shg_txn_root_node(txn).v)
		err = shg_txn_map_new(txn, SHG_REF_ROOT, SHG_KIND_U64,
				      SHG_KIND_U64);
	for (i = 0; !err && i < p->n; i++) {
		v.u64 = p->val + i;
		err = shg_txn_map_put_u64(txn, SHG_REF_ROOT, p->lo + i, &v);
	}
	return err;
}

static struct shg_repl_opts g_opts;

static int run_publisher(const char *seg_name)
{
	struct shg_opts o = { .size = sizeof(o) };
	const char *roots[] = { "m" };
	struct shg_repl_pub *p = NULL;
	struct shg_seg *seg;
	int err, tries;

	err = shg_seg_open(seg_name, &o, &seg);
	if (err)
		die("publisher: open", err);
	for (tries = 0; tries < 300; tries++) {
		err = shg_repl_pub_open(seg, roots, 1, &g_opts, &p);
		if (!err)
			break;
		usleep(100000); /* the cluster elects its leaders */
	}
	if (err)
		die("publisher: nats", err);
	err = shg_repl_pub_run(p, &stop);
	shg_repl_pub_close(p);
	shg_seg_close(seg);
	return err ? 2 : 0;
}

static int run_follower(const char *seg_name, struct shared *sh)
{
	struct shg_opts o = { .size = sizeof(o) };
	const char *roots[] = { "m" };
	struct shg_repl_state st;
	struct shg_repl_fol *f = NULL;
	struct shg_seg *seg;
	uint64_t last = 0, i;
	int err, tries;

	err = shg_seg_open(seg_name, &o, &seg);
	if (err)
		die("follower: open", err);
	for (tries = 0; tries < 300; tries++) {
		err = shg_repl_fol_open(seg, roots, 1, &g_opts, &f);
		if (!err)
			break;
		usleep(100000);
	}
	if (err)
		die("follower: nats", err);
	while (!stop) {
		if (shg_repl_fol_step(f, 100) < 0)
			usleep(10000);
		if (shg_repl_state(seg, "m", &st) || st.seq == last)
			continue;
		last = st.seq;
		i = sh->nlag;
		if (i < MAX_LAGS && st.applied_ns > st.commit_ns) {
			sh->lag_ns[i] = st.applied_ns - st.commit_ns;
			__atomic_store_n(&sh->nlag, i + 1, __ATOMIC_RELEASE);
		}
	}
	shg_repl_fol_close(f);
	shg_seg_close(seg);
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static uint64_t cur_seq(struct shg_seg *seg, struct shg_root *r)
{
	struct shg_version_info vi = { 0 };
	int err = shg_read_lock(seg);

	if (!err) {
		err = shg_version_info(seg, shg_version_current(r), &vi);
		shg_read_unlock(seg);
	}
	if (err)
		die("version", err);
	return vi.seq;
}

static void wait_replica(struct shg_seg *rep, uint64_t seq, unsigned secs)
{
	struct shg_repl_state st;
	uint64_t end = now_ns() + (uint64_t)secs * 1000000000ull;

	for (;;) {
		if (!shg_repl_state(rep, "m", &st) && st.seq >= seq)
			return;
		if (now_ns() > end) {
			fprintf(stderr,
				"bench_repl: replica stuck at %" PRIu64
				" (want %" PRIu64 ")\n",
				st.seq, seq);
			exit(1);
		}
		usleep(2000);
	}
}

static size_t export_len(struct shg_seg *seg, uint8_t **out)
{
	int fd = memfd_create("x", 0), err;
	off_t end;

	if (fd < 0)
		die("memfd", -errno);
	err = shg_export(seg, "m", fd);
	if (err)
		die("export", err);
	end = lseek(fd, 0, SEEK_END);
	*out = malloc((size_t)end);
	if (!*out || pread(fd, *out, (size_t)end, 0) != end)
		die("read", -EIO);
	close(fd);
	return (size_t)end;
}

struct result {
	const char *name;
	unsigned batch;
	uint64_t commits;
	double delta_bytes; /* mean per version */
	double p50, p99, max; /* ms */
	uint64_t nlags;
};

static void run_case(struct shg_seg *pri, struct shg_root *r,
		     struct shg_seg *rep, struct shared *sh, uint64_t keys,
		     unsigned batch, double secs, unsigned rate,
		     struct result *res)
{
	struct put p = { 0, batch, 0 };
	struct shg_pin *prev = NULL, *cur;
	uint64_t t0, next, gap = 1000000000ull / rate, n0, n, i, bytes = 0;
	uint64_t *lags;
	size_t len;
	void *msg;
	int err;

	err = shg_pin_current(r, &prev);
	if (err)
		die("pin", err);
	n0 = __atomic_load_n(&sh->nlag, __ATOMIC_ACQUIRE);
	t0 = now_ns();
	next = t0;
	res->commits = 0;
	while (now_ns() - t0 < (uint64_t)(secs * 1e9)) {
		p.lo = (res->commits * 7919u * batch) % (keys - batch);
		p.val = now_ns();
		err = shg_update(r, put_fn, &p, 0);
		if (err)
			die("commit", err);
		/* The bytes of this version's delta, as a publisher that
		 * keeps up ships it. */
		err = shg_pin_current(r, &cur);
		if (!err)
			err = shg_repl_delta(pri, shg_pin_version(prev),
					     shg_pin_version(cur), &msg, &len);
		if (err)
			die("delta", err);
		bytes += len;
		free(msg);
		shg_unpin(prev);
		prev = cur;
		res->commits++;
		next += gap;
		while (now_ns() < next)
			usleep(50);
	}
	shg_unpin(prev);
	wait_replica(rep, cur_seq(pri, r), 60);
	usleep(20000);
	n = __atomic_load_n(&sh->nlag, __ATOMIC_ACQUIRE) - n0;
	lags = malloc((n ? n : 1) * sizeof(*lags));
	if (!lags)
		die("malloc", -ENOMEM);
	for (i = 0; i < n; i++)
		lags[i] = sh->lag_ns[n0 + i];
	qsort(lags, n, sizeof(*lags), cmp_u64);
	res->batch = batch;
	res->nlags = n;
	res->delta_bytes = res->commits ? (double)bytes / res->commits : 0;
	res->p50 = n ? lags[n / 2] / 1e6 : 0;
	res->p99 = n ? lags[(n * 99) / 100] / 1e6 : 0;
	res->max = n ? lags[n - 1] / 1e6 : 0;
	free(lags);
}

int main(int argc, char **argv)
{
	struct shg_opts o = { .size = sizeof(o) };
	char pri_name[64], rep_name[64], stream[32], durable[32];
	uint64_t keys = 1000000, snap_bytes;
	const char *json = NULL;
	unsigned rate = 200, i;
	double secs = 5;
	bool quick = false;
	struct shared *sh;
	struct shg_seg *pri, *rep;
	struct shg_root *r;
	struct result res[2];
	struct shg_pin *pin;
	struct put fill;
	pid_t pub, fol;
	uint8_t *ea, *eb;
	size_t la, lb;
	void *msg;
	int err, a;
	FILE *jf;

	g_opts.size = sizeof(g_opts);
	g_opts.replicas = 3;
	g_opts.snap_every = 1000000; /* measure deltas, not snapshots */
	g_opts.verbose = getenv("SHG_BENCH_VERBOSE") != NULL;
	for (a = 1; a < argc; a++) {
		const char *v = a + 1 < argc ? argv[a + 1] : NULL;

		if (!strcmp(argv[a], "--quick"))
			quick = true;
		else if (!strcmp(argv[a], "--url") && v)
			g_opts.url = argv[++a];
		else if (!strcmp(argv[a], "--keys") && v)
			keys = strtoull(argv[++a], NULL, 10);
		else if (!strcmp(argv[a], "--seconds") && v)
			secs = atof(argv[++a]);
		else if (!strcmp(argv[a], "--rate") && v)
			rate = (unsigned)atoi(argv[++a]);
		else if (!strcmp(argv[a], "--json") && v)
			json = argv[++a];
		else
			fprintf(stderr, "bench_repl: ignoring %s\n", argv[a]);
	}
	if (quick) {
		keys = 10000;
		secs = 1;
	}
	if (!g_opts.url || keys < 1000 || !rate) {
		fprintf(stderr, "usage: bench_repl --url URLS [--keys N >= "
				"1000] [--seconds S] [--rate R] [--quick] "
				"[--json FILE]\n");
		return 2;
	}
	if (!shg_repl_available()) {
		fprintf(stderr, "bench_repl: built without libnats\n");
		return 2;
	}
	snprintf(stream, sizeof(stream), "BENCH%d", (int)getpid());
	snprintf(durable, sizeof(durable), "bench%d", (int)getpid());
	g_opts.stream = stream;
	g_opts.durable = durable;
	snprintf(pri_name, sizeof(pri_name), "/shgbench-repl-pri-%d",
		 (int)getpid());
	snprintf(rep_name, sizeof(rep_name), "/shgbench-repl-rep-%d",
		 (int)getpid());
	o.capacity = (keys * 200 + (256ull << 20));
	err = shg_seg_create(pri_name, &o, &pri);
	if (!err)
		err = shg_seg_create(rep_name, &o, &rep);
	if (err)
		die("create", err);
	err = shg_root_create(pri, "m", &r);
	for (fill.lo = 0; !err && fill.lo < keys; fill.lo += fill.n) {
		fill.n = keys - fill.lo < 10000 ? keys - fill.lo : 10000;
		fill.val = fill.lo;
		err = shg_update(r, put_fn, &fill, 0);
	}
	if (err)
		die("fill", err);
	err = shg_pin_current(r, &pin);
	if (!err)
		err = shg_repl_snap(r, shg_pin_version(pin), 0, &msg, &la);
	if (err)
		die("snapshot", err);
	snap_bytes = la;
	free(msg);
	shg_unpin(pin);

	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		die("mmap", -errno);
	signal(SIGTERM, on_term);
	pub = fork();
	if (pub == 0)
		_exit(run_publisher(pri_name));
	fol = fork();
	if (fol == 0)
		_exit(run_follower(rep_name, sh));
	/* The first version goes as a snapshot: wait for it, and for the
	 * follower to record its (long: the fill's) lag, which no case
	 * counts. */
	wait_replica(rep, cur_seq(pri, r), 120);
	while (!__atomic_load_n(&sh->nlag, __ATOMIC_ACQUIRE))
		usleep(1000);
	run_case(pri, r, rep, sh, keys, 1, secs, rate, &res[0]);
	res[0].name = "single";
	run_case(pri, r, rep, sh, keys, 100, secs, rate / 4 ? rate / 4 : 1,
		 &res[1]);
	res[1].name = "batch";
	kill(pub, SIGTERM);
	kill(fol, SIGTERM);
	waitpid(pub, NULL, 0);
	waitpid(fol, NULL, 0);

	la = export_len(pri, &ea);
	lb = export_len(rep, &eb);
	err = la != lb || memcmp(ea, eb, la);
	printf("replication over NATS JetStream (3 servers, loopback), %" PRIu64
	       " keys, full snapshot %" PRIu64 " bytes\n",
	       keys, snap_bytes);
	printf("%-7s %6s %8s %10s %10s %10s %14s %12s\n", "case", "batch",
	       "commits", "lag p50", "lag p99", "lag max", "delta B/ver",
	       "snap/delta");
	jf = json ? fopen(json, "a") : NULL;
	for (i = 0; i < 2; i++) {
		printf("%-7s %6u %8" PRIu64 " %8.2fms %8.2fms %8.2fms %14.1f "
		       "%11.0fx\n",
		       res[i].name, res[i].batch, res[i].commits, res[i].p50,
		       res[i].p99, res[i].max, res[i].delta_bytes,
		       (double)snap_bytes / res[i].delta_bytes);
		if (jf)
			fprintf(jf,
				"{\"bench\":\"repl\",\"case\":\"%s\","
				"\"commit\":\"%s\",\"keys\":%" PRIu64
				",\"batch\":%u,\"commits\":%" PRIu64
				",\"lags\":%" PRIu64
				",\"lag_p50_ms\":%.3f,\"lag_p99_ms\":%.3f,"
				"\"lag_max_ms\":%.3f,\"delta_bytes\":%.1f,"
				"\"snapshot_bytes\":%" PRIu64
				",\"verified\":%s}\n",
				res[i].name,
				getenv("SHG_COMMIT") ? getenv("SHG_COMMIT") :
						       "unknown",
				keys, res[i].batch, res[i].commits,
				res[i].nlags, res[i].p50, res[i].p99,
				res[i].max, res[i].delta_bytes, snap_bytes,
				err ? "false" : "true");
	}
	if (jf)
		fclose(jf);
	printf("replica export %s the primary's (%zu bytes)\n",
	       err ? "DIFFERS from" : "equals", la);
	free(ea);
	free(eb);
	shg_root_close(r);
	shg_seg_close(pri);
	shg_seg_close(rep);
	if (shg_seg_unlink(pri_name) || shg_seg_unlink(rep_name))
		fprintf(stderr, "bench_repl: could not unlink the segments\n");
	return err ? 1 : 0;
}
