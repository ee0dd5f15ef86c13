// SPDX-License-Identifier: MIT
/*
 * The replication transport over NATS JetStream (docs/REPLICATION.md):
 * a publisher that turns new versions of some roots into messages, and a
 * follower that applies them into a replica segment. Built with libnats
 * (configure's HAVE_NATS); without it every entry point is -ENOTSUP.
 *
 * THEORY OF OPERATION. No state is shared between processes here beyond
 * what the segment and the stream hold; each publisher and follower is
 * used by one thread.
 *
 * Publisher. Per root it keeps a pin on the version it last published
 * (the *base*): pinned, the base and every node it reaches stay allocated,
 * so the next delta can be computed against it however far the writers
 * have moved on. A step pins the current version, encodes the delta from
 * the base (or a snapshot frame when there is no base, after a NATS
 * failure, every snap_every versions, or for graphs without a delta
 * encoding), publishes it with a Nats-Msg-Id naming root and seq, and only
 * after JetStream's acknowledgement (stored on a quorum of the stream's
 * replicas) moves the base. A publisher killed at any point leaves either
 * nothing or a stored message; a restarted one finds the last seq on the
 * stream and, unless the current version is that one, starts with a
 * snapshot frame. Waiting for commits: a publisher of one root sleeps in
 * shg_root_wait() (a futex on the root's generation word that every
 * publish wakes, from any process); one of several roots sleeps with a
 * bounded backoff (50 us doubling to 1 ms) between looks at each root's
 * generation counter (an acquire load: a generation that moved means a
 * newer version is published).
 *
 * Follower. A durable pull consumer with explicit acknowledgements; each
 * message is applied (shg_repl_apply: one txn, then the recorded seq) and
 * acknowledged only after, so a follower killed before its ack gets the
 * message again and skips it as a duplicate. A gap (-ESTALE) fetches the
 * last snapshot frame of the root directly from the stream and imports
 * it; if even that is older than the gap, the message is negatively
 * acknowledged with a delay, to come back after the publisher's next
 * snapshot.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <shmgraph.h>

bool shg_repl_available(void)
{
#ifdef HAVE_NATS
	return true;
#else
	return false;
#endif
}

#ifndef HAVE_NATS

int shg_repl_pub_open(struct shg_seg *seg, const char *const *roots,
		      unsigned nroots, const struct shg_repl_opts *opts,
		      struct shg_repl_pub **out)
{
	return -ENOTSUP;
}
int shg_repl_stream_last(const struct shg_repl_opts *opts, const char *root,
			 uint64_t *seq, uint64_t *commit_ns)
{
	return -ENOTSUP;
}
int shg_repl_pub_step(struct shg_repl_pub *p, unsigned timeout_ms)
{
	return -ENOTSUP;
}
int shg_repl_pub_run(struct shg_repl_pub *p, volatile sig_atomic_t *stop)
{
	return -ENOTSUP;
}
void shg_repl_pub_status(const struct shg_repl_pub *p,
			 struct shg_repl_status *out)
{
	memset(out, 0, sizeof(*out));
}
int shg_repl_pub_close(struct shg_repl_pub *p)
{
	return 0;
}
int shg_repl_fol_open(struct shg_seg *seg, const char *const *roots,
		      unsigned nroots, const struct shg_repl_opts *opts,
		      struct shg_repl_fol **out)
{
	return -ENOTSUP;
}
int shg_repl_fol_step(struct shg_repl_fol *f, unsigned timeout_ms)
{
	return -ENOTSUP;
}
int shg_repl_fol_run(struct shg_repl_fol *f, volatile sig_atomic_t *stop)
{
	return -ENOTSUP;
}
void shg_repl_fol_status(const struct shg_repl_fol *f,
			 struct shg_repl_status *out)
{
	memset(out, 0, sizeof(*out));
}
int shg_repl_fol_close(struct shg_repl_fol *f)
{
	return 0;
}

#else /* HAVE_NATS */

#include <nats/nats.h>

