/* SPDX-License-Identifier: MIT */
/*
 * Allocator tests: size classes, small and large blocks, bad offsets,
 * remote frees between threads and processes, spans going back to their
 * arena, abandoned spans and adoption, capacity exhaustion, coalescing,
 * simulated NUMA nodes, the walk and the checker, and crashes: processes
 * killed with SIGKILL at random points and while holding allocator locks.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "testutil.h"

#define SPAN ((uint64_t)SHG_SPAN_SIZE)

/* Checks inside forked children: report and exit nonzero. */
#define CK(x)                                                      \
	do {                                                       \
		if (!(x)) {                                        \
			fprintf(stderr, "child %d: line %d: %s\n", \
				(int)getpid(), __LINE__, #x);      \
			return 1;                                  \
		}                                                  \
	} while (0)

static void prob_cb(void *arg, int code, const char *msg)
{
	(void)arg;
	fprintf(stderr, "  problem %d: %s\n", code, msg);
}

static int alloc_problems(struct shg_seg *seg)
{
	struct shg_check_report rep;

	memset(&rep, 0, sizeof(rep));
	return shg__alloc_check(seg, prob_cb, NULL, &rep);
}

static uint32_t span_of(struct shg_seg *seg, struct shg_off o)
{
	return (uint32_t)((o.v - seg->heap_off) >> SHG_SPAN_SHIFT);
}

static uint64_t span_word(struct shg_seg *seg, uint32_t idx)
{
	return atomic_load(&seg->spans[idx].word);
}

static struct shg_stats get_stats(struct shg_seg *seg)
{
	struct shg_stats st;

	tu_ok(shg_stats_get(seg, &st));
	return st;
}

static uint64_t rnd_next(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

/* Block pattern: header (offset ^ K, size), bytes from the offset up to
 * 4 KiB, and the last 64 bytes of blocks over 8 KiB. */
#define PAT_K 0x5eed5eed5eed5eedull

static void pat_fill(struct shg_seg *seg, struct shg_off o, uint64_t size)
{
	uint8_t *p = shg_ptr(seg, o, size);
	uint64_t hdr[2] = { o.v ^ PAT_K, size }, i, n;

	memcpy(p, hdr, sizeof(hdr));
	n = size < 4096 ? size : 4096;
	for (i = 16; i < n; i++)
		p[i] = (uint8_t)(o.v >> 4) + (uint8_t)i;
	if (size > 8192)
		memset(p + size - 64, (uint8_t)(o.v >> 16), 64);
}

static bool pat_ok(struct shg_seg *seg, struct shg_off o, uint64_t *sizep)
{
	uint8_t *p = shg_ptr(seg, o, 16);
	uint64_t hdr[2], i, n, size;

	if (!p)
		return false;
	memcpy(hdr, p, sizeof(hdr));
	size = hdr[1];
	if (hdr[0] != (o.v ^ PAT_K) || size < 16 ||
	    size > shg_block_size(seg, o) || !shg_ptr(seg, o, size))
		return false;
	n = size < 4096 ? size : 4096;
	for (i = 16; i < n; i++)
		if (p[i] != (uint8_t)((uint8_t)(o.v >> 4) + (uint8_t)i))
			return false;
	if (size > 8192)
		for (i = size - 64; i < size; i++)
			if (p[i] != (uint8_t)(o.v >> 16))
				return false;
	if (sizep)
		*sizep = size;
	return true;
}

/* ---- size classes -------------------------------------------------------- */

static void test_alloc_size_classes(void **state)
{
	unsigned c, prev = 0;
	size_t s;

	(void)state;
	assert_int_equal(shg__class_size(0), 16);
	assert_int_equal(shg__class_size(7), 128);
	assert_int_equal(shg__class_size(8), 160);
	assert_int_equal(shg__class_size(11), 256);
	assert_int_equal(shg__class_size(12), 320);
	assert_int_equal(shg__class_size(SHG_NUM_CLASSES - 1), SHG_SMALL_MAX);
	assert_int_equal(shg__class_size(SHG_NUM_CLASSES), 0);
	for (c = 1; c < SHG_NUM_CLASSES; c++) {
		assert_true(shg__class_size(c) > shg__class_size(c - 1));
		assert_int_equal(shg__class_size(c) % 16, 0);
		assert_int_equal(shg__size_class(shg__class_size(c)), c);
	}
	for (s = 1; s <= SHG_SMALL_MAX; s++) {
		c = shg__size_class(s);
		assert_true(c < SHG_NUM_CLASSES);
		assert_true(shg__class_size(c) >= s);
		assert_true(c == 0 || shg__class_size(c - 1) < s);
		assert_true(c >= prev);
		/* at most 25% internal waste above 128 bytes */
		if (s > 128)
			assert_true(shg__class_size(c) * 4 <= s * 5 + 64);
		prev = c;
	}
	assert_int_equal(shg__size_class(SHG_SMALL_MAX + 1), SHG_NUM_CLASSES);
	assert_int_equal(shg__size_class((size_t)1 << 40), SHG_NUM_CLASSES);
}

/* Block starts are recognised by exact division of the span offset (a
 * multiply by a reciprocal): check every 16-byte offset of full spans. */
static void test_alloc_block_index(void **state)
{
	static const unsigned cls[] = { 0, 2, 4, 6, 8, 13, 20, 28, 32, 34, 35 };
	struct shg_off *o = calloc(SHG_SPAN_SIZE / 16, sizeof(*o));
	char name[64];
	struct shg_seg *seg = tu_create(name, 0);
	uint32_t size, cap, k, first;
	uint64_t base, d;
	size_t c;

	(void)state;
	assert_non_null(o);
	for (c = 0; c < sizeof(cls) / sizeof(cls[0]); c++) {
		size = shg__class_size(cls[c]);
		cap = SHG_SPAN_SIZE / size;
		for (k = 0; k < cap; k++) {
			tu_ok(shg_alloc(seg, size, &o[k]));
			assert_int_equal(span_of(seg, o[k]),
					 span_of(seg, o[0]));
		}
		first = span_of(seg, o[0]);
		base = seg->heap_off + (uint64_t)first * SPAN;
		for (d = 0; d < SPAN; d += 16) {
			size_t want = d % size == 0 && d / size < cap ? size :
									0;

			assert_int_equal(
				shg_block_size(seg,
					       (struct shg_off){ base + d }),
				want);
		}
		for (k = 0; k < cap; k++)
			tu_ok(shg_free(seg, o[k]));
	}
	assert_int_equal(alloc_problems(seg), 0);
	free(o);
	tu_destroy(seg, name);
}

/* ---- basic allocation ------------------------------------------------------ */

static void test_alloc_round_trip(void **state)
{
	struct shg_off o[100], again[100];
	char name[64];
	struct shg_seg *seg = tu_create(name, 0);
	int i, j, found;

	(void)state;
	for (i = 0; i < 100; i++) {
		tu_ok(shg_alloc(seg, 64, &o[i]));
		assert_int_equal(shg_block_size(seg, o[i]), 64);
		pat_fill(seg, o[i], 64);
		for (j = 0; j < i; j++)
			assert_true(o[i].v != o[j].v);
	}
	for (i = 0; i < 100; i++) {
		assert_true(pat_ok(seg, o[i], NULL));
		tu_ok(shg_free(seg, o[i]));
	}
	/* LIFO reuse: the same blocks come back */
	for (i = 0; i < 100; i++)
		tu_ok(shg_alloc(seg, 60, &again[i]));
	for (i = 0; i < 100; i++) {
		for (found = 0, j = 0; j < 100; j++)
			found += again[i].v == o[j].v;
		assert_int_equal(found, 1);
	}
	for (i = 0; i < 100; i++)
		tu_ok(shg_free(seg, again[i]));
	assert_int_equal(alloc_problems(seg), 0);
	assert_int_equal(shg_alloc(seg, 0, &o[0]), -EINVAL);
	assert_int_equal(shg_alloc(seg, 16, NULL), -EINVAL);
	tu_destroy(seg, name);
}

static void test_alloc_boundary_sizes(void **state)
{
	static const size_t sizes[] = { 1,     16,    17,	128,   129,
					16384, 16385, 1u << 20, 65536, 65537 };
	struct shg_off o[sizeof(sizes) / sizeof(sizes[0])];
	char name[64];
	struct shg_seg *seg = tu_create(name, 0);
	size_t i, bs;

	(void)state;
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		tu_ok(shg_alloc(seg, sizes[i], &o[i]));
		assert_int_equal(o[i].v % 16, 0);
		bs = shg_block_size(seg, o[i]);
		assert_true(bs >= sizes[i]);
		if (sizes[i] <= SHG_SMALL_MAX)
			assert_int_equal(
				bs, shg__class_size(shg__size_class(sizes[i])));
		else
			assert_int_equal(bs % SPAN, 0);
		assert_non_null(shg_ptr(seg, o[i], bs));
		memset(shg_ptr(seg, o[i], bs), (int)i, bs);
	}
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		uint8_t *p = shg_ptr(seg, o[i], sizes[i]);

		assert_int_equal(p[0], (uint8_t)i);
		assert_int_equal(p[sizes[i] - 1], (uint8_t)i);
		tu_ok(shg_free(seg, o[i]));
	}
	assert_int_equal(alloc_problems(seg), 0);
	tu_destroy(seg, name);
}

