/* SPDX-License-Identifier: MIT */
/*
 * The LMDB peer: an environment in a temporary directory on /dev/shm,
 * opened with MDB_NOSYNC | MDB_NOMETASYNC | MDB_WRITEMAP (how users who
 * want speed over durability run it), one unnamed database with
 * MDB_INTEGERKEY (8-byte native keys, 8-byte values; plain byte keys
 * without MDB_INTEGERKEY for other key sizes, values of any size). Readers use one
 * read-only txn per lookup, recycled with mdb_txn_renew / mdb_txn_reset;
 * writers one txn per update or per batch. Each worker process opens its
 * own environment after fork(), as LMDB requires.
 */
#include "config.h"

#ifdef HAVE_LMDB
#include <errno.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "peers.h"

#define LMDB_FLAGS (MDB_NOSYNC | MDB_NOMETASYNC | MDB_WRITEMAP)

struct lmdb_env {
	char dir[96];
	char data[128];
	char lock[128];
	size_t mapsize;
	MDB_env *env;
	MDB_dbi dbi;
	MDB_txn *rtxn; /* reset read txn of this process (readers) */
	unsigned ksize, vsize; /* bytes per key / value */
};

static size_t map_size(uint64_t nkeys, unsigned ksize, unsigned vsize)
{
	size_t s = (size_t)nkeys * (1024 + 4 * ((size_t)ksize + vsize));

	return s < (1ull << 30) ? (1ull << 30) : s;
}

static int lfail(struct peer *p, const char *what, int rc)
{
	peer_fail(p, "%s: %s", what, mdb_strerror(rc));
	return rc > 0 ? -rc : -EIO;
}

/* Open (and with @create: create the database in) the environment. */
static int env_open(struct peer *p, struct lmdb_env *e, bool create)
{
	MDB_txn *txn;
	int rc;

	rc = mdb_env_create(&e->env);
	if (rc)
		return lfail(p, "mdb_env_create", rc);
	rc = mdb_env_set_mapsize(e->env, e->mapsize);
	if (!rc)
		rc = mdb_env_set_maxreaders(e->env, 126);
	if (!rc)
		rc = mdb_env_open(e->env, e->dir, LMDB_FLAGS, 0600);
	if (rc) {
		mdb_env_close(e->env);
		e->env = NULL;
		return lfail(p, "mdb_env_open", rc);
	}
	rc = mdb_txn_begin(e->env, NULL, create ? 0 : MDB_RDONLY, &txn);
	if (rc) {
		mdb_env_close(e->env);
		e->env = NULL;
		return lfail(p, "mdb_txn_begin", rc);
	}
	rc = mdb_dbi_open(txn, NULL,
			  (e->ksize == 8 ? MDB_INTEGERKEY : 0) |
				  (create ? MDB_CREATE : 0),
			  &e->dbi);
	if (!rc)
		rc = mdb_txn_commit(txn);
	else
		mdb_txn_abort(txn);
	if (rc) {
		mdb_env_close(e->env);
		e->env = NULL;
		return lfail(p, "mdb_dbi_open", rc);
	}
	return 0;
}

static void env_remove(struct lmdb_env *e)
{
	if (e->env)
		mdb_env_close(e->env);
	e->env = NULL;
	if (e->dir[0]) {
		unlink(e->data);
		unlink(e->lock);
		rmdir(e->dir);
	}
	e->dir[0] = '\0';
}

/* A new empty directory @dir (registered for removal at exit). */
static int env_dir(struct peer *p, struct lmdb_env *e, const char *tag,
		   bool register_cleanup)
{
	snprintf(e->dir, sizeof(e->dir), "/dev/shm/shg-bench-%d-lmdb-%s",
		 (int)getpid(), tag);
	snprintf(e->data, sizeof(e->data), "%s/data.mdb", e->dir);
	snprintf(e->lock, sizeof(e->lock), "%s/lock.mdb", e->dir);
	if (register_cleanup) {
		bench_cleanup_path(e->dir, true);
		bench_cleanup_path(e->data, false);
		bench_cleanup_path(e->lock, false);
	}
	if (mkdir(e->dir, 0700) < 0) {
		int err = -errno;

		peer_fail(p, "mkdir %s: %s", e->dir, strerror(errno));
		e->dir[0] = '\0';
		return err;
	}
	return 0;
}

