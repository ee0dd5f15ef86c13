#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# demo.sh - build shmgraph (scripts/build.sh) and run the demo program.
#
# Usage: scripts/demo.sh [demo args...]
# Build output goes to stderr so the demo's stdout can be piped.
# DEMO_BIN (env) overrides the binary; otherwise $BUILD_DIR/demo/shg-demo is
# used if it exists, else $BUILD_DIR/tools/shg-demo.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

BUILD_DIR=${BUILD_DIR:-build}
BUILD_DIR=${BUILD_DIR%/}
# Default demo binary (to be finalized with the Makefile.am layout).
DEMO_BIN_DEFAULT=$BUILD_DIR/tools/shg-demo
DEMO_BIN=${DEMO_BIN:-$DEMO_BIN_DEFAULT}

./scripts/build.sh >&2

if [[ $DEMO_BIN == "$DEMO_BIN_DEFAULT" && -x $BUILD_DIR/demo/shg-demo ]]; then
	DEMO_BIN=$BUILD_DIR/demo/shg-demo
fi

if [[ ! -x $DEMO_BIN ]]; then
	echo "demo: $DEMO_BIN not found or not executable" >&2
	exit 1
fi
exec "$DEMO_BIN" "$@"
