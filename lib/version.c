/* SPDX-License-Identifier: MIT */
/*
 * Versions and pins. A pin keeps one version (and so every node it
 * reaches) allocated outside read sections; the pin table in the segment
 * records every pin so that reclamation can check intervals and recovery
 * can release a dead process's pins.
 *
 * THEORY OF OPERATION
 *
 * The pin table is one heap block named by hdr.ext[SHG_EXT_PINS], created
 * on first use by CAS 0 -> block (release; the loser frees its block).
 * A record is claimed by CAS of proc1 0 -> process slot + 1. Pinning a
 * published version happens inside a read section: load the root's value,
 * claim a record, store root/graph/flags/seq (relaxed) then version
 * (release), leave the section. Unpin: version = 0 (release), proc1 = 0
 * (release), then gen += 1 (seq_cst) so reclaimers re-examine held nodes.
 *
 * Why a reclaimer's snapshot (shg__pinsnap_take) taken after a batch's
 * grace period sees every pin that can need a node of that batch: a node
 * retired by the commit of seq d is in versions with seq in [birth, d)
 * only. A pin of such a version was either taken inside a read section R
 * that loaded that version from the root before d's CAS, or copied from a
 * pin that still exists (a txn's base pin kept by a detached version). The
 * grace period (tag < m, see epoch.c) covers R: R cannot have started after
 * the unlink (it would have loaded version >= d), so the reclaimer's slot
 * scan read R's release store of 0 with acquire, and R's record stores,
 * sequenced before it, happen before the snapshot's loads. A record whose
 * version is still 0 is being set up by a section that began after the
 * grace period's start; it cannot pin a version that contains the node.
 *
 * Snapshot loads read gen (acquire) first: if a pin is released after the
 * snapshot, gen differs from snap.gen and held entries are re-examined.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "graph_internal.h"

static _Atomic uint32_t pin_hint; /* process-local: where to look first */

/* ---- versions ------------------------------------------------------------ */

struct shg_off shg_version_current(const struct shg_root *root)
{
	return shg_root_load(root);
}

/*
 * The hot path of a lookup that starts from a root: one call into the
 * root layer for the value and the segment, then the checks of
 * shg_version_info() (bounds, type) on the record's first line only.
 */
int shg_current_node(const struct shg_root *root, struct shg_off *node)
{
	const struct shg_version *v;
	struct shg_seg *seg;
	uint64_t ver;

	if (!root || !node)
		return -EINVAL;
	ver = shg__root_load_seg(root, &seg);
	if (!ver) {
		*node = SHG_OFF_NULL; /* never committed: an empty graph */
		return 0;
	}
	if (shg_unlikely(!shg__off_ok(seg, ver, sizeof(*v), 16)))
		return SHG_EBADOFF;
	v = shg__at(seg, ver);
	if (shg_unlikely(v->h.type != SHG_TYPE_VERSION))
		return SHG_CORRUPT();
	node->v = v->node;
	return 0;
}

/*
 * Root ref of ROOT field @field of @node, resolved to its live slot.
 * Return: 0 and *@slot and *@inc, -ENOENT (null ref), -ESTALE (the root was
 * removed, or its slot now holds another root), -EINVAL, SHG_ECORRUPT.
 */
static int ref_slot(struct shg_seg *seg, struct shg_off node, unsigned field,
		    uint32_t *slot, uint64_t *inc)
{
	uint32_t s;
	uint64_t ref;
	int err;

	err = shg__field_word(seg, node, field, SHG_KIND_ROOT, &ref);
	if (err)
		return err;
	if (!ref)
		return -ENOENT;
	err = shg__rootref_resolve(seg, ref, &s);
	if (err)
		return err == -ENOENT ? -ESTALE : err;
	*slot = s;
	*inc = SHG_ROOTREF_INC(ref);
	return 0;
}

/*
 * Ordering: the slot's value is loaded with acquire (the version record
 * and everything it reaches, published by the CAS's release, are
 * visible), then the incarnation and state are loaded again; acquire on
 * the value keeps those later loads after it. If they still match the
 * ref, the value was this incarnation's (a remove and re-create between
 * the two checks changes the incarnation). The caller's read section
 * keeps the version allocated.
 */
