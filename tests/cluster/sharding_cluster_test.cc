// Sharding with real processes (SPEC §3 shard operations, §4 forwarding): six nodes in two
// shards spread keys evenly and serve every key at every node; a node started without
// SHARD_COUNT joins a shard with add-member and then holds that shard's data; reshard moves the
// keys to a new shard count without losing any, also while a causal client keeps writing.
#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <functional>
#include <iostream>
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
namespace sharding_live {

using http_test::IsJson;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

constexpr int kNodes = 6;
constexpr int kShards = 2;
constexpr int kKeys = 600;
// A key request may be forwarded and may pull a dependency (dependency_wait_ms is 2 s).
constexpr milliseconds kKeyTimeout{10000};
// Writes that arrive during a reshard are held (up to ~10 s) and then applied.
constexpr milliseconds kHeldWriteTimeout{25000};
// add-member and reshard answer only once the data has moved.
constexpr milliseconds kShardOpTimeout{60000};
// Broadcast between the replicas of a shard is asynchronous: counts settle shortly after.
constexpr milliseconds kSettleTimeout{10000};
constexpr milliseconds kViewTimeout{20000};
// SPEC §3: each shard holds within ±25% of the mean.
constexpr double kBalanceTolerance = 0.25;
constexpr int kMaxReportedFailures = 10;

constexpr char kNotEnoughNodes[] =
    R"({"message":"Not enough nodes to provide fault-tolerance with the given shard count!"})";
constexpr char kReshardDone[] = R"({"message":"Resharding done successfully"})";
constexpr char kAddedToShard[] = R"({"message":"Node added to shard successfully"})";
constexpr char kNotAMember[] =
    R"({"error":"Node is not a member of any shard","message":"Error in GET"})";

milliseconds Since(steady_clock::time_point start) {
  return std::chrono::duration_cast<milliseconds>(steady_clock::now() - start);
}

std::string ToString(const std::vector<int64_t>& ids) {
  std::string out = "[";
  for (size_t i = 0; i < ids.size(); ++i) out += (i ? "," : "") + std::to_string(ids[i]);
  return out + "]";
}

std::vector<int64_t> Iota(int n) {
  std::vector<int64_t> ids(n);
  for (int i = 0; i < n; ++i) ids[i] = i;
  return ids;
}

// A PUT answer of SPEC §4: 201 "Added successfully" or 200 "Updated successfully", a non-empty
// string causal-metadata and an integer shard-id, nothing else.
struct PutAnswer {
  int status = 0;
  std::string metadata;
  int64_t shard = -1;
};

::testing::AssertionResult ParsePut(const HttpResponse& response, PutAnswer* answer) {
  const auto object = http_test::ParseObject(response.body);
  const bool json = response.Header("content-type").starts_with("application/json");
  if ((response.status != 200 && response.status != 201) || !json || object.isNull() ||
      object->size() != 3 || !object->has("message") || !object->has("causal-metadata") ||
      !object->has("shard-id")) {
    return ::testing::AssertionFailure() << "not a PUT success: " << http_test::Describe(response);
  }
  const Poco::Dynamic::Var message = object->get("message");
  const Poco::Dynamic::Var metadata = object->get("causal-metadata");
  const Poco::Dynamic::Var shard = object->get("shard-id");
  const char* expected = response.status == 201 ? "Added successfully" : "Updated successfully";
  if (!message.isString() || message.extract<std::string>() != expected || !metadata.isString() ||
      metadata.extract<std::string>().empty() || !shard.isInteger()) {
    return ::testing::AssertionFailure()
           << "PUT answer with wrong members: " << http_test::Describe(response);
  }
  answer->status = response.status;
  answer->metadata = metadata.extract<std::string>();
  answer->shard = shard.convert<int64_t>();
  return ::testing::AssertionSuccess();
}

// The sorted members of each shard, by shard id.
using Layout = std::vector<std::vector<std::string>>;

// One key the test wrote and what it must read back.
struct Written {
  std::string key;
  std::string value;
  int node = 0;  // Where it was written.
  int64_t shard = -1;
};

class ShardingTest : public ClusterTest {
 protected:
  ClusterOptions Options() const override {
    ClusterOptions options;
    options.nodes = kNodes;
    options.shard_count = kShards;
    return options;
  }

