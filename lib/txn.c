/* SPDX-License-Identifier: MIT */
/*
 * Transactions: batched copy-on-write edits of one graph, published by one
 * compare-and-swap of the root's version.
 *
 * THEORY OF OPERATION
 *
 * A txn starts from the root's current version (its base), which it pins
 * (shg__pin_take inside a read section), then takes its sequence number
 * from the root's counter, so seq > base seq. Every node the txn creates or
 * copies is "owned" (process-local set): it is private until commit and is
 * written in place. Changing a published node copies it once (path
 * copying: shg_txn_mut copies the node at a ref and stores the copy there,
 * so walking down from the root copies the path). The published nodes a
 * txn replaced are its garbage. Nodes created and dropped inside the txn
 * were never published and are freed at once.
 *
 * Commit builds the version record and CASes the root from the base
 * version to it (release: every owned node and the record are visible to
 * any reader that loads the new value). Success: the garbage and the base
 * version record are retired with death = seq (interval-based
 * reclamation: a pin of a version in [birth, death) keeps them), the base
 * is unpinned. Conflict: the record is freed (never published) and the txn
 * stays usable: abort it, or detach it as a pinned private version that
 * can be published later on its root (CAS on its base) or copied under
 * another root.
 *
 * Crash: the garbage is staged in the segment before the CAS, inside the
 * read section that spans the CAS (shm/epoch_stage.c), so a process killed
 * between the CAS and the retires leaves them to whoever releases its
 * thread slot, which finishes them if the version was published (the root
 * holds it, or a later commit marked it seen before its own CAS). Killed
 * before the CAS it leaks its owned nodes (the live leak sweep frees them).
 * If staging fails (no memory for a batch), the commit retires after the
 * CAS as before. Nothing is freed twice.
 *
 * Import (txn_import.c) copies a subgraph (of any graph or version) into
 * the txn: one walk collects the nodes (stopping at root refs), each gets
 * an owned copy, then child offsets inside the copies are remapped through
 * the old -> new table.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "graph_internal.h"

/* ---- small helpers ------------------------------------------------------ */

static inline int64_t block_bytes(struct shg_txn *txn, uint64_t off)
{
	return (int64_t)shg_block_size(txn->seg, (struct shg_off){ off });
}

/* Poison the txn on resource errors so a half-done edit never commits. */
static int poison(struct shg_txn *txn, int err)
{
	if (err && err != -EINVAL && err != -ENOENT && err != -EXDEV &&
	    !txn->err)
		txn->err = err;
	return err;
}

/* ---- internals used by map.c and vec.c --------------------------------- */

/*
 * Size of the block shg_alloc() just returned at @off for @size bytes: a
 * small request is served from its size class (no span lookup needed).
 */
static size_t new_block_size(struct shg_txn *txn, uint64_t off, size_t size)
{
	if (size <= SHG_SMALL_MAX)
		return shg__class_size(shg__size_class(size));
	return shg_block_size(txn->seg, (struct shg_off){ off });
}

/* Node @off of block size @bs leaves the graph (see shg__txn_drop). */
static void drop_sized(struct shg_txn *txn, uint64_t off, size_t bs, bool owned)
{
	if (owned && shg__oset_del(&txn->owned, off)) {
		/* Never published: no reader can hold it. */
		shg_free(txn->seg, (struct shg_off){ off });
	} else if (shg__offvec_push(&txn->garbage, off)) {
		poison(txn, -ENOMEM);
		return;
	}
	txn->bytes_delta -= (int64_t)bs;
	txn->nodes_delta--;
}

int shg__txn_alloc(struct shg_txn *txn, uint32_t type, size_t size,
		   uint64_t *out)
{
	struct shg_node *n;
	struct shg_off o;
	size_t bs;
	int err;

	if (size < sizeof(struct shg_node))
		return -EINVAL;
	err = shg_alloc(txn->seg, size, &o);
	if (err)
		return poison(txn, err);
	bs = new_block_size(txn, o.v, size);
	n = shg_ptr(txn->seg, o, bs);
	if (!n || bs < size) {
		shg_free(txn->seg, o);
		return poison(txn, SHG_CORRUPT());
	}
	memset(n, 0, bs); /* the allocator's rounding too */
	n->type = type;
	n->graph = txn->graph;
	n->birth = txn->seq;
	err = shg__oset_add(&txn->owned, o.v);
	if (err) {
		shg_free(txn->seg, o);
		return poison(txn, err);
	}
	txn->bytes_delta += (int64_t)bs;
	txn->nodes_delta++;
	*out = o.v;
	return 0;
}

/* shg__txn_copy() of the valid node @old at @off, a block of @osize. */
static int copy_node(struct shg_txn *txn, uint64_t off,
		     const struct shg_node *old, size_t osize, size_t new_size,
		     uint64_t *out)
{
	size_t nsize, keep;
	struct shg_node *n;
	struct shg_off o;
	bool owned;
	int err;

	owned = shg__txn_owns_node(txn, off, old);
	if (owned && new_size <= osize) {
		*out = off;
		return 0;
	}
	if (!owned && old->graph != txn->graph)
		return -EXDEV;
	if (new_size < sizeof(struct shg_node))
		return -EINVAL;
	err = shg_alloc(txn->seg, new_size, &o);
	if (err)
		return poison(txn, err);
	nsize = new_block_size(txn, o.v, new_size);
	n = shg_ptr(txn->seg, o, nsize);
	if (!n || nsize < new_size || shg__oset_add(&txn->owned, o.v)) {
		shg_free(txn->seg, o);
		return poison(txn,
			      n && nsize >= new_size ? -ENOMEM : SHG_CORRUPT());
	}
	/* The old block's bytes up to @new_size, zeros after (rounding
	 * included). */
	keep = osize < new_size ? osize : new_size;
	memcpy(n, old, keep);
	memset((uint8_t *)n + keep, 0, nsize - keep);
	n->graph = txn->graph;
	n->birth = txn->seq;
	txn->bytes_delta += (int64_t)nsize;
	txn->nodes_delta++;
	drop_sized(txn, off, osize, owned);
	*out = o.v;
	return 0;
}

