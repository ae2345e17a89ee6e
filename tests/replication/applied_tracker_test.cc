#include "kvs/replication/applied_tracker.h"

#include <gtest/gtest.h>

namespace kvs::replication {
namespace {

TEST(AppliedTrackerTest, ContiguousPrefixAdvancesOverOutOfOrder) {
  AppliedTracker t;
  t.Record("o#1", 1);
  t.Record("o#1", 3);
  EXPECT_EQ(t.Contiguous("o#1"), 1u);
  EXPECT_TRUE(t.Covers("o#1", 3));
  EXPECT_FALSE(t.Covers("o#1", 2));
  EXPECT_TRUE(t.HasGaps());
  t.Record("o#1", 2);
  EXPECT_EQ(t.Contiguous("o#1"), 3u);
  EXPECT_FALSE(t.HasGaps());
  t.Record("o#1", 2);  // duplicate
  EXPECT_EQ(t.Snapshot().at("o#1"), 3u);
}

TEST(AppliedTrackerTest, RaiseToJumpsAndAbsorbsLaterSeqs) {
  AppliedTracker t;
  t.Record("o#1", 6);
  t.Record("o#1", 8);
  t.RaiseTo({{"o#1", 5}, {"p#1", 2}});
  EXPECT_EQ(t.Contiguous("o#1"), 6u);
  EXPECT_TRUE(t.HasGaps());  // 8 still waits for 7
  t.RaiseTo({{"o#1", 7}});
  EXPECT_EQ(t.Contiguous("o#1"), 8u);
  EXPECT_EQ(t.Contiguous("p#1"), 2u);
  EXPECT_EQ(t.Contiguous("unknown#1"), 0u);
}

}  // namespace
}  // namespace kvs::replication
