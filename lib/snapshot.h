/* SPDX-License-Identifier: MIT */
/*
 * Internals shared by the snapshot exporter (snapshot.c) and importer
 * (snapshot_import.c): the format's constants (docs/SNAPSHOT.md), CRC32C,
 * a growable little-endian output buffer, a bounded input cursor, and the
 * encoding of one value.
 */
#ifndef SHG_SNAPSHOT_H
#define SHG_SNAPSHOT_H

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "graph_internal.h"

/* ---- format constants ------------------------------------------------- */

#define SNAP_MAGIC "SHGSNAP" /* 8 bytes with its NUL */
#define SNAP_VERSION 1u
#define SNAP_HDR 32u /* magic, version, flags, length, sections, crc */
#define SNAP_SEC_HDR 16u /* tag, count, payload length */
#define SNAP_SEC_CRC 4u
#define SNAP_TRAILER 8u /* end tag, crc of all bytes before it */
#define SNAP_NSECTIONS 4u

#define TAG(a, b, c, d)                                             \
	((uint32_t)(a) | (uint32_t)(b) << 8 | (uint32_t)(c) << 16 | \
	 (uint32_t)(d) << 24)
#define SEC_TYPES TAG('T', 'Y', 'P', 'E')
#define SEC_ROOTS TAG('R', 'O', 'O', 'T')
#define SEC_NODES TAG('N', 'O', 'D', 'E')
#define SEC_GRAPH TAG('G', 'R', 'P', 'H')
#define SNAP_END TAG('S', 'E', 'N', 'D')

enum rec_kind {
	REC_USER = 1, /* node of a user type: its fields */
	REC_MAP = 2, /* map: its entries, sorted by key */
	REC_VEC = 3, /* vector: its elements */
	REC_BYTES = 4, /* a bytes node referenced as a node */
};

#define ROOTREF_SELF 0x1u /* the exported root itself (no name) */
#define SNAP_MAX_NODES (UINT32_MAX - 1u)

/*
 * Header words of built-in containers that export needs for empty ones
 * (their kinds are otherwise seen only through their entries). Offsets
 * from the layout tables in map.c and vec.c.
 */
#define MAP_OFF_KEYKIND 28u
#define MAP_OFF_VALKIND 29u
#define MAP_OFF_FLAGS 30u
#define MAP_MIN_SIZE 32u
#define VEC_OFF_VALKIND 28u
#define VEC_MIN_SIZE 48u

/* CRC32C (Castagnoli) of @n bytes at @buf (snapshot.c). */
SHG_HIDDEN uint32_t shg__crc32c(const void *buf, size_t n);

/* ---- little-endian output buffer -------------------------------------- */

struct buf {
	uint8_t *p;
	size_t n, cap;
	int err; /* sticky -ENOMEM */
};

static inline uint8_t *buf_grow(struct buf *b, size_t more)
{
	if (b->err)
		return NULL;
	if (more > SIZE_MAX / 2 - b->n ||
	    shg__grow(&b->p, &b->cap, b->n + more, 1)) {
		b->err = -ENOMEM;
		return NULL;
	}
	b->n += more;
	return b->p + b->n - more;
}

static inline void buf_put(struct buf *b, const void *p, size_t n)
{
	uint8_t *d = buf_grow(b, n);

	if (d && n)
		memcpy(d, p, n);
}

static inline void put_le(uint8_t *d, uint64_t v, unsigned bytes)
{
	unsigned i;

	for (i = 0; i < bytes; i++)
		d[i] = (uint8_t)(v >> (8 * i));
}

static inline void buf_le(struct buf *b, uint64_t v, unsigned bytes)
{
	uint8_t *d = buf_grow(b, bytes);

	if (d)
		put_le(d, v, bytes);
}

#define buf_u8(b, v) buf_le((b), (v), 1)
#define buf_u32(b, v) buf_le((b), (v), 4)
#define buf_u64(b, v) buf_le((b), (v), 8)

static inline void buf_free(struct buf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

/*
 * Write the snapshot of version @ver (0: an empty graph) of root @r into
 * the empty buffer @out; the caller keeps the version pinned (snapshot.c; used by the
 * replication's snapshot frames).
 */
SHG_HIDDEN int shg__export_version(struct shg_seg *seg, struct shg_root *r,
				   uint64_t ver, struct buf *out);

/* ---- bounded input cursor --------------------------------------------- */

struct cur {
	const uint8_t *p;
	size_t n, pos;
	bool bad; /* read past the end */
};

static inline uint64_t get_le(const uint8_t *s, unsigned bytes)
{
	uint64_t v = 0;
	unsigned i;

	for (i = 0; i < bytes; i++)
		v |= (uint64_t)s[i] << (8 * i);
	return v;
}

static inline const uint8_t *cur_take(struct cur *c, size_t n)
{
	const uint8_t *s;

	if (c->bad || n > c->n - c->pos) {
		c->bad = true;
		return NULL;
	}
	s = c->p + c->pos;
	c->pos += n;
	return s;
}

static inline uint64_t cur_le(struct cur *c, unsigned bytes)
{
	const uint8_t *s = cur_take(c, bytes);

	return s ? get_le(s, bytes) : 0;
}

static inline size_t cur_left(const struct cur *c)
{
	return c->bad ? 0 : c->n - c->pos;
}

/* ---- values ------------------------------------------------------------ */

/* A decoded value of one kind (snapshot encoding). */
struct sval {
	unsigned kind; /* enum shg_kind */
	uint64_t w; /* U64, I64, F64: the 64 bits */
	const uint8_t *p; /* BYTES: data (in the file or the segment) */
	uint32_t len; /* BYTES: length */
	uint32_t ref; /* NODE: node index + 1; ROOT: root index + 1; 0 null */
};

static inline bool kind_ok(unsigned k)
{
	return k >= SHG_KIND_U64 && k <= SHG_KIND_ROOT;
}

/* Fewest bytes a value of kind @k takes in the file. */
static inline size_t kind_min(unsigned k)
{
	return k <= SHG_KIND_F64 ? 8 : 4;
}

/* Keys: u64 ascending; bytes by memcmp, a prefix first. */
static inline int key_cmp(const struct sval *a, const struct sval *b)
{
	size_t n;
	int c;

	if (a->kind == SHG_KIND_U64)
		return a->w < b->w ? -1 : a->w > b->w;
	n = a->len < b->len ? a->len : b->len;
	c = n ? memcmp(a->p, b->p, n) : 0;
	if (c)
		return c;
	return a->len < b->len ? -1 : a->len > b->len;
}

static inline void put_sval(struct buf *b, const struct sval *v)
{
	switch (v->kind) {
	case SHG_KIND_BYTES:
		buf_u32(b, v->len);
		buf_put(b, v->p, v->len);
		break;
	case SHG_KIND_NODE:
	case SHG_KIND_ROOT:
		buf_u32(b, v->ref);
		break;
	default:
		buf_u64(b, v->w);
		break;
	}
}

#endif /* SHG_SNAPSHOT_H */
