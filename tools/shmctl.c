/* SPDX-License-Identifier: MIT */
/*
 * shmctl: inspect, check, repair and edit shmgraph segments.
 *
 *   shmctl COMMAND SEGMENT [ARGS...] [OPTIONS] [--json]
 *
 * SEGMENT is a POSIX shm name ("/demo") or a file path. Every command
 * prints a readable table, or with --json JSON with stable field names
 * (documented in shmctl(1)). Exit status: 0 success, 1 check found
 * problems (get/del: no such key), 2 usage or runtime error (with a
 * one-line message on stderr).
 *
 * This file parses the command line and dispatches through the command
 * table; the commands live in shmctl_*.c (see shmctl.h).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "shmctl.h"

#define OPTS_VAL (OPT_INT | OPT_HEX | OPT_BASE64)
#define OPTS_KEY (OPT_KEY_INT | OPT_KEY_HEX)

static const struct cmd cmds[] = {
	{ "create", cmd_create,
	  OPT_JSON | OPT_SIZE | OPT_MODE | OPT_NUMA | OPT_HUGE, 0, 0,
	  CMD_NO_OPEN | CMD_WRITE,
	  "[--size BYTES[k|m|g]] [--mode OCTAL] "
	  "[--numa local|interleave|bind:N] [--huge]",
	  "create a segment",
	  "Creates SEG (exclusively: it must not exist). --size is its\n"
	  "capacity (default 1g), --mode its file mode, set exactly (default\n"
	  "0600), --numa where heap pages go (default local). --huge backs it\n"
	  "with huge pages (tmpfs or hugetlbfs; fails where the file system\n"
	  "gives none) and may round the capacity up to the huge page size.\n" },
	{ "destroy", cmd_destroy, OPT_JSON, 0, 0, CMD_NO_OPEN | CMD_WRITE, "",
	  "remove a segment's name",
	  "Removes SEG's name; processes that have it mapped keep working.\n" },
	{ "info", cmd_info, OPT_JSON, 0, 0, 0, "",
	  "format, capacity, usage, epoch, counts",
	  "Format, capacity, bytes backed and used, retired bytes waiting for\n"
	  "a grace period, the global epoch, roots, processes and threads,\n"
	  "and the huge pages: what the file system gives and how many of the\n"
	  "backed bytes huge pages map.\n" },
	{ "roots", cmd_roots, OPT_JSON, 0, 0, 0, "", "the root table",
	  "One line per root: slot, current version (SEQ), publishes (GEN),\n"
	  "the type of its graph's root node, bytes reachable from its\n"
	  "current version, open handles, state and the last commit's age.\n" },
	{ "readers", cmd_readers, OPT_JSON, 0, 0, 0, "",
	  "registered threads: sections, epoch lag, stalls",
	  "One line per registered thread: pid, tid, whether its process is\n"
	  "alive, flavor, whether it is inside a read section, its epoch lag,\n"
	  "how long it has blocked reclamation and the retired bytes it holds\n"
	  "back -- the answer to \"who is holding memory?\".\n" },
	{ "stats", cmd_stats, OPT_JSON, 0, 0, 0, "",
	  "allocator by size class and NUMA node",
	  "Allocator statistics by size class and NUMA node, retired bytes\n"
	  "pending and reclaimed totals.\n" },
	{ "check", cmd_check, OPT_JSON, 0, 0, 0, "",
	  "verify invariants (exit 1 on problems)",
	  "Verifies every invariant of the segment and its graphs and lists\n"
	  "each violation. Read-only; safe on a live segment (re-run to\n"
	  "confirm a problem seen while writers work). Exit 1 if any.\n" },
	{ "recover", cmd_recover, OPT_JSON, 0, 0, CMD_RECOVER | CMD_WRITE, "",
	  "release what dead processes held",
	  "Releases the slots, root holds, pins, spans and retired lists of\n"
	  "dead processes and frees blocks they leaked; safe while others\n"
	  "read and write.\n" },
	{ "dump", cmd_dump, OPT_JSON | OPT_VERSION | OPT_DEPTH | OPT_LIMIT, 1,
	  1, 0, "ROOT [--version SEQ] [--depth N] [--limit N]",
	  "print a root's graph through the type table",
	  "Prints the graph of ROOT's current version: maps (entries sorted\n"
	  "by key) and vectors as such, user types field by field, root\n"
	  "references as references (not followed), a node reached twice\n"
	  "once. --version SEQ dumps that version if it is current or still\n"
	  "pinned by some process (else exit 2), --depth N shows N levels of\n"
	  "nesting (default 64, at most 2000), --limit N at most N items\n"
	  "per container.\n"
	  "Bytes that are not printable UTF-8 are shown as hex:... .\n" },
	{ "put", cmd_put, OPT_JSON | OPTS_VAL | OPTS_KEY | OPT_KIND, 3, 3,
	  CMD_WRITE,
	  "ROOT KEY VALUE [--key-int|--key-hex] [--int|--hex|--base64] "
	  "[--kind KIND]",
	  "set KEY in the map at ROOT (created if absent)",
	  "Sets KEY to VALUE in the map at ROOT, in one commit. KEY and\n"
	  "VALUE are read as the map's key and value kinds (u64 or bytes\n"
	  "keys; u64, i64, f64, bytes or root values; node values are\n"
	  "read-only here). If ROOT or its map is absent both are created:\n"
	  "keys bytes, or u64 with --key-int; values bytes, or as --kind\n"
	  "KIND says, or with --int u64 (i64 if negative). --key-hex gives a\n"
	  "bytes KEY in hex; --hex and --base64 a bytes VALUE in that\n"
	  "encoding; a root value is a root's name (or root:NAME).\n" },
	{ "get", cmd_get, OPT_JSON | OPT_HEX | OPT_BASE64 | OPTS_KEY, 2,
	  MAX_ARGS, 0,
	  "ROOT KEY [KEY...] [--key-int|--key-hex] [--hex|--base64]",
	  "print KEY's value (exit 1 if absent)",
	  "Prints KEY's value in the map at ROOT (KEY read as the map's key\n"
	  "kind). Bytes that are printable UTF-8 print as is, other bytes\n"
	  "as hex:...; --hex and --base64 print bytes values in that\n"
	  "encoding. A node value prints as dump prints it there. Exit 1\n"
	  "if KEY is absent.\n"
	  "Several keys (up to 1024) are answered from one version of the\n"
	  "map in one batched lookup: one \"KEY<TAB>VALUE\" line per key\n"
	  "found (a node value as ls shows it), absent keys named on\n"
	  "standard error; --json gives an array of {key, found, kind,\n"
	  "value}. Exit 1 if any key is absent.\n" },
	{ "del", cmd_del, OPT_JSON | OPTS_KEY, 2, 2, CMD_WRITE,
	  "ROOT KEY [--key-int|--key-hex]", "delete KEY (exit 1 if absent)",
	  "Deletes KEY from the map at ROOT in one commit. Exit 1 if absent.\n" },
	{ "ls", cmd_ls, OPT_JSON, 1, 1, 0, "ROOT", "list the map's entries",
	  "Lists the entries of the map at ROOT, one \"KEY<TAB>VALUE\" line\n"
	  "each, keys and values of any kind (bytes that are not printable\n"
	  "UTF-8 as hex:..., node values as the first line dump prints for\n"
	  "them). --json also gives the map's key_kind and value_kind.\n" },
	{ "export", cmd_export, OPT_JSON, 2, 2, 0, "ROOT FILE",
	  "write ROOT's graph to a snapshot file",
	  "Writes the current version of ROOT's graph to FILE (\"-\": standard\n"
	  "output) in the portable snapshot format: versioned, checksummed,\n"
	  "with the type definitions it uses. Equal graphs give identical\n"
	  "files. FILE is written under a temporary name and renamed.\n" },
	{ "import", cmd_import, OPT_JSON | OPT_REPLACE, 2, 2, CMD_WRITE,
	  "ROOT FILE [--replace]", "read a snapshot file into ROOT",
	  "Reads snapshot FILE (\"-\": standard input) into ROOT, which must not\n"
	  "exist, or with --replace whose graph is replaced in one commit.\n"
	  "The file is validated completely first: a damaged, truncated or\n"
	  "forged file is refused (exit 2) and nothing changes.\n" },
	{ "watch", cmd_watch, OPT_JSON | OPT_INTERVAL | OPT_COUNT, 0, 0, 0,
	  "[--interval SEC] [--count N]",
	  "live rates: commits, epochs, readers",
	  "Prints one row every SEC seconds (default 1): commits/s, grace\n"
	  "periods (epochs)/s, retired bytes, reclaimed bytes/s, readers (all,\n"
	  "inside a section, dead) and the longest reclamation stall. Reads\n"
	  "are not counted by the library. --count N stops after N rows.\n" },
};
#define NCMDS (sizeof(cmds) / sizeof(cmds[0]))

static const struct cmd *find_cmd(const char *name)
{
	size_t i;

	for (i = 0; name && i < NCMDS; i++)
		if (!strcmp(cmds[i].name, name))
			return &cmds[i];
	return NULL;
}

static void usage(FILE *f)
{
	size_t i;

	fprintf(f,
		"usage: shmctl COMMAND SEGMENT [ARGS...] [--json]\n"
		"       shmctl COMMAND --help\n\n"
		"SEGMENT is a POSIX shm name (/name, in /dev/shm) or a file\n"
		"path, which must contain a slash (./name, dir/name, /a/b).\n"
		"A bare name is refused: it would be a file here, not /name.\n\n"
		"commands:\n");
	for (i = 0; i < NCMDS; i++)
		fprintf(f, "  %-8s %s\n", cmds[i].name, cmds[i].summary);
	fprintf(f, "  %-8s %s\n", "replicate",
		"read replicas through NATS JetStream (shmctl replicate "
		"--help)");
	fprintf(f, "\n--json prints JSON with stable field names (shmctl(1)).\n"
		   "exit status: 0 ok, 1 check found problems (get/del: no "
		   "such key), 2 error\n");
}

static void cmd_usage(FILE *f, const struct cmd *cmd)
{
	fprintf(f, "usage: shmctl %s SEGMENT%s%s [--json]\n\n%s\n%s", cmd->name,
		*cmd->args ? " " : "", cmd->args, cmd->summary, cmd->help);
	fprintf(f, "\nexit status: 0 ok, %s2 error\n",
		!strcmp(cmd->name, "check") ? "1 problems found, " :
		!strcmp(cmd->name, "get") || !strcmp(cmd->name, "del") ?
					      "1 no such key, " :
					      "");
}

/* ---- option values -------------------------------------------------------- */

