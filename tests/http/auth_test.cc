// Issue 12 over real HTTP, on both front ends: with kvs.cluster.secret and kvs.admin.token set,
// every /internal/ path and every admin path refuses a missing and a wrong credential with a
// JSON 401 (counted in /metrics), forged / replayed / expired / truncated / oversized node-to-node
// messages apply nothing, and neither credential shows in /health, /metrics or the logs.
#include <cstdlib>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "http_client.h"
#include "kvs/auth/cluster_auth.h"
#include "server_process.h"

namespace kvs::http_test {
namespace {

constexpr char kSecret[] = "auth-test-secret-d41c";
constexpr char kToken[] = "auth-test-token-77aa";
constexpr char kNewcomer[] = "127.0.0.1:9";  // a view entry that no node serves

// One request written by hand, so that the test controls every header.
std::string RawRequest(const std::string& method, const std::string& target,
                       const std::string& body, const std::vector<std::string>& headers) {
  std::string out = method + " " + target + " HTTP/1.1\r\nHost: kvs\r\nConnection: close\r\n";
  for (const std::string& h : headers) out += h + "\r\n";
  out += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
         "\r\n\r\n" + body;
  return out;
}

class AuthTest : public SharedServerTest<AuthTest> {
 public:
  static EnvList ExtraEnv() {
    return {{"KVS_CLUSTER_SECRET", kSecret}, {"KVS_ADMIN_TOKEN", kToken}};
  }

