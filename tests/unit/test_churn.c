/* SPDX-License-Identifier: MIT */
/*
 * Churn: many short-lived processes, each attaching, committing a little
 * and leaving, the way shell scripts, prefork workers and CGI-style tools
 * use a segment. What a process that closes cleanly leaves must not wait
 * for a recover: its retired blocks are freed by its own exit pass (or the
 * next writer's), its partly used spans are reused by later processes.
 *
 *  - test_churn_clean_exits_leave_nothing: 300 processes in sequence each
 *    put one key of an 8-key map and close. After the first 60, backed
 *    and used bytes stay where they were, nothing stays retired (no reader
 *    holds a section), and reclamation counted every replaced node.
 *  - test_churn_bounded_under_reader: the same with a reader process in
 *    read sections all the time: retired bytes stay within one grace
 *    period's worth of garbage (a few commits), backed stays flat.
 *  - test_churn_killed_writers_leak_nothing: two writer processes commit
 *    flat out while the test kills one of them with SIGKILL at random
 *    moments and starts another, over and over, and keeps committing
 *    itself; recovery runs while the others write. Then the writers stop
 *    and one recover runs: the check is clean and a full (quiescent)
 *    sweep finds 0 leaked bytes: a writer killed between its root CAS and
 *    its retires left its garbage to the recovery (staged retires), one
 *    killed inside a reclaim's free loop left the block it was freeing
 *    named and marked (tslot.freeing), and so on.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "testutil.h"

#include "internal.h"

#define KEYS 8u
#define WARMUP 60u
#define PROCS 300u

struct job {
	const char *name;
	uint64_t i;
};

static int put_fn(struct shg_txn *txn, void *arg)
{
	const struct job *j = arg;
	struct shg_val v = { .kind = SHG_KIND_U64, .u64 = j->i };
	int err = 0;

	if (shg_off_is_null(shg_txn_root_node(txn)))
		err = shg_txn_map_new(txn, SHG_REF_ROOT, SHG_KIND_U64,
				      SHG_KIND_U64);
	return err ? err :
		     shg_txn_map_put_u64(txn, SHG_REF_ROOT, j->i % KEYS, &v);
}

/* One short-lived writer: open, one commit, close. */
static int one_put(void *arg)
{
	const struct job *j = arg;
	struct shg_seg *seg;
	struct shg_root *root;
	int err;

	if (shg_seg_open(j->name, NULL, &seg))
		return 10;
	err = shg_root_open(seg, "cfg", &root);
	if (!err) {
		err = shg_update(root, put_fn, (void *)j, 0);
		shg_root_close(root);
	}
	shg_seg_close(seg);
	return err ? 11 : 0;
}

/* A reader in read sections back to back until killed. */
static int reader(void *arg)
{
	const struct job *j = arg;
	struct shg_seg *seg;
	struct shg_root *root;
	volatile uint64_t sink = 0;

	if (shg_seg_open(j->name, NULL, &seg) ||
	    shg_root_open(seg, "cfg", &root))
		return 10;
	for (;;) {
		struct shg_version_info vi;
		struct shg_val out;

		if (shg_read_lock(seg))
			return 12;
		if (!shg_off_is_null(shg_version_current(root)) &&
		    !shg_version_info(seg, shg_version_current(root), &vi) &&
		    !shg_map_get_u64(seg, vi.node, 1, &out))
			sink += out.u64;
		shg_read_unlock(seg);
	}
	return 0;
}

static uint64_t used_bytes(const struct shg_stats *st)
{
	return st->small_used_bytes + st->large_used_bytes;
}

static void churn(bool with_reader)
{
	char name[64];
	struct shg_seg *seg = tu_create(name, 64u << 20);
	struct shg_root *root;
	struct shg_stats st0, st;
	uint64_t max_retired = 0, last_reclaimed = 0;
	struct job j = { name, 0 };
	pid_t rd = 0;
	unsigned i;

	tu_ok(shg_root_create(seg, "cfg", &root));
	if (with_reader)
		rd = tu_fork(reader, &j);
	for (i = 0; i < PROCS; i++) {
		j.i = i;
		assert_int_equal(tu_wait(tu_fork(one_put, &j)), 0);
		if (i + 1 == WARMUP)
			tu_ok(shg_stats_get(seg, &st0));
		if (i + 1 > WARMUP) {
			tu_ok(shg_stats_get(seg, &st));
			if (st.retired_bytes > max_retired)
				max_retired = st.retired_bytes;
			last_reclaimed = st.reclaimed_blocks;
		}
	}
	if (rd) {
		kill(rd, SIGKILL);
		assert_int_equal(tu_wait(rd), 128 + SIGKILL);
	}
	tu_ok(shg_stats_get(seg, &st));
	printf("churn%s: after %u: backed %llu, used %llu; after %u: backed "
	       "%llu, used %llu; retired max %llu, reclaimed blocks %llu\n",
	       with_reader ? " (reader)" : "", WARMUP,
	       (unsigned long long)st0.backed,
	       (unsigned long long)used_bytes(&st0), PROCS,
	       (unsigned long long)st.backed,
	       (unsigned long long)used_bytes(&st),
	       (unsigned long long)max_retired,
	       (unsigned long long)last_reclaimed);
	assert_int_equal(st.backed, st0.backed);
	/* A dead reader's last batch is not freed yet (it was killed): allow
	 * one batch block and one grace period's worth of nodes. */
	assert_true(used_bytes(&st) <= used_bytes(&st0) + 16384);
	if (!with_reader) {
		assert_int_equal(max_retired, 0);
		/* Each commit replaces at least the map node holding the
		 * key and the version record. */
		assert_true(last_reclaimed >= 2ull * (PROCS - 1));
	} else {
		assert_true(max_retired <= 16384);
	}
	shg_root_close(root);
	tu_destroy(seg, name);
}

