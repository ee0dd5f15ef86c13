/* SPDX-License-Identifier: MIT */
/*
 * Tests of the root table: namespace operations and their errors, publish
 * by compare-and-swap, processes racing on one root, removal while other
 * processes (live or dead) hold the root, repair after a process died
 * holding root_lock, and the checker on forged slots.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "testutil.h"

/* ---- helpers ----------------------------------------------------------- */

static struct shg_seg *create_roots(char *name, uint32_t max_roots)
{
	struct shg_opts o = { .size = sizeof(o) };
	struct shg_seg *seg = NULL;

	o.capacity = 64u << 20;
	o.max_roots = max_roots;
	tu_shm_name(name, 64, "roots");
	tu_ok(shg_seg_create(name, &o, &seg));
	assert_non_null(seg);
	return seg;
}

/* Allocate a block holding the 64-bit value @v. */
static struct shg_off new_u64(struct shg_seg *seg, uint64_t v)
{
	struct shg_off o;
	uint64_t *p;

	tu_ok(shg_alloc(seg, sizeof(v), &o));
	p = shg_ptr(seg, o, sizeof(v));
	assert_non_null(p);
	*p = v;
	return o;
}

/* Pipe-based rendezvous between the test and one child. */
struct chan {
	int up[2]; /* child -> parent */
	int down[2]; /* parent -> child */
};

static void chan_init(struct chan *c)
{
	assert_int_equal(pipe(c->up), 0);
	assert_int_equal(pipe(c->down), 0);
}

static void chan_close(struct chan *c)
{
	close(c->up[0]);
	close(c->up[1]);
	close(c->down[0]);
	close(c->down[1]);
}

static int chan_send(int fd)
{
	char b = 1;

	return write(fd, &b, 1) == 1 ? 0 : -1;
}

static int chan_recv(int fd)
{
	char b;

	return read(fd, &b, 1) == 1 ? 0 : -1;
}

/* Find a listed root by name; returns its entry or NULL. */
static const struct shg_root_info *info_find(const struct shg_root_info *ri,
					     int n, const char *name)
{
	int i;

	for (i = 0; i < n; i++)
		if (strcmp(ri[i].name, name) == 0)
			return &ri[i];
	return NULL;
}

/* A drop hook that records its calls and retires the value. */
struct drops {
	unsigned calls;
	uint64_t last;
};

static int drop_hook(struct shg_seg *seg, struct shg_off value, void *arg)
{
	struct drops *d = arg;

	d->calls++;
	d->last = value.v;
	return shg_retire(seg, value);
}

/* Problems collected from the checker. */
struct problems {
	unsigned n;
	unsigned corrupt, badoff, deadowner;
};

static void collect(void *arg, int code, const char *msg)
{
	struct problems *p = arg;

	(void)msg;
	p->n++;
	if (code == SHG_ECORRUPT)
		p->corrupt++;
	else if (code == SHG_EBADOFF)
		p->badoff++;
	else if (code == SHG_EDEADOWNER)
		p->deadowner++;
}

static unsigned roots_problems(struct shg_seg *seg, struct problems *p)
{
	struct shg_check_report rep;

	memset(p, 0, sizeof(*p));
	memset(&rep, 0, sizeof(rep));
	assert_int_equal(shg__roots_check(seg, collect, p, &rep), 0);
	assert_int_equal(rep.problems, p->n);
	return p->n;
}

/* ---- namespace --------------------------------------------------------- */

static void test_roots_create_open_close(void **state)
{
	struct shg_root *a, *b, *c;
	struct shg_root_info ri[4];
	struct shg_seg *seg;
	struct problems pb;
	char name[64];
	int n;

	(void)state;
	seg = create_roots(name, 0);
	assert_int_equal(shg_root_list(seg, ri, 4), 0);
	tu_ok(shg_root_create(seg, "alpha", &a));
	assert_string_equal(shg_root_name(a), "alpha");
	assert_true(shg_off_is_null(shg_root_load(a)));
	assert_int_equal(shg_root_generation(a), 0);
	tu_ok(shg_root_open(seg, "alpha", &b));
	tu_ok(shg_root_create(seg, "beta", &c));

	n = shg_root_list(seg, ri, 4);
	assert_int_equal(n, 2);
	assert_non_null(info_find(ri, n, "alpha"));
	assert_int_equal(info_find(ri, n, "alpha")->holds, 2);
	assert_false(info_find(ri, n, "alpha")->removed);
	assert_int_equal(info_find(ri, n, "beta")->holds, 1);
	assert_true(info_find(ri, n, "alpha")->created_ns > 0);
	/* The count is right even when the output array is too small. */
	assert_int_equal(shg_root_list(seg, ri, 1), 2);
	assert_int_equal(shg_root_list(seg, NULL, 0), 2);
	assert_int_equal(roots_problems(seg, &pb), 0);

	assert_int_equal(shg_root_close(b), 0);
	assert_int_equal(shg_root_close(a), 0);
	assert_int_equal(shg_root_close(c), 0);
	assert_int_equal(shg_root_close(NULL), 0);
	/* Roots outlive their handles. */
	n = shg_root_list(seg, ri, 4);
	assert_int_equal(n, 2);
	assert_int_equal(info_find(ri, n, "alpha")->holds, 0);
	tu_ok(shg_root_open(seg, "alpha", &a));
	assert_string_equal(shg_root_name(a), "alpha");
	shg_root_close(a);
	assert_int_equal(roots_problems(seg, &pb), 0);
	tu_destroy(seg, name);
}

