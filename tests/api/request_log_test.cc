// Request ids, the log formats and the access log (issue 13, "Logs"), without sockets.
#include "kvs/api/request_log.h"

#include <Poco/AutoPtr.h>
#include <Poco/Channel.h>
#include <Poco/FormattingChannel.h>
#include <Poco/JSON/Parser.h>
#include <Poco/Logger.h>
#include <gtest/gtest.h>

#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "kvs/api/service.h"

namespace kvs::api {
namespace {

TEST(RequestIdTest, ValidAcceptsOnlyShortSafeIds) {
  EXPECT_TRUE(RequestId::Valid("a"));
  EXPECT_TRUE(RequestId::Valid("req-42_x.y:z"));
  EXPECT_TRUE(RequestId::Valid(std::string(64, 'A')));
  EXPECT_FALSE(RequestId::Valid(""));
  EXPECT_FALSE(RequestId::Valid(std::string(65, 'A')));
  for (const char* bad :
       {"a b", "a\r\nX-Evil: 1", "a\"b", "a/b", "a\\b", "{}", "caf\xc3\xa9", "a\tb", "a\x01"}) {
    EXPECT_FALSE(RequestId::Valid(bad)) << bad;
  }
}

TEST(RequestIdTest, NewIdsAreValidDistinctAndShareTheProcessPrefix) {
  std::set<std::string> seen;
  std::string prefix;
  for (int i = 0; i < 1000; ++i) {
    const RequestId id = RequestId::New();
    const std::string text(id.view());
    ASSERT_TRUE(RequestId::Valid(text)) << text;
    ASSERT_GE(text.size(), 10u) << text;
    ASSERT_EQ(text[8], '-') << text;
    if (prefix.empty()) prefix = text.substr(0, 8);
    EXPECT_EQ(text.substr(0, 8), prefix);
    EXPECT_TRUE(seen.insert(text).second) << "duplicate " << text;
  }
}

TEST(RequestIdTest, FromHeaderKeepsAValidIdAndReplacesAnInvalidOne) {
  EXPECT_EQ(RequestId::FromHeader("client-7").view(), "client-7");
  const std::string longest(64, 'z');
  EXPECT_EQ(RequestId::FromHeader(longest).view(), longest);
  for (const std::string& bad :
       {std::string(), std::string(65, 'z'), std::string("x y"), std::string("x\ny")}) {
    const RequestId id = RequestId::FromHeader(bad);
    EXPECT_TRUE(RequestId::Valid(id.view())) << id.view();
    EXPECT_NE(id.view(), bad);
  }
}

TEST(RequestIdTest, ScopedIdNestsAndRestores) {
  EXPECT_EQ(CurrentRequestId(), "");
  const RequestId outer = RequestId::FromHeader("outer");
  {
    const ScopedRequestId a(outer);
    EXPECT_EQ(CurrentRequestId(), "outer");
    const RequestId inner = RequestId::FromHeader("inner");
    {
      const ScopedRequestId b(inner);
      EXPECT_EQ(CurrentRequestId(), "inner");
    }
    EXPECT_EQ(CurrentRequestId(), "outer");
  }
  EXPECT_EQ(CurrentRequestId(), "");
}

TEST(LogSettingsTest, ParsesOnlyTheDocumentedValues) {
  EXPECT_EQ(ParseLogFormat("text"), LogFormat::kText);
  EXPECT_EQ(ParseLogFormat("json"), LogFormat::kJson);
  EXPECT_FALSE(ParseLogFormat("JSON").has_value());
  EXPECT_FALSE(ParseLogFormat("").has_value());
  EXPECT_FALSE(ParseLogFormat("xml").has_value());
  EXPECT_EQ(ParseRequestLogMode("off"), RequestLogMode::kOff);
  EXPECT_EQ(ParseRequestLogMode("errors"), RequestLogMode::kErrors);
  EXPECT_EQ(ParseRequestLogMode("all"), RequestLogMode::kAll);
  EXPECT_FALSE(ParseRequestLogMode("on").has_value());
  EXPECT_FALSE(ParseRequestLogMode("").has_value());
}

Poco::JSON::Object::Ptr ParseLine(const std::string& line) {
  Poco::JSON::Parser parser;
  return parser.parse(line).extract<Poco::JSON::Object::Ptr>();
}

TEST(LogFormatTest, JsonLineIsOneEscapedObject) {
  const std::string text = "quote \" backslash \\ newline \n tab \t bell \x07 end";
  const Poco::Message message("kvs.api", text, Poco::Message::PRIO_WARNING);
  std::string line;
  FormatLogLine(LogFormat::kJson, message, "id-1", line);
  EXPECT_EQ(line.find('\n'), std::string::npos) << line;
  Poco::JSON::Object::Ptr object;
  ASSERT_NO_THROW(object = ParseLine(line)) << line;
  EXPECT_EQ(object->getValue<std::string>("msg"), text);
  EXPECT_EQ(object->getValue<std::string>("level"), "warning");
  EXPECT_EQ(object->getValue<std::string>("logger"), "kvs.api");
  EXPECT_EQ(object->getValue<std::string>("request_id"), "id-1");
  const std::string ts = object->getValue<std::string>("ts");
  ASSERT_EQ(ts.size(), 24u) << ts;  // 2026-12-06T16:53:50.123Z
  EXPECT_EQ(ts[10], 'T');
  EXPECT_EQ(ts.back(), 'Z');
}

TEST(LogFormatTest, JsonLineStaysValidUtf8) {
  // Valid multi-byte text is kept; stray, truncated, overlong and surrogate bytes become U+FFFD.
  const std::string text =
      "caf\xc3\xa9 \xe2\x82\xac bad:\xff\xc3 \xc0\xaf \xed\xa0\x80 end\xe2\x82";
  std::string line;
  FormatLogLine(LogFormat::kJson, Poco::Message("kvs", text, Poco::Message::PRIO_ERROR), "", line);
  Poco::JSON::Object::Ptr object;
  ASSERT_NO_THROW(object = ParseLine(line)) << line;
  const std::string r = "\xef\xbf\xbd";
  EXPECT_EQ(object->getValue<std::string>("msg"), "caf\xc3\xa9 \xe2\x82\xac bad:" + r + r + " " +
                                                      r + r + " " + r + r + r + " end" + r + r);
  EXPECT_EQ(ValidUtf8("plain"), "plain");
  EXPECT_EQ(ValidUtf8("\xf0\x9f\x98\x80"), "\xf0\x9f\x98\x80");
  EXPECT_EQ(ValidUtf8("\xf4\x90\x80\x80"), r + r + r + r);  // above U+10FFFF
}

TEST(LogFormatTest, JsonLineWithoutARequestHasNoId) {
  const Poco::Message message("kvs", "started", Poco::Message::PRIO_INFORMATION);
  std::string line;
  FormatLogLine(LogFormat::kJson, message, "", line);
  const auto object = ParseLine(line);
  EXPECT_FALSE(object->has("request_id")) << line;
  EXPECT_EQ(object->getValue<std::string>("level"), "information");
}

TEST(LogFormatTest, TextLineKeepsTheOldLayoutAndAppendsTheId) {
  const Poco::Message message("kvs.net", "call failed", Poco::Message::PRIO_ERROR);
  std::string plain;
  FormatLogLine(LogFormat::kText, message, "", plain);
  EXPECT_EQ(plain.substr(24), " Error kvs.net: call failed") << plain;
  std::string with_id;
  FormatLogLine(LogFormat::kText, message, "abc", with_id);
  EXPECT_EQ(with_id.substr(24), " Error kvs.net: call failed request_id=abc") << with_id;
}

// Collects what the loggers write, formatted by the server's formatter.
class Capture final : public Poco::Channel {
 public:
  void log(const Poco::Message& message) override {
    std::lock_guard lock(mu_);
    lines_.push_back(message.getText());
  }
  std::vector<std::string> Lines() {
    std::lock_guard lock(mu_);
    return lines_;
  }

