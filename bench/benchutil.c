/* SPDX-License-Identifier: MIT */
/*
 * Benchmark helpers shared by the bench programs (see benchutil.h): clock,
 * statistics, latency histogram, machine description, the interleaved
 * repetition driver, the JSON-lines writer and the result table.
 *
 * The JSON field names are a stable interface (scripts parse them): every
 * record carries system, variant, workload, readers, writers, keys, numa,
 * ops_per_s, ns_per_op, p50_ns, p99_ns, bytes, rss_bytes, machine, commit
 * (null where they do not apply), plus reps, min_ns_per_op, max_ns_per_op
 * and p999_ns.
 */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "../common/shgutil.h"
#include "benchutil.h"

/* Compiler flags: -DSHG_BENCH_CFLAGS="..." at build time, else the
 * environment variable of that name (set by scripts/bench.sh), else
 * "unknown". */
static const char *bench_cflags(void)
{
#ifdef SHG_BENCH_CFLAGS
	return SHG_BENCH_CFLAGS;
#else
	const char *env = getenv("SHG_BENCH_CFLAGS");

	return env && *env ? env : "unknown";
#endif
}

/* ---- clock ------------------------------------------------------------ */

uint64_t bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- statistics ------------------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a;
	double y = *(const double *)b;

	return (x > y) - (x < y);
}

void bench_summarize(const double *v, unsigned n, struct bench_summary *out)
{
	double s[BENCH_MAX_REPS];
	unsigned i;

	memset(out, 0, sizeof(*out));
	if (n == 0)
		return;
	if (n > BENCH_MAX_REPS)
		n = BENCH_MAX_REPS;
	for (i = 0; i < n; i++)
		s[i] = v[i];
	qsort(s, n, sizeof(s[0]), cmp_double);
	out->n = n;
	out->min = s[0];
	out->max = s[n - 1];
	out->median = n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

/* ---- histogram -------------------------------------------------------- */

#define SUB (1u << BENCH_HIST_SUB_BITS)

static unsigned hist_index(uint64_t v)
{
	unsigned k, idx;

	if (v < SUB)
		return (unsigned)v;
	k = 63u - (unsigned)__builtin_clzll(v); /* 2^k <= v < 2^(k+1) */
	if (k >= BENCH_HIST_MAX_BITS)
		return BENCH_HIST_BUCKETS - 1;
	idx = SUB * (k - BENCH_HIST_SUB_BITS + 1) +
	      (unsigned)((v >> (k - BENCH_HIST_SUB_BITS)) & (SUB - 1));
	return idx < BENCH_HIST_BUCKETS ? idx : BENCH_HIST_BUCKETS - 1;
}

/* Midpoint of bucket @i. */
static uint64_t hist_value(unsigned i)
{
	unsigned shift;
	uint64_t low;

	if (i < SUB)
		return i;
	shift = i / SUB - 1; /* k - SUB_BITS */
	low = (uint64_t)(SUB + i % SUB) << shift;
	return low + ((1ull << shift) >> 1);
}

void bench_hist_reset(struct bench_hist *h)
{
	memset(h, 0, sizeof(*h));
	h->min = UINT64_MAX;
}

void bench_hist_record(struct bench_hist *h, uint64_t ns)
{
	h->bucket[hist_index(ns)]++;
	h->count++;
	h->sum += (double)ns;
	if (ns < h->min)
		h->min = ns;
	if (ns > h->max)
		h->max = ns;
}

void bench_hist_merge(struct bench_hist *dst, const struct bench_hist *src)
{
	unsigned i;

	if (!src->count)
		return;
	for (i = 0; i < BENCH_HIST_BUCKETS; i++)
		dst->bucket[i] += src->bucket[i];
	dst->count += src->count;
	dst->sum += src->sum;
	if (src->min < dst->min)
		dst->min = src->min;
	if (src->max > dst->max)
		dst->max = src->max;
}

uint64_t bench_hist_quantile(const struct bench_hist *h, double q)
{
	uint64_t rank, seen = 0, v;
	unsigned i;

	if (!h->count)
		return 0;
	if (q <= 0)
		return h->min;
	if (q >= 1)
		return h->max;
	rank = (uint64_t)(q * (double)h->count);
	if ((double)rank < q * (double)h->count)
		rank++;
	if (rank < 1)
		rank = 1;
	for (i = 0; i < BENCH_HIST_BUCKETS; i++) {
		seen += h->bucket[i];
		if (seen >= rank)
			break;
	}
	v = hist_value(i < BENCH_HIST_BUCKETS ? i : BENCH_HIST_BUCKETS - 1);
	if (v < h->min)
		v = h->min;
	if (v > h->max)
		v = h->max;
	return v;
}

double bench_hist_mean(const struct bench_hist *h)
{
	return h->count ? h->sum / (double)h->count : 0;
}

/* ---- machine ---------------------------------------------------------- */

static void copy_trim(char *dst, size_t size, const char *src)
{
	size_t n;

	while (*src == ' ' || *src == '\t')
		src++;
	snprintf(dst, size, "%s", src);
	n = strlen(dst);
	while (n && (dst[n - 1] == '\n' || dst[n - 1] == ' '))
		dst[--n] = '\0';
}

static void read_cpu_model(char *dst, size_t size)
{
	char line[512];
	FILE *f = fopen("/proc/cpuinfo", "re");

	snprintf(dst, size, "unknown");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		char *colon;

		if (strncmp(line, "model name", 10) != 0)
			continue;
		colon = strchr(line, ':');
		if (colon)
			copy_trim(dst, size, colon + 1);
		break;
	}
	fclose(f);
}

