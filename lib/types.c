/* SPDX-License-Identifier: MIT */
/*
 * Type table: the segment's registry of node types (built-in and user
 * defined), so that any graph can be walked, checked, dumped and copied by
 * code that knows only the table.
 *
 * Theory of operation.
 *
 * The table is a heap block named by hdr.ext[SHG_EXT_TYPES]. It is created
 * lazily by whoever first needs it: the creator allocates and fills a
 * complete table (robust mutex, the six built-in records, count = first
 * user id) in private memory, then publishes it with a release CAS of
 * ext[] from 0. A loser of that race frees its private copy (never
 * published, so no grace period is needed). A creator that dies before the
 * CAS leaks blocks that no one can reach (the sweep frees them).
 *
 * Records (struct shg_type_rec) are heap blocks, immutable once listed.
 * Registration runs under the table's robust mutex: look the name up,
 * allocate and fill a record, store its offset in rec[id] (release), then
 * count = id + 1 (release). Readers are lock-free: they load count
 * (acquire), then rec[id] (acquire), then read the record. The release
 * store of count is ordered after the release store of rec[id], which is
 * ordered after the record's contents, so a reader that sees id < count
 * sees a complete record.
 *
 * A registrant that dies inside the lock leaves at worst: a record
 * allocated but not listed (leaked until the sweep), or a record listed in
 * rec[id] with count not yet bumped. The next locker gets EOWNERDEAD and
 * recounts: count = 1 + the highest id whose record validates (at least
 * the first user id). rec[] entries above count are never trusted by
 * readers, and the registrant that died never handed its id to anyone, so
 * both outcomes are consistent.
 *
 * Schema evolution. Registering a known name with its fields plus
 * appended ones lists a new record, a "version", under the same lock and
 * with the same stores as a new type, with SHG_TYPEF_VERSION and link =
 * the type's first record; then it stores the new id in the first
 * record's link (release), the one word of a listed record that changes.
 * A reader that loads that link (acquire) and sees id n then loads count
 * (acquire) and finds n < count and rec[n] complete: the record was
 * written before rec[n] (release), rec[n] before count (release), count
 * before the link (release). A reader that sees the older link uses the
 * older version: new nodes made under it are complete nodes of that
 * version and read as such by everyone. A registrant that dies between
 * count and link leaves link stale; table_repair sets it again from the
 * records. Versions only append fields, so field i has the same name and
 * kind in every version that has it; a node's header names its version's
 * record, and a field its version lacks reads as zero (node.c).
 *
 * Node validation answers the built-in ids from process-local records
 * (their layouts are code), so the lookup hot path never reads the table
 * for maps, vectors, bytes and versions.
 *
 * Every field read from the table is untrusted: each offset is checked to
 * lie inside the backed heap, ids and counts are range-checked, names are
 * bounded by their arrays.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "graph_internal.h"

#define NUM_BUILTIN SHG_TYPE_VEC_NODE /* highest built-in id */

/* ---- lock-free read side ------------------------------------------------- */

/* The published table, or NULL if absent or its offset is bad. */
static struct shg_type_table *table_peek(struct shg_seg *seg)
{
	uint64_t off = atomic_load_explicit(&seg->hdr->ext[SHG_EXT_TYPES],
					    memory_order_acquire);

	if (shg_unlikely(
		    !off ||
		    !shg__off_ok(seg, off, sizeof(struct shg_type_table), 16)))
		return NULL;
	return shg__at(seg, off);
}

static bool kind_valid(unsigned k)
{
	return k >= SHG_KIND_U64 && k <= SHG_KIND_ROOT;
}

/* Record listed for @id in @t, validated (the caller checked id < count). */
static const struct shg_type_rec *rec_get(struct shg_seg *seg,
					  struct shg_type_table *t, uint32_t id)
{
	const struct shg_type_rec *r;
	uint64_t off;
	uint32_t nf, i;

