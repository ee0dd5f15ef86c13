/* SPDX-License-Identifier: MIT */
/*
 * Segments: create, open (validating everything before trusting it), map,
 * close and unlink; heap backing growth; bounds-checked offsets; robust
 * process-shared mutexes; and the layout hash that ties a segment to the
 * struct layout of the build that created it.
 *
 * Creation writes the magic last, after a release fence, so a creator that
 * dies half-way leaves a file that open rejects (SHG_EMAGIC or
 * SHG_ETOOSMALL) instead of a half-initialised segment.
 *
 * Opening reads the header with pread() into a local copy, validates the
 * file and every header field against the file, and only then maps the
 * segment. The process handle is filled from the validated copy; later
 * code takes bounds from the handle, never from the shared header.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

#define DEFAULT_CAPACITY (1ull << 30)
#define DEFAULT_MODE 0600u
#define DEFAULT_PROCS 256u
#define DEFAULT_THREADS 1024u
#define DEFAULT_ROOTS 1024u
#define MIN_HOLDS 1024u
#define MAX_HOLDS ((uint64_t)SHG_MAX_HOLDS)
#define MIN_SPANS 4u
#define GROW_STEP (2ull << 20) /* heap backing grows in 2 MiB steps */
#define KNOWN_FLAGS (SHG_OPEN_ALLOW_GROUP | SHG_OPEN_NO_RECOVER | SHG_OPEN_HUGE)

static inline uint64_t align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) & ~(a - 1);
}

/* -------------------------------------------------------------------------
 * Names: "/name" is a POSIX shm object, anything else a file path.
 */
static int classify_name(const char *name, bool *is_shm)
{
	size_t len;

	if (!name || !*name)
		return -EINVAL;
	len = strlen(name);
	if (name[0] == '/' && !strchr(name + 1, '/')) {
		*is_shm = true;
		if (len == 1)
			return -EINVAL;
		if (len - 1 > NAME_MAX)
			return -ENAMETOOLONG;
		return 0;
	}
	*is_shm = false;
	if (len >= PATH_MAX)
		return -ENAMETOOLONG;
	return 0;
}

static int open_name(const char *name, bool is_shm, int flags, mode_t mode)
{
	int fd;

	if (is_shm)
		fd = shm_open(name, flags, mode);
	else
		fd = open(name, flags, mode);
	return fd < 0 ? -errno : fd;
}

static int unlink_name(const char *name, bool is_shm)
{
	int r = is_shm ? shm_unlink(name) : unlink(name);

	return r < 0 ? -errno : 0;
}

/* -------------------------------------------------------------------------
 * Options and geometry.
 */

/* Copy the caller's options (which may be an older, shorter struct). */
static int opts_load(const struct shg_opts *in, struct shg_opts *o)
{
	memset(o, 0, sizeof(*o));
	if (!in)
		return 0;
	if (in->size < offsetof(struct shg_opts, flavor))
		return -EINVAL;
	memcpy(o, in,
	       in->size < sizeof(*o) ? in->size : sizeof(struct shg_opts));
	o->size = sizeof(*o);
	if (o->flags & ~KNOWN_FLAGS)
		return -EINVAL;
	return 0;
}

static int pick_flavor(int32_t req, enum shg_flavor *out)
{
	switch (req) {
	case SHG_FLAVOR_AUTO:
		*out = shg__membarrier_supported() ? SHG_FLAVOR_MEMBARRIER :
						     SHG_FLAVOR_FENCE;
		return 0;
	case SHG_FLAVOR_FENCE:
		*out = SHG_FLAVOR_FENCE;
		return 0;
	case SHG_FLAVOR_MEMBARRIER:
		if (!shg__membarrier_supported())
			return -ENOTSUP;
		*out = SHG_FLAVOR_MEMBARRIER;
		return 0;
	default:
		return -EINVAL;
	}
}

/*
 * Lay the regions out after the header in the documented order, each
 * 64-byte aligned, the heap SHG_SPAN_SIZE aligned. The span table is sized
 * for the spans that would fit without it; the heap then holds at most as
 * many, so the table always covers it.
 */
static int layout_compute(struct shg_hdr *h, uint64_t cap)
{
	uint64_t off = SHG_HDR_SIZE, n0;

	h->procs_off = off;
	off = align_up(off + (uint64_t)h->max_procs * sizeof(struct shg_pslot),
		       SHG_CACHE_LINE);
	h->threads_off = off;
	off = align_up(off + (uint64_t)h->max_threads *
				       sizeof(struct shg_tslot),
		       SHG_CACHE_LINE);
	h->roots_off = off;
	off = align_up(off + (uint64_t)h->max_roots * sizeof(struct shg_rslot),
		       SHG_CACHE_LINE);
	h->holds_off = off;
	off = align_up(off + (uint64_t)h->max_holds * sizeof(struct shg_hold),
		       SHG_CACHE_LINE);
	h->arenas_off = off;
	off = align_up(off + SHG_MAX_NODES * sizeof(struct shg_arena),
		       SHG_CACHE_LINE);
	h->spans_off = off;
	if (off >= cap)
		return -EINVAL;
	n0 = (cap - off) / SHG_SPAN_SIZE;
	h->heap_off =
		align_up(off + n0 * sizeof(struct shg_span), SHG_SPAN_SIZE);
	if (h->heap_off >= cap ||
	    (cap - h->heap_off) / SHG_SPAN_SIZE < MIN_SPANS)
		return -EINVAL;
	h->nspans = (uint32_t)((cap - h->heap_off) / SHG_SPAN_SIZE);
	return 0;
}

