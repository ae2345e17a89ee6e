// This node's live knowledge of the cluster: the view (nodes believed up) and the current
// ClusterConfig. Thread-safe: readers get immutable snapshots; writers serialize on a mutex.
// Invariant: the view is sorted and holds each address once; self starts in it.
#pragma once

#include <memory>
#include <mutex>
#include <optional>
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
  void SetConfig(ClusterConfig config);
  // Replaces the configuration when ShouldAdopt() says so; returns whether it did.
  bool AdoptConfig(const ClusterConfig& config);
  // The shard owning `key` under the current configuration; nullopt before the node knows any
  // layout (an unassigned node that has not heard from the cluster yet).
  std::optional<int> ShardForKey(std::string_view key) const;
  std::optional<int> MyShard() const;
  // Members of `shard` that are currently in the view (SPEC: shard-id-members lists live
  // members). nullopt when the shard does not exist.
  std::optional<std::vector<Address>> LiveMembers(int shard) const;

 private:
  const Address self_;
  mutable std::mutex mu_;
  std::vector<Address> view_;                    // GUARDED_BY(mu_), sorted
  std::shared_ptr<const ClusterConfig> config_;  // GUARDED_BY(mu_)
  std::shared_ptr<const HashRing> ring_;         // GUARDED_BY(mu_); null with no shards
};

}  // namespace kvs::cluster
