// Ships this node's writes to one shard peer: a queue drained by one thread in batches over a
// kept-alive connection, retried with exponential backoff. Request threads only enqueue, so a
// slow or dead peer never blocks a client or the other peers.
// Thread-safe: Enqueue() from any thread; the sender thread is owned by the object.
// Invariant: updates leave the queue only once the peer acknowledged them or were dropped
// (peer out of the view, or queue over its bound); anti-entropy repairs anything dropped.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "kvs/net/peer_client.h"
#include "kvs/replication/wire.h"

namespace kvs::replication {

struct SenderOptions {
  size_t batch_max = 256;
  // After the first update of a batch arrives, wait this long for more before sending (fewer,
  // larger requests under load; at most this much added replication delay).
  std::chrono::microseconds linger{1000};
  size_t queue_max = 200000;
  std::chrono::milliseconds call_timeout{2000};
  std::chrono::milliseconds backoff_min{50};
  std::chrono::milliseconds backoff_max{2000};
};

struct SenderCounters {
  std::atomic<uint64_t> sent{0};
  std::atomic<uint64_t> dropped{0};
};

class PeerSender {
 public:
  // `in_view(peer)` says whether the peer is currently believed up.
  PeerSender(std::string self, std::string peer, net::PeerClient& client, SenderOptions options,
             std::function<bool(const std::string&)> in_view, SenderCounters& counters);
  ~PeerSender();  // stops the thread; unsent updates are dropped (anti-entropy covers them)

  void Enqueue(std::shared_ptr<const Update> update);
  const std::string& peer() const { return peer_; }

  // What waits to be sent: how many updates, and when the oldest of them was queued.
  struct QueueState {
    size_t queued = 0;
    std::chrono::steady_clock::time_point oldest{};  // meaningless when queued == 0
  };
  QueueState Snapshot() const;

 private:
  void Run();
  void DropAllLocked();

  const std::string self_;
  const std::string peer_;
  net::PeerClient& client_;
  const SenderOptions options_;
  std::function<bool(const std::string&)> in_view_;
  SenderCounters& counters_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<const Update>> queue_;  // GUARDED_BY(mu_)
  // When each update of queue_ was queued (same length and order as queue_).
  std::deque<std::chrono::steady_clock::time_point> queued_at_;  // GUARDED_BY(mu_)
  bool stop_ = false;                                            // GUARDED_BY(mu_)
  std::thread thread_;
};

}  // namespace kvs::replication
