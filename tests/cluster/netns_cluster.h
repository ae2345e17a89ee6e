// NetnsCluster: a kvs store of real kvs-server processes, each in its own Linux network
// namespace behind a veth pair on a private bridge, so that tests can cut a node off
// (Isolate/Heal), crash it (Kill, KillNodes) and bring it back with its data directory as the
// crash left it, or empty (Restart, RestartNodes), while the test process, in the root
// namespace, still reaches every connected node at its own address.
//
// Each node has one data directory for all its runs, <log_dir>/node<i+1>-data, passed as
// KVS_STORAGE_DIR (a NodeStart or ClusterOptions extra_env entry of that name wins); a restart
// keeps it unless told to wipe it. Destroy removes it with the logs (unless KeepLogs).
//
// Layout of cluster N (N chosen at Create; 1..250): bridge kvsbr<N> holding 10.201.N.1/24,
// node i in namespace kvsct-<pid>-<N>-<i> at 10.201.N.(i+2):8080 behind host-side veth
// kvsv<N>n<i> (nodes added later with AddNode get the next i, laid out the same way); an iptables
// FORWARD ACCEPT rule for the bridge (Docker's FORWARD DROP policy would otherwise drop
// node-to-node traffic). Host links carry the alias kvsct-<pid> so a later run can tell what a
// crashed run left behind. Needs root.
//
// Thread-safety: not thread-safe; one test thread drives a NetnsCluster. The read-only accessors
// (endpoint, address) may be used from other threads while no fault method or AddNode runs.
// References returned by endpoint() stay valid across AddNode (node storage never moves).
// Invariant: every resource created is removed by Destroy(), which the destructor also calls;
// server processes are children of the test process (and die with it: PDEATHSIG).
#ifndef KVS_TESTS_CLUSTER_NETNS_CLUSTER_H_
#define KVS_TESTS_CLUSTER_NETNS_CLUSTER_H_

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "node_client.h"
#include "server_process.h"

namespace kvs::cluster_test {

using http_test::EnvList;

struct ClusterOptions {
  int nodes = 3;  // 2..9 started by Create; AddNode may add more, up to kMaxNodes in all.
  int shard_count = 1;
  EnvList extra_env;                               // Added to every node's environment (tunables).
  std::chrono::milliseconds start_timeout{15000};  // Until every node answers /health.
};

// How AddNode starts a node (the nodes Create starts all get SHARD_COUNT and no extra env).
struct NodeStart {
  // false: no SHARD_COUNT in the environment, so the node starts unassigned and waits for
  // add-member (SPEC §1).
  bool with_shard_count = true;
  EnvList extra_env;  // Added after ClusterOptions::extra_env (so it wins for the same name).
};

class NetnsCluster {
 public:
  // Nodes per cluster, those added later included (addresses .2-.17, veth names <= 15 bytes).
  static constexpr int kMaxNodes = 16;

  // Removes stale resources of dead runs, builds the network, starts every node and waits until
  // each reports "ready" in /health. Returns nullptr with *error set on failure (nothing is left
  // behind).
  static std::unique_ptr<NetnsCluster> Create(const ClusterOptions& options, std::string* error);

  NetnsCluster(const NetnsCluster&) = delete;
  NetnsCluster& operator=(const NetnsCluster&) = delete;
  ~NetnsCluster();

  int size() const { return static_cast<int>(nodes_.size()); }
  int index() const { return index_; }
  const Endpoint& endpoint(int node) const { return nodes_.at(node).endpoint; }
  // "10.201.N.x:8080", as in VIEW.
  std::string address(int node) const { return nodes_.at(node).endpoint.ToString(); }
  // Every node's address (AddNode's included), sorted as views are. A node's VIEW is this list
  // as it was when the node (re)started.
  std::vector<std::string> addresses() const;

  // Cuts `node` off the bridge (host-side veth down): nobody reaches it, it reaches nobody.
  ::testing::AssertionResult Isolate(int node);
  // Undoes Isolate, and returns once the network carries traffic again between `node` and the
  // test process and every other connected node, both ways (a TCP connect is answered, by the
  // server or by a refusal; neighbour entries that went stale during the cut take up to a
  // second to be resolved again).
  ::testing::AssertionResult Heal(int node);
  // kill -9 and reap.
  ::testing::AssertionResult Kill(int node);
  // kill -9 every node in `nodes` at once (all signals are sent before the first is reaped),
  // then reaps them: a crash of several machines at the same moment.
  ::testing::AssertionResult KillNodes(const std::vector<int>& nodes);

