/* SPDX-License-Identifier: MIT */
/*
 * bench_inspect - what shg_check and shg_recover cost a writer.
 *
 * One writer process commits single updates (shg_update, one map put) to
 * a map of N blocks, as fast as it can, recording each commit's latency.
 * Phase "alone": nothing else runs. Phase "check+recover": this process
 * runs shg_check then shg_recover in a loop on the same segment. Reports
 * per phase the writer's commits/s, commit latency p50/p99/max, and the
 * commits refused with SHG_EBUDGET (the retire budget filled because a
 * reader held back the grace periods), plus the check and recover times.
 *
 *   bench_inspect [--quick] [--json FILE] [--secs S] [--budget BYTES]
 *
 * N is 5M blocks (4.7M keys, each with an 8-byte bytes value), 500k with
 * --quick; S defaults to 6 (3 with --quick) and is at least one full
 * check + recover; the retire budget defaults to 8 MiB. Other --knobs
 * (scripts/bench.sh passes its knobs to every program) are reported and
 * ignored.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <shmgraph.h>

#include "benchutil.h"
#include "../common/shgutil.h"

#define FILL_TXN 20000u

struct phase {
	struct bench_hist hist; /* commit latencies */
	uint64_t commits, ebudget, errors, max_ns;
	uint64_t ns; /* phase wall time */
	uint64_t checks, recovers; /* done by the checker */
	uint64_t check_ns, recover_ns, check_max_ns, recover_max_ns;
	uint64_t problems; /* summed over checks (transient on live) */
};

struct shared {
	_Atomic int phase; /* 0 alone, 1 check+recover, 2 stop */
	_Atomic int ready;
	struct phase ph[2];
};

static uint64_t nkeys;

static int put_bytes(struct shg_txn *txn, uint64_t k, uint64_t x)
{
	struct shg_val v = { .kind = SHG_KIND_BYTES };

	v.bytes.p = &x;
	v.bytes.len = sizeof(x);
	return shg_txn_map_put_u64(txn, SHG_REF_ROOT, k, &v);
}

struct fill {
	uint64_t from, to;
};

static int fill_fn(struct shg_txn *txn, void *p)
{
	struct fill *f = p;
	uint64_t k;
	int err = 0;

	if (f->from == 0)
		err = shg_txn_map_new(txn, SHG_REF_ROOT, SHG_KIND_U64,
				      SHG_KIND_BYTES);
	for (k = f->from; !err && k < f->to; k++)
		err = put_bytes(txn, k, k);
	return err;
}

static int put_one(struct shg_txn *txn, void *p)
{
	uint64_t *rng = p;

	*rng = *rng * 6364136223846793005ull + 1442695040888963407ull;
	return put_bytes(txn, (*rng >> 17) % nkeys, *rng);
}

static int writer(const char *name, struct shared *sh)
{
	struct shg_root *root;
	struct shg_seg *seg;
	struct phase *p;
	uint64_t rng = 42, t, ns;
	int err, ph;

	if (shg_seg_open(name, NULL, &seg) || shg_root_open(seg, "big", &root))
		return 1;
	atomic_store(&sh->ready, 1);
	while ((ph = atomic_load(&sh->phase)) < 2) {
		p = &sh->ph[ph];
		t = bench_now_ns();
		err = shg_update(root, put_one, &rng, 0);
		ns = bench_now_ns() - t;
		if (!err) {
			p->commits++;
			bench_hist_record(&p->hist, ns);
			if (ns > p->max_ns)
				p->max_ns = ns;
		} else if (err == SHG_EBUDGET) {
			p->ebudget++;
		} else {
			p->errors++;
		}
	}
	shg_root_close(root);
	shg_seg_close(seg);
	return 0;
}

static void checker(struct shg_seg *seg, struct phase *p, uint64_t secs)
{
	uint64_t end = bench_now_ns() + secs * 1000000000ull, t, ns;
	struct shg_check_report rep;
	struct shg_recover_report rr;
	int n;

	do {
		t = bench_now_ns();
		n = shg_check(seg, NULL, NULL, &rep);
		ns = bench_now_ns() - t;
		p->checks++;
		p->check_ns += ns;
		if (ns > p->check_max_ns)
			p->check_max_ns = ns;
		if (n > 0)
			p->problems += (uint64_t)n;
		t = bench_now_ns();
		if (shg_recover(seg, &rr) == 0)
			p->recovers++;
		ns = bench_now_ns() - t;
		p->recover_ns += ns;
		if (ns > p->recover_max_ns)
			p->recover_max_ns = ns;
	} while (bench_now_ns() < end);
}

