#!/usr/bin/env bash
# Tear down what ./build.sh started, data included. Never fails because something is already gone.
#
#   ./clean.sh           remove containers node1..node6, network mynet, image kvs and the data
#                        volumes kvs-node1-data..kvs-node6-data (every stored key is gone)
#                        (dockerd itself keeps running; no daemon means nothing to remove)
#   ./clean.sh --local   stop the local node processes started by ./build.sh --local and delete
#                        their data directories $KVS_BUILD_DIR/local/127.0.0.<2-7>_8080/
#   --keep-data          (with either) stop and remove the cluster but keep the volumes / data
#                        directories, so the next ./build.sh brings the same data back
#
# Environment: KVS_BUILD_DIR as for build.sh (where --local keeps its pid files and data).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BUILD_DIR="${KVS_BUILD_DIR:-build}"
[[ "$BUILD_DIR" = /* ]] || BUILD_DIR="$ROOT/$BUILD_DIR"

NODES=6
IMAGE=kvs
NETWORK=mynet
STOP_TIMEOUT=10   # seconds a local node gets to exit after SIGTERM before SIGKILL
KEEP_DATA=0

# Must match build.sh: node i's volume and its --local data directory.
volume_name() { echo "kvs-node$1-data"; }
local_data_dir() { echo "$BUILD_DIR/local/127.0.0.$(($1 + 1))_8080"; }

log() { printf '==> %s\n' "$*"; }
warn() { printf 'clean.sh: warning: %s\n' "$*" >&2; }

clean_docker() {
  if ! docker info >/dev/null 2>&1; then
    log "no Docker daemon answers; nothing to remove"
    return 0
  fi
  local i nodes=() removed=()
  for i in $(seq 1 "$NODES"); do
    docker container inspect "node$i" >/dev/null 2>&1 && nodes+=("node$i")
  done
  if ((${#nodes[@]} > 0)); then
    # docker stop first (all at once, it stops them in parallel): each node gets SIGTERM
    # and can flush; rm -f alone would SIGKILL it.
    docker stop -t "$STOP_TIMEOUT" "${nodes[@]}" >/dev/null 2>&1 || true
    # A non-zero exit here (137 = SIGKILLed after the timeout) means a node did not shut
    # down cleanly on SIGTERM: worth knowing, but not a reason to keep the containers.
    docker inspect -f '{{.Name}} {{.State.ExitCode}}' "${nodes[@]}" 2>/dev/null \
      | while read -r name code; do
          [[ $code == 0 ]] || warn "${name#/} exited with code $code"
        done
    docker rm -f "${nodes[@]}" >/dev/null 2>&1 || warn "could not remove some of: ${nodes[*]}"
    removed+=("${nodes[@]}")
  fi
  if docker network inspect "$NETWORK" >/dev/null 2>&1; then
    docker network rm "$NETWORK" >/dev/null || warn "could not remove network $NETWORK (other containers attached?)"
    removed+=("network:$NETWORK")
  fi
  if docker image inspect "$IMAGE" >/dev/null 2>&1; then
    docker rmi -f "$IMAGE" >/dev/null || warn "could not remove image $IMAGE"
    removed+=("image:$IMAGE")
  fi
  if ((${#removed[@]} > 0)); then log "removed: ${removed[*]}"; else log "nothing to remove"; fi
  clean_volumes
}

# After the containers: Docker refuses to delete a volume a container still uses.
clean_volumes() {
  local i v users present=() deleted=()
  for i in $(seq 1 "$NODES"); do
    v="$(volume_name "$i")"
    docker volume inspect "$v" >/dev/null 2>&1 && present+=("$v")
  done
  if ((${#present[@]} == 0)); then
    log "no data volumes to delete"
    return 0
  fi
  if ((KEEP_DATA)); then
    log "kept data volumes (--keep-data): ${present[*]}"
    return 0
  fi
  for v in "${present[@]}"; do
    if docker volume rm "$v" >/dev/null 2>&1; then
      deleted+=("$v")
    else
      users="$(docker ps -a --filter "volume=$v" --format '{{.Names}}' | tr '\n' ' ')"
      warn "could not delete volume $v (used by: ${users:-?})"
    fi
  done
  ((${#deleted[@]} == 0)) \
    || log "deleted data volumes (all data stored by the cluster): ${deleted[*]}"
}

# True if $1 is a live kvs-server process (guards against a pid reused by something else).
is_kvs_pid() {
  [[ "$1" =~ ^[0-9]+$ ]] && kill -0 "$1" 2>/dev/null \
    && [[ "$(readlink "/proc/$1/exe" 2>/dev/null)" == */kvs-server* ]]
}

stop_local_node() {
  local pidfile="$1" pid deadline
  pid="$(cat "$pidfile" 2>/dev/null || true)"
  rm -f "$pidfile"
  is_kvs_pid "$pid" || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  deadline=$((SECONDS + STOP_TIMEOUT))
  while is_kvs_pid "$pid" && ((SECONDS < deadline)); do sleep 0.2; done
  if is_kvs_pid "$pid"; then
    warn "pid $pid ignored SIGTERM for ${STOP_TIMEOUT}s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    # Gone before its data directory is deleted.
    deadline=$((SECONDS + 5))
    while is_kvs_pid "$pid" && ((SECONDS < deadline)); do sleep 0.1; done
  fi
}

clean_local() {
  local i n=0 pids=()
  for i in $(seq 1 "$NODES"); do
    [[ -f "$BUILD_DIR/local/node$i.pid" ]] || continue
    n=$((n + 1))
    # Stop the nodes in parallel so a slow one does not multiply the wait.
    stop_local_node "$BUILD_DIR/local/node$i.pid" &
    pids+=($!)
  done
  ((${#pids[@]} == 0)) || wait "${pids[@]}" || true
  log "stopped local nodes ($n pid file(s) found)"
  local i d present=()
  for i in $(seq 1 "$NODES"); do
    d="$(local_data_dir "$i")"
    [[ -e $d ]] && present+=("$d")
  done
  if ((${#present[@]} == 0)); then
    log "no local data directories to delete"
  elif ((KEEP_DATA)); then
    log "kept local data directories (--keep-data): ${present[*]}"
  else
    rm -rf -- "${present[@]}" || warn "could not delete all of: ${present[*]}"
    log "deleted local data directories (all data stored by the cluster): ${present[*]}"
  fi
}

mode=docker
for arg in "$@"; do
  case "$arg" in
    --local) mode=local ;;
    --keep-data) KEEP_DATA=1 ;;
    -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) printf 'clean.sh: unknown argument: %s (use --local, --keep-data or nothing)\n' "$arg" >&2; exit 2 ;;
  esac
done
if [[ $mode == local ]]; then clean_local; else clean_docker; fi
