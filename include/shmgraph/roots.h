/* SPDX-License-Identifier: MIT */
/*
 * shmgraph/roots.h - the root table: named, refcounted entry points whose
 * value is swapped atomically. Include <shmgraph.h> rather than this file.
 */
#ifndef SHMGRAPH_ROOTS_H
#define SHMGRAPH_ROOTS_H

#include <shmgraph/base.h>
#include <shmgraph/segment.h>

#ifdef __cplusplus
extern "C" {
#endif

/* -------------------------------------------------------------------------
 * Root table.
 */
struct shg_root; /* per-process handle on a named root slot */

#define SHG_ROOT_NAME_MAX 63 /* bytes, excluding the terminating NUL */

/**
 * shg_root_create() - create a named root (value null) and open it.
 * Return: 0, -EEXIST, -ENAMETOOLONG, -EINVAL, SHG_ESLOTS.
 */
SHG_API SHG_MUST_CHECK int
shg_root_create(struct shg_seg *seg, const char *name, struct shg_root **out);

/**
 * shg_root_open() - open an existing root; counts as a hold.
 * Return: 0, -ENOENT (absent or removed), SHG_ESLOTS.
 */
SHG_API SHG_MUST_CHECK int shg_root_open(struct shg_seg *seg, const char *name,
					 struct shg_root **out);

/* shg_root_close() - drop the hold; frees the handle. Return: 0. */
SHG_API int shg_root_close(struct shg_root *root);

/**
 * shg_root_remove() - remove a root by name.
 *
 * New opens fail at once; the slot and its value are released when the
 * last holder (in any process, dead ones included) lets go. The value
 * block is handed to the drop hook (default: shg_retire()).
 * A replica root (shg_root_set_replica()) is not removed: clear its mark
 * first.
 * Return: 0, -ENOENT, SHG_EREPLICA.
 */
SHG_API SHG_MUST_CHECK int shg_root_remove(struct shg_seg *seg,
					   const char *name);

/**
 * shg_root_load() - the root's current value.
 * Context: inside a read section (or the value must be otherwise held).
 * Ordering: acquire; the block's contents as published are visible.
 */
SHG_API struct shg_off shg_root_load(const struct shg_root *root);

/**
 * shg_root_cas() - publish @desired if the value is still @expected.
 *
 * Ordering: release on success (the block's contents are visible to any
 * reader that loads the new value); the generation is bumped after.
 * Return: 0, or SHG_ECONFLICT (the value changed; nothing published),
 * -ENOENT if the root was removed, SHG_EREPLICA if it is a replica root
 * (shg_root_set_replica).
 */
SHG_API SHG_MUST_CHECK int shg_root_cas(struct shg_root *root,
					struct shg_off expected,
					struct shg_off desired);

/**
 * shg_root_set_replica() - mark @root as a read-only replica root, or
 * clear the mark (@replica false).
 *
 * A marked root is written only by its replication follower (docs/
 * REPLICATION.md), which sets the mark on every root it applies into.
 * Local writes to it fail with SHG_EREPLICA: shg_txn_begin(),
 * shg_txn_commit(), shg_update(), shg_pin_publish(), shg_pin_publish_as(),
 * shg_import() and shg_import_mem(), shg_root_remove(), shg_root_cas(). The follower's
 * own writes pass with SHG_TXN_REPLICA and SHG_IMPORT_REPLICA. Clear the
 * mark to make the root writable again (a follower that applies into it
 * later marks it again).
 * The mark is in the segment (every process sees it) and is cleared when
 * the root is removed.
 * Context: any; a commit that read the mark before it changed may still
 * publish (the mark guards against mistakes, not against racing writers).
 * Return: 0, -EINVAL (NULL @root).
 */
SHG_API int shg_root_set_replica(struct shg_root *root, bool replica);

/**
 * shg_root_is_replica() - whether @root carries the replica mark.
 * Context: any. Return: true if marked (false for NULL).
 */
SHG_API bool shg_root_is_replica(const struct shg_root *root);

/* Number of successful publishes on this root so far. */
SHG_API uint64_t shg_root_generation(const struct shg_root *root);

/**
 * shg_root_wait() - sleep until root @root's generation is no longer @gen.
 * @gen: a value read with shg_root_generation() (what was seen last).
 * @timeout_ms: the longest wait, in milliseconds (0: only look).
 *
 * For a program that follows a root (a replication publisher, a cache
 * that reloads): it sleeps on a futex in the segment, which every
 * publish wakes (from any process), instead of polling. Publishers pay
 * nothing while nobody waits.
 * Context: outside read sections (it sleeps). Ordering: on 0 a
 * following shg_root_load() or pin sees the publish that changed the
 * generation or a later one. Return: 0 (the generation changed),
 * -ETIMEDOUT, -EINTR (a signal arrived), -ENOENT (the root was removed),
 * -EINVAL.
 */
SHG_API SHG_MUST_CHECK int shg_root_wait(struct shg_root *root, uint64_t gen,
					 int timeout_ms);

/* Root's name (NUL-terminated, owned by the handle). */
SHG_API const char *shg_root_name(const struct shg_root *root);

/*
 * struct shg_root_info - one root slot, as listed by shg_root_list().
 */
struct shg_root_info {
	char name[SHG_ROOT_NAME_MAX + 1];
	uint32_t slot; /* index in the root table */
	uint32_t holds; /* open handles over all processes */
	bool removed; /* removed, waiting for its last holder */
	bool replica; /* read-only replica root (shg_root_set_replica) */
	struct shg_off value; /* current value */
	uint64_t generation; /* publishes so far */
	uint64_t created_ns; /* CLOCK_REALTIME at creation */
	uint64_t last_publish_ns; /* CLOCK_REALTIME of the last publish */
};

/**
 * shg_root_list() - snapshot of the root table.
 * Fills up to @max entries; Return: the number of roots in use (may be
 * larger than @max) or a negative code.
 */
SHG_API int shg_root_list(struct shg_seg *seg, struct shg_root_info *out,
			  unsigned max);

#ifdef __cplusplus
}
#endif
#endif /* SHMGRAPH_ROOTS_H */