int shg__txn_copy(struct shg_txn *txn, uint64_t off, size_t new_size,
		  uint64_t *out)
{
	const struct shg_node *old;
	size_t osize;
	int err;

	old = shg__node(txn->seg, off, 0, &osize, &err);
	if (!old)
		return err;
	return copy_node(txn, off, old, osize, new_size, out);
}

int shg__txn_copy_hdr(struct shg_txn *txn, uint64_t off,
		      const struct shg_node *n, size_t new_size, uint64_t *out)
{
	size_t osize = shg_block_size(txn->seg, (struct shg_off){ off });

	if (shg_unlikely(osize < sizeof(*n) ||
			 !shg__off_ok(txn->seg, off, osize, 16) ||
			 shg__at(txn->seg, off) != (const void *)n))
		return SHG_EBADOFF;
	return copy_node(txn, off, n, osize, new_size, out);
}

void shg__txn_drop(struct shg_txn *txn, uint64_t off)
{
	size_t bs;

	if (!off)
		return;
	bs = shg_block_size(txn->seg, (struct shg_off){ off });
	if (!bs)
		return; /* not a block: nothing to account or free */
	drop_sized(txn, off, bs, true);
}

int shg__txn_bytes(struct shg_txn *txn, const void *p, size_t len,
		   uint64_t *out)
{
	struct shg_bytes *b;
	uint64_t off;
	int err;

	if (len > UINT32_MAX || (len && !p))
		return -EINVAL;
	err = shg__txn_alloc(txn, SHG_TYPE_BYTES, sizeof(*b) + len, &off);
	if (err)
		return err;
	b = shg__at(txn->seg, off);
	b->len = (uint32_t)len;
	b->hash = (uint32_t)shg__hash_bytes(txn->seg, p, len);
	if (len)
		memcpy(b->data, p, len);
	*out = off;
	return 0;
}

/* Type record of an owned user node, or NULL. */
static const struct shg_type_rec *owned_user_rec(struct shg_txn *txn,
						 uint64_t off)
{
	const struct shg_type_rec *r;
	const struct shg_node *n;
	size_t size;

	if (!shg__txn_owns(txn, off))
		return NULL;
	n = shg__node_rec(txn->seg, off, 0, &size, &r, NULL);
	if (!n || (r->flags & SHG_TYPEF_BUILTIN))
		return NULL;
	return r;
}

int shg__txn_ref_slot(struct shg_txn *txn, struct shg_ref ref, uint64_t **slot)
{
	const struct shg_type_rec *r;

	if (!ref.node.v) {
		*slot = &txn->root_node;
		return 0;
	}
	r = owned_user_rec(txn, ref.node.v);
	if (!r || ref.field >= r->nfields)
		return -EINVAL;
	*slot = (uint64_t *)((uint8_t *)shg__at(txn->seg, ref.node.v) +
			     sizeof(struct shg_node)) +
		ref.field;
	return 0;
}

/* Slot of field @ref of kind @kind (root ref only for NODE). */
static int kind_slot(struct shg_txn *txn, struct shg_ref ref,
		     enum shg_kind kind, uint64_t **slot)
{
	const struct shg_type_rec *r;

	if (txn->err)
		return txn->err;
	if (!ref.node.v) {
		if (kind != SHG_KIND_NODE)
			return -EINVAL;
		*slot = &txn->root_node;
		return 0;
	}
	r = owned_user_rec(txn, ref.node.v);
	if (!r || ref.field >= r->nfields || r->kind[ref.field] != kind)
		return -EINVAL;
	return shg__txn_ref_slot(txn, ref, slot);
}

/*
 * Slot of the NODE field (or graph root) @ref for a container edit: a field
 * of any other kind is the caller's mistake (-EINVAL), so an integer that
 * happens to equal a container's offset is never taken for one.
 */
int shg__txn_node_slot(struct shg_txn *txn, struct shg_ref ref, uint64_t **slot)
{
	return kind_slot(txn, ref, SHG_KIND_NODE, slot);
}

/*
 * Slot of the container of built-in type @type at @ref. A field of another
 * kind, a null field or a node of another type is -EINVAL (the txn stays
 * usable); an offset in a NODE field that is not a valid node is corrupt
 * data (SHG_EBADOFF/SHG_ECORRUPT).
 */
int shg__txn_container_slot(struct shg_txn *txn, struct shg_ref ref,
			    uint32_t type, uint64_t **slot)
{
	const struct shg_node *n;
	int err = kind_slot(txn, ref, SHG_KIND_NODE, slot);

	if (err)
		return err;
	if (!**slot)
		return -EINVAL;
	n = shg__node(txn->seg, **slot, 0, NULL, &err);
	if (!n)
		return err;
	return n->type == type ? 0 : -EINVAL;
}

/*
 * Make the node whose offset is in *@slot (an owned node's slot or the
 * txn's root) mutable: copied once per txn, the copy stored in *@slot.
 * The original becomes garbage; its children are shared by the copy.
 * A user node of an older type version is copied as the newest version:
 * its fields kept, the appended ones zero (what readers saw already).
 */
