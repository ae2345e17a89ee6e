#include "kvs/replication/recovery.h"

namespace kvs::replication {

void StoreRecovery::OnEntry(storage::LoggedEntry&& e) {
  clock_.Observe(e.entry.version.hlc);
  has_data_ = true;
  const std::string origin = e.record_applied ? e.entry.version.origin : std::string();
  const uint64_t seq = e.entry.version.seq;
  store_.ApplyIfNewer(e.key, std::move(e.entry));
  if (!origin.empty()) replicator_.RestoreApplied(origin, seq);
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
