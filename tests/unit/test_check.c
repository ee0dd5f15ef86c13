/* SPDX-License-Identifier: MIT */
/*
 * Checker and recovery tests: a sound segment checks clean, damage is
 * reported (never a crash), dead processes are recovered, leaks are counted
 * and swept, and writers killed at random points leave a segment that
 * reopens, recovers and checks clean with every committed value intact.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "testutil.h"

#define VMAGIC 0x56414c5545ull /* "VALUE" */

/* A published value: a header and a pattern derived from it. */
struct value {
	uint64_t magic;
	uint64_t seq;
	uint64_t words; /* pattern words that follow */
	uint64_t pat[];
};

static void on_problem(void *arg, int code, const char *msg)
{
	unsigned *n = arg;

	print_message("  problem %s: %s\n", shg_strerror(code), msg);
	(*n)++;
}

static int check_clean(struct shg_seg *seg, struct shg_check_report *rep)
{
	unsigned seen = 0;
	int n = shg_check(seg, on_problem, &seen, rep);

	assert_int_equal((unsigned)n, seen);
	return n;
}

static bool value_whole(struct shg_seg *seg, struct shg_off off)
{
	const struct value *v = shg_ptr(seg, off, sizeof(*v));
	uint64_t i;

	if (!v || v->magic != VMAGIC || v->words > 128)
		return false;
	v = shg_ptr(seg, off, sizeof(*v) + v->words * 8);
	if (!v)
		return false;
	for (i = 0; i < v->words; i++)
		if (v->pat[i] != v->seq * 31 + i)
			return false;
	return true;
}

/* Publish a new value on @root; returns 0 or a code. */
static int publish(struct shg_seg *seg, struct shg_root *root, uint64_t seq,
		   unsigned words)
{
	struct shg_off off, old;
	struct value *v;
	unsigned i;
	int err;

	err = shg_alloc(seg, sizeof(*v) + words * 8, &off);
	if (err)
		return err;
	v = shg_ptr(seg, off, sizeof(*v) + words * 8);
	v->magic = VMAGIC;
	v->seq = seq;
	v->words = words;
	for (i = 0; i < words; i++)
		v->pat[i] = seq * 31 + i;
	err = shg_read_lock(seg);
	if (err)
		return err;
	old = shg_root_load(root);
	shg_read_unlock(seg);
	err = shg_root_cas(root, old, off);
	if (err) {
		shg_free(seg, off);
		return err == SHG_ECONFLICT ? 0 : err;
	}
	return shg_off_is_null(old) ? 0 : shg_retire(seg, old);
}

static void test_check_fresh_and_busy_segment_clean(void **state)
{
	struct shg_check_report rep;
	struct shg_root *root;
	struct shg_seg *seg;
	struct shg_off off;
	char name[64];
	int i;

	(void)state;
	seg = tu_create(name, 0);
	assert_int_equal(check_clean(seg, &rep), 0);
	tu_ok(shg_root_create(seg, "r", &root));
	for (i = 0; i < 2000; i++)
		tu_ok(publish(seg, root, (uint64_t)i + 1, (unsigned)(i % 100)));
	tu_ok(shg_alloc(seg, 100000, &off)); /* a large block, in use */
	assert_int_equal(check_clean(seg, &rep), 0);
	assert_true(rep.used_bytes >= 100000);
	assert_true(rep.retired_bytes > 0 || rep.free_bytes > 0);
	tu_ok(shg_synchronize(seg, 0));
	assert_true(shg_reclaim(seg) >= 0);
	assert_int_equal(check_clean(seg, &rep), 0);
	tu_ok(shg_free(seg, off));
	shg_root_close(root);
	tu_destroy(seg, name);
}

