#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# bench.sh - build shmgraph (optimised) and run a benchmark suite.
#
# Usage: scripts/bench.sh SUITE [--quick] [knobs passed to every program]
#   SUITE    micro   read-lock pairs, grace periods, alloc/free, retire
#                    (bench/bench_micro), side by side with liburcu and glibc
#            map     persistent map lookups, commits, batches, build, memory,
#                    retained memory with a pin (bench/bench_map), side by
#                    side with rwlock-shm, LMDB, liburcu lfht, flat table
#            scale   1..P reader processes x 0/1/2 writer processes
#                    (bench/bench_scale): shmgraph, rwlock-shm, LMDB,
#                    lfht (threads of one process), flat table
#            graph   deep trees, wide nodes, large values through the graph
#                    API (bench/bench_graph) vs the same under an rwlock
#            pin     memory over time with an old version pinned
#                    (bench/bench_pin): shmgraph pin vs an LMDB long reader
#            procs   10,000 one-update processes in sequence (500 with
#                    --quick): backed, used and retired bytes stay flat
#                    (bench/bench_procs)
#            inspect a writer's commit latency alone and while shg_check and
#                    shg_recover run in a loop on a large segment
#                    (bench/bench_inspect)
#            interfere one reader's lookups beside one disturber process
#                    (none, spin, memhog, commits to its map or another
#                    root, aborted txns, grace periods, txns of 100), per
#                    read flavor: what share of its rate the reader keeps
#                    (bench/bench_interfere)
#            repl    replication through a 3-server NATS JetStream cluster
#                    on loopback (bench/bench_repl.sh, bench/bench_repl):
#                    lag p50/p99 and delta bytes per version vs a full
#                    snapshot, single-key and 100-key commits on a 1M-key
#                    map (not in "all": it needs nats-server and libnats)
#            growth  lookup latency (map as built, no writer) and bytes per
#                    entry against N = 10k, 100k, 1M, 10M for every system
#                    (bench/bench_map --cases lookup,bytes, one run per N;
#                    --quick: 10k and 100k, 3 reps); /dev/shm is checked
#                    for leftovers after each N
#            soak    10M single-update commits on a 1M-key map with a
#                    reader alongside (bench/bench_soak): commit latency
#                    p50/p99/max and memory per window of 500k, verdict
#                    flat / NOT flat (--quick: 200k commits, windows of 20k)
#            all     every suite, in that order
#   --quick  short runs at N = 10k keys: a smoke test (run times of
#            "all" and "all --quick": bench/README.md)
#   knobs    --keys, --key-size/--value-size, --read-pct, --write-rate,
#            --txn-size, --dist uniform|zipf[:T], --reps, --duration-ms,
#            --readers, --writers, --numa local|interleave|bind:N, --cpus,
#            --place, --reader-node/--writer-node, --systems, --depths;
#            a knob a program does not use is reported and ignored
#            (bench/README.md; each program's --help)
#
# Steps: scripts/build.sh (skipped with SHG_BENCH_NO_BUILD=1), then each
# suite program with SHG_COMMIT set, appending one JSON object per
# measurement to bench/results/<suite>-<UTC date>-<commit>.jsonl, copied to
# bench/results/<suite>-latest.jsonl; the programs print their tables;
# then scripts/plot.sh draws PNG charts next to the JSON when gnuplot is
# installed (SHG_BENCH_NO_PLOT=1 skips it). The elapsed time is printed.
#
# Huge pages: the map suite also runs shmgraph on a huge-page segment
# (system "shmgraph-huge" in the tables; JSON "huge_pages" says which
# records ran on what), interleaved with the others. As root it mounts its
# own tmpfs with huge=within_size on a temporary directory (unmounted and
# removed at exit) and passes --huge-dir; otherwise it passes --huge
# (SHG_OPEN_HUGE on /dev/shm: collapsed huge pages). SHG_BENCH_HUGE=0
# leaves it out.
#
# Environment: BUILD_DIR (default: build), SHG_BENCH_NO_BUILD=1,
# SHG_BENCH_NO_PLOT=1, SHG_BENCH_HUGE=0, SHG_NUMA_SIM=N (simulated NUMA
# nodes), and what scripts/build.sh reads (SHG_CONFIGURE_FLAGS,
# SHG_SKIP_DEPS, MAKE_JOBS).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

usage() {
	echo "usage: scripts/bench.sh SUITE [--quick] [extra args]" >&2
	echo "  SUITE: micro | map | scale | graph | pin | procs | inspect | interfere | growth | soak | repl | all" >&2
}

