// SPEC §1 start-up: bad input makes the process exit non-zero with one line on stderr; a
// single-node store runs with a warning; CLI overrides env; SPEC §5 graceful shutdown.
#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <ostream>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "http_client.h"
#include "server_process.h"

namespace kvs::http_test {
namespace {

using std::chrono::milliseconds;

constexpr milliseconds kExitDeadline{5000};
constexpr milliseconds kHealthyDeadline{10000};

// Placeholders in StartupCase::env values.
constexpr char kSelf[] = "$SELF";
constexpr char kPeer1[] = "$PEER1";
constexpr char kPeer2[] = "$PEER2";

struct StartupCase {
  std::string name;
  EnvList env;                        // Values may hold the placeholders above.
  std::vector<std::string> mentions;  // stderr must mention at least one.
};

void PrintTo(const StartupCase& c, std::ostream* out) { *out << c.name; }

std::string Substitute(std::string text, const std::string& from, const std::string& to) {
  for (size_t pos = text.find(from); pos != std::string::npos; pos = text.find(from, pos)) {
    text.replace(pos, from.size(), to);
    pos += to.size();
  }
  return text;
}

class StartupValidationTest : public ::testing::TestWithParam<StartupCase> {};

TEST_P(StartupValidationTest, ExitsNonZeroWithOneLineOnStderr) {
  const std::string self = LoopbackAddress(FreeLoopbackPort());
  const std::string peer1 = LoopbackAddress(FreeLoopbackPort());
  const std::string peer2 = LoopbackAddress(FreeLoopbackPort());
  EnvList env;
  for (const auto& [name, value] : GetParam().env) {
    env.emplace_back(
        name, Substitute(Substitute(Substitute(value, kSelf, self), kPeer1, peer1), kPeer2, peer2));
  }
  std::string error;
  auto server = ServerProcess::Spawn({env, {}}, &error);
  ASSERT_NE(server, nullptr) << error;

  const auto status = server->WaitForExit(kExitDeadline);
  ASSERT_TRUE(status.has_value()) << "still running after " << kExitDeadline.count()
                                  << " ms; stderr:\n"
                                  << server->Stderr();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) != 0)
      << "expected a non-zero exit, but it " << DescribeWaitStatus(*status);

  std::string line = server->Stderr();
  if (!line.empty() && line.back() == '\n') line.pop_back();
  EXPECT_FALSE(line.empty()) << "nothing on stderr";
  EXPECT_EQ(line.find('\n'), std::string::npos) << "stderr is not one line:\n" << line;
  const auto& mentions = GetParam().mentions;
  EXPECT_TRUE(
      std::any_of(mentions.begin(), mentions.end(),
                  [&](const std::string& name) { return line.find(name) != std::string::npos; }))
      << "stderr does not name " << ::testing::PrintToString(mentions) << ":\n"
      << line;
}

// `env` plus the loopback bind every test server uses.
EnvList With(EnvList env) {
  env.emplace_back("KVS_HTTP_BIND", "127.0.0.1");
  return env;
}

INSTANTIATE_TEST_SUITE_P(
    BadInput, StartupValidationTest,
    ::testing::Values(
        StartupCase{"SocketAddressNonsense",
                    With({{"SOCKET_ADDRESS", "nonsense"}, {"VIEW", kSelf}, {"SHARD_COUNT", "1"}}),
                    {"SOCKET_ADDRESS"}},
        StartupCase{
            "SocketAddressPortOutOfRange",
            With({{"SOCKET_ADDRESS", "1.2.3.4:99999"}, {"VIEW", kSelf}, {"SHARD_COUNT", "1"}}),
            {"SOCKET_ADDRESS"}},
        StartupCase{"ShardCountZero",
                    With({{"SOCKET_ADDRESS", kSelf}, {"VIEW", kSelf}, {"SHARD_COUNT", "0"}}),
                    {"SHARD_COUNT"}},
        StartupCase{"ShardCountNegative",
                    With({{"SOCKET_ADDRESS", kSelf}, {"VIEW", kSelf}, {"SHARD_COUNT", "-1"}}),
                    {"SHARD_COUNT"}},
        StartupCase{"ShardCountNotANumber",
                    With({{"SOCKET_ADDRESS", kSelf}, {"VIEW", kSelf}, {"SHARD_COUNT", "abc"}}),
                    {"SHARD_COUNT"}},
        StartupCase{"ViewTooSmallForShardCount",
                    With({{"SOCKET_ADDRESS", kSelf},
                          {"VIEW", std::string(kSelf) + "," + kPeer1 + "," + kPeer2},
                          {"SHARD_COUNT", "2"}}),
                    {"VIEW", "SHARD_COUNT"}},
        StartupCase{"OwnAddressNotInView",
                    With({{"SOCKET_ADDRESS", kSelf},
                          {"VIEW", std::string(kPeer1) + "," + kPeer2},
                          {"SHARD_COUNT", "1"}}),
                    {"VIEW", "SOCKET_ADDRESS"}},
        StartupCase{"MalformedViewEntry",
                    With({{"SOCKET_ADDRESS", kSelf},
                          {"VIEW", std::string(kSelf) + ",garbage"},
                          {"SHARD_COUNT", "1"}}),
                    {"VIEW"}},
        StartupCase{"MissingSocketAddress",
                    With({{"VIEW", kSelf}, {"SHARD_COUNT", "1"}}),
                    {"SOCKET_ADDRESS"}},
        StartupCase{
            "MissingView", With({{"SOCKET_ADDRESS", kSelf}, {"SHARD_COUNT", "1"}}), {"VIEW"}}),
    [](const ::testing::TestParamInfo<StartupCase>& info) { return info.param.name; });

