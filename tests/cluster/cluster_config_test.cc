#include "kvs/cluster/cluster_config.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>

namespace kvs::cluster {
namespace {

std::vector<Address> Nodes(int n) {
  std::vector<Address> out;
  for (int i = 0; i < n; ++i) out.push_back(Address{"10.10.0." + std::to_string(i + 2), 8080});
  return out;
}

TEST(InitialAssignmentTest, DealsSortedNodesRoundRobin) {
  ClusterConfig config = InitialAssignment(Nodes(6), 2);
  ASSERT_EQ(config.shard_count(), 2);
  EXPECT_EQ(JoinAddresses(config.shards[0]), "10.10.0.2:8080,10.10.0.4:8080,10.10.0.6:8080");
  EXPECT_EQ(JoinAddresses(config.shards[1]), "10.10.0.3:8080,10.10.0.5:8080,10.10.0.7:8080");
  EXPECT_EQ(config.ShardOf(Address{"10.10.0.5", 8080}), 1);
  EXPECT_FALSE(config.ShardOf(Address{"10.10.0.99", 8080}).has_value());
}

TEST(InitialAssignmentTest, IndependentOfInputOrder) {
  std::vector<Address> shuffled = Nodes(7);
  std::shuffle(shuffled.begin(), shuffled.end(), std::mt19937(7));
  ClusterConfig a = InitialAssignment(Nodes(7), 3);
  ClusterConfig b = InitialAssignment(shuffled, 3);
  EXPECT_EQ(a.shards, b.shards);
  for (const auto& members : a.shards) EXPECT_GE(members.size(), 2u);
}

StartupInput Input(std::optional<std::string> self, std::optional<std::string> view,
                   std::optional<std::string> shards) {
  return StartupInput{std::move(self), std::move(view), std::move(shards)};
}

std::string Problem(const StartupInput& input) {
  auto result = ValidateStartup(input);
  return std::holds_alternative<std::string>(result) ? std::get<std::string>(result) : "";
}

const std::string kSixNodes =
    "10.10.0.2:8080,10.10.0.3:8080,10.10.0.4:8080,10.10.0.5:8080,10.10.0.6:8080,10.10.0.7:8080";

TEST(ValidateStartupTest, AcceptsSixNodesTwoShards) {
  auto result = ValidateStartup(Input("10.10.0.4:8080", kSixNodes, "2"));
  ASSERT_TRUE(std::holds_alternative<StartupPlan>(result))
      << Problem(Input("10.10.0.4:8080", kSixNodes, "2"));
  const StartupPlan& plan = std::get<StartupPlan>(result);
  EXPECT_EQ(plan.view.size(), 6u);
  EXPECT_EQ(plan.shard_count, 2);
  EXPECT_FALSE(plan.single_node);
}

TEST(ValidateStartupTest, NamesEachProblem) {
  EXPECT_NE(Problem(Input(std::nullopt, kSixNodes, "2")).find("SOCKET_ADDRESS"), std::string::npos);
  EXPECT_NE(Problem(Input("nonsense", kSixNodes, "2")).find("SOCKET_ADDRESS"), std::string::npos);
  EXPECT_NE(Problem(Input("10.10.0.2:8080", std::nullopt, "2")).find("VIEW"), std::string::npos);
  EXPECT_NE(Problem(Input("10.10.0.2:8080", "10.10.0.2:8080,bad", "1")).find("VIEW"),
            std::string::npos);
  EXPECT_NE(Problem(Input("10.10.0.9:8080", kSixNodes, "2")).find("not in VIEW"),
            std::string::npos);
  for (const char* count : {"0", "-1", "abc", "", "2x"}) {
    EXPECT_NE(Problem(Input("10.10.0.2:8080", kSixNodes, count)).find("SHARD_COUNT"),
              std::string::npos)
        << count;
  }
  EXPECT_NE(Problem(Input("10.10.0.2:8080", kSixNodes, "4")).find("at least 8"), std::string::npos);
}

TEST(ValidateStartupTest, SingleNodeIsAllowedButFlagged) {
  auto result = ValidateStartup(Input("127.0.0.1:9000", "127.0.0.1:9000", "1"));
  ASSERT_TRUE(std::holds_alternative<StartupPlan>(result));
  EXPECT_TRUE(std::get<StartupPlan>(result).single_node);
}

TEST(ValidateStartupTest, MissingShardCountMeansUnassigned) {
  auto result =
      ValidateStartup(Input("10.10.0.8:8080", kSixNodes + ",10.10.0.8:8080", std::nullopt));
  ASSERT_TRUE(std::holds_alternative<StartupPlan>(result));
  EXPECT_FALSE(std::get<StartupPlan>(result).shard_count.has_value());
}

}  // namespace
}  // namespace kvs::cluster
