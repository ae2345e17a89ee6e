#include "kvs/ctl/status.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "Poco/Exception.h"
#include "Poco/JSON/Array.h"
#include "Poco/JSON/Object.h"
#include "kvs/ctl/json.h"
#include "kvs/ctl/table.h"
#include "kvs/json/json_writer.h"

namespace kvs::ctl {
namespace {

using Poco::Dynamic::Var;
using Poco::JSON::Array;
using Poco::JSON::Object;

// Typed reads that tolerate absence and wrong types (the field keeps its default).
std::optional<double> Number(const Object& o, const std::string& name) {
  if (!o.has(name)) return std::nullopt;
  const Var v = o.get(name);
  if (v.isEmpty() || v.isString() || !v.isNumeric()) return std::nullopt;
  try {
    const double d = v.convert<double>();
    if (!std::isfinite(d)) return std::nullopt;
    return d;
  } catch (const Poco::Exception&) {
    return std::nullopt;
  }
}

std::optional<int64_t> Integer(const Object& o, const std::string& name) {
  const auto d = Number(o, name);
  if (!d || *d < -9.0e18 || *d > 9.0e18) return std::nullopt;
  return static_cast<int64_t>(*d);
}

std::string String(const Object& o, const std::string& name) {
  if (!o.has(name)) return "";
  const Var v = o.get(name);
  return v.isString() ? v.extract<std::string>() : "";
}

bool Boolean(const Object& o, const std::string& name) {
  if (!o.has(name)) return false;
  const Var v = o.get(name);
  return v.type() == typeid(bool) && v.extract<bool>();
}

Object::Ptr Child(const Object& o, const std::string& name) {
  if (!o.has(name)) return nullptr;
  const Var v = o.get(name);
  return v.type() == typeid(Object::Ptr) ? v.extract<Object::Ptr>() : nullptr;
}

Array::Ptr Items(const Object& o, const std::string& name) {
  if (!o.has(name)) return nullptr;
  const Var v = o.get(name);
  return v.type() == typeid(Array::Ptr) ? v.extract<Array::Ptr>() : nullptr;
}

std::vector<Object::Ptr> Objects(const Object& o, const std::string& name) {
  std::vector<Object::Ptr> out;
  const Array::Ptr array = Items(o, name);
  if (array.isNull()) return out;
  for (size_t i = 0; i < array->size(); ++i) {
    const Var v = array->get(static_cast<unsigned>(i));
    if (v.type() == typeid(Object::Ptr)) out.push_back(v.extract<Object::Ptr>());
  }
  return out;
}

NodeStatus NodeFromObject(const Object& o) {
  NodeStatus node;
  node.address = String(o, "address");
  if (o.has("error")) {
    node.error = String(o, "error");
    if (node.error.empty()) node.error = "error";
    return node;
  }
  node.shard_id = Integer(o, "shard-id");
  node.ready = Boolean(o, "ready");
  node.keys = Integer(o, "keys").value_or(0);
  node.epoch = Integer(o, "epoch").value_or(0);
  node.uptime_s = Number(o, "uptime-s").value_or(0);
  if (const Array::Ptr view = Items(o, "view"); !view.isNull()) {
    for (size_t i = 0; i < view->size(); ++i) {
      const Var v = view->get(static_cast<unsigned>(i));
      if (v.isString()) node.view.push_back(v.extract<std::string>());
    }
  }
  for (const Object::Ptr& peer : Objects(o, "peers")) {
    node.peers.push_back({String(*peer, "address"), Boolean(*peer, "alive")});
  }
  for (const Object::Ptr& lag : Objects(o, "replication")) {
    node.replication.push_back({String(*lag, "peer"), Integer(*lag, "queued").value_or(0),
                                Number(*lag, "oldest-age-ms").value_or(0)});
  }
  if (const Object::Ptr ae = Child(o, "anti-entropy"); !ae.isNull()) {
    node.last_run_age_ms = Number(*ae, "last-run-age-ms");
    node.last_repair_age_ms = Number(*ae, "last-repair-age-ms");
    node.last_repair_entries = Integer(*ae, "last-repair-entries").value_or(0);
    node.repaired_total = Integer(*ae, "repaired-total").value_or(0);
  }
  if (const Object::Ptr storage = Child(o, "storage"); !storage.isNull()) {
    node.storage_mode = String(*storage, "mode");
    node.storage_dir = String(*storage, "dir");
    node.storage_bytes = Integer(*storage, "bytes");
  }
  if (const Object::Ptr traffic = Child(o, "traffic"); !traffic.isNull()) {
    node.requests_per_s = Number(*traffic, "requests-per-s").value_or(0);
    if (const Object::Ptr latency = Child(*traffic, "latency-ms"); !latency.isNull()) {
      node.p50_ms = Number(*latency, "p50").value_or(0);
      node.p99_ms = Number(*latency, "p99").value_or(0);
    }
  }
  if (const Object::Ptr op = Child(o, "operation"); !op.isNull()) {
    node.operation =
        Operation{String(*op, "kind"), String(*op, "phase"), Integer(*op, "done").value_or(0),
                  Integer(*op, "total").value_or(0), Number(*op, "age-ms").value_or(0)};
  }
  return node;
}

std::string Fixed(const char* format, double value) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, format, value);
  return buffer;
}

}  // namespace

