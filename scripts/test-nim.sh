#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# test-nim.sh - build and run the Nim binding's tests (bindings/nim).
#
# Builds the C library first if build/.libs/libshmgraph.so is missing
# (./scripts/build.sh), installs Debian's nim if it is missing (apt-get),
# then compiles bindings/nim/tests/test_shmgraph.nim against the build tree
# (-d:shgLibDir=$BUILD_DIR/.libs, ORC, threads on) and runs it, and
# compiles the examples and runs the example benchmark briefly.
# Exits non-zero if anything fails.
#
# Usage: scripts/test-nim.sh [--no-examples]
# Environment: BUILD_DIR (default: build), NIM_FLAGS (extra nim flags).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
BUILD_DIR=${BUILD_DIR:-build}
BUILD_DIR=${BUILD_DIR%/}
examples=1
for arg in "$@"; do
	case "$arg" in
	--no-examples) examples=0 ;;
	*)
		echo "test-nim: unknown argument: $arg" >&2
		exit 2
		;;
	esac
done

if [[ ! -e $BUILD_DIR/.libs/libshmgraph.so ]]; then
	echo "test-nim: $BUILD_DIR/.libs/libshmgraph.so missing; building"
	BUILD_DIR=$BUILD_DIR ./scripts/build.sh --for test
fi
if ! command -v nim >/dev/null; then
	echo "test-nim: nim missing; apt-get install nim"
	SUDO=()
	((EUID == 0)) || SUDO=(sudo)
	"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nim ||
		{ "${SUDO[@]}" apt-get update -qq &&
			"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
				apt-get install -y -qq nim; }
fi
echo "test-nim: $(nim --version 2>/dev/null | head -1)"

LIBDIR=$ROOT/$BUILD_DIR/.libs
CACHE=$ROOT/$BUILD_DIR/nimcache
# shellcheck disable=SC2206
flags=(--hints:off -d:shgLibDir="$LIBDIR" ${NIM_FLAGS:-})
nimc() { # nimc NAME SOURCE OUTPUT [FLAG]
	nim c "${flags[@]}" ${4:-} --nimcache:"$CACHE/$1" -o:"$3" "$2"
}

cd bindings/nim
echo "test-nim: compile tests/test_shmgraph.nim"
nimc test tests/test_shmgraph.nim "$ROOT/$BUILD_DIR/nim-test_shmgraph"
echo "test-nim: run"
SHG_SHMCTL=$ROOT/$BUILD_DIR/tools/shmctl "$ROOT/$BUILD_DIR/nim-test_shmgraph"

if ((examples)); then
	for ex in catalog_shmgraph catalog_lock bench_catalog; do
		echo "test-nim: compile examples/$ex.nim"
		nimc "$ex" "examples/$ex.nim" "$ROOT/$BUILD_DIR/nim-$ex" -d:release
	done
	echo "test-nim: example benchmark, smoke run"
	"$ROOT/$BUILD_DIR/nim-bench_catalog" --quick --bin "$ROOT/$BUILD_DIR/nim-"
fi
echo "test-nim: OK"
