// The real kvsctl binary against real kvs-server processes on loopback: every command, the
// causal session file, --json, TLS with the admin token, and the exit codes and one-line
// errors of the failure cases. kvsctl runs as a child process (run_binary.h). A stand-in node
// (FakeNode) covers what real nodes do too fast to observe: progress of a long operation, and
// an answer later than --timeout.
#include <stdlib.h>

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "Poco/JSON/Array.h"
#include "Poco/JSON/Object.h"
#include "Poco/Net/HTTPRequestHandler.h"
#include "Poco/Net/HTTPRequestHandlerFactory.h"
#include "Poco/Net/HTTPServer.h"
#include "Poco/Net/HTTPServerRequest.h"
#include "Poco/Net/HTTPServerResponse.h"
#include "Poco/Net/ServerSocket.h"
#include "Poco/StreamCopier.h"
#include "gtest/gtest.h"
#include "http_client.h"
#include "kvs/ctl/session.h"
#include "run_binary.h"
#include "server_process.h"

namespace kvs::ctl_test {
namespace {

using http_test::EnvList;
using http_test::FreeLoopbackPort;
using http_test::LoopbackAddress;
using http_test::ServerProcess;
using std::chrono::milliseconds;

class KvsctlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/kvsctl-test-XXXXXX";
    ASSERT_NE(::mkdtemp(dir), nullptr);
    home_ = dir;
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(home_, ec);
  }

  // kvsctl with HOME in this test's directory and no KVS_* variables of the test's own.
  RunResult Kvsctl(const std::vector<std::string>& args, EnvList env = {}) {
    env.push_back({"HOME", home_.string()});
    env.push_back({"PATH", "/usr/bin:/bin"});
    // The sanitizer builds' settings (where reports go), as the servers get them.
    for (const char* name : http_test::kInheritedEnv) {
      if (const char* value = std::getenv(name)) env.push_back({name, value});
    }
    return RunBinary(KVSCTL_BIN, args, env, milliseconds(60000));
  }
  RunResult At(const ServerProcess& node, std::vector<std::string> args) {
    args.insert(args.begin(), {"--node", LoopbackAddress(node.port())});
    return Kvsctl(args);
  }

  std::string DefaultSession() const { return (home_ / ".kvsctl" / "session.json").string(); }

  static kvs::ctl::Session ReadSession(const std::string& path) {
    std::string error;
    auto session = kvs::ctl::LoadSession(path, &error);
    EXPECT_TRUE(session) << error;
    return session ? *session : kvs::ctl::Session{};
  }

  // `count` nodes in one view; SHARD_COUNT `shards` for the first `with_shard` of them, none
  // for the rest (nodes to be added with add-member). Every one healthy, or nothing.
  static std::vector<std::unique_ptr<ServerProcess>> StartCluster(int count, int with_shard,
                                                                  int shards,
                                                                  const EnvList& extra = {}) {
    std::vector<uint16_t> ports;
    std::string view;
    for (int i = 0; i < count; ++i) {
      ports.push_back(FreeLoopbackPort());
      view += (i ? "," : "") + LoopbackAddress(ports.back());
    }
    std::vector<std::unique_ptr<ServerProcess>> nodes;
    for (int i = 0; i < count; ++i) {
      EnvList env = {{"SOCKET_ADDRESS", LoopbackAddress(ports[i])},
                     {"VIEW", view},
                     {"KVS_HTTP_BIND", "127.0.0.1"},
                     {"KVS_CLUSTER_FAILURE_TIMEOUT_MS", "1500"},
                     {"KVS_REPLICATION_BOOTSTRAP_TIMEOUT_MS", "500"}};
      if (i < with_shard) env.push_back({"SHARD_COUNT", std::to_string(shards)});
      env.insert(env.end(), extra.begin(), extra.end());
      std::string error;
      auto node = ServerProcess::Spawn({env, {}}, &error);
      EXPECT_NE(node, nullptr) << error;
      if (node == nullptr) return {};
      node->set_port(ports[i]);
      nodes.push_back(std::move(node));
    }
    for (auto& node : nodes) {
      auto healthy = node->WaitUntilHealthy(milliseconds(15000));
      EXPECT_TRUE(healthy) << healthy.message() << "\n" << node->Stderr();
      if (!healthy) return {};
    }
    // A node of a shard can answer /health before it has the layout (503 "does not know the
    // cluster layout yet" to a key request; seen under TSan): wait, bounded, until each of them
    // knows its shard.
    for (int i = 0; i < with_shard; ++i) {
      const auto give_up = std::chrono::steady_clock::now() + milliseconds(15000);
      http_test::HttpResponse answer;
      while (true) {
        answer = http_test::SendRequest(ports[static_cast<size_t>(i)], "GET",
                                        "/key-value-store-shard/node-shard-id", std::nullopt,
                                        milliseconds(1000));
        if (answer.status == 200 || std::chrono::steady_clock::now() >= give_up) break;
        std::this_thread::sleep_for(milliseconds(20));
      }
      EXPECT_EQ(answer.status, 200)
          << "node " << i << " does not know its shard: " << answer.body << "\n"
          << nodes[static_cast<size_t>(i)]->Stderr();
      if (answer.status != 200) return {};
    }
    return nodes;
  }

