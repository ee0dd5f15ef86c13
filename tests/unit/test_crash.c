/* SPDX-License-Identifier: MIT */
/*
 * Crash points (shm/crash.h): a process killed at any named step leaves
 * nothing that blocks or corrupts the others. Linked with the crash-point
 * libraries (-DSHG_CRASH_POINTS).
 *
 *  - test_crash_list_matches_sources: shg__crash_points[] names exactly the
 *    SHG_CRASH_POINT("...") uses in shm/ and lib/ (needs SHG_SRCDIR; skips
 *    with a message otherwise), each once, each "area.step".
 *  - test_crash_sweep: a coverage run first (no point armed) records which
 *    process role reaches which point. Then, for each point (make check: a
 *    seeded sample; SHG_LONG_TESTS=1: every point, several rounds), a
 *    fresh segment and a workload of 2 writers (map puts in txns of 4 and
 *    single updates), 1 reader, 1 "misc" process (pins held across
 *    commits, root create/update/remove, type registration, export and
 *    import, txn_import, a ring of large blocks); one of them is armed with
 *    SHG_CRASH_AT=point and must die of SIGKILL there (its hook sets a
 *    "reached" flag in shared memory first). The survivors keep working
 *    while this process runs shg_recover; then they stop and we check: no
 *    acknowledged commit lost, the last commit of each writer whole or
 *    absent, shg_check finds 0 problems, nobody hung (alarm), and a
 *    dry-run shg__sweep reports 0 leaked bytes (points of
 *    known_leak_points[] are reported instead). Points of recovery itself
 *    (recover.*, sweep.*, takeover.*) are armed in a recoverer: a writer
 *    is killed, a new process attaches (taking over the dead slot: the
 *    segment has exactly as many process slots as the workload) and runs
 *    shg_recover until it dies at the point; another process recovers.
 *  - test_crash_two_at_once: two writers armed at two commit/retire points
 *    die together; recovery, the same checks.
 *  - test_crash_stopped_reader: a reader process stopped (SIGSTOP) inside
 *    a read section: writers go on until the retire budget, then get
 *    SHG_EBUDGET, and shg_stalled_reader() names the stopped pid; after
 *    SIGCONT the writers go on and every acknowledged commit is there.
 *  - test_crash_stopped_lock_holder: a process stopped (SHG_STOP_AT) while
 *    holding root_lock: another process's shg_root_create gets SHG_ESTUCK
 *    after the live-owner cap (10 s) instead of hanging; after SIGCONT both
 *    creates complete.
 *
 * Environment: SHG_CRASH_SEED (sample and workload seed), SHG_CRASH_ONLY
 * (comma-separated list: run only these points), SHG_CRASH_ROUNDS (rounds
 * per point), SHG_LONG_TESTS=1 (all points, 3 rounds each),
 * SHG_CRASH_LIST=1 (print the points and exit).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

#include "graph_internal.h"

#ifndef SHG_CRASH_POINTS
#error "test_crash is built with -DSHG_CRASH_POINTS"
#endif

/*
 * Leaks the live recovery cannot free: their bytes are reported, not
 * failed (docs/SECURITY.md, known gaps). An entry here hides a leak:
 * remove it when recovery frees it.
 *  (none known: a reclaimer killed while freeing a block leaves it named
 *  in tslot.freeing and marked until the free, so its recoverer frees it
 *  exactly when the free did not happen)
 * A commit that dies between its root CAS and its retires (the commit
 * window) leaks nothing: its retires are staged before the CAS and
 * finished by whoever releases its slot (shm/epoch_stage.c); rounds
 * killed inside the window must leak 0 like any other.
 */
static const char *const known_leak_points[] = {
	NULL,
};
/* Whether a death anywhere inside the commit window may leak. */
static const bool commit_window_leaks = false;

/* Points this workload cannot reach: they need a failure it does not
 * cause. Reported, not failed. */
static const struct {
	const char *point;
	const char *needs;
} rare_points[] = {
	{ "hold.whole_pushed", "no memory for held batches" },
	{ "park.before_hold", "limbo_lock unusable during a hold" },
	{ "commit.retired_one",
	  "a commit that could not stage its retires (no memory for a batch)" },
	{ NULL, NULL },
};

/* Points that reveal a library bug, with what happens; reported, not
 * failed. Empty: none known. */
static const struct {
	const char *point;
	const char *what;
} known_bug_points[] = {
	{ NULL, NULL },
};

enum role { R_W0, R_W1, R_READER, R_MISC, R_RECOVER, NROLES };
static const char *const role_name[NROLES] = { "writer0", "writer1", "reader",
					       "misc", "recoverer" };
#define NWORKERS 4 /* R_W0 .. R_MISC */
#define NW 2 /* writers */
#define NKEYS 48 /* keys per writer */
#define MAXP 128

struct wstate {
	_Atomic uint64_t acked[NKEYS]; /* last acknowledged value, 0 none */
	_Atomic uint64_t pend_val; /* in flight (0: none) */
	_Atomic uint32_t pend_first, pend_n;
	_Atomic uint64_t commits;
};

struct shared {
	_Atomic uint32_t stop;
	_Atomic uint32_t armed_reached; /* 1 << role: armed point hit */
	_Atomic uint32_t armed_in_window; /* ... inside a commit window */
	_Atomic uint32_t ready[NROLES];
	_Atomic uint32_t idle_ready; /* idle participants attached */
	_Atomic uint64_t hits[NROLES][MAXP];
	struct wstate w[NW];
	_Atomic uint64_t errors;
	_Atomic int32_t last_err;
	_Atomic int32_t last_err_role;
	_Atomic uint64_t unknown_point; /* a hit of a name not in the list */
};

static struct shared *sh;
static unsigned npoints;

/* ---- the hook -------------------------------------------------------- */

static int my_role = -1;
static const char *my_armed; /* the point armed in this process */
static bool in_window; /* see on_hit */

/* Process-local pointer -> index cache (string literals of one call site
 * keep their address). Children are single-threaded. */
static struct {
	const char *p;
	int idx;
} cache[512];

static int point_index(const char *name)
{
	unsigned i;

	for (i = 0; i < npoints; i++)
		if (strcmp(shg__crash_points[i], name) == 0)
			return (int)i;
	return -1;
}

static int cached_index(const char *name)
{
	size_t h = ((uintptr_t)name >> 3) % 512, n;

	for (n = 0; n < 512; n++, h = (h + 1) % 512) {
		if (cache[h].p == name)
			return cache[h].idx;
		if (!cache[h].p) {
			cache[h].p = name;
			cache[h].idx = point_index(name);
			return cache[h].idx;
		}
	}
	return point_index(name);
}

static void on_hit(const char *name)
{
	int i;

	if (my_role < 0 || !sh)
		return;
	i = cached_index(name);
	if (i < 0)
		atomic_fetch_add(&sh->unknown_point, 1);
	else
		atomic_fetch_add_explicit(&sh->hits[my_role][i], 1,
					  memory_order_relaxed);
	/* The commit window: a published commit, its replaced nodes not yet
	 * all retired (lib/txn.c). */
	if (strcmp(name, "root.cas_after") == 0)
		in_window = true;
	else if (strcmp(name, "commit.after_retire") == 0 ||
		 strcmp(name, "commit.after_unpin") == 0)
		in_window = false;
	if (my_armed && strcmp(name, my_armed) == 0) {
		if (in_window)
			atomic_fetch_or(&sh->armed_in_window, 1u << my_role);
		atomic_fetch_or(&sh->armed_reached, 1u << my_role);
	}
}

