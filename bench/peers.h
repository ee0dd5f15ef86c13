/* SPDX-License-Identifier: MIT */
/*
 * The key-value systems the map benchmark (bench_map) compares, behind one
 * interface: shmgraph's persistent map and its peers (a process-shared
 * rwlock around a hash table in POSIX shm, LMDB, liburcu's lock-free hash
 * table in one process, and a flat table read without synchronization).
 *
 * A system is built by the benchmark process (struct peer), then used by
 * worker processes (or threads, for in-process systems) that attach their
 * own handles after fork(): a reader that runs lookup loops, a writer that
 * updates keys flat out or paced. Keys are key_of(0..N-1), a bijection of
 * the index (never 0); a value carries check32(key) in its low 32 bits and
 * a generation in the high 32 bits, so that every lookup is verified.
 * With key_size / value_size above 8, systems store the wider bytes of
 * key_fill() / val_fill() for those same keys and values.
 */
#ifndef SHG_BENCH_PEERS_H
#define SHG_BENCH_PEERS_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "../common/shgutil.h"
#include "benchutil.h"
#include "knobs.h"

#define peer_unlikely(x) __builtin_expect(!!(x), 0)

/* ---- keys and values ---------------------------------------------------- */

/* The i-th key (i < N): distinct, never 0. */
static inline uint64_t key_of(uint64_t i)
{
	return shg__mix64(i + 1);
}

static inline uint32_t check32(uint64_t key)
{
	return (uint32_t)((key * 0x9e3779b97f4a7c15ull) >> 32);
}

static inline uint64_t val_of(uint64_t key, uint32_t gen)
{
	return (uint64_t)gen << 32 | check32(key);
}

static inline bool val_ok(uint64_t key, uint64_t val)
{
	return (uint32_t)val == check32(key);
}

/*
 * Wider keys and values (--key-size, --value-size): the key bytes of key
 * k are k itself (native order) followed by a chain of shg__mix64() words, so
 * they are distinct whenever the keys are and every system stores the
 * same bytes. A value of vsize bytes carries the 64-bit value at its
 * start and, from 16 bytes on, again in its last 8 bytes (a torn or
 * short value fails the check); the bytes between are a fixed pattern.
 */
#define PEER_KEY_MAX 256
#define PEER_BATCH_MAX 64
#define PEER_VAL_MAX 4096

static inline void key_fill(void *buf, uint64_t key, unsigned ksize)
{
	unsigned char *b = buf;
	uint64_t w = key;
	unsigned o;

	for (o = 0; o < ksize; o += 8) {
		memcpy(b + o, &w, ksize - o < 8 ? ksize - o : 8);
		w = shg__mix64(w + 0x9e3779b97f4a7c15ull);
	}
}

static inline void val_fill(void *buf, uint64_t val, unsigned vsize)
{
	unsigned char *b = buf;

	memcpy(b, &val, 8);
	if (vsize > 16)
		memset(b + 8, 0xa5, vsize - 16);
	if (vsize >= 16)
		memcpy(b + vsize - 8, &val, 8);
	else if (vsize > 8)
		memset(b + 8, 0xa5, vsize - 8);
}

/* The 64-bit value of a stored value of @len bytes; false when the
 * length is not vsize or its two copies differ. */
static inline bool val_read(const void *buf, size_t len, unsigned vsize,
			    uint64_t *val)
{
	const unsigned char *b = buf;

	if (len != vsize)
		return false;
	memcpy(val, b, 8);
	return vsize < 16 || memcmp(b, b + vsize - 8, 8) == 0;
}

/* xorshift64* step; returns a uniform index below n. */
static inline uint64_t rand_index(uint64_t *s, uint64_t n)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return (((x * 0x2545f4914f6cdd1dull) >> 32) * n) >> 32;
}

/* ---- jobs ---------------------------------------------------------------- */

/*
 * A lookup loop: iters random keys of nkeys (or, with duration_ns, as many
 * as fit in that time), verified. Keys are uniform over nkeys unless
 * dist.n is set (then dist gives the ranks: uniform or zipfian). With
 * read_pct < 100 the worker runs a mixed loop instead (peers.c): that
 * share of lookups, the rest updates in txns of txn_size.
 */
struct lookup_job {
	uint64_t iters;
	uint64_t nkeys;
	uint64_t seed;
	struct bench_hist *hist; /* every 64th lookup timed, or NULL */
	struct bench_keydist dist; /* n = 0: uniform over nkeys */
	uint64_t duration_ns; /* > 0: run this long instead of iters */
	unsigned read_pct; /* 0 or 100: lookups only */
	unsigned txn_size; /* mixed loop: updates per txn */
	unsigned batch; /* > 1: lookups in batches of this many keys (multi-get;
			 * shmgraph only, 8-byte keys, at most PEER_BATCH_MAX) */
	/* results */
	uint64_t ops;
	uint64_t ns;
	uint64_t misses; /* not found or wrong value */
	uint64_t updates; /* mixed loop: updates done (included in ops) */
	int cpu; /* CPU the worker was on at the end (-1: unknown) */
};

