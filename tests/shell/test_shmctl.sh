#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Drives the real shmctl binary: every command and its --help, exit codes,
# --json outputs parsed, values as strings, integers and bytes (hex,
# base64), state shared between two processes, dump (depth, limit, a
# version pinned by another process), watch, snapshot export -> destroy ->
# import -> export compared byte for byte, damaged snapshot files refused
# with exit 2 and a message while the segment stays unchanged, and
# corrupted segments refused (no core dump anywhere: exact exit codes).
set -u

SHMCTL=${SHMCTL:-./tools/shmctl}
PIN=${SHG_PIN:-$(dirname "$SHMCTL")/shg-pin}
TMP=${SHG_TEST_TMPDIR:-/tmp}
SEG="/shgtest-cli-$$"
SEG2="/shgtest-cli2-$$"
SEG3="/shgtest-cli3-$$"
FILESEG="$TMP/shgtest-cli-file-$$"
SNAP="$TMP/shgtest-cli-snap-$$"
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
# expect_err DESC PATTERN CMD...: exit 2 with one stderr line matching.
expect_err() {
	local desc=$1 pat=$2 rc err
	shift 2
	err=$("$@" 2>&1 >/dev/null)
	rc=$?
	if [ "$rc" -ne 2 ]; then
		bad "$desc: exit $rc, want 2"
	elif [ "$(printf '%s\n' "$err" | wc -l)" -ne 1 ] ||
		! printf '%s' "$err" | grep -q -- "$pat"; then
		bad "$desc: message '$err' does not match '$pat'"
	else
		ok
	fi
}
json_ok() { # json_ok DESC CMD...
	local desc=$1
	shift
	if "$@" 2>/dev/null | python3 -m json.tool >/dev/null; then ok; else bad "$desc: bad JSON"; fi
}
# json_field DESC EXPR WANT CMD...: python expression on the parsed JSON (j).
json_field() {
	local desc=$1 expr=$2 want=$3 got
	shift 3
	got=$("$@" 2>/dev/null | python3 -c "import json,sys; j=json.load(sys.stdin); print($expr)" 2>&1)
	if [ "$got" = "$want" ]; then ok; else bad "$desc: got '$got', want '$want'"; fi
}
cleanup() {
	"$SHMCTL" destroy "$SEG" >/dev/null 2>&1
	"$SHMCTL" destroy "$SEG2" >/dev/null 2>&1
	"$SHMCTL" destroy "$SEG3" >/dev/null 2>&1
	rm -f "$FILESEG" "$FILESEG.orig" "$SNAP".*
}
trap cleanup EXIT

# ---- help ------------------------------------------------------------------
expect_rc 0 "help" "$SHMCTL" --help
expect_rc 0 "help command" "$SHMCTL" help
expect_rc 0 "version" "$SHMCTL" --version
for c in create destroy info roots readers stats check recover dump put get \
	del ls export import watch; do
	out=$("$SHMCTL" "$c" --help 2>&1); rc=$?
	if [ $rc -eq 0 ] && printf '%s' "$out" | grep -q "usage: shmctl $c SEGMENT"; then
		ok
	else
		bad "$c --help: exit $rc"
	fi
	expect_rc 0 "help $c" "$SHMCTL" help "$c"
done
expect_rc 2 "no arguments" "$SHMCTL"
expect_err "unknown command" "unknown command" "$SHMCTL" frobnicate "$SEG"
expect_err "no segment" "usage: shmctl info" "$SHMCTL" info
expect_err "unknown option" "unknown option" "$SHMCTL" info "$SEG" --frob
expect_err "option for another command" "does not apply" "$SHMCTL" info "$SEG" --replace
expect_err "missing option value" "needs a value" "$SHMCTL" dump "$SEG" r --depth
expect_err "bad option value" "bad value" "$SHMCTL" dump "$SEG" r --depth x
expect_err "depth beyond the bound" "bad value" "$SHMCTL" dump "$SEG" r --depth 2001
expect_err "exclusive options" "exclude" "$SHMCTL" put "$SEG" r k v --int --hex
expect_err "missing segment" "shgtest-cli-none" "$SHMCTL" info "/shgtest-cli-none-$$"