static void test_check_reports_damage(void **state)
{
	struct shg_check_report rep;
	struct shg_root *root;
	struct shg_seg *seg;
	char name[64];
	uint64_t saved;

	(void)state;
	seg = tu_create(name, 0);
	tu_ok(shg_root_create(seg, "r", &root));
	tu_ok(publish(seg, root, 1, 4));
	/* Global epoch 0: impossible. */
	saved = atomic_load(&seg->hdr->epoch);
	atomic_store(&seg->hdr->epoch, 0);
	assert_true(check_clean(seg, &rep) > 0);
	atomic_store(&seg->hdr->epoch, saved);
	/* Heap top not span aligned. */
	saved = atomic_load(&seg->hdr->heap_top);
	atomic_store(&seg->hdr->heap_top, saved + 8);
	assert_true(check_clean(seg, &rep) > 0);
	atomic_store(&seg->hdr->heap_top, saved);
	/* A root value that points into the middle of nowhere. */
	saved = atomic_load(&seg->roots[0].value);
	atomic_store(&seg->roots[0].value, seg->capacity - 8);
	assert_true(check_clean(seg, &rep) > 0);
	atomic_store(&seg->roots[0].value, saved);
	/* Back to sound. */
	assert_int_equal(check_clean(seg, &rep), 0);
	shg_root_close(root);
	tu_destroy(seg, name);
}

static void test_check_root_value_retired_is_reported(void **state)
{
	struct shg_check_report rep;
	struct shg_root *root;
	struct shg_seg *seg;
	struct shg_off cur;
	char name[64];

	(void)state;
	seg = tu_create(name, 0);
	tu_ok(shg_root_create(seg, "r", &root));
	tu_ok(publish(seg, root, 1, 4));
	tu_ok(shg_read_lock(seg));
	cur = shg_root_load(root);
	/* A reader holds it, so retiring the live value is detectable
	 * before any reclamation. */
	tu_ok(shg_retire(seg, cur));
	assert_true(check_clean(seg, &rep) > 0);
	shg_read_unlock(seg);
	shg_root_close(root);
	tu_destroy(seg, name);
}

static void test_check_sweep_frees_unreachable(void **state)
{
	struct shg_check_report rep;
	struct shg_root *root;
	struct shg_seg *seg;
	struct shg_off leak[10];
	char name[64];
	int64_t n;
	int i;

	(void)state;
	seg = tu_create(name, 0);
	tu_ok(shg_root_create(seg, "r", &root));
	tu_ok(publish(seg, root, 1, 8));
	for (i = 0; i < 10; i++)
		tu_ok(shg_alloc(seg, 48, &leak[i]));
	n = shg__sweep(seg, NULL, NULL, true);
	assert_int_equal(n, 10 * shg_block_size(seg, leak[0]));
	n = shg__sweep(seg, NULL, NULL, false);
	assert_int_equal(n, 10 * shg_block_size(seg, leak[0]));
	assert_int_equal(shg__sweep(seg, NULL, NULL, true), 0);
	assert_int_equal(check_clean(seg, &rep), 0);
	tu_ok(shg_read_lock(seg));
	assert_true(value_whole(seg, shg_root_load(root)));
	shg_read_unlock(seg);
	shg_root_close(root);
	tu_destroy(seg, name);
}

/* ---- writers killed at random points ---------------------------------- */

struct writer_arg {
	const char *name;
	unsigned seed;
};

static int writer_loop(void *p)
{
	struct writer_arg *a = p;
	struct shg_opts o = { .size = sizeof(o) };
	struct shg_root *root;
	struct shg_seg *seg;
	uint64_t seq = (uint64_t)getpid() << 32;
	unsigned seed = a->seed;

	if (shg_seg_open(a->name, &o, &seg) || shg_root_open(seg, "r", &root))
		return 2;
	for (;;) {
		struct shg_off junk;
		int err = publish(seg, root, ++seq, rand_r(&seed) % 120);

		if (err && err != SHG_ECONFLICT)
			return 3;
		/* Some plain allocator traffic, large blocks too. */
		if (rand_r(&seed) % 8 == 0 &&
		    shg_alloc(seg, 1 + rand_r(&seed) % 70000, &junk) == 0)
			shg_free(seg, junk);
		if (rand_r(&seed) % 64 == 0)
			(void)shg_reclaim(seg);
		if (rand_r(&seed) % 512 == 0 && shg_synchronize(seg, 1000))
			return 4;
	}
}