static void test_roots_name_errors(void **state)
{
	char longest[SHG_ROOT_NAME_MAX + 2];
	struct shg_root *a = NULL, *b = NULL;
	struct shg_seg *seg;
	char name[64];

	(void)state;
	seg = create_roots(name, 0);
	tu_ok(shg_root_create(seg, "dup", &a));
	assert_int_equal(shg_root_create(seg, "dup", &b), -EEXIST);
	assert_null(b);
	assert_int_equal(shg_root_open(seg, "missing", &b), -ENOENT);
	assert_int_equal(shg_root_remove(seg, "missing"), -ENOENT);

	memset(longest, 'n', sizeof(longest));
	longest[SHG_ROOT_NAME_MAX + 1] = '\0';
	assert_int_equal(shg_root_create(seg, longest, &b), -ENAMETOOLONG);
	assert_int_equal(shg_root_open(seg, longest, &b), -ENAMETOOLONG);
	longest[SHG_ROOT_NAME_MAX] = '\0';
	tu_ok(shg_root_create(seg, longest, &b));
	assert_string_equal(shg_root_name(b), longest);
	shg_root_close(b);

	assert_int_equal(shg_root_create(seg, "", &b), -EINVAL);
	assert_int_equal(shg_root_create(seg, NULL, &b), -EINVAL);
	assert_int_equal(shg_root_create(seg, "tab\there", &b), -EINVAL);
	assert_int_equal(shg_root_create(seg, "nl\n", &b), -EINVAL);
	assert_int_equal(shg_root_create(seg, "del\x7f", &b), -EINVAL);
	assert_int_equal(shg_root_create(NULL, "x", &b), -EINVAL);
	assert_int_equal(shg_root_create(seg, "x", NULL), -EINVAL);
	/* Printable bytes, '/' and UTF-8 are fine. */
	tu_ok(shg_root_create(seg, "a/b c:d", &b));
	shg_root_close(b);
	tu_ok(shg_root_create(seg, "caf\xc3\xa9", &b));
	shg_root_close(b);
	shg_root_close(a);
	tu_destroy(seg, name);
}

static void test_roots_table_full(void **state)
{
	struct shg_root *extra = NULL;
	struct shg_root **r;
	struct shg_seg *seg;
	char seg_name[64];
	char nm[16];
	uint32_t i, max;

	(void)state;
	seg = create_roots(seg_name, 4);
	max = seg->max_roots;
	assert_true(max >= 1 && max <= 1024);
	r = calloc(max, sizeof(*r));
	assert_non_null(r);
	for (i = 0; i < max; i++) {
		snprintf(nm, sizeof(nm), "r%u", i);
		tu_ok(shg_root_create(seg, nm, &r[i]));
	}
	assert_int_equal(shg_root_create(seg, "onemore", &extra), SHG_ESLOTS);
	assert_null(extra);
	/* A removed root that nobody holds frees its slot at once. */
	shg_root_close(r[0]);
	tu_ok(shg_root_remove(seg, "r0"));
	tu_ok(shg_root_create(seg, "onemore", &extra));
	/* A removed root that is still held keeps its slot. */
	tu_ok(shg_root_remove(seg, "onemore"));
	assert_int_equal(shg_root_create(seg, "again", &r[0]), SHG_ESLOTS);
	shg_root_close(extra);
	tu_ok(shg_root_create(seg, "again", &r[0]));
	for (i = 0; i < max; i++)
		shg_root_close(r[i]);
	free(r);
	tu_destroy(seg, seg_name);
}

/* A full hold table: opens fail, and a create fails without leaving a
 * root behind. */