/* Option values: shg__parse_u64/_size (common/shgutil.h), as bools. */
static bool parse_u64(const char *s, uint64_t *out)
{
	return shg__parse_u64(s, out) == 0;
}

static bool parse_numa(const char *p, struct cli *c)
{
	uint64_t n;

	if (!strcmp(p, "local"))
		c->numa_policy = SHG_NUMA_LOCAL;
	else if (!strcmp(p, "interleave"))
		c->numa_policy = SHG_NUMA_INTERLEAVE;
	else if (!strncmp(p, "bind:", 5) && parse_u64(p + 5, &n) && n < 1024) {
		c->numa_policy = SHG_NUMA_BIND;
		c->numa_node = (int)n;
	} else
		return false;
	return true;
}

/* Store the value of option @bit; false if @v is not valid for it. */
static bool opt_value(struct cli *c, unsigned bit, const char *v)
{
	uint64_t n;
	char *end;

	switch (bit) {
	case OPT_JSON:
		c->json = true;
		return true;
	case OPT_INT:
		c->enc = ENC_INT;
		return true;
	case OPT_HEX:
		c->enc = ENC_HEX;
		return true;
	case OPT_BASE64:
		c->enc = ENC_BASE64;
		return true;
	case OPT_REPLACE:
		c->replace = true;
		return true;
	case OPT_KEY_INT:
		c->key_int = true;
		return true;
	case OPT_KEY_HEX:
		c->key_hex = true;
		return true;
	case OPT_KIND:
		c->kind = kind_parse(v);
		return c->kind != 0;
	case OPT_SIZE:
		return shg__parse_size(v, &c->size) == 0;
	case OPT_MODE:
		errno = 0;
		c->mode = (unsigned)strtoul(v, &end, 8);
		return !errno && end != v && !*end && c->mode &&
		       c->mode <= 0777;
	case OPT_NUMA:
		return parse_numa(v, c);
	case OPT_HUGE:
		c->huge = true;
		return true;
	case OPT_VERSION:
		return parse_u64(v, &c->version);
	case OPT_DEPTH:
		if (!parse_u64(v, &n) || n > 2000)
			return false;
		c->depth = (unsigned)n;
		return true;
	case OPT_LIMIT:
		return parse_u64(v, &c->limit);
	case OPT_COUNT:
		return parse_u64(v, &c->count) && c->count > 0;
	default: /* OPT_INTERVAL */
		c->interval = strtod(v, &end);
		return end != v && !*end && c->interval >= 0.01 &&
		       c->interval <= 86400;
	}
}

