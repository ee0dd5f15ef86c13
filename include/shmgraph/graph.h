/* SPDX-License-Identifier: MIT */
/*
 * shmgraph graph layer: typed nodes, versions, pins, batched copy-on-write
 * transactions, persistent maps and vectors. Include <shmgraph.h> rather
 * than this file.
 *
 * Model. A root (shg_root_*) holds the current *version* of one graph. A
 * version is an immutable block naming the graph's root node, its graph
 * id, its sequence number, its parent's and its commit time. Nodes are
 * immutable once published. A transaction (txn) starts from a base version
 * and copies each node it changes once (path copying); nodes it created or
 * copied stay mutable in place until commit, which publishes one new
 * version by compare-and-swap on the root.
 *
 * Every node starts with a 16-byte header (type id, graph id, birth
 * sequence). Types live in the segment's type table, so any graph can be
 * walked, checked, dumped and copied by code that only knows the table.
 * Field slots are 8 bytes each, in declaration order.
 *
 * Schema evolution. A type gains fields by registering its definition
 * with fields appended (shg_type_register()): a new *version* of the same
 * type, same id. Each node records the version it was made under (its
 * header's type id is that version's table entry), so it keeps its size.
 * Code that knows fewer fields reads its own fields of any node unchanged;
 * code that knows more reads the fields a node's version lacks as zero
 * (U64/I64/F64 0, BYTES empty, NODE null, ROOT none). New nodes are made,
 * and published nodes copied by shg_txn_mut(), as the newest version.
 * Only appending is allowed: renaming, retyping, reordering or removing a
 * field is -EEXIST.
 *
 * Reading: inside shg_read_lock()/unlock, or through a pin. Nothing on the
 * read side writes shared memory.
 */
#ifndef SHMGRAPH_GRAPH_H
#define SHMGRAPH_GRAPH_H

#include <shmgraph/base.h>
#include <shmgraph/inspect.h>
#include <shmgraph/roots.h>
#include <shmgraph/segment.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- types -------------------------------------------------------------- */

enum shg_kind {
	SHG_KIND_U64 = 1, /* unsigned 64-bit integer */
	SHG_KIND_I64 = 2, /* signed 64-bit integer */
	SHG_KIND_F64 = 3, /* IEEE double */
	SHG_KIND_BYTES = 4, /* offset of a bytes node (0 = empty/none) */
	SHG_KIND_NODE = 5, /* offset of a node of the same graph (0 = null) */
	SHG_KIND_ROOT = 6, /* reference to another root (slot + incarnation) */
};

/* Built-in type ids (always present in every segment's type table). */
enum shg_builtin_type {
	SHG_TYPE_VERSION = 1, /* version record */
	SHG_TYPE_BYTES = 2, /* length-prefixed byte string */
	SHG_TYPE_MAP = 3, /* persistent hash map node (HAMT) */
	SHG_TYPE_MAP_LEAF = 4, /* sorted leaf of map entries, at any depth
				* (a small subtree or a hash collision); its
				* type-table name stays "shg.map_coll" */
	SHG_TYPE_MAP_COLL = SHG_TYPE_MAP_LEAF, /* the old name of the same */
	SHG_TYPE_VEC = 5, /* persistent vector head */
	SHG_TYPE_VEC_NODE = 6, /* persistent vector trie node */
	SHG_TYPE_FIRST_USER = 16, /* first id given to registered types */
};

#define SHG_TYPE_NAME_MAX 31
#define SHG_FIELD_NAME_MAX 23
#define SHG_MAX_FIELDS 64

struct shg_field_def {
	const char *name; /* field name, <= SHG_FIELD_NAME_MAX bytes */
	enum shg_kind kind;
};

/**
 * shg_type_register() - register (or find) a node type, or a new version
 * of it.
 *
 * Idempotent across processes: the same name with the fields of any of
 * its registered versions gives the same id (an older program keeps
 * working beside a newer one). The fields of the newest version plus
 * fields appended registers a new version, still the same id; two
 * processes registering the same new version both succeed, one listing
 * it. Any other definition for a registered name (a field renamed,
 * retyped, reordered or removed, or fields appended to an older version
 * than the newest: of two processes appending different fields, the
 * second) is -EEXIST, and nothing is registered. Versions take type
 * table entries (ids that no API returns).
 * Context: outside read sections. Return: 0 and *@id, -EEXIST, -EINVAL,
 * SHG_ESLOTS (type table full).
 */
SHG_API SHG_MUST_CHECK int shg_type_register(struct shg_seg *seg,
					     const char *name,
					     const struct shg_field_def *f,
					     unsigned nfields, uint32_t *id);