 private:
  std::mutex mu_;
  std::vector<std::string> lines_;
};

// Two nodes, two shards; the other node (port 1 on loopback) never answers.
class RequestLogServiceTest : public ::testing::Test {
 protected:
  RequestLogServiceTest()
      : cluster_(self_, {self_, other_}, cluster::InitialAssignment({self_, other_}, 2)),
        detector_(cluster_,
                  {[](const Address&) { return false; },
                   [](const Address&, const Address&, bool, bool) {}},
                  std::chrono::milliseconds(1000), std::chrono::milliseconds(60000), 1),
        peers_(std::chrono::milliseconds(500)),
        replicator_(store_, clock_, cluster_, peers_, ShortDependencyWait()),
        coordinator_(store_, clock_, replicator_, self_.ToString() + "#1"),
        reconfigurator_(store_, clock_, cluster_, peers_, replicator_, coordinator_,
                        replication::ReconfigureOptions{}),
        service_(store_, cluster_, detector_, replicator_, coordinator_, reconfigurator_, peers_,
                 metrics_, Limits{4096, 1024}) {
    replicator_.Bootstrap();
    capture_ = new Capture;
    formatted_ = new Poco::FormattingChannel(new LogFormatter(LogFormat::kJson), capture_);
    Poco::Logger::get("kvs.access");
    Poco::Logger::get("kvs.api");
    Poco::Logger::setChannel("", formatted_);
    Poco::Logger::setLevel("", Poco::Message::PRIO_INFORMATION);
  }
  ~RequestLogServiceTest() override { Poco::Logger::setChannel("", nullptr); }