#define DEFAULT_STREAM "SHG"
#define DEFAULT_SNAP_EVERY 1000u
#define SUBJ_MAX 160
#define BACKOFF_MIN_US 50u
#define BACKOFF_MAX_US 1000u
#define FETCH_BATCH 64
#define NAK_DELAY_MS 500

struct conn {
	natsConnection *nc;
	jsCtx *js;
	char stream[64];
	bool verbose;
};

static int nats_err(natsStatus s)
{
	switch (s) {
	case NATS_OK:
		return 0;
	case NATS_NO_SERVER:
		return -ECONNREFUSED;
	case NATS_TIMEOUT:
		return -ETIMEDOUT;
	case NATS_NO_MEMORY:
		return -ENOMEM;
	case NATS_NOT_FOUND:
		return -ENOENT;
	default:
		return -EIO;
	}
}

/* A root name usable as one subject token. */
static bool token_ok(const char *s)
{
	size_t i, n = strlen(s);

	if (!n || n > SHG_ROOT_NAME_MAX)
		return false;
	for (i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		      (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '_' ||
		      s[i] == '-'))
			return false;
	return true;
}

static void conn_close(struct conn *c)
{
	if (c->js)
		jsCtx_Destroy(c->js);
	if (c->nc)
		natsConnection_Destroy(c->nc);
	memset(c, 0, sizeof(*c));
}

/* A comma-separated list of server URLs, tried in order. */
static natsStatus set_servers(natsOptions *no, const char *list)
{
	const char *srv[16];
	char *copy, *t, *save = NULL;
	int n = 0;
	natsStatus s;

	copy = strdup(list);
	if (!copy)
		return NATS_NO_MEMORY;
	for (t = strtok_r(copy, ",", &save); t && n < 16;
	     t = strtok_r(NULL, ",", &save))
		srv[n++] = t;
	s = n ? natsOptions_SetServers(no, srv, n) : NATS_INVALID_ARG;
	if (s == NATS_OK)
		s = natsOptions_SetNoRandomize(no, true);
	free(copy);
	return s;
}

/* Connect (retrying reconnects for ever) and make sure the stream exists. */
static int conn_open(struct conn *c, const struct shg_repl_opts *o, bool create)
{
	const char *subj[1];
	char all[80];
	natsOptions *no = NULL;
	jsStreamConfig cfg;
	jsStreamInfo *si = NULL;
	jsOptions jo;
	jsErrCode je = 0;
	natsStatus s;

	memset(c, 0, sizeof(*c));
	snprintf(c->stream, sizeof(c->stream), "%s",
		 o->stream ? o->stream : DEFAULT_STREAM);
	if (!token_ok(c->stream))
		return -EINVAL;
	c->verbose = o->verbose;
	s = natsOptions_Create(&no);
	if (s == NATS_OK)
		s = set_servers(no, o->url ? o->url : NATS_DEFAULT_URL);
	if (s == NATS_OK)
		s = natsOptions_SetMaxReconnect(no, -1);
	if (s == NATS_OK)
		s = natsOptions_SetReconnectWait(no, 100);
	if (s == NATS_OK)
		s = natsOptions_SetTimeout(no, 2000);
	if (s == NATS_OK)
		s = natsConnection_Connect(&c->nc, no);
	natsOptions_Destroy(no);
	if (s == NATS_OK) {
		jsOptions_Init(&jo);
		jo.Wait = 5000;
		s = natsConnection_JetStream(&c->js, c->nc, &jo);
	}
	if (s == NATS_OK)
		s = js_GetStreamInfo(&si, c->js, c->stream, NULL, &je);
	if (s == NATS_NOT_FOUND && create) {
		snprintf(all, sizeof(all), "%s.>", c->stream);
		subj[0] = all;
		jsStreamConfig_Init(&cfg);
		cfg.Name = c->stream;
		cfg.Subjects = subj;
		cfg.SubjectsLen = 1;
		cfg.Storage = js_FileStorage;
		cfg.Replicas = o->replicas ? o->replicas : 1;
		cfg.Duplicates = 120ll * 1000000000ll;
		s = js_AddStream(&si, c->js, &cfg, NULL, &je);
		/* Another publisher created it meanwhile: fine. */
		if (s != NATS_OK && je == JSStreamNameExistErr)
			s = NATS_OK;
	}
	if (si)
		jsStreamInfo_Destroy(si);
	if (s != NATS_OK) {
		if (c->verbose)
			fprintf(stderr, "repl: nats: %s (%d)\n",
				natsStatus_GetText(s), (int)je);
		conn_close(c);
		return nats_err(s);
	}
	return 0;
}

