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
	"FuzzModelIO ./inference"
)
log=$(mktemp)
trap 'rm -f "$log"' EXIT

fuzz() {
	go test -run '^$' -fuzz "^$1\$" -fuzztime "$fuzztime" -fuzzminimizetime 0 "$2" >"$log" 2>&1
}

# deadline_race tells whether a failed run failed only on Go's own race at
# the end of -fuzztime (go.dev/issue/75804, fixed in Go 1.27): the target's
# only failure is "context deadline exceeded", and no failing input was
# written. A finding always writes one, and any other failure reads
# differently, so those still fail the run.
deadline_race() {
	! grep -q 'Failing input written to' "$log" &&
		[ "$(grep -A1 -- '^--- FAIL: ' "$log" | sed -n 2p | tr -d '[:space:]')" = contextdeadlineexceeded ]
}

status=0
for t in "${targets[@]}"; do
	read -r name pkg <<<"$t"
	if ! fuzz "$name" "$pkg"; then
		if deadline_race; then
			echo "fuzz $name: stopped on Go's race at the end of -fuzztime (context deadline exceeded, no failing input); fuzzing it once more"
			fuzz "$name" "$pkg" || {
				cat "$log"
				status=1
			}
		else
			cat "$log"
			status=1
		fi
	fi
	# The last progress line holds the totals: "fuzz: elapsed: 10s, execs: 20411 (2361/sec), ..."
	# (its own /sec is the last interval's; the overall rate is worked out here).
	grep -E '^fuzz: elapsed: [0-9]+s, execs: [0-9]+' "$log" | tail -1 |
		awk -v name="$name" '{ s = $3 + 0; n = $5 + 0; printf "fuzz %s: %d execs in %d s, %d execs/s\n", name, n, s, (s > 0 ? n / s : n) }'
done
exit "$status"
