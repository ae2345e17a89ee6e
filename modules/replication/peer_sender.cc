#include "kvs/replication/peer_sender.h"

#include <Poco/Logger.h>
#include <pthread.h>

#include <algorithm>

namespace kvs::replication {

PeerSender::PeerSender(std::string self, std::string peer, net::PeerClient& client,
                       SenderOptions options, std::function<bool(const std::string&)> in_view,
                       SenderCounters& counters, SenderDriver* driver)
    : self_(std::move(self)),
      peer_(std::move(peer)),
      client_(client),
      options_(options),
      in_view_(std::move(in_view)),
      counters_(counters),
      driver_(driver),
      backoff_(options.backoff_min) {
  if (driver_ == nullptr) thread_ = std::thread([this] { Run(); });
}

PeerSender::~PeerSender() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
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
  bool ready = false;
  const auto now = Clock::now();
  {
    std::lock_guard lock(mu_);
    if (stop_) return;  // detached: its successor has the queue
    if (queue_.size() >= options_.queue_max) {
      queue_.pop_front();
      queued_at_.pop_front();
      counters_.dropped.fetch_add(1, std::memory_order_relaxed);
    }
    was_empty = queue_.empty();
    queue_.push_back(std::move(update));
    queued_at_.push_back(now);
    if (driver_ != nullptr && !sending_ && !signalled_ && now >= retry_at_) {
      signalled_ = true;
      ready = true;
    }
  }
  if (driver_ != nullptr) {
    if (ready) driver_->Ready(shared_from_this());
    return;
  }
  // The sender only waits on an empty queue: while it sends, writes pile up for the next
  // batch without a wake-up (a futex call) each.
  if (was_empty) cv_.notify_one();
}

std::deque<std::shared_ptr<const Update>> PeerSender::Detach() {
  std::deque<std::shared_ptr<const Update>> out;
  {
    std::lock_guard lock(mu_);
    stop_ = true;
    out.swap(queue_);
    queued_at_.clear();
  }
  cv_.notify_all();
  return out;
}

void PeerSender::Adopt(std::deque<std::shared_ptr<const Update>> updates) {
  if (updates.empty()) return;
  bool ready = false;
  const auto now = Clock::now();
  {
    std::lock_guard lock(mu_);
    if (stop_) return;
    for (auto& u : updates) {
      queue_.push_back(std::move(u));
      queued_at_.push_back(now);
    }
    while (queue_.size() > options_.queue_max) {
      queue_.pop_front();
      queued_at_.pop_front();
      counters_.dropped.fetch_add(1, std::memory_order_relaxed);
    }
    if (driver_ != nullptr && !sending_ && !signalled_) {
      signalled_ = true;
      ready = true;
    }
  }
  if (ready) driver_->Ready(shared_from_this());
  cv_.notify_one();
}

void PeerSender::TakeFrontLocked() {
  const size_t n = std::min(queue_.size(), options_.batch_max);
  in_flight_.assign(queue_.begin(), queue_.begin() + static_cast<long>(n));
}

void PeerSender::PopSentLocked() {
  // Only the front in_flight_.size() items were sent; anything dropped meanwhile shrank the
  // queue from the front, so pop what is still there of the batch.
  size_t popped = 0;
  while (!queue_.empty() && popped < in_flight_.size() && queue_.front() == in_flight_[popped]) {
    queue_.pop_front();
    queued_at_.pop_front();
    ++popped;
  }
  counters_.sent.fetch_add(in_flight_.size(), std::memory_order_relaxed);
}

std::optional<PeerSender::Batch> PeerSender::TakeBatch() {
  std::vector<const Update*> raw;
  {
    std::lock_guard lock(mu_);
    signalled_ = false;
    const auto now = Clock::now();
    if (stop_ || sending_ || queue_.empty() || now < retry_at_) return std::nullopt;
    if (queue_.size() < options_.batch_max && now < queued_at_.front() + options_.linger) {
      // Lingering for more: the driver comes back then (Enqueue does not signal meanwhile).
      retry_at_ = queued_at_.front() + options_.linger;
      return std::nullopt;
    }
    if (!in_view_(peer_)) {
      // The peer is down: it will catch up by anti-entropy when it returns.
      DropAllLocked();
      return std::nullopt;
    }
    TakeFrontLocked();
    sending_ = true;
  }
  // in_flight_ belongs to the driver's thread until Finished(): encoded without the lock.
  raw.reserve(in_flight_.size());
  for (const auto& u : in_flight_) raw.push_back(u.get());
  Batch batch;
  batch.body = EncodeBatch(self_, raw);
  batch.updates = raw.size();
  return batch;
}

bool PeerSender::Finished(bool ok, std::string_view error) {
  std::lock_guard lock(mu_);
  sending_ = false;
  if (ok) {
    if (!stop_) PopSentLocked();
    backoff_ = options_.backoff_min;
    retry_at_ = {};
  } else {
    Poco::Logger::get("kvs.replication")
        .debug("replicate to %s failed (%s); retrying in %d ms", peer_, std::string(error),
               static_cast<int>(backoff_.count()));
    retry_at_ = Clock::now() + backoff_;
    backoff_ = std::min(backoff_ * 2, options_.backoff_max);
  }
  in_flight_.clear();
  return ok && !stop_ && !queue_.empty();
}

PeerSender::Clock::time_point PeerSender::retry_at() const {
  std::lock_guard lock(mu_);
  return retry_at_;
}

void PeerSender::Run() {
  pthread_setname_np(pthread_self(), "kvs-send");  // top -H, perf --sort comm
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
      TakeFrontLocked();
    }
    raw.clear();
    for (const auto& u : in_flight_) raw.push_back(u.get());
    const net::CallResult result = client_.Call(peer_, "POST", "/internal/replicate",
                                                EncodeBatch(self_, raw), options_.call_timeout);
    std::unique_lock lock(mu_);
    if (result.ok()) {
      PopSentLocked();
      in_flight_.clear();
      backoff_ = options_.backoff_min;
      continue;
    }
    in_flight_.clear();
    Poco::Logger::get("kvs.replication")
        .debug("replicate to %s failed (%s); retrying in %d ms", peer_,
               result.error.empty() ? "status " + std::to_string(result.status) : result.error,
               static_cast<int>(backoff_.count()));
    cv_.wait_for(lock, backoff_, [&] { return stop_; });
    if (stop_) return;
    backoff_ = std::min(backoff_ * 2, options_.backoff_max);
  }
}

}  // namespace kvs::replication
