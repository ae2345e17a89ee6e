#include "kvs/cluster/cluster_config.h"

#include <algorithm>
#include <charconv>

namespace kvs::cluster {

std::optional<int> ClusterConfig::ShardOf(const Address& node) const {
  for (size_t id = 0; id < shards.size(); ++id) {
    if (std::find(shards[id].begin(), shards[id].end(), node) != shards[id].end()) {
      return static_cast<int>(id);
    }
  }
  return std::nullopt;
}

ClusterConfig InitialAssignment(std::vector<Address> view, int shard_count) {
  std::sort(view.begin(), view.end());
  view.erase(std::unique(view.begin(), view.end()), view.end());
  ClusterConfig config;
  config.shards.resize(static_cast<size_t>(shard_count));
  for (size_t i = 0; i < view.size(); ++i) {
    config.shards[i % config.shards.size()].push_back(view[i]);
  }
  return config;
}

ClusterConfig Reshard(const ClusterConfig& current, std::vector<Address> live, int shard_count) {
  std::sort(live.begin(), live.end());
  live.erase(std::unique(live.begin(), live.end()), live.end());
  const size_t n = static_cast<size_t>(shard_count);
  std::vector<size_t> target(n, live.size() / n);
  for (size_t s = 0; s < live.size() % n; ++s) ++target[s];

  ClusterConfig next;
  next.epoch = current.epoch + 1;
  next.barrier_epoch = next.epoch;
  next.shards.resize(n);
  std::vector<bool> placed(live.size(), false);
  auto index_of = [&](const Address& a) {
    auto it = std::lower_bound(live.begin(), live.end(), a);
    return it != live.end() && *it == a ? static_cast<size_t>(it - live.begin()) : live.size();
  };
  for (size_t s = 0; s < n && s < current.shards.size(); ++s) {
    for (const Address& member : current.shards[s]) {
      const size_t i = index_of(member);
      if (i == live.size() || placed[i] || next.shards[s].size() >= target[s]) continue;
      next.shards[s].push_back(member);
      placed[i] = true;
    }
  }
  size_t s = 0;
  for (size_t i = 0; i < live.size(); ++i) {
    if (placed[i]) continue;
    while (next.shards[s].size() >= target[s]) ++s;
    next.shards[s].push_back(live[i]);
  }
  for (auto& members : next.shards) std::sort(members.begin(), members.end());
  return next;
}

bool ShouldAdopt(const ClusterConfig& ours, const ClusterConfig& theirs) {
  if (theirs.shards.empty()) return false;
  return theirs.epoch > ours.epoch || ours.shards.empty();
}

std::variant<StartupPlan, std::string> ValidateStartup(const StartupInput& input) {
  StartupPlan plan;
  if (!input.socket_address || input.socket_address->empty()) {
    return std::string("SOCKET_ADDRESS is not set (expected ip:port)");
  }
  auto self = Address::Parse(*input.socket_address);
  if (!self) {
    return "SOCKET_ADDRESS '" + *input.socket_address + "' is not a valid ip:port";
  }
  plan.self = *self;

  if (!input.view || input.view->empty()) {
    return std::string("VIEW is not set (expected a comma-separated list of ip:port)");
  }
  std::string bad;
  auto view = ParseAddressList(*input.view, bad);
  if (!view) return "VIEW entry '" + bad + "' is not a valid ip:port";
  std::sort(view->begin(), view->end());
  view->erase(std::unique(view->begin(), view->end()), view->end());
  if (std::find(view->begin(), view->end(), plan.self) == view->end()) {
    return "SOCKET_ADDRESS " + plan.self.ToString() + " is not in VIEW";
  }
  plan.view = std::move(*view);

  if (input.shard_count) {
    const std::string& text = *input.shard_count;
    int count = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), count);
    if (text.empty() || ec != std::errc() || end != text.data() + text.size() || count < 1) {
      return "SHARD_COUNT '" + text + "' is not a positive integer";
    }
    plan.single_node = plan.view.size() == 1 && count == 1;
    const size_t needed = 2 * static_cast<size_t>(count);
    if (!plan.single_node && plan.view.size() < needed) {
      return "VIEW has " + std::to_string(plan.view.size()) + " node(s) but SHARD_COUNT=" + text +
             " needs at least " + std::to_string(needed) + " (2 per shard)";
    }
    plan.shard_count = count;
  }
  return plan;
}

}  // namespace kvs::cluster
