// Requests written byte by byte on a raw socket: declared sizes the client never sends,
// chunked bodies, garbage instead of HTTP. The server must answer promptly (or close on
// garbage) and keep serving.
#include <chrono>
#include <string>
#include <vector>

#include "Poco/Exception.h"
#include "Poco/Net/NetException.h"
#include "Poco/Net/SocketAddress.h"
#include "Poco/Net/StreamSocket.h"
#include "contract_text.h"
#include "gtest/gtest.h"
#include "http_client.h"
#include "server_process.h"

namespace kvs::http_test {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

// How long a prompt answer (or close) may take.
constexpr milliseconds kPromptly{3000};

std::string RequestHead(const std::string& method, const std::string& target,
                        const std::string& extra_headers) {
  return method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" + extra_headers + "\r\n";
}

std::string Chunked(const std::string& body, size_t chunk_size) {
  std::string out;
  char size_line[32];
  for (size_t pos = 0; pos < body.size(); pos += chunk_size) {
    const std::string chunk = body.substr(pos, chunk_size);
    std::snprintf(size_line, sizeof(size_line), "%zx\r\n", chunk.size());
    out += size_line + chunk + "\r\n";
  }
  return out + "0\r\n\r\n";
}

class RawHttpTest : public SharedServerTest<RawHttpTest> {
 public:
  static EnvList ExtraEnv() {
    return {{"KVS_LIMITS_MAX_BODY_BYTES", std::to_string(kMaxBodyBytes)},
            {"KVS_LIMITS_MAX_VALUE_BYTES", "1024"}};
  }

