#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# fuzz.sh - build the libFuzzer targets (tests/fuzz/) and run each one for a
# bounded time.
#
# Usage: scripts/fuzz.sh [--time SEC] [--keep] [TARGET...]
#   TARGET      segment, snapshot (or fuzz_segment, ...); default: all
#               targets the tree builds
#   --time SEC  run each target for SEC seconds (default 60)
#   --keep      keep the work corpus of earlier runs (default: start again
#               from the committed seeds each run)
#
# Builds in $FUZZ_BUILD_DIR (default build-fuzz-lf) with clang,
# CFLAGS=-fsanitize=fuzzer-no-link, --enable-asan --enable-ubsan, then links
# tests/fuzz/fuzz_<t>_lf with -fsanitize=fuzzer. Each run starts from the
# committed seed corpus tests/fuzz/corpus/fuzz_<t>/ and the regression
# inputs tests/fuzz/regress/fuzz_<t>/ (read only); new inputs go to
# $FUZZ_BUILD_DIR/fuzz-corpus/fuzz_<t>/, findings to
# $FUZZ_BUILD_DIR/fuzz-artifacts/fuzz_<t>/.
#
# Prints, per target: time, executions, exec/s, coverage (edges, features),
# corpus size, findings. Exits 1 if any target found a crash, leak, timeout
# or out-of-memory, 2 on usage or build errors.
#
# Environment: FUZZ_BUILD_DIR, FUZZ_ARGS (extra libFuzzer flags),
#              SHG_FUZZ_TMPDIR (scratch segments; default /dev/shm),
#              SHG_SKIP_DEPS=1 (do not run scripts/deps.sh --ci),
#              MAKE_JOBS (default 2).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

usage() {
	echo "usage: scripts/fuzz.sh [--time SEC] [--keep] [TARGET...]" >&2
}

secs=60
keep=0
targets=()
while (($#)); do
	case "$1" in
	--time)
		[[ $# -ge 2 && $2 =~ ^[0-9]+$ && $2 -gt 0 ]] || {
			usage
			exit 2
		}
		secs=$2
		shift 2
		;;
	--keep)
		keep=1
		shift
		;;
	-h | --help)
		usage
		exit 0
		;;
	-*)
		echo "fuzz: unknown option: $1" >&2
		usage
		exit 2
		;;
	*)
		targets+=("fuzz_${1#fuzz_}")
		shift
		;;
	esac
done

# Targets this tree builds: fuzz_snapshot needs the snapshot API.
available=(fuzz_segment)
if grep -q 'shg_import_mem' include/shmgraph/snapshot.h &&
	grep -q 'fuzz_snapshot_lf' tests/fuzz/local.am; then
	available+=(fuzz_snapshot)
