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

./scripts/build.sh >&2

for b in "$DEMO_BIN" "$SHMCTL"; do
	if [[ ! -x $b ]]; then
		echo "demo: $b not found or not executable" >&2
		exit 1
	fi
done

status=0
"$DEMO_BIN" "$SEG" || status=$?

show() {
	echo
	echo "\$ shmctl $*"
	"$SHMCTL" "$@" || true
}
echo
echo "== the same segment, inspected with shmctl =="
show info "$SEG"
show roots "$SEG"
show readers "$SEG"
show check "$SEG"
show recover "$SEG"
show destroy "$SEG"
exit "$status"