/* In a fresh child: take role @r, arm @point (NULL: none). */
static void child_arm(int r, const char *point)
{
	static char nm[64];

	my_role = r;
	my_armed = NULL;
	if (point) { /* the name, without a ":n" */
		snprintf(nm, sizeof(nm), "%.*s", (int)strcspn(point, ":"),
			 point);
		my_armed = nm;
	}
	unsetenv("SHG_STOP_AT");
	if (point)
		setenv("SHG_CRASH_AT", point, 1);
	else
		unsetenv("SHG_CRASH_AT");
	shg__crash_reset();
	shg__crash_on_hit = on_hit;
}

static void note_err(int role, int err)
{
	atomic_fetch_add(&sh->errors, 1);
	atomic_store(&sh->last_err, err);
	atomic_store(&sh->last_err_role, role);
}

/* An error a loaded workload may see and retry past. */
static bool benign(int err)
{
	return err == SHG_ECONFLICT || err == SHG_EBUDGET || err == -EBUSY;
}

/* ---- workload -------------------------------------------------------- */

struct wl {
	const char *name; /* segment */
	const char *arm; /* point armed in this child, or NULL */
	int role;
	uint64_t seed;
};

struct put_arg {
	uint64_t first, n, val;
};

static int put_fn(struct shg_txn *txn, void *p)
{
	const struct put_arg *a = p;
	struct shg_val v = { .kind = SHG_KIND_U64, .u64 = a->val };
	uint64_t k;
	int err = 0;

	for (k = a->first; !err && k < a->first + a->n; k++)
		err = shg_txn_map_put_u64(txn, SHG_REF_ROOT, k, &v);
	return err;
}

static uint64_t wkey(int w, uint32_t i)
{
	return (uint64_t)w * 1000 + i;
}

static int writer_main(struct wl *a, struct shg_seg *seg)
{
	struct wstate *ws = &sh->w[a->role];
	struct shg_root *root;
	struct put_arg pa;
	uint64_t s = a->seed, i;
	uint32_t first, n, k;
	int err;

	err = shg_root_open(seg, "data", &root);
	if (err)
		return 10;
	atomic_store(&sh->ready[a->role], 1);
	for (i = 1; !atomic_load(&sh->stop); i++) {
		n = tu_rng_next(&s) % 3 == 0 ? 1 : 4;
		first = (uint32_t)(tu_rng_next(&s) % (NKEYS - n + 1));
		pa.first = wkey(a->role, first);
		pa.n = n;
		pa.val = ((uint64_t)(a->role + 1) << 40) | i;
		/* Recorded before the commit, cleared after the ack. */
		atomic_store(&ws->pend_first, first);
		atomic_store(&ws->pend_n, n);
		atomic_store(&ws->pend_val, pa.val);
		err = shg_update(root, put_fn, &pa, 0);
		if (err == 0) {
			for (k = first; k < first + n; k++)
				atomic_store(&ws->acked[k], pa.val);
			atomic_fetch_add(&ws->commits, 1);
		} else if (!benign(err)) {
			note_err(a->role, err);
		}
		atomic_store(&ws->pend_val, 0);
		if (err)
			usleep(1000);
	}
	shg_root_close(root);
	return 0;
}

static int reader_main(struct wl *a, struct shg_seg *seg)
{
	struct shg_root *root;
	struct shg_off node;
	struct shg_val v;
	uint64_t s = a->seed;
	int err;

	err = shg_root_open(seg, "data", &root);
	if (err)
		return 10;
	atomic_store(&sh->ready[a->role], 1);
	while (!atomic_load(&sh->stop)) {
		err = shg_read_lock(seg);
		if (err) {
			note_err(a->role, err);
			usleep(1000);
			continue;
		}
		err = shg_current_node(root, &node);
		if (!err && shg_map_count(seg, node) < 0)
			err = SHG_ECORRUPT;
		if (!err) {
			err = shg_map_get_u64(
				seg, node,
				wkey((int)(tu_rng_next(&s) % NW),
				     (uint32_t)(tu_rng_next(&s) % NKEYS)),
				&v);
			if (err == -ENOENT)
				err = 0;
		}
		shg_read_unlock(seg);
		if (err)
			note_err(a->role, err);
	}
	shg_root_close(root);
	return 0;
}

/* Export root "side" and import it as @as (replacing), then remove it. */
static int export_import(struct shg_seg *seg, const char *as)
{
	int fd = memfd_create("shg-crash", 0), err;

	if (fd < 0)
		return -errno;
	err = shg_export(seg, "side", fd);
	if (!err && lseek(fd, 0, SEEK_SET) != 0)
		err = -errno;
	if (!err)
		err = shg_import(seg, as, fd, SHG_IMPORT_REPLACE);
	close(fd);
	if (!err)
		err = shg_root_remove(seg, as);
	return err;
}

/* A root of our own: create, one commit with an imported copy of "side"'s
 * graph under key 1, remove. */
static int root_cycle(struct shg_seg *seg, struct shg_root *side,
		      const char *name)
{
	struct shg_val v = { .kind = SHG_KIND_NODE };
	struct shg_root *r;
	struct shg_txn *txn;
	struct shg_off node;
	int err;

	err = shg_root_create(seg, name, &r);
	if (err)
		return err;
	err = shg_txn_begin(r, &txn);
	if (!err) {
		err = shg_txn_map_new(txn, SHG_REF_ROOT, SHG_KIND_U64,
				      SHG_KIND_NODE);
		if (!err)
			err = shg_read_lock(seg);
		if (!err) {
			err = shg_current_node(side, &node);
			if (!err)
				err = shg_txn_import(txn, node, &v.node);
			shg_read_unlock(seg);
		}
		if (!err)
			err = shg_txn_map_put_u64(txn, SHG_REF_ROOT, 1, &v);
		if (!err)
			err = shg_txn_commit(txn);
		else
			(void)shg_txn_abort(txn);
	}
	shg_root_close(r);
	if (!err || benign(err))
		err = shg_root_remove(seg, name);
	return err;
}

