// Changes of the cluster layout: adopting a newer configuration (pushed, or seen on a
// heartbeat), add-member, and online reshard. The node that receives the client's request
// coordinates. A reshard runs in three phases while the cluster keeps serving:
//   1. stage: every node pulls, from a replica of each other old shard, the keys its shard in
//      the next layout will own (a streamed range transfer, chunk by chunk), then keeps
//      pulling the deltas written meanwhile (per-origin log suffixes: the recent keys);
//   2. once every node has caught up, a short barrier: writes are held everywhere, each node
//      pulls the last delta from every live replica of its sources and from its own shard
//      peers, and logs it to disk;
//   3. commit: every node switches to the new layout, drops what it no longer owns and
//      reopens writes.
// No node gathers the data set: each holds its own keys plus those it will own.
// Thread-safe: one reconfiguration at a time per coordinating node (a mutex); the node-local
// steps may run concurrently with requests.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
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
  // Each step under the barrier (prepare, finish, commit). A coordinator that finds the
  // barrier older than barrier_limit before it commits aborts instead; both keep the commit
  // well inside freeze_limit, after which a frozen node reopens by itself.
  std::chrono::milliseconds barrier_call_timeout{10000};
  std::chrono::milliseconds barrier_limit{30000};
  // A staging pass that brings fewer entries than this counts as caught up: the barrier
  // then ships about that much.
  size_t caught_up_entries = 2000;
  // A staging node abandons a reshard whose coordinator has not asked for news this long.
  std::chrono::milliseconds staging_lease{60000};
};

// Result of a client-requested change: 200, or the status and error to answer with.
struct ChangeOutcome {
  int status = 200;
  std::string error;
  std::string report =
      std::string();  // reshard: a one-line JSON summary with each shard's progress
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
  // here. Returns whether it was adopted. `held_ms` (optional): for the commit of a reshard
  // this node froze for, how long its writes were held.
  bool Adopt(const cluster::ClusterConfig& config, uint64_t* held_ms = nullptr);
  // A heartbeat showed `peer` at a newer epoch: fetch and adopt its configuration.
  void FetchConfigFrom(const std::string& peer);

  // --- /internal steps of a reshard, run at every node ---
  // Starts pulling, in the background, the keys this node owns in `next` and lacks.
  void Stage(const cluster::ClusterConfig& next);
  // How the staging for `epoch` goes (kIdle: none for that epoch).
  StagingProgress Progress(uint64_t epoch);
  bool Prepare(uint64_t epoch);
  // Under the barrier: the last delta from every live replica of the sources and from this
  // shard's peers, on disk before it returns. Empty on success, else why not.
  std::string Finish(uint64_t epoch, StagingProgress& out);
  void Abort(uint64_t epoch);
  // Thaws a node whose coordinator vanished mid-reshard, and drops a staging whose
  // coordinator stopped asking (timer).
  void CheckFreeze();
  ~Reconfigurator();
  std::string MetricsText() const;

  // --- client operations, coordinated here ---
  ChangeOutcome AddMember(int shard, const cluster::Address& node);
  ChangeOutcome ReshardTo(int shard_count);

  // The client operation this node coordinates now, for GET /status. A reshard goes through
  // the phases "staging" (done/total: nodes caught up with the keys they will own / nodes),
  // "barrier" (writes held; nodes that took their last keys / nodes) and "commit"; an
  // add-member through "config" (0/2: the new layout is sent) and "catch-up" (1/2: the new
  // member loads the shard's data).
  struct Operation {
    std::string kind;  // "reshard" or "add-member"
    std::string phase;
    uint64_t done = 0;
    uint64_t total = 0;
    std::chrono::steady_clock::time_point started;
  };
  std::optional<Operation> CurrentOperation() const;

