/* SPDX-License-Identifier: MIT */
/*
 * shmctl internals shared by its source files:
 *
 *   shmctl.c        main: argument parsing, the command table, help
 *   shmctl_util.c   output helpers (JSON strings, sizes, bytes as text,
 *                   hex and base64), value printing, root names
 *   shmctl_seg.c    create, destroy, info, roots, readers, stats, check,
 *                   recover
 *   shmctl_map.c    put, get, del, ls (maps at a root)
 *   shmctl_dump.c   dump (any graph through the type table)
 *   shmctl_snap.c   export, import (snapshot files)
 *   shmctl_watch.c  watch (live rates)
 *   shmctl_repl.c   replicate publish, follow, status (NATS JetStream)
 *
 * Only the public API (<shmgraph.h>) is used.
 */
#ifndef SHMCTL_H
#define SHMCTL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <shmgraph.h>

#include "../common/shgutil.h"

#define EXIT_PROBLEMS 1 /* check found problems; get/del: no such key */
#define EXIT_ERROR 2 /* usage or runtime error */

/* How put reads VALUE, and how get prints bytes values. */
enum val_enc {
	ENC_TEXT = 0, /* as given / printable UTF-8 as is, else "hex:..." */
	ENC_INT, /* put: an integer */
	ENC_HEX, /* hexadecimal digits */
	ENC_BASE64, /* RFC 4648 base64 */
};

/* Options; each command accepts a subset (struct cmd.opts). */
enum {
	OPT_JSON = 1u << 0,
	OPT_SIZE = 1u << 1,
	OPT_MODE = 1u << 2,
	OPT_NUMA = 1u << 3,
	OPT_INT = 1u << 4,
	OPT_HEX = 1u << 5,
	OPT_BASE64 = 1u << 6,
	OPT_VERSION = 1u << 7,
	OPT_DEPTH = 1u << 8,
	OPT_LIMIT = 1u << 9,
	OPT_REPLACE = 1u << 10,
	OPT_INTERVAL = 1u << 11,
	OPT_COUNT = 1u << 12,
	OPT_KEY_INT = 1u << 13,
	OPT_KEY_HEX = 1u << 14,
	OPT_KIND = 1u << 15,
	OPT_HUGE = 1u << 16,
};

#define MAX_ARGS 1025 /* get: ROOT and up to 1024 keys */

struct cli {
	const char *cmd;
	const char *seg_name;
	unsigned seen; /* OPT_* given */
	bool json;
	uint64_t size; /* create */
	unsigned mode;
	int numa_policy;
	int numa_node;
	bool huge; /* create --huge */
	enum val_enc enc; /* put, get */
	bool key_int; /* put, get, del: KEY is a u64 (--key-int) */
	bool key_hex; /* put, get, del: KEY is bytes in hex (--key-hex) */
	unsigned kind; /* put --kind: enum shg_kind of VALUE (0: not given) */
	uint64_t version; /* dump --version */
	unsigned depth; /* dump --depth */
	uint64_t limit; /* dump --limit (0 = all) */
	bool replace; /* import */
	double interval; /* watch, seconds */
	uint64_t count; /* watch (0 = until interrupted) */
	const char *arg[MAX_ARGS]; /* positional arguments after SEGMENT */
	int nargs;
};

/* One command of the table in shmctl.c. */
struct cmd {
	const char *name;
	int (*run)(struct cli *c, struct shg_seg *seg);
	unsigned opts; /* OPT_* accepted */
	int min_args, max_args; /* positional arguments after SEGMENT */
	unsigned flags; /* CMD_* */
	const char *args; /* usage line after "shmctl NAME SEG" */
	const char *summary; /* one line */
	const char *help; /* details for "shmctl NAME --help" */
};
#define CMD_NO_OPEN 0x1u /* run without opening the segment */
#define CMD_RECOVER 0x2u /* open releasing dead processes' slots */
#define CMD_WRITE 0x4u /* may change the segment's contents */