static int count_numa_nodes(void)
{
	DIR *d = opendir("/sys/devices/system/node");
	struct dirent *e;
	int n = 0;

	if (!d)
		return 1;
	while ((e = readdir(d))) {
		if (strncmp(e->d_name, "node", 4) == 0 && e->d_name[4] >= '0' &&
		    e->d_name[4] <= '9')
			n++;
	}
	closedir(d);
	return n ? n : 1;
}

static struct bench_machine machine;
static bool machine_done;
static const char *run_config;

void bench_set_config(const char *json_object)
{
	run_config = json_object;
}

void bench_machine_set_topology(const char *desc)
{
	struct bench_machine *m = (struct bench_machine *)bench_machine();

	snprintf(m->topology, sizeof(m->topology), "%s", desc ? desc : "");
}

const struct bench_machine *bench_machine(void)
{
	struct bench_machine *m = &machine;
	struct utsname u;
	const char *commit;
	long cores;

	if (machine_done)
		return m;
	read_cpu_model(m->cpu, sizeof(m->cpu));
	cores = sysconf(_SC_NPROCESSORS_ONLN);
	m->cores = cores > 0 ? (int)cores : 1;
	m->numa_nodes = count_numa_nodes();
	if (uname(&u) == 0)
		copy_trim(m->kernel, sizeof(m->kernel), u.release);
	else
		snprintf(m->kernel, sizeof(m->kernel), "unknown");
#ifdef __VERSION__
#ifdef __clang__
	snprintf(m->compiler, sizeof(m->compiler), "clang %s", __VERSION__);
#else
	snprintf(m->compiler, sizeof(m->compiler), "gcc %s", __VERSION__);
#endif
#else
	snprintf(m->compiler, sizeof(m->compiler), "unknown");
#endif
	copy_trim(m->cflags, sizeof(m->cflags), bench_cflags());
	commit = getenv("SHG_COMMIT");
	copy_trim(m->commit, sizeof(m->commit),
		  commit && *commit ? commit : "unknown");
	machine_done = true;
	return m;
}

/* ---- cases and driver ------------------------------------------------- */

void bench_case_init(struct bench_case *c)
{
	memset(c, 0, sizeof(*c));
	c->readers = -1;
	c->writers = -1;
	c->keys = -1;
	c->bytes = -1;
	c->peer = -1;
	c->rss_bytes = -1;
	c->version_bytes = -1;
	c->misses = -1;
}

void bench_case_skip(struct bench_case *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->skip_buf, sizeof(c->skip_buf), fmt, ap);
	va_end(ap);
	c->skip = c->skip_buf;
}

