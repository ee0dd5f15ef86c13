/* SPDX-License-Identifier: MIT */
/*
 * shg_strerror(): names every code a shmgraph function can return: 0,
 * shmgraph's own SHG_E* codes (below -4095) and negative errno values.
 * All strings are static, so the function is thread-safe and never fails.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static const char *const shg_msgs[] = {
	[-(SHG_EMAGIC)-4096] = "not a shmgraph segment (bad magic)",
	[-(SHG_EVERSION)-4096] = "segment format version not supported",
	[-(SHG_ELAYOUT)-4096] = "segment layout differs from this build",
	[-(SHG_ETRUNC)-4096] = "segment file is truncated",
	[-(SHG_ETOOSMALL)-4096] = "file too small to be a segment",
	[-(SHG_ENOTREG)-4096] = "segment is not a regular file",
	[-(SHG_EOWNER)-4096] = "segment is owned by another user",
	[-(SHG_EMODE)-4096] = "segment is writable by group or others",
	[-(SHG_ENLINK)-4096] = "segment file has more than one hard link",
	[-(SHG_ECORRUPT)-4096] = "segment data is corrupt",
	[-(SHG_ECONFLICT)-4096] = "value changed by another writer",
	[-(SHG_EDEADOWNER)-4096] = "owner of the resource is dead",
	[-(SHG_EBUDGET)-4096] = "retired memory over budget (stalled reader)",
	[-(SHG_ECAPACITY)-4096] = "segment capacity exhausted",
	[-(SHG_ESLOTS)-4096] = "no free slot",
	[-(SHG_EBADOFF)-4096] = "bad offset (null, out of range or misaligned)",
	[-(SHG_ENESTED)-4096] = "not allowed inside a read section",
	[-(SHG_EBOOT)-4096] = "segment from another boot",
	[-(SHG_ESTUCK)-4096] = "a live process held a segment lock too long",
	[-(SHG_ENOHUGE)-4096] = "no huge pages on this file system (needs "
				"tmpfs or hugetlbfs; shmem_enabled deny?)",
	[-(SHG_EREPLICA)-4096] = "root is a read-only replica (written only "
				 "by its follower)",
};

_Static_assert(sizeof(shg_msgs) / sizeof(shg_msgs[0]) ==
		       (size_t)(-(SHG_ELAST)-4096 + 1),
	       "a message for every SHG_E* code");

#if !(defined(__GLIBC__) && \
      (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32)))
/* Without strerrordesc_np (glibc < 2.32, other libcs): the usual ones. */
static const char *errno_msg(int e)
{
	switch (e) {
	case EPERM:
		return "Operation not permitted";
	case ENOENT:
		return "No such file or directory";
	case ESRCH:
		return "No such process";
	case EINTR:
		return "Interrupted system call";
	case EIO:
		return "Input/output error";
	case EBADF:
		return "Bad file descriptor";
	case EAGAIN:
		return "Resource temporarily unavailable";
	case ENOMEM:
		return "Cannot allocate memory";
	case EACCES:
		return "Permission denied";
	case EFAULT:
		return "Bad address";
	case EBUSY:
		return "Device or resource busy";
	case EEXIST:
		return "File exists";
	case ENOTDIR:
		return "Not a directory";
	case EISDIR:
		return "Is a directory";
	case EINVAL:
		return "Invalid argument";
	case ENFILE:
		return "Too many open files in system";
	case EMFILE:
		return "Too many open files";
	case EFBIG:
		return "File too large";
	case ENOSPC:
		return "No space left on device";
	case EROFS:
		return "Read-only file system";
	case ERANGE:
		return "Numerical result out of range";
	case ENAMETOOLONG:
		return "File name too long";
	case ENOSYS:
		return "Function not implemented";
	case ELOOP:
		return "Too many levels of symbolic links";
	case ENOTSUP:
		return "Operation not supported";
	case ETIMEDOUT:
		return "Connection timed out";
	case EOWNERDEAD:
		return "Owner died";
	case ENOTRECOVERABLE:
		return "State not recoverable";
	default:
		return NULL;
	}
}
#else
static const char *errno_msg(int e)
{
	return strerrordesc_np(e);
}
#endif

const char *shg_strerror(int err)
{
	const char *s = NULL;

	if (err == 0)
		return "success";
	if (err <= SHG_EMAGIC && err >= SHG_ELAST)
		s = shg_msgs[-err - 4096];
	else if (err < 0 && err > -4096)
		s = errno_msg(-err);
	return s ? s : "unknown error";
}

/* ---- where corruption was found ----------------------------------------- */

static __thread const char *corrupt_file;
static __thread int corrupt_line;

void shg__corrupt_at(const char *file, int line)
{
	static _Atomic int debug = -1; /* -1: environment not read yet */
	int d = atomic_load_explicit(&debug, memory_order_relaxed);

	corrupt_file = file;
	corrupt_line = line;
	if (d < 0) {
		const char *e = getenv("SHG_DEBUG_CORRUPT");

		d = e && *e && strcmp(e, "0") != 0;
		atomic_store_explicit(&debug, d, memory_order_relaxed);
	}
	if (d)
		fprintf(stderr, "shmgraph: corrupt data detected at %s:%d\n",
			file, line);
}

bool shg__corrupt_where(const char **file, int *line)
{
	if (!corrupt_file)
		return false;
	*file = corrupt_file;
	*line = corrupt_line;
	return true;
}