  std::filesystem::path home_;
};

// stderr is exactly one line naming the node.
::testing::AssertionResult OneLineNaming(const RunResult& r, const std::string& node) {
  if (r.err.empty() || r.err.back() != '\n' || r.err.find('\n') != r.err.size() - 1) {
    return ::testing::AssertionFailure() << "stderr is not one line: " << Describe(r);
  }
  if (r.err.find(node) == std::string::npos) {
    return ::testing::AssertionFailure() << "stderr does not name " << node << ": " << r.err;
  }
  return ::testing::AssertionSuccess();
}

TEST_F(KvsctlTest, PutGetDeleteRoundTripKeepsTheSession) {
  std::string error;
  auto node = http_test::StartSingleNode({}, {}, &error);
  ASSERT_NE(node, nullptr) << error;
  const std::string address = LoopbackAddress(node->port());

  RunResult put = At(*node, {"put", "color", "blue"});
  ASSERT_EQ(put.exit_code, 0) << Describe(put);
  EXPECT_EQ(put.out, "Added successfully (shard 0)\n");
  const kvs::ctl::Session after_put = ReadSession(DefaultSession());
  EXPECT_FALSE(after_put.metadata.empty());
  EXPECT_EQ(after_put.view, std::vector<std::string>{address});
  EXPECT_EQ(std::filesystem::status(DefaultSession()).permissions() & std::filesystem::perms::all,
            std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);

  put = At(*node, {"put", "color", "green"});
  ASSERT_EQ(put.exit_code, 0) << Describe(put);
  EXPECT_EQ(put.out, "Updated successfully (shard 0)\n");
  const kvs::ctl::Session after_update = ReadSession(DefaultSession());
  EXPECT_NE(after_update.metadata, after_put.metadata);

  // A later write to another key: the session now covers it too.
  ASSERT_EQ(At(*node, {"put", "shape", "round"}).exit_code, 0);
  const kvs::ctl::Session after_shape = ReadSession(DefaultSession());
  const RunResult get = At(*node, {"get", "color"});
  ASSERT_EQ(get.exit_code, 0) << Describe(get);
  EXPECT_EQ(get.out, "green\n");
  // A read that brings nothing new returns the metadata sent (SPEC §4), byte for byte: the
  // session's, which covers the later write to "shape" (a read without it would return what
  // "color" depends on only).
  EXPECT_EQ(ReadSession(DefaultSession()).metadata, after_shape.metadata);
  const RunResult bare = At(*node, {"--no-session", "--json", "get", "color"});
  ASSERT_EQ(bare.exit_code, 0) << Describe(bare);
  const auto bare_object = http_test::ParseObject(bare.out);
  ASSERT_FALSE(bare_object.isNull()) << bare.out;
  EXPECT_NE(bare_object->optValue<std::string>("causal-metadata", ""), after_shape.metadata)
      << "the server returns the same metadata with and without the session: this test cannot "
         "tell whether kvsctl sends it";

  const RunResult json = At(*node, {"--json", "get", "color"});
  ASSERT_EQ(json.exit_code, 0) << Describe(json);
  const auto object = http_test::ParseObject(json.out);
  ASSERT_FALSE(object.isNull()) << json.out;
  EXPECT_EQ(object->optValue<std::string>("value", ""), "green");
  EXPECT_EQ(object->optValue<std::string>("causal-metadata", ""), after_shape.metadata);

  const RunResult del = At(*node, {"delete", "color"});
  ASSERT_EQ(del.exit_code, 0) << Describe(del);
  EXPECT_EQ(del.out, "Deleted successfully (shard 0)\n");

  const RunResult missing = At(*node, {"get", "color"});
  EXPECT_EQ(missing.exit_code, 1) << Describe(missing);
  EXPECT_TRUE(missing.out.empty()) << missing.out;
  EXPECT_TRUE(OneLineNaming(missing, address));
  EXPECT_NE(missing.err.find("404 Key does not exist"), std::string::npos) << missing.err;
  // --json: the server's answer on stdout as well.
  const RunResult missing_json = At(*node, {"--json", "delete", "color"});
  EXPECT_EQ(missing_json.exit_code, 1) << Describe(missing_json);
  const auto answer = http_test::ParseObject(missing_json.out);
  ASSERT_FALSE(answer.isNull()) << missing_json.out;
  EXPECT_EQ(answer->optValue<std::string>("error", ""), "Key does not exist");
}