# ---- create, maps, values ------------------------------------------------------
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
expect_rc 1 "get missing key" "$SHMCTL" get "$SEG" config nope
expect_err "get missing root" "no root" "$SHMCTL" get "$SEG" noroot k
expect_err "put int into a string map" "config: map<bytes,bytes>; --int given" "$SHMCTL" put "$SEG" config n 5 --int
expect_err "put bad int" "counts: map<bytes,u64>; 5x is not a u64" "$SHMCTL" put "$SEG" counts n 5x --int
expect_err "a refused put creates no root" "no root 'counts'" "$SHMCTL" get "$SEG" counts n
expect_rc 0 "put int" "$SHMCTL" put "$SEG" counts n 42 --int
v=$("$SHMCTL" get "$SEG" counts n 2>/dev/null)
[ "$v" = "42" ] && ok || bad "get int: '$v'"
expect_rc 0 "put negative int" "$SHMCTL" put "$SEG" signed t -7 --int
v=$("$SHMCTL" get "$SEG" signed t 2>/dev/null)
[ "$v" = "-7" ] && ok || bad "get negative int: '$v'"
# Bytes: hex and base64 in, hex and base64 out; ls shows them as hex.
expect_rc 0 "put hex" "$SHMCTL" put "$SEG" blobs bin 00ff10 --hex
expect_rc 0 "put base64" "$SHMCTL" put "$SEG" blobs b64 aGVsbG8= --base64
expect_err "put bad hex" "not hex" "$SHMCTL" put "$SEG" blobs x 0g --hex
expect_err "put bad base64" "not base64" "$SHMCTL" put "$SEG" blobs x 'a$b=' --base64
v=$("$SHMCTL" get "$SEG" blobs bin 2>/dev/null)
[ "$v" = "hex:00ff10" ] && ok || bad "get non-printable bytes: '$v'"
v=$("$SHMCTL" get "$SEG" blobs bin --hex 2>/dev/null)
[ "$v" = "00ff10" ] && ok || bad "get --hex: '$v'"
v=$("$SHMCTL" get "$SEG" blobs bin --base64 2>/dev/null)
[ "$v" = "AP8Q" ] && ok || bad "get --base64: '$v'"
v=$("$SHMCTL" get "$SEG" blobs b64 2>/dev/null)
[ "$v" = "hello" ] && ok || bad "get printable bytes: '$v'"
v=$("$SHMCTL" get "$SEG" blobs b64 --hex 2>/dev/null)
[ "$v" = "68656c6c6f" ] && ok || bad "get printable --hex: '$v'"
"$SHMCTL" ls "$SEG" blobs 2>/dev/null | grep -q "^bin	hex:00ff10$" && ok || bad "ls hex"
json_field "get --json bytes" 'j["value"]["hex"]' "00ff10" "$SHMCTL" get "$SEG" blobs bin --json
json_field "get --base64 --json" 'j["value"]["base64"]' "AP8Q" "$SHMCTL" get "$SEG" blobs bin --base64 --json
json_field "get --json int" 'j["value"]' "42" "$SHMCTL" get "$SEG" counts n --json
json_field "ls --json" 'j["count"]' "2" "$SHMCTL" ls "$SEG" blobs --json
expect_rc 0 "del" "$SHMCTL" del "$SEG" config mode
expect_rc 1 "del again" "$SHMCTL" del "$SEG" config mode
json_field "del --json" 'j["deleted"]' "True" "$SHMCTL" del "$SEG" blobs b64 --json
json_field "put --json" 'j["ok"]' "True" "$SHMCTL" put "$SEG" config mode slow --json

# ---- every key and value kind ---------------------------------------------------
# KEY and VALUE are read as the map's kinds; a mismatch names them.
expect_rc 0 "put u64 key" "$SHMCTL" put "$SEG" ids 7 70 --key-int --int
expect_rc 0 "put u64 key, kind inferred" "$SHMCTL" put "$SEG" ids 0x10 16
v=$("$SHMCTL" get "$SEG" ids 7 2>/dev/null)
[ "$v" = "70" ] && ok || bad "get u64 key inferred: '$v'"
v=$("$SHMCTL" get "$SEG" ids 16 --key-int 2>/dev/null)
[ "$v" = "16" ] && ok || bad "get u64 key (0x10 stored) with --key-int: '$v'"
expect_err "negative value for a u64 map" "ids: map<u64,u64>; -5 is not a u64$" \
	"$SHMCTL" put "$SEG" ids 8 -5
expect_err "text key for a u64 map" "ids: map<u64,u64>; x is not a u64 key" \
	"$SHMCTL" get "$SEG" ids x
expect_err "--key-hex on a u64 map" "ids: map<u64,u64>; --key-hex given" \
	"$SHMCTL" del "$SEG" ids 07 --key-hex
expect_err "--key-int on a bytes map" "config: map<bytes,bytes>; --key-int given" \
	"$SHMCTL" get "$SEG" config 1 --key-int
expect_err "--hex for integer values" "ids: map<u64,u64>; --hex applies to bytes" \
	"$SHMCTL" put "$SEG" ids 9 00 --hex
expect_rc 1 "get absent u64 key" "$SHMCTL" get "$SEG" ids 99
expect_rc 0 "del u64 key" "$SHMCTL" del "$SEG" ids 7
expect_rc 1 "del absent u64 key" "$SHMCTL" del "$SEG" ids 7
json_field "ls u64 keys --json" '(j["key_kind"], j["value_kind"], [e["key"] for e in j["entries"]])' \
	"('u64', 'u64', [16])" "$SHMCTL" ls "$SEG" ids --json
# i64 values: a positive VALUE goes in as i64 where the map holds i64.
expect_rc 0 "put positive into an i64 map" "$SHMCTL" put "$SEG" signed u 9
json_field "i64 kept" 'j["kind"], j["value"]' "i64 9" "$SHMCTL" get "$SEG" signed u --json
expect_err "i64 overflow" "signed: map<bytes,i64>; 9223372036854775808 is not an i64" \
	"$SHMCTL" put "$SEG" signed o 9223372036854775808
expect_rc 0 "i64 minimum" "$SHMCTL" put "$SEG" signed m -9223372036854775808
v=$("$SHMCTL" get "$SEG" signed m 2>/dev/null)
[ "$v" = "-9223372036854775808" ] && ok || bad "i64 minimum: '$v'"
# f64 values (--kind makes the map), root values by name.
expect_rc 0 "put f64" "$SHMCTL" put "$SEG" ratios half 0.5 --kind f64
expect_rc 0 "put f64, kind inferred" "$SHMCTL" put "$SEG" ratios big 1e300
json_field "get f64" 'j["kind"], j["value"]' "f64 1e+300" "$SHMCTL" get "$SEG" ratios big --json
expect_err "not an f64" "ratios: map<bytes,f64>; abc is not an f64" \
	"$SHMCTL" put "$SEG" ratios x abc
expect_err "--kind against the map" "ratios: map<bytes,f64>; --kind u64 given" \
	"$SHMCTL" put "$SEG" ratios x 1 --kind u64
