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

namespace kvs::cluster {
namespace {

size_t CountMembers(const ClusterConfig& c) {
  size_t n = 0;
  for (const auto& members : c.shards) n += members.size();
  return n;
}

TEST(ReshardTest, SevenNodesIntoThreeShardsKeepsNodesWhereItCan) {
  ClusterConfig current = InitialAssignment(Nodes(6), 2);
  current.shards[1].push_back(Address{"10.10.0.8", 8080});  // node7 added to shard 1
  current.epoch = 1;
  std::vector<Address> live = Nodes(6);
  live.push_back(Address{"10.10.0.8", 8080});
  const ClusterConfig next = Reshard(current, live, 3);
  EXPECT_EQ(next.epoch, 2u);
  EXPECT_EQ(next.barrier_epoch, 2u);
  ASSERT_EQ(next.shard_count(), 3);
  EXPECT_EQ(CountMembers(next), 7u);
  for (const auto& members : next.shards) {
    EXPECT_GE(members.size(), 2u);
    EXPECT_LE(members.size(), 3u);
  }
  // Shard 0 keeps all three of its members; shard 1 keeps the two it has room for.
  EXPECT_EQ(next.shards[0], current.shards[0]);
  size_t kept = 0;
  for (const Address& a : next.shards[1]) {
    kept += std::count(current.shards[1].begin(), current.shards[1].end(), a);
  }
  EXPECT_EQ(kept, next.shards[1].size());
  for (const Address& a : live) EXPECT_TRUE(next.ShardOf(a).has_value()) << a.ToString();
}

TEST(ReshardTest, DownNodesAreLeftOutAndShrinkingWorks) {
  const ClusterConfig current = InitialAssignment(Nodes(6), 3);
  std::vector<Address> live = Nodes(6);
  live.pop_back();  // one node is down
  const ClusterConfig next = Reshard(current, live, 2);
  EXPECT_EQ(CountMembers(next), 5u);
  EXPECT_FALSE(next.ShardOf(Nodes(6).back()).has_value());
  EXPECT_EQ(next.shards[0].size() + next.shards[1].size(), 5u);
}

TEST(ShouldAdoptTest, HigherEpochOrFirstLayoutWins) {
  ClusterConfig ours = InitialAssignment(Nodes(4), 2);
  ClusterConfig theirs = ours;
  EXPECT_FALSE(ShouldAdopt(ours, theirs));
  theirs.epoch = 3;
  EXPECT_TRUE(ShouldAdopt(ours, theirs));
  EXPECT_TRUE(ShouldAdopt(ClusterConfig{}, ours));   // an unassigned node takes any layout
  EXPECT_FALSE(ShouldAdopt(ours, ClusterConfig{}));  // never an empty one
}

}  // namespace
}  // namespace kvs::cluster
