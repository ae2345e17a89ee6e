// The key-value write/read path at a replica that owns the key: waits until the client's
// causal dependencies are applied here, applies the operation to the store with a fresh
// version (origin, seq, hybrid clock), hands the write to the Replicator for broadcast, and
// computes the causal metadata returned to the client. No HTTP here: api/ calls in.
// Thread-safe: called concurrently from every request thread.
// Invariant: sequence numbers of this origin are handed out once each, only to writes that
// were stored (a skipped write takes no number, so a peer never waits for a hole).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <utility>

#include "kvs/causal/hybrid_clock.h"
#include "kvs/causal/metadata.h"
#include "kvs/replication/replicator.h"
#include "kvs/storage/journal.h"
#include "kvs/store/store.h"

namespace kvs::replication {

// Result of a client operation. `metadata` is the wire form to return to the client.
struct OpResult {
  enum class Kind { kCreated, kUpdated, kFound, kDeleted, kNotFound, kUnavailable };
  Kind kind = Kind::kNotFound;
  std::string value;
  std::string metadata;
  std::string error;  // kUnavailable: why
  // Log position of the write (0: nothing written, or no journal): with fsync=always the
  // answer may be sent only once the journal reports it durable.
  uint64_t lsn = 0;
  bool storage_failed = false;  // kUnavailable because the journal cannot be written
};

// What the client sent as causal metadata: its wire form (returned byte for byte when an
// operation adds nothing to it) and the decoded value.
struct ClientContext {
  std::string_view wire;
  const causal::Metadata& metadata;
};

class Coordinator {
 public:
  // Writes go through a gate that a reshard closes (Freeze) while it moves keys; a write that
  // finds it closed waits, then the caller re-routes it under the new layout.
  class WriteTicket {
   public:
    explicit WriteTicket(Coordinator* owner) : owner_(owner) {}
    WriteTicket(WriteTicket&& other) noexcept : owner_(std::exchange(other.owner_, nullptr)) {}
    WriteTicket(const WriteTicket&) = delete;
    WriteTicket& operator=(const WriteTicket&) = delete;
    WriteTicket& operator=(WriteTicket&& other) noexcept {
      if (this != &other) {
        Release();
        owner_ = std::exchange(other.owner_, nullptr);
      }
      return *this;
    }
    ~WriteTicket() { Release(); }

   private:
    void Release();
    Coordinator* owner_;
  };

  // `origin_base` is "address#incarnation", unique to this process run; the origin of writes
  // is "<origin_base>.<epoch>" (see StartEpoch).
  // `journal` (optional) logs every write after the store holds it.
  Coordinator(store::Store& store, causal::HybridClock& clock, Replicator& replicator,
              std::string origin_base, storage::Journal* journal = nullptr);

  // Waits up to `wait` for the gate to be open; nullopt when it stayed closed.
  std::optional<WriteTicket> EnterWrite(std::chrono::milliseconds wait);
  // Closes the gate and waits up to `drain` for writes in progress; false if some remain.
  bool Freeze(std::chrono::milliseconds drain);
  void Thaw();
  bool frozen() const;
  // Starts a fresh origin for writes made under configuration `epoch`, so that dependencies
  // on writes from before a reshard barrier are recognisable. Call with the gate frozen or
  // before serving.
  void StartEpoch(uint64_t epoch);

  OpResult Put(const std::string& key, std::string value, const ClientContext& client);
  OpResult Get(const std::string& key, const ClientContext& client);
  OpResult Delete(const std::string& key, const ClientContext& client);

  std::string origin() const;
  // Highest sequence number this origin has handed out.
  uint64_t last_seq() const { return seq_.load(std::memory_order_acquire); }

 private:
  // Writes `value` (or a tombstone) under the key's lock; with `only_if_live`, only over a
  // live entry. `wire_out` receives the metadata of the write.
  store::WriteResult Write(const std::string& key, std::string value, bool tombstone,
                           const ClientContext& client, bool only_if_live, std::string& wire_out,
                           uint64_t& lsn_out);
  // False (with `result` set to kUnavailable) when the journal cannot take writes.
  bool StorageWritable(OpResult& result) const;
  // False (with `result` set to kUnavailable) when the dependencies could not be obtained.
  bool DependenciesMet(const ClientContext& client, OpResult& result);

  store::Store& store_;
  causal::HybridClock& clock_;
  Replicator& replicator_;
  const std::string origin_base_;
  storage::Journal* const journal_;
  mutable std::shared_mutex origin_mu_;  // exclusive only to switch epochs
  std::string origin_;                   // GUARDED_BY(origin_mu_)
  std::atomic<uint64_t> seq_{0};

  mutable std::mutex gate_mu_;
  std::condition_variable gate_cv_;
  bool frozen_ = false;  // GUARDED_BY(gate_mu_)
  int in_flight_ = 0;    // GUARDED_BY(gate_mu_)
};

}  // namespace kvs::replication
