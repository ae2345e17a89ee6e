#!/usr/bin/env bash
# Checks deploy/k8s against the kvs-server binary, without a Kubernetes cluster:
#  1. renders the manifests (`kubectl kustomize deploy/k8s`; exit 77 = skipped when kubectl is
#     absent) and turns them into JSON with kubectl itself (`kubectl label --local`: no server,
#     no PyYAML);
#  2. tests/deploy/k8s_check.py checks them against `kvs-server --help`: every env name is one the
#     binary reads (SOCKET_ADDRESS, VIEW, SHARD_COUNT, KVS_<TUNABLE>) or a helper used only in a
#     $(...) reference, containerPort / probe ports / Service targetPorts = SOCKET_ADDRESS's port,
#     SOCKET_ADDRESS = <pod>.<headless service>, VIEW = every pod, Parallel, PDB, the PVC mounted
#     at KVS_STORAGE_DIR, terminationGracePeriodSeconds above kvs.http.shutdown_grace_ms; and it
#     computes each pod's environment as the kubelet does (fieldRef metadata.name = kvs-0..,
#     Secret values decoded, $(VAR) expansion);
#  3. starts one kvs-server per pod with exactly that environment (KVS_STORAGE_DIR pointed at a
#     per-pod directory in place of the PVC), each in its own network namespace on a private
#     bridge (10.203.N.0/24) with /etc/netns/<ns>/hosts mapping the pod DNS names
#     (kvs-0.kvs-peers ...) to the namespaces' addresses, as runAsUser/runAsGroup/fsGroup of the
#     pod's securityContext (setpriv). It requests the probe paths: the readiness path answers
#     503 before the node is ready (kvs-0 is started first while its peers are unreachable) and
#     200 after, the liveness/startup path 200; waits until every pod is ready, then a contract
#     check: PUT on one pod, GET with the causal-metadata on every other, shard-ids = SHARD_COUNT
#     shards, view = every pod, the Secret's admin token accepted; a view PUT without the token
#     or with a wrong one and an unsigned /internal/ call answered 401 with the JSON error (the
#     former with WWW-Authenticate: Bearer; the latter counted in kvs_auth_failures_total), so
#     the Secret's KVS_CLUSTER_SECRET and KVS_ADMIN_TOKEN are enforced. Then a pod restart as
#     Kubernetes does it: SIGTERM (exit 0 within terminationGracePeriodSeconds), a NEW IP for the
#     same DNS name, start on the same data directory: it must come back ready with its data and,
#     with its own outgoing calls cut, be reached by its peers under its name (a write of its
#     shard arrives, it stays in every view). Finally SIGTERM of every pod: each must exit 0
#     within terminationGracePeriodSeconds; nothing written outside the data directories
#     (readOnlyRootFilesystem) by the pods' user.
#  4. tears everything down in an EXIT trap (processes, namespaces, bridge, iptables rule,
#     /etc/netns/<ns>, temp dir) and checks that nothing is left.
# Needs root (network namespaces), iproute2, iptables, curl, python3, setpriv (util-linux).
# Takes ~10-20 s.
# Usage: tests/deploy/k8s_manifests.sh [KVS_SERVER_BINARY]   (default build/app/kvs-server)
# KVS_K8S_MANIFESTS=DIR checks another kustomization instead of deploy/k8s.
# KVS_K8S_KEEP=1 keeps the temp dir (logs, rendered manifests) for a look after a failure.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BIN="${1:-$ROOT/build/app/kvs-server}"
MANIFESTS="${KVS_K8S_MANIFESTS:-$ROOT/deploy/k8s}"   # KVS_K8S_MANIFESTS: check another copy
SUBNET_PREFIX=10.203          # 10.201.x: tests/cluster, 10.10.x: Docker; 10.203.N.0/24 here
READY_TIMEOUT_S=60

log() { echo "k8s_manifests: [${SECONDS}s] $*"; }
die() { echo "k8s_manifests: FAIL: $*" >&2; exit 1; }

