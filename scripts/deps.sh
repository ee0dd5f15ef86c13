#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# deps.sh - install the Debian packages shmgraph needs, per purpose.
#
# Idempotent: each package is checked with dpkg-query first; apt-get update
# and apt-get install run only when something is missing, so a second run
# is fast and touches nothing. Installs print one line per phase.
#
# Usage: scripts/deps.sh [demo|test|bench|ci]...   (default: demo)
#   demo   build the library, shmctl and the demo (./scripts/demo.sh)
#   test   demo + what the test suite and the bindings' tests use
#   bench  demo + LMDB (the benchmarks' peer), gnuplot and jq (plots)
#   ci     test + bench + clang (sanitizers, fuzzing), clang-format,
#          cppcheck and spin (CI's extra phases)
#   --ci   the same as ci (kept for older callers)
#   --list print the packages of the purposes given, one per line, and exit
# The README's by-hand dependency list is this file's demo and test lists
# (tests/shell/test_docs.sh checks that they agree).
set -euo pipefail

DEMO_PKGS=(build-essential autoconf automake libtool pkg-config liburcu-dev
	libnuma-dev libcmocka-dev)
# nats-server and libnats-dev: replication over NATS JetStream (the
# cluster test and bench_repl; the library builds without them).
TEST_PKGS=(liblmdb-dev python3 python3-pytest python3-pip python3-setuptools
	python3-wheel nim nats-server libnats-dev)
BENCH_PKGS=(liblmdb-dev gnuplot-nox jq nats-server libnats-dev)
CI_PKGS=(clang libclang-rt-14-dev clang-format cppcheck spin)

usage() {
	echo "usage: ${0##*/} [demo|test|bench|ci|--ci]... [--list]" >&2
}

PKGS=()
list=0
for arg in "$@"; do
	case "$arg" in
	demo) PKGS+=("${DEMO_PKGS[@]}") ;;
	test) PKGS+=("${DEMO_PKGS[@]}" "${TEST_PKGS[@]}") ;;
	bench) PKGS+=("${DEMO_PKGS[@]}" "${BENCH_PKGS[@]}") ;;
	ci | --ci)
		PKGS+=("${DEMO_PKGS[@]}" "${TEST_PKGS[@]}" "${BENCH_PKGS[@]}"
			"${CI_PKGS[@]}")
		;;
	--list) list=1 ;;
	-h | --help)
		usage
		exit 0
		;;
	*)
		echo "deps: unknown argument: $arg" >&2
		usage
		exit 2
		;;
	esac
done
((${#PKGS[@]})) || PKGS=("${DEMO_PKGS[@]}")
mapfile -t PKGS < <(printf '%s\n' "${PKGS[@]}" | awk '!seen[$0]++')
if ((list)); then
	printf '%s\n' "${PKGS[@]}"
	exit 0
fi

is_installed() {
	local status
	status=$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) || return 1
	[[ $status == "install ok installed" ]]
}

missing=()
for p in "${PKGS[@]}"; do
	if ! is_installed "$p"; then
		missing+=("$p")
	fi
done

if ((${#missing[@]} == 0)); then
	echo "deps: all ${#PKGS[@]} packages already installed"
	exit 0
fi

SUDO=()
if ((EUID != 0)); then
	if command -v sudo >/dev/null 2>&1; then
		SUDO=(sudo)
	else
		echo "deps: missing ${missing[*]}; not root and no sudo" >&2
		exit 1
	fi
fi

start=$SECONDS
log=$(mktemp "${TMPDIR:-/tmp}/shg-deps.XXXXXX")
trap 'rm -f "$log"' EXIT
echo "deps: missing ${#missing[@]}: ${missing[*]}"
echo "deps: apt-get update ..."
if ! "${SUDO[@]}" apt-get update -qq >"$log" 2>&1; then
	cat "$log" >&2
	echo "deps: apt-get update failed" >&2
	exit 1
fi
echo "deps: apt-get install ... ($((SECONDS - start)) s so far)"
if ! "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
	apt-get install -y -qq --no-install-recommends "${missing[@]}" \
	>"$log" 2>&1; then
	cat "$log" >&2
	echo "deps: apt-get install failed" >&2
	exit 1
fi
echo "deps: installed ${#missing[@]} package(s) in $((SECONDS - start)) s"