/* The last message on @subj, or NULL; its seq in *@seq. */
static int last_msg(struct conn *c, const char *subj, natsMsg **out,
		    uint64_t *seq)
{
	struct shg_repl_msg_info mi;
	jsErrCode je = 0;
	natsStatus s;
	int err;

	*out = NULL;
	*seq = 0;
	s = js_GetLastMsg(out, c->js, c->stream, subj, NULL, &je);
	if (s == NATS_NOT_FOUND)
		return 0;
	if (s != NATS_OK)
		return nats_err(s);
	err = shg_repl_parse(natsMsg_GetData(*out),
			     (size_t)natsMsg_GetDataLength(*out), &mi);
	if (err) {
		/* A damaged last message tells nothing: as if none. */
		fprintf(stderr, "repl: last message on %s refused: %s\n", subj,
			shg_strerror(err));
		natsMsg_Destroy(*out);
		*out = NULL;
		return 0;
	}
	*seq = mi.seq;
	return 0;
}

int shg_repl_stream_last(const struct shg_repl_opts *opts, const char *root,
			 uint64_t *seq, uint64_t *commit_ns)
{
	static const char *const kinds[] = { "v", "snap" };
	struct shg_repl_msg_info mi;
	char subj[SUBJ_MAX];
	struct conn c;
	uint64_t s;
	natsMsg *m;
	unsigned i;
	int err;

	if (!opts || opts->size < sizeof(*opts) || !root || !token_ok(root) ||
	    !seq || !commit_ns)
		return -EINVAL;
	*seq = 0;
	*commit_ns = 0;
	err = conn_open(&c, opts, false);
	for (i = 0; !err && i < 2; i++) {
		snprintf(subj, sizeof(subj), "%s.%s.%s", c.stream, root,
			 kinds[i]);
		err = last_msg(&c, subj, &m, &s);
		if (!err && m && s > *seq &&
		    !shg_repl_parse(natsMsg_GetData(m),
				    (size_t)natsMsg_GetDataLength(m), &mi)) {
			*seq = s;
			*commit_ns = mi.commit_ns;
		}
		if (m)
			natsMsg_Destroy(m);
	}
	conn_close(&c); /* a failed conn_open() left it zeroed */
	return err;
}

/* ========================================================================
 * Publisher
 * ======================================================================== */

struct proot {
	char name[SHG_ROOT_NAME_MAX + 1];
	struct shg_root *r;
	struct shg_pin *base; /* the last version published, pinned */
	uint64_t base_seq;
	uint64_t gen; /* root generation at the last look */
	unsigned since_snap;
	bool need_snap;
};

struct shg_repl_pub {
	struct shg_seg *seg;
	struct conn c;
	unsigned snap_every;
	unsigned nroots;
	unsigned backoff_us;
	struct shg_repl_status st;
	struct proot pr[];
};

static int publish(struct shg_repl_pub *p, struct proot *pr, bool snap,
		   uint64_t seq, const void *data, size_t len)
{
	char subj[SUBJ_MAX], id[SUBJ_MAX];
	jsPubAck *pa = NULL;
	jsPubOptions po;
	jsErrCode je = 0;
	natsStatus s;

	if (len > INT32_MAX)
		return -EFBIG;
	snprintf(subj, sizeof(subj), "%s.%s.%s", p->c.stream, pr->name,
		 snap ? "snap" : "v");
	snprintf(id, sizeof(id), "%s:%s%llu", pr->name, snap ? "s" : "",
		 (unsigned long long)seq);
	jsPubOptions_Init(&po);
	po.MsgId = id;
	po.MaxWait = 5000;
	s = js_Publish(&pa, p->c.js, subj, data, (int)len, &po, &je);
	if (pa)
		jsPubAck_Destroy(pa);
	if (s != NATS_OK) {
		if (p->c.verbose)
			fprintf(stderr, "repl: publish %s: %s (%d)\n", id,
				natsStatus_GetText(s), (int)je);
		return nats_err(s);
	}
	p->st.msgs++;
	p->st.bytes += len;
	if (snap)
		p->st.snaps++;
	else
		p->st.deltas++;
	p->st.last_seq = seq;
	return 0;
}

