// Replication within a shard: broadcast of local writes to shard peers, application of
// peers' updates, anti-entropy by version-vector sync, the causal gate (pull missing
// dependencies before serving), start-up bootstrap from peers, and tombstone collection.
//
// Anti-entropy is state-based: the asker sends its applied vector; the answerer snapshots its
// own vector, then returns every entry whose write the asker's vector does not cover. Because
// the answerer's store reflects every update its vector covers (LWW merge is a join), the
// asker may then raise its vector to the answerer's.
//
// Every sync is a stream of chunks of at most ~transfer_chunk_bytes: the answerer walks its
// store in walk-position order (Store::WalkPosition) from the asker's cursor, so neither side
// holds more than a chunk, whatever the data size. The asker sends the same vector in every
// chunk and raises its own only after the last one, to the vector the first chunk carried
// (every later walk reflects at least that much). A stream that breaks leaves the vector
// where it was; what was applied stays (LWW), and the next sync starts over.
//
// Thread-safe: all public methods may be called from request threads and timer threads.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <vector>

#include "kvs/causal/hybrid_clock.h"
#include "kvs/causal/metadata.h"
#include "kvs/cluster/cluster_state.h"
#include "kvs/net/peer_client.h"
#include "kvs/replication/applied_tracker.h"
#include "kvs/replication/peer_sender.h"
#include "kvs/replication/wire.h"
#include "kvs/storage/journal.h"
#include "kvs/store/store.h"

namespace kvs::replication {

// Dependency pulls made on the calling thread so far: a request that reads it before and after
// its handling knows whether it had to pull (kvs_http_request_duration_seconds path="pulled").
uint64_t ThreadDependencyPulls();

struct ReplicationOptions {
  std::chrono::milliseconds dependency_wait{2000};
  std::chrono::milliseconds bootstrap_timeout{3000};
  std::chrono::milliseconds sync_timeout{5000};  // per chunk
  size_t transfer_chunk_bytes = 4u << 20;
  // Keys of this many recent updates are kept (AppliedTracker): a peer that lacks only those
  // gets them without a walk of the store. At least that many, and recent_updates_percent of
  // the live keys: a peer as far behind as a big shard's write bursts take a slow machine
  // still gets a delta, not a walk of every key (0: always walk).
  size_t recent_updates = 65536;
  size_t recent_updates_percent = 10;
  SenderOptions sender;
};

class Replicator {
 public:
  Replicator(store::Store& store, causal::HybridClock& clock, cluster::ClusterState& cluster,
             net::PeerClient& client, ReplicationOptions options,
             storage::Journal* journal = nullptr);
  ~Replicator();

  // --- write path (Coordinator) ---
  // Records a local write as applied and queues it for every live shard peer.
  void OnLocalWrite(const std::string& key, const store::Entry& entry);
  // Records a local write as applied when there is no peer to send it to (and so nobody to
  // ask for it: its key is not kept among the recent ones).
  void RecordLocalWrite(std::string_view origin, uint64_t seq) { applied_.Record(origin, seq); }
  // Whether this replica has shard peers to broadcast to.
  bool has_peers() const { return has_peers_.load(std::memory_order_acquire); }
  // Blocks (bounded) until this replica has applied every same-shard dependency in `m`,
  // pulling from peers when it has not. False (with `missing` naming one) on timeout.
  bool AwaitDependencies(const causal::Metadata& m, std::string& missing);
  // Without waiting: whether this replica is loaded and has applied every same-shard
  // dependency in `m` (so AwaitDependencies would return true at once).
  bool DependenciesPresent(const causal::Metadata& m) const;

