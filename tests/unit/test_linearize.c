/* SPDX-License-Identifier: MIT */
/*
 * Linearizability from the outside: forked processes run random get / put /
 * delete / compare-and-swap operations on one map root through the public
 * API only (lib/shmgraph.h, lib/graph.h), logging each operation's
 * invocation and response times (CLOCK_MONOTONIC, one clock for all
 * processes) in a separate shared mapping; some runs SIGKILL a process
 * in the middle (its last operation's response is unknown: it may or may
 * not have taken effect). Each history is then checked against a
 * sequential map with the Wing & Gong search, memoized on (operations
 * linearized, model state) as in Lowe's just-in-time linearization. Map
 * operations touch one key each, and linearizability is local, so each
 * key's sub-history is checked on its own. A violation prints the
 * history cut down to a minimal one that still fails.
 *
 * test_linearize_stale_detected runs the same workload with gets
 * answered from a version pinned at process start (a deliberately broken
 * reader; SHG_LIN_STALE=1 does the same to the main test) and requires
 * the checker to find a violation. SHG_LONG_TESTS=1 runs many more
 * histories.
 */
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <shmgraph.h> /* the public API only */
#include "testutil.h"

#define NPROC 3 /* processes per history */
#define NOPS 12 /* operations per process */
#define NKEYS 2 /* keys 1..NKEYS */
#define MAXK (NPROC * NOPS) /* operations of one key, at most */

enum op_type { OP_GET = 1, OP_PUT, OP_DEL, OP_CAS };
/* results: GET/DEL value (0 = absent); CAS: */
enum cas_res { CAS_OK = 1, CAS_MISMATCH, CAS_CONFLICT };
enum op_state { ST_EMPTY = 0, ST_INVOKED, ST_DONE };

/* One logged operation, written only by the process that runs it. */
struct lin_op {
	_Atomic uint32_t state; /* enum op_state; release after the fields */
	uint32_t type; /* enum op_type */
	uint64_t key;
	uint64_t arg; /* PUT value, CAS new value */
	uint64_t exp; /* CAS expected value (0 = absent) */
	uint64_t res; /* GET value / DEL old value (0 = absent) / cas_res */
	uint64_t obs; /* CAS_MISMATCH: the value seen */
	uint64_t t_inv, t_resp; /* CLOCK_MONOTONIC ns */
};

struct lin_log {
	_Atomic uint32_t ready; /* children attached */
	_Atomic uint32_t go; /* set by the parent once all are */
	struct lin_op op[NPROC][NOPS];
};

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- the workload (child processes, public API only) ------------------- */

struct child_ctx {
	const char *seg_name;
	struct lin_log *log;
	unsigned proc;
	uint64_t seed;
	bool stale; /* broken mode: gets read a version pinned at start */
	int kill_op; /* >= 0: SIGKILL arrives kill_ns after this op starts */
	long kill_ns;
};

/*
 * Arm a one-shot POSIX timer that sends SIGKILL to this process @ns from
 * now: the kernel delivers it wherever the process then is (inside the
 * library, between two operations, ...), with no cooperation from it.
 */
static int arm_kill(long ns)
{
	struct sigevent sev = { .sigev_notify = SIGEV_SIGNAL,
				.sigev_signo = SIGKILL };
	struct itimerspec its = { .it_value = { 0, ns > 0 ? ns : 1 } };
	timer_t tm;

	if (timer_create(CLOCK_MONOTONIC, &sev, &tm))
		return -errno;
	return timer_settime(tm, 0, &its, NULL) ? -errno : 0;
}

/* Value of @key in map version @ver (read section or pinned): 0 absent. */
static int read_key(struct shg_seg *seg, struct shg_off ver, uint64_t key,
		    uint64_t *out)
{
	struct shg_version_info vi;
	struct shg_val v;
	int err;

	err = shg_version_info(seg, ver, &vi);
	if (err)
		return err;
	err = shg_map_get_u64(seg, vi.node, key, &v);
	if (err == -ENOENT) {
		*out = 0;
		return 0;
	}
	if (!err)
		*out = v.u64;
	return err;
}

struct upd_arg {
	struct shg_seg *seg;
	uint64_t key, val;
	bool del;
	uint64_t old; /* value before (0 = absent), set on each try */
};

