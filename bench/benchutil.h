/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the benchmark programs: a monotonic clock, summary
 * statistics over repetitions, a log-linear latency histogram, a
 * description of the machine, an interleaved repetition driver, a JSON-lines
 * writer with the stable field names of the bench interface, a result table,
 * CPU pinning and removal of named segments at exit (also on SIGINT).
 *
 * A suite describes each measurement as a struct bench_case and hands the
 * array to bench_run(), which calibrates every case once, then repeats
 * A B C A B C ... so that slow drifts of the machine (frequency, noisy
 * neighbours) hit every case alike, and keeps the median of the reps.
 */
#ifndef SHG_BENCHUTIL_H
#define SHG_BENCHUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Stop the compiler from moving memory accesses across this point, or from
 * dropping a loop whose body is otherwise empty. Emits no instruction. */
#define bench_barrier() __asm__ __volatile__("" ::: "memory")

/* Make the compiler believe @v is used (and may have been changed). */
#define bench_keep(v) __asm__ __volatile__("" : "+r"(v)::"memory")

/* ---- clock ------------------------------------------------------------ */

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t bench_now_ns(void);

/* ---- statistics over repetitions -------------------------------------- */

struct bench_summary {
	double median;
	double min;
	double max;
	unsigned n;
};

/* Median (mean of the middle two for even n), min and max of @v[0..n). */
void bench_summarize(const double *v, unsigned n, struct bench_summary *out);

/* ---- latency histogram ------------------------------------------------ */

/*
 * Log-linear buckets in nanoseconds: values below 2^BENCH_HIST_SUB_BITS are
 * exact; each larger power-of-two range [2^k, 2^(k+1)) is split into
 * 2^BENCH_HIST_SUB_BITS equal sub-buckets (relative error < 1/32). Values
 * up to 2^BENCH_HIST_MAX_BITS ns (~550 s) are kept; larger ones land in the
 * last bucket.
 */
#define BENCH_HIST_SUB_BITS 5
#define BENCH_HIST_MAX_BITS 39
#define BENCH_HIST_BUCKETS             \
	((1u << BENCH_HIST_SUB_BITS) * \
	 (BENCH_HIST_MAX_BITS - BENCH_HIST_SUB_BITS + 1))

struct bench_hist {
	uint64_t count;
	uint64_t min;
	uint64_t max;
	double sum;
	uint64_t bucket[BENCH_HIST_BUCKETS];
};

void bench_hist_reset(struct bench_hist *h);
void bench_hist_record(struct bench_hist *h, uint64_t ns);
void bench_hist_merge(struct bench_hist *dst, const struct bench_hist *src);
/* Value at quantile @q (0..1), e.g. 0.5, 0.99, 0.999; 0 if empty. The
 * answer is the midpoint of the bucket, clamped to the recorded min/max. */
uint64_t bench_hist_quantile(const struct bench_hist *h, double q);
double bench_hist_mean(const struct bench_hist *h);

/* ---- machine ---------------------------------------------------------- */

struct bench_machine {
	char cpu[128]; /* /proc/cpuinfo "model name" */
	int cores; /* online CPUs */
	int numa_nodes; /* /sys/devices/system/node/node* */
	char kernel[96]; /* uname -r */
	char compiler[96]; /* __VERSION__ of the compiler of benchutil.c */
	char cflags[256]; /* -DSHG_BENCH_CFLAGS, else $SHG_BENCH_CFLAGS */
	char commit[64]; /* $SHG_COMMIT, else "unknown" */
	char topology[256]; /* bench_machine_set_topology(), else "" */
};

/* Collected once, on first call. */
const struct bench_machine *bench_machine(void);

/* The JSON object of @m (the "machine" field of every record). */
void bench_json_machine(FILE *f, const struct bench_machine *m);

