#!/usr/bin/env bash
# Benchmarks kvs against nginx (the machine's HTTP ceiling) and etcd (a replicated store),
# all driven by the same load generator, kvs-bench, and writes bench/RESULTS.md.
#
#   bench/run.sh                     as root on Debian, from a fresh clone, from any directory
#   bench/run.sh --only storage      only some parts (comma-separated names of BENCH_PARTS)
#
# What it does, one system at a time (all traffic on loopback):
#   1. installs what is missing (apt-get update only then), builds kvs-server and kvs-bench
#      (Release) into build-bench/;
#   2. nginx-light returning a fixed JSON body (worker_processes 1 and auto), GET only,
#      plus a wrk cross-check of the load generator;
#   3. kvs: one node; a 3-replica shard on 127.0.0.2-4; 6 nodes in 2 shards on 127.0.0.2-7;
#      GET-only and PUT-only, load spread over every node (the 6 nodes also through one node,
#      with CPU per process, side by side with the single node of the same run, and forwarded
#      vs local GET latency at 70% of peak: cluster6 runs the single node too); then interleaved rounds of nginx
#      GET / kvs GET / kvs PUT (both servers up, one loaded at a time) for the nginx ratios;
#   4. etcd: 3 members on 127.0.0.1, v3 JSON gateway, GET (range) and PUT;
#   5. kvs one node: throughput vs server threads (epoll loops, poco threads), and a
#      kvs-bench connection sweep (+ plot);
#   6. memory: RSS of one kvs node holding 1,000,000 keys of 100-byte values;
#   7. storage (durability): fsync latency of the disk; PUT req/s of one node and of a
#      3-replica shard with KVS_STORAGE_MODE=memory and disk with fsync never/interval/always,
#      and of a 1-member etcd, in interleaved rounds; restart-to-ready of a node holding 1M
#      keys (after SIGKILL and after SIGTERM); RSS at 1M keys in disk mode; bytes on disk vs
#      live data after an overwrite-heavy run; PUT latency while a snapshot runs;
#   and prints the results and ratios, and writes bench/RESULTS.md. A run of only the storage
#   part (--only storage) replaces just the storage section of an existing RESULTS.md.
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
#   BENCH_PARTS            which parts to run (also --only)
#                          [nginx,single,paired,replica3,cluster6,etcd,scaling,sweep,memory,storage]
#   BENCH_STORAGE_ROUNDS   interleaved rounds of the storage PUT comparison [3]
#   BENCH_STORAGE_DURATION measured seconds per storage PUT run (1 s warm-up) [5]
#   BENCH_STORAGE_RETRIES  repeats of a disturbed storage PUT run (rounds + medians instead) [0]
#   BENCH_STORAGE_MODES    storage modes compared [memory,never,interval,always]
#   BENCH_STORAGE_KEYS     keys of the restart / disk-mode RSS check [1000000]
#   BENCH_STORAGE_READY_TIMEOUT  seconds a restarted node may take to be ready [180]
#   BENCH_OVERWRITE_KEYS   keys of the overwrite-heavy run [100000]
#   BENCH_OVERWRITES       writes per key in the overwrite-heavy run (preload included) [20]
#   BENCH_SNAPSHOT_DURATION  seconds of each PUT run of the snapshot-latency check [10]
#   BENCH_FSYNC_COUNT      writes of the fsync latency probe [1000]
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
PROBE_BIN="$BUILD_DIR/bench/kvs-fsync-probe"

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
ALL_PARTS="nginx,single,paired,replica3,cluster6,etcd,scaling,sweep,memory,storage"
PARTS=",${BENCH_PARTS:-$ALL_PARTS},"
ST_ROUNDS="${BENCH_STORAGE_ROUNDS:-3}"
ST_DURATION="${BENCH_STORAGE_DURATION:-5}"
ST_RETRIES="${BENCH_STORAGE_RETRIES:-0}"
ST_MODES="${BENCH_STORAGE_MODES:-memory,never,interval,always}"
ST_KEYS="${BENCH_STORAGE_KEYS:-1000000}"
ST_READY_TIMEOUT="${BENCH_STORAGE_READY_TIMEOUT:-180}"
OVERWRITE_KEYS="${BENCH_OVERWRITE_KEYS:-100000}"
OVERWRITES="${BENCH_OVERWRITES:-20}"
SNAPSHOT_DURATION="${BENCH_SNAPSHOT_DURATION:-10}"
FSYNC_COUNT="${BENCH_FSYNC_COUNT:-1000}"
RESULTS="${BENCH_RESULTS:-$ROOT/bench/RESULTS.md}"
PLOT="$ROOT/bench/throughput.png"

# Ports nobody else on this machine uses by default (tests and ./build.sh --local use 8080),
# so a concurrent test run cannot answer in place of the system under test.
KVS_PORT="${BENCH_KVS_PORT:-18480}"
NGINX_PORT=18490
ETCD_CLIENT_PORTS=(23791 23792 23793)
ETCD_PEER_PORTS=(23801 23802 23803)
ETCD1_CLIENT_PORT=23794   # the 1-member etcd of the storage part
ETCD1_PEER_PORT=23804

HEALTH_TIMEOUT=30    # seconds for a system to answer its health check
STOP_TIMEOUT=15      # seconds a server gets after SIGTERM (kvs drains up to 5 s) before SIGKILL
BENCH_SLACK=120      # seconds a kvs-bench run may take beyond warm-up + duration (preload)
SAMPLE_PERIOD=0.1    # seconds between CPU samples during a run
MAX_OTHER="${BENCH_MAX_OTHER:-0.25}"  # cores other processes may use before a run counts as disturbed
RETRIES="${BENCH_RETRIES:-2}"         # repeats of a disturbed run
RETRY_BUDGET="${BENCH_RETRY_BUDGET:-420}"  # no more repeats once the script has run this long (s)

BUILD_PKGS=(cmake g++ make libpoco-dev libtbb-dev libgtest-dev libxxhash-dev libisal-dev)

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

# Unlike kill -0, false for a zombie too, and for a process of another user (a reaped PID
# reused). Builtins only: it runs between the CPU samples of a
# measured run (bench_attempt), where a fork every 100 ms showed in the latency percentiles.
process_running() {
  local line
  [[ -O "/proc/$1" ]] || return 1
  read -r line 2>/dev/null <"/proc/$1/stat" || return 1
  line="${line##*) }"  # the state follows "pid (comm) "; comm may contain ") "
  [[ "${line:0:1}" != [ZX] ]]
}

# pause SECONDS: sleep without forking (read times out on a pipe nobody writes to).
PAUSE_FD=""
pause() {
  [[ -n "$PAUSE_FD" ]] || exec {PAUSE_FD}<> <(:)
  read -r -t "$1" -u "$PAUSE_FD" _ || true
}

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

# A server that exited before we stopped it is a finding: its status and the end of its log go
# to stderr and to SERVER_DEATHS (reported in RESULTS.md).
declare -A SERVER_LOG=()   # PID -> log file of the servers we started
SERVER_DEATHS=()
reap_dead_servers() {
  local pid rc what
  for pid in "${SERVER_PIDS[@]}"; do
    process_running "$pid" && continue
    rc=0
    wait "$pid" 2>/dev/null || rc=$?
    what="exit status $rc"
    ((rc > 128)) && what="killed by SIG$(kill -l $((rc - 128)) 2>/dev/null || echo $((rc - 128)))"
    warn "server PID $pid (${SERVER_LOG[$pid]#"$WORK"/}) ended on its own ($what) before it was stopped; last lines of its log:"
    tail -n 25 "${SERVER_LOG[$pid]}" >&2 || true
    SERVER_DEATHS+=("${SERVER_LOG[$pid]#"$WORK"/}: $what, last log line: $(grep -v '^[[:space:]]*$' "${SERVER_LOG[$pid]}" 2>/dev/null | tail -n 1 | cut -c1-300)")
  done
}

stop_servers() {
  reap_dead_servers
  stop_pids "${SERVER_PIDS[@]}"
  SERVER_PIDS=()
  CURRENT_LOGS=()
  # Default data dirs of kvs nodes (launch_kvs_node): each start gets a fresh one.
  if [[ -n "$WORK" ]]; then rm -rf "$WORK/data"; fi
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
  SERVER_LOG[$!]="$log"
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
  if part storage; then targets+=(kvs-fsync-probe); fi
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
    ':!bench/RESULTS.md' ':!bench/throughput.png' ':!bench/README.md' ':!bench/CMakeLists.txt' \
    ':!bench/fsync_probe.cc' 2>/dev/null | grep -q .; then
    COMMIT+=" (with uncommitted changes)"
  fi
  [[ -x "$BENCH_BIN" ]] || die "build succeeded but $BENCH_BIN is missing"
  if part storage; then [[ -x "$PROBE_BIN" ]] || die "build succeeded but $PROBE_BIN is missing"; fi
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
  local p line
  local -a f
  TICKS=0
  for p in "$@"; do
    read -r line 2>/dev/null <"/proc/$p/stat" || continue
    line="${line##*) }"             # drop "pid (comm) ": comm may contain spaces
    # shellcheck disable=SC2206 # split on purpose: numbers and a state letter, nothing to glob
    f=($line)
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
      BEST_PER_PROCESS="$ATTEMPT_PER_PROCESS"
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
  printf '%s\t%s\n' "$label" "$BEST_PER_PROCESS" >>"$RESULT_ROWS.per-process"
}

