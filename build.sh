#!/usr/bin/env bash
# Build kvs and start a six-node cluster.
#
#   ./build.sh           Docker: image `kvs` (FROM scratch, built offline), network `mynet`
#                        10.10.0.0/16, containers node1..node6 at 10.10.0.2-7, host ports 8082-8087.
#                        Node i keeps its data (write-ahead log, snapshots) in the named volume
#                        kvs-node<i>-data mounted at /data (the image's KVS_STORAGE_DIR), and all
#                        run with KVS_CLUSTER_ID=kvs-docker.
#   ./build.sh --image   Docker, but only build: the binaries and the image `kvs` (dockerd is started
#                        if no daemon answers); no container, network or volume is touched. For
#                        docker/compose.yaml (docker-compose, docker stack deploy).
#   ./build.sh --local   No Docker: the same six nodes as background processes on 127.0.0.2-7:8080.
#                        Node <ip>:8080 keeps its data in $KVS_BUILD_DIR/local/<ip>_8080/ (e.g.
#                        build/local/127.0.0.2_8080/; `_`, not `:`, in the name) via
#                        KVS_STORAGE_DIR; KVS_CLUSTER_ID=kvs-local. Logs and pids in the same
#                        local/ directory.
#
# Re-running replaces the running cluster (containers or processes) but keeps the data:
# volumes and local data directories are reused, so the nodes come back with what they had.
# docker restart, or docker kill + docker start, of any or all containers keeps it too.
# ./clean.sh (or ./clean.sh --local) tears the cluster down AND deletes the data.
#
# Environment:
#   KVS_BUILD_DIR   CMake build tree (default: build, relative to the repo). When set, an
#                   existing tree is reused as configured (so CI can reuse its own build);
#                   when unset, build/ is (re)configured as Release.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BUILD_DIR="${KVS_BUILD_DIR:-build}"
[[ "$BUILD_DIR" = /* ]] || BUILD_DIR="$ROOT/$BUILD_DIR"
BIN="$BUILD_DIR/app/kvs-server"
PROBE="$BUILD_DIR/docker/kvs-probe"   # the image's health check (docker/probe.cc)
KVSCTL="$BUILD_DIR/app/kvsctl"        # the operators' command line (app/kvsctl.cc), in the image too
CONFIG="$ROOT/config/kvs.properties"

NODES=6
SHARD_COUNT=2
IMAGE=kvs
NETWORK=mynet
SUBNET=10.10.0.0/16
DATA_DIR=/data                  # in the container; must match the image's ENV KVS_STORAGE_DIR
DOCKER_CLUSTER_ID=kvs-docker    # KVS_CLUSTER_ID: recorded in each node's data directory
LOCAL_CLUSTER_ID=kvs-local
VOLUME_LABEL=kvs.node           # volumes are labelled kvs.node=node<i> (docker volume ls --filter)
HEALTH_TIMEOUT=60    # seconds to wait for all nodes to answer /health with "ready" not false
DOCKERD_TIMEOUT=30   # seconds to wait for a freshly started dockerd
DOCKERD_LOG=/var/log/kvs-dockerd.log

BUILD_PKGS=(libpoco-dev libtbb-dev libgtest-dev libxxhash-dev libisal-dev cmake g++ make)
DEPLOY_PKGS=(docker.io iptables nftables curl iproute2)
LOCAL_PKGS=(curl iproute2)

# Unlike kill -0, false for a zombie too (its /proc/PID/exe is unreadable), so a process
# that died counts as dead even before anyone reaps it.
process_running() { readlink "/proc/$1/exe" >/dev/null 2>&1; }

log() { printf '==> %s\n' "$*"; }
die() { printf 'build.sh: error: %s\n' "$*" >&2; exit 1; }

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
}

# --- packages ---------------------------------------------------------------------------

# Installs only what is missing: a dpkg-query per package is fast, so a machine that has
# everything never touches the network.
ensure_packages() {
  local missing=() p
  for p in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
      missing+=("$p")
    fi
  done
  ((${#missing[@]} == 0)) && return 0
  [[ $EUID -eq 0 ]] || die "missing packages (${missing[*]}) and not root to install them"
  log "installing missing packages: ${missing[*]}"
  apt-get update -q || die "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" \
    || die "apt-get install ${missing[*]} failed"
}

# --- build ------------------------------------------------------------------------------

build_binary() {
  # Configure when there is no tree yet, or when we own build/ (then force Release).
  # A caller-supplied KVS_BUILD_DIR keeps its own configuration (e.g. CI's build type).
  if [[ ! -f "$BUILD_DIR/CMakeCache.txt" || -z "${KVS_BUILD_DIR:-}" ]]; then
    log "configuring $BUILD_DIR (Release)"
    cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release >/dev/null \
      || die "cmake configure failed"
  fi
  log "building kvs-server, kvs-probe and kvsctl"
  cmake --build "$BUILD_DIR" -j"$(nproc)" --target kvs-server || die "build of kvs-server failed"
  # Separately: building kvs-server first re-runs CMake if the tree predates the kvs-probe
  # and kvsctl targets (Make does not know a target until then).
  cmake --build "$BUILD_DIR" -j"$(nproc)" --target kvs-probe kvsctl \
    || die "build of kvs-probe / kvsctl failed"
  [[ -x "$BIN" ]] || die "build succeeded but $BIN is missing"
  [[ -x "$PROBE" ]] || die "build succeeded but $PROBE is missing"
  [[ -x "$KVSCTL" ]] || die "build succeeded but $KVSCTL is missing"
}

# --- docker -----------------------------------------------------------------------------

# Starts dockerd only if no daemon answers. --userland-proxy=false: published ports are
# plain DNAT rules instead of docker-proxy processes, which die under connection storms
# (see PLATFORM.md). Checked: curl 127.0.0.1:8082-8087 still reaches the nodes this way.
ensure_dockerd() {
  docker info >/dev/null 2>&1 && return 0
  command -v dockerd >/dev/null || die "dockerd not found (is docker.io installed?)"
  [[ $EUID -eq 0 ]] || die "no Docker daemon answers and not root to start one"
  log "starting dockerd (log: $DOCKERD_LOG)"
  # setsid + all fds redirected: the daemon must not hold our stdout open, or a caller
  # waiting for our output (ctest, a pipe) would hang until the daemon exits.
  setsid dockerd --userland-proxy=false </dev/null >>"$DOCKERD_LOG" 2>&1 &
  local pid=$! deadline=$((SECONDS + DOCKERD_TIMEOUT))
  until docker info >/dev/null 2>&1; do
    if ! process_running "$pid"; then
      tail -n 5 "$DOCKERD_LOG" >&2
      die "dockerd exited at start-up (log: $DOCKERD_LOG)"
    fi
    if ((SECONDS >= deadline)); then
      tail -n 20 "$DOCKERD_LOG" >&2
      die "dockerd did not answer within ${DOCKERD_TIMEOUT}s (log: $DOCKERD_LOG)"
    fi
    sleep 0.5
  done
}

remove_docker_cluster() {
  local others
  # docker stop first (SIGTERM, all in parallel): the nodes' data volumes are kept, so let
  # each node shut down cleanly rather than SIGKILL it with rm -f alone.
  # shellcheck disable=SC2046  # node names are plain words
  docker stop -t 10 $(node_names) >/dev/null 2>&1 || true
  # shellcheck disable=SC2046
  docker rm -f $(node_names) >/dev/null 2>&1 || true
  if docker network inspect "$NETWORK" >/dev/null 2>&1; then
    if ! docker network rm "$NETWORK" >/dev/null; then
      others="$(docker ps -a --filter "network=$NETWORK" --format '{{.Names}}' | tr '\n' ' ')"
      die "cannot remove network $NETWORK; containers still attached: ${others:-none}"
    fi
  fi
}

build_image() {
  local ctx="$BUILD_DIR/docker-image" old new
  log "staging rootfs in $ctx"
  rm -rf "$ctx"
  "$ROOT/docker/make-rootfs.sh" "$BIN" "$CONFIG" "$ctx/rootfs" "$PROBE" "$KVSCTL" || die "staging the rootfs failed"
  cp "$ROOT/docker/Dockerfile" "$ctx/Dockerfile"
  old="$(docker image inspect -f '{{.Id}}' "$IMAGE" 2>/dev/null || true)"
  log "building image $IMAGE"
  # The context holds only the rootfs and the Dockerfile; FROM scratch needs no registry.
  # DOCKER_BUILDKIT=0: the daemon is Debian's 20.10 and buildx may be absent; the legacy
  # builder's deprecation banner is only shown when the build fails.
  local out
  out="$(DOCKER_BUILDKIT=0 docker build -q -t "$IMAGE" "$ctx" 2>&1)" || { echo "$out" >&2; die "docker build failed"; }
  new="$(docker image inspect -f '{{.Id}}' "$IMAGE")"
  # Drop the previous image (now untagged) so re-runs do not pile up dangling images.
  if [[ -n "$old" && "$old" != "$new" ]]; then docker rmi "$old" >/dev/null 2>&1 || true; fi
}

# One named volume per node, created if missing and otherwise kept as it is: a re-run of
# ./build.sh gives node i back the data of the previous node i (same address, same cluster
# id, so the server accepts it). Only ./clean.sh deletes them.
ensure_volumes() {
  local i v kept=() created=()
  for i in $(seq 1 "$NODES"); do
    v="$(volume_name "$i")"
    if docker volume inspect "$v" >/dev/null 2>&1; then
      kept+=("$v")
    else
      docker volume create --label "$VOLUME_LABEL=node$i" "$v" >/dev/null \
        || die "cannot create volume $v"
      created+=("$v")
    fi
  done
  ((${#created[@]} == 0)) || log "created data volumes: ${created[*]}"
  ((${#kept[@]} == 0)) \
    || log "keeping data volumes of a previous run: ${kept[*]} (./clean.sh deletes them)"
}

start_docker_cluster() {
  docker network create --subnet="$SUBNET" "$NETWORK" >/dev/null \
    || die "cannot create network $NETWORK ($SUBNET); does another network overlap it?"
  local view i
  view="$(node_view 10.10.0)"
  for i in $(seq 1 "$NODES"); do
    # The fixed --ip keeps the node's address (recorded in its data) across docker restart,
    # kill + start and re-runs of this script.
    docker run -d --name "node$i" --net "$NETWORK" --ip "$(node_ip 10.10.0 "$i")" \
      -p "$(host_port "$i"):8080" -v "$(volume_name "$i"):$DATA_DIR" \
      -e SOCKET_ADDRESS="$(node_ip 10.10.0 "$i"):8080" -e VIEW="$view" -e SHARD_COUNT="$SHARD_COUNT" \
      -e KVS_CLUSTER_ID="$DOCKER_CLUSTER_ID" \
      "$IMAGE" >/dev/null || die "cannot start container node$i"
  done
}

docker_node_logs() { docker logs --tail 20 "node$1" 2>&1 || true; }
docker_node_alive() { [[ "$(docker inspect -f '{{.State.Running}}' "node$1" 2>/dev/null)" == true ]]; }
docker_node_data() { echo "volume $(volume_name "$1")"; }

# --- local processes --------------------------------------------------------------------

start_local_cluster() {
  local dir="$BUILD_DIR/local" view i ip args=() data reused=0
  mkdir -p "$dir"
  view="$(node_view 127.0.0)"
  [[ -f "$CONFIG" ]] && args+=("--config=$CONFIG")
  for i in $(seq 1 "$NODES"); do
    ip="$(node_ip 127.0.0 "$i")"
    data="$(local_data_dir "$i")"
    [[ -d "$data" ]] && reused=$((reused + 1))
    # Each node runs in its own directory so any other relative path in the config does not
    # collide between nodes. The data directory is absolute, named after the node's address
    # (the server creates it). setsid + redirected fds: see ensure_dockerd.
    mkdir -p "$dir/node$i"
    (
      cd "$dir/node$i"
      SOCKET_ADDRESS="$ip:8080" VIEW="$view" SHARD_COUNT="$SHARD_COUNT" KVS_HTTP_BIND="$ip" \
        KVS_STORAGE_DIR="$data" KVS_CLUSTER_ID="$LOCAL_CLUSTER_ID" \
        exec setsid "$BIN" "${args[@]}" </dev/null >"$dir/node$i.log" 2>&1
    ) &
    echo $! >"$dir/node$i.pid"
  done
  ((reused == 0)) \
    || log "keeping the data of a previous run for $reused node(s) in $dir (./clean.sh --local deletes it)"
}

local_node_logs() { tail -n 20 "$BUILD_DIR/local/node$1.log" 2>/dev/null || true; }
local_node_alive() { process_running "$(cat "$BUILD_DIR/local/node$1.pid")"; }
local_node_data() { echo "directory $(local_data_dir "$1")"; }

# --- shared -----------------------------------------------------------------------------

node_names() { local i; for i in $(seq 1 "$NODES"); do printf 'node%d ' "$i"; done; }
node_ip() { echo "$1.$(($2 + 1))"; }              # node i -> <prefix>.(i+1)
host_port() { echo $((8081 + $1)); }              # node i -> 8082..8087
volume_name() { echo "kvs-node$1-data"; }          # node i's Docker volume
local_data_dir() { echo "$BUILD_DIR/local/$(node_ip 127.0.0 "$1")_8080"; }  # node i, --local
node_view() {
  local i out=()
  for i in $(seq 1 "$NODES"); do out+=("$(node_ip "$1" "$i"):8080"); done
  (IFS=,; echo "${out[*]}")
}

# Polls every node's /health until all answer 200 and none says "ready": false (a node
# that is still recovering from disk or catching up with its peers). A node whose process
# has died fails the wait at once (with its log) instead of after the whole timeout.
# $1: prints "host:port" of node i; $2: prints node i's logs; $3: succeeds if node i runs;
# $4: names node i's data (volume or directory), for the message when it died.
wait_healthy() {
  local addr_of="$1" logs_of="$2" alive="$3" data_of="$4" deadline=$((SECONDS + HEALTH_TIMEOUT))
  local i pending body
  log "waiting for /health (ready) on all nodes (up to ${HEALTH_TIMEOUT}s)"
  while :; do
    pending=()
    for i in $(seq 1 "$NODES"); do
      if body="$(curl -fsS --max-time 2 "http://$("$addr_of" "$i")/health" 2>/dev/null)"; then
        [[ $body =~ \"ready\"[[:space:]]*:[[:space:]]*false ]] || continue
      fi
      pending+=("$i")
      if ! "$alive" "$i"; then
        printf -- '--- node%d last log lines:\n' "$i" >&2
        "$logs_of" "$i" >&2
        die "node$i exited during start-up (see its log above). If it refused its data (exit 78:" \
          "$("$data_of" "$i") was written for another cluster id or node address), $CLEAN_HINT" \
          "deletes all data and lets it start afresh; otherwise $CLEAN_HINT removes the rest"
      fi
    done
    ((${#pending[@]} == 0)) && return 0
    if ((SECONDS >= deadline)); then
      for i in "${pending[@]}"; do
        printf -- '--- node%d (%s) last log lines:\n' "$i" "$("$addr_of" "$i")" >&2
        "$logs_of" "$i" >&2
      done
      die "node(s) ${pending[*]/#/node} not healthy after ${HEALTH_TIMEOUT}s; $CLEAN_HINT removes the cluster"
    fi
    sleep 0.5
  done
}

docker_addr() { echo "127.0.0.1:$(host_port "$1")"; }
local_addr() { echo "$(node_ip 127.0.0 "$1"):8080"; }

print_summary() {
  local mode="$1" i a
  echo
  if [[ $mode == docker ]]; then
    echo "kvs cluster running in Docker (image $IMAGE, network $NETWORK $SUBNET, SHARD_COUNT=$SHARD_COUNT," \
      "KVS_CLUSTER_ID=$DOCKER_CLUSTER_ID):"
    printf '  %-6s %-12s %-22s %s\n' NAME IP HOST-PORT "DATA ($DATA_DIR)"
    for i in $(seq 1 "$NODES"); do
      printf '  %-6s %-12s %-22s %s\n' "node$i" "$(node_ip 10.10.0 "$i")" \
        "127.0.0.1:$(host_port "$i")->8080" "volume $(volume_name "$i")"
    done
    a="$(docker_addr 1)"
  else
    echo "kvs cluster running as local processes (SHARD_COUNT=$SHARD_COUNT, KVS_CLUSTER_ID=$LOCAL_CLUSTER_ID;" \
      "logs/pids/data in $BUILD_DIR/local):"
    printf '  %-6s %-16s %-8s %s\n' NAME ADDRESS PID DATA
    for i in $(seq 1 "$NODES"); do
      printf '  %-6s %-16s %-8s %s\n' "node$i" "$(local_addr "$i")" "$(cat "$BUILD_DIR/local/node$i.pid")" \
        "local/$(basename "$(local_data_dir "$i")")"
    done
    a="$(local_addr 1)"
  fi
  cat <<EOF

Try:
  curl -X PUT -H 'Content-Type: application/json' -d '{"value":"v1","causal-metadata":""}' http://$a/key-value-store/k1
  curl http://$a/key-value-store/k1
  curl http://$a/key-value-store-view
  curl http://$a/key-value-store-shard/shard-ids
  curl http://$a/health
Data survives restarts and re-runs of ./build.sh$([[ $mode == local ]] && echo ' --local').
Stop and delete everything, data included: ./clean.sh$([[ $mode == local ]] && echo ' --local')
EOF
}

main() {
  local mode=docker
  CLEAN_HINT=./clean.sh
  case "${1:-}" in
    "") ;;
    --local) mode=local CLEAN_HINT="./clean.sh --local" ;;
    --image) mode=image ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
  cd "$ROOT"
  if [[ $mode == image ]]; then
    ensure_packages "${BUILD_PKGS[@]}" "${DEPLOY_PKGS[@]}"
    build_binary
    ensure_dockerd
    build_image
    log "image $IMAGE built: $(docker image inspect -f '{{.Id}}' "$IMAGE")"
    return 0
  fi
  if [[ $mode == docker ]]; then
    ensure_packages "${BUILD_PKGS[@]}" "${DEPLOY_PKGS[@]}"
    build_binary
    ensure_dockerd
    log "removing any previous cluster (its data volumes are kept)"
    remove_docker_cluster
    build_image
    ensure_volumes
    log "starting $NODES containers"
    start_docker_cluster
    wait_healthy docker_addr docker_node_logs docker_node_alive docker_node_data
  else
    ensure_packages "${BUILD_PKGS[@]}" "${LOCAL_PKGS[@]}"
    build_binary
    log "stopping any previous local cluster (its data directories are kept)"
    KVS_BUILD_DIR="$BUILD_DIR" "$ROOT/clean.sh" --local --keep-data >/dev/null
    log "starting $NODES local processes"
    start_local_cluster
    wait_healthy local_addr local_node_logs local_node_alive local_node_data
  fi
  print_summary "$mode"
}

main "$@"
