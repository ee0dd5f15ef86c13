/* SPDX-License-Identifier: MIT */
/*
 * Replication messages without a network (lib/repl_delta.c): a primary
 * segment A commits random changes to a map; each version is encoded as
 * a delta against the previously shipped one and applied to a replica
 * segment B, whose export must equal A's byte for byte after every step
 * (u64 and bytes keys, leaves splitting and collapsing, deltas spanning
 * several versions). Deltas hold only the changed entries. Damaged
 * deltas (every byte flipped, every truncation) are refused and change
 * nothing; gaps are -ESTALE; duplicates are skipped; re-applying the
 * last delta after a lost state update gives the same map; graphs that
 * are not maps of scalars go as snapshot frames. The roots the follower
 * applies into are read-only replicas for local writers (SHG_EREPLICA).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "testutil.h"

static void assert_same_export(struct shg_seg *a, struct shg_seg *b,
			       const char *root)
{
	size_t la, lb;
	uint8_t *pa = tu_export_mem(a, root, &la);
	uint8_t *pb = tu_export_mem(b, root, &lb);

	assert_int_equal(la, lb);
	assert_memory_equal(pa, pb, la);
	free(pa);
	free(pb);
}

/* ---- a primary with a map, changed by random batches --------------------- */

struct batch {
	uint64_t rng;
	unsigned nops;
	bool bytes; /* bytes keys and values */
	unsigned keyspace;
};

static void bkey(uint64_t k, char *buf, size_t *len)
{
	/* Lengths 0..11: the empty key and prefixes of one another too. */
	*len = (size_t)snprintf(buf, 16, "k%llu", (unsigned long long)k) % 12;
}

static int batch_fn(struct shg_txn *txn, void *arg)
{
	struct batch *b = arg;
	uint64_t s = b->rng, r, k;
	struct shg_val v;
	char key[16], val[40];
	size_t kl;
	unsigned i;
	int err = 0;

	if (!shg_txn_root_node(txn).v)
		err = shg_txn_map_new(txn, SHG_REF_ROOT,
				      b->bytes ? SHG_KIND_BYTES : SHG_KIND_U64,
				      b->bytes ? SHG_KIND_BYTES : SHG_KIND_U64);
	for (i = 0; !err && i < b->nops; i++) {
		r = tu_rng_next(&s);
		k = r % b->keyspace;
		bkey(k, key, &kl);
		if ((r >> 32) % 4 == 0) {
			err = b->bytes ?
				      shg_txn_map_del_bytes(txn, SHG_REF_ROOT,
							    key, kl) :
				      shg_txn_map_del_u64(txn, SHG_REF_ROOT, k);
			if (err == -ENOENT)
				err = 0;
			continue;
		}
		if (b->bytes) {
			v.kind = SHG_KIND_BYTES;
			v.bytes.p = val;
			v.bytes.len = (r >> 40) % 32; /* 0: empty value */
			memset(val, 'a' + (int)(r % 26), sizeof(val));
			err = shg_txn_map_put_bytes(txn, SHG_REF_ROOT, key, kl,
						    &v);
		} else {
			v.kind = SHG_KIND_U64;
			v.u64 = r >> 8;
			err = shg_txn_map_put_u64(txn, SHG_REF_ROOT, k, &v);
		}
	}
	return err;
}

static void commit_batch(struct shg_root *r, struct batch *b)
{
	tu_ok(shg_update(r, batch_fn, b, 0));
	(void)tu_rng_next(&b->rng);
}

/* Put keys [@lo, @hi) = @val and delete key @del (u64 map, exists). */
struct fixed {
	uint64_t lo, hi, val, del;
};

static int fixed_fn(struct shg_txn *txn, void *arg)
{
	struct fixed *f = arg;
	struct shg_val v = { .kind = SHG_KIND_U64 };
	uint64_t k;
	int err = 0;

	v.u64 = f->val;
	for (k = f->lo; !err && k < f->hi; k++)
		err = shg_txn_map_put_u64(txn, SHG_REF_ROOT, k, &v);
	if (!err && f->del != UINT64_MAX)
		err = shg_txn_map_del_u64(txn, SHG_REF_ROOT, f->del);
	return err;
}

