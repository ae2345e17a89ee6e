#include "kvs/api/request_body.h"

#include <gtest/gtest.h>

namespace kvs::api {
namespace {

using Field = RequestBody::Field;

std::string ErrorOf(std::string_view text) {
  auto parsed = RequestBody::Parse(text);
  return std::holds_alternative<std::string>(parsed) ? std::get<std::string>(parsed) : "";
}

RequestBody Parsed(std::string_view text) {
  auto parsed = RequestBody::Parse(text);
  EXPECT_TRUE(std::holds_alternative<RequestBody>(parsed)) << text;
  return std::holds_alternative<RequestBody>(parsed) ? std::get<RequestBody>(parsed)
                                                     : RequestBody();
}

TEST(RequestBodyTest, ReadsTopLevelMembersByKind) {
  RequestBody body =
      Parsed(R"( {"value":"v","n":-42,"f":1.5,"z":null,"o":{"a":[1,{"b":"c"}]},"t":true} )");
  std::string s;
  int64_t i = 0;
  EXPECT_EQ(body.GetString("value", s), Field::kString);
  EXPECT_EQ(s, "v");
  EXPECT_EQ(body.GetInteger("n", i), Field::kInteger);
  EXPECT_EQ(i, -42);
  EXPECT_EQ(body.GetInteger("f", i), Field::kOther);
  EXPECT_EQ(body.GetString("z", s), Field::kNull);
  EXPECT_EQ(body.GetString("o", s), Field::kOther);
  EXPECT_EQ(body.GetString("t", s), Field::kOther);
  EXPECT_EQ(body.GetString("absent", s), Field::kMissing);
}

TEST(RequestBodyTest, DecodesEscapes) {
  RequestBody body = Parsed(R"({"v":"q\"b\\s\/n\nt\tr\rb\bf\f\u00e9\u20ac\ud83d\ude00"})");
  std::string s;
  ASSERT_EQ(body.GetString("v", s), Field::kString);
  EXPECT_EQ(s, "q\"b\\s/n\nt\tr\rb\bf\f\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
}

TEST(RequestBodyTest, PlainRunsAroundEscapesAndRawControlCharacters) {
  RequestBody body = Parsed(R"({"v":"plain start \n middle \" end","w":"only plain"})");
  std::string s;
  ASSERT_EQ(body.GetString("v", s), Field::kString);
  EXPECT_EQ(s, "plain start \n middle \" end");
  ASSERT_EQ(body.GetString("w", s), Field::kString);
  EXPECT_EQ(s, "only plain");
  EXPECT_EQ(ErrorOf("{\"v\":\"tab\there\"}"), "Body is not valid JSON");  // raw tab
  EXPECT_EQ(ErrorOf("{\"v\":\"unterminated"), "Body is not valid JSON");
  EXPECT_EQ(ErrorOf("{\"v\":\"ends in backslash\\"), "Body is not valid JSON");
}

TEST(RequestBodyTest, EmptyBodyHasNoMembers) {
  std::string s;
  EXPECT_EQ(Parsed("").GetString("value", s), Field::kMissing);
  EXPECT_EQ(Parsed(" \n\t").GetString("value", s), Field::kMissing);
  EXPECT_EQ(Parsed("{}").GetString("value", s), Field::kMissing);
}

TEST(RequestBodyTest, LastOfRepeatedNamesWins) {
  std::string s;
  EXPECT_EQ(Parsed(R"({"v":"a","v":"b"})").GetString("v", s), Field::kString);
  EXPECT_EQ(s, "b");
}

TEST(RequestBodyTest, ValidJsonThatIsNoObject) {
  for (const char* text : {"[1]", "\"text\"", "5", "null", "true", " [ ] "}) {
    EXPECT_EQ(ErrorOf(text), "Body must be a JSON object") << text;
  }
}

TEST(RequestBodyTest, InvalidJson) {
  for (const char* text : {"{",
                           "}",
                           "{\"a\"}",
                           "{\"a\":}",
                           "{\"a\":1,}",
                           "{\"a\":1} x",
                           "{a:1}",
                           "{\"a\":01}",
                           "{\"a\":-}",
                           "{\"a\":1.}",
                           "{\"a\":1e}",
                           "{\"a\":tru}",
                           "{\"a\":\"x}",
                           "{\"a\":\"\\x\"}",
                           "{\"a\":\"\\u12\"}",
                           "{\"a\":\"\\ud800\"}",
                           "{\"a\":\"\\udc00\"}",
                           "{\"a\":[1,]}",
                           "{\"a\":\"tab\there\"}",
                           "nope",
                           "[1",
                           "{\"a\":{\"b\":}}"}) {
    EXPECT_EQ(ErrorOf(text), "Body is not valid JSON") << text;
  }
}

TEST(RequestBodyTest, DeepNestingIsRefusedNotACrash) {
  std::string deep = "{\"a\":" + std::string(100000, '[') + std::string(100000, ']') + "}";
  EXPECT_EQ(ErrorOf(deep), "Body is not valid JSON");
}

}  // namespace
}  // namespace kvs::api
