// Routing and handler behaviour of the public contract, without sockets.
#include "kvs/api/service.h"

#include <Poco/JSON/Parser.h>
#include <gtest/gtest.h>

#include <algorithm>

namespace kvs::api {
namespace {

using cluster::Address;

class ServiceTest : public ::testing::Test {
 protected:
  ServiceTest() : ServiceTest(Security{}) {}
  explicit ServiceTest(Security security, std::vector<Address> view = {})
      : cluster_(self_, view.empty() ? std::vector<Address>{self_} : view,
                 cluster::InitialAssignment(view.empty() ? std::vector<Address>{self_} : view,
                                            view.empty() ? 1 : 2)),
        // Heartbeats and notices go nowhere: this service is tested without a network.
        detector_(cluster_,
                  {[](const Address&) { return false; },
                   [](const Address&, const Address&, bool, bool) {}},
                  std::chrono::milliseconds(1000), std::chrono::milliseconds(60000), 1),
        replicator_(store_, clock_, cluster_, peers_, replication::ReplicationOptions{}),
        coordinator_(store_, clock_, replicator_, self_.ToString() + "#1"),
        reconfigurator_(store_, clock_, cluster_, peers_, replicator_, coordinator_,
                        replication::ReconfigureOptions{}),
        service_(store_, cluster_, detector_, replicator_, coordinator_, reconfigurator_, peers_,
                 metrics_, Limits{4096, 1024}, nullptr, std::move(security)) {
    replicator_.Bootstrap();
  }

  Response Call(std::string_view method, std::string_view target, std::string_view body = "") {
    return service_.Handle(Request{method, target, body});
  }

  static Poco::JSON::Object::Ptr Body(const Response& response) {
    Poco::JSON::Parser parser;
    return parser.parse(response.body).extract<Poco::JSON::Object::Ptr>();
  }

  static void ExpectError(const Response& r, int status, const std::string& error,
                          const std::string& message) {
    EXPECT_EQ(r.status, status) << r.body;
    auto body = Body(r);
    EXPECT_EQ(body->getValue<std::string>("error"), error) << r.body;
    EXPECT_EQ(body->getValue<std::string>("message"), message) << r.body;
  }

