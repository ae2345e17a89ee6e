// Requests written byte by byte on a raw socket: declared sizes the client never sends,
// chunked bodies, garbage instead of HTTP. The server must answer promptly (or close on
// garbage) and keep serving.
#include <chrono>
#include <string>

#include "Poco/Net/SocketAddress.h"
#include "Poco/Net/StreamSocket.h"
#include "gtest/gtest.h"
#include "http_client.h"
#include "server_process.h"

namespace kvs::http_test {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

constexpr int kMaxBodyBytes = 4096;
// How long a prompt answer (or close) may take.
constexpr milliseconds kPromptly{3000};
constexpr char kTooLarge[] = R"({"error":"Request body too large","message":"Error in PUT"})";

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
       {std::string("\x01\x02\x03\xff garbage \x7f\r\n\r\n", 20), std::string("HELLO\r\n\r\n"),
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
    Poco::Net::StreamSocket socket;
    socket.connect(Poco::Net::SocketAddress("127.0.0.1", port()));
    const std::string partial =
        RequestHead("PUT", "/key-value-store/vanish", "Content-Length: 100\r\n") + "{\"value\":";
    socket.sendBytes(partial.data(), static_cast<int>(partial.size()));
    socket.close();
  }
  {
    Poco::Net::StreamSocket socket;
    socket.connect(Poco::Net::SocketAddress("127.0.0.1", port()));
    const std::string partial = "PUT /key-value-store/vanish HTTP/1.1\r\nHost: 12";
    socket.sendBytes(partial.data(), static_cast<int>(partial.size()));
    socket.close();
  }
  ExpectStillServing();
  EXPECT_TRUE(
      IsJson(SendRequest(port(), "GET", "/key-value-store/vanish"), 404,
             R"({"doesExist":false,"error":"Key does not exist","message":"Error in GET"})"));
}

}  // namespace
}  // namespace kvs::http_test
