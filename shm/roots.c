/* SPDX-License-Identifier: MIT */
/*
 * The root table: named slots in the segment, each holding one atomic value
 * (the offset of a published block), a generation (publishes so far) and
 * the count of open handles over all processes. Roots are the entry points
 * of every graph; publishing is one compare-and-swap of a root's value.
 *
 * THEORY OF OPERATION
 *
 * Two kinds of access, on different cache lines of struct shg_rslot:
 *
 *  - Hot paths (shg_root_load, shg_root_cas, shg_root_generation) never
 *    lock and never write the namespace lines. A load is an acquire load of
 *    rslot.value (the rcu_dereference of this layer); a publish is a
 *    release CAS of it. A reader that loads the new value therefore sees
 *    the block's contents written before the CAS.
 *
 *  - Namespace operations (create, open, close, remove, list, recovery)
 *    run under the robust process-shared hdr.root_lock. They change the
 *    name, the state (FREE -> LIVE -> REMOVED -> FREE), the per-process
 *    hold records and rslot.holds (always the sum of the records).
 *
 * WHY AN OPEN HANDLE NEEDS NO CHECK ON LOAD. A handle owns a hold record
 * (one record per process and root incarnation, counting that process's
 * handles). A slot is finalized (value dropped, state FREE, later reused)
 * only under root_lock and only when its holds are 0, and holds only
 * reach 0 when every record is gone. A record goes away only when its
 * process closes its last handle, when its process is dead or detaching
 * (shg__roots_release_proc), or when repair finds it invalid (out of
 * range, on a FREE slot, stale incarnation, or a process slot that is
 * free) -- none of which holds for a record of a live process with an
 * open handle. So while a handle is open its slot keeps its incarnation
 * and shg_root_load() can read the value without looking at the state.
 * Handles are per process: a forked child must open its own segment and
 * roots, never use its parent's.
 *
 * REMOVE. A removed root keeps its slot (state REMOVED, name no longer
 * matched by open, free for a new create) until its last holder lets go,
 * in any process, dead ones included. Then it is finalized: the value is
 * exchanged for 0, the name cleared and the state set FREE. The old value
 * goes to seg->root_drop (default shg_retire) after root_lock is released,
 * because the hook may itself take namespace locks.
 *
 * CRASHES. Every namespace change is ordered so that a death at any
 * instruction under root_lock leaves a state that shg__roots_repair (run
 * by the next locker on EOWNERDEAD) fixes: create writes the whole slot
 * and stores state = LIVE last, then claims a hold record (a LIVE root
 * without holds is legal); a hold record is claimed by storing proc1 last;
 * rslot.holds is recomputed from the records by repair; a REMOVED slot
 * left with no holds (death between "state = REMOVED" and finalize) is
 * finalized after the repair, outside the repair itself so that its value
 * can be dropped without root_lock. A value being dropped is staged in
 * the dropping thread's slot before finalize exchanges it out (roots.c
 * finalize, shm/epoch_stage.c): a process that dies before its drop is
 * complete leaves the graph to whoever releases it, which drops it again
 * from the start.
 */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

/*
 * struct shg_root - per-process handle on an open root.
 * @rs is stable: the slot cannot be finalized while this handle's hold
 * record exists (see above).
 */
struct shg_root {
	struct shg_seg *seg;
	struct shg_rslot *rs; /* &seg->roots[idx] */
	uint32_t idx; /* root slot index */
	uint32_t hold; /* index of our hold record (hint, re-validated) */
	uint64_t incarnation; /* slot incarnation at open */
	char name[SHG_ROOT_NAME_MAX + 1];
};

/* Set by repair in the thread that holds root_lock; see roots_unlock(). */
static _Thread_local bool roots_repaired;

/*
 * Namespace fields and hold records are written under root_lock but read
 * without it by the checker, hence relaxed atomic accesses on them.
 */
/* ---- names ------------------------------------------------------------ */

/* Validate a user-supplied name; its length goes to *@len. */
static int name_check(const char *name, size_t *len)
{
	size_t n, i;

	if (!name)
		return -EINVAL;
	n = strnlen(name, SHG_ROOT_NAME_MAX + 1);
	if (n == 0)
		return -EINVAL;
	if (n > SHG_ROOT_NAME_MAX)
		return -ENAMETOOLONG;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];

		if (c < 0x20 || c == 0x7f)
			return -EINVAL;
	}
	*len = n;
	return 0;
}

/* Whether slot @rs is named @name (@len bytes); reads at most len+1 bytes
 * of rs->name, so a corrupt (unterminated) name is harmless. */
static bool name_eq(const struct shg_rslot *rs, const char *name, size_t len)
{
	return memcmp(rs->name, name, len) == 0 && rs->name[len] == '\0';
}

/* Copy a slot's name, always terminated. */
static void name_copy(char dst[SHG_ROOT_NAME_MAX + 1],
		      const struct shg_rslot *rs)
{
	memcpy(dst, rs->name, SHG_ROOT_NAME_MAX);
	dst[SHG_ROOT_NAME_MAX] = '\0';
}

