// The contract's answer texts and paths that several HTTP suites compare against (SPEC.md),
// shared so that the suites can be built as one unity source (KVS_UNITY).
#ifndef KVS_TESTS_HTTP_CONTRACT_TEXT_H_
#define KVS_TESTS_HTTP_CONTRACT_TEXT_H_

#include <string>

#include "http_client.h"

namespace kvs::http_test {

// A single node's store (shard 0).
inline constexpr char kAdded[] = R"({"message":"Added successfully","shard-id":0})";
inline constexpr char kUpdated[] = R"({"message":"Updated successfully","shard-id":0})";
inline constexpr char kDeleted[] = R"({"message":"Deleted successfully","shard-id":0})";
// The default body limit (kvs.http.max_body_bytes) and its 413.
inline constexpr int kMaxBodyBytes = 4096;
inline constexpr char kTooLarge[] =
    R"({"error":"Request body too large","message":"Error in PUT"})";

inline std::string KeyPath(const std::string& key) { return "/key-value-store/" + key; }

inline std::string Retrieved(const std::string& value) {
  return R"({"message":"Retrieved successfully","value":)" + JsonQuote(value) + "}";
}

// {"error":<error>,"message":"Error in <method>"}
inline std::string ErrorJson(const std::string& error, const std::string& method) {
  return "{\"error\":" + JsonQuote(error) + ",\"message\":\"Error in " + method + "\"}";
}

}  // namespace kvs::http_test

#endif  // KVS_TESTS_HTTP_CONTRACT_TEXT_H_
