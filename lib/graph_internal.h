/* SPDX-License-Identifier: MIT */
/*
 * Internal interfaces of the graph layer (lib/): node and type-table
 * layouts in the segment, the transaction internals that the map and
 * vector code build on, pins and interval-based reclamation, and the
 * generic traversal shared by the checker, import, the sweep and dump.
 *
 * Files:
 *   types.c    type table (registration, lookup, built-ins)
 *   node.c     node validation and typed field access (read side)
 *   walk.c     generic traversal through the type table (checker, import,
 *              sweep marking, dump)
 *   version.c  versions, pins (pin table), interval checks for reclaim
 *   txn.c      transactions: begin, mut, setters, commit, abort, update;
 *              includes txn_detach.c (detached versions, publish)
 *   txn_import.c  import (copying a subgraph into a txn)
 *   map.c      persistent hash map (CHAMP-style HAMT with leaves): edits;
 *              map_read.c lookups and iteration, map_internal.h layout
 *   vec.c      persistent vector (32-way radix trie)
 *   gcheck.c   graph-layer checker and recovery (sweep marking)
 *   attach.c   shg_seg_create/open: the operations table handed to shm/
 */
#ifndef SHG_GRAPH_INTERNAL_H
#define SHG_GRAPH_INTERNAL_H

#include "internal.h"
#include "util.h"

/*
 * Encoding rules of the graph layer that readers and writers must share
 * beyond struct layouts (shg__upper_ops.rules, folded into the layout
 * hash): 2 = map subtrees of 2..64 u64-keyed entries are sorted leaves.
 */
#define SHG_GRAPH_RULES 2u

/* Base version @ver was read by a commit about to publish (version.c). */
SHG_HIDDEN void shg__version_mark_seen(struct shg_seg *seg, uint64_t ver);
/* Stage a commit's garbage (@g, @cut, base record @base_ver, all dead at
 * @seq) for version @ver on @root's slot; caller in a read section. False
 * if it could not (then retire after publishing, as before). */
SHG_HIDDEN bool shg__stage_garbage(struct shg_seg *seg, uint32_t root,
				   uint64_t ver, const struct shg__offvec *g,
				   const struct shg__offvec *cut,
				   uint64_t base_ver, uint64_t seq);

/* The graph layer's operations, handed to shm/ at create/open (attach.c). */
SHG_HIDDEN extern const struct shg__upper_ops shg__graph_ops;
/* A removed root's value, once unheld: drop the graph it names (txn.c). */
SHG_HIDDEN int shg__graph_drop(struct shg_seg *seg, struct shg_off value,
			       void *arg);
/* Leak-sweep marking and the graph invariants (gcheck.c). */
SHG_HIDDEN void shg__graph_mark_value(struct shg__marker *mk,
				      struct shg_seg *seg, uint32_t root,
				      uint64_t v);
SHG_HIDDEN void shg__graph_mark_extra(struct shg__marker *mk,
				      struct shg_seg *seg);
SHG_HIDDEN int shg__graph_check(struct shg_seg *seg, shg_problem_fn fn,
				void *arg, struct shg_check_report *rep);

/* ---- nodes ------------------------------------------------------------- */

/*
 * Every graph-layer block starts with this header. A node is immutable once
 * published; only the txn that created or copied it (its "owner") writes
 * it, before commit.
 */
struct shg_node {
	uint32_t type; /* type id (index in the type table) */
	uint32_t graph; /* graph id of the graph it belongs to */
	uint64_t birth; /* sequence of the txn that created it */
};
_Static_assert(sizeof(struct shg_node) == 16, "node header");

/* Bytes node (SHG_TYPE_BYTES): length, hash, data. */
struct shg_bytes {
	struct shg_node h;
	uint32_t len; /* bytes of data */
	uint32_t hash; /* low 32 bits of the map hash of the data */
	uint8_t data[]; /* @len bytes */
};
_Static_assert(offsetof(struct shg_bytes, data) == 24, "bytes");

