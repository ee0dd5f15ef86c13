/* SPDX-License-Identifier: MIT */
/*
 * Staged retires: a commit's garbage recorded in the segment before its
 * publish, so that a committer killed between its root CAS and its
 * retires leaves nothing leaked. Not compiled on its own: epoch.c includes
 * it, sharing its static helpers.
 *
 * Theory of operation. A commit that replaces blocks would retire them
 * after its CAS; a death in between left them unreachable and unrecorded
 * (only a quiescent sweep could find them). Instead the committer, inside
 * one read section:
 *
 *  1. begin: makes sure its open batch exists, records stage_from (the
 *     batch's count), stage_n = 0, stage_root, stage_chain = 0, and then
 *     stage_ver = the version it will publish (release);
 *  2. add: writes each entry just past the open batch's count (entry
 *     first, then stage_n + 1, release), spilling into private batches
 *     chained from stage_chain (each initialised before it is linked into
 *     the chain) when the open batch has no room; count does not cover
 *     them, so no reclaimer and no seal sees them;
 *  3. publishes (the root CAS, graph layer);
 *  4. publish: count = stage_from + stage_n (release); the chain is tagged
 *     and linked after the FIFO's tail in one limbo_lock hold, which also
 *     clears stage_chain; then stage_ver = 0 (release). Or cancel: clear
 *     stage_chain and stage_ver, free the chain.
 *
 * Recovery (shg__limbo_adopt, under limbo_lock and the slot's
 * recover_lock) finds stage_ver != 0 and decides whether that version V
 * was published: iff root stage_root still holds V, or stage_seen == V.
 * The upper layer records the staging slot in V (before publishing it),
 * and every commit that loads V from the root as its base calls
 * shg__stage_seen() before its own CAS, which stores stage_seen = V if the
 * slot still stages V. Ordering: the committer's stage_ver store (release)
 * precedes its CAS (release); a later committer W that loaded V (acquire)
 * therefore reads stage_ver == V or a later value (0: the stage finished,
 * nothing to do; another version: a later stage, V's is finished). W's
 * stage_seen store precedes W's CAS (release); a recoverer whose acquire
 * load of the root value reads W's CAS or any later one (every write of
 * the value is an RMW: one release sequence) sees it. No one loads an
 * unpublished V from a root, so no one marks it, and stage_begin clears
 * stage_seen before it sets stage_ver, so a mark meant for an earlier
 * stage never matches (V cannot be reused meanwhile: W is in the read
 * section in which it loaded V). Every prefix of the committer's program
 * order is a state recovery resolves:
 *
 *  - published: count is stage_from (step 4 not reached: set it to
 *    stage_from + stage_n) or already that; the chain is linked unless the
 *    FIFO already holds its head (a death inside the link's lock hold is
 *    repaired like any FIFO append: tail and counts recomputed).
 *  - not published (died before or in the CAS, or lost it): the entries
 *    past count are ignored, the chain is freed (its blocks were allocated
 *    by the dead thread and nothing else names them).
 *
 * Why nothing recovery reads can have been freed: the committer staged and
 * published inside its read section, so its slot's epoch (<= the tag of
 * any batch sealed after its CAS, and of any version record retired after
 * it) keeps those batches and the version record from being freed until
 * its slot is released, and release runs this resolution first. The
 * replaced blocks themselves are also held by the committer's base pin,
 * released after its thread slots.
 *
 * Cost: the entries are written once, as a retire would write them; the
 * open batch's count is stored once per commit instead of once per entry.
 */

/* stage_from's top bits: a drop's stage is complete (stage_publish); the
 * drop's value is ours (shg__stage_drop_owned: it left the root slot by
 * our exchange, or we drop it again for a dead process). The rest is the
 * open batch's count when the stage began. */
#define STAGE_COMPLETE 0x80000000u
#define STAGE_OWNED 0x40000000u
#define STAGE_FROM(f) ((f) & ~(STAGE_COMPLETE | STAGE_OWNED))

/* Link the private chain at @head after the FIFO's tail, every batch
 * tagged in order; limbo_lock held, caller issued F_w. */