  // What a restart does with the node's data directory.
  enum class Data {
    kKeep,  // As the last run left it (a crashed machine rebooting): the node recovers from it.
    kWipe,  // Deleted first: the node comes back empty (a replaced machine or disk).
  };
  // Starts a fresh process (empty memory, new working directory, new origin incarnation) for
  // `node` in its namespace, with the same NodeStart and data directory as its first run, and
  // waits until it answers /health (which it may do before it is ready: see WaitReady).
  ::testing::AssertionResult Restart(int node, Data data = Data::kKeep);
  // Restart of every node in `nodes`, started together (as after a power cut) and then each
  // waited for until it answers /health, so that nodes that wait for each other while
  // recovering can.
  ::testing::AssertionResult RestartNodes(const std::vector<int>& nodes, Data data = Data::kKeep);

  // Polls GET /health of `node` until it answers 200 with "ready": true (its data recovered from
  // disk and caught up from its shard's peers), the process exits, or `timeout` passes.
  ::testing::AssertionResult WaitReady(int node, std::chrono::milliseconds timeout);
  // WaitReady for each node of `nodes`, within one overall `timeout`.
  ::testing::AssertionResult WaitAllReady(const std::vector<int>& nodes,
                                          std::chrono::milliseconds timeout);

  // The node's data directory (KVS_STORAGE_DIR), the same for all of its runs.
  const std::filesystem::path& data_dir(int node) const { return nodes_.at(node).data_dir; }

  // Adds node size() to the running cluster: its namespace and veth on the bridge, then a
  // kvs-server started as `start` says, with VIEW = every node's address (this one included),
  // and waits until it answers /health. On success *node is its index. On failure the node
  // keeps its slot (so that Destroy removes whatever of it was created and LogTails shows it)
  // and is not running.
  ::testing::AssertionResult AddNode(const NodeStart& start, int* node);

  enum class ProbeResult { kConnected, kRefused, kNoAnswer };
  // A TCP connect from inside `from`'s namespace (from = kHost: the test process's) to `to`'s
  // server port, bounded by `timeout`. It checks the network path, FORWARD rule included.
  static constexpr int kHost = -1;
  ProbeResult Probe(int from, int to, std::chrono::milliseconds timeout) const;
  bool CanConnect(int from, int to, std::chrono::milliseconds timeout) const {
    return Probe(from, to, timeout) == ProbeResult::kConnected;
  }

  // "" if every node not deliberately killed is still running; else which ones exited and how.
  std::string CheckProcesses();

  // The last `lines` lines of stderr and stdout of every process each node has run.
  std::string LogTails(size_t lines) const;
  const std::filesystem::path& log_dir() const { return log_dir_; }
  // Keep the log directory at Destroy (for a failed test).
  void KeepLogs() { keep_logs_ = true; }

  // Kills and reaps the servers, deletes namespaces, veths, bridge and iptables rule. Idempotent.
  // Returns "" if nothing of this cluster is left, else a description of what is.
  std::string Destroy();

 private:
  struct Node {
    std::string netns;
    std::string host_veth;
    Endpoint endpoint;
    pid_t pid = 0;          // 0: not running (or reaped).
    bool expected = false;  // Started and not deliberately killed.
    bool isolated = false;
    NodeStart start;
    std::filesystem::path data_dir;
    int runs = 0;
    std::vector<std::filesystem::path> run_dirs;
  };

  NetnsCluster(int index, ClusterOptions options);

  std::string BuildNetwork();
  // Namespace, veth pair (host end on the bridge) and addresses of node `node`.
  std::string BuildNodeNetwork(int node);
  Node MakeNode(int node) const;
  ::testing::AssertionResult StartNode(int node);
  // Polls /health until it answers 200 (and, if `ready`, reports "ready": true).
  ::testing::AssertionResult WaitHealthy(int node, std::chrono::milliseconds timeout,
                                         bool ready = false);
  std::string Bridge() const;

  int index_;
  ClusterOptions options_;
  std::vector<Node> nodes_;
  std::filesystem::path log_dir_;
  bool keep_logs_ = false;
  bool destroyed_ = false;
};

}  // namespace kvs::cluster_test

#endif  // KVS_TESTS_CLUSTER_NETNS_CLUSTER_H_
