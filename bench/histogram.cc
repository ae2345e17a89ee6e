#include "kvs/bench/histogram.h"

#include <algorithm>
#include <bit>
#include <cmath>

namespace kvs::bench {
namespace {

constexpr int kSubBits = 7;
constexpr int64_t kSubCount = int64_t{1} << kSubBits;  // 128
// Highest octave: bit_width(kMaxMicros) - 1.
constexpr int kTopExponent =
    std::bit_width(static_cast<uint64_t>(LatencyHistogram::kMaxMicros)) - 1;
constexpr size_t kBuckets =
    kSubCount + static_cast<size_t>(kTopExponent - kSubBits + 1) * kSubCount;

}  // namespace

LatencyHistogram::LatencyHistogram() : counts_(kBuckets, 0) {}

size_t LatencyHistogram::BucketCount() { return kBuckets; }

size_t LatencyHistogram::BucketIndex(int64_t micros) {
  micros = std::clamp<int64_t>(micros, 0, kMaxMicros);
  if (micros < kSubCount) return static_cast<size_t>(micros);
  const int exponent = std::bit_width(static_cast<uint64_t>(micros)) - 1;  // >= kSubBits
  const int shift = exponent - kSubBits;
  const int64_t sub = (micros >> shift) - kSubCount;  // 0..127
  return static_cast<size_t>(kSubCount + shift * kSubCount + sub);
}

int64_t LatencyHistogram::BucketLowest(size_t index) {
  const int64_t i = static_cast<int64_t>(index);
  if (i < kSubCount) return i;
  const int64_t shift = (i - kSubCount) / kSubCount;
  const int64_t sub = (i - kSubCount) % kSubCount;
  return (kSubCount + sub) << shift;
}

int64_t LatencyHistogram::BucketHighest(size_t index) {
  const int64_t i = static_cast<int64_t>(index);
  if (i < kSubCount) return i;
  const int64_t shift = (i - kSubCount) / kSubCount;
  return BucketLowest(index) + (int64_t{1} << shift) - 1;
}

void LatencyHistogram::Record(int64_t micros) {
  micros = std::clamp<int64_t>(micros, 0, kMaxMicros);
  ++counts_[BucketIndex(micros)];
  if (count_ == 0 || micros < min_) min_ = micros;
  if (micros > max_) max_ = micros;
  ++count_;
  sum_ += static_cast<double>(micros);
}

void LatencyHistogram::Merge(const LatencyHistogram& other) {
  if (other.count_ == 0) return;
  for (size_t i = 0; i < kBuckets; ++i) counts_[i] += other.counts_[i];
  min_ = count_ == 0 ? other.min_ : std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
  count_ += other.count_;
  sum_ += other.sum_;
}

void LatencyHistogram::Reset() {
  std::fill(counts_.begin(), counts_.end(), 0);
  count_ = 0;
  min_ = max_ = 0;
  sum_ = 0;
}

double LatencyHistogram::Mean() const {
  return count_ == 0 ? 0.0 : sum_ / static_cast<double>(count_);
}

int64_t LatencyHistogram::Percentile(double percent) const {
  if (count_ == 0) return 0;
  // Integer rank = ceil(percent/100 * count), with percent in 1/1000ths so 99.9 is exact.
  const uint64_t milli =
      static_cast<uint64_t>(std::llround(std::clamp(percent, 0.0, 100.0) * 1000));
  const uint64_t rank = std::clamp<uint64_t>((milli * count_ + 99'999) / 100'000, 1, count_);
  uint64_t seen = 0;
  for (size_t i = 0; i < kBuckets; ++i) {
    seen += counts_[i];
    if (seen >= rank) return std::clamp(BucketHighest(i), min_, max_);
  }
  return max_;
}

}  // namespace kvs::bench
