// Request ids and logs against the real server (issue 13, "Logs"): X-Request-Id in every
// answer (a client's valid id echoed, a bad one replaced), the access log of
// kvs.log.requests=all on stderr, kvs.log.format=json lines, and bad log settings refused at
// start with one line.
#include <Poco/JSON/Parser.h>
#include <sys/wait.h>

#include <chrono>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "http_client.h"
#include "server_process.h"

namespace kvs::http_test {
namespace {

using std::chrono::milliseconds;

// The same id rules as the server (1-64 of [A-Za-z0-9._:-]).
bool ValidId(const std::string& id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != ':' &&
        c != '-') {
      return false;
    }
  }
  return true;
}

// GET /health with an X-Request-Id header of `id` (sent verbatim).
HttpResponse HealthWithId(uint16_t port, const std::string& id) {
  return RawExchange(port, "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Request-Id: " + id +
                               "\r\nConnection: close\r\n\r\n");
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// Polls the server's stderr until `count` lines contain every one of `needles` (5 s at most);
// returns those lines.
std::vector<std::string> WaitForLines(const ServerProcess& server,
                                      const std::vector<std::string>& needles, size_t count) {
  const auto deadline = std::chrono::steady_clock::now() + milliseconds(5000);
  std::vector<std::string> found;
  while (true) {
    found.clear();
    for (const std::string& line : Lines(server.Stderr())) {
      bool all = true;
      for (const std::string& needle : needles) all = all && line.find(needle) != std::string::npos;
      if (all) found.push_back(line);
    }
    if (found.size() >= count || std::chrono::steady_clock::now() >= deadline) return found;
    std::this_thread::sleep_for(milliseconds(20));
  }
}

class RequestIdTest : public SharedServerTest<RequestIdTest> {
 public:
  static EnvList ExtraEnv() { return {{"KVS_LOG_REQUESTS", "all"}}; }
};

TEST_F(RequestIdTest, EveryAnswerCarriesAFreshId) {
  const HttpResponse a = SendRequest(port(), "GET", "/health");
  const HttpResponse b = SendRequest(port(), "PUT", "/key-value-store/rid", PutBody("v"));
  ASSERT_EQ(a.status, 200) << Describe(a);
  ASSERT_TRUE(b.status == 200 || b.status == 201) << Describe(b);
  EXPECT_TRUE(ValidId(a.Header("x-request-id"))) << a.Header("x-request-id");
  EXPECT_TRUE(ValidId(b.Header("x-request-id"))) << b.Header("x-request-id");
  EXPECT_NE(a.Header("x-request-id"), b.Header("x-request-id"));
  // Errors too.
  const HttpResponse missing = SendRequest(port(), "GET", "/no-such-path");
  EXPECT_EQ(missing.status, 404);
  EXPECT_TRUE(ValidId(missing.Header("x-request-id")));
}

TEST_F(RequestIdTest, ValidClientIdIsEchoed) {
  for (const std::string& id :
       std::vector<std::string>{"client-1", "a.b_c:d-E", std::string(64, 'x')}) {
    const HttpResponse response = HealthWithId(port(), id);
    ASSERT_EQ(response.status, 200) << Describe(response);
    EXPECT_EQ(response.Header("x-request-id"), id);
  }
}

TEST_F(RequestIdTest, InvalidClientIdIsReplacedNotRefused) {
  for (const std::string& id :
       std::vector<std::string>{"has space", "semi;colon", "quote\"d", std::string(65, 'x'),
                                std::string("caf\xc3\xa9")}) {
    const HttpResponse response = HealthWithId(port(), id);
    ASSERT_EQ(response.status, 200) << Describe(response);
    const std::string echoed = response.Header("x-request-id");
    EXPECT_TRUE(ValidId(echoed)) << echoed;
    EXPECT_NE(echoed, id);
  }
}

TEST_F(RequestIdTest, AccessLogHasOneLinePerRequestWithItsId) {
  const std::vector<std::string> ids = {"access-1", "access-2", "access-3"};
  for (const std::string& id : ids) {
    ASSERT_EQ(HealthWithId(port(), id).status, 200);
  }
  // A failing one is logged with its status.
  const HttpResponse bad = RawExchange(
      port(),
      "PUT /key-value-store/k HTTP/1.1\r\nHost: x\r\nX-Request-Id: access-bad\r\n"
      "Content-Type: application/json\r\nContent-Length: 1\r\nConnection: close\r\n\r\n{");
  ASSERT_EQ(bad.status, 400) << Describe(bad);
  for (const std::string& id : ids) {
    const auto lines = WaitForLines(*server_, {"kvs.access", "request_id=" + id}, 1);
    ASSERT_EQ(lines.size(), 1u) << id << ":\n" << server_->Stderr();
    EXPECT_NE(lines[0].find("GET /health 200 "), std::string::npos) << lines[0];
    EXPECT_NE(lines[0].find(" ms local"), std::string::npos) << lines[0];
  }
  const auto lines = WaitForLines(*server_, {"kvs.access", "request_id=access-bad"}, 1);
  ASSERT_EQ(lines.size(), 1u) << server_->Stderr();
  EXPECT_NE(lines[0].find("PUT /key-value-store/k 400 "), std::string::npos) << lines[0];
}

class JsonLogTest : public SharedServerTest<JsonLogTest> {
 public:
  static EnvList ExtraEnv() { return {{"KVS_LOG_REQUESTS", "all"}, {"KVS_LOG_FORMAT", "json"}}; }
};

TEST_F(JsonLogTest, EveryLineIsAJsonObject) {
  ASSERT_EQ(HealthWithId(port(), "json-1").status, 200);
  ASSERT_EQ(WaitForLines(*server_, {"\"request_id\":\"json-1\""}, 1).size(), 1u)
      << server_->Stderr();
  const auto lines = Lines(server_->Stderr());
  ASSERT_GE(lines.size(), 2u);  // start-up lines, then the request's
  bool seen = false;
  for (const std::string& line : lines) {
    Poco::JSON::Object::Ptr object;
    try {
      Poco::JSON::Parser parser;
      object = parser.parse(line).extract<Poco::JSON::Object::Ptr>();
    } catch (const Poco::Exception& e) {
      ADD_FAILURE() << "not a JSON object (" << e.displayText() << "): " << line;
      continue;
    }
    for (const char* field : {"ts", "level", "logger", "msg"}) {
      EXPECT_TRUE(object->has(field)) << field << " missing: " << line;
    }
    EXPECT_EQ(object->getValue<std::string>("ts").back(), 'Z') << line;
    if (object->optValue<std::string>("request_id", "") == "json-1") {
      seen = true;
      EXPECT_EQ(object->getValue<std::string>("logger"), "kvs.access");
      EXPECT_NE(object->getValue<std::string>("msg").find("GET /health 200"), std::string::npos)
          << line;
    }
  }
  EXPECT_TRUE(seen);
}

TEST(LogSettingsStartupTest, BadValueStopsTheStartWithOneLine) {
  for (const auto& [name, value] : {std::pair<std::string, std::string>{"KVS_LOG_FORMAT", "xml"},
                                    {"KVS_LOG_REQUESTS", "some"}}) {
    std::string error;
    auto server =
        ServerProcess::Spawn({SingleNodeEnv(FreeLoopbackPort(), {{name, value}}), {}}, &error);
    ASSERT_NE(server, nullptr) << error;
    const auto status = server->WaitForExit(milliseconds(10000));
    ASSERT_TRUE(status.has_value()) << name << " still running; stderr:\n" << server->Stderr();
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 78) << DescribeWaitStatus(*status);
    std::string line = server->Stderr();
    if (!line.empty() && line.back() == '\n') line.pop_back();
    EXPECT_EQ(line.find('\n'), std::string::npos) << line;
    const std::string key = name == "KVS_LOG_FORMAT" ? "kvs.log.format" : "kvs.log.requests";
    EXPECT_NE(line.find(key), std::string::npos) << line;
    EXPECT_NE(line.find(value), std::string::npos) << line;
  }
}

}  // namespace
}  // namespace kvs::http_test
