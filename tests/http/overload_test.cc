// Overload defence of the epoll front end (kvs.http.max_connections and
// kvs.http.max_connections_per_ip): at the connection limit the oldest idle keep-alive
// connection makes room for a new client, a connection with a request under way is never the
// one closed, and one address cannot hold more than its cap. The client is RawConnection
// (raw_connection.h), non-blocking POSIX sockets: the per-IP test binds client sockets to
// 127.0.0.2 before connecting. Registered for the epoll front end only (POCO's HTTPServer has
// neither feature, see README "HTTP front end"), plain and with TLS (secure.*: RawConnection
// then completes a TLS handshake before the test uses the connection, so "idle" is a connection
// with its handshake done and no request under way). /health and /metrics need neither
// credential of the secure runs (Service::CheckCredentials), so the requests carry none.
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "http_client.h"
#include "raw_connection.h"
#include "server_process.h"

namespace kvs::http_test {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

constexpr milliseconds kPollInterval{20};
constexpr milliseconds kQuiescence{5000};
// A fresh client at the limit must have its whole answer within this.
constexpr milliseconds kServedWithin{1000};
// How long a refused or evicted connection may take to be seen closed.
constexpr milliseconds kPromptly{3000};

constexpr char kHealth[] = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
constexpr char kMetrics[] = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
// A request head without its final blank line: the server holds a partly read request.
constexpr char kHealthHeadStart[] = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n";
constexpr char kMetricsHeadStart[] = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n";
constexpr char kHeadEnd[] = "\r\n";

// The unlabelled or labelled series of /metrics, by name as written ("a_total{reason=\"x\"}").
std::map<std::string, long long> ParseMetrics(const std::string& text) {
  std::map<std::string, long long> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(pos, end - pos);
    pos = end + 1;
    if (line.empty() || line[0] == '#') continue;
    const size_t space = line.rfind(' ');
    if (space == std::string::npos) continue;
    out[line.substr(0, space)] = std::atoll(line.c_str() + space + 1);
  }
  return out;
}

constexpr char kOpen[] = "kvs_http_connections_open";
constexpr char kEvicted[] = "kvs_http_connections_evicted_total";
constexpr char kRefusedLimit[] = "kvs_http_connections_refused_total{reason=\"limit\"}";
constexpr char kRefusedPerIp[] = "kvs_http_connections_refused_total{reason=\"per_ip\"}";

// GET /metrics on `connection`; the series, or an assertion failure.
::testing::AssertionResult ReadMetrics(RawConnection& connection,
                                       std::map<std::string, long long>* series) {
  const RawResponse r = connection.Exchange(kMetrics);
  if (r.status != 200) {
    return ::testing::AssertionFailure() << "GET /metrics: " << r.Describe();
  }
  *series = ParseMetrics(r.body);
  for (const char* name : {kOpen, kEvicted, kRefusedLimit, kRefusedPerIp}) {
    if (series->count(name) == 0) {
      return ::testing::AssertionFailure() << "no " << name << " in /metrics:\n" << r.body;
    }
  }
  return ::testing::AssertionSuccess();
}

// Polls /metrics on `connection` until the server has exactly `expected` connections open
// (connections of earlier tests and of the harness's health checks are closed), for
// kQuiescence at most.
::testing::AssertionResult WaitForOpenConnections(RawConnection& connection, long long expected) {
  const auto deadline = steady_clock::now() + kQuiescence;
  long long open = -1;
  while (true) {
    std::map<std::string, long long> series;
    if (auto read = ReadMetrics(connection, &series); !read) return read;
    open = series[kOpen];
    if (open == expected) return ::testing::AssertionSuccess();
    if (steady_clock::now() >= deadline) break;
    std::this_thread::sleep_for(kPollInterval);
  }
  return ::testing::AssertionFailure() << open << " connections open after " << kQuiescence.count()
                                       << " ms, expected " << expected;
}

std::unique_ptr<RawConnection> Connect(uint16_t port, const char* source_ip = nullptr) {
  auto connection = std::make_unique<RawConnection>(port, source_ip);
  EXPECT_TRUE(connection->connected()) << connection->error();
  return connection;
}

// --- kvs.http.max_connections --------------------------------------------------------------

constexpr int kLimit = 64;  // KVS_HTTP_MAX_CONNECTIONS

