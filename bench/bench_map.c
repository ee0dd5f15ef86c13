/* SPDX-License-Identifier: MIT */
/*
 * bench_map - shmgraph's persistent map against its peers, side by side in
 * one run, for N = 10k and 1M keys (--quick: 10k only), 8-byte keys
 * and values (--key-size 8..256, --value-size 8..4096 for wider ones;
 * rwlock-shm and flat-nolock, fixed 16-byte slots, are then not run):
 *
 *   lookup            random-key lookups by one reader process (a thread
 *                     for urcu-lfht): first on the maps as built (no
 *                     writer), then after and among the update cases with
 *                     no writer, with one writer process updating single
 *                     keys flat out, and paced at 10k updates/s; reps are
 *                     time-driven; every 64th lookup timed for p50/p99;
 *                     every lookup verified (misses are reported).
 *   lookup_many       shmgraph: the same in batches of 16 keys per
 *                     shg_map_get_many_u64() (ns per key), on the map as
 *                     built and after the updates.
 *   commit            single-update commits per second, one writer.
 *   batch_update      updates per second in txns of 1,000 and of 100.
 *   build             time to insert N keys in txns of 1,000.
 *   bytes_per_entry   memory after building N keys (several measures).
 *   retained_with_pin shmgraph: pin v1, run K = N single-update commits,
 *                     memory while pinned and after unpin vs v1's size.
 *
 * --cases LIST runs a subset (lookup, many, updates, build, bytes,
 * retained; default all): scripts/bench.sh growth runs lookup,bytes for
 * N = 10k..10M.
 *
 * Systems: shmgraph, rwlock-shm, lmdb, urcu-lfht, flat-nolock (peers.h).
 * Timed cases are calibrated once, then repeated interleaved; medians and
 * min-max of the reps. JSON lines go to --json FILE (appended) or stdout;
 * the tables go to stdout (stderr when the JSON goes to stdout).
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "benchutil.h"
#include "knobs.h"
#include "peers.h"

#define PACED_RATE 10000 /* updates/s of the paced writer */
#define MAX_SIZES 4

enum {
	SYS_SHMGRAPH,
	SYS_RWLOCK,
	SYS_LMDB,
	SYS_LFHT,
	SYS_FLAT,
	SYS_SHMGRAPH_FENCE,
	SYS_SHMGRAPH_HUGE, /* only with --huge / --huge-dir */
	NSYS
};

static const struct peer_ops *const sys_ops[NSYS] = {
	&peer_shmgraph_ops,	  &peer_rwlock_ops,
#ifdef HAVE_LMDB
	&peer_lmdb_ops,
#else
	NULL,
#endif
	&peer_lfht_ops,		  &peer_flat_ops,
	&peer_shmgraph_fence_ops, &peer_shmgraph_huge_ops,
};

/* Names for --systems and the tables; JSON "system" is ops->system. */
static const char *const sys_names[NSYS] = {
	"shmgraph",    "rwlock-shm",	 "lmdb",	  "urcu-lfht",
	"flat-nolock", "shmgraph-fence", "shmgraph-huge",
};

struct sys {
	struct peer p;
	const char *name;
	bool want; /* selected (--systems) */
	bool ok; /* built, workers running */
	char skip[320];
	struct worker *reader;
	struct worker *writer;
};

/* Case groups (--cases); default all. */
enum {
	CS_LOOKUP = 1u << 0, /* lookups on the maps as built, no writer */
	CS_MANY = 1u << 1, /* shmgraph lookup_many, as built and after */
	CS_UPDATES = 1u << 2, /* table 2: lookups after/among updates,
			       * commit, batch_update */
	CS_BUILD = 1u << 3, /* build N keys */
	CS_BYTES = 1u << 4, /* bytes_per_entry */
	CS_RETAINED = 1u << 5, /* retained_with_pin */
	CS_ALL = (1u << 6) - 1,
};

static const char *const case_names[] = {
	"lookup", "many", "updates", "build", "bytes", "retained",
};

struct opts {
	unsigned cases; /* CS_* */
	char cases_arg[128]; /* --cases as given, "all" by default */
	bool quick;
	bool pin;
	bool verbose;
	const char *json;
	unsigned reps;
	unsigned time_ms;
	uint64_t sizes[MAX_SIZES];
	unsigned nsizes;
	bool want[NSYS];
	int reader_cpu;
	int writer_cpu;
	struct bench_knobs k; /* the common knobs (knobs.h) */
};

static struct opts O;
static char config_json[1024];

/* ---- cases ----------------------------------------------------------- */

enum lk_mode { LK_ALONE, LK_FLAT, LK_PACED };

#define MANY_BATCH 16 /* keys per shg_map_get_many_u64() in lookup_many */
#define GOAL_KEYS 1000000ull /* the N the map goals are defined at */

struct case_arg {
	struct sys *sys;
	int mode; /* enum lk_mode for lookups */
	unsigned batch; /* batch_update; lookup_many: keys per call */
	uint64_t seed;
	/* totals over all runs, for notes */
	uint64_t lookups, misses, w_ops, w_ns;
	const char *label; /* short name of the case for the table */
	char note[256];
};

#define MAX_CASES 64

struct case_list {
	struct bench_case c[MAX_CASES];
	struct case_arg a[MAX_CASES];
	char variant[MAX_CASES][384]; /* JSON variants: configuration; case */
	size_t n;
};

static int case_fail(struct bench_case *c, const char *what, int err,
		     const char *msg)
{
	bench_case_skip(c, "failed: %s: %s", what,
			msg && *msg ? msg : strerror(-err));
	return err < 0 ? err : -EIO;
}

static int run_lookup(struct bench_case *c, const struct bench_ctl *ctl,
		      struct bench_sample *out)
{
	struct case_arg *a = c->arg;
	struct sys *s = a->sys;
	struct lookup_job j = { .iters = ctl->iters, .nkeys = s->p.nkeys };
	uint64_t wops = 0, wns = 0;
	int err;

