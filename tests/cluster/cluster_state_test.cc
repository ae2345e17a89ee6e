#include "kvs/cluster/cluster_state.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <optional>
#include <thread>

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

// InView reads a per-thread copy of the view: a change made on another thread must still be
// seen by a thread's next call, and two states on one thread must not share answers.
TEST(ClusterStateTest, ViewChangeReachesThreadsThatCachedTheOldOne) {
  ClusterState state = FourNodes();
  std::atomic<int> phase{0};
  std::optional<bool> before_add, after_add, removed_after;
  std::thread reader([&] {
    before_add = state.InView(A(9));  // caches the four-node view on this thread
    phase.store(1);
    while (phase.load() != 2) std::this_thread::yield();
    after_add = state.InView(A(9));
    removed_after = state.InView(A(2));
  });
  while (phase.load() != 1) std::this_thread::yield();
  ASSERT_TRUE(state.AddToView(A(9)));
  ASSERT_TRUE(state.RemoveFromView(A(2)));
  phase.store(2);
  reader.join();
  EXPECT_EQ(before_add, false);
  EXPECT_EQ(after_add, true);
  EXPECT_EQ(removed_after, false);
}

TEST(ClusterStateTest, ViewAnswersAreNotSharedBetweenStates) {
  ClusterState four = FourNodes();
  std::vector<Address> other_view = {A(5), A(6)};
  ClusterState other(A(5), other_view, InitialAssignment(other_view, 1));
  for (int round = 0; round < 2; ++round) {
    EXPECT_TRUE(four.InView(A(2)));
    EXPECT_FALSE(four.InView(A(6)));
    EXPECT_TRUE(other.InView(A(6)));
    EXPECT_FALSE(other.InView(A(2)));
  }
  // A member known under another port is another member.
  EXPECT_FALSE(four.InView(Address{"10.0.0.2", 8081}));
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

// Readers cache the layout per thread: a change made on another thread must still be seen by
// a thread's next read.
TEST(ClusterStateTest, LayoutChangeReachesThreadsThatCachedTheOldOne) {
  ClusterState state = FourNodes();
  std::atomic<int> phase{0};
  std::optional<int> before_shards, after_shards, after_key_shard;
  std::thread reader([&] {
    before_shards = state.Config()->shard_count();
    state.ShardForKey("k");  // caches the 2-shard layout on this thread
    phase.store(1);
    while (phase.load() != 2) std::this_thread::yield();
    after_shards = state.Config()->shard_count();
    after_key_shard = state.ShardForKey("some-key");
  });
  while (phase.load() != 1) std::this_thread::yield();
  ClusterConfig three = *state.Config();
  three.shards = {{A(1)}, {A(2)}, {A(3), A(4)}};
  three.epoch = 5;
  state.SetConfig(three);
  phase.store(2);
  reader.join();
  EXPECT_EQ(before_shards, 2);
  EXPECT_EQ(after_shards, 3);
  EXPECT_EQ(after_key_shard, HashRing(3).ShardFor("some-key"));
  EXPECT_EQ(state.MyShard(), 0);
}

// Two ClusterStates read from one thread (as in tests with several nodes in one process)
// each see their own layout.
TEST(ClusterStateTest, StatesOnOneThreadKeepTheirOwnLayouts) {
  ClusterState two = FourNodes();
  std::vector<Address> view = {A(1), A(2), A(3)};
  ClusterState three(A(2), view, InitialAssignment(view, 3));
  for (int round = 0; round < 3; ++round) {
    EXPECT_EQ(two.Config()->shard_count(), 2);
    EXPECT_EQ(three.Config()->shard_count(), 3);
    EXPECT_EQ(two.MyShard(), 0);
    EXPECT_EQ(three.MyShard(), 1);
  }
}

}  // namespace
}  // namespace kvs::cluster

