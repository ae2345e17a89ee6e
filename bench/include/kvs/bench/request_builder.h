// Builds the bytes of one HTTP/1.1 request per protocol (kvs, raw, etcd) into a reused buffer,
// and pulls the causal-metadata string out of a kvs answer without a JSON parser.
// RequestBuilder is immutable after construction: safe to share between threads.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "kvs/bench/options.h"

namespace kvs::bench {

class RequestBuilder {
 public:
  explicit RequestBuilder(const Options& options);

  // Replaces `out` with the request for `op` on key `key` to the server named by
  // `host_header` ("host:port"). With --causal=on, `metadata` (raw JSON string content, still
  // escaped) goes into the body.
  void Build(Op op, uint64_t key, std::string_view host_header, std::string_view metadata,
             std::string& out) const;

  // Whether the answer body of `op` is worth keeping (causal metadata, etcd range result).
  bool WantsBody(Op op) const;

  const std::string& value() const { return value_; }

 private:
  void BuildKvs(Op op, std::string_view key, std::string_view host_header,
                std::string_view metadata, std::string& out) const;
  void BuildEtcd(Op op, std::string_view key, std::string_view host_header, std::string& out) const;

  Protocol protocol_;
  bool causal_;
  std::string path_;
  std::string value_;         // value_size letters and digits: needs no JSON escaping
  std::string value_base64_;  // for etcd
};

enum class Outcome { kOk, kNotFound, kHttpError };

// How the protocol's rules judge an answer: kvs PUT 200/201, GET and DELETE 200 are ok and
// their 404 is "not found"; raw 2xx is ok; etcd 200 is ok, a range answer (`body`) without
// "kvs" is "not found". Anything else is an HTTP error.
Outcome Classify(Protocol protocol, Op op, int status, std::string_view body);

// Base64 (standard alphabet, padded) of `data`: written to `out`, which must hold
// 4 * ceil(size / 3) bytes (returns that length), or appended to a string.
size_t EncodeBase64(std::string_view data, char* out);
void AppendBase64(std::string_view data, std::string& out);

// The content of the JSON string member "causal-metadata" in `body`, still escaped exactly as
// it appears (so it can be sent back verbatim inside quotes). nullopt when absent or not a
// string. Scans for the member name and then to the closing unescaped quote: no JSON parsing.
std::optional<std::string_view> ExtractCausalMetadata(std::string_view body);

// The integer JSON member "shard-id" in `body` (kvs names the shard that holds the key in its
// PUT and DELETE answers). nullopt when absent, null, negative or not an integer. A scan, like
// ExtractCausalMetadata.
std::optional<int> ExtractShardId(std::string_view body);

}  // namespace kvs::bench
