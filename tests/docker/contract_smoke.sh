# shellcheck shell=bash
# Contract smoke checks (SPEC §2-§4) of a running six-node, two-shard cluster whose nodes are
# reached through host ports, shared by tests/docker/compose.sh and tests/docker/swarm.sh.
# Sourced, not run. The caller defines:
#   fail MESSAGE...    print and exit non-zero      pass MESSAGE...   print a passed check
#   CS_PORTS=(...)     host ports of the nodes, in node order (e.g. 8082 ... 8087)
#   CS_NAMES=(...)     the address each node has in the view (e.g. node1:8080 ... node6:8080)
#   CS_ADMIN_TOKEN     the cluster's KVS_ADMIN_TOKEN ("" = none)
#   CS_SECRETS=(...)   strings that must not appear in any node's /health (e.g. the secrets)
# then calls `contract_smoke`. It waits (bounded) until every node lists all of CS_NAMES in its
# view, then checks shard ids and members, writes keys through every node carrying the
# client's causal metadata, reads them back through other nodes (shards), overwrites and
# deletes one, checks the key counts per shard, and the admin token of view PUT.
# Only bash, curl (every request bounded by --max-time) and no subshell per JSON field.

CS_MAX_TIME=${CS_MAX_TIME:-15}            # seconds per request (it may be forwarded)
CS_SETTLE_TIMEOUT=${CS_SETTLE_TIMEOUT:-60} # seconds for views and key counts to agree
CS_KEYS=${CS_KEYS:-24}
CS_TAG="$(date +%s)-$$"                    # in every value: nothing older can pass for it
CS_CODE="" CS_BODY="" CS_MEMBER="" CS_CONTEXT=""

