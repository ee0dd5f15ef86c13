/* SPDX-License-Identifier: MIT */
/*
 * grace.pml - the cross-process read side, grace periods and reclamation
 * of shm/epoch.c (ARCHITECTURE.md section 4), checked with SPIN.
 *
 * WHAT IS MODELLED
 *
 * Memory is modelled with per-process FIFO store buffers (TSO): a store
 * goes into its process's buffer and reaches memory later, at any moment
 * (the Flush process of that buffer); a load reads memory (no process
 * here loads a location it stores, so no forwarding is needed). This
 * admits exactly the store->load reordering that the fences of the
 * protocol exist to forbid (the store-buffering pattern of case (3) in
 * epoch.c). Acquire loads and release stores are free on TSO, which is
 * what the code's acquire/release accesses give in the argument. The
 * global epoch E changes only by fetch_add (a seq_cst RMW): modelled as
 * "drain own buffer, then update memory atomically", which is what it
 * gives the argument (case 2: a reader that reads the RMW's value sees the
 * writer's earlier unlink).
 *
 *   Reader (shg_thread_read_lock / unlock in lib/shmgraph.h), forever:
 *     e = E; store slot = e; F_r; b = root; deref b; store slot = 0
 *     F_r: fence flavor = drain own buffer (full fence);
 *          membarrier flavor (-DMEMB) = nothing (compiler barrier).
 *   Writer (commit + retire + seal + reclaim, then shg_synchronize), for
 *   each of NUPD updates k = 1..NUPD:
 *     store root = k (release CAS: unlink of block k-1);
 *     retire k-1 into the open batch (batch_append);
 *     seal: F_w; tag = fetch_add(E); link at the FIFO tail (seal_locked);
 *     reclaim: E0 = E; F_x (full fence; -DMEMB: membarrier() = every
 *       reader's buffer drained at once); m = min(E0, non-zero slots);
 *       pop and free batches with tag < m (scan_slots, pop_freeable,
 *       shg__finish_batch).
 *   Then shg_synchronize (wait_grace): s = fetch_add(E); F_x; poll each
 *   slot until it shows 0 or > s; reclaim.
 *   A second writer (-DTWO_WRITERS) updates a second root concurrently:
 *   it checks the m <= E0 bound (a batch sealed by another thread after
 *   the scan began).
 *
 * PROPERTIES
 *   safety: assert(!freed[b]) at every dereference (run with -DSAFETY:
 *     no LTL, assertions and invalid end states).
 *   shg_synchronize: once it returns, no section that had loaded a root
 *     before its fetch_add is still running (ghosts incs/pre).
 *   progress (default build, LTL p_sync_ends, weak fairness): the
 *     writer's reclaims and shg_synchronize end although readers keep
 *     re-entering.
 *
 * BUG VARIANTS (each must make SPIN report an error; scripts/model.sh):
 *   -DBUG_NO_FR         fence flavor reader without its full fence F_r
 *   -DMEMB -DBUG_NO_MEMBARRIER  membarrier flavor, reclaimer skips
 *                       membarrier()
 *   -DTWO_WRITERS -DBUG_NO_E0_BOUND  m not bounded by E0
 *   -DBUG_SYNC_GE       synchronize waits only for slots < s (not <= s)
 *   -DBUG_SYNC_NO_INC   synchronize reads E without incrementing it: a
 *                       reader re-entering back to back starves it
 *                       (progress: p_sync_ends fails)
 *
 * BOUNDS: NR readers (1; -DNR=2 checks in ~35 s), NUPD updates per
 * writer (2), store buffers of 2 entries, E < 8.
 */

#ifndef NR
#define NR 1
#endif
#ifndef NUPD
#define NUPD 2
#endif

#ifdef TWO_WRITERS
#define NW 2
#else
#define NW 1
#endif

#define NBLK (NW * (NUPD + 1)) /* blocks of writer w: w*(NUPD+1) + k */
#define NBATCH (NW * NUPD)
#define NPROC (NR + NW) /* processes with a store buffer */
#define A_ROOT0 0 /* addresses: roots 0..NW-1, then slots */
#define A_SLOT0 NW

byte E = 1;
byte root[NW];
byte slot[NR];
bool freed[NBLK];
bool retired[NBLK];

/* The sealed FIFO (under limbo_lock: each step below is atomic). */
byte btag[NBATCH];
byte bblk[NBATCH];
byte fhead = 0;
byte ftail = 0;

bool wdone[NW]; /* writer w finished its last reclaim */
/* Ghosts for shg_synchronize's guarantee: incs[r] while reader r holds
 * a loaded root value (from its root load to its exit store); pre[r] if
 * it did so already when synchronize's fetch_add ran. Once synchronize
 * returns, no such section may still be running. */
bool incs[NR];
bool pre[NR];

chan sb[NPROC] = [2] of { byte, byte }; /* (address, value) */

inline mem_write(a, v)
{
	if
	:: a < A_SLOT0 -> root[a] = v
	:: else -> slot[a - A_SLOT0] = v
	fi
}

