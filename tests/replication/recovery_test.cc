// StoreRecovery replays layout records as the node lived them: at each one it drops what the
// node does not own under that layout (keys a reshard moved away, keys a staging brought and
// then abandoned), and keeps what a committed reshard brought.
#include "kvs/replication/recovery.h"

#include <gtest/gtest.h>

#include <string>

#include "kvs/cluster/hash_ring.h"
#include "kvs/replication/wire.h"

namespace kvs::replication {
namespace {

const cluster::Address kA{"127.0.0.1", 1}, kB{"127.0.0.1", 2}, kC{"127.0.0.1", 3},
    kD{"127.0.0.1", 4}, kE{"127.0.0.1", 5}, kF{"127.0.0.1", 6};

// A key that an old ring of `shards` places in shard `shard` and for which `in_next` holds of
// its shard in a 3-shard ring ("" if none is found among the first million).
template <typename Pred>
std::string KeyIn(int shards, int shard, Pred in_next) {
  const cluster::HashRing ring(shards);
  const cluster::HashRing next(3);
  for (int i = 0; i < 1000000; ++i) {
    std::string key = "k" + std::to_string(i);
    if (ring.ShardFor(key) == shard && in_next(next.ShardFor(key))) return key;
  }
  return "";
}

storage::LoggedEntry Staged(const std::string& key) {
  return {key, store::Entry{"v", false, store::Version{1, "127.0.0.9:1#1.0", 1}, ""}, false};
}

class RecoveryTest : public ::testing::Test {
 protected:
  RecoveryTest()
      : cluster_(kA, {kA, kB, kC, kD, kE, kF},
                 cluster::InitialAssignment({kA, kB, kC, kD, kE, kF}, 2)),
        replicator_(store_, clock_, cluster_, peers_, ReplicationOptions{}) {}

  store::Store store_;
  causal::HybridClock clock_;
  cluster::ClusterState cluster_;
  net::PeerClient peers_;
  Replicator replicator_;
};

TEST_F(RecoveryTest, EachLayoutRecordDropsWhatTheNodeNoLongerOwns) {
  const std::vector<cluster::Address> nodes = {kA, kB, kC, kD, kE, kF};
  const cluster::ClusterConfig two = cluster::InitialAssignment(nodes, 2);
  const cluster::ClusterConfig three = cluster::Reshard(two, nodes, 3);
  // A node of shard 0 that the reshard puts into the new shard 2: it keeps some of its keys,
  // loses others, and receives some of shard 1's.
  std::optional<cluster::Address> self;
  for (const cluster::Address& n : nodes) {
    if (two.ShardOf(n) == 0 && three.ShardOf(n) == 2) self = n;
  }
  ASSERT_TRUE(self.has_value());
  StoreRecovery recovery(store_, clock_, replicator_, *self);
  auto Layout = [&](const cluster::ClusterConfig& config) {
    recovery.OnLayout(EncodeConfig(config));
  };
  const std::string stays = KeyIn(2, 0, [](int s) { return s == 2; });
  const std::string leaves = KeyIn(2, 0, [](int s) { return s != 2; });
  const std::string arrives = KeyIn(2, 1, [](int s) { return s == 2; });
  ASSERT_FALSE(stays.empty() || leaves.empty() || arrives.empty());

  Layout(two);
  recovery.OnEntry(storage::LoggedEntryRef::Of(Staged(stays)));
  recovery.OnEntry(storage::LoggedEntryRef::Of(Staged(leaves)));
  // A staging that was abandoned: its keys, then the same layout logged again.
  recovery.OnEntry(storage::LoggedEntryRef::Of(Staged(arrives)));
  Layout(two);
  EXPECT_FALSE(store_.Get(arrives).has_value()) << "an abandoned staging's key came back";
  EXPECT_TRUE(store_.Get(stays).has_value());
  EXPECT_TRUE(store_.Get(leaves).has_value());
  // A staging that committed: its keys stay, and what moved away goes.
  recovery.OnEntry(storage::LoggedEntryRef::Of(Staged(arrives)));
  Layout(three);
  EXPECT_TRUE(store_.Get(arrives).has_value());
  EXPECT_TRUE(store_.Get(stays).has_value());
  EXPECT_FALSE(store_.Get(leaves).has_value()) << "a key the reshard moved away stayed";
  EXPECT_EQ(recovery.dropped(), 2u);
  // The same layout again (a restart) with nothing new: nothing to drop.
  Layout(three);
  EXPECT_EQ(recovery.dropped(), 2u);
}

}  // namespace
}  // namespace kvs::replication
