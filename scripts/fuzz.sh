#!/usr/bin/env bash
# Fuzzes each target for a while and prints how fast it went, so a target
# that stops fuzzing (a slow input, a hang) shows in the log.
#
#   scripts/fuzz.sh [FUZZTIME]    default 10s per target
#
# Minimization is off: Go minimizes every new interesting input for up to
# 60 s by default, which in a short run leaves no time to fuzz. A failing
# input is still written to testdata/fuzz/ (unminimized) and fails the run.
set -uo pipefail
cd "$(dirname "$0")/.."
fuzztime=${1:-10s}
targets=(
	"FuzzParseOptions ."
	"FuzzDecode ./ingest"
	"FuzzParseManifest ./inference"
)
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
for t in "${targets[@]}"; do
	read -r name pkg <<<"$t"
	if ! go test -run '^$' -fuzz "^$name\$" -fuzztime "$fuzztime" -fuzzminimizetime 0 "$pkg" >"$log" 2>&1; then
		cat "$log"
		status=1
	fi
	# The last progress line holds the totals: "fuzz: elapsed: 10s, execs: 20411 (2361/sec), ..."
	# (its own /sec is the last interval's; the overall rate is worked out here).
	grep -E '^fuzz: elapsed: [0-9]+s, execs: [0-9]+' "$log" | tail -1 |
		awk -v name="$name" '{ s = $3 + 0; n = $5 + 0; printf "fuzz %s: %d execs in %d s, %d execs/s\n", name, n, s, (s > 0 ? n / s : n) }'
done
exit "$status"