static int run_once(struct bench_case *c, const struct bench_ctl *ctl,
		    struct bench_sample *s)
{
	int err;

	memset(s, 0, sizeof(*s));
	err = c->run(c, ctl, s);
	if (err < 0) {
		if (!c->skip)
			bench_case_skip(c, "failed: error %d", err);
		return err;
	}
	if (!s->ops || !s->ns) {
		bench_case_skip(c, "failed: no operation timed");
		return -EINVAL;
	}
	return 0;
}

/*
 * Warm up and fix the count of a count-driven case: scale the count until
 * one run lasts about @target ns (at least min_iters).
 */
static int calibrate(struct bench_case *c, uint64_t target)
{
	struct bench_ctl ctl = { .target_ns = target };
	struct bench_sample s;
	uint64_t iters = c->min_iters ? c->min_iters : 1000;
	int round, err;

	if (c->timed) {
		ctl.target_ns = target / 4 ? target / 4 : 1;
		return run_once(c, &ctl, &s);
	}
	for (round = 0; round < 8; round++) {
		double scale;

		ctl.iters = iters;
		err = run_once(c, &ctl, &s);
		if (err)
			return err;
		scale = (double)target / (double)s.ns;
		if (scale < 1.0 && round > 0)
			break;
		if (scale > 100)
			scale = 100;
		iters = (uint64_t)((double)iters * scale * 1.05) + 1;
		if (scale < 2.0)
			break;
	}
	if (iters < c->min_iters)
		iters = c->min_iters;
	c->iters = iters;
	return 0;
}

static void run_rep(struct bench_case *c, const struct bench_opts *o,
		    struct bench_hist *rep_hist)
{
	struct bench_ctl ctl = { .iters = c->iters, .target_ns = o->target_ns };
	struct bench_sample s;

	if (c->latency) {
		bench_hist_reset(rep_hist);
		ctl.hist = rep_hist;
	}
	if (run_once(c, &ctl, &s))
		return;
	if (c->nreps < BENCH_MAX_REPS)
		c->rep_ns[c->nreps++] = (double)s.ns / (double)s.ops;
	if (c->latency)
		bench_hist_merge(c->hist, rep_hist);
	c->rss_bytes = bench_rss_bytes();
}

int bench_run(struct bench_case *cases, size_t n, const struct bench_opts *o)
{
	struct bench_hist *rep_hist;
	unsigned reps = o->reps ? o->reps : 1;
	unsigned r;
	size_t i;

	if (reps > BENCH_MAX_REPS)
		reps = BENCH_MAX_REPS;
	rep_hist = malloc(sizeof(*rep_hist));
	if (!rep_hist)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		struct bench_case *c = &cases[i];

		if (c->skip || c->static_rec)
			continue;
		if (c->latency) {
			c->hist = malloc(sizeof(*c->hist));
			if (!c->hist) {
				free(rep_hist);
				return -ENOMEM;
			}
			bench_hist_reset(c->hist);
		}
		if (o->verbose)
			fprintf(stderr, "calibrate %s / %s / %s\n", c->system,
				c->variant, c->workload);
		calibrate(c, o->target_ns);
	}
	for (r = 0; r < reps; r++) {
		if (o->verbose)
			fprintf(stderr, "rep %u/%u\n", r + 1, reps);
		for (i = 0; i < n; i++) {
			if (!cases[i].skip && !cases[i].static_rec)
				run_rep(&cases[i], o, rep_hist);
		}
	}
	free(rep_hist);
	return 0;
}

void bench_cases_free(struct bench_case *cases, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free(cases[i].hist);
		cases[i].hist = NULL;
	}
}

/* ---- JSON ------------------------------------------------------------- */

static void json_int(FILE *f, long long v)
{
	if (v < 0)
		fputs("null", f);
	else
		fprintf(f, "%lld", v);
}

static void json_num(FILE *f, double v, int prec)
{
	if (isnan(v) || isinf(v))
		fputs("null", f);
	else
		fprintf(f, "%.*f", prec, v);
}

int bench_append(char *buf, size_t size, size_t *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (*o >= size)
		return -1;
	va_start(ap, fmt);
	n = vsnprintf(buf + *o, size - *o, fmt, ap);
	va_end(ap);
	if (n > 0)
		*o += (size_t)n;
	return 0;
}

