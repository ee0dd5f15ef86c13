/* SPDX-License-Identifier: MIT */
/*
 * Tests of the segment layer (shm/segment.c, shm/platform.c, lib/error.c):
 * creating and opening segments across processes, every rejection of a
 * hostile or broken file at open, bounds-checked offsets, heap backing
 * growth (including a full filesystem, which must give -ENOSPC and never
 * SIGBUS), huge pages (tmpfs and hugetlbfs mounted in private mount
 * namespaces), robust mutexes, process tokens and shg_strerror.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"
#include "testutil.h"

#define MIB (1ull << 20)

static struct shg_opts opts_cap(uint64_t cap)
{
	struct shg_opts o = { .size = sizeof(o) };

	o.capacity = cap;
	return o;
}

/* Create a file-path segment (16 MiB) at @path and close it. */
static void make_file_seg(char *path, size_t len, const char *tag)
{
	struct shg_opts o = opts_cap(16 * MIB);
	struct shg_seg *seg = NULL;

	tu_file_path(path, len, tag);
	tu_ok(shg_seg_create(path, &o, &seg));
	tu_ok(shg_seg_close(seg));
}

static int open_rc(const char *name, uint32_t flags)
{
	struct shg_opts o = { .size = sizeof(o) };
	struct shg_seg *seg = NULL;
	int err;

	o.flags = flags;
	err = shg_seg_open(name, &o, &seg);
	if (err == 0) {
		assert_non_null(seg);
		shg_seg_close(seg);
	} else {
		assert_null(seg);
	}
	return err;
}

/* -------------------------------------------------------------------------
 * Create and open.
 */
struct child_arg {
	const char *name;
	const struct shg_seg *parent;
	uint64_t off;
};

static int child_open_and_write(void *p)
{
	struct child_arg *a = p;
	struct shg_seg *seg = NULL;
	uint8_t *b;

	if (shg_seg_open(a->name, NULL, &seg) != 0)
		return 10;
	/* A second mapping: the parent's is still mapped in the child. */
	if (seg->base == a->parent->base)
		return 11;
	if (memcmp(seg->hdr->magic, SHG_MAGIC, 8) != 0 ||
	    seg->hdr->version != SHG_FORMAT_VERSION ||
	    seg->hdr->capacity != a->parent->capacity ||
	    seg->capacity != a->parent->capacity ||
	    seg->heap_off != a->parent->heap_off ||
	    seg->nspans != a->parent->nspans ||
	    seg->max_procs != a->parent->max_procs ||
	    seg->hdr->creator_pid != (uint32_t)getppid() ||
	    seg->hdr->layout_hash != shg__seg_layout_hash(seg))
		return 12;
	if (shg__ensure_backed(seg, a->off - seg->heap_off + 64) != 0)
		return 13;
	b = shg_ptr(seg, (struct shg_off){ a->off }, 8);
	if (!b)
		return 14;
	*b = 0xa5;
	shg_seg_close(seg);
	return 0;
}

static void test_segment_create_open_fork(void **state)
{
	char name[64];
	struct shg_seg *seg = tu_create(name, 16 * MIB);
	struct child_arg a = { name, seg, 0 };
	uint8_t *b;

	(void)state;
	a.off = seg->heap_off + 4096;
	assert_int_equal(shg_seg_capacity(seg), 16 * MIB);
	assert_int_equal(shg_seg_backed(seg), seg->heap_off);
	assert_int_equal(atomic_load(&seg->hdr->epoch), 1);
	assert_int_equal(seg->hdr->max_procs, 256);
	assert_int_equal(seg->hdr->max_threads, 1024);
	assert_int_equal(seg->hdr->max_roots, 1024);
	assert_int_equal(seg->hdr->max_holds, 4096);
	assert_int_equal(seg->hdr->retire_budget, 2 * MIB);
	assert_int_equal(seg->heap_off % SHG_SPAN_SIZE, 0);
	assert_int_equal(seg->nspans,
			 (16 * MIB - seg->heap_off) / SHG_SPAN_SIZE);
	assert_null(shg_ptr(seg, (struct shg_off){ a.off }, 8));
	assert_int_equal(tu_wait(tu_fork(child_open_and_write, &a)), 0);
	b = shg_ptr(seg, (struct shg_off){ a.off }, 8);
	assert_non_null(b);
	assert_int_equal(*b, 0xa5);
	tu_destroy(seg, name);
}

static void test_segment_create_twice(void **state)
{
	char name[64];
	struct shg_seg *seg = tu_create(name, 0), *seg2 = NULL;

	(void)state;
	assert_int_equal(shg_seg_create(name, NULL, &seg2), -EEXIST);
	assert_null(seg2);
	/* The first one is untouched and still opens. */
	assert_int_equal(open_rc(name, 0), 0);
	tu_destroy(seg, name);
}

static void test_segment_open_missing(void **state)
{
	char name[64], path[PATH_MAX];
	struct stat st;

	(void)state;
	tu_shm_name(name, sizeof(name), "missing");
	assert_int_equal(open_rc(name, 0), -ENOENT);
	snprintf(path, sizeof(path), "/dev/shm%s", name);
	assert_int_equal(stat(path, &st), -1);
	assert_int_equal(errno, ENOENT);
	tu_file_path(path, sizeof(path), "missing");
	assert_int_equal(open_rc(path, 0), -ENOENT);
	assert_int_equal(stat(path, &st), -1);
}

static void check_mode(mode_t umask_val, uint32_t mode, mode_t want)
{
	struct shg_opts o = opts_cap(8 * MIB);
	struct shg_seg *seg = NULL;
	mode_t old = umask(umask_val);
	char name[64];
	struct stat st;

	o.mode = mode;
	tu_shm_name(name, sizeof(name), "mode");
	tu_ok(shg_seg_create(name, &o, &seg));
	umask(old);
	assert_int_equal(fstat(seg->fd, &st), 0);
	assert_int_equal(st.st_mode & 07777, want);
	tu_destroy(seg, name);
}

static void test_segment_exact_mode(void **state)
{
	(void)state;
	check_mode(0077, 0640, 0640);
	check_mode(0000, 0640, 0640);
	check_mode(0000, 0, 0600); /* default not widened by umask 0 */
	check_mode(0077, 0, 0600);
	check_mode(0022, 0400, 0400);
}