/* Version record (SHG_TYPE_VERSION). */
struct shg_version {
	struct shg_node h; /* birth == seq */
	uint64_t node; /* the graph's root node (offset, 0 = none) */
	uint64_t seq; /* this version's sequence */
	uint64_t parent; /* base version's sequence (0 = none) */
	uint64_t commit_ns; /* CLOCK_REALTIME at commit (0 = detached) */
	uint64_t bytes; /* bytes of blocks reachable from this version */
	uint64_t nodes; /* blocks reachable from this version */
};
_Static_assert(sizeof(struct shg_version) == 64, "version");

/*
 * Version records are allocated with a trailing flags word (txn.c). A
 * record in a smaller block has flags 0.
 */
struct shg_version_x {
	struct shg_version v;
	uint64_t flags; /* SHG_VERF_* */
	uint64_t stager; /* thread slot + 1 that staged the commit publishing
			  * this version (0 = none); set before publication
			  * (txn.c, shm/epoch_stage.c) */
};
_Static_assert(sizeof(struct shg_version_x) == 80, "version_x");
/* Some node of this version has two parents (a DAG, not a tree): commits
 * on it check their garbage against a full walk. */
#define SHG_VERF_SHARED 0x1u

/* Root reference field value: slot index and the slot's incarnation. */
#define SHG_ROOTREF(slot, inc) (((uint64_t)(inc) << 32) | (uint32_t)(slot))
#define SHG_ROOTREF_SLOT(v) ((uint32_t)(v))
#define SHG_ROOTREF_INC(v) ((uint32_t)((v) >> 32))
/*
 * Slot of root ref @ref if that root still exists in the incarnation the
 * ref names. Return 0, -ENOENT (removed or slot reused), SHG_ECORRUPT.
 */
SHG_HIDDEN int shg__rootref_resolve(struct shg_seg *seg, uint64_t ref,
				    uint32_t *slot);

/* ---- type table ------------------------------------------------------- */

#define SHG_MAX_TYPES 1024u
#define SHG_EXT_TYPES 0 /* hdr.ext[] index of the type table offset */

/*
 * One registered type or type version (a heap block, immutable once
 * listed except for @link of a type's first record, see below).
 *
 * Schema evolution: a type's first record (no SHG_TYPEF_VERSION) holds
 * the id every API hands out; each later version is a record of its own
 * (same name, SHG_TYPEF_VERSION, @link = the first record's id) whose
 * fields extend the previous version's by appended fields. A node's header
 * names the record of the version it was made under, so its field count is
 * that record's. In the first record @link is the id of the newest version
 * (0: none yet), stored with release under the table lock after that
 * version is listed and counted; segments made before versions existed
 * have 0 there (the field was padding, always zeroed).
 */
struct shg_type_rec {
	char name[SHG_TYPE_NAME_MAX + 1]; /* NUL-terminated */
	uint32_t id; /* its index in the table */
	uint32_t nfields; /* <= SHG_MAX_FIELDS */
	uint32_t flags; /* SHG_TYPEF_* */
	uint32_t link; /* first record: newest version's id (0 = none),
			* atomic; version: the first record's id */
	uint8_t kind[SHG_MAX_FIELDS]; /* enum shg_kind of each field */
	char fname[SHG_MAX_FIELDS][SHG_FIELD_NAME_MAX + 1];
};
#define SHG_TYPEF_BUILTIN 0x1u /* layout is code, not fields */
#define SHG_TYPEF_VERSION 0x2u /* a later version of type @link */

/* The table (a heap block named by hdr.ext[SHG_EXT_TYPES]). */
struct shg_type_table {
	pthread_mutex_t lock; /* robust: registration */
	_Atomic uint32_t count; /* ids in use (release after the rec) */
	uint32_t pad;
	_Atomic uint64_t rec[SHG_MAX_TYPES]; /* offset of each type record */
};

/* Validated type record for @id, or NULL. */
SHG_HIDDEN const struct shg_type_rec *shg__type_get(struct shg_seg *seg,
						    uint32_t id);
