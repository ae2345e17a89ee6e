#include "kvs/storage/snapshot.h"

#include <gtest/gtest.h>

#include <map>

#include "temp_dir.h"

namespace kvs::storage {
namespace {

store::Entry MakeEntry(std::string value, uint64_t hlc, bool tombstone = false) {
  store::Entry e;
  e.value = std::move(value);
  e.tombstone = tombstone;
  e.version = store::Version{hlc, "n:1#" + std::to_string(hlc % 3), hlc};
  e.meta = hlc % 2 ? "0|x=1" : "";
  return e;
}

struct Loaded {
  bool ok = false;
  std::string error;
  SnapshotHeader header;
  std::map<std::string, store::Entry> entries;
};

Loaded Load(const std::string& path) {
  Loaded out;
  uint64_t n = 0;
  out.ok = LoadSnapshot(
      path, [&](SnapshotHeader&& h) { out.header = std::move(h); },
      [&](LoggedEntry&& e) { out.entries[e.key] = std::move(e.entry); }, n, out.error);
  return out;
}

TEST(SnapshotTest, RoundTripsTheStore) {
  TempDir dir;
  store::Store store;
  for (int i = 0; i < 5000; ++i) {
    store.ApplyIfNewer("key" + std::to_string(i),
                       MakeEntry(std::string(i % 50, 'v'), i + 1u, i % 7 == 0));
  }
  const causal::VersionVector vv{{"n:1#0", 10}, {"n:1#1", 20}};
  std::string error;
  auto info = WriteSnapshot(dir.path(), 4, "{\"epoch\":2}", vv, store, error);
  ASSERT_TRUE(info) << error;
  EXPECT_EQ(info->entries, 5000u);
  const Loaded loaded = Load(dir.path() + "/" + SnapshotName(4));
  ASSERT_TRUE(loaded.ok) << loaded.error;
  EXPECT_EQ(loaded.header.segment, 4u);
  EXPECT_EQ(loaded.header.layout, "{\"epoch\":2}");
  EXPECT_EQ(loaded.header.applied, vv);
  ASSERT_EQ(loaded.entries.size(), 5000u);
  for (int i = 0; i < 5000; i += 37) {
    const store::Entry want = MakeEntry(std::string(i % 50, 'v'), i + 1u, i % 7 == 0);
    const store::Entry& got = loaded.entries.at("key" + std::to_string(i));
    EXPECT_EQ(got.value, want.value);
    EXPECT_EQ(got.tombstone, want.tombstone);
    EXPECT_EQ(got.version.hlc, want.version.hlc);
    EXPECT_EQ(got.version.origin, want.version.origin);
    EXPECT_EQ(got.meta, want.meta);
  }
  EXPECT_FALSE(std::filesystem::exists(dir.path() + "/" + SnapshotName(4) + ".tmp"));
}

TEST(SnapshotTest, DamagedOrCutSnapshotIsRefusedWithItsOffset) {
  TempDir dir;
  store::Store store;
  for (int i = 0; i < 100; ++i) store.ApplyIfNewer("k" + std::to_string(i), MakeEntry("v", i + 1u));
  std::string error;
  ASSERT_TRUE(WriteSnapshot(dir.path(), 1, "", {}, store, error)) << error;
  const std::string path = dir.path() + "/" + SnapshotName(1);
  const std::string bytes = ReadFile(path);

  std::string flipped = bytes;
  flipped[bytes.size() / 2] ^= 0x10;
  WriteFile(path, flipped);
  Loaded loaded = Load(path);
  EXPECT_FALSE(loaded.ok);
  EXPECT_NE(loaded.error.find("at offset"), std::string::npos) << loaded.error;

  WriteFile(path, bytes.substr(0, bytes.size() - 3));  // footer cut
  loaded = Load(path);
  EXPECT_FALSE(loaded.ok);

  WriteFile(path, "not a snapshot at all");
  EXPECT_FALSE(Load(path).ok);
}

}  // namespace
}  // namespace kvs::storage
