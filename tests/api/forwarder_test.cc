// The event loops' forwarding client (modules/api/forwarder.h) against scripted members: real
// loopback sockets, driven by an epoll loop in the test thread the way EventServer drives it
// (Flush before each wait, events, Sweep).
#include "forwarder.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "kvs/net/resolver.h"
#include "kvs/net/tls.h"
#include "server_process.h"  // MakeTestPki (tests/http)

namespace kvs::api {
namespace {

using namespace std::chrono_literals;

// Reads one HTTP request (head + Content-Length body) from a blocking socket; "" at EOF.
std::string ReadRequest(int fd, std::string& buffer) {
  while (true) {
    const size_t end = buffer.find("\r\n\r\n");
    if (end != std::string::npos) {
      size_t length = 0;
      const size_t at = buffer.find("Content-Length: ");
      if (at != std::string::npos && at < end) length = std::stoul(buffer.substr(at + 16));
      if (buffer.size() >= end + 4 + length) {
        std::string request = buffer.substr(0, end + 4 + length);
        buffer.erase(0, end + 4 + length);
        return request;
      }
    }
    char chunk[4096];
    const ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
    if (n <= 0) return "";
    buffer.append(chunk, static_cast<size_t>(n));
  }
}

std::string Answer(int status, const std::string& body) {
  return "HTTP/1.1 " + std::to_string(status) + " X\r\nContent-Type: application/json\r\n" +
         "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

// A member on 127.0.0.1: each accepted connection is served by `script` on its own thread
// (given the socket and the connection's number, from 0).
class FakeMember {
 public:
  using Script = std::function<void(int fd, int connection)>;
  explicit FakeMember(Script script) : script_(std::move(script)) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(listen_fd_, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
    EXPECT_EQ(::listen(listen_fd_, 64), 0);
    socklen_t size = sizeof address;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&address), &size);
    port_ = ntohs(address.sin_port);
    acceptor_ = std::thread([this] {
      for (int n = 0;; ++n) {
        const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd < 0) return;  // shut down
        connections_.fetch_add(1);
        std::lock_guard lock(mu_);
        fds_.push_back(fd);
        threads_.emplace_back([this, fd, n] { script_(fd, n); });
      }
    });
  }
  ~FakeMember() {
    ::shutdown(listen_fd_, SHUT_RDWR);
    ::close(listen_fd_);
    acceptor_.join();
    std::lock_guard lock(mu_);
    for (int fd : fds_) ::shutdown(fd, SHUT_RDWR);
    for (auto& t : threads_) t.join();
    for (int fd : fds_) ::close(fd);
  }
  std::string name() const { return "127.0.0.1:" + std::to_string(port_); }
  int connections() const { return connections_.load(); }

 private:
  Script script_;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<int> connections_{0};
  std::thread acceptor_;
  std::mutex mu_;
  std::vector<int> fds_;
  std::vector<std::thread> threads_;
};

// Answers every request with 200 and a body naming the request line and its X-Kvs-Hops value.
void Echo(int fd, int) {
  std::string buffer;
  while (true) {
    const std::string request = ReadRequest(fd, buffer);
    if (request.empty()) return;
    const std::string line = request.substr(0, request.find("\r\n"));
    const size_t hops = request.find("X-Kvs-Hops: ");
    const std::string body = line + "|" +
                             (hops == std::string::npos ? "" : request.substr(hops + 12, 1)) + "|" +
                             request.substr(request.find("\r\n\r\n") + 4);
    const std::string answer = Answer(200, body);
    if (::send(fd, answer.data(), answer.size(), MSG_NOSIGNAL) < 0) return;
  }
}

// A port nothing listens on (bound, then closed).
std::string ClosedPort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);
  socklen_t size = sizeof address;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &size);
  ::close(fd);
  return "127.0.0.1:" + std::to_string(ntohs(address.sin_port));
}