/* The public id of @r's type (its first record's id). */
static inline uint32_t shg__type_base(const struct shg_type_rec *r)
{
	return (r->flags & SHG_TYPEF_VERSION) ? r->link : r->id;
}
/*
 * Validated record of the newest version of the type that record @r (any
 * version, validated) belongs to; @r itself if it is the newest or a
 * built-in. Never NULL. Lock-free (two loads past @r).
 */
SHG_HIDDEN const struct shg_type_rec *
shg__type_newest(struct shg_seg *seg, const struct shg_type_rec *r);
/* Create the table with the built-ins if absent (idempotent). */
SHG_HIDDEN int shg__types_init(struct shg_seg *seg);
/* Calls @fn for the table block and every record block (sweep marking). */
SHG_HIDDEN void shg__types_blocks(struct shg_seg *seg,
				  void (*fn)(void *arg, uint64_t off),
				  void *arg);
/* Checker: table and records valid, built-ins present, names unique. */
SHG_HIDDEN int shg__types_check(struct shg_seg *seg, shg_problem_fn fn,
				void *arg, struct shg_check_report *rep);

/* ---- node access (read side) ------------------------------------------ */

/*
 * Validated header of the node at @off: in range, 16-aligned, an allocated
 * block at least @min_size bytes, known type. Sets *@size to the block size.
 * NULL (and *@err) on failure. Never reads outside the mapping.
 */
SHG_HIDDEN const struct shg_node *shg__node(struct shg_seg *seg, uint64_t off,
					    size_t min_size, size_t *size,
					    int *err);
/* Payload size needed by a user type with @nfields (8 bytes a field). */
static inline size_t shg__user_node_size(uint32_t nfields)
{
	return sizeof(struct shg_node) + 8u * nfields;
}
/* Validated bytes node (length checked against the block). */
SHG_HIDDEN const struct shg_bytes *shg__bytes(struct shg_seg *seg, uint64_t off,
					      int *err);
/* Raw word of field @field (declared kind @kind) of user node @node. */
SHG_HIDDEN int shg__field_word(struct shg_seg *seg, struct shg_off node,
			       unsigned field, enum shg_kind kind, uint64_t *v);
/* shg__node() that also returns the node's validated type record. */
SHG_HIDDEN const struct shg_node *
shg__node_rec(struct shg_seg *seg, uint64_t off, size_t min_size, size_t *size,
	      const struct shg_type_rec **rec, int *err);

/* ---- traversal --------------------------------------------------------- */

/*
 * Calls @fn for every child offset (NODE and BYTES fields, map/vector
 * children and values of node/bytes kind, version's node) of the node at
 * @off, without recursion. ROOT fields are reported through @rootfn (may be
 * NULL). Returns 0 or a negative code if the node is invalid.
 */
SHG_HIDDEN int shg__node_children(struct shg_seg *seg, uint64_t off,
				  void (*fn)(void *arg, uint64_t child),
				  void (*rootfn)(void *arg, uint64_t rootref),
				  void *arg);

/*
 * Full traversal from @start (a node offset, 0 = nothing): iterative DFS
 * with a visited set, so each reachable node is visited once (shared
 * subtrees too) and cycles in corrupt data terminate. @visit runs on each
 * node before its children (pre-order); it returns 0 to descend, > 0 to
 * skip this node's children, < 0 to stop the walk with that code; it must
 * not free the node (its children are read after it returns; retiring is
 * fine). ROOT fields go to @rootfn (may be NULL), once per occurrence.
 * Does not cross root refs. Allocates process-local memory (not for lookup
 * paths).
 * Return: 0, @visit's negative code, SHG_EBADOFF / SHG_ECORRUPT at the
 * first invalid node, -ENOMEM.
 */
SHG_HIDDEN int shg__walk(struct shg_seg *seg, uint64_t start,
			 int (*visit)(void *arg, uint64_t off,
				      const struct shg_node *n, size_t size),
			 void (*rootfn)(void *arg, uint64_t rootref),
			 void *arg);