int shg__txn_slot_mut(struct shg_txn *txn, uint64_t *slot, uint64_t *out)
{
	const struct shg_type_rec *r, *nr;
	uint64_t child = *slot, copy, *f;
	const struct shg_node *n;
	struct shg_node *c;
	size_t size, osize;
	int err;

	if (!child)
		return -ENOENT;
	if (!shg__txn_owns(txn, child)) {
		size = shg_block_size(txn->seg, (struct shg_off){ child });
		if (!size)
			return poison(txn, SHG_EBADOFF);
		n = shg__node_rec(txn->seg, child, 0, &osize, &r, &err);
		if (!n)
			return err;
		nr = shg__type_newest(txn->seg, r);
		if (shg__user_node_size(nr->nfields) > size)
			size = shg__user_node_size(nr->nfields);
		err = copy_node(txn, child, n, osize, size, &copy);
		if (err)
			return err;
		if (nr != r) {
			/* Owned now, unpublished: ours to rewrite. The old
			 * block's rounding came along: zero the new fields. */
			c = shg__at(txn->seg, copy);
			f = (uint64_t *)(c + 1);
			memset(f + r->nfields, 0,
			       8u * (nr->nfields - r->nfields));
			c->type = nr->id;
		}
		*slot = copy;
		child = copy;
	}
	*out = child;
	return 0;
}

/* ---- public edit API --------------------------------------------------- */

struct shg_off shg_txn_root_node(const struct shg_txn *txn)
{
	return (struct shg_off){ txn ? txn->root_node : 0 };
}

int shg_txn_node_new(struct shg_txn *txn, uint32_t type, struct shg_off *out)
{
	const struct shg_type_rec *r = shg__type_get(txn->seg, type);
	uint64_t off;
	int err;

	if (txn->err)
		return txn->err;
	if (!r || (r->flags & SHG_TYPEF_BUILTIN))
		return -EINVAL;
	r = shg__type_newest(txn->seg, r); /* new nodes: newest version */
	txn->walk_owned = true;
	err = shg__txn_alloc(txn, r->id, shg__user_node_size(r->nfields), &off);
	if (err)
		return err;
	out->v = off;
	return 0;
}

int shg_txn_mut(struct shg_txn *txn, struct shg_ref ref, struct shg_off *out)
{
	uint64_t *slot, off;
	int err = kind_slot(txn, ref, SHG_KIND_NODE, &slot);

	if (err)
		return err;
	/* @slot is txn->root_node or an owned node's: still valid after. */
	err = shg__txn_slot_mut(txn, slot, &off);
	if (err)
		return err;
	out->v = off;
	return 0;
}

int shg_txn_set_u64(struct shg_txn *txn, struct shg_ref ref, uint64_t v)
{
	uint64_t *slot;
	int err = kind_slot(txn, ref, SHG_KIND_U64, &slot);

	if (!err)
		*slot = v;
	return err;
}

int shg_txn_set_i64(struct shg_txn *txn, struct shg_ref ref, int64_t v)
{
	uint64_t *slot;
	int err = kind_slot(txn, ref, SHG_KIND_I64, &slot);

	if (!err)
		*slot = (uint64_t)v;
	return err;
}

int shg_txn_set_f64(struct shg_txn *txn, struct shg_ref ref, double v)
{
	uint64_t *slot;
	int err = kind_slot(txn, ref, SHG_KIND_F64, &slot);

	if (!err)
		memcpy(slot, &v, sizeof(v));
	return err;
}

int shg_txn_set_bytes(struct shg_txn *txn, struct shg_ref ref, const void *p,
		      size_t len)
{
	uint64_t *slot, b = 0, old;
	int err = kind_slot(txn, ref, SHG_KIND_BYTES, &slot);

	if (err)
		return err;
	if (len) {
		err = shg__txn_bytes(txn, p, len, &b);
		if (err)
			return err;
	}
	old = *slot;
	*slot = b;
	shg__txn_drop(txn, old);
	return 0;
}

int shg_txn_set_node(struct shg_txn *txn, struct shg_ref ref,
		     struct shg_off node)
{
	const struct shg_node *n;
	uint64_t *slot;
	int err = kind_slot(txn, ref, SHG_KIND_NODE, &slot);

	if (err)
		return err;
	if (node.v) {
		n = shg__node(txn->seg, node.v, 0, NULL, &err);
		if (!n)
			return err;
		if (n->graph != txn->graph || n->type == SHG_TYPE_VERSION)
			return -EXDEV;
		if (!shg__txn_owns(txn, node.v)) {
			err = shg__txn_link_check(txn, node.v);
			if (err)
				return err;
			txn->full_check = true; /* shared or moved */
		}
	}
	txn->walk_owned = true;
	if (*slot && *slot != node.v && !shg__txn_owns(txn, *slot)) {
		err = shg__offvec_push(&txn->unlinked, *slot);
		if (err)
			return poison(txn, err);
	}
	*slot = node.v;
	return 0;
}

int shg_txn_set_root(struct shg_txn *txn, struct shg_ref ref,
		     const struct shg_root *target)
{
	uint64_t *slot;
	int err = kind_slot(txn, ref, SHG_KIND_ROOT, &slot);

	if (err)
		return err;
	if (target && shg__root_seg(target) != txn->seg)
		return -EXDEV;
	*slot = target ? SHG_ROOTREF(shg__root_slot(target),
				     shg__root_incarnation(target)) :
			 0;
	return 0;
}

/* ---- begin, commit, abort ---------------------------------------------- */

/* Validated version record at @off of graph @graph, or NULL. */
static const struct shg_version *version_at(struct shg_seg *seg, uint64_t off,
					    uint32_t graph, int *err)
{
	const struct shg_node *n;

	n = shg__node(seg, off, sizeof(struct shg_version), NULL, err);
	if (!n)
		return NULL;
	if (n->type != SHG_TYPE_VERSION || n->graph != graph) {
		*err = SHG_CORRUPT();
		return NULL;
	}
	return (const struct shg_version *)n;
}

/* Free the process-local parts of @txn (nodes untouched). */
static void txn_release(struct shg_txn *txn)
{
	shg__oset_free(&txn->owned);
	shg__oset_free(&txn->base_nodes);
	free(txn->garbage.v);
	free(txn->unlinked.v);
	free(txn);
}