expect_err "bad --kind" "bad value for --kind" "$SHMCTL" put "$SEG" ratios x 1 --kind float
expect_rc 0 "put root value" "$SHMCTL" put "$SEG" links cfg config --kind root
expect_rc 0 "put root value as root:NAME" "$SHMCTL" put "$SEG" links ids root:ids
v=$("$SHMCTL" get "$SEG" links ids 2>/dev/null)
[ "$v" = "root:ids" ] && ok || bad "get root value: '$v'"
json_field "get root --json" 'j["value"]["root"]' "config" "$SHMCTL" get "$SEG" links cfg --json
expect_err "root value naming no root" "links: map<bytes,root>; nope does not name a root" \
	"$SHMCTL" put "$SEG" links x nope
# bytes keys given in hex, printed as hex when not printable
expect_rc 0 "put --key-hex" "$SHMCTL" put "$SEG" bkeys 00ff v1 --key-hex
"$SHMCTL" ls "$SEG" bkeys 2>/dev/null | grep -q '^hex:00ff	v1$' && ok || bad "ls hex key"
v=$("$SHMCTL" get "$SEG" bkeys 00ff --key-hex 2>/dev/null)
[ "$v" = "v1" ] && ok || bad "get --key-hex: '$v'"
expect_err "bad --key-hex" "not hex" "$SHMCTL" get "$SEG" bkeys zz --key-hex
expect_err "--key-int and --key-hex" "exclude" "$SHMCTL" get "$SEG" bkeys 1 --key-int --key-hex
# Several keys: one batched lookup of one version; KEY<TAB>VALUE lines.
expect_rc 0 "put u64 key again" "$SHMCTL" put "$SEG" ids 7 70
expect_rc 0 "put base64 again" "$SHMCTL" put "$SEG" blobs b64 aGVsbG8= --base64
v=$("$SHMCTL" get "$SEG" config threads mode 2>/dev/null)
[ "$v" = "$(printf 'threads\t8\nmode\tslow')" ] && ok || bad "get two bytes keys: '$v'"
expect_rc 0 "get two keys, all found" "$SHMCTL" get "$SEG" config threads mode
v=$("$SHMCTL" get "$SEG" ids 7 0x10 7 2>/dev/null)
[ "$v" = "$(printf '7\t70\n0x10\t16\n7\t70')" ] && ok || bad "get u64 keys, repeated: '$v'"
out=$("$SHMCTL" get "$SEG" ids 7 99 16 2>"$TMP/shgtest-err-$$")
rc=$?
err=$(cat "$TMP/shgtest-err-$$")
rm -f "$TMP/shgtest-err-$$"
[ "$rc" -eq 1 ] && ok || bad "get with one key missing: exit $rc, want 1"
[ "$out" = "$(printf '7\t70\n16\t16')" ] && ok || bad "get with one key missing: '$out'"
[ "$err" = "shmctl: ids: no key '99'" ] && ok || bad "missing key named: '$err'"
v=$("$SHMCTL" get "$SEG" blobs bin b64 --hex 2>/dev/null)
[ "$v" = "$(printf 'bin\t00ff10\nb64\t68656c6c6f')" ] && ok || bad "get several --hex: '$v'"
v=$("$SHMCTL" get "$SEG" bkeys 00ff 0102 --key-hex 2>/dev/null)
[ "$v" = "$(printf '00ff\tv1')" ] && ok || bad "get several --key-hex: '$v'"
json_field "get several --json" \
	'[(e["key"], e["found"], e.get("value")) for e in j]' \
	"[('7', True, 70), ('99', False, None), ('16', True, 16)]" \
	"$SHMCTL" get "$SEG" ids 7 99 16 --json
json_field "get several --json kinds" '[e["kind"] for e in j]' "['bytes', 'bytes']" \
	"$SHMCTL" get "$SEG" config mode threads --json
json_field "get one --json unchanged" 'sorted(j)' "['key', 'kind', 'value']" \
	"$SHMCTL" get "$SEG" ids 7 --json
expect_err "get several, one key not u64" "ids: map<u64,u64>; x is not a u64 key" \
	"$SHMCTL" get "$SEG" ids 7 x
v=$("$SHMCTL" get "$SEG" ids 7 x 2>/dev/null)
[ -z "$v" ] && ok || bad "a refused key prints no value: '$v'"
expect_rc 1 "get several on a missing map's keys" "$SHMCTL" get "$SEG" ids 98 99
expect_err "get several, no root" "no root" "$SHMCTL" get "$SEG" noroot a b
keys=$(seq 1 1024)
expect_rc 1 "get 1024 keys" "$SHMCTL" get "$SEG" ids $keys
expect_err "get 1025 keys" "too many arguments" "$SHMCTL" get "$SEG" ids $keys 1025
expect_rc 0 "del u64 key again" "$SHMCTL" del "$SEG" ids 7
expect_rc 0 "del base64 again" "$SHMCTL" del "$SEG" blobs b64
# An emptied map keeps its kinds: put finds them without an entry to read.
expect_rc 0 "put into a new i64 map" "$SHMCTL" put "$SEG" emptied 5 -1 --key-int --int
expect_rc 0 "empty it" "$SHMCTL" del "$SEG" emptied 5
json_field "emptied map: count" 'j["count"], j["key_kind"]' "0 u64" "$SHMCTL" ls "$SEG" emptied --json
expect_err "emptied map: value kind found" "emptied: map<u64,i64>; x is not an i64" \
	"$SHMCTL" put "$SEG" emptied 6 x
expect_rc 0 "emptied map: put" "$SHMCTL" put "$SEG" emptied 6 3
expect_rc 0 "new root-valued map" "$SHMCTL" put "$SEG" rlinks a config --kind root
expect_rc 0 "empty it" "$SHMCTL" del "$SEG" rlinks a
expect_err "emptied root map: kind found" "rlinks: map<bytes,root>; nope does not name a root" \
	"$SHMCTL" put "$SEG" rlinks b nope
