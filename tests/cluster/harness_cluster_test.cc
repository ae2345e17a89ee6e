// Tests of the harness itself: the network it builds and the faults it injects do what the
// fault tests assume, independently of replication.
#include <chrono>
#include <string>

#include "cluster_fixture.h"

namespace kvs::cluster_test {
namespace {

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

// Run by hand (--gtest_also_run_disabled_tests) to see that a failing test still prints the
// node logs and leaves nothing behind.
TEST_F(HarnessTest, DISABLED_DeliberateFailureStillCleansUp) {
  ASSERT_TRUE(cluster().Isolate(0));
  ASSERT_TRUE(cluster().Kill(1));
  FAIL() << "deliberate failure";
}

}  // namespace
}  // namespace kvs::cluster_test
