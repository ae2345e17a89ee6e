// Request ids across forwarding on four real nodes in two shards (issue 13, "Logs"): a request
// sent to a node of the other shard is forwarded, and its id shows in both nodes' logs (access
// lines, kvs.log.requests=all) and in the answer; with the owning shard's nodes killed, the
// forwarding failure is counted in kvs_forwarding_failures_total and logged with the id.
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/StreamCopier.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cluster_fixture.h"
#include "http_client.h"

namespace kvs::cluster_test {
// Named, not anonymous: the live tests build as unity sources (KVS_UNITY), where the
// file-local names of different files would clash.
namespace request_id_live {

using std::chrono::milliseconds;

constexpr int kNodes = 4;
constexpr int kShards = 2;
constexpr milliseconds kLogTimeout{10000};

// One request to `endpoint` carrying X-Request-Id: `id`, on a fresh connection (bounded by
// kRequestTimeout; HTTPS when the harness speaks it).
HttpResponse SendWithId(const Endpoint& endpoint, const std::string& method,
                        const std::string& target, const std::string& body, const std::string& id) {
  HttpResponse out;
  try {
    auto session = http_test::MakeSession(endpoint.host, endpoint.port);
    session->setTimeout(Poco::Timespan(kRequestTimeout.count() * 1000));
    Poco::Net::HTTPRequest request(method, target, Poco::Net::HTTPMessage::HTTP_1_1);
    request.setContentType("application/json");
    request.setContentLength(static_cast<std::streamsize>(body.size()));
    request.set("X-Request-Id", id);
    session->sendRequest(request) << body;
    Poco::Net::HTTPResponse response;
    std::istream& in = session->receiveResponse(response);
    Poco::StreamCopier::copyToString(in, out.body);
    out.status = static_cast<int>(response.getStatus());
    for (const auto& [name, value] : response) {
      std::string lower = name;
      for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      out.headers[lower] = value;
    }
  } catch (const Poco::Exception& e) {
    out.error = e.displayText();
  }
  return out;
}

class RequestIdClusterTest : public ClusterTest {
 protected:
  ClusterOptions Options() const override {
    ClusterOptions options;
    options.nodes = kNodes;
    options.shard_count = kShards;
    options.extra_env = {{"KVS_LOG_REQUESTS", "all"}};
    return options;
  }

  // Every stderr line node `i` wrote (all its runs) that contains `needle`.
  std::vector<std::string> LogLines(int i, const std::string& needle) {
    std::vector<std::string> out;
    const std::string prefix = "node" + std::to_string(i + 1) + "-run";
    for (const auto& entry : std::filesystem::directory_iterator(cluster().log_dir())) {
      if (!entry.path().filename().string().starts_with(prefix)) continue;
      std::ifstream in(entry.path() / "stderr.log");
      for (std::string line; std::getline(in, line);) {
        if (line.find(needle) != std::string::npos) out.push_back(line);
      }
    }
    return out;
  }

  // Polls node `i`'s log until a line contains both `a` and `b`; that line, or "".
  std::string WaitForLogLine(int i, const std::string& a, const std::string& b) {
    const auto deadline = std::chrono::steady_clock::now() + kLogTimeout;
    while (true) {
      for (const std::string& line : LogLines(i, a)) {
        if (line.find(b) != std::string::npos) return line;
      }
      if (std::chrono::steady_clock::now() >= deadline) return "";
      std::this_thread::sleep_for(milliseconds(50));
    }
  }

