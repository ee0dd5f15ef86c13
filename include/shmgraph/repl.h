/* SPDX-License-Identifier: MIT */
/*
 * shmgraph/repl.h - read replicas on other hosts: the replication
 * messages (deltas and snapshot frames), their application to a replica
 * segment, and the NATS JetStream publisher and follower. Include
 * <shmgraph.h> rather than this file. Design: docs/REPLICATION.md.
 */
#ifndef SHMGRAPH_REPL_H
#define SHMGRAPH_REPL_H

#include <signal.h>

#include <shmgraph/base.h>
#include <shmgraph/graph.h>

#ifdef __cplusplus
extern "C" {
#endif

/* -------------------------------------------------------------------------
 * Messages (lib/repl_delta.c; no network). A message brings one version
 * (seq) of one root: a delta from its parent, or a snapshot frame.
 */

enum shg_repl_kind {
	SHG_REPL_DELTA = 1, /* map delta: puts and deletes from @parent */
	SHG_REPL_SNAP = 2, /* snapshot frame: the whole graph */
};

/* struct shg_repl_msg_info - what shg_repl_parse() found in a message. */
struct shg_repl_msg_info {
	enum shg_repl_kind kind;
	uint64_t seq; /* primary's sequence of the version it brings */
	uint64_t parent; /* DELTA: the version it applies to */
	uint64_t commit_ns; /* primary's commit time of @seq */
	uint32_t nput, ndel; /* DELTA: entries put and deleted */
	unsigned flags; /* SNAP: SHG_REPL_SNAP_RESET or 0 */
	size_t len; /* message length in bytes */
};

/**
 * shg_repl_delta() - encode the difference from version @base to version
 * @next of the same root as a delta message (malloc'd into *@out, *@len).
 *
 * Both versions must stay allocated for the call (pin them). The graphs
 * must be maps with u64 or bytes keys and u64, i64, f64 or bytes values,
 * of the same kinds and flags; the walk skips every subtree the two
 * versions share (same offset), so it costs O(changes x depth).
 * Context: outside read sections is fine (the pins hold the nodes).
 * Return: 0; -ENOTSUP (no delta encoding for these graphs: send a
 * snapshot frame); -EINVAL; SHG_EBADOFF, SHG_ECORRUPT; -ENOMEM.
 */
SHG_API SHG_MUST_CHECK int shg_repl_delta(struct shg_seg *seg,
					  struct shg_off base,
					  struct shg_off next, void **out,
					  size_t *len);

/* shg_repl_snap() flag: the delta chain restarts at this snapshot (the
 * next delta's parent is its seq), so a follower must apply it. Without
 * it a snapshot frame is a periodic catch-up point for followers that
 * fell behind. */
#define SHG_REPL_SNAP_RESET 0x1u

/**
 * shg_repl_snap() - encode version @ver of root @root (pinned by the
 * caller) as a snapshot frame: the snapshot file (docs/SNAPSHOT.md) with
 * the version's seq, commit time and @flags (0 or SHG_REPL_SNAP_RESET).
 * malloc'd into *@out, *@len.
 * Return: 0; -EINVAL; errors of shg_export().
 */
SHG_API SHG_MUST_CHECK int shg_repl_snap(struct shg_root *root,
					 struct shg_off ver, unsigned flags,
					 void **out, size_t *len);

/**
 * shg_repl_parse() - validate message @msg (@len bytes) completely and
 * describe it in *@info (may be NULL). A snapshot frame's inner snapshot
 * is checked by its own CRCs here and fully by import.
 * Return: 0; SHG_ETOOSMALL, SHG_EMAGIC, SHG_EVERSION, SHG_ETRUNC, -EBADMSG
 * (a CRC32C does not match), SHG_ECORRUPT (inconsistent content).
 */
SHG_API SHG_MUST_CHECK int shg_repl_parse(const void *msg, size_t len,
					  struct shg_repl_msg_info *info);

/* shg_repl_apply() flag: skip a snapshot frame (return SHG_REPL_SKIPPED)
 * unless it is a SHG_REPL_SNAP_RESET one or the replica has applied
 * nothing yet. */
#define SHG_REPL_NO_SNAP 0x1u
/* shg_repl_apply() result: the message was not applied (a duplicate, or a
 * snapshot frame skipped under SHG_REPL_NO_SNAP). Not an error. */
#define SHG_REPL_SKIPPED 1

/**
 * shg_repl_apply() - apply message @msg to the replica root @root.
 *
 * The message is validated completely first. A delta whose parent is
 * the replica's applied seq is applied in one transaction (root created
 * if missing); then the applied seq is recorded (root "shg.repl"). A
 * message whose seq is at most the applied seq is a duplicate. A
 * snapshot frame newer than the applied seq is imported (replace).
 * The root is marked as a read-only replica (shg_root_set_replica()) when
 * it is created or first applied into: local writers get SHG_EREPLICA;
 * this function's own writes pass (SHG_TXN_REPLICA, SHG_IMPORT_REPLICA).
 * On any error nothing is changed.
 * Context: outside read sections; one applier per replica root.
 * Return: 0 (applied); SHG_REPL_SKIPPED; -ESTALE (a gap: the parent is not
 * the applied seq, or the replica's graph is not the map the delta
 * expects: resync from a snapshot frame); errors of shg_repl_parse();
 * -EINVAL; errors of shg_update(), shg_import_mem().
 */
SHG_API SHG_MUST_CHECK int shg_repl_apply(struct shg_seg *seg, const char *root,
					  const void *msg, size_t len,
					  unsigned flags);

/* struct shg_repl_state - what a replica root has applied. */
struct shg_repl_state {
	uint64_t seq; /* primary's seq of the applied version (0: none) */
	uint64_t commit_ns; /* its commit time on the primary */
	uint64_t applied_ns; /* when this replica applied it */
};

/**
 * shg_repl_state() - the replication state of replica root @root.
 * Return: 0 (a zeroed state if nothing was applied), -EINVAL,
 * SHG_ECORRUPT, errors of shg_root_open().
 */
SHG_API SHG_MUST_CHECK int shg_repl_state(struct shg_seg *seg, const char *root,
					  struct shg_repl_state *out);

/* -------------------------------------------------------------------------
 * NATS JetStream publisher and follower (lib/repl_nats.c): present when
 * the library was built with libnats (shg_repl_available()).
 */

/* Whether this build has the NATS publisher and follower. */
SHG_API bool shg_repl_available(void);

/* struct shg_repl_opts - options; begin with their size (grows). */
struct shg_repl_opts {
	size_t size; /* sizeof(struct shg_repl_opts) */
	const char *url; /* NATS server URL(s), comma-separated */
	const char *stream; /* stream name (default "SHG") */
	unsigned replicas; /* stream replicas when created (default 1) */
	unsigned snap_every; /* publisher: snapshot every N (default 1000) */
	const char *durable; /* follower: consumer name (default
			      * "shg-<hostname>-<pid of none>"); one per
			      * replica segment */
	bool verbose; /* say what happens on stderr */
};

/* struct shg_repl_status - counters of a publisher or follower. */
struct shg_repl_status {
	uint64_t msgs; /* messages published or applied */
	uint64_t deltas, snaps; /* of which deltas, snapshot frames */
	uint64_t bytes; /* payload bytes published or applied */
	uint64_t skipped; /* follower: duplicates and unneeded snapshots */
	uint64_t resyncs; /* follower: snapshot imports after a gap */
	uint64_t last_seq; /* last seq published or applied (last root) */
	int last_error; /* last error (0: none) */
};

/**
 * shg_repl_stream_last() - the newest seq the stream holds for root
 * @root (deltas and snapshot frames; 0 if none) and its commit time.
 * Return: 0, -EINVAL, -ENOTSUP (no libnats), -ECONNREFUSED, -EIO,
 * errors of shg_repl_parse() (a damaged last message).
 */
SHG_API SHG_MUST_CHECK int
shg_repl_stream_last(const struct shg_repl_opts *opts, const char *root,
		     uint64_t *seq, uint64_t *commit_ns);

struct shg_repl_pub; /* a publisher of some roots of one segment */
struct shg_repl_fol; /* a follower applying into one segment */

/**
 * shg_repl_pub_open() - connect, create the stream if missing, and
 * prepare to publish roots @roots[0..@nroots) of @seg.
 * Return: 0, -EINVAL (bad name: roots must be subject tokens), -ENOTSUP
 * (built without libnats), -ECONNREFUSED (no server), -EIO, -ENOMEM.
 */
SHG_API SHG_MUST_CHECK int shg_repl_pub_open(struct shg_seg *seg,
					     const char *const *roots,
					     unsigned nroots,
					     const struct shg_repl_opts *opts,
					     struct shg_repl_pub **out);
/**
 * shg_repl_pub_step() - publish what is new on every root (at most one
 * message per root), waiting up to @timeout_ms for a commit if nothing is
 * (bounded sleep backoff). Return: the number of messages published, or
 * a negative code (-EIO: NATS failed; the same versions are retried).
 */
SHG_API SHG_MUST_CHECK int shg_repl_pub_step(struct shg_repl_pub *p,
					     unsigned timeout_ms);
/* Run shg_repl_pub_step() until *@stop. Return: 0, or the error that
 * persisted (transient NATS errors are retried). */
SHG_API SHG_MUST_CHECK int shg_repl_pub_run(struct shg_repl_pub *p,
					    volatile sig_atomic_t *stop);
SHG_API void shg_repl_pub_status(const struct shg_repl_pub *p,
				 struct shg_repl_status *out);
SHG_API int shg_repl_pub_close(struct shg_repl_pub *p);

/**
 * shg_repl_fol_open() - connect and bind a durable consumer that follows
 * roots @roots (NULL, 0: every root on the stream) into @seg. The stream
 * must exist (the publisher creates it).
 * Return: as shg_repl_pub_open(); -ENOENT (no such stream yet).
 */
SHG_API SHG_MUST_CHECK int shg_repl_fol_open(struct shg_seg *seg,
					     const char *const *roots,
					     unsigned nroots,
					     const struct shg_repl_opts *opts,
					     struct shg_repl_fol **out);
/**
 * shg_repl_fol_step() - fetch and apply the next messages (waiting up to
 * @timeout_ms), resyncing from the last snapshot frame on a gap.
 * Return: the number of messages applied, or a negative code.
 */
SHG_API SHG_MUST_CHECK int shg_repl_fol_step(struct shg_repl_fol *f,
					     unsigned timeout_ms);
SHG_API SHG_MUST_CHECK int shg_repl_fol_run(struct shg_repl_fol *f,
					    volatile sig_atomic_t *stop);
SHG_API void shg_repl_fol_status(const struct shg_repl_fol *f,
				 struct shg_repl_status *out);
SHG_API int shg_repl_fol_close(struct shg_repl_fol *f);

#ifdef __cplusplus
}
#endif
#endif /* SHMGRAPH_REPL_H */