static void test_roots_holds_full(void **state)
{
	struct shg_root *a = NULL, *b = NULL;
	struct shg_root_info ri[2];
	struct shg_seg *seg;
	struct problems pb;
	char name[64];
	uint32_t i, forged = 0;

	(void)state;
	seg = create_roots(name, 0);
	tu_ok(shg_root_create(seg, "a", &a));
	shg_root_close(a);
	for (i = 0; i < seg->max_holds; i++) {
		struct shg_hold *h = &seg->holds[i];

		if (h->proc1)
			continue;
		h->root = seg->max_roots; /* never matches a real root */
		h->count = 1;
		h->proc1 = seg->pslot + 1;
		forged++;
	}
	assert_true(forged > 0);
	assert_int_equal(shg_root_open(seg, "a", &a), SHG_ESLOTS);
	assert_int_equal(shg_root_create(seg, "b", &b), SHG_ESLOTS);
	assert_null(b);
	assert_int_equal(shg_root_list(seg, ri, 2), 1);
	for (i = 0; i < seg->max_holds; i++)
		if (seg->holds[i].root == seg->max_roots)
			memset(&seg->holds[i], 0, sizeof(seg->holds[i]));
	tu_ok(shg_root_open(seg, "a", &a));
	tu_ok(shg_root_create(seg, "b", &b));
	assert_int_equal(roots_problems(seg, &pb), 0);
	shg_root_close(a);
	shg_root_close(b);
	tu_destroy(seg, name);
}

/* ---- publish ----------------------------------------------------------- */

static void test_roots_cas_publish(void **state)
{
	struct shg_off b1, b2, b3, v;
	struct shg_root_info ri[2];
	uint64_t commits;
	struct shg_root *r, *r2;
	struct shg_seg *seg;
	char name[64];

	(void)state;
	seg = create_roots(name, 0);
	tu_ok(shg_root_create(seg, "pub", &r));
	tu_ok(shg_root_open(seg, "pub", &r2));
	commits = atomic_load(&seg->hdr->commits);
	b1 = new_u64(seg, 41);
	b2 = new_u64(seg, 42);
	b3 = new_u64(seg, 43);

	tu_ok(shg_root_cas(r, SHG_OFF_NULL, b1));
	assert_int_equal(shg_root_generation(r), 1);
	tu_ok(shg_read_lock(seg));
	v = shg_root_load(r2);
	assert_true(shg_off_eq(v, b1));
	assert_int_equal(*(uint64_t *)shg_ptr(seg, v, 8), 41);
	shg_read_unlock(seg);

	/* Stale expected value: nothing changes. */
	assert_int_equal(shg_root_cas(r2, SHG_OFF_NULL, b3), SHG_ECONFLICT);
	assert_true(shg_off_eq(shg_root_load(r), b1));
	assert_int_equal(shg_root_generation(r), 1);

	tu_ok(shg_root_cas(r2, b1, b2));
	tu_ok(shg_retire(seg, b1));
	assert_true(shg_off_eq(shg_root_load(r), b2));
	assert_int_equal(shg_root_generation(r), 2);
	assert_int_equal(shg_root_generation(r2), 2);
	assert_int_equal(atomic_load(&seg->hdr->commits), commits + 2);

	/* An offset outside the heap is refused. */
	assert_int_equal(shg_root_cas(r, b2, (struct shg_off){ 8 }),
			 SHG_EBADOFF);
	assert_true(shg_off_eq(shg_root_load(r), b2));

	assert_int_equal(shg_root_list(seg, ri, 2), 1);
	assert_true(shg_off_eq(ri[0].value, b2));
	assert_int_equal(ri[0].generation, 2);
	assert_true(ri[0].last_publish_ns > 0);
	assert_int_equal(ri[0].holds, 2);

	/* Publishing null is allowed. */
	tu_ok(shg_root_cas(r, b2, SHG_OFF_NULL));
	tu_ok(shg_retire(seg, b2));
	tu_ok(shg_free(seg, b3));
	shg_root_close(r);
	shg_root_close(r2);
	tu_destroy(seg, name);
}

/* ---- processes racing on one root -------------------------------------- */

#define RACE_CHILDREN 4
#define RACE_OPS 10000

static const char *race_seg;
/* Child of test_roots_wait_woken_by_publish: sleeps in shg_root_wait
 * until the parent publishes; exit 0 only if it was woken (not timed out)
 * and sees the new generation. */
struct wait_arg {
	const char *name;
	int ready[2];
	uint64_t gen;
};

static int wait_child(void *arg)
{
	struct wait_arg *a = arg;
	struct shg_root *r;
	struct shg_seg *seg;
	int rc;

	if (shg_seg_open(a->name, NULL, &seg) || shg_root_open(seg, "w", &r))
		return 2;
	if (chan_send(a->ready[1]))
		return 3;
	rc = shg_root_wait(r, a->gen, 20000);
	if (rc != 0)
		return rc == -ETIMEDOUT ? 4 : 5;
	if (shg_root_generation(r) == a->gen)
		return 6;
	shg_root_close(r);
	shg_seg_close(seg);
	return 0;
}

/*
 * shg_root_wait: looks (timeout 0), times out when nothing is published,
 * returns at once for a generation already passed, and a waiter in
 * another process sleeping on the futex is woken by a publish long
 * before its 20 s timeout (exit 4 if it was not).
 */
