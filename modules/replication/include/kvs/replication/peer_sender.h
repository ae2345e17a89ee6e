// Ships this node's writes to one shard peer: a queue drained in batches, retried with
// exponential backoff. Request threads only enqueue, so a slow or dead peer never blocks a
// client or the other peers. Two ways to drain it:
// - threaded (no SenderDriver): a thread of its own sends each batch with the blocking
//   PeerClient over a kept-alive connection;
// - driven: a SenderDriver (the HTTP event loops, issue 14) is told when a batch is ready,
//   takes it (TakeBatch), sends it on its own connections and reports back (Finished). One
//   batch is in flight at a time; what arrives meanwhile forms the next one (after the same
//   linger as the thread's), so batches also grow with the time a batch takes.
// Thread-safe: Enqueue() from any thread; TakeBatch/Finished from the driver's thread.
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
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "kvs/net/peer_client.h"
#include "kvs/replication/wire.h"

namespace kvs::replication {

struct SenderOptions {
  size_t batch_max = 256;
  // After the first update of a batch arrives, wait this long for more before sending (fewer,
  // larger requests under load; at most this much added replication delay; a driver may round
  // it up to its timer's resolution).
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

class PeerSender;

// Sends driven PeerSenders' batches (see above). Implemented by the event loops.
class SenderDriver {
 public:
  virtual ~SenderDriver() = default;
  // Whether it can reach `peer` ("host:port") at all; a peer it cannot gets a threaded sender.
  virtual bool Drives(const std::string& peer) = 0;
  // `sender` has a batch to take. Called from any thread, without the sender's lock held, at
  // most once until the driver's next TakeBatch on it.
  virtual void Ready(std::shared_ptr<PeerSender> sender) = 0;
};

class PeerSender : public std::enable_shared_from_this<PeerSender> {
 public:
  using Clock = std::chrono::steady_clock;
  // `in_view(peer)` says whether the peer is currently believed up. With `driver`, no thread
  // is started: the driver sends the batches.
  PeerSender(std::string self, std::string peer, net::PeerClient& client, SenderOptions options,
             std::function<bool(const std::string&)> in_view, SenderCounters& counters,
             SenderDriver* driver = nullptr);
  ~PeerSender();  // stops the thread; unsent updates are dropped (anti-entropy covers them)

  void Enqueue(std::shared_ptr<const Update> update);
  const std::string& peer() const { return peer_; }
  bool driven() const { return driver_ != nullptr; }
  SenderDriver* driver() const { return driver_; }
  // How long a batch's answer may take (SenderOptions::call_timeout).
  std::chrono::milliseconds call_timeout() const { return options_.call_timeout; }

  // What waits to be sent: how many updates, and when the oldest of them was queued.
  struct QueueState {
    size_t queued = 0;
    std::chrono::steady_clock::time_point oldest{};  // meaningless when queued == 0
  };
  QueueState Snapshot() const;

  // Moves the queue out (this sender then sends nothing more), for a sender that replaces this
  // one (Adopt); a batch in flight stays in it and may be sent twice (applying is idempotent).
  std::deque<std::shared_ptr<const Update>> Detach();
  void Adopt(std::deque<std::shared_ptr<const Update>> updates);

  // --- driven mode (the driver's thread) ---
  struct Batch {
    std::string body;  // POST /internal/replicate
    size_t updates = 0;
  };
  // The next batch, now in flight; nullopt when there is none to send now: nothing queued, a
  // batch already in flight, detached, backing off after a failure, or lingering for more
  // updates (the last two until retry_at()).
  // Updates for a peer out of the view are dropped here, as the thread does.
  std::optional<Batch> TakeBatch();
  // The batch in flight was acknowledged (`ok`) or failed (`error` says how, for the log).
  // True when another batch can be taken at once.
  bool Finished(bool ok, std::string_view error);
  // When a backing-off or lingering sender may send again (time_point{} when neither).
  Clock::time_point retry_at() const;

 private:
  void Run();
  void DropAllLocked();
  // Copies the front of the queue (at most batch_max) into in_flight_. REQUIRES: mu_ held.
  void TakeFrontLocked();
  // Pops what of in_flight_ is still at the queue's front. REQUIRES: mu_ held.
  void PopSentLocked();

  const std::string self_;
  const std::string peer_;
  net::PeerClient& client_;
  const SenderOptions options_;
  std::function<bool(const std::string&)> in_view_;
  SenderCounters& counters_;
  SenderDriver* const driver_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<const Update>> queue_;  // GUARDED_BY(mu_)
  // When each update of queue_ was queued (same length and order as queue_).
  std::deque<std::chrono::steady_clock::time_point> queued_at_;  // GUARDED_BY(mu_)
  bool stop_ = false;                                            // GUARDED_BY(mu_)
  // The batch being sent: the sending thread's (the sender's own, or the driver's between
  // TakeBatch and Finished); read under mu_ by that thread only.
  std::vector<std::shared_ptr<const Update>> in_flight_;
  bool sending_ = false;               // GUARDED_BY(mu_): driven, in flight
  bool signalled_ = false;             // GUARDED_BY(mu_): Ready() called, no TakeBatch since
  std::chrono::milliseconds backoff_;  // GUARDED_BY(mu_)
  Clock::time_point retry_at_{};       // GUARDED_BY(mu_)
  std::thread thread_;
};

}  // namespace kvs::replication
