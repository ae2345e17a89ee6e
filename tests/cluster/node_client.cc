#include "node_client.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>

#include "Poco/Exception.h"
#include "Poco/JSON/Array.h"
#include "Poco/Net/HTTPClientSession.h"
#include "Poco/Net/HTTPRequest.h"
#include "Poco/Net/HTTPResponse.h"
#include "Poco/StreamCopier.h"
#include "Poco/Timespan.h"

namespace kvs::cluster_test {
namespace {

using std::chrono::milliseconds;

Poco::Timespan ToTimespan(milliseconds timeout) {
  return Poco::Timespan(static_cast<Poco::Timespan::TimeDiff>(timeout.count()) * 1000);
}

// The string member `name` of a JSON object body, or nullopt.
std::optional<std::string> StringMember(const Poco::JSON::Object::Ptr& object,
                                        const std::string& name) {
  if (object.isNull() || !object->has(name)) return std::nullopt;
  const Poco::Dynamic::Var value = object->get(name);
  if (!value.isString()) return std::nullopt;
  return value.extract<std::string>();
}

// The body of a 200 answer as a JSON object of exactly {"message":`message`, `member`:...}, or
// nullptr.
Poco::JSON::Object::Ptr ShardAnswer(const HttpResponse& response, std::string_view message,
                                    const std::string& member) {
  if (response.status != 200) return nullptr;
  Poco::JSON::Object::Ptr object = http_test::ParseObject(response.body);
  if (object.isNull() || object->size() != 2 || !object->has(member) ||
      StringMember(object, "message") != message) {
    return nullptr;
  }
  return object;
}

std::optional<int64_t> IntegerMember(const Poco::JSON::Object::Ptr& object,
                                     const std::string& name) {
  if (object.isNull()) return std::nullopt;
  const Poco::Dynamic::Var value = object->get(name);
  if (!value.isInteger()) return std::nullopt;
  return value.convert<int64_t>();
}

}  // namespace

HttpResponse Send(const Endpoint& endpoint, std::string_view method, std::string_view target,
                  const std::optional<std::string>& body, milliseconds timeout) {
  // HTTPS in a KVS_TEST_SECURE=tls run.
  const std::unique_ptr<Poco::Net::HTTPClientSession> session =
      http_test::MakeSession(endpoint.host, endpoint.port);
  session->setTimeout(ToTimespan(timeout), ToTimespan(timeout), ToTimespan(timeout));
  session->setKeepAlive(false);
  return http_test::Exchange(*session, method, target, body);
}

HttpResponse PutKey(const Endpoint& endpoint, std::string_view key, std::string_view value,
                    std::string_view metadata, milliseconds timeout) {
  return Send(endpoint, "PUT", "/key-value-store/" + std::string(key),
              http_test::PutBody(value, metadata), timeout);
}

HttpResponse GetKey(const Endpoint& endpoint, std::string_view key, std::string_view metadata,
                    milliseconds timeout) {
  return Send(endpoint, "GET", "/key-value-store/" + std::string(key),
              http_test::MetadataBody(metadata), timeout);
}

std::optional<ReadResult> ParseRead(const HttpResponse& response) {
  if (response.status != 200) return std::nullopt;
  const Poco::JSON::Object::Ptr object = http_test::ParseObject(response.body);
  if (object.isNull() || object->size() != 3) return std::nullopt;
  const auto message = StringMember(object, "message");
  auto value = StringMember(object, "value");
  auto metadata = StringMember(object, "causal-metadata");
  if (message != "Retrieved successfully" || !value || !metadata) return std::nullopt;
  return ReadResult{std::move(*value), std::move(*metadata)};
}

std::optional<std::vector<std::string>> GetView(const Endpoint& endpoint, milliseconds timeout) {
  const HttpResponse response =
      Send(endpoint, "GET", "/key-value-store-view", std::nullopt, timeout);
  if (response.status != 200) return std::nullopt;
  const auto view = StringMember(http_test::ParseObject(response.body), "view");
  if (!view) return std::nullopt;
  std::vector<std::string> members;
  size_t start = 0;
  while (start <= view->size()) {
    const size_t comma = std::min(view->find(',', start), view->size());
    if (comma > start) members.push_back(view->substr(start, comma - start));
    start = comma + 1;
  }
  return members;
}

std::optional<int64_t> GetKeyCount(const Endpoint& endpoint, int shard, milliseconds timeout) {
  const HttpResponse response =
      Send(endpoint, "GET", "/key-value-store-shard/shard-id-key-count/" + std::to_string(shard),
           std::nullopt, timeout);
  if (response.status != 200) return std::nullopt;
  const Poco::JSON::Object::Ptr object = http_test::ParseObject(response.body);
  if (object.isNull() || !object->has("shard-id-key-count")) return std::nullopt;
  const Poco::Dynamic::Var count = object->get("shard-id-key-count");
  if (!count.isInteger()) return std::nullopt;
  return count.convert<int64_t>();
}

HttpResponse GetShardInfo(const Endpoint& endpoint, std::string_view what, milliseconds timeout) {
  return Send(endpoint, "GET", "/key-value-store-shard/" + std::string(what), std::nullopt,
              timeout);
}

std::optional<std::vector<int64_t>> ParseShardIds(const HttpResponse& response) {
  const auto object = ShardAnswer(response, "Shard IDs retrieved successfully", "shard-ids");
  if (object.isNull()) return std::nullopt;
  const Poco::JSON::Array::Ptr array = object->getArray("shard-ids");
  if (array.isNull()) return std::nullopt;
  std::vector<int64_t> ids;
  for (size_t i = 0; i < array->size(); ++i) {
    const Poco::Dynamic::Var id = array->get(static_cast<unsigned>(i));
    if (!id.isInteger()) return std::nullopt;
    ids.push_back(id.convert<int64_t>());
  }
  return ids;
}

std::optional<int64_t> ParseNodeShardId(const HttpResponse& response) {
  return IntegerMember(
      ShardAnswer(response, "Shard ID of the node retrieved successfully", "shard-id"), "shard-id");
}

std::optional<std::vector<std::string>> ParseShardMembers(const HttpResponse& response) {
  const auto object =
      ShardAnswer(response, "Members of shard ID retrieved successfully", "shard-id-members");
  if (object.isNull()) return std::nullopt;
  const Poco::JSON::Array::Ptr array = object->getArray("shard-id-members");
  if (array.isNull()) return std::nullopt;
  std::vector<std::string> members;
  for (size_t i = 0; i < array->size(); ++i) {
    const Poco::Dynamic::Var member = array->get(static_cast<unsigned>(i));
    if (!member.isString()) return std::nullopt;
    members.push_back(member.extract<std::string>());
  }
  return members;
}

std::optional<int64_t> ParseShardKeyCount(const HttpResponse& response) {
  return IntegerMember(
      ShardAnswer(response, "Key count of shard ID retrieved successfully", "shard-id-key-count"),
      "shard-id-key-count");
}

std::optional<double> GetMetric(const Endpoint& endpoint, std::string_view name,
                                milliseconds timeout) {
  const HttpResponse response = Send(endpoint, "GET", "/metrics", std::nullopt, timeout);
  if (response.status != 200) return std::nullopt;
  return MetricValue(response.body, name);
}

std::optional<Health> ParseHealth(const HttpResponse& response) {
  if (response.status != 200) return std::nullopt;
  const Poco::JSON::Object::Ptr object = http_test::ParseObject(response.body);
  if (object.isNull() || !object->has("ready")) return std::nullopt;
  const Poco::Dynamic::Var ready = object->get("ready");
  if (!ready.isBoolean()) return std::nullopt;
  Health health;
  health.ready = ready.extract<bool>();
  health.origin = StringMember(object, "origin").value_or("");
  health.keys = IntegerMember(object, "keys").value_or(0);
  health.shard = IntegerMember(object, "shard-id");
  return health;
}

std::optional<Health> GetHealth(const Endpoint& endpoint, milliseconds timeout) {
  return ParseHealth(Send(endpoint, "GET", "/health", std::nullopt, timeout));
}

std::string Join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : ",") + item;
  return out;
}

}  // namespace kvs::cluster_test