static int upd_fn(struct shg_txn *txn, void *arg)
{
	struct upd_arg *a = arg;
	struct shg_val v = { .kind = SHG_KIND_U64 };
	int err;

	err = shg_map_get_u64(a->seg, shg_txn_root_node(txn), a->key, &v);
	if (err && err != -ENOENT)
		return err;
	a->old = err ? 0 : v.u64;
	if (a->del)
		return a->old ? shg_txn_map_del_u64(txn, SHG_REF_ROOT, a->key) :
				0;
	v.kind = SHG_KIND_U64;
	v.u64 = a->val;
	return shg_txn_map_put_u64(txn, SHG_REF_ROOT, a->key, &v);
}

/* CAS through txn + commit: one try; a lost commit is CAS_CONFLICT. */
static int do_cas(struct shg_seg *seg, struct shg_root *root, struct lin_op *o)
{
	struct shg_val v = { .kind = SHG_KIND_U64 };
	struct shg_txn *txn;
	uint64_t cur;
	int err;

	err = shg_txn_begin(root, &txn);
	if (err)
		return err;
	err = shg_map_get_u64(seg, shg_txn_root_node(txn), o->key, &v);
	if (err && err != -ENOENT) {
		shg_txn_abort(txn);
		return err;
	}
	cur = err ? 0 : v.u64;
	if (cur != o->exp) {
		shg_txn_abort(txn);
		o->res = CAS_MISMATCH;
		o->obs = cur;
		return 0;
	}
	v.kind = SHG_KIND_U64;
	v.u64 = o->arg;
	err = shg_txn_map_put_u64(txn, SHG_REF_ROOT, o->key, &v);
	if (!err)
		err = shg_txn_commit(txn);
	if (err == SHG_ECONFLICT) {
		shg_txn_abort(txn); /* the txn stays valid after a conflict */
		o->res = CAS_CONFLICT;
		return 0;
	}
	if (err) {
		shg_txn_abort(txn);
		return err;
	}
	o->res = CAS_OK;
	return 0;
}

static int run_op(struct shg_seg *seg, struct shg_root *root,
		  struct shg_pin *stale, struct lin_op *o)
{
	struct upd_arg a = { .seg = seg, .key = o->key, .val = o->arg };
	int err;

	switch (o->type) {
	case OP_GET:
		if (stale)
			return read_key(seg, shg_pin_version(stale), o->key,
					&o->res);
		err = shg_read_lock(seg);
		if (err)
			return err;
		err = read_key(seg, shg_version_current(root), o->key, &o->res);
		shg_read_unlock(seg);
		return err;
	case OP_PUT:
	case OP_DEL:
		a.del = o->type == OP_DEL;
		err = shg_update(root, upd_fn, &a, 0);
		o->res = a.old;
		return err;
	case OP_CAS:
		return do_cas(seg, root, o);
	}
	return -EINVAL;
}

static int child_main(void *arg)
{
	struct child_ctx *c = arg;
	struct shg_seg *seg;
	struct shg_root *root;
	struct shg_pin *stale = NULL;
	uint64_t s = c->seed, r;
	unsigned i;
	int err;

	if (shg_seg_open(c->seg_name, NULL, &seg))
		return 10;
	if (shg_root_open(seg, "lin", &root))
		return 11;
	if (c->stale && shg_pin_current(root, &stale))
		return 12;
	/* Start together, so that the histories overlap. */
	atomic_fetch_add(&c->log->ready, 1);
	while (!atomic_load(&c->log->go))
		sched_yield();
	for (i = 0; i < NOPS; i++) {
		struct lin_op *o = &c->log->op[c->proc][i];

		r = tu_rng_next(&s);
		o->key = 1 + r % NKEYS;
		r >>= 8;
		o->type = 1 + r % 4;
		r >>= 8;
		o->arg = ((uint64_t)(c->proc + 1) << 16) | (i + 1);
		/* CAS expects absent or some value written so far */
		o->exp = (r & 3) == 0 ?
				 0 :
				 ((uint64_t)(1 + (r >> 2) % NPROC) << 16) |
					 (1 + (r >> 8) % (i + 1));
		if ((int)i == c->kill_op && arm_kill(c->kill_ns))
			return 13;
		o->t_inv = mono_ns();
		atomic_store_explicit(&o->state, ST_INVOKED,
				      memory_order_release);
		err = run_op(seg, root, stale, o);
		o->t_resp = mono_ns();
		if (err)
			return 20; /* a failed operation: the test fails */
		atomic_store_explicit(&o->state, ST_DONE, memory_order_release);
		if (tu_rng_next(&s) & 1) { /* spin, not sleep: stay on CPU */
			uint64_t until = mono_ns() + tu_rng_next(&s) % 30000;

			while (mono_ns() < until)
				;
		}
	}
	if (stale)
		shg_unpin(stale);
	shg_root_close(root);
	shg_seg_close(seg);
	return 0;
}

