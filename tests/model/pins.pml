/* SPDX-License-Identifier: MIT */
/*
 * pins.pml - root CAS, retire with death sequences, pins and the held
 * list: interval-based reclamation as done by lib/txn.c (commit),
 * lib/version.c (pins, pin snapshots), shm/epoch.c (grace periods) and
 * shm/held.c (held batches), checked with SPIN.
 *
 * Memory is sequentially consistent here: grace.pml checks that the read
 * side and the grace period give the ordering this model takes for
 * granted (a scan that reads a slot 0 after a section sees everything
 * that section did). Each atomic block below is one atomic access of the
 * code, or one limbo_lock hold.
 *
 * The graph: a version record and two children (left, right). Version
 * seq s (1 = initial) has record vrec[s] and children vl[s], vr[s]; a node
 * n carries its birth seq. Commit of seq d copies one child (path copy)
 * and makes a new record; the replaced child and the base record are
 * retired with death d. A node n is in exactly the versions with
 * birth[n] <= s < death: that is what the reclaimer checks pins against.
 *
 *   Writer (shg_txn_begin .. shg_txn_commit), NC commits:
 *     pin_base: read section { base = root; claim pin record; seq; version }
 *     build: new child (birth = d), new record; CAS root base -> d
 *     retire_and_unpin: read section { retire replaced child and base
 *       record with death d; unpin base (version = 0, gen += 1) }
 *     seal: tag = fetch_add(E), link at the FIFO tail
 *   Pinner (shg_pin_current, then use, then shg_unpin):
 *     read section { v = root; claim; seq = v; version = v }; then,
 *     outside any section, dereference v's record and children; unpin.
 *   Reclaimer x NRC (reclaim(seg, ctx, true)), NPASS passes each:
 *     E0; scan slots; m; pop the head batch if tag < m (recorded);
 *     snapshot pins AFTER the scan; each entry: pinned (a pin of seq in
 *     [birth, death)) -> held list with the holder's key, else free;
 *     rescan_held: if gen != held_gen: snapshot; pop a held entry whose
 *     holder is not in it; NEW snapshot after the pop; free or hold again.
 *   At the end (all done, nothing pinned): one explicit reclaim pass
 *   must free every retired node (no node stranded on the held list:
 *   the held_gen logic).
 *
 * PROPERTIES: every dereference (inside a section, or of a pinned
 * version outside one) finds the node not freed; no node is freed twice;
 * after the final pass every retired node is freed.
 *
 * BUG VARIANTS (each must fail):
 *   -DBUG_PIN_BIRTH     the interval check ignores seq == birth
 *   -DBUG_SNAP_EARLY    the pin snapshot is taken before the slot scan
 *   -DBUG_HELD_GEN      rescan_held records the current gen as seen,
 *                       not its snapshot's (a later unpin is missed)
 * Not a bug here: unpinning the base before the retires (the code unpins
 * last so that the live leak sweep, not modelled, keeps the garbage).
 *
 * BOUNDS: one writer, one pinner, 2 pin records, one batch per commit;
 * scripts/model.sh checks NC = 2 commits with NRC = 1 reclaimer of
 * NPASS = 2 passes, and NC = 1 with NRC = 2 reclaimers of 1 pass (two
 * reclaimers racing on the held list).
 */

#ifndef NC
#define NC 2
#endif
#ifndef NRC
#define NRC 1
#endif
#ifndef NPASS
#define NPASS 2
#endif

#define NS (NC + 2) /* seqs 1..NC+1 */
#define NN (3 + 2 * NC) /* nodes */
#define NSLOT 2 /* read-side slots: 0 writer, 1 pinner */
#define NPIN 2 /* pin records: 0 writer's base pin, 1 the pinner's */

byte E = 1;
byte slot[NSLOT];
byte root = 1; /* current version seq */
byte vrec[NS];
byte vl[NS];
byte vr[NS];
byte birth[NN];
bool freed[NN];
bool retired[NN];
byte death[NN]; /* the retire entry's death (one entry per node) */

/* pin table: version 0 = not (yet) a pin; gen counts unpins */
byte pin_ver[NPIN];
byte pin_seq[NPIN];
byte gen = 0;

/* sealed FIFO: batch k holds commit k's two entries */
byte btag[NC];
byte bent[2 * NC];
byte fhead = 0;
byte ftail = 0;

/* the held list, one entry a node: holder key (the pin's seq), 0 = none */
byte hkey[NN];
byte held_gen = 0;

byte done = 0; /* processes finished */

/* read section enter / exit (SC: one atomic step each) */
#define RLOCK(i) slot[i] = E
#define RUNLOCK(i) slot[i] = 0

/* the snapshot as a bitmask of pinned seqs; gen read first */
inline snapshot(snap, sgen)
{
	sgen = gen;
	snap = 0;
	j = 0;
	do
	:: j < NPIN ->
		atomic {
			if
			:: pin_ver[j] != 0 -> snap = snap | (1 << pin_seq[j])
			:: else
			fi
		};
		j++
	:: else -> break
	od
}

/* holder: the lowest pinned seq s with birth <= s < death, else 0 */
inline holder(n, snap, h)
{
	h = 0;
	j = birth[n];
#ifdef BUG_PIN_BIRTH
	j++;
#endif
	do
	:: j < death[n] && h == 0 ->
		if
		:: snap & (1 << j) -> h = j
		:: else -> j++
		fi
	:: else -> break
	od
}

inline free_node(n)
{
	assert(!freed[n]); /* never freed twice */
	freed[n] = true
}