static void test_segment_file_path(void **state)
{
	char path[PATH_MAX];
	struct shg_seg *seg = NULL;
	struct stat st;

	(void)state;
	make_file_seg(path, sizeof(path), "file");
	assert_int_equal(stat(path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	tu_ok(shg_seg_open(path, NULL, &seg));
	assert_false(seg->is_shm);
	assert_int_equal(shg_seg_capacity(seg), 16 * MIB);
	tu_ok(shg__ensure_backed(seg, 1));
	assert_true(shg_seg_backed(seg) > seg->heap_off);
	assert_int_equal(stat(path, &st), 0);
	assert_true((uint64_t)st.st_size >= shg_seg_backed(seg));
	shg_seg_close(seg);
	tu_ok(shg_seg_unlink(path));
	assert_int_equal(shg_seg_unlink(path), -ENOENT);
}

static void test_segment_symlink(void **state)
{
	char path[PATH_MAX], link_path[PATH_MAX + 8];
	struct shg_seg *seg = NULL;

	(void)state;
	make_file_seg(path, sizeof(path), "target");
	snprintf(link_path, sizeof(link_path), "%s.lnk", path);
	assert_int_equal(symlink(path, link_path), 0);
	assert_int_equal(open_rc(link_path, 0), -ELOOP);
	/* Creation through a symlink never follows it. */
	unlink(path);
	assert_int_equal(shg_seg_create(link_path, NULL, &seg), -EEXIST);
	assert_int_equal(access(path, F_OK), -1);
	unlink(link_path);
}

static void test_segment_not_regular(void **state)
{
	char path[PATH_MAX];

	(void)state;
	tu_file_path(path, sizeof(path), "dir");
	assert_int_equal(mkdir(path, 0700), 0);
	assert_int_equal(open_rc(path, 0), SHG_ENOTREG);
	rmdir(path);
	tu_file_path(path, sizeof(path), "fifo");
	assert_int_equal(mkfifo(path, 0600), 0);
	assert_int_equal(open_rc(path, 0), SHG_ENOTREG);
	unlink(path);
}

static void test_segment_group_writable(void **state)
{
	char path[PATH_MAX];

	(void)state;
	make_file_seg(path, sizeof(path), "grp");
	assert_int_equal(chmod(path, 0660), 0);
	assert_int_equal(open_rc(path, 0), SHG_EMODE);
	assert_int_equal(open_rc(path, SHG_OPEN_ALLOW_GROUP), 0);
	unlink(path);
}

static void test_segment_other_writable(void **state)
{
	char path[PATH_MAX];

	(void)state;
	make_file_seg(path, sizeof(path), "oth");
	assert_int_equal(chmod(path, 0602), 0);
	assert_int_equal(open_rc(path, 0), SHG_EMODE);
	assert_int_equal(open_rc(path, SHG_OPEN_ALLOW_GROUP), SHG_EMODE);
	unlink(path);
}

static void test_segment_hard_link(void **state)
{
	char path[PATH_MAX], path2[PATH_MAX + 8];

	(void)state;
	make_file_seg(path, sizeof(path), "lnk");
	snprintf(path2, sizeof(path2), "%s.2", path);
	assert_int_equal(link(path, path2), 0);
	assert_int_equal(open_rc(path, 0), SHG_ENLINK);
	assert_int_equal(open_rc(path2, 0), SHG_ENLINK);
	unlink(path2);
	assert_int_equal(open_rc(path, 0), 0);
	unlink(path);
}

static void test_segment_wrong_owner(void **state)
{
	char path[PATH_MAX];

	(void)state;
	if (geteuid() != 0) {
		print_message("skipped: chown to another uid needs root\n");
		skip();
	}
	make_file_seg(path, sizeof(path), "own");
	assert_int_equal(chown(path, 65534, (gid_t)-1), 0);
	assert_int_equal(open_rc(path, 0), SHG_EOWNER);
	unlink(path);
}

static void test_segment_too_small(void **state)
{
	char path[PATH_MAX], buf[100] = "SHMGRAPH";
	int fd;

	(void)state;
	tu_file_path(path, sizeof(path), "small");
	fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, buf, sizeof(buf)), sizeof(buf));
	assert_int_equal(open_rc(path, 0), SHG_ETOOSMALL);
	assert_int_equal(ftruncate(fd, 0), 0);
	assert_int_equal(open_rc(path, 0), SHG_ETOOSMALL);
	close(fd);
	unlink(path);
}

/* -------------------------------------------------------------------------
 * Forged headers: make a segment, rewrite its header, expect @want.
 */
static void forge(void (*edit)(struct shg_hdr *h, int fd), int want)
{
	char path[PATH_MAX];
	struct shg_hdr *h = calloc(1, sizeof(*h));
	int fd;

	assert_non_null(h);
	make_file_seg(path, sizeof(path), "forge");
	fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, h, sizeof(*h), 0), sizeof(*h));
	edit(h, fd);
	assert_int_equal(pwrite(fd, h, sizeof(*h), 0), sizeof(*h));
	close(fd);
	assert_int_equal(open_rc(path, 0), want);
	unlink(path);
	free(h);
}

static void ed_magic(struct shg_hdr *h, int fd)
{
	(void)fd;
	h->magic[0] = 'X';
}

static void ed_zero(struct shg_hdr *h, int fd)
{
	(void)fd;
	memset(h, 0, sizeof(*h)); /* a creator that died before the magic */
}

static void ed_version(struct shg_hdr *h, int fd)
{
	(void)fd;
	h->version = SHG_FORMAT_VERSION + 1;
}

static void ed_old_version(struct shg_hdr *h, int fd)
{
	(void)fd;
	h->version = 0;
}

static void ed_hash(struct shg_hdr *h, int fd)
{
	(void)fd;
	h->layout_hash ^= 1;
}

static void ed_hdr_size(struct shg_hdr *h, int fd)
{
	(void)fd;
	h->hdr_size = 8192;
}

static void ed_trunc(struct shg_hdr *h, int fd)
{
	assert_int_equal(ftruncate(fd, (off_t)(h->heap_off - 4096)), 0);
}

static void ed_backed_past_eof(struct shg_hdr *h, int fd)
{
	(void)fd;
	atomic_store(&h->backed, h->heap_off + 4 * MIB);
}

static void ed_backed_low(struct shg_hdr *h, int fd)
{
	(void)fd;
	atomic_store(&h->backed, h->heap_off - 64);
}

static void ed_region_out(struct shg_hdr *h, int fd)
{
	(void)fd;
	h->spans_off = h->heap_off; /* span table runs into the heap */
}

static void ed_region_huge(struct shg_hdr *h, int fd)
{
	(void)fd;
	h->roots_off = UINT64_MAX - 63; /* wraps if added carelessly */
}

static void ed_overlap(struct shg_hdr *h, int fd)
{
	(void)fd;
	h->threads_off = h->procs_off + 64; /* inside the process table */
}

static void ed_order(struct shg_hdr *h, int fd)
{
	uint64_t t = h->procs_off;

	(void)fd;
	h->procs_off = h->holds_off;
	h->holds_off = t;
}

