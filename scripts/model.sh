#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# model.sh - check the Promela models of tests/model/ with SPIN.
#
# Every configuration is checked exhaustively within its stated bounds
# (see the comment at the top of each model). "ok" runs must report no
# error; "bug" runs compile a deliberately broken variant (a -D macro)
# and must make SPIN report an error, which shows the model can catch
# one. Prints states stored per run and the total; exits non-zero on any
# error in an ok run, on a bug run that passes, or when spin/cc is
# missing.
#
# Usage: scripts/model.sh [--keep]   (--keep: leave the work directory)
# Environment: SPIN (default spin), CC (default cc), PAN_MEM (MB, 1024).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MODELS=$ROOT/tests/model
SPIN=${SPIN:-spin}
CC=${CC:-cc}
PAN_MEM=${PAN_MEM:-1024}
keep=0
[[ ${1:-} == --keep ]] && keep=1

command -v "$SPIN" >/dev/null || {
	echo "model: $SPIN not found (Debian package spin; scripts/deps.sh)" >&2
	exit 1
}
command -v "$CC" >/dev/null || {
	echo "model: $CC not found" >&2
	exit 1
}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/shg-model.XXXXXX")
((keep)) || trap 'rm -rf "$WORK"' EXIT

total=0
runs=0
failed=0

# check EXPECT NAME MODEL PANFLAGS DEFINES...: EXPECT is ok or bug;
# PANFLAGS "safety" (assertions, invalid end states) or "ltl" (-a -f:
# acceptance cycles under weak fairness, the model's LTL claim).
check() {
	local expect=$1 name=$2 model=$3 mode=$4
	shift 4
	local dir=$WORK/$name out errors states cflags=(-DCOLLAPSE) \
		panflags=(-m500000 -w24)
	mkdir -p "$dir"
	cp "$MODELS/$model" "$dir/"
	if [[ $mode == safety ]]; then
		set -- -DSAFETY "$@"
		cflags+=(-DSAFETY)
	else
		panflags+=(-a -f)
	fi
	cflags+=("-DMEMLIM=$PAN_MEM")
	local start=$SECONDS
	if ! (cd "$dir" && "$SPIN" -a "$@" "$model" >spin.log 2>&1 &&
		"$CC" -O1 -w "${cflags[@]}" -o pan pan.c >cc.log 2>&1); then
		echo "model: $name: spin/cc failed:"
		cat "$dir/spin.log" "$dir/cc.log" 2>/dev/null
		failed=1
		return
	fi
	out=$(cd "$dir" && ./pan "${panflags[@]}" 2>&1) || true
	errors=$(sed -n 's/.*errors: \([0-9]*\).*/\1/p' <<<"$out" | tail -1)
	states=$(sed -n 's/^ *\([0-9.e+]*\) states, stored.*/\1/p' <<<"$out" |
		tail -1)
	states=$(printf '%.0f' "${states:-0}")
	runs=$((runs + 1))
	total=$((total + states))
	local verdict what
	what=$(grep -m1 -oE 'assertion violated.*|acceptance cycle|invalid end state' \
		<<<"$out" || true)
	if [[ -z $errors ]]; then
		verdict=FAIL
		echo "$out" | tail -20
	elif [[ $expect == ok && $errors == 0 ]]; then
		verdict=ok
	elif [[ $expect == bug && $errors != 0 ]]; then
		verdict="ok (error found as expected: $what)"
	else
		verdict=FAIL
		echo "$out" | grep -vE '^\s*$' | tail -25
		[[ $expect == ok ]] && (cd "$dir" && "$SPIN" -t "$@" "$model" |
			tail -40)
	fi
	[[ $verdict == FAIL ]] && failed=1
	if grep -q 'Search not completed' <<<"$out" &&
		[[ $expect == ok ]]; then
		verdict="FAIL (search not completed)"
		failed=1
	fi
	printf 'model: %-28s %-6s %10d states %4ds  %s\n' "$name" "$mode" \
		"$states" $((SECONDS - start)) "$verdict"
}

# grace.pml: read side, grace periods, reclaim (TSO store buffers).
check ok grace-fence grace.pml safety
check ok grace-membarrier grace.pml safety -DMEMB
check ok grace-two-writers grace.pml safety -DTWO_WRITERS -DNUPD=1
check ok grace-progress-fence grace.pml ltl
check ok grace-progress-memb grace.pml ltl -DMEMB
check bug grace-bug-no-fr grace.pml safety -DBUG_NO_FR
check bug grace-bug-no-membarrier grace.pml safety -DMEMB -DBUG_NO_MEMBARRIER
check bug grace-bug-no-e0-bound grace.pml safety -DTWO_WRITERS -DNUPD=1 \
	-DBUG_NO_E0_BOUND
check bug grace-bug-sync-ge grace.pml safety -DBUG_SYNC_GE
check bug grace-bug-sync-no-inc grace.pml ltl -DBUG_SYNC_NO_INC
# pins.pml: root CAS, retire with deaths, pins, held list (IBR).
check ok pins-2commits pins.pml safety
check ok pins-2reclaimers pins.pml safety -DNC=1 -DNRC=2 -DNPASS=1
check bug pins-bug-birth pins.pml safety -DBUG_PIN_BIRTH
check bug pins-bug-snap-early pins.pml safety -DBUG_SNAP_EARLY
check bug pins-bug-held-gen pins.pml safety -DBUG_HELD_GEN

echo "model: $runs runs, $total states stored in all"
if ((failed)); then
	echo "model: FAILED"
	exit 1
fi
echo "model: all models pass; every broken variant was caught"
