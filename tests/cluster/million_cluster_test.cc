// A replica of a shard of a million keys (issue 11): restarted with its disk, and again with
// its disk wiped, it is never ready before it holds every key, and it gets there in bounded
// time. The keys are loaded by kvs-bench (--preload), the project's own load generator, from
// the test's (root) namespace into replicas 1 and 2; replica 3 gets them by broadcast.
#include <chrono>
#include <string>

#include "cluster_fixture.h"
#include "host_command.h"
#include "server_process.h"

namespace kvs::cluster_test {
// Named, not anonymous: the live tests build as unity sources (KVS_UNITY), where the
// file-local names of different files would clash.
namespace million_live {

using std::chrono::milliseconds;

constexpr int kKeys = 1000000;

class MillionKeysTest : public ClusterTest {
 protected:
  ClusterOptions Options() const override {
    ClusterOptions options;
    // Durability is not what this test is about: load the keys fast.
    options.extra_env = {{"KVS_STORAGE_FSYNC", "never"}};
    return options;
  }

  // Polls /health of node 2 (as fast as it answers) until it is ready; a ready answer with
  // fewer than kKeys keys is recorded in `wrong`. Returns how long it took, or nullopt.
  std::optional<milliseconds> WaitReadyWithEveryKey(std::string& wrong, int& not_ready_seen) {
    const PollResult ready = Eventually(
        [&] {
          const auto health = GetHealth(node(2), milliseconds(1000));
          if (!health) return false;
          if (health->ready && health->keys < kKeys && wrong.empty()) {
            wrong = "ready with " + std::to_string(health->keys) + " keys";
          }
          if (!health->ready) ++not_ready_seen;
          return health->ready;
        },
        milliseconds(120000), milliseconds(20));
    if (!ready) return std::nullopt;
    return ready.elapsed;
  }
};

TEST_F(MillionKeysTest, RestartedReplicaIsNeverReadyBeforeItHoldsEveryKey) {
#ifndef KVS_BENCH_BIN
  GTEST_SKIP() << "built without kvs-bench (KVS_BENCH=OFF), which loads the keys";
#else
  std::vector<std::string> load = {KVS_BENCH_BIN,
                                   "--targets=" + node(0).ToString() + "," + node(1).ToString(),
                                   "--threads=1",
                                   "--connections=32",
                                   "--keys=" + std::to_string(kKeys),
                                   "--preload",
                                   "--value-size=100",
                                   "--mix=get:100",
                                   "--duration=1",
                                   "--warmup=0",
                                   "--quiet"};
  // The secure runs' nodes serve HTTPS with a certificate for 127.0.0.1 (they are on
  // 10.201.x.y): trust the CA, check no names, as the harness' own client does.
  if (const std::string ca = http_test::SecureSuiteCa(); !ca.empty()) {
    load.push_back("--cacert=" + ca);
    load.push_back("--tls-verify-name=off");
  }
  const CommandResult loaded = RunCommand(load, milliseconds(240000));
  ASSERT_TRUE(loaded.ok()) << DescribeCommand(load, loaded);
  ASSERT_TRUE(Eventually([&] { return GetKeyCount(node(2), 0) == kKeys; }, milliseconds(120000),
                         milliseconds(200)))
      << "replica 3 did not get every key by broadcast: it has "
      << GetKeyCount(node(2), 0).value_or(-1);

  for (const auto data : {NetnsCluster::Data::kKeep, NetnsCluster::Data::kWipe}) {
    const bool keep = data == NetnsCluster::Data::kKeep;
    SCOPED_TRACE(keep ? "restart with its disk" : "restart with an empty disk");
    ASSERT_TRUE(cluster().Kill(2));
    ASSERT_TRUE(cluster().Restart(2, data));
    std::string wrong;
    int not_ready_seen = 0;
    const std::optional<milliseconds> took = WaitReadyWithEveryKey(wrong, not_ready_seen);
    ASSERT_TRUE(took.has_value()) << "not ready within 120 s";
    EXPECT_TRUE(wrong.empty()) << wrong;
    EXPECT_EQ(GetKeyCount(node(2), 0), kKeys);
    ReportTime(std::string(keep ? "replica with its disk" : "empty replica") + ", " +
                   std::to_string(kKeys) + " keys: restart to ready (" +
                   std::to_string(not_ready_seen) + " not-ready /health answers)",
               *took);
  }
  // The empty replica loaded the shard as a stream of chunks.
  const auto chunks = GetMetric(node(2), "kvs_transfer_chunks_received_total");
  ASSERT_TRUE(chunks.has_value());
  EXPECT_GE(*chunks, 10.0) << "~180 MB of shard data in 4 MiB chunks";
#endif
}

}  // namespace million_live
}  // namespace kvs::cluster_test