static void test_alloc_bad_offsets(void **state)
{
	struct shg_off a, b, big, tmp;
	char name[64];
	struct shg_seg *seg = tu_create(name, 0);
	uint64_t top;

	(void)state;
	tu_ok(shg_alloc(seg, 64, &a));
	tu_ok(shg_alloc(seg, 64, &b));
	tu_ok(shg_alloc(seg, 200000, &big));
	top = atomic_load(&seg->hdr->heap_top);

	assert_int_equal(shg_free(seg, SHG_OFF_NULL), SHG_EBADOFF);
	assert_int_equal(shg_free(seg, (struct shg_off){ 64 }), SHG_EBADOFF);
	assert_int_equal(shg_free(seg, (struct shg_off){ a.v + 16 }),
			 SHG_EBADOFF);
	assert_int_equal(shg_free(seg, (struct shg_off){ a.v + 1 }),
			 SHG_EBADOFF);
	/* above the span's bump index: never handed out */
	assert_int_equal(shg_free(seg, (struct shg_off){ b.v + 64 * 10 }),
			 SHG_EBADOFF);
	/* inside a large block */
	assert_int_equal(shg_free(seg, (struct shg_off){ big.v + 4096 }),
			 SHG_EBADOFF);
	assert_int_equal(shg_free(seg, (struct shg_off){ big.v + SPAN }),
			 SHG_EBADOFF);
	/* beyond the heap, and far beyond the mapping */
	assert_int_equal(shg_free(seg, (struct shg_off){ seg->heap_off + top }),
			 SHG_EBADOFF);
	assert_int_equal(shg_free(seg, (struct shg_off){ UINT64_MAX - 15 }),
			 SHG_EBADOFF);
	assert_int_equal(shg_block_size(seg, (struct shg_off){ a.v + 16 }), 0);
	assert_int_equal(shg_block_size(seg, (struct shg_off){ big.v + SPAN }),
			 0);
	assert_int_equal(shg_block_size(seg, SHG_OFF_NULL), 0);

	/* large: double free and free-span offsets are detected */
	tu_ok(shg_free(seg, big));
	assert_int_equal(shg_free(seg, big), SHG_EBADOFF);
	assert_int_equal(shg_block_size(seg, big), 0);
	/* small: the owner's double free is detected once the span has no
	 * allocated block (in general it is not, see shg_free) */
	tu_ok(shg_free(seg, a));
	tu_ok(shg_free(seg, b));
	assert_int_equal(shg_free(seg, b), SHG_EBADOFF);
	assert_int_equal(alloc_problems(seg), 0);
	tu_ok(shg_alloc(seg, 64, &tmp));
	tu_ok(shg_free(seg, tmp));
	tu_destroy(seg, name);
}

/* ---- threads: remote frees, span return, abandon and adopt ------------- */

struct tfree {
	struct shg_seg *seg;
	struct shg_off *offs;
	int n;
	int err;
};

static void *free_thread(void *p)
{
	struct tfree *t = p;
	int i;

	for (i = 0; i < t->n; i++)
		t->err |= shg_free(t->seg, t->offs[i]);
	t->err |= shg_thread_unregister(t->seg);
	return NULL;
}

static void run_free_thread(struct shg_seg *seg, struct shg_off *offs, int n)
{
	struct tfree t = { .seg = seg, .offs = offs, .n = n };
	pthread_t th;

	assert_int_equal(pthread_create(&th, NULL, free_thread, &t), 0);
	pthread_join(th, NULL);
	assert_int_equal(t.err, 0);
}