TEST(SingleNodeStartupTest, RunsAndWarnsItIsNotFaultTolerant) {
  std::string error;
  auto server = StartSingleNode({}, {}, &error);
  ASSERT_NE(server, nullptr) << error;
  EXPECT_EQ(SendRequest(server->port(), "GET", "/health").status, 200);
  // The warning is written at start-up; allow a moment for it to reach the file.
  const auto give_up = std::chrono::steady_clock::now() + milliseconds(2000);
  while (server->Stderr().find("fault-tolerant") == std::string::npos &&
         std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(milliseconds(20));
  }
  EXPECT_NE(server->Stderr().find("fault-tolerant"), std::string::npos) << "stderr:\n"
                                                                        << server->Stderr();
}

// The smallest pool POCO allows must still serve (a 1-thread pool once tripped an assertion).
TEST(SingleNodeStartupTest, ServesWithOneHttpThread) {
  std::string error;
  auto server = StartSingleNode({{"KVS_HTTP_THREADS", "1"}}, {}, &error);
  ASSERT_NE(server, nullptr) << error;
  EXPECT_EQ(SendRequest(server->port(), "PUT", "/key-value-store/k", PutBody("v")).status, 201);
  EXPECT_EQ(SendRequest(server->port(), "GET", "/key-value-store/k").status, 200);
}

TEST(NodeWithoutShardCountTest, IsNotInAnyShard) {
  const uint16_t port = FreeLoopbackPort();
  const std::string self = LoopbackAddress(port);
  std::string error;
  auto server = ServerProcess::Spawn(
      {{{"SOCKET_ADDRESS", self}, {"VIEW", self}, {"KVS_HTTP_BIND", "127.0.0.1"}}, {}}, &error);
  ASSERT_NE(server, nullptr) << error;
  server->set_port(port);
  ASSERT_TRUE(server->WaitUntilHealthy(kHealthyDeadline));
  EXPECT_TRUE(IsJson(SendRequest(port, "GET", "/key-value-store-shard/node-shard-id"), 404,
                     R"({"error":"Node is not a member of any shard","message":"Error in GET"})"));
}

TEST(ConfigOverrideTest, CommandLineOverridesEnvironment) {
  std::string error;
  auto server = StartSingleNode({{"KVS_LIMITS_MAX_VALUE_BYTES", "1024"}},
                                {"--kvs.limits.max_value_bytes=2048"}, &error);
  ASSERT_NE(server, nullptr) << error;
  std::string metadata;
  EXPECT_TRUE(IsJsonWithMetadata(
      SendRequest(server->port(), "PUT", "/key-value-store/cli", PutBody(std::string(1500, 'c'))),
      201, R"({"message":"Added successfully","shard-id":0})", &metadata));
  EXPECT_TRUE(IsJson(
      SendRequest(server->port(), "PUT", "/key-value-store/cli", PutBody(std::string(2049, 'c'))),
      413, R"({"error":"Request body too large","message":"Error in PUT"})"));
}

class GracefulShutdownTest : public ::testing::TestWithParam<int> {};

TEST_P(GracefulShutdownTest, SignalMakesItExitZero) {
  std::string error;
  auto server = StartSingleNode({}, {}, &error);
  ASSERT_NE(server, nullptr) << error;
  EXPECT_EQ(SendRequest(server->port(), "PUT", "/key-value-store/bye", PutBody("v")).status, 201);
  const auto status = server->SignalAndWait(GetParam(), kExitDeadline);
  ASSERT_TRUE(status.has_value()) << "still running " << kExitDeadline.count()
                                  << " ms after signal " << GetParam();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
      << "expected exit status 0, but it " << DescribeWaitStatus(*status) << "; stderr:\n"
      << server->Stderr();
}

TEST_P(GracefulShutdownTest, IdleKeepAliveConnectionDoesNotDelayExit) {
  std::string error;
  auto server = StartSingleNode({}, {}, &error);
  ASSERT_NE(server, nullptr) << error;
  HttpClient idle(server->port());
  ASSERT_EQ(idle.Send("GET", "/health").status, 200);
  const auto status = server->SignalAndWait(GetParam(), kExitDeadline);
  ASSERT_TRUE(status.has_value()) << "still running " << kExitDeadline.count()
                                  << " ms after signal " << GetParam()
                                  << " with an idle keep-alive connection open";
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
      << "expected exit status 0, but it " << DescribeWaitStatus(*status) << "; stderr:\n"
      << server->Stderr();
}

INSTANTIATE_TEST_SUITE_P(Signals, GracefulShutdownTest, ::testing::Values(SIGTERM, SIGINT),
                         [](const ::testing::TestParamInfo<int>& info) {
                           return std::string(info.param == SIGTERM ? "SIGTERM" : "SIGINT");
                         });

}  // namespace
}  // namespace kvs::http_test