/*
 * One spare txn record per thread: a finished txn's record and its owned
 * set and garbage vectors serve the thread's next txn, instead of three
 * malloc/free pairs per commit and, for large txns, the regrowth of the
 * owned set from its smallest size (7 doublings and rehashes for a txn of
 * 1,000 map updates: ~120 instructions per update, 4 % of the update).
 * Arrays up to SPARE_SMALL_SLOTS are always kept; larger ones up to
 * SPARE_MAX_SLOTS (64 KiB each, 192 KiB per thread at most) only if the
 * txn used a quarter of them, so a thread whose big txns have given way to
 * small ones does not keep clearing a big set. The spare is held by a
 * pthread key only while spare (a txn in use may be handed to another
 * thread), and the key's destructor frees it when the thread exits.
 */
#define SPARE_SMALL_SLOTS 64u
#define SPARE_MAX_SLOTS 8192u

static pthread_key_t spare_key;
static pthread_once_t spare_once = PTHREAD_ONCE_INIT;
static bool spare_ok;

static void spare_dtor(void *p)
{
	txn_release(p);
}

static void spare_init(void)
{
	spare_ok = pthread_key_create(&spare_key, spare_dtor) == 0;
}

/* Library unload: no destructor may run in unmapped code (spares leak). */
__attribute__((destructor)) static void spare_fini(void)
{
	if (spare_ok) {
		spare_ok = false;
		pthread_key_delete(spare_key);
	}
}

/* A zeroed txn record: the thread's spare, or a new one. */
static struct shg_txn *txn_new(void)
{
	struct shg_txn *txn;

	if (pthread_once(&spare_once, spare_init) == 0 && spare_ok) {
		txn = pthread_getspecific(spare_key);
		if (txn && pthread_setspecific(spare_key, NULL) == 0)
			return txn;
	}
	return calloc(1, sizeof(struct shg_txn));
}

/* Whether an array of @cap slots, @n of them used, is kept (see above). */
static bool spare_keep(size_t cap, size_t n)
{
	return cap <= SPARE_SMALL_SLOTS ||
	       (cap <= SPARE_MAX_SLOTS && n * 4 >= cap);
}

/* Done with @txn: keep it as the thread's spare, else free it. */
static void txn_free(struct shg_txn *txn)
{
	struct shg__offset_set owned = txn->owned;
	struct shg__offvec g = txn->garbage, u = txn->unlinked;

	if (!spare_ok || txn->base_nodes.cap ||
	    pthread_getspecific(spare_key)) {
		txn_release(txn);
		return;
	}
	if (!spare_keep(owned.cap, owned.n)) {
		free(owned.slot);
		owned = (struct shg__offset_set){ NULL, 0, 0 };
	}
	if (!spare_keep(g.cap, g.n)) {
		free(g.v);
		g = (struct shg__offvec){ NULL, 0, 0 };
	}
	if (!spare_keep(u.cap, u.n)) {
		free(u.v);
		u = (struct shg__offvec){ NULL, 0, 0 };
	}
	if (owned.slot)
		memset(owned.slot, 0, owned.cap * sizeof(*owned.slot));
	memset(txn, 0, sizeof(*txn));
	txn->owned = (struct shg__offset_set){ owned.slot, owned.cap, 0 };
	txn->garbage = (struct shg__offvec){ g.v, 0, g.cap };
	txn->unlinked = (struct shg__offvec){ u.v, 0, u.cap };
	if (pthread_setspecific(spare_key, txn))
		txn_release(txn);
}

/* Read and pin the root's current version (read section inside). */
static int pin_base(struct shg_txn *txn)
{
	const struct shg_version_x *x;
	const struct shg_node *n;
	size_t size;
	uint64_t off;
	int err;

	err = shg_read_lock(txn->seg);
	if (err)
		return err;
	off = shg_root_load(txn->root).v;
	if (off) {
		n = shg__node(txn->seg, off, sizeof(x->v), &size, &err);
		if (n &&
		    (n->type != SHG_TYPE_VERSION || n->graph != txn->graph)) {
			n = NULL;
			err = SHG_CORRUPT();
		}
		if (n) {
			x = (const struct shg_version_x *)n;
			txn->base_ver = off;
			txn->base_seq = x->v.seq;
			txn->base_bytes = x->v.bytes;
			txn->base_count = x->v.nodes;
			txn->root_node = x->v.node;
			/* A smaller record has no flags word (flags 0). */
			txn->full_check = size >= sizeof(*x) &&
					  (x->flags & SHG_VERF_SHARED);
			err = shg__pin_take(txn->seg, txn->rslot, off, false,
					    &txn->base);
		}
	}
	shg_read_unlock(txn->seg);
	return err;
}

int shg_txn_begin(struct shg_root *root, struct shg_txn **out)
{
	return shg_txn_begin_wait(root, SHG_TXN_BUDGET_WAIT_MS, out);
}

int shg_txn_begin_wait(struct shg_root *root, unsigned timeout_ms,
		       struct shg_txn **out)
{
	return shg_txn_begin_flags(root, 0, timeout_ms, out);
}

int shg_txn_begin_flags(struct shg_root *root, unsigned flags,
			unsigned timeout_ms, struct shg_txn **out)
{
	struct shg_seg *seg;
	struct shg_rslot *rs;
	struct shg_txn *txn;
	int err;

	if (!root || !out || (flags & ~SHG_TXN_REPLICA))
		return -EINVAL;
	seg = shg__root_seg(root);
	if (shg_read_locked(seg))
		return SHG_ENESTED;
	/* Refused before any work (commit checks again: the mark may be set
	 * meanwhile). */
	if (shg__root_slot(root) < seg->max_roots &&
	    shg__replica_refused(seg, shg__root_slot(root), flags))
		return SHG_EREPLICA;
	err = shg__types_init(seg);
	if (err)
		return err;
	/* Reclaims; over budget, waits up to @timeout_ms (0: no limit) for
	 * the readers that hold retired memory back. */
	err = shg_budget_check(seg, timeout_ms);
	if (err)
		return err;
	txn = txn_new();
	if (!txn)
		return -ENOMEM;
	txn->seg = seg;
	txn->root = root;
	txn->flags = flags;
	txn->rslot = shg__root_slot(root);
	if (txn->rslot >= seg->max_roots) {
		txn_free(txn);
		return SHG_CORRUPT();
	}
	rs = &seg->roots[txn->rslot];
	txn->graph = __atomic_load_n(&rs->graph, __ATOMIC_RELAXED);
	err = pin_base(txn);
	if (err) {
		txn_free(txn);
		return err;
	}
	/* After the base was read: seq > base seq (the base's commit took
	 * its seq from this counter before publishing it). */
	txn->seq = atomic_fetch_add_explicit(&rs->next_seq, 1,
					     memory_order_acq_rel) +
		   1;
	*out = txn;
	return 0;
}

