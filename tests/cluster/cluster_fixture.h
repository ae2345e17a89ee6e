// ClusterTest: the gtest fixture of the live cluster tests. Each test gets a fresh NetnsCluster
// (3 nodes, one shard, default tunables unless Options() says otherwise); TearDown reports
// nodes that died on their own, prints every node's log tail when the test failed, destroys the
// cluster and fails the test if anything of it is left. A global environment removes what
// crashed earlier runs left behind and checks, after the last test, that this process left
// nothing (namespaces, links, FORWARD rules, child processes). Set KVS_CLUSTER_KEEP_LOGS=1 to
// keep the node logs of passing tests too.
// Thread-safety: as gtest fixtures: the test body's thread owns it; helper threads may only
// use the node endpoints and the free functions of node_client.h.
#ifndef KVS_TESTS_CLUSTER_CLUSTER_FIXTURE_H_
#define KVS_TESTS_CLUSTER_CLUSTER_FIXTURE_H_

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "gtest/gtest.h"
#include "netns_cluster.h"
#include "node_client.h"
#include "polling.h"

namespace kvs::cluster_test {

class ClusterTest : public ::testing::Test {
 protected:
  // The cluster each test starts with; override to change it.
  virtual ClusterOptions Options() const { return {}; }

  void SetUp() override;
  void TearDown() override;

  NetnsCluster& cluster() { return *cluster_; }
  // Node i (0-based: replica 1 is node(0)).
  const Endpoint& node(int i) const { return cluster_->endpoint(i); }

  // Prints "[ MEASURE  ] <what>: <ms> ms" and records it as a test property.
  void ReportTime(const std::string& what, std::chrono::milliseconds elapsed);

  // Polls the views of `observers` until each contains `subject`'s address (present=true) or
  // lacks it (present=false). Returns the time until the last observer agreed.
  PollResult WaitForViews(const std::vector<int>& observers, int subject, bool present,
                          std::chrono::milliseconds timeout);

  // Every observer's last view, for failure messages.
  std::string DescribeViews(const std::vector<int>& observers);

 private:
  std::unique_ptr<NetnsCluster> cluster_;
};

}  // namespace kvs::cluster_test

#endif  // KVS_TESTS_CLUSTER_CLUSTER_FIXTURE_H_