 private:
  class OperationScope;
  struct Staging {
    cluster::ClusterConfig next;
    std::shared_ptr<const cluster::ClusterConfig> current;  // the layout it started under
    std::optional<int> old_shard;                           // this node's shard now
    std::optional<int> new_shard;                           // and in `next`
    // Source shard -> the vector of what this node holds of its range (joined over the
    // pulls): the next pull asks only for what it does not cover.
    std::map<int, causal::VersionVector> have;
    StagingProgress progress;  // GUARDED_BY(staging_mu_)
    std::chrono::steady_clock::time_point last_contact;
    std::atomic<bool> stop{false};
    std::thread worker;
  };
  // Runs `method path body` against every node of `nodes` at once, each within `timeout`.
  std::vector<net::CallResult> CallAll(const std::vector<cluster::Address>& nodes,
                                       const std::string& method, const std::string& path,
                                       const std::string& body, std::chrono::milliseconds timeout);
  // CallAll; the first failure, or "".
  std::string ForAll(const std::vector<cluster::Address>& nodes, const std::string& method,
                     const std::string& path, const std::string& body,
                     std::chrono::milliseconds timeout);
  void AbortEverywhere(const std::vector<cluster::Address>& nodes, uint64_t epoch);
  // Phase 1 of ReshardTo: stage everywhere and wait until every node has caught up.
  std::string StageEverywhere(const std::vector<cluster::Address>& nodes,
                              const cluster::ClusterConfig& next, OperationScope& operation);
  // The staging worker: a full pull of each source range, then delta passes until stopped.
  void StageLoop(Staging& staging);
  // One pull of source shard `source`'s range (a delta unless `full`) from one live member,
  // or from every live member (`all_members`). Adds what it applied to `applied`. Empty on
  // success, else why not.
  std::string PullRange(Staging& staging, int source, bool full, bool all_members,
                        uint64_t& applied);
  // Stores staged entries (newest version wins) and logs them; returns how many changed.
  size_t StageEntries(std::vector<Update>& updates);
  // Ends the staging (if any): stops its worker and, unless the next layout was adopted,
  // drops the keys it brought.
  void EndStaging(bool adopted);
  void StopWorker(Staging& staging);
  // Drops the keys this node does not own under its current layout (what a staging brought).
  void DropStaged(const Staging& staging);
  // After a reshard commit: on a background thread, drops what this node no longer owns
  // (`shard`: its shard now; none drops everything) and then ends the staging. Joins the
  // previous drop first.
  // `hand_off`: this node missed the reshard (HandOff runs first, on the same thread).
  void StartDrop(std::optional<int> shard, uint64_t epoch, bool hand_off);
  void WaitForDrop();
  // A node that missed a reshard (down, or cut off) may hold writes it coordinated whose
  // broadcast never left: nobody else has them, and the drop would lose them although they
  // were acknowledged. Before the drop, its own writes (entries of its origins) among the keys
  // it no longer owns go to every member of their new shard (POST /internal/handoff, which
  // answers once they are durable there); last writer wins, so what they already hold stays.
  // Entries no member took (those it had no time for when the server stopped included) are
  // logged as an error and dropped all the same.
  void HandOff(std::optional<int> shard);

  store::Store& store_;
  causal::HybridClock& clock_;
  cluster::ClusterState& cluster_;
  net::PeerClient& client_;
  Replicator& replicator_;
  Coordinator& coordinator_;
  const ReconfigureOptions options_;
  storage::Journal* const journal_;

  // Starts, moves on and (destroyed) ends the operation CurrentOperation() reports.
  class OperationScope {
   public:
    OperationScope(Reconfigurator& owner, std::string kind, std::string phase, uint64_t total);
    ~OperationScope();
    void Set(std::string_view phase, uint64_t done, uint64_t total);
    void SetDone(uint64_t done);

   private:
    Reconfigurator& owner_;
  };

  std::mutex change_mu_;  // one coordinated change at a time
  mutable std::mutex operation_mu_;
  std::optional<Operation> operation_;  // GUARDED_BY(operation_mu_)
  std::mutex adopt_mu_;                 // adoption steps run one at a time

  std::mutex freeze_mu_;
  std::chrono::steady_clock::time_point frozen_since_;  // GUARDED_BY(freeze_mu_)
  uint64_t frozen_for_epoch_ = 0;                       // GUARDED_BY(freeze_mu_); 0: not frozen

  std::mutex drop_mu_;  // guards drop_ (never held by the drop thread itself)
  std::thread drop_;    // GUARDED_BY(drop_mu_): the last commit's drop
  // Set when this object is destroyed (the server stops): a hand-off in progress gives up
  // between calls instead of holding the shutdown for its retries.
  std::atomic<bool> stopping_{false};

  std::mutex staging_end_mu_;  // Stage/Finish/EndStaging run one at a time
  mutable std::mutex staging_mu_;
  std::condition_variable staging_cv_;  // wakes the worker's pauses when stopping
  std::unique_ptr<Staging> staging_;    // GUARDED_BY(staging_mu_) (the pointer)

  std::atomic<uint64_t> staged_entries_{0};
  std::atomic<uint64_t> staged_bytes_{0};
  std::atomic<uint64_t> reshards_done_{0};
  std::atomic<uint64_t> reshards_failed_{0};
  std::atomic<uint64_t> last_hold_ms_{0};
  std::atomic<uint64_t> last_reshard_ms_{0};
  mutable std::mutex report_mu_;
  std::map<int, StagingProgress> coordinated_;  // GUARDED_BY(report_mu_): the last reshard's
};

}  // namespace kvs::replication