  std::vector<int> AllNodes() {
    std::vector<int> all(cluster().size());
    for (int i = 0; i < cluster().size(); ++i) all[i] = i;
    return all;
  }

  // PUTs `count` new keys "<prefix><n>" round robin over the first `over` nodes, one causal
  // client passing its metadata along (context_). Every answer must be 201 with a shard-id in
  // [0, shards).
  ::testing::AssertionResult WriteKeys(const std::string& prefix, int count, int over, int shards) {
    const auto start = steady_clock::now();
    for (int n = 0; n < count; ++n) {
      Written w{prefix + std::to_string(n), "value-" + std::to_string(n) + "-" + prefix, n % over};
      const HttpResponse put = PutKey(node(w.node), w.key, w.value, context_, kKeyTimeout);
      PutAnswer answer;
      if (auto ok = ParsePut(put, &answer); !ok) {
        return ok << " (PUT " << w.key << " at node " << w.node + 1 << ")";
      }
      if (answer.status != 201 || answer.shard < 0 || answer.shard >= shards) {
        return ::testing::AssertionFailure()
               << "PUT of new key " << w.key << " at node " << w.node + 1
               << " wants 201 with shard-id in [0," << shards << "): " << http_test::Describe(put);
      }
      w.shard = answer.shard;
      context_ = answer.metadata;
      written_.push_back(std::move(w));
    }
    ReportTime("PUT " + std::to_string(count) + " keys round robin over " + std::to_string(over) +
                   " nodes",
               Since(start));
    return ::testing::AssertionSuccess();
  }

  // GETs every written key at reader(n, key) (which must differ from where it was written),
  // passing the metadata along; each must answer 200 with the written value.
  template <class Reader>
  void ReadEverything(const std::string& phase, Reader reader) {
    const auto start = steady_clock::now();
    int failures = 0;
    for (size_t n = 0; n < written_.size(); ++n) {
      const Written& w = written_[n];
      const int at = reader(static_cast<int>(n), w);
      const HttpResponse get = GetKey(node(at), w.key, context_, kKeyTimeout);
      const auto read = ParseRead(get);
      if (read && read->value == w.value) {
        context_ = read->metadata;
        continue;
      }
      if (++failures <= kMaxReportedFailures) {
        ADD_FAILURE() << phase << ": GET " << w.key << " (written at node " << w.node + 1
                      << ", shard " << w.shard << ") at node " << at + 1 << " wants 200 with "
                      << w.value << ": " << http_test::Describe(get);
      }
    }
    EXPECT_EQ(failures, 0) << phase << ": " << failures << " of " << written_.size()
                           << " keys not read back";
    ReportTime(phase + ": GET " + std::to_string(written_.size()) + " keys", Since(start));
  }

  // Reads each key at a node other than the one that wrote it, varying the pair.
  void ReadEverythingElsewhere(const std::string& phase, int offset) {
    const int size = cluster().size();
    ReadEverything(phase, [&](int n, const Written& w) {
      return (w.node + 1 + (n + offset) % (size - 1)) % size;
    });
  }

  // GET <what> at node `at`, parsed by `parse`; a failure names the answer.
  template <class Parse>
  auto Ask(int at, const std::string& what, Parse parse) -> decltype(parse(HttpResponse{})) {
    const HttpResponse response = GetShardInfo(node(at), what);
    auto parsed = parse(response);
    if (!parsed) {
      ADD_FAILURE() << "GET /key-value-store-shard/" << what << " at node " << at + 1 << ": "
                    << http_test::Describe(response);
    }
    return parsed;
  }

