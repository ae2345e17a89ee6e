// The Grafana dashboard (deploy/grafana/kvs-dashboard.json) against live nodes: every metric
// its queries read must be one a kvs-server exports in /metrics, with every label the queries
// group by; and the JSON must be a dashboard Grafana imports (panels with ids, queries, a place
// on the 24-column grid, the datasource and node variables). Two real nodes of one shard on
// loopback, so that the per-peer series exist; a few writes and reads first.
#include <algorithm>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "Poco/JSON/Array.h"
#include "Poco/JSON/Object.h"
#include "Poco/JSON/Parser.h"
#include "gtest/gtest.h"
#include "http_client.h"
#include "server_process.h"

namespace kvs::http_test {
namespace {

using std::chrono::milliseconds;

const std::string kDashboard = std::string(KVS_SOURCE_DIR) + "/deploy/grafana/kvs-dashboard.json";

// Labels Prometheus or the histogram format add: not the exporter's to provide.
const std::set<std::string> kAddedLabels = {"instance", "job", "le"};

struct Query {
  std::string panel;
  std::string expr;
};

Poco::JSON::Object::Ptr LoadDashboard(std::string* error) {
  std::ifstream in(kDashboard);
  std::stringstream text;
  text << in.rdbuf();
  try {
    return Poco::JSON::Parser().parse(text.str()).extract<Poco::JSON::Object::Ptr>();
  } catch (const Poco::Exception& e) {
    *error = kDashboard + ": " + e.displayText();
    return nullptr;
  }
}

std::vector<Query> Queries(const Poco::JSON::Object::Ptr& dashboard) {
  std::vector<Query> out;
  const auto panels = dashboard->getArray("panels");
  for (size_t i = 0; panels && i < panels->size(); ++i) {
    const auto panel = panels->getObject(static_cast<unsigned>(i));
    const auto targets = panel->getArray("targets");
    for (size_t t = 0; targets && t < targets->size(); ++t) {
      out.push_back(
          {panel->optValue<std::string>("title", "?"),
           targets->getObject(static_cast<unsigned>(t))->optValue<std::string>("expr", "")});
    }
  }
  // The node variable's query (label_values(<metric>, instance)) reads a metric too.
  const auto variables = dashboard->getObject("templating")->getArray("list");
  for (size_t i = 0; variables && i < variables->size(); ++i) {
    const auto variable = variables->getObject(static_cast<unsigned>(i));
    out.push_back({"variable " + variable->optValue<std::string>("name", "?"),
                   variable->optValue<std::string>("definition", "")});
  }
  return out;
}

// Metric families in /metrics ("# TYPE name type") and the label names seen on their samples.
struct Exported {
  std::map<std::string, std::string> type;              // family -> counter/gauge/histogram
  std::map<std::string, std::set<std::string>> labels;  // family -> label names
};

Exported ParseExposition(const std::string& text) {
  Exported out;
  std::istringstream lines(text);
  const std::regex type_line(R"(^# TYPE (\w+) (\w+)$)");
  const std::regex sample(R"(^(\w+)(\{([^}]*)\})? )");
  const std::regex label(R"((\w+)=")");
  for (std::string line; std::getline(lines, line);) {
    std::smatch m;
    if (std::regex_match(line, m, type_line)) {
      out.type[m[1]] = m[2];
    } else if (!line.empty() && line[0] != '#' && std::regex_search(line, m, sample)) {
      std::string family = m[1];
      for (const char* suffix : {"_bucket", "_sum", "_count"}) {
        const std::string s = suffix;
        if (family.size() > s.size() && family.ends_with(s) &&
            out.type.count(family.substr(0, family.size() - s.size())) != 0 &&
            out.type[family.substr(0, family.size() - s.size())] == "histogram") {
          family = family.substr(0, family.size() - s.size());
        }
      }
      std::set<std::string>& names = out.labels[family];
      const std::string labels = m[3];
      for (auto it = std::sregex_iterator(labels.begin(), labels.end(), label);
           it != std::sregex_iterator(); ++it) {
        names.insert((*it)[1]);
      }
    }
  }
  return out;
}

// The kvs metric names a query reads, histogram suffixes kept.
std::vector<std::string> MetricNames(const std::string& expr) {
  std::vector<std::string> out;
  const std::regex name(R"(\bkvs_[a-z0-9_]+)");
  for (auto it = std::sregex_iterator(expr.begin(), expr.end(), name); it != std::sregex_iterator();
       ++it) {
    out.push_back(it->str());
  }
  return out;
}

// Label names of "by (a, b)" / "without (a)" clauses and of {a="..."} selectors.
std::set<std::string> GroupingLabels(const std::string& expr) {
  std::set<std::string> out;
  const std::regex by(R"(\b(?:by|without)\s*\(([^)]*)\))");
  const std::regex word(R"(\w+)");
  for (auto it = std::sregex_iterator(expr.begin(), expr.end(), by); it != std::sregex_iterator();
       ++it) {
    const std::string list = (*it)[1];
    for (auto w = std::sregex_iterator(list.begin(), list.end(), word); w != std::sregex_iterator();
         ++w) {
      out.insert(w->str());
    }
  }
  return out;
}

std::string FamilyOf(const std::string& name, const Exported& exported) {
  for (const char* suffix : {"_bucket", "_sum", "_count"}) {
    const std::string s = suffix;
    if (name.size() > s.size() && name.ends_with(s)) {
      const std::string base = name.substr(0, name.size() - s.size());
      const auto found = exported.type.find(base);
      if (found != exported.type.end() && found->second == "histogram") return base;
    }
  }
  return name;
}

TEST(DashboardTest, IsADashboardGrafanaImports) {
  std::string error;
  const auto dashboard = LoadDashboard(&error);
  ASSERT_FALSE(dashboard.isNull()) << error;
  EXPECT_FALSE(dashboard->optValue<std::string>("uid", "").empty());
  EXPECT_FALSE(dashboard->optValue<std::string>("title", "").empty());
  EXPECT_GT(dashboard->optValue<int>("schemaVersion", 0), 30);
  std::set<std::string> variables;
  const auto templating = dashboard->getObject("templating");
  ASSERT_FALSE(templating.isNull());
  const auto list = templating->getArray("list");
  for (size_t i = 0; list && i < list->size(); ++i) {
    variables.insert(list->getObject(static_cast<unsigned>(i))->optValue<std::string>("name", ""));
  }
  EXPECT_EQ(variables, (std::set<std::string>{"datasource", "instance"}));

  const auto panels = dashboard->getArray("panels");
  ASSERT_FALSE(panels.isNull());
  std::set<int> ids;
  int queries = 0;
  for (size_t i = 0; i < panels->size(); ++i) {
    const auto panel = panels->getObject(static_cast<unsigned>(i));
    const std::string title = panel->optValue<std::string>("title", "");
    SCOPED_TRACE("panel " + title);
    EXPECT_FALSE(title.empty());
    EXPECT_TRUE(ids.insert(panel->optValue<int>("id", -1)).second) << "duplicate or missing id";
    const auto grid = panel->getObject("gridPos");
    ASSERT_FALSE(grid.isNull());
    EXPECT_LE(grid->getValue<int>("x") + grid->getValue<int>("w"), 24);
    if (panel->optValue<std::string>("type", "") == "row") continue;
    const auto targets = panel->getArray("targets");
    ASSERT_FALSE(targets.isNull());
    ASSERT_GT(targets->size(), 0u);
    for (size_t t = 0; t < targets->size(); ++t) {
      const auto target = targets->getObject(static_cast<unsigned>(t));
      const std::string expr = target->optValue<std::string>("expr", "");
      EXPECT_FALSE(MetricNames(expr).empty()) << "a query that reads no kvs metric: " << expr;
      EXPECT_NE(expr.find("$instance"), std::string::npos) << "not filtered by node: " << expr;
      ++queries;
    }
    EXPECT_EQ(panel->getObject("datasource")->optValue<std::string>("uid", ""), "${datasource}");
  }
  EXPECT_GE(queries, 20);
}

TEST(DashboardTest, EveryQueriedMetricAndLabelIsExportedByALiveNode) {
  std::string error;
  const auto dashboard = LoadDashboard(&error);
  ASSERT_FALSE(dashboard.isNull()) << error;

  // Two replicas of one shard: the per-peer series exist.
  const uint16_t ports[2] = {FreeLoopbackPort(), FreeLoopbackPort()};
  const std::string view = LoopbackAddress(ports[0]) + "," + LoopbackAddress(ports[1]);
  std::unique_ptr<ServerProcess> nodes[2];
  for (int i = 0; i < 2; ++i) {
    EnvList env = {{"SOCKET_ADDRESS", LoopbackAddress(ports[i])},
                   {"VIEW", view},
                   {"SHARD_COUNT", "1"},
                   {"KVS_HTTP_BIND", "127.0.0.1"}};
    for (const auto& [name, value] : SecureSuiteEnv()) env.push_back({name, value});
    nodes[i] = ServerProcess::Spawn({env, {}}, &error);
    ASSERT_NE(nodes[i], nullptr) << error;
    nodes[i]->set_port(ports[i]);
  }
  for (auto& node : nodes) ASSERT_TRUE(node->WaitUntilHealthy(milliseconds(10000)));
  for (int k = 0; k < 20; ++k) {
    const std::string key = "/key-value-store/dash-" + std::to_string(k);
    EXPECT_EQ(SendRequest(ports[0], "PUT", key, PutBody("v")).status, 201);
    SendRequest(ports[1], "GET", key);
  }
  const HttpResponse metrics = SendRequest(ports[0], "GET", "/metrics");
  ASSERT_EQ(metrics.status, 200) << Describe(metrics);
  const Exported exported = ParseExposition(metrics.body);
  ASSERT_GT(exported.type.size(), 20u) << metrics.body;

  std::set<std::string> missing;
  for (const Query& query : Queries(dashboard)) {
    const std::set<std::string> grouping = GroupingLabels(query.expr);
    for (const std::string& name : MetricNames(query.expr)) {
      const std::string family = FamilyOf(name, exported);
      if (exported.type.count(family) == 0) {
        missing.insert(name + " (panel \"" + query.panel + "\")");
        continue;
      }
      if (family != name && exported.type.at(family) != "histogram") {
        missing.insert(name + " (not a histogram's series; panel \"" + query.panel + "\")");
      }
      const auto seen = exported.labels.find(family);
      for (const std::string& label : grouping) {
        if (kAddedLabels.count(label) != 0) continue;
        if (seen == exported.labels.end() || seen->second.count(label) == 0) {
          missing.insert(family + " has no label \"" + label + "\" (panel \"" + query.panel +
                         "\")");
        }
      }
    }
  }
  std::string list;
  for (const std::string& m : missing) list += "\n  " + m;
  EXPECT_TRUE(missing.empty()) << "the dashboard queries what no node exports:" << list;
}

}  // namespace
}  // namespace kvs::http_test
