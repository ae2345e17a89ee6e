// GET /status and GET /status?scope=cluster on a single node (issue 13): every field present
// with its type, the figures a test can know (address, keys after N writes, traffic after
// requests), the cluster form with an unreachable member, and the errors (400, 405).
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>

#include <string>

#include "gtest/gtest.h"
#include "http_client.h"
#include "server_process.h"

namespace kvs::http_test {
namespace {

constexpr int kKeys = 7;
// Stands for a node that is not running (as in view_test.cc).
constexpr char kAbsentNode[] = "127.0.0.1:9";

class StatusTest : public ::testing::Test {
 protected:
  void Start(const EnvList& env = {}) {
    std::string error;
    server_ = StartSingleNode(env, {}, &error);
    ASSERT_NE(server_, nullptr) << error;
  }
  uint16_t port() const { return server_->port(); }
  std::string address() const { return LoopbackAddress(server_->port()); }

  // GET `target`: 200 with a JSON object, or a test failure and null.
  Poco::JSON::Object::Ptr GetObject(const std::string& target) {
    const HttpResponse r = SendRequest(port(), "GET", target);
    EXPECT_EQ(r.status, 200) << Describe(r);
    EXPECT_TRUE(r.Header("content-type").starts_with("application/json")) << Describe(r);
    Poco::JSON::Object::Ptr object = ParseObject(r.body);
    EXPECT_FALSE(object.isNull()) << Describe(r);
    return object;
  }

