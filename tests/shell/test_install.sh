#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# test_install.sh BUILD_DIR - `make install` into a staging directory, then
# build an outside program with `pkg-config --cflags --libs shmgraph` alone
# and run it against the staged library: the installed headers
# (<shmgraph.h>, <shmgraph/*.h>), the .pc file and the shared library are
# all a user needs.
set -euo pipefail
BLD=$(cd "${1:-build}" && pwd)
stage=$(mktemp -d "${TMPDIR:-/tmp}/shg-install.XXXXXX")
trap 'rm -rf "$stage"' EXIT

make -s -C "$BLD" install DESTDIR="$stage" >/dev/null
prefix=$(sed -n 's/^prefix=//p' "$BLD/shmgraph.pc")
libdir=$(sed -n 's/^libdir=//p' "$BLD/shmgraph.pc" | sed "s|\${exec_prefix}|$prefix|")
pcdir=$(find "$stage" -name shmgraph.pc -printf '%h\n' | head -1)
[[ -n $pcdir ]] || { echo "FAIL: no shmgraph.pc installed"; exit 1; }
for h in shmgraph.h shmgraph/base.h shmgraph/graph.h shmgraph/version.h; do
	[[ -f $stage$prefix/include/$h ]] || { echo "FAIL: $h not installed"; exit 1; }
done
# No private header may be installed.
if find "$stage" -name 'internal.h' -o -name 'graph_internal.h' -o -name 'layout.h' | grep -q .; then
	echo "FAIL: a private header was installed"
	exit 1
fi

cat >"$stage/outside.c" <<'C'
#include <shmgraph.h>
#include <stdio.h>
#include <unistd.h>

#define CHECK(x)                                                              \
	do {                                                                  \
		int e_ = (x);                                                 \
		if (e_ < 0) {                                                 \
			fprintf(stderr, "%s: %s\n", #x, shg_strerror(e_));    \
			return 1;                                             \
		}                                                             \
	} while (0)

int main(void)
{
	char name[64];
	struct shg_seg *seg;
	struct shg_root *root;
	struct shg_txn *txn;
	struct shg_version_info vi;
	struct shg_val v = { .kind = SHG_KIND_U64, .u64 = 42 }, out;

	snprintf(name, sizeof(name), "/shg-outside-%d", (int)getpid());
	CHECK(shg_seg_create(name, NULL, &seg));
	CHECK(shg_root_create(seg, "cfg", &root));
	CHECK(shg_txn_begin(root, &txn));
	CHECK(shg_txn_map_new(txn, SHG_REF_ROOT, SHG_KIND_U64, SHG_KIND_U64));
	CHECK(shg_txn_map_put_u64(txn, SHG_REF_ROOT, 7, &v));
	CHECK(shg_txn_commit(txn));
	CHECK(shg_read_lock(seg));
	CHECK(shg_version_info(seg, shg_version_current(root), &vi));
	CHECK(shg_map_get_u64(seg, vi.node, 7, &out));
	shg_read_unlock(seg);
	shg_root_close(root);
	shg_seg_close(seg);
	CHECK(shg_seg_unlink(name));
	printf("shmgraph %s: %llu\n", SHG_VERSION_STRING,
	       (unsigned long long)out.u64);
	return out.u64 == 42 ? 0 : 1;
}
C
export PKG_CONFIG_PATH=$pcdir PKG_CONFIG_SYSROOT_DIR=$stage
flags=$(pkg-config --cflags --libs shmgraph)
cc -std=c11 -Wall -Wextra -Werror -o "$stage/outside" "$stage/outside.c" $flags
out=$(LD_LIBRARY_PATH=$stage$libdir "$stage/outside")
echo "$out" | grep -q ': 42$' || { echo "FAIL: outside program printed '$out'"; exit 1; }
echo "install: outside program built with pkg-config alone: $out"

# The README's example, taken from the README text itself: compiled with
# the README's compile line (plus -Werror), run as a writer and a reader
# process, twice (it must be re-runnable), then checked with the staged
# shmctl: one root, nothing held, the segment sound.
SRC=$(cd "$(dirname "$0")/../.." && pwd)
awk '/<!-- readme-example: hello.c/ {f = 1; next}
     f && /^```c$/ {p = 1; next}
     p && /^```$/ {exit}
     p {print}' "$SRC/README.md" >"$stage/hello.c"
[[ -s $stage/hello.c ]] || { echo "FAIL: no example found in README.md"; exit 1; }
cc -Wall -Wextra -Werror -o "$stage/hello" "$stage/hello.c" $flags
export LD_LIBRARY_PATH=$stage$libdir
shmctl=$stage$prefix/bin/shmctl
"$shmctl" destroy /hello >/dev/null 2>&1 || true
trap '"$shmctl" destroy /hello >/dev/null 2>&1; rm -rf "$stage"' EXIT
for round in 1 2; do
	"$stage/hello" put 1 8 || { echo "FAIL: hello put (round $round)"; exit 1; }
	"$stage/hello" put 2 $((round + 40)) || { echo "FAIL: hello put 2"; exit 1; }
	got=$("$stage/hello" get 1)$("$stage/hello" get 2)
	[[ $got == "8$((round + 40))" ]] || { echo "FAIL: hello get printed '$got'"; exit 1; }
done
"$stage/hello" get 3 2>/dev/null && { echo "FAIL: hello get of a missing key succeeded"; exit 1; }
holds=$("$shmctl" roots /hello --json | python3 -c 'import json,sys; r=json.load(sys.stdin)["roots"]; print(len(r), r[0]["holds"], r[0]["pins"])')
[[ $holds == "1 0 0" ]] || { echo "FAIL: after hello exits: roots/holds/pins $holds"; exit 1; }
"$shmctl" check /hello >/dev/null || { echo "FAIL: shmctl check /hello"; exit 1; }
echo "install: README example built from README.md, ran twice as writer and reader"
echo "2 passed, 0 failed"
