// Durability with real processes: a write answered 200/201 (KVS_STORAGE_FSYNC=always, the
// default) is on the disk of the replica that applied it, so kill -9 loses none of them:
//  - one replica killed under a write load aimed at it comes back from its data directory (and
//    its peers) and serves every write it acknowledged;
//  - a replica whose peers are all down, killed under load and restarted alone, serves every
//    write it acknowledged from its own disk only, and the peers, restarted later, catch up;
//  - all six nodes of a two-shard cluster killed at the same moment while writes are in flight,
//    then restarted together, lose no acknowledged write, overwrites included (the value read is
//    the last acknowledged one, or a later write whose answer the crash cut off).
// Reads carry the causal metadata of the acknowledged write, so a node that has not got the
// write must wait for it or answer 503; 404 or an older value is a loss. Each restarted process
// must take a new origin incarnation.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "cluster_fixture.h"

namespace kvs::cluster_test {
// Named, not anonymous: the live tests build as unity sources (KVS_UNITY), where the
// file-local names of different files would clash.
namespace durability_live {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

// A PUT may be forwarded to the other shard and may wait for a dependency (2 s).
constexpr milliseconds kWriteTimeout{5000};
constexpr milliseconds kReadTimeout{5000};
// Recovery: replay the data directory, then catch up from peers (bootstrap is bounded by
// kvs.replication.bootstrap_timeout_ms, 3 s, per attempt).
constexpr milliseconds kReadyTimeout{60000};
// Every read of the check phase, 503 retries included.
constexpr milliseconds kVerifyTimeout{30000};
// Load before the crash: until this many writes are acknowledged, or this long.
constexpr milliseconds kLoadTime{3000};
// A bound on each writer thread's requests (the load stops at the crash well before).
constexpr int kMaxWritesPerThread = 5000;
constexpr milliseconds kInFlightWait{2000};
constexpr milliseconds kBackoffAfterFailure{20};
constexpr int kMaxReported = 10;

milliseconds Since(steady_clock::time_point start) {
  return std::chrono::duration_cast<milliseconds>(steady_clock::now() - start);
}

ClusterOptions DurableOptions(int nodes, int shards) {
  ClusterOptions options;
  options.nodes = nodes;
  options.shard_count = shards;
  // The defaults, spelled out: what this file tests depends on them.
  options.extra_env = {{"KVS_STORAGE_MODE", "disk"}, {"KVS_STORAGE_FSYNC", "always"}};
  return options;
}

// One PUT a writer sent.
struct Attempt {
  std::string value;  // Unique per attempt.
  int status = 0;     // 0: no answer (refused, reset by the crash, timed out).
  std::string metadata;

  bool acked() const { return status == 200 || status == 201; }
  // Refused before any byte was sent, or a 4xx: certainly not applied.
  bool surely_not_applied = false;
};

// Every PUT of one key, in the order its (single) writer sent them.
struct KeyHistory {
  std::string key;
  int writer = 0;
  std::vector<Attempt> attempts;

  // The last acknowledged attempt, or nullptr.
  const Attempt* LastAcked() const {
    for (auto it = attempts.rbegin(); it != attempts.rend(); ++it) {
      if (it->acked()) return &*it;
    }
    return nullptr;
  }
  // What a read may return: the last acknowledged value, or the value of any attempt whose
  // outcome is unknown (the crash cut its answer off; it may have been applied after the last
  // acknowledged one).
  std::set<std::string> Allowed() const {
    std::set<std::string> allowed;
    if (const Attempt* last = LastAcked()) allowed.insert(last->value);
    for (const Attempt& a : attempts) {
      if (!a.acked() && !a.surely_not_applied) allowed.insert(a.value);
    }
    return allowed;
  }
};

// Writer threads, one per target, each a causal client (passing its last metadata along) that
// PUTs its own keys "<prefix>w<t>-<n>" to its target node, one at a time, and records every
// answer. With overwrite_every = k > 0, every k-th request overwrites one of the thread's
// earlier keys instead. Threads stop at Stop() (also called by the destructor, so a failed
// assertion never leaves one running), after max_writes each, and never touch the cluster
// object (they get copies of the endpoints).
class WriteLoad {
 public:
  WriteLoad(std::vector<Endpoint> targets, std::string prefix, int overwrite_every,
            int max_writes = kMaxWritesPerThread)
      : targets_(std::move(targets)),
        prefix_(std::move(prefix)),
        overwrite_every_(overwrite_every),
        max_writes_(max_writes),
        histories_(targets_.size()) {
    for (size_t t = 0; t < targets_.size(); ++t) threads_.emplace_back([this, t] { Run(t); });
  }
  WriteLoad(const WriteLoad&) = delete;
  WriteLoad& operator=(const WriteLoad&) = delete;
  ~WriteLoad() { Stop(); }

