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