  const Address self_{"127.0.0.1", 7000};
  store::Store store_;
  causal::HybridClock clock_;
  cluster::ClusterState cluster_;
  cluster::FailureDetector detector_;
  net::PeerClient peers_;
  replication::Replicator replicator_;
  replication::Coordinator coordinator_;
  replication::Reconfigurator reconfigurator_;
  Metrics metrics_;
  Service service_;
};

TEST_F(ServiceTest, PutGetDeleteRoundTrip) {
  Response put = Call("PUT", "/key-value-store/k", R"({"value":"v","causal-metadata":""})");
  EXPECT_EQ(put.status, 201);
  EXPECT_EQ(Body(put)->getValue<std::string>("message"), "Added successfully");
  EXPECT_EQ(Body(put)->getValue<int>("shard-id"), 0);
  const std::string meta = Body(put)->getValue<std::string>("causal-metadata");

  Response get = Call("GET", "/key-value-store/k", R"({"causal-metadata":")" + meta + R"("})");
  EXPECT_EQ(get.status, 200);
  EXPECT_EQ(Body(get)->getValue<std::string>("value"), "v");
  EXPECT_EQ(Body(get)->getValue<std::string>("causal-metadata"), meta);

  Response update = Call("PUT", "/key-value-store/k", R"({"value":"w"})");
  EXPECT_EQ(update.status, 200);
  EXPECT_EQ(Body(update)->getValue<std::string>("message"), "Updated successfully");

  Response del = Call("DELETE", "/key-value-store/k");
  EXPECT_EQ(del.status, 200);
  EXPECT_EQ(Body(del)->getValue<std::string>("message"), "Deleted successfully");
  Response gone = Call("GET", "/key-value-store/k");
  ExpectError(gone, 404, "Key does not exist", "Error in GET");
  EXPECT_FALSE(Body(gone)->getValue<bool>("doesExist"));
}

TEST_F(ServiceTest, KeyIsUrlDecoded) {
  EXPECT_EQ(Call("PUT", "/key-value-store/a%20b", R"({"value":"v"})").status, 201);
  EXPECT_TRUE(store_.Get("a b").has_value());
  EXPECT_EQ(Call("GET", "/key-value-store/a%20b?x=1").status, 200);
}

TEST_F(ServiceTest, KeyLengthLimitCountsCharacters) {
  const std::string fifty(50, 'k');
  EXPECT_EQ(Call("PUT", "/key-value-store/" + fifty, R"({"value":"v"})").status, 201);
  ExpectError(Call("PUT", "/key-value-store/" + fifty + "k", R"({"value":"v"})"), 400,
              "Key is too long", "Error in PUT");
  // 50 two-byte characters are 50 characters.
  std::string wide;
  for (int i = 0; i < 50; ++i) wide += "%C3%A9";
  EXPECT_EQ(Call("PUT", "/key-value-store/" + wide, R"({"value":"v"})").status, 201);
}

TEST_F(ServiceTest, BadBodies) {
  ExpectError(Call("PUT", "/key-value-store/k", "{"), 400, "Body is not valid JSON",
              "Error in PUT");
  ExpectError(Call("GET", "/key-value-store/k", "nope"), 400, "Body is not valid JSON",
              "Error in GET");
  ExpectError(Call("PUT", "/key-value-store/k", "[1]"), 400, "Body must be a JSON object",
              "Error in PUT");
  ExpectError(Call("PUT", "/key-value-store/k", "{}"), 400, "Value is missing", "Error in PUT");
  ExpectError(Call("PUT", "/key-value-store/k", R"({"value":3})"), 400, "Value must be a string",
              "Error in PUT");
  ExpectError(Call("PUT", "/key-value-store/k", R"({"value":null})"), 400, "Value must be a string",
              "Error in PUT");
  ExpectError(Call("PUT", "/key-value-store/k", R"({"value":")" + std::string(1025, 'x') + "\"}"),
              413, "Request body too large", "Error in PUT");
  ExpectError(Call("PUT", "/key-value-store/", R"({"value":"v"})"), 400, "Key is missing",
              "Error in PUT");
  ExpectError(Call("PUT", "/key-value-store/%zz", R"({"value":"v"})"), 400,
              "Key is not validly URL-encoded", "Error in PUT");
}

TEST_F(ServiceTest, BadMetadata) {
  for (const char* body :
       {R"({"value":"v","causal-metadata":"garbage"})", R"({"value":"v","causal-metadata":5})",
        R"({"value":"v","causal-metadata":{"a":1}})"}) {
    Response r = Call("PUT", "/key-value-store/k", body);
    EXPECT_EQ(r.status, 400) << body;
    EXPECT_EQ(Body(r)->getValue<std::string>("error").rfind("Invalid causal-metadata", 0), 0u)
        << r.body;
  }
  EXPECT_EQ(Call("PUT", "/key-value-store/k", R"({"value":"v","causal-metadata":null})").status,
            201);
}

TEST_F(ServiceTest, UnknownPathAndWrongMethod) {
  ExpectError(Call("GET", "/nope"), 404, "Path not found", "Error in GET");
  ExpectError(Call("GET", "/key-value-store-shard/unknown"), 404, "Path not found", "Error in GET");
  Response r = Call("POST", "/key-value-store/k");
  ExpectError(r, 405, "Method not allowed", "Error in POST");
  EXPECT_EQ(r.allow, "GET, PUT, DELETE");
  ExpectError(Call("DELETE", "/health"), 405, "Method not allowed", "Error in DELETE");
  ExpectError(Call("GET", "/key-value-store-shard/reshard"), 405, "Method not allowed",
              "Error in GET");
}

TEST_F(ServiceTest, ViewOperations) {
  Response view = Call("GET", "/key-value-store-view");
  EXPECT_EQ(Body(view)->getValue<std::string>("view"), "127.0.0.1:7000");
  EXPECT_EQ(Call("PUT", "/key-value-store-view", R"({"socket-address":"127.0.0.1:7001"})").status,
            201);
  EXPECT_EQ(Body(Call("GET", "/key-value-store-view"))->getValue<std::string>("view"),
            "127.0.0.1:7000,127.0.0.1:7001");
  ExpectError(Call("PUT", "/key-value-store-view", R"({"socket-address":"127.0.0.1:7001"})"), 404,
              "Socket address already exists in the view", "Error in PUT");
  EXPECT_EQ(
      Call("DELETE", "/key-value-store-view", R"({"socket-address":"127.0.0.1:7001"})").status,
      200);
  ExpectError(Call("DELETE", "/key-value-store-view", R"({"socket-address":"127.0.0.1:7001"})"),
              404, "Socket address does not exist in the view", "Error in DELETE");
  ExpectError(Call("PUT", "/key-value-store-view", "{}"), 400, "socket-address is missing",
              "Error in PUT");
  ExpectError(Call("PUT", "/key-value-store-view", R"({"socket-address":1})"), 400,
              "socket-address must be a string", "Error in PUT");
  ExpectError(Call("PUT", "/key-value-store-view", R"({"socket-address":"nohost"})"), 400,
              "Invalid socket-address", "Error in PUT");
}

TEST_F(ServiceTest, ShardReads) {
  auto ids = Body(Call("GET", "/key-value-store-shard/shard-ids"))->getArray("shard-ids");
  ASSERT_EQ(ids->size(), 1u);
  EXPECT_EQ(ids->getElement<int>(0), 0);
  EXPECT_EQ(Body(Call("GET", "/key-value-store-shard/node-shard-id"))->getValue<int>("shard-id"),
            0);
  auto members =
      Body(Call("GET", "/key-value-store-shard/shard-id-members/0"))->getArray("shard-id-members");
  ASSERT_EQ(members->size(), 1u);
  EXPECT_EQ(members->getElement<std::string>(0), "127.0.0.1:7000");
  Call("PUT", "/key-value-store/a", R"({"value":"1"})");
  Call("PUT", "/key-value-store/b", R"({"value":"1"})");
  Call("DELETE", "/key-value-store/b");
  EXPECT_EQ(Body(Call("GET", "/key-value-store-shard/shard-id-key-count/0"))
                ->getValue<int>("shard-id-key-count"),
            1);
  ExpectError(Call("GET", "/key-value-store-shard/shard-id-members/3"), 404,
              "Shard ID does not exist", "Error in GET");
  ExpectError(Call("GET", "/key-value-store-shard/shard-id-key-count/x"), 404,
              "Shard ID does not exist", "Error in GET");
}

TEST_F(ServiceTest, ReshardAndAddMemberErrors) {
  Response r = Call("PUT", "/key-value-store-shard/reshard", R"({"shard-count":1})");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(Body(r)->getValue<std::string>("message"),
            "Not enough nodes to provide fault-tolerance with the given shard count!");
  ExpectError(Call("PUT", "/key-value-store-shard/reshard", "{}"), 400, "shard-count is missing",
              "Error in PUT");
  ExpectError(Call("PUT", "/key-value-store-shard/reshard", R"({"shard-count":0})"), 400,
              "shard-count must be a positive integer", "Error in PUT");
  ExpectError(Call("PUT", "/key-value-store-shard/reshard", R"({"shard-count":"2"})"), 400,
              "shard-count must be an integer", "Error in PUT");
  ExpectError(
      Call("PUT", "/key-value-store-shard/add-member/0", R"({"socket-address":"127.0.0.1:9"})"),
      404, "Socket address does not exist in the view", "Error in PUT");
  ExpectError(
      Call("PUT", "/key-value-store-shard/add-member/5", R"({"socket-address":"127.0.0.1:7000"})"),
      404, "Shard ID does not exist", "Error in PUT");
}

TEST_F(ServiceTest, HealthAndMetrics) {
  Response health = Call("GET", "/health");
  EXPECT_EQ(health.status, 200);
  EXPECT_EQ(Body(health)->getValue<std::string>("status"), "ok");
  Call("GET", "/nope");
  Response metrics = Call("GET", "/metrics");
  EXPECT_EQ(metrics.content_type.rfind("text/plain", 0), 0u);
  EXPECT_NE(metrics.body.find("kvs_http_requests_total{method=\"GET\",code=\"4xx\"} 1"),
            std::string::npos)
      << metrics.body;
}

// A hand-off (a node that missed a reshard passing on its own writes) applies by last writer
// wins, whatever that origin's sequence numbers seen so far; a bad batch is a 400.
TEST_F(ServiceTest, HandoffAppliesNewerEntriesAndKeepsNewerOnes) {
  ASSERT_EQ(Call("PUT", "/key-value-store/kept", R"({"value":"local"})").status, 201);
  const store::Entry local = *store_.Get("kept");
  const std::string origin = "127.0.0.9:7000#4.0";
  replication::Update newer;
  newer.key = "handed";
  newer.entry.value = "v9";
  newer.entry.version.hlc = local.version.hlc;
  newer.entry.version.origin = origin;
  newer.entry.version.seq = 7;
  replication::Update older = newer;
  older.key = "kept";
  older.entry.value = "old";
  older.entry.version.hlc = 1;  // before the local write
  older.entry.version.seq = 8;
  const Response r = Call("POST", "/internal/handoff",
                          replication::EncodeBatch("127.0.0.9:7000", {&newer, &older}));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Body(r)->getValue<int>("applied"), 1);
  const Response get = Call("GET", "/key-value-store/handed");
  ASSERT_EQ(get.status, 200) << get.body;
  EXPECT_EQ(Body(get)->getValue<std::string>("value"), "v9");
  EXPECT_EQ(store_.Get("kept")->value, "local");
  EXPECT_EQ(Call("POST", "/internal/handoff", "not a batch").status, 400);
}