/* Publish the current version of @pr if it is new. 1: published. */
static int pub_root(struct shg_repl_pub *p, struct proot *pr)
{
	struct shg_version_info vi;
	struct shg_pin *cur = NULL;
	void *msg = NULL;
	size_t len = 0;
	bool snap;
	int err;

	pr->gen = shg_root_generation(pr->r);
	err = shg_pin_current(pr->r, &cur);
	if (err == -ENOENT)
		return 0; /* never committed */
	if (!err)
		err = shg_version_info(p->seg, shg_pin_version(cur), &vi);
	if (err)
		goto out;
	if (pr->base && vi.seq == pr->base_seq)
		goto out; /* nothing new */
	snap = pr->need_snap || !pr->base;
	if (!snap) {
		err = shg_repl_delta(p->seg, shg_pin_version(pr->base),
				     shg_pin_version(cur), &msg, &len);
		if (err == -ENOTSUP)
			snap = true;
		else if (!err)
			err = publish(p, pr, false, vi.seq, msg, len);
	}
	if (!err && !snap && ++pr->since_snap >= p->snap_every)
		snap = true;
	if (!err && snap) {
		/* Only a periodic snapshot follows its own delta: any other
		 * restarts the chain, and followers must apply it. */
		bool reset = !msg;

		free(msg);
		msg = NULL;
		err = shg_repl_snap(pr->r, shg_pin_version(cur),
				    reset ? SHG_REPL_SNAP_RESET : 0, &msg,
				    &len);
		if (!err)
			err = publish(p, pr, true, vi.seq, msg, len);
		if (!err)
			pr->since_snap = 0;
	}
	if (err) {
		/* A message may have been stored without our hearing of it:
		 * start again from a snapshot, which any follower can use. */
		pr->need_snap = true;
		goto out;
	}
	if (pr->base)
		shg_unpin(pr->base);
	pr->base = cur;
	pr->base_seq = vi.seq;
	pr->need_snap = false;
	cur = NULL;
	err = 1;
out:
	free(msg);
	if (cur)
		shg_unpin(cur);
	if (err < 0)
		p->st.last_error = err;
	return err;
}

int shg_repl_pub_open(struct shg_seg *seg, const char *const *roots,
		      unsigned nroots, const struct shg_repl_opts *opts,
		      struct shg_repl_pub **out)
{
	struct shg_version_info vi;
	struct shg_repl_pub *p;
	struct shg_pin *cur;
	char subj[SUBJ_MAX];
	uint64_t sv, ss;
	natsMsg *m;
	unsigned i;
	int err;

