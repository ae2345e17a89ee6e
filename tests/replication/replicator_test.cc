// Anti-entropy between two replicas, exchanged in-process (AnswerSync -> apply) so the merge
// logic is tested without sockets; the network path is covered by tests/cluster.
#include "kvs/replication/replicator.h"

#include <gtest/gtest.h>

#include "kvs/replication/coordinator.h"

namespace kvs::replication {
namespace {

struct Replica {
  explicit Replica(const cluster::Address& self, const std::vector<cluster::Address>& members)
      : cluster(self, members, cluster::InitialAssignment(members, 1)),
        replicator(store, clock, cluster, peers, ReplicationOptions{}),
        coordinator(store, clock, replicator, self.ToString() + "#1") {
    // Peers are out of the view here, so bootstrap and anti-entropy leave them alone.
    for (const auto& m : members) cluster.RemoveFromView(m);
    cluster.AddToView(self);
    replicator.Bootstrap();
  }

  store::Store store;
  causal::HybridClock clock;
  cluster::ClusterState cluster;
  net::PeerClient peers;
  Replicator replicator;
  Coordinator coordinator;
};

// `to` pulls from `from` as SyncWith would.
size_t Pull(Replica& to, Replica& from) {
  SyncReply reply = from.replicator.AnswerSync(
      SyncRequest{to.cluster.self().ToString(), to.replicator.AppliedVector()});
  const size_t n = reply.updates.size();
  to.replicator.ApplySyncReply(reply);
  return n;
}

class ReplicatorTest : public ::testing::Test {
 protected:
  const cluster::Address a_{"127.0.0.1", 1}, b_{"127.0.0.1", 2};
  Replica ra_{a_, {a_, b_}}, rb_{b_, {a_, b_}};
  const causal::Metadata none_{};
  const ClientContext ctx_{"", none_};
};

TEST_F(ReplicatorTest, PullBringsMissingWritesAndNothingTwice) {
  for (int i = 0; i < 50; ++i) ra_.coordinator.Put("k" + std::to_string(i), "v", ctx_);
  ra_.coordinator.Delete("k0", ctx_);
  EXPECT_EQ(Pull(rb_, ra_), 50u);  // 49 live entries + 1 tombstone
  EXPECT_EQ(rb_.store.live_count(), 49);
  EXPECT_TRUE(rb_.store.Get("k0")->tombstone);
  EXPECT_EQ(Pull(rb_, ra_), 0u);  // vectors equal now: nothing to send
}

TEST_F(ReplicatorTest, TombstoneIsCollectedOnlyOnceEveryMemberHasIt) {
  ra_.coordinator.Put("k", "v", ctx_);
  ra_.coordinator.Delete("k", ctx_);
  Pull(rb_, ra_);  // a learns b's vector from this request: b had nothing yet
  ra_.replicator.AntiEntropyRound();
  ASSERT_TRUE(ra_.store.Get("k").has_value()) << "purged before b applied the delete";
  Pull(rb_, ra_);  // now b's vector, as a sees it, covers the delete
  ra_.replicator.AntiEntropyRound();
  EXPECT_FALSE(ra_.store.Get("k").has_value());
  EXPECT_TRUE(rb_.store.Get("k")->tombstone);  // b collects on its own schedule
}

TEST_F(ReplicatorTest, ConcurrentWritesConvergeToOneWinner) {
  ra_.coordinator.Put("k", "from-a", ctx_);
  rb_.coordinator.Put("k", "from-b", ctx_);
  Pull(rb_, ra_);
  Pull(ra_, rb_);
  EXPECT_EQ(ra_.store.Get("k")->value, rb_.store.Get("k")->value);
  EXPECT_EQ(ra_.store.Get("k")->meta, rb_.store.Get("k")->meta);
}

TEST_F(ReplicatorTest, OutOfOrderEntriesStillPropagate) {
  // b gets a's 2nd write without the 1st (a lost broadcast), then c... here a pulls from b:
  ra_.coordinator.Put("x", "1", ctx_);
  ra_.coordinator.Put("y", "2", ctx_);
  SyncReply all = ra_.replicator.AnswerSync(SyncRequest{"b", {}});
  ASSERT_EQ(all.updates.size(), 2u);
  std::vector<Update> only_second;
  for (auto& u : all.updates) {
    if (u.entry.version.seq == 2) only_second.push_back(u);
  }
  rb_.replicator.ApplyBatch(ReplicateBatch{"a", only_second});
  EXPECT_EQ(rb_.replicator.AppliedVector().count("127.0.0.1:1#1.0"), 0u);  // prefix not complete
  EXPECT_EQ(Pull(rb_, ra_), 2u);
  EXPECT_EQ(rb_.replicator.AppliedVector().at("127.0.0.1:1#1.0"), 2u);
}

TEST_F(ReplicatorTest, BroadcastWaitsForEarlierUpdatesOfItsOrigin) {
  ra_.coordinator.Put("x", "1", ctx_);
  ra_.coordinator.Put("y", "2", ctx_);
  SyncReply all = ra_.replicator.AnswerSync(SyncRequest{"b", {}});
  ASSERT_EQ(all.updates.size(), 2u);
  const Update& first = all.updates[0].entry.version.seq == 1 ? all.updates[0] : all.updates[1];
  const Update& second = all.updates[0].entry.version.seq == 2 ? all.updates[0] : all.updates[1];
  rb_.replicator.ApplyBatch(ReplicateBatch{"a", {second}});
  EXPECT_FALSE(rb_.store.Get(second.key).has_value());  // buffered: seq 1 missing
  rb_.replicator.ApplyBatch(ReplicateBatch{"a", {first}});
  EXPECT_TRUE(rb_.store.Get(first.key).has_value());
  EXPECT_TRUE(rb_.store.Get(second.key).has_value());  // released from the buffer
  EXPECT_EQ(rb_.replicator.AppliedVector().at("127.0.0.1:1#1.0"), 2u);
}

TEST_F(ReplicatorTest, BroadcastWaitsForSameShardDependenciesOfOtherOrigins) {
  // b writes x; a reads it (so a's write of y depends on b's write) and writes y.
  OpResult wx = rb_.coordinator.Put("x", "1", ctx_);
  Pull(ra_, rb_);
  auto decoded = causal::Decode(wx.metadata);
  const causal::Metadata& after_x = std::get<causal::Metadata>(decoded);
  ra_.coordinator.Put("y", "2", ClientContext{wx.metadata, after_x});
  // A third replica c that has nothing yet gets only a's broadcast of y: it must wait for x.
  const cluster::Address c{"127.0.0.1", 3};
  Replica rc{c, {a_, b_, c}};
  SyncReply from_a = ra_.replicator.AnswerSync(SyncRequest{"c", {{"127.0.0.1:2#1.0", 1}}});
  ASSERT_EQ(from_a.updates.size(), 1u);
  ASSERT_EQ(from_a.updates[0].key, "y");
  rc.replicator.ApplyBatch(ReplicateBatch{"a", from_a.updates});
  EXPECT_FALSE(rc.store.Get("y").has_value());
  SyncReply from_b = rb_.replicator.AnswerSync(SyncRequest{"c", {}});
  rc.replicator.ApplyBatch(ReplicateBatch{"b", from_b.updates});
  EXPECT_TRUE(rc.store.Get("x").has_value());
  EXPECT_TRUE(rc.store.Get("y").has_value());
}

}  // namespace
}  // namespace kvs::replication