/* Ship the current version of @ra: a delta from *@base, or a snapshot
 * frame when *@base is NULL; apply it to @b. Returns the new base pin. */
static struct shg_repl_msg_info ship(struct shg_seg *a, struct shg_root *ra,
				     struct shg_pin **base, struct shg_seg *b)
{
	struct shg_repl_msg_info mi;
	struct shg_pin *cur;
	void *msg;
	size_t len;

	tu_ok(shg_pin_current(ra, &cur));
	if (*base)
		tu_ok(shg_repl_delta(a, shg_pin_version(*base),
				     shg_pin_version(cur), &msg, &len));
	else
		tu_ok(shg_repl_snap(ra, shg_pin_version(cur),
				    SHG_REPL_SNAP_RESET, &msg, &len));
	tu_ok(shg_repl_parse(msg, len, &mi));
	assert_int_equal(mi.len, len);
	tu_ok(shg_repl_apply(b, shg_root_name(ra), msg, len, 0));
	free(msg);
	if (*base)
		shg_unpin(*base);
	*base = cur;
	return mi;
}

static void run_converge(bool bytes, unsigned keyspace)
{
	char na[64], nb[64];
	struct shg_seg *a = tu_create(na, 0), *b = tu_create(nb, 0);
	struct batch bt = {
		.rng = 42, .nops = 300, .bytes = bytes, .keyspace = keyspace
	};
	struct shg_repl_msg_info mi;
	struct shg_repl_state st;
	struct shg_pin *base = NULL;
	struct shg_root *ra;
	unsigned step;

	tu_ok(shg_root_create(a, "m", &ra));
	commit_batch(ra, &bt);
	mi = ship(a, ra, &base, b);
	assert_int_equal(mi.kind, SHG_REPL_SNAP);
	assert_same_export(a, b, "m");
	for (step = 0; step < 60; step++) {
		/* Big and small batches; some spanning several versions;
		 * late ones mostly deletes, so leaves collapse. */
		bt.nops = step % 3 ? 1 + step % 7 : 200;
		commit_batch(ra, &bt);
		if (step % 4 == 1)
			commit_batch(ra, &bt);
		mi = ship(a, ra, &base, b);
		assert_int_equal(mi.kind, SHG_REPL_DELTA);
		assert_true(mi.nput + mi.ndel <= 2 * bt.nops);
		assert_same_export(a, b, "m");
		tu_ok(shg_repl_state(b, "m", &st));
		assert_int_equal(st.seq, mi.seq);
	}
	shg_unpin(base);
	shg_root_close(ra);
	TU_CHECK_SOUND(b);
	tu_destroy(a, na);
	tu_destroy(b, nb);
}

static void test_repl_converge_u64(void **state)
{
	(void)state;
	run_converge(false, 5000);
	run_converge(false, 40); /* dense: leaves and single entries */
}

static void test_repl_converge_bytes(void **state)
{
	(void)state;
	run_converge(true, 3000);
	run_converge(true, 30);
}

