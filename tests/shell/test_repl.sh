#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Replication through a 3-server NATS JetStream cluster on 127.0.0.1
# (docs/REPLICATION.md): a primary segment with a writer at full speed, a
# publisher (stream replicas = 3), two followers on their own segments
# standing for two hosts. During the run the publisher, a follower and one
# NATS server are killed with SIGKILL and restarted, and a damaged delta is
# injected on the stream (refused by the followers, which resync from a
# snapshot). At the end both replicas have applied the primary's last seq
# and their exports equal the primary's byte for byte.
#
# Skips (exit 77, printing "SKIP: <reason>") when nats-server is missing
# or the library was built without libnats. About 20 s. Run by
# `make check-repl` (scripts/test.sh's repl phase).
set -u

SHMCTL=${SHMCTL:-./tools/shmctl}
BUILD=${SHG_BUILDDIR:-$(cd "$(dirname "$SHMCTL")/.." && pwd)}
WRITER=$BUILD/tests/shell/repl_writer
INJECT=$BUILD/tests/shell/repl_inject
TMPROOT=${SHG_TEST_TMPDIR:-/tmp}

skip() {
	echo "SKIP: $*"
	exit 77
}
command -v nats-server >/dev/null ||
	skip "nats-server not installed (scripts/deps.sh test installs it)"
grep -q '^#define HAVE_NATS 1' "$BUILD/config.h" 2>/dev/null ||
	skip "built without libnats (configure found no libnats-dev)"
[[ -x $WRITER && -x $INJECT ]] ||
	skip "helpers not built: make check-repl builds $WRITER and $INJECT"

T=$(mktemp -d "$TMPROOT/shgrepl.XXXXXX")
declare -A PIDS=()
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() {
	fail=$((fail + 1))
	echo "FAIL: $*"
}

cleanup() {
	local p
	for p in "${PIDS[@]}"; do
		kill -9 "$p" 2>/dev/null
	done
	wait 2>/dev/null
	if ((fail)); then
		for f in "$T"/*.log; do
			echo "---- $f (last lines)"
			tail -n 15 "$f"
		done
	fi
	if ((fail)) && [[ -n ${SHG_KEEP_TMP:-} ]]; then
		echo "kept $T"
	else
		rm -rf "$T"
	fi
}
trap cleanup EXIT

# Ports: a base from the pid, so parallel runs do not meet.
BASE=$((20000 + ($$ % 4000) * 10))
for i in 1 2 3; do
	CPORT[i]=$((BASE + i))
	RPORT[i]=$((BASE + 5 + i))
done
URL1=nats://127.0.0.1:${CPORT[1]}
URL2=nats://127.0.0.1:${CPORT[2]}
URL3=nats://127.0.0.1:${CPORT[3]}
ALL="$URL1,$URL2,$URL3"

nats_conf() { # nats_conf I: a server of the cluster, as in production
	local i=$1 j routes=""
	for j in 1 2 3; do
		((j == i)) && continue
		routes+="${routes:+, }\"nats-route://127.0.0.1:${RPORT[j]}\""
	done
	cat >"$T/n$i.conf" <<EOF
server_name: n$i
host: 127.0.0.1
port: ${CPORT[i]}
max_payload: 8MB
jetstream { store_dir: "$T/js$i" }
cluster {
  name: shgtest
  host: 127.0.0.1
  port: ${RPORT[i]}
  routes: [ ${routes} ]
}
EOF
}

start_nats() {
	nats-server -c "$T/n$1.conf" >>"$T/n$1.log" 2>&1 &
	PIDS[n$1]=$!
}

start_pub() {
	"$SHMCTL" replicate publish "$T/pri" m --nats "$ALL" --replicas 3 \
		--snap-every 200 -v >>"$T/pub.log" 2>&1 &
	PIDS[pub]=$!
}

start_fol() { # start_fol I URLS
	"$SHMCTL" replicate follow "$T/rep$1" --nats "$2" --durable "f$1" \
		--roots m -v >>"$T/fol$1.log" 2>&1 &
	PIDS[fol$1]=$!
}

alive() { kill -0 "${PIDS[$1]}" 2>/dev/null; }

kill9() {
	kill -9 "${PIDS[$1]}" 2>/dev/null
	wait "${PIDS[$1]}" 2>/dev/null
}

# Wait (0.1 s steps, at most $2 s) until command $3... succeeds.
wait_for() {
	local what=$1 secs=$2 n=0
	shift 2
	until "$@" >/dev/null 2>&1; do
		n=$((n + 1))
		if ((n > secs * 10)); then
			bad "timed out waiting for $what"
			return 1
		fi
		sleep 0.1
	done
}

applied_seq() { # applied_seq I: the primary seq replica I has applied
	"$SHMCTL" replicate status "$T/rep$1" --json 2>/dev/null |
		sed -n 's/.*"seq":\([0-9]*\).*/\1/p'
}

