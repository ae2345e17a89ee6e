#!/usr/bin/env bash
# Docker sharding test (SPEC §3, §4, §6): ./build.sh brings up the six-node, two-shard cluster;
# through the published host ports 8082-8087 only, one causal client (passing its metadata
# along) writes 300 keys round robin, the keys must spread evenly over the shards and be readable
# at a different node than the one that took the write. Then a seventh container (node7,
# 10.10.0.8, no SHARD_COUNT, no published port) joins every view and is added to shard 1;
# reshard to 10 is refused, reshard to 3 succeeds and every key is still there, spread evenly.
# node7 is removed and ./clean.sh run from the EXIT trap; nothing may be left behind (data
# volumes included). ./clean.sh also runs first: ./build.sh would keep an earlier cluster's data.
# Only curl and bash; every request is bounded by --max-time.
# Exit 0 on success, non-zero with a message on the first failure.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
NODES=6
KEYS=300
BASE_PORT=8082            # node i (0-based) -> 8082 + i
KEY_MAX_TIME=15           # seconds: a key request may be forwarded and pull a dependency
SHARD_OP_MAX_TIME=120     # seconds: reshard answers once every key has moved
SETTLE_TIMEOUT=20         # seconds for replicas to agree on the key counts
VIEW_TIMEOUT=30           # seconds for node7 to appear in every view
EXTRA=node7               # the container added later (clean.sh knows only node1..node6)
EXTRA_ADDRESS=10.10.0.8:8080
MEMBERS=$NODES            # nodes in the store (containers node1..node<MEMBERS>)
RESP_BODY=""
RESP_CODE=""
CONTEXT=""                # the client's causal metadata, as the raw content of a JSON string
declare -a KEY_PORT=() NAMED=(0 0) COUNTS=()   # NAMED: keys per shard-id the PUTs answered

fail() { printf 'sharding.sh: FAIL: %s\n' "$*" >&2; exit 1; }
pass() { printf 'sharding.sh: ok: %s\n' "$*"; }
now_ms() { date +%s%3N; }

# request METHOD PORT PATH [JSON-BODY [MAX-TIME]] -> sets RESP_CODE and RESP_BODY.
request() {
  local method="$1" port="$2" path="$3" body="${4:-}" max_time="${5:-$KEY_MAX_TIME}" out
  local args=(-sS --max-time "$max_time" -X "$method" -w '\n%{http_code}')
  [[ -n "$body" ]] && args+=(-H 'Content-Type: application/json' -d "$body")
  out="$(curl "${args[@]}" "http://127.0.0.1:$port$path")" \
    || fail "$method :$port$path: curl failed (no answer within ${max_time}s?)"
  RESP_CODE="${out##*$'\n'}"
  RESP_BODY="${out%$'\n'*}"
}

# Raw content of string member $2 of JSON body $1 (escapes kept, so it can be put back into a
# JSON string verbatim); fails if absent.
string_member() {
  local re="\"$2\"[[:space:]]*:[[:space:]]*\"((\\\\.|[^\"\\\\])*)\""
  [[ $1 =~ $re ]] || return 1
  printf '%s' "${BASH_REMATCH[1]}"
}

# Integer member $2 of JSON body $1; fails if absent.
int_member() {
  local re="\"$2\"[[:space:]]*:[[:space:]]*(-?[0-9]+)"
  [[ $1 =~ $re ]] || return 1
  printf '%s' "${BASH_REMATCH[1]}"
}

# Array member $2 of JSON body $1, whitespace removed, e.g. [0,1]; fails if absent.
array_member() {
  local re="\"$2\"[[:space:]]*:[[:space:]]*(\\[[^]]*\\])"
  [[ $1 =~ $re ]] || return 1
  printf '%s' "${BASH_REMATCH[1]//[[:space:]]/}"
}

# expect_message CODE MESSAGE WHAT: the last answer has status CODE and "message" MESSAGE.
expect_message() {
  local message
  message="$(string_member "$RESP_BODY" message || true)"
  [[ $RESP_CODE == "$1" && $message == "$2" ]] \
    || fail "$3: expected $1 \"$2\", got $RESP_CODE: $RESP_BODY"
}

port_of() { echo $((BASE_PORT + $1)); }