TEST_F(KvsctlTest, NoSessionSendsAndStoresNothingAndSessionFileIsHonoured) {
  std::string error;
  auto node = http_test::StartSingleNode({}, {}, &error);
  ASSERT_NE(node, nullptr) << error;
  const RunResult put = At(*node, {"--no-session", "put", "k", "v"});
  ASSERT_EQ(put.exit_code, 0) << Describe(put);
  EXPECT_FALSE(std::filesystem::exists(DefaultSession()));

  const std::string file = (home_ / "elsewhere" / "s.json").string();
  const RunResult put2 = At(*node, {"--session", file, "put", "k", "w"});
  ASSERT_EQ(put2.exit_code, 0) << Describe(put2);
  EXPECT_FALSE(std::filesystem::exists(DefaultSession()));
  EXPECT_FALSE(ReadSession(file).metadata.empty());
  // KVS_SESSION names it too.
  const RunResult get =
      Kvsctl({"--node", LoopbackAddress(node->port()), "get", "k"}, {{"KVS_SESSION", file}});
  ASSERT_EQ(get.exit_code, 0) << Describe(get);
  EXPECT_EQ(get.out, "w\n");
  EXPECT_FALSE(std::filesystem::exists(DefaultSession()));
}

// Writes at one replica, reads at the other through the session: the read waits for the write
// (causal), and the session learns the second node's name.
TEST_F(KvsctlTest, SessionMakesReadsAtAnotherReplicaCausal) {
  auto nodes = StartCluster(2, 2, 1);
  ASSERT_EQ(nodes.size(), 2u);
  for (int i = 0; i < 5; ++i) {
    const std::string value = "v" + std::to_string(i);
    const RunResult put = At(*nodes[0], {"put", "k", value});
    ASSERT_EQ(put.exit_code, 0) << Describe(put);
    const RunResult get = At(*nodes[1], {"get", "k"});
    ASSERT_EQ(get.exit_code, 0) << Describe(get);
    EXPECT_EQ(get.out, value + "\n");
  }
  const kvs::ctl::Session session = ReadSession(DefaultSession());
  EXPECT_EQ(session.view.size(), 2u);
}

TEST_F(KvsctlTest, SessionFromAnotherClusterStartsAfreshWithANote) {
  std::string error;
  auto first = http_test::StartSingleNode({}, {}, &error);
  ASSERT_NE(first, nullptr) << error;
  auto second = http_test::StartSingleNode({}, {}, &error);
  ASSERT_NE(second, nullptr) << error;
  ASSERT_EQ(At(*first, {"put", "k", "one"}).exit_code, 0);
  const std::string foreign = ReadSession(DefaultSession()).metadata;

  const RunResult put = At(*second, {"put", "k", "two"});
  ASSERT_EQ(put.exit_code, 0) << Describe(put);
  EXPECT_NE(put.err.find("starting a new session"), std::string::npos) << put.err;
  EXPECT_EQ(put.out, "Added successfully (shard 0)\n");
  const kvs::ctl::Session now = ReadSession(DefaultSession());
  EXPECT_EQ(now.view, std::vector<std::string>{LoopbackAddress(second->port())});
  EXPECT_NE(now.metadata, foreign);
  // Back on the second cluster: no note any more.
  const RunResult get = At(*second, {"get", "k"});
  ASSERT_EQ(get.exit_code, 0) << Describe(get);
  EXPECT_TRUE(get.err.empty()) << get.err;
  EXPECT_EQ(get.out, "two\n");
}