  void Stop() {
    stop_.store(true);
    for (auto& thread : threads_) {
      if (thread.joinable()) thread.join();
    }
  }

  int64_t acked() const { return acked_.load(); }
  int in_flight() const { return in_flight_.load(); }

  // After Stop(): every key's history.
  std::vector<KeyHistory> Histories() const {
    std::vector<KeyHistory> all;
    for (const auto& per_thread : histories_) {
      all.insert(all.end(), per_thread.begin(), per_thread.end());
    }
    return all;
  }

  struct Counts {
    int64_t attempts = 0, acked = 0, no_answer = 0, other = 0;
    std::map<int, int64_t> by_status;
  };
  Counts Count() const {
    Counts counts;
    for (const auto& per_thread : histories_) {
      for (const KeyHistory& h : per_thread) {
        for (const Attempt& a : h.attempts) {
          ++counts.attempts;
          ++counts.by_status[a.status];
          if (a.acked()) {
            ++counts.acked;
          } else if (a.status == 0) {
            ++counts.no_answer;
          } else {
            ++counts.other;
          }
        }
      }
    }
    return counts;
  }

 private:
  void Run(size_t t) {
    std::vector<KeyHistory>& mine = histories_[t];
    std::string context;
    for (int n = 0; n < max_writes_ && !stop_.load(); ++n) {
      KeyHistory* history = nullptr;
      if (overwrite_every_ > 0 && n % overwrite_every_ == overwrite_every_ - 1 && !mine.empty()) {
        history = &mine[(static_cast<size_t>(n) * 7919) % mine.size()];
      } else {
        mine.push_back(
            {prefix_ + "w" + std::to_string(t) + "-" + std::to_string(n), static_cast<int>(t), {}});
        history = &mine.back();
      }
      Attempt attempt;
      attempt.value = "v-" + std::to_string(t) + "-" + std::to_string(n);
      in_flight_.fetch_add(1);
      const HttpResponse put =
          PutKey(targets_[t], history->key, attempt.value, context, kWriteTimeout);
      in_flight_.fetch_sub(1);
      attempt.status = put.status;
      if (attempt.acked()) {
        const auto object = http_test::ParseObject(put.body);
        if (!object.isNull() && object->has("causal-metadata") &&
            object->get("causal-metadata").isString()) {
          attempt.metadata = object->get("causal-metadata").extract<std::string>();
          context = attempt.metadata;
        }
        acked_.fetch_add(1);
      } else {
        attempt.surely_not_applied =
            (put.status >= 400 && put.status < 500) ||
            (put.status == 0 && put.error.find("refused") != std::string::npos);
      }
      const bool failed = !attempt.acked();
      history->attempts.push_back(std::move(attempt));
      if (failed) std::this_thread::sleep_for(kBackoffAfterFailure);
    }
  }

  const std::vector<Endpoint> targets_;
  const std::string prefix_;
  const int overwrite_every_;
  const int max_writes_;
  std::vector<std::vector<KeyHistory>> histories_;  // Per thread; read only after Stop().
  std::vector<std::thread> threads_;
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> acked_{0};
  std::atomic<int> in_flight_{0};
};

// The outcome of reading back every acknowledged key.
struct Check {
  int64_t keys = 0;         // Keys with at least one acknowledged write.
  int64_t ok = 0;           // Read back with an allowed value.
  int64_t lost = 0;         // 404.
  int64_t wrong = 0;        // 200 with a value that is neither the last ack nor a later write.
  int64_t unavailable = 0;  // Still 503 / no answer / other at the deadline.
  int64_t retried = 0;      // Keys that needed more than one read.
  std::string details;