static void test_alloc_remote_free(void **state)
{
	struct shg_off o[4], again[4];
	char name[64];
	struct shg_seg *seg = tu_create(name, 0);
	struct shg_stats st;
	int i, j, found;

	(void)state;
	/* 16384-byte class: 4 blocks fill one span */
	for (i = 0; i < 4; i++) {
		tu_ok(shg_alloc(seg, 16384, &o[i]));
		assert_int_equal(span_of(seg, o[i]), span_of(seg, o[0]));
	}
	run_free_thread(seg, o, 4);
	/* still counted until the owner collects them */
	st = get_stats(seg);
	assert_int_equal(st.cls[SHG_NUM_CLASSES - 1].used_blocks, 4);
	assert_int_equal(alloc_problems(seg), 0);
	for (i = 0; i < 4; i++)
		tu_ok(shg_alloc(seg, 16000, &again[i]));
	for (i = 0; i < 4; i++) {
		for (found = 0, j = 0; j < 4; j++)
			found += again[i].v == o[j].v;
		assert_int_equal(found, 1);
	}
	st = get_stats(seg);
	assert_int_equal(st.cls[SHG_NUM_CLASSES - 1].spans, 1);
	for (i = 0; i < 4; i++)
		tu_ok(shg_free(seg, again[i]));
	assert_int_equal(alloc_problems(seg), 0);

	/* a double free by another thread (not detectable at free time) is
	 * cut off when the owner collects: the block comes back once */
	for (i = 0; i < 4; i++)
		tu_ok(shg_alloc(seg, 16384, &o[i]));
	again[0] = o[0];
	again[1] = o[0];
	run_free_thread(seg, again, 2);
	tu_ok(shg_alloc(seg, 16384, &again[2]));
	tu_ok(shg_alloc(seg, 16384, &again[3]));
	assert_int_equal(again[2].v, o[0].v);
	assert_true(again[3].v != o[0].v);
	assert_int_equal(alloc_problems(seg), 0);
	tu_destroy(seg, name);
}

/*
 * Allocate @n blocks of 64 bytes and count how often each of @x, and any
 * offset at all, comes back more than once.
 */
static int handed_out_twice(struct shg_seg *seg, int n, struct shg_off x,
			    int *x_count)
{
	struct shg_off *got = calloc((size_t)n, sizeof(*got));
	int i, j, dups = 0;

	assert_non_null(got);
	*x_count = 0;
	for (i = 0; i < n; i++) {
		tu_ok(shg_alloc(seg, 64, &got[i]));
		*x_count += got[i].v == x.v;
	}
	for (i = 0; i < n; i++)
		for (j = i + 1; j < n; j++)
			dups += got[i].v == got[j].v;
	for (i = 0; i < n; i++) {
		for (j = 0; j < i && got[j].v != got[i].v; j++)
			;
		if (j == i)
			tu_ok(shg_free(seg, got[i]));
	}
	free(got);
	return dups;
}

/*
 * Defect: a block freed by its span's owner and then again by another
 * thread (or the other way round) is on both free lists; collecting the
 * remote stack checked repeats only within it, and the block was handed
 * out again and again. Now each free block is on the lists once.
 */
static void test_alloc_double_free_local_and_remote(void **state)
{
	struct shg_off x, y, keep[8];
	char name[64];
	struct shg_seg *seg = tu_create(name, 0);
	int order, i, xc;

	(void)state;
	for (order = 0; order < 2; order++) {
		for (i = 0; i < 8; i++)
			tu_ok(shg_alloc(seg, 64, &keep[i]));
		tu_ok(shg_alloc(seg, 64, &x));
		tu_ok(shg_alloc(seg, 64, &y));
		tu_ok(shg_free(seg, y)); /* a local list behind x */
		if (order == 0) {
			tu_ok(shg_free(seg, x));
			run_free_thread(seg, &x, 1);
		} else {
			run_free_thread(seg, &x, 1);
			tu_ok(shg_free(seg, x));
		}
		assert_int_equal(handed_out_twice(seg, 3000, x, &xc), 0);
		assert_int_equal(xc, 1);
		assert_int_equal(alloc_problems(seg), 0);
		for (i = 0; i < 8; i++)
			tu_ok(shg_free(seg, keep[i]));
	}
	tu_destroy(seg, name);
}

static void test_alloc_span_return(void **state)
{
	enum { PER = 64, SPANS = 6, N = PER * SPANS };
	struct shg_off o[N], x;
	char name[64];
	struct shg_seg *seg = tu_create(name, 0);
	struct shg_stats st;
	int i;

	(void)state;
	/* local frees: every span but the current one goes back at once */
	for (i = 0; i < N; i++)
		tu_ok(shg_alloc(seg, 1024, &o[i]));
	st = get_stats(seg);
	assert_int_equal(st.cls[19].spans, SPANS);
	assert_int_equal(st.cls[19].used_blocks, N);
	for (i = 0; i < N; i++)
		tu_ok(shg_free(seg, o[i]));
	st = get_stats(seg);
	assert_int_equal(st.cls[19].spans, 1);
	assert_int_equal(st.free_span_bytes, st.heap_bytes - SPAN);

	/* remote frees: the owner hands back spans emptied by others when
	 * it next takes its slow path */
	for (i = 0; i < N; i++)
		tu_ok(shg_alloc(seg, 1024, &o[i]));
	run_free_thread(seg, o, N);
	st = get_stats(seg);
	assert_int_equal(st.cls[19].spans, SPANS);
	tu_ok(shg_alloc(seg, 1024, &x));
	st = get_stats(seg);
	assert_int_equal(st.cls[19].spans, 1);
	assert_int_equal(st.cls[19].used_blocks, 1);
	assert_int_equal(st.free_span_bytes, st.heap_bytes - SPAN);
	tu_ok(shg_free(seg, x));
	/* thread exit returns the last (empty) span */
	tu_ok(shg_thread_unregister(seg));
	st = get_stats(seg);
	assert_int_equal(st.free_span_bytes, st.heap_bytes);
	assert_int_equal(alloc_problems(seg), 0);
	tu_destroy(seg, name);
}

struct tadopt {
	struct shg_seg *seg;
	struct shg_off o[10];
	int err;
};

static void *adopt_thread(void *p)
{
	struct tadopt *t = p;
	int i;

	for (i = 0; i < 10; i++)
		t->err |= shg_alloc(t->seg, 256, &t->o[i]);
	for (i = 0; i < 5; i++)
		t->err |= shg_free(t->seg, t->o[i]);
	/* exit without unregistering: the TLS destructor gives up spans */
	return NULL;
}

