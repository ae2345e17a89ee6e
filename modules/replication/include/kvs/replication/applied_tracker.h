// Which updates this replica has applied, per origin: the contiguous prefix 1..n (the version
// vector peers and clients compare against) plus any later sequence numbers applied out of
// order. It also keeps the keys of the most recent updates (up to `recent_capacity` of them,
// oldest dropped first), by origin and sequence number: a peer that lacks only recent updates
// is told their keys (KeysAfter) instead of walking the whole store for them.
// Thread-safe (one mutex; every operation is short, KeysAfter linear in what it returns).
// Invariants, for each origin:
//   - every number in `above` is > contiguous + 1;
//   - every update applied here with seq >= floor has its key in `recent` (an update recorded
//     without its key, covered by a raise, or dropped for room, moves floor past itself).
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "kvs/causal/metadata.h"

namespace kvs::replication {

class AppliedTracker {
 public:
  explicit AppliedTracker(size_t recent_capacity = 0) : capacity_(recent_capacity) {}
  AppliedTracker(const AppliedTracker&) = delete;
  AppliedTracker& operator=(const AppliedTracker&) = delete;

  // Records that update (origin, seq) is reflected in the store.
  void Record(std::string_view origin, uint64_t seq);
  // Record for each of first..last (a run of one origin's updates, as a log replay meets them).
  void RecordRange(std::string_view origin, uint64_t first, uint64_t last);
  // Record, and remembers that the update wrote `key`.
  void Record(std::string_view origin, uint64_t seq, std::string_view key);
  // Records that everything up to `vv` is reflected in the store (after a state sync).
  // `keys_delivered`: the sync delivered, with their keys, the newest entry of every key whose
  // entry `vv` covers and this replica's vector did not (a delta). An update it covers without
  // having been applied here was then overwritten, at the answerer, by one whose key is kept
  // (or that a peer asking later already has), so the recent keys still answer for it.
  // Otherwise (a full transfer, a recovered vector) the keys of the covered updates are not
  // known here, and a peer behind them gets a walk.
  void RaiseTo(const causal::VersionVector& vv, bool keys_delivered = false);
  // True when (origin, seq) has been applied (contiguously or not).
  bool Covers(std::string_view origin, uint64_t seq) const;
  // Highest n such that 1..n from `origin` are all applied.
  uint64_t Contiguous(std::string_view origin) const;
  // True when some update was applied ahead of a missing predecessor.
  bool HasGaps() const;
  // The contiguous prefixes as a version vector.
  causal::VersionVector Snapshot() const;
  // The keys of every update applied here that `vv` does not cover (in origin, then sequence
  // order; a key may repeat), when the recent keys hold all of them and there are at most
  // `max_keys`; nullopt otherwise (the caller walks the store instead).
  std::optional<std::vector<std::string>> KeysAfter(const causal::VersionVector& vv,
                                                    size_t max_keys) const;
  size_t recent_count() const;
  // Keeps the keys of up to `capacity` recent updates from now on (fewer: the oldest go).
  void SetCapacity(size_t capacity);
  size_t capacity() const;

 private:
  struct OriginState {
    uint64_t contiguous = 0;
    std::set<uint64_t> above;
    uint64_t floor = 1;
    std::map<uint64_t, std::string> recent;  // seq -> key (a sync applies in any seq order)
  };
  static void Advance(OriginState& state);
  void Trim();  // drops the oldest keys beyond capacity_. REQUIRES: mu_ held
  // Applies (origin, seq); false when it was applied already. REQUIRES: mu_ held.
  bool Apply(OriginState& state, uint64_t seq);
  // Moves state.floor up to `floor`, dropping the keys below it. REQUIRES: mu_ held.
  void RaiseFloor(OriginState& state, uint64_t floor);
  OriginState& StateOf(std::string_view origin);  // REQUIRES: mu_ held

  mutable std::mutex mu_;
  size_t capacity_;                                       // GUARDED_BY(mu_)
  std::unordered_map<std::string, OriginState> origins_;  // GUARDED_BY(mu_)
  // Recent keys in the order they were recorded (entries already dropped are skipped).
  std::deque<std::pair<OriginState*, uint64_t>> order_;  // GUARDED_BY(mu_)
  size_t recent_count_ = 0;                              // GUARDED_BY(mu_)
};

}  // namespace kvs::replication
