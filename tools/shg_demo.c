/* SPDX-License-Identifier: MIT */
/*
 * shg-demo: cooperating processes over one shmgraph segment.
 *
 * A control process publishes a configuration block under the root
 * "config" many times a second (each version: a sequence number, a set of
 * values and a checksum). Worker processes read it inside read sections,
 * without locks, and verify every version they see is whole. Half-way, one
 * worker is killed with SIGKILL while inside a read section: the control
 * process's grace periods notice the dead reader, release its slot, and
 * reclamation of old versions carries on. The segment is left in place for
 * shmctl to inspect (scripts/demo.sh does that, then destroys it).
 *
 * Only the public API (lib/shmgraph.h) is used.
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

#include "shmgraph.h"

#define NVALUES 30
#define NWORKERS 3

/* One published configuration version (lives in the segment). */
struct config {
	uint64_t seq; /* version number */
	uint64_t values[NVALUES]; /* payload: seq * (i + 1) */
	uint64_t sum; /* checksum of the above */
};

struct worker_result {
	uint64_t reads; /* read sections completed */
	uint64_t torn; /* versions that failed their checksum */
	uint64_t newest; /* highest version seen */
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t checksum(const struct config *c)
{
	uint64_t s = c->seq * 0x9e3779b97f4a7c15ull;
	int i;

	for (i = 0; i < NVALUES; i++)
		s = (s ^ c->values[i]) * 0x100000001b3ull;
	return s;
}

static int die(const char *what, int err)
{
	fprintf(stderr, "shg-demo: %s: %s\n", what, shg_strerror(err));
	return 1;
}

/* Publish version @seq: allocate, fill, CAS, retire the old block. */
static int publish(struct shg_seg *seg, struct shg_root *root, uint64_t seq)
{
	struct shg_off off, old;
	struct config *c;
	int err, i;

	err = shg_alloc(seg, sizeof(*c), &off);
	if (err)
		return err;
	c = shg_ptr(seg, off, sizeof(*c));
	c->seq = seq;
	for (i = 0; i < NVALUES; i++)
		c->values[i] = seq * (uint64_t)(i + 1);
	c->sum = checksum(c);
	err = shg_read_lock(seg);
	if (err)
		return err;
	old = shg_root_load(root);
	shg_read_unlock(seg);
	err = shg_root_cas(root, old, off);
	if (err) {
		shg_free(seg, off);
		return err;
	}
	return shg_off_is_null(old) ? 0 : shg_retire(seg, old);
}

static int worker(const char *name, int id, int report_fd, int stall_fd)
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
	err = shg_root_open(seg, "config", &root);
	if (err)
		return die("worker root", err);
	while (now_ms() < until) {
		const struct config *c;
		struct shg_off off;

		if (shg_read_lock(seg))
			return 1;
		off = shg_root_load(root);
		c = shg_ptr(seg, off, sizeof(*c));
		if (c) {
			if (c->sum != checksum(c))
				r.torn++;
			if (c->seq > r.newest)
				r.newest = c->seq;
		}
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
	(void)id;
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
	err = shg_root_create(seg, "config", &root);
	if (err)
		return die("root", err);
	err = publish(seg, root, ++seq);
	if (err)
		return die("publish", err);
	printf("== shmgraph demo: segment %s, %d worker processes ==\n", name,
	       NWORKERS);
	printf("control (pid %d) publishes versions of root \"config\"; "
	       "workers read them without locks\n",
	       (int)getpid());
	if (pipe(report) || pipe(stall))
		return die("pipe", -errno);
	fflush(stdout);
	for (i = 0; i < NWORKERS; i++) {
		pids[i] = fork();
		if (pids[i] < 0)
			return die("fork", -errno);
		if (pids[i] == 0)
			_exit(worker(name, i, report[1],
				     i == NWORKERS - 1 ? stall[1] : -1));
	}
	/* Publish flat out for 3.5 s; kill the staller once it stalls. */
	t_end = now_ms() + 3500;
	while (now_ms() < t_end) {
		struct pollfd pfd = { .fd = stall[0], .events = POLLIN };

		err = publish(seg, root, ++seq);
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
		       " versions; survivors read %" PRIu64 " times, %" PRIu64
		       " torn reads; reclaimed %" PRIu64
		       " old versions (%" PRIu64 " bytes), %" PRIu64
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