/* A delta is as small as the change: one put in a large map is one entry. */
static void test_repl_delta_size_of_change(void **state)
{
	char na[64], nb[64];
	struct shg_seg *a = tu_create(na, 0), *b = tu_create(nb, 0);
	struct batch bt = { .rng = 7, .nops = 20000, .keyspace = 1u << 30 };
	struct shg_repl_msg_info mi;
	struct fixed fx;
	struct shg_pin *base = NULL;
	struct shg_root *ra;

	(void)state;
	tu_ok(shg_root_create(a, "m", &ra));
	commit_batch(ra, &bt);
	mi = ship(a, ra, &base, b);
	fx = (struct fixed){ (1ull << 40), (1ull << 40) + 1, 5, UINT64_MAX };
	tu_ok(shg_update(ra, fixed_fn, &fx, 0));
	mi = ship(a, ra, &base, b);
	assert_int_equal(mi.nput, 1);
	assert_int_equal(mi.ndel, 0);
	assert_int_equal(mi.len, 64 + 16 + 8);
	assert_same_export(a, b, "m");
	/* One delete: one key. */
	fx = (struct fixed){ 0, 0, 0, (1ull << 40) };
	tu_ok(shg_update(ra, fixed_fn, &fx, 0));
	mi = ship(a, ra, &base, b);
	assert_int_equal(mi.nput, 0);
	assert_int_equal(mi.ndel, 1);
	assert_same_export(a, b, "m");
	/* Nothing changed in content (no edits): an empty delta. */
	bt.nops = 0;
	commit_batch(ra, &bt);
	mi = ship(a, ra, &base, b);
	assert_int_equal(mi.nput + mi.ndel, 0);
	assert_same_export(a, b, "m");
	shg_unpin(base);
	shg_root_close(ra);
	tu_destroy(a, na);
	tu_destroy(b, nb);
}

/* ---- refusals ------------------------------------------------------------ */

static void test_repl_corrupt_refused(void **state)
{
	char na[64], nb[64];
	struct shg_seg *a = tu_create(na, 0), *b = tu_create(nb, 0);
	struct batch bt = { .rng = 9, .nops = 100, .keyspace = 1000 };
	struct fixed fx;
	struct shg_repl_state st0, st;
	struct shg_pin *base = NULL, *cur;
	struct shg_root *ra;
	size_t len, la, lb, i;
	uint8_t *msg, *bad, *e0, *e1;
	void *m;
	int err;

	(void)state;
	tu_ok(shg_root_create(a, "m", &ra));
	commit_batch(ra, &bt);
	(void)ship(a, ra, &base, b);
	fx = (struct fixed){ 2000, 2004, 77, 2000 };
	tu_ok(shg_update(ra, fixed_fn, &fx, 0));
	tu_ok(shg_pin_current(ra, &cur));
	tu_ok(shg_repl_delta(a, shg_pin_version(base), shg_pin_version(cur), &m,
			     &len));
	msg = m;
	tu_ok(shg_repl_state(b, "m", &st0));
	e0 = tu_export_mem(b, "m", &la);
	bad = malloc(len);
	assert_non_null(bad);
	/* Every byte flipped, one at a time: refused, nothing changed. */
	for (i = 0; i < len; i++) {
		memcpy(bad, msg, len);
		bad[i] ^= 0x5a;
		err = shg_repl_apply(b, "m", bad, len, 0);
		assert_true(err < 0);
		assert_int_not_equal(err, -ESTALE);
	}
	/* Every truncation. */
	for (i = 0; i < len; i++)
		assert_true(shg_repl_apply(b, "m", msg, i, 0) < 0);
	assert_int_equal(shg_repl_parse(msg, 4, NULL), SHG_ETOOSMALL);
	/* 2000 was put and deleted in one version: not in the delta. */
	assert_int_equal(len, 64 + 3 * 16 + 8);
	assert_int_equal(shg_repl_parse(msg, len - 1, NULL), SHG_ETRUNC);
	memcpy(bad, msg, len);
	bad[0] = 'X';
	assert_int_equal(shg_repl_parse(bad, len, NULL), SHG_EMAGIC);
	memcpy(bad, msg, len);
	bad[70] ^= 1; /* payload: only the file CRC sees it */
	assert_int_equal(shg_repl_parse(bad, len, NULL), -EBADMSG);
	tu_ok(shg_repl_state(b, "m", &st));
	assert_memory_equal(&st, &st0, sizeof(st));
	e1 = tu_export_mem(b, "m", &lb);
	assert_int_equal(la, lb);
	assert_memory_equal(e0, e1, la);
	free(e0);
	free(e1);
	/* The intact delta still applies; again: a duplicate. */
	tu_ok(shg_repl_apply(b, "m", msg, len, 0));
	assert_int_equal(shg_repl_apply(b, "m", msg, len, 0), SHG_REPL_SKIPPED);
	assert_same_export(a, b, "m");
	free(bad);
	free(msg);
	shg_unpin(cur);
	shg_unpin(base);
	shg_root_close(ra);
	TU_CHECK_SOUND(b);
	tu_destroy(a, na);
	tu_destroy(b, nb);
}

