/* SPDX-License-Identifier: MIT */
/*
 * Liveness and ownership with real namespaces, exec and fork: what the
 * kernel attests (an OFD lock per process slot), never a pid looked up in
 * /proc, decides who is alive. Participants run in child PID namespaces
 * (with their own /proc, with the host's, without any), in another time
 * namespace, with no free descriptor, after a wall-clock step, after exec
 * without close; lock holders and waiters are in different namespaces with
 * colliding TIDs (each is pid 1 of its namespace). Freed memory is poisoned
 * (SHG_DEBUG_POISON=1), so a reader that lost its section sees 0xdb/0x22.
 *
 * Namespaces need root (CI runs as root); a case the kernel refuses (EPERM,
 * EINVAL) is skipped with the reason printed. SHG_LONG_TESTS=1 runs more
 * rounds of the multi-namespace kill test.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "testutil.h"

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

#define NPART 4
#define SKIP_CODE 77

/* State shared by the test and every participant (anonymous shared map). */
struct shared {
	char name[64]; /* segment */
	_Atomic int stage[NPART]; /* participant progress */
	_Atomic int cmd[NPART]; /* test -> participant */
	_Atomic int res[NPART]; /* participant -> test */
	_Atomic int res2[NPART];
	_Atomic pid_t host_pid[NPART]; /* participant pid as the test sees it */
	_Atomic int inside; /* a lock holder is in its critical section */
	_Atomic int skip_errno;
};
static struct shared *sh;

enum {
	NS_PID = 1, /* own PID namespace (pid 1 there) */
	NS_OWNPROC = 2, /* own mount namespace with its own /proc */
	NS_NOPROC = 4, /* own mount namespace without /proc */
	NS_TIME = 8, /* own time namespace (boottime/monotonic shifted) */
	NS_EMFILE = 16, /* every descriptor but one in use */
};

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Wait until *@f >= @v; 0, or -1 after @ms. */
static int wait_at_least(_Atomic int *f, int v, int ms)
{
	uint64_t end = now_ms() + (uint64_t)ms;

	while (atomic_load(f) < v) {
		if (now_ms() > end)
			return -1;
		sleep_ms(1);
	}
	return 0;
}

static void shared_reset(const char *segname)
{
	memset(sh, 0, sizeof(*sh));
	snprintf(sh->name, sizeof(sh->name), "%s", segname);
}

static int refused(int err)
{
	atomic_store(&sh->skip_errno, err);
	return SKIP_CODE;
}

/* In the new namespaces: mounts, descriptor exhaustion. */
static int setup_inside(int flags)
{
	if (flags & (NS_OWNPROC | NS_NOPROC)) {
		if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
			return refused(errno);
		if (flags & NS_OWNPROC) {
			if (mount("proc", "/proc", "proc", 0, NULL) != 0)
				return refused(errno);
		} else if (umount2("/proc", MNT_DETACH) != 0) {
			return refused(errno);
		}
	}
	if (flags & NS_EMFILE) {
		struct rlimit rl = { 64, 64 };
		int fd, last = -1;

		if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
			return refused(errno);
		while ((fd = open("/dev/null", O_RDONLY)) >= 0)
			last = fd;
		if (last < 0)
			return 70;
		close(last); /* exactly one left: the segment's */
	}
	return 0;
}

/*
 * Run @fn(@id) in a grandchild set up as @flags asks. Returns the pid of
 * the intermediate child, which exits with the grandchild's status (128 +
 * signal if killed) or SKIP_CODE if the kernel refused a namespace. The
 * grandchild's pid as we see it is published in sh->host_pid[@id].
 */
