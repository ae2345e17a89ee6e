// Streamed state transfer (issue 11): a replica that comes back with an empty disk loads its
// shard from a peer in bounded chunks. While it loads it is not ready, and it never answers a
// wrong 404: its shard's requests go to a ready replica (or get a 503 with a reason). Once it
// says it is ready it holds every key.
#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "cluster_fixture.h"

namespace kvs::cluster_test {
// Named, not anonymous: the live tests build as unity sources (KVS_UNITY), where the
// file-local names of different files would clash.
namespace transfer_live {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

constexpr int kKeys = 20000;
// ~3 MB of shard data in ~4 KiB chunks: several hundred round trips, so that the load takes
// long enough for the pollers below to watch it.
constexpr int kChunkBytes = 4 * 1024;

class TransferTest : public ClusterTest {
 protected:
  ClusterOptions Options() const override {
    ClusterOptions options;
    options.extra_env = {{"KVS_REPLICATION_TRANSFER_CHUNK_BYTES", std::to_string(kChunkBytes)},
                         // Durability is not what this test is about: load the keys fast.
                         {"KVS_STORAGE_FSYNC", "never"}};
    return options;
  }

  static std::string Key(int i) { return "t" + std::to_string(i); }
  static std::string Value(int i) { return std::string(90, 'v') + std::to_string(i); }

  // PUTs every key from 4 threads, spread over replicas 1 and 2.
  ::testing::AssertionResult Load() {
    std::atomic<int> next{0};
    std::atomic<int> failed{-1};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&, t] {
        for (int i = next++; i < kKeys && failed.load() < 0; i = next++) {
          const HttpResponse r = PutKey(node(t % 2), Key(i), Value(i), "");
          if (r.status != 201) failed = i;
        }
      });
    }
    for (auto& th : threads) th.join();
    if (failed.load() >= 0) {
      return ::testing::AssertionFailure() << "PUT " << Key(failed.load()) << " failed";
    }
    return ::testing::AssertionSuccess();
  }
};

TEST_F(TransferTest, WipedReplicaLoadsInChunksAndIsNeverReadyOrWrongBeforeItHoldsEverything) {
  ASSERT_TRUE(Load());
  // Replica 3 has everything (broadcast), then loses its machine.
  ASSERT_TRUE(Eventually([&] { return GetKeyCount(node(2), 0) == kKeys; }, milliseconds(20000),
                         milliseconds(100)))
      << "replica 3 did not get every key by broadcast";
  ASSERT_TRUE(cluster().Kill(2));
  ASSERT_TRUE(cluster().Restart(2, NetnsCluster::Data::kWipe));

  // Until it is ready: /health never says ready with fewer keys (polled as fast as it
  // answers), and reads of replica 3 (from another thread) are right, forwarded to a ready
  // replica, or 503, never 404.
  std::atomic<bool> done{false};
  std::atomic<int> reads{0}, answered_503{0};
  std::string wrong_read;  // written by the reader thread only, read after join
  std::thread reader([&] {
    for (int n = 0; !done.load() && wrong_read.empty(); ++n) {
      const int i = (n * 7919) % kKeys;
      const HttpResponse r = GetKey(node(2), Key(i), "", milliseconds(5000));
      ++reads;
      if (r.status == 503) {
        ++answered_503;
      } else if (auto read = ParseRead(r); !read || read->value != Value(i)) {
        wrong_read = "GET " + Key(i) + " while loading: " + http_test::Describe(r);
      }
    }
  });
  int not_ready_seen = 0;
  std::string wrong_health;
  const PollResult ready = Eventually(
      [&] {
        const auto health = GetHealth(node(2), milliseconds(1000));
        if (!health) return false;
        if (health->ready && health->keys < kKeys) {
          wrong_health = "ready with " + std::to_string(health->keys) + " keys";
        }
        if (!health->ready) ++not_ready_seen;
        return health->ready;
      },
      milliseconds(60000), milliseconds(1));
  // Reads go on for a moment after: a ready replica serves them itself.
  std::this_thread::sleep_for(milliseconds(200));
  done = true;
  reader.join();
  ASSERT_TRUE(ready) << "replica 3 not ready within 60 s";
  EXPECT_TRUE(wrong_health.empty()) << wrong_health;
  EXPECT_TRUE(wrong_read.empty()) << wrong_read;
  ReportTime("wiped replica: restart to ready (" + std::to_string(not_ready_seen) +
                 " not-ready /health answers, " + std::to_string(reads.load()) + " reads, " +
                 std::to_string(answered_503.load()) + " answered 503)",
             ready.elapsed);

  // It loaded in many chunks, and holds every key with its value.
  const auto chunks = GetMetric(node(2), "kvs_transfer_chunks_received_total");
  ASSERT_TRUE(chunks.has_value());
  EXPECT_GE(*chunks, 20.0) << "a ~3 MB shard in " << kChunkBytes << "-byte chunks";
  EXPECT_EQ(GetKeyCount(node(2), 0), kKeys);
  for (int i = 0; i < kKeys; i += 97) {
    const auto read = ParseRead(GetKey(node(2), Key(i), ""));
    ASSERT_TRUE(read.has_value()) << Key(i);
    EXPECT_EQ(read->value, Value(i)) << Key(i);
  }
}