struct killjob {
	const char *name;
	uint64_t seed;
	_Atomic int *stop;
	_Atomic uint64_t *commits;
};

static int rnd_put(struct shg_txn *txn, void *arg)
{
	uint64_t *k = arg;
	struct shg_val v = { .kind = SHG_KIND_U64, .u64 = k[1] };
	int err = 0, i;

	if (shg_off_is_null(shg_txn_root_node(txn)))
		err = shg_txn_map_new(txn, SHG_REF_ROOT, SHG_KIND_U64,
				      SHG_KIND_U64);
	for (i = 0; !err && i < (int)(k[0] % 4) + 1; i++)
		err = shg_txn_map_put_u64(txn, SHG_REF_ROOT, (k[0] + i) % 512,
					  &v);
	return err;
}

/* Commit 1-4 random keys per txn until told to stop. */
static int kill_writer(void *arg)
{
	struct killjob *j = arg;
	struct shg_seg *seg;
	struct shg_root *root;
	uint64_t s = j->seed, k[2];
	int err = 0;

	if (shg_seg_open(j->name, NULL, &seg))
		return 10;
	if (shg_root_open(seg, "k", &root))
		return 11;
	while (!atomic_load(j->stop) && !err) {
		k[0] = tu_rng_next(&s);
		k[1] = tu_rng_next(&s);
		err = shg_update(root, rnd_put, k, 0);
		if (err == SHG_ECONFLICT || err == SHG_EBUDGET)
			err = 0;
		atomic_fetch_add(j->commits, 1);
	}
	shg_root_close(root);
	shg_seg_close(seg);
	return err ? 12 : 0;
}

static void test_churn_killed_writers_leak_nothing(void **state)
{
	unsigned rounds = tu_long_tests() ? 400 : 40, r, kills = 0;
	_Atomic int *stop = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
				 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	struct shg_recover_report rep;
	struct shg_root *root;
	struct shg_seg *seg;
	struct killjob j[2];
	uint64_t s = 42, k[2], freed = 0;
	int64_t left;
	char name[64];
	pid_t pid[2];
	int i;

	(void)state;
	assert_true(stop != MAP_FAILED);
	seg = tu_create(name, 128u << 20);
	tu_ok(shg_root_create(seg, "k", &root));
	for (i = 0; i < 2; i++) {
		j[i] = (struct killjob){ name, 1000u + (unsigned)i, stop,
					 (_Atomic uint64_t *)(stop + 16) };
		pid[i] = tu_fork(kill_writer, &j[i]);
	}
	for (r = 0; r < rounds; r++) {
		unsigned w = r % 2, n = 5 + (unsigned)(tu_rng_next(&s) % 40);

		while (n--) { /* the survivor in this process keeps writing */
			k[0] = tu_rng_next(&s);
			k[1] = r;
			int err = shg_update(root, rnd_put, k, 0);

			/* a conflict or the budget may refuse one: try the
			 * next, as the writers do */
			if (err && err != SHG_ECONFLICT && err != SHG_EBUDGET)
				fail_msg("update: %s", shg_strerror(err));
		}
		usleep((useconds_t)(tu_rng_next(&s) % 3000));
		kill(pid[w], SIGKILL);
		assert_int_equal(tu_wait(pid[w]), 128 + SIGKILL);
		kills++;
		if (r % 8 == 7) { /* recover while the other one writes */
			tu_ok(shg_recover(seg, &rep));
			freed += rep.leaked_freed;
		}
		j[w].seed = tu_rng_next(&s);
		pid[w] = tu_fork(kill_writer, &j[w]);
	}
	atomic_store(stop, 1);
	for (i = 0; i < 2; i++)
		assert_int_equal(tu_wait(pid[i]), 0);
	tu_ok(shg_recover(seg, &rep));
	freed += rep.leaked_freed;
	tu_ok(shg_synchronize(seg, 0));
	shg_reclaim(seg);
	TU_CHECK_SOUND(seg);
	left = shg__sweep(seg, NULL, NULL, true);
	printf("killed writers: %u rounds, %u kills, %llu commits; live "
	       "sweeps freed %llu bytes; a quiescent sweep finds %lld bytes "
	       "leaked\n",
	       rounds, kills,
	       (unsigned long long)atomic_load((_Atomic uint64_t *)(stop + 16)),
	       (unsigned long long)freed, (long long)left);
	assert_int_equal(left, 0);
	shg_root_close(root);
	tu_destroy(seg, name);
	munmap((void *)stop, 4096);
}

static void test_churn_clean_exits_leave_nothing(void **state)
{
	(void)state;
	churn(false);
}

static void test_churn_bounded_under_reader(void **state)
{
	(void)state;
	churn(true);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_churn_clean_exits_leave_nothing),
		cmocka_unit_test(test_churn_bounded_under_reader),
		cmocka_unit_test(test_churn_killed_writers_leak_nothing),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