/* Look up a type by name. Return: 0, -ENOENT. */
SHG_API SHG_MUST_CHECK int shg_type_find(struct shg_seg *seg, const char *name,
					 uint32_t *id);

/* struct shg_type_info - a type table entry, see shg_type_info(). */
struct shg_type_info {
	char name[SHG_TYPE_NAME_MAX + 1];
	uint32_t id;
	uint32_t nfields;
	struct {
		char name[SHG_FIELD_NAME_MAX + 1];
		enum shg_kind kind;
	} field[SHG_MAX_FIELDS];
};

/**
 * shg_type_info() - copy the type table entry of type @id (name, field
 * names and kinds, in declaration order) to *@out: of its newest version.
 * Context: any. Return: 0, -ENOENT (no such type; also the table entries
 * of versions), -EINVAL, SHG_ECORRUPT.
 */
SHG_API SHG_MUST_CHECK int shg_type_info(struct shg_seg *seg, uint32_t id,
					 struct shg_type_info *out);

/**
 * shg_field_find() - index of the field named @name of user type @type
 * (its newest version), to resolve once and pass to the accessors and
 * setters.
 * @kind: the kind the caller expects, or 0 for any; a field of another
 * kind is -EINVAL (a schema mismatch caught at startup, not at use).
 * Context: any. Return: 0 and *@index, -ENOENT (no such type or field),
 * -EINVAL, SHG_ECORRUPT.
 */
SHG_API SHG_MUST_CHECK int shg_field_find(struct shg_seg *seg, uint32_t type,
					  const char *name, enum shg_kind kind,
					  unsigned *index);

/* ---- reading nodes (read section held, or through a pin) ----------------- */

/* Type id of a node; 0 with -errno/SHG_E* in *@err if invalid. */
/**
 * shg_node_is() - check that @node is a valid node of type @type (the
 * optional type check before reading fields by index), of any version.
 * Context: @node readable. Return: 0, -EINVAL (another type),
 * SHG_EBADOFF, SHG_ECORRUPT.
 */
SHG_API SHG_MUST_CHECK int shg_node_is(struct shg_seg *seg, struct shg_off node,
				       uint32_t type);
/* Type id of a node (the id shg_type_register() gave, for every version);
 * 0 with -errno/SHG_E* in *@err if invalid. */
SHG_API uint32_t shg_node_type(struct shg_seg *seg, struct shg_off node,
			       int *err);

/**
 * shg_node_version() - the type version user node @node was made under:
 * *@version (0 = the type's first registration; may be NULL) and
 * *@nfields, the fields it stores (may be NULL); fields at or above
 * *@nfields read as zero. Scans the type table: not for lookup paths.
 * Context: @node readable. Return: 0, -EINVAL (a built-in node),
 * SHG_EBADOFF, SHG_ECORRUPT.
 */
SHG_API SHG_MUST_CHECK int shg_node_version(struct shg_seg *seg,
					    struct shg_off node,
					    unsigned *version,
					    unsigned *nfields);

/**
 * shg_get_u64() - read U64 field @field of @node into *@out.
 *
 * Field accessors (shg_get_u64/_i64/_f64/_bytes/_node) each validate the
 * node (offset, type, field index, kind). They read published nodes (read
 * section held or version pinned; a txn's thread may read its base without
 * a section, the txn pins it) and a txn's own mutable nodes alike (in the
 * txn's thread, before commit). Resolve indexes by name once with
 * shg_field_find(); check a node's type with shg_node_is(). A field that
 * the node's type version lacks but a newer version of its type has reads
 * as zero (see "Schema evolution" above).
 * Return: 0, -EINVAL (wrong kind, index or a built-in node), SHG_EBADOFF,
 * SHG_ECORRUPT.
 */
SHG_API SHG_MUST_CHECK int shg_get_u64(struct shg_seg *seg, struct shg_off node,
				       unsigned field, uint64_t *out);
/* I64 field, as shg_get_u64(). Return: as shg_get_u64(). */
SHG_API SHG_MUST_CHECK int shg_get_i64(struct shg_seg *seg, struct shg_off node,
				       unsigned field, int64_t *out);
/* F64 field, as shg_get_u64(). Return: as shg_get_u64(). */
SHG_API SHG_MUST_CHECK int shg_get_f64(struct shg_seg *seg, struct shg_off node,
				       unsigned field, double *out);
/*
 * BYTES field: *@p points into the segment (valid while the read section
 * or pin lasts), *@len its length (0 and NULL for an empty field).
 * Return: as shg_get_u64().
 */
SHG_API SHG_MUST_CHECK int shg_get_bytes(struct shg_seg *seg,
					 struct shg_off node, unsigned field,
					 const void **p, size_t *len);
