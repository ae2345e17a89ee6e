#include "kvs/storage/snapshot.h"

#include <gtest/gtest.h>

#include <map>
#include <mutex>

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

// Loads with `threads` decoders (1: on this thread); every entry delivered is counted, and
// a key delivered twice fails the test.
Loaded Load(const std::string& path, unsigned threads = 1) {
  Loaded out;
  uint64_t n = 0;
  std::mutex mu;
  size_t delivered = 0;
  out.ok = LoadSnapshot(
      path, [&](SnapshotHeader&& h) { out.header = std::move(h); },
      EachEntry([&](const LoggedEntryRef& e) {
        std::lock_guard lock(mu);
        ++delivered;
        EXPECT_TRUE(out.entries.emplace(std::string(e.key), e.entry.ToEntry()).second)
            << "delivered twice: " << e.key;
      }),
      n, out.error, threads);
  EXPECT_EQ(delivered, n);
  return out;
}

void ExpectSameEntries(const Loaded& a, const Loaded& b) {
  ASSERT_EQ(a.entries.size(), b.entries.size());
  for (const auto& [key, e] : a.entries) {
    auto it = b.entries.find(key);
    ASSERT_NE(it, b.entries.end()) << key;
    EXPECT_EQ(it->second.value, e.value) << key;
    EXPECT_EQ(it->second.tombstone, e.tombstone) << key;
    EXPECT_EQ(it->second.version.hlc, e.version.hlc) << key;
    EXPECT_EQ(it->second.version.origin, e.version.origin) << key;
    EXPECT_EQ(it->second.version.seq, e.version.seq) << key;
    EXPECT_EQ(it->second.meta, e.meta) << key;
  }
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

TEST(SnapshotTest, SeveralDecoderThreadsDeliverEveryEntryOnce) {
  TempDir dir;
  store::Store store;
  // More than one chunk per stripe for some stripes (chunks end at ~1 MiB).
  for (int i = 0; i < 40000; ++i) {
    store.ApplyIfNewer("key" + std::to_string(i),
                       MakeEntry(std::string(40 + i % 200, 'a' + i % 26), i + 1u, i % 11 == 0));
  }
  std::string error;
  ASSERT_TRUE(WriteSnapshot(dir.path(), 2, "{}", {{"n:1#1", 3}}, store, error)) << error;
  const std::string path = dir.path() + "/" + SnapshotName(2);
  const Loaded one = Load(path, 1);
  ASSERT_TRUE(one.ok) << one.error;
  ASSERT_EQ(one.entries.size(), 40000u);
  // Sized from the first chunk and the file's size: near the real count (values vary in size
  // from key to key, so not exactly).
  EXPECT_GT(one.header.estimated_entries, 40000u * 3 / 4);
  EXPECT_LT(one.header.estimated_entries, 40000u * 5 / 4);
  for (unsigned threads : {2u, 3u, 8u}) {
    const Loaded many = Load(path, threads);
    ASSERT_TRUE(many.ok) << threads << " threads: " << many.error;
    EXPECT_EQ(many.header.applied, one.header.applied);
    ExpectSameEntries(one, many);
  }
}

// A chunk whose checksum holds but whose entries do not decode (written by a bug, not torn by a
// crash) is named by its offset whichever thread decodes it, and the load fails.
TEST(SnapshotTest, AnUndecodableChunkIsNamedByItsOffsetWithDecoderThreads) {
  TempDir dir;
  const std::string path = dir.path() + "/" + SnapshotName(1);
  std::string file, payload;
  payload.push_back(static_cast<char>(RecordType::kSnapshotHeader));
  PutString(payload, "KVSSNAP1");
  PutVarint(payload, 1);
  PutString(payload, "");
  PutVector(payload, {});
  AppendFramed(file, payload);
  auto chunk = [&](uint64_t claimed, int real) {
    payload.assign(1, static_cast<char>(RecordType::kSnapshotEntries));
    PutVarint(payload, claimed);
    for (int i = 0; i < real; ++i) {
      EncodeEntryBody(payload, "k" + std::to_string(file.size()) + "-" + std::to_string(i), "v", "",
                      false, 5, "n:1#1", 1, false);
    }
    const uint64_t offset = file.size();
    AppendFramed(file, payload);
    return offset;
  };
  for (int c = 0; c < 20; ++c) chunk(3, 3);
  const uint64_t bad = chunk(3, 2);  // claims one entry more than it holds
  for (int c = 0; c < 20; ++c) chunk(3, 3);
  payload.assign(1, static_cast<char>(RecordType::kSnapshotFooter));
  PutVarint(payload, 41 * 3);
  PutVarint(payload, 41);
  AppendFramed(file, payload);
  WriteFile(path, file);
  for (unsigned threads : {1u, 2u, 4u}) {
    const Loaded loaded = Load(path, threads);
    EXPECT_FALSE(loaded.ok) << threads << " threads";
    EXPECT_NE(loaded.error.find("at offset " + std::to_string(bad) + ":"), std::string::npos)
        << threads << " threads: " << loaded.error;
  }
}

}  // namespace
}  // namespace kvs::storage