# PUT the KEYS keys round robin over the nodes, passing the metadata along.
write_keys() {
  local n port shard start
  start="$(now_ms)"
  for ((n = 0; n < KEYS; n++)); do
    port="$(port_of $((n % NODES)))"
    request PUT "$port" "/key-value-store/key$n" "{\"value\":\"value$n\",\"causal-metadata\":\"$CONTEXT\"}"
    expect_message 201 "Added successfully" "PUT key$n via $port"
    shard="$(int_member "$RESP_BODY" shard-id)" || fail "PUT key$n via $port: no shard-id: $RESP_BODY"
    [[ $shard == 0 || $shard == 1 ]] || fail "PUT key$n via $port: shard-id $shard not in {0,1}"
    CONTEXT="$(string_member "$RESP_BODY" causal-metadata)" \
      || fail "PUT key$n via $port: no causal-metadata: $RESP_BODY"
    KEY_PORT[n]=$port
    NAMED[shard]=$((NAMED[shard] + 1))
  done
  pass "PUT $KEYS keys round robin over ports 8082-8087 -> 201 with shard-id 0/1 ($(($(now_ms) - start)) ms)"
}

# read_keys OFFSET WHAT: GET every key via a port other than the one that wrote it.
read_keys() {
  local offset="$1" what="$2" n w port value start
  start="$(now_ms)"
  for ((n = 0; n < KEYS; n++)); do
    w=$((KEY_PORT[n] - BASE_PORT))
    port="$(port_of $(((w + 1 + (n + offset) % (NODES - 1)) % NODES)))"
    request GET "$port" "/key-value-store/key$n" "{\"causal-metadata\":\"$CONTEXT\"}"
    expect_message 200 "Retrieved successfully" "$what: GET key$n via $port (written via ${KEY_PORT[n]})"
    value="$(string_member "$RESP_BODY" value || true)"
    [[ $value == "value$n" ]] || fail "$what: GET key$n via $port: expected value$n: $RESP_BODY"
    CONTEXT="$(string_member "$RESP_BODY" causal-metadata)" \
      || fail "$what: GET key$n via $port: no causal-metadata: $RESP_BODY"
  done
  pass "$what: all $KEYS keys read back via a different port ($(($(now_ms) - start)) ms)"
}

# check_shard_ids EXPECTED WHAT: every node answers shard-ids EXPECTED (e.g. [0,1]).
check_shard_ids() {
  local i port ids
  for ((i = 0; i < NODES; i++)); do
    port="$(port_of "$i")"
    request GET "$port" /key-value-store-shard/shard-ids
    expect_message 200 "Shard IDs retrieved successfully" "$2: shard-ids via $port"
    ids="$(array_member "$RESP_BODY" shard-ids || true)"
    [[ $ids == "$1" ]] || fail "$2: shard-ids via $port: expected $1, got: $RESP_BODY"
  done
  pass "$2: every node reports shard-ids $1"
}

# check_members SHARDS WHAT: every node lists the same members per shard, >= 2 each, every
# node in exactly one shard.
check_members() {
  local shards="$1" what="$2" i s port members all="" first=()
  for ((i = 0; i < NODES; i++)); do
    port="$(port_of "$i")"
    for ((s = 0; s < shards; s++)); do
      request GET "$port" "/key-value-store-shard/shard-id-members/$s"
      expect_message 200 "Members of shard ID retrieved successfully" "$what: members of $s via $port"
      members="$(array_member "$RESP_BODY" shard-id-members || true)"
      members="$(tr -d '[]"' <<<"$members" | tr ',' '\n' | sort | paste -sd, -)"
      if ((i == 0)); then
        first[s]="$members"
        [[ $(tr ',' '\n' <<<"$members" | grep -c .) -ge 2 ]] \
          || fail "$what: shard $s has fewer than 2 members: $members"
        all+="${all:+,}$members"
      else
        [[ $members == "${first[s]}" ]] \
          || fail "$what: members of shard $s via $port ($members) differ from via 8082 (${first[s]})"
      fi
    done
  done
  all="$(tr ',' '\n' <<<"$all" | sort | paste -sd, -)"
  local expected
  expected="$(for ((i = 2; i <= MEMBERS + 1; i++)); do echo "10.10.0.$i:8080"; done \
    | sort | paste -sd, -)"
  [[ $all == "$expected" ]] || fail "$what: the shards' members are not every node once: $all"
  local described=""
  for ((s = 0; s < shards; s++)); do described+=" $s={${first[s]}}"; done
  pass "$what: members per shard agree at every node:$described"
}

