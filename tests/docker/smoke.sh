#!/usr/bin/env bash
# Docker smoke test: ./build.sh brings up the six-node cluster (on fresh data volumes: ./clean.sh
# first), a key is written and read through the published host ports, then ./clean.sh must
# leave nothing behind, data volumes included.
# Cleanup runs from an EXIT trap, so it happens even when a check fails.
# Exit 0 on success, non-zero with a message on the first failure.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CURL=(curl -sS --max-time 10)
NODES=6
RESP_BODY=""
RESP_CODE=""
METADATA=""

fail() { printf 'smoke.sh: FAIL: %s\n' "$*" >&2; exit 1; }
pass() { printf 'smoke.sh: ok: %s\n' "$*"; }

# request METHOD URL [JSON-BODY] -> sets RESP_CODE and RESP_BODY.
request() {
  local method="$1" url="$2" body="${3:-}" out
  local args=(-X "$method" -w '\n%{http_code}')
  [[ -n "$body" ]] && args+=(-H 'Content-Type: application/json' -d "$body")
  out="$("${CURL[@]}" "${args[@]}" "$url")" || fail "$method $url: curl failed"
  RESP_CODE="${out##*$'\n'}"
  RESP_BODY="${out%$'\n'*}"
}

# Teardown, then verify it really removed everything. Runs on every exit path; a leftover
# turns a passing run into a failure.
finish() {
  local rc=$? left=""
  trap - EXIT
  echo "smoke.sh: cleaning up"
  "$ROOT/clean.sh" || { echo "smoke.sh: FAIL: ./clean.sh exited non-zero" >&2; rc=1; }
  if docker info >/dev/null 2>&1; then
    left+="$(docker ps -a --format '{{.Names}}' | grep -E '^node[1-6]$' | tr '\n' ' ' || true)"
    left+="$(docker volume ls -q | grep -E '^kvs-node[0-9]+-data$' | tr '\n' ' ' || true)"
    docker network inspect mynet >/dev/null 2>&1 && left+="network:mynet "
    docker image inspect kvs >/dev/null 2>&1 && left+="image:kvs "
  fi
  if [[ -n "$left" ]]; then
    echo "smoke.sh: FAIL: left behind after ./clean.sh: $left" >&2
    rc=1
  else
    echo "smoke.sh: ok: nothing left behind (no node containers, no data volumes, no mynet, no kvs image)"
  fi
  if ((rc == 0)); then echo "smoke.sh: PASSED"; else echo "smoke.sh: FAILED" >&2; fi
  exit "$rc"
}

main() {
  cd "$ROOT"
  trap finish EXIT

  # ./build.sh keeps the data volumes of an earlier cluster; this test needs empty ones.
  echo "smoke.sh: running ./clean.sh, then ./build.sh"
  "$ROOT/clean.sh" >/dev/null || fail "./clean.sh (before the test) exited non-zero"
  ./build.sh || fail "./build.sh exited non-zero"
  pass "./build.sh brought the cluster up"

  request PUT http://127.0.0.1:8082/key-value-store/smoke '{"value":"v1","causal-metadata":""}'
  [[ $RESP_CODE == 201 ]] || fail "PUT via 8082: expected 201, got $RESP_CODE: $RESP_BODY"
  # The metadata as the raw content of its JSON string (escapes kept: it goes back into JSON).
  local re='"causal-metadata" *: *"((\\.|[^"\\])*)"'
  [[ $RESP_BODY =~ $re ]] || fail "PUT via 8082: no causal-metadata: $RESP_BODY"
  METADATA="${BASH_REMATCH[1]}"
  pass "PUT smoke=v1 via 8082 -> 201"

  request GET http://127.0.0.1:8082/key-value-store/smoke "{\"causal-metadata\":\"$METADATA\"}"
  [[ $RESP_CODE == 200 ]] || fail "GET via 8082: expected 200, got $RESP_CODE: $RESP_BODY"
  grep -Eq '"value" *: *"v1"' <<<"$RESP_BODY" || fail "GET via 8082: expected value v1, got: $RESP_BODY"
  pass "GET smoke via 8082 -> 200 value v1"

  # Any node serves any key (SPEC §4 forwarding). 8087 is node6, in shard 1 while 8082's node1
  # is in shard 0, so one of the two reads is forwarded. The write's metadata goes along: a
  # replica that has not yet received the broadcast must fetch it rather than answer 404.
  request GET http://127.0.0.1:8087/key-value-store/smoke "{\"causal-metadata\":\"$METADATA\"}"
  [[ $RESP_CODE == 200 ]] || fail "GET via 8087: expected 200, got $RESP_CODE: $RESP_BODY"
  grep -Eq '"value" *: *"v1"' <<<"$RESP_BODY" || fail "GET via 8087: expected value v1, got: $RESP_BODY"
  pass "GET smoke via 8087 -> 200 value v1"

  local i state
  for i in $(seq 1 "$NODES"); do
    state="$(docker inspect -f '{{.State.Status}}' "node$i" 2>/dev/null || echo missing)"
    [[ $state == running ]] || fail "container node$i is $state, expected running"
  done
  pass "all $NODES containers running"
}

main "$@"
