#include "kvs/replication/recovery.h"

#include "kvs/replication/wire.h"

namespace kvs::replication {

void StoreRecovery::OnEntry(const storage::LoggedEntryRef& e) {
  Note(e);
  store_.ApplyIfNewer(e.key, e.entry);
}

void StoreRecovery::OnEntries(std::span<const storage::LoggedEntryRef> entries) {
  for (const storage::LoggedEntryRef& e : entries) Note(e);
  store_.ApplyAllIfNewer(
      entries.size(), [&](size_t i) { return entries[i].key; },
      [&](size_t i) -> const store::EntryRef& { return entries[i].entry; });
}

void StoreRecovery::Note(const storage::LoggedEntryRef& e) {
  clock_.Observe(e.entry.hlc);
  // The flags are read before they are written: threads loading a snapshot together do not
  // take turns owning their cache line for every entry.
  if (!has_data_.load(std::memory_order_relaxed)) has_data_.store(true, std::memory_order_relaxed);
  // Nothing is served yet, so the vector may be set before the store holds the entry.
  if (e.record_applied) replicator_.RestoreApplied(e.entry.origin, e.entry.seq);
  if (ring_ && !unowned_since_layout_.load(std::memory_order_relaxed) &&
      (!mine_ || ring_->ShardFor(e.key) != *mine_)) {
    unowned_since_layout_.store(true, std::memory_order_relaxed);
  }
}

void StoreRecovery::OnLayout(std::string&& layout) {
  std::string error;
  const auto config = DecodeConfig(layout, error);
  layout_ = std::move(layout);
  if (!config) return;  // the caller reports an unreadable last layout
  const std::optional<int> mine = config->ShardOf(self_);
  const int shards = config->shard_count();
  const bool same_ownership = ring_ && ring_->shard_count() == shards && mine_ == mine;
  if (!same_ownership || unowned_since_layout_.load(std::memory_order_relaxed)) {
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
  unowned_since_layout_.store(false, std::memory_order_relaxed);
}

void StoreRecovery::OnApplied(std::string_view origin, uint64_t seq) {
  has_data_.store(true, std::memory_order_relaxed);
  replicator_.RestoreApplied(origin, seq);
}

void StoreRecovery::OnAppliedRange(std::string_view origin, uint64_t first, uint64_t last) {
  has_data_.store(true, std::memory_order_relaxed);
  replicator_.RestoreAppliedRange(origin, first, last);
}

void StoreRecovery::OnRaise(const causal::VersionVector& vv) {
  if (!vv.empty()) has_data_.store(true, std::memory_order_relaxed);
  replicator_.RestoreRaise(vv);
}

void StoreRecovery::OnPurge(const std::string& key, std::string_view origin, uint64_t seq) {
  store_.EraseKeyIf(key, [&](const store::EntryView& e) {
    return e.tombstone && e.version.seq == seq && e.version.origin == origin;
  });
}

}  // namespace kvs::replication