json_field "emptied map: kinds kept" 'j["kind"], j["value"]' "i64 3" "$SHMCTL" get "$SEG" emptied 6 --json
expect_rc 2 "get on a missing root: exit 2" "$SHMCTL" get "$SEG" nosuchroot k

# A read-only replica root (marked as the replication follower marks the
# roots it applies into; here by `replicate demote`): put and del fail with
# the clear error, roots shows the mark; promoted, the root is writable.
expect_rc 0 "replicate demote" "$SHMCTL" replicate demote "$SEG" config
out=$("$SHMCTL" replicate demote "$SEG" config 2>&1)
[ "$out" = "config: already a replica" ] && ok ||
	bad "demote twice: '$out'"
expect_err "put on a replica root" \
	"put: root is a read-only replica (written only by its follower)" \
	"$SHMCTL" put "$SEG" config mode local
expect_err "del on a replica root" "read-only replica" \
	"$SHMCTL" del "$SEG" config mode
v=$("$SHMCTL" get "$SEG" config mode 2>/dev/null)
[ "$v" = "slow" ] && ok || bad "replica root changed by a refused put: '$v'"
st=$("$SHMCTL" roots "$SEG" 2>/dev/null | grep '^config ')
printf '%s' "$st" | grep -q ' replica ' && ok ||
	bad "roots: config not shown as replica: '$st'"
json_field "roots --json replica" \
	'[r["name"] for r in j["roots"] if r["replica"]]' "['config']" \
	"$SHMCTL" roots "$SEG" --json
out=$("$SHMCTL" replicate promote "$SEG" config 2>&1)
[ "$out" = "config: promoted: writable" ] && ok || bad "promote: '$out'"
expect_rc 0 "put after promote" "$SHMCTL" put "$SEG" config mode slow
json_field "roots --json after promote" \
	'[r["name"] for r in j["roots"] if r["replica"]]' "[]" \
	"$SHMCTL" roots "$SEG" --json
expect_err "promote a missing root" "nosuch: " \
	"$SHMCTL" replicate promote "$SEG" nosuch
expect_err "promote without a root" "name at least one ROOT" \
	"$SHMCTL" replicate promote "$SEG"

# ---- inspection -------------------------------------------------------------------
for c in info roots readers stats check recover; do
	json_ok "$c --json" "$SHMCTL" "$c" "$SEG" --json
	expect_rc 0 "$c" "$SHMCTL" "$c" "$SEG"
done
json_field "roots --json" '",".join(sorted(r["name"] for r in j["roots"]))' \
	"bkeys,blobs,config,counts,emptied,ids,links,ratios,rlinks,signed" "$SHMCTL" roots "$SEG" --json
json_field "roots type" '[r["type"] for r in j["roots"] if r["name"]=="config"][0]' \
	"map" "$SHMCTL" roots "$SEG" --json
json_field "check --json" 'j["ok"]' "True" "$SHMCTL" check "$SEG" --json

# ---- create: size limits stated --------------------------------------------------
expect_err "--size below the minimum says the range" "4 MiB to 1 TiB" \
	"$SHMCTL" create "/shgtest-sz-$$" --size 10
json_field "info shows the segment's format" 'j["format"] >= 2' "True" \
	"$SHMCTL" info "$SEG" --json

# ---- segment names ------------------------------------------------------------
bare="shgtest-bare-$$"
expect_err "bare name refused with a hint" "did you mean /$bare" "$SHMCTL" create "$bare"
[ ! -e "$bare" ] && ok || { bad "bare name created a file"; rm -f "$bare"; }
expect_err "info of a bare name hints" "did you mean /$bare" "$SHMCTL" info "$bare"
"$SHMCTL" --help | grep -q "must contain a slash" && ok || bad "--help states the name rule"

# ---- dump -----------------------------------------------------------------------------
out=$("$SHMCTL" dump "$SEG" config 2>&1); rc=$?
{ [ $rc -eq 0 ] && printf '%s' "$out" | grep -q '"threads": "8"'; } && ok ||
	bad "dump text: exit $rc '$out'"
json_field "dump --json" 'j["graph"]["type"]+" "+str(j["graph"]["count"])' "map 2" \
	"$SHMCTL" dump "$SEG" config --json
json_field "dump --json entries sorted" '[e["key"] for e in j["graph"]["entries"]]' \
	"['mode', 'threads']" "$SHMCTL" dump "$SEG" config --json
json_field "dump --depth 0" 'j["graph"].get("elided")' "True" \
	"$SHMCTL" dump "$SEG" config --depth 0 --json
json_field "dump --limit 1" 'len(j["graph"]["entries"]), j["graph"]["truncated"]' \
	"1 True" "$SHMCTL" dump "$SEG" config --limit 1 --json
json_field "dump bytes as hex" 'j["graph"]["entries"][0]["value"]["hex"]' "00ff10" \
	"$SHMCTL" dump "$SEG" blobs --json