/* ---- pins ---------------------------------------------------------------- */

/*
 * Pin table (a heap block named by hdr.ext[SHG_EXT_PINS]); each record pins
 * one version. Claimed by CAS of proc1 (0 -> process slot + 1); graph, seq
 * and version are written after, inside a read section, so a reclaimer whose
 * grace period covered the pinner sees them complete; a record with
 * version == 0 protects nothing (it is being set up or torn down).
 */
#define SHG_EXT_PINS 1
#define SHG_MAX_PINS 4096u
struct shg_pinrec {
	_Atomic uint32_t proc1; /* owning process slot + 1, 0 = free */
	uint32_t root; /* root slot the version belongs to */
	uint32_t graph; /* graph id */
	uint32_t flags; /* SHG_PINF_* */
	_Atomic uint64_t seq; /* pinned version's sequence */
	_Atomic uint64_t version; /* pinned version record (offset) */
};
_Static_assert(sizeof(struct shg_pinrec) == 32, "pinrec");
#define SHG_PINF_DETACHED 0x1u /* a detached version (owns its nodes) */

struct shg_pin_table {
	_Atomic uint64_t gen; /* bumped on every unpin (rescan held) */
	_Atomic uint64_t hiwater; /* records [0, hiwater) were ever used:
				   * snapshots scan only those */
	uint64_t pad[6];
	struct shg_pinrec rec[SHG_MAX_PINS];
};

/* Process-local pin handle. */
struct shg_pin {
	struct shg_seg *seg;
	uint32_t idx; /* record index */
	uint32_t root; /* root slot */
	uint64_t version; /* version offset */
	uint64_t seq;
	uint32_t graph;
	bool detached; /* a detached version: owns nodes with birth == seq */
	void *priv; /* detached: its base pin and garbage (txn.c) */
};

/* Pin @version (read section held by the caller). */
SHG_HIDDEN int shg__pin_take(struct shg_seg *seg, uint32_t root,
			     uint64_t version, bool detached,
			     struct shg_pin **out);
/* A published detached version becomes an ordinary pin (version.c). */
SHG_HIDDEN void shg__pin_undetach(struct shg_pin *pin);
/* Unpin of a detached version: retire its own nodes and its record, drop
 * its base pin (txn.c). */
SHG_HIDDEN void shg__detached_release(struct shg_pin *pin);
/* Release every pin of process slot @pidx (recovery). */
SHG_HIDDEN uint32_t shg__pins_release_proc(struct shg_seg *seg, uint32_t pidx);

/* Fill an interval snapshot from the pin records (shg__upper_ops). Taken
 * by the reclaimer AFTER the grace period of the batches it frees. */
SHG_HIDDEN int shg__pinsnap_take(struct shg_seg *seg,
				 struct shg__pinsnap *snap);
/* Current pin table gen (0 if there is no table); acquire. */
SHG_HIDDEN uint64_t shg__pins_gen(struct shg_seg *seg);

/* ---- transactions -------------------------------------------------------- */

struct shg_txn {
	struct shg_seg *seg;
	struct shg_root *root; /* root it commits to */
	uint32_t rslot; /* root slot index */
	uint32_t graph; /* graph id */
	struct shg_pin *base; /* pinned base version (may be NULL: empty) */
	uint64_t base_ver; /* base version offset (0 = root was empty) */
	uint64_t base_seq; /* base version's sequence (0 = none) */
	uint64_t base_bytes; /* base version's bytes and nodes totals */
	uint64_t base_count;
	uint64_t seq; /* this txn's sequence (birth of its nodes) */
	uint64_t root_node; /* graph root node as of the txn */
	struct shg__offset_set owned; /* nodes created/copied in this txn */
	struct shg__offvec garbage; /* published nodes it replaced */
	int64_t bytes_delta; /* reachable bytes added minus replaced */
	int64_t nodes_delta; /* reachable blocks added minus replaced */
	int err; /* sticky: a failed edit poisons the txn */
	unsigned flags; /* SHG_TXN_* given to begin */
	struct shg__offvec unlinked; /* published children set_node replaced:
				      * garbage if unreachable at commit */
	bool full_check; /* a published node was linked (shared or moved):
			  * commit checks garbage against a full walk */
	bool walk_owned; /* node_new/set_node/import used: commit walks the
			  * owned nodes (unlinked ones are freed, sharing
			  * detected) */
	bool base_walked; /* @base_nodes is built */
	struct shg__offset_set base_nodes; /* nodes reachable from the base,
					    * built by the first link of a
					    * published node */
};