/* ---- shmctl_util.c ------------------------------------------------------ */

/* "shmctl: WHAT: <error text>" on stderr; returns EXIT_ERROR. */
int fail(const char *what, int err);
/* "shmctl: <message>" on stderr; returns EXIT_ERROR. */
int failf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Seconds between CLOCK_REALTIME @ns and now, as text ("3.2 s ago"). */
const char *fmt_age(uint64_t ns, char *buf, size_t len);

void hex_out(FILE *f, const void *p, size_t n);
void base64_out(FILE *f, const void *p, size_t n);
/* Decode into a malloc'd buffer; 0 or -EINVAL. */
int hex_decode(const char *s, uint8_t **out, size_t *len);
int base64_decode(const char *s, uint8_t **out, size_t *len);
/*
 * Bytes as text: printable UTF-8 as is (JSON: a string), anything else
 * as "hex:<digits>" (JSON: {"hex":"<digits>"}). @quote: text mode puts
 * printable bytes in double quotes (dump).
 */
void bytes_out(FILE *f, const void *p, size_t n, bool json, bool quote);

/* Root slot -> name, from one snapshot of the root table. */
struct root_names {
	struct shg_root_info *ri;
	int n;
};
int root_names_load(struct shg_seg *seg, struct root_names *rn);
const char *root_name(const struct root_names *rn, uint32_t slot);
void root_names_free(struct root_names *rn);

/* A scalar, bytes or root value; NODE values as their offset. */
void val_out(FILE *f, const struct shg_val *v, bool json,
	     const struct root_names *rn, bool quote);
const char *kind_name(unsigned kind);
/* enum shg_kind of a kind's name (kind_name()), 0 if none. */
unsigned kind_parse(const char *name);

/* Snapshot a list (roots, readers): count, allocate, fill. */
typedef int (*list_fn)(struct shg_seg *seg, void *out, unsigned max);
int fetch_list(struct shg_seg *seg, list_fn fn, size_t size, void **out);
int list_roots(struct shg_seg *seg, void *out, unsigned max);
int list_readers(struct shg_seg *seg, void *out, unsigned max);
int list_pins(struct shg_seg *seg, void *out, unsigned max);

/* ---- commands ------------------------------------------------------------ */

/* shmctl_repl.c: "shmctl replicate ..." (@argv[0] is "replicate"). */
int shmctl_replicate(int argc, char **argv);
/* After shmctl roots' table: the primary's seq of each replica root. */
void repl_roots_note(struct shg_seg *seg);
int cmd_create(struct cli *c, struct shg_seg *seg);
int cmd_destroy(struct cli *c, struct shg_seg *seg);
int cmd_info(struct cli *c, struct shg_seg *seg);
int cmd_roots(struct cli *c, struct shg_seg *seg);
int cmd_readers(struct cli *c, struct shg_seg *seg);
int cmd_stats(struct cli *c, struct shg_seg *seg);
int cmd_check(struct cli *c, struct shg_seg *seg);
int cmd_recover(struct cli *c, struct shg_seg *seg);
int cmd_put(struct cli *c, struct shg_seg *seg);
int cmd_get(struct cli *c, struct shg_seg *seg);
int cmd_del(struct cli *c, struct shg_seg *seg);
int cmd_ls(struct cli *c, struct shg_seg *seg);
int cmd_dump(struct cli *c, struct shg_seg *seg);
/*
 * A NODE value as dump prints it at that place: its subtree, @depth
 * levels of nesting (0: the type, id and size only, then " ..."), text
 * ending in a newline or one JSON value. Read section held (or pinned).
 * Return: 0, or the first error met (what could not be read is marked).
 */
int dump_value(FILE *f, struct shg_seg *seg, struct shg_off node, bool json,
	       unsigned depth);
int cmd_export(struct cli *c, struct shg_seg *seg);
int cmd_import(struct cli *c, struct shg_seg *seg);
int cmd_watch(struct cli *c, struct shg_seg *seg);

#endif /* SHMCTL_H */
