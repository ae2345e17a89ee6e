// The status page (GET /, issue 13) in a real browser: headless Chromium, driven over the
// DevTools protocol, loads it from a node of a live 6-node, 2-shard cluster; the rendered DOM
// must show every node with its shard and key count, every shard with its members and key
// count, the ring, the request rate; a killed node must show as down while the page keeps
// working. Any console error, uncaught exception or failed load fails the test. Screenshots go
// to <build>/status-page.png and <build>/status-page-node-down.png (CI keeps them as artifacts).
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "Poco/JSON/Array.h"
#include "Poco/JSON/Object.h"
#include "Poco/JSON/Parser.h"
#include "cluster_fixture.h"
#include "headless_browser.h"
#include "http_client.h"
#include "node_client.h"
#include "polling.h"
#include "server_process.h"

namespace kvs::cluster_test {
// Named, not anonymous: the live tests build as unity sources (KVS_UNITY), where the
// file-local names of different files would clash.
namespace status_page_live {

using std::chrono::milliseconds;

constexpr int kNodes = 6;
constexpr int kShards = 2;
constexpr int kKeys = 60;

// What the page shows, read from its DOM as one JSON value.
constexpr char kReadDom[] = R"JS(JSON.stringify({
  rows: [...document.querySelectorAll("tr[data-node]")].map((r) => ({
    node: r.dataset.node, shard: r.dataset.shard ?? "", keys: r.dataset.keys ?? "",
    up: r.dataset.up, ready: r.dataset.ready ?? ""})),
  shards: [...document.querySelectorAll(".shard[data-shard-id]")].map((s) => ({
    id: s.dataset.shardId, members: s.dataset.members, keys: s.dataset.keys})),
  ringArcs: document.querySelectorAll("#ring path[data-shard-id]").length,
  nodeCount: document.getElementById("node-count").textContent,
  shardCount: document.getElementById("shard-count").textContent,
  keyCount: document.getElementById("key-count").textContent,
  rps: document.getElementById("rps").textContent,
  error: document.getElementById("error").textContent
}))JS";

struct Row {
  std::string shard, keys, up, ready;
};
struct Page {
  std::map<std::string, Row> rows;                      // by node address
  std::map<std::string, std::set<std::string>> shards;  // shard id -> members
  std::map<std::string, std::string> shard_keys;        // shard id -> keys shown
  int ring_arcs = 0;
  std::string node_count, shard_count, key_count, rps, error;
  std::string raw;
};

std::optional<Page> ReadPage(HeadlessBrowser& browser, std::string* error) {
  const auto value = browser.Evaluate(kReadDom, error);
  if (!value) return std::nullopt;
  Page page;
  page.raw = value->toString();
  try {
    const auto object = Poco::JSON::Parser().parse(page.raw).extract<Poco::JSON::Object::Ptr>();
    const auto rows = object->getArray("rows");
    for (size_t i = 0; i < rows->size(); ++i) {
      const auto r = rows->getObject(static_cast<unsigned>(i));
      page.rows[r->getValue<std::string>("node")] = {
          r->getValue<std::string>("shard"), r->getValue<std::string>("keys"),
          r->getValue<std::string>("up"), r->getValue<std::string>("ready")};
    }
    const auto shards = object->getArray("shards");
    for (size_t i = 0; i < shards->size(); ++i) {
      const auto s = shards->getObject(static_cast<unsigned>(i));
      std::set<std::string> members;
      std::stringstream list(s->getValue<std::string>("members"));
      for (std::string m; std::getline(list, m, ',');) members.insert(m);
      page.shards[s->getValue<std::string>("id")] = members;
      page.shard_keys[s->getValue<std::string>("id")] = s->getValue<std::string>("keys");
    }
    page.ring_arcs = object->getValue<int>("ringArcs");
    page.node_count = object->getValue<std::string>("nodeCount");
    page.shard_count = object->getValue<std::string>("shardCount");
    page.key_count = object->getValue<std::string>("keyCount");
    page.rps = object->getValue<std::string>("rps");
    page.error = object->getValue<std::string>("error");
  } catch (const Poco::Exception& e) {
    *error = "unexpected DOM summary " + page.raw + ": " + e.displayText();
    return std::nullopt;
  }
  return page;
}

std::string JoinErrors(const std::vector<std::string>& errors) {
  std::string out;
  for (const std::string& e : errors) out += "\n  " + e;
  return out;
}

class StatusPageTest : public ClusterTest {
 protected:
  ClusterOptions Options() const override {
    ClusterOptions options;
    options.nodes = kNodes;
    options.shard_count = kShards;
    return options;
  }

  std::string PageUrl(int i) {
    return std::string(http_test::ClientTlsOn() ? "https://" : "http://") + node(i).ToString() +
           "/";
  }
};

