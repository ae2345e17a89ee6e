// Durability of a single node (issue: every acknowledged write survives kill -9): restart
// after SIGKILL, a torn log tail, a damaged log (refused, then --storage-repair), a data
// directory of another node or cluster, snapshots, and a disk that fills up.
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <thread>

#include "http_client.h"
#include "kvs/storage/log_format.h"
#include "server_process.h"

namespace kvs::http_test {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

constexpr milliseconds kStartDeadline{15000};

class ScratchDir {
 public:
  ScratchDir() {
    std::string pattern = (fs::temp_directory_path() / "kvs-durability-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~ScratchDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

std::string ReadBytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void WriteBytes(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// The log segment's bytes up to the end of its records (a segment is preallocated: zeros follow).
std::string RecordBytes(const fs::path& path) {
  kvs::storage::RecordFileReader reader;
  EXPECT_TRUE(reader.Open(path.string())) << reader.error();
  std::string_view payload;
  while (reader.Next(payload) == kvs::storage::RecordFileReader::Status::kRecord) {
  }
  return ReadBytes(path).substr(0, reader.offset());
}

// The files of `dir` named <prefix>...<suffix>, sorted (log segments: "wal-", ".log"; the
// segment being zero-filled ahead of use, wal-next.tmp, is not one).
std::vector<fs::path> Files(const fs::path& dir, const std::string& prefix,
                            const std::string& suffix = "") {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (name.starts_with(prefix) && name.ends_with(suffix)) out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

class DurabilityTest : public ::testing::Test {
 protected:
  void SetUp() override { port_ = FreeLoopbackPort(); }
  void TearDown() override {
    if (server_ != nullptr && HasFailure()) std::cerr << "server stderr:\n" << server_->Stderr();
    server_.reset();
  }

  EnvList Env(const EnvList& extra = {}) {
    EnvList env = extra;
    const bool has_dir = std::any_of(env.begin(), env.end(),
                                     [](const auto& kv) { return kv.first == "KVS_STORAGE_DIR"; });
    if (!has_dir) env.emplace_back("KVS_STORAGE_DIR", data_.path().string());
    return SingleNodeEnv(port_, env);
  }
  std::unique_ptr<ServerProcess> Spawn(const EnvList& extra = {},
                                       const std::vector<std::string>& args = {}) {
    std::string error;
    auto server = ServerProcess::Spawn({Env(extra), args}, &error);
    EXPECT_NE(server, nullptr) << error;
    if (server) server->set_port(port_);
    return server;
  }
  ::testing::AssertionResult Start(const EnvList& extra = {},
                                   const std::vector<std::string>& args = {}) {
    server_ = Spawn(extra, args);
    if (!server_) return ::testing::AssertionFailure() << "spawn failed";
    auto healthy = server_->WaitUntilHealthy(kStartDeadline);
    if (!healthy) return healthy << "\nstderr:\n" << server_->Stderr();
    return WaitReady();
  }
  ::testing::AssertionResult WaitReady() {
    const auto deadline = std::chrono::steady_clock::now() + kStartDeadline;
    while (std::chrono::steady_clock::now() < deadline) {
      const HttpResponse r = SendRequest(port_, "GET", "/health");
      if (r.status == 200 && r.body.find("\"ready\":true") != std::string::npos) {
        return ::testing::AssertionSuccess();
      }
      std::this_thread::sleep_for(milliseconds(20));
    }
    return ::testing::AssertionFailure() << "not ready in time";
  }
  void Kill() {
    ASSERT_TRUE(server_->SignalAndWait(SIGKILL, milliseconds(5000)).has_value());
    server_.reset();
  }
  // PUTs key<i> = value<i> for i in [from, to); every answer must be 200/201.
  void PutRange(int from, int to, const std::string& prefix = "value") {
    HttpClient client(port_);
    for (int i = from; i < to; ++i) {
      const HttpResponse r = client.Send("PUT", "/key-value-store/key" + std::to_string(i),
                                         PutBody(prefix + std::to_string(i)));
      ASSERT_TRUE(r.status == 200 || r.status == 201) << Describe(r);
    }
  }
  // How many of key<from..to) read back as value<i>; fails on any other value.
  int CountPresent(int from, int to, const std::string& prefix = "value") {
    HttpClient client(port_);
    int present = 0;
    for (int i = from; i < to; ++i) {
      const HttpResponse r = client.Send("GET", "/key-value-store/key" + std::to_string(i));
      if (r.status == 404) continue;
      EXPECT_EQ(r.status, 200) << Describe(r);
      auto body = ParseObject(r.body);
      if (!body) continue;
      EXPECT_EQ(body->getValue<std::string>("value"), prefix + std::to_string(i));
      ++present;
    }
    return present;
  }
  fs::path LastSegment() {
    auto segments = Files(data_.path(), "wal-", ".log");
    return segments.empty() ? fs::path() : segments.back();
  }

  ScratchDir data_;
  uint16_t port_ = 0;
  std::unique_ptr<ServerProcess> server_;
};

TEST_F(DurabilityTest, AcknowledgedWritesSurviveKill9) {
  ASSERT_TRUE(Start());
  PutRange(0, 300);
  {
    HttpClient client(port_);
    ASSERT_EQ(client.Send("DELETE", "/key-value-store/key7", MetadataBody("")).status, 200);
  }
  const std::string origin_before =
      ParseObject(SendRequest(port_, "GET", "/health").body)->getValue<std::string>("origin");
  Kill();
  ASSERT_TRUE(Start());
  EXPECT_EQ(CountPresent(0, 300), 299);
  EXPECT_EQ(SendRequest(port_, "GET", "/key-value-store/key7").status, 404);
  auto health = ParseObject(SendRequest(port_, "GET", "/health").body);
  ASSERT_TRUE(health);
  EXPECT_EQ(health->getValue<int>("keys"), 299);
  // A restart is a new incarnation: it never reuses the numbers of the last run.
  EXPECT_NE(health->getValue<std::string>("origin"), origin_before);
  auto storage = health->getObject("storage");
  ASSERT_TRUE(storage);
  EXPECT_EQ(storage->getValue<std::string>("mode"), "disk");
  EXPECT_GE(storage->getValue<int>("recovered_log_records"), 301);
  EXPECT_NE(server_->Stderr().find("storage: recovered 299 live keys"), std::string::npos)
      << server_->Stderr();
}

TEST_F(DurabilityTest, TornTailKeepsExactlyTheWholeRecordsBeforeTheCut) {
  ASSERT_TRUE(Start());
  // Each PUT of a fresh key key10..key29 is one group (a sync mark and one record) of one
  // size (acknowledged, so already in the file): measure it.
  PutRange(10, 20);
  const fs::path segment = LastSegment();
  ASSERT_FALSE(segment.empty());
  const size_t half = RecordBytes(segment).size();
  PutRange(20, 30);
  Kill();
  // Cut the file inside its last records (losing the preallocated zeros after them too).
  const std::string bytes = RecordBytes(segment);
  const size_t record = (bytes.size() - half) / 10;
  const size_t first = bytes.size() - 20 * record;  // where key10's record starts
  for (size_t cut : {bytes.size() - 1, bytes.size() - record + 1, bytes.size() - record / 2,
                     bytes.size() - record - 3, bytes.size() - 2 * record + 11}) {
    SCOPED_TRACE("cut at " + std::to_string(cut) + " of " + std::to_string(bytes.size()));
    WriteBytes(segment, bytes.substr(0, cut));
    ASSERT_TRUE(Start());
    const int whole = static_cast<int>((cut - first) / record);
    EXPECT_EQ(CountPresent(10, 30), whole);
    EXPECT_EQ(CountPresent(10, 10 + whole), whole);
    EXPECT_NE(server_->Stderr().find("torn tail"), std::string::npos) << server_->Stderr();
    server_->Stop();
    server_.reset();
    // The run above started a new segment and truncated this one: restore for the next cut.
    for (const fs::path& s : Files(data_.path(), "wal-", ".log")) {
      if (s != segment) fs::remove(s);
    }
  }
}

TEST_F(DurabilityTest, DamagedLogIsRefusedThenRepaired) {
  ASSERT_TRUE(Start());
  PutRange(0, 40);
  Kill();
  const fs::path segment = LastSegment();
  std::string bytes = ReadBytes(segment);
  const size_t flip_at = RecordBytes(segment).size() / 2;
  bytes[flip_at] = static_cast<char>(bytes[flip_at] ^ 0x01);
  WriteBytes(segment, bytes);

  auto refused = Spawn();
  ASSERT_TRUE(refused);
  const auto status = refused->WaitForExit(kStartDeadline);
  ASSERT_TRUE(status.has_value()) << "a damaged log must stop the start";
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 65) << DescribeWaitStatus(*status);
  const std::string err = refused->Stderr();
  EXPECT_NE(err.find(segment.string()), std::string::npos) << err;
  EXPECT_NE(err.find("at offset"), std::string::npos) << err;
  EXPECT_NE(err.find("--storage-repair"), std::string::npos) << err;
  EXPECT_EQ(ReadBytes(segment), bytes) << "refusing must not change the log";

  ASSERT_TRUE(Start({}, {"--storage-repair"}));
  const int kept = CountPresent(0, 40);
  EXPECT_GT(kept, 0);
  EXPECT_LT(kept, 40);
  EXPECT_EQ(CountPresent(0, kept), kept) << "the records before the damage are kept";
  EXPECT_NE(server_->Stderr().find("storage repair"), std::string::npos) << server_->Stderr();
  // Repaired, the node serves writes again and keeps them.
  PutRange(100, 110);
  Kill();
  ASSERT_TRUE(Start());
  EXPECT_EQ(CountPresent(100, 110), 10);
}

TEST_F(DurabilityTest, RefusesAnotherNodesOrClustersDirectory) {
  ASSERT_TRUE(Start({{"KVS_CLUSTER_ID", "alpha"}}));
  PutRange(0, 3);
  server_->Stop();
  server_.reset();

  auto other_cluster = Spawn({{"KVS_CLUSTER_ID", "beta"}});
  auto status = other_cluster->WaitForExit(kStartDeadline);
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 78) << DescribeWaitStatus(*status);
  EXPECT_NE(other_cluster->Stderr().find("belongs to cluster 'alpha'"), std::string::npos)
      << other_cluster->Stderr();

  const uint16_t own_port = port_;
  port_ = FreeLoopbackPort();  // same directory, another node address
  auto other_node = Spawn({{"KVS_CLUSTER_ID", "alpha"}});
  status = other_node->WaitForExit(kStartDeadline);
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 78) << DescribeWaitStatus(*status);
  EXPECT_NE(other_node->Stderr().find("belongs to node 127.0.0.1:" + std::to_string(own_port)),
            std::string::npos)
      << other_node->Stderr();
}

TEST_F(DurabilityTest, SecondProcessOnTheSameDirectoryIsRefused) {
  ASSERT_TRUE(Start());
  const uint16_t own_port = port_;
  port_ = FreeLoopbackPort();
  auto second = Spawn();
  const auto status = second->WaitForExit(kStartDeadline);
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 78) << DescribeWaitStatus(*status);
  port_ = own_port;
}

TEST_F(DurabilityTest, SnapshotsBoundTheLogAndRecoveryUsesThem) {
  ASSERT_TRUE(Start({{"KVS_STORAGE_SNAPSHOT_MIN_LOG_BYTES", "20000"}}));
  PutRange(0, 200, "first");
  PutRange(0, 200, "second");  // overwrites: the log grows, live data does not
  // The snapshot thread checks twice a second: poll the metrics for it.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  bool snapshotted = false;
  while (!snapshotted && std::chrono::steady_clock::now() < deadline) {
    const std::string metrics = SendRequest(port_, "GET", "/metrics").body;
    snapshotted = metrics.find("kvs_storage_snapshots_total 0\n") == std::string::npos &&
                  metrics.find("kvs_storage_snapshots_total") != std::string::npos;
    if (!snapshotted) std::this_thread::sleep_for(milliseconds(50));
  }
  ASSERT_TRUE(snapshotted) << SendRequest(port_, "GET", "/metrics").body;
  EXPECT_EQ(Files(data_.path(), "snap-").size(), 1u);
  PutRange(200, 210, "value");
  Kill();
  ASSERT_TRUE(Start({{"KVS_STORAGE_SNAPSHOT_MIN_LOG_BYTES", "20000"}}));
  EXPECT_EQ(CountPresent(0, 200, "second"), 200);
  EXPECT_EQ(CountPresent(200, 210), 10);
  auto storage = ParseObject(SendRequest(port_, "GET", "/health").body)->getObject("storage");
  EXPECT_GT(storage->getValue<int>("recovered_snapshot_entries"), 0);
}

TEST_F(DurabilityTest, MemoryModeWarnsAndWritesNoFiles) {
  ASSERT_TRUE(Start({{"KVS_STORAGE_MODE", "memory"}}));
  PutRange(0, 5);
  EXPECT_NE(server_->Stderr().find("kvs.storage.mode=memory"), std::string::npos);
  EXPECT_TRUE(Files(data_.path(), "wal-").empty());
  auto storage = ParseObject(SendRequest(port_, "GET", "/health").body)->getObject("storage");
  EXPECT_EQ(storage->getValue<std::string>("mode"), "memory");
}

TEST_F(DurabilityTest, BadStorageSettingsAreRefusedAtStart) {
  for (const EnvList& bad :
       {EnvList{{"KVS_STORAGE_MODE", "tape"}}, EnvList{{"KVS_STORAGE_FSYNC", "sometimes"}},
        EnvList{{"KVS_STORAGE_REPAIR", "maybe"}}, EnvList{{"KVS_STORAGE_DIRECT_IO", "yes"}}}) {
    auto server = Spawn(bad);
    const auto status = server->WaitForExit(kStartDeadline);
    ASSERT_TRUE(status.has_value()) << bad[0].first;
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 78) << bad[0].first;
    EXPECT_NE(server->Stderr().find(bad[0].second), std::string::npos) << server->Stderr();
  }
}

// A disk that fills up: a small tmpfs (needs root). Writes get a JSON 507 and are not
// acknowledged, reads keep working, and writes resume by themselves once space is back.
TEST_F(DurabilityTest, DiskFullRefusesWritesThenResumes) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to mount a tmpfs";
  const fs::path mount_point = data_.path() / "small";
  fs::create_directories(mount_point);
  if (::mount("kvs-test", mount_point.c_str(), "tmpfs", 0, "size=1m") != 0) {
    GTEST_SKIP() << "cannot mount a tmpfs here: " << std::strerror(errno);
  }
  struct Unmount {
    fs::path path;
    ~Unmount() { ::umount2(path.c_str(), MNT_DETACH); }
  } unmount{mount_point};
  const fs::path dir = mount_point / "data";
  // Leave ~100 KiB: the rest is a file we delete later to give the space back.
  WriteBytes(mount_point / "filler", std::string(900 * 1024, 'f'));

