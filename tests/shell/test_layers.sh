#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# test_layers.sh - the layer check passes on this tree, and fails on copies
# of it with one violation injected (so the check can fail).
set -u
SRC=${SHG_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
BLD=${SHG_BUILDDIR:-$SRC/build}
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() {
	echo "FAIL: $*"
	fail=$((fail + 1))
}

if out=$(BUILD_DIR=$BLD "$SRC/scripts/check-layers.sh" "$SRC" 2>&1); then
	ok
else
	bad "layer check on this tree: $out"
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/shg-layers.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
# inject NAME SED-EXPR FILE: a copy of the sources with one change; the
# check (without objects) must fail on it.
inject() {
	local what=$1 expr=$2 file=$3 t=$tmp/$1
	mkdir -p "$t"
	cp -r "$SRC/include" "$SRC/shm" "$SRC/lib" "$SRC/tools" "$SRC/bench" "$t/"
	sed -i "$expr" "$t/$file"
	if BUILD_DIR=$t/none "$SRC/scripts/check-layers.sh" "$t" >/dev/null 2>&1; then
		bad "layer check missed: $what"
	else
		ok
	fi
}
inject shm-includes-lib '1a #include "graph_internal.h"' shm/held.c
inject shm-calls-lib '$a static void *x(void) { return (void *)shg__node; }' shm/held.c
inject shm-uses-lib-macro '$a int y = SHG_GRAPH_RULES;' shm/segment.c
inject tool-includes-private '1a #include "internal.h"' tools/shmctl.c
inject bench-includes-private '1a #include "graph_internal.h"' bench/knobs.c

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
