/* SPDX-License-Identifier: MIT */
/*
 * Registry tests: process and thread slots, liveness by pid + start time,
 * releasing dead owners, thread exit, fork-inherited handles.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "testutil.h"

static unsigned count_procs(struct shg_seg *seg)
{
	unsigned p, n = 0;

	for (p = 0; p < seg->max_procs; p++)
		n += atomic_load(&seg->procs[p].token) != 0;
	return n;
}

static unsigned count_threads(struct shg_seg *seg)
{
	unsigned t, n = 0;

	for (t = 0; t < seg->max_threads; t++)
		n += atomic_load(&seg->threads[t].owner) != 0;
	return n;
}

static void test_registry_process_slot_lifecycle(void **state)
{
	struct shg_opts o = { .size = sizeof(o) };
	struct shg_seg *seg, *seg2;
	char name[64];

	(void)state;
	seg = tu_create(name, 0);
	assert_int_equal(count_procs(seg), 1);
	assert_int_equal(atomic_load(&seg->procs[seg->pslot].token),
			 seg->token);
	tu_ok(shg_seg_open(name, &o, &seg2));
	assert_int_equal(count_procs(seg), 2);
	assert_int_not_equal(seg->pslot, seg2->pslot);
	shg_seg_close(seg2);
	assert_int_equal(count_procs(seg), 1);
	tu_destroy(seg, name);
}

static void *thread_reads(void *arg)
{
	struct shg_seg *seg = arg;

	if (shg_read_lock(seg))
		return (void *)1;
	shg_read_unlock(seg);
	return NULL;
}

static void test_registry_thread_exit_releases_slot(void **state)
{
	struct shg_seg *seg;
	char name[64];
	pthread_t th;
	void *ret;
	int i;

	(void)state;
	seg = tu_create(name, 0);
	for (i = 0; i < 50; i++) {
		assert_int_equal(pthread_create(&th, NULL, thread_reads, seg),
				 0);
		assert_int_equal(pthread_join(th, &ret), 0);
		assert_null(ret);
	}
	/* Every thread's slot came back at its exit. */
	assert_int_equal(count_threads(seg), 0);
	assert_int_equal(atomic_load(&seg->procs[seg->pslot].nthreads), 0);
	tu_ok(shg_thread_register(seg));
	assert_int_equal(count_threads(seg), 1);
	tu_ok(shg_thread_register(seg)); /* idempotent */
	assert_int_equal(count_threads(seg), 1);
	assert_int_equal(shg_thread_unregister(seg), 0);
	assert_int_equal(count_threads(seg), 0);
	tu_destroy(seg, name);
}

static void test_registry_unregister_in_section_refused(void **state)
{
	struct shg_seg *seg;
	char name[64];

	(void)state;
	seg = tu_create(name, 0);
	tu_ok(shg_read_lock(seg));
	assert_int_equal(shg_thread_unregister(seg), SHG_ENESTED);
	shg_read_unlock(seg);
	assert_int_equal(shg_thread_unregister(seg), 0);
	tu_destroy(seg, name);
}

static void *grab_slot(void *arg)
{
	struct shg_seg *seg = arg;

	return (void *)(intptr_t)shg_thread_register(seg);
}

static void test_registry_thread_slots_exhausted(void **state)
{
	struct shg_opts o = { .size = sizeof(o) };
	struct shg_seg *seg;
	char name[64];
	pthread_t th;
	void *ret;

	(void)state;
	o.capacity = 16u << 20;
	o.max_threads = 1;
	tu_shm_name(name, sizeof(name), "slots");
	tu_ok(shg_seg_create(name, &o, &seg));
	tu_ok(shg_thread_register(seg));
	assert_int_equal(pthread_create(&th, NULL, grab_slot, seg), 0);
	assert_int_equal(pthread_join(th, &ret), 0);
	assert_int_equal((int)(intptr_t)ret, SHG_ESLOTS);
	assert_string_not_equal(shg_strerror(SHG_ESLOTS), "unknown error");
	tu_destroy(seg, name);
}

