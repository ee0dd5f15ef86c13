#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# test.sh - build shmgraph and run its test suite (the README's test command).
#
# Always:          check: build + `make check` in $BUILD_DIR (default: build)
#                  install: tests/shell/test_install.sh (staged install;
#                  an outside program and the README's example built with
#                  pkg-config alone)
#                  python: scripts/test-python.sh (the Python binding's
#                  pytest suite against $BUILD_DIR's library, ~10 s)
#                  repl: make check-repl, the replication cluster test
#                  (tests/shell/test_repl.sh: 3 NATS JetStream servers on
#                  loopback, ~20 s); without nats-server or libnats it
#                  says why and skips, which CI mode counts as a failure
#                  (scripts/deps.sh test installs both)
#                  nim: scripts/test-nim.sh (the Nim binding's unittest
#                  suite against $BUILD_DIR; without --quick also compiles
#                  the examples and smoke-runs their benchmark)
# In CI mode (CI=true in the environment, or --ci), additionally:
#   format         every tracked *.c / *.h must pass clang-format -Werror
#   cppcheck       static analysis of shm/, lib/, tools/
#   werror         build-werror:  --enable-werror, make check
#   asan           build-asan:    --enable-asan --enable-ubsan (CC=clang if
#                                 available, else gcc), make check
#   tsan           build-tsan: --enable-tsan, the thread-level tests
#   distcheck      make -C $BUILD_DIR distcheck
#   fuzz           scripts/fuzz.sh --time $FUZZ_TIME (default 60) for each
#                  libFuzzer target (build-fuzz-lf); fails on any finding
#   model          scripts/model.sh: the SPIN models of tests/model/, each
#                  checked exhaustively within its bounds, and their broken
#                  variants, which must fail (about 70 s of CPU)
#   bench          scripts/bench.sh all --quick: every benchmark program
#                  runs and verifies its lookups (a smoke test, not a
#                  measurement; results go to bench/results/, ignored)
# The format phase also checks that docs/API.md matches the headers
# (scripts/apidoc.py), docs/python-api.md the Python docstrings
# (scripts/pyapidoc.py), docs/nim-api/ the Nim binding (scripts/nimdoc.sh),
# and that the layers are one-way (scripts/check-layers.sh).
# --quick skips cppcheck, werror, asan, tsan, distcheck, fuzz, model and
# bench even in CI mode (format still runs in CI mode).  --fail-fast stops
# after the first failed phase.
#
# Each phase prints "== phase ==" and its elapsed time; a summary line
# follows at the end.  A phase that returns 77 is SKIP (it prints why; only
# outside CI mode).  Exits non-zero if any phase failed.
#
# Environment: CI, BUILD_DIR, SHG_CONFIGURE_FLAGS (main tree only),
#              CHECK_JOBS (default 2), MAKE_JOBS (default nproc),
#              FUZZ_TIME (seconds per fuzz target, default 60).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

usage() {
	echo "usage: scripts/test.sh [--ci] [--quick] [--fail-fast]" >&2
}

ci=0
quick=0
fail_fast=0
[[ ${CI:-} == true ]] && ci=1
for arg in "$@"; do
	case "$arg" in
	--ci) ci=1 ;;
	--quick) quick=1 ;;
	--fail-fast) fail_fast=1 ;;
	-h | --help)
		usage
		exit 0
		;;
	*)
		echo "test: unknown argument: $arg" >&2
		usage
		exit 2
		;;
	esac
done

BUILD_DIR=${BUILD_DIR:-build}
BUILD_DIR=${BUILD_DIR%/}
CHECK_JOBS=${CHECK_JOBS:-2}
MAKE_JOBS=${MAKE_JOBS:-$(nproc 2>/dev/null || echo 2)}
export MAKE_JOBS

build_args=(--for test)
MARKER=$(mktemp "${TMPDIR:-/tmp}/shg-test.XXXXXX")
trap 'rm -f "$MARKER"' EXIT
((ci)) && build_args+=(--ci)