static void ed_misaligned(struct shg_hdr *h, int fd)
{
	(void)fd;
	h->arenas_off += 8;
}

static void ed_in_header(struct shg_hdr *h, int fd)
{
	(void)fd;
	h->procs_off = 64; /* inside the header itself */
}

static void ed_capacity_huge(struct shg_hdr *h, int fd)
{
	(void)fd;
	h->capacity = 1ull << 62;
}

static void ed_capacity_unaligned(struct shg_hdr *h, int fd)
{
	(void)fd;
	h->capacity += 4096;
}

static void ed_capacity_grown(struct shg_hdr *h, int fd)
{
	(void)fd;
	h->capacity *= 2; /* nspans no longer matches */
}

static void ed_nspans(struct shg_hdr *h, int fd)
{
	(void)fd;
	h->nspans += 1;
}

static void ed_counts(struct shg_hdr *h, int fd)
{
	(void)fd;
	h->max_threads = 0xffffffffu;
}

static void ed_nodes(struct shg_hdr *h, int fd)
{
	(void)fd;
	h->nodes = 0;
}

static void ed_heap_off(struct shg_hdr *h, int fd)
{
	(void)fd;
	h->heap_off += 4096; /* not span aligned */
}

static void ed_backed_over_cap(struct shg_hdr *h, int fd)
{
	(void)fd;
	atomic_store(&h->backed, UINT64_MAX);
}

static void ed_epoch(struct shg_hdr *h, int fd)
{
	(void)fd;
	atomic_store(&h->epoch, 0);
}

static void test_segment_bad_magic(void **state)
{
	(void)state;
	forge(ed_magic, SHG_EMAGIC);
	forge(ed_zero, SHG_EMAGIC);
}

static void test_segment_newer_version(void **state)
{
	(void)state;
	forge(ed_version, SHG_EVERSION);
	forge(ed_old_version, SHG_EVERSION);
}

static void test_segment_layout_mismatch(void **state)
{
	(void)state;
	forge(ed_hash, SHG_ELAYOUT);
	forge(ed_hdr_size, SHG_ELAYOUT);
}

static void test_segment_truncated(void **state)
{
	(void)state;
	forge(ed_trunc, SHG_ETRUNC);
	forge(ed_backed_past_eof, SHG_ETRUNC);
	forge(ed_backed_low, SHG_ETRUNC);
}

static void test_segment_corrupt_regions(void **state)
{
	(void)state;
	forge(ed_region_out, SHG_ECORRUPT);
	forge(ed_region_huge, SHG_ECORRUPT);
	forge(ed_overlap, SHG_ECORRUPT);
	forge(ed_order, SHG_ECORRUPT);
	forge(ed_misaligned, SHG_ECORRUPT);
	forge(ed_in_header, SHG_ECORRUPT);
}

static void test_segment_corrupt_geometry(void **state)
{
	(void)state;
	forge(ed_capacity_huge, SHG_ECORRUPT);
	forge(ed_capacity_unaligned, SHG_ECORRUPT);
	forge(ed_capacity_grown, SHG_ECORRUPT);
	forge(ed_nspans, SHG_ECORRUPT);
	forge(ed_counts, SHG_ECORRUPT);
	forge(ed_nodes, SHG_ECORRUPT);
	forge(ed_heap_off, SHG_ECORRUPT);
	forge(ed_backed_over_cap, SHG_ECORRUPT);
	forge(ed_epoch, SHG_ECORRUPT);
}

/* -------------------------------------------------------------------------
 * Argument validation.
 */
static void test_segment_bad_names(void **state)
{
	char longname[NAME_MAX + 8];
	struct shg_seg *seg = NULL;

	(void)state;
	assert_int_equal(shg_seg_create("", NULL, &seg), -EINVAL);
	assert_int_equal(shg_seg_create("/", NULL, &seg), -EINVAL);
	assert_int_equal(shg_seg_create(NULL, NULL, &seg), -EINVAL);
	assert_int_equal(shg_seg_open("", NULL, &seg), -EINVAL);
	assert_int_equal(shg_seg_create("/x", NULL, NULL), -EINVAL);
	memset(longname, 'a', sizeof(longname));
	longname[0] = '/';
	longname[sizeof(longname) - 1] = '\0';
	assert_int_equal(shg_seg_create(longname, NULL, &seg), -ENAMETOOLONG);
	assert_int_equal(shg_seg_open(longname, NULL, &seg), -ENAMETOOLONG);
	assert_int_equal(shg_seg_unlink(""), -EINVAL);
	assert_null(seg);
}

static void expect_create_einval(struct shg_opts *o)
{
	struct shg_seg *seg = NULL;
	char name[64];

	tu_shm_name(name, sizeof(name), "inval");
	assert_int_equal(shg_seg_create(name, o, &seg), -EINVAL);
	assert_null(seg);
	/* Nothing was left behind. */
	assert_int_equal(shg_seg_unlink(name), -ENOENT);
}

static void test_segment_bad_opts(void **state)
{
	struct shg_opts o;

	(void)state;
	o = opts_cap(1 * MIB);
	expect_create_einval(&o);
	o = opts_cap(SHG_MAX_CAPACITY + 1);
	expect_create_einval(&o);
	o = opts_cap(8 * MIB);
	o.mode = 04600;
	expect_create_einval(&o);
	o = opts_cap(8 * MIB);
	o.size = offsetof(struct shg_opts, flavor) - 1;
	expect_create_einval(&o);
	o = opts_cap(8 * MIB);
	o.max_procs = SHG_MAX_PROCS + 1;
	expect_create_einval(&o);
	o = opts_cap(8 * MIB);
	o.max_threads = SHG_MAX_THREADS + 1;
	expect_create_einval(&o);
	o = opts_cap(8 * MIB);
	o.flavor = 7;
	expect_create_einval(&o);
	o = opts_cap(8 * MIB);
	o.numa_policy = SHG_NUMA_BIND;
	o.numa_node = SHG_MAX_NODES;
	expect_create_einval(&o);
	o = opts_cap(8 * MIB);
	o.flags = 0x80;
	expect_create_einval(&o);
	/* Tables too big for the capacity: fewer than 4 heap spans. */
	o = opts_cap(SHG_MIN_CAPACITY);
	o.max_threads = SHG_MAX_THREADS;
	expect_create_einval(&o);
}