/* NODE field: the child's offset (null if none). Return: as shg_get_u64(). */
SHG_API SHG_MUST_CHECK int shg_get_node(struct shg_seg *seg,
					struct shg_off node, unsigned field,
					struct shg_off *out);
#define SHG_ROOT_SLOT_NONE UINT32_MAX /* shg_get_root(): a null ref */

/**
 * shg_get_root() - the slot index of the root named by ROOT field @field.
 * Root refs are weak: a ref to a root that was removed, or whose slot now
 * holds a newer root, gives -ENOENT. Open the root by its name
 * (shg_root_list() maps slots to names). Context: @node readable.
 * Return: 0, -ENOENT (null or dangling ref), -EINVAL, SHG_ECORRUPT.
 * With -ENOENT, *@slot is SHG_ROOT_SLOT_NONE for a null ref and the slot
 * the ref named for a dangling one; shg_get_root_version() and
 * shg_get_root_open() tell the two apart by their return.
 */
SHG_API SHG_MUST_CHECK int shg_get_root(struct shg_seg *seg,
					struct shg_off node, unsigned field,
					uint32_t *slot);

/**
 * shg_get_root_version() - the current version of the root named by ROOT
 * field @field of @node, in one call (null if that root never committed).
 * Context: read section held (it keeps the version readable).
 * Ordering: acquire, as shg_version_current().
 * Return: 0, -ENOENT (null ref), -ESTALE (dangling: the root was removed
 * or its slot reused), -EINVAL (not a ROOT field), SHG_EBADOFF,
 * SHG_ECORRUPT.
 */
SHG_API SHG_MUST_CHECK int shg_get_root_version(struct shg_seg *seg,
						struct shg_off node,
						unsigned field,
						struct shg_off *version);
/**
 * shg_get_root_open() - open a handle on the root named by ROOT field
 * @field of @node (close it with shg_root_close()).
 * Context: @node readable (read section or pin); takes the root table
 * lock briefly, as shg_root_open() does.
 * Return: 0, -ENOENT (null ref), -ESTALE (dangling), -EINVAL,
 * SHG_ESLOTS, SHG_ECORRUPT.
 */
SHG_API SHG_MUST_CHECK int shg_get_root_open(struct shg_seg *seg,
					     struct shg_off node,
					     unsigned field,
					     struct shg_root **out);

/* ---- versions and pins --------------------------------------------------- */

/* struct shg_pin_info - one pinned version, see shg_pin_list(). */
struct shg_pin_info {
	pid_t pid; /* owning process (0 if its slot is already gone) */
	bool alive; /* owning process is alive (its slot's OFD lock held) */
	bool detached; /* a detached txn version, not a root's version */
	uint32_t root; /* root slot the version belongs to */
	uint32_t graph; /* graph id */
	uint64_t seq; /* pinned version's sequence */
	uint64_t current_seq; /* the root's current sequence (0: none) */
	uint64_t version_bytes; /* bytes reachable from the pinned version */
	uint64_t held_bytes; /* retired nodes kept only for pins of this
			      * version (shared by every pin of it) */
};

/**
 * shg_pin_list() - snapshot of the pin table: who pins which version, and
 * how much retired memory each pinned version holds back (nodes that later
 * commits replaced, kept on the held list until the pin goes).
 * A monitoring read: pins may come and go meanwhile. Context: outside or
 * inside a read section; takes the retire-list lock briefly.
 * Return: the number of pins in use (may exceed @max; @out gets the first
 * @max), or a negative code.
 */
SHG_API int shg_pin_list(struct shg_seg *seg, struct shg_pin_info *out,
			 unsigned max);

struct shg_version_info {
	struct shg_off node; /* the graph's root node (may be null) */
	uint64_t graph; /* graph id */
	uint64_t seq; /* sequence number within the graph */
	uint64_t parent; /* sequence of the base version (0 = none) */
	uint64_t commit_ns; /* CLOCK_REALTIME at commit */
	uint64_t bytes; /* bytes of nodes reachable from this version */
	uint64_t nodes; /* blocks reachable from this version */
};

/**
 * shg_version_current() - the root's current version (offset of the
 * version record; null for a root that never committed).
 * Context: read section held. Ordering: acquire.
 */
SHG_API struct shg_off shg_version_current(const struct shg_root *root);

/**
 * shg_version_info() - read the version record at @version (from
 * shg_version_current(), shg_pin_version() or shg_get_root_version()):
 * its root node, graph, sequence, parent, commit time and size.
 * Context: read section held or the version pinned.
 * Return: 0, SHG_EBADOFF (null or out of range), -EINVAL (not a version).
 */
SHG_API SHG_MUST_CHECK int shg_version_info(struct shg_seg *seg,
					    struct shg_off version,
					    struct shg_version_info *out);

