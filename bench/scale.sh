#!/usr/bin/env bash
# Scale benchmark (issue 11): how a replica's background work grows with the data set.
#
#   bench/scale.sh                      key counts from SCALE_KEYS (default "100000 1000000")
#   SCALE_KEYS="1000000 10000000" bench/scale.sh
#   SCALE_RESHARD_KEYS="..."            key counts of the reshard part (default SCALE_KEYS;
#                                       "" skips it); SCALE_SHARD_KEYS likewise for the first
#   SCALE_KEEP_LOGS=DIR                 copy the nodes' logs to DIR at the end
#
# For each key count: a 3-replica shard of local kvs-server processes on 127.0.0.2-4 (disk
# mode, fsync=interval so that loading is quick; values of 100 bytes), loaded with that many
# keys through all three nodes, then:
#   idle       CPU of each node over 30 s with no traffic (after the load settled), in % of one
#              core (the scheduler's runtime of its threads);
#   restart    kill -9 of replica 3 and a start on its data directory: seconds until /health
#              says ready with every key; then the same after PUTs that filled its log to just
#              below the size that starts its next snapshot (the most log a restart replays);
#   empty      kill -9 of replica 3, its data directory deleted (a new, empty member): seconds
#              until it is ready with every key (a streamed transfer from a peer);
#   pause      replica 3 stopped (SIGSTOP) for 10 s while the others take PUTs over the key
#              space, then resumed: bytes it received by anti-entropy (kvs_transfer_*) and
#              its catch-up time;
#   metadata   a client session writing while each replica in turn is killed and restarted
#              from its disk, 10 times: how many origins its causal metadata names.
# Then, for each key count of the reshard part: 6 nodes on 127.0.0.2-7 in 2 shards of 3,
# loaded with that many keys, and a reshard to 3 shards while kvs-bench sends 50/50 GET/PUT
# over all six nodes (8 connections, uniform random keys): the reshard's total time, how long
# writes were held (its Kvs-Reshard header: the longest barrier of any node), and the
# client's p99, max latency and errors over a run that spans the reshard.
# Results go to stdout and to bench/RESULTS.md, section "Scale" (replaced if present).
# Every server it starts is stopped on exit (also on failure or Ctrl-C). Loopback only.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="$ROOT/${KVS_BUILD_DIR:-build-bench}"
SERVER="$BUILD/app/kvs-server"
BENCH="$BUILD/bench/kvs-bench"
KEYS_LIST="${SCALE_KEYS:-100000 1000000}"
SHARD_KEYS="${SCALE_SHARD_KEYS-$KEYS_LIST}"
RESHARD_KEYS="${SCALE_RESHARD_KEYS-$KEYS_LIST}"
PORT=18490
RESULTS="$ROOT/bench/RESULTS.md"

log() { printf '==> %s\n' "$*"; }
die() {
  printf 'scale.sh: %s\n' "$*" >&2
  exit 1
}

WORK="$(mktemp -d /tmp/kvs-scale.XXXXXX)"
declare -a PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do
    [[ -n "$pid" ]] || continue
    kill -CONT "$pid" 2>/dev/null || true
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  if [[ -n "${SCALE_KEEP_LOGS:-}" ]]; then
    mkdir -p "$SCALE_KEEP_LOGS" && cp "$WORK"/node-*.log "$SCALE_KEEP_LOGS"/ 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

command -v curl >/dev/null || die "needs curl"
log "building kvs-server and kvs-bench (Release) in $BUILD"
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD" -j"$(nproc)" --target kvs-server kvs-bench >/dev/null

addr() { echo "127.0.0.$(($1 + 2)):$PORT"; }
VIEW="$(addr 0),$(addr 1),$(addr 2)"
SHARDS=1

start_node() {
  local i="$1"
  env -i PATH="$PATH" SOCKET_ADDRESS="$(addr "$i")" VIEW="$VIEW" SHARD_COUNT="$SHARDS" \
    KVS_HTTP_BIND="127.0.0.$((i + 2))" KVS_STORAGE_DIR="$WORK/data-$i" \
    KVS_STORAGE_FSYNC=interval "$SERVER" >>"$WORK/node-$i.log" 2>&1 &
  PIDS[i]=$!
}

stop_node() {
  local i="$1"
  kill -KILL "${PIDS[i]}" 2>/dev/null || true
  wait "${PIDS[i]}" 2>/dev/null || true
  PIDS[i]=""
}