/* Free every owned node (never published). */
static void free_owned(struct shg_txn *txn)
{
	size_t i;

	for (i = 0; i < txn->owned.cap; i++)
		if (txn->owned.slot[i])
			shg_free(txn->seg,
				 (struct shg_off){ txn->owned.slot[i] });
}

/*
 * What leaves the graph besides the nodes the txn copied or dropped:
 * owned nodes no longer reachable from the new root (created and
 * unlinked: freed after a successful publish, never published), and the
 * published subtrees cut off: those set_node or a container replaced
 * (the unlinked list) and those below freed owned nodes (retired). When
 * the txn linked a published node, or the base is a DAG (full check), the
 * whole new graph is walked first, so subtrees still reachable through
 * another parent stay, and garbage still reachable is taken off the
 * garbage list. Otherwise (a tree, no links of published nodes) a subtree
 * cut off is reachable through nothing else. Cost: the owned nodes plus
 * the subtrees cut off, or the whole new graph for a full check.
 */
struct cleanup {
	struct shg__offvec retire; /* published, now unreachable */
	struct shg__offvec free; /* owned, unreachable */
	int64_t bytes, nodes; /* their totals */
	bool shared; /* the new version is a DAG */
};

struct reach {
	struct shg_txn *txn;
	struct shg__offset_set r; /* reachable from the new root */
	struct shg__offset_set kids; /* children seen (sharing check) */
	struct cleanup *c;
	struct shg__offvec stack; /* owned walk, cuts: to visit */
	bool shared; /* some node has two parents */
	int err;
};

/* Owned walk: an owned child is reached once, else there is sharing. */
static void owned_kid(void *arg, uint64_t child)
{
	struct reach *w = arg;

	if (!child || w->err || !shg__txn_owns(w->txn, child))
		return;
	if (shg__oset_has(&w->r, child)) {
		w->shared = true;
		return;
	}
	w->err = shg__oset_add(&w->r, child);
	if (!w->err)
		w->err = shg__offvec_push(&w->stack, child);
}

/*
 * The owned nodes reachable from the new root, through owned nodes only
 * (published nodes never point to owned ones). O(owned nodes). A second
 * parent among them sets @w->shared; a published node can get a second
 * parent only through set_node or in a base already flagged shared, and
 * both make the txn take the full check instead.
 */
static int owned_walk(struct reach *w)
{
	struct shg_txn *txn = w->txn;
	int err;

	owned_kid(w, txn->root_node);
	while (!w->err && w->stack.n) {
		err = shg__node_children(txn->seg, w->stack.v[--w->stack.n],
					 owned_kid, NULL, w);
		if (err)
			w->err = err;
	}
	free(w->stack.v);
	w->stack = (struct shg__offvec){ 0 };
	return w->err;
}

static void kid_seen(void *arg, uint64_t child)
{
	struct reach *w = arg;

	if (!child || w->shared)
		return;
	if (shg__oset_has(&w->kids, child))
		w->shared = true;
	else if (shg__oset_add(&w->kids, child))
		w->err = -ENOMEM;
}

/* Full check: each reachable node once; a child seen twice: a DAG. */
static int reach_visit(void *arg, uint64_t off, const struct shg_node *n,
		       size_t size)
{
	struct reach *w = arg;
	int err = shg__oset_add(&w->r, off);

	(void)n;
	(void)size;
	if (err)
		return err;
	err = shg__node_children(w->txn->seg, off, kid_seen, NULL, w);
	return err ? err : w->err;
}

static int cut_visit(void *arg, uint64_t off, const struct shg_node *n,
		     size_t size)
{
	struct reach *w = arg;
	int err;

	(void)n;
	if (shg__oset_has(&w->r, off))
		return 1; /* reachable, or already counted */
	err = shg__oset_add(&w->r, off);
	if (!err)
		err = shg__offvec_push(&w->c->retire, off);
	w->c->bytes += (int64_t)size;
	w->c->nodes++;
	return err;
}

static void cleanup_free(struct cleanup *c)
{
	free(c->retire.v);
	free(c->free.v);
	memset(c, 0, sizeof(*c));
}

/* Garbage entries still reachable are not garbage (full check only). */
static int prune_garbage(struct shg_txn *txn, struct reach *w)
{
	size_t i, k = 0;
	int err;

	for (i = 0; i < txn->garbage.n; i++) {
		uint64_t g = txn->garbage.v[i];

		if (shg__oset_has(&w->r, g)) {
			txn->bytes_delta += block_bytes(txn, g);
			txn->nodes_delta++;
			continue;
		}
		txn->garbage.v[k++] = g;
		/* counted as gone; the cut walks must not count it again */
		err = shg__oset_add(&w->r, g);
		if (err)
			return err;
	}
	txn->garbage.n = k;
	return 0;
}

static void published_kid(void *arg, uint64_t child)
{
	struct reach *w = arg;

	if (child && !w->err && !shg__txn_owns(w->txn, child))
		w->err = shg__offvec_push(&w->stack, child);
}

