/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the process-local containers in shm/util.h: the offset
 * set, the offset -> u64 map, growable arrays and the u64 comparison,
 * checked against plain reference arrays; and the out-of-memory rule
 * (-ENOMEM, container unchanged) through an allocator that fails on
 * demand, injected with the header's SHG_UTIL_CALLOC / SHG_UTIL_REALLOC.
 * Then the helpers of common/shgutil.h for tools and bench: number
 * parsing, byte formatting, JSON strings, the mixer, SHG_NUMA_SIM.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

/* ---- failing allocator ---------------------------------------------------- */

static long fail_after = -1; /* allocations left before failing; -1: never */
static unsigned long nfailed;

static bool alloc_fails(void)
{
	if (fail_after < 0)
		return false;
	if (fail_after == 0) {
		nfailed++;
		return true;
	}
	fail_after--;
	return false;
}

static void *failing_calloc(size_t n, size_t size)
{
	return alloc_fails() ? NULL : calloc(n, size);
}

static void *failing_realloc(void *p, size_t size)
{
	return alloc_fails() ? NULL : realloc(p, size);
}

#define SHG_UTIL_CALLOC failing_calloc
#define SHG_UTIL_REALLOC failing_realloc
#include "util.h"

#include "../../common/shgutil.h"

static int reset_alloc(void **state)
{
	(void)state;
	fail_after = -1;
	nfailed = 0;
	return 0;
}

static uint64_t rng_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* ---- comparison ----------------------------------------------------------- */

static void test_util_cmp_u64_orders_full_range(void **state)
{
	uint64_t v[] = { UINT64_MAX, 0, 1ull << 63, 5, (1ull << 63) - 1, 5 };
	uint64_t a = 1, b = UINT64_MAX, key = 1ull << 63;
	size_t i, n = sizeof(v) / sizeof(v[0]);

	(void)state;
	/* A subtraction-based comparison would call these equal or invert
	 * them (the difference does not fit an int). */
	assert_int_equal(shg__cmp_u64(&a, &b), -1);
	assert_int_equal(shg__cmp_u64(&b, &a), 1);
	assert_int_equal(shg__cmp_u64(&a, &a), 0);
	qsort(v, n, sizeof(v[0]), shg__cmp_u64);
	for (i = 1; i < n; i++)
		assert_true(v[i - 1] <= v[i]);
	assert_true(v[0] == 0 && v[n - 1] == UINT64_MAX);
	assert_non_null(bsearch(&key, v, n, sizeof(v[0]), shg__cmp_u64));
	key = 6;
	assert_null(bsearch(&key, v, n, sizeof(v[0]), shg__cmp_u64));
}

/* ---- offset set ----------------------------------------------------------- */

static void test_util_oset_matches_reference(void **state)
{
	struct shg__offset_set s = { 0 };
	enum { N = 50000 };
	static bool in[N];
	uint64_t r = 12345;
	size_t i, n = 0;

	(void)state;
	assert_false(shg__oset_has(&s, 16));
	assert_false(shg__oset_del(&s, 16));
	assert_int_equal(shg__oset_add(&s, 0), -EINVAL);
	assert_int_equal(s.n, 0);
	for (i = 1; i < N; i++) {
		assert_int_equal(shg__oset_add(&s, i * 16), 0);
		in[i] = true;
	}
	assert_int_equal(shg__oset_add(&s, 16), 0); /* already there */
	assert_int_equal(s.n, N - 1);
	assert_true((s.cap & (s.cap - 1)) == 0);
	assert_true(s.n * 2 <= s.cap);
	/* Random deletions and re-adds against the reference array. */
	for (i = 0; i < 4 * N; i++) {
		uint64_t x = rng_next(&r);
		size_t k = 1 + x % (N - 1);

		if (in[k]) {
			assert_true(shg__oset_del(&s, k * 16));
			in[k] = false;
		} else if (x & (1ull << 40)) {
			assert_false(shg__oset_del(&s, k * 16));
		} else {
			assert_int_equal(shg__oset_add(&s, k * 16), 0);
			in[k] = true;
		}
	}
	for (i = 1; i < N; i++) {
		assert_int_equal(shg__oset_has(&s, i * 16), in[i]);
		n += in[i];
	}
	assert_int_equal(s.n, n);
	assert_false(shg__oset_has(&s, N * 16));
	assert_false(shg__oset_has(&s, 0));
	shg__oset_free(&s);
	assert_false(shg__oset_has(&s, 16));
	assert_int_equal(shg__oset_add(&s, 32), 0); /* usable again */
	assert_true(shg__oset_has(&s, 32));
	shg__oset_free(&s);
}

