/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: snapshot files, through what `shmctl import` does.
 *
 * An input is the bytes of a snapshot file (docs/SNAPSHOT.md). Each input
 * gets a fresh small segment holding a few roots that root references may
 * name, and goes to shg_import_mem() twice at most:
 *
 *  1. as it is: checksums, lengths and every field are checked;
 *  2. if (1) failed, with its frame repaired -- total length, header,
 *     section and trailer CRC32C recomputed -- so that mutations reach the
 *     parser and the builder behind the checksums.
 *
 * After each import: the result is 0 or a negative code; shg_check()
 * finds no problem; a quiescent reachability sweep (dry run) finds no
 * allocated block that nothing reaches (a failed import leaks nothing);
 * and after a successful one, exporting the root and importing that
 * export elsewhere exports the same bytes again (canonical round trip).
 *
 * Seeds (tests/fuzz/corpus/fuzz_snapshot/, `fuzz_snapshot --make-seeds
 * DIR`): exports of every root of the graphs the segment target uses.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"
#include "snapshot.h"

const char fz_target_name[] = "fuzz_snapshot";

#define SEG_CAPACITY (8u << 20)
#define MAX_FIX (1u << 20) /* inputs up to this size get a repaired copy */

/* Roots an imported graph's root references may name. */
static const char *const target_roots[] = { "vec", "ids", "a" };

static int verbose = -1;

static void problem(void *arg, int code, const char *msg)
{
	(void)code;
	fz_fail("%s: shg_check after import: %s", (const char *)arg, msg);
}

static void check_sound(struct shg_seg *seg, const char *when)
{
	struct shg_check_report rep;
	int64_t leaked;
	int rc;

	rc = shg_check(seg, problem, (void *)when, &rep);
	fz_rc("shg_check", rc);
	if (rc)
		fz_fail("%s: shg_check: %d problems", when, rc);
	rc = shg_synchronize(seg, 1000);
	fz_rc("shg_synchronize", rc);
	(void)shg_reclaim(seg);
	leaked = shg__sweep(seg, NULL, NULL, true);
	fz_rc("sweep", leaked);
	if (leaked > 0)
		fz_fail("%s: %lld bytes allocated and unreachable", when,
			(long long)leaked);
}

/* The export of @root in @seg into @out (malloc'd). */
static int export_mem(struct shg_seg *seg, const char *root, struct fz_buf *out)
{
	char path[512];
	uint8_t chunk[65536];
	ssize_t n;
	int fd, err;

	fz_tmp_path(path, sizeof(path), "export");
	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		fz_fail("cannot create %s", path);
	unlink(path);
	err = shg_export(seg, root, fd);
	fz_rc("shg_export", err);
	out->n = 0;
	if (!err && lseek(fd, 0, SEEK_SET) == 0)
		while ((n = read(fd, chunk, sizeof(chunk))) > 0)
			if (fz_buf_put(out, chunk, (size_t)n))
				fz_fail("out of memory");
	close(fd);
	return err;
}

/*
 * A fresh segment with the roots of target_roots[]; @variant 1: "a" holds
 * a small graph and a type "fz.person" with other fields than the seeds'
 * exists (the replace and type conflict paths).
 */
static struct shg_seg *fresh_segment(char *name, size_t len, int variant)
{
	static const struct shg_field_def other[] = { { "x", SHG_KIND_U64 } };
	struct shg_txn *t;
	struct shg_val v = { .kind = SHG_KIND_U64, .u64 = 7 };
	uint32_t id;
	struct shg_opts o = { .size = sizeof(o) };
	struct shg_root *r;
	struct shg_seg *seg;
	unsigned i;
	int err;

	o.capacity = SEG_CAPACITY;
	o.max_procs = 4;
	o.max_threads = 8;
	o.max_roots = 16;
	o.flavor = SHG_FLAVOR_FENCE;
	fz_tmp_path(name, len, "snapseg");
	err = shg_seg_create(name, &o, &seg);
	if (err)
		fz_fail("shg_seg_create: %s", shg_strerror(err));
	for (i = 0; i < sizeof(target_roots) / sizeof(target_roots[0]); i++) {
		err = shg_root_create(seg, target_roots[i], &r);
		if (!err && variant == 1 && !strcmp(target_roots[i], "a")) {
			err = shg_txn_begin(r, &t);
			if (!err)
				err = shg_txn_map_new(t, SHG_REF_ROOT,
						      SHG_KIND_U64,
						      SHG_KIND_U64);
			if (!err)
				err = shg_txn_map_put_u64(t, SHG_REF_ROOT, 1,
							  &v);
			if (!err)
				err = shg_txn_commit(t);
		}
		if (err)
			fz_fail("segment setup: %s", shg_strerror(err));
		shg_root_close(r);
	}
	if (variant == 1 &&
	    (err = shg_type_register(seg, "fz.person", other, 1, &id)))
		fz_fail("shg_type_register: %s", shg_strerror(err));
	return seg;
}