 protected:
  static auth::ClusterAuth& Signer() {
    static auth::ClusterAuth signer(kSecret, std::chrono::milliseconds(30000));
    return signer;
  }
  static HttpResponse Send(const std::string& method, const std::string& target,
                           const std::string& body, const std::vector<std::string>& headers) {
    return RawExchange(port(), RawRequest(method, target, body, headers));
  }
  static HttpResponse SendSigned(const auth::ClusterAuth& signer, const std::string& method,
                                 const std::string& target, const std::string& body) {
    return Send(method, target, body,
                {std::string(auth::kAuthHeader) + ": " + signer.Sign(method, target, body)});
  }
  // The 401 JSON error of a refused request names `reason`.
  static ::testing::AssertionResult Refused(const HttpResponse& r, const std::string& method,
                                            const std::string& reason) {
    if (r.status != 401) return ::testing::AssertionFailure() << Describe(r);
    const auto body = ParseObject(r.body);
    if (body.isNull() || body->optValue<std::string>("message", "") != "Error in " + method ||
        body->optValue<std::string>("error", "").find("(" + reason + ")") == std::string::npos) {
      return ::testing::AssertionFailure() << "not the JSON error expected: " << Describe(r);
    }
    return ::testing::AssertionSuccess();
  }
  static uint64_t Counter(const std::string& labels) {
    const HttpResponse r = SendRequest(port(), "GET", "/metrics");
    const std::string line = "kvs_auth_failures_total{" + labels + "} ";
    const size_t at = r.body.find(line);
    return at == std::string::npos ? ~0ull : std::stoull(r.body.substr(at + line.size()));
  }
  static bool InView(const std::string& address) {
    const auto body = ParseObject(SendRequest(port(), "GET", "/key-value-store-view").body);
    const std::string view = body.isNull() ? "" : body->optValue<std::string>("view", "");
    return ("," + view + ",").find("," + address + ",") != std::string::npos;
  }
};

// Every node-to-node endpoint the server has (and one it has not: refused before routing).
const std::vector<std::pair<std::string, std::string>> kInternal = {
    {"POST", "/internal/replicate"},     {"POST", "/internal/sync"},
    {"GET", "/internal/heartbeat"},      {"POST", "/internal/view"},
    {"GET", "/internal/config"},         {"POST", "/internal/config"},
    {"POST", "/internal/reshard/stage"}, {"GET", "/internal/reshard/progress"},
    {"POST", "/internal/catch-up"},      {"POST", "/internal/reshard/prepare"},
    {"POST", "/internal/reshard/abort"}, {"POST", "/internal/reshard/finish"},
    {"GET", "/internal/unknown"},
};

TEST_F(AuthTest, EveryInternalPathRefusesAMissingAndAWrongProof) {
  const uint64_t missing_before = Counter(R"(credential="cluster",reason="missing")");
  const uint64_t wrong_before = Counter(R"(credential="cluster",reason="bad-signature")");
  auth::ClusterAuth wrong("not-the-secret", std::chrono::milliseconds(30000));
  for (const auto& [method, target] : kInternal) {
    const std::string body = method == "POST" ? "{}" : "";
    EXPECT_TRUE(Refused(Send(method, target, body, {}), method, "missing")) << target;
    EXPECT_TRUE(Refused(SendSigned(wrong, method, target, body), method, "bad-signature"))
        << target;
    // The right secret gets through (whatever the endpoint then makes of "{}").
    EXPECT_NE(SendSigned(Signer(), method, target, body).status, 401) << target;
  }
  EXPECT_EQ(Counter(R"(credential="cluster",reason="missing")"), missing_before + kInternal.size());
  EXPECT_EQ(Counter(R"(credential="cluster",reason="bad-signature")"),
            wrong_before + kInternal.size());
}

TEST_F(AuthTest, ForgedReplayedExpiredAndTruncatedMessagesApplyNothing) {
  const std::string target = "/internal/view";
  const std::string up = std::string(R"({"address":")") + kNewcomer + R"(","change":"up"})";
  const std::string down = std::string(R"({"address":")") + kNewcomer + R"(","change":"forget"})";
  const std::string header = std::string(auth::kAuthHeader) + ": ";
  auth::ClusterAuth wrong("not-the-secret", std::chrono::milliseconds(30000));
  EXPECT_TRUE(Refused(SendSigned(wrong, "POST", target, up), "POST", "bad-signature"));
  // An old timestamp, signed with the right secret.
  const std::string expired = Signer().SignAt("POST", target, up, auth::UnixMillis() - 120000,
                                              "0123456789abcdef0123456789abcdef");
  EXPECT_TRUE(Refused(Send("POST", target, up, {header + expired}), "POST", "expired"));
  // Signed for the whole body, delivered cut short (with a matching Content-Length).
  const std::string proof_of_whole = Signer().Sign("POST", target, up);
  EXPECT_TRUE(Refused(Send("POST", target, up.substr(0, up.size() - 4), {header + proof_of_whole}),
                      "POST", "bad-signature"));
  EXPECT_TRUE(
      Refused(Send("POST", target, up, {header + "v1 ts=1 nonce=x sig=y"}), "POST", "malformed"));
  EXPECT_FALSE(InView(kNewcomer));
  // The genuine message applies once; sent again (a replay) after it was undone, nothing.
  const std::string proof = Signer().Sign("POST", target, up);
  ASSERT_EQ(Send("POST", target, up, {header + proof}).status, 200);
  ASSERT_TRUE(InView(kNewcomer));
  ASSERT_EQ(SendSigned(Signer(), "POST", target, down).status, 200);
  ASSERT_FALSE(InView(kNewcomer));
  EXPECT_TRUE(Refused(Send("POST", target, up, {header + proof}), "POST", "replayed"));
  EXPECT_FALSE(InView(kNewcomer));
  EXPECT_GE(Counter(R"(credential="cluster",reason="replayed")"), 1u);
  EXPECT_GE(Counter(R"(credential="cluster",reason="expired")"), 1u);
}

TEST_F(AuthTest, OversizedAndCutOffMessagesAreRefusedAndTheServerGoesOn) {
  // Announced bigger than any node-to-node message may be: 413 before a byte of it is read.
  const HttpResponse big = RawExchange(
      port(),
      "POST /internal/replicate HTTP/1.1\r\nHost: kvs\r\nContent-Length: 999999999999\r\n"
      "\r\n");
  EXPECT_TRUE(IsJson(big, 413, R"({"error":"Request body too large","message":"Error in POST"})"))
      << Describe(big);
  // A body that never completes: the connection is dropped, nothing is applied.
  const HttpResponse cut = RawExchange(
      port(), "POST /internal/view HTTP/1.1\r\nHost: kvs\r\nContent-Length: 500\r\n\r\n{\"add",
      std::chrono::milliseconds(500));
  EXPECT_NE(cut.status, 200) << Describe(cut);
  EXPECT_EQ(SendRequest(port(), "GET", "/health").status, 200);
}

TEST_F(AuthTest, AdminPathsRefuseAMissingAndAWrongToken) {
  const std::string view_body = std::string(R"({"socket-address":")") + kNewcomer + "\"}";
  const std::vector<std::tuple<std::string, std::string, std::string>> admin = {
      {"PUT", "/key-value-store-view", view_body},
      {"DELETE", "/key-value-store-view", view_body},
      {"PUT", "/key-value-store-shard/add-member/0", view_body},
      {"PUT", "/key-value-store-shard/reshard", R"({"shard-count":1})"},
  };
  const uint64_t missing_before = Counter(R"(credential="admin",reason="missing")");
  const uint64_t wrong_before = Counter(R"(credential="admin",reason="wrong-token")");
  for (const auto& [method, target, body] : admin) {
    const HttpResponse missing = Send(method, target, body, {});
    EXPECT_TRUE(Refused(missing, method, "missing")) << target;
    EXPECT_EQ(missing.Header("www-authenticate"), "Bearer") << target;
    EXPECT_TRUE(Refused(Send(method, target, body, {"Authorization: Bearer not-the-token"}), method,
                        "wrong token"))
        << target;
  }
  EXPECT_FALSE(InView(kNewcomer));
  EXPECT_EQ(Counter(R"(credential="admin",reason="missing")"), missing_before + admin.size());
  EXPECT_EQ(Counter(R"(credential="admin",reason="wrong-token")"), wrong_before + admin.size());
  // With the token: served as the SPEC says.
  const std::string bearer = std::string("Authorization: Bearer ") + kToken;
  EXPECT_EQ(Send("PUT", "/key-value-store-view", view_body, {bearer}).status, 201);
  EXPECT_EQ(Send("DELETE", "/key-value-store-view", view_body, {bearer}).status, 200);
  // (One node cannot make a shard of two: the SPEC's 400, past the token check.)
  const HttpResponse reshard =
      Send("PUT", "/key-value-store-shard/reshard", R"({"shard-count":1})", {bearer});
  EXPECT_TRUE(IsJson(
      reshard, 400,
      R"({"message":"Not enough nodes to provide fault-tolerance with the given shard count!"})"))
      << Describe(reshard);
  // Key-value requests and reads need no token.
  EXPECT_EQ(Send("PUT", "/key-value-store/open", R"({"value":"v"})", {}).status, 201);
  EXPECT_EQ(Send("GET", "/key-value-store-shard/shard-ids", "", {}).status, 200);
}

TEST_F(AuthTest, NeitherCredentialShowsInHealthMetricsOrLogs) {
  // Make the server log a refusal or two first.
  Send("GET", "/internal/config", "", {});
  Send("PUT", "/key-value-store-view", "{}", {"Authorization: Bearer wrong"});
  for (const std::string& text :
       {SendRequest(port(), "GET", "/health").body, SendRequest(port(), "GET", "/metrics").body,
        server_->Stderr(), server_->Stdout()}) {
    EXPECT_EQ(text.find(kSecret), std::string::npos);
    EXPECT_EQ(text.find(kToken), std::string::npos);
  }
  EXPECT_NE(server_->Stderr().find("node-to-node authentication: on") == std::string::npos &&
                server_->Stdout().find("node-to-node authentication: on") == std::string::npos,
            true);
}

// The secure.* run of this suite really runs its servers with both credentials on.
TEST(SecureSuiteTest, ServersOfASecureRunHaveBothCredentials) {
  if (SecureSuiteEnv().empty()) GTEST_SKIP() << "not a secure.* run (KVS_TEST_SECURE unset)";
  std::string error;
  auto server = StartSingleNode({}, {}, &error);
  ASSERT_NE(server, nullptr) << error;
  EXPECT_EQ(SendRequest(server->port(), "GET", "/internal/config").status, 401);
  // HttpClient sends the token: admin calls pass.
  const std::string body = std::string(R"({"socket-address":")") + kNewcomer + "\"}";
  EXPECT_EQ(SendRequest(server->port(), "PUT", "/key-value-store-view", body).status, 201);
  EXPECT_EQ(
      RawExchange(server->port(), RawRequest("PUT", "/key-value-store-view", body, {})).status,
      401);
  const char* mode = std::getenv("KVS_TEST_SECURE");
  if (mode != nullptr && std::string(mode) == "tls") {
    ASSERT_TRUE(ClientTlsOn());
    // The server speaks only TLS: a plain-HTTP request (the harness' TLS off for a moment)
    // gets no normal answer.
    SetClientTls("");
    const HttpResponse plain = SendRequest(server->port(), "GET", "/health");
    SetClientTls(SecureSuiteCa(), "", "", /*check_name=*/false);
    EXPECT_NE(plain.status, 200) << Describe(plain);
    EXPECT_EQ(SendRequest(server->port(), "GET", "/health").status, 200);
  }
}

}  // namespace
}  // namespace kvs::http_test
