/* SPDX-License-Identifier: MIT */
/*
 * Tests of the epoch layer: read sections and nesting, grace periods that
 * wait for readers in other processes (both flavors), deferred frees that
 * wait for them, dead and forged reader slots, the retire budget and the
 * stalled-reader report, adoption of a dead thread's retire batches, the
 * crash windows of the retire lists, and a short multi-process torture.
 */
#include "testutil.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "limbo.h"
#include "torture_core.h"
#define PATTERN 0x5a

static const int flavor_fence = SHG_FLAVOR_FENCE;
static const int flavor_memb = SHG_FLAVOR_MEMBARRIER;

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* The flavor a test runs with (cmocka prestate), skipping if unusable. */
static int test_flavor(void **state)
{
	int flavor = *state ? *(const int *)*state : SHG_FLAVOR_FENCE;

	if (flavor == SHG_FLAVOR_MEMBARRIER && !shg__membarrier_supported()) {
		printf("skip: membarrier(GLOBAL_EXPEDITED) not available here\n");
		skip();
	}
	return flavor;
}

static struct shg_seg *make_seg(char *name, int flavor, uint64_t cap,
				uint64_t budget)
{
	struct shg_opts o = { .size = sizeof(o) };
	struct shg_seg *seg = NULL;

	o.capacity = cap ? cap : (64u << 20);
	o.flavor = flavor;
	o.retire_budget = budget;
	tu_shm_name(name, 64, "epoch");
	tu_ok(shg_seg_create(name, &o, &seg));
	assert_non_null(seg);
	return seg;
}

static uint64_t hdr_load(_Atomic uint64_t *p)
{
	return atomic_load(p);
}

/* An allocated block filled with PATTERN. */
static struct shg_off new_block(struct shg_seg *seg, size_t size)
{
	struct shg_off off;
	void *p;

	tu_ok(shg_alloc(seg, size, &off));
	p = shg_ptr(seg, off, size);
	assert_non_null(p);
	memset(p, PATTERN, size);
	return off;
}

/* ---- child processes ------------------------------------------------- */

struct kid {
	const char *name;
	int flavor;
	int ready[2]; /* child -> parent: one byte when in place */
	int go[2]; /* parent -> child: one byte to leave */
	uint64_t watch; /* block whose PATTERN the child checks, or 0 */
	size_t watch_len;
	unsigned hold_ms; /* time inside the section; 0: until told */
	unsigned nretire; /* retire-child: blocks to retire */
};

static void kid_init(struct kid *k, const char *name, int flavor)
{
	memset(k, 0, sizeof(*k));
	k->name = name;
	k->flavor = flavor;
	assert_int_equal(pipe(k->ready), 0);
	assert_int_equal(pipe(k->go), 0);
}

static void kid_done(struct kid *k)
{
	close(k->ready[0]);
	close(k->ready[1]);
	close(k->go[0]);
	close(k->go[1]);
}

static void kid_wait_ready(struct kid *k)
{
	char c = 0;

	assert_int_equal(read(k->ready[0], &c, 1), 1);
}

static void kid_go(struct kid *k)
{
	assert_int_equal(write(k->go[1], "g", 1), 1);
}

/* In the child: keep only our pipe ends (so a parent that gives up makes
 * our reads return EOF), never outlive a stuck test, open the segment. */
static struct shg_seg *kid_open(struct kid *k)
{
	struct shg_opts o = { .size = sizeof(o) };
	struct shg_seg *seg = NULL;

	close(k->ready[0]);
	close(k->go[1]);
	alarm(30);
	o.flavor = k->flavor;
	if (shg_seg_open(k->name, &o, &seg))
		return NULL;
	return seg;
}

/* Whether the watched block still holds PATTERN everywhere. */
static bool kid_block_ok(struct shg_seg *seg, struct kid *k)
{
	const volatile uint8_t *p;
	size_t i;

	if (!k->watch)
		return true;
	p = shg_ptr(seg, (struct shg_off){ k->watch }, k->watch_len);
	if (!p)
		return false;
	for (i = 0; i < k->watch_len; i++)
		if (p[i] != PATTERN)
			return false;
	return true;
}

/*
 * Reader child: enter a read section, say so, stay for hold_ms (checking
 * the watched block every millisecond) or until told, leave.
 * Exit 0 when the block stayed intact.
 */
static int reader_kid(void *arg)
{
	struct kid *k = arg;
	struct shg_seg *seg = kid_open(k);
	uint64_t end;
	int rc = 0;
	char c;

	if (!seg)
		return 2;
	if (shg_read_lock(seg))
		return 3;
	if (!kid_block_ok(seg, k))
		rc = 4;
	if (write(k->ready[1], "r", 1) != 1)
		return 5;
	if (k->hold_ms) {
		end = now_ms() + k->hold_ms;
		while (now_ms() < end) {
			if (!kid_block_ok(seg, k))
				rc = 6;
			usleep(1000);
		}
	} else if (read(k->go[0], &c, 1) != 1) {
		rc = 7;
	}
	if (!kid_block_ok(seg, k))
		rc = 8;
	shg_read_unlock(seg);
	shg_seg_close(seg);
	return rc;
}