  bool Clean() const { return ok == keys && lost == 0 && wrong == 0 && unavailable == 0; }
  std::string Summary() const {
    return std::to_string(keys) + " acknowledged keys: " + std::to_string(ok) + " ok, " +
           std::to_string(lost) + " lost (404), " + std::to_string(wrong) + " wrong value, " +
           std::to_string(unavailable) + " unavailable; " + std::to_string(retried) +
           " needed a retry";
  }
};

// Reads every key with an acknowledged write at reader(index of the key) with the metadata of
// its last acknowledged write. 200 with an allowed value passes; 404 or another value fails at
// once; 503 or no answer is retried (a node may still be pulling the write) until `timeout`
// for the whole check.
template <class Reader>
Check ReadBack(const std::vector<KeyHistory>& histories, Reader reader, milliseconds timeout) {
  Check check;
  const auto deadline = steady_clock::now() + timeout;
  struct Pending {
    size_t index;
    HttpResponse last;
  };
  std::vector<Pending> pending;
  for (size_t i = 0; i < histories.size(); ++i) {
    if (histories[i].LastAcked() != nullptr) {
      ++check.keys;
      pending.push_back({i, {}});
    }
  }
  int reported = 0;
  const auto report = [&](const KeyHistory& h, const Endpoint& at, const std::string& what) {
    if (reported++ >= kMaxReported) return;
    check.details += "  " + h.key + " (writer " + std::to_string(h.writer + 1) + ", " +
                     std::to_string(h.attempts.size()) + " attempt(s), last acked value \"" +
                     h.LastAcked()->value + "\") at " + at.ToString() + ": " + what + "\n";
  };
  for (int pass = 0; !pending.empty(); ++pass) {
    if (pass > 0) {
      if (steady_clock::now() >= deadline) break;
      std::this_thread::sleep_for(milliseconds(100));
    }
    std::vector<Pending> again;
    for (Pending& p : pending) {
      const KeyHistory& h = histories[p.index];
      if (steady_clock::now() >= deadline) {
        again.push_back(std::move(p));
        continue;
      }
      const Endpoint at = reader(p.index);
      const HttpResponse get = GetKey(at, h.key, h.LastAcked()->metadata, kReadTimeout);
      const auto read = ParseRead(get);
      const std::set<std::string> allowed = h.Allowed();
      if (read && allowed.contains(read->value)) {
        ++check.ok;
        if (pass > 0) ++check.retried;
      } else if (read) {
        ++check.wrong;
        report(h, at, "read \"" + read->value + "\"");
      } else if (get.status == 404) {
        ++check.lost;
        // Without the causal context, for the log: does the node have it at all?
        const HttpResponse plain = GetKey(at, h.key, "", kReadTimeout);
        report(h, at,
               http_test::Describe(get) + "; without metadata: " + http_test::Describe(plain));
      } else {
        p.last = get;
        again.push_back(std::move(p));
      }
    }
    pending = std::move(again);
  }
  for (const Pending& p : pending) {
    ++check.unavailable;
    if (reported >= kMaxReported) continue;
    // Without the causal context, for the log: a 404 here means the write is gone.
    const Endpoint at = reader(p.index);
    const HttpResponse plain = GetKey(at, histories[p.index].key, "", kReadTimeout);
    report(histories[p.index], at,
           "no 200 within the check's " + std::to_string(timeout.count()) + " ms; last answer: " +
               http_test::Describe(p.last) + "; without metadata: " + http_test::Describe(plain));
  }
  return check;
}

// Starts the load, lets it run until `min_acked` writes are acknowledged (or kLoadTime), then
// waits (briefly) for a moment when requests are in flight: the crash must cut some off.
::testing::AssertionResult LoadUntilCrashPoint(const WriteLoad& load, int64_t min_acked) {
  const PollResult loaded =
      Eventually([&] { return load.acked() >= min_acked; }, kLoadTime, milliseconds(10));
  if (load.acked() == 0) {
    return ::testing::AssertionFailure()
           << "no write acknowledged within " << kLoadTime.count() << " ms of load";
  }
  Eventually([&] { return load.in_flight() > 0; }, kInFlightWait, milliseconds(0));
  std::cout << "[ LOAD     ] " << load.acked() << " writes acknowledged in "
            << loaded.elapsed.count() << " ms; " << load.in_flight()
            << " request(s) in flight at the crash" << std::endl;
  return ::testing::AssertionSuccess();
}

std::string DescribeCounts(const WriteLoad::Counts& counts) {
  std::string out = std::to_string(counts.attempts) + " PUTs: " + std::to_string(counts.acked) +
                    " acknowledged, " + std::to_string(counts.no_answer) + " without answer, " +
                    std::to_string(counts.other) + " other; by status:";
  for (const auto& [status, n] : counts.by_status) {
    out += " " + std::to_string(status) + "x" + std::to_string(n);
  }
  return out;
}

class ReplicaDurabilityTest : public ClusterTest {
 protected:
  ClusterOptions Options() const override { return DurableOptions(3, 1); }