/**
 * shg_current_node() - the graph root node of @root's current version in
 * one call (null for a root that never committed or an empty graph).
 * Context: read section held. Ordering: acquire.
 * Return: 0, -EINVAL, SHG_EBADOFF, SHG_ECORRUPT.
 */
SHG_API SHG_MUST_CHECK int shg_current_node(const struct shg_root *root,
					    struct shg_off *node);

struct shg_pin; /* a version kept alive outside read sections */

/**
 * shg_pin_current() - pin the root's current version.
 *
 * The version and every node it reaches stay allocated until
 * shg_unpin(), from any thread of this process; released automatically if
 * the process dies. Only that version's nodes are held (not garbage made
 * by later commits). Context: any. Return: 0, SHG_ESLOTS, -ENOENT.
 */
SHG_API SHG_MUST_CHECK int shg_pin_current(struct shg_root *root,
					   struct shg_pin **out);
SHG_API struct shg_off shg_pin_version(const struct shg_pin *pin);
SHG_API int shg_unpin(struct shg_pin *pin);

/* ---- maps and vectors (read side) ---------------------------------------- */

/*
 * Map keys and values. A map stores keys of one kind (U64 or BYTES) and
 * values of one kind (U64, I64, F64, BYTES, NODE, ROOT), both fixed when
 * the map is created.
 */
struct shg_val {
	enum shg_kind kind;
	union {
		uint64_t u64;
		int64_t i64;
		double f64;
		struct {
			const void *p; /* in the segment (read side) */
			size_t len;
		} bytes;
		struct shg_off node;
		uint32_t root; /* root slot index */
	};
};

/**
 * shg_map_get_u64() - the value stored under @key in the u64-keyed map
 * @map (null counts as empty). Bytes values point into the segment.
 * Context: @map readable (read section, pin, or the txn's own).
 * Return: 0, -ENOENT (key absent), -EINVAL (the map's keys are bytes),
 * SHG_EBADOFF, SHG_ECORRUPT (not a map, or corrupt).
 */
SHG_API SHG_MUST_CHECK int shg_map_get_u64(struct shg_seg *seg,
					   struct shg_off map, uint64_t key,
					   struct shg_val *out);
/* shg_map_get_u64() for a bytes-keyed map. Return: as shg_map_get_u64(). */
SHG_API SHG_MUST_CHECK int shg_map_get_bytes(struct shg_seg *seg,
					     struct shg_off map,
					     const void *key, size_t klen,
					     struct shg_val *out);
/**
 * shg_map_get_many_u64() - look @n keys up in the u64-keyed map @map at
 * once: for each i < @n, @results[i] and @vals[i] are what
 * shg_map_get_u64(@seg, @map, @keys[i], &@vals[i]) would give. The keys
 * are walked down the map together, level by level, with the next
 * level's nodes prefetched, so the memory latencies of different keys
 * overlap: on a map larger than the caches a batch of 16 keys costs much
 * less per key than 16 single lookups. Keys may repeat and come in any
 * order. @vals may be NULL (membership only). Every node is checked as
 * by a single lookup; a key whose walk meets corrupt data gets
 * SHG_EBADOFF or SHG_ECORRUPT and the other keys are still looked up.
 * Context: @map readable for the whole call (read section, pin, or the
 * txn's own), as for shg_map_get_u64(); one call is one read of one
 * version, so all @n results come from the same map.
 * Return: the number of keys found (0..@n; @n = 0 is allowed), or a
 * negative code: -EINVAL (@keys or @results NULL with @n > 0, or the
 * map's keys are bytes: every result is -EINVAL), SHG_EBADOFF or
 * SHG_ECORRUPT (the map's root is bad: every result is that code; or
 * some key met corrupt data: the first such code, its result carries it,
 * the other results are valid). A null @map is empty: every result is
 * -ENOENT and the return is 0.
 */
SHG_API SHG_MUST_CHECK int64_t
shg_map_get_many_u64(struct shg_seg *seg, struct shg_off map, size_t n,
		     const uint64_t *keys, struct shg_val *vals, int *results);
/**
 * shg_map_get_many_bytes() - shg_map_get_many_u64() for a bytes-keyed
 * map: key i is @keys[i] of @lens[i] bytes (NULL with length 0 is the
 * empty key; NULL with a length gives that key -EINVAL).
 * Return: as shg_map_get_many_u64() (-EINVAL also when @lens is NULL or
 * the map's keys are u64).
 */
SHG_API SHG_MUST_CHECK int64_t
shg_map_get_many_bytes(struct shg_seg *seg, struct shg_off map, size_t n,
		       const void *const *keys, const size_t *lens,
		       struct shg_val *vals, int *results);