TEST_F(ServiceTest, TryHandleServesOwnedKeysWithoutWaiting) {
  std::optional<Response> put =
      service_.TryHandle(Request{"PUT", "/key-value-store/fast", R"({"value":"v"})"});
  ASSERT_TRUE(put.has_value());
  EXPECT_EQ(put->status, 201) << put->body;
  std::optional<Response> get = service_.TryHandle(Request{"GET", "/key-value-store/fast", ""});
  ASSERT_TRUE(get.has_value());
  EXPECT_EQ(Body(*get)->getValue<std::string>("value"), "v");
  // Bad input is answered right away too.
  std::optional<Response> bad = service_.TryHandle(Request{"PUT", "/key-value-store/x", "{"});
  ASSERT_TRUE(bad.has_value());
  EXPECT_EQ(bad->status, 400);
}

TEST_F(ServiceTest, TryHandleAnswersReadsOfTheNodesOwnStateAtOnce) {
  for (const char* target :
       {"/key-value-store-view", "/key-value-store-shard/shard-ids",
        "/key-value-store-shard/node-shard-id", "/key-value-store-shard/shard-id-members/0",
        "/key-value-store-shard/shard-id-key-count/0", "/health", "/health/ready"}) {
    std::optional<Response> now = service_.TryHandle(Request{"GET", target, ""});
    ASSERT_TRUE(now.has_value()) << target;
    EXPECT_EQ(now->status, Call("GET", target).status) << target;
  }
  // During a reshard the key counts walk the store: not on the event loop then.
  replicator_.SetStaging(true);
  EXPECT_FALSE(service_.TryHandle(Request{"GET", "/health", ""}).has_value());
  EXPECT_FALSE(service_.TryHandle(Request{"GET", "/key-value-store-shard/shard-id-key-count/0", ""})
                   .has_value());
  replicator_.SetStaging(false);
}

