/* SPDX-License-Identifier: MIT */
/*
 * bench_scale - reader scaling: 1..P reader processes looking up random
 * keys of one N-key map while 0, 1 or 2 writer processes update it, for
 * shmgraph and its peers side by side in one run:
 *
 *   shmgraph     persistent map in a segment (peer_shmgraph.c)
 *   rwlock-shm   hash table in POSIX shm behind a process-shared rwlock
 *   lmdb         LMDB environment on /dev/shm, one read txn per lookup
 *   urcu-lfht    liburcu cds_lfht: readers and writers are THREADS of one
 *                process (the in-process bound; no process boundary)
 *   flat-nolock  the table read without synchronization (no writers)
 *
 * Each step runs all readers concurrently for --duration-ms (they start
 * within microseconds of each other); the figure of a step is the total
 * lookups per second of all readers (JSON ops_per_s; ns_per_op is its
 * inverse), with each reader's own rate, the total per NUMA node of the
 * readers' CPUs, the writers' update rate and commit latency, and the
 * scaling efficiency total(R) / (R x total(1)). Steps are calibrated
 * once, then repeated interleaved (--reps); medians and min-max.
 *
 * Placement: readers on CPUs from the front of the --cpus / --place order,
 * writers from the back (knobs.c); with more workers than CPUs they share
 * CPUs and the record says "oversubscribed".
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "benchutil.h"
#include "knobs.h"
#include "peers.h"
#include <shmgraph.h>

#define MAX_READERS 64
#define MAX_WRITERS 8

enum {
	SYS_SHMGRAPH,
	SYS_RWLOCK,
	SYS_LMDB,
	SYS_LFHT,
	SYS_FLAT,
	SYS_SHMGRAPH_FENCE, /* only when named in --systems */
	NSYS
};

static const char *const sys_names[NSYS] = { "shmgraph",    "rwlock-shm",
					     "lmdb",	    "urcu-lfht",
					     "flat-nolock", "shmgraph-fence" };

static const struct peer_ops *sys_ops(int i)
{
	switch (i) {
	case SYS_SHMGRAPH:
		return &peer_shmgraph_ops;
	case SYS_RWLOCK:
		return &peer_rwlock_ops;
#ifdef HAVE_LMDB
	case SYS_LMDB:
		return &peer_lmdb_ops;
#endif
	case SYS_LFHT:
		return &peer_lfht_ops;
	case SYS_FLAT:
		return &peer_flat_ops;
	case SYS_SHMGRAPH_FENCE:
		return &peer_shmgraph_fence_ops;
	default:
		return NULL;
	}
}

struct sys {
	struct peer p;
	bool want, ok;
	char skip[320];
	char mem[160]; /* how its memory was placed */
	struct worker *reader[MAX_READERS];
	struct worker *writer[MAX_WRITERS];
	int reader_cpu[MAX_READERS];
	int writer_cpu[MAX_WRITERS];
	unsigned nreaders, nwriters;
};

/* One step: a system, R readers, W writers. */
struct step {
	struct sys *sys;
	unsigned readers, writers;
	uint64_t seed;
	/* per rep: each reader's lookups/s; writers' updates/s */
	double rate[BENCH_MAX_REPS][MAX_READERS];
	double wrate[BENCH_MAX_REPS];
	int cpu_seen[MAX_READERS];
	unsigned nrates;
	uint64_t lookups, misses, updates_in_mix;
	struct bench_hist whist; /* writers' sampled commit latencies */
	double per[MAX_READERS]; /* medians of each reader's rate */
	double node_rate[SHG_MAX_NODES]; /* sum of per[] by reader node */
	char label[64], group[32], variant[480];
	char extra[1024];
};

static struct bench_knobs K;
static struct bench_topo T;
static struct bench_keydist D;
static char config_json[1024];

#define MAX_STEPS 256
static struct bench_case cases[MAX_STEPS];
static struct step steps[MAX_STEPS];
static size_t nsteps;

static int step_fail(struct bench_case *c, const char *what, int err,
		     const char *msg)
{
	bench_case_skip(c, "failed: %s: %s", what,
			msg && *msg ? msg : strerror(-err));
	return err < 0 ? err : -EIO;
}

