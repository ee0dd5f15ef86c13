/* SPDX-License-Identifier: MIT */
/*
 * Named crash points for the crash-point sweep test (tests/unit/test_crash.c).
 *
 * SHG_CRASH_POINT("area.step") marks a place where a process may die. In a
 * normal build it expands to nothing. Compiled with -DSHG_CRASH_POINTS (the
 * libshg-*-crash.la convenience libraries, linked only by test_crash) it
 * calls shg__crash_hit(), which kills the calling process with SIGKILL when
 * the environment names the point:
 *
 *   SHG_CRASH_AT=name[:n]   SIGKILL at the n-th hit of @name in this
 *                           process (default 1)
 *   SHG_STOP_AT=name[:n]    raise SIGSTOP there instead (once); the process
 *                           goes on after SIGCONT
 *
 * The environment is read at the first hit of a process (again after a
 * fork); later hits cost a load and, when armed, a strcmp.
 *
 * Every name used in shm/ and lib/ is listed once in shg__crash_points[]
 * (shm/crash.c); test_crash greps the sources, so the list cannot go stale.
 * Names are "<area>.<step>", unique, lower case.
 */
#ifndef SHG_CRASH_H
#define SHG_CRASH_H

#ifdef SHG_CRASH_POINTS
#include <stddef.h>

__attribute__((visibility("hidden"))) void shg__crash_hit(const char *name);
/* Called at every hit (before a kill or stop) if set: the test records
 * which points were reached. Must be async-signal-safe-ish: no locks. */
extern __attribute__((visibility("hidden"))) void (*shg__crash_on_hit)(
	const char *name);
/* The points, NULL-terminated. */
extern __attribute__((visibility("hidden")))
const char *const shg__crash_points[];
/* Forget the armed point and read the environment again at the next hit. */
__attribute__((visibility("hidden"))) void shg__crash_reset(void);
#define SHG_CRASH_POINT(name) shg__crash_hit(name)
#else
#define SHG_CRASH_POINT(name) ((void)0)
#endif

#endif /* SHG_CRASH_H */
