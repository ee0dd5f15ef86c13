/* SPDX-License-Identifier: MIT */
/*
 * shmctl segment commands: create, destroy, info, roots, readers, stats,
 * check, recover.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shmctl.h"

int cmd_create(struct cli *c, struct shg_seg *unused)
{
	struct shg_opts o = { .size = sizeof(o) };
	struct shg_seg *seg;
	char b[32];
	int err;

	(void)unused;
	o.capacity = c->size;
	o.mode = c->mode;
	o.numa_policy = c->numa_policy;
	o.numa_node = c->numa_node;
	if (c->huge)
		o.flags |= SHG_OPEN_HUGE;
	err = shg_seg_create(c->seg_name, &o, &seg);
	if (err == -EINVAL && c->size &&
	    (c->size < (4ull << 20) || c->size > (1ull << 40) ||
	     c->size % (64u << 10)))
		return failf("--size %" PRIu64 ": a segment holds 4 MiB to 1 "
			     "TiB, in multiples of 64 KiB",
			     c->size);
	if (err)
		return fail(c->seg_name, err);
	if (c->json) {
		printf("{\"segment\":");
		shg__json_str(stdout, c->seg_name);
		printf(",\"capacity\":%" PRIu64 ",\"huge\":%s}\n",
		       shg_seg_capacity(seg), c->huge ? "true" : "false");
	} else {
		printf("created %s (capacity %s%s)\n", c->seg_name,
		       shg__fmt_bytes(shg_seg_capacity(seg), b, sizeof(b)),
		       c->huge ? ", huge pages" : "");
	}
	shg_seg_close(seg);
	return 0;
}

int cmd_destroy(struct cli *c, struct shg_seg *unused)
{
	int err = shg_seg_unlink(c->seg_name);

	(void)unused;
	if (err)
		return fail(c->seg_name, err);
	if (c->json)
		printf("{\"destroyed\":true}\n");
	else
		printf("destroyed %s\n", c->seg_name);
	return 0;
}

/*
 * The figures several commands print, each defined once (shmctl(1),
 * FIGURES): @used and @free from the allocator's span counters, the
 * processes and threads of the segment other than this shmctl.
 */
struct figures {
	uint64_t used; /* allocated blocks, as the span counters say */
	uint64_t free; /* capacity - used */
	uint32_t procs; /* process slots in use (live or dead), not ours */
	uint32_t threads; /* thread slots in use (live or dead), not ours */
};

static int figures_get(struct shg_seg *seg, struct shg_stats *st,
		       struct figures *f)
{
	struct shg_reader_info *ri;
	uint32_t own = 0;
	int i, n, err = shg_stats_get(seg, st);

	if (err)
		return err;
	n = fetch_list(seg, list_readers, sizeof(*ri), (void **)&ri);
	if (n < 0)
		return n;
	for (i = 0; i < n; i++)
		own += ri[i].pid == getpid() && !ri[i].other_pidns;
	free(ri);
	f->used = st->small_used_bytes + st->large_used_bytes;
	f->free = st->capacity > f->used ? st->capacity - f->used : 0;
	/* Opening the segment took a process slot: ours is always there. */
	f->procs = st->procs ? st->procs - 1 : 0;
	f->threads = st->threads > own ? st->threads - own : 0;
	return 0;
}

static const char *huge_backing_name(int32_t b)
{
	switch (b) {
	case SHG_HUGE_TMPFS:
		return "tmpfs";
	case SHG_HUGE_COLLAPSE:
		return "collapse";
	case SHG_HUGE_HUGETLBFS:
		return "hugetlbfs";
	default:
		return "none";
	}
}