/* ---- the checker -------------------------------------------------------- */

/* One operation of a key's sub-history. */
struct hop {
	uint32_t type;
	bool pending; /* invoked, no response: may or may not have happened */
	uint64_t arg, exp, res, obs;
	uint64_t t_inv, t_resp; /* t_resp = UINT64_MAX if pending */
	unsigned proc, idx;
};

/* Apply @o to the key's value *@v; false if its result cannot be. */
static bool model_step(const struct hop *o, uint64_t *v)
{
	switch (o->type) {
	case OP_GET:
		return o->pending || o->res == *v;
	case OP_PUT:
		if (!o->pending && o->res != *v)
			return false; /* put reports the value it replaced */
		*v = o->arg;
		return true;
	case OP_DEL:
		if (!o->pending && o->res != *v)
			return false;
		*v = 0;
		return true;
	case OP_CAS:
		if (o->pending) {
			if (*v == o->exp)
				*v = o->arg; /* or no effect: omission */
			return true;
		}
		if (o->res == CAS_CONFLICT)
			return true; /* nothing published */
		if (o->res == CAS_OK) {
			if (*v != o->exp)
				return false;
			*v = o->arg;
			return true;
		}
		return *v == o->obs && o->obs != o->exp;
	}
	return false;
}

/* Memo of visited (linearized set, value) pairs: open addressing. */
struct memo {
	uint64_t *mask, *val;
	size_t cap, n;
};

static bool memo_add(struct memo *m, uint64_t mask, uint64_t val)
{
	size_t i;

	if (m->n * 2 >= m->cap) {
		struct memo b = { calloc(m->cap * 2, 8), calloc(m->cap * 2, 8),
				  m->cap * 2, 0 };

		assert_non_null(b.mask);
		assert_non_null(b.val);
		for (i = 0; i < m->cap; i++)
			if (m->mask[i])
				memo_add(&b, m->mask[i], m->val[i]);
		free(m->mask);
		free(m->val);
		*m = b;
	}
	mask |= 1ull << 63; /* 0 marks an empty cell */
	i = (size_t)((mask * 0x9e3779b97f4a7c15ull) ^
		     (val * 0xff51afd7ed558ccdull));
	for (i %= m->cap;; i = (i + 1) % m->cap) {
		if (!m->mask[i]) {
			m->mask[i] = mask;
			m->val[i] = val;
			m->n++;
			return true;
		}
		if (m->mask[i] == mask && m->val[i] == val)
			return false;
	}
}

struct search {
	const struct hop *h;
	unsigned n;
	uint64_t need; /* completed operations: all must be linearized */
	struct memo memo;
	uint64_t steps;
};

/*
 * Wing & Gong: linearize next any operation invoked before every pending
 * response of the operations left; memoized on (done set, value).
 */
static bool lin_search(struct search *s, uint64_t done, uint64_t v)
{
	uint64_t first_resp = UINT64_MAX, nv;
	unsigned i;

	if ((done & s->need) == s->need)
		return true; /* pending operations left out: never happened */
	if (!memo_add(&s->memo, done, v))
		return false;
	s->steps++;
	for (i = 0; i < s->n; i++)
		if (!(done & (1ull << i)) && s->h[i].t_resp < first_resp)
			first_resp = s->h[i].t_resp;
	for (i = 0; i < s->n; i++) {
		if ((done & (1ull << i)) || s->h[i].t_inv > first_resp)
			continue;
		nv = v;
		if (model_step(&s->h[i], &nv) &&
		    lin_search(s, done | (1ull << i), nv))
			return true;
	}
	return false;
}

