#!/usr/bin/env bash
# Tear down what ./build.sh started. Never fails because something is already gone.
#
#   ./clean.sh           remove containers node1..node6, network mynet and image kvs
#                        (dockerd itself keeps running; no daemon means nothing to remove)
#   ./clean.sh --local   stop the local node processes started by ./build.sh --local
#
# Environment: KVS_BUILD_DIR as for build.sh (where --local keeps its pid files).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BUILD_DIR="${KVS_BUILD_DIR:-build}"
[[ "$BUILD_DIR" = /* ]] || BUILD_DIR="$ROOT/$BUILD_DIR"

NODES=6
IMAGE=kvs
NETWORK=mynet
STOP_TIMEOUT=10   # seconds a local node gets to exit after SIGTERM before SIGKILL

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
}

case "${1:-}" in
  "") clean_docker ;;
  --local) clean_local ;;
  -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' ;;
  *) printf 'clean.sh: unknown argument: %s (use --local or nothing)\n' "$1" >&2; exit 2 ;;
esac