/* The "huge pages" line of info: what is mapped huge, and why. */
static void huge_line(const struct shg_huge_info *hi)
{
	char b1[32], b2[32], b3[32];

	if (hi->backing == SHG_HUGE_NONE) {
		printf("%-18s none (%s)\n", "huge pages", hi->policy);
		return;
	}
	printf("%-18s %s of %s backed (%s, %s pages%s)\n", "huge pages",
	       shg__fmt_bytes(hi->huge_bytes, b1, sizeof(b1)),
	       shg__fmt_bytes(hi->backed, b2, sizeof(b2)), hi->policy,
	       shg__fmt_bytes(hi->page_size, b3, sizeof(b3)),
	       hi->backing == SHG_HUGE_COLLAPSE ? ", by collapse on request" :
						  "");
}

int cmd_info(struct cli *c, struct shg_seg *seg)
{
	char b1[32], b2[32], b3[32], b4[32];
	struct shg_huge_info hi = { .size = sizeof(hi) };
	struct shg_stats st;
	struct figures fg;
	int err = figures_get(seg, &st, &fg);

	if (err)
		return fail("stats", err);
	err = shg_seg_huge(seg, &hi);
	if (err)
		return fail("huge pages", err);
	if (c->json) {
		printf("{\"segment\":");
		shg__json_str(stdout, c->seg_name);
		printf(",\"format\":%u,\"capacity\":%" PRIu64
		       ",\"backed\":%" PRIu64 ",\"heap\":%" PRIu64
		       ",\"used\":%" PRIu64 ",\"free\":%" PRIu64
		       ",\"retired_pending\":%" PRIu64 ",\"epoch\":%" PRIu64
		       ",\"roots\":%u,\"processes\":%u,\"threads\":%u"
		       ",\"numa_nodes\":%u,\"flavor\":\"%s\"",
		       shg_seg_format(seg), st.capacity, st.backed,
		       st.heap_bytes, fg.used, fg.free, st.retired_bytes,
		       st.global_epoch, st.roots, fg.procs, fg.threads,
		       st.nodes,
		       shg_seg_flavor(seg) == SHG_FLAVOR_FENCE ? "fence" :
								 "membarrier");
		printf(",\"huge_backing\":\"%s\",\"huge_policy\":",
		       huge_backing_name(hi.backing));
		shg__json_str(stdout, hi.policy);
		printf(",\"huge_page_size\":%" PRIu64 ",\"huge_bytes\":%" PRIu64
		       "}\n",
		       hi.page_size, hi.huge_bytes);
		return 0;
	}
	printf("%-18s %s\n", "segment", c->seg_name);
	printf("%-18s %u\n", "format", shg_seg_format(seg));
	printf("%-18s %s\n", "capacity",
	       shg__fmt_bytes(st.capacity, b1, sizeof(b1)));
	printf("%-18s %s\n", "backed",
	       shg__fmt_bytes(st.backed, b2, sizeof(b2)));
	printf("%-18s %s\n", "used", shg__fmt_bytes(fg.used, b3, sizeof(b3)));
	printf("%-18s %s\n", "retired pending",
	       shg__fmt_bytes(st.retired_bytes, b4, sizeof(b4)));
	printf("%-18s %" PRIu64 "\n", "epoch", st.global_epoch);
	printf("%-18s %u\n", "roots", st.roots);
	printf("%-18s %u\n", "processes", fg.procs);
	printf("%-18s %u\n", "threads", fg.threads);
	printf("%-18s %u\n", "numa nodes", st.nodes);
	huge_line(&hi);
	return 0;
}

/* What a root's current version holds (all zero if it has none). */
struct root_ver {
	bool has; /* a version exists */
	uint64_t seq;
	uint64_t bytes;
	uint64_t nodes;
	unsigned pins; /* pins of this root's versions (detached ones too) */
	char type[SHG_TYPE_NAME_MAX + 1]; /* of the graph's root node */
};

