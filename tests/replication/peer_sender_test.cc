// PeerSender driven from outside (the event loops' broadcasts, issue 14), with a driver that
// records what it is told instead of sending; the loops' side is covered by the live cluster
// tests. Also the hand-over of queued updates between threaded and driven senders.
#include "kvs/replication/peer_sender.h"

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>

#include "kvs/cluster/hash_ring.h"
#include "kvs/replication/coordinator.h"
#include "kvs/replication/replicator.h"

namespace kvs::replication {
namespace {

using Clock = std::chrono::steady_clock;

struct FakeDriver : SenderDriver {
  bool Drives(const std::string&) override { return drives; }
  void Ready(std::shared_ptr<PeerSender> sender) override {
    std::lock_guard lock(mu);
    ready.push_back(std::move(sender));
  }
  size_t ReadyCount() {
    std::lock_guard lock(mu);
    return ready.size();
  }
  bool drives = true;
  std::mutex mu;
  std::vector<std::shared_ptr<PeerSender>> ready;
};

std::shared_ptr<const Update> QueuedUpdate(const std::string& key, uint64_t seq) {
  store::Entry entry;
  entry.value = "v" + std::to_string(seq);
  entry.version = store::Version{seq, "127.0.0.1:1#1.0", seq};
  return std::make_shared<const Update>(Update{key, entry});
}

// The keys of an encoded batch, in order.
std::vector<std::string> KeysOf(const PeerSender::Batch& batch) {
  std::string error;
  const auto decoded = DecodeBatch(batch.body, error);
  EXPECT_TRUE(decoded) << error;
  std::vector<std::string> keys;
  if (decoded) {
    for (const Update& u : decoded->updates) keys.push_back(u.key);
  }
  return keys;
}

class PeerSenderTest : public ::testing::Test {
 protected:
  std::shared_ptr<PeerSender> Make(SenderOptions options) {
    return std::make_shared<PeerSender>(
        "127.0.0.1:1", "127.0.0.1:2", client_, options,
        [this](const std::string&) { return in_view_.load(); }, counters_, &driver_);
  }
  static SenderOptions NoLinger() {
    SenderOptions options;
    options.linger = std::chrono::microseconds(0);
    return options;
  }