// A cluster rebuilt at the same address cannot be told from the old one by its view; the
// node then cannot obtain the session's dependencies, and the error says what to do.
TEST_F(KvsctlTest, SessionFromARebuiltClusterGetsAHint) {
  const uint16_t port = FreeLoopbackPort();
  std::string error;
  auto old_node = ServerProcess::Spawn({http_test::SingleNodeEnv(port), {}}, &error);
  ASSERT_NE(old_node, nullptr) << error;
  old_node->set_port(port);
  ASSERT_TRUE(old_node->WaitUntilHealthy(milliseconds(10000)));
  ASSERT_EQ(At(*old_node, {"put", "k", "old"}).exit_code, 0);
  old_node->Stop();
  old_node.reset();  // its data directory goes with it

  auto new_node = ServerProcess::Spawn({http_test::SingleNodeEnv(port), {}}, &error);
  ASSERT_NE(new_node, nullptr) << error;
  new_node->set_port(port);
  ASSERT_TRUE(new_node->WaitUntilHealthy(milliseconds(10000)));
  const RunResult get = At(*new_node, {"get", "k"});
  EXPECT_EQ(get.exit_code, 1) << Describe(get);
  EXPECT_TRUE(OneLineNaming(get, LoopbackAddress(port)));
  EXPECT_NE(get.err.find(": 503 "), std::string::npos) << get.err;
  EXPECT_NE(get.err.find("was written, remove that file; --no-session skips it"), std::string::npos)
      << get.err;
  const RunResult bare = At(*new_node, {"--no-session", "get", "k"});
  EXPECT_EQ(bare.exit_code, 1) << Describe(bare);
  EXPECT_NE(bare.err.find("404 Key does not exist"), std::string::npos) << bare.err;
}

TEST_F(KvsctlTest, ViewShardsAndShardIdWithJson) {
  auto nodes = StartCluster(2, 2, 1);
  ASSERT_EQ(nodes.size(), 2u);
  const std::string a = LoopbackAddress(nodes[0]->port()), b = LoopbackAddress(nodes[1]->port());
  ASSERT_EQ(At(*nodes[0], {"--no-session", "put", "x", "1"}).exit_code, 0);

  const RunResult view = At(*nodes[0], {"view"});
  ASSERT_EQ(view.exit_code, 0) << Describe(view);
  EXPECT_NE(view.out.find(a + "\n"), std::string::npos) << view.out;
  EXPECT_NE(view.out.find(b + "\n"), std::string::npos) << view.out;
  const RunResult view_json = At(*nodes[0], {"--json", "view"});
  ASSERT_EQ(view_json.exit_code, 0) << Describe(view_json);
  const auto view_object = http_test::ParseObject(view_json.out);
  ASSERT_FALSE(view_object.isNull()) << view_json.out;
  EXPECT_NE(view_object->optValue<std::string>("view", "").find(b), std::string::npos);

  const RunResult id = At(*nodes[1], {"shard-id"});
  ASSERT_EQ(id.exit_code, 0) << Describe(id);
  EXPECT_EQ(id.out, "0\n");

  const RunResult shards = At(*nodes[0], {"shards"});
  ASSERT_EQ(shards.exit_code, 0) << Describe(shards);
  EXPECT_NE(shards.out.find("SHARD"), std::string::npos) << shards.out;
  EXPECT_NE(shards.out.find("0 *"), std::string::npos) << shards.out;
  EXPECT_NE(shards.out.find(a), std::string::npos) << shards.out;
  EXPECT_NE(shards.out.find(b), std::string::npos) << shards.out;

  const RunResult shards_json = At(*nodes[0], {"--json", "shards"});
  ASSERT_EQ(shards_json.exit_code, 0) << Describe(shards_json);
  const auto object = http_test::ParseObject(shards_json.out);
  ASSERT_FALSE(object.isNull()) << shards_json.out;
  EXPECT_EQ(object->optValue<int>("node-shard-id", -1), 0);
  const auto list = object->getArray("shards");
  ASSERT_FALSE(list.isNull());
  ASSERT_EQ(list->size(), 1u);
  const auto shard = list->getObject(0);
  EXPECT_EQ(shard->optValue<int>("key-count", -1), 1);
  EXPECT_EQ(shard->getArray("members")->size(), 2u);

  const RunResult health = At(*nodes[0], {"health"});
  ASSERT_EQ(health.exit_code, 0) << Describe(health);
  EXPECT_NE(health.out.find("status: ok"), std::string::npos) << health.out;
  const RunResult ready = At(*nodes[0], {"--json", "health", "ready"});
  ASSERT_EQ(ready.exit_code, 0) << Describe(ready);
  EXPECT_FALSE(http_test::ParseObject(ready.out).isNull()) << ready.out;

  const RunResult metrics = At(*nodes[0], {"metrics"});
  ASSERT_EQ(metrics.exit_code, 0) << Describe(metrics);
  EXPECT_NE(metrics.out.find("# TYPE "), std::string::npos) << metrics.out.substr(0, 500);
  const RunResult metrics_json = At(*nodes[0], {"--json", "metrics"});
  ASSERT_EQ(metrics_json.exit_code, 0) << Describe(metrics_json);
  const auto series = http_test::ParseObject(metrics_json.out);
  ASSERT_FALSE(series.isNull()) << metrics_json.out.substr(0, 500);
  EXPECT_GT(series->size(), 5u);
}

