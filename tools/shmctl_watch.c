/* SPDX-License-Identifier: MIT */
/*
 * shmctl watch: a live view of a segment, one row per interval -- commits
 * per second (from the roots' publish counters), grace periods per second
 * (epoch advances), retired-unreclaimed bytes, reclaimed bytes per
 * second, and the registered readers (how many, how many inside a read
 * section at the sample, dead ones, the longest reclamation stall).
 *
 * Reads are not counted: a read section writes only its own slot, and
 * the library keeps no read counter (that would put a shared write on the
 * read path). The row says so ("reads": null in JSON) and shows the
 * readers inside a section at the sample instead.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "shmctl.h"

struct sample {
	uint64_t mono_ns; /* CLOCK_MONOTONIC */
	uint64_t real_ns; /* CLOCK_REALTIME */
	uint64_t commits; /* sum of the live roots' publish counters */
	uint64_t epoch;
	uint64_t retired;
	uint64_t reclaimed;
	uint32_t roots;
	uint32_t readers, in_section, dead;
	uint64_t max_blocked_ns;
	uint64_t held_bytes; /* largest amount one reader holds back */
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void take_readers(struct shg_seg *seg, struct sample *s)
{
	struct shg_reader_info *ri;
	int i, n = fetch_list(seg, list_readers, sizeof(*ri), (void **)&ri);

	for (i = 0; i < n; i++) {
		s->readers++;
		s->in_section += ri[i].in_section;
		s->dead += !ri[i].alive;
		if (ri[i].blocked_ns > s->max_blocked_ns)
			s->max_blocked_ns = ri[i].blocked_ns;
		if (ri[i].held_bytes > s->held_bytes)
			s->held_bytes = ri[i].held_bytes;
	}
	if (n >= 0)
		free(ri);
}

static int take(struct shg_seg *seg, struct sample *s)
{
	struct shg_root_info *ri;
	struct shg_stats st;
	int i, n, err;

	memset(s, 0, sizeof(*s));
	s->mono_ns = clock_ns(CLOCK_MONOTONIC);
	s->real_ns = clock_ns(CLOCK_REALTIME);
	err = shg_stats_get(seg, &st);
	if (err)
		return err;
	s->epoch = st.global_epoch;
	s->retired = st.retired_bytes;
	s->reclaimed = st.reclaimed_bytes;
	n = fetch_list(seg, list_roots, sizeof(*ri), (void **)&ri);
	if (n < 0)
		return n;
	for (i = 0; i < n; i++) {
		if (ri[i].removed)
			continue;
		s->roots++;
		s->commits += ri[i].generation;
	}
	free(ri);
	take_readers(seg, s);
	return 0;
}

/* Per second from @a to @b (counters that went down count as 0). */
static double rate(uint64_t a, uint64_t b, double dt)
{
	return b > a && dt > 0 ? (double)(b - a) / dt : 0.0;
}

static void row(struct cli *c, const struct sample *a, const struct sample *b)
{
	double dt = (double)(b->mono_ns - a->mono_ns) / 1e9;
	char t[16], r1[32], r2[32];
	struct tm tm;
	time_t sec = (time_t)(b->real_ns / 1000000000ull);

	if (c->json) {
		printf("{\"time_ns\":%" PRIu64 ",\"interval_s\":%.3f"
		       ",\"commits\":%" PRIu64 ",\"commits_per_s\":%.1f"
		       ",\"reads\":null,\"epoch\":%" PRIu64
		       ",\"epochs_per_s\":%.1f,\"retired_bytes\":%" PRIu64
		       ",\"reclaimed_bytes_per_s\":%.0f,\"roots\":%u"
		       ",\"readers\":%u,\"readers_in_section\":%u"
		       ",\"readers_dead\":%u,\"max_blocked_ns\":%" PRIu64
		       ",\"max_held_bytes\":%" PRIu64 "}\n",
		       b->real_ns, dt, b->commits,
		       rate(a->commits, b->commits, dt), b->epoch,
		       rate(a->epoch, b->epoch, dt), b->retired,
		       rate(a->reclaimed, b->reclaimed, dt), b->roots,
		       b->readers, b->in_section, b->dead, b->max_blocked_ns,
		       b->held_bytes);
	} else {
		localtime_r(&sec, &tm);
		strftime(t, sizeof(t), "%H:%M:%S", &tm);
		printf("%-8s %10.1f %9.1f %11s %11s/s %7u %7u %5u %10.1f\n", t,
		       rate(a->commits, b->commits, dt),
		       rate(a->epoch, b->epoch, dt),
		       shg__fmt_bytes(b->retired, r1, sizeof(r1)),
		       shg__fmt_bytes((uint64_t)rate(a->reclaimed, b->reclaimed,
						     dt),
				      r2, sizeof(r2)),
		       b->readers, b->in_section, b->dead,
		       b->max_blocked_ns / 1e6);
	}
	fflush(stdout);
}

/* Sleep @sec seconds unless a signal asks to stop. */
static void pause_for(double sec)
{
	struct timespec ts;

	ts.tv_sec = (time_t)sec;
	ts.tv_nsec = (long)((sec - (double)ts.tv_sec) * 1e9);
	while (!stop && nanosleep(&ts, &ts) && errno == EINTR)
		;
}

int cmd_watch(struct cli *c, struct shg_seg *seg)
{
	struct sigaction sa;
	struct sample prev, cur;
	double iv = c->seen & OPT_INTERVAL ? c->interval : 1.0;
	uint64_t n;
	int err;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	err = take(seg, &prev);
	if (err)
		return fail("watch", err);
	if (!c->json) {
		printf("# %s every %.2f s; reads are not counted by the "
		       "library: IN_SECT = readers inside a read section at "
		       "the sample\n",
		       c->seg_name, iv);
		printf("%-8s %10s %9s %11s %13s %7s %7s %5s %10s\n", "TIME",
		       "COMMITS/S", "EPOCHS/S", "RETIRED", "RECLAIMED/S",
		       "READERS", "IN_SECT", "DEAD", "STALL_MS");
		fflush(stdout);
	}
	for (n = 0; !stop && (!c->count || n < c->count); n++) {
		pause_for(iv);
		if (stop)
			break;
		err = take(seg, &cur);
		if (err)
			return fail("watch", err);
		row(c, &prev, &cur);
		prev = cur;
	}
	return 0;
}