	if (!seg || !roots || !nroots || !opts || opts->size < sizeof(*opts) ||
	    !out)
		return -EINVAL;
	for (i = 0; i < nroots; i++)
		if (!roots[i] || !token_ok(roots[i]))
			return -EINVAL;
	p = calloc(1, sizeof(*p) + nroots * sizeof(p->pr[0]));
	if (!p)
		return -ENOMEM;
	p->seg = seg;
	p->snap_every = opts->snap_every ? opts->snap_every :
					   DEFAULT_SNAP_EVERY;
	err = conn_open(&p->c, opts, true);
	for (i = 0; !err && i < nroots; i++) {
		struct proot *pr = &p->pr[p->nroots];

		snprintf(pr->name, sizeof(pr->name), "%s", roots[i]);
		err = shg_root_open(seg, roots[i], &pr->r);
		if (err)
			break;
		p->nroots++;
		/* Where the stream stands: the last seq published. */
		snprintf(subj, sizeof(subj), "%s.%s.v", p->c.stream, pr->name);
		err = last_msg(&p->c, subj, &m, &sv);
		if (m)
			natsMsg_Destroy(m);
		snprintf(subj, sizeof(subj), "%s.%s.snap", p->c.stream,
			 pr->name);
		if (!err)
			err = last_msg(&p->c, subj, &m, &ss);
		if (m)
			natsMsg_Destroy(m);
		if (err)
			break;
		sv = sv > ss ? sv : ss;
		pr->need_snap = true;
		if (shg_pin_current(pr->r, &cur))
			continue;
		if (sv && !shg_version_info(seg, shg_pin_version(cur), &vi) &&
		    vi.seq == sv) {
			/* The stream has the current version: continue
			 * from it, no snapshot needed. */
			pr->base = cur;
			pr->base_seq = sv;
			pr->need_snap = false;
			continue;
		}
		if (sv && p->c.verbose)
			fprintf(stderr,
				"repl: %s: the stream ends at seq %llu, "
				"which is no longer in the segment: "
				"publishing a snapshot\n",
				pr->name, (unsigned long long)sv);
		shg_unpin(cur);
	}
	if (err) {
		shg_repl_pub_close(p);
		return err;
	}
	p->backoff_us = BACKOFF_MIN_US;
	*out = p;
	return 0;
}

int shg_repl_pub_step(struct shg_repl_pub *p, unsigned timeout_ms)
{
	struct timespec t0, t1, ts;
	unsigned i;
	int n, err = 0, first = 0;
	uint64_t waited_us;

	if (!p)
		return -EINVAL;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		n = 0;
		for (i = 0; i < p->nroots; i++) {
			err = pub_root(p, &p->pr[i]);
			if (err < 0 && !first)
				first = err;
			if (err > 0)
				n++;
		}
		if (n || first) {
			p->backoff_us = BACKOFF_MIN_US;
			return n ? n : first;
		}
		/* Idle: sleep, then look at the generations again. */
		for (;;) {
			clock_gettime(CLOCK_MONOTONIC, &t1);
			waited_us =
				(uint64_t)(t1.tv_sec - t0.tv_sec) * 1000000 +
				(uint64_t)(t1.tv_nsec - t0.tv_nsec) / 1000;
			if (waited_us >= (uint64_t)timeout_ms * 1000)
				return 0;
			if (p->nroots == 1) {
				/* 0 or not (-ETIMEDOUT, -EINTR: the loop
				 * decides; -ENOENT: the next step reports),
				 * look at the roots again. */
				int w = shg_root_wait(
					p->pr[0].r, p->pr[0].gen,
					(int)(timeout_ms - waited_us / 1000));

				(void)w;
				break;
			}
			ts.tv_sec = 0;
			ts.tv_nsec = (long)p->backoff_us * 1000;
			nanosleep(&ts, NULL);
			if (p->backoff_us < BACKOFF_MAX_US)
				p->backoff_us *= 2;
			for (i = 0; i < p->nroots; i++)
				if (shg_root_generation(p->pr[i].r) !=
				    p->pr[i].gen)
					break;
			if (i < p->nroots)
				break;
		}
	}
}

int shg_repl_pub_run(struct shg_repl_pub *p, volatile sig_atomic_t *stop)
{
	int err;

	while (!stop || !*stop) {
		err = shg_repl_pub_step(p, 200);
		if (err < 0 && err != -EIO && err != -ETIMEDOUT &&
		    err != -ECONNREFUSED && err != -ENOENT)
			return err;
		if (err < 0)
			usleep(100000); /* NATS unavailable: retry */
	}
	return 0;
}

void shg_repl_pub_status(const struct shg_repl_pub *p,
			 struct shg_repl_status *out)
{
	*out = p->st;
}

int shg_repl_pub_close(struct shg_repl_pub *p)
{
	unsigned i;

	if (!p)
		return 0;
	for (i = 0; i < p->nroots; i++) {
		if (p->pr[i].base)
			shg_unpin(p->pr[i].base);
		shg_root_close(p->pr[i].r);
	}
	conn_close(&p->c);
	free(p);
	return 0;
}