 protected:
  void ExpectStillServing() {
    const HttpResponse r = SendRequest(port(), "GET", "/health");
    EXPECT_EQ(r.status, 200) << "server stopped serving: " << Describe(r);
  }
};

TEST_F(RawHttpTest, HugeDeclaredContentLengthGets413Promptly) {
  const auto start = steady_clock::now();
  const HttpResponse r = RawExchange(
      port(), RequestHead("PUT", "/key-value-store/huge",
                          "Content-Type: application/json\r\nContent-Length: 10000000000\r\n"));
  const auto elapsed = std::chrono::duration_cast<milliseconds>(steady_clock::now() - start);
  EXPECT_TRUE(IsJson(r, 413, kTooLarge));
  EXPECT_LT(elapsed.count(), 4000) << "the 413 took " << elapsed.count() << " ms";
  ExpectStillServing();
}

TEST_F(RawHttpTest, ContentLengthJustOverLimitGets413) {
  const std::string body = R"({"value":"x")" + std::string(kMaxBodyBytes, ' ') + "}";
  const HttpResponse r =
      RawExchange(port(), RequestHead("PUT", "/key-value-store/over",
                                      "Content-Type: application/json\r\nContent-Length: " +
                                          std::to_string(body.size()) + "\r\n") +
                              body);
  EXPECT_TRUE(IsJson(r, 413, kTooLarge));
  ExpectStillServing();
}

TEST_F(RawHttpTest, ChunkedBodyOverLimitGets413) {
  const std::string body = R"({"value":"x")" + std::string(kMaxBodyBytes + 500, ' ') + "}";
  const HttpResponse r = RawExchange(
      port(), RequestHead("PUT", "/key-value-store/chunked-over",
                          "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n") +
                  Chunked(body, 1000));
  EXPECT_TRUE(IsJson(r, 413, kTooLarge));
  ExpectStillServing();
  EXPECT_TRUE(
      IsJson(SendRequest(port(), "GET", "/key-value-store/chunked-over"), 404,
             R"({"doesExist":false,"error":"Key does not exist","message":"Error in GET"})"));
}

TEST_F(RawHttpTest, ChunkedBodyWithinLimitIsAccepted) {
  const HttpResponse r = RawExchange(
      port(), RequestHead("PUT", "/key-value-store/chunked-ok",
                          "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n") +
                  Chunked(PutBody("chunky"), 7));
  std::string metadata;
  EXPECT_TRUE(
      IsJsonWithMetadata(r, 201, R"({"message":"Added successfully","shard-id":0})", &metadata));
  EXPECT_TRUE(IsJsonWithMetadata(SendRequest(port(), "GET", "/key-value-store/chunked-ok"), 200,
                                 R"({"message":"Retrieved successfully","value":"chunky"})",
                                 &metadata));
}

TEST_F(RawHttpTest, GetWithBodyOnRawSocketIsServed) {
  std::string metadata;
  ASSERT_TRUE(
      IsJsonWithMetadata(SendRequest(port(), "PUT", "/key-value-store/raw-get", PutBody("r")), 201,
                         R"({"message":"Added successfully","shard-id":0})", &metadata));
  const std::string body = MetadataBody(metadata);
  const HttpResponse r =
      RawExchange(port(), RequestHead("GET", "/key-value-store/raw-get",
                                      "Content-Length: " + std::to_string(body.size()) + "\r\n") +
                              body);
  std::string read_metadata;
  EXPECT_TRUE(IsJsonWithMetadata(r, 200, R"({"message":"Retrieved successfully","value":"r"})",
                                 &read_metadata));
  EXPECT_EQ(read_metadata, metadata);
}

TEST_F(RawHttpTest, GarbageInsteadOfRequestLineGets400OrClose) {
  for (const std::string& garbage :
       {std::string("\x01\x02\x03\xff garbage \x7f\r\n\r\n"), std::string("HELLO\r\n\r\n"),
        std::string("GET\r\n\r\n"), std::string(9000, 'A') + "\r\n\r\n"}) {
    SCOPED_TRACE(::testing::PrintToString(garbage.substr(0, 24)));
    const HttpResponse r = RawExchange(port(), garbage, kPromptly);
    EXPECT_FALSE(r.timed_out) << "neither answered nor closed: " << Describe(r);
    EXPECT_TRUE(r.status == 0 || r.status == 400) << Describe(r);
    ExpectStillServing();
  }
}

// Without Content-Length or Transfer-Encoding a request has no body (RFC 9112 §6.3); the
// server must not wait for one.
TEST_F(RawHttpTest, RequestWithoutBodyFramingIsAnsweredPromptly) {
  const HttpResponse put =
      RawExchange(port(), RequestHead("PUT", "/key-value-store/unframed", ""), kPromptly);
  EXPECT_TRUE(IsError(put, 400, "Error in PUT", ""));
  const HttpResponse post =
      RawExchange(port(), RequestHead("POST", "/key-value-store/unframed", ""), kPromptly);
  EXPECT_TRUE(IsError(post, 405, "Error in POST", "Method not allowed"));
  ExpectStillServing();
}

TEST_F(RawHttpTest, ClientVanishingMidBodyDoesNotHurtServer) {
  {
    Poco::Net::StreamSocket socket = ConnectRaw(port());
    const std::string partial =
        RequestHead("PUT", "/key-value-store/vanish", "Content-Length: 100\r\n") + "{\"value\":";
    socket.sendBytes(partial.data(), static_cast<int>(partial.size()));
    socket.close();
  }
  {
    Poco::Net::StreamSocket socket = ConnectRaw(port());
    const std::string partial = "PUT /key-value-store/vanish HTTP/1.1\r\nHost: 12";
    socket.sendBytes(partial.data(), static_cast<int>(partial.size()));
    socket.close();
  }
  ExpectStillServing();
  EXPECT_TRUE(
      IsJson(SendRequest(port(), "GET", "/key-value-store/vanish"), 404,
             R"({"doesExist":false,"error":"Key does not exist","message":"Error in GET"})"));
}

// Reads from `socket` until `count` complete responses (framed by Content-Length) arrived or
// `timeout` passed; returns them in order, each as "<status> <body>".
std::vector<std::string> ReadResponses(Poco::Net::StreamSocket& socket, size_t count,
                                       milliseconds timeout) {
  std::vector<std::string> out;
  std::string data;
  const auto deadline = steady_clock::now() + timeout;
  socket.setReceiveTimeout(Poco::Timespan(0, 200 * 1000));
  while (out.size() < count && steady_clock::now() < deadline) {
    const size_t head_end = data.find("\r\n\r\n");
    if (head_end != std::string::npos) {
      const std::string head = data.substr(0, head_end);
      const size_t length_at = head.find("Content-Length: ");
      const size_t length =
          length_at == std::string::npos ? 0 : std::stoul(head.substr(length_at + 16));
      if (data.size() >= head_end + 4 + length) {
        out.push_back(head.substr(9, 3) + " " + data.substr(head_end + 4, length));
        data.erase(0, head_end + 4 + length);
        continue;
      }
    }
    char buffer[4096];
    try {
      const int n = socket.receiveBytes(buffer, sizeof buffer);
      if (n <= 0) break;
      data.append(buffer, static_cast<size_t>(n));
    } catch (const Poco::TimeoutException&) {
    }
  }
  return out;
}

// Several requests written at once (pipelining): each is answered, in order, on the same
// connection, including one the server answers from another thread (the view).
TEST_F(RawHttpTest, PipelinedRequestsAreAnsweredInOrder) {
  const std::string put_body = PutBody("p1");
  const std::string requests = RequestHead("PUT", "/key-value-store/pipelined",
                                           "Content-Type: application/json\r\nContent-Length: " +
                                               std::to_string(put_body.size()) + "\r\n") +
                               put_body + RequestHead("GET", "/key-value-store-view", "") +
                               RequestHead("GET", "/key-value-store/pipelined", "") +
                               RequestHead("DELETE", "/key-value-store/pipelined", "") +
                               RequestHead("GET", "/key-value-store/pipelined", "");
  Poco::Net::StreamSocket socket = ConnectRaw(port());
  socket.sendBytes(requests.data(), static_cast<int>(requests.size()));
  const std::vector<std::string> answers = ReadResponses(socket, 5, kPromptly);
  ASSERT_EQ(answers.size(), 5u) << ::testing::PrintToString(answers);
  EXPECT_TRUE(answers[0].starts_with("201 ")) << answers[0];
  EXPECT_TRUE(answers[1].starts_with("200 ")) << answers[1];
  EXPECT_NE(answers[1].find("\"view\""), std::string::npos) << answers[1];
  EXPECT_TRUE(answers[2].starts_with("200 ")) << answers[2];
  EXPECT_NE(answers[2].find("\"value\":\"p1\""), std::string::npos) << answers[2];
  EXPECT_TRUE(answers[3].starts_with("200 ")) << answers[3];
  EXPECT_TRUE(answers[4].starts_with("404 ")) << answers[4];
}

// A client that asks "Expect: 100-continue" waits for the interim answer before the body.
TEST_F(RawHttpTest, ExpectContinueGetsInterimAnswerBeforeTheBody) {
  const std::string body = PutBody("continued");
  Poco::Net::StreamSocket socket = ConnectRaw(port());
  const std::string head =
      RequestHead("PUT", "/key-value-store/continued",
                  "Content-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: " +
                      std::to_string(body.size()) + "\r\n");
  socket.sendBytes(head.data(), static_cast<int>(head.size()));
  // The interim answer has no body: it reads as a response of length 0.
  const std::vector<std::string> interim = ReadResponses(socket, 1, kPromptly);
  ASSERT_EQ(interim.size(), 1u) << "no interim answer before the body was sent";
  EXPECT_TRUE(interim[0].starts_with("100 ")) << interim[0];
  socket.sendBytes(body.data(), static_cast<int>(body.size()));
  const std::vector<std::string> answers = ReadResponses(socket, 1, kPromptly);
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_TRUE(answers[0].starts_with("201 ")) << answers[0];
}

// HTTP/1.0 without keep-alive: answered, then the server closes the connection.
TEST_F(RawHttpTest, Http10RequestIsAnsweredThenClosed) {
  Poco::Net::StreamSocket socket = ConnectRaw(port());
  const std::string request = "GET /health HTTP/1.0\r\n\r\n";
  socket.sendBytes(request.data(), static_cast<int>(request.size()));
  const std::vector<std::string> answers = ReadResponses(socket, 1, kPromptly);
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_TRUE(answers[0].starts_with("200 ")) << answers[0];
  // Closed: the next read ends the stream instead of timing out.
  socket.setReceiveTimeout(Poco::Timespan(3, 0));
  char byte = 0;
  int n = -1;
  try {
    n = socket.receiveBytes(&byte, 1);
  } catch (const Poco::TimeoutException&) {
    n = -1;
  } catch (const Poco::Net::NetException&) {
    n = 0;  // reset counts as closed
  }
  EXPECT_EQ(n, 0) << "the connection stayed open";
}

}  // namespace
}  // namespace kvs::http_test