	off = atomic_load_explicit(&t->rec[id], memory_order_acquire);
	if (!off || !shg__off_ok(seg, off, sizeof(*r), 8))
		return NULL;
	r = shg__at(seg, off);
	nf = r->nfields;
	if (r->id != id || nf > SHG_MAX_FIELDS)
		return NULL;
	if (r->flags & SHG_TYPEF_BUILTIN) {
		if (id > NUM_BUILTIN || id == 0 || nf)
			return NULL;
		return r;
	}
	if (id < SHG_TYPE_FIRST_USER)
		return NULL;
	if ((r->flags & SHG_TYPEF_VERSION) &&
	    (r->link < SHG_TYPE_FIRST_USER || r->link >= id))
		return NULL;
	for (i = 0; i < nf; i++)
		if (!kind_valid(r->kind[i]))
			return NULL;
	return r;
}

/*
 * Process-local copies of the built-in records. Built-in layouts are code,
 * so node validation (the lookup hot path) answers them without touching
 * the table; the table's own copies serve name lookup and the checker.
 */
#define BUILTIN_REC(i, n) \
	[i] = { .name = n, .id = (i), .flags = SHG_TYPEF_BUILTIN }
static const struct shg_type_rec builtin_recs[NUM_BUILTIN + 1] = {
	BUILTIN_REC(SHG_TYPE_VERSION, "shg.version"),
	BUILTIN_REC(SHG_TYPE_BYTES, "shg.bytes"),
	BUILTIN_REC(SHG_TYPE_MAP, "shg.map"),
	BUILTIN_REC(SHG_TYPE_MAP_LEAF, "shg.map_coll"),
	BUILTIN_REC(SHG_TYPE_VEC, "shg.vec"),
	BUILTIN_REC(SHG_TYPE_VEC_NODE, "shg.vec_node"),
};

const struct shg_type_rec *shg__type_get(struct shg_seg *seg, uint32_t id)
{
	struct shg_type_table *t;
	uint32_t count;

	if (id - 1u < NUM_BUILTIN)
		return &builtin_recs[id];
	t = table_peek(seg);
	if (shg_unlikely(!t))
		return NULL;
	count = atomic_load_explicit(&t->count, memory_order_acquire);
	if (count > SHG_MAX_TYPES)
		count = SHG_MAX_TYPES;
	if (shg_unlikely(id >= count))
		return NULL;
	return rec_get(seg, t, id);
}

/* Whether validated record @v is a later version of first record @b. */
static bool rec_version_of(const struct shg_type_rec *v,
			   const struct shg_type_rec *b)
{
	return (v->flags & SHG_TYPEF_VERSION) && v->link == b->id &&
	       !(b->flags & (SHG_TYPEF_BUILTIN | SHG_TYPEF_VERSION));
}

const struct shg_type_rec *shg__type_newest(struct shg_seg *seg,
					    const struct shg_type_rec *r)
{
	const struct shg_type_rec *b = r, *n;
	uint32_t nid;

	if (r->flags & SHG_TYPEF_BUILTIN)
		return r;
	if (r->flags & SHG_TYPEF_VERSION) {
		b = shg__type_get(seg, r->link);
		if (!b || !rec_version_of(r, b))
			return r;
	}
	/* Acquire: pairs with the release store in table_append(); the
	 * version it names is then counted and complete (see the top). */
	nid = __atomic_load_n(&b->link, __ATOMIC_ACQUIRE);
	if (!nid)
		return r;
	n = shg__type_get(seg, nid);
	if (!n || !rec_version_of(n, b) || n->id < r->id ||
	    n->nfields < r->nfields)
		return r; /* bad link, or @r newer than a stale one */
	return n;
}

/* ---- creation -------------------------------------------------------- */

static int rec_alloc(struct shg_seg *seg, uint64_t *off,
		     struct shg_type_rec **r)
{
	struct shg_off o;
	int err = shg_alloc(seg, sizeof(**r), &o);

	if (err)
		return err;
	*off = o.v;
	*r = shg__at(seg, o.v);
	memset(*r, 0, sizeof(**r));
	return 0;
}

/* Free a never-published table and the records it lists. */
static void table_discard(struct shg_seg *seg, uint64_t toff)
{
	struct shg_type_table *t = shg__at(seg, toff);
	uint32_t i;
	uint64_t r;

	for (i = 1; i <= NUM_BUILTIN; i++) {
		r = atomic_load_explicit(&t->rec[i], memory_order_relaxed);
		if (r)
			shg_free(seg, (struct shg_off){ r });
	}
	pthread_mutex_destroy(&t->lock);
	shg_free(seg, (struct shg_off){ toff });
}

