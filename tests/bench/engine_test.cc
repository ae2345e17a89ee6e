// End-to-end tests of the engine against TestHttpServer on loopback: bounded request counts
// or short durations, no sleeps.
#include "kvs/bench/engine.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "kvs/bench/runner.h"
#include "test_http_server.h"

namespace kvs::bench {
namespace {

using testing::TestHttpServer;

Options MakeOptions(std::vector<std::string> args) {
  std::vector<std::string_view> views(args.begin(), args.end());
  ParsedOptions parsed = ParseOptions(views);
  EXPECT_TRUE(parsed.ok()) << parsed.error;
  return parsed.options;
}

RunResult RunToEnd(const Options& options) {
  RunResult result;
  std::string error;
  EXPECT_TRUE(RunBenchmark(options, options.preload, nullptr, result, error)) << error;
  return result;
}

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

TEST(EngineTest, BoundedRequestCountAllSucceedAndCountsAddUp) {
  TestHttpServer server(TestHttpServer::Mode::kOk);
  const RunResult r =
      RunToEnd(MakeOptions({"--targets=" + server.Target(), "--protocol=raw", "--requests=2000",
                            "--connections=4", "--threads=2", "--warmup=0", "--quiet"}));
  const Stats& s = r.stats;
  EXPECT_EQ(s.requests(), 2000u);
  EXPECT_EQ(s.ok, 2000u);
  EXPECT_EQ(s.status[200], 2000u);
  EXPECT_EQ(s.latency.count(), 2000u);
  EXPECT_EQ(s.op_responses[static_cast<int>(Op::kGet)], 2000u);
  EXPECT_EQ(s.not_found + s.http_errors + s.transport_errors() + s.reconnects, 0u);
  EXPECT_EQ(server.requests(), 2000u);
  EXPECT_EQ(server.connections(), 4u);
  const std::string request = "GET / HTTP/1.1\r\nHost: " + server.Target() + "\r\n\r\n";
  EXPECT_EQ(s.bytes_sent, 2000 * request.size());
  EXPECT_EQ(server.bytes_received(), s.bytes_sent);
  EXPECT_EQ(s.bytes_received, 2000 * TestHttpServer::OkResponse().size());
  EXPECT_GT(r.elapsed_s, 0);
  EXPECT_GT(r.Throughput(), 0);
  EXPECT_LE(s.latency.Percentile(50), s.latency.Percentile(99));
  EXPECT_TRUE(r.AnySuccess());
  EXPECT_FALSE(r.stalled);
  EXPECT_EQ(r.options.threads, 2);
}

TEST(EngineTest, ConnectionsAreSpreadRoundRobinOverTargets) {
  TestHttpServer a(TestHttpServer::Mode::kOk);
  TestHttpServer b(TestHttpServer::Mode::kOk);
  const RunResult r =
      RunToEnd(MakeOptions({"--targets=" + a.Target() + "," + b.Target(), "--protocol=raw",
                            "--requests=1000", "--connections=4", "--threads=2", "--warmup=0"}));
  EXPECT_EQ(r.stats.ok, 1000u);
  EXPECT_EQ(a.connections(), 2u);
  EXPECT_EQ(b.connections(), 2u);
  EXPECT_GT(a.requests(), 0u);
  EXPECT_GT(b.requests(), 0u);
  EXPECT_EQ(a.requests() + b.requests(), 1000u);
}

TEST(EngineTest, ServerClosingConnectionsIsReconnectedNotAnError) {
  TestHttpServer server(TestHttpServer::Mode::kOk, /*close_every=*/10);
  const RunResult r =
      RunToEnd(MakeOptions({"--targets=" + server.Target(), "--protocol=raw", "--requests=2000",
                            "--connections=4", "--threads=2", "--warmup=0"}));
  EXPECT_EQ(r.stats.ok, 2000u);
  EXPECT_EQ(r.stats.transport_errors(), 0u);
  // Every 10th answer closes; the last few closes may come after the run stopped sending.
  EXPECT_GE(r.stats.reconnects, 200u - 4);
  EXPECT_LE(r.stats.reconnects, 200u);
  // A reconnect counts once the run sees it made; the server counts it once it accepts it, which
  // may come after the run returned (polled for, bounded), and it also accepts a reconnect the
  // run started but stopped before seeing made (at most one per connection).
  const uint64_t made = 4 + r.stats.reconnects;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (server.connections() < made && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_GE(server.connections(), made);
  EXPECT_LE(server.connections(), made + 4);
}

TEST(EngineTest, PreloadPutsEveryKeyOnceThenTheMixRuns) {
  TestHttpServer server(TestHttpServer::Mode::kOk);
  const RunResult r = RunToEnd(
      MakeOptions({"--targets=" + server.Target(), "--preload", "--keys=100", "--requests=300",
                   "--mix=get:50,delete:50", "--connections=8", "--threads=2", "--warmup=0"}));
  const std::vector<std::string> log = server.Log();
  ASSERT_EQ(log.size(), 400u);
  std::set<std::string> preloaded(log.begin(), log.begin() + 100);
  EXPECT_EQ(preloaded.size(), 100u);
  for (int k = 0; k < 100; ++k) {
    EXPECT_EQ(preloaded.count("PUT /key-value-store/key" + std::to_string(k)), 1u) << k;
  }
  std::map<std::string, int> methods;
  for (size_t i = 100; i < log.size(); ++i) ++methods[log[i].substr(0, log[i].find(' '))];
  EXPECT_EQ(methods["PUT"], 0);
  EXPECT_GT(methods["GET"], 100);
  EXPECT_GT(methods["DELETE"], 100);
  EXPECT_EQ(methods["GET"] + methods["DELETE"], 300);
  // Measured counts cover the mix only; by op they add up.
  EXPECT_EQ(r.stats.requests(), 300u);
  EXPECT_EQ(r.stats.op_responses[0] + r.stats.op_responses[2], 300u);
  EXPECT_EQ(static_cast<int>(r.stats.op_responses[0]), methods["GET"]);
}

TEST(EngineTest, CausalMetadataIsChainedPerConnection) {
  TestHttpServer server(TestHttpServer::Mode::kCausal);
  const RunResult r = RunToEnd(MakeOptions({"--targets=" + server.Target(), "--causal=on",
                                            "--requests=500", "--mix=get:50,put:40,delete:10",
                                            "--connections=4", "--threads=2", "--warmup=0"}));
  EXPECT_EQ(r.stats.ok, 500u);
  EXPECT_EQ(server.requests(), 500u);
  EXPECT_EQ(server.metadata_mismatches(), 0u);
}

TEST(EngineTest, DurationBoundsTheRun) {
  TestHttpServer server(TestHttpServer::Mode::kOk);
  const auto start = std::chrono::steady_clock::now();
  const RunResult r = RunToEnd(MakeOptions({"--targets=" + server.Target(), "--protocol=raw",
                                            "--duration=0.3", "--warmup=0.2", "--connections=4"}));
  EXPECT_GE(r.elapsed_s, 0.3);
  EXPECT_LT(r.elapsed_s, 1.3);
  EXPECT_LT(SecondsSince(start), 2.0);
  EXPECT_GT(r.stats.ok, 0u);
  EXPECT_EQ(r.stats.ok, r.stats.requests());
  EXPECT_GT(server.requests(), r.stats.requests());  // the warm-up was sent, not counted
}

TEST(EngineTest, RateThrottlesTheMeasuredPhase) {
  TestHttpServer server(TestHttpServer::Mode::kOk);
  const RunResult r =
      RunToEnd(MakeOptions({"--targets=" + server.Target(), "--protocol=raw", "--rate=200",
                            "--duration=1", "--warmup=0", "--connections=4", "--threads=2"}));
  // Unthrottled this server answers tens of thousands a second; paced, about 200. Loose
  // bounds: a loaded machine may wake the loops late (and they only catch up a few slots).
  EXPECT_GE(r.stats.requests(), 100u);
  EXPECT_LE(r.stats.requests(), 300u);
  EXPECT_EQ(r.stats.ok, r.stats.requests());
  EXPECT_EQ(server.requests(), r.stats.requests());
  EXPECT_EQ(r.options.rate, 200);
}

TEST(EngineTest, RatePacesARequestCountToo) {
  TestHttpServer server(TestHttpServer::Mode::kOk);
  // 60 requests at 100/s over 2 loops: slots every 20 ms per loop, 30 each, so the last goes
  // out 29 slots = 0.58 s after the start. Pacing can only be late, never early.
  const RunResult r =
      RunToEnd(MakeOptions({"--targets=" + server.Target(), "--protocol=raw", "--rate=100",
                            "--requests=60", "--warmup=0", "--connections=8", "--threads=2"}));
  EXPECT_EQ(r.stats.ok, 60u);
  EXPECT_GE(r.elapsed_s, 0.5);
  EXPECT_LT(r.elapsed_s, 5.0);
}

TEST(EngineTest, WarmupIsPacedButThePreloadIsNot) {
  TestHttpServer server(TestHttpServer::Mode::kOk);
  const auto start = std::chrono::steady_clock::now();
  // 2000 preload PUTs at 10/s would take minutes; the warm-up's 0.5 s at 10/s sends ~5.
  const RunResult r =
      RunToEnd(MakeOptions({"--targets=" + server.Target(), "--preload", "--keys=2000", "--rate=10",
                            "--warmup=0.5", "--requests=1", "--connections=4", "--threads=1"}));
  EXPECT_EQ(r.stats.requests(), 1u);
  EXPECT_LT(SecondsSince(start), 10.0);
  EXPECT_GE(server.requests(), 2000u + 1);
  EXPECT_LE(server.requests(), 2000u + 1 + 15);
}

TEST(EngineTest, OnlyShardLoadsOnlyThatShardsKeys) {
  TestHttpServer server(TestHttpServer::Mode::kShards);  // keyN is on shard N % 2
  const RunResult r =
      RunToEnd(MakeOptions({"--targets=" + server.Target(), "--preload", "--keys=100",
                            "--only-shard=1", "--requests=300", "--mix=get:50,put:25,delete:25",
                            "--connections=4", "--threads=2", "--warmup=0"}));
  EXPECT_TRUE(r.failure.empty()) << r.failure;
  EXPECT_EQ(r.keys_used, 50u);
  EXPECT_EQ(r.stats.requests(), 300u);
  EXPECT_EQ(r.stats.ok, 300u);
  const std::vector<std::string> log = server.Log();
  ASSERT_EQ(log.size(), 400u);
  std::set<int> used;
  for (size_t i = 100; i < log.size(); ++i) {
    const size_t at = log[i].find("/key-value-store/key");
    ASSERT_NE(at, std::string::npos) << log[i];
    const int key = std::stoi(log[i].substr(at + 20));
    EXPECT_EQ(key % 2, 1) << log[i];
    used.insert(key);
  }
  EXPECT_GT(used.size(), 40u);  // 300 uniform draws from 50 keys miss hardly any
}

TEST(EngineTest, OnlyShardWithoutKeysStopsBeforeTheLoad) {
  TestHttpServer server(TestHttpServer::Mode::kShards);
  const RunResult r =
      RunToEnd(MakeOptions({"--targets=" + server.Target(), "--preload", "--keys=20",
                            "--only-shard=7", "--requests=50", "--connections=2", "--warmup=0.2"}));
  EXPECT_NE(r.failure.find("no key is on shard 7"), std::string::npos) << r.failure;
  EXPECT_NE(r.failure.find("shards 0, 1"), std::string::npos) << r.failure;
  EXPECT_EQ(r.stats.requests(), 0u);
  EXPECT_EQ(server.requests(), 20u);  // the preload only: no warm-up, no measured phase
}

TEST(EngineTest, OnlyShardOfASweepReusesTheFirstRunsPreload) {
  TestHttpServer server(TestHttpServer::Mode::kShards);
  const Options options =
      MakeOptions({"--targets=" + server.Target(), "--preload", "--keys=10", "--only-shard=0",
                   "--requests=20", "--mix=get:100", "--connections=2", "--warmup=0"});
  std::vector<uint64_t> shard_keys;
  RunResult first;
  RunResult second;
  std::string error;
  ASSERT_TRUE(RunBenchmark(options, true, nullptr, first, error, &shard_keys)) << error;
  EXPECT_EQ(shard_keys, (std::vector<uint64_t>{0, 2, 4, 6, 8}));
  ASSERT_TRUE(RunBenchmark(options, false, nullptr, second, error, &shard_keys)) << error;
  EXPECT_TRUE(second.failure.empty()) << second.failure;
  EXPECT_EQ(second.keys_used, 5u);
  EXPECT_EQ(server.requests(), 10u + 20 + 20);
}

TEST(KeysOfShardTest, SelectsSortsAndDeduplicates) {
  const std::vector<KeyShard> shards = {{5, 1}, {2, 0}, {3, 1}, {5, 1}, {9, 2}, {0, 1}};
  EXPECT_EQ(KeysOfShard(shards, 1), (std::vector<uint64_t>{0, 3, 5}));
  EXPECT_EQ(KeysOfShard(shards, 0), (std::vector<uint64_t>{2}));
  EXPECT_TRUE(KeysOfShard(shards, 4).empty());
  EXPECT_TRUE(KeysOfShard({}, 0).empty());
}

TEST(EngineTest, RequestTimeoutIsAnErrorAndTheRunEnds) {
  TestHttpServer server(TestHttpServer::Mode::kSilent);
  const auto start = std::chrono::steady_clock::now();
  const RunResult r =
      RunToEnd(MakeOptions({"--targets=" + server.Target(), "--protocol=raw", "--requests=4",
                            "--connections=2", "--threads=1", "--timeout=200", "--warmup=0"}));
  EXPECT_EQ(r.stats.transport[static_cast<int>(TransportError::kTimeout)], 4u);
  EXPECT_EQ(r.stats.requests(), 4u);
  EXPECT_FALSE(r.AnySuccess());
  EXPECT_LT(SecondsSince(start), 3.0);
  EXPECT_EQ(server.connections(), 4u);  // each timeout replaced its connection
}

TEST(EngineTest, RefusedTargetEndsWithoutHanging) {
  // A port nobody listens on: bound, never listened, then closed.
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&address), length), 0);
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length), 0);
  ::close(fd);
  const std::string target = "127.0.0.1:" + std::to_string(ntohs(address.sin_port));

  const auto start = std::chrono::steady_clock::now();
  const RunResult r = RunToEnd(MakeOptions(
      {"--targets=" + target, "--requests=10", "--connections=2", "--timeout=300", "--warmup=0"}));
  EXPECT_TRUE(r.stalled);
  EXPECT_GT(r.stats.transport[static_cast<int>(TransportError::kConnect)], 0u);
  EXPECT_EQ(r.stats.requests(), 0u);
  EXPECT_FALSE(r.AnySuccess());
  EXPECT_LT(SecondsSince(start), 3.0);
}

TEST(EngineTest, UnresolvableTargetIsAnError) {
  // A DNS label over 63 characters: the resolver refuses it without asking the network.
  const std::string host = std::string(70, 'a') + ".invalid";
  RunResult result;
  std::string error;
  EXPECT_FALSE(
      RunBenchmark(MakeOptions({"--targets=" + host + ":80"}), false, nullptr, result, error));
  EXPECT_NE(error.find("cannot resolve " + host), std::string::npos) << error;
}

}  // namespace
}  // namespace kvs::bench