/* Retire child: retire nretire fresh blocks (no seal), then wait. */
static int retire_kid(void *arg)
{
	struct kid *k = arg;
	struct shg_seg *seg = kid_open(k);
	struct shg_off off;
	unsigned i;
	char c;

	if (!seg)
		return 2;
	for (i = 0; i < k->nretire; i++) {
		if (shg_alloc(seg, 128, &off) || shg_retire(seg, off))
			return 3;
	}
	if (write(k->ready[1], "r", 1) != 1)
		return 4;
	if (read(k->go[0], &c, 1) != 1)
		return 5;
	return 0;
}

/* The reader list entry of @pid, or NULL. */
static const struct shg_reader_info *
find_reader(const struct shg_reader_info *v, int n, pid_t pid)
{
	int i;

	for (i = 0; i < n; i++)
		if (v[i].pid == pid)
			return &v[i];
	return NULL;
}

/* ---- single-process behaviour ----------------------------------------- */

static void test_epoch_nesting(void **state)
{
	char name[64];
	struct shg_seg *seg = make_seg(name, test_flavor(state), 0, 0);
	struct shg_reader_info ri[8];
	struct shg_thread *t;
	uint64_t e;
	int n;

	assert_false(shg_read_locked(seg));
	tu_ok(shg_read_lock(seg));
	e = atomic_load(&seg->hdr->epoch);
	tu_ok(shg_read_lock(seg));
	tu_ok(shg_thread_get(seg, &t));
	shg_thread_read_lock(t);
	assert_true(shg_read_locked(seg));
	n = shg_reader_list(seg, ri, 8);
	assert_int_equal(n, 1);
	assert_true(ri[0].in_section);
	assert_true(ri[0].alive);
	assert_int_equal(ri[0].pid, getpid());
	assert_int_equal(ri[0].epoch, e);
	shg_thread_read_unlock(t);
	shg_read_unlock(seg);
	assert_true(shg_read_locked(seg)); /* still one level deep */
	assert_int_equal(shg_synchronize(seg, 0), SHG_ENESTED);
	shg_read_unlock(seg);
	assert_false(shg_read_locked(seg));
	shg_read_unlock(seg); /* unbalanced: ignored */
	assert_false(shg_read_locked(seg));
	n = shg_reader_list(seg, ri, 8);
	assert_int_equal(n, 1);
	assert_false(ri[0].in_section);
	assert_int_equal(ri[0].epoch_lag, 0);
	tu_destroy(seg, name);
}

static void test_epoch_synchronize_no_readers(void **state)
{
	char name[64];
	struct shg_seg *seg = make_seg(name, test_flavor(state), 0, 0);
	uint64_t e0 = atomic_load(&seg->hdr->epoch), t0;
	int i;

	t0 = now_ms();
	for (i = 0; i < 100; i++)
		tu_ok(shg_synchronize(seg, 0));
	assert_true(now_ms() - t0 < 1000);
	assert_true(atomic_load(&seg->hdr->epoch) >= e0 + 100);
	tu_destroy(seg, name);
}

static void test_epoch_synchronize_nested(void **state)
{
	char name[64];
	struct shg_seg *seg = make_seg(name, test_flavor(state), 0, 0);

	tu_ok(shg_read_lock(seg));
	assert_int_equal(shg_synchronize(seg, 0), SHG_ENESTED);
	assert_int_equal(shg_synchronize(seg, 10), SHG_ENESTED);
	shg_read_unlock(seg);
	tu_ok(shg_synchronize(seg, 0));
	tu_destroy(seg, name);
}

static void test_epoch_retire_reclaim(void **state)
{
	char name[64];
	struct shg_seg *seg = make_seg(name, test_flavor(state), 0, 0);
	struct shg_hdr *h = seg->hdr;
	uint64_t sum = 0, rb0, rk0;
	struct shg_off offs[100];
	int i;

	assert_int_equal(shg_retire(seg, SHG_OFF_NULL), SHG_EBADOFF);
	assert_int_equal(shg_retire(seg, (struct shg_off){ 8 }), SHG_EBADOFF);
	rb0 = hdr_load(&h->reclaimed_bytes);
	rk0 = hdr_load(&h->reclaimed_blocks);
	for (i = 0; i < 100; i++) {
		offs[i] = new_block(seg, 64 + 8 * (size_t)i);
		sum += shg_block_size(seg, offs[i]);
		tu_ok(shg_retire(seg, offs[i]));
	}
	/* Open batch: counted in the batch, not yet in the sealed total. */
	assert_int_equal(shg__retired_total(seg), sum);
	assert_int_equal(hdr_load(&h->retired_bytes), 0);
	/* Nothing is freed before it is sealed. */
	assert_int_equal(shg_reclaim(seg), 0);
	assert_int_equal(shg__retired_total(seg), sum);
	tu_ok(shg_synchronize(seg, 0)); /* seal, wait, reclaim */
	assert_int_equal(hdr_load(&h->retired_bytes), 0);
	assert_int_equal(hdr_load(&h->reclaimed_bytes) - rb0, sum);
	assert_int_equal(hdr_load(&h->reclaimed_blocks) - rk0, 100);

	/* A full batch seals itself and is reclaimed by the next pass. */
	rk0 = hdr_load(&h->reclaimed_blocks);
	for (i = 0; i < (int)BATCH_CAP + 10; i++)
		tu_ok(shg_retire(seg, new_block(seg, 32)));
	assert_true(hdr_load(&h->reclaimed_blocks) - rk0 >= BATCH_CAP);
	tu_ok(shg_synchronize(seg, 0));
	assert_int_equal(hdr_load(&h->retired_bytes), 0);
	assert_int_equal(hdr_load(&h->reclaimed_blocks) - rk0, BATCH_CAP + 10);
	tu_destroy(seg, name);
}