TEST_F(KvsctlTest, ReshardAndAddMemberEndWithASummary) {
  // Four nodes in one shard, a fifth in the view but in no shard.
  auto nodes = StartCluster(5, 4, 1);
  ASSERT_EQ(nodes.size(), 5u);
  for (int i = 0; i < 40; ++i) {
    const RunResult put =
        At(*nodes[i % 4], {"--no-session", "put", "key" + std::to_string(i), "v"});
    ASSERT_EQ(put.exit_code, 0) << Describe(put);
  }
  const RunResult reshard = At(*nodes[0], {"reshard", "2"});
  ASSERT_EQ(reshard.exit_code, 0) << Describe(reshard);
  // "reshard to 2 shards done in 0.4 s: 5 nodes, keys per shard 19/21"
  EXPECT_EQ(reshard.out.rfind("reshard to 2 shards done in ", 0), 0u) << reshard.out;
  const size_t counts = reshard.out.find("keys per shard ");
  ASSERT_NE(counts, std::string::npos) << reshard.out;
  int first = 0, second = 0;
  ASSERT_EQ(std::sscanf(reshard.out.c_str() + counts, "keys per shard %d/%d", &first, &second), 2)
      << reshard.out;
  EXPECT_EQ(first + second, 40) << reshard.out;
  EXPECT_NE(reshard.out.find(": 5 nodes,"), std::string::npos) << reshard.out;
  // Not a terminal: no bar drawing characters, only plain lines (if any).
  EXPECT_EQ(reshard.err.find('\r'), std::string::npos) << reshard.err;

  const std::string fifth = LoopbackAddress(nodes[4]->port());
  const RunResult add = At(*nodes[0], {"--json", "add-member", "1", fifth});
  ASSERT_EQ(add.exit_code, 0) << Describe(add);
  const auto summary = http_test::ParseObject(add.out);
  ASSERT_FALSE(summary.isNull()) << add.out;
  EXPECT_EQ(summary->optValue<std::string>("operation", ""), "add-member");
  EXPECT_EQ(summary->optValue<int>("shards", 0), 2);
  const RunResult id = At(*nodes[4], {"shard-id"});
  ASSERT_EQ(id.exit_code, 0) << Describe(id);
  EXPECT_EQ(id.out, "1\n");

  // Too many shards for five nodes: the server says no.
  const RunResult too_many = At(*nodes[0], {"reshard", "3"});
  EXPECT_EQ(too_many.exit_code, 1) << Describe(too_many);
  EXPECT_TRUE(OneLineNaming(too_many, LoopbackAddress(nodes[0]->port())));
  EXPECT_NE(too_many.err.find("Not enough nodes"), std::string::npos) << too_many.err;
}

TEST_F(KvsctlTest, StatusPrintsOneTableAndJson) {
  auto nodes = StartCluster(2, 2, 1);
  ASSERT_EQ(nodes.size(), 2u);
  const RunResult status = At(*nodes[0], {"status"});
  if (status.exit_code == 1 && status.err.find("has no /status") != std::string::npos) {
    GTEST_SKIP() << "kvs-server has no GET /status yet";
  }
  ASSERT_EQ(status.exit_code, 0) << Describe(status);
  EXPECT_NE(status.out.find("NODE"), std::string::npos) << status.out;
  for (const auto& node : nodes) {
    EXPECT_NE(status.out.find("\n" + LoopbackAddress(node->port()) + " "), std::string::npos)
        << status.out;
  }
  const RunResult json = At(*nodes[0], {"--json", "status"});
  ASSERT_EQ(json.exit_code, 0) << Describe(json);
  const auto object = http_test::ParseObject(json.out);
  ASSERT_FALSE(object.isNull()) << json.out;
  ASSERT_FALSE(object->getArray("nodes").isNull()) << json.out;
  EXPECT_EQ(object->getArray("nodes")->size(), 2u);
}