static int misc_main(struct wl *a, struct shg_seg *seg)
{
	static const struct shg_field_def f[] = { { "x", SHG_KIND_U64 } };
	struct shg_pin *pin = NULL;
	struct shg_root *data, *side;
	char nm[48];
	uint64_t s = a->seed, i;
	enum { NRING = 16 };
	struct shg_off ring[NRING] = { { 0 } };
	uint32_t id;
	int err;

	if (shg_root_open(seg, "data", &data) ||
	    shg_root_open(seg, "side", &side))
		return 10;
	atomic_store(&sh->ready[a->role], 1);
	for (i = 0; !atomic_load(&sh->stop); i++) {
		/* A pin held across a few of the writers' commits. */
		if (pin && i % 3 == 0) {
			shg_unpin(pin);
			pin = NULL;
		}
		if (!pin) {
			err = shg_pin_current(data, &pin);
			if (err && err != -ENOENT)
				note_err(a->role, err);
		}
		snprintf(nm, sizeof(nm), "t%d-%u", (int)getpid(),
			 (unsigned)(i % 8));
		err = shg_type_register(seg, nm, f, 1, &id);
		if (err)
			note_err(a->role, err);
		snprintf(nm, sizeof(nm), "tmp%d", (int)getpid());
		err = root_cycle(seg, side, nm);
		if (err && !benign(err))
			note_err(a->role, err);
		snprintf(nm, sizeof(nm), "imp%d", (int)getpid());
		err = export_import(seg, nm);
		if (err && !benign(err))
			note_err(a->role, err);
		/* Large blocks: extent split and coalesce; a ring of them
		 * alive (about 2.7 MiB, more than a heap chunk) makes the
		 * heap grow early in a round. */
		err = 0;
		if (ring[i % NRING].v) /* every other one retired, not freed */
			err = i % 2 ? shg_retire(seg, ring[i % NRING]) :
				      shg_free(seg, ring[i % NRING]);
		ring[i % NRING].v = 0;
		if (!err)
			err = shg_alloc(seg,
					70000 + (tu_rng_next(&s) % 4) * 65536,
					&ring[i % NRING]);
		if (err)
			note_err(a->role, err);
		usleep(500);
	}
	if (pin)
		shg_unpin(pin);
	for (i = 0; i < NRING; i++)
		if (ring[i].v && shg_free(seg, ring[i]))
			return 11;
	shg_root_close(side);
	shg_root_close(data);
	return 0;
}

static int worker(void *p)
{
	struct wl *a = p;
	struct shg_seg *seg;
	int rc;

	child_arm(a->role, a->arm);
	if (shg_seg_open(a->name, NULL, &seg))
		return 9;
	if (a->role == R_W0 || a->role == R_W1)
		rc = writer_main(a, seg);
	else if (a->role == R_READER)
		rc = reader_main(a, seg);
	else
		rc = misc_main(a, seg);
	shg_seg_close(seg);
	return rc;
}

/* The donor's block sizes (see idle_main). */
enum { NSZ = 8 };
static const size_t sz[NSZ] = { 32, 48, 64, 96, 128, 192, 256, 384 };

/* Attached, outside any read section, idle until stopped or killed. It
 * releases no dead slot when it attaches (that is the recoverer's job). */
static int idle_main(void *p)
{
	struct shg_opts o = { .size = sizeof(o), .flags = SHG_OPEN_NO_RECOVER };
	struct shg_off b[NSZ][40];
	struct wl *a = p;
	struct shg_seg *seg;
	unsigned c, i;

	if (shg_seg_open(a->name, &o, &seg))
		return 9;
	if (a->seed) { /* the donor: spans of many classes, half used */
		for (c = 0; c < NSZ; c++) {
			for (i = 0; i < 40; i++)
				if (shg_alloc(seg, sz[c], &b[c][i]))
					return 10;
			for (i = 0; i < 40; i += 2)
				if (shg_free(seg, b[c][i]))
					return 10;
		}
	}
	atomic_fetch_add(&sh->idle_ready, 1);
	while (!atomic_load(&sh->stop))
		usleep(2000);
	/* Stopped, not killed: leave nothing behind. */
	for (c = 0; a->seed && c < NSZ; c++)
		for (i = 1; i < 40; i += 2)
			if (shg_free(seg, b[c][i]))
				return 10;
	shg_seg_close(seg);
	return 0;
}

/* The recoverer: attach (taking over a dead slot), recover, allocate. */
static int recoverer(void *p)
{
	struct wl *a = p;
	struct shg_recover_report rr;
	struct shg_seg *seg;
	struct shg_off o;
	unsigned i;
	int err;

	child_arm(R_RECOVER, a->arm);
	err = shg_seg_open(a->name, NULL, &seg);
	if (err)
		return 9;
	err = shg_recover(seg, &rr);
	/* A new allocator after the donor's death: each first block of a
	 * class adopts one of the spans recovery released. */
	for (i = 0; !err && i < NSZ; i++) {
		err = shg_alloc(seg, sz[i], &o);
		if (!err)
			err = shg_free(seg, o);
	}
	shg_seg_close(seg);
	return err ? 11 : 0;
}

/* ---- the parent's side --------------------------------------------- */

/* Where writer0 dies before a recoverer runs: a txn built, not published
 * (its nodes and version record are sweep candidates). */
#define W0_DEATH "commit.before_cas:20"

/* Workers by role; then the recoverer, NIDLE idle participants. */
#define NIDLE 3
#define IDLE0 (NROLES + 1)
static pid_t kids[IDLE0 + NIDLE];
static const char *alarm_what = "";

static void on_alarm(int sig)
{
	char msg[160];
	unsigned i;
	int n;

	(void)sig;
	n = snprintf(msg, sizeof(msg), "test_crash: HANG (timeout) at %s\n",
		     alarm_what);
	if (n > 0)
		(void)write(2, msg, (size_t)n);
	for (i = 0; i < IDLE0 + NIDLE; i++)
		if (kids[i] > 0)
			kill(kids[i], SIGKILL);
	_exit(2);
}

static void problem_print(void *arg, int code, const char *msg)
{
	(void)arg;
	print_message("  problem %s: %s\n", shg_strerror(code), msg);
}

static int init_fn(struct shg_txn *txn, void *p)
{
	(void)p;
	return shg_txn_map_new(txn, SHG_REF_ROOT, SHG_KIND_U64, SHG_KIND_U64);
}

static int side_fn(struct shg_txn *txn, void *p)
{
	struct shg_val v = { .kind = SHG_KIND_U64 };
	uint64_t k;
	int err;

	(void)p;
	err = shg_txn_map_new(txn, SHG_REF_ROOT, SHG_KIND_U64, SHG_KIND_U64);
	for (k = 0; !err && k < 20; k++) {
		v.u64 = k * 7;
		err = shg_txn_map_put_u64(txn, SHG_REF_ROOT, k, &v);
	}
	return err;
}

/* A fresh segment with exactly as many process slots as parent, workers
 * and the idle participants, roots "data" (empty map) and "side" (a small map). */
static struct shg_seg *setup(char *name)
{
	struct shg_opts o = { .size = sizeof(o) };
	struct shg_root *r;
	struct shg_seg *seg = NULL;