int shg_get_root_version(struct shg_seg *seg, struct shg_off node,
			 unsigned field, struct shg_off *version)
{
	struct shg_rslot *rs;
	uint32_t slot;
	uint64_t inc, v;
	int err;

	if (!seg || !version)
		return -EINVAL;
	err = ref_slot(seg, node, field, &slot, &inc);
	if (err)
		return err;
	rs = &seg->roots[slot];
	v = atomic_load_explicit(&rs->value, memory_order_acquire);
	if (atomic_load_explicit(&rs->state, memory_order_acquire) !=
		    SHG_ROOT_LIVE ||
	    (uint32_t)__atomic_load_n(&rs->incarnation, __ATOMIC_RELAXED) !=
		    (uint32_t)inc)
		return -ESTALE;
	version->v = v;
	return 0;
}

int shg_get_root_open(struct shg_seg *seg, struct shg_off node, unsigned field,
		      struct shg_root **out)
{
	char name[SHG_ROOT_NAME_MAX + 1];
	struct shg_root *h;
	uint32_t slot;
	uint64_t inc;
	int err;

	if (!seg || !out)
		return -EINVAL;
	err = ref_slot(seg, node, field, &slot, &inc);
	if (err)
		return err;
	/* The name may change under us (remove + create): the handle is
	 * checked against the ref's slot and incarnation after the open. */
	memcpy(name, seg->roots[slot].name, SHG_ROOT_NAME_MAX);
	name[SHG_ROOT_NAME_MAX] = 0;
	err = shg_root_open(seg, name, &h);
	if (err)
		return err == -ENOENT ? -ESTALE : err;
	if (shg__root_slot(h) != slot ||
	    (uint32_t)shg__root_incarnation(h) != (uint32_t)inc) {
		shg_root_close(h);
		return -ESTALE;
	}
	*out = h;
	return 0;
}

int shg_version_info(struct shg_seg *seg, struct shg_off version,
		     struct shg_version_info *out)
{
	const struct shg_version *v;
	const struct shg_node *n;

	if (!out)
		return -EINVAL;
	/* Hot path of every lookup: a range check and the type, without the
	 * allocator's block lookup. Reads stay inside the mapping whatever
	 * the offset; what the record names is validated where it is used. */
	if (shg_unlikely(!version.v ||
			 !shg__off_ok(seg, version.v, sizeof(*v), 16)))
		return SHG_EBADOFF;
	n = shg__at(seg, version.v);
	if (n->type != SHG_TYPE_VERSION)
		return -EINVAL;
	v = (const struct shg_version *)n;
	out->node.v = v->node;
	out->graph = v->h.graph;
	out->seq = v->seq;
	out->parent = v->parent;
	out->commit_ns = v->commit_ns;
	out->bytes = v->bytes;
	out->nodes = v->nodes;
	return 0;
}

/* ---- the pin table ------------------------------------------------------- */

/* The table if it exists and is a sane block, else NULL. */
static struct shg_pin_table *table_peek(struct shg_seg *seg)
{
	uint64_t off = atomic_load_explicit(&seg->hdr->ext[SHG_EXT_PINS],
					    memory_order_acquire);

	if (!off ||
	    shg_block_size(seg, (struct shg_off){ off }) <
		    sizeof(struct shg_pin_table) ||
	    !shg__off_ok(seg, off, sizeof(struct shg_pin_table), 16))
		return NULL;
	return shg__at(seg, off);
}

/* The table, created on first use. */
static int table_get(struct shg_seg *seg, struct shg_pin_table **out)
{
	_Atomic uint64_t *ext = &seg->hdr->ext[SHG_EXT_PINS];
	uint64_t cur = atomic_load_explicit(ext, memory_order_acquire);
	struct shg_off o;
	void *p;
	int err;

	if (!cur) {
		err = shg_alloc(seg, sizeof(struct shg_pin_table), &o);
		if (err)
			return err;
		p = shg_ptr(seg, o, sizeof(struct shg_pin_table));
		if (!p) {
			shg_free(seg, o);
			return SHG_CORRUPT();
		}
		memset(p, 0, sizeof(struct shg_pin_table));
		/* Release: the zeroed table is visible to whoever loads it. */
		if (!atomic_compare_exchange_strong_explicit(
			    ext, &cur, o.v, memory_order_acq_rel,
			    memory_order_acquire))
			shg_free(seg, o);
	}
	*out = table_peek(seg);
	return *out ? 0 : SHG_CORRUPT();
}