TEST_F(KvsctlTest, UsageAndUnreachableNodeExitCodes) {
  const RunResult usage = Kvsctl({"put", "only-a-key"});
  EXPECT_EQ(usage.exit_code, 2) << Describe(usage);
  EXPECT_EQ(usage.err.find('\n'), usage.err.size() - 1) << usage.err;
  EXPECT_TRUE(usage.out.empty());

  const RunResult help = Kvsctl({"--help"});
  EXPECT_EQ(help.exit_code, 0) << Describe(help);
  EXPECT_NE(help.out.find("exit codes"), std::string::npos);

  // A port nobody listens on.
  const std::string nowhere = LoopbackAddress(FreeLoopbackPort());
  for (const char* command : {"get", "status", "view", "shards", "reshard"}) {
    std::vector<std::string> args = {"--node", nowhere, "--timeout", "2000", command};
    if (std::string(command) == "get") args.push_back("k");
    if (std::string(command) == "reshard") args.push_back("2");
    const RunResult r = Kvsctl(args);
    EXPECT_EQ(r.exit_code, 3) << command << ": " << Describe(r);
    EXPECT_TRUE(OneLineNaming(r, nowhere)) << command;
  }
  // KVS_NODE is the default node.
  const RunResult from_env = Kvsctl({"view"}, {{"KVS_NODE", nowhere}});
  EXPECT_EQ(from_env.exit_code, 3) << Describe(from_env);
  EXPECT_TRUE(OneLineNaming(from_env, nowhere));
}

// A stand-in node on loopback for what real nodes do too fast or too well to observe: a
// reshard that runs until kvsctl has polled its progress four times, and a node that answers
// too late. Requests are recorded. Thread-safe (POCO serves on its own threads).
class FakeNode {
 public:
  FakeNode() : socket_(Poco::Net::SocketAddress("127.0.0.1", 0)) {
    auto* params = new Poco::Net::HTTPServerParams;
    params->setKeepAlive(false);
    server_ = std::make_unique<Poco::Net::HTTPServer>(new Factory(this), socket_, params);
    server_->start();
  }
  ~FakeNode() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
      cv_.notify_all();
    }
    server_->stopAll(true);
  }
  std::string address() const { return LoopbackAddress(socket_.address().port()); }
  std::vector<std::string> requests() {
    std::lock_guard lock(mu_);
    return requests_;
  }
  void set_delay(milliseconds delay) {
    std::lock_guard lock(mu_);
    delay_ = delay;
  }

 private:
  class Handler : public Poco::Net::HTTPRequestHandler {
   public:
    explicit Handler(FakeNode* node) : node_(node) {}
    void handleRequest(Poco::Net::HTTPServerRequest& request,
                       Poco::Net::HTTPServerResponse& response) override {
      std::string body;
      Poco::StreamCopier::copyToString(request.stream(), body);
      const std::string answer = node_->Answer(request.getMethod(), request.getURI(), body,
                                               request.get("Authorization", ""));
      response.setContentType("application/json");
      response.setContentLength(static_cast<std::streamsize>(answer.size()));
      response.send() << answer;
    }

   private:
    FakeNode* node_;
  };
  class Factory : public Poco::Net::HTTPRequestHandlerFactory {
   public:
    explicit Factory(FakeNode* node) : node_(node) {}
    Poco::Net::HTTPRequestHandler* createRequestHandler(
        const Poco::Net::HTTPServerRequest&) override {
      return new Handler(node_);
    }

   private:
    FakeNode* node_;
  };

  std::string Answer(const std::string& method, const std::string& uri, const std::string& body,
                     const std::string& authorization) {
    std::unique_lock lock(mu_);
    requests_.push_back(method + " " + uri + " " + body + " [" + authorization + "]");
    cv_.wait_for(lock, delay_, [&] { return stopping_; });
    if (uri == "/status") {
      ++polls_;
      cv_.notify_all();
      return R"({"address":")" + address() +
             R"(","operation":{"kind":"reshard","phase":"moving",)" + R"("done":)" +
             std::to_string(polls_) + R"(,"total":10,"age-ms":5}})";
    }
    if (method == "PUT" && uri == "/key-value-store-shard/reshard") {
      // Returns once kvsctl has polled the progress four times (bounded: 20 s).
      cv_.wait_for(lock, std::chrono::seconds(20), [&] { return polls_ >= 4 || stopping_; });
      return R"({"message":"Resharding done successfully"})";
    }
    if (uri == "/key-value-store-view") return R"({"view":")" + address() + R"("})";
    if (uri == "/key-value-store-shard/shard-ids") return R"({"shard-ids":[0]})";
    if (uri == "/key-value-store-shard/shard-id-members/0") {
      return R"({"shard-id-members":[")" + address() + R"("]})";
    }
    if (uri == "/key-value-store-shard/shard-id-key-count/0") {
      return R"({"shard-id-key-count":5})";
    }
    return R"({"message":"Retrieved successfully","value":"late","causal-metadata":""})";
  }

  Poco::Net::ServerSocket socket_;
  std::unique_ptr<Poco::Net::HTTPServer> server_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> requests_;
  int polls_ = 0;
  milliseconds delay_{0};
  bool stopping_ = false;
};

