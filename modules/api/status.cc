#include "kvs/api/status.h"

#include <Poco/Dynamic/Var.h>
#include <Poco/Exception.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/ParseHandler.h>
#include <Poco/JSON/Parser.h>

#include <cmath>
#include <cstdio>
#include <sstream>

#include "kvs/json/json_writer.h"

namespace kvs::api {
using json::JsonObject;

std::string JsonNumber(double value) {
  if (!std::isfinite(value)) return "0";
  char text[64];
  std::snprintf(text, sizeof(text), "%.3f", value);
  std::string out(text);
  // "12.500" -> "12.5", "3.000" -> "3"
  while (out.back() == '0') out.pop_back();
  if (out.back() == '.') out.pop_back();
  if (out == "-0") out = "0";
  return out;
}

namespace {

std::string Array(const std::vector<std::string>& objects) {
  std::string out = "[";
  for (size_t i = 0; i < objects.size(); ++i) {
    if (i > 0) out += ',';
    out += objects[i];
  }
  return out + "]";
}

std::string StrArray(const std::vector<std::string>& values) {
  std::string out = "[";
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out += ',';
    json::AppendJsonString(out, values[i]);
  }
  return out + "]";
}

void OptionalInt(JsonObject& object, std::string_view name, const std::optional<int64_t>& value) {
  if (value) {
    object.Int(name, *value);
  } else {
    object.Null(name);
  }
}

}  // namespace

std::string RenderNodeStatus(const NodeStatus& s) {
  JsonObject out;
  out.Str("address", s.address);
  if (s.shard_id) {
    out.Int("shard-id", *s.shard_id);
  } else {
    out.Null("shard-id");
  }
  out.Bool("ready", s.ready)
      .Int("keys", s.keys)
      .Int("epoch", static_cast<int64_t>(s.epoch))
      .RawJson("uptime-s", JsonNumber(s.uptime_s))
      .RawJson("view", StrArray(s.view));

  std::vector<std::string> items;
  for (size_t id = 0; id < s.shards.size(); ++id) {
    items.push_back(JsonObject()
                        .Int("shard-id", static_cast<int64_t>(id))
                        .RawJson("members", StrArray(s.shards[id]))
                        .Finish());
  }
  out.RawJson("shards", Array(items));

  items.clear();
  for (const NodeStatus::Peer& peer : s.peers) {
    items.push_back(JsonObject().Str("address", peer.address).Bool("alive", peer.alive).Finish());
  }
  out.RawJson("peers", Array(items));

  items.clear();
  for (const NodeStatus::Queue& queue : s.replication) {
    items.push_back(JsonObject()
                        .Str("peer", queue.peer)
                        .Int("queued", static_cast<int64_t>(queue.queued))
                        .Int("oldest-age-ms", queue.oldest_age_ms)
                        .Finish());
  }
  out.RawJson("replication", Array(items));

  JsonObject anti_entropy;
  OptionalInt(anti_entropy, "last-run-age-ms", s.anti_entropy_last_run_age_ms);
  OptionalInt(anti_entropy, "last-repair-age-ms", s.anti_entropy_last_repair_age_ms);
  anti_entropy.Int("last-repair-entries", static_cast<int64_t>(s.anti_entropy_last_repair_entries))
      .Int("repaired-total", static_cast<int64_t>(s.anti_entropy_repaired_total));
  out.RawJson("anti-entropy", anti_entropy.Finish());

  JsonObject storage;
  if (s.disk) {
    storage.Str("mode", "disk")
        .Str("dir", s.data_dir)
        .Int("bytes", static_cast<int64_t>(s.data_bytes));
  } else {
    storage.Str("mode", "memory");
  }
  out.RawJson("storage", storage.Finish());

  out.RawJson("traffic", JsonObject()
                             .RawJson("requests-per-s", JsonNumber(s.requests_per_s))
                             .RawJson("latency-ms", JsonObject()
                                                        .RawJson("p50", JsonNumber(s.p50_ms))
                                                        .RawJson("p99", JsonNumber(s.p99_ms))
                                                        .Finish())
                             .Finish());
  if (s.operation) {
    out.RawJson("operation", JsonObject()
                                 .Str("kind", s.operation->kind)
                                 .Str("phase", s.operation->phase)
                                 .Int("done", static_cast<int64_t>(s.operation->done))
                                 .Int("total", static_cast<int64_t>(s.operation->total))
                                 .Int("age-ms", s.operation->age_ms)
                                 .Finish());
  } else {
    out.Null("operation");
  }
  return out.Finish();
}

std::string RenderClusterStatus(std::string_view via, uint64_t epoch,
                                const std::vector<ClusterEntry>& nodes) {
  std::vector<std::string> items;
  items.reserve(nodes.size());
  for (const ClusterEntry& node : nodes) {
    if (node.error.empty()) {
      items.push_back(node.json);
    } else {
      items.push_back(JsonObject().Str("address", node.address).Str("error", node.error).Finish());
    }
  }
  return JsonObject()
      .Str("via", via)
      .Int("epoch", static_cast<int64_t>(epoch))
      .RawJson("nodes", Array(items))
      .Finish();
}

std::optional<std::string> CheckPeerStatus(std::string_view body, std::string_view address,
                                           std::string& error) {
  try {
    Poco::JSON::Parser parser(new Poco::JSON::ParseHandler(/*preserveObjectOrder=*/true));
    parser.setDepth(16);  // a /status object nests 4 deep; deeper is not one
    const Poco::Dynamic::Var parsed = parser.parse(std::string(body));
    if (parsed.type() != typeid(Poco::JSON::Object::Ptr)) {
      error = "answer is not a JSON object";
      return std::nullopt;
    }
    const Poco::JSON::Object::Ptr object = parsed.extract<Poco::JSON::Object::Ptr>();
    if (object.isNull() || !object->has("address") || !object->get("address").isString()) {
      error = "answer has no address";
      return std::nullopt;
    }
    if (object->getValue<std::string>("address") != address) {
      error = "answer is from " + object->getValue<std::string>("address");
      return std::nullopt;
    }
    std::ostringstream out;
    object->stringify(out);
    return out.str();
  } catch (const Poco::Exception& e) {
    error = "answer is not valid JSON: " + e.displayText().substr(0, 200);
  } catch (const std::exception& e) {
    error = std::string("answer is not valid JSON: ") + e.what();
  }
  return std::nullopt;
}

}  // namespace kvs::api