	memset(sh, 0, sizeof(*sh));
	o.capacity = 64u << 20;
	o.max_procs = 3 + NWORKERS; /* with the idle ones */
	tu_shm_name(name, 64, "crash");
	tu_ok(shg_seg_create(name, &o, &seg));
	tu_ok(shg_root_create(seg, "data", &r));
	tu_ok(shg_update(r, init_fn, NULL, 0));
	shg_root_close(r);
	tu_ok(shg_root_create(seg, "side", &r));
	tu_ok(shg_update(r, side_fn, NULL, 0));
	shg_root_close(r);
	return seg;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Wait for @pid up to @sec seconds; its tu_wait-style status, or -1 if
 * it is still running. */
static int wait_for(pid_t pid, double sec)
{
	double end = now_s() + sec;
	int st;
	pid_t r;

	for (;;) {
		r = waitpid(pid, &st, WNOHANG);
		if (r == pid)
			return WIFEXITED(st)   ? WEXITSTATUS(st) :
			       WIFSIGNALED(st) ? 128 + WTERMSIG(st) :
						 -1;
		if (now_s() > end)
			return -1;
		usleep(2000);
	}
}

static struct wl args[NROLES];

static void start_idle(const char *name, int i);

static void start_workers(const char *name, const char *arm, int armed_role,
			  uint64_t seed)
{
	int r;

	for (r = 0; r < NWORKERS; r++) {
		args[r] = (struct wl){ name, r == armed_role ? arm : NULL, r,
				       seed * 31 + (uint64_t)r + 1 };
		kids[r] = tu_fork(worker, &args[r]);
	}
	/* Every worker attached before anything is armed elsewhere. */
	for (r = 0; r < NWORKERS; r++)
		while (!atomic_load(&sh->ready[r]) && wait_for(kids[r], 0) < 0)
			usleep(1000);
	start_idle(name, 0);
	start_idle(name, 1);
}

/* Idle participant @i (0; 1: the donor, whose blocks are left to recovery
 * when it dies; 2: a filler, see kill_idle). */
static void start_idle(const char *name, int i)
{
	uint32_t n = atomic_load(&sh->idle_ready);

	static struct wl ia[NIDLE];

	ia[i] = (struct wl){ name, NULL, R_RECOVER, i == 1 };
	kids[IDLE0 + i] = tu_fork(idle_main, &ia[i]);
	while (atomic_load(&sh->idle_ready) == n &&
	       wait_for(kids[IDLE0 + i], 0) < 0)
		usleep(1000);
}

/*
 * Kill the two idle participants: dead process slots that block nobody.
 * A recoverer that attaches then finds every slot taken and takes one
 * over (shg_seg_open), and releases the other (release_proc). Survivors
 * may have released a dead slot meanwhile (a dead writer's): a filler
 * takes the free slot first.
 */
static void kill_idle(struct shg_seg *seg, const char *name)
{
	uint32_t p, free_slots = 0;

	for (p = 0; p < seg->max_procs; p++)
		free_slots += atomic_load(&seg->procs[p].token) == 0;
	if (free_slots)
		start_idle(name, 2);
	kill(kids[IDLE0], SIGKILL);
	kill(kids[IDLE0 + 1], SIGKILL);
	(void)tu_wait(kids[IDLE0]);
	(void)tu_wait(kids[IDLE0 + 1]);
	kids[IDLE0] = kids[IDLE0 + 1] = 0;
}

/* Stop the workers still running; -1 if one hung, else how many exited
 * with a non-zero code. */
static int stop_workers(void)
{
	int r, st, bad = 0;

	atomic_store(&sh->stop, 1);
	for (r = 0; r < NWORKERS; r++) {
		if (kids[r] <= 0)
			continue;
		st = wait_for(kids[r], 20);
		if (st < 0) {
			print_message("  %s (pid %d) did not stop: hang\n",
				      role_name[r], (int)kids[r]);
			kill(kids[r], SIGKILL);
			(void)tu_wait(kids[r]);
			bad = -1;
		} else if (st != 0 && bad >= 0) {
			print_message("  %s exited with %d\n", role_name[r],
				      st);
			bad++;
		}
		kids[r] = 0;
	}
	for (r = IDLE0; r < IDLE0 + NIDLE; r++) { /* idle participants */
		if (kids[r] <= 0)
			continue;
		if (wait_for(kids[r], 20) != 0)
			bad = -1;
		kill(kids[r], SIGKILL);
		(void)waitpid(kids[r], NULL, WNOHANG);
		kids[r] = 0;
	}
	return bad;
}

/* Every acknowledged value present; each writer's last commit whole or
 * absent. Quiescent segment. Return the number of violations. */
static int verify_data(struct shg_seg *seg)
{
	struct shg_root *root;
	struct shg_off node;
	struct shg_val v;
	int w, bad = 0, err;
	uint32_t k;

	tu_ok(shg_root_open(seg, "data", &root));
	tu_ok(shg_read_lock(seg));
	tu_ok(shg_current_node(root, &node));
	for (w = 0; w < NW; w++) {
		struct wstate *ws = &sh->w[w];
		uint64_t pv = atomic_load(&ws->pend_val);
		uint32_t pf = atomic_load(&ws->pend_first),
			 pn = atomic_load(&ws->pend_n), seen_new = 0;

		for (k = 0; k < NKEYS; k++) {
			uint64_t want = atomic_load(&ws->acked[k]), got = 0;
			bool pending = pv && k >= pf && k < pf + pn;

			err = shg_map_get_u64(seg, node, wkey(w, k), &v);
			if (err == 0)
				got = v.u64;
			else if (err != -ENOENT)
				bad++;
			if (pending && got == pv) {
				seen_new++;
				continue;
			}
			if (got != want) {
				print_message("  writer%d key %u: %llx, "
					      "acknowledged %llx\n",
					      w, k, (unsigned long long)got,
					      (unsigned long long)want);
				bad++;
			}
		}
		if (pv && seen_new != 0 && seen_new != pn) {
			print_message("  writer%d: last commit torn (%u of "
				      "%u keys)\n",
				      w, seen_new, pn);
			bad++;
		}
	}
	shg_read_unlock(seg);
	shg_root_close(root);
	return bad;
}

static bool in_table(const char *const *t, const char *p)
{
	for (; *t; t++)
		if (strcmp(*t, p) == 0)
			return true;
	return false;
}

static const char *rare_of(const char *p)
{
	size_t i;

	for (i = 0; rare_points[i].point; i++)
		if (strcmp(rare_points[i].point, p) == 0)
			return rare_points[i].needs;
	return NULL;
}

static const char *bug_of(const char *p)
{
	size_t i;

	for (i = 0; known_bug_points[i].point; i++)
		if (strcmp(known_bug_points[i].point, p) == 0)
			return known_bug_points[i].what;
	return NULL;
}

struct outcome {
	bool reached; /* the armed process died of SIGKILL at the point */
	bool in_window; /* ... inside a commit window */
	int64_t leaked; /* dry-run sweep, quiescent */
	int problems; /* shg_check + data + errors + hangs */
};

/* After a crash: recover while the survivors work, stop them, check. */
static void finish_round(struct shg_seg *seg, const char *what,
			 struct outcome *out)
{
	struct shg_recover_report rr;
	struct shg_check_report rep;
	int stopped, n;

	alarm_what = what;
	alarm(60);
	usleep(20000); /* the survivors keep working meanwhile */
	tu_ok(shg_recover(seg, &rr));
	usleep(20000);
	stopped = stop_workers();
	if (stopped)
		out->problems++;
	/* Quiescent: what the dead left and the workers' exits. */
	tu_ok(shg_recover(seg, &rr));
	n = shg_check(seg, problem_print, NULL, &rep);
	if (n)
		out->problems += n;
	n = verify_data(seg);
	out->problems += n;
	if (atomic_load(&sh->errors)) {
		print_message("  %llu workload errors, last %s (%s)\n",
			      (unsigned long long)atomic_load(&sh->errors),
			      shg_strerror(atomic_load(&sh->last_err)),
			      role_name[atomic_load(&sh->last_err_role)]);
		out->problems++;
	}
	out->leaked = shg__sweep(seg, NULL, NULL, true);
	alarm(0);
}

/* One round: arm @point in @role; see the file comment. */
static void run_point(const char *point, int role, uint64_t seed,
		      struct outcome *out)
{
	struct shg_seg *seg;
	char name[64];
	struct wl ra;
	int st;

