/* SPDX-License-Identifier: MIT */
/*
 * Helpers of the fuzz targets: the compact segment image format (encode a
 * real segment file, decode an input into a scratch file), its
 * structure-aware mutator, scratch paths and result checks. See fuzz.h.
 *
 * Two fix-ups are applied to every decoded image, and they bound what the
 * segment fuzzer claims:
 *
 *  - The layout hash is stamped with this build's, so the committed corpus
 *    keeps reaching past the header when a struct layout changes (a wrong
 *    hash is a plain equality test, covered by the unit tests).
 *  - Every process-shared mutex in the image (the header's three, the
 *    arenas' and the type table's) is replaced by a fresh unlocked one. A
 *    forged mutex word that claims an owner thread makes lockers wait for
 *    ever: robust mutexes recover from owners that died in this boot, not
 *    from a word that names a thread that never held it. That is a denial
 *    of service, documented in docs/SECURITY.md, not a memory-safety bug,
 *    and fuzzing it would only produce hangs.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"
#include "graph_internal.h"
#include "util.h"

#define GAP_MERGE 8u /* zero runs shorter than this stay inside a record */
#define REC_MAX 65535u

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static uint16_t le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

void fz_fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "fuzz: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	abort();
}

void fz_rc(const char *what, long rc)
{
	const char *s;

	if (rc >= 0)
		return;
	s = shg_strerror((int)rc);
	if (!s)
		fz_fail("shg_strerror(%ld) returned NULL", rc);
	if (rc >= -4095 || (rc <= SHG_EMAGIC && rc >= SHG_ELAST))
		return;
	fz_fail("%s returned %ld: not 0, -errno or an SHG_E* code", what, rc);
}

int fz_buf_put(struct fz_buf *b, const void *p, size_t n)
{
	if (n > SIZE_MAX - b->n || shg__grow(&b->p, &b->cap, b->n + n, 1))
		return -ENOMEM;
	memcpy(b->p + b->n, p, n);
	b->n += n;
	return 0;
}

/* ---- encoding ----------------------------------------------------------- */

static int put_record(struct fz_buf *out, const uint8_t *img, size_t off,
		      size_t len)
{
	uint8_t h[FZ_REC_HDR];
	int err;

	put32(h, (uint32_t)off);
	h[4] = (uint8_t)len;
	h[5] = (uint8_t)(len >> 8);
	err = fz_buf_put(out, h, sizeof(h));
	return err ? err : fz_buf_put(out, img + off, len);
}

/* Records of the nonzero runs of @img (@n bytes). */
static int encode(const uint8_t *img, size_t n, uint32_t flags,
		  struct fz_buf *out)
{
	uint8_t h[FZ_IMG_HDR];
	size_t i = 0, start, end, zeros;
	int err;

	put32(h, (uint32_t)n);
	put32(h + 4, flags);
	err = fz_buf_put(out, h, sizeof(h));
	while (!err && i < n) {
		while (i < n && !img[i])
			i++;
		if (i == n)
			break;
		start = i;
		end = i;
		/* Extend over zero gaps shorter than GAP_MERGE. */
		while (i < n && i - start < REC_MAX) {
			if (img[i]) {
				end = ++i;
				continue;
			}
			for (zeros = 0; i < n && !img[i] && zeros < GAP_MERGE;
			     zeros++)
				i++;
			if (zeros >= GAP_MERGE || i == n)
				break;
		}
		if (end - start > REC_MAX)
			end = start + REC_MAX;
		err = put_record(out, img, start, end - start);
		i = end;
	}
	return err;
}

int fz_image_encode_file(const char *path, uint32_t flags, struct fz_buf *out)
{
	struct stat st;
	uint8_t *img;
	ssize_t r;
	size_t got = 0;
	int fd, err;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || st.st_size > (off_t)FZ_MAX_FILE) {
		close(fd);
		return -EFBIG;
	}
	img = malloc((size_t)st.st_size + 1);
	if (!img) {
		close(fd);
		return -ENOMEM;
	}
	while (got < (size_t)st.st_size) {
		r = pread(fd, img + got, (size_t)st.st_size - got, (off_t)got);
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	err = got == (size_t)st.st_size ? encode(img, got, flags, out) : -EIO;
	free(img);
	return err;
}

/* ---- decoding ----------------------------------------------------------- */

