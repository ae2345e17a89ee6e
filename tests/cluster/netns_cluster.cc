#include "netns_cluster.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <thread>

#include "host_command.h"
#include "host_network.h"
#include "polling.h"

#ifndef KVS_SERVER_BIN
#error "KVS_SERVER_BIN must name the kvs-server binary"
#endif

namespace kvs::cluster_test {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

constexpr int kMaxClusterIndex = 250;
constexpr uint16_t kServerPort = 8080;
constexpr milliseconds kReapTimeout{10000};
constexpr milliseconds kHealProbe{300};
constexpr milliseconds kHealTimeout{10000};

// A fresh N per cluster in this process; the claim in Create() skips any N in use.
std::atomic<int> next_index{1};

// Waits (bounded) for child `pid` to exit and reaps it; returns the wait status or nullopt.
std::optional<int> ReapWithin(pid_t pid, milliseconds timeout) {
  const auto give_up = steady_clock::now() + timeout;
  while (true) {
    int status = 0;
    const pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) return status;
    if (r < 0 && errno != EINTR) return -1;  // Not our child (already reaped).
    if (steady_clock::now() >= give_up) return std::nullopt;
    std::this_thread::sleep_for(milliseconds(5));
  }
}

std::string Tail(const std::filesystem::path& path, size_t lines) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "(no " + path.filename().string() + ")\n";
  std::vector<std::string> all;
  for (std::string line; std::getline(in, line);) all.push_back(std::move(line));
  std::string out;
  for (size_t i = all.size() > lines ? all.size() - lines : 0; i < all.size(); ++i) {
    out += "    " + all[i] + "\n";
  }
  return out.empty() ? "    (empty)\n" : out;
}

}  // namespace

std::unique_ptr<NetnsCluster> NetnsCluster::Create(const ClusterOptions& options,
                                                   std::string* error) {
  if (options.nodes < 2 || options.nodes > 9) {
    *error = "ClusterOptions::nodes must be 2..9";
    return nullptr;
  }
  if (::geteuid() != 0) {
    *error = "the cluster harness needs root (network namespaces, bridges, iptables)";
    return nullptr;
  }
  if (::access(KVS_SERVER_BIN, X_OK) != 0) {
    *error = std::string("kvs-server binary not found: ") + KVS_SERVER_BIN;
    return nullptr;
  }
  if (const std::string removed = RemoveStaleResources(); !removed.empty()) {
    std::cerr << "[ HARNESS  ] removed what an earlier run left behind:\n" << removed;
  }

  // Claim an index N: create the bridge under a name only this process uses, mark it as ours,
  // then rename it to kvsbr<N>, which fails if another live run holds N.
  const std::string claim = ClaimName();
  if (LinkExists(claim)) RunCommand({"ip", "link", "del", claim});
  int index = 0;
  for (int attempt = 0; attempt < kMaxClusterIndex && index == 0; ++attempt) {
    const int candidate = (next_index.fetch_add(1) - 1) % kMaxClusterIndex + 1;
    std::string failed = Must({"ip", "link", "add", "name", claim, "type", "bridge"});
    if (failed.empty()) failed = Must({"ip", "link", "set", "dev", claim, "alias", OwnerTag()});
    if (!failed.empty()) {
      RunCommand({"ip", "link", "del", claim});
      *error = "cannot create a bridge: " + failed;
      return nullptr;
    }
    const std::string bridge = BridgeName(candidate);
    if (RunCommand({"ip", "link", "set", "dev", claim, "name", bridge}).ok()) {
      index = candidate;
    } else {
      RunCommand({"ip", "link", "del", claim});
    }
  }
  if (index == 0) {
    *error = "no free cluster index (every kvsbr1..kvsbr250 exists)";
    return nullptr;
  }

  std::unique_ptr<NetnsCluster> cluster(new NetnsCluster(index, options));
  if (std::string failed = cluster->BuildNetwork(); !failed.empty()) {
    *error = "network setup failed: " + failed;
    if (std::string left = cluster->Destroy(); !left.empty()) *error += "\nleft behind: " + left;
    return nullptr;
  }
  for (int i = 0; i < cluster->size(); ++i) {
    if (auto started = cluster->StartNode(i); !started) {
      *error = started.message();
      cluster->Destroy();
      return nullptr;
    }
  }
  // Nodes start concurrently (as in a deployment); then each must become ready: recovered
  // from its data directory and loaded from its peers (a test that cuts the network right
  // after start must not catch a node mid-bootstrap).
  for (int i = 0; i < cluster->size(); ++i) {
    if (auto healthy = cluster->WaitHealthy(i, options.start_timeout, /*ready=*/true); !healthy) {
      *error = std::string(healthy.message()) + "\n" + cluster->LogTails(30);
      cluster->Destroy();
      return nullptr;
    }
  }
  return cluster;
}