replica_at() { test "$(applied_seq "$1")" = "$2"; }

for i in 1 2 3; do
	nats_conf "$i"
	start_nats "$i"
done
for s in pri rep1 rep2; do
	"$SHMCTL" create "$T/$s" --size 256m >/dev/null || bad "create $s"
done
"$WRITER" "$T/pri" m 0 1 20000 1 1 --fill >/dev/null 2>&1 || bad "fill"

sleep 0.3
for i in 1 2 3; do
	alive "n$i" || {
		bad "nats-server $i did not start"
		exit 1
	}
done
# The publisher retries until the cluster can create the stream (replicas
# 3); the followers until the stream exists.
start_pub
start_fol 1 "$URL2,$URL3,$URL1"
start_fol 2 "$URL3,$URL1,$URL2"
fill=$("$SHMCTL" roots "$T/pri" --json | sed -n 's/.*"seq":\([0-9]*\).*/\1/p')
for i in 1 2; do
	wait_for "replica $i to start (seq $fill)" 30 replica_at "$i" "$fill" &&
		ok
done

# A writer at full speed for 12 s; kills and restarts meanwhile.
"$WRITER" "$T/pri" m 12 0 20000 4 7 >"$T/final_seq" 2>"$T/writer.log" &
PIDS[writer]=$!
sleep 2
kill9 pub
start_pub
sleep 2
kill9 fol1
start_fol 1 "$URL2,$URL3,$URL1"
sleep 1
# A damaged delta and a truncated one: refused, the followers resync.
"$INJECT" "$URL1" SHG m 70 >>"$T/inject.log" 2>&1 || bad "inject flip"
"$INJECT" "$URL1" SHG m -1 >>"$T/inject.log" 2>&1 || bad "inject cut"
sleep 1
kill9 n3
sleep 2
start_nats 3
sleep 1
kill9 pub
start_pub
wait "${PIDS[writer]}" || bad "writer failed"
unset 'PIDS[writer]'
final=$(cat "$T/final_seq")
[[ $final =~ ^[0-9]+$ ]] && ok || bad "writer gave no final seq"
echo "writer: $(tail -n 1 "$T/writer.log"); final seq $final"

for i in 1 2; do
	wait_for "replica $i to reach seq $final" 30 replica_at "$i" "$final" &&
		ok
done
# shmctl roots on a replica names the primary's seq.
"$SHMCTL" roots "$T/rep1" | grep -q "m .*primary seq $final," && ok ||
	bad "shmctl roots does not show the primary's seq $final"
for p in pub fol1 fol2; do
	if alive "$p"; then
		ok
	else
		wait "${PIDS[$p]}"
		bad "$p died (exit status $?)"
	fi
done

"$SHMCTL" export "$T/pri" m "$T/pri.snap" >/dev/null || bad "export pri"
for i in 1 2; do
	"$SHMCTL" export "$T/rep$i" m "$T/rep$i.snap" >/dev/null ||
		bad "export rep$i"
	if cmp -s "$T/pri.snap" "$T/rep$i.snap"; then
		ok
	else
		bad "replica $i export differs from the primary's"
	fi
done
# The damaged messages were seen and refused by both followers.
for i in 1 2; do
	grep -q "message refused" "$T/fol$i.log" && ok ||
		bad "follower $i did not report the damaged message"
done
"$SHMCTL" replicate status "$T/rep1" --nats "$ALL"
grep -h "shmctl: \(publish\|follow\):.*messages" "$T"/pub.log \
	"$T"/fol*.log | tail -n 3

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
