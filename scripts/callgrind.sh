#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# callgrind.sh - instructions per operation of the map's hot paths, counted
# by valgrind's callgrind (repeatable, unlike wall-clock times on a shared
# machine). Builds bench/bench_cg in $BUILD_DIR (default: build).
#
#   scripts/callgrind.sh [N [OPS]]     default N=1000000 keys, OPS=20000
#
# Prints, for lookup, commit (one put per txn) and batch (1,000 puts per
# txn), the median over 3 runs of instructions per operation.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
N=${1:-1000000}
OPS=${2:-20000}
BUILD_DIR=${BUILD_DIR:-build}
command -v valgrind >/dev/null || {
	echo "callgrind: valgrind not found (apt-get install -y valgrind)" >&2
	exit 2
}
[[ -f $BUILD_DIR/Makefile ]] || ./scripts/build.sh
make -C "$BUILD_DIR" -s bench/bench_cg >/dev/null

printf '%-8s %12s %s\n' phase "Ir/op" "runs"
for phase in lookup commit batch; do
	ops=$OPS
	per=$OPS
	if [[ $phase == batch ]]; then
		ops=$((OPS / 1000 > 0 ? OPS / 1000 : 1))
		per=$((ops * 1000))
	fi
	runs=()
	for _ in 1 2 3; do
		ir=$("$BUILD_DIR/libtool" --mode=execute \
			valgrind --tool=callgrind --instr-atstart=no \
			--callgrind-out-file=/dev/null \
			"$BUILD_DIR/bench/bench_cg" "$N" "$phase" "$ops" 2>&1 |
			awk '/Collected/ { gsub(",", "", $NF); print $NF; exit }')
		runs+=($((ir / per)))
	done
	med=$(printf '%s\n' "${runs[@]}" | sort -n | sed -n 2p)
	printf '%-8s %12s %s\n' "$phase" "$med" "${runs[*]}"
done