cur=$("$SHMCTL" roots "$SEG" --json | python3 -c 'import json,sys; print([r["seq"] for r in json.load(sys.stdin)["roots"] if r["name"]=="config"][0])')
expect_rc 0 "dump --version current" "$SHMCTL" dump "$SEG" config --version "$cur"
expect_err "dump --version gone" "not reachable" "$SHMCTL" dump "$SEG" config --version 1
expect_err "dump missing root" "no root" "$SHMCTL" dump "$SEG" nosuch
if [ -x "$PIN" ]; then
	# Another process pins version $cur; then the root moves on.
	"$PIN" "$SEG" config 60 >"$SNAP.pin" 2>&1 &
	pinpid=$!
	for _ in $(seq 50); do grep -q pinned "$SNAP.pin" && break; sleep 0.1; done
	"$SHMCTL" put "$SEG" config threads 16 >/dev/null 2>&1
	json_field "dump pinned older version" \
		'j["version"]["current"], [e["value"] for e in j["graph"]["entries"] if e["key"]=="threads"][0]' \
		"False 8" "$SHMCTL" dump "$SEG" config --version "$cur" --json
	# who pins what: readers lists the pin, roots counts it
	json_field "readers lists the pin" \
		'[(p["root"], p["seq"], p["current_seq"] > p["seq"], p["alive"]) for p in j["pins"]]' \
		"[('config', $cur, True, True)]" "$SHMCTL" readers "$SEG" --json
	json_field "roots counts pins" \
		'[r["pins"] for r in j["roots"] if r["name"]=="config"][0]' \
		"1" "$SHMCTL" roots "$SEG" --json
	"$SHMCTL" readers "$SEG" | grep -q "HELD_BACK" && ok || bad "readers: no pin table"
	kill "$pinpid" 2>/dev/null
	wait "$pinpid" 2>/dev/null
	expect_err "dump unpinned version" "not reachable" "$SHMCTL" dump "$SEG" config --version "$cur"
	# A pinner killed with SIGKILL: recover reports what it released (the
	# open of shmctl itself must not release it unreported).
	"$PIN" "$SEG" config 60 >"$SNAP.pin" 2>&1 &
	pinpid=$!
	for _ in $(seq 50); do grep -q pinned "$SNAP.pin" && break; sleep 0.1; done
	kill -9 "$pinpid" 2>/dev/null
	wait "$pinpid" 2>/dev/null
	json_field "recover reports the killed pinner" \
		'j["procs_released"] >= 1' "True" "$SHMCTL" recover "$SEG" --json
	json_field "recover: its pin is gone" 'len(j["pins"])' "0" \
		"$SHMCTL" readers "$SEG" --json
else
	echo "SKIP: dump of a pinned older version ($PIN not built)"
fi

# ---- check and recover while writers work ------------------------------------
( for i in $(seq 40); do "$SHMCTL" put "$SEG" busy "k$((i % 7))" "$i" --int >/dev/null 2>&1; done ) &
bpid=$!
live_bad=0
for _ in 1 2 3 4 5; do
	"$SHMCTL" check "$SEG" >/dev/null 2>&1 || live_bad=$((live_bad + 1))
	"$SHMCTL" recover "$SEG" >/dev/null 2>&1 || live_bad=$((live_bad + 1))
done
wait "$bpid"
[ "$live_bad" -eq 0 ] && ok || bad "check/recover on a live segment: $live_bad failures"
expect_rc 0 "check after live writes" "$SHMCTL" check "$SEG"

# ---- watch ------------------------------------------------------------------------------
out=$("$SHMCTL" watch "$SEG" --interval 0.1 --count 2 2>&1); rc=$?
{ [ $rc -eq 0 ] && [ "$(printf '%s\n' "$out" | wc -l)" -eq 4 ]; } && ok ||
	bad "watch text: exit $rc, $(printf '%s\n' "$out" | wc -l) lines"
before=$("$SHMCTL" roots "$SEG" --json | python3 -c 'import json,sys; print(sum(r["generation"] for r in json.load(sys.stdin)["roots"]))')
( for i in $(seq 10); do "$SHMCTL" put "$SEG" counts w "$i" --int >/dev/null 2>&1; done ) &
wpid=$!
"$SHMCTL" watch "$SEG" --interval 0.2 --count 3 --json >"$SNAP.watch" 2>&1; rc=$?
wait "$wpid"
"$SHMCTL" watch "$SEG" --interval 0.05 --count 1 --json >>"$SNAP.watch" 2>&1
if [ $rc -eq 0 ] && python3 - "$SNAP.watch" "$before" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert len(rows) == 4, rows
assert all(r["reads"] is None and r["commits_per_s"] >= 0 for r in rows)
assert rows[-1]["commits"] == int(sys.argv[2]) + 10, (rows[-1], sys.argv[2])
EOF
then ok; else bad "watch --json rows"; fi
expect_err "watch bad interval" "bad value" "$SHMCTL" watch "$SEG" --interval 0