/* Offsets whose home slot in a @cap-slot table is @home. */
static size_t offs_with_home(size_t cap, size_t home, uint64_t *out, size_t n)
{
	uint64_t off;
	size_t k = 0;

	for (off = 16; k < n && off < (1ull << 30); off += 16)
		if (shg__off_hash(off, cap) == home)
			out[k++] = off;
	return k;
}

static void test_util_oset_del_shifts_across_wraparound(void **state)
{
	struct shg__offset_set s = { 0 };
	uint64_t last[3] = { 0 }, first[1] = { 0 }, zero[2] = { 0 };
	size_t cap = SHG_UTIL_MIN_CAP;

	(void)state;
	/* Three keys homed at the last slot fill slots cap-1, 0 and 1; a
	 * key homed at slot 0 then lands in slot 2. */
	assert_int_equal(offs_with_home(cap, cap - 1, last, 3), 3);
	assert_int_equal(offs_with_home(cap, 0, first, 1), 1);
	assert_int_equal(shg__oset_add(&s, last[0]), 0);
	assert_int_equal(s.cap, cap);
	assert_int_equal(shg__oset_add(&s, last[1]), 0);
	assert_int_equal(shg__oset_add(&s, last[2]), 0);
	assert_int_equal(shg__oset_add(&s, first[0]), 0);
	assert_true(s.slot[cap - 1] == last[0] && s.slot[0] == last[1] &&
		    s.slot[1] == last[2] && s.slot[2] == first[0]);
	/* Deleting the first must pull every later key back past the end
	 * of the table, or they become unreachable from their home. */
	assert_true(shg__oset_del(&s, last[0]));
	assert_true(s.slot[cap - 1] == last[1] && s.slot[0] == last[2] &&
		    s.slot[1] == first[0] && s.slot[2] == 0);
	assert_true(shg__oset_has(&s, last[1]));
	assert_true(shg__oset_has(&s, last[2]));
	assert_true(shg__oset_has(&s, first[0]));
	assert_false(shg__oset_has(&s, last[0]));
	/* A key at its home slot stays put when an earlier one goes. */
	assert_true(shg__oset_del(&s, last[2]));
	assert_true(s.slot[0] == first[0] && s.slot[1] == 0);
	assert_int_equal(s.n, 2);
	shg__oset_free(&s);

	/* Keys homed at slot 0, stored after the wrap, must not move back
	 * past the end into a hole at cap - 1 (cyclically before home). */
	assert_int_equal(offs_with_home(cap, cap - 2, last, 2), 2);
	assert_int_equal(offs_with_home(cap, 0, zero, 2), 2);
	assert_int_equal(shg__oset_add(&s, last[0]), 0);
	assert_int_equal(shg__oset_add(&s, last[1]), 0);
	assert_int_equal(shg__oset_add(&s, zero[0]), 0);
	assert_int_equal(shg__oset_add(&s, zero[1]), 0);
	assert_true(shg__oset_del(&s, last[0]));
	assert_true(s.slot[cap - 2] == last[1] && s.slot[cap - 1] == 0 &&
		    s.slot[0] == zero[0] && s.slot[1] == zero[1]);
	assert_true(shg__oset_has(&s, zero[0]) && shg__oset_has(&s, zero[1]));
	shg__oset_free(&s);
}

/* ---- map ------------------------------------------------------------------ */