/* Geometry and policy of a new segment from the options, into @h. */
static int create_geometry(const struct shg_opts *o, struct shg_hdr *h)
{
	uint64_t cap = o->capacity ? o->capacity : DEFAULT_CAPACITY;
	unsigned nodes = shg__numa_nodes();

	if (cap > SHG_MAX_CAPACITY)
		return -EINVAL;
	cap = align_up(cap, SHG_SPAN_SIZE);
	if (cap < SHG_MIN_CAPACITY || cap > SHG_MAX_CAPACITY)
		return -EINVAL;
	if (o->mode > 0777)
		return -EINVAL;
	h->max_procs = o->max_procs ? o->max_procs : DEFAULT_PROCS;
	h->max_threads = o->max_threads ? o->max_threads : DEFAULT_THREADS;
	h->max_roots = o->max_roots ? o->max_roots : DEFAULT_ROOTS;
	if (h->max_procs > SHG_MAX_PROCS || h->max_threads > SHG_MAX_THREADS ||
	    h->max_roots > SHG_MAX_ROOTS)
		return -EINVAL;
	h->max_holds = 4 * h->max_roots;
	if (h->max_holds < MIN_HOLDS)
		h->max_holds = MIN_HOLDS;
	if (o->numa_policy < SHG_NUMA_LOCAL || o->numa_policy > SHG_NUMA_BIND)
		return -EINVAL;
	if (o->numa_policy == SHG_NUMA_BIND &&
	    (o->numa_node < 0 || (unsigned)o->numa_node >= nodes))
		return -EINVAL;
	h->nodes = nodes;
	h->numa_policy = o->numa_policy;
	h->numa_node = o->numa_node;
	h->capacity = cap;
	h->retire_budget = o->retire_budget ? o->retire_budget : cap / 8;
	return layout_compute(h, cap);
}

/* -------------------------------------------------------------------------
 * Validation of an existing segment (file, then header copy).
 */
static int validate_file(int fd, uint32_t flags, struct stat *st)
{
	if (fstat(fd, st) < 0)
		return -errno;
	if (!S_ISREG(st->st_mode))
		return SHG_ENOTREG;
	if (st->st_uid != geteuid())
		return SHG_EOWNER;
	if (st->st_mode & S_IWOTH)
		return SHG_EMODE;
	if ((st->st_mode & S_IWGRP) && !(flags & SHG_OPEN_ALLOW_GROUP))
		return SHG_EMODE;
	if (st->st_nlink != 1)
		return SHG_ENLINK;
	if (st->st_size < (off_t)SHG_HDR_SIZE)
		return SHG_ETOOSMALL;
	return 0;
}

/* Region [off, off + bytes) in order after *@end, 64-byte aligned, below
 * @limit. Written to survive any 64-bit garbage without overflow. */
static bool region_ok(uint64_t off, uint64_t bytes, uint64_t *end,
		      uint64_t limit)
{
	if (off % SHG_CACHE_LINE || off < *end || off > limit ||
	    bytes > limit - off)
		return false;
	*end = off + bytes;
	return true;
}

static int validate_regions(const struct shg_hdr *h)
{
	uint64_t cap = h->capacity, heap = h->heap_off, end = SHG_HDR_SIZE;

	if (h->max_procs < 1 || h->max_procs > SHG_MAX_PROCS ||
	    h->max_threads < 1 || h->max_threads > SHG_MAX_THREADS ||
	    h->max_roots < 1 || h->max_roots > SHG_MAX_ROOTS ||
	    h->max_holds < 1 || h->max_holds > MAX_HOLDS || h->nodes < 1 ||
	    h->nodes > SHG_MAX_NODES)
		return SHG_CORRUPT();
	if (heap % SHG_SPAN_SIZE || heap < SHG_HDR_SIZE || heap >= cap)
		return SHG_CORRUPT();
	if (h->nspans != (cap - heap) / SHG_SPAN_SIZE || h->nspans < MIN_SPANS)
		return SHG_CORRUPT();
	if (!region_ok(h->procs_off,
		       (uint64_t)h->max_procs * sizeof(struct shg_pslot), &end,
		       heap) ||
	    !region_ok(h->threads_off,
		       (uint64_t)h->max_threads * sizeof(struct shg_tslot),
		       &end, heap) ||
	    !region_ok(h->roots_off,
		       (uint64_t)h->max_roots * sizeof(struct shg_rslot), &end,
		       heap) ||
	    !region_ok(h->holds_off,
		       (uint64_t)h->max_holds * sizeof(struct shg_hold), &end,
		       heap) ||
	    !region_ok(h->arenas_off, SHG_MAX_NODES * sizeof(struct shg_arena),
		       &end, heap) ||
	    !region_ok(h->spans_off,
		       (uint64_t)h->nspans * sizeof(struct shg_span), &end,
		       heap))
		return SHG_CORRUPT();
	return 0;
}

