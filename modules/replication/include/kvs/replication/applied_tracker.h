// Which updates this replica has applied, per origin: the contiguous prefix 1..n (the version
// vector peers and clients compare against) plus any later sequence numbers applied out of
// order. Thread-safe (one mutex; every operation is short).
// Invariant: for each origin, every number in `above` is > contiguous + 1.
#pragma once

#include <cstdint>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>

#include "kvs/causal/metadata.h"

namespace kvs::replication {

class AppliedTracker {
 public:
  // Records that update (origin, seq) is reflected in the store.
  void Record(std::string_view origin, uint64_t seq);
  // Records that everything up to `vv` is reflected in the store (after a state sync).
  void RaiseTo(const causal::VersionVector& vv);
  // True when (origin, seq) has been applied (contiguously or not).
  bool Covers(std::string_view origin, uint64_t seq) const;
  // Highest n such that 1..n from `origin` are all applied.
  uint64_t Contiguous(std::string_view origin) const;
  // True when some update was applied ahead of a missing predecessor.
  bool HasGaps() const;
  // The contiguous prefixes as a version vector.
  causal::VersionVector Snapshot() const;

 private:
  struct OriginState {
    uint64_t contiguous = 0;
    std::set<uint64_t> above;
  };
  static void Advance(OriginState& state);

  mutable std::mutex mu_;
  std::unordered_map<std::string, OriginState> origins_;  // GUARDED_BY(mu_)
};

}  // namespace kvs::replication
