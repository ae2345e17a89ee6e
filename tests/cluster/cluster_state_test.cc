#include "kvs/cluster/cluster_state.h"

#include <gtest/gtest.h>

namespace kvs::cluster {
namespace {

Address A(int last) { return Address{"10.0.0." + std::to_string(last), 8080}; }

ClusterState FourNodes() {
  std::vector<Address> view = {A(1), A(2), A(3), A(4)};
  return ClusterState(A(1), view, InitialAssignment(view, 2));
}

TEST(ClusterStateTest, ViewAddAndRemove) {
  ClusterState state = FourNodes();
  EXPECT_TRUE(state.AddToView(A(9)));
  EXPECT_FALSE(state.AddToView(A(9)));
  EXPECT_TRUE(state.InView(A(9)));
  EXPECT_TRUE(state.RemoveFromView(A(9)));
  EXPECT_FALSE(state.RemoveFromView(A(9)));
  EXPECT_EQ(JoinAddresses(state.View()), "10.0.0.1:8080,10.0.0.2:8080,10.0.0.3:8080,10.0.0.4:8080");
}

TEST(ClusterStateTest, LiveMembersFollowTheView) {
  ClusterState state = FourNodes();
  EXPECT_EQ(JoinAddresses(*state.LiveMembers(0)), "10.0.0.1:8080,10.0.0.3:8080");
  state.RemoveFromView(A(3));
  EXPECT_EQ(JoinAddresses(*state.LiveMembers(0)), "10.0.0.1:8080");
  EXPECT_FALSE(state.LiveMembers(2).has_value());
  EXPECT_FALSE(state.LiveMembers(-1).has_value());
}

TEST(ClusterStateTest, MyShardFollowsConfig) {
  ClusterState state = FourNodes();
  EXPECT_EQ(state.MyShard(), 0);
  ClusterConfig moved = *state.Config();
  std::swap(moved.shards[0], moved.shards[1]);
  moved.epoch = 1;
  state.SetConfig(moved);
  EXPECT_EQ(state.MyShard(), 1);
  EXPECT_EQ(state.Config()->epoch, 1u);
}

}  // namespace
}  // namespace kvs::cluster