	j.seed = 0x1234567ull + ++a->seed * 0x9e3779b97f4a7c15ull;
	j.hist = ctl->hist;
	if (strcmp(c->workload, "lookup_many") == 0)
		j.batch = a->batch;
	/* time-driven: every rep of every system lasts the same */
	if (c->timed)
		j.duration_ns = ctl->target_ns;
	if (a->mode != LK_ALONE) {
		err = worker_write_start(s->writer,
					 a->mode == LK_PACED ? PACED_RATE : 0);
		if (err) {
			worker_write_stop(s->writer, &wops, &wns);
			return case_fail(c, "writer", err,
					 worker_error(s->writer));
		}
	}
	err = worker_lookup(s->reader, &j);
	if (a->mode != LK_ALONE) {
		int err2 = worker_write_stop(s->writer, &wops, &wns);

		if (err2 && !err)
			return case_fail(c, "writer", err2,
					 worker_error(s->writer));
		a->w_ops += wops;
		a->w_ns += wns;
	}
	if (err)
		return case_fail(c, "reader", err, worker_error(s->reader));
	a->lookups += j.ops;
	a->misses += j.misses;
	out->ops = j.ops;
	out->ns = j.ns;
	return 0;
}

static int run_commit(struct bench_case *c, const struct bench_ctl *ctl,
		      struct bench_sample *out)
{
	struct case_arg *a = c->arg;
	struct peer *p = &a->sys->p;
	uint64_t rng = ++a->seed * 0x9e3779b97f4a7c15ull | 1, i, t0;
	uint32_t gen = (uint32_t)a->seed << 20;
	int err;

	t0 = bench_now_ns();
	for (i = 0; i < ctl->iters; i++) {
		uint64_t key = key_of(rand_index(&rng, p->nkeys));

		err = p->ops->update(p, p->main_handle, key,
				     val_of(key, gen + (uint32_t)i));
		if (err)
			return case_fail(c, "update", err, p->err);
	}
	out->ns = bench_now_ns() - t0;
	out->ops = ctl->iters;
	return 0;
}

static int run_batch(struct bench_case *c, const struct bench_ctl *ctl,
		     struct bench_sample *out)
{
	struct case_arg *a = c->arg;
	struct peer *p = &a->sys->p;
	uint64_t rng = ++a->seed * 0x9e3779b97f4a7c15ull | 1, t0, done = 0;
	uint64_t keys[1000], vals[1000];
	uint32_t gen = (uint32_t)a->seed << 20;
	unsigned b = a->batch, k;
	int err;

	t0 = bench_now_ns();
	while (done < ctl->iters) {
		for (k = 0; k < b; k++) {
			keys[k] = key_of(rand_index(&rng, p->nkeys));
			vals[k] = val_of(keys[k], gen);
		}
		gen++;
		err = p->ops->update_batch(p, p->main_handle, keys, vals, b);
		if (err)
			return case_fail(c, "update_batch", err, p->err);
		done += b;
	}
	out->ns = bench_now_ns() - t0;
	out->ops = done;
	return 0;
}

static int run_build(struct bench_case *c, const struct bench_ctl *ctl,
		     struct bench_sample *out)
{
	struct case_arg *a = c->arg;
	struct peer *p = &a->sys->p;
	uint64_t ns = 0;
	int err;

	(void)ctl;
	err = p->ops->build(p, p->nkeys, 1000, &ns);
	if (err)
		return case_fail(c, "build", err, p->err);
	out->ns = ns;
	out->ops = p->nkeys;
	return 0;
}

static struct bench_case *add(struct case_list *l, struct sys *s,
			      const char *variant, const char *workload,
			      bench_fn run)
{
	struct bench_case *c;
	struct case_arg *a;

	if (l->n >= MAX_CASES) {
		fprintf(stderr, "bench_map: too many cases\n");
		exit(2);
	}
	c = &l->c[l->n];
	a = &l->a[l->n++];
	memset(a, 0, sizeof(*a));
	a->sys = s;
	a->label = variant;
	bench_case_init(c);
	c->label = variant;
	c->system = s->p.ops ? s->p.ops->system : s->name;
	c->variant = variant;
	c->workload = workload;
	c->run = run;
	c->arg = a;
	c->keys = (long long)s->p.nkeys;
	c->json_sys = s->p.json_sys[0] ? s->p.json_sys : NULL;
	if (!s->ok)
		bench_case_skip(c, "%s", s->skip);
	return c;
}

/* The JSON variant of the next case: the system's configuration, then
 * what the case does. */
static const char *variant(struct case_list *l, const struct sys *s,
			   const char *extra)
{
	char *v = l->variant[l->n];

	snprintf(v, sizeof(l->variant[0]), "%s%s%s", s->p.variant,
		 extra ? "; " : "", extra ? extra : "");
	return v;
}

/* Index of the case of @system / @workload / @mode or batch, or -1. */
static int find(const struct case_list *l, const char *system,
		const char *workload, int mode, unsigned batch)
{
	size_t i;

	for (i = 0; i < l->n; i++) {
		const struct bench_case *c = &l->c[i];

		if (strcmp(l->a[i].sys->name, system) == 0 &&
		    strcmp(c->workload, workload) == 0 &&
		    l->a[i].mode == mode && l->a[i].batch == batch)
			return (int)i;
	}
	return -1;
}

/* A lookup_many case of shmgraph (batches of MANY_BATCH keys). */
static void add_many_case(struct case_list *l, struct sys *s, bool fresh)
{
	static const char *const extra[2] = {
		"reader process, no writer, batches of 16 keys "
		"(shg_map_get_many_u64), after the update cases",
		"reader process, no writer, batches of 16 keys "
		"(shg_map_get_many_u64), fresh map",
	};
	struct bench_case *c;

	if (!s->want || !s->p.ops)
		return;
	c = add(l, s, variant(l, s, extra[fresh]), "lookup_many", run_lookup);
	l->a[l->n - 1].batch = MANY_BATCH;
	l->a[l->n - 1].label = fresh ? "lookup_many 16/call, fresh" :
				       "lookup_many 16/call";
	c->readers = 1;
	c->writers = 0;
	c->latency = true;
	c->timed = true;
	c->json_extra = fresh ? ",\"map_state\":\"fresh\",\"batch\":16" :
				",\"map_state\":\"after_updates\","
				"\"batch\":16";
	if (s->p.key_size > 8 || s->p.value_size > 8)
		bench_case_skip(c, "8-byte keys and values only");
}