static void json_phase(FILE *f, const char *variant, const struct phase *p,
		       uint64_t nodes, uint64_t budget, bool quick)
{
	const struct bench_machine *m = bench_machine();

	fprintf(f,
		"{\"bench\":\"inspect\",\"system\":\"shmgraph\",\"variant\":");
	shg__json_str(f, variant);
	fprintf(f,
		",\"workload\":\"single-update commits, one writer process\","
		"\"nodes\":%llu,\"retire_budget\":%llu,\"quick\":%s,"
		"\"seconds\":%.3f,\"commits\":%llu,\"commits_per_s\":%.0f,"
		"\"p50_ns\":%llu,\"p99_ns\":%llu,\"max_ns\":%llu,"
		"\"ebudget\":%llu,\"errors\":%llu,\"checks\":%llu,"
		"\"recovers\":%llu,\"check_mean_ns\":%.0f,"
		"\"check_max_ns\":%llu,\"recover_mean_ns\":%.0f,"
		"\"recover_max_ns\":%llu,\"check_problems\":%llu,"
		"\"machine\":{\"cpu\":",
		(unsigned long long)nodes, (unsigned long long)budget,
		quick ? "true" : "false", (double)p->ns / 1e9,
		(unsigned long long)p->commits,
		p->ns ? (double)p->commits * 1e9 / (double)p->ns : 0.0,
		(unsigned long long)bench_hist_quantile(&p->hist, 0.5),
		(unsigned long long)bench_hist_quantile(&p->hist, 0.99),
		(unsigned long long)p->max_ns, (unsigned long long)p->ebudget,
		(unsigned long long)p->errors, (unsigned long long)p->checks,
		(unsigned long long)p->recovers,
		p->checks ? (double)p->check_ns / (double)p->checks : 0.0,
		(unsigned long long)p->check_max_ns,
		p->recovers ? (double)p->recover_ns / (double)p->recovers : 0.0,
		(unsigned long long)p->recover_max_ns,
		(unsigned long long)p->problems);
	shg__json_str(f, m->cpu);
	fprintf(f, ",\"cores\":%d,\"kernel\":", m->cores);
	shg__json_str(f, m->kernel);
	fprintf(f, ",\"commit\":");
	shg__json_str(f, m->commit);
	fprintf(f, "}}\n");
}