/* Number of entries; 0 for null. Negative code if corrupt. */
SHG_API int64_t shg_map_count(struct shg_seg *seg, struct shg_off map);

/* Iteration in a stable order (hash order; the same for equal maps). */
struct shg_map_iter {
	struct shg_seg *seg;
	uint32_t depth; /* private */
	uint32_t pos[14]; /* private */
	struct shg_off stack[14]; /* private */
};
/*
 * Start iterating @map (null: an empty map). Context: @map readable for
 * the whole iteration. Return: 0, SHG_EBADOFF, SHG_ECORRUPT.
 */
SHG_API SHG_MUST_CHECK int shg_map_iter_init(struct shg_seg *seg,
					     struct shg_off map,
					     struct shg_map_iter *it);
/*
 * Next entry into *@key and *@val. A bytes key fills key->bytes.p and
 * key->bytes.len (pointing into the segment).
 * Return: 0, -ENOENT at the end, SHG_EBADOFF, SHG_ECORRUPT.
 */
SHG_API int shg_map_iter_next(struct shg_map_iter *it, struct shg_val *key,
			      struct shg_val *val);

/**
 * shg_vec_len() - number of elements of vector @vec (0 for null).
 * Context: @vec readable. Return: the length, or SHG_EBADOFF/SHG_ECORRUPT.
 */
SHG_API int64_t shg_vec_len(struct shg_seg *seg, struct shg_off vec);
/**
 * shg_vec_get() - element @index of vector @vec into *@out (bytes values
 * point into the segment). Context: @vec readable.
 * Return: 0, -ERANGE (@index >= length; any index of a null vector),
 * SHG_EBADOFF, SHG_ECORRUPT.
 */
SHG_API SHG_MUST_CHECK int shg_vec_get(struct shg_seg *seg, struct shg_off vec,
				       uint64_t index, struct shg_val *out);

/* ---- transactions -------------------------------------------------------- */

struct shg_txn;

/*
 * struct shg_ref - where a txn edit applies: field @field of the mutable
 * node @node, or the graph's root node when @node is null.
 */
struct shg_ref {
	struct shg_off node;
	unsigned field;
};
#define SHG_REF_ROOT ((struct shg_ref){ { 0 }, 0 })

/**
 * shg_txn_begin() - start a batch of changes on the root's current version.
 * The base is pinned for the txn's life, so the txn's thread may read the
 * base's nodes (and its own mutable ones) without a read section.
 *
 * Retire budget: the segment caps the bytes retired but not yet freed
 * (struct shg_opts.retire_budget, default capacity/8). Over it,
 * begin reclaims and waits up to SHG_TXN_BUDGET_WAIT_MS for readers to
 * leave their sections; if a live reader still holds memory back it
 * returns SHG_EBUDGET (shg_stalled_reader() names it). Nothing was
 * changed: retry later, or wait longer with shg_txn_begin_wait().
 * A root marked as a read-only replica (shg_root_set_replica()) refuses
 * local txns with SHG_EREPLICA.
 * Context: outside read sections (else SHG_ENESTED).
 * Return: 0, SHG_ESLOTS, -ENOMEM, SHG_ENESTED, SHG_EBUDGET, SHG_EREPLICA.
 */
SHG_API SHG_MUST_CHECK int shg_txn_begin(struct shg_root *root,
					 struct shg_txn **out);

/* How long shg_txn_begin() waits for reclamation when over budget. */
#define SHG_TXN_BUDGET_WAIT_MS 100u

/**
 * shg_txn_begin_wait() - shg_txn_begin() that waits up to @timeout_ms
 * (0: without limit) for reclamation when the retire budget is exceeded:
 * the documented way for a writer to ride out a slow reader instead of
 * failing with SHG_EBUDGET at once.
 * Context: outside read sections.
 * Return: as shg_txn_begin(); SHG_EBUDGET once @timeout_ms has passed.
 */
SHG_API SHG_MUST_CHECK int shg_txn_begin_wait(struct shg_root *root,
					      unsigned timeout_ms,
					      struct shg_txn **out);

/* shg_txn_begin_flags() / shg_update_flags() flag: the txn is the
 * replication follower's (lib/repl_delta.c); it may write a root marked
 * as a read-only replica. Not for local writers. */
#define SHG_TXN_REPLICA 0x1u

/**
 * shg_txn_begin_flags() - shg_txn_begin_wait() with @flags: 0 or
 * SHG_TXN_REPLICA (for the replication follower: the root's replica mark
 * does not refuse this txn).
 * Context: outside read sections.
 * Return: as shg_txn_begin(); -EINVAL (unknown flags).
 */