/*
 * Lookups on the map as built, before any update: every system with no
 * writer, and shmgraph's batched lookups. The later lookup cases run on a
 * map that the commit and batch cases (and the writer) have changed; see
 * bench/README.md ("What bench_map measures").
 */
static void add_fresh_cases(struct case_list *l, struct sys *sys)
{
	struct bench_case *c;
	int i;

	for (i = 0; i < NSYS; i++) {
		struct sys *s = &sys[i];

		if (!s->want || !s->p.ops || !(O.cases & CS_LOOKUP))
			continue;
		c = add(l, s,
			variant(l, s,
				s->p.ops->in_process ?
					"reader thread, no writer, fresh map" :
					"reader process, no writer, fresh map"),
			"lookup", run_lookup);
		l->a[l->n - 1].mode = LK_ALONE;
		l->a[l->n - 1].label = "lookup, fresh map";
		c->readers = 1;
		c->writers = 0;
		c->latency = true;
		c->timed = true;
		c->json_extra = ",\"map_state\":\"fresh\"";
	}
	if (O.cases & CS_MANY)
		add_many_case(l, &sys[SYS_SHMGRAPH], true);
}

static void add_timed_cases(struct case_list *l, struct sys *sys)
{
	static const char *const lk_extra[3] = {
		"reader process, no writer, after the update cases",
		"reader process, 1 writer process flat out",
		"reader process, 1 writer process paced at 10k updates/s",
	};
	static const char *const lk_label[3] = {
		"lookup, no writer",
		"lookup, 1 writer flat out",
		"lookup, 1 writer at 10k/s",
	};
	static const char *const lk_extra_thr[3] = {
		"reader thread, no writer, after the update cases",
		"reader thread, 1 writer thread flat out",
		"reader thread, 1 writer thread paced at 10k updates/s",
	};
	struct bench_case *c;
	int i, m;

	if (!(O.cases & CS_UPDATES)) {
		if (O.cases & CS_MANY)
			add_many_case(l, &sys[SYS_SHMGRAPH], false);
		return;
	}
	for (m = LK_ALONE; m <= LK_PACED; m++) {
		for (i = 0; i < NSYS; i++) {
			struct sys *s = &sys[i];

			if (!s->want ||
			    (m != LK_ALONE && s->p.ops && s->p.ops->read_only))
				continue;
			c = add(l, s,
				variant(l, s,
					s->p.ops->in_process ? lk_extra_thr[m] :
							       lk_extra[m]),
				"lookup", run_lookup);
			l->a[l->n - 1].mode = m;
			l->a[l->n - 1].label = lk_label[m];
			c->readers = 1;
			c->writers = m == LK_ALONE ? 0 : 1;
			c->latency = true;
			c->timed = true;
			c->json_extra = ",\"map_state\":\"after_updates\"";
		}
	}
	if (O.cases & CS_MANY)
		add_many_case(l, &sys[SYS_SHMGRAPH], false);
	for (i = 0; i < NSYS; i++) {
		struct sys *s = &sys[i];

		if (!s->want || (s->p.ops && s->p.ops->read_only))
			continue;
		c = add(l, s, variant(l, s, "1 update per commit"), "commit",
			run_commit);
		l->a[l->n - 1].label = "commit, 1 update per txn";
		c->readers = 0;
		c->writers = 1;
	}
	for (m = 0; m < 2; m++) {
		unsigned b = m == 0 ? 1000 : 100;

		for (i = 0; i < NSYS; i++) {
			struct sys *s = &sys[i];

			if (!s->want || (s->p.ops && s->p.ops->read_only))
				continue;
			c = add(l, s,
				variant(l, s,
					b == 1000 ? "1,000 updates per commit" :
						    "100 updates per commit"),
				"batch_update", run_batch);
			l->a[l->n - 1].batch = b;
			l->a[l->n - 1].label = b == 1000 ?
						       "batch, 1,000 per txn" :
						       "batch, 100 per txn";
			c->readers = 0;
			c->writers = 1;
			c->min_iters = b;
		}
	}
}

static void add_build_cases(struct case_list *l, struct sys *sys)
{
	struct bench_case *c;
	int i;

	if (!(O.cases & CS_BUILD))
		return;
	for (i = 0; i < NSYS; i++) {
		struct sys *s = &sys[i];

		if (!s->want || (s->p.ops && s->p.ops->read_only))
			continue;
		c = add(l, s, variant(l, s, "insert N keys, 1,000 per commit"),
			"build", run_build);
		l->a[l->n - 1].label = "build N keys, 1,000 per txn";
		c->readers = 0;
		c->writers = 1;
		c->timed = true;
	}
}

/* Static records: bytes per entry, retained with a pin. */
static void add_bytes_cases(struct case_list *l, struct sys *sys)
{
	int i;

	for (i = 0; i < NSYS; i++) {
		struct sys *s = &sys[i];
		const char *vs[4];
		long long b[4];
		unsigned n = 0, k;
		struct bench_case *c;

		if (!(O.cases & CS_BYTES))
			return;
		if (!s->want || i == SYS_SHMGRAPH_FENCE ||
		    i == SYS_SHMGRAPH_HUGE) /* same map */
			continue;
		if (!s->ok) {
			add(l, s, "-", "bytes_per_entry", NULL);
			continue;
		}
		if (s->p.ops->bytes(&s->p, vs, b, &n)) {
			c = add(l, s, "-", "bytes_per_entry", NULL);
			bench_case_skip(c, "failed: %s", s->p.err);
			continue;
		}
		for (k = 0; k < n; k++) {
			c = add(l, s, vs[k], "bytes_per_entry", NULL);
			c->static_rec = true;
			c->bytes = b[k];
			c->readers = 0;
			c->writers = 0;
		}
	}
}

static struct retained_result retained;
static bool retained_ok;

