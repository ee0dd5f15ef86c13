#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# bench.sh - build shmgraph (optimised) and run a benchmark suite.
#
# Usage: scripts/bench.sh SUITE [--quick] [extra args passed to the suite]
#   SUITE    micro   read-lock pairs, grace periods, alloc/free, retire
#                    (bench/bench_micro), side by side with liburcu and glibc
#            map     persistent map lookups, commits, batches, build, memory,
#                    retained memory with a pin (bench/bench_map), side by
#                    side with rwlock-shm, LMDB, liburcu lfht, flat table
#            all     every suite: micro, then map
#   --quick  short repetitions (micro: a few seconds; map: < 60 s)
#
# Steps: scripts/build.sh (skipped with SHG_BENCH_NO_BUILD=1), then each
# suite program with SHG_COMMIT set, appending one JSON object per
# measurement to bench/results/<suite>-<UTC date>-<commit>.jsonl, copied to
# bench/results/<suite>-latest.jsonl; the program prints its table.
#
# Environment: BUILD_DIR (default: build), SHG_BENCH_NO_BUILD=1, and what
# scripts/build.sh reads (SHG_CONFIGURE_FLAGS, SHG_SKIP_DEPS, MAKE_JOBS).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

usage() {
	echo "usage: scripts/bench.sh SUITE [--quick] [extra args]" >&2
	echo "  SUITE: micro | map | all" >&2
}

if (($# < 1)); then
	usage
	exit 2
fi
suite=$1
shift
case "$suite" in
micro) programs=(micro) ;;
map) programs=(map) ;;
all) programs=(micro map) ;;
-h | --help)
	usage
	exit 0
	;;
*)
	echo "bench: unknown suite: $suite" >&2
	usage
	exit 2
	;;
esac

BUILD_DIR=${BUILD_DIR:-build}
BUILD_DIR=${BUILD_DIR%/}
export BUILD_DIR

if [[ ${SHG_BENCH_NO_BUILD:-0} != 1 ]]; then
	./scripts/build.sh
fi

commit=unknown
if git rev-parse --git-dir >/dev/null 2>&1; then
	commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
	if [[ $commit != unknown ]] &&
		[[ -n $(git status --porcelain --untracked-files=no 2>/dev/null) ]]; then
		commit="$commit-dirty"
	fi
fi
export SHG_COMMIT=$commit

# Compiler flags of the build, for the machine description in the JSON.
cflags=unknown
if [[ -f $BUILD_DIR/Makefile ]]; then
	cflags=$(sed -n 's/^CFLAGS = //p' "$BUILD_DIR/Makefile" | head -n 1)
	san=$(sed -n 's/^SAN_CFLAGS = //p' "$BUILD_DIR/Makefile" | head -n 1)
	cflags="CFLAGS=${cflags:-none} bench=-O2 sanitizers=${san:-none}"
	if [[ -n ${san// /} ]]; then
		echo "bench: warning: $BUILD_DIR is built with sanitizers" \
			"($san); figures are not representative" >&2
	fi
fi
export SHG_BENCH_CFLAGS=$cflags

results=bench/results
mkdir -p "$results"
stamp=$(date -u +%Y%m%dT%H%M%SZ)
out="$results/$suite-$stamp-$commit.jsonl"
: >"$out"

for prog in "${programs[@]}"; do
	bin="$BUILD_DIR/bench/bench_$prog"
	if [[ ! -x $bin ]]; then
		echo "bench: $bin is missing (did the build fail?)" >&2
		exit 1
	fi
	echo "bench: running $prog (commit $commit)"
	"$bin" --json "$out" "$@"
done

cp "$out" "$results/$suite-latest.jsonl"
echo "bench: $(wc -l <"$out") records in $out (copy: $results/$suite-latest.jsonl)"