static void test_alloc_abandon_adopt(void **state)
{
	struct tadopt t = { 0 };
	struct shg__tctx *ctx;
	char name[64];
	struct shg_seg *seg = tu_create(name, 0);
	struct shg_off x;
	pthread_t th;
	uint32_t idx;
	int i;

	(void)state;
	t.seg = seg;
	assert_int_equal(pthread_create(&th, NULL, adopt_thread, &t), 0);
	pthread_join(th, NULL);
	assert_int_equal(t.err, 0);
	idx = span_of(seg, t.o[9]);
	assert_int_equal(SHG_SPAN_STATE(span_word(seg, idx)), SHG_SPAN_SMALL);
	assert_int_equal(atomic_load(&seg->spans[idx].owner), 0);
	assert_int_equal(seg->arenas[0].abandoned[11], idx + 1);
	assert_int_equal(alloc_problems(seg), 0);

	/* a remote free into the abandoned span, then adoption */
	tu_ok(shg_free(seg, t.o[9]));
	tu_ok(shg__tctx_get(seg, &ctx));
	tu_ok(shg_alloc(seg, 250, &x));
	assert_int_equal(span_of(seg, x), idx);
	assert_int_equal(atomic_load(&seg->spans[idx].owner), ctx->idx + 1);
	assert_int_equal(seg->arenas[0].abandoned[11], 0);
	for (i = 5; i < 9; i++)
		tu_ok(shg_free(seg, t.o[i]));
	tu_ok(shg_free(seg, x));
	assert_int_equal(atomic_load(&seg->spans[idx].used), 0);
	assert_int_equal(alloc_problems(seg), 0);
	tu_destroy(seg, name);
}

/* A child process: allocate one 256-byte block; report its span (+1) or
 * 0 through the pipe; exit with whether the alloc worked. */
struct other_proc {
	const char *name;
	int fd;
};

static int other_alloc(void *p)
{
	struct other_proc *op = p;
	struct shg_seg *seg;
	struct shg_off x;
	uint32_t idx = 0;

	if (shg_seg_open(op->name, NULL, &seg) || shg_alloc(seg, 256, &x))
		return 1;
	idx = span_of(seg, x) + 1;
	if (write(op->fd, &idx, sizeof(idx)) != sizeof(idx))
		return 2;
	/* leave without freeing or closing: a dead process's block */
	return 0;
}

/*
 * A span abandoned by a thread that exited while its process lives on is
 * not adopted by another process (the two processes' blocks would mix,
 * and the leak sweep could not tell them apart if the adopter died); a
 * thread of the same process adopts it; once that process is gone, any
 * process may.
 */
static void test_alloc_no_adoption_across_live_processes(void **state)
{
	struct tadopt t = { 0 };
	struct other_proc op;
	char name[64];
	struct shg_seg *seg = tu_create(name, 0);
	struct shg__tctx *ctx;
	struct shg_off x;
	pthread_t th;
	uint32_t idx, got;
	int fds[2];

	(void)state;
	t.seg = seg;
	assert_int_equal(pthread_create(&th, NULL, adopt_thread, &t), 0);
	pthread_join(th, NULL);
	assert_int_equal(t.err, 0);
	idx = span_of(seg, t.o[9]);
	assert_int_equal(seg->arenas[0].abandoned[11], idx + 1);
	/* another process (we are alive) does not take it */
	assert_int_equal(pipe(fds), 0);
	op = (struct other_proc){ name, fds[1] };
	assert_int_equal(tu_wait(tu_fork(other_alloc, &op)), 0);
	assert_int_equal(read(fds[0], &got, sizeof(got)), sizeof(got));
	assert_int_not_equal(got, idx + 1);
	assert_int_equal(seg->arenas[0].abandoned[11], idx + 1);
	assert_true(shg__ld64_relaxed(&seg->spans[got - 1].owner_token) !=
		    SHG_TOKEN_MIXED);
	/* a thread of ours does */
	tu_ok(shg__tctx_get(seg, &ctx));
	tu_ok(shg_alloc(seg, 250, &x));
	assert_int_equal(span_of(seg, x), idx);
	assert_int_equal(shg__ld64_relaxed(&seg->spans[idx].owner_token),
			 seg->token);
	tu_ok(shg_free(seg, x));
	close(fds[0]);
	close(fds[1]);
	assert_int_equal(alloc_problems(seg), 0);
	tu_destroy(seg, name);
}

/* ---- capacity, coalescing, walk ------------------------------------------ */

static void test_alloc_capacity(void **state)
{
	enum { MAXB = 4096 };
	struct shg_off *o = calloc(MAXB, sizeof(*o));
	char name[64];
	struct shg_seg *seg = tu_create(name, 8u << 20);
	int n = 0, nlarge, i, err = 0;
	struct shg_stats st;

	(void)state;
	assert_non_null(o);
	while (n < MAXB && (err = shg_alloc(seg, 256 * 1024, &o[n])) == 0)
		n++;
	assert_int_equal(err, SHG_ECAPACITY);
	nlarge = n;
	assert_true(nlarge > 10);
	while (n < MAXB && (err = shg_alloc(seg, 3000, &o[n])) == 0)
		n++;
	assert_int_equal(err, SHG_ECAPACITY);
	assert_int_equal(shg_alloc(seg, 1u << 30, &o[MAXB - 1]), SHG_ECAPACITY);
	assert_int_equal(shg_alloc(seg, SIZE_MAX, &o[MAXB - 1]), SHG_ECAPACITY);
	st = get_stats(seg);
	assert_true(st.heap_bytes > st.capacity / 2);
	assert_true(st.free_span_bytes < SPAN * 4);
	assert_int_equal(alloc_problems(seg), 0);
	for (i = 0; i < n; i++)
		tu_ok(shg_free(seg, o[i]));
	assert_int_equal(alloc_problems(seg), 0);
	for (i = 0; i < nlarge; i++)
		tu_ok(shg_alloc(seg, 256 * 1024, &o[i]));
	for (i = 0; i < nlarge; i++)
		tu_ok(shg_free(seg, o[i]));
	assert_int_equal(alloc_problems(seg), 0);
	free(o);
	tu_destroy(seg, name);
}