/* Build a complete private table at @toff. */
static int table_fill(struct shg_seg *seg, uint64_t toff)
{
	struct shg_type_table *t = shg__at(seg, toff);
	struct shg_type_rec *r;
	uint64_t roff;
	uint32_t i;
	int err;

	memset(t, 0, sizeof(*t));
	err = shg__mutex_init(&t->lock);
	if (err)
		return err;
	for (i = 1; i <= NUM_BUILTIN; i++) {
		err = rec_alloc(seg, &roff, &r);
		if (err)
			return err;
		strcpy(r->name, builtin_recs[i].name);
		r->id = i;
		r->flags = SHG_TYPEF_BUILTIN;
		atomic_store_explicit(&t->rec[i], roff, memory_order_relaxed);
	}
	/* ids NUM_BUILTIN+1 .. SHG_TYPE_FIRST_USER-1 stay reserved (0). */
	atomic_store_explicit(&t->count, SHG_TYPE_FIRST_USER,
			      memory_order_relaxed);
	return 0;
}

int shg__types_init(struct shg_seg *seg)
{
	_Atomic uint64_t *ext = &seg->hdr->ext[SHG_EXT_TYPES];
	uint64_t cur = atomic_load_explicit(ext, memory_order_acquire);
	struct shg_off o;
	int err;

	if (shg_likely(cur))
		return table_peek(seg) ? 0 : SHG_CORRUPT();
	err = shg_alloc(seg, sizeof(struct shg_type_table), &o);
	if (err)
		return err;
	err = table_fill(seg, o.v);
	if (err) {
		table_discard(seg, o.v);
		return err;
	}
	/*
	 * Release: the table and its records, all written above, are visible
	 * to any thread that loads ext[] with acquire and sees @o. On failure
	 * the acquire makes the winner's table visible to us.
	 */
	if (!atomic_compare_exchange_strong_explicit(
		    ext, &cur, o.v, memory_order_acq_rel, memory_order_acquire))
		table_discard(seg, o.v);
	return table_peek(seg) ? 0 : SHG_CORRUPT();
}

/* ---- registration (under the table lock) ------------------------------- */

/* Printable ASCII, 1..@max bytes; returns the length or 0 if invalid. */
static size_t name_len(const char *s, size_t max)
{
	size_t n;

	if (!s)
		return 0;
	for (n = 0; s[n]; n++) {
		if (n >= max || (unsigned char)s[n] < 0x20 ||
		    (unsigned char)s[n] > 0x7e)
			return 0;
	}
	return n;
}

static int defs_validate(const char *name, const struct shg_field_def *f,
			 unsigned nf)
{
	unsigned i, j;

	if (!name_len(name, SHG_TYPE_NAME_MAX) || nf > SHG_MAX_FIELDS ||
	    (nf && !f))
		return -EINVAL;
	for (i = 0; i < nf; i++) {
		if (!name_len(f[i].name, SHG_FIELD_NAME_MAX) ||
		    !kind_valid((unsigned)f[i].kind))
			return -EINVAL;
		for (j = 0; j < i; j++)
			if (!strcmp(f[i].name, f[j].name))
				return -EINVAL;
	}
	return 0;
}

/* Whether record @r (validated) has name @name (bounded compare). */
static bool rec_named(const struct shg_type_rec *r, const char *name)
{
	return strncmp(r->name, name, sizeof(r->name)) == 0 &&
	       strlen(name) < sizeof(r->name);
}

/*
 * How definition @f/@nf relates to user record @r: -EEXIST if a field both
 * have differs in name or kind (or @r is a built-in), else 0 if equal,
 * 1 if @f appends fields to @r, 2 if @f is a strict prefix of @r.
 */
static int def_cmp(const struct shg_type_rec *r, const struct shg_field_def *f,
		   unsigned nf)
{
	unsigned i, m = nf < r->nfields ? nf : r->nfields;

	if (r->flags & SHG_TYPEF_BUILTIN)
		return -EEXIST;
	for (i = 0; i < m; i++)
		if (r->kind[i] != (uint8_t)f[i].kind ||
		    strncmp(r->fname[i], f[i].name, sizeof(r->fname[i])) ||
		    strlen(f[i].name) >= sizeof(r->fname[i]))
			return -EEXIST;
	return nf == r->nfields ? 0 : nf > r->nfields ? 1 : 2;
}