void bench_json_machine(FILE *f, const struct bench_machine *m)
{
	fputs("{\"cpu\":", f);
	shg__json_str(f, m->cpu);
	fprintf(f, ",\"cores\":%d,\"numa_nodes\":%d,\"kernel\":", m->cores,
		m->numa_nodes);
	shg__json_str(f, m->kernel);
	fputs(",\"compiler\":", f);
	shg__json_str(f, m->compiler);
	fputs(",\"cflags\":", f);
	shg__json_str(f, m->cflags);
	fputs(",\"topology\":", f);
	shg__json_str(f, m->topology[0] ? m->topology : NULL);
	fputc('}', f);
}

static void json_case(FILE *f, const struct bench_case *c)
{
	const struct bench_machine *m = bench_machine();
	struct bench_summary s;
	double p50 = NAN, p99 = NAN, p999 = NAN;

	bench_summarize(c->rep_ns, c->nreps, &s);
	if (!c->nreps) /* a static record: no timing */
		s.median = s.min = s.max = NAN;
	if (c->hist && c->hist->count) {
		p50 = (double)bench_hist_quantile(c->hist, 0.50);
		p99 = (double)bench_hist_quantile(c->hist, 0.99);
		p999 = (double)bench_hist_quantile(c->hist, 0.999);
	}
	fputs("{\"system\":", f);
	shg__json_str(f, c->system);
	fputs(",\"variant\":", f);
	shg__json_str(f, c->variant);
	fputs(",\"workload\":", f);
	shg__json_str(f, c->workload);
	fputs(",\"readers\":", f);
	json_int(f, c->readers);
	fputs(",\"writers\":", f);
	json_int(f, c->writers);
	fputs(",\"keys\":", f);
	json_int(f, c->keys);
	fputs(",\"numa\":", f);
	shg__json_str(f, c->numa);
	fputs(",\"ops_per_s\":", f);
	json_num(f, s.median > 0 ? 1e9 / s.median : NAN, 0);
	fputs(",\"ns_per_op\":", f);
	json_num(f, s.median, 3);
	fputs(",\"p50_ns\":", f);
	json_num(f, p50, 0);
	fputs(",\"p99_ns\":", f);
	json_num(f, p99, 0);
	fputs(",\"bytes\":", f);
	json_int(f, c->bytes);
	fputs(",\"rss_bytes\":", f);
	json_int(f, c->rss_bytes);
	fputs(",\"machine\":", f);
	bench_json_machine(f, m);
	fputs(",\"commit\":", f);
	shg__json_str(f, m->commit);
	fprintf(f, ",\"reps\":%u,\"min_ns_per_op\":", s.n);
	json_num(f, s.min, 3);
	fputs(",\"max_ns_per_op\":", f);
	json_num(f, s.max, 3);
	fputs(",\"p999_ns\":", f);
	json_num(f, p999, 0);
	if (c->version_bytes >= 0)
		fprintf(f, ",\"version_bytes\":%lld", c->version_bytes);
	if (c->misses >= 0)
		fprintf(f, ",\"misses\":%lld", c->misses);
	fputs(",\"config\":", f);
	fputs(run_config ? run_config : "null", f);
	if (c->json_extra)
		fputs(c->json_extra, f);
	if (c->json_sys)
		fputs(c->json_sys, f);
	fputs("}\n", f);
}

void bench_json_write(FILE *f, const struct bench_case *cases, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (!cases[i].skip && (cases[i].nreps || cases[i].static_rec))
			json_case(f, &cases[i]);
	}
	fflush(f);
}

/* ---- table ------------------------------------------------------------ */

static const char *case_sys(const struct bench_case *c)
{
	return c->table_system ? c->table_system : c->system;
}

static const char *case_label(const struct bench_case *c)
{
	return c->label ? c->label : c->variant ? c->variant : "-";
}

static int col_width(const struct bench_case *cases, size_t n, bool label,
		     int min, int max)
{
	int w = min;
	size_t i;

	for (i = 0; i < n; i++) {
		const char *s = label ? case_label(&cases[i]) :
					case_sys(&cases[i]);
		int len = s ? (int)strlen(s) : 1;

		if (len > w)
			w = len;
	}
	return w < max ? w : max;
}