class ForwarderTest : public ::testing::Test {
 protected:
  void SetUp() override { epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC); }
  void TearDown() override {
    forwarder_.reset();
    ::close(epoll_fd_);
  }

  void Make(ForwarderOptions options = {}) {
    forwarder_ = std::make_unique<Forwarder>(epoll_fd_, options,
                                             [this](uint64_t token, Forwarder::Outcome outcome) {
                                               outcomes_[token] = std::move(outcome);
                                               if (on_outcome_) on_outcome_(token);
                                             });
  }

  void Start(uint64_t token, std::string_view target, const std::vector<std::string>& members,
             std::string_view body = "", std::string_view method = "PUT") {
    ForwardPlan plan;
    plan.shard = 1;
    plan.members = members;
    plan.headers = {{kHopsHeader, "1"}};
    Request request;
    request.method = method;
    request.target = target;
    request.body = body;
    ASSERT_TRUE(forwarder_->Reachable(plan));
    forwarder_->Start(token, request, plan);
  }

  // Waits (10 s at most) until the forwarder can reach every member of `members` (named ones
  // once resolved), then starts the request.
  void StartWhenReachable(uint64_t token, std::string_view target,
                          const std::vector<std::string>& members, std::string_view body = "",
                          std::string_view method = "PUT") {
    ForwardPlan plan;
    plan.members = members;
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!forwarder_->Reachable(plan) && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(1ms);
    }
    Start(token, target, members, body, method);
  }

  // Runs the loop until `count` outcomes arrived (or 10 s passed).
  void RunUntil(size_t count) {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    epoll_event events[16];
    while (outcomes_.size() < count && std::chrono::steady_clock::now() < deadline) {
      forwarder_->Flush();
      if (outcomes_.size() >= count) break;
      const int n = ::epoll_wait(epoll_fd_, events, 16, 20);
      const auto now = std::chrono::steady_clock::now();
      for (int i = 0; i < n; ++i) forwarder_->OnEvent(events[i].data.u64, events[i].events, now);
      forwarder_->Sweep(now);
    }
    ASSERT_EQ(outcomes_.size(), count);
  }

  int epoll_fd_ = -1;
  std::unique_ptr<Forwarder> forwarder_;
  std::map<uint64_t, Forwarder::Outcome> outcomes_;
  std::function<void(uint64_t)> on_outcome_;
};

TEST_F(ForwarderTest, RelaysTheRequestWithItsHeadersAndTheAnswer) {
  FakeMember member(Echo);
  Make();
  Start(7, "/kvs/keys/a", {member.name()}, R"({"value":"v"})");
  RunUntil(1);
  const Forwarder::Outcome& outcome = outcomes_.at(7);
  EXPECT_EQ(outcome.status, 200);
  EXPECT_EQ(outcome.member, member.name());
  EXPECT_EQ(outcome.body, R"(PUT /kvs/keys/a HTTP/1.1|1|{"value":"v"})");
  EXPECT_EQ(forwarder_->in_flight(), 0u);
}

TEST_F(ForwarderTest, StatusOfTheAnswerIsRelayedAsIs) {
  FakeMember member([](int fd, int) {
    std::string buffer;
    while (!ReadRequest(fd, buffer).empty()) {
      const std::string answer = Answer(404, R"({"doesExist":false})");
      ::send(fd, answer.data(), answer.size(), MSG_NOSIGNAL);
    }
  });
  Make();
  Start(1, "/kvs/keys/missing", {member.name()});
  RunUntil(1);
  EXPECT_EQ(outcomes_.at(1).status, 404);
  EXPECT_EQ(outcomes_.at(1).body, R"({"doesExist":false})");
}

TEST_F(ForwarderTest, RefusedMemberFailsOverToTheNext) {
  FakeMember live(Echo);
  const std::string dead = ClosedPort();
  Make();
  Start(1, "/kvs/keys/a", {dead, live.name()});
  RunUntil(1);
  EXPECT_EQ(outcomes_.at(1).status, 200);
  EXPECT_EQ(outcomes_.at(1).member, live.name());
}