/* shg__finish_batch / hold_split for one entry n (recorded: ours) */
inline finish(n, snap, sgen)
{
	d_step { holder(n, snap, h) }; /* process-local */
	if
	:: h != 0 ->
		atomic { /* limbo_lock: link on the held list */
			hkey[n] = h;
			if
			:: sgen != gen -> held_gen = 255 /* held_push_locked */
			:: else
			fi
		}
	:: else -> free_node(n)
	fi
}

/* reclaim(seg, ctx, true): one pass */
#define RECLAIM_LOCALS byte m, e0, snap, sgen, k, n, h, j, popped

inline reclaim()
{

#ifdef BUG_SNAP_EARLY
	snapshot(snap, sgen);
#endif
	e0 = E;
	m = e0;
	j = 0;
	do
	:: j < NSLOT ->
		if
		:: slot[j] != 0 && slot[j] < m -> m = slot[j]
		:: else
		fi;
		j++
	:: else -> break
	od;
	atomic { /* pop_freeable (limbo_lock) */
		if
		:: fhead < ftail && btag[fhead] < m -> k = fhead; fhead++;
			popped = 1
		:: else -> popped = 0
		fi
	};
	if
	:: popped ->
#ifndef BUG_SNAP_EARLY
		snapshot(snap, sgen); /* after the scan (struct pass) */
#endif
		finish(bent[2 * k], snap, sgen);
		finish(bent[2 * k + 1], snap, sgen)
	:: else
	fi;
	/* shg__rescan_held */
	if
	:: gen != held_gen ->
		snapshot(snap, sgen);
		n = 0;
		do
		:: n < NN ->
			atomic { /* pop_held: a held entry whose pin is gone */
				if
				:: hkey[n] != 0 && !(snap & (1 << hkey[n])) ->
					hkey[n] = 0; popped = 1
				:: else -> popped = 0
				fi
			};
			if
			:: popped ->
				snapshot(snap, sgen); /* new, after the pop */
				finish(n, snap, sgen)
			:: else
			fi;
			n++
		:: else -> break
		od;
#ifdef BUG_HELD_GEN
		held_gen = gen /* the current gen, not the snapshot's */
#else
		atomic { /* pop_held's end: nothing left to pop */
			j = 0;
			do
			:: j < NN && (hkey[j] == 0 || (snap & (1 << hkey[j])))
				-> j++
			:: j < NN && hkey[j] != 0 && !(snap & (1 << hkey[j]))
				-> break
			:: j == NN -> held_gen = sgen; break
			od
		}
#endif
	:: else
	fi
}

/* every node of version v is allocated */
inline deref(v)
{
	assert(!freed[vrec[v]] && !freed[vl[v]] && !freed[vr[v]])
}

proctype Writer()
{
	byte c = 0, base, d, nrec, nch, old, s;

	do
	:: c < NC ->
		/* pin_base: read section; claim; fill (seq, then version) */
		RLOCK(0);
		base = root;
		deref(base);
		pin_seq[0] = base;
		pin_ver[0] = base;
		RUNLOCK(0);
		atomic { /* build: private until the CAS */
			d = base + 1; /* seq = ++rslot.next_seq (one writer) */
			nrec = 3 + 2 * c; /* copy one child, new record */
			nch = nrec + 1;
			birth[nrec] = d;
			birth[nch] = d;
			vrec[d] = nrec;
			if
			:: vl[d] = nch; vr[d] = vr[base]; old = vl[base]
			:: vr[d] = nch; vl[d] = vl[base]; old = vr[base]
			fi
		};
		root = d; /* CAS base -> d (no other writer: succeeds) */
		/* retire_and_unpin: one read section */
		RLOCK(0);
		atomic { /* into the open batch (private until the seal) */
			retired[old] = true;
			death[old] = d;
			bent[2 * c] = old;
			retired[vrec[base]] = true;
			death[vrec[base]] = d;
			bent[2 * c + 1] = vrec[base]
		};
		atomic { pin_ver[0] = 0; gen++ }; /* rec_release */
		RUNLOCK(0);
		atomic { /* seal: tag = fetch_add(E, 1); link */
			btag[ftail] = E;
			E++;
			ftail++
		};
		c++
	:: else -> break
	od;
	done++
}

proctype Pinner()
{
	byte v;

	RLOCK(1);
	v = root;
	deref(v);
	pin_seq[1] = v; /* shg__pin_take: seq, then version (release) */
	pin_ver[1] = v;
	RUNLOCK(1);
	/* outside any section: the pin alone keeps v */
	deref(v);
	atomic { pin_ver[1] = 0; gen++ }; /* shg_unpin */
	done++
}

proctype Reclaimer()
{
	byte pass = 0;
	RECLAIM_LOCALS;

	do
	:: pass < NPASS -> reclaim(); pass++
	:: else -> break
	od;
	done++
}

init
{
	byte i;
	RECLAIM_LOCALS;

	atomic {
		vrec[1] = 0;
		vl[1] = 1;
		vr[1] = 2;
		birth[0] = 1;
		birth[1] = 1;
		birth[2] = 1;
		run Writer();
		run Pinner();
		i = 0;
		do
		:: i < NRC -> run Reclaimer(); i++
		:: else -> break
		od
	};
	(done == NRC + 2);
	/* quiescent: seal nothing more; passes until the FIFO is empty */
	do
	:: fhead < ftail -> reclaim()
	:: else -> break
	od;
	reclaim();
	/* no pin left: every retired node is free */
	i = 0;
	do
	:: i < NN -> assert(!retired[i] || freed[i]); i++
	:: else -> break
	od
}
