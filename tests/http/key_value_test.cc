// SPEC §4 key-value rows and /health against a real single-node kvs-server.
#include <string>

#include "contract_text.h"
#include "gtest/gtest.h"
#include "http_client.h"
#include "server_process.h"

namespace kvs::http_test {
namespace {

constexpr char kGetMissing[] =
    R"({"doesExist":false,"error":"Key does not exist","message":"Error in GET"})";
constexpr char kDeleteMissing[] =
    R"({"doesExist":false,"error":"Key does not exist","message":"Error in DELETE"})";

class KeyValueTest : public SharedServerTest<KeyValueTest> {};

TEST_F(KeyValueTest, HealthReportsOk) {
  const HttpResponse r = SendRequest(port(), "GET", "/health");
  ASSERT_EQ(r.status, 200) << Describe(r);
  const auto body = ParseObject(r.body);
  ASSERT_FALSE(body.isNull()) << Describe(r);
  EXPECT_EQ(body->optValue<std::string>("status", ""), "ok") << Describe(r);
  EXPECT_EQ(r.Header("content-type").rfind("application/json", 0), 0u) << Describe(r);
}

TEST_F(KeyValueTest, PutNewKeyReturns201WithMetadataAndShardId) {
  std::string metadata;
  EXPECT_TRUE(IsJsonWithMetadata(SendRequest(port(), "PUT", KeyPath("put-new"), PutBody("v1")), 201,
                                 kAdded, &metadata));
}

TEST_F(KeyValueTest, PutExistingKeyReturns200Updated) {
  std::string metadata;
  ASSERT_TRUE(IsJsonWithMetadata(SendRequest(port(), "PUT", KeyPath("put-existing"), PutBody("v1")),
                                 201, kAdded, &metadata));
  EXPECT_TRUE(IsJsonWithMetadata(
      SendRequest(port(), "PUT", KeyPath("put-existing"), PutBody("v2", metadata)), 200, kUpdated,
      &metadata));
  EXPECT_TRUE(IsJsonWithMetadata(
      SendRequest(port(), "GET", KeyPath("put-existing"), MetadataBody(metadata)), 200,
      Retrieved("v2"), &metadata));
}

TEST_F(KeyValueTest, GetReturnsValueAndMetadata) {
  std::string metadata;
  ASSERT_TRUE(IsJsonWithMetadata(SendRequest(port(), "PUT", KeyPath("get-me"), PutBody("hello")),
                                 201, kAdded, &metadata));
  EXPECT_TRUE(IsJsonWithMetadata(SendRequest(port(), "GET", KeyPath("get-me")), 200,
                                 Retrieved("hello"), &metadata));
}

TEST_F(KeyValueTest, GetMissingKeyReturns404) {
  EXPECT_TRUE(IsJson(SendRequest(port(), "GET", KeyPath("never-written")), 404, kGetMissing));
}

TEST_F(KeyValueTest, DeleteThenGetIs404AndPutAddsAgain) {
  std::string metadata;
  ASSERT_TRUE(IsJsonWithMetadata(SendRequest(port(), "PUT", KeyPath("del-me"), PutBody("x")), 201,
                                 kAdded, &metadata));
  EXPECT_TRUE(
      IsJsonWithMetadata(SendRequest(port(), "DELETE", KeyPath("del-me"), MetadataBody(metadata)),
                         200, kDeleted, &metadata));
  EXPECT_TRUE(IsJson(SendRequest(port(), "GET", KeyPath("del-me"), MetadataBody(metadata)), 404,
                     kGetMissing));
  EXPECT_TRUE(IsJson(SendRequest(port(), "DELETE", KeyPath("del-me"), MetadataBody(metadata)), 404,
                     kDeleteMissing));
  EXPECT_TRUE(
      IsJsonWithMetadata(SendRequest(port(), "PUT", KeyPath("del-me"), PutBody("y", metadata)), 201,
                         kAdded, &metadata));
  EXPECT_TRUE(
      IsJsonWithMetadata(SendRequest(port(), "GET", KeyPath("del-me"), MetadataBody(metadata)), 200,
                         Retrieved("y"), &metadata));
}

TEST_F(KeyValueTest, DeleteMissingKeyReturns404) {
  EXPECT_TRUE(IsJson(SendRequest(port(), "DELETE", KeyPath("never-deleted")), 404, kDeleteMissing));
}

TEST_F(KeyValueTest, KeyOfFiftyCharactersIsAccepted) {
  const std::string key(50, 'k');
  std::string metadata;
  EXPECT_TRUE(IsJsonWithMetadata(SendRequest(port(), "PUT", KeyPath(key), PutBody("v")), 201,
                                 kAdded, &metadata));
  EXPECT_TRUE(
      IsJsonWithMetadata(SendRequest(port(), "GET", KeyPath(key)), 200, Retrieved("v"), &metadata));
}

TEST_F(KeyValueTest, KeyOfFiftyOneCharactersIsTooLong) {
  const std::string key(51, 'l');
  EXPECT_TRUE(IsJson(SendRequest(port(), "PUT", KeyPath(key), PutBody("v")), 400,
                     R"({"error":"Key is too long","message":"Error in PUT"})"));
}

TEST_F(KeyValueTest, PutWithoutValueIsRejected) {
  constexpr char kMissing[] = R"({"error":"Value is missing","message":"Error in PUT"})";
  EXPECT_TRUE(IsJson(SendRequest(port(), "PUT", KeyPath("no-value"), R"({"causal-metadata":""})"),
                     400, kMissing));
  EXPECT_TRUE(IsJson(SendRequest(port(), "PUT", KeyPath("no-value"), "{}"), 400, kMissing));
  EXPECT_TRUE(IsJson(SendRequest(port(), "GET", KeyPath("no-value")), 404, kGetMissing));
}

TEST_F(KeyValueTest, UrlEncodedKeyRoundTrips) {
  std::string metadata;
  ASSERT_TRUE(IsJsonWithMetadata(SendRequest(port(), "PUT", KeyPath("a%20b"), PutBody("spaced")),
                                 201, kAdded, &metadata));
  EXPECT_TRUE(IsJsonWithMetadata(SendRequest(port(), "GET", KeyPath("a%20b")), 200,
                                 Retrieved("spaced"), &metadata));
  EXPECT_TRUE(IsJsonWithMetadata(SendRequest(port(), "PUT", KeyPath("a%20b"), PutBody("again")),
                                 200, kUpdated, &metadata));
}

TEST_F(KeyValueTest, KeyLengthLimitCountsDecodedCharacters) {
  // 48 + 2 decoded spaces = 50 characters (54 on the wire).
  const std::string fifty = std::string(48, 'e') + "%20%20";
  // 49 + 2 decoded spaces = 51 characters.
  const std::string fifty_one = std::string(49, 'f') + "%20%20";
  std::string metadata;
  EXPECT_TRUE(IsJsonWithMetadata(SendRequest(port(), "PUT", KeyPath(fifty), PutBody("v")), 201,
                                 kAdded, &metadata));
  EXPECT_TRUE(IsJson(SendRequest(port(), "PUT", KeyPath(fifty_one), PutBody("v")), 400,
                     R"({"error":"Key is too long","message":"Error in PUT"})"));
}

TEST_F(KeyValueTest, ValueWithEscapesAndUnicodeRoundTrips) {
  const std::string value = "quote \" backslash \\ newline \n tab \t caf\xC3\xA9 \xE2\x9C\x93";
  std::string metadata;
  ASSERT_TRUE(IsJsonWithMetadata(SendRequest(port(), "PUT", KeyPath("escapes"), PutBody(value)),
                                 201, kAdded, &metadata));
  EXPECT_TRUE(IsJsonWithMetadata(SendRequest(port(), "GET", KeyPath("escapes")), 200,
                                 Retrieved(value), &metadata));
}

}  // namespace
}  // namespace kvs::http_test