static void stop_writers(struct step *st, unsigned n, uint64_t *ops,
			 uint64_t *ns, int *err)
{
	unsigned i;

	for (i = 0; i < n; i++) {
		uint64_t o = 0, t = 0;
		int e = worker_write_stop(st->sys->writer[i], &o, &t);

		if (e && !*err)
			*err = e;
		*ops += o;
		if (t > *ns)
			*ns = t;
		bench_hist_merge(&st->whist,
				 worker_write_hist(st->sys->writer[i]));
	}
}

static int run_step(struct bench_case *c, const struct bench_ctl *ctl,
		    struct bench_sample *out)
{
	struct step *st = c->arg;
	struct sys *s = st->sys;
	struct lookup_job j[MAX_READERS];
	uint64_t wops = 0, wns = 0, total_ops = 0, wall = 0;
	double sum_rate = 0;
	unsigned i, started = 0;
	int err = 0;

	for (i = 0; i < st->writers && !err; i++) {
		worker_write_config(s->writer[i], K.txn_size, &D);
		err = worker_write_start(s->writer[i], K.write_rate);
		started = i + 1;
	}
	if (err) {
		stop_writers(st, started, &wops, &wns, &err);
		return step_fail(c, "writer", err,
				 worker_error(s->writer[started - 1]));
	}
	for (i = 0; i < st->readers; i++) {
		memset(&j[i], 0, sizeof(j[i]));
		j[i].nkeys = s->p.nkeys;
		j[i].dist = D;
		j[i].duration_ns = ctl->target_ns;
		j[i].seed = 0x1234567ull + ++st->seed * 0x9e3779b97f4a7c15ull;
		j[i].hist = ctl->hist;
		j[i].read_pct = K.read_pct;
		j[i].txn_size = K.txn_size;
		worker_lookup_post(s->reader[i], &j[i]);
	}
	for (i = 0; i < st->readers; i++) {
		int e = worker_lookup_wait(s->reader[i], &j[i]);

		if (e && !err)
			err = step_fail(c, "reader", e,
					worker_error(s->reader[i]));
	}
	stop_writers(st, st->writers, &wops, &wns, &err);
	if (err)
		return c->skip ? err : step_fail(c, "writer", err, NULL);
	for (i = 0; i < st->readers; i++) {
		double r = j[i].ns ? (double)j[i].ops * 1e9 / (double)j[i].ns :
				     0;

		if (st->nrates < BENCH_MAX_REPS)
			st->rate[st->nrates][i] = r;
		st->cpu_seen[i] = j[i].cpu;
		sum_rate += r;
		total_ops += j[i].ops;
		st->lookups += j[i].ops - j[i].updates;
		st->updates_in_mix += j[i].updates;
		st->misses += j[i].misses;
		if (j[i].ns > wall)
			wall = j[i].ns;
	}
	if (st->nrates < BENCH_MAX_REPS)
		st->wrate[st->nrates++] =
			wns ? (double)wops * 1e9 / (double)wns : 0;
	/* ns per op of the readers together: 1 / (sum of their rates) */
	out->ops = total_ops;
	out->ns = sum_rate > 0 ?
			  (uint64_t)((double)total_ops * 1e9 / sum_rate) :
			  wall;
	return 0;
}

/* ---- systems ---------------------------------------------------------- */

static unsigned max_writers(void)
{
	unsigned i, m = 0;

	for (i = 0; i < K.nwriters; i++)
		if ((unsigned)K.writers[i] > m)
			m = (unsigned)K.writers[i];
	return m < MAX_WRITERS ? m : MAX_WRITERS;
}

static int cpu_for(bool writer, unsigned i)
{
	if (!K.pin)
		return -1;
	return bench_topo_place(
		&T, K.place, writer ? K.writer_node : K.reader_node, writer, i);
}

