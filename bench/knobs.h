/* SPDX-License-Identifier: MIT */
/*
 * Workload knobs shared by the benchmark programs (one command-line
 * parser, so that scripts/bench.sh can pass the same flags to every
 * suite), the configuration record written into every JSON line, key
 * distributions (uniform, zipfian), and the CPU / NUMA-node topology used
 * to place reader and writer processes.
 *
 * A program declares which knobs apply to it (a mask); a knob that does
 * not apply is accepted and reported on stderr as ignored, never silently
 * used.
 *
 * Topology. The node of a CPU comes from libnuma, or, with SHG_NUMA_SIM=N
 * in the environment (the same variable the allocator understands), from
 * cpu mod N: a simulated topology on a one-node host. Placement then pins
 * processes by CPU exactly as on a real host; only the memory locality is
 * fake, which the output says.
 */
#ifndef SHG_BENCH_KNOBS_H
#define SHG_BENCH_KNOBS_H

#include <stdbool.h>
#include <stddef.h>
#include <math.h>
#include <stdint.h>

#define BENCH_MAX_SIZES 4
#define BENCH_MAX_CPUS 1024

/* Knob bits: which options apply to a program. */
enum {
	BK_KEYS = 1u << 0, /* --keys */
	BK_SIZES = 1u << 1, /* --key-size, --value-size */
	BK_MIX = 1u << 2, /* --read-pct */
	BK_PACE = 1u << 3, /* --write-rate */
	BK_TXN = 1u << 4, /* --txn-size */
	BK_DIST = 1u << 5, /* --dist */
	BK_READERS = 1u << 6, /* --readers, --writers */
	BK_NUMA = 1u << 7, /* --numa, --cpus, --place, --*-node */
	BK_SYSTEMS = 1u << 8, /* --systems */
	BK_DEPTH = 1u << 9, /* --depths */
	BK_HUGE = 1u << 10, /* --huge, --huge-dir */
};

enum bench_dist { BENCH_DIST_UNIFORM = 0, BENCH_DIST_ZIPF = 1 };

struct bench_knobs {
	const char *prog; /* program name, for messages */
	unsigned applies; /* BK_* mask given by the program */
	bool quick;
	bool verbose;
	bool pin; /* pin workers to CPUs (--no-pin: false) */
	const char *json; /* --json FILE, NULL: stdout */
	unsigned reps; /* 0: program default */
	unsigned time_ms; /* --duration-ms / --time-ms; 0: default */
	uint64_t keys[BENCH_MAX_SIZES]; /* --keys; nkeys 0: default */
	unsigned nkeys;
	unsigned key_size; /* bytes (default 8) */
	unsigned value_size; /* bytes (default 8) */
	unsigned read_pct; /* % lookups in a reader's mix (default 100) */
	uint64_t write_rate; /* updates (txns) per second per writer, 0 = flat
			      * out */
	unsigned txn_size; /* updates per writer txn (default 1) */
	enum bench_dist dist;
	double zipf_theta; /* default 0.99 */
	unsigned max_readers; /* --readers P: 1..P readers (0: CPUs) */
	int writers[4]; /* --writers list (default 0,1,2) */
	unsigned nwriters;
	const char *systems; /* --systems LIST (raw) */
	unsigned depths[BENCH_MAX_SIZES]; /* --depths (graph) */
	unsigned ndepths;
	/* NUMA */
	char numa[32]; /* --numa as given ("local" by default) */
	int numa_policy; /* enum shg_numa_policy */
	int numa_node; /* bind:N */
	char cpus_arg[128]; /* --cpus as given ("" = all online) */
	char place[16]; /* spread | compact */
	int reader_node; /* --reader-node N, -1: any */
	int writer_node; /* --writer-node N, -1: any */
	/* huge pages */
	bool huge; /* --huge or --huge-dir: also shmgraph on huge pages */
	const char *huge_dir; /* --huge-dir: its segment is a file here */
};

