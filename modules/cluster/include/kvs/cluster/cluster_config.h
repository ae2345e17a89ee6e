// Cluster configuration (which nodes form which shard, at which epoch) and the start-up rules
// of SPEC §1. Pure functions over plain values: no I/O, no shared state.
// Invariant of a valid ClusterConfig: shard ids are 0..N-1, every node is in at most one shard,
// each shard's member list is sorted.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "kvs/cluster/address.h"

namespace kvs::cluster {

struct ClusterConfig {
  uint64_t epoch = 0;
  // Epoch of the last reshard: writes made before it were moved to their shards under a
  // barrier, so causal dependencies on them are satisfied by construction.
  uint64_t barrier_epoch = 0;
  std::vector<std::vector<Address>> shards;  // shard id -> members

  int shard_count() const { return static_cast<int>(shards.size()); }
  // The shard `node` belongs to, or nullopt when it is in none.
  std::optional<int> ShardOf(const Address& node) const;
};

// The deterministic initial assignment from (VIEW, SHARD_COUNT): sort the nodes, then deal them
// round-robin to shards 0..N-1 (node i -> shard i mod N). Every node computes the same result.
// REQUIRES: shard_count >= 1.
ClusterConfig InitialAssignment(std::vector<Address> view, int shard_count);

// A new layout with `shard_count` shards over the `live` nodes for reshard: shard sizes differ
// by at most one, and each node stays in its shard when the sizes allow (fewer keys move).
// Nodes not in `live` are left out. Epoch and barrier_epoch are current.epoch + 1.
// REQUIRES: live.size() >= 2 * shard_count, shard_count >= 1.
ClusterConfig Reshard(const ClusterConfig& current, std::vector<Address> live, int shard_count);

// Whether a configuration received from a peer should replace ours: a higher epoch wins; an
// unassigned node (no shards yet) takes the cluster's layout at any epoch.
bool ShouldAdopt(const ClusterConfig& ours, const ClusterConfig& theirs);

// Raw start-up input (env / config / command line), each possibly absent.
struct StartupInput {
  std::optional<std::string> socket_address;
  std::optional<std::string> view;
  std::optional<std::string> shard_count;
};

// Validated start-up parameters.
struct StartupPlan {
  Address self;
  std::vector<Address> view;       // sorted, de-duplicated, contains self
  std::optional<int> shard_count;  // absent: the node waits to be added with add-member
  bool single_node = false;        // VIEW is just this node: runs, but is not fault-tolerant
};

// Checks SPEC §1's rules. On failure returns one line naming the problem.
std::variant<StartupPlan, std::string> ValidateStartup(const StartupInput& input);

}  // namespace kvs::cluster