static int sys_start(struct sys *s, int idx, uint64_t n, unsigned nreaders)
{
	unsigned i, nw = s->p.ops->read_only ? 0 : max_writers();
	int err;

	s->p.nkeys = n;
	s->p.numa_policy = K.numa_policy;
	s->p.numa_node = K.numa_node;
	if (idx == SYS_SHMGRAPH || idx == SYS_SHMGRAPH_FENCE) {
		snprintf(s->mem, sizeof(s->mem), "segment numa_policy %s",
			 K.numa);
	} else {
		bench_numa_process_apply(&K, &T, s->mem, sizeof(s->mem));
	}
	err = s->p.ops->create(&s->p, n);
	if (idx != SYS_SHMGRAPH && idx != SYS_SHMGRAPH_FENCE)
		bench_numa_process_reset();
	if (err)
		return err;
	for (i = 0; i < nreaders && !err; i++) {
		s->reader_cpu[i] = cpu_for(false, i);
		err = worker_start(&s->p, s->reader_cpu[i], &s->reader[i]);
		if (!err)
			s->nreaders = i + 1;
	}
	for (i = 0; i < nw && !err; i++) {
		s->writer_cpu[i] = cpu_for(true, i);
		err = worker_start(&s->p, s->writer_cpu[i], &s->writer[i]);
		if (!err)
			s->nwriters = i + 1;
	}
	return err;
}

static void sys_stop(struct sys *s)
{
	unsigned i;

	for (i = 0; i < s->nreaders; i++)
		worker_stop(s->reader[i]);
	for (i = 0; i < s->nwriters; i++)
		worker_stop(s->writer[i]);
	s->nreaders = s->nwriters = 0;
	if (s->p.ops && s->p.priv)
		s->p.ops->destroy(&s->p);
}

static bool want_system(const char *name)
{
	char buf[256], *tok, *save = NULL;

	if (!K.systems) /* the fence flavor only on request */
		return strcmp(name, sys_names[SYS_SHMGRAPH_FENCE]) != 0;
	snprintf(buf, sizeof(buf), "%s", K.systems);
	for (tok = strtok_r(buf, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save))
		if (strcmp(tok, name) == 0)
			return true;
	return false;
}

static void sys_setup(struct sys *sys, uint64_t n, unsigned nreaders)
{
	int i, err;

	for (i = 0; i < NSYS; i++) {
		struct sys *s = &sys[i];

		memset(s, 0, sizeof(*s));
		s->p.ops = sys_ops(i);
		s->want = want_system(sys_names[i]);
		if (!s->want)
			continue;
		if (!s->p.ops) {
			snprintf(s->skip, sizeof(s->skip),
				 "%s not built (library not found)",
				 sys_names[i]);
			continue;
		}
		if (K.verbose)
			fprintf(stderr, "bench_scale: starting %s, %llu keys\n",
				sys_names[i], (unsigned long long)n);
		err = sys_start(s, i, n, nreaders);
		if (err) {
			snprintf(s->skip, sizeof(s->skip), "%s: %s",
				 sys_names[i],
				 s->p.err[0] ? s->p.err : strerror(-err));
			fprintf(stderr, "bench_scale: %s\n", s->skip);
			continue;
		}
		s->ok = true;
	}
}

/* ---- steps -------------------------------------------------------------- */

static void add_step(struct sys *s, unsigned r, unsigned w)
{
	struct bench_case *c;
	struct step *st;

	if (nsteps >= MAX_STEPS)
		return;
	c = &cases[nsteps];
	st = &steps[nsteps++];
	memset(st, 0, sizeof(*st));
	bench_hist_reset(&st->whist);
	st->sys = s;
	st->readers = r;
	st->writers = w;
	bench_case_init(c);
	snprintf(st->label, sizeof(st->label), "%u reader%s, %u writer%s", r,
		 r == 1 ? "" : "s", w, w == 1 ? "" : "s");
	snprintf(st->group, sizeof(st->group), "R=%u W=%u", r, w);
	snprintf(st->variant, sizeof(st->variant),
		 "%s; %u reader %s, %u writer %s; readers %u%% lookups; "
		 "writer txns of %u, %s",
		 s->p.variant[0] ? s->p.variant : "-", r,
		 s->p.ops && s->p.ops->in_process ? "threads" : "processes", w,
		 s->p.ops && s->p.ops->in_process ? "threads" : "processes",
		 K.read_pct, K.txn_size, K.write_rate ? "paced" : "flat out");
	c->system = s->p.ops ? s->p.ops->system : "?";
	c->variant = st->variant;
	c->label = st->label;
	c->group = st->group;
	c->workload = "scale";
	c->readers = (int)r;
	c->writers = (int)w;
	c->keys = (long long)s->p.nkeys;
	c->numa = K.numa;
	c->run = run_step;
	c->arg = st;
	c->timed = true;
	c->latency = true;
	if (!s->ok)
		bench_case_skip(c, "%s", s->skip);
	else if (r > s->nreaders || w > s->nwriters)
		bench_case_skip(c, "only %u readers / %u writers started",
				s->nreaders, s->nwriters);
}