/* A delta whose parent is not what the replica has: -ESTALE, no change;
 * a snapshot frame resyncs; a delta to an empty replica is a gap too. */
static void test_repl_gap_then_snapshot(void **state)
{
	char na[64], nb[64];
	struct shg_seg *a = tu_create(na, 0), *b = tu_create(nb, 0);
	struct batch bt = { .rng = 11, .nops = 50, .keyspace = 500 };
	struct shg_pin *base = NULL, *mid, *cur;
	struct shg_root *ra;
	void *d1, *d2, *snap;
	size_t l1, l2, ls;

	(void)state;
	tu_ok(shg_root_create(a, "m", &ra));
	commit_batch(ra, &bt);
	tu_ok(shg_pin_current(ra, &base));
	commit_batch(ra, &bt);
	tu_ok(shg_pin_current(ra, &mid));
	commit_batch(ra, &bt);
	tu_ok(shg_pin_current(ra, &cur));
	tu_ok(shg_repl_delta(a, shg_pin_version(base), shg_pin_version(mid),
			     &d1, &l1));
	tu_ok(shg_repl_delta(a, shg_pin_version(mid), shg_pin_version(cur), &d2,
			     &l2));
	/* Empty replica: a gap. */
	assert_int_equal(shg_repl_apply(b, "m", d1, l1, 0), -ESTALE);
	tu_ok(shg_repl_snap(ra, shg_pin_version(base), 0, &snap, &ls));
	/* Under NO_SNAP a snapshot frame still applies to an empty one. */
	tu_ok(shg_repl_apply(b, "m", snap, ls, SHG_REPL_NO_SNAP));
	assert_int_equal(shg_repl_apply(b, "m", snap, ls, 0), SHG_REPL_SKIPPED);
	/* d2 skips d1: a gap, nothing changed. */
	assert_int_equal(shg_repl_apply(b, "m", d2, l2, 0), -ESTALE);
	tu_ok(shg_repl_apply(b, "m", d1, l1, 0));
	tu_ok(shg_repl_apply(b, "m", d2, l2, 0));
	assert_same_export(a, b, "m");
	free(d1);
	free(d2);
	free(snap);
	/* A newer periodic snapshot is skipped under NO_SNAP; a RESET one
	 * (the chain restarts there) is applied. */
	commit_batch(ra, &bt);
	shg_unpin(base);
	tu_ok(shg_pin_current(ra, &base));
	tu_ok(shg_repl_snap(ra, shg_pin_version(base), 0, &snap, &ls));
	assert_int_equal(shg_repl_apply(b, "m", snap, ls, SHG_REPL_NO_SNAP),
			 SHG_REPL_SKIPPED);
	free(snap);
	tu_ok(shg_repl_snap(ra, shg_pin_version(base), SHG_REPL_SNAP_RESET,
			    &snap, &ls));
	tu_ok(shg_repl_apply(b, "m", snap, ls, SHG_REPL_NO_SNAP));
	assert_same_export(a, b, "m");
	assert_int_equal(shg_repl_snap(ra, shg_pin_version(base), 2, &d1, &l1),
			 -EINVAL);
	free(snap);
	shg_unpin(base);
	shg_unpin(mid);
	shg_unpin(cur);
	shg_root_close(ra);
	tu_destroy(a, na);
	tu_destroy(b, nb);
}

/* The state is committed after the data: a crash between the two leaves
 * it one message behind; the redelivered delta re-applies to the same
 * map. Simulated by putting the state record back by hand. */
