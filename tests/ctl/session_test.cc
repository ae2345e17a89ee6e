// The causal session file: its codec, the foreign-cluster rule, and atomic private writes.
#include "kvs/ctl/session.h"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "gtest/gtest.h"

namespace kvs::ctl {
namespace {

class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "kvsctl-test-XXXXXX").string();
    path_ = ::mkdtemp(pattern.data());
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

Session Sample() {
  Session s;
  s.metadata = "opaque\"meta\\data\n";
  s.view = {"10.10.0.2:8080", "10.10.0.3:8080"};
  s.aliases = {"localhost:8082"};
  return s;
}

TEST(SessionTest, CodecRoundTrip) {
  std::string error;
  const auto decoded = DecodeSession(EncodeSession(Sample()), &error);
  ASSERT_TRUE(decoded) << error;
  EXPECT_EQ(*decoded, Sample());
}

TEST(SessionTest, DecodeRejectsMalformedWithAReason) {
  for (const char* bad : {"", "[]", "{", "{\"causal-metadata\":3}", "{\"view\":\"a,b\"}",
                          "{\"view\":[1]}", "{\"nodes\":{}}", "null"}) {
    std::string error;
    EXPECT_FALSE(DecodeSession(bad, &error)) << bad;
    EXPECT_FALSE(error.empty()) << bad;
  }
}

TEST(SessionTest, FileRoundTripIsPrivateAndAtomic) {
  TempDir dir;
  const std::string path = (dir.path() / "nested" / "session.json").string();
  std::string error;
  // Absent: an empty session.
  auto loaded = LoadSession(path, &error);
  ASSERT_TRUE(loaded) << error;
  EXPECT_TRUE(loaded->empty());

  ASSERT_TRUE(SaveSession(path, Sample(), &error)) << error;
  struct stat file_info {};
  ASSERT_EQ(::stat(path.c_str(), &file_info), 0);
  EXPECT_EQ(file_info.st_mode & 0777, 0600u);
  struct stat dir_info {};
  ASSERT_EQ(::stat((dir.path() / "nested").c_str(), &dir_info), 0);
  EXPECT_EQ(dir_info.st_mode & 0777, 0700u);

  loaded = LoadSession(path, &error);
  ASSERT_TRUE(loaded) << error;
  EXPECT_EQ(*loaded, Sample());

  // Overwriting leaves no temporary file behind.
  Session next = Sample();
  next.metadata = "second";
  ASSERT_TRUE(SaveSession(path, next, &error)) << error;
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir.path() / "nested")) {
    (void)entry;
    ++files;
  }
  EXPECT_EQ(files, 1);
  loaded = LoadSession(path, &error);
  ASSERT_TRUE(loaded) << error;
  EXPECT_EQ(loaded->metadata, "second");
}

TEST(SessionTest, CorruptFileIsAnErrorNamingTheFile) {
  TempDir dir;
  const std::string path = (dir.path() / "session.json").string();
  std::ofstream(path) << "{not json";
  std::string error;
  EXPECT_FALSE(LoadSession(path, &error));
  EXPECT_NE(error.find(path), std::string::npos) << error;
}

TEST(SessionTest, ForeignClusterRule) {
  const Session empty;
  EXPECT_EQ(CheckSession(empty, "anywhere:1"), SessionCheck::kSend);

  const Session s = Sample();
  // A member of the stored view, or a name used before: send at once.
  EXPECT_EQ(CheckSession(s, "10.10.0.3:8080"), SessionCheck::kSend);
  EXPECT_EQ(CheckSession(s, "localhost:8082"), SessionCheck::kSend);
  // Anything else: ask the node for its view first.
  EXPECT_EQ(CheckSession(s, "localhost:8083"), SessionCheck::kNeedView);
  // The same cluster seen through another name (a host port mapping): views overlap.
  EXPECT_TRUE(SameCluster(s, {"10.10.0.3:8080", "10.10.0.4:8080"}));
  // Another cluster: no member in common.
  EXPECT_FALSE(SameCluster(s, {"127.0.0.1:9000", "127.0.0.1:9001"}));
  EXPECT_FALSE(SameCluster(s, {}));
  // A session that recorded no view cannot vouch for any node.
  Session no_view = s;
  no_view.view.clear();
  no_view.aliases.clear();
  EXPECT_EQ(CheckSession(no_view, "10.10.0.2:8080"), SessionCheck::kNeedView);
  EXPECT_FALSE(SameCluster(no_view, {"10.10.0.2:8080"}));
}

TEST(SessionTest, RecordExchangeKeepsTheViewAndLearnsTheName) {
  Session s = Sample();
  RecordExchange(&s, "localhost:8083", "m2", {});
  EXPECT_EQ(s.metadata, "m2");
  EXPECT_EQ(s.view, Sample().view);
  EXPECT_EQ(s.aliases, (std::vector<std::string>{"localhost:8082", "localhost:8083"}));
  RecordExchange(&s, "localhost:8083", "m3", {"10.10.0.2:8080"});
  EXPECT_EQ(s.view, (std::vector<std::string>{"10.10.0.2:8080"}));
  EXPECT_EQ(s.aliases.size(), 2u);
  for (int i = 0; i < 100; ++i) RecordExchange(&s, "n" + std::to_string(i) + ":1", "m", {});
  EXPECT_LE(s.aliases.size(), 64u);
  EXPECT_EQ(s.aliases.back(), "n99:1");
}

TEST(SessionTest, SplitView) {
  EXPECT_EQ(SplitView("a:1,b:2"), (std::vector<std::string>{"a:1", "b:2"}));
  EXPECT_EQ(SplitView(""), std::vector<std::string>{});
  EXPECT_EQ(SplitView(",a:1, ,b:2,"), (std::vector<std::string>{"a:1", "b:2"}));
}

}  // namespace
}  // namespace kvs::ctl