static bool linearizable(const struct hop *h, unsigned n, uint64_t *steps)
{
	struct search s = { .h = h, .n = n };
	unsigned i;
	bool ok;

	for (i = 0; i < n; i++)
		if (!h[i].pending)
			s.need |= 1ull << i;
	s.memo.cap = 1024;
	s.memo.mask = calloc(s.memo.cap, 8);
	s.memo.val = calloc(s.memo.cap, 8);
	assert_non_null(s.memo.mask);
	assert_non_null(s.memo.val);
	ok = lin_search(&s, 0, 0);
	free(s.memo.mask);
	free(s.memo.val);
	if (steps)
		*steps += s.steps;
	return ok;
}

static const char *type_name(uint32_t t)
{
	static const char *const names[] = { "?", "get", "put", "del", "cas" };

	return t < 5 ? names[t] : "?";
}

static void print_history(uint64_t key, const struct hop *h, unsigned n,
			  uint64_t t0)
{
	static const char *const cas_names[] = { "?", "ok", "mismatch",
						 "conflict" };
	unsigned i;

	printf("# key %llu: %u operations (times in us from the first)\n",
	       (unsigned long long)key, n);
	for (i = 0; i < n; i++) {
		const struct hop *o = &h[i];

		printf("#   p%u.%-2u [%9.1f, ", o->proc, o->idx,
		       (double)(o->t_inv - t0) / 1e3);
		if (o->pending)
			printf("%9s] ", "killed");
		else
			printf("%9.1f] ", (double)(o->t_resp - t0) / 1e3);
		printf("%s", type_name(o->type));
		if (o->type == OP_PUT)
			printf("(%#llx)", (unsigned long long)o->arg);
		if (o->type == OP_CAS)
			printf("(%#llx -> %#llx)", (unsigned long long)o->exp,
			       (unsigned long long)o->arg);
		if (o->pending)
			printf(" -> ?\n");
		else if (o->type == OP_CAS)
			printf(" -> %s %#llx\n", cas_names[o->res & 3],
			       (unsigned long long)o->obs);
		else
			printf(" -> %#llx\n", (unsigned long long)o->res);
	}
}

/* Whether every value @h observes was written by an operation in @h. */
static bool self_contained(const struct hop *h, unsigned n)
{
	unsigned i, j;
	uint64_t seen;

	for (i = 0; i < n; i++) {
		if (h[i].pending)
			continue;
		seen = h[i].res;
		if (h[i].type == OP_CAS)
			seen = h[i].res == CAS_MISMATCH ? h[i].obs :
			       h[i].res == CAS_OK	? h[i].exp :
							  0;
		for (j = 0; seen && j < n; j++)
			if ((h[j].type == OP_PUT || h[j].type == OP_CAS) &&
			    h[j].arg == seen)
				seen = 0;
		if (seen)
			return false;
	}
	return true;
}

/*
 * Drop operations one at a time while the history still fails and every
 * value it observes is still written in it (so what is printed explains
 * itself): a minimal failing history.
 */
static unsigned minimize(struct hop *h, unsigned n)
{
	struct hop tmp[MAXK];
	unsigned i = 0, j;

	while (i < n) {
		for (j = 0; j < n - 1; j++)
			tmp[j] = h[j < i ? j : j + 1];
		if (self_contained(tmp, n - 1) &&
		    !linearizable(tmp, n - 1, NULL)) {
			memcpy(h, tmp, (n - 1) * sizeof(*h));
			n--;
		} else {
			i++;
		}
	}
	return n;
}

struct totals {
	unsigned histories, violations, kills;
	uint64_t ops, pending, steps;
	uint64_t overlap; /* ops concurrent with an op of another process */
};