uint64_t shg__pins_gen(struct shg_seg *seg)
{
	struct shg_pin_table *t = table_peek(seg);

	return t ? atomic_load_explicit(&t->gen, memory_order_acquire) : 0;
}

/*
 * Clear record @r (owned by the caller) and bump the table's gen. Crash
 * ordering: version, gen, then proc1. A death before the gen bump leaves
 * the record owned by the dead process, whose release bumps gen; a record
 * freed before its gen bump (the order used before) left nobody to bump
 * it, and the pin's held batches waited for some other unpin. A snapshot
 * that reads the new gen (acquire, after the seq_cst RMW) sees version 0.
 */
static void rec_release(struct shg_pin_table *t, struct shg_pinrec *r)
{
	atomic_store_explicit(&r->version, 0, memory_order_release);
	SHG_CRASH_POINT("unpin.version_cleared");
	atomic_fetch_add_explicit(&t->gen, 1, memory_order_seq_cst);
	SHG_CRASH_POINT("unpin.gen_bumped");
	atomic_store_explicit(&r->proc1, 0, memory_order_release);
}
/* Records [0, hiwater) of pin table @t (never more than the table). */
static uint32_t rec_limit(struct shg_pin_table *t)
{
	uint64_t hw = atomic_load_explicit(&t->hiwater, memory_order_acquire);

	return hw < SHG_MAX_PINS ? (uint32_t)hw : SHG_MAX_PINS;
}

/*
 * Claim a free pin record, preferring those below the high-water mark
 * (from a rotating start, to spread claimers), else the first above it,
 * raising the mark. The mark is raised before the record is filled, so a
 * snapshot that can see the record's version also sees the mark (both
 * are sequenced before the pinner's release of its read section, which
 * the snapshot's grace-period scan acquires). Return its index, or
 * SHG_MAX_PINS if the table is full.
 */
static uint32_t claim_rec(struct shg_seg *seg, struct shg_pin_table *t)
{
	uint32_t i, idx, hw = rec_limit(t), expect;
	uint32_t start =
		atomic_fetch_add_explicit(&pin_hint, 1, memory_order_relaxed);
	uint64_t cur;

	for (i = 0; i < SHG_MAX_PINS; i++) {
		idx = i < hw ? (start + i) % hw : i;
		expect = 0;
		if (atomic_load_explicit(&t->rec[idx].proc1,
					 memory_order_relaxed) ||
		    !atomic_compare_exchange_strong_explicit(
			    &t->rec[idx].proc1, &expect, seg->pslot + 1,
			    memory_order_acq_rel, memory_order_relaxed))
			continue;
		cur = atomic_load_explicit(&t->hiwater, memory_order_relaxed);
		while (cur < idx + 1 &&
		       !atomic_compare_exchange_weak_explicit(
			       &t->hiwater, &cur, idx + 1, memory_order_seq_cst,
			       memory_order_relaxed))
			;
		return idx;
	}
	return SHG_MAX_PINS;
}