/* Export "in", import that as "again", export "again": same bytes. */
static void round_trip(struct shg_seg *seg)
{
	struct fz_buf a = { 0 }, b = { 0 };
	int err;

	if (export_mem(seg, "in", &a))
		fz_fail("import succeeded but export failed");
	err = shg_import_mem(seg, "again", a.p, a.n, 0);
	fz_rc("shg_import_mem (round trip)", err);
	if (err)
		fz_fail("re-import of an export failed: %s", shg_strerror(err));
	if (export_mem(seg, "again", &b))
		fz_fail("export of the re-import failed");
	if (a.n != b.n || memcmp(a.p, b.p, a.n))
		fz_fail("export -> import -> export is not byte-identical "
			"(%zu vs %zu bytes)",
			a.n, b.n);
	free(a.p);
	free(b.p);
}

/*
 * Import into a fresh segment. @variant 0: as the new root "in"; 1: over
 * the existing root "a" with SHG_IMPORT_REPLACE, next to a conflicting
 * type. Exported back from "in" either way (round_trip).
 */
static int import_one(const uint8_t *p, size_t n, const char *what, int variant)
{
	char name[512];
	struct shg_seg *seg = fresh_segment(name, sizeof(name), variant);
	int rc;

	if (variant == 1) {
		rc = shg_import_mem(seg, "a", p, n, SHG_IMPORT_REPLACE);
		fz_rc("shg_import_mem (replace)", rc);
		check_sound(seg, "after a replacing import");
	}
	rc = shg_import_mem(seg, "in", p, n, 0);
	if (verbose > 0)
		printf("  import (%s): %s\n", what, shg_strerror(rc));
	fz_rc("shg_import_mem", rc);
	check_sound(seg, what);
	if (rc == 0) {
		round_trip(seg);
		check_sound(seg, "after the round trip");
	}
	shg_seg_close(seg);
	if (shg_seg_unlink(name))
		fz_fail("cannot unlink %s", name);
	return rc;
}

/* Recompute the frame of snapshot @p (@n bytes) in place. */
static void repair_frame(uint8_t *p, size_t n)
{
	size_t pos = SNAP_HDR, end;
	uint64_t plen;
	unsigned k;

	if (n < SNAP_HDR + SNAP_TRAILER)
		return;
	put_le(p + 16, n, 8);
	put_le(p + 28, shg__crc32c(p, 28), 4);
	end = n - SNAP_TRAILER;
	for (k = 0; k < SNAP_NSECTIONS; k++) {
		if (end - pos < SNAP_SEC_HDR + SNAP_SEC_CRC)
			break;
		plen = get_le(p + pos + 8, 8);
		if (plen > end - pos - SNAP_SEC_HDR - SNAP_SEC_CRC)
			break;
		put_le(p + pos + SNAP_SEC_HDR + plen,
		       shg__crc32c(p + pos, SNAP_SEC_HDR + plen), 4);
		pos += SNAP_SEC_HDR + plen + SNAP_SEC_CRC;
	}
	put_le(p + n - 8, SNAP_END, 4);
	put_le(p + n - 4, shg__crc32c(p, n - 4), 4);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *fixed;
	int rc;

	if (verbose < 0)
		verbose = getenv("SHG_FUZZ_VERBOSE") != NULL;
	/* The variant is the input's last byte's low bit: deterministic. */
	rc = import_one(data, size, "as is", size && (data[size - 1] & 1));
	if (rc == 0 || size > MAX_FIX || size < SNAP_HDR + SNAP_TRAILER)
		return 0;
	fixed = malloc(size);
	if (!fixed)
		return 0;
	memcpy(fixed, data, size);
	repair_frame(fixed, size);
	if (memcmp(fixed, data, size))
		(void)import_one(fixed, size, "frame repaired",
				 (fixed[size - 5] & 1));
	free(fixed);
	return 0;
}

/* ---- seed corpus ---------------------------------------------------------- */

int fz_make_seeds(const char *dir)
{
	struct shg_opts o = { .size = sizeof(o) };
	struct fz_buf img = { 0 };
	struct shg_seg *seg;
	char path[512], name[64];
	unsigned i;
	int err;

	o.capacity = SEG_CAPACITY;
	o.flavor = SHG_FLAVOR_FENCE;
	fz_tmp_path(path, sizeof(path), "seedseg");
	err = shg_seg_create(path, &o, &seg);
	if (err)
		return err;
	err = fz_build_graphs(seg, false);
	for (i = 0; !err && i < FZ_NROOTS; i++) {
		if (!strcmp(fz_root_names[i], "gone") ||
		    !strcmp(fz_root_names[i], "raw"))
			continue; /* removed; not a graph */
		err = export_mem(seg, fz_root_names[i], &img);
		snprintf(name, sizeof(name), "seed-%s", fz_root_names[i]);
		if (!err)
			err = fz_write_file(dir, name, img.p, img.n);
		if (!err)
			printf("%s: %s/%s (%zu bytes)\n", fz_target_name, dir,
			       name, img.n);
	}
	free(img.p);
	shg_seg_close(seg);
	if (shg_seg_unlink(path) && !err)
		err = -EIO;
	return err;
}
