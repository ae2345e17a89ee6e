// SPEC §4 causal-metadata handling on a single node: accepted forms, passing metadata along,
// deterministic echo on reads that learn nothing, and rejection of malformed metadata.
#include <string>

#include "contract_text.h"
#include "gtest/gtest.h"
#include "http_client.h"
#include "server_process.h"

namespace kvs::http_test {
namespace {

constexpr char kInvalidMetadata[] = "Invalid causal-metadata";

class CausalMetadataTest : public SharedServerTest<CausalMetadataTest> {};

TEST_F(CausalMetadataTest, AcceptsEmptyAbsentAndNullMetadata) {
  std::string metadata;
  EXPECT_TRUE(IsJsonWithMetadata(SendRequest(port(), "PUT", KeyPath("md-empty"), PutBody("a", "")),
                                 201, kAdded, &metadata));
  EXPECT_TRUE(IsJsonWithMetadata(
      SendRequest(port(), "PUT", KeyPath("md-absent"), PutBody("b", std::nullopt)), 201, kAdded,
      &metadata));
  EXPECT_TRUE(IsJsonWithMetadata(
      SendRequest(port(), "PUT", KeyPath("md-null"), R"({"value":"c","causal-metadata":null})"),
      201, kAdded, &metadata));

  EXPECT_TRUE(IsJsonWithMetadata(SendRequest(port(), "GET", KeyPath("md-empty"), MetadataBody("")),
                                 200, Retrieved("a"), &metadata));
  EXPECT_TRUE(IsJsonWithMetadata(SendRequest(port(), "GET", KeyPath("md-absent"), "{}"), 200,
                                 Retrieved("b"), &metadata));
  EXPECT_TRUE(IsJsonWithMetadata(
      SendRequest(port(), "GET", KeyPath("md-null"), R"({"causal-metadata":null})"), 200,
      Retrieved("c"), &metadata));
  EXPECT_TRUE(IsJsonWithMetadata(
      SendRequest(port(), "DELETE", KeyPath("md-null"), R"({"causal-metadata":null})"), 200,
      kDeleted, &metadata));
}

TEST_F(CausalMetadataTest, ReadThatLearnsNothingEchoesMetadataExactly) {
  std::string put_metadata;
  ASSERT_TRUE(IsJsonWithMetadata(SendRequest(port(), "PUT", KeyPath("echo"), PutBody("e")), 201,
                                 kAdded, &put_metadata));
  std::string read_metadata;
  EXPECT_TRUE(
      IsJsonWithMetadata(SendRequest(port(), "GET", KeyPath("echo"), MetadataBody(put_metadata)),
                         200, Retrieved("e"), &read_metadata));
  EXPECT_EQ(read_metadata, put_metadata);
  std::string second_read;
  EXPECT_TRUE(
      IsJsonWithMetadata(SendRequest(port(), "GET", KeyPath("echo"), MetadataBody(read_metadata)),
                         200, Retrieved("e"), &second_read));
  EXPECT_EQ(second_read, put_metadata);
}

TEST_F(CausalMetadataTest, MetadataPassedAlongPutGetPut) {
  std::string metadata;
  ASSERT_TRUE(IsJsonWithMetadata(SendRequest(port(), "PUT", KeyPath("chain-a"), PutBody("1", "")),
                                 201, kAdded, &metadata));
  ASSERT_TRUE(
      IsJsonWithMetadata(SendRequest(port(), "GET", KeyPath("chain-a"), MetadataBody(metadata)),
                         200, Retrieved("1"), &metadata));
  ASSERT_TRUE(
      IsJsonWithMetadata(SendRequest(port(), "PUT", KeyPath("chain-b"), PutBody("2", metadata)),
                         201, kAdded, &metadata));
  ASSERT_TRUE(
      IsJsonWithMetadata(SendRequest(port(), "PUT", KeyPath("chain-a"), PutBody("3", metadata)),
                         200, kUpdated, &metadata));
  EXPECT_TRUE(
      IsJsonWithMetadata(SendRequest(port(), "GET", KeyPath("chain-b"), MetadataBody(metadata)),
                         200, Retrieved("2"), &metadata));
  EXPECT_TRUE(
      IsJsonWithMetadata(SendRequest(port(), "GET", KeyPath("chain-a"), MetadataBody(metadata)),
                         200, Retrieved("3"), &metadata));
  EXPECT_TRUE(
      IsJsonWithMetadata(SendRequest(port(), "DELETE", KeyPath("chain-b"), MetadataBody(metadata)),
                         200, kDeleted, &metadata));
  EXPECT_TRUE(
      IsJson(SendRequest(port(), "GET", KeyPath("chain-b"), MetadataBody(metadata)), 404,
             R"({"doesExist":false,"error":"Key does not exist","message":"Error in GET"})"));
}

TEST_F(CausalMetadataTest, MalformedMetadataIsRejected) {
  std::string metadata;
  ASSERT_TRUE(IsJsonWithMetadata(SendRequest(port(), "PUT", KeyPath("bad-md"), PutBody("kept")),
                                 201, kAdded, &metadata));
  for (const std::string bad : {R"("garbage")", "5", "{}", R"({"a":1})"}) {
    SCOPED_TRACE("causal-metadata: " + bad);
    EXPECT_TRUE(IsError(SendRequest(port(), "PUT", KeyPath("bad-md"),
                                    R"({"value":"lost","causal-metadata":)" + bad + "}"),
                        400, "Error in PUT", kInvalidMetadata));
    EXPECT_TRUE(
        IsError(SendRequest(port(), "GET", KeyPath("bad-md"), R"({"causal-metadata":)" + bad + "}"),
                400, "Error in GET", kInvalidMetadata));
    EXPECT_TRUE(IsError(
        SendRequest(port(), "DELETE", KeyPath("bad-md"), R"({"causal-metadata":)" + bad + "}"), 400,
        "Error in DELETE", kInvalidMetadata));
  }
  // The rejected writes and deletes changed nothing.
  EXPECT_TRUE(IsJsonWithMetadata(SendRequest(port(), "GET", KeyPath("bad-md")), 200,
                                 Retrieved("kept"), &metadata));
}

}  // namespace
}  // namespace kvs::http_test