static pid_t ns_spawn(int flags, int (*fn)(int id), int id)
{
	int uf = 0, st, rc;
	pid_t mid, g;

	fflush(stdout);
	mid = fork();
	if (mid != 0)
		return mid;
	if (flags & NS_PID)
		uf |= CLONE_NEWPID;
	if (flags & (NS_OWNPROC | NS_NOPROC))
		uf |= CLONE_NEWNS;
	if (flags & NS_TIME)
		uf |= CLONE_NEWTIME;
	if (uf && unshare(uf) != 0)
		_exit(refused(errno));
	if (flags & NS_TIME) {
		static const char offs[] = "monotonic 100000 0\n"
					   "boottime 100000 0\n";
		int fd = open("/proc/self/timens_offsets", O_WRONLY);

		if (fd < 0 || write(fd, offs, sizeof(offs) - 1) < 0)
			_exit(refused(errno));
		close(fd);
	}
	g = fork();
	if (g < 0)
		_exit(71);
	if (g == 0) {
		rc = setup_inside(flags);
		if (rc)
			_exit(rc);
		_exit(fn(id));
	}
	atomic_store(&sh->host_pid[id], g);
	if (waitpid(g, &st, 0) != g)
		_exit(72);
	_exit(WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
}

/*
 * Wait for the participant's @stage; skip the test if it was refused. A
 * participant that exits first ends the wait at once (a refused namespace
 * used to cost the whole timeout). A skip removes the test's segment name,
 * which the skipped test no longer reaches.
 */
static void await_stage(pid_t mid, int id, int stage, const char *what)
{
	uint64_t end = now_ms() + 20000;
	siginfo_t si;
	int st;

	while (atomic_load(&sh->stage[id]) < stage && now_ms() <= end) {
		/* Exited? (WNOWAIT: tu_wait below still reaps it.) */
		memset(&si, 0, sizeof(si));
		if (waitid(P_PID, (id_t)mid, &si,
			   WEXITED | WNOHANG | WNOWAIT) == 0 &&
		    si.si_pid == mid)
			break;
		sleep_ms(1);
	}
	if (atomic_load(&sh->stage[id]) >= stage)
		return;
	kill(mid, SIGKILL);
	st = tu_wait(mid);
	if (st == SKIP_CODE) {
		print_message("  skipped: %s: the kernel refused (%s)\n", what,
			      strerror(atomic_load(&sh->skip_errno)));
		if (shg_seg_unlink(sh->name) != 0)
			print_message("  (segment %s already gone)\n",
				      sh->name);
		skip();
	}
	fail_msg("%s: participant %d exited with %d before stage %d", what, id,
		 st, stage);
}

/* SIGKILL participant @id (never pid 0: that would be our process group). */
static void kill_part(int id)
{
	pid_t pid;
	uint64_t end = now_ms() + 20000;

	while ((pid = atomic_load(&sh->host_pid[id])) == 0 && now_ms() < end)
		sleep_ms(1);
	assert_true(pid > 0);
	assert_int_equal(kill(pid, SIGKILL), 0);
}

/* ---- a reader judged by a writer in another namespace ------------------- */

static struct shg_seg *make_seg(char *name, struct shg_root **root,
				struct shg_off *a)
{
	struct shg_seg *seg = tu_create(name, 0);

	tu_ok(shg_root_create(seg, "r", root));
	tu_ok(shg_alloc(seg, 64, a));
	memset(shg_ptr(seg, *a, 64), 0x11, 64);
	tu_ok(shg_root_cas(*root, SHG_OFF_NULL, *a));
	return seg;
}

/* Participant: read the root's block in one section, twice. */
static int reader_main(int id)
{
	struct shg_seg *seg;
	struct shg_root *root;
	volatile unsigned char *p;

	if (shg_seg_open(sh->name, NULL, &seg))
		return 10;
	if (shg_root_open(seg, "r", &root))
		return 11;
	if (shg_read_lock(seg))
		return 12;
	p = shg_ptr(seg, shg_root_load(root), 64);
	atomic_store(&sh->res[id], p[20]);
	atomic_store(&sh->stage[id], 1);
	if (wait_at_least(&sh->cmd[id], 1, 20000))
		return 13;
	atomic_store(&sh->res2[id], p[20]); /* same section */
	shg_read_unlock(seg);
	shg_root_close(root);
	shg_seg_close(seg);
	return 0;
}

/*
 * A reader set up by @flags is in a read section; the writer replaces and
 * retires its block and waits for a grace period: the reader is alive, so
 * synchronize must not finish, and the reader must still see its bytes.
 */
static void reader_survives(int flags, const char *what, bool clockstep)
{
	struct shg_root *root;
	struct shg_off a, b, c;
	struct shg_seg *seg;
	char name[64];
	pid_t mid;
	uint32_t p;

	seg = make_seg(name, &root, &a);
	shared_reset(name);
	mid = ns_spawn(flags, reader_main, 0);
	await_stage(mid, 0, 1, what);
	assert_int_equal(atomic_load(&sh->res[0]), 0x11);
	if (clockstep) {
		/* As a wall clock stepped forward by years after the reader
		 * attached would make it look. */
		for (p = 0; p < seg->max_procs; p++)
			if (p != seg->pslot &&
			    atomic_load(&seg->procs[p].token))
				seg->procs[p].attached_ns = 1000000000ull;
	}
	tu_ok(shg_alloc(seg, 64, &b));
	memset(shg_ptr(seg, b, 64), 0x33, 64);
	tu_ok(shg_root_cas(root, a, b));
	tu_ok(shg_retire(seg, a));
	/* The reader is alive and in its section: no grace period. */
	assert_int_not_equal(shg_synchronize(seg, 300), 0);
	tu_ok(shg_alloc(seg, 64, &c));
	memset(shg_ptr(seg, c, 64), 0x22, 64);
	atomic_store(&sh->cmd[0], 1);
	assert_int_equal(tu_wait(mid), 0);
	assert_int_equal(atomic_load(&sh->res2[0]), 0x11);
	tu_ok(shg_synchronize(seg, 2000));
	TU_CHECK_SOUND(seg);
	shg_root_close(root);
	tu_destroy(seg, name);
}

static void test_live_reader_own_pidns_own_proc(void **state)
{
	(void)state;
	reader_survives(NS_PID | NS_OWNPROC, "PID namespace with own /proc",
			false);
}

static void test_live_reader_other_timens(void **state)
{
	(void)state;
	reader_survives(NS_TIME, "time namespace", false);
}

static void test_live_reader_without_proc(void **state)
{
	(void)state;
	reader_survives(NS_NOPROC, "mount namespace without /proc", false);
}

static void test_live_reader_one_free_descriptor(void **state)
{
	(void)state;
	reader_survives(NS_EMFILE, "descriptor limit", false);
}

static void test_live_reader_after_clock_step(void **state)
{
	(void)state;
	reader_survives(0, "wall-clock step", true);
}

/* ---- a dead reader judged by a writer in another namespace -------------- */

static int reader_dies_main(int id)
{
	struct shg_seg *seg;
	struct shg_root *root;

	if (shg_seg_open(sh->name, NULL, &seg))
		return 10;
	if (shg_root_open(seg, "r", &root))
		return 11;
	if (shg_read_lock(seg))
		return 12;
	atomic_store(&sh->stage[id], 1);
	if (atomic_load(&sh->cmd[id]) == 0)
		_exit(0); /* dies inside its section, pid 1 of its namespace */
	pause(); /* killed */
	return 0;
}

static void dead_reader_released(int flags, const char *what, bool kill9)
{
	struct shg_recover_report rep = { 0 };
	struct shg_root_info ri;
	struct shg_root *root;
	struct shg_off a, b;
	struct shg_seg *seg;
	char name[64];
	pid_t mid;

	seg = make_seg(name, &root, &a);
	shared_reset(name);
	atomic_store(&sh->cmd[0], kill9);
	mid = ns_spawn(flags, reader_dies_main, 0);
	await_stage(mid, 0, 1, what);
	if (kill9)
		kill_part(0);
	assert_int_equal(tu_wait(mid), kill9 ? 128 + SIGKILL : 0);
	tu_ok(shg_alloc(seg, 64, &b));
	tu_ok(shg_root_cas(root, a, b));
	tu_ok(shg_retire(seg, a));
	tu_ok(shg_recover(seg, &rep));
	assert_int_equal(rep.procs_released, 1);
	assert_int_equal(rep.threads_released, 1);
	assert_int_equal(rep.holds_released, 1);
	tu_ok(shg_synchronize(seg, 1000));
	assert_int_equal(shg_root_list(seg, &ri, 1), 1);
	assert_int_equal(ri.holds, 1); /* ours */
	TU_CHECK_SOUND(seg);
	shg_root_close(root);
	tu_destroy(seg, name);
}

static void test_live_dead_reader_pidns_host_proc(void **state)
{
	(void)state;
	/* pid 1 there; pid 1 of the host lives: a pid would say "alive". */
	dead_reader_released(NS_PID, "PID namespace, host /proc", false);
}

static void test_live_killed_reader_pidns_own_proc(void **state)
{
	(void)state;
	dead_reader_released(NS_PID | NS_OWNPROC, "PID namespace, own /proc",
			     true);
}

/* ---- lock holders and waiters in different namespaces -------------------- */

#define HOLD_MS 400

static int holder_main(int id)
{
	struct shg_seg *seg;

	if (shg_seg_open(sh->name, NULL, &seg))
		return 10;
	if (shg__lock(seg, &seg->hdr->limbo_lock, NULL))
		return 11;
	atomic_store(&sh->inside, 1);
	atomic_store(&sh->stage[id], 1);
	sleep_ms(HOLD_MS);
	atomic_store(&sh->inside, 0);
	shg__unlock(seg, &seg->hdr->limbo_lock);
	shg_seg_close(seg);
	return 0;
}

static int waiter_main(int id)
{
	struct shg_seg *seg;
	int err;

	if (shg_seg_open(sh->name, NULL, &seg))
		return 10;
	if (wait_at_least(&sh->inside, 1, 20000))
		return 11;
	atomic_store(&sh->stage[id], 1);
	err = shg__lock(seg, &seg->hdr->limbo_lock, NULL);
	/* 1 here: we took the lock while its live holder was inside. */
	atomic_store(&sh->res[id], atomic_load(&sh->inside) + 1);
	if (!err)
		shg__unlock(seg, &seg->hdr->limbo_lock);
	shg_seg_close(seg);
	return err ? 12 : 0;
}

/* A live holder (pid 1 of one namespace) keeps its lock against a waiter
 * (pid 1 of another, or unable to read /proc). */
static void holder_keeps_lock(int hflags, int wflags, const char *what)
{
	struct shg_seg *seg;
	char name[64];
	pid_t h, w;

	seg = tu_create(name, 0);
	shared_reset(name);
	h = ns_spawn(hflags, holder_main, 0);
	await_stage(h, 0, 1, what);
	w = ns_spawn(wflags, waiter_main, 1);
	await_stage(w, 1, 1, what);
	assert_int_equal(tu_wait(w), 0);
	assert_int_equal(tu_wait(h), 0);
	assert_int_equal(atomic_load(&sh->res[1]), 1); /* holder had left */
	assert_false(shg__lock_others_active(seg));
	TU_CHECK_SOUND(seg);
	tu_destroy(seg, name);
}

static void test_live_lock_waiter_other_pidns(void **state)
{
	(void)state;
	holder_keeps_lock(0, NS_PID | NS_OWNPROC,
			  "lock waiter in a PID namespace with its own /proc");
}

static void test_live_lock_holder_waiter_both_pid1(void **state)
{
	(void)state;
	/* Holder and waiter both pid 1 (equal TIDs) of two namespaces. */
	holder_keeps_lock(NS_PID, NS_PID | NS_OWNPROC,
			  "lock holder and waiter in two PID namespaces");
}

static void test_live_lock_waiter_without_proc(void **state)
{
	(void)state;
	holder_keeps_lock(0, NS_NOPROC, "lock waiter without /proc");
}

static void test_live_lock_waiter_no_descriptor(void **state)
{
	(void)state;
	holder_keeps_lock(0, NS_EMFILE, "lock waiter at its descriptor limit");
}

/* A holder killed inside its critical section in its own PID namespace:
 * the kernel hands the lock on, the waiter repairs. */
static int holder_dies_main(int id)
{
	struct shg_seg *seg;

	if (shg_seg_open(sh->name, NULL, &seg))
		return 10;
	if (shg__lock(seg, &seg->hdr->root_lock, NULL))
		return 11;
	atomic_store(&sh->stage[id], 1);
	pause();
	return 0;
}

static int repaired;
static void count_repair(struct shg_seg *seg)
{
	(void)seg;
	repaired++;
}

static void test_live_lock_holder_killed_in_pidns(void **state)
{
	struct shg_seg *seg;
	char name[64];
	pid_t h;

	(void)state;
	seg = tu_create(name, 0);
	shared_reset(name);
	h = ns_spawn(NS_PID, holder_dies_main, 0);
	await_stage(h, 0, 1, "lock holder in a PID namespace");
	kill_part(0);
	assert_int_equal(tu_wait(h), 128 + SIGKILL);
	repaired = 0;
	tu_ok(shg__lock(seg, &seg->hdr->root_lock, count_repair));
	assert_int_equal(repaired, 1);
	shg__unlock(seg, &seg->hdr->root_lock);
	TU_CHECK_SOUND(seg);
	tu_destroy(seg, name);
}

/*
 * Take-over attempts hammering a lock that live processes (in two PID
 * namespaces, both pid 1) take and release all the time: none may
 * succeed, mutual exclusion must hold, and every unlock must work (an
 * unlock that meets the taker's CLAIM puts its word back). Afterwards a
 * forged orphan word is taken over at once.
 */
#define HAMMER_MS 600

static int hammer_main(int id)
{
	struct shg_seg *seg;
	uint64_t end;
	int n = 0;

	if (shg_seg_open(sh->name, NULL, &seg))
		return 10;
	atomic_store(&sh->stage[id], 1);
	if (wait_at_least(&sh->cmd[0], 1, 20000))
		return 11;
	end = now_ms() + HAMMER_MS;
	while (now_ms() < end) {
		if (shg__lock(seg, &seg->hdr->grow_lock, NULL))
			return 12;
		if (atomic_fetch_add(&sh->inside, 1) != 0)
			atomic_store(&sh->res2[0], 1); /* two inside */
		n++;
		atomic_fetch_sub(&sh->inside, 1);
		shg__unlock(seg, &seg->hdr->grow_lock);
	}
	atomic_store(&sh->res[id], n);
	atomic_store(&sh->res2[id],
		     (int)atomic_load(&shg__lock_unlock_retries));
	shg_seg_close(seg);
	return 0;
}

static void test_live_take_over_never_robs_live_holders(void **state)
{
	struct shg_seg *seg;
	char name[64];
	uint64_t end;
	unsigned tries = 0, taken = 0;
	pid_t h[2];
	int i;

	(void)state;
	seg = tu_create(name, 0);
	shared_reset(name);
	h[0] = ns_spawn(NS_PID, hammer_main, 1);
	h[1] = ns_spawn(NS_PID | NS_OWNPROC, hammer_main, 2);
	await_stage(h[0], 1, 1, "lock hammer in a PID namespace");
	await_stage(h[1], 2, 1, "lock hammer in a PID namespace");
	atomic_store(&sh->cmd[0], 1);
	end = now_ms() + HAMMER_MS;
	while (now_ms() < end) {
		tries++;
		/* Every other attempt skips step 1's filter: the word is
		 * then claimed under a live holder, which step 3 undoes. */
		taken += shg__lock_take_over(seg, &seg->hdr->grow_lock,
					     tries & 1);
	}
	for (i = 0; i < 2; i++)
		assert_int_equal(tu_wait(h[i]), 0);
	print_message("  take-over: %u attempts against %d + %d live "
		      "lock/unlock pairs: %u taken, %llu claims undone, %d "
		      "unlocks met a claim\n",
		      tries, atomic_load(&sh->res[1]), atomic_load(&sh->res[2]),
		      taken,
		      (unsigned long long)atomic_load(&shg__lock_restores),
		      atomic_load(&sh->res2[1]) + atomic_load(&sh->res2[2]));
	assert_int_equal(taken, 0);
	assert_int_equal(atomic_load(&sh->res2[0]), 0);
	assert_true(atomic_load(&sh->res[1]) > 0 &&
		    atomic_load(&sh->res[2]) > 0);
	/* Nobody announces now: a forged word is an orphan. */
	__atomic_store_n((int *)&seg->hdr->grow_lock, 4242, __ATOMIC_RELEASE);
	assert_true(shg__lock_take_over(seg, &seg->hdr->grow_lock, true));
	repaired = 0;
	tu_ok(shg__lock(seg, &seg->hdr->grow_lock, count_repair));
	assert_int_equal(repaired, 1);
	shg__unlock(seg, &seg->hdr->grow_lock);
	TU_CHECK_SOUND(seg);
	tu_destroy(seg, name);
}

/* ---- exec without close, fork with close ---------------------------------- */

static void test_live_exec_without_close(void **state)
{
	struct shg_recover_report rep = { 0 }, released = { 0 };
	uint64_t end;
	struct shg_root_info ri;
	struct shg_root *root;
	struct shg_off a, b;
	struct shg_seg *seg;
	char name[64], c;
	int pfd[2];
	pid_t pid;

	(void)state;
	seg = make_seg(name, &root, &a);
	assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
	pid = fork();
	if (pid == 0) {
		struct shg_seg *s;
		struct shg_root *r;

		close(pfd[0]);
		if (shg_seg_open(name, NULL, &s) || shg_root_open(s, "r", &r) ||
		    shg_read_lock(s))
			_exit(1);
		/* The same process goes on as another program: its slot,
		 * thread slot, section and hold must go with the old image. */
		execl("/bin/sleep", "sleep", "30", (char *)NULL);
		_exit(2);
	}
	close(pfd[1]);
	/* EOF once the child exec'd (the write end was O_CLOEXEC). */
	assert_int_equal(read(pfd[0], &c, 1), 0);
	close(pfd[0]);
	assert_int_equal(kill(pid, 0), 0); /* still running */
	tu_ok(shg_alloc(seg, 64, &b));
	tu_ok(shg_root_cas(root, a, b));
	tu_ok(shg_retire(seg, a));
	/* The kernel drops the file's locks when exec's deferred close of
	 * the descriptor runs, which may be just after the pipe's: wait.
	 * (A reclaim pass may release the slot before recover does.) */
	end = now_ms() + 5000;
	do {
		memset(&rep, 0, sizeof(rep));
		tu_ok(shg_recover(seg, &rep));
		released.procs_released += rep.procs_released;
		released.holds_released += rep.holds_released;
		assert_int_equal(shg_root_list(seg, &ri, 1), 1);
		if (ri.holds == 1 && shg_reader_list(seg, NULL, 0) <= 1)
			break;
		sleep_ms(1);
	} while (now_ms() < end);
	assert_int_equal(ri.holds, 1); /* the exec'd process's hold went */
	assert_true(shg_reader_list(seg, NULL, 0) <= 1);
	assert_true(released.procs_released <= 1);
	assert_int_equal(kill(pid, 0), 0); /* released while it runs */
	tu_ok(shg_synchronize(seg, 1000));
	assert_int_equal(shg_root_list(seg, &ri, 1), 1);
	assert_int_equal(ri.holds, 1);
	kill(pid, SIGKILL);
	assert_int_equal(tu_wait(pid), 128 + SIGKILL);
	TU_CHECK_SOUND(seg);
	shg_root_close(root);
	tu_destroy(seg, name);
}

static int count_pins(struct shg_seg *seg)
{
	return shg_pin_list(seg, NULL, 0);
}

static void map_commit(struct shg_root *root, uint64_t k, uint64_t v,
		       bool create)
{
	struct shg_val val = { .kind = SHG_KIND_U64 };
	struct shg_txn *txn;

	val.u64 = v;
	tu_ok(shg_txn_begin(root, &txn));
	if (create)
		tu_ok(shg_txn_map_new(txn, SHG_REF_ROOT, SHG_KIND_U64,
				      SHG_KIND_U64));
	tu_ok(shg_txn_map_put_u64(txn, SHG_REF_ROOT, k, &val));
	tu_ok(shg_txn_commit(txn));
}

struct forked {
	struct shg_seg *seg;
	struct shg_root *root;
	struct shg_pin *pin;
};

static int child_closes_inherited(void *arg)
{
	struct forked *f = arg;

	/* Only the child's copies go; the parent's state stays. */
	if (shg_unpin(f->pin) || shg_root_close(f->root) ||
	    shg_seg_close(f->seg))
		return 1;
	return 0;
}

static void test_live_fork_child_close_leaves_parent(void **state)
{
	struct shg_reader_info ri[4];
	struct shg_root_info rinfo;
	struct forked f;
	char name[64];
	int n;

	(void)state;
	f.seg = tu_create(name, 0);
	tu_ok(shg_root_create(f.seg, "m", &f.root));
	map_commit(f.root, 1, 1, true);
	tu_ok(shg_pin_current(f.root, &f.pin));
	tu_ok(shg_read_lock(f.seg));
	assert_int_equal(tu_wait(tu_fork(child_closes_inherited, &f)), 0);
	/* Still in our section, still holding the root, still pinning. */
	n = shg_reader_list(f.seg, ri, 4);
	assert_int_equal(n, 1);
	assert_true(ri[0].alive && ri[0].in_section);
	assert_int_equal(count_pins(f.seg), 1);
	assert_int_equal(shg_root_list(f.seg, &rinfo, 1), 1);
	assert_int_equal(rinfo.holds, 1);
	shg_read_unlock(f.seg);
	map_commit(f.root, 2, 2, false);
	tu_ok(shg_unpin(f.pin));
	assert_int_equal(count_pins(f.seg), 0);
	TU_CHECK_SOUND(f.seg);
	shg_root_close(f.root);
	tu_destroy(f.seg, name);
}

/* ---- a file segment from an earlier boot ---------------------------------- */

/* Forge, in the closed file at @path, what an earlier boot leaves behind:
 * another boot id and limbo_lock held by a thread of that boot. */
static void forge_earlier_boot(const char *path)
{
	struct shg_hdr *h;
	int fd = open(path, O_RDWR | O_CLOEXEC);

	assert_true(fd >= 0);
	h = mmap(NULL, SHG_HDR_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	assert_true(h != MAP_FAILED);
	h->boot_id[0] ^= 0xff;
	h->boot_id[15] ^= 0x5a;
	/* glibc: the futex word first; a TID of that boot, no waiters */
	__atomic_store_n((int *)&h->limbo_lock, 4242, __ATOMIC_RELEASE);
	munmap(h, SHG_HDR_SIZE);
	close(fd);
}

static void test_live_earlier_boot_locks_reset(void **state)
{
	uint8_t now[16];
	struct shg_seg *seg, *seg2;
	char path[128];
	uint64_t t0;

	(void)state;
	if (shg__boot_id(now) != 0) {
		print_message("  skipped: boot id unreadable here\n");
		skip();
	}
	tu_file_path(path, sizeof(path), "boot");
	tu_ok(shg_seg_create(path, NULL, &seg));
	shg_seg_close(seg);
	forge_earlier_boot(path);
	/* No live participant: the opener resets the locks at once. */
	tu_ok(shg_seg_open(path, NULL, &seg));
	assert_memory_equal(seg->hdr->boot_id, now, 16);
	t0 = now_ms();
	tu_ok(shg__lock(seg, &seg->hdr->limbo_lock, NULL));
	shg__unlock(seg, &seg->hdr->limbo_lock);
	assert_true(now_ms() - t0 < 50); /* no take-over slice needed */
	shg_seg_close(seg);

	/* With a live participant attached, nothing is reset; the orphaned
	 * word is taken over by its (only) waiter instead. */
	tu_ok(shg_seg_open(path, NULL, &seg));
	shg_seg_close(seg);
	forge_earlier_boot(path);
	tu_ok(shg_seg_open(path,
			   &(struct shg_opts){ .size = sizeof(struct shg_opts),
					       .flags = SHG_OPEN_NO_RECOVER },
			   &seg));
	tu_ok(shg_seg_open(path, NULL, &seg2));
	assert_memory_not_equal(seg2->hdr->boot_id, now, 16);
	tu_ok(shg__lock(seg2, &seg2->hdr->limbo_lock, NULL));
	shg__unlock(seg2, &seg2->hdr->limbo_lock);
	shg_seg_close(seg2);
	shg_seg_close(seg);
	tu_ok(shg_seg_unlink(path));
}

/* ---- several PID namespaces at once, kill -9 in each ---------------------- */

/*
 * Participant @id (pid 1 of its own PID namespace): a reader (a section
 * over root "r"'s block), a pinner (a pin on map root "m"), a writer
 * (commits to "m" while waiting) and a lock holder (id 2 takes root_lock
 * just before it is killed). cmd 1: check what it holds and report; cmd 2:
 * run shg_recover and report; cmd 3: exit; cmd 4: take root_lock, wait.
 */
static int part_main(int id)
{
	struct shg_root *r, *m;
	struct shg_seg *seg;
	struct shg_pin *pin;
	struct shg_val v;
	volatile unsigned char *p;
	uint64_t n = 0;
	int c;

	if (shg_seg_open(sh->name, NULL, &seg))
		return 10;
	if (shg_root_open(seg, "r", &r) || shg_root_open(seg, "m", &m))
		return 11;
	if (shg_pin_current(m, &pin))
		return 12;
	if (shg_read_lock(seg))
		return 13;
	p = shg_ptr(seg, shg_root_load(r), 64);
	atomic_store(&sh->stage[id], 1);
	for (;;) {
		c = atomic_exchange(&sh->cmd[id], 0);
		if (c == 1) {
			struct shg_version_info vi;
			int ok = p[20] == 0x11;

			ok = ok && shg_version_info(seg, shg_pin_version(pin),
						    &vi) == 0;
			ok = ok &&
			     shg_map_get_u64(seg, vi.node, 1000, &v) == 0 &&
			     v.u64 == 1000;
			atomic_store(&sh->res[id], ok ? 1 : -1);
		} else if (c == 2) {
			struct shg_recover_report rep = { 0 };

			shg_read_unlock(seg);
			c = shg_recover(seg, &rep);
			if (shg_read_lock(seg))
				return 15;
			atomic_store(&sh->res2[id],
				     c ? c : (int)rep.procs_released);
			atomic_store(&sh->res[id], 2);
		} else if (c == 3) {
			break;
		} else if (c == 4) {
			/* Take root_lock and die holding it. */
			if (shg__lock(seg, &seg->hdr->root_lock, NULL))
				return 14;
			atomic_store(&sh->res[id], 4);
			pause();
		}
		if (id != 2) {
			/* The writer: a commit outside the section. */
			struct shg_txn *txn;
			struct shg_val val = { .kind = SHG_KIND_U64 };

			shg_read_unlock(seg);
			val.u64 = ++n;
			if (shg_txn_begin(m, &txn) == 0) {
				if (shg_txn_map_put_u64(txn, SHG_REF_ROOT,
							(uint64_t)id, &val) ||
				    shg_txn_commit(txn))
					shg_txn_abort(txn);
			}
			if (shg_read_lock(seg))
				return 16;
		}
		sleep_ms(2);
	}
	shg_read_unlock(seg);
	shg_unpin(pin);
	shg_root_close(r);
	shg_root_close(m);
	shg_seg_close(seg);
	return 0;
}

/* Send @cmd to participant @id; its answer (0: none within 20 s). */
static int ask(int id, int cmd)
{
	uint64_t end = now_ms() + 20000;
	int r;

	atomic_store(&sh->res[id], 0);
	atomic_store(&sh->cmd[id], cmd);
	while ((r = atomic_load(&sh->res[id])) == 0 && now_ms() < end)
		sleep_ms(1);
	return r;
}

static void one_round(unsigned round)
{
	/* Own /proc, the host's /proc, no /proc: all with pid 1. */
	static const int flags[3] = { NS_PID | NS_OWNPROC, NS_PID,
				      NS_PID | NS_NOPROC };
	struct shg_recover_report rep;
	struct shg_root *r, *m;
	struct shg_off a;
	struct shg_seg *seg;
	char name[64];
	pid_t mid[3];
	int i, k, order[3];

	seg = make_seg(name, &r, &a);
	tu_ok(shg_root_create(seg, "m", &m));
	map_commit(m, 1000, 1000, true);
	shared_reset(name);
	for (i = 0; i < 3; i++)
		mid[i] = ns_spawn(flags[i], part_main, i);
	for (i = 0; i < 3; i++)
		await_stage(mid[i], i, 1, "three PID namespaces");
	/* Kill order rotates with the round; the lock holder (2) too. */
	for (i = 0; i < 3; i++)
		order[i] = (int)((i + round) % 3);
	for (k = 0; k < 3; k++) {
		int dead = order[k], j;

		sleep_ms(20); /* let the writers commit */
		if (dead == 2) /* dies holding root_lock */
			assert_int_equal(ask(2, 4), 4);
		kill_part(dead);
		assert_int_equal(tu_wait(mid[dead]), 128 + SIGKILL);
		mid[dead] = 0;
		/* Recover from a surviving namespace, or from ours last. */
		for (j = 0; j < 3 && (!mid[j] || j == dead); j++)
			;
		if (j < 3) {
			assert_int_equal(ask(j, 2), 2);
			assert_true(atomic_load(&sh->res2[j]) >= 1);
		} else {
			memset(&rep, 0, sizeof(rep));
			tu_ok(shg_recover(seg, &rep));
			assert_int_equal(rep.procs_released, 1);
		}
		/* Nobody alive lost anything. */
		for (j = 0; j < 3; j++)
			if (mid[j])
				assert_int_equal(ask(j, 1), 1);
		/* The dead one's lock, if any, is usable again. */
		tu_ok(shg__lock(seg, &seg->hdr->root_lock, NULL));
		shg__unlock(seg, &seg->hdr->root_lock);
	}
	memset(&rep, 0, sizeof(rep));
	tu_ok(shg_recover(seg, &rep));
	assert_int_equal(rep.procs_released, 0);
	assert_int_equal(count_pins(seg), 0);
	tu_ok(shg_synchronize(seg, 1000));
	TU_CHECK_SOUND(seg);
	shg_root_close(r);
	shg_root_close(m);
	tu_destroy(seg, name);
}

static void test_live_three_pidns_kill_each(void **state)
{
	unsigned rounds = tu_long_tests() ? 30 : 3, i;

	(void)state;
	for (i = 0; i < rounds; i++)
		one_round(i);
	print_message("  three PID namespaces: %u rounds, %u kills\n", rounds,
		      3 * rounds);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_live_reader_own_pidns_own_proc),
		cmocka_unit_test(test_live_reader_other_timens),
		cmocka_unit_test(test_live_reader_without_proc),
		cmocka_unit_test(test_live_reader_one_free_descriptor),
		cmocka_unit_test(test_live_reader_after_clock_step),
		cmocka_unit_test(test_live_dead_reader_pidns_host_proc),
		cmocka_unit_test(test_live_killed_reader_pidns_own_proc),
		cmocka_unit_test(test_live_lock_waiter_other_pidns),
		cmocka_unit_test(test_live_lock_holder_waiter_both_pid1),
		cmocka_unit_test(test_live_lock_waiter_without_proc),
		cmocka_unit_test(test_live_lock_waiter_no_descriptor),
		cmocka_unit_test(test_live_lock_holder_killed_in_pidns),
		cmocka_unit_test(test_live_take_over_never_robs_live_holders),
		cmocka_unit_test(test_live_exec_without_close),
		cmocka_unit_test(test_live_fork_child_close_leaves_parent),
		cmocka_unit_test(test_live_earlier_boot_locks_reset),
		cmocka_unit_test(test_live_three_pidns_kill_each),
	};

	setenv("SHG_DEBUG_POISON", "1", 1);
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