static double case_median(const struct bench_case *c)
{
	struct bench_summary s;

	if (c->skip || !c->nreps)
		return NAN;
	bench_summarize(c->rep_ns, c->nreps, &s);
	return s.median;
}

/* Tables fit in this many columns (details stay in the JSON). */
#define TABLE_COLS 100

void bench_print_wrapped(FILE *f, int col, const char *text)
{
	const int width = TABLE_COLS - 1 - col;
	int used = 0;

	while (*text) {
		const char *sp = strchr(text, ' ');
		int len = sp ? (int)(sp - text) : (int)strlen(text);

		if (used > 0 && used + 1 + len > width) {
			fprintf(f, "\n%*s", col, "");
			used = 0;
		} else if (used > 0) {
			fputc(' ', f);
			used++;
		}
		fprintf(f, "%.*s", len, text);
		used += len;
		text += len;
		while (*text == ' ')
			text++;
	}
	fputc('\n', f);
}

/*
 * The ratio against the case's peer and the goal verdict, as a sentence
 * ("" when the case has neither): printed under the table, so that the
 * table has no column that is empty for most programs.
 */
static void format_ratio_goal(const struct bench_case *cases, size_t n,
			      const struct bench_case *c, char *out,
			      size_t size)
{
	double med = case_median(c);
	double rt = NAN;
	const struct bench_case *p = NULL;
	size_t len = 0;

	out[0] = '\0';
	if (c->peer >= 0 && (size_t)c->peer < n)
		p = &cases[c->peer];
	if (p && case_median(p) > 0) {
		rt = med / case_median(p);
		len += (size_t)snprintf(out + len, size - len,
					rt < 0.1 ? "%.3fx %s / %s" :
						   "%.2fx %s / %s",
					rt, case_sys(p), case_label(p));
	}
	if (len >= size)
		return;
	if (c->goal_ns > 0)
		snprintf(out + len, size - len, "%sgoal <= %g ns: %s",
			 len ? "; " : "", c->goal_ns,
			 med <= c->goal_ns ? "met" : "NOT met");
	else if (c->goal_ratio > 0 && !isnan(rt))
		snprintf(out + len, size - len, "%sgoal <= %gx that: %s",
			 len ? "; " : "", c->goal_ratio,
			 rt <= c->goal_ratio ? "met" : "NOT met");
	else if (c->goal_ratio > 0)
		snprintf(out + len, size - len, "%sgoal <= %gx a peer: no peer",
			 len ? "; " : "", c->goal_ratio);
}

static void fmt_quantile(char *buf, size_t size, const struct bench_hist *h,
			 double q)
{
	uint64_t v;

	if (!h || !h->count) {
		snprintf(buf, size, "-");
		return;
	}
	v = bench_hist_quantile(h, q);
	if (v >= 1000000) /* keep the column narrow: ms, us */
		snprintf(buf, size, "%.1fms", (double)v / 1e6);
	else if (v >= 100000)
		snprintf(buf, size, "%.0fus", (double)v / 1e3);
	else
		snprintf(buf, size, "%llu", (unsigned long long)v);
}

static void fmt_rate(char *buf, size_t size, double ns)
{
	double r = ns > 0 ? 1e9 / ns : 0;

	if (r >= 1e6)
		snprintf(buf, size, "%.2fM", r / 1e6);
	else if (r >= 1e3)
		snprintf(buf, size, "%.1fk", r / 1e3);
	else
		snprintf(buf, size, "%.1f", r);
}

/* A time in ns, short: one decimal below 1,000, none from there on. */
static void fmt_ns(char *buf, size_t size, double ns)
{
	snprintf(buf, size, ns < 1000 ? "%.1f" : "%.0f", ns);
}

/* The label column: the label, or, when it is wider than @w, the label on
 * a line of its own and an empty column on the next. */