# One kvs-bench run; sets ATTEMPT_CORES="server bench irq other" (cores used in the window: the
# last MEASURED seconds of the run, so preload and warm-up are left out), from samples of /proc
# taken every SAMPLE_PERIOD while it runs. irq = interrupt/softirq time (see read_machine);
# other = time of all processes minus ours minus kernel threads (loopback networking also runs
# in ksoftirqd/kworkers: cost of the workload, not disturbance) = other users of the machine.
ATTEMPT_CORES=""
BEST_CORES=""
ATTEMPT_PER_PROCESS=""  # cores of each server process (SERVER_PIDS order), comma-separated
BEST_PER_PROCESS=""
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

  local -a s_t=() s_srv=() s_bench=() s_task=() s_irq=() s_kern=() s_per=()
  local now per p
  while :; do
    [[ -z "$bench_pid" ]] && bench_pid="$(pgrep -P "$BENCH_WRAPPER_PID" 2>/dev/null | head -n 1 || true)"
    now="$EPOCHREALTIME"
    read_ticks "${servers[@]}"; s_srv+=("$TICKS")
    # Each server started (with its children) on its own: the CPU of every cluster node.
    per=""
    for p in "${SERVER_PIDS[@]}"; do read_ticks "$p"; per+="${per:+,}$TICKS"; done
    s_per+=("$per")
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
    pause "$SAMPLE_PERIOD"
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
  ATTEMPT_PER_PROCESS="$(awk -v t0="${s_t[first]}" -v t1="${s_t[last]}" -v hz="$CLK_TCK" \
    -v a="${s_per[first]}" -v b="${s_per[last]}" 'BEGIN{
      dt = t1 - t0; n = split(a, x, ","); split(b, y, ",")
      for (i = 1; i <= n; i++) printf "%s%.2f", (i > 1 ? "," : ""), (dt > 0 ? (y[i] - x[i]) / hz / dt : 0) }')"
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

# launch_kvs_node ADDRESS VIEW SHARD_COUNT [extra env...]: starts one kvs-server (not waiting
# for it) with a clean environment (no stray KVS_* of the caller changes what is measured).
# A server with on-disk storage gets a fresh data dir under $WORK/data (removed when the
# servers stop) unless the extra env sets KVS_STORAGE_DIR; "@NODE@" in the extra env becomes
# the node's name (one data dir per node of a shard).
KVS_START_SEQ=0
LAST_KVS_CMD=()
launch_kvs_node() {
  local a="$1" view="$2" shards="$3"; shift 3
  local node="${a//[:.]/_}" defaults=()
  KVS_START_SEQ=$((KVS_START_SEQ + 1))
  if [[ -n "$STORAGE_SUPPORTED" && " $* " != *" KVS_STORAGE_DIR="* ]]; then
    defaults=("KVS_STORAGE_DIR=$WORK/data/$node-$KVS_START_SEQ")
  fi
  require_free "${a%:*}" "${a##*:}"
  LAST_KVS_CMD=(env -i PATH="$PATH" SOCKET_ADDRESS="$a" VIEW="$view" SHARD_COUNT="$shards"
    KVS_HTTP_BIND="${a%:*}" "${defaults[@]}" "${@//@NODE@/$node}" "$SERVER_BIN")
  start_server "$WORK/kvs-$node-$KVS_START_SEQ.log" "${LAST_KVS_CMD[@]}"
}

# show_cmd for "env -i PATH=... command...": PATH shown as "$PATH".
show_env_cmd() {
  local w words=()
  for w in "$@"; do [[ "$w" == PATH=* ]] || words+=("$w"); done
  # shellcheck disable=SC2016 # the literal text PATH="$PATH"
  show_cmd "${words[@]}" | sed 's/^env -i /env -i PATH="$PATH" /'
}
# The last kvs-server command line, for humans.
last_kvs_cmd() { show_env_cmd "${LAST_KVS_CMD[@]}"; }

# start_kvs_nodes SHARD_COUNT ADDRESS... [-- extra env]: one kvs-server per address (see
# launch_kvs_node), all in one view. Returns 1 (reason in WAIT_ERROR) when a node does not
# become ready; the caller decides whether that is fatal.
start_kvs_nodes() {
  local shards="$1"; shift
  local addrs=() extra=() a view
  while (($#)); do
    [[ "$1" == -- ]] && { shift; extra=("$@"); break; }
    addrs+=("$1"); shift
  done
  view="$(IFS=,; echo "${addrs[*]}")"
  for a in "${addrs[@]}"; do launch_kvs_node "$a" "$view" "$shards" "${extra[@]}"; done
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
  # Through one node: half of the keys are the other shard's, forwarded by that node.
  run_bench kvs6one-get "kvs 6 nodes, 2 shards, through one node" GET "$DURATION" "${ARGS[@]}" "--targets=${addrs[0]}" --mix=get:100
  run_bench kvs6one-put "kvs 6 nodes, 2 shards, through one node" PUT "$DURATION" "${ARGS[@]}" "--targets=${addrs[0]}" --mix=put:100
  # Latency of a forwarded GET against a local one, through the same node: first each path's
  # peak (--only-shard keeps the keys of one shard), then both at 70% of the lower peak.
  local mine other peak_local peak_fwd rate
  mine="$(curl -sf --max-time 2 "http://${addrs[0]}/key-value-store-shard/node-shard-id" | sed -n 's/.*"shard-id":\([0-9]*\).*/\1/p')"
  [[ -n "$mine" ]] || die "cannot read the shard of ${addrs[0]}"
  other=$((1 - mine))
  run_bench kvs6-local-peak "kvs 6 nodes, GET of its own shard's keys, one node" GET "$DURATION" "${ARGS[@]}" "--targets=${addrs[0]}" --mix=get:100 "--only-shard=$mine"
  run_bench kvs6-fwd-peak "kvs 6 nodes, GET of the other shard's keys, one node" GET "$DURATION" "${ARGS[@]}" "--targets=${addrs[0]}" --mix=get:100 "--only-shard=$other"
  peak_local="$(rps_of kvs6-local-peak)" peak_fwd="$(rps_of kvs6-fwd-peak)"
  rate="$(awk -v a="$peak_local" -v b="$peak_fwd" 'BEGIN { printf "%.0f", 0.7 * (a < b ? a : b) }')"
  P70_RATE="$rate"
  run_bench kvs6-local-70 "kvs 6 nodes, local GET at $rate req/s" GET "$DURATION" "${ARGS[@]}" "--targets=${addrs[0]}" --mix=get:100 "--only-shard=$mine" "--rate=$rate"
  run_bench kvs6-fwd-70 "kvs 6 nodes, forwarded GET at $rate req/s" GET "$DURATION" "${ARGS[@]}" "--targets=${addrs[0]}" --mix=get:100 "--only-shard=$other" "--rate=$rate"
  stop_servers
}
P70_RATE=""

# Row LABEL of the cluster table: req/s, ratio to the single node's WORKLOAD row, p99, CPU.
cluster_row() {
  local label="$1" single="$2" name="$3" per
  per="$(awk -F'\t' -v l="$label" '$1 == l { print $2 }' "$RESULT_ROWS.per-process" 2>/dev/null | tail -n 1)"
  awk -F'\t' -v l="$label" -v s="$(rps_of "$single")" -v n="$name" -v per="${per//,/ \/ }" '
    $1 == l { printf "| %s | %s | %.0f | %s | %.2f | %s | %s |\n", n, $3, $4,
              (s > 0 ? sprintf("%.2f×", $4 / s) : "—"), $7, $9, (per == "" ? "—" : per) }' "$RESULT_ROWS"
}

cluster_section() {
  echo "## Cluster vs single node"
  echo
  echo "The same run, the same cores: one node on 127.0.0.1 (\`kvs1-*\`), then six nodes in two shards on 127.0.0.2-7 (\`kvs6*\`), each with the server defaults, ${CONNECTIONS} connections, uniform random keys over ${KEYS} preloaded keys. \"Through all\" spreads the connections over the six nodes; \"through one\" sends everything to 127.0.0.2, which forwards the other shard's half. × single = req/s over the single node's req/s for the same workload. CPU per process: cores used by each server process over the measured window (127.0.0.2 … 127.0.0.7 in order)."
  echo
  echo "| setup | workload | req/s | × single | p99 ms | server cores | CPU per process |"
  echo "|---|---|---:|---:|---:|---:|---|"
  cluster_row kvs1-get kvs1-get "1 node"
  cluster_row kvs1-put kvs1-put "1 node"
  cluster_row kvs6-get kvs1-get "6 nodes, through all"
  cluster_row kvs6-put kvs1-put "6 nodes, through all"
  cluster_row kvs6one-get kvs1-get "6 nodes, through one"
  cluster_row kvs6one-put kvs1-put "6 nodes, through one"
  echo
  echo "Forwarded vs local GET through 127.0.0.2 (\`--only-shard\`: the measured requests use only the keys of one shard, learnt from the preload's answers): each path's peak, then both paced at 70% of the lower peak (\`--rate=${P70_RATE:-?}\`)."
  echo
  echo "| path | peak req/s | p99 at peak ms | req/s at 70% | p50 ms | p99 ms | p99.9 ms |"
  echo "|---|---:|---:|---:|---:|---:|---:|"
  local path
  for path in local fwd; do
    awk -F'\t' -v p="$path" '
      $1 == "kvs6-" p "-peak" { peak = sprintf("%.0f | %.2f", $4, $7) }
      $1 == "kvs6-" p "-70" { at = sprintf("%.0f | %.2f | %.2f | %.2f", $4, $5, $7, $8) }
      END { if (peak != "") printf "| %s | %s | %s |\n", (p == "local" ? "local (its own shard)" : "forwarded (other shard)"), peak, at }' "$RESULT_ROWS"
  done
  echo
  echo "| target | measured | target | |"
  echo "|---|---|---|---|"
  ratio_line "6 nodes through all, GET / 1 node GET" kvs6-get kvs1-get 0.5
  ratio_line "6 nodes through all, PUT / 1 node PUT" kvs6-put kvs1-put 0.35
  local pl pf
  pl="$(row_field kvs6-local-70 7)" pf="$(row_field kvs6-fwd-70 7)"
  if [[ -n "$pl" && -n "$pf" ]]; then
    awk -v a="$pf" -v b="$pl" 'BEGIN { r = (b > 0) ? a / b : 0
      printf "| p99 forwarded GET / p99 local GET at 70%% of peak | %.2f / %.2f ms = **%.2f×** | ≤ 2× | %s |\n", a, b, r, (r <= 2 ? "met" : "**not met**") }'
  fi
  echo
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

# Total bytes of the keys <prefix>0 .. <prefix>{COUNT-1} (kvs-bench's key names), for a prefix
# of PREFIX_LEN bytes.
key_bytes_of() {
  awk -v n="$1" -v p="$2" 'BEGIN{
      s = 0; lo = 0
      for (d = 1; lo < n; d++) { hi = (10 ^ d < n ? 10 ^ d : n); s += (hi - lo) * (p + d); lo = hi }
      printf "%d", s }'
}

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
  key_bytes="$(key_bytes_of "$count" "${#prefix}")"
  MEM_LINE="$(awk -v b="$before" -v a="$after" -v n="$count" -v kb="$key_bytes" -v v="$VALUE_SIZE" \
    -v took="$took" 'BEGIN{
      raw = kb + n * v
      printf "%d\t%.1f\t%.1f\t%.1f\t%.2f\t%.2f\t%d", n, raw / 1048576, b / 1024, a / 1024, a * 1024 / raw, (a - b) * 1024 / raw, took }')"
  local f; IFS=$'\t' read -r -a f <<<"$MEM_LINE"
  log "    ${f[0]} keys, raw ${f[1]} MiB; RSS ${f[2]} -> ${f[3]} MiB; RSS/raw ${f[4]} (growth/raw ${f[5]}); preload ${f[6]}s"
  stop_servers
}

