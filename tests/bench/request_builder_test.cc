#include "kvs/bench/request_builder.h"

#include <gtest/gtest.h>

#include <cctype>
#include <string>

namespace kvs::bench {
namespace {

Options MakeOptions(Protocol protocol, bool causal, size_t value_size = 4) {
  Options options;
  options.protocol = protocol;
  options.causal = causal;
  options.value_size = value_size;
  return options;
}

TEST(RequestBuilderTest, KvsWithoutCausalMetadata) {
  const RequestBuilder builder(MakeOptions(Protocol::kKvs, false));
  const std::string& v = builder.value();
  ASSERT_EQ(v.size(), 4u);
  std::string out;
  builder.Build(Op::kPut, 42, "h:1", "", out);
  EXPECT_EQ(out,
            "PUT /key-value-store/key42 HTTP/1.1\r\nHost: h:1\r\n"
            "Content-Type: application/json\r\nContent-Length: 16\r\n\r\n{\"value\":\"" +
                v + "\"}");
  builder.Build(Op::kGet, 7, "h:1", "ignored", out);
  EXPECT_EQ(out, "GET /key-value-store/key7 HTTP/1.1\r\nHost: h:1\r\n\r\n");
  builder.Build(Op::kDelete, 0, "h:1", "", out);
  EXPECT_EQ(out, "DELETE /key-value-store/key0 HTTP/1.1\r\nHost: h:1\r\n\r\n");
  EXPECT_FALSE(builder.WantsBody(Op::kGet));
}

TEST(RequestBuilderTest, KvsWithCausalMetadataInTheBody) {
  const RequestBuilder builder(MakeOptions(Protocol::kKvs, true));
  const std::string& v = builder.value();
  std::string out;
  builder.Build(Op::kGet, 3, "h:1", R"(m\"1)", out);
  const std::string get_body = R"({"causal-metadata":"m\"1"})";
  EXPECT_EQ(out,
            "GET /key-value-store/key3 HTTP/1.1\r\nHost: h:1\r\n"
            "Content-Type: application/json\r\nContent-Length: " +
                std::to_string(get_body.size()) + "\r\n\r\n" + get_body);
  EXPECT_EQ(get_body.size(), 26u);
  builder.Build(Op::kPut, 3, "h:1", "", out);
  EXPECT_EQ(out,
            "PUT /key-value-store/key3 HTTP/1.1\r\nHost: h:1\r\n"
            "Content-Type: application/json\r\nContent-Length: 37\r\n\r\n"
            R"({"value":")" +
                v + R"(","causal-metadata":""})");
  builder.Build(Op::kDelete, 3, "h:1", "x", out);
  EXPECT_NE(out.find("\r\n\r\n{\"causal-metadata\":\"x\"}"), std::string::npos);
  EXPECT_TRUE(builder.WantsBody(Op::kPut));
}

TEST(RequestBuilderTest, ValueIsPlainTextOfTheRequestedSize) {
  const RequestBuilder builder(MakeOptions(Protocol::kKvs, false, 1000));
  ASSERT_EQ(builder.value().size(), 1000u);
  for (char c : builder.value()) EXPECT_TRUE(std::isalnum(static_cast<unsigned char>(c)));
}

TEST(RequestBuilderTest, RawAlwaysGetsThePath) {
  Options options = MakeOptions(Protocol::kRaw, false);
  options.path = "/index.html";
  const RequestBuilder builder(options);
  std::string out;
  builder.Build(Op::kPut, 5, "h:80", "", out);
  EXPECT_EQ(out, "GET /index.html HTTP/1.1\r\nHost: h:80\r\n\r\n");
}

TEST(RequestBuilderTest, EtcdJsonGateway) {
  const RequestBuilder builder(MakeOptions(Protocol::kEtcd, false, 3));
  std::string value64;
  AppendBase64(builder.value(), value64);
  std::string out;
  builder.Build(Op::kPut, 1, "h:2379", "", out);  // "key1" -> a2V5MQ==
  const std::string put_body = R"({"key":"a2V5MQ==","value":")" + value64 + "\"}";
  EXPECT_EQ(out,
            "POST /v3/kv/put HTTP/1.1\r\nHost: h:2379\r\nContent-Type: application/json\r\n"
            "Content-Length: " +
                std::to_string(put_body.size()) + "\r\n\r\n" + put_body);
  builder.Build(Op::kGet, 1, "h:2379", "", out);
  EXPECT_TRUE(out.starts_with("POST /v3/kv/range HTTP/1.1\r\n"));
  EXPECT_TRUE(out.ends_with("\r\n\r\n{\"key\":\"a2V5MQ==\"}"));
  builder.Build(Op::kDelete, 1, "h:2379", "", out);
  EXPECT_TRUE(out.starts_with("POST /v3/kv/deleterange HTTP/1.1\r\n"));
  EXPECT_TRUE(builder.WantsBody(Op::kGet));
  EXPECT_FALSE(builder.WantsBody(Op::kPut));
}