/* Option @name with its value @v (NULL for flags); sets c->seen. */
static int set_opt(struct cli *c, const char *name, const char *v)
{
	static const struct {
		const char *name;
		unsigned bit;
		bool arg;
	} opts[] = {
		{ "json", OPT_JSON, false },
		{ "int", OPT_INT, false },
		{ "hex", OPT_HEX, false },
		{ "base64", OPT_BASE64, false },
		{ "replace", OPT_REPLACE, false },
		{ "size", OPT_SIZE, true },
		{ "mode", OPT_MODE, true },
		{ "numa", OPT_NUMA, true },
		{ "version", OPT_VERSION, true },
		{ "depth", OPT_DEPTH, true },
		{ "limit", OPT_LIMIT, true },
		{ "interval", OPT_INTERVAL, true },
		{ "count", OPT_COUNT, true },
		{ "key-int", OPT_KEY_INT, false },
		{ "key-hex", OPT_KEY_HEX, false },
		{ "kind", OPT_KIND, true },
		{ "huge", OPT_HUGE, false },
	};
	size_t i;

	for (i = 0; i < sizeof(opts) / sizeof(opts[0]); i++)
		if (!strcmp(opts[i].name, name))
			break;
	if (i == sizeof(opts) / sizeof(opts[0]))
		return failf("unknown option --%s (see shmctl --help)", name);
	if (opts[i].arg != (v != NULL))
		return failf(opts[i].arg ? "option --%s needs a value" :
					   "option --%s takes no value",
			     name);
	c->seen |= opts[i].bit;
	return opt_value(c, opts[i].bit, v) ?
		       0 :
		       failf("bad value for --%s: %s", name, v);
}