static void add_retained_cases(struct case_list *l, struct sys *s)
{
	static char v[2][160];
	struct retained_result *r = &retained;
	uint64_t k = s->p.nkeys;
	struct bench_case *c;

	retained_ok = false;
	if (!s->ok) {
		c = add(l, s, "-", "retained_with_pin", NULL);
		return;
	}
	if (k > 1000000)
		k = 1000000;
	if (peer_shmgraph_retained(&s->p, k, r)) {
		c = add(l, s, "-", "retained_with_pin", NULL);
		bench_case_skip(c, "failed: %s", s->p.err);
		return;
	}
	retained_ok = true;
	snprintf(v[0], sizeof(v[0]),
		 "v1 pinned, after %llu single-update commits, then "
		 "synchronize + reclaim: allocator used bytes",
		 (unsigned long long)r->updates);
	snprintf(v[1], sizeof(v[1]),
		 "after unpin, synchronize + reclaim: allocator used bytes");
	c = add(l, s, v[0], "retained_with_pin", NULL);
	c->static_rec = true;
	c->bytes = r->used_pinned;
	c->version_bytes = r->version_bytes;
	c->readers = 0;
	c->writers = 1;
	c = add(l, s, v[1], "retained_with_pin", NULL);
	c->static_rec = true;
	c->bytes = r->used_unpinned;
	c->version_bytes = r->version_bytes;
	c->readers = 0;
	c->writers = 1;
}

/* Table names: the short label, marked for the fence-flavor segment. */
static void set_labels(struct case_list *l)
{
	size_t i;

	for (i = 0; i < l->n; i++) {
		struct case_arg *a = &l->a[i];

		if (a->sys == NULL)
			continue;
		l->c[i].label = a->label;
		l->c[i].table_system = a->sys->name;
		l->c[i].numa = strcmp(l->c[i].system, "shmgraph") == 0 ?
				       O.k.numa :
				       NULL;
	}
}

/* Notes (writer rate, misses) and the misses field, after the runs. */
static void finish_notes(struct case_list *l)
{
	size_t i;

	for (i = 0; i < l->n; i++) {
		struct bench_case *c = &l->c[i];
		struct case_arg *a = &l->a[i];

		if (c->run != run_lookup || c->skip)
			continue;
		c->misses = (long long)a->misses;
		if (a->mode != LK_ALONE && a->w_ns)
			snprintf(a->note, sizeof(a->note),
				 "writer ran at %.0f updates/s; %llu misses in "
				 "%llu lookups",
				 (double)a->w_ops * 1e9 / (double)a->w_ns,
				 (unsigned long long)a->misses,
				 (unsigned long long)a->lookups);
		else
			snprintf(a->note, sizeof(a->note),
				 "%llu misses in %llu lookups",
				 (unsigned long long)a->misses,
				 (unsigned long long)a->lookups);
		c->note = a->note;
	}
}

/* ---- result tables ---------------------------------------------------- */

static void print_configs(FILE *f, const struct sys *sys)
{
	int i;

	fprintf(f, "\nConfigurations (JSON \"variant\" = configuration; "
		   "case):\n");
	for (i = 0; i < NSYS; i++) {
		char line[512];

		if (!sys[i].want)
			continue;
		snprintf(line, sizeof(line), "%s%s",
			 sys[i].ok ? "" : "not run: ",
			 sys[i].ok ? sys[i].p.variant : sys[i].skip);
		fprintf(f, "  %-14s ", sys[i].name);
		bench_print_wrapped(f, 17, line);
	}
}

/* ---- goals table ------------------------------------------------------ */

static double med(const struct case_list *l, int i)
{
	struct bench_summary s;

	if (i < 0 || l->c[i].skip || !l->c[i].nreps)
		return NAN;
	bench_summarize(l->c[i].rep_ns, l->c[i].nreps, &s);
	return s.median;
}

/* p50 of the sampled latencies of case @i, NAN if none. */
static double p50(const struct case_list *l, int i)
{
	if (i < 0 || l->c[i].skip || !l->c[i].hist || !l->c[i].hist->count)
		return NAN;
	return (double)bench_hist_quantile(l->c[i].hist, 0.5);
}

static long long static_bytes(const struct case_list *l, const char *system,
			      const char *workload, const char *prefix)
{
	size_t i;

	for (i = 0; i < l->n; i++) {
		const struct bench_case *c = &l->c[i];

		if (c->static_rec && !c->skip &&
		    strcmp(c->system, system) == 0 &&
		    strcmp(c->workload, workload) == 0 &&
		    strncmp(c->variant, prefix, strlen(prefix)) == 0)
			return c->bytes;
	}
	return -1;
}

/* "10k", "1M", "2.5M" or the plain count. */
static const char *keys_str(uint64_t n)
{
	static char buf[4][24];
	static unsigned k;
	char *b = buf[k++ % 4];

	if (n >= 1000000 && n % 100000 == 0)
		snprintf(b, sizeof(buf[0]),
			 "%g"
			 "M",
			 (double)n / 1e6);
	else if (n >= 1000 && n % 100 == 0)
		snprintf(b, sizeof(buf[0]),
			 "%g"
			 "k",
			 (double)n / 1e3);
	else
		snprintf(b, sizeof(buf[0]), "%llu", (unsigned long long)n);
	return b;
}

/* The memory figures: bytes and bytes per entry, what each measures. */
static void print_memory(FILE *f, const struct case_list *st, uint64_t n)
{
	size_t i;

	fprintf(f,
		"\n4. memory after building N = %s keys (bytes; B/entry = "
		"bytes / N):\n",
		keys_str(n));
	fprintf(f, "%-11s %11s %9s  %s\n", "system", "bytes", "B/entry",
		"what");
	for (i = 0; i < st->n; i++) {
		const struct bench_case *c = &st->c[i];
		const char *sys = st->a[i].sys->name;

		if (c->skip || !c->static_rec) {
			fprintf(f, "%-11s %11s %9s  ", sys, "-", "-");
			bench_print_wrapped(f, 35,
					    c->skip ? c->skip : "no data");
			continue;
		}
		fprintf(f, "%-11s %11lld %9.1f  ", sys, c->bytes,
			(double)c->bytes / (double)n);
		bench_print_wrapped(f, 35, c->variant);
	}
}

/* Verdicts: -1 information only, 0 not met, 1 met, 2 not judged at this
 * N (the goal is defined at GOAL_KEYS keys). */
static int at_n(uint64_t n, int verdict)
{
	return verdict >= 0 && n != GOAL_KEYS ? 2 : verdict;
}

