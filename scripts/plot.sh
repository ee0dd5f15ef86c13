#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# plot.sh - draw PNG charts from benchmark JSON lines (gnuplot + jq).
#
# Usage: scripts/plot.sh [JSONL] [OUTDIR] [PREFIX]
#   JSONL   results of scripts/bench.sh (default bench/results/all-latest.jsonl)
#   OUTDIR  where the PNGs go (default: the directory of JSONL)
#   PREFIX  file name prefix (default: JSONL's name without .jsonl)
#
# Charts, each drawn only when the JSON holds its records:
#   PREFIX-scale.png    scale: total lookups/s vs reader processes, one line
#                       per system and writer count (largest N in the file)
#   PREFIX-latency.png  lookup latency p50 / p99 / p999 per case (scale
#                       records with 1 reader; else map lookup records),
#                       each labelled with system, flavor, writers and their
#                       pacing; log scale
#   PREFIX-retained.png pin: memory used over commits with an old version
#                       pinned and after unpin, per system, with the pinned
#                       version's own size, log scale
#   PREFIX-graph.png    graph: ns per edit / read by tree depth, shmgraph vs
#                       the locked in-place tree, log scale
#   PREFIX-lookup.png   growth: median lookup ns (map as built, no writer)
#                       against N, one line per system, log x
#   PREFIX-bytes.png    growth: bytes per entry against N (each system's
#                       first memory measure), log x
#   PREFIX-soak.png     soak (bench_soak windows): commit p99 and used MiB
#                       per window against commits (PREFIX.png when PREFIX
#                       begins with "soak")
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
in=${1:-$ROOT/bench/results/all-latest.jsonl}
outdir=${2:-$(dirname "$in")}
prefix=${3:-$(basename "$in" .jsonl)}

for tool in gnuplot jq; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "plot: $tool is not installed (scripts/deps.sh)" >&2
		exit 1
	fi
done
if [[ ! -s $in ]]; then
	echo "plot: no results in $in" >&2
	exit 1
fi
mkdir -p "$outdir"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# True when some record satisfies the jq condition $1.
has() {
	jq -s -e "any(.[]; $1)" "$in" >/dev/null 2>&1
}

machine=$(jq -r 'select(.machine) | "\(.machine.cpu), \(.machine.cores) cores, \(.machine.numa_nodes) NUMA node(s), Linux \(.machine.kernel), commit \(.commit)"' "$in" | awk 'NR==1')
machine=${machine//_/ }
made=()

term() {
	printf 'set terminal pngcairo size %s,620 font "DejaVu Sans,10"\n' "${2:-1000}"
	printf 'set output "%s"\n' "$1"
	printf 'set bmargin 6\nset label 99 "%s" at screen 0.01,0.02 font ",8" noenhanced\n' "$machine"
	printf 'set key outside right top\nset grid\n'
}

# ---- throughput vs readers --------------------------------------------------
if has '.workload=="scale" and .ops_per_s != null'; then
	n=$(jq -s '[.[] | select(.workload=="scale") | .keys] | max' "$in")
	series=$(jq -r --argjson n "$n" 'select(.workload=="scale" and .keys==$n) | "\(.system) \(.writers)"' "$in" | sort -u)
	plot=()
	i=0
	systems=$(echo "$series" | awk '{ print $1 }' | awk '!s[$0]++')
	while read -r sys w; do
		[[ -z $sys ]] && continue
		lc=$(echo "$systems" | awk -v s="$sys" '$0 == s { print NR }')
		f="$tmp/scale-$i.dat"
		jq -r --arg s "$sys" --argjson w "$w" --argjson n "$n" \
			'select(.workload=="scale" and .system==$s and .writers==$w and .keys==$n) | "\(.readers) \(.ops_per_s / 1e6)"' \
			"$in" | sort -n >"$f"
		dt=$((w + 1))
		plot+=("\"$f\" using 1:2 with linespoints lc $lc dt $dt lw 2 title \"$sys, $w writer(s)\"")
		i=$((i + 1))
	done <<<"$series"
	out="$outdir/$prefix-scale.png"
	{
		term "$out"
		printf 'set title "Total lookups/s of all readers vs reader processes (N = %s keys)"\n' "$n"
		printf 'set xlabel "reader processes (threads for urcu-lfht)"\nset ylabel "Mlookups/s (all readers)"\n'
		printf 'set xtics 1\nset yrange [0:*]\n'
		printf 'plot %s\n' "$(
			IFS=,
			echo "${plot[*]}"
		)"
	} | gnuplot
	made+=("$out")
