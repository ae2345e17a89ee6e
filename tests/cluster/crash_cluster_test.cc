// Crash and restart: a replica killed with SIGKILL is detected by heartbeats and leaves every
// view while writes continue at the others; restarted empty (memory and data directory: a
// replaced machine) it rejoins every view without client action and serves everything written
// before and while it was gone, all learned from its peers (SPEC §1 restart, §2 views, §4).
// Recovery from the node's own disk is durability_cluster_test.cc's.
#include <algorithm>
#include <array>
#include <chrono>
#include <string>
#include <vector>

#include "cluster_fixture.h"

namespace kvs::cluster_test {
// Named, not anonymous: the live tests build as unity sources (KVS_UNITY), where the
// file-local names of different files would clash.
namespace crash_live {

using http_test::IsJsonWithMetadata;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

using CrashTest = ClusterTest;

constexpr char kAdded[] = R"({"message":"Added successfully","shard-id":0})";
constexpr milliseconds kCausalTimeout{5000};
constexpr milliseconds kPromptWrite{2000};
constexpr milliseconds kDetectionBound{20000};

struct Written {
  std::string key;
  std::string value;
  std::string metadata;
  int writer;
};

TEST_F(CrashTest, KilledReplicaLeavesEveryViewAndRejoinsEmptyServingEverything) {
  // Two causal clients, one per surviving replica, each passing its own metadata along.
  std::vector<Written> written;
  std::array<std::string, 2> context;
  const auto write = [&](int writer) -> ::testing::AssertionResult {
    const std::string key = "crash-" + std::to_string(written.size());
    const std::string value =
        "v" + std::to_string(written.size()) + "-by-" + std::to_string(writer + 1);
    const auto sent = steady_clock::now();
    const HttpResponse put = PutKey(node(writer), key, value, context[writer], kCausalTimeout);
    const auto took = std::chrono::duration_cast<milliseconds>(steady_clock::now() - sent);
    std::string metadata;
    if (auto ok = IsJsonWithMetadata(put, 201, kAdded, &metadata); !ok) {
      return ok << " (PUT " << key << " at replica " << writer + 1 << ")";
    }
    if (took > kPromptWrite) {
      return ::testing::AssertionFailure()
             << "PUT " << key << " at replica " << writer + 1 << " took " << took.count() << " ms";
    }
    context[writer] = metadata;
    written.push_back({key, value, metadata, writer});
    return ::testing::AssertionSuccess();
  };
  for (int n = 0; n < 4; ++n) ASSERT_TRUE(write(n % 2));

  ASSERT_TRUE(cluster().Kill(2));
  // Keep writing at both survivors while they find out.
  int turn = 0;
  ::testing::AssertionResult writes_ok = ::testing::AssertionSuccess();
  std::vector<bool> dropped(2, false);
  const PollResult detected = Eventually(
      [&] {
        if (writes_ok) writes_ok = write(turn++ % 2);
        for (int i : {0, 1}) {
          if (dropped[i]) continue;
          const auto view = GetView(node(i), milliseconds(1000));
          dropped[i] =
              view && std::find(view->begin(), view->end(), cluster().address(2)) == view->end();
        }
        return dropped[0] && dropped[1];
      },
      kDetectionBound, milliseconds(50));
  EXPECT_TRUE(writes_ok) << "while replica 3's failure was being detected";
  ASSERT_TRUE(detected) << "replica 3 still in a survivor's view " << kDetectionBound.count()
                        << " ms after kill -9\n"
                        << DescribeViews({0, 1});
  ReportTime("failure detection (kill -9 to replica 3 gone from the last view)", detected.elapsed);
  const std::vector<std::string> survivors = {cluster().address(0), cluster().address(1)};
  for (int i : {0, 1}) EXPECT_EQ(GetView(node(i)), survivors) << "view of replica " << i + 1;
  for (int n = 0; n < 6; ++n) ASSERT_TRUE(write(n % 2)) << "after detection";

  const auto restart = steady_clock::now();
  ASSERT_TRUE(cluster().Restart(2, NetnsCluster::Data::kWipe));
  const PollResult rejoined = WaitForViews({0, 1, 2}, 2, true, kDetectionBound);
  const auto since_restart =
      std::chrono::duration_cast<milliseconds>(steady_clock::now() - restart);
  ASSERT_TRUE(rejoined) << "restarted replica 3 not back in every view\n"
                        << DescribeViews({0, 1, 2});
  ReportTime("restart to replica 3 back in every view", since_restart);
  for (int i : {0, 1, 2}) {
    EXPECT_EQ(GetView(node(i)), cluster().addresses()) << "view of replica " << i + 1;
  }

  // Every write, read at the restarted replica with its writer's metadata.
  for (const Written& w : written) {
    const HttpResponse get = GetKey(node(2), w.key, w.metadata, kCausalTimeout);
    const auto read = ParseRead(get);
    EXPECT_TRUE(read.has_value() && read->value == w.value)
        << w.key << " (written at replica " << w.writer + 1
        << ") at restarted replica 3: " << http_test::Describe(get);
  }
}

}  // namespace crash_live
}  // namespace kvs::cluster_test