  std::optional<std::string> Origin(int i) {
    const auto health = GetHealth(node(i));
    if (!health) return std::nullopt;
    return health->origin;
  }

  // Three writers load replica `target`, which is killed -9 mid-load, then restarted on its
  // data directory and waited for until ready; `*histories` is what the writers saw.
  void CrashUnderLoadAndRestart(int target, const std::string& prefix, const std::string& peers,
                                std::vector<KeyHistory>* histories) {
    WriteLoad load({node(target), node(target), node(target)}, prefix, /*overwrite_every=*/4);
    ASSERT_TRUE(LoadUntilCrashPoint(load, 600));
    ASSERT_TRUE(cluster().Kill(target));
    load.Stop();
    *histories = load.Histories();
    std::cout << "[ LOAD     ] " << DescribeCounts(load.Count()) << std::endl;

    const auto restart = steady_clock::now();
    ASSERT_TRUE(cluster().Restart(target));
    ASSERT_TRUE(cluster().WaitReady(target, kReadyTimeout));
    ReportTime("restart to ready (replica " + std::to_string(target + 1) + ", " + peers + ")",
               Since(restart));
  }
};

// One replica of three killed -9 while three clients write to it; restarted with its data
// directory, it serves every write it acknowledged (some of which its peers may not have got
// before the crash).
TEST_F(ReplicaDurabilityTest, KilledReplicaServesEveryWriteItAcknowledged) {
  constexpr int kTarget = 2;
  const auto origin_before = Origin(kTarget);
  ASSERT_TRUE(origin_before.has_value());

  std::vector<KeyHistory> histories;
  ASSERT_NO_FATAL_FAILURE(CrashUnderLoadAndRestart(kTarget, "one-", "peers up", &histories));
  const auto origin_after = Origin(kTarget);
  EXPECT_TRUE(origin_after.has_value() && *origin_after != *origin_before)
      << "a restarted process must take a new origin incarnation; before: " << *origin_before
      << ", after: " << origin_after.value_or("(no answer)");

  const Check check = ReadBack(
      histories, [&](size_t) { return node(kTarget); }, kVerifyTimeout);
  std::cout << "[ CHECK    ] replica 3 after restart: " << check.Summary() << std::endl;
  EXPECT_TRUE(check.Clean()) << check.Summary() << "\n" << check.details;

  // It still takes writes, and knows the keys it had: an overwrite is an update.
  const KeyHistory* existing = nullptr;
  for (const KeyHistory& h : histories) {
    if (h.LastAcked() != nullptr) existing = &h;
  }
  ASSERT_NE(existing, nullptr);
  const HttpResponse update = PutKey(node(kTarget), existing->key, "after-restart",
                                     existing->LastAcked()->metadata, kWriteTimeout);
  EXPECT_EQ(update.status, 200) << existing->key << ": " << http_test::Describe(update);
  const HttpResponse added = PutKey(node(kTarget), "one-new-after-restart", "x", "", kWriteTimeout);
  EXPECT_EQ(added.status, 201) << http_test::Describe(added);
}

// The peers of replica 3 are down, so what it acknowledges exists only on its disk. Killed -9
// under load and restarted alone, it must serve all of it from there; the peers, restarted with
// their own (older) data, then catch up from it.
TEST_F(ReplicaDurabilityTest, ReplicaAloneRecoversItsWritesFromItsOwnDisk) {
  constexpr int kTarget = 2;
  ASSERT_TRUE(cluster().KillNodes({0, 1}));

  std::vector<KeyHistory> histories;
  ASSERT_NO_FATAL_FAILURE(
      CrashUnderLoadAndRestart(kTarget, "alone-", "both peers down", &histories));
  const Check alone = ReadBack(
      histories, [&](size_t) { return node(kTarget); }, kVerifyTimeout);
  std::cout << "[ CHECK    ] replica 3 alone, from its disk: " << alone.Summary() << std::endl;
  EXPECT_TRUE(alone.Clean()) << alone.Summary() << "\n" << alone.details;

  const auto peers = steady_clock::now();
  ASSERT_TRUE(cluster().RestartNodes({0, 1}));
  ASSERT_TRUE(cluster().WaitAllReady({0, 1}, kReadyTimeout));
  ReportTime("restart to ready (replicas 1 and 2, behind replica 3)", Since(peers));
  for (int i : {0, 1}) {
    const Check caught_up = ReadBack(
        histories, [&](size_t) { return node(i); }, kVerifyTimeout);
    std::cout << "[ CHECK    ] replica " << i + 1 << " after catching up: " << caught_up.Summary()
              << std::endl;
    EXPECT_TRUE(caught_up.Clean()) << "replica " << i + 1 << ": " << caught_up.Summary() << "\n"
                                   << caught_up.details;
  }
}

class ClusterDurabilityTest : public ClusterTest {
 protected:
  static constexpr int kNodes = 6;
  ClusterOptions Options() const override { return DurableOptions(kNodes, 2); }

