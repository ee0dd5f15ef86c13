/* SPDX-License-Identifier: MIT */
/*
 * Read-side torture of the epoch layer (see torture_core.h), in the manner
 * of rcutorture: a controller process creates a segment and a control
 * block (its offset in hdr.ext[7], a test-only convention), forks writer
 * and reader processes, optionally kills readers at random, then checks
 * the counts, that everything retired was reclaimed after a final grace
 * period, and that the retire lists are sound.
 *
 * Each writer w publishes lists of list_len blocks through ctl.head[w]
 * (an atomic exchange: release for the blocks' contents), then checks the
 * old list (unlinked, still its own) and retires its blocks. A block
 * holds a magic, the list's generation, its index, the next offset and a
 * payload filled with the generation's low byte. A reader that reaches a
 * block freed too early sees a poison pattern, a newer generation or a
 * wrong index: each is an error.
 */
#include "torture_core.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#define TT_MAGIC 0x5348475454524545ull /* list block */
#define TT_CTL_MAGIC 0x5348475454435442ull /* control block */
#define TT_EXT 7 /* hdr.ext slot holding the control block offset */
#define TT_POISON 0xdbdbdbdbdbdbdbdbull

struct tt_node {
	uint64_t magic; /* TT_MAGIC */
	uint64_t gen; /* generation of the list */
	uint64_t index; /* position in the list */
	uint64_t next; /* offset of the next block, 0 = last */
	uint64_t size; /* bytes requested; payload up to here */
	uint64_t writer; /* writer index */
};

struct tt_rstat {
	_Atomic uint64_t reads, nodes, errors, poisoned;
	_Atomic uint64_t age[TT_AGE_BUCKETS];
	uint64_t pad[4];
};

struct tt_ctl {
	uint64_t magic; /* TT_CTL_MAGIC */
	uint32_t nwriters, list_len;
	_Atomic uint32_t stop;
	uint32_t pad;
	_Atomic uint64_t head[TT_MAX_WRITERS]; /* published lists */
	_Atomic uint64_t gen[TT_MAX_WRITERS]; /* newest generation */
	_Atomic uint64_t writes, writer_errors, budget_fails;
	struct tt_rstat rd[TT_MAX_READERS];
};

struct tt_run_state {
	const struct tt_opts *o;
	char name[64];
	struct shg_seg *seg;
	struct tt_ctl *ctl;
	pid_t writers[TT_MAX_WRITERS];
	pid_t readers[TT_MAX_READERS];
	unsigned seed;
};

static uint64_t tt_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static unsigned tt_rand(unsigned *s)
{
	*s = *s * 1103515245u + 12345u;
	return (*s >> 16) & 0x7fff;
}

static unsigned age_bucket(uint64_t age)
{
	unsigned b = 0;

	if (age < 4)
		return (unsigned)age;
	for (b = 4; b < TT_AGE_BUCKETS - 1 && age >= (8ull << (b - 4)); b++)
		;
	return b;
}

