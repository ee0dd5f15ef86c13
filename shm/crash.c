/* SPDX-License-Identifier: MIT */
/*
 * The crash point hook (see crash.h). Compiled only into the crash-point
 * libraries (-DSHG_CRASH_POINTS).
 *
 * Theory of operation. The armed point is process-local state: the name
 * and hit count from SHG_CRASH_AT / SHG_STOP_AT, parsed at the first hit.
 * Several threads may hit points at once: the state word moves
 * UNREAD -> PARSING -> READY by CAS (one parser; others spin the few
 * instructions until READY, acquire, which orders the parsed name before
 * its use), and hits of the armed point are counted by an atomic
 * fetch_add, so exactly one hit is the n-th. A fork child starts over
 * (pthread_atfork), so a test can set the environment in the child.
 */
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <unistd.h>

#include "crash.h"

/* Every point in shm/ and lib/, once (test_crash checks it against the
 * sources): grouped by area, in the order of the steps. */
const char *const shg__crash_points[] = {
	/* clang-format off */
	"stage.begun",
	"stage.entry_written",
	"stage.chain_entry_written",
	"commit.before_cas",
	"commit.after_cas",
	"stage.count_published",
	"stage.chain_linked",
	"stage.cleared",
	"stage.cancelled",
	"commit.before_retire",
	"commit.retired_one",
	"commit.after_retire",
	"commit.after_unpin",
	"retire.batch_allocated",
	"retire.entry_written",
	"retire.count_bumped",
	"retire.bytes_added",
	"seal.tagged",
	"seal.locked",
	"seal.linked",
	"seal.open_cleared",
	"reclaim.pop_recorded",
	"reclaim.pop_unlinked",
	"reclaim.finish_begin",
	"reclaim.entry_dropped",
	"reclaim.mid_free",
	"reclaim.entries_freed",
	"reclaim.record_cleared",
	"read.locked",
	"hold.whole_pushed",
	"park.before_hold",
	"hold.merge_appended",
	"hold.split_cleared",
	"hold.split_pushed",
	"hold.pop_recorded",
	"span.coalesce_unbinned",
	"span.coalesce_committed",
	"span.split_rest",
	"span.split_committed",
	"heap.backed",
	"heap.carved",
	"heap.published",
	"span.abandoned",
	"span.swept_aside",
	"span.adopt_owned",
	"alloc.slow_path",
	"alloc.new_span",
	"alloc.adopted",
	"alloc.remote_taken",
	"alloc.large_taken",
	"span.give_up",
	"root.create_filled",
	"root.create_live",
	"root.remove_marked",
	"root.remove_finalized",
	"root.remove_dropped",
	"drop.staged_one",
	"root.cas_before",
	"root.cas_after",
	"pin.claimed",
	"pin.published",
	"unpin.version_cleared",
	"unpin.gen_bumped",
	"types.locked",
	"types.appended",
	"import.walked",
	"import.types_registered",
	"import.root_ready",
	"import.built",
	"recover.released_dead",
	"recover.swept",
	"sweep.locked",
	"sweep.marked",
	"sweep.synced",
	"sweep.candidate_done",
	"sweep.freed",
	"sweep.spans_released",
	"recover.stage_resolved",
	"recover.tslot_limbo_adopted",
	"recover.tslot_spans_given_up",
	"recover.tslot_freed",
	"recover.proc_owned_released",
	"recover.proc_threads_released",
	"takeover.claimed",
	"takeover.released",
	"recover.limbo_sealed",
	"recover.limbo_unlocked",
	/* clang-format on */
	NULL
};

void (*shg__crash_on_hit)(const char *name);

enum { UNREAD, PARSING, READY };

static _Atomic int state = UNREAD;
static char armed[64];
static unsigned long armed_at; /* the n-th hit */
static int armed_sig; /* SIGKILL or SIGSTOP; 0: nothing armed */
static _Atomic unsigned long hits;

static void parse(const char *spec, int sig)
{
	const char *colon;
	size_t len;

	if (!spec || !*spec || armed_sig)
		return;
	colon = strchr(spec, ':');
	len = colon ? (size_t)(colon - spec) : strlen(spec);
	if (len == 0 || len >= sizeof(armed))
		return;
	memcpy(armed, spec, len);
	armed[len] = 0;
	armed_at = colon ? strtoul(colon + 1, NULL, 10) : 1;
	if (armed_at == 0)
		armed_at = 1;
	armed_sig = sig;
}

static void read_env(void)
{
	int s = UNREAD;

	if (!atomic_compare_exchange_strong_explicit(&state, &s, PARSING,
						     memory_order_acquire,
						     memory_order_acquire)) {
		/* Another thread parses: wait for its release below. */
		while (atomic_load_explicit(&state, memory_order_acquire) !=
		       READY)
			;
		return;
	}
	armed_sig = 0;
	armed[0] = 0;
	atomic_store_explicit(&hits, 0, memory_order_relaxed);
	parse(getenv("SHG_CRASH_AT"), SIGKILL);
	parse(getenv("SHG_STOP_AT"), SIGSTOP);
	/* Release: the parsed point is complete before READY is seen. */
	atomic_store_explicit(&state, READY, memory_order_release);
}

void shg__crash_reset(void)
{
	atomic_store_explicit(&state, UNREAD, memory_order_release);
}

static void atfork_child(void)
{
	shg__crash_reset();
}

__attribute__((constructor)) static void crash_init(void)
{
	(void)pthread_atfork(NULL, NULL, atfork_child);
}

void shg__crash_hit(const char *name)
{
	void (*fn)(const char *) = shg__crash_on_hit;

	if (atomic_load_explicit(&state, memory_order_acquire) != READY)
		read_env();
	if (fn)
		fn(name);
	if (!armed_sig || strcmp(name, armed) != 0)
		return;
	if (atomic_fetch_add_explicit(&hits, 1, memory_order_relaxed) + 1 !=
	    armed_at)
		return;
	if (armed_sig == SIGKILL)
		for (;;)
			(void)kill(getpid(), SIGKILL);
	(void)raise(SIGSTOP);
}