/* Name of the type of node @n ("-" for null); read section held. */
static void node_type_name(struct shg_seg *seg, struct shg_off n, char *out,
			   size_t len)
{
	struct shg_type_info *ti;
	uint32_t id;
	int err;

	snprintf(out, len, "-");
	if (shg_off_is_null(n))
		return;
	id = shg_node_type(seg, n, &err);
	if (!id) {
		snprintf(out, len, "(bad)");
		return;
	}
	if (id == SHG_TYPE_MAP || id == SHG_TYPE_VEC || id == SHG_TYPE_BYTES) {
		snprintf(out, len, "%s",
			 id == SHG_TYPE_MAP ? "map" :
			 id == SHG_TYPE_VEC ? "vector" :
					      "bytes");
		return;
	}
	ti = malloc(sizeof(*ti));
	if (ti && !shg_type_info(seg, id, ti))
		snprintf(out, len, "%s", ti->name);
	free(ti);
}

static void root_version(struct shg_seg *seg, const char *name,
			 struct root_ver *rv)
{
	struct shg_version_info vi;
	struct shg_root *r;

	memset(rv, 0, sizeof(*rv));
	if (shg_root_open(seg, name, &r))
		return;
	if (!shg_read_lock(seg)) {
		if (!shg_version_info(seg, shg_version_current(r), &vi)) {
			rv->has = true;
			rv->seq = vi.seq;
			rv->bytes = vi.bytes;
			rv->nodes = vi.nodes;
			node_type_name(seg, vi.node, rv->type,
				       sizeof(rv->type));
		}
		shg_read_unlock(seg);
	}
	shg_root_close(r);
}

static void root_row(struct cli *c, struct shg_seg *seg,
		     const struct shg_root_info *ri, unsigned pins, bool first)
{
	char b1[32], b2[32];
	struct root_ver rv;

	root_version(seg, ri->name, &rv);
	rv.pins = pins;
	if (c->json) {
		printf("%s{\"name\":", first ? "" : ",");
		shg__json_str(stdout, ri->name);
		printf(",\"slot\":%u,\"generation\":%" PRIu64
		       ",\"holds\":%u,\"removed\":%s,\"replica\":%s"
		       ",\"value\":%" PRIu64 ",\"last_publish_ns\":%" PRIu64,
		       ri->slot, ri->generation, ri->holds,
		       ri->removed ? "true" : "false",
		       ri->replica ? "true" : "false", ri->value.v,
		       ri->last_publish_ns);
		if (rv.has) {
			printf(",\"seq\":%" PRIu64 ",\"bytes\":%" PRIu64
			       ",\"nodes\":%" PRIu64 ",\"type\":",
			       rv.seq, rv.bytes, rv.nodes);
			shg__json_str(stdout, rv.type);
		} else {
			printf(",\"seq\":null,\"bytes\":null,\"nodes\":null,"
			       "\"type\":null");
		}
		printf(",\"pins\":%u}", rv.pins);
		return;
	}
	printf("%-20s %5u %8" PRIu64 " %6" PRIu64 " %-12s %8" PRIu64
	       " %10s %5u %4u %-7s %s\n",
	       ri->name, ri->slot, rv.seq, ri->generation,
	       rv.has ? rv.type : "-", rv.nodes,
	       rv.has ? shg__fmt_bytes(rv.bytes, b1, sizeof(b1)) : "-",
	       ri->holds, rv.pins,
	       ri->removed ? "removed" :
	       ri->replica ? "replica" :
			     "live",
	       fmt_age(ri->last_publish_ns, b2, sizeof(b2)));
}

/* Pins of root slot @slot in @pi[0..n). */
static unsigned pins_of(const struct shg_pin_info *pi, int n, uint32_t slot)
{
	unsigned k = 0;
	int i;

	for (i = 0; i < n; i++)
		k += pi[i].root == slot;
	return k;
}