/* ========================================================================
 * Follower
 * ======================================================================== */

struct shg_repl_fol {
	struct shg_seg *seg;
	struct conn c;
	natsSubscription *sub;
	char **roots; /* the roots followed (NULL: all) */
	unsigned nroots;
	struct shg_repl_status st;
};

static bool followed(const struct shg_repl_fol *f, const char *root)
{
	unsigned i;

	if (!f->nroots)
		return true;
	for (i = 0; i < f->nroots; i++)
		if (!strcmp(f->roots[i], root))
			return true;
	return false;
}

/* Import the last snapshot frame of @root if it is newer. */
static int resync(struct shg_repl_fol *f, const char *root)
{
	char subj[SUBJ_MAX];
	uint64_t seq;
	natsMsg *m;
	int err;

	snprintf(subj, sizeof(subj), "%s.%s.snap", f->c.stream, root);
	err = last_msg(&f->c, subj, &m, &seq);
	if (err || !m)
		return err ? err : -ESTALE;
	err = shg_repl_apply(f->seg, root, natsMsg_GetData(m),
			     (size_t)natsMsg_GetDataLength(m), 0);
	if (!err) {
		f->st.resyncs++;
		f->st.snaps++;
		if (f->c.verbose)
			fprintf(stderr,
				"repl: %s: resynced from snapshot %llu\n", root,
				(unsigned long long)seq);
	}
	natsMsg_Destroy(m);
	return err == SHG_REPL_SKIPPED ? 0 : err;
}

/* Apply one message. 0: done (ack it); 1: retry later (nak); <0: error. */
static int fol_msg(struct shg_repl_fol *f, natsMsg *m)
{
	const char *subj = natsMsg_GetSubject(m);
	const void *data = natsMsg_GetData(m);
	size_t len = (size_t)natsMsg_GetDataLength(m);
	size_t sl = strlen(f->c.stream);
	char root[SHG_ROOT_NAME_MAX + 1];
	const char *a, *b;
	int err;

	if (strncmp(subj, f->c.stream, sl) || subj[sl] != '.')
		return 0;
	a = subj + sl + 1;
	b = strchr(a, '.');
	if (!b || (size_t)(b - a) > SHG_ROOT_NAME_MAX)
		return 0;
	memcpy(root, a, (size_t)(b - a));
	root[b - a] = 0;
	if (!followed(f, root))
		return 0;
	err = shg_repl_apply(f->seg, root, data, len, SHG_REPL_NO_SNAP);
	if (err < 0 && err != -ESTALE && shg_repl_parse(data, len, NULL)) {
		/* Corrupt: refused, nothing changed. Dropped (it can never
		 * apply); the last snapshot puts the replica right, or, if
		 * it is older, the next deltas wait for a newer one. */
		fprintf(stderr, "repl: %s: message refused: %s; resyncing\n",
			subj, shg_strerror(err));
		f->st.last_error = err;
		err = resync(f, root);
		(void)err;
		return 0;
	}
	if (err == -ESTALE) {
		err = resync(f, root);
		if (!err)
			err = shg_repl_apply(f->seg, root, data, len,
					     SHG_REPL_NO_SNAP);
		if (err == -ESTALE)
			return 1; /* wait for a newer snapshot */
	}
	if (err == SHG_REPL_SKIPPED) {
		f->st.skipped++;
		return 0;
	}
	if (err < 0) {
		f->st.last_error = err;
		return err;
	}
	f->st.msgs++;
	f->st.bytes += len;
	if (!memcmp(data, "SHGDELT", 7))
		f->st.deltas++;
	else
		f->st.snaps++;
	{
		struct shg_repl_msg_info mi;

		if (!shg_repl_parse(data, len, &mi))
			f->st.last_seq = mi.seq;
	}
	return 0;
}

int shg_repl_fol_open(struct shg_seg *seg, const char *const *roots,
		      unsigned nroots, const struct shg_repl_opts *opts,
		      struct shg_repl_fol **out)
{
	struct shg_repl_fol *f;
	char subj[SUBJ_MAX];
	jsSubOptions so;
	jsErrCode je = 0;
	natsStatus s;
	unsigned i;
	int err;

