/* SPDX-License-Identifier: MIT */
/*
 * Internal to the epoch layer (epoch.c, held.c, limbo_check.c): retire
 * batches, their two formats, and the held list's entry points. The theory
 * of operation and the crash-ordering rules are at the top of epoch.c.
 */
#ifndef SHG_LIMBO_H
#define SHG_LIMBO_H

#include "internal.h"
#include "util.h"

#define BATCH_CAP                                                         \
	((uint32_t)((SHG_BATCH_BYTES - offsetof(struct shg_batch, ent)) / \
		    sizeof(struct shg_retired)))
#define HELD_CAP ((uint32_t)SHG_HELD_CAP)
#define BLOCK_ALIGN 16u
#define HOLD_ANY UINT64_MAX /* held, holder unknown (no snapshot) */

/*
 * Plain (non-_Atomic) layout words shared between processes are accessed
 * with atomic builtins so that concurrent checkers never race; the order
 * each use needs is stated there.
 */
/* Batches the heap could hold: bounds every walk over untrusted links. */
static inline uint64_t fifo_bound(const struct shg_seg *seg)
{
	return (uint64_t)seg->nspans * (SHG_SPAN_SIZE / SHG_BATCH_BYTES) + 1;
}

/* The batch at @off if the offset and its geometry are sane, else NULL. */
static inline struct shg_batch *batch_at(struct shg_seg *seg, uint64_t off)
{
	struct shg_batch *b;
	uint32_t cap;

	if (!off || !shg__off_ok(seg, off, SHG_BATCH_BYTES, BLOCK_ALIGN))
		return NULL;
	b = shg__at(seg, off);
	cap = __atomic_load_n(&b->cap, __ATOMIC_RELAXED);
	if (cap != BATCH_CAP && cap != HELD_CAP)
		return NULL;
	if (__atomic_load_n(&b->count, __ATOMIC_RELAXED) > cap)
		return NULL;
	return b;
}

/* A held-format batch (bare offsets, one death bound)? */
static inline bool is_held(struct shg_batch *b)
{
	return __atomic_load_n(&b->cap, __ATOMIC_RELAXED) == HELD_CAP;
}

static inline struct shg_held_batch *as_held(struct shg_batch *b)
{
	return (struct shg_held_batch *)b;
}

/* Entry @i of either format: offset, death, and clearing the offset. */
static inline uint64_t ent_off(struct shg_batch *b, uint32_t i)
{
	return is_held(b) ? shg__ld64_relaxed(&as_held(b)->off[i]) :
			    shg__ld64_relaxed(&b->ent[i].off);
}

static inline uint64_t ent_death(struct shg_batch *b, uint32_t i)
{
	return is_held(b) ? shg__ld64_relaxed(&as_held(b)->death) :
			    shg__ld64_relaxed(&b->ent[i].death);
}

static inline void ent_clear(struct shg_batch *b, uint32_t i)
{
	if (is_held(b))
		shg__st64_relaxed(&as_held(b)->off[i], 0);
	else
		shg__st64_relaxed(&b->ent[i].off, 0);
}

/* Entries in use; acquire pairs with the release store in batch_append. */
static inline uint32_t batch_count(struct shg_batch *b)
{
	uint32_t n = __atomic_load_n(&b->count, __ATOMIC_ACQUIRE);
	uint32_t cap = __atomic_load_n(&b->cap, __ATOMIC_RELAXED);

	if (cap > HELD_CAP)
		cap = HELD_CAP;
	return n > cap ? cap : n;
}

/* Saturating subtraction: shared counters must never wrap around. */
static inline void sat_sub(_Atomic uint64_t *v, uint64_t d)
{
	uint64_t old = atomic_load_explicit(v, memory_order_relaxed);

	while (!atomic_compare_exchange_weak_explicit(
		v, &old, old > d ? old - d : 0, memory_order_relaxed,
		memory_order_relaxed))
		;
}

/*
 * One pin snapshot per reclaim pass, taken lazily by the first entry that
 * needs it, i.e. AFTER the pass's grace check (scan_slots). Why after: a
 * node dead at d is needed only by pins of versions in [birth, d). Such a
 * pin was taken inside a read section that loaded that version from the
 * root before d's commit unlinked it, or derives from a pin that still
 * exists. The batch's grace period covers that section (it cannot have
 * begun after the unlink, it would have loaded a version >= d), so the
 * scan read its release store of 0 with acquire: the pin record's stores,
 * sequenced before it, are visible to the snapshot, which is sequenced
 * after the scan. A snapshot taken before the scan could miss such a pin.
 */
struct pass {
	struct shg__pinsnap snap;
	bool taken;
	bool failed; /* no memory for a snapshot: hold every node entry */
};

const struct shg__pinsnap *shg__pass_snap(struct shg_seg *seg, struct pass *p);
void shg__pass_done(struct pass *p);
bool shg__node_pinned(struct shg_seg *seg, uint64_t off, uint64_t death);
uint64_t shg__hold_split(struct shg_seg *seg, struct shg_tslot *s, uint64_t bo,
			 struct shg_batch *b, struct pass *p);
int64_t shg__rescan_held(struct shg_seg *seg, struct shg__tctx *ctx);
bool shg__held_contains(struct shg_seg *seg, uint64_t off);
bool shg__fifo_contains(struct shg_seg *seg, uint64_t off);
void shg__held_park_locked(struct shg_seg *seg, struct shg_tslot *self);
void shg__repair_held(struct shg_seg *seg);
void shg__dedupe_held(struct shg_seg *seg);
uint64_t shg__batch_fix_bytes(struct shg_seg *seg, struct shg_batch *b);
uint64_t shg__finish_batch(struct shg_seg *seg, struct shg__tctx *ctx,
			   struct shg_tslot *s, uint64_t bo, struct pass *p);

#endif /* SHG_LIMBO_H */