/* Arguments of an option that takes a value (for "--name VALUE"). */
static bool takes_value(const char *name)
{
	static const char *const with[] = { "size",	"mode",	 "numa",
					    "version",	"depth", "limit",
					    "interval", "count", "kind" };
	size_t i;

	for (i = 0; i < sizeof(with) / sizeof(with[0]); i++)
		if (!strcmp(with[i], name))
			return true;
	return false;
}

static int positional(struct cli *c, const char *a)
{
	if (!c->cmd)
		c->cmd = a;
	else if (!c->seg_name)
		c->seg_name = a;
	else if (c->nargs < MAX_ARGS)
		c->arg[c->nargs++] = a;
	else
		return failf("too many arguments (see shmctl %s --help)",
			     c->cmd);
	return 0;
}

/* Parse argv into @c; *@help set if --help/-h was given. */
static int parse_args(int argc, char **argv, struct cli *c, bool *help)
{
	char name[32];
	const char *a, *eq, *v;
	int i, rc;

	memset(c, 0, sizeof(*c));
	*help = false;
	for (i = 1; i < argc; i++) {
		a = argv[i];
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			*help = true;
			continue;
		}
		if (strncmp(a, "--", 2) || !a[2]) {
			rc = positional(c, a);
			if (rc)
				return rc;
			continue;
		}
		eq = strchr(a + 2, '=');
		if ((size_t)((eq ? eq : a + strlen(a)) - (a + 2)) >=
		    sizeof(name))
			return failf("unknown option %s", a);
		snprintf(name, sizeof(name), "%.*s",
			 (int)((eq ? eq : a + strlen(a)) - (a + 2)), a + 2);
		v = eq ? eq + 1 : NULL;
		if (!v && takes_value(name)) {
			if (i + 1 >= argc)
				return failf("option --%s needs a value", name);
			v = argv[++i];
		}
		rc = set_opt(c, name, v);
		if (rc)
			return rc;
	}
	return 0;
}