/* Header copy @h of a file of @fsize bytes; returns 0 or an SHG_E* code. */
static int validate_hdr(const struct shg_hdr *h, uint64_t fsize,
			uint64_t layout_hash)
{
	uint64_t cap = h->capacity, backed, top;
	int err;

	if (memcmp(h->magic, SHG_MAGIC, sizeof(h->magic)) != 0)
		return SHG_EMAGIC;
	if (h->version != SHG_FORMAT_VERSION)
		return SHG_EVERSION;
	if (h->hdr_size != SHG_HDR_SIZE || h->layout_hash != layout_hash)
		return SHG_ELAYOUT;
	if (cap < SHG_MIN_CAPACITY || cap > SHG_MAX_CAPACITY ||
	    cap % SHG_SPAN_SIZE)
		return SHG_CORRUPT();
	err = validate_regions(h);
	if (err)
		return err;
	if (h->numa_policy < SHG_NUMA_LOCAL || h->numa_policy > SHG_NUMA_BIND)
		return SHG_CORRUPT();
	if (h->numa_policy == SHG_NUMA_BIND &&
	    (h->numa_node < 0 || (uint32_t)h->numa_node >= h->nodes))
		return SHG_CORRUPT();
	if (atomic_load_explicit(&h->epoch, memory_order_relaxed) == 0)
		return SHG_CORRUPT();
	backed = atomic_load_explicit(&h->backed, memory_order_relaxed);
	top = atomic_load_explicit(&h->heap_top, memory_order_relaxed);
	if (backed > cap)
		return SHG_CORRUPT();
	if (fsize < h->heap_off || backed > fsize || backed < h->heap_off)
		return SHG_ETRUNC;
	/* Spans are carved only after their bytes were backed. */
	if (top % SHG_SPAN_SIZE || top > backed - h->heap_off)
		return SHG_CORRUPT();
	return 0;
}

/* -------------------------------------------------------------------------
 * The process handle.
 */
static struct shg_seg *handle_new(const char *name, bool is_shm,
				  const struct shg__upper_ops *ops)
{
	struct shg_seg *seg = calloc(1, sizeof(*seg));

	if (!seg)
		return NULL;
	seg->name = strdup(name);
	if (!seg->name) {
		free(seg);
		return NULL;
	}
	seg->fd = -1;
	seg->is_shm = is_shm;
	if (pthread_mutex_init(&seg->ctx_lock, NULL) != 0) {
		free(seg->name);
		free(seg);
		return NULL;
	}
	CDS_INIT_LIST_HEAD(&seg->ctxs);
	/* The upper layer's operations are in place before anything can
	 * finalize a root (slot take-over at open releases dead holders). */
	seg->ops = ops;
	seg->root_drop = ops ? ops->root_drop : NULL;
	seg->root_drop_arg = NULL;
	return seg;
}

static void handle_free(struct shg_seg *seg)
{
	shg__open_list_del(seg);
	if (seg->base)
		munmap(seg->base, seg->capacity);
	if (seg->fd >= 0)
		close(seg->fd);
	pthread_mutex_destroy(&seg->ctx_lock);
	free(seg->name);
	free(seg);
}

/* Geometry from the validated header copy @h; @seg->base is mapped. */
static void handle_fill(struct shg_seg *seg, const struct shg_hdr *h)
{
	uint8_t *b = seg->base;

	seg->hdr = (struct shg_hdr *)b;
	seg->capacity = h->capacity;
	seg->max_procs = h->max_procs;
	seg->max_threads = h->max_threads;
	seg->max_roots = h->max_roots;
	seg->max_holds = h->max_holds;
	seg->nspans = h->nspans;
	seg->nodes = h->nodes;
	seg->heap_off = h->heap_off;
	seg->procs = (struct shg_pslot *)(b + h->procs_off);
	seg->threads = (struct shg_tslot *)(b + h->threads_off);
	seg->roots = (struct shg_rslot *)(b + h->roots_off);
	seg->holds = (struct shg_hold *)(b + h->holds_off);
	seg->arenas = (struct shg_arena *)(b + h->arenas_off);
	seg->spans = (struct shg_span *)(b + h->spans_off);
}

/* -------------------------------------------------------------------------
 * Huge pages (include/shmgraph/segment.h, "Huge pages").
 */

/*
 * Alignment of the mapping's address. Always at least 2 MiB (the x86-64
 * PMD size; costs one more mmap and munmap): huge pages of the file, made
 * by the mount or by another process's collapse, can then be mapped whole
 * in every process, whether or not it asked for huge pages.
 */
static uint64_t huge_align(const struct shg_seg *seg)
{
	if (seg->huge.kind != SHG_HUGE_NONE && seg->huge.page_size > GROW_STEP)
		return seg->huge.page_size;
	return GROW_STEP;
}