/* Count the operations whose interval meets one of another process. */
static void count_overlap(const struct lin_log *log, struct totals *t)
{
	unsigned p, i, q, j;
	bool hit;

	for (p = 0; p < NPROC; p++) {
		for (i = 0; i < NOPS; i++) {
			const struct lin_op *a = &log->op[p][i];
			uint64_t ae = a->state == ST_DONE ? a->t_resp :
							    UINT64_MAX;

			if (a->state == ST_EMPTY)
				continue;
			hit = false;
			for (q = 0; q < NPROC && !hit; q++) {
				for (j = 0; q != p && j < NOPS && !hit; j++) {
					const struct lin_op *b = &log->op[q][j];
					uint64_t be = b->state == ST_DONE ?
							      b->t_resp :
							      UINT64_MAX;

					hit = b->state != ST_EMPTY &&
					      b->t_inv < ae && a->t_inv < be;
				}
			}
			t->overlap += hit;
		}
	}
}

/* Check every key's sub-history of @log. Return the violations found. */
static unsigned check_log(const struct lin_log *log, struct totals *t)
{
	struct hop h[MAXK];
	unsigned p, i, n, key, bad = 0;
	uint64_t t0 = UINT64_MAX;

	for (p = 0; p < NPROC; p++)
		for (i = 0; i < NOPS; i++)
			if (log->op[p][i].state != ST_EMPTY &&
			    log->op[p][i].t_inv < t0)
				t0 = log->op[p][i].t_inv;
	for (key = 1; key <= NKEYS; key++) {
		n = 0;
		for (p = 0; p < NPROC; p++) {
			for (i = 0; i < NOPS; i++) {
				const struct lin_op *o = &log->op[p][i];
				uint32_t st = atomic_load(&o->state);

				if (st == ST_EMPTY || o->key != key)
					continue;
				if (st == ST_INVOKED && o->type == OP_GET)
					continue; /* no effect, no result */
				h[n] = (struct hop){
					.type = o->type,
					.pending = st == ST_INVOKED,
					.arg = o->arg,
					.exp = o->exp,
					.res = o->res,
					.obs = o->obs,
					.t_inv = o->t_inv,
					.t_resp = st == ST_DONE ? o->t_resp :
								  UINT64_MAX,
					.proc = p,
					.idx = i,
				};
				t->pending += h[n].pending;
				t->ops++;
				n++;
			}
		}
		if (linearizable(h, n, &t->steps))
			continue;
		bad++;
		printf("# VIOLATION: history not linearizable\n");
		n = minimize(h, n);
		print_history(key, h, n, t0);
	}
	return bad;
}

/* ---- running histories -------------------------------------------------- */

/*
 * One history: a fresh segment and map root, NPROC children; with
 * @kill_one, one child gets SIGKILL 0-60 us after the start of one of its
 * operations. Returns the violations.
 */
static unsigned run_history(uint64_t seed, bool kill_one, bool stale,
			    struct totals *t)
{
	char name[64];
	struct shg_seg *seg = tu_create(name, 16u << 20);
	struct shg_root *root;
	struct shg_txn *txn;
	struct lin_log *log;
	struct child_ctx c[NPROC];
	pid_t pid[NPROC];
	unsigned p, bad, victim;
	int rc;