  // Every node (asked now, no waiting: SPEC §3 says shard operations answer only once every
  // node shows the result) reports shard-ids [0..shards), the same members for each shard,
  // every node in exactly one shard of >= 2 members, and a node-shard-id that agrees.
  // Returns the members of each shard as node 1 reports them.
  Layout CheckLayout(int shards, const std::string& phase) {
    SCOPED_TRACE(phase);
    Layout layout(shards);
    for (int at : AllNodes()) {
      const auto ids = Ask(at, "shard-ids", ParseShardIds);
      EXPECT_EQ(ids, Iota(shards))
          << "shard-ids at node " << at + 1 << ": " << (ids ? ToString(*ids) : "(no answer)");
      for (int s = 0; s < shards; ++s) {
        auto members = Ask(at, "shard-id-members/" + std::to_string(s), ParseShardMembers);
        if (!members) continue;
        std::sort(members->begin(), members->end());
        if (at == 0) {
          layout[s] = *members;
        } else {
          EXPECT_EQ(*members, layout[s])
              << "members of shard " << s << " at node " << at + 1
              << " differ from node 1's: " << Join(*members) << " vs " << Join(layout[s]);
        }
      }
    }
    std::map<std::string, int> shard_of;
    for (int s = 0; s < shards; ++s) {
      EXPECT_GE(layout[s].size(), 2u) << "shard " << s << " has members " << Join(layout[s]);
      for (const std::string& member : layout[s]) {
        EXPECT_TRUE(shard_of.emplace(member, s).second)
            << member << " is in shards " << shard_of[member] << " and " << s;
      }
    }
    std::vector<std::string> all_members;
    for (const auto& [member, shard] : shard_of) all_members.push_back(member);
    EXPECT_EQ(all_members, cluster().addresses()) << "the shards' members are not every node";
    for (int at : AllNodes()) {
      const auto id = Ask(at, "node-shard-id", ParseNodeShardId);
      const auto it = shard_of.find(cluster().address(at));
      if (id && it != shard_of.end()) {
        EXPECT_EQ(*id, it->second) << "node " << at + 1 << " says it is in shard " << *id
                                   << " but the members lists put it in " << it->second;
      }
    }
    std::string description;
    for (int s = 0; s < shards; ++s) {
      description += " " + std::to_string(s) + "={" + Join(layout[s]) + "}";
    }
    std::cout << "[ INFO     ] " << phase << ": layout" << description << "\n";
    return layout;
  }

  // Polls until every node reports, for each shard of `layout` (members per shard, as
  // CheckLayout returns it), the same shard-id-key-count, every member of the shard holds exactly
  // that many live keys itself (/metrics kvs_keys_live: no stale copies of keys another shard
  // owns, none missing), and the counts add up to within [min_total, max_total]; then each shard
  // must hold within ±25% of the mean. Returns the counts.
  std::vector<int64_t> CheckKeyCounts(const Layout& layout, int64_t min_total, int64_t max_total,
                                      const std::string& phase) {
    SCOPED_TRACE(phase);
    const int shards = static_cast<int>(layout.size());
    std::map<std::string, int> index_of;
    for (int i : AllNodes()) index_of[cluster().address(i)] = i;
    std::vector<std::vector<std::optional<int64_t>>> seen;  // Per shard, asked at each node.
    std::vector<std::vector<std::optional<double>>> held;   // Per shard, each member's own.
    std::vector<int64_t> counts(shards, -1);
    int64_t total = 0;
    const PollResult settled = Eventually(
        [&] {
          seen.assign(shards, {});
          held.assign(shards, {});
          bool agree = true;
          total = 0;
          for (int s = 0; s < shards; ++s) {
            for (int at : AllNodes()) {
              seen[s].push_back(ParseShardKeyCount(
                  GetShardInfo(node(at), "shard-id-key-count/" + std::to_string(s))));
              agree = agree && seen[s].back() && seen[s].back() == seen[s].front();
            }
            counts[s] = seen[s].front().value_or(-1);
            total += std::max<int64_t>(counts[s], 0);
            for (const std::string& member : layout[s]) {
              const auto it = index_of.find(member);
              held[s].push_back(it == index_of.end()
                                    ? std::nullopt
                                    : GetMetric(node(it->second), "kvs_keys_live"));
              agree = agree && held[s].back() == static_cast<double>(counts[s]);
            }
          }
          return agree && total >= min_total && total <= max_total;
        },
        kSettleTimeout, milliseconds(200));
    std::string described;
    for (int s = 0; s < shards; ++s) {
      described += "  shard " + std::to_string(s) + " count asked at node 1..n:";
      for (const auto& count : seen[s]) {
        described += " " + (count ? std::to_string(*count) : std::string("-"));
      }
      described += "; kvs_keys_live of its members:";
      for (size_t m = 0; m < layout[s].size(); ++m) {
        described +=
            " " + layout[s][m] + "=" +
            (m < held[s].size() && held[s][m] ? std::to_string(static_cast<int64_t>(*held[s][m]))
                                              : std::string("-"));
      }
      described += "\n";
    }
    EXPECT_TRUE(settled) << "shard key counts did not settle (every node agreeing, every member "
                            "holding exactly its shard's keys, total in ["
                         << min_total << "," << max_total << "]) within " << kSettleTimeout.count()
                         << " ms:\n"
                         << described;
    if (settled.attempts > 1) {
      ReportTime(phase + ": key counts settling", settled.elapsed);
    }
    std::cout << "[ INFO     ] " << phase << ": key counts " << ToString(counts) << " (total "
              << total << ")\n";
    if (!settled) return counts;
    const double mean = static_cast<double>(total) / shards;
    for (int s = 0; s < shards; ++s) {
      EXPECT_GE(counts[s], mean * (1 - kBalanceTolerance)) << "shard " << s << " of " << total;
      EXPECT_LE(counts[s], mean * (1 + kBalanceTolerance)) << "shard " << s << " of " << total;
    }
    return counts;
  }

