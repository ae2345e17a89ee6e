#!/usr/bin/env bash
# Benchmarks kvs against nginx (the machine's HTTP ceiling) and etcd (a replicated store),
# all driven by the same load generator, kvs-bench, and writes bench/RESULTS.md.
#
#   bench/run.sh         as root on Debian, from a fresh clone, from any directory
#
# What it does, one system at a time (all traffic on loopback):
#   1. installs what is missing (apt-get update only then), builds kvs-server and kvs-bench
#      (Release) into build-bench/;
#   2. nginx-light returning a fixed JSON body (worker_processes 1 and auto), GET only,
#      plus a wrk cross-check of the load generator;
#   3. kvs: one node; a 3-replica shard on 127.0.0.2-4; 6 nodes in 2 shards on 127.0.0.2-7;
#      GET-only and PUT-only, load spread over every node; then interleaved rounds of nginx
#      GET / kvs GET / kvs PUT (both servers up, one loaded at a time) for the nginx ratios;
#   4. etcd: 3 members on 127.0.0.1, v3 JSON gateway, GET (range) and PUT;
#   5. kvs one node: throughput vs server threads (epoll loops, poco threads), and a
#      kvs-bench connection sweep (+ plot);
#   6. memory: RSS of one kvs node holding 1,000,000 keys of 100-byte values;
#   and prints the results and ratios, and writes bench/RESULTS.md.
# Every server it starts is stopped on exit (also on failure or Ctrl-C), by PID.
#
# Environment (defaults in brackets):
#   KVS_BUILD_DIR          build tree [build-bench], relative to the repo root
#   KVS_BENCH              use this kvs-bench binary instead of building one
#   BENCH_DURATION         measured seconds per run [10]
#   BENCH_WARMUP           warm-up seconds per run, not measured [2]
#   BENCH_THREADS          kvs-bench threads [1]
#   BENCH_CONNECTIONS      kvs-bench connections [32]
#   BENCH_KEYS             key space [10000]
#   BENCH_VALUE_SIZE       value bytes [100]
#   BENCH_CAUSAL           kvs-bench --causal for kvs runs: on (clients pass metadata) | off [on]
#   BENCH_TIMEOUT_MS       kvs-bench per-request timeout [5000]
#   BENCH_SCALE_DURATION   seconds per run of the server-thread scaling [5]
#   BENCH_SCALE            front end:threads settings of the scaling table; epoll:N sets
#                          KVS_HTTP_LOOPS=N, poco:N sets KVS_HTTP_FRONTEND=poco
#                          KVS_HTTP_THREADS=N [epoll:1,epoll:2,epoll:4,epoll:8,poco:2,poco:8,poco:32,poco:64]
#   BENCH_SWEEP            connection counts of the sweep [1,2,4,8,16,32,64]
#   BENCH_SWEEP_DURATION   seconds per sweep point [3]
#   BENCH_MEM_KEYS         keys for the memory check [1000000]
#   BENCH_MEM_TIMEOUT      seconds the memory preload may take [240]
#   BENCH_PAIR_ROUNDS      interleaved nginx/kvs rounds behind the nginx ratios [3]
#   BENCH_PAIR_DURATION    measured seconds per paired run [5]
#   BENCH_PARTS            which parts to run [nginx,single,paired,replica3,cluster6,etcd,scaling,sweep,memory]
#   BENCH_RESULTS          report file [bench/RESULTS.md]
#   BENCH_KVS_PORT         port of the kvs nodes (127.0.0.1-7), to run beside another user of
#                          the default [18480]
#   BENCH_MAX_OTHER        cores other processes may use during a run before it is repeated [0.25]
#   BENCH_RETRIES          how often a disturbed run is repeated (the least disturbed is kept) [2]
#   BENCH_RETRY_BUDGET     seconds into the script after which disturbed runs are not repeated,
#                          which keeps the whole script near 10 minutes on a busy machine [420]
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"
BUILD_DIR="${KVS_BUILD_DIR:-build-bench}"
[[ "$BUILD_DIR" = /* ]] || BUILD_DIR="$ROOT/$BUILD_DIR"
SERVER_BIN="$BUILD_DIR/app/kvs-server"
BENCH_BIN="${KVS_BENCH:-$BUILD_DIR/bench/kvs-bench}"

DURATION="${BENCH_DURATION:-10}"
WARMUP="${BENCH_WARMUP:-2}"
THREADS="${BENCH_THREADS:-1}"
CONNECTIONS="${BENCH_CONNECTIONS:-32}"
KEYS="${BENCH_KEYS:-10000}"
VALUE_SIZE="${BENCH_VALUE_SIZE:-100}"
CAUSAL="${BENCH_CAUSAL:-on}"
TIMEOUT_MS="${BENCH_TIMEOUT_MS:-5000}"
SCALE_DURATION="${BENCH_SCALE_DURATION:-5}"
SCALE="${BENCH_SCALE:-epoll:1,epoll:2,epoll:4,epoll:8,poco:2,poco:8,poco:32,poco:64}"
SWEEP="${BENCH_SWEEP:-1,2,4,8,16,32,64}"
SWEEP_DURATION="${BENCH_SWEEP_DURATION:-3}"
MEM_KEYS="${BENCH_MEM_KEYS:-1000000}"
MEM_TIMEOUT="${BENCH_MEM_TIMEOUT:-240}"
PAIR_ROUNDS="${BENCH_PAIR_ROUNDS:-3}"
PAIR_DURATION="${BENCH_PAIR_DURATION:-5}"
PARTS=",${BENCH_PARTS:-nginx,single,paired,replica3,cluster6,etcd,scaling,sweep,memory},"
RESULTS="${BENCH_RESULTS:-$ROOT/bench/RESULTS.md}"
PLOT="$ROOT/bench/throughput.png"

# Ports nobody else on this machine uses by default (tests and ./build.sh --local use 8080),
# so a concurrent test run cannot answer in place of the system under test.
KVS_PORT="${BENCH_KVS_PORT:-18480}"
NGINX_PORT=18490
ETCD_CLIENT_PORTS=(23791 23792 23793)
ETCD_PEER_PORTS=(23801 23802 23803)

HEALTH_TIMEOUT=30    # seconds for a system to answer its health check
STOP_TIMEOUT=15      # seconds a server gets after SIGTERM (kvs drains up to 5 s) before SIGKILL
BENCH_SLACK=120      # seconds a kvs-bench run may take beyond warm-up + duration (preload)
SAMPLE_PERIOD=0.1    # seconds between CPU samples during a run
MAX_OTHER="${BENCH_MAX_OTHER:-0.25}"  # cores other processes may use before a run counts as disturbed
RETRIES="${BENCH_RETRIES:-2}"         # repeats of a disturbed run
RETRY_BUDGET="${BENCH_RETRY_BUDGET:-420}"  # no more repeats once the script has run this long (s)

BUILD_PKGS=(cmake g++ make libpoco-dev libtbb-dev libgtest-dev libxxhash-dev)
BENCH_PKGS=(nginx-light etcd-server etcd-client gnuplot-nox wrk curl jq)

CLK_TCK="$(getconf CLK_TCK)"
NPROC="$(nproc)"
START_SECONDS=$SECONDS

WORK=""              # temp dir: configs, logs, JSON of every run
SERVER_PIDS=()       # servers of the system under test (our children), until stopped
BENCH_WRAPPER_PID="" # the subshell running kvs-bench, while it runs
CURRENT_LOGS=()      # logs of the running system, shown when something fails
COMMANDS=()          # the kvs-bench/wrk command lines, for RESULTS.md
COMMIT=""            # the commit built

log() { printf '==> %s\n' "$*"; }
warn() { printf 'run.sh: warning: %s\n' "$*" >&2; }
die() {
  printf 'run.sh: error: %s\n' "$*" >&2
  local f
  for f in "${CURRENT_LOGS[@]}"; do
    [[ -s "$f" ]] || continue
    printf -- '--- last lines of %s\n' "${f#"$WORK"/}" >&2
    tail -n 15 "$f" >&2
  done
  exit 1
}
part() { [[ "$PARTS" == *",$1,"* ]]; }

# Unlike kill -0, false for a zombie too (its /proc/PID/exe is unreadable).
process_running() { readlink "/proc/$1/exe" >/dev/null 2>&1; }

# --- cleanup ----------------------------------------------------------------------------

# Sends SIGTERM to the given PIDs, waits (bounded) for them to exit, SIGKILLs the rest and
# reaps them all, so nothing we started outlives the script.
stop_pids() {
  local pid deadline=$((SECONDS + STOP_TIMEOUT)) alive
  (($# == 0)) && return 0
  # Only PIDs still running as ours are signalled (a reaped PID could belong to anyone).
  for pid in "$@"; do process_running "$pid" && kill -TERM "$pid" 2>/dev/null; done
  while :; do
    alive=0
    for pid in "$@"; do process_running "$pid" && alive=1; done
    ((alive == 0 || SECONDS >= deadline)) && break
    sleep 0.1
  done
  for pid in "$@"; do
    if process_running "$pid"; then
      warn "PID $pid did not exit within ${STOP_TIMEOUT}s of SIGTERM; killing it"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  for pid in "$@"; do wait "$pid" 2>/dev/null || true; done
}

stop_servers() {
  stop_pids "${SERVER_PIDS[@]}"
  SERVER_PIDS=()
  CURRENT_LOGS=()
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [[ -n "$BENCH_WRAPPER_PID" ]]; then
    # kvs-bench is the wrapper's child: stop it first, then the wrapper.
    local child
    for child in $(pgrep -P "$BENCH_WRAPPER_PID" 2>/dev/null || true); do
      kill -TERM "$child" 2>/dev/null || true
    done
    stop_pids "$BENCH_WRAPPER_PID"
  fi
  stop_pids "${SERVER_PIDS[@]}"
  [[ -n "$WORK" && -d "$WORK" ]] && rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Starts "$@" in the background with output to $log, as a server of the system under test.
start_server() {
  local log="$1"; shift
  "$@" >"$log" 2>&1 </dev/null &
  SERVER_PIDS+=("$!")
  CURRENT_LOGS+=("$log")
}

# True when something accepts TCP connections on $1:$2.
port_in_use() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

require_free() {
  port_in_use "$1" "$2" && die "$1:$2 is already in use by another process; stop it first"
  return 0
}

# Polls `$@` until it succeeds, for at most HEALTH_TIMEOUT seconds; fails early when a server
# of the system under test died. On failure returns 1 with the reason in WAIT_ERROR.
WAIT_ERROR=""
wait_until() {
  local what="$1" deadline=$((SECONDS + HEALTH_TIMEOUT)) pid; shift
  until "$@" >/dev/null 2>&1; do
    for pid in "${SERVER_PIDS[@]}"; do
      if ! process_running "$pid"; then
        WAIT_ERROR="$what: a server process (PID $pid) exited at start-up"
        return 1
      fi
    done
    if ((SECONDS >= deadline)); then
      WAIT_ERROR="$what did not become healthy within ${HEALTH_TIMEOUT}s"
      return 1
    fi
    sleep 0.1
  done
}

# --- packages and build -----------------------------------------------------------------

ensure_packages() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' \
      || missing+=("$p")
  done
  ((${#missing[@]} == 0)) && return 0
  [[ $EUID -eq 0 ]] || die "missing packages (${missing[*]}) and not root to install them"
  log "installing missing packages: ${missing[*]}"
  # Another apt run on the machine holds the dpkg lock for a while: wait for it.
  apt-get -o DPkg::Lock::Timeout=300 update -q || die "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -q \
    --no-install-recommends "${missing[@]}" || die "apt-get install ${missing[*]} failed"
}

build() {
  local targets=(kvs-server)
  [[ -n "${KVS_BENCH:-}" ]] || targets+=(kvs-bench)
  log "building ${targets[*]} (Release) in ${BUILD_DIR#"$ROOT"/}"
  # Only configure and build: the tree may be shared with someone else's work, never wipe it.
  cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release >"$WORK/cmake.log" 2>&1 \
    || { tail -n 30 "$WORK/cmake.log" >&2; die "cmake configure failed"; }
  cmake --build "$BUILD_DIR" -j"$NPROC" --target "${targets[@]}" >"$WORK/build.log" 2>&1 \
    || { tail -n 30 "$WORK/build.log" >&2; die "build of ${targets[*]} failed"; }
  [[ -x "$SERVER_BIN" ]] || die "build succeeded but $SERVER_BIN is missing"
  # What was built (others may commit while this runs); this script's own outputs do not count
  # as changes to kvs.
  COMMIT="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
  if git -C "$ROOT" status --porcelain --untracked-files=no -- . ':!bench/run.sh' \
    ':!bench/RESULTS.md' ':!bench/throughput.png' 2>/dev/null | grep -q .; then
    COMMIT+=" (with uncommitted changes)"
  fi
  [[ -x "$BENCH_BIN" ]] || die "build succeeded but $BENCH_BIN is missing"
}

# --- CPU accounting ---------------------------------------------------------------------

# PID and all its descendants (nginx's master and workers), current at call time.
tree_pids() {
  local pid="$1" child
  echo "$pid"
  for child in $(pgrep -P "$pid" 2>/dev/null || true); do tree_pids "$child"; done
}

# TICKS = sum of utime+stime (all threads) of the given PIDs; vanished PIDs count 0.
# Builtins only (no fork), so sampling does not itself load the machine.
TICKS=0
read_ticks() {
  local p line f
  TICKS=0
  for p in "$@"; do
    read -r line 2>/dev/null <"/proc/$p/stat" || continue
    line="${line##*) }"             # drop "pid (comm) ": comm may contain spaces
    read -r -a f <<<"$line"
    TICKS=$((TICKS + f[11] + f[12])) # fields 14 and 15 of stat
  done
}

# From /proc/stat, all cores: TASK = ticks spent running processes (user, nice, system), IRQ =
# ticks in interrupt and softirq context. This kernel accounts IRQ time separately (charged to
# no process), and loopback networking runs its receive path there: at 200k req/s that is
# ~0.6 cores, a cost of the workload shared by server and client.
TASK=0
IRQ=0
read_machine() {
  local user nice system irq softirq
  read -r _ user nice system _ _ irq softirq _ </proc/stat
  TASK=$((user + nice + system))
  IRQ=$((irq + softirq))
}

# --- kvs-bench runs ---------------------------------------------------------------------

RESULT_ROWS=""   # TSV file: one line per run (see record_row)

# A command line for humans: paths relative to the repo root, the temp dir as <tmp>, words
# quoted only when the shell needs it.
show_cmd() {
  local a words=()
  for a in "$@"; do
    a="${a//"$ROOT"\//}"
    a="${a//"$WORK"/<tmp>}"
    if [[ "$a" =~ ^[A-Za-z0-9_,:=/.@+%-]*$ && "$a" != *"<tmp>"* ]]; then words+=("$a"); else words+=("'$a'"); fi
  done
  printf '%s' "${words[*]}"
}

# run_bench LABEL SYSTEM WORKLOAD MEASURED_SECONDS kvs-bench-args...
# Runs kvs-bench against the running system and records a row: throughput and latency from
# kvs-bench's JSON, CPU of the servers and of kvs-bench over the measured window. This machine
# is shared: when other processes used more than MAX_OTHER cores during the window, the run
# is repeated (up to RETRIES times) and the least disturbed attempt is kept.
run_bench() {
  local label="$1" system="$2" workload="$3" measured="$4"; shift 4
  local attempt best=0 best_other="" other
  COMMANDS+=("$(show_cmd "$BENCH_BIN" "$@" "--label=$label" "--json=$WORK/$label.json")")
  for ((attempt = 1; attempt <= RETRIES + 1; attempt++)); do
    bench_attempt "$label" "$attempt" "$measured" "$@"
    other="${ATTEMPT_CORES##* }"   # the last field
    if [[ -z "$best_other" ]] || awk -v o="$other" -v b="$best_other" 'BEGIN{exit !(o < b)}'; then
      best=$attempt best_other=$other
      cp "$WORK/$label.$attempt.json" "$WORK/$label.json"
      BEST_CORES="$ATTEMPT_CORES"
    fi
    awk -v o="$other" -v m="$MAX_OTHER" 'BEGIN{exit !(o > m)}' || break
    if ((attempt <= RETRIES && SECONDS - START_SECONDS < RETRY_BUDGET)); then
      warn "$label: other processes used $other cores during the run (> $MAX_OTHER); running it again"
    else
      warn "$label: disturbed (other processes used $other cores) after $attempt attempt(s); keeping attempt $best (other $best_other cores)"
      break
    fi
  done
  local srv bench irq
  read -r srv bench irq other <<<"$BEST_CORES"
  record_row "$label" "$system" "$workload" "$WORK/$label.json" "$srv" "$bench" "$other" "$best" "$irq"
}

# One kvs-bench run; sets ATTEMPT_CORES="server bench irq other" (cores used in the window: the
# last MEASURED seconds of the run, so preload and warm-up are left out), from samples of /proc
# taken every SAMPLE_PERIOD while it runs. irq = interrupt/softirq time (see read_machine);
# other = time of all processes minus ours minus kernel threads (loopback networking also runs
# in ksoftirqd/kworkers: cost of the workload, not disturbance) = other users of the machine.
ATTEMPT_CORES=""
BEST_CORES=""
bench_attempt() {
  local label="$1" attempt="$2" measured="$3"; shift 3
  local json="$WORK/$label.$attempt.json" out="$WORK/$label.$attempt.txt"
  local err="$WORK/$label.$attempt.err" timesf="$WORK/$label.$attempt.times"
  local cmd=("$BENCH_BIN" "$@" "--label=$label" "--json=$json")
  local servers kthreads bench_pid="" deadline rc=0 i
  rm -f "$json"
  mapfile -t servers < <(for i in "${SERVER_PIDS[@]}"; do tree_pids "$i"; done)
  mapfile -t kthreads < <(echo 2; pgrep -P 2)

  # The subshell runs kvs-bench as its child and then reports its children's CPU (`times`,
  # second line): kvs-bench's exact total user+sys, even though the process is gone by then.
  ( "${cmd[@]}" >"$out" 2>"$err"; rc=$?; times >"$timesf"; exit "$rc" ) &
  BENCH_WRAPPER_PID=$!
  deadline=$((SECONDS + WARMUP + measured + BENCH_SLACK))

  local -a s_t=() s_srv=() s_bench=() s_task=() s_irq=() s_kern=()
  local now
  while :; do
    [[ -z "$bench_pid" ]] && bench_pid="$(pgrep -P "$BENCH_WRAPPER_PID" 2>/dev/null | head -n 1 || true)"
    now="$EPOCHREALTIME"
    read_ticks "${servers[@]}"; s_srv+=("$TICKS")
    if [[ -n "$bench_pid" ]]; then read_ticks "$bench_pid"; s_bench+=("$TICKS"); else s_bench+=(-1); fi
    read_ticks "${kthreads[@]}"; s_kern+=("$TICKS")
    read_machine; s_task+=("$TASK"); s_irq+=("$IRQ")
    s_t+=("${now/,/.}")
    process_running "$BENCH_WRAPPER_PID" || break
    if ((SECONDS >= deadline)); then
      warn "$label: kvs-bench still running after $((WARMUP + measured + BENCH_SLACK))s; stopping it"
      [[ -n "$bench_pid" ]] && kill -TERM "$bench_pid" 2>/dev/null
      break
    fi
    sleep "$SAMPLE_PERIOD"
  done
  wait "$BENCH_WRAPPER_PID" || rc=$?
  BENCH_WRAPPER_PID=""
  ((rc == 0)) || { cat "$err" >&2; die "$label: kvs-bench exited with status $rc"; }
  [[ -s "$json" ]] || die "$label: kvs-bench wrote no JSON ($json)"

  # Window: from the last sample at least MEASURED seconds before the end, to the end.
  local last=$((${#s_t[@]} - 1)) first
  first="$(printf '%s\n' "${s_t[@]}" | awk -v m="$measured" '
      { t[NR - 1] = $1 } END { f = 0; for (i = NR - 1; i >= 0; i--) if (t[NR - 1] - t[i] >= m) { f = i; break }; print f }')"
  # kvs-bench's CPU at the end: from `times` (exact); at the window's start: from /proc.
  local bench_total
  bench_total="$(awk 'NR==2{ split($1,u,/[ms]/); split($2,s,/[ms]/); print u[1]*60+u[2]+s[1]*60+s[2] }' "$timesf")"
  ATTEMPT_CORES="$(awk -v t0="${s_t[first]}" -v t1="${s_t[last]}" -v hz="$CLK_TCK" \
    -v sv0="${s_srv[first]}" -v sv1="${s_srv[last]}" -v b0="${s_bench[first]}" \
    -v btot="$bench_total" -v u0="${s_task[first]}" -v u1="${s_task[last]}" \
    -v i0="${s_irq[first]}" -v i1="${s_irq[last]}" \
    -v k0="${s_kern[first]}" -v k1="${s_kern[last]}" 'BEGIN{
      dt = t1 - t0; if (dt <= 0) { print "0 0 0 0"; exit }
      srv = (sv1 - sv0) / hz / dt
      bench = (b0 < 0) ? btot / dt : (btot - b0 / hz) / dt
      irq = (i1 - i0) / hz / dt
      other = (u1 - u0 - (k1 - k0)) / hz / dt - srv - bench; if (other < 0) other = 0
      printf "%.2f %.2f %.2f %.2f", srv, bench, irq, other }')"
}

# jq helpers for kvs-bench's JSON.
JQ_LIB='
  def lat(p): (.[p + "_ms"] // .latency_ms[p] // 0);
  def errors: if (.errors | type) == "number" then .errors
              else (.transport_errors // ([(.errors // {})[]] | add) // 0) end;
  def non2xx: ((.status // .status_counts // {}) | to_entries
               | map(select(.key | test("^2") | not) | .value) | add // 0);
  def statuses: ((.status // .status_counts // {}) | to_entries
                 | map("\(.key)×\(.value)") | join(" "));
'

# Appends one TSV row: label system workload rps p50 p90 p99 p999 srv_cores bench_cores
# other_cores errors non2xx requests statuses attempt irq_cores
record_row() {
  local label="$1" system="$2" workload="$3" json="$4" srv="$5" bench="$6" other="$7"
  local attempt="$8" irq="$9" fields
  # The last JSON object in the file is this run's. Latencies flat (p50_ms) or nested
  # (latency_ms.p50); errors a number or per-kind counts (transport errors: no HTTP answer).
  fields="$(jq -s -r "$JQ_LIB"' last | [
      (.throughput_rps // 0), lat("p50"), lat("p90"), lat("p99"), (.p999_ms // .latency_ms.p99_9 // 0),
      errors, non2xx, (.requests // 0), statuses
    ] | @tsv' "$json")" || die "$label: cannot parse kvs-bench JSON $json"
  local rps p50 p90 p99 p999 errors non2xx requests statuses
  IFS=$'\t' read -r rps p50 p90 p99 p999 errors non2xx requests statuses <<<"$fields"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$label" "$system" \
    "$workload" "$rps" "$p50" "$p90" "$p99" "$p999" "$srv" "$bench" "$other" "$errors" \
    "$non2xx" "$requests" "$statuses" "$attempt" "$irq" >>"$RESULT_ROWS"
  printf '    %-16s %10.0f req/s  p50 %6.2f  p99 %6.2f  p99.9 %6.2f ms  cores: server %s bench %s irq %s other %s  errors %s  non-2xx %s\n' \
    "$label" "$rps" "$p50" "$p99" "$p999" "$srv" "$bench" "$irq" "$other" "$errors" "$non2xx"
}

# Column N of the row LABEL ("" when there is no such row).
row_field() { [[ -f "$RESULT_ROWS" ]] && awk -F'\t' -v l="$1" -v c="$2" '$1 == l { print $c }' "$RESULT_ROWS"; }
rps_of() { row_field "$1" 4; }

# ARGS = the kvs-bench options every run shares, for $1 measured seconds after $2 of warm-up.
ARGS=()
set_args() {
  ARGS=("--threads=$THREADS" "--connections=$CONNECTIONS" "--duration=$1" "--warmup=$2"
    "--keys=$KEYS" "--value-size=$VALUE_SIZE" "--timeout=$TIMEOUT_MS" --quiet)
}
# ... plus what every kvs run uses: the kvs protocol, causal metadata as set, keys preloaded.
set_kvs_args() {
  set_args "$1" "$2"
  ARGS+=(--protocol=kvs "--causal=$CAUSAL" --preload)
}

# --- nginx --------------------------------------------------------------------------------

NGINX_BODY='{"message":"Retrieved successfully","causal-metadata":"","value":"xxxxxxxx"}'

start_nginx() {
  local workers="$1" dir="$WORK/nginx-$1"
  mkdir -p "$dir"
  require_free 127.0.0.1 "$NGINX_PORT"
  # A fixed small JSON answer for any path, like kvs's GET reply; keep-alive without a
  # request cap (nginx closes after 1000 requests by default, which would make the load
  # generator reconnect), no access log (kvs logs no requests either); reuseport spreads the
  # connections evenly over the workers (without it one worker often took most of them, and
  # worker_processes auto measured anywhere between ~90k and ~130k req/s).
  cat >"$dir/nginx.conf" <<EOF
worker_processes $workers;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    keepalive_timeout 65;
    keepalive_requests 100000000;
    client_body_temp_path $dir/body;
    server {
        listen 127.0.0.1:$NGINX_PORT reuseport;
        default_type application/json;
        location / { return 200 '$NGINX_BODY'; }
    }
}
EOF
  log "nginx (worker_processes $workers) on 127.0.0.1:$NGINX_PORT"
  start_server "$dir/stderr.log" nginx -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" \
    -g 'daemon off;'
  CURRENT_LOGS+=("$dir/error.log")
  wait_until "nginx" curl -sf "http://127.0.0.1:$NGINX_PORT/" || die "$WAIT_ERROR"
  # One worker answering does not mean all are forked yet; CPU accounting needs them all.
  local want=$workers
  [[ "$workers" == auto ]] && want=$NPROC
  wait_until "nginx's $want workers" nginx_has_workers "${SERVER_PIDS[0]}" "$want" || die "$WAIT_ERROR"
}

nginx_has_workers() { (($(pgrep -c -P "$1") >= $2)); }

# wrk against a URL, as a cross-check of kvs-bench's own overhead; sets WRK_RPS (req/s).
WRK_RPS=""
run_wrk() {
  local label="$1" url="$2" out="$WORK/$1.wrk"
  local cmd=(wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" "$url")
  COMMANDS+=("$(show_cmd "${cmd[@]}")")
  timeout $((DURATION + 30)) "${cmd[@]}" >"$out" 2>&1 || die "$label: wrk failed: $(tail -n 3 "$out")"
  WRK_RPS="$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' "$out")"
}

WRK_NGINX=""
WRK_KVS=""
NGINX_BEST=""
bench_nginx() {
  local w
  for w in 1 auto; do
    start_nginx "$w"
    set_args "$DURATION" "$WARMUP"
    run_bench "nginx-w$w-get" "nginx (worker_processes $w)" "GET" "$DURATION" \
      "${ARGS[@]}" "--targets=127.0.0.1:$NGINX_PORT" --protocol=raw --path=/ --mix=get:100
    if [[ "$w" == 1 ]]; then
      run_wrk nginx-wrk "http://127.0.0.1:$NGINX_PORT/"
      WRK_NGINX="$WRK_RPS"
      log "    wrk cross-check (worker_processes 1): $WRK_NGINX req/s"
    fi
    stop_servers
  done
  # The faster of the two is the machine's HTTP ceiling: the stricter baseline.
  if awk -v a="$(rps_of nginx-w1-get)" -v b="$(rps_of nginx-wauto-get)" 'BEGIN{exit !(a >= b)}'; then
    NGINX_BEST=nginx-w1-get
  else
    NGINX_BEST=nginx-wauto-get
  fi
  log "nginx baseline: ${NGINX_BEST} ($(rps_of "$NGINX_BEST") req/s)"
}

# --- kvs ----------------------------------------------------------------------------------

# The HTTP front end a node runs with by default: config/kvs.properties, else built-in.
KVS_FRONTEND=""
kvs_default_frontend() {
  local key="$1" value
  value="$(awk -F= -v k="$key" '{ gsub(/[[:space:]]/, "", $1) } $1 == k { gsub(/[[:space:]]/, "", $2); print $2 }' \
    "$ROOT/config/kvs.properties" 2>/dev/null | tail -n 1)"
  [[ -n "$value" ]] ||
    value="$("$SERVER_BIN" --help 2>&1 | sed -n "s/^ *$key (env [A-Z_]*, default \([^)]*\)).*/\1/p" | head -n 1)"
  echo "$value"
}

kvs_healthy() { curl -sf --max-time 2 "http://$1/health" | grep -q '"ready":true'; }

# start_kvs_nodes SHARD_COUNT ADDRESS... [-- extra env]: one kvs-server per address, with a
# clean environment (no stray KVS_* of the caller changes what is measured). Returns 1 (reason
# in WAIT_ERROR) when a node does not become ready; the caller decides whether that is fatal.
start_kvs_nodes() {
  local shards="$1"; shift
  local addrs=() extra=() a view
  while (($#)); do
    [[ "$1" == -- ]] && { shift; extra=("$@"); break; }
    addrs+=("$1"); shift
  done
  view="$(IFS=,; echo "${addrs[*]}")"
  for a in "${addrs[@]}"; do
    require_free "${a%:*}" "${a##*:}"
    start_server "$WORK/kvs-${a//[:.]/_}-$RANDOM.log" env -i PATH="$PATH" \
      SOCKET_ADDRESS="$a" VIEW="$view" SHARD_COUNT="$shards" KVS_HTTP_BIND="${a%:*}" \
      "${extra[@]}" "$SERVER_BIN"
  done
  for a in "${addrs[@]}"; do wait_until "kvs node $a" kvs_healthy "$a" || return 1; done
}

bench_kvs_single() {
  local addr="127.0.0.1:$KVS_PORT"
  log "kvs single node on $addr"
  start_kvs_nodes 1 "$addr" || die "$WAIT_ERROR"
  set_kvs_args "$DURATION" "$WARMUP"
  run_bench kvs1-get "kvs 1 node" GET "$DURATION" "${ARGS[@]}" "--targets=$addr" --mix=get:100
  run_bench kvs1-put "kvs 1 node" PUT "$DURATION" "${ARGS[@]}" "--targets=$addr" --mix=put:100
  # The same cross-check as for nginx: wrk GETs one key kvs-bench preloaded (key name from
  # kvs-bench's JSON when it reports one, else a key PUT here).
  curl -sf -X PUT -H 'Content-Type: application/json' \
    -d "{\"value\":\"$(head -c "$VALUE_SIZE" /dev/zero | tr '\0' x)\",\"causal-metadata\":\"\"}" \
    "http://$addr/key-value-store/wrk-key" >/dev/null || die "PUT of wrk-key failed"
  run_wrk kvs1-wrk "http://$addr/key-value-store/wrk-key"
  WRK_KVS="$WRK_RPS"
  log "    wrk cross-check (GET one key): $WRK_KVS req/s"
  if part sweep; then bench_sweep "$addr"; fi
  stop_servers
}

SWEEP_DONE=""
bench_sweep() {
  local addr="$1" json="$WORK/sweep.json" out="$WORK/sweep.txt" plot_args=() cmd
  log "    connection sweep $SWEEP (GET, ${SWEEP_DURATION}s each)"
  # kvs-bench writes FILE.dat and FILE.gp next to the PNG: draw in the temp dir, keep the PNG.
  command -v gnuplot >/dev/null && plot_args=("--plot=$WORK/throughput.png")
  cmd=("$BENCH_BIN" "--threads=$THREADS" "--duration=$SWEEP_DURATION" --warmup=1
    "--keys=$KEYS" "--value-size=$VALUE_SIZE" "--timeout=$TIMEOUT_MS" --protocol=kvs
    "--causal=$CAUSAL" --preload "--targets=$addr" --mix=get:100 "--sweep=connections:$SWEEP"
    --label=kvs1-sweep "--json=$json" --quiet "${plot_args[@]}")
  COMMANDS+=("$(show_cmd "${cmd[@]}")")
  local points
  points="$(tr -cd , <<<"$SWEEP" | wc -c)"
  timeout $(((points + 1) * (SWEEP_DURATION + 1) + BENCH_SLACK)) "${cmd[@]}" >"$out" 2>&1 \
    || die "sweep failed: $(tail -n 5 "$out")"
  if [[ -s "$WORK/throughput.png" ]]; then cp "$WORK/throughput.png" "$PLOT"; fi
  SWEEP_DONE=1
}

bench_kvs_replica3() {
  local addrs=("127.0.0.2:$KVS_PORT" "127.0.0.3:$KVS_PORT" "127.0.0.4:$KVS_PORT") targets
  targets="$(IFS=,; echo "${addrs[*]}")"
  log "kvs 3-replica shard on ${targets}"
  start_kvs_nodes 1 "${addrs[@]}" || die "$WAIT_ERROR"
  set_kvs_args "$DURATION" "$WARMUP"
  run_bench kvs3-get "kvs 3 replicas, 1 shard" GET "$DURATION" "${ARGS[@]}" "--targets=$targets" --mix=get:100
  run_bench kvs3-put "kvs 3 replicas, 1 shard" PUT "$DURATION" "${ARGS[@]}" "--targets=$targets" --mix=put:100
  stop_servers
}

bench_kvs_cluster6() {
  local addrs=() i targets
  for i in 2 3 4 5 6 7; do addrs+=("127.0.0.$i:$KVS_PORT"); done
  targets="$(IFS=,; echo "${addrs[*]}")"
  log "kvs 6 nodes, 2 shards on 127.0.0.2-7:$KVS_PORT"
  start_kvs_nodes 2 "${addrs[@]}" || die "$WAIT_ERROR"
  set_kvs_args "$DURATION" "$WARMUP"
  run_bench kvs6-get "kvs 6 nodes, 2 shards" GET "$DURATION" "${ARGS[@]}" "--targets=$targets" --mix=get:100
  run_bench kvs6-put "kvs 6 nodes, 2 shards" PUT "$DURATION" "${ARGS[@]}" "--targets=$targets" --mix=put:100
  stop_servers
}

# Server threads vs throughput, one node, short runs: event loops of the epoll front end,
# threads of the POCO HTTPServer front end.
SCALE_FAILED=()   # "setting<TAB>why" of settings the node did not start with
scale_env() {
  case "$1" in
    epoll:*) echo "KVS_HTTP_FRONTEND=epoll KVS_HTTP_LOOPS=${1#epoll:}" ;;
    poco:*) echo "KVS_HTTP_FRONTEND=poco KVS_HTTP_THREADS=${1#poco:}" ;;
    *) die "BENCH_SCALE: '$1' is not epoll:N or poco:N" ;;
  esac
}
bench_scaling() {
  local addr="127.0.0.1:$KVS_PORT" setting env_words
  log "kvs single node, server threads: $SCALE (${SCALE_DURATION}s runs)"
  for setting in ${SCALE//,/ }; do
    read -r -a env_words <<<"$(scale_env "$setting")"
    if ! start_kvs_nodes 1 "$addr" -- "${env_words[@]}"; then
      # Part of what this table shows: a setting the server cannot run with.
      local why
      why="$(grep -h -m1 'error' "${CURRENT_LOGS[@]}" 2>/dev/null | cut -c1-200 || true)"
      warn "${env_words[*]}: ${WAIT_ERROR}${why:+: $why}"
      SCALE_FAILED+=("$setting"$'\t'"${why:-$WAIT_ERROR}")
      stop_servers
      continue
    fi
    set_kvs_args "$SCALE_DURATION" 1
    local tag="${setting/:/-}"
    run_bench "scale-$tag-get" "kvs 1 node, ${env_words[*]}" GET "$SCALE_DURATION" \
      "${ARGS[@]}" "--targets=$addr" --mix=get:100
    run_bench "scale-$tag-put" "kvs 1 node, ${env_words[*]}" PUT "$SCALE_DURATION" \
      "${ARGS[@]}" "--targets=$addr" --mix=put:100
    stop_servers
  done
}

# Interleaved rounds behind the ratios to nginx: nginx and one kvs node are both up (the idle
# one uses no CPU) and the runs alternate nginx GET, kvs GET, kvs PUT, PAIR_ROUNDS times. The
# ratios use the medians, which a slow moment of this shared machine moves far less than it
# moves one run of each system minutes apart.
PAIR_DONE=""
PAIR_WORKERS=""
bench_paired() {
  local addr="127.0.0.1:$KVS_PORT" r
  PAIR_WORKERS=1
  [[ "$NGINX_BEST" == nginx-wauto-get ]] && PAIR_WORKERS=auto
  log "paired rounds: nginx (worker_processes $PAIR_WORKERS) GET, kvs GET, kvs PUT; $PAIR_ROUNDS rounds of ${PAIR_DURATION}s runs"
  start_nginx "$PAIR_WORKERS"
  start_kvs_nodes 1 "$addr" || die "$WAIT_ERROR"
  for ((r = 1; r <= PAIR_ROUNDS; r++)); do
    set_args "$PAIR_DURATION" 1
    run_bench "pair-nginx-r$r" "nginx (worker_processes $PAIR_WORKERS), round $r" GET \
      "$PAIR_DURATION" "${ARGS[@]}" "--targets=127.0.0.1:$NGINX_PORT" --protocol=raw --path=/ \
      --mix=get:100
    set_kvs_args "$PAIR_DURATION" 1
    run_bench "pair-kvs-get-r$r" "kvs 1 node, round $r" GET "$PAIR_DURATION" "${ARGS[@]}" \
      "--targets=$addr" --mix=get:100
    run_bench "pair-kvs-put-r$r" "kvs 1 node, round $r" PUT "$PAIR_DURATION" "${ARGS[@]}" \
      "--targets=$addr" --mix=put:100
  done
  stop_servers
  PAIR_DONE=1
}

# Median req/s of the rows whose label starts with $1 ("" when there are none).
median_rps() {
  local values=()
  mapfile -t values < <(awk -F'\t' -v p="$1" 'index($1, p) == 1 { print $4 }' "$RESULT_ROWS" | sort -g)
  local n=${#values[@]}
  ((n > 0)) || return 0
  if ((n % 2)); then
    printf '%.0f' "${values[n / 2]}"
  else
    awk -v a="${values[n / 2 - 1]}" -v b="${values[n / 2]}" 'BEGIN { printf "%.0f", (a + b) / 2 }'
  fi
}

# The two ratios to nginx: from the paired medians when they ran, else from single runs.
nginx_ratio_lines() {
  if [[ -n "$PAIR_DONE" ]]; then
    ratio_values "kvs 1 node GET / nginx GET (medians of $PAIR_ROUNDS paired rounds)" \
      "$(median_rps pair-kvs-get-)" "$(median_rps pair-nginx-)" 0.8
    ratio_values "kvs 1 node PUT / nginx GET (medians of $PAIR_ROUNDS paired rounds)" \
      "$(median_rps pair-kvs-put-)" "$(median_rps pair-nginx-)" 0.6
  elif [[ -n "$NGINX_BEST" ]]; then
    ratio_line "kvs 1 node GET / nginx GET" kvs1-get "$NGINX_BEST" 0.8
    ratio_line "kvs 1 node PUT / nginx GET" kvs1-put "$NGINX_BEST" 0.6
  fi
}

# --- etcd -------------------------------------------------------------------------------

etcd_all_healthy() {
  local p
  for p in "${ETCD_CLIENT_PORTS[@]}"; do
    curl -sf --max-time 2 "http://127.0.0.1:$p/health" | grep -q '"health":"true"' || return 1
  done
}

ETCD_VERSION=""
ETCD_FS=""
bench_etcd() {
  local i cluster="" targets="" dir
  ETCD_VERSION="$(etcd --version 2>/dev/null | awk '/etcd Version/ { print $3 }')"
  for i in 0 1 2; do
    cluster+="${cluster:+,}m$((i + 1))=http://127.0.0.1:${ETCD_PEER_PORTS[i]}"
    targets+="${targets:+,}127.0.0.1:${ETCD_CLIENT_PORTS[i]}"
  done
  ETCD_FS="$(df -T "$WORK" 2>/dev/null | awk 'NR == 2 { print $2 " (" $1 ")" }')"
  log "etcd $ETCD_VERSION: 3 members on 127.0.0.1:${ETCD_CLIENT_PORTS[0]}-${ETCD_CLIENT_PORTS[2]}"
  for i in 0 1 2; do
    dir="$WORK/etcd/m$((i + 1))"
    mkdir -p "$dir"
    require_free 127.0.0.1 "${ETCD_CLIENT_PORTS[i]}"
    require_free 127.0.0.1 "${ETCD_PEER_PORTS[i]}"
    # Default durability (WAL fsync per commit) on the same disk kvs would use: that is etcd
    # as deployed. Clean environment: no ETCD_* of the caller.
    start_server "$dir.log" env -i PATH="$PATH" etcd --name "m$((i + 1))" --data-dir "$dir" \
      --listen-client-urls "http://127.0.0.1:${ETCD_CLIENT_PORTS[i]}" \
      --advertise-client-urls "http://127.0.0.1:${ETCD_CLIENT_PORTS[i]}" \
      --listen-peer-urls "http://127.0.0.1:${ETCD_PEER_PORTS[i]}" \
      --initial-advertise-peer-urls "http://127.0.0.1:${ETCD_PEER_PORTS[i]}" \
      --initial-cluster "$cluster" --initial-cluster-state new \
      --initial-cluster-token kvs-bench --logger=zap --log-level=warn
  done
  wait_until "etcd cluster" etcd_all_healthy || die "$WAIT_ERROR"
  # The v3 JSON gateway: /v3/ since 3.4 (3.3 also /v3beta/). Check it answers before loading.
  curl -sf -X POST -d '{"key":"a3ZzLWJlbmNo","value":"MQ=="}' \
    "http://127.0.0.1:${ETCD_CLIENT_PORTS[0]}/v3/kv/put" >/dev/null \
    || die "etcd's v3 JSON gateway (/v3/kv/put) does not answer"
  set_args "$DURATION" "$WARMUP"
  run_bench etcd-get "etcd $ETCD_VERSION, 3 members" GET "$DURATION" "${ARGS[@]}" --protocol=etcd \
    --preload "--targets=$targets" --mix=get:100
  run_bench etcd-put "etcd $ETCD_VERSION, 3 members" PUT "$DURATION" "${ARGS[@]}" --protocol=etcd \
    --preload "--targets=$targets" --mix=put:100
  stop_servers
}

# --- memory -------------------------------------------------------------------------------

vm_rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

MEM_LINE=""
bench_memory() {
  local addr="127.0.0.1:$KVS_PORT" pid before after count json="$WORK/memory.json" cmd
  log "memory: one kvs node, $MEM_KEYS keys x $VALUE_SIZE-byte values"
  start_kvs_nodes 1 "$addr" || die "$WAIT_ERROR"
  pid="${SERVER_PIDS[0]}"
  before="$(vm_rss_kb "$pid")"
  # Every key of the key space written once (--preload), nothing else measured.
  cmd=("$BENCH_BIN" "--threads=$THREADS" "--connections=$CONNECTIONS" "--keys=$MEM_KEYS"
    "--value-size=$VALUE_SIZE" "--timeout=$TIMEOUT_MS" --protocol=kvs --causal=off --preload
    --requests=1 --warmup=0 --mix=get:100 "--targets=$addr" --label=memory "--json=$json" --quiet)
  COMMANDS+=("$(show_cmd "${cmd[@]}")")
  local t0=$SECONDS
  timeout "$MEM_TIMEOUT" "${cmd[@]}" >"$WORK/memory.txt" 2>&1 \
    || die "memory preload failed or took over ${MEM_TIMEOUT}s: $(tail -n 5 "$WORK/memory.txt")"
  local took=$((SECONDS - t0))
  sleep 1   # let in-flight work settle before reading RSS
  after="$(vm_rss_kb "$pid")"
  count="$(curl -sf "http://$addr/key-value-store-shard/shard-id-key-count/0" | jq -r '.["shard-id-key-count"]')"
  # kvs-bench keys are "<prefix><index>"; their total length is computed from the key format
  # kvs-bench reports (key_prefix), else assumed "key" + decimal index.
  local prefix
  prefix="$(jq -s -r 'last | .key_prefix // "key"' "$json" 2>/dev/null || echo key)"
  local key_bytes
  key_bytes="$(awk -v n="$count" -v p="${#prefix}" 'BEGIN{
      s = 0; lo = 0
      for (d = 1; lo < n; d++) { hi = (10 ^ d < n ? 10 ^ d : n); s += (hi - lo) * (p + d); lo = hi }
      printf "%d", s }')"
  MEM_LINE="$(awk -v b="$before" -v a="$after" -v n="$count" -v kb="$key_bytes" -v v="$VALUE_SIZE" \
    -v took="$took" 'BEGIN{
      raw = kb + n * v
      printf "%d\t%.1f\t%.1f\t%.1f\t%.2f\t%.2f\t%d", n, raw / 1048576, b / 1024, a / 1024, a * 1024 / raw, (a - b) * 1024 / raw, took }')"
  local f; IFS=$'\t' read -r -a f <<<"$MEM_LINE"
  log "    ${f[0]} keys, raw ${f[1]} MiB; RSS ${f[2]} -> ${f[3]} MiB; RSS/raw ${f[4]} (growth/raw ${f[5]}); preload ${f[6]}s"
  stop_servers
}

# --- report -------------------------------------------------------------------------------

# ratio A_LABEL B_LABEL TARGET → "x.xx" and met/not met
ratio_line() { ratio_values "$1" "$(rps_of "$2")" "$(rps_of "$3")" "$4"; }

ratio_values() {
  local name="$1" ra="$2" rb="$3" target="$4"
  if [[ -z "$ra" || -z "$rb" ]]; then
    printf '| %s | — | ≥ %s× | not measured |\n' "$name" "$target"
    return
  fi
  awk -v n="$name" -v a="$ra" -v b="$rb" -v t="$target" 'BEGIN{
    r = (b > 0) ? a / b : 0
    printf "| %s | %.0f / %.0f = **%.2f×** | ≥ %s× | %s |\n", n, a, b, r, t, (r >= t ? "met" : "**not met**") }'
}

