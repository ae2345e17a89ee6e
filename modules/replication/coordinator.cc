#include "kvs/replication/coordinator.h"

#include <variant>

namespace kvs::replication {

Coordinator::Coordinator(store::Store& store, causal::HybridClock& clock, Replicator& replicator,
                         std::string origin)
    : store_(store), clock_(clock), replicator_(replicator), origin_(std::move(origin)) {}

bool Coordinator::DependenciesMet(const ClientContext& client, OpResult& result) {
  std::string missing;
  if (replicator_.AwaitDependencies(client.metadata, missing)) return true;
  result.kind = OpResult::Kind::kUnavailable;
  result.error = "Causal dependencies not available in time: " + missing;
  return false;
}

store::WriteResult Coordinator::Write(const std::string& key, std::string value, bool tombstone,
                                      const ClientContext& client, bool only_if_live,
                                      std::string& wire_out) {
  std::optional<store::Entry> written;
  const store::WriteResult result =
      store_.Mutate(key, [&](const store::Entry* current) -> std::optional<store::Entry> {
        if (only_if_live && (current == nullptr || current->tombstone)) return std::nullopt;
        // Numbered under the key's lock so that a skipped write never consumes a number.
        const uint64_t seq = seq_.fetch_add(1, std::memory_order_acq_rel) + 1;
        causal::Metadata after = client.metadata;
        causal::Observe(after, origin_, seq);
        wire_out = causal::Encode(after);
        store::Entry entry;
        entry.value = std::move(value);
        entry.tombstone = tombstone;
        entry.version = store::Version{clock_.Now(), origin_, seq};
        entry.meta = wire_out;
        written = entry;
        return entry;
      });
  if (written) replicator_.OnLocalWrite(key, *written);
  return result;
}

OpResult Coordinator::Put(const std::string& key, std::string value, const ClientContext& client) {
  OpResult result;
  if (!DependenciesMet(client, result)) return result;
  const store::WriteResult written = Write(key, std::move(value), /*tombstone=*/false, client,
                                           /*only_if_live=*/false, result.metadata);
  result.kind = written.was_live ? OpResult::Kind::kUpdated : OpResult::Kind::kCreated;
  return result;
}

OpResult Coordinator::Delete(const std::string& key, const ClientContext& client) {
  OpResult result;
  if (!DependenciesMet(client, result)) return result;
  const store::WriteResult written =
      Write(key, std::string(), /*tombstone=*/true, client, /*only_if_live=*/true, result.metadata);
  result.kind = written.written ? OpResult::Kind::kDeleted : OpResult::Kind::kNotFound;
  return result;
}

OpResult Coordinator::Get(const std::string& key, const ClientContext& client) {
  OpResult result;
  if (!DependenciesMet(client, result)) return result;
  std::optional<store::Entry> entry = store_.Get(key);
  if (!entry || entry->tombstone) return result;
  result.kind = OpResult::Kind::kFound;
  result.value = std::move(entry->value);
  if (client.metadata.empty()) {
    // The reader now depends on exactly what the write depended on, plus the write.
    result.metadata = std::move(entry->meta);
    return result;
  }
  auto stored = causal::Decode(entry->meta);
  causal::Metadata merged = client.metadata;
  if (const auto* stored_meta = std::get_if<causal::Metadata>(&stored);
      stored_meta != nullptr && causal::MergeInto(merged, *stored_meta)) {
    result.metadata = causal::Encode(merged);
  } else {
    result.metadata = std::string(client.wire);
  }
  return result;
}

}  // namespace kvs::replication