int shg__pin_take(struct shg_seg *seg, uint32_t root, uint64_t version,
		  bool detached, struct shg_pin **out)
{
	const struct shg_version *v;
	const struct shg_node *n;
	struct shg_pin_table *t;
	struct shg_pinrec *r;
	struct shg_pin *pin;
	uint32_t idx;
	int err;

	n = shg__node(seg, version, sizeof(*v), NULL, &err);
	if (!n)
		return err;
	if (n->type != SHG_TYPE_VERSION)
		return SHG_CORRUPT();
	v = (const struct shg_version *)n;
	err = table_get(seg, &t);
	if (err)
		return err;
	pin = calloc(1, sizeof(*pin));
	if (!pin)
		return -ENOMEM;
	idx = claim_rec(seg, t);
	if (idx == SHG_MAX_PINS) {
		free(pin);
		return SHG_ESLOTS;
	}
	SHG_CRASH_POINT("pin.claimed");
	r = &t->rec[idx];
	pin->seg = seg;
	pin->idx = idx;
	pin->root = root;
	pin->version = version;
	pin->seq = v->seq;
	pin->graph = v->h.graph;
	pin->detached = detached;
	__atomic_store_n(&r->root, root, __ATOMIC_RELAXED);
	__atomic_store_n(&r->graph, pin->graph, __ATOMIC_RELAXED);
	__atomic_store_n(&r->flags, detached ? SHG_PINF_DETACHED : 0u,
			 __ATOMIC_RELAXED);
	atomic_store_explicit(&r->seq, pin->seq, memory_order_relaxed);
	/* Release, last: a snapshot that sees the version sees the rest. */
	atomic_store_explicit(&r->version, version, memory_order_release);
	SHG_CRASH_POINT("pin.published");
	*out = pin;
	return 0;
}

int shg_pin_current(struct shg_root *root, struct shg_pin **out)
{
	struct shg_seg *seg;
	uint64_t v;
	int err;

	if (!root || !out)
		return -EINVAL;
	seg = shg__root_seg(root);
	err = shg_read_lock(seg);
	if (err)
		return err;
	v = shg_root_load(root).v;
	err = v ? shg__pin_take(seg, shg__root_slot(root), v, false, out) :
		  -ENOENT;
	shg_read_unlock(seg);
	return err;
}

struct shg_off shg_pin_version(const struct shg_pin *pin)
{
	return (struct shg_off){ pin ? pin->version : 0 };
}

void shg__pin_undetach(struct shg_pin *pin)
{
	struct shg_pin_table *t = table_peek(pin->seg);

	if (t && pin->idx < SHG_MAX_PINS)
		__atomic_store_n(&t->rec[pin->idx].flags, 0u, __ATOMIC_RELAXED);
	pin->detached = false;
}

int shg_unpin(struct shg_pin *pin)
{
	struct shg_pin_table *t;
	struct shg_pinrec *r;

	if (!pin)
		return -EINVAL;
	/* A pin inherited across fork is the parent's: free our copy only. */
	if (!shg__seg_own(pin->seg)) {
		free(pin);
		return 0;
	}
	if (pin->detached)
		shg__detached_release(pin);
	t = table_peek(pin->seg);
	if (t && pin->idx < SHG_MAX_PINS) {
		r = &t->rec[pin->idx];
		if (atomic_load_explicit(&r->proc1, memory_order_relaxed) ==
		    pin->seg->pslot + 1)
			rec_release(t, r);
	}
	free(pin);
	return 0;
}

/*
 * Release every pin record of process slot @pidx. gen is bumped before
 * each record is freed (as in rec_release) and once more in any case: the
 * process may have died inside an unpin after freeing its record, or a
 * releaser before it may have died after freeing records, and only a gen
 * change makes reclaimers look at the held batches those pins kept.
 */
uint32_t shg__pins_release_proc(struct shg_seg *seg, uint32_t pidx)
{
	struct shg_pin_table *t = table_peek(seg);
	uint32_t i, n = 0, p1 = pidx + 1;

	if (!t)
		return 0;
	for (i = 0; i < SHG_MAX_PINS; i++) {
		struct shg_pinrec *r = &t->rec[i];

		if (atomic_load_explicit(&r->proc1, memory_order_acquire) != p1)
			continue;
		atomic_store_explicit(&r->version, 0, memory_order_release);
		atomic_fetch_add_explicit(&t->gen, 1, memory_order_seq_cst);
		if (atomic_compare_exchange_strong_explicit(
			    &r->proc1, &p1, 0, memory_order_acq_rel,
			    memory_order_relaxed))
			n++;
		p1 = pidx + 1;
	}
	atomic_fetch_add_explicit(&t->gen, 1, memory_order_seq_cst);
	return n;
}