static void print_label(FILE *f, const char *sys, int w0, const char *label,
			int w1)
{
	if ((int)strlen(label) > w1)
		fprintf(f, "%-*s %s\n%-*s %-*s", w0, sys, label, w0, "", w1,
			"");
	else
		fprintf(f, "%-*s %-*s", w0, sys, w1, label);
}

static void print_row(FILE *f, const struct bench_case *c, const int w[2])
{
	struct bench_summary s;
	char range[48], rate[24], p50[24], p99[24], p999[24], lo[24], hi[24];
	char med[24];

	if (!c->skip && c->static_rec) {
		print_label(f, case_sys(c), w[0], case_label(c), w[1]);
		if (c->keys > 0)
			fprintf(f, " %lld bytes = %.1f B/entry\n", c->bytes,
				(double)c->bytes / (double)c->keys);
		else
			fprintf(f, " %lld bytes\n", c->bytes);
		return;
	}
	if (c->skip || !c->nreps) {
		print_label(f, case_sys(c), w[0], case_label(c), w[1]);
		fputc(' ', f);
		bench_print_wrapped(f, w[0] + w[1] + 2,
				    c->skip ? c->skip : "no data");
		return;
	}
	bench_summarize(c->rep_ns, c->nreps, &s);
	fmt_ns(med, sizeof(med), s.median);
	fmt_ns(lo, sizeof(lo), s.min);
	fmt_ns(hi, sizeof(hi), s.max);
	snprintf(range, sizeof(range), "%s-%s", lo, hi);
	fmt_rate(rate, sizeof(rate), s.median);
	fmt_quantile(p50, sizeof(p50), c->hist, 0.5);
	fmt_quantile(p99, sizeof(p99), c->hist, 0.99);
	fmt_quantile(p999, sizeof(p999), c->hist, 0.999);
	print_label(f, case_sys(c), w[0], case_label(c), w[1]);
	fprintf(f, " %9s %-15s %7s %6s %7s %7s\n", med, range, rate, p50, p99,
		p999);
}

/* Width of the fixed columns of a table row (ns/op .. p999), separators
 * included. */
#define TABLE_FIXED (1 + 9 + 1 + 15 + 1 + 7 + 1 + 6 + 1 + 7 + 1 + 7)

void bench_table_print(FILE *f, const struct bench_case *cases, size_t n,
		       const char *title)
{
	const struct bench_machine *m = bench_machine();
	char line[4096], rg[256]; /* fits every machine field */
	unsigned reps = 0;
	int w[2];
	size_t i;

	w[0] = col_width(cases, n, false, 6, 14);
	w[1] = TABLE_COLS - 1 - TABLE_FIXED - w[0] - 1;
	for (i = 0; i < n; i++)
		if (cases[i].nreps > reps)
			reps = cases[i].nreps;
	fputc('\n', f);
	bench_print_wrapped(f, 0, title);
	snprintf(line, sizeof(line),
		 "machine: %s, %d cores, %d NUMA node(s), Linux %s, %s", m->cpu,
		 m->cores, m->numa_nodes, m->kernel, m->compiler);
	bench_print_wrapped(f, 0, line);
	if (m->topology[0]) {
		snprintf(line, sizeof(line), "topology: %s", m->topology);
		bench_print_wrapped(f, 0, line);
	}
	snprintf(line, sizeof(line), "commit: %s; cflags: %s", m->commit,
		 m->cflags);
	bench_print_wrapped(f, 0, line);
	fprintf(f,
		"ns/op: median of %u interleaved reps (min-max of them); "
		"p50/p99/p999 in ns of sampled ops\n\n",
		reps);
	fprintf(f, "%-*s %-*s %9s %-15s %7s %6s %7s %7s\n", w[0], "system",
		w[1], "case", "ns/op", "min-max", "ops/s", "p50", "p99",
		"p999");
	for (i = 0; i < n; i++)
		print_row(f, &cases[i], w);
	fputc('\n', f);
	for (i = 0; i < n; i++) {
		const struct bench_case *c = &cases[i];

		if (c->skip || c->static_rec || !c->nreps)
			continue;
		format_ratio_goal(cases, n, c, rg, sizeof(rg));
		if (!rg[0])
			continue;
		snprintf(line, sizeof(line), "- %s / %s: %s", case_sys(c),
			 case_label(c), rg);
		bench_print_wrapped(f, 2, line);
	}
	for (i = 0; i < n; i++) {
		const struct bench_case *c = &cases[i];

		if (!c->note)
			continue;
		snprintf(line, sizeof(line), "- %s / %s: %s", case_sys(c),
			 case_label(c), c->note);
		bench_print_wrapped(f, 2, line);
	}
	fflush(f);
}

