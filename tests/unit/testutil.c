/* SPDX-License-Identifier: MIT */
/* Helpers shared by the unit tests (see testutil.h). */
#include "testutil.h"

#include <signal.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static unsigned tu_counter;

void tu_shm_name(char *buf, size_t len, const char *tag)
{
	snprintf(buf, len, "/shgtest-%d-%u-%s", (int)getpid(), tu_counter++,
		 tag);
}

void tu_file_path(char *buf, size_t len, const char *tag)
{
	const char *dir = getenv("SHG_TEST_TMPDIR");

	if (!dir || !*dir)
		dir = "/tmp";
	snprintf(buf, len, "%s/shgtest-%d-%u-%s", dir, (int)getpid(),
		 tu_counter++, tag);
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