static void test_check_killed_writers_recover_clean(void **state)
{
	struct shg_opts o = { .size = sizeof(o) };
	struct shg_check_report rep;
	struct shg_recover_report rr;
	struct shg_root *root;
	struct shg_seg *seg, *seg2;
	struct writer_arg wa[2];
	char name[64];
	unsigned seed = (unsigned)time(NULL);
	int64_t leaked = 0, n;
	int round, i;

	(void)state;
	print_message("  seed %u\n", seed);
	seg = tu_create(name, 32u << 20);
	tu_ok(shg_root_create(seg, "r", &root));
	tu_ok(publish(seg, root, 1, 8));
	for (round = 0; round < 40; round++) {
		pid_t pid[2];

		for (i = 0; i < 2; i++) {
			wa[i].name = name;
			wa[i].seed = seed + (unsigned)(round * 2 + i);
			pid[i] = tu_fork(writer_loop, &wa[i]);
		}
		usleep(2000 + (useconds_t)(rand_r(&seed) % 20000));
		for (i = 0; i < 2; i++) {
			kill(pid[i], SIGKILL);
			assert_int_equal(tu_wait(pid[i]), 128 + SIGKILL);
		}
		/* The segment reopens after the crash. */
		tu_ok(shg_seg_open(name, &o, &seg2));
		shg_seg_close(seg2);
		tu_ok(shg_recover(seg, &rr));
		assert_int_equal(check_clean(seg, &rep), 0);
		assert_int_equal(rep.dead_procs, 0);
		assert_int_equal(rep.dead_threads, 0);
		/* What the dead had allocated but not published is leaked:
		 * counted, then swept (writers are all dead: quiescent). */
		n = shg__sweep(seg, NULL, NULL, false);
		assert_true(n >= 0);
		leaked += n;
		assert_int_equal(shg__sweep(seg, NULL, NULL, true), 0);
		assert_int_equal(check_clean(seg, &rep), 0);
		/* The last acknowledged commit is whole. */
		tu_ok(shg_read_lock(seg));
		assert_true(value_whole(seg, shg_root_load(root)));
		shg_read_unlock(seg);
	}
	print_message("  40 rounds: %lld leaked bytes recovered by sweeps\n",
		      (long long)leaked);
	/* Still fully usable. */
	for (i = 0; i < 1000; i++)
		tu_ok(publish(seg, root, (uint64_t)i + 2, 16));
	tu_ok(shg_synchronize(seg, 0));
	assert_true(shg_reclaim(seg) >= 0);
	assert_int_equal(check_clean(seg, &rep), 0);
	shg_root_close(root);
	tu_destroy(seg, name);
}

/*
 * Corrupt data is reported through SHG_CORRUPT(): the call returns
 * SHG_ECORRUPT and the place that found it is recorded for this thread.
 */
static void test_check_corrupt_records_where(void **state)
{
	struct shg_seg *seg;
	struct shg_off blk;
	const char *file = NULL;
	uint64_t u;
	char name[64];
	int line = 0, err;

	(void)state;
	tu_shm_name(name, sizeof(name), "corrupt");
	tu_ok(shg_seg_create(name, NULL, &seg));
	tu_ok(shg_alloc(seg, 64, &blk));
	memset(shg_ptr(seg, blk, 64), 0xa5, 64); /* no node header */
	tu_ok(shg_read_lock(seg));
	err = shg_get_u64(seg, blk, 0, &u);
	shg_read_unlock(seg);
	assert_int_equal(err, SHG_ECORRUPT);
	assert_true(shg__corrupt_where(&file, &line));
	assert_non_null(strstr(file, ".c"));
	assert_true(line > 0);
	tu_ok(shg_seg_close(seg));
	tu_ok(shg_seg_unlink(name));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_check_fresh_and_busy_segment_clean),
		cmocka_unit_test(test_check_corrupt_records_where),
		cmocka_unit_test(test_check_reports_damage),
		cmocka_unit_test(test_check_root_value_retired_is_reported),
		cmocka_unit_test(test_check_sweep_frees_unreachable),
		cmocka_unit_test(test_check_killed_writers_recover_clean),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