class EvictionTest : public SharedServerTest<EvictionTest> {
 public:
  static EnvList ExtraEnv() {
    // Two loops, so that the connection to close is often on the other loop than the one that
    // accepted the new client. Long timeouts: no connection may close for being idle or slow.
    return {{"KVS_HTTP_MAX_CONNECTIONS", std::to_string(kLimit)},
            {"KVS_HTTP_LOOPS", "2"},
            {"KVS_HTTP_KEEPALIVE_TIMEOUT_MS", "60000"},
            {"KVS_HTTP_RECEIVE_TIMEOUT_MS", "60000"}};
  }
};

// The limit's worth of connections: a metrics connection M, a connection P that is mid-request
// (the oldest), and idle keep-alive connections K[0..61]. New clients are each answered within
// 1 s, closing K[0], K[1], ... in turn; P gets its answer when it finishes its request.
TEST_F(EvictionTest, OldestIdleConnectionMakesRoomForNewClient) {
  constexpr int kFresh = 4;
  RawConnection metrics(port());
  ASSERT_TRUE(metrics.connected()) << metrics.error();
  ASSERT_TRUE(WaitForOpenConnections(metrics, 1));

  RawConnection in_flight(port());
  ASSERT_TRUE(in_flight.connected()) << in_flight.error();
  ASSERT_EQ(in_flight.Exchange(kHealth).status, 200);
  ASSERT_TRUE(in_flight.Send(kHealthHeadStart));

  std::vector<std::unique_ptr<RawConnection>> idle;
  for (int i = 0; i < kLimit - 2; ++i) {
    idle.push_back(Connect(port()));
    const RawResponse r = idle.back()->Exchange(kHealth);
    ASSERT_EQ(r.status, 200) << "idle connection " << i << ": " << r.Describe();
  }
  std::map<std::string, long long> before;
  ASSERT_TRUE(ReadMetrics(metrics, &before));
  ASSERT_EQ(before[kOpen], kLimit);

  std::vector<std::unique_ptr<RawConnection>> fresh;
  for (int i = 0; i < kFresh; ++i) {
    const auto start = steady_clock::now();
    fresh.push_back(Connect(port()));
    const RawResponse r = fresh.back()->Exchange(kHealth, kServedWithin);
    const auto took = std::chrono::duration_cast<milliseconds>(steady_clock::now() - start);
    EXPECT_EQ(r.status, 200) << "new client " << i << " at the limit: " << r.Describe();
    EXPECT_LE(took.count(), kServedWithin.count()) << "new client " << i << ", ms";
  }

  std::map<std::string, long long> after;
  ASSERT_TRUE(ReadMetrics(metrics, &after));
  EXPECT_EQ(after[kEvicted] - before[kEvicted], kFresh);
  EXPECT_EQ(after[kRefusedLimit], before[kRefusedLimit]);
  EXPECT_EQ(after[kOpen], kLimit);

  // Oldest idle first: K[0..kFresh-1] are closed, the rest still serve.
  for (int i = 0; i < kFresh; ++i) {
    EXPECT_TRUE(idle[static_cast<size_t>(i)]->WaitClosed(kPromptly))
        << "idle connection " << i << " (among the oldest) is still open";
  }
  EXPECT_EQ(idle[kFresh]->Exchange(kHealth).status, 200);
  EXPECT_EQ(idle.back()->Exchange(kHealth).status, 200);

  // The oldest connection of all was mid-request: it was not the one closed.
  ASSERT_TRUE(in_flight.Send(kHeadEnd)) << "the connection with a request under way was closed";
  const RawResponse answer = in_flight.Read(kIoTimeout);
  EXPECT_EQ(answer.status, 200) << answer.Describe();
}