  HttpResponse Reshard(int at, int shard_count) {
    return Send(node(at), "PUT", "/key-value-store-shard/reshard",
                R"({"shard-count":)" + std::to_string(shard_count) + "}", kShardOpTimeout);
  }

  std::vector<Written> written_;
  std::string context_;  // The causal client's latest metadata.
};

// SPEC §3/§4: keys spread evenly over the shards, any node serves any key, any node answers
// for any shard, and a reshard beyond what the nodes can hold is refused.
TEST_F(ShardingTest, KeysSpreadEvenlyAndEveryNodeServesEveryKey) {
  ASSERT_TRUE(WriteKeys("key-", kKeys, kNodes, kShards));
  ReadEverythingElsewhere("six nodes, two shards", 0);

  const auto layout = CheckLayout(kShards, "initial layout");
  for (int s = 0; s < kShards; ++s) {
    EXPECT_EQ(layout[s].size(), 3u) << "shard " << s << ": " << Join(layout[s]);
  }
  // SPEC §1: sorted VIEW dealt round robin, node i -> shard i mod N.
  const std::vector<std::string> sorted = cluster().addresses();
  for (size_t i = 0; i < sorted.size(); ++i) {
    const int s = static_cast<int>(i % kShards);
    EXPECT_TRUE(std::find(layout[s].begin(), layout[s].end(), sorted[i]) != layout[s].end())
        << sorted[i] << " (position " << i << " in the sorted VIEW) should start in shard " << s;
  }

  const auto counts = CheckKeyCounts(layout, kKeys, kKeys, "after 600 PUTs");
  // Each PUT named its owning shard; the counts must be exactly those.
  std::vector<int64_t> named(kShards, 0);
  for (const Written& w : written_) ++named[w.shard];
  EXPECT_EQ(counts, named) << "shard-id-key-count differs from the shard-ids the PUTs answered";

  // 2N > nodes: refused, layout unchanged (4 shards need 8 nodes; 10 need 20).
  for (int shard_count : {10, 4}) {
    EXPECT_TRUE(IsJson(Reshard(shard_count % 3, shard_count), 400, kNotEnoughNodes))
        << "reshard to " << shard_count << " with " << kNodes << " nodes";
  }
  CheckLayout(kShards, "after refused reshards");
}

// SPEC §1/§3: a node started without SHARD_COUNT is in no shard, joins every view, and after
// add-member holds its shard's keys; then reshard to 3 moves every key and keeps them all.
TEST_F(ShardingTest, AddedNodeGetsItsShardsKeysAndReshardToThreeKeepsEveryKey) {
  ASSERT_TRUE(WriteKeys("key-", kKeys, kNodes, kShards));
  const auto before = CheckLayout(kShards, "before add-member");
  ASSERT_EQ(before[1].size(), 3u);
  CheckKeyCounts(before, kKeys, kKeys, "before add-member");
  int64_t in_shard_1 = 0;
  for (const Written& w : written_) in_shard_1 += w.shard == 1;

  const auto start = steady_clock::now();
  int added = -1;
  ASSERT_TRUE(cluster().AddNode({.with_shard_count = false, .extra_env = {}}, &added));
  const int n7 = added;
  ASSERT_EQ(n7, kNodes);
  const PollResult joined = WaitForViews(AllNodes(), n7, /*present=*/true, kViewTimeout);
  ASSERT_TRUE(joined) << "node 7 not in every view\n" << DescribeViews(AllNodes());
  ReportTime("node 7 start (no SHARD_COUNT) to being in every view", Since(start));
  EXPECT_EQ(GetView(node(n7)), cluster().addresses()) << "node 7's own view";

  // Unassigned, but it has adopted the cluster's configuration and forwards (SPEC §1, §4).
  EXPECT_TRUE(IsJson(GetShardInfo(node(n7), "node-shard-id"), 404, kNotAMember));
  std::optional<std::vector<int64_t>> ids;
  const PollResult adopted = Eventually(
      [&] {
        ids = ParseShardIds(GetShardInfo(node(n7), "shard-ids"));
        return ids == Iota(kShards);
      },
      kViewTimeout, milliseconds(100));
  EXPECT_TRUE(adopted) << "node 7's shard-ids: " << (ids ? ToString(*ids) : "(no answer)");
  int forwarded = 0;
  for (int n = 0; n < 20; ++n) {
    const Written& w = written_[n * 29 % written_.size()];
    const HttpResponse get = GetKey(node(n7), w.key, context_, kKeyTimeout);
    const auto read = ParseRead(get);
    if (read && read->value == w.value) {
      context_ = read->metadata;
      ++forwarded;
    } else if (n == forwarded) {  // Report the first failure only.
      ADD_FAILURE() << "GET " << w.key << " at unassigned node 7: " << http_test::Describe(get);
    }
  }
  EXPECT_EQ(forwarded, 20) << "reads forwarded by unassigned node 7";

  const auto add_start = steady_clock::now();
  const HttpResponse add = Send(node(2), "PUT", "/key-value-store-shard/add-member/1",
                                http_test::AddressBody(cluster().address(n7)), kShardOpTimeout);
  ASSERT_TRUE(IsJson(add, 200, kAddedToShard)) << "add-member/1 of node 7 at node 3";
  ReportTime("add-member of node 7 to shard 1", Since(add_start));

  // No waiting: 200 means node 7 holds the shard's data and every node shows it.
  const HttpResponse own_id = GetShardInfo(node(n7), "node-shard-id");
  EXPECT_EQ(ParseNodeShardId(own_id), 1) << http_test::Describe(own_id);
  for (int at : AllNodes()) {
    const auto members = Ask(at, "shard-id-members/1", ParseShardMembers);
    EXPECT_TRUE(members && std::find(members->begin(), members->end(), cluster().address(n7)) !=
                               members->end())
        << "shard 1's members at node " << at + 1 << ": " << (members ? Join(*members) : "-");
  }
  const auto n7_count = Ask(n7, "shard-id-key-count/1", ParseShardKeyCount);
  EXPECT_EQ(n7_count, in_shard_1) << "node 7's count of shard 1; the PUTs put " << in_shard_1
                                  << " keys there";
  // kvs_keys_live counts node 7's own store (a count could be fetched from a peer).
  const auto n7_live = GetMetric(node(n7), "kvs_keys_live");
  EXPECT_EQ(n7_live, static_cast<double>(in_shard_1)) << "node 7's kvs_keys_live";
  for (int peer : AllNodes()) {
    const std::string address = cluster().address(peer);
    if (std::find(before[1].begin(), before[1].end(), address) == before[1].end()) continue;
    EXPECT_EQ(GetMetric(node(peer), "kvs_keys_live"), n7_live)
        << "kvs_keys_live of node 7 and of its shard 1 peer " << address;
  }
  const auto layout = CheckLayout(kShards, "after add-member");
  EXPECT_EQ(layout[0].size(), 3u);
  EXPECT_EQ(layout[1].size(), 4u);
  CheckKeyCounts(layout, kKeys, kKeys, "after add-member");
  // Node 7 serves shard 1's keys itself now.
  int read_at_7 = 0;
  int failed_at_7 = 0;
  for (const Written& w : written_) {
    if (w.shard != 1) continue;
    const HttpResponse get = GetKey(node(n7), w.key, context_, kKeyTimeout);
    const auto read = ParseRead(get);
    if (read && read->value == w.value) {
      context_ = read->metadata;
      ++read_at_7;
    } else if (++failed_at_7 == 1) {  // Report the first failure only.
      ADD_FAILURE() << "GET " << w.key
                    << " at node 7 after add-member: " << http_test::Describe(get);
    }
  }
  EXPECT_EQ(read_at_7, in_shard_1) << "shard 1's keys read at node 7";

  EXPECT_TRUE(IsJson(Reshard(n7, 10), 400, kNotEnoughNodes)) << "reshard to 10 with 7 nodes";
  EXPECT_TRUE(IsJson(Reshard(0, 4), 400, kNotEnoughNodes)) << "reshard to 4 with 7 nodes";

  const auto reshard_start = steady_clock::now();
  const HttpResponse reshard = Reshard(4, 3);
  ASSERT_TRUE(IsJson(reshard, 200, kReshardDone)) << "reshard to 3 at node 5";
  ReportTime("reshard 2 -> 3 shards (7 nodes, 600 keys)", Since(reshard_start));

  const auto three = CheckLayout(3, "after reshard to 3");
  size_t members = 0;
  for (const auto& shard : three) members += shard.size();
  EXPECT_EQ(members, 7u);
  CheckKeyCounts(three, kKeys, kKeys, "after reshard to 3");
  // Different readers than before (offset), node 7 included.
  ReadEverythingElsewhere("after reshard to 3", 3);
}

// SPEC §3: reshard moves every key, and writes that arrive while it runs are applied, not lost.
// Several causal clients write new keys (each key twice: 201 then 200) round robin over every
// node while the store reshards 2 -> 3 -> 2 -> 3; after each reshard every acknowledged write
// must be readable with its last acknowledged value, and the counts must hold each key once.
class ReshardUnderWritesTest : public ShardingTest {
 protected:
  static constexpr int kPreloaded = 600;
  static constexpr int kWriters = 4;  // <= 10: a key's writer is the digit in "live<w>-".
  static constexpr int kWritesBeforeReshard = 20;  // Per writer.
  static constexpr int kWritesAfterReshard = 20;   // Per writer, once the reshard answered.
  static constexpr int kMaxWrites = 2000;          // Per writer and reshard.
  static constexpr milliseconds kWriterBudget{30000};