static void add_steps(struct sys *sys, unsigned p)
{
	unsigned wi, r;
	int i;

	for (wi = 0; wi < K.nwriters; wi++) {
		unsigned w = (unsigned)K.writers[wi];

		for (r = 1; r <= p; r++) {
			for (i = 0; i < NSYS; i++) {
				struct sys *s = &sys[i];

				if (!s->want ||
				    (w && s->p.ops && s->p.ops->read_only))
					continue;
				add_step(s, r, w);
			}
		}
	}
}

/* ---- results ------------------------------------------------------------- */

static double median_of(const double *v, unsigned n)
{
	struct bench_summary s;

	bench_summarize(v, n, &s);
	return s.median;
}

static double step_total(const struct step *a)
{
	const struct bench_case *c = &cases[a - steps];
	struct bench_summary s;

	if (c->skip || !c->nreps)
		return NAN;
	bench_summarize(c->rep_ns, c->nreps, &s);
	return 1e9 / s.median;
}

/* The R=1 step of the same system and writers. */
static const struct step *base_step(const struct step *st)
{
	size_t i;

	for (i = 0; i < nsteps; i++)
		if (steps[i].sys == st->sys && steps[i].readers == 1 &&
		    steps[i].writers == st->writers)
			return &steps[i];
	return NULL;
}

static void finish_step(struct step *st, struct bench_case *c)
{
	double *per = st->per, *node_rate = st->node_rate, v[64];
	const struct step *b = base_step(st);
	unsigned i, k, ncpu_used = st->readers + st->writers;
	size_t o = 0;
	double eff = NAN, total = step_total(st);

	if (c->skip || !st->nrates)
		return;
	for (i = 0; i < st->readers; i++) {
		int cpu = st->sys->reader_cpu[i] >= 0 ? st->sys->reader_cpu[i] :
							st->cpu_seen[i];
		int node = cpu >= 0 ? bench_topo_node_of(&T, cpu) : 0;

		for (k = 0; k < st->nrates; k++)
			v[k] = st->rate[k][i];
		per[i] = median_of(v, st->nrates);
		if (node >= 0 && node < SHG_MAX_NODES)
			node_rate[node] += per[i];
	}
	if (b && st->readers)
		eff = total / ((double)st->readers * step_total(b));
	c->misses = (long long)st->misses;
	bench_append(st->extra, sizeof(st->extra), &o,
		     ",\"per_reader_ops_per_s\":[");
	for (i = 0; i < st->readers; i++)
		bench_append(st->extra, sizeof(st->extra), &o, "%s%.0f",
			     i ? "," : "", per[i]);
	bench_append(st->extra, sizeof(st->extra), &o,
		     "],\"per_node_ops_per_s\":[");
	for (i = 0; i < T.nodes && i < SHG_MAX_NODES; i++)
		bench_append(st->extra, sizeof(st->extra), &o, "%s%.0f",
			     i ? "," : "", node_rate[i]);
	bench_append(st->extra, sizeof(st->extra), &o, "],\"reader_cpus\":[");
	for (i = 0; i < st->readers; i++)
		bench_append(st->extra, sizeof(st->extra), &o, "%s%d",
			     i ? "," : "", st->cpu_seen[i]);
	bench_append(st->extra, sizeof(st->extra), &o, "],\"writer_cpus\":[");
	for (i = 0; i < st->writers; i++)
		bench_append(st->extra, sizeof(st->extra), &o, "%s%d",
			     i ? "," : "", st->sys->writer_cpu[i]);
	bench_append(st->extra, sizeof(st->extra), &o, "]");
	if (st->writers) {
		bench_append(
			st->extra, sizeof(st->extra), &o,
			",\"writer_ops_per_s\":%.0f,\"writer_p50_ns\":%llu,"
			"\"writer_p99_ns\":%llu",
			median_of(st->wrate, st->nrates),
			(unsigned long long)bench_hist_quantile(&st->whist,
								0.5),
			(unsigned long long)bench_hist_quantile(&st->whist,
								0.99));
	}
	if (!isnan(eff))
		bench_append(st->extra, sizeof(st->extra), &o,
			     ",\"scaling_efficiency\":%.3f", eff);
	bench_append(
		st->extra, sizeof(st->extra), &o,
		",\"updates_in_mix\":%llu,\"oversubscribed\":%s,\"in_process\":"
		"%s,\"memory_placement\":\"%s\"",
		(unsigned long long)st->updates_in_mix,
		K.pin && ncpu_used > T.ncpus ? "true" : "false",
		st->sys->p.ops->in_process ? "true" : "false", st->sys->mem);
	c->json_extra = st->extra;
}