static inline uint64_t job_index(const struct lookup_job *j, uint64_t *rng)
{
	if (j->dist.n)
		return bench_keydist_next(&j->dist, rng);
	return rand_index(rng, j->nkeys);
}

/*
 * The lookup loop shared by every system: LOOKUP(p, key, &val) returns
 * true when found. Every 64th lookup is timed on its own into the
 * histogram (the two clock reads, ~25 ns here, are inside that sample).
 * A timed job (duration_ns) reads the clock every 256 lookups.
 */
#define PEER_LOOKUP_LOOP(job, p, LOOKUP)                                       \
	do {                                                                   \
		uint64_t rng_ = (job)->seed | 1, n_ = (job)->iters, miss_ = 0; \
		struct bench_hist *h_ = (job)->hist;                           \
		uint64_t t0_ = bench_now_ns(), i_, end_ = 0;                   \
		if ((job)->duration_ns) {                                      \
			n_ = UINT64_MAX;                                       \
			end_ = t0_ + (job)->duration_ns;                       \
		}                                                              \
		for (i_ = 0; i_ < n_; i_++) {                                  \
			uint64_t k_ = key_of(job_index((job), &rng_));         \
			uint64_t v_ = 0;                                       \
			bool f_;                                               \
			if (peer_unlikely((i_ & 63) == 0 && h_)) {             \
				uint64_t s_ = bench_now_ns();                  \
				f_ = LOOKUP(p, k_, &v_);                       \
				bench_hist_record(h_, bench_now_ns() - s_);    \
			} else {                                               \
				f_ = LOOKUP(p, k_, &v_);                       \
			}                                                      \
			miss_ += !f_ || !val_ok(k_, v_);                       \
			if (peer_unlikely(end_ && (i_ & 255) == 255 &&         \
					  bench_now_ns() >= end_)) {           \
				i_++;                                          \
				break;                                         \
			}                                                      \
		}                                                              \
		(job)->ns = bench_now_ns() - t0_;                              \
		(job)->ops = i_;                                               \
		(job)->misses = miss_;                                         \
	} while (0)

/* ---- systems -------------------------------------------------------------- */

struct peer;

/*
 * struct peer_ops - what a system provides. Return 0 or a negative code;
 * on failure, peer_fail() leaves a message in p->err.
 */
struct peer_ops {
	const char *system; /* JSON "system" */
	bool in_process; /* workers are threads, not processes */
	bool read_only; /* lookups only (no writer, commit, batch, build) */
	/* Create an empty structure and insert nkeys keys (batched). */
	int (*create)(struct peer *p, uint64_t nkeys);
	/* In a worker (after fork, or in a thread): own handles. */
	int (*attach)(struct peer *p, void **handle);
	void (*detach)(struct peer *p, void *handle);
	int (*lookup_loop)(struct peer *p, void *handle, struct lookup_job *j);
	/* One lookup (for mixed loops); true when found. */
	bool (*lookup_one)(struct peer *p, void *handle, uint64_t key,
			   uint64_t *val);
	/* One commit of one update / of n updates (keys from key_of()). */
	int (*update)(struct peer *p, void *handle, uint64_t key, uint64_t val);
	int (*update_batch)(struct peer *p, void *handle, const uint64_t *keys,
			    const uint64_t *vals, unsigned n);
	/* Build a fresh structure of nkeys keys, timed inside (ns), and
	 * throw it away. */
	int (*build)(struct peer *p, uint64_t nkeys, unsigned batch,
		     uint64_t *ns);
	/* pin suite (NULL where not provided): keep the current version
	 * alive in this handle (shmgraph: a pin; lmdb: an open read txn),
	 * its size in *bytes; release it. */
	int (*hold)(struct peer *p, void *handle, void **tok, long long *bytes);
	void (*release)(struct peer *p, void *handle, void *tok);
	/* Memory now, from the benchmark process: @used (allocator used
	 * bytes / LMDB file pages), @retired (retired, not yet freed; -1 if
	 * not known), @live (the current version's own size). @settle:
	 * wait for a grace period and reclaim first. */
	int (*mem)(struct peer *p, bool settle, long long *used,
		   long long *retired, long long *live);
	/* Memory per entry: up to 4 (variant, bytes) figures. */
	int (*bytes)(struct peer *p, const char **variants, long long *bytes,
		     unsigned *n);
	void (*destroy)(struct peer *p);
};