# --- storage (durability) -----------------------------------------------------------------

STORAGE_SUPPORTED=""   # the server lists kvs.storage.dir in --help (set in main)
STORAGE_DEFAULTS=""    # its default storage settings, for the report
ST_DONE=""             # the storage part ran
ST_START=0             # SECONDS when it started
ST_COMMANDS=()         # its command lines (servers, kvs-bench, probe), for RESULTS.md
ST_LOAD_BEGIN=""       # /proc/loadavg when the storage part started and ended
ST_LOAD_END=""
ST_FS=""               # file system of the data dirs
ST_PROBE=()            # JSON lines of the fsync probe (append, overwrite)
ST_FSYNC_ROWS=""       # TSV: label, PUTs answered, fsyncs (all nodes), over the whole run
ST_BIG_LINE=""         # the 1M-key node: see bench_storage_big
ST_RESTART=()          # one line per restart: see st_restart
ST_SNAP_LINE=""        # the snapshot latency check: see bench_storage_snapshot
ST_OVERWRITE_LINE=""   # the overwrite-heavy run: see bench_storage_overwrite
ST_OVERWRITE_FILES=""  # the data dir's files after it

# Series of the server's /metrics (Prometheus text) the storage part reads. A series matches
# by name, or by a prefix that includes labels; samples of every label set are summed.
M_FSYNCS=kvs_storage_fsyncs_total
M_FSYNC_SECONDS=kvs_storage_fsync_seconds_total
M_SNAPSHOTS=kvs_storage_snapshots_total
M_SNAPSHOT_BYTES=kvs_storage_snapshot_bytes
M_SNAPSHOT_SECONDS=kvs_storage_last_snapshot_seconds
M_LOG_WRITTEN=kvs_storage_log_written_bytes_total
M_LOG_PENDING=kvs_storage_log_bytes
M_PUTS='kvs_http_requests_total{method="PUT"'

storage_desc() { if [[ "$1" == memory ]]; then echo "memory"; else echo "disk, fsync $1"; fi; }

# Env words of a storage mode: memory, or never/interval/always = disk with that fsync policy
# and data dir DIR (which may hold @NODE@: one dir per node).
storage_env() {
  case "$1" in
    memory) echo "KVS_STORAGE_MODE=memory" ;;
    never | interval | always) echo "KVS_STORAGE_MODE=disk KVS_STORAGE_FSYNC=$1 KVS_STORAGE_DIR=$2" ;;
    *) die "BENCH_STORAGE_MODES: '$1' is not memory, never, interval or always" ;;
  esac
}

# st_metrics FILE ADDRESS...: the /metrics texts of the nodes, one after the other.
st_metrics() {
  local out="$1" a; shift
  for a in "$@"; do curl -sf --max-time 5 "http://$a/metrics" || true; done >"$out"
}

# metric_sum FILE SERIES: sum of the matching samples in FILE ("" when none matches).
metric_sum() {
  [[ -f "$1" ]] || return 0
  awk -v n="$2" '/^#/ { next }
    $1 == n || index($1, n "{") == 1 || (index(n, "{") && index($1, n) == 1) { s += $NF; f = 1 }
    END { if (f) printf "%.17g\n", s }' "$1"
}

# metric_delta FILE_BEFORE FILE_AFTER SERIES ("" when the series is missing from either).
metric_delta() {
  local a b
  a="$(metric_sum "$1" "$3")" b="$(metric_sum "$2" "$3")"
  [[ -n "$a" && -n "$b" ]] && awk -v a="$a" -v b="$b" 'BEGIN { printf "%.17g\n", b - a }'
  return 0
}

# "allocated apparent" bytes of a directory tree (allocated = blocks on disk).
st_dir_bytes() {
  local alloc apparent
  alloc="$(du -sB1 "$1" 2>/dev/null | cut -f1 || true)"
  apparent="$(du -sb "$1" 2>/dev/null | cut -f1 || true)"
  echo "${alloc:-0} ${apparent:-0}"
}

# Snapshots the node has taken (from /metrics; "" when the server does not report it).
st_snapshots() {
  local out="$WORK/st-snapshots.tmp"
  st_metrics "$out" "$1"
  metric_sum "$out" "$M_SNAPSHOTS"
}

# Polls ADDRESS's /health every 20 ms until it says ready with WANT keys. T0 = EPOCHREALTIME of
# the start; sets READY_FIRST (s to the first answer), READY_AT (s to ready), READY_BODY (the
# last answer). Returns 1 (WAIT_ERROR) when PID exits or after ST_READY_TIMEOUT seconds.
READY_FIRST=""
READY_AT=""
READY_BODY=""
wait_ready_keys() {
  local addr="$1" want="$2" t0="$3" pid="$4" body now keys deadline=$((SECONDS + ST_READY_TIMEOUT))
  READY_FIRST="" READY_AT="" READY_BODY=""
  while :; do
    body="$(curl -s --max-time 2 "http://$addr/health" 2>/dev/null || true)"
    now="${EPOCHREALTIME/,/.}"
    if [[ -n "$body" ]]; then
      [[ -n "$READY_FIRST" ]] || READY_FIRST="$(awk -v a="$now" -v b="$t0" 'BEGIN { printf "%.2f", a - b }')"
      READY_BODY="$body"
      if [[ "$body" == *'"ready":true'* ]]; then
        keys="$(jq -r '.keys' <<<"$body" 2>/dev/null || true)"
        if [[ "$keys" == "$want" ]]; then
          READY_AT="$(awk -v a="$now" -v b="$t0" 'BEGIN { printf "%.2f", a - b }')"
          return 0
        fi
      fi
    fi
    if ! process_running "$pid"; then
      WAIT_ERROR="restarted node $addr exited (last /health: ${READY_BODY:-none})"
      return 1
    fi
    if ((SECONDS >= deadline)); then
      WAIT_ERROR="$addr not ready with $want keys within ${ST_READY_TIMEOUT}s (last /health: ${READY_BODY:-none})"
      return 1
    fi
    sleep 0.02
  done
}

# The fsync floor of the disk the data dirs are on: 4 KiB pwrite + fdatasync, FSYNC_COUNT times,
# appending to a new file and overwriting a preallocated one.
bench_storage_fsync_probe() {
  local dir="$WORK/st/probe" mode out cmd
  mkdir -p "$dir"
  ST_FS="$(df -T "$dir" 2>/dev/null | awk 'NR == 2 { print $2 " (" $1 ")" }')"
  log "storage: fsync latency of $ST_FS ($FSYNC_COUNT x 4 KiB write + fdatasync)"
  for mode in append overwrite; do
    cmd=("$PROBE_BIN" "--dir=$dir" "--count=$FSYNC_COUNT" --size=4096 "--mode=$mode")
    COMMANDS+=("$(show_cmd "${cmd[@]}")")
    out="$("${cmd[@]}")" || die "kvs-fsync-probe --mode=$mode failed"
    ST_PROBE+=("$out")
    log "    $mode: $(jq -r '"p50 \(.p50_ms) ms, p99 \(.p99_ms) ms, max \(.max_ms) ms, \(.per_second)/s"' <<<"$out")"
  done
  rm -rf "$dir"
}

