// Concurrency smoke test: several clients on keep-alive connections write and read their own
// keys at once; every answer must be valid and every client must read its own last write.
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "contract_text.h"
#include "gtest/gtest.h"
#include "http_client.h"
#include "server_process.h"

namespace kvs::http_test {
namespace {

constexpr int kThreads = 8;
constexpr int kRounds = 200;
constexpr int kKeysPerThread = 10;
constexpr size_t kMaxReportedFailures = 10;

std::string Key(int thread, int key) {
  return "conc-" + std::to_string(thread) + "-" + std::to_string(key);
}

std::string Value(int thread, int round) {
  return "t" + std::to_string(thread) + "-r" + std::to_string(round);
}

// Failures seen by worker threads, reported by the test thread.
class FailureLog {
 public:
  void Record(const ::testing::AssertionResult& result, const std::string& what) {
    if (result) return;
    std::lock_guard<std::mutex> lock(mu_);
    ++count_;
    if (messages_.size() < kMaxReportedFailures)
      messages_.push_back(what + ": " + result.message());
  }
  int count() const { return count_; }
  std::string Summary() const {
    std::string out;
    for (const auto& m : messages_) out += m + "\n";
    return out;
  }

 private:
  std::mutex mu_;
  int count_ = 0;
  std::vector<std::string> messages_;
};

class ConcurrencyTest : public SharedServerTest<ConcurrencyTest> {};

TEST_F(ConcurrencyTest, ParallelClientsReadTheirOwnWrites) {
  FailureLog failures;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&failures, t] {
      HttpClient client(port());
      std::string metadata;
      for (int round = 0; round < kRounds; ++round) {
        const std::string path = "/key-value-store/" + Key(t, round % kKeysPerThread);
        const std::string value = Value(t, round);
        const bool is_new = round < kKeysPerThread;
        failures.Record(IsJsonWithMetadata(
                            client.Send("PUT", path, PutBody(value, metadata)), is_new ? 201 : 200,
                            is_new ? R"({"message":"Added successfully","shard-id":0})"
                                   : R"({"message":"Updated successfully","shard-id":0})",
                            &metadata),
                        "PUT " + path);
        failures.Record(IsJsonWithMetadata(client.Send("GET", path, MetadataBody(metadata)), 200,
                                           Retrieved(value), &metadata),
                        "GET " + path);
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(failures.count(), 0) << failures.Summary();

  HttpClient client(port());
  for (int t = 0; t < kThreads; ++t) {
    for (int k = 0; k < kKeysPerThread; ++k) {
      const int last_round = kRounds - kKeysPerThread + k;
      std::string metadata;
      EXPECT_TRUE(IsJsonWithMetadata(client.Send("GET", "/key-value-store/" + Key(t, k)), 200,
                                     Retrieved(Value(t, last_round)), &metadata));
    }
  }
}

}  // namespace
}  // namespace kvs::http_test