struct child_arg {
	const char *name;
	int fd; /* write end: one byte once set up */
};

static int child_registers_then_waits(void *p)
{
	struct child_arg *a = p;
	struct shg_opts o = { .size = sizeof(o) };
	struct shg_seg *seg;
	char c = 'R';

	if (shg_seg_open(a->name, &o, &seg))
		return 2;
	if (shg_read_lock(seg))
		return 3;
	if (write(a->fd, &c, 1) != 1)
		return 4;
	for (;;)
		pause(); /* killed inside its read section */
}

static void test_registry_dead_process_released(void **state)
{
	struct shg_recover_report rep;
	struct child_arg a;
	struct shg_seg *seg;
	char name[64], c;
	int pfd[2];
	pid_t pid;

	(void)state;
	seg = tu_create(name, 0);
	assert_int_equal(pipe(pfd), 0);
	a.name = name;
	a.fd = pfd[1];
	pid = tu_fork(child_registers_then_waits, &a);
	assert_int_equal(read(pfd[0], &c, 1), 1);
	assert_int_equal(count_procs(seg), 2);
	assert_int_equal(count_threads(seg), 1);
	/* Alive: nothing to release. */
	memset(&rep, 0, sizeof(rep));
	tu_ok(shg__release_dead(seg, &rep));
	assert_int_equal(rep.procs_released, 0);
	kill(pid, SIGKILL);
	assert_int_equal(tu_wait(pid), 128 + SIGKILL);
	memset(&rep, 0, sizeof(rep));
	tu_ok(shg__release_dead(seg, &rep));
	assert_int_equal(rep.procs_released, 1);
	assert_int_equal(rep.threads_released, 1);
	assert_int_equal(count_procs(seg), 1);
	assert_int_equal(count_threads(seg), 0);
	/* Released exactly once. */
	memset(&rep, 0, sizeof(rep));
	tu_ok(shg__release_dead(seg, &rep));
	assert_int_equal(rep.procs_released, 0);
	close(pfd[0]);
	close(pfd[1]);
	tu_destroy(seg, name);
}

/* Forge an owned process slot + thread slot with @token. */
static void forge_owner(struct shg_seg *seg, uint32_t p, uint32_t t,
			uint64_t token, uint64_t attached_ns)
{
	struct shg_pslot *ps = &seg->procs[p];
	struct shg_tslot *ts = &seg->threads[t];

	atomic_store(&ps->token, token);
	ps->pid = (int32_t)getpid();
	ps->flavor = SHG_FLAVOR_FENCE;
	ps->attached_ns = attached_ns;
	ts->proc = p;
	atomic_store(&ts->owner, token);
	atomic_store(&ts->epoch, atomic_load(&seg->hdr->epoch));
}

/*
 * A slot naming our own (live) pid, attached just now, is still dead when
 * nobody holds its OFD lock: pids and clocks decide nothing.
 */
static void test_registry_unlocked_slot_is_dead(void **state)
{
	struct shg_recover_report rep = { 0 };
	struct shg_seg *seg;
	uint64_t forged = shg__new_token();
	char name[64];
	uint32_t p = 7, t = 9;

	(void)state;
	seg = tu_create(name, 0);
	assert_int_not_equal(seg->pslot, p);
	forge_owner(seg, p, t, forged, shg__realtime_ns());
	assert_false(shg__token_alive(seg, forged));
	assert_true(shg__token_alive(seg, seg->token));
	assert_false(shg__pslot_alive(seg, p, forged));
	assert_false(shg__tslot_alive(seg, t));
	tu_ok(shg__release_dead(seg, &rep));
	assert_int_equal(rep.procs_released, 1);
	assert_int_equal(rep.threads_released, 1);
	assert_int_equal(atomic_load(&seg->procs[p].token), 0);
	assert_int_equal(atomic_load(&seg->threads[t].owner), 0);
	assert_int_equal(atomic_load(&seg->threads[t].epoch), 0);
	tu_destroy(seg, name);
}

