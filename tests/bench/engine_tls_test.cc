// kvs-bench over TLS (--tls, --cacert, --cert/--key, --tls-verify-name) against a real
// kvs-server serving HTTPS only, with a CA and certificates made at run time (the HTTP
// suites' harness: MakeTestPki, StartSingleNode). The server answers plain HTTP with a 400,
// so every 2xx below went through TLS. Bounded request counts, no sleeps.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "../cluster/polling.h"
#include "http_client.h"
#include "kvs/bench/engine.h"
#include "kvs/bench/runner.h"
#include "server_process.h"

namespace kvs::bench {
namespace {

using http_test::EnvList;
using http_test::ServerProcess;
using std::chrono::milliseconds;

class EngineTlsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    char dir[] = "/tmp/kvs-bench-tls-test-XXXXXX";
    ASSERT_NE(::mkdtemp(dir), nullptr);
    dir_ = dir;
    pki_ok_ = http_test::MakeTestPki(dir_, &pki_, &pki_error_);
  }
  static void TearDownTestSuite() {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  void SetUp() override {
    ASSERT_TRUE(pki_ok_) << pki_error_;
    // The harness' own client (health checks, /metrics) trusts the CA, checks no names and
    // shows the client certificate (which servers asking for one want).
    http_test::SetClientTls(pki_.ca, pki_.cert, pki_.key, /*check_name=*/false);
  }
  void TearDown() override { http_test::SetClientTls(""); }

  // A one-node store on 127.0.0.1 serving HTTPS with `cert`.
  static std::unique_ptr<ServerProcess> Start(const std::string& cert, const std::string& key,
                                              EnvList extra = {}) {
    EnvList env = {{"KVS_TLS_CERT", cert}, {"KVS_TLS_KEY", key}, {"KVS_TLS_CA", pki_.ca}};
    env.insert(env.end(), extra.begin(), extra.end());
    std::string error;
    auto server = http_test::StartSingleNode(env, {}, &error);
    EXPECT_NE(server, nullptr) << error;
    return server;
  }

  static Options Bench(const ServerProcess& server, std::vector<std::string> args) {
    args.push_back("--targets=127.0.0.1:" + std::to_string(server.port()));
    args.push_back("--quiet");
    std::vector<std::string_view> views(args.begin(), args.end());
    ParsedOptions parsed = ParseOptions(views);
    EXPECT_TRUE(parsed.ok()) << parsed.error;
    return parsed.options;
  }

  static RunResult RunToEnd(const Options& options) {
    RunResult result;
    std::string error;
    EXPECT_TRUE(RunBenchmark(options, options.preload, nullptr, result, error)) << error;
    return result;
  }

  static uint64_t TlsFailures(const Stats& s) {
    return s.transport[static_cast<int>(TransportError::kTls)];
  }

  static inline std::filesystem::path dir_;
  static inline http_test::TestPki pki_;
  static inline bool pki_ok_ = false;
  static inline std::string pki_error_;
};

TEST_F(EngineTlsTest, PreloadAndMixedLoadRunOverHttps) {
  auto server = Start(pki_.cert, pki_.key);
  ASSERT_NE(server, nullptr);
  const Options options = Bench(
      *server, {"--cacert=" + pki_.ca, "--keys=300", "--requests=3000",
                "--mix=get:50,put:40,delete:10", "--connections=8", "--threads=2", "--warmup=0"});
  std::string error;
  auto engine = Engine::Create(options, error);
  ASSERT_NE(engine, nullptr) << error;

  const PhaseResult preload =
      engine->RunPhase({PhaseSpec::Kind::kPreload, "preload", 0, 0}, nullptr);
  EXPECT_EQ(preload.stats.requests(), 300u);
  EXPECT_EQ(preload.stats.status[201], 300u) << preload.stats.StatusSummary();  // each key new
  EXPECT_EQ(preload.stats.transport_errors() + TlsFailures(preload.stats), 0u)
      << preload.stats.tls_error;

  const PhaseResult load =
      engine->RunPhase({PhaseSpec::Kind::kLoad, "run", 0, options.requests}, nullptr);
  const Stats& s = load.stats;
  EXPECT_EQ(s.requests(), 3000u);
  EXPECT_EQ(s.ok + s.not_found, 3000u) << s.StatusSummary();
  EXPECT_EQ(s.http_errors + s.transport_errors() + TlsFailures(s) + s.reconnects, 0u)
      << s.StatusSummary() << " " << s.tls_error;
  EXPECT_GT(s.op_responses[static_cast<int>(Op::kDelete)], 0u);
  EXPECT_TRUE(s.tls_error.empty()) << s.tls_error;
}

TEST_F(EngineTlsTest, AServerOfAnotherCaFailsEveryHandshakeAndTheRunSaysWhy) {
  auto server = Start(pki_.cert, pki_.key);
  ASSERT_NE(server, nullptr);
  // No time limit: the run ends by itself once no connection came up for --timeout.
  const RunResult r = RunToEnd(Bench(
      *server, {"--cacert=" + pki_.rogue_ca, "--requests=20", "--timeout=300", "--warmup=0"}));
  EXPECT_TRUE(r.stalled);
  EXPECT_EQ(r.stats.requests(), 0u);
  EXPECT_GT(TlsFailures(r.stats), 0u);
  EXPECT_NE(r.stats.tls_error.find("certificate"), std::string::npos) << r.stats.tls_error;
}

TEST_F(EngineTlsTest, TheCertificateMustNameTheTargetUnlessNameChecksAreOff) {
  // Signed by the right CA, but for elsewhere.invalid only.
  auto server = Start(pki_.misnamed_cert, pki_.misnamed_key);
  ASSERT_NE(server, nullptr);
  const RunResult checked = RunToEnd(
      Bench(*server, {"--cacert=" + pki_.ca, "--requests=20", "--timeout=300", "--warmup=0"}));
  EXPECT_TRUE(checked.stalled);
  EXPECT_EQ(checked.stats.ok, 0u);
  EXPECT_GT(TlsFailures(checked.stats), 0u);
  EXPECT_NE(checked.stats.tls_error.find("mismatch"), std::string::npos) << checked.stats.tls_error;

  const RunResult unchecked = RunToEnd(Bench(
      *server, {"--cacert=" + pki_.ca, "--tls-verify-name=off", "--requests=200", "--warmup=0"}));
  EXPECT_EQ(unchecked.stats.ok + unchecked.stats.not_found, 200u)
      << unchecked.stats.StatusSummary() << " " << unchecked.stats.tls_error;
  EXPECT_EQ(TlsFailures(unchecked.stats), 0u);
}

TEST_F(EngineTlsTest, AClientCertificateIsShownWhenGiven) {
  auto server = Start(pki_.cert, pki_.key, {{"KVS_TLS_REQUIRE_CLIENT_CERT", "true"}});
  ASSERT_NE(server, nullptr);
  const RunResult without = RunToEnd(
      Bench(*server, {"--cacert=" + pki_.ca, "--requests=20", "--timeout=500", "--warmup=0"}));
  EXPECT_EQ(without.stats.ok + without.stats.not_found, 0u) << without.stats.StatusSummary();
  EXPECT_GT(without.stats.transport_errors() + TlsFailures(without.stats), 0u);

  const RunResult with =
      RunToEnd(Bench(*server, {"--cacert=" + pki_.ca, "--cert=" + pki_.cert, "--key=" + pki_.key,
                               "--requests=200", "--warmup=0"}));
  EXPECT_EQ(with.stats.ok + with.stats.not_found, 200u)
      << with.stats.StatusSummary() << " " << with.stats.tls_error;
  EXPECT_EQ(with.stats.transport_errors() + TlsFailures(with.stats), 0u);
}

// Between phases the connections sit idle; the server closes them (keep-alive timeout, no
// close_notify). The next phase must reconnect, not count failed requests.
TEST_F(EngineTlsTest, IdleConnectionsTheServerClosedAreReconnectedNotFailed) {
  auto server = Start(pki_.cert, pki_.key, {{"KVS_HTTP_KEEPALIVE_TIMEOUT_MS", "200"}});
  ASSERT_NE(server, nullptr);
  const Options options =
      Bench(*server, {"--cacert=" + pki_.ca, "--connections=4", "--threads=1", "--warmup=0"});
  std::string error;
  auto engine = Engine::Create(options, error);
  ASSERT_NE(engine, nullptr) << error;
  const PhaseResult first = engine->RunPhase({PhaseSpec::Kind::kLoad, "one", 0, 100}, nullptr);
  EXPECT_EQ(first.stats.ok + first.stats.not_found, 100u) << first.stats.StatusSummary();

  // Only the /metrics request's own connection left open: the bench's four are closed.
  const auto closed = cluster_test::Eventually(
      [&] {
        const auto metrics = http_test::SendRequest(server->port(), "GET", "/metrics");
        return metrics.body.find("kvs_http_connections_open 1\n") != std::string::npos;
      },
      milliseconds(10000), milliseconds(50));
  ASSERT_TRUE(closed) << "the server kept the idle connections open";

  const PhaseResult second = engine->RunPhase({PhaseSpec::Kind::kLoad, "two", 0, 100}, nullptr);
  const Stats& s = second.stats;
  EXPECT_EQ(s.ok + s.not_found, 100u) << s.StatusSummary();
  EXPECT_EQ(s.transport_errors() + TlsFailures(s), 0u) << s.tls_error;
  EXPECT_EQ(s.reconnects, 4u);
}

}  // namespace
}  // namespace kvs::bench
