#include "kvs/causal/hybrid_clock.h"

#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <thread>
#include <vector>

namespace kvs::causal {
namespace {

TEST(HybridClockTest, NowIsStrictlyIncreasingWhenWallClockStands) {
  HybridClock clock([] { return uint64_t{1000}; });
  uint64_t previous = clock.Now();
  for (int i = 0; i < 100; ++i) {
    const uint64_t next = clock.Now();
    EXPECT_GT(next, previous);
    previous = next;
  }
  EXPECT_EQ(HybridClock::PhysicalPart(previous), 1000u);
}

TEST(HybridClockTest, FollowsWallClockForward) {
  uint64_t wall = 1000;
  HybridClock clock([&] { return wall; });
  clock.Now();
  wall = 2000;
  EXPECT_EQ(HybridClock::PhysicalPart(clock.Now()), 2000u);
}

TEST(HybridClockTest, ObservedRemoteTimeIsExceeded) {
  HybridClock clock([] { return uint64_t{1000}; });
  const uint64_t remote = (uint64_t{5000} << 16) + 7;
  clock.Observe(remote);
  EXPECT_GT(clock.Now(), remote);
}

TEST(HybridClockTest, ConcurrentCallersNeverGetTheSameTimestamp) {
  HybridClock clock([] { return uint64_t{42}; });
  constexpr int kThreads = 4, kEach = 5000;
  std::vector<std::vector<uint64_t>> seen(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) seen[t].push_back(clock.Now());
    });
  }
  for (auto& th : threads) th.join();
  std::set<uint64_t> all;
  for (const auto& v : seen) all.insert(v.begin(), v.end());
  EXPECT_EQ(all.size(), static_cast<size_t>(kThreads * kEach));
}

}  // namespace
}  // namespace kvs::causal
