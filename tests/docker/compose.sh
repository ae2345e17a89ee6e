#!/usr/bin/env bash
# Docker Compose test: docker/compose.yaml brings up the six-node, two-shard cluster with
# Debian's docker-compose (1.29), nodes addressed by service name (node1:8080 ...), one named
# volume per node, a random KVS_CLUSTER_SECRET and KVS_ADMIN_TOKEN from the environment.
#   1. ./build.sh --image (starts dockerd if none answers; builds the image kvs, no container).
#   2. docker-compose -p kvstest up -d; every container's health check (kvs-probe asking
#      /health/ready) must report healthy; the secrets reached every container.
#   3. The contract smoke checks of tests/docker/contract_smoke.sh through host ports 8082-8087.
#   4. docker-compose down -v from the EXIT trap (on failure too): no container, network or
#      volume of the project may be left, nor the image kvs if this test created it.
# The project name is kvstest (volumes kvstest_node<i>-data, network kvstest_default), not the
# kvs of the documented commands: the test never touches a deployment of the user's.
# Exit 0 on success, non-zero with a message on the first failure. Every wait is bounded.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PROJECT=kvstest
COMPOSE_FILE="$ROOT/docker/compose.yaml"
NODES=6
BASE_PORT=8082
IMAGE=kvs
HEALTHY_TIMEOUT=120   # seconds for every container to report healthy
CMD_TIMEOUT=180       # seconds any one docker-compose command may take
IMAGE_EXISTED=1       # whether the image kvs was there before this test (then it is kept)
STARTED=$SECONDS

fail() { printf 'compose.sh: FAIL: %s\n' "$*" >&2; exit 1; }
pass() { printf 'compose.sh: ok: %s\n' "$*"; }
# docker-compose, bounded; without its note that it ignores the Swarm-only deploy keys.
compose() {
  timeout "$CMD_TIMEOUT" docker-compose -p "$PROJECT" -f "$COMPOSE_FILE" "$@" \
    2> >(grep -v '^The following deploy sub-keys are not supported' >&2)
}
# Container of service node$1 (by Compose's labels: docker-compose itself takes ~1 s to start).
container_of() {
  docker ps -aq --filter "label=com.docker.compose.project=$PROJECT" \
    --filter "label=com.docker.compose.service=node$1"
}
random_hex() { od -An -N16 -tx1 /dev/urandom | tr -d ' \n'; }

# shellcheck source=tests/docker/contract_smoke.sh
source "$ROOT/tests/docker/contract_smoke.sh"

# What of this test's is still there (empty = nothing).
leftovers() {
  local left=""
  left+="$(docker ps -aq --filter "label=com.docker.compose.project=$PROJECT" | sed 's/^/container:/' | tr '\n' ' ')"
  left+="$(docker network ls -q --filter "label=com.docker.compose.project=$PROJECT" | sed 's/^/network:/' | tr '\n' ' ')"
  left+="$(docker volume ls -q --filter "label=com.docker.compose.project=$PROJECT" | sed 's/^/volume:/' | tr '\n' ' ')"
  docker network inspect "${PROJECT}_default" >/dev/null 2>&1 && left+="network:${PROJECT}_default "
  if ((!IMAGE_EXISTED)) && docker image inspect "$IMAGE" >/dev/null 2>&1; then left+="image:$IMAGE "; fi
  printf '%s' "$left"
}

# Teardown, then verify it really removed everything. Runs on every exit path; a leftover
# turns a passing run into a failure.
finish() {
  local rc=$? left
  trap - EXIT
  if ! docker info >/dev/null 2>&1; then
    if ((rc == 0)); then echo "compose.sh: PASSED"; else echo "compose.sh: FAILED" >&2; fi
    exit "$rc"
  fi
  if ((rc != 0)); then
    echo "--- docker-compose ps and last log lines:" >&2
    compose ps >&2 2>&1 || true
    compose logs --no-color --tail 15 2>&1 | sed 's/^/    /' >&2 || true
  fi
  echo "compose.sh: cleaning up (docker-compose down -v)"
  compose down -v --remove-orphans -t 15 >/dev/null 2>&1 \
    || { echo "compose.sh: FAIL: docker-compose down -v exited non-zero" >&2; rc=1; }
  # Whatever down did not remove (e.g. it timed out), by force.
  left="$(leftovers)"
  if [[ -n $left ]]; then
    docker ps -aq --filter "label=com.docker.compose.project=$PROJECT" | xargs -r docker rm -f >/dev/null 2>&1 || true
    docker network rm "${PROJECT}_default" >/dev/null 2>&1 || true
    docker volume ls -q --filter "label=com.docker.compose.project=$PROJECT" | xargs -r docker volume rm >/dev/null 2>&1 || true
  fi
  if ((!IMAGE_EXISTED)); then docker rmi -f "$IMAGE" >/dev/null 2>&1 || true; fi
  left="$(leftovers)"
  if [[ -n $left ]]; then
    echo "compose.sh: FAIL: left behind: $left" >&2
    rc=1
  else
    echo "compose.sh: ok: nothing left behind (no $PROJECT container, network or volume$( ((IMAGE_EXISTED)) || echo ', no image kvs'))"
  fi
  if ((rc == 0)); then echo "compose.sh: PASSED ($((SECONDS - STARTED)) s)"; else echo "compose.sh: FAILED" >&2; fi
  exit "$rc"
}