  // --- /internal endpoints ---
  // Applies a peer's broadcast batch in causal order: an update waits in a bounded buffer
  // until its origin's earlier updates and its same-shard dependencies are applied here.
  // Returns how many entries changed the store.
  size_t ApplyBatch(const ReplicateBatch& batch);
  // ApplyBatch without waiting: nullopt (nothing applied) when another thread is applying
  // (a large sync reply may hold the buffer for a while).
  std::optional<size_t> TryApplyBatch(const ReplicateBatch& batch);
  // `wire`: a chunk taken by walking the store comes in reply.wire_updates (the HTTP path,
  // which only encodes the reply) instead of reply.updates.
  SyncReply AnswerSync(const SyncRequest& request, bool wire = false);
  // Applies what a peer answered to our sync request (a whole answer, or a stream's chunks
  // in turn); returns how many entries changed. `keep_keys`: remember their keys among the
  // recent ones (a delta); a full transfer, which comes in no useful order, does not.
  size_t ApplySyncUpdates(const std::vector<Update>& updates, bool keep_keys = true);
  // Entries that a node which missed a reshard hands on before it drops the keys it no longer
  // owns (Reconfigurator's hand-off, POST /internal/handoff): applied like anti-entropy's
  // (last writer wins; no causal gate, they were written before the barrier), then made
  // durable, since the sender drops its copy once we answer. nullopt when the log could not
  // make them durable (the sender keeps trying elsewhere).
  std::optional<size_t> ApplyHandoff(const std::vector<Update>& updates);
  // After the last chunk of a stream: raises the applied vector to `vv`, the answerer's vector
  // from the stream's first chunk. `delta`: the stream was a delta whose entries were applied
  // with their keys (AppliedTracker::RaiseTo's keys_delivered).
  size_t FinishSync(const causal::VersionVector& vv, bool delta = false);
  // ApplySyncUpdates then FinishSync with the reply's vector (a one-chunk answer).
  size_t ApplySyncReply(const SyncReply& reply) {
    const size_t changed = ApplySyncUpdates(reply.updates);
    return changed + FinishSync(reply.vv, /*delta=*/true);
  }

  // --- recovery from disk (before serving) ---
  void RestoreApplied(std::string_view origin, uint64_t seq) { applied_.Record(origin, seq); }
  void RestoreAppliedRange(std::string_view origin, uint64_t first, uint64_t last) {
    applied_.RecordRange(origin, first, last);
  }
  void RestoreRaise(const causal::VersionVector& vv) { applied_.RaiseTo(vv); }
  // What recovery brought back: bootstrap then pulls only what is missing (a delta), and
  // `repaired` asks for a full pull.
  void SetRecovered(bool has_data, bool repaired) {
    recovered_data_ = has_data;
    recovery_repaired_ = repaired;
  }

  // --- background work ---
  // Start-up (after the configuration is settled): pull this shard's data from a live peer:
  // everything for a node that starts empty, only what it lacks for one that recovered its
  // data from disk. A transfer runs as long as its chunks keep coming; a broken one is
  // started again (from another peer if one answers) until bootstrap_timeout passes without
  // a chunk. With no peer answering at all (a cluster starting), it starts with what it has.
  // Marks the replica ready at the end.
  void Bootstrap();
  // One anti-entropy round: sync with every live shard peer, then collect tombstones that
  // every member has applied.
  void AntiEntropyRound();
  // Broadcasts go through `driver` (the event loops) from now on, for every peer it Drives();
  // nullptr: each peer's sender thread again. Queued updates move to the new senders.
  void SetSenderDriver(SenderDriver* driver);
  // Starts/stops per-peer senders to match the current shard membership.
  void RefreshPeers();
  // Pulls every entry of this node's shard from a live peer (a member that just joined or
  // changed shard). True when a peer answered.
  bool CatchUp();
  // The next anti-entropy round does a full pull (set when this node joins a shard).
  void RequestFullSync() { full_sync_wanted_.store(true, std::memory_order_release); }
  // After a reshard barrier: drop buffered broadcasts of the old layout.
  void ResetAfterBarrier();

  // Removes from `m` the entries no replica needs to check any more: writes of origins from
  // before the last reshard barrier (moved under it: satisfied everywhere), and writes of this
  // shard's origins that every member of the shard has applied, as last reported (a member
  // that joins or restarts serves only after loading what a member has). Metadata then names
  // the live writers, not the history of restarts and reshards. True when `m` changed.
  bool PruneSatisfied(causal::Metadata& m) const;

  // --- online reshard (Reconfigurator) ---
  // While a reshard stages, the store also holds keys this node will own only in the next
  // layout: sync answers and key counts leave them out, and no replica purges tombstones (a
  // staging pull must see every delete made while it runs).
  void SetStaging(bool staging) { staging_.store(staging, std::memory_order_release); }
  bool staging() const { return staging_.load(std::memory_order_acquire); }
  size_t transfer_chunk_bytes() const { return options_.transfer_chunk_bytes; }
  // Live keys this node owns under its current layout.
  int64_t OwnedLiveCount() const;