  // The shard of node `i`, or -1.
  int ShardOf(int i) {
    const auto shard = ParseNodeShardId(GetShardInfo(node(i), "node-shard-id"));
    return shard ? static_cast<int>(*shard) : -1;
  }
};

TEST_F(RequestIdClusterTest, IdFollowsAForwardedRequestAndItsFailure) {
  const int entry = 0;
  const int entry_shard = ShardOf(entry);
  ASSERT_GE(entry_shard, 0);
  std::vector<int> others;
  for (int i = 0; i < kNodes; ++i) {
    const int shard = ShardOf(i);
    ASSERT_GE(shard, 0) << "node " << i + 1;
    if (shard != entry_shard) others.push_back(i);
  }
  ASSERT_EQ(others.size(), 2u);

  // A key the other shard owns, written through node 1: the answer names the shard.
  std::string key;
  std::string id;
  for (int k = 0; k < 64 && key.empty(); ++k) {
    const std::string candidate = "rid-key-" + std::to_string(k);
    const std::string candidate_id = "cluster-put-" + std::to_string(k);
    const HttpResponse put = SendWithId(node(entry), "PUT", "/key-value-store/" + candidate,
                                        http_test::PutBody("v"), candidate_id);
    ASSERT_EQ(put.status, 201) << http_test::Describe(put);
    EXPECT_EQ(put.Header("x-request-id"), candidate_id);
    const auto object = http_test::ParseObject(put.body);
    ASSERT_FALSE(object.isNull()) << put.body;
    if (object->getValue<int>("shard-id") != entry_shard) {
      key = candidate;
      id = candidate_id;
    }
  }
  ASSERT_FALSE(key.empty()) << "no key of the other shard among 64";

  // The entry node logged it as forwarded, to a node of the other shard, which logged the
  // same id as served there.
  const std::string entry_line = WaitForLogLine(entry, "request_id=" + id, "forwarded to ");
  ASSERT_FALSE(entry_line.empty()) << cluster().LogTails(20);
  EXPECT_NE(entry_line.find("kvs.access"), std::string::npos) << entry_line;
  EXPECT_NE(entry_line.find("PUT /key-value-store/" + key + " 201"), std::string::npos)
      << entry_line;
  int owner = -1;
  for (int i : others) {
    if (entry_line.find("forwarded to " + cluster().address(i)) != std::string::npos) owner = i;
  }
  ASSERT_GE(owner, 0) << "forwarded to no node of the other shard: " << entry_line;
  const std::string owner_line = WaitForLogLine(owner, "request_id=" + id, "kvs.access");
  ASSERT_FALSE(owner_line.empty()) << cluster().LogTails(20);
  EXPECT_NE(owner_line.find("local (forwarded here"), std::string::npos) << owner_line;
  // Nobody else served it.
  for (int i = 0; i < kNodes; ++i) {
    if (i != entry && i != owner) {
      EXPECT_TRUE(LogLines(i, "request_id=" + id).empty()) << "node " << i + 1;
    }
  }

  // The owning shard gone: the entry node cannot forward; it answers 503, counts it and logs
  // the id.
  const double failures_before =
      GetMetric(node(entry), "kvs_forwarding_failures_total").value_or(-1);
  ASSERT_EQ(failures_before, 0);
  ASSERT_TRUE(cluster().KillNodes(others));
  const std::string fail_id = "cluster-fail-1";
  const HttpResponse get = SendWithId(node(entry), "GET", "/key-value-store/" + key, "{}", fail_id);
  EXPECT_EQ(get.status, 503) << http_test::Describe(get);
  EXPECT_EQ(get.Header("x-request-id"), fail_id);
  EXPECT_EQ(GetMetric(node(entry), "kvs_forwarding_failures_total").value_or(-1), 1);
  const std::string failure_line = WaitForLogLine(entry, "request_id=" + fail_id, "cannot forward");
  EXPECT_FALSE(failure_line.empty()) << cluster().LogTails(20);
  EXPECT_NE(failure_line.find(key), std::string::npos) << failure_line;
  const std::string access_line = WaitForLogLine(entry, "request_id=" + fail_id, "kvs.access");
  EXPECT_NE(access_line.find(" 503 "), std::string::npos) << access_line;
  EXPECT_NE(
      access_line.find("forwarded to shard " + std::to_string(1 - entry_shard) + ": none answered"),
      std::string::npos)
      << access_line;
}

}  // namespace request_id_live
}  // namespace kvs::cluster_test
