#!/usr/bin/env bash
# The throughput cost of TLS (issue 12): one kvs node over plain HTTP and one over HTTPS
# (a throwaway CA made here with openssl), both on loopback, loaded in turn by wrk (Debian's,
# HTTPS via OpenSSL) with keep-alive connections: GET of one key, then PUT of one key. Rounds
# alternate plain / TLS so that drift of this noisy machine hits both alike. Prints a Markdown
# table (median of the rounds) and the server's CPU per round.
#
#   bench/tls.sh                  3 rounds of 10 s per case, 32 connections, 1 wrk thread
#   TLS_ROUNDS=5 TLS_SECONDS=20 TLS_CONNECTIONS=64 bench/tls.sh
#
# Needs: wrk, openssl, a built kvs-server ($KVS_BUILD_DIR, default build/).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${KVS_BUILD_DIR:-$ROOT/build}"
BIN="$BUILD_DIR/app/kvs-server"
ROUNDS="${TLS_ROUNDS:-3}"
SECONDS_PER="${TLS_SECONDS:-10}"
CONNS="${TLS_CONNECTIONS:-32}"
for tool in wrk openssl curl; do command -v "$tool" >/dev/null || { echo "tls.sh: needs $tool" >&2; exit 1; }; done
[[ -x "$BIN" ]] || { echo "tls.sh: no $BIN (build first)" >&2; exit 1; }

WORK="$(mktemp -d /tmp/kvs-tls-bench-XXXXXX)"
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

# Throwaway PKI: CA, and a certificate for 127.0.0.1 / localhost.
(
  cd "$WORK"
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ca.key 2>/dev/null
  openssl req -x509 -new -key ca.key -out ca.pem -days 1 -subj "/CN=bench CA" 2>/dev/null
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out node.key 2>/dev/null
  openssl req -new -key node.key -out node.csr -subj "/CN=node" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,IP:127.0.0.31,IP:127.0.0.32,DNS:localhost\n' >ext
  openssl x509 -req -in node.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out node.pem \
    -days 1 -extfile ext 2>/dev/null
)

start() {  # $1 ip, then extra env assignments
  local ip="$1"; shift
  env -i PATH=/usr/bin:/bin SOCKET_ADDRESS="$ip:8080" VIEW="$ip:8080" SHARD_COUNT=1 \
    KVS_HTTP_BIND="$ip" KVS_STORAGE_DIR="$WORK/data-$ip" "$@" "$BIN" >"$WORK/$ip.log" 2>&1 &
  PIDS+=($!)
}
start 127.0.0.31
start 127.0.0.32 KVS_TLS_CERT="$WORK/node.pem" KVS_TLS_KEY="$WORK/node.key" KVS_TLS_CA="$WORK/ca.pem"
PLAIN_PID="${PIDS[0]}" TLS_PID="${PIDS[1]}"
for url in http://127.0.0.31:8080 https://127.0.0.32:8080; do
  for _ in $(seq 1 100); do
    curl -fsS --max-time 1 --cacert "$WORK/ca.pem" "$url/health" >/dev/null 2>&1 && break
    sleep 0.1
  done
  curl -fsS --max-time 2 --cacert "$WORK/ca.pem" -X PUT -H 'Content-Type: application/json' \
    -d '{"value":"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}' \
    "$url/key-value-store/bench" >/dev/null
done
cat >"$WORK/put.lua" <<'LUA'
wrk.method = "PUT"
wrk.body = '{"value":"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}'
wrk.headers["Content-Type"] = "application/json"
LUA

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
declare -A RESULTS
run() {  # $1 label, $2 pid, $3 url, $4 method
  local script=() before after rps
  [[ $4 == PUT ]] && script=(-s "$WORK/put.lua")
  before="$(cpu_ticks "$2")"
  rps="$(wrk -t1 -c"$CONNS" -d"${SECONDS_PER}s" --timeout 5s "${script[@]}" "$3/key-value-store/bench" |
    awk '/Requests\/sec/ {print int($2)}')"
  after="$(cpu_ticks "$2")"
  local cpu=$(( (after - before) * 100 / $(getconf CLK_TCK) / SECONDS_PER ))
  echo "  $1 $4 round: $rps req/s, server CPU ${cpu}%" >&2
  RESULTS["$1 $4"]+="$rps "
}
for round in $(seq 1 "$ROUNDS"); do
  echo "round $round/$ROUNDS" >&2
  for method in GET PUT; do
    run plain "$PLAIN_PID" http://127.0.0.31:8080 "$method"
    run tls "$TLS_PID" https://127.0.0.32:8080 "$method"
  done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "| request | plain HTTP req/s | HTTPS req/s | HTTPS / plain |"
echo "|---|---|---|---|"
for method in GET PUT; do
  p="$(echo "${RESULTS["plain $method"]}" | median)"
  t="$(echo "${RESULTS["tls $method"]}" | median)"
  echo "| $method (1 key, $CONNS keep-alive connections) | $p | $t | $(awk -v t="$t" -v p="$p" 'BEGIN {printf "%.2f", t / p}') |"
done
