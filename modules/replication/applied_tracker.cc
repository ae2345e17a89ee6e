#include "kvs/replication/applied_tracker.h"

#include <algorithm>
#include <iterator>

namespace kvs::replication {

void AppliedTracker::Advance(OriginState& state) {
  auto it = state.above.begin();
  while (it != state.above.end() && *it <= state.contiguous + 1) {
    state.contiguous = std::max(state.contiguous, *it);
    it = state.above.erase(it);
  }
}

AppliedTracker::OriginState& AppliedTracker::StateOf(std::string_view origin) {
  auto it = origins_.find(std::string(origin));
  if (it == origins_.end()) it = origins_.emplace(std::string(origin), OriginState{}).first;
  return it->second;
}

bool AppliedTracker::Apply(OriginState& state, uint64_t seq) {
  if (seq <= state.contiguous || state.above.contains(seq)) return false;
  if (seq == state.contiguous + 1) {
    state.contiguous = seq;
  } else {
    state.above.insert(seq);
  }
  Advance(state);
  return true;
}

void AppliedTracker::RaiseFloor(OriginState& state, uint64_t floor) {
  if (floor <= state.floor) return;
  state.floor = floor;
  const auto end = state.recent.lower_bound(floor);
  recent_count_ -= static_cast<size_t>(std::distance(state.recent.begin(), end));
  state.recent.erase(state.recent.begin(), end);
}

void AppliedTracker::Record(std::string_view origin, uint64_t seq) {
  std::lock_guard lock(mu_);
  OriginState& state = StateOf(origin);
  if (Apply(state, seq)) RaiseFloor(state, seq + 1);  // its key is not known here
}

void AppliedTracker::RecordRange(std::string_view origin, uint64_t first, uint64_t last) {
  std::lock_guard lock(mu_);
  OriginState& state = StateOf(origin);
  bool applied = false;
  for (uint64_t seq = first; seq <= last && seq != 0; ++seq) applied = Apply(state, seq) || applied;
  if (applied) RaiseFloor(state, last + 1);  // their keys are not known here
}

void AppliedTracker::Record(std::string_view origin, uint64_t seq, std::string_view key) {
  std::lock_guard lock(mu_);
  OriginState& state = StateOf(origin);
  if (!Apply(state, seq)) return;
  if (capacity_ == 0) {
    RaiseFloor(state, seq + 1);
    return;
  }
  if (seq < state.floor) return;
  state.recent.emplace_hint(state.recent.end(), seq, std::string(key));
  ++recent_count_;
  order_.emplace_back(&state, seq);
  Trim();
}

void AppliedTracker::Trim() {
  // Room: the oldest recorded key goes, and its origin's floor past it.
  while (order_.size() > capacity_) {
    auto [oldest, oldest_seq] = order_.front();
    order_.pop_front();
    RaiseFloor(*oldest, oldest_seq + 1);
  }
}

void AppliedTracker::SetCapacity(size_t capacity) {
  std::lock_guard lock(mu_);
  capacity_ = capacity;
  Trim();
}

size_t AppliedTracker::capacity() const {
  std::lock_guard lock(mu_);
  return capacity_;
}

void AppliedTracker::RaiseTo(const causal::VersionVector& vv, bool keys_delivered) {
  std::lock_guard lock(mu_);
  for (const auto& [origin, seq] : vv) {
    OriginState& state = origins_[origin];
    if (seq <= state.contiguous) continue;
    // Updates covered by the raise, not applied one by one: their keys are not known here.
    uint64_t covered_without_key = 0;
    for (uint64_t s = seq; s > state.contiguous; --s) {
      if (!state.above.contains(s)) {
        covered_without_key = s;
        break;
      }
    }
    state.contiguous = seq;
    state.above.erase(state.above.begin(), state.above.upper_bound(seq));
    Advance(state);
    if (covered_without_key > 0 && !keys_delivered) RaiseFloor(state, covered_without_key + 1);
  }
}

std::optional<std::vector<std::string>> AppliedTracker::KeysAfter(const causal::VersionVector& vv,
                                                                  size_t max_keys) const {
  std::lock_guard lock(mu_);
  std::vector<std::string> keys;
  for (const auto& [origin, state] : origins_) {
    auto it = vv.find(origin);
    const uint64_t have = it == vv.end() ? 0 : it->second;
    const uint64_t newest = state.above.empty() ? state.contiguous : *state.above.rbegin();
    if (newest <= have) continue;
    if (state.floor > have + 1) return std::nullopt;  // some of them have no key here
    for (auto from = state.recent.upper_bound(have); from != state.recent.end(); ++from) {
      if (keys.size() >= max_keys) return std::nullopt;
      keys.push_back(from->second);
    }
  }
  return keys;
}

size_t AppliedTracker::recent_count() const {
  std::lock_guard lock(mu_);
  return recent_count_;
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