TEST_F(ServiceTest, TryHandleLeavesWhatMayWaitUntouched) {
  // View and shard changes, node-to-node calls other than broadcasts, metrics and status: left
  // to Handle.
  EXPECT_FALSE(service_
                   .TryHandle(Request{"PUT", "/key-value-store-view",
                                      R"({"socket-address":"127.0.0.1:7001"})"})
                   .has_value());
  EXPECT_FALSE(service_.TryHandle(Request{"GET", "/metrics", ""}).has_value());
  EXPECT_FALSE(service_.TryHandle(Request{"GET", "/status?scope=cluster", ""}).has_value());
  EXPECT_FALSE(service_.TryHandle(Request{"GET", "/internal/heartbeat", ""}).has_value());
  EXPECT_EQ(cluster_.View().size(), 1u);
  // A dependency on a write of this shard that was never applied here (Handle would pull it
  // from peers): nothing is written.
  const std::string ahead = R"({"value":"v","causal-metadata":"0|127.0.0.1:7000#9.0=4"})";
  EXPECT_FALSE(service_.TryHandle(Request{"PUT", "/key-value-store/dep", ahead}).has_value());
  EXPECT_FALSE(store_.Get("dep").has_value());
  // A reshard barrier holds writes (reads go on).
  ASSERT_TRUE(coordinator_.Freeze(std::chrono::milliseconds(0)));
  EXPECT_FALSE(
      service_.TryHandle(Request{"PUT", "/key-value-store/held", R"({"value":"v"})"}).has_value());
  EXPECT_TRUE(service_.TryHandle(Request{"GET", "/key-value-store/held", ""}).has_value());
  coordinator_.Thaw();
  EXPECT_FALSE(store_.Get("held").has_value());
  std::optional<Response> after =
      service_.TryHandle(Request{"PUT", "/key-value-store/held", R"({"value":"v"})"});
  ASSERT_TRUE(after.has_value());
  EXPECT_EQ(after->status, 201);
}

}  // namespace
}  // namespace kvs::api

