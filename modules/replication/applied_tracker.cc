#include "kvs/replication/applied_tracker.h"

namespace kvs::replication {

void AppliedTracker::Advance(OriginState& state) {
  auto it = state.above.begin();
  while (it != state.above.end() && *it <= state.contiguous + 1) {
    state.contiguous = std::max(state.contiguous, *it);
    it = state.above.erase(it);
  }
}

void AppliedTracker::Record(std::string_view origin, uint64_t seq) {
  std::lock_guard lock(mu_);
  auto it = origins_.find(std::string(origin));
  if (it == origins_.end()) it = origins_.emplace(std::string(origin), OriginState{}).first;
  OriginState& state = it->second;
  if (seq <= state.contiguous) return;
  if (seq == state.contiguous + 1) {
    state.contiguous = seq;
  } else {
    state.above.insert(seq);
  }
  Advance(state);
}

void AppliedTracker::RaiseTo(const causal::VersionVector& vv) {
  std::lock_guard lock(mu_);
  for (const auto& [origin, seq] : vv) {
    OriginState& state = origins_[origin];
    if (seq <= state.contiguous) continue;
    state.contiguous = seq;
    state.above.erase(state.above.begin(), state.above.upper_bound(seq));
    Advance(state);
  }
}

bool AppliedTracker::Covers(std::string_view origin, uint64_t seq) const {
  std::lock_guard lock(mu_);
  auto it = origins_.find(std::string(origin));
  if (it == origins_.end()) return seq == 0;
  return seq <= it->second.contiguous || it->second.above.contains(seq);
}

uint64_t AppliedTracker::Contiguous(std::string_view origin) const {
  std::lock_guard lock(mu_);
  auto it = origins_.find(std::string(origin));
  return it == origins_.end() ? 0 : it->second.contiguous;
}

bool AppliedTracker::HasGaps() const {
  std::lock_guard lock(mu_);
  for (const auto& [origin, state] : origins_) {
    if (!state.above.empty()) return true;
  }
  return false;
}

causal::VersionVector AppliedTracker::Snapshot() const {
  std::lock_guard lock(mu_);
  causal::VersionVector out;
  for (const auto& [origin, state] : origins_) {
    if (state.contiguous > 0) out.emplace(origin, state.contiguous);
  }
  return out;
}

}  // namespace kvs::replication