// Every connection has a request under way: a new client is refused (closed unanswered) and
// counted, and no busy connection is closed for it.
TEST_F(EvictionTest, NewClientIsRefusedWhenNoConnectionIsIdle) {
  RawConnection metrics(port());
  ASSERT_TRUE(metrics.connected()) << metrics.error();
  ASSERT_TRUE(WaitForOpenConnections(metrics, 1));
  std::map<std::string, long long> before;
  ASSERT_TRUE(ReadMetrics(metrics, &before));

  std::vector<std::unique_ptr<RawConnection>> busy;
  for (int i = 0; i < kLimit - 1; ++i) {
    busy.push_back(Connect(port()));
    ASSERT_TRUE(busy.back()->Send(kHealthHeadStart)) << "busy connection " << i;
  }
  // All accepted (none of them may be the one over the limit), then the metrics connection goes
  // mid-request too; its answer comes at the end.
  ASSERT_TRUE(WaitForOpenConnections(metrics, kLimit));
  ASSERT_TRUE(metrics.Send(kMetricsHeadStart));

  RawConnection refused(port());
  ASSERT_TRUE(refused.connected()) << refused.error();
  const RawResponse r = refused.Exchange(kHealth, kPromptly);
  EXPECT_EQ(r.status, 0) << "served although every connection was busy: " << r.Describe();
  EXPECT_TRUE(r.closed) << r.Describe();

  ASSERT_TRUE(metrics.Send(kHeadEnd)) << "the metrics connection was closed";
  const RawResponse metrics_answer = metrics.Read(kIoTimeout);
  ASSERT_EQ(metrics_answer.status, 200) << metrics_answer.Describe();
  std::map<std::string, long long> after = ParseMetrics(metrics_answer.body);
  EXPECT_EQ(after[kRefusedLimit] - before[kRefusedLimit], 1);
  EXPECT_EQ(after[kEvicted], before[kEvicted]);

  for (size_t i = 0; i < busy.size(); ++i) {
    ASSERT_TRUE(busy[i]->Send(kHeadEnd)) << "busy connection " << i << " was closed";
    const RawResponse answer = busy[i]->Read(kIoTimeout);
    EXPECT_EQ(answer.status, 200) << "busy connection " << i << ": " << answer.Describe();
  }
}

// A request is under way as soon as its first bytes have reached the server, wherever they
// wait there: in the request buffer, or with TLS inside OpenSSL as part of a record (its 5-byte
// header alone, or the header and some of the body). Such a connection is not idle: at the limit
// a new client closes one that has sent nothing (with TLS: handshake done, no request) instead,
// and the request is answered once the rest of it arrives.
TEST_F(EvictionTest, RequestPartlyReceivedIsNotIdle) {
  constexpr size_t kWireBytes[] = {5, 12};
  RawConnection metrics(port());
  ASSERT_TRUE(metrics.connected()) << metrics.error();
  ASSERT_TRUE(WaitForOpenConnections(metrics, 1));

  // The oldest connections but for `metrics`: each answered one request, then got the first
  // bytes of its next one.
  std::vector<std::unique_ptr<RawConnection>> partial;
  for (const size_t wire_bytes : kWireBytes) {
    partial.push_back(Connect(port()));
    ASSERT_EQ(partial.back()->Exchange(kHealth).status, 200);
    ASSERT_TRUE(partial.back()->SendStart(kHealth, wire_bytes)) << wire_bytes << " bytes";
  }
  // Once the server has taken those bytes out of the socket (while they are still there, it
  // sees them anyway), they are only in its hands (with TLS: inside OpenSSL).
  for (auto& connection : partial) ASSERT_TRUE(connection->WaitPeerHasReadAll(kPromptly));
  std::vector<std::unique_ptr<RawConnection>> quiet;  // connected, nothing sent
  for (int i = 0; i < kLimit - 1 - static_cast<int>(partial.size()); ++i) {
    quiet.push_back(Connect(port()));
  }
  ASSERT_TRUE(WaitForOpenConnections(metrics, kLimit));
  std::map<std::string, long long> before;
  ASSERT_TRUE(ReadMetrics(metrics, &before));

  std::vector<std::unique_ptr<RawConnection>> fresh;
  for (size_t i = 0; i < partial.size(); ++i) {
    fresh.push_back(Connect(port()));
    const RawResponse r = fresh.back()->Exchange(kHealth, kServedWithin);
    EXPECT_EQ(r.status, 200) << "new client " << i << " at the limit: " << r.Describe();
  }
  // Closed for them: quiet connections (the only others; which ones depends on the loop each
  // went to, as they connected in a burst).
  std::map<std::string, long long> after;
  ASSERT_TRUE(ReadMetrics(metrics, &after));
  EXPECT_EQ(after[kEvicted] - before[kEvicted], static_cast<long long>(partial.size()));
  EXPECT_EQ(after[kRefusedLimit], before[kRefusedLimit]);

  for (size_t i = 0; i < partial.size(); ++i) {
    ASSERT_TRUE(partial[i]->SendRest())
        << "the connection with " << kWireBytes[i] << " bytes of a request was closed";
    const RawResponse answer = partial[i]->Read(kIoTimeout);
    EXPECT_EQ(answer.status, 200) << "the connection with " << kWireBytes[i]
                                  << " bytes of a request: " << answer.Describe();
  }
}

