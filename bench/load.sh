#!/usr/bin/env bash
# Load test of the gateway against plain Caddy, measured in one run.
#
#   bench/load.sh [seconds-per-run] [rounds]      (defaults: 10 s, 3 rounds)
#
# Builds ./cmd/caddy, starts it with bench/Caddyfile.bench on loopback pinned
# to CPU 0, and drives it with wrk pinned to CPU 1 (taskset), so the load
# generator does not compete with the server. Each round measures, in turn:
# Caddy `respond`, plain `reverse_proxy`, the protected route (`oauth_scope`
# + `rate_limit` + `reverse_proxy` with a valid token) and the token endpoint
# (client credentials). The table reports the median of the rounds and the
# ratios the project targets: protected / reverse_proxy >= 0.85 and
# token endpoint / respond >= 0.35. Every run is bounded by its duration.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${1:-10}
ROUNDS=${2:-3}
CONNS=${CONNS:-32}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
BASE_PORT=${BASE_PORT:-18400}

command -v wrk >/dev/null || { echo "wrk is required (apt-get install wrk)" >&2; exit 1; }
command -v taskset >/dev/null || { echo "taskset is required (util-linux)" >&2; exit 1; }

work=$(mktemp -d)
trap 'kill "${caddy_pid:-0}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT

go build -o "$work/caddy" ./cmd/caddy

secret=bench-secret-not-for-production-0001
export BENCH_ADMIN=$((BASE_PORT)) BENCH_RESPOND=$((BASE_PORT + 1)) BENCH_PROXY=$((BASE_PORT + 2))
export BENCH_PROTECTED=$((BASE_PORT + 3)) BENCH_TOKEN=$((BASE_PORT + 4)) BENCH_UPSTREAM=$((BASE_PORT + 5))
export BENCH_STORAGE="$work/storage"
export BENCH_SECRET_HASH=$(printf '%s' "$secret" | sha256sum | cut -d' ' -f1)
export BENCH_BASIC=$(printf '%s' "bench-client:$secret" | base64 -w0)

taskset -c "$SERVER_CPU" "$work/caddy" run --config bench/Caddyfile.bench --adapter caddyfile >"$work/caddy.log" 2>&1 &
caddy_pid=$!
for _ in $(seq 1 100); do
	curl -fs "http://127.0.0.1:$BENCH_RESPOND/" >/dev/null 2>&1 && break
	sleep 0.1
done
curl -fs "http://127.0.0.1:$BENCH_RESPOND/" >/dev/null || { cat "$work/caddy.log" >&2; exit 1; }

export BENCH_TOKEN_VALUE=$(curl -fs -u "bench-client:$secret" -d grant_type=client_credentials \
	"http://127.0.0.1:$BENCH_TOKEN/oauth2/token" | sed -E 's/.*"access_token":"([^"]+)".*/\1/')
# Sanity: the protected route refuses without the token and passes with it.
[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$BENCH_PROTECTED/")" = 401 ] || { echo "protected route did not refuse" >&2; exit 1; }
[ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $BENCH_TOKEN_VALUE" "http://127.0.0.1:$BENCH_PROTECTED/")" = 200 ] || { echo "protected route did not accept the token" >&2; exit 1; }

# run NAME URL [script]: one bounded wrk run; appends "name rps p50 p99" to results.
run() {
	local name=$1 url=$2 script=${3:-}
	local args=(-t1 -c"$CONNS" -d"${DURATION}s" --latency)
	[ -n "$script" ] && args+=(-s "$script")
	local out
	out=$(taskset -c "$CLIENT_CPU" wrk "${args[@]}" "$url")
	if grep -q "Non-2xx or 3xx responses" <<<"$out"; then
		echo "$name: wrk saw failed responses:" >&2
		echo "$out" >&2
		exit 1
	fi
	local rps p50 p99
	rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
	p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
	p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
	echo "$name $rps $p50 $p99" >>"$work/results"
	echo "  $name: $rps req/s (p50 $p50, p99 $p99)" >&2
}

# Warm up every route once, briefly.
DURATION_SAVE=$DURATION
DURATION=2
for url in "http://127.0.0.1:$BENCH_RESPOND/" "http://127.0.0.1:$BENCH_PROXY/"; do
	taskset -c "$CLIENT_CPU" wrk -t1 -c"$CONNS" -d2s "$url" >/dev/null
done
taskset -c "$CLIENT_CPU" wrk -t1 -c"$CONNS" -d2s -s bench/bearer.lua "http://127.0.0.1:$BENCH_PROTECTED/" >/dev/null
taskset -c "$CLIENT_CPU" wrk -t1 -c"$CONNS" -d2s -s bench/token.lua "http://127.0.0.1:$BENCH_TOKEN/oauth2/token" >/dev/null
DURATION=$DURATION_SAVE
: >"$work/results"

SCENARIOS=${SCENARIOS:-respond reverse_proxy protected token_endpoint}
for round in $(seq 1 "$ROUNDS"); do
	echo "round $round/$ROUNDS" >&2
	for s in $SCENARIOS; do
		case $s in
		respond) run respond "http://127.0.0.1:$BENCH_RESPOND/" ;;
		reverse_proxy) run reverse_proxy "http://127.0.0.1:$BENCH_PROXY/" ;;
		protected) run protected "http://127.0.0.1:$BENCH_PROTECTED/" bench/bearer.lua ;;
		token_endpoint) run token_endpoint "http://127.0.0.1:$BENCH_TOKEN/oauth2/token" bench/token.lua ;;
		*) echo "unknown scenario $s" >&2; exit 1 ;;
		esac
	done
done
if [ "$SCENARIOS" != "respond reverse_proxy protected token_endpoint" ]; then
	cat "$work/results"
	exit 0
fi

median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
field() { awk -v n="$1" -v f="$2" '$1 == n {print $f}' "$work/results"; }
declare -A rps
for n in respond reverse_proxy protected token_endpoint; do
	rps[$n]=$(field "$n" 2 | median)
done

echo
echo "| scenario | req/s (median of $ROUNDS × ${DURATION}s) | p50 / p99 latency (last round) | ratio |"
echo "| --- | ---: | --- | --- |"
last() { field "$1" "$2" | tail -1; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
echo "| Caddy \`respond\` | ${rps[respond]} | $(last respond 3) / $(last respond 4) | 1.00 |"
echo "| plain \`reverse_proxy\` | ${rps[reverse_proxy]} | $(last reverse_proxy 3) / $(last reverse_proxy 4) | $(ratio "${rps[reverse_proxy]}" "${rps[respond]}") × respond |"
echo "| \`oauth_scope\` + \`rate_limit\` + \`reverse_proxy\` | ${rps[protected]} | $(last protected 3) / $(last protected 4) | **$(ratio "${rps[protected]}" "${rps[reverse_proxy]}") × reverse_proxy** (target ≥ 0.85) |"
echo "| token endpoint (client credentials, ES256) | ${rps[token_endpoint]} | $(last token_endpoint 3) / $(last token_endpoint 4) | **$(ratio "${rps[token_endpoint]}" "${rps[respond]}") × respond** (target ≥ 0.35) |"
echo
echo "wrk -t1 -c$CONNS, server on CPU $SERVER_CPU, wrk on CPU $CLIENT_CPU, $(nproc) CPUs, $(go version | cut -d' ' -f3), $(date -u +%Y-%m-%d)"
