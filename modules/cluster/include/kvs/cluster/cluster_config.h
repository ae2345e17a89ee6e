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
  std::vector<std::vector<Address>> shards;  // shard id -> members

  int shard_count() const { return static_cast<int>(shards.size()); }
  // The shard `node` belongs to, or nullopt when it is in none.
  std::optional<int> ShardOf(const Address& node) const;
};

// The deterministic initial assignment from (VIEW, SHARD_COUNT): sort the nodes, then deal them
// round-robin to shards 0..N-1 (node i -> shard i mod N). Every node computes the same result.
// REQUIRES: shard_count >= 1.
ClusterConfig InitialAssignment(std::vector<Address> view, int shard_count);

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
