// Anti-entropy between two replicas, exchanged in-process (AnswerSync -> apply) so the merge
// logic is tested without sockets; the network path is covered by tests/cluster.
#include "kvs/replication/replicator.h"

#include <gtest/gtest.h>

#include <functional>
#include <set>

#include "kvs/cluster/hash_ring.h"
#include "kvs/replication/coordinator.h"

namespace kvs::replication {
namespace {

ReplicationOptions WithRecent(size_t recent_updates) {
  ReplicationOptions options;
  options.recent_updates = recent_updates;
  return options;
}

struct Replica {
  // `recent_updates`: how many recent keys it keeps (0: every sync it answers walks).
  explicit Replica(const cluster::Address& self, const std::vector<cluster::Address>& members,
                   size_t recent_updates = ReplicationOptions{}.recent_updates, int shards = 1)
      : cluster(self, members, cluster::InitialAssignment(members, shards)),
        replicator(store, clock, cluster, peers, WithRecent(recent_updates)),
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

// What a chunk costs on the wire, as the answerer counts it.
uint64_t ChunkBytes(const SyncReply& reply) {
  uint64_t bytes = 0;
  for (const Update& u : reply.updates) {
    bytes += u.key.size() + u.entry.value.size() + u.entry.meta.size() +
             u.entry.version.origin.size() + 32;
  }
  return bytes;
}

// `to` pulls from `from` as SyncWith does, in chunks of `max_bytes`, calling `between` after
// each chunk but the last. `wire`: as over HTTP, the answerer encodes walked chunks straight
// from its store, and each reply goes through the wire encoding and back. Returns the number
// of chunks.
size_t StreamPull(
    Replica& to, Replica& from, uint64_t max_bytes, const std::function<void()>& between = [] {},
    bool wire = false) {
  SyncRequest request{to.cluster.self().ToString(), to.replicator.AppliedVector()};
  request.max_bytes = max_bytes;
  std::optional<causal::VersionVector> first_vv;
  std::set<std::string> seen;
  size_t chunks = 0;
  while (true) {
    SyncReply reply = from.replicator.AnswerSync(request, wire);
    if (wire) {
      std::string error;
      std::optional<SyncReply> decoded = DecodeSyncReply(EncodeSyncReply(reply), error);
      EXPECT_TRUE(decoded.has_value()) << error;
      if (!decoded) break;
      EXPECT_TRUE(reply.wire_count > 0 || reply.updates.size() == decoded->updates.size());
      reply = std::move(*decoded);
    }
    ++chunks;
    if (!first_vv) first_vv = reply.vv;
    uint64_t largest = 0;
    for (const Update& u : reply.updates) {
      EXPECT_TRUE(seen.insert(u.key).second) << u.key << " sent twice";
      EXPECT_GE(store::Store::WalkPosition(u.key), request.cursor);
      largest = std::max<uint64_t>(largest, u.key.size() + u.entry.value.size() + 64);
    }
    EXPECT_LE(ChunkBytes(reply), max_bytes + largest) << "chunk " << chunks;
    to.replicator.ApplySyncUpdates(reply.updates);
    if (!reply.next_cursor) break;
    EXPECT_GT(*reply.next_cursor, request.cursor);
    for (const Update& u : reply.updates) {
      EXPECT_LT(store::Store::WalkPosition(u.key), *reply.next_cursor);
    }
    request.cursor = *reply.next_cursor;
    between();
  }
  to.replicator.FinishSync(*first_vv);
  return chunks;
}

TEST_F(ReplicatorTest, StreamedSyncSendsEveryEntryOnceInBoundedChunks) {
  // Answered from the recent keys (a keeps them all) and from walks (c keeps none; d keeps
  // only the last 1000, too few for an asker that has nothing).
  const cluster::Address c{"127.0.0.1", 3}, d{"127.0.0.1", 4};
  Replica rc{c, {a_, c}, 0}, rd{d, {a_, d}, 1000};
  const std::string value(200, 'v');
  for (Replica* r : {&ra_, &rc, &rd}) {
    for (int i = 0; i < 3000; ++i) r->coordinator.Put("key" + std::to_string(i), value, ctx_);
    for (int i = 0; i < 100; ++i) r->coordinator.Delete("key" + std::to_string(i * 7), ctx_);
  }
  for (bool wire : {false, true}) {
    for (Replica* from : {&ra_, &rc, &rd}) {
      SCOPED_TRACE(std::string(wire ? "wire, " : "") + from->cluster.self().ToString());
      const cluster::Address e{"127.0.0.1", 5};
      Replica to{e, {from->cluster.self(), e}};
      const size_t chunks = StreamPull(
          to, *from, 16 * 1024, [] {}, wire);
      EXPECT_GE(chunks, 30u);  // ~0.8 MB in 16 KiB chunks
      EXPECT_EQ(to.store.size(), 3000u);
      EXPECT_EQ(to.store.live_count(), 2900);
      EXPECT_EQ(to.replicator.AppliedVector(), from->replicator.AppliedVector());
      EXPECT_EQ(Pull(to, *from), 0u);  // nothing left
      // Every entry arrived as the answerer holds it (values, versions, tombstones).
      from->store.ForEach([&](std::string_view key, const store::EntryView& entry) {
        const std::optional<store::Entry> got = to.store.Get(std::string(key));
        ASSERT_TRUE(got.has_value()) << key;
        EXPECT_EQ(got->value, entry.value);
        EXPECT_EQ(got->tombstone, entry.tombstone);
        EXPECT_EQ(got->version.hlc, entry.version.hlc);
        EXPECT_EQ(got->version.origin, entry.version.origin);
        EXPECT_EQ(got->version.seq, entry.version.seq);
        EXPECT_EQ(got->meta, entry.meta);
      });
    }
  }
}

TEST_F(ReplicatorTest, StreamedSyncNeverClaimsWritesMadeWhileItRan) {
  for (int i = 0; i < 2000; ++i) ra_.coordinator.Put("key" + std::to_string(i), "old", ctx_);
  int round = 0;
  // Between chunks, a overwrites keys on both sides of the cursor and adds new ones.
  StreamPull(
      rb_, ra_, 8 * 1024,
      [&] {
        ++round;
        for (int i = 0; i < 2000; i += 97) {
          ra_.coordinator.Put("key" + std::to_string(i), "new" + std::to_string(round), ctx_);
        }
        ra_.coordinator.Put("fresh" + std::to_string(round), "x", ctx_);
      },
      /*wire=*/true);
  ASSERT_GT(round, 5);
  // Whatever b's vector covers, b holds (or holds something newer).
  const causal::VersionVector vv = rb_.replicator.AppliedVector();
  size_t checked = 0;
  ra_.store.ForEach([&](std::string_view key, const store::EntryView& e) {
    auto it = vv.find(e.version.origin);
    if (it == vv.end() || it->second < e.version.seq) return;
    ++checked;
    auto mine = rb_.store.Get(std::string(key));
    ASSERT_TRUE(mine.has_value()) << key;
    const store::Version theirs{e.version.hlc, std::string(e.version.origin), e.version.seq};
    EXPECT_FALSE(theirs.Wins(mine->version)) << key << " claimed but older here";
  });
  EXPECT_GE(checked, 1900u);
  // The next sync brings what the stream missed: the stores are then equal.
  Pull(rb_, ra_);
  EXPECT_EQ(rb_.store.size(), ra_.store.size());
  ra_.store.ForEach([&](std::string_view key, const store::EntryView& e) {
    auto mine = rb_.store.Get(std::string(key));
    ASSERT_TRUE(mine.has_value()) << key;
    EXPECT_EQ(mine->value, e.value) << key;
  });
}

TEST_F(ReplicatorTest, DeltaOfRecentWritesIsAnsweredWithoutAWalkAndMatchesOne) {
  for (int i = 0; i < 500; ++i) ra_.coordinator.Put("k" + std::to_string(i), "v1", ctx_);
  Pull(rb_, ra_);
  // b misses the next writes (no broadcast here): overwrites, new keys and deletes.
  for (int i = 0; i < 500; i += 5) ra_.coordinator.Put("k" + std::to_string(i), "v2", ctx_);
  for (int i = 500; i < 520; ++i) ra_.coordinator.Put("k" + std::to_string(i), "v1", ctx_);
  for (int i = 1; i < 500; i += 50) ra_.coordinator.Delete("k" + std::to_string(i), ctx_);
  const SyncRequest delta{"b", rb_.replicator.AppliedVector()};
  auto counter = [&](const std::string& name) {
    const std::string text = ra_.replicator.MetricsText();
    const size_t at = text.find("\n" + name + " ");
    return at == std::string::npos ? -1 : std::stoll(text.substr(at + name.size() + 2));
  };
  const long long recent_before = counter("kvs_sync_answered_from_recent_total");
  const long long walks_before = counter("kvs_sync_store_walks_total");
  SyncReply quick = ra_.replicator.AnswerSync(delta);
  EXPECT_EQ(counter("kvs_sync_answered_from_recent_total"), recent_before + 1);
  EXPECT_EQ(counter("kvs_sync_store_walks_total"), walks_before);
  // The same answer a walk gives (a fresh replica with nothing recent must walk).
  SyncReply walked;
  ra_.store.ForEach([&](std::string_view key, const store::EntryView& e) {
    auto it = delta.vv.find(e.version.origin);
    if (it == delta.vv.end() || e.version.seq > it->second) {
      walked.updates.push_back(Update{std::string(key), e.ToEntry()});
    }
  });
  auto keys = [](const SyncReply& r) {
    std::set<std::string> out;
    for (const Update& u : r.updates) out.insert(u.key);
    return out;
  };
  EXPECT_EQ(keys(quick), keys(walked));
  EXPECT_EQ(quick.updates.size(), 100u + 20u + 10u);
  rb_.replicator.ApplySyncReply(quick);
  EXPECT_EQ(rb_.store.live_count(), ra_.store.live_count());
  EXPECT_EQ(rb_.replicator.AppliedVector(), ra_.replicator.AppliedVector());
}

TEST(ReplicatorRecentTest, ARelayedDeltaIsAnsweredFromRecentKeysToo) {
  // a writes, overwriting some keys; b takes a's writes by a delta sync, which carries only
  // each key's newest entry; c, behind both, then asks b. b must answer from its recent keys
  // (the overwritten updates its vector covers need no key: c gets each key's winner) and
  // give c exactly what a walk of b would.
  const cluster::Address a{"127.0.0.1", 1}, b{"127.0.0.1", 2}, c{"127.0.0.1", 3};
  Replica ra{a, {a, b, c}}, rb{b, {a, b, c}}, rc{c, {a, b, c}};
  const ClientContext ctx{"", causal::Metadata{}};
  for (int i = 0; i < 200; ++i) ra.coordinator.Put("k" + std::to_string(i), "v1", ctx);
  Pull(rc, ra);
  for (int round = 2; round <= 4; ++round) {
    for (int i = 0; i < 200; i += 3) {
      ra.coordinator.Put("k" + std::to_string(i), "v" + std::to_string(round), ctx);
    }
  }
  ra.coordinator.Delete("k1", ctx);
  Pull(rb, ra);
  EXPECT_EQ(rb.replicator.AppliedVector(), ra.replicator.AppliedVector());
  auto counter = [&](const std::string& name) {
    const std::string text = rb.replicator.MetricsText();
    const size_t at = text.find("\n" + name + " ");
    return at == std::string::npos ? -1 : std::stoll(text.substr(at + name.size() + 2));
  };
  const SyncRequest delta{"c", rc.replicator.AppliedVector()};
  const long long walks_before = counter("kvs_sync_store_walks_total");
  SyncReply answer = rb.replicator.AnswerSync(delta);
  EXPECT_EQ(counter("kvs_sync_store_walks_total"), walks_before);
  std::set<std::string> walked, answered;
  rb.store.ForEach([&](std::string_view key, const store::EntryView& e) {
    auto it = delta.vv.find(e.version.origin);
    if (it == delta.vv.end() || e.version.seq > it->second) walked.insert(std::string(key));
  });
  for (const Update& u : answer.updates) answered.insert(u.key);
  EXPECT_EQ(answered, walked);
  EXPECT_EQ(answered.size(), 67u + 1u);
  rc.replicator.ApplySyncReply(answer);
  EXPECT_EQ(rc.replicator.AppliedVector(), ra.replicator.AppliedVector());
  EXPECT_EQ(rc.store.live_count(), ra.store.live_count());
  for (int i = 0; i < 200; i += 3) {
    EXPECT_EQ(rc.coordinator.Get("k" + std::to_string(i), ctx).value, "v4") << i;
  }
}

causal::Metadata Parse(const std::string& wire) {
  auto decoded = causal::Decode(wire);
  EXPECT_TRUE(std::holds_alternative<causal::Metadata>(decoded)) << wire;
  return std::get<causal::Metadata>(decoded);
}

TEST_F(ReplicatorTest, MetadataDropsWritesEveryMemberHasApplied) {
  const OpResult first = ra_.coordinator.Put("k1", "v", ctx_);
  const causal::Metadata after_first = Parse(first.metadata);
  ASSERT_EQ(after_first.vv.size(), 1u);
  causal::Metadata m = after_first;
  ra_.replicator.AntiEntropyRound();
  EXPECT_FALSE(ra_.replicator.PruneSatisfied(m)) << "b has reported nothing yet";
  Pull(rb_, ra_);  // b applies the write...
  ra_.replicator.AntiEntropyRound();
  EXPECT_FALSE(ra_.replicator.PruneSatisfied(m)) << "...but a has not heard so yet";
  Pull(rb_, ra_);  // b's request tells a its vector
  ra_.replicator.AntiEntropyRound();
  EXPECT_TRUE(ra_.replicator.PruneSatisfied(m));
  EXPECT_TRUE(m.vv.empty());
  // A write made with that metadata names only itself: the first write is satisfied everywhere.
  const OpResult second =
      ra_.coordinator.Put("k2", "v", ClientContext{first.metadata, after_first});
  const causal::Metadata after_second = Parse(second.metadata);
  ASSERT_EQ(after_second.vv.size(), 1u);
  EXPECT_EQ(after_second.vv.begin()->second, 2u);
  // Origins this shard does not know (another shard's writers) are left for their shard.
  causal::Metadata other{0, {{"127.0.0.9:1#5.0", 7}}};
  EXPECT_FALSE(ra_.replicator.PruneSatisfied(other));
  EXPECT_EQ(other.vv.size(), 1u);
}

// An online reshard's staging pull: the answer holds exactly the keys that the asked shard of
// the next layout will own, each once across the ranges, and a delta from the vector it
// returned brings just the writes made since, in that range.
TEST_F(ReplicatorTest, RangeSyncAnswersExactlyTheKeysOfAShardOfTheNextLayout) {
  constexpr int kKeys = 300;
  for (int i = 0; i < kKeys; ++i) ra_.coordinator.Put("k" + std::to_string(i), "v", ctx_);
  const cluster::HashRing next(3);
  std::set<std::string> seen;
  std::vector<causal::VersionVector> vectors;
  for (int shard = 0; shard < 3; ++shard) {
    SyncRequest request{"c", {}, /*full=*/true, 0, 1024, KeyRange{3, shard}};
    size_t in_range = 0;
    for (uint64_t chunks = 0;; ++chunks) {
      ASSERT_LT(chunks, 1000u) << "the stream does not end";
      SyncReply reply = ra_.replicator.AnswerSync(request);
      if (chunks == 0) vectors.push_back(reply.vv);
      for (const Update& u : reply.updates) {
        EXPECT_EQ(next.ShardFor(u.key), shard) << u.key;
        EXPECT_TRUE(seen.insert(u.key).second) << u.key << " sent twice";
        ++in_range;
      }
      if (!reply.next_cursor) break;
      request.cursor = *reply.next_cursor;
    }
    EXPECT_GT(in_range, 0u) << "shard " << shard;
  }
  EXPECT_EQ(seen.size(), static_cast<size_t>(kKeys));
  // Writes after the stream: a delta from its vector brings those in the range, no others.
  ra_.coordinator.Put("k1", "again", ctx_);
  ra_.coordinator.Put("k2", "again", ctx_);
  ra_.coordinator.Delete("k3", ctx_);
  for (int shard = 0; shard < 3; ++shard) {
    std::set<std::string> expected;
    for (const char* key : {"k1", "k2", "k3"}) {
      if (next.ShardFor(key) == shard) expected.insert(key);
    }
    SyncReply delta = ra_.replicator.AnswerSync(
        SyncRequest{"c", vectors[static_cast<size_t>(shard)], false, 0, 1024, KeyRange{3, shard}});
    std::set<std::string> got;
    for (const Update& u : delta.updates) got.insert(u.key);
    EXPECT_EQ(got, expected) << "shard " << shard;
  }
}

// While a reshard stages, a node's store also holds keys it will own only in the next layout:
// they stay out of its sync answers and key counts, and no tombstone is collected meanwhile.
TEST(ReplicatorStagingTest, StagedKeysStayOutOfAnswersAndCountsAndTombstonesAreKept) {
  const cluster::Address a{"127.0.0.1", 1}, b{"127.0.0.1", 2}, c{"127.0.0.1", 3}, d{"127.0.0.1", 4};
  Replica ra{a, {a, b, c, d}, ReplicationOptions{}.recent_updates, /*shards=*/2};
  const causal::Metadata none;
  const ClientContext ctx{"", none};
  ASSERT_EQ(ra.cluster.MyShard(), 0);
  std::string foreign, own;
  for (int i = 0; foreign.empty() || own.empty(); ++i) {
    const std::string key = "key" + std::to_string(i);
    (ra.cluster.ShardForKey(key) == 0 ? own : foreign) = key;
  }
  ASSERT_EQ(ra.coordinator.Put(own, "mine", ctx).kind, OpResult::Kind::kCreated);
  ra.replicator.SetStaging(true);
  store::Entry staged{"staged", false, store::Version{ra.clock.Now(), "127.0.0.1:2#1.0", 1}, ""};
  ASSERT_TRUE(ra.store.ApplyIfNewer(foreign, staged).written);
  EXPECT_EQ(ra.replicator.OwnedLiveCount(), 1);
  SyncReply full = ra.replicator.AnswerSync(SyncRequest{"c", {}, true, 0, 1 << 20});
  ASSERT_EQ(full.updates.size(), 1u);
  EXPECT_EQ(full.updates[0].key, own);
  // A delete now, with every member's vector covering it: kept while the staging runs.
  ra.coordinator.Delete(own, ctx);
  for (const cluster::Address& peer : {c}) {
    ra.replicator.AnswerSync(SyncRequest{peer.ToString(), ra.replicator.AppliedVector()});
  }
  ra.replicator.AntiEntropyRound();
  ASSERT_TRUE(ra.store.Get(own).has_value()) << "tombstone collected during a staging";
  ra.replicator.SetStaging(false);
  ra.replicator.AntiEntropyRound();
  EXPECT_FALSE(ra.store.Get(own).has_value()) << "tombstone kept after the staging ended";
}

}  // namespace
}  // namespace kvs::replication