/*
 * A token no process slot carries is dead (its slot was released), and a
 * slot whose lock is held by the owner of another token (a process that
 * took it over) does not keep the old token alive.
 */
static void test_registry_released_token_is_dead(void **state)
{
	struct shg_opts o = { .size = sizeof(o) };
	struct shg_seg *seg, *seg2;
	char name[64];
	uint64_t t2;
	uint32_t p2;

	(void)state;
	seg = tu_create(name, 0);
	tu_ok(shg_seg_open(name, &o, &seg2)); /* another description */
	t2 = seg2->token;
	p2 = seg2->pslot;
	assert_true(shg__pslot_alive(seg, p2, t2));
	assert_false(shg__pslot_alive(seg, p2, t2 ^ 1));
	assert_false(shg__token_alive(seg, t2 ^ 1));
	shg_seg_close(seg2);
	assert_false(shg__pslot_alive(seg, p2, t2));
	assert_false(shg__token_alive(seg, t2));
	/* Our real slot is untouched. */
	assert_int_equal(atomic_load(&seg->procs[seg->pslot].token),
			 seg->token);
	tu_destroy(seg, name);
}

/*
 * A claimer CASes a thread slot's owner and writes its process index just
 * after: in between, the slot names a stale process index. That is not a
 * dead owner (it once made a live writer's slot be released under it).
 */
static void test_registry_stale_proc_index_not_dead(void **state)
{
	struct shg_recover_report rep = { 0 };
	struct shg_seg *seg, *seg2;
	struct shg_opts o = { .size = sizeof(o) };
	char name[64];
	uint32_t t = 11;

	(void)state;
	uint64_t tok;

	seg = tu_create(name, 0);
	tu_ok(shg_seg_open(name, &o, &seg2));
	/* Another live attachment (seg2: its own open file description),
	 * mid-claim: owner set, index stale. */
	tok = seg2->token;
	atomic_store(&seg->threads[t].owner, tok);
	seg->threads[t].proc = seg->max_procs - 1; /* stale: a free slot */
	assert_true(shg__tslot_alive(seg, t));
	tu_ok(shg__release_dead(seg, &rep));
	assert_int_equal(rep.threads_released, 0);
	assert_int_equal(atomic_load(&seg->threads[t].owner), tok);
	/* Once that attachment is gone, the slot is dead and released. */
	shg_seg_close(seg2);
	assert_false(shg__tslot_alive(seg, t));
	tu_ok(shg__release_dead(seg, &rep));
	assert_int_equal(atomic_load(&seg->threads[t].owner), 0);
	tu_destroy(seg, name);
}

struct fork_arg {
	struct shg_seg *seg;
};

struct opener {
	char name[64];
	int ready[2]; /* pipe: the child says it attached */
};

static int child_attaches_then_waits(void *p)
{
	struct opener *o = p;
	struct shg_seg *seg;

	struct shg_root *r;

	if (shg_seg_open(o->name, NULL, &seg))
		return 1;
	if (shg_root_open(seg, "r", &r)) /* a hold to be released */
		return 3;
	if (write(o->ready[1], "x", 1) != 1)
		return 2;
	pause(); /* killed by the parent */
	return 0;
}

