#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# build.sh - bootstrap, configure and build shmgraph out of tree (VPATH).
#
# Steps (each skipped when already up to date, so a re-run is quick):
#   1. scripts/deps.sh [--ci]         install missing Debian packages
#   2. autoreconf -fi                 if configure is missing or older than
#                                     configure.ac / any Makefile.am
#   3. <srcdir>/configure $SHG_CONFIGURE_FLAGS
#                                     in $BUILD_DIR, only if config.status is
#                                     missing or the flags or the optional
#                                     libraries found (lmdb, libnats) changed
#                                     (stored in $BUILD_DIR/.shg-flags)
#   4. make -C $BUILD_DIR -j$(nproc)
#
# Usage: scripts/build.sh [--for demo|test|bench] [--ci]
#   --for PURPOSE        which packages deps.sh installs (default: demo)
#   --ci                 deps.sh ci: everything, clang and CI tools too
# Environment:
#   BUILD_DIR            build tree, relative to the repo root (default: build)
#   SHG_CONFIGURE_FLAGS  extra configure arguments, word-split (e.g.
#                        "--enable-asan --enable-ubsan CC=clang")
#   SHG_SKIP_DEPS=1      do not run deps.sh
#   MAKE_JOBS            parallel make jobs (default: nproc)
#   CC CFLAGS CPPFLAGS LDFLAGS  seen by configure; part of the flag check
#
# Can be executed or sourced; when sourced it runs in a subshell so that
# neither the cd nor the shell options leak into the caller.

shg_build() (
	set -euo pipefail

	local root
	root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
	cd "$root"

	local deps_args=()
	while (($#)); do
		case "$1" in
		--ci) deps_args+=(ci) ;;
		--for)
			deps_args+=("${2:-}")
			shift
			;;
		*)
			echo "build: unknown argument: $1" >&2
			echo "usage: scripts/build.sh [--for demo|test|bench] [--ci]" >&2
			return 2
			;;
		esac
		shift
	done

	local build_dir=${BUILD_DIR:-build}
	build_dir=${build_dir%/}
	local jobs=${MAKE_JOBS:-$(nproc 2>/dev/null || echo 2)}

	# 1. dependencies
	if [[ ${SHG_SKIP_DEPS:-0} != 1 ]]; then
		./scripts/deps.sh "${deps_args[@]}"
	fi

	# 2. bootstrap
	local reason=""
	if [[ ! -x configure ]]; then
		reason="configure missing"
	else
		local f
		while IFS= read -r -d '' f; do
			if [[ $f -nt configure ]]; then
				reason="$f is newer than configure"
				break
			fi
		done < <(find . \( -path ./.git -o \( -path './build*' \
			! -path ./build-aux \) \) -prune -o \
			\( -name configure.ac -o -name Makefile.am \) \
			-type f -print0)
	fi
	local bootstrapped=0
	if [[ -n $reason ]]; then
		echo "build: autoreconf -fi ($reason)"
		autoreconf -fi
		# autoconf may keep an unchanged configure's old mtime
		touch configure
		bootstrapped=1
	fi

	if [[ -f config.status ]]; then
		echo "build: source tree is configured in-tree; VPATH builds" \
			"need 'make distclean' in $root first" >&2
		return 1
	fi

	# 3. configure
	mkdir -p "$build_dir"
	local srcrel
	srcrel=$(realpath --relative-to="$build_dir" "$root")

	local flags=()
	local saved_noglob=${-//[^f]/}
	set -f
	# shellcheck disable=SC2206 # word splitting is intended
	flags=(${SHG_CONFIGURE_FLAGS:-})
	[[ -n $saved_noglob ]] || set +f

	# The optional libraries configure looks for are part of the
	# signature: a tree configured before deps.sh installed one (demo.sh,
	# then test.sh) is configured again, or it would build without it.
	local optional="" m
	for m in lmdb libnats; do
		if pkg-config --exists "$m" 2>/dev/null; then
			optional+="$m "
		fi
	done
	local sig
	sig=$(printf 'flags=%s\nCC=%s\nCFLAGS=%s\nCPPFLAGS=%s\nLDFLAGS=%s\noptional=%s\n' \
		"${flags[*]}" "${CC:-}" "${CFLAGS:-}" "${CPPFLAGS:-}" \
		"${LDFLAGS:-}" "$optional")
	local sigfile="$build_dir/.shg-flags"

	local why=""
	if [[ ! -f $build_dir/config.status ]]; then
		why="no config.status"
	elif [[ ! -f $sigfile ]] || [[ $(<"$sigfile") != "$sig" ]]; then
		why="flags or optional libraries changed"
	elif ((bootstrapped)); then
		why="configure regenerated"
	fi

	if [[ -n $why ]]; then
		if [[ $why == "flags or optional libraries changed" &&
			-f $build_dir/Makefile ]]; then
			echo "build: make -C $build_dir clean ($why)"
			make -C "$build_dir" clean >/dev/null 2>&1 || true
		fi
		rm -f "$sigfile"
		echo "build: configure in $build_dir ($why):" \
			"$srcrel/configure ${flags[*]}"
		(cd "$build_dir" && "$srcrel/configure" "${flags[@]}")
		printf '%s\n' "$sig" >"$sigfile"
	fi

	# 4. build
	echo "build: make -C $build_dir -j$jobs"
	make -C "$build_dir" -j"$jobs"
)

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
	set -euo pipefail
	shg_build "$@"
else
	shg_build "$@"
fi