// Default chunk size and recent-update keys; fsync=never to write fast.
class CatchUpTest : public TransferTest {
 protected:
  ClusterOptions Options() const override {
    ClusterOptions options;
    options.extra_env = {{"KVS_STORAGE_FSYNC", "never"}};
    return options;
  }
};

// A replica that restarts with its disk asks only for what it missed, and its peers answer
// from the keys of recent updates they keep: nobody walks the store for it.
TEST_F(CatchUpTest, RestartedReplicaCatchesUpFromRecentUpdatesWithoutAWalk) {
  constexpr int kBefore = 2000, kWhileDown = 500;
  for (int i = 0; i < kBefore; ++i) {
    ASSERT_EQ(PutKey(node(i % 2), Key(i), Value(i), "").status, 201) << Key(i);
  }
  ASSERT_TRUE(Eventually([&] { return GetKeyCount(node(2), 0) == kBefore; }, milliseconds(20000),
                         milliseconds(100)));
  ASSERT_TRUE(cluster().Kill(2));
  // Once the others see it gone they stop queueing broadcasts for it: what it misses from here
  // on can only come back by a sync (a broadcast still queued for it could otherwise deliver
  // the writes on its return, and then there is nothing to sync).
  ASSERT_TRUE(WaitForViews({0, 1}, 2, /*present=*/false, milliseconds(20000)))
      << DescribeViews({0, 1});
  for (int i = kBefore; i < kBefore + kWhileDown; ++i) {
    ASSERT_EQ(PutKey(node(i % 2), Key(i), Value(i), "").status, 201) << Key(i);
  }
  auto sum = [&](std::string_view metric) {
    double total = 0;
    for (int n : {0, 1}) total += GetMetric(node(n), metric).value_or(-1e9);
    return total;
  };
  const double walks_before = sum("kvs_sync_store_walks_total");
  const double recent_before = sum("kvs_sync_answered_from_recent_total");
  ASSERT_TRUE(cluster().Restart(2, NetnsCluster::Data::kKeep));
  ASSERT_TRUE(cluster().WaitReady(2, milliseconds(30000)));
  EXPECT_EQ(GetKeyCount(node(2), 0), kBefore + kWhileDown);
  for (int i = kBefore; i < kBefore + kWhileDown; i += 7) {
    const auto read = ParseRead(GetKey(node(2), Key(i), ""));
    ASSERT_TRUE(read.has_value()) << Key(i);
    EXPECT_EQ(read->value, Value(i)) << Key(i);
  }
  EXPECT_EQ(sum("kvs_sync_store_walks_total"), walks_before) << "a peer walked its store";
  EXPECT_GT(sum("kvs_sync_answered_from_recent_total"), recent_before);
}

}  // namespace transfer_live
}  // namespace kvs::cluster_test
