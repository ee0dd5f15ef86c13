/* SPDX-License-Identifier: MIT */
/*
 * What a layer above shm/ hands down: the one way the segment layer reaches
 * the graph layer (lib/) without naming it.
 *
 * shm/ knows blocks, offsets, slots and epochs; the meaning of a root's
 * value, which blocks a graph reaches, and which pinned version still needs
 * a retired node are the upper layer's. The upper layer passes a table of
 * operations to shg__seg_create()/shg__seg_open() (SQLite's pager takes its
 * callbacks from the b-tree the same way); shm/ calls them at the few points
 * listed here, and works without them (NULL members or a NULL table: raw
 * blocks only, as the shm/ unit tests use it).
 *
 * The interval snapshot below is shm/'s own data structure (the held list
 * and the reclaimer search it); the upper layer only fills it from its pin
 * records.
 */
#ifndef SHG_UPPER_H
#define SHG_UPPER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <shmgraph.h>

#ifndef SHG_HIDDEN
#define SHG_HIDDEN __attribute__((visibility("hidden")))
#endif

struct shg__marker;

/*
 * Interval snapshot: the (graph, sequence) pairs pinned when it was taken,
 * for interval-based reclamation. A node of graph g born at b and dead at d
 * is held while some pin (g, s) has b <= s < d.
 */
#define SHG_IV_SEQ_BITS 40u
#define SHG_IV_SEQ_MASK ((1ull << SHG_IV_SEQ_BITS) - 1)
struct shg__pinsnap {
	size_t n;
	uint64_t *key; /* sorted (graph << 40 | seq) — seq < 2^40 */
	uint64_t gen; /* pin table gen, read before the records */
	uint64_t min_seq; /* smallest pinned sequence, any graph (UINT64_MAX:
			   * no pins): a node dead at or before it is held
			   * by no pin */
};

/* Key of a pin of @graph at @seq. */
static inline uint64_t shg__pinsnap_key(uint32_t graph, uint64_t seq)
{
	return ((uint64_t)graph << SHG_IV_SEQ_BITS) | (seq & SHG_IV_SEQ_MASK);
}

/* pinsnap.c: search and free a snapshot (pure functions). */
SHG_HIDDEN void shg__pinsnap_free(struct shg__pinsnap *snap);
/* Key (graph << 40 | seq) of a pin that holds such a node, 0 if none. */
SHG_HIDDEN uint64_t shg__pinsnap_holder(const struct shg__pinsnap *snap,
					uint32_t graph, uint64_t birth,
					uint64_t death);
/* Is a node of @graph born at @birth and dead at @death still pinned? */
SHG_HIDDEN bool shg__pinsnap_holds(const struct shg__pinsnap *snap,
				   uint32_t graph, uint64_t birth,
				   uint64_t death);
/* Whether the snapshot holds a pin with key @key. */
SHG_HIDDEN bool shg__pinsnap_has(const struct shg__pinsnap *snap, uint64_t key);

/*
 * struct shg__upper_ops - the upper layer's operations (all optional).
 *
 * @rules:         encoding rules the upper layer's readers and writers must
 *                 share beyond struct layouts; folded into the layout hash,
 *                 so segments written under other rules are refused.
 * @root_drop:     a removed root's value, once its last holder let go (in
 *                 no lock; default: shg_retire of the value).
 * @mark_value:    leak sweep: mark what the value @v of root slot @root
 *                 reaches. Called inside a short read section; a long walk
 *                 pins @v there and runs later (shg__mark_later).
 * @mark_extra:    leak sweep: mark the upper layer's own blocks and every
 *                 pinned version (same context as @mark_value).
 * @check:         shg_check: the upper layer's invariants.
 * @release_proc:  a dead process slot @pidx is being released: drop what
 *                 the upper layer recorded for it (pins); returns how many.
 * @pinsnap_take:  fill an interval snapshot from the pin records (memory
 *                 from malloc; -ENOMEM: the caller holds every node).
 * @pins_gen:      the pin table's generation (moves on every unpin);
 *                 acquire; 0 without a table.
 * @node_interval: the graph id and birth of the node at @off, or false if
 *                 @off is not a valid node (then it is freed like a plain
 *                 retired block).
 */