/* Every process slot held by a dead process: the next open frees them. */
static void test_registry_all_slots_dead_reopened(void **state)
{
	struct shg_opts o = { .size = sizeof(o), .max_procs = 2 };
	struct shg_root_info ri;
	struct shg_root *r;
	struct opener op;
	struct shg_seg *seg;
	pid_t pid[2];
	char c;
	int i;

	(void)state;
	tu_shm_name(op.name, sizeof(op.name), "alldead");
	tu_ok(shg_seg_create(op.name, &o, &seg));
	tu_ok(shg_root_create(seg, "r", &r));
	shg_root_close(r);
	tu_ok(shg_seg_close(seg)); /* both slots for the children */
	assert_int_equal(pipe(op.ready), 0);
	for (i = 0; i < 2; i++) {
		pid[i] = tu_fork(child_attaches_then_waits, &op);
		assert_int_equal(read(op.ready[0], &c, 1), 1);
	}
	for (i = 0; i < 2; i++) {
		kill(pid[i], SIGKILL);
		assert_int_equal(tu_wait(pid[i]), 128 + SIGKILL);
	}
	close(op.ready[0]);
	close(op.ready[1]);
	/* inspection-only opens do not repair: still full */
	assert_int_equal(shg_seg_open(op.name,
				      &(struct shg_opts){
					      .size = sizeof(struct shg_opts),
					      .flags = SHG_OPEN_NO_RECOVER },
				      &seg),
			 SHG_ESLOTS);
	tu_ok(shg_seg_open(op.name, NULL, &seg));
	assert_int_equal(count_procs(seg), 1);
	/* the dead took over had their holds released */
	assert_int_equal(shg_root_list(seg, &ri, 1), 1);
	assert_int_equal(ri.holds, 0);
	assert_int_equal(shg_check(seg, NULL, NULL, NULL), 0);
	tu_destroy(seg, op.name);
}

struct takeover_arg {
	char name[64];
};

static int child_opens_and_reclaims(void *p)
{
	struct takeover_arg *a = p;
	struct shg_seg *seg;

	if (shg_seg_open(a->name, NULL, &seg))
		return 1;
	if (shg_synchronize(seg, 1000) || shg_reclaim(seg) < 0)
		return 2;
	shg_seg_close(seg);
	return 0;
}

/*
 * Defect: shg_seg_open taking over a dead process slot finalized a removed
 * root whose last holder was that process before the graph layer's drop
 * hook was installed, so its version record was plain-retired (death 0)
 * and freed although a live process pinned it.
 */
static void test_registry_takeover_keeps_pinned_version(void **state)
{
	struct shg_opts o = { .size = sizeof(o), .max_procs = 2 };
	struct shg_version_info vi, vi2;
	struct takeover_arg ta;
	struct opener op;
	struct shg_seg *seg;
	struct shg_root *r;
	struct shg_txn *txn;
	struct shg_pin *pin;
	struct shg_val val = { .kind = SHG_KIND_U64 };
	struct shg_off v;
	pid_t pid;
	char c;
	int i;

	(void)state;
	tu_shm_name(op.name, sizeof(op.name), "takeover");
	memcpy(ta.name, op.name, sizeof(ta.name));
	tu_ok(shg_seg_create(op.name, &o, &seg));
	tu_ok(shg_root_create(seg, "r", &r));
	tu_ok(shg_txn_begin(r, &txn));
	tu_ok(shg_txn_map_new(txn, SHG_REF_ROOT, SHG_KIND_U64, SHG_KIND_U64));
	for (i = 0; i < 10; i++) {
		val.u64 = (uint64_t)i;
		tu_ok(shg_txn_map_put_u64(txn, SHG_REF_ROOT, (uint64_t)i,
					  &val));
	}
	tu_ok(shg_txn_commit(txn));
	tu_ok(shg_pin_current(r, &pin));
	v = shg_pin_version(pin);
	tu_ok(shg_version_info(seg, v, &vi));
	/* D holds the root and dies holding it; the root is removed. */
	assert_int_equal(pipe(op.ready), 0);
	pid = tu_fork(child_attaches_then_waits, &op);
	assert_int_equal(read(op.ready[0], &c, 1), 1);
	shg_root_close(r);
	tu_ok(shg_root_remove(seg, "r"));
	kill(pid, SIGKILL);
	assert_int_equal(tu_wait(pid), 128 + SIGKILL);
	close(op.ready[0]);
	close(op.ready[1]);
	/* N finds no free process slot and takes over D's. */
	pid = tu_fork(child_opens_and_reclaims, &ta);
	assert_int_equal(tu_wait(pid), 0);
	tu_ok(shg_synchronize(seg, 1000));
	(void)shg_reclaim(seg);
	/* The pinned version record and its map are intact. */
	tu_ok(shg_version_info(seg, v, &vi2));
	assert_int_equal(vi2.seq, vi.seq);
	for (i = 0; i < 10; i++) {
		struct shg_val out;

		tu_ok(shg_map_get_u64(seg, vi2.node, (uint64_t)i, &out));
		assert_int_equal(out.u64, (uint64_t)i);
	}
	TU_CHECK_SOUND(seg);
	/* Unpinned, the dropped graph is reclaimed: nothing leaked. */
	tu_ok(shg_unpin(pin));
	tu_ok(shg_synchronize(seg, 1000));
	(void)shg_reclaim(seg);
	assert_int_equal(shg_version_info(seg, v, &vi2) < 0, 1);
	assert_int_equal(shg__sweep(seg, NULL, NULL, true), 0);
	tu_destroy(seg, op.name);
}