TEST_F(ForwarderTest, NoMemberAnsweringIsAFailureNamingTheLastOne) {
  const std::string dead = ClosedPort();
  Make();
  Start(1, "/kvs/keys/a", {dead});
  RunUntil(1);
  const Forwarder::Outcome& outcome = outcomes_.at(1);
  EXPECT_EQ(outcome.status, 0);
  EXPECT_EQ(outcome.failure, net::CallFailure::kRefused);
  EXPECT_NE(outcome.error.find(dead), std::string::npos) << outcome.error;
}

TEST_F(ForwarderTest, EmptyPlanFailsWithoutAnAttempt) {
  Make();
  Start(1, "/kvs/keys/a", {});
  RunUntil(1);
  EXPECT_EQ(outcomes_.at(1).status, 0);
  EXPECT_EQ(outcomes_.at(1).error, "no member");
}

TEST_F(ForwarderTest, SilentMemberTimesOutAndTheNextAnswers) {
  std::atomic<bool> done{false};
  FakeMember silent([&](int fd, int) {
    std::string buffer;
    ReadRequest(fd, buffer);  // and never answer; the socket's shutdown ends the wait
    char byte;
    while (!done.load() && ::recv(fd, &byte, 1, 0) > 0) {
    }
  });
  FakeMember live(Echo);
  ForwarderOptions options;
  options.answer_timeout = 300ms;
  Make(options);
  Start(1, "/kvs/keys/a", {silent.name(), live.name()});
  Start(2, "/kvs/keys/b", {silent.name()});
  RunUntil(2);
  EXPECT_EQ(outcomes_.at(1).status, 200);
  EXPECT_EQ(outcomes_.at(1).member, live.name());
  EXPECT_EQ(outcomes_.at(2).status, 0);
  EXPECT_EQ(outcomes_.at(2).failure, net::CallFailure::kTimeout);
  EXPECT_NE(outcomes_.at(2).error.find("timed out"), std::string::npos) << outcomes_.at(2).error;
  done = true;
}

TEST_F(ForwarderTest, APlansOwnAnswerTimeoutOverridesTheDefault) {
  std::atomic<bool> done{false};
  FakeMember silent([&](int fd, int) {
    std::string buffer;
    ReadRequest(fd, buffer);
    char byte;
    while (!done.load() && ::recv(fd, &byte, 1, 0) > 0) {
    }
  });
  Make();  // the default answer timeout: 25 s
  ForwardPlan plan;
  plan.members = {silent.name()};
  plan.answer_timeout = 200ms;
  Request request;
  request.method = "POST";
  request.target = "/internal/replicate";
  request.body = "{}";
  const auto start = std::chrono::steady_clock::now();
  forwarder_->Start(1, request, plan);
  RunUntil(1);
  EXPECT_EQ(outcomes_.at(1).failure, net::CallFailure::kTimeout);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  done = true;
}

TEST_F(ForwarderTest, AnAnswerArrivingInPiecesIsPutTogether) {
  // The head, then (after the first piece was surely read on its own) the body: each piece is
  // a short read, and the second comes with an edge of its own.
  FakeMember member([](int fd, int) {
    std::string buffer;
    while (!ReadRequest(fd, buffer).empty()) {
      const std::string answer = Answer(200, R"({"replicated":3})");
      const size_t cut = answer.size() - 5;
      ::send(fd, answer.data(), cut, MSG_NOSIGNAL);
      std::this_thread::sleep_for(50ms);
      ::send(fd, answer.data() + cut, answer.size() - cut, MSG_NOSIGNAL);
    }
  });
  Make();
  Start(1, "/kvs/keys/a", {member.name()});
  Start(2, "/kvs/keys/b", {member.name()});
  RunUntil(2);
  EXPECT_EQ(outcomes_.at(1).body, R"({"replicated":3})");
  EXPECT_EQ(outcomes_.at(2).body, R"({"replicated":3})");
}

