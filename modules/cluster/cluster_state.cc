#include "kvs/cluster/cluster_state.h"

#include <algorithm>

namespace kvs::cluster {

ClusterState::ClusterState(Address self, std::vector<Address> view, ClusterConfig config)
    : self_(std::move(self)),
      view_(std::move(view)),
      config_(std::make_shared<const ClusterConfig>(std::move(config))) {
  if (config_->shard_count() > 0) ring_ = std::make_shared<const HashRing>(config_->shard_count());
  if (std::find(view_.begin(), view_.end(), self_) == view_.end()) view_.push_back(self_);
  std::sort(view_.begin(), view_.end());
  view_.erase(std::unique(view_.begin(), view_.end()), view_.end());
}

std::vector<Address> ClusterState::View() const {
  std::lock_guard lock(mu_);
  return view_;
}

bool ClusterState::InView(const Address& node) const {
  std::lock_guard lock(mu_);
  return std::binary_search(view_.begin(), view_.end(), node);
}

bool ClusterState::AddToView(const Address& node) {
  std::lock_guard lock(mu_);
  auto it = std::lower_bound(view_.begin(), view_.end(), node);
  if (it != view_.end() && *it == node) return false;
  view_.insert(it, node);
  return true;
}

bool ClusterState::RemoveFromView(const Address& node) {
  std::lock_guard lock(mu_);
  auto it = std::lower_bound(view_.begin(), view_.end(), node);
  if (it == view_.end() || !(*it == node)) return false;
  view_.erase(it);
  return true;
}

std::shared_ptr<const ClusterConfig> ClusterState::Config() const {
  std::lock_guard lock(mu_);
  return config_;
}

void ClusterState::SetConfig(ClusterConfig config) {
  auto next = std::make_shared<const ClusterConfig>(std::move(config));
  std::shared_ptr<const HashRing> ring;
  {
    std::lock_guard lock(mu_);
    if (ring_ && ring_->shard_count() == next->shard_count()) ring = ring_;
  }
  if (!ring && next->shard_count() > 0)
    ring = std::make_shared<const HashRing>(next->shard_count());
  std::lock_guard lock(mu_);
  config_ = std::move(next);
  ring_ = std::move(ring);
}

bool ClusterState::AdoptConfig(const ClusterConfig& config) {
  if (!ShouldAdopt(*Config(), config)) return false;
  SetConfig(config);
  return true;
}

std::optional<int> ClusterState::ShardForKey(std::string_view key) const {
  std::shared_ptr<const HashRing> ring;
  {
    std::lock_guard lock(mu_);
    ring = ring_;
  }
  if (!ring) return std::nullopt;
  return ring->ShardFor(key);
}

std::optional<int> ClusterState::MyShard() const { return Config()->ShardOf(self_); }

std::optional<std::vector<Address>> ClusterState::LiveMembers(int shard) const {
  std::lock_guard lock(mu_);
  if (shard < 0 || shard >= config_->shard_count()) return std::nullopt;
  std::vector<Address> out;
  for (const Address& member : config_->shards[static_cast<size_t>(shard)]) {
    if (std::binary_search(view_.begin(), view_.end(), member)) out.push_back(member);
  }
  return out;
}

}  // namespace kvs::cluster