/* put_batch() for keys or values wider than 8 bytes. */
static int put_batch_wide(struct peer *p, struct lmdb_env *e,
			  const uint64_t *keys, const uint64_t *vals,
			  unsigned n)
{
	unsigned char kb[PEER_KEY_MAX], vb[PEER_VAL_MAX];
	MDB_txn *txn;
	unsigned i;
	int rc;

	rc = mdb_txn_begin(e->env, NULL, 0, &txn);
	if (rc)
		return lfail(p, "mdb_txn_begin", rc);
	for (i = 0; i < n; i++) {
		MDB_val k = { e->ksize, kb };
		MDB_val v = { e->vsize, vb };

		key_fill(kb, keys[i], e->ksize);
		val_fill(vb, vals[i], e->vsize);
		rc = mdb_put(txn, e->dbi, &k, &v, 0);
		if (rc) {
			mdb_txn_abort(txn);
			return lfail(p, "mdb_put", rc);
		}
	}
	rc = mdb_txn_commit(txn);
	if (rc)
		return lfail(p, "mdb_txn_commit", rc);
	return 0;
}

static int put_batch(struct peer *p, struct lmdb_env *e, const uint64_t *keys,
		     const uint64_t *vals, unsigned n)
{
	MDB_txn *txn;
	unsigned i;
	int rc;

	if (e->ksize != 8 || e->vsize != 8)
		return put_batch_wide(p, e, keys, vals, n);
	rc = mdb_txn_begin(e->env, NULL, 0, &txn);
	if (rc)
		return lfail(p, "mdb_txn_begin", rc);
	for (i = 0; i < n; i++) {
		MDB_val k = { sizeof(keys[i]), (void *)&keys[i] };
		MDB_val v = { sizeof(vals[i]), (void *)&vals[i] };

		rc = mdb_put(txn, e->dbi, &k, &v, 0);
		if (rc) {
			mdb_txn_abort(txn);
			return lfail(p, "mdb_put", rc);
		}
	}
	rc = mdb_txn_commit(txn);
	if (rc)
		return lfail(p, "mdb_txn_commit", rc);
	return 0;
}

static int fill(struct peer *p, struct lmdb_env *e, uint64_t nkeys,
		unsigned batch)
{
	uint64_t keys[1000], vals[1000], i = 0;
	int err;

	if (batch > 1000 || batch == 0)
		batch = 1000;
	while (i < nkeys) {
		unsigned n = 0;

		for (; n < batch && i < nkeys; n++, i++) {
			keys[n] = key_of(i);
			vals[n] = val_of(keys[n], 0);
		}
		err = put_batch(p, e, keys, vals, n);
		if (err)
			return err;
	}
	return 0;
}

static int l_create(struct peer *p, uint64_t nkeys)
{
	static unsigned counter;
	struct lmdb_env *e = calloc(1, sizeof(*e));
	char tag[16];
	int err;

	if (!e)
		return -ENOMEM;
	snprintf(tag, sizeof(tag), "%u", counter++);
	e->ksize = peer_ksize(p);
	e->vsize = peer_vsize(p);
	e->mapsize = map_size(nkeys, e->ksize, e->vsize);
	err = env_dir(p, e, tag, true);
	if (!err)
		err = env_open(p, e, true);
	if (!err)
		err = fill(p, e, nkeys, 1000);
	if (err) {
		env_remove(e);
		free(e);
		return err;
	}
	p->priv = e;
	p->main_handle = e;
	p->nkeys = nkeys;
	snprintf(p->variant, sizeof(p->variant),
		 "LMDB %d.%d.%d, /dev/shm, MDB_NOSYNC|MDB_NOMETASYNC|"
		 "MDB_WRITEMAP (no durability), %s; read txn per "
		 "lookup (renew/reset), write txn per update or batch",
		 MDB_VERSION_MAJOR, MDB_VERSION_MINOR, MDB_VERSION_PATCH,
		 e->ksize == 8 ? "MDB_INTEGERKEY" : "byte keys");
	if (e->ksize != 8 || e->vsize != 8)
		peer_variant_add(p, "; %u B keys, %u B values", e->ksize,
				 e->vsize);
	return 0;
}