TEST_F(StatusPageTest, AHeadlessBrowserSeesEveryNodeShardAndCountAndNoError) {
  // Keys through every node, one causal client.
  std::string context;
  for (int n = 0; n < kKeys; ++n) {
    const HttpResponse put =
        PutKey(node(n % kNodes), "page-key-" + std::to_string(n), "v", context, milliseconds(5000));
    ASSERT_EQ(put.status, 201) << http_test::Describe(put);
    context = http_test::ParseObject(put.body)->optValue<std::string>("causal-metadata", "");
  }
  // The truth, from the SPEC endpoints.
  std::map<std::string, std::set<std::string>> members;
  std::map<std::string, int64_t> shard_keys;
  std::map<std::string, std::string> shard_of;
  int64_t total_keys = 0;
  for (int s = 0; s < kShards; ++s) {
    const auto list = ParseShardMembers(
        GetShardInfo(node(0), "shard-id-members/" + std::to_string(s), milliseconds(5000)));
    ASSERT_TRUE(list.has_value());
    members[std::to_string(s)] = std::set<std::string>(list->begin(), list->end());
    for (const std::string& m : *list) shard_of[m] = std::to_string(s);
  }
  // A shard's key count comes from one of its replicas, which may still be applying the last
  // broadcasts: counted again until they add up (bounded).
  const auto counted = Eventually(
      [&] {
        total_keys = 0;
        for (int s = 0; s < kShards; ++s) {
          const auto count = GetKeyCount(node(0), s);
          if (!count) return false;
          shard_keys[std::to_string(s)] = *count;
          total_keys += *count;
        }
        return total_keys == kKeys;
      },
      milliseconds(10000));
  ASSERT_TRUE(counted) << total_keys << " keys counted of " << kKeys;

  std::string error;
  auto browser = HeadlessBrowser::Start(&error);
  ASSERT_NE(browser, nullptr) << error;
  ASSERT_TRUE(browser->Navigate(PageUrl(0), &error)) << error << "\n" << browser->Log();

  // The page polls once a second: wait until it shows the converged cluster.
  Page page;
  const auto shown = Eventually(
      [&] {
        const auto read = ReadPage(*browser, &error);
        if (!read) return false;
        page = *read;
        if (page.rows.size() != static_cast<size_t>(kNodes)) return false;
        for (const auto& [address, row] : page.rows) {
          if (row.up != "true" || row.ready != "true") return false;
          if (shard_of.count(address) == 0 || row.shard != shard_of[address]) return false;
          if (row.keys != std::to_string(shard_keys[row.shard])) return false;
        }
        return std::stod(page.rps.empty() || page.rps == "…" ? "0" : page.rps) > 0;
      },
      milliseconds(20000), milliseconds(250));
  EXPECT_TRUE(shown) << "the page never showed all " << kNodes
                     << " nodes up and ready with their shards' key counts and a request rate: "
                     << page.raw << " " << error;
  EXPECT_EQ(page.shards, members) << page.raw;
  for (const auto& [id, keys] : shard_keys) {
    EXPECT_EQ(page.shard_keys[id], std::to_string(keys)) << "shard " << id << ": " << page.raw;
  }
  EXPECT_EQ(page.ring_arcs, kShards);
  EXPECT_EQ(page.node_count, std::to_string(kNodes));
  EXPECT_EQ(page.shard_count, std::to_string(kShards));
  EXPECT_EQ(page.key_count, std::to_string(total_keys));
  EXPECT_EQ(page.error, "");

  const std::filesystem::path shots = KVS_BINARY_DIR;
  EXPECT_TRUE(browser->Screenshot(shots / "status-page.png", &error)) << error;

  // A node goes down: the page says so and goes on working.
  const std::string victim = node(kNodes - 1).ToString();
  ASSERT_TRUE(cluster().Kill(kNodes - 1));
  const auto down = Eventually(
      [&] {
        const auto read = ReadPage(*browser, &error);
        if (!read) return false;
        page = *read;
        return page.rows.count(victim) == 1 && page.rows[victim].up == "false" &&
               page.rows.size() == static_cast<size_t>(kNodes);
      },
      milliseconds(20000), milliseconds(250));
  EXPECT_TRUE(down) << victim << " never showed as down: " << page.raw << " " << error;
  EXPECT_EQ(page.error, "");
  EXPECT_TRUE(browser->Screenshot(shots / "status-page-node-down.png", &error)) << error;

  EXPECT_TRUE(browser->errors().empty())
      << "the page produced errors:" << JoinErrors(browser->errors());
}

}  // namespace status_page_live
}  // namespace kvs::cluster_test