int cmd_roots(struct cli *c, struct shg_seg *seg)
{
	struct shg_root_info *ri;
	struct shg_pin_info *pi = NULL;
	int i, np, got = fetch_list(seg, list_roots, sizeof(*ri), (void **)&ri);

	if (got < 0)
		return fail("roots", got);
	np = fetch_list(seg, list_pins, sizeof(*pi), (void **)&pi);
	if (np < 0) {
		free(ri);
		return fail("roots: pins", np);
	}
	if (c->json)
		printf("{\"roots\":[");
	else
		printf("%-20s %5s %8s %6s %-12s %8s %10s %5s %4s %-7s %s\n",
		       "NAME", "SLOT", "SEQ", "GEN", "TYPE", "NODES", "BYTES",
		       "HOLDS", "PINS", "STATE", "LAST COMMIT");
	for (i = 0; i < got; i++)
		root_row(c, seg, &ri[i],
			 ri[i].removed ? 0 : pins_of(pi, np, ri[i].slot),
			 i == 0);
	if (c->json)
		printf("]}\n");
	else
		repl_roots_note(seg);
	free(ri);
	free(pi);
	return 0;
}

static void reader_row(struct cli *c, const struct shg_reader_info *r,
		       bool first)
{
	const char *fl = r->flavor == SHG_FLAVOR_FENCE ? "fence" : "membarrier";

	if (c->json)
		printf("%s{\"slot\":%u,\"pid\":%d,\"tid\":%d,"
		       "\"other_pidns\":%s,\"alive\":%s,\"flavor\":\"%s\","
		       "\"in_section\":%s,\"epoch\":%" PRIu64
		       ",\"epoch_lag\":%" PRIu64 ",\"blocked_ns\":%" PRIu64
		       ",\"held_bytes\":%" PRIu64 "}",
		       first ? "" : ",", r->slot, (int)r->pid, (int)r->tid,
		       r->other_pidns ? "true" : "false",
		       r->alive ? "true" : "false", fl,
		       r->in_section ? "true" : "false", r->epoch, r->epoch_lag,
		       r->blocked_ns, r->held_bytes);
	else
		/* "*": pid and tid as another PID namespace knows them */
		printf("%6u %7d%c %8d %6s %11s %8s %10" PRIu64
		       " %12.1f %12" PRIu64 "\n",
		       r->slot, (int)r->pid, r->other_pidns ? '*' : ' ',
		       (int)r->tid, r->alive ? "yes" : "DEAD", fl,
		       r->in_section ? "yes" : "no", r->epoch_lag,
		       r->blocked_ns / 1e6, r->held_bytes);
}

static void pin_row(struct cli *c, const struct shg_pin_info *p,
		    const struct root_names *rn, bool first)
{
	const char *name = p->detached ? NULL : root_name(rn, p->root);
	uint64_t lag = p->current_seq > p->seq ? p->current_seq - p->seq : 0;
	char b1[32], b2[32];

	if (c->json) {
		printf("%s{\"pid\":%d,\"alive\":%s,\"root\":", first ? "" : ",",
		       (int)p->pid, p->alive ? "true" : "false");
		if (name)
			shg__json_str(stdout, name);
		else
			printf("null");
		printf(",\"root_slot\":%u,\"detached\":%s,\"seq\":%" PRIu64
		       ",\"current_seq\":%" PRIu64 ",\"version_bytes\":%" PRIu64
		       ",\"held_bytes\":%" PRIu64 "}",
		       p->root, p->detached ? "true" : "false", p->seq,
		       p->current_seq, p->version_bytes, p->held_bytes);
		return;
	}
	printf("%8d %6s %-20s %8" PRIu64 " %8" PRIu64 " %10s %12s\n",
	       (int)p->pid, p->alive ? "yes" : "DEAD",
	       name ? name : (p->detached ? "(detached)" : "(removed)"), p->seq,
	       lag, shg__fmt_bytes(p->version_bytes, b1, sizeof(b1)),
	       shg__fmt_bytes(p->held_bytes, b2, sizeof(b2)));
}