/*
 * Owned nodes that became unreachable (cut off after being made or
 * copied) take the published subtrees below them along: cut those off
 * too, as for the unlinked list. A published child still reachable is in
 * @w->r (a full check) or got another parent only by a link, which forces
 * the full check; otherwise it is reachable through nothing else.
 */
static int cut_below_freed(struct shg_txn *txn, struct reach *w)
{
	size_t i;
	int err = 0;

	for (i = 0; !err && i < w->c->free.n; i++) {
		err = shg__node_children(txn->seg, w->c->free.v[i],
					 published_kid, NULL, w);
		if (!err)
			err = w->err;
	}
	while (!err && w->stack.n)
		err = shg__walk(txn->seg, w->stack.v[--w->stack.n], cut_visit,
				NULL, w);
	free(w->stack.v);
	w->stack = (struct shg__offvec){ 0 };
	return err;
}

static int cleanup_collect(struct shg_txn *txn, struct cleanup *c)
{
	struct reach w = { .txn = txn, .c = c };
	size_t i;
	int err = 0;

	memset(c, 0, sizeof(*c));
	if (!txn->full_check && !txn->walk_owned)
		return 0; /* only built-in container edits: nothing orphaned */
	if (!txn->full_check) {
		err = owned_walk(&w);
		if (!err && w.shared) {
			/* Sharing made in this txn: take the full check. */
			txn->full_check = true;
			shg__oset_free(&w.r);
			w = (struct reach){ .txn = txn, .c = c };
		}
	}
	if (!err && txn->full_check)
		err = shg__walk(txn->seg, txn->root_node, reach_visit, NULL,
				&w);
	shg__oset_free(&w.kids);
	c->shared = w.shared;
	for (i = 0; !err && i < txn->owned.cap; i++) {
		uint64_t o = txn->owned.slot[i];

		if (!o || shg__oset_has(&w.r, o))
			continue;
		err = shg__offvec_push(&c->free, o);
		c->bytes += block_bytes(txn, o);
		c->nodes++;
	}
	if (!err && txn->full_check)
		err = prune_garbage(txn, &w);
	for (i = 0; !err && i < txn->unlinked.n; i++)
		err = shg__walk(txn->seg, txn->unlinked.v[i], cut_visit, NULL,
				&w);
	if (!err)
		err = cut_below_freed(txn, &w);
	shg__oset_free(&w.r);
	if (err) {
		cleanup_free(c);
		return poison(txn, err);
	}
	txn->bytes_delta -= c->bytes;
	txn->nodes_delta -= c->nodes;
	return 0;
}

/* The publish failed: the txn is as before (its garbage list pruned). */
static void cleanup_undo(struct shg_txn *txn, struct cleanup *c)
{
	txn->bytes_delta += c->bytes;
	txn->nodes_delta += c->nodes;
	cleanup_free(c);
}

/* The publish succeeded: free the unreachable owned nodes. */
static void cleanup_done(struct shg_txn *txn, struct cleanup *c)
{
	size_t i;

	for (i = 0; i < c->free.n; i++) {
		shg__oset_del(&txn->owned, c->free.v[i]);
		shg_free(txn->seg, (struct shg_off){ c->free.v[i] });
	}
}

/* A new (unpublished) version record for @txn. */
static int build_version(struct shg_txn *txn, uint64_t commit_ns, bool shared,
			 uint64_t *out)
{
	struct shg_version_x *x;
	struct shg_version *v;
	struct shg_off o;
	int err;

	err = shg_alloc(txn->seg, sizeof(*x), &o);
	if (err)
		return err;
	x = shg_ptr(txn->seg, o, sizeof(*x));
	if (!x) {
		shg_free(txn->seg, o);
		return SHG_CORRUPT();
	}
	memset(x, 0, sizeof(*x));
	x->flags = shared ? SHG_VERF_SHARED : 0;
	v = &x->v;
	v->h.type = SHG_TYPE_VERSION;
	v->h.graph = txn->graph;
	v->h.birth = txn->seq;
	v->node = txn->root_node;
	v->seq = txn->seq;
	v->parent = txn->base_seq;
	v->commit_ns = commit_ns;
	/* The base's totals as read when it was pinned (immutable since). */
	v->bytes = (uint64_t)((int64_t)txn->base_bytes + txn->bytes_delta);
	v->nodes = (uint64_t)((int64_t)txn->base_count + txn->nodes_delta);
	*out = o.v;
	return 0;
}

/* After a successful publish of seq @seq: retire what it replaced. */
static void retire_replaced(struct shg_seg *seg, const struct shg__offvec *g,
			    uint64_t base_ver, uint64_t seq)
{
	size_t i;

	for (i = 0; i < g->n; i++)
		(void)shg__retire_with_death(seg, g->v[i], seq);
	if (base_ver)
		(void)shg__retire_with_death(seg, base_ver, seq);
}

/* Retire @g's entries from *@i on, dead at @seq; stop at a failure. */
static int retire_from(struct shg_seg *seg, const struct shg__offvec *g,
		       size_t *i, uint64_t seq)
{
	int err;

	for (; *i < g->n; (*i)++) {
		err = shg__retire_with_death(seg, g->v[*i], seq);
		if (err)
			return err;
		SHG_CRASH_POINT("commit.retired_one");
	}
	return 0;
}

/*
 * After a successful publish: retire what the commit replaced (its
 * garbage, the published subtrees it cut off, the base version record),
 * then unpin the base.
 *
 * Unpin last: until the retire entries exist, the base pin is what keeps
 * the garbage (in [birth, seq) of the base's seq) from the live leak
 * sweep (shm/check.c). Retire inside one read section: a retire that
 * fills a batch seals it and runs a reclaim pass, and a batch sealed
 * during the section cannot pass its grace period before the section
 * ends, by when the base is unpinned. Outside a section that pass could
 * find this commit's own garbage held by its own base pin and move it to
 * held batches, only to pop them again after the unpin. If a retire
 * fails in the section (no memory for a batch: a retire inside a section
 * cannot wait for a grace period), the rest is retired after it.
 */
