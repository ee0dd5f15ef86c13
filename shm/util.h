/* SPDX-License-Identifier: MIT */
/*
 * Process-local containers and helpers shared by every layer (shm/, lib/,
 * tools, bench): a set of offsets, a map offset -> u64, growable arrays,
 * the one comparison of u64 values for qsort/bsearch, the 64-bit mixer
 * and the SHG_NUMA_SIM switch. Header only, so that a
 * program linking just the public library (shmctl) can use them too, and
 * so that the walk's hot membership tests inline. Depends on libc alone:
 * any directory may include it.
 *
 * THE OUT-OF-MEMORY RULE. Every function here that allocates returns 0 or
 * -ENOMEM; on -ENOMEM the container is unchanged (same contents, still
 * valid, still to be freed). Nothing here aborts or prints. A caller whose
 * callback cannot return an error records the first failure and reports it
 * when the callback-driven loop ends.
 *
 * Keys: offset 0 is the null offset and is never a member (adding it is
 * -EINVAL), which lets a zeroed slot mark an empty one. A zeroed struct is
 * an empty container; the *_free functions leave an empty, reusable one.
 *
 * Tables use open addressing with linear probing, a power-of-two capacity
 * and a load factor of at most 1/2 (short probe runs); deletion shifts
 * entries back instead of leaving tombstones. The hash multiplies the
 * 16-byte block index by 2^64 / golden ratio and folds the high half in.
 *
 * Tests may define SHG_UTIL_CALLOC / SHG_UTIL_REALLOC before including
 * this header to inject allocation failures.
 */
#ifndef SHG_UTIL_H
#define SHG_UTIL_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifndef SHG_UTIL_CALLOC
#define SHG_UTIL_CALLOC calloc
#endif
#ifndef SHG_UTIL_REALLOC
#define SHG_UTIL_REALLOC realloc
#endif

/* First capacity of every container (elements or slots). */
#define SHG_UTIL_MIN_CAP 64u

/* qsort/bsearch comparison of two uint64_t. */
static inline int shg__cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/*
 * splitmix64's finalizer: a bijection of 64-bit integers, 0 -> 0. The map
 * hashes keys with it in shared memory: changing it changes the format.
 */
static inline uint64_t shg__mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	x ^= x >> 31;
	return x;
}

/*
 * SHG_NUMA_SIM=N (1..@max) pretends N NUMA nodes, for tests on one-node
 * hosts: the N, or 0 if the variable is unset, empty or not such a number.
 */
static inline unsigned shg__numa_sim_nodes(unsigned max)
{
	const char *e = getenv("SHG_NUMA_SIM");
	char *end;
	long v;

	if (!e || !*e)
		return 0;
	v = strtol(e, &end, 10);
	if (*end || v < 1 || v > (long)max)
		return 0;
	return (unsigned)v;
}

/* ---- growable arrays ------------------------------------------------------ */

/**
 * shg__grow() - make the array *@arrp (*@cap elements of @elsize bytes)
 * hold at least @need elements, doubling from SHG_UTIL_MIN_CAP.
 * @arrp: address of the array pointer (any object pointer type; NULL when
 *        *@cap is 0).
 * Return: 0, or -ENOMEM with the array and *@cap unchanged.
 */
static inline int shg__grow(void *arrp, size_t *cap, size_t need, size_t elsize)
{
	size_t ncap = *cap ? *cap : SHG_UTIL_MIN_CAP;
	void *p, *np;

	if (need <= *cap)
		return 0;
	while (ncap < need) {
		if (ncap > SIZE_MAX / 2)
			return -ENOMEM;
		ncap *= 2;
	}
	if (ncap > SIZE_MAX / elsize)
		return -ENOMEM;
	/* memcpy: @arrp points to a T *, not to a void *. */
	memcpy(&p, arrp, sizeof(p));
	np = SHG_UTIL_REALLOC(p, ncap * elsize);
	if (!np)
		return -ENOMEM;
	memcpy(arrp, &np, sizeof(np));
	*cap = ncap;
	return 0;
}

