#include "kvs/replication/peer_sender.h"

#include <Poco/Logger.h>
#include <pthread.h>

#include <algorithm>

namespace kvs::replication {

PeerSender::PeerSender(std::string self, std::string peer, net::PeerClient& client,
                       SenderOptions options, std::function<bool(const std::string&)> in_view,
                       SenderCounters& counters)
    : self_(std::move(self)),
      peer_(std::move(peer)),
      client_(client),
      options_(options),
      in_view_(std::move(in_view)),
      counters_(counters),
      thread_([this] { Run(); }) {}

PeerSender::~PeerSender() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void PeerSender::DropAllLocked() {
  counters_.dropped.fetch_add(queue_.size(), std::memory_order_relaxed);
  queue_.clear();
  queued_at_.clear();
}

PeerSender::QueueState PeerSender::Snapshot() const {
  std::lock_guard lock(mu_);
  QueueState state;
  state.queued = queue_.size();
  if (!queued_at_.empty()) state.oldest = queued_at_.front();
  return state;
}

void PeerSender::Enqueue(std::shared_ptr<const Update> update) {
  bool was_empty = false;
  const auto now = std::chrono::steady_clock::now();
  {
    std::lock_guard lock(mu_);
    if (queue_.size() >= options_.queue_max) {
      queue_.pop_front();
      queued_at_.pop_front();
      counters_.dropped.fetch_add(1, std::memory_order_relaxed);
    }
    was_empty = queue_.empty();
    queue_.push_back(std::move(update));
    queued_at_.push_back(now);
  }
  // The sender only waits on an empty queue: while it sends, writes pile up for the next
  // batch without a wake-up (a futex call) each.
  if (was_empty) cv_.notify_one();
}

void PeerSender::Run() {
  pthread_setname_np(pthread_self(), "kvs-send");  // top -H, perf --sort comm
  Poco::Logger& log = Poco::Logger::get("kvs.replication");
  std::chrono::milliseconds backoff = options_.backoff_min;
  std::vector<std::shared_ptr<const Update>> batch;
  std::vector<const Update*> raw;
  while (true) {
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
      if (stop_) return;
      if (queue_.size() < options_.batch_max && options_.linger.count() > 0) {
        // Enqueue only wakes on an empty queue: this wait ends at the deadline (or stop).
        cv_.wait_for(lock, options_.linger, [&] { return stop_; });
        if (stop_) return;
      }
      if (!in_view_(peer_)) {
        // The peer is down: it will catch up by anti-entropy when it returns.
        DropAllLocked();
        continue;
      }
      const size_t n = std::min(queue_.size(), options_.batch_max);
      batch.assign(queue_.begin(), queue_.begin() + static_cast<long>(n));
    }
    raw.clear();
    for (const auto& u : batch) raw.push_back(u.get());
    const net::CallResult result = client_.Call(peer_, "POST", "/internal/replicate",
                                                EncodeBatch(self_, raw), options_.call_timeout);
    std::unique_lock lock(mu_);
    if (result.ok()) {
      // Only the front `batch.size()` items were sent; anything dropped meanwhile shrank the
      // queue from the front, so pop what is still there of the batch.
      size_t popped = 0;
      while (!queue_.empty() && popped < batch.size() && queue_.front() == batch[popped]) {
        queue_.pop_front();
        queued_at_.pop_front();
        ++popped;
      }
      counters_.sent.fetch_add(batch.size(), std::memory_order_relaxed);
      backoff = options_.backoff_min;
      continue;
    }
    log.debug("replicate to %s failed (%s); retrying in %d ms", peer_,
              result.error.empty() ? "status " + std::to_string(result.status) : result.error,
              static_cast<int>(backoff.count()));
    cv_.wait_for(lock, backoff, [&] { return stop_; });
    if (stop_) return;
    backoff = std::min(backoff * 2, options_.backoff_max);
  }
}

}  // namespace kvs::replication