# check_counts SHARDS WHAT: polls until every node reports the same shard-id-key-count per shard
# and they sum to KEYS; then each shard holds within ±25% of KEYS/SHARDS. Leaves them in COUNTS.
check_counts() {
  local shards="$1" what="$2" deadline=$((SECONDS + SETTLE_TIMEOUT)) i s port count total agree
  local counts=()
  while :; do
    total=0 agree=1 counts=()
    for ((s = 0; s < shards; s++)); do
      for ((i = 0; i < NODES; i++)); do
        port="$(port_of "$i")"
        request GET "$port" "/key-value-store-shard/shard-id-key-count/$s"
        expect_message 200 "Key count of shard ID retrieved successfully" "$what: key count of $s via $port"
        count="$(int_member "$RESP_BODY" shard-id-key-count)" \
          || fail "$what: key count of $s via $port: $RESP_BODY"
        if ((i == 0)); then counts[s]=$count; elif ((count != counts[s])); then agree=0; fi
      done
      total=$((total + counts[s]))
    done
    ((agree && total == KEYS)) && break
    ((SECONDS < deadline)) \
      || fail "$what: key counts (${counts[*]}, total $total, nodes agree: $agree)" \
              "not $KEYS after ${SETTLE_TIMEOUT}s"
    sleep 0.5
  done
  local low=$((KEYS * 75 / (100 * shards))) high=$((KEYS * 125 / (100 * shards)))
  for ((s = 0; s < shards; s++)); do
    ((counts[s] >= low && counts[s] <= high)) \
      || fail "$what: shard $s holds ${counts[s]} keys, outside [$low, $high] (±25% of the mean)"
  done
  COUNTS=("${counts[@]}")
  pass "$what: key counts ${counts[*]} sum to $KEYS, each within [$low, $high]"
}

# node7 is this script's own: clean.sh would leave it attached to mynet (and then fail to
# remove the network).
remove_extra() {
  docker info >/dev/null 2>&1 || return 0
  if docker container inspect "$EXTRA" >/dev/null 2>&1; then
    docker stop -t 10 "$EXTRA" >/dev/null 2>&1 || true
    docker rm -f "$EXTRA" >/dev/null 2>&1 || echo "sharding.sh: warning: cannot remove $EXTRA" >&2
  fi
}

# Starts node7 without SHARD_COUNT (VIEW: all seven) and waits until every node's view has it.
add_extra_container() {
  local view i port deadline=$((SECONDS + VIEW_TIMEOUT)) pending
  view="$(for ((i = 2; i <= NODES + 2; i++)); do printf '10.10.0.%d:8080,' "$i"; done)"
  docker run -d --name "$EXTRA" --net mynet --ip "${EXTRA_ADDRESS%:*}" \
    -e SOCKET_ADDRESS="$EXTRA_ADDRESS" -e VIEW="${view%,}" kvs >/dev/null \
    || fail "cannot start container $EXTRA"
  MEMBERS=$((NODES + 1))
  while :; do
    pending=""
    for ((i = 0; i < NODES; i++)); do
      port="$(port_of "$i")"
      request GET "$port" /key-value-store-view
      [[ $RESP_CODE == 200 && $(string_member "$RESP_BODY" view || true) == *"$EXTRA_ADDRESS"* ]] \
        || pending+=" $port"
    done
    [[ -z $pending ]] && break
    ((SECONDS < deadline)) || fail "$EXTRA not in the view via$pending after ${VIEW_TIMEOUT}s"
    sleep 0.5
  done
  pass "$EXTRA ($EXTRA_ADDRESS, no SHARD_COUNT) is in every view"
}

