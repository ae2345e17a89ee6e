// The /status JSON model and the `kvsctl status` table, from sample answers of the fixed schema.
#include "kvs/ctl/status.h"

#include <sstream>

#include "gtest/gtest.h"
#include "kvs/ctl/table.h"

namespace kvs::ctl {
namespace {

// Three nodes: two answer (one sees the third as dead), the third timed out.
constexpr const char* kCluster = R"({
  "via": "10.10.0.2:8080", "epoch": 7,
  "nodes": [
    {"address": "10.10.0.2:8080", "shard-id": 0, "ready": true, "keys": 1234, "epoch": 7,
     "uptime-s": 7384.5, "view": ["10.10.0.2:8080", "10.10.0.3:8080", "10.10.0.9:8080"],
     "shards": [{"shard-id": 0, "members": ["10.10.0.2:8080", "10.10.0.3:8080"]}],
     "peers": [{"address": "10.10.0.3:8080", "alive": true},
               {"address": "10.10.0.9:8080", "alive": false}],
     "replication": [{"peer": "10.10.0.3:8080", "queued": 12, "oldest-age-ms": 850}],
     "anti-entropy": {"last-run-age-ms": 1200, "last-repair-age-ms": 4100,
                      "last-repair-entries": 3, "repaired-total": 9},
     "storage": {"mode": "disk", "dir": "/data", "bytes": 1572864},
     "traffic": {"requests-per-s": 12.5, "latency-ms": {"p50": 0.2, "p99": 1.5}},
     "operation": null},
    {"address": "10.10.0.3:8080", "shard-id": null, "ready": false, "keys": 0, "epoch": 6,
     "uptime-s": 3.0, "view": [], "shards": [],
     "peers": [{"address": "10.10.0.2:8080", "alive": true},
               {"address": "10.10.0.9:8080", "alive": true}],
     "replication": [],
     "anti-entropy": {"last-run-age-ms": null, "last-repair-age-ms": null,
                      "last-repair-entries": 0, "repaired-total": 0},
     "storage": {"mode": "memory"},
     "traffic": {"requests-per-s": 0, "latency-ms": {"p50": 0, "p99": 0}},
     "operation": {"kind": "reshard", "phase": "moving keys", "done": 10, "total": 100,
                   "age-ms": 1234}},
    {"address": "10.10.0.9:8080", "error": "timed out after 1000 ms"}
  ]})";

// The line of the rendered text that starts with `prefix` ("" when none).
std::string LineStartingWith(const std::string& text, const std::string& prefix) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(prefix, 0) == 0) return line;
  }
  return "";
}

TEST(StatusTest, ParsesEveryFieldOfTheSchema) {
  std::string error;
  const auto cluster = ParseClusterStatus(kCluster, &error);
  ASSERT_TRUE(cluster) << error;
  EXPECT_EQ(cluster->via, "10.10.0.2:8080");
  EXPECT_EQ(cluster->epoch, 7);
  ASSERT_EQ(cluster->nodes.size(), 3u);
  const NodeStatus& a = cluster->nodes[0];
  EXPECT_EQ(a.shard_id, 0);
  EXPECT_TRUE(a.ready);
  EXPECT_EQ(a.keys, 1234);
  EXPECT_DOUBLE_EQ(a.uptime_s, 7384.5);
  ASSERT_EQ(a.replication.size(), 1u);
  EXPECT_EQ(a.replication[0].queued, 12);
  EXPECT_EQ(a.last_repair_entries, 3);
  EXPECT_EQ(a.repaired_total, 9);
  EXPECT_EQ(a.storage_bytes, 1572864);
  EXPECT_DOUBLE_EQ(a.p99_ms, 1.5);
  EXPECT_FALSE(a.operation);
  const NodeStatus& b = cluster->nodes[1];
  EXPECT_FALSE(b.shard_id);
  EXPECT_FALSE(b.last_repair_age_ms);
  ASSERT_TRUE(b.operation);
  EXPECT_EQ(b.operation->kind, "reshard");
  EXPECT_EQ(b.operation->done, 10);
  EXPECT_EQ(cluster->nodes[2].error, "timed out after 1000 ms");
}

