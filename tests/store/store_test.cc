#include "kvs/store/store.h"

#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <thread>
#include <vector>

namespace kvs::store {
namespace {

Entry MakeEntry(std::string value, uint64_t hlc, std::string origin = "a:1#1", bool tomb = false) {
  Entry e;
  e.value = std::move(value);
  e.tombstone = tomb;
  e.version = Version{hlc, std::move(origin), hlc};
  return e;
}

TEST(StoreTest, GetMissingKeyIsEmpty) {
  Store store;
  EXPECT_FALSE(store.Get("nope").has_value());
  EXPECT_EQ(store.live_count(), 0);
}

TEST(StoreTest, ApplyAllGivesTheSameStoreAsOneByOne) {
  // Runs of entries in random key order (several stripes), with older versions that must not
  // win, tombstones, and keys repeated within a run.
  std::vector<std::pair<std::string, EntryRef>> run;
  std::vector<Entry> owned;
  owned.reserve(30000);
  for (int i = 0; i < 30000; ++i) {
    owned.push_back(MakeEntry("v" + std::to_string(i), 1 + (i % 5 == 0 ? 0 : i), "o", i % 11 == 0));
  }
  for (int i = 0; i < 30000; ++i) {
    run.emplace_back("key" + std::to_string((i * 7919) % 12000), EntryRef::Of(owned[i]));
  }
  Store one_by_one, all;
  for (const auto& [key, entry] : run) one_by_one.ApplyIfNewer(key, entry);
  // In runs of 1000 (a chunk each), the last shorter than the prefetch distance.
  for (size_t from = 0; from < run.size(); from += 1000) {
    const size_t n = std::min<size_t>(1000, run.size() - from);
    all.ApplyAllIfNewer(
        n, [&](size_t i) { return std::string_view(run[from + i].first); },
        [&](size_t i) -> const EntryRef& { return run[from + i].second; });
  }
  all.ApplyAllIfNewer(
      3, [&](size_t i) { return std::string_view(run[i].first); },
      [&](size_t i) -> const EntryRef& { return run[i].second; });
  ASSERT_EQ(all.size(), one_by_one.size());
  EXPECT_EQ(all.live_count(), one_by_one.live_count());
  EXPECT_EQ(all.tombstone_count(), one_by_one.tombstone_count());
  one_by_one.ForEach([&](std::string_view key, const EntryView& want) {
    const auto got = all.Get(std::string(key));
    ASSERT_TRUE(got.has_value()) << key;
    EXPECT_EQ(got->value, want.value) << key;
    EXPECT_EQ(got->version.hlc, want.version.hlc) << key;
    EXPECT_EQ(got->tombstone, want.tombstone) << key;
  });
}

TEST(StoreTest, ApplyAllRunsBesideWritersAndWalks) {
  // One thread applies runs while another writes keys one by one and a third erases (each
  // erase holds a stripe exclusively): nothing deadlocks, and every run's keys end up there.
  Store store;
  std::atomic<bool> done{false};
  std::thread writer([&] {
    const Entry e = MakeEntry("w", 1, "w");
    for (int i = 0; !done.load(); i = (i + 1) % 5000)
      store.ApplyIfNewer("w" + std::to_string(i), e);
  });
  std::thread eraser([&] {
    while (!done.load()) {
      store.EraseIf([](std::string_view key, const EntryView&) { return key.starts_with("w1"); });
    }
  });
  const Entry e = MakeEntry("r", 5, "r");
  std::vector<std::string> keys;
  for (int i = 0; i < 20000; ++i) keys.push_back("r" + std::to_string(i));
  const EntryRef ref = EntryRef::Of(e);
  for (size_t from = 0; from < keys.size(); from += 500) {
    store.ApplyAllIfNewer(
        500, [&](size_t i) { return std::string_view(keys[from + i]); },
        [&](size_t) -> const EntryRef& { return ref; });
  }
  done.store(true);
  writer.join();
  eraser.join();
  for (const std::string& key : keys) ASSERT_EQ(store.Get(key)->value, "r") << key;
}

TEST(StoreTest, ApplyThenGetReturnsEntry) {
  Store store;
  WriteResult r = store.ApplyIfNewer("k", MakeEntry("v", 10));
  EXPECT_TRUE(r.written);
  EXPECT_FALSE(r.was_live);
  auto got = store.Get("k");
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->value, "v");
  EXPECT_EQ(got->version.hlc, 10u);
  EXPECT_EQ(store.live_count(), 1);
}

TEST(StoreTest, OlderVersionDoesNotOverwrite) {
  Store store;
  store.ApplyIfNewer("k", MakeEntry("new", 20));
  WriteResult r = store.ApplyIfNewer("k", MakeEntry("old", 10));
  EXPECT_FALSE(r.written);
  EXPECT_TRUE(r.was_live);
  EXPECT_EQ(store.Get("k")->value, "new");
}

TEST(StoreTest, EqualClockTieBrokenByOrigin) {
  Store a, b;
  // Same two writes in opposite orders end with the same winner.
  a.ApplyIfNewer("k", MakeEntry("x", 5, "n1#1"));
  a.ApplyIfNewer("k", MakeEntry("y", 5, "n2#1"));
  b.ApplyIfNewer("k", MakeEntry("y", 5, "n2#1"));
  b.ApplyIfNewer("k", MakeEntry("x", 5, "n1#1"));
  EXPECT_EQ(a.Get("k")->value, "y");
  EXPECT_EQ(b.Get("k")->value, "y");
}

TEST(StoreTest, TombstoneCountsAsNotLive) {
  Store store;
  store.ApplyIfNewer("k", MakeEntry("v", 1));
  WriteResult r = store.ApplyIfNewer("k", MakeEntry("", 2, "a:1#1", /*tomb=*/true));
  EXPECT_TRUE(r.written);
  EXPECT_TRUE(r.was_live);
  EXPECT_EQ(store.live_count(), 0);
  EXPECT_EQ(store.size(), 1u);
  ASSERT_TRUE(store.Get("k").has_value());
  EXPECT_TRUE(store.Get("k")->tombstone);
}

TEST(StoreTest, ReadSeesTheEntryInPlace) {
  Store store;
  EXPECT_FALSE(store.Read("k", [](const EntryView&) { ADD_FAILURE() << "no entry to see"; }));
  store.ApplyIfNewer("k", MakeEntry("v1", 5, "a:1#1"));
  std::string value, origin;
  uint64_t hlc = 0;
  EXPECT_TRUE(store.Read("k", [&](const EntryView& e) {
    value = std::string(e.value);
    origin = e.version.origin;
    hlc = e.version.hlc;
  }));
  EXPECT_EQ(value, "v1");
  EXPECT_EQ(origin, "a:1#1");
  EXPECT_EQ(hlc, 5u);
}

TEST(StoreTest, MutateDecliningLeavesNoEntryBehind) {
  Store store;
  WriteResult r = store.Mutate("k", [](const EntryView*) -> std::optional<Entry> { return {}; });
  EXPECT_FALSE(r.written);
  EXPECT_FALSE(store.Get("k").has_value());
  EXPECT_EQ(store.size(), 0u);
}

TEST(StoreTest, MutateSeesCurrentEntry) {
  Store store;
  store.ApplyIfNewer("k", MakeEntry("1", 1));
  store.Mutate("k", [](const EntryView* current) -> std::optional<Entry> {
    EXPECT_NE(current, nullptr);
    Entry next = current->ToEntry();
    next.value += "+";
    return next;
  });
  EXPECT_EQ(store.Get("k")->value, "1+");
}

TEST(StoreTest, PurgeRemovesOnlyCollectableTombstones) {
  Store store;
  store.ApplyIfNewer("live", MakeEntry("v", 1));
  store.ApplyIfNewer("dead1", MakeEntry("", 2, "a:1#1", true));
  store.ApplyIfNewer("dead2", MakeEntry("", 3, "a:1#1", true));
  const size_t purged =
      store.PurgeTombstones([](std::string_view key, const EntryView&) { return key == "dead1"; });
  EXPECT_EQ(purged, 1u);
  EXPECT_FALSE(store.Get("dead1").has_value());
  EXPECT_TRUE(store.Get("dead2").has_value());
  EXPECT_TRUE(store.Get("live").has_value());
}

TEST(StoreTest, TombstoneIndexFollowsEveryTransition) {
  Store store;
  for (int i = 0; i < 1000; ++i) store.ApplyIfNewer("live" + std::to_string(i), MakeEntry("v", 1));
  EXPECT_EQ(store.tombstone_count(), 0u);
  store.ApplyIfNewer("a", MakeEntry("", 2, "a:1#1", true));  // new key, deleted
  store.ApplyIfNewer("b", MakeEntry("v", 2));
  store.ApplyIfNewer("b", MakeEntry("", 3, "a:1#1", true));  // live -> tombstone
  store.ApplyIfNewer("c", MakeEntry("", 2, "a:1#1", true));
  store.ApplyIfNewer("c", MakeEntry("back", 3));             // tombstone -> live
  store.ApplyIfNewer("a", MakeEntry("", 1, "a:1#1", true));  // older: no change
  EXPECT_EQ(store.tombstone_count(), 2u);
  EXPECT_TRUE(store.EraseKeyIf("b", [](const EntryView& e) { return e.tombstone; }));
  EXPECT_EQ(store.tombstone_count(), 1u);
  EXPECT_EQ(store.EraseIf([](std::string_view key, const EntryView&) { return key == "a"; }), 1u);
  EXPECT_EQ(store.tombstone_count(), 0u);
  EXPECT_EQ(store.live_count(), 1001);
}

TEST(StoreTest, PurgeAsksOnlyAboutTombstones) {
  Store store;
  for (int i = 0; i < 1000; ++i) store.ApplyIfNewer("live" + std::to_string(i), MakeEntry("v", 1));
  for (int i = 0; i < 3; ++i) {
    store.ApplyIfNewer("dead" + std::to_string(i), MakeEntry("", 2, "a:1#1", true));
  }
  size_t asked = 0;
  const size_t purged = store.PurgeTombstones([&](std::string_view, const EntryView& e) {
    ++asked;
    EXPECT_TRUE(e.tombstone);
    return true;
  });
  EXPECT_EQ(asked, 3u);
  EXPECT_EQ(purged, 3u);
  EXPECT_EQ(store.tombstone_count(), 0u);
  EXPECT_EQ(store.size(), 1000u);
}

TEST(StoreTest, SnapshotHoldsEveryEntry) {
  Store store;
  for (int i = 0; i < 500; ++i) store.ApplyIfNewer("k" + std::to_string(i), MakeEntry("v", 1));
  auto snapshot = store.Snapshot();
  EXPECT_EQ(snapshot.size(), 500u);
  std::map<std::string, Entry> by_key(snapshot.begin(), snapshot.end());
  EXPECT_EQ(by_key.size(), 500u);
}

// Many threads increment shared counters through Mutate; every increment must survive.
TEST(StoreTest, ConcurrentMutateLosesNoUpdate) {
  Store store;
  constexpr int kThreads = 8;
  constexpr int kKeys = 16;
  constexpr int kRounds = 2000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kRounds; ++i) {
        const std::string key = "c" + std::to_string((i + t) % kKeys);
        store.Mutate(key, [](const EntryView* current) -> std::optional<Entry> {
          Entry next;
          next.value = std::to_string(current ? std::stoll(std::string(current->value)) + 1 : 1);
          return next;
        });
      }
    });
  }
  for (auto& th : threads) th.join();
  long long total = 0;
  for (int k = 0; k < kKeys; ++k) total += std::stoll(store.Get("c" + std::to_string(k))->value);
  EXPECT_EQ(total, static_cast<long long>(kThreads) * kRounds);
  EXPECT_EQ(store.live_count(), kKeys);
}

// Mixed put/delete/get from many threads, with snapshots running at the same time: the live
// count must match the entries actually live at the end.
TEST(StoreTest, ConcurrentPutDeleteGetKeepsCountsExact) {
  Store store;
  constexpr int kThreads = 8;
  constexpr int kOps = 5000;
  std::atomic<bool> stop{false};
  std::thread walker([&] {
    while (!stop.load()) store.Snapshot();
  });
  std::vector<std::thread> threads;
  std::atomic<uint64_t> clock{1};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kOps; ++i) {
        const std::string key = "k" + std::to_string((i * 7 + t) % 300);
        const uint64_t hlc = clock.fetch_add(1);
        switch (i % 3) {
          case 0:
            store.ApplyIfNewer(key, MakeEntry("v" + std::to_string(hlc), hlc));
            break;
          case 1:
            store.ApplyIfNewer(key, MakeEntry("", hlc, "a:1#1", true));
            break;
          default:
            store.Get(key);
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  stop = true;
  walker.join();
  int64_t live = 0;
  for (const auto& [key, entry] : store.Snapshot()) live += entry.tombstone ? 0 : 1;
  EXPECT_EQ(store.live_count(), live);
}

}  // namespace
}  // namespace kvs::store