static void print_scaling(FILE *f, unsigned p)
{
	unsigned wi, r;
	int i;

	fprintf(f,
		"\nScaling: total lookups/s of all readers (Mops/s) and "
		"efficiency total(R) / (R x total(1));\nwriters' updates/s\n");
	fprintf(f, "%-12s %3s", "system", "W");
	for (r = 1; r <= p; r++)
		fprintf(f, "   R=%-2u Mops/s  eff", r);
	fprintf(f, "   writer upd/s\n");
	fprintf(f, "(* more workers than CPUs: they share CPUs, so the "
		   "efficiency says little)\n");
	for (i = 0; i < NSYS; i++) {
		for (wi = 0; wi < K.nwriters; wi++) {
			unsigned w = (unsigned)K.writers[wi];
			double wr = NAN, t1 = NAN;
			size_t s;
			bool any = false;

			for (r = 1; r <= p; r++) {
				for (s = 0; s < nsteps; s++) {
					struct step *st = &steps[s];
					double t;

					if (st->sys->p.ops != sys_ops(i) ||
					    st->readers != r ||
					    st->writers != w)
						continue;
					if (!any)
						fprintf(f, "%-12s %3u",
							sys_names[i], w);
					any = true;
					t = step_total(st);
					if (r == 1)
						t1 = t;
					fprintf(f, "   %11.2f %5.2f%s", t / 1e6,
						t / (r * t1),
						K.pin && r + w > T.ncpus ? "*" :
									   " ");
					if (w && st->nrates)
						wr = median_of(st->wrate,
							       st->nrates);
				}
			}
			if (any)
				fprintf(f, "   %12.0f\n", wr);
		}
	}
}

static void print_nodes(FILE *f, unsigned p)
{
	size_t i;
	unsigned r;
	char line[512];

	snprintf(line, sizeof(line),
		 "Placement: %s; readers from the front of the %s "
		 "order, writers from the back%s",
		 T.desc, K.place, K.pin ? "" : " (not pinned: --no-pin)");
	fputc('\n', f);
	bench_print_wrapped(f, 0, line);
	for (i = 0; i < nsteps; i++) {
		const struct step *st = &steps[i];

		if (cases[i].skip || !st->nrates || st->readers != p)
			continue;
		fprintf(f, "  %-12s R=%u W=%u  reader cpu:Mops/s",
			cases[i].system, st->readers, st->writers);
		for (r = 0; r < st->readers; r++)
			fprintf(f, " %d:%.2f", st->cpu_seen[r],
				st->per[r] / 1e6);
		fprintf(f, "  per node Mops/s:");
		for (r = 0; r < T.nodes && r < SHG_MAX_NODES; r++)
			fprintf(f, " n%u=%.2f", r, st->node_rate[r] / 1e6);
		fputc('\n', f);
	}
}