/* ---- peers side by side ------------------------------------------------- */

#define MATRIX_COLS 8
#define MATRIX_CELL 15 /* "shmgraph-fence", "12345 (0.06x)"; a separator */

static const char *case_group(const struct bench_case *c)
{
	return c->group ? c->group : case_label(c);
}

static bool matrix_row(const struct bench_case *c)
{
	return !c->skip && !c->static_rec && c->nreps;
}

/* Median of the case of @group and @system, NAN if none. */
static double matrix_cell(const struct bench_case *cases, size_t n,
			  const char *group, const char *system)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (matrix_row(&cases[i]) &&
		    strcmp(case_group(&cases[i]), group) == 0 &&
		    strcmp(case_sys(&cases[i]), system) == 0)
			return case_median(&cases[i]);
	return NAN;
}

static unsigned matrix_systems(const struct bench_case *cases, size_t n,
			       const char *ref, const char **sys)
{
	unsigned ns = 0, k;
	size_t i;

	sys[ns++] = ref;
	for (i = 0; i < n && ns < MATRIX_COLS; i++) {
		if (!matrix_row(&cases[i]))
			continue;
		for (k = 0; k < ns; k++)
			if (strcmp(sys[k], case_sys(&cases[i])) == 0)
				break;
		if (k == ns)
			sys[ns++] = case_sys(&cases[i]);
	}
	return ns;
}

static bool group_seen(const struct bench_case *cases, size_t upto,
		       const char *g)
{
	size_t i;

	for (i = 0; i < upto; i++)
		if (matrix_row(&cases[i]) &&
		    strcmp(case_group(&cases[i]), g) == 0)
			return true;
	return false;
}

/* One block of the matrix: @ref and the systems @sys[@from..@to). */
static void matrix_block(FILE *f, const struct bench_case *cases, size_t n,
			 const char *const *sys, unsigned from, unsigned to,
			 int wg)
{
	unsigned k;
	size_t i;

	fprintf(f, "%-*s %*.*s", wg, "case", MATRIX_CELL - 1, MATRIX_CELL - 1,
		sys[0]);
	for (k = from; k < to; k++)
		fprintf(f, " %*.*s", MATRIX_CELL - 1, MATRIX_CELL - 1, sys[k]);
	fputc('\n', f);
	for (i = 0; i < n; i++) {
		const char *g = case_group(&cases[i]);
		double r;
		char cell[40];

		if (!matrix_row(&cases[i]) || group_seen(cases, i, g))
			continue;
		r = matrix_cell(cases, n, g, sys[0]);
		if ((int)strlen(g) > wg)
			fprintf(f, "%s\n%-*s", g, wg, "");
		else
			fprintf(f, "%-*s", wg, g);
		if (isnan(r))
			snprintf(cell, sizeof(cell), "-");
		else
			fmt_ns(cell, sizeof(cell), r);
		fprintf(f, " %*s", MATRIX_CELL - 1, cell);
		for (k = from; k < to; k++) {
			double v = matrix_cell(cases, n, g, sys[k]);
			char num[24];

			fmt_ns(num, sizeof(num), v);
			if (isnan(v))
				snprintf(cell, sizeof(cell), "-");
			else if (isnan(r))
				snprintf(cell, sizeof(cell), "%s", num);
			else
				snprintf(cell, sizeof(cell),
					 r / v < 10 ? "%s (%.2fx)" :
						      "%s (%.0fx)",
					 num, r / v);
			fprintf(f, " %*s", MATRIX_CELL - 1, cell);
		}
		fputc('\n', f);
	}
}