static void test_roots_wait_woken_by_publish(void **state)
{
	struct wait_arg a = { 0 };
	struct timespec t0, t1;
	struct shg_root *r;
	struct shg_seg *seg;
	char name[64];
	double ms;
	pid_t pid;

	(void)state;
	seg = create_roots(name, 0);
	tu_ok(shg_root_create(seg, "w", &r));
	a.gen = shg_root_generation(r);
	assert_int_equal(shg_root_wait(r, a.gen, 0), -ETIMEDOUT);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(shg_root_wait(r, a.gen, 30), -ETIMEDOUT);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ms = (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6;
	assert_true(ms >= 25); /* it slept, it did not spin out at once */
	assert_int_equal(shg_root_wait(NULL, 0, 0), -EINVAL);
	assert_int_equal(shg_root_wait(r, a.gen, -1), -EINVAL);

	a.name = name;
	assert_int_equal(pipe(a.ready), 0);
	pid = tu_fork(wait_child, &a);
	assert_int_equal(chan_recv(a.ready[0]), 0);
	usleep(50000); /* let it fall asleep (not needed for correctness) */
	tu_ok(shg_root_cas(r, SHG_OFF_NULL, new_u64(seg, 7)));
	assert_int_equal(tu_wait(pid), 0);
	assert_int_equal(shg_root_wait(r, a.gen, 1000), 0); /* passed */
	close(a.ready[0]);
	close(a.ready[1]);
	shg_root_close(r);
	tu_destroy(seg, name);
}

static int race_go[2]; /* start line: children start together */
static uint64_t race_stats; /* block of one counter: conflicts seen */

/* One increment: copy-on-write of the counter block, publish by CAS. */
static int race_increment(struct shg_seg *seg, struct shg_root *r)
{
	for (;;) {
		struct shg_off nb, old;
		uint64_t *np, cur = 0;
		int err;

		if (shg_alloc(seg, sizeof(uint64_t), &nb))
			return -1;
		np = shg_ptr(seg, nb, sizeof(*np));
		if (!np || shg_read_lock(seg))
			return -1;
		/* Inside the section the old block cannot be reclaimed, so
		 * the CAS below cannot see it reused (no ABA). */
		old = shg_root_load(r);
		if (!shg_off_is_null(old)) {
			uint64_t *op = shg_ptr(seg, old, sizeof(*op));

			if (!op) {
				shg_read_unlock(seg);
				return -1;
			}
			cur = *op;
		}
		*np = cur + 1;
		err = shg_root_cas(r, old, nb);
		shg_read_unlock(seg);
		if (err == 0)
			return shg_off_is_null(old) ? 0 : shg_retire(seg, old);
		if (err != SHG_ECONFLICT || shg_free(seg, nb))
			return -1;
		atomic_fetch_add((_Atomic uint64_t *)shg_ptr(
					 seg, (struct shg_off){ race_stats },
					 8),
				 1);
	}
}

static int race_child(void *arg)
{
	struct shg_seg *seg = NULL;
	struct shg_root *r = NULL;
	int i;

	(void)arg;
	if (shg_seg_open(race_seg, NULL, &seg))
		return 10;
	if (shg_root_open(seg, "counter", &r))
		return 11;
	if (chan_recv(race_go[0]))
		return 13;
	for (i = 0; i < RACE_OPS; i++)
		if (race_increment(seg, r))
			return 12;
	shg_root_close(r);
	shg_seg_close(seg);
	return 0;
}

static void test_roots_cas_race(void **state)
{
	pid_t pids[RACE_CHILDREN];
	struct shg_root *r;
	struct shg_seg *seg;
	struct problems pb;
	struct shg_off v;
	char name[64];
	int i;

	(void)state;
	seg = create_roots(name, 0);
	race_seg = name;
	race_stats = new_u64(seg, 0).v;
	assert_int_equal(pipe(race_go), 0);
	tu_ok(shg_root_create(seg, "counter", &r));
	for (i = 0; i < RACE_CHILDREN; i++)
		pids[i] = tu_fork(race_child, NULL);
	for (i = 0; i < RACE_CHILDREN; i++)
		assert_int_equal(chan_send(race_go[1]), 0);
	for (i = 0; i < RACE_CHILDREN; i++)
		assert_int_equal(tu_wait(pids[i]), 0);
	close(race_go[0]);
	close(race_go[1]);
	print_message("%d processes x %d increments, %llu CAS conflicts\n",
		      RACE_CHILDREN, RACE_OPS,
		      (unsigned long long)*(uint64_t *)shg_ptr(
			      seg, (struct shg_off){ race_stats }, 8));

	tu_ok(shg_read_lock(seg));
	v = shg_root_load(r);
	assert_false(shg_off_is_null(v));
	assert_int_equal(*(uint64_t *)shg_ptr(seg, v, 8),
			 RACE_CHILDREN * RACE_OPS);
	shg_read_unlock(seg);
	assert_int_equal(shg_root_generation(r), RACE_CHILDREN * RACE_OPS);
	assert_int_equal(roots_problems(seg, &pb), 0);
	shg_root_close(r);
	tu_destroy(seg, name);
}

/* ---- remove while held ------------------------------------------------- */

struct held_arg {
	const char *seg_name;
	struct chan ch;
	uint64_t block; /* value the root had when removed */
};

static int held_child(void *arg)
{
	struct held_arg *ha = arg;
	struct shg_seg *seg = NULL;
	struct shg_root *r = NULL, *again = NULL;
	struct shg_root_info ri[4];
	struct shg_off v;
	uint64_t *p;

	if (shg_seg_open(ha->seg_name, NULL, &seg))
		return 10;
	if (shg_root_open(seg, "victim", &r))
		return 11;
	if (chan_send(ha->ch.up[1]) || chan_recv(ha->ch.down[0]))
		return 12;
	/* Removed by the parent: new opens fail, our handle still reads. */
	if (shg_root_open(seg, "victim", &again) != -ENOENT)
		return 13;
	if (shg_read_lock(seg))
		return 14;
	v = shg_root_load(r);
	p = shg_ptr(seg, v, sizeof(*p));
	if (v.v != ha->block || !p || *p != 42)
		return 15;
	shg_read_unlock(seg);
	if (shg_root_cas(r, v, SHG_OFF_NULL) != -ENOENT)
		return 16;
	if (shg_root_list(seg, ri, 4) != 1 || !ri[0].removed ||
	    ri[0].holds != 1)
		return 17;
	/* Last holder: the slot is freed and the value retired. */
	shg_root_close(r);
	if (shg_root_list(seg, ri, 4) != 0)
		return 18;
	shg_seg_close(seg);
	return 0;
}

static void test_roots_remove_while_held(void **state)
{
	struct shg_root_info ri[4];
	struct held_arg ha;
	struct shg_root *r, *r2;
	struct shg_seg *seg;
	struct problems pb;
	uint64_t before, after;
	char name[64];
	pid_t pid;

	(void)state;
	seg = create_roots(name, 0);
	ha.seg_name = name;
	chan_init(&ha.ch);
	tu_ok(shg_root_create(seg, "victim", &r));
	ha.block = new_u64(seg, 42).v;
	tu_ok(shg_root_cas(r, SHG_OFF_NULL, (struct shg_off){ ha.block }));
	shg_root_close(r);
	before = atomic_load(&seg->hdr->retired_bytes) +
		 atomic_load(&seg->hdr->reclaimed_bytes);

	pid = tu_fork(held_child, &ha);
	assert_int_equal(chan_recv(ha.ch.up[0]), 0);
	tu_ok(shg_root_remove(seg, "victim"));
	assert_int_equal(shg_root_remove(seg, "victim"), -ENOENT);
	assert_int_equal(shg_root_open(seg, "victim", &r), -ENOENT);
	assert_int_equal(shg_root_list(seg, ri, 4), 1);
	assert_true(ri[0].removed);
	assert_int_equal(ri[0].holds, 1);
	assert_int_equal(ri[0].value.v, ha.block);
	assert_int_equal(roots_problems(seg, &pb), 0);
	/* The name is free again for a new root (another slot). */
	tu_ok(shg_root_create(seg, "victim", &r2));
	assert_int_equal(shg_root_list(seg, ri, 4), 2);
	shg_root_close(r2);
	tu_ok(shg_root_remove(seg, "victim"));
	assert_int_equal(shg_root_list(seg, ri, 4), 1);

	assert_int_equal(chan_send(ha.ch.down[1]), 0);
	assert_int_equal(tu_wait(pid), 0);
	assert_int_equal(shg_root_list(seg, ri, 4), 0);
	after = atomic_load(&seg->hdr->retired_bytes) +
		atomic_load(&seg->hdr->reclaimed_bytes);
	assert_true(after >= before + sizeof(uint64_t));
	assert_int_equal(roots_problems(seg, &pb), 0);
	chan_close(&ha.ch);
	tu_destroy(seg, name);
}

/* A process that closes the segment with a handle still open drops its
 * holds; as the last holder of a removed root it releases the value. The
 * work runs in a thread that then exits, so that the thread's exit
 * handling runs after the segment is gone. */
static void *close_seg_thread(void *arg)
{
	struct held_arg *ha = arg;
	struct shg_seg *seg = NULL;
	struct shg_root *r = NULL;

	if (shg_seg_open(ha->seg_name, NULL, &seg))
		return (void *)10;
	if (shg_root_open(seg, "kept", &r))
		return (void *)11;
	if (chan_send(ha->ch.up[1]) || chan_recv(ha->ch.down[0]))
		return (void *)12;
	shg_seg_close(seg); /* @r is not closed: the segment close drops it */
	return NULL;
}

static int close_seg_child(void *arg)
{
	pthread_t th;
	void *ret = NULL;

	if (pthread_create(&th, NULL, close_seg_thread, arg) ||
	    pthread_join(th, &ret))
		return 9;
	return (int)(intptr_t)ret;
}

static void test_roots_seg_close_drops_holds(void **state)
{
	struct shg_root_info ri[4];
	uint64_t before, after;
	struct held_arg ha;
	struct shg_root *r;
	struct shg_seg *seg;
	struct problems pb;
	char name[64];
	pid_t pid;

	(void)state;
	seg = create_roots(name, 0);
	ha.seg_name = name;
	chan_init(&ha.ch);
	tu_ok(shg_root_create(seg, "kept", &r));
	ha.block = new_u64(seg, 5).v;
	tu_ok(shg_root_cas(r, SHG_OFF_NULL, (struct shg_off){ ha.block }));
	shg_root_close(r);
	before = atomic_load(&seg->hdr->retired_bytes) +
		 atomic_load(&seg->hdr->reclaimed_bytes);

	pid = tu_fork(close_seg_child, &ha);
	assert_int_equal(chan_recv(ha.ch.up[0]), 0);
	tu_ok(shg_root_remove(seg, "kept"));
	assert_int_equal(shg_root_list(seg, ri, 4), 1);
	assert_int_equal(ri[0].holds, 1);
	assert_int_equal(chan_send(ha.ch.down[1]), 0);
	assert_int_equal(tu_wait(pid), 0);
	assert_int_equal(shg_root_list(seg, ri, 4), 0);
	after = atomic_load(&seg->hdr->retired_bytes) +
		atomic_load(&seg->hdr->reclaimed_bytes);
	assert_true(after >= before + sizeof(uint64_t));
	assert_int_equal(roots_problems(seg, &pb), 0);
	chan_close(&ha.ch);
	tu_destroy(seg, name);
}

/* ---- dead holder ------------------------------------------------------- */

static int dead_holder_child(void *arg)
{
	struct held_arg *ha = arg;
	struct shg_seg *seg = NULL;
	struct shg_root *r = NULL, *r2 = NULL;

	if (shg_seg_open(ha->seg_name, NULL, &seg))
		return 10;
	if (shg_root_open(seg, "held", &r) || shg_root_open(seg, "held", &r2))
		return 11;
	chan_send(ha->ch.up[1]);
	raise(SIGKILL);
	return 12;
}

static void test_roots_dead_holder(void **state)
{
	struct shg_recover_report rep;
	struct shg_root_info ri[4];
	struct drops drops = { 0 };
	struct held_arg ha;
	struct shg_root *r;
	struct shg_seg *seg;
	struct problems pb;
	char name[64];
	pid_t pid;

	(void)state;
	seg = create_roots(name, 0);
	ha.seg_name = name;
	chan_init(&ha.ch);
	tu_ok(shg_root_create(seg, "held", &r));
	ha.block = new_u64(seg, 7).v;
	tu_ok(shg_root_cas(r, SHG_OFF_NULL, (struct shg_off){ ha.block }));
	shg_root_close(r);

	pid = tu_fork(dead_holder_child, &ha);
	assert_int_equal(chan_recv(ha.ch.up[0]), 0);
	assert_int_equal(tu_wait(pid), 128 + SIGKILL);

	seg->root_drop = drop_hook;
	seg->root_drop_arg = &drops;
	tu_ok(shg_root_remove(seg, "held"));
	assert_int_equal(shg_root_list(seg, ri, 4), 1);
	assert_true(ri[0].removed);
	assert_int_equal(ri[0].holds, 2); /* the dead child's two handles */
	assert_int_equal(drops.calls, 0);
	/* A dead holder is recovery's business, not a check problem. */
	assert_int_equal(roots_problems(seg, &pb), 0);

	memset(&rep, 0, sizeof(rep));
	tu_ok(shg__release_dead(seg, &rep));
	assert_int_equal(rep.holds_released, 2);
	assert_int_equal(drops.calls, 1);
	assert_int_equal(drops.last, ha.block);
	assert_int_equal(shg_root_list(seg, ri, 4), 0);
	assert_int_equal(roots_problems(seg, &pb), 0);
	seg->root_drop = NULL;
	chan_close(&ha.ch);
	tu_destroy(seg, name);
}

/* ---- repair after a death under root_lock ------------------------------ */

struct repair_arg {
	const char *seg_name;
	uint32_t removed_slot; /* slot to leave REMOVED without holds */
	uint32_t held_slot; /* slot whose holds to scramble */
};

static int lock_dier_child(void *arg)
{
	struct repair_arg *ra = arg;
	struct shg_seg *seg = NULL;

	if (shg_seg_open(ra->seg_name, NULL, &seg))
		return 10;
	if (shg__lock(seg, &seg->hdr->root_lock, shg__roots_repair))
		return 11;
	/* Die half-way through namespace changes: a remove that did not
	 * finalize, and a holds count that does not match the records. */
	atomic_store(&seg->roots[ra->removed_slot].state, SHG_ROOT_REMOVED);
	seg->roots[ra->held_slot].holds = 77;
	raise(SIGKILL);
	return 12;
}

static void test_roots_repair_dead_lock(void **state)
{
	struct shg_root_info ri[4];
	struct drops drops = { 0 };
	struct repair_arg ra;
	struct shg_root *a, *b, *c;
	struct shg_seg *seg;
	struct problems pb;
	uint64_t block;
	char name[64];
	int n;

	(void)state;
	seg = create_roots(name, 0);
	ra.seg_name = name;
	tu_ok(shg_root_create(seg, "a", &a));
	block = new_u64(seg, 1).v;
	tu_ok(shg_root_cas(a, SHG_OFF_NULL, (struct shg_off){ block }));
	tu_ok(shg_root_create(seg, "b", &b));
	assert_int_equal(shg_root_list(seg, ri, 4), 2);
	ra.removed_slot = info_find(ri, 2, "a")->slot;
	ra.held_slot = info_find(ri, 2, "b")->slot;
	shg_root_close(a);

	assert_int_equal(tu_wait(tu_fork(lock_dier_child, &ra)), 128 + SIGKILL);

	seg->root_drop = drop_hook;
	seg->root_drop_arg = &drops;
	/* Taking the lock repairs; the half-removed root is finalized. */
	tu_ok(shg_root_create(seg, "c", &c));
	assert_int_equal(drops.calls, 1);
	assert_int_equal(drops.last, block);
	n = shg_root_list(seg, ri, 4);
	assert_int_equal(n, 2);
	assert_null(info_find(ri, n, "a"));
	assert_int_equal(info_find(ri, n, "b")->holds, 1);
	assert_int_equal(info_find(ri, n, "c")->holds, 1);
	assert_int_equal(roots_problems(seg, &pb), 0);
	/* And the lock works normally afterwards. */
	shg_root_close(b);
	shg_root_close(c);
	tu_ok(shg_root_remove(seg, "b"));
	assert_int_equal(shg_root_list(seg, ri, 4), 1);
	seg->root_drop = NULL;
	tu_destroy(seg, name);
}

/* ---- lock words the kernel cannot repair -------------------------------- */

static int exit_child(void *arg)
{
	(void)arg;
	return 0;
}

static int sleep_child(void *arg)
{
	(void)arg;
	sleep(30); /* killed by the parent */
	return 0;
}

/*
 * Write owner TID @tid into root_lock's futex word, as a lock taken in an
 * earlier boot (or a forged file) looks: the kernel never saw that thread
 * die, so only the take-over path can free it.
 */
static void forge_owner(struct shg_seg *seg, pid_t tid)
{
	int *word = (int *)&seg->hdr->root_lock; /* glibc: futex word first */

	__atomic_store_n(word, (int)tid, __ATOMIC_RELEASE);
}

static void test_roots_orphaned_lock_taken_over(void **state)
{
	struct shg_root_info ri[4];
	struct shg_root *a;
	struct shg_seg *seg;
	struct problems pb;
	pid_t dead, live;
	char name[64];

	(void)state;
#ifndef __GLIBC__
	print_message("  skipped: lock word layout is glibc's\n");
	skip();
#endif
	seg = create_roots(name, 0);
	tu_ok(shg_root_create(seg, "a", &a));
	/* an owner that no longer exists */
	dead = tu_fork(exit_child, NULL);
	assert_int_equal(tu_wait(dead), 0);
	forge_owner(seg, dead);
	assert_int_equal(shg_root_list(seg, ri, 4), 1);
	/* an owner that lives but never attached (a reused TID) */
	live = tu_fork(sleep_child, NULL);
	forge_owner(seg, live);
	assert_int_equal(shg_root_list(seg, ri, 4), 1);
	kill(live, SIGKILL);
	assert_int_equal(tu_wait(live), 128 + SIGKILL);
	/* the lock works normally afterwards and nothing is damaged */
	shg_root_close(a);
	tu_ok(shg_root_remove(seg, "a"));
	assert_int_equal(shg_root_list(seg, ri, 4), 0);
	assert_int_equal(roots_problems(seg, &pb), 0);
	assert_false(shg__lock_others_active(seg)); /* all withdrawn */
	tu_destroy(seg, name);
}

/* ---- checker on forged slots ------------------------------------------- */

static void test_roots_check_forged(void **state)
{
	uint32_t sx, sy, sz, i, free_proc = UINT32_MAX;
	struct shg_root_info ri[4];
	struct shg_root *x, *y, *z;
	struct shg_hold *h = NULL;
	struct shg_seg *seg;
	struct problems pb;
	char name[64];

	(void)state;
	seg = create_roots(name, 0);
	tu_ok(shg_root_create(seg, "x", &x));
	tu_ok(shg_root_create(seg, "y", &y));
	tu_ok(shg_root_create(seg, "z", &z));
	shg_root_close(x);
	shg_root_close(y);
	shg_root_close(z);
	assert_int_equal(shg_root_list(seg, ri, 4), 3);
	sx = info_find(ri, 3, "x")->slot;
	sy = info_find(ri, 3, "y")->slot;
	sz = info_find(ri, 3, "z")->slot;
	assert_int_equal(roots_problems(seg, &pb), 0);

	/* Forge: a bad state, an unterminated name, a value outside the
	 * heap, and a hold record whose process slot is free. */
	atomic_store(&seg->roots[sx].state, 9);
	memset(seg->roots[sy].name, 'A', sizeof(seg->roots[sy].name));
	atomic_store(&seg->roots[sz].value, seg->capacity + 4096);
	for (i = 0; i < seg->max_procs && free_proc == UINT32_MAX; i++)
		if (atomic_load(&seg->procs[i].token) == 0)
			free_proc = i;
	assert_true(free_proc != UINT32_MAX);
	for (i = 0; i < seg->max_holds && !h; i++)
		if (seg->holds[i].proc1 == 0)
			h = &seg->holds[i];
	assert_non_null(h);
	h->root = sz;
	h->incarnation = (uint32_t)seg->roots[sz].incarnation;
	h->count = 1;
	h->proc1 = free_proc + 1;

	/* bad state, unterminated name, holds 0 vs 1: corrupt; value:
	 * bad offset; record without a process: dead owner. */
	assert_int_equal(roots_problems(seg, &pb), 5);
	assert_int_equal(pb.corrupt, 3);
	assert_int_equal(pb.badoff, 1);
	assert_int_equal(pb.deadowner, 1);
	assert_true(shg_check(seg, NULL, NULL, NULL) >= 5);

	/* Repair re-derives what it can: x becomes LIVE (it has a name), y's
	 * name is terminated, the orphan record dropped. The value stays. */
	tu_ok(shg__lock(seg, &seg->hdr->root_lock, shg__roots_repair));
	shg__roots_repair(seg);
	shg__unlock(seg, &seg->hdr->root_lock);
	assert_int_equal(atomic_load(&seg->roots[sx].state), SHG_ROOT_LIVE);
	assert_int_equal(seg->roots[sy].name[SHG_ROOT_NAME_MAX], '\0');
	assert_int_equal(h->proc1, 0);
	assert_int_equal(roots_problems(seg, &pb), 1);
	assert_int_equal(pb.badoff, 1);

	atomic_store(&seg->roots[sz].value, 0);
	assert_int_equal(roots_problems(seg, &pb), 0);
	assert_int_equal(shg_root_list(seg, ri, 4), 3);
	tu_destroy(seg, name);
}

/* Duplicate LIVE names (forged) are reported, and repair keeps one. */
static void test_roots_check_duplicate_names(void **state)
{
	struct shg_root_info ri[4];
	struct shg_root *a, *b;
	struct shg_seg *seg;
	struct problems pb;
	char name[64];
	uint32_t sb;

	(void)state;
	seg = create_roots(name, 0);
	tu_ok(shg_root_create(seg, "same", &a));
	tu_ok(shg_root_create(seg, "other", &b));
	shg_root_close(a);
	shg_root_close(b);
	assert_int_equal(shg_root_list(seg, ri, 4), 2);
	sb = info_find(ri, 2, "other")->slot;
	strcpy(seg->roots[sb].name, "same");
	assert_int_equal(roots_problems(seg, &pb), 1);
	assert_int_equal(pb.corrupt, 1);

	tu_ok(shg__lock(seg, &seg->hdr->root_lock, shg__roots_repair));
	shg__roots_repair(seg);
	shg__unlock(seg, &seg->hdr->root_lock);
	/* The next namespace operation (after its listing) finalizes the
	 * duplicate, which has no holds. */
	(void)shg_root_list(seg, ri, 4);
	assert_int_equal(shg_root_list(seg, ri, 4), 1);
	assert_string_equal(ri[0].name, "same");
	assert_int_equal(roots_problems(seg, &pb), 0);
	tu_destroy(seg, name);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roots_create_open_close),
		cmocka_unit_test(test_roots_name_errors),
		cmocka_unit_test(test_roots_table_full),
		cmocka_unit_test(test_roots_holds_full),
		cmocka_unit_test(test_roots_cas_publish),
		cmocka_unit_test(test_roots_cas_race),
		cmocka_unit_test(test_roots_wait_woken_by_publish),
		cmocka_unit_test(test_roots_remove_while_held),
		cmocka_unit_test(test_roots_seg_close_drops_holds),
		cmocka_unit_test(test_roots_dead_holder),
		cmocka_unit_test(test_roots_repair_dead_lock),
		cmocka_unit_test(test_roots_orphaned_lock_taken_over),
		cmocka_unit_test(test_roots_check_forged),
		cmocka_unit_test(test_roots_check_duplicate_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