# ready_with I N: node I answers /health with "ready":true and "keys":N.
ready_with() {
  curl -s --max-time 1 "http://$(addr "$1")/health" 2>/dev/null |
    grep -q "\"keys\":$2[,}].*\"ready\":true\|\"ready\":true.*\"keys\":$2[,}]"
}

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# wait_ready I N TIMEOUT_S: polls every 100 ms (each poll forks curl and grep: polling every 20 ms
# took a third of this 2-core machine away from the nodes it times); prints the seconds it took.
wait_ready() {
  local i="$1" n="$2" timeout="$3" start
  start=$(now_ms)
  while ! ready_with "$i" "$n"; do
    if (($(now_ms) - start > timeout * 1000)); then
      tail -5 "$WORK/node-$i.log" >&2
      die "node $(addr "$i") not ready with $n keys within ${timeout}s"
    fi
    sleep 0.1
  done
  awk -v ms="$(($(now_ms) - start))" 'BEGIN { printf "%.2f", ms / 1000 }'
}

# quiet_state: one line of every node's counters of background work, and whether any node is
# writing a snapshot.
quiet_state() {
  local i
  for i in 0 1 2; do
    curl -s --max-time 2 "http://$(addr "$i")/metrics" | awk '
      $1 == "kvs_storage_snapshot_running" || $1 == "kvs_storage_snapshots_total" ||
      $1 == "kvs_anti_entropy_updates_applied_total" ||
      $1 == "kvs_replication_broadcast_sent_total" ||
      $1 == "kvs_replication_updates_applied_total" { printf "%s=%s ", $1, $2 }'
  done
}

# wait_quiet TIMEOUT_S: until no node writes a snapshot and no counter of background work
# (anti-entropy repairs, broadcasts sent or applied: a load leaves queues that drain for a
# while after its last answer) moved for 5 s (then 2 s more, for good measure); prints the
# seconds it took. (Not the transfer chunk counters: every anti-entropy round's reply counts as
# a chunk, idle or not.)
wait_quiet() {
  local timeout="$1" start last now same=0
  start=$(now_ms)
  last="$(quiet_state)"
  while ((same < 5)); do
    (($(now_ms) - start > timeout * 1000)) && die "nodes still busy after ${timeout}s: $last"
    sleep 1
    now="$(quiet_state)"
    if [[ "$now" == "$last" && "$now" != *"snapshot_running=1"* ]]; then
      same=$((same + 1))
    else
      same=0
    fi
    last="$now"
  done
  sleep 2
  awk -v ms="$(($(now_ms) - start))" 'BEGIN { printf "%.0f", ms / 1000 }'
}

metric() {
  curl -s --max-time 2 "http://$(addr "$1")/metrics" |
    awk -v m="$2" '$1 == m { v += $2 } END { printf "%.0f", v + 0 }'
}

