#include "kvs/bench/runner.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <set>

#include "kvs/bench/engine.h"

namespace kvs::bench {
namespace {

std::string UtcNow() {
  const std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm parts{};
  gmtime_r(&now, &parts);
  char text[32];
  std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &parts);
  return text;
}

// Why --only-shard found no key, naming the shards the preload did see.
std::string NoKeysOnShard(int shard, const std::vector<KeyShard>& seen, bool preloaded) {
  std::string out =
      "--only-shard=" + std::to_string(shard) + ": no key is on shard " + std::to_string(shard);
  if (!preloaded) return out + " (no preload in this run)";
  std::set<int> shards;
  for (const KeyShard& entry : seen) shards.insert(entry.shard);
  if (shards.empty()) return out + " (no preload PUT answer carried a shard-id)";
  out += " (the preload saw shard";
  out += shards.size() > 1 ? "s " : " ";
  for (auto it = shards.begin(); it != shards.end(); ++it) {
    out += (it == shards.begin() ? "" : ", ") + std::to_string(*it);
  }
  return out + ")";
}

}  // namespace

double RunResult::Throughput() const {
  return elapsed_s > 0 ? static_cast<double>(stats.requests()) / elapsed_s : 0.0;
}

bool RunBenchmark(const Options& options, bool preload, std::ostream* log, RunResult& result,
                  std::string& error, std::vector<uint64_t>* shard_keys) {
  std::unique_ptr<Engine> engine = Engine::Create(options, error);
  if (engine == nullptr) return false;
  result = RunResult();
  result.options = options;
  result.options.threads = engine->threads();
  if (log != nullptr && engine->threads() < options.threads) {
    *log << "note: " << options.threads << " threads for " << options.connections
         << " connections: using " << engine->threads() << "\n";
  }

  if (preload) {
    PhaseSpec spec{PhaseSpec::Kind::kPreload, "preload", 0, 0};
    const PhaseResult done = engine->RunPhase(spec, log);
    if (log != nullptr) {
      char line[200];
      std::snprintf(line, sizeof(line),
                    "preload: %llu PUTs in %.2f s (ok %llu, other status %llu, transport "
                    "errors %llu)\n",
                    static_cast<unsigned long long>(done.stats.requests()), done.elapsed_s,
                    static_cast<unsigned long long>(done.stats.ok),
                    static_cast<unsigned long long>(done.stats.not_found + done.stats.http_errors),
                    static_cast<unsigned long long>(done.stats.transport_errors()));
      *log << line;
    }
    if (done.stalled) {
      result.stats = done.stats;
      result.stalled = true;
      return true;
    }
  }
  if (options.only_shard >= 0) {
    const std::vector<KeyShard> seen = preload ? engine->PreloadShards() : std::vector<KeyShard>();
    std::vector<uint64_t> keys;
    if (preload) {
      keys = KeysOfShard(seen, options.only_shard);
      if (shard_keys != nullptr) *shard_keys = keys;
    } else if (shard_keys != nullptr) {
      keys = *shard_keys;
    }
    if (log != nullptr) {
      *log << "only-shard " << options.only_shard << ": " << keys.size() << " of " << options.keys
           << " keys\n";
    }
    if (keys.empty()) {
      result.failure = NoKeysOnShard(options.only_shard, seen, preload);
      return true;
    }
    result.keys_used = keys.size();
    engine->UseKeys(std::move(keys));
  }
  if (options.warmup_s > 0) {
    const PhaseResult warm =
        engine->RunPhase({PhaseSpec::Kind::kLoad, "warmup", options.warmup_s, 0}, log);
    if (warm.stalled) {  // cannot happen with a time limit; kept for symmetry
      result.stalled = true;
      return true;
    }
  }
  result.timestamp = UtcNow();
  PhaseResult run =
      engine->RunPhase({PhaseSpec::Kind::kLoad, "run", options.duration_s, options.requests}, log);
  result.stats = std::move(run.stats);
  result.elapsed_s = run.elapsed_s;
  result.stalled = run.stalled;
  return true;
}

}  // namespace kvs::bench
