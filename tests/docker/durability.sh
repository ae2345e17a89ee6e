#!/usr/bin/env bash
# Docker durability test: the data of the six-node cluster survives the loss of every process.
#
# ./clean.sh first (fresh volumes), then ./build.sh (each container has its named volume
# kvs-node<i>-data at /data, KVS_CLUSTER_ID=kvs-docker). Through the host ports 8082-8087 only,
# one causal client writes KEYS keys round robin, overwrites every 7th and deletes every 11th
# (values carry a per-run tag, so nothing from an earlier run can pass for them), and waits
# until every replica holds them. Then:
#   1. docker kill all six containers (SIGKILL: no shutdown, nothing flushed on the way out),
#      docker start all six, wait for /health "ready": true on each; every key must read back
#      with its last value (deleted keys 404) via another node than the one that wrote it,
#      first with no causal metadata, then with the client's metadata from before the kill;
#      every node holds as many keys as before.
#   2. more keys are written, one node gets docker restart, and every key reads back through
#      that node once it is ready (with the client's metadata); every node holds as many keys
#      as before.
#   3. ./build.sh again (new containers, same volumes): every key reads back once more (no
#      metadata) and every node holds as many keys as before.
# ./clean.sh runs from the EXIT trap (on failure too) and must leave no container, network,
# image or volume behind.
# Only curl, bash and the docker CLI; every request is bounded by --max-time.
# Exit 0 on success, non-zero with a message on the first failure.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUILD_DIR="${KVS_BUILD_DIR:-build}"
[[ "$BUILD_DIR" = /* ]] || BUILD_DIR="$ROOT/$BUILD_DIR"
NODES=6
KEYS=150                  # written before the kill
MORE_KEYS=20              # written before the single-node restart
BASE_PORT=8082            # node i (0-based) -> 8082 + i, container node<i+1>
KEY_MAX_TIME=15           # seconds: a key request may be forwarded and pull a dependency
READY_TIMEOUT=90          # seconds for restarted nodes to report ready
SETTLE_TIMEOUT=30         # seconds for replicas to agree on key counts
RESTARTED=3               # the container that gets `docker restart` (node3, port 8084)
TAG="$(date +%s)-$$"      # in every value: stale data from an earlier run cannot match
RESP_BODY=""
RESP_CODE=""
MEMBER=""
CONTEXT=""                # the client's causal metadata (raw content of a JSON string)
WRITTEN=0                 # keys key0..key<WRITTEN-1> exist or were deleted
declare -a KEY_PORT=() EXPECT=() HEALTH_KEYS=()   # EXPECT[n]: last value, or "" if deleted

fail() {
  printf 'durability.sh: FAIL: %s\n' "$*" >&2
  if ! "$BUILD_DIR/app/kvs-server" --help 2>/dev/null | grep -q 'kvs\.storage\.dir'; then
    printf 'durability.sh: note: %s lists no kvs.storage.dir: this server keeps data in memory only\n' \
      "$BUILD_DIR/app/kvs-server" >&2
  fi
  exit 1
}
pass() { printf 'durability.sh: ok: %s\n' "$*"; }
now_ms() { date +%s%3N; }
port_of() { echo $((BASE_PORT + $1)); }
container_of() { echo "node$(($1 + 1))"; }
all_containers() { local i; for ((i = 0; i < NODES; i++)); do container_of "$i"; done; }

# request METHOD PORT PATH [JSON-BODY] -> sets RESP_CODE and RESP_BODY.
request() {
  local method="$1" port="$2" path="$3" body="${4:-}" out
  local args=(-sS --max-time "$KEY_MAX_TIME" -X "$method" -w '\n%{http_code}')
  [[ -n "$body" ]] && args+=(-H 'Content-Type: application/json' -d "$body")
  out="$(curl "${args[@]}" "http://127.0.0.1:$port$path")" \
    || fail "$method :$port$path: curl failed (no answer within ${KEY_MAX_TIME}s?)"
  RESP_CODE="${out##*$'\n'}"
  RESP_BODY="${out%$'\n'*}"
}

# MEMBER := raw content of string member $2 of JSON body $1 (escapes kept, so it can go back
# into a JSON string verbatim); fails if absent. No subshell: this machine forks slowly under
# load, and the loops below run it for every request.
string_member() {
  local re="\"$2\"[[:space:]]*:[[:space:]]*\"((\\\\.|[^\"\\\\])*)\""
  MEMBER=""
  [[ $1 =~ $re ]] || return 1
  MEMBER="${BASH_REMATCH[1]}"
}

# Integer member $2 of JSON body $1; fails if absent.
int_member() {
  local re="\"$2\"[[:space:]]*:[[:space:]]*(-?[0-9]+)"
  [[ $1 =~ $re ]] || return 1
  printf '%s' "${BASH_REMATCH[1]}"
}

# expect_message CODE MESSAGE WHAT: the last answer has status CODE and "message" MESSAGE.
expect_message() {
  string_member "$RESP_BODY" message || true
  [[ $RESP_CODE == "$1" && $MEMBER == "$2" ]] \
    || fail "$3: expected $1 \"$2\", got $RESP_CODE: $RESP_BODY"
}

take_context() {
  string_member "$RESP_BODY" causal-metadata || fail "$1: no causal-metadata: $RESP_BODY"
  CONTEXT=$MEMBER
}

# write_keys FROM TO: PUT key<FROM>..key<TO-1> round robin over the nodes (metadata passed
# along), then overwrite every 7th and delete every 11th of them through yet another node.
write_keys() {
  local from="$1" to="$2" n port start value
  start="$(now_ms)"
  for ((n = from; n < to; n++)); do
    port=$((BASE_PORT + n % NODES))
    value="v$n-$TAG"
    request PUT "$port" "/key-value-store/key$n" "{\"value\":\"$value\",\"causal-metadata\":\"$CONTEXT\"}"
    expect_message 201 "Added successfully" "PUT key$n via $port"
    take_context "PUT key$n via $port"
    KEY_PORT[n]=$port
    EXPECT[n]=$value
  done
  for ((n = from; n < to; n++)); do
    port=$((BASE_PORT + (n + 2) % NODES))
    if ((n % 11 == 5)); then
      request DELETE "$port" "/key-value-store/key$n" "{\"causal-metadata\":\"$CONTEXT\"}"
      expect_message 200 "Deleted successfully" "DELETE key$n via $port"
      EXPECT[n]=""
    elif ((n % 7 == 3)); then
      value="w$n-$TAG"
      request PUT "$port" "/key-value-store/key$n" "{\"value\":\"$value\",\"causal-metadata\":\"$CONTEXT\"}"
      expect_message 200 "Updated successfully" "PUT (overwrite) key$n via $port"
      EXPECT[n]=$value
    else
      continue
    fi
    take_context "overwrite/delete key$n via $port"
    KEY_PORT[n]=$port
  done
  WRITTEN=$to
  pass "keys $from..$((to - 1)) written round robin over 8082-8087, every 7th overwritten," \
    "every 11th deleted ($(($(now_ms) - start)) ms)"
}

live_keys() {
  local n live=0
  for ((n = 0; n < WRITTEN; n++)); do [[ -z ${EXPECT[n]} ]] || live=$((live + 1)); done
  echo "$live"
}

# read_keys WHAT PORT-CHOICE CONTEXT-MODE: GET every key written so far. PORT-CHOICE: "other"
# (a port other than the last one that wrote the key) or a fixed port. CONTEXT-MODE: "none"
# (empty metadata, a fresh client) or "session" (the client's metadata, updated per read).
read_keys() {
  local what="$1" choice="$2" mode="$3" n w port value meta start
  start="$(now_ms)"
  for ((n = 0; n < WRITTEN; n++)); do
    if [[ $choice == other ]]; then
      w=$((KEY_PORT[n] - BASE_PORT))
      port=$((BASE_PORT + (w + 1 + n % (NODES - 1)) % NODES))
    else
      port=$choice
    fi
    meta=""
    [[ $mode == session ]] && meta=$CONTEXT
    request GET "$port" "/key-value-store/key$n" "{\"causal-metadata\":\"$meta\"}"
    if [[ -z ${EXPECT[n]} ]]; then
      [[ $RESP_CODE == 404 ]] || fail "$what: GET key$n (deleted) via $port: expected 404, got $RESP_CODE: $RESP_BODY"
    else
      expect_message 200 "Retrieved successfully" "$what: GET key$n via $port"
      string_member "$RESP_BODY" value || true
      [[ $MEMBER == "${EXPECT[n]}" ]] \
        || fail "$what: GET key$n via $port: expected value ${EXPECT[n]}, got: $RESP_BODY"
    fi
    [[ $mode == session && $RESP_CODE == 200 ]] && take_context "$what: GET key$n via $port"
  done
  pass "$what: all $WRITTEN keys read back ($(live_keys) with their last value, the rest 404)" \
    "via $([[ $choice == other ]] && echo 'another node than the writer' || echo "port $choice")," \
    "$([[ $mode == session ]] && echo "with the client's causal metadata" || echo 'no causal metadata')" \
    "($(($(now_ms) - start)) ms)"
}

# health_keys I: node i's /health answer, which must be 200; sets RESP_BODY.
health() {
  request GET "$(port_of "$1")" /health
  [[ $RESP_CODE == 200 ]] || fail "/health via $(port_of "$1"): $RESP_CODE: $RESP_BODY"
}

# settle WHAT: polls until the shards' key counts sum to the live keys and every node in a
# shard holds the same number of keys (/health "keys"); leaves each node's count in HEALTH_KEYS.
settle() {
  local what="$1" deadline=$((SECONDS + SETTLE_TIMEOUT)) i shard keys total ok expected
  expected="$(live_keys)"
  while :; do
    declare -A per_shard=()
    ok=1 total=0
    for ((i = 0; i < NODES; i++)); do
      health "$i"
      shard="$(int_member "$RESP_BODY" shard-id)" || fail "$what: node $i has no shard-id: $RESP_BODY"
      keys="$(int_member "$RESP_BODY" keys)" || fail "$what: /health has no keys: $RESP_BODY"
      HEALTH_KEYS[i]=$keys
      if [[ -z ${per_shard[$shard]:-} ]]; then
        per_shard[$shard]=$keys
        total=$((total + keys))
      elif ((per_shard[$shard] != keys)); then
        ok=0
      fi
    done
    ((ok && total == expected)) && break
    ((SECONDS < deadline)) || fail "$what: nodes hold ${HEALTH_KEYS[*]} keys" \
      "(shards: $(for s in "${!per_shard[@]}"; do printf '%s=%s ' "$s" "${per_shard[$s]}"; done)), expected" \
      "every replica of a shard to agree and the shards to sum to $expected after ${SETTLE_TIMEOUT}s"
    sleep 0.5
  done
  pass "$what: every replica holds its shard's keys (per node: ${HEALTH_KEYS[*]}; $expected live)"
}

# wait_ready WHAT NODE-INDEX...: polls /health of the given nodes until each answers 200 with
# "ready": true. A container that is not running fails at once, with its exit code and log.
wait_ready() {
  local what="$1" deadline=$((SECONDS + READY_TIMEOUT)) i c body pending start
  shift
  start="$(now_ms)"
  while :; do
    pending=()
    for i in "$@"; do
      c="$(container_of "$i")"
      body="$(curl -fsS --max-time 2 "http://127.0.0.1:$(port_of "$i")/health" 2>/dev/null || true)"
      [[ $body =~ \"ready\"[[:space:]]*:[[:space:]]*true ]] && continue
      pending+=("$c")
      if [[ "$(docker inspect -f '{{.State.Running}}' "$c" 2>/dev/null)" != true ]]; then
        fail "$what: $c is not running (exit code" \
          "$(docker inspect -f '{{.State.ExitCode}}' "$c" 2>/dev/null || echo '?')); last log lines:" \
          "$(docker logs --tail 15 "$c" 2>&1 | sed 's/^/    /')"
      fi
    done
    ((${#pending[@]} == 0)) && break
    if ((SECONDS >= deadline)); then
      for c in "${pending[@]}"; do
        i=$((${c#node} - 1))
        printf -- '--- %s: /health %s; last log lines:\n' "$c" \
          "$(curl -sS --max-time 2 "http://127.0.0.1:$(port_of "$i")/health" 2>&1 || true)" >&2
        docker logs --tail 15 "$c" 2>&1 | sed 's/^/    /' >&2 || true
      done
      fail "$what: ${pending[*]} not ready (/health \"ready\": true) after ${READY_TIMEOUT}s"
    fi
    sleep 0.3
  done
  pass "$what: $(($#)) node(s) report ready ($(($(now_ms) - start)) ms)"
}

# Each container has its own volume at /data and the fixed cluster id.
check_deployment() {
  local i c mounts env
  for ((i = 0; i < NODES; i++)); do
    c="$(container_of "$i")"
    mounts="$(docker inspect -f '{{range .Mounts}}{{.Type}}:{{.Name}}:{{.Destination}};{{end}}' "$c")"
    [[ $mounts == "volume:kvs-$c-data:/data;" ]] || fail "$c mounts '$mounts', expected volume kvs-$c-data at /data"
    env="$(docker inspect -f '{{range .Config.Env}}{{println .}}{{end}}' "$c")"
    grep -qx 'KVS_CLUSTER_ID=kvs-docker' <<<"$env" || fail "$c lacks KVS_CLUSTER_ID=kvs-docker: $env"
    grep -qx 'KVS_STORAGE_DIR=/data' <<<"$env" || fail "$c lacks KVS_STORAGE_DIR=/data: $env"
  done
  pass "node1..node$NODES: volume kvs-node<i>-data at /data, KVS_STORAGE_DIR=/data, KVS_CLUSTER_ID=kvs-docker"
}

# Same number of keys at every node as before ($1: what happened).
same_counts() {
  local before=("${HEALTH_KEYS[@]}")
  settle "$1"
  [[ "${HEALTH_KEYS[*]}" == "${before[*]}" ]] \
    || fail "$1: nodes hold ${HEALTH_KEYS[*]} keys, before: ${before[*]}"
  pass "$1: every node holds as many keys as before"
}

# Teardown, then verify it removed everything, volumes included. Runs on every exit path.
finish() {
  local rc=$? left="" out
  trap - EXIT
  if ((rc != 0)) && docker info >/dev/null 2>&1; then
    local c
    for c in $(all_containers); do
      echo "--- $c ($(docker inspect -f 'status={{.State.Status}} exit={{.State.ExitCode}} oom={{.State.OOMKilled}} finished={{.State.FinishedAt}} {{.State.Error}}' "$c" 2>&1)) last log lines:" >&2
      docker logs --tail 15 "$c" 2>&1 | sed 's/^/    /' >&2 || true
    done
  fi
  echo "durability.sh: cleaning up"
  if out="$("$ROOT/clean.sh" 2>&1)"; then
    echo "$out"
    if docker info >/dev/null 2>&1 && ((rc == 0)); then
      grep -q 'deleted data volumes' <<<"$out" \
        || { echo "durability.sh: FAIL: ./clean.sh did not say it deleted the volumes" >&2; rc=1; }
    fi
  else
    echo "$out"
    echo "durability.sh: FAIL: ./clean.sh exited non-zero" >&2
    rc=1
  fi
  if docker info >/dev/null 2>&1; then
    left+="$(docker ps -a --format '{{.Names}}' | grep -E '^node[1-6]$' | tr '\n' ' ' || true)"
    left+="$(docker volume ls -q | grep -E '^kvs-node[0-9]+-data$' | tr '\n' ' ' || true)"
    docker network inspect mynet >/dev/null 2>&1 && left+="network:mynet "
    docker image inspect kvs >/dev/null 2>&1 && left+="image:kvs "
  fi
  if [[ -n "$left" ]]; then
    echo "durability.sh: FAIL: left behind after ./clean.sh: $left" >&2
    rc=1
  else
    echo "durability.sh: ok: nothing left behind (no node containers, volumes, mynet or kvs image)"
  fi
  if ((rc == 0)); then echo "durability.sh: PASSED"; else echo "durability.sh: FAILED" >&2; fi
  exit "$rc"
}

main() {
  cd "$ROOT"
  trap finish EXIT

  echo "durability.sh: ./clean.sh, then ./build.sh (fresh data volumes)"
  ./clean.sh >/dev/null || fail "./clean.sh (before the test) exited non-zero"
  ./build.sh || fail "./build.sh exited non-zero"
  pass "./build.sh brought the cluster up"
  check_deployment
  local all=() i
  for ((i = 0; i < NODES; i++)); do all+=("$i"); done
  wait_ready "after ./build.sh" "${all[@]}"

  write_keys 0 "$KEYS"
  settle "before the kill"
  local before_kill="$CONTEXT"

  # 1. Every process dies at once, then all come back.
  # shellcheck disable=SC2046  # container names are plain words
  docker kill $(all_containers) >/dev/null || fail "docker kill of all containers failed"
  local c state
  for c in $(all_containers); do
    state="$(docker inspect -f '{{.State.Status}}' "$c")"
    [[ $state == exited ]] || fail "$c is $state after docker kill, expected exited"
  done
  pass "docker kill: all $NODES containers exited"
  # shellcheck disable=SC2046
  docker start $(all_containers) >/dev/null || fail "docker start of all containers failed"
  wait_ready "after docker kill + docker start of all" "${all[@]}"
  CONTEXT=""
  read_keys "after kill + start of all" other none
  CONTEXT="$before_kill"
  read_keys "after kill + start of all" other session
  same_counts "after kill + start of all"

  # 2. One node restarted gracefully (SIGTERM, then start) while the others keep running.
  write_keys "$KEYS" $((KEYS + MORE_KEYS))
  settle "before docker restart of node$RESTARTED"
  docker restart "node$RESTARTED" >/dev/null || fail "docker restart node$RESTARTED failed"
  wait_ready "after docker restart of node$RESTARTED" $((RESTARTED - 1))
  read_keys "after docker restart of node$RESTARTED" "$(port_of $((RESTARTED - 1)))" session
  same_counts "after docker restart of node$RESTARTED"

  # 3. ./build.sh replaces the containers and keeps the volumes.
  local out
  out="$(./build.sh 2>&1)" || { echo "$out" >&2; fail "second ./build.sh exited non-zero"; }
  grep -q 'keeping data volumes of a previous run' <<<"$out" \
    || { echo "$out" >&2; fail "second ./build.sh did not say it kept the data volumes"; }
  pass "second ./build.sh replaced the containers and kept the volumes"
  check_deployment
  wait_ready "after the second ./build.sh" "${all[@]}"
  read_keys "after the second ./build.sh" other none
  same_counts "after the second ./build.sh"
}

main "$@"