# ---- snapshots --------------------------------------------------------------------------
# A map large enough that its hash order (seeded per segment) is not its
# key order: the round trip below must still give identical files.
for i in $(seq 16); do "$SHMCTL" put "$SEG" many "key$i" "value$i" >/dev/null 2>&1; done
expect_rc 0 "export" "$SHMCTL" export "$SEG" config "$SNAP.a"
expect_rc 0 "export many" "$SHMCTL" export "$SEG" many "$SNAP.n"
json_field "export --json" 'j["bytes"] > 40' "True" "$SHMCTL" export "$SEG" blobs "$SNAP.b" --json
expect_err "export missing root" "no root" "$SHMCTL" export "$SEG" nosuch "$SNAP.x"
[ ! -e "$SNAP.x" ] && ok || bad "failed export left a file"
"$SHMCTL" export "$SEG" counts - >"$SNAP.c" 2>/dev/null && ok || bad "export to stdout"
expect_rc 0 "destroy" "$SHMCTL" destroy "$SEG"
expect_rc 2 "destroy twice" "$SHMCTL" destroy "$SEG"
expect_rc 0 "create again" "$SHMCTL" create "$SEG" --size 32m
expect_rc 0 "import" "$SHMCTL" import "$SEG" config "$SNAP.a"
json_field "import --json" 'j["root"]' "blobs" "$SHMCTL" import "$SEG" blobs "$SNAP.b" --json
"$SHMCTL" import "$SEG" counts - <"$SNAP.c" >/dev/null 2>&1 && ok || bad "import from stdin"
expect_rc 0 "import many" "$SHMCTL" import "$SEG" many "$SNAP.n"
expect_rc 0 "export many again" "$SHMCTL" export "$SEG" many "$SNAP.n2"
cmp -s "$SNAP.n" "$SNAP.n2" && ok || bad "16-key map: export -> destroy -> import -> export differs"
expect_rc 0 "export again" "$SHMCTL" export "$SEG" config "$SNAP.a2"
cmp -s "$SNAP.a" "$SNAP.a2" && ok || bad "export -> import -> export differs"
"$SHMCTL" export "$SEG" blobs "$SNAP.b2" >/dev/null 2>&1
cmp -s "$SNAP.b" "$SNAP.b2" && ok || bad "bytes map round trip differs"
v=$("$SHMCTL" get "$SEG" config threads 2>/dev/null)
[ "$v" = "16" ] || [ "$v" = "8" ] && ok || bad "imported value: '$v'"
expect_err "import existing root" "exists" "$SHMCTL" import "$SEG" config "$SNAP.a"
expect_rc 0 "import --replace" "$SHMCTL" import "$SEG" config "$SNAP.b" --replace
"$SHMCTL" export "$SEG" config "$SNAP.r" >/dev/null 2>&1
cmp -s "$SNAP.b" "$SNAP.r" && ok || bad "replace did not replace"
expect_err "import missing file" "No such file" "$SHMCTL" import "$SEG" x "$SNAP.none"

# Damaged files: refused with exit 2 and a message; the segment unchanged.
state() { "$SHMCTL" roots "$SEG" --json 2>/dev/null | python3 -c \
	'import json,sys; print([(r["name"],r["seq"],r["generation"]) for r in json.load(sys.stdin)["roots"]])'; }
before=$(state)
size=$(stat -c %s "$SNAP.a")
head -c $((size - 1)) "$SNAP.a" >"$SNAP.t1"
expect_err "truncated snapshot" "truncated" "$SHMCTL" import "$SEG" t "$SNAP.t1"
head -c 20 "$SNAP.a" >"$SNAP.t2"
expect_err "tiny snapshot" "too short" "$SHMCTL" import "$SEG" t "$SNAP.t2"
: >"$SNAP.t3"
expect_err "empty snapshot" "too short" "$SHMCTL" import "$SEG" t "$SNAP.t3"
for off in 9 20 40 $((size / 2)) $((size - 3)); do
	cp "$SNAP.a" "$SNAP.f"
	b=$(od -An -tu1 -j "$off" -N1 "$SNAP.f" | tr -d ' ')
	printf "\\$(printf %03o $((b ^ 4)))" |
		dd of="$SNAP.f" bs=1 seek="$off" conv=notrunc status=none
	expect_err "bit flip at $off" "snapshot" "$SHMCTL" import "$SEG" t "$SNAP.f"
done
cp "$SNAP.a" "$SNAP.m"
printf 'NOTASNAP' | dd of="$SNAP.m" bs=1 seek=0 conv=notrunc status=none
expect_err "wrong magic" "bad magic" "$SHMCTL" import "$SEG" t "$SNAP.m"
expect_err "segment file as snapshot" "bad magic" "$SHMCTL" import "$SEG" t /proc/self/cmdline
[ "$(state)" = "$before" ] && ok || bad "segment changed by refused imports"
expect_rc 0 "check after refused imports" "$SHMCTL" check "$SEG"
expect_rc 2 "dump of never-created root" "$SHMCTL" dump "$SEG" t

# A graph of user types, a vector and a map, written by an independent
# encoder of docs/SNAPSHOT.md in canonical form: importing it and exporting
# again must give the same bytes; dump shows it through the type table.
python3 - "$SNAP.py" "$SNAP.vec" <<'EOF'
import struct, sys
def crc32c(b):
    c = 0xffffffff
    for x in b:
        c ^= x
        for _ in range(8):
            c = (c >> 1) ^ (0x82f63b78 if c & 1 else 0)
    return c ^ 0xffffffff
def name(s): return bytes([len(s)]) + s
def sec(tag, count, payload):
    h = tag + struct.pack('<IQ', count, len(payload)) + payload
    return h + struct.pack('<I', crc32c(h))
u32 = lambda v: struct.pack('<I', v)
u64 = lambda v: struct.pack('<Q', v & (2**64 - 1))
f64 = lambda v: struct.pack('<d', v)
# type pt {v: i64, nx: node, name: bytes, owner: root}
types = (name(b'pt') + bytes([4]) + bytes([2]) + name(b'v') + bytes([5]) +
         name(b'nx') + bytes([4]) + name(b'name') + bytes([6]) + name(b'owner'))
roots = bytes([1, 0])  # the exported root itself (SELF)
nodes = (bytes([1]) + u32(0) + u64(-3) + u32(0) + u32(3) + b'a\x01b' + u32(1) +
         bytes([1]) + u32(0) + u64(7) + u32(1) + u32(3) + b'two' + u32(0) +
         bytes([3, 3, 0, 0, 0]) + u64(2) + f64(1.5) + f64(-0.0) +
         bytes([2, 1, 5, 0, 0]) + u32(2) + u64(1) + u32(2) + u64(2) + u32(3))
graph = u32(4) + u32(0)
body = (sec(b'TYPE', 1, types) + sec(b'ROOT', 1, roots) +
        sec(b'NODE', 4, nodes) + sec(b'GRPH', 1, graph))
