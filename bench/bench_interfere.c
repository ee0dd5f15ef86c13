/* SPDX-License-Identifier: MIT */
/*
 * bench_interfere - where a shmgraph reader's lookup rate goes when
 * another process runs beside it.
 *
 * One reader process looks up random keys of an N-key map (bench_map's
 * reader: peer_shmgraph.c, one read section, current version and
 * shg_map_get_u64 per lookup, every value verified) while ONE disturber
 * process, on the other CPU, runs one of:
 *
 *   none          no disturber: the baseline
 *   spin          multiply-adds on 2 KiB of its own stack (its L1 only):
 *                 a busy CPU beside the reader and nothing else
 *   memhog        8-byte stores over 64 KiB chunks, cycling over a private
 *                 64 MiB buffer: cache and memory-bus pollution, no
 *                 shmgraph
 *   commit-same   single-update commits flat out to the reader's root
 *   commit-other  the same to a second N-key map root of the same
 *                 segment: allocation, copying, version records, retires
 *                 and grace periods alike, but the reader's nodes never
 *                 change
 *   pin-unpin     shg_pin_current + shg_unpin of the reader's root: the
 *                 pin records a txn's base pin writes, nothing else
 *   begin-abort   shg_txn_begin + shg_txn_abort on the reader's root, no
 *                 edit: the base pin, and the txn sequence taken from
 *                 the root slot's next_seq (an atomic add on the line
 *                 that holds the root's current value, which every
 *                 lookup reads)
 *   copy-abort    the same update to the reader's root in a txn that is
 *                 then aborted: base pin, path copy and allocation
 *                 (shg_txn_map_put_u64 copies at once), freed by
 *                 shg_txn_abort; no version record, no publish, no retire
 *   sync          shg_synchronize() in a loop: grace periods only (the
 *                 membarrier flavor's IPIs reach the reader's CPU)
 *   txn100-same   txns of 100 updates to the reader's root, flat out
 *
 * for each read flavor: the segment opened by every process with
 * SHG_FLAVOR_AUTO (membarrier where the kernel has it; system "shmgraph")
 * and with SHG_FLAVOR_FENCE (system "shmgraph-fence").
 *
 * One rep of a case: start the disturber (worker_write_start() returns
 * after its first operation), let it run 20 ms (2 ms with --quick), time
 * the reader for --duration-ms, stop the disturber and take its own
 * operation rate (over its whole run, warm-up included), the global
 * epoch advances meanwhile (shg_stats_get: the grace periods it started)
 * and the reader's on-CPU time (/proc/PID/schedstat). bench_run()
 * repeats all cases interleaved, none spin memhog ... of one flavor, then
 * the other flavor's, rep after rep, so the reader's "kept" share of a
 * case is the median of per-rep ratios
 *
 *     kept[r] = baseline ns/lookup[r] / case ns/lookup[r]
 *             = case lookup rate[r] / baseline lookup rate[r]
 *
 * with the baseline ("none", same flavor) of the same rep r: never a
 * ratio across runs. "kept on-CPU" is the same ratio of on-CPU ns per
 * lookup (what the scheduler gave to other processes left out). The
 * loss decomposition takes per-rep differences of kept on-CPU (of kept
 * without schedstat) between two cases, and the reader time lost per
 * disturber operation is (kept of spin - kept) / disturber ops per
 * second, per rep.
 *
 * The disturbers are peers.c workers (struct peer with this file's ops,
 * forked processes driven through the worker control block documented
 * there): their "update" is one disturber operation, which the worker
 * repeats until told to stop. All synchronization between the processes
 * is peers.c's and the library's; this file adds none.
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "benchutil.h"
#include "knobs.h"
#include "peers.h"
#include <shmgraph.h>

#define OTHER_ROOT "other"
#define MEMHOG_BYTES (64ull << 20)
#define MEMHOG_CHUNK (64u << 10)
#define SPIN_WORDS 256 /* 2 KiB: well inside any L1d */
#define SPIN_ROUNDS 4 /* one spin op: 4 x 256 multiply-adds */
#define TXN_BIG 100

enum var {
	V_NONE,
	V_SPIN,
	V_MEMHOG,
	V_COMMIT_SAME,
	V_COMMIT_OTHER,
	V_PIN,
	V_BEGIN_ABORT,
	V_COPY_ABORT,
	V_SYNC,
	V_TXN100_SAME,
	NVAR
};

static const char *const var_names[NVAR] = {
	"none",	     "spin",	    "memhog",	  "commit-same", "commit-other",
	"pin-unpin", "begin-abort", "copy-abort", "sync",	 "txn100-same",
};

/* What one disturber operation is, and the unit of its rate. */
static const char *const var_what[NVAR] = {
	"no disturber",
	"op = 1,024 multiply-adds on 2 KiB of stack (L1 only)",
	"op = 64 KiB of 8-byte stores, cycling over a private 64 MiB buffer",
	"op = txn of 1 update to the reader's map, committed",
	"op = txn of 1 update to a second map root of N keys, committed",
	"op = shg_pin_current() + shg_unpin() of the reader's root",
	"op = shg_txn_begin() + shg_txn_abort() on the reader's root, no edit",
	"op = txn of 1 update to the reader's map, aborted",
	"op = shg_synchronize()",
	"op = update in txns of 100 to the reader's map, committed",
};

static const char *const var_unit[NVAR] = {
	"-",	  "M madd/s", "MB/s",	  "commits/s", "commits/s",
	"pins/s", "aborts/s", "aborts/s", "syncs/s",   "upd/s",
};

enum { FL_AUTO, FL_FENCE, NFL };

static const char *const fl_names[NFL] = { "shmgraph", "shmgraph-fence" };
static const char *const fl_short[NFL] = { "AUTO", "FENCE" };

/* ---- disturber processes ------------------------------------------------ */

/* Set in the benchmark before the fork; the child reads its copy. */
struct dstate {
	enum var var;
	int fl;
	const char *seg_name;
};

/* The disturber's own handles, made in its process. */
struct dhandle {
	struct shg_seg *seg;
	struct shg_thread *t;
	struct shg_root *same, *other;
	unsigned char *buf; /* memhog */
	size_t pos;
	uint64_t spin[SPIN_WORDS];
};

static int32_t fl_flavor(int fl)
{
	return fl == FL_FENCE ? SHG_FLAVOR_FENCE : SHG_FLAVOR_AUTO;
}

