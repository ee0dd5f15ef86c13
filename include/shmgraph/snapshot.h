/* SPDX-License-Identifier: MIT */
/*
 * shmgraph/snapshot.h - portable snapshots of one root's graph (export,
 * import). Include <shmgraph.h> rather than this file.
 */
#ifndef SHMGRAPH_SNAPSHOT_H
#define SHMGRAPH_SNAPSHOT_H

#include <shmgraph/base.h>
#include <shmgraph/graph.h>

#ifdef __cplusplus
extern "C" {
#endif

/* -------------------------------------------------------------------------
 * Snapshots (lib/snapshot.c): one root's graph as a portable file --
 * little-endian, nodes numbered in the file (no offsets), versioned,
 * CRC32C-checked per section and as a whole, carrying the type
 * definitions it uses. Format: docs/SNAPSHOT.md.
 */

/* shg_import() flag: replace the graph of an existing root (or create it). */
#define SHG_IMPORT_REPLACE 0x1u
/* shg_import() flag, for the replication follower: the root is marked as a
 * read-only replica (shg_root_set_replica()) before the graph is
 * committed, and an already marked root may be written. */
#define SHG_IMPORT_REPLICA 0x2u

/**
 * shg_export() - write the current version of root @root's graph to @fd.
 *
 * The version is pinned for the whole export, so the file is one
 * consistent version however many commits happen meanwhile. The output is
 * canonical: equal graphs give byte-identical files, in any segment. A
 * root that never committed exports as an empty graph. A node field that
 * references a root that no longer exists is written as a null reference.
 * Context: any (no read section needed). Return: 0; -ENOENT (no such
 * root, or a map/vector value references a removed root); SHG_ECORRUPT or
 * SHG_EBADOFF (the graph is damaged); -ENOMEM; -errno of write().
 */
SHG_API SHG_MUST_CHECK int shg_export(struct shg_seg *seg, const char *root,
				      int fd);

/**
 * shg_import() - read a snapshot from @fd (to its end) into root @root.
 *
 * Reads the whole file, then shg_import_mem(). Return: as shg_import_mem,
 * or -errno of read(), -EFBIG (larger than the segment's capacity).
 */
SHG_API SHG_MUST_CHECK int shg_import(struct shg_seg *seg, const char *root,
				      int fd, unsigned flags);

/**
 * shg_import_mem() - build the graph of snapshot @buf (@len bytes) as the
 * new version of root @root.
 * @flags: 0 (the root must not exist: it is created) or
 *         SHG_IMPORT_REPLACE (an existing root's graph is replaced in one
 *         commit; a missing root is created), optionally with
 *         SHG_IMPORT_REPLICA (the replication follower's import).
 *
 * The whole file is validated before the segment is touched; then the
 * types it carries are registered (idempotent) and the graph is built in
 * one transaction that commits whole or not at all. On any error nothing
 * is published and nothing leaks (a root the import created is removed);
 * only types registered before a late failure remain. Root references
 * name roots by name: those roots must exist (a reference to the exported
 * root itself points to @root).
 * Context: outside read sections.
 * Return: 0; SHG_ETOOSMALL (shorter than a header); SHG_EMAGIC (not a
 * snapshot); SHG_EVERSION (unknown format version); SHG_ETRUNC (shorter
 * than its header says); -EBADMSG (a checksum does not match);
 * SHG_ECORRUPT (inconsistent content: bad lengths, counts, kinds, names,
 * node or type indexes, forward references, unsorted or duplicate keys,
 * unreachable nodes, trailing bytes); -EEXIST (@root exists without
 * SHG_IMPORT_REPLACE, or a type of the same name has other fields);
 * -ENOENT (a referenced root does not exist); -EFBIG; -EINVAL;
 * SHG_ENESTED; SHG_ECAPACITY, -ENOSPC, -ENOMEM, SHG_ECONFLICT;
 * SHG_EREPLICA (@root is a read-only replica, without SHG_IMPORT_REPLICA).
 */
SHG_API SHG_MUST_CHECK int shg_import_mem(struct shg_seg *seg, const char *root,
					  const void *buf, size_t len,
					  unsigned flags);

/**
 * shg_version_pinned() - find version @seq of @root among the pins of
 * every process.
 *
 * An older version stays allocated only while some pin holds it, and this
 * call does not take one: read the version (nodes are validated, so a
 * version freed meanwhile yields errors or garbage, never a crash), then
 * call shg_version_pinned() again and trust what was read only if it
 * still returns the same offset (no pin of a non-current version can be
 * created anew, so one still held at the end was held throughout).
 * Context: any. Return: 0 and *@out (the version record), -ENOENT (no
 * pin holds that version), -EINVAL.
 */
SHG_API SHG_MUST_CHECK int
shg_version_pinned(struct shg_root *root, uint64_t seq, struct shg_off *out);

#ifdef __cplusplus
}
#endif
#endif /* SHMGRAPH_SNAPSHOT_H */