std::optional<NodeStatus> ParseNodeStatus(std::string_view text, std::string* error) {
  const Object::Ptr object = ParseJsonObject(text, error);
  if (object.isNull()) return std::nullopt;
  NodeStatus node = NodeFromObject(*object);
  if (node.address.empty()) {
    *error = "no \"address\" in the status";
    return std::nullopt;
  }
  return node;
}

std::optional<ClusterStatus> ParseClusterStatus(std::string_view text, std::string* error) {
  const Object::Ptr object = ParseJsonObject(text, error);
  if (object.isNull()) return std::nullopt;
  const Array::Ptr nodes = Items(*object, "nodes");
  if (nodes.isNull()) {
    *error = "no \"nodes\" array in the cluster status";
    return std::nullopt;
  }
  ClusterStatus cluster;
  cluster.via = String(*object, "via");
  cluster.epoch = Integer(*object, "epoch").value_or(0);
  for (size_t i = 0; i < nodes->size(); ++i) {
    const Var v = nodes->get(static_cast<unsigned>(i));
    if (v.type() != typeid(Object::Ptr)) {
      NodeStatus bad;
      bad.address = "#" + std::to_string(i);
      bad.error = "malformed node status";
      cluster.nodes.push_back(std::move(bad));
      continue;
    }
    NodeStatus node = NodeFromObject(*v.extract<Object::Ptr>());
    if (node.address.empty()) {
      node.address = "#" + std::to_string(i);
      if (node.error.empty()) node.error = "node status without an address";
    }
    cluster.nodes.push_back(std::move(node));
  }
  return cluster;
}

std::string AliveSeenByOthers(const ClusterStatus& cluster, const NodeStatus& node) {
  if (!node.error.empty()) return "unreachable";
  int reports = 0, alive = 0;
  for (const NodeStatus& other : cluster.nodes) {
    if (&other == &node || !other.error.empty()) continue;
    for (const PeerLiveness& peer : other.peers) {
      if (peer.address != node.address) continue;
      ++reports;
      if (peer.alive) ++alive;
    }
  }
  if (reports == 0) return "?";
  if (alive == reports) return "yes";
  if (alive == 0) return "no";
  return "no (" + std::to_string(reports - alive) + " of " + std::to_string(reports) + ")";
}

