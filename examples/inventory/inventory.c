/* SPDX-License-Identifier: MIT */
/*
 * inventory - a multi-process inventory service on one shmgraph segment,
 * written against the public API only (<shmgraph.h>).
 *
 * Graphs:
 *   Catalog: Catalog { products: map u64 SKU -> Product, total_stock }
 *            Product { name, price, stock, base, tags: vector of bytes }
 *   Orders:  Orders  { list: vector of Order, catalog: root ref }
 *            Order   { sku, qty, price, product: an imported Product copy }
 *
 * Invariants the readers check on every version they see:
 *   - every product: price + stock == base (price writers move both);
 *   - the sum of the products' stock == Catalog.total_stock;
 *   - every order's price is its product copy's price, qty >= 1.
 *
 * Processes: two batched catalog writers (50 products a txn, values made
 * mutable with shg_txn_map_mut_u64), an order writer (shg_update; reads
 * the catalog through the Orders graph's root ref, imports the product),
 * two invariant readers, a pinned reader (its version must stay byte-
 * identical while the catalog moves on), and a reader killed with SIGKILL
 * inside its read section (writers must keep committing after recovery).
 * Exit status 0 when every check held; runs in a few seconds.
 *
 *   inventory [seconds]    (default 2)
 */
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <shmgraph.h>

#define NPRODUCTS 2000u
#define BATCH 50

/* Field indexes, resolved by name at startup (shg_field_find). */
static struct {
	uint32_t catalog, product, orders, order;
	unsigned c_products, c_total;
	unsigned p_name, p_price, p_stock, p_base, p_tags;
	unsigned o_list, o_catalog;
	unsigned r_sku, r_qty, r_price, r_product;
} S;

/* Shared counters (an anonymous shared mapping). */
struct shared {
	_Atomic uint64_t catalog_commits;
	_Atomic uint64_t orders;
	_Atomic uint64_t checks;
	_Atomic uint64_t violations;
	_Atomic int stop;
	_Atomic int victim_in_section;
};

static struct shared *sh;
static const char *seg_name;

#define FAIL(...)                                           \
	do {                                                \
		fprintf(stderr, "inventory: " __VA_ARGS__); \
		fputc('\n', stderr);                        \
		atomic_fetch_add(&sh->violations, 1);       \
	} while (0)

#define CK(e)                                                                \
	do {                                                                 \
		int ck_ = (e);                                               \
		if (ck_ < 0) {                                               \
			fprintf(stderr, "inventory: %s: %s (line %d)\n", #e, \
				shg_strerror(ck_), __LINE__);                \
			exit(2);                                             \
		}                                                            \
	} while (0)

static struct shg_ref F(struct shg_off n, unsigned field) {
	return (struct shg_ref){ n, field };
}