/* Index of the LIVE slot named @name, or -1. Under root_lock. */
static int64_t find_live(struct shg_seg *seg, const char *name, size_t len)
{
	uint32_t i;

	for (i = 0; i < seg->max_roots; i++) {
		struct shg_rslot *rs = &seg->roots[i];

		if (atomic_load_explicit(&rs->state, memory_order_relaxed) ==
			    SHG_ROOT_LIVE &&
		    name_eq(rs, name, len))
			return i;
	}
	return -1;
}

/* A snapshot of the LIVE slots' names, sorted (for duplicate detection). */
struct name_ent {
	char name[SHG_ROOT_NAME_MAX + 1];
	uint32_t idx;
};

static int name_ent_cmp(const void *a, const void *b)
{
	const struct name_ent *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	if (c)
		return c;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* Returns the sorted array (caller frees) and its size in *@n, or NULL. */
static struct name_ent *live_names(struct shg_seg *seg, uint32_t *n)
{
	struct name_ent *v;
	uint32_t i, k = 0;

	v = malloc((size_t)seg->max_roots * sizeof(*v));
	if (!v)
		return NULL;
	for (i = 0; i < seg->max_roots; i++) {
		struct shg_rslot *rs = &seg->roots[i];

		if (atomic_load_explicit(&rs->state, memory_order_relaxed) !=
		    SHG_ROOT_LIVE)
			continue;
		name_copy(v[k].name, rs);
		v[k].idx = i;
		k++;
	}
	qsort(v, k, sizeof(*v), name_ent_cmp);
	*n = k;
	return v;
}

/* ---- locking, finalize, drop ------------------------------------------- */

static int roots_lock(struct shg_seg *seg)
{
	return shg__lock(seg, &seg->hdr->root_lock, shg__roots_repair);
}

/*
 * Finalize slot @rs (REMOVED, no holds) under root_lock; returns the value
 * to drop once the lock is released. Order: value first (a crash after it
 * leaks the value, never drops it twice), name, then state = FREE last (a
 * crash before it leaves a REMOVED slot without holds, which is finalized
 * again after repair).
 */
static uint64_t finalize(struct shg_seg *seg, struct shg_rslot *rs)
{
	uint64_t v = atomic_load_explicit(&rs->value, memory_order_acquire);
	uint32_t t;

	/* Stage the drop before the value leaves the slot (no holds: no
	 * publisher can change it), so that whoever releases us if we die
	 * before the drop is done retires the whole graph (epoch_stage.c).
	 * Without a stage (outside a read section, no memory) the drop
	 * retires as it goes, as before. */
	if (v)
		(void)shg__stage_begin(
			seg, SHG_STAGE_DROP | (uint32_t)(rs - seg->roots), v,
			&t);
	v = atomic_exchange_explicit(&rs->value, 0, memory_order_acq_rel);
	shg__stage_drop_owned(seg, v);

	memset(rs->name, 0, sizeof(rs->name));
	shg__st32_relaxed(&rs->holds, 0);
	/* Release: the cleared fields are visible before the slot is free. */
	atomic_store_explicit(&rs->state, SHG_ROOT_FREE, memory_order_release);
	return v;
}

/* Hand a finalized root's value to the drop hook. Without root_lock. */
/*
 * Taking a value out of a slot (finalize) and handing it to the drop hook
 * happen inside one read section: the leak sweep marks from roots, then
 * waits for a grace period and marks retired lists again, so a graph in
 * transit between the two is seen in one of them (see shm/check.c).
 */
static bool transit_enter(struct shg_seg *seg)
{
	return shg_read_lock(seg) == 0;
}

static void transit_leave(struct shg_seg *seg, bool entered)
{
	if (entered)
		shg_read_unlock(seg);
}

static void drop_value(struct shg_seg *seg, uint64_t v)
{
	struct shg_off off = { v };

	if (!v)
		return;
	shg__root_drop_value(seg, off);
}

void shg__root_drop_value(struct shg_seg *seg, struct shg_off off)
{
	bool staged = shg__stage_drop_open(seg, off.v);

	if (seg->root_drop)
		seg->root_drop(seg, off, seg->root_drop_arg);
	else if (!staged || shg__stage_add(seg, off.v, 0))
		(void)shg_retire(seg, off);
	/* Every block of the graph is staged (or the stage was given up and
	 * they were retired as the walk went): publish it. */
	if (staged)
		shg__stage_publish(seg);
}

/*
 * Finalize every REMOVED slot that has no holds, one per lock hold so that
 * each value is dropped without root_lock. Such slots exist only after a
 * crash (repair) or after shg__roots_release_proc dropped records. The
 * upper layer's drop hook is in place before anything can get here: it
 * comes with the handle (shg__upper_ops), so even the slot take-over in
 * shg_seg_open drops a removed graph with respect to its pins.
 */
static void finalize_pending(struct shg_seg *seg)
{
	for (;;) {
		uint64_t v = 0;
		bool found = false;
		bool rl = transit_enter(seg);
		uint32_t i;

		if (roots_lock(seg)) {
			transit_leave(seg, rl);
			return;
		}
		for (i = 0; i < seg->max_roots && !found; i++) {
			struct shg_rslot *rs = &seg->roots[i];

			if (atomic_load_explicit(&rs->state,
						 memory_order_relaxed) ==
				    SHG_ROOT_REMOVED &&
			    shg__ld32_relaxed(&rs->holds) == 0) {
				v = finalize(seg, rs);
				found = true;
			}
		}
		roots_repaired = false;
		shg__unlock(seg, &seg->hdr->root_lock);
		drop_value(seg, v);
		transit_leave(seg, rl);
		if (!found)
			return;
	}
}

/* Release root_lock; if taking it ran repair, finish what repair left. */
static void roots_unlock(struct shg_seg *seg)
{
	shg__unlock(seg, &seg->hdr->root_lock);
	if (roots_repaired) {
		roots_repaired = false;
		finalize_pending(seg);
	}
}

/*
 * roots_unlock() for a caller that finalized a value of its own: its drop
 * stage is open until the drop is published, and no other drop or retire
 * may come in between (they would overwrite the staged entries), so the
 * pending finalizations are left to finish_unlock_deferred().
 */
static bool roots_unlock_deferred(struct shg_seg *seg)
{
	bool pending = roots_repaired;

	roots_repaired = false;
	shg__unlock(seg, &seg->hdr->root_lock);
	return pending;
}

static void finish_unlock_deferred(struct shg_seg *seg, bool pending)
{
	if (pending)
		finalize_pending(seg);
}

/* ---- hold records (under root_lock) ------------------------------------ */

/*
 * Find this process's record for (@idx, @inc32), or a free record. Returns
 * the record index in *@rec and whether it already existed in *@found.
 */
static int hold_find(struct shg_seg *seg, uint32_t idx, uint32_t inc32,
		     uint32_t *rec, bool *found)
{
	uint32_t proc1 = seg->pslot + 1;
	uint32_t i, free_rec = UINT32_MAX;

	for (i = 0; i < seg->max_holds; i++) {
		struct shg_hold *h = &seg->holds[i];
		uint32_t p1 = shg__ld32_relaxed(&h->proc1);

		if (p1 == 0) {
			if (free_rec == UINT32_MAX)
				free_rec = i;
		} else if (p1 == proc1 && shg__ld32_relaxed(&h->root) == idx &&
			   shg__ld32_relaxed(&h->incarnation) == inc32) {
			*rec = i;
			*found = true;
			return 0;
		}
	}
	if (free_rec == UINT32_MAX)
		return SHG_ESLOTS;
	*rec = free_rec;
	*found = false;
	return 0;
}

/* Add one hold on slot @idx to record @rec (found by hold_find). */
static int hold_add(struct shg_seg *seg, uint32_t idx, uint32_t rec, bool found)
{
	struct shg_rslot *rs = &seg->roots[idx];
	struct shg_hold *h = &seg->holds[rec];
	uint32_t holds = shg__ld32_relaxed(&rs->holds);

	if (holds == UINT32_MAX ||
	    (found && shg__ld32_relaxed(&h->count) == UINT32_MAX))
		return SHG_ESLOTS;
	if (found) {
		shg__st32_relaxed(&h->count, shg__ld32_relaxed(&h->count) + 1);
	} else {
		shg__st32_relaxed(&h->root, idx);
		shg__st32_relaxed(&h->incarnation, (uint32_t)rs->incarnation);
		shg__st32_relaxed(&h->count, 1);
		/* Claim last: a crash before this leaves the record free. */
		__atomic_store_n(&h->proc1, seg->pslot + 1, __ATOMIC_RELEASE);
	}
	shg__st32_relaxed(&rs->holds, holds + 1);
	return 0;
}

/* Whether record @h is this handle's. */
static bool hold_is(const struct shg_root *root, const struct shg_hold *h)
{
	return shg__ld32_relaxed(&h->proc1) == root->seg->pslot + 1 &&
	       shg__ld32_relaxed(&h->root) == root->idx &&
	       shg__ld32_relaxed(&h->incarnation) ==
		       (uint32_t)root->incarnation &&
	       shg__ld32_relaxed(&h->count) > 0;
}

/* Drop one hold of @root; returns whether the slot must be finalized. */
static bool hold_drop(struct shg_root *root)
{
	struct shg_seg *seg = root->seg;
	struct shg_rslot *rs = root->rs;
	struct shg_hold *h = NULL;
	uint32_t i, c, holds;

	if (root->hold < seg->max_holds &&
	    hold_is(root, &seg->holds[root->hold]))
		h = &seg->holds[root->hold];
	for (i = 0; !h && i < seg->max_holds; i++)
		if (hold_is(root, &seg->holds[i]))
			h = &seg->holds[i];
	if (!h)
		return false; /* already released (repair): nothing held */
	c = shg__ld32_relaxed(&h->count);
	if (c > 1) {
		shg__st32_relaxed(&h->count, c - 1);
	} else {
		shg__st32_relaxed(&h->proc1, 0);
		shg__st32_relaxed(&h->count, 0);
	}
	holds = shg__ld32_relaxed(&rs->holds);
	if (holds)
		shg__st32_relaxed(&rs->holds, --holds);
	return holds == 0 &&
	       atomic_load_explicit(&rs->state, memory_order_relaxed) ==
		       SHG_ROOT_REMOVED;
}

/* ---- namespace operations ---------------------------------------------- */

static struct shg_root *handle_new(struct shg_seg *seg)
{
	struct shg_root *root = calloc(1, sizeof(*root));

	if (root)
		root->seg = seg;
	return root;
}

/* Open slot @idx for @root: add a hold and fill the handle. Locked. */
static int open_locked(struct shg_root *root, uint32_t idx)
{
	struct shg_seg *seg = root->seg;
	struct shg_rslot *rs = &seg->roots[idx];
	uint32_t rec;
	bool found;
	int err;

	err = hold_find(seg, idx, (uint32_t)rs->incarnation, &rec, &found);
	if (!err)
		err = hold_add(seg, idx, rec, found);
	if (err)
		return err;
	root->rs = rs;
	root->idx = idx;
	root->hold = rec;
	root->incarnation = rs->incarnation;
	name_copy(root->name, rs);
	return 0;
}

/* Index of a FREE slot, or -1. Locked. */
static int64_t find_free(struct shg_seg *seg)
{
	uint32_t i;

	for (i = 0; i < seg->max_roots; i++)
		if (atomic_load_explicit(&seg->roots[i].state,
					 memory_order_relaxed) == SHG_ROOT_FREE)
			return i;
	return -1;
}

/* Create a LIVE root @name in a free slot and open it. Locked. */
static int create_locked(struct shg_root *root, const char *name, size_t len)
{
	struct shg_seg *seg = root->seg;
	struct shg_rslot *rs;
	uint32_t rec;
	bool found;
	int64_t idx;
	int err;

	if (find_live(seg, name, len) >= 0)
		return -EEXIST;
	idx = find_free(seg);
	if (idx < 0)
		return SHG_ESLOTS;
	rs = &seg->roots[idx];
	/* Reserve the hold record first so that nothing needs undoing. */
	err = hold_find(seg, (uint32_t)idx, (uint32_t)(rs->incarnation + 1),
			&rec, &found);
	if (err)
		return err;
	atomic_store_explicit(&rs->value, 0, memory_order_relaxed);
	atomic_store_explicit(&rs->gen, 0, memory_order_relaxed);
	atomic_store_explicit(&rs->last_publish_ns, 0, memory_order_relaxed);
	memset(rs->name, 0, sizeof(rs->name));
	memcpy(rs->name, name, len);
	shg__st32_relaxed(&rs->holds, 0);
	rs->incarnation++;
	rs->created_ns = shg__realtime_ns();
	atomic_store_explicit(&rs->refs, 0, memory_order_relaxed);
	rs->graph = atomic_fetch_add(&seg->hdr->next_graph, 1) + 1;
	atomic_store_explicit(&rs->next_seq, 0, memory_order_relaxed);
	/* A new root is writable (a slot reused after a replica root). */
	atomic_store_explicit(&rs->flags, 0, memory_order_relaxed);
	SHG_CRASH_POINT("root.create_filled");
	/* LIVE last, release: a slot seen LIVE is fully initialised; a crash
	 * before this store leaves the slot FREE. */
	atomic_store_explicit(&rs->state, SHG_ROOT_LIVE, memory_order_release);
	SHG_CRASH_POINT("root.create_live");
	return open_locked(root, (uint32_t)idx);
}

/* A new handle on root @name: created (@create) or the live one opened. */
static int handle_get(struct shg_seg *seg, const char *name, bool create,
		      struct shg_root **out)
{
	struct shg_root *root;
	int64_t idx;
	size_t len;
	int err;

	if (!seg || !out)
		return -EINVAL;
	err = name_check(name, &len);
	if (err)
		return err;
	root = handle_new(seg);
	if (!root)
		return -ENOMEM;
	err = roots_lock(seg);
	if (err) {
		free(root);
		return err;
	}
	if (create) {
		err = create_locked(root, name, len);
	} else {
		idx = find_live(seg, name, len);
		err = idx < 0 ? -ENOENT : open_locked(root, (uint32_t)idx);
	}
	roots_unlock(seg);
	if (err) {
		free(root);
		return err;
	}
	*out = root;
	return 0;
}

int shg_root_create(struct shg_seg *seg, const char *name,
		    struct shg_root **out)
{
	return handle_get(seg, name, true, out);
}

int shg_root_open(struct shg_seg *seg, const char *name, struct shg_root **out)
{
	return handle_get(seg, name, false, out);
}

int shg_root_close(struct shg_root *root)
{
	struct shg_seg *seg;
	uint64_t v = 0;
	bool rl, pending;

	if (!root)
		return 0;
	seg = root->seg;
	/* A handle inherited across fork: the hold is the parent's. */
	if (!shg__seg_own(seg)) {
		free(root);
		return 0;
	}
	rl = transit_enter(seg);
	if (roots_lock(seg) == 0) {
		if (hold_drop(root))
			v = finalize(seg, root->rs);
		pending = roots_unlock_deferred(seg);
		drop_value(seg, v);
		finish_unlock_deferred(seg, pending);
	}
	transit_leave(seg, rl);
	free(root);
	return 0;
}

int shg_root_remove(struct shg_seg *seg, const char *name)
{
	bool rl, pending;
	struct shg_rslot *rs;
	uint64_t v = 0;
	int64_t idx;
	size_t len;
	int err;

	if (!seg)
		return -EINVAL;
	err = name_check(name, &len);
	if (err)
		return err;
	rl = transit_enter(seg);
	err = roots_lock(seg);
	if (err) {
		transit_leave(seg, rl);
		return err;
	}
	idx = find_live(seg, name, len);
	if (idx < 0) {
		roots_unlock(seg);
		transit_leave(seg, rl);
		return -ENOENT;
	}
	rs = &seg->roots[idx];
	/* A replica root is its follower's: clear the mark first. */
	if (atomic_load_explicit(&rs->flags, memory_order_relaxed) &
	    SHG_ROOT_F_REPLICA) {
		roots_unlock(seg);
		transit_leave(seg, rl);
		return SHG_EREPLICA;
	}
	/* From here open() no longer matches the name. A crash between this
	 * store and finalize leaves REMOVED without holds: finalize_pending
	 * completes it after repair. */
	atomic_store_explicit(&rs->state, SHG_ROOT_REMOVED,
			      memory_order_release);
	SHG_CRASH_POINT("root.remove_marked");
	if (shg__ld32_relaxed(&rs->holds) == 0)
		v = finalize(seg, rs);
	pending = roots_unlock_deferred(seg);
	SHG_CRASH_POINT("root.remove_finalized");
	drop_value(seg, v);
	SHG_CRASH_POINT("root.remove_dropped");
	finish_unlock_deferred(seg, pending);
	transit_leave(seg, rl);
	return 0;
}

int shg_root_list(struct shg_seg *seg, struct shg_root_info *out, unsigned max)
{
	uint32_t i;
	int n = 0;
	int err;

	if (!seg || (!out && max))
		return -EINVAL;
	err = roots_lock(seg);
	if (err)
		return err;
	for (i = 0; i < seg->max_roots; i++) {
		struct shg_rslot *rs = &seg->roots[i];
		uint32_t st =
			atomic_load_explicit(&rs->state, memory_order_relaxed);
		struct shg_root_info *ri;

		if (st != SHG_ROOT_LIVE && st != SHG_ROOT_REMOVED)
			continue;
		if ((unsigned)n < max) {
			ri = &out[n];
			memset(ri, 0, sizeof(*ri));
			name_copy(ri->name, rs);
			ri->slot = i;
			ri->holds = shg__ld32_relaxed(&rs->holds);
			ri->removed = st == SHG_ROOT_REMOVED;
			ri->value.v = atomic_load_explicit(
				&rs->value, memory_order_acquire);
			ri->generation = atomic_load_explicit(
				&rs->gen, memory_order_relaxed);
			ri->created_ns = rs->created_ns;
			ri->last_publish_ns = atomic_load_explicit(
				&rs->last_publish_ns, memory_order_relaxed);
			ri->replica =
				atomic_load_explicit(&rs->flags,
						     memory_order_relaxed) &
				SHG_ROOT_F_REPLICA;
		}
		n++;
	}
	roots_unlock(seg);
	return n;
}

/*
 * The replica mark (rslot.flags SHG_ROOT_F_REPLICA). One atomic RMW, no
 * root_lock: the open handle keeps the slot's incarnation (see the top of
 * this file), and no namespace operation changes flags except create,
 * which zeroes them before the slot is LIVE. Writers read the mark
 * relaxed before they publish (lib/txn.c); it guards against mistakes,
 * not against a racing writer: a commit that read the mark before it was
 * set may still publish (it is ordered before the mark). Release/acquire
 * here only make the mark's effect on shmctl and tests prompt.
 */
int shg_root_set_replica(struct shg_root *root, bool replica)
{
	if (!root)
		return -EINVAL;
	if (replica)
		atomic_fetch_or_explicit(&root->rs->flags, SHG_ROOT_F_REPLICA,
					 memory_order_release);
	else
		atomic_fetch_and_explicit(&root->rs->flags, ~SHG_ROOT_F_REPLICA,
					  memory_order_release);
	return 0;
}

bool shg_root_is_replica(const struct shg_root *root)
{
	return root &&
	       (atomic_load_explicit(&root->rs->flags, memory_order_acquire) &
		SHG_ROOT_F_REPLICA);
}

/* ---- hot paths (no lock) ---------------------------------------------- */

struct shg_off shg_root_load(const struct shg_root *root)
{
	struct shg_off o;

	/*
	 * rcu_dereference: the acquire pairs with the release CAS of the
	 * publisher, so the block's contents written before the publish are
	 * visible through the loaded offset. No state check: an open handle
	 * keeps its slot from being finalized (see the top of this file).
	 */
	o.v = atomic_load_explicit(&root->rs->value, memory_order_acquire);
	return o;
}

/*
 * Waiting for a publish (shg_root_wait). Theory: a waiter sleeps with
 * FUTEX_WAIT on the low 32 bits of gen (shared futex: processes map the
 * segment at different addresses) after it set rs->waiting = 1 and saw
 * gen unchanged; a publisher, after its gen increment, clears waiting and
 * wakes every sleeper if it was set. Lost wake-ups are impossible: the
 * waiter's store to waiting and load of gen, and the publisher's gen RMW
 * and exchange of waiting, are all seq_cst, so either the waiter's load
 * sees the new gen (it does not sleep) or the publisher's exchange sees
 * waiting = 1 (it wakes); a sleep that starts after the wake finds the
 * futex word changed and returns at once (the kernel compares it under
 * its lock). A waiter that dies leaves waiting = 1: the next publish pays
 * one needless wake. Publishers with nobody waiting pay one load of a
 * word on the line they already wrote.
 */
static uint32_t *gen_word(struct shg_rslot *rs)
{
	return (uint32_t *)&rs->gen +
	       (__BYTE_ORDER__ == __ORDER_BIG_ENDIAN__ ? 1 : 0);
}

static void root_wake(struct shg_rslot *rs)
{
	if (atomic_load_explicit(&rs->waiting, memory_order_seq_cst) &&
	    atomic_exchange_explicit(&rs->waiting, 0, memory_order_seq_cst))
		syscall(SYS_futex, gen_word(rs), FUTEX_WAKE, INT_MAX, NULL,
			NULL, 0);
}

int shg_root_wait(struct shg_root *root, uint64_t gen, int timeout_ms)
{
	struct shg_rslot *rs;
	struct timespec end, now, rel;
	uint64_t g;
	long ns;

	if (!root || timeout_ms < 0)
		return -EINVAL;
	rs = root->rs;
	clock_gettime(CLOCK_MONOTONIC, &end);
	end.tv_sec += timeout_ms / 1000;
	end.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
	if (end.tv_nsec >= 1000000000) {
		end.tv_sec++;
		end.tv_nsec -= 1000000000;
	}
	for (;;) {
		atomic_store_explicit(&rs->waiting, 1, memory_order_seq_cst);
		g = atomic_load_explicit(&rs->gen, memory_order_seq_cst);
		if (g != gen)
			return 0;
		if (atomic_load_explicit(&rs->state, memory_order_relaxed) ==
		    SHG_ROOT_REMOVED)
			return -ENOENT;
		clock_gettime(CLOCK_MONOTONIC, &now);
		ns = (long)(end.tv_sec - now.tv_sec) * 1000000000 +
		     (end.tv_nsec - now.tv_nsec);
		if (ns <= 0)
			return -ETIMEDOUT;
		rel.tv_sec = ns / 1000000000;
		rel.tv_nsec = ns % 1000000000;
		if (syscall(SYS_futex, gen_word(rs), FUTEX_WAIT, (uint32_t)g,
			    &rel, NULL, 0) != 0 &&
		    errno == EINTR)
			return -EINTR;
	}
}

int shg_root_cas(struct shg_root *root, struct shg_off expected,
		 struct shg_off desired)
{
	/* A replica's follower publishes through shg__root_publish (its
	 * txns were admitted with SHG_TXN_REPLICA); a relaxed load is
	 * enough: the mark is set before the follower's first commit and
	 * a writer racing with a mark being set is one the mark did not
	 * yet cover. */
	if (atomic_load_explicit(&root->rs->flags, memory_order_relaxed) &
	    SHG_ROOT_F_REPLICA)
		return SHG_EREPLICA;
	return shg__root_publish(root, expected, desired);
}

int shg__root_publish(struct shg_root *root, struct shg_off expected,
		      struct shg_off desired)
{
	struct shg_rslot *rs = root->rs;
	uint64_t exp = expected.v;

	if (atomic_load_explicit(&rs->state, memory_order_relaxed) ==
	    SHG_ROOT_REMOVED)
		return -ENOENT;
	if (desired.v && !shg__off_ok(root->seg, desired.v, 1, 8))
		return SHG_EBADOFF;
	/*
	 * rcu_assign_pointer: release on success orders every store to the
	 * new block (made before this call) before the value becomes
	 * visible; a reader's acquire load of the value pairs with it.
	 * Acquire (on success and failure) orders our later reads of the
	 * value we observed after the writes of whoever published it.
	 */
	SHG_CRASH_POINT("root.cas_before");
	if (!atomic_compare_exchange_strong_explicit(
		    &rs->value, &exp, desired.v, memory_order_acq_rel,
		    memory_order_acquire))
		return SHG_ECONFLICT;
	SHG_CRASH_POINT("root.cas_after");
	/* Statistics after the publish: gen counts publishes but is not
	 * atomic with the value (release: a reader that sees gen N sees the
	 * value of publish N or a later one). */
	atomic_fetch_add_explicit(&rs->gen, 1, memory_order_seq_cst);
	atomic_store_explicit(&rs->last_publish_ns, shg__realtime_ns(),
			      memory_order_relaxed);
	root_wake(rs);
	atomic_fetch_add_explicit(&root->seg->hdr->commits, 1,
				  memory_order_relaxed);
	return 0;
}

uint64_t shg_root_generation(const struct shg_root *root)
{
	return atomic_load_explicit(&root->rs->gen, memory_order_acquire);
}

const char *shg_root_name(const struct shg_root *root)
{
	return root->name;
}

/* Handle internals for the graph layer (segment, slot, incarnation). */
struct shg_seg *shg__root_seg(const struct shg_root *root)
{
	return root->seg;
}

/* Ordering: as shg_root_load() (acquire, the rcu_dereference). */
uint64_t shg__root_load_seg(const struct shg_root *root, struct shg_seg **seg)
{
	*seg = root->seg;
	return atomic_load_explicit(&root->rs->value, memory_order_acquire);
}

uint32_t shg__root_slot(const struct shg_root *root)
{
	return root->idx;
}

uint64_t shg__root_incarnation(const struct shg_root *root)
{
	return root->incarnation;
}

/* ---- recovery ---------------------------------------------------------- */

uint32_t shg__roots_release_proc(struct shg_seg *seg, uint32_t pidx)
{
	uint32_t proc1 = pidx + 1;
	uint64_t released = 0;
	bool pending = false;
	uint32_t i;

	if (pidx >= seg->max_procs || roots_lock(seg))
		return 0;
	for (i = 0; i < seg->max_holds; i++) {
		struct shg_hold *h = &seg->holds[i];
		uint32_t r = shg__ld32_relaxed(&h->root),
			 c = shg__ld32_relaxed(&h->count);
		struct shg_rslot *rs;
		uint32_t holds;

		if (shg__ld32_relaxed(&h->proc1) != proc1)
			continue;
		shg__st32_relaxed(&h->proc1, 0);
		shg__st32_relaxed(&h->count, 0);
		released += c;
		if (r >= seg->max_roots)
			continue;
		rs = &seg->roots[r];
		if (shg__ld32_relaxed(&h->incarnation) !=
			    (uint32_t)rs->incarnation ||
		    atomic_load_explicit(&rs->state, memory_order_relaxed) ==
			    SHG_ROOT_FREE)
			continue; /* stale record: counted nowhere */
		holds = shg__ld32_relaxed(&rs->holds);
		holds = holds > c ? holds - c : 0;
		shg__st32_relaxed(&rs->holds, holds);
		if (holds == 0 &&
		    atomic_load_explicit(&rs->state, memory_order_relaxed) ==
			    SHG_ROOT_REMOVED)
			pending = true;
	}
	roots_unlock(seg);
	if (pending)
		finalize_pending(seg);
	return released > UINT32_MAX ? UINT32_MAX : (uint32_t)released;
}

/* Repair helper: whether hold record @h must be dropped. */
static bool hold_invalid(struct shg_seg *seg, const struct shg_hold *h)
{
	uint32_t p1 = h->proc1, r = h->root;
	struct shg_rslot *rs;

	if (p1 > seg->max_procs || r >= seg->max_roots || h->count == 0)
		return true;
	if (atomic_load_explicit(&seg->procs[p1 - 1].token,
				 memory_order_acquire) == 0)
		return true; /* no process: nobody can ever close it */
	rs = &seg->roots[r];
	return atomic_load_explicit(&rs->state, memory_order_relaxed) ==
		       SHG_ROOT_FREE ||
	       h->incarnation != (uint32_t)rs->incarnation;
}

/*
 * Repair after a holder of root_lock died (called with the lock held, in
 * EOWNERDEAD state). Re-derives everything derivable:
 *  - names are NUL-terminated; FREE slots have empty names;
 *  - a state outside {FREE, LIVE, REMOVED} (only corruption produces one)
 *    becomes LIVE if the slot has a name (the root is kept, nothing is
 *    lost), else REMOVED (its holders keep it; with no holder it is
 *    finalized and its value dropped, so nothing leaks);
 *  - LIVE names are unique: of duplicates (corruption) the lowest slot
 *    stays LIVE, the others become REMOVED;
 *  - invalid hold records are dropped and rslot.holds recomputed;
 *  - REMOVED slots left with no holds are finalized once the lock is
 *    released (roots_unlock), so their values are dropped unlocked.
 */
void shg__roots_repair(struct shg_seg *seg)
{
	struct name_ent *names;
	uint32_t i, n;

	roots_repaired = true;
	for (i = 0; i < seg->max_roots; i++) {
		struct shg_rslot *rs = &seg->roots[i];
		uint32_t st =
			atomic_load_explicit(&rs->state, memory_order_relaxed);

		rs->name[SHG_ROOT_NAME_MAX] = '\0';
		if (st > SHG_ROOT_REMOVED) {
			st = rs->name[0] ? SHG_ROOT_LIVE : SHG_ROOT_REMOVED;
			atomic_store_explicit(&rs->state, st,
					      memory_order_relaxed);
		}
		if (st == SHG_ROOT_FREE)
			memset(rs->name, 0, sizeof(rs->name));
		shg__st32_relaxed(&rs->holds, 0);
	}
	for (i = 0; i < seg->max_holds; i++) {
		struct shg_hold *h = &seg->holds[i];
		struct shg_rslot *rs;
		uint32_t holds;

		if (h->proc1 == 0)
			continue;
		if (hold_invalid(seg, h)) {
			shg__st32_relaxed(&h->proc1, 0);
			shg__st32_relaxed(&h->count, 0);
			continue;
		}
		rs = &seg->roots[h->root];
		holds = shg__ld32_relaxed(&rs->holds);
		shg__st32_relaxed(&rs->holds, holds > UINT32_MAX - h->count ?
						      UINT32_MAX :
						      holds + h->count);
	}
	names = live_names(seg, &n);
	for (i = 1; names && i < n; i++)
		if (strcmp(names[i].name, names[i - 1].name) == 0)
			atomic_store_explicit(&seg->roots[names[i].idx].state,
					      SHG_ROOT_REMOVED,
					      memory_order_relaxed);
	free(names);
	/* No fence: repair runs under root_lock, whose unlock (release)
	 * publishes the repaired slots to the next locker. */
}

/* ---- checker ------------------------------------------------------------ */

/* Check the hold records; per-slot sums of valid ones go to @sums. */
static void check_holds(struct shg_seg *seg, shg_problem_fn fn, void *arg,
			struct shg_check_report *rep, uint64_t *sums)
{
	uint32_t i;

	for (i = 0; i < seg->max_holds; i++) {
		struct shg_hold *h = &seg->holds[i];
		uint32_t p1 = shg__ld32_relaxed(&h->proc1),
			 r = shg__ld32_relaxed(&h->root);
		uint32_t c = shg__ld32_relaxed(&h->count);

		if (p1 == 0)
			continue;
		if (p1 > seg->max_procs || r >= seg->max_roots) {
			shg__problem(fn, arg, rep, SHG_ECORRUPT,
				     "hold record %u: process %u or root %u "
				     "out of range",
				     i, p1 - 1, r);
			continue;
		}
		if (c == 0)
			shg__problem(fn, arg, rep, SHG_ECORRUPT,
				     "hold record %u: in use with count 0", i);
		if (atomic_load_explicit(&seg->procs[p1 - 1].token,
					 memory_order_acquire) == 0)
			shg__problem(fn, arg, rep, SHG_EDEADOWNER,
				     "hold record %u: process slot %u is free",
				     i, p1 - 1);
		if (atomic_load_explicit(&seg->roots[r].state,
					 memory_order_relaxed) == SHG_ROOT_FREE)
			shg__problem(fn, arg, rep, SHG_ECORRUPT,
				     "hold record %u: root slot %u is free", i,
				     r);
		else if (shg__ld32_relaxed(&h->incarnation) !=
			 (uint32_t)shg__ld64_relaxed(
				 &seg->roots[r].incarnation))
			shg__problem(fn, arg, rep, SHG_ECORRUPT,
				     "hold record %u: stale incarnation of "
				     "root slot %u",
				     i, r);
		sums[r] += c;
	}
}

/* Check one root slot against the record sums. */
static void check_slot(struct shg_seg *seg, uint32_t i, uint64_t sum,
		       shg_problem_fn fn, void *arg,
		       struct shg_check_report *rep)
{
	struct shg_rslot *rs = &seg->roots[i];
	uint32_t st = atomic_load_explicit(&rs->state, memory_order_relaxed);
	uint64_t v = atomic_load_explicit(&rs->value, memory_order_acquire);
	uint32_t holds = shg__ld32_relaxed(&rs->holds);
	char name[SHG_ROOT_NAME_MAX + 1];

	memcpy(name, rs->name, sizeof(name));
	if (st > SHG_ROOT_REMOVED) {
		shg__problem(fn, arg, rep, SHG_ECORRUPT,
			     "root slot %u: bad state %u", i, st);
		return;
	}
	if (memchr(name, '\0', sizeof(name)) == NULL)
		shg__problem(fn, arg, rep, SHG_ECORRUPT,
			     "root slot %u: name not NUL-terminated", i);
	else if (st != SHG_ROOT_FREE && name[0] == '\0')
		shg__problem(fn, arg, rep, SHG_ECORRUPT,
			     "root slot %u: in use with an empty name", i);
	if (holds != sum)
		shg__problem(fn, arg, rep, SHG_ECORRUPT,
			     "root slot %u: holds %u but hold records sum "
			     "to %llu",
			     i, holds, (unsigned long long)sum);
	if (st == SHG_ROOT_FREE) {
		if (v)
			shg__problem(fn, arg, rep, SHG_ECORRUPT,
				     "root slot %u: free with value %llu", i,
				     (unsigned long long)v);
		return;
	}
	if (v && (!shg__off_ok(seg, v, 1, 8) ||
		  shg_block_size(seg, (struct shg_off){ v }) == 0))
		shg__problem(fn, arg, rep, SHG_EBADOFF,
			     "root slot %u: value %llu is not an allocated "
			     "block",
			     i, (unsigned long long)v);
}

/*
 * Verify the root table. Reads only, without root_lock: a namespace
 * operation running concurrently can make it report a transient mismatch
 * (re-run to confirm). Hold records of dead but not yet released
 * processes are not problems (recovery releases them); records whose
 * process slot is free are (SHG_EDEADOWNER).
 */
int shg__roots_check(struct shg_seg *seg, shg_problem_fn fn, void *arg,
		     struct shg_check_report *rep)
{
	struct name_ent *names;
	uint64_t *sums;
	uint32_t i, n;

	sums = calloc(seg->max_roots, sizeof(*sums));
	if (!sums)
		return -ENOMEM;
	check_holds(seg, fn, arg, rep, sums);
	for (i = 0; i < seg->max_roots; i++)
		check_slot(seg, i, sums[i], fn, arg, rep);
	free(sums);
	names = live_names(seg, &n);
	if (!names)
		return -ENOMEM;
	for (i = 1; i < n; i++)
		if (strcmp(names[i].name, names[i - 1].name) == 0)
			shg__problem(fn, arg, rep, SHG_ECORRUPT,
				     "root slots %u and %u: same name \"%s\"",
				     names[i - 1].idx, names[i].idx,
				     names[i].name);
	free(names);
	return 0;
}