/* Whether type @b (first record) has a version with @nf fields. */
static bool family_has(struct shg_seg *seg, struct shg_type_table *t,
		       const struct shg_type_rec *b, unsigned nf)
{
	uint32_t count = atomic_load_explicit(&t->count, memory_order_acquire);
	const struct shg_type_rec *v;
	uint32_t id;

	if (b->nfields == nf)
		return true;
	if (count > SHG_MAX_TYPES)
		count = SHG_MAX_TYPES;
	for (id = b->id + 1; id < count; id++) {
		v = rec_get(seg, t, id);
		if (v && rec_version_of(v, b) && v->nfields == nf)
			return true;
	}
	return false;
}

/*
 * Definition @f/@nf against registered type @b (first record): 0 if it
 * equals one of its versions (an older program's view is fine), 1 if it
 * appends fields to the newest version (a new version to list), -EEXIST
 * otherwise (a field renamed, retyped, reordered or removed).
 */
static int def_match(struct shg_seg *seg, struct shg_type_table *t,
		     const struct shg_type_rec *b,
		     const struct shg_field_def *f, unsigned nf)
{
	int c = def_cmp(shg__type_newest(seg, b), f, nf);

	if (c == 2)
		return family_has(seg, t, b, nf) ? 0 : -EEXIST;
	return c;
}

/* Lock-free lookup by name in @t; 0 if absent. */
static uint32_t find_name(struct shg_seg *seg, struct shg_type_table *t,
			  const char *name, const struct shg_type_rec **out)
{
	uint32_t count = atomic_load_explicit(&t->count, memory_order_acquire);
	const struct shg_type_rec *r;
	uint32_t i;

	if (count > SHG_MAX_TYPES)
		count = SHG_MAX_TYPES;
	for (i = 1; i < count; i++) {
		r = rec_get(seg, t, i);
		if (r && !(r->flags & SHG_TYPEF_VERSION) &&
		    rec_named(r, name)) {
			*out = r;
			return i;
		}
	}
	return 0;
}

/*
 * Repair after a registrant died holding the lock: recount from the
 * records. A record stored in rec[id] is complete (stored after it was
 * filled, and a killed process's stores are not lost).
 */
static void table_repair(struct shg_seg *seg)
{
	struct shg_type_table *t = table_peek(seg);
	uint32_t id, top = SHG_TYPE_FIRST_USER;
	const struct shg_type_rec *r, *b;

	if (!t)
		return;
	for (id = SHG_TYPE_FIRST_USER; id < SHG_MAX_TYPES; id++)
		if (rec_get(seg, t, id))
			top = id + 1;
	atomic_store_explicit(&t->count, top, memory_order_release);
	/* Newest-version links: a registrant may have died before storing
	 * one. Versions are listed in id order, so the last one wins. */
	for (id = SHG_TYPE_FIRST_USER; id < top; id++) {
		r = rec_get(seg, t, id);
		if (!r || !(r->flags & SHG_TYPEF_VERSION))
			continue;
		b = rec_get(seg, t, r->link);
		if (b && rec_version_of(r, b))
			__atomic_store_n((uint32_t *)&b->link, id,
					 __ATOMIC_RELEASE);
	}
}

/*
 * Append a new record for the definition, a new type or (@base non-NULL)
 * a new version of type @base; caller holds the lock.
 */
