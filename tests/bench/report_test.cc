#include "kvs/bench/report.h"

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "kvs/bench/plot.h"

namespace kvs::bench {
namespace {

RunResult SampleResult() {
  RunResult r;
  r.options.targets = {{"127.0.0.1", 9301}, {"127.0.0.2", 9302}};
  r.options.label = "lab,el \"q\"";
  r.options.threads = 2;
  r.options.connections = 8;
  r.timestamp = "2024-01-01T00:00:00Z";
  r.elapsed_s = 2.0;
  Stats& s = r.stats;
  for (int i = 0; i < 123; ++i) s.latency.Record(500 + i), s.op_latency[0].Record(500 + i);
  for (int i = 0; i < 45; ++i) s.latency.Record(900), s.op_latency[1].Record(900);
  for (int i = 0; i < 3; ++i) s.latency.Record(100), s.op_latency[0].Record(100);
  s.op_responses = {126, 45, 0};
  s.status[200] = 123;
  s.status[201] = 45;
  s.status[404] = 3;
  s.ok = 168;
  s.not_found = 3;
  s.transport[static_cast<int>(TransportError::kTimeout)] = 2;
  s.transport[static_cast<int>(TransportError::kConnect)] = 5;  // not a request
  s.reconnects = 7;
  s.bytes_sent = 1000;
  s.bytes_received = 2000;
  return r;
}

std::string TempPath(const std::string& name) {
  return testing::TempDir() + "kvs_bench_" + std::to_string(getpid()) + "_" + name;
}

std::string ReadFile(const std::string& path) {
  std::ifstream file(path);
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

// Splits one CSV line honouring quotes.
std::vector<std::string> CsvFields(const std::string& line) {
  std::vector<std::string> fields(1);
  bool quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        fields.back() += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        fields.back() += c;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      fields.emplace_back();
    } else if (c != '\n') {
      fields.back() += c;
    }
  }
  return fields;
}

TEST(ReportTest, CountsAddUp) {
  const RunResult r = SampleResult();
  EXPECT_EQ(r.stats.responses(), 171u);
  EXPECT_EQ(r.stats.requests(), 173u);  // + 2 timeouts; connect errors are not requests
  EXPECT_EQ(r.stats.transport_errors(), 7u);
  EXPECT_DOUBLE_EQ(r.Throughput(), 86.5);
  EXPECT_EQ(r.stats.StatusSummary(), "200: 123, 201: 45, 404: 3");
}

TEST(ReportTest, TextHasEveryFigure) {
  const std::string text = FormatText(SampleResult());
  for (const char* part :
       {"label:", "127.0.0.1:9301,127.0.0.2:9302", "threads:", "connections 8", "2.000 s",
        "requests:    173", "not found 3", "throughput:  86.5 req/s", "p50 0.", "p99.9",
        "max 0.900", "200: 123, 201: 45, 404: 3", "timeout 2", "connect 5", "reconnects 7",
        "sent 1000, received 2000", "GET:", "PUT:"}) {
    EXPECT_NE(text.find(part), std::string::npos) << part << "\n" << text;
  }
}

TEST(ReportTest, JsonIsOneValidObject) {
  const std::string json = FormatJson(SampleResult());
  Poco::JSON::Parser parser;
  const auto object = parser.parse(json).extract<Poco::JSON::Object::Ptr>();
  EXPECT_EQ(object->getValue<std::string>("label"), "lab,el \"q\"");
  EXPECT_EQ(object->getArray("targets")->size(), 2u);
  EXPECT_EQ(object->getValue<uint64_t>("requests"), 173u);
  EXPECT_EQ(object->getValue<uint64_t>("ok"), 168u);
  EXPECT_EQ(object->getValue<uint64_t>("not_found"), 3u);
  EXPECT_EQ(object->getValue<uint64_t>("transport_errors"), 2u);
  EXPECT_DOUBLE_EQ(object->getValue<double>("throughput_rps"), 86.5);
  EXPECT_EQ(object->getObject("status")->getValue<uint64_t>("201"), 45u);
  EXPECT_EQ(object->getObject("errors")->getValue<uint64_t>("connect"), 5u);
  EXPECT_DOUBLE_EQ(object->getObject("latency_ms")->getValue<double>("max"), 0.9);
  EXPECT_EQ(object->getObject("ops")->getObject("GET")->getValue<uint64_t>("responses"), 126u);
  EXPECT_FALSE(object->has("sweep"));
  EXPECT_FALSE(object->getValue<bool>("tls"));
  EXPECT_FALSE(object->has("tls_error"));
}

TEST(ReportTest, RateAndShardKeysAreReported) {
  RunResult r = SampleResult();
  std::string text = FormatText(r);
  EXPECT_NE(text.find("rate:        unthrottled"), std::string::npos) << text;
  EXPECT_EQ(text.find("keys used:"), std::string::npos) << text;
  Poco::JSON::Parser parser;
  auto object = parser.parse(FormatJson(r)).extract<Poco::JSON::Object::Ptr>();
  EXPECT_EQ(object->getValue<double>("target_rps"), 0);
  EXPECT_EQ(object->getValue<uint64_t>("keys_used"), r.options.keys);  // every key
  EXPECT_FALSE(object->has("only_shard"));

  r.options.rate = 250.5;
  r.options.only_shard = 1;
  r.options.keys = 100;
  r.keys_used = 47;
  text = FormatText(r);
  for (const char* part :
       {"rate:        250.5 req/s target", "keys used:   47 of 100", "shard 1"}) {
    EXPECT_NE(text.find(part), std::string::npos) << part << "\n" << text;
  }
  parser.reset();
  object = parser.parse(FormatJson(r)).extract<Poco::JSON::Object::Ptr>();
  EXPECT_DOUBLE_EQ(object->getValue<double>("target_rps"), 250.5);
  EXPECT_EQ(object->getValue<uint64_t>("keys_used"), 47u);
  EXPECT_EQ(object->getValue<int>("only_shard"), 1);
}

TEST(ReportTest, TlsRunsSayTlsAndWhyAHandshakeFailed) {
  RunResult r = SampleResult();
  r.options.tls = true;
  r.stats.transport[static_cast<int>(TransportError::kTls)] = 4;
  r.stats.tls_error = "certificate rejected: \"self-signed\"";
  const std::string text = FormatText(r);
  for (const char* part : {"127.0.0.2:9302 (TLS)", "tls 4", "tls error:   certificate rejected"}) {
    EXPECT_NE(text.find(part), std::string::npos) << part << "\n" << text;
  }
  EXPECT_EQ(r.stats.requests(), 173u);  // a failed handshake is not a request
  Poco::JSON::Parser parser;
  const auto object = parser.parse(FormatJson(r)).extract<Poco::JSON::Object::Ptr>();
  EXPECT_TRUE(object->getValue<bool>("tls"));
  EXPECT_EQ(object->getValue<std::string>("tls_error"), r.stats.tls_error);
  EXPECT_EQ(object->getObject("errors")->getValue<uint64_t>("tls"), 4u);
}

TEST(ReportTest, CsvRowMatchesHeader) {
  const std::vector<std::string> header = CsvFields(CsvHeader());
  const std::vector<std::string> row = CsvFields(CsvRow(SampleResult()));
  ASSERT_EQ(header.size(), row.size());
  auto field = [&](const std::string& name) {
    for (size_t i = 0; i < header.size(); ++i) {
      if (header[i] == name) return row[i];
    }
    return std::string("<missing>");
  };
  EXPECT_EQ(field("label"), "lab,el \"q\"");
  EXPECT_EQ(field("requests"), "173");
  EXPECT_EQ(field("throughput_rps"), "86.5");
  EXPECT_EQ(field("status"), "200:123 201:45 404:3");
  EXPECT_EQ(field("targets"), "127.0.0.1:9301 127.0.0.2:9302");
}

TEST(ReportTest, CsvHeaderOnlyWhenTheFileIsNew) {
  const std::string path = TempPath("append.csv");
  std::remove(path.c_str());
  std::string error;
  ASSERT_TRUE(AppendCsv(path, {SampleResult()}, error)) << error;
  ASSERT_TRUE(AppendCsv(path, {SampleResult(), SampleResult()}, error)) << error;
  const std::string text = ReadFile(path);
  EXPECT_EQ(text,
            CsvHeader() + CsvRow(SampleResult()) + CsvRow(SampleResult()) + CsvRow(SampleResult()));
  std::remove(path.c_str());
  EXPECT_FALSE(AppendCsv("/nonexistent-dir/x.csv", {SampleResult()}, error));
  EXPECT_NE(error.find("/nonexistent-dir/x.csv"), std::string::npos);
}

TEST(ReportTest, SweepJsonIsAnArrayAndTableHasARowPerRun) {
  std::vector<RunResult> results;
  for (int c : {1, 4}) {
    RunResult r = SampleResult();
    r.sweep_param = "connections";
    r.sweep_value = c;
    r.options.connections = c;
    results.push_back(r);
  }
  const std::string path = TempPath("sweep.json");
  std::string error;
  ASSERT_TRUE(WriteJson(path, results, /*as_array=*/true, error)) << error;
  Poco::JSON::Parser parser;
  const auto array = parser.parse(ReadFile(path)).extract<Poco::JSON::Array::Ptr>();
  ASSERT_EQ(array->size(), 2u);
  EXPECT_EQ(array->getObject(1)->getObject("sweep")->getValue<int>("value"), 4);
  std::remove(path.c_str());

  const std::string table = FormatSweepTable(results);
  EXPECT_NE(table.find("connections"), std::string::npos);
  EXPECT_NE(table.find("req/s"), std::string::npos);
  EXPECT_EQ(std::count(table.begin(), table.end(), '\n'), 3);
}

TEST(PlotTest, ScriptDrawsThroughputLeftAndLatencyRight) {
  RunResult r = SampleResult();
  r.sweep_param = "connections";
  const PlotFiles files = PlotFilesFor("/tmp/out.png");
  EXPECT_EQ(files.data, "/tmp/out.dat");
  EXPECT_EQ(files.script, "/tmp/out.gp");
  const std::string script = GnuplotScript("/tmp/out.png", files.data, {r});
  EXPECT_NE(script.find("set output '/tmp/out.png'"), std::string::npos);
  EXPECT_NE(script.find("axes x1y1 title 'req/s'"), std::string::npos);
  EXPECT_NE(script.find("axes x1y2 title 'p99 ms'"), std::string::npos);
  EXPECT_NE(script.find("set y2label 'latency (ms)'"), std::string::npos);
}

TEST(PlotTest, MissingGnuplotIsReportedAfterTheDataIsWritten) {
  RunResult r = SampleResult();
  r.sweep_param = "connections";
  r.sweep_value = 16;
  const std::string png = TempPath("plot.png");
  const PlotFiles files = PlotFilesFor(png);
  const std::string old_path = std::getenv("PATH") ? std::getenv("PATH") : "";
  setenv("PATH", "/nonexistent-dir", 1);
  std::string error;
  const bool drawn = PlotSweep(png, {r}, error);
  setenv("PATH", old_path.c_str(), 1);
  EXPECT_FALSE(drawn);
  EXPECT_NE(error.find("gnuplot not found"), std::string::npos) << error;
  EXPECT_NE(ReadFile(files.data).find("16 86.5 "), std::string::npos);
  EXPECT_NE(ReadFile(files.script).find("plot "), std::string::npos);
  std::remove(files.data.c_str());
  std::remove(files.script.c_str());
}

}  // namespace
}  // namespace kvs::bench
