#!/usr/bin/env bash
# Load test of the gateway against plain Caddy, measured in one run.
#
#   bench/load.sh [seconds-per-run] [rounds]          (defaults: 5 s, 5 rounds)
#   BEFORE=<git revision> bench/load.sh 5 5          (that build too, same run)
#
# Builds ./cmd/caddy (and, with BEFORE, the same package at that revision),
# starts each build with bench/Caddyfile.bench on loopback, pinned to CPU 0,
# and drives it with wrk -t1 pinned to CPU 1 (taskset), so the load
# generator does not compete with the server. Every round runs each
# scenario once per build, alternating which build goes first, and the
# table gives each ratio per round (both sides from the same round and
# process) and their median. Needs wrk, taskset, openssl, redis-server.
#
# Scenarios (one wrk run each; any non-2xx answer fails the run):
#   respond_post     Caddy `respond` to the token request's POST
#   reverse_proxy    plain `reverse_proxy` to an upstream `respond`
#   control          the same proxy sent the protected route's Authorization
#   protected        oauth_scope + rate_limit + reverse_proxy, one token
#   https_proxy, https_protected   the two proxies over HTTPS
#   many_tokens      protected, 10,000 distinct tokens cycled (all cached)
#   fresh_minted     protected, every token new, signed by bench/mint with the
#                    gateway's key: a full ES256 verification per request
#   fresh_issued     protected, every token new, issued by this process's
#                    token endpoint just before (remembered at issuance)
#   token_endpoint   client credentials, SHA-256 secret hash, ES256
#   token_bcrypt     the same with a bcrypt secret hash (check remembered)
#   token_redis      the same against a second process with `store redis`
#   token_eddsa      the same against a third process signing with EdDSA
#   token_bcrypt_eddsa, token_redis_eddsa   bcrypt and Redis with EdDSA
#                    (the third process; a fourth with store redis)
# and, per round, three fresh processes for resident memory (VmRSS after a
# run): bare proxy, 10,000 distinct tokens, every token new (16,384 > cap).
#
# PROFILE_DIR=<dir>: after the rounds, a CPU profile of each build's
# protected route and token endpoint (admin /debug/pprof, one run each).
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${1:-5}
ROUNDS=${2:-5}
CONNS=${CONNS:-32}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
FRESH_N=${FRESH_N:-20000} # minted tokens per round (more than a run uses)
ISSUED_N=${ISSUED_N:-4000} # tokens issued then used, per round and build (the issued area holds 4,096)
export BENCH_CONNS=$CONNS

for tool in wrk taskset openssl redis-server curl; do
	command -v "$tool" >/dev/null || { echo "$tool is required (apt-get install wrk util-linux openssl redis-server curl)" >&2; exit 1; }
done

load_at_start=$(cut -d" " -f1-3 /proc/loadavg)
work=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

builds=(after)
go build -o "$work/after/caddy" ./cmd/caddy
if [ -n "${BEFORE:-}" ]; then
	builds=(before after)
	mkdir -p "$work/src-before"
	git archive "$BEFORE" | tar -x -C "$work/src-before"
	(cd "$work/src-before" && go build -o "$work/before/caddy" ./cmd/caddy)
fi
go build -o "$work/mint" ./bench/mint

secret=bench-secret-not-for-production-0001
secret2=bench-secret-not-for-production-0002
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$work/key.pem" 2>/dev/null
export BENCH_KEY=$work/key.pem
export BENCH_SECRET_HASH=$(printf '%s' "$secret" | sha256sum | cut -d' ' -f1)
export BENCH_BCRYPT_HASH=$("$work/after/caddy" hash-password --plaintext "$secret2")
basic_sha=$(printf '%s' "bench-client:$secret" | base64 -w0)
basic_bcrypt=$(printf '%s' "bench-bcrypt:$secret2" | base64 -w0)
export BENCH_BASIC=$basic_sha

redis_port=18399
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no --daemonize no >"$work/redis.log" 2>&1 &
pids+=($!)