hdr = b'SHGSNAP\0' + struct.pack('<IIQI', 1, 0, 32 + len(body) + 8, 4)
hdr += struct.pack('<I', crc32c(hdr))
f = hdr + body + b'SEND'
open(sys.argv[1], 'wb').write(f + struct.pack('<I', crc32c(f)))
# A graph whose root is a vector of one f64.
body = (sec(b'TYPE', 0, b'') + sec(b'ROOT', 0, b'') +
        sec(b'NODE', 1, bytes([3, 3, 0, 0, 0]) + u64(1) + f64(2.5)) +
        sec(b'GRPH', 1, u32(1) + u32(0)))
hdr = b'SHGSNAP\0' + struct.pack('<IIQI', 1, 0, 32 + len(body) + 8, 4)
hdr += struct.pack('<I', crc32c(hdr))
f = hdr + body + b'SEND'
open(sys.argv[2], 'wb').write(f + struct.pack('<I', crc32c(f)))
EOF
expect_rc 0 "import hand-made snapshot" "$SHMCTL" import "$SEG" graph "$SNAP.py"
expect_rc 0 "export hand-made graph" "$SHMCTL" export "$SEG" graph "$SNAP.py2"
cmp -s "$SNAP.py" "$SNAP.py2" && ok || bad "documented format differs from the exporter's"
out=$("$SHMCTL" dump "$SEG" graph 2>&1)
for want in 'map<u64,node> (2 entries)' 'pt @' 'v: 7' 'name: "two"' \
	'name: hex:610162' 'owner: root:graph' 'vector<f64> (2 items)' '[1] -0'; do
	printf '%s' "$out" | grep -qF -- "$want" && ok || bad "dump lacks '$want'"
done
json_field "dump user type --json" \
	'j["graph"]["entries"][0]["value"]["fields"]["nx"]["fields"]["owner"]["root"]' \
	"graph" "$SHMCTL" dump "$SEG" graph --json
json_field "dump --depth 1 elides" 'j["graph"]["entries"][0]["value"]["elided"]' \
	"True" "$SHMCTL" dump "$SEG" graph --depth 1 --json
expect_err "get on a map with integer keys" "graph: map<u64,node>; k is not a u64 key" "$SHMCTL" get "$SEG" graph k
out=$("$SHMCTL" ls "$SEG" graph 2>/dev/null)
printf '%s' "$out" | grep -q '^1	pt @0x[0-9a-f]* \.\.\.$' &&
	printf '%s' "$out" | grep -q '^2	vector<f64> (2 items) \.\.\.$' && ok ||
	bad "ls of node values: '$out'"
# A node value: get prints it as dump does there, put refuses node values.
out=$("$SHMCTL" get "$SEG" graph 1 2>/dev/null)
printf '%s' "$out" | head -1 | grep -q '^pt @0x' && printf '%s' "$out" | grep -qF 'v: 7' && ok ||
	bad "get of a node value: '$out'"
json_field "get node --json" 'j["kind"], j["value"]["type"], j["value"]["fields"]["v"]' \
	"node pt 7" "$SHMCTL" get "$SEG" graph 1 --json
json_field "ls node --json" 'j["value_kind"], [e["value"].get("elided") for e in j["entries"]]' \
	"node [True, True]" "$SHMCTL" ls "$SEG" graph --json
expect_err "put of a node value" "graph: map<u64,node>; put: node values are read-only" \
	"$SHMCTL" put "$SEG" graph 3 x
# Emptied, the map still refuses: its value kind is found without an entry.
expect_rc 0 "del node value 1" "$SHMCTL" del "$SEG" graph 1
expect_rc 0 "del node value 2" "$SHMCTL" del "$SEG" graph 2
expect_err "put into an emptied node map" "graph: map<u64,node>; put: node values" \
	"$SHMCTL" put "$SEG" graph 3 x
expect_rc 0 "import a vector graph" "$SHMCTL" import "$SEG" vec "$SNAP.vec"
expect_err "ls on a graph that is not a map" "not a map" "$SHMCTL" ls "$SEG" vec
expect_err "put on a graph that is not a map" "not a map" "$SHMCTL" put "$SEG" vec k v
expect_err "del on a graph that is not a map" "not a map" "$SHMCTL" del "$SEG" vec k
expect_err "get on a graph that is not a map" "not a map" "$SHMCTL" get "$SEG" vec k
json_field "dump vector --json" 'j["graph"]["items"]' "[2.5]" "$SHMCTL" dump "$SEG" vec --json
# The same graph under another name: its self reference follows.
expect_rc 0 "import as another root" "$SHMCTL" import "$SEG" graph2 "$SNAP.py"
"$SHMCTL" dump "$SEG" graph2 2>/dev/null | grep -qF 'owner: root:graph2' && ok ||
	bad "self reference not moved to the new root"

# Another segment: a root reference must exist there; copy via stdout/stdin.
expect_rc 0 "create second" "$SHMCTL" create "$SEG2" --size 16m
"$SHMCTL" export "$SEG" config - 2>/dev/null | "$SHMCTL" import "$SEG2" config - >/dev/null 2>&1 &&
	ok || bad "pipe between segments"
"$SHMCTL" export "$SEG2" config "$SNAP.s2" >/dev/null 2>&1
cmp -s "$SNAP.b" "$SNAP.s2" && ok || bad "cross-segment round trip differs"