  net::PeerClient client_;
  SenderCounters counters_;
  FakeDriver driver_;
  std::atomic<bool> in_view_{true};
};

TEST_F(PeerSenderTest, OneBatchInFlightAndWhatArrivesMeanwhileIsTheNext) {
  auto sender = Make(NoLinger());
  EXPECT_TRUE(sender->driven());
  sender->Enqueue(QueuedUpdate("a", 1));
  sender->Enqueue(QueuedUpdate("b", 2));
  EXPECT_EQ(driver_.ReadyCount(), 1u);  // told once, not per update

  auto first = sender->TakeBatch();
  ASSERT_TRUE(first);
  EXPECT_EQ(first->updates, 2u);
  EXPECT_EQ(KeysOf(*first), (std::vector<std::string>{"a", "b"}));
  EXPECT_FALSE(sender->TakeBatch());  // one in flight at a time

  sender->Enqueue(QueuedUpdate("c", 3));
  EXPECT_EQ(driver_.ReadyCount(), 1u);       // the driver asks again when the batch is done
  EXPECT_EQ(sender->Snapshot().queued, 3u);  // nothing leaves before it is acknowledged

  EXPECT_TRUE(sender->Finished(true, ""));  // more to send at once
  EXPECT_EQ(counters_.sent.load(), 2u);
  EXPECT_EQ(sender->Snapshot().queued, 1u);
  auto second = sender->TakeBatch();
  ASSERT_TRUE(second);
  EXPECT_EQ(KeysOf(*second), (std::vector<std::string>{"c"}));
  EXPECT_FALSE(sender->Finished(true, ""));  // nothing left
  EXPECT_EQ(sender->Snapshot().queued, 0u);

  sender->Enqueue(QueuedUpdate("d", 4));
  EXPECT_EQ(driver_.ReadyCount(), 2u);  // idle again: the next update tells the driver
}

TEST_F(PeerSenderTest, BatchesAreCappedAtBatchMax) {
  SenderOptions options = NoLinger();
  options.batch_max = 3;
  auto sender = Make(options);
  for (uint64_t i = 1; i <= 5; ++i) sender->Enqueue(QueuedUpdate("k" + std::to_string(i), i));
  auto first = sender->TakeBatch();
  ASSERT_TRUE(first);
  EXPECT_EQ(KeysOf(*first), (std::vector<std::string>{"k1", "k2", "k3"}));
  EXPECT_TRUE(sender->Finished(true, ""));
  auto second = sender->TakeBatch();
  ASSERT_TRUE(second);
  EXPECT_EQ(KeysOf(*second), (std::vector<std::string>{"k4", "k5"}));
}

TEST_F(PeerSenderTest, AFailedBatchIsResentAfterABackoffThatDoubles) {
  SenderOptions options = NoLinger();
  options.backoff_min = std::chrono::milliseconds(20);
  options.backoff_max = std::chrono::milliseconds(1000);
  auto sender = Make(options);
  sender->Enqueue(QueuedUpdate("a", 1));
  ASSERT_TRUE(sender->TakeBatch());

  Clock::time_point before = Clock::now();
  EXPECT_FALSE(sender->Finished(false, "refused"));
  Clock::time_point retry_at = sender->retry_at();
  EXPECT_GE(retry_at, before + std::chrono::milliseconds(20));
  EXPECT_FALSE(sender->TakeBatch());  // backing off
  sender->Enqueue(QueuedUpdate("b", 2));
  EXPECT_EQ(driver_.ReadyCount(), 1u);  // no signal while backing off: the driver comes back
  EXPECT_EQ(sender->Snapshot().queued, 2u);

  std::optional<PeerSender::Batch> again;
  while (!(again = sender->TakeBatch()))
    ASSERT_LT(Clock::now(), retry_at + std::chrono::seconds(5));
  EXPECT_GE(Clock::now(), retry_at);
  EXPECT_EQ(KeysOf(*again), (std::vector<std::string>{"a", "b"}));  // the failed one again

  before = Clock::now();
  EXPECT_FALSE(sender->Finished(false, "refused"));
  EXPECT_GE(sender->retry_at(), before + std::chrono::milliseconds(40));  // doubled

  while (!(again = sender->TakeBatch())) {
    ASSERT_LT(Clock::now(), before + std::chrono::seconds(5));
  }
  EXPECT_FALSE(sender->Finished(true, ""));
  EXPECT_EQ(sender->retry_at(), Clock::time_point{});
  EXPECT_EQ(counters_.sent.load(), 2u);
  EXPECT_EQ(sender->Snapshot().queued, 0u);
}

TEST_F(PeerSenderTest, APeerOutOfTheViewGetsNothingAndItsQueueIsDropped) {
  auto sender = Make(NoLinger());
  sender->Enqueue(QueuedUpdate("a", 1));
  sender->Enqueue(QueuedUpdate("b", 2));
  in_view_ = false;
  EXPECT_FALSE(sender->TakeBatch());
  EXPECT_EQ(counters_.dropped.load(), 2u);
  EXPECT_EQ(sender->Snapshot().queued, 0u);
}

TEST_F(PeerSenderTest, LingersForMoreUntilTheOldestUpdateIsLingerOldOrTheBatchIsFull) {
  SenderOptions options;
  options.linger = std::chrono::milliseconds(30);
  options.batch_max = 4;
  auto sender = Make(options);
  const Clock::time_point queued = Clock::now();
  sender->Enqueue(QueuedUpdate("a", 1));
  EXPECT_FALSE(sender->TakeBatch());
  EXPECT_GE(sender->retry_at(), queued + std::chrono::milliseconds(30));
  sender->Enqueue(QueuedUpdate("b", 2));
  EXPECT_EQ(driver_.ReadyCount(), 1u);  // lingering: the driver comes back at retry_at()

  std::optional<PeerSender::Batch> batch;
  while (!(batch = sender->TakeBatch())) ASSERT_LT(Clock::now(), queued + std::chrono::seconds(5));
  EXPECT_GE(Clock::now(), queued + std::chrono::milliseconds(30));
  EXPECT_EQ(KeysOf(*batch), (std::vector<std::string>{"a", "b"}));
  EXPECT_FALSE(sender->Finished(true, ""));

  for (uint64_t i = 3; i <= 6; ++i) sender->Enqueue(QueuedUpdate("k" + std::to_string(i), i));
  batch = sender->TakeBatch();  // full: no lingering
  ASSERT_TRUE(batch);
  EXPECT_EQ(batch->updates, 4u);
}

TEST_F(PeerSenderTest, DetachHandsTheQueueOverAndTheOldSenderTakesNoMore) {
  auto old_sender = Make(NoLinger());
  old_sender->Enqueue(QueuedUpdate("a", 1));
  old_sender->Enqueue(QueuedUpdate("b", 2));
  ASSERT_TRUE(old_sender->TakeBatch());  // in flight when the hand-over comes

  FakeDriver other;
  auto next = std::make_shared<PeerSender>(
      "127.0.0.1:1", "127.0.0.1:2", client_, NoLinger(), [](const std::string&) { return true; },
      counters_, &other);
  next->Adopt(old_sender->Detach());
  EXPECT_EQ(other.ReadyCount(), 1u);
  EXPECT_EQ(next->Snapshot().queued, 2u);

  old_sender->Enqueue(QueuedUpdate("c", 3));
  EXPECT_EQ(old_sender->Snapshot().queued, 0u);
  EXPECT_FALSE(old_sender->Finished(true, ""));  // its in-flight batch ends quietly
  EXPECT_FALSE(old_sender->TakeBatch());

  auto batch = next->TakeBatch();
  ASSERT_TRUE(batch);
  EXPECT_EQ(KeysOf(*batch), (std::vector<std::string>{"a", "b"}));  // sent again: idempotent
}

TEST(ReplicatorDriverTest, WritesGoToTheDriverAndQueuedOnesFollowAChangeOfDriver) {
  const cluster::Address a{"127.0.0.1", 1}, b{"127.0.0.1", 2};
  store::Store store;
  causal::HybridClock clock;
  cluster::ClusterState cluster(a, {a, b}, cluster::InitialAssignment({a, b}, 1));
  net::PeerClient peers;
  ReplicationOptions options;
  options.sender.linger = std::chrono::microseconds(0);
  Replicator replicator(store, clock, cluster, peers, options);
  Coordinator coordinator(store, clock, replicator, a.ToString() + "#1");
  // Ready without a bootstrap from the (absent) peer, which is then back in the view.
  cluster.RemoveFromView(b);
  replicator.Bootstrap();
  cluster.AddToView(b);
  FakeDriver first;
  replicator.SetSenderDriver(&first);
  replicator.RefreshPeers();
  const causal::Metadata none;
  const ClientContext ctx{"", none};

  coordinator.Put("x", "1", ctx);
  coordinator.Put("y", "2", ctx);
  ASSERT_EQ(first.ReadyCount(), 1u);
  EXPECT_EQ(first.ready.front()->peer(), b.ToString());

  // Another driver takes over before anything was sent: the two writes move with the queue.
  FakeDriver second;
  replicator.SetSenderDriver(&second);
  ASSERT_EQ(second.ReadyCount(), 1u);
  EXPECT_FALSE(first.ready.front()->TakeBatch());  // the old sender is detached
  auto batch = second.ready.front()->TakeBatch();
  ASSERT_TRUE(batch);
  EXPECT_EQ(KeysOf(*batch), (std::vector<std::string>{"x", "y"}));
  EXPECT_FALSE(second.ready.front()->Finished(true, ""));
  ASSERT_EQ(replicator.QueueSnapshot().size(), 1u);
  EXPECT_EQ(replicator.QueueSnapshot().front().queued, 0u);

  // A driver that cannot reach the peer leaves it a sender thread of its own.
  FakeDriver unable;
  unable.drives = false;
  cluster.RemoveFromView(b);  // that thread then drops instead of calling a closed port
  replicator.SetSenderDriver(&unable);
  coordinator.Put("z", "3", ctx);
  EXPECT_EQ(unable.ReadyCount(), 0u);
  EXPECT_EQ(second.ReadyCount(), 1u);
}

}  // namespace
}  // namespace kvs::replication