/*
 * Probe the file system of the open file. Every opener learns whether it
 * is hugetlbfs (which needs aligned lengths and MAP_NORESERVE); tmpfs
 * mount options are read only when huge pages are asked for: by @flags
 * (SHG_OPEN_HUGE: refused with SHG_ENOHUGE where the host gives none) or
 * by the segment's creator (@inherit, hdr.create_flags: followed where
 * the host allows it, silently not elsewhere), so that every process that
 * grows the heap of such a segment collapses what it backs.
 */
static int huge_setup(struct shg_seg *seg, uint32_t flags, bool inherit)
{
	bool asked = (flags & SHG_OPEN_HUGE) != 0;
	int err;

	seg->huge_req = asked || inherit;
	err = shg__huge_probe(seg->fd, seg->huge_req, &seg->huge);
	if (err)
		return err;
	if (seg->huge.kind != SHG_HUGE_NONE &&
	    (seg->huge.page_size < SHG_SPAN_SIZE ||
	     seg->huge.page_size & (seg->huge.page_size - 1)))
		seg->huge.kind = SHG_HUGE_NONE; /* not a size we can align */
	if (seg->huge_req && seg->huge.kind == SHG_HUGE_NONE) {
		if (asked)
			return SHG_ENOHUGE;
		seg->huge_req = false;
	}
	return 0;
}

/*
 * Collapse segment bytes [from, to) into huge pages, rounded inward to
 * whole huge pages (a partial one is collapsed once backing covers it).
 * Best effort: the kernel fails the call (EAGAIN, ENOMEM) when it finds no
 * free huge page or a page busy; the range then stays in small pages, which
 * shg_seg_huge() shows. Collapse preserves the contents and is safe while
 * other processes map and write the range (the kernel locks the pages).
 */
static void huge_collapse(struct shg_seg *seg, uint64_t from, uint64_t to)
{
	uint64_t ps = seg->huge.page_size;

	if (!seg->huge_req || seg->huge.kind != SHG_HUGE_COLLAPSE)
		return;
	from &= ~(ps - 1);
	to &= ~(ps - 1);
	if (to > seg->capacity)
		to = seg->capacity & ~(ps - 1);
	if (from < to)
		(void)shg__huge_collapse(seg->base + from, to - from);
}

int shg_seg_huge(struct shg_seg *seg, struct shg_huge_info *out)
{
	const volatile uint8_t *p;
	uint64_t backed, off, step;
	struct shg__huge h;
	int err;

	if (!seg || !out || out->size < sizeof(*out))
		return -EINVAL;
	h = seg->huge;
	if (!seg->huge_req) {
		err = shg__huge_probe(seg->fd, true, &h);
		if (err)
			return err;
	}
	backed = shg_seg_backed(seg);
	memset(out, 0, sizeof(*out));
	out->size = sizeof(*out);
	out->backing = h.kind;
	out->requested = seg->huge_req;
	out->page_size = h.kind != SHG_HUGE_NONE ? h.page_size : 0;
	out->backed = backed;
	memcpy(out->policy, h.policy, sizeof(out->policy));
	out->policy[sizeof(out->policy) - 1] = '\0';
	/* Map what is backed (one read per huge page: the fault maps the
	 * whole page where it is huge), so the figure does not depend on
	 * what this process happened to touch. */
	step = h.page_size ? h.page_size : GROW_STEP;
	p = seg->base;
	for (off = 0; off < backed; off += step)
		(void)p[off];
	err = shg__huge_mapped(seg->base, seg->capacity, &out->huge_bytes);
	if (err)
		return err;
	if (out->huge_bytes > backed)
		out->huge_bytes = backed;
	return 0;
}

/*
 * Map the whole capacity at an address aligned to the huge page size (file
 * offset 0 aligned, so every aligned file range can be mapped by one
 * page-table entry): reserve capacity + alignment of address space, map
 * the file over its aligned part, return the rest.
 * hugetlbfs mappings are MAP_NORESERVE: pages are taken from the pool
 * when posix_fallocate backs them (-ENOSPC then), not all at mmap.
 */
