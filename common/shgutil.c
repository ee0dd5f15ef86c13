/* SPDX-License-Identifier: MIT */
/*
 * Helpers for tools/ and bench/: JSON strings, number parsing, byte
 * formatting. See shgutil.h for the meaning of each kind of number.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "shgutil.h"

/* ---- UTF-8 and JSON --------------------------------------------------- */

size_t shg__utf8_seq(const uint8_t *p, size_t n, uint32_t *cp)
{
	uint32_t c = p[0], min;
	size_t len, i;

	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if ((c & 0xe0) == 0xc0) {
		len = 2;
		c &= 0x1f;
		min = 0x80;
	} else if ((c & 0xf0) == 0xe0) {
		len = 3;
		c &= 0x0f;
		min = 0x800;
	} else if ((c & 0xf8) == 0xf0) {
		len = 4;
		c &= 0x07;
		min = 0x10000;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		c = c << 6 | (p[i] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return len;
}

bool shg__utf8_printable(const void *buf, size_t n)
{
	const uint8_t *p = buf;
	uint32_t cp;
	size_t l;

	while (n) {
		l = shg__utf8_seq(p, n, &cp);
		if (!l || cp < 0x20 || (cp >= 0x7f && cp <= 0x9f))
			return false;
		p += l;
		n -= l;
	}
	return true;
}

void shg__json_mem(FILE *f, const void *buf, size_t n)
{
	const uint8_t *p = buf;
	uint32_t cp;
	size_t l;

	fputc('"', f);
	while (n) {
		l = shg__utf8_seq(p, n, &cp);
		if (l == 1 && (cp == '"' || cp == '\\')) {
			fprintf(f, "\\%c", (int)cp);
		} else if (l == 1 && cp < 0x20) {
			fprintf(f, "\\u%04x", (unsigned)cp);
		} else if (l) {
			fwrite(p, 1, l, f);
		} else {
			/* Not UTF-8: the byte as a Latin-1 code point. */
			fprintf(f, "\\u%04x", (unsigned)*p);
			l = 1;
		}
		p += l;
		n -= l;
	}
	fputc('"', f);
}

void shg__json_str(FILE *f, const char *s)
{
	if (!s)
		fputs("null", f);
	else
		shg__json_mem(f, s, strlen(s));
}

/* ---- numbers ------------------------------------------------------------ */

/* Decimal digits at @s into *@v; *@end past them. 0, -EINVAL, -ERANGE. */
static int decimal(const char *s, unsigned long long *v, char **end)
{
	/* strtoull accepts a sign and leading space: a size never has one. */
	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	*v = strtoull(s, end, 10);
	return errno == ERANGE ? -ERANGE : 0;
}

int shg__parse_u64(const char *s, uint64_t *out)
{
	unsigned long long v;
	char *end;
	int err = decimal(s, &v, &end);

	if (err)
		return err;
	if (*end)
		return -EINVAL;
	*out = v;
	return 0;
}

int shg__parse_size(const char *s, uint64_t *out)
{
	unsigned long long v;
	unsigned shift = 0;
	char *end;
	int err = decimal(s, &v, &end);

	if (err)
		return err;
	switch (*end) {
	case 'k':
	case 'K':
		shift = 10;
		break;
	case 'm':
	case 'M':
		shift = 20;
		break;
	case 'g':
	case 'G':
		shift = 30;
		break;
	case 't':
	case 'T':
		shift = 40;
		break;
	default:
		break;
	}
	if (shift)
		end++;
	if (*end)
		return -EINVAL;
	if (v > (UINT64_MAX >> shift))
		return -ERANGE;
	*out = (uint64_t)v << shift;
	return 0;
}

int shg__parse_count(const char *s, uint64_t *out)
{
	double v;
	char *end;

	/* Digits first: strtod would also take "inf", "nan", hex and signs. */
	if ((*s < '0' || *s > '9') && *s != '.')
		return -EINVAL;
	v = strtod(s, &end);
	if (end == s || !isfinite(v))
		return -EINVAL;
	switch (*end) {
	case 'k':
	case 'K':
		v *= 1e3, end++;
		break;
	case 'm':
	case 'M':
		v *= 1e6, end++;
		break;
	case 'g':
	case 'G':
		v *= 1e9, end++;
		break;
	default:
		break;
	}
	if (*end)
		return -EINVAL;
	if (v >= 18446744073709551616.0) /* 2^64 */
		return -ERANGE;
	*out = (uint64_t)v;
	return 0;
}

const char *shg__fmt_bytes(uint64_t b, char *buf, size_t len)
{
	static const char *const u[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)b;
	int i = 0;

	while (v >= 1024 && i < 4) {
		v /= 1024;
		i++;
	}
	snprintf(buf, len, i ? "%.1f %s" : "%.0f %s", v, u[i]);
	return buf;
}