static void goal_row(FILE *f, uint64_t n, const char *what, double ratio,
		     const char *unit, const char *goal, int verdict)
{
	char r[32], v[32];

	if (isnan(ratio))
		snprintf(r, sizeof(r), "n/a");
	else
		snprintf(r, sizeof(r), "%.3g%s", ratio, unit);
	if (verdict == 2)
		snprintf(v, sizeof(v), "n/a at N=%s", keys_str(n));
	else
		snprintf(v, sizeof(v), "%s",
			 verdict < 0 ? "-" :
			 verdict     ? "met" :
				       "NOT met");
	fprintf(f, "  %-46s %9s  %-22s %s\n", what, r, goal, v);
}

static int le(double v, double goal)
{
	return isnan(v) ? -1 : v <= goal;
}

static int ge(double v, double goal)
{
	return isnan(v) ? -1 : v >= goal;
}

/*
 * The goals of bench/README.md ("Goals"), each next to its measured
 * ratio. Lookup goals compare the lookups on the maps as built (table
 * 1.), the reader-kept goal the lookups of table 2. (with and without
 * the writer, both after updates). Goals defined at 1M keys are judged
 * only at N = 1M.
 */
static void print_goals(FILE *f, const struct case_list *fr,
			const struct case_list *t, const struct case_list *b,
			const struct case_list *st, uint64_t n)
{
	double sh = med(fr, find(fr, "shmgraph", "lookup", LK_ALONE, 0));
	double lf = med(fr, find(fr, "urcu-lfht", "lookup", LK_ALONE, 0));
	double lm = med(fr, find(fr, "lmdb", "lookup", LK_ALONE, 0));
	double rw = med(fr, find(fr, "rwlock-shm", "lookup", LK_ALONE, 0));
	double fl = med(fr, find(fr, "flat-nolock", "lookup", LK_ALONE, 0));
	double fsh = med(fr, find(fr, "shmgraph-fence", "lookup", LK_ALONE, 0));
	double hsh = med(fr, find(fr, "shmgraph-huge", "lookup", LK_ALONE, 0));
	double hsha = med(t, find(t, "shmgraph-huge", "lookup", LK_ALONE, 0));
	double many = med(fr, find(fr, "shmgraph", "lookup_many", LK_ALONE,
				   MANY_BATCH));
	double sha = med(t, find(t, "shmgraph", "lookup", LK_ALONE, 0));
	double shw = med(t, find(t, "shmgraph", "lookup", LK_FLAT, 0));
	double shp = med(t, find(t, "shmgraph", "lookup", LK_PACED, 0));
	double lma = med(t, find(t, "lmdb", "lookup", LK_ALONE, 0));
	double lmw = med(t, find(t, "lmdb", "lookup", LK_FLAT, 0));
	double rwa = med(t, find(t, "rwlock-shm", "lookup", LK_ALONE, 0));
	double rww = med(t, find(t, "rwlock-shm", "lookup", LK_FLAT, 0));
	double lfa = med(t, find(t, "urcu-lfht", "lookup", LK_ALONE, 0));
	double lfw = med(t, find(t, "urcu-lfht", "lookup", LK_FLAT, 0));
	double fsha = med(t, find(t, "shmgraph-fence", "lookup", LK_ALONE, 0));
	double fshw = med(t, find(t, "shmgraph-fence", "lookup", LK_FLAT, 0));
	double manya = med(t, find(t, "shmgraph", "lookup_many", LK_ALONE,
				   MANY_BATCH));
	double fla = med(t, find(t, "flat-nolock", "lookup", LK_ALONE, 0));
	double cs = med(t, find(t, "shmgraph", "commit", 0, 0));
	double cl = med(t, find(t, "lmdb", "commit", 0, 0));
	double bs = med(t, find(t, "shmgraph", "batch_update", 0, 1000));
	double bl = med(t, find(t, "lmdb", "batch_update", 0, 1000));
	double bs1 = med(t, find(t, "shmgraph", "batch_update", 0, 100));
	double bl1 = med(t, find(t, "lmdb", "batch_update", 0, 100));
	double fcs = med(t, find(t, "shmgraph-fence", "commit", 0, 0));
	double fbs = med(t, find(t, "shmgraph-fence", "batch_update", 0, 1000));
	double ds = med(b, find(b, "shmgraph", "build", 0, 0));
	double dl = med(b, find(b, "lmdb", "build", 0, 0));
	long long ms =
		static_bytes(st, "shmgraph", "bytes_per_entry", "allocator");
	long long ml =
		static_bytes(st, "lmdb", "bytes_per_entry", "psize x tree");
	double bpe = ms >= 0 ? (double)ms / (double)n : NAN;
	double bpl = ml >= 0 ? (double)ml / (double)n : NAN;
	double ret = NAN;

	if (retained_ok && retained.version_bytes > 0)
		ret = (double)(retained.used_pinned - retained.used_unpinned) /
		      (double)retained.version_bytes;
	fprintf(f,
		"\n5. goals (bench/README.md, \"Goals\"), N = %s keys; "
		"map goals are defined at N = 1M\n",
		keys_str(n));
	fprintf(f, "  %-46s %9s  %-22s %s\n", "measure (table it comes from)",
		"measured", "goal", "verdict");
	goal_row(f, n, "lookup ns, shmgraph / urcu-lfht (1.)", sh / lf, "x",
		 "<= 0.5x", at_n(n, le(sh / lf, 0.5)));
	goal_row(f, n, "lookup ns, shmgraph / lmdb (1.)", sh / lm, "x",
		 "<= 0.2x", at_n(n, le(sh / lm, 0.2)));
	goal_row(f, n, "lookup ns, shmgraph, stretch (1.)", sh, " ns",
		 "<= 100 ns", at_n(n, le(sh, 100)));
	goal_row(f, n, "lookup_many ns/key / flat-nolock (1.)", many / fl, "x",
		 "<= 2x", at_n(n, le(many / fl, 2)));
	goal_row(f, n, "lookup_many ns/key / flat-nolock (2.)", manya / fla,
		 "x", "(info)", -1);
	goal_row(f, n, "lookup_many ns/key / shmgraph lookup (1.)", many / sh,
		 "x", "(info)", -1);
	goal_row(f, n, "lookup p50, shmgraph / urcu-lfht (1.)",
		 p50(fr, find(fr, "shmgraph", "lookup", LK_ALONE, 0)) /
			 p50(fr, find(fr, "urcu-lfht", "lookup", LK_ALONE, 0)),
		 "x", "(info: sampled ops)", -1);
	goal_row(f, n, "lookup p50, shmgraph / lmdb (1.)",
		 p50(fr, find(fr, "shmgraph", "lookup", LK_ALONE, 0)) /
			 p50(fr, find(fr, "lmdb", "lookup", LK_ALONE, 0)),
		 "x", "(info: sampled ops)", -1);
	goal_row(f, n, "lookup ns, shmgraph / rwlock-shm (1.)", sh / rw, "x",
		 "(info)", -1);
	goal_row(f, n, "lookup ns, shmgraph / flat-nolock (1.)", sh / fl, "x",
		 "(info: memory bound)", -1);
	goal_row(f, n, "lookup ns after updates / fresh, shmgraph", sha / sh,
		 "x", "(info)", -1);
	goal_row(f, n, "lookup ns after updates / fresh, urcu-lfht", lfa / lf,
		 "x", "(info)", -1);
	goal_row(f, n, "reader rate kept, flat-out writer (2.)", sha / shw, "",
		 ">= 0.8", at_n(n, ge(sha / shw, 0.8)));
	goal_row(f, n, "reader rate kept, paced writer (2.)", sha / shp, "",
		 "(info)", -1);
	goal_row(f, n, "  the same, flat-out writer, lmdb (2.)", lma / lmw, "",
		 "(info)", -1);
	goal_row(f, n, "  the same, flat-out writer, rwlock-shm (2.)",
		 rwa / rww, "", "(info)", -1);
	goal_row(f, n, "  the same, flat-out writer, urcu-lfht (2.)", lfa / lfw,
		 "", "(info)", -1);
	goal_row(f, n, "commits/s, shmgraph / lmdb (2.)", cl / cs, "x", ">= 2x",
		 at_n(n, ge(cl / cs, 2)));
	goal_row(f, n, "updates/s, 1,000 per txn, shmgraph / lmdb", bl / bs,
		 "x", ">= 3x", at_n(n, ge(bl / bs, 3)));
	goal_row(f, n, "updates/s, 100 per txn, shmgraph / lmdb", bl1 / bs1,
		 "x", "(info)", -1);
	goal_row(f, n, "build N keys, shmgraph / lmdb speed (3.)", dl / ds, "x",
		 "(info)", -1);
	if (!isnan(fsh)) {
		goal_row(f, n, "fence: lookup ns, shmgraph / urcu-lfht",
			 fsh / lf, "x", "<= 0.5x", at_n(n, le(fsh / lf, 0.5)));
		goal_row(f, n, "fence: lookup ns, shmgraph / lmdb", fsh / lm,
			 "x", "<= 0.2x", at_n(n, le(fsh / lm, 0.2)));
		goal_row(f, n, "fence: reader rate kept, flat-out writer",
			 fsha / fshw, "", ">= 0.8",
			 at_n(n, ge(fsha / fshw, 0.8)));
		goal_row(f, n, "fence: commits/s, shmgraph / lmdb", cl / fcs,
			 "x", ">= 2x", at_n(n, ge(cl / fcs, 2)));
		goal_row(f, n, "fence: updates/s, 1,000 per txn, / lmdb",
			 bl / fbs, "x", ">= 3x", at_n(n, ge(bl / fbs, 3)));
	}
	if (!isnan(hsh)) {
		goal_row(f, n, "huge pages: lookup ns, huge / 4 KiB (1.)",
			 hsh / sh, "x", "(info)", -1);
		goal_row(f, n, "huge pages: lookup ns, huge / 4 KiB (2.)",
			 hsha / sha, "x", "(info)", -1);
	}
	if (O.k.key_size == 8 && O.k.value_size == 8)
		goal_row(f, n, "bytes per entry, shmgraph (4.)", bpe, " B",
			 "<= 40 B", at_n(n, le(bpe, 40)));
	else
		goal_row(f, n, "bytes per entry, shmgraph (4.)", bpe, " B",
			 "(info: 8 B keys/values)", -1);
	goal_row(f, n, "bytes per entry, shmgraph / lmdb tree (4.)", bpe / bpl,
		 "x", "(info)", -1);
	goal_row(f, n, "retained by pin / v1 size (4.)", ret, "x",
		 "<= 1.1x + 1 grace", /* defined at any N */
		 retained_ok && (retained.pinned_bad ||
				 retained.pinned_bad_before) ?
			 0 :
			 le(ret, 1.1));
	if (retained_ok && (retained.pinned_bad || retained.pinned_bad_before))
		fprintf(f,
			"  NOT met: the pinned v1 lost entries (%llu wrong or "
			"missing before the updates, %llu after), so its "
			"nodes were not retained\n",
			(unsigned long long)retained.pinned_bad_before,
			(unsigned long long)retained.pinned_bad);
	if (retained_ok) {
		char line[512];

		snprintf(line, sizeof(line),
			 "retained_with_pin: v1 %lld B; used before %lld B; "
			 "pinned, after %llu commits, %lld B (%lld B "
			 "retired); live version %lld B; after unpin %lld B "
			 "(right after the commits, before synchronize + "
			 "reclaim: %lld B); %.0f commits/s; v1 read through "
			 "the pin after the commits: %llu of %llu keys wrong "
			 "or missing",
			 retained.version_bytes, retained.used_before,
			 (unsigned long long)retained.updates,
			 retained.used_pinned, retained.retired_pinned,
			 retained.live_bytes, retained.used_unpinned,
			 retained.used_end,
			 retained.ns ? (double)retained.updates * 1e9 /
					       (double)retained.ns :
				       0,
			 (unsigned long long)retained.pinned_bad,
			 (unsigned long long)retained.pinned_checked);
		fputs("  ", f);
		bench_print_wrapped(f, 2, line);
	}
}