NetnsCluster::NetnsCluster(int index, ClusterOptions options)
    : index_(index), options_(std::move(options)) {
  log_dir_ = std::filesystem::temp_directory_path() /
             (OwnerTag() + "-" + std::to_string(index_) + "-logs");
  // Reserved once: AddNode must not move the nodes (endpoint() hands out references).
  nodes_.reserve(kMaxNodes);
  for (int i = 0; i < options_.nodes; ++i) nodes_.push_back(MakeNode(i));
}

NetnsCluster::~NetnsCluster() { Destroy(); }

NetnsCluster::Node NetnsCluster::MakeNode(int i) const {
  Node node;
  node.netns = NamespaceName(index_, i);
  node.host_veth = HostVethName(index_, i);
  node.endpoint =
      Endpoint{"10.201." + std::to_string(index_) + "." + std::to_string(i + 2), kServerPort};
  node.data_dir = log_dir_ / ("node" + std::to_string(i + 1) + "-data");
  return node;
}

std::string NetnsCluster::Bridge() const { return BridgeName(index_); }

std::string NetnsCluster::BuildNetwork() {
  const std::string bridge = Bridge();
  const std::string prefix = "10.201." + std::to_string(index_) + ".";
  const std::vector<std::vector<std::string>> commands = {
      {"ip", "addr", "add", prefix + "1/24", "dev", bridge},
      {"ip", "link", "set", "dev", bridge, "up"},
      ForwardRule(bridge, "-I"),
  };
  for (const auto& command : commands) {
    if (std::string failed = Must(command); !failed.empty()) return failed;
  }
  for (int i = 0; i < size(); ++i) {
    if (std::string failed = BuildNodeNetwork(i); !failed.empty()) return failed;
  }
  std::error_code ec;
  std::filesystem::remove_all(log_dir_, ec);
  std::filesystem::create_directories(log_dir_, ec);
  if (ec) return "cannot create " + log_dir_.string() + ": " + ec.message();
  return "";
}

std::string NetnsCluster::BuildNodeNetwork(int i) {
  const Node& node = nodes_.at(i);
  const std::vector<std::vector<std::string>> commands = {
      {"ip", "netns", "add", node.netns},
      {"ip", "link", "add", node.host_veth, "type", "veth", "peer", "name", "eth0", "netns",
       node.netns},
      {"ip", "link", "set", "dev", node.host_veth, "alias", OwnerTag(), "master", Bridge(), "up"},
      {"ip", "-n", node.netns, "addr", "add", node.endpoint.host + "/24", "dev", "eth0"},
      {"ip", "-n", node.netns, "link", "set", "dev", "eth0", "up"},
      {"ip", "-n", node.netns, "link", "set", "dev", "lo", "up"},
  };
  for (const auto& command : commands) {
    if (std::string failed = Must(command); !failed.empty()) return failed;
  }
  return "";
}

::testing::AssertionResult NetnsCluster::AddNode(const NodeStart& start, int* added) {
  if (destroyed_) return ::testing::AssertionFailure() << "the cluster is destroyed";
  if (size() >= kMaxNodes) {
    return ::testing::AssertionFailure() << "a cluster holds at most " << kMaxNodes << " nodes";
  }
  const int i = size();
  nodes_.push_back(MakeNode(i));  // Within the reserved capacity: nothing moves.
  nodes_.back().start = start;
  if (std::string failed = BuildNodeNetwork(i); !failed.empty()) {
    return ::testing::AssertionFailure()
           << "network setup of node " << i + 1 << " failed: " << failed;
  }
  if (auto started = StartNode(i); !started) return started;
  if (auto healthy = WaitHealthy(i, options_.start_timeout); !healthy) return healthy;
  *added = i;
  return ::testing::AssertionSuccess();
}

