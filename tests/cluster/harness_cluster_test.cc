// Tests of the harness itself: the network it builds and the faults it injects do what the
// fault tests assume, independently of replication.
#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "cluster_fixture.h"

namespace kvs::cluster_test {
// Named, not anonymous: the live tests build as unity sources (KVS_UNITY), where the
// file-local names of different files would clash.
namespace harness_live {

using std::chrono::milliseconds;

using HarnessTest = ClusterTest;

constexpr milliseconds kProbe{1000};

TEST_F(HarnessTest, EveryNodeServesAndReachesEveryOther) {
  for (int i = 0; i < cluster().size(); ++i) {
    const HttpResponse health = Send(node(i), "GET", "/health");
    EXPECT_EQ(health.status, 200) << "node " << i + 1 << ": " << http_test::Describe(health);
    for (int j = 0; j < cluster().size(); ++j) {
      if (i == j) continue;
      EXPECT_TRUE(cluster().CanConnect(i, j, kProbe)) << i + 1 << " -> " << j + 1;
    }
  }
}

TEST_F(HarnessTest, IsolateCutsBothWaysAndHealRestores) {
  ASSERT_TRUE(cluster().Isolate(1));
  EXPECT_EQ(Send(node(1), "GET", "/health", std::nullopt, milliseconds(500)).status, 0);
  EXPECT_FALSE(cluster().CanConnect(0, 1, kProbe));
  EXPECT_FALSE(cluster().CanConnect(1, 2, kProbe));
  EXPECT_TRUE(cluster().CanConnect(0, 2, kProbe));

  const auto heal_start = std::chrono::steady_clock::now();
  ASSERT_TRUE(cluster().Heal(1));
  ReportTime(
      "heal until every path answers again",
      std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - heal_start));
  EXPECT_EQ(Send(node(1), "GET", "/health").status, 200);
  EXPECT_TRUE(cluster().CanConnect(0, 1, kProbe));
  EXPECT_TRUE(cluster().CanConnect(1, 2, kProbe));
}

TEST_F(HarnessTest, KillStopsTheNodeAndRestartStartsAFreshOne) {
  // Requests the old process counted; a fresh process starts from zero.
  for (int i = 0; i < 5; ++i) ASSERT_EQ(Send(node(2), "GET", "/health").status, 200);
  const auto before = GetMetric(node(2), "kvs_http_requests_total");
  ASSERT_TRUE(before.has_value());
  ASSERT_GE(*before, 5);

  ASSERT_TRUE(cluster().Kill(2));
  const HttpResponse refused = Send(node(2), "GET", "/health", std::nullopt, kProbe);
  EXPECT_EQ(refused.status, 0);
  EXPECT_EQ(cluster().Probe(NetnsCluster::kHost, 2, kProbe), NetnsCluster::ProbeResult::kRefused);
  EXPECT_EQ(cluster().Probe(0, 2, kProbe), NetnsCluster::ProbeResult::kRefused);
  EXPECT_FALSE(refused.timed_out) << "a killed node's address still exists: connections are "
                                     "refused, not left hanging";
  EXPECT_EQ(cluster().CheckProcesses(), "") << "a deliberate kill is not reported as a crash";

  ASSERT_TRUE(cluster().Restart(2));
  const auto after = GetMetric(node(2), "kvs_http_requests_total");
  ASSERT_TRUE(after.has_value());
  EXPECT_LT(*after, *before);
}

// Each node stores its data in its own directory under the cluster's log directory, which the
// server uses (it is not empty once the node has taken a write), which a restart keeps by
// default, and which Restart(..., kWipe) deletes before the node starts.
TEST_F(HarnessTest, EveryNodeHasItsOwnDataDirectoryThatRestartKeepsOrWipes) {
  std::set<std::filesystem::path> dirs;
  for (int i = 0; i < cluster().size(); ++i) {
    const std::filesystem::path& dir = cluster().data_dir(i);
    EXPECT_TRUE(std::filesystem::is_directory(dir)) << dir;
    EXPECT_EQ(dir.parent_path(), cluster().log_dir()) << dir;
    dirs.insert(dir);
  }
  EXPECT_EQ(dirs.size(), static_cast<size_t>(cluster().size()));

  const HttpResponse put = PutKey(node(2), "harness-key", "v", "");
  ASSERT_EQ(put.status, 201) << http_test::Describe(put);
  const auto stored = [&] { return !std::filesystem::is_empty(cluster().data_dir(2)); };
  EXPECT_TRUE(Eventually(stored, milliseconds(5000)))
      << "node 3 wrote nothing to KVS_STORAGE_DIR=" << cluster().data_dir(2);

  const std::filesystem::path marker = cluster().data_dir(2) / "harness-wipe-marker";
  ASSERT_TRUE(cluster().Kill(2));
  EXPECT_FALSE(std::filesystem::is_empty(cluster().data_dir(2))) << "kill -9 keeps the data";
  ASSERT_TRUE(cluster().Restart(2));
  ASSERT_TRUE(cluster().WaitReady(2, milliseconds(30000)));
  EXPECT_FALSE(std::filesystem::is_empty(cluster().data_dir(2))) << "Restart keeps the data";

  ASSERT_TRUE(cluster().Kill(2));
  { std::ofstream(marker) << "written while the node was down\n"; }
  ASSERT_TRUE(std::filesystem::exists(marker));
  ASSERT_TRUE(cluster().Restart(2, NetnsCluster::Data::kWipe));
  EXPECT_FALSE(std::filesystem::exists(marker)) << "Restart(kWipe) must empty the directory";
  ASSERT_TRUE(cluster().WaitReady(2, milliseconds(30000)));
  EXPECT_EQ(cluster().CheckProcesses(), "");
}

// A node added to the running cluster gets its own namespace and address on the same bridge,
// reaches and is reached by every other node, and can be killed and restarted like the others
// (the global environment checks afterwards that its namespace and veth are gone too).
TEST_F(HarnessTest, AddedNodeJoinsTheNetworkAndCanBeKilledAndRestarted) {
  const std::vector<std::string> before = cluster().addresses();
  int added = -1;
  ASSERT_TRUE(cluster().AddNode({.with_shard_count = false, .extra_env = {}}, &added));
  ASSERT_EQ(added, 3);
  ASSERT_EQ(cluster().size(), 4);
  EXPECT_EQ(cluster().addresses().size(), before.size() + 1);
  EXPECT_EQ(Send(node(added), "GET", "/health").status, 200);
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(cluster().CanConnect(i, added, kProbe)) << i + 1 << " -> 4";
    EXPECT_TRUE(cluster().CanConnect(added, i, kProbe)) << "4 -> " << i + 1;
  }
  ASSERT_TRUE(cluster().Kill(added));
  EXPECT_EQ(cluster().Probe(0, added, kProbe), NetnsCluster::ProbeResult::kRefused);
  ASSERT_TRUE(cluster().Restart(added));
  EXPECT_EQ(Send(node(added), "GET", "/health").status, 200);
  EXPECT_EQ(cluster().CheckProcesses(), "");
}

// NodeStart::extra_env wins over the cluster's settings; a node that cannot start makes AddNode
// fail with its stderr, and is cleaned up with the rest.
TEST_F(HarnessTest, AddedNodeThatCannotStartFailsCleanly) {
  int added = -1;
  const auto result =
      cluster().AddNode({.with_shard_count = true, .extra_env = {{"SHARD_COUNT", "zero"}}}, &added);
  ASSERT_FALSE(result);
  EXPECT_NE(std::string(result.message()).find("SHARD_COUNT"), std::string::npos)
      << "the failure should show the server's complaint: " << result.message();
  EXPECT_EQ(added, -1);
  EXPECT_EQ(cluster().CheckProcesses(), "");
  EXPECT_EQ(Send(node(0), "GET", "/health").status, 200);
}

// Run by hand (--gtest_also_run_disabled_tests) to see that a failing test still prints the
// node logs and leaves nothing behind.
TEST_F(HarnessTest, DISABLED_DeliberateFailureStillCleansUp) {
  ASSERT_TRUE(cluster().Isolate(0));
  ASSERT_TRUE(cluster().Kill(1));
  FAIL() << "deliberate failure";
}

}  // namespace harness_live
}  // namespace kvs::cluster_test
