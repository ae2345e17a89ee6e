#include "kvs/bench/runner.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>

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

}  // namespace

double RunResult::Throughput() const {
  return elapsed_s > 0 ? static_cast<double>(stats.requests()) / elapsed_s : 0.0;
}

bool RunBenchmark(const Options& options, bool preload, std::ostream* log, RunResult& result,
                  std::string& error) {
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
