#include "kvs/net/http_response_parser.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace kvs::net {
namespace {

using Result = ResponseParser::Result;

struct Parsed {
  Result result = Result::kNeedMore;
  size_t consumed = 0;  // in total
};

// Feeds `pieces` one after the other, stopping at the first non-kNeedMore result.
Parsed FeedPieces(ResponseParser& parser, const std::vector<std::string>& pieces) {
  Parsed parsed;
  for (const std::string& piece : pieces) {
    size_t consumed = 0;
    parsed.result = parser.Feed(piece, consumed);
    parsed.consumed += consumed;
    if (parsed.result != Result::kNeedMore) break;
  }
  return parsed;
}

// Every way of cutting `text` in two, plus one byte at a time, gives `expected`.
void ExpectSameForEverySplit(const std::string& text, Result expected, int status,
                             const std::string& body, bool keep_alive) {
  std::vector<std::vector<std::string>> cuts;
  for (size_t i = 0; i <= text.size(); ++i) cuts.push_back({text.substr(0, i), text.substr(i)});
  std::vector<std::string> bytes;
  for (char c : text) bytes.push_back(std::string(1, c));
  cuts.push_back(bytes);
  for (const auto& pieces : cuts) {
    ResponseParser parser;
    parser.Reset(/*capture_body=*/true);
    const Parsed parsed = FeedPieces(parser, pieces);
    ASSERT_EQ(parsed.result, expected) << "first piece " << pieces[0].size() << " bytes";
    if (expected != Result::kComplete) continue;
    EXPECT_EQ(parsed.consumed, text.size());
    EXPECT_EQ(parser.status(), status);
    EXPECT_EQ(parser.body(), body);
    EXPECT_EQ(parser.keep_alive(), keep_alive);
  }
}

TEST(ResponseParserTest, ContentLengthInAnySplit) {
  ExpectSameForEverySplit(
      "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\nhello world",
      Result::kComplete, 200, "hello world", true);
}

TEST(ResponseParserTest, NotFoundWithBodyKeepsTheConnection) {
  const std::string body =
      R"({"doesExist":false,"error":"Key does not exist","message":"Error in GET"})";
  ExpectSameForEverySplit("HTTP/1.1 404 Not Found\r\nContent-Length: " +
                              std::to_string(body.size()) + "\r\n\r\n" + body,
                          Result::kComplete, 404, body, true);
}

TEST(ResponseParserTest, ChunkedBodyWithExtensionsAndTrailers) {
  ExpectSameForEverySplit(
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5\r\nhello\r\n1;ext=1\r\n \r\nA\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\n",
      Result::kComplete, 200, "hello 0123456789", true);
}

TEST(ResponseParserTest, ChunkedOverridesContentLength) {
  ExpectSameForEverySplit(
      "HTTP/1.1 200 OK\r\nContent-Length: 99\r\nTransfer-Encoding: chunked\r\n\r\n"
      "2\r\nok\r\n0\r\n\r\n",
      Result::kComplete, 200, "ok", true);
}

TEST(ResponseParserTest, ConnectionCloseEndsKeepAlive) {
  ExpectSameForEverySplit("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
                          Result::kComplete, 200, "ok", false);
  ExpectSameForEverySplit(
      "HTTP/1.1 200 OK\r\nconnection: Keep-Alive, CLOSE\r\n"
      "content-length: 0\r\n\r\n",
      Result::kComplete, 200, "", false);
}

TEST(ResponseParserTest, Http10KeepsAliveOnlyWhenAsked) {
  ExpectSameForEverySplit("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", Result::kComplete, 200,
                          "ok", false);
  ExpectSameForEverySplit(
      "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok", Result::kComplete,
      200, "ok", true);
}

TEST(ResponseParserTest, BareLineFeedsAreAccepted) {
  ExpectSameForEverySplit("HTTP/1.1 201 Created\nContent-Length: 3\n\nabc", Result::kComplete, 201,
                          "abc", true);
}

TEST(ResponseParserTest, NoBodyStatusesAndInterimResponses) {
  ExpectSameForEverySplit("HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n", Result::kComplete,
                          204, "", true);
  ExpectSameForEverySplit(
      "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
      Result::kComplete, 200, "ok", true);
}

TEST(ResponseParserTest, BodyUntilCloseCompletesOnEof) {
  ResponseParser parser;
  parser.Reset(true);
  size_t consumed = 0;
  EXPECT_EQ(parser.Feed("HTTP/1.1 200 OK\r\n\r\npart one, ", consumed), Result::kNeedMore);
  EXPECT_EQ(parser.Feed("part two", consumed), Result::kNeedMore);
  EXPECT_EQ(parser.FinishOnEof(), Result::kComplete);
  EXPECT_EQ(parser.body(), "part one, part two");
  EXPECT_FALSE(parser.keep_alive());
}

TEST(ResponseParserTest, EofBeforeTheEndIsAnError) {
  ResponseParser parser;
  parser.Reset(false);
  EXPECT_FALSE(parser.started());
  EXPECT_EQ(parser.FinishOnEof(), Result::kError);

  parser.Reset(false);
  size_t consumed = 0;
  EXPECT_EQ(parser.Feed("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", consumed),
            Result::kNeedMore);
  EXPECT_TRUE(parser.started());
  EXPECT_EQ(parser.FinishOnEof(), Result::kError);
}

TEST(ResponseParserTest, StopsAtTheEndOfTheResponse) {
  ResponseParser parser;
  parser.Reset(false);
  size_t consumed = 0;
  const std::string first = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
  EXPECT_EQ(parser.Feed(first + "HTTP/1.1 200 OK\r\n", consumed), Result::kComplete);
  EXPECT_EQ(consumed, first.size());
  EXPECT_EQ(parser.body(), "");  // not captured
}

TEST(ResponseParserTest, ResetStartsAFreshResponse) {
  ResponseParser parser;
  size_t consumed = 0;
  for (int i = 0; i < 3; ++i) {
    parser.Reset(true);
    EXPECT_EQ(
        parser.Feed("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx", consumed),
        Result::kComplete);
    EXPECT_EQ(parser.body(), "x");
  }
}

TEST(ResponseParserTest, MalformedInputIsAnError) {
  for (const std::string text : {
           "HTTP/2 200 OK\r\n\r\n",
           "HTTP/1.1 2x0 OK\r\n\r\n",
           "garbage\r\n",
           "HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n",
           "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
           "HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
           "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
           "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n",
       }) {
    ResponseParser parser;
    parser.Reset(false);
    size_t consumed = 0;
    EXPECT_EQ(parser.Feed(text, consumed), Result::kError) << text;
    EXPECT_FALSE(parser.error().empty());
  }
}

TEST(ResponseParserTest, OverlongHeaderLineIsAnError) {
  ResponseParser parser;
  parser.Reset(false);
  size_t consumed = 0;
  ASSERT_EQ(parser.Feed("HTTP/1.1 200 OK\r\nX-Big: ", consumed), Result::kNeedMore);
  const std::string chunk(8192, 'a');
  Result result = Result::kNeedMore;
  for (int i = 0; i < 16 && result == Result::kNeedMore; ++i) result = parser.Feed(chunk, consumed);
  EXPECT_EQ(result, Result::kError);
}

}  // namespace
}  // namespace kvs::net
