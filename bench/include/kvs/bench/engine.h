// The load engine: --threads event loops (epoll, non-blocking sockets, edge-triggered), each
// owning a share of the --connections keep-alive connections with one request in flight each.
// Connections persist across phases (preload, warm-up, measured run), so a phase starts on
// warm connections. Engine is driven from one thread; RunPhase runs the loops on their own
// threads and returns once they have all stopped.
// With --rate, each loop paces the sends of load phases to rate / threads per second: a
// connection ready to send waits for the loop's next send slot (woken by the epoll timeout).
// Invariant: a phase ends at its time limit / request budget plus at most --timeout.
#pragma once

#include <cstdint>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "kvs/bench/options.h"
#include "kvs/bench/request_builder.h"
#include "kvs/bench/stats.h"

namespace kvs::bench {

struct PhaseSpec {
  enum class Kind {
    kPreload,  // PUT key0..key{keys-1}, each once, spread over the connections
    kLoad,     // the --mix over random keys (or GET --path for raw)
  };
  Kind kind = Kind::kLoad;
  std::string name;           // in progress lines: "preload", "warmup", "run"
  double duration_s = 0;      // 0 = no time limit
  uint64_t max_requests = 0;  // 0 = no count limit (ignored by kPreload: it sends --keys)
};

struct PhaseResult {
  Stats stats;
  double elapsed_s = 0;  // from the start until the last in-flight request ended
  // Ended early because no connection could be established for --timeout (only phases
  // without a time limit, which could otherwise wait forever).
  bool stalled = false;
};

// A preloaded key and the "shard-id" its PUT answer named (--only-shard).
struct KeyShard {
  uint64_t key = 0;
  int shard = 0;
};

// The keys of `shards` on shard `shard`, ascending, each once.
std::vector<uint64_t> KeysOfShard(const std::vector<KeyShard>& shards, int shard);

class Worker;
struct ResolvedTarget;
class TlsClientContext;

class Engine {
 public:
  // Resolves the targets and sets up the loops; nullptr with `error` set when a target host
  // cannot be resolved, the system refuses an epoll instance, or (--tls) the CA, certificate
  // or key files cannot be loaded. With --tls it also ignores SIGPIPE, process-wide: OpenSSL
  // writes to sockets without MSG_NOSIGNAL, and a server's close must fail a request, not
  // end the process.
  static std::unique_ptr<Engine> Create(const Options& options, std::string& error);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Runs one phase to its end. With `progress`, writes one line per second to it.
  PhaseResult RunPhase(const PhaseSpec& spec, std::ostream* progress);

  int threads() const { return static_cast<int>(workers_.size()); }

  // With --only-shard: the shard of every key whose preload PUT was answered with a
  // "shard-id", in no particular order (empty before a preload). Between phases only.
  std::vector<KeyShard> PreloadShards() const;

  // Load phases pick their keys uniformly from `keys` instead of key0..key{keys-1}; empty =
  // the whole key space again. Between phases only.
  void UseKeys(std::vector<uint64_t> keys) { key_set_ = std::move(keys); }

 private:
  explicit Engine(const Options& options);

  Options options_;
  RequestBuilder builder_;
  std::vector<ResolvedTarget> targets_;    // shared, read-only, by the workers' connections
  std::vector<uint64_t> key_set_;          // UseKeys; read by the workers during a phase
  std::unique_ptr<TlsClientContext> tls_;  // with --tls; outlives the workers (declared first)
  std::vector<std::unique_ptr<Worker>> workers_;
};

}  // namespace kvs::bench
