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

/*
 * The table's probe and slot lookup are forced inline so that the stride
 * folds to a constant in each caller (the walk's hot path); growth is
 * kept out of line.
 */
#define SHG_UTIL_FAST __attribute__((always_inline))
#define SHG_UTIL_SLOW __attribute__((noinline, cold, unused))

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

/*
 * ---- the table both are built on -----------------------------------------
 * @stride words a slot, the key first (set: 1, map: 2). Inlined with a
 * constant stride, each use compiles to the loop written for its type.
 */

/* Slot holding @key, or the empty slot where it would go (cap > 0). */
static inline SHG_UTIL_FAST size_t shg__tab_probe(const uint64_t *slot,
						  size_t cap, size_t stride,
						  uint64_t key)
{
	size_t i = shg__off_hash(key, cap);

	while (slot[i * stride] && slot[i * stride] != key)
		i = (i + 1) & (cap - 1);
	return i;
}

/* Double the table (first: SHG_UTIL_MIN_CAP slots). 0 or -ENOMEM. */
static SHG_UTIL_SLOW int shg__tab_grow(uint64_t **slotp, size_t *cap,
				       size_t stride)
{
	size_t ocap = *cap, ncap, i, j, w = stride * sizeof(uint64_t);
	uint64_t *ns, *os = *slotp;

	if (ocap > SIZE_MAX / 2 / w)
		return -ENOMEM;
	ncap = ocap ? ocap * 2 : SHG_UTIL_MIN_CAP;
	ns = SHG_UTIL_CALLOC(ncap, w);
	if (!ns)
		return -ENOMEM;
	for (i = 0; i < ocap; i++) {
		if (!os[i * stride])
			continue;
		j = shg__tab_probe(ns, ncap, stride, os[i * stride]);
		memcpy(&ns[j * stride], &os[i * stride], w);
	}
	free(os);
	*slotp = ns;
	*cap = ncap;
	return 0;
}

/*
 * The slot of @key in *@at: 1 if present; 0 if absent, the empty slot
 * where it goes (room made for one more than @n); -EINVAL (key 0) or
 * -ENOMEM. Grows only when adding: a present key needs no room.
 */
static inline SHG_UTIL_FAST int shg__tab_slot(uint64_t **slotp, size_t *cap,
					      size_t n, size_t stride,
					      uint64_t key, size_t *at)
{
	size_t i;
	int err;

	if (!key)
		return -EINVAL;
	if ((n + 1) * 2 > *cap) {
		if (*cap) {
			i = shg__tab_probe(*slotp, *cap, stride, key);
			if ((*slotp)[i * stride]) {
				*at = i;
				return 1;
			}
		}
		err = shg__tab_grow(slotp, cap, stride);
		if (err)
			return err;
	}
	i = shg__tab_probe(*slotp, *cap, stride, key);
	*at = i;
	return (*slotp)[i * stride] != 0;
}

/*
 * Remove @key, decrementing *@n; whether it was present. Backward shift,
 * no tombstones.
 */
static inline bool shg__tab_del(uint64_t *slot, size_t cap, size_t *n,
				size_t stride, uint64_t key)
{
	size_t i, j, mask = cap - 1;

	if (!cap || !key)
		return false;
	i = shg__tab_probe(slot, cap, stride, key);
	if (!slot[i * stride])
		return false;
	for (j = (i + 1) & mask; slot[j * stride]; j = (j + 1) & mask) {
		if (shg__shift_ok(i, j, shg__off_hash(slot[j * stride], cap))) {
			memcpy(&slot[i * stride], &slot[j * stride],
			       stride * sizeof(*slot));
			i = j;
		}
	}
	memset(&slot[i * stride], 0, stride * sizeof(*slot));
	(*n)--;
	return true;
}

/* Free the slots; an empty, reusable table remains. */
static inline void shg__tab_free(uint64_t **slotp, size_t *cap, size_t *n)
{
	free(*slotp);
	*slotp = NULL;
	*cap = 0;
	*n = 0;
}

/* ---- set of offsets ------------------------------------------------------- */

struct shg__offset_set {
	uint64_t *slot; /* 0 = empty */
	size_t cap; /* power of two (0: nothing allocated) */
	size_t n; /* members */
};

/* Add @off (0 if already present). Return: 0, -EINVAL (off 0), -ENOMEM. */
static inline int shg__oset_add(struct shg__offset_set *s, uint64_t off)
{
	size_t i = 0;
	int rc = shg__tab_slot(&s->slot, &s->cap, s->n, 1, off, &i);

	if (rc)
		return rc < 0 ? rc : 0;
	s->slot[i] = off;
	s->n++;
	return 0;
}

static inline bool shg__oset_has(const struct shg__offset_set *s, uint64_t off)
{
	if (!s->cap || !off)
		return false;
	return s->slot[shg__tab_probe(s->slot, s->cap, 1, off)] == off;
}

/* Remove @off; whether it was a member. */
static inline bool shg__oset_del(struct shg__offset_set *s, uint64_t off)
{
	return shg__tab_del(s->slot, s->cap, &s->n, 1, off);
}

static inline void shg__oset_free(struct shg__offset_set *s)
{
	shg__tab_free(&s->slot, &s->cap, &s->n);
}

/* ---- map offset -> u64 ---------------------------------------------------- */

/*
 * Slot i holds key slot[2i] (0 = empty) and its value slot[2i + 1].
 * Iterate: for (i = 0; i < m.cap; i++) if (m.slot[2 * i]) ...
 */
struct shg__omap {
	uint64_t *slot;
	size_t cap; /* slots, a power of two (0: nothing allocated) */
	size_t n; /* entries */
};

/**
 * shg__omap_add() - map @key to @val unless @key is present.
 * @old: if present, receives its value (may be NULL).
 * Return: 0 (added), 1 (present: unchanged), -EINVAL (key 0), -ENOMEM.
 */
static inline int shg__omap_add(struct shg__omap *m, uint64_t key, uint64_t val,
				uint64_t *old)
{
	size_t i = 0;
	int rc = shg__tab_slot(&m->slot, &m->cap, m->n, 2, key, &i);

	if (rc == 1 && old)
		*old = m->slot[2 * i + 1];
	if (rc)
		return rc;
	m->slot[2 * i] = key;
	m->slot[2 * i + 1] = val;
	m->n++;
	return 0;
}

/* Map @key to @val, replacing any value. Return: 0, -EINVAL, -ENOMEM. */
static inline int shg__omap_put(struct shg__omap *m, uint64_t key, uint64_t val)
{
	size_t i = 0;
	int rc = shg__tab_slot(&m->slot, &m->cap, m->n, 2, key, &i);

	if (rc < 0)
		return rc;
	if (!rc) {
		m->slot[2 * i] = key;
		m->n++;
	}
	m->slot[2 * i + 1] = val;
	return 0;
}

/* Value of @key into *@val (may be NULL); whether it is present. */
static inline bool shg__omap_get(const struct shg__omap *m, uint64_t key,
				 uint64_t *val)
{
	size_t i;

	if (!m->cap || !key)
		return false;
	i = shg__tab_probe(m->slot, m->cap, 2, key);
	if (!m->slot[2 * i])
		return false;
	if (val)
		*val = m->slot[2 * i + 1];
	return true;
}

/* Remove @key; whether it was present. */
static inline bool shg__omap_del(struct shg__omap *m, uint64_t key)
{
	return shg__tab_del(m->slot, m->cap, &m->n, 2, key);
}

static inline void shg__omap_free(struct shg__omap *m)
{
	shg__tab_free(&m->slot, &m->cap, &m->n);
}

#endif /* SHG_UTIL_H */
