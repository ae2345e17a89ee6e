#include "server_process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "http_client.h"

#ifndef KVS_SERVER_BIN
#error "KVS_SERVER_BIN must name the kvs-server binary"
#endif

namespace kvs::http_test {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

constexpr milliseconds kPollInterval{20};
constexpr milliseconds kStopGrace{5000};

// A peer that closes early must not kill the test process with SIGPIPE; the child gets the
// default disposition back before execve.
const bool kSigpipeIgnored = [] { return ::signal(SIGPIPE, SIG_IGN) != SIG_ERR; }();

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

int OpenForChild(const std::filesystem::path& path, int flags) {
  return ::open(path.c_str(), flags | O_CLOEXEC, 0600);
}

std::filesystem::path MakeWorkDir() {
  std::string pattern = (std::filesystem::temp_directory_path() / "kvs-http-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) {
    throw std::runtime_error(std::string("mkdtemp: ") + std::strerror(errno));
  }
  return pattern;
}

// Gives the child the project's config file, if there is one, at the relative path the server
// looks for by default, so that relative paths in it (e.g. the data dir) land in `work_dir`.
void CopyProjectConfig(const std::filesystem::path& work_dir) {
#ifdef KVS_SOURCE_DIR
  const std::filesystem::path source = std::filesystem::path(KVS_SOURCE_DIR) / "config";
  std::error_code ignored;
  if (std::filesystem::is_regular_file(source / "kvs.properties", ignored)) {
    std::filesystem::create_directories(work_dir / "config", ignored);
    std::filesystem::copy_file(source / "kvs.properties", work_dir / "config" / "kvs.properties",
                               ignored);
  }
#else
  (void)work_dir;
#endif
}

// Runs in the forked child: only async-signal-safe calls until execve.
[[noreturn]] void ExecChild(pid_t parent, const char* dir, int in_fd, int out_fd, int err_fd,
                            char* const argv[], char* const envp[]) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) ::_exit(127);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  ::signal(SIGPIPE, SIG_DFL);
  if (::chdir(dir) != 0 || ::dup2(in_fd, 0) < 0 || ::dup2(out_fd, 1) < 0 || ::dup2(err_fd, 2) < 0) {
    ::_exit(127);
  }
  // Sockets the test process holds must not stay open inside the server.
  if (::close_range(3, ~0U, 0) != 0) {
    for (int fd = 3; fd < 1024; ++fd) ::close(fd);
  }
  ::execve(argv[0], argv, envp);
  static constexpr char kMessage[] = "execve of kvs-server failed\n";
  [[maybe_unused]] ssize_t ignored = ::write(2, kMessage, sizeof(kMessage) - 1);
  ::_exit(127);
}

}  // namespace

bool MakeTestPki(const std::filesystem::path& dir, TestPki* pki, std::string* error) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    *error = "mkdir " + dir.string() + ": " + ec.message();
    return false;
  }
  const std::string d = dir.string();
  // P-256 keys: fast to make. Quiet unless it fails (then the log is shown).
  const std::string script =
      "set -e; cd '" + d +
      "'; exec >openssl.log 2>&1\n"
      "key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out \"$1\"; }\n"
      "ca() { key $1.key; openssl req -x509 -new -key $1.key -out $1.pem -days 2 "
      "-subj \"/CN=$2\"; }\n"
      "leaf() { key $1.key; openssl req -new -key $1.key -out $1.csr -subj \"/CN=$1\";"
      " printf 'subjectAltName=%s\\nextendedKeyUsage=serverAuth,clientAuth\\n' \"$3\" >$1.ext;"
      " openssl x509 -req -in $1.csr -CA $2.pem -CAkey $2.key -CAcreateserial -out $1.pem"
      " -days 2 -extfile $1.ext; }\n"
      "ca ca 'kvs test CA'; ca rogue-ca 'another CA'\n"
      "leaf node ca 'IP:127.0.0.1,DNS:localhost'\n"
      "leaf rogue rogue-ca 'IP:127.0.0.1,DNS:localhost'\n"
      "leaf misnamed ca 'DNS:elsewhere.invalid'\n";
  const std::filesystem::path script_path = dir / "make-pki.sh";
  {
    std::FILE* f = std::fopen(script_path.c_str(), "w");
    if (f == nullptr) {
      *error = "cannot write " + script_path.string();
      return false;
    }
    std::fputs(script.c_str(), f);
    std::fclose(f);
  }
  if (std::system(("bash '" + script_path.string() + "'").c_str()) != 0) {
    std::string log;
    if (std::FILE* f = std::fopen((dir / "openssl.log").c_str(), "r")) {
      char buffer[4096];
      const size_t n = std::fread(buffer, 1, sizeof buffer, f);
      log.assign(buffer, n);
      std::fclose(f);
    }
    *error = "openssl could not make the test PKI in " + d + ": " + log;
    return false;
  }
  auto path = [&](const char* name) { return (dir / name).string(); };
  *pki = TestPki{path("ca.pem"),    path("node.pem"),  path("node.key"),     path("rogue-ca.pem"),
                 path("rogue.pem"), path("rogue.key"), path("misnamed.pem"), path("misnamed.key")};
  return true;
}