struct exiter {
	struct shg_seg *seg;
	pthread_barrier_t registered;
	pthread_barrier_t go;
	int err;
	void *reuse; /* the closer's next allocation of a handle's size */
};

#define OWNER_MARK 0x5eed

static void *exiter_thread(void *arg)
{
	struct exiter *e = arg;
	struct sched_param sp = { 0 };

	/* Runs only when the closer (same CPU) cannot: once woken from
	 * ctx_lock it is not scheduled before the close has finished. */
	(void)pthread_setschedparam(pthread_self(), SCHED_IDLE, &sp);
	e->err = shg_thread_register(e->seg);
	pthread_barrier_wait(&e->registered);
	pthread_barrier_wait(&e->go);
	return NULL; /* the TLS destructor releases the slot */
}

static void *closer_thread(void *arg)
{
	struct exiter *e = arg;
	void *v[16];
	int i;

	e->err |= shg_seg_close(e->seg);
	/* Likely the freed handle among these (calloc would skip the thread
	 * cache): a destructor still using its ctx_lock writes the owner. */
	for (i = 0; i < 16; i++) {
		v[i] = malloc(sizeof(struct shg_seg));
		if (v[i] && v[i] == (void *)e->seg)
			e->reuse = v[i];
	}
	for (i = 0; i < 16; i++)
		if (v[i] != e->reuse)
			free(v[i]);
	if (e->reuse)
		memset(e->reuse, 0, sizeof(struct shg_seg));
#ifdef __GLIBC__
	if (e->reuse)
		((struct shg_seg *)e->reuse)->ctx_lock.__data.__owner =
			OWNER_MARK;
#endif
	return NULL;
}

/*
 * Defect: a thread's exit destructor read its context's segment handle,
 * then locked the handle's ctx_lock; a shg_seg_close in another thread
 * could release the context and free the handle in between. Here the
 * close waits on ctx_lock (held by the test) first, then the destructor
 * reads the handle and waits behind it, so the close frees the handle
 * under the destructor. The closer then allocates a block of the handle's
 * size (usually the freed handle again) with a marked owner word in its
 * ctx_lock, which a late destructor's lock and unlock would overwrite.
 * Each round must end with both threads done and every slot free.
 */