# dump_failed_logs DIR MARKER: print the log of every test under DIR that
# did not pass (automake parallel harness: foo.trs next to foo.log), or the
# test-suite.log files if no per-test result says so.  Only files written
# after MARKER count, so stale logs of earlier runs are not shown.
dump_failed_logs() {
	local dir=$1 marker=$2 trs log found=0
	[[ -d $dir ]] || return 0
	while IFS= read -r -d '' trs; do
		if grep -qE '^:test-result: (FAIL|ERROR|XPASS)' "$trs"; then
			log=${trs%.trs}.log
			[[ -f $log ]] || continue
			found=1
			echo "---------- $log ----------"
			cat "$log"
		fi
	done < <(find "$dir" -name '*.trs' -type f -newer "$marker" -print0)
	if ((!found)); then
		while IFS= read -r -d '' log; do
			found=1
			echo "---------- $log ----------"
			cat "$log"
		done < <(find "$dir" -name 'test-suite.log' -type f \
			-newer "$marker" -print0)
	fi
	if ((found)); then
		echo "---------- end of logs ----------"
	else
		echo "test: no test logs written (build failure?)"
	fi
	return 0
}

# build_and_check DIR [build.sh args...]: configure/build DIR via build.sh
# (SHG_CONFIGURE_FLAGS must already be set) and run make check there.
build_and_check() {
	local dir=$1
	shift
	BUILD_DIR=$dir ./scripts/build.sh "$@"
	echo "test: make -C $dir check -j$CHECK_JOBS"
	: >"$MARKER"
	if ! make -C "$dir" check -j"$CHECK_JOBS"; then
		dump_failed_logs "$dir" "$MARKER"
		return 1
	fi
}

phase_check() {
	build_and_check "$BUILD_DIR" "${build_args[@]}"
}