namespace {

// The secure suite's PKI: made once per test process, removed at its exit.
struct SuitePki {
  SuitePki() {
    char dir_template[] = "/tmp/kvs-test-pki-XXXXXX";
    if (::mkdtemp(dir_template) == nullptr) {
      error = "mkdtemp failed";
      return;
    }
    dir = dir_template;
    // The harness' client checks no names: the cluster tests' nodes are on 10.201.x.y, which
    // the certificate does not name (the nodes' own checks of each other are tls_test's).
    if (MakeTestPki(dir, &pki, &error)) SetClientTls(pki.ca, "", "", /*check_name=*/false);
  }
  ~SuitePki() {
    std::error_code ec;
    if (!dir.empty()) std::filesystem::remove_all(dir, ec);
  }
  std::filesystem::path dir;
  TestPki pki;
  std::string error;
};

// KVS_TEST_SECURE: "1" = secret and token, "tls" = and TLS; anything else = off.
std::string_view SecureMode() {
  const char* value = std::getenv("KVS_TEST_SECURE");
  const std::string_view mode = value == nullptr ? "" : value;
  return mode == "1" || mode == "tls" ? mode : "";
}

}  // namespace

std::string SecureSuiteCa() {
  for (const auto& [name, value] : SecureSuiteEnv()) {
    if (name == "KVS_TLS_CA") return value;
  }
  return "";
}

EnvList SecureSuiteEnv() {
  if (SecureMode().empty()) return {};
  EnvList env = {{"KVS_CLUSTER_SECRET", "secure-suite-secret-5b1f"},
                 {"KVS_ADMIN_TOKEN", SecureSuiteAdminToken()}};
  if (SecureMode() == "tls") {
    static SuitePki suite;
    if (!suite.error.empty()) {
      ADD_FAILURE() << "secure suite with TLS: " << suite.error;
      return env;
    }
    env.push_back({"KVS_TLS_CERT", suite.pki.cert});
    env.push_back({"KVS_TLS_KEY", suite.pki.key});
    env.push_back({"KVS_TLS_CA", suite.pki.ca});
  }
  return env;
}

std::string SecureSuiteAdminToken() {
  return SecureMode().empty() ? "" : "secure-suite-token-9c2e";
}

uint16_t FreeLoopbackPort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw std::runtime_error("socket failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(fd);
    throw std::runtime_error("bind to 127.0.0.1:0 failed");
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

std::string LoopbackAddress(uint16_t port) { return "127.0.0.1:" + std::to_string(port); }

std::unique_ptr<ServerProcess> ServerProcess::Spawn(const ServerCommand& command,
                                                    std::string* error) {
  std::filesystem::path work_dir;
  try {
    work_dir = MakeWorkDir();
  } catch (const std::exception& e) {
    *error = e.what();
    return nullptr;
  }
  CopyProjectConfig(work_dir);

  // Everything the child needs is built before fork().
  std::vector<std::string> arg_strings{KVS_SERVER_BIN};
  arg_strings.insert(arg_strings.end(), command.args.begin(), command.args.end());
  std::vector<std::string> env_strings{"PATH=/usr/local/bin:/usr/bin:/bin"};
  // The suite runs once per HTTP front end (tests/http/CMakeLists.txt sets this).
  if (const char* frontend = std::getenv("KVS_HTTP_FRONTEND")) {
    env_strings.push_back(std::string("KVS_HTTP_FRONTEND=") + frontend);
  }
  // A sanitizer build's settings (tests/run.sh: where reports go) reach the server too.
  for (const char* name : kInheritedEnv) {
    if (const char* value = std::getenv(name))
      env_strings.push_back(std::string(name) + "=" + value);
  }
  // The credentials of a secure.* run, unless the test sets its own.
  for (const auto& [name, value] : SecureSuiteEnv()) {
    const bool overridden =
        std::any_of(command.env.begin(), command.env.end(),
                    [&name = name](const auto& entry) { return entry.first == name; });
    if (!overridden) env_strings.push_back(name + "=" + value);
  }
  for (const auto& [name, value] : command.env) env_strings.push_back(name + "=" + value);
  std::vector<char*> argv;
  for (auto& s : arg_strings) argv.push_back(s.data());
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  const std::string dir = work_dir.string();

  const int in_fd = OpenForChild("/dev/null", O_RDONLY);
  const int out_fd = OpenForChild(work_dir / "stdout.log", O_WRONLY | O_CREAT | O_TRUNC);
  const int err_fd = OpenForChild(work_dir / "stderr.log", O_WRONLY | O_CREAT | O_TRUNC);
  const auto close_fds = [&] {
    for (int fd : {in_fd, out_fd, err_fd}) {
      if (fd >= 0) ::close(fd);
    }
  };
  if (in_fd < 0 || out_fd < 0 || err_fd < 0) {
    *error = std::string("cannot open capture files: ") + std::strerror(errno);
    close_fds();
    std::filesystem::remove_all(work_dir);
    return nullptr;
  }

  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid == 0) ExecChild(parent, dir.c_str(), in_fd, out_fd, err_fd, argv.data(), envp.data());
  close_fds();
  if (pid < 0) {
    *error = std::string("fork: ") + std::strerror(errno);
    std::filesystem::remove_all(work_dir);
    return nullptr;
  }
  return std::unique_ptr<ServerProcess>(new ServerProcess(pid, std::move(work_dir)));
}