/* ---- snapshots for interval checks --------------------------------------- */

int shg__pinsnap_take(struct shg_seg *seg, struct shg__pinsnap *snap)
{
	struct shg_pin_table *t = table_peek(seg);
	uint32_t i, lim;

	memset(snap, 0, sizeof(*snap));
	snap->min_seq = UINT64_MAX;
	if (!t)
		return 0;
	/* gen first: a release after this load shows up as a new gen. */
	snap->gen = atomic_load_explicit(&t->gen, memory_order_acquire);
	lim = rec_limit(t);
	snap->key = malloc((lim ? lim : 1) * sizeof(*snap->key));
	if (!snap->key)
		return -ENOMEM;
	for (i = 0; i < lim; i++) {
		struct shg_pinrec *r = &t->rec[i];
		uint64_t v, seq;

		if (!atomic_load_explicit(&r->proc1, memory_order_relaxed))
			continue;
		/* Acquire pairs with the pinner's release of version. */
		v = atomic_load_explicit(&r->version, memory_order_acquire);
		if (!v)
			continue;
		seq = atomic_load_explicit(&r->seq, memory_order_relaxed);
		if (seq < snap->min_seq)
			snap->min_seq = seq;
		snap->key[snap->n++] = shg__pinsnap_key(
			__atomic_load_n(&r->graph, __ATOMIC_RELAXED), seq);
	}
	if (snap->n > 1)
		qsort(snap->key, snap->n, sizeof(*snap->key), shg__cmp_u64);
	return 0;
}

/* ---- monitoring ---------------------------------------------------------- */

/* Owner of pin record @r: pid and liveness from its process slot. */
static void pin_owner(struct shg_seg *seg, const struct shg_pinrec *r,
		      struct shg_pin_info *pi)
{
	uint32_t p1 = atomic_load_explicit(&r->proc1, memory_order_relaxed);
	struct shg_pslot *ps;
	uint64_t tok;

	if (!p1 || p1 > seg->max_procs)
		return;
	ps = &seg->procs[p1 - 1];
	tok = atomic_load_explicit(&ps->token, memory_order_relaxed);
	if (!tok)
		return;
	pi->pid = (pid_t)__atomic_load_n(&ps->pid, __ATOMIC_RELAXED);
	pi->alive = shg__token_alive(seg, tok);
}

/* Sequence and reachable bytes of version record @off (0s if invalid). */
static void pin_version(struct shg_seg *seg, uint64_t off, uint64_t *seq,
			uint64_t *bytes)
{
	struct shg_version_info vi;

	if (off && !shg_version_info(seg, (struct shg_off){ off }, &vi)) {
		if (seq)
			*seq = vi.seq;
		if (bytes)
			*bytes = vi.bytes;
	}
}

/* Fill @pi from record @r; inside a read section. */
static void pin_fill(struct shg_seg *seg, const struct shg_pinrec *r,
		     struct shg_pin_info *pi)
{
	uint64_t v = atomic_load_explicit(&r->version, memory_order_acquire);

	memset(pi, 0, sizeof(*pi));
	pi->root = __atomic_load_n(&r->root, __ATOMIC_RELAXED);
	pi->graph = __atomic_load_n(&r->graph, __ATOMIC_RELAXED);
	pi->seq = atomic_load_explicit(&r->seq, memory_order_relaxed);
	pi->detached = __atomic_load_n(&r->flags, __ATOMIC_RELAXED) &
		       SHG_PINF_DETACHED;
	pin_owner(seg, r, pi);
	pin_version(seg, v, NULL, &pi->version_bytes);
	if (pi->root < seg->max_roots)
		pin_version(seg,
			    atomic_load_explicit(&seg->roots[pi->root].value,
						 memory_order_acquire),
			    &pi->current_seq, NULL);
}