struct rollback {
	uint8_t rec[24];
};

static int rollback_fn(struct shg_txn *txn, void *arg)
{
	struct rollback *rb = arg;
	struct shg_val v = { .kind = SHG_KIND_BYTES };

	v.bytes.p = rb->rec;
	v.bytes.len = sizeof(rb->rec);
	return shg_txn_map_put_bytes(txn, SHG_REF_ROOT, "m", 1, &v);
}

static void test_repl_reapply_after_lost_state(void **state)
{
	char na[64], nb[64];
	struct shg_seg *a = tu_create(na, 0), *b = tu_create(nb, 0);
	struct batch bt = { .rng = 13, .nops = 300, .keyspace = 400 };
	struct shg_repl_state st;
	struct shg_pin *base = NULL, *cur;
	struct rollback rb;
	struct shg_root *ra, *rs;
	void *d;
	size_t l;
	unsigned i;

	(void)state;
	tu_ok(shg_root_create(a, "m", &ra));
	commit_batch(ra, &bt);
	(void)ship(a, ra, &base, b);
	tu_ok(shg_repl_state(b, "m", &st));
	for (i = 0; i < 8; i++) {
		rb.rec[i] = (uint8_t)(st.seq >> (8 * i));
		rb.rec[8 + i] = (uint8_t)(st.commit_ns >> (8 * i));
		rb.rec[16 + i] = (uint8_t)(st.applied_ns >> (8 * i));
	}
	bt.nops = 60; /* puts and deletes */
	commit_batch(ra, &bt);
	tu_ok(shg_pin_current(ra, &cur));
	tu_ok(shg_repl_delta(a, shg_pin_version(base), shg_pin_version(cur), &d,
			     &l));
	tu_ok(shg_repl_apply(b, "m", d, l, 0));
	tu_ok(shg_root_open(b, "shg.repl", &rs));
	tu_ok(shg_update(rs, rollback_fn, &rb, 0));
	shg_root_close(rs);
	tu_ok(shg_repl_apply(b, "m", d, l, 0)); /* again, as redelivered */
	assert_same_export(a, b, "m");
	free(d);
	shg_unpin(cur);
	shg_unpin(base);
	shg_root_close(ra);
	tu_destroy(a, na);
	tu_destroy(b, nb);
}

/* ---- graphs without a delta encoding -------------------------------------- */

static int vec_fn(struct shg_txn *txn, void *arg)
{
	struct shg_val v = { .kind = SHG_KIND_U64 };
	int err = 0;

	(void)arg;
	if (!shg_txn_root_node(txn).v)
		err = shg_txn_vec_new(txn, SHG_REF_ROOT, SHG_KIND_U64);
	v.u64 = 5;
	return err ? err : shg_txn_vec_push(txn, SHG_REF_ROOT, &v);
}

static int nodemap_fn(struct shg_txn *txn, void *arg)
{
	int err =
		shg_txn_map_new(txn, SHG_REF_ROOT, SHG_KIND_U64, SHG_KIND_NODE);
	(void)arg;
	return err;
}