  struct Attempt {
    std::string key;
    std::string value;
    HttpResponse answer;
    milliseconds took{0};
    bool during_reshard = false;  // Sent or answered while the reshard request was open.
  };

  // One causal client: its metadata, its next write, and its history.
  struct Writer {
    std::string context;
    int next = 0;
    std::vector<Attempt> attempts;  // Of the current round.
  };

  // Reshards from `from` to `to` shards at node `at` while kWriters clients write, then checks
  // the answers, the layout, the counts and that everything acknowledged is readable.
  void ReshardUnderWrites(int from, int to, int at) {
    ChangeUnderWrites(
        "reshard " + std::to_string(from) + " -> " + std::to_string(to), from, to,
        [&] { return Reshard(at, to); }, kReshardDone);
  }

  // Runs `change` (a layout change from `from` to `to` shards, answering `want`) while
  // kWriters clients write, then checks as ReshardUnderWrites says.
  void ChangeUnderWrites(const std::string& phase, int from, int to,
                         const std::function<HttpResponse()>& change, const char* want) {
    SCOPED_TRACE(phase);
    std::vector<Endpoint> endpoints;
    for (int i : AllNodes()) endpoints.push_back(node(i));
    std::atomic<int> done{0};
    std::atomic<bool> stop{false};
    std::atomic<bool> resharding{false};
    std::vector<std::thread> threads;
    for (int w = 0; w < kWriters; ++w) {
      Writer& writer = writers_[w];
      writer.attempts.clear();
      threads.emplace_back([&, w] {
        const auto start = steady_clock::now();
        for (int n = 0; !stop && n < kMaxWrites && Since(start) < kWriterBudget; ++n) {
          const int round = writer.next++;
          Attempt a;
          a.key = "live" + std::to_string(w) + "-" + std::to_string(round / 2);
          a.value = "w" + std::to_string(w) + "-" + std::to_string(round);
          a.during_reshard = resharding;
          const auto sent = steady_clock::now();
          a.answer = PutKey(endpoints[(round + w) % endpoints.size()], a.key, a.value,
                            writer.context, kHeldWriteTimeout);
          a.took = Since(sent);
          a.during_reshard = a.during_reshard || resharding;
          if (const auto object = http_test::ParseObject(a.answer.body);
              (a.answer.status == 200 || a.answer.status == 201) && !object.isNull() &&
              object->has("causal-metadata") && object->get("causal-metadata").isString()) {
            writer.context = object->getValue<std::string>("causal-metadata");
          }
          writer.attempts.push_back(std::move(a));
          ++done;
        }
      });
    }
    const PollResult warmed = Eventually([&] { return done >= kWriters * kWritesBeforeReshard; },
                                         milliseconds(20000), milliseconds(2));
    const auto reshard_start = steady_clock::now();
    resharding = true;
    const HttpResponse reshard = change();
    resharding = false;
    const milliseconds reshard_took = Since(reshard_start);
    const int done_at_reshard = done;
    const PollResult after =
        Eventually([&] { return done >= done_at_reshard + kWriters * kWritesAfterReshard; },
                   milliseconds(30000), milliseconds(2));
    stop = true;
    for (auto& thread : threads) thread.join();
    for (Writer& writer : writers_) writer.next += writer.next % 2;  // Next round: a fresh key.

    EXPECT_TRUE(warmed) << "the writers did only " << done << " writes before the reshard";
    ASSERT_TRUE(IsJson(reshard, 200, want)) << phase << " after " << reshard_took.count() << " ms";
    ReportTime(phase + " under " + std::to_string(kWriters) + " writers", reshard_took);
    EXPECT_TRUE(after) << "the writers did only " << done - done_at_reshard
                       << " writes after the reshard";

    // Every write answered 201 (first write of its key) or 200, with a shard-id of the old or
    // the new layout; record what must be readable.
    int during = 0;
    int failures = 0;
    int attempts = 0;
    milliseconds slowest{0};
    for (const Writer& writer : writers_) {
      for (const Attempt& a : writer.attempts) {
        ++attempts;
        if (a.during_reshard) {
          ++during;
          slowest = std::max(slowest, a.took);
        }
        const bool new_key = attempted_.insert(a.key).second;
        const bool exists = last_acked_.contains(a.key);
        PutAnswer answer;
        if (const auto ok = ParsePut(a.answer, &answer); !ok) {
          if (++failures <= kMaxReportedFailures) {
            ADD_FAILURE() << "PUT " << a.key << "=" << a.value << " after " << a.took.count()
                          << " ms" << (a.during_reshard ? " (during the reshard)" : "") << ": "
                          << ok.message();
          }
          maybe_[a.key] = a.value;  // Unacknowledged: it may or may not have been applied.
          continue;
        }
        // After an unacknowledged attempt the key may or may not exist: either answer is right.
        if ((new_key || exists) && answer.status != (new_key ? 201 : 200) &&
            ++failures <= kMaxReportedFailures) {
          ADD_FAILURE() << "PUT " << a.key << "=" << a.value << " answered " << answer.status
                        << ", wants " << (new_key ? "201 (new key)" : "200 (update)")
                        << (a.during_reshard ? " (during the reshard)" : "");
        }
        if ((answer.shard < 0 || answer.shard >= std::max(from, to)) &&
            ++failures <= kMaxReportedFailures) {
          ADD_FAILURE() << "PUT " << a.key << " answered shard-id " << answer.shard;
        }
        last_acked_[a.key] = a.value;
        maybe_.erase(a.key);
      }
    }
    EXPECT_EQ(failures, 0) << failures << " bad answers among " << attempts << " writes";
    std::cout << "[ INFO     ] " << phase << ": " << attempts << " writes by " << kWriters
              << " writers, " << during << " of them open while the reshard ran (slowest "
              << slowest.count() << " ms)\n";

    const Layout layout = CheckLayout(to, "after " + phase);
    const int64_t acked = kPreloaded + static_cast<int64_t>(last_acked_.size());
    int64_t possible = acked;
    for (const auto& [key, value] : maybe_) possible += !last_acked_.contains(key);
    CheckKeyCounts(layout, acked, possible, "after " + phase);

    // Preloaded keys: their value. Writer keys, each read with its writer's metadata: the last
    // acknowledged value, or a later write whose answer was lost.
    ReadEverythingElsewhere("after " + phase, to);
    int wrong = 0;
    int n = 0;
    for (const auto& [key, value] : last_acked_) {
      const int w = key[4] - '0';  // "live<w>-..."
      const int read_at = n++ % cluster().size();
      const HttpResponse get = GetKey(node(read_at), key, writers_[w].context, kKeyTimeout);
      const auto read = ParseRead(get);
      const auto later = maybe_.find(key);
      if (read &&
          (read->value == value || (later != maybe_.end() && read->value == later->second))) {
        writers_[w].context = read->metadata;
        continue;
      }
      if (++wrong <= kMaxReportedFailures) {
        ADD_FAILURE() << "acknowledged write " << key << "=" << value << " read at node "
                      << read_at + 1 << ": " << http_test::Describe(get);
      }
    }
    EXPECT_EQ(wrong, 0) << wrong << " of " << last_acked_.size()
                        << " acknowledged writer keys not readable with their last value";
  }

