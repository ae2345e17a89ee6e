#include "kvs/replication/recovery.h"

namespace kvs::replication {

void StoreRecovery::OnEntry(storage::LoggedEntry&& e) {
  clock_.Observe(e.entry.version.hlc);
  has_data_ = true;
  // Nothing is served yet, so the vector may be set before the store holds the entry.
  if (e.record_applied) replicator_.RestoreApplied(e.entry.version.origin, e.entry.version.seq);
  store_.ApplyIfNewer(e.key, std::move(e.entry));
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