/* printf at *@o into @buf of @size, advancing *@o (-1 once full). */
int bench_append(char *buf, size_t size, size_t *o, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Describe the CPU / NUMA topology used (JSON machine.topology). */
void bench_machine_set_topology(const char *desc);

/* The run's configuration, a JSON object written as "config" into every
 * record (NULL: null). The string must stay valid. */
void bench_set_config(const char *json_object);

/* ---- cases and the interleaved driver ---------------------------------- */

/* What the driver asks of one repetition. */
struct bench_ctl {
	uint64_t iters; /* operations to do (count-driven cases) */
	uint64_t target_ns; /* or: keep going this long (time-driven) */
	struct bench_hist *hist; /* record per-op latencies here, or NULL */
};

/* What one repetition did. */
struct bench_sample {
	uint64_t ops; /* operations done */
	uint64_t ns; /* wall time they took */
};

#define BENCH_MAX_REPS 64

struct bench_case;
typedef int (*bench_fn)(struct bench_case *c, const struct bench_ctl *ctl,
			struct bench_sample *out);

/*
 * struct bench_case - one measurement. The description fields map to the
 * JSON fields of the same name; -1 (integers) or NULL (strings) is null.
 */
struct bench_case {
	/* description */
	const char *system;
	const char *variant;
	const char *workload;
	int readers;
	int writers;
	long long keys;
	const char *numa;
	long long bytes;

	/* driver */
	bench_fn run;
	void *arg;
	bool timed; /* run for target_ns instead of a calibrated count */
	bool latency; /* collect a per-op histogram (p50/p99 from it) */
	uint64_t min_iters; /* lower bound on the calibrated count */

	/* presentation */
	int peer; /* index of the case to compare with, or -1 */
	double goal_ns; /* goal: median ns/op <= goal_ns (0: none) */
	double goal_ratio; /* goal: median / peer's median <= this (0: none) */
	const char *note; /* printed under the table (NULL: none) */
	const char *label; /* short name in tables (NULL: the variant) */
	const char *table_system; /* system column in tables (NULL: system) */
	const char *group; /* peer matrix row (NULL: label or variant) */

	/* results, filled by bench_run() */
	const char *skip; /* reason the case did not run, or NULL */
	char skip_buf[160]; /* storage for a formatted skip reason */
	uint64_t iters; /* calibrated operations per rep */
	double rep_ns[BENCH_MAX_REPS]; /* ns/op of each rep */
	unsigned nreps;
	struct bench_hist *hist; /* merged over reps (latency cases) */
	long long rss_bytes; /* RSS after the last rep */

	/* extensions (bench_map); -1 / false when unused */
	bool static_rec; /* a figure without timing (bytes); never run */
	long long version_bytes; /* JSON "version_bytes" (retained_with_pin) */
	long long misses; /* JSON "misses": lookups not found or wrong */
	const char *json_extra; /* appended to the record: ",\"k\":v..." */
	const char *json_sys; /* appended too: fields of the system */
};

struct bench_opts {
	unsigned reps; /* repetitions of each case (>= 1) */
	uint64_t target_ns; /* minimum duration of one rep */
	bool verbose; /* progress on stderr */
};

/* Fill the description fields with nulls and the driver defaults. */
void bench_case_init(struct bench_case *c);

/* Mark @c as not run, with a printf-style reason (kept in c->skip_buf). */
void bench_case_skip(struct bench_case *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * Calibrate each case (a warm-up run that also fixes its count), then run
 * reps x cases interleaved. A case whose run returns a negative value gets
 * skip = "failed: <reason>" and is dropped from further reps; a case with
 * skip already set is never run. Returns 0 or -ENOMEM.
 */
int bench_run(struct bench_case *cases, size_t n, const struct bench_opts *o);

/* Release the histograms bench_run() allocated. */
void bench_cases_free(struct bench_case *cases, size_t n);

/* ---- output ----------------------------------------------------------- */

/* One JSON object per case that ran, one per line (bench interface). */
void bench_json_write(FILE *f, const struct bench_case *cases, size_t n);

/* Human-readable table of all cases in 100 columns (median ns/op,
 * min-max of the reps, ops/s, p50/p99/p999 when sampled; bytes for static
 * records); under it, for the cases that have them, the ratio against the
 * case's peer and the goal verdicts, then the notes. */
void bench_table_print(FILE *f, const struct bench_case *cases, size_t n,
		       const char *title);

/* Print @text from column @col (the cursor is there), wrapped at word
 * boundaries to fit 100 columns, and a newline. */
void bench_print_wrapped(FILE *f, int col, const char *text);

/*
 * Peers side by side: one row per group (bench_case.group, else label,
 * else variant), one column per system in order of first appearance, each
 * cell the median ns/op and, for systems other than @ref, the ratio
 * ref / that system (< 1: @ref is faster). Static and skipped cases are
 * left out.
 */
void bench_peer_matrix(FILE *f, const struct bench_case *cases, size_t n,
		       const char *title, const char *ref);

/* Resident set size of this process in bytes (-1 if unknown). */
long long bench_rss_bytes(void);

/* ---- process helpers -------------------------------------------------- */

/* Pin the calling thread to @cpu; 0 or -errno. */
int bench_pin_cpu(int cpu);

/*
 * Remember a POSIX shm name to shm_unlink() at exit, on SIGINT, SIGTERM,
 * SIGHUP, and on SIGSEGV, SIGBUS and SIGABRT (only in the process that
 * registered it, not in forked children).
 * Returns 0 or -ENOSPC (too many names).
 */
int bench_cleanup_shm(const char *name);

/*
 * Remember a file (@dir false: unlink()) or an empty directory (@dir true:
 * rmdir()) to remove at exit and on those signals, after the shm names;
 * paths are removed in the reverse order of registration (register a
 * directory before the files in it). Returns 0 or -ENOSPC.
 */
int bench_cleanup_path(const char *path, bool dir);

#endif /* SHG_BENCHUTIL_H */
