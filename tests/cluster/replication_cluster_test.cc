// Replication between the three replicas of one shard, with no faults: a write made at one
// replica is readable causally at the others, and concurrent writes to one key converge to the
// same winner everywhere (SPEC §4 causal consistency and convergence).
#include <algorithm>
#include <array>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "cluster_fixture.h"

namespace kvs::cluster_test {
// Named, not anonymous: the live tests build as unity sources (KVS_UNITY), where the
// file-local names of different files would clash.
namespace replication_live {

using http_test::IsJsonWithMetadata;
using std::chrono::milliseconds;

using ReplicationTest = ClusterTest;

constexpr char kAdded[] = R"({"message":"Added successfully","shard-id":0})";
constexpr char kUpdated[] = R"({"message":"Updated successfully","shard-id":0})";
// A replica may have to fetch a dependency first (KVS_REPLICATION_DEPENDENCY_WAIT_MS, 2 s).
constexpr milliseconds kCausalTimeout{5000};

TEST_F(ReplicationTest, WriteAtOneReplicaReadsTheSameAtTheOthers) {
  std::string written;
  ASSERT_TRUE(IsJsonWithMetadata(PutKey(node(0), "k1", "v1", ""), 201, kAdded, &written));

  std::array<std::string, 3> read;
  for (int i : {1, 2}) {
    const HttpResponse get = GetKey(node(i), "k1", written, kCausalTimeout);
    ASSERT_TRUE(IsJsonWithMetadata(get, 200, R"({"message":"Retrieved successfully","value":"v1"})",
                                   &read[i]))
        << "read at replica " << i + 1 << " with the writer's metadata";
  }
  EXPECT_EQ(read[1], read[2]) << "replicas 2 and 3 answer the same read differently";
  EXPECT_EQ(read[1], written) << "a read that brings nothing new returns the client's metadata";
}

// SPEC §2: a view change made at one node reaches every node.
TEST_F(ReplicationTest, ClientViewChangesReachEveryNode) {
  // An address on the test bridge where nothing runs.
  const std::string ghost = node(0).host.substr(0, node(0).host.rfind('.')) + ".250:8080";
  const std::string body = R"({"socket-address":")" + ghost + R"("})";
  ASSERT_EQ(Send(node(0), "PUT", "/key-value-store-view", body).status, 201);
  auto holds = [&](int i, bool present) {
    const auto view = GetView(node(i));
    return view && (std::find(view->begin(), view->end(), ghost) != view->end()) == present;
  };
  const PollResult added = Eventually([&] { return holds(1, true) && holds(2, true); },
                                      milliseconds(2000), milliseconds(20));
  ASSERT_TRUE(added) << "PUT view at replica 1 did not reach the others: "
                     << DescribeViews({0, 1, 2});
  ReportTime("client view PUT reaching every node", added.elapsed);

  ASSERT_EQ(Send(node(1), "DELETE", "/key-value-store-view", body).status, 200);
  const PollResult removed =
      Eventually([&] { return holds(0, false) && holds(1, false) && holds(2, false); },
                 milliseconds(2000), milliseconds(20));
  ASSERT_TRUE(removed) << "DELETE view at replica 2 did not reach the others: "
                       << DescribeViews({0, 1, 2});
}

TEST_F(ReplicationTest, ConcurrentWritersOfOneKeyConvergeToOneWinner) {
  constexpr int kRounds = 50;
  struct Writer {
    int node;
    std::string prefix;
    std::vector<HttpResponse> answers;
    std::string metadata;
  };
  std::array<Writer, 2> writers{Writer{0, "a-", {}, ""}, Writer{1, "b-", {}, ""}};
  std::vector<std::thread> threads;
  for (Writer& writer : writers) {
    threads.emplace_back([this, &writer] {
      const Endpoint endpoint = node(writer.node);  // Copied: the thread reads nothing shared.
      for (int round = 0; round < kRounds; ++round) {
        HttpResponse put = PutKey(endpoint, "contended", writer.prefix + std::to_string(round),
                                  writer.metadata, kCausalTimeout);
        if (const auto object = http_test::ParseObject(put.body);
            !object.isNull() && object->has("causal-metadata") &&
            object->get("causal-metadata").isString()) {
          writer.metadata = object->getValue<std::string>("causal-metadata");
        }
        writer.answers.push_back(std::move(put));
      }
    });
  }
  for (auto& thread : threads) thread.join();

  for (const Writer& writer : writers) {
    for (int round = 0; round < kRounds; ++round) {
      std::string ignored;
      const HttpResponse& put = writer.answers[round];
      // Only a writer's first write can find the key missing: later ones carry its own write.
      if (round == 0 && put.status == 201) {
        EXPECT_TRUE(IsJsonWithMetadata(put, 201, kAdded, &ignored));
      } else {
        EXPECT_TRUE(IsJsonWithMetadata(put, 200, kUpdated, &ignored))
            << "writer " << writer.prefix << " round " << round;
      }
    }
  }

  std::array<std::optional<ReadResult>, 3> reads;
  const PollResult converged = Eventually(
      [&] {
        for (int i = 0; i < 3; ++i) reads[i] = ParseRead(GetKey(node(i), "contended", ""));
        return reads[0] && reads[0] == reads[1] && reads[1] == reads[2];
      },
      milliseconds(15000), milliseconds(100));
  std::string last;
  for (int i = 0; i < 3; ++i) {
    last += "  replica " + std::to_string(i + 1) + ": " +
            (reads[i] ? reads[i]->value + " " + reads[i]->metadata : std::string("(no 200)")) +
            "\n";
  }
  ASSERT_TRUE(converged) << "replicas still disagree after 15 s:\n" << last;
  ReportTime("concurrent writers: convergence after the last write", converged.elapsed);
  // Each writer's writes are ordered at its replica, so the winner is one of the last two.
  const std::string last_a = "a-" + std::to_string(kRounds - 1);
  const std::string last_b = "b-" + std::to_string(kRounds - 1);
  EXPECT_TRUE(reads[0]->value == last_a || reads[0]->value == last_b)
      << "winner " << reads[0]->value << " is neither writer's last write\n"
      << last;
}

}  // namespace replication_live
}  // namespace kvs::cluster_test