static int dfail(struct peer *p, const char *what, int err)
{
	peer_fail(p, "%s: %s", what, shg_strerror(err));
	return err;
}

static bool var_uses_seg(enum var v)
{
	return v >= V_COMMIT_SAME;
}

static void d_detach(struct peer *p, void *handle)
{
	struct dhandle *h = handle;

	(void)p;
	if (!h)
		return;
	if (h->same)
		shg_root_close(h->same);
	if (h->other)
		shg_root_close(h->other);
	if (h->seg)
		shg_seg_close(h->seg);
	if (h->buf)
		munmap(h->buf, MEMHOG_BYTES);
	free(h);
}

static int d_attach(struct peer *p, void **handle)
{
	const struct dstate *d = p->priv;
	struct shg_opts o = { .size = sizeof(o) };
	struct dhandle *h = calloc(1, sizeof(*h));
	unsigned i;
	int err = 0;

	if (!h)
		return -ENOMEM;
	for (i = 0; i < SPIN_WORDS; i++)
		h->spin[i] = i * 0x9e3779b97f4a7c15ull;
	if (d->var == V_MEMHOG) {
		h->buf = mmap(NULL, MEMHOG_BYTES, PROT_READ | PROT_WRITE,
			      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (h->buf == MAP_FAILED) {
			h->buf = NULL;
			err = -errno;
			peer_fail(p, "mmap %llu bytes: %s",
				  (unsigned long long)MEMHOG_BYTES,
				  strerror(errno));
			goto fail;
		}
		memset(h->buf, 1, MEMHOG_BYTES); /* fault it in now */
	}
	if (!var_uses_seg(d->var)) {
		*handle = h;
		return 0;
	}
	o.flavor = fl_flavor(d->fl);
	err = shg_seg_open(d->seg_name, &o, &h->seg);
	if (err) {
		dfail(p, "shg_seg_open", err);
		goto fail;
	}
	err = shg_thread_get(h->seg, &h->t);
	if (err) {
		dfail(p, "shg_thread_get", err);
		goto fail;
	}
	err = shg_root_open(h->seg, "map", &h->same);
	if (err) {
		dfail(p, "shg_root_open map", err);
		goto fail;
	}
	if (d->var == V_COMMIT_OTHER) {
		err = shg_root_open(h->seg, OTHER_ROOT, &h->other);
		if (err) {
			dfail(p, "shg_root_open " OTHER_ROOT, err);
			goto fail;
		}
	}
	*handle = h;
	return 0;
fail:
	d_detach(p, h);
	return err;
}

/* One txn of @n puts to @root, committed (or aborted with @abort);
 * retried on a conflict (none is expected: one writer). */
static int put_txn(struct peer *p, struct shg_root *root, const uint64_t *keys,
		   const uint64_t *vals, unsigned n, bool abort)
{
	int tries, err = 0;

	for (tries = 0; tries < 64; tries++) {
		struct shg_txn *txn;
		unsigned i;

		err = shg_txn_begin(root, &txn);
		if (err)
			return dfail(p, "shg_txn_begin", err);
		for (i = 0; i < n; i++) {
			struct shg_val v = { .kind = SHG_KIND_U64,
					     .u64 = vals[i] };

			err = shg_txn_map_put_u64(txn, SHG_REF_ROOT, keys[i],
						  &v);
			if (peer_unlikely(err)) {
				shg_txn_abort(txn);
				return dfail(p, "shg_txn_map_put_u64", err);
			}
		}
		if (abort)
			return shg_txn_abort(txn);
		err = shg_txn_commit(txn);
		if (!err)
			return 0;
		if (err != SHG_ECONFLICT)
			return dfail(p, "shg_txn_commit", err);
		shg_txn_abort(txn);
	}
	return dfail(p, "shg_txn_commit", err);
}

static void spin_op(struct dhandle *h)
{
	unsigned r, i;

	for (r = 0; r < SPIN_ROUNDS; r++)
		for (i = 0; i < SPIN_WORDS; i++)
			h->spin[i] = h->spin[i] * 6364136223846793005ull + i;
	bench_barrier();
}

static void memhog_op(struct dhandle *h)
{
	uint64_t *w = (uint64_t *)(void *)(h->buf + h->pos), x = h->pos;
	size_t i;

	/* Plain stores of distinct values (no memset: its large-size paths
	 * may bypass the cache): every line is read for ownership and left
	 * dirty in the cache, evicting whatever the reader had there. */
	for (i = 0; i < MEMHOG_CHUNK / sizeof(*w); i++)
		w[i] = x + i;
	h->pos += MEMHOG_CHUNK;
	if (h->pos >= MEMHOG_BYTES)
		h->pos = 0;
	bench_barrier();
}

/* One disturber operation (the worker's "update"; @key and @val are the
 * worker's random key of the map and a valid value for it). */
static int d_update(struct peer *p, void *handle, uint64_t key, uint64_t val)
{
	const struct dstate *d = p->priv;
	struct dhandle *h = handle;
	int err;

	switch (d->var) {
	case V_SPIN:
		spin_op(h);
		return 0;
	case V_MEMHOG:
		memhog_op(h);
		return 0;
	case V_COMMIT_SAME:
		return put_txn(p, h->same, &key, &val, 1, false);
	case V_COMMIT_OTHER:
		return put_txn(p, h->other, &key, &val, 1, false);
	case V_COPY_ABORT:
		return put_txn(p, h->same, &key, &val, 1, true);
	case V_PIN: {
		struct shg_pin *pin;

		err = shg_pin_current(h->same, &pin);
		if (err)
			return dfail(p, "shg_pin_current", err);
		err = shg_unpin(pin);
		return err ? dfail(p, "shg_unpin", err) : 0;
	}
	case V_BEGIN_ABORT:
		return put_txn(p, h->same, NULL, NULL, 0, true);
	case V_SYNC:
		err = shg_synchronize(h->seg, 10000);
		return err ? dfail(p, "shg_synchronize", err) : 0;
	default:
		peer_fail(p, "disturber %s has no single operation",
			  var_names[d->var]);
		return -EINVAL;
	}
}

static int d_update_batch(struct peer *p, void *handle, const uint64_t *keys,
			  const uint64_t *vals, unsigned n)
{
	const struct dstate *d = p->priv;
	struct dhandle *h = handle;

	if (d->var != V_TXN100_SAME) {
		peer_fail(p, "disturber %s has no batch", var_names[d->var]);
		return -EINVAL;
	}
	return put_txn(p, h->same, keys, vals, n, false);
}

static const struct peer_ops disturber_ops = {
	.system = "disturber",
	.attach = d_attach,
	.detach = d_detach,
	.update = d_update,
	.update_batch = d_update_batch,
};

/* ---- setup ---------------------------------------------------------------- */

struct flavor {
	struct peer p; /* the map and its reader (peer_shmgraph.c) */
	struct shg_seg *seg; /* this process's handle, for shg_stats_get */
	bool want, ok;
	char skip[320];
	char read_flavor[16]; /* what the segment's readers use */
	struct worker *reader;
	struct peer dp[NVAR]; /* disturbers */
	struct dstate ds[NVAR];
	struct worker *dist[NVAR];
	char dskip[NVAR][320];
};

/* One case: a disturber beside the reader, one flavor. */
struct icase {
	struct flavor *f;
	enum var var;
	uint64_t seed;
	double drate[BENCH_MAX_REPS]; /* disturber ops/s of each rep */
	double eps[BENCH_MAX_REPS]; /* global epoch advances per second */
	double cpu_ns[BENCH_MAX_REPS]; /* reader on-CPU ns per lookup */
	double share[BENCH_MAX_REPS]; /* reader on-CPU share of wall time */
	bool sched_ok; /* every rep had /proc/PID/schedstat */
	unsigned ndrate;
	uint64_t misses;
	int reader_cpu, dist_cpu;
	char variant[512];
	char label[40];
	char extra[1536];
	/* filled by finish() */
	double kept[BENCH_MAX_REPS];
	unsigned nkept;
	double kcpu[BENCH_MAX_REPS]; /* kept from on-CPU time, per rep */
	unsigned nkcpu;
	struct bench_summary ks, ds, es, ls, lss, kcs, shs;
};

static struct bench_knobs K;
static struct bench_topo T;
static char config_json[1024];
static unsigned warmup_ms;
static bool want_var[NVAR];
static struct flavor fls[NFL];

#define MAX_CASES (NFL * NVAR)
static struct bench_case cases[MAX_CASES];
static struct icase ics[MAX_CASES];
static size_t ncases;

static int cpu_for(bool disturber)
{
	if (!K.pin)
		return -1;
	return bench_topo_place(&T, K.place,
				disturber ? K.writer_node : K.reader_node,
				disturber, 0);
}

/* --systems names flavors and disturbers; an empty class means all. */
static void parse_systems(bool *want_fl)
{
	char buf[256], *tok, *save = NULL;
	bool any_fl = false, any_var = false;
	int i;

	for (i = 0; i < NFL; i++)
		want_fl[i] = false;
	for (i = 0; i < NVAR; i++)
		want_var[i] = false;
	if (K.systems) {
		snprintf(buf, sizeof(buf), "%s", K.systems);
		for (tok = strtok_r(buf, ",", &save); tok;
		     tok = strtok_r(NULL, ",", &save)) {
			bool known = false;

			for (i = 0; i < NFL; i++)
				if (strcmp(tok, fl_names[i]) == 0)
					want_fl[i] = any_fl = known = true;
			for (i = 0; i < NVAR; i++)
				if (strcmp(tok, var_names[i]) == 0)
					want_var[i] = any_var = known = true;
			if (!known)
				fprintf(stderr,
					"bench_interfere: --systems: unknown "
					"name %s (ignored)\n",
					tok);
		}
	}
	for (i = 0; i < NFL && !any_fl; i++)
		want_fl[i] = true;
	for (i = 0; i < NVAR && !any_var; i++)
		want_var[i] = true;
	want_var[V_NONE] = true; /* every ratio needs the baseline */
}

/* Create a second root of @n keys beside the reader's map (the target of
 * commit-other), in txns of 1,000; keep the segment open in f->seg. */
static int make_other(struct flavor *f, uint64_t n)
{
	struct shg_opts o = { .size = sizeof(o) };
	struct shg_seg *seg = NULL;
	struct shg_thread *t;
	struct shg_root *root = NULL;
	uint64_t keys[1000], vals[1000], i = 0;
	struct shg_txn *txn;
	int err, e2;

	o.flavor = fl_flavor((int)(f - fls));
	err = shg_seg_open(peer_shmgraph_seg_name(&f->p), &o, &seg);
	if (err)
		return dfail(&f->p, "shg_seg_open", err);
	err = shg_thread_get(seg, &t);
	if (!err)
		err = shg_root_create(seg, OTHER_ROOT, &root);
	if (err) {
		dfail(&f->p, "shg_root_create " OTHER_ROOT, err);
		goto out;
	}
	err = shg_txn_begin(root, &txn);
	if (!err) {
		err = shg_txn_map_new(txn, SHG_REF_ROOT, SHG_KIND_U64,
				      SHG_KIND_U64);
		if (err) {
			shg_txn_abort(txn);
		} else {
			err = shg_txn_commit(txn);
			/* These two leave the txn valid (graph.h). */
			if (err == SHG_ECONFLICT || err == SHG_EREPLICA)
				shg_txn_abort(txn);
		}
	}
	if (err) {
		dfail(&f->p, "map " OTHER_ROOT, err);
		goto out;
	}
	while (!err && i < n) {
		unsigned k = 0;

		for (; k < 1000 && i < n; k++, i++) {
			keys[k] = key_of(i);
			vals[k] = val_of(keys[k], 0);
		}
		err = put_txn(&f->p, root, keys, vals, k, false);
	}
	/* Let the fill's retired nodes go before the measurements. */
	for (i = 0; i < 2 && !err; i++) {
		e2 = shg_synchronize(seg, 10000);
		if (e2)
			break;
		shg_reclaim(seg);
	}
out:
	if (root)
		shg_root_close(root);
	if (err)
		shg_seg_close(seg);
	else
		f->seg = seg;
	return err;
}

static void flavor_setup(int fi, uint64_t n)
{
	struct flavor *f = &fls[fi];
	int err, v;

	f->p.ops = fi == FL_FENCE ? &peer_shmgraph_fence_ops :
				    &peer_shmgraph_ops;
	f->p.numa_policy = K.numa_policy;
	f->p.numa_node = K.numa_node;
	if (K.verbose)
		fprintf(stderr, "bench_interfere: building %s, 2 x %llu keys\n",
			fl_names[fi], (unsigned long long)n);
	err = f->p.ops->create(&f->p, n);
	if (!err)
		err = make_other(f, n);
	if (!err)
		err = worker_start(&f->p, cpu_for(false), &f->reader);
	if (err) {
		snprintf(f->skip, sizeof(f->skip), "%s: %s", fl_names[fi],
			 f->p.err[0] ? f->p.err : strerror(-err));
		fprintf(stderr, "bench_interfere: %s\n", f->skip);
		return;
	}
	snprintf(f->read_flavor, sizeof(f->read_flavor), "%s",
		 strstr(f->p.variant, "fence read") ? "fence" : "membarrier");
	f->ok = true;
	for (v = V_NONE + 1; v < NVAR; v++) {
		struct peer *dp = &f->dp[v];

		if (!want_var[v])
			continue;
		f->ds[v].var = (enum var)v;
		f->ds[v].fl = fi;
		f->ds[v].seg_name = peer_shmgraph_seg_name(&f->p);
		dp->ops = &disturber_ops;
		dp->priv = &f->ds[v];
		dp->nkeys = n;
		snprintf(dp->variant, sizeof(dp->variant), "%s", var_what[v]);
		err = worker_start(dp, cpu_for(true), &f->dist[v]);
		if (err) {
			snprintf(f->dskip[v], sizeof(f->dskip[v]),
				 "disturber %s: %s", var_names[v],
				 dp->err[0] ? dp->err : strerror(-err));
			fprintf(stderr, "bench_interfere: %s\n", f->dskip[v]);
		}
	}
}

static void flavor_stop(struct flavor *f)
{
	int v;

	for (v = 0; v < NVAR; v++) {
		if (f->dist[v])
			worker_stop(f->dist[v]);
		f->dist[v] = NULL;
	}
	if (f->reader)
		worker_stop(f->reader);
	f->reader = NULL;
	if (f->seg)
		shg_seg_close(f->seg);
	f->seg = NULL;
	if (f->p.ops && f->p.priv)
		f->p.ops->destroy(&f->p);
}

/* ---- one rep ---------------------------------------------------------------- */

static int case_fail(struct bench_case *c, const char *what, int err,
		     const char *msg)
{
	bench_case_skip(c, "failed: %s: %s", what,
			msg && *msg ? msg : strerror(-err));
	return err < 0 ? err : -EIO;
}

/*
 * On-CPU and run-queue wait nanoseconds of process @pid so far (the first
 * two fields of /proc/PID/schedstat; interrupt time on its CPU counts as
 * its own without IRQ time accounting, host steal time does not). False
 * if unknown.
 */
static bool sched_times(int pid, uint64_t *run)
{
	char path[64];
	unsigned long long a = 0;
	FILE *f;
	bool ok;

	if (pid <= 0)
		return false;
	snprintf(path, sizeof(path), "/proc/%d/schedstat", pid);
	f = fopen(path, "re");
	if (!f)
		return false;
	ok = fscanf(f, "%llu", &a) == 1;
	fclose(f);
	*run = a;
	return ok;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { (time_t)(ms / 1000),
			       (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

static int run_case(struct bench_case *c, const struct bench_ctl *ctl,
		    struct bench_sample *out)
{
	struct icase *ic = c->arg;
	struct flavor *f = ic->f;
	struct worker *w = ic->var == V_NONE ? NULL : f->dist[ic->var];
	struct lookup_job j;
	struct shg_stats st0, st1;
	uint64_t dops = 0, dns = 0, t0 = bench_now_ns(), r0 = 0, r1 = 0, ta, tb;
	int err, stats, rpid = worker_pid(f->reader);
	bool sched;

	stats = shg_stats_get(f->seg, &st0);
	if (w) {
		worker_write_config(w, ic->var == V_TXN100_SAME ? TXN_BIG : 1,
				    NULL);
		err = worker_write_start(w, 0);
		if (err) {
			uint64_t o, t;

			worker_write_stop(w, &o, &t);
			return case_fail(c, "disturber", err, worker_error(w));
		}
		sleep_ms(warmup_ms);
	}
	memset(&j, 0, sizeof(j));
	j.nkeys = f->p.nkeys;
	j.duration_ns = ctl->target_ns;
	j.seed = 0x1234567ull + ++ic->seed * 0x9e3779b97f4a7c15ull;
	j.hist = ctl->hist;
	ta = bench_now_ns();
	sched = sched_times(rpid, &r0);
	err = worker_lookup(f->reader, &j);
	sched = sched && sched_times(rpid, &r1) && r1 > r0 && j.ops;
	tb = bench_now_ns();
	if (w) {
		int e = worker_write_stop(w, &dops, &dns);

		if (e && !err)
			return case_fail(c, "disturber", e, worker_error(w));
		ic->dist_cpu = worker_cpu(w);
	}
	if (err)
		return case_fail(c, "reader", err, worker_error(f->reader));
	ic->reader_cpu = j.cpu;
	ic->misses += j.misses;
	/*
	 * bench_run() calls each case once to warm up (without a histogram)
	 * before the reps (with one: c->latency): only reps count, so that
	 * drate[k] belongs to the same rep as c->rep_ns[k].
	 */
	if (!w)
		dns = bench_now_ns() - t0;
	if (!stats)
		stats = shg_stats_get(f->seg, &st1);
	if (ctl->hist && ic->ndrate < BENCH_MAX_REPS) {
		ic->eps[ic->ndrate] =
			stats || !dns ?
				NAN :
				(double)(st1.global_epoch - st0.global_epoch) *
					1e9 / (double)dns;
		ic->cpu_ns[ic->ndrate] =
			sched ? (double)(r1 - r0) / (double)j.ops : NAN;
		ic->share[ic->ndrate] =
			sched ? (double)(r1 - r0) / (double)(tb - ta) : NAN;
		if (!ic->ndrate)
			ic->sched_ok = true;
		ic->sched_ok = ic->sched_ok && sched;
		ic->drate[ic->ndrate++] =
			dns ? (double)dops * 1e9 / (double)dns : 0;
	}
	out->ops = j.ops;
	out->ns = j.ns;
	return 0;
}

/* ---- cases and results ---------------------------------------------------- */

static void add_case(struct flavor *f, enum var v)
{
	struct bench_case *c = &cases[ncases];
	struct icase *ic = &ics[ncases++];

	memset(ic, 0, sizeof(*ic));
	ic->f = f;
	ic->var = v;
	ic->reader_cpu = ic->dist_cpu = -1;
	bench_case_init(c);
	snprintf(ic->label, sizeof(ic->label), "%s", var_names[v]);
	snprintf(ic->variant, sizeof(ic->variant),
		 "disturber %s (%s); reader: %s", var_names[v], var_what[v],
		 f->p.variant[0] ? f->p.variant : "-");
	c->system = fl_names[f - fls];
	c->variant = ic->variant;
	c->label = ic->label;
	c->workload = "interfere";
	c->readers = 1;
	c->writers = v == V_COMMIT_SAME || v == V_COMMIT_OTHER ||
				     v == V_TXN100_SAME ?
			     1 :
			     0;
	c->keys = (long long)K.keys[0];
	c->numa = K.numa;
	c->run = run_case;
	c->arg = ic;
	c->timed = true;
	c->latency = true;
	c->json_sys = f->p.json_sys;
	if (!f->ok)
		bench_case_skip(c, "%s", f->skip);
	else if (v != V_NONE && !f->dist[v])
		bench_case_skip(c, "%s", f->dskip[v]);
}

static struct icase *find_case(const struct flavor *f, enum var v)
{
	size_t i;

	for (i = 0; i < ncases; i++)
		if (ics[i].f == f && ics[i].var == v)
			return &ics[i];
	return NULL;
}

static bool ran(const struct icase *ic)
{
	const struct bench_case *c = &cases[ic - ics];

	return ic && !c->skip && c->nreps > 0;
}

/* Per-rep kept ratios of @ic against its flavor's baseline into @out;
 * their count. Rep k of two cases ran in the same round of bench_run()
 * (a case that fails is dropped from later rounds, so the first
 * min(nreps) reps of both pair up). */
static unsigned kept_reps(const struct icase *ic, double *out)
{
	const struct icase *b = find_case(ic->f, V_NONE);
	const struct bench_case *c = &cases[ic - ics], *bc;
	unsigned k, n;

	if (!b || !ran(b) || !ran(ic))
		return 0;
	bc = &cases[b - ics];
	n = c->nreps < bc->nreps ? c->nreps : bc->nreps;
	for (k = 0; k < n; k++)
		out[k] = bc->rep_ns[k] / c->rep_ns[k];
	return n;
}

/* The same from the reader's on-CPU time per lookup: what the scheduler
 * gave to other processes is left out. 0 without /proc/PID/schedstat. */
static unsigned kept_cpu_reps(const struct icase *ic, double *out)
{
	const struct icase *b = find_case(ic->f, V_NONE);
	unsigned k, n;

	if (!b || !ran(b) || !ran(ic) || !b->sched_ok || !ic->sched_ok)
		return 0;
	n = ic->ndrate < b->ndrate ? ic->ndrate : b->ndrate;
	for (k = 0; k < n; k++)
		out[k] = b->cpu_ns[k] / ic->cpu_ns[k];
	return n;
}

/* The loss decomposition and the per-op figures use the on-CPU kept
 * when every case has it (on_cpu), else the wall-clock kept. */
static bool on_cpu;

static unsigned kept_basis(const struct icase *ic, double *out)
{
	return on_cpu ? kept_cpu_reps(ic, out) : kept_reps(ic, out);
}

/* The disturber rate in its display unit. */
static double in_unit(enum var v, double ops_per_s)
{
	switch (v) {
	case V_SPIN:
		return ops_per_s * SPIN_ROUNDS * SPIN_WORDS / 1e6;
	case V_MEMHOG:
		return ops_per_s * MEMHOG_CHUNK / 1e6;
	default:
		return ops_per_s;
	}
}

static void json_num(char *buf, size_t size, size_t *o, const char *name,
		     double v, int prec)
{
	if (isnan(v) || isinf(v))
		bench_append(buf, size, o, ",\"%s\":null", name);
	else
		bench_append(buf, size, o, ",\"%s\":%.*f", name, prec, v);
}

static void finish(struct icase *ic, const char *load0, const char *load1)
{
	struct bench_case *c = &cases[ic - ics];
	size_t o = 0, sz = sizeof(ic->extra);
	double lost[BENCH_MAX_REPS], ksp[BENCH_MAX_REPS], kb[BENCH_MAX_REPS];
	const struct icase *sp = find_case(ic->f, V_SPIN);
	unsigned k, nl, nsp = 0, nb;

	ic->ks.median = ic->ks.min = ic->ks.max = NAN;
	ic->ds.median = ic->ds.min = ic->ds.max = NAN;
	ic->es.median = ic->es.min = ic->es.max = NAN;
	ic->ls.median = ic->ls.min = ic->ls.max = NAN;
	ic->lss = ic->ls;
	ic->kcs = ic->shs = ic->ls;
	if (c->skip || !c->nreps)
		return;
	c->misses = (long long)ic->misses;
	ic->nkept = kept_reps(ic, ic->kept);
	if (ic->nkept)
		bench_summarize(ic->kept, ic->nkept, &ic->ks);
	if (ic->ndrate) {
		bench_summarize(ic->drate, ic->ndrate, &ic->ds);
		bench_summarize(ic->eps, ic->ndrate, &ic->es);
		if (ic->sched_ok)
			bench_summarize(ic->share, ic->ndrate, &ic->shs);
	}
	ic->nkcpu = kept_cpu_reps(ic, ic->kcpu);
	if (ic->nkcpu)
		bench_summarize(ic->kcpu, ic->nkcpu, &ic->kcs);
	nb = kept_basis(ic, kb);
	/* Rep k of kept and of drate are the same rep (see run_case). */
	for (k = 0, nl = 0; ic->var != V_NONE && k < nb && k < ic->ndrate; k++)
		if (ic->drate[k] > 0)
			lost[nl++] = (1.0 - kb[k]) * 1e9 / ic->drate[k];
	if (nl)
		bench_summarize(lost, nl, &ic->ls);
	/* The same beyond a busy CPU: kept of spin minus kept, per rep. */
	if (sp && ic->var != V_NONE && ic->var != V_SPIN)
		nsp = kept_basis(sp, ksp);
	for (k = 0, nl = 0; k < nsp && k < nb && k < ic->ndrate; k++)
		if (ic->drate[k] > 0)
			lost[nl++] = (ksp[k] - kb[k]) * 1e9 / ic->drate[k];
	if (nl)
		bench_summarize(lost, nl, &ic->lss);
	bench_append(ic->extra, sz, &o,
		     ",\"bench\":\"interfere\",\"disturber\":\"%s\","
		     "\"flavor\":\"%s\",\"read_flavor\":\"%s\"",
		     var_names[ic->var], fl_short[ic->f - fls],
		     ic->f->read_flavor);
	json_num(ic->extra, sz, &o, "kept", ic->ks.median, 4);
	json_num(ic->extra, sz, &o, "kept_min", ic->ks.min, 4);
	json_num(ic->extra, sz, &o, "kept_max", ic->ks.max, 4);
	bench_append(ic->extra, sz, &o, ",\"kept_reps\":[");
	for (k = 0; k < ic->nkept; k++)
		bench_append(ic->extra, sz, &o, "%s%.4f", k ? "," : "",
			     ic->kept[k]);
	bench_append(ic->extra, sz, &o, "]");
	if (ic->var != V_NONE) {
		json_num(ic->extra, sz, &o, "disturber_ops_per_s",
			 ic->ds.median, 0);
		json_num(ic->extra, sz, &o, "disturber_rate",
			 in_unit(ic->var, ic->ds.median), 1);
		json_num(ic->extra, sz, &o, "disturber_rate_min",
			 in_unit(ic->var, ic->ds.min), 1);
		json_num(ic->extra, sz, &o, "disturber_rate_max",
			 in_unit(ic->var, ic->ds.max), 1);
		bench_append(ic->extra, sz, &o, ",\"disturber_unit\":\"%s\"",
			     var_unit[ic->var]);
	}
	json_num(ic->extra, sz, &o, "reader_on_cpu_share", ic->shs.median, 4);
	json_num(ic->extra, sz, &o, "kept_on_cpu", ic->kcs.median, 4);
	json_num(ic->extra, sz, &o, "kept_on_cpu_min", ic->kcs.min, 4);
	json_num(ic->extra, sz, &o, "kept_on_cpu_max", ic->kcs.max, 4);
	bench_append(ic->extra, sz, &o, ",\"lost_basis\":\"%s\"",
		     on_cpu ? "on_cpu" : "wall");
	json_num(ic->extra, sz, &o, "epochs_per_s", ic->es.median, 0);
	json_num(ic->extra, sz, &o, "reader_ns_lost_per_op", ic->ls.median, 1);
	json_num(ic->extra, sz, &o, "reader_ns_lost_per_op_beyond_spin",
		 ic->lss.median, 1);
	bench_append(ic->extra, sz, &o,
		     ",\"reader_cpu\":%d,\"disturber_cpu\":%d,\"warmup_ms\":%u,"
		     "\"loadavg_before\":\"%s\",\"loadavg_after\":\"%s\"",
		     ic->reader_cpu, ic->var == V_NONE ? -1 : ic->dist_cpu,
		     warmup_ms, load0, load1);
	c->json_extra = ic->extra;
}

/* ---- output ----------------------------------------------------------------- */

static void fmt_rate(char *buf, size_t size, enum var v, double ops_per_s)
{
	double r = in_unit(v, ops_per_s);

	if (v == V_NONE || isnan(r))
		snprintf(buf, size, "-");
	else if (v == V_SPIN || v == V_MEMHOG)
		snprintf(buf, size, "%.0f %s", r, var_unit[v]);
	else if (r >= 1e6)
		snprintf(buf, size, "%.2fM %s", r / 1e6, var_unit[v]);
	else if (r >= 1e4)
		snprintf(buf, size, "%.1fk %s", r / 1e3, var_unit[v]);
	else
		snprintf(buf, size, "%.0f %s", r, var_unit[v]);
}

static void print_table(FILE *f)
{
	size_t i;

	fprintf(f, "%-13s %-6s %9s %-13s %-18s %6s %6s  %s\n", "disturber",
		"flavor", "ns/lookup", "[min-max]", "kept [min-max]", "p50",
		"p99", "disturber rate");
	for (i = 0; i < ncases; i++) {
		const struct icase *ic = &ics[i];
		const struct bench_case *c = &cases[i];
		struct bench_summary s;
		char mm[32], kept[32], rate[40];

		if (c->skip || !c->nreps) {
			fprintf(f, "%-13s %-6s not run: ", var_names[ic->var],
				fl_short[ic->f - fls]);
			bench_print_wrapped(f, 29,
					    c->skip ? c->skip : "no reps");
			continue;
		}
		bench_summarize(c->rep_ns, c->nreps, &s);
		snprintf(mm, sizeof(mm), "[%.0f-%.0f]", s.min, s.max);
		if (ic->var == V_NONE)
			snprintf(kept, sizeof(kept), "1 (baseline)");
		else if (isnan(ic->ks.median))
			snprintf(kept, sizeof(kept), "-");
		else
			snprintf(kept, sizeof(kept), "%.2f [%.2f-%.2f]",
				 ic->ks.median, ic->ks.min, ic->ks.max);
		fmt_rate(rate, sizeof(rate), ic->var, ic->ds.median);
		fprintf(f, "%-13s %-6s %9.1f %-13s %-18s %6llu %6llu  %s%s\n",
			var_names[ic->var], fl_short[ic->f - fls], s.median, mm,
			kept,
			(unsigned long long)bench_hist_quantile(c->hist, 0.5),
			(unsigned long long)bench_hist_quantile(c->hist, 0.99),
			rate, ic->misses ? "  MISSES!" : "");
	}
}

/*
 * Differences of kept between two cases of one flavor, per rep: what one
 * more ingredient of the writer's activity costs the reader, as a share
 * of its baseline rate. @a NULL: 1 - kept of @b.
 */
struct step_def {
	int a, b; /* var indices; a < 0: the baseline (kept 1) */
	const char *what;
};

static const struct step_def steps[] = {
	{ -1, V_SPIN, "(a) a busy CPU: 1 - spin" },
	{ V_SPIN, V_MEMHOG, "(a) cache/bus pollution: spin - memhog" },
	{ V_MEMHOG, V_COMMIT_OTHER,
	  "(b,d,e) writer, other root: memhog - commit-other" },
	{ V_COMMIT_OTHER, V_COMMIT_SAME,
	  "(c) new top nodes: commit-other - commit-same" },
	{ -1, V_PIN, "(e) a base pin only: 1 - pin-unpin" },
	{ V_PIN, V_BEGIN_ABORT,
	  "(e) root line (next_seq): pin-unpin - begin-abort" },
	{ V_BEGIN_ABORT, V_COPY_ABORT,
	  "(b) copy + alloc/free: begin-abort - copy-abort" },
	{ V_COPY_ABORT, V_COMMIT_SAME,
	  "(c,d,e) publishing: copy-abort - commit-same" },
	{ -1, V_SYNC, "(d) grace periods only: 1 - sync" },
	{ -1, V_COMMIT_SAME, "total, commits of 1: 1 - commit-same" },
	{ -1, V_TXN100_SAME, "total, txns of 100: 1 - txn100-same" },
};

/* One cell of the decomposition; the last one without padding. */
static void cell_out(FILE *f, const char *cell, int fi)
{
	fprintf(f, fi == NFL - 1 || !fls[NFL - 1].want ? " %s" : " %-23s",
		cell);
}

static void print_steps(FILE *f)
{
	size_t s;
	int fi;

	fprintf(f,
		"\nLoss of the reader's rate, decomposed (share of its "
		"baseline rate; median of per-rep\ndifferences of %s, "
		"[min-max]; positive = the second case slows the reader "
		"more):\n",
		on_cpu ? "kept on-CPU" : "kept (wall clock)");
	fprintf(f, "%-50s", "");
	for (fi = 0; fi < NFL; fi++)
		if (fls[fi].want)
			cell_out(f, fl_short[fi], fi);
	fputc('\n', f);
	for (s = 0; s < sizeof(steps) / sizeof(steps[0]); s++) {
		fprintf(f, "%-50s", steps[s].what);
		for (fi = 0; fi < NFL; fi++) {
			const struct icase *a, *b;
			double ka[BENCH_MAX_REPS], kb[BENCH_MAX_REPS];
			double d[BENCH_MAX_REPS];
			unsigned na = 0, nb, k;
			struct bench_summary sm;
			char cell[40];

			if (!fls[fi].want)
				continue;
			a = steps[s].a < 0 ? NULL :
					     find_case(&fls[fi], steps[s].a);
			b = find_case(&fls[fi], steps[s].b);
			nb = b ? kept_basis(b, kb) : 0;
			if (a)
				na = kept_basis(a, ka);
			if (!nb || (steps[s].a >= 0 && !na)) {
				cell_out(f, "-", fi);
				continue;
			}
			if (a && na < nb)
				nb = na;
			for (k = 0; k < nb; k++)
				d[k] = (a ? ka[k] : 1.0) - kb[k];
			bench_summarize(d, nb, &sm);
			snprintf(cell, sizeof(cell), "%+.2f [%+.2f,%+.2f]",
				 sm.median, sm.min, sm.max);
			cell_out(f, cell, fi);
		}
		fputc('\n', f);
	}
}

/* @v rounded to an integer ("-0" as "0"), or "-" if unknown. */
static void fmt_num(char *buf, size_t size, double v)
{
	if (isnan(v) || isinf(v))
		snprintf(buf, size, "-");
	else
		snprintf(buf, size, "%.0f", fabs(v) < 0.5 ? 0.0 : v);
}

/* The reader's on-CPU share of each rep and kept from on-CPU time. */
static void print_on_cpu(FILE *f)
{
	int fi, v;
	bool last;

	if (!on_cpu) {
		fprintf(f, "\n(no /proc/PID/schedstat: no on-CPU figures; "
			   "the tables below use the wall-clock kept)\n");
		return;
	}
	fprintf(f, "\nReader on CPU (/proc/PID/schedstat): share of the "
		   "rep's wall time it ran, and\nkept on-CPU = baseline / "
		   "case on-CPU ns per lookup, per rep (time the scheduler "
		   "gave\nto other processes left out; interrupts on its CPU "
		   "stay in), median [min-max]:\n");
	fprintf(f, "%-13s", "");
	for (fi = 0; fi < NFL; fi++)
		if (fls[fi].want)
			fprintf(f, "  %-5s on-CPU kept on-CPU%s", fl_short[fi],
				fi == NFL - 1 || !fls[NFL - 1].want ?
					"" :
					"       ");
	fputc('\n', f);
	for (v = 0; v < NVAR; v++) {
		if (!want_var[v])
			continue;
		fprintf(f, "%-13s", var_names[v]);
		for (fi = 0; fi < NFL; fi++) {
			const struct icase *ic = find_case(&fls[fi], v);
			char cell[40];

			if (!fls[fi].want)
				continue;
			if (!ic || !ran(ic)) {
				fprintf(f, "  %12s %-18s", "-", "-");
				continue;
			}
			last = fi == NFL - 1 || !fls[NFL - 1].want;
			if (v == V_NONE)
				snprintf(cell, sizeof(cell), "1 (baseline)");
			else
				snprintf(cell, sizeof(cell), "%.2f [%.2f-%.2f]",
					 ic->kcs.median, ic->kcs.min,
					 ic->kcs.max);
			fprintf(f, last ? "  %11.0f%% %s" : "  %11.0f%% %-18s",
				100 * ic->shs.median, cell);
		}
		fputc('\n', f);
	}
}

/*
 * Per disturber operation: the reader's time lost, (1 - kept) seconds per
 * second spread over the disturber's operations of that second, and the
 * grace periods the disturber started (global epoch advances per second).
 */
static void print_per_op(FILE *f)
{
	int fi, v;

	fprintf(f,
		"\nPer disturber operation: reader ns lost per op = (1 - kept%s) "
		"x 1e9 / disturber ops/s;\nbeyond spin: the same with kept of "
		"spin in place of 1 (what a busy CPU alone costs,\nremoved); "
		"epochs/s = global epoch advances per second of disturber time "
		"(retire-batch\nseals and shg_synchronize calls: the grace "
		"periods it starts); medians of the reps:\n",
		on_cpu ? " on-CPU" : "");
	fprintf(f, "%-13s", "");
	for (fi = 0; fi < NFL; fi++)
		if (fls[fi].want)
			fprintf(f, "  %-5s ns lost/op beyond spin epochs/s",
				fl_short[fi]);
	fputc('\n', f);
	for (v = V_COMMIT_SAME; v < NVAR; v++) {
		if (!want_var[v])
			continue;
		fprintf(f, "%-13s", var_names[v]);
		for (fi = 0; fi < NFL; fi++) {
			const struct icase *ic = find_case(&fls[fi], v);
			char a[32], b[32], e[32];

			if (!fls[fi].want)
				continue;
			if (!ic || !ran(ic)) {
				fprintf(f, "  %15s %11s %8s", "-", "-", "-");
				continue;
			}
			fmt_num(a, sizeof(a), ic->ls.median);
			fmt_num(b, sizeof(b), ic->lss.median);
			fmt_num(e, sizeof(e), ic->es.median);
			fprintf(f, "  %15s %11s %8s", a, b, e);
		}
		fputc('\n', f);
	}
}

static void loadavg(char *buf, size_t size)
{
	FILE *f = fopen("/proc/loadavg", "re");
	double a = 0, b = 0, c = 0;

	if (!f || fscanf(f, "%lf %lf %lf", &a, &b, &c) != 3)
		snprintf(buf, size, "unknown");
	else
		snprintf(buf, size, "%.2f %.2f %.2f", a, b, c);
	if (f)
		fclose(f);
}

static int run(FILE *jf, FILE *tf)
{
	struct bench_opts o = { 0 };
	char load0[64], load1[64], line[768];
	bool want_fl[NFL];
	uint64_t n = K.keys[0];
	size_t i;
	int fi, v, err;

	loadavg(load0, sizeof(load0));
	parse_systems(want_fl);
	for (fi = 0; fi < NFL; fi++) {
		memset(&fls[fi], 0, sizeof(fls[fi]));
		fls[fi].want = want_fl[fi];
		if (fls[fi].want)
			flavor_setup(fi, n);
	}
	ncases = 0;
	for (fi = 0; fi < NFL; fi++)
		for (v = 0; v < NVAR && fls[fi].want; v++)
			if (want_var[v])
				add_case(&fls[fi], (enum var)v);
	o.reps = K.reps;
	o.target_ns = (uint64_t)K.time_ms * 1000000ull;
	o.verbose = K.verbose;
	err = bench_run(cases, ncases, &o);
	for (fi = 0; fi < NFL; fi++)
		flavor_stop(&fls[fi]);
	if (err)
		return err;
	loadavg(load1, sizeof(load1));
	on_cpu = true;
	for (i = 0; i < ncases; i++)
		if (ran(&ics[i]) && !ics[i].sched_ok)
			on_cpu = false;
	for (i = 0; i < ncases; i++)
		finish(&ics[i], load0, load1);
	bench_json_write(jf, cases, ncases);

	snprintf(line, sizeof(line),
		 "bench_interfere, N = %llu keys: one reader process looks up "
		 "random keys (read section + current version + "
		 "shg_map_get_u64, verified) while one disturber process runs "
		 "on %s; %u interleaved reps of %u ms each after %u ms of "
		 "disturber warm-up; kept = case rate / baseline rate in the "
		 "same rep (median [min-max] of the reps); p50/p99 from every "
		 "64th lookup",
		 (unsigned long long)n,
		 K.pin ? "the other CPU" : "any CPU (not pinned)", K.reps,
		 K.time_ms, warmup_ms);
	bench_print_wrapped(tf, 0, line);
	fprintf(tf, "load average before: %s, after: %s; %s\n", load0, load1,
		T.desc);
	print_table(tf);
	print_on_cpu(tf);
	print_steps(tf);
	print_per_op(tf);
	fprintf(tf, "\nDisturbers:\n");
	for (v = 1; v < NVAR; v++) {
		if (!want_var[v])
			continue;
		fprintf(tf, "  %-13s ", var_names[v]);
		bench_print_wrapped(tf, 16, var_what[v]);
	}
	for (fi = 0; fi < NFL; fi++) {
		if (!fls[fi].want)
			continue;
		fprintf(tf, "  %-13s ", fl_short[fi]);
		if (fls[fi].ok)
			snprintf(line, sizeof(line), "%s", fls[fi].p.variant);
		else
			snprintf(line, sizeof(line), "not run: %s",
				 fls[fi].skip);
		bench_print_wrapped(tf, 16, line);
	}
	for (i = 0; i < ncases; i++)
		if (ics[i].misses)
			fprintf(tf,
				"bench_interfere: %s / %s: %llu lookups "
				"missing or wrong\n",
				var_names[ics[i].var], fl_short[ics[i].f - fls],
				(unsigned long long)ics[i].misses);
	bench_cases_free(cases, ncases);
	for (i = 0; i < ncases; i++)
		if (ics[i].misses)
			return -EIO;
	return 0;
}

static const char usage_text[] =
	"bench_interfere: one reader process's lookups beside one disturber\n"
	"process: none, spin, memhog, commit-same, commit-other, pin-unpin,\n"
	"begin-abort, copy-abort,\n"
	"sync, txn100-same; segment flavors shmgraph (AUTO) and\n"
	"shmgraph-fence (FENCE). --systems takes flavor and disturber names\n"
	"(none given of a kind: all of it; none always runs).\n"
	"Defaults: --keys 1M (quick 10k), --duration-ms 200 (quick 20),\n"
	"--reps 7 (quick 3); disturber warm-up 20 ms (quick 2).\n";

int main(int argc, char **argv)
{
	FILE *jf = stdout, *tf = stderr;
	int err;

	if (bench_knobs_parse(&K, "bench_interfere",
			      BK_KEYS | BK_SYSTEMS | BK_NUMA, usage_text, argc,
			      argv))
		return 2;
	if (bench_topo_init(&T, K.cpus_arg)) {
		fprintf(stderr, "bench_interfere: bad --cpus %s\n", K.cpus_arg);
		return 2;
	}
	if (!K.nkeys) {
		K.keys[0] = K.quick ? 10000 : 1000000;
		K.nkeys = 1;
	} else if (K.nkeys > 1) {
		fprintf(stderr, "bench_interfere: one key count only; "
				"using the first\n");
		K.nkeys = 1;
	}
	if (!K.reps)
		K.reps = K.quick ? 3 : 7;
	if (!K.time_ms)
		K.time_ms = K.quick ? 20 : 200;
	warmup_ms = K.quick ? 2 : 20;
	bench_knobs_json(&K, config_json, sizeof(config_json));
	bench_set_config(config_json);
	bench_machine_set_topology(T.desc);
	if (K.json && strcmp(K.json, "-") != 0) {
		jf = fopen(K.json, "ae");
		if (!jf) {
			fprintf(stderr, "bench_interfere: %s: %s\n", K.json,
				strerror(errno));
			return 1;
		}
		tf = stdout;
	}
	err = run(jf, tf);
	if (jf != stdout)
		fclose(jf);
	if (err)
		fprintf(stderr, "bench_interfere: %s\n", strerror(-err));
	return err ? 1 : 0;
}