if (($# < 1)); then
	usage
	exit 2
fi
suite=$1
shift
case "$suite" in
micro | map | scale | graph | pin | procs | inspect | interfere | repl) programs=("$suite") ;;
all) programs=(micro map scale graph pin procs inspect interfere) ;;
-h | --help)
	usage
	exit 0
	;;
growth | soak) programs=("$suite") ;; # see the header
*)
	echo "bench: unknown suite: $suite" >&2
	usage
	exit 2
	;;
esac

# growth and soak run in "all" too (their --quick forms take seconds).
if [[ $suite == all ]]; then
	programs+=(growth soak)
fi

t_start=$(date +%s.%N)
BUILD_DIR=${BUILD_DIR:-build}
BUILD_DIR=${BUILD_DIR%/}
export BUILD_DIR

if [[ ${SHG_BENCH_NO_BUILD:-0} != 1 ]]; then
	./scripts/build.sh --for bench
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

elapsed() {
	awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'
}

# Huge pages for the map suite (see the header).
huge_args=()
huge_dir=
cleanup_huge() {
	if [[ -n $huge_dir ]]; then
		umount "$huge_dir" 2>/dev/null || true
		rmdir "$huge_dir" 2>/dev/null || true
	fi
}
if [[ ${SHG_BENCH_HUGE:-1} != 0 && " ${programs[*]} " == *" map "* ]]; then
	if [[ $(id -u) == 0 ]]; then
		huge_dir=$(mktemp -d /tmp/shg-bench-huge.XXXXXX)
		trap cleanup_huge EXIT
		if mount -t tmpfs -o mode=0700,huge=within_size shg-bench-huge \
			"$huge_dir"; then
			huge_args=(--huge-dir "$huge_dir")
			echo "bench: map also runs shmgraph on huge pages" \
				"(tmpfs huge=within_size on $huge_dir)"
		else
			rmdir "$huge_dir"
			huge_dir=
		fi
	fi
	if ((${#huge_args[@]} == 0)); then
		huge_args=(--huge)
		echo "bench: map also runs shmgraph with SHG_OPEN_HUGE on" \
			"/dev/shm (no tmpfs of its own: not root or mount failed)"
	fi
fi

# ---- growth: bench_map lookups and bytes per entry against N ---------------
# One bench_map run per N (all systems side by side, interleaved reps), so
# that every map of one N is gone before the next is built; after each run
# /dev/shm must hold nothing of it (names shg-bench-<pid>-...).
# Reps last 100 ms, 1 s at 10M: a fresh reader process faults in the pages
# it touches, and the warm-up (a quarter of a rep) must cover most of a
# 200-900 MB map, or the medians measure page faults (bench/README.md).
GROWTH_SYSTEMS=shmgraph,rwlock-shm,lmdb,urcu-lfht,flat-nolock
run_growth() {
	local bin=$BUILD_DIR/bench/bench_map keys=(10k 100k 1M 10M) reps=5
	local ms=(100 100 100 1000) a i n t pid left quick=0
	for a in "$@"; do
		[[ $a == --quick ]] && quick=1
	done
	if ((quick)); then
		keys=(10k 100k)
		ms=(20 20)
		reps=3
	fi
	if [[ ! -x $bin ]]; then
		echo "bench: $bin is missing (did the build fail?)" >&2
		return 1
	fi
	echo "bench: growth: N = ${keys[*]}, systems $GROWTH_SYSTEMS," \
		"$reps reps of ${ms[*]} ms; /dev/shm before: $(df -h --output=used /dev/shm | tail -n 1 | tr -d ' ') used"
	for i in "${!keys[@]}"; do
		n=${keys[$i]}
		t=$(date +%s.%N)
		"$bin" --json "$out" --cases lookup,bytes --systems "$GROWTH_SYSTEMS" \
			--keys "$n" --reps "$reps" --duration-ms "${ms[$i]}" "$@" &
		pid=$!
		wait "$pid"
		left=$(find /dev/shm -maxdepth 1 -name "shg-bench-$pid-*" -printf '%f ')
		if [[ -n $left ]]; then
			echo "bench: growth, N = $n: left in /dev/shm: $left" >&2
			return 1
		fi
		echo "bench: growth, N = $n took $(elapsed "$t") s; nothing of it" \
			"left in /dev/shm ($(df -h --output=used /dev/shm | tail -n 1 | tr -d ' ') used)"
	done
	growth_table
}

# The growth tables from the JSON, N x system: median lookup ns/op of the
# reps (map as built, 1 reader, no writer; wall time, so a reader that
# loses its CPU counts), the p50 of the sampled lookups (each timed alone),
# and bytes per entry (each system's first memory measure).
growth_table() {
	local what
	if ! command -v jq >/dev/null 2>&1; then
		echo "bench: jq not installed; no growth tables (scripts/deps.sh bench)"
		return 0
	fi
	jq -r 'select(.workload=="lookup" and .map_state=="fresh" and .config.cases=="lookup,bytes")
		| "\(.keys) \(.system) median \(.ns_per_op) \(.min_ns_per_op)-\(.max_ns_per_op)",
		  "\(.keys) \(.system) p50 \(.p50_ns) -"' "$out" >"$out.tmp"
	jq -r 'select(.workload=="bytes_per_entry" and .config.cases=="lookup,bytes" and .bytes != null)
		| "\(.keys) \(.system) bytes \(.bytes / .keys) -"' "$out" |
		awk '!seen[$1 " " $2]++' >>"$out.tmp"
	for what in median p50 bytes; do
		echo
		case $what in
		median) echo "Growth: lookup ns/op, median of the reps (min-max), 1 reader, no writer, map as built" ;;
		p50) echo "Growth: lookup p50 ns of the sampled lookups (every 64th timed alone)" ;;
		bytes) echo "Growth: bytes per entry (shmgraph: allocator used; lmdb: psize x tree pages;" \
			"urcu-lfht: malloc; rwlock-shm, flat-nolock: segment)" ;;
		esac
		awk -v order="$GROWTH_SYSTEMS" -v what="$what" '
			$3 == what { n[$1] = 1; v[$1 " " $2] = $4; r[$1 " " $2] = $5 }
			END {
				ns = split(order, o, ",")
				nn = 0; for (x in n) keys[nn++] = x + 0
				for (i = 0; i < nn; i++) for (j = i + 1; j < nn; j++)
					if (keys[j] < keys[i]) { t = keys[i]; keys[i] = keys[j]; keys[j] = t }
				w = what == "median" ? 22 : 12
				printf "%-10s", "N"
				for (j = 1; j <= ns; j++) printf " %*s", w, o[j]
				printf "\n"
				for (i = 0; i < nn; i++) {
					printf "%-10s", keys[i]
					for (j = 1; j <= ns; j++) {
						k = keys[i] " " o[j]
						if (!(k in v)) { printf " %*s", w, "-"; continue }
						c = sprintf("%.1f", v[k])
						if (what == "median") {
							split(r[k], mm, "-")
							c = sprintf("%s (%.0f-%.0f)", c, mm[1], mm[2])
						}
						printf " %*s", w, c
					}
					printf "\n"
				}
			}' "$out.tmp"
	done
	rm -f "$out.tmp"
}

