// Host names of cluster members resolved off the caller's thread (issue 14). The event loops
// forward requests and send broadcasts themselves, and must never wait on DNS: a member named
// by a host name (Compose, Swarm, a Kubernetes StatefulSet) is looked up here by a thread of the
// resolver's own (`kvs-resolve`, started at the first name), and the loops read the cache.
//
// - A numeric IPv4 "a.b.c.d:port" is answered at once, without the cache.
// - A name is kPending until its first lookup ends, then kResolved (its first IPv4 address)
//   or kFailed (with the resolver's reason). A resolved name is looked up again in the
//   background once refresh_after has passed since its last lookup, and the old address is
//   served meanwhile; Refresh asks for that at once (a connection to the address failed:
//   the member may have come back elsewhere). A failed name is tried again after
//   retry_after. A refresh that fails makes the name kFailed: its requests then take the
//   workers' path, which resolves (and fails over) on its own.
// - Names nobody asked for in forget_after are dropped, so a view that changes names keeps
//   the cache small.
// Thread-safe.
#pragma once

#include <netinet/in.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>

namespace kvs::net {

struct ResolverOptions {
  std::chrono::milliseconds refresh_after{5000};
  std::chrono::milliseconds retry_after{1000};
  std::chrono::milliseconds forget_after{600000};
};

class Resolver {
 public:
  using Clock = std::chrono::steady_clock;
  enum class State { kResolved, kPending, kFailed };
  struct Result {
    State state = State::kPending;
    sockaddr_in address{};  // kResolved: family, address and port
    std::string error;      // kFailed: why
  };

  explicit Resolver(ResolverOptions options = {});
  ~Resolver();
  Resolver(const Resolver&) = delete;
  Resolver& operator=(const Resolver&) = delete;

  // "host:port" → its IPv4 address; never waits for DNS (see above).
  Result Lookup(const std::string& member);
  // Looks a name up again as soon as the thread can (no effect on numeric addresses).
  void Refresh(const std::string& member);

  // A numeric IPv4 "a.b.c.d:port" into `address`; false for anything else. (Whether a member
  // is "host:port" at all is cluster::Address::Parse's call, as for the view.)
  static bool ParseNumeric(const std::string& member, sockaddr_in& address);

  // Lookups the thread has finished (successful or not).
  uint64_t lookups_done() const;

 private:
  struct Entry {
    State state = State::kPending;
    sockaddr_in address{};
    std::string error;
    Clock::time_point looked_up{};  // when the last lookup ended
    Clock::time_point used{};       // the last Lookup of it
    bool queued = false;
  };

  void Enqueue(const std::string& member, Entry& entry);  // mu_ held
  void Run();

  const ResolverOptions options_;
  mutable std::mutex mu_;
  std::condition_variable wake_;
  std::unordered_map<std::string, Entry> entries_;  // GUARDED_BY(mu_)
  std::deque<std::string> queue_;                   // GUARDED_BY(mu_)
  bool stopping_ = false;                           // GUARDED_BY(mu_)
  uint64_t lookups_done_ = 0;                       // GUARDED_BY(mu_)
  std::thread thread_;                              // started by the first Enqueue
};

}  // namespace kvs::net