struct peer {
	const struct peer_ops *ops;
	char variant[192]; /* JSON "variant": configuration, as users run it */
	uint64_t nkeys;
	unsigned key_size; /* bytes per key; 0 means 8 */
	unsigned value_size; /* bytes per value; 0 means 8 */
	int numa_policy; /* shmgraph: struct shg_opts numa_policy (create) */
	int numa_node; /* shmgraph: numa_node for SHG_NUMA_BIND */
	const char *huge_dir; /* shmgraph-huge: segment file in this directory
			       * (NULL: a POSIX shm name) */
	char json_sys[160]; /* JSON fields of the system, ",\"k\":v..." */
	void *priv; /* the system's state */
	void *main_handle; /* handle of the benchmark process */
	char err[256];
};

static inline unsigned peer_ksize(const struct peer *p)
{
	return p->key_size ? p->key_size : 8;
}

static inline unsigned peer_vsize(const struct peer *p)
{
	return p->value_size ? p->value_size : 8;
}

/* True for the original 8-byte keys and values. */
static inline bool peer_narrow(const struct peer *p)
{
	return peer_ksize(p) == 8 && peer_vsize(p) == 8;
}

void peer_fail(struct peer *p, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Append to p->variant (truncated to fit). */
void peer_variant_add(struct peer *p, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

extern const struct peer_ops peer_shmgraph_ops; /* default flavor (AUTO) */
extern const struct peer_ops peer_shmgraph_fence_ops; /* fence flavor */
/* default flavor, segment created and opened with SHG_OPEN_HUGE */
extern const struct peer_ops peer_shmgraph_huge_ops;
extern const struct peer_ops peer_rwlock_ops;
extern const struct peer_ops peer_flat_ops;
extern const struct peer_ops peer_lfht_ops;
#ifdef HAVE_LMDB
extern const struct peer_ops peer_lmdb_ops;
#endif

/* shmgraph only: the retained_with_pin measurement. */
struct retained_result {
	long long version_bytes; /* v1's own size (shg_version_info .bytes) */
	long long used_pinned; /* allocator used bytes, v1 pinned, after K */
	long long retired_pinned; /* of which retired (not yet freed) */
	long long live_bytes; /* the current version's size */
	long long used_unpinned; /* after unpin and reclaim */
	long long used_before; /* before the K updates */
	long long used_end; /* right after the K updates, before settling */
	uint64_t pinned_checked; /* keys of v1 looked up through the pin */
	uint64_t pinned_bad; /* of which missing or not v1's value */
	uint64_t pinned_bad_before; /* the same check before the updates */
	uint64_t updates;
	uint64_t ns;
};
int peer_shmgraph_retained(struct peer *p, uint64_t k,
			   struct retained_result *r);
/* shmgraph only: the segment's name for shg_seg_open() (NULL before
 * create), so that other processes can open it (bench_interfere). */
const char *peer_shmgraph_seg_name(const struct peer *p);

/* ---- workers ------------------------------------------------------------- */

enum worker_cmd {
	WCMD_NONE = 0,
	WCMD_LOOKUP, /* run a lookup job */
	WCMD_WRITE, /* update until told to stop (rate 0: flat out) */
	WCMD_EXIT,
};

struct worker;

/* Start a worker (a forked process, or a thread for in-process systems);
 * it attaches its handle before returning. cpu < 0: not pinned. */
int worker_start(struct peer *p, int cpu, struct worker **out);
/* Run a lookup job in the worker and wait for it. */
int worker_lookup(struct worker *w, struct lookup_job *j);
/* The same in two steps, so that several workers run at once. */
void worker_lookup_post(struct worker *w, const struct lookup_job *j);
int worker_lookup_wait(struct worker *w, struct lookup_job *j);
/* Writer settings for the next worker_write_start(): updates per txn
 * (default 1) and key ranks (NULL: uniform). */
void worker_write_config(struct worker *w, unsigned txn_size,
			 const struct bench_keydist *d);
/* Start writing (rate: txns per second, 0 = flat out); returns once
 * the writer made its first update. */
int worker_write_start(struct worker *w, uint64_t rate);
/* Commit latencies of the last write run (every 16th txn timed). */
const struct bench_hist *worker_write_hist(const struct worker *w);
/* CPU the worker last ran on (-1: unknown). */
int worker_cpu(const struct worker *w);
/* Process id of a worker process (-1: a thread, or gone). */
int worker_pid(const struct worker *w);
/* Stop writing; the updates done and their time. */
int worker_write_stop(struct worker *w, uint64_t *ops, uint64_t *ns);
/* Ask the worker to exit, wait (then kill). */
void worker_stop(struct worker *w);
/* The worker's last error message ("" if none). */
const char *worker_error(const struct worker *w);

#endif /* SHG_BENCH_PEERS_H */