static int table_append(struct shg_seg *seg, struct shg_type_table *t,
			const char *name, const struct shg_field_def *f,
			unsigned nf, const struct shg_type_rec *base,
			uint32_t *id)
{
	uint32_t n = atomic_load_explicit(&t->count, memory_order_relaxed);
	struct shg_type_rec *r;
	uint64_t roff;
	unsigned i;
	int err;

	if (n < SHG_TYPE_FIRST_USER)
		n = SHG_TYPE_FIRST_USER;
	if (n >= SHG_MAX_TYPES)
		return SHG_ESLOTS;
	err = rec_alloc(seg, &roff, &r);
	if (err)
		return err;
	strcpy(r->name, name);
	r->id = n;
	r->nfields = nf;
	if (base) {
		r->flags = SHG_TYPEF_VERSION;
		r->link = base->id;
	}
	for (i = 0; i < nf; i++) {
		r->kind[i] = (uint8_t)f[i].kind;
		strcpy(r->fname[i], f[i].name);
	}
	/* Release: the record's contents before its listing, and the listing
	 * before the count (see the theory of operation). */
	atomic_store_explicit(&t->rec[n], roff, memory_order_release);
	atomic_store_explicit(&t->count, n + 1, memory_order_release);
	/* Release: the count above before the newest-version link (readers
	 * acquire the link, then count; see the theory of operation). */
	if (base)
		__atomic_store_n((uint32_t *)&base->link, n, __ATOMIC_RELEASE);
	*id = base ? base->id : n;
	return 0;
}

int shg_type_register(struct shg_seg *seg, const char *name,
		      const struct shg_field_def *f, unsigned nfields,
		      uint32_t *id)
{
	const struct shg_type_rec *r;
	struct shg_type_table *t;
	uint32_t found;
	int err;

	if (!seg || !id)
		return -EINVAL;
	err = defs_validate(name, f, nfields);
	if (err)
		return err;
	err = shg__types_init(seg);
	if (err)
		return err;
	t = table_peek(seg);
	if (!t)
		return SHG_CORRUPT();
	/* Fast path: this definition is registered (records never change
	 * once listed; versions only append), or conflicts. */
	found = find_name(seg, t, name, &r);
	if (found) {
		err = def_match(seg, t, r, f, nfields);
		if (err <= 0) {
			if (!err)
				*id = found;
			return err;
		}
	}
	/* New type or new version: decide again under the lock, so that of
	 * two processes appending different fields one wins and the other
	 * gets -EEXIST, and the same new version twice is listed once. */
	err = shg__lock(seg, &t->lock, table_repair);
	if (err)
		return err;
	found = find_name(seg, t, name, &r);
	if (!found) {
		SHG_CRASH_POINT("types.locked");
		err = table_append(seg, t, name, f, nfields, NULL, id);
	} else {
		err = def_match(seg, t, r, f, nfields);
		if (err == 1)
			err = table_append(seg, t, name, f, nfields, r, id);
		else if (!err)
			*id = found;
	}
	SHG_CRASH_POINT("types.appended");
	shg__unlock(seg, &t->lock);
	return err;
}

int shg_type_find(struct shg_seg *seg, const char *name, uint32_t *id)
{
	const struct shg_type_rec *r;
	struct shg_type_table *t;
	uint32_t found;
	int err;

	if (!seg || !id || !name_len(name, SHG_TYPE_NAME_MAX))
		return -EINVAL;
	err = shg__types_init(seg);
	if (err)
		return err;
	t = table_peek(seg);
	if (!t)
		return SHG_CORRUPT();
	found = find_name(seg, t, name, &r);
	if (!found)
		return -ENOENT;
	*id = found;
	return 0;
}

int shg_type_info(struct shg_seg *seg, uint32_t id, struct shg_type_info *out)
{
	const struct shg_type_rec *r;
	uint32_t i, nf;
	int err;

	if (!seg || !out)
		return -EINVAL;
	err = shg__types_init(seg);
	if (err)
		return err;
	r = shg__type_get(seg, id);
	if (!r || (r->flags & SHG_TYPEF_VERSION))
		return -ENOENT; /* versions are reached through their type */
	r = shg__type_newest(seg, r);
	memset(out, 0, sizeof(*out));
	/* Bounded copies: the record is untrusted, NULs may be missing. */
	memcpy(out->name, r->name, SHG_TYPE_NAME_MAX);
	out->id = id;
	nf = r->nfields;
	if (nf > SHG_MAX_FIELDS)
		return SHG_CORRUPT();
	out->nfields = nf;
	for (i = 0; i < nf; i++) {
		memcpy(out->field[i].name, r->fname[i], SHG_FIELD_NAME_MAX);
		out->field[i].kind = (enum shg_kind)r->kind[i];
	}
	return 0;
}

int shg_field_find(struct shg_seg *seg, uint32_t type, const char *name,
		   enum shg_kind kind, unsigned *index)
{
	const struct shg_type_rec *r;
	size_t len;
	uint32_t i;
	int err;