static void retire_and_unpin(struct shg_txn *txn, const struct shg__offvec *cut)
{
	struct shg_seg *seg = txn->seg;
	size_t i = 0, j = 0;
	bool ver_done = !txn->base_ver;
	int err;

	err = shg_read_lock(seg);
	if (!err) {
		err = retire_from(seg, &txn->garbage, &i, txn->seq);
		if (!err)
			err = retire_from(seg, cut, &j, txn->seq);
		if (!err && !ver_done)
			err = shg__retire_with_death(seg, txn->base_ver,
						     txn->seq);
		ver_done = ver_done || !err;
		SHG_CRASH_POINT("commit.after_retire");
		if (!err && txn->base) {
			shg_unpin(txn->base);
			txn->base = NULL;
		}
		shg_read_unlock(seg);
	}
	if (err) { /* the rest, where a retire may wait for a grace period */
		for (; i < txn->garbage.n; i++)
			(void)shg__retire_with_death(seg, txn->garbage.v[i],
						     txn->seq);
		for (; j < cut->n; j++)
			(void)shg__retire_with_death(seg, cut->v[j], txn->seq);
		if (!ver_done)
			(void)shg__retire_with_death(seg, txn->base_ver,
						     txn->seq);
	}
	if (txn->base) {
		shg_unpin(txn->base);
		txn->base = NULL;
	}
}

int shg_txn_commit(struct shg_txn *txn)
{
	bool locked, staged;
	struct cleanup c;
	uint64_t ver;
	int err;

	if (!txn)
		return -EINVAL;
	if (txn->err)
		return txn->err;
	/* Before anything is built: the txn stays valid (abort it). */
	if (shg__replica_refused(txn->seg, txn->rslot, txn->flags))
		return SHG_EREPLICA;
	err = cleanup_collect(txn, &c);
	if (err)
		return err;
	err = build_version(txn, shg__realtime_ns(), c.shared, &ver);
	if (err) {
		cleanup_undo(txn, &c);
		return err;
	}
	/* Stage the garbage in the segment before publishing, inside one
	 * read section up to the publish, so that whoever releases us if we
	 * die after the CAS retires it (shm/epoch_stage.c). */
	locked = shg_read_lock(txn->seg) == 0;
	staged = locked &&
		 shg__stage_garbage(txn->seg, shg__root_slot(txn->root), ver,
				    &txn->garbage, &c.retire, txn->base_ver,
				    txn->seq);
	shg__version_mark_seen(txn->seg, txn->base_ver);
	/* Release CAS: the owned nodes, the record and the stage are
	 * complete before any reader can load @ver. */
	SHG_CRASH_POINT("commit.before_cas");
	err = shg__root_publish(txn->root, (struct shg_off){ txn->base_ver },
				(struct shg_off){ ver });
	if (err) {
		if (staged)
			shg__stage_cancel(txn->seg);
		if (locked)
			shg_read_unlock(txn->seg);
		shg_free(txn->seg, (struct shg_off){ ver }); /* unpublished */
		cleanup_undo(txn, &c);
		return err;
	}
	SHG_CRASH_POINT("commit.after_cas");
	if (staged) {
		SHG_CRASH_POINT("commit.before_retire");
		shg__stage_publish(txn->seg);
		/* The retire entries exist: the base pin may go (inside the
		 * section, as in retire_and_unpin()). */
		if (txn->base)
			(void)shg_unpin(txn->base);
		txn->base = NULL;
	}
	if (locked)
		shg_read_unlock(txn->seg);
	cleanup_done(txn, &c);
	if (!staged)
		retire_and_unpin(txn, &c.retire);
	SHG_CRASH_POINT("commit.after_unpin");
	cleanup_free(&c);
	txn_free(txn);
	return 0;
}

int shg_txn_abort(struct shg_txn *txn)
{
	if (!txn)
		return -EINVAL;
	free_owned(txn);
	if (txn->base)
		shg_unpin(txn->base);
	txn_free(txn);
	return 0;
}

/*
 * Backoff after a lost CAS: sleep a uniformly random time in [0, w) with
 * w = 4 us << attempt, capped at 2 ms ("full jitter"). Two writers that
 * keep colliding desynchronize; the bound keeps one shg_update() call
 * under max_tries * 2 ms of sleep. The generator is per thread (no shared
 * state), seeded from the thread's address and the clock.
 */
#define UPDATE_BACKOFF_NS 4000ull
#define UPDATE_BACKOFF_MAX_NS 2000000ull

static _Thread_local uint64_t backoff_rng;

static uint64_t backoff_next(void)
{
	struct timespec ts;
	uint64_t x = backoff_rng;

	if (!x) {
		clock_gettime(CLOCK_MONOTONIC, &ts);
		x = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^
		    (uint64_t)(uintptr_t)&backoff_rng;
		x |= 1;
	}
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	backoff_rng = x;
	return x;
}

static void update_backoff(unsigned attempt)
{
	uint64_t w = UPDATE_BACKOFF_NS << (attempt < 20 ? attempt : 20);
	uint64_t ns;
	struct timespec ts;

	if (w > UPDATE_BACKOFF_MAX_NS)
		w = UPDATE_BACKOFF_MAX_NS;
	ns = backoff_next() % w;
	ts.tv_sec = 0;
	ts.tv_nsec = (long)ns;
	nanosleep(&ts, NULL);
}

int shg_update(struct shg_root *root, int (*fn)(struct shg_txn *txn, void *arg),
	       void *arg, unsigned max_tries)
{
	return shg_update_flags(root, 0, fn, arg, max_tries);
}

