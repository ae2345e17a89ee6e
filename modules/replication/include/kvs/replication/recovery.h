// Puts what storage recovery reads back into the node: entries into the store (last writer
// wins, so replay order does not matter), applied marks and vectors into the Replicator, the
// clock past every recovered write, and the last layout for the caller to adopt.
// Each layout record drops, as the node did when it adopted that layout, the entries it does
// not own under it: the keys a reshard moved away (not logged one by one), and those a
// reshard staged and then abandoned (the abort logs the layout again). Without that, an old
// copy of a key could come back when a later layout gives the key to this node again.
// Thread-safety: used before the node serves; OnEntry/OnEntries may run on several threads at
// once (a snapshot's chunks), everything else on one thread, never concurrently with them.
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "kvs/causal/hybrid_clock.h"
#include "kvs/cluster/address.h"
#include "kvs/cluster/hash_ring.h"
#include "kvs/replication/replicator.h"
#include "kvs/storage/journal.h"
#include "kvs/store/store.h"

namespace kvs::replication {

class StoreRecovery : public storage::RecoverySink {
 public:
  StoreRecovery(store::Store& store, causal::HybridClock& clock, Replicator& replicator,
                cluster::Address self)
      : store_(store), clock_(clock), replicator_(replicator), self_(std::move(self)) {}

  void OnEntry(const storage::LoggedEntryRef& e) override;
  bool ConcurrentEntries() const override { return true; }
  void OnEntries(std::span<const storage::LoggedEntryRef> entries) override;
  void ExpectEntries(uint64_t entries) override { store_.Reserve(entries); }
  void OnApplied(std::string_view origin, uint64_t seq) override;
  void OnAppliedRange(std::string_view origin, uint64_t first, uint64_t last) override;
  void OnRaise(const causal::VersionVector& vv) override;
  void OnPurge(const std::string& key, std::string_view origin, uint64_t seq) override;
  void OnLayout(std::string&& layout) override;

  // The last layout recovered ("" when none): the wire form of EncodeConfig.
  const std::string& layout() const { return layout_; }
  bool has_data() const { return has_data_.load(std::memory_order_relaxed); }
  // Entries dropped at layout records (no longer owned at that point of the log).
  size_t dropped() const { return dropped_; }
  // True when every recovered entry belongs to shard `mine` of `shard_count`: the last layout
  // replayed gave this node that shard, and no entry after it was someone else's. The caller
  // then need not walk the store to drop unowned keys.
  bool HoldsOnlyOwned(int shard_count, std::optional<int> mine) const {
    return ring_ && mine && mine_ == mine && ring_->shard_count() == shard_count &&
           !unowned_since_layout_.load(std::memory_order_relaxed);
  }

 private:
  // Everything OnEntry does but the store write: the clock, the applied mark, ownership.
  void Note(const storage::LoggedEntryRef& e);

  store::Store& store_;
  causal::HybridClock& clock_;
  Replicator& replicator_;
  const cluster::Address self_;
  std::string layout_;
  std::atomic<bool> has_data_{false};
  // Ownership under the last layout record replayed (none yet: nothing is dropped).
  std::optional<cluster::HashRing> ring_;
  std::optional<int> mine_;
  // An entry it does not own came after that record.
  std::atomic<bool> unowned_since_layout_{false};
  size_t dropped_ = 0;
};

}  // namespace kvs::replication