static void test_alloc_large_coalesce(void **state)
{
	struct shg_off a, b, c, d;
	char name[64];
	struct shg_seg *seg = tu_create(name, 0);
	struct shg_stats s0, st;
	uint32_t ia;

	(void)state;
	tu_ok(shg_alloc(seg, 4 * SPAN, &a));
	tu_ok(shg_alloc(seg, 4 * SPAN - 100, &b));
	tu_ok(shg_alloc(seg, 3 * SPAN + 1, &c));
	ia = span_of(seg, a);
	assert_int_equal(span_of(seg, b), ia + 4);
	assert_int_equal(span_of(seg, c), ia + 8);
	assert_int_equal(SHG_SPAN_STATE(span_word(seg, ia + 5)), SHG_SPAN_TAIL);
	s0 = get_stats(seg);
	assert_int_equal(s0.large_used_bytes, 12 * SPAN);

	tu_ok(shg_free(seg, b));
	assert_int_equal(span_word(seg, ia + 4),
			 SHG_SPAN_WORD(SHG_SPAN_FREE, 0, 0, 4));
	tu_ok(shg_free(seg, a)); /* merges with b to the right */
	assert_int_equal(span_word(seg, ia),
			 SHG_SPAN_WORD(SHG_SPAN_FREE, 0, 0, 8));
	assert_int_equal(SHG_SPAN_STATE(span_word(seg, ia + 4)), SHG_SPAN_TAIL);
	tu_ok(shg_free(seg, c)); /* merges left, and with the chunk's rest */
	assert_int_equal(SHG_SPAN_STATE(span_word(seg, ia)), SHG_SPAN_FREE);
	assert_true(SHG_SPAN_COUNT(span_word(seg, ia)) >= 12);
	st = get_stats(seg);
	assert_int_equal(st.free_span_bytes, st.heap_bytes);
	assert_int_equal(alloc_problems(seg), 0);
	/* one extent: a 12-span block fits where the three were, no growth */
	tu_ok(shg_alloc(seg, 12 * SPAN, &d));
	assert_int_equal(d.v, a.v);
	assert_int_equal(get_stats(seg).heap_bytes, st.heap_bytes);
	tu_ok(shg_free(seg, d));
	assert_int_equal(alloc_problems(seg), 0);
	tu_destroy(seg, name);
}

struct walk_acc {
	uint64_t n, bytes;
	struct shg_seg *seg;
	int bad;
};

static void walk_cb(void *arg, uint64_t off, uint64_t size)
{
	struct walk_acc *w = arg;

	w->n++;
	w->bytes += size;
	if (shg_block_size(w->seg, (struct shg_off){ off }) != size)
		w->bad++;
}

static void test_alloc_walk(void **state)
{
	struct shg_off o[300];
	struct walk_acc w = { 0 };
	char name[64];
	struct shg_seg *seg = tu_create(name, 0);
	uint64_t live = 0, bytes = 0;
	int i;

	(void)state;
	w.seg = seg;
	for (i = 0; i < 300; i++)
		tu_ok(shg_alloc(seg, i % 50 == 0 ? 100000 : 16 + i * 7, &o[i]));
	run_free_thread(seg, o, 50); /* remote frees stay on remote stacks */
	for (i = 50; i < 300; i++) {
		if (i % 3 == 0) {
			tu_ok(shg_free(seg, o[i]));
		} else {
			live++;
			bytes += shg_block_size(seg, o[i]);
		}
	}
	tu_ok(shg__alloc_walk(seg, walk_cb, &w));
	assert_int_equal(w.bad, 0);
	assert_int_equal(w.n, live);
	assert_int_equal(w.bytes, bytes);
	assert_int_equal(alloc_problems(seg), 0);
	tu_destroy(seg, name);
}

/* ---- NUMA (simulated) ------------------------------------------------------ */

static int numa_child(void *arg)
{
	struct shg_opts o = { .size = sizeof(o), .capacity = 64u << 20 };
	const char *name = arg;
	struct shg_off s[4], l[4];
	struct shg__tctx *ctx;
	struct shg_seg *seg;
	struct shg_stats st;
	struct shg_check_report rep = { 0 };
	unsigned n;

	setenv("SHG_NUMA_SIM", "4", 1);
	CK(shg_seg_create(name, &o, &seg) == 0);
	CK(seg->nodes == 4);
	CK(shg__tctx_get(seg, &ctx) == 0);
	for (n = 0; n < 4; n++) {
		ctx->node = n;
		CK(shg_alloc(seg, 16 * (n + 1), &s[n]) == 0);
		CK(shg_alloc(seg, 100000, &l[n]) == 0);
		CK(SHG_SPAN_NODE(span_word(seg, span_of(seg, s[n]))) == n);
		CK(SHG_SPAN_NODE(span_word(seg, span_of(seg, l[n]))) == n);
	}
	CK(shg_stats_get(seg, &st) == 0);
	CK(st.nodes == 4);
	for (n = 0; n < 4; n++) {
		CK(st.node[n].used_bytes == 2 * SPAN + 16 * (n + 1));
		CK(st.node[n].span_bytes == 32 * SPAN);
		CK(seg->arenas[n].span_bytes == 32 * SPAN);
	}
	/* freeing from another node's thread returns blocks to their arena */
	ctx->node = 0;
	for (n = 0; n < 4; n++)
		CK(shg_free(seg, l[n]) == 0 && shg_free(seg, s[n]) == 0);
	CK(shg__alloc_check(seg, prob_cb, NULL, &rep) == 0);
	CK(shg_stats_get(seg, &st) == 0);
	for (n = 0; n < 4; n++)
		CK(st.node[n].used_bytes == 0);
	shg_seg_close(seg);
	CK(shg_seg_unlink(name) == 0);
	return 0;
}

static void test_alloc_numa_sim(void **state)
{
	char name[64];

	(void)state;
	tu_shm_name(name, sizeof(name), "numa");
	assert_int_equal(tu_wait(tu_fork(numa_child, name)), 0);
}

static int bind_child(void *arg)
{
	struct shg_opts o = { .size = sizeof(o), .capacity = 64u << 20 };
	const char *name = arg;
	struct shg__tctx *ctx;
	struct shg_seg *seg;
	struct shg_off a, b;
	struct shg_check_report rep = { 0 };

	setenv("SHG_NUMA_SIM", "4", 1);
	o.numa_policy = SHG_NUMA_BIND;
	o.numa_node = 2;
	CK(shg_seg_create(name, &o, &seg) == 0);
	CK(shg__tctx_get(seg, &ctx) == 0);
	ctx->node = 1;
	CK(shg_alloc(seg, 40, &a) == 0);
	CK(shg_alloc(seg, 1u << 20, &b) == 0);
	CK(SHG_SPAN_NODE(span_word(seg, span_of(seg, a))) == 2);
	CK(SHG_SPAN_NODE(span_word(seg, span_of(seg, b))) == 2);
	CK(seg->arenas[1].span_bytes == 0);
	CK(shg_free(seg, a) == 0 && shg_free(seg, b) == 0);
	CK(shg__alloc_check(seg, prob_cb, NULL, &rep) == 0);
	shg_seg_close(seg);
	CK(shg_seg_unlink(name) == 0);
	return 0;
}

static void test_alloc_numa_bind(void **state)
{
	char name[64];

	(void)state;
	tu_shm_name(name, sizeof(name), "bind");
	assert_int_equal(tu_wait(tu_fork(bind_child, name)), 0);
}

/* ---- poison and checker ---------------------------------------------------- */