# One PUT run of the storage comparison on running nodes; counts PUTs and fsyncs over the
# whole kvs-bench run (preload and warm-up included) from the nodes' metrics.
st_put_run() {
  local label="$1" system="$2" targets="$3" m0="$WORK/$1.m0" m1="$WORK/$1.m1" puts fsyncs secs
  local addrs=()
  IFS=, read -r -a addrs <<<"$targets"
  st_metrics "$m0" "${addrs[@]}"
  set_kvs_args "$ST_DURATION" 1
  RETRIES=$ST_RETRIES run_bench "$label" "$system" PUT "$ST_DURATION" "${ARGS[@]}" \
    "--targets=$targets" --mix=put:100
  st_metrics "$m1" "${addrs[@]}"
  puts="$(metric_delta "$m0" "$m1" "$M_PUTS")"
  fsyncs="$(metric_delta "$m0" "$m1" "$M_FSYNCS")"
  secs="$(metric_delta "$m0" "$m1" "$M_FSYNC_SECONDS")"
  printf '%s\t%s\t%s\t%s\n' "$label" "${puts:-}" "${fsyncs:-}" "${secs:-}" >>"$ST_FSYNC_ROWS"
}

etcd1_healthy() { curl -sf --max-time 2 "http://127.0.0.1:$ETCD1_CLIENT_PORT/health" | grep -q '"health":"true"'; }

# A 1-member etcd with its default durability (fsync of the WAL on every commit), fresh data
# dir, PUT only.
st_etcd1_run() {
  local r="$1" dir="$WORK/st/etcd1-r$1"
  [[ -n "$ETCD_VERSION" ]] || ETCD_VERSION="$(etcd --version 2>/dev/null | awk '/etcd Version/ { print $3 }')"
  require_free 127.0.0.1 "$ETCD1_CLIENT_PORT"
  require_free 127.0.0.1 "$ETCD1_PEER_PORT"
  local cmd=(env -i PATH="$PATH" etcd --name s1 --data-dir "$dir"
    --listen-client-urls "http://127.0.0.1:$ETCD1_CLIENT_PORT"
    --advertise-client-urls "http://127.0.0.1:$ETCD1_CLIENT_PORT"
    --listen-peer-urls "http://127.0.0.1:$ETCD1_PEER_PORT"
    --initial-advertise-peer-urls "http://127.0.0.1:$ETCD1_PEER_PORT"
    --initial-cluster "s1=http://127.0.0.1:$ETCD1_PEER_PORT" --initial-cluster-state new
    --initial-cluster-token kvs-bench-1 --logger=zap --log-level=warn)
  ((r == 1)) && COMMANDS+=("$(show_env_cmd "${cmd[@]}")")
  start_server "$dir.log" "${cmd[@]}"
  wait_until "etcd (1 member)" etcd1_healthy || die "$WAIT_ERROR"
  set_args "$ST_DURATION" 1
  RETRIES=$ST_RETRIES run_bench "st-etcd1-r$r" "etcd $ETCD_VERSION, 1 member, round $r" PUT \
    "$ST_DURATION" "${ARGS[@]}" --protocol=etcd --preload "--targets=127.0.0.1:$ETCD1_CLIENT_PORT" \
    --mix=put:100
  stop_servers
  rm -rf "$dir"
}

# PUT throughput by storage mode: one node, a 1-member etcd and a 3-replica shard, in
# ST_ROUNDS interleaved rounds (the mode order rotates each round), every run on fresh nodes
# with fresh data dirs. The comparison uses the medians over the rounds.
ST_MODE_LIST=()
bench_storage_put() {
  local r i m n env_words order dir
  local addr1="127.0.0.1:$KVS_PORT" addrs3=("127.0.0.2:$KVS_PORT" "127.0.0.3:$KVS_PORT" "127.0.0.4:$KVS_PORT")
  local targets3
  targets3="$(IFS=,; echo "${addrs3[*]}")"
  n=${#ST_MODE_LIST[@]}
  for ((r = 1; r <= ST_ROUNDS; r++)); do
    order=()
    for ((i = 0; i < n; i++)); do order+=("${ST_MODE_LIST[(i + r - 1) % n]}"); done
    log "storage PUT round $r/$ST_ROUNDS (${ST_DURATION}s runs): 1 node ${order[*]}; etcd 1 member; 3 replicas ${order[*]}"
    for m in "${order[@]}"; do
      dir="$WORK/st/data-1-$m-r$r"
      read -r -a env_words <<<"$(storage_env "$m" "$dir")"
      start_kvs_nodes 1 "$addr1" -- "${env_words[@]}" || die "$WAIT_ERROR"
      ((r == 1)) && COMMANDS+=("$(last_kvs_cmd)")
      st_put_run "st-1-$m-r$r" "kvs 1 node, $(storage_desc "$m"), round $r" "$addr1"
      stop_servers
      rm -rf "$dir"
    done
    st_etcd1_run "$r"
    for m in "${order[@]}"; do
      dir="$WORK/st/data-3-$m-r$r"
      read -r -a env_words <<<"$(storage_env "$m" "$dir/@NODE@")"
      start_kvs_nodes 1 "${addrs3[@]}" -- "${env_words[@]}" || die "$WAIT_ERROR"
      ((r == 1)) && COMMANDS+=("$(last_kvs_cmd)   # 127.0.0.2 and .3 alike")
      st_put_run "st-3-$m-r$r" "kvs 3 replicas, $(storage_desc "$m"), round $r" "$targets3"
      stop_servers
      rm -rf "$dir"
    done
  done
}

proc_status_kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }

# st_restart KIND ADDRESS WANT_KEYS DIR ENV...: stops the running node (KIND kill = SIGKILL,
# term = SIGTERM and wait for it), starts it again on the same data dir and times it to ready
# with WANT_KEYS keys. Appends to ST_RESTART: kind, stop s, data dir bytes (allocated) at the
# stop, s to first /health answer, s to ready, RSS kB once ready, /health's storage object.
st_restart() {
  local kind="$1" addr="$2" want="$3" dir="$4"; shift 4
  local pid="${SERVER_PIDS[0]}" t_stop="" t bytes t0 storage rss
  if [[ "$kind" == kill ]]; then
    bytes="$(st_dir_bytes "$dir")"
    kill -KILL "$pid"
    wait "$pid" 2>/dev/null || true
    t_stop=0
  else
    t="${EPOCHREALTIME/,/.}"
    stop_pids "$pid"
    t_stop="$(awk -v a="${EPOCHREALTIME/,/.}" -v b="$t" 'BEGIN { printf "%.2f", a - b }')"
    bytes="$(st_dir_bytes "$dir")"
  fi
  SERVER_PIDS=()
  CURRENT_LOGS=()
  t0="${EPOCHREALTIME/,/.}"
  launch_kvs_node "$addr" "$addr" 1 "$@"
  COMMANDS+=("kill -$([[ "$kind" == kill ]] && echo KILL || echo TERM) <kvs-server>; $(last_kvs_cmd) &   # same data dir; then curl -s http://$addr/health every 20 ms until \"ready\":true and keys = $want")
  wait_ready_keys "$addr" "$want" "$t0" "${SERVER_PIDS[0]}" || die "$WAIT_ERROR"
  rss="$(proc_status_kb "${SERVER_PIDS[0]}" VmRSS)"
  storage="$(jq -c '.storage // "—"' <<<"$READY_BODY" 2>/dev/null || echo '—')"
  ST_RESTART+=("$kind"$'\t'"$t_stop"$'\t'"${bytes%% *}"$'\t'"$READY_FIRST"$'\t'"$READY_AT"$'\t'"$rss"$'\t'"$storage")
  log "    restart after $([[ $kind == kill ]] && echo SIGKILL || echo "SIGTERM (stop took ${t_stop}s)"): first answer ${READY_FIRST}s, ready with $want keys ${READY_AT}s; storage: $storage"
}

# One node in disk mode (fsync interval, default snapshot settings) loaded with ST_KEYS keys:
# RSS vs raw key+value bytes, then restart to ready after SIGKILL and after SIGTERM.
ST_BIG_DIR=""
bench_storage_big() {
  local addr="127.0.0.1:$KVS_PORT" pid before took count cmd json="$WORK/st-big-load.json"
  ST_BIG_DIR="$WORK/st/big"
  local env_words=(KVS_STORAGE_MODE=disk KVS_STORAGE_FSYNC=interval "KVS_STORAGE_DIR=$ST_BIG_DIR")
  log "storage: one node (disk, fsync interval), $ST_KEYS keys x $VALUE_SIZE B: RSS, restart to ready"
  HEALTH_TIMEOUT=$ST_READY_TIMEOUT start_kvs_nodes 1 "$addr" -- "${env_words[@]}" || die "$WAIT_ERROR"
  COMMANDS+=("$(last_kvs_cmd)")
  pid="${SERVER_PIDS[0]}"
  before="$(vm_rss_kb "$pid")"
  cmd=("$BENCH_BIN" "--threads=$THREADS" "--connections=$CONNECTIONS" "--keys=$ST_KEYS"
    "--value-size=$VALUE_SIZE" "--timeout=$TIMEOUT_MS" --protocol=kvs --causal=off --preload
    --requests=1 --warmup=0 --mix=get:100 "--targets=$addr" --label=st-big-load "--json=$json" --quiet)
  COMMANDS+=("$(show_cmd "${cmd[@]}")")
  local t0=$SECONDS
  timeout "$MEM_TIMEOUT" "${cmd[@]}" >"$WORK/st-big-load.txt" 2>&1 \
    || die "storage: preload of $ST_KEYS keys failed or took over ${MEM_TIMEOUT}s: $(tail -n 5 "$WORK/st-big-load.txt")"
  took=$((SECONDS - t0))
  sleep 1   # let in-flight work settle before reading RSS
  count="$(curl -sf "http://$addr/health" | jq -r '.keys')" || die "storage: /health of $addr did not answer"
  local rss hwm anon file raw snaps bytes
  rss="$(proc_status_kb "$pid" VmRSS)" hwm="$(proc_status_kb "$pid" VmHWM)"
  anon="$(proc_status_kb "$pid" RssAnon)" file="$(proc_status_kb "$pid" RssFile)"
  raw=$(($(key_bytes_of "$count" 3) + count * VALUE_SIZE))
  snaps="$(st_snapshots "$addr")"
  bytes="$(st_dir_bytes "$ST_BIG_DIR")"
  # keys raw_bytes load_s rss_before rss hwm anon file snapshots dir_alloc dir_apparent (kB for RSS)
  ST_BIG_LINE="$count"$'\t'"$raw"$'\t'"$took"$'\t'"$before"$'\t'"$rss"$'\t'"$hwm"$'\t'"${anon:-}"$'\t'"${file:-}"$'\t'"${snaps:-—}"$'\t'"${bytes% *}"$'\t'"${bytes#* }"
  log "    $count keys loaded in ${took}s; RSS $((rss / 1024)) MiB (peak $((hwm / 1024)) MiB) for $((raw / 1048576)) MiB raw; data dir $((${bytes% *} / 1048576)) MiB, snapshots ${snaps:-?}"
  st_restart kill "$addr" "$count" "$ST_BIG_DIR" "${env_words[@]}"
  st_restart term "$addr" "$count" "$ST_BIG_DIR" "${env_words[@]}"
  ST_BIG_KEYS="$count"
  stop_servers
}