static int pwrite_all(int fd, const void *p, size_t n, uint64_t off)
{
	const uint8_t *b = p;
	ssize_t r;

	while (n) {
		r = pwrite(fd, b, n, (off_t)off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		b += r;
		n -= (size_t)r;
		off += (uint64_t)r;
	}
	return 0;
}

/* Write @len bytes at @off, clipped to the file size; mirror the header. */
static void put_clipped(int fd, uint64_t fsize, uint64_t off, const uint8_t *p,
			size_t len, uint8_t *hdr)
{
	if (off >= fsize)
		return;
	if (len > fsize - off)
		len = (size_t)(fsize - off);
	if (off < SHG_HDR_SIZE)
		memcpy(hdr + off, p,
		       len < SHG_HDR_SIZE - off ? len : SHG_HDR_SIZE - off);
	(void)pwrite_all(fd, p, len, off);
}

static pthread_mutex_t fresh_mutex;
static pthread_once_t fresh_once = PTHREAD_ONCE_INIT;

static void fresh_init(void)
{
	if (shg__mutex_init(&fresh_mutex) != 0)
		fz_fail("cannot initialise a robust shared mutex");
}

static void put_mutex(int fd, uint64_t fsize, uint64_t off, uint8_t *hdr)
{
	if (off > fsize || sizeof(fresh_mutex) > fsize - off)
		return;
	put_clipped(fd, fsize, off, (const uint8_t *)&fresh_mutex,
		    sizeof(fresh_mutex), hdr);
}

/* The fix-ups described at the top of this file. */
static void fixups(int fd, uint64_t fsize, uint8_t *hdr)
{
	const struct shg_hdr *h = (const struct shg_hdr *)hdr;
	uint64_t hash = shg__layout_hash(SHG_GRAPH_RULES), arenas, types;
	unsigned i;

	pthread_once(&fresh_once, fresh_init);
	put_clipped(fd, fsize, offsetof(struct shg_hdr, layout_hash),
		    (const uint8_t *)&hash, sizeof(hash), hdr);
	put_mutex(fd, fsize, offsetof(struct shg_hdr, limbo_lock), hdr);
	put_mutex(fd, fsize, offsetof(struct shg_hdr, root_lock), hdr);
	put_mutex(fd, fsize, offsetof(struct shg_hdr, grow_lock), hdr);
	arenas = h->arenas_off;
	for (i = 0; i < SHG_MAX_NODES && arenas < fsize; i++)
		put_mutex(fd, fsize,
			  arenas + i * (uint64_t)sizeof(struct shg_arena), hdr);
	types = atomic_load_explicit(&h->ext[0], memory_order_relaxed);
	if (types >= SHG_HDR_SIZE)
		put_mutex(fd, fsize, types, hdr);
}

int fz_image_write(int fd, const uint8_t *data, size_t size)
{
	static uint8_t hdr[SHG_HDR_SIZE] __attribute__((aligned(64)));
	uint64_t fsize, off;
	size_t pos, len;
	uint32_t flags;

	if (size < FZ_IMG_HDR)
		return -1;
	fsize = le32(data);
	flags = le32(data + 4);
	if (fsize > FZ_MAX_FILE)
		fsize = FZ_MAX_FILE;
	memset(hdr, 0, sizeof(hdr));
	if (ftruncate(fd, 0) < 0 || ftruncate(fd, (off_t)fsize) < 0)
		fz_fail("ftruncate of the scratch file: %s", strerror(errno));
	for (pos = FZ_IMG_HDR; size - pos >= FZ_REC_HDR;) {
		off = le32(data + pos);
		len = le16(data + pos + 4);
		pos += FZ_REC_HDR;
		if (len > size - pos)
			len = size - pos;
		put_clipped(fd, fsize, off, data + pos, len, hdr);
		pos += len;
	}
	fixups(fd, fsize, hdr);
	return (int)(flags & 0x7fffffffu);
}

/* ---- scratch files ------------------------------------------------------ */

void fz_tmp_path(char *buf, size_t len, const char *tag)
{
	static unsigned counter;
	const char *dir = getenv("SHG_FUZZ_TMPDIR");

	if (!dir || !*dir)
		dir = getenv("SHG_TEST_TMPDIR");
	if (!dir || !*dir || access(dir, W_OK) != 0)
		dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	snprintf(buf, len, "%s/shg-fuzz-%d-%u-%s", dir, (int)getpid(),
		 counter++, tag);
}

int fz_write_file(const char *dir, const char *name, const void *p, size_t n)
{
	char path[4096];
	int fd, err = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	if (pwrite_all(fd, p, n, 0) < 0)
		err = -EIO;
	if (close(fd) < 0 && !err)
		err = -errno;
	return err;
}

/* ---- structure-aware mutation (libFuzzer builds) ------------------------ */

#ifdef SHG_LIBFUZZER

#define MAX_RECS 8192u

struct rec {
	size_t pos; /* of the data in the input */
	size_t len; /* data bytes present */
	uint32_t off; /* file offset */
};

static uint64_t rnd(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*s = x;
	return x;
}

static size_t parse(const uint8_t *d, size_t size, struct rec *r)
{
	size_t pos = FZ_IMG_HDR, n = 0, len;

	while (size - pos >= FZ_REC_HDR && n < MAX_RECS) {
		len = le16(d + pos + 4);
		r[n].off = le32(d + pos);
		pos += FZ_REC_HDR;
		if (len > size - pos)
			len = size - pos;
		r[n].pos = pos;
		r[n].len = len;
		n++;
		pos += len;
	}
	return n;
}

/* A plausible offset: an aligned word of some record that points inside
 * the file, or a record's own offset, give or take a little. */
static uint64_t some_offset(const uint8_t *d, const struct rec *r, size_t n,
			    uint32_t fsize, uint64_t *s)
{
	static const int64_t nudge[] = { 0, 0, 0, 16, -16, 8, 32, 64, 4096 };
	const struct rec *x = &r[rnd(s) % n];
	uint64_t v = x->off & ~15u;
	size_t i, k;

	for (k = 0; k < 8 && x->len >= 8; k++) {
		i = (size_t)(rnd(s) % (x->len - 7));
		i += (8 - ((x->off + i) & 7)) & 7;
		if (i + 8 > x->len)
			continue;
		memcpy(&v, d + x->pos + i, 8);
		if (v && v < fsize && !(v & 7))
			break;
		v = x->off & ~15u;
	}
	return v + (uint64_t)nudge[rnd(s) % (sizeof(nudge) / sizeof(nudge[0]))];
}

static void set_word(uint8_t *d, const struct rec *x, const struct rec *r,
		     size_t n, uint32_t fsize, uint64_t *s)
{
	static const uint64_t v64[] = { 0,	    1,		2,
					UINT64_MAX, 1ull << 63, UINT32_MAX,
					1ull << 32, 4096,	65536 };
	static const uint32_t v32[] = {
		0,  1,	 2,   3,    7,	   16,	  31,	       32,	  63,
		64, 255, 256, 4096, 65535, 65536, 0x7fffffffu, UINT32_MAX
	};
	size_t w = rnd(s) & 1 ? 8 : 4, i;
	uint64_t v;

	if (x->len < w)
		return;
	i = (size_t)(rnd(s) % (x->len - w + 1));
	/* Align to the file offset (records need not start aligned). */
	if (((x->off + i) & (w - 1)) > i)
		return;
	i -= (x->off + i) & (w - 1);
	if (w == 8) {
		switch (rnd(s) % 3) {
		case 0:
			v = v64[rnd(s) % (sizeof(v64) / sizeof(v64[0]))];
			break;
		case 1:
			v = some_offset(d, r, n, fsize, s);
			break;
		default:
			memcpy(&v, d + x->pos + i, 8);
			v += (uint64_t)(int64_t)(int8_t)rnd(s);
			break;
		}
		memcpy(d + x->pos + i, &v, 8);
		return;
	}
	put32(d + x->pos + i,
	      rnd(s) & 1 ? v32[rnd(s) % (sizeof(v32) / sizeof(v32[0]))] :
			   le32(d + x->pos + i) + (uint32_t)(int8_t)rnd(s));
}

size_t fz_image_mutate(uint8_t *d, size_t size, size_t max_size,
		       unsigned int seed)
{
	static struct rec r[MAX_RECS];
	uint64_t s = (uint64_t)seed * 0x9e3779b97f4a7c15ull | 1;
	size_t n, k;
	struct rec *x;

	if (size < FZ_IMG_HDR + FZ_REC_HDR || rnd(&s) % 16 == 0)
		return LLVMFuzzerMutate(d, size, max_size);
	n = parse(d, size, r);
	if (!n)
		return LLVMFuzzerMutate(d, size, max_size);
	x = &r[rnd(&s) % n];
	for (k = 0; k < 4 && !x->len; k++)
		x = &r[rnd(&s) % n];
	if (!x->len)
		return LLVMFuzzerMutate(d, size, max_size);
	switch (rnd(&s) % 8) {
	case 0:
	case 1:
	case 2:
		/* In place, same length: the framing stays intact. */
		(void)LLVMFuzzerMutate(d + x->pos, x->len, x->len);
		break;
	case 7:
		if (rnd(&s) & 1) {
			d[4] ^= rnd(&s) & 1 ? FZ_F_RECOVER : FZ_F_RECOVER_ALL;
			break;
		}
		/* fall through */
	default:
		set_word(d, x, r, n, le32(d), &s);
		break;
	}
	return size;
}

#endif /* SHG_LIBFUZZER */