  std::vector<int> AllNodes() const {
    std::vector<int> all(kNodes);
    for (int i = 0; i < kNodes; ++i) all[i] = i;
    return all;
  }
};

// Six nodes, two shards, one writer per node (keys of both shards, so writes are forwarded
// too, and some keys overwritten): every node killed -9 at the same moment, restarted together.
TEST_F(ClusterDurabilityTest, WholeClusterKilledUnderLoadLosesNoAcknowledgedWrite) {
  std::vector<std::string> origins_before;
  for (int i = 0; i < kNodes; ++i) {
    const auto health = GetHealth(node(i));
    ASSERT_TRUE(health.has_value()) << "node " << i + 1;
    origins_before.push_back(health->origin);
  }
  std::vector<Endpoint> targets;
  for (int i = 0; i < kNodes; ++i) targets.push_back(node(i));

  WriteLoad load(targets, "all-", /*overwrite_every=*/3);
  ASSERT_TRUE(LoadUntilCrashPoint(load, 1500));
  ASSERT_TRUE(cluster().KillNodes(AllNodes()));
  load.Stop();
  const std::vector<KeyHistory> histories = load.Histories();
  std::cout << "[ LOAD     ] " << DescribeCounts(load.Count()) << std::endl;

  const auto restart = steady_clock::now();
  ASSERT_TRUE(cluster().RestartNodes(AllNodes()));
  ASSERT_TRUE(cluster().WaitAllReady(AllNodes(), kReadyTimeout));
  ReportTime("restart of all six to all ready", Since(restart));
  for (int i = 0; i < kNodes; ++i) {
    const auto health = GetHealth(node(i));
    EXPECT_TRUE(health.has_value() && health->origin != origins_before[i])
        << "node " << i + 1 << " must take a new origin incarnation; before: " << origins_before[i]
        << ", after: " << (health ? health->origin : "(no answer)");
  }

  // Each key read at a node other than the one it was written at (forwarded for half of them).
  const Check check = ReadBack(
      histories,
      [&](size_t index) {
        return node((histories[index].writer + 1 + static_cast<int>(index % (kNodes - 1))) %
                    kNodes);
      },
      kVerifyTimeout);
  std::cout << "[ CHECK    ] after the whole cluster restarted: " << check.Summary() << std::endl;
  EXPECT_TRUE(check.Clean()) << check.Summary() << "\n" << check.details;
}

}  // namespace durability_live
}  // namespace kvs::cluster_test

