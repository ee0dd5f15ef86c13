/* SPDX-License-Identifier: MIT */
/*
 * Workload knobs, key distributions and CPU placement for the benchmark
 * programs (see knobs.h).
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <numa.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/shgutil.h"
#include "knobs.h"
#include <shmgraph.h>

/* ---- parsing ---------------------------------------------------------------- */

static const char common_usage[] =
	"common options (every suite; a knob that does not apply is ignored "
	"with a note):\n"
	"  --quick             short run (smoke test)\n"
	"  --json FILE         append JSON lines to FILE ('-': stdout)\n"
	"  --reps N            repetitions per case (medians, min-max)\n"
	"  --duration-ms MS    length of one rep (alias --time-ms)\n"
	"  --keys N[,N..]      key counts, e.g. 10000,1000000,10000000 "
	"(k/M: 10^3/10^6)\n"
	"  --key-size B        key bytes (8)      --value-size B  value bytes "
	"(8)\n"
	"                      (byte sizes: k/M = 2^10/2^20)\n"
	"  --read-pct P        % lookups in a reader's loop, rest updates "
	"(100)\n"
	"  --write-rate R      writer txns per second, 0 = flat out (0)\n"
	"  --txn-size K        updates per writer txn (1)\n"
	"  --dist uniform|zipf[:THETA]  key popularity (uniform; zipf 0.99)\n"
	"  --readers P         reader processes 1..P (default: CPUs)\n"
	"  --writers LIST      writer processes per step (0,1,2)\n"
	"  --systems LIST      subset of the systems measured\n"
	"  --depths LIST       graph depths (8,12,16)\n"
	"  --numa local|interleave|bind:N  placement of segment memory\n"
	"  --cpus LIST         CPUs for workers, e.g. 0-7,16 (all online)\n"
	"  --place spread|compact  readers alternate nodes / fill a node\n"
	"  --reader-node N, --writer-node N  keep readers/writers on node N\n"
	"  --huge              also run shmgraph on a huge-page segment\n"
	"                      (SHG_OPEN_HUGE on a POSIX shm name)\n"
	"  --huge-dir DIR      the same, its segment a file in DIR (a tmpfs\n"
	"                      mounted with huge=within_size)\n"
	"  --no-pin            do not pin workers to CPUs\n"
	"  --verbose           progress on stderr\n";

/* A count (k = 1000, see shgutil.h) in [lo, hi]. */
static int parse_uint(const char *s, unsigned *out, unsigned lo, unsigned hi)
{
	uint64_t v;

	if (shg__parse_count(s, &v) || v < lo || v > hi)
		return -EINVAL;
	*out = (unsigned)v;
	return 0;
}

/* A byte size (K = 1024, see shgutil.h) in [lo, hi]. */
static int parse_bytes(const char *s, unsigned *out, unsigned lo, unsigned hi)
{
	uint64_t v;

	if (shg__parse_size(s, &v) || v < lo || v > hi)
		return -EINVAL;
	*out = (unsigned)v;
	return 0;
}