SHG_API SHG_MUST_CHECK int shg_txn_begin_flags(struct shg_root *root,
					       unsigned flags,
					       unsigned timeout_ms,
					       struct shg_txn **out);

/* Graph root node as of the txn (mutable if created/copied in it). */
SHG_API struct shg_off shg_txn_root_node(const struct shg_txn *txn);

/* Create a node of @type (its newest version), zeroed and mutable.
 * Return: 0, -EINVAL, ... */
SHG_API SHG_MUST_CHECK int shg_txn_node_new(struct shg_txn *txn, uint32_t type,
					    struct shg_off *out);

/**
 * shg_txn_mut() - make the node at @ref mutable in this txn.
 *
 * Copies it once per txn (the path from the root is copied as the caller
 * walks down with shg_txn_mut), stores the copy at @ref, returns it. A node
 * already created or copied in the txn is returned as is. The copy of a
 * node of an older type version is of the newest version (fields it lacked
 * zero). A node created or copied in this txn stays the version it was
 * made as: setting a field it lacks is -EINVAL (register new versions
 * before the txns that set their fields). For a map value
 * or a vector element use shg_txn_map_mut_u64/_bytes() or
 * shg_txn_vec_mut().
 * Return: 0, -ENOENT (null at @ref), -EINVAL (@ref not a NODE field of a
 * mutable node), SHG_EBADOFF, or a resource error (sticky: the txn only
 * aborts after it).
 */
SHG_API SHG_MUST_CHECK int shg_txn_mut(struct shg_txn *txn, struct shg_ref ref,
				       struct shg_off *out);

/**
 * shg_txn_set_u64() - store @v in U64 field @ref of a mutable node.
 *
 * Setters work on nodes created or copied in this txn (or the graph root
 * with SHG_REF_ROOT, for set_node only). Every txn operation checks the
 * declared kind of the field at @ref first: a mistake (field of another
 * kind, index out of range, node not mutable) is -EINVAL and leaves the
 * txn usable, as are -ENOENT, -ERANGE and -EXDEV. Resource errors
 * (-ENOMEM, SHG_ECAPACITY) and corruption codes (SHG_EBADOFF,
 * SHG_ECORRUPT: corrupt data only) are sticky: every later call and the
 * commit return them; abort the txn.
 * Return: 0, -EINVAL.
 */
SHG_API SHG_MUST_CHECK int shg_txn_set_u64(struct shg_txn *txn,
					   struct shg_ref ref, uint64_t v);
/* I64 field. Return: 0, -EINVAL. */
SHG_API SHG_MUST_CHECK int shg_txn_set_i64(struct shg_txn *txn,
					   struct shg_ref ref, int64_t v);
/* F64 field. Return: 0, -EINVAL. */
SHG_API SHG_MUST_CHECK int shg_txn_set_f64(struct shg_txn *txn,
					   struct shg_ref ref, double v);
/* BYTES field: a new bytes node (@len 0: empty). Return: 0, -EINVAL,
 * -ENOMEM, SHG_ECAPACITY. */
SHG_API SHG_MUST_CHECK int shg_txn_set_bytes(struct shg_txn *txn,
					     struct shg_ref ref, const void *p,
					     size_t len);
/**
 * shg_txn_set_node() - link a node (or null) at @ref. The node must have
 * been created in this txn or be reachable from its base version; a node of
 * another graph or one taken from an older version of this graph is
 * refused with -EXDEV (copy it with shg_txn_import()). The first link of a
 * published node walks the base version once.
 * Return: 0, -EXDEV, -EINVAL (wrong field kind), or a walk error.
 */
SHG_API SHG_MUST_CHECK int
shg_txn_set_node(struct shg_txn *txn, struct shg_ref ref, struct shg_off node);
/*
 * ROOT field: a weak reference to @target (NULL: null ref). Follow it with
 * shg_get_root_version() or shg_get_root_open().
 * Return: 0, -EINVAL, -EXDEV (@target of another segment).
 */
SHG_API SHG_MUST_CHECK int shg_txn_set_root(struct shg_txn *txn,
					    struct shg_ref ref,
					    const struct shg_root *target);

/**
 * shg_txn_import() - copy the subgraph at @node of another graph (or of
 * another version) into this txn; stops at root refs, which are linked by
 * reference. Context: @node must be readable (pinned or read section);
 * may run inside a read section (as may commit; begin may not).
 * Return: 0 and *@out (the copy, mutable; link it with shg_txn_set_node()
 * or a map/vector put), -EINVAL, SHG_EBADOFF, SHG_ECORRUPT, -ENOMEM,
 * SHG_ECAPACITY.
 */
