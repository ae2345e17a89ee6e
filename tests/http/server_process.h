// A kvs-server child process started with a controlled environment, owned RAII-style.
// Not thread-safe: one test thread owns each ServerProcess. The child never outlives its
// owner: the destructor stops it (SIGTERM, bounded wait, SIGKILL) and reaps it.
#ifndef KVS_TESTS_HTTP_SERVER_PROCESS_H_
#define KVS_TESTS_HTTP_SERVER_PROCESS_H_

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"

namespace kvs::http_test {

// Environment variables, in order; the child gets exactly these (plus PATH).
using EnvList = std::vector<std::pair<std::string, std::string>>;

// What to run: the kvs-server binary with `args` and `env`.
struct ServerCommand {
  EnvList env;
  std::vector<std::string> args;
};

// Variables of the test's own environment that every server it starts inherits: the
// sanitizers' settings (tests/run.sh: where reports go).
inline constexpr const char* kInheritedEnv[] = {"ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS",
                                                "TSAN_OPTIONS"};

// A throwaway PKI made at run time with the openssl command line: a CA, a certificate for
// 127.0.0.1 / localhost signed by it (server and client use), a certificate of another CA
// (rogue), and one of the right CA that names another host only (misnamed). PEM paths.
struct TestPki {
  std::string ca, cert, key;
  std::string rogue_ca, rogue_cert, rogue_key;
  std::string misnamed_cert, misnamed_key;
};
// Writes it under `dir` (created); false with `error` set when openssl failed.
bool MakeTestPki(const std::filesystem::path& dir, TestPki* pki, std::string* error);

// With KVS_TEST_SECURE=1 (or =tls) in the test's environment (the secure.* runs of the suites),
// every server gets these credentials (a test's own env entries of the same names win) and
// HttpClient sends the admin token: the whole suite then runs as an operator with both on
// would. Empty otherwise. With KVS_TEST_SECURE=tls, the servers also serve HTTPS only
// with a PKI made once per test process (MakeTestPki), talk to each other over TLS, and every
// client of the harness speaks HTTPS (SetClientTls).
EnvList SecureSuiteEnv();
// The CA of the KVS_TEST_SECURE=tls runs ("" otherwise).
std::string SecureSuiteCa();
// The admin token of the secure runs, "" when KVS_TEST_SECURE is not set.
std::string SecureSuiteAdminToken();

// Returns a TCP port on 127.0.0.1 that was free a moment ago (bind to port 0, then close).
uint16_t FreeLoopbackPort();

// "127.0.0.1:<port>".
std::string LoopbackAddress(uint16_t port);

class ServerProcess {
 public:
  // Starts the binary in a fresh temporary working directory with stdout and stderr captured
  // to files there. Returns nullptr and sets *error if the process could not be started.
  static std::unique_ptr<ServerProcess> Spawn(const ServerCommand& command, std::string* error);

  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;
  ~ServerProcess();

  pid_t pid() const { return pid_; }

  // The port it serves on, when known (set by whoever chose it).
  uint16_t port() const { return port_; }
  void set_port(uint16_t port) { port_ = port; }

  // Polls GET /health until it answers 200, the process exits, or `deadline` passes.
  ::testing::AssertionResult WaitUntilHealthy(std::chrono::milliseconds deadline);

  // Waits up to `timeout` for the process to exit. Returns the raw wait status, or nullopt if
  // it is still running.
  std::optional<int> WaitForExit(std::chrono::milliseconds timeout);

  // Sends `signal` and waits up to `timeout` for the exit; returns the raw wait status or
  // nullopt if it is still running (the caller may then Stop() it).
  std::optional<int> SignalAndWait(int signal, std::chrono::milliseconds timeout);

  // SIGTERM, wait up to 5 s, then SIGKILL; always reaps. Returns the raw wait status.
  // Idempotent.
  int Stop();

  // Everything the process has written to stderr / stdout so far.
  std::string Stderr() const;
  std::string Stdout() const;

 private:
  ServerProcess(pid_t pid, std::filesystem::path work_dir);

  pid_t pid_;
  std::filesystem::path work_dir_;
  uint16_t port_ = 0;
  std::optional<int> wait_status_;
};

// Describes a raw wait status, e.g. "exited with status 1" or "killed by signal 9".
std::string DescribeWaitStatus(int wait_status);

// The environment of a one-node, one-shard store on 127.0.0.1:`port`, followed by `extra`.
EnvList SingleNodeEnv(uint16_t port, const EnvList& extra = {});

// Starts a single-node store on a free loopback port and waits (10 s at most) until it is
// healthy. Returns nullptr and sets *error on failure (the process is then already stopped).
std::unique_ptr<ServerProcess> StartSingleNode(const EnvList& extra_env,
                                               const std::vector<std::string>& args,
                                               std::string* error);

// Fixture with one single-node server shared by every test of the suite. `Derived` may hide
// ExtraEnv() / Args() to tune the server.
template <class Derived>
class SharedServerTest : public ::testing::Test {
 protected:
  static EnvList ExtraEnv() { return {}; }
  static std::vector<std::string> Args() { return {}; }

  static void SetUpTestSuite() {
    start_error_.clear();
    server_ = StartSingleNode(Derived::ExtraEnv(), Derived::Args(), &start_error_);
  }
  static void TearDownTestSuite() { server_.reset(); }

  void SetUp() override { ASSERT_NE(server_, nullptr) << start_error_; }

  // Pins a server crash on the test that caused it.
  void TearDown() override {
    if (server_ == nullptr) return;
    if (const auto status = server_->WaitForExit(std::chrono::milliseconds(0))) {
      ADD_FAILURE() << "kvs-server " << DescribeWaitStatus(*status)
                    << " during this test; stderr:\n"
                    << server_->Stderr();
    }
  }

  static uint16_t port() { return server_->port(); }
  static std::string address() { return LoopbackAddress(server_->port()); }

  static inline std::unique_ptr<ServerProcess> server_;
  static inline std::string start_error_;
};

}  // namespace kvs::http_test

#endif  // KVS_TESTS_HTTP_SERVER_PROCESS_H_
