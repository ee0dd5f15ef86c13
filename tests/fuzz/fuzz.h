/* SPDX-License-Identifier: MIT */
/*
 * Shared pieces of the fuzz targets (tests/fuzz/fuzz_*.c).
 *
 * Each target defines LLVMFuzzerTestOneInput() and fz_make_seeds(). Built
 * with clang -fsanitize=fuzzer (scripts/fuzz.sh) it is a libFuzzer binary;
 * built with the normal compiler and replay.c it is a plain program that
 * runs every file of the given directories through the target once, which
 * `make check` does over the committed corpus and regression inputs.
 *
 * Segment images are fuzzed in a compact form (struct fz_image below):
 * the nonzero runs of a real segment file, so that the fuzzer mutates the
 * few kilobytes that matter instead of megabytes of zeros.
 */
#ifndef SHG_FUZZ_H
#define SHG_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <shmgraph.h>

/* libFuzzer entry points (defined by each target; Initialize optional). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* Write the target's seed corpus into @dir (replay builds). 0 or -errno. */
int fz_make_seeds(const char *dir);
/* The target's name, e.g. "fuzz_segment" (corpus/<name>, regress/<name>). */
extern const char fz_target_name[];

/*
 * Encoded segment image, little endian:
 *
 *   0  u32  file size in bytes (clamped to FZ_MAX_FILE)
 *   4  u32  flags (FZ_F_*)
 *   8  records, until the input ends:
 *        u32 offset, u16 length, then `length` bytes written at `offset`
 *
 * Bytes no record covers are zero; a record (or its part) beyond the file
 * size or the input's end is dropped.
 */
#define FZ_IMG_HDR 8u
#define FZ_REC_HDR 6u
#define FZ_MAX_FILE (64u << 20)
#define FZ_F_RECOVER 0x1u /* open with recovery (release dead slots) */
#define FZ_F_RECOVER_ALL 0x2u /* then also run shg_recover() */

/* A growable byte buffer (zero-initialise; free ->p). */
struct fz_buf {
	uint8_t *p;
	size_t n, cap;
};
int fz_buf_put(struct fz_buf *b, const void *p, size_t n);

/* Encode the file at @path as an image (records of its nonzero runs). */
int fz_image_encode_file(const char *path, uint32_t flags, struct fz_buf *out);

/*
 * Decode @data into the file @fd (truncated first), then make the pthread
 * mutexes in it valid and unlocked and stamp this build's layout hash (see
 * fuzz_util.c for why). Returns the flags, or -1 if @size < FZ_IMG_HDR.
 */
int fz_image_write(int fd, const uint8_t *data, size_t size);

/*
 * A path for a scratch file of this process: $SHG_FUZZ_TMPDIR, else
 * $SHG_TEST_TMPDIR, else /dev/shm when usable, else /tmp.
 */
void fz_tmp_path(char *buf, size_t len, const char *tag);

/*
 * Abort (a finding) unless @rc is a valid result of a shmgraph command:
 * >= 0, a -errno value, or an SHG_E* code; @what names the call.
 */
void fz_rc(const char *what, long rc);

/* Abort with a message: an invariant of the target failed. */
void fz_fail(const char *fmt, ...)
	__attribute__((format(printf, 1, 2), noreturn));

/* Write @n bytes to the new file @dir/@name (0 or -errno). */
int fz_write_file(const char *dir, const char *name, const void *p, size_t n);

/*
 * Build the seed graphs into @seg (fuzz_graphs.c): roots fz_root_names[]
 * ("gone" is removed again, "raw" holds a plain block). @crash: return
 * with a pin on an old version, an open txn and every root handle still
 * held, as a process killed at that point would leave them (the caller
 * then _exit()s). Return: 0 or the first error.
 */
#define FZ_NROOTS 8
extern const char *const fz_root_names[FZ_NROOTS];
int fz_build_graphs(struct shg_seg *seg, bool crash);

#ifdef SHG_LIBFUZZER
size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);
/*
 * Structure-aware mutation of an encoded image: mostly changes bytes and
 * words inside records (keeping the framing), sometimes sets a word to an
 * offset found elsewhere in the image, sometimes mutates the raw bytes.
 */
size_t fz_image_mutate(uint8_t *data, size_t size, size_t max_size,
		       unsigned int seed);
#endif

#endif /* SHG_FUZZ_H */