static int poison_child(void *arg)
{
	const char *name = arg;
	struct shg_off a, b, keep;
	struct shg_seg *seg;
	uint8_t *p;
	size_t i;

	setenv("SHG_DEBUG_POISON", "1", 1);
	CK(shg_seg_open(name, NULL, &seg) == 0);
	CK(shg_alloc(seg, 64, &keep) == 0);
	CK(shg_alloc(seg, 64, &a) == 0);
	CK(shg_alloc(seg, 300000, &b) == 0);
	memset(shg_ptr(seg, a, 64), 0x11, 64);
	memset(shg_ptr(seg, b, 300000), 0x22, 300000);
	CK(shg_free(seg, a) == 0);
	CK(shg_free(seg, b) == 0);
	p = shg_ptr(seg, a, 64);
	for (i = 8; i < 64; i++)
		CK(p[i] == 0xDB);
	p = shg_ptr(seg, b, SPAN);
	for (i = 0; i < SPAN; i++)
		CK(p[i] == 0xDB);
	CK(shg_free(seg, keep) == 0);
	shg_seg_close(seg);
	return 0;
}

static void test_alloc_poison(void **state)
{
	char name[64];
	struct shg_seg *seg = tu_create(name, 0);

	(void)state;
	/* a child reads SHG_DEBUG_POISON afresh (read once per process) */
	assert_int_equal(tu_wait(tu_fork(poison_child, name)), 0);
	tu_destroy(seg, name);
}

static void test_alloc_check_detects(void **state)
{
	struct shg_off a, b, c, big;
	char name[64];
	struct shg_seg *seg = tu_create(name, 0);
	uint32_t saved, ib;
	uint64_t w;

	(void)state;
	tu_ok(shg_alloc(seg, 64, &a));
	tu_ok(shg_alloc(seg, 64, &b));
	tu_ok(shg_alloc(seg, 64, &c));
	tu_ok(shg_alloc(seg, 5 * SPAN, &big));
	tu_ok(shg_free(seg, a));
	tu_ok(shg_free(seg, b)); /* local list: b -> a */
	assert_int_equal(alloc_problems(seg), 0);

	/* a cycle in a free list */
	*(uint64_t *)shg_ptr(seg, a, 8) = b.v;
	assert_true(alloc_problems(seg) > 0);
	*(uint64_t *)shg_ptr(seg, a, 8) = 0;
	assert_int_equal(alloc_problems(seg), 0);

	/* a bin pointing nowhere: found, then repaired by a rebuild */
	saved = seg->arenas[0].bins[3];
	seg->arenas[0].bins[3] = seg->nspans + 5;
	assert_true(alloc_problems(seg) > 0);
	shg__arena_repair(seg);
	assert_int_equal(alloc_problems(seg), 0);
	(void)saved;

	/* a large block's tail overwritten with a head word */
	ib = span_of(seg, big);
	w = span_word(seg, ib + 2);
	atomic_store(&seg->spans[ib + 2].word,
		     SHG_SPAN_WORD(SHG_SPAN_SMALL, 0, 3, 1));
	assert_true(alloc_problems(seg) > 0);
	assert_int_equal(shg_free(seg, (struct shg_off){ big.v + 2 * SPAN }),
			 SHG_EBADOFF); /* bump 0: nothing handed out */
	atomic_store(&seg->spans[ib + 2].word, w);
	assert_int_equal(alloc_problems(seg), 0);

	/* free extents dropped from their bins are found by a repair */
	tu_ok(shg_free(seg, big));
	memset(seg->arenas[0].bins, 0, sizeof(seg->arenas[0].bins));
	assert_true(alloc_problems(seg) > 0);
	shg__arena_repair(seg);
	assert_int_equal(alloc_problems(seg), 0);
	/* allocation repairs a corrupt bin it runs into on its own */
	seg->arenas[0].bins[1] = 0xffffff;
	tu_ok(shg_alloc(seg, 2 * SPAN, &big));
	assert_int_equal(alloc_problems(seg), 0);
	tu_ok(shg_free(seg, big));
	tu_ok(shg_free(seg, c));
	assert_int_equal(alloc_problems(seg), 0);
	tu_destroy(seg, name);
}

/* ---- processes: stress, kill -9, dead lock holders ------------------------ */

#define NX 256 /* exchange slots */

struct proc_arg {
	const char *name;
	uint64_t xoff; /* exchange area: NX offsets */
	long rounds; /* < 0: until killed */
	uint64_t seed;
};

static uint64_t pick_size(uint64_t *r)
{
	uint64_t v = rnd_next(r) % 100;

	if (v < 80)
		return 16 + rnd_next(r) % 2048;
	if (v < 96)
		return 2048 + rnd_next(r) % (SHG_SMALL_MAX - 2048);
	return SHG_SMALL_MAX + 1 + rnd_next(r) % 300000;
}

/* Random allocs and frees, some blocks handed to others through the
 * exchange area (they free them: remote frees). Returns 0 or 1. */
static int worker(struct shg_seg *seg, _Atomic uint64_t *xs, long rounds,
		  uint64_t r)
{
	enum { MAXH = 512 };
	struct shg_off held[MAXH];
	time_t deadline = time(NULL) + 20; /* if never killed (test failed) */
	int nheld = 0, i, err;
	long round;

	for (round = 0; rounds < 0 || round < rounds; round++) {
		uint64_t op = rnd_next(&r) % 100, sz, v;
		struct shg_off o;

		if (rounds < 0 && !(round & 1023) && time(NULL) > deadline)
			return 1;

		if (op < 45 && nheld < MAXH) {
			sz = pick_size(&r);
			err = shg_alloc(seg, sz, &o);
			if (err == SHG_ECAPACITY)
				continue;
			CK(err == 0);
			pat_fill(seg, o, sz);
			held[nheld++] = o;
		} else if (op < 80 && nheld) {
			i = (int)(rnd_next(&r) % (uint64_t)nheld);
			CK(pat_ok(seg, held[i], NULL));
			CK(shg_free(seg, held[i]) == 0);
			held[i] = held[--nheld];
		} else if (op < 90 && nheld) {
			uint64_t zero = 0;

			i = (int)(rnd_next(&r) % (uint64_t)nheld);
			if (atomic_compare_exchange_strong(
				    &xs[rnd_next(&r) % NX], &zero, held[i].v))
				held[i] = held[--nheld];
		} else {
			v = atomic_exchange(&xs[rnd_next(&r) % NX], 0);
			if (!v)
				continue;
			CK(pat_ok(seg, (struct shg_off){ v }, NULL));
			CK(shg_free(seg, (struct shg_off){ v }) == 0);
		}
	}
	for (i = 0; i < nheld; i++) {
		CK(pat_ok(seg, held[i], NULL));
		CK(shg_free(seg, held[i]) == 0);
	}
	return 0;
}