static void test_repl_other_graphs_by_snapshot(void **state)
{
	char na[64], nb[64];
	struct shg_seg *a = tu_create(na, 0), *b = tu_create(nb, 0);
	struct shg_pin *p1, *p2;
	struct shg_root *ra;
	void *m;
	size_t l;

	(void)state;
	tu_ok(shg_root_create(a, "v", &ra));
	tu_ok(shg_update(ra, vec_fn, NULL, 0));
	tu_ok(shg_pin_current(ra, &p1));
	tu_ok(shg_update(ra, vec_fn, NULL, 0));
	tu_ok(shg_pin_current(ra, &p2));
	assert_int_equal(shg_repl_delta(a, shg_pin_version(p1),
					shg_pin_version(p2), &m, &l),
			 -ENOTSUP);
	/* Reversed order is a caller's mistake. */
	assert_int_equal(shg_repl_delta(a, shg_pin_version(p2),
					shg_pin_version(p1), &m, &l),
			 -EINVAL);
	tu_ok(shg_repl_snap(ra, shg_pin_version(p2), 0, &m, &l));
	tu_ok(shg_repl_apply(b, "v", m, l, 0));
	free(m);
	assert_same_export(a, b, "v");
	shg_unpin(p1);
	shg_unpin(p2);
	/* A map of node values: snapshots too. */
	tu_ok(shg_update(ra, nodemap_fn, NULL, 0));
	tu_ok(shg_pin_current(ra, &p1));
	tu_ok(shg_update(ra, nodemap_fn, NULL, 0));
	tu_ok(shg_pin_current(ra, &p2));
	assert_int_equal(shg_repl_delta(a, shg_pin_version(p1),
					shg_pin_version(p2), &m, &l),
			 -ENOTSUP);
	shg_unpin(p1);
	shg_unpin(p2);
	assert_int_equal(shg_repl_apply(b, "shg.repl", "x", 1, 0), -EINVAL);
	shg_root_close(ra);
	tu_destroy(a, na);
	tu_destroy(b, nb);
}

/* ---- replica roots are read-only for local writers ------------------------- */

/* Whether root @name of @seg is listed with the replica mark. */
static bool listed_replica(struct shg_seg *seg, const char *name)
{
	struct shg_root_info ri[16];
	int i, n = shg_root_list(seg, ri, 16);

	assert_true(n > 0 && n <= 16);
	for (i = 0; i < n; i++)
		if (!strcmp(ri[i].name, name))
			return ri[i].replica;
	fail_msg("root %s not listed", name);
	return false;
}

/* A root the follower applies into is marked: every local write path
 * refuses it with SHG_EREPLICA and leaves it unchanged; the follower's
 * apply still writes it; clearing the mark makes it writable. */