static int map_segment(struct shg_seg *seg, uint64_t cap)
{
	uint64_t al = huge_align(seg);
	int flags = MAP_SHARED;
	uint8_t *r, *a;
	void *p;

	if (seg->huge.kind == SHG_HUGE_HUGETLBFS) {
		if (cap % seg->huge.page_size)
			return SHG_ENOHUGE; /* a length hugetlbfs refuses */
		flags |= MAP_NORESERVE;
	}
	if (cap > UINT64_MAX - al)
		return -EINVAL;
	p = mmap(NULL, cap + al, PROT_NONE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return -errno;
	r = p;
	a = (uint8_t *)(((uintptr_t)r + al - 1) & ~(uintptr_t)(al - 1));
	p = mmap(a, cap, PROT_READ | PROT_WRITE, flags | MAP_FIXED, seg->fd, 0);
	if (p == MAP_FAILED) {
		int err = -errno;

		munmap(r, cap + al);
		return err;
	}
	if (a > r)
		munmap(r, (size_t)(a - r));
	if (a + cap < r + cap + al)
		munmap(a + cap, (size_t)(r + al - a));
	seg->base = a;
	seg->capacity = cap;
	/* Advisory for tmpfs (khugepaged keeps such ranges huge); errors
	 * only mean the kernel does not know the advice. */
	if (seg->huge_req && seg->huge.kind != SHG_HUGE_HUGETLBFS)
		(void)madvise(a, cap, MADV_HUGEPAGE);
	return 0;
}

/* -------------------------------------------------------------------------
 * Create.
 */

/* Fill the mapped header from the geometry in @g; the magic comes last. */
static int init_header(struct shg_seg *seg, const struct shg_hdr *g)
{
	struct shg_hdr *h = seg->hdr;
	unsigned i;
	int err;

	h->version = SHG_FORMAT_VERSION;
	h->hdr_size = SHG_HDR_SIZE;
	h->layout_hash = shg__seg_layout_hash(seg);
	h->capacity = g->capacity;
	shg__random_bytes(h->uuid, sizeof(h->uuid));
	h->created_ns = shg__realtime_ns();
	h->creator_pid = (uint32_t)getpid();
	h->creator_uid = (uint32_t)geteuid();
	h->max_procs = g->max_procs;
	h->max_threads = g->max_threads;
	h->max_roots = g->max_roots;
	h->max_holds = g->max_holds;
	h->nspans = g->nspans;
	h->nodes = g->nodes;
	h->numa_policy = g->numa_policy;
	h->numa_node = g->numa_node;
	h->procs_off = g->procs_off;
	h->threads_off = g->threads_off;
	h->roots_off = g->roots_off;
	h->holds_off = g->holds_off;
	h->arenas_off = g->arenas_off;
	h->spans_off = g->spans_off;
	h->heap_off = g->heap_off;
	h->retire_budget = g->retire_budget;
	h->create_flags = seg->huge_req ? SHG_HDR_F_HUGE : 0;
	(void)shg__boot_id(h->boot_id); /* zeroes on failure */
	atomic_store_explicit(&h->epoch, 1, memory_order_relaxed);
	atomic_store_explicit(&h->backed, g->heap_off, memory_order_relaxed);
	atomic_store_explicit(&h->heap_top, 0, memory_order_relaxed);
	err = shg__mutex_init(&h->limbo_lock);
	if (!err)
		err = shg__mutex_init(&h->root_lock);
	if (!err)
		err = shg__mutex_init(&h->grow_lock);
	for (i = 0; !err && i < SHG_MAX_NODES; i++)
		err = shg__mutex_init(&seg->arenas[i].lock);
	if (err)
		return err;
	/*
	 * The magic last, by a release store of its 8 bytes (offset 0, so
	 * aligned): an opener that sees the magic (through the shared page)
	 * sees a complete header, and a creator that dies before this line
	 * leaves a file that open rejects with SHG_EMAGIC.
	 */
	{
		uint64_t m;

		_Static_assert(sizeof(h->magic) == sizeof(m), "magic");
		memcpy(&m, SHG_MAGIC, sizeof(m));
		shg__st64_release((uint64_t *)(void *)h->magic, m);
	}
	return 0;
}

/* Open the new file exclusively and set its exact mode. */
static int create_file(struct shg_seg *seg, mode_t mode)
{
	int fd;

	fd = open_name(seg->name, seg->is_shm,
		       O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		       mode);
	if (fd < 0)
		return fd;
	seg->fd = fd;
	/* The umask narrowed the mode given to open; set it exactly. */
	if (fchmod(fd, mode) < 0)
		return -errno;
	return 0;
}

/*
 * The file system of the new file is known: with huge pages, round the
 * capacity up to the huge page size (hugetlbfs maps only whole pages;
 * on tmpfs the last page can then be huge too) and lay the regions out
 * again; then back the metadata, up to a huge page boundary so that
 * tmpfs huge=within_size makes that page huge as well.
 */
static int create_back(struct shg_seg *seg, struct shg_opts *o,
		       struct shg_hdr *g)
{
	uint64_t al = 0, meta = g->heap_off;
	int err;

	if (seg->huge_req || seg->huge.kind == SHG_HUGE_HUGETLBFS)
		al = huge_align(seg);
	if (al && g->capacity % al) {
		o->capacity = align_up(g->capacity, al);
		memset(g, 0, sizeof(*g));
		err = create_geometry(o, g);
		if (err)
			return err;
		meta = g->heap_off;
	}
	if (al && align_up(meta, al) <= g->capacity)
		meta = align_up(meta, al);
	do
		err = posix_fallocate(seg->fd, 0, (off_t)meta);
	while (err == EINTR);
	return -err;
}

int shg__seg_create(const char *name, const struct shg_opts *opts,
		    const struct shg__upper_ops *ops, struct shg_seg **out)
{
	struct shg_hdr *g;
	struct shg_opts o;
	struct shg_seg *seg;
	enum shg_flavor flavor;
	bool is_shm, made = false;
	int err;

	if (!out)
		return -EINVAL;
	*out = NULL;
	err = classify_name(name, &is_shm);
	if (err)
		return err;
	err = opts_load(opts, &o);
	if (err)
		return err;
	err = pick_flavor(o.flavor, &flavor);
	if (err)
		return err;
	g = calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	err = create_geometry(&o, g);
	if (err) {
		free(g);
		return err;
	}
	seg = handle_new(name, is_shm, ops);
	if (!seg) {
		free(g);
		return -ENOMEM;
	}
	err = create_file(seg, o.mode ? o.mode : DEFAULT_MODE);
	made = seg->fd >= 0;
	if (!err)
		err = huge_setup(seg, o.flags, false);
	if (!err)
		err = create_back(seg, &o, g);
	if (!err)
		err = map_segment(seg, g->capacity);
	if (!err) {
		seg->hdr = (struct shg_hdr *)seg->base;
		handle_fill(seg, g);
		err = init_header(seg, g);
	}
	if (!err && seg->huge.page_size) /* the metadata create_back backed */
		huge_collapse(seg, 0,
			      align_up(g->heap_off, seg->huge.page_size));
	free(g);
	if (!err) {
		seg->flavor = flavor;
		err = shg__proc_attach(seg, false);
	}
	if (err) {
		if (made)
			(void)unlink_name(name, is_shm);
		handle_free(seg);
		return err;
	}
	*out = seg;
	return 0;
}

/* -------------------------------------------------------------------------
 * Open.
 */

/* Read and validate the header of the open file into @h. */
static int read_header(int fd, uint32_t flags, uint64_t layout_hash,
		       struct shg_hdr *h)
{
	struct stat st;
	ssize_t n;
	size_t got = 0;
	int err;

	err = validate_file(fd, flags, &st);
	if (err)
		return err;
	while (got < sizeof(*h)) {
		n = pread(fd, (char *)h + got, sizeof(*h) - got, (off_t)got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return SHG_ETOOSMALL; /* shrunk since fstat */
		got += (size_t)n;
	}
	/*
	 * Size again, after the header: growers extend the file before they
	 * publish a larger `backed`, so the `backed` we read is covered by
	 * the size we see now (the first fstat may predate that growth).
	 */
	if (fstat(fd, &st) < 0)
		return -errno;
	return validate_hdr(h, (uint64_t)st.st_size, layout_hash);
}

static int open_file(const char *name, bool is_shm)
{
	/* O_NONBLOCK: a FIFO or device must not block before fstat says
	 * it is not a regular file. */
	int fd = open_name(name, is_shm,
			   O_RDWR | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, 0);

	if (fd == -EISDIR || fd == -ENXIO)
		return SHG_ENOTREG;
	return fd;
}

int shg__seg_open(const char *name, const struct shg_opts *opts,
		  const struct shg__upper_ops *ops, struct shg_seg **out)
{
	struct shg_hdr *h;
	struct shg_opts o = { 0 };
	struct shg_seg *seg;
	enum shg_flavor flavor;
	bool is_shm;
	int err;

	if (!out)
		return -EINVAL;
	*out = NULL;
	err = classify_name(name, &is_shm);
	if (!err)
		err = opts_load(opts, &o);
	if (!err)
		err = pick_flavor(o.flavor, &flavor);
	if (err)
		return err;
	seg = handle_new(name, is_shm, ops);
	h = calloc(1, sizeof(*h));
	if (!seg || !h) {
		free(h);
		if (seg)
			handle_free(seg);
		return -ENOMEM;
	}
	seg->fd = open_file(name, is_shm);
	err = seg->fd < 0 ? seg->fd : 0;
	if (!err)
		err = read_header(seg->fd, o.flags,
				  shg__layout_hash(ops ? ops->rules : 0), h);
	if (!err)
		err = huge_setup(seg, o.flags,
				 (h->create_flags & SHG_HDR_F_HUGE) != 0);
	if (!err)
		err = map_segment(seg, h->capacity);
	if (!err) {
		handle_fill(seg, h);
		/* Asked for huge pages: make what is already backed huge. */
		huge_collapse(seg, 0, shg_seg_backed(seg));
	}
	free(h);
	if (err) {
		handle_free(seg);
		return err;
	}
	/*
	 * A file-path segment may outlive a reboot (hdr.boot_id then names
	 * an earlier boot): every slot in it is dead (no OFD lock survives a
	 * reboot) and its lock words are reset at attach (registry.c).
	 */
	seg->flavor = flavor;
	/* Every slot taken by dead processes: take one over (otherwise
	 * nobody could ever attach again, recover included). */
	err = shg__proc_attach(seg, !(o.flags & SHG_OPEN_NO_RECOVER));
	if (err) {
		handle_free(seg);
		return err;
	}
	if (!(o.flags & SHG_OPEN_NO_RECOVER))
		(void)shg__release_dead(seg, NULL);
	*out = seg;
	return 0;
}

/* -------------------------------------------------------------------------
 * Close, unlink, accessors.
 */
int shg_seg_close(struct shg_seg *seg)
{
	if (!seg)
		return 0;
	seg->closing = true;
	shg__proc_detach(seg);
	handle_free(seg);
	return 0;
}

int shg_seg_unlink(const char *name)
{
	bool is_shm;
	int err = classify_name(name, &is_shm);

	return err ? err : unlink_name(name, is_shm);
}

uint32_t shg_seg_format(const struct shg_seg *seg)
{
	return seg->hdr->version;
}

uint64_t shg_seg_capacity(const struct shg_seg *seg)
{
	return seg->capacity;
}

uint64_t shg_seg_backed(const struct shg_seg *seg)
{
	uint64_t b =
		atomic_load_explicit(&seg->hdr->backed, memory_order_acquire);

	return b > seg->capacity ? seg->capacity : b;
}

enum shg_flavor shg_seg_flavor(const struct shg_seg *seg)
{
	return seg->flavor;
}

void *shg_ptr(struct shg_seg *seg, struct shg_off off, size_t len)
{
	if (!seg || !shg__off_ok(seg, off.v, len, 8))
		return NULL;
	return shg__at(seg, off.v);
}

struct shg_off shg_off_of(struct shg_seg *seg, const void *p)
{
	uintptr_t a = (uintptr_t)p, b;

	if (!seg || !p)
		return SHG_OFF_NULL;
	b = (uintptr_t)seg->base;
	if (a < b + seg->heap_off || a - b >= seg->capacity)
		return SHG_OFF_NULL;
	return (struct shg_off){ (uint64_t)(a - b) };
}

/* -------------------------------------------------------------------------
 * Layout hash: FNV-1a over the sizes, alignments and key offsets of every
 * shared struct and the constants that shape the segment.
 */
#define L_SZ(t) sizeof(struct t), alignof(struct t)
#define L_OF(t, f) offsetof(struct t, f)

static const uint64_t layout_facts[] = {
	1, /* byte order marker folded in below */
	L_SZ(shg_hdr),
	L_OF(shg_hdr, magic),
	L_OF(shg_hdr, version),
	L_OF(shg_hdr, hdr_size),
	L_OF(shg_hdr, layout_hash),
	L_OF(shg_hdr, capacity),
	L_OF(shg_hdr, uuid),
	L_OF(shg_hdr, created_ns),
	L_OF(shg_hdr, creator_pid),
	L_OF(shg_hdr, creator_uid),
	L_OF(shg_hdr, max_procs),
	L_OF(shg_hdr, max_threads),
	L_OF(shg_hdr, max_roots),
	L_OF(shg_hdr, max_holds),
	L_OF(shg_hdr, nspans),
	L_OF(shg_hdr, nodes),
	L_OF(shg_hdr, numa_policy),
	L_OF(shg_hdr, numa_node),
	L_OF(shg_hdr, procs_off),
	L_OF(shg_hdr, threads_off),
	L_OF(shg_hdr, roots_off),
	L_OF(shg_hdr, holds_off),
	L_OF(shg_hdr, arenas_off),
	L_OF(shg_hdr, spans_off),
	L_OF(shg_hdr, heap_off),
	L_OF(shg_hdr, retire_budget),
	L_OF(shg_hdr, boot_id),
	L_OF(shg_hdr, epoch),
	L_OF(shg_hdr, backed),
	L_OF(shg_hdr, heap_top),
	L_OF(shg_hdr, asym_procs),
	L_OF(shg_hdr, retired_bytes),
	L_OF(shg_hdr, reclaimed_bytes),
	L_OF(shg_hdr, reclaimed_blocks),
	L_OF(shg_hdr, limbo_head),
	L_OF(shg_hdr, limbo_tail),
	L_OF(shg_hdr, commits),
	L_OF(shg_hdr, next_graph),
	L_OF(shg_hdr, ext),
	L_OF(shg_hdr, limbo_lock),
	L_OF(shg_hdr, root_lock),
	L_OF(shg_hdr, grow_lock),
	L_SZ(shg_pslot),
	L_OF(shg_pslot, token),
	L_OF(shg_pslot, recover_lock),
	L_OF(shg_pslot, pid),
	L_OF(shg_pslot, flavor),
	L_OF(shg_pslot, attached_ns),
	L_OF(shg_pslot, nthreads),
	L_OF(shg_pslot, uid),
	L_OF(shg_pslot, locks),
	L_OF(shg_pslot, pidns),
	SHG_LIVE_LOCK_BASE,
	L_SZ(shg_tslot),
	L_OF(shg_tslot, epoch),
	L_OF(shg_tslot, owner),
	L_OF(shg_tslot, proc),
	L_OF(shg_tslot, tid),
	L_OF(shg_tslot, limbo_open),
	L_OF(shg_tslot, reclaiming),
	L_OF(shg_tslot, registered_ns),
	L_OF(shg_tslot, node),
	L_OF(shg_tslot, blocked_since_ns),
	L_OF(shg_tslot, blocked_bytes),
	L_OF(shg_tslot, recover_lock),
	L_SZ(shg_rslot),
	L_OF(shg_rslot, value),
	L_OF(shg_rslot, gen),
	L_OF(shg_rslot, last_publish_ns),
	L_OF(shg_rslot, name),
	L_OF(shg_rslot, state),
	L_OF(shg_rslot, holds),
	L_OF(shg_rslot, incarnation),
	L_OF(shg_rslot, created_ns),
	L_OF(shg_rslot, refs),
	L_OF(shg_rslot, graph),
	L_OF(shg_rslot, next_seq),
	L_SZ(shg_hold),
	L_OF(shg_hold, proc1),
	L_OF(shg_hold, root),
	L_OF(shg_hold, count),
	L_OF(shg_hold, incarnation),
	L_SZ(shg_span),
	L_OF(shg_span, word),
	L_OF(shg_span, owner),
	L_OF(shg_span, head),
	L_OF(shg_span, next),
	L_OF(shg_span, prev),
	L_OF(shg_span, bump),
	L_OF(shg_span, used),
	L_OF(shg_span, free_head),
	L_OF(shg_span, remote_head),
	L_OF(shg_span, large_bytes),
	L_OF(shg_span, owner_token),
	L_OF(shg_hdr, sweep_lock),
	L_OF(shg_hdr, held_head),
	L_OF(shg_hdr, held_bytes),
	L_OF(shg_hdr, held_gen),
	L_SZ(shg_retired),
	L_OF(shg_retired, death),
	L_OF(shg_held_batch, death),
	L_OF(shg_held_batch, off),
	SHG_HELD_CAP,
	L_SZ(shg_arena),
	L_OF(shg_arena, lock),
	L_OF(shg_arena, bins),
	L_OF(shg_arena, abandoned),
	L_OF(shg_arena, span_bytes),
	L_SZ(shg_batch),
	L_OF(shg_batch, next),
	L_OF(shg_batch, tag),
	L_OF(shg_batch, count),
	L_OF(shg_batch, cap),
	L_OF(shg_batch, bytes),
	L_OF(shg_batch, ent),
	sizeof(pthread_mutex_t),
	alignof(pthread_mutex_t),
	SHG_HDR_SIZE,
	SHG_SPAN_SIZE,
	SHG_SPAN_BINS,
	SHG_SMALL_MAX,
	SHG_NUM_CLASSES,
	SHG_MAX_NODES,
	SHG_BATCH_BYTES,
	SHG_FORMAT_VERSION,
	/* then the upper layer's rules (shg__upper_ops.rules) */
};

static _Atomic uint64_t layout_hash_cache;

static uint64_t fnv_u64(uint64_t h, uint64_t v)
{
	size_t j;

	for (j = 0; j < 8; j++) {
		h ^= (v >> (8 * j)) & 0xff;
		h *= 0x100000001b3ull;
	}
	return h;
}

uint64_t shg__seg_layout_hash(const struct shg_seg *seg)
{
	return shg__layout_hash(seg->ops ? seg->ops->rules : 0);
}

uint64_t shg__layout_hash(uint32_t upper_rules)
{
	uint64_t h =
		atomic_load_explicit(&layout_hash_cache, memory_order_relaxed);
	const uint16_t order = 0x0102;
	size_t i;

	if (!h) {
		/* Benign race: every thread computes the same value. */
		h = 0xcbf29ce484222325ull;
		for (i = 0; i < sizeof(layout_facts) / sizeof(layout_facts[0]);
		     i++) {
			uint64_t v = layout_facts[i];

			if (i == 0)
				v = *(const uint8_t
					      *)&order; /* 1 big, 2 little */
			h = fnv_u64(h, v);
		}
		atomic_store_explicit(&layout_hash_cache, h,
				      memory_order_relaxed);
	}
	h = fnv_u64(h, upper_rules);
	return h ? h : 1;
}

/* -------------------------------------------------------------------------
 * Heap backing.
 */
int shg__ensure_backed(struct shg_seg *seg, uint64_t heap_bytes)
{
	uint64_t cap = seg->capacity, need, cur, target;
	int err;

	if (heap_bytes > cap - seg->heap_off)
		return SHG_ECAPACITY;
	need = seg->heap_off + heap_bytes;
	cur = atomic_load_explicit(&seg->hdr->backed, memory_order_acquire);
	if (need <= cur && cur <= cap)
		return 0;
	target = align_up(need, GROW_STEP);
	if (target > cap)
		target = cap;
	/* A garbage value (below the metadata or past capacity): back from
	 * the heap start; fallocate of already backed bytes is a no-op. */
	if (cur < seg->heap_off || cur > cap)
		cur = seg->heap_off;
	/*
	 * Grow the file first, publish `backed` second: an offset validated
	 * against `backed` (acquire) therefore never lies beyond EOF, so no
	 * access faults with SIGBUS. posix_fallocate is idempotent, so
	 * growers in several processes may overlap; it returns the error
	 * number itself (not -1 and errno).
	 */
	do
		err = posix_fallocate(seg->fd, (off_t)cur,
				      (off_t)(target - cur));
	while (err == EINTR);
	if (err)
		return -err;
	/* Before publishing, while no other thread uses the new range. */
	huge_collapse(seg, cur, target);
	/* Monotonic max; release pairs with the acquire in shg__off_ok. */
	cur = atomic_load_explicit(&seg->hdr->backed, memory_order_relaxed);
	while (cur < target &&
	       !atomic_compare_exchange_weak_explicit(
		       &seg->hdr->backed, &cur, target, memory_order_release,
		       memory_order_relaxed))
		;
	return 0;
}
