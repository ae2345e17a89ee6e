// GET /status?scope=cluster on six real nodes in two shards (issue 13): one node answers for
// all, each with its shard, the shard's members and its key count; a node killed -9 shows with
// the reason it gave no status, and every other node's failure detector reports it not alive.
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>

#include <atomic>
#include <chrono>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "cluster_fixture.h"

namespace kvs::cluster_test {
// Named, not anonymous: the live tests build as unity sources (KVS_UNITY), where the
// file-local names of different files would clash.
namespace status_live {

using std::chrono::milliseconds;

constexpr int kNodes = 6;
constexpr int kShards = 2;
constexpr int kKeys = 120;
constexpr milliseconds kKeyTimeout{10000};
// Broadcast between a shard's replicas is asynchronous: counts settle shortly after.
constexpr milliseconds kSettleTimeout{15000};
// Failure detection (heartbeats) plus the fan-out's own bound.
constexpr milliseconds kDownTimeout{30000};

class StatusClusterTest : public ClusterTest {
 protected:
  ClusterOptions Options() const override {
    ClusterOptions options;
    options.nodes = kNodes;
    options.shard_count = kShards;
    return options;
  }

  // GET /status?scope=cluster at `via`: its "nodes", or null (with `why` set).
  Poco::JSON::Array::Ptr ClusterNodes(int via, std::string& why) {
    const HttpResponse r = Send(node(via), "GET", "/status?scope=cluster");
    const Poco::JSON::Object::Ptr o = http_test::ParseObject(r.body);
    if (r.status != 200 || o.isNull() || o->getArray("nodes").isNull()) {
      why = http_test::Describe(r);
      return nullptr;
    }
    if (o->optValue<std::string>("via", "") != cluster().address(via)) {
      why = "via is not the node asked: " + r.body.substr(0, 300);
      return nullptr;
    }
    return o->getArray("nodes");
  }
};

// Whether `nodes` lists every node of the cluster in view order, each with its status, the
// shard whose members list it, and the same key count as the other members of its shard,
// adding up to `keys`. `why` says what was not so.
bool EveryNodeConsistent(const Poco::JSON::Array::Ptr& nodes, const std::vector<std::string>& all,
                         int keys, std::string& why) {
  if (nodes->size() != all.size()) {
    why = "nodes listed: " + std::to_string(nodes->size());
    return false;
  }
  std::map<int, std::set<std::string>> members_by_shard;  // as each node reports itself
  std::map<int, std::set<int64_t>> counts_by_shard;
  for (size_t i = 0; i < nodes->size(); ++i) {
    const Poco::JSON::Object::Ptr n = nodes->getObject(static_cast<unsigned>(i));
    if (n.isNull()) {
      why = "entry " + std::to_string(i) + " is not an object";
      return false;
    }
    const std::string address = n->optValue<std::string>("address", "");
    if (address != all[i]) {
      why = "entry " + std::to_string(i) + " is " + address + ", expected " + all[i];
      return false;
    }
    if (n->has("error")) {
      why = address + ": " + n->optValue<std::string>("error", "");
      return false;
    }
    if (!n->has("shard-id") || n->isNull("shard-id") || !n->get("shard-id").isInteger()) {
      why = address + " has no shard";
      return false;
    }
    const int shard = n->getValue<int>("shard-id");
    // The node's own layout lists it in the shard it reports.
    const Poco::JSON::Array::Ptr shards = n->getArray("shards");
    if (shards.isNull() || shards->size() != static_cast<size_t>(kShards)) {
      why = address + ": shards not " + std::to_string(kShards);
      return false;
    }
    bool listed = false;
    for (size_t s = 0; s < shards->size(); ++s) {
      const Poco::JSON::Object::Ptr entry = shards->getObject(static_cast<unsigned>(s));
      if (entry.isNull() || entry->getValue<int>("shard-id") != static_cast<int>(s)) {
        why = address + ": shard " + std::to_string(s) + " malformed";
        return false;
      }
      const Poco::JSON::Array::Ptr members = entry->getArray("members");
      for (size_t m = 0; members && m < members->size(); ++m) {
        listed = listed || (static_cast<int>(s) == shard &&
                            members->getElement<std::string>(static_cast<unsigned>(m)) == address);
      }
    }
    if (!listed) {
      why = address + " is not among the members of its shard " + std::to_string(shard);
      return false;
    }
    const Poco::JSON::Array::Ptr peers = n->getArray("peers");
    if (peers.isNull() || peers->size() != all.size() - 1) {
      why = address + ": peers are not the other " + std::to_string(all.size() - 1);
      return false;
    }
    members_by_shard[shard].insert(address);
    counts_by_shard[shard].insert(n->getValue<int64_t>("keys"));
  }
  int64_t total = 0;
  for (const auto& entry : counts_by_shard) {
    const std::set<int64_t>& counts = entry.second;
    if (counts.size() != 1) {
      why = "members of shard " + std::to_string(entry.first) + " disagree on their key count";
      return false;
    }
    total += *counts.begin();
  }
  if (members_by_shard.size() != static_cast<size_t>(kShards) || total != keys) {
    why = std::to_string(members_by_shard.size()) + " shards holding " + std::to_string(total) +
          " keys";
    return false;
  }
  for (const auto& entry : members_by_shard) {
    if (entry.second.size() != static_cast<size_t>(kNodes / kShards)) {
      why = "shard " + std::to_string(entry.first) + " has " + std::to_string(entry.second.size()) +
            " members";
      return false;
    }
  }
  return true;
}

TEST_F(StatusClusterTest, ClusterScopeListsEveryNodeWithItsShardAndKeys) {
  std::string metadata;
  for (int i = 0; i < kKeys; ++i) {
    const HttpResponse put =
        PutKey(node(i % kNodes), "status-key-" + std::to_string(i), "v", metadata, kKeyTimeout);
    ASSERT_TRUE(put.status == 200 || put.status == 201) << http_test::Describe(put);
    const auto answer = http_test::ParseObject(put.body);
    ASSERT_FALSE(answer.isNull());
    metadata = answer->optValue<std::string>("causal-metadata", "");
  }
  const std::vector<std::string> all = cluster().addresses();
  for (int via : {0, 4}) {
    SCOPED_TRACE("via node " + std::to_string(via));
    std::string why;
    const PollResult settled = Eventually(
        [&] {
          const Poco::JSON::Array::Ptr nodes = ClusterNodes(via, why);
          return !nodes.isNull() && EveryNodeConsistent(nodes, all, kKeys, why);
        },
        kSettleTimeout, milliseconds(200));
    EXPECT_TRUE(settled) << why;
  }
}

TEST_F(StatusClusterTest, KilledNodeShowsWithAnErrorAndNotAliveToTheOthers) {
  constexpr int kVictim = 5;
  const std::string victim = cluster().address(kVictim);
  ASSERT_TRUE(cluster().Kill(kVictim));
  const std::vector<std::string> all = cluster().addresses();
  std::string why;
  const PollResult seen = Eventually(
      [&] {
        const Poco::JSON::Array::Ptr nodes = ClusterNodes(0, why);
        if (nodes.isNull()) return false;
        if (nodes->size() != all.size()) {
          why = "nodes listed: " + std::to_string(nodes->size());
          return false;
        }
        for (size_t i = 0; i < nodes->size(); ++i) {
          const Poco::JSON::Object::Ptr n = nodes->getObject(static_cast<unsigned>(i));
          const std::string address = n->optValue<std::string>("address", "");
          if (address != all[i]) {
            why = "entry " + std::to_string(i) + " is " + address;
            return false;
          }
          if (address == victim) {
            if (!n->has("error") || n->optValue<std::string>("error", "").empty() ||
                n->size() != 2) {
              why = "the killed node's entry has no error alone";
              return false;
            }
            continue;
          }
          if (n->has("error")) {
            why = address + ": " + n->optValue<std::string>("error", "");
            return false;
          }
          const Poco::JSON::Array::Ptr peers = n->getArray("peers");
          bool reported_down = false;
          for (size_t p = 0; peers && p < peers->size(); ++p) {
            const Poco::JSON::Object::Ptr peer = peers->getObject(static_cast<unsigned>(p));
            const bool alive = peer->optValue<bool>("alive", true);
            if (peer->optValue<std::string>("address", "") == victim) {
              reported_down = !alive;
            } else if (!alive) {
              why = address + " reports a live node down";
              return false;
            }
          }
          if (!reported_down) {
            why = address + " does not report " + victim + " down yet";
            return false;
          }
        }
        return true;
      },
      kDownTimeout, milliseconds(200));
  EXPECT_TRUE(seen) << why;
  ReportTime("killed node reported down in /status?scope=cluster", seen.elapsed);
}

TEST_F(StatusClusterTest, ReshardShowsAsTheCoordinatorsOperationWhileItRuns) {
  std::string metadata;
  for (int i = 0; i < kKeys; ++i) {
    const HttpResponse put =
        PutKey(node(i % kNodes), "reshard-key-" + std::to_string(i), "v", metadata, kKeyTimeout);
    ASSERT_TRUE(put.status == 200 || put.status == 201) << http_test::Describe(put);
    const auto answer = http_test::ParseObject(put.body);
    ASSERT_FALSE(answer.isNull());
    metadata = answer->optValue<std::string>("causal-metadata", "");
  }
  std::atomic<bool> done{false};
  HttpResponse reshard;
  std::thread client([&] {
    reshard = Send(node(0), "PUT", "/key-value-store-shard/reshard", R"({"shard-count":3})",
                   milliseconds(60000));
    done = true;
  });
  // What the coordinator's /status says while the reshard runs: each phase seen, and whether
  // every operation seen was this reshard over the six nodes.
  std::set<std::string> phases;
  std::string wrong;
  while (!done) {
    const HttpResponse r = Send(node(0), "GET", "/status", std::nullopt, milliseconds(2000));
    const Poco::JSON::Object::Ptr o = http_test::ParseObject(r.body);
    if (r.status == 200 && !o.isNull() && o->has("operation") && !o->isNull("operation")) {
      const Poco::JSON::Object::Ptr op = o->getObject("operation");
      const int64_t total = op->optValue<int64_t>("total", -1);
      const int64_t finished = op->optValue<int64_t>("done", -1);
      if (op->optValue<std::string>("kind", "") != "reshard" || total != kNodes || finished < 0 ||
          finished > total || op->optValue<int64_t>("age-ms", -1) < 0) {
        wrong = r.body;
      }
      phases.insert(op->optValue<std::string>("phase", ""));
    }
    std::this_thread::sleep_for(milliseconds(5));  // a poll interval, not a wait for a result
  }
  client.join();
  ASSERT_EQ(reshard.status, 200) << http_test::Describe(reshard);
  EXPECT_TRUE(wrong.empty()) << wrong;
  EXPECT_FALSE(phases.empty()) << "no operation seen in /status while the reshard ran";
  for (const std::string& phase : phases) {
    EXPECT_TRUE(phase == "staging" || phase == "barrier" || phase == "commit") << phase;
  }
  // Over: no operation any more, and the new layout everywhere.
  const Poco::JSON::Object::Ptr after =
      http_test::ParseObject(Send(node(0), "GET", "/status").body);
  ASSERT_FALSE(after.isNull());
  EXPECT_TRUE(after->isNull("operation"));
  ASSERT_FALSE(after->getArray("shards").isNull());
  EXPECT_EQ(after->getArray("shards")->size(), 3u);
}

// The peers' entry for `subject` in `observer`'s /status: its "alive", or nullopt when the
// status or the entry is missing.
std::optional<bool> AliveAt(const Endpoint& observer, const std::string& subject) {
  const Poco::JSON::Object::Ptr o = http_test::ParseObject(Send(observer, "GET", "/status").body);
  if (o.isNull() || o->getArray("peers").isNull()) return std::nullopt;
  const Poco::JSON::Array::Ptr peers = o->getArray("peers");
  for (size_t p = 0; p < peers->size(); ++p) {
    const Poco::JSON::Object::Ptr peer = peers->getObject(static_cast<unsigned>(p));
    if (!peer.isNull() && peer->optValue<std::string>("address", "") == subject) {
      return peer->optValue<bool>("alive", false);
    }
  }
  return std::nullopt;
}

TEST_F(StatusClusterTest, AntiEntropyRepairShowsInStatusAndMetrics) {
  // Nodes 0, 2 and 4 form shard 0 (sorted addresses dealt round-robin). Node 2 is cut off;
  // once its shard peers hold it down they stop broadcasting to it, so what is written then
  // reaches it only by anti-entropy after the heal.
  constexpr int kCut = 2;
  const std::string cut = cluster().address(kCut);
  ASSERT_TRUE(cluster().Isolate(kCut));
  ASSERT_TRUE(
      Eventually([&] { return AliveAt(node(0), cut) == false && AliveAt(node(4), cut) == false; },
                 kDownTimeout, milliseconds(100)));
  std::string metadata;
  for (int i = 0; i < kKeys; ++i) {
    const HttpResponse put =
        PutKey(node(0), "repair-key-" + std::to_string(i), "v", metadata, kKeyTimeout);
    ASSERT_TRUE(put.status == 200 || put.status == 201) << http_test::Describe(put);
    const auto answer = http_test::ParseObject(put.body);
    ASSERT_FALSE(answer.isNull());
    metadata = answer->optValue<std::string>("causal-metadata", "");
  }
  ASSERT_TRUE(cluster().Heal(kCut));
  std::string why;
  const PollResult repaired = Eventually(
      [&] {
        const HttpResponse r = Send(node(kCut), "GET", "/status");
        const Poco::JSON::Object::Ptr o = http_test::ParseObject(r.body);
        if (o.isNull() || o->getObject("anti-entropy").isNull()) {
          why = http_test::Describe(r);
          return false;
        }
        const Poco::JSON::Object::Ptr ae = o->getObject("anti-entropy");
        why = r.body;
        return ae->optValue<int64_t>("repaired-total", 0) > 0 &&
               !ae->isNull("last-repair-age-ms") &&
               ae->optValue<int64_t>("last-repair-entries", 0) > 0 &&
               !ae->isNull("last-run-age-ms");
      },
      kDownTimeout, milliseconds(200));
  ASSERT_TRUE(repaired) << why;
  const std::optional<double> stamp =
      GetMetric(node(kCut), "kvs_anti_entropy_last_repair_timestamp_seconds");
  ASSERT_TRUE(stamp.has_value());
  // A Unix time of this century, not a zero or an uptime.
  EXPECT_GT(*stamp, 1.6e9);
}

}  // namespace status_live
}  // namespace kvs::cluster_test