static int parse_u64_list(const char *arg, uint64_t *v, unsigned *n,
			  unsigned max)
{
	char buf[256], *tok, *save = NULL;

	snprintf(buf, sizeof(buf), "%s", arg);
	*n = 0;
	for (tok = strtok_r(buf, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		if (*n >= max || shg__parse_count(tok, &v[*n]))
			return -EINVAL;
		(*n)++;
	}
	return *n ? 0 : -EINVAL;
}

static int parse_numa(struct bench_knobs *k, const char *s)
{
	snprintf(k->numa, sizeof(k->numa), "%s", s);
	if (strcmp(s, "local") == 0) {
		k->numa_policy = SHG_NUMA_LOCAL;
	} else if (strcmp(s, "interleave") == 0) {
		k->numa_policy = SHG_NUMA_INTERLEAVE;
	} else if (strncmp(s, "bind:", 5) == 0) {
		unsigned node;

		if (parse_uint(s + 5, &node, 0, SHG_MAX_NODES - 1))
			return -EINVAL;
		k->numa_policy = SHG_NUMA_BIND;
		k->numa_node = (int)node;
	} else {
		return -EINVAL;
	}
	return 0;
}

static int parse_dist(struct bench_knobs *k, const char *s)
{
	if (strcmp(s, "uniform") == 0) {
		k->dist = BENCH_DIST_UNIFORM;
		return 0;
	}
	if (strncmp(s, "zipf", 4) != 0)
		return -EINVAL;
	k->dist = BENCH_DIST_ZIPF;
	if (s[4] == ':') {
		char *end;

		k->zipf_theta = strtod(s + 5, &end);
		if (*end || !(k->zipf_theta > 0 && k->zipf_theta < 5) ||
		    k->zipf_theta == 1.0)
			return -EINVAL;
	} else if (s[4]) {
		return -EINVAL;
	}
	return 0;
}

static void ignored(const struct bench_knobs *k, unsigned bit, const char *name)
{
	if (!(k->applies & bit))
		fprintf(stderr,
			"%s: %s does not apply to this suite; ignored\n",
			k->prog, name);
}

enum {
	O_QUICK = 256,
	O_JSON,
	O_REPS,
	O_TIME,
	O_KEYS,
	O_KSIZE,
	O_VSIZE,
	O_READPCT,
	O_RATE,
	O_TXN,
	O_DIST,
	O_READERS,
	O_WRITERS,
	O_SYSTEMS,
	O_DEPTHS,
	O_NUMA,
	O_CPUS,
	O_PLACE,
	O_RNODE,
	O_WNODE,
	O_HUGE,
	O_HUGE_DIR,
	O_NOPIN,
	O_VERBOSE,
	O_HELP,
};

static const struct option long_opts[] = {
	{ "quick", no_argument, NULL, O_QUICK },
	{ "json", required_argument, NULL, O_JSON },
	{ "reps", required_argument, NULL, O_REPS },
	{ "duration-ms", required_argument, NULL, O_TIME },
	{ "time-ms", required_argument, NULL, O_TIME },
	{ "keys", required_argument, NULL, O_KEYS },
	{ "key-size", required_argument, NULL, O_KSIZE },
	{ "value-size", required_argument, NULL, O_VSIZE },
	{ "read-pct", required_argument, NULL, O_READPCT },
	{ "write-rate", required_argument, NULL, O_RATE },
	{ "txn-size", required_argument, NULL, O_TXN },
	{ "dist", required_argument, NULL, O_DIST },
	{ "readers", required_argument, NULL, O_READERS },
	{ "writers", required_argument, NULL, O_WRITERS },
	{ "systems", required_argument, NULL, O_SYSTEMS },
	{ "depths", required_argument, NULL, O_DEPTHS },
	{ "numa", required_argument, NULL, O_NUMA },
	{ "cpus", required_argument, NULL, O_CPUS },
	{ "place", required_argument, NULL, O_PLACE },
	{ "reader-node", required_argument, NULL, O_RNODE },
	{ "writer-node", required_argument, NULL, O_WNODE },
	{ "huge", no_argument, NULL, O_HUGE },
	{ "huge-dir", required_argument, NULL, O_HUGE_DIR },
	{ "no-pin", no_argument, NULL, O_NOPIN },
	{ "verbose", no_argument, NULL, O_VERBOSE },
	{ "help", no_argument, NULL, O_HELP },
	{ NULL, 0, NULL, 0 },
};

static void knobs_defaults(struct bench_knobs *k, const char *prog,
			   unsigned applies)
{
	memset(k, 0, sizeof(*k));
	k->prog = prog;
	k->applies = applies;
	k->pin = true;
	k->key_size = 8;
	k->value_size = 8;
	k->read_pct = 100;
	k->txn_size = 1;
	k->zipf_theta = 0.99;
	k->writers[0] = 0;
	k->writers[1] = 1;
	k->writers[2] = 2;
	k->nwriters = 3;
	snprintf(k->numa, sizeof(k->numa), "local");
	k->numa_policy = SHG_NUMA_LOCAL;
	snprintf(k->place, sizeof(k->place), "spread");
	k->reader_node = -1;
	k->writer_node = -1;
}

/* One option; 0 or -EINVAL. */
static int knob_set(struct bench_knobs *k, int ch, const char *a)
{
	uint64_t v[BENCH_MAX_SIZES];
	unsigned n, i, u;

	switch (ch) {
	case O_QUICK:
		k->quick = true;
		return 0;
	case O_JSON:
		k->json = a;
		return 0;
	case O_REPS:
		return parse_uint(a, &k->reps, 1, 64);
	case O_TIME:
		return parse_uint(a, &k->time_ms, 1, 3600000);
	case O_KEYS:
		ignored(k, BK_KEYS, "--keys");
		if (parse_u64_list(a, k->keys, &k->nkeys, BENCH_MAX_SIZES))
			return -EINVAL;
		for (i = 0; i < k->nkeys; i++)
			if (!k->keys[i])
				return -EINVAL;
		return 0;
	case O_KSIZE:
		ignored(k, BK_SIZES, "--key-size");
		return parse_bytes(a, &k->key_size, 8, 1u << 20);
	case O_VSIZE:
		ignored(k, BK_SIZES, "--value-size");
		return parse_bytes(a, &k->value_size, 8, 64u << 20);
	case O_READPCT:
		ignored(k, BK_MIX, "--read-pct");
		return parse_uint(a, &k->read_pct, 0, 100);
	case O_RATE:
		ignored(k, BK_PACE, "--write-rate");
		return shg__parse_count(a, &k->write_rate);
	case O_TXN:
		ignored(k, BK_TXN, "--txn-size");
		return parse_uint(a, &k->txn_size, 1, 1000);
	case O_DIST:
		ignored(k, BK_DIST, "--dist");
		return parse_dist(k, a);
	case O_READERS:
		ignored(k, BK_READERS, "--readers");
		return parse_uint(a, &k->max_readers, 1, 256);
	case O_WRITERS:
		ignored(k, BK_READERS, "--writers");
		if (parse_u64_list(a, v, &n, 4))
			return -EINVAL;
		for (i = 0; i < n; i++) {
			if (v[i] > 8)
				return -EINVAL;
			k->writers[i] = (int)v[i];
		}
		k->nwriters = n;
		return 0;
	case O_SYSTEMS:
		ignored(k, BK_SYSTEMS, "--systems");
		k->systems = a;
		return 0;
	case O_DEPTHS:
		ignored(k, BK_DEPTH, "--depths");
		if (parse_u64_list(a, v, &n, BENCH_MAX_SIZES))
			return -EINVAL;
		for (i = 0; i < n; i++) {
			if (v[i] < 1 || v[i] > 24)
				return -EINVAL;
			k->depths[i] = (unsigned)v[i];
		}
		k->ndepths = n;
		return 0;
	case O_NUMA:
		ignored(k, BK_NUMA, "--numa");
		return parse_numa(k, a);
	case O_CPUS:
		ignored(k, BK_NUMA, "--cpus");
		snprintf(k->cpus_arg, sizeof(k->cpus_arg), "%s", a);
		return 0;
	case O_PLACE:
		ignored(k, BK_NUMA, "--place");
		if (strcmp(a, "spread") && strcmp(a, "compact"))
			return -EINVAL;
		snprintf(k->place, sizeof(k->place), "%s", a);
		return 0;
	case O_RNODE:
	case O_WNODE:
		ignored(k, BK_NUMA, "--reader-node/--writer-node");
		if (parse_uint(a, &u, 0, SHG_MAX_NODES - 1))
			return -EINVAL;
		*(ch == O_RNODE ? &k->reader_node : &k->writer_node) = (int)u;
		return 0;
	case O_HUGE:
	case O_HUGE_DIR:
		ignored(k, BK_HUGE, ch == O_HUGE ? "--huge" : "--huge-dir");
		k->huge = true;
		if (ch == O_HUGE_DIR)
			k->huge_dir = a;
		return 0;
	case O_NOPIN:
		k->pin = false;
		return 0;
	case O_VERBOSE:
		k->verbose = true;
		return 0;
	default:
		return -EINVAL;
	}
}

int bench_knobs_parse(struct bench_knobs *k, const char *prog, unsigned applies,
		      const char *extra_usage, int argc, char **argv)
{
	int ch, idx;

	knobs_defaults(k, prog, applies);
	optind = 1;
	while ((ch = getopt_long(argc, argv, "", long_opts, &idx)) != -1) {
		if (ch == O_HELP) {
			printf("usage: %s [options]\n%s%s", prog,
			       extra_usage ? extra_usage : "", common_usage);
			exit(0);
		}
		if (ch == '?' || knob_set(k, ch, optarg)) {
			if (ch != '?')
				fprintf(stderr, "%s: bad value for --%s: %s\n",
					prog, long_opts[idx].name, optarg);
			fprintf(stderr, "usage: %s [options]\n%s%s", prog,
				extra_usage ? extra_usage : "", common_usage);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "%s: unexpected argument %s\n", prog,
			argv[optind]);
		return -EINVAL;
	}
	return 0;
}

void bench_knobs_json(const struct bench_knobs *k, char *buf, size_t size)
{
	char keys[96] = "", writers[32] = "", theta[32] = "null";
	size_t o = 0;
	unsigned i;

	for (i = 0; i < k->nkeys; i++)
		o += (size_t)snprintf(keys + o, sizeof(keys) - o, "%s%llu",
				      i ? "," : "",
				      (unsigned long long)k->keys[i]);
	o = 0;
	for (i = 0; i < k->nwriters; i++)
		o += (size_t)snprintf(writers + o, sizeof(writers) - o, "%s%d",
				      i ? "," : "", k->writers[i]);
	if (k->dist == BENCH_DIST_ZIPF)
		snprintf(theta, sizeof(theta), "%.3f", k->zipf_theta);
	snprintf(buf, size,
		 "{\"quick\":%s,\"reps\":%u,\"duration_ms\":%u,\"keys\":[%s],"
		 "\"key_size\":%u,\"value_size\":%u,\"read_pct\":%u,"
		 "\"write_rate\":%llu,\"txn_size\":%u,\"dist\":\"%s\","
		 "\"zipf_theta\":%s,\"max_readers\":%u,\"writers\":[%s],"
		 "\"numa\":\"%s\",\"cpus\":\"%s\",\"place\":\"%s\","
		 "\"reader_node\":%d,\"writer_node\":%d,\"pinned\":%s}",
		 k->quick ? "true" : "false", k->reps, k->time_ms, keys,
		 k->key_size, k->value_size, k->read_pct,
		 (unsigned long long)k->write_rate, k->txn_size,
		 k->dist == BENCH_DIST_ZIPF ? "zipf" : "uniform", theta,
		 k->max_readers, writers, k->numa,
		 k->cpus_arg[0] ? k->cpus_arg : "all", k->place, k->reader_node,
		 k->writer_node, k->pin ? "true" : "false");
}

/* ---- key distributions ------------------------------------------------------ */

/* zeta(n, theta) = sum_{i=1..n} i^-theta: exact up to 2^20 terms, then
 * the integral of x^-theta for the tail (relative error < 1e-6 there). */
static double zeta(uint64_t n, double theta)
{
	uint64_t m = n < (1u << 20) ? n : (1u << 20), i;
	double s = 0;

	for (i = 1; i <= m; i++)
		s += pow((double)i, -theta);
	if (n > m)
		s += (pow((double)n + 0.5, 1 - theta) -
		      pow((double)m + 0.5, 1 - theta)) /
		     (1 - theta);
	return s;
}

void bench_keydist_init(struct bench_keydist *d, uint64_t n,
			enum bench_dist dist, double theta)
{
	double zeta2;

	memset(d, 0, sizeof(*d));
	d->n = n ? n : 1;
	if (dist != BENCH_DIST_ZIPF || d->n < 3)
		return;
	d->zipf = 1;
	d->theta = theta;
	d->zetan = zeta(d->n, theta);
	zeta2 = zeta(2, theta);
	d->alpha = 1.0 / (1.0 - theta);
	d->eta = (1 - pow(2.0 / (double)d->n, 1 - theta)) /
		 (1 - zeta2 / d->zetan);
	d->half_pow = 1.0 + pow(0.5, theta);
}

/* ---- topology ------------------------------------------------------------------ */

int bench_topo_node_of(const struct bench_topo *t, int cpu)
{
	int node;

	if (t->simulated)
		return cpu % (int)t->nodes;
	if (numa_available() < 0)
		return 0;
	node = numa_node_of_cpu(cpu);
	return node < 0 ? 0 : node;
}

static int parse_cpus(struct bench_topo *t, const char *arg)
{
	char buf[128], *tok, *save = NULL;
	long ncpu = sysconf(_SC_NPROCESSORS_CONF);
	cpu_set_t online;
	int c;

	CPU_ZERO(&online);
	if (sched_getaffinity(0, sizeof(online), &online) < 0)
		for (c = 0; c < ncpu && c < CPU_SETSIZE; c++)
			CPU_SET(c, &online);
	if (!arg || !*arg) {
		for (c = 0; c < CPU_SETSIZE && t->ncpus < BENCH_MAX_CPUS; c++)
			if (CPU_ISSET(c, &online))
				t->cpu[t->ncpus++] = c;
		return t->ncpus ? 0 : -EINVAL;
	}
	snprintf(buf, sizeof(buf), "%s", arg);
	for (tok = strtok_r(buf, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		char *end;
		long lo = strtol(tok, &end, 10), hi = lo;

		if (end == tok)
			return -EINVAL;
		if (*end == '-')
			hi = strtol(end + 1, &end, 10);
		if (*end || lo < 0 || hi < lo || hi >= CPU_SETSIZE)
			return -EINVAL;
		for (c = (int)lo; c <= hi; c++) {
			if (!CPU_ISSET(c, &online)) {
				fprintf(stderr, "cpu %d is not available\n", c);
				return -EINVAL;
			}
			if (t->ncpus < BENCH_MAX_CPUS)
				t->cpu[t->ncpus++] = c;
		}
	}
	return t->ncpus ? 0 : -EINVAL;
}

int bench_topo_init(struct bench_topo *t, const char *cpus_arg)
{
	unsigned sim = shg__numa_sim_nodes(SHG_MAX_NODES), i;

	memset(t, 0, sizeof(*t));
	t->simulated = sim != 0;
	if (sim)
		t->nodes = sim;
	else if (numa_available() >= 0)
		t->nodes = (unsigned)numa_max_node() + 1;
	else
		t->nodes = 1;
	if (parse_cpus(t, cpus_arg))
		return -EINVAL;
	for (i = 0; i < t->ncpus; i++)
		t->node[i] = bench_topo_node_of(t, t->cpu[i]);
	snprintf(t->desc, sizeof(t->desc),
		 "%u NUMA node(s)%s, %u CPU(s) for workers%s", t->nodes,
		 t->simulated ? " SIMULATED by SHG_NUMA_SIM (cpu -> node = "
				"cpu mod N; memory locality is not real)" :
				"",
		 t->ncpus, numa_available() < 0 ? ", libnuma unavailable" : "");
	return 0;
}

/* Placement order of the CPUs allowed for @node (-1: all). */
static unsigned place_order(const struct bench_topo *t, const char *place,
			    int node, int *order)
{
	unsigned n = 0, i, round, nd;

	if (strcmp(place, "compact") == 0 || node >= 0) {
		for (nd = 0; nd < t->nodes; nd++)
			for (i = 0; i < t->ncpus; i++)
				if (t->node[i] == (int)nd &&
				    (node < 0 || node == (int)nd))
					order[n++] = t->cpu[i];
		return n;
	}
	/* spread: the k-th CPU of node 0, of node 1, ..., then the k+1-th */
	for (round = 0; n < t->ncpus && round < t->ncpus; round++) {
		for (nd = 0; nd < t->nodes; nd++) {
			unsigned seen = 0;

			for (i = 0; i < t->ncpus; i++) {
				if (t->node[i] != (int)nd)
					continue;
				if (seen++ == round) {
					order[n++] = t->cpu[i];
					break;
				}
			}
		}
	}
	return n;
}

int bench_topo_place(const struct bench_topo *t, const char *place, int node,
		     bool writer, unsigned i)
{
	static int order[BENCH_MAX_CPUS];
	unsigned n = place_order(t, place, node, order);

	if (!n)
		return -1;
	return writer ? order[n - 1 - i % n] : order[i % n];
}

/* ---- memory policy of this process ----------------------------------------- */

void bench_numa_process_apply(const struct bench_knobs *k,
			      const struct bench_topo *t, char *what,
			      size_t size)
{
	int real;

	if (numa_available() < 0) {
		snprintf(what, size, "first touch (libnuma unavailable)");
		return;
	}
	real = numa_max_node() + 1;
	if (k->numa_policy == SHG_NUMA_INTERLEAVE) {
		numa_set_interleave_mask(numa_all_nodes_ptr);
		snprintf(what, size,
			 "set_mempolicy(INTERLEAVE, all %d node(s))", real);
	} else if (k->numa_policy == SHG_NUMA_BIND) {
		struct bitmask *b = numa_allocate_nodemask();
		int node = k->numa_node % real;

		numa_bitmask_setbit(b, (unsigned)node);
		numa_set_membind(b);
		numa_free_nodemask(b);
		snprintf(what, size, "set_mempolicy(BIND, node %d%s)", node,
			 t->simulated && node != k->numa_node ?
				 ", simulated node folded onto a real one" :
				 "");
	} else {
		numa_set_localalloc();
		snprintf(what, size, "first touch by the filling process");
	}
}

void bench_numa_process_reset(void)
{
	if (numa_available() < 0)
		return;
	numa_set_membind(numa_all_nodes_ptr);
	numa_set_localalloc();
}