TEST(StatusTest, LivenessIsWhatTheOthersSee) {
  std::string error;
  const auto cluster = ParseClusterStatus(kCluster, &error);
  ASSERT_TRUE(cluster) << error;
  EXPECT_EQ(AliveSeenByOthers(*cluster, cluster->nodes[0]), "yes");
  EXPECT_EQ(AliveSeenByOthers(*cluster, cluster->nodes[1]), "yes");
  EXPECT_EQ(AliveSeenByOthers(*cluster, cluster->nodes[2]), "unreachable");
  // The third node answering: one of two peers thinks it is dead.
  ClusterStatus copy = *cluster;
  copy.nodes[2].error.clear();
  EXPECT_EQ(AliveSeenByOthers(copy, copy.nodes[2]), "no (1 of 2)");
  copy.nodes[1].peers[1].alive = false;
  EXPECT_EQ(AliveSeenByOthers(copy, copy.nodes[2]), "no");
  copy.nodes[0].peers.clear();
  copy.nodes[1].peers.clear();
  EXPECT_EQ(AliveSeenByOthers(copy, copy.nodes[2]), "?");
}

TEST(StatusTest, TableShowsEveryNodeWithItsColumns) {
  std::string error;
  const auto cluster = ParseClusterStatus(kCluster, &error);
  ASSERT_TRUE(cluster) << error;
  const std::string text = RenderStatus(*cluster);
  EXPECT_NE(text.find("cluster via 10.10.0.2:8080: 3 nodes (2 answered), 1 shards, epoch 7"),
            std::string::npos)
      << text;
  const std::string header = LineStartingWith(text, "NODE");
  for (const char* column : {"SHARD", "ALIVE", "READY", "KEYS", "EPOCH", "UPTIME", "REPLICATION",
                             "LAST REPAIR", "DATA"}) {
    EXPECT_NE(header.find(column), std::string::npos) << column << "\n" << text;
  }
  // Columns line up: each value starts where its header does.
  const std::string a = LineStartingWith(text, "10.10.0.2:8080");
  ASSERT_FALSE(a.empty()) << text;
  EXPECT_EQ(a.find("1234"), header.find("KEYS")) << text;
  EXPECT_EQ(a.find("2h03m"), header.find("UPTIME")) << text;
  EXPECT_EQ(a.find("10.10.0.3:8080 12 850 ms"), header.find("REPLICATION")) << text;
  EXPECT_EQ(a.find("3 entries 4.1 s ago"), header.find("LAST REPAIR")) << text;
  EXPECT_EQ(a.find("/data 1.5 MiB"), header.find("DATA")) << text;
  const std::string b = LineStartingWith(text, "10.10.0.3:8080");
  ASSERT_FALSE(b.empty()) << text;
  EXPECT_EQ(b.find("none"), header.find("SHARD")) << text;
  EXPECT_EQ(b.find("6 (behind)"), header.find("EPOCH")) << text;
  EXPECT_NE(b.find("memory"), std::string::npos) << text;
  EXPECT_NE(b.find("not run yet"), std::string::npos) << text;
  const std::string c = LineStartingWith(text, "10.10.0.9:8080");
  EXPECT_EQ(c.find("unreachable"), header.find("ALIVE")) << text;
  EXPECT_NE(text.find("10.10.0.9:8080: timed out after 1000 ms"), std::string::npos) << text;
  EXPECT_NE(text.find("10.10.0.3:8080: reshard: moving keys 10/100 (1.2 s)"), std::string::npos)
      << text;
}