static void test_registry_thread_exit_races_close(void **state)
{
	char name[64];
	struct shg_opts o = { .size = sizeof(o) };
	struct shg_seg *keep;
	cpu_set_t cpus, one;
	int round, cpu, checked = 0;

	(void)state;
	/* Every thread on one CPU (see exiter_thread). */
	if (sched_getaffinity(0, sizeof(cpus), &cpus) == 0) {
		for (cpu = 0; cpu < CPU_SETSIZE && !CPU_ISSET(cpu, &cpus);
		     cpu++)
			;
		CPU_ZERO(&one);
		CPU_SET(cpu, &one);
		(void)sched_setaffinity(0, sizeof(one), &one);
	}
	keep = tu_create(name, 0);
	for (round = 0; round < 20; round++) {
		struct exiter e = { 0 };
		pthread_t t, c;

		tu_ok(shg_seg_open(name, &o, &e.seg));
		pthread_barrier_init(&e.registered, NULL, 2);
		pthread_barrier_init(&e.go, NULL, 2);
		assert_int_equal(pthread_create(&t, NULL, exiter_thread, &e),
				 0);
		pthread_barrier_wait(&e.registered);
		pthread_mutex_lock(&e.seg->ctx_lock);
		assert_int_equal(pthread_create(&c, NULL, closer_thread, &e),
				 0);
		usleep(20000); /* the close waits on ctx_lock */
		pthread_barrier_wait(&e.go);
		usleep(20000); /* the destructor read the handle, waits too */
		pthread_mutex_unlock(&e.seg->ctx_lock);
		pthread_join(t, NULL);
		pthread_join(c, NULL);
		assert_int_equal(e.err, 0);
#ifdef __GLIBC__
		if (e.reuse == (void *)e.seg) {
			checked++;
			assert_int_equal(((struct shg_seg *)e.reuse)
						 ->ctx_lock.__data.__owner,
					 OWNER_MARK);
		}
#endif
		free(e.reuse);
		pthread_barrier_destroy(&e.registered);
		pthread_barrier_destroy(&e.go);
		assert_int_equal(count_procs(keep), 1);
		assert_int_equal(count_threads(keep), 0);
	}
	tu_destroy(keep, name);
	(void)sched_setaffinity(0, sizeof(cpus), &cpus);
	/* The allocator reused the freed handle in @checked rounds (never
	 * under ASan, whose quarantine reports the use itself). */
	print_message("handle reused in %d of 20 rounds\n", checked);
}

static int child_uses_inherited_handle(void *p)
{
	struct fork_arg *a = p;
	struct shg_off off;

	/* The parent's handle names the parent's slots: refused. */
	if (shg_alloc(a->seg, 64, &off) != -ECHILD)
		return 1;
	if (shg_read_lock(a->seg) != -ECHILD)
		return 2;
	return 0;
}

static void test_registry_fork_inherited_handle_refused(void **state)
{
	struct fork_arg a;
	struct shg_seg *seg;
	struct shg_off off;
	char name[64];

	(void)state;
	seg = tu_create(name, 0);
	tu_ok(shg_alloc(seg, 64, &off)); /* parent has a context */
	a.seg = seg;
	assert_int_equal(tu_wait(tu_fork(child_uses_inherited_handle, &a)), 0);
	tu_ok(shg_free(seg, off));
	tu_destroy(seg, name);
}

static void test_registry_handle_nesting(void **state)
{
	struct shg_thread *t;
	struct shg_seg *seg;
	char name[64];
	uint64_t e;

	(void)state;
	seg = tu_create(name, 0);
	tu_ok(shg_thread_get(seg, &t));
	e = atomic_load(&seg->hdr->epoch);
	shg_thread_read_lock(t);
	shg_thread_read_lock(t);
	assert_true(shg_read_locked(seg));
	assert_int_equal(*t->slot_epoch, e);
	shg_thread_read_unlock(t);
	assert_int_equal(*t->slot_epoch, e); /* still nested */
	shg_thread_read_unlock(t);
	assert_int_equal(*t->slot_epoch, 0);
	assert_false(shg_read_locked(seg));
	tu_destroy(seg, name);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_registry_process_slot_lifecycle),
		cmocka_unit_test(test_registry_thread_exit_releases_slot),
		cmocka_unit_test(test_registry_unregister_in_section_refused),
		cmocka_unit_test(test_registry_thread_slots_exhausted),
		cmocka_unit_test(test_registry_dead_process_released),
		cmocka_unit_test(test_registry_unlocked_slot_is_dead),
		cmocka_unit_test(test_registry_released_token_is_dead),
		cmocka_unit_test(test_registry_stale_proc_index_not_dead),
		cmocka_unit_test(test_registry_fork_inherited_handle_refused),
		cmocka_unit_test(test_registry_all_slots_dead_reopened),
		cmocka_unit_test(test_registry_takeover_keeps_pinned_version),
		cmocka_unit_test(test_registry_thread_exit_races_close),
		cmocka_unit_test(test_registry_handle_nesting),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