/*
 * The pass after a seal: every seal reclaims in the fence flavor; in the
 * membarrier flavor a thread skips it for a millisecond after its last
 * one (each costs a membarrier() IPI to every reader's CPU), but never
 * once the sealed bytes reach a quarter of the budget. With no reader a
 * pass frees everything sealed, so the sealed total stays below a quarter
 * of the budget plus one batch (fence: one batch), and retires never wait.
 */
static void test_epoch_seal_passes_bounded(void **state)
{
	const uint64_t budget = 256u << 10, batch = (uint64_t)BATCH_CAP * 32;
	int flavor = test_flavor(state);
	char name[64];
	struct shg_seg *seg = make_seg(name, flavor, 0, budget);
	struct shg_hdr *h = seg->hdr;
	uint64_t max = 0, r, rk0 = hdr_load(&h->reclaimed_blocks);
	int i;

	for (i = 0; i < 200 * (int)BATCH_CAP; i++) {
		tu_ok(shg_retire(seg, new_block(seg, 32)));
		r = hdr_load(&h->retired_bytes);
		if (r > max)
			max = r;
	}
	print_message(
		"%s: most sealed bytes waiting %llu (budget %llu), "
		"%llu blocks reclaimed by the seals' passes\n",
		flavor == SHG_FLAVOR_FENCE ? "fence" : "membarrier",
		(unsigned long long)max, (unsigned long long)budget,
		(unsigned long long)(hdr_load(&h->reclaimed_blocks) - rk0));
	assert_true(max <=
		    (flavor == SHG_FLAVOR_FENCE ? batch : budget / 4 + batch));
	tu_ok(shg_synchronize(seg, 0));
	assert_int_equal(hdr_load(&h->retired_bytes), 0);
	assert_int_equal(hdr_load(&h->reclaimed_blocks) - rk0, 200 * BATCH_CAP);
	tu_destroy(seg, name);
}

/* ---- readers in other processes --------------------------------------- */

static void test_epoch_synchronize_waits_for_process(void **state)
{
	int flavor = test_flavor(state);
	char name[64];
	struct shg_seg *seg = make_seg(name, flavor, 0, 0);
	struct shg_off blk = new_block(seg, 256);
	struct kid k;
	uint64_t t0, dt;
	pid_t pid;

	kid_init(&k, name, flavor);
	k.watch = blk.v;
	k.watch_len = 256;
	k.hold_ms = 200;
	pid = tu_fork(reader_kid, &k);
	kid_wait_ready(&k);
	tu_ok(shg_retire(seg, blk));
	t0 = now_ms();
	tu_ok(shg_synchronize(seg, 0));
	dt = now_ms() - t0;
	assert_true(dt >= 150);
	assert_int_equal(tu_wait(pid), 0); /* the block stayed intact */
	assert_int_equal(atomic_load(&seg->hdr->retired_bytes), 0);
	kid_done(&k);
	tu_destroy(seg, name);
}

static void test_epoch_reclaim_waits_for_process(void **state)
{
	int flavor = test_flavor(state);
	char name[64];
	struct shg_seg *seg = make_seg(name, flavor, 0, 0);
	struct shg_hdr *h = seg->hdr;
	struct shg_off blk[50];
	uint64_t sum = 0, rb0;
	struct kid k;
	pid_t pid;
	int i;

	kid_init(&k, name, flavor);
	blk[0] = new_block(seg, 512);
	k.watch = blk[0].v;
	k.watch_len = 512;
	pid = tu_fork(reader_kid, &k);
	kid_wait_ready(&k);
	for (i = 0; i < 50; i++) {
		if (i)
			blk[i] = new_block(seg, 512);
		sum += shg_block_size(seg, blk[i]);
		tu_ok(shg_retire(seg, blk[i]));
	}
	/* Seal and wait a little: the reader that began before stalls it. */
	assert_int_equal(shg_synchronize(seg, 50), SHG_EBUDGET);
	assert_int_equal(seg->stalled_pid, pid);
	rb0 = hdr_load(&h->reclaimed_bytes);
	for (i = 0; i < 5; i++) {
		assert_int_equal(shg_reclaim(seg), 0);
		usleep(2000);
	}
	assert_int_equal(hdr_load(&h->retired_bytes), sum);
	assert_int_equal(hdr_load(&h->reclaimed_bytes), rb0);
	for (i = 0; i < 50; i++)
		assert_true(shg_block_size(seg, blk[i]) > 0);
	kid_go(&k);
	assert_int_equal(tu_wait(pid), 0);
	/* The reader's own exit pass may have freed them already. */
	assert_true(shg_reclaim(seg) <= (int64_t)sum);
	assert_int_equal(hdr_load(&h->retired_bytes), 0);
	assert_int_equal(hdr_load(&h->reclaimed_bytes) - rb0, sum);
	kid_done(&k);
	tu_destroy(seg, name);
}