int shg_update_flags(struct shg_root *root, unsigned flags,
		     int (*fn)(struct shg_txn *txn, void *arg), void *arg,
		     unsigned max_tries)
{
	struct shg_txn *txn;
	unsigned i;
	int err = SHG_ECONFLICT;

	if (!fn)
		return -EINVAL;
	if (!max_tries)
		max_tries = 64;
	for (i = 0; i < max_tries; i++) {
		if (i > 0)
			update_backoff(i - 1);
		err = shg_txn_begin_flags(root, flags, SHG_TXN_BUDGET_WAIT_MS,
					  &txn);
		if (err)
			return err;
		err = fn(txn, arg);
		if (err) {
			shg_txn_abort(txn);
			return err;
		}
		err = shg_txn_commit(txn);
		if (!err)
			return 0;
		shg_txn_abort(txn);
		if (err != SHG_ECONFLICT)
			return err;
	}
	return err;
}

#include "txn_detach.c" /* compiled as part of this file */

/* ---- root removal ------------------------------------------------------ */

struct drop_walk {
	struct shg_seg *seg;
	uint64_t death;
	bool staged; /* staging the drop (shg__stage_drop_open) */
};

static int drop_hook_visit(void *arg, uint64_t off, const struct shg_node *n,
			   size_t size)
{
	struct drop_walk *w = arg;

	(void)n;
	(void)size;
	if (w->staged) {
		SHG_CRASH_POINT("drop.staged_one");
		if (!shg__stage_add(w->seg, off, w->death))
			return 0;
		return -EAGAIN; /* give the stage up, retire instead */
	}
	(void)shg__retire_with_death(w->seg, off, w->death);
	return 0;
}

/*
 * A removed root's last holder let go: its current version and every node
 * it reaches are retired with death = seq + 1, so pins of that version (or
 * of older versions sharing the nodes) keep them. Only this graph reaches
 * these nodes (isolation), so one walk is enough.
 */
int shg__graph_drop(struct shg_seg *seg, struct shg_off value, void *arg)
{
	const struct shg_node *n;
	const struct shg_version *v;
	struct drop_walk w = { seg, 0, false };
	int err;

	(void)arg;
	/* Staged when roots.c staged this drop: a death during the walk
	 * then leaves the whole graph to the recoverer (shm/epoch_stage.c). */
	w.staged = shg__stage_drop_open(seg, value.v);
	n = shg__node(seg, value.v, sizeof(*v), NULL, &err);
	if (!n || n->type != SHG_TYPE_VERSION) {
		if (w.staged && !shg__stage_add(seg, value.v, 0))
			return 0;
		return shg_retire(seg, value);
	}
	v = (const struct shg_version *)n;
	w.death = v->seq + 1;
	err = shg__walk(seg, v->node, drop_hook_visit, NULL, &w);
	if (w.staged && err == -EAGAIN) {
		shg__stage_cancel(seg); /* nothing was retired yet */
		w.staged = false;
		err = shg__walk(seg, v->node, drop_hook_visit, NULL, &w);
	}
	if (!w.staged || shg__stage_add(seg, value.v, w.death))
		(void)shg__retire_with_death(seg, value.v, w.death);
	return err;
}

/*
 * The 8-byte word that stores @val (of kind @vk) in a map entry or vector
 * slot: a bytes node is created for bytes values; NODE values must belong
 * to the txn's graph (-EXDEV: import it); ROOT values name a live root.
 */
int shg__txn_val_word(struct shg_txn *txn, unsigned vk,
		      const struct shg_val *val, uint64_t *out)
{
	struct shg_seg *seg = txn->seg;
	const struct shg_node *n;
	struct shg_rslot *rs;
	size_t size;
	int err = 0;

	if (!val || (unsigned)val->kind != vk)
		return -EINVAL;
	switch (vk) {
	case SHG_KIND_BYTES:
		*out = 0;
		if (val->bytes.len == 0)
			return 0;
		if (!val->bytes.p || val->bytes.len > UINT32_MAX)
			return -EINVAL;
		return shg__txn_bytes(txn, val->bytes.p, val->bytes.len, out);
	case SHG_KIND_NODE:
		*out = val->node.v;
		if (val->node.v == 0)
			return 0;
		n = shg__node(seg, val->node.v, sizeof(*n), &size, &err);
		if (!n)
			return err;
		if (n->graph != txn->graph || n->type == SHG_TYPE_VERSION)
			return -EXDEV;
		if (shg__txn_owns(txn, val->node.v))
			return 0;
		return shg__txn_link_check(txn, val->node.v);
	case SHG_KIND_ROOT:
		if (val->root >= seg->max_roots)
			return -EINVAL;
		rs = &seg->roots[val->root];
		if (atomic_load_explicit(&rs->state, memory_order_acquire) !=
		    SHG_ROOT_LIVE)
			return -ENOENT;
		*out = SHG_ROOTREF(val->root,
				   __atomic_load_n(&rs->incarnation,
						   __ATOMIC_RELAXED));
		return 0;
	case SHG_KIND_F64:
		memcpy(out, &val->f64, 8);
		return 0;
	default:
		*out = val->u64;
		return 0;
	}
}

static int base_visit(void *arg, uint64_t off, const struct shg_node *n,
		      size_t size)
{
	(void)n;
	(void)size;
	return shg__oset_add(arg, off);
}

int shg__txn_link_check(struct shg_txn *txn, uint64_t off)
{
	int err;

	if (!txn->base_walked) {
		err = shg__walk(txn->seg, txn->base_ver, base_visit, NULL,
				&txn->base_nodes);
		if (err)
			return err;
		txn->base_walked = true;
	}
	return shg__oset_has(&txn->base_nodes, off) ? 0 : -EXDEV;
}

int shg__txn_unlink_value(struct shg_txn *txn, uint64_t off)
{
	int err;

	if (!off)
		return 0;
	if (shg__txn_owns(txn, off)) {
		txn->walk_owned = true; /* commit frees it if unreachable */
		return 0;
	}
	err = shg__offvec_push(&txn->unlinked, off);
	if (err)
		return poison(txn, err);
	txn->walk_owned = true; /* commit cuts its subtree off */
	return 0;
}