static void test_segment_short_opts(void **state)
{
	/* An older caller's struct ending before ->flavor is accepted; the
	 * missing fields take defaults. */
	struct shg_opts o = opts_cap(8 * MIB + 1);
	struct shg_seg *seg = NULL;
	char name[64];

	(void)state;
	o.size = offsetof(struct shg_opts, flavor);
	o.flavor = 99; /* beyond ->size: must be ignored */
	o.retire_budget = 1;
	tu_shm_name(name, sizeof(name), "short");
	tu_ok(shg_seg_create(name, &o, &seg));
	assert_int_equal(shg_seg_capacity(seg), 8 * MIB + SHG_SPAN_SIZE);
	assert_int_equal(seg->hdr->retire_budget, shg_seg_capacity(seg) / 8);
	tu_destroy(seg, name);
}

static void test_segment_flavor(void **state)
{
	struct shg_opts o = opts_cap(8 * MIB);
	struct shg_seg *seg = NULL;
	char name[64];

	(void)state;
	tu_shm_name(name, sizeof(name), "flavor");
	tu_ok(shg_seg_create(name, &o, &seg));
	assert_int_equal(shg_seg_flavor(seg), shg__membarrier_supported() ?
						      SHG_FLAVOR_MEMBARRIER :
						      SHG_FLAVOR_FENCE);
	shg_seg_close(seg);
	o.flavor = SHG_FLAVOR_FENCE;
	tu_ok(shg_seg_open(name, &o, &seg));
	assert_int_equal(shg_seg_flavor(seg), SHG_FLAVOR_FENCE);
	shg_seg_close(seg);

	setenv("SHG_NO_MEMBARRIER", "1", 1);
	assert_false(shg__membarrier_supported());
	o.flavor = SHG_FLAVOR_MEMBARRIER;
	assert_int_equal(shg_seg_open(name, &o, &seg), -ENOTSUP);
	o.flavor = SHG_FLAVOR_AUTO;
	tu_ok(shg_seg_open(name, &o, &seg));
	assert_int_equal(shg_seg_flavor(seg), SHG_FLAVOR_FENCE);
	shg_seg_close(seg);
	unsetenv("SHG_NO_MEMBARRIER");
	tu_ok(shg_seg_unlink(name));
}

/* -------------------------------------------------------------------------
 * Offsets and backing.
 */
static void test_segment_ptr_checks(void **state)
{
	char name[64];
	struct shg_seg *seg = tu_create(name, 16 * MIB);
	uint64_t h, backed;
	uint8_t *p;

	(void)state;
	h = seg->heap_off;
	tu_ok(shg__ensure_backed(seg, 4096));
	backed = shg_seg_backed(seg);
	assert_null(shg_ptr(seg, SHG_OFF_NULL, 8));
	assert_null(shg_ptr(seg, (struct shg_off){ 64 }, 8)); /* header */
	assert_null(shg_ptr(seg, (struct shg_off){ h + 4 }, 8));
	assert_null(shg_ptr(seg, (struct shg_off){ backed }, 8));
	assert_null(shg_ptr(seg, (struct shg_off){ backed - 8 }, 16));
	assert_null(shg_ptr(seg, (struct shg_off){ UINT64_MAX - 7 }, 16));
	assert_null(shg_ptr(seg, (struct shg_off){ h }, SIZE_MAX));
	assert_null(shg_ptr(NULL, (struct shg_off){ h }, 8));
	p = shg_ptr(seg, (struct shg_off){ h }, 8);
	assert_ptr_equal(p, seg->base + h);
	assert_non_null(shg_ptr(seg, (struct shg_off){ backed - 8 }, 8));
	assert_non_null(shg_ptr(seg, (struct shg_off){ backed }, 0));
	assert_int_equal(shg_off_of(seg, p).v, h);
	assert_int_equal(shg_off_of(seg, p + 24).v, h + 24);
	assert_true(shg_off_is_null(shg_off_of(seg, seg->base)));
	assert_true(shg_off_is_null(shg_off_of(seg, &h)));
	assert_true(
		shg_off_is_null(shg_off_of(seg, seg->base + seg->capacity)));
	assert_true(shg_off_is_null(shg_off_of(seg, NULL)));
	tu_destroy(seg, name);
}

static void test_segment_ensure_backed(void **state)
{
	char name[64];
	struct shg_seg *seg = tu_create(name, 16 * MIB);
	uint64_t h = seg->heap_off, heap = seg->capacity - h, b1;
	struct stat st;

	(void)state;
	assert_int_equal(shg_seg_backed(seg), h);
	tu_ok(shg__ensure_backed(seg, 0));
	assert_int_equal(shg_seg_backed(seg), h);
	tu_ok(shg__ensure_backed(seg, 1));
	b1 = shg_seg_backed(seg);
	assert_int_equal(b1, (h + 1 + 2 * MIB - 1) & ~(2 * MIB - 1));
	assert_int_equal(fstat(seg->fd, &st), 0);
	assert_true((uint64_t)st.st_size >= b1);
	/* Already backed: no change; never shrinks. */
	tu_ok(shg__ensure_backed(seg, b1 - h));
	tu_ok(shg__ensure_backed(seg, 1));
	assert_int_equal(shg_seg_backed(seg), b1);
	tu_ok(shg__ensure_backed(seg, b1 - h + 1));
	assert_int_equal(shg_seg_backed(seg), b1 + 2 * MIB);
	assert_int_equal(shg__ensure_backed(seg, heap + 1), SHG_ECAPACITY);
	assert_int_equal(shg__ensure_backed(seg, UINT64_MAX), SHG_ECAPACITY);
	tu_ok(shg__ensure_backed(seg, heap));
	assert_int_equal(shg_seg_backed(seg), seg->capacity);
	/* The whole heap is now usable without faults. */
	memset(seg->base + h, 0x5a, heap);
	assert_non_null(shg_ptr(seg, (struct shg_off){ seg->capacity - 8 }, 8));
	tu_destroy(seg, name);
}

struct grow_arg {
	const char *name;
	unsigned id;
};

/* Grow in steps from another process (own mapping), opening meanwhile. */
static int child_grow(void *p)
{
	struct grow_arg *a = p;
	struct shg_seg *seg = NULL;
	uint64_t step;

	if (shg_seg_open(a->name, NULL, &seg) != 0)
		return 1;
	for (step = 1; step <= 8; step++) {
		struct shg_seg *again = NULL;
		uint64_t want = (step * 4 + a->id) * MIB / 2;

		if (shg__ensure_backed(seg, want) != 0)
			return 2;
		if (shg_seg_backed(seg) < seg->heap_off + want)
			return 3;
		/* A concurrent open never sees `backed` beyond EOF. */
		if (shg_seg_open(a->name, NULL, &again) != 0)
			return 4;
		shg_seg_close(again);
	}
	shg_seg_close(seg);
	return 0;
}