# PUT latency across a snapshot, on the ST_KEYS-key data dir of bench_storage_big (a snapshot
# then writes the whole store). Two PUT runs, each on a node just restarted on that dir and
# loaded as soon as it is ready, no warm-up (the whole run is measured):
#   st-snap-off: KVS_STORAGE_SNAPSHOT_MIN_LOG_BYTES=2^50: no snapshot can start;
#   st-snap-on:  KVS_STORAGE_SNAPSHOT_MIN_LOG_BYTES=1 MiB: the server's trigger is then half
#                the last snapshot's size, which the log (with the first run's writes) already
#                exceeds at start, so a snapshot starts within the first half second (the
#                snapshot thread's check period) and runs under the load.
# Snapshots completed during a run come from the metrics (a snapshot still running at the end
# would not be counted: the run is long enough for that not to happen with 1M keys here).
ST_BIG_KEYS=""
bench_storage_snapshot() {
  local addr="127.0.0.1:$KVS_PORT" label min snaps logb secs sbytes d0 d1 line=""
  local base=(KVS_STORAGE_MODE=disk KVS_STORAGE_FSYNC=interval "KVS_STORAGE_DIR=$ST_BIG_DIR")
  [[ -n "$ST_BIG_KEYS" ]] || die "storage: the snapshot check needs the loaded data dir"
  log "storage: PUT latency with and without a snapshot (${SNAPSHOT_DURATION}s runs, $ST_BIG_KEYS keys)"
  for label in st-snap-off st-snap-on; do
    min=$((1 << 50))
    [[ "$label" == st-snap-on ]] && min=$((1 << 20))
    HEALTH_TIMEOUT=$ST_READY_TIMEOUT start_kvs_nodes 1 "$addr" -- "${base[@]}" \
      "KVS_STORAGE_SNAPSHOT_MIN_LOG_BYTES=$min" || die "$WAIT_ERROR"
    COMMANDS+=("$(last_kvs_cmd)")
    st_metrics "$WORK/$label.m0" "$addr"
    d0="$(st_dir_bytes "$ST_BIG_DIR")"
    set_args "$SNAPSHOT_DURATION" 0
    ARGS=("${ARGS[@]/#--keys=*/--keys=$ST_BIG_KEYS}")
    RETRIES=0 run_bench "$label" "kvs 1 node, disk, fsync interval, $ST_BIG_KEYS keys, snapshot min log bytes $min" \
      PUT "$SNAPSHOT_DURATION" "${ARGS[@]}" --protocol=kvs "--causal=$CAUSAL" "--targets=$addr" --mix=put:100
    st_metrics "$WORK/$label.m1" "$addr"
    d1="$(st_dir_bytes "$ST_BIG_DIR")"
    snaps="$(metric_delta "$WORK/$label.m0" "$WORK/$label.m1" "$M_SNAPSHOTS")"
    logb="$(metric_delta "$WORK/$label.m0" "$WORK/$label.m1" "$M_LOG_WRITTEN")"
    [[ -n "$logb" ]] || logb=$((${d1#* } - ${d0#* }))
    secs="" sbytes=""
    if [[ -n "$snaps" && "$snaps" != 0 ]]; then
      secs="$(metric_sum "$WORK/$label.m1" "$M_SNAPSHOT_SECONDS")"
      sbytes="$(metric_sum "$WORK/$label.m1" "$M_SNAPSHOT_BYTES")"
    fi
    line+="${line:+$'\n'}$label"$'\t'"$min"$'\t'"${snaps:-?}"$'\t'"$logb"$'\t'"${secs:-}"$'\t'"${sbytes:-}"
    log "    $label: snapshots during the run: ${snaps:-?}${secs:+ (the last took ${secs}s, $sbytes bytes)}; log bytes written: $logb"
    [[ "$label" == st-snap-on && "${snaps:-0}" == 0 ]] && warn "storage: no snapshot completed during the snapshot run"
    stop_servers
  done
  ST_SNAP_LINE="$line"
}

# Bytes on disk vs live key+value bytes after an overwrite-heavy run: OVERWRITE_KEYS keys, each
# written OVERWRITES times on average (preload + random PUTs), disk mode with default snapshot
# settings; then waits for a snapshot (if none happened yet) and for the data dir to stop
# changing, and compares. Also the largest size seen while the load ran.
bench_storage_overwrite() {
  local addr="127.0.0.1:$KVS_PORT" dir="$WORK/st/overwrite" json="$WORK/st-overwrite.json" cmd
  local total=$((OVERWRITE_KEYS * (OVERWRITES - 1))) peak=0 b t0 took
  log "storage: overwrite-heavy run, $OVERWRITE_KEYS keys x $OVERWRITES writes, disk (fsync interval)"
  start_kvs_nodes 1 "$addr" -- KVS_STORAGE_MODE=disk KVS_STORAGE_FSYNC=interval "KVS_STORAGE_DIR=$dir" \
    || die "$WAIT_ERROR"
  COMMANDS+=("$(last_kvs_cmd)")
  cmd=("$BENCH_BIN" "--threads=$THREADS" "--connections=$CONNECTIONS" "--keys=$OVERWRITE_KEYS"
    "--value-size=$VALUE_SIZE" "--timeout=$TIMEOUT_MS" --protocol=kvs --causal=off --preload
    "--requests=$total" --warmup=0 --mix=put:100 "--targets=$addr" --label=st-overwrite
    "--json=$json" --quiet)
  COMMANDS+=("$(show_cmd "${cmd[@]}")")
  t0=$SECONDS
  ( exec "${cmd[@]}" >"$WORK/st-overwrite.txt" 2>&1 ) &
  BENCH_WRAPPER_PID=$!
  while process_running "$BENCH_WRAPPER_PID"; do
    b="$(st_dir_bytes "$dir")"; b="${b% *}"
    ((b > peak)) && peak=$b
    if ((SECONDS - t0 > MEM_TIMEOUT + 60)); then
      kill -TERM "$BENCH_WRAPPER_PID" 2>/dev/null || true
      break
    fi
    sleep 0.5
  done
  local rc=0
  wait "$BENCH_WRAPPER_PID" || rc=$?
  BENCH_WRAPPER_PID=""
  ((rc == 0)) || die "storage: overwrite run failed (status $rc): $(tail -n 5 "$WORK/st-overwrite.txt")"
  took=$((SECONDS - t0))
  local end snaps_end snaps waited=0 last="" same=0 final count live
  end="$(st_dir_bytes "$dir")"
  snaps_end="$(st_snapshots "$addr")"
  snaps="$snaps_end"
  # A snapshot, then a data dir that stays the same for 2 s (old log files removed).
  t0=$SECONDS
  while [[ -n "$snaps" && "$snaps" == 0 ]] && ((SECONDS - t0 < 60)); do
    sleep 0.5
    snaps="$(st_snapshots "$addr")"
  done
  while ((SECONDS - t0 < 90)); do
    final="$(st_dir_bytes "$dir")"
    if [[ "$final" == "$last" ]]; then ((++same >= 4)) && break; else same=0 last="$final"; fi
    sleep 0.5
  done
  waited=$((SECONDS - t0))
  local mfile="$WORK/st-overwrite.m1" pending sbytes
  st_metrics "$mfile" "$addr"
  pending="$(metric_sum "$mfile" "$M_LOG_PENDING")" sbytes="$(metric_sum "$mfile" "$M_SNAPSHOT_BYTES")"
  count="$(curl -sf "http://$addr/health" | jq -r '.keys')" || die "storage: /health of $addr did not answer"
  live=$(($(key_bytes_of "$count" 3) + count * VALUE_SIZE))
  ST_OVERWRITE_FILES="$(find "$dir" -type f -printf '%P %s\n' 2>/dev/null | sort | awk '
      { n++; if (n <= 12) printf "%s%s (%d B)", (n > 1 ? ", " : ""), $1, $2 }
      END { if (n > 12) printf ", … (%d files)", n }' || true)"
  local writes
  writes="$(jq -s -r 'last | .requests' "$json" 2>/dev/null || echo "$total")"
  # keys live_bytes writes(measured, after preload) took_s peak end_alloc snaps_end snaps waited final_alloc final_apparent
  # log_pending snapshot_bytes (server metrics after waiting)
  ST_OVERWRITE_LINE="$count"$'\t'"$live"$'\t'"$writes"$'\t'"$took"$'\t'"$peak"$'\t'"${end% *}"$'\t'"${snaps_end:-?}"$'\t'"${snaps:-?}"$'\t'"$waited"$'\t'"${final% *}"$'\t'"${final#* }"$'\t'"${pending:-}"$'\t'"${sbytes:-}"
  log "    $count keys, live $((live / 1024)) KiB; data dir: peak $((peak / 1048576)) MiB, at the end $((${end% *} / 1048576)) MiB, after snapshot(s) ${snaps:-?} $((${final% *} / 1024)) KiB"
  stop_servers
}

bench_storage() {
  if [[ -z "$STORAGE_SUPPORTED" ]]; then
    warn "storage: $SERVER_BIN has no kvs.storage.* settings (--help); storage part skipped"
    return 0
  fi
  ST_START=$SECONDS
  ST_LOAD_BEGIN="$(cut -d' ' -f1-3 /proc/loadavg)"
  ST_FSYNC_ROWS="$WORK/st-fsync.tsv"
  : >"$ST_FSYNC_ROWS"
  IFS=, read -r -a ST_MODE_LIST <<<"$ST_MODES"
  mkdir -p "$WORK/st"
  # This part's command lines (run_bench's included) go to its own list: COMMANDS collects them
  # meanwhile.
  local others=("${COMMANDS[@]}")
  COMMANDS=()
  bench_storage_fsync_probe
  bench_storage_put
  bench_storage_big
  bench_storage_snapshot
  bench_storage_overwrite
  # Rounds after the first repeat the first one's commands but for the label.
  local c
  for c in "${COMMANDS[@]}"; do
    [[ "$c" =~ --label=st-[a-z0-9-]+-r([0-9]+) && "${BASH_REMATCH[1]}" != 1 ]] && continue
    ST_COMMANDS+=("$c")
  done
  COMMANDS=("${others[@]}")
  rm -rf "$WORK/st"
  ST_LOAD_END="$(cut -d' ' -f1-3 /proc/loadavg)"
  ST_DONE=1
}

# --- storage report -----------------------------------------------------------------------

# One row of a storage PUT table from the runs whose label starts with PREFIX: req/s of each
# round, median, ratio to MEM_RPS, medians of p50/p99/server cores, most "other" cores seen,
# PUTs per fsync over all rounds (ST_FSYNC_ROWS), errors + non-2xx.
st_put_row() {
  local prefix="$1" name="$2" mem="$3"
  awk -F'\t' -v p="$prefix" -v name="$name" -v mem="${mem:-0}" -v fs="$ST_FSYNC_ROWS" '
    function median(a, n,   i, j, t) {
      for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
      return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    BEGIN {
      while ((getline line < fs) > 0) {
        split(line, f, "\t")
        if (index(f[1], p) == 1 && f[3] != "") { puts += f[2]; fsyncs += f[3]; fsecs += f[4]; hasf = 1 }
      }
    }
    index($1, p) == 1 {
      n++; r[n] = $4; p50[n] = $5; p99[n] = $7; srv[n] = $9; if ($11 > oth) oth = $11
      err += $12 + $13; rounds = rounds (n > 1 ? " / " : "") sprintf("%.0f", $4)
    }
    END {
      if (n == 0) { printf "| %s | not measured | | | | | | | | | |\n", name; exit }
      m = median(r, n)
      x = (mem > 0) ? sprintf("%.2f×", m / mem) : "—"
      pf = hasf ? (fsyncs > 0 ? sprintf("%.1f", puts / fsyncs) : "no fsync") : "—"
      fl = (hasf && fsyncs > 0) ? sprintf("%.3f", fsecs / fsyncs * 1000) : "—"
      printf "| %s | %s | **%.0f** | %s | %.2f | %.2f | %.2f | %.2f | %s | %s | %d |\n",
        name, rounds, m, x, median(p50, n), median(p99, n), median(srv, n), oth, pf, fl, err }' "$RESULT_ROWS"
}

# "| name | value unit | ≤ target unit | met |" for a measured value that must stay at or below.
le_line() {
  local name="$1" value="$2" unit="$3" target="$4" detail="${5:-}"
  if [[ -z "$value" ]]; then
    printf '| %s | — | ≤ %s%s | not measured |\n' "$name" "$target" "$unit"
    return
  fi
  awk -v n="$name" -v v="$value" -v u="$unit" -v t="$target" -v d="$detail" 'BEGIN {
    printf "| %s | **%s%s**%s | ≤ %s%s | %s |\n", n, v, u, d, t, u, (v + 0 <= t + 0 ? "met" : "**not met**") }'
}

# The storage targets (also printed by print_summary).
st_target_lines() {
  local mem always interval etcd f
  mem="$(median_rps st-1-memory-r)" always="$(median_rps st-1-always-r)"
  interval="$(median_rps st-1-interval-r)" etcd="$(median_rps st-etcd1-r)"
  ratio_values "1 node PUT, fsync always / memory mode (medians of $ST_ROUNDS rounds)" "$always" "$mem" 0.5
  ratio_values "1 node PUT, fsync always / 1-member etcd (medians)" "$always" "$etcd" 5
  ratio_values "1 node PUT, fsync interval / memory mode (medians)" "$interval" "$mem" 0.85
  local kill_ready="" term_ready="" line
  for line in "${ST_RESTART[@]}"; do
    IFS=$'\t' read -r -a f <<<"$line"
    [[ "${f[0]}" == kill ]] && kill_ready="${f[4]}"
    [[ "${f[0]}" == term ]] && term_ready="${f[4]}"
  done
  le_line "restart to ready with ${ST_BIG_KEYS:-$ST_KEYS} keys, after SIGKILL" "$kill_ready" " s" 5 \
    "${term_ready:+ (after SIGTERM: $term_ready s)}"
  local disk_ratio="" rss_ratio=""
  if [[ -n "$ST_OVERWRITE_LINE" ]]; then
    IFS=$'\t' read -r -a f <<<"$ST_OVERWRITE_LINE"
    disk_ratio="$(awk -v d="${f[9]}" -v l="${f[1]}" 'BEGIN { if (l > 0) printf "%.2f", d / l }')"
  fi
  le_line "bytes on disk / live key+value bytes after the overwrite-heavy run" "$disk_ratio" "×" 3
  if [[ -n "$ST_BIG_LINE" ]]; then
    IFS=$'\t' read -r -a f <<<"$ST_BIG_LINE"
    rss_ratio="$(awk -v r="${f[4]}" -v raw="${f[1]}" 'BEGIN { if (raw > 0) printf "%.2f", r * 1024 / raw }')"
  fi
  le_line "RSS / raw key+value bytes, ${ST_BIG_KEYS:-$ST_KEYS} keys, disk mode" "$rss_ratio" "×" 2
}

mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }

# The storage section of RESULTS.md, between markers (a storage-only run replaces just it).
ST_BEGIN_MARK='<!-- storage section: written by bench/run.sh (part "storage"); a run of only that part replaces it -->'
ST_END_MARK='<!-- end of storage section -->'
storage_section() {
  local f line other_max other_med
  echo "$ST_BEGIN_MARK"
  echo "## Storage (durability)"
  echo
  if [[ -z "$ST_DONE" ]]; then
    echo "Not measured: the server built (commit $COMMIT) has no \`kvs.storage.*\` settings."
    echo
    echo "$ST_END_MARK"
    return
  fi
  read -r other_max other_med < <(awk -F'\t' '$1 ~ /^st-/ { n++; o[n] = $11; if ($11 > m) m = $11 }
    END { for (i = 2; i <= n; i++) { t = o[i]; for (j = i - 1; j >= 1 && o[j] > t; j--) o[j + 1] = o[j]; o[j + 1] = t }
          printf "%.2f %.2f\n", m, (n ? o[int((n + 1) / 2)] : 0) }' "$RESULT_ROWS")
  echo "Measured by \`bench/run.sh$([[ "$PARTS" == ",storage," ]] && echo " --only storage")\` on $(date -u '+%Y-%m-%d %H:%M UTC'), kvs commit $COMMIT (Release, \`${BUILD_DIR#"$ROOT"/}\`), in $(((SECONDS - ST_START) / 60)) min $(((SECONDS - ST_START) % 60)) s, on the machine above ($NPROC cores, $(awk '/^MemTotal/ { printf "%.1f GiB RAM", $2 / 1048576 }' /proc/meminfo)); data dirs on $ST_FS under /tmp, a fresh one per server start (removed afterwards); everything on loopback."
  echo
  if awk -v m="$other_max" -v t="$MAX_OTHER" 'BEGIN { exit !(m > t) }'; then
    echo "**The machine was shared and noisy during this part**: other processes (builds and tests of other users) used up to $other_max cores during a run (median $other_med; \"other cores\" below), load average $ST_LOAD_BEGIN at the start and $ST_LOAD_END at the end. Runs were not repeated; the PUT comparison rests on medians of $ST_ROUNDS interleaved rounds, which spread such moments over all modes, but single figures (restart, snapshot latency) carry that noise."
  else
    echo "Other processes used at most $other_max cores during a run (load average $ST_LOAD_BEGIN at the start, $ST_LOAD_END at the end)."
  fi
  echo
  if ((${#SERVER_DEATHS[@]})) && [[ "$PARTS" == ",storage," ]]; then
    echo "**Servers that ended on their own during this run** (not stopped by the script; the run they were in shows it as errors):"
    echo
    for line in "${SERVER_DEATHS[@]}"; do echo "- \`${line//\`/\'}\`"; done
    echo
  fi
  echo "Server settings compared: \`KVS_STORAGE_MODE=memory\`, and \`KVS_STORAGE_MODE=disk\` with \`KVS_STORAGE_FSYNC=never\` (the OS writes back), \`interval\` (fdatasync every \`KVS_STORAGE_FSYNC_INTERVAL_MS\`, 1000 ms by default) and \`always\` (a PUT is answered once its log record is fsynced; group commit). Server defaults: $STORAGE_DEFAULTS."
  echo
  echo "### Targets"
  echo
  echo "| target | measured | target | |"
  echo "|---|---|---|---|"
  st_target_lines
  echo
  echo "### fsync latency of this disk"
  echo
  echo "\`kvs-fsync-probe\` (bench/fsync_probe.cc): one thread, $FSYNC_COUNT × (4 KiB \`pwrite\` + \`fdatasync\`) on $ST_FS, each sample timed from the write to the sync's return. append = each write extends a new file (the size change is journaled too); overwrite = the same blocks rewritten in a file written and synced beforehand (a preallocated log)."
  echo
  echo "| file | p50 ms | p90 ms | p99 ms | max ms | mean ms | syncs/s (one thread) |"
  echo "|---|---:|---:|---:|---:|---:|---:|"
  for line in "${ST_PROBE[@]}"; do
    jq -r '"| \(.mode) | \(.p50_ms) | \(.p90_ms) | \(.p99_ms) | \(.max_ms) | \(.mean_ms) | \(.per_second) |"' <<<"$line"
  done
  echo
  echo "### PUT throughput by storage mode"
  echo
  echo "kvs-bench \`--threads=$THREADS --connections=$CONNECTIONS\`, PUT only, uniform random keys over $KEYS preloaded keys, $VALUE_SIZE-byte values, \`--causal=$CAUSAL\`; 1 s warm-up + $ST_DURATION s measured per run; every run on freshly started nodes with empty data dirs. $ST_ROUNDS rounds; each round runs every mode once (1 node, then the 1-member etcd, then the 3-replica shard), the order of the modes rotating by one each round. Medians over the rounds; \"other cores\" = the most any run of the row saw. PUTs per fsync = PUTs answered / fsyncs counted by the server (\`$M_FSYNCS\`) over the whole kvs-bench run, preload included (3 replicas: client PUTs / fsyncs of all 3 nodes, each of which logs every write); mean fsync = \`$M_FSYNC_SECONDS\` / fsyncs over the same window. The etcd row has no such figures (—)."
  echo
  echo "One node (127.0.0.1):"
  echo
  echo "| storage | req/s by round | median req/s | × memory | p50 ms | p99 ms | server cores | other cores | PUTs per fsync | mean fsync ms | errors |"
  echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  local m mem
  mem="$(median_rps st-1-memory-r)"
  for m in "${ST_MODE_LIST[@]}"; do st_put_row "st-1-$m-r" "$(storage_desc "$m")" "$mem"; done
  st_put_row st-etcd1-r "etcd ${ETCD_VERSION:-?}, 1 member (fsync per commit)" "$mem"
  echo
  echo "A shard of 3 replicas (127.0.0.2-4, load spread over all three):"
  echo
  echo "| storage | req/s by round | median req/s | × memory | p50 ms | p99 ms | server cores | other cores | client PUTs per fsync | mean fsync ms | errors |"
  echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  mem="$(median_rps st-3-memory-r)"
  for m in "${ST_MODE_LIST[@]}"; do st_put_row "st-3-$m-r" "$(storage_desc "$m")" "$mem"; done
  echo
  if [[ -n "$ST_BIG_LINE" ]]; then
    IFS=$'\t' read -r -a f <<<"$ST_BIG_LINE"
    echo "### Restart to ready, ${f[0]} keys"
    echo
    echo "One node, \`KVS_STORAGE_MODE=disk KVS_STORAGE_FSYNC=interval\`, default snapshot settings, loaded with ${f[0]} keys × $VALUE_SIZE B (kvs-bench \`--preload\` with \`--causal=off\`, ${f[2]} s; data dir then $(mib "${f[9]}") on disk, snapshots taken: ${f[8]}). Then SIGKILL, start on the same data dir, and time from the start until \`/health\` answers \`\"ready\":true\` with \`keys\` = ${f[0]} (polled every 20 ms); then the same after SIGTERM (a clean stop). SIGKILL loses nothing written before it here (the page cache survives the process): this measures recovery time, not power-loss durability."
    echo
    echo "| restart after | stop took | data dir at the stop | first /health answer | ready, all keys | RSS when ready | /health \`storage\` when ready |"
    echo "|---|---:|---:|---:|---:|---:|---|"
    for line in "${ST_RESTART[@]}"; do
      local r; IFS=$'\t' read -r -a r <<<"$line"
      # shellcheck disable=SC2016 # backquotes for markdown, not a command substitution
      printf '| %s | %s s | %s | %s s | **%s s** | %s | `%s` |\n' "$([[ "${r[0]}" == kill ]] && echo SIGKILL || echo SIGTERM)" \
        "${r[1]}" "$(mib "${r[2]}")" "${r[3]}" "${r[4]}" "$(awk -v k="${r[5]}" 'BEGIN { printf "%.1f MiB", k / 1024 }')" "${r[6]//|/\\|}"
    done
    echo
    echo "### Memory at ${f[0]} keys, disk mode"
    echo
    echo "The same node after its load (before the restarts): RSS / raw key+value bytes, raw = keys (\"key0\" …) + ${f[0]} × $VALUE_SIZE B. RssFile counts file pages mapped by the process (e.g. an mmapped log), RssAnon the heap."
    echo
    echo "| keys | raw key+value | RSS before | RSS after load | peak RSS (VmHWM) | RssAnon / RssFile | RSS / raw | target ≤ 2× |"
    echo "|---:|---:|---:|---:|---:|---|---:|---|"
    awk -v n="${f[0]}" -v raw="${f[1]}" -v b="${f[3]}" -v a="${f[4]}" -v h="${f[5]}" -v an="${f[6]}" -v fi="${f[7]}" 'BEGIN {
      r = a * 1024 / raw
      printf "| %d | %.1f MiB | %.1f MiB | %.1f MiB | %.1f MiB | %s / %s | **%.2f×** | %s |\n", n, raw / 1048576, b / 1024, a / 1024, h / 1024,
        (an == "" ? "?" : sprintf("%.1f MiB", an / 1024)), (fi == "" ? "?" : sprintf("%.1f MiB", fi / 1024)), r, (r <= 2 ? "met" : "**not met**") }'
    echo
    if [[ -n "$MEM_LINE" ]]; then
      local g; IFS=$'\t' read -r -a g <<<"$MEM_LINE"
      echo "Memory mode in this run (section Memory): ${g[3]} MiB for ${g[1]} MiB raw = ${g[4]}×."
    else
      echo "Memory mode: see section Memory (not re-measured by a storage-only run)."
    fi
    echo
  fi
  if [[ -n "$ST_SNAP_LINE" ]]; then
    echo "### PUT latency across a snapshot"
    echo
    echo "The ${ST_BIG_KEYS}-key data dir above (a snapshot writes the whole store), one node, disk, fsync interval. Each run: restart on that dir, then as soon as it is ready PUT only over the ${ST_BIG_KEYS} keys, $CONNECTIONS connections, \`--causal=$CAUSAL\`, ${SNAPSHOT_DURATION} s, no warm-up (the whole run is measured). First run with \`KVS_STORAGE_SNAPSHOT_MIN_LOG_BYTES\` = 2^50: no snapshot can start. Second run with 1 MiB: the server's trigger is then max(1 MiB, half the last snapshot), which the log already exceeds at start (the first run's writes), so a snapshot starts within the snapshot thread's first 0.5 s check and runs under the load. Snapshots completed during the run from \`$M_SNAPSHOTS\`, their duration from \`$M_SNAPSHOT_SECONDS\`, log bytes from \`$M_LOG_WRITTEN\`. One run each: the difference between the rows is the figure to read, not either row alone."
    echo
    echo "| run | snapshot min log bytes | snapshots completed during the run | last snapshot took | log bytes written | req/s | p50 ms | p99 ms | p99.9 ms | max ms | errors |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    while IFS=$'\t' read -r -a f; do
      local maxms
      maxms="$(jq -s -r 'last | .latency_ms.max // "?" | if type == "number" then (. * 100 | round / 100) else . end' "$WORK/${f[0]}.json" 2>/dev/null || echo '?')"
      awk -F'\t' -v l="${f[0]}" -v t="${f[1]}" -v s="${f[2]}" -v b="${f[3]}" -v sec="${f[4]:-}" -v sb="${f[5]:-}" -v mx="$maxms" '$1 == l {
        printf "| %s | %s | %s | %s | %.1f MiB | %.0f | %.2f | **%.2f** | %.2f | %s | %d |\n",
          (l == "st-snap-off" ? "no snapshot" : "snapshot under load"), (t >= 2 ^ 50 ? "2^50 (off)" : sprintf("%.0f MiB", t / 1048576)),
          s, (sec == "" ? "—" : sprintf("%.2f s (%.1f MiB)", sec, sb / 1048576)), b / 1048576, $4, $5, $7, $8, mx, $12 + $13 }' "$RESULT_ROWS"
    done <<<"$ST_SNAP_LINE"
    echo
  fi
  if [[ -n "$ST_OVERWRITE_LINE" ]]; then
    IFS=$'\t' read -r -a f <<<"$ST_OVERWRITE_LINE"
    echo "### Bytes on disk after an overwrite-heavy run"
    echo
    echo "One node, disk, fsync interval, default snapshot settings: ${f[0]} keys preloaded, then ${f[2]} PUTs to uniformly random keys among them (${OVERWRITES} writes per key on average, preload included; \`--causal=off\`), in ${f[3]} s. Bytes on disk = allocated blocks (\`du -B1\`) of everything in the data dir; live = key+value bytes of the ${f[0]} keys. After the load the script waited (${f[8]} s) for a snapshot (unless one had happened) and for the data dir to stay the same for 2 s."
    echo
    echo "| live key+value | data dir, peak during the load | at the end of the load | snapshots at the end / after waiting | after waiting (allocated / apparent) | on disk / live | target ≤ 3× |"
    echo "|---:|---:|---:|---|---:|---:|---|"
    awk -v live="${f[1]}" -v peak="${f[4]}" -v end="${f[5]}" -v s0="${f[6]}" -v s1="${f[7]}" -v fa="${f[9]}" -v fp="${f[10]}" 'BEGIN {
      r = fa / live
      printf "| %.1f MiB | %.1f MiB (%.1f×) | %.1f MiB (%.1f×) | %s / %s | %.1f / %.1f MiB | **%.2f×** | %s |\n", live / 1048576, peak / 1048576, peak / live,
        end / 1048576, end / live, s0, s1, fa / 1048576, fp / 1048576, r, (r <= 3 ? "met" : "**not met**") }'
    echo
    echo "Files in the data dir after waiting: ${ST_OVERWRITE_FILES:-none}. The server's own figures then: newest snapshot $(mib "${f[12]:-0}") (\`$M_SNAPSHOT_BYTES\`), log not yet covered by a snapshot $(mib "${f[11]:-0}") (\`$M_LOG_PENDING\`); a snapshot starts when that log reaches max(\`kvs.storage.snapshot_min_log_bytes\`, \`kvs.storage.snapshot_log_percent\` of the newest snapshot)."
    echo
  fi
  echo "### Commands (storage)"
  echo
  echo "Run by \`bench/run.sh\` (paths as used, the temp dir as <tmp>; a kvs-server line shows its whole environment$( ((ST_ROUNDS > 1)) && echo "; rounds 2..$ST_ROUNDS repeat round 1's commands with their own labels and data dirs")):"
  echo
  echo '```sh'
  printf '%s\n' "${ST_COMMANDS[@]}"
  echo '```'
  echo
  echo "$ST_END_MARK"
}

# A run of only the storage part: its section replaces the one in RESULTS.md (or goes before
# "## Notes", or at the end), the rest of the file stays as the last full run wrote it.
splice_storage_section() {
  local tmp="$RESULTS.tmp" section="$WORK/storage-section.md"
  storage_section >"$section"
  if [[ ! -f "$RESULTS" ]]; then
    { echo "# kvs benchmark results"; echo; cat "$section"; } >"$tmp"
  elif grep -qF "$ST_BEGIN_MARK" "$RESULTS"; then
    awk -v b="$ST_BEGIN_MARK" -v e="$ST_END_MARK" -v f="$section" '
      $0 == b { while ((getline l < f) > 0) print l; skip = 1; next }
      skip && $0 == e { skip = 0; next }
      !skip { print }' "$RESULTS" >"$tmp"
  elif grep -q '^## Notes' "$RESULTS"; then
    awk -v f="$section" '/^## Notes/ && !done { while ((getline l < f) > 0) print l; print ""; done = 1 } { print }' "$RESULTS" >"$tmp"
  else
    { cat "$RESULTS"; echo; cat "$section"; } >"$tmp"
  fi
  mv "$tmp" "$RESULTS"
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
    awk -F'\t' -v m="$MAX_OTHER" '$1 !~ /^(scale|pair|st)-/ {
      printf "| %s | %s | %.0f | %.2f | %.2f | %.2f | %.2f | %s | %s | %s | %s%s | %s | %s |\n", $2, $3, $4, $5, $6, $7, $8, $9, $10, $17, $11, ($11 > m ? " ⚠" : ""), $12, $13 }' "$RESULT_ROWS"
    echo
    local repeated
    repeated="$(awk -F'\t' -v m="$MAX_OTHER" '$16 > 1 || $11 > m { printf "%s%s (kept attempt %d, other %s cores)", sep, $1, $16, $11; sep = ", " }' "$RESULT_ROWS")"
    if [[ -n "$repeated" ]]; then
      echo "Runs disturbed by other processes on the machine (repeated up to $RETRIES times, least disturbed kept; ⚠ = still above $MAX_OTHER cores): $repeated."
      echo
    fi
    echo "Status codes per run: $(awk -F'\t' '$1 !~ /^(scale|pair|st)-/ { printf "%s%s: %s", sep, $1, ($15 == "" ? "—" : $15); sep = "; " }' "$RESULT_ROWS")."
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
    if grep -q '^kvs6-get' "$RESULT_ROWS" 2>/dev/null; then cluster_section; fi
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
    if part storage; then
      storage_section
      echo
    fi
    echo "## Notes"
    echo
    if ((${#SERVER_DEATHS[@]})); then
      local death
      for death in "${SERVER_DEATHS[@]}"; do echo "- **A server ended on its own** (not stopped by the script): \`${death//\`/\'}\`"; done
    fi
    echo "- nginx answers GET with a fixed body and does no work: it is the machine's HTTP ceiling, and both kvs ratios (GET and PUT) are against nginx's GET. On $NPROC shared cores its number is bounded by the whole machine (server + load generator + irq ≈ all cores), not by nginx alone."
    echo "- etcd runs with its default durability: every commit fsyncs its WAL, data dirs on ${ETCD_FS:-?} under /tmp. $(if [[ -n "$STORAGE_SUPPORTED" ]]; then echo "kvs runs with its default storage settings ($STORAGE_DEFAULTS; a fresh data dir per node start, under /tmp); section Storage compares the durability modes, and a 1-member etcd."; else echo "kvs keeps data in memory only (README: no write-ahead log yet), so the PUT ratio compares different durability."; fi)"
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
  [[ "$PARTS" == ",storage," ]] || log "ratios"
  [[ "$PARTS" == ",storage," ]] || {
    nginx_ratio_lines
    ratio_line "kvs 3-replica PUT / etcd 3-member PUT" kvs3-put etcd-put 10
  } | sed 's/\*\*//g; s/^| /    /; s/ |$//; s/ | /  /g'
  if [[ -n "$MEM_LINE" ]]; then
    awk -F'\t' '{ printf "    memory: RSS/raw %s× (target ≤ 2×)\n", $5 }' <<<"$MEM_LINE"
  fi
  if [[ -n "$ST_DONE" ]]; then
    log "storage targets"
    st_target_lines | sed 's/\*\*//g; s/^| /    /; s/ |$//; s/ | /  /g'
  fi
  if ((${#SERVER_DEATHS[@]})); then
    log "servers that ended on their own (see the warnings above)"
    printf '    %s\n' "${SERVER_DEATHS[@]}"
  fi
  log "wrote ${RESULTS#"$ROOT"/} in $((SECONDS - START_SECONDS))s"
}

usage() {
  sed -n '2,/^set -euo/{ /^set -euo/d; s/^# \{0,1\}//; p }' "${BASH_SOURCE[0]}"
}

main() {
  while (($#)); do
    case "$1" in
      --only) (($# >= 2)) || die "--only needs a list of parts ($ALL_PARTS)"; PARTS=",$2,"; shift 2 ;;
      --only=*) PARTS=",${1#--only=},"; shift ;;
      -h | --help) usage; exit 0 ;;
      *) die "unknown argument '$1' (bench/run.sh [--only PART,...]; --help)" ;;
    esac
  done
  local p
  for p in ${PARTS//,/ }; do
    [[ ",$ALL_PARTS," == *",$p,"* ]] || die "unknown part '$p' (parts: $ALL_PARTS)"
  done
  [[ $EUID -eq 0 ]] || warn "not root: package installation will fail if anything is missing"
  # Only what the chosen parts use.
  local pkgs=(curl jq)
  if part nginx || part paired; then pkgs+=(nginx-light); fi
  if part nginx || part single; then pkgs+=(wrk); fi
  if part sweep; then pkgs+=(gnuplot-nox); fi
  if part etcd || part storage; then pkgs+=(etcd-server etcd-client); fi
  ensure_packages "${BUILD_PKGS[@]}" "${pkgs[@]}"
  WORK="$(mktemp -d /tmp/kvs-bench.XXXXXX)"
  RESULT_ROWS="$WORK/rows.tsv"
  : >"$RESULT_ROWS"
  # Servers start here: kvs-server would read a config/kvs.properties from the working
  # directory before the repo's, and the caller's directory may hold anything.
  cd "$WORK"
  build
  if "$SERVER_BIN" --help 2>&1 | grep -q 'kvs\.storage\.dir'; then
    STORAGE_SUPPORTED=1
    local k v
    for k in mode fsync fsync_interval_ms snapshot_min_log_bytes; do
      v="$(kvs_default_frontend "kvs.storage.$k")"
      [[ -n "$v" ]] && STORAGE_DEFAULTS+="${STORAGE_DEFAULTS:+, }kvs.storage.$k=$v"
    done
    STORAGE_DEFAULTS="${STORAGE_DEFAULTS:-see kvs-server --help}"
  fi
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
  # The cluster's figures are read against the single node's of the same run.
  if part single || part sweep || part cluster6; then bench_kvs_single; fi
  if part paired; then bench_paired; fi
  if part replica3; then bench_kvs_replica3; fi
  if part cluster6; then bench_kvs_cluster6; fi
  if part etcd; then bench_etcd; fi
  if part scaling; then bench_scaling; fi
  if part memory; then bench_memory; fi
  if part storage; then bench_storage; fi
  if [[ "$PARTS" == ",storage," ]]; then
    [[ -n "$ST_DONE" ]] || die "the server has no storage settings: nothing measured, ${RESULTS#"$ROOT"/} left as it was"
    splice_storage_section
  else
    write_results
  fi
  print_summary
}

main "$@"