# cpu_ns PID: nanoseconds process PID has run on a CPU, summed over its threads (the
# scheduler's own runtime, /proc/PID/task/*/schedstat), rather than utime+stime from
# /proc/PID/stat, which counts 10 ms ticks: an idle node earns a few of them in 10 s.
cpu_ns() {
  local total=0 task
  for task in /proc/"$1"/task/*; do
    total=$((total + $(awk '{ print $1 }' "$task/schedstat" 2>/dev/null || echo 0)))
  done
  echo "$total"
}

declare -a ROWS=()
for keys in $SHARD_KEYS; do
  log "$keys keys: starting 3 replicas on $VIEW"
  rm -rf "$WORK"/data-*
  for i in 0 1 2; do start_node "$i"; done
  for i in 0 1 2; do wait_ready "$i" 0 30 >/dev/null; done

  log "$keys keys: loading (kvs-bench --preload, 100-byte values, 32 connections)"
  load_start=$(date +%s)
  "$BENCH" --targets="$VIEW" --threads=1 --connections=32 --keys="$keys" --preload \
    --value-size=100 --mix=get:100 --duration=1 --warmup=0 --quiet >/dev/null
  for i in 0 1 2; do wait_ready "$i" "$keys" 600 >/dev/null; done
  log "$keys keys: loaded and replicated in $(($(date +%s) - load_start)) s"

  # The load's own background work settles first: a snapshot the load triggered (at 10M keys
  # one takes ~30 s) and anti-entropy repairs of broadcasts that timed out under the load.
  settle=$(wait_quiet 600)
  log "$keys keys: settled ${settle} s after the load (no snapshot running, no repair for 5 s)"
  declare -a before=()
  for i in 0 1 2; do before[i]=$(cpu_ns "${PIDS[i]}"); done
  idle_start=$(date +%s%N)
  sleep 30
  idle_ns=$(($(date +%s%N) - idle_start))
  idle=""
  for i in 0 1 2; do
    pct=$(awk -v t="$(($(cpu_ns "${PIDS[i]}") - before[i]))" -v ns="$idle_ns" \
      'BEGIN { printf "%.2f", t * 100 / ns }')
    idle+="${idle:+ / }$pct"
  done
  log "$keys keys: idle CPU per node (% of a core, 30 s): $idle"

  stop_node 2
  start_node 2
  restart=$(wait_ready 2 "$keys" 120)
  log "$keys keys: restart to ready with its disk: ${restart} s"

  # The same with as much log to replay as there can be: PUTs (overwrites of the loaded keys)
  # until replica 3's log is within 3% of the size that starts its next snapshot, then kill -9
  # and restart. Each kvs-bench run is sized to what is left (~170 bytes of log per PUT).
  snaps_before=$(metric 2 kvs_storage_snapshots_total)
  while true; do
    log_bytes=$(metric 2 kvs_storage_log_bytes)
    threshold=$(metric 2 kvs_storage_snapshot_threshold_bytes)
    left=$((threshold * 97 / 100 - log_bytes))
    ((left > 0)) || break
    "$BENCH" --targets="$VIEW" --threads=1 --connections=32 --keys="$keys" --value-size=100 \
      --mix=put:100 --requests=$((left / 170 < 100000 ? left / 170 + 1 : 100000)) \
      --duration=60 --warmup=0 --quiet >/dev/null
  done
  for i in 0 1 2; do wait_ready "$i" "$keys" 120 >/dev/null; done
  replay_snaps=$(($(metric 2 kvs_storage_snapshots_total) - snaps_before))
  replay_log=$(metric 2 kvs_storage_log_bytes)
  stop_node 2
  start_node 2
  restart_long=$(wait_ready 2 "$keys" 120)
  replayed=$(curl -s --max-time 2 "http://$(addr 2)/health" |
    grep -o '"recovered_log_records":[0-9]*' | grep -o '[0-9]*$')
  log "$keys keys: restart to ready with the longest log ($replay_log bytes, $replayed records;" \
    "$replay_snaps snapshot(s) while writing it): ${restart_long} s"

  stop_node 2
  rm -rf "$WORK/data-2"
  start_node 2
  empty=$(wait_ready 2 "$keys" 600)
  log "$keys keys: empty replica ready with every key: ${empty} s"

  # A session that passes its metadata along while each replica in turn is killed (-9) and
  # restarted from its disk (a new incarnation: a new origin) and then written at: what the
  # metadata names after 10 restarts, and after the replicas have reported what they applied.
  session=""
  # (Before the pause step: a replica still catching up on the pause's writes cannot take a
  # write that depends on them. A 503 is retried after 1 s, as a client would; counted.)
  retries=0
  session_put() {
    local answer next try
    for try in 1 2 3 4 5 6 7 8 9 10; do
      answer=$(curl -s --max-time 30 -X PUT -H 'Content-Type: application/json' \
        -d "{\"value\":\"v$2\",\"causal-metadata\":\"$session\"}" \
        "http://$(addr "$1")/key-value-store/scale-session-$2")
      next=$(sed -n 's/.*"causal-metadata":"\([^"]*\)".*/\1/p' <<<"$answer")
      if [[ -n "$next" ]]; then
        session="$next"
        return 0
      fi
      retries=$((retries + 1))
      sleep 1
    done
    die "session PUT at node $(addr "$1") answered: $answer"
  }
  origins() { [[ "$session" == *"|"?* ]] && tr ',' '\n' <<<"${session#*|}" | wc -l || echo 0; }
  most=0
  for round in $(seq 0 9); do
    n=$((round % 3))
    stop_node "$n"
    session_put $(((n + 1) % 3)) "$round-a"
    start_node "$n"
    wait_ready "$n" "$((keys + 2 * round + 1))" 600 >/dev/null
    session_put "$n" "$round-b"
    (($(origins) > most)) && most=$(origins)
  done
  sleep 3 # anti-entropy rounds: every replica reports what it applied
  session_put 0 "after"
  meta_after="$(origins) origin(s), ${#session} bytes ($retries PUTs retried after a 503)"
  log "$keys keys: session metadata over 10 restarts: at most $most origins; after: $meta_after"

  bytes_before=$(metric 2 kvs_transfer_received_bytes_total)
  kill -STOP "${PIDS[2]}"
  "$BENCH" --targets="$(addr 0),$(addr 1)" --threads=1 --connections=8 --keys="$keys" \
    --value-size=100 --mix=put:100 --duration=10 --warmup=0 --quiet \
    --json="$WORK/pause.json" >/dev/null
  puts=$(grep -o '"requests": *[0-9]*' "$WORK/pause.json" | head -1 | grep -o '[0-9]*$' || echo "?")
  kill -CONT "${PIDS[2]}"
  sleep 3 # a few anti-entropy rounds
  bytes=$(($(metric 2 kvs_transfer_received_bytes_total) - bytes_before))
  log "$keys keys: 10 s pause under $puts PUTs: $bytes bytes received by anti-entropy after it"

  ROWS+=("| $keys | $idle | $restart | $restart_long ($replayed log records) | $empty | $puts | $bytes | $most | $meta_after |")
  for i in 0 1 2; do stop_node "$i"; done