/*
 * Whether a write to root slot @rslot must fail with SHG_EREPLICA: the
 * slot carries the replica mark and @flags (SHG_TXN_*) is not the
 * follower's. One relaxed load of a namespace line that only mark changes
 * and creates write (shm/roots.c, shg_root_set_replica). Relaxed is
 * enough: the mark guards no data (nothing is read because of it); a
 * load that misses a mark being set places this write before the mark,
 * as if it had committed a moment earlier.
 */
static inline bool shg__replica_refused(struct shg_seg *seg, uint32_t rslot,
					unsigned flags)
{
	return !(flags & SHG_TXN_REPLICA) &&
	       (atomic_load_explicit(&seg->roots[rslot].flags,
				     memory_order_relaxed) &
		SHG_ROOT_F_REPLICA);
}

/* Allocate a zeroed node of @type and @size bytes owned by @txn. */
SHG_HIDDEN int shg__txn_alloc(struct shg_txn *txn, uint32_t type, size_t size,
			      uint64_t *out);
/* Whether @off was created or copied in @txn (mutable in place). */
static inline bool shg__txn_owns(const struct shg_txn *txn, uint64_t off)
{
	return shg__oset_has(&txn->owned, off);
}
/*
 * shg__txn_owns() of node @off whose header @n was validated: every node
 * the txn created or copied has birth == txn->seq (set by the txn, never
 * written by anyone else), so most published nodes are told apart
 * without probing the set.
 */
static inline bool shg__txn_owns_node(const struct shg_txn *txn, uint64_t off,
				      const struct shg_node *n)
{
	return n->birth == txn->seq && shg__oset_has(&txn->owned, off);
}
/*
 * Copy published node @off into a new owned node of @new_size bytes (>= the
 * copied bytes; the rest zeroed) and record @off as garbage. Returns the
 * copy. If @off is owned already and fits, returns it unchanged.
 */
SHG_HIDDEN int shg__txn_copy(struct shg_txn *txn, uint64_t off, size_t new_size,
			     uint64_t *out);
/*
 * shg__txn_copy() of node @off whose header @n (at @off) the caller has
 * validated (type, heap range): only the allocator's block record is
 * checked (a block starts at @off, inside the backed heap).
 */
SHG_HIDDEN int shg__txn_copy_hdr(struct shg_txn *txn, uint64_t off,
				 const struct shg_node *n, size_t new_size,
				 uint64_t *out);
/*
 * Whether published node @off of the txn's graph may be linked into it: it
 * must be reachable from the txn's base version (which the txn pins), not
 * taken from an older version, where nothing keeps it alive once that
 * version's pin goes. The first call walks the base once. Return 0,
 * -EXDEV (copy it with shg_txn_import()), or a walk error.
 */
SHG_HIDDEN int shg__txn_link_check(struct shg_txn *txn, uint64_t off);
/*
 * A NODE value @off (map entry, vector slot) was removed or overwritten:
 * commit retires its subgraph if nothing else reaches it (the unlinked
 * list of shg_txn_set_node), or frees it if it was made in this txn. A
 * failure poisons the txn. Return 0 or -ENOMEM.
 */
SHG_HIDDEN int shg__txn_unlink_value(struct shg_txn *txn, uint64_t off);
/*
 * Fill @out (may be NULL) from a map or vector value word @w of kind @vk:
 * scalars as is, BYTES through their (checked) bytes node, NODE as the
 * offset, ROOT as the slot. Return 0, SHG_EBADOFF or SHG_ECORRUPT.
 */