# start NAME BUILD BASE STORE [SIGNING]: a gateway process on ports
# BASE..BASE+7.
declare -A pid port
start() {
	local name=$1 build=$2 base=$3 store=$4 signing=${5:-ES256 $BENCH_KEY}
	mkdir -p "$work/$name"
	BENCH_ADMIN=$base BENCH_RESPOND=$((base + 1)) BENCH_PROXY=$((base + 2)) \
		BENCH_PROTECTED=$((base + 3)) BENCH_TOKEN=$((base + 4)) BENCH_UPSTREAM=$((base + 5)) \
		BENCH_HTTPS_PROXY=$((base + 6)) BENCH_HTTPS_PROTECTED=$((base + 7)) \
		BENCH_STORAGE="$work/$name/storage" BENCH_STORE="$store" BENCH_SIGNING="$signing" \
		taskset -c "$SERVER_CPU" "$work/$build/caddy" run --config bench/Caddyfile.bench --adapter caddyfile \
		>"$work/$name/log" 2>&1 &
	pid[$name]=$!
	pids+=($!)
	port[$name]=$base
	for _ in $(seq 1 100); do
		curl -fs "http://127.0.0.1:$((base + 1))/" >/dev/null 2>&1 && break
		sleep 0.1
	done
	curl -fs "http://127.0.0.1:$((base + 1))/" >/dev/null || { cat "$work/$name/log" >&2; exit 1; }
	for _ in $(seq 1 100); do
		curl -fsk "https://127.0.0.1:$((base + 6))/" >/dev/null 2>&1 && break
		sleep 0.1
	done
}
stop() {
	kill "${pid[$1]}" 2>/dev/null || true
	wait "${pid[$1]}" 2>/dev/null || true
}
url() { # url NAME SITE
	local b=${port[$1]}
	case $2 in
	respond) echo "http://127.0.0.1:$((b + 1))/" ;;
	proxy) echo "http://127.0.0.1:$((b + 2))/" ;;
	protected) echo "http://127.0.0.1:$((b + 3))/" ;;
	token) echo "http://127.0.0.1:$((b + 4))/oauth2/token" ;;
	https_proxy) echo "https://127.0.0.1:$((b + 6))/" ;;
	https_protected) echo "https://127.0.0.1:$((b + 7))/" ;;
	esac
}

i=0
for b in "${builds[@]}"; do
	start "main-$b" "$b" $((18400 + 100 * i)) ""
	start "redis-$b" "$b" $((18420 + 100 * i)) "store redis redis://127.0.0.1:$redis_port/$((i + 1))"
	start "eddsa-$b" "$b" $((18440 + 100 * i)) "" EdDSA
	start "redis_eddsa-$b" "$b" $((18480 + 100 * i)) "store redis redis://127.0.0.1:$redis_port/$((i + 3))" EdDSA
	i=$((i + 1))
done

# wrkrun URL [script] [duration]: one bounded run on the client CPU; prints
# "rps p50 p99"; fails on any non-2xx answer.
wrkrun() {
	local url=$1 script=${2:-} d=${3:-$DURATION}
	local args=(-t1 -c"$CONNS" -d"${d}s" --latency)
	[ -n "$script" ] && args+=(-s "$script")
	local out
	out=$(taskset -c "$CLIENT_CPU" wrk "${args[@]}" "$url")
	if grep -q "Non-2xx or 3xx responses\|Socket errors" <<<"$out"; then
		echo "wrk saw failed responses at $url:" >&2
		echo "$out" >&2
		exit 1
	fi
	local rps
	rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
	if [ "${BENCH_ONCE:-}" = 1 ]; then
		[ -s "$BENCH_RATE_FILE" ] || { echo "the tokens of $url lasted more than ${d}s; raise the count" >&2; exit 1; }
		rps=$(awk '{printf "%.2f", $1 / $2}' "$BENCH_RATE_FILE")
		rm -f "$BENCH_RATE_FILE"
	fi
	echo "$rps $(awk '$1 == "50%" {print $2}' <<<"$out") $(awk '$1 == "99%" {print $2}' <<<"$out")"
}

