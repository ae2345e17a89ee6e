// Hybrid logical clock (Kulkarni et al.): 48 bits of wall-clock milliseconds and 16 bits of
// logical counter in one uint64. Thread-safe (lock-free). Invariant: Now() is strictly greater
// than every value Now() returned before and every value passed to Observe().
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>

namespace kvs::causal {

class HybridClock {
 public:
  // `wall_ms` returns the physical time in milliseconds; injectable for tests.
  explicit HybridClock(std::function<uint64_t()> wall_ms = SystemMillis);

  // A timestamp for a new local event.
  uint64_t Now();
  // Merges a timestamp seen on a message from another node.
  void Observe(uint64_t remote);

  static uint64_t SystemMillis();
  static uint64_t PhysicalPart(uint64_t hlc) { return hlc >> kLogicalBits; }

 private:
  static constexpr int kLogicalBits = 16;
  std::function<uint64_t()> wall_ms_;
  std::atomic<uint64_t> last_{0};
};

}  // namespace kvs::causal
