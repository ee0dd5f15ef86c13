/* SPDX-License-Identifier: MIT */
/*
 * Two peers built on one open-addressing hash table (u64 -> u64, linear
 * probing, load factor <= 1/2, key 0 = empty) in a POSIX shm segment:
 *
 *   rwlock-shm   the baseline users start from: a process-shared pthread
 *                rwlock (glibc default kind, readers preferred) taken for
 *                read per lookup and for write per update or per batch.
 *   flat-nolock  the same table read without any synchronization: the
 *                memory-bandwidth bound (lookups only, no writer).
 *
 * Worker processes inherit the MAP_SHARED mapping through fork(), which
 * is what opening the name again would give them.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "peers.h"

struct table_hdr {
	pthread_rwlock_t lock;
	uint64_t cap; /* slots, a power of two */
	uint64_t count;
	uint64_t size; /* bytes of the mapping */
	char pad[64];
};

struct slot {
	uint64_t key;
	uint64_t val;
};

struct table {
	char name[64];
	struct table_hdr *hdr;
	struct slot *slots;
	uint64_t mask;
	bool locked; /* rwlock-shm (true) or flat-nolock */
};

static unsigned table_counter;

static uint64_t pow2_at_least(uint64_t n)
{
	uint64_t c = 16;

	while (c < n)
		c <<= 1;
	return c;
}

static void table_free(struct table *t)
{
	if (t->hdr) {
		if (t->locked)
			pthread_rwlock_destroy(&t->hdr->lock);
		munmap(t->hdr, t->hdr->size);
		t->hdr = NULL;
	}
	if (t->name[0])
		shm_unlink(t->name);
	t->name[0] = '\0';
}

static int table_new(struct peer *p, struct table *t, uint64_t nkeys,
		     bool locked, bool build)
{
	static bool build_registered;
	pthread_rwlockattr_t attr;
	uint64_t cap = pow2_at_least(2 * nkeys);
	size_t size = sizeof(struct table_hdr) + cap * sizeof(struct slot);
	void *m;
	int fd, err;

	memset(t, 0, sizeof(*t));
	t->locked = locked;
	if (build) {
		snprintf(t->name, sizeof(t->name), "/shg-bench-%d-rw-build",
			 (int)getpid());
		if (!build_registered)
			bench_cleanup_shm(t->name);
		build_registered = true;
	} else {
		snprintf(t->name, sizeof(t->name), "/shg-bench-%d-%s-%u",
			 (int)getpid(), locked ? "rw" : "flat",
			 table_counter++);
		bench_cleanup_shm(t->name);
	}
	fd = shm_open(t->name, O_RDWR | O_CREAT | O_EXCL, 0600);
	if (fd < 0) {
		err = -errno;
		peer_fail(p, "shm_open %s: %s", t->name, strerror(errno));
		t->name[0] = '\0';
		return err;
	}
	if (ftruncate(fd, (off_t)size) < 0) {
		err = -errno;
		peer_fail(p, "ftruncate: %s", strerror(errno));
		close(fd);
		table_free(t);
		return err;
	}
	m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (m == MAP_FAILED) {
		err = -errno;
		peer_fail(p, "mmap: %s", strerror(errno));
		table_free(t);
		return err;
	}
	t->hdr = m;
	t->hdr->size = size;
	t->hdr->cap = cap;
	t->slots = (struct slot *)(t->hdr + 1);
	t->mask = cap - 1;
	if (locked) {
		pthread_rwlockattr_init(&attr);
		pthread_rwlockattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
		err = pthread_rwlock_init(&t->hdr->lock, &attr);
		pthread_rwlockattr_destroy(&attr);
		if (err) {
			peer_fail(p, "pthread_rwlock_init: %s", strerror(err));
			t->locked = false;
			table_free(t);
			return -err;
		}
	}
	return 0;
}

static inline bool table_get(const struct table *t, uint64_t key, uint64_t *val)
{
	uint64_t i = shg__mix64(key) & t->mask;

	for (;;) {
		const struct slot *s = &t->slots[i];

		if (s->key == key) {
			*val = s->val;
			return true;
		}
		if (s->key == 0)
			return false;
		i = (i + 1) & t->mask;
	}
}

/* Insert or replace; the table never fills (load <= 1/2 by sizing). */
static inline void table_put(struct table *t, uint64_t key, uint64_t val)
{
	uint64_t i = shg__mix64(key) & t->mask;

	for (;;) {
		struct slot *s = &t->slots[i];

		if (s->key == key) {
			s->val = val;
			return;
		}
		if (s->key == 0) {
			s->val = val;
			s->key = key;
			t->hdr->count++;
			return;
		}
		i = (i + 1) & t->mask;
	}
}

static void table_put_batch(struct table *t, const uint64_t *keys,
			    const uint64_t *vals, unsigned n)
{
	unsigned i;

	if (t->locked)
		pthread_rwlock_wrlock(&t->hdr->lock);
	for (i = 0; i < n; i++)
		table_put(t, keys[i], vals[i]);
	if (t->locked)
		pthread_rwlock_unlock(&t->hdr->lock);
}