	if (!seg || !name || !index || (kind && !kind_valid(kind)))
		return -EINVAL;
	len = name_len(name, SHG_FIELD_NAME_MAX);
	if (!len)
		return -ENOENT; /* no field can have this name */
	err = shg__types_init(seg);
	if (err)
		return err;
	r = shg__type_get(seg, type);
	if (!r || (r->flags & SHG_TYPEF_BUILTIN))
		return -ENOENT;
	r = shg__type_newest(seg, r);
	if (r->nfields > SHG_MAX_FIELDS)
		return SHG_CORRUPT();
	for (i = 0; i < r->nfields; i++) {
		if (strncmp(r->fname[i], name, SHG_FIELD_NAME_MAX) != 0 ||
		    r->fname[i][len] != 0)
			continue;
		if (kind && r->kind[i] != (uint8_t)kind)
			return -EINVAL;
		*index = i;
		return 0;
	}
	return -ENOENT;
}

int shg_node_is(struct shg_seg *seg, struct shg_off node, uint32_t type)
{
	int err = 0;
	uint32_t t = shg_node_type(seg, node, &err);

	if (!t)
		return err ? err : SHG_CORRUPT();
	return t == type ? 0 : -EINVAL;
}

/* ---- checker and sweep support ------------------------------------------- */

void shg__types_blocks(struct shg_seg *seg, void (*fn)(void *arg, uint64_t off),
		       void *arg)
{
	struct shg_type_table *t = table_peek(seg);
	uint64_t off;
	uint32_t id;

	if (!t)
		return;
	fn(arg, shg__off(seg, t));
	/* Every listed record, above count too: a registrant that died
	 * between listing and counting left one that repair will count. */
	for (id = 1; id < SHG_MAX_TYPES; id++) {
		off = atomic_load_explicit(&t->rec[id], memory_order_acquire);
		if (off &&
		    shg__off_ok(seg, off, sizeof(struct shg_type_rec), 8))
			fn(arg, off);
	}
}

/* One user record: names printable and NUL-terminated, fields unique. */
static void check_user_rec(const struct shg_type_rec *r, uint32_t id,
			   shg_problem_fn fn, void *arg,
			   struct shg_check_report *rep)
{
	uint32_t i, j, nf = r->nfields;

	if (!memchr(r->name, 0, sizeof(r->name)) ||
	    !name_len(r->name, SHG_TYPE_NAME_MAX))
		shg__problem(fn, arg, rep, SHG_ECORRUPT, "type %u: bad name",
			     id);
	for (i = 0; i < nf; i++) {
		if (!memchr(r->fname[i], 0, sizeof(r->fname[i])) ||
		    !name_len(r->fname[i], SHG_FIELD_NAME_MAX)) {
			shg__problem(fn, arg, rep, SHG_ECORRUPT,
				     "type %u: field %u: bad name", id, i);
			continue;
		}
		for (j = 0; j < i; j++)
			if (!strncmp(r->fname[i], r->fname[j],
				     sizeof(r->fname[i])))
				shg__problem(fn, arg, rep, SHG_ECORRUPT,
					     "type %u: fields %u and %u: "
					     "same name",
					     id, j, i);
	}
}

/*
 * Versions: a version extends the previous record of its type (@prev, the
 * one with the highest lower id and the same name) by appended fields; a
 * first record's newest-version link names one of its versions.
 */