void bench_peer_matrix(FILE *f, const struct bench_case *cases, size_t n,
		       const char *title, const char *ref)
{
	const char *sys[MATRIX_COLS];
	unsigned ns = matrix_systems(cases, n, ref, sys), k, per;
	int wg = 8;
	size_t i;

	for (i = 0; i < n; i++)
		if (matrix_row(&cases[i]) &&
		    (int)strlen(case_group(&cases[i])) > wg)
			wg = (int)strlen(case_group(&cases[i]));
	if (wg > 30)
		wg = 30;
	/* the systems other than @ref that fit next to it in 100 columns */
	per = (unsigned)((TABLE_COLS - 1 - wg) / MATRIX_CELL) - 1;
	if (per < 1)
		per = 1;
	fprintf(f,
		"\n%s\n(median ns/op; (x) = %s / that system, < 1: %s "
		"faster)\n",
		title, ref, ref);
	for (k = 1; k < ns || k == 1; k += per) {
		unsigned to = k + per < ns ? k + per : ns;

		if (k > 1)
			fputc('\n', f);
		matrix_block(f, cases, n, sys, k, to, wg);
	}
	fflush(f);
}

long long bench_rss_bytes(void)
{
	long long size, resident;
	long page = sysconf(_SC_PAGESIZE);
	FILE *f = fopen("/proc/self/statm", "re");
	int got;

	if (!f)
		return -1;
	got = fscanf(f, "%lld %lld", &size, &resident);
	fclose(f);
	if (got != 2 || page <= 0)
		return -1;
	return resident * page;
}

/* ---- process helpers -------------------------------------------------- */

int bench_pin_cpu(int cpu)
{
	cpu_set_t set;

	if (cpu < 0 || cpu >= CPU_SETSIZE)
		return -EINVAL;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set) < 0)
		return -errno;
	return 0;
}

#define CLEANUP_MAX 32
#define CLEANUP_LEN 128

static char cleanup_names[CLEANUP_MAX][CLEANUP_LEN];
static volatile sig_atomic_t cleanup_count;
static pid_t cleanup_pid;

static char cleanup_paths[CLEANUP_MAX][CLEANUP_LEN];
static bool cleanup_isdir[CLEANUP_MAX];
static volatile sig_atomic_t cleanup_npaths;

static void cleanup_now(void)
{
	sig_atomic_t i;

	if (getpid() != cleanup_pid)
		return;
	for (i = 0; i < cleanup_count; i++)
		shm_unlink(cleanup_names[i]);
	for (i = cleanup_npaths; i-- > 0;) {
		if (cleanup_isdir[i])
			rmdir(cleanup_paths[i]);
		else
			unlink(cleanup_paths[i]);
	}
}

static void cleanup_signal(int sig)
{
	cleanup_now();
	signal(sig, SIG_DFL);
	raise(sig);
}

static void cleanup_install(void)
{
	static const int sigs[] = { SIGINT,  SIGTERM, SIGHUP,
				    SIGSEGV, SIGBUS,  SIGABRT };
	static bool installed;
	size_t k;

	if (!installed) {
		installed = true;
		cleanup_pid = getpid();
		atexit(cleanup_now);
		for (k = 0; k < sizeof(sigs) / sizeof(sigs[0]); k++) {
			struct sigaction sa;

			memset(&sa, 0, sizeof(sa));
			sa.sa_handler = cleanup_signal;
			sigemptyset(&sa.sa_mask);
			sigaction(sigs[k], &sa, NULL);
		}
	}
}

int bench_cleanup_shm(const char *name)
{
	sig_atomic_t i = cleanup_count;

	if (i >= CLEANUP_MAX || strlen(name) >= CLEANUP_LEN)
		return -ENOSPC;
	cleanup_install();
	snprintf(cleanup_names[i], CLEANUP_LEN, "%s", name);
	cleanup_count = i + 1;
	return 0;
}

int bench_cleanup_path(const char *path, bool dir)
{
	sig_atomic_t i = cleanup_npaths;

	if (i >= CLEANUP_MAX || strlen(path) >= CLEANUP_LEN)
		return -ENOSPC;
	cleanup_install();
	snprintf(cleanup_paths[i], CLEANUP_LEN, "%s", path);
	cleanup_isdir[i] = dir;
	cleanup_npaths = i + 1;
	return 0;
}