static void test_util_omap_add_put_get(void **state)
{
	struct shg__omap m = { 0 };
	uint64_t v = 7;

	(void)state;
	assert_false(shg__omap_get(&m, 16, &v));
	assert_int_equal(v, 7); /* untouched when absent */
	assert_int_equal(shg__omap_add(&m, 0, 1, NULL), -EINVAL);
	assert_int_equal(shg__omap_put(&m, 0, 1), -EINVAL);
	assert_int_equal(shg__omap_add(&m, 16, 100, NULL), 0);
	assert_int_equal(shg__omap_add(&m, 16, 200, &v), 1);
	assert_int_equal(v, 100); /* present: old value, unchanged */
	assert_true(shg__omap_get(&m, 16, &v));
	assert_int_equal(v, 100);
	assert_int_equal(shg__omap_put(&m, 16, 0), 0); /* replace, by 0 */
	assert_true(shg__omap_get(&m, 16, &v));
	assert_int_equal(v, 0);
	assert_true(shg__omap_get(&m, 16, NULL));
	assert_int_equal(m.n, 1);
	shg__omap_free(&m);
	assert_false(shg__omap_get(&m, 16, NULL));
	assert_int_equal(shg__omap_put(&m, 32, 1), 0); /* usable again */
	shg__omap_free(&m);
}

static void test_util_omap_matches_reference(void **state)
{
	struct shg__omap m = { 0 };
	enum { N = 40000 };
	static uint64_t ref[N]; /* key i * 16 -> ref[i] - 1; 0 = absent */
	uint64_t r = 99, v, old;
	size_t i, n = 0, seen = 0;

	(void)state;
	for (i = 0; i < 3 * N; i++) {
		uint64_t x = rng_next(&r);
		size_t k = 1 + x % (N - 1);
		int rc;

		if ((x >> 8) % 5 == 0) {
			assert_int_equal(shg__omap_del(&m, k * 16),
					 ref[k] != 0);
			ref[k] = 0;
			continue;
		}
		if (x & 1) {
			assert_int_equal(shg__omap_put(&m, k * 16, x), 0);
			ref[k] = x + 1;
			continue;
		}
		rc = shg__omap_add(&m, k * 16, x, &old);
		if (ref[k]) {
			assert_int_equal(rc, 1);
			assert_true(old == ref[k] - 1);
		} else {
			assert_int_equal(rc, 0);
			ref[k] = x + 1;
		}
	}
	for (i = 1; i < N; i++) {
		assert_int_equal(shg__omap_get(&m, i * 16, &v), ref[i] != 0);
		if (ref[i]) {
			assert_true(v == ref[i] - 1);
			n++;
		}
	}
	assert_int_equal(m.n, n);
	assert_true(m.n * 2 <= m.cap);
	for (i = 0; i < m.cap; i++) /* the documented iteration */
		if (m.slot[2 * i]) {
			assert_true(m.slot[2 * i + 1] ==
				    ref[m.slot[2 * i] / 16] - 1);
			seen++;
		}
	assert_int_equal(seen, n);
	shg__omap_free(&m);
}

/* ---- growable arrays ------------------------------------------------------ */

struct pair {
	uint32_t a;
	uint64_t b;
};

static void test_util_vec_push_keeps_order(void **state)
{
	SHG_VEC(struct pair) pv = { 0 };
	struct shg__offvec ov = { 0 };
	size_t i, cap;
	int calls = 0;

	(void)state;
	for (i = 0; i < 10000; i++) {
		assert_int_equal(shg__vec_push(&pv, ((struct pair){ (uint32_t)i,
								    i * 3 })),
				 0);
		assert_int_equal(shg__offvec_push(&ov, i * 16), 0);
	}
	assert_int_equal(pv.n, 10000);
	assert_true(pv.cap >= pv.n && (pv.cap & (pv.cap - 1)) == 0);
	for (i = 0; i < 10000; i++) {
		assert_true(pv.v[i].a == i && pv.v[i].b == i * 3);
		assert_true(ov.v[i] == i * 16);
	}
	/* The pushed value is evaluated once, even when the array grows. */
	cap = pv.cap;
	while (pv.n < cap + 1)
		assert_int_equal(
			shg__vec_push(&pv,
				      ((struct pair){ (uint32_t)calls++, 0 })),
			0);
	assert_int_equal((size_t)calls, cap + 1 - 10000);
	free(pv.v);
	free(ov.v);
}

