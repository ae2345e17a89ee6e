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
#   KVS_FUZZ_SECONDS   seconds each libFuzzer target runs (default 30; 0 skips fuzzing; needs
#                      clang and libclang-rt-14-dev)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${KVS_BUILD_DIR:-build}"
[[ "$BUILD_DIR" = /* ]] || BUILD_DIR="$ROOT/$BUILD_DIR"
JOBS="${KVS_TEST_JOBS:-$(nproc)}"

cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release -DKVS_WERROR=ON \
  -DKVS_DOCKER_TESTS="${KVS_DOCKER_TESTS:-ON}" -DKVS_CLUSTER_TESTS="${KVS_CLUSTER_TESTS:-ON}"
cmake --build "$BUILD_DIR" -j"$(nproc)"

# Fuzzing: the parsers of bytes from the disk, each for a bounded time, with ASan + UBSan, from
# the seed corpora in tests/fuzz/corpus (copied: libFuzzer adds what it finds to the copy).
FUZZ_SECONDS="${KVS_FUZZ_SECONDS:-30}"
if [[ "$FUZZ_SECONDS" != 0 ]]; then
  FUZZ_DIR="$BUILD_DIR-fuzz"
  cmake -S "$ROOT" -B "$FUZZ_DIR" -DKVS_FUZZ=ON -DCMAKE_CXX_COMPILER=clang++ \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKVS_WERROR=ON >/dev/null
  cmake --build "$FUZZ_DIR" -j"$(nproc)"
  # Every tests/fuzz/<x>_fuzz.cc is a target; its seeds are in tests/fuzz/corpus/<x>.
  for source in "$ROOT"/tests/fuzz/*_fuzz.cc; do
    name="$(basename "$source" .cc)" corpus="$FUZZ_DIR/corpus-${name%_fuzz}"
    rm -rf "$corpus" && cp -r "$ROOT/tests/fuzz/corpus/${name%_fuzz}" "$corpus"
    echo "==> fuzzing $name for ${FUZZ_SECONDS}s"
    rm -f "$FUZZ_DIR"/crash-* "$FUZZ_DIR"/leak-* "$FUZZ_DIR"/timeout-*
    "$FUZZ_DIR/tests/fuzz/$name" -max_total_time="$FUZZ_SECONDS" -max_len=65536 \
      -artifact_prefix="$FUZZ_DIR/" -print_final_stats=1 "$corpus" 2>&1 |
      grep -E "^(stat::number_of_executed_units|Done|==[0-9]+==|SUMMARY)" || true
    # libFuzzer writes crash-*/leak-*/timeout-* on a finding (the pipe above hides its status).
    if compgen -G "$FUZZ_DIR/crash-*" >/dev/null || compgen -G "$FUZZ_DIR/leak-*" >/dev/null ||
       compgen -G "$FUZZ_DIR/timeout-*" >/dev/null; then
      echo "fuzzing $name found a problem (input saved in $FUZZ_DIR)" >&2
      exit 1
    fi
  done
fi

export KVS_BUILD_DIR="$BUILD_DIR"
ctest --test-dir "$BUILD_DIR" --output-on-failure -j"$JOBS" --timeout 900