TEST_F(ForwarderTest, MalformedAnswerFailsOverToTheNext) {
  FakeMember garbage([](int fd, int) {
    std::string buffer;
    ReadRequest(fd, buffer);
    const std::string junk = "NOT HTTP AT ALL\r\n\r\n";
    ::send(fd, junk.data(), junk.size(), MSG_NOSIGNAL);
  });
  FakeMember live(Echo);
  Make();
  Start(1, "/kvs/keys/a", {garbage.name(), live.name()});
  RunUntil(1);
  EXPECT_EQ(outcomes_.at(1).status, 200);
  EXPECT_EQ(outcomes_.at(1).member, live.name());
}

// The member closes a kept-alive connection just as the next request is written into it (its
// idle timeout racing the request): the request goes again on a fresh connection to the same
// member, not to the next member and not as a failure.
TEST_F(ForwarderTest, KeptAliveConnectionClosedUnderARequestIsRetriedFresh) {
  FakeMember member([](int fd, int connection) {
    std::string buffer;
    if (connection == 0) {
      ReadRequest(fd, buffer);
      const std::string answer = Answer(200, "first");
      ::send(fd, answer.data(), answer.size(), MSG_NOSIGNAL);
      ReadRequest(fd, buffer);  // the second request arrives ... and the member hangs up
      ::shutdown(fd, SHUT_RDWR);
      return;
    }
    Echo(fd, connection);
  });
  const std::string other = ClosedPort();
  Make();
  // The second request starts as soon as the first is answered, on the same connection.
  on_outcome_ = [&](uint64_t token) {
    if (token == 1) Start(2, "/kvs/keys/b", {member.name(), other});
  };
  Start(1, "/kvs/keys/a", {member.name(), other});
  RunUntil(2);
  EXPECT_EQ(outcomes_.at(1).body, "first");
  EXPECT_EQ(outcomes_.at(2).status, 200);
  EXPECT_EQ(outcomes_.at(2).member, member.name());
  EXPECT_EQ(outcomes_.at(2).body, "PUT /kvs/keys/b HTTP/1.1|1|");
  EXPECT_EQ(member.connections(), 2);
}

// More reads at once than connections per member: they are pipelined, and every answer goes
// back to its own request.
TEST_F(ForwarderTest, ManyReadsAtOnceArePipelinedAndEachGetsItsOwnAnswer) {
  FakeMember member(Echo);
  Make();
  constexpr int kRequests = 40;
  std::vector<std::string> targets;
  for (int i = 0; i < kRequests; ++i) targets.push_back("/kvs/keys/k" + std::to_string(i));
  for (int i = 0; i < kRequests; ++i) {
    Start(static_cast<uint64_t>(i), targets[i], {member.name()}, "", "GET");
  }
  RunUntil(kRequests);
  for (int i = 0; i < kRequests; ++i) {
    EXPECT_EQ(outcomes_.at(static_cast<uint64_t>(i)).body, "GET " + targets[i] + " HTTP/1.1|1|");
  }
  EXPECT_LE(member.connections(), 4);
}

// Reads for one member queued in one event batch leave together on one connection (one send,
// one read of the answers) instead of taking a connection each.
TEST_F(ForwarderTest, ReadsQueuedInOneBatchShareAConnection) {
  FakeMember member(Echo);
  Make();
  Start(0, "/kvs/keys/first", {member.name()}, "", "GET");
  RunUntil(1);  // one connection, made and idle
  constexpr int kBatch = 5;
  for (int i = 1; i <= kBatch; ++i) {
    Start(static_cast<uint64_t>(i), "/kvs/keys/k" + std::to_string(i), {member.name()}, "", "GET");
  }
  RunUntil(1 + kBatch);
  for (int i = 1; i <= kBatch; ++i) {
    EXPECT_EQ(outcomes_.at(static_cast<uint64_t>(i)).body,
              "GET /kvs/keys/k" + std::to_string(i) + " HTTP/1.1|1|");
  }
  EXPECT_EQ(member.connections(), 1);
}