static uint64_t rd64(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

/* Open the segment in a child and find the control block. */
static struct tt_ctl *child_open(const char *name, int flavor,
				 struct shg_seg **seg)
{
	struct shg_opts o = { .size = sizeof(o) };
	struct tt_ctl *ctl;
	uint64_t off;

	o.flavor = flavor;
	if (shg_seg_open(name, &o, seg))
		return NULL;
	off = atomic_load_explicit(&(*seg)->hdr->ext[TT_EXT],
				   memory_order_acquire);
	ctl = shg_ptr(*seg, (struct shg_off){ off }, sizeof(*ctl));
	if (!ctl || ctl->magic != TT_CTL_MAGIC)
		return NULL;
	return ctl;
}

/* ---- reader ------------------------------------------------------------ */

/* Check one block of the list; Return false when it is inconsistent. */
static bool check_node(struct tt_node *n, uint64_t gen, uint64_t idx,
		       struct tt_rstat *st)
{
	uint64_t magic = rd64(&n->magic), size = rd64(&n->size);
	const uint8_t *pay = (const uint8_t *)n;

	if (magic != TT_MAGIC) {
		/* A freed small block keeps a free-list link in its first
		 * word; the poison starts at byte 8. */
		if (magic == TT_POISON || rd64(&n->gen) == TT_POISON)
			atomic_fetch_add(&st->poisoned, 1);
		return false;
	}
	if (rd64(&n->gen) != gen || rd64(&n->index) != idx)
		return false;
	if (size < sizeof(*n) || size > (1u << 20))
		return false;
	if (size > sizeof(*n) &&
	    __atomic_load_n(&pay[size - 1], __ATOMIC_RELAXED) != (uint8_t)gen)
		return false;
	return true;
}

/* Walk writer @w's list inside a read section; count what is seen. */
static void walk_list(struct shg_seg *seg, struct tt_ctl *ctl, unsigned w,
		      struct tt_rstat *st, unsigned *rng)
{
	uint64_t off =
		atomic_load_explicit(&ctl->head[w], memory_order_acquire);
	uint64_t gen = 0, i, latest;
	struct tt_node *n;
	bool bad = false;

	if (!off)
		return;
	for (i = 0; off && i <= ctl->list_len; i++) {
		n = shg_ptr(seg, (struct shg_off){ off }, sizeof(*n));
		if (!n) {
			bad = true;
			break;
		}
		if (i == 0)
			gen = rd64(&n->gen);
		if (!check_node(n, gen, i, st)) {
			bad = true;
			break;
		}
		off = rd64(&n->next);
		if ((tt_rand(rng) & 1023) == 0)
			sched_yield(); /* let writers run mid-walk */
	}
	if (!bad && (i != ctl->list_len || off))
		bad = true;
	atomic_fetch_add_explicit(&st->nodes, i, memory_order_relaxed);
	if (bad) {
		atomic_fetch_add(&st->errors, 1);
		return;
	}
	latest = atomic_load_explicit(&ctl->gen[w], memory_order_acquire);
	atomic_fetch_add_explicit(
		&st->age[age_bucket(latest > gen ? latest - gen : 0)], 1,
		memory_order_relaxed);
}

static int reader_main(const char *name, int flavor, unsigned idx,
		       unsigned seed)
{
	struct shg_seg *seg = NULL;
	struct tt_ctl *ctl = child_open(name, flavor, &seg);
	struct shg_thread *t;
	struct tt_rstat *st;
	unsigned rng = seed, iter;

	if (!ctl || shg_thread_get(seg, &t))
		return 10;
	st = &ctl->rd[idx];
	for (iter = 0; !atomic_load(&ctl->stop); iter++) {
		unsigned w = iter % ctl->nwriters, style = iter & 3;

		if (style == 0 && shg_read_lock(seg))
			return 11;
		if (style != 0)
			shg_thread_read_lock(t);
		if (style == 2)
			shg_thread_read_lock(t); /* nested */
		walk_list(seg, ctl, w, st, &rng);
		if ((iter & 4095) == 4095)
			usleep(2000); /* a long section now and then */
		if (style == 2)
			shg_thread_read_unlock(t);
		if (style == 0)
			shg_read_unlock(seg);
		else
			shg_thread_read_unlock(t);
		atomic_fetch_add_explicit(&st->reads, 1, memory_order_relaxed);
	}
	shg_seg_close(seg);
	return 0;
}

/* ---- writer ------------------------------------------------------------ */

static size_t pick_size(unsigned *rng)
{
	static const size_t sizes[] = { 48, 64, 96, 160, 256, 600, 1500, 4000 };
	unsigned r = tt_rand(rng);

	if ((r & 255) == 0)
		return 20000; /* a large block now and then */
	return sizes[r % (sizeof(sizes) / sizeof(sizes[0]))];
}

/* Allocate and fill a block; on failure try once more after a check. */
static int make_node(struct shg_seg *seg, unsigned w, uint64_t gen,
		     uint64_t idx, uint64_t next, unsigned *rng, uint64_t *out)
{
	size_t size = pick_size(rng);
	struct shg_off off;
	struct tt_node *n;
	int err = shg_alloc(seg, size, &off);

	if (err) {
		err = shg_budget_check(seg, 2000); /* frees what is due */
		err = shg_alloc(seg, size, &off);
		if (err)
			return err;
	}
	n = shg_ptr(seg, off, size);
	if (!n)
		return SHG_ECORRUPT;
	memset((uint8_t *)n + sizeof(*n), (int)(uint8_t)gen, size - sizeof(*n));
	n->magic = TT_MAGIC;
	n->gen = gen;
	n->index = idx;
	n->next = next;
	n->size = size;
	n->writer = w;
	*out = off.v;
	return 0;
}

/* Build a list of @len blocks of generation @gen; 0 and *@head, or error. */
static int build_list(struct shg_seg *seg, unsigned w, uint64_t gen,
		      unsigned len, unsigned *rng, uint64_t *head)
{
	uint64_t next = 0, off;
	unsigned i;
	int err;

	for (i = len; i-- > 0;) {
		err = make_node(seg, w, gen, i, next, rng, &off);
		if (err) {
			while (next) { /* never published: free at once */
				struct tt_node *n =
					shg_ptr(seg, (struct shg_off){ next },
						sizeof(*n));
				uint64_t nx = n ? n->next : 0;

				(void)shg_free(seg, (struct shg_off){ next });
				next = nx;
			}
			return err;
		}
		next = off;
	}
	*head = next;
	return 0;
}

/* Check the unlinked list @off (still ours) and retire its blocks. */
static uint64_t retire_list(struct shg_seg *seg, uint64_t off, unsigned len)
{
	uint64_t gen = 0, errors = 0, i, next;
	struct tt_node *n;

	for (i = 0; off && i <= len; i++) {
		n = shg_ptr(seg, (struct shg_off){ off }, sizeof(*n));
		if (!n)
			return errors + 1;
		if (i == 0)
			gen = n->gen;
		if (n->magic != TT_MAGIC || n->gen != gen || n->index != i)
			errors++;
		/* Read next first: the retire may seal and free the batch. */
		next = n->next;

		if (shg_retire(seg, (struct shg_off){ off }))
			errors++;
		off = next;
	}
	return errors;
}

static int writer_main(const char *name, unsigned w, unsigned seed)
{
	struct shg_seg *seg = NULL;
	struct tt_ctl *ctl = child_open(name, SHG_FLAVOR_FENCE, &seg);
	unsigned rng = seed;
	uint64_t gen = 0, head, old, errs;
	int err;

	if (!ctl)
		return 20;
	while (!atomic_load(&ctl->stop)) {
		gen++;
		if (build_list(seg, w, gen, ctl->list_len, &rng, &head)) {
			atomic_fetch_add(&ctl->writer_errors, 1);
			if (shg_budget_check(seg, 2000) == SHG_EBUDGET)
				atomic_fetch_add(&ctl->budget_fails, 1);
			continue;
		}
		/* Release: the blocks' contents before the new head. */
		old = atomic_exchange_explicit(&ctl->head[w], head,
					       memory_order_acq_rel);
		atomic_store_explicit(&ctl->gen[w], gen, memory_order_release);
		errs = retire_list(seg, old, ctl->list_len);
		if (errs)
			atomic_fetch_add(&ctl->writer_errors, errs);
		atomic_fetch_add_explicit(&ctl->writes, 1,
					  memory_order_relaxed);
		if ((gen & 63) == 0) {
			err = shg_budget_check(seg, 2000);
			if (err == SHG_EBUDGET)
				atomic_fetch_add(&ctl->budget_fails, 1);
		}
		if ((gen & 255) == 0 && shg_synchronize(seg, 5000))
			atomic_fetch_add(&ctl->budget_fails, 1);
	}
	shg_seg_close(seg);
	return 0;
}

/* ---- controller -------------------------------------------------------- */

static pid_t spawn(int (*fn)(const char *, int, unsigned, unsigned),
		   const char *name, int a, unsigned b, unsigned c)
{
	pid_t pid;

	fflush(NULL);
	pid = fork();
	if (pid == 0)
		_exit(fn(name, a, b, c));
	return pid;
}

static int reader_entry(const char *name, int flavor, unsigned idx,
			unsigned seed)
{
	return reader_main(name, flavor, idx, seed);
}

static int writer_entry(const char *name, int unused, unsigned w, unsigned seed)
{
	(void)unused;
	return writer_main(name, w, seed);
}

static int reader_flavor(const struct tt_opts *o, unsigned idx)
{
	if (o->flavor)
		return o->flavor;
	if ((idx & 1) && shg__membarrier_supported())
		return SHG_FLAVOR_MEMBARRIER;
	return SHG_FLAVOR_FENCE;
}

static int child_status(pid_t pid)
{
	int st = 0;

	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	return 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

static int setup(struct tt_run_state *rs)
{
	const struct tt_opts *o = rs->o;
	struct shg_opts so = { .size = sizeof(so) };
	static unsigned counter;
	struct shg_off off;
	int err;

	snprintf(rs->name, sizeof(rs->name), "/shgtt-%d-%u", (int)getpid(),
		 counter++);
	so.capacity = o->capacity;
	so.flavor = SHG_FLAVOR_FENCE;
	err = shg_seg_create(rs->name, &so, &rs->seg);
	if (err)
		return err;
	err = shg_alloc(rs->seg, sizeof(*rs->ctl), &off);
	if (err)
		return err;
	rs->ctl = shg_ptr(rs->seg, off, sizeof(*rs->ctl));
	if (!rs->ctl)
		return SHG_ECORRUPT;
	memset(rs->ctl, 0, sizeof(*rs->ctl));
	rs->ctl->magic = TT_CTL_MAGIC;
	rs->ctl->nwriters = o->writers;
	rs->ctl->list_len = o->list_len;
	atomic_store_explicit(&rs->seg->hdr->ext[TT_EXT], off.v,
			      memory_order_release);
	return 0;
}

/* Run for the configured time, killing and restarting readers if asked. */
static void control_loop(struct tt_run_state *rs, struct tt_result *res)
{
	const struct tt_opts *o = rs->o;
	uint64_t end = tt_now_ms() + o->seconds * 1000ull, r, next_kill;
	struct shg_hdr *hdr = rs->seg->hdr;
	unsigned i;

	next_kill = tt_now_ms() + 20 + tt_rand(&rs->seed) % 100;
	while (tt_now_ms() < end) {
		usleep(5000);
		r = atomic_load(&hdr->retired_bytes);
		if (r > res->max_retired)
			res->max_retired = r;
		if (!o->kill_readers || tt_now_ms() < next_kill)
			continue;
		i = tt_rand(&rs->seed) % o->readers;
		kill(rs->readers[i], SIGKILL);
		(void)child_status(rs->readers[i]);
		res->kills++;
		rs->readers[i] = spawn(reader_entry, rs->name,
				       reader_flavor(o, i), i,
				       tt_rand(&rs->seed) + i);
		next_kill = tt_now_ms() + 20 + tt_rand(&rs->seed) % 100;
	}
}

/* Stop the children and collect everything into @res. */
static void finish(struct tt_run_state *rs, struct tt_result *res)
{
	const struct tt_opts *o = rs->o;
	struct shg_check_report rep = { 0 };
	struct tt_ctl *ctl = rs->ctl;
	unsigned i, b;

	atomic_store(&ctl->stop, 1);
	for (i = 0; i < o->writers; i++)
		if (child_status(rs->writers[i]) != 0)
			res->writer_errors++;
	for (i = 0; i < o->readers; i++)
		if (child_status(rs->readers[i]) != 0)
			res->errors++;
	for (i = 0; i < o->readers; i++) {
		struct tt_rstat *st = &ctl->rd[i];

		res->reads += atomic_load(&st->reads);
		res->nodes += atomic_load(&st->nodes);
		res->errors += atomic_load(&st->errors);
		res->poisoned += atomic_load(&st->poisoned);
		for (b = 0; b < TT_AGE_BUCKETS; b++)
			res->age[b] += atomic_load(&st->age[b]);
	}
	res->writes = atomic_load(&ctl->writes);
	res->writer_errors += atomic_load(&ctl->writer_errors);
	res->budget_fails = atomic_load(&ctl->budget_fails);
	/* Writers closed: their open batches are sealed. One grace period
	 * later everything retired must be reclaimed. */
	if (shg_synchronize(rs->seg, 5000))
		res->writer_errors++;
	(void)shg_reclaim(rs->seg);
	res->final_retired = atomic_load(&rs->seg->hdr->retired_bytes);
	res->reclaimed_blocks = atomic_load(&rs->seg->hdr->reclaimed_blocks);
	if (shg__limbo_check(rs->seg, NULL, NULL, &rep) == 0)
		res->check_problems = rep.problems;
	else
		res->check_problems = 1;
}

static void unlink_seg(const char *name)
{
	if (shg_seg_unlink(name) != 0) {
		/* already gone: nothing to clean */
	}
}

int tt_run(const struct tt_opts *opts, struct tt_result *res)
{
	struct tt_opts o = *opts;
	struct tt_run_state rs;
	unsigned i;
	int err;

	memset(res, 0, sizeof(*res));
	memset(&rs, 0, sizeof(rs));
	if (!o.seconds)
		o.seconds = 3;
	if (!o.readers)
		o.readers = 2;
	if (!o.writers)
		o.writers = 1;
	if (!o.list_len)
		o.list_len = 16;
	if (!o.capacity)
		o.capacity = 256ull << 20;
	if (!o.retired_limit)
		o.retired_limit = o.capacity / 4;
	if (o.readers > TT_MAX_READERS || o.writers > TT_MAX_WRITERS)
		return -EINVAL;
	rs.o = &o;
	rs.seed = (unsigned)getpid() ^ (unsigned)tt_now_ms();
	setenv("SHG_DEBUG_POISON", "1", 0);
	err = setup(&rs);
	if (err) {
		if (rs.seg)
			shg_seg_close(rs.seg);
		unlink_seg(rs.name);
		return err;
	}
	for (i = 0; i < o.writers; i++)
		rs.writers[i] = spawn(writer_entry, rs.name, 0, i, rs.seed + i);
	for (i = 0; i < o.readers; i++)
		rs.readers[i] = spawn(reader_entry, rs.name,
				      reader_flavor(&o, i), i, rs.seed * 7 + i);
	control_loop(&rs, res);
	finish(&rs, res);
	shg_seg_close(rs.seg);
	unlink_seg(rs.name);
	if (res->errors || res->writer_errors || res->check_problems ||
	    res->final_retired || res->max_retired > o.retired_limit ||
	    !res->reads || !res->writes)
		return 1;
	return 0;
}

void tt_print(FILE *f, const char *title, const struct tt_result *r)
{
	static const char *const names[TT_AGE_BUCKETS] = {
		"0", "1", "2", "3", "4-7", "8-15", "16-31", ">=32"
	};
	unsigned b;

	fprintf(f,
		"%s: reads %llu (blocks %llu), writes %llu, errors %llu "
		"(poisoned %llu), writer errors %llu, budget fails %llu, "
		"kills %llu\n",
		title, (unsigned long long)r->reads,
		(unsigned long long)r->nodes, (unsigned long long)r->writes,
		(unsigned long long)r->errors, (unsigned long long)r->poisoned,
		(unsigned long long)r->writer_errors,
		(unsigned long long)r->budget_fails,
		(unsigned long long)r->kills);
	fprintf(f,
		"  retired max %llu B, after final grace %llu B, "
		"reclaimed %llu blocks, limbo problems %u\n",
		(unsigned long long)r->max_retired,
		(unsigned long long)r->final_retired,
		(unsigned long long)r->reclaimed_blocks, r->check_problems);
	fprintf(f, "  age (versions behind the newest):");
	for (b = 0; b < TT_AGE_BUCKETS; b++)
		fprintf(f, " %s:%llu", names[b], (unsigned long long)r->age[b]);
	fprintf(f, "\n");
}
