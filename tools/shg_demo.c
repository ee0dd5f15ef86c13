/* SPDX-License-Identifier: MIT */
/*
 * shg-demo: cooperating processes over one shmgraph segment.
 *
 * A control process keeps a routing table -- a persistent map from route
 * id to backend under the root "routes" -- and publishes a new version many
 * times a second, each a transaction that rewrites every route (so a torn
 * version would be visible). Worker processes look routes up inside read
 * sections, without locks, and verify every version they see is whole: all
 * routes of one version name the same generation. Half-way, one
 * worker is killed with SIGKILL while inside a read section: the control
 * process's grace periods notice the dead reader, release its slot, and
 * reclamation of old versions carries on. The segment is left in place for
 * shmctl to inspect (scripts/demo.sh does that, then destroys it).
 *
 * Only the public API (<shmgraph.h>) is used.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <shmgraph.h>

#define NWORKERS 3

#define NROUTES 64

struct worker_result {
	uint64_t reads; /* read sections completed */
	uint64_t torn; /* versions whose routes disagree */
	uint64_t newest; /* highest generation seen */
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int die(const char *what, int err)
{
	fprintf(stderr, "shg-demo: %s: %s\n", what, shg_strerror(err));
	return 1;
}

/* Route @i of generation @gen: which backend serves it. */
static uint64_t backend(uint64_t gen, uint64_t i)
{
	return gen * 1000 + (i * 7 + gen) % 16;
}

/* One transaction: every route rewritten for generation @gen. */
static int publish(struct shg_root *root, uint64_t gen)
{
	struct shg_txn *txn;
	uint64_t i;
	int err;

	err = shg_txn_begin(root, &txn);
	if (err)
		return err;
	if (gen == 1)
		err = shg_txn_map_new(txn, SHG_REF_ROOT, SHG_KIND_U64,
				      SHG_KIND_U64);
	for (i = 0; i < NROUTES && !err; i++) {
		struct shg_val v = { .kind = SHG_KIND_U64,
				     .u64 = backend(gen, i) };

		err = shg_txn_map_put_u64(txn, SHG_REF_ROOT, i, &v);
	}
	if (!err)
		err = shg_txn_commit(txn);
	if (err)
		(void)shg_txn_abort(txn);
	return err;
}

/* Read every route of the current version; whole iff one generation. */
static bool read_routes(struct shg_seg *seg, struct shg_root *root,
			uint64_t *gen_out)
{
	struct shg_version_info vi;
	uint64_t i, gen = 0;

	if (shg_version_info(seg, shg_version_current(root), &vi))
		return false;
	for (i = 0; i < NROUTES; i++) {
		struct shg_val v;

		if (shg_map_get_u64(seg, vi.node, i, &v))
			return false;
		if (i == 0)
			gen = v.u64 / 1000;
		if (v.u64 != backend(gen, i))
			return false;
	}
	*gen_out = gen;
	return true;
}

static int worker(const char *name, int report_fd, int stall_fd)
{
	struct shg_opts o = { .size = sizeof(o) };
	struct worker_result r = { 0 };
	struct shg_root *root;
	struct shg_seg *seg;
	uint64_t until = now_ms() + 3000;
	int err;

	err = shg_seg_open(name, &o, &seg);
	if (err)
		return die("worker open", err);
	err = shg_root_open(seg, "routes", &root);
	if (err)
		return die("worker root", err);
	while (now_ms() < until) {
		uint64_t gen = 0;

		if (shg_read_lock(seg))
			return 1;
		if (!read_routes(seg, root, &gen))
			r.torn++;
		else if (gen > r.newest)
			r.newest = gen;
		if (stall_fd >= 0 && r.reads == 20000) {
			/* Tell the parent we are inside a section and wait to
			 * be killed: the section never ends. */
			char ch = 'S';

			if (write(stall_fd, &ch, 1) != 1)
				return 1;
			for (;;)
				pause();
		}
		shg_read_unlock(seg);
		r.reads++;
	}
	if (write(report_fd, &r, sizeof(r)) != sizeof(r))
		return 1;
	shg_root_close(root);
	shg_seg_close(seg);
	return 0;
}