/*
 * Parse argv into @k. @applies: BK_* bits the program uses; @extra_usage:
 * the program's own usage lines (or NULL). Exits 0 on --help. Returns 0,
 * or -EINVAL after printing the usage.
 */
int bench_knobs_parse(struct bench_knobs *k, const char *prog, unsigned applies,
		      const char *extra_usage, int argc, char **argv);

/* The knobs as a JSON object ("{...}") for the "config" field. */
void bench_knobs_json(const struct bench_knobs *k, char *buf, size_t size);

/* ---- key distributions ---------------------------------------------------- */

/*
 * Ranks 0..n-1 drawn uniformly or from a zipfian distribution (the YCSB
 * generator of Gray et al., "Quickly generating billion-record synthetic
 * databases"); rank 0 is the hottest. Callers turn a rank into a key with
 * a bijective mix, so hot keys are spread over the table.
 */
struct bench_keydist {
	uint64_t n;
	int zipf; /* 0: uniform */
	double theta, alpha, zetan, eta, half_pow;
};

void bench_keydist_init(struct bench_keydist *d, uint64_t n,
			enum bench_dist dist, double theta);

/* xorshift64* step: 64 random bits. */
static inline uint64_t bench_rand64(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545f4914f6cdd1dull;
}

/* Next rank below d->n. Uniform: one multiply; zipf: one pow(). */
static inline uint64_t bench_keydist_next(const struct bench_keydist *d,
					  uint64_t *rng)
{
	uint64_t r = bench_rand64(rng), k;
	double u, uz;

	if (__builtin_expect(!d->zipf, 1))
		return (((r >> 32) * d->n) >> 32);
	u = (double)(r >> 11) * 0x1.0p-53;
	uz = u * d->zetan;
	if (uz < 1.0)
		return 0;
	if (uz < d->half_pow)
		return 1;
	k = (uint64_t)((double)d->n * pow(d->eta * u - d->eta + 1, d->alpha));
	return k < d->n ? k : d->n - 1;
}

/* ---- topology and placement ------------------------------------------------ */

struct bench_topo {
	unsigned nodes; /* NUMA nodes (simulated or real) */
	bool simulated; /* SHG_NUMA_SIM set */
	unsigned ncpus; /* CPUs usable (--cpus, else all online) */
	int cpu[BENCH_MAX_CPUS];
	int node[BENCH_MAX_CPUS]; /* node of cpu[i] */
	char desc[256]; /* one line for the table and the JSON */
};

/* Read the topology; @cpus_arg: "0-3,8" or "" (all online). 0 or -EINVAL. */
int bench_topo_init(struct bench_topo *t, const char *cpus_arg);

/* Node of @cpu (simulated or real); 0 if unknown. */
int bench_topo_node_of(const struct bench_topo *t, int cpu);

/*
 * CPU for the @i-th reader (@writer false) or writer. Readers take CPUs
 * from the front of the placement order, writers from the back, so they
 * share CPUs only when there are more workers than CPUs. @place "spread"
 * alternates nodes, "compact" fills one node first; @node >= 0 keeps to
 * that node's CPUs. Returns a CPU, or -1 if none qualifies.
 */
int bench_topo_place(const struct bench_topo *t, const char *place, int node,
		     bool writer, unsigned i);

/*
 * Apply the --numa policy to this process's future page faults (used
 * while a peer that is not shmgraph fills its shared memory, so that
 * first touch places it as the segment's policy would). On a simulated
 * topology only node 0 exists really: bind:N binds to N mod real nodes.
 * Writes what it did into @what. bench_numa_process_reset() goes back to
 * the default (local) policy.
 */
void bench_numa_process_apply(const struct bench_knobs *k,
			      const struct bench_topo *t, char *what,
			      size_t size);
void bench_numa_process_reset(void);

#endif /* SHG_BENCH_KNOBS_H */