static const char *opt_name(unsigned bit)
{
	static const char *const names[] = {
		"json",	  "size",    "mode",	"numa",	 "int",	    "hex",
		"base64", "version", "depth",	"limit", "replace", "interval",
		"count",  "key-int", "key-hex", "kind",	 "huge",
	};
	unsigned i = (unsigned)__builtin_ctz(bit);

	return i < sizeof(names) / sizeof(names[0]) ? names[i] : "?";
}

/* Options and argument counts against what @cmd accepts. */
static int check_args(const struct cli *c, const struct cmd *cmd)
{
	unsigned bad = c->seen & ~cmd->opts;
	int n = __builtin_popcount(c->seen & OPTS_VAL);

	if (bad)
		return failf("option --%s does not apply to %s (see shmctl %s "
			     "--help)",
			     opt_name(bad & -bad), cmd->name, cmd->name);
	if (n > 1)
		return failf("--int, --hex and --base64 exclude each other");
	if ((c->seen & OPTS_KEY) == OPTS_KEY)
		return failf("--key-int and --key-hex exclude each other");
	if (!c->seg_name || c->nargs < cmd->min_args ||
	    c->nargs > cmd->max_args)
		return failf("usage: shmctl %s SEGMENT%s%s", cmd->name,
			     *cmd->args ? " " : "", cmd->args);
	/* The library reads a name without a slash as a file path in the
	 * current directory, which is rarely what a user typing "demo"
	 * means: make the rule visible instead of guessing. */
	if (!strchr(c->seg_name, '/'))
		return failf("'%s' is neither a shm name nor a path: did you "
			     "mean /%s? (file paths need a slash: ./%s)",
			     c->seg_name, c->seg_name, c->seg_name);
	return 0;
}

int main(int argc, char **argv)
{
	struct shg_opts o = { .size = sizeof(o) };
	const struct cmd *cmd;
	struct shg_seg *seg = NULL;
	struct cli c;
	bool help;
	int err, rc;

	if (argc == 2 && !strcmp(argv[1], "--version")) {
		printf("shmctl (shmgraph) %s\n", PACKAGE_VERSION);
		return 0;
	}
	/* replicate has subcommands and options of its own. */
	if (argc >= 2 && !strcmp(argv[1], "replicate"))
		return shmctl_replicate(argc - 1, argv + 1);
	rc = parse_args(argc, argv, &c, &help);
	if (c.cmd && !strcmp(c.cmd, "help")) {
		cmd = find_cmd(c.seg_name);
		if (cmd)
			cmd_usage(stdout, cmd);
		else
			usage(stdout);
		return c.seg_name && !cmd ? EXIT_ERROR : 0;
	}
	cmd = find_cmd(c.cmd);
	if (help) {
		if (cmd)
			cmd_usage(stdout, cmd);
		else
			usage(stdout);
		return 0;
	}
	if (rc)
		return rc;
	if (!c.cmd) {
		usage(stderr);
		return EXIT_ERROR;
	}
	if (!cmd)
		return failf("unknown command '%s' (see shmctl --help)", c.cmd);
	rc = check_args(&c, cmd);
	if (rc)
		return rc;
	if (cmd->flags & CMD_NO_OPEN)
		return cmd->run(&c, NULL);
	/* Inspection must not change what it inspects, and recover must see
	 * (and so report) everything it releases: no command lets the open
	 * release dead processes' slots. Only when every process slot is
	 * taken by dead processes does recover need the open to take one. */
	o.flags |= SHG_OPEN_NO_RECOVER;
	o.flavor = SHG_FLAVOR_FENCE;
	err = shg_seg_open(c.seg_name, &o, &seg);
	if (err == SHG_ESLOTS && (cmd->flags & CMD_RECOVER)) {
		o.flags &= ~SHG_OPEN_NO_RECOVER;
		err = shg_seg_open(c.seg_name, &o, &seg);
	}
	if (err)
		return fail(c.seg_name, err);
	rc = cmd->run(&c, seg);
	shg_seg_close(seg);
	return rc;
}
