#include "kvs/replication/wire.h"

#include <gtest/gtest.h>

namespace kvs::replication {
namespace {

Update MakeUpdate(std::string key, std::string value, bool tomb) {
  Update u;
  u.key = std::move(key);
  u.entry.value = std::move(value);
  u.entry.tombstone = tomb;
  u.entry.version = store::Version{(uint64_t{1} << 60) + 3, "10.0.0.1:8080#17", 42};
  u.entry.meta = "0|10.0.0.1:8080#17=42";
  return u;
}

TEST(WireTest, BatchRoundTrip) {
  Update a = MakeUpdate("k \"1\"", "v\n\x01", false);
  Update b = MakeUpdate("k2", "", true);
  std::string error;
  auto batch = DecodeBatch(EncodeBatch("10.0.0.1:8080", {&a, &b}), error);
  ASSERT_TRUE(batch.has_value()) << error;
  EXPECT_EQ(batch->from, "10.0.0.1:8080");
  ASSERT_EQ(batch->updates.size(), 2u);
  EXPECT_EQ(batch->updates[0].key, a.key);
  EXPECT_EQ(batch->updates[0].entry.value, a.entry.value);
  EXPECT_EQ(batch->updates[0].entry.version.hlc, a.entry.version.hlc);
  EXPECT_EQ(batch->updates[0].entry.version.origin, a.entry.version.origin);
  EXPECT_EQ(batch->updates[0].entry.version.seq, 42u);
  EXPECT_EQ(batch->updates[0].entry.meta, a.entry.meta);
  EXPECT_TRUE(batch->updates[1].entry.tombstone);
}

TEST(WireTest, SyncRoundTrip) {
  std::string error;
  auto request = DecodeSyncRequest(EncodeSyncRequest({"a:1", {{"x#1", 5}, {"y#2", 9}}}), error);
  ASSERT_TRUE(request.has_value()) << error;
  EXPECT_EQ(request->vv.at("y#2"), 9u);
  auto reply = DecodeSyncReply(
      EncodeSyncReply({{{"x#1", 7}}, {MakeUpdate("k", "v", false)}, {}, {}, 0}), error);
  ASSERT_TRUE(reply.has_value()) << error;
  EXPECT_EQ(reply->vv.at("x#1"), 7u);
  ASSERT_EQ(reply->updates.size(), 1u);
}

TEST(WireTest, StreamedSyncRoundTrip) {
  std::string error;
  SyncRequest chunked{"a:1", {{"x#1", 5}}, true, 18446744073709551615ull, 4194304};
  auto request = DecodeSyncRequest(EncodeSyncRequest(chunked), error);
  ASSERT_TRUE(request.has_value()) << error;
  EXPECT_EQ(request->cursor, chunked.cursor);
  EXPECT_EQ(request->max_bytes, 4194304u);
  EXPECT_TRUE(request->full);
  // Absent (an older peer): 0, the whole answer at once.
  request = DecodeSyncRequest(R"({"from":"a:1","vv":{}})", error);
  ASSERT_TRUE(request.has_value()) << error;
  EXPECT_EQ(request->cursor, 0u);
  EXPECT_EQ(request->max_bytes, 0u);
  for (const char* bad :
       {R"({"from":"a","vv":{},"cursor":"-1"})",
        R"({"from":"a","vv":{},"cursor":"18446744073709551616"})",
        R"({"from":"a","vv":{},"cursor":" 1"})", R"({"from":"a","vv":{},"max_bytes":-5})",
        R"({"from":"a","vv":{},"range":{"shards":3,"shard":3}})",
        R"({"from":"a","vv":{},"range":{"shards":0,"shard":0}})",
        R"({"from":"a","vv":{},"range":{"shards":100000,"shard":1}})",
        R"({"from":"a","vv":{},"range":{"shards":3}})", R"({"from":"a","vv":{},"range":7})"}) {
    EXPECT_FALSE(DecodeSyncRequest(bad, error).has_value()) << bad;
  }
  // A reshard's staging pull names the range of the next layout it wants.
  SyncRequest ranged{"a:1", {}, true, 0, 4096, KeyRange{3, 2}};
  request = DecodeSyncRequest(EncodeSyncRequest(ranged), error);
  ASSERT_TRUE(request.has_value()) << error;
  ASSERT_TRUE(request->range.has_value());
  EXPECT_EQ(*request->range, (KeyRange{3, 2}));

  SyncReply chunk{{{"x#1", 7}}, {MakeUpdate("k", "v", false)}, 123456789012345ull, {}, 0};
  const std::string bytes = EncodeSyncReply(chunk);
  EXPECT_TRUE(bytes.starts_with("KVS2"));
  auto reply = DecodeSyncReply(bytes, error);
  ASSERT_TRUE(reply.has_value()) << error;
  EXPECT_EQ(reply->next_cursor, chunk.next_cursor);
  ASSERT_EQ(reply->updates.size(), 1u);
  // The last chunk (or a whole answer) is the KVS1 form older peers read.
  chunk.next_cursor.reset();
  EXPECT_TRUE(EncodeSyncReply(chunk).starts_with("KVS1"));
  reply = DecodeSyncReply(EncodeSyncReply(chunk), error);
  ASSERT_TRUE(reply.has_value()) << error;
  EXPECT_FALSE(reply->next_cursor.has_value());
  // Every cut of a chunk is refused.
  for (size_t cut = 0; cut < bytes.size(); ++cut) {
    EXPECT_FALSE(DecodeSyncReply(bytes.substr(0, cut), error).has_value()) << cut;
  }
}

TEST(WireTest, ConfigRoundTrip) {
  cluster::ClusterConfig config;
  config.epoch = 4;
  config.shards = {{{"10.0.0.1", 1}, {"10.0.0.2", 1}}, {{"10.0.0.3", 1}, {"10.0.0.4", 1}}};
  std::string error;
  auto decoded = DecodeConfig(EncodeConfig(config), error);
  ASSERT_TRUE(decoded.has_value()) << error;
  EXPECT_EQ(decoded->epoch, 4u);
  EXPECT_EQ(decoded->shards, config.shards);
}

TEST(WireTest, EveryTruncationOfABatchIsRejected) {
  Update a = MakeUpdate("key", "value with , and : inside", false);
  const std::string whole = EncodeBatch("10.0.0.1:8080", {&a, &a});
  std::string error;
  ASSERT_TRUE(DecodeBatch(whole, error).has_value()) << error;
  for (size_t n = 0; n < whole.size(); ++n) {
    EXPECT_FALSE(DecodeBatch(std::string_view(whole).substr(0, n), error).has_value()) << n;
  }
  EXPECT_FALSE(DecodeBatch(whole + "x", error).has_value());
}

// Caught by the allocation oracle of tests/fuzz/wire_fuzz: the update count sized a vector
// before any update was read and was bounded only by the message size, so N bytes could make
// the decoder allocate N * sizeof(Update) (~150 N) bytes.
TEST(WireTest, CountOfMoreUpdatesThanTheBytesCanHoldIsRejected) {
  const std::string padding(2000, 'x');  // room for 83 updates
  std::string error;
  EXPECT_FALSE(DecodeBatch(std::string("KVB1") + "1:a," + "3:100," + padding, error));
  EXPECT_EQ(error, "bad update count");
  EXPECT_FALSE(DecodeSyncReply(std::string("KVS1") + "0:," + "3:100," + padding, error));
  EXPECT_EQ(error, "bad update count");
  // The smallest updates (empty strings, one-digit numbers) are 24 bytes: a count that fits is
  // read as a count.
  const std::string smallest = "0:,0:,1:v,1:0,0:,1:0,0:,";
  ASSERT_EQ(smallest.size(), 24u);
  auto batch = DecodeBatch(std::string("KVB1") + "1:a," + "1:2," + smallest + smallest, error);
  ASSERT_TRUE(batch.has_value()) << error;
  EXPECT_EQ(batch->updates.size(), 2u);
  EXPECT_FALSE(DecodeBatch(std::string("KVB1") + "1:a," + "1:3," + smallest + smallest, error));
  EXPECT_EQ(error, "bad update count");
}

TEST(WireTest, GarbageIsAnErrorNotAnException) {
  std::string error;
  EXPECT_FALSE(DecodeBatch("{", error).has_value());
  EXPECT_FALSE(error.empty());
  EXPECT_FALSE(DecodeSyncReply(R"({"vv":{},"updates":[{"k":1}]})", error).has_value());
  EXPECT_FALSE(DecodeConfig(R"({"epoch":1,"shards":[["bad"]]})", error).has_value());
}

}  // namespace
}  // namespace kvs::replication
