#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# test-python.sh - run the Python binding's pytest suite against the build
# tree's libshmgraph.
#
# Builds the library first if build/.libs/libshmgraph.so.0 is missing
# (scripts/build.sh), installs python3-pytest if Debian's python3 lacks it
# (apt-get -y), then runs pytest on bindings/python/tests with
# SHMGRAPH_LIB pointing at the build tree. Exits non-zero if a test fails
# or if no test ran (pytest's exit code 5).
#
# Environment: BUILD_DIR (default build), PYTHON (default /usr/bin/python3,
# the interpreter Debian's python3-pytest belongs to, else python3),
# PYTEST_ARGS (extra arguments, word-split).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

BUILD_DIR=${BUILD_DIR:-build}
BUILD_DIR=${BUILD_DIR%/}
LIB="$ROOT/$BUILD_DIR/.libs/libshmgraph.so.0"
if [[ -z ${PYTHON:-} ]]; then
	PYTHON=python3
	[[ -x /usr/bin/python3 ]] && PYTHON=/usr/bin/python3
fi

if [[ ! -f $LIB ]]; then
	echo "test-python: $LIB missing; building"
	BUILD_DIR=$BUILD_DIR ./scripts/build.sh --for test
fi

if ! "$PYTHON" -c 'import pytest' 2>/dev/null; then
	echo "test-python: pytest missing for $PYTHON; installing python3-pytest"
	SUDO=()
	((EUID == 0)) || SUDO=(sudo)
	if ! "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq --no-install-recommends python3-pytest; then
		"${SUDO[@]}" apt-get update -qq
		"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
			apt-get install -y -qq --no-install-recommends \
			python3-pytest
	fi
fi

extra=()
# shellcheck disable=SC2206 # word splitting is intended
[[ -n ${PYTEST_ARGS:-} ]] && extra=(${PYTEST_ARGS})

# The documented offline install must work: pip without an index and
# without build isolation (Debian's setuptools and wheel), into a scratch
# directory, from a copy of the package (pip builds in the source tree).
if "$PYTHON" -m pip --version >/dev/null 2>&1; then
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/shg-pyinst.XXXXXX")
	trap 'rm -rf "$tmp"' EXIT
	cp -r bindings/python "$tmp/src"
	rm -rf "$tmp/src/tests" "$tmp/src/build"
	if ! "$PYTHON" -m pip install -q --no-index --no-build-isolation \
		--no-warn-script-location --root-user-action=ignore \
		--target "$tmp/site" "$tmp/src"; then
		echo "test-python: offline pip install failed" >&2
		exit 1
	fi
	(cd "$tmp" && SHMGRAPH_LIB=$LIB PYTHONPATH="$tmp/site" "$PYTHON" -c \
		'import shmgraph, sys; assert shmgraph.__file__.startswith(sys.argv[1]); print("test-python: offline pip install ok:", shmgraph.__file__)' \
		"$tmp/site") || exit 1
else
	echo "test-python: skipping the pip install check: no pip for $PYTHON"
fi

echo "test-python: $PYTHON -m pytest bindings/python/tests (SHMGRAPH_LIB=$LIB)"
set +e
SHMGRAPH_LIB=$LIB PYTHONDONTWRITEBYTECODE=1 "$PYTHON" -m pytest -q -rs \
	-p no:cacheprovider "${extra[@]}" bindings/python/tests
rc=$?
set -e
if ((rc == 5)); then
	echo "test-python: no tests were collected" >&2
	exit 1
fi
exit $rc
