// Changes of the cluster layout: adopting a newer configuration (pushed, or seen on a
// heartbeat), add-member, and reshard as a barrier. The node that receives the client's
// request coordinates: it pushes the new configuration to every node in the view, and for a
// reshard it first freezes writes everywhere, gathers every key from every old shard, sends
// each key to every member of its new shard, then commits the new epoch everywhere (each node
// then drops what it no longer owns and reopens writes).
// Thread-safe: one reconfiguration at a time per coordinating node (a mutex); the node-local
// steps may run concurrently with requests.
#pragma once

#include <chrono>
#include <mutex>
#include <string>
#include <vector>

#include "kvs/causal/hybrid_clock.h"
#include "kvs/cluster/cluster_state.h"
#include "kvs/net/peer_client.h"
#include "kvs/replication/coordinator.h"
#include "kvs/replication/replicator.h"
#include "kvs/replication/wire.h"
#include "kvs/store/store.h"

namespace kvs::replication {

struct ReconfigureOptions {
  std::chrono::milliseconds drain_wait{5000};     // prepare: in-flight writes to finish
  std::chrono::milliseconds freeze_limit{60000};  // a frozen node thaws by itself after this
  std::chrono::milliseconds call_timeout{30000};  // each node-to-node step
  size_t ingest_chunk = 2000;                     // entries per ingest request
};

// Result of a client-requested change: 200, or the status and error to answer with.
struct ChangeOutcome {
  int status = 200;
  std::string error;
};

class Reconfigurator {
 public:
  Reconfigurator(store::Store& store, causal::HybridClock& clock, cluster::ClusterState& cluster,
                 net::PeerClient& client, Replicator& replicator, Coordinator& coordinator,
                 ReconfigureOptions options, storage::Journal* journal = nullptr);

  // Start-up: adopt the newest configuration any node in the view has, start this epoch's
  // write origin, then load the shard's data (Replicator::Bootstrap).
  void Start();

  // Adopts `config` if it is newer (see cluster::ShouldAdopt) and applies its consequences
  // here. Returns whether it was adopted.
  bool Adopt(const cluster::ClusterConfig& config);
  // A heartbeat showed `peer` at a newer epoch: fetch and adopt its configuration.
  void FetchConfigFrom(const std::string& peer);

  // --- /internal steps of a reshard, run at every node ---
  bool Prepare(uint64_t epoch);
  void Abort(uint64_t epoch);
  size_t Ingest(const std::vector<Update>& updates);
  // Thaws a node whose coordinator vanished mid-reshard (timer).
  void CheckFreeze();

  // --- client operations, coordinated here ---
  ChangeOutcome AddMember(int shard, const cluster::Address& node);
  ChangeOutcome ReshardTo(int shard_count);

 private:
  // Runs `step` against every node in `nodes` (locally for self). Returns the first failure.
  std::string ForAll(const std::vector<cluster::Address>& nodes, const std::string& method,
                     const std::string& path, const std::string& body);
  void AbortEverywhere(const std::vector<cluster::Address>& nodes, uint64_t epoch);

  store::Store& store_;
  causal::HybridClock& clock_;
  cluster::ClusterState& cluster_;
  net::PeerClient& client_;
  Replicator& replicator_;
  Coordinator& coordinator_;
  const ReconfigureOptions options_;
  storage::Journal* const journal_;

  std::mutex change_mu_;  // one coordinated change at a time
  std::mutex adopt_mu_;   // adoption steps run one at a time

  std::mutex freeze_mu_;
  std::chrono::steady_clock::time_point frozen_since_;  // GUARDED_BY(freeze_mu_)
  uint64_t frozen_for_epoch_ = 0;                       // GUARDED_BY(freeze_mu_); 0: not frozen
};

}  // namespace kvs::replication
