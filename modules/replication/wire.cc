#include "kvs/replication/wire.h"

#include <Poco/Exception.h>
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>

#include "kvs/json/json_writer.h"

namespace kvs::replication {
namespace {

using json::AppendJsonString;
using Poco::JSON::Array;
using Poco::JSON::Object;

void AppendVersionVector(std::string& out, const causal::VersionVector& vv) {
  out.push_back('{');
  bool first = true;
  for (const auto& [origin, seq] : vv) {
    if (!first) out.push_back(',');
    first = false;
    AppendJsonString(out, origin);
    out.push_back(':');
    out += std::to_string(seq);
  }
  out.push_back('}');
}

void AppendUpdate(std::string& out, const Update& u) {
  out += "{\"k\":";
  AppendJsonString(out, u.key);
  out += ",\"v\":";
  AppendJsonString(out, u.entry.value);
  out += ",\"t\":";
  out += u.entry.tombstone ? "true" : "false";
  out += ",\"h\":" + std::to_string(u.entry.version.hlc);
  out += ",\"o\":";
  AppendJsonString(out, u.entry.version.origin);
  out += ",\"s\":" + std::to_string(u.entry.version.seq);
  out += ",\"m\":";
  AppendJsonString(out, u.entry.meta);
  out.push_back('}');
}

Object::Ptr ParseObject(std::string_view text) {
  Poco::JSON::Parser parser;
  auto parsed = parser.parse(std::string(text));
  if (parsed.type() != typeid(Object::Ptr)) throw Poco::DataFormatException("not an object");
  return parsed.extract<Object::Ptr>();
}

causal::VersionVector ReadVersionVector(const Object::Ptr& object) {
  causal::VersionVector vv;
  if (object.isNull()) return vv;
  for (const auto& [origin, seq] : *object) vv[origin] = seq.convert<uint64_t>();
  return vv;
}

std::vector<Update> ReadUpdates(const Array::Ptr& array) {
  std::vector<Update> out;
  if (array.isNull()) return out;
  out.reserve(array->size());
  for (size_t i = 0; i < array->size(); ++i) {
    Object::Ptr item = array->getObject(static_cast<unsigned>(i));
    if (item.isNull()) throw Poco::DataFormatException("update is not an object");
    Update u;
    u.key = item->getValue<std::string>("k");
    u.entry.value = item->getValue<std::string>("v");
    u.entry.tombstone = item->getValue<bool>("t");
    u.entry.version.hlc = item->getValue<uint64_t>("h");
    u.entry.version.origin = item->getValue<std::string>("o");
    u.entry.version.seq = item->getValue<uint64_t>("s");
    u.entry.meta = item->getValue<std::string>("m");
    out.push_back(std::move(u));
  }
  return out;
}

template <typename Fn>
auto Guarded(std::string& error, Fn&& fn) -> decltype(std::optional(fn())) {
  try {
    return fn();
  } catch (const Poco::Exception& e) {
    error = e.displayText();
  } catch (const std::exception& e) {
    error = e.what();
  }
  return std::nullopt;
}

}  // namespace

std::string EncodeBatch(const std::string& from, const std::vector<const Update*>& updates) {
  std::string out = "{\"from\":";
  AppendJsonString(out, from);
  out += ",\"updates\":[";
  for (size_t i = 0; i < updates.size(); ++i) {
    if (i > 0) out.push_back(',');
    AppendUpdate(out, *updates[i]);
  }
  out += "]}";
  return out;
}

std::optional<ReplicateBatch> DecodeBatch(std::string_view text, std::string& error) {
  return Guarded(error, [&] {
    Object::Ptr object = ParseObject(text);
    return ReplicateBatch{object->getValue<std::string>("from"),
                          ReadUpdates(object->getArray("updates"))};
  });
}

std::string EncodeSyncRequest(const SyncRequest& request) {
  std::string out = "{\"from\":";
  AppendJsonString(out, request.from);
  out += ",\"vv\":";
  AppendVersionVector(out, request.vv);
  out += request.full ? ",\"full\":true}" : "}";
  return out;
}

std::optional<SyncRequest> DecodeSyncRequest(std::string_view text, std::string& error) {
  return Guarded(error, [&] {
    Object::Ptr object = ParseObject(text);
    return SyncRequest{object->getValue<std::string>("from"),
                       ReadVersionVector(object->getObject("vv")),
                       object->has("full") && object->getValue<bool>("full")};
  });
}

std::string EncodeSyncReply(const SyncReply& reply) {
  std::string out = "{\"vv\":";
  AppendVersionVector(out, reply.vv);
  out += ",\"updates\":[";
  for (size_t i = 0; i < reply.updates.size(); ++i) {
    if (i > 0) out.push_back(',');
    AppendUpdate(out, reply.updates[i]);
  }
  out += "]}";
  return out;
}

std::optional<SyncReply> DecodeSyncReply(std::string_view text, std::string& error) {
  return Guarded(error, [&] {
    Object::Ptr object = ParseObject(text);
    return SyncReply{ReadVersionVector(object->getObject("vv")),
                     ReadUpdates(object->getArray("updates"))};
  });
}

std::string EncodeConfig(const cluster::ClusterConfig& config) {
  std::string out = "{\"epoch\":" + std::to_string(config.epoch) +
                    ",\"barrier_epoch\":" + std::to_string(config.barrier_epoch) + ",\"shards\":[";
  for (size_t s = 0; s < config.shards.size(); ++s) {
    if (s > 0) out.push_back(',');
    out.push_back('[');
    for (size_t m = 0; m < config.shards[s].size(); ++m) {
      if (m > 0) out.push_back(',');
      AppendJsonString(out, config.shards[s][m].ToString());
    }
    out.push_back(']');
  }
  out += "]}";
  return out;
}

std::optional<cluster::ClusterConfig> DecodeConfig(std::string_view text, std::string& error) {
  return Guarded(error, [&]() -> cluster::ClusterConfig {
    Object::Ptr object = ParseObject(text);
    cluster::ClusterConfig config;
    config.epoch = object->getValue<uint64_t>("epoch");
    if (object->has("barrier_epoch"))
      config.barrier_epoch = object->getValue<uint64_t>("barrier_epoch");
    Array::Ptr shards = object->getArray("shards");
    if (shards.isNull()) throw Poco::DataFormatException("shards missing");
    for (size_t s = 0; s < shards->size(); ++s) {
      Array::Ptr members = shards->getArray(static_cast<unsigned>(s));
      if (members.isNull()) throw Poco::DataFormatException("shard is not an array");
      std::vector<cluster::Address> list;
      for (size_t m = 0; m < members->size(); ++m) {
        auto address =
            cluster::Address::Parse(members->getElement<std::string>(static_cast<unsigned>(m)));
        if (!address) throw Poco::DataFormatException("bad member address");
        list.push_back(*address);
      }
      config.shards.push_back(std::move(list));
    }
    return config;
  });
}

}  // namespace kvs::replication