static void test_epoch_killed_reader(void **state)
{
	int flavor = test_flavor(state);
	char name[64];
	struct shg_seg *seg = make_seg(name, flavor, 0, 0);
	struct shg_reader_info ri[16];
	struct kid k;
	uint64_t t0;
	pid_t pid;
	int i, n;

	kid_init(&k, name, flavor);
	pid = tu_fork(reader_kid, &k); /* stays until killed */
	kid_wait_ready(&k);
	for (i = 0; i < 20; i++)
		tu_ok(shg_retire(seg, new_block(seg, 100)));
	assert_int_equal(shg_synchronize(seg, 30), SHG_EBUDGET);
	assert_int_equal(shg_reclaim(seg), 0);
	assert_true(atomic_load(&seg->hdr->retired_bytes) > 0);
	n = shg_reader_list(seg, ri, 16);
	assert_non_null(find_reader(ri, n, pid));
	assert_true(find_reader(ri, n, pid)->in_section);

	kill(pid, SIGKILL);
	assert_int_equal(tu_wait(pid), 128 + SIGKILL);
	t0 = now_ms();
	tu_ok(shg_synchronize(seg, 5000));
	assert_true(now_ms() - t0 < 4000);
	assert_int_equal(atomic_load(&seg->hdr->retired_bytes), 0);
	n = shg_reader_list(seg, ri, 16);
	assert_null(find_reader(ri, n, pid));
	kid_done(&k);
	tu_destroy(seg, name);
}

/* A dead reader blocks plain reclaim passes only until its check. */
static void test_epoch_killed_reader_reclaim(void **state)
{
	char name[64];
	struct shg_seg *seg = make_seg(name, SHG_FLAVOR_FENCE, 0, 0);
	struct kid k;
	uint64_t t0;
	pid_t pid;
	int i;

	(void)state;
	kid_init(&k, name, SHG_FLAVOR_FENCE);
	pid = tu_fork(reader_kid, &k);
	kid_wait_ready(&k);
	for (i = 0; i < 20; i++)
		tu_ok(shg_retire(seg, new_block(seg, 100)));
	assert_int_equal(shg_synchronize(seg, 10), SHG_EBUDGET);
	kill(pid, SIGKILL);
	(void)tu_wait(pid);
	t0 = now_ms();
	while (atomic_load(&seg->hdr->retired_bytes) && now_ms() - t0 < 3000) {
		(void)shg_reclaim(seg);
		usleep(5000);
	}
	assert_int_equal(atomic_load(&seg->hdr->retired_bytes), 0);
	kid_done(&k);
	tu_destroy(seg, name);
}

static void test_epoch_recycled_pid_slot(void **state)
{
	char name[64];
	struct shg_seg *seg = make_seg(name, test_flavor(state), 0, 0);
	uint64_t tok, t0;
	uint32_t p, t;

	tu_ok(shg_thread_register(seg));
	for (p = 0; p < seg->max_procs; p++)
		if (!atomic_load(&seg->procs[p].token))
			break;
	for (t = 0; t < seg->max_threads; t++)
		if (!atomic_load(&seg->threads[t].owner))
			break;
	assert_true(p < seg->max_procs && t < seg->max_threads);
	/* Our pid, a slot nobody holds: a dead previous owner. */
	tok = shg__new_token(); /* our pid, but no OFD lock: dead */
	seg->procs[p].pid = (int32_t)getpid();
	seg->procs[p].flavor = SHG_FLAVOR_FENCE;
	seg->procs[p].attached_ns = shg__realtime_ns();
	atomic_store(&seg->procs[p].token, tok);
	seg->threads[t].proc = p;
	atomic_store(&seg->threads[t].epoch, atomic_load(&seg->hdr->epoch));
	atomic_store(&seg->threads[t].owner, tok);
	assert_false(shg__tslot_alive(seg, t));

	t0 = now_ms();
	tu_ok(shg_synchronize(seg, 5000));
	assert_true(now_ms() - t0 < 2000);
	assert_int_equal(atomic_load(&seg->threads[t].owner), 0);
	assert_int_equal(atomic_load(&seg->threads[t].epoch), 0);
	assert_int_equal(atomic_load(&seg->procs[p].token), 0);
	tu_destroy(seg, name);
}

static void test_epoch_budget_stalled_reader(void **state)
{
	int flavor = test_flavor(state);
	char name[64];
	struct shg_seg *seg = make_seg(name, flavor, 0, 1);
	struct shg_reader_info ri[16];
	const struct shg_reader_info *r;
	uint64_t bytes = 0;
	pid_t pid, who = 0;
	struct kid k;
	int i, n;

	tu_ok(shg_budget_check(seg, 10)); /* nothing retired */
	assert_false(shg_stalled_reader(seg, &who, &bytes));
	kid_init(&k, name, flavor);
	pid = tu_fork(reader_kid, &k);
	kid_wait_ready(&k);
	for (i = 0; i < 20; i++)
		tu_ok(shg_retire(seg, new_block(seg, 200)));
	assert_int_equal(shg_budget_check(seg, 100), SHG_EBUDGET);
	assert_true(shg_stalled_reader(seg, &who, &bytes));
	assert_int_equal(who, pid);
	assert_true(bytes > 0);
	assert_int_equal(seg->stalled_pid, pid);
	n = shg_reader_list(seg, ri, 16);
	r = find_reader(ri, n, pid);
	assert_non_null(r);
	assert_true(r->alive && r->in_section);
	assert_true(r->epoch_lag > 0);
	assert_true(r->blocked_ns > 0);
	assert_true(r->held_bytes > 0);
	assert_int_equal(r->flavor, flavor);

	kid_go(&k);
	assert_int_equal(tu_wait(pid), 0);
	tu_ok(shg_budget_check(seg, 100));
	assert_false(shg_stalled_reader(seg, &who, &bytes));
	assert_int_equal(atomic_load(&seg->hdr->retired_bytes), 0);
	kid_done(&k);
	tu_destroy(seg, name);
}