// --- kvs.http.max_connections_per_ip -------------------------------------------------------

constexpr int kPerIpCap = 4;  // KVS_HTTP_MAX_CONNECTIONS_PER_IP
constexpr char kOtherSource[] = "127.0.0.2";

class PerIpCapTest : public SharedServerTest<PerIpCapTest> {
 public:
  static EnvList ExtraEnv() {
    return {{"KVS_HTTP_MAX_CONNECTIONS_PER_IP", std::to_string(kPerIpCap)},
            {"KVS_HTTP_LOOPS", "2"},
            {"KVS_HTTP_KEEPALIVE_TIMEOUT_MS", "60000"}};
  }
};

TEST_F(PerIpCapTest, ConnectionOverTheCapIsRefusedOtherAddressesServed) {
  RawConnection metrics(port(), kOtherSource);
  ASSERT_TRUE(metrics.connected()) << metrics.error();
  ASSERT_TRUE(WaitForOpenConnections(metrics, 1));
  std::map<std::string, long long> before;
  ASSERT_TRUE(ReadMetrics(metrics, &before));

  std::vector<std::unique_ptr<RawConnection>> local;
  for (int i = 0; i < kPerIpCap; ++i) {
    local.push_back(Connect(port()));
    const RawResponse r = local.back()->Exchange(kHealth);
    ASSERT_EQ(r.status, 200) << "connection " << i << " from 127.0.0.1: " << r.Describe();
  }
  {
    RawConnection over(port());
    ASSERT_TRUE(over.connected()) << over.error();
    const RawResponse r = over.Exchange(kHealth, kPromptly);
    EXPECT_EQ(r.status, 0) << "connection over the cap was served: " << r.Describe();
    EXPECT_TRUE(r.closed) << r.Describe();
  }
  RawConnection other(port(), kOtherSource);
  ASSERT_TRUE(other.connected()) << other.error();
  EXPECT_EQ(other.Exchange(kHealth).status, 200) << "a connection from 127.0.0.2 was refused";

  std::map<std::string, long long> after;
  ASSERT_TRUE(ReadMetrics(metrics, &after));
  EXPECT_EQ(after[kRefusedPerIp] - before[kRefusedPerIp], 1);
  EXPECT_EQ(after[kRefusedLimit], before[kRefusedLimit]);
  EXPECT_EQ(after[kEvicted], before[kEvicted]);

  // A closed connection gives its address's slot back.
  local.front().reset();
  ASSERT_TRUE(WaitForOpenConnections(metrics, kPerIpCap - 1 + 2));  // + metrics and other
  RawConnection again(port());
  ASSERT_TRUE(again.connected()) << again.error();
  EXPECT_EQ(again.Exchange(kHealth).status, 200) << "the slot was not given back";
}

// --- a stop (SIGTERM) ---------------------------------------------------------------------

// A stop closes idle connections at once and lets one whose request has begun to arrive finish
// it (with TLS: also when all the server has of it is part of a record inside OpenSSL).
TEST(StopTest, APartlyReceivedRequestIsFinishedAndAnIdleConnectionClosed) {
  std::string error;
  // One loop: when the idle connection is seen closed, the stop has reached the other one too.
  auto server = StartSingleNode({{"KVS_HTTP_LOOPS", "1"}}, {}, &error);
  ASSERT_NE(server, nullptr) << error;
  auto idle = Connect(server->port());
  auto partial = Connect(server->port());
  ASSERT_EQ(idle->Exchange(kHealth).status, 200);
  ASSERT_EQ(partial->Exchange(kHealth).status, 200);
  ASSERT_TRUE(partial->SendStart(kHealth, 12));
  ASSERT_TRUE(partial->WaitPeerHasReadAll(kPromptly));

  ASSERT_EQ(::kill(server->pid(), SIGTERM), 0);
  ASSERT_TRUE(idle->WaitClosed(kPromptly)) << "the idle connection outlived the stop";
  ASSERT_TRUE(partial->SendRest()) << "the connection with part of a request was closed";
  const RawResponse answer = partial->Read(kIoTimeout);
  EXPECT_EQ(answer.status, 200) << answer.Describe();
  const auto status = server->WaitForExit(milliseconds(10000));
  ASSERT_TRUE(status.has_value()) << "still running 10 s after SIGTERM";
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << DescribeWaitStatus(*status);
}

}  // namespace
}  // namespace kvs::http_test
