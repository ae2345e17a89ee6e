// Runs one benchmark end to end on a fresh Engine: optional preload, warm-up, then the
// measured phase. Called from one thread; the engine's loops run on their own threads.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "kvs/bench/options.h"
#include "kvs/bench/stats.h"

namespace kvs::bench {

struct RunResult {
  Options options;  // as run: threads is the number of loops actually used
  Stats stats;      // the measured phase only
  double elapsed_s = 0;
  bool stalled = false;  // stopped early: no connection to any target could be made
  // Why the run stopped before the measured phase although it could start (--only-shard
  // matched no key); empty otherwise. Nothing was measured then.
  std::string failure;
  uint64_t keys_used = 0;   // with --only-shard: the keys of that shard the load drew from
  std::string timestamp;    // UTC start of the measured phase, ISO 8601
  std::string sweep_param;  // empty outside --sweep
  int sweep_value = 0;

  double Throughput() const;
  // A request got an answer that the protocol counts as success (ok or not found).
  bool AnySuccess() const { return stats.ok + stats.not_found > 0; }
};

// `preload` says whether to run the preload phase (--preload, first run of a sweep). With
// `log`, progress lines and notes go there. False with `error` set when the run could not
// start at all (e.g. a target host does not resolve).
// `shard_keys` (--only-shard): set to the shard's keys after a preload, and read by a run
// without one (the later runs of a sweep), so those reuse the first run's preload.
bool RunBenchmark(const Options& options, bool preload, std::ostream* log, RunResult& result,
                  std::string& error, std::vector<uint64_t>* shard_keys = nullptr);

}  // namespace kvs::bench