static void check_version(struct shg_seg *seg, struct shg_type_table *t,
			  const struct shg_type_rec *r,
			  const struct shg_type_rec *prev, shg_problem_fn fn,
			  void *arg, struct shg_check_report *rep)
{
	const struct shg_type_rec *n;
	uint32_t i, link = __atomic_load_n(&r->link, __ATOMIC_ACQUIRE);

	if (!(r->flags & SHG_TYPEF_VERSION)) {
		n = link && link < SHG_MAX_TYPES ? rec_get(seg, t, link) : NULL;
		if (link && (!n || !rec_version_of(n, r)))
			shg__problem(fn, arg, rep, SHG_ECORRUPT,
				     "type %u: newest version %u is not one "
				     "of its versions",
				     r->id, link);
		return;
	}
	if (!prev || shg__type_base(prev) != link) {
		shg__problem(fn, arg, rep, SHG_ECORRUPT,
			     "type %u: version of type %u, which is not a "
			     "type of that name",
			     r->id, link);
		return;
	}
	if (r->nfields <= prev->nfields)
		shg__problem(fn, arg, rep, SHG_ECORRUPT,
			     "type %u: version with %u fields after one with "
			     "%u",
			     r->id, r->nfields, prev->nfields);
	for (i = 0; i < prev->nfields && i < r->nfields; i++)
		if (r->kind[i] != prev->kind[i] ||
		    strncmp(r->fname[i], prev->fname[i], sizeof(r->fname[i])))
			shg__problem(fn, arg, rep, SHG_ECORRUPT,
				     "type %u: field %u differs from the "
				     "previous version's (%u)",
				     r->id, i, prev->id);
}

/* Built-ins present and named, reserved ids empty. */
static void check_fixed_ids(struct shg_seg *seg, struct shg_type_table *t,
			    shg_problem_fn fn, void *arg,
			    struct shg_check_report *rep)
{
	const struct shg_type_rec *r;
	uint32_t id;

	for (id = 1; id <= NUM_BUILTIN; id++) {
		r = rec_get(seg, t, id);
		if (!r || !(r->flags & SHG_TYPEF_BUILTIN) ||
		    strncmp(r->name, builtin_recs[id].name, sizeof(r->name)))
			shg__problem(fn, arg, rep, SHG_ECORRUPT,
				     "type %u: built-in %s missing or bad", id,
				     builtin_recs[id].name);
	}
	for (; id < SHG_TYPE_FIRST_USER; id++)
		if (atomic_load_explicit(&t->rec[id], memory_order_relaxed))
			shg__problem(fn, arg, rep, SHG_ECORRUPT,
				     "type %u: reserved id in use", id);
}

int shg__types_check(struct shg_seg *seg, shg_problem_fn fn, void *arg,
		     struct shg_check_report *rep)
{
	uint64_t off = atomic_load_explicit(&seg->hdr->ext[SHG_EXT_TYPES],
					    memory_order_acquire);
	const struct shg_type_rec *r, *q, *prev;
	struct shg_type_table *t;
	uint32_t count, id, j;
	uint64_t roff;

	if (!off)
		return 0; /* no type used yet */
	t = table_peek(seg);
	if (!t || shg_block_size(seg, (struct shg_off){ off }) < sizeof(*t)) {
		shg__problem(fn, arg, rep, SHG_EBADOFF,
			     "type table at %#llx: not a block of %zu bytes",
			     (unsigned long long)off, sizeof(*t));
		return 0;
	}
	count = atomic_load_explicit(&t->count, memory_order_acquire);
	if (count < SHG_TYPE_FIRST_USER || count > SHG_MAX_TYPES) {
		shg__problem(fn, arg, rep, SHG_ECORRUPT,
			     "type table: count %u out of range", count);
		count = count > SHG_MAX_TYPES ? SHG_MAX_TYPES : count;
	}
	check_fixed_ids(seg, t, fn, arg, rep);
	for (id = SHG_TYPE_FIRST_USER; id < count; id++) {
		roff = atomic_load_explicit(&t->rec[id], memory_order_acquire);
		r = rec_get(seg, t, id);
		if (!r || shg_block_size(seg, (struct shg_off){ roff }) <
				  sizeof(*r)) {
			shg__problem(fn, arg, rep, SHG_ECORRUPT,
				     "type %u: missing or invalid record", id);
			continue;
		}
		check_user_rec(r, id, fn, arg, rep);
		prev = NULL;
		for (j = 1; j < id; j++) {
			q = rec_get(seg, t, j);
			if (!q || strncmp(q->name, r->name, sizeof(r->name)))
				continue;
			if (!(q->flags & SHG_TYPEF_BUILTIN) &&
			    shg__type_base(q) == shg__type_base(r)) {
				prev = q; /* versions of one type */
				continue;
			}
			shg__problem(fn, arg, rep, SHG_ECORRUPT,
				     "types %u and %u: same name", j, id);
		}
		check_version(seg, t, r, prev, fn, arg, rep);
	}
	return 0;
}