std::string RenderStatus(const ClusterStatus& cluster) {
  std::string out;
  size_t answered = 0;
  std::vector<int64_t> shards;
  int64_t max_epoch = cluster.epoch;
  for (const NodeStatus& node : cluster.nodes) {
    if (!node.error.empty()) continue;
    ++answered;
    max_epoch = std::max(max_epoch, node.epoch);
    if (node.shard_id && std::find(shards.begin(), shards.end(), *node.shard_id) == shards.end()) {
      shards.push_back(*node.shard_id);
    }
  }
  out += "cluster via " + (cluster.via.empty() ? std::string("?") : cluster.via) + ": " +
         std::to_string(cluster.nodes.size()) + " nodes (" + std::to_string(answered) +
         " answered), " + std::to_string(shards.size()) + " shards, epoch " +
         std::to_string(cluster.epoch) + "\n\n";

  Table table({"NODE", "SHARD", "ALIVE", "READY", "KEYS", "EPOCH", "UPTIME",
               "REPLICATION (peer queued oldest)", "LAST REPAIR", "DATA"});
  for (const NodeStatus& node : cluster.nodes) {
    if (!node.error.empty()) {
      table.AddRow({node.address, "-", "unreachable", "-", "-", "-", "-", "-", "-", "-"});
      continue;
    }
    std::string replication;
    for (const ReplicationLag& lag : node.replication) {
      if (!replication.empty()) replication += '\n';
      replication += lag.peer + " " + std::to_string(lag.queued) + " " +
                     (lag.queued == 0 ? std::string("-") : FormatDurationMs(lag.oldest_age_ms));
    }
    if (replication.empty()) replication = "-";
    std::string repair;
    if (node.last_repair_age_ms) {
      repair = std::to_string(node.last_repair_entries) +
               (node.last_repair_entries == 1 ? " entry " : " entries ") +
               FormatDurationMs(*node.last_repair_age_ms) + " ago";
    } else if (node.last_run_age_ms) {
      repair = "none (ran " + FormatDurationMs(*node.last_run_age_ms) + " ago)";
    } else {
      repair = "not run yet";
    }
    std::string data;
    if (node.storage_mode == "memory") {
      data = "memory";
    } else if (!node.storage_mode.empty()) {
      data = (node.storage_dir.empty() ? std::string("?") : node.storage_dir) + " " +
             (node.storage_bytes ? FormatBytes(*node.storage_bytes) : std::string("?"));
    } else {
      data = "?";
    }
    std::string epoch = std::to_string(node.epoch);
    if (node.epoch != max_epoch) epoch += " (behind)";
    table.AddRow({node.address, node.shard_id ? std::to_string(*node.shard_id) : "none",
                  AliveSeenByOthers(cluster, node), node.ready ? "yes" : "no",
                  std::to_string(node.keys), epoch, FormatDurationMs(node.uptime_s * 1000),
                  replication, repair, data});
  }
  out += table.Render();
  for (const NodeStatus& node : cluster.nodes) {
    if (!node.error.empty()) out += "\n" + node.address + ": " + node.error;
  }
  for (const NodeStatus& node : cluster.nodes) {
    if (node.operation) {
      out += "\n" + node.address + ": " +
             RenderProgress(*node.operation, node.operation->age_ms / 1000, 0);
    }
  }
  if (out.back() != '\n') out += '\n';
  return out;
}

std::string RenderProgress(const Operation& operation, double elapsed_s, int bar_width) {
  std::string text = (operation.kind.empty() ? std::string("operation") : operation.kind);
  if (!operation.phase.empty()) text += ": " + operation.phase;
  if (operation.total > 0) {
    text += " " + std::to_string(operation.done) + "/" + std::to_string(operation.total);
  }
  text += " (" + Fixed("%.1f", elapsed_s < 0 ? 0 : elapsed_s) + " s)";
  if (bar_width <= 0) return text;
  double fraction = 0;
  if (operation.total > 0) {
    fraction = std::clamp(
        static_cast<double>(operation.done) / static_cast<double>(operation.total), 0.0, 1.0);
  }
  const int filled = static_cast<int>(fraction * bar_width);
  std::string bar = "[" + std::string(static_cast<size_t>(filled), '#') +
                    std::string(static_cast<size_t>(bar_width - filled), '.') + "] ";
  bar += operation.total > 0 ? Fixed("%3.0f%%", fraction * 100) + " " : std::string("     ");
  return bar + text;
}

std::string PrometheusToJson(std::string_view text) {
  std::string out = "{";
  bool first = true;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(start, end - start);
    start = end + 1;
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.remove_suffix(1);
    if (line.empty() || line.front() == '#') continue;
    // The value follows the series after a space; labels may hold spaces, so split after '}'.
    const size_t brace = line.rfind('}');
    const size_t space = line.find(' ', brace == std::string_view::npos ? 0 : brace);
    if (space == std::string_view::npos || space == 0) continue;
    const std::string_view series = line.substr(0, space);
    std::string_view value = line.substr(space + 1);
    if (const size_t stamp = value.find(' '); stamp != std::string_view::npos) {
      value = value.substr(0, stamp);  // an optional timestamp
    }
    std::string number(value);
    char* parsed_end = nullptr;
    const double d = std::strtod(number.c_str(), &parsed_end);
    if (number.empty() || parsed_end != number.c_str() + number.size()) continue;
    if (!first) out += ',';
    first = false;
    json::AppendJsonString(out, series);
    out += ':';
    if (std::isfinite(d)) {
      char buffer[64];
      std::snprintf(buffer, sizeof buffer, "%.17g", d);
      out += buffer;
    } else {
      out += "null";
    }
  }
  out += '}';
  return out;
}

}  // namespace kvs::ctl