static void test_epoch_adopt_dead_thread(void **state)
{
	char name[64];
	struct shg_seg *seg = make_seg(name, SHG_FLAVOR_FENCE, 0, 0);
	struct shg_recover_report rep;
	uint64_t retired;
	struct kid k;
	pid_t pid;

	(void)state;
	kid_init(&k, name, SHG_FLAVOR_FENCE);
	k.nretire = 10;
	pid = tu_fork(retire_kid, &k);
	kid_wait_ready(&k);
	retired = shg__retired_total(seg);
	assert_true(retired >= 10 * 128);
	kill(pid, SIGKILL);
	assert_int_equal(tu_wait(pid), 128 + SIGKILL);
	/* Its batch is open and unsealed: reclaim cannot see it yet. */
	assert_int_equal(shg_reclaim(seg), 0);
	memset(&rep, 0, sizeof(rep));
	tu_ok(shg__release_dead(seg, &rep));
	assert_int_equal(rep.retired_adopted, retired);
	assert_true(rep.threads_released >= 1);
	assert_int_equal(shg_reclaim(seg), (int64_t)retired);
	assert_int_equal(atomic_load(&seg->hdr->retired_bytes), 0);
	kid_done(&k);
	tu_destroy(seg, name);
}

/* A thread that exits seals its open batch and frees it in its exit pass
 * (no reader is in a section). */
static void *retire_thread(void *arg)
{
	struct shg_seg *seg = arg;
	struct shg_off off;
	int i;

	for (i = 0; i < 7; i++) {
		if (shg_alloc(seg, 48, &off) || shg_retire(seg, off))
			return (void *)1;
	}
	return NULL;
}

static void test_epoch_thread_exit_seals(void **state)
{
	char name[64];
	struct shg_seg *seg = make_seg(name, SHG_FLAVOR_FENCE, 0, 0);
	pthread_t th;
	void *rv = (void *)2;

	(void)state;
	assert_int_equal(pthread_create(&th, NULL, retire_thread, seg), 0);
	assert_int_equal(pthread_join(th, &rv), 0);
	assert_null(rv);
	assert_int_equal(atomic_load(&seg->hdr->retired_bytes), 0);
	assert_true(atomic_load(&seg->hdr->reclaimed_bytes) >= 7 * 48);
	assert_int_equal(shg_reclaim(seg), 0);
	tu_destroy(seg, name);
}

/* ---- heap exhausted --------------------------------------------------- */

static void test_epoch_retire_without_memory(void **state)
{
	char name[64];
	struct shg_seg *seg =
		make_seg(name, SHG_FLAVOR_FENCE, SHG_MIN_CAPACITY, 0);
	struct shg_off off, x = SHG_OFF_NULL;
	uint8_t *p;
	uint64_t rk0;
	int err, n = 0;

	(void)state;
	while ((err = shg_alloc(seg, SHG_BATCH_BYTES, &off)) == 0) {
		x = off; /* the last one: its span is the allocating one */
		assert_true(++n < 100000);
	}
	assert_true(err == SHG_ECAPACITY || err == -ENOSPC);
	assert_true(n > 1);
	p = shg_ptr(seg, x, SHG_BATCH_BYTES);
	assert_non_null(p);
	memset(p, PATTERN, SHG_BATCH_BYTES);
	/* Inside a section no batch can be had and no wait is allowed: the
	 * block stays the caller's. */
	tu_ok(shg_read_lock(seg));
	err = shg_retire(seg, x);
	assert_true(err == SHG_ECAPACITY || err == -ENOSPC);
	assert_true(shg_block_size(seg, x) > 0);
	assert_int_equal(p[8], PATTERN); /* not freed */
	shg_read_unlock(seg);
	/* Outside: wait for a grace period and free at once. */
	rk0 = atomic_load(&seg->hdr->reclaimed_blocks);
	tu_ok(shg_retire(seg, x));
	assert_int_equal(atomic_load(&seg->hdr->reclaimed_blocks) - rk0, 1);
	assert_int_equal(atomic_load(&seg->hdr->retired_bytes), 0);
	assert_int_equal(p[8], 0xDB); /* freed (poisoned) */
	tu_destroy(seg, name);
}

/* Fill the heap with blocks of @size; their offsets go to @v (up to @cap). */
static size_t fill_heap(struct shg_seg *seg, size_t size, struct shg_off *v,
			size_t cap)
{
	struct shg_off o;
	size_t n = 0;

	while (shg_alloc(seg, size, &o) == 0) {
		assert_true(n < cap);
		v[n++] = o;
	}
	return n;
}

/* Values 0..199 at keys 0..199 in the map of version @v (key 7: @k7). */
static void assert_map_intact(struct shg_seg *seg, struct shg_off v,
			      uint64_t k7)
{
	struct shg_version_info vi;
	struct shg_val out;
	uint64_t i;

	tu_ok(shg_version_info(seg, v, &vi));
	for (i = 0; i < 200; i++) {
		tu_ok(shg_map_get_u64(seg, vi.node, i, &out));
		assert_int_equal(out.u64, i == 7 ? k7 : i);
	}
}