/*
 * A growable array of T: SHG_VEC(T) declares the struct { v, n, cap }; a
 * zeroed one is empty; free(vec.v) frees it. shg__vec_push(&vec, x)
 * appends x (evaluated once, @vecp more than once): 0 or -ENOMEM.
 */
#define SHG_VEC(T)             \
	struct {               \
		T *v;          \
		size_t n, cap; \
	}
#define shg__vec_push(vecp, x)                                               \
	((vecp)->n < (vecp)->cap ||                                          \
			 !shg__grow(&(vecp)->v, &(vecp)->cap, (vecp)->n + 1, \
				    sizeof(*(vecp)->v)) ?                    \
		 ((vecp)->v[(vecp)->n++] = (x), 0) :                         \
		 -ENOMEM)

/* A growable array of offsets (named: it appears in shared structs). */
struct shg__offvec {
	uint64_t *v;
	size_t n, cap;
};

static inline int shg__offvec_push(struct shg__offvec *v, uint64_t off)
{
	return shg__vec_push(v, off);
}

/* ---- hashing ------------------------------------------------------------- */

static inline size_t shg__off_hash(uint64_t off, size_t cap)
{
	uint64_t h = (off >> 4) * 0x9e3779b97f4a7c15ull;

	return (size_t)(h >> 32 ^ h) & (cap - 1);
}

/*
 * Whether the entry at slot @j, whose home slot is @k, may move back to
 * the hole at @i: not if its home lies cyclically in (i, j].
 */
static inline bool shg__shift_ok(size_t i, size_t j, size_t k)
{
	return i <= j ? (k <= i || k > j) : (k <= i && k > j);
}

/* ---- set of offsets ------------------------------------------------------- */

struct shg__offset_set {
	uint64_t *slot; /* 0 = empty */
	size_t cap; /* power of two (0: nothing allocated) */
	size_t n; /* members */
};

/* Slot holding @off, or the empty slot where it would go (cap > 0). */
static inline size_t shg__oset_probe(const struct shg__offset_set *s,
				     uint64_t off)
{
	size_t i = shg__off_hash(off, s->cap);

	while (s->slot[i] && s->slot[i] != off)
		i = (i + 1) & (s->cap - 1);
	return i;
}

static inline int shg__oset_grow(struct shg__offset_set *s)
{
	struct shg__offset_set t;
	size_t i;

	if (s->cap > SIZE_MAX / 2 / sizeof(*t.slot))
		return -ENOMEM;
	t.cap = s->cap ? s->cap * 2 : SHG_UTIL_MIN_CAP;
	t.n = s->n;
	t.slot = SHG_UTIL_CALLOC(t.cap, sizeof(*t.slot));
	if (!t.slot)
		return -ENOMEM;
	for (i = 0; i < s->cap; i++)
		if (s->slot[i])
			t.slot[shg__oset_probe(&t, s->slot[i])] = s->slot[i];
	free(s->slot);
	*s = t;
	return 0;
}

/* Add @off (0 if already present). Return: 0, -EINVAL (off 0), -ENOMEM. */
static inline int shg__oset_add(struct shg__offset_set *s, uint64_t off)
{
	size_t i;
	int err;

	if (!off)
		return -EINVAL;
	if ((s->n + 1) * 2 > s->cap) {
		/* Grow only when adding: a member needs no room. */
		if (s->cap && s->slot[shg__oset_probe(s, off)])
			return 0;
		err = shg__oset_grow(s);
		if (err)
			return err;
	}
	i = shg__oset_probe(s, off);
	if (!s->slot[i]) {
		s->slot[i] = off;
		s->n++;
	}
	return 0;
}

static inline bool shg__oset_has(const struct shg__offset_set *s, uint64_t off)
{
	if (!s->cap || !off)
		return false;
	return s->slot[shg__oset_probe(s, off)] == off;
}

