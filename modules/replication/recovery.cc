#include "kvs/replication/recovery.h"

#include "kvs/replication/wire.h"

namespace kvs::replication {

void StoreRecovery::OnEntry(storage::LoggedEntry&& e) {
  clock_.Observe(e.entry.version.hlc);
  has_data_ = true;
  // Nothing is served yet, so the vector may be set before the store holds the entry.
  if (e.record_applied) replicator_.RestoreApplied(e.entry.version.origin, e.entry.version.seq);
  if (ring_ && !unowned_since_layout_ && (!mine_ || ring_->ShardFor(e.key) != *mine_)) {
    unowned_since_layout_ = true;
  }
  store_.ApplyIfNewer(e.key, std::move(e.entry));
}

void StoreRecovery::OnLayout(std::string&& layout) {
  std::string error;
  const auto config = DecodeConfig(layout, error);
  layout_ = std::move(layout);
  if (!config) return;  // the caller reports an unreadable last layout
  const std::optional<int> mine = config->ShardOf(self_);
  const int shards = config->shard_count();
  const bool same_ownership = ring_ && ring_->shard_count() == shards && mine_ == mine;
  if (!same_ownership || unowned_since_layout_) {
    if (shards > 0 && mine) {
      const cluster::HashRing ring(shards);
      dropped_ += store_.EraseIf([&](std::string_view key, const store::EntryView&) {
        return ring.ShardFor(key) != *mine;
      });
    } else {
      dropped_ += store_.EraseIf([](std::string_view, const store::EntryView&) { return true; });
    }
  }
  if (shards > 0) {
    ring_.emplace(shards);
  } else {
    ring_.reset();
  }
  mine_ = mine;
  unowned_since_layout_ = false;
}

void StoreRecovery::OnApplied(std::string_view origin, uint64_t seq) {
  has_data_ = true;
  replicator_.RestoreApplied(origin, seq);
}

void StoreRecovery::OnRaise(const causal::VersionVector& vv) {
  if (!vv.empty()) has_data_ = true;
  replicator_.RestoreRaise(vv);
}

void StoreRecovery::OnPurge(const std::string& key, std::string_view origin, uint64_t seq) {
  store_.EraseKeyIf(key, [&](const store::EntryView& e) {
    return e.tombstone && e.version.seq == seq && e.version.origin == origin;
  });
}

}  // namespace kvs::replication