/*
 * Defect: a reclaiming batch whose pinned entries could not be moved to
 * held batches (no memory) and could not be held whole (limbo_lock
 * unusable) was freed entirely, pinned nodes included. Now it stays whole
 * in the slot's reclaiming record, and the slot's next pop holds it.
 */
static void test_epoch_hold_without_memory_or_lock(void **state)
{
	struct shg_opts o = { .size = sizeof(o),
			      .capacity = 4u << 20,
			      .flavor = SHG_FLAVOR_FENCE };
	static struct shg_off fill[8192];
	struct shg_val val = { .kind = SHG_KIND_U64 };
	struct shg_seg *seg;
	struct shg_root *r;
	struct shg_txn *txn;
	struct shg_pin *pin;
	struct shg__tctx *ctx;
	struct shg_batch *b;
	struct pass p;
	struct shg_off v1;
	uint64_t bo;
	size_t nf, i;
	uint32_t k, npinned = 0;
	char name[64];
	pid_t pid;

	(void)state;
	tu_shm_name(name, sizeof(name), "holdfail");
	tu_ok(shg_seg_create(name, &o, &seg));
	tu_ok(shg_root_create(seg, "r", &r));
	tu_ok(shg_txn_begin(r, &txn));
	tu_ok(shg_txn_map_new(txn, SHG_REF_ROOT, SHG_KIND_U64, SHG_KIND_U64));
	for (i = 0; i < 200; i++) {
		val.u64 = i;
		tu_ok(shg_txn_map_put_u64(txn, SHG_REF_ROOT, i, &val));
	}
	tu_ok(shg_txn_commit(txn));
	tu_ok(shg_pin_current(r, &pin));
	v1 = shg_pin_version(pin);
	tu_ok(shg_txn_begin(r, &txn));
	val.u64 = 999;
	tu_ok(shg_txn_map_put_u64(txn, SHG_REF_ROOT, 7, &val));
	tu_ok(shg_txn_commit(txn)); /* v1's replaced nodes: open batch */
	tu_ok(shg__tctx_get(seg, &ctx));
	bo = atomic_load(&ctx->slot->limbo_open);
	b = batch_at(seg, bo);
	assert_non_null(b);
	for (k = 0; k < batch_count(b); k++)
		npinned +=
			shg__node_pinned(seg, ent_off(b, k), ent_death(b, k));
	assert_true(npinned > 0);
	/* No memory for a held batch... */
	nf = fill_heap(seg, 65536, fill, 8192);
	nf += fill_heap(seg, SHG_BATCH_BYTES, fill + nf, 8192 - nf);
	/* ... and limbo_lock unusable: its holder died and the EOWNERDEAD
	 * taker did not mark it consistent (ENOTRECOVERABLE). */
	pid = fork();
	if (pid == 0) {
		pthread_mutex_lock(&seg->hdr->limbo_lock);
		_exit(0);
	}
	assert_int_equal(tu_wait(pid), 0);
	assert_int_equal(pthread_mutex_lock(&seg->hdr->limbo_lock), EOWNERDEAD);
	pthread_mutex_unlock(&seg->hdr->limbo_lock);
	assert_true(shg__lock(seg, &seg->hdr->limbo_lock, NULL) != 0);
	/* The batch as a pop leaves it: recorded, grace period over. */
	atomic_store(&ctx->slot->limbo_open, 0);
	atomic_store(&ctx->slot->reclaiming, bo);
	memset(&p, 0, sizeof(p));
	assert_int_equal(shg__finish_batch(seg, ctx, ctx->slot, bo, &p), 0);
	shg__pass_done(&p);
	/* Nothing freed: the batch stays whole, either in the slot's
	 * reclaiming record (the lock still refused) or as a held batch (the
	 * lock's take-over made it usable again by then). */
	assert_true(atomic_load(&ctx->slot->reclaiming) == bo ||
		    shg__held_contains(seg, bo));
	assert_non_null(batch_at(seg, bo));
	assert_map_intact(seg, v1, 7);
	/* The lock becomes usable again (here: re-created, as if a stalled
	 * holder let go) and memory is freed: the next pop of this slot
	 * holds the batch, and the unpin lets everything go. */
	tu_ok(shg__mutex_init(&seg->hdr->limbo_lock));
	for (i = 0; i < nf; i++)
		tu_ok(shg_free(seg, fill[i]));
	tu_ok(shg_txn_begin(r, &txn));
	val.u64 = 1000;
	tu_ok(shg_txn_map_put_u64(txn, SHG_REF_ROOT, 8, &val));
	tu_ok(shg_txn_commit(txn));
	tu_ok(shg_synchronize(seg, 1000)); /* seals, pops: parks the batch */
	assert_int_equal(atomic_load(&ctx->slot->reclaiming), 0);
	assert_map_intact(seg, v1, 7);
	TU_CHECK_SOUND(seg);
	tu_ok(shg_unpin(pin));
	tu_ok(shg_synchronize(seg, 1000));
	(void)shg_reclaim(seg);
	assert_int_equal(shg__held_bytes(seg), 0);
	assert_int_equal(shg__sweep(seg, NULL, NULL, true), 0);
	shg_root_close(r);
	tu_destroy(seg, name);
}

/* ---- retire lists: check, repair, crash windows ----------------------- */

