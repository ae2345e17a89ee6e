#include "kvs/storage/data_dir.h"

#include <gtest/gtest.h>

#include "kvs/storage/wal.h"
#include "temp_dir.h"

namespace kvs::storage {
namespace {

TEST(DataDirTest, CreatesTheDirectoryAndRecordsIdentity) {
  TempDir root;
  const std::string path = root.path() + "/a/b";
  std::string error;
  auto dir = DataDir::Open(path, "10.0.0.1:8080", "c1", 1000, error);
  ASSERT_TRUE(dir) << error;
  EXPECT_EQ(dir->incarnation(), 1000u);
  EXPECT_NE(ReadFile(path + "/IDENTITY").find("address=10.0.0.1:8080"), std::string::npos);
}

TEST(DataDirTest, IncarnationGrowsEvenWhenTheClockGoesBack) {
  TempDir root;
  std::string error;
  uint64_t last = 0;
  for (uint64_t now : {5000u, 5000u, 10u, 7000u}) {
    auto dir = DataDir::Open(root.path(), "n:1", "c", now, error);
    ASSERT_TRUE(dir) << error;
    EXPECT_GT(dir->incarnation(), last);
    EXPECT_GE(dir->incarnation(), now);
    last = dir->incarnation();
  }
}

TEST(DataDirTest, RefusesAnotherNodesOrClustersDirectory) {
  TempDir root;
  std::string error;
  ASSERT_TRUE(DataDir::Open(root.path(), "10.0.0.1:8080", "c1", 1, error)) << error;
  EXPECT_FALSE(DataDir::Open(root.path(), "10.0.0.2:8080", "c1", 2, error));
  EXPECT_NE(error.find("belongs to node 10.0.0.1:8080"), std::string::npos) << error;
  EXPECT_FALSE(DataDir::Open(root.path(), "10.0.0.1:8080", "c2", 2, error));
  EXPECT_NE(error.find("cluster 'c1'"), std::string::npos) << error;
}

TEST(DataDirTest, OneProcessAtATime) {
  TempDir root;
  std::string error;
  auto first = DataDir::Open(root.path(), "n:1", "c", 1, error);
  ASSERT_TRUE(first) << error;
  EXPECT_FALSE(DataDir::Open(root.path(), "n:1", "c", 2, error));
  EXPECT_NE(error.find("in use"), std::string::npos) << error;
  first.reset();
  EXPECT_TRUE(DataDir::Open(root.path(), "n:1", "c", 3, error)) << error;
}

TEST(DataDirTest, DataFilesWithoutIdentityAreRefused) {
  TempDir root;
  WriteFile(root.path() + "/" + SegmentName(1), "");
  std::string error;
  EXPECT_FALSE(DataDir::Open(root.path(), "n:1", "c", 1, error));
  EXPECT_NE(error.find("no IDENTITY"), std::string::npos) << error;
}

TEST(DataDirTest, ListsSegmentsAndSnapshotsInOrder) {
  TempDir root;
  std::string error;
  auto dir = DataDir::Open(root.path(), "n:1", "c", 1, error);
  ASSERT_TRUE(dir) << error;
  for (uint64_t n : {3u, 1u, 12u}) WriteFile(dir->SegmentPath(n), "");
  WriteFile(dir->SnapshotPath(3), "");
  WriteFile(root.path() + "/wal-x.log", "");
  EXPECT_EQ(dir->Segments(), (std::vector<uint64_t>{1, 3, 12}));
  EXPECT_EQ(dir->Snapshots(), (std::vector<uint64_t>{3}));
}

}  // namespace
}  // namespace kvs::storage