fi
if ((${#targets[@]} == 0)); then
	targets=("${available[@]}")
fi
for t in "${targets[@]}"; do
	if [[ " ${available[*]} " != *" $t "* ]]; then
		echo "fuzz: unknown or unbuildable target: $t" \
			"(available: ${available[*]})" >&2
		exit 2
	fi
done

BUILD=${FUZZ_BUILD_DIR:-build-fuzz-lf}
BUILD=${BUILD%/}
JOBS=${MAKE_JOBS:-2}

# ---- toolchain -------------------------------------------------------------
if [[ ${SHG_SKIP_DEPS:-0} != 1 ]]; then
	./scripts/deps.sh --ci
fi
command -v clang >/dev/null || {
	echo "fuzz: clang not found (scripts/deps.sh --ci installs it)" >&2
	exit 2
}
probe=$(mktemp -d "${TMPDIR:-/tmp}/shg-fuzz-probe.XXXXXX")
trap 'rm -rf "$probe"' EXIT
printf '%s\n' '#include <stddef.h>' '#include <stdint.h>' \
	'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)' \
	'{ (void)d; (void)n; return 0; }' >"$probe/p.c"
if ! clang -fsanitize=fuzzer "$probe/p.c" -o "$probe/p" 2>"$probe/err"; then
	cat "$probe/err" >&2
	echo "fuzz: clang cannot link libFuzzer" \
		"(Debian: apt-get install libclang-rt-14-dev)" >&2
	exit 2
fi

# ---- build -----------------------------------------------------------------
if [[ ! -x configure ]]; then
	echo "fuzz: autoreconf -fi (configure missing)"
	autoreconf -fi
fi
if [[ -f config.status ]]; then
	echo "fuzz: the source tree is configured in-tree; run" \
		"'make distclean' first" >&2
	exit 2
fi
mkdir -p "$BUILD"
cflags="-O1 -g -fsanitize=fuzzer-no-link"
conf=(CC=clang "CFLAGS=$cflags" --enable-asan --enable-ubsan)
sig="${conf[*]}"
if [[ ! -f $BUILD/config.status || ! -f $BUILD/.shg-fuzz-flags ||
	$(<"$BUILD/.shg-fuzz-flags") != "$sig" ]]; then
	echo "fuzz: configure in $BUILD: ${conf[*]}"
	(cd "$BUILD" && "$(realpath --relative-to=. "$ROOT")/configure" -q \
		"${conf[@]}")
	printf '%s\n' "$sig" >"$BUILD/.shg-fuzz-flags"
fi
progs=()
for t in "${targets[@]}"; do
	progs+=("tests/fuzz/${t}_lf")
done
echo "fuzz: make -C $BUILD ${progs[*]}"
if ! make -C "$BUILD" -j"$JOBS" "${progs[@]}" >"$BUILD/fuzz-build.log" 2>&1; then
	tail -n 40 "$BUILD/fuzz-build.log" >&2
	echo "fuzz: build failed (log: $BUILD/fuzz-build.log)" >&2
	exit 2
fi

# ---- run -------------------------------------------------------------------
# lfstat NAME LOG: the value of libFuzzer's final "stat::NAME: V" line.
lfstat() {
	sed -n "s/^stat::$1: *\\([0-9]*\\).*/\\1/p" "$2" | tail -n 1
}

# Per-target libFuzzer flags.
target_args() {
	case "$1" in
	fuzz_segment) echo "-max_len=262144" ;;
	*) echo "-max_len=65536" ;;
	esac
}

export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
failed=0
summary=()
for t in "${targets[@]}"; do
	work="$BUILD/fuzz-corpus/$t"
	art="$BUILD/fuzz-artifacts/$t"
	log="$BUILD/fuzz-$t.log"
	((keep)) || rm -rf "$work"
	mkdir -p "$work" "$art"
	seeds="tests/fuzz/corpus/$t"
	regress="tests/fuzz/regress/$t"
	dirs=("$work" "$seeds")
	[[ -d $regress ]] && dirs+=("$regress")
	read -r -a args <<<"$(target_args "$t") ${FUZZ_ARGS:-}"
	echo
	echo "== fuzz $t: ${secs}s =="
	start=$SECONDS
	set +e
	"$BUILD/tests/fuzz/${t}_lf" -max_total_time="$secs" \
		-timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
		-artifact_prefix="$art/" "${args[@]}" "${dirs[@]}" \
		>"$log" 2>&1 &
	pid=$!
	wait "$pid"
	rc=$?
	set -e
	# Scratch segments a finding left behind (fuzz_util.c: fz_tmp_path).
	rm -f "${SHG_FUZZ_TMPDIR:-/dev/shm}/shg-fuzz-$pid-"*
	elapsed=$((SECONDS - start))
	execs=$(lfstat number_of_executed_units "$log")
	eps=$(lfstat average_exec_per_sec "$log")
	added=$(lfstat new_units_added "$log")
	rss=$(lfstat peak_rss_mb "$log")
	last=$(grep -E '^#[0-9]+' "$log" | tail -n 1 || true)
	cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
	ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
	corp=$(sed -n 's/.* corp: \([0-9]*\/[0-9A-Za-z]*\).*/\1/p' <<<"$last")
	line="$t: ${elapsed}s, ${execs:-?} execs (${eps:-?}/s), cov ${cov:-?}"
	line+=" ft ${ft:-?}, corpus ${corp:-?}, new ${added:-?},"
	line+=" rss ${rss:-?} MB, exit $rc"
	if ((rc != 0)); then
		failed=1
		line+=" -> FINDING"
		echo "fuzz: $t found a problem; libFuzzer's report:" >&2
		grep -E -A 40 '^==[0-9]+==ERROR|deadly signal|^fuzz: |ALARM|runtime error|SUMMARY' \
			"$log" | head -n 80 >&2 || tail -n 60 "$log" >&2
		for f in "$art"/crash-* "$art"/leak-* "$art"/timeout-* "$art"/oom-*; do
			[[ -f $f ]] || continue
			echo "fuzz: input: $f" >&2
			echo "fuzz: keep it as a regression test:" \
				"cp '$f' tests/fuzz/regress/$t/" >&2
		done
	fi
	echo "fuzz: $line (log: $log)"
	summary+=("$line")
done

echo
echo "== fuzz summary =="
printf '  %s\n' "${summary[@]}"
exit $((failed ? 1 : 0))
