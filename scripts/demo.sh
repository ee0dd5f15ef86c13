#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# demo.sh - set up (packages, build) and run the shmgraph demo: cooperating
# processes over one segment, then shmctl inspecting that segment.
#
# Usage: scripts/demo.sh [SEGMENT]    (default /shg-demo)
# Build output goes to stderr so the demo's stdout can be piped.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

BUILD_DIR=${BUILD_DIR:-build}
BUILD_DIR=${BUILD_DIR%/}
DEMO_BIN=${DEMO_BIN:-$BUILD_DIR/tools/shg-demo}
SHMCTL=$BUILD_DIR/tools/shmctl
SEG=${1:-/shg-demo}

./scripts/build.sh --for demo >&2

for b in "$DEMO_BIN" "$SHMCTL"; do
	if [[ ! -x $b ]]; then
		echo "demo: $b not found or not executable" >&2
		exit 1
	fi
done

status=0
"$DEMO_BIN" "$SEG" || status=$?

SNAPDIR=$(mktemp -d)
trap 'rm -rf "$SNAPDIR"' EXIT

# Print and run one shmctl command; its exit status goes to $rc.
rc=0
show() {
	echo
	echo "\$ shmctl $*"
	rc=0
	"$SHMCTL" "$@" || rc=$?
}

echo
echo "== the same segment, inspected with shmctl =="
show info "$SEG"
show roots "$SEG"
show readers "$SEG"
echo
echo "# the routing table itself: the first 8 of its 64 routes"
show dump "$SEG" routes --depth 1 --limit 8
show check "$SEG"
check_rc=$rc
show recover "$SEG"

echo
echo "== snapshot round trip: export, import under another name, export again =="
show export "$SEG" routes "$SNAPDIR/routes.snap"
show import "$SEG" routes-copy "$SNAPDIR/routes.snap"
show export "$SEG" routes-copy "$SNAPDIR/copy.snap"
echo
echo "\$ cmp routes.snap copy.snap"
if cmp "$SNAPDIR/routes.snap" "$SNAPDIR/copy.snap"; then
	echo "identical: the copy holds exactly the same graph"
	snap="exact (export -> import -> export gave identical files)"
else
	snap="FAILED (the re-exported file differs)"
	status=1
fi
show check "$SEG"
[[ $rc -eq 0 ]] || check_rc=$rc
show destroy "$SEG"

echo
echo "== summary =="
if [[ $status -eq 0 ]]; then
	echo "  processes:      OK (every version read whole; survivors carried on after SIGKILL)"
else
	echo "  processes:      FAILED (exit status $status)"
fi
if [[ $check_rc -eq 0 ]]; then
	echo "  shmctl check:   OK (no invariant violated)"
else
	echo "  shmctl check:   FAILED (exit $check_rc)"
	status=1
fi
echo "  snapshot:       $snap"
exit "$status"