// A read does not join a write queued in the same batch: the write keeps its connection alone.
TEST_F(ForwarderTest, AReadDoesNotJoinAQueuedWrite) {
  FakeMember member(Echo);
  Make();
  Start(0, "/kvs/keys/first", {member.name()}, "", "GET");
  RunUntil(1);
  Start(1, "/kvs/keys/w", {member.name()}, "v");  // takes the idle connection
  Start(2, "/kvs/keys/r", {member.name()}, "", "GET");
  RunUntil(3);
  EXPECT_EQ(outcomes_.at(1).body, "PUT /kvs/keys/w HTTP/1.1|1|v");
  EXPECT_EQ(outcomes_.at(2).body, "GET /kvs/keys/r HTTP/1.1|1|");
  EXPECT_EQ(member.connections(), 2);
}

// Writes are never queued behind another request: each one in flight has a connection of its
// own (held up behind a read that waits at the member, a write could take effect after its
// client gave up on it).
TEST_F(ForwarderTest, WritesInFlightTogetherEachHaveTheirOwnConnection) {
  FakeMember member(Echo);
  Make();
  constexpr int kRequests = 12;
  for (int i = 0; i < kRequests; ++i) {
    Start(static_cast<uint64_t>(i), "/kvs/keys/w" + std::to_string(i), {member.name()}, "v");
  }
  RunUntil(kRequests);
  for (int i = 0; i < kRequests; ++i) {
    EXPECT_EQ(outcomes_.at(static_cast<uint64_t>(i)).body,
              "PUT /kvs/keys/w" + std::to_string(i) + " HTTP/1.1|1|v");
  }
  EXPECT_EQ(member.connections(), kRequests);
}

// "localhost:<port>" of a member listening on 127.0.0.1.
std::string NamedAfter(const FakeMember& member) {
  return "localhost:" + member.name().substr(member.name().rfind(':') + 1);
}

TEST_F(ForwarderTest, AMemberNamedByAHostNameIsReachedOnceTheResolverHasIt) {
  FakeMember member(Echo);
  const std::string named = NamedAfter(member);
  ForwardPlan plan;
  plan.members = {named};
  Make();  // no resolver: numeric addresses only
  EXPECT_FALSE(forwarder_->Addressable(named));
  EXPECT_FALSE(forwarder_->Reachable(plan));
  EXPECT_TRUE(forwarder_->Addressable(member.name()));

  net::Resolver resolver;
  ForwarderOptions options;
  options.resolver = &resolver;
  Make(options);
  EXPECT_TRUE(forwarder_->Addressable(named));  // and its lookup has started
  StartWhenReachable(1, "/kvs/keys/a", {named}, "v");
  RunUntil(1);
  Start(2, "/kvs/keys/b", {named}, "", "GET");
  RunUntil(2);
  EXPECT_EQ(outcomes_.at(1).status, 200) << outcomes_.at(1).error;
  EXPECT_EQ(outcomes_.at(1).member, named);
  EXPECT_EQ(outcomes_.at(1).body, "PUT /kvs/keys/a HTTP/1.1|1|v");
  EXPECT_EQ(outcomes_.at(2).body, "GET /kvs/keys/b HTTP/1.1|1|");
  EXPECT_EQ(member.connections(), 1);  // the first one's connection, kept alive for the second
}