phase_format() {
	command -v clang-format >/dev/null || {
		echo "test: clang-format not found" >&2
		return 1
	}
	local f bad=() n=0
	while IFS= read -r -d '' f; do
		[[ -f $f ]] || continue
		n=$((n + 1))
		if ! clang-format --dry-run -Werror "$f" >/dev/null 2>&1; then
			bad+=("$f")
		fi
	done < <(git ls-files -z -- '*.c' '*.h')
	local rc=0
	if ((${#bad[@]})); then
		echo "test: ${#bad[@]} of $n files are not clang-format clean:"
		printf '  %s\n' "${bad[@]}"
		echo "test: fix with: clang-format -i ${bad[*]}"
		rc=1
	else
		echo "test: $n files clang-format clean"
	fi
	check_apidoc || rc=1
	./scripts/check-layers.sh || rc=1
	python3 scripts/pyapidoc.py --check || rc=1
	./scripts/nimdoc.sh --check || rc=1
	return $rc
}

# The staged install: headers, .pc and library suffice to build a program.
phase_install() {
	tests/shell/test_install.sh "$BUILD_DIR"
}

# Static analysis of the library and the tools. unknownMacro: liburcu's
# list iterators are macros from system headers, which cppcheck does not
# read.
phase_cppcheck() {
	command -v cppcheck >/dev/null || {
		echo "test: cppcheck not found" >&2
		return 1
	}
	cppcheck -q --std=c11 --enable=warning,performance,portability \
		--error-exitcode=1 --inline-suppr --suppress=unknownMacro \
		-D__GNUC__ -D_GNU_SOURCE -I include -I "$BUILD_DIR/include" \
		-I shm -I lib -I "$BUILD_DIR" shm lib tools
	echo "test: cppcheck found nothing in shm/, lib/, tools/"
}

# ThreadSanitizer over the tests whose concurrency is mostly threads of
# one process. TSan cannot follow other processes: the segment's
# process-shared locks, locked elsewhere or taken over, look "unlocked" to
# it; tests/tsan.supp suppresses exactly that report (data races stay on).
TSAN_TESTS="tests/unit/test_alloc tests/unit/test_roots tests/unit/test_registry"
phase_tsan() {
	SHG_CONFIGURE_FLAGS="--enable-tsan --disable-bench" SHG_SKIP_DEPS=1 \
		BUILD_DIR=build-tsan ./scripts/build.sh
	echo "test: TSan: $TSAN_TESTS"
	: >"$MARKER"
	if ! TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$ROOT/tests/tsan.supp" \
		make -C build-tsan check -j"$CHECK_JOBS" TESTS="$TSAN_TESTS"; then
		dump_failed_logs build-tsan "$MARKER"
		return 1
	fi
}

# docs/API.md must be what scripts/apidoc.py makes of the headers now.
check_apidoc() {
	local tmp rc=0
	tmp=$(mktemp "${TMPDIR:-/tmp}/shg-api.XXXXXX")
	if ! python3 scripts/apidoc.py -o "$tmp"; then
		echo "test: scripts/apidoc.py failed"
		rm -f "$tmp"
		return 1
	fi
	if ! diff -u docs/API.md "$tmp"; then
		echo "test: docs/API.md is out of date with include/shmgraph/*.h;" \
			"regenerate: scripts/apidoc.py -o docs/API.md"
		rc=1
	else
		echo "test: docs/API.md is up to date"
	fi
	rm -f "$tmp"
	return $rc
}

phase_python() {
	BUILD_DIR=$BUILD_DIR ./scripts/test-python.sh
}

phase_nim() {
	local args=()
	((quick)) && args+=(--no-examples)
	BUILD_DIR=$BUILD_DIR ./scripts/test-nim.sh "${args[@]}"
}

phase_repl() {
	local rc=0 log
	log=$(mktemp "${TMPDIR:-/tmp}/shg-repl.XXXXXX")
	make -C "$BUILD_DIR" check-repl >"$log" 2>&1 || rc=$?
	cat "$log"
	if grep -q '^SKIP:' "$log"; then
		rm -f "$log"
		if ((ci)); then
			echo "test: repl skipped in CI mode: a failure"
			return 1
		fi
		return 77 # shown as SKIP in the summary
	fi
	rm -f "$log"
	return "$rc"
}

phase_werror() {
	SHG_CONFIGURE_FLAGS="--enable-werror" SHG_SKIP_DEPS=1 \
		build_and_check build-werror
}

phase_asan() {
	local cc=gcc
	command -v clang >/dev/null && cc=clang
	export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
	export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
	SHG_CONFIGURE_FLAGS="--enable-asan --enable-ubsan CC=$cc" \
		SHG_SKIP_DEPS=1 build_and_check build-asan
}

phase_fuzz() {
	./scripts/fuzz.sh --time "${FUZZ_TIME:-60}"
}

phase_model() {
	./scripts/model.sh
}

phase_bench() {
	SHG_BENCH_NO_PLOT=1 ./scripts/bench.sh all --quick
}

phase_distcheck() {
	echo "test: make -C $BUILD_DIR distcheck -j$MAKE_JOBS"
	: >"$MARKER"
	if ! make -C "$BUILD_DIR" distcheck -j"$MAKE_JOBS"; then
		dump_failed_logs "$BUILD_DIR" "$MARKER"
		return 1
	fi
}

phases=(check install repl python nim)
if ((ci)); then
	phases+=(format)
	((quick)) || phases+=(cppcheck werror asan tsan distcheck fuzz model bench)
fi

declare -A result=()
failed=0
for p in "${phases[@]}"; do
	result[$p]=SKIP
done
for p in "${phases[@]}"; do
	if ((failed && fail_fast)); then
		continue
	fi
	echo
	echo "== $p =="
	start=$SECONDS
	# Not in an `if`/`||` context, so `set -e` stays active in the subshell.
	set +e
	(
		set -e
		"phase_$p"
	)
	rc=$?
	set -e
	elapsed=$((SECONDS - start))
	if ((rc == 0)); then
		result[$p]=PASS
		echo "== $p: PASS (${elapsed}s) =="
	elif ((rc == 77)); then
		result[$p]=SKIP
		echo "== $p: SKIP (${elapsed}s; the reason is printed above) =="
	else
		result[$p]=FAIL
		failed=1
		echo "== $p: FAIL (exit $rc, ${elapsed}s) =="
	fi
done

summary=""
for p in "${phases[@]}"; do
	summary+=" $p=${result[$p]}"
done
echo
if ((failed)); then
	echo "== summary:$summary -> FAILED =="
	exit 1
fi
echo "== summary:$summary -> OK =="