  server_ = Spawn({{"KVS_STORAGE_DIR", dir.string()}});
  ASSERT_TRUE(server_);
  ASSERT_TRUE(server_->WaitUntilHealthy(kStartDeadline));
  ASSERT_TRUE(WaitReady());

  HttpClient client(port_);
  const std::string big(8000, 'x');
  int acknowledged = 0;
  HttpResponse refused;
  for (int i = 0; i < 200; ++i) {
    const HttpResponse r =
        client.Send("PUT", "/key-value-store/big" + std::to_string(i), PutBody(big));
    if (r.status == 200 || r.status == 201) {
      ++acknowledged;
      continue;
    }
    refused = r;
    break;
  }
  ASSERT_EQ(refused.status, 507) << Describe(refused);
  auto body = ParseObject(refused.body);
  ASSERT_TRUE(body);
  EXPECT_NE(body->getValue<std::string>("error").find("Insufficient storage"), std::string::npos);
  EXPECT_EQ(body->getValue<std::string>("message"), "Error in PUT");
  EXPECT_GT(acknowledged, 0);
  // Still refused while full, and reads keep working.
  EXPECT_EQ(client.Send("PUT", "/key-value-store/more", PutBody("v")).status, 507);
  EXPECT_EQ(client.Send("GET", "/key-value-store/big0").status, 200);
  auto health = ParseObject(SendRequest(port_, "GET", "/health").body);
  EXPECT_FALSE(health->getObject("storage")->getValue<bool>("writable"));

  fs::remove(mount_point / "filler");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  int status = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    status = client.Send("PUT", "/key-value-store/after", PutBody("v")).status;
    if (status == 201 || status == 200) break;
    std::this_thread::sleep_for(milliseconds(50));
  }
  EXPECT_TRUE(status == 201 || status == 200) << status;

  // Nothing torn, nothing acknowledged lost: a restart holds every acknowledged write.
  Kill();
  server_ = Spawn({{"KVS_STORAGE_DIR", dir.string()}});
  ASSERT_TRUE(server_->WaitUntilHealthy(kStartDeadline));
  ASSERT_TRUE(WaitReady());
  for (int i = 0; i < acknowledged; ++i) {
    EXPECT_EQ(SendRequest(port_, "GET", "/key-value-store/big" + std::to_string(i)).status, 200)
        << i;
  }
  EXPECT_EQ(SendRequest(port_, "GET", "/key-value-store/after").status, 200);
}

}  // namespace
}  // namespace kvs::http_test