namespace kvs::api {
namespace {

// The same service with kvs.cluster.secret and kvs.admin.token set.
class SecureServiceTest : public ServiceTest {
 protected:
  static auth::ClusterAuth& Auth() {
    static auth::ClusterAuth auth("s3cret", std::chrono::milliseconds(30000));
    return auth;
  }
  SecureServiceTest() : ServiceTest(Security{&Auth(), "tok-123"}) {}

  Response Send(std::string_view method, std::string_view target, std::string_view body,
                const std::string& proof, std::string_view authorization = "") {
    Request request{method, target, body};
    request.cluster_proof = proof;
    request.authorization = authorization;
    return service_.Handle(request);
  }
  // `reason` is what the 401's error names, e.g. "missing".
  static void ExpectRefused(const Response& r, std::string_view method, std::string_view target,
                            const std::string& reason) {
    EXPECT_EQ(r.status, 401) << method << " " << target << ": " << r.body;
    auto body = Body(r);
    EXPECT_NE(body->getValue<std::string>("error").find("(" + reason + ")"), std::string::npos)
        << r.body;
    EXPECT_EQ(body->getValue<std::string>("message"), "Error in " + std::string(method));
  }
  uint64_t Failures(const std::string& credential, const std::string& reason) {
    const std::string text = metrics_.Render(0);
    const std::string line =
        "kvs_auth_failures_total{credential=\"" + credential + "\",reason=\"" + reason + "\"} ";
    const size_t at = text.find(line);
    if (at == std::string::npos) return ~0ull;
    return std::stoull(text.substr(at + line.size()));
  }
};

// Every node-to-node endpoint, with a body it would accept or refuse with 400 (never 401 when
// the proof is good).
const std::vector<std::pair<std::string, std::string>> kInternal = {
    {"POST", "/internal/replicate"},
    {"POST", "/internal/handoff"},
    {"POST", "/internal/sync"},
    {"GET", "/internal/heartbeat?from=127.0.0.1:7001"},
    {"POST", "/internal/view"},
    {"GET", "/internal/config"},
    {"POST", "/internal/config"},
    {"POST", "/internal/reshard/stage"},
    {"GET", "/internal/reshard/progress"},
    {"POST", "/internal/catch-up"},
    {"POST", "/internal/reshard/prepare"},
    {"POST", "/internal/reshard/abort"},
    {"POST", "/internal/reshard/finish"},
    {"GET", "/internal/no-such-endpoint"},
};

TEST_F(SecureServiceTest, EveryInternalPathNeedsTheClusterSecret) {
  auth::ClusterAuth wrong("not-the-secret", std::chrono::milliseconds(30000));
  for (const auto& [method, target] : kInternal) {
    const std::string body = method == "POST" ? "{}" : "";
    ExpectRefused(Send(method, target, body, ""), method, target, "missing");
    ExpectRefused(Send(method, target, body, wrong.Sign(method, target, body)), method, target,
                  "bad-signature");
    const Response good = Send(method, target, body, Auth().Sign(method, target, body));
    EXPECT_NE(good.status, 401) << method << " " << target << ": " << good.body;
  }
  EXPECT_EQ(Failures("cluster", "missing"), kInternal.size());
  EXPECT_EQ(Failures("cluster", "bad-signature"), kInternal.size());
}

TEST_F(SecureServiceTest, ForgedReplayedExpiredOrTruncatedNoticesApplyNothing) {
  const std::string target = "/internal/view";
  const std::string body = R"({"address":"127.0.0.1:7001","change":"up"})";
  const Address newcomer{"127.0.0.1", 7001};
  const int64_t now = auth::UnixMillis();
  auth::ClusterAuth wrong("not-the-secret", std::chrono::milliseconds(30000));
  // Forged (another secret), expired, signed for a longer body (truncated on the way), signed
  // for another path, malformed: all refused, and the view is unchanged.
  ExpectRefused(Send("POST", target, body, wrong.Sign("POST", target, body)), "POST", target,
                "bad-signature");
  ExpectRefused(
      Send("POST", target, body,
           Auth().SignAt("POST", target, body, now - 60000, "0123456789abcdef0123456789abcdef")),
      "POST", target, "expired");
  ExpectRefused(
      Send("POST", target, body.substr(0, body.size() - 3), Auth().Sign("POST", target, body)),
      "POST", target, "bad-signature");
  ExpectRefused(Send("POST", target, body, Auth().Sign("POST", "/internal/config", body)), "POST",
                target, "bad-signature");
  ExpectRefused(Send("POST", target, body, "v1 ts=1 nonce=2 sig=3"), "POST", target, "malformed");
  EXPECT_FALSE(cluster_.InView(newcomer));
  // The genuine call applies once; the same bytes again are a replay, refused.
  const std::string proof = Auth().Sign("POST", target, body);
  ASSERT_EQ(Send("POST", target, body, proof).status, 200);
  EXPECT_TRUE(cluster_.InView(newcomer));
  const std::string down = R"({"address":"127.0.0.1:7001","change":"down"})";
  const std::string down_proof = Auth().Sign("POST", target, down);
  ASSERT_EQ(Send("POST", target, down, down_proof).status, 200);
  EXPECT_FALSE(cluster_.InView(newcomer));
  ExpectRefused(Send("POST", target, body, proof), "POST", target, "replayed");
  EXPECT_FALSE(cluster_.InView(newcomer));
  EXPECT_EQ(Failures("cluster", "replayed"), 1u);
  EXPECT_EQ(Failures("cluster", "expired"), 1u);
  EXPECT_EQ(Failures("cluster", "malformed"), 1u);
}

TEST_F(SecureServiceTest, TryHandleChecksOnceAndHandleDoesNotRecountTheNonce) {
  // A signed call TryHandle leaves to a worker must not be refused as its own replay there.
  const std::string target = "/internal/config";
  Request request{"GET", target, ""};
  const std::string proof = Auth().Sign("GET", target, "");
  request.cluster_proof = proof;
  ASSERT_FALSE(service_.TryHandle(request).has_value());  // node-to-node work runs on a worker
  EXPECT_TRUE(request.authenticated);
  EXPECT_EQ(service_.Handle(request).status, 200);
  EXPECT_EQ(Failures("cluster", "replayed"), 0u);
  Request unsigned_request{"GET", target, ""};
  const std::optional<Response> refused = service_.TryHandle(unsigned_request);
  ASSERT_TRUE(refused.has_value());  // a refusal never waits
  EXPECT_EQ(refused->status, 401);
}

TEST_F(SecureServiceTest, AdminPathsNeedTheToken) {
  const std::string view_body = R"({"socket-address":"127.0.0.1:7002"})";
  const std::vector<std::tuple<std::string, std::string, std::string>> admin = {
      {"PUT", "/key-value-store-view", view_body},
      {"DELETE", "/key-value-store-view", view_body},
      {"PUT", "/key-value-store-shard/add-member/0", R"({"socket-address":"127.0.0.1:7002"})"},
      {"PUT", "/key-value-store-shard/reshard", R"({"shard-count":1})"},
  };
  for (const auto& [method, target, body] : admin) {
    const Response missing = Send(method, target, body, "");
    ExpectRefused(missing, method, target, "missing");
    ASSERT_EQ(missing.headers.size(), 1u);
    EXPECT_EQ(missing.headers[0].name, "WWW-Authenticate");
    ExpectRefused(Send(method, target, body, "", "Bearer tok-124"), method, target, "wrong token");
    ExpectRefused(Send(method, target, body, "", "tok-123"), method, target, "wrong token");
  }
  EXPECT_FALSE(cluster_.InView(Address{"127.0.0.1", 7002}));
  EXPECT_EQ(Failures("admin", "missing"), admin.size());
  EXPECT_EQ(Failures("admin", "wrong-token"), 2 * admin.size());
  // With the token they are served as the SPEC says.
  EXPECT_EQ(Send("PUT", "/key-value-store-view", view_body, "", "Bearer tok-123").status, 201);
  EXPECT_TRUE(cluster_.InView(Address{"127.0.0.1", 7002}));
  EXPECT_EQ(Send("DELETE", "/key-value-store-view", view_body, "", "Bearer tok-123").status, 200);
  // Reads and key-value requests need no token.
  EXPECT_EQ(Call("GET", "/key-value-store-view").status, 200);
  EXPECT_EQ(Call("GET", "/key-value-store-shard/shard-ids").status, 200);
  EXPECT_EQ(Call("PUT", "/key-value-store/k", R"({"value":"v"})").status, 201);
  EXPECT_EQ(Call("GET", "/health").status, 200);
}

TEST_F(SecureServiceTest, NeitherCredentialShowsInHealthOrMetrics) {
  const std::string health = Call("GET", "/health").body;
  const std::string metrics = Call("GET", "/metrics").body;
  for (const char* secret : {"s3cret", "tok-123"}) {
    EXPECT_EQ(health.find(secret), std::string::npos);
    EXPECT_EQ(metrics.find(secret), std::string::npos);
  }
}

}  // namespace
}  // namespace kvs::api