static void chain_link_locked(struct shg_seg *seg, uint64_t head, bool fix)
{
	struct shg_hdr *hdr = seg->hdr;
	uint64_t cur = head, last = 0, bytes = 0, t, n = 0;
	struct shg_batch *b, *tb;

	while (cur && n++ < fifo_bound(seg) && (b = batch_at(seg, cur))) {
		if (fix)
			shg__batch_fix_bytes(seg, b);
		bytes += shg__ld64_relaxed(&b->bytes);
		/* Seq_cst under the lock: tags strictly increase along the
		 * FIFO, as for seal_locked(). */
		shg__st64_relaxed(&b->tag, atomic_fetch_add_explicit(
						   &hdr->epoch, 1,
						   memory_order_seq_cst));
		last = cur;
		cur = shg__ld64_relaxed(&b->next);
	}
	if (!last)
		return;
	if (cur) /* a bad link: cut it (what follows leaks) */
		__atomic_store_n(&batch_at(seg, last)->next, 0,
				 __ATOMIC_RELEASE);
	t = shg__ld64_relaxed(&hdr->limbo_tail);
	tb = batch_at(seg, t);
	if ((t && !tb) || (!t && shg__ld64_relaxed(&hdr->limbo_head))) {
		shg__limbo_repair(seg);
		t = shg__ld64_relaxed(&hdr->limbo_tail);
		tb = batch_at(seg, t);
	}
	/* One store links the whole chain; repair finds the tail again if
	 * we die before the next one. */
	if (tb)
		__atomic_store_n(&tb->next, head, __ATOMIC_RELEASE);
	else
		__atomic_store_n(&hdr->limbo_head, head, __ATOMIC_RELEASE);
	__atomic_store_n(&hdr->limbo_tail, last, __ATOMIC_RELEASE);
	atomic_fetch_add_explicit(&hdr->retired_bytes, bytes,
				  memory_order_relaxed);
}

static void stage_retry(struct shg_seg *seg, struct shg__tctx *ctx);

/* Free the private chain at @head (never linked). */
static void chain_free(struct shg_seg *seg, struct shg__tctx *ctx,
		       uint64_t head)
{
	uint64_t cur = head, next, n = 0;
	struct shg_batch *b;

	while (cur && n++ < fifo_bound(seg) && (b = batch_at(seg, cur))) {
		next = shg__ld64_relaxed(&b->next);
		shg__free_now(seg, ctx, cur);
		cur = next;
	}
}

int shg__stage_begin(struct shg_seg *seg, uint32_t root, uint64_t ver,
		     uint32_t *tidx)
{
	struct shg__tctx *ctx;
	struct shg_tslot *s;
	struct shg_batch *b;
	uint64_t bo;
	int err;

	err = shg__tctx_get(seg, &ctx);
	if (err)
		return err;
	if (!ctx->hot.nest || !ver)
		return -EINVAL;
	s = ctx->slot;
	stage_retry(seg, ctx);
	if (atomic_load_explicit(&s->stage_ver, memory_order_relaxed))
		return -EBUSY;
	b = open_batch(seg, ctx, &bo, &err);
	if (!b)
		return err;
	s->stage_from = batch_count(b);
	__atomic_store_n(&s->stage_n, 0, __ATOMIC_RELAXED);
	s->stage_root = root;
	atomic_store_explicit(&s->stage_chain, 0, memory_order_relaxed);
	atomic_store_explicit(&s->stage_seen, 0, memory_order_relaxed);
	ctx->stage_tail = 0;
	ctx->stage_bytes = 0;
	ctx->stage_unlinked = false;
	/* Release: the fields above are set before a recoverer can see a
	 * stage (it loads stage_ver with acquire). */
	atomic_store_explicit(&s->stage_ver, ver, memory_order_release);
	SHG_CRASH_POINT("stage.begun");
	*tidx = ctx->idx;
	return 0;
}

void shg__stage_seen(struct shg_seg *seg, uint32_t tidx, uint64_t ver)
{
	struct shg_tslot *s;

	if (tidx >= seg->max_threads)
		return;
	s = &seg->threads[tidx];
	/* Relaxed: ordered after our acquire load of @ver from the root and
	 * before our release CAS (see the theory above). */
	if (atomic_load_explicit(&s->stage_ver, memory_order_relaxed) == ver &&
	    atomic_load_explicit(&s->stage_seen, memory_order_relaxed) != ver)
		atomic_store_explicit(&s->stage_seen, ver,
				      memory_order_relaxed);
}

/* Was the version @ver that slot @s staged published? */
static bool stage_published(struct shg_seg *seg, struct shg_tslot *s,
			    uint64_t ver)
{
	uint32_t root = s->stage_root;

	if (root < seg->max_roots &&
	    atomic_load_explicit(&seg->roots[root].value,
				 memory_order_acquire) == ver)
		return true;
	return atomic_load_explicit(&s->stage_seen, memory_order_relaxed) ==
	       ver;
}

/* A fresh private chain batch after the current tail. */
static struct shg_batch *chain_grow(struct shg_seg *seg, struct shg__tctx *ctx,
				    int *err)
{
	struct shg_batch *b, *tb = batch_at(seg, ctx->stage_tail);
	struct shg_off nb;

	b = batch_new(seg, &nb, err);
	if (!b)
		return NULL;
	/* Release: initialised before anything names it. */
	if (tb)
		__atomic_store_n(&tb->next, nb.v, __ATOMIC_RELEASE);
	else
		atomic_store_explicit(&ctx->slot->stage_chain, nb.v,
				      memory_order_release);
	ctx->stage_tail = nb.v;
	return b;
}