done

# --- reshard 2 -> 3 under load ---
declare -a RESHARD_ROWS=()
VIEW="$(addr 0),$(addr 1),$(addr 2),$(addr 3),$(addr 4),$(addr 5)"
SHARDS=2
# live_total: the sum of the live keys each shard reports.
live_total() {
  curl -s --max-time 5 "http://$(addr 0)/key-value-store-shard/shard-ids" |
    grep -o '\[[0-9,]*\]' | tr -d '[]' | tr ',' '\n' | while read -r id; do
    curl -s --max-time 30 "http://$(addr 0)/key-value-store-shard/shard-id-key-count/$id" |
      grep -o '"shard-id-key-count":[0-9]*' | grep -o '[0-9]*$'
  done | awk '{ s += $1 } END { print s + 0 }'
}
json_number() { grep -o "\"$2\": *[0-9.]*" "$1" | head -1 | grep -o '[0-9.]*$'; }
for keys in $RESHARD_KEYS; do
  log "$keys keys: starting 6 nodes in 2 shards on $VIEW"
  rm -rf "$WORK"/data-*
  for i in 0 1 2 3 4 5; do start_node "$i"; done
  for i in 0 1 2 3 4 5; do wait_ready "$i" 0 30 >/dev/null; done
  "$BENCH" --targets="$VIEW" --threads=1 --connections=32 --keys="$keys" --preload \
    --value-size=100 --mix=get:100 --duration=1 --warmup=0 --quiet >/dev/null
  start=$(now_ms)
  until [[ "$(live_total)" == "$keys" ]]; do
    (($(now_ms) - start < 600000)) || die "the 2 shards never held $keys keys"
    sleep 0.5
  done
  log "$keys keys: loaded"
  sleep 3
  # The client runs past the reshard's expected end (about 70k keys a second at 1M).
  duration=$((8 + keys / 70000))
  "$BENCH" --targets="$VIEW" --threads=1 --connections=8 --keys="$keys" --value-size=100 \
    --mix=get:50,put:50 --duration="$duration" --warmup=0 --quiet \
    --json="$WORK/reshard.json" >/dev/null &
  bench_pid=$!
  sleep 3
  t0=$(now_ms)
  answer=$(curl -s -D "$WORK/reshard.head" --max-time 600 -X PUT \
    -H 'Content-Type: application/json' -d '{"shard-count":3}' \
    "http://$(addr 0)/key-value-store-shard/reshard")
  took=$(awk -v ms="$(($(now_ms) - t0))" 'BEGIN { printf "%.2f", ms / 1000 }')
  wait "$bench_pid" || die "kvs-bench failed during the reshard"
  [[ "$answer" == '{"message":"Resharding done successfully"}' ]] || die "reshard answered: $answer"
  report=$(grep -i '^Kvs-Reshard:' "$WORK/reshard.head" | tr -d '\r')
  held=$(grep -o '"writes_held_ms":[0-9]*' <<<"$report" | grep -o '[0-9]*$')
  moved=$(grep -o '"entries":[0-9]*' <<<"$report" | grep -o '[0-9]*$' | awk '{ s += $1 } END { print s + 0 }')
  j="$WORK/reshard.json"
  p99=$(json_number "$j" p99)
  max=$(json_number "$j" max)
  requests=$(json_number "$j" requests)
  errors=$(($(json_number "$j" http_errors) + $(json_number "$j" transport_errors)))
  total=$(live_total)
  log "$keys keys: reshard 2 -> 3 in $took s, writes held $held ms, $moved entries pulled;" \
    "client: $requests requests, p99 $p99 ms, max $max ms, $errors errors; $total keys after"
  [[ "$total" == "$keys" ]] || die "after the reshard the shards hold $total keys, not $keys"
  RESHARD_ROWS+=("| $keys | $took | $held | $moved | $requests | $p99 | $max | $errors |")
  for i in 0 1 2 3 4 5; do stop_node "$i"; done