  std::array<Writer, kWriters> writers_;
  std::map<std::string, std::string> last_acked_;  // key -> value
  std::map<std::string, std::string> maybe_;       // key -> later unacknowledged value
  std::set<std::string> attempted_;
};

TEST_F(ReshardUnderWritesTest, WritesDuringReshardAreNeverLost) {
  ASSERT_TRUE(WriteKeys("pre-", kPreloaded, kNodes, kShards));
  for (Writer& writer : writers_) writer.context = context_;
  const int shard_counts[] = {2, 3, 2, 3};
  for (size_t i = 1; i < std::size(shard_counts); ++i) {
    ReshardUnderWrites(shard_counts[i - 1], shard_counts[i], static_cast<int>(i) % kNodes);
    if (HasFatalFailure()) return;
  }
}

// add-member while clients write: the new member loads its shard's data (streamed) while the
// others keep taking writes, answers 200 only once it holds them, and then serves every
// acknowledged write itself (reads go round robin over every node, the new one included).
TEST_F(ReshardUnderWritesTest, WritesDuringAddMemberAreNeverLost) {
  ASSERT_TRUE(WriteKeys("pre-", kPreloaded, kNodes, kShards));
  for (Writer& writer : writers_) writer.context = context_;
  int added = -1;
  ASSERT_TRUE(cluster().AddNode({.with_shard_count = false, .extra_env = {}}, &added));
  const PollResult joined = WaitForViews(AllNodes(), added, /*present=*/true, kViewTimeout);
  ASSERT_TRUE(joined) << "the new node is not in every view\n" << DescribeViews(AllNodes());
  ChangeUnderWrites(
      "add-member of node " + std::to_string(added + 1) + " to shard 1", kShards, kShards,
      [&] {
        return Send(node(1), "PUT", "/key-value-store-shard/add-member/1",
                    http_test::AddressBody(cluster().address(added)), kShardOpTimeout);
      },
      kAddedToShard);
  const HttpResponse own_id = GetShardInfo(node(added), "node-shard-id");
  EXPECT_EQ(ParseNodeShardId(own_id), 1) << http_test::Describe(own_id);
}

}  // namespace sharding_live
}  // namespace kvs::cluster_test
