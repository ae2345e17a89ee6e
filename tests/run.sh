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
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${KVS_BUILD_DIR:-build}"
[[ "$BUILD_DIR" = /* ]] || BUILD_DIR="$ROOT/$BUILD_DIR"
JOBS="${KVS_TEST_JOBS:-$(nproc)}"

cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release -DKVS_WERROR=ON \
  -DKVS_DOCKER_TESTS="${KVS_DOCKER_TESTS:-ON}" -DKVS_CLUSTER_TESTS="${KVS_CLUSTER_TESTS:-ON}"
cmake --build "$BUILD_DIR" -j"$(nproc)"
export KVS_BUILD_DIR="$BUILD_DIR"
ctest --test-dir "$BUILD_DIR" --output-on-failure -j"$JOBS" --timeout 900