# A token of the gateway's (every process's: same issuer and key), for the
# template of the minted ones and the one-token scenarios.
export BENCH_TOKEN_VALUE=$(curl -fs -u "bench-client:$secret" -d grant_type=client_credentials \
	"$(url main-after token)" | sed -E 's/.*"access_token":"([^"]+)".*/\1/')
for b in "${builds[@]}"; do
	[ "$(curl -s -o /dev/null -w '%{http_code}' "$(url "main-$b" protected)")" = 401 ] || { echo "$b: protected route did not refuse" >&2; exit 1; }
	[ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $BENCH_TOKEN_VALUE" "$(url "main-$b" protected)")" = 200 ] || { echo "$b: protected route did not accept the token" >&2; exit 1; }
done
"$work/mint" -token "$BENCH_TOKEN_VALUE" -key "$BENCH_KEY" -n 10000 -prefix many >"$work/many.txt"
for r in $(seq 1 "$ROUNDS"); do
	"$work/mint" -token "$BENCH_TOKEN_VALUE" -key "$BENCH_KEY" -n "$FRESH_N" -prefix "fresh$r" >"$work/fresh$r.txt"
done

# scenario NAME BUILD ROUND: one measured run; appends "name build round rps p50 p99".
scenario() {
	local s=$1 b=$2 r=$3 m="main-$2" res
	case $s in
	respond_post) res=$(wrkrun "$(url "$m" respond)" bench/token.lua) ;;
	reverse_proxy) res=$(wrkrun "$(url "$m" proxy)") ;;
	control) res=$(wrkrun "$(url "$m" proxy)" bench/bearer.lua) ;;
	protected) res=$(wrkrun "$(url "$m" protected)" bench/bearer.lua) ;;
	https_proxy) res=$(wrkrun "$(url "$m" https_proxy)") ;;
	https_protected) res=$(wrkrun "$(url "$m" https_protected)" bench/bearer.lua) ;;
	many_tokens)
		# One pass first, unmeasured, so that every token is cached.
		BENCH_TOKEN_FILE=$work/many.txt BENCH_ONCE=1 BENCH_RATE_FILE=$work/rate wrkrun "$(url "$m" protected)" bench/tokens.lua 30 >/dev/null
		res=$(BENCH_TOKEN_FILE=$work/many.txt wrkrun "$(url "$m" protected)" bench/tokens.lua) ;;
	fresh_minted) res=$(BENCH_TOKEN_FILE=$work/fresh$r.txt BENCH_ONCE=1 BENCH_RATE_FILE=$work/rate wrkrun "$(url "$m" protected)" bench/tokens.lua 30) ;;
	fresh_issued)
		BENCH_SAVE_FILE=$work/issued.txt BENCH_SAVE_N=$ISSUED_N wrkrun "$(url "$m" token)" bench/save.lua 30 >/dev/null
		res=$(BENCH_TOKEN_FILE=$work/issued.txt BENCH_ONCE=1 BENCH_RATE_FILE=$work/rate wrkrun "$(url "$m" protected)" bench/tokens.lua 30) ;;
	token_endpoint) res=$(wrkrun "$(url "$m" token)" bench/token.lua) ;;
	token_bcrypt | token_bcrypt_eddsa)
		local p=$m
		[ "$s" = token_bcrypt ] || p="eddsa-$b"
		# The verified secret is remembered for 10 minutes; one request
		# first, so the run measures the remembered check in both builds.
		curl -fs -o /dev/null -u "bench-bcrypt:$secret2" -d grant_type=client_credentials "$(url "$p" token)"
		res=$(BENCH_BASIC=$basic_bcrypt wrkrun "$(url "$p" token)" bench/token.lua) ;;
	token_redis) res=$(wrkrun "$(url "redis-$b" token)" bench/token.lua) ;;
	token_redis_eddsa) res=$(wrkrun "$(url "redis_eddsa-$b" token)" bench/token.lua) ;;
	token_eddsa) res=$(wrkrun "$(url "eddsa-$b" token)" bench/token.lua) ;;
	rss_proxy | rss_many | rss_fresh)
		start rss "$b" 18460 ""
		case $s in
		rss_proxy) wrkrun "$(url rss proxy)" >/dev/null ;;
		rss_many) BENCH_TOKEN_FILE=$work/many.txt wrkrun "$(url rss protected)" bench/tokens.lua >/dev/null ;;
		rss_fresh) BENCH_TOKEN_FILE=$work/fresh$r.txt BENCH_ONCE=1 BENCH_RATE_FILE=$work/rate wrkrun "$(url rss protected)" bench/tokens.lua 30 >/dev/null ;;
		esac
		res="$(awk '/^VmRSS:/ {printf "%.1f", $2 / 1024}' "/proc/${pid[rss]}/status") - -"
		stop rss
		rm -rf "$work/rss" ;;
	*) echo "unknown scenario $s" >&2; exit 1 ;;
	esac
	echo "$s $b $r $res" >>"$work/results"
	echo "  $s $b: $res" >&2
}

