// The socket-free half of GET /status: the latency buckets and the traffic window
// (RequestStats), the JSON it renders (RenderNodeStatus, RenderClusterStatus), and the check
// of a peer's answer (CheckPeerStatus).
#include "kvs/api/status.h"

#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>

#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "kvs/api/request_stats.h"

namespace kvs::api {
namespace {

Poco::JSON::Object::Ptr Parse(const std::string& text) {
  Poco::JSON::Parser parser;
  return parser.parse(text).extract<Poco::JSON::Object::Ptr>();
}

TEST(LatencyBucketsTest, EveryValueFallsInItsBucketsRange) {
  std::mt19937_64 random(7);
  for (int i = 0; i < 100000; ++i) {
    const uint64_t micros = random() >> (random() % 64);
    const uint64_t clamped = std::min<uint64_t>(micros, (uint64_t{1} << 40) - 1);
    const size_t index = LatencyBuckets::Index(micros);
    ASSERT_LT(index, LatencyBuckets::kCount) << micros;
    EXPECT_LE(LatencyBuckets::Lower(index), clamped) << micros;
    if (index + 1 < LatencyBuckets::kCount) {
      EXPECT_LT(clamped, LatencyBuckets::Lower(index + 1)) << micros;
    }
  }
}

TEST(LatencyBucketsTest, BucketsAreContiguousAndWithinOneEighth) {
  for (size_t i = 0; i + 1 < LatencyBuckets::kCount; ++i) {
    EXPECT_EQ(LatencyBuckets::Index(LatencyBuckets::Lower(i)), i);
    EXPECT_EQ(LatencyBuckets::Index(LatencyBuckets::Lower(i + 1) - 1), i);
    const double lower = static_cast<double>(LatencyBuckets::Lower(i));
    if (i >= 16) {
      EXPECT_LE(LatencyBuckets::Middle(i) / lower - 1, 1.0 / 16 + 1e-9) << i;
    }
  }
}

TEST(PercentileTest, EmptyIsZeroAndRanksPickTheRightBucket) {
  std::array<uint64_t, LatencyBuckets::kCount> counts{};
  EXPECT_EQ(PercentileMs(counts, 0, 0.5), 0);
  // 98 requests of 100 us, 2 of 50 ms: p50 near 0.1 ms, p99 near 50 ms.
  counts[LatencyBuckets::Index(100)] = 98;
  counts[LatencyBuckets::Index(50000)] = 2;
  EXPECT_NEAR(PercentileMs(counts, 100, 0.5), 0.1, 0.1 / 8);
  EXPECT_NEAR(PercentileMs(counts, 100, 0.99), 50, 50.0 / 8);
  EXPECT_NEAR(PercentileMs(counts, 100, 0.98), 0.1, 0.1 / 8);
}

TEST(RequestStatsTest, WindowCountsClientRequestsOfTheLastTenSeconds) {
  RequestStats stats;
  const int64_t start = 1000;
  for (int s = 0; s < 20; ++s) {
    for (int i = 0; i < 5; ++i)
      stats.Record(ApiRoute::kKeyValue, RequestPath::kLocal, 200, start + s);
    // Not client traffic: in the histogram, not in the window.
    stats.Record(ApiRoute::kStatus, RequestPath::kLocal, 200, start + s);
    stats.Record(ApiRoute::kInternal, RequestPath::kLocal, 200, start + s);
  }
  const WindowSummary window = stats.Window(start + 19, start);
  // Seconds 9..19 of the 20: 11 seconds of 5 requests, over 10.5 s.
  EXPECT_EQ(window.requests, 55u);
  EXPECT_NEAR(window.requests_per_s, 55 / 10.5, 1e-9);
  EXPECT_NEAR(window.p50_ms, 0.2, 0.2 / 8);
  // Later, with nothing new: the window empties.
  const WindowSummary later = stats.Window(start + 40, start);
  EXPECT_EQ(later.requests, 0u);
  EXPECT_EQ(later.requests_per_s, 0);
  EXPECT_EQ(later.p99_ms, 0);
}

TEST(RequestStatsTest, YoungProcessRatesOverItsAge) {
  RequestStats stats;
  for (int i = 0; i < 30; ++i) stats.Record(ApiRoute::kShard, RequestPath::kLocal, 1000, 500);
  const WindowSummary window = stats.Window(501, 499);
  EXPECT_EQ(window.requests, 30u);
  EXPECT_NEAR(window.requests_per_s, 30 / 2.5, 1e-9);
}

TEST(RequestStatsTest, ABucketReusedForANewSecondForgetsTheOld) {
  RequestStats stats;
  stats.Record(ApiRoute::kKeyValue, RequestPath::kLocal, 100, 3);
  stats.Record(ApiRoute::kKeyValue, RequestPath::kLocal, 100, 3 + 16);  // same ring slot
  EXPECT_EQ(stats.Window(3 + 16, 0).requests, 1u);
  // A late record for the old second is dropped, not mixed into the new one.
  stats.Record(ApiRoute::kKeyValue, RequestPath::kLocal, 100, 3);
  EXPECT_EQ(stats.Window(3 + 16, 0).requests, 1u);
}

TEST(RequestStatsTest, PrometheusHistogramIsCumulativeByRouteAndPath) {
  RequestStats stats;
  stats.Record(ApiRoute::kKeyValue, RequestPath::kLocal, 300, 1);          // 0.0003 s
  stats.Record(ApiRoute::kKeyValue, RequestPath::kForwarded, 20000, 1);    // 0.02 s
  stats.Record(ApiRoute::kKeyValue, RequestPath::kForwarded, 2000000, 1);  // 2 s
  stats.Record(ApiRoute::kKeyValue, RequestPath::kPulled, 40000, 1);       // 0.04 s
  const std::string text = stats.RenderMetrics();
  EXPECT_NE(text.find("# TYPE kvs_http_request_duration_seconds histogram"), std::string::npos);
  EXPECT_NE(text.find("kvs_http_request_duration_seconds_bucket{route=\"key-value\",path="
                      "\"local\",le=\"0.0005\"} 1\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("kvs_http_request_duration_seconds_bucket{route=\"key-value\",path="
                      "\"forwarded\",le=\"0.01\"} 0\n"),
            std::string::npos);
  EXPECT_NE(text.find("kvs_http_request_duration_seconds_bucket{route=\"key-value\",path="
                      "\"forwarded\",le=\"0.025\"} 1\n"),
            std::string::npos);
  EXPECT_NE(text.find("kvs_http_request_duration_seconds_bucket{route=\"key-value\",path="
                      "\"forwarded\",le=\"+Inf\"} 2\n"),
            std::string::npos);
  EXPECT_NE(text.find("kvs_http_request_duration_seconds_sum{route=\"key-value\",path="
                      "\"forwarded\"} 2.020000\n"),
            std::string::npos);
  EXPECT_NE(text.find("kvs_http_request_duration_seconds_bucket{route=\"key-value\",path="
                      "\"pulled\",le=\"0.05\"} 1\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("kvs_http_request_duration_seconds_bucket{route=\"key-value\",path="
                      "\"pulled\",le=\"0.025\"} 0\n"),
            std::string::npos);
  for (const char* route :
       {"key-value", "view", "shard", "health", "metrics", "status", "internal"}) {
    EXPECT_NE(text.find(std::string("_count{route=\"") + route + "\",path=\"local\"}"),
              std::string::npos)
        << route;
  }
}

TEST(RouteTest, PathsMapToRoutes) {
  EXPECT_EQ(RouteOf("/key-value-store/a"), ApiRoute::kKeyValue);
  EXPECT_EQ(RouteOf("/key-value-store"), ApiRoute::kKeyValue);
  EXPECT_EQ(RouteOf("/key-value-store-view"), ApiRoute::kView);
  EXPECT_EQ(RouteOf("/key-value-store-shard/shard-ids"), ApiRoute::kShard);
  EXPECT_EQ(RouteOf("/health/ready"), ApiRoute::kHealth);
  EXPECT_EQ(RouteOf("/metrics"), ApiRoute::kMetrics);
  EXPECT_EQ(RouteOf("/status"), ApiRoute::kStatus);
  EXPECT_EQ(RouteOf("/internal/replicate"), ApiRoute::kInternal);
  EXPECT_EQ(RouteOf("/nope"), ApiRoute::kOther);
}

NodeStatus Sample() {
  NodeStatus s;
  s.address = "10.10.0.2:8080";
  s.shard_id = 1;
  s.ready = true;
  s.keys = 1234;
  s.epoch = 7;
  s.uptime_s = 12.5;
  s.view = {"10.10.0.2:8080", "10.10.0.3:8080"};
  s.shards = {{"10.10.0.3:8080"}, {"10.10.0.2:8080"}};
  s.peers = {{"10.10.0.3:8080", false}};
  s.replication = {{"10.10.0.4:8080", 3, 250}};
  s.anti_entropy_last_run_age_ms = 1200;
  s.anti_entropy_last_repair_entries = 0;
  s.disk = true;
  s.data_dir = "/data/\"x\"";
  s.data_bytes = 123456;
  s.requests_per_s = 12.5;
  s.p50_ms = 0.2;
  s.p99_ms = 1.5;
  return s;
}

TEST(RenderStatusTest, EveryFieldWithItsType) {
  const Poco::JSON::Object::Ptr o = Parse(RenderNodeStatus(Sample()));
  EXPECT_EQ(o->getValue<std::string>("address"), "10.10.0.2:8080");
  EXPECT_EQ(o->getValue<int>("shard-id"), 1);
  EXPECT_TRUE(o->getValue<bool>("ready"));
  EXPECT_EQ(o->getValue<int>("keys"), 1234);
  EXPECT_EQ(o->getValue<int>("epoch"), 7);
  EXPECT_DOUBLE_EQ(o->getValue<double>("uptime-s"), 12.5);
  ASSERT_EQ(o->getArray("view")->size(), 2u);
  EXPECT_EQ(o->getArray("view")->getElement<std::string>(1), "10.10.0.3:8080");
  const auto shards = o->getArray("shards");
  ASSERT_EQ(shards->size(), 2u);
  EXPECT_EQ(shards->getObject(1)->getValue<int>("shard-id"), 1);
  EXPECT_EQ(shards->getObject(1)->getArray("members")->getElement<std::string>(0),
            "10.10.0.2:8080");
  EXPECT_FALSE(o->getArray("peers")->getObject(0)->getValue<bool>("alive"));
  const auto queue = o->getArray("replication")->getObject(0);
  EXPECT_EQ(queue->getValue<std::string>("peer"), "10.10.0.4:8080");
  EXPECT_EQ(queue->getValue<int>("queued"), 3);
  EXPECT_EQ(queue->getValue<int>("oldest-age-ms"), 250);
  const auto ae = o->getObject("anti-entropy");
  EXPECT_EQ(ae->getValue<int>("last-run-age-ms"), 1200);
  EXPECT_TRUE(ae->isNull("last-repair-age-ms"));
  EXPECT_EQ(ae->getValue<int>("repaired-total"), 0);
  const auto storage = o->getObject("storage");
  EXPECT_EQ(storage->getValue<std::string>("mode"), "disk");
  EXPECT_EQ(storage->getValue<std::string>("dir"), "/data/\"x\"");
  EXPECT_EQ(storage->getValue<int>("bytes"), 123456);
  const auto traffic = o->getObject("traffic");
  EXPECT_DOUBLE_EQ(traffic->getValue<double>("requests-per-s"), 12.5);
  EXPECT_DOUBLE_EQ(traffic->getObject("latency-ms")->getValue<double>("p99"), 1.5);
  EXPECT_TRUE(o->isNull("operation"));
  EXPECT_EQ(o->size(), 14u);  // the fourteen fields of the schema, no more
}

TEST(RenderStatusTest, NoShardMemoryModeAndAnOperation) {
  NodeStatus s = Sample();
  s.shard_id.reset();
  s.disk = false;
  s.anti_entropy_last_run_age_ms.reset();
  s.operation = NodeStatus::Operation{"reshard", "staging", 2, 6, 1234};
  const Poco::JSON::Object::Ptr o = Parse(RenderNodeStatus(s));
  EXPECT_TRUE(o->isNull("shard-id"));
  EXPECT_EQ(o->getObject("storage")->size(), 1u);
  EXPECT_EQ(o->getObject("storage")->getValue<std::string>("mode"), "memory");
  EXPECT_TRUE(o->getObject("anti-entropy")->isNull("last-run-age-ms"));
  const auto op = o->getObject("operation");
  EXPECT_EQ(op->getValue<std::string>("kind"), "reshard");
  EXPECT_EQ(op->getValue<std::string>("phase"), "staging");
  EXPECT_EQ(op->getValue<int>("done"), 2);
  EXPECT_EQ(op->getValue<int>("total"), 6);
  EXPECT_EQ(op->getValue<int>("age-ms"), 1234);
}

TEST(JsonNumberTest, ShortFixedPoint) {
  EXPECT_EQ(JsonNumber(12.5), "12.5");
  EXPECT_EQ(JsonNumber(3), "3");
  EXPECT_EQ(JsonNumber(0.0004), "0");
  EXPECT_EQ(JsonNumber(0.1234), "0.123");
  EXPECT_EQ(JsonNumber(1.0 / 0.0), "0");
  EXPECT_EQ(JsonNumber(-0.0001), "0");
}

TEST(ClusterStatusTest, NodesInOrderWithErrors) {
  const std::string node = RenderNodeStatus(Sample());
  const Poco::JSON::Object::Ptr o = Parse(RenderClusterStatus(
      "10.10.0.2:8080", 7, {{"10.10.0.2:8080", node, ""}, {"10.10.0.9:8080", "", "timed out"}}));
  EXPECT_EQ(o->getValue<std::string>("via"), "10.10.0.2:8080");
  EXPECT_EQ(o->getValue<int>("epoch"), 7);
  const auto nodes = o->getArray("nodes");
  ASSERT_EQ(nodes->size(), 2u);
  EXPECT_EQ(nodes->getObject(0)->getValue<int>("keys"), 1234);
  EXPECT_EQ(nodes->getObject(1)->getValue<std::string>("address"), "10.10.0.9:8080");
  EXPECT_EQ(nodes->getObject(1)->getValue<std::string>("error"), "timed out");
  EXPECT_EQ(nodes->getObject(1)->size(), 2u);
}

TEST(CheckPeerStatusTest, AcceptsTheNamedNodesObjectOnly) {
  std::string error;
  const auto ok = CheckPeerStatus(RenderNodeStatus(Sample()), "10.10.0.2:8080", error);
  ASSERT_TRUE(ok) << error;
  EXPECT_EQ(Parse(*ok)->getValue<int>("keys"), 1234);
  // Key order is kept (the address first, as the node wrote it).
  EXPECT_TRUE(ok->starts_with("{\"address\":")) << *ok;

  const std::vector<std::pair<std::string, std::string>> bad = {
      {"", "not valid JSON"},
      {"[1,2]", "not a JSON object"},
      {"{\"address\":5}", "no address"},
      {"{\"keys\":1}", "no address"},
      {"{\"address\":\"10.10.0.3:8080\"}", "is from 10.10.0.3:8080"},
      {"{\"address\":\"10.10.0.2:8080\"", "not valid JSON"},
      {"{\"address\":\"10.10.0.2:8080\"} trailing", "not valid JSON"},
      {std::string(10000, '['), "not valid JSON"},
  };
  for (const auto& [body, reason] : bad) {
    SCOPED_TRACE(body.substr(0, 40));
    error.clear();
    EXPECT_FALSE(CheckPeerStatus(body, "10.10.0.2:8080", error));
    EXPECT_NE(error.find(reason), std::string::npos) << error;
  }
}

}  // namespace
}  // namespace kvs::api