SHG_API SHG_MUST_CHECK int
shg_txn_import(struct shg_txn *txn, struct shg_off node, struct shg_off *out);

/*
 * Maps at @ref (a NODE field of a mutable node, or SHG_REF_ROOT): creating,
 * updating, deleting. Each checks the field's kind and the container's
 * type first (see shg_txn_set_u64() for the error rules).
 */
/* A new empty map at @ref replacing its value: keys U64 or BYTES, values
 * of one kind. Return: 0, -EINVAL (not a NODE field, bad kinds), -ENOMEM,
 * SHG_ECAPACITY. */
SHG_API SHG_MUST_CHECK int shg_txn_map_new(struct shg_txn *txn,
					   struct shg_ref ref,
					   enum shg_kind key_kind,
					   enum shg_kind val_kind);
/**
 * shg_txn_map_put_u64() - store @val under @key in the u64-keyed map at
 * @ref (path copy). NODE values must be of this txn's graph and from its
 * base or the txn (else -EXDEV: copy them with shg_txn_import()).
 * Return: 0, -EINVAL (@ref not a map; key or value of the wrong kind),
 * -EXDEV, -ENOENT (ROOT value naming a removed root), -EOVERFLOW,
 * -ENOMEM, SHG_ECAPACITY, SHG_EBADOFF/SHG_ECORRUPT (corrupt map).
 */
SHG_API SHG_MUST_CHECK int shg_txn_map_put_u64(struct shg_txn *txn,
					       struct shg_ref ref, uint64_t key,
					       const struct shg_val *val);
/* shg_txn_map_put_u64() for a bytes-keyed map. Return: as put_u64. */
SHG_API SHG_MUST_CHECK int shg_txn_map_put_bytes(struct shg_txn *txn,
						 struct shg_ref ref,
						 const void *key, size_t klen,
						 const struct shg_val *val);
/* Delete @key. Return: 0, -ENOENT (absent: nothing copied), -EINVAL,
 * -ENOMEM, SHG_ECAPACITY, SHG_EBADOFF/SHG_ECORRUPT. */
SHG_API SHG_MUST_CHECK int
shg_txn_map_del_u64(struct shg_txn *txn, struct shg_ref ref, uint64_t key);
/* shg_txn_map_del_u64() for a bytes-keyed map. Return: as del_u64. */
SHG_API SHG_MUST_CHECK int shg_txn_map_del_bytes(struct shg_txn *txn,
						 struct shg_ref ref,
						 const void *key, size_t klen);

/**
 * shg_txn_map_mut_u64() - make the node stored under @key mutable.
 *
 * For a map of NODE values: path-copies the map down to the entry, copies
 * the value node once per txn (a node already created or copied in the
 * txn is returned as is), stores the copy in the entry and returns it in
 * *@out, ready for the setters. Like shg_txn_mut() for a field.
 * Return: 0, -ENOENT (key absent or its value null), -EINVAL (@ref is not
 * a NODE field holding a map, or the map's keys or values are of another
 * kind), or a resource/corruption code.
 */
SHG_API SHG_MUST_CHECK int shg_txn_map_mut_u64(struct shg_txn *txn,
					       struct shg_ref ref, uint64_t key,
					       struct shg_off *out);
/* shg_txn_map_mut_u64() for a bytes-keyed map. */
SHG_API SHG_MUST_CHECK int shg_txn_map_mut_bytes(struct shg_txn *txn,
						 struct shg_ref ref,
						 const void *key, size_t klen,
						 struct shg_off *out);

/*
 * Vectors at @ref (a NODE field or SHG_REF_ROOT), values of one kind fixed
 * at creation; kind and type checked first as for maps.
 */
/* A new empty vector at @ref replacing its value. Return: 0, -EINVAL,
 * -ENOMEM, SHG_ECAPACITY. */
SHG_API SHG_MUST_CHECK int shg_txn_vec_new(struct shg_txn *txn,
					   struct shg_ref ref,
					   enum shg_kind val_kind);
/* Append @val. Return: 0, -EINVAL (not a vector; value of another kind),
 * -EXDEV (NODE value as for map put), -ENOENT (removed root), -EOVERFLOW,
 * -ENOMEM, SHG_ECAPACITY, SHG_EBADOFF/SHG_ECORRUPT. */
SHG_API SHG_MUST_CHECK int shg_txn_vec_push(struct shg_txn *txn,
					    struct shg_ref ref,
					    const struct shg_val *val);
/* Replace element @index. Return: as vec_push, and -ERANGE. */
SHG_API SHG_MUST_CHECK int shg_txn_vec_set(struct shg_txn *txn,
					   struct shg_ref ref, uint64_t index,
					   const struct shg_val *val);
