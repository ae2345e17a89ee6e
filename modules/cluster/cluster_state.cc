#include "kvs/cluster/cluster_state.h"

#include <algorithm>

namespace kvs::cluster {
namespace {

std::atomic<uint64_t> next_instance{1};

// What one thread read last of a ClusterState's published values (the layout, the view's
// members), and from which ClusterState and version: taken again, under the state's mutex, only
// when either differs, so a read of an unchanged value takes no shared lock.
template <typename T>
struct PerThreadCopy {
  uint64_t instance = 0;
  uint64_t version = 0;
  std::shared_ptr<const T> value;

  // `source` is read under `mu`, which also guards every change of it and of `version`.
  const T& Get(uint64_t of, const std::atomic<uint64_t>& current, std::mutex& mu,
               const std::shared_ptr<const T>& source) {
    if (instance != of || version != current.load(std::memory_order_acquire)) {
      std::lock_guard lock(mu);
      value = source;
      version = current.load(std::memory_order_relaxed);
      instance = of;
    }
    return *value;
  }
};
thread_local PerThreadCopy<ClusterState::Layout> tls_layout;
thread_local PerThreadCopy<ClusterState::ViewSet> tls_view;

// ClusterState::ForwardStart for every shard of `config`. Lay the shards' member lists end to
// end: the nodes outside shard s then hold consecutive places apart from the size of s (all
// of s lies before or after each of them), so their places modulo that size deal its members
// out in turn.
std::vector<size_t> ForwardStarts(const Address& self, const ClusterConfig& config,
                                  std::optional<int> my_shard) {
  std::vector<size_t> starts(config.shards.size(), 0);
  size_t place = ClusterState::AddressHash{}(self);  // outside the layout: any fixed choice
  size_t in_own = 0;
  if (my_shard) {
    place = 0;
    for (int s = 0; s < *my_shard; ++s) place += config.shards[static_cast<size_t>(s)].size();
    const auto& own = config.shards[static_cast<size_t>(*my_shard)];
    in_own = static_cast<size_t>(std::find(own.begin(), own.end(), self) - own.begin());
    place += in_own;
  }
  for (size_t s = 0; s < config.shards.size(); ++s) {
    const size_t size = config.shards[s].size();
    if (size == 0) continue;
    const bool own = my_shard && static_cast<size_t>(*my_shard) == s;
    starts[s] = (own ? in_own + 1 : place) % size;
  }
  return starts;
}

std::shared_ptr<const ClusterState::Layout> MakeLayout(
    const Address& self, std::shared_ptr<const ClusterConfig> config,
    std::shared_ptr<const HashRing> reusable_ring) {
  auto layout = std::make_shared<ClusterState::Layout>();
  if (reusable_ring && reusable_ring->shard_count() == config->shard_count()) {
    layout->ring = std::move(reusable_ring);
  } else if (config->shard_count() > 0) {
    layout->ring = std::make_shared<const HashRing>(config->shard_count());
  }
  layout->my_shard = config->ShardOf(self);
  layout->forward_start = ForwardStarts(self, *config, layout->my_shard);
  layout->config = std::move(config);
  return layout;
}

}  // namespace

ClusterState::ClusterState(Address self, std::vector<Address> view, ClusterConfig config)
    : self_(std::move(self)),
      instance_(next_instance.fetch_add(1, std::memory_order_relaxed)),
      view_(std::move(view)) {
  layout_ = MakeLayout(self_, std::make_shared<const ClusterConfig>(std::move(config)), nullptr);
  if (std::find(view_.begin(), view_.end(), self_) == view_.end()) view_.push_back(self_);
  std::sort(view_.begin(), view_.end());
  view_.erase(std::unique(view_.begin(), view_.end()), view_.end());
  PublishViewLocked();
}

size_t ClusterState::AddressHash::operator()(const Address& a) const noexcept {
  return std::hash<std::string>{}(a.host) * 31 + a.port;
}

void ClusterState::PublishViewLocked() {
  view_set_ = std::make_shared<const ViewSet>(view_.begin(), view_.end());
  view_version_.fetch_add(1, std::memory_order_release);
}

const ClusterState::Layout& ClusterState::CachedLayout() const {
  return tls_layout.Get(instance_, layout_version_, mu_, layout_);
}

std::vector<Address> ClusterState::View() const {
  std::lock_guard lock(mu_);
  return view_;
}

bool ClusterState::InView(const Address& node) const {
  return tls_view.Get(instance_, view_version_, mu_, view_set_).contains(node);
}

bool ClusterState::AddToView(const Address& node) {
  std::lock_guard lock(mu_);
  auto it = std::lower_bound(view_.begin(), view_.end(), node);
  if (it != view_.end() && *it == node) return false;
  view_.insert(it, node);
  PublishViewLocked();
  return true;
}

bool ClusterState::RemoveFromView(const Address& node) {
  std::lock_guard lock(mu_);
  auto it = std::lower_bound(view_.begin(), view_.end(), node);
  if (it == view_.end() || !(*it == node)) return false;
  view_.erase(it);
  PublishViewLocked();
  return true;
}

std::shared_ptr<const ClusterConfig> ClusterState::Config() const { return CachedLayout().config; }

void ClusterState::SetConfig(ClusterConfig config) {
  auto next = std::make_shared<const ClusterConfig>(std::move(config));
  std::shared_ptr<const HashRing> ring;
  {
    std::lock_guard lock(mu_);
    ring = layout_->ring;
  }
  // The ring is built outside the lock (it is the expensive part) and reused when the shard
  // count stays.
  auto layout = MakeLayout(self_, std::move(next), std::move(ring));
  std::lock_guard lock(mu_);
  layout_ = std::move(layout);
  layout_version_.fetch_add(1, std::memory_order_release);
}

bool ClusterState::AdoptConfig(const ClusterConfig& config) {
  if (!ShouldAdopt(*Config(), config)) return false;
  SetConfig(config);
  return true;
}

std::optional<int> ClusterState::ShardForKey(std::string_view key) const {
  const Layout& layout = CachedLayout();
  if (!layout.ring) return std::nullopt;
  return layout.ring->ShardFor(key);
}

std::optional<int> ClusterState::MyShard() const { return CachedLayout().my_shard; }

size_t ClusterState::ForwardStart(int shard) const {
  const Layout& layout = CachedLayout();
  if (shard < 0 || static_cast<size_t>(shard) >= layout.forward_start.size()) return 0;
  return layout.forward_start[static_cast<size_t>(shard)];
}

std::optional<std::vector<Address>> ClusterState::LiveMembers(int shard) const {
  std::lock_guard lock(mu_);
  const ClusterConfig& config = *layout_->config;
  if (shard < 0 || shard >= config.shard_count()) return std::nullopt;
  std::vector<Address> out;
  for (const Address& member : config.shards[static_cast<size_t>(shard)]) {
    if (std::binary_search(view_.begin(), view_.end(), member)) out.push_back(member);
  }
  return out;
}

}  // namespace kvs::cluster
