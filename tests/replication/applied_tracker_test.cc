#include "kvs/replication/applied_tracker.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

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

TEST(AppliedTrackerTest, RecordRangeIsRecordOfEachSeq) {
  AppliedTracker ranges(/*recent_capacity=*/16), one_by_one(16);
  one_by_one.Record("o", 3, "k3");  // a recent key below the ranges: dropped by both
  ranges.Record("o", 3, "k3");
  for (auto [first, last] : std::vector<std::pair<uint64_t, uint64_t>>{{8, 9}, {1, 2}, {5, 5}}) {
    ranges.RecordRange("o", first, last);
    for (uint64_t s = first; s <= last; ++s) one_by_one.Record("o", s);
  }
  for (AppliedTracker* t : {&ranges, &one_by_one}) {
    EXPECT_EQ(t->Contiguous("o"), 3u);
    EXPECT_TRUE(t->HasGaps());
    EXPECT_FALSE(t->Covers("o", 4));
    EXPECT_TRUE(t->Covers("o", 5));
    EXPECT_TRUE(t->Covers("o", 9));
    EXPECT_FALSE(t->Covers("o", 10));
  }
  ranges.RecordRange("o", 4, 7);
  EXPECT_EQ(ranges.Contiguous("o"), 9u);
  EXPECT_FALSE(ranges.HasGaps());
  EXPECT_EQ(ranges.recent_count(), 0u);
  ranges.RecordRange("o", 0, 0);  // no sequence number: nothing
  EXPECT_EQ(ranges.Contiguous("o"), 9u);
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

using Keys = std::vector<std::string>;

TEST(AppliedTrackerTest, KeysAfterListsWhatAVectorLacks) {
  AppliedTracker t(100);
  t.Record("o#1", 1, "a");
  t.Record("o#1", 2, "b");
  t.Record("p#1", 1, "c");
  t.Record("o#1", 4, "d");  // out of order: 3 not yet here
  EXPECT_EQ(t.KeysAfter({{"o#1", 1}, {"p#1", 1}}, 100), (Keys{"b", "d"}));
  EXPECT_EQ(t.KeysAfter({{"o#1", 4}, {"p#1", 1}}, 100), Keys{});
  t.Record("o#1", 3, "e");  // the late one takes its place in order
  EXPECT_EQ(t.KeysAfter({{"o#1", 2}, {"p#1", 1}}, 100), (Keys{"e", "d"}));
  EXPECT_EQ(t.KeysAfter({{"p#1", 1}}, 100), (Keys{"a", "b", "e", "d"}));
  // More keys than the caller takes: it walks instead.
  EXPECT_FALSE(t.KeysAfter({}, 4).has_value());
  t.Record("o#1", 2, "b");  // a duplicate is not listed twice
  EXPECT_EQ(t.KeysAfter({{"o#1", 1}, {"p#1", 1}}, 100), (Keys{"b", "e", "d"}));
}

TEST(AppliedTrackerTest, KeysAfterRefusesWhatItNoLongerHolds) {
  AppliedTracker t(3);
  for (uint64_t s = 1; s <= 5; ++s) t.Record("o#1", s, "k" + std::to_string(s));
  EXPECT_EQ(t.recent_count(), 3u);  // 1 and 2 dropped for room
  EXPECT_EQ(t.KeysAfter({{"o#1", 2}}, 100), (Keys{"k3", "k4", "k5"}));
  EXPECT_FALSE(t.KeysAfter({{"o#1", 1}}, 100).has_value());  // 2 is gone
  EXPECT_FALSE(t.KeysAfter({}, 100).has_value());

  // An update recorded without its key (recovery) or covered by a raise (a state sync that
  // did not carry it) cannot be listed: a vector that lacks it gets nothing from here.
  AppliedTracker u(100);
  u.Record("o#1", 1, "a");
  u.Record("o#1", 2);
  u.Record("o#1", 3, "c");
  EXPECT_FALSE(u.KeysAfter({{"o#1", 1}}, 100).has_value());
  EXPECT_EQ(u.KeysAfter({{"o#1", 2}}, 100), Keys{"c"});
  u.Record("o#1", 5, "e");
  u.RaiseTo({{"o#1", 7}});  // 4, 6 and 7 came without keys
  EXPECT_FALSE(u.KeysAfter({{"o#1", 3}}, 100).has_value());
  EXPECT_FALSE(u.KeysAfter({{"o#1", 6}}, 100).has_value());
  EXPECT_EQ(u.KeysAfter({{"o#1", 7}}, 100), Keys{});
  u.Record("o#1", 8, "h");
  EXPECT_EQ(u.KeysAfter({{"o#1", 7}}, 100), Keys{"h"});
  // A raise that covers only what was recorded with keys keeps them.
  u.Record("o#1", 10, "j");
  u.Record("o#1", 9, "i");
  u.RaiseTo({{"o#1", 10}});
  EXPECT_EQ(u.KeysAfter({{"o#1", 7}}, 100), (Keys{"h", "i", "j"}));
  // Without room for any key, nothing is ever listed but an empty answer.
  AppliedTracker none;
  none.Record("o#1", 1, "a");
  EXPECT_FALSE(none.KeysAfter({}, 100).has_value());
  EXPECT_EQ(none.KeysAfter({{"o#1", 1}}, 100), Keys{});
}

TEST(AppliedTrackerTest, DeltaRaiseKeepsTheFloor) {
  // A delta sync carried the newest entry of each key it covers, with its key: the updates its
  // raise covers without having been applied here were overwritten, so the keys kept still
  // answer every vector.
  AppliedTracker t(100);
  t.Record("o#1", 1, "a");
  t.Record("o#1", 3, "a");  // the delta's entry for "a" (2 was an earlier write of it)
  t.RaiseTo({{"o#1", 4}}, /*keys_delivered=*/true);  // 2 and 4 overwritten at the answerer
  t.Record("o#1", 5, "b");
  EXPECT_EQ(t.Contiguous("o#1"), 5u);
  EXPECT_EQ(t.KeysAfter({{"o#1", 1}}, 100), (Keys{"a", "b"}));
  EXPECT_EQ(t.KeysAfter({}, 100), (Keys{"a", "a", "b"}));
  // The same raise from a full transfer: the keys of 2 and 4 are not known.
  AppliedTracker u(100);
  u.Record("o#1", 1, "a");
  u.Record("o#1", 3, "a");
  u.RaiseTo({{"o#1", 4}});
  EXPECT_FALSE(u.KeysAfter({{"o#1", 1}}, 100).has_value());
  EXPECT_EQ(u.KeysAfter({{"o#1", 4}}, 100), Keys{});
}

TEST(AppliedTrackerTest, CapacityCanChange) {
  AppliedTracker t(2);
  for (uint64_t s = 1; s <= 4; ++s) t.Record("o#1", s, "k" + std::to_string(s));
  EXPECT_EQ(t.recent_count(), 2u);
  EXPECT_FALSE(t.KeysAfter({{"o#1", 1}}, 100).has_value());
  t.SetCapacity(4);  // more room keeps more from now on; what went stays gone
  EXPECT_EQ(t.capacity(), 4u);
  for (uint64_t s = 5; s <= 6; ++s) t.Record("o#1", s, "k" + std::to_string(s));
  EXPECT_EQ(t.recent_count(), 4u);
  EXPECT_EQ(t.KeysAfter({{"o#1", 2}}, 100), (Keys{"k3", "k4", "k5", "k6"}));
  EXPECT_FALSE(t.KeysAfter({{"o#1", 1}}, 100).has_value());
  t.SetCapacity(1);  // less room drops the oldest at once
  EXPECT_EQ(t.recent_count(), 1u);
  EXPECT_FALSE(t.KeysAfter({{"o#1", 4}}, 100).has_value());
  EXPECT_EQ(t.KeysAfter({{"o#1", 5}}, 100), Keys{"k6"});
  t.SetCapacity(0);  // none: only an empty answer
  EXPECT_EQ(t.recent_count(), 0u);
  EXPECT_FALSE(t.KeysAfter({{"o#1", 5}}, 100).has_value());
  EXPECT_EQ(t.KeysAfter({{"o#1", 6}}, 100), Keys{});
  t.Record("o#1", 7, "k7");
  EXPECT_FALSE(t.KeysAfter({{"o#1", 6}}, 100).has_value());
}

}  // namespace
}  // namespace kvs::replication
