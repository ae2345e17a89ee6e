// Bounded causal metadata (issue 11): every restart of a node is a new write origin
// (incarnation), and without pruning a client that writes through the restarted nodes would
// carry every incarnation forever. Nodes drop from the metadata they return the writes every
// replica of the shard has applied, so after ten restarts a client's metadata names at most
// one origin per live replica; and no write of the session is ever lost or read stale.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "cluster_fixture.h"

namespace kvs::cluster_test {
// Named, not anonymous: the live tests build as unity sources (KVS_UNITY), where the
// file-local names of different files would clash.
namespace metadata_live {

using http_test::IsJsonWithMetadata;
using std::chrono::milliseconds;

// Origins named by a metadata string ("<epoch>|<origin>=<seq>,...", or "").
size_t OriginCount(const std::string& metadata) {
  const size_t bar = metadata.find('|');
  if (bar == std::string::npos || bar + 1 == metadata.size()) return 0;
  size_t count = 1;
  for (size_t i = bar + 1; i < metadata.size(); ++i) count += metadata[i] == ',';
  return count;
}

class MetadataTest : public ClusterTest {
 protected:
  ClusterOptions Options() const override {
    ClusterOptions options;
    options.extra_env = {{"KVS_STORAGE_FSYNC", "never"}};  // restarts keep what was written
    return options;
  }
};

TEST_F(MetadataTest, StaysBoundedOverTenRestartsWithoutLosingAWrite) {
  std::string metadata;
  std::vector<std::pair<std::string, std::string>> written;  // key, value
  auto put = [&](int node_index) -> ::testing::AssertionResult {
    const std::string key = "m" + std::to_string(written.size());
    const std::string value = "v" + std::to_string(written.size());
    const HttpResponse r = PutKey(node(node_index), key, value, metadata, milliseconds(10000));
    std::string next;
    if (auto ok =
            IsJsonWithMetadata(r, 201, R"({"message":"Added successfully","shard-id":0})", &next);
        !ok) {
      return ok << " (PUT " << key << " at node " << node_index + 1 << ")";
    }
    metadata = next;
    written.emplace_back(key, value);
    return ::testing::AssertionSuccess();
  };

  size_t most = 0;
  for (int round = 0; round < 10; ++round) {
    const int n = round % 3;
    ASSERT_TRUE(cluster().Kill(n));
    ASSERT_TRUE(put((n + 1) % 3));
    ASSERT_TRUE(cluster().Restart(n, NetnsCluster::Data::kKeep));
    ASSERT_TRUE(cluster().WaitReady(n, milliseconds(30000)));
    // A write at the restarted node: an origin of its new incarnation.
    ASSERT_TRUE(put(n));
    most = std::max(most, OriginCount(metadata));
  }
  std::printf("[ MEASURE  ] most origins in the session's metadata during the restarts: %zu\n",
              most);
  RecordProperty("most_origins_during_restarts", static_cast<int>(most));
  // Once every replica has reported what it applied (anti-entropy, every second), a write
  // names at most one origin per live replica.
  const PollResult bounded = Eventually(
      [&] {
        if (!put(static_cast<int>(written.size() % 3))) return false;
        return OriginCount(metadata) <= 3;
      },
      milliseconds(15000), milliseconds(200));
  EXPECT_TRUE(bounded) << "metadata still names " << OriginCount(metadata)
                       << " origins: " << metadata;
  // Every write of the session, read with the session's metadata at every node.
  for (int n = 0; n < 3; ++n) {
    for (const auto& [key, value] : written) {
      const auto read = ParseRead(GetKey(node(n), key, metadata, milliseconds(10000)));
      ASSERT_TRUE(read.has_value()) << key << " at node " << n + 1;
      EXPECT_EQ(read->value, value) << key << " at node " << n + 1;
    }
  }
}

}  // namespace metadata_live
}  // namespace kvs::cluster_test
