// Bad requests that are well-formed HTTP: invalid bodies, size limits, empty keys, unknown
// paths and wrong methods. Every answer must be contract JSON with the right status.
#include <string>

#include "contract_text.h"
#include "gtest/gtest.h"
#include "http_client.h"
#include "server_process.h"

namespace kvs::http_test {
namespace {

constexpr int kMaxValueBytes = 1024;

class BadInputTest : public SharedServerTest<BadInputTest> {
 public:
  static EnvList ExtraEnv() {
    return {{"KVS_LIMITS_MAX_BODY_BYTES", std::to_string(kMaxBodyBytes)},
            {"KVS_LIMITS_MAX_VALUE_BYTES", std::to_string(kMaxValueBytes)}};
  }
};

TEST_F(BadInputTest, BodyThatIsNotJsonIsRejected) {
  for (const std::string method : {"PUT", "GET", "DELETE"}) {
    for (const std::string body : {"not json", "{\"value\":", "{'value':'x'}"}) {
      SCOPED_TRACE(method + " " + body);
      EXPECT_TRUE(IsJson(SendRequest(port(), method, KeyPath("not-json"), body), 400,
                         ErrorJson("Body is not valid JSON", method)));
    }
  }
}

TEST_F(BadInputTest, EmptyBodyOnGetAndDeleteIsAccepted) {
  std::string metadata;
  ASSERT_TRUE(IsJsonWithMetadata(SendRequest(port(), "PUT", KeyPath("no-body"), PutBody("v")), 201,
                                 kAdded, &metadata));
  EXPECT_TRUE(IsJsonWithMetadata(SendRequest(port(), "GET", KeyPath("no-body"), ""), 200,
                                 R"({"message":"Retrieved successfully","value":"v"})", &metadata));
  EXPECT_TRUE(IsJsonWithMetadata(SendRequest(port(), "GET", KeyPath("no-body")), 200,
                                 R"({"message":"Retrieved successfully","value":"v"})", &metadata));
  EXPECT_TRUE(IsJsonWithMetadata(SendRequest(port(), "DELETE", KeyPath("no-body"), ""), 200,
                                 R"({"message":"Deleted successfully","shard-id":0})", &metadata));
}

TEST_F(BadInputTest, BodyThatIsNotAnObjectIsRejected) {
  for (const std::string body : {"[1]", R"("text")", "5", "null", "true"}) {
    SCOPED_TRACE(body);
    EXPECT_TRUE(IsJson(SendRequest(port(), "PUT", KeyPath("not-object"), body), 400,
                       ErrorJson("Body must be a JSON object", "PUT")));
  }
  EXPECT_TRUE(IsJson(SendRequest(port(), "GET", KeyPath("not-object"), "[1]"), 400,
                     ErrorJson("Body must be a JSON object", "GET")));
  EXPECT_TRUE(IsJson(SendRequest(port(), "DELETE", KeyPath("not-object"), "[1]"), 400,
                     ErrorJson("Body must be a JSON object", "DELETE")));
}

TEST_F(BadInputTest, ValueThatIsNotAStringIsRejected) {
  for (const std::string value : {"5", "1.5", R"({"a":"b"})", "null", "[\"x\"]", "true"}) {
    SCOPED_TRACE(value);
    EXPECT_TRUE(
        IsJson(SendRequest(port(), "PUT", KeyPath("not-string"), R"({"value":)" + value + "}"), 400,
               ErrorJson("Value must be a string", "PUT")));
  }
  EXPECT_TRUE(
      IsJson(SendRequest(port(), "GET", KeyPath("not-string")), 404,
             R"({"doesExist":false,"error":"Key does not exist","message":"Error in GET"})"));
}

TEST_F(BadInputTest, ValueAtTheLimitIsAccepted) {
  std::string metadata;
  EXPECT_TRUE(IsJsonWithMetadata(SendRequest(port(), "PUT", KeyPath("value-at-limit"),
                                             PutBody(std::string(kMaxValueBytes, 'v'))),
                                 201, kAdded, &metadata));
}

TEST_F(BadInputTest, ValueOverTheLimitIs413) {
  EXPECT_TRUE(IsJson(SendRequest(port(), "PUT", KeyPath("value-over-limit"),
                                 PutBody(std::string(kMaxValueBytes + 1, 'v'))),
                     413, kTooLarge));
}

TEST_F(BadInputTest, ValueLimitCountsBytesNotCharacters) {
  // 600 characters, 1200 bytes of UTF-8.
  std::string value;
  for (int i = 0; i < 600; ++i) value += "\xC3\xA9";
  EXPECT_TRUE(
      IsJson(SendRequest(port(), "PUT", KeyPath("value-bytes"), PutBody(value)), 413, kTooLarge));
}

TEST_F(BadInputTest, BodyOverTheLimitIs413) {
  // A small value padded with JSON whitespace past the body limit.
  const std::string body = R"({"value":"small")" + std::string(kMaxBodyBytes, ' ') + "}";
  EXPECT_TRUE(IsJson(SendRequest(port(), "PUT", KeyPath("body-over-limit"), body), 413, kTooLarge));
}

TEST_F(BadInputTest, EmptyKeyIsRejected) {
  for (const std::string method : {"PUT", "GET", "DELETE"}) {
    SCOPED_TRACE(method);
    const auto body = method == "PUT" ? std::optional<std::string>(PutBody("v")) : std::nullopt;
    EXPECT_TRUE(IsJson(SendRequest(port(), method, "/key-value-store/", body), 400,
                       ErrorJson("Key is missing", method)));
  }
}

TEST_F(BadInputTest, UnknownPathIs404) {
  struct Case {
    std::string method;
    std::string path;
  };
  for (const Case& c :
       {Case{"GET", "/nope"}, Case{"PUT", "/nope"}, Case{"DELETE", "/nope"},
        Case{"GET", "/index.html"}, Case{"GET", "/key-value-store-view/x"},
        Case{"GET", "/key-value-store-shard/nope"}, Case{"GET", "/key-value-stores/k"}}) {
    SCOPED_TRACE(c.method + " " + c.path);
    EXPECT_TRUE(
        IsJson(SendRequest(port(), c.method, c.path), 404, ErrorJson("Path not found", c.method)));
  }
}

TEST_F(BadInputTest, WrongMethodIs405WithAllowHeader) {
  struct Case {
    std::string method;
    std::string path;
    std::string allowed;  // One method that Allow must list.
  };
  for (const Case& c :
       {Case{"POST", "/key-value-store/k", "PUT"}, Case{"PATCH", "/key-value-store-view", "GET"},
        Case{"DELETE", "/health", "GET"},
        Case{"POST", "/key-value-store-shard/shard-ids", "GET"}}) {
    SCOPED_TRACE(c.method + " " + c.path);
    const HttpResponse r = SendRequest(port(), c.method, c.path, "{}");
    EXPECT_TRUE(IsJson(r, 405, ErrorJson("Method not allowed", c.method)));
    EXPECT_NE(r.Header("allow").find(c.allowed), std::string::npos)
        << "Allow header: \"" << r.Header("allow") << "\"";
  }
}

}  // namespace
}  // namespace kvs::http_test
