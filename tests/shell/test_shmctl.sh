#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Drives the real shmctl binary: every map command, exit codes, --json
# outputs parsed, state shared between two processes, and a corrupted
# segment refused with exit 2 and a message (no core dump).
set -u

SHMCTL=${SHMCTL:-./tools/shmctl}
TMP=${SHG_TEST_TMPDIR:-/tmp}
SEG="/shgtest-cli-$$"
FILESEG="$TMP/shgtest-cli-file-$$"
pass=0
fail=0

ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
expect_rc() { # expect_rc RC DESC CMD...
	local want=$1 desc=$2 rc
	shift 2
	"$@" >/dev/null 2>&1
	rc=$?
	if [ "$rc" -eq "$want" ]; then ok; else bad "$desc: exit $rc, want $want"; fi
}
json_ok() { # json_ok DESC CMD...
	local desc=$1
	shift
	if "$@" 2>/dev/null | python3 -m json.tool >/dev/null; then ok; else bad "$desc: bad JSON"; fi
}
cleanup() {
	"$SHMCTL" destroy "$SEG" >/dev/null 2>&1
	rm -f "$FILESEG"
}
trap cleanup EXIT

expect_rc 0 "create" "$SHMCTL" create "$SEG" --size 32m
expect_rc 2 "create twice" "$SHMCTL" create "$SEG" --size 32m
expect_rc 0 "put" "$SHMCTL" put "$SEG" config threads 8
# Another process writes; this one reads what it wrote.
(bash -c "\"$SHMCTL\" put \"$SEG\" config mode fast") &
wait $!
v=$("$SHMCTL" get "$SEG" config mode 2>/dev/null)
[ "$v" = "fast" ] && ok || bad "get after another process's put: '$v'"
v=$("$SHMCTL" get "$SEG" config threads 2>/dev/null)
[ "$v" = "8" ] && ok || bad "get threads: '$v'"
n=$("$SHMCTL" ls "$SEG" config 2>/dev/null | wc -l)
[ "$n" -eq 2 ] && ok || bad "ls lists $n entries, want 2"
json_ok "ls --json" "$SHMCTL" ls "$SEG" config --json
json_ok "get --json" "$SHMCTL" get "$SEG" config mode --json
json_ok "info --json" "$SHMCTL" info "$SEG" --json
json_ok "roots --json" "$SHMCTL" roots "$SEG" --json
json_ok "readers --json" "$SHMCTL" readers "$SEG" --json
json_ok "stats --json" "$SHMCTL" stats "$SEG" --json
json_ok "check --json" "$SHMCTL" check "$SEG" --json
json_ok "recover --json" "$SHMCTL" recover "$SEG" --json
expect_rc 1 "get missing key" "$SHMCTL" get "$SEG" config nope
expect_rc 2 "get missing root" "$SHMCTL" get "$SEG" noroot k
expect_rc 2 "put int into a string map" "$SHMCTL" put "$SEG" config n 5 --int
expect_rc 2 "put bad int" "$SHMCTL" put "$SEG" counts n 5x --int
expect_rc 0 "put int" "$SHMCTL" put "$SEG" counts n 42 --int
v=$("$SHMCTL" get "$SEG" counts n 2>/dev/null)
[ "$v" = "42" ] && ok || bad "get int: '$v'"
expect_rc 0 "del" "$SHMCTL" del "$SEG" config mode
expect_rc 1 "del again" "$SHMCTL" del "$SEG" config mode
expect_rc 0 "check" "$SHMCTL" check "$SEG"
expect_rc 2 "unknown command" "$SHMCTL" frobnicate "$SEG"
expect_rc 2 "no segment" "$SHMCTL" info
expect_rc 2 "missing segment" "$SHMCTL" info "/shgtest-cli-none-$$"
expect_rc 0 "help" "$SHMCTL" --help
expect_rc 0 "destroy" "$SHMCTL" destroy "$SEG"
expect_rc 2 "destroy twice" "$SHMCTL" destroy "$SEG"

# Corrupted file segments: truncated, bad magic, a flipped header byte.
expect_rc 0 "create file" "$SHMCTL" create "$FILESEG" --size 8m
cp "$FILESEG" "$FILESEG.orig"
printf 'XXXXXXXX' | dd of="$FILESEG" bs=1 seek=0 conv=notrunc status=none
out=$("$SHMCTL" info "$FILESEG" 2>&1); rc=$?
{ [ $rc -eq 2 ] && [ -n "$out" ]; } && ok || bad "bad magic: exit $rc '$out'"
cp "$FILESEG.orig" "$FILESEG"
truncate -s 100 "$FILESEG"
expect_rc 2 "truncated" "$SHMCTL" check "$FILESEG"
cp "$FILESEG.orig" "$FILESEG"
printf '\xff' | dd of="$FILESEG" bs=1 seek=24 conv=notrunc status=none
out=$("$SHMCTL" check "$FILESEG" 2>&1); rc=$?
{ [ $rc -eq 2 ] || [ $rc -eq 1 ]; } && ok || bad "flipped capacity: exit $rc"
rm -f "$FILESEG.orig"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
