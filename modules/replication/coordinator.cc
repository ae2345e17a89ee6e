#include "kvs/replication/coordinator.h"

#include <variant>

namespace kvs::replication {

Coordinator::Coordinator(store::Store& store, causal::HybridClock& clock, Replicator& replicator,
                         std::string origin_base, storage::Journal* journal)
    : store_(store),
      clock_(clock),
      replicator_(replicator),
      origin_base_(std::move(origin_base)),
      journal_(journal),
      origin_(origin_base_ + ".0") {}

void Coordinator::WriteTicket::Release() {
  if (owner_ == nullptr) return;
  std::lock_guard lock(owner_->gate_mu_);
  if (--owner_->in_flight_ == 0) owner_->gate_cv_.notify_all();
  owner_ = nullptr;
}

std::optional<Coordinator::WriteTicket> Coordinator::EnterWrite(std::chrono::milliseconds wait) {
  std::unique_lock lock(gate_mu_);
  if (!gate_cv_.wait_for(lock, wait, [&] { return !frozen_; })) return std::nullopt;
  ++in_flight_;
  return WriteTicket(this);
}

bool Coordinator::Freeze(std::chrono::milliseconds drain) {
  std::unique_lock lock(gate_mu_);
  frozen_ = true;
  return gate_cv_.wait_for(lock, drain, [&] { return in_flight_ == 0; });
}

void Coordinator::Thaw() {
  {
    std::lock_guard lock(gate_mu_);
    frozen_ = false;
  }
  gate_cv_.notify_all();
}

bool Coordinator::frozen() const {
  std::lock_guard lock(gate_mu_);
  return frozen_;
}

void Coordinator::StartEpoch(uint64_t epoch) {
  std::unique_lock lock(origin_mu_);
  origin_ = origin_base_ + "." + std::to_string(epoch);
  seq_.store(0, std::memory_order_release);
}

std::string Coordinator::origin() const {
  std::shared_lock lock(origin_mu_);
  return origin_;
}

bool Coordinator::DependenciesMet(const ClientContext& client, OpResult& result) {
  std::string missing;
  if (replicator_.AwaitDependencies(client.metadata, missing)) return true;
  result.kind = OpResult::Kind::kUnavailable;
  result.error = "Causal dependencies not available in time: " + missing;
  return false;
}

bool Coordinator::StorageWritable(OpResult& result) const {
  if (journal_ == nullptr || journal_->Writable()) return true;
  result.kind = OpResult::Kind::kUnavailable;
  result.storage_failed = true;
  result.error = "the write-ahead log cannot be written";
  return false;
}

store::WriteResult Coordinator::Write(const std::string& key, std::string value, bool tombstone,
                                      const ClientContext& client, bool only_if_live,
                                      std::string& wire_out, uint64_t& lsn_out) {
  std::optional<store::Entry> written;
  uint64_t stored_seq = 0;
  const bool replicate = replicator_.has_peers();  // a lone replica copies nothing to send
  std::shared_lock origin_lock(origin_mu_);
  const store::WriteResult result =
      store_.Mutate(key, [&](const store::EntryView* current) -> std::optional<store::Entry> {
        if (only_if_live && (current == nullptr || current->tombstone)) return std::nullopt;
        // Numbered under the key's lock so that a skipped write never consumes a number.
        const uint64_t seq = seq_.fetch_add(1, std::memory_order_acq_rel) + 1;
        causal::Metadata after = client.metadata;
        replicator_.PruneSatisfied(after);
        causal::Observe(after, origin_, seq);
        wire_out = causal::Encode(after);
        store::Entry entry;
        entry.value = std::move(value);
        entry.tombstone = tombstone;
        entry.version = store::Version{clock_.Now(), origin_, seq};
        // A write with no dependencies keeps no metadata: it is its own dot, rebuilt on read
        // (Get), which saves an allocation and ~50 bytes per key.
        if (!client.metadata.empty()) entry.meta = wire_out;
        if (replicate) written = entry;
        stored_seq = seq;
        // Logged under the key's lock, before the store assigns it: a snapshot walk of this
        // stripe waits for this call, so it still sees every record of the segments it covers.
        if (journal_ != nullptr) lsn_out = journal_->LogEntry(key, entry);
        return entry;
      });
  if (written) {
    replicator_.OnLocalWrite(key, *written);
  } else if (stored_seq != 0) {
    replicator_.RecordLocalWrite(origin_, stored_seq);
  }
  return result;
}

OpResult Coordinator::Put(const std::string& key, std::string value, const ClientContext& client) {
  OpResult result;
  if (!StorageWritable(result) || !DependenciesMet(client, result)) return result;
  const store::WriteResult written = Write(key, std::move(value), /*tombstone=*/false, client,
                                           /*only_if_live=*/false, result.metadata, result.lsn);
  result.kind = written.was_live ? OpResult::Kind::kUpdated : OpResult::Kind::kCreated;
  return result;
}

OpResult Coordinator::Delete(const std::string& key, const ClientContext& client) {
  OpResult result;
  if (!StorageWritable(result) || !DependenciesMet(client, result)) return result;
  const store::WriteResult written = Write(key, std::string(), /*tombstone=*/true, client,
                                           /*only_if_live=*/true, result.metadata, result.lsn);
  result.kind = written.written ? OpResult::Kind::kDeleted : OpResult::Kind::kNotFound;
  return result;
}

OpResult Coordinator::Get(const std::string& key, const ClientContext& client) {
  OpResult result;
  if (!DependenciesMet(client, result)) return result;
  // Copy out only what the answer needs: the value, and the write's metadata or its dot.
  std::string stored_meta;
  std::string_view dot_origin;  // interned by the store: valid for the store's life
  uint64_t dot_seq = 0;
  store_.Read(key, [&](const store::EntryView& entry) {
    if (entry.tombstone) return;
    result.kind = OpResult::Kind::kFound;
    result.value.assign(entry.value);
    if (!entry.meta.empty()) {
      stored_meta.assign(entry.meta);
    } else {
      dot_origin = entry.version.origin;
      dot_seq = entry.version.seq;
    }
  });
  if (result.kind != OpResult::Kind::kFound) return result;
  if (stored_meta.empty()) {
    // A write without dependencies: its metadata is its own dot.
    if (!client.metadata.empty()) {
      const auto it = client.metadata.vv.find(dot_origin);
      if (it != client.metadata.vv.end() && it->second >= dot_seq) {
        result.metadata = std::string(client.wire);  // the client already depends on it
        return result;
      }
    }
    causal::Metadata merged = client.metadata;
    replicator_.PruneSatisfied(merged);
    causal::Observe(merged, dot_origin, dot_seq);
    result.metadata = causal::Encode(merged);
    return result;
  }
  if (client.metadata.empty()) {
    // The reader now depends on exactly what the write depended on, plus the write.
    result.metadata = std::move(stored_meta);
    return result;
  }
  auto stored = causal::Decode(stored_meta);
  causal::Metadata merged = client.metadata;
  if (const auto* stored_meta = std::get_if<causal::Metadata>(&stored);
      stored_meta != nullptr && causal::MergeInto(merged, *stored_meta)) {
    replicator_.PruneSatisfied(merged);
    result.metadata = causal::Encode(merged);
  } else {
    result.metadata = std::string(client.wire);
  }
  return result;
}

}  // namespace kvs::replication