static void count_problem(void *arg, int code, const char *msg)
{
	(void)code;
	(void)msg;
	(*(int *)arg)++;
}

static int limbo_problems(struct shg_seg *seg, struct shg_check_report *rep)
{
	int n = 0;

	memset(rep, 0, sizeof(*rep));
	tu_ok(shg__limbo_check(seg, count_problem, &n, rep));
	return n;
}

static void count_walk(void *arg, uint64_t off)
{
	(void)off;
	(*(uint64_t *)arg)++;
}

static struct shg_batch *batch(struct shg_seg *seg, uint64_t off)
{
	struct shg_batch *b =
		shg_ptr(seg, (struct shg_off){ off }, SHG_BATCH_BYTES);

	assert_non_null(b);
	return b;
}

static void repair(struct shg_seg *seg)
{
	tu_ok(shg__lock(seg, &seg->hdr->limbo_lock, NULL));
	shg__limbo_repair(seg);
	shg__unlock(seg, &seg->hdr->limbo_lock);
}

/* A thread slot owned by a dead token, for adoption tests. */
static uint32_t forge_dead_slot(struct shg_seg *seg)
{
	uint32_t t;

	for (t = 0; t < seg->max_threads; t++)
		if (!atomic_load(&seg->threads[t].owner))
			break;
	assert_true(t < seg->max_threads);
	seg->threads[t].proc = seg->max_procs; /* no process: dead */
	atomic_store(&seg->threads[t].owner, shg__new_token());
	return t;
}

static void test_epoch_limbo_check_repair(void **state)
{
	char name[64];
	struct shg_seg *seg = make_seg(name, SHG_FLAVOR_FENCE, 0, 0);
	struct shg_hdr *h = seg->hdr;
	struct shg_check_report rep;
	struct shg_batch *b1, *b2, *b3;
	uint64_t o1, o2, o3, walked = 0, saved;
	int i;

	(void)state;
	/* Our own section keeps three sealed batches from being freed. */
	tu_ok(shg_read_lock(seg));
	for (i = 0; i < 3 * (int)BATCH_CAP; i++)
		tu_ok(shg_retire(seg, new_block(seg, 16)));
	o1 = h->limbo_head;
	b1 = batch(seg, o1);
	o2 = b1->next;
	b2 = batch(seg, o2);
	o3 = b2->next;
	b3 = batch(seg, o3);
	assert_int_equal(h->limbo_tail, o3);
	assert_int_equal(b3->next, 0);
	assert_true(b1->tag < b2->tag && b2->tag < b3->tag);
	assert_int_equal(b1->count, BATCH_CAP);
	assert_int_equal(limbo_problems(seg, &rep), 0);
	assert_int_equal(rep.retired_bytes, atomic_load(&h->retired_bytes));
	assert_int_equal(rep.retired_bytes, 3 * BATCH_CAP * 16);
	shg__limbo_walk(seg, count_walk, &walked);
	assert_int_equal(walked, 3 * BATCH_CAP + 3);

	/* A cycle is reported (no hang) and cut by repair. */
	b3->next = o1;
	assert_true(limbo_problems(seg, &rep) > 0);
	repair(seg);
	assert_int_equal(b3->next, 0);
	assert_int_equal(limbo_problems(seg, &rep), 0);
	/* A stale tail is fixed. */
	h->limbo_tail = o1;
	assert_true(limbo_problems(seg, &rep) > 0);
	repair(seg);
	assert_int_equal(h->limbo_tail, o3);
	/* A block retired twice is reported. */
	saved = b2->ent[5].off;
	b2->ent[5].off = b1->ent[7].off;
	assert_true(limbo_problems(seg, &rep) > 0);
	b2->ent[5].off = saved;
	assert_int_equal(limbo_problems(seg, &rep), 0);
	shg_read_unlock(seg);
	tu_ok(shg_synchronize(seg, 0));
	assert_int_equal(atomic_load(&h->retired_bytes), 0);
	assert_int_equal(h->limbo_head, 0);
	assert_int_equal(limbo_problems(seg, &rep), 0);
	tu_destroy(seg, name);
}

/*
 * Crash windows of a dead thread's records: a batch both linked and still
 * recorded (seal, pop), a popped batch half freed, an open batch whose
 * bytes were not updated yet. Adoption must neither link nor free twice.
 */
