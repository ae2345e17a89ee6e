// A fixed-memory latency histogram in microseconds, HDR-style log-linear buckets: exact below
// 128 µs, then 128 linear sub-buckets per power of two (relative error < 1/128 ≈ 0.8%) up to
// kMaxMicros (60 s; larger values are clamped). Not thread-safe: one per thread, merged after.
// Invariant: count() equals the sum of all bucket counts.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace kvs::bench {

class LatencyHistogram {
 public:
  static constexpr int64_t kMaxMicros = 60'000'000;

  LatencyHistogram();

  void Record(int64_t micros);
  void Merge(const LatencyHistogram& other);
  void Reset();

  uint64_t count() const { return count_; }
  int64_t min() const { return count_ == 0 ? 0 : min_; }
  int64_t max() const { return max_; }
  double Mean() const;

  // The smallest value v (a bucket's highest equivalent value, clamped to [min, max]) such
  // that at least `percent`% of the recorded values are <= v. 0 when empty.
  int64_t Percentile(double percent) const;

  static size_t BucketIndex(int64_t micros);
  static int64_t BucketLowest(size_t index);
  static int64_t BucketHighest(size_t index);
  static size_t BucketCount();

 private:
  std::vector<uint64_t> counts_;
  uint64_t count_ = 0;
  int64_t min_ = 0;
  int64_t max_ = 0;
  double sum_ = 0;
};

}  // namespace kvs::bench