write_results() {
  local tmp="$RESULTS.tmp" cpu_model kernel
  cpu_model="$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
  kernel="$(uname -sr)"
  {
    echo "# kvs benchmark results"
    echo
    echo "Written by \`bench/run.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC') in $(((SECONDS - START_SECONDS) / 60)) min $(((SECONDS - START_SECONDS) % 60)) s."
    echo
    echo "- Machine: $NPROC cores, $cpu_model, $kernel, $(awk '/^MemTotal/ { printf "%.1f GiB RAM", $2 / 1048576 }' /proc/meminfo)"
    echo "- kvs: commit $COMMIT, Release build in \`${BUILD_DIR#"$ROOT"/}\`; nginx $(nginx -v 2>&1 | sed 's/.*nginx\///'); etcd ${ETCD_VERSION:-$(etcd --version 2>/dev/null | awk '/etcd Version/ { print $3 }')}"
    echo "- Load: kvs-bench \`--threads=$THREADS --connections=$CONNECTIONS\`, ${WARMUP} s warm-up + ${DURATION} s measured per run, $KEYS keys preloaded (\`--preload\`), values of $VALUE_SIZE bytes, kvs clients \`--causal=$CAUSAL\` (each connection passes along the metadata it got). Server and load generator share the $NPROC cores: one load-generator thread (at most one core) leaves the server the rest; $CONNECTIONS connections keep every server busy. kvs runs the configuration in effect (${KVS_FRONTEND:-?})."
    echo "- Every system runs alone, on loopback; same load generator for all. Load is spread over every node of a cluster (\`--targets\` lists them all)."
    echo "- CPU: utime+stime from \`/proc/<pid>/stat\` of every server process (nginx master and workers), sampled every ${SAMPLE_PERIOD} s, over the last ${DURATION} s of the run (preload and warm-up excluded), divided by wall time = cores used. kvs-bench's CPU the same way (its final total from the shell's \`times\`). \"irq\" = interrupt + softirq time of the whole machine from \`/proc/stat\` (this kernel charges it to no process; loopback TCP receive runs there, for server and client alike). \"Other\" = CPU of every other process except kernel threads in that window: other users of this shared machine (builds, tests). A run with other > ${MAX_OTHER} is repeated (up to ${RETRIES} times, least disturbed kept)."
    echo
    echo "## Results"
    echo
    echo "| system | workload | req/s | p50 ms | p90 ms | p99 ms | p99.9 ms | server cores | bench cores | irq cores | other cores | errors | non-2xx |"
    echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    awk -F'\t' -v m="$MAX_OTHER" '$1 !~ /^(scale|pair)-/ {
      printf "| %s | %s | %.0f | %.2f | %.2f | %.2f | %.2f | %s | %s | %s | %s%s | %s | %s |\n", $2, $3, $4, $5, $6, $7, $8, $9, $10, $17, $11, ($11 > m ? " ⚠" : ""), $12, $13 }' "$RESULT_ROWS"
    echo
    local repeated
    repeated="$(awk -F'\t' -v m="$MAX_OTHER" '$16 > 1 || $11 > m { printf "%s%s (kept attempt %d, other %s cores)", sep, $1, $16, $11; sep = ", " }' "$RESULT_ROWS")"
    if [[ -n "$repeated" ]]; then
      echo "Runs disturbed by other processes on the machine (repeated up to $RETRIES times, least disturbed kept; ⚠ = still above $MAX_OTHER cores): $repeated."
      echo
    fi
    echo "Status codes per run: $(awk -F'\t' '$1 !~ /^(scale|pair)-/ { printf "%s%s: %s", sep, $1, ($15 == "" ? "—" : $15); sep = "; " }' "$RESULT_ROWS")."
    echo
    echo "## Targets"
    echo
    echo "| ratio | measured | target | |"
    echo "|---|---|---|---|"
    nginx_ratio_lines
    ratio_line "kvs 3-replica PUT / etcd 3-member PUT" kvs3-put etcd-put 10
    echo
    if [[ -n "$PAIR_DONE" ]]; then
      echo "The ratios to nginx come from $PAIR_ROUNDS interleaved rounds (nginx with worker_processes $PAIR_WORKERS, the faster setting in the runs above, and one kvs node, both up; each round runs nginx GET, kvs GET, kvs PUT for ${PAIR_DURATION} s after 1 s of warm-up), so that the machine's slow and fast moments fall on both systems alike:"
      echo
      echo "| round | nginx GET req/s | kvs GET req/s | kvs PUT req/s |"
      echo "|---:|---:|---:|---:|"
      local r
      for ((r = 1; r <= PAIR_ROUNDS; r++)); do
        echo "| $r | $(rps_of "pair-nginx-r$r" | awk '{ printf "%.0f", $1 }') | $(rps_of "pair-kvs-get-r$r" | awk '{ printf "%.0f", $1 }') | $(rps_of "pair-kvs-put-r$r" | awk '{ printf "%.0f", $1 }') |"
      done
      echo "| median | $(median_rps pair-nginx-) | $(median_rps pair-kvs-get-) | $(median_rps pair-kvs-put-) |"
      echo
    fi
    if [[ -n "$NGINX_BEST" ]]; then
      echo "The nginx baseline is the faster of worker_processes 1 and auto (=$NPROC): **$NGINX_BEST** ($(rps_of "$NGINX_BEST" | awk '{ printf "%.0f", $1 }') req/s; worker_processes 1: $(rps_of nginx-w1-get | awk '{ printf "%.0f", $1 }'), auto: $(rps_of nginx-wauto-get | awk '{ printf "%.0f", $1 }'))."
      echo
      echo "Cross-check of the load generator with wrk (\`-t$THREADS -c$CONNECTIONS\`, ${DURATION} s): nginx (worker_processes 1) ${WRK_NGINX:-—} req/s with wrk vs $(rps_of nginx-w1-get | awk '{ printf "%.0f", $1 }') with kvs-bench; kvs 1 node GET of one key ${WRK_KVS:-—} req/s with wrk (no metadata, one key) vs $(rps_of kvs1-get | awk '{ printf "%.0f", $1 }') with kvs-bench."
      echo
    fi
    if grep -q '^scale-' "$RESULT_ROWS" 2>/dev/null || ((${#SCALE_FAILED[@]})); then
      echo "## Scaling with server threads"
      echo
      echo "One kvs node, same load (${CONNECTIONS} connections), ${SCALE_DURATION} s measured (1 s warm-up) per run. epoll rows: the default front end with \`KVS_HTTP_LOOPS\` event loops (its worker threads only serve requests that may wait, none here). poco rows: \`KVS_HTTP_FRONTEND=poco\` with \`KVS_HTTP_THREADS\` threads."
      echo
      echo "| front end | threads | GET req/s | GET p99 ms | GET errors | PUT req/s | PUT p99 ms | PUT errors | server cores (GET/PUT) |"
      echo "|---|---:|---:|---:|---:|---:|---:|---:|---|"
      local setting
      for setting in ${SCALE//,/ }; do
        local failed tag="${setting/:/-}"
        failed="$(printf '%s\n' "${SCALE_FAILED[@]}" | awk -F'\t' -v t="$setting" '$1 == t { print $2 }')"
        if [[ -n "$failed" ]]; then
          echo "| ${setting%%:*} | ${setting#*:} | did not start: \`${failed//|/\\|}\` | | | | | | |"
          continue
        fi
        awk -F'\t' -v t="$tag" -v fe="${setting%%:*}" -v n="${setting#*:}" '
          $1 == "scale-" t "-get" { g = sprintf("%.0f | %.2f | %d", $4, $7, $12 + $13); gc = $9 }
          $1 == "scale-" t "-put" { p = sprintf("%.0f | %.2f | %d", $4, $7, $12 + $13); pc = $9 }
          END { if (g != "" || p != "") printf "| %s | %s | %s | %s | %s / %s |\n", fe, n, g, p, gc, pc }' "$RESULT_ROWS"
      done
      echo
      echo "Errors = requests with no answer within ${TIMEOUT_MS} ms + non-2xx answers. A POCO thread holds one keep-alive connection for as long as it stays open, so with fewer poco threads than the ${CONNECTIONS} connections the surplus connections wait unserved and time out; GETs then also find (404) the keys whose preload PUT went to such a connection. Latency percentiles cover answered requests only. The epoll front end serves any number of connections with any number of loops."
      echo
    fi
    if [[ -n "$SWEEP_DONE" ]]; then
      echo "## Connection sweep (kvs 1 node, GET)"
      echo
      echo "\`--sweep=connections:$SWEEP\`, ${SWEEP_DURATION} s per point (1 s warm-up), default server configuration (${KVS_FRONTEND:-?}). Not repeated when disturbed: read it as a shape, not as exact numbers."
      echo
      echo "| connections | req/s | p50 ms | p99 ms | p99.9 ms | errors + non-2xx |"
      echo "|---:|---:|---:|---:|---:|---:|"
      jq -r "$JQ_LIB"' (if type == "array" then .[] else . end)
          | "| \(.connections // .label) | \(.throughput_rps | floor) | \(lat("p50")) | \(lat("p99")) | \(.p999_ms // .latency_ms.p99_9) | \(errors + non2xx) |"' \
        "$WORK/sweep.json" 2>/dev/null || echo "| (sweep JSON unreadable) | | | | | |"
      echo
      if [[ -f "$PLOT" ]]; then echo "![throughput vs connections](throughput.png)"; echo; fi
    fi
    if [[ -n "$MEM_LINE" ]]; then
      local f; IFS=$'\t' read -r -a f <<<"$MEM_LINE"
      echo "## Memory"
      echo
      echo "One kvs node (default settings), every key of a ${MEM_KEYS}-key space written once with a ${VALUE_SIZE}-byte value (kvs-bench \`--preload\`, took ${f[6]} s)."
      echo
      echo "| keys stored | raw key+value bytes | RSS before | RSS after | RSS after / raw | (RSS after − before) / raw | target ≤ 2× |"
      echo "|---:|---:|---:|---:|---:|---:|---|"
      echo "| ${f[0]} | ${f[1]} MiB | ${f[2]} MiB | ${f[3]} MiB | **${f[4]}×** | ${f[5]}× | $(awk -v r="${f[4]}" 'BEGIN{ print (r <= 2 ? "met" : "**not met**") }') |"
      echo
    fi
    echo "## Notes"
    echo
    echo "- nginx answers GET with a fixed body and does no work: it is the machine's HTTP ceiling, and both kvs ratios (GET and PUT) are against nginx's GET. On $NPROC shared cores its number is bounded by the whole machine (server + load generator + irq ≈ all cores), not by nginx alone."
    echo "- etcd runs with its default durability: every commit fsyncs its WAL, data dirs on ${ETCD_FS:-?} under /tmp. kvs keeps data in memory only (README: no write-ahead log yet), so the PUT ratio compares different durability."
    echo "- etcd GET is \`/v3/kv/range\` with default (linearizable) reads: each goes through the leader's read index."
    echo "- A kvs PUT is acknowledged by the replica that receives it and broadcast to its shard peers in the background; that broadcast (and, in the 6-node cluster, forwarding to the owning shard) runs on the same $NPROC cores, so cluster numbers show the per-request cost of replication, not a distributed speed-up."
    echo
    echo "## Commands"
    echo
    echo "Run by \`bench/run.sh\` (targets and paths as used; each kvs-bench run also got \`--label\` and \`--json\`):"
    echo
    echo '```sh'
    printf '%s\n' "${COMMANDS[@]}"
    echo '```'
  } >"$tmp"
  mv "$tmp" "$RESULTS"
}

print_summary() {
  echo
  log "results (req/s)"
  awk -F'\t' '{ printf "    %-34s %-5s %10.0f req/s  p99 %7.2f ms  server %s cores  bench %s cores  errors %d\n", $2, $3, $4, $7, $9, $10, $12 + $13 }' "$RESULT_ROWS"
  log "ratios"
  {
    nginx_ratio_lines
    ratio_line "kvs 3-replica PUT / etcd 3-member PUT" kvs3-put etcd-put 10
  } | sed 's/\*\*//g; s/^| /    /; s/ |$//; s/ | /  /g'
  if [[ -n "$MEM_LINE" ]]; then
    awk -F'\t' '{ printf "    memory: RSS/raw %s× (target ≤ 2×)\n", $5 }' <<<"$MEM_LINE"
  fi
  log "wrote ${RESULTS#"$ROOT"/} in $((SECONDS - START_SECONDS))s"
}

main() {
  [[ $EUID -eq 0 ]] || warn "not root: package installation will fail if anything is missing"
  ensure_packages "${BUILD_PKGS[@]}" "${BENCH_PKGS[@]}"
  WORK="$(mktemp -d /tmp/kvs-bench.XXXXXX)"
  RESULT_ROWS="$WORK/rows.tsv"
  : >"$RESULT_ROWS"
  # Servers start here: kvs-server would read a config/kvs.properties from the working
  # directory before the repo's, and the caller's directory may hold anything.
  cd "$WORK"
  build
  KVS_FRONTEND="$(kvs_default_frontend kvs.http.frontend)"
  if [[ "$KVS_FRONTEND" == poco ]]; then
    KVS_FRONTEND="POCO HTTPServer, $(kvs_default_frontend kvs.http.threads) threads"
  else
    local loops
    loops="$(kvs_default_frontend kvs.http.loops)"
    [[ "$loops" == 0 ]] && loops="half the cores ($((NPROC / 2 > 0 ? NPROC / 2 : 1)))"
    KVS_FRONTEND="epoll front end, event loops: $loops"
  fi
  if part nginx; then bench_nginx; fi
  if part single || part sweep; then bench_kvs_single; fi
  if part paired; then bench_paired; fi
  if part replica3; then bench_kvs_replica3; fi
  if part cluster6; then bench_kvs_cluster6; fi
  if part etcd; then bench_etcd; fi
  if part scaling; then bench_scaling; fi
  if part memory; then bench_memory; fi
  write_results
  print_summary
}

main "$@"