	tu_ok(shg_root_create(seg, "lin", &root));
	tu_ok(shg_txn_begin(root, &txn));
	tu_ok(shg_txn_map_new(txn, SHG_REF_ROOT, SHG_KIND_U64, SHG_KIND_U64));
	tu_ok(shg_txn_commit(txn));
	log = mmap(NULL, sizeof(*log), PROT_READ | PROT_WRITE,
		   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	assert_true(log != MAP_FAILED);
	victim = (unsigned)(seed % NPROC);
	for (p = 0; p < NPROC; p++) {
		c[p] = (struct child_ctx){
			name, log, p, seed * 7919 + p * 104729 + 1, stale, -1, 0
		};
		if (kill_one && p == victim) {
			c[p].kill_op = (int)((seed >> 2) % NOPS);
			c[p].kill_ns = (long)((seed * 2654435761u) % 60000);
		}
		pid[p] = tu_fork(child_main, &c[p]);
		assert_true(pid[p] > 0);
	}
	while (atomic_load(&log->ready) < NPROC) {
		for (p = 0; p < NPROC; p++) { /* a child that failed early */
			siginfo_t si = { .si_pid = 0 };

			if (!waitid(P_PID, (id_t)pid[p], &si,
				    WEXITED | WNOHANG | WNOWAIT) &&
			    si.si_pid)
				fail_msg("child %u exited before the start", p);
		}
		usleep(100);
	}
	atomic_store(&log->go, 1);
	for (p = 0; p < NPROC; p++) {
		rc = tu_wait(pid[p]);
		if (kill_one && p == victim && rc == 128 + SIGKILL) {
			t->kills++;
			continue;
		}
		if (rc != 0)
			fail_msg("history %llu: child %u exited %d",
				 (unsigned long long)seed, p, rc);
	}
	count_overlap(log, t);
	bad = check_log(log, t);
	t->histories++;
	t->violations += bad;
	if (bad)
		printf("# (history seed %llu, %s)\n", (unsigned long long)seed,
		       kill_one ? "one process killed" : "no kill");
	munmap(log, sizeof(*log));
	shg_root_close(root);
	tu_destroy(seg, name);
	return bad;
}

static bool env_stale(void)
{
	const char *s = getenv("SHG_LIN_STALE");

	return s && *s && strcmp(s, "0") != 0;
}

/* Many short random histories, one in three with a process killed. */
static void test_linearize_histories(void **state)
{
	unsigned i, n = tu_long_tests() ? 3000 : 150;
	struct totals t = { 0 };
	bool stale = env_stale();

	(void)state;
	for (i = 0; i < n; i++)
		run_history(1000 + i, i % 3 == 2, stale, &t);
	printf("# linearizability: %u histories (%u with a process killed), "
	       "%llu operations (%llu concurrent with another process's, "
	       "%llu with unknown response), %llu search steps, %u "
	       "violations\n",
	       t.histories, t.kills, (unsigned long long)t.ops,
	       (unsigned long long)t.overlap, (unsigned long long)t.pending,
	       (unsigned long long)t.steps, t.violations);
	assert_int_equal(t.violations, 0);
}

/* The checker must catch gets answered from a stale pinned version. */
static void test_linearize_stale_detected(void **state)
{
	struct totals t = { 0 };
	unsigned i;

	(void)state;
	for (i = 0; i < 40 && !t.violations; i++)
		run_history(5000 + i, false, true, &t);
	printf("# stale-read mode: violation found after %u histories "
	       "(%llu operations)\n",
	       t.histories, (unsigned long long)t.ops);
	assert_true(t.violations > 0);
}

/* The checker itself on hand-made histories (no processes). */
static void test_linearize_checker(void **state)
{
	/* p0 put(a) [0,10]; p1 get [20,30] -> absent: not linearizable */
	struct hop h[3] = {
		{ .type = OP_PUT, .arg = 5, .res = 0, .t_inv = 0, .t_resp = 10 },
		{ .type = OP_GET, .res = 0, .t_inv = 20, .t_resp = 30 },
		{ .type = OP_GET, .res = 5, .t_inv = 5, .t_resp = 40 },
	};

	(void)state;
	assert_false(linearizable(h, 3, NULL));
	/* overlapping get may see either */
	h[1].t_inv = 5;
	assert_true(linearizable(h, 3, NULL));
	/* a killed put may or may not have happened */
	h[0].pending = true;
	h[0].t_resp = UINT64_MAX;
	h[1].t_inv = 20;
	assert_true(linearizable(h, 3, NULL));
	h[2].res = 6; /* a value nobody wrote */
	assert_false(linearizable(h, 3, NULL));
	/* cas: mismatch must report the current value */
	{
		struct hop c[2] = {
			{ .type = OP_PUT, .arg = 7, .t_inv = 0, .t_resp = 1 },
			{ .type = OP_CAS,
			  .exp = 0,
			  .arg = 9,
			  .res = CAS_MISMATCH,
			  .obs = 7,
			  .t_inv = 2,
			  .t_resp = 3 },
		};

		assert_true(linearizable(c, 2, NULL));
		c[1].res = CAS_OK;
		assert_false(linearizable(c, 2, NULL));
		c[1].res = CAS_CONFLICT;
		assert_true(linearizable(c, 2, NULL));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_linearize_checker),
		cmocka_unit_test(test_linearize_histories),
		cmocka_unit_test(test_linearize_stale_detected),
	};

	setvbuf(stdout, NULL, _IOLBF, 0);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
