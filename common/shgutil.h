/* SPDX-License-Identifier: MIT */
/*
 * Helpers for the programs around the library (tools/, bench/), built
 * once as a convenience library that is never installed: JSON strings,
 * number parsing with one meaning per kind of number, byte formatting.
 * It re-exports the libc-only shm/util.h for shg__mix64() and
 * shg__numa_sim_nodes(), whose one copy the library itself uses.
 *
 * Numbers: a byte size and a count are different things and parse
 * differently, so that "1K" never means 1000 bytes in one program and 1024
 * in another:
 *   shg__parse_u64()    plain decimal digits, no suffix (versions, limits)
 *   shg__parse_size()   bytes: an integer with an optional binary suffix,
 *                       k/K = 2^10, m/M = 2^20, g/G = 2^30, t/T = 2^40
 *   shg__parse_count()  counts (keys, rates): a decimal number, fraction
 *                       allowed, with an optional decimal suffix,
 *                       k/K = 10^3, m/M = 10^6, g/G = 10^9 ("1.5M")
 * Each returns 0, or -EINVAL (not such a number; also negative ones) or
 * -ERANGE (beyond 2^64 - 1), and leaves *out alone on error.
 */
#ifndef SHG_SHGUTIL_H
#define SHG_SHGUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "../shm/util.h"

/* ---- JSON ------------------------------------------------------------- */

/*
 * Length of the valid UTF-8 sequence at @p (at most @n > 0 bytes) and its
 * code point in *@cp; 0 if invalid (overlong, surrogate, beyond U+10FFFF,
 * truncated).
 */
size_t shg__utf8_seq(const uint8_t *p, size_t n, uint32_t *cp);
/* Valid UTF-8 without control characters (what prints safely as is). */
bool shg__utf8_printable(const void *p, size_t n);
/*
 * @n bytes as a JSON string: valid UTF-8 as is, '"' '\\' and controls
 * escaped, any byte that is not valid UTF-8 as the Latin-1 code point
 * \u00XX (so the output is always valid JSON).
 */
void shg__json_mem(FILE *f, const void *p, size_t n);
/* shg__json_mem() of a C string; NULL prints null. */
void shg__json_str(FILE *f, const char *s);

/* ---- numbers ------------------------------------------------------------ */

int shg__parse_u64(const char *s, uint64_t *out);
int shg__parse_size(const char *s, uint64_t *out);
int shg__parse_count(const char *s, uint64_t *out);
/* @b bytes as "512 B", "1.5 KiB" ... "2.0 TiB" in @buf; returns @buf. */
const char *shg__fmt_bytes(uint64_t b, char *buf, size_t len);

#endif /* SHG_SHGUTIL_H */
