// Puts what storage recovery reads back into the node: entries into the store (last writer
// wins, so replay order does not matter), applied marks and vectors into the Replicator, the
// clock past every recovered write, and the last layout for the caller to adopt.
// Thread-safety: used by one thread, before the node serves.
#pragma once

#include <cstdint>
#include <string>

#include "kvs/causal/hybrid_clock.h"
#include "kvs/replication/replicator.h"
#include "kvs/storage/journal.h"
#include "kvs/store/store.h"

namespace kvs::replication {

class StoreRecovery : public storage::RecoverySink {
 public:
  StoreRecovery(store::Store& store, causal::HybridClock& clock, Replicator& replicator)
      : store_(store), clock_(clock), replicator_(replicator) {}

  void OnEntry(storage::LoggedEntry&& e) override;
  void OnApplied(std::string_view origin, uint64_t seq) override;
  void OnRaise(const causal::VersionVector& vv) override;
  void OnPurge(const std::string& key, std::string_view origin, uint64_t seq) override;
  void OnLayout(std::string&& layout) override { layout_ = std::move(layout); }

  // The last layout recovered ("" when none): the wire form of EncodeConfig.
  const std::string& layout() const { return layout_; }
  bool has_data() const { return has_data_; }

 private:
  store::Store& store_;
  causal::HybridClock& clock_;
  Replicator& replicator_;
  std::string layout_;
  bool has_data_ = false;
};

}  // namespace kvs::replication
