#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# bench_repl.sh - run bench/bench_repl against a 3-server NATS JetStream
# cluster started here on 127.0.0.1 (stream replicas = 3, store dirs in a
# temporary directory, removed at the end), as tests/shell/test_repl.sh
# does. scripts/bench.sh repl calls it.
#
# Usage: bench/bench_repl.sh BENCH_REPL_BINARY [bench_repl args...]
set -euo pipefail

bin=$1
shift
command -v nats-server >/dev/null || {
	echo "bench_repl: nats-server not installed (scripts/deps.sh bench)" >&2
	exit 2
}
T=$(mktemp -d "${TMPDIR:-/tmp}/shgbench-repl.XXXXXX")
[[ -n ${SHG_BENCH_KEEP:-} ]] && echo "bench_repl: logs in $T"
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do
		kill "$p" 2>/dev/null || true
	done
	wait 2>/dev/null || true
	[[ -n ${SHG_BENCH_KEEP:-} ]] || rm -rf "$T"
}
trap cleanup EXIT

base=$((30000 + ($$ % 3000) * 10))
urls=""
for i in 1 2 3; do
	routes=""
	for j in 1 2 3; do
		((j == i)) && continue
		routes+="${routes:+, }\"nats-route://127.0.0.1:$((base + 5 + j))\""
	done
	cat >"$T/n$i.conf" <<CONF
server_name: b$i
host: 127.0.0.1
port: $((base + i))
max_payload: 64MB
jetstream { store_dir: "$T/js$i", max_memory_store: 256MB }
cluster {
  name: shgbench
  host: 127.0.0.1
  port: $((base + 5 + i))
  routes: [ $routes ]
}
CONF
	nats-server -c "$T/n$i.conf" >"$T/n$i.log" 2>&1 &
	pids+=($!)
	urls+="${urls:+,}nats://127.0.0.1:$((base + i))"
done
"$bin" --url "$urls" "$@"
