#!/usr/bin/env bash
# Builds kvs and runs every test: unit tests per module, the HTTP tests against the real
# kvs-server binary, and the Docker smoke test (./build.sh, PUT/GET through host ports,
# ./clean.sh). Exits non-zero when any test fails.
#
# Environment:
#   KVS_BUILD_DIR      build tree (default: build)
#   KVS_DOCKER_TESTS   ON (default) or OFF to skip the Docker tests
#   KVS_CLUSTER_TESTS  ON (default) or OFF to skip the live cluster (network namespace) tests
#   KVS_TEST_JOBS      parallel test processes (default: number of cores)
#   KVS_SANITIZERS     sanitizer builds to test after the normal one (default "address thread":
#                      ASan + UBSan, TSan; "" skips them; clang)
#   KVS_FUZZ_SECONDS   seconds each libFuzzer target runs, in the address build (default 6; 0
#                      skips fuzzing; needs libclang-rt-14-dev)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${KVS_BUILD_DIR:-build}"
[[ "$BUILD_DIR" = /* ]] || BUILD_DIR="$ROOT/$BUILD_DIR"
JOBS="${KVS_TEST_JOBS:-$(nproc)}"

# KVS_UNITY: module libraries and unit tests as unity sources (the tree is built three times).
cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release -DKVS_WERROR=ON -DKVS_UNITY=ON \
  -DKVS_DOCKER_TESTS="${KVS_DOCKER_TESTS:-ON}" -DKVS_CLUSTER_TESTS="${KVS_CLUSTER_TESTS:-ON}"
cmake --build "$BUILD_DIR" -j"$(nproc)"

export KVS_BUILD_DIR="$BUILD_DIR"
ctest --test-dir "$BUILD_DIR" --output-on-failure -j"$JOBS" --timeout 900

# Sanitizer stages: the tree built with clang under each sanitizer (KVS_SANITIZERS), then the
# unit and HTTP suites and one live cluster test (writes, kill -9, restart from disk). Every
# process of them (the servers too: the harnesses pass *SAN_OPTIONS on) writes its reports to
# <build>-<sanitizer>/reports; any report fails the run. Suppressions, each with its reason:
# tests/sanitizers/. The address build also has the libFuzzer targets (KVS_FUZZ=ON).
SANITIZERS="${KVS_SANITIZERS-address thread}"
FUZZ_SECONDS="${KVS_FUZZ_SECONDS:-6}"
SANITIZED_TESTS='^(ReplicaDurabilityTest\.KilledReplicaServesEveryWriteItAcknowledged)$'
SANITIZED_TEST_FILES='durability_cluster_test.cc'  # the live test file that holds it: only it is built

# Runs every tests/fuzz/<x>_fuzz.cc target of build tree $1 for FUZZ_SECONDS from a copy of its
# seeds (tests/fuzz/corpus/<x>; libFuzzer adds what it finds to the copy), JOBS at a time.
run_fuzzers() {
  local dir="$1" out="$1/fuzz" source name
  rm -rf "$out" && mkdir -p "$out"
  for source in "$ROOT"/tests/fuzz/*_fuzz.cc; do
    name="$(basename "$source" .cc)"
    cp -r "$ROOT/tests/fuzz/corpus/${name%_fuzz}" "$out/corpus-$name"
    mkdir -p "$out/$name"
    echo "==> fuzzing $name for ${FUZZ_SECONDS}s"
    "$dir/tests/fuzz/$name" -max_total_time="$FUZZ_SECONDS" -max_len=65536 \
      -artifact_prefix="$out/$name/" -print_final_stats=1 "$out/corpus-$name" \
      >"$out/$name.log" 2>&1 &
    while (($(jobs -rp | wc -l) >= JOBS)); do wait -n || true; done
  done
  wait || true
  local failed=0
  for source in "$ROOT"/tests/fuzz/*_fuzz.cc; do
    name="$(basename "$source" .cc)"
    grep -E "^(stat::number_of_executed_units|Done|==[0-9]+==|SUMMARY)" "$out/$name.log" |
      sed "s/^/$name: /" || true
    # libFuzzer leaves crash-*/leak-*/timeout-*/oom-* for a finding.
    if compgen -G "$out/$name/*" >/dev/null || ! grep -q "^Done [0-9]* runs" "$out/$name.log"; then
      echo "fuzzing $name found a problem (input in $out/$name, log $out/$name.log)" >&2
      tail -n 40 "$out/$name.log" >&2
      failed=1
    fi
  done
  return "$failed"
}

for sanitizer in $SANITIZERS; do
  # The address build compiles everything (the whole tree builds with clang too); the thread
  # build leaves out the load generator, to keep CI within its time.
  dir="$BUILD_DIR-$sanitizer" fuzz=OFF bench=ON
  if [[ "$sanitizer" == address && "$FUZZ_SECONDS" != 0 ]]; then fuzz=ON; fi
  if [[ "$sanitizer" == thread ]]; then bench=OFF; fi
  echo "==> $sanitizer sanitizer build ($dir, fuzz targets $fuzz)"
  cmake -S "$ROOT" -B "$dir" -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -gline-tables-only" -DKVS_SANITIZE="$sanitizer" -DKVS_FUZZ="$fuzz" \
    -DKVS_BENCH="$bench" -DKVS_WERROR=ON -DKVS_UNITY=ON -DKVS_DOCKER_TESTS=OFF \
    -DKVS_CLUSTER_TESTS="${KVS_CLUSTER_TESTS:-ON}" -DKVS_CLUSTER_TEST_FILES="$SANITIZED_TEST_FILES" \
    >/dev/null
  cmake --build "$dir" -j"$(nproc)"
  if [[ "$fuzz" == ON ]]; then run_fuzzers "$dir"; fi
  reports="$dir/reports" supp="$ROOT/tests/sanitizers"
  rm -rf "$reports" && mkdir -p "$reports"
  sanitized_ctest() {
    ASAN_OPTIONS="log_path=$reports/asan:detect_leaks=1" \
    LSAN_OPTIONS="suppressions=$supp/lsan.supp" \
    UBSAN_OPTIONS="log_path=$reports/ubsan:print_stacktrace=1:halt_on_error=1" \
    TSAN_OPTIONS="log_path=$reports/tsan:halt_on_error=0:second_deadlock_stack=1:suppressions=$supp/tsan.supp" \
    KVS_BUILD_DIR="$dir" ctest --test-dir "$dir" --output-on-failure --timeout 900 "$@"
  }
  # (Not the secure.* repeat of the HTTP suite: the same code paths as the plain run plus TLS,
  # which TlsTest and AuthTest cover here on both front ends; it keeps CI within its time.)
  # The thread build leaves out the poco.* repeat too (POCO's HTTPServer threads are POCO's;
  # the epoll run covers kvs's own: loops, workers, the log writer, senders), for CI's time.
  exclude='^secure\.'
  if [[ "$sanitizer" == thread ]]; then exclude='^(secure|poco)\.'; fi
  sanitized_ctest -j"$JOBS" -LE 'cluster|docker' -E "$exclude"
  if [[ "${KVS_CLUSTER_TESTS:-ON}" != OFF ]]; then sanitized_ctest -R "$SANITIZED_TESTS"; fi
  if compgen -G "$reports/*" >/dev/null; then
    echo "$sanitizer sanitizer reports:" >&2
    head -c 20000 "$reports"/* >&2
    exit 1
  fi
  echo "==> $sanitizer sanitizer: no reports"
done