static int l_attach(struct peer *p, void **handle)
{
	struct lmdb_env *base = p->priv;
	struct lmdb_env *e = calloc(1, sizeof(*e));
	int err, rc;

	if (!e)
		return -ENOMEM;
	*e = *base;
	e->env = NULL;
	e->rtxn = NULL;
	err = env_open(p, e, false);
	if (err) {
		free(e);
		return err;
	}
	rc = mdb_txn_begin(e->env, NULL, MDB_RDONLY, &e->rtxn);
	if (rc) {
		mdb_env_close(e->env);
		free(e);
		return lfail(p, "mdb_txn_begin(RDONLY)", rc);
	}
	mdb_txn_reset(e->rtxn);
	*handle = e;
	return 0;
}

static void l_detach(struct peer *p, void *handle)
{
	struct lmdb_env *e = handle;

	(void)p;
	if (!e)
		return;
	if (e->rtxn)
		mdb_txn_abort(e->rtxn);
	mdb_env_close(e->env);
	free(e);
}

static inline bool l_get(struct lmdb_env *e, uint64_t key, uint64_t *val)
{
	MDB_val k = { sizeof(key), &key }, v;
	bool found = false;

	if (mdb_txn_renew(e->rtxn) != 0)
		return false;
	if (mdb_get(e->rtxn, e->dbi, &k, &v) == 0 && v.mv_size == 8) {
		memcpy(val, v.mv_data, 8);
		found = true;
	}
	mdb_txn_reset(e->rtxn);
	return found;
}

static inline bool l_get_wide(struct lmdb_env *e, uint64_t key, uint64_t *val)
{
	unsigned char kb[PEER_KEY_MAX];
	MDB_val k = { e->ksize, kb }, v;
	bool found = false;

	key_fill(kb, key, e->ksize);
	if (mdb_txn_renew(e->rtxn) != 0)
		return false;
	if (mdb_get(e->rtxn, e->dbi, &k, &v) == 0)
		found = val_read(v.mv_data, v.mv_size, e->vsize, val);
	mdb_txn_reset(e->rtxn);
	return found;
}

static bool l_get_one(struct peer *p, void *handle, uint64_t key, uint64_t *val)
{
	struct lmdb_env *h = handle;

	(void)p;
	if (h->ksize != 8 || h->vsize != 8)
		return l_get_wide(h, key, val);
	return l_get(h, key, val);
}

static int l_lookup_loop(struct peer *p, void *handle, struct lookup_job *j)
{
	struct lmdb_env *e = handle;

	(void)p;
	if (e->ksize != 8 || e->vsize != 8)
		PEER_LOOKUP_LOOP(j, e, l_get_wide);
	else
		PEER_LOOKUP_LOOP(j, e, l_get);
	return 0;
}

static int l_update(struct peer *p, void *handle, uint64_t key, uint64_t val)
{
	return put_batch(p, handle, &key, &val, 1);
}

static int l_update_batch(struct peer *p, void *handle, const uint64_t *keys,
			  const uint64_t *vals, unsigned n)
{
	return put_batch(p, handle, keys, vals, n);
}

static int l_build(struct peer *p, uint64_t nkeys, unsigned batch, uint64_t *ns)
{
	static bool registered;
	struct lmdb_env e = { .ksize = peer_ksize(p), .vsize = peer_vsize(p) };
	uint64_t t0;
	int err;

	e.mapsize = map_size(nkeys, e.ksize, e.vsize);
	err = env_dir(p, &e, "build", !registered);
	registered = true;
	if (!err)
		err = env_open(p, &e, true);
	if (!err) {
		t0 = bench_now_ns();
		err = fill(p, &e, nkeys, batch);
		*ns = bench_now_ns() - t0;
	}
	env_remove(&e);
	return err;
}

/* Bytes of the tree pages (branch + leaf + overflow) seen by @txn. */
static int tree_bytes(struct peer *p, struct lmdb_env *e, MDB_txn *txn,
		      long long *bytes)
{
	MDB_stat st;
	int rc = mdb_stat(txn, e->dbi, &st);

	if (rc)
		return lfail(p, "mdb_stat", rc);
	*bytes = (long long)st.ms_psize *
		 (long long)(st.ms_branch_pages + st.ms_leaf_pages +
			     st.ms_overflow_pages);
	return 0;
}