TEST(Base64Test, Rfc4648Vectors) {
  const std::pair<std::string, std::string> vectors[] = {{"", ""},
                                                         {"f", "Zg=="},
                                                         {"fo", "Zm8="},
                                                         {"foo", "Zm9v"},
                                                         {"foob", "Zm9vYg=="},
                                                         {"fooba", "Zm9vYmE="},
                                                         {"foobar", "Zm9vYmFy"},
                                                         {"\xff\xfe", "//4="}};
  for (const auto& [in, expected] : vectors) {
    std::string out = "prefix";
    AppendBase64(in, out);
    EXPECT_EQ(out, "prefix" + expected);
  }
}

TEST(CausalMetadataTest, ExtractsTheRawStringContent) {
  EXPECT_EQ(ExtractCausalMetadata(
                R"({"message":"Added successfully","causal-metadata":"0|n#1.0=1","shard-id":0})"),
            "0|n#1.0=1");
  EXPECT_EQ(ExtractCausalMetadata(R"({"causal-metadata":""})"), "");
  EXPECT_EQ(ExtractCausalMetadata(R"({"causal-metadata" :  "spaced"})"), "spaced");
}

TEST(CausalMetadataTest, EscapedQuotesDoNotEndTheString) {
  EXPECT_EQ(ExtractCausalMetadata(R"({"causal-metadata":"a\"b\"c","value":"v"})"), R"(a\"b\"c)");
  // An escaped backslash right before the quote: the quote ends the string.
  EXPECT_EQ(ExtractCausalMetadata(R"({"causal-metadata":"a\\","value":"\""})"), R"(a\\)");
  EXPECT_EQ(ExtractCausalMetadata(R"({"causal-metadata":"\\\"q\\"})"), R"(\\\"q\\)");
}

TEST(CausalMetadataTest, AbsentNullOrBrokenGivesNothing) {
  EXPECT_FALSE(ExtractCausalMetadata(R"({"doesExist":false,"error":"Key does not exist"})"));
  EXPECT_FALSE(ExtractCausalMetadata(R"({"causal-metadata":null})"));
  EXPECT_FALSE(ExtractCausalMetadata(R"({"causal-metadata":"unterminated\"})"));
  EXPECT_FALSE(ExtractCausalMetadata(R"({"causal-metadata")"));
  EXPECT_FALSE(ExtractCausalMetadata(""));
}

TEST(ShardIdTest, ReadsTheIntegerMember) {
  EXPECT_EQ(
      ExtractShardId(R"({"message":"Added successfully","causal-metadata":"x","shard-id":1})"), 1);
  EXPECT_EQ(ExtractShardId(R"({"shard-id" : 12, "message":"ok"})"), 12);
  EXPECT_EQ(ExtractShardId(R"({"shard-id":0})"), 0);
}

TEST(ShardIdTest, AbsentNullOrNotAnIdGivesNothing) {
  EXPECT_EQ(ExtractShardId(R"({"message":"ok"})"), std::nullopt);
  EXPECT_EQ(ExtractShardId(R"({"shard-id":null})"), std::nullopt);
  EXPECT_EQ(ExtractShardId(R"({"shard-id":"1"})"), std::nullopt);
  EXPECT_EQ(ExtractShardId(R"({"shard-id":-1})"), std::nullopt);
  EXPECT_EQ(ExtractShardId(R"({"shard-id":1.5})"), std::nullopt);
  EXPECT_EQ(ExtractShardId(R"({"shard-id":)"), std::nullopt);
  EXPECT_EQ(ExtractShardId(""), std::nullopt);
}

TEST(ClassifyTest, ProtocolRules) {
  EXPECT_EQ(Classify(Protocol::kKvs, Op::kPut, 201, ""), Outcome::kOk);
  EXPECT_EQ(Classify(Protocol::kKvs, Op::kPut, 200, ""), Outcome::kOk);
  EXPECT_EQ(Classify(Protocol::kKvs, Op::kPut, 404, ""), Outcome::kHttpError);
  EXPECT_EQ(Classify(Protocol::kKvs, Op::kGet, 200, ""), Outcome::kOk);
  EXPECT_EQ(Classify(Protocol::kKvs, Op::kGet, 201, ""), Outcome::kHttpError);
  EXPECT_EQ(Classify(Protocol::kKvs, Op::kGet, 404, ""), Outcome::kNotFound);
  EXPECT_EQ(Classify(Protocol::kKvs, Op::kDelete, 404, ""), Outcome::kNotFound);
  EXPECT_EQ(Classify(Protocol::kKvs, Op::kGet, 503, ""), Outcome::kHttpError);
  EXPECT_EQ(Classify(Protocol::kRaw, Op::kGet, 204, ""), Outcome::kOk);
  EXPECT_EQ(Classify(Protocol::kRaw, Op::kGet, 301, ""), Outcome::kHttpError);
  EXPECT_EQ(Classify(Protocol::kEtcd, Op::kPut, 200, ""), Outcome::kOk);
  EXPECT_EQ(Classify(Protocol::kEtcd, Op::kGet, 200, R"({"header":{},"kvs":[{}],"count":"1"})"),
            Outcome::kOk);
  EXPECT_EQ(Classify(Protocol::kEtcd, Op::kGet, 200, R"({"header":{}})"), Outcome::kNotFound);
  EXPECT_EQ(Classify(Protocol::kEtcd, Op::kDelete, 400, ""), Outcome::kHttpError);
}

}  // namespace
}  // namespace kvs::bench
