/* SPDX-License-Identifier: MIT */
/*
 * shmgraph/base.h - what every part of the API shares: the export and
 * must-check attributes, error codes (shg_strerror) and the offset type.
 * Include <shmgraph.h> rather than this file.
 */
#ifndef SHMGRAPH_BASE_H
#define SHMGRAPH_BASE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <shmgraph/version.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(SHG_BUILDING_LIB)
#define SHG_API __attribute__((visibility("default")))
#else
#define SHG_API
#endif
#define SHG_MUST_CHECK __attribute__((warn_unused_result))

/* -------------------------------------------------------------------------
 * Error codes (all below -4095 so they never collide with -errno).
 */
enum shg_error {
	SHG_EMAGIC = -4096, /* not a shmgraph segment (bad magic) */
	SHG_EVERSION = -4097, /* segment format newer than this library */
	SHG_ELAYOUT = -4098, /* layout hash mismatch (other build/ABI) */
	SHG_ETRUNC = -4099, /* file shorter than its header claims */
	SHG_ETOOSMALL = -4100, /* file too small to hold a header */
	SHG_ENOTREG = -4101, /* not a regular file */
	SHG_EOWNER = -4102, /* file owned by another user */
	SHG_EMODE = -4103, /* group/other writable and not allowed */
	SHG_ENLINK = -4104, /* file has more than one hard link */
	SHG_ECORRUPT = -4105, /* inconsistent data in the segment */
	SHG_ECONFLICT = -4106, /* compare-and-swap lost to another writer */
	SHG_EDEADOWNER = -4107, /* the owner of a resource is dead */
	SHG_EBUDGET = -4108, /* retired memory over budget: a reader stalls */
	SHG_ECAPACITY = -4109, /* segment capacity exhausted */
	SHG_ESLOTS = -4110, /* no free process/thread/root slot */
	SHG_EBADOFF = -4111, /* offset null, out of range or misaligned */
	SHG_ENESTED = -4112, /* call not allowed inside a read section */
	SHG_EBOOT = -4113, /* segment from another boot (recovered) */
	SHG_ESTUCK = -4114, /* a live process held a segment lock too long */
	SHG_ENOHUGE = -4115, /* no huge pages for the segment's file system */
	SHG_EREPLICA = -4116, /* root is a read-only replica (follower only) */
	SHG_ELAST = -4116,
};

/**
 * shg_strerror() - describe an error code.
 * @err: 0, a negative errno value or an SHG_E* code.
 *
 * Context: any. Return: a static string, never NULL.
 */
SHG_API const char *shg_strerror(int err);

/* -------------------------------------------------------------------------
 * Offsets.
 */

/*
 * struct shg_off - position of a block inside a segment; v == 0 is null.
 * A distinct struct so the compiler rejects mixing offsets and pointers.
 */
struct shg_off {
	uint64_t v;
};

#define SHG_OFF_NULL ((struct shg_off){ 0 })

static inline bool shg_off_is_null(struct shg_off o)
{
	return o.v == 0;
}

static inline bool shg_off_eq(struct shg_off a, struct shg_off b)
{
	return a.v == b.v;
}

#ifdef __cplusplus
}
#endif
#endif /* SHMGRAPH_BASE_H */