/* Held bytes of each listed pin's version (one held-list walk). */
static void pin_held(struct shg_seg *seg, struct shg_pin_info *out, size_t n)
{
	uint64_t *keys = malloc(n * sizeof(*keys));
	uint64_t *bytes = calloc(n, sizeof(*bytes));
	const uint64_t *hit;
	size_t i, m = 0;

	if (keys && bytes) {
		for (i = 0; i < n; i++)
			keys[i] = shg__pinsnap_key(out[i].graph, out[i].seq);
		qsort(keys, n, sizeof(*keys), shg__cmp_u64);
		/* Unique keys: pins of one version share its held bytes. */
		for (i = 0; i < n; i++)
			if (!m || keys[m - 1] != keys[i])
				keys[m++] = keys[i];
		shg__held_by_key(seg, keys, bytes, m);
		for (i = 0; i < n; i++) {
			uint64_t k = shg__pinsnap_key(out[i].graph, out[i].seq);

			hit = bsearch(&k, keys, m, sizeof(*keys), shg__cmp_u64);
			out[i].held_bytes = hit ? bytes[hit - keys] : 0;
		}
	}
	free(keys);
	free(bytes);
}

int shg_pin_list(struct shg_seg *seg, struct shg_pin_info *out, unsigned max)
{
	struct shg_pin_table *t;
	unsigned i, n = 0;
	int err;

	if (!seg || (max && !out))
		return -EINVAL;
	t = table_peek(seg);
	if (!t)
		return 0;
	err = shg_read_lock(seg);
	if (err)
		return err;
	for (i = 0; i < SHG_MAX_PINS; i++) {
		struct shg_pinrec *r = &t->rec[i];

		if (!atomic_load_explicit(&r->proc1, memory_order_relaxed) ||
		    !atomic_load_explicit(&r->version, memory_order_acquire))
			continue;
		if (n < max)
			pin_fill(seg, r, &out[n]);
		n++;
	}
	shg_read_unlock(seg);
	pin_held(seg, out, n < max ? n : max);
	return (int)n;
}

/* ---- staged commits ----------------------------------------------------- */

/*
 * A commit stages its garbage in the segment before publishing (the
 * protocol is in shm/epoch_stage.c), records its thread slot in the new
 * version's record (still private), and tells the slot that staged its
 * base, if that stage is still open, that the base was published.
 */
static struct shg_version_x *version_x_at(struct shg_seg *seg, uint64_t ver)
{
	struct shg_version_x *x;

	if (shg_block_size(seg, (struct shg_off){ ver }) < sizeof(*x))
		return NULL;
	x = shg_ptr(seg, (struct shg_off){ ver }, sizeof(*x));
	if (!x || x->v.h.type != SHG_TYPE_VERSION)
		return NULL;
	return x;
}

void shg__version_mark_seen(struct shg_seg *seg, uint64_t ver)
{
	struct shg_version_x *x = ver ? version_x_at(seg, ver) : NULL;
	uint64_t st = x ? __atomic_load_n(&x->stager, __ATOMIC_RELAXED) : 0;

	if (st && st <= UINT32_MAX)
		shg__stage_seen(seg, (uint32_t)(st - 1), ver);
}

bool shg__stage_garbage(struct shg_seg *seg, uint32_t root, uint64_t ver,
			const struct shg__offvec *g,
			const struct shg__offvec *cut, uint64_t base_ver,
			uint64_t seq)
{
	struct shg_version_x *x = version_x_at(seg, ver);
	uint32_t tidx;
	size_t i;
	int err;

	/* Nothing to retire (a first commit): nothing to stage. */
	if (!x || (!base_ver && (!g || !g->n) && (!cut || !cut->n)))
		return false;
	if (shg__stage_begin(seg, root, ver, &tidx))
		return false;
	err = 0;
	for (i = 0; !err && g && i < g->n; i++)
		err = shg__stage_add(seg, g->v[i], seq);
	for (i = 0; !err && cut && i < cut->n; i++)
		err = shg__stage_add(seg, cut->v[i], seq);
	if (!err && base_ver)
		err = shg__stage_add(seg, base_ver, seq);
	if (err) {
		shg__stage_cancel(seg);
		return false;
	}
	/* Still private: published by the CAS that follows (release). */
	x->stager = (uint64_t)tidx + 1;
	return true;
}