static void test_segment_concurrent_growth(void **state)
{
	char name[64];
	struct shg_seg *seg = tu_create(name, 64 * MIB);
	struct grow_arg a[4];
	pid_t pid[4];
	struct stat st;
	unsigned i;

	(void)state;
	for (i = 0; i < 4; i++) {
		a[i] = (struct grow_arg){ name, i };
		pid[i] = tu_fork(child_grow, &a[i]);
	}
	for (i = 0; i < 4; i++)
		assert_int_equal(tu_wait(pid[i]), 0);
	/* Largest request: (8 * 4 + 3) / 2 MiB of heap, in 2 MiB steps. */
	assert_int_equal(shg_seg_backed(seg),
			 (seg->heap_off + 35 * MIB / 2 + 2 * MIB - 1) &
				 ~(2 * MIB - 1));
	assert_int_equal(fstat(seg->fd, &st), 0);
	assert_true((uint64_t)st.st_size >= shg_seg_backed(seg));
	tu_destroy(seg, name);
}

/* In a child: 64 MiB segment on an 8 MiB tmpfs at @dir. */
static int enospc_body(const char *dir)
{
	struct shg_opts o = opts_cap(64 * MIB);
	struct shg_seg *seg = NULL;
	char path[PATH_MAX];
	uint64_t backed;
	int err;

	snprintf(path, sizeof(path), "%s/seg", dir);
	if (shg_seg_create(path, &o, &seg) != 0)
		return 20;
	backed = shg_seg_backed(seg);
	err = shg__ensure_backed(seg, 32 * MIB);
	if (err != -ENOSPC)
		return 21;
	if (shg_seg_backed(seg) != backed)
		return 22;
	if (shg_ptr(seg, (struct shg_off){ seg->heap_off + 16 * MIB }, 8))
		return 23;
	/* A smaller growth still fits, and every backed byte is usable. */
	if (shg__ensure_backed(seg, 1 * MIB) != 0)
		return 24;
	backed = shg_seg_backed(seg);
	memset(seg->base + seg->heap_off, 1, backed - seg->heap_off);
	shg_seg_close(seg);
	unlink(path);
	return 0;
}

static int enospc_run(void *arg)
{
	return enospc_body(arg);
}

static int enospc_child(void *arg)
{
	const char *dir = arg;
	int rc;

	if (unshare(CLONE_NEWNS) != 0)
		return 77;
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
		return 77;
	if (mount("none", dir, "tmpfs", 0, "size=8m,mode=0700") != 0)
		return 77;
	rc = enospc_body(dir);
	umount(dir);
	return rc;
}

static void test_segment_enospc(void **state)
{
	char dir[PATH_MAX];
	int rc;

	(void)state;
	tu_file_path(dir, sizeof(dir), "tmpfs");
	assert_int_equal(mkdir(dir, 0700), 0);
	rc = tu_wait(tu_fork(enospc_child, dir));
	if (rc == 77 && geteuid() == 0 &&
	    mount("none", dir, "tmpfs", 0, "size=8m,mode=0700") == 0) {
		/* No mount namespace: mount here, run in a child anyway so a
		 * SIGBUS would show as a status, then unmount. */
		rc = tu_wait(tu_fork(enospc_run, dir));
		umount(dir);
	}
	rmdir(dir);
	if (rc == 77) {
		print_message("skipped: mounting a tmpfs is not permitted\n");
		skip();
	}
	assert_int_not_equal(rc, 128 + SIGBUS);
	assert_int_equal(rc, 0);
}

/* -------------------------------------------------------------------------
 * Huge pages (SHG_OPEN_HUGE, shg_seg_huge).
 */
#define HUGE_SKIP 77

/* The bracketed word of shmem_enabled ("" when the file is missing). */
static void shmem_enabled(char *out, size_t len)
{
	char buf[256] = "", *a, *b;
	FILE *f =
		fopen("/sys/kernel/mm/transparent_hugepage/shmem_enabled", "r");

	out[0] = '\0';
	if (!f)
		return;
	if (fgets(buf, sizeof(buf), f) && (a = strchr(buf, '[')) &&
	    (b = strchr(a, ']')) && (size_t)(b - a) < len)
		snprintf(out, len, "%.*s", (int)(b - a - 1), a + 1);
	fclose(f);
}

/* Fill [from, to) of the segment with a pattern, or check it is there. */
static bool huge_pattern(struct shg_seg *seg, uint64_t from, uint64_t to,
			 bool check)
{
	uint64_t *w = (uint64_t *)(void *)(seg->base + from);
	size_t i, n = (size_t)((to - from) / 8);

	for (i = 0; i < n; i += 509) {
		if (!check)
			w[i] = i * 0x9e3779b97f4a7c15ull;
		else if (w[i] != i * 0x9e3779b97f4a7c15ull)
			return false;
	}
	return true;
}

/*
 * In a child with its own mount namespace (unshare), so the mounts vanish
 * with it: a tmpfs with huge=within_size and a ramfs at @dir. Returns 0,
 * HUGE_SKIP, or the number of the check that failed.
 */
static int huge_mount(const char *dir, const char *fs, const char *opts)
{
	if (mount("none", dir, fs, 0, opts) != 0)
		return -1;
	return 0;
}

static int huge_tmpfs_child(void *arg)
{
	struct shg_huge_info hi = { .size = sizeof(hi) };
	struct shg_opts o = opts_cap(33 * MIB + 64 * 1024);
	struct shg_seg *seg = NULL, *other = NULL;
	const char *dir = arg;
	char path[PATH_MAX];
	uint64_t heap;
	bool full;

	if (unshare(CLONE_NEWNS) != 0 ||
	    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
	    huge_mount(dir, "tmpfs", "size=96m,mode=0700,huge=within_size"))
		return HUGE_SKIP;
	snprintf(path, sizeof(path), "%s/seg", dir);
	o.flags = SHG_OPEN_HUGE;
	if (shg_seg_create(path, &o, &seg) != 0)
		return 1;
	/* Rounded up to whole huge pages, mapped at an aligned address. */
	if (shg_seg_capacity(seg) != 34 * MIB ||
	    (uintptr_t)seg->base % (2 * MIB))
		return 2;
	heap = seg->heap_off;
	if (shg__ensure_backed(seg, 16 * MIB) != 0)
		return 3;
	huge_pattern(seg, heap, heap + 16 * MIB, false);
	if (shg_seg_huge(seg, &hi) != 0 || hi.backing != SHG_HUGE_TMPFS ||
	    !hi.requested || hi.page_size != 2 * MIB ||
	    strcmp(hi.policy, "huge=within_size") != 0)
		return 4;
	/* The mount makes the pages huge: at least the 16 MiB of heap,
	 * unless the host has no free 2 MiB blocks left (then say so). */
	full = hi.huge_bytes >= 16 * MIB;
	if (!full)
		printf("the host gave %llu bytes of huge pages (memory "
		       "fragmented?): huge-byte counts not checked\n",
		       (unsigned long long)hi.huge_bytes);
	if (hi.huge_bytes > hi.backed)
		return 5;
	/* Another opener that did not ask maps the same huge pages (and
	 * follows the creator's request). */
	if (shg_seg_open(path, NULL, &other) != 0)
		return 6;
	memset(&hi, 0, sizeof(hi));
	hi.size = sizeof(hi);
	if (shg_seg_huge(other, &hi) != 0 || hi.requested != 1 ||
	    hi.backing != SHG_HUGE_TMPFS || (full && hi.huge_bytes < 16 * MIB))
		return 7;
	if (!huge_pattern(other, heap, heap + 16 * MIB, true))
		return 8;
	shg_seg_close(other);
	shg_seg_close(seg);
	unlink(path);
	/* A ramfs gives no huge pages: refused, and no file left behind. */
	umount(dir);
	if (huge_mount(dir, "ramfs", "mode=0700"))
		return HUGE_SKIP;
	if (shg_seg_create(path, &o, &seg) != SHG_ENOHUGE || seg)
		return 9;
	if (access(path, F_OK) == 0 || errno != ENOENT)
		return 10;
	umount(dir);
	return 0;
}