static void test_util_grow_reserves_and_refuses_overflow(void **state)
{
	uint32_t *v = NULL;
	size_t cap = 0;

	(void)state;
	assert_int_equal(shg__grow(&v, &cap, 0, sizeof(*v)), 0);
	assert_null(v); /* nothing needed, nothing allocated */
	assert_int_equal(shg__grow(&v, &cap, 1, sizeof(*v)), 0);
	assert_int_equal(cap, SHG_UTIL_MIN_CAP);
	assert_int_equal(shg__grow(&v, &cap, 1000, sizeof(*v)), 0);
	assert_int_equal(cap, 1024);
	v[999] = 42;
	assert_int_equal(shg__grow(&v, &cap, SIZE_MAX / 2, sizeof(*v)),
			 -ENOMEM);
	assert_int_equal(shg__grow(&v, &cap, SIZE_MAX, 1), -ENOMEM);
	assert_int_equal(cap, 1024); /* unchanged */
	assert_int_equal(v[999], 42);
	free(v);
}

/* ---- out of memory -------------------------------------------------------- */

static void test_util_oom_leaves_containers_unchanged(void **state)
{
	struct shg__offset_set s = { 0 };
	struct shg__omap m = { 0 };
	struct shg__offvec v = { 0 };
	uint64_t i, x;
	int rc;

	(void)state;
	/* Fill each to its growth point with the allocator working. */
	for (i = 1; i <= SHG_UTIL_MIN_CAP / 2; i++) {
		assert_int_equal(shg__oset_add(&s, i * 16), 0);
		assert_int_equal(shg__omap_put(&m, i * 16, i), 0);
	}
	for (i = 0; i < SHG_UTIL_MIN_CAP; i++)
		assert_int_equal(shg__offvec_push(&v, i), 0);
	assert_int_equal(v.cap, v.n);

	fail_after = 0;
	assert_int_equal(shg__oset_add(&s, 9999 * 16), -ENOMEM);
	assert_int_equal(shg__omap_put(&m, 9999 * 16, 1), -ENOMEM);
	rc = shg__omap_add(&m, 9999 * 16, 1, NULL);
	assert_int_equal(rc, -ENOMEM);
	assert_int_equal(shg__offvec_push(&v, 9999), -ENOMEM);
	assert_int_equal(nfailed, 4);
	/* Present keys need no room: no allocation, no failure. */
	assert_int_equal(shg__oset_add(&s, 16), 0);
	assert_int_equal(shg__omap_add(&m, 16, 5, &x), 1);
	assert_int_equal(x, 1);

	/* Unchanged: same members and values, nothing half-inserted. */
	assert_int_equal(s.n, SHG_UTIL_MIN_CAP / 2);
	assert_int_equal(s.cap, SHG_UTIL_MIN_CAP);
	assert_int_equal(m.n, SHG_UTIL_MIN_CAP / 2);
	assert_int_equal(v.n, SHG_UTIL_MIN_CAP);
	assert_false(shg__oset_has(&s, 9999 * 16));
	assert_false(shg__omap_get(&m, 9999 * 16, NULL));
	for (i = 1; i <= SHG_UTIL_MIN_CAP / 2; i++) {
		assert_true(shg__oset_has(&s, i * 16));
		assert_true(shg__omap_get(&m, i * 16, &x) && x == i);
	}
	for (i = 0; i < SHG_UTIL_MIN_CAP; i++)
		assert_true(v.v[i] == i);

	/* The allocator recovers: the same calls succeed. */
	fail_after = -1;
	assert_int_equal(shg__oset_add(&s, 9999 * 16), 0);
	assert_int_equal(shg__omap_put(&m, 9999 * 16, 1), 0);
	assert_int_equal(shg__offvec_push(&v, 9999), 0);
	assert_true(shg__oset_has(&s, 9999 * 16) && s.cap > SHG_UTIL_MIN_CAP);
	assert_true(shg__omap_get(&m, 9999 * 16, &x) && x == 1);
	assert_true(v.n == SHG_UTIL_MIN_CAP + 1 && v.v[v.n - 1] == 9999);
	shg__oset_free(&s);
	shg__omap_free(&m);
	free(v.v);
}

/* ---- helpers for tools and bench (common/shgutil.h) ------------------------ */