static void test_repl_replica_read_only(void **state)
{
	char na[64], nb[64];
	struct shg_seg *a = tu_create(na, 0), *b = tu_create(nb, 0);
	struct batch bt = { .rng = 17, .nops = 40, .keyspace = 300 };
	struct fixed f = { 1000, 1003, 7, UINT64_MAX };
	struct shg_pin *base = NULL, *det, *lp;
	struct shg_root *ra, *rb, *rl;
	struct shg_txn *txn;
	uint8_t *before, *after, *snap;
	size_t lbefore, lafter, lsnap;
	uint64_t gen;

	(void)state;
	tu_ok(shg_root_create(a, "m", &ra));
	commit_batch(ra, &bt);
	(void)ship(a, ra, &base, b); /* snapshot frame: the import marks */
	tu_ok(shg_root_open(b, "m", &rb));
	assert_true(shg_root_is_replica(rb));
	assert_true(listed_replica(b, "m"));
	assert_false(listed_replica(b, "shg.repl"));
	/* A local root with a version, for shg_pin_publish_as(). */
	tu_ok(shg_root_create(b, "local", &rl));
	tu_ok(shg_update(rl, batch_fn, &bt, 0));
	snap = tu_export_mem(a, "m", &lsnap);
	before = tu_export_mem(b, "m", &lbefore);
	gen = shg_root_generation(rb);

	assert_int_equal(shg_update(rb, fixed_fn, &f, 0), SHG_EREPLICA);
	assert_int_equal(shg_txn_begin(rb, &txn), SHG_EREPLICA);
	assert_int_equal(shg_txn_begin_flags(rb, 0x80, 0, &txn), -EINVAL);
	assert_int_equal(shg_update_flags(rb, 0x80, fixed_fn, &f, 0), -EINVAL);
	/* Marked between begin and commit: the commit refuses. */
	tu_ok(shg_root_set_replica(rb, false));
	tu_ok(shg_txn_begin(rb, &txn));
	tu_ok(fixed_fn(txn, &f));
	tu_ok(shg_root_set_replica(rb, true));
	assert_int_equal(shg_txn_commit(txn), SHG_EREPLICA);
	tu_ok(shg_txn_abort(txn));
	/* A detached version of it, published after the mark. */
	tu_ok(shg_root_set_replica(rb, false));
	tu_ok(shg_txn_begin(rb, &txn));
	tu_ok(fixed_fn(txn, &f));
	tu_ok(shg_txn_detach(txn, &det));
	tu_ok(shg_root_set_replica(rb, true));
	assert_int_equal(shg_pin_publish(det, rb), SHG_EREPLICA);
	shg_unpin(det);
	tu_ok(shg_pin_current(rl, &lp));
	assert_int_equal(shg_pin_publish_as(lp, rb), SHG_EREPLICA);
	shg_unpin(lp);
	assert_int_equal(shg_import_mem(b, "m", snap, lsnap,
					SHG_IMPORT_REPLACE),
			 SHG_EREPLICA);
	assert_int_equal(shg_root_remove(b, "m"), SHG_EREPLICA);
	/* The raw publish primitive too (the value it would set is the
	 * current one: even a no-op publish is refused). */
	assert_int_equal(shg_root_cas(rb, shg_root_load(rb), shg_root_load(rb)),
			 SHG_EREPLICA);
	assert_string_equal(shg_strerror(SHG_EREPLICA),
			    "root is a read-only replica (written only by its "
			    "follower)");
	/* Unchanged: same graph, no publish. */
	after = tu_export_mem(b, "m", &lafter);
	assert_int_equal(lafter, lbefore);
	assert_memory_equal(after, before, lbefore);
	assert_int_equal(shg_root_generation(rb), gen);
	assert_true(shg_root_is_replica(rb));
	free(after);

	/* The follower's apply still writes it (a delta, then a resync). */
	commit_batch(ra, &bt);
	(void)ship(a, ra, &base, b);
	assert_same_export(a, b, "m");
	assert_true(shg_root_generation(rb) > gen);
	shg_unpin(base);
	base = NULL;
	commit_batch(ra, &bt);
	(void)ship(a, ra, &base, b); /* RESET snapshot frame: an import */
	assert_same_export(a, b, "m");

	/* Cleared: writable by everyone; the next apply marks it again. */
	tu_ok(shg_root_set_replica(rb, false));
	assert_false(listed_replica(b, "m"));
	tu_ok(shg_update(rb, fixed_fn, &f, 0));
	commit_batch(ra, &bt);
	(void)ship(a, ra, &base, b);
	assert_true(shg_root_is_replica(rb));
	tu_ok(shg_root_set_replica(rb, false));
	tu_ok(shg_import_mem(b, "m", snap, lsnap, SHG_IMPORT_REPLACE));
	tu_ok(shg_root_close(rb));
	tu_ok(shg_root_remove(b, "m"));
	/* A new root in the same name is writable. */
	tu_ok(shg_root_create(b, "m", &rb));
	assert_false(shg_root_is_replica(rb));
	tu_ok(shg_update(rb, batch_fn, &bt, 0));
	assert_int_equal(shg_root_set_replica(NULL, true), -EINVAL);
	assert_false(shg_root_is_replica(NULL));

	free(before);
	free(snap);
	shg_unpin(base);
	shg_root_close(rb);
	shg_root_close(rl);
	shg_root_close(ra);
	tu_destroy(a, na);
	tu_destroy(b, nb);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_repl_converge_u64),
		cmocka_unit_test(test_repl_converge_bytes),
		cmocka_unit_test(test_repl_delta_size_of_change),
		cmocka_unit_test(test_repl_corrupt_refused),
		cmocka_unit_test(test_repl_gap_then_snapshot),
		cmocka_unit_test(test_repl_reapply_after_lost_state),
		cmocka_unit_test(test_repl_other_graphs_by_snapshot),
		cmocka_unit_test(test_repl_replica_read_only),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
