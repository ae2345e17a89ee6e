#include "kvs/cluster/failure_detector.h"

#include <Poco/Logger.h>

#include <algorithm>
#include <vector>

namespace kvs::cluster {
namespace {
Poco::Logger& Log() { return Poco::Logger::get("kvs.cluster"); }
}  // namespace

FailureDetector::FailureDetector(ClusterState& state, Transport transport,
                                 std::chrono::milliseconds heartbeat_period,
                                 std::chrono::milliseconds failure_timeout, size_t io_threads)
    : state_(state),
      transport_(std::move(transport)),
      heartbeat_period_(heartbeat_period),
      failure_timeout_(failure_timeout),
      pool_(io_threads) {
  const auto now = Clock::now();  // everyone gets one failure timeout of grace (see Tick)
  for (const Address& node : state_.View()) {
    if (!(node == state_.self())) known_[node].last_ok = now;
  }
}

std::chrono::milliseconds FailureDetector::tick_interval() const {
  return std::clamp(heartbeat_period_ / 4, std::chrono::milliseconds(10),
                    std::chrono::milliseconds(250));
}

void FailureDetector::Tick() {
  const auto now = Clock::now();
  std::vector<Address> to_ping;
  std::vector<Address> silent;
  {
    std::lock_guard lock(mu_);
    if (!ticked_) {
      // The grace period starts with the first tick, not at construction: a node recovering
      // a large data set from disk (seconds) heard nobody meanwhile, and must not then tell
      // the cluster that every peer is down.
      ticked_ = true;
      for (auto& [address, peer] : known_) peer.last_ok = now;
    }
    for (auto& [address, peer] : known_) {
      if (!peer.in_flight && now - peer.last_ping >= heartbeat_period_) {
        peer.in_flight = true;
        peer.last_ping = now;
        to_ping.push_back(address);
      }
      if (now - peer.last_ok > failure_timeout_) silent.push_back(address);
    }
  }
  for (const Address& peer : to_ping) {
    pool_.Submit([this, peer] { OnPingResult(peer, transport_.ping(peer)); });
  }
  for (const Address& peer : silent) {
    if (state_.RemoveFromView(peer)) {
      Log().warning("node %s is down (no heartbeat answer for %d ms): removed from the view",
                    peer.ToString(), static_cast<int>(failure_timeout_.count()));
      TellOthers(peer, /*up=*/false, /*forget=*/false);
    }
  }
}

void FailureDetector::OnPingResult(const Address& peer, bool ok) {
  {
    std::lock_guard lock(mu_);
    auto it = known_.find(peer);
    if (it == known_.end()) return;  // forgotten meanwhile
    it->second.in_flight = false;
  }
  if (ok) MarkUp(peer, /*tell_others=*/true);
}

void FailureDetector::MarkUp(const Address& peer, bool tell_others) {
  if (peer == state_.self()) return;
  {
    std::lock_guard lock(mu_);
    known_[peer].last_ok = Clock::now();
  }
  if (state_.AddToView(peer)) {
    Log().information("node %s is up: added to the view", peer.ToString());
    if (tell_others) TellOthers(peer, /*up=*/true, /*forget=*/false);
  }
}

void FailureDetector::OnHeartbeatFrom(const Address& peer) { MarkUp(peer, true); }

void FailureDetector::OnNotice(const Address& subject, bool up, bool forget) {
  if (subject == state_.self()) return;  // we know we are up; our heartbeats will say so
  if (up) {
    MarkUp(subject, /*tell_others=*/false);
    return;
  }
  if (forget) {
    std::lock_guard lock(mu_);
    known_.erase(subject);
  }
  if (state_.RemoveFromView(subject)) {
    Log().information("node %s reported down by a peer: removed from the view", subject.ToString());
  }
}

bool FailureDetector::ClientAdd(const Address& node) {
  if (!state_.AddToView(node)) return false;
  {
    std::lock_guard lock(mu_);
    if (!(node == state_.self())) known_[node].last_ok = Clock::now();
  }
  TellOthers(node, /*up=*/true, /*forget=*/false);
  return true;
}

bool FailureDetector::ClientRemove(const Address& node) {
  if (!state_.RemoveFromView(node)) return false;
  {
    std::lock_guard lock(mu_);
    known_.erase(node);
  }
  TellOthers(node, /*up=*/false, /*forget=*/true);
  return true;
}

std::vector<std::pair<Address, bool>> FailureDetector::Peers() const {
  std::vector<std::pair<Address, bool>> out;
  {
    std::lock_guard lock(mu_);
    out.reserve(known_.size());
    for (const auto& entry : known_) out.emplace_back(entry.first, false);
  }
  for (auto& peer : out) peer.second = state_.InView(peer.first);
  return out;
}

void FailureDetector::TellOthers(const Address& subject, bool up, bool forget) {
  for (const Address& node : state_.View()) {
    if (node == state_.self() || node == subject) continue;
    pool_.Submit(
        [this, node, subject, up, forget] { transport_.notify(node, subject, up, forget); });
  }
}

}  // namespace kvs::cluster