TEST_F(ForwarderTest, ANameThatCannotBeResolvedFailsOverToTheNextMember) {
  FakeMember member(Echo);
  net::Resolver resolver;
  ForwarderOptions options;
  options.resolver = &resolver;
  Make(options);
  const std::string bad = "bad..name:8090";
  // (Resolving may already be over here: such a name fails without asking a server.)
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (forwarder_->Resolving(bad) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(1ms);
  }
  ASSERT_EQ(resolver.Lookup(bad).state, net::Resolver::State::kFailed);
  ForwardPlan plan;
  plan.members = {bad, member.name()};
  EXPECT_FALSE(forwarder_->Reachable(plan));  // a client request would take a worker
  // Started anyway (as a broadcast is): the name fails, the next member answers.
  Request request;
  request.method = "PUT";
  request.target = "/kvs/keys/a";
  request.body = "v";
  forwarder_->Start(1, request, plan);
  plan.members = {bad};
  forwarder_->Start(2, request, plan);
  RunUntil(2);
  EXPECT_EQ(outcomes_.at(1).status, 200) << outcomes_.at(1).error;
  EXPECT_EQ(outcomes_.at(1).member, member.name());
  EXPECT_EQ(outcomes_.at(2).status, 0);
  EXPECT_NE(outcomes_.at(2).error.find("bad..name:8090: cannot resolve bad..name: "),
            std::string::npos)
      << outcomes_.at(2).error;
}

// A member speaking TLS with `cert`/`key` that answers like Echo (blocking OpenSSL, one thread
// per connection).
FakeMember::Script TlsEcho(SSL_CTX* ctx) {
  return [ctx](int fd, int) {
    SSL* ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    if (SSL_accept(ssl) == 1) {
      std::string buffer;
      while (true) {
        const size_t end = buffer.find("\r\n\r\n");
        if (end != std::string::npos) {
          const size_t at = buffer.find("Content-Length: ");
          const size_t length = at < end ? std::stoul(buffer.substr(at + 16)) : 0;
          if (buffer.size() >= end + 4 + length) {
            const std::string line = buffer.substr(0, buffer.find("\r\n"));
            const std::string answer = Answer(200, line + "|tls|" + buffer.substr(end + 4, length));
            buffer.erase(0, end + 4 + length);
            if (SSL_write(ssl, answer.data(), static_cast<int>(answer.size())) <= 0) break;
            continue;
          }
        }
        char chunk[4096];
        const int n = SSL_read(ssl, chunk, sizeof chunk);
        if (n <= 0) break;
        buffer.append(chunk, static_cast<size_t>(n));
      }
    }
    SSL_free(ssl);
  };
}

