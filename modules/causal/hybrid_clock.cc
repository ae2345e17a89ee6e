#include "kvs/causal/hybrid_clock.h"

#include <algorithm>
#include <chrono>

namespace kvs::causal {

HybridClock::HybridClock(std::function<uint64_t()> wall_ms) : wall_ms_(std::move(wall_ms)) {}

uint64_t HybridClock::SystemMillis() {
  using std::chrono::duration_cast;
  using std::chrono::milliseconds;
  using std::chrono::system_clock;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

uint64_t HybridClock::Now() {
  const uint64_t physical = wall_ms_() << kLogicalBits;
  uint64_t last = last_.load(std::memory_order_relaxed);
  uint64_t next;
  do {
    // Either the wall clock moved past everything seen, or we tick the logical part.
    next = std::max(physical, last + 1);
  } while (!last_.compare_exchange_weak(last, next, std::memory_order_relaxed));
  return next;
}

void HybridClock::Observe(uint64_t remote) {
  uint64_t last = last_.load(std::memory_order_relaxed);
  while (remote > last && !last_.compare_exchange_weak(last, remote, std::memory_order_relaxed)) {
  }
}

}  // namespace kvs::causal