int shg__stage_add(struct shg_seg *seg, uint64_t off, uint64_t death)
{
	struct shg__tctx *ctx = shg__tctx_peek(seg);
	uint64_t size = shg_block_size(seg, (struct shg_off){ off });
	struct shg_tslot *s;
	struct shg_batch *b;
	uint32_t n, at;
	int err;

	if (!ctx || !size)
		return ctx ? SHG_EBADOFF : -EINVAL;
	s = ctx->slot;
	if (!atomic_load_explicit(&s->stage_ver, memory_order_relaxed))
		return -EINVAL;
	n = __atomic_load_n(&s->stage_n, __ATOMIC_RELAXED);
	b = batch_at(seg, atomic_load_explicit(&s->limbo_open,
					       memory_order_relaxed));
	if (b && !ctx->stage_tail &&
	    STAGE_FROM(s->stage_from) + n < BATCH_CAP) {
		at = STAGE_FROM(s->stage_from) + n;
		shg__st64_relaxed(&b->ent[at].off, off);
		shg__st64_relaxed(&b->ent[at].death, death);
		/* Release: the entry is written before stage_n covers it. */
		__atomic_store_n(&s->stage_n, n + 1, __ATOMIC_RELEASE);
		SHG_CRASH_POINT("stage.entry_written");
		ctx->stage_bytes += size;
		return 0;
	}
	b = batch_at(seg, ctx->stage_tail);
	if (!b || batch_count(b) == BATCH_CAP) {
		b = chain_grow(seg, ctx, &err);
		if (!b)
			return err;
	}
	n = batch_count(b);
	shg__st64_relaxed(&b->ent[n].off, off);
	shg__st64_relaxed(&b->ent[n].death, death);
	__atomic_store_n(&b->count, n + 1, __ATOMIC_RELEASE);
	SHG_CRASH_POINT("stage.chain_entry_written");
	shg__st64_relaxed(&b->bytes, shg__ld64_relaxed(&b->bytes) + size);
	return 0;
}

/* Link a published stage's chain; false if limbo_lock is unusable. */
static bool stage_link(struct shg_seg *seg, struct shg_tslot *s)
{
	uint64_t head =
		atomic_load_explicit(&s->stage_chain, memory_order_relaxed);

	if (!head)
		return true;
	/* F_w: the publish that unlinked the staged blocks is sequenced
	 * before this fence; see seal(). */
	atomic_thread_fence(memory_order_seq_cst);
	if (shg__lock(seg, &seg->hdr->limbo_lock, shg__limbo_repair))
		return false;
	chain_link_locked(seg, head, false);
	SHG_CRASH_POINT("stage.chain_linked");
	atomic_store_explicit(&s->stage_chain, 0, memory_order_release);
	shg__unlock(seg, &seg->hdr->limbo_lock);
	return true;
}

void shg__stage_publish(struct shg_seg *seg)
{
	struct shg__tctx *ctx = shg__tctx_peek(seg);
	struct shg_tslot *s;
	struct shg_batch *b;
	uint64_t bo;
	uint32_t n;

	if (!ctx ||
	    !atomic_load_explicit(&ctx->slot->stage_ver, memory_order_relaxed))
		return;
	s = ctx->slot;
	/* A drop's stage is complete from here on: recovery finishes it
	 * rather than dropping the graph again (see stage_resolve_locked). */
	if (s->stage_root & SHG_STAGE_DROP)
		__atomic_store_n(&s->stage_from, s->stage_from | STAGE_COMPLETE,
				 __ATOMIC_RELEASE);
	n = __atomic_load_n(&s->stage_n, __ATOMIC_RELAXED);
	bo = atomic_load_explicit(&s->limbo_open, memory_order_relaxed);
	b = batch_at(seg, bo);
	if (b && n) {
		shg__st64_relaxed(&b->bytes, shg__ld64_relaxed(&b->bytes) +
						     ctx->stage_bytes);
		/* Release: the entries are complete before count covers them
		 * (a reclaimer or adopter reads count with acquire). */
		__atomic_store_n(&b->count, STAGE_FROM(s->stage_from) + n,
				 __ATOMIC_RELEASE);
		SHG_CRASH_POINT("stage.count_published");
	}
	if (!stage_link(seg, s)) {
		/* Published, but the chain could not be linked now: keep the
		 * stage; the next stage, retire or exit links it (or whoever
		 * releases the slot, which finds the version published). */
		ctx->stage_unlinked = true;
		return;
	}
	atomic_store_explicit(&s->stage_ver, 0, memory_order_release);
	SHG_CRASH_POINT("stage.cleared");
	if (b && batch_count(b) == BATCH_CAP && seal(seg, s, bo, b) == 0)
		reclaim_after_seal(seg, ctx);
}