static void test_epoch_adopt_crash_windows(void **state)
{
	char name[64];
	struct shg_seg *seg = make_seg(name, SHG_FLAVOR_FENCE, 0, 0);
	struct shg_hdr *h = seg->hdr;
	struct shg_recover_report rr;
	struct shg_check_report rep;
	struct shg_tslot *d;
	struct shg_batch *b1, *ob;
	uint64_t o1, o2, rk0, sum = 0, last;
	struct shg_off nb;
	uint32_t t;
	int i;

	(void)state;
	tu_ok(shg_read_lock(seg));
	for (i = 0; i < 2 * (int)BATCH_CAP; i++)
		tu_ok(shg_retire(seg, new_block(seg, 16)));
	o1 = h->limbo_head;
	b1 = batch(seg, o1);
	o2 = b1->next;
	t = forge_dead_slot(seg);
	d = &seg->threads[t];

	/* Died after linking (seal) / before unlinking (pop). */
	atomic_store(&d->limbo_open, o2);
	atomic_store(&d->reclaiming, o1);
	memset(&rr, 0, sizeof(rr));
	shg__limbo_adopt(seg, t, &rr);
	assert_int_equal(atomic_load(&d->limbo_open), 0);
	assert_int_equal(atomic_load(&d->reclaiming), 0);
	assert_int_equal(h->limbo_head, o1);
	assert_int_equal(b1->next, o2);
	assert_int_equal(h->limbo_tail, o2);
	assert_int_equal(limbo_problems(seg, &rep), 0);

	/* Died while freeing a popped batch (half done), with an open batch
	 * whose last entry is counted but not yet in its bytes. */
	tu_ok(shg__lock(seg, &h->limbo_lock, NULL));
	h->limbo_head = o2;
	atomic_store(&d->reclaiming, o1);
	atomic_fetch_sub(&h->retired_bytes, b1->bytes); /* as pop does */
	shg__unlock(seg, &h->limbo_lock);
	b1->count = BATCH_CAP / 2; /* the upper half is "already freed" */
	for (i = BATCH_CAP / 2; i < (int)BATCH_CAP; i++)
		tu_ok(shg_free(seg, (struct shg_off){ b1->ent[i].off }));
	tu_ok(shg_alloc(seg, SHG_BATCH_BYTES, &nb));
	ob = batch(seg, nb.v);
	memset(ob, 0, SHG_BATCH_BYTES);
	ob->cap = BATCH_CAP;
	for (i = 0; i < 5; i++) {
		ob->ent[i].off = new_block(seg, 80).v;
		sum += shg_block_size(seg, (struct shg_off){ ob->ent[i].off });
	}
	ob->count = 5;
	last = shg_block_size(seg, (struct shg_off){ ob->ent[4].off });
	ob->bytes = sum - last;
	atomic_store(&d->limbo_open, nb.v);
	rk0 = atomic_load(&h->reclaimed_blocks);
	memset(&rr, 0, sizeof(rr));
	shg__limbo_adopt(seg, t, &rr);
	assert_int_equal(atomic_load(&h->reclaimed_blocks) - rk0,
			 BATCH_CAP / 2);
	assert_int_equal(atomic_load(&d->reclaiming), 0);
	assert_int_equal(atomic_load(&d->limbo_open), 0);
	assert_int_equal(h->limbo_tail, nb.v);
	assert_int_equal(ob->bytes, sum);
	assert_true(rr.retired_adopted >= sum);
	assert_int_equal(limbo_problems(seg, &rep), 0);
	shg_read_unlock(seg);
	tu_ok(shg__release_dead(seg, NULL)); /* drop the forged slot */
	tu_ok(shg_synchronize(seg, 0));
	assert_int_equal(atomic_load(&h->retired_bytes), 0);
	assert_int_equal(limbo_problems(seg, &rep), 0);
	tu_destroy(seg, name);
}

/* ---- torture ---------------------------------------------------------- */

static void run_torture(bool kill_readers)
{
	struct tt_opts o = { .seconds = 2, .readers = 2, .writers = 1 };
	struct tt_result r;
	int rc;

	o.kill_readers = kill_readers;
	o.capacity = 64u << 20;
	rc = tt_run(&o, &r);
	tt_print(stdout, kill_readers ? "torture-kill" : "torture", &r);
	assert_int_equal(r.errors, 0);
	assert_int_equal(r.writer_errors, 0);
	assert_int_equal(r.check_problems, 0);
	assert_int_equal(r.final_retired, 0);
	assert_true(r.reads > 0 && r.writes > 0);
	assert_int_equal(rc, 0);
}

static void test_epoch_torture(void **state)
{
	(void)state;
	run_torture(false);
}

static void test_epoch_torture_kill(void **state)
{
	(void)state;
	run_torture(true);
}

#define BOTH(fn)                                              \
	cmocka_unit_test_prestate(fn, (void *)&flavor_fence), \
		cmocka_unit_test_prestate(fn, (void *)&flavor_memb)

int main(void)
{
	const struct CMUnitTest tests[] = {
		BOTH(test_epoch_nesting),
		BOTH(test_epoch_synchronize_no_readers),
		cmocka_unit_test(test_epoch_synchronize_nested),
		cmocka_unit_test(test_epoch_retire_reclaim),
		BOTH(test_epoch_seal_passes_bounded),
		BOTH(test_epoch_synchronize_waits_for_process),
		BOTH(test_epoch_reclaim_waits_for_process),
		BOTH(test_epoch_killed_reader),
		cmocka_unit_test(test_epoch_killed_reader_reclaim),
		cmocka_unit_test(test_epoch_recycled_pid_slot),
		BOTH(test_epoch_budget_stalled_reader),
		cmocka_unit_test(test_epoch_adopt_dead_thread),
		cmocka_unit_test(test_epoch_thread_exit_seals),
		cmocka_unit_test(test_epoch_retire_without_memory),
		cmocka_unit_test(test_epoch_hold_without_memory_or_lock),
		cmocka_unit_test(test_epoch_limbo_check_repair),
		cmocka_unit_test(test_epoch_adopt_crash_windows),
		cmocka_unit_test(test_epoch_torture),
		cmocka_unit_test(test_epoch_torture_kill),
	};

	/* Freed blocks are filled with 0xDB: a reader that checks a block's
	 * pattern notices a premature free. */
	setenv("SHG_DEBUG_POISON", "1", 1);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