/* An old snapshot held by a read txn left open (a "long reader"). */
static int l_hold(struct peer *p, void *handle, void **tok, long long *bytes)
{
	struct lmdb_env *e = handle;
	int rc, err;

	if (!e->rtxn)
		return lfail(p, "hold", EINVAL);
	rc = mdb_txn_renew(e->rtxn);
	if (rc)
		return lfail(p, "mdb_txn_renew", rc);
	err = tree_bytes(p, e, e->rtxn, bytes);
	if (err) {
		mdb_txn_reset(e->rtxn);
		return err;
	}
	*tok = e->rtxn;
	return 0;
}

static void l_release(struct peer *p, void *handle, void *tok)
{
	(void)p;
	(void)handle;
	mdb_txn_reset(tok);
}

/* used = pages of the file in use or held (last_pgno + 1); LMDB has no
 * retired-unfreed count (freed pages go to its free list). */
static int l_mem(struct peer *p, bool settle, long long *used,
		 long long *retired, long long *live)
{
	struct lmdb_env *e = p->priv;
	MDB_envinfo info;
	MDB_stat st;
	MDB_txn *txn;
	int rc, err;

	(void)settle;
	rc = mdb_env_info(e->env, &info);
	if (!rc)
		rc = mdb_env_stat(e->env, &st);
	if (rc)
		return lfail(p, "mdb_env_info", rc);
	*used = (long long)st.ms_psize * (long long)(info.me_last_pgno + 1);
	*retired = -1;
	rc = mdb_txn_begin(e->env, NULL, MDB_RDONLY, &txn);
	if (rc)
		return lfail(p, "mdb_txn_begin", rc);
	err = tree_bytes(p, e, txn, live);
	mdb_txn_abort(txn);
	return err;
}

static int l_bytes(struct peer *p, const char **variants, long long *bytes,
		   unsigned *n)
{
	struct lmdb_env *e = p->priv;
	MDB_envinfo info;
	MDB_stat st;
	struct stat sb;
	MDB_txn *txn;
	int rc;

	rc = mdb_env_info(e->env, &info);
	if (!rc)
		rc = mdb_txn_begin(e->env, NULL, MDB_RDONLY, &txn);
	if (rc)
		return lfail(p, "mdb_env_info", rc);
	rc = mdb_stat(txn, e->dbi, &st);
	mdb_txn_abort(txn);
	if (rc)
		return lfail(p, "mdb_stat", rc);
	if (stat(e->data, &sb) < 0) {
		peer_fail(p, "stat %s: %s", e->data, strerror(errno));
		return -errno;
	}
	*n = 0;
	variants[*n] = "psize x tree pages (branch + leaf + overflow)";
	bytes[(*n)++] = (long long)st.ms_psize *
			(long long)(st.ms_branch_pages + st.ms_leaf_pages +
				    st.ms_overflow_pages);
	variants[*n] = "psize x pages used in the file (last_pgno + 1)";
	bytes[(*n)++] =
		(long long)st.ms_psize * (long long)(info.me_last_pgno + 1);
	variants[*n] = "data file allocated (st_blocks x 512)";
	bytes[(*n)++] = (long long)sb.st_blocks * 512;
	variants[*n] = "data file size (st_size = map size with WRITEMAP)";
	bytes[(*n)++] = (long long)sb.st_size;
	return 0;
}

static void l_destroy(struct peer *p)
{
	struct lmdb_env *e = p->priv;

	if (!e)
		return;
	env_remove(e);
	free(e);
	p->priv = NULL;
	p->main_handle = NULL;
}

const struct peer_ops peer_lmdb_ops = {
	.hold = l_hold,
	.release = l_release,
	.mem = l_mem,
	.system = "lmdb",
	.create = l_create,
	.attach = l_attach,
	.detach = l_detach,
	.lookup_loop = l_lookup_loop,
	.lookup_one = l_get_one,
	.update = l_update,
	.update_batch = l_update_batch,
	.build = l_build,
	.bytes = l_bytes,
	.destroy = l_destroy,
};
#endif /* HAVE_LMDB */