struct shg__upper_ops {
	uint32_t rules;
	int (*root_drop)(struct shg_seg *seg, struct shg_off value, void *arg);
	void (*mark_value)(struct shg__marker *mk, struct shg_seg *seg,
			   uint32_t root, uint64_t v);
	void (*mark_extra)(struct shg__marker *mk, struct shg_seg *seg);
	int (*check)(struct shg_seg *seg, shg_problem_fn fn, void *arg,
		     struct shg_check_report *rep);
	uint32_t (*release_proc)(struct shg_seg *seg, uint32_t pidx);
	int (*pinsnap_take)(struct shg_seg *seg, struct shg__pinsnap *snap);
	uint64_t (*pins_gen)(struct shg_seg *seg);
	bool (*node_interval)(struct shg_seg *seg, uint64_t off,
			      uint32_t *graph, uint64_t *birth);
};

/*
 * Staged retires (epoch_stage.c): a commit records the blocks it will
 * replace before it publishes, so that a death between its publish and
 * its retires leaves them to whoever releases its thread slot. Context:
 * the calling thread, inside a read section from begin to publish or
 * cancel (its epoch keeps every version it read, and the staged batches
 * once linked, from being freed before its slot is released).
 *
 * shg__stage_begin():   start staging for version @ver on root slot @root;
 *                       *@tidx gets the caller's thread slot, which the
 *                       upper layer records in @ver (for shg__stage_seen).
 *                       Return 0, -EINVAL outside a read section,
 *                       -EBUSY if a stage is open, or an allocation error.
 * shg__stage_add():     record @off, dead at @death, as a staged retire.
 *                       Return 0 or an error (then cancel and retire the
 *                       usual way after publishing).
 * shg__stage_publish(): the publish succeeded: the staged entries become
 *                       retired (sealed batches linked in one lock hold).
 * shg__stage_cancel():  the publish failed: forget the stage.
 * shg__stage_seen():    a commit read @ver, staged by thread slot @tidx, as
 *                       its base (so @ver was published): call before that
 *                       commit's own root CAS, inside the read section in
 *                       which it loaded @ver.
 */
SHG_HIDDEN int shg__stage_begin(struct shg_seg *seg, uint32_t root,
				uint64_t ver, uint32_t *tidx);
SHG_HIDDEN int shg__stage_add(struct shg_seg *seg, uint64_t off,
			      uint64_t death);
SHG_HIDDEN void shg__stage_publish(struct shg_seg *seg);
SHG_HIDDEN void shg__stage_cancel(struct shg_seg *seg);
SHG_HIDDEN void shg__stage_seen(struct shg_seg *seg, uint32_t tidx,
				uint64_t ver);
/*
 * A removed root's value @v on its way to the drop hook: staged by the
 * calling thread when the slot gave it up (roots.c), so that a death
 * during the drop leaves the whole graph to whoever releases the thread:
 * it drops the graph again from the start unless the drop's stage was
 * complete. stage_root is SHG_STAGE_DROP | the root slot.
 * shg__stage_drop_open(): whether the caller stages the drop of @v; the
 * drop hook then calls shg__stage_add() for every block instead of
 * retiring it (if an add fails: shg__stage_cancel(), then retire
 * everything the usual way), and roots.c publishes the stage after it.
 */
#define SHG_STAGE_DROP 0x80000000u
SHG_HIDDEN bool shg__stage_drop_open(struct shg_seg *seg, uint64_t v);
/* The staged drop of @v is the caller's alone (the value left the root
 * slot by its exchange): if it dies before the drop's stage is complete,
 * its releaser drops the graph again. No-op without such a stage. */
SHG_HIDDEN void shg__stage_drop_owned(struct shg_seg *seg, uint64_t v);
/* Drop removed root value @off (the drop hook, staged when possible). */
SHG_HIDDEN void shg__root_drop_value(struct shg_seg *seg, struct shg_off off);

/* segment.c: create or open a segment on behalf of the layer @ops. */
SHG_HIDDEN int shg__seg_create(const char *name, const struct shg_opts *opts,
			       const struct shg__upper_ops *ops,
			       struct shg_seg **out);
SHG_HIDDEN int shg__seg_open(const char *name, const struct shg_opts *opts,
			     const struct shg__upper_ops *ops,
			     struct shg_seg **out);

#endif /* SHG_UPPER_H */