t_bench=$(date +%s.%N)
for prog in "${programs[@]}"; do
	if [[ $prog == growth ]]; then
		t_prog=$(date +%s.%N)
		echo "bench: running growth (bench_map, commit $commit)"
		run_growth "$@"
		echo "bench: growth took $(elapsed "$t_prog") s"
		continue
	fi
	bin="$BUILD_DIR/bench/bench_$prog"
	if [[ ! -x $bin ]]; then
		echo "bench: $bin is missing (did the build fail?)" >&2
		exit 1
	fi
	t_prog=$(date +%s.%N)
	echo "bench: running $prog (commit $commit)"
	if [[ $prog == map ]]; then
		"$bin" --json "$out" "${huge_args[@]}" "$@"
	elif [[ $prog == repl ]]; then
		# The cluster is started (and stopped) around the program.
		./bench/bench_repl.sh "$bin" --json "$out" "$@"
	else
		"$bin" --json "$out" "$@"
	fi
	echo "bench: $prog took $(elapsed "$t_prog") s"
done

cp "$out" "$results/$suite-latest.jsonl"
echo "bench: $(wc -l <"$out") records in $out (copy: $results/$suite-latest.jsonl)"

if [[ ${SHG_BENCH_NO_PLOT:-0} != 1 ]]; then
	if command -v gnuplot >/dev/null 2>&1 && command -v jq >/dev/null 2>&1; then
		./scripts/plot.sh "$out" "$results" "$suite-latest" ||
			echo "bench: plotting failed (results are kept)" >&2
	else
		echo "bench: gnuplot or jq not installed; no plots" \
			"(scripts/deps.sh installs them)"
	fi
fi
echo "bench: suite $suite done in $(elapsed "$t_bench") s of benchmarks," \
	"$(elapsed "$t_start") s in total (build included)"