std::vector<std::string> NetnsCluster::addresses() const {
  std::vector<std::string> out;
  for (const Node& node : nodes_) out.push_back(node.endpoint.ToString());
  std::sort(out.begin(), out.end());
  return out;
}

::testing::AssertionResult NetnsCluster::StartNode(int i) {
  Node& node = nodes_.at(i);
  if (node.pid != 0) return ::testing::AssertionFailure() << "node " << i << " is running";
  ++node.runs;
  const std::filesystem::path dir =
      log_dir_ / ("node" + std::to_string(i + 1) + "-run" + std::to_string(node.runs));
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return ::testing::AssertionFailure() << "mkdir " << dir << ": " << ec.message();
  node.run_dirs.push_back(dir);
  // The server creates it if missing; made here so that a harness problem shows as such.
  std::filesystem::create_directories(node.data_dir, ec);
  if (ec) return ::testing::AssertionFailure() << "mkdir " << node.data_dir << ": " << ec.message();

  // Everything the child needs is built before fork().
  std::vector<std::string> env_strings = {
      "PATH=/usr/local/bin:/usr/bin:/bin",
      "SOCKET_ADDRESS=" + node.endpoint.ToString(),
      "VIEW=" + Join(addresses()),
      // Always explicit: the server's default is relative to its working directory, which is
      // new for every run (a restart would silently come back empty).
      "KVS_STORAGE_DIR=" + node.data_dir.string(),
  };
  if (node.start.with_shard_count) {
    env_strings.push_back("SHARD_COUNT=" + std::to_string(options_.shard_count));
  }
  // A sanitizer build's settings (tests/run.sh: where reports go) reach the nodes too, as do
  // the credentials of a secure run (extra_env below may replace them).
  for (const auto& [name, value] : http_test::SecureSuiteEnv()) {
    env_strings.push_back(name + "=" + value);
    // The test certificate names 127.0.0.1 and localhost, not the nodes' 10.201.x.y: any
    // certificate of the test CA will do between them.
    if (name == "KVS_TLS_CERT") env_strings.push_back("KVS_TLS_VERIFY_PEER_NAME=false");
  }
  for (const char* name : http_test::kInheritedEnv) {
    if (const char* value = std::getenv(name))
      env_strings.push_back(std::string(name) + "=" + value);
  }
  for (const EnvList* extra : {&options_.extra_env, &node.start.extra_env}) {
    for (const auto& [name, value] : *extra) {
      // A later setting replaces an earlier one (getenv would return the first).
      // (A named copy: clang 14 cannot capture a structured binding.)
      const std::string prefix = name + "=";
      std::erase_if(env_strings, [&](const std::string& s) { return s.starts_with(prefix); });
      env_strings.push_back(name + "=" + value);
    }
  }
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::string binary = KVS_SERVER_BIN;
  char* argv[] = {binary.data(), nullptr};
  const std::string dir_string = dir.string();
  const std::string netns_path = "/run/netns/" + node.netns;
  const int netns_fd = ::open(netns_path.c_str(), O_RDONLY | O_CLOEXEC);
  const int in_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  const int out_fd =
      ::open((dir / "stdout.log").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  const int err_fd =
      ::open((dir / "stderr.log").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  const auto close_fds = [&] {
    for (int fd : {netns_fd, in_fd, out_fd, err_fd}) {
      if (fd >= 0) ::close(fd);
    }
  };
  if (netns_fd < 0 || in_fd < 0 || out_fd < 0 || err_fd < 0) {
    const std::string why = std::strerror(errno);
    close_fds();
    return ::testing::AssertionFailure() << "cannot open " << netns_path << " or logs: " << why;
  }

  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid == 0) {
    // Only async-signal-safe calls until execve.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::signal(SIGPIPE, SIG_DFL);
    if (::setns(netns_fd, CLONE_NEWNET) != 0 || ::chdir(dir_string.c_str()) != 0 ||
        ::dup2(in_fd, 0) < 0 || ::dup2(out_fd, 1) < 0 || ::dup2(err_fd, 2) < 0) {
      ::_exit(126);
    }
    if (::close_range(3, ~0U, 0) != 0) {
      for (int fd = 3; fd < 1024; ++fd) ::close(fd);
    }
    ::execve(argv[0], argv, envp.data());
    ::_exit(127);
  }
  const int fork_errno = errno;
  close_fds();
  if (pid < 0) {
    return ::testing::AssertionFailure() << "fork: " << std::strerror(fork_errno);
  }
  node.pid = pid;
  node.expected = true;
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult NetnsCluster::WaitHealthy(int i, milliseconds timeout, bool ready) {
  Node& node = nodes_.at(i);
  HttpResponse last;
  std::string exited;
  const PollResult healthy = Eventually(
      [&] {
        if (node.pid == 0) return true;  // Reported below.
        if (auto status = ReapWithin(node.pid, milliseconds(0))) {
          exited = http_test::DescribeWaitStatus(*status);
          node.pid = 0;
          node.expected = false;
          return true;
        }
        last = Send(node.endpoint, "GET", "/health", std::nullopt, milliseconds(500));
        if (!ready) return last.status == 200;
        const std::optional<Health> health = ParseHealth(last);
        return health.has_value() && health->ready;
      },
      timeout, milliseconds(20));
  if (node.pid == 0) {
    return ::testing::AssertionFailure()
           << "node " << i + 1 << " (" << node.endpoint.ToString() << ") "
           << (exited.empty() ? "is not running" : exited) << " before serving; stderr:\n"
           << Tail(node.run_dirs.back() / "stderr.log", 30);
  }
  if (!healthy) {
    return ::testing::AssertionFailure()
           << "node " << i + 1 << " (" << node.endpoint.ToString() << ") not "
           << (ready ? "ready" : "healthy") << " after " << timeout.count()
           << " ms; last answer: " << http_test::Describe(last);
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult NetnsCluster::Isolate(int i) {
  Node& node = nodes_.at(i);
  if (std::string failed = Must({"ip", "link", "set", "dev", node.host_veth, "down"});
      !failed.empty()) {
    return ::testing::AssertionFailure() << failed;
  }
  node.isolated = true;
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult NetnsCluster::Heal(int i) {
  Node& node = nodes_.at(i);
  if (std::string failed = Must({"ip", "link", "set", "dev", node.host_veth, "up"});
      !failed.empty()) {
    return ::testing::AssertionFailure() << failed;
  }
  node.isolated = false;
  std::vector<std::pair<int, int>> paths = {{kHost, i}};
  for (int j = 0; j < size(); ++j) {
    if (j == i || nodes_[j].isolated) continue;
    paths.emplace_back(i, j);
    paths.emplace_back(j, i);
  }
  const PollResult open = Eventually(
      [&] {
        std::erase_if(paths, [&](const std::pair<int, int>& path) {
          return Probe(path.first, path.second, kHealProbe) != ProbeResult::kNoAnswer;
        });
        return paths.empty();
      },
      kHealTimeout, milliseconds(10));
  if (!open) {
    ::testing::AssertionResult failure = ::testing::AssertionFailure();
    failure << "after healing node " << i + 1 << ", no answer after " << kHealTimeout.count()
            << " ms on:";
    for (const auto& [from, to] : paths) {
      failure << " " << (from == kHost ? std::string("host") : std::to_string(from + 1)) << "->"
              << to + 1;
    }
    return failure;
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult NetnsCluster::Kill(int i) {
  Node& node = nodes_.at(i);
  if (node.pid == 0) return ::testing::AssertionFailure() << "node " << i + 1 << " not running";
  node.expected = false;
  ::kill(node.pid, SIGKILL);
  const auto status = ReapWithin(node.pid, kReapTimeout);
  if (!status) {
    return ::testing::AssertionFailure()
           << "node " << i + 1 << " (pid " << node.pid << ") did not die from SIGKILL";
  }
  node.pid = 0;
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult NetnsCluster::KillNodes(const std::vector<int>& nodes) {
  for (int i : nodes) {
    if (nodes_.at(i).pid == 0) {
      return ::testing::AssertionFailure() << "node " << i + 1 << " not running";
    }
  }
  for (int i : nodes) {
    nodes_[i].expected = false;
    ::kill(nodes_[i].pid, SIGKILL);
  }
  ::testing::AssertionResult result = ::testing::AssertionSuccess();
  for (int i : nodes) {
    Node& node = nodes_[i];
    if (!ReapWithin(node.pid, kReapTimeout)) {
      result = ::testing::AssertionFailure()
               << "node " << i + 1 << " (pid " << node.pid << ") did not die from SIGKILL";
      continue;  // Destroy tries again.
    }
    node.pid = 0;
  }
  return result;
}

::testing::AssertionResult NetnsCluster::Restart(int i, Data data) {
  return RestartNodes({i}, data);
}

::testing::AssertionResult NetnsCluster::RestartNodes(const std::vector<int>& nodes, Data data) {
  if (destroyed_) return ::testing::AssertionFailure() << "the cluster is destroyed";
  for (int i : nodes) {
    if (nodes_.at(i).pid != 0) {
      return ::testing::AssertionFailure() << "node " << i + 1 << " is running";
    }
  }
  if (data == Data::kWipe) {
    for (int i : nodes) {
      std::error_code ec;
      std::filesystem::remove_all(nodes_[i].data_dir, ec);
      if (ec) {
        return ::testing::AssertionFailure()
               << "cannot wipe " << nodes_[i].data_dir << ": " << ec.message();
      }
    }
  }
  for (int i : nodes) {
    if (auto started = StartNode(i); !started) return started;
  }
  for (int i : nodes) {
    if (auto healthy = WaitHealthy(i, options_.start_timeout); !healthy) return healthy;
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult NetnsCluster::WaitReady(int i, milliseconds timeout) {
  return WaitHealthy(i, timeout, /*ready=*/true);
}

::testing::AssertionResult NetnsCluster::WaitAllReady(const std::vector<int>& nodes,
                                                      milliseconds timeout) {
  const auto deadline = steady_clock::now() + timeout;
  for (int i : nodes) {
    const auto left = std::max(
        milliseconds(0), std::chrono::duration_cast<milliseconds>(deadline - steady_clock::now()));
    if (auto ready = WaitReady(i, left); !ready) return ready;
  }
  return ::testing::AssertionSuccess();
}

NetnsCluster::ProbeResult NetnsCluster::Probe(int from, int to, milliseconds timeout) const {
  sockaddr_in target{};
  target.sin_family = AF_INET;
  target.sin_port = htons(nodes_.at(to).endpoint.port);
  if (::inet_pton(AF_INET, nodes_.at(to).endpoint.host.c_str(), &target.sin_addr) != 1) {
    return ProbeResult::kNoAnswer;
  }
  int netns_fd = -1;
  if (from != kHost) {
    const std::string netns_path = "/run/netns/" + nodes_.at(from).netns;
    netns_fd = ::open(netns_path.c_str(), O_RDONLY | O_CLOEXEC);
    if (netns_fd < 0) return ProbeResult::kNoAnswer;
  }
  const int timeout_ms = static_cast<int>(timeout.count());
  const pid_t parent = ::getpid();
  // A child does the connect, so that it can enter `from`'s namespace without moving a thread
  // of the test process. Exit status 0: connected, 3: refused, else no answer.
  const pid_t pid = ::fork();
  if (pid == 0) {
    // Only async-signal-safe calls.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(2);
    if (netns_fd >= 0 && ::setns(netns_fd, CLONE_NEWNET) != 0) ::_exit(2);
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd < 0) ::_exit(2);
    int error = 0;
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&target), sizeof(target)) != 0) {
      error = errno;
      if (error == EINPROGRESS) {
        pollfd pfd{fd, POLLOUT, 0};
        if (::poll(&pfd, 1, timeout_ms) != 1) ::_exit(1);
        socklen_t len = sizeof(error);
        ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len);
      }
    }
    ::_exit(error == 0 ? 0 : error == ECONNREFUSED ? 3 : 1);
  }
  if (netns_fd >= 0) ::close(netns_fd);
  if (pid < 0) return ProbeResult::kNoAnswer;
  auto status = ReapWithin(pid, timeout + milliseconds(2000));
  if (!status) {
    ::kill(pid, SIGKILL);
    ReapWithin(pid, kReapTimeout);
    return ProbeResult::kNoAnswer;
  }
  if (!WIFEXITED(*status)) return ProbeResult::kNoAnswer;
  switch (WEXITSTATUS(*status)) {
    case 0:
      return ProbeResult::kConnected;
    case 3:
      return ProbeResult::kRefused;
    default:
      return ProbeResult::kNoAnswer;
  }
}

std::string NetnsCluster::CheckProcesses() {
  std::string problems;
  for (int i = 0; i < size(); ++i) {
    Node& node = nodes_[i];
    if (!node.expected || node.pid == 0) continue;
    if (auto status = ReapWithin(node.pid, milliseconds(0))) {
      problems += "node " + std::to_string(i + 1) + " (" + node.endpoint.ToString() + ", run " +
                  std::to_string(node.runs) + ") " + http_test::DescribeWaitStatus(*status) +
                  " during the test\n";
      node.pid = 0;
      node.expected = false;
    }
  }
  return problems;
}

std::string NetnsCluster::LogTails(size_t lines) const {
  std::string out;
  for (int i = 0; i < size(); ++i) {
    const Node& node = nodes_[i];
    for (size_t run = 0; run < node.run_dirs.size(); ++run) {
      out += "--- node " + std::to_string(i + 1) + " (" + node.endpoint.ToString() + ") run " +
             std::to_string(run + 1) + ", last " + std::to_string(lines) + " lines of stderr:\n";
      out += Tail(node.run_dirs[run] / "stderr.log", lines);
      out += "--- stdout:\n" + Tail(node.run_dirs[run] / "stdout.log", lines);
    }
  }
  return out;
}

std::string NetnsCluster::Destroy() {
  if (destroyed_) return "";
  destroyed_ = true;
  std::string problems;
  for (int i = 0; i < size(); ++i) {
    Node& node = nodes_[i];
    if (node.pid == 0) continue;
    node.expected = false;
    ::kill(node.pid, SIGKILL);
    if (!ReapWithin(node.pid, kReapTimeout)) {
      problems += "node " + std::to_string(i + 1) + " pid " + std::to_string(node.pid) +
                  " survived SIGKILL\n";
    }
    node.pid = 0;
  }
  // Deleting the host end of a veth pair deletes both ends at once (deleting the namespace
  // would too, but asynchronously).
  const std::vector<std::string> namespaces = ListNamespaces();
  for (const Node& node : nodes_) {
    if (LinkExists(node.host_veth)) {
      if (std::string failed = Must({"ip", "link", "del", node.host_veth}); !failed.empty()) {
        problems += failed + "\n";
      }
    }
    if (std::find(namespaces.begin(), namespaces.end(), node.netns) != namespaces.end()) {
      if (std::string failed = Must({"ip", "netns", "del", node.netns}); !failed.empty()) {
        problems += failed + "\n";
      }
    }
  }
  if (LinkExists(Bridge())) {
    if (std::string failed = Must({"ip", "link", "del", Bridge()}); !failed.empty()) {
      problems += failed + "\n";
    }
  }
  DeleteForwardRules(Bridge());
  if (!keep_logs_) {
    std::error_code ignored;
    std::filesystem::remove_all(log_dir_, ignored);
  }

  // Verify.
  const std::vector<std::string> still = ListNamespaces();
  for (const Node& node : nodes_) {
    if (std::find(still.begin(), still.end(), node.netns) != still.end()) {
      problems += "namespace " + node.netns + " still exists\n";
    }
    if (LinkExists(node.host_veth)) problems += "link " + node.host_veth + " still exists\n";
  }
  if (LinkExists(Bridge())) problems += "bridge " + Bridge() + " still exists\n";
  const auto rules = BridgesWithForwardRules();
  if (std::find(rules.begin(), rules.end(), Bridge()) != rules.end()) {
    problems += "FORWARD rule for " + Bridge() + " still exists\n";
  }
  return problems;
}

}  // namespace kvs::cluster_test