class ForwarderTlsTest : public ForwarderTest {
 protected:
  void SetUp() override {
    ForwarderTest::SetUp();
    dir_ = std::filesystem::temp_directory_path() /
           ("kvs-forwarder-tls-" + std::to_string(::getpid()));
    std::string error;
    ASSERT_TRUE(http_test::MakeTestPki(dir_, &pki_, &error)) << error;
    net::TlsOptions options;
    options.cert = pki_.cert;
    options.key = pki_.key;
    options.ca = pki_.ca;
    tls_ = net::Tls::Create(options, error);
    ASSERT_TRUE(tls_) << error;
  }
  void TearDown() override {
    ForwarderTest::TearDown();
    for (SSL_CTX* ctx : contexts_) SSL_CTX_free(ctx);
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  SSL_CTX* ServerContext(const std::string& cert, const std::string& key) {
    SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
    EXPECT_EQ(SSL_CTX_use_certificate_chain_file(ctx, cert.c_str()), 1);
    EXPECT_EQ(SSL_CTX_use_PrivateKey_file(ctx, key.c_str(), SSL_FILETYPE_PEM), 1);
    contexts_.push_back(ctx);
    return ctx;
  }
  void MakeTls() {
    ForwarderOptions options;
    options.tls = tls_.get();
    Make(options);
  }

  std::filesystem::path dir_;
  http_test::TestPki pki_;
  std::unique_ptr<net::Tls> tls_;
  std::vector<SSL_CTX*> contexts_;
};

TEST_F(ForwarderTlsTest, RelaysOverTlsToAMemberTheCaVouchesFor) {
  FakeMember member(TlsEcho(ServerContext(pki_.cert, pki_.key)));
  MakeTls();
  Start(1, "/kvs/keys/a", {member.name()}, "v");
  Start(2, "/kvs/keys/b", {member.name()}, "", "GET");
  RunUntil(2);
  EXPECT_EQ(outcomes_.at(1).status, 200) << outcomes_.at(1).error;
  EXPECT_EQ(outcomes_.at(1).body, "PUT /kvs/keys/a HTTP/1.1|tls|v");
  EXPECT_EQ(outcomes_.at(2).body, "GET /kvs/keys/b HTTP/1.1|tls|");
}

TEST_F(ForwarderTlsTest, MemberOfAnotherCaOrNameIsATlsFailureAndTheNextAnswers) {
  FakeMember rogue(TlsEcho(ServerContext(pki_.rogue_cert, pki_.rogue_key)));
  FakeMember misnamed(TlsEcho(ServerContext(pki_.misnamed_cert, pki_.misnamed_key)));
  FakeMember good(TlsEcho(ServerContext(pki_.cert, pki_.key)));
  MakeTls();
  Start(1, "/kvs/keys/a", {rogue.name(), good.name()});
  Start(2, "/kvs/keys/b", {rogue.name()});
  Start(3, "/kvs/keys/c", {misnamed.name()});
  RunUntil(3);
  EXPECT_EQ(outcomes_.at(1).status, 200) << outcomes_.at(1).error;
  EXPECT_EQ(outcomes_.at(1).member, good.name());
  for (uint64_t token : {2u, 3u}) {
    const Forwarder::Outcome& outcome = outcomes_.at(token);
    EXPECT_EQ(outcome.status, 0);
    EXPECT_EQ(outcome.failure, net::CallFailure::kTls);
    EXPECT_NE(outcome.error.find("TLS handshake failed"), std::string::npos) << outcome.error;
    EXPECT_NE(outcome.error.find("certificate"), std::string::npos) << outcome.error;
  }
}

// A member reached by host name must show a certificate for that name (the test PKI's node
// certificate names localhost; the misnamed one does not).
TEST_F(ForwarderTlsTest, ANamedMembersCertificateMustNameItsHostName) {
  FakeMember good(TlsEcho(ServerContext(pki_.cert, pki_.key)));
  FakeMember misnamed(TlsEcho(ServerContext(pki_.misnamed_cert, pki_.misnamed_key)));
  net::Resolver resolver;
  ForwarderOptions options;
  options.tls = tls_.get();
  options.resolver = &resolver;
  Make(options);
  StartWhenReachable(1, "/kvs/keys/a", {NamedAfter(good)}, "v");
  StartWhenReachable(2, "/kvs/keys/b", {NamedAfter(misnamed)}, "v");
  RunUntil(2);
  EXPECT_EQ(outcomes_.at(1).status, 200) << outcomes_.at(1).error;
  EXPECT_EQ(outcomes_.at(1).body, "PUT /kvs/keys/a HTTP/1.1|tls|v");
  EXPECT_EQ(outcomes_.at(2).status, 0);
  EXPECT_EQ(outcomes_.at(2).failure, net::CallFailure::kTls);
  EXPECT_NE(outcomes_.at(2).error.find("certificate"), std::string::npos) << outcomes_.at(2).error;
}

// A member that never completes the handshake (here: one speaking plain HTTP, waiting for a
// request that never comes) is given up on after the handshake's deadline.
TEST_F(ForwarderTlsTest, HandshakeThatNeverEndsTimesOut) {
  std::atomic<bool> done{false};
  FakeMember plain([&](int fd, int) {
    char byte;
    while (!done.load() && ::recv(fd, &byte, 1, 0) > 0) {
    }
  });
  MakeTls();
  Start(1, "/kvs/keys/a", {plain.name()});
  RunUntil(1);
  EXPECT_EQ(outcomes_.at(1).status, 0);
  EXPECT_EQ(outcomes_.at(1).failure, net::CallFailure::kTimeout);
  EXPECT_NE(outcomes_.at(1).error.find("TLS handshake timed out"), std::string::npos)
      << outcomes_.at(1).error;
  done = true;
}

}  // namespace
}  // namespace kvs::api
