/* SPDX-License-Identifier: MIT */
/*
 * Read-side torture of the epoch layer, shared by the unit test (a few
 * seconds) and tests/stress/torture (make regtest). Writer processes keep
 * replacing a published linked list of blocks and retire the old one;
 * reader processes walk the list inside read sections and check that every
 * block they reach is intact and belongs to one version. A block freed too
 * early shows up as a wrong magic, index or generation (or the 0xDB poison
 * pattern with SHG_DEBUG_POISON=1). Optionally readers are SIGKILLed at
 * random, inside or outside their sections, and replaced.
 */
#ifndef SHG_TORTURE_CORE_H
#define SHG_TORTURE_CORE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define TT_MAX_READERS 16
#define TT_MAX_WRITERS 4
#define TT_AGE_BUCKETS 8 /* 0, 1, 2, 3, 4-7, 8-15, 16-31, >= 32 */

struct tt_opts {
	unsigned seconds; /* run time (default 3) */
	unsigned readers; /* reader processes (default 2) */
	unsigned writers; /* writer processes (default 1) */
	unsigned list_len; /* blocks per published list (default 16) */
	int flavor; /* readers' flavor; 0 = alternate fence/membarrier */
	bool kill_readers; /* SIGKILL readers at random and restart them */
	uint64_t capacity; /* segment bytes (default 256 MiB) */
	uint64_t retired_limit; /* fail if retired bytes exceed (default
				 * capacity / 4) */
	bool verbose; /* print progress */
};

struct tt_result {
	uint64_t reads; /* lists walked by readers */
	uint64_t nodes; /* blocks checked by readers */
	uint64_t errors; /* inconsistent blocks seen (must be 0) */
	uint64_t poisoned; /* of which: poison pattern (freed block) */
	uint64_t writes; /* lists published */
	uint64_t writer_errors; /* writer-side failures (must be 0) */
	uint64_t budget_fails; /* SHG_EBUDGET from the writers' checks */
	uint64_t kills; /* readers SIGKILLed */
	uint64_t max_retired; /* largest retired_bytes seen */
	uint64_t final_retired; /* retired_bytes after the final grace period */
	uint64_t reclaimed_blocks; /* blocks reclaimed over the run */
	uint32_t check_problems; /* limbo check problems at the end */
	uint64_t age[TT_AGE_BUCKETS]; /* versions behind the newest */
};

/* Run one torture; Return 0 when it passed, else a negative code or 1. */
int tt_run(const struct tt_opts *opts, struct tt_result *res);

/* Print @res (counts and the age histogram) to @f. */
void tt_print(FILE *f, const char *title, const struct tt_result *res);

#endif /* SHG_TORTURE_CORE_H */