static uint64_t
rng(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static void schema(struct shg_seg *seg)
{
	static const struct shg_field_def cat[] = {
		{ "products", SHG_KIND_NODE },
		{ "total_stock", SHG_KIND_U64 },
	};
	static const struct shg_field_def prod[] = {
		{ "name", SHG_KIND_BYTES }, { "price", SHG_KIND_U64 },
		{ "stock", SHG_KIND_U64 },  { "base", SHG_KIND_U64 },
		{ "tags", SHG_KIND_NODE },
	};
	static const struct shg_field_def ords[] = {
		{ "list", SHG_KIND_NODE },
		{ "catalog", SHG_KIND_ROOT },
	};
	static const struct shg_field_def ord[] = {
		{ "sku", SHG_KIND_U64 },
		{ "qty", SHG_KIND_U64 },
		{ "price", SHG_KIND_U64 },
		{ "product", SHG_KIND_NODE },
	};

	CK(shg_type_register(seg, "Catalog", cat, 2, &S.catalog));
	CK(shg_type_register(seg, "Product", prod, 5, &S.product));
	CK(shg_type_register(seg, "Orders", ords, 2, &S.orders));
	CK(shg_type_register(seg, "Order", ord, 4, &S.order));
	CK(shg_field_find(seg, S.catalog, "products", SHG_KIND_NODE,
			  &S.c_products));
	CK(shg_field_find(seg, S.catalog, "total_stock", SHG_KIND_U64,
			  &S.c_total));
	CK(shg_field_find(seg, S.product, "name", SHG_KIND_BYTES, &S.p_name));
	CK(shg_field_find(seg, S.product, "price", SHG_KIND_U64, &S.p_price));
	CK(shg_field_find(seg, S.product, "stock", SHG_KIND_U64, &S.p_stock));
	CK(shg_field_find(seg, S.product, "base", SHG_KIND_U64, &S.p_base));
	CK(shg_field_find(seg, S.product, "tags", SHG_KIND_NODE, &S.p_tags));
	CK(shg_field_find(seg, S.orders, "list", SHG_KIND_NODE, &S.o_list));
	CK(shg_field_find(seg, S.orders, "catalog", SHG_KIND_ROOT,
			  &S.o_catalog));
	CK(shg_field_find(seg, S.order, "sku", SHG_KIND_U64, &S.r_sku));
	CK(shg_field_find(seg, S.order, "qty", SHG_KIND_U64, &S.r_qty));
	CK(shg_field_find(seg, S.order, "price", SHG_KIND_U64, &S.r_price));
	CK(shg_field_find(seg, S.order, "product", SHG_KIND_NODE,
			  &S.r_product));
}

/* ---- setup --------------------------------------------------------------- */

static void populate(struct shg_seg *seg)
{
	struct shg_root *cat, *ord;
	struct shg_txn *txn;
	struct shg_off c, m, p, o;
	struct shg_val v;
	char name[32];
	uint64_t sku, total = 0;

	CK(shg_root_create(seg, "catalog", &cat));
	CK(shg_root_create(seg, "orders", &ord));
	CK(shg_txn_begin(cat, &txn));
	CK(shg_txn_node_new(txn, S.catalog, &c));
	CK(shg_txn_set_node(txn, SHG_REF_ROOT, c));
	CK(shg_txn_map_new(txn, F(c, S.c_products), SHG_KIND_U64,
			   SHG_KIND_NODE));
	CK(shg_get_node(seg, c, S.c_products, &m));
	for (sku = 1; sku <= NPRODUCTS; sku++) {
		CK(shg_txn_node_new(txn, S.product, &p));
		snprintf(name, sizeof(name), "product-%llu",
			 (unsigned long long)sku);
		CK(shg_txn_set_bytes(txn, F(p, S.p_name), name, strlen(name)));
		CK(shg_txn_set_u64(txn, F(p, S.p_price), 100));
		CK(shg_txn_set_u64(txn, F(p, S.p_stock), 900 + sku));
		CK(shg_txn_set_u64(txn, F(p, S.p_base), 1000 + sku));
		CK(shg_txn_vec_new(txn, F(p, S.p_tags), SHG_KIND_BYTES));
		v = (struct shg_val){ .kind = SHG_KIND_BYTES,
				      .bytes = { sku % 2 ? "odd" : "even",
						 sku % 2 ? 3 : 4 } };
		CK(shg_txn_vec_push(txn, F(p, S.p_tags), &v));
		total += 900 + sku;
		v = (struct shg_val){ .kind = SHG_KIND_NODE, .node = p };
		CK(shg_txn_map_put_u64(txn, F(c, S.c_products), sku, &v));
	}
	CK(shg_txn_set_u64(txn, F(c, S.c_total), total));
	CK(shg_txn_commit(txn));

	CK(shg_txn_begin(ord, &txn));
	CK(shg_txn_node_new(txn, S.orders, &o));
	CK(shg_txn_set_node(txn, SHG_REF_ROOT, o));
	CK(shg_txn_vec_new(txn, F(o, S.o_list), SHG_KIND_NODE));
	CK(shg_txn_set_root(txn, F(o, S.o_catalog), cat));
	CK(shg_txn_commit(txn));
	shg_root_close(ord);
	shg_root_close(cat);
}

/* ---- catalog writers: batches of price moves ------------------------------ */

static int catalog_writer(uint64_t seed)
{
	struct shg_seg *seg;
	struct shg_root *cat;
	struct shg_txn *txn;
	struct shg_off c, p;
	uint64_t price, stock, total, d, sku;
	int i, err;

	CK(shg_seg_open(seg_name, NULL, &seg));
	CK(shg_root_open(seg, "catalog", &cat));
	while (!atomic_load(&sh->stop)) {
		err = shg_txn_begin_wait(cat, 2000, &txn);
		if (err == SHG_EBUDGET)
			continue; /* a stalled reader: try again */
		CK(err);
		CK(shg_txn_mut(txn, SHG_REF_ROOT, &c));
		CK(shg_get_u64(seg, c, S.c_total, &total));
		for (i = 0; i < BATCH; i++) {
			sku = 1 + rng(&seed) % NPRODUCTS;
			CK(shg_txn_map_mut_u64(txn, F(c, S.c_products), sku,
					       &p));
			CK(shg_get_u64(seg, p, S.p_price, &price));
			CK(shg_get_u64(seg, p, S.p_stock, &stock));
			d = rng(&seed) % 3;
			if (d == 2 && price > 1) { /* cheaper, more stock */
				price--;
				stock++;
				total++;
			} else if (stock > 0) {
				price++;
				stock--;
				total--;
			}
			CK(shg_txn_set_u64(txn, F(p, S.p_price), price));
			CK(shg_txn_set_u64(txn, F(p, S.p_stock), stock));
		}
		CK(shg_txn_set_u64(txn, F(c, S.c_total), total));
		err = shg_txn_commit(txn);
		if (err == SHG_ECONFLICT) {
			shg_txn_abort(txn);
			continue;
		}
		CK(err);
		atomic_fetch_add(&sh->catalog_commits, 1);
	}
	shg_root_close(cat);
	shg_seg_close(seg);
	return 0;
}

/* ---- the order writer ------------------------------------------------------ */

struct order_arg {
	struct shg_seg *seg;
	uint64_t seed;
};

/* May run many times (shg_update): everything comes from the txn. */
static int place_order(struct shg_txn *txn, void *arg)
{
	struct order_arg *a = arg;
	struct shg_seg *seg = a->seg;
	struct shg_off o, ver, cat, m, copy, n;
	struct shg_version_info vi;
	struct shg_val v;
	uint64_t sku = 1 + rng(&a->seed) % NPRODUCTS, price;
	int err;

	err = shg_txn_mut(txn, SHG_REF_ROOT, &o);
	if (err)
		return err;
	/* the catalog's current version through the root ref, in a read
	 * section; import runs inside it and copies the product */
	err = shg_read_lock(seg);
	if (err)
		return err;
	err = shg_get_root_version(seg, o, S.o_catalog, &ver);
	if (!err)
		err = shg_version_info(seg, ver, &vi);
	cat = vi.node;
	if (!err)
		err = shg_get_node(seg, cat, S.c_products, &m);
	if (!err)
		err = shg_map_get_u64(seg, m, sku, &v);
	if (!err)
		err = shg_get_u64(seg, v.node, S.p_price, &price);
	if (!err)
		err = shg_txn_import(txn, v.node, &copy);
	shg_read_unlock(seg);
	if (err)
		return err;
	err = shg_txn_node_new(txn, S.order, &n);
	if (!err)
		err = shg_txn_set_u64(txn, F(n, S.r_sku), sku);
	if (!err)
		err = shg_txn_set_u64(txn, F(n, S.r_qty), 1 + sku % 5);
	if (!err)
		err = shg_txn_set_u64(txn, F(n, S.r_price), price);
	if (!err)
		err = shg_txn_set_node(txn, F(n, S.r_product), copy);
	v = (struct shg_val){ .kind = SHG_KIND_NODE, .node = n };
	if (!err)
		err = shg_txn_vec_push(txn, F(o, S.o_list), &v);
	return err;
}

static int order_writer(uint64_t seed)
{
	struct order_arg a = { .seed = seed };
	struct shg_root *ord;
	int err;

	CK(shg_seg_open(seg_name, NULL, &a.seg));
	CK(shg_root_open(a.seg, "orders", &ord));
	while (!atomic_load(&sh->stop)) {
		err = shg_update(ord, place_order, &a, 0);
		if (err == SHG_EBUDGET || err == SHG_ECONFLICT)
			continue;
		CK(err);
		atomic_fetch_add(&sh->orders, 1);
		usleep(200);
	}
	shg_root_close(ord);
	shg_seg_close(a.seg);
	return 0;
}

/* ---- readers -------------------------------------------------------------- */

static void check_catalog(struct shg_seg *seg, struct shg_off c)
{
	struct shg_map_iter it;
	struct shg_val k, v;
	uint64_t total, sum = 0, price, stock, base, n = 0;
	int err;

	CK(shg_node_is(seg, c, S.catalog));
	CK(shg_get_u64(seg, c, S.c_total, &total));
	CK(shg_get_node(seg, c, S.c_products, &v.node));
	CK(shg_map_iter_init(seg, v.node, &it));
	while ((err = shg_map_iter_next(&it, &k, &v)) == 0) {
		CK(shg_get_u64(seg, v.node, S.p_price, &price));
		CK(shg_get_u64(seg, v.node, S.p_stock, &stock));
		CK(shg_get_u64(seg, v.node, S.p_base, &base));
		if (price + stock != base || base != 1000 + k.u64)
			FAIL("sku %llu: price %llu + stock %llu != %llu",
			     (unsigned long long)k.u64,
			     (unsigned long long)price,
			     (unsigned long long)stock,
			     (unsigned long long)base);
		sum += stock;
		n++;
	}
	if (err != -ENOENT)
		CK(err);
	if (n != NPRODUCTS || sum != total)
		FAIL("catalog: %llu products, stock %llu, total %llu",
		     (unsigned long long)n, (unsigned long long)sum,
		     (unsigned long long)total);
}

static void check_orders(struct shg_seg *seg, struct shg_off o)
{
	struct shg_off list;
	struct shg_val v;
	uint64_t i, len, price, pprice, qty;

	CK(shg_get_node(seg, o, S.o_list, &list));
	len = (uint64_t)shg_vec_len(seg, list);
	for (i = len > 64 ? len - 64 : 0; i < len; i++) {
		CK(shg_vec_get(seg, list, i, &v));
		CK(shg_get_u64(seg, v.node, S.r_price, &price));
		CK(shg_get_u64(seg, v.node, S.r_qty, &qty));
		CK(shg_get_node(seg, v.node, S.r_product, &v.node));
		CK(shg_get_u64(seg, v.node, S.p_price, &pprice));
		if (price != pprice || qty < 1)
			FAIL("order %llu: price %llu, product copy %llu",
			     (unsigned long long)i, (unsigned long long)price,
			     (unsigned long long)pprice);
	}
}

static int reader(void)
{
	struct shg_seg *seg;
	struct shg_root *cat, *ord;
	struct shg_off n;

	CK(shg_seg_open(seg_name, NULL, &seg));
	CK(shg_root_open(seg, "orders", &ord));
	/* the catalog handle through the Orders graph's root ref */
	CK(shg_read_lock(seg));
	CK(shg_current_node(ord, &n));
	CK(shg_get_root_open(seg, n, S.o_catalog, &cat));
	shg_read_unlock(seg);
	while (!atomic_load(&sh->stop)) {
		CK(shg_read_lock(seg));
		CK(shg_current_node(cat, &n));
		check_catalog(seg, n);
		CK(shg_current_node(ord, &n));
		check_orders(seg, n);
		shg_read_unlock(seg);
		atomic_fetch_add(&sh->checks, 1);
	}
	shg_root_close(cat);
	shg_root_close(ord);
	shg_seg_close(seg);
	return 0;
}

/* FNV-1a over a product map's entries (a pinned version's fingerprint). */
static uint64_t catalog_hash(struct shg_seg *seg, struct shg_off c)
{
	struct shg_map_iter it;
	struct shg_val k, v;
	uint64_t h = 0xcbf29ce484222325ull, w[3];
	unsigned i;

	CK(shg_get_node(seg, c, S.c_products, &v.node));
	CK(shg_map_iter_init(seg, v.node, &it));
	while (shg_map_iter_next(&it, &k, &v) == 0) {
		w[0] = k.u64;
		CK(shg_get_u64(seg, v.node, S.p_price, &w[1]));
		CK(shg_get_u64(seg, v.node, S.p_stock, &w[2]));
		for (i = 0; i < sizeof(w); i++)
			h = (h ^ ((const uint8_t *)w)[i]) * 0x100000001b3ull;
	}
	return h;
}

/* Pin, fingerprint, wait for the catalog to move on, fingerprint again. */
static int pinned_reader(void)
{
	struct shg_seg *seg;
	struct shg_root *cat;
	struct shg_pin *pin;
	struct shg_version_info vi, now;
	uint64_t h0, h1;

	CK(shg_seg_open(seg_name, NULL, &seg));
	CK(shg_root_open(seg, "catalog", &cat));
	CK(shg_pin_current(cat, &pin));
	/* no read section needed: the pin holds the version */
	CK(shg_version_info(seg, shg_pin_version(pin), &vi));
	h0 = catalog_hash(seg, vi.node);
	while (!atomic_load(&sh->stop))
		usleep(10000);
	h1 = catalog_hash(seg, vi.node);
	CK(shg_read_lock(seg));
	CK(shg_version_info(seg, shg_version_current(cat), &now));
	shg_read_unlock(seg);
	if (h0 != h1)
		FAIL("pinned version changed under its pin");
	if (now.seq <= vi.seq + 10)
		FAIL("catalog did not move on (seq %llu -> %llu)",
		     (unsigned long long)vi.seq, (unsigned long long)now.seq);
	printf("inventory: pinned seq %llu unchanged while current moved to "
	       "%llu\n",
	       (unsigned long long)vi.seq, (unsigned long long)now.seq);
	fflush(stdout);
	CK(shg_unpin(pin));
	shg_root_close(cat);
	shg_seg_close(seg);
	return 0;
}

/* Enters a read section and never leaves: killed with SIGKILL. */
static int victim(void)
{
	struct shg_seg *seg;

	CK(shg_seg_open(seg_name, NULL, &seg));
	CK(shg_read_lock(seg));
	atomic_store(&sh->victim_in_section, 1);
	for (;;)
		pause();
}

/*
 * The Orders graph's root ref dangles once the catalog root is removed:
 * shg_get_root_version says so (-ESTALE), and `shmctl dump --json` prints
 * it as {"root":null,"slot":n} (run when $SHMCTL names the tool).
 */
static void dangling_ref(struct shg_seg *seg, const char *name)
{
	struct shg_root *ord;
	struct shg_off n, ver;
	const char *shmctl = getenv("SHMCTL");
	char cmd[512], out[8192];
	const char *p, *end;
	size_t len;
	FILE *f;
	int err;

	CK(shg_root_remove(seg, "catalog"));
	CK(shg_root_open(seg, "orders", &ord));
	CK(shg_read_lock(seg));
	CK(shg_current_node(ord, &n));
	err = shg_get_root_version(seg, n, S.o_catalog, &ver);
	shg_read_unlock(seg);
	shg_root_close(ord);
	if (err != -ESTALE)
		FAIL("removed catalog: ref gives %d, not -ESTALE", err);
	if (!shmctl) {
		printf("inventory: SHMCTL not set, dump of a dangling ref "
		       "not checked\n");
		return;
	}
	snprintf(cmd, sizeof(cmd),
		 "'%s' dump '%s' orders --json --depth 1 --limit 1", shmctl,
		 name);
	f = popen(cmd, "r");
	if (!f) {
		FAIL("cannot run %s", cmd);
		return;
	}
	len = fread(out, 1, sizeof(out) - 1, f);
	out[len] = 0;
	pclose(f);
	p = strstr(out, "\"catalog\":{\"root\":null,\"slot\":");
	if (!p) {
		FAIL("dump of a dangling root ref: %s", out);
		return;
	}
	end = strchr(p, '}');
	printf("inventory: shmctl dump shows the dangling ref as %.*s\n",
	       end ? (int)(end - p + 1) : 40, p);
}

/* ---- main ----------------------------------------------------------------- */

static pid_t spawn(int (*fn)(void))
{
	pid_t pid = fork();

	if (pid == 0)
		_exit(fn());
	return pid;
}

static pid_t spawn_seed(int (*fn)(uint64_t), uint64_t seed)
{
	pid_t pid = fork();

	if (pid == 0)
		_exit(fn(seed));
	return pid;
}

int main(int argc, char **argv)
{
	struct shg_opts o = { .size = sizeof(o), .capacity = 512ull << 20 };
	struct shg_recover_report rr;
	struct shg_seg *seg;
	char name[64];
	double secs = argc > 1 ? atof(argv[1]) : 2.0;
	uint64_t before;
	pid_t kids[8], vic;
	int i, nk = 0, st, bad = 0, problems;

	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		return 2;
	memset(sh, 0, sizeof(*sh));
	snprintf(name, sizeof(name), "/shg-inventory-%d", (int)getpid());
	seg_name = name;
	CK(shg_seg_create(name, &o, &seg));
	schema(seg);
	populate(seg);

	kids[nk++] = spawn_seed(catalog_writer, 1);
	kids[nk++] = spawn_seed(catalog_writer, 2);
	kids[nk++] = spawn_seed(order_writer, 3);
	kids[nk++] = spawn(reader);
	kids[nk++] = spawn(reader);
	kids[nk++] = spawn(pinned_reader);
	vic = spawn(victim);
	while (!atomic_load(&sh->victim_in_section))
		usleep(1000);
	usleep((useconds_t)(secs * 250000));
	/* a reader dies inside its read section */
	kill(vic, SIGKILL);
	waitpid(vic, NULL, 0);
	CK(shg_recover(seg, &rr));
	before = atomic_load(&sh->catalog_commits);
	usleep((useconds_t)(secs * 750000));
	if (atomic_load(&sh->catalog_commits) <= before)
		FAIL("no catalog commit after the killed reader");
	atomic_store(&sh->stop, 1);
	for (i = 0; i < nk; i++) {
		waitpid(kids[i], &st, 0);
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
			bad++;
	}
	problems = shg_check(seg, NULL, NULL, NULL);
	dangling_ref(seg, name);
	printf("inventory: %llu catalog commits, %llu orders, %llu reader "
	       "checks, %llu violations, %d failed processes, check %d, "
	       "recover released %u procs\n",
	       (unsigned long long)atomic_load(&sh->catalog_commits),
	       (unsigned long long)atomic_load(&sh->orders),
	       (unsigned long long)atomic_load(&sh->checks),
	       (unsigned long long)atomic_load(&sh->violations), bad, problems,
	       rr.procs_released);
	shg_seg_close(seg);
	if (shg_seg_unlink(name))
		bad++;
	if (atomic_load(&sh->orders) == 0 || atomic_load(&sh->checks) == 0)
		bad++;
	return atomic_load(&sh->violations) || bad || problems ? 1 : 0;
}
