/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the unit tests: unique segment names, creating a fresh
 * segment, forking children and collecting their exit status.
 */
#ifndef SHG_TESTUTIL_H
#define SHG_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <cmocka.h>

#include <shmgraph.h>

/* A unique POSIX shm name "/shgtest-<pid>-<n>-<tag>" in @buf. */
void tu_shm_name(char *buf, size_t len, const char *tag);
/* A unique file path under $SHG_TEST_TMPDIR (or /tmp) in @buf. */
void tu_file_path(char *buf, size_t len, const char *tag);
/* Create a segment of @capacity bytes (0 = 64 MiB) under a fresh shm name
 * (written to @name, >= 64 bytes); asserts success. */
struct shg_seg *tu_create(char *name, uint64_t capacity);
/* Close and unlink. */
void tu_destroy(struct shg_seg *seg, const char *name);
/* Export root @root of @seg into a malloc'd buffer of *@len bytes. */
uint8_t *tu_export_mem(struct shg_seg *seg, const char *root, size_t *len);
/* Fork; the child runs @fn(@arg) and _exit()s with its return value. */
pid_t tu_fork(int (*fn)(void *arg), void *arg);
/* Wait for @pid; returns its exit code, or 128 + signal. */
int tu_wait(pid_t pid);
/* Fail the test unless @err is 0, printing shg_strerror(err). */
#define tu_ok(expr)                                             \
	do {                                                    \
		int tu_err_ = (expr);                           \
		if (tu_err_ != 0)                               \
			fail_msg("%s: %d (%s)", #expr, tu_err_, \
				 shg_strerror(tu_err_));        \
	} while (0)

/* ---- graph-layer fixtures shared by the map and vector tests ----------- */

/* Print each problem the checker reports. */
void tu_problem_print(void *arg, int code, const char *msg);
#define TU_CHECK_SOUND(seg) \
	assert_int_equal(shg_check((seg), tu_problem_print, NULL, NULL), 0)

/* A fresh segment with one root. */
struct tu_env {
	char name[64];
	struct shg_seg *seg;
	struct shg_root *root;
};
/* Create the segment (@cap bytes, 0 = default) and root @root_name. */
void tu_env_open(struct tu_env *e, uint64_t cap, const char *root_name);
void tu_env_close(struct tu_env *e);
/* Root node of the root's current version (caller in a read section). */
struct shg_off tu_cur_node(struct tu_env *e);
/* SHG_LONG_TESTS set (and not "0"): run the long variants. */
bool tu_long_tests(void);
/* splitmix64 step: a reproducible stream from seed *@s. */
uint64_t tu_rng_next(uint64_t *s);

#endif /* SHG_TESTUTIL_H */
