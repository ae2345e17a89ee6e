// Members named by host names ("localhost:<port>", as Compose, Swarm and Kubernetes name
// them): a 2-shard cluster of four local nodes serves and replicates, and with the epoll front
// end its forwarded requests and its broadcasts leave from the event loops once the names are
// resolved (net::Resolver: no worker hand-off, no sender thread per peer).
#include <dirent.h>

#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "../cluster/polling.h"
#include "gtest/gtest.h"
#include "http_client.h"
#include "server_process.h"

namespace kvs::http_test {
namespace {

using std::chrono::milliseconds;

// The value of `series` in node `port`'s /metrics, -1 if absent or unanswered.
double NodeSample(uint16_t port, const std::string& series) {
  const HttpResponse metrics = SendRequest(port, "GET", "/metrics");
  return metrics.status == 200 ? MetricValue(metrics.body, series).value_or(-1) : -1;
}

// How many threads of `pid` are named `name` (/proc/<pid>/task/*/comm).
int ThreadsNamed(pid_t pid, const std::string& name) {
  const std::string tasks = "/proc/" + std::to_string(pid) + "/task";
  DIR* dir = ::opendir(tasks.c_str());
  if (dir == nullptr) return -1;
  int count = 0;
  while (const dirent* entry = ::readdir(dir)) {
    if (entry->d_name[0] == '.') continue;
    std::ifstream comm(tasks + "/" + entry->d_name + "/comm");
    std::string thread_name;
    if (std::getline(comm, thread_name) && thread_name == name) ++count;
  }
  ::closedir(dir);
  return count;
}

bool FrontEndIsPoco() {
  const char* frontend = std::getenv("KVS_HTTP_FRONTEND");
  return frontend != nullptr && std::string(frontend) == "poco";
}

TEST(NamedMembersTest, AClusterOfNamedMembersServesForwardsAndReplicatesOnTheLoops) {
  constexpr int kNodes = 4;
  std::vector<uint16_t> ports;
  std::string view;
  for (int i = 0; i < kNodes; ++i) {
    ports.push_back(FreeLoopbackPort());
    view += (i == 0 ? "" : ",") + std::string("localhost:") + std::to_string(ports.back());
  }
  std::vector<std::unique_ptr<ServerProcess>> nodes;
  for (int i = 0; i < kNodes; ++i) {
    std::string error;
    nodes.push_back(
        ServerProcess::Spawn({{{"SOCKET_ADDRESS", "localhost:" + std::to_string(ports[i])},
                               {"VIEW", view},
                               {"SHARD_COUNT", "2"},
                               {"KVS_HTTP_BIND", "127.0.0.1"}},
                              {}},
                             &error));
    ASSERT_NE(nodes.back(), nullptr) << error;
    nodes.back()->set_port(ports[i]);
  }
  for (auto& node : nodes) ASSERT_TRUE(node->WaitUntilHealthy(milliseconds(10000)));
  const uint16_t first = ports[0];
  const uint16_t last = ports[kNodes - 1];

  // Writes through the first node (about half of them forwarded), each after the one before.
  std::string metadata;
  int own_shard_writes = 0;
  int other_shard_key = -1;
  const HttpResponse own = SendRequest(first, "GET", "/key-value-store-shard/node-shard-id");
  ASSERT_EQ(own.status, 200) << Describe(own);
  const int own_shard = ParseObject(own.body)->optValue<int>("shard-id", -1);
  for (int k = 0; k < 40; ++k) {
    const std::string key = "/key-value-store/named-" + std::to_string(k);
    const HttpResponse put =
        SendRequest(first, "PUT", key, PutBody("v" + std::to_string(k), metadata));
    ASSERT_EQ(put.status, 201) << Describe(put);
    metadata = ParseObject(put.body)->optValue<std::string>("causal-metadata", "");
    if (ParseObject(put.body)->optValue<int>("shard-id", -1) == own_shard) {
      ++own_shard_writes;
    } else {
      other_shard_key = k;
    }
  }
  ASSERT_GT(own_shard_writes, 0);
  ASSERT_GE(other_shard_key, 0);
  // Every one of them read through the last node.
  for (int k = 0; k < 40; ++k) {
    const HttpResponse get = SendRequest(last, "GET", "/key-value-store/named-" + std::to_string(k),
                                         MetadataBody(metadata));
    ASSERT_EQ(get.status, 200) << Describe(get);
    EXPECT_EQ(ParseObject(get.body)->optValue<std::string>("value", ""), "v" + std::to_string(k));
  }
  // The first node's writes to its own shard reach its shard peer by broadcast. (Not
  // necessarily all of them: a peer that misses heartbeats while the nodes start leaves the
  // view for a moment, and what was queued for it is left to anti-entropy.)
  EXPECT_TRUE(static_cast<bool>(cluster_test::Eventually(
      [&] { return NodeSample(first, "kvs_replication_broadcast_sent_total") > 0; },
      milliseconds(10000))))
      << "no broadcast acknowledged";

  if (FrontEndIsPoco()) return;  // no event loops: forwarding and broadcasts on threads
  const std::string other_key = "/key-value-store/named-" + std::to_string(other_shard_key);
  const std::string on_loop = "kvs_forwarded_requests_total{on=\"loop\"}";
  const std::string on_worker = "kvs_forwarded_requests_total{on=\"worker\"}";
  // Once the names are resolved (at the latest after the first forwarded requests), every
  // forwarded request leaves from the loop.
  ASSERT_TRUE(static_cast<bool>(cluster_test::Eventually(
      [&] {
        EXPECT_EQ(SendRequest(first, "GET", other_key, MetadataBody(metadata)).status, 200);
        return NodeSample(first, on_loop) > 0;
      },
      milliseconds(10000))));
  const double loop_before = NodeSample(first, on_loop);
  const double worker_before = NodeSample(first, on_worker);
  for (int i = 0; i < 10; ++i) {
    const HttpResponse get = SendRequest(first, "GET", other_key, MetadataBody(metadata));
    ASSERT_EQ(get.status, 200) << Describe(get);
  }
  EXPECT_EQ(NodeSample(first, on_loop), loop_before + 10);
  EXPECT_EQ(NodeSample(first, on_worker), worker_before);
  // Broadcasts leave from the first loop too: no node has a sender thread.
  for (auto& node : nodes) EXPECT_EQ(ThreadsNamed(node->pid(), "kvs-send"), 0);
}

}  // namespace
}  // namespace kvs::http_test