static void test_segment_huge_tmpfs(void **state)
{
	char dir[PATH_MAX];
	int rc;

	(void)state;
	tu_file_path(dir, sizeof(dir), "huge");
	assert_int_equal(mkdir(dir, 0700), 0);
	rc = tu_wait(tu_fork(huge_tmpfs_child, dir));
	rmdir(dir);
	if (rc == HUGE_SKIP) {
		print_message("skipped: cannot mount a tmpfs with huge= in a "
			      "private mount namespace (needs root)\n");
		skip();
	}
	assert_int_equal(rc, 0);
}

/*
 * A POSIX shm name lives on the /dev/shm mount. The host decides: with
 * shmem_enabled [deny] SHG_OPEN_HUGE is refused; otherwise it is accepted
 * (the mount's huge= pages, or collapse) and the backed heap is huge.
 */
static void test_segment_huge_shm_name(void **state)
{
	struct shg_huge_info hi = { .size = sizeof(hi) };
	struct shg_opts o = opts_cap(32 * MIB);
	struct shg_seg *seg = NULL, *other = NULL;
	char name[64], shm[16];
	uint64_t heap;
	bool got;
	int err;

	(void)state;
	shmem_enabled(shm, sizeof(shm));
	tu_shm_name(name, sizeof(name), "huge");
	o.flags = SHG_OPEN_HUGE;
	err = shg_seg_create(name, &o, &seg);
	if (!shm[0] || !strcmp(shm, "deny")) {
		print_message("shmem_enabled is '%s': huge pages refused\n",
			      shm);
		assert_int_equal(err, SHG_ENOHUGE);
		assert_null(seg);
		assert_int_equal(shg_seg_unlink(name), -ENOENT);
		assert_non_null(strstr(shg_strerror(err), "huge pages"));
		return;
	}
	if (err == SHG_ENOHUGE) {
		/* Only a kernel without MADV_COLLAPSE (< 6.1) on a
		 * huge=never/advise /dev/shm says no here. */
		assert_int_equal(madvise((void *)(uintptr_t)getpagesize(), 0,
					 25 /* MADV_COLLAPSE */),
				 -1);
		print_message("skipped: no MADV_COLLAPSE and /dev/shm is not "
			      "a huge tmpfs\n");
		skip();
	}
	tu_ok(err);
	heap = seg->heap_off;
	tu_ok(shg__ensure_backed(seg, 8 * MIB));
	huge_pattern(seg, heap, heap + 8 * MIB, false);
	tu_ok(shg_seg_huge(seg, &hi));
	assert_true(hi.backing == SHG_HUGE_TMPFS ||
		    hi.backing == SHG_HUGE_COLLAPSE);
	assert_int_equal(hi.requested, 1);
	assert_int_equal(hi.page_size, 2 * MIB);
	assert_true(!strncmp(hi.policy, "huge=", 5) ||
		    !strncmp(hi.policy, "shmem_enabled=", 14));
	/* Huge pages are best effort (free 2 MiB blocks); on a test host
	 * at least the heap's whole huge pages are expected. */
	print_message("%s: %llu of %llu bytes huge\n", hi.policy,
		      (unsigned long long)hi.huge_bytes,
		      (unsigned long long)hi.backed);
	/* A host whose memory has no free 2 MiB blocks left gives none:
	 * that is the kernel's answer, not a failure of the segment. */
	got = hi.huge_bytes >= 6 * MIB;
	if (!got)
		print_message("the host gave %llu bytes of huge pages (memory "
			      "fragmented?): huge-byte counts not checked\n",
			      (unsigned long long)hi.huge_bytes);
	/* Contents survive the collapse; a plain opener maps them huge, and
	 * follows the creator's request: what it backs is made huge too. */
	tu_ok(shg_seg_open(name, NULL, &other));
	assert_true(huge_pattern(other, heap, heap + 8 * MIB, true));
	memset(&hi, 0, sizeof(hi));
	hi.size = sizeof(hi);
	tu_ok(shg_seg_huge(other, &hi));
	assert_int_equal(hi.requested, 1);
	assert_true(!got || hi.huge_bytes >= 6 * MIB);
	tu_ok(shg__ensure_backed(other, 16 * MIB));
	huge_pattern(other, heap + 8 * MIB, heap + 16 * MIB, false);
	tu_ok(shg_seg_huge(other, &hi));
	print_message("after a plain opener grew the heap: %llu of %llu "
		      "bytes huge\n",
		      (unsigned long long)hi.huge_bytes,
		      (unsigned long long)hi.backed);
	assert_true(!got || hi.huge_bytes >= 14 * MIB);
	/* Too short a struct is refused. */
	hi.size = sizeof(hi) - 1;
	assert_int_equal(shg_seg_huge(other, &hi), -EINVAL);
	shg_seg_close(other);
	shg_seg_close(seg);
	tu_ok(shg_seg_unlink(name));
}

