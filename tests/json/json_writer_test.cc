#include "kvs/json/json_writer.h"

#include <Poco/JSON/Parser.h>
#include <gtest/gtest.h>

namespace kvs::json {
namespace {

TEST(JsonWriterTest, WritesFlatObject) {
  std::string out = JsonObject()
                        .Str("message", "ok")
                        .Int("n", -5)
                        .Bool("b", false)
                        .Null("z")
                        .IntArray("ids", {0, 1})
                        .StrArray("m", {"a", "b"})
                        .Finish();
  EXPECT_EQ(out, R"({"message":"ok","n":-5,"b":false,"z":null,"ids":[0,1],"m":["a","b"]})");
}

TEST(JsonWriterTest, EscapesSoPocoParsesBackTheSameString) {
  const std::string nasty = std::string("q\"b\\s/n\nt\tc\x01\x1f u\xc3\xa9", 18);
  std::string out = JsonObject().Str("v", nasty).Finish();
  Poco::JSON::Parser parser;
  auto object = parser.parse(out).extract<Poco::JSON::Object::Ptr>();
  EXPECT_EQ(object->getValue<std::string>("v"), nasty);
}

TEST(JsonWriterTest, EscapesExactlyAndCopiesPlainRuns) {
  std::string out;
  AppendJsonString(out, "");
  AppendJsonString(out, "plain text");
  AppendJsonString(out, std::string("\"start mid\\dle end\n\x02", 20));
  EXPECT_EQ(out, R"("""plain text""\"start mid\\dle end\n\u0002")");
}

TEST(JsonWriterTest, EmptyArrays) {
  EXPECT_EQ(JsonObject().IntArray("a", {}).StrArray("b", {}).Finish(), R"({"a":[],"b":[]})");
}

}  // namespace
}  // namespace kvs::json