/* Remove @off; whether it was a member. */
static inline bool shg__oset_del(struct shg__offset_set *s, uint64_t off)
{
	size_t i, j, mask = s->cap - 1;

	if (!s->cap || !off)
		return false;
	i = shg__oset_probe(s, off);
	if (!s->slot[i])
		return false;
	for (j = (i + 1) & mask; s->slot[j]; j = (j + 1) & mask) {
		if (shg__shift_ok(i, j, shg__off_hash(s->slot[j], s->cap))) {
			s->slot[i] = s->slot[j];
			i = j;
		}
	}
	s->slot[i] = 0;
	s->n--;
	return true;
}

static inline void shg__oset_free(struct shg__offset_set *s)
{
	free(s->slot);
	s->slot = NULL;
	s->cap = 0;
	s->n = 0;
}

/* ---- map offset -> u64 ---------------------------------------------------- */

struct shg__omap_ent {
	uint64_t key; /* 0 = empty slot */
	uint64_t val;
};

/* Iterate: for (i = 0; i < m.cap; i++) if (m.slot[i].key) ... */
struct shg__omap {
	struct shg__omap_ent *slot;
	size_t cap; /* power of two (0: nothing allocated) */
	size_t n; /* entries */
};

/* Slot holding @key, or the empty slot where it would go (cap > 0). */
static inline size_t shg__omap_probe(const struct shg__omap *m, uint64_t key)
{
	size_t i = shg__off_hash(key, m->cap);

	while (m->slot[i].key && m->slot[i].key != key)
		i = (i + 1) & (m->cap - 1);
	return i;
}

static inline int shg__omap_grow(struct shg__omap *m)
{
	struct shg__omap t;
	size_t i;

	if (m->cap > SIZE_MAX / 2 / sizeof(*t.slot))
		return -ENOMEM;
	t.cap = m->cap ? m->cap * 2 : SHG_UTIL_MIN_CAP;
	t.n = m->n;
	t.slot = SHG_UTIL_CALLOC(t.cap, sizeof(*t.slot));
	if (!t.slot)
		return -ENOMEM;
	for (i = 0; i < m->cap; i++)
		if (m->slot[i].key)
			t.slot[shg__omap_probe(&t, m->slot[i].key)] =
				m->slot[i];
	free(m->slot);
	*m = t;
	return 0;
}

/**
 * shg__omap_add() - map @key to @val unless @key is present.
 * @old: if present, receives its value (may be NULL).
 * Return: 0 (added), 1 (present: unchanged), -EINVAL (key 0), -ENOMEM.
 */
static inline int shg__omap_add(struct shg__omap *m, uint64_t key, uint64_t val,
				uint64_t *old)
{
	size_t i;
	int err;

	if (!key)
		return -EINVAL;
	if ((m->n + 1) * 2 > m->cap) {
		/* Grow only when adding: a present key needs no room. */
		if (m->cap) {
			i = shg__omap_probe(m, key);
			if (m->slot[i].key) {
				if (old)
					*old = m->slot[i].val;
				return 1;
			}
		}
		err = shg__omap_grow(m);
		if (err)
			return err;
	}
	i = shg__omap_probe(m, key);
	if (m->slot[i].key) {
		if (old)
			*old = m->slot[i].val;
		return 1;
	}
	m->slot[i].key = key;
	m->slot[i].val = val;
	m->n++;
	return 0;
}

/* Map @key to @val, replacing any value. Return: 0, -EINVAL, -ENOMEM. */
static inline int shg__omap_put(struct shg__omap *m, uint64_t key, uint64_t val)
{
	int rc = shg__omap_add(m, key, val, NULL);

	if (rc == 1)
		m->slot[shg__omap_probe(m, key)].val = val;
	return rc < 0 ? rc : 0;
}

/* Value of @key into *@val (may be NULL); whether it is present. */
static inline bool shg__omap_get(const struct shg__omap *m, uint64_t key,
				 uint64_t *val)
{
	size_t i;

	if (!m->cap || !key)
		return false;
	i = shg__omap_probe(m, key);
	if (!m->slot[i].key)
		return false;
	if (val)
		*val = m->slot[i].val;
	return true;
}

static inline void shg__omap_free(struct shg__omap *m)
{
	free(m->slot);
	m->slot = NULL;
	m->cap = 0;
	m->n = 0;
}

#endif /* SHG_UTIL_H */