/* Pins: who keeps which old version, and what it holds back. */
static int readers_pins(struct cli *c, struct shg_seg *seg, uint64_t *held,
			unsigned *dead)
{
	struct shg_pin_info *pi;
	struct root_names rn = { 0 };
	int i, got = fetch_list(seg, list_pins, sizeof(*pi), (void **)&pi);

	if (got < 0)
		return got;
	(void)root_names_load(seg, &rn);
	if (c->json)
		printf("],\"pins\":[");
	else if (got)
		printf("\n%8s %6s %-20s %8s %8s %10s %12s\n", "PID", "ALIVE",
		       "ROOT", "SEQ", "BEHIND", "VERSION", "HELD_BACK");
	for (i = 0; i < got; i++) {
		pin_row(c, &pi[i], &rn, i == 0);
		*held += pi[i].held_bytes;
		*dead += !pi[i].alive;
	}
	root_names_free(&rn);
	free(pi);
	return got;
}

int cmd_readers(struct cli *c, struct shg_seg *seg)
{
	struct shg_reader_info *ri;
	uint64_t stalled = 0, pinned = 0;
	unsigned dead = 0;
	char b1[32], b2[32];
	int i, n, npins, got;

	got = fetch_list(seg, list_readers, sizeof(*ri), (void **)&ri);
	if (got < 0)
		return fail("readers", got);
	if (c->json)
		printf("{\"readers\":[");
	else
		printf("%6s %8s %8s %6s %11s %8s %10s %12s %12s\n", "TSLOT",
		       "PID", "TID", "ALIVE", "FLAVOR", "SECTION", "EPOCH_LAG",
		       "BLOCKED_MS", "HELD_BYTES");
	for (i = 0, n = 0; i < got; i++) {
		/* This shmctl is not one of the segment's readers (FIGURES). */
		if (ri[i].pid == getpid() && !ri[i].other_pidns)
			continue;
		reader_row(c, &ri[i], n++ == 0);
		stalled += ri[i].held_bytes;
	}
	free(ri);
	npins = readers_pins(c, seg, &pinned, &dead);
	if (npins < 0) {
		if (c->json)
			printf("]}\n");
		return fail("readers: pins", npins);
	}
	if (c->json) {
		printf("],\"stalled_held_bytes\":%" PRIu64
		       ",\"pinned_held_bytes\":%" PRIu64 ",\"dead_pins\":%u}\n",
		       stalled, pinned, dead);
		return 0;
	}
	printf("\nheld back: %s by stalled readers, %s by %d pin(s) (%u "
	       "dead)\n",
	       shg__fmt_bytes(stalled, b1, sizeof(b1)),
	       shg__fmt_bytes(pinned, b2, sizeof(b2)), npins, dead);
	return 0;
}

static void stats_json(const struct shg_stats *st)
{
	unsigned i;

	printf("{\"heap_bytes\":%" PRIu64 ",\"free_span_bytes\":%" PRIu64
	       ",\"small_used_bytes\":%" PRIu64 ",\"large_used_bytes\":%" PRIu64
	       ",\"retired_bytes\":%" PRIu64 ",\"reclaimed_bytes\":%" PRIu64
	       ",\"reclaimed_blocks\":%" PRIu64 ",\"classes\":[",
	       st->heap_bytes, st->free_span_bytes, st->small_used_bytes,
	       st->large_used_bytes, st->retired_bytes, st->reclaimed_bytes,
	       st->reclaimed_blocks);
	for (i = 0; i < SHG_NUM_CLASSES; i++)
		printf("%s{\"size\":%u,\"spans\":%u,\"used_blocks\":%" PRIu64
		       ",\"total_blocks\":%" PRIu64 "}",
		       i ? "," : "", st->cls[i].size, st->cls[i].spans,
		       st->cls[i].used_blocks, st->cls[i].total_blocks);
	printf("],\"nodes\":[");
	for (i = 0; i < st->nodes && i < SHG_MAX_NODES; i++)
		printf("%s{\"node\":%u,\"span_bytes\":%" PRIu64
		       ",\"used_bytes\":%" PRIu64 "}",
		       i ? "," : "", i, st->node[i].span_bytes,
		       st->node[i].used_bytes);
	printf("]}\n");
}