  struct TransferStats {
    size_t chunks = 0;
    size_t entries = 0;
    uint64_t bytes = 0;
    // Time this side spent waiting for chunks (the answerer's walk, the wire, decoding) and
    // applying them: which of the two a transfer is bound by.
    std::chrono::milliseconds waited{0};
    std::chrono::milliseconds applied{0};
    std::string error;  // why the stream broke off
  };
  // Streams `request` from `peer` chunk by chunk (each within sync_timeout, all before
  // `deadline` when one is given), handing each chunk's updates to `apply` in turn. Returns
  // the answerer's vector from the first chunk once the whole stream arrived, or nullopt.
  // `what` names the transfer in progress logs.
  std::optional<causal::VersionVector> StreamFrom(
      const std::string& peer, SyncRequest request,
      std::optional<std::chrono::steady_clock::time_point> deadline,
      const std::function<void(std::vector<Update>&)>& apply, TransferStats* stats,
      const char* what);

  // Pulls from `peer` what this replica lacks (everything with `full`) through StreamFrom, and
  // raises the applied vector at the end; true when the whole stream arrived.
  bool SyncWith(const std::string& peer, bool full = false,
                std::optional<std::chrono::steady_clock::time_point> deadline = std::nullopt,
                TransferStats* stats = nullptr);

  bool ready() const { return ready_.load(std::memory_order_acquire); }
  causal::VersionVector AppliedVector() const { return applied_.Snapshot(); }
  std::string MetricsText() const;

  // --- status (GET /status) ---
  // This node's broadcast queue to one shard peer.
  struct PeerQueue {
    std::string peer;
    size_t queued = 0;
    int64_t oldest_age_ms = 0;  // 0 when nothing is queued
  };
  // One entry per peer sender, by peer address.
  std::vector<PeerQueue> QueueSnapshot() const;
  struct AntiEntropyStatus {
    std::optional<std::chrono::steady_clock::time_point> last_run;     // last round's end
    std::optional<std::chrono::steady_clock::time_point> last_repair;  // last round that changed
    uint64_t last_repair_entries = 0;                                  // entries that round changed
    uint64_t repaired_total = 0;  // entries anti-entropy rounds changed since start
  };
  AntiEntropyStatus AntiEntropy() const;

 private:
  // Sizes the recent keys' capacity to the store (ReplicationOptions::recent_updates_percent).
  void SizeRecentUpdates();
  using Wanted = std::function<bool(std::string_view key, const store::EntryView&)>;
  // The entries `wanted` with walk positions from `cursor` on, about `max_bytes` of them (at
  // least one; entries of one position together), into reply.updates (`wire`: into
  // reply.wire_updates); reply.next_cursor says where the next chunk starts (none: the walk
  // is done).
  void CollectChunk(uint64_t cursor, uint64_t max_bytes, const Wanted& wanted, SyncReply& reply,
                    bool wire) const;
  // Where a chunk from `cursor` of about `max_bytes` ends (the first position left out; none:
  // it runs to the end of the walk). Walks the stripes from the cursor's until one completes
  // the chunk, keeping only each wanted entry's (position, size).
  std::optional<uint64_t> ChunkLimit(uint64_t cursor, uint64_t max_bytes,
                                     const Wanted& wanted) const;
  // CollectChunk over just `keys` (the keys of recent updates), no walk of the store.
  void ChunkFromKeys(std::vector<std::string> keys, uint64_t cursor, uint64_t max_bytes,
                     const Wanted& wanted, SyncReply& reply) const;
  // Whether this node, under its current layout, keeps `u`.
  bool Owned(const Update& u) const;
  // Stores one update and records it applied (with its key among the recent ones when
  // `keep_key`); true when the store changed.
  bool ApplyOne(const Update& u, bool keep_key = true);
  // True when every update `u` causally depends on (in this shard) is applied here.
  bool Deliverable(const Update& u) const;
  // Applies buffered updates that became deliverable. REQUIRES: pending_mu_ held.
  size_t DrainPendingLocked();
  // REQUIRES: pending_mu_ held.
  size_t ApplyBatchLocked(const ReplicateBatch& batch);
  bool SameShardOrigin(std::string_view origin) const;
  // The first same-shard dependency in `m` not yet applied here (contiguously), or null.
  const std::string* FirstMissing(const causal::Metadata& m) const;
  std::vector<std::string> ShardPeers(bool live_only) const;
  // A sender for `peer`, driven when driver_ drives it. REQUIRES: senders_mu_ held.
  std::shared_ptr<PeerSender> MakeSenderLocked(const std::string& peer);
  bool WaitReady(std::chrono::steady_clock::time_point deadline);
  void CollectTombstones();
  // ApplySyncUpdates and ApplyHandoff without their counters: applies `updates` (those this
  // node owns) oldest first, last writer wins; returns how many changed.
  size_t ApplyInClockOrder(const std::vector<Update>& updates, bool keep_keys);
  // Recomputes stable_ from the members' last reported vectors.
  void RefreshStable();