fi

# ---- latency percentiles ------------------------------------------------------
# One bar group per case, labelled with everything that tells cases apart:
# system and read-section flavor, writers and their pacing (flat out or
# paced at R/s), and for map records the map's state and batched lookups.
lat_cond='.workload=="scale" and .readers==1 and .p50_ns != null'
lat_src="scale suite"
if ! has "$lat_cond"; then
	lat_cond='(.workload=="lookup" or .workload=="lookup_many") and .p50_ns != null'
	lat_src="map suite"
fi
lat_filter="select($lat_cond)"
if has "$lat_cond"; then
	n=$(jq -s "[.[] | $lat_filter | .keys] | max" "$in")
	# shellcheck disable=SC2016
	label='(.system
		+ (if (.variant // "" | test("flavor FENCE")) then " fence"
		   elif (.variant // "" | test("membarrier read sections")) then " membarrier"
		   else "" end)
		+ "\\n"
		+ (if .workload == "lookup_many" then "batch \(.batch // 16), " else "" end)
		+ (if .writers == 0 then "0W"
		   elif (.variant // "" | test("paced at [0-9]+k"))
		   then "\(.writers)W paced \(.variant | capture("paced at (?<r>[0-9]+k)").r)/s"
		   elif ((.config.write_rate // 0) > 0)
		   then "\(.writers)W paced \(.config.write_rate)/s"
		   else "\(.writers)W flat out" end)
		+ (if .map_state == "fresh" then ", fresh" else "" end))'
	jq -r --argjson n "$n" "$lat_filter"' | select(.keys==$n) | "\"\('"$label"')\" \(.p50_ns) \(.p99_ns) \(.p999_ns // .p99_ns)"' \
		"$in" | awk '{ k = $0; sub(/" .*/, "\"", k) } !seen[k]++' >"$tmp/lat.dat"
	writers=$(jq -r --argjson n "$n" "$lat_filter"' | select(.keys==$n) | .writers' "$in" |
		sort -nu | paste -sd/ -)
	out="$outdir/$prefix-latency.png"
	ncases=$(wc -l <"$tmp/lat.dat")
	width=$((ncases * 70 > 1000 ? ncases * 70 : 1000))
	{
		term "$out" "$width"
		printf 'set bmargin 11\n' # room for the two-line, rotated labels
		printf 'set title "Lookup latency, 1 reader, %s writer(s) (%s, N = %s keys; every 64th lookup timed, clock reads included)" noenhanced\n' \
			"$writers" "$lat_src" "$n"
		printf 'set style data histograms\nset style histogram clustered gap 1\n'
		printf 'set style fill solid 0.8 border -1\nset boxwidth 0.9\n'
		printf 'set logscale y\nset ylabel "ns"\nset xtics rotate by -45 font ",8" noenhanced\n'
		printf 'plot "%s" using 2:xtic(1) title "p50", "" using 3 title "p99", "" using 4 title "p999"\n' "$tmp/lat.dat"
	} | gnuplot
	made+=("$out")
fi

# ---- retained memory over time ------------------------------------------------
if has '.workload=="retained_over_time"'; then
	plot=()
	i=0
	for sys in $(jq -r 'select(.workload=="retained_over_time") | .system' "$in" | awk '!s[$0]++'); do
		f="$tmp/ret-$i.dat"
		jq -r --arg s "$sys" 'select(.workload=="retained_over_time" and .system==$s and .settled==false) | "\(.commits) \(.bytes / 1048576) \(.version_bytes / 1048576) \(.phase)"' \
			"$in" >"$f"
		plot+=("\"$f\" using 1:2 with linespoints lw 2 pt 7 ps 0.6 title \"$sys: used\"")
		plot+=("\"$f\" using 1:3 with lines dt 2 lw 1 title \"$sys: pinned version's own size\"")
		i=$((i + 1))
	done
	# first sample after the pin was released, per system
	unpins=$(jq -r 'select(.workload=="retained_over_time" and .phase=="unpinned") | "\(.system) \(.commits)"' "$in" | awk '!s[$1]++')
	out="$outdir/$prefix-retained.png"
	{
		term "$out"
		printf 'set title "Memory while another process pins v1, then after the pin is released (dotted: release)"\n'
		printf 'set xlabel "commits since v1 was pinned"\nset ylabel "MiB (log scale)"\nset logscale y\n'
		while read -r sys c; do
			[[ -z $sys ]] && continue
			printf 'set arrow from %s, graph 0 to %s, graph 1 nohead dt 3 lc rgb "gray40"\n' "$c" "$c"
			printf 'set label "%s releases" at %s, graph 0.95 rotate by 90 right font ",8"\n' "$sys" "$c"
		done <<<"$unpins"
		printf 'plot %s\n' "$(
			IFS=,
			echo "${plot[*]}"
		)"
	} | gnuplot
	made+=("$out")
fi

# ---- graph depth --------------------------------------------------------------
if has '.workload=="graph_edit" and .ns_per_op != null'; then
	jq -r 'select((.workload=="graph_edit" or .workload=="graph_read") and (.variant | test("1 random leaves per commit|in place|read section|read lock")))
		| "\(.system) \(.workload) \(.keys) \(.ns_per_op)"' "$in" |
		awk '{ d = int(log($3 + 1) / log(2) + 0.5); print $1 "-" $2, d, $4 }' |
		sort -k1,1 -k2,2n >"$tmp/graph.all"
	plot=()
	for s in $(cut -d' ' -f1 "$tmp/graph.all" | sort -u); do
		grep "^$s " "$tmp/graph.all" | cut -d' ' -f2,3 >"$tmp/graph-$s.dat"
		plot+=("\"$tmp/graph-$s.dat\" using 1:2 with linespoints lw 2 title \"${s/-graph_/: }\"")
	done
	out="$outdir/$prefix-graph.png"
	{
		term "$out"
		printf 'set title "Deep trees: one leaf edited per txn / read per section, by depth"\n'
		printf 'set xlabel "tree depth"\nset ylabel "ns per operation (log scale)"\nset logscale y\nset xtics 4\n'
		printf 'plot %s\n' "$(
			IFS=,
			echo "${plot[*]}"
		)"
	} | gnuplot
	made+=("$out")
fi

# ---- growth: lookup ns and bytes per entry against N --------------------------
growth_cond='.config.cases == "lookup,bytes"'
if has "$growth_cond and .workload==\"lookup\" and .map_state==\"fresh\""; then
	for what in lookup bytes; do
		plot=()
		i=0
		for sys in $(jq -r "select($growth_cond and .keys != null) | .system" "$in" | awk '!s[$0]++'); do
			f="$tmp/growth-$what-$i.dat"
			if [[ $what == lookup ]]; then
				jq -r --arg s "$sys" "select($growth_cond and .system==\$s and .workload==\"lookup\" and .map_state==\"fresh\")"' | "\(.keys) \(.ns_per_op) \(.min_ns_per_op // .ns_per_op) \(.max_ns_per_op // .ns_per_op) \(.p50_ns // "NaN")"' \
					"$in" | sort -n >"$f"
				plot+=("\"$f\" using 1:2:3:4 with yerrorlines lw 2 pt 7 lc $((i + 1)) title \"$sys\"")
				plot+=("\"$f\" using 1:5 with linespoints lw 1 dt 2 pt 6 lc $((i + 1)) title \"$sys, p50 sampled\"")
			else
				# each system's first measure per N (bench/README.md: what it is)
				jq -r --arg s "$sys" "select($growth_cond and .system==\$s and .workload==\"bytes_per_entry\" and .bytes != null)"' | "\(.keys) \(.bytes / .keys)"' \
					"$in" | awk '!s[$1]++' | sort -n >"$f"
				# rwlock-shm and flat-nolock share a layout: dashes tell them apart
				plot+=("\"$f\" using 1:2 with linespoints lw 2 pt $((i + 4)) ps 1.2 dt $((i + 1)) title \"$sys\"")
			fi
			if [[ ! -s $f ]]; then
				unset 'plot[-1]'
				[[ $what == lookup ]] && unset 'plot[-1]'
			fi
			i=$((i + 1))
		done
		((${#plot[@]})) || continue
		out="$outdir/$prefix-$what.png"
		{
			term "$out"
			if [[ $what == lookup ]]; then
				printf 'set title "Lookup latency against N: 1 reader, no writer, map as built\\nsolid: ns/op, median of reps (bars: min-max); dashed: p50 of the sampled lookups"\n'
				printf 'set ylabel "ns per lookup (log scale)"\nset logscale y\n'
			else
				printf 'set title "Memory per entry against N, 8-byte keys and values\\nshmgraph: allocator used bytes; lmdb: psize x tree pages; urcu-lfht: malloc bytes; rwlock-shm, flat-nolock: segment size" noenhanced\n'
				printf 'set ylabel "bytes per entry"\nset yrange [0:*]\n'
			fi
			printf 'set xlabel "N keys (log scale)"\nset logscale x\nset format x "%%.0s%%c"\n'
			printf 'plot %s\n' "$(
				IFS=,
				echo "${plot[*]}"
			)"
		} | gnuplot
		made+=("$out")
	done
fi

# ---- soak: commit p99 and memory per window ------------------------------------
if has '.bench=="soak" and .window != null'; then
	jq -r 'select(.bench=="soak" and .window != null) | "\(.commits_end / 1e6) \(.p99_ns / 1e3) \((.used_median_bytes // .used_bytes) / 1048576) \(.p50_ns / 1e3) \(.backed_bytes / 1048576) \(((.used_bytes - .retired_bytes)) / 1048576)"' \
		"$in" >"$tmp/soak.dat"
	title=$(jq -r 'select(.bench=="soak" and .summary==true) | "\(.commits_total) single-update commits, \(.keys)-key map, \(.readers) reader(s): p99 \(if .p99_flat then "flat" else "NOT flat" end) (\(.p99_ratio * 100 | round / 100)x), used \(if .used_flat then "flat" else "NOT flat" end) (\(.used_ratio * 1000 | round / 1000)x)"' "$in" | tail -n 1)
	out="$outdir/$prefix-soak.png"
	[[ $prefix == soak* ]] && out="$outdir/$prefix.png"
	{
		term "$out" 1300
		printf 'set title "Soak: %s" noenhanced\n' "${title:-single-update commits}"
		printf 'set xlabel "commits (millions)"\nset ylabel "commit latency (us)"\nset yrange [0:*]\n'
		printf 'set y2label "MiB"\nset y2tics\nset ytics nomirror\nset y2range [0:*]\n'
		printf 'plot "%s" using 1:2 with linespoints lw 2 pt 7 title "commit p99 (us)", "" using 1:4 with linespoints lw 1 pt 6 title "commit p50 (us)", "" using 1:3 axes x1y2 with linespoints lw 2 pt 5 title "used MiB, window median (right)", "" using 1:6 axes x1y2 with lines dt 3 lw 2 title "live = used - retired MiB, end (right)", "" using 1:5 axes x1y2 with lines dt 2 title "backed MiB (right)"\n' "$tmp/soak.dat"
	} | gnuplot
	made+=("$out")
fi

if ((${#made[@]} == 0)); then
	echo "plot: nothing to plot in $in"
else
	echo "plot: ${made[*]}"
fi