namespace kvs::cluster_test {
namespace durability_live {

class ReshardWhileDownTest : public ClusterTest {
 protected:
  ClusterOptions Options() const override { return DurableOptions(6, 3); }

  // Reshards 3 -> 2 through node 0, asking again (bounded) while it refuses, e.g. until the
  // cluster has noticed a killed node.
  HttpResponse ReshardToTwo() {
    const auto deadline = steady_clock::now() + milliseconds(15000);
    HttpResponse reshard;
    while (steady_clock::now() < deadline) {
      reshard = Send(node(0), "PUT", "/key-value-store-shard/reshard", R"({"shard-count":2})",
                     milliseconds(30000));
      if (reshard.status == 200) break;
      std::this_thread::sleep_for(milliseconds(200));
    }
    return reshard;
  }
};

// A node that was down (its data kept on disk) while the cluster resharded comes back with the
// old layout on disk. It must not serve that stale layout: it adopts the new one before it is
// ready (a reshard assigns only the nodes in the view, so it comes back without a shard until
// add-member, and drops the data it no longer owns), and every key reads back through it.
TEST_F(ReshardWhileDownTest, NodeRestartedFromDiskAfterAMissedReshardHoldsItsNewShard) {
  constexpr int kKeys = 300;
  constexpr int kDown = 5;
  for (int i = 0; i < kKeys; ++i) {
    const HttpResponse r = PutKey(node(i % 5), "moved" + std::to_string(i), "v" + std::to_string(i),
                                  "", kWriteTimeout);
    ASSERT_TRUE(r.status == 200 || r.status == 201) << r.status << " " << r.body;
  }
  // Every replica has every write of its shard before the crash (the broadcasts, bounded
  // wait): the node killed may have coordinated some of them, and a reshard while it is down
  // must find them on the others.
  const PollResult replicated = Eventually(
      [&] {
        std::map<int64_t, int64_t> count_of;  // shard -> its replicas' common key count
        for (int i = 0; i < 6; ++i) {
          const auto shard = ParseNodeShardId(GetShardInfo(node(i), "node-shard-id"));
          if (!shard) return false;
          const auto count = GetKeyCount(node(i), static_cast<int>(*shard));  // its own count
          if (!count) return false;
          const auto [it, first] = count_of.emplace(*shard, *count);
          if (!first && it->second != *count) return false;
        }
        int64_t total = 0;
        for (const auto& [shard, count] : count_of) total += count;
        return count_of.size() == 3 && total == kKeys;
      },
      milliseconds(15000));
  ASSERT_TRUE(replicated) << "the shards' replicas never all held the " << kKeys << " keys";
  ASSERT_TRUE(cluster().Kill(kDown));
  // The cluster notices the node is gone (heartbeats), then reshards without it.
  const HttpResponse reshard = ReshardToTwo();
  ASSERT_EQ(reshard.status, 200) << reshard.body;

  ASSERT_TRUE(cluster().Restart(kDown));  // same data directory, old layout inside
  ASSERT_TRUE(cluster().WaitReady(kDown, kReadyTimeout));
  int wrong = 0;
  std::string first_wrong;
  for (int i = 0; i < kKeys; ++i) {
    const std::string key = "moved" + std::to_string(i);
    HttpResponse r;
    const auto key_deadline = steady_clock::now() + milliseconds(10000);
    do {
      r = GetKey(node(kDown), key, "", kReadTimeout);
      if (r.status != 503 && r.status != 0) break;
      std::this_thread::sleep_for(milliseconds(50));
    } while (steady_clock::now() < key_deadline);
    const auto read = ParseRead(r);
    if (!read || read->value != "v" + std::to_string(i)) {
      if (wrong++ == 0) first_wrong = key + ": " + std::to_string(r.status) + " " + r.body;
    }
  }
  EXPECT_EQ(wrong, 0) << "first: " << first_wrong << "\n" << cluster().LogTails(20);
}

// A node that coordinated writes whose broadcast never left (its shard's other replica was cut
// off), then crashed, holds the only copies of those acknowledged writes. The cluster reshards
// without it, and when it comes back it owns none of their keys: it must hand them to their
// new shards before it drops them, so that every one reads back through the other nodes.
TEST_F(ReshardWhileDownTest, WritesOnlyADownNodeHeldReachTheirNewShardsWhenItReturns) {
  constexpr int kDown = 5;
  constexpr size_t kWrites = 40;
  const auto shard = ParseNodeShardId(GetShardInfo(node(kDown), "node-shard-id"));
  ASSERT_TRUE(shard.has_value());
  const auto members =
      ParseShardMembers(GetShardInfo(node(kDown), "shard-id-members/" + std::to_string(*shard)));
  ASSERT_TRUE(members.has_value());
  int peer = -1;
  for (int i = 0; i < 6; ++i) {
    if (i != kDown &&
        std::find(members->begin(), members->end(), node(i).ToString()) != members->end()) {
      peer = i;
    }
  }
  ASSERT_GE(peer, 0) << "no other member in shard " << *shard;
  ASSERT_TRUE(cluster().Isolate(peer));
  // Keys of kDown's own shard, written through it: it coordinates them and acknowledges each
  // after its own fsync; their broadcast cannot reach the peer.
  std::map<std::string, std::string> written;
  for (int i = 0; written.size() < kWrites && i < 2000; ++i) {
    const std::string key = "only" + std::to_string(i);
    const std::string value = "v" + std::to_string(i);
    const HttpResponse put = PutKey(node(kDown), key, value, "", kWriteTimeout);
    ASSERT_TRUE(put.status == 200 || put.status == 201) << put.status << " " << put.body;
    const auto object = http_test::ParseObject(put.body);
    ASSERT_FALSE(object.isNull()) << put.body;
    if (object->optValue<int>("shard-id", -1) == static_cast<int>(*shard)) written[key] = value;
  }
  ASSERT_EQ(written.size(), kWrites);
  ASSERT_TRUE(cluster().Kill(kDown));
  ASSERT_TRUE(cluster().Heal(peer));
  std::vector<int> live;
  for (int i = 0; i < 6; ++i) {
    if (i != kDown) live.push_back(i);
  }
  ASSERT_TRUE(WaitForViews(live, peer, /*present=*/true, milliseconds(20000)))
      << DescribeViews(live);
  ASSERT_TRUE(WaitForViews(live, kDown, /*present=*/false, milliseconds(20000)))
      << DescribeViews(live);
  const HttpResponse reshard = ReshardToTwo();
  ASSERT_EQ(reshard.status, 200) << reshard.body;
  // Nobody but kDown ever had them (else this test shows nothing).
  for (const auto& [key, value] : written) {
    const HttpResponse get = GetKey(node(peer), key, "", kReadTimeout);
    ASSERT_EQ(get.status, 404) << key << ": " << get.body;
  }

  ASSERT_TRUE(cluster().Restart(kDown));  // its data directory, the old layout inside
  ASSERT_TRUE(cluster().WaitReady(kDown, kReadyTimeout));
  std::string first_wrong;
  const PollResult handed = Eventually(
      [&] {
        int i = 0;
        for (const auto& [key, value] : written) {
          const HttpResponse get =
              GetKey(node(live[static_cast<size_t>(i++) % live.size()]), key, "", kReadTimeout);
          const auto read = ParseRead(get);
          if (!read || read->value != value) {
            first_wrong = key + ": " + std::to_string(get.status) + " " + get.body;
            return false;
          }
        }
        return true;
      },
      milliseconds(20000), milliseconds(200));
  EXPECT_TRUE(handed) << "first: " << first_wrong << "\n" << cluster().LogTails(20);
}

}  // namespace durability_live
}  // namespace kvs::cluster_test
