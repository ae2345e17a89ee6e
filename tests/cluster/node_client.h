// HTTP access to kvs nodes at any ip:port (the cluster harness's nodes live on their own
// addresses, which tests/http's loopback-only client cannot reach), plus typed helpers for the
// contract's answers (SPEC §2-§5). Every request opens a fresh connection and is bounded by a
// connect/send/receive timeout, so a request is never retried behind the caller's back (a
// retried PUT would turn 201 into 200).
// Thread-safe: the functions share no state.
#ifndef KVS_TESTS_CLUSTER_NODE_CLIENT_H_
#define KVS_TESTS_CLUSTER_NODE_CLIENT_H_

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "http_client.h"

namespace kvs::cluster_test {

using http_test::HttpResponse;

inline constexpr std::chrono::milliseconds kRequestTimeout{3000};

// Where a node listens.
struct Endpoint {
  std::string host;
  uint16_t port = 0;

  std::string ToString() const { return host + ":" + std::to_string(port); }
};

// One request on a fresh connection to `endpoint`. Never throws: transport failures (refused,
// unreachable, timed out) come back in HttpResponse::error with status 0.
HttpResponse Send(const Endpoint& endpoint, std::string_view method, std::string_view target,
                  const std::optional<std::string>& body = std::nullopt,
                  std::chrono::milliseconds timeout = kRequestTimeout);

// PUT /key-value-store/<key> {"value":value,"causal-metadata":metadata}. `key` must not need
// URL-encoding.
HttpResponse PutKey(const Endpoint& endpoint, std::string_view key, std::string_view value,
                    std::string_view metadata, std::chrono::milliseconds timeout = kRequestTimeout);

// GET /key-value-store/<key> with body {"causal-metadata":metadata}.
HttpResponse GetKey(const Endpoint& endpoint, std::string_view key, std::string_view metadata,
                    std::chrono::milliseconds timeout = kRequestTimeout);

// The "value" and "causal-metadata" of a 200 GET answer.
struct ReadResult {
  std::string value;
  std::string metadata;

  bool operator==(const ReadResult&) const = default;
};

// Parses a GET answer that must be exactly 200 {"message":"Retrieved successfully",
// "causal-metadata":string,"value":string}; nullopt otherwise.
std::optional<ReadResult> ParseRead(const HttpResponse& response);

// The node's view as a list of "ip:port" (split from the comma-joined string), or nullopt if
// the node did not answer 200 with a string "view".
std::optional<std::vector<std::string>> GetView(
    const Endpoint& endpoint, std::chrono::milliseconds timeout = kRequestTimeout);

// "shard-id-key-count" of GET /key-value-store-shard/shard-id-key-count/<shard>, or nullopt.
std::optional<int64_t> GetKeyCount(const Endpoint& endpoint, int shard,
                                   std::chrono::milliseconds timeout = kRequestTimeout);

// GET /key-value-store-shard/<what> (e.g. "shard-ids", "shard-id-members/1").
HttpResponse GetShardInfo(const Endpoint& endpoint, std::string_view what,
                          std::chrono::milliseconds timeout = kRequestTimeout);

// Strict parsers of the shard answers of SPEC §3: status 200, exactly the contract's members
// with the contract's message and member types; nullopt otherwise.
std::optional<std::vector<int64_t>> ParseShardIds(const HttpResponse& response);
std::optional<int64_t> ParseNodeShardId(const HttpResponse& response);
std::optional<std::vector<std::string>> ParseShardMembers(const HttpResponse& response);
std::optional<int64_t> ParseShardKeyCount(const HttpResponse& response);

// The value of Prometheus metric `name` in GET /metrics (summed over its label sets), or nullopt
// if the node did not answer or has no such metric.
std::optional<double> GetMetric(const Endpoint& endpoint, std::string_view name,
                                std::chrono::milliseconds timeout = kRequestTimeout);

// Same, from a /metrics body already fetched (tests/http's harness).
using http_test::MetricValue;

// What GET /health reports: {"status":"ok","address":...,"shard-id":int|null,"keys":int,
// "origin":string,"ready":bool}. `ready` is false while the node is still recovering its data
// (from its disk, then from its shard's peers); such a node answers 503 for its shard's keys.
struct Health {
  bool ready = false;
  std::string origin;  // This process's write origin ("address#incarnation"); new per start.
  int64_t keys = 0;
  std::optional<int64_t> shard;
};

// Parses a 200 /health answer with a boolean "ready" (the other members are read when present);
// nullopt otherwise.
std::optional<Health> ParseHealth(const HttpResponse& response);
std::optional<Health> GetHealth(const Endpoint& endpoint,
                                std::chrono::milliseconds timeout = kRequestTimeout);

// "a,b,c" for {a,b,c}.
std::string Join(const std::vector<std::string>& items);

}  // namespace kvs::cluster_test

#endif  // KVS_TESTS_CLUSTER_NODE_CLIENT_H_
