#!/usr/bin/env bash
# Go benchmarks of validation and issuance, this tree against another
# revision, in one run: test binaries of both are built first, then run in
# turn COUNT times, so the host's drift falls on both alike, and benchstat
# compares them.
#
#   bench/gobench.sh <git revision> [count]      (default count: 5)
#
# Needs benchstat (go install golang.org/x/perf/cmd/benchstat@latest or a
# pinned version). Benchmarks: BenchmarkVerify (each algorithm, full
# check), BenchmarkVerifyCached, BenchmarkSignAccessToken (each algorithm),
# BenchmarkTokenEndpoint (a client-credentials request through the handler)
# and BenchmarkScopeServeHTTP (an accepted request through oauth_scope).
set -euo pipefail
cd "$(dirname "$0")/.."
BEFORE=${1:?usage: bench/gobench.sh <git revision> [count]}
COUNT=${2:-5}
command -v benchstat >/dev/null || { echo "benchstat is required (golang.org/x/perf/cmd/benchstat)" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/src-before"
git archive "$BEFORE" | tar -x -C "$work/src-before"

pkgs=(internal/oauthjwt caddyoauth caddyscope)
benches=('^(BenchmarkVerify|BenchmarkVerifyCached|BenchmarkSignAccessToken)$' '^BenchmarkTokenEndpoint$' '^BenchmarkScopeServeHTTP$')
for b in before after; do
	src=.
	[ $b = before ] && src=$work/src-before
	for p in "${pkgs[@]}"; do
		(cd "$src" && go test -c -o "$work/$b-${p//\//_}.test" "./$p")
	done
done
for i in $(seq 1 "$COUNT"); do
	echo "round $i/$COUNT" >&2
	for b in before after; do
		for k in "${!pkgs[@]}"; do
			p=${pkgs[$k]}
			# Each package's tests find their testdata from its directory.
			(cd "$p" && "$work/$b-${p//\//_}.test" -test.run '^$' -test.bench "${benches[$k]}" \
				-test.benchmem -test.benchtime 1s) | grep -E '^(Benchmark|goos|goarch|pkg|cpu)' >>"$work/$b.txt"
		done
	done
done
# OUT_DIR=<dir> keeps the raw results (before.txt, after.txt).
[ -z "${OUT_DIR:-}" ] || cp "$work/before.txt" "$work/after.txt" "$OUT_DIR/"
benchstat "$work/before.txt" "$work/after.txt"
echo
echo "before: $(git rev-parse --short "$BEFORE"), after: $(git rev-parse --short HEAD)$(git diff --quiet || echo ' + uncommitted changes'), $COUNT rounds, $(go version | cut -d' ' -f3), $(date -u +%Y-%m-%d), load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