/* ---- systems ------------------------------------------------------------ */

static void sys_setup(struct sys *sys, uint64_t n)
{
	int i, err;

	for (i = 0; i < NSYS; i++) {
		struct sys *s = &sys[i];
		bool shmg = i == SYS_SHMGRAPH || i == SYS_SHMGRAPH_FENCE ||
			    i == SYS_SHMGRAPH_HUGE;

		memset(s, 0, sizeof(*s));
		s->p.ops = sys_ops[i];
		s->name = sys_names[i];
		s->want = O.want[i];
		if (!s->want)
			continue;
		if (!s->p.ops) {
			snprintf(s->skip, sizeof(s->skip),
				 "%s not built (library not found)",
				 sys_names[i]);
			fprintf(stderr, "bench_map: %s\n", s->skip);
			continue;
		}
		if (O.verbose)
			fprintf(stderr, "bench_map: building %s, %llu keys\n",
				sys_names[i], (unsigned long long)n);
		s->p.nkeys = n;
		s->p.key_size = O.k.key_size;
		s->p.value_size = O.k.value_size;
		s->p.numa_policy = O.k.numa_policy;
		s->p.numa_node = O.k.numa_node;
		s->p.huge_dir = O.k.huge_dir;
		err = s->p.ops->create(&s->p, n);
		if (!err)
			err = worker_start(&s->p, O.reader_cpu, &s->reader);
		if (!err && !s->p.ops->read_only)
			err = worker_start(&s->p, O.writer_cpu, &s->writer);
		if (err) {
			snprintf(s->skip, sizeof(s->skip), "%s%s: %s",
				 shmg ? "shmgraph map not available" :
					sys_names[i],
				 shmg ? (i == SYS_SHMGRAPH	 ? "" :
					 i == SYS_SHMGRAPH_FENCE ? " (fence)" :
								   " (huge)") :
					" not available",
				 s->p.err[0] ? s->p.err : strerror(-err));
			fprintf(stderr, "bench_map: %s\n", s->skip);
			continue;
		}
		s->ok = true;
	}
}

