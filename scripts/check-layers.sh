#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# check-layers.sh - fail when a layer reaches above itself.
#
#   shm/            may include include/ and shm/ headers only, and must not
#                   name a symbol or macro that the graph layer (lib/) defines
#   tools/, bench/  may include public headers (<shmgraph.h>, <shmgraph/*.h>),
#                   their own directory's headers and config.h only
# With a build tree (BUILD_DIR, default build), also checks the objects: every
# shg_/shg__ symbol the shm/ objects need is defined by shm/ objects.
#
# Usage: scripts/check-layers.sh [SRCDIR]   (exit 0 clean, 1 violations)
set -uo pipefail

ROOT=${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
BUILD_DIR=${BUILD_DIR:-$ROOT/build}
cd "$ROOT" || exit 2
bad=0

fail() {
	echo "check-layers: $*" >&2
	bad=1
}

# 1. shm/ includes: quoted includes must name a file in shm/.
while IFS=: read -r file line inc; do
	name=$(sed -E 's/.*#[[:space:]]*include[[:space:]]*"([^"]+)".*/\1/' <<<"$inc")
	[[ -f shm/$name || $name == config.h ]] ||
		fail "$file:$line includes \"$name\", which is not in shm/"
done < <(grep -nE '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' shm/*.c shm/*.h)
# ... and angle includes of shmgraph headers must be public ones.
while IFS=: read -r file line inc; do
	name=$(sed -E 's/.*<([^>]+)>.*/\1/' <<<"$inc")
	[[ -f include/$name || $name == shmgraph/version.h ]] ||
		fail "$file:$line includes <$name>, which is not a public header"
done < <(grep -nE '^[[:space:]]*#[[:space:]]*include[[:space:]]*<shmgraph' \
	shm/*.c shm/*.h tools/*.c tools/*.h bench/*.c bench/*.h)

# 2. shm/ names nothing the graph layer defines (functions, macros, types).
lib_names=$( {
	grep -hoE '^(SHG_HIDDEN[[:space:]]+)?[a-z_ ]*[ *]shg__[a-z0-9_]+\(' lib/*.c lib/*.h |
		grep -oE 'shg__[a-z0-9_]+'
	grep -hoE '^#define[[:space:]]+SHG_[A-Z0-9_]+' lib/*.c lib/*.h |
		awk '{print $2}'
	grep -hoE '^struct[[:space:]]+shg_[a-z0-9_]+[[:space:]]*\{' lib/*.c lib/*.h |
		awk '{print $2}'
} | sort -u)
for n in $lib_names; do
	# defined in shm/ too (e.g. an upper.h declaration)? then it is shm's
	grep -qwE "$n" include/shmgraph.h include/shmgraph/*.h 2>/dev/null && continue
	grep -qE "^(SHG_HIDDEN[[:space:]]+)?[a-z_ ]*[ *]$n\(|^#define[[:space:]]+$n\b|^struct[[:space:]]+$n[[:space:]]*\{" \
		shm/*.c shm/*.h && continue
	hits=$(grep -nw -- "$n" shm/*.c shm/*.h)
	[[ -z $hits ]] || fail "shm/ names the graph layer's $n: $(head -1 <<<"$hits")"
done

# 3. tools/ and bench/: quoted includes are their own headers or config.h.
for dir in tools bench; do
	while IFS=: read -r file line inc; do
		name=$(sed -E 's/.*#[[:space:]]*include[[:space:]]*"([^"]+)".*/\1/' <<<"$inc")
		[[ -f $dir/$name || $name == config.h ]] ||
			fail "$file:$line includes private header \"$name\""
	done < <(grep -nE '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' $dir/*.c $dir/*.h)
done

# 4. Objects: shm/ needs no shg_ symbol that only lib/ defines.
objs=$(find "$BUILD_DIR/shm" -name 'libshg_shm_la-*.o' ! -path '*/.libs/*' 2>/dev/null)
if [[ -n $objs ]] && command -v nm >/dev/null; then
	need=$(nm -u $objs | awk '$NF ~ /^shg_/ {print $NF}' | sort -u)
	have=$(nm --defined-only $objs | awk '$NF ~ /^shg_/ {print $NF}' | sort -u)
	missing=$(comm -23 <(echo "$need") <(echo "$have"))
	[[ -z $missing ]] || fail "shm/ objects need symbols defined above them:" $missing
else
	echo "check-layers: no shm/ objects under $BUILD_DIR; symbol check skipped"
fi

((bad)) && exit 1
echo "check-layers: layers are one-way (shm/ <- lib/ <- tools/, bench/)"
exit 0
