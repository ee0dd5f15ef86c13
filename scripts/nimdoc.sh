#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# nimdoc.sh - generate the Nim binding's API reference (docs/nim-api/) from
# its doc comments with `nim doc`, or check that the checked-in copy is
# fresh.
#
# Usage: scripts/nimdoc.sh [--check]
#   (none)    regenerate docs/nim-api/
#   --check   generate into a temporary directory and diff it with
#             docs/nim-api/; exit 1 (and show the diff) if they differ
# The output is reproducible: SOURCE_DATE_EPOCH=0 fixes the "Generated"
# date; it depends on the nim version (Debian 12: 1.6.10).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
check=0
case "${1:-}" in
--check) check=1 ;;
"") ;;
*)
	echo "usage: scripts/nimdoc.sh [--check]" >&2
	exit 2
	;;
esac
command -v nim >/dev/null || {
	echo "nimdoc: nim not found (scripts/deps.sh installs it)" >&2
	exit 1
}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/shg-nimdoc.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
(cd bindings/nim && SOURCE_DATE_EPOCH=0 nim doc --hints:off --project \
	--index:off --nimcache:"$tmp/cache" --outdir:"$tmp/out" src/shmgraph.nim \
	>"$tmp/log" 2>&1) || {
	cat "$tmp/log"
	echo "nimdoc: nim doc failed" >&2
	exit 1
}

if ((check)); then
	if ! diff -ru docs/nim-api "$tmp/out"; then
		echo "nimdoc: docs/nim-api is out of date with bindings/nim/src;" \
			"regenerate: scripts/nimdoc.sh"
		exit 1
	fi
	echo "nimdoc: docs/nim-api is up to date"
else
	rm -rf docs/nim-api
	mkdir -p docs
	cp -r "$tmp/out" docs/nim-api
	echo "nimdoc: wrote docs/nim-api"
fi