# ---- figures: one definition each, the same in every command (shmctl(1)) --------
# A quiescent segment with a live pinner and a killed one: info, check,
# roots and readers must agree on used/free/retired bytes, processes,
# threads, nodes, graph bytes and pins (live and dead), text and --json.
expect_rc 0 "create figures segment" "$SHMCTL" create "$SEG3" --size 16m
for i in $(seq 12); do "$SHMCTL" put "$SEG3" fig "k$i" "v$i" >/dev/null 2>&1; done
expect_rc 0 "figures: second root" "$SHMCTL" put "$SEG3" other 1 1 --key-int --int
pins_want=0 dead_want=0 procs_want=0
if [ -x "$PIN" ]; then
	"$PIN" "$SEG3" fig 60 >"$SNAP.pin3" 2>&1 &
	livepid=$!
	for _ in $(seq 50); do grep -q pinned "$SNAP.pin3" && break; sleep 0.1; done
	"$SHMCTL" put "$SEG3" fig k1 changed >/dev/null 2>&1
	"$PIN" "$SEG3" other 60 >"$SNAP.pin4" 2>&1 &
	deadpid=$!
	for _ in $(seq 50); do grep -q pinned "$SNAP.pin4" && break; sleep 0.1; done
	kill -9 "$deadpid" 2>/dev/null
	wait "$deadpid" 2>/dev/null
	pins_want=2 dead_want=1 procs_want=2
else
	echo "SKIP: figures with live and dead pins ($PIN not built)"
fi
for c in info check roots readers; do
	"$SHMCTL" "$c" "$SEG3" --json >"$SNAP.$c.json" 2>/dev/null
	"$SHMCTL" "$c" "$SEG3" >"$SNAP.$c.txt" 2>/dev/null
done
if python3 - "$SNAP" "$pins_want" "$dead_want" "$procs_want" <<'EOF'
import json, re, sys
snap, pins_want, dead_want, procs_want = sys.argv[1], *map(int, sys.argv[2:])
cmds = ("info", "check", "roots", "readers")
j = {c: json.load(open(f"{snap}.{c}.json")) for c in cmds}
t = {c: open(f"{snap}.{c}.txt").read() for c in cmds}
info, check, roots, readers = j["info"], j["check"], j["roots"]["roots"], j["readers"]
errs = []
def same(what, *vals):
    if len(set(vals)) != 1:
        errs.append(f"{what}: {vals}")
same("used: info, check", info["used"], check["used_bytes"])
same("free: info, check, capacity - used", info["free"], check["free_bytes"],
     info["capacity"] - info["used"])
same("retired: info, check", info["retired_pending"], check["retired_bytes"])
same("processes: info, check, want", info["processes"], check["processes"], procs_want)
same("dead processes: check, want", check["dead_procs"], dead_want)
same("threads: info, check, readers", info["threads"], check["threads"],
     len(readers["readers"]))
same("nodes: check, sum of roots", check["graph_nodes"],
     sum(r["nodes"] or 0 for r in roots))
same("graph bytes: check, sum of roots", check["graph_bytes"],
     sum(r["bytes"] or 0 for r in roots))
same("graphs: check, roots with a version, want", check["graphs"],
     sum(r["seq"] is not None for r in roots), 2)
same("pins: check, readers, roots, want", check["pins"], len(readers["pins"]),
     sum(r["pins"] for r in roots), pins_want)
same("dead pins: check, readers, want", check["dead_pins"], readers["dead_pins"],
     sum(not p["alive"] for p in readers["pins"]), dead_want)
# The text tables print the same figures.
m = re.search(r"(\d+) graph\(s\), (\d+) node\(s\), (\d+) pin\(s\) \((\d+) dead\); "
              r"used ([^;]+);", t["check"])
if not m:
    errs.append("check text: no figures line: " + t["check"])
else:
    rows = [l.split() for l in t["roots"].splitlines()[1:]]
    same("text nodes: check, roots, json", int(m[2]), sum(int(r[5]) for r in rows),
         check["graph_nodes"])
    same("text pins: check, roots, want", int(m[3]), sum(int(r[8]) for r in rows), pins_want)
    same("text dead pins: check, readers", int(m[4]),
         int(re.search(r"pin\(s\) \((\d+) dead\)", t["readers"])[1]))
    used = re.search(r"^used\s+(.+)$", t["info"], re.M)[1].strip()
    same("text used: check, info", m[5].strip(), used)
same("text processes: info, want",
     int(re.search(r"^processes\s+(\d+)$", t["info"], re.M)[1]), procs_want)
rows = len(t["readers"].split("\n\n")[0].splitlines()) - 1
same("text threads: info, readers rows",
     int(re.search(r"^threads\s+(\d+)$", t["info"], re.M)[1]), rows)
if errs:
    print("\n".join(errs))
    sys.exit(1)
EOF
then ok; else bad "figures disagree between commands"; fi
if [ -x "$PIN" ]; then
	kill "$livepid" 2>/dev/null
	wait "$livepid" 2>/dev/null
fi

# ---- corrupted segment files ------------------------------------------------------------
expect_rc 0 "create file" "$SHMCTL" create "$FILESEG" --size 8m
cp "$FILESEG" "$FILESEG.orig"
printf 'XXXXXXXX' | dd of="$FILESEG" bs=1 seek=0 conv=notrunc status=none
expect_err "bad magic segment" "bad magic" "$SHMCTL" info "$FILESEG"
cp "$FILESEG.orig" "$FILESEG"
truncate -s 100 "$FILESEG"
expect_rc 2 "truncated" "$SHMCTL" check "$FILESEG"
expect_rc 2 "truncated dump" "$SHMCTL" dump "$FILESEG" r
cp "$FILESEG.orig" "$FILESEG"
printf '\xff' | dd of="$FILESEG" bs=1 seek=24 conv=notrunc status=none
out=$("$SHMCTL" check "$FILESEG" 2>&1); rc=$?
{ [ $rc -eq 2 ] || [ $rc -eq 1 ]; } && ok || bad "flipped capacity: exit $rc"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