  std::unique_ptr<ServerProcess> server_;
};

// Members of `o` named `name`, of JSON type `T` (Poco's parse types: std::string, bool,
// Poco::Int64 / double for numbers, Array::Ptr / Object::Ptr).
bool IsNumber(const Poco::JSON::Object::Ptr& o, const std::string& name) {
  return o->has(name) && !o->isNull(name) && o->get(name).isNumeric();
}
bool IsInteger(const Poco::JSON::Object::Ptr& o, const std::string& name) {
  return o->has(name) && !o->isNull(name) && o->get(name).isInteger();
}
bool IsString(const Poco::JSON::Object::Ptr& o, const std::string& name) {
  return o->has(name) && o->get(name).isString();
}
bool IsBool(const Poco::JSON::Object::Ptr& o, const std::string& name) {
  return o->has(name) && !o->isNull(name) && o->get(name).type() == typeid(bool);
}

TEST_F(StatusTest, EveryFieldWithItsTypeAndTheKnowableValues) {
  ASSERT_NO_FATAL_FAILURE(Start());
  for (int i = 0; i < kKeys; ++i) {
    const HttpResponse put =
        SendRequest(port(), "PUT", "/key-value-store/status-key-" + std::to_string(i),
                    PutBody("v", std::nullopt));
    ASSERT_EQ(put.status, 201) << Describe(put);
  }
  for (int i = 0; i < 20; ++i) {
    ASSERT_EQ(SendRequest(port(), "GET", "/key-value-store/status-key-0").status, 200);
  }
  const Poco::JSON::Object::Ptr o = GetObject("/status");
  ASSERT_FALSE(o.isNull());
  EXPECT_EQ(o->size(), 14u);

  EXPECT_EQ(o->optValue<std::string>("address", ""), address());
  ASSERT_TRUE(IsInteger(o, "shard-id"));
  EXPECT_EQ(o->getValue<int>("shard-id"), 0);
  ASSERT_TRUE(IsBool(o, "ready"));
  EXPECT_TRUE(o->getValue<bool>("ready"));
  ASSERT_TRUE(IsInteger(o, "keys"));
  EXPECT_EQ(o->getValue<int>("keys"), kKeys);
  ASSERT_TRUE(IsInteger(o, "epoch"));
  EXPECT_GE(o->getValue<int64_t>("epoch"), 0);
  ASSERT_TRUE(IsNumber(o, "uptime-s"));
  EXPECT_GT(o->getValue<double>("uptime-s"), 0);
  EXPECT_LT(o->getValue<double>("uptime-s"), 600);

  const Poco::JSON::Array::Ptr view = o->getArray("view");
  ASSERT_FALSE(view.isNull());
  ASSERT_EQ(view->size(), 1u);
  EXPECT_EQ(view->getElement<std::string>(0), address());

  const Poco::JSON::Array::Ptr shards = o->getArray("shards");
  ASSERT_FALSE(shards.isNull());
  ASSERT_EQ(shards->size(), 1u);
  const Poco::JSON::Object::Ptr shard = shards->getObject(0);
  ASSERT_FALSE(shard.isNull());
  EXPECT_EQ(shard->getValue<int>("shard-id"), 0);
  ASSERT_FALSE(shard->getArray("members").isNull());
  ASSERT_EQ(shard->getArray("members")->size(), 1u);
  EXPECT_EQ(shard->getArray("members")->getElement<std::string>(0), address());

  ASSERT_FALSE(o->getArray("peers").isNull());
  EXPECT_EQ(o->getArray("peers")->size(), 0u);  // no other node
  ASSERT_FALSE(o->getArray("replication").isNull());
  EXPECT_EQ(o->getArray("replication")->size(), 0u);  // no shard peer

  const Poco::JSON::Object::Ptr ae = o->getObject("anti-entropy");
  ASSERT_FALSE(ae.isNull());
  for (const char* name : {"last-run-age-ms", "last-repair-age-ms"}) {
    EXPECT_TRUE(ae->has(name) && (ae->isNull(name) || IsInteger(ae, name))) << name;
  }
  EXPECT_TRUE(ae->isNull("last-repair-age-ms"));  // nothing to repair on one node
  EXPECT_TRUE(IsInteger(ae, "last-repair-entries"));
  EXPECT_TRUE(IsInteger(ae, "repaired-total"));
  EXPECT_EQ(ae->getValue<int>("repaired-total"), 0);

  const Poco::JSON::Object::Ptr storage = o->getObject("storage");
  ASSERT_FALSE(storage.isNull());
  EXPECT_EQ(storage->optValue<std::string>("mode", ""), "disk");
  EXPECT_TRUE(IsString(storage, "dir"));
  EXPECT_FALSE(storage->optValue<std::string>("dir", "").empty());
  ASSERT_TRUE(IsInteger(storage, "bytes"));
  EXPECT_GT(storage->getValue<int64_t>("bytes"), 0);  // the log holds the writes

  const Poco::JSON::Object::Ptr traffic = o->getObject("traffic");
  ASSERT_FALSE(traffic.isNull());
  ASSERT_TRUE(IsNumber(traffic, "requests-per-s"));
  EXPECT_GT(traffic->getValue<double>("requests-per-s"), 0);
  const Poco::JSON::Object::Ptr latency = traffic->getObject("latency-ms");
  ASSERT_FALSE(latency.isNull());
  ASSERT_TRUE(IsNumber(latency, "p50"));
  ASSERT_TRUE(IsNumber(latency, "p99"));
  EXPECT_GT(latency->getValue<double>("p99"), 0);
  EXPECT_GE(latency->getValue<double>("p99"), latency->getValue<double>("p50"));

  EXPECT_TRUE(o->has("operation") && o->isNull("operation"));
}

TEST_F(StatusTest, MemoryModeHasNoDirectory) {
  ASSERT_NO_FATAL_FAILURE(Start({{"KVS_STORAGE_MODE", "memory"}}));
  const Poco::JSON::Object::Ptr o = GetObject("/status");
  ASSERT_FALSE(o.isNull());
  const Poco::JSON::Object::Ptr storage = o->getObject("storage");
  ASSERT_FALSE(storage.isNull());
  EXPECT_EQ(storage->size(), 1u);
  EXPECT_EQ(storage->optValue<std::string>("mode", ""), "memory");
}

TEST_F(StatusTest, ClusterScopeListsEveryKnownNodeAndTheUnreachable) {
  ASSERT_NO_FATAL_FAILURE(Start());
  Poco::JSON::Object::Ptr o = GetObject("/status?scope=cluster");
  ASSERT_FALSE(o.isNull());
  EXPECT_EQ(o->optValue<std::string>("via", ""), address());
  EXPECT_TRUE(IsInteger(o, "epoch"));
  Poco::JSON::Array::Ptr nodes = o->getArray("nodes");
  ASSERT_FALSE(nodes.isNull());
  ASSERT_EQ(nodes->size(), 1u);
  EXPECT_EQ(nodes->getObject(0)->optValue<std::string>("address", ""), address());
  EXPECT_EQ(nodes->getObject(0)->size(), 14u);

  // A member that does not run: listed with why it gave no status, and not alive.
  ASSERT_EQ(SendRequest(port(), "PUT", "/key-value-store-view", AddressBody(kAbsentNode)).status,
            201);
  o = GetObject("/status?scope=cluster");
  ASSERT_FALSE(o.isNull());
  nodes = o->getArray("nodes");
  ASSERT_FALSE(nodes.isNull());
  ASSERT_EQ(nodes->size(), 2u) << o->size();
  const Poco::JSON::Object::Ptr absent = nodes->getObject(0);  // sorted: port 9 first
  EXPECT_EQ(absent->optValue<std::string>("address", ""), kAbsentNode);
  EXPECT_TRUE(IsString(absent, "error"));
  EXPECT_FALSE(absent->optValue<std::string>("error", "").empty());
  EXPECT_EQ(absent->size(), 2u);
  EXPECT_EQ(nodes->getObject(1)->optValue<std::string>("address", ""), address());

  const Poco::JSON::Object::Ptr self = GetObject("/status");
  ASSERT_FALSE(self.isNull());
  const Poco::JSON::Array::Ptr peers = self->getArray("peers");
  ASSERT_FALSE(peers.isNull());
  ASSERT_EQ(peers->size(), 1u);
  EXPECT_EQ(peers->getObject(0)->optValue<std::string>("address", ""), kAbsentNode);
  EXPECT_TRUE(IsBool(peers->getObject(0), "alive"));

  EXPECT_EQ(SendRequest(port(), "DELETE", "/key-value-store-view", AddressBody(kAbsentNode)).status,
            200);
}

TEST_F(StatusTest, OtherQueriesAre400AndOtherMethods405) {
  ASSERT_NO_FATAL_FAILURE(Start());
  for (const char* target : {"/status?scope=node", "/status?", "/status?scope=cluster&x=1",
                             "/status?scope=CLUSTER", "/status?x"}) {
    SCOPED_TRACE(target);
    EXPECT_TRUE(IsError(SendRequest(port(), "GET", target), 400, "Error in GET", "Unknown query"));
  }
  for (const char* method : {"POST", "PUT", "DELETE"}) {
    SCOPED_TRACE(method);
    const HttpResponse r = SendRequest(port(), method, "/status", "{}");
    EXPECT_TRUE(IsError(r, 405, std::string("Error in ") + method, "Method not allowed"));
    EXPECT_EQ(r.Header("allow"), "GET") << Describe(r);
  }
}

// GET /: the status page, one self-contained HTML document (no external asset) that reads
// /status?scope=cluster, under a Content-Security-Policy that allows nothing but this node.
// (It is rendered and checked in a real browser in tests/cluster/status_page_cluster_test.cc.)
TEST_F(StatusTest, RootServesTheSelfContainedStatusPage) {
  ASSERT_NO_FATAL_FAILURE(Start());
  const HttpResponse page = SendRequest(port(), "GET", "/");
  ASSERT_EQ(page.status, 200) << Describe(page);
  EXPECT_EQ(page.Header("content-type"), "text/html; charset=utf-8");
  const std::string csp = page.Header("content-security-policy");
  EXPECT_NE(csp.find("default-src 'none'"), std::string::npos) << csp;
  EXPECT_NE(csp.find("connect-src 'self'"), std::string::npos) << csp;
  EXPECT_TRUE(page.body.starts_with("<!doctype html>")) << page.body.substr(0, 100);
  EXPECT_NE(page.body.find("/status?scope=cluster"), std::string::npos);
  for (const char* external : {"src=\"http", "href=\"http", "src=\"//", "href=\"//", "@import"}) {
    EXPECT_EQ(page.body.find(external), std::string::npos) << "an external asset: " << external;
  }
  for (const char* method : {"POST", "PUT", "DELETE"}) {
    SCOPED_TRACE(method);
    const HttpResponse r = SendRequest(port(), method, "/", "{}");
    EXPECT_TRUE(IsError(r, 405, std::string("Error in ") + method, "Method not allowed"));
    EXPECT_EQ(r.Header("allow"), "GET") << Describe(r);
  }
}

TEST_F(StatusTest, MetricsHaveTheLatencyHistogramAndTheNewGauges) {
  ASSERT_NO_FATAL_FAILURE(Start());
  ASSERT_EQ(SendRequest(port(), "GET", "/status").status, 200);
  const HttpResponse r = SendRequest(port(), "GET", "/metrics");
  ASSERT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("# TYPE kvs_http_request_duration_seconds histogram"), std::string::npos);
  // The /status request above was timed.
  EXPECT_NE(r.body.find("kvs_http_request_duration_seconds_count{route=\"status\",path="
                        "\"local\"} 1\n"),
            std::string::npos)
      << r.body;
  EXPECT_NE(r.body.find("# TYPE kvs_replication_queue_depth gauge"), std::string::npos);
  EXPECT_NE(r.body.find("# TYPE kvs_replication_queue_oldest_age_seconds gauge"),
            std::string::npos);
  EXPECT_NE(r.body.find("kvs_anti_entropy_last_repair_timestamp_seconds 0\n"), std::string::npos);
  EXPECT_NE(r.body.find("kvs_http_requests_total{"), std::string::npos);  // kept as it was
}

}  // namespace
}  // namespace kvs::http_test