	memset(out, 0, sizeof(*out));
	seg = setup(name);
	alarm_what = point;
	alarm(60);
	if (role < NWORKERS) {
		start_workers(name, point, role, seed);
		st = wait_for(kids[role], 1.5);
		if (st < 0) {
			/* Some steps need a dead peer first (adopting its
			 * spans): kill the donor, recover. */
			kill(kids[IDLE0 + 1], SIGKILL);
			(void)tu_wait(kids[IDLE0 + 1]);
			kids[IDLE0 + 1] = 0;
			tu_ok(shg_recover(seg, NULL));
			st = wait_for(kids[role], 5);
		}
		if (st < 0) { /* not reached in time: stop it, no crash */
			atomic_store(&sh->stop, 1);
			st = wait_for(kids[role], 20);
		}
		kids[role] = 0;
	} else {
		/* Something for recovery to do: a writer dead with a txn
		 * built but not published (sweep candidates), a reader
		 * dead too (two dead slots: one is taken over by the
		 * recoverer, the other released). */
		start_workers(name, W0_DEATH, R_W0, seed);
		assert_int_equal(wait_for(kids[R_W0], 20), 128 + SIGKILL);
		kids[R_W0] = 0;
		atomic_store(&sh->armed_reached, 0);
		kill_idle(seg, name);
		ra = (struct wl){ name, point, R_RECOVER, seed };
		kids[NROLES] = tu_fork(recoverer, &ra);
		st = wait_for(kids[NROLES], 20);
		if (st < 0) {
			kill(kids[NROLES], SIGKILL);
			(void)tu_wait(kids[NROLES]);
			print_message("  recoverer hung at %s\n", point);
			out->problems++;
		}
		kids[NROLES] = 0;
	}
	out->reached = st == 128 + SIGKILL && atomic_load(&sh->armed_reached);
	out->in_window = out->reached && atomic_load(&sh->armed_in_window);
	if (st == 128 + SIGKILL && !atomic_load(&sh->armed_reached)) {
		print_message("  %s: died of SIGKILL before the point\n",
			      point);
		out->problems++;
	}
	finish_round(seg, point, out);
	tu_destroy(seg, name);
}

/* Coverage: who reaches what, with nothing armed. */
static void coverage(uint64_t seed, uint64_t hits[NROLES][MAXP])
{
	struct outcome o = { 0 };
	struct shg_seg *seg;
	char name[64];
	struct wl ra;

	seg = setup(name);
	alarm_what = "coverage run";
	alarm(60);
	start_workers(name, W0_DEATH, R_W0, seed);
	assert_int_equal(wait_for(kids[R_W0], 20), 128 + SIGKILL);
	kids[R_W0] = 0;
	kill_idle(seg, name);
	ra = (struct wl){ name, NULL, R_RECOVER, seed };
	kids[NROLES] = tu_fork(recoverer, &ra);
	assert_int_equal(wait_for(kids[NROLES], 30), 0);
	kids[NROLES] = 0;
	usleep(200000); /* the survivors adopt what the dead left */
	finish_round(seg, "coverage run", &o);
	assert_int_equal(o.problems, 0);
	assert_int_equal(atomic_load(&sh->unknown_point), 0);
	memcpy(hits, (const void *)sh->hits, sizeof(sh->hits));
	tu_destroy(seg, name);
}

static bool recovery_point(const char *p)
{
	return !strncmp(p, "recover.", 8) || !strncmp(p, "sweep.", 6) ||
	       !strncmp(p, "takeover.", 9) || !strcmp(p, "span.swept_aside") ||
	       !strcmp(p, "alloc.adopted") || !strcmp(p, "span.adopt_owned");
}

/* The role armed for point @i in round @round: a recoverer for recovery
 * points, else the workers that reached it in the coverage run, in turn.
 * -1: nobody reached it. */
static int pick_role(uint64_t hits[NROLES][MAXP], unsigned i, unsigned round)
{
	int cand[NROLES], n = 0, r;

	if (recovery_point(shg__crash_points[i]))
		return R_RECOVER;
	for (r = 0; r < NWORKERS; r++) /* by hits, most first */
		if (hits[r][i]) {
			int k = n++;

			for (; k > 0 && hits[cand[k - 1]][i] < hits[r][i]; k--)
				cand[k] = cand[k - 1];
			cand[k] = r;
		}
	if (!n && hits[R_RECOVER][i])
		return R_RECOVER;
	if (!n) /* missed by the coverage run: a writer, then misc */
		return rare_of(shg__crash_points[i]) ? -1 :
		       round % 2		     ? R_MISC :
						       R_W1;
	return cand[round % (unsigned)n];
}

static uint64_t seed_get(void)
{
	const char *e = getenv("SHG_CRASH_SEED");

	if (e && *e)
		return strtoull(e, NULL, 0);
	return (uint64_t)time(NULL);
}

static bool selected(const char *p)
{
	const char *e = getenv("SHG_CRASH_ONLY"), *q;
	size_t n = strlen(p);

	if (!e || !*e)
		return true;
	for (q = e; (q = strstr(q, p)); q += n)
		if ((q == e || q[-1] == ',') && (q[n] == 0 || q[n] == ','))
			return true;
	return false;
}

static void test_crash_sweep(void **state)
{
	static uint64_t hits[NROLES][MAXP];
	unsigned order[MAXP], i, j, sample, rounds, round, ran = 0, nrounds = 0,
							   unreached = 0;
	uint64_t seed = seed_get(), s, t;
	int64_t known_leaked = 0;
	bool longt = tu_long_tests();
	int fails = 0;

	(void)state;
	print_message("  %u crash points, seed %llu%s\n", npoints,
		      (unsigned long long)seed, longt ? " (long)" : "");
	coverage(seed, hits);
	for (i = 0; i < npoints; i++)
		order[i] = i;
	/* The sample: a seeded shuffle; make check runs its first part. */
	s = seed;
	for (i = npoints - 1; i > 0; i--) {
		j = (unsigned)(tu_rng_next(&s) % (i + 1));
		t = order[i];
		order[i] = order[j];
		order[j] = (unsigned)t;
	}
	sample = longt ? npoints : 16;
	rounds = longt ? 3 : 1;
	if (getenv("SHG_CRASH_ROUNDS"))
		rounds = (unsigned)atoi(getenv("SHG_CRASH_ROUNDS"));
	for (i = 0; i < npoints; i++) {
		for (j = 0; j < NROLES && !hits[j][i]; j++)
			;
		if (j == NROLES)
			print_message("  coverage: %s not reached\n",
				      shg__crash_points[i]);
	}
	if (getenv("SHG_CRASH_ONLY") && *getenv("SHG_CRASH_ONLY"))
		sample = npoints;
	for (j = 0; j < npoints && ran < sample; j++) {
		const char *p = shg__crash_points[order[j]];
		unsigned reached = 0, probs = 0, win = 0;
		int64_t leaked = 0, known = 0, bad = 0;
		const char *rare = rare_of(p);
		int role = -1;

		if (!selected(p) ||
		    (rare && !longt && !getenv("SHG_CRASH_ONLY")))
			continue;
		ran++;
		/* Up to 16 more rounds while the point was never reached (a
		 * step the workload reaches only sometimes: the recoverer
		 * meets the dead writer's stage in about a quarter of the
		 * rounds, when no survivor released its slot first). */
		for (round = 0;
		     round < rounds || (!reached && round < rounds + 16);
		     round++) {
			struct outcome o;

			role = pick_role(hits, order[j], round);
			if (role < 0)
				break;
			run_point(p, role, seed + j * 7 + round, &o);
			nrounds++;
			reached += o.reached;
			win += o.in_window;
			probs += (unsigned)o.problems;
			if (o.leaked < 0) {
				probs++;
				continue;
			}
			leaked += o.leaked;
			if (in_table(known_leak_points, p) ||
			    (commit_window_leaks && o.in_window))
				known += o.leaked;
			else
				bad += o.leaked;
		}
		print_message("  point %-28s %-9s rounds %u reached %u "
			      "in-window %u leaked %lld%s problems %u%s%s%s\n",
			      p, role < 0 ? "-" : role_name[role],
			      role < 0 ? 0 : round, reached, win,
			      (long long)leaked, known ? " (known)" : "", probs,
			      role < 0 ? " (not reached; needs: " : "",
			      role < 0 ? (rare ? rare : "?") : "",
			      role < 0 ? ")" : "");
		if ((role < 0 || !reached) && !rare)
			unreached++;
		if (probs && bug_of(p)) {
			print_message("    known bug: %s\n", bug_of(p));
		} else if (probs) {
			fails++;
		}
		known_leaked += known;
		if (bad)
			fails++;
	}
	print_message("  %u points, %u rounds, %u never reached, %lld bytes "
		      "of known leaks, %d failed\n",
		      ran, nrounds, unreached, (long long)known_leaked, fails);
	assert_int_equal(fails, 0);
	/* Every point of the sample killed a process at least once. */
	assert_int_equal(unreached, 0);
}

/* Child: remove root "big" armed to die at its @arg-th dropped node. */
static int drop_child(void *arg)
{
	const char *name = arg;
	struct shg_seg *seg;

	setenv("SHG_CRASH_AT", "drop.staged_one:40", 1);
	if (shg_seg_open(name, NULL, &seg))
		return 10;
	return shg_root_remove(seg, "big") ? 11 : 12; /* 12: not killed */
}

static int put_many(struct shg_txn *txn, void *arg)
{
	struct shg_val v = { .kind = SHG_KIND_U64 };
	int err = 0;
	uint64_t i;

	(void)arg;
	if (shg_off_is_null(shg_txn_root_node(txn)))
		err = shg_txn_map_new(txn, SHG_REF_ROOT, SHG_KIND_U64,
				      SHG_KIND_U64);
	for (i = 0; !err && i < 5000; i++) {
		v.u64 = i;
		err = shg_txn_map_put_u64(txn, SHG_REF_ROOT, i * 7919, &v);
	}
	return err;
}

/*
 * A process killed half-way through dropping a removed root's graph that
 * a live process wrote (so the live leak sweep may not free its nodes):
 * the drop is staged, and whoever releases the dead process drops the
 * graph again from the start. 0 bytes leaked, nothing freed twice.
 */
static void test_crash_drop_of_live_graph(void **state)
{
	struct shg_recover_report rep;
	struct shg_root *big;
	struct shg_seg *seg;
	int64_t left;
	char name[64];

	(void)state;
	seg = tu_create(name, 64u << 20);
	tu_ok(shg_root_create(seg, "big", &big));
	tu_ok(shg_update(big, put_many, NULL, 0));
	tu_ok(shg_root_close(big)); /* the child's remove finalizes it */
	assert_int_equal(tu_wait(tu_fork(drop_child, name)), 128 + SIGKILL);
	tu_ok(shg_recover(seg, &rep));
	tu_ok(shg_synchronize(seg, 0));
	shg_reclaim(seg);
	assert_int_equal(shg_check(seg, NULL, NULL, NULL), 0);
	left = shg__sweep(seg, NULL, NULL, true);
	print_message("  drop killed at its 40th node: recover released %u "
		      "thread(s); %lld bytes left for a quiescent sweep\n",
		      rep.threads_released, (long long)left);
	assert_int_equal(left, 0);
	tu_destroy(seg, name);
}

#define ADOPT_BLOCKS 100
#define ADOPT_SIZE 320

struct adopt_arg {
	const char *name;
	uint64_t *offs; /* shared with the parent */
};

/* Child: allocate ADOPT_BLOCKS blocks, hand their offsets over, exit. */
static int adopt_donor(void *arg)
{
	const struct adopt_arg *a = arg;
	struct shg_seg *seg;
	struct shg_off o;
	unsigned i;

	if (shg_seg_open(a->name, NULL, &seg))
		return 10;
	for (i = 0; i < ADOPT_BLOCKS; i++) {
		if (shg_alloc(seg, ADOPT_SIZE, &o))
			return 11;
		a->offs[i] = o.v;
	}
	return shg_seg_close(seg) ? 12 : 0;
}

/* Child: adopt the donor's span, armed to die once it took the span's
 * remote stack and before it spliced it. */
static int adopt_victim(void *arg)
{
	const struct adopt_arg *a = arg;
	struct shg_seg *seg;
	struct shg_off o;

	setenv("SHG_CRASH_AT", "alloc.remote_taken:1", 1);
	if (shg_seg_open(a->name, NULL, &seg))
		return 10;
	return shg_alloc(seg, ADOPT_SIZE, &o) ? 11 : 12; /* 12: not killed */
}

/*
 * A process killed while adopting an abandoned span, after it took the
 * span's stack of remote frees and before it spliced it onto the span's
 * free list: those blocks are on neither list. Recovery must set the span
 * aside for the live leak sweep (its blocks were all allocated by dead
 * processes, though the span's token is still its previous owner's), so
 * that the sweep frees them: 0 bytes left for a quiescent sweep.
 */
static void test_crash_adopter_dies_holding_remote_frees(void **state)
{
	struct shg_recover_report rep;
	struct adopt_arg a;
	struct shg_seg *seg;
	int64_t left;
	char name[64];
	unsigned i;

	(void)state;
	a.offs = mmap(NULL, ADOPT_BLOCKS * sizeof(uint64_t),
		      PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1,
		      0);
	assert_true(a.offs != MAP_FAILED);
	seg = tu_create(name, 16u << 20);
	a.name = name;
	assert_int_equal(tu_wait(tu_fork(adopt_donor, &a)), 0);
	for (i = 0; i < ADOPT_BLOCKS; i++) /* remote frees: not the owner */
		tu_ok(shg_free(seg, (struct shg_off){ a.offs[i] }));
	assert_int_equal(tu_wait(tu_fork(adopt_victim, &a)), 128 + SIGKILL);
	tu_ok(shg_recover(seg, &rep));
	assert_int_equal(rep.sweep_err, 0);
	left = shg__sweep(seg, NULL, NULL, true);
	print_message("  adopter killed holding %u remote frees: recover "
		      "freed %llu bytes; %lld bytes left for a quiescent "
		      "sweep\n",
		      ADOPT_BLOCKS, (unsigned long long)rep.leaked_freed,
		      (long long)left);
	assert_int_equal(left, 0);
	assert_true(rep.leaked_freed >= ADOPT_BLOCKS * ADOPT_SIZE);
	assert_int_equal(shg_check(seg, NULL, NULL, NULL), 0);
	tu_destroy(seg, name);
	munmap(a.offs, ADOPT_BLOCKS * sizeof(uint64_t));
}

/* Child: remove root "gone", armed to die once its drop is staged and
 * before the value leaves the root slot (finalize holds root_lock). */
static int finalize_child(void *arg)
{
	const char *name = arg;
	struct shg_seg *seg;

	setenv("SHG_CRASH_AT", "stage.begun:1", 1);
	if (shg_seg_open(name, NULL, &seg))
		return 10;
	return shg_root_remove(seg, "gone") ? 11 : 12; /* 12: not killed */
}

/*
 * A process killed in finalize after staging the drop of a removed root's
 * value and before taking the value out of the slot. The slot keeps the
 * value; whoever next takes root_lock finalizes the slot again and drops
 * the graph. Releasing the dead process later must not drop it a second
 * time (that retired every node twice: blocks freed twice, retire entries
 * naming free blocks).
 */
static void test_crash_finalize_dies_before_taking_the_value(void **state)
{
	struct shg_recover_report rep;
	struct shg_root *r;
	struct shg_seg *seg;
	int64_t left;
	char name[64];
	int n;

	(void)state;
	seg = tu_create(name, 64u << 20);
	tu_ok(shg_root_create(seg, "gone", &r));
	tu_ok(shg_update(r, put_many, NULL, 0));
	tu_ok(shg_root_close(r));
	assert_int_equal(tu_wait(tu_fork(finalize_child, name)), 128 + SIGKILL);
	/* Takes root_lock over from the dead process: finalizes "gone". */
	tu_ok(shg_root_create(seg, "next", &r));
	tu_ok(shg_root_close(r));
	tu_ok(shg_recover(seg, &rep));
	tu_ok(shg_synchronize(seg, 0));
	shg_reclaim(seg);
	tu_ok(shg_synchronize(seg, 0));
	shg_reclaim(seg);
	n = shg_check(seg, problem_print, NULL, NULL);
	left = shg__sweep(seg, NULL, NULL, true);
	print_message("  finalize killed before taking the value: %d "
		      "problem(s), %lld bytes left for a quiescent sweep\n",
		      n, (long long)left);
	assert_int_equal(n, 0);
	assert_int_equal(left, 0);
	tu_destroy(seg, name);
}

/* Two writers killed at once, each at its own point. */
static void test_crash_two_at_once(void **state)
{
	static const char *const pairs[][2] = {
		{ "commit.before_cas", "stage.entry_written" },
		{ "commit.after_unpin", "reclaim.mid_free" },
		{ "stage.count_published", "reclaim.pop_recorded" },
	};
	uint64_t seed = seed_get();
	unsigned i;

	(void)state;
	for (i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
		struct outcome o = { 0 };
		struct shg_seg *seg;
		char name[64];
		int st0, st1, r;
		uint32_t reached, win[2];

		seg = setup(name);
		alarm_what = pairs[i][0];
		alarm(60);
		for (r = 0; r < NWORKERS; r++) {
			args[r] = (struct wl){ name,
					       r < NW ? pairs[i][r] : NULL, r,
					       seed + (uint64_t)r };
			kids[r] = tu_fork(worker, &args[r]);
		}
		st0 = wait_for(kids[R_W0], 10);
		st1 = wait_for(kids[R_W1], 10);
		kids[R_W0] = kids[R_W1] = 0;
		reached = atomic_load(&sh->armed_reached);
		win[0] = atomic_load(&sh->armed_in_window) & 1;
		win[1] = atomic_load(&sh->armed_in_window) & 2;
		finish_round(seg, pairs[i][0], &o);
		print_message("  %s + %s: status %d, %d; leaked %lld, "
			      "problems %d\n",
			      pairs[i][0], pairs[i][1], st0, st1,
			      (long long)o.leaked, o.problems);
		assert_int_equal(st0, 128 + SIGKILL);
		assert_int_equal(st1, 128 + SIGKILL);
		assert_int_equal(reached, 3); /* both died at their points */
		assert_int_equal(o.problems, 0);
		/* A writer killed inside its commit window leaks (see
		 * known_leak_points): only those pairs may leak. */
		if (!(commit_window_leaks && (win[0] || win[1])) &&
		    !in_table(known_leak_points, pairs[i][0]) &&
		    !in_table(known_leak_points, pairs[i][1]))
			assert_int_equal(o.leaked, 0);
		tu_destroy(seg, name);
	}
}

/* ---- stopped participants ------------------------------------------ */

struct stop_arg {
	const char *name;
};

static int stopped_reader(void *p)
{
	struct stop_arg *a = p;
	struct shg_seg *seg;

	if (shg_seg_open(a->name, NULL, &seg) || shg_read_lock(seg))
		return 9;
	atomic_store(&sh->ready[R_READER], 1);
	while (!atomic_load(&sh->stop))
		usleep(1000);
	shg_read_unlock(seg);
	shg_seg_close(seg);
	return 0;
}

static int blob_map_fn(struct shg_txn *txn, void *p)
{
	(void)p;
	return shg_txn_map_new(txn, SHG_REF_ROOT, SHG_KIND_BYTES,
			       SHG_KIND_BYTES);
}

/* Put a 16 KiB value (bytes all *@p) under "k": each commit retires the
 * previous one. */
static int blob_fn(struct shg_txn *txn, void *p)
{
	static char blob[16384];
	struct shg_val v = { .kind = SHG_KIND_BYTES };
	const uint64_t *k = p;

	memset(blob, (int)(*k & 0xff), sizeof(blob));
	v.bytes.p = blob;
	v.bytes.len = sizeof(blob);
	return shg_txn_map_put_bytes(txn, SHG_REF_ROOT, "k", 1, &v);
}

static uint8_t blob_now(struct shg_seg *seg, struct shg_root *root)
{
	struct shg_off node;
	struct shg_val v;
	uint8_t b;

	tu_ok(shg_read_lock(seg));
	tu_ok(shg_current_node(root, &node));
	tu_ok(shg_map_get_bytes(seg, node, "k", 1, &v));
	assert_int_equal(v.bytes.len, 16384);
	b = ((const uint8_t *)v.bytes.p)[16383];
	shg_read_unlock(seg);
	return b;
}

static void test_crash_stopped_reader(void **state)
{
	struct shg_opts o = { .size = sizeof(o) };
	struct shg_recover_report rr;
	struct shg_root *root;
	struct shg_seg *seg;
	struct stop_arg a;
	uint64_t i, acked = 0, bytes = 0;
	char name[64];
	pid_t pid, who = 0;
	int st, err = 0, tries;

	(void)state;
	memset(sh, 0, sizeof(*sh));
	o.capacity = 64u << 20;
	o.retire_budget = 256u << 10;
	tu_shm_name(name, sizeof(name), "stall");
	tu_ok(shg_seg_create(name, &o, &seg));
	tu_ok(shg_root_create(seg, "data", &root));
	tu_ok(shg_update(root, blob_map_fn, NULL, 0));
	a.name = name;
	pid = tu_fork(stopped_reader, &a);
	while (!atomic_load(&sh->ready[R_READER]))
		usleep(1000);
	kill(pid, SIGSTOP);
	assert_int_equal(waitpid(pid, &st, WUNTRACED), pid);
	assert_true(WIFSTOPPED(st));
	alarm_what = "stopped reader";
	alarm(60);
	for (i = 1; i <= 400; i++) {
		err = shg_update(root, blob_fn, &i, 0);
		if (err)
			break;
		acked = i;
	}
	print_message("  reader stopped in its section: %llu commits, then "
		      "%s\n",
		      (unsigned long long)acked, shg_strerror(err));
	assert_int_equal(err, SHG_EBUDGET);
	assert_true(acked > 4); /* the budget let some commits through */
	assert_true(shg_stalled_reader(seg, &who, &bytes));
	assert_int_equal(who, pid);
	assert_true(bytes > 0);
	assert_int_equal(blob_now(seg, root), (uint8_t)acked);
	/* Resume: the reader leaves its section, writers go on. */
	atomic_store(&sh->stop, 1);
	kill(pid, SIGCONT);
	assert_int_equal(tu_wait(pid), 0);
	for (tries = 0; tries < 100; tries++) {
		i = acked + 1;
		err = shg_update(root, blob_fn, &i, 0);
		if (err != SHG_EBUDGET)
			break;
		usleep(10000);
	}
	tu_ok(err);
	acked = i;
	for (i = acked + 1; i < acked + 50; i++)
		tu_ok(shg_update(root, blob_fn, &i, 0));
	acked = i - 1;
	assert_int_equal(blob_now(seg, root), (uint8_t)acked);
	assert_false(shg_stalled_reader(seg, &who, &bytes));
	tu_ok(shg_recover(seg, &rr));
	TU_CHECK_SOUND(seg);
	assert_int_equal(shg__sweep(seg, NULL, NULL, true), 0);
	alarm(0);
	shg_root_close(root);
	tu_destroy(seg, name);
}

/* A process stopped inside root_lock: SHG_ESTUCK, no hang. */
static int stop_in_lock(void *p)
{
	struct stop_arg *a = p;
	struct shg_root *r;
	struct shg_seg *seg;

	if (shg_seg_open(a->name, NULL, &seg))
		return 9;
	unsetenv("SHG_CRASH_AT");
	setenv("SHG_STOP_AT", "root.create_filled", 1);
	shg__crash_reset();
	if (shg_root_create(seg, "x", &r))
		return 10;
	shg_root_close(r);
	shg_seg_close(seg);
	return 0;
}

static void test_crash_stopped_lock_holder(void **state)
{
	struct stop_arg a;
	struct shg_root *r;
	struct shg_seg *seg;
	char name[64];
	double t0, dt;
	pid_t pid;
	int st, err;

	(void)state;
	seg = tu_create(name, 0);
	a.name = name;
	pid = tu_fork(stop_in_lock, &a);
	assert_int_equal(waitpid(pid, &st, WUNTRACED), pid);
	assert_true(WIFSTOPPED(st));
	alarm_what = "stopped lock holder";
	alarm(60);
	t0 = now_s();
	err = shg_root_create(seg, "y", &r);
	dt = now_s() - t0;
	print_message("  root_create with root_lock held by a stopped "
		      "process: %s after %.1f s\n",
		      shg_strerror(err), dt);
	assert_int_equal(err, SHG_ESTUCK);
	assert_true(dt >= 5.0);
	kill(pid, SIGCONT);
	assert_int_equal(tu_wait(pid), 0);
	tu_ok(shg_root_create(seg, "y", &r));
	shg_root_close(r);
	tu_ok(shg_root_open(seg, "x", &r));
	shg_root_close(r);
	TU_CHECK_SOUND(seg);
	alarm(0);
	tu_destroy(seg, name);
}

/* ---- the list --------------------------------------------------------- */

static void test_crash_list_matches_sources(void **state)
{
	static const char *const dirs[] = { "shm", "lib" };
	const char *src = getenv("SHG_SRCDIR");
	char cmd[512], line[256];
	unsigned i, j, found = 0;
	FILE *f;

	(void)state;
	for (i = 0; i < npoints; i++) {
		const char *p = shg__crash_points[i], *dot = strchr(p, '.');

		assert_non_null(dot);
		assert_true(dot > p && dot[1]);
		for (j = 0; j < i; j++)
			assert_string_not_equal(p, shg__crash_points[j]);
	}
	if (!src || !*src) {
		print_message("  skipped: SHG_SRCDIR not set (run by make "
			      "check)\n");
		skip();
	}
	for (i = 0; i < 2; i++) {
		snprintf(cmd, sizeof(cmd),
			 "grep -ho 'SHG_CRASH_POINT(\"[^\"]*\")' %s/%s/*.c",
			 src, dirs[i]);
		f = popen(cmd, "r");
		assert_non_null(f);
		while (fgets(line, sizeof(line), f)) {
			char *b = strchr(line, '"'), *e;

			assert_non_null(b);
			e = strchr(b + 1, '"');
			assert_non_null(e);
			*e = 0;
			if (point_index(b + 1) < 0)
				fail_msg("%s is not in shg__crash_points[]",
					 b + 1);
			found++;
		}
		pclose(f);
	}
	/* Each listed name used once: as many uses as names. */
	print_message("  %u points in the list, %u uses in the sources\n",
		      npoints, found);
	assert_int_equal(found, npoints);
	assert_true(npoints >= 40);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crash_list_matches_sources),
		cmocka_unit_test(test_crash_sweep),
		cmocka_unit_test(test_crash_two_at_once),
		cmocka_unit_test(test_crash_drop_of_live_graph),
		cmocka_unit_test(test_crash_adopter_dies_holding_remote_frees),
		cmocka_unit_test(
			test_crash_finalize_dies_before_taking_the_value),
		cmocka_unit_test(test_crash_stopped_reader),
		cmocka_unit_test(test_crash_stopped_lock_holder),
	};
	const char *e = getenv("SHG_CRASH_LIST");

	while (shg__crash_points[npoints])
		npoints++;
	assert_true(npoints <= MAXP);
	if (e && *e && strcmp(e, "0") != 0) {
		unsigned i;

		for (i = 0; i < npoints; i++)
			printf("%s\n", shg__crash_points[i]);
		return 0;
	}
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		return 1;
	signal(SIGALRM, on_alarm);
	unsetenv("SHG_CRASH_AT");
	unsetenv("SHG_STOP_AT");
	return cmocka_run_group_tests(tests, NULL, NULL);
}