static int run_size(uint64_t n, FILE *jf, FILE *tf, unsigned p)
{
	static struct sys sys[NSYS];
	struct bench_opts o = { 0 };
	char title[256];
	size_t i;
	int err, s;

	bench_keydist_init(&D, n, K.dist, K.zipf_theta);
	nsteps = 0;
	sys_setup(sys, n, p);
	add_steps(sys, p);
	o.reps = K.reps;
	o.target_ns = (uint64_t)K.time_ms * 1000000ull;
	o.verbose = K.verbose;
	err = bench_run(cases, nsteps, &o);
	for (s = 0; s < NSYS; s++)
		sys_stop(&sys[s]);
	if (err)
		return err;
	for (i = 0; i < nsteps; i++)
		finish_step(&steps[i], &cases[i]);
	bench_json_write(jf, cases, nsteps);
	snprintf(title, sizeof(title),
		 "bench_scale, N = %llu keys (%s keys), readers 1..%u: total "
		 "lookups of all readers, ns/op = 1 / (sum of reader rates); "
		 "p50/p99/p999 from every 64th lookup",
		 (unsigned long long)n,
		 K.dist == BENCH_DIST_ZIPF ? "zipfian" : "uniform", p);
	bench_table_print(tf, cases, nsteps, title);
	bench_peer_matrix(
		tf, cases, nsteps,
		"Peers side by side (same run, interleaved reps):", "shmgraph");
	print_scaling(tf, p);
	print_nodes(tf, p);
	for (s = 0; s < NSYS; s++) {
		char line[512];

		if (!sys[s].want)
			continue;
		if (sys[s].ok)
			snprintf(line, sizeof(line), "%s; memory: %s",
				 sys[s].p.variant, sys[s].mem);
		else
			snprintf(line, sizeof(line), "not run: %s",
				 sys[s].skip);
		fprintf(tf, "  %-12s ", sys_names[s]);
		bench_print_wrapped(tf, 15, line);
	}
	bench_cases_free(cases, nsteps);
	return 0;
}

static const char usage_text[] =
	"bench_scale: 1..P reader processes x 0/1/2 writer processes on one "
	"map,\n"
	"shmgraph, rwlock-shm, lmdb, urcu-lfht (threads), flat-nolock.\n"
	"Defaults: --keys 1M (quick 10k), --readers = CPUs, --writers 0,1,2,\n"
	"--duration-ms 100 (quick 20), --reps 5 (quick 3).\n";

int main(int argc, char **argv)
{
	FILE *jf = stdout, *tf = stderr;
	unsigned i, p;
	int err = 0;

	if (bench_knobs_parse(&K, "bench_scale",
			      BK_KEYS | BK_MIX | BK_PACE | BK_TXN | BK_DIST |
				      BK_READERS | BK_NUMA | BK_SYSTEMS,
			      usage_text, argc, argv))
		return 2;
	if (bench_topo_init(&T, K.cpus_arg)) {
		fprintf(stderr, "bench_scale: bad --cpus %s\n", K.cpus_arg);
		return 2;
	}
	if (!K.nkeys) {
		K.keys[0] = K.quick ? 10000 : 1000000;
		K.nkeys = 1;
	}
	if (!K.reps)
		K.reps = K.quick ? 3 : 5;
	if (!K.time_ms)
		K.time_ms = K.quick ? 20 : 100;
	p = K.max_readers ? K.max_readers : T.ncpus;
	if (p > MAX_READERS)
		p = MAX_READERS;
	K.max_readers = p;
	bench_knobs_json(&K, config_json, sizeof(config_json));
	bench_set_config(config_json);
	bench_machine_set_topology(T.desc);
	if (K.json && strcmp(K.json, "-") != 0) {
		jf = fopen(K.json, "ae");
		if (!jf) {
			fprintf(stderr, "bench_scale: %s: %s\n", K.json,
				strerror(errno));
			return 1;
		}
		tf = stdout;
	}
	for (i = 0; i < K.nkeys && !err; i++)
		err = run_size(K.keys[i], jf, tf, p);
	if (jf != stdout)
		fclose(jf);
	return err ? 1 : 0;
}
