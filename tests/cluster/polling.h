// Bounded polling for cluster tests: wait for a condition instead of sleeping a guessed time.
// Thread-safe as far as the predicate is; Eventually keeps no state between calls.
#ifndef KVS_TESTS_CLUSTER_POLLING_H_
#define KVS_TESTS_CLUSTER_POLLING_H_

#include <algorithm>
#include <chrono>
#include <thread>

namespace kvs::cluster_test {

struct PollResult {
  bool ok = false;                    // The predicate held before the deadline.
  std::chrono::milliseconds elapsed;  // From the first call to the one that held (or gave up).
  int attempts = 0;

  explicit operator bool() const { return ok; }
};

// Calls `predicate` every `poll` until it returns true or `timeout` has passed (it is called at
// least once, and once more at the deadline). The predicate must itself be bounded in time
// (e.g. HTTP calls with timeouts); the loop is bounded by `timeout`.
template <class Predicate>
PollResult Eventually(Predicate&& predicate, std::chrono::milliseconds timeout,
                      std::chrono::milliseconds poll = std::chrono::milliseconds(50)) {
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  const auto deadline = start + timeout;
  PollResult result;
  while (true) {
    ++result.attempts;
    const bool held = predicate();
    const auto now = Clock::now();
    result.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(now - start);
    if (held) {
      result.ok = true;
      return result;
    }
    if (now >= deadline) return result;
    std::this_thread::sleep_until(std::min(now + poll, deadline));
  }
}

}  // namespace kvs::cluster_test

#endif  // KVS_TESTS_CLUSTER_POLLING_H_