void shg__stage_cancel(struct shg_seg *seg)
{
	struct shg__tctx *ctx = shg__tctx_peek(seg);
	struct shg_tslot *s;
	uint64_t head;

	if (!ctx || ctx->stage_unlinked)
		return;
	s = ctx->slot;
	head = atomic_load_explicit(&s->stage_chain, memory_order_relaxed);
	/* Forget first, free after: a death in between leaks the chain,
	 * never frees it twice. */
	atomic_store_explicit(&s->stage_chain, 0, memory_order_release);
	atomic_store_explicit(&s->stage_ver, 0, memory_order_release);
	SHG_CRASH_POINT("stage.cancelled");
	chain_free(seg, ctx, head);
}

void shg__stage_drop_owned(struct shg_seg *seg, uint64_t v)
{
	struct shg__tctx *ctx = shg__tctx_peek(seg);
	struct shg_tslot *s;

	if (!shg__stage_drop_open(seg, v))
		return;
	s = ctx->slot;
	/* Release: a recoverer that reads the bit (acquire) drops the value
	 * again; one that does not leaves it (see stage_resolve_locked). */
	__atomic_store_n(&s->stage_from, s->stage_from | STAGE_OWNED,
			 __ATOMIC_RELEASE);
}

bool shg__stage_drop_open(struct shg_seg *seg, uint64_t v)
{
	struct shg__tctx *ctx = shg__tctx_peek(seg);

	return ctx && v && !ctx->stage_unlinked &&
	       atomic_load_explicit(&ctx->slot->stage_ver,
				    memory_order_relaxed) == v &&
	       (ctx->slot->stage_root & SHG_STAGE_DROP);
}

/* A published stage left unlinked (limbo_lock was unusable): retry. */
static void stage_retry(struct shg_seg *seg, struct shg__tctx *ctx)
{
	if (ctx->stage_unlinked && stage_link(seg, ctx->slot)) {
		ctx->stage_unlinked = false;
		atomic_store_explicit(&ctx->slot->stage_ver, 0,
				      memory_order_release);
	}
}

/*
 * Resolve slot @s's stage (its owner is dead or leaving); limbo_lock and
 * the slot's recover_lock held. Returns a chain to free after the unlock.
 */
static uint64_t stage_resolve_locked(struct shg_seg *seg, struct shg_tslot *s,
				     uint64_t *redo)
{
	uint64_t ver =
		atomic_load_explicit(&s->stage_ver, memory_order_acquire);
	uint64_t head, drop = 0;
	uint32_t n, from;
	struct shg_batch *b;
	bool pub;

	if (!ver)
		return 0;
	if (s->stage_root & SHG_STAGE_DROP) {
		/*
		 * A drop: a complete stage is finished like a published
		 * commit; an incomplete one is dropped, and the graph is
		 * dropped again from the start if the value was the dead
		 * thread's alone (STAGE_OWNED: finalize took it out of the
		 * slot, or it was dropping it again itself). Otherwise the
		 * slot may still hold it, and then whoever finalizes the
		 * slot next (after taking root_lock over) drops the graph;
		 * whether that happened already cannot be told from the
		 * slot (its value is 0 either way), so dropping it here too
		 * could retire every node twice. A death between finalize's
		 * exchange and its STAGE_OWNED store leaks the graph instead
		 * (never frees it twice).
		 */
		from = __atomic_load_n(&s->stage_from, __ATOMIC_ACQUIRE);
		pub = from & STAGE_COMPLETE;
		if (!pub && (from & STAGE_OWNED))
			*redo = ver;
	} else {
		pub = stage_published(seg, s, ver);
	}
	head = atomic_load_explicit(&s->stage_chain, memory_order_relaxed);
	if (pub) {
		n = __atomic_load_n(&s->stage_n, __ATOMIC_ACQUIRE);
		from = STAGE_FROM(s->stage_from);
		b = batch_at(seg, atomic_load_explicit(&s->limbo_open,
						       memory_order_relaxed));
		if (b && from + n <= BATCH_CAP &&
		    __atomic_load_n(&b->count, __ATOMIC_RELAXED) == from)
			__atomic_store_n(&b->count, from + n, __ATOMIC_RELEASE);
		if (head && !fifo_contains(seg, head))
			chain_link_locked(seg, head, true);
	} else {
		drop = head;
	}
	SHG_CRASH_POINT("recover.stage_resolved");
	atomic_store_explicit(&s->stage_chain, 0, memory_order_release);
	atomic_store_explicit(&s->stage_ver, 0, memory_order_release);
	return drop;
}
