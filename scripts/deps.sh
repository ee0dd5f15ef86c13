#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# deps.sh - install the Debian packages needed to build and test shmgraph.
#
# Idempotent: each package is checked with dpkg-query first; apt-get update
# and apt-get install run only when something is missing, so a second run
# is fast and touches nothing.
#
# Usage: scripts/deps.sh [--ci]
#   --ci   also install clang and libclang-rt-14-dev (sanitizers, fuzzing)
set -euo pipefail

PKGS=(
	build-essential autoconf automake autoconf-archive libtool pkg-config
	liburcu-dev libnuma-dev libcmocka-dev liblmdb-dev
	clang-format jq python3 gnuplot-nox
	spin
)
CI_PKGS=(clang libclang-rt-14-dev)

usage() {
	echo "usage: ${0##*/} [--ci]" >&2
}

for arg in "$@"; do
	case "$arg" in
	--ci) PKGS+=("${CI_PKGS[@]}") ;;
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

echo "deps: missing: ${missing[*]}"
echo "deps: apt-get update"
"${SUDO[@]}" apt-get update -qq
echo "deps: apt-get install ${missing[*]}"
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
	apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "deps: installed ${#missing[@]} package(s)"