/* A file path on a file system that is neither tmpfs nor hugetlbfs. */
static void test_segment_huge_refused(void **state)
{
	struct shg_opts o = opts_cap(16 * MIB);
	struct shg_seg *seg = NULL;
	char path[PATH_MAX], dir[PATH_MAX], *slash;
	struct statfs sf;

	(void)state;
	tu_file_path(path, sizeof(path), "hugeno");
	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	*slash = '\0';
	assert_int_equal(statfs(dir, &sf), 0);
	if (sf.f_type == 0x01021994 || sf.f_type == 0x958458f6) {
		print_message("skipped: %s is tmpfs or hugetlbfs (the "
			      "namespace test covers a refusing ramfs)\n",
			      dir);
		skip();
	}
	o.flags = SHG_OPEN_HUGE;
	assert_int_equal(shg_seg_create(path, &o, &seg), SHG_ENOHUGE);
	assert_null(seg);
	assert_int_equal(access(path, F_OK), -1);
	/* Open: a plain segment there cannot be opened with huge pages. */
	o.flags = 0;
	tu_ok(shg_seg_create(path, &o, &seg));
	shg_seg_close(seg);
	assert_int_equal(open_rc(path, SHG_OPEN_HUGE), SHG_ENOHUGE);
	assert_int_equal(open_rc(path, 0), 0);
	unlink(path);
}

/*
 * hugetlbfs in a private mount namespace: the capacity is whole huge
 * pages and backing comes from the pool, so an empty pool (the default)
 * gives -ENOSPC at create, never SIGBUS.
 */
static long hugetlb_free_pages(void)
{
	char line[128];
	long n = -1;
	FILE *f = fopen("/proc/meminfo", "r");

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "HugePages_Free: %ld", &n) == 1)
			break;
	if (f)
		fclose(f);
	return n;
}

static int hugetlbfs_child(void *arg)
{
	struct shg_huge_info hi = { .size = sizeof(hi) };
	struct shg_opts o = opts_cap(5 * MIB);
	struct shg_seg *seg = NULL;
	const char *dir = arg;
	char path[PATH_MAX];
	long pages = hugetlb_free_pages();
	int err;

	if (unshare(CLONE_NEWNS) != 0 ||
	    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
	    huge_mount(dir, "hugetlbfs", "mode=0700,pagesize=2M"))
		return HUGE_SKIP;
	snprintf(path, sizeof(path), "%s/seg", dir);
	err = shg_seg_create(path, &o, &seg);
	if (pages < 4) {
		/* Not enough pool pages for the metadata and a span. */
		if (err != -ENOSPC || seg || access(path, F_OK) == 0)
			return 1;
		umount(dir);
		return 0;
	}
	if (err != 0 || shg_seg_capacity(seg) != 6 * MIB)
		return 2;
	if (shg_seg_huge(seg, &hi) != 0 || hi.backing != SHG_HUGE_HUGETLBFS ||
	    hi.page_size != 2 * MIB || hi.huge_bytes == 0)
		return 3;
	shg_seg_close(seg);
	unlink(path);
	umount(dir);
	return 0;
}

static void test_segment_huge_hugetlbfs(void **state)
{
	char dir[PATH_MAX];
	int rc;

	(void)state;
	tu_file_path(dir, sizeof(dir), "hugetlb");
	assert_int_equal(mkdir(dir, 0700), 0);
	rc = tu_wait(tu_fork(hugetlbfs_child, dir));
	rmdir(dir);
	if (rc == HUGE_SKIP) {
		print_message("skipped: cannot mount hugetlbfs in a private "
			      "mount namespace (needs root, 2 MiB pages)\n");
		skip();
	}
	print_message("hugetlbfs with %ld free pool pages\n",
		      hugetlb_free_pages());
	assert_int_equal(rc, 0);
}

/* -------------------------------------------------------------------------
 * Robust mutexes.
 */
static int repairs;

static void count_repair(struct shg_seg *seg)
{
	(void)seg;
	repairs++;
}

static int child_lock_and_die(void *arg)
{
	struct shg_seg *seg = arg;

	if (shg__lock(seg, &seg->hdr->limbo_lock, NULL) != 0)
		return 1;
	return 0; /* exits holding the lock */
}

static void test_segment_robust_mutex(void **state)
{
	char name[64];
	struct shg_seg *seg = tu_create(name, 8 * MIB);

	(void)state;
	repairs = 0;
	tu_ok(shg__lock(seg, &seg->hdr->limbo_lock, count_repair));
	shg__unlock(seg, &seg->hdr->limbo_lock);
	assert_int_equal(repairs, 0);
	assert_int_equal(tu_wait(tu_fork(child_lock_and_die, seg)), 0);
	tu_ok(shg__lock(seg, &seg->hdr->limbo_lock, count_repair));
	assert_int_equal(repairs, 1);
	shg__unlock(seg, &seg->hdr->limbo_lock);
	tu_ok(shg__lock(seg, &seg->hdr->limbo_lock, count_repair));
	assert_int_equal(repairs, 1);
	shg__unlock(seg, &seg->hdr->limbo_lock);
	tu_destroy(seg, name);
}

/* -------------------------------------------------------------------------
 * Platform.
 */
static int pipe_fd[2];
static int lock_fd = -1;

static int child_hold_lock(void *arg)
{
	int fd = open((const char *)arg, O_RDWR | O_CLOEXEC);
	char c = 1;

	if (fd < 0 || shg__ofd_trylock(fd, SHG_LIVE_LOCK_BASE + 3) != 0)
		return 1;
	if (write(pipe_fd[1], &c, 1) != 1)
		return 1;
	pause();
	return 0;
}

/* Tokens are random and unique; liveness is an OFD lock the kernel drops
 * at death (before the process is reaped). */
static void test_segment_tokens(void **state)
{
	uint64_t a = shg__new_token(), b = shg__new_token();
	char path[128], c;
	pid_t pid;
	int fd2, st;

	(void)state;
	assert_true(a != 0 && a != SHG_TOKEN_MIXED);
	assert_true(a != b);
	tu_file_path(path, sizeof(path), "ofd");
	lock_fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	assert_true(lock_fd >= 0);
	fd2 = open(path, O_RDWR | O_CLOEXEC);
	assert_true(fd2 >= 0);
	/* Our own lock is invisible through our description, visible
	 * through another one, and excludes it. */
	assert_int_equal(shg__ofd_probe(lock_fd, SHG_LIVE_LOCK_BASE), 0);
	tu_ok(shg__ofd_trylock(lock_fd, SHG_LIVE_LOCK_BASE));
	assert_int_equal(shg__ofd_probe(lock_fd, SHG_LIVE_LOCK_BASE), 0);
	assert_int_equal(shg__ofd_probe(fd2, SHG_LIVE_LOCK_BASE), 1);
	assert_int_equal(shg__ofd_trylock(fd2, SHG_LIVE_LOCK_BASE), -EAGAIN);
	tu_ok(shg__ofd_unlock(lock_fd, SHG_LIVE_LOCK_BASE));
	assert_int_equal(shg__ofd_probe(fd2, SHG_LIVE_LOCK_BASE), 0);
	/* An error is an error, not "free". */
	assert_int_equal(shg__ofd_probe(-1, SHG_LIVE_LOCK_BASE), -EBADF);

	assert_int_equal(pipe(pipe_fd), 0);
	pid = tu_fork(child_hold_lock, path);
	assert_int_equal(read(pipe_fd[0], &c, 1), 1);
	assert_int_equal(shg__ofd_probe(lock_fd, SHG_LIVE_LOCK_BASE + 3), 1);
	kill(pid, SIGKILL);
	/* Dead but not reaped (a zombie): its lock is gone. */
	assert_int_equal(waitid(P_PID, pid, NULL, WEXITED | WNOWAIT), 0);
	assert_int_equal(shg__ofd_probe(lock_fd, SHG_LIVE_LOCK_BASE + 3), 0);
	waitpid(pid, &st, 0);
	close(pipe_fd[0]);
	close(pipe_fd[1]);
	close(fd2);
	close(lock_fd);
	unlink(path);
}