	if (!seg || (nroots && !roots) || !opts || opts->size < sizeof(*opts) ||
	    !out)
		return -EINVAL;
	for (i = 0; i < nroots; i++)
		if (!roots[i] || !token_ok(roots[i]))
			return -EINVAL;
	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	f->seg = seg;
	if (nroots) {
		f->roots = calloc(nroots, sizeof(*f->roots));
		if (!f->roots) {
			free(f);
			return -ENOMEM;
		}
		for (i = 0; i < nroots; i++)
			if ((f->roots[f->nroots] = strdup(roots[i])))
				f->nroots++;
		if (f->nroots < nroots) {
			shg_repl_fol_close(f);
			return -ENOMEM;
		}
	}
	/* The publisher creates the stream, with its replicas. */
	err = conn_open(&f->c, opts, false);
	if (err) {
		shg_repl_fol_close(f);
		return err;
	}
	if (nroots == 1)
		snprintf(subj, sizeof(subj), "%s.%s.>", f->c.stream, roots[0]);
	else
		snprintf(subj, sizeof(subj), "%s.>", f->c.stream);
	jsSubOptions_Init(&so);
	so.Stream = f->c.stream;
	so.Config.AckPolicy = js_AckExplicit;
	so.Config.DeliverPolicy = js_DeliverAll;
	so.Config.AckWait = 30ll * 1000000000ll;
	so.Config.MaxAckPending = 1024;
	s = js_PullSubscribe(&f->sub, f->c.js, subj,
			     opts->durable ? opts->durable : "shg-follower",
			     NULL, &so, &je);
	if (s != NATS_OK) {
		if (opts->verbose)
			fprintf(stderr, "repl: subscribe: %s (%d)\n",
				natsStatus_GetText(s), (int)je);
		shg_repl_fol_close(f);
		return nats_err(s);
	}
	*out = f;
	return 0;
}

int shg_repl_fol_step(struct shg_repl_fol *f, unsigned timeout_ms)
{
	natsMsgList list = { 0 };
	jsErrCode je = 0;
	natsStatus s;
	int i, r, n = 0, err = 0;
	bool hold = false;

	if (!f)
		return -EINVAL;
	s = natsSubscription_Fetch(&list, f->sub, FETCH_BATCH,
				   timeout_ms ? timeout_ms : 1, &je);
	if (s == NATS_TIMEOUT)
		return 0;
	if (s != NATS_OK)
		return nats_err(s);
	for (i = 0; i < list.Count; i++) {
		natsMsg *m = list.Msgs[i];

		/* Once one message waits, the rest of the batch waits too:
		 * they come back in order after it. */
		r = hold ? 1 : fol_msg(f, m);
		if (r == 0) {
			natsMsg_Ack(m, NULL);
			n++;
		} else {
			natsMsg_NakWithDelay(m, NAK_DELAY_MS, NULL);
			hold = true;
			if (r < 0 && !err)
				err = r;
		}
	}
	natsMsgList_Destroy(&list);
	return err ? err : n;
}

int shg_repl_fol_run(struct shg_repl_fol *f, volatile sig_atomic_t *stop)
{
	int err;

	while (!stop || !*stop) {
		err = shg_repl_fol_step(f, 200);
		if (err < 0) {
			if (f->c.verbose)
				fprintf(stderr, "repl: follow: %s\n",
					shg_strerror(err));
			usleep(100000); /* retried: NATS or a full segment */
		}
	}
	return 0;
}

void shg_repl_fol_status(const struct shg_repl_fol *f,
			 struct shg_repl_status *out)
{
	*out = f->st;
}

int shg_repl_fol_close(struct shg_repl_fol *f)
{
	unsigned i;

	if (!f)
		return 0;
	if (f->sub)
		natsSubscription_Destroy(f->sub);
	conn_close(&f->c);
	for (i = 0; i < f->nroots; i++)
		free(f->roots[i]);
	free(f->roots);
	free(f);
	return 0;
}

#endif /* HAVE_NATS */