SHG_HIDDEN int shg__val_out(struct shg_seg *seg, unsigned vk, uint64_t w,
			    struct shg_val *out);
/* Node @off leaves the graph: garbage if published, freed if owned. */
SHG_HIDDEN void shg__txn_drop(struct shg_txn *txn, uint64_t off);
/* Make a bytes node in @txn. */
SHG_HIDDEN int shg__txn_bytes(struct shg_txn *txn, const void *p, size_t len,
			      uint64_t *out);
/* Encode a map/vector value (creates bytes nodes; checks NODE/ROOT). */
SHG_HIDDEN int shg__txn_val_word(struct shg_txn *txn, unsigned vk,
				 const struct shg_val *val, uint64_t *out);
/* Resolve a ref to the address of its 8-byte slot (node must be owned). */
SHG_HIDDEN int shg__txn_ref_slot(struct shg_txn *txn, struct shg_ref ref,
				 uint64_t **slot);
/* Slot of a NODE field (or the graph root); -EINVAL for any other kind. */
SHG_HIDDEN int shg__txn_node_slot(struct shg_txn *txn, struct shg_ref ref,
				  uint64_t **slot);
/* Slot of a NODE field holding a container of built-in @type, or -EINVAL. */
SHG_HIDDEN int shg__txn_container_slot(struct shg_txn *txn, struct shg_ref ref,
				       uint32_t type, uint64_t **slot);
/* Make the node in *@slot mutable (copy once per txn, stored in *@slot). */
SHG_HIDDEN int shg__txn_slot_mut(struct shg_txn *txn, uint64_t *slot,
				 uint64_t *out);

/* ---- map and vector internals ------------------------------------------ */

/* Children of built-in container nodes (walk.c dispatches to these). */
SHG_HIDDEN int shg__map_children(struct shg_seg *seg, uint64_t off,
				 void (*fn)(void *arg, uint64_t child),
				 void (*rootfn)(void *arg, uint64_t rootref),
				 void *arg);
SHG_HIDDEN int shg__vec_children(struct shg_seg *seg, uint64_t off,
				 void (*fn)(void *arg, uint64_t child),
				 void (*rootfn)(void *arg, uint64_t rootref),
				 void *arg);

/* Map flags (stored in every node of a map). */
#define SHG_MAP_F_TESTHASH 0x1u /* tests: hash = key & 0xff (deep collisions) */
#define SHG_MAP_F_ALL 0x1u
/* shg_txn_map_new() with internal flags (SHG_MAP_F_*). */
SHG_HIDDEN int shg__txn_map_new_flags(struct shg_txn *txn, struct shg_ref ref,
				      enum shg_kind key_kind,
				      enum shg_kind val_kind, unsigned flags);

/*
 * Import support (map.c: MAP, MAP_COLL; vec.c: VEC, VEC_NODE): rewrite in
 * @copy, a byte copy of the container node at @off, every child offset c
 * that the children function reports (node/bytes children and values) with
 * the offset @map returns for it. Return 0, @map's error, or a negative code
 * if the node is invalid. txn_import.c references them weakly (import of a
 * container is -ENOTSUP until they exist).
 */
SHG_HIDDEN int
shg__map_remap(struct shg_seg *seg, uint64_t off, void *copy,
	       int (*map)(void *arg, uint64_t child, uint64_t *out), void *arg);
SHG_HIDDEN int
shg__vec_remap(struct shg_seg *seg, uint64_t off, void *copy,
	       int (*map)(void *arg, uint64_t child, uint64_t *out), void *arg);

/* Map hash of a u64 key / of bytes, seeded per segment (hdr uuid). */
SHG_HIDDEN uint64_t shg__hash_u64(struct shg_seg *seg, uint64_t key);
SHG_HIDDEN uint64_t shg__hash_bytes(struct shg_seg *seg, const void *p,
				    size_t len);

#endif /* SHG_GRAPH_INTERNAL_H */
