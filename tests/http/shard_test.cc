// SPEC §3 shard rows that a single-node, single-shard store can answer.
#include <string>

#include "gtest/gtest.h"
#include "http_client.h"
#include "server_process.h"

namespace kvs::http_test {
namespace {

constexpr char kShardPath[] = "/key-value-store-shard";
constexpr char kNoSuchShardGet[] =
    R"({"error":"Shard ID does not exist","message":"Error in GET"})";
constexpr char kNoSuchShardPut[] =
    R"({"error":"Shard ID does not exist","message":"Error in PUT"})";

std::string ShardPath(const std::string& rest) { return std::string(kShardPath) + "/" + rest; }

class ShardTest : public SharedServerTest<ShardTest> {};

TEST_F(ShardTest, ShardIdsListsShardZero) {
  EXPECT_TRUE(IsJson(SendRequest(port(), "GET", ShardPath("shard-ids")), 200,
                     R"({"message":"Shard IDs retrieved successfully","shard-ids":[0]})"));
}

TEST_F(ShardTest, NodeShardIdIsZero) {
  EXPECT_TRUE(IsJson(SendRequest(port(), "GET", ShardPath("node-shard-id")), 200,
                     R"({"message":"Shard ID of the node retrieved successfully","shard-id":0})"));
}

TEST_F(ShardTest, MembersOfShardZeroIsThisNode) {
  EXPECT_TRUE(IsJson(SendRequest(port(), "GET", ShardPath("shard-id-members/0")), 200,
                     R"({"message":"Members of shard ID retrieved successfully",)"
                     R"("shard-id-members":[)" +
                         JsonQuote(address()) + "]}"));
}

TEST_F(ShardTest, UnknownShardIdIs404) {
  for (const std::string id : {"7", "1", "abc", "-1", "0abc"}) {
    SCOPED_TRACE("shard id " + id);
    EXPECT_TRUE(IsJson(SendRequest(port(), "GET", ShardPath("shard-id-members/" + id)), 404,
                       kNoSuchShardGet));
    EXPECT_TRUE(IsJson(SendRequest(port(), "GET", ShardPath("shard-id-key-count/" + id)), 404,
                       kNoSuchShardGet));
  }
}

TEST_F(ShardTest, ReshardWithoutEnoughNodesIsRefused) {
  for (const std::string count : {"1", "2"}) {
    SCOPED_TRACE("shard-count " + count);
    EXPECT_TRUE(IsJson(
        SendRequest(port(), "PUT", ShardPath("reshard"), R"({"shard-count":)" + count + "}"), 400,
        R"({"message":"Not enough nodes to provide fault-tolerance with the given shard count!"})"));
  }
  EXPECT_TRUE(IsJson(SendRequest(port(), "GET", ShardPath("shard-ids")), 200,
                     R"({"message":"Shard IDs retrieved successfully","shard-ids":[0]})"));
}

TEST_F(ShardTest, ReshardWithBadCountIsRejected) {
  for (const std::string& body :
       {std::string("{}"), std::string(R"({"shard-count":0})"),
        std::string(R"({"shard-count":-1})"), std::string(R"({"shard-count":"2"})"),
        std::string(R"({"shard-count":1.5})")}) {
    SCOPED_TRACE(body);
    EXPECT_TRUE(
        IsError(SendRequest(port(), "PUT", ShardPath("reshard"), body), 400, "Error in PUT", ""));
  }
}

TEST_F(ShardTest, AddMemberOfAddressNotInViewIs404) {
  EXPECT_TRUE(
      IsJson(SendRequest(port(), "PUT", ShardPath("add-member/0"), AddressBody("127.0.0.1:9")), 404,
             R"({"error":"Socket address does not exist in the view","message":"Error in PUT"})"));
}

TEST_F(ShardTest, AddMemberToUnknownShardIs404) {
  EXPECT_TRUE(IsJson(SendRequest(port(), "PUT", ShardPath("add-member/7"), AddressBody(address())),
                     404, kNoSuchShardPut));
}

TEST_F(ShardTest, AddMemberWithoutSocketAddressIsRejected) {
  EXPECT_TRUE(IsError(SendRequest(port(), "PUT", ShardPath("add-member/0"), "{}"), 400,
                      "Error in PUT", ""));
}

// Own server: nothing else writes keys while the count is watched.
class ShardKeyCountTest : public SharedServerTest<ShardKeyCountTest> {
 protected:
  // The live key count of shard 0, or -1 (after a failed expectation) if it is not readable.
  int KeyCount() {
    const HttpResponse r = SendRequest(port(), "GET", ShardPath("shard-id-key-count/0"));
    const auto body = ParseObject(r.body);
    if (r.status != 200 || body.isNull() || !body->has("shard-id-key-count")) {
      ADD_FAILURE() << "key count not readable: " << Describe(r);
      return -1;
    }
    const int count = body->getValue<int>("shard-id-key-count");
    EXPECT_TRUE(IsJson(r, 200,
                       R"({"message":"Key count of shard ID retrieved successfully",)"
                       R"("shard-id-key-count":)" +
                           std::to_string(count) + "}"));
    return count;
  }
};

TEST_F(ShardKeyCountTest, CountsLiveKeys) {
  const int initial = KeyCount();
  ASSERT_GE(initial, 0);
  std::string metadata;
  const auto put = [&](const std::string& key, int status) {
    const std::string expected = status == 201
                                     ? R"({"message":"Added successfully","shard-id":0})"
                                     : R"({"message":"Updated successfully","shard-id":0})";
    EXPECT_TRUE(IsJsonWithMetadata(
        SendRequest(port(), "PUT", "/key-value-store/" + key, PutBody("v", metadata)), status,
        expected, &metadata));
  };
  put("count-a", 201);
  EXPECT_EQ(KeyCount(), initial + 1);
  put("count-a", 200);
  EXPECT_EQ(KeyCount(), initial + 1);
  put("count-b", 201);
  EXPECT_EQ(KeyCount(), initial + 2);
  EXPECT_TRUE(IsJsonWithMetadata(
      SendRequest(port(), "DELETE", "/key-value-store/count-a", MetadataBody(metadata)), 200,
      R"({"message":"Deleted successfully","shard-id":0})", &metadata));
  EXPECT_EQ(KeyCount(), initial + 1);
  EXPECT_EQ(SendRequest(port(), "DELETE", "/key-value-store/count-a").status, 404);
  EXPECT_EQ(SendRequest(port(), "GET", "/key-value-store/count-missing").status, 404);
  EXPECT_EQ(KeyCount(), initial + 1);
  put("count-a", 201);
  EXPECT_EQ(KeyCount(), initial + 2);
}

}  // namespace
}  // namespace kvs::http_test