static int table_fill(struct table *t, uint64_t nkeys, unsigned batch)
{
	uint64_t keys[1000], vals[1000], i = 0;

	if (batch > 1000 || batch == 0)
		batch = 1000;
	while (i < nkeys) {
		unsigned n = 0;

		for (; n < batch && i < nkeys; n++, i++) {
			keys[n] = key_of(i);
			vals[n] = val_of(keys[n], 0);
		}
		table_put_batch(t, keys, vals, n);
	}
	return 0;
}

/* ---- ops -------------------------------------------------------------- */

static int create_common(struct peer *p, uint64_t nkeys, bool locked)
{
	static struct table tables[2][4];
	static unsigned used[2];
	struct table *t;
	int err;

	if (!peer_narrow(p)) {
		peer_fail(p,
			  "fixed 16 B slots hold 8 B keys and values only "
			  "(asked for %u B keys, %u B values)",
			  peer_ksize(p), peer_vsize(p));
		return -ENOTSUP;
	}
	if (used[locked] >= 4) {
		peer_fail(p, "too many tables");
		return -ENOSPC;
	}
	t = &tables[locked][used[locked]++];
	err = table_new(p, t, nkeys, locked, false);
	if (err)
		return err;
	table_fill(t, nkeys, 1000);
	p->priv = t;
	p->main_handle = t;
	p->nkeys = nkeys;
	if (locked)
		snprintf(p->variant, sizeof(p->variant),
			 "pthread rwlock (PROCESS_SHARED, default kind) around "
			 "open addressing (linear probing, load <= 0.5) in "
			 "POSIX shm; read lock per lookup, write lock per "
			 "update or batch");
	else
		snprintf(p->variant, sizeof(p->variant),
			 "open addressing (linear probing, load <= 0.5) in "
			 "POSIX shm, read with no synchronization");
	return 0;
}

static int rw_create(struct peer *p, uint64_t nkeys)
{
	return create_common(p, nkeys, true);
}

static int flat_create(struct peer *p, uint64_t nkeys)
{
	return create_common(p, nkeys, false);
}

static int rw_attach(struct peer *p, void **handle)
{
	*handle = p->priv;
	return 0;
}

static void rw_detach(struct peer *p, void *handle)
{
	(void)p;
	(void)handle;
}

static inline bool rw_get(struct table *t, uint64_t key, uint64_t *val)
{
	bool f;

	pthread_rwlock_rdlock(&t->hdr->lock);
	f = table_get(t, key, val);
	pthread_rwlock_unlock(&t->hdr->lock);
	return f;
}

static bool rw_get_one(struct peer *p, void *handle, uint64_t key,
		       uint64_t *val)
{
	struct table *h = handle;

	(void)p;
	return rw_get(h, key, val);
}

static int rw_lookup_loop(struct peer *p, void *handle, struct lookup_job *j)
{
	struct table *t = handle;

	(void)p;
	PEER_LOOKUP_LOOP(j, t, rw_get);
	return 0;
}

static int flat_lookup_loop(struct peer *p, void *handle, struct lookup_job *j)
{
	struct table *t = handle;

	(void)p;
	PEER_LOOKUP_LOOP(j, t, table_get);
	return 0;
}

static int rw_update(struct peer *p, void *handle, uint64_t key, uint64_t val)
{
	struct table *t = handle;

	(void)p;
	pthread_rwlock_wrlock(&t->hdr->lock);
	table_put(t, key, val);
	pthread_rwlock_unlock(&t->hdr->lock);
	return 0;
}

static int rw_update_batch(struct peer *p, void *handle, const uint64_t *keys,
			   const uint64_t *vals, unsigned n)
{
	(void)p;
	table_put_batch(handle, keys, vals, n);
	return 0;
}

static int rw_build(struct peer *p, uint64_t nkeys, unsigned batch,
		    uint64_t *ns)
{
	struct table t;
	uint64_t t0;
	int err;

	err = table_new(p, &t, nkeys, true, true);
	if (err)
		return err;
	t0 = bench_now_ns();
	table_fill(&t, nkeys, batch);
	*ns = bench_now_ns() - t0;
	table_free(&t);
	return 0;
}

static int rw_bytes(struct peer *p, const char **variants, long long *bytes,
		    unsigned *n)
{
	struct table *t = p->priv;

	variants[0] = "shm segment size (header + 16 B slots, load <= 0.5)";
	bytes[0] = (long long)t->hdr->size;
	*n = 1;
	return 0;
}

static void rw_destroy(struct peer *p)
{
	if (p->priv)
		table_free(p->priv);
	p->priv = NULL;
}

const struct peer_ops peer_rwlock_ops = {
	.system = "rwlock-shm",
	.create = rw_create,
	.attach = rw_attach,
	.detach = rw_detach,
	.lookup_loop = rw_lookup_loop,
	.lookup_one = rw_get_one,
	.update = rw_update,
	.update_batch = rw_update_batch,
	.build = rw_build,
	.bytes = rw_bytes,
	.destroy = rw_destroy,
};

const struct peer_ops peer_flat_ops = {
	.system = "flat-nolock",
	.read_only = true,
	.create = flat_create,
	.attach = rw_attach,
	.detach = rw_detach,
	.lookup_loop = flat_lookup_loop,
	.bytes = rw_bytes,
	.destroy = rw_destroy,
};
