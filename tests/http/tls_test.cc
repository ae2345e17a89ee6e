// TLS (kvs.tls.*, issue 12) on both front ends, with a CA and certificates made at run time:
// HTTPS serves the contract; a plain-HTTP request gets no normal answer (the epoll front end
// says why in a 400); mutual TLS refuses clients without a certificate of the CA; two nodes
// replicate to each other over TLS, a node with another CA's certificate or one that does not
// name its address is not reached; bad TLS settings stop the start with one line on stderr.
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "../cluster/polling.h"
#include "gtest/gtest.h"
#include "http_client.h"
#include "server_process.h"

namespace kvs::http_test {
namespace {

using std::chrono::milliseconds;

class TlsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    char dir[] = "/tmp/kvs-tls-test-XXXXXX";
    ASSERT_NE(::mkdtemp(dir), nullptr);
    dir_ = dir;
    std::string error;
    pki_ok_ = MakeTestPki(dir_, &pki_, &error);
    pki_error_ = error;
    // A client that trusts both CAs and checks no names: it can ask any test node for /health.
    both_cas_ = (dir_ / "both-cas.pem").string();
    std::filesystem::copy_file(pki_.ca, both_cas_);
    std::FILE* out = std::fopen(both_cas_.c_str(), "a");
    std::FILE* in = std::fopen(pki_.rogue_ca.c_str(), "r");
    if (out != nullptr && in != nullptr) {
      char buffer[4096];
      for (size_t n; (n = std::fread(buffer, 1, sizeof buffer, in)) > 0;) {
        std::fwrite(buffer, 1, n, out);
      }
    }
    if (in != nullptr) std::fclose(in);
    if (out != nullptr) std::fclose(out);
  }
  static void TearDownTestSuite() {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  void SetUp() override {
    ASSERT_TRUE(pki_ok_) << pki_error_;
    SecureSuiteEnv();  // a secure run's own client set-up happens first, then this test's
    SetClientTls(pki_.ca);
  }
  void TearDown() override { SetClientTls(SecureSuiteCa(), "", "", /*check_name=*/false); }

  static EnvList TlsEnv(const std::string& cert, const std::string& key, EnvList extra = {}) {
    EnvList env = {{"KVS_TLS_CERT", cert}, {"KVS_TLS_KEY", key}, {"KVS_TLS_CA", pki_.ca}};
    env.insert(env.end(), extra.begin(), extra.end());
    return env;
  }
  static std::unique_ptr<ServerProcess> Start(const EnvList& env) {
    std::string error;
    auto server = StartSingleNode(env, {}, &error);
    EXPECT_NE(server, nullptr) << error;
    return server;
  }
  // Two nodes of one shard on 127.0.0.1; `second_env` may give the second another identity.
  static std::pair<std::unique_ptr<ServerProcess>, std::unique_ptr<ServerProcess>> StartPair(
      const EnvList& first_env, const EnvList& second_env) {
    const uint16_t p1 = FreeLoopbackPort(), p2 = FreeLoopbackPort();
    const std::string view = LoopbackAddress(p1) + "," + LoopbackAddress(p2);
    std::unique_ptr<ServerProcess> nodes[2];
    const uint16_t ports[2] = {p1, p2};
    const EnvList* envs[2] = {&first_env, &second_env};
    for (int i = 0; i < 2; ++i) {
      EnvList env = {{"SOCKET_ADDRESS", LoopbackAddress(ports[i])},
                     {"VIEW", view},
                     {"SHARD_COUNT", "1"},
                     {"KVS_HTTP_BIND", "127.0.0.1"},
                     {"KVS_CLUSTER_FAILURE_TIMEOUT_MS", "1500"},
                     {"KVS_REPLICATION_BOOTSTRAP_TIMEOUT_MS", "500"}};
      env.insert(env.end(), envs[i]->begin(), envs[i]->end());
      std::string error;
      nodes[i] = ServerProcess::Spawn({env, {}}, &error);
      EXPECT_NE(nodes[i], nullptr) << error;
      if (nodes[i] == nullptr) return {};
      nodes[i]->set_port(ports[i]);
    }
    for (auto& node : nodes) EXPECT_TRUE(node->WaitUntilHealthy(milliseconds(10000)));
    return {std::move(nodes[0]), std::move(nodes[1])};
  }
  static bool PlainFrontEndIsPoco() {
    const char* frontend = std::getenv("KVS_HTTP_FRONTEND");
    return frontend != nullptr && std::string(frontend) == "poco";
  }

  static inline std::filesystem::path dir_;
  static inline TestPki pki_;
  static inline bool pki_ok_ = false;
  static inline std::string pki_error_;
  static inline std::string both_cas_;
};

TEST_F(TlsTest, HttpsServesTheContractAndPlainHttpIsTurnedAway) {
  auto server = Start(TlsEnv(pki_.cert, pki_.key));
  ASSERT_NE(server, nullptr);
  const HttpResponse put = SendRequest(server->port(), "PUT", "/key-value-store/k", PutBody("v"));
  ASSERT_EQ(put.status, 201) << Describe(put);
  const HttpResponse get = SendRequest(server->port(), "GET", "/key-value-store/k");
  EXPECT_EQ(ParseObject(get.body)->optValue<std::string>("value", ""), "v") << Describe(get);
  // A client that does not trust the CA gets nothing.
  SetClientTls(pki_.rogue_ca);
  EXPECT_EQ(SendRequest(server->port(), "GET", "/health").status, 0);
  // Plain HTTP: the epoll front end answers 400 in plain text and closes; POCO's fails the
  // handshake and closes without an answer.
  SetClientTls("");
  const HttpResponse plain = SendRequest(server->port(), "GET", "/health");
  if (PlainFrontEndIsPoco()) {
    EXPECT_EQ(plain.status, 0) << Describe(plain);
  } else {
    EXPECT_TRUE(IsJson(plain, 400,
                       R"({"error":"This port serves HTTPS (TLS is on): use https://",)"
                       R"("message":"Error in request"})"))
        << Describe(plain);
    EXPECT_EQ(plain.Header("connection"), "close");
  }
  SetClientTls(pki_.ca);
  EXPECT_EQ(SendRequest(server->port(), "GET", "/health").status, 200);  // still serving
}

TEST_F(TlsTest, MutualTlsRefusesClientsWithoutACertificateOfTheCa) {
  SetClientTls(pki_.ca, pki_.cert, pki_.key);
  auto server = Start(TlsEnv(pki_.cert, pki_.key, {{"KVS_TLS_REQUIRE_CLIENT_CERT", "true"}}));
  ASSERT_NE(server, nullptr);
  SetClientTls(pki_.ca);  // no client certificate
  EXPECT_EQ(SendRequest(server->port(), "GET", "/health").status, 0);
  SetClientTls(pki_.ca, pki_.rogue_cert, pki_.rogue_key);  // another CA's
  EXPECT_EQ(SendRequest(server->port(), "GET", "/health").status, 0);
  SetClientTls(pki_.ca, pki_.cert, pki_.key);
  EXPECT_EQ(SendRequest(server->port(), "GET", "/health").status, 200);
}

// A client offering the session of its last connection (TLS 1.3 ticket) is served on a resumed
// handshake, with and without mutual TLS (OpenSSL refuses a resumption, with an "internal error"
// alert, where the server verifies clients without a session id context).
TEST_F(TlsTest, ClientsResumeTheirSessionsAlsoWithMutualTls) {
  SetClientTls(pki_.ca, pki_.cert, pki_.key);
  for (const bool mutual : {false, true}) {
    SCOPED_TRACE(mutual ? "mutual TLS" : "server certificate only");
    auto server = Start(
        TlsEnv(pki_.cert, pki_.key, {{"KVS_TLS_REQUIRE_CLIENT_CERT", mutual ? "true" : "false"}}));
    ASSERT_NE(server, nullptr);  // (its health checks already left a session to resume)
    const int resumed_before = ResumedTlsSessions();
    for (int i = 0; i < 3; ++i) {
      const HttpResponse r = SendRequest(server->port(), "GET", "/health");
      EXPECT_EQ(r.status, 200) << Describe(r);
    }
    EXPECT_EQ(ResumedTlsSessions() - resumed_before, 3);
  }
}

TEST_F(TlsTest, NodesReplicateOverMutualTls) {
  const EnvList env =
      TlsEnv(pki_.cert, pki_.key,
             {{"KVS_TLS_REQUIRE_CLIENT_CERT", "true"}, {"KVS_CLUSTER_SECRET", "tls-test-secret"}});
  SetClientTls(pki_.ca, pki_.cert, pki_.key);
  auto nodes1 = StartPair(env, env);
  // (Named references: clang 14 cannot capture a structured binding.)
  std::unique_ptr<ServerProcess>& a = nodes1.first;
  std::unique_ptr<ServerProcess>& b = nodes1.second;
  ASSERT_TRUE(a && b);
  const HttpResponse put = SendRequest(a->port(), "PUT", "/key-value-store/shared", PutBody("x"));
  ASSERT_EQ(put.status, 201) << Describe(put);
  const std::string metadata = ParseObject(put.body)->optValue<std::string>("causal-metadata", "");
  const HttpResponse get =
      SendRequest(b->port(), "GET", "/key-value-store/shared", MetadataBody(metadata));
  ASSERT_EQ(get.status, 200) << Describe(get);
  EXPECT_EQ(ParseObject(get.body)->optValue<std::string>("value", ""), "x");
}

// `second` (a certificate of another CA) never joins: the first node drops it from its view.
void ExpectNotAdmitted(ServerProcess& first, ServerProcess& second) {
  const std::string address = LoopbackAddress(second.port());
  EXPECT_TRUE(static_cast<bool>(cluster_test::Eventually(
      [&] {
        const HttpResponse view = SendRequest(first.port(), "GET", "/key-value-store-view");
        return view.status == 200 && view.body.find(address) == std::string::npos;
      },
      milliseconds(15000))))
      << "the first node still lists " << address;
}

// `first` says in its log that TLS with `second` failed.
bool LogsTlsFailureWith(ServerProcess& first, ServerProcess& second, milliseconds timeout) {
  const std::string line = "TLS with " + LoopbackAddress(second.port()) + " failed";
  return static_cast<bool>(cluster_test::Eventually(
      [&] {
        return first.Stderr().find(line) != std::string::npos ||
               first.Stdout().find(line) != std::string::npos;
      },
      timeout));
}

TEST_F(TlsTest, APeerWithAnotherCasCertificateIsNotAdmitted) {
  const EnvList good = TlsEnv(pki_.cert, pki_.key);
  EnvList rogue = {{"KVS_TLS_CERT", pki_.rogue_cert},
                   {"KVS_TLS_KEY", pki_.rogue_key},
                   {"KVS_TLS_CA", pki_.rogue_ca}};
  SetClientTls(both_cas_, "", "", /*check_name=*/false);
  auto nodes2 = StartPair(good, rogue);
  std::unique_ptr<ServerProcess>& a = nodes2.first;
  std::unique_ptr<ServerProcess>& b = nodes2.second;
  ASSERT_TRUE(a && b);
  ExpectNotAdmitted(*a, *b);
}

TEST_F(TlsTest, APeerWhoseCertificateNamesAnotherHostIsNotReachedUnlessNamesAreNotChecked) {
  const EnvList good = TlsEnv(pki_.cert, pki_.key);
  const EnvList misnamed = TlsEnv(pki_.misnamed_cert, pki_.misnamed_key);
  SetClientTls(pki_.ca, "", "", /*check_name=*/false);
  {
    // (b still reaches a, whose certificate is right: a's calls to b are what fail.)
    auto nodes3 = StartPair(good, misnamed);
    std::unique_ptr<ServerProcess>& a = nodes3.first;
    std::unique_ptr<ServerProcess>& b = nodes3.second;
    ASSERT_TRUE(a && b);
    EXPECT_TRUE(LogsTlsFailureWith(*a, *b, milliseconds(10000))) << a->Stderr() << a->Stdout();
  }
  // With kvs.tls.verify_peer_name=false any certificate of the CA will do.
  const EnvList lax = TlsEnv(pki_.cert, pki_.key, {{"KVS_TLS_VERIFY_PEER_NAME", "false"}});
  auto nodes4 = StartPair(
      lax, TlsEnv(pki_.misnamed_cert, pki_.misnamed_key, {{"KVS_TLS_VERIFY_PEER_NAME", "false"}}));
  std::unique_ptr<ServerProcess>& a = nodes4.first;
  std::unique_ptr<ServerProcess>& b = nodes4.second;
  ASSERT_TRUE(a && b);
  const HttpResponse put = SendRequest(a->port(), "PUT", "/key-value-store/lax", PutBody("y"));
  ASSERT_EQ(put.status, 201) << Describe(put);
  // a broadcasts the write to b: it is there without waiting for anti-entropy (b pulls too,
  // so this does not prove much alone), and a logged no TLS failure with b.
  const std::string metadata = ParseObject(put.body)->optValue<std::string>("causal-metadata", "");
  EXPECT_TRUE(static_cast<bool>(cluster_test::Eventually(
      [&] {
        const HttpResponse get =
            SendRequest(b->port(), "GET", "/key-value-store/lax", MetadataBody(metadata));
        return get.status == 200;
      },
      milliseconds(10000))));
  EXPECT_FALSE(LogsTlsFailureWith(*a, *b, milliseconds(0))) << a->Stderr() << a->Stdout();
}

TEST_F(TlsTest, APeerClosingAnIdleConnectionIsNotReportedAsATlsFailure) {
  // Idle keep-alive connections close after 300 ms, heartbeats come every second: every call
  // a node makes finds its pooled connection closed by the peer (an EOF without close_notify,
  // which OpenSSL reports as an error), and retries on a fresh one. That is no TLS problem.
  const EnvList env = TlsEnv(pki_.cert, pki_.key, {{"KVS_HTTP_KEEPALIVE_TIMEOUT_MS", "300"}});
  auto nodes = StartPair(env, env);
  std::unique_ptr<ServerProcess>& a = nodes.first;
  std::unique_ptr<ServerProcess>& b = nodes.second;
  ASSERT_TRUE(a && b);
  const auto logs = [&] { return a->Stderr() + a->Stdout(); };
  ASSERT_TRUE(static_cast<bool>(cluster_test::Eventually(
      [&] { return logs().find("failed on a reused connection") != std::string::npos; },
      milliseconds(15000))))
      << "the scenario did not happen:\n"
      << logs();
  EXPECT_EQ(logs().find("TLS with"), std::string::npos) << logs();
  EXPECT_EQ(SendRequest(a->port(), "GET", "/key-value-store-view").status, 200);
}

TEST_F(TlsTest, BadSettingsStopTheStartWithOneLine) {
  const std::string missing = (dir_ / "missing.pem").string();
  const std::vector<std::pair<EnvList, std::string>> cases = {
      {TlsEnv(missing, pki_.key), "kvs.tls.cert"},
      {{{"KVS_TLS_CERT", pki_.cert}, {"KVS_TLS_KEY", pki_.key}, {"KVS_TLS_CA", ""}}, "kvs.tls.ca"},
      {TlsEnv(pki_.cert, pki_.rogue_key), "does not match"},
      {TlsEnv(pki_.cert, pki_.key, {{"KVS_TLS_REQUIRE_CLIENT_CERT", "yes"}}),
       "kvs.tls.require_client_cert"},
      {{{"KVS_TLS_CERT", ""}, {"KVS_TLS_KEY", pki_.key}, {"KVS_TLS_CA", ""}}, "need kvs.tls.cert"},
  };
  for (const auto& [extra, mention] : cases) {
    std::string error;
    const uint16_t port = FreeLoopbackPort();
    auto server = ServerProcess::Spawn({SingleNodeEnv(port, extra), {}}, &error);
    ASSERT_NE(server, nullptr) << error;
    const auto status = server->WaitForExit(milliseconds(10000));
    ASSERT_TRUE(status.has_value()) << mention << ": still running";
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) != 0) << DescribeWaitStatus(*status);
    EXPECT_NE(server->Stderr().find(mention), std::string::npos) << mention << " not in:\n"
                                                                 << server->Stderr();
  }
}

}  // namespace
}  // namespace kvs::http_test