int cmd_stats(struct cli *c, struct shg_seg *seg)
{
	struct shg_stats st;
	unsigned i;
	int err = shg_stats_get(seg, &st);

	if (err)
		return fail("stats", err);
	if (c->json) {
		stats_json(&st);
		return 0;
	}
	printf("%8s %6s %12s %12s\n", "CLASS", "SPANS", "USED_BLOCKS",
	       "TOTAL_BLOCKS");
	for (i = 0; i < SHG_NUM_CLASSES; i++)
		if (st.cls[i].spans)
			printf("%8u %6u %12" PRIu64 " %12" PRIu64 "\n",
			       st.cls[i].size, st.cls[i].spans,
			       st.cls[i].used_blocks, st.cls[i].total_blocks);
	printf("\n%6s %14s %14s\n", "NODE", "SPAN_BYTES", "USED_BYTES");
	for (i = 0; i < st.nodes && i < SHG_MAX_NODES; i++)
		printf("%6u %14" PRIu64 " %14" PRIu64 "\n", i,
		       st.node[i].span_bytes, st.node[i].used_bytes);
	printf("\nretired %" PRIu64 " bytes pending, reclaimed %" PRIu64
	       " bytes in %" PRIu64 " blocks\n",
	       st.retired_bytes, st.reclaimed_bytes, st.reclaimed_blocks);
	return 0;
}

struct problems {
	bool json;
	unsigned n;
};

static void on_problem(void *arg, int code, const char *msg)
{
	struct problems *p = arg;

	if (p->json) {
		printf("%s{\"code\":%d,\"error\":", p->n ? "," : "", code);
		shg__json_str(stdout, shg_strerror(code));
		printf(",\"message\":");
		shg__json_str(stdout, msg);
		printf("}");
	} else {
		printf("PROBLEM %s: %s\n", shg_strerror(code), msg);
	}
	p->n++;
}

#define CHECK_RUNS 5 /* problems must persist this many checks */

/*
 * shg_check on a live segment confirms what it reports (include/shmgraph/
 * inspect.h); as a second guard against a structure caught in passing,
 * problems count here only if they persist: check
 * silently until a check is clean or CHECK_RUNS - 1 have failed, then once
 * more, printing what it finds. A quiescent corrupt segment fails every
 * time; a sound live one passes one of the runs.
 */
static int check_confirmed(struct shg_seg *seg, struct problems *p,
			   struct shg_check_report *rep, int *runs)
{
	int n = 0;

	for (*runs = 1; *runs < CHECK_RUNS; ++*runs) {
		n = shg_check(seg, NULL, NULL, rep);
		if (n <= 0)
			break;
		usleep(20 * 1000);
	}
	if (n > 0) {
		if (p->json)
			printf("{\"problems\":[");
		return shg_check(seg, on_problem, p, rep);
	}
	if (p->json)
		printf("{\"problems\":["); /* closed by the caller */
	return n;
}

/*
 * The graph and pin figures of check, as roots and readers define them:
 * graphs (roots with a version), nodes and bytes of their current
 * versions (version records excluded), pins live and dead.
 */
struct graph_figures {
	uint32_t graphs;
	uint64_t nodes, bytes;
	uint32_t pins, dead_pins;
};

static int graph_figures_get(struct shg_seg *seg, struct graph_figures *g)
{
	struct shg_root_info *ri;
	struct shg_pin_info *pi;
	struct root_ver rv;
	int i, n;

	memset(g, 0, sizeof(*g));
	n = fetch_list(seg, list_roots, sizeof(*ri), (void **)&ri);
	if (n < 0)
		return n;
	for (i = 0; i < n; i++) {
		if (ri[i].removed)
			continue;
		root_version(seg, ri[i].name, &rv);
		g->graphs += rv.has;
		g->nodes += rv.nodes;
		g->bytes += rv.bytes;
	}
	free(ri);
	n = fetch_list(seg, list_pins, sizeof(*pi), (void **)&pi);
	if (n < 0)
		return n;
	g->pins = (uint32_t)n;
	for (i = 0; i < n; i++)
		g->dead_pins += !pi[i].alive;
	free(pi);
	return 0;
}

