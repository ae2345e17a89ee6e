#include "cluster_fixture.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <iostream>

#include "host_network.h"

namespace kvs::cluster_test {
namespace {

using std::chrono::milliseconds;

constexpr size_t kLogTailLines = 40;

// Removes leftovers of crashed runs before the first test and verifies after the last one that
// this process leaves nothing behind.
class NetworkHygiene : public ::testing::Environment {
 public:
  void SetUp() override {
    if (::geteuid() != 0) return;
    if (const std::string removed = RemoveStaleResources(); !removed.empty()) {
      std::cerr << "[ HARNESS  ] removed what an earlier run left behind:\n" << removed;
    }
  }
  void TearDown() override {
    if (::geteuid() != 0) return;
    const std::string left = LeftoverResources();
    EXPECT_EQ(left, "") << "the cluster tests left resources behind";
    if (left.empty()) std::cout << "[ HARNESS  ] no namespaces, links, rules or children left\n";
  }
};

[[maybe_unused]] ::testing::Environment* const kHygiene =
    ::testing::AddGlobalTestEnvironment(new NetworkHygiene);

}  // namespace

void ClusterTest::SetUp() {
  if (::geteuid() != 0) GTEST_SKIP() << "cluster tests need root (network namespaces)";
  std::string error;
  cluster_ = NetnsCluster::Create(Options(), &error);
  ASSERT_NE(cluster_, nullptr) << "cluster did not start: " << error;
  std::cout << "[ HARNESS  ] cluster " << cluster_->index() << ": " << Join(cluster_->addresses())
            << ", logs in " << cluster_->log_dir().string() << "\n";
}

void ClusterTest::TearDown() {
  if (cluster_ == nullptr) return;
  if (const std::string died = cluster_->CheckProcesses(); !died.empty()) {
    ADD_FAILURE() << "a kvs-server exited on its own:\n" << died;
  }
  if (const char* keep = std::getenv("KVS_CLUSTER_KEEP_LOGS"); keep != nullptr && *keep != '\0') {
    cluster_->KeepLogs();
    std::cout << "[ HARNESS  ] logs kept in " << cluster_->log_dir().string() << "\n";
  }
  if (HasFailure()) {
    cluster_->KeepLogs();
    std::cout << "[ HARNESS  ] node logs (kept in " << cluster_->log_dir().string() << "):\n"
              << cluster_->LogTails(kLogTailLines);
  }
  const std::string left = cluster_->Destroy();
  EXPECT_EQ(left, "") << "cluster cleanup left resources behind";
  cluster_.reset();
}

void ClusterTest::ReportTime(const std::string& what, milliseconds elapsed) {
  std::cout << "[ MEASURE  ] " << what << ": " << elapsed.count() << " ms" << std::endl;
  std::string key = what;
  std::replace_if(
      key.begin(), key.end(), [](char c) { return !std::isalnum(static_cast<unsigned char>(c)); },
      '_');
  RecordProperty(key + "_ms", static_cast<int>(elapsed.count()));
}

PollResult ClusterTest::WaitForViews(const std::vector<int>& observers, int subject, bool present,
                                     milliseconds timeout) {
  const std::string wanted = cluster_->address(subject);
  std::vector<bool> agreed(observers.size(), false);
  return Eventually(
      [&] {
        for (size_t i = 0; i < observers.size(); ++i) {
          if (agreed[i]) continue;
          const auto view = GetView(node(observers[i]), milliseconds(1000));
          if (!view) continue;
          const bool has = std::find(view->begin(), view->end(), wanted) != view->end();
          agreed[i] = has == present;
        }
        return std::all_of(agreed.begin(), agreed.end(), [](bool b) { return b; });
      },
      timeout);
}

std::string ClusterTest::DescribeViews(const std::vector<int>& observers) {
  std::string out;
  for (int i : observers) {
    const auto view = GetView(node(i), milliseconds(1000));
    out += "  view of node " + std::to_string(i + 1) + ": " +
           (view ? "\"" + Join(*view) + "\"" : std::string("(no answer)")) + "\n";
  }
  return out;
}

}  // namespace kvs::cluster_test