static void print_readers(struct shg_seg *seg, const char *title)
{
	struct shg_reader_info ri[16];
	int n = shg_reader_list(seg, ri, 16);
	int i;

	printf("  %s\n", title);
	printf("    %8s %6s %8s %10s %10s\n", "PID", "ALIVE", "SECTION",
	       "EPOCH_LAG", "BLOCKED_MS");
	for (i = 0; i < n && i < 16; i++)
		printf("    %8d %6s %8s %10" PRIu64 " %10.1f\n", (int)ri[i].pid,
		       ri[i].alive ? "yes" : "DEAD",
		       ri[i].in_section ? "yes" : "no", ri[i].epoch_lag,
		       ri[i].blocked_ns / 1e6);
}

int main(int argc, char **argv)
{
	const char *name = argc > 1 ? argv[1] : "/shg-demo";
	struct shg_opts o = { .size = sizeof(o) };
	struct shg_root *root;
	struct shg_seg *seg;
	struct shg_stats st;
	int report[2], stall[2];
	pid_t pids[NWORKERS];
	uint64_t seq = 0, total_reads = 0, total_torn = 0;
	uint64_t t_end;
	int err, i, bad = 0;
	char ch;

	o.capacity = 64u << 20;
	if (shg_seg_unlink(name) == 0)
		printf("(removed a segment %s left by an earlier run)\n", name);
	err = shg_seg_create(name, &o, &seg);
	if (err)
		return die("create", err);
	err = shg_root_create(seg, "routes", &root);
	if (err)
		return die("root", err);
	err = publish(root, ++seq);
	if (err)
		return die("publish", err);
	printf("== shmgraph demo: segment %s, %d worker processes ==\n", name,
	       NWORKERS);
	printf("control (pid %d) publishes versions of the routing table "
	       "\"routes\"\n(%d routes rewritten per transaction); workers "
	       "look routes up without locks\n",
	       (int)getpid(), NROUTES);
	if (pipe(report) || pipe(stall))
		return die("pipe", -errno);
	fflush(stdout);
	for (i = 0; i < NWORKERS; i++) {
		pids[i] = fork();
		if (pids[i] < 0)
			return die("fork", -errno);
		if (pids[i] == 0)
			_exit(worker(name, report[1],
				     i == NWORKERS - 1 ? stall[1] : -1));
	}
	/* Publish flat out for 3.5 s; kill the staller once it stalls. */
	t_end = now_ms() + 3500;
	while (now_ms() < t_end) {
		struct pollfd pfd = { .fd = stall[0], .events = POLLIN };

		err = publish(root, ++seq);
		if (err)
			return die("publish", err);
		if (poll(&pfd, 1, 0) == 1 && read(stall[0], &ch, 1) == 1) {
			pid_t victim = pids[NWORKERS - 1];

			print_readers(seg, "readers while worker stalls "
					   "inside a read section:");
			printf("  killing worker %d with SIGKILL inside its "
			       "read section\n",
			       (int)victim);
			kill(victim, SIGKILL);
			waitpid(victim, NULL, 0);
			pids[NWORKERS - 1] = 0;
			err = shg_synchronize(seg, 5000);
			printf("  grace period after the kill: %s\n",
			       err ? shg_strerror(err) :
				     "completed (dead reader released)");
			print_readers(seg, "readers after release:");
		}
		usleep(200);
	}
	for (i = 0; i < NWORKERS - 1; i++) {
		struct worker_result r;
		int stw = 0;

		if (read(report[0], &r, sizeof(r)) != sizeof(r)) {
			bad = 1;
			continue;
		}
		total_reads += r.reads;
		total_torn += r.torn;
		waitpid(pids[i], &stw, 0);
		if (!WIFEXITED(stw) || WEXITSTATUS(stw))
			bad = 1;
	}
	err = shg_synchronize(seg, 5000);
	if (err)
		return die("synchronize", err);
	(void)shg_reclaim(seg);
	if (shg_stats_get(seg, &st) == 0)
		printf("\npublished %" PRIu64
		       " versions; survivors read the full table %" PRIu64
		       " times, %" PRIu64 " torn; reclaimed %" PRIu64
		       " replaced blocks (%" PRIu64 " bytes), %" PRIu64
		       " bytes still pending\n",
		       seq, total_reads, total_torn, st.reclaimed_blocks,
		       st.reclaimed_bytes, st.retired_bytes);
	printf("RESULT: %s\n", !bad && total_torn == 0 ?
				       "OK — every version read was whole, "
				       "the dead reader was released" :
				       "FAILED");
	shg_root_close(root);
	shg_seg_close(seg);
	return bad || total_torn ? 1 : 0;
}