static void sys_teardown(struct sys *sys)
{
	int i;

	for (i = 0; i < NSYS; i++) {
		struct sys *s = &sys[i];

		worker_stop(s->reader);
		worker_stop(s->writer);
		s->reader = s->writer = NULL;
		if (s->p.ops && s->p.priv)
			s->p.ops->destroy(&s->p);
	}
}

/* ---- main ------------------------------------------------------------- */

static const char usage_text[] =
	"bench_map: persistent map lookups, commits, batches, build, memory\n"
	"and retained memory with a pin, against rwlock-shm, lmdb, urcu-lfht,\n"
	"flat-nolock (and shmgraph-fence: the same map, fence flavor).\n"
	"Defaults: --keys 10000,1000000 (quick: 10000 only), --reps 7 (quick "
	"3),\n--duration-ms 100 (quick 20); --systems from shmgraph, "
	"rwlock-shm, lmdb,\nurcu-lfht, flat-nolock, shmgraph-fence; --numa "
	"applies to the shmgraph segments.\n--key-size 8..256, --value-size "
	"8..4096 (default 8; rwlock-shm and flat-nolock\nrun with 8 only). "
	"--huge or --huge-dir DIR add shmgraph-huge: the same\nmap on a "
	"huge-page segment (SHG_OPEN_HUGE; a file in DIR), interleaved.\n"
	"--cases LIST: run only these case groups: lookup (as built, no "
	"writer),\nmany (lookup_many), updates (table 2: commit, batches, "
	"lookups with a\nwriter), build, bytes (bytes_per_entry), retained "
	"(with a pin); default all.\n";

