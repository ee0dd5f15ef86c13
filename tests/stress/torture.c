/* SPDX-License-Identifier: MIT */
/*
 * Long torture of the epoch layer (make regtest): writer processes replace
 * published lists and retire the old blocks while reader processes check
 * every block they reach inside read sections; a second run SIGKILLs
 * readers at random and restarts them. Fails on any inconsistency, on
 * retired memory growing past its limit, or on memory left unreclaimed
 * after the final grace period. The core is tests/unit/torture_core.c.
 *
 * Usage: torture [--long] [--seconds N] [--readers N] [--writers N]
 *                [--len N] [--flavor fence|membarrier|mixed]
 *                [--kill | --no-kill]
 * --long runs 60 s without and 60 s with reader kills; the default is
 * 10 s of each.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <shmgraph.h>
#include "../unit/torture_core.h"

static void usage(void)
{
	fprintf(stderr, "usage: torture [--long] [--seconds N] [--readers N] "
			"[--writers N] [--len N]\n"
			"               [--flavor fence|membarrier|mixed] "
			"[--kill|--no-kill]\n");
	exit(2);
}

static int parse_flavor(const char *s)
{
	if (!strcmp(s, "fence"))
		return SHG_FLAVOR_FENCE;
	if (!strcmp(s, "membarrier"))
		return SHG_FLAVOR_MEMBARRIER;
	if (!strcmp(s, "mixed"))
		return 0;
	usage();
	return 0;
}

static int run(const char *title, const struct tt_opts *o)
{
	struct tt_result r;
	int rc;

	printf("%s: %u s, %u readers, %u writers, lists of %u\n", title,
	       o->seconds, o->readers ? o->readers : 2,
	       o->writers ? o->writers : 1, o->list_len ? o->list_len : 16);
	fflush(stdout);
	rc = tt_run(o, &r);
	tt_print(stdout, title, &r);
	printf("%s: %s (%d)\n", title, rc ? "FAIL" : "ok", rc);
	return rc;
}

int main(int argc, char **argv)
{
	struct tt_opts o = { .seconds = 10, .readers = 4, .writers = 2 };
	int kill_mode = -1; /* -1: both runs */
	int i, rc = 0;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "--long")) {
			o.seconds = 60;
		} else if (!strcmp(a, "--kill")) {
			kill_mode = 1;
		} else if (!strcmp(a, "--no-kill")) {
			kill_mode = 0;
		} else if (i + 1 < argc && !strcmp(a, "--seconds")) {
			o.seconds = (unsigned)atoi(argv[++i]);
		} else if (i + 1 < argc && !strcmp(a, "--readers")) {
			o.readers = (unsigned)atoi(argv[++i]);
		} else if (i + 1 < argc && !strcmp(a, "--writers")) {
			o.writers = (unsigned)atoi(argv[++i]);
		} else if (i + 1 < argc && !strcmp(a, "--len")) {
			o.list_len = (unsigned)atoi(argv[++i]);
		} else if (i + 1 < argc && !strcmp(a, "--flavor")) {
			o.flavor = parse_flavor(argv[++i]);
		} else {
			usage();
		}
	}
	if (!o.seconds || o.readers > TT_MAX_READERS ||
	    o.writers > TT_MAX_WRITERS)
		usage();
	if (kill_mode != 1)
		rc |= run("torture", &o);
	if (kill_mode != 0) {
		o.kill_readers = true;
		rc |= run("torture-kill", &o);
	}
	return rc ? 1 : 0;
}