namespace kvs::api {
namespace {

// This node (127.0.0.1:7000) in a layout of six nodes and two shards; nothing listens at the
// other five, and nothing here sends: the front end would.
class ForwardingServiceTest : public ServiceTest {
 protected:
  ForwardingServiceTest()
      : ServiceTest(Security{}, {Address{"127.0.0.1", 7000}, Address{"127.0.0.2", 7000},
                                 Address{"127.0.0.3", 7000}, Address{"127.0.0.4", 7000},
                                 Address{"127.0.0.5", 7000}, Address{"127.0.0.6", 7000}}) {}

  // The plan TryHandle makes for `request` (the front end's forwarding on).
  ForwardPlan Plan(std::string_view method, std::string_view target, std::string_view body = "") {
    ForwardPlan plan;
    Request request{method, target, body};
    request.forward = &plan;
    EXPECT_FALSE(service_.TryHandle(request).has_value()) << target;
    return plan;
  }
};

// Every request this node forwards to a shard starts at the same member of it (its
// ClusterState::ForwardStart), whatever the key, and lists the shard's other members after
// it; nothing goes to this node itself.
TEST_F(ForwardingServiceTest, ForwardsToAShardStartAtThisNodesMemberOfIt) {
  const int mine = *cluster_.MyShard();
  const int other = 1 - mine;
  const auto& members = cluster_.Config()->shards[static_cast<size_t>(other)];
  const std::string first = members[cluster_.ForwardStart(other)].ToString();
  int planned = 0;
  for (int i = 0; i < 200; ++i) {
    const std::string key = "key" + std::to_string(i);
    if (cluster_.ShardForKey(key) != other) continue;
    const std::string target = "/key-value-store/" + key;
    for (const ForwardPlan& plan :
         {Plan("GET", target), Plan("PUT", target, R"({"value":"v"})"), Plan("DELETE", target)}) {
      EXPECT_EQ(plan.shard, other);
      ASSERT_EQ(plan.members.size(), members.size()) << key;
      EXPECT_EQ(plan.members[0], first) << key;
      for (const Address& m : members) {
        EXPECT_NE(std::find(plan.members.begin(), plan.members.end(), m.ToString()),
                  plan.members.end())
            << m.ToString();
      }
      ++planned;
    }
  }
  EXPECT_GT(planned, 100);
  // The key count of the other shard goes the same way.
  const ForwardPlan count =
      Plan("GET", "/key-value-store-shard/shard-id-key-count/" + std::to_string(other));
  ASSERT_FALSE(count.members.empty());
  EXPECT_EQ(count.members[0], first);
}

}  // namespace
}  // namespace kvs::api
