#include "kvs/bench/histogram.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

namespace kvs::bench {
namespace {

// ceil(p/100 * n) computed like the histogram does: the 1-based rank of the p-th percentile.
uint64_t Rank(double percent, uint64_t n) {
  const uint64_t milli = static_cast<uint64_t>(std::llround(percent * 1000));
  return std::clamp<uint64_t>((milli * n + 99'999) / 100'000, 1, n);
}

std::vector<int64_t> LogUniform(size_t n, int64_t low, int64_t high, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> exponent(std::log(low), std::log(high));
  std::vector<int64_t> values(n);
  for (int64_t& v : values) v = static_cast<int64_t>(std::exp(exponent(rng)));
  return values;
}

TEST(HistogramTest, BucketsTileTheRangeWithoutGaps) {
  const size_t buckets = LatencyHistogram::BucketCount();
  EXPECT_EQ(LatencyHistogram::BucketLowest(0), 0);
  for (size_t i = 0; i + 1 < buckets; ++i) {
    ASSERT_EQ(LatencyHistogram::BucketHighest(i) + 1, LatencyHistogram::BucketLowest(i + 1)) << i;
  }
  EXPECT_GE(LatencyHistogram::BucketHighest(buckets - 1), LatencyHistogram::kMaxMicros);
  EXPECT_LE(buckets * sizeof(uint64_t), 32u * 1024);  // fixed, small memory
}

TEST(HistogramTest, EveryValueLandsInTheBucketThatHoldsIt) {
  for (int64_t v :
       {0L, 1L, 127L, 128L, 129L, 255L, 256L, 1000L, 123456L, 59'999'999L, 60'000'000L}) {
    const size_t i = LatencyHistogram::BucketIndex(v);
    EXPECT_LE(LatencyHistogram::BucketLowest(i), v);
    EXPECT_GE(LatencyHistogram::BucketHighest(i), v);
    // Width is at most 1/128 of the value (exact below 128 µs).
    EXPECT_LE(LatencyHistogram::BucketHighest(i) - LatencyHistogram::BucketLowest(i), v / 128);
  }
}

TEST(HistogramTest, PercentilesMatchSortedReferenceWithinBucketPrecision) {
  std::vector<int64_t> values = LogUniform(100'000, 1, 10'000'000, 7);
  LatencyHistogram histogram;
  for (int64_t v : values) histogram.Record(v);
  std::sort(values.begin(), values.end());
  ASSERT_EQ(histogram.count(), values.size());
  EXPECT_EQ(histogram.min(), values.front());
  EXPECT_EQ(histogram.max(), values.back());
  for (double p : {0.1, 1.0, 10.0, 50.0, 90.0, 99.0, 99.9, 99.99, 100.0}) {
    const int64_t reference = values[Rank(p, values.size()) - 1];
    const int64_t got = histogram.Percentile(p);
    EXPECT_GE(got, reference) << "p" << p;
    EXPECT_LE(got - reference, reference / 128) << "p" << p;
  }
}

TEST(HistogramTest, SmallValuesAreExact) {
  std::vector<int64_t> values = LogUniform(5'000, 1, 127, 3);
  LatencyHistogram histogram;
  for (int64_t v : values) histogram.Record(v);
  std::sort(values.begin(), values.end());
  for (double p : {50.0, 90.0, 99.0, 99.9}) {
    EXPECT_EQ(histogram.Percentile(p), values[Rank(p, values.size()) - 1]) << "p" << p;
  }
}

TEST(HistogramTest, MergeEqualsRecordingEverythingInOne) {
  const std::vector<int64_t> a = LogUniform(20'000, 50, 5'000, 1);
  const std::vector<int64_t> b = LogUniform(30'000, 1'000, 2'000'000, 2);
  LatencyHistogram ha, hb, all;
  for (int64_t v : a) ha.Record(v), all.Record(v);
  for (int64_t v : b) hb.Record(v), all.Record(v);
  LatencyHistogram merged;
  merged.Merge(ha);
  merged.Merge(hb);
  EXPECT_EQ(merged.count(), all.count());
  EXPECT_EQ(merged.min(), all.min());
  EXPECT_EQ(merged.max(), all.max());
  EXPECT_DOUBLE_EQ(merged.Mean(), all.Mean());
  for (double p : {1.0, 25.0, 50.0, 75.0, 90.0, 99.0, 99.9, 100.0}) {
    EXPECT_EQ(merged.Percentile(p), all.Percentile(p)) << "p" << p;
  }
}

TEST(HistogramTest, EmptyAndClamped) {
  LatencyHistogram histogram;
  EXPECT_EQ(histogram.Percentile(50), 0);
  EXPECT_EQ(histogram.max(), 0);
  histogram.Record(-5);
  histogram.Record(LatencyHistogram::kMaxMicros * 10);
  EXPECT_EQ(histogram.count(), 2u);
  EXPECT_EQ(histogram.min(), 0);
  EXPECT_EQ(histogram.max(), LatencyHistogram::kMaxMicros);
  EXPECT_EQ(histogram.Percentile(100), LatencyHistogram::kMaxMicros);
  histogram.Reset();
  EXPECT_EQ(histogram.count(), 0u);
}

TEST(HistogramTest, SingleValueIsReportedExactly) {
  LatencyHistogram histogram;
  histogram.Record(54321);
  for (double p : {50.0, 99.9}) EXPECT_EQ(histogram.Percentile(p), 54321);
}

}  // namespace
}  // namespace kvs::bench