/* Remove the last element. Return: 0, -ERANGE (empty), -EINVAL, -ENOMEM,
 * SHG_ECAPACITY, SHG_EBADOFF/SHG_ECORRUPT. */
SHG_API SHG_MUST_CHECK int shg_txn_vec_pop(struct shg_txn *txn,
					   struct shg_ref ref);
/**
 * shg_txn_vec_mut() - make the node at @index of a vector of NODE values
 * mutable: path-copies the trie to the element, copies the node once per
 * txn and stores the copy there; *@out is the mutable node.
 * Return: 0, -ERANGE (@index >= length), -ENOENT (null element), -EINVAL
 * (@ref is not a NODE field holding a vector of NODE values), or a
 * resource/corruption code.
 */
SHG_API SHG_MUST_CHECK int shg_txn_vec_mut(struct shg_txn *txn,
					   struct shg_ref ref, uint64_t index,
					   struct shg_off *out);

/**
 * shg_txn_commit() - publish the txn as the root's next version (CAS).
 *
 * On success the txn is freed, and the nodes it replaced are retired with
 * the new version's sequence. On SHG_ECONFLICT (another commit won) the
 * txn stays valid: retry elsewhere, abort, or detach it. On
 * SHG_EREPLICA (the root was marked a read-only replica after the txn
 * began, and the txn is not SHG_TXN_REPLICA) nothing is published and the
 * txn stays valid: abort it.
 * Return: 0, SHG_ECONFLICT, -ENOENT (root removed), SHG_EREPLICA.
 */
SHG_API SHG_MUST_CHECK int shg_txn_commit(struct shg_txn *txn);

/* Abort: free the txn's nodes; the base is unpinned; the txn is freed.
 * Return: 0, -EINVAL (NULL). */
SHG_API int shg_txn_abort(struct shg_txn *txn);

/**
 * shg_txn_detach() - finish as a detached version: a fork that keeps its
 * base pinned, returned as a pin. Publish it later with
 * shg_pin_publish() (CAS on its base) or copy it under another root with
 * shg_pin_publish_as(). The txn is freed.
 * Return: 0, -EINVAL, SHG_ESLOTS, -ENOMEM, or the txn's sticky error.
 *
 * shg_pin_publish() CASes the root from the detached version's base to
 * it: 0, SHG_ECONFLICT (the root moved on), -EINVAL (not a detached pin of
 * @root), SHG_EREPLICA (@root is a read-only replica). shg_pin_publish_as()
 * copies it under @other as that root's next version: 0, SHG_ECONFLICT,
 * -EINVAL, -ENOMEM, SHG_ECAPACITY, SHG_EREPLICA. Neither
 * consumes the pin: shg_unpin() it afterwards in every case.
 */
SHG_API SHG_MUST_CHECK int shg_txn_detach(struct shg_txn *txn,
					  struct shg_pin **out);
SHG_API SHG_MUST_CHECK int shg_pin_publish(struct shg_pin *pin,
					   struct shg_root *root);
SHG_API SHG_MUST_CHECK int shg_pin_publish_as(struct shg_pin *pin,
					      struct shg_root *other);

/**
 * shg_update() - run @fn in a txn on the newest version until it commits
 * (like Clojure's swap!). @fn returns 0 to commit, or a negative code to
 * abort (passed back). At most @max_tries attempts (0 = 64).
 *
 * @fn may run many times (once per attempt, each on a fresh txn on the
 * newest version): it must compute its edits from what it reads in the
 * txn and keep no side effects outside it. After a lost commit the next
 * attempt waits a random time in [0, 4 us << attempt), capped at 2 ms
 * (bounded, randomized exponential backoff), so colliding writers
 * desynchronize instead of starving one another.
 * Context: outside read sections.
 * Return: 0, @fn's error, SHG_ECONFLICT after the last try, or an error
 * of shg_txn_begin() (SHG_EBUDGET: see there; SHG_EREPLICA: a read-only
 * replica root) or shg_txn_commit().
 */
SHG_API SHG_MUST_CHECK int shg_update(struct shg_root *root,
				      int (*fn)(struct shg_txn *txn, void *arg),
				      void *arg, unsigned max_tries);

/**
 * shg_update_flags() - shg_update() whose txns begin with @flags (0 or
 * SHG_TXN_REPLICA, for the replication follower).
 * Context: outside read sections.
 * Return: as shg_update(); -EINVAL (unknown flags).
 */
SHG_API SHG_MUST_CHECK int
shg_update_flags(struct shg_root *root, unsigned flags,
		 int (*fn)(struct shg_txn *txn, void *arg), void *arg,
		 unsigned max_tries);

#ifdef __cplusplus
}
#endif
#endif /* SHMGRAPH_GRAPH_H */
