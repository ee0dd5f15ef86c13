/* SPDX-License-Identifier: MIT */
/*
 * Detached versions: a txn finished as a version of its own (a fork that
 * pins its base), kept, published by CAS later, or published under another
 * root (copied). Not compiled on its own: txn.c includes it, sharing its
 * static helpers.
 */

/* ---- detached versions ------------------------------------------------- */

/* Process-local state of a detached version (pin->priv). */
struct detached {
	struct shg_pin *base; /* its base, pinned (NULL: root was empty) */
	uint64_t base_ver; /* base version record (0 = none) */
	struct shg__offvec garbage; /* published base nodes it replaced */
};

int shg_txn_detach(struct shg_txn *txn, struct shg_pin **out)
{
	struct detached *d;
	struct shg_pin *pin;
	struct cleanup c;
	uint64_t ver;
	size_t i, n0;
	int err;

	if (!txn || !out)
		return -EINVAL;
	if (txn->err)
		return txn->err;
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	err = cleanup_collect(txn, &c);
	if (err) {
		free(d);
		return err;
	}
	n0 = txn->garbage.n; /* cut-off subtrees join the garbage */
	for (i = 0; !err && i < c.retire.n; i++)
		err = shg__offvec_push(&txn->garbage, c.retire.v[i]);
	if (!err)
		err = build_version(txn, 0, c.shared, &ver);
	if (!err) {
		err = shg__pin_take(txn->seg, txn->rslot, ver, true, &pin);
		if (err)
			shg_free(txn->seg, (struct shg_off){ ver });
	}
	if (err) {
		txn->garbage.n = n0;
		cleanup_undo(txn, &c);
		free(d);
		return err;
	}
	cleanup_done(txn, &c);
	cleanup_free(&c);
	d->base = txn->base;
	d->base_ver = txn->base_ver;
	d->garbage = txn->garbage;
	txn->garbage = (struct shg__offvec){ 0 };
	pin->priv = d;
	txn->base = NULL;
	txn_free(txn);
	*out = pin;
	return 0;
}

/* Retire a detached version's own nodes (birth == its seq). */
struct own_walk {
	struct shg_seg *seg;
	uint32_t graph;
	uint64_t seq;
	struct shg__offvec found;
};

static int own_visit(void *arg, uint64_t off, const struct shg_node *n,
		     size_t size)
{
	struct own_walk *w = arg;

	(void)size;
	if (n->graph != w->graph || n->birth != w->seq)
		return 1; /* published: its subtree is published too */
	return shg__offvec_push(&w->found, off);
}

void shg__detached_release(struct shg_pin *pin)
{
	struct detached *d = pin->priv;
	struct own_walk w = { pin->seg, pin->graph, pin->seq, { 0 } };
	const struct shg_version *v;
	size_t i;
	int err;

	v = version_at(pin->seg, pin->version, pin->graph, &err);
	/* Plain retires: a checker may be walking the pin table. */
	if (v && !shg__walk(pin->seg, v->node, own_visit, NULL, &w))
		for (i = 0; i < w.found.n; i++)
			(void)shg_retire(pin->seg,
					 (struct shg_off){ w.found.v[i] });
	free(w.found.v);
	(void)shg_retire(pin->seg, (struct shg_off){ pin->version });
	if (d) {
		if (d->base)
			shg_unpin(d->base);
		free(d->garbage.v);
		free(d);
	}
	pin->priv = NULL;
}

int shg_pin_publish(struct shg_pin *pin, struct shg_root *root)
{
	bool locked, staged;
	struct detached *d;
	struct shg_version *v;
	int err;

	if (!pin || !root || !pin->detached || !pin->priv)
		return -EINVAL;
	if (shg__root_seg(root) != pin->seg ||
	    shg__root_slot(root) != pin->root)
		return -EINVAL;
	if (shg__replica_refused(pin->seg, pin->root, 0))
		return SHG_EREPLICA;
	d = pin->priv;
	v = (struct shg_version *)version_at(pin->seg, pin->version, pin->graph,
					     &err);
	if (!v)
		return err;
	v->commit_ns = shg__realtime_ns(); /* still private */
	/* As in shg_txn_commit(): stage, mark the base seen, publish. */
	locked = shg_read_lock(pin->seg) == 0;
	staged = locked &&
		 shg__stage_garbage(pin->seg, pin->root, pin->version,
				    &d->garbage, NULL, d->base_ver, pin->seq);
	shg__version_mark_seen(pin->seg, d->base_ver);
	err = shg__root_publish(root, (struct shg_off){ d->base_ver },
				(struct shg_off){ pin->version });
	if (err) {
		if (staged)
			shg__stage_cancel(pin->seg);
		if (locked)
			shg_read_unlock(pin->seg);
		v->commit_ns = 0;
		return err;
	}
	if (staged)
		shg__stage_publish(pin->seg);
	if (locked)
		shg_read_unlock(pin->seg);
	if (!staged)
		retire_replaced(pin->seg, &d->garbage, d->base_ver, pin->seq);
	shg__pin_undetach(pin);
	if (d->base)
		shg_unpin(d->base);
	free(d->garbage.v);
	free(d);
	pin->priv = NULL;
	return 0;
}

/* Every node of @txn's base graph becomes garbage (replace the graph). */
static int drop_visit(void *arg, uint64_t off, const struct shg_node *n,
		      size_t size)
{
	struct shg_txn *txn = arg;

	(void)n;
	(void)size;
	shg__txn_drop(txn, off);
	return txn->err;
}

int shg_pin_publish_as(struct shg_pin *pin, struct shg_root *other)
{
	const struct shg_version *v;
	struct shg_txn *txn;
	struct shg_off copy = SHG_OFF_NULL;
	int err;

	if (!pin || !other || shg__root_seg(other) != pin->seg)
		return -EINVAL;
	v = version_at(pin->seg, pin->version, pin->graph, &err);
	if (!v)
		return err;
	err = shg_txn_begin(other, &txn);
	if (err)
		return err;
	err = shg__walk(pin->seg, txn->root_node, drop_visit, NULL, txn);
	txn->root_node = 0;
	if (!err)
		err = shg_txn_import(txn, (struct shg_off){ v->node }, &copy);
	if (!err) {
		txn->root_node = copy.v;
		err = shg_txn_commit(txn);
		if (!err)
			return 0;
	}
	shg_txn_abort(txn);
	return err;
}