TEST_F(KvsctlTest, LongOperationPrintsPlainProgressLinesWithoutATerminal) {
  FakeNode node;
  const RunResult r = Kvsctl({"--node", node.address(), "--token", "tok", "reshard", "2"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_EQ(r.out.rfind("reshard to 2 shards done in ", 0), 0u) << r.out;
  EXPECT_NE(r.out.find(": 1 node, keys per shard 5\n"), std::string::npos) << r.out;
  // Not a terminal: whole lines, no carriage returns or escape sequences, and the count moves.
  EXPECT_EQ(r.err.find('\r'), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find('\033'), std::string::npos) << r.err;
  std::istringstream lines(r.err);
  std::string line;
  std::vector<int> done;
  while (std::getline(lines, line)) {
    int count = 0;
    ASSERT_EQ(std::sscanf(line.c_str(), "kvsctl: reshard: moving %d/10", &count), 1) << r.err;
    done.push_back(count);
  }
  ASSERT_GE(done.size(), 2u) << r.err;
  EXPECT_LT(done.front(), done.back()) << r.err;
  // The request carried the count and the admin token.
  bool saw = false;
  for (const std::string& request : node.requests()) {
    saw = saw || request == "PUT /key-value-store-shard/reshard {\"shard-count\":2} [Bearer tok]";
  }
  EXPECT_TRUE(saw) << ::testing::PrintToString(node.requests());
}

TEST_F(KvsctlTest, LongOperationDrawsABarOnATerminal) {
  FakeNode node;
  std::vector<std::pair<std::string, std::string>> env = {{"HOME", home_.string()},
                                                          {"TERM", "dumb"}};
  for (const char* name : http_test::kInheritedEnv) {
    if (const char* value = std::getenv(name)) env.push_back({name, value});
  }
  const RunResult r = RunBinaryOnTerminal(KVSCTL_BIN, {"--node", node.address(), "reshard", "2"},
                                          env, milliseconds(60000));
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  // Redrawn in place: carriage returns, a bar with the count, then cleared for the summary.
  EXPECT_NE(r.out.find("\r["), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("] "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("% reshard: moving "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\r\033[Kreshard to 2 shards done in "), std::string::npos) << r.out;
}

TEST_F(KvsctlTest, EveryCallIsBoundedByTimeout) {
  FakeNode node;
  node.set_delay(milliseconds(3000));
  const auto start = std::chrono::steady_clock::now();
  const RunResult r =
      Kvsctl({"--node", node.address(), "--timeout", "300", "--no-session", "get", "k"});
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(r.exit_code, 3) << Describe(r);
  EXPECT_TRUE(OneLineNaming(r, node.address()));
  EXPECT_NE(r.err.find("timed out after 300 ms"), std::string::npos) << r.err;
  EXPECT_LT(took, milliseconds(2500));
}

TEST_F(KvsctlTest, CorruptSessionFileIsAUsageErrorNotACrash) {
  std::filesystem::create_directories(home_ / ".kvsctl");
  std::ofstream(DefaultSession()) << "{\"causal-metadata\": 12";
  const RunResult r = Kvsctl({"--node", LoopbackAddress(FreeLoopbackPort()), "get", "k"});
  EXPECT_EQ(r.exit_code, 2) << Describe(r);
  EXPECT_NE(r.err.find("corrupt"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << r.err;
}

TEST_F(KvsctlTest, TlsAndAdminToken) {
  const std::filesystem::path pki_dir = home_ / "pki";
  http_test::TestPki pki;
  std::string error;
  ASSERT_TRUE(http_test::MakeTestPki(pki_dir, &pki, &error)) << error;
  http_test::SetClientTls(pki.ca);  // the harness' own health checks speak HTTPS
  auto node = http_test::StartSingleNode({{"KVS_TLS_CERT", pki.cert},
                                          {"KVS_TLS_KEY", pki.key},
                                          {"KVS_TLS_CA", pki.ca},
                                          {"KVS_CLUSTER_SECRET", "kvsctl-test-secret"},
                                          {"KVS_ADMIN_TOKEN", "kvsctl-test-token"}},
                                         {}, &error);
  http_test::SetClientTls("");
  ASSERT_NE(node, nullptr) << error;
  const std::string address = LoopbackAddress(node->port());

  const RunResult put = At(*node, {"--cacert", pki.ca, "put", "k", "v"});
  ASSERT_EQ(put.exit_code, 0) << Describe(put);
  const RunResult get = At(*node, {"--cacert", pki.ca, "get", "k"});
  ASSERT_EQ(get.exit_code, 0) << Describe(get);
  EXPECT_EQ(get.out, "v\n");

  // A CA that did not sign the server's certificate: no answer, exit 3.
  const RunResult rogue = At(*node, {"--cacert", pki.rogue_ca, "--timeout", "3000", "view"});
  EXPECT_EQ(rogue.exit_code, 3) << Describe(rogue);
  EXPECT_TRUE(OneLineNaming(rogue, address));

  // An admin operation without the token: 401, exit 4; with a wrong one: also 4.
  const std::vector<std::string> admin = {"--cacert", pki.ca, "view", "delete", "127.0.0.1:9"};
  const RunResult no_token = At(*node, admin);
  EXPECT_EQ(no_token.exit_code, 4) << Describe(no_token);
  EXPECT_TRUE(OneLineNaming(no_token, address));
  std::vector<std::string> wrong = admin;
  wrong.insert(wrong.begin(), {"--token", "nope"});
  EXPECT_EQ(At(*node, wrong).exit_code, 4);
  // With the token (here from KVS_TOKEN) the server gets to answer: the address is not in the
  // view (404, exit 1).
  std::vector<std::string> args = {"--node", address};
  args.insert(args.end(), admin.begin(), admin.end());
  const RunResult with_token = Kvsctl(args, {{"KVS_TOKEN", "kvsctl-test-token"}});
  EXPECT_EQ(with_token.exit_code, 1) << Describe(with_token);
  EXPECT_NE(with_token.err.find("Socket address does not exist in the view"), std::string::npos)
      << with_token.err;
}

TEST_F(KvsctlTest, MutualTlsPresentsTheClientCertificate) {
  http_test::TestPki pki;
  std::string error;
  ASSERT_TRUE(http_test::MakeTestPki(home_ / "pki", &pki, &error)) << error;
  http_test::SetClientTls(pki.ca, pki.cert, pki.key);
  auto node = http_test::StartSingleNode({{"KVS_TLS_CERT", pki.cert},
                                          {"KVS_TLS_KEY", pki.key},
                                          {"KVS_TLS_CA", pki.ca},
                                          {"KVS_TLS_REQUIRE_CLIENT_CERT", "true"}},
                                         {}, &error);
  http_test::SetClientTls("");
  ASSERT_NE(node, nullptr) << error;
  const RunResult with_cert =
      At(*node, {"--cacert", pki.ca, "--cert", pki.cert, "--key", pki.key, "shard-id"});
  EXPECT_EQ(with_cert.exit_code, 0) << Describe(with_cert);
  EXPECT_EQ(with_cert.out, "0\n");
  const RunResult without = At(*node, {"--cacert", pki.ca, "--timeout", "3000", "shard-id"});
  EXPECT_EQ(without.exit_code, 3) << Describe(without);
  EXPECT_TRUE(OneLineNaming(without, LoopbackAddress(node->port())));
  // A TLS file that is not there: a usage error, before any request.
  const RunResult missing = At(*node, {"--cacert", (home_ / "nope.pem").string(), "shard-id"});
  EXPECT_EQ(missing.exit_code, 2) << Describe(missing);
  EXPECT_NE(missing.err.find("TLS set-up failed"), std::string::npos) << missing.err;
}

}  // namespace
}  // namespace kvs::ctl_test