# cs_request METHOD PORT PATH [JSON-BODY [EXTRA-CURL-ARGS...]] -> CS_CODE, CS_BODY.
cs_request() {
  local method="$1" port="$2" path="$3" body="${4:-}" out
  shift $(($# < 4 ? $# : 4))
  local args=(-sS --max-time "$CS_MAX_TIME" -X "$method" -w '\n%{http_code}' "$@")
  [[ -n "$body" ]] && args+=(-H 'Content-Type: application/json' -d "$body")
  out="$(curl "${args[@]}" "http://127.0.0.1:$port$path")" \
    || fail "$method :$port$path: curl failed (no answer within ${CS_MAX_TIME}s?)"
  CS_CODE="${out##*$'\n'}"
  CS_BODY="${out%$'\n'*}"
}

# CS_MEMBER := raw content of string member $2 of JSON $1 (escapes kept); fails if absent.
cs_string() {
  local re="\"$2\"[[:space:]]*:[[:space:]]*\"((\\\\.|[^\"\\\\])*)\""
  CS_MEMBER=""
  [[ $1 =~ $re ]] || return 1
  CS_MEMBER="${BASH_REMATCH[1]}"
}

# CS_MEMBER := integer member $2 of JSON $1; fails if absent.
cs_int() {
  local re="\"$2\"[[:space:]]*:[[:space:]]*(-?[0-9]+)"
  CS_MEMBER=""
  [[ $1 =~ $re ]] || return 1
  CS_MEMBER="${BASH_REMATCH[1]}"
}

# CS_MEMBER := array member $2 of JSON $1 without brackets, quotes and blanks ("a,b");
# fails if absent.
cs_array() {
  local re="\"$2\"[[:space:]]*:[[:space:]]*\\[([^]]*)\\]"
  CS_MEMBER=""
  [[ $1 =~ $re ]] || return 1
  CS_MEMBER="${BASH_REMATCH[1]//[\" ]/}"
}

# cs_expect CODE MESSAGE WHAT: the last answer has status CODE and "message" MESSAGE.
cs_expect() {
  cs_string "$CS_BODY" message || true
  [[ $CS_CODE == "$1" && $CS_MEMBER == "$2" ]] \
    || fail "$3: expected $1 \"$2\", got $CS_CODE: $CS_BODY"
}

# The client's causal metadata from the last answer (SPEC §4: passed on with every request).
cs_take_context() {
  cs_string "$CS_BODY" causal-metadata || fail "$1: no causal-metadata: $CS_BODY"
  CS_CONTEXT=$CS_MEMBER
}

cs_sorted() { tr ',' '\n' <<<"$1" | grep . | sort | paste -sd, -; }

# Every node's view lists exactly CS_NAMES (polled: nodes that started apart find each other).
cs_check_views() {
  local want got i pending deadline=$((SECONDS + CS_SETTLE_TIMEOUT))
  want="$(IFS=,; cs_sorted "${CS_NAMES[*]}")"
  while :; do
    pending=""
    for i in "${!CS_PORTS[@]}"; do
      cs_request GET "${CS_PORTS[i]}" /key-value-store-view
      cs_string "$CS_BODY" view || true
      got="$(cs_sorted "$CS_MEMBER")"
      [[ $CS_CODE == 200 && $got == "$want" ]] || pending+=" ${CS_PORTS[i]}($got)"
    done
    [[ -z $pending ]] && break
    ((SECONDS < deadline)) || fail "views differ from {$want} after ${CS_SETTLE_TIMEOUT}s via:$pending"
    sleep 0.5
  done
  cs_expect 200 "View retrieved successfully" "GET view via ${CS_PORTS[-1]}"
  pass "every node's view is $want"
}

# Shard ids [0,1] everywhere; two shards of >= 2 members that together are every node once;
# each node's node-shard-id names the shard that lists it.
cs_check_shards() {
  local i s port members all="" first=() id
  for i in "${!CS_PORTS[@]}"; do
    port="${CS_PORTS[i]}"
    cs_request GET "$port" /key-value-store-shard/shard-ids
    cs_expect 200 "Shard IDs retrieved successfully" "shard-ids via $port"
    cs_array "$CS_BODY" shard-ids || true
    [[ $CS_MEMBER == "0,1" ]] || fail "shard-ids via $port: expected [0,1], got: $CS_BODY"
    for s in 0 1; do
      cs_request GET "$port" "/key-value-store-shard/shard-id-members/$s"
      cs_expect 200 "Members of shard ID retrieved successfully" "members of shard $s via $port"
      cs_array "$CS_BODY" shard-id-members || true
      members="$(cs_sorted "$CS_MEMBER")"
      if ((i == 0)); then
        first[s]=$members
        all+="${all:+,}$members"
        (($(tr ',' '\n' <<<"$members" | grep -c .) >= 2)) || fail "shard $s has < 2 members: $members"
      elif [[ $members != "${first[s]}" ]]; then
        fail "members of shard $s via $port ($members) differ from via ${CS_PORTS[0]} (${first[s]})"
      fi
    done
  done
  [[ $(cs_sorted "$all") == "$(IFS=,; cs_sorted "${CS_NAMES[*]}")" ]] \
    || fail "the shards' members are not every node once: $all"
  for i in "${!CS_PORTS[@]}"; do
    cs_request GET "${CS_PORTS[i]}" /key-value-store-shard/node-shard-id
    cs_expect 200 "Shard ID of the node retrieved successfully" "node-shard-id via ${CS_PORTS[i]}"
    cs_int "$CS_BODY" shard-id || fail "node-shard-id via ${CS_PORTS[i]}: $CS_BODY"
    id=$CS_MEMBER
    [[ ,${first[id]:-}, == *",${CS_NAMES[i]},"* ]] \
      || fail "${CS_NAMES[i]} says shard $id, whose members are {${first[id]:-none}}"
  done
  pass "shard-ids [0,1] at every node; shard 0 = {${first[0]}}, shard 1 = {${first[1]}}"
}

# PUT CS_KEYS keys round robin over the nodes (metadata carried along), overwrite one, delete
# one; GET every key through a node 3 further on (the other shard's half of the cluster), with
# the metadata: a replica not yet reached by the broadcast must fetch rather than answer 404.
# Then the key counts per shard, at every node, must match what the PUTs answered.
cs_check_keys() {
  local n port value live=0 per_shard=(0 0) shard=() expect=() start=$SECONDS
  local nodes=${#CS_PORTS[@]}
  for ((n = 0; n < CS_KEYS; n++)); do
    port="${CS_PORTS[n % nodes]}"
    value="v$n-$CS_TAG"
    cs_request PUT "$port" "/key-value-store/smoke$n" "{\"value\":\"$value\",\"causal-metadata\":\"$CS_CONTEXT\"}"
    cs_expect 201 "Added successfully" "PUT smoke$n via $port"
    cs_take_context "PUT smoke$n via $port"
    cs_int "$CS_BODY" shard-id || fail "PUT smoke$n via $port: no shard-id: $CS_BODY"
    [[ $CS_MEMBER == 0 || $CS_MEMBER == 1 ]] || fail "PUT smoke$n via $port: shard-id $CS_MEMBER"
    shard[n]=$CS_MEMBER
    expect[n]=$value
  done
  pass "PUT smoke0..smoke$((CS_KEYS - 1)) round robin over ${CS_PORTS[*]} -> 201 with causal-metadata and shard-id"

  port="${CS_PORTS[1]}"
  cs_request PUT "$port" /key-value-store/smoke3 "{\"value\":\"w3-$CS_TAG\",\"causal-metadata\":\"$CS_CONTEXT\"}"
  cs_expect 200 "Updated successfully" "PUT (overwrite) smoke3 via $port"
  cs_take_context "PUT (overwrite) smoke3 via $port"
  expect[3]="w3-$CS_TAG"
  port="${CS_PORTS[4]}"
  cs_request DELETE "$port" /key-value-store/smoke5 "{\"causal-metadata\":\"$CS_CONTEXT\"}"
  cs_expect 200 "Deleted successfully" "DELETE smoke5 via $port"
  cs_take_context "DELETE smoke5 via $port"
  expect[5]=""
  port="${CS_PORTS[2]}"
  cs_request DELETE "$port" /key-value-store/smoke5 "{\"causal-metadata\":\"$CS_CONTEXT\"}"
  cs_expect 404 "Error in DELETE" "second DELETE smoke5 via $port"
  pass "PUT smoke3 again -> 200 Updated; DELETE smoke5 -> 200, again -> 404"

  for ((n = 0; n < CS_KEYS; n++)); do
    port="${CS_PORTS[(n + 3) % nodes]}"
    cs_request GET "$port" "/key-value-store/smoke$n" "{\"causal-metadata\":\"$CS_CONTEXT\"}"
    if [[ -z ${expect[n]} ]]; then
      cs_expect 404 "Error in GET" "GET deleted smoke$n via $port"
      [[ $CS_BODY =~ \"doesExist\"[[:space:]]*:[[:space:]]*false ]] \
        || fail "GET deleted smoke$n via $port: no \"doesExist\": false: $CS_BODY"
      continue
    fi
    cs_expect 200 "Retrieved successfully" "GET smoke$n via $port"
    cs_string "$CS_BODY" value || true
    [[ $CS_MEMBER == "${expect[n]}" ]] || fail "GET smoke$n via $port: expected ${expect[n]}, got: $CS_BODY"
    cs_take_context "GET smoke$n via $port"
    live=$((live + 1))
    per_shard[shard[n]]=$((per_shard[shard[n]] + 1))
  done
  pass "GET of every key through a node 3 further on -> its last value (smoke5: 404, doesExist false)"

  # Replicas apply in the background: poll until every node reports the expected counts.
  local deadline=$((SECONDS + CS_SETTLE_TIMEOUT)) s i got
  while :; do
    got=""
    for s in 0 1; do
      for i in "${!CS_PORTS[@]}"; do
        cs_request GET "${CS_PORTS[i]}" "/key-value-store-shard/shard-id-key-count/$s"
        cs_expect 200 "Key count of shard ID retrieved successfully" "key count of $s via ${CS_PORTS[i]}"
        cs_int "$CS_BODY" shard-id-key-count || fail "key count of $s via ${CS_PORTS[i]}: $CS_BODY"
        ((CS_MEMBER == per_shard[s])) || got+=" shard $s via ${CS_PORTS[i]}: $CS_MEMBER;"
      done
    done
    [[ -z $got ]] && break
    ((SECONDS < deadline)) \
      || fail "key counts not ${per_shard[0]} + ${per_shard[1]} after ${CS_SETTLE_TIMEOUT}s:$got"
    sleep 0.5
  done
  ((per_shard[0] + per_shard[1] == live)) || fail "internal: $live live keys, counted ${per_shard[*]}"
  pass "shard-id-key-count at every node: shard 0 = ${per_shard[0]}, shard 1 = ${per_shard[1]}" \
    "(= the $live live keys by the shard-id their PUT answered; $((SECONDS - start)) s for the key checks)"
}

# View PUT of an address already in the view changes nothing (404), so it shows whether the
# admin token is asked for: without it / with a wrong one -> 401; with it -> the 404.
cs_check_admin() {
  local port="${CS_PORTS[2]}" body="{\"socket-address\":\"${CS_NAMES[0]}\"}"
  if [[ -n ${CS_ADMIN_TOKEN:-} ]]; then
    cs_request PUT "$port" /key-value-store-view "$body"
    [[ $CS_CODE == 401 ]] || fail "view PUT without the admin token via $port: expected 401, got $CS_CODE: $CS_BODY"
    cs_request PUT "$port" /key-value-store-view "$body" -H "Authorization: Bearer wrong-$CS_TAG"
    [[ $CS_CODE == 401 ]] || fail "view PUT with a wrong admin token via $port: expected 401, got $CS_CODE: $CS_BODY"
    cs_request PUT "$port" /key-value-store-view "$body" -H "Authorization: Bearer $CS_ADMIN_TOKEN"
    cs_expect 404 "Error in PUT" "view PUT of ${CS_NAMES[0]} with the admin token via $port"
    pass "view PUT: no token -> 401, wrong token -> 401, KVS_ADMIN_TOKEN -> 404 (already in the view)"
  else
    cs_request PUT "$port" /key-value-store-view "$body"
    cs_expect 404 "Error in PUT" "view PUT of ${CS_NAMES[0]} via $port"
    pass "view PUT of an address in the view -> 404 (no admin token configured)"
  fi
}

# No node shows a secret in /health.
cs_check_no_leak() {
  local i s
  for i in "${!CS_PORTS[@]}"; do
    cs_request GET "${CS_PORTS[i]}" /health
    [[ $CS_CODE == 200 ]] || fail "GET /health via ${CS_PORTS[i]}: $CS_CODE: $CS_BODY"
    for s in "${CS_SECRETS[@]}"; do
      [[ -z $s || $CS_BODY != *"$s"* ]] || fail "GET /health via ${CS_PORTS[i]} shows a secret: $CS_BODY"
    done
  done
  pass "no node's /health shows the cluster secret or the admin token"
}

contract_smoke() {
  cs_check_views
  cs_check_shards
  cs_check_keys
  cs_check_admin
  cs_check_no_leak
}