if ! command -v kubectl >/dev/null 2>&1; then
  echo "k8s_manifests: SKIP: kubectl is not installed (kubectl with kustomize renders deploy/k8s)"
  exit 77
fi
[[ -x "$BIN" ]] || die "no kvs-server binary at $BIN"
[[ $EUID -eq 0 ]] || die "needs root (network namespaces, a bridge, iptables)"
for tool in ip iptables curl python3 setpriv; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool is not installed"
done

WORK="$(mktemp -d /tmp/kvs-k8s.XXXXXX)"
chmod 755 "$WORK"
NAMESPACES=()
PIDS=()        # indexed by pod number
BRIDGE=""
RULE_ADDED=""
SUBNET_N=""
ns_of() { echo "kvsk8s-$$-$1"; }            # network namespace of pod i
veth_of() { echo "kvk8s${SUBNET_N}h$1"; }    # host end of pod i's veth pair

# ---------------------------------------------------------------------------------- teardown
teardown() {
  local rc=$? i pid ns left=""
  set +e
  for i in "${!PIDS[@]}"; do
    pid="${PIDS[$i]}"
    [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
  done
  for i in "${!PIDS[@]}"; do
    pid="${PIDS[$i]}"
    [[ -n "$pid" ]] && wait "$pid" 2>/dev/null
  done
  # The host ends of the veth pairs (deleting one end deletes the pair): a deleted namespace
  # can outlive its name for a while (kernel references, e.g. closing sockets), and its links
  # with it.
  if [[ -n "$BRIDGE" ]]; then
    for ((i = 0; i < ${#NAMESPACES[@]}; i++)); do ip link del "$(veth_of "$i")" 2>/dev/null; done
  fi
  for ns in "${NAMESPACES[@]}"; do
    ip netns del "$ns" 2>/dev/null
    rm -rf "/etc/netns/$ns"
  done
  if [[ -n "$BRIDGE" ]]; then
    ip link del "$BRIDGE" 2>/dev/null
    if [[ -n "$RULE_ADDED" ]]; then
      while iptables -w 5 -D FORWARD -i "$BRIDGE" -o "$BRIDGE" -j ACCEPT 2>/dev/null; do :; done
    fi
  fi
  # What is left must be nothing.
  for i in "${!PIDS[@]}"; do
    pid="${PIDS[$i]}"
    [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null && left+=" process $pid"
  done
  for ns in "${NAMESPACES[@]}"; do
    ip netns list | grep -qw "^$ns" && left+=" netns $ns"
    [[ -e "/etc/netns/$ns" ]] && left+=" /etc/netns/$ns"
  done
  if [[ -n "$BRIDGE" ]]; then
    ip link show "$BRIDGE" >/dev/null 2>&1 && left+=" bridge $BRIDGE"
    ip link show | grep -q "kvk8s${SUBNET_N}h" && left+=" veths kvk8s${SUBNET_N}h*"
    iptables -w 5 -S FORWARD | grep -q -- "-i $BRIDGE -o $BRIDGE" && left+=" iptables rule for $BRIDGE"
  fi
  if [[ $rc -ne 0 && -n "${KVS_K8S_KEEP:-}" ]]; then
    log "kept $WORK (KVS_K8S_KEEP)"
  else
    if [[ $rc -ne 0 ]]; then
      for f in "$WORK"/pod-*/log; do
        [[ -f "$f" ]] && { echo "--- last lines of $f"; tail -n 25 "$f"; }
      done
    fi
    rm -rf "$WORK"
    [[ -e "$WORK" ]] && left+=" $WORK"
  fi
  if [[ -n "$left" ]]; then
    echo "k8s_manifests: FAIL: teardown left:$left" >&2
    [[ $rc -eq 0 ]] && rc=1
  else
    log "teardown: nothing left"
  fi
  exit "$rc"
}
trap teardown EXIT
# A command that fails under set -e says which one it was.
trap 'echo "k8s_manifests: FAIL: line $LINENO: $BASH_COMMAND exited $?" >&2' ERR
trap 'exit 130' INT TERM

# ------------------------------------------------------------------- 1. render, 2. check
log "rendering $MANIFESTS"
kubectl kustomize "$MANIFESTS" >"$WORK/rendered.yaml" || die "kubectl kustomize $MANIFESTS failed"
# YAML -> JSON with kubectl alone: `label --local` needs no API server (removing a label that is
# not there changes nothing but an empty labels map). An empty kubeconfig: never ask a server.
kubectl label --local --kubeconfig=/dev/null -f "$WORK/rendered.yaml" -o json kvs-render-check- \
  >"$WORK/rendered.json" || die "could not convert the rendered manifests to JSON"
"$BIN" --help >"$WORK/help.txt" 2>&1 || die "$BIN --help failed"
mkdir -p "$WORK/pods"
python3 "$ROOT/tests/deploy/k8s_check.py" "$WORK/rendered.json" "$WORK/help.txt" "$WORK/pods" ||
  die "static checks of the rendered manifests"
# shellcheck source=/dev/null
source "$WORK/pods/facts.sh"
POD_NAMES=()
POD_HOSTS=()
while read -r name host; do POD_NAMES+=("$name"); POD_HOSTS+=("$host"); done <"$WORK/pods/pods"
N_PODS=${#POD_NAMES[@]}

# ------------------------------------------------------------------------------- 3. network
# A free 10.203.N.0/24 (no address of it on this host) and bridge kvk8s<N>.
for n in $(seq 0 250); do
  if ! ip -4 -o addr show | grep -q " $SUBNET_PREFIX\.$n\." && ! ip link show "kvk8s$n" >/dev/null 2>&1; then
    SUBNET_N=$n
    break
  fi
done
[[ -n "$SUBNET_N" ]] || die "no free $SUBNET_PREFIX.N.0/24 subnet"
NET="$SUBNET_PREFIX.$SUBNET_N"
BRIDGE="kvk8s$SUBNET_N"
log "network: bridge $BRIDGE $NET.1/24, pods at $NET.2-$((N_PODS + 1))"
ip link add "$BRIDGE" type bridge
ip addr add "$NET.1/24" dev "$BRIDGE"
ip link set "$BRIDGE" up
# Docker's FORWARD DROP policy would drop bridged traffic between the namespaces.
iptables -w 5 -I FORWARD -i "$BRIDGE" -o "$BRIDGE" -j ACCEPT
RULE_ADDED=1

POD_IPS=()
for ((i = 0; i < N_PODS; i++)); do
  ns="$(ns_of "$i")"
  NAMESPACES+=("$ns")
  ip netns add "$ns"
  ip link add "$(veth_of "$i")" type veth peer name "kvk8s${SUBNET_N}p$i"
  ip link set "kvk8s${SUBNET_N}p$i" netns "$ns"
  ip -n "$ns" link set "kvk8s${SUBNET_N}p$i" name eth0
  POD_IPS[i]="$NET.$((i + 2))"
  ip -n "$ns" addr add "${POD_IPS[$i]}/24" dev eth0
  ip -n "$ns" link set lo up
  ip -n "$ns" link set eth0 up
  ip link set "$(veth_of "$i")" master "$BRIDGE"
  mkdir -p "/etc/netns/$ns"
done

# /etc/netns/<ns>/hosts (ip netns exec bind-mounts it over /etc/hosts): the pods' DNS names, as
# the headless Service gives them. Rewritten in place (same inode) so that a running process
# sees a changed address.
write_hosts() {
  local i j ns
  for ((i = 0; i < N_PODS; i++)); do
    ns="$(ns_of "$i")"
    {
      echo "127.0.0.1 localhost"
      for ((j = 0; j < N_PODS; j++)); do
        echo "${POD_IPS[$j]} ${POD_HOSTS[$j]} ${POD_NAMES[$j]}"
      done
    } >"/etc/netns/$ns/hosts.new"
    cat "/etc/netns/$ns/hosts.new" >"/etc/netns/$ns/hosts"
    rm -f "/etc/netns/$ns/hosts.new"
    # No DNS server in the namespace: every name the nodes use is in hosts.
    : >"/etc/netns/$ns/resolv.conf"
  done
}
write_hosts

# ---------------------------------------------------------------------------- 3. the pods
# A root like the image's: /usr/local/bin/kvs-server and /config/kvs.properties, WORKDIR /.
mkdir -p "$WORK/root/usr/local/bin" "$WORK/root/config"
install -m 755 "$BIN" "$WORK/root/usr/local/bin/kvs-server"
cp "$ROOT/config/kvs.properties" "$WORK/root/config/kvs.properties"
chmod -R a+rX "$WORK/root"
SERVER="$WORK/root/usr/local/bin/kvs-server"

USER_ARGS=()
if [[ -n "$K8S_RUN_AS_USER" ]]; then
  USER_ARGS+=(--reuid="$K8S_RUN_AS_USER")
  USER_ARGS+=(--regid="${K8S_RUN_AS_GROUP:-$K8S_RUN_AS_USER}")
  if [[ -n "$K8S_FS_GROUP" ]]; then USER_ARGS+=(--groups="$K8S_FS_GROUP"); else USER_ARGS+=(--clear-groups); fi
fi
[[ -n "$K8S_NO_NEW_PRIVS" ]] && USER_ARGS+=(--no-new-privs)

# The PVC of pod i: owned by fsGroup and group-writable with setgid, as the kubelet leaves it.
for ((i = 0; i < N_PODS; i++)); do
  mkdir -p "$WORK/pod-$i/data"
  if [[ -n "$K8S_FS_GROUP" ]]; then
    chown "${K8S_RUN_AS_USER:-0}:$K8S_FS_GROUP" "$WORK/pod-$i/data"
    chmod 2775 "$WORK/pod-$i/data"
  fi
done

start_pod() {
  local i=$1 entry envs=() args=()
  local name="${POD_NAMES[$i]}"
  mapfile -d '' -t raw <"$WORK/pods/$name.env"
  local replaced=""
  for entry in "${raw[@]}"; do
    if [[ "$entry" == KVS_STORAGE_DIR=* ]]; then
      envs+=("KVS_STORAGE_DIR=$WORK/pod-$i/data")
      replaced=1
    else
      envs+=("$entry")
    fi
  done
  # The image's ENV KVS_STORAGE_DIR=/data when the manifest does not set it.
  [[ -n "$replaced" ]] || envs+=("KVS_STORAGE_DIR=$WORK/pod-$i/data")
  mapfile -d '' -t args <"$WORK/pods/$name.args"
  (cd "$WORK/root" &&
    exec ip netns exec "$(ns_of "$i")" setpriv "${USER_ARGS[@]}" \
      env -i "${envs[@]}" "$SERVER" "${args[@]}") >>"$WORK/pod-$i/log" 2>&1 &
  PIDS[i]=$!
}

# HTTP status of GET <path> on pod i ("000" when nothing answers).
status_of() {
  curl -s -o /dev/null -w '%{http_code}' --connect-timeout 1 --max-time 3 \
    "http://${POD_IPS[$1]}:$K8S_PORT$2" || true
}
alive_or_die() {
  kill -0 "${PIDS[$1]}" 2>/dev/null || die "${POD_NAMES[$1]} exited (log: $(tail -n 5 "$WORK/pod-$1/log"))"
}
# Polls until every pod in "$@" answers 200 on the readiness path, bounded.
wait_ready() {
  local deadline=$((SECONDS + READY_TIMEOUT_S)) i pending
  while :; do
    pending=""
    for i in "$@"; do
      alive_or_die "$i"
      [[ "$(status_of "$i" "$K8S_READY_PATH")" == 200 ]] || pending+=" ${POD_NAMES[$i]}"
    done
    [[ -z "$pending" ]] && return 0
    ((SECONDS < deadline)) || die "not ready within ${READY_TIMEOUT_S}s:$pending"
    sleep 0.2
  done
}

# Readiness before ready: kvs-0 starts while its peers are unreachable (their links down), so it
# spends its bootstrap trying to reach them: the liveness path answers 200, the readiness path
# 503. (In a cluster, Parallel starts all pods, but not at the same instant either.)
for ((i = 1; i < N_PODS; i++)); do ip link set "$(veth_of "$i")" down; done
ip link set "$(veth_of 0)" up
log "starting ${POD_NAMES[0]} alone (peers unreachable)"
start_pod 0
seen_live="" seen_not_ready=""
deadline=$((SECONDS + 20))
while ((SECONDS < deadline)); do
  alive_or_die 0
  live="$(status_of 0 "$K8S_LIVE_PATH")"
  if [[ "$live" == 200 ]]; then
    seen_live=1
    ready="$(status_of 0 "$K8S_READY_PATH")"
    if [[ "$ready" == 503 ]]; then seen_not_ready=1; break; fi
    [[ "$ready" == 200 ]] && break
  fi
  sleep 0.05
done
[[ -n "$seen_live" ]] || die "${POD_NAMES[0]}: $K8S_LIVE_PATH never answered 200"
[[ -n "$seen_not_ready" ]] ||
  die "${POD_NAMES[0]}: $K8S_READY_PATH answered $ready, not 503, before its shard's peers were reachable"
log "${POD_NAMES[0]}: $K8S_LIVE_PATH 200 and $K8S_READY_PATH 503 while its peers are unreachable"
if [[ -n "$K8S_STARTUP_PATH" ]]; then
  [[ "$(status_of 0 "$K8S_STARTUP_PATH")" == 200 ]] || die "startup probe path $K8S_STARTUP_PATH is not 200"
fi

log "starting ${POD_NAMES[*]:1}"
for ((i = 1; i < N_PODS; i++)); do
  ip link set "$(veth_of "$i")" up
  start_pod "$i"
done
all=()
for ((i = 0; i < N_PODS; i++)); do all+=("$i"); done
t0=$SECONDS
wait_ready "${all[@]}"
log "all $N_PODS pods answer $K8S_READY_PATH 200 ($((SECONDS - t0)) s)"
for i in "${all[@]}"; do
  for path in "$K8S_LIVE_PATH" ${K8S_STARTUP_PATH:+"$K8S_STARTUP_PATH"}; do
    code="$(status_of "$i" "$path")"
    [[ "$code" == 200 ]] || die "${POD_NAMES[$i]}: $path answered $code"
  done
done

# ------------------------------------------------------------------------- contract check
# request METHOD POD PATH [BODY] -> "<status> <body>" on one line
request() {
  local out
  out="$(curl -s --connect-timeout 1 --max-time 10 -X "$1" -H 'Content-Type: application/json' \
    ${4:+-d "$4"} -w '\n%{http_code}' "http://${POD_IPS[$2]}:$K8S_PORT$3")" || true
  echo "${out##*$'\n'} ${out%$'\n'*}"
}
# json_field BODY NAME: a string or number member of a JSON object (the values this test writes
# and the metadata kvs returns have no escapes: bash suffices, no interpreter per request).
json_field() {
  local re="\"$2\":(\"([^\"\\]*)\"|([0-9]+))"
  [[ "$1" =~ $re ]] || die "no plain member \"$2\" in $1"
  echo "${BASH_REMATCH[2]}${BASH_REMATCH[3]}"
}

answer="$(request PUT 0 /key-value-store/k8s-check '{"value":"from-kvs-0","causal-metadata":""}')"
[[ "${answer%% *}" == 201 ]] || die "PUT on ${POD_NAMES[0]}: $answer"
meta="$(json_field "${answer#* }" causal-metadata)"
meta_body="{\"causal-metadata\":\"$meta\"}"
log "PUT k8s-check on ${POD_NAMES[0]}: 201, shard $(json_field "${answer#* }" shard-id)"
for ((i = 1; i < N_PODS; i++)); do
  answer="$(request GET "$i" /key-value-store/k8s-check "$meta_body")"
  [[ "${answer%% *}" == 200 && "$(json_field "${answer#* }" value)" == from-kvs-0 ]] ||
    die "GET k8s-check on ${POD_NAMES[$i]} with the metadata: $answer"
done
log "GET k8s-check with the causal-metadata on ${POD_NAMES[*]:1}: 200 from-kvs-0"
answer="$(request GET 3 /key-value-store-shard/shard-ids)"
expected_ids="$(seq -s, 0 $((K8S_SHARD_COUNT - 1)))"
[[ "${answer%% *}" == 200 && "${answer#* }" == *"\"shard-ids\":[$expected_ids]"* ]] ||
  die "shard-ids: $answer (expected [$expected_ids])"
answer="$(request GET 5 /key-value-store-view)"
view="$(json_field "${answer#* }" view)"
expected="$(for h in "${POD_HOSTS[@]}"; do echo "$h:$K8S_PORT"; done | sort | paste -sd,)"
[[ "$(tr ',' '\n' <<<"$view" | sort | paste -sd,)" == "$expected" ]] || die "view: $view"
log "shard-ids: $K8S_SHARD_COUNT shards; view: every pod by its DNS name"
# The credentials from the Secret reach the server. With the admin token, a view PUT of an
# address already in the view is answered 404 "already exists" (changes nothing); without it,
# 401 with the JSON error and WWW-Authenticate: Bearer. The nodes above talked to each other
# with the Secret's KVS_CLUSTER_SECRET; an unsigned node-to-node call gets 401 with the JSON
# error.
secret="" token=""
mapfile -d '' -t raw <"$WORK/pods/${POD_NAMES[0]}.env"
for entry in "${raw[@]}"; do
  [[ "$entry" == KVS_ADMIN_TOKEN=* ]] && token="${entry#KVS_ADMIN_TOKEN=}"
  [[ "$entry" == KVS_CLUSTER_SECRET=* ]] && secret="${entry#KVS_CLUSTER_SECRET=}"
done
[[ -n "$token" ]] || die "no KVS_ADMIN_TOKEN in ${POD_NAMES[0]}'s environment"
[[ -n "$secret" ]] || die "no KVS_CLUSTER_SECRET in ${POD_NAMES[0]}'s environment"
# exchange METHOD POD PATH [BODY [CURL-ARGS...]] -> CODE, BODY, HEADERS (of the answer)
CODE="" BODY="" HEADERS=""
exchange() {
  local method="$1" pod="$2" path="$3" body="${4:-}" args=()
  shift $(($# < 4 ? $# : 4))
  [[ -n "$body" ]] && args+=(-H 'Content-Type: application/json' -d "$body")
  rm -f "$WORK/answer.headers" "$WORK/answer.body"
  CODE="$(curl -s --connect-timeout 1 --max-time 10 -X "$method" "${args[@]}" "$@" \
    -D "$WORK/answer.headers" -o "$WORK/answer.body" -w '%{http_code}' \
    "http://${POD_IPS[$pod]}:$K8S_PORT$path")" || true
  BODY="$(cat "$WORK/answer.body" 2>/dev/null || true)"
  HEADERS="$(tr -d '\r' <"$WORK/answer.headers" 2>/dev/null || true)"
}
# expect_401 WHAT EXPECTED-BODY: the last exchange was a 401 with exactly that JSON body.
expect_401() {
  [[ "$CODE" == 401 ]] || die "$1: $CODE $BODY, not 401"
  grep -qix 'Content-Type: application/json' <<<"$HEADERS" || die "$1: 401 without Content-Type: application/json"
  python3 -c 'import json, sys; json.loads(sys.argv[1])' "$BODY" 2>/dev/null || die "$1: 401 body is not JSON: $BODY"
  [[ "$BODY" == "$2" ]] || die "$1: 401 body $BODY, expected $2"
}
view_put="{\"socket-address\":\"${POD_HOSTS[1]}:$K8S_PORT\"}"
exchange PUT 2 /key-value-store-view "$view_put" -H "Authorization: Bearer $token"
[[ "$CODE" == 404 ]] || die "view PUT of a member with the Secret's admin token: $CODE $BODY, not 404 (already in the view)"
exchange PUT 2 /key-value-store-view "$view_put"
expect_401 "view PUT without the admin token" '{"error":"Admin token required (missing)","message":"Error in PUT"}'
grep -qix 'WWW-Authenticate: Bearer' <<<"$HEADERS" || die "view PUT without the admin token: 401 without WWW-Authenticate: Bearer"
exchange PUT 2 /key-value-store-view "$view_put" -H "Authorization: Bearer not-$token"
expect_401 "view PUT with a wrong admin token" '{"error":"Admin token required (wrong token)","message":"Error in PUT"}'
log "admin token from the Secret accepted (404 already in view); without it or wrong: 401 JSON, WWW-Authenticate: Bearer"
exchange GET 4 /internal/config
expect_401 "unsigned GET /internal/config" \
  '{"error":"Node-to-node call without valid proof of the cluster secret (missing)","message":"Error in GET"}'
exchange GET 4 /metrics
grep -qx 'kvs_auth_failures_total{credential="cluster",reason="missing"} [1-9][0-9]*' <<<"$BODY" ||
  die "${POD_NAMES[4]}'s /metrics does not count the unsigned call: $(grep kvs_auth_failures_total <<<"$BODY" | tr '\n' ' ')"
log "unsigned GET /internal/config: 401 JSON (missing), counted in kvs_auth_failures_total"

# --------------------------------------------------------------- pod restart with a new IP
# stop_pod I: SIGTERM, as the kubelet sends it; await_exit I: exit 0 within
# terminationGracePeriodSeconds of it.
stop_pod() {
  kill -TERM "${PIDS[$1]}"
  await_exit "$1"
}
await_exit() {
  local i=$1 pid="${PIDS[$1]}" deadline rc=0
  deadline=$((SECONDS + K8S_TERMINATION_S))
  while kill -0 "$pid" 2>/dev/null && [[ "$(ps -o stat= -p "$pid" 2>/dev/null)" != Z* ]]; do
    ((SECONDS < deadline)) || die "${POD_NAMES[$i]} still running ${K8S_TERMINATION_S}s after SIGTERM"
    sleep 0.1
  done
  wait "$pid" || rc=$?
  PIDS[i]=""
  [[ $rc -eq 0 ]] || die "${POD_NAMES[$i]} exited $rc after SIGTERM"
}
R=3
log "restart ${POD_NAMES[$R]}: SIGTERM, new IP for ${POD_HOSTS[$R]}, same data directory"
stop_pod "$R"
ip -n "$(ns_of "$R")" addr del "${POD_IPS[$R]}/24" dev eth0
POD_IPS[R]="$NET.$((N_PODS + 10))"
ip -n "$(ns_of "$R")" addr add "${POD_IPS[$R]}/24" dev eth0
write_hosts
start_pod "$R"
t0=$SECONDS
wait_ready "${all[@]}"
log "${POD_NAMES[$R]} ready again ($((SECONDS - t0)) s)"
answer="$(request GET "$R" /key-value-store/k8s-check "$meta_body")"
[[ "${answer%% *}" == 200 && "$(json_field "${answer#* }" value)" == from-kvs-0 ]] ||
  die "GET k8s-check on the restarted ${POD_NAMES[$R]}: $answer"
answer="$(request PUT "$R" /key-value-store/k8s-check2 "{\"value\":\"from-${POD_NAMES[$R]}\",\"causal-metadata\":\"$meta\"}")"
[[ "${answer%% *}" == 201 ]] || die "PUT on the restarted ${POD_NAMES[$R]}: $answer"
meta_body="{\"causal-metadata\":\"$(json_field "${answer#* }" causal-metadata)\"}"
for i in "${all[@]}"; do
  answer="$(request GET "$i" /key-value-store/k8s-check2 "$meta_body")"
  [[ "${answer%% *}" == 200 && "$(json_field "${answer#* }" value)" == "from-${POD_NAMES[$R]}" ]] ||
    die "GET k8s-check2 on ${POD_NAMES[$i]}: $answer"
done
# Peers must reach it at the new address by its name. Everything above could also be done by
# the restarted node's own calls out, so cut those (TCP to the peers' port, from its namespace;
# its answers, from that port, still flow): then a key of its shard written through another pod
# reaches it only by a peer's call to its new address, and the peers keep it in their views
# after twice the failure timeout only if their heartbeats reach it.
ip netns exec "$(ns_of "$R")" iptables -w 5 -I OUTPUT -p tcp --dport "$K8S_PORT" -j DROP
answer="$(request GET "$R" /key-value-store-shard/node-shard-id)"
shard="$(json_field "${answer#* }" shard-id)"
key="" k=0
while [[ -z "$key" ]] && ((k < 64)); do
  answer="$(request PUT 0 "/key-value-store/k8s-inbound-$k" '{"value":"inbound","causal-metadata":""}')"
  [[ "${answer%% *}" == 201 ]] || die "PUT k8s-inbound-$k on ${POD_NAMES[0]}: $answer"
  [[ "$(json_field "${answer#* }" shard-id)" == "$shard" ]] && key="k8s-inbound-$k"
  k=$((k + 1))
done
[[ -n "$key" ]] || die "no key of shard $shard among 64"
deadline=$((SECONDS + 10))
until [[ "$(request GET "$R" "/key-value-store/$key")" == "200 "*'"value":"inbound"'* ]]; do
  ((SECONDS < deadline)) ||
    die "$key (shard $shard), written through ${POD_NAMES[0]}, never reached ${POD_NAMES[$R]} at its new IP"
  sleep 0.2
done
sleep "$(((2 * K8S_FAILURE_TIMEOUT_MS + 999) / 1000))"
for ((i = 0; i < N_PODS; i++)); do
  ((i == R)) && continue
  answer="$(request GET "$i" /key-value-store-view)"
  [[ ",$(json_field "${answer#* }" view)," == *",${POD_HOSTS[$R]}:$K8S_PORT,"* ]] ||
    die "${POD_HOSTS[$R]} (new IP ${POD_IPS[$R]}) is not in ${POD_NAMES[$i]}'s view: $answer"
done
ip netns exec "$(ns_of "$R")" iptables -w 5 -D OUTPUT -p tcp --dport "$K8S_PORT" -j DROP
log "${POD_NAMES[$R]} at ${POD_IPS[$R]}: ready, has its data, its write read on every pod; with its own calls cut, $key reached it and it stayed in every view for $((2 * K8S_FAILURE_TIMEOUT_MS)) ms"

# ----------------------------------------------------------------------------------- stop
for i in "${all[@]}"; do kill -TERM "${PIDS[$i]}"; done
for i in "${all[@]}"; do await_exit "$i"; done
log "SIGTERM: every pod exited 0 within ${K8S_TERMINATION_S}s"
# readOnlyRootFilesystem: the pods ran as runAsUser, so anything they wrote outside their data
# directory would be a file of that user in a world-writable place.
if [[ -n "$K8S_READ_ONLY_ROOT" && -n "$K8S_RUN_AS_USER" ]]; then
  # (find fails on files other processes delete under it: its status is not the answer)
  stray="$({ find /tmp /var/tmp /dev/shm -xdev -uid "$K8S_RUN_AS_USER" -not -path "$WORK/*" 2>/dev/null || true; } | head -5)"
  [[ -z "$stray" ]] || die "readOnlyRootFilesystem, but the server wrote outside its data directory: $stray"
  log "readOnlyRootFilesystem: nothing written outside the data directories"
fi
# Every KVS_* variable of the manifests must be a tunable: the server warns about the others.
if grep -h "ignoring environment variable" "$WORK"/pod-*/log; then
  die "kvs-server ignored environment variables of the manifests"
fi
log "PASS"
