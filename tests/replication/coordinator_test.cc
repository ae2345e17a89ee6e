#include "kvs/replication/coordinator.h"

#include <gtest/gtest.h>

#include <set>
#include <thread>
#include <variant>
#include <vector>

namespace kvs::replication {
namespace {

using Kind = OpResult::Kind;

class CoordinatorTest : public ::testing::Test {
 protected:
  void SetUp() override { replicator_.Bootstrap(); }

  causal::Metadata Parse(const std::string& wire) {
    auto decoded = causal::Decode(wire);
    EXPECT_TRUE(std::holds_alternative<causal::Metadata>(decoded)) << wire;
    return std::get<causal::Metadata>(decoded);
  }

  // A one-replica shard: no peers, so the replicator never touches the network.
  const cluster::Address self_{"127.0.0.1", 1};
  store::Store store_;
  causal::HybridClock clock_;
  cluster::ClusterState cluster_{self_, {self_}, cluster::InitialAssignment({self_}, 1)};
  net::PeerClient peers_;
  Replicator replicator_{store_, clock_, cluster_, peers_, ReplicationOptions{}};
  Coordinator coordinator_{store_, clock_, replicator_, "127.0.0.1:1#100"};
  const causal::Metadata empty_{};
  const ClientContext no_context_{"", empty_};
};

TEST_F(CoordinatorTest, PutCreatesThenUpdates) {
  OpResult first = coordinator_.Put("k", "a", no_context_);
  EXPECT_EQ(first.kind, Kind::kCreated);
  EXPECT_EQ(first.metadata, "0|127.0.0.1:1#100.0=1");
  OpResult second = coordinator_.Put("k", "b", no_context_);
  EXPECT_EQ(second.kind, Kind::kUpdated);
  EXPECT_EQ(second.metadata, "0|127.0.0.1:1#100.0=2");
  EXPECT_EQ(coordinator_.last_seq(), 2u);
}

TEST_F(CoordinatorTest, WriteMetadataCarriesClientDependencies) {
  const causal::Metadata client = Parse("0|10.0.0.9:1#5=7");
  OpResult put = coordinator_.Put("k", "v", ClientContext{"0|10.0.0.9:1#5=7", client});
  EXPECT_EQ(put.metadata, "0|10.0.0.9:1#5=7,127.0.0.1:1#100.0=1");
  // A reader with no context inherits the write's dependencies.
  OpResult get = coordinator_.Get("k", no_context_);
  EXPECT_EQ(get.kind, Kind::kFound);
  EXPECT_EQ(get.value, "v");
  EXPECT_EQ(get.metadata, put.metadata);
}

TEST_F(CoordinatorTest, ReadThatLearnsNothingReturnsClientBytes) {
  OpResult put = coordinator_.Put("k", "v", no_context_);
  coordinator_.Put("other", "w", no_context_);  // the client's context will be ahead of "k"
  const std::string wire = "0|127.0.0.1:1#100.0=2";
  const causal::Metadata client = Parse(wire);
  OpResult get = coordinator_.Get("k", ClientContext{wire, client});
  EXPECT_EQ(get.metadata, wire);
}

TEST_F(CoordinatorTest, ReadMergesWhatTheValueDependedOn) {
  const causal::Metadata deps = Parse("0|10.0.0.9:1#5=3");
  coordinator_.Put("k", "v", ClientContext{"0|10.0.0.9:1#5=3", deps});
  const causal::Metadata reader = Parse("0|10.0.0.8:1#5=1");
  OpResult get = coordinator_.Get("k", ClientContext{"0|10.0.0.8:1#5=1", reader});
  EXPECT_EQ(get.metadata, "0|10.0.0.8:1#5=1,10.0.0.9:1#5=3,127.0.0.1:1#100.0=1");
}

TEST_F(CoordinatorTest, DeleteLeavesTombstoneAndMissingIsNotFound) {
  EXPECT_EQ(coordinator_.Delete("k", no_context_).kind, Kind::kNotFound);
  EXPECT_EQ(coordinator_.last_seq(), 0u);  // a refused delete takes no sequence number
  coordinator_.Put("k", "v", no_context_);
  OpResult del = coordinator_.Delete("k", no_context_);
  EXPECT_EQ(del.kind, Kind::kDeleted);
  EXPECT_EQ(del.metadata, "0|127.0.0.1:1#100.0=2");
  EXPECT_EQ(coordinator_.Get("k", no_context_).kind, Kind::kNotFound);
  EXPECT_EQ(coordinator_.Delete("k", no_context_).kind, Kind::kNotFound);
  EXPECT_TRUE(store_.Get("k")->tombstone);
  EXPECT_EQ(coordinator_.Put("k", "again", no_context_).kind, Kind::kCreated);
}

TEST_F(CoordinatorTest, LocalWritesAreRecordedAsApplied) {
  coordinator_.Put("a", "1", no_context_);
  coordinator_.Put("b", "2", no_context_);
  EXPECT_EQ(replicator_.AppliedVector().at("127.0.0.1:1#100.0"), 2u);
}

TEST_F(CoordinatorTest, MissingSameShardDependencyIsUnavailable) {
  // A write this replica never saw, from an earlier incarnation of its own address: there is
  // no peer to pull it from, so the request fails after the (shortened) bounded wait.
  ReplicationOptions options;
  options.dependency_wait = std::chrono::milliseconds(50);
  Replicator impatient{store_, clock_, cluster_, peers_, options};
  impatient.Bootstrap();
  Coordinator coordinator{store_, clock_, impatient, "127.0.0.1:1#200"};
  const causal::Metadata ahead = Parse("0|127.0.0.1:1#100.0=5");
  OpResult result = coordinator.Get("k", ClientContext{"0|127.0.0.1:1#100.0=5", ahead});
  EXPECT_EQ(result.kind, Kind::kUnavailable);
  EXPECT_NE(result.error.find("127.0.0.1:1#100"), std::string::npos) << result.error;
}

TEST_F(CoordinatorTest, OtherShardDependenciesAreCarriedNotChecked) {
  const causal::Metadata other = Parse("0|10.9.9.9:1#5=42");
  OpResult put = coordinator_.Put("k", "v", ClientContext{"0|10.9.9.9:1#5=42", other});
  EXPECT_EQ(put.kind, Kind::kCreated);
  EXPECT_EQ(put.metadata, "0|10.9.9.9:1#5=42,127.0.0.1:1#100.0=1");
}

// Whether a dependency's origin is of this shard is remembered per thread: a layout that moves
// the origin into this shard must make the same dependency one to wait for.
TEST_F(CoordinatorTest, DependencyShardFollowsALayoutChange) {
  const causal::Metadata m = Parse("0|10.9.9.9:1#5=42");
  EXPECT_TRUE(replicator_.DependenciesPresent(m));  // another shard's: carried, not checked
  EXPECT_TRUE(replicator_.DependenciesPresent(m));  // the remembered answer
  cluster::ClusterConfig joined = *cluster_.Config();
  joined.epoch = 1;
  joined.shards[0].push_back(cluster::Address{"10.9.9.9", 1});
  cluster_.SetConfig(joined);
  EXPECT_FALSE(replicator_.DependenciesPresent(m));  // now this shard's, and never applied
  cluster_.SetConfig(cluster::ClusterConfig{2, 0, {{self_}}});  // and out again
  EXPECT_TRUE(replicator_.DependenciesPresent(m));
}

TEST_F(CoordinatorTest, ConcurrentWritesGetDistinctGaplessSequenceNumbers) {
  constexpr int kThreads = 6, kEach = 500;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        const std::string key = "k" + std::to_string(i % 20);
        if (i % 4 == 3) {
          coordinator_.Delete(key, no_context_);
        } else {
          coordinator_.Put(key, std::to_string(t), no_context_);
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  std::set<uint64_t> seqs;
  for (const auto& [key, entry] : store_.Snapshot()) seqs.insert(entry.version.seq);
  // Every stored entry's number is unique and no number above last_seq was handed out.
  EXPECT_EQ(seqs.size(), store_.size());
  EXPECT_LE(*seqs.rbegin(), coordinator_.last_seq());
}

}  // namespace
}  // namespace kvs::replication
