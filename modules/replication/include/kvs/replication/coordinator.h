// The key-value write/read path at a replica that owns the key: waits until the client's
// causal dependencies are applied here, applies the operation to the store with a fresh
// version (origin, seq, hybrid clock), hands the write to the Replicator for broadcast, and
// computes the causal metadata returned to the client. No HTTP here: api/ calls in.
// Thread-safe: called concurrently from every request thread.
// Invariant: sequence numbers of this origin are handed out once each, only to writes that
// were stored (a skipped write takes no number, so a peer never waits for a hole).
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "kvs/causal/hybrid_clock.h"
#include "kvs/causal/metadata.h"
#include "kvs/replication/replicator.h"
#include "kvs/store/store.h"

namespace kvs::replication {

// Result of a client operation. `metadata` is the wire form to return to the client.
struct OpResult {
  enum class Kind { kCreated, kUpdated, kFound, kDeleted, kNotFound, kUnavailable };
  Kind kind = Kind::kNotFound;
  std::string value;
  std::string metadata;
  std::string error;  // kUnavailable: why
};

// What the client sent as causal metadata: its wire form (returned byte for byte when an
// operation adds nothing to it) and the decoded value.
struct ClientContext {
  std::string_view wire;
  const causal::Metadata& metadata;
};

class Coordinator {
 public:
  // `origin` is "address#incarnation", unique to this process run.
  Coordinator(store::Store& store, causal::HybridClock& clock, Replicator& replicator,
              std::string origin);

  OpResult Put(const std::string& key, std::string value, const ClientContext& client);
  OpResult Get(const std::string& key, const ClientContext& client);
  OpResult Delete(const std::string& key, const ClientContext& client);

  const std::string& origin() const { return origin_; }
  // Highest sequence number this origin has handed out.
  uint64_t last_seq() const { return seq_.load(std::memory_order_acquire); }

 private:
  // Writes `value` (or a tombstone) under the key's lock; with `only_if_live`, only over a
  // live entry. `wire_out` receives the metadata of the write.
  store::WriteResult Write(const std::string& key, std::string value, bool tombstone,
                           const ClientContext& client, bool only_if_live, std::string& wire_out);
  // False (with `result` set to kUnavailable) when the dependencies could not be obtained.
  bool DependenciesMet(const ClientContext& client, OpResult& result);

  store::Store& store_;
  causal::HybridClock& clock_;
  Replicator& replicator_;
  const std::string origin_;
  std::atomic<uint64_t> seq_{0};
};

}  // namespace kvs::replication
