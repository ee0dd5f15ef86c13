/* SPDX-License-Identifier: MIT */
/*
 * shmctl export / import: a root's graph to and from a snapshot file
 * (shg_export / shg_import; format in docs/SNAPSHOT.md). Export writes a
 * temporary file next to FILE and renames it into place, so FILE is never
 * half written; "-" means standard output / standard input.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shmctl.h"

/* Sequence number of @root's current version (0 if none). */
static uint64_t current_seq(struct shg_seg *seg, const char *root)
{
	struct shg_version_info vi;
	struct shg_root *r;
	uint64_t seq = 0;

	if (shg_root_open(seg, root, &r))
		return 0;
	if (!shg_read_lock(seg)) {
		if (!shg_version_info(seg, shg_version_current(r), &vi))
			seq = vi.seq;
		shg_read_unlock(seg);
	}
	shg_root_close(r);
	return seq;
}

static bool root_exists(struct shg_seg *seg, const char *root)
{
	struct shg_root *r;

	if (shg_root_open(seg, root, &r))
		return false;
	shg_root_close(r);
	return true;
}

static int export_err(struct cli *c, struct shg_seg *seg, int err)
{
	if (err == -ENOENT && !root_exists(seg, c->arg[0]))
		return failf("%s: no root '%s'", c->seg_name, c->arg[0]);
	if (err == -ENOENT)
		return failf("export %s: a map or vector value references a "
			     "root that no longer exists",
			     c->arg[0]);
	if (err == SHG_ECORRUPT || err == SHG_EBADOFF)
		return failf("export %s: the graph is damaged (%s); run "
			     "shmctl check",
			     c->arg[0], shg_strerror(err));
	return fail(c->arg[1], err);
}

int cmd_export(struct cli *c, struct shg_seg *seg)
{
	const char *file = c->arg[1];
	char *tmp = NULL;
	struct stat st;
	int fd, err;

	if (!strcmp(file, "-")) {
		err = shg_export(seg, c->arg[0], STDOUT_FILENO);
		return err ? export_err(c, seg, err) : 0;
	}
	if (asprintf(&tmp, "%s.tmp.%d", file, (int)getpid()) < 0)
		return fail("export", -ENOMEM);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0) {
		err = -errno;
		free(tmp);
		return fail(file, err);
	}
	err = shg_export(seg, c->arg[0], fd);
	if (!err && fsync(fd))
		err = -errno;
	if (!err && fstat(fd, &st))
		err = -errno;
	if (close(fd) && !err)
		err = -errno;
	if (!err && rename(tmp, file))
		err = -errno;
	if (err)
		unlink(tmp);
	free(tmp);
	if (err)
		return export_err(c, seg, err);
	if (c->json) {
		printf("{\"root\":");
		shg__json_str(stdout, c->arg[0]);
		printf(",\"file\":");
		shg__json_str(stdout, file);
		printf(",\"bytes\":%lld}\n", (long long)st.st_size);
	} else {
		printf("exported root '%s' to %s (%lld bytes)\n", c->arg[0],
		       file, (long long)st.st_size);
	}
	return 0;
}

/* One line naming what is wrong with the file or the import. */
static int import_err(struct cli *c, struct shg_seg *seg, int err)
{
	const char *file = c->arg[1];

	switch (err) {
	case SHG_ETOOSMALL:
		return failf("%s: too short to be a snapshot", file);
	case SHG_EMAGIC:
		return failf("%s: not a shmgraph snapshot (bad magic)", file);
	case SHG_EVERSION:
		return failf("%s: snapshot format version not supported", file);
	case SHG_ETRUNC:
		return failf("%s: snapshot is truncated", file);
	case -EBADMSG:
		return failf("%s: snapshot checksum mismatch (damaged file)",
			     file);
	case SHG_ECORRUPT:
		return failf("%s: snapshot content is inconsistent (corrupt "
			     "or forged)",
			     file);
	case -EFBIG:
		return failf("%s: larger than the segment's capacity", file);
	case -EEXIST:
		if (root_exists(seg, c->arg[0]))
			return failf("root '%s' exists (use --replace to "
				     "replace its graph)",
				     c->arg[0]);
		return failf("%s: a type in the snapshot has the name of a "
			     "registered type with other fields",
			     file);
	case -ENOENT:
		return failf("%s: a root the snapshot references does not "
			     "exist in %s",
			     file, c->seg_name);
	default:
		return fail(file, err);
	}
}

int cmd_import(struct cli *c, struct shg_seg *seg)
{
	const char *file = c->arg[1];
	struct stat st;
	int fd, err;

	fd = strcmp(file, "-") ? open(file, O_RDONLY | O_CLOEXEC) :
				 STDIN_FILENO;
	if (fd < 0)
		return fail(file, -errno);
	if (fstat(fd, &st))
		st.st_size = 0;
	err = shg_import(seg, c->arg[0], fd,
			 c->replace ? SHG_IMPORT_REPLACE : 0);
	if (fd != STDIN_FILENO)
		close(fd);
	if (err)
		return import_err(c, seg, err);
	if (c->json) {
		printf("{\"root\":");
		shg__json_str(stdout, c->arg[0]);
		printf(",\"file\":");
		shg__json_str(stdout, file);
		printf(",\"bytes\":%lld,\"seq\":%" PRIu64 ",\"replace\":%s}\n",
		       (long long)st.st_size, current_seq(seg, c->arg[0]),
		       c->replace ? "true" : "false");
	} else {
		printf("imported %s into root '%s' (version %" PRIu64 ")\n",
		       strcmp(file, "-") ? file : "standard input", c->arg[0],
		       current_seq(seg, c->arg[0]));
	}
	return 0;
}
