#!/usr/bin/env bash
# fuzz.sh runs every Go native fuzz target of the module, one after another,
# each for FUZZTIME, and prints per target the executions, the new interesting
# inputs and the crasher, if any, then the totals.
#
#   scripts/fuzz.sh                      # every target, 30 s each
#   FUZZTIME=5m scripts/fuzz.sh          # = make fuzz FUZZTIME=5m
#   scripts/fuzz.sh ./npy ./dataset      # only these packages
#   FUZZ_MATCH='NPZ|FromArrays' scripts/fuzz.sh   # only targets matching
#
# Targets are found, not listed here: every package whose test files declare
# a `func Fuzz…`, asked with `go test -list '^Fuzz'`, so a target added to any
# package is picked up. Each target's seed corpus lives in the package's
# testdata/fuzz/FuzzXxx/ (plain `go test` replays it); a crasher is written
# there too (Go's fuzzer stops a target at its first one) and the script exits
# 1, as it does when a package's tests do not build. New interesting inputs go to Go's fuzz cache ($(go env GOCACHE)/fuzz).
#
# Environment: FUZZTIME (default 30s; a duration or Nx for executions),
# FUZZMINIMIZETIME (default 10s: time spent shrinking each new input, which
# the fuzzer does not count as executions), FUZZPARALLEL (workers; default
# GOMAXPROCS), FUZZ_MATCH (extended regex on target names), GO (default go).
set -euo pipefail

cd "$(dirname "$0")/.."
GO=${GO:-go}
FUZZTIME=${FUZZTIME:-30s}
FUZZMINIMIZETIME=${FUZZMINIMIZETIME:-10s}
FUZZ_MATCH=${FUZZ_MATCH:-.}
parallel=()
if [ -n "${FUZZPARALLEL:-}" ]; then
	parallel=(-parallel "$FUZZPARALLEL")
fi
patterns=("$@")
if [ ${#patterns[@]} -eq 0 ]; then
	patterns=(./...)
fi

# Packages with a fuzz function in their test files, then their targets.
declare -A pkgdir
while read -r pkg dir; do
	if grep -qsE '^func Fuzz[A-Za-z0-9_]*\(' "$dir"/*_test.go; then
		pkgdir[$pkg]=${dir#"$PWD"/}
	fi
done < <($GO list -f '{{.ImportPath}} {{.Dir}}' "${patterns[@]}")
mapfile -t pkgs < <(printf '%s\n' "${!pkgdir[@]}" | sort)
targets=()
unlisted=()
for pkg in "${pkgs[@]}"; do
	[ -n "$pkg" ] || continue
	if ! list=$($GO test -list '^Fuzz' "$pkg" 2>&1); then
		echo "fuzz.sh: cannot list the fuzz targets of $pkg (its tests do not build):" >&2
		sed 's/^/   | /' <<<"$list" | head -n 20 >&2
		unlisted+=("$pkg")
		continue
	fi
	while read -r name; do
		if [[ $name == Fuzz* ]] && [[ $name =~ $FUZZ_MATCH ]]; then
			targets+=("$pkg $name")
		fi
	done <<<"$list"
done
if [ ${#targets[@]} -eq 0 ]; then
	echo "fuzz.sh: no fuzz targets found" >&2
	exit 1
fi
echo "fuzz.sh: ${#targets[@]} targets, $FUZZTIME each"

logdir=$(mktemp -d)
trap 'rm -rf "$logdir"' EXIT
total_execs=0 total_new=0 crashers=0
summary=()
for t in "${targets[@]}"; do
	read -r pkg name <<<"$t"
	log="$logdir/$name.log"
	echo "== $pkg $name"
	status=ok
	if ! $GO test -run '^$' -fuzz "^${name}\$" -fuzztime "$FUZZTIME" \
		-fuzzminimizetime "$FUZZMINIMIZETIME" "${parallel[@]}" "$pkg" >"$log" 2>&1; then
		status=FAIL
	fi
	# The last progress line has the totals:
	# "fuzz: elapsed: 30s, execs: 123456 (4115/sec), new interesting: 7 (total: 19)".
	last=$(grep -E '^fuzz: elapsed: .*execs: ' "$log" | tail -n 1 || true)
	execs=$(sed -nE 's/.*execs: ([0-9]+).*/\1/p' <<<"$last")
	new=$(sed -nE 's/.*new interesting: ([0-9]+).*/\1/p' <<<"$last")
	execs=${execs:-0} new=${new:-0}
	crasher=$(sed -nE 's/.*Failing input written to (testdata\/fuzz\/[^ ]+).*/\1/p' "$log" | head -n 1)
	if [ -n "$crasher" ]; then
		crasher=${pkgdir[$pkg]}/$crasher
	fi
	if [ "$status" = FAIL ]; then
		crashers=$((crashers + 1))
		if [ -z "$crasher" ]; then
			crasher="(no input written; see below)"
		fi
		echo "   FAILED:"
		grep -vE '^fuzz: elapsed' "$log" | sed 's/^/   | /' | head -n 40
	fi
	total_execs=$((total_execs + execs))
	total_new=$((total_new + new))
	line=$(printf '%-12s %-26s %12s execs %6s new%s' "${pkgdir[$pkg]}" "$name" "$execs" "$new" "${crasher:+  crasher: $crasher}")
	summary+=("$line")
	echo "   $execs execs, $new new interesting inputs${crasher:+, crasher $crasher}"
done

echo
echo "fuzz.sh summary ($FUZZTIME per target):"
printf '%s\n' "${summary[@]}"
printf 'total: %d targets, %d execs, %d new interesting inputs, %d crashers\n' \
	"${#targets[@]}" "$total_execs" "$total_new" "$crashers"
if [ ${#unlisted[@]} -gt 0 ]; then
	echo "not fuzzed (tests do not build): ${unlisted[*]}"
fi
[ "$crashers" -eq 0 ] && [ ${#unlisted[@]} -eq 0 ]