static void test_segment_platform_misc(void **state)
{
	uint8_t id[16], zero[16] = { 0 }, r1[32], r2[32];
	uint64_t a, b;

	(void)state;
	tu_ok(shg__boot_id(id));
	assert_memory_not_equal(id, zero, 16);
	a = shg__now_ns();
	b = shg__now_ns();
	assert_true(b >= a);
	assert_true(shg__realtime_ns() > 1500000000ull * 1000000000ull);
	assert_int_equal(shg__gettid(), getpid()); /* main thread */
	shg__random_bytes(r1, sizeof(r1));
	shg__random_bytes(r2, sizeof(r2));
	assert_memory_not_equal(r1, r2, sizeof(r1));
	assert_int_not_equal(shg__layout_hash(2), 0);
	assert_int_equal(shg__layout_hash(2), shg__layout_hash(2));
	assert_int_not_equal(shg__layout_hash(2), shg__layout_hash(3));
	if (shg__membarrier_supported()) {
		tu_ok(shg__membarrier_register());
		tu_ok(shg__membarrier());
	}
}

static void test_segment_numa(void **state)
{
	unsigned real, i;
	char buf[4096] __attribute__((aligned(4096)));

	(void)state;
	unsetenv("SHG_NUMA_SIM");
	real = shg__numa_nodes();
	assert_true(real >= 1 && real <= SHG_MAX_NODES);
	assert_false(shg__numa_simulated());
	assert_true(shg__numa_node_self() < real);
	setenv("SHG_NUMA_SIM", "4", 1);
	assert_int_equal(shg__numa_nodes(), 4);
	assert_true(shg__numa_simulated());
	for (i = 0; i < 8; i++)
		assert_true(shg__numa_node_self() < 4);
	tu_ok(shg__numa_place(buf, sizeof(buf), SHG_NUMA_BIND, 3));
	tu_ok(shg__numa_place(buf, sizeof(buf), SHG_NUMA_INTERLEAVE, 0));
	setenv("SHG_NUMA_SIM", "99", 1); /* out of range: ignored */
	assert_int_equal(shg__numa_nodes(), real);
	unsetenv("SHG_NUMA_SIM");
	if (real == 1)
		tu_ok(shg__numa_place(buf, sizeof(buf), SHG_NUMA_LOCAL, 0));
}

/* -------------------------------------------------------------------------
 * shg_strerror.
 */
static void test_segment_strerror(void **state)
{
	const char *msgs[SHG_EMAGIC - SHG_ELAST + 1];
	int i, j;

	(void)state;
	for (i = SHG_EMAGIC; i >= SHG_ELAST; i--) {
		const char *s = shg_strerror(i);

		assert_non_null(s);
		assert_string_not_equal(s, "unknown error");
		msgs[SHG_EMAGIC - i] = s;
		for (j = 0; j < SHG_EMAGIC - i; j++)
			assert_string_not_equal(msgs[j], s);
	}
	assert_string_equal(shg_strerror(0), "success");
	assert_string_equal(shg_strerror(-ENOMEM), strerror(ENOMEM));
	assert_string_equal(shg_strerror(-ENOSPC), strerror(ENOSPC));
	assert_string_equal(shg_strerror(SHG_ELAST - 1), "unknown error");
	assert_string_equal(shg_strerror(12345), "unknown error");
	assert_string_equal(shg_strerror(INT_MIN), "unknown error");
	assert_string_equal(shg_strerror(-4000), "unknown error");
}

static void test_segment_close_null(void **state)
{
	(void)state;
	assert_int_equal(shg_seg_close(NULL), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_segment_create_open_fork),
		cmocka_unit_test(test_segment_create_twice),
		cmocka_unit_test(test_segment_open_missing),
		cmocka_unit_test(test_segment_exact_mode),
		cmocka_unit_test(test_segment_file_path),
		cmocka_unit_test(test_segment_symlink),
		cmocka_unit_test(test_segment_not_regular),
		cmocka_unit_test(test_segment_group_writable),
		cmocka_unit_test(test_segment_other_writable),
		cmocka_unit_test(test_segment_hard_link),
		cmocka_unit_test(test_segment_wrong_owner),
		cmocka_unit_test(test_segment_too_small),
		cmocka_unit_test(test_segment_bad_magic),
		cmocka_unit_test(test_segment_newer_version),
		cmocka_unit_test(test_segment_layout_mismatch),
		cmocka_unit_test(test_segment_truncated),
		cmocka_unit_test(test_segment_corrupt_regions),
		cmocka_unit_test(test_segment_corrupt_geometry),
		cmocka_unit_test(test_segment_bad_names),
		cmocka_unit_test(test_segment_bad_opts),
		cmocka_unit_test(test_segment_short_opts),
		cmocka_unit_test(test_segment_flavor),
		cmocka_unit_test(test_segment_ptr_checks),
		cmocka_unit_test(test_segment_ensure_backed),
		cmocka_unit_test(test_segment_concurrent_growth),
		cmocka_unit_test(test_segment_enospc),
		cmocka_unit_test(test_segment_huge_tmpfs),
		cmocka_unit_test(test_segment_huge_shm_name),
		cmocka_unit_test(test_segment_huge_refused),
		cmocka_unit_test(test_segment_huge_hugetlbfs),
		cmocka_unit_test(test_segment_robust_mutex),
		cmocka_unit_test(test_segment_tokens),
		cmocka_unit_test(test_segment_platform_misc),
		cmocka_unit_test(test_segment_numa),
		cmocka_unit_test(test_segment_strerror),
		cmocka_unit_test(test_segment_close_null),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
