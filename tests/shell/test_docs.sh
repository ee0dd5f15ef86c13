#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# test_docs.sh - what the README says about setting up matches the scripts:
# its per-purpose dependency lists are scripts/deps.sh's, package for
# package.
set -u
SRC=${SHG_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
pass=0
fail=0
for purpose in demo test bench ci; do
	readme=$(awk -v p="$purpose:" '$1 == p {$1 = ""; print}' "$SRC/README.md" |
		tr ' ' '\n' | sed '/^$/d' | sort)
	# deps.sh lists a purpose with what it builds on; the README lists
	# only what each purpose adds.
	script=$(awk -v n="$(tr '[:lower:]' '[:upper:]' <<<"$purpose")_PKGS=(" '
		index($0, n) == 1 {f = 1; sub(/^[A-Z_]*=\(/, "")}
		f {line = $0; sub(/\).*/, "", line); print line; if ($0 ~ /\)/) exit}' \
		"$SRC/scripts/deps.sh" | tr ' \t' '\n\n' | sed '/^$/d' | sort)
	if [[ -n $readme && $readme == "$script" ]]; then
		pass=$((pass + 1))
	else
		echo "FAIL: README's $purpose packages differ from scripts/deps.sh:"
		diff <(echo "$readme") <(echo "$script")
		fail=$((fail + 1))
	fi
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