done

table="$(
  cat <<EOF
## Scale

\`bench/scale.sh\` ($(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores): a 3-replica shard of local processes on 127.0.0.2-4, disk mode with \`KVS_STORAGE_FSYNC=interval\` (to load quickly), 100-byte values loaded by kvs-bench \`--preload\` through all three nodes. Idle: CPU of each node over 30 s with no traffic (the scheduler's runtime of its threads, /proc/PID/task/*/schedstat), once the load's background work settled (no node writing a snapshot, and no anti-entropy repair or broadcast anywhere for 5 s, then 2 s more). Restart: kill -9 of replica 3 and a start on its data directory, until \`/health\` says ready with every key. Longest log: the same after PUTs (overwrites) that brought replica 3's log within 3% of the size that starts its next snapshot (\`kvs_storage_snapshot_threshold_bytes\`, 25% of the last snapshot by default): as much log to replay as a restart can meet. Empty: the same with its data directory deleted (a new empty member; the whole shard streams from a peer in 4 MiB chunks). Pause: replica 3 stopped (SIGSTOP) for 10 s while kvs-bench PUTs to the other two (8 connections, uniform random keys), then resumed; bytes = \`kvs_transfer_received_bytes_total\` at replica 3, 3 s after it resumed (what anti-entropy sent it; broadcasts queued at its peers come on top). Metadata: one client session (curl, passing the \`causal-metadata\` it got back) while replica 1, 2, 3, 1, ... is killed (-9) and restarted from its disk ten times; before each restart the session writes at the next replica, after it at the restarted one (an origin of its new incarnation); "most" = the most origins the session's metadata named after any of those writes; "after" = its origins and bytes after one more write, 3 s after the last restart.

| keys | idle CPU per node (% of a core) | restart to ready (s) | restart with the longest log (s) | empty replica ready (s) | PUTs during the pause | anti-entropy bytes after the pause | session metadata: most origins over 10 restarts | session metadata after them |
|---:|---|---:|---:|---:|---:|---:|---:|---|
$(printf '%s\n' "${ROWS[@]}")

Reshard 2 -> 3 under load: 6 nodes on 127.0.0.2-7 in 2 shards of 3 (same settings), loaded with the key count, then \`PUT /key-value-store-shard/reshard {"shard-count":3}\` at node 1 while kvs-bench sends 50/50 GET/PUT over all six nodes (8 connections, uniform random keys, \`--duration\` = 8 s + 1 s per 70k keys, started 3 s before the reshard). Time: until the reshard's answer. Writes held: \`writes_held_ms\` of the answer's \`Kvs-Reshard\` header (the longest any node held writes, barrier to reopening). Entries pulled: what the members of the new shards streamed in (each member pulls its range). Latency and errors: the client's whole run. Every key is counted after.

| keys | reshard (s) | writes held (ms) | entries pulled | client requests | client p99 (ms) | client max (ms) | client errors |
|---:|---:|---:|---:|---:|---:|---:|---:|
$(printf '%s\n' "${RESHARD_ROWS[@]}")
EOF
)"
printf '\n%s\n' "$table"
if [[ -f "$RESULTS" ]] && grep -q '^## Scale$' "$RESULTS"; then
  # Replace the old section (up to the next "## " heading or the end).
  awk -v t="$table" '
    /^## Scale$/ { print t; skip = 1; next }
    skip && /^## / { skip = 0; print ""; }
    !skip { print }' "$RESULTS" >"$WORK/results" && cat "$WORK/results" >"$RESULTS"
else
  printf '\n%s\n' "$table" >>"$RESULTS"
fi
log "wrote the Scale section of $RESULTS"