static void test_util_parse_size_is_binary(void **state)
{
	uint64_t v = 77;

	(void)state;
	assert_int_equal(shg__parse_size("0", &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(shg__parse_size("4096", &v), 0);
	assert_int_equal(v, 4096);
	assert_int_equal(shg__parse_size("1k", &v), 0);
	assert_int_equal(v, 1024);
	assert_int_equal(shg__parse_size("32m", &v), 0);
	assert_int_equal(v, 32ull << 20);
	assert_int_equal(shg__parse_size("2G", &v), 0);
	assert_int_equal(v, 2ull << 30);
	assert_int_equal(shg__parse_size("3T", &v), 0);
	assert_true(v == 3ull << 40);
	assert_int_equal(shg__parse_size("16777215T", &v), 0);
	assert_true(v == 16777215ull << 40);
	v = 77;
	assert_int_equal(shg__parse_size("16777216T", &v), -ERANGE);
	assert_int_equal(shg__parse_size("99999999999999999999", &v), -ERANGE);
	assert_int_equal(shg__parse_size("", &v), -EINVAL);
	assert_int_equal(shg__parse_size("-1", &v), -EINVAL);
	assert_int_equal(shg__parse_size(" 1", &v), -EINVAL);
	assert_int_equal(shg__parse_size("+1", &v), -EINVAL);
	assert_int_equal(shg__parse_size("1.5k", &v), -EINVAL);
	assert_int_equal(shg__parse_size("1kb", &v), -EINVAL);
	assert_int_equal(shg__parse_size("k", &v), -EINVAL);
	assert_int_equal(v, 77); /* untouched on error */
}

static void test_util_parse_count_is_decimal(void **state)
{
	uint64_t v = 77;

	(void)state;
	assert_int_equal(shg__parse_count("10000", &v), 0);
	assert_int_equal(v, 10000);
	assert_int_equal(shg__parse_count("10k", &v), 0);
	assert_int_equal(v, 10000);
	assert_int_equal(shg__parse_count("1M", &v), 0);
	assert_int_equal(v, 1000000);
	assert_int_equal(shg__parse_count("1.5m", &v), 0);
	assert_int_equal(v, 1500000);
	assert_int_equal(shg__parse_count("2G", &v), 0);
	assert_int_equal(v, 2000000000);
	v = 77;
	assert_int_equal(shg__parse_count("-1", &v), -EINVAL);
	assert_int_equal(shg__parse_count("inf", &v), -EINVAL);
	assert_int_equal(shg__parse_count("nan", &v), -EINVAL);
	assert_int_equal(shg__parse_count("", &v), -EINVAL);
	assert_int_equal(shg__parse_count("1x", &v), -EINVAL);
	assert_int_equal(shg__parse_count("20000000000G", &v), -ERANGE);
	assert_int_equal(v, 77);
	/* The plain form: digits only, no suffix. */
	assert_int_equal(shg__parse_u64("18446744073709551615", &v), 0);
	assert_true(v == UINT64_MAX);
	assert_int_equal(shg__parse_u64("18446744073709551616", &v), -ERANGE);
	assert_int_equal(shg__parse_u64("1k", &v), -EINVAL);
	assert_int_equal(shg__parse_u64("-0", &v), -EINVAL);
}

static void test_util_fmt_bytes_binary_units(void **state)
{
	char b[32];

	(void)state;
	assert_string_equal(shg__fmt_bytes(0, b, sizeof(b)), "0 B");
	assert_string_equal(shg__fmt_bytes(1023, b, sizeof(b)), "1023 B");
	assert_string_equal(shg__fmt_bytes(1536, b, sizeof(b)), "1.5 KiB");
	assert_string_equal(shg__fmt_bytes(64ull << 20, b, sizeof(b)),
			    "64.0 MiB");
	assert_string_equal(shg__fmt_bytes(3ull << 50, b, sizeof(b)),
			    "3072.0 TiB");
}

/* shg__json_mem()/_str() output as a string. */
static char *json_of(const void *p, size_t n, bool str)
{
	static char out[256];
	FILE *f = fmemopen(out, sizeof(out), "w");

	assert_non_null(f);
	if (str)
		shg__json_str(f, p);
	else
		shg__json_mem(f, p, n);
	assert_int_equal(fclose(f), 0);
	return out;
}

static void test_util_json_escapes_utf8_aware(void **state)
{
	(void)state;
	assert_string_equal(json_of("a\"b\\c", 0, true), "\"a\\\"b\\\\c\"");
	assert_string_equal(json_of("t\tn\n", 0, true), "\"t\\u0009n\\u000a\"");
	assert_string_equal(json_of(NULL, 0, true), "null");
	/* Valid UTF-8 passes through; é is C3 A9, U+1F600 is 4 bytes. */
	assert_string_equal(json_of("\xc3\xa9\xf0\x9f\x98\x80", 0, true),
			    "\"\xc3\xa9\xf0\x9f\x98\x80\"");
	/* Invalid bytes become Latin-1 code points: a lone continuation
	 * byte, an overlong '/', a surrogate, a truncated sequence. */
	assert_string_equal(json_of("\x80", 0, true), "\"\\u0080\"");
	assert_string_equal(json_of("\xc0\xaf", 0, true), "\"\\u00c0\\u00af\"");
	assert_string_equal(json_of("\xed\xa0\x80", 0, true),
			    "\"\\u00ed\\u00a0\\u0080\"");
	assert_string_equal(json_of("\xe2\x82", 0, true), "\"\\u00e2\\u0082\"");
	/* Bytes with a NUL inside. */
	assert_string_equal(json_of("a\0b", 3, false), "\"a\\u0000b\"");
	assert_true(shg__utf8_printable("caf\xc3\xa9", 5));
	assert_false(shg__utf8_printable("a\x7f", 2));
	assert_false(shg__utf8_printable("\xc2\x85", 2)); /* C1 control */
	assert_false(shg__utf8_printable("\xff", 1));
}

static void test_util_mix64_and_numa_sim(void **state)
{
	(void)state;
	/* splitmix64 finalizer reference values (the map's hash relies on
	 * them staying the same). */
	assert_true(shg__mix64(0) == 0);
	assert_true(shg__mix64(1) == 0x5692161d100b05e5ull);
	assert_true(shg__mix64(0x9e3779b97f4a7c15ull) == 0xe220a8397b1dcdafull);
	assert_int_equal(unsetenv("SHG_NUMA_SIM"), 0);
	assert_int_equal(shg__numa_sim_nodes(16), 0);
	assert_int_equal(setenv("SHG_NUMA_SIM", "4", 1), 0);
	assert_int_equal(shg__numa_sim_nodes(16), 4);
	assert_int_equal(shg__numa_sim_nodes(3), 0); /* above max */
	assert_int_equal(setenv("SHG_NUMA_SIM", "0", 1), 0);
	assert_int_equal(shg__numa_sim_nodes(16), 0);
	assert_int_equal(setenv("SHG_NUMA_SIM", "2x", 1), 0);
	assert_int_equal(shg__numa_sim_nodes(16), 0);
	assert_int_equal(setenv("SHG_NUMA_SIM", "", 1), 0);
	assert_int_equal(shg__numa_sim_nodes(16), 0);
	assert_int_equal(unsetenv("SHG_NUMA_SIM"), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_util_cmp_u64_orders_full_range,
				       reset_alloc),
		cmocka_unit_test_setup(test_util_oset_matches_reference,
				       reset_alloc),
		cmocka_unit_test_setup(
			test_util_oset_del_shifts_across_wraparound,
			reset_alloc),
		cmocka_unit_test_setup(test_util_omap_add_put_get, reset_alloc),
		cmocka_unit_test_setup(test_util_omap_matches_reference,
				       reset_alloc),
		cmocka_unit_test_setup(test_util_vec_push_keeps_order,
				       reset_alloc),
		cmocka_unit_test_setup(
			test_util_grow_reserves_and_refuses_overflow,
			reset_alloc),
		cmocka_unit_test_setup(
			test_util_oom_leaves_containers_unchanged, reset_alloc),
		cmocka_unit_test(test_util_parse_size_is_binary),
		cmocka_unit_test(test_util_parse_count_is_decimal),
		cmocka_unit_test(test_util_fmt_bytes_binary_units),
		cmocka_unit_test(test_util_json_escapes_utf8_aware),
		cmocka_unit_test(test_util_mix64_and_numa_sim),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