/* One process of the stress and kill tests. */
static int proc_child(void *p)
{
	struct proc_arg *a = p;
	struct shg_seg *seg;
	_Atomic uint64_t *xs;
	int rc;

	CK(shg_seg_open(a->name, NULL, &seg) == 0);
	xs = shg_ptr(seg, (struct shg_off){ a->xoff }, NX * 8);
	CK(xs != NULL);
	rc = worker(seg, xs, a->rounds,
		    a->seed ^ (uint64_t)getpid() * 0x9e3779b97f4a7c15ull);
	shg_seg_close(seg);
	return rc;
}

/* Free every block left in the exchange area (checking patterns). */
static void drain_exchange(struct shg_seg *seg, uint64_t xoff)
{
	_Atomic uint64_t *xs = shg_ptr(seg, (struct shg_off){ xoff }, NX * 8);
	uint64_t v;
	int i;

	for (i = 0; i < NX; i++) {
		v = atomic_exchange(&xs[i], 0);
		if (!v)
			continue;
		assert_true(pat_ok(seg, (struct shg_off){ v }, NULL));
		tu_ok(shg_free(seg, (struct shg_off){ v }));
	}
}

static void count_cb(void *arg, uint64_t off, uint64_t size)
{
	uint64_t *n = arg;

	(void)off;
	(void)size;
	(*n)++;
}

static uint64_t count_blocks(struct shg_seg *seg)
{
	uint64_t n = 0;

	tu_ok(shg__alloc_walk(seg, count_cb, &n));
	return n;
}

struct collect {
	struct shg_off *v;
	size_t n, cap;
};

static void collect_cb(void *arg, uint64_t off, uint64_t size)
{
	struct collect *c = arg;

	(void)size;
	if (c->n < c->cap)
		c->v[c->n++] = (struct shg_off){ off };
}

/* Free every allocated block but @keep; then the whole heap is free once
 * abandoned spans are trimmed and this thread's spans are given up. */
static void free_all_but(struct shg_seg *seg, uint64_t keep)
{
	struct collect c = { .cap = 1u << 16 };
	struct shg_stats st;
	size_t i;

	c.v = calloc(c.cap, sizeof(*c.v));
	assert_non_null(c.v);
	tu_ok(shg__alloc_walk(seg, collect_cb, &c));
	assert_true(c.n < c.cap);
	for (i = 0; i < c.n; i++)
		if (c.v[i].v != keep)
			tu_ok(shg_free(seg, c.v[i]));
	free(c.v);
	if (keep)
		tu_ok(shg_free(seg, (struct shg_off){ keep }));
	shg__arena_repair(seg);
	tu_ok(shg_thread_unregister(seg));
	assert_int_equal(alloc_problems(seg), 0);
	st = get_stats(seg);
	assert_int_equal(st.free_span_bytes, st.heap_bytes);
	assert_int_equal(count_blocks(seg), 0);
}

/* Free every allocated block that is neither the exchange area nor in it
 * (what dead children leaked); returns the number freed. Quiescent. */
static uint64_t sweep_leaks(struct shg_seg *seg, uint64_t xoff)
{
	_Atomic uint64_t *xs = shg_ptr(seg, (struct shg_off){ xoff }, NX * 8);
	struct collect c = { .cap = 1u << 16 };
	uint64_t n = 0;
	size_t i;
	int j;

	c.v = calloc(c.cap, sizeof(*c.v));
	assert_non_null(c.v);
	tu_ok(shg__alloc_walk(seg, collect_cb, &c));
	assert_true(c.n < c.cap);
	for (i = 0; i < c.n; i++) {
		bool live = c.v[i].v == xoff;

		for (j = 0; j < NX && !live; j++)
			live = atomic_load(&xs[j]) == c.v[i].v;
		if (live)
			continue;
		tu_ok(shg_free(seg, c.v[i]));
		n++;
	}
	free(c.v);
	return n;
}

static void test_alloc_multiprocess_stress(void **state)
{
	enum { NPROC = 4 };
	struct proc_arg a = { .rounds = 20000, .seed = 42 };
	char name[64];
	struct shg_seg *seg = tu_create(name, 256u << 20);
	struct shg_check_report rep = { 0 };
	struct shg_off x;
	pid_t pids[NPROC];
	int i;

	(void)state;
	tu_ok(shg_alloc(seg, NX * 8, &x));
	memset(shg_ptr(seg, x, NX * 8), 0, NX * 8);
	a.name = name;
	a.xoff = x.v;
	for (i = 0; i < NPROC; i++) {
		a.seed = 42 + (uint64_t)i;
		pids[i] = tu_fork(proc_child, &a);
	}
	for (i = 0; i < NPROC; i++)
		assert_int_equal(tu_wait(pids[i]), 0);
	/* children freed what they held; the exchange holds the rest */
	drain_exchange(seg, x.v);
	assert_int_equal(count_blocks(seg), 1);
	assert_int_equal(shg__alloc_check(seg, prob_cb, NULL, &rep), 0);
	assert_int_equal(rep.used_bytes % 16, 0);
	assert_true(rep.free_bytes + rep.used_bytes <=
		    atomic_load(&seg->hdr->heap_top));
	free_all_but(seg, x.v);
	tu_destroy(seg, name);
}

struct thread_arg {
	struct shg_seg *seg;
	_Atomic uint64_t *xs;
	uint64_t seed;
	int rc;
};

static void *stress_thread(void *p)
{
	struct thread_arg *t = p;
	int i;

	/* several short-lived threads in a row: exits abandon spans while
	 * the other threads keep freeing into them */
	for (i = 0; i < 4 && !t->rc; i++) {
		t->rc = worker(t->seg, t->xs, 3000, t->seed + (uint64_t)i);
		t->rc |= shg_thread_unregister(t->seg);
	}
	return NULL;
}

static void test_alloc_thread_stress(void **state)
{
	enum { NT = 4 };
	struct thread_arg t[NT];
	char name[64];
	struct shg_seg *seg = tu_create(name, 256u << 20);
	pthread_t th[NT];
	struct shg_off x;
	int i;

	(void)state;
	tu_ok(shg_alloc(seg, NX * 8, &x));
	memset(shg_ptr(seg, x, NX * 8), 0, NX * 8);
	for (i = 0; i < NT; i++) {
		t[i] = (struct thread_arg){ .seg = seg,
					    .xs = shg_ptr(seg, x, NX * 8),
					    .seed = 1000 + (uint64_t)i * 77 };
		assert_int_equal(
			pthread_create(&th[i], NULL, stress_thread, &t[i]), 0);
	}
	for (i = 0; i < NT; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(t[i].rc, 0);
	}
	drain_exchange(seg, x.v);
	assert_int_equal(count_blocks(seg), 1);
	assert_int_equal(alloc_problems(seg), 0);
	free_all_but(seg, x.v);
	tu_destroy(seg, name);
}