# Each ratio's two sides run close together: the host's speed drifts.
ALL="reverse_proxy protected control many_tokens fresh_issued fresh_minted respond_post token_endpoint token_eddsa token_bcrypt token_bcrypt_eddsa token_redis token_redis_eddsa https_proxy https_protected rss_proxy rss_many rss_fresh"
SCENARIOS=${SCENARIOS:-$ALL}

# Warm-up: every site of every process, briefly.
for b in "${builds[@]}"; do
	for s in respond proxy https_proxy; do taskset -c "$CLIENT_CPU" wrk -t1 -c"$CONNS" -d2s "$(url "main-$b" $s)" >/dev/null; done
	taskset -c "$CLIENT_CPU" wrk -t1 -c"$CONNS" -d2s -s bench/bearer.lua "$(url "main-$b" protected)" >/dev/null
	for p in "main-$b" "redis-$b" "eddsa-$b" "redis_eddsa-$b"; do taskset -c "$CLIENT_CPU" wrk -t1 -c"$CONNS" -d2s -s bench/token.lua "$(url "$p" token)" >/dev/null; done
	BENCH_BASIC=$basic_bcrypt taskset -c "$CLIENT_CPU" wrk -t1 -c"$CONNS" -d2s -s bench/token.lua "$(url "main-$b" token)" >/dev/null
done
: >"$work/results"

for r in $(seq 1 "$ROUNDS"); do
	echo "round $r/$ROUNDS" >&2
	order=("${builds[@]}")
	if [ $((r % 2)) = 0 ] && [ ${#builds[@]} = 2 ]; then order=(after before); fi
	for b in "${order[@]}"; do
		for s in $SCENARIOS; do scenario "$s" "$b" "$r"; done
	done
done

if [ -n "${PROFILE_DIR:-}" ]; then
	mkdir -p "$PROFILE_DIR"
	for b in "${builds[@]}"; do
		admin=${port[main-$b]}
		for s in protected token; do
			script=bench/bearer.lua
			[ $s = token ] && script=bench/token.lua
			curl -fs -o "$PROFILE_DIR/$b-$s.pprof" "http://127.0.0.1:$admin/debug/pprof/profile?seconds=$((DURATION - 1))" &
			wrkrun "$(url "main-$b" $s)" "$script" >/dev/null
			wait $!
			go tool pprof -top -nodecount 25 "$work/$b/caddy" "$PROFILE_DIR/$b-$s.pprof" >"$PROFILE_DIR/$b-$s.top" 2>/dev/null
			cp "$work/$b/caddy" "$PROFILE_DIR/$b-caddy"
		done
	done
fi

bench/report.awk -v rounds="$ROUNDS" -v builds="${builds[*]}" "$work/results"
echo
echo "wrk -t1 -c$CONNS, ${DURATION} s runs, $ROUNDS rounds, server on CPU $SERVER_CPU, wrk on CPU $CLIENT_CPU, $(nproc) CPUs, $(go version | cut -d' ' -f3), $(date -u +%Y-%m-%d), load average at the start: $load_at_start"
[ -z "${BEFORE:-}" ] || echo "before: $(git rev-parse --short "$BEFORE"), after: $(git rev-parse --short HEAD)$(git diff --quiet || echo ' + uncommitted changes')"