int main(int argc, char **argv)
{
	static const char *names[2] = { "alone", "check+recover" };
	struct shg_opts o = { .size = sizeof(o) };
	uint64_t budget = 8u << 20, nodes = 0, secs = 0, t0;
	const char *json = NULL;
	struct shg_version_info vi;
	struct shg_root *root;
	struct shg_seg *seg;
	struct shared *sh;
	struct fill f;
	bool quick = false;
	char name[64];
	FILE *jf;
	pid_t pid;
	int i, st, err;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--quick"))
			quick = true;
		else if (!strcmp(argv[i], "--json") && i + 1 < argc)
			json = argv[++i];
		else if (!strcmp(argv[i], "--secs") && i + 1 < argc)
			secs = strtoull(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--budget") && i + 1 < argc)
			budget = strtoull(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h") ||
			 strncmp(argv[i], "--", 2)) {
			fprintf(stderr,
				"usage: %s [--quick] [--json FILE] [--secs S] "
				"[--budget BYTES]\n",
				argv[0]);
			return strncmp(argv[i], "--", 2) ? 2 : 0;
		} else {
			/* scripts/bench.sh passes every knob to every
			 * program: report and ignore the others. */
			fprintf(stderr, "bench_inspect: ignoring %s\n",
				argv[i]);
			if (i + 1 < argc && strncmp(argv[i + 1], "--", 2))
				i++;
		}
	}
	nkeys = quick ? 470000 : 4700000;
	if (!secs)
		secs = quick ? 3 : 6;
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		return 1;
	memset(sh, 0, sizeof(*sh));
	bench_hist_reset(&sh->ph[0].hist);
	bench_hist_reset(&sh->ph[1].hist);
	snprintf(name, sizeof(name), "/shg-bench-inspect-%d", (int)getpid());
	o.capacity = quick ? 1ull << 30 : 4ull << 30;
	o.retire_budget = budget;
	err = shg_seg_create(name, &o, &seg);
	if (!err)
		err = shg_root_create(seg, "big", &root);
	for (f.from = 0; !err && f.from < nkeys; f.from += FILL_TXN) {
		f.to = f.from + FILL_TXN < nkeys ? f.from + FILL_TXN : nkeys;
		do {
			/* Big txns: let each one's garbage go before the
			 * next (the budget is small). */
			err = shg_update(root, fill_fn, &f, 0);
			if (shg_synchronize(seg, 0) < 0)
				usleep(1000);
			(void)shg_reclaim(seg);
		} while (err == SHG_EBUDGET);
	}
	if (!err) {
		err = shg_read_lock(seg);
		if (!err) {
			err = shg_version_info(seg, shg_version_current(root),
					       &vi);
			nodes = vi.nodes;
			shg_read_unlock(seg);
		}
	}
	if (err) {
		fprintf(stderr, "bench_inspect: setup: %s\n",
			shg_strerror(err));
		if (shg_seg_unlink(name))
			fprintf(stderr, "bench_inspect: unlink failed\n");
		return 1;
	}
	fprintf(stderr, "bench_inspect: %llu keys, %llu blocks, budget %llu\n",
		(unsigned long long)nkeys, (unsigned long long)nodes,
		(unsigned long long)budget);
	fflush(NULL);
	pid = fork();
	if (pid == 0)
		_exit(writer(name, sh));
	while (!atomic_load(&sh->ready))
		usleep(1000);
	t0 = bench_now_ns();
	usleep((useconds_t)(secs * 1000000));
	sh->ph[0].ns = bench_now_ns() - t0;
	atomic_store(&sh->phase, 1);
	t0 = bench_now_ns();
	checker(seg, &sh->ph[1], secs);
	sh->ph[1].ns = bench_now_ns() - t0;
	atomic_store(&sh->phase, 2);
	waitpid(pid, &st, 0);
	printf("Writer commit latency, %llu-block map, retire budget %llu "
	       "bytes, %s\n",
	       (unsigned long long)nodes, (unsigned long long)budget,
	       quick ? "--quick" : "full");
	printf("| phase | commits/s | p50 us | p99 us | max ms | EBUDGET | "
	       "checks (mean/max s) | recovers (mean/max s) |\n");
	printf("|---|---|---|---|---|---|---|---|\n");
	for (i = 0; i < 2; i++) {
		struct phase *p = &sh->ph[i];

		printf("| %s | %.0f | %.1f | %.1f | %.1f | %llu | ", names[i],
		       p->ns ? (double)p->commits * 1e9 / (double)p->ns : 0.0,
		       (double)bench_hist_quantile(&p->hist, 0.5) / 1e3,
		       (double)bench_hist_quantile(&p->hist, 0.99) / 1e3,
		       (double)p->max_ns / 1e6, (unsigned long long)p->ebudget);
		if (p->checks)
			printf("%llu (%.2f/%.2f) | %llu (%.2f/%.2f) |\n",
			       (unsigned long long)p->checks,
			       (double)p->check_ns / (double)p->checks / 1e9,
			       (double)p->check_max_ns / 1e9,
			       (unsigned long long)p->recovers,
			       (double)p->recover_ns /
				       (double)(p->recovers ? p->recovers : 1) /
				       1e9,
			       (double)p->recover_max_ns / 1e9);
		else
			printf("- | - |\n");
	}
	if (sh->ph[0].errors || sh->ph[1].errors)
		printf("writer errors: %llu / %llu\n",
		       (unsigned long long)sh->ph[0].errors,
		       (unsigned long long)sh->ph[1].errors);
	jf = json ? fopen(json, "a") : NULL;
	for (i = 0; i < 2; i++) {
		json_phase(stdout, names[i], &sh->ph[i], nodes, budget, quick);
		if (jf)
			json_phase(jf, names[i], &sh->ph[i], nodes, budget,
				   quick);
	}
	if (jf)
		fclose(jf);
	shg_root_close(root);
	shg_seg_close(seg);
	if (shg_seg_unlink(name))
		fprintf(stderr, "bench_inspect: unlink failed\n");
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : 1;
}
