/* SPDX-License-Identifier: MIT */
/* Helpers shared by the unit tests (see testutil.h). */
#include "testutil.h"

#include <signal.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static unsigned tu_counter;

/*
 * A per-process nonce in every name: pids wrap (pid_max is often 32768), and
 * a segment left by a killed or failed earlier run must never collide with a
 * name a later test binary picks.
 */
static unsigned tu_nonce(void)
{
	static unsigned nonce;
	static pid_t owner;
	struct timespec ts;

	if (nonce && owner == getpid())
		return nonce;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	owner = getpid();
	nonce = ((unsigned)ts.tv_nsec ^ (unsigned)ts.tv_sec * 2654435761u ^
		 (unsigned)owner * 40503u) |
		1u;
	return nonce;
}

void tu_shm_name(char *buf, size_t len, const char *tag)
{
	snprintf(buf, len, "/shgtest-%d-%x-%u-%s", (int)getpid(), tu_nonce(),
		 tu_counter++, tag);
}

void tu_file_path(char *buf, size_t len, const char *tag)
{
	const char *dir = getenv("SHG_TEST_TMPDIR");

	if (!dir || !*dir)
		dir = "/tmp";
	snprintf(buf, len, "%s/shgtest-%d-%x-%u-%s", dir, (int)getpid(),
		 tu_nonce(), tu_counter++, tag);
}

struct shg_seg *tu_create(char *name, uint64_t capacity)
{
	struct shg_opts o = { .size = sizeof(o) };
	struct shg_seg *seg = NULL;

	o.capacity = capacity ? capacity : (64u << 20);
	tu_shm_name(name, 64, "seg");
	tu_ok(shg_seg_create(name, &o, &seg));
	assert_non_null(seg);
	return seg;
}

void tu_destroy(struct shg_seg *seg, const char *name)
{
	if (seg)
		shg_seg_close(seg);
	if (name && shg_seg_unlink(name) != 0) {
		/* already gone: nothing to clean */
	}
}

pid_t tu_fork(int (*fn)(void *arg), void *arg)
{
	pid_t pid;

	pid_t parent = getpid();

	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* A failed assertion in the parent must not leave children
		 * looping forever: they die with the test binary. */
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 ||
		    getppid() != parent)
			_exit(127);
		_exit(fn(arg));
	}
	return pid;
}

int tu_wait(pid_t pid)
{
	int st = 0;

	while (waitpid(pid, &st, 0) < 0)
		;
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return -1;
}

void tu_problem_print(void *arg, int code, const char *msg)
{
	(void)arg;
	print_message("check: %s (%s)\n", msg, shg_strerror(code));
}

void tu_env_open(struct tu_env *e, uint64_t cap, const char *root_name)
{
	e->seg = tu_create(e->name, cap);
	tu_ok(shg_root_create(e->seg, root_name, &e->root));
}

void tu_env_close(struct tu_env *e)
{
	shg_root_close(e->root);
	tu_destroy(e->seg, e->name);
}

struct shg_off tu_cur_node(struct tu_env *e)
{
	struct shg_version_info vi;
	struct shg_off v = shg_version_current(e->root);

	assert_false(shg_off_is_null(v));
	tu_ok(shg_version_info(e->seg, v, &vi));
	return vi.node;
}

bool tu_long_tests(void)
{
	const char *s = getenv("SHG_LONG_TESTS");

	return s && *s && strcmp(s, "0") != 0;
}

uint64_t tu_rng_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

uint8_t *tu_export_mem(struct shg_seg *seg, const char *root, size_t *len)
{
	int fd = memfd_create("snap", 0);
	uint8_t *p;
	off_t end;

	assert_true(fd >= 0);
	tu_ok(shg_export(seg, root, fd));
	end = lseek(fd, 0, SEEK_END);
	assert_true(end > 0);
	p = malloc((size_t)end);
	assert_non_null(p);
	assert_int_equal(pread(fd, p, (size_t)end, 0), end);
	close(fd);
	*len = (size_t)end;
	return p;
}