static void test_alloc_kill9(void **state)
{
	enum { ROUNDS = 150, NPROC = 2 };
	struct proc_arg a = { .rounds = -1 };
	char name[64];
	struct shg_seg *seg = tu_create(name, 256u << 20);
	struct shg_recover_report rr;
	uint64_t r = 7, leaked = 0, spans = 0;
	struct shg_off x, y;
	pid_t pids[NPROC];
	int round, i;

	(void)state;
	tu_ok(shg_alloc(seg, NX * 8, &x));
	memset(shg_ptr(seg, x, NX * 8), 0, NX * 8);
	a.name = name;
	a.xoff = x.v;
	for (round = 0; round < ROUNDS; round++) {
		struct timespec ts = { 0, (long)(1 + rnd_next(&r) % 15) *
						  1000000L };

		for (i = 0; i < NPROC; i++) {
			a.seed = rnd_next(&r);
			pids[i] = tu_fork(proc_child, &a);
		}
		nanosleep(&ts, NULL);
		/* the first dead child is recovered (arenas rebuilt) while the
		 * other still allocates and frees */
		for (i = 0; i < NPROC; i++) {
			kill(pids[i], SIGKILL);
			assert_int_equal(tu_wait(pids[i]), 128 + SIGKILL);
			memset(&rr, 0, sizeof(rr));
			tu_ok(shg__release_dead(seg, &rr));
			spans += rr.spans_adopted;
		}
		assert_int_equal(alloc_problems(seg), 0);
		tu_ok(shg_alloc(seg, 1 + rnd_next(&r) % 100000, &y));
		tu_ok(shg_free(seg, y));
		leaked += sweep_leaks(seg, x.v);
	}
	drain_exchange(seg, x.v);
	assert_int_equal(count_blocks(seg), 1);
	print_message(
		"  kill -9: %d rounds, %llu spans given up, %llu blocks leaked and swept\n",
		ROUNDS, (unsigned long long)spans, (unsigned long long)leaked);
	assert_true(spans > 0);
	free_all_but(seg, x.v);
	tu_destroy(seg, name);
}

struct lock_arg {
	const char *name;
	int what; /* 0: mid-split in arena 0, 1: grow_lock held */
};

/* Take an allocator lock, leave a half-done change, and die. */
static int lock_child(void *p)
{
	struct lock_arg *a = p;
	struct shg_seg *seg;
	struct shg_arena *ar;
	uint32_t k, x, c, r;

	CK(shg_seg_open(a->name, NULL, &seg) == 0);
	if (a->what == 1) {
		CK(shg__lock(seg, &seg->hdr->grow_lock, NULL) == 0);
		raise(SIGKILL);
	}
	ar = &seg->arenas[0];
	CK(shg__lock(seg, &ar->lock, NULL) == 0);
	for (k = 0; k < SHG_SPAN_BINS && !ar->bins[k]; k++)
		;
	CK(k < SHG_SPAN_BINS);
	x = ar->bins[k] - 1;
	c = SHG_SPAN_COUNT(span_word(seg, x));
	CK(c >= 2);
	/* as extent_take() splitting x: unlinked, rest's word written */
	ar->bins[k] = seg->spans[x].next;
	r = x + 1;
	seg->spans[r].head = r;
	seg->spans[x + c - 1].head = r;
	atomic_store(&seg->spans[r].word,
		     SHG_SPAN_WORD(SHG_SPAN_FREE, 0, 0, c - 1));
	raise(SIGKILL);
	return 2;
}

static void test_alloc_lock_owner_dead(void **state)
{
	struct lock_arg la;
	char name[64];
	struct shg_seg *seg = tu_create(name, 0);
	struct shg_off a, b, c;
	struct shg_stats s0;
	uint64_t hole;

	(void)state;
	/* one 32-span chunk: a (3), b (3), c (26); b freed is the only hole */
	tu_ok(shg_alloc(seg, 3 * SPAN, &a));
	tu_ok(shg_alloc(seg, 3 * SPAN, &b));
	tu_ok(shg_alloc(seg, 26 * SPAN, &c));
	hole = b.v;
	tu_ok(shg_free(seg, b));
	s0 = get_stats(seg);
	assert_int_equal(s0.free_span_bytes, 3 * SPAN);
	la.name = name;
	la.what = 0;
	assert_int_equal(tu_wait(tu_fork(lock_child, &la)), 128 + SIGKILL);
	/* the next locker repairs (the hole is unlinked, half split): the
	 * hole is found again, without growing the heap */
	tu_ok(shg_alloc(seg, 3 * SPAN, &b));
	assert_int_equal(b.v, hole);
	assert_int_equal(get_stats(seg).heap_bytes, s0.heap_bytes);
	tu_ok(shg__release_dead(seg, NULL));
	assert_int_equal(alloc_problems(seg), 0);

	la.what = 1;
	assert_int_equal(tu_wait(tu_fork(lock_child, &la)), 128 + SIGKILL);
	/* growth needs grow_lock: recovered from its dead holder */
	tu_ok(shg_alloc(seg, 40 * SPAN, &a));
	assert_true(get_stats(seg).heap_bytes > s0.heap_bytes);
	tu_ok(shg__release_dead(seg, NULL));
	assert_int_equal(alloc_problems(seg), 0);
	tu_ok(shg_free(seg, a));
	tu_ok(shg_free(seg, b));
	tu_ok(shg_free(seg, c));
	free_all_but(seg, 0);
	tu_destroy(seg, name);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_alloc_size_classes),
		cmocka_unit_test(test_alloc_block_index),
		cmocka_unit_test(test_alloc_round_trip),
		cmocka_unit_test(test_alloc_boundary_sizes),
		cmocka_unit_test(test_alloc_bad_offsets),
		cmocka_unit_test(test_alloc_remote_free),
		cmocka_unit_test(test_alloc_double_free_local_and_remote),
		cmocka_unit_test(test_alloc_span_return),
		cmocka_unit_test(test_alloc_abandon_adopt),
		cmocka_unit_test(test_alloc_no_adoption_across_live_processes),
		cmocka_unit_test(test_alloc_capacity),
		cmocka_unit_test(test_alloc_large_coalesce),
		cmocka_unit_test(test_alloc_walk),
		cmocka_unit_test(test_alloc_numa_sim),
		cmocka_unit_test(test_alloc_numa_bind),
		cmocka_unit_test(test_alloc_poison),
		cmocka_unit_test(test_alloc_check_detects),
		cmocka_unit_test(test_alloc_multiprocess_stress),
		cmocka_unit_test(test_alloc_thread_stress),
		cmocka_unit_test(test_alloc_kill9),
		cmocka_unit_test(test_alloc_lock_owner_dead),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