  static replication::ReplicationOptions ShortDependencyWait() {
    replication::ReplicationOptions options;
    options.dependency_wait = std::chrono::milliseconds(100);
    return options;
  }

  std::string KeyOf(bool mine) {
    for (int i = 0;; ++i) {
      const std::string key = "k" + std::to_string(i);
      if ((cluster_.ShardForKey(key) == cluster_.MyShard()) == mine) return key;
    }
  }
  // The captured lines (JSON) that carry `id`.
  std::vector<Poco::JSON::Object::Ptr> LinesWith(std::string_view id) {
    std::vector<Poco::JSON::Object::Ptr> out;
    for (const std::string& line : capture_->Lines()) {
      Poco::JSON::Object::Ptr object;
      try {
        object = ParseLine(line);
      } catch (const Poco::Exception&) {
        ADD_FAILURE() << "not JSON: " << line;
        continue;
      }
      if (object->optValue<std::string>("request_id", "") == id) out.push_back(object);
    }
    return out;
  }

  using Address = cluster::Address;
  const Address self_{"127.0.0.1", 7000};
  const Address other_{"127.0.0.1", 1};
  store::Store store_;
  causal::HybridClock clock_;
  cluster::ClusterState cluster_;
  cluster::FailureDetector detector_;
  net::PeerClient peers_;
  replication::Replicator replicator_;
  replication::Coordinator coordinator_;
  replication::Reconfigurator reconfigurator_;
  Metrics metrics_;
  Service service_;
  Poco::AutoPtr<Capture> capture_;
  Poco::AutoPtr<Poco::FormattingChannel> formatted_;
};

TEST_F(RequestLogServiceTest, AnswerCarriesTheClientsIdOrAFreshOne) {
  Request request{"GET", "/health", ""};
  request.request_id_header = "client.id-1";
  EXPECT_EQ(service_.Handle(request).request_id.view(), "client.id-1");
  Request bad{"GET", "/health", ""};
  bad.request_id_header = "no spaces allowed";
  const Response replaced = service_.Handle(bad);
  EXPECT_TRUE(RequestId::Valid(replaced.request_id.view()));
  EXPECT_NE(replaced.request_id.view(), "no spaces allowed");
  const Response a = service_.Handle(Request{"GET", "/health", ""});
  const Response b = service_.Handle(Request{"GET", "/health", ""});
  EXPECT_TRUE(RequestId::Valid(a.request_id.view()));
  EXPECT_NE(a.request_id.view(), b.request_id.view());
}

TEST_F(RequestLogServiceTest, AccessLogFollowsTheMode) {
  const std::string key = "/key-value-store/" + KeyOf(true);
  const std::string good_body = R"({"value":"v"})";
  auto send = [&](std::string_view body, std::string_view id) {
    Request request{"PUT", key, body};
    request.request_id_header = id;
    return service_.Handle(request).status;
  };
  EXPECT_EQ(send(good_body, "put-1"), 201);
  EXPECT_EQ(send("{", "bad-1"), 400);
  EXPECT_TRUE(LinesWith("put-1").empty());  // off by default
  EXPECT_TRUE(LinesWith("bad-1").empty());

  service_.SetRequestLog(RequestLogMode::kErrors);
  send(good_body, "put-2");
  send("{", "bad-2");
  EXPECT_TRUE(LinesWith("put-2").empty());
  ASSERT_EQ(LinesWith("bad-2").size(), 1u);

  service_.SetRequestLog(RequestLogMode::kAll);
  send(good_body, "put-3");
  const auto lines = LinesWith("put-3");
  ASSERT_EQ(lines.size(), 1u);
  const std::string msg = lines[0]->getValue<std::string>("msg");
  EXPECT_EQ(lines[0]->getValue<std::string>("logger"), "kvs.access");
  EXPECT_NE(msg.find("PUT " + key + " 200 "), std::string::npos) << msg;  // an update
  EXPECT_NE(msg.find(" ms local"), std::string::npos) << msg;
  // Node-to-node calls are not client requests.
  Request internal{"GET", "/internal/heartbeat?from=127.0.0.1:1", ""};
  internal.request_id_header = "hb-1";
  service_.Handle(internal);
  EXPECT_TRUE(LinesWith("hb-1").empty());
}

TEST_F(RequestLogServiceTest, ForwardingFailureIsCountedAndLoggedWithTheId) {
  service_.SetRequestLog(RequestLogMode::kErrors);
  const std::string metrics_before = service_.Handle(Request{"GET", "/metrics", ""}).body;
  EXPECT_NE(metrics_before.find("kvs_forwarding_failures_total{reason=\"refused\"} 0"),
            std::string::npos)
      << metrics_before;
  const std::string target = "/key-value-store/" + KeyOf(false);
  Request request{"GET", target, ""};
  request.request_id_header = "fwd-1";
  const Response response = service_.Handle(request);
  EXPECT_EQ(response.status, 503) << response.body;
  EXPECT_EQ(response.request_id.view(), "fwd-1");
  const std::string metrics = service_.Handle(Request{"GET", "/metrics", ""}).body;
  EXPECT_NE(metrics.find("kvs_forwarding_failures_total{reason=\"refused\"} 1"), std::string::npos)
      << metrics;
  const auto lines = LinesWith("fwd-1");
  bool forward_warning = false;
  bool access = false;
  for (const auto& line : lines) {
    const std::string msg = line->getValue<std::string>("msg");
    if (line->getValue<std::string>("logger") == "kvs.api" &&
        msg.find("cannot forward") != std::string::npos) {
      forward_warning = true;
      EXPECT_EQ(line->getValue<std::string>("level"), "warning");
    }
    if (line->getValue<std::string>("logger") == "kvs.access" &&
        msg.find(" 503 ") != std::string::npos &&
        msg.find(": none answered") != std::string::npos &&
        msg.find("forwarded to shard ") != std::string::npos) {
      access = true;
    }
  }
  EXPECT_TRUE(forward_warning);
  EXPECT_TRUE(access);
}

TEST_F(RequestLogServiceTest, DependencyTimeoutIsLoggedWithTheId) {
  // A read that depends on a write of this shard that never arrives: 503 after the wait.
  const std::string target = "/key-value-store/" + KeyOf(true);
  const std::string body = R"({"causal-metadata":"0|127.0.0.1:7000#9.0=4"})";
  Request request{"GET", target, body};
  request.request_id_header = "dep-1";
  const Response response = service_.Handle(request);
  EXPECT_EQ(response.status, 503) << response.body;
  bool logged = false;
  for (const auto& line : LinesWith("dep-1")) {
    const std::string msg = line->getValue<std::string>("msg");
    if (msg.find("answered 503") != std::string::npos &&
        msg.find("dependencies") != std::string::npos) {
      logged = true;
    }
  }
  EXPECT_TRUE(logged);
}

}  // namespace
}  // namespace kvs::api