/* Full fence: the process waits until its buffer has drained. */
inline drain(p)
{
	do
	:: sb[p]?ba, bv -> mem_write(ba, bv)
	:: empty(sb[p]) -> break
	od
}

proctype Flush(byte p)
{
	byte ba, bv;

end:	do
	:: atomic { sb[p]?ba, bv -> mem_write(ba, bv) }
	od
}

proctype Reader(byte r)
{
	byte e, b, w, ba, bv;

end:	do
	:: /* read_lock: e = load_acquire(E); slot = e (relaxed) */
		e = E;
		sb[r]!(A_SLOT0 + r), e;
#if !defined(MEMB) && !defined(BUG_NO_FR)
		atomic { drain(r) }	/* F_r: full fence */
#endif
		/* b = shg_root_load() (acquire) of either root */
		if
		:: w = 0
#ifdef TWO_WRITERS
		:: w = 1
#endif
		fi;
		atomic { b = root[w]; incs[r] = true };
		/* the section dereferences b */
		assert(!freed[b]);
		/* read_unlock: store_release(slot, 0) */
		atomic { sb[r]!(A_SLOT0 + r), 0; incs[r] = false; pre[r] = false };
		b = 0;
		e = 0
	od
}

/* F_x of writer_barrier(): full fence, then membarrier() if MEMB. */
inline writer_barrier(me)
{
	atomic { drain(me) };
#if defined(MEMB) && !defined(BUG_NO_MEMBARRIER)
	/* membarrier(GLOBAL_EXPEDITED): a full barrier on every CPU that
	 * runs a reader between this call and its return. */
	atomic {
		i = 0;
		do
		:: i < NR -> drain(i); i++
		:: else -> break
		od
	}
#endif
}

/* reclaim(): E0, F_x, scan, pop and free every batch with tag < m. */
inline reclaim(me)
{
#ifdef BUG_NO_E0_BOUND
	m = 255; /* E0 ignored: only the slots bound m */
#else
	m = E; /* E0 = load_acquire(E) */
#endif
	writer_barrier(me);
	i = 0;
	do
	:: i < NR ->
		e = slot[i]; /* acquire load of the slot */
		if
		:: e != 0 && e < m -> m = e
		:: else
		fi;
		i++
	:: else -> break
	od;
	do
	:: atomic {
		fhead < ftail && btag[fhead] < m ->
		freed[bblk[fhead]] = true;
		fhead++
	   }
	:: atomic { !(fhead < ftail && btag[fhead] < m) -> break }
	od
}

proctype Writer(byte w)
{
	byte me = NR + w, k = 1, m, e, i, s, ba, bv, old;

	do
	:: k <= NUPD ->
		old = w * (NUPD + 1) + k - 1;
		/* publish: root = new block (release CAS): unlinks old */
		sb[me]!(A_ROOT0 + w), old + 1;
		/* retire(old) into the open batch (process-local until seal) */
		retired[old] = true;
		/* seal: F_w; under limbo_lock: tag = fetch_add(E, 1); link */
		atomic { drain(me) };	/* F_w */
		atomic {
			drain(me);	/* the RMW itself (seq_cst) */
			btag[ftail] = E;
			bblk[ftail] = old;
			ftail++;
			E++
		};
		reclaim(me);
		k++
	:: else -> break
	od;
#ifndef TWO_WRITERS
	/* shg_synchronize: s = fetch_add(E, 1); F_x; poll; reclaim */
	atomic {
		drain(me); s = E;
#ifndef BUG_SYNC_NO_INC
		E++;
#endif
		i = 0;
		do
		:: i < NR -> pre[i] = incs[i]; i++
		:: else -> break
		od
	};
	writer_barrier(me);
	i = 0;
	do
	:: i < NR ->
#ifdef BUG_SYNC_GE
		(slot[i] == 0 || slot[i] >= s);
#else
		(slot[i] == 0 || slot[i] > s);
#endif
		i++
	:: else -> break
	od;
	/* Every section that had loaded a root before the call ended. */
	i = 0;
	do
	:: i < NR -> assert(!pre[i]); i++
	:: else -> break
	od;
	/* Not asserted: that this reclaim empties the FIFO. A reader that
	 * loaded E before the last seal but whose slot store reached memory
	 * only after the poll passed it shows an old epoch to this scan and
	 * keeps the batch (harmlessly: by F_r it sees the new root). SPIN
	 * finds that interleaving, so shg_synchronize promises a grace
	 * period, not an empty retire list. */
	reclaim(me);
#endif
	wdone[w] = true
}

init
{
	byte p;

	atomic {
		p = 0;
		do
		:: p < NPROC -> run Flush(p); p++
		:: else -> break
		od;
		p = 0;
		do
		:: p < NW -> root[p] = p * (NUPD + 1); p++
		:: else -> break
		od;
		p = 0;
		do
		:: p < NR -> run Reader(p); p++
		:: else -> break
		od;
		p = 0;
		do
		:: p < NW -> run Writer(p); p++
		:: else -> break
		od
	}
}

#ifndef SAFETY
/* The writer's grace period ends although readers keep re-entering. */
ltl p_sync_ends { <> wdone[0] }
#endif