# Polls until every node's container reports healthy; a container that exits fails at once.
wait_healthy() {
  local deadline=$((SECONDS + HEALTHY_TIMEOUT)) i id state health pending
  while :; do
    pending=""
    for ((i = 1; i <= NODES; i++)); do
      id="$(container_of "$i")"
      [[ -n $id ]] || { pending+=" node$i(no container)"; continue; }
      read -r state health < <(docker inspect -f '{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' "$id" 2>/dev/null || echo "gone none")
      [[ $state == running ]] || fail "node$i's container is $state: $(docker logs --tail 10 "$id" 2>&1 | tr '\n' '|')"
      [[ $health == healthy ]] || pending+=" node$i($health)"
    done
    [[ -z $pending ]] && break
    ((SECONDS < deadline)) || fail "not healthy after ${HEALTHY_TIMEOUT}s:$pending"
    sleep 1
  done
}

main() {
  cd "$ROOT"
  command -v docker-compose >/dev/null || fail "docker-compose not found (apt-get install docker-compose)"
  echo "compose.sh: ./build.sh --image"
  docker image inspect "$IMAGE" >/dev/null 2>&1 || IMAGE_EXISTED=0
  ./build.sh --image || fail "./build.sh --image exited non-zero"
  trap finish EXIT

  # A run killed before its teardown left its project behind: remove it (it is ours).
  if [[ -n "$(leftovers)" ]]; then
    echo "compose.sh: removing what an earlier run left: $(leftovers)"
    compose down -v --remove-orphans -t 15 >/dev/null 2>&1 || true
  fi
  local port users
  for ((port = BASE_PORT; port < BASE_PORT + NODES; port++)); do
    users="$(docker ps --filter "publish=$port" --format '{{.Names}}' | tr '\n' ' ')"
    [[ -z $users ]] || fail "host port $port is taken by container(s) $users(./clean.sh removes ./build.sh's cluster)"
  done

  export KVS_CLUSTER_SECRET KVS_ADMIN_TOKEN
  KVS_CLUSTER_SECRET="$(random_hex)"
  KVS_ADMIN_TOKEN="$(random_hex)"
  local start=$SECONDS
  compose up -d || fail "docker-compose up -d exited non-zero"
  wait_healthy
  pass "docker-compose up -d: all $NODES containers healthy (kvs-probe /health/ready) in $((SECONDS - start)) s"

  local i id env
  for ((i = 1; i <= NODES; i++)); do
    id="$(container_of "$i")"
    env="$(docker inspect -f '{{range .Config.Env}}{{println .}}{{end}}' "$id")"
    grep -qx "KVS_CLUSTER_SECRET=$KVS_CLUSTER_SECRET" <<<"$env" || fail "node$i lacks the KVS_CLUSTER_SECRET"
    grep -qx "KVS_ADMIN_TOKEN=$KVS_ADMIN_TOKEN" <<<"$env" || fail "node$i lacks the KVS_ADMIN_TOKEN"
    grep -qx "SOCKET_ADDRESS=node$i:8080" <<<"$env" || fail "node$i's SOCKET_ADDRESS is not node$i:8080"
  done
  pass "every container got SOCKET_ADDRESS=node<i>:8080 and the random KVS_CLUSTER_SECRET / KVS_ADMIN_TOKEN"

  CS_PORTS=() CS_NAMES=()
  for ((i = 1; i <= NODES; i++)); do
    CS_PORTS+=($((BASE_PORT + i - 1)))
    CS_NAMES+=("node$i:8080")
  done
  CS_ADMIN_TOKEN=$KVS_ADMIN_TOKEN
  CS_SECRETS=("$KVS_CLUSTER_SECRET" "$KVS_ADMIN_TOKEN")
  contract_smoke

  # The members are named by service name: the event loops resolve them off the loop
  # (net::Resolver) and relay requests for the other shard themselves, not through workers.
  local loop=0 worker=0 metrics n
  for ((i = 1; i <= NODES; i++)); do
    metrics="$(curl -s --max-time 5 "http://127.0.0.1:$((BASE_PORT + i - 1))/metrics")" \
      || fail "GET /metrics of node$i failed"
    n="$(awk '$1 == "kvs_forwarded_requests_total{on=\"loop\"}" {print $2}' <<<"$metrics")"
    [[ -n $n ]] || fail "node$i's /metrics has no kvs_forwarded_requests_total{on=\"loop\"}"
    loop=$((loop + n))
    n="$(awk '$1 == "kvs_forwarded_requests_total{on=\"worker\"}" {print $2}' <<<"$metrics")"
    worker=$((worker + ${n:-0}))
  done
  ((loop > 0)) || fail "no request was forwarded from an event loop (kvs_forwarded_requests_total: loop $loop, worker $worker)"
  pass "members named by service name: $loop requests forwarded from the event loops, $worker through workers (names not resolved yet)"
}

main "$@"
