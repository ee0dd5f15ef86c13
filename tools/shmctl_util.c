/* SPDX-License-Identifier: MIT */
/*
 * shmctl output helpers: errors, ages, bytes as text (printable UTF-8 as
 * is, anything else as hex), hex and base64 in both directions, values of
 * every kind, and root names by slot. JSON strings, sizes and byte counts
 * come from common/shgutil.h.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "shmctl.h"

int fail(const char *what, int err)
{
	fprintf(stderr, "shmctl: %s: %s\n", what, shg_strerror(err));
	return EXIT_ERROR;
}

int failf(const char *fmt, ...)
{
	va_list ap;

	fputs("shmctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return EXIT_ERROR;
}

/* ---- sizes and times -------------------------------------------------------- */

const char *fmt_age(uint64_t ns, char *buf, size_t len)
{
	struct timespec ts;
	double age;

	if (!ns) {
		snprintf(buf, len, "never");
		return buf;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	age = ((double)ts.tv_sec * 1e9 + (double)ts.tv_nsec - (double)ns) / 1e9;
	if (age < 0)
		age = 0;
	if (age < 120)
		snprintf(buf, len, "%.1f s ago", age);
	else if (age < 7200)
		snprintf(buf, len, "%.0f min ago", age / 60);
	else
		snprintf(buf, len, "%.1f h ago", age / 3600);
	return buf;
}

/* ---- hex and base64 ----------------------------------------------------------- */

void hex_out(FILE *f, const void *buf, size_t n)
{
	const uint8_t *p = buf;
	size_t i;

	for (i = 0; i < n; i++)
		fprintf(f, "%02x", p[i]);
}

static const char b64[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void base64_out(FILE *f, const void *buf, size_t n)
{
	const uint8_t *p = buf;
	uint32_t v;
	size_t i;

	for (i = 0; i + 2 < n; i += 3) {
		v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
		fprintf(f, "%c%c%c%c", b64[v >> 18], b64[(v >> 12) & 63],
			b64[(v >> 6) & 63], b64[v & 63]);
	}
	if (n - i == 1) {
		v = (uint32_t)p[i] << 16;
		fprintf(f, "%c%c==", b64[v >> 18], b64[(v >> 12) & 63]);
	} else if (n - i == 2) {
		v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
		fprintf(f, "%c%c%c=", b64[v >> 18], b64[(v >> 12) & 63],
			b64[(v >> 6) & 63]);
	}
}

static int hexval(int ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

int hex_decode(const char *s, uint8_t **out, size_t *len)
{
	size_t n = strlen(s), i;
	uint8_t *d;
	int hi, lo;

	if (n % 2)
		return -EINVAL;
	d = malloc(n / 2 + 1);
	if (!d)
		return -ENOMEM;
	for (i = 0; i < n / 2; i++) {
		hi = hexval(s[2 * i]);
		lo = hexval(s[2 * i + 1]);
		if (hi < 0 || lo < 0) {
			free(d);
			return -EINVAL;
		}
		d[i] = (uint8_t)(hi << 4 | lo);
	}
	*out = d;
	*len = n / 2;
	return 0;
}

int base64_decode(const char *s, uint8_t **out, size_t *len)
{
	size_t n = strlen(s), i, k = 0, pad = 0;
	uint32_t v = 0, q = 0;
	const char *c;
	uint8_t *d;

	while (pad < 2 && n > pad && s[n - 1 - pad] == '=')
		pad++;
	if ((n % 4 && pad) || (n - pad) % 4 == 1)
		return -EINVAL;
	d = malloc(n / 4 * 3 + 3);
	if (!d)
		return -ENOMEM;
	for (i = 0; i < n - pad; i++) {
		c = s[i] ? strchr(b64, s[i]) : NULL;
		if (!c) {
			free(d);
			return -EINVAL;
		}
		v = v << 6 | (uint32_t)(c - b64);
		if (++q == 4) {
			d[k++] = (uint8_t)(v >> 16);
			d[k++] = (uint8_t)(v >> 8);
			d[k++] = (uint8_t)v;
			q = 0;
			v = 0;
		}
	}
	if (q == 2) {
		d[k++] = (uint8_t)(v >> 4);
	} else if (q == 3) {
		d[k++] = (uint8_t)(v >> 10);
		d[k++] = (uint8_t)(v >> 2);
	}
	*out = d;
	*len = k;
	return 0;
}

void bytes_out(FILE *f, const void *p, size_t n, bool json, bool quote)
{
	if (shg__utf8_printable(p, n)) {
		if (json)
			shg__json_mem(f, p, n);
		else if (quote)
			fprintf(f, "\"%.*s\"", (int)n, (const char *)p);
		else
			fwrite(p, 1, n, f);
		return;
	}
	fputs(json ? "{\"hex\":\"" : "hex:", f);
	hex_out(f, p, n);
	if (json)
		fputs("\"}", f);
}

/* ---- values and root names ---------------------------------------------------- */

int list_roots(struct shg_seg *seg, void *out, unsigned max)
{
	return shg_root_list(seg, out, max);
}

int list_readers(struct shg_seg *seg, void *out, unsigned max)
{
	return shg_reader_list(seg, out, max);
}

int list_pins(struct shg_seg *seg, void *out, unsigned max)
{
	return shg_pin_list(seg, out, max);
}

int fetch_list(struct shg_seg *seg, list_fn fn, size_t size, void **out)
{
	int n = fn(seg, NULL, 0);
	int got;

	if (n < 0)
		return n;
	*out = calloc((size_t)n + 1, size);
	if (!*out)
		return -ENOMEM;
	got = fn(seg, *out, (unsigned)n);
	if (got < 0) {
		free(*out);
		*out = NULL;
		return got;
	}
	return got > n ? n : got;
}

int root_names_load(struct shg_seg *seg, struct root_names *rn)
{
	int n = fetch_list(seg, list_roots, sizeof(*rn->ri), (void **)&rn->ri);

	rn->n = n < 0 ? 0 : n;
	return n < 0 ? n : 0;
}

const char *root_name(const struct root_names *rn, uint32_t slot)
{
	int i;

	for (i = 0; rn && i < rn->n; i++)
		if (rn->ri[i].slot == slot && !rn->ri[i].removed)
			return rn->ri[i].name;
	return NULL;
}

void root_names_free(struct root_names *rn)
{
	free(rn->ri);
	rn->ri = NULL;
	rn->n = 0;
}

const char *kind_name(unsigned kind)
{
	static const char *const names[] = { "?",     "u64",  "i64", "f64",
					     "bytes", "node", "root" };

	return kind < sizeof(names) / sizeof(names[0]) ? names[kind] : "?";
}

unsigned kind_parse(const char *name)
{
	unsigned k;

	for (k = SHG_KIND_U64; k <= SHG_KIND_ROOT; k++)
		if (!strcmp(name, kind_name(k)))
			return k;
	return 0;
}

static void f64_out(FILE *f, double d, bool json)
{
	if (json && isnan(d))
		fputs("\"NaN\"", f);
	else if (json && isinf(d))
		fputs(d < 0 ? "\"-Infinity\"" : "\"Infinity\"", f);
	else
		fprintf(f, "%.17g", d);
}

void val_out(FILE *f, const struct shg_val *v, bool json,
	     const struct root_names *rn, bool quote)
{
	const char *name;

	switch (v->kind) {
	case SHG_KIND_BYTES:
		bytes_out(f, v->bytes.p ? v->bytes.p : "", v->bytes.len, json,
			  quote);
		break;
	case SHG_KIND_I64:
		fprintf(f, "%" PRId64, v->i64);
		break;
	case SHG_KIND_F64:
		f64_out(f, v->f64, json);
		break;
	case SHG_KIND_NODE:
		if (json)
			fprintf(f, "{\"node\":\"%#" PRIx64 "\"}", v->node.v);
		else
			fprintf(f, "node@%#" PRIx64, v->node.v);
		break;
	case SHG_KIND_ROOT:
		name = root_name(rn, v->root);
		if (json && name) {
			fputs("{\"root\":", f);
			shg__json_str(f, name);
			fputc('}', f);
		} else if (json) {
			fprintf(f, "{\"root\":null,\"slot\":%u}", v->root);
		} else if (name) {
			fprintf(f, "root:%s", name);
		} else {
			fprintf(f, "root:#%u(gone)", v->root);
		}
		break;
	default:
		fprintf(f, "%" PRIu64, v->u64);
		break;
	}
}