namespace kvs::cluster {
namespace {

// For every shard of `config`: how many of the nodes outside it start their forwards at each
// of its members (ClusterState::ForwardStart of a state built for that node).
std::vector<std::vector<int>> FirstChoices(const std::vector<Address>& view,
                                           const ClusterConfig& config) {
  std::vector<std::vector<int>> counts;
  for (const auto& members : config.shards) counts.emplace_back(members.size(), 0);
  for (const Address& node : view) {
    ClusterState state(node, view, config);
    for (int s = 0; s < config.shard_count(); ++s) {
      const size_t start = state.ForwardStart(s);
      EXPECT_LT(start, config.shards[static_cast<size_t>(s)].size()) << node.ToString();
      if (state.MyShard() != s) ++counts[static_cast<size_t>(s)][start];
    }
  }
  return counts;
}

std::vector<Address> ViewOfNodes(int n) {
  std::vector<Address> view;
  for (int i = 1; i <= n; ++i) view.push_back(A(i));
  return view;
}

// The nodes outside a shard spread their first choices over its members: each member is the
// first choice of as many outsiders as any other, give or take one.
TEST(ClusterStateTest, ForwardersSpreadTheirFirstChoicesOverAShardsMembers) {
  struct Case {
    int nodes;
    int shards;
  };
  for (const Case c : {Case{6, 2}, Case{6, 3}, Case{7, 2}, Case{9, 2}, Case{4, 2}, Case{8, 3}}) {
    const std::vector<Address> view = ViewOfNodes(c.nodes);
    const ClusterConfig config = InitialAssignment(view, c.shards);
    const auto counts = FirstChoices(view, config);
    for (size_t s = 0; s < counts.size(); ++s) {
      const int outsiders = c.nodes - static_cast<int>(config.shards[s].size());
      const int fewest = outsiders / static_cast<int>(config.shards[s].size());
      int total = 0;
      for (const int n : counts[s]) {
        EXPECT_GE(n, fewest) << c.nodes << " nodes, " << c.shards << " shards, shard " << s;
        EXPECT_LE(n, fewest + 1) << c.nodes << " nodes, " << c.shards << " shards, shard " << s;
        total += n;
      }
      EXPECT_EQ(total, outsiders);
    }
  }
  // Shards of different sizes after a reshard, members in no particular order.
  const std::vector<Address> view = ViewOfNodes(7);
  ClusterConfig uneven;
  uneven.shards = {{A(5), A(1), A(7), A(3), A(2)}, {A(6), A(4)}};
  const auto counts = FirstChoices(view, uneven);
  EXPECT_EQ(counts[0], (std::vector<int>{1, 1, 0, 0, 0}));  // two outsiders for five members
  EXPECT_EQ(counts[1], (std::vector<int>{3, 2}));
}

// Within its own shard (a replica still loading passes client requests on) a node starts at
// the member after itself; outside the layout it still picks a member.
TEST(ClusterStateTest, ForwardStartInTheOwnShardAndOutsideTheLayout) {
  const std::vector<Address> view = ViewOfNodes(6);
  const ClusterConfig config = InitialAssignment(view, 2);
  for (const Address& node : view) {
    ClusterState state(node, view, config);
    const auto& own = config.shards[static_cast<size_t>(*state.MyShard())];
    const size_t mine = static_cast<size_t>(std::find(own.begin(), own.end(), node) - own.begin());
    EXPECT_EQ(state.ForwardStart(*state.MyShard()), (mine + 1) % own.size()) << node.ToString();
  }
  ClusterState outside(A(9), view, config);
  EXPECT_FALSE(outside.MyShard().has_value());
  EXPECT_LT(outside.ForwardStart(0), config.shards[0].size());
  EXPECT_EQ(outside.ForwardStart(-1), 0u);
  EXPECT_EQ(outside.ForwardStart(2), 0u);
}

// A reshard moves the first choices with the layout.
TEST(ClusterStateTest, ForwardStartFollowsTheLayout) {
  const std::vector<Address> view = ViewOfNodes(6);
  int moved = 0;
  for (const Address& node : view) {
    ClusterState state(node, view, InitialAssignment(view, 2));
    std::vector<size_t> before;
    for (int s = 0; s < 3; ++s) before.push_back(state.ForwardStart(s));  // cached per thread
    EXPECT_EQ(before[2], 0u);                                             // no such shard yet
    const ClusterConfig three = Reshard(*state.Config(), view, 3);
    state.SetConfig(three);
    ClusterState fresh(node, view, three);
    for (int s = 0; s < 3; ++s) {
      EXPECT_EQ(state.ForwardStart(s), fresh.ForwardStart(s)) << s;
      if (state.ForwardStart(s) != before[static_cast<size_t>(s)]) ++moved;
    }
  }
  EXPECT_GT(moved, 0);
}

}  // namespace
}  // namespace kvs::cluster