static int parse_list(const char *arg)
{
	char buf[256], *tok, *save = NULL;
	int i;

	snprintf(buf, sizeof(buf), "%s", arg);
	memset(O.want, 0, sizeof(O.want));
	for (tok = strtok_r(buf, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		for (i = 0; i < NSYS; i++) {
			if (strcmp(tok, sys_names[i]) == 0)
				break;
		}
		if (i == NSYS)
			return -EINVAL;
		O.want[i] = true;
	}
	return 0;
}

/*
 * --cases LIST (bench_map's own option, taken out of argv before the
 * common knobs are parsed): a comma-separated subset of case_names, or
 * "all". 0 or -EINVAL.
 */
static int parse_cases(int *argc, char **argv)
{
	char buf[sizeof(O.cases_arg)], *tok, *save = NULL;
	const char *arg = NULL;
	int i, j = 1;
	unsigned c;

	for (i = 1; i < *argc; i++) {
		if (strcmp(argv[i], "--cases") == 0 && i + 1 < *argc)
			arg = argv[++i];
		else if (strncmp(argv[i], "--cases=", 8) == 0)
			arg = argv[i] + 8;
		else
			argv[j++] = argv[i];
	}
	*argc = j;
	argv[j] = NULL;
	O.cases = CS_ALL;
	snprintf(O.cases_arg, sizeof(O.cases_arg), "all");
	if (!arg)
		return 0;
	snprintf(O.cases_arg, sizeof(O.cases_arg), "%s", arg);
	snprintf(buf, sizeof(buf), "%s", arg);
	O.cases = 0;
	for (tok = strtok_r(buf, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		if (strcmp(tok, "all") == 0) {
			O.cases |= CS_ALL;
			continue;
		}
		for (c = 0; c < sizeof(case_names) / sizeof(case_names[0]);
		     c++) {
			if (strcmp(tok, case_names[c]) == 0)
				break;
		}
		if (c == sizeof(case_names) / sizeof(case_names[0])) {
			fprintf(stderr,
				"bench_map: unknown case in --cases: %s "
				"(lookup, many, updates, build, bytes, "
				"retained, all)\n",
				tok);
			return -EINVAL;
		}
		O.cases |= 1u << c;
	}
	return O.cases ? 0 : -EINVAL;
}

static int parse_args(int argc, char **argv)
{
	struct bench_knobs *k = &O.k;
	size_t len;
	unsigned i;

	if (parse_cases(&argc, argv))
		return -EINVAL;

	if (bench_knobs_parse(k, "bench_map",
			      BK_KEYS | BK_SIZES | BK_SYSTEMS | BK_NUMA |
				      BK_HUGE,
			      usage_text, argc, argv))
		return -EINVAL;
	if (k->key_size > PEER_KEY_MAX || k->value_size > PEER_VAL_MAX) {
		fprintf(stderr,
			"bench_map: --key-size is 8..%d, --value-size 8..%d\n",
			PEER_KEY_MAX, PEER_VAL_MAX);
		return -EINVAL;
	}
	O.quick = k->quick;
	O.pin = k->pin;
	O.verbose = k->verbose;
	O.json = k->json;
	for (i = 0; i < NSYS; i++)
		O.want[i] = i != SYS_SHMGRAPH_HUGE || k->huge;
	if (k->systems && parse_list(k->systems)) {
		fprintf(stderr, "bench_map: unknown system in --systems %s\n",
			k->systems);
		return -EINVAL;
	}
	if (k->nkeys) {
		for (i = 0; i < k->nkeys && i < MAX_SIZES; i++)
			O.sizes[i] = k->keys[i];
		O.nsizes = i;
	} else {
		O.sizes[0] = 10000;
		O.sizes[1] = 1000000;
		O.nsizes = O.quick ? 1 : 2;
	}
	O.reps = k->reps ? k->reps : O.quick ? 3 : 7;
	O.time_ms = k->time_ms ? k->time_ms : O.quick ? 20 : 100;
	k->reps = O.reps;
	k->time_ms = O.time_ms;
	bench_knobs_json(k, config_json, sizeof(config_json));
	/* bench_map's own field, appended to the common config object */
	len = strlen(config_json);
	if (len > 1 && config_json[len - 1] == '}')
		snprintf(config_json + len - 1, sizeof(config_json) - len + 1,
			 ",\"cases\":\"%s\"}", O.cases_arg);
	bench_set_config(config_json);
	return 0;
}

static void setup_cpus(void)
{
	const struct bench_machine *m = bench_machine();

	O.reader_cpu = -1;
	O.writer_cpu = -1;
	if (!O.pin || m->cores < 2)
		return;
	if (bench_pin_cpu(0) == 0) {
		O.writer_cpu = 0;
		O.reader_cpu = m->cores - 1;
	}
}

static int run_size(uint64_t n, FILE *jf, FILE *tf)
{
	static struct case_list fresh, timed, build, stat;
	static struct sys sys[NSYS];
	struct bench_opts o = { 0 };
	char title[160];
	int err;

	memset(&fresh, 0, sizeof(fresh));
	memset(&timed, 0, sizeof(timed));
	memset(&build, 0, sizeof(build));
	memset(&stat, 0, sizeof(stat));
	sys_setup(sys, n);
	add_fresh_cases(&fresh, sys);
	add_timed_cases(&timed, sys);
	add_build_cases(&build, sys);
	add_bytes_cases(&stat, sys);
	if (O.want[SYS_SHMGRAPH] && (O.cases & CS_RETAINED))
		add_retained_cases(&stat, &sys[SYS_SHMGRAPH]);

	o.reps = O.reps;
	o.target_ns = (uint64_t)O.time_ms * 1000000ull;
	o.verbose = O.verbose;
	/* lookups on the maps as built first: nothing has updated them yet */
	err = fresh.n ? bench_run(fresh.c, fresh.n, &o) : 0;
	if (!err && timed.n)
		err = bench_run(timed.c, timed.n, &o);
	if (!err && build.n) {
		o.reps = O.quick ? 2 : 3;
		err = bench_run(build.c, build.n, &o);
	}
	sys_teardown(sys);
	if (err)
		return err;
	finish_notes(&fresh);
	finish_notes(&timed);

	set_labels(&fresh);
	set_labels(&timed);
	set_labels(&build);
	set_labels(&stat);
	bench_json_write(jf, fresh.c, fresh.n);
	bench_json_write(jf, timed.c, timed.n);
	bench_json_write(jf, build.c, build.n);
	bench_json_write(jf, stat.c, stat.n);
	print_configs(tf, sys);
	snprintf(title, sizeof(title),
		 "bench_map, N = %s keys, 1. lookups on the maps as built "
		 "(no update yet):",
		 keys_str(n));
	if (fresh.n) {
		bench_table_print(tf, fresh.c, fresh.n, title);
		bench_peer_matrix(tf, fresh.c, fresh.n,
				  "Side by side (1.):", "shmgraph");
	}
	snprintf(title, sizeof(title),
		 "bench_map, N = %s keys, 2. after the update cases "
		 "(commit, batch, writer; interleaved reps):",
		 keys_str(n));
	if (timed.n) {
		bench_table_print(tf, timed.c, timed.n, title);
		bench_peer_matrix(tf, timed.c, timed.n,
				  "Side by side (2.):", "shmgraph");
	}
	if (build.n) {
		bench_table_print(tf, build.c, build.n,
				  "3. build (ns per inserted key):");
		bench_peer_matrix(tf, build.c, build.n,
				  "Side by side (3.):", "shmgraph");
	}
	if (stat.n)
		print_memory(tf, &stat, n);
	if (O.cases == CS_ALL)
		print_goals(tf, &fresh, &timed, &build, &stat, n);
	bench_cases_free(fresh.c, fresh.n);
	bench_cases_free(timed.c, timed.n);
	bench_cases_free(build.c, build.n);
	fflush(tf);
	return 0;
}

int main(int argc, char **argv)
{
	FILE *jf = stdout, *tf = stderr;
	unsigned i;
	int err = 0;

	if (parse_args(argc, argv))
		return 2;
	if (O.json && strcmp(O.json, "-") != 0) {
		jf = fopen(O.json, "ae");
		if (!jf) {
			fprintf(stderr, "bench_map: %s: %s\n", O.json,
				strerror(errno));
			return 1;
		}
		tf = stdout;
	}
	setup_cpus();
	for (i = 0; i < O.nsizes && !err; i++)
		err = run_size(O.sizes[i], jf, tf);
	if (O.reader_cpu < 0)
		fprintf(tf, "Readers and writers were not pinned to CPUs.\n");
	else
		fprintf(tf,
			"Reader worker pinned to CPU %d; writer worker and the "
			"benchmark\n(commit, batch, build cases) to CPU %d.\n",
			O.reader_cpu, O.writer_cpu);
	if (jf != stdout)
		fclose(jf);
	return err ? 1 : 0;
}