  store::Store& store_;
  causal::HybridClock& clock_;
  cluster::ClusterState& cluster_;
  net::PeerClient& client_;
  const ReplicationOptions options_;
  const std::string self_;
  storage::Journal* const journal_;
  bool recovered_data_ = false;     // set before Bootstrap
  bool recovery_repaired_ = false;  // set before Bootstrap

  AppliedTracker applied_;
  SenderCounters sender_counters_;

  mutable std::shared_mutex senders_mu_;
  std::map<std::string, std::shared_ptr<PeerSender>> senders_;  // GUARDED_BY(senders_mu_)
  SenderDriver* driver_ = nullptr;                              // GUARDED_BY(senders_mu_)

  std::mutex peer_vv_mu_;
  std::map<std::string, causal::VersionVector> peer_vv_;  // GUARDED_BY(peer_vv_mu_)

  static constexpr size_t kPendingMax = 50000;
  std::mutex pending_mu_;       // also serializes broadcast application
  std::deque<Update> pending_;  // GUARDED_BY(pending_mu_)

  std::mutex pull_mu_;  // held by the request thread pulling missing dependencies

  // For this shard's origins, the sequence numbers every member has applied (null: unknown).
  std::atomic<std::shared_ptr<const causal::VersionVector>> stable_;

  std::atomic<bool> full_sync_wanted_{false};
  std::atomic<bool> staging_{false};
  std::atomic<bool> has_peers_{false};
  std::atomic<bool> ready_{false};
  std::mutex ready_mu_;
  std::condition_variable ready_cv_;

  // Steady-clock nanoseconds of the last anti-entropy round's end and of the last one that
  // changed entries (0: none yet); the system clock's milliseconds of the latter.
  std::atomic<int64_t> ae_last_run_ns_{0};
  std::atomic<int64_t> ae_last_repair_ns_{0};
  std::atomic<int64_t> ae_last_repair_unix_ms_{0};
  std::atomic<uint64_t> ae_last_repair_entries_{0};
  std::atomic<uint64_t> ae_repaired_total_{0};
  // What the periodic rounds' pulls received (answer bytes, entries), repairs or not.
  std::atomic<uint64_t> ae_received_bytes_{0};
  std::atomic<uint64_t> ae_received_entries_{0};

  std::atomic<uint64_t> broadcast_applied_{0};
  std::atomic<uint64_t> anti_entropy_applied_{0};
  std::atomic<uint64_t> handoff_applied_{0};
  std::atomic<uint64_t> dependency_pulls_{0};
  std::atomic<uint64_t> dependency_timeouts_{0};
  std::atomic<uint64_t> tombstones_collected_{0};
  std::atomic<uint64_t> pending_dropped_{0};
  std::atomic<uint64_t> misrouted_{0};
  std::atomic<uint64_t> chunks_sent_{0};
  std::atomic<uint64_t> syncs_from_recent_{0};
  std::atomic<uint64_t> syncs_walked_{0};
  std::atomic<uint64_t> chunks_received_{0};
  std::atomic<uint64_t> transfer_bytes_received_{0};
  std::atomic<uint64_t> transfers_failed_{0};
};

}  // namespace kvs::replication