int cmd_check(struct cli *c, struct shg_seg *seg)
{
	struct problems p = { .json = c->json };
	struct shg_check_report rep;
	struct graph_figures g;
	struct shg_stats st;
	struct figures fg;
	uint64_t remote;
	char b1[32];
	int n, runs, err;

	/* Figures first: a problem found is then not in them yet. */
	err = figures_get(seg, &st, &fg);
	if (!err)
		err = graph_figures_get(seg, &g);
	if (err)
		return fail("check", err);
	n = check_confirmed(seg, &p, &rep, &runs);
	if (n < 0) {
		if (c->json)
			printf("]}\n");
		return fail("check", n);
	}
	/* The walk counts a block on its span's remote-free stack as free;
	 * the span counters (used) still count it. */
	remote = fg.used > rep.used_bytes ? fg.used - rep.used_bytes : 0;
	if (c->json) {
		printf("],\"count\":%d,\"runs\":%d,\"processes\":%u,"
		       "\"dead_procs\":%u,\"threads\":%u,\"dead_threads\":%u"
		       ",\"free_bytes\":%" PRIu64 ",\"used_bytes\":%" PRIu64
		       ",\"remote_freed_bytes\":%" PRIu64
		       ",\"retired_bytes\":%" PRIu64 ",\"graphs\":%u"
		       ",\"graph_nodes\":%" PRIu64 ",\"graph_bytes\":%" PRIu64
		       ",\"pins\":%u,\"dead_pins\":%u,\"ok\":%s}\n",
		       n, runs, fg.procs, rep.dead_procs, fg.threads,
		       rep.dead_threads, fg.free, fg.used, remote,
		       st.retired_bytes, g.graphs, g.nodes, g.bytes, g.pins,
		       g.dead_pins, n ? "false" : "true");
	} else {
		if (runs > 1)
			printf("(%s after %d checks: a live segment can show a "
			       "state in passing)\n",
			       n ? "problems confirmed" : "not confirmed",
			       runs);
		printf("%s: %d problem%s; %u graph(s), %" PRIu64
		       " node(s), %u pin(s) (%u dead); used %s; %u dead "
		       "process slot(s), %u dead thread slot(s)%s\n",
		       n ? "FAILED" : "OK", n, n == 1 ? "" : "s", g.graphs,
		       g.nodes, g.pins, g.dead_pins,
		       shg__fmt_bytes(fg.used, b1, sizeof(b1)), rep.dead_procs,
		       rep.dead_threads,
		       rep.dead_procs || rep.dead_threads ?
			       " (run recover to release them)" :
			       "");
	}
	return n ? EXIT_PROBLEMS : 0;
}

int cmd_recover(struct cli *c, struct shg_seg *seg)
{
	struct shg_recover_report r;
	int err = shg_recover(seg, &r);

	if (err)
		return fail("recover", err);
	if (c->json)
		printf("{\"procs_released\":%u,\"threads_released\":%u,"
		       "\"holds_released\":%u,\"spans_adopted\":%u,"
		       "\"retired_adopted\":%" PRIu64
		       ",\"leaked_freed\":%" PRIu64
		       ",\"sweep_error\":%s%s%s}\n",
		       r.procs_released, r.threads_released, r.holds_released,
		       r.spans_adopted, r.retired_adopted, r.leaked_freed,
		       r.sweep_err ? "\"" : "",
		       r.sweep_err ? shg_strerror(r.sweep_err) : "null",
		       r.sweep_err ? "\"" : "");
	else
		printf("released %u process slot(s), %u thread slot(s), %u "
		       "root hold(s); adopted %u span(s) and %" PRIu64
		       " retired bytes; freed %" PRIu64 " leaked bytes\n",
		       r.procs_released, r.threads_released, r.holds_released,
		       r.spans_adopted, r.retired_adopted, r.leaked_freed);
	if (!c->json && r.sweep_err)
		printf("leak sweep not finished: %s (run recover again later)\n",
		       shg_strerror(r.sweep_err));
	return 0;
}
