// This node's live knowledge of the cluster: the view (nodes believed up) and the current
// ClusterConfig. Thread-safe: readers get immutable snapshots; writers serialize on a mutex.
// The layout (configuration + hash ring), read on every request, is cached per thread and
// re-read under the mutex only after it changed, so the request path takes no shared lock; so
// is the set of view members that InView asks (every forwarded request asks it per member).
// Invariant: the view is sorted and holds each address once; self starts in it.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <unordered_set>
#include <vector>

#include "kvs/cluster/address.h"
#include "kvs/cluster/cluster_config.h"
#include "kvs/cluster/hash_ring.h"

namespace kvs::cluster {

class ClusterState {
 public:
  ClusterState(Address self, std::vector<Address> view, ClusterConfig config);

  const Address& self() const { return self_; }

  // Sorted view.
  std::vector<Address> View() const;
  bool InView(const Address& node) const;
  // Returns false when `node` was already in the view.
  bool AddToView(const Address& node);
  // Returns false when `node` was not in the view.
  bool RemoveFromView(const Address& node);

  std::shared_ptr<const ClusterConfig> Config() const;
  // Changes whenever the layout does: a request can tell that one changed while it ran.
  uint64_t layout_version() const { return layout_version_.load(std::memory_order_acquire); }
  void SetConfig(ClusterConfig config);
  // Replaces the configuration when ShouldAdopt() says so; returns whether it did.
  bool AdoptConfig(const ClusterConfig& config);
  // The shard owning `key` under the current configuration; nullopt before the node knows any
  // layout (an unassigned node that has not heard from the cluster yet).
  std::optional<int> ShardForKey(std::string_view key) const;
  std::optional<int> MyShard() const;
  // Where this node's forwarded requests to `shard` start in its member list (an index into
  // Config()->shards[shard]; 0 for an unknown shard). The nodes outside a shard take its
  // members in turn by their place in the layout, so their first choices spread evenly over
  // the members, and each forwarder keeps to one member: what it sends at once arrives at one
  // node at once (one batch, one fsync group) instead of waking every member. For its own
  // shard a node starts at the member after itself.
  size_t ForwardStart(int shard) const;
  // Members of `shard` that are currently in the view (SPEC: shard-id-members lists live
  // members). nullopt when the shard does not exist.
  std::optional<std::vector<Address>> LiveMembers(int shard) const;

  // One immutable layout: the configuration, its ring (null with no shards) and this node's
  // shard in it.
  struct Layout {
    std::shared_ptr<const ClusterConfig> config;
    std::shared_ptr<const HashRing> ring;
    std::optional<int> my_shard;
    std::vector<size_t> forward_start;  // shard id -> ForwardStart
  };

  // The view's members as InView reads them (a snapshot per change, cached per thread).
  struct AddressHash {
    size_t operator()(const Address& a) const noexcept;
  };
  using ViewSet = std::unordered_set<Address, AddressHash>;

 private:
  // The current layout from this thread's cache. The reference is valid until this thread's
  // next call into any ClusterState: use it locally, without calling out.
  const Layout& CachedLayout() const;
  // Publishes view_ to InView's readers; called under mu_ after every change.
  void PublishViewLocked();

  const Address self_;
  const uint64_t instance_;  // tells ClusterStates apart in the per-thread cache
  mutable std::mutex mu_;
  std::vector<Address> view_;                // GUARDED_BY(mu_), sorted
  std::shared_ptr<const ViewSet> view_set_;  // GUARDED_BY(mu_): view_'s members
  // Bumped (under mu_) whenever view_ changes.
  std::atomic<uint64_t> view_version_{1};
  std::shared_ptr<const Layout> layout_;  // GUARDED_BY(mu_)
  // Bumped (under mu_) whenever layout_ changes.
  std::atomic<uint64_t> layout_version_{1};
};

}  // namespace kvs::cluster