# Teardown, then verify it really removed everything. Runs on every exit path; a leftover
# turns a passing run into a failure.
finish() {
  local rc=$? left=""
  trap - EXIT
  if ((rc != 0)) && docker info >/dev/null 2>&1; then
    local i
    for ((i = 1; i <= MEMBERS; i++)); do
      echo "--- node$i last log lines:" >&2
      docker logs --tail 15 "node$i" 2>&1 | sed 's/^/    /' >&2 || true
    done
  fi
  echo "sharding.sh: cleaning up"
  remove_extra
  "$ROOT/clean.sh" || { echo "sharding.sh: FAIL: ./clean.sh exited non-zero" >&2; rc=1; }
  if docker info >/dev/null 2>&1; then
    left+="$(docker ps -a --format '{{.Names}}' | grep -E '^node[1-7]$' | tr '\n' ' ' || true)"
    left+="$(docker volume ls -q | grep -E '^kvs-node[0-9]+-data$' | tr '\n' ' ' || true)"
    docker network inspect mynet >/dev/null 2>&1 && left+="network:mynet "
    docker image inspect kvs >/dev/null 2>&1 && left+="image:kvs "
  fi
  if [[ -n "$left" ]]; then
    echo "sharding.sh: FAIL: left behind after ./clean.sh: $left" >&2
    rc=1
  else
    echo "sharding.sh: ok: nothing left behind (no node containers, no data volumes, no mynet, no kvs image)"
  fi
  if ((rc == 0)); then echo "sharding.sh: PASSED"; else echo "sharding.sh: FAILED" >&2; fi
  exit "$rc"
}

main() {
  cd "$ROOT"
  trap finish EXIT
  remove_extra  # A node7 left by a killed run would keep ./build.sh from replacing mynet.

  # ./build.sh keeps the data volumes of an earlier cluster; this test needs empty ones.
  echo "sharding.sh: running ./clean.sh, then ./build.sh"
  "$ROOT/clean.sh" >/dev/null || fail "./clean.sh (before the test) exited non-zero"
  ./build.sh || fail "./build.sh exited non-zero"
  pass "./build.sh brought the cluster up"

  check_shard_ids "[0,1]" "initial"
  check_members 2 "initial"
  write_keys
  check_counts 2 "after $KEYS PUTs"
  [[ "${COUNTS[*]}" == "${NAMED[*]}" ]] \
    || fail "key counts ${COUNTS[*]} differ from the shard-ids the PUTs answered (${NAMED[*]})"
  pass "key counts match the shard-ids the PUTs answered"
  read_keys 0 "two shards"

  request PUT "$(port_of 3)" /key-value-store-shard/reshard '{"shard-count":10}' "$SHARD_OP_MAX_TIME"
  expect_message 400 "Not enough nodes to provide fault-tolerance with the given shard count!" \
    "reshard to 10 via $(port_of 3)"
  pass "reshard to 10 with $NODES nodes -> 400"
  check_shard_ids "[0,1]" "after the refused reshard"

  add_extra_container
  request PUT "$(port_of 2)" /key-value-store-shard/add-member/1 "{\"socket-address\":\"$EXTRA_ADDRESS\"}" \
    "$SHARD_OP_MAX_TIME"
  expect_message 200 "Node added to shard successfully" "add-member/1 of $EXTRA via $(port_of 2)"
  pass "add-member/1 of $EXTRA -> 200"
  check_members 2 "after add-member"
  local members1
  request GET "$(port_of 5)" /key-value-store-shard/shard-id-members/1
  members1="$(array_member "$RESP_BODY" shard-id-members || true)"
  [[ $members1 == *"\"$EXTRA_ADDRESS\""* ]] || fail "shard 1's members lack $EXTRA_ADDRESS: $RESP_BODY"
  pass "$EXTRA is a member of shard 1"
  check_counts 2 "after add-member"
  request PUT "$(port_of 4)" /key-value-store-shard/reshard '{"shard-count":4}' "$SHARD_OP_MAX_TIME"
  expect_message 400 "Not enough nodes to provide fault-tolerance with the given shard count!" \
    "reshard to 4 with 7 nodes via $(port_of 4)"
  pass "reshard to 4 with 7 nodes -> 400"

  local start
  start="$(now_ms)"
  request PUT "$(port_of 1)" /key-value-store-shard/reshard '{"shard-count":3}' "$SHARD_OP_MAX_TIME"
  expect_message 200 "Resharding done successfully" "reshard to 3 via $(port_of 1)"
  pass "reshard to 3 -> 200 ($(($(now_ms) - start)) ms)"
  check_shard_ids "[0,1,2]" "after reshard to 3"
  check_members 3 "after reshard to 3"
  check_counts 3 "after reshard to 3"
  read_keys 2 "three shards"

  local i state
  for ((i = 1; i <= MEMBERS; i++)); do
    state="$(docker inspect -f '{{.State.Status}}' "node$i" 2>/dev/null || echo missing)"
    [[ $state == running ]] || fail "container node$i is $state, expected running"
  done
  pass "all $MEMBERS containers still running"
}

main "$@"