TEST(StatusTest, MalformedInputIsAnErrorOrAnErrorNode) {
  std::string error;
  EXPECT_FALSE(ParseClusterStatus("", &error));
  EXPECT_FALSE(error.empty());
  error.clear();
  EXPECT_FALSE(ParseClusterStatus("{\"via\":\"x\"}", &error));
  EXPECT_FALSE(error.empty());
  error.clear();
  EXPECT_FALSE(ParseNodeStatus("{\"keys\":1}", &error));
  EXPECT_FALSE(error.empty());
  // Wrong types inside a node do not hide the others.
  const auto cluster = ParseClusterStatus(
      R"({"nodes":[7, {"address":"a:1","keys":"many","uptime-s":true,"peers":{}},
                   {"address":"b:2","keys":5}]})",
      &error);
  ASSERT_TRUE(cluster) << error;
  ASSERT_EQ(cluster->nodes.size(), 3u);
  EXPECT_FALSE(cluster->nodes[0].error.empty());
  EXPECT_EQ(cluster->nodes[1].keys, 0);
  EXPECT_EQ(cluster->nodes[2].keys, 5);
  EXPECT_FALSE(RenderStatus(*cluster).empty());
}

TEST(StatusTest, ProgressLineAndBar) {
  const Operation op{"reshard", "moving keys", 40, 100, 0};
  EXPECT_EQ(RenderProgress(op, 4.25, 0), "reshard: moving keys 40/100 (4.2 s)");
  EXPECT_EQ(RenderProgress(op, 4.25, 10), "[####......]  40% reshard: moving keys 40/100 (4.2 s)");
  const Operation unknown{"add-member", "", 0, 0, 0};
  EXPECT_EQ(RenderProgress(unknown, 1, 4), "[....]      add-member (1.0 s)");
  const Operation over{"reshard", "x", 7, 5, 0};
  EXPECT_EQ(RenderProgress(over, 0, 4), "[####] 100% reshard: x 7/5 (0.0 s)");
}

TEST(MetricsTest, PrometheusTextAsJson) {
  const std::string text =
      "# HELP kvs_requests_total Requests.\n"
      "# TYPE kvs_requests_total counter\n"
      "kvs_requests_total{route=\"kv\",code=\"200\"} 12\n"
      "kvs_label_with_space{x=\"a b\"} 1.5 1700000000000\r\n"
      "kvs_up 1\n"
      "\n"
      "kvs_nan NaN\n"
      "garbage-without-value\n"
      "kvs_bad_value abc\n";
  EXPECT_EQ(PrometheusToJson(text),
            "{\"kvs_requests_total{route=\\\"kv\\\",code=\\\"200\\\"}\":12,"
            "\"kvs_label_with_space{x=\\\"a b\\\"}\":1.5,\"kvs_up\":1,\"kvs_nan\":null}");
  EXPECT_EQ(PrometheusToJson(""), "{}");
}

TEST(TableTest, AlignsColumnsAndMultiLineCells) {
  Table table({"A", "LONG HEADER", "C"});
  table.AddRow({"wide value", "x", "1\n22"});
  table.AddRow({"b"});
  EXPECT_EQ(table.Render(),
            "A           LONG HEADER  C\n"
            "wide value  x            1\n"
            "                         22\n"
            "b\n");
}

TEST(TableTest, Units) {
  EXPECT_EQ(FormatDurationMs(850), "850 ms");
  EXPECT_EQ(FormatDurationMs(4150), "4.2 s");
  EXPECT_EQ(FormatDurationMs(725000), "12m05s");
  EXPECT_EQ(FormatDurationMs(7384500), "2h03m");
  EXPECT_EQ(FormatDurationMs(2 * 86400000.0 + 4 * 3600000.0), "2d04h");
  EXPECT_EQ(FormatDurationMs(-1), "?");
  EXPECT_EQ(FormatBytes(512), "512 B");
  EXPECT_EQ(FormatBytes(1536), "1.5 KiB");
  EXPECT_EQ(FormatBytes(3 * 1024 * 1024), "3.0 MiB");
}

}  // namespace
}  // namespace kvs::ctl