ServerProcess::ServerProcess(pid_t pid, std::filesystem::path work_dir)
    : pid_(pid), work_dir_(std::move(work_dir)) {}

ServerProcess::~ServerProcess() {
  Stop();
  std::error_code ignored;
  std::filesystem::remove_all(work_dir_, ignored);
}

::testing::AssertionResult ServerProcess::WaitUntilHealthy(milliseconds deadline) {
  const auto give_up = steady_clock::now() + deadline;
  HttpResponse last;
  while (steady_clock::now() < give_up) {
    if (auto status = WaitForExit(milliseconds(0))) {
      return ::testing::AssertionFailure()
             << "kvs-server " << DescribeWaitStatus(*status) << " before serving; stderr:\n"
             << Stderr();
    }
    last = SendRequest(port_, "GET", "/health", std::nullopt, milliseconds(1000));
    if (last.status == 200) return ::testing::AssertionSuccess();
    std::this_thread::sleep_for(kPollInterval);
  }
  return ::testing::AssertionFailure()
         << "kvs-server not healthy on port " << port_ << " after " << deadline.count()
         << " ms; last answer: " << Describe(last) << "\nstderr:\n"
         << Stderr();
}

std::optional<int> ServerProcess::WaitForExit(milliseconds timeout) {
  if (wait_status_) return wait_status_;
  const auto give_up = steady_clock::now() + timeout;
  while (true) {
    int status = 0;
    const pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_ || (r < 0 && errno == ECHILD)) {
      wait_status_ = (r == pid_) ? status : -1;
      return wait_status_;
    }
    if (steady_clock::now() >= give_up) return std::nullopt;
    std::this_thread::sleep_for(milliseconds(10));
  }
}

std::optional<int> ServerProcess::SignalAndWait(int signal, milliseconds timeout) {
  if (wait_status_) return wait_status_;
  ::kill(pid_, signal);
  return WaitForExit(timeout);
}

int ServerProcess::Stop() {
  if (auto status = SignalAndWait(SIGTERM, kStopGrace)) return *status;
  ::kill(pid_, SIGKILL);
  int status = 0;
  while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  wait_status_ = status;
  return status;
}

std::string ServerProcess::Stderr() const { return ReadFile(work_dir_ / "stderr.log"); }
std::string ServerProcess::Stdout() const { return ReadFile(work_dir_ / "stdout.log"); }

std::string DescribeWaitStatus(int wait_status) {
  if (wait_status == -1) return "was already reaped";
  if (WIFEXITED(wait_status))
    return "exited with status " + std::to_string(WEXITSTATUS(wait_status));
  if (WIFSIGNALED(wait_status))
    return "was killed by signal " + std::to_string(WTERMSIG(wait_status));
  return "ended with wait status " + std::to_string(wait_status);
}

EnvList SingleNodeEnv(uint16_t port, const EnvList& extra) {
  const std::string self = LoopbackAddress(port);
  EnvList env{{"SOCKET_ADDRESS", self},
              {"VIEW", self},
              {"SHARD_COUNT", "1"},
              {"KVS_HTTP_BIND", "127.0.0.1"}};
  env.insert(env.end(), extra.begin(), extra.end());
  return env;
}

std::unique_ptr<ServerProcess> StartSingleNode(const EnvList& extra_env,
                                               const std::vector<std::string>& args,
                                               std::string* error) {
  const uint16_t port = FreeLoopbackPort();
  auto server = ServerProcess::Spawn({SingleNodeEnv(port, extra_env), args}, error);
  if (server == nullptr) return nullptr;
  server->set_port(port);
  if (auto healthy = server->WaitUntilHealthy(milliseconds(10000)); !healthy) {
    *error = healthy.message();
    return nullptr;
  }
  return server;
}

}  // namespace kvs::http_test
