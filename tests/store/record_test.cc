#include "kvs/store/record.h"

#include <gtest/gtest.h>
#include <sys/mman.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "kvs/store/memory.h"

namespace kvs::store {
namespace {

TEST(StoredKeyTest, ShortAndLongKeysCopyAndCompare) {
  for (const std::string& text : {std::string(), std::string("k"), std::string(15, 'a'),
                                  std::string(16, 'b'), std::string(50, 'c')}) {
    const StoredKey borrowed = StoredKey::Borrow(text);
    EXPECT_EQ(borrowed.view(), text);
    StoredKey copy = borrowed;  // owning
    EXPECT_EQ(copy.view(), text);
    EXPECT_NE(copy.view().data(), text.data()) << "a copy must not point at the borrowed bytes";
    EXPECT_TRUE(copy == borrowed);
    StoredKey assigned;
    assigned = copy;
    EXPECT_EQ(assigned.view(), text);
  }
  EXPECT_FALSE(StoredKey::Borrow("key1") == StoredKey::Borrow("key2"));
  EXPECT_FALSE(StoredKey::Borrow(std::string(20, 'x')) == StoredKey::Borrow(std::string(21, 'x')));
}

TEST(StoredKeyTest, CopyOutlivesTheBorrowedText) {
  StoredKey copy;
  {
    std::string text(40, 'z');
    copy = StoredKey::Borrow(text);
    text.assign(40, 'y');
  }
  EXPECT_EQ(copy.view(), std::string(40, 'z'));
}

TEST(OriginTableTest, InternsEachOriginOnce) {
  OriginTable table;
  const uint32_t a = table.Intern("10.0.0.1:8080#1.0");
  const uint32_t b = table.Intern("10.0.0.2:8080#7.3");
  EXPECT_NE(a, b);
  EXPECT_NE(a, OriginTable::kNone);
  EXPECT_EQ(table.Get(a), "10.0.0.1:8080#1.0");
  EXPECT_EQ(table.Get(b), "10.0.0.2:8080#7.3");
  EXPECT_EQ(table.Intern(std::string("10.0.0.1:8080#1.0")), a);
  EXPECT_EQ(table.Intern("10.0.0.2:8080#7.3"), b);
  EXPECT_EQ(table.Intern(""), OriginTable::kNone);
  EXPECT_EQ(table.Get(OriginTable::kNone), "");
  EXPECT_EQ(table.size(), 2u);
  // Another table numbers its own origins (the per-thread cache must not leak across).
  OriginTable other;
  const uint32_t c = other.Intern("10.0.0.9:8080#1.0");
  EXPECT_EQ(other.Get(c), "10.0.0.9:8080#1.0");
  EXPECT_EQ(other.Get(other.Intern("10.0.0.2:8080#7.3")), "10.0.0.2:8080#7.3");
  EXPECT_EQ(table.Get(table.Intern("10.0.0.2:8080#7.3")), "10.0.0.2:8080#7.3");
}

TEST(OriginTableTest, ManyOriginsSpanChunks) {
  OriginTable table;
  std::vector<uint32_t> ids;
  for (uint32_t i = 0; i < 3 * OriginTable::kChunkSize; ++i) {
    ids.push_back(table.Intern("o" + std::to_string(i)));
  }
  for (uint32_t i = 0; i < ids.size(); ++i) EXPECT_EQ(table.Get(ids[i]), "o" + std::to_string(i));
}

TEST(OriginTableTest, ConcurrentInternAgrees) {
  OriginTable table;
  std::atomic<bool> id_mismatch{false};
  constexpr int kThreads = 4;
  std::vector<std::vector<uint32_t>> seen(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 2000; ++i) {
        const uint32_t id = table.Intern("origin-" + std::to_string((i * 7 + t) % 50));
        // Readable at once from the thread that interned it.
        if (table.Get(id) != "origin-" + std::to_string((i * 7 + t) % 50)) id_mismatch = true;
        seen[t].push_back(id);
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_FALSE(id_mismatch.load());
  EXPECT_EQ(table.size(), 50u);
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < 2000; ++i) {
      EXPECT_EQ(table.Get(seen[t][i]), "origin-" + std::to_string((i * 7 + t) % 50));
    }
  }
}

TEST(RecordTest, HoldsValueMetaAndVersion) {
  OriginTable origins;
  Record record;
  EXPECT_EQ(record.value(), "");
  EXPECT_EQ(record.origin(), OriginTable::kNone);
  record.Assign("value", "0|o=1", false, 42, origins.Intern("o"), 7);
  EXPECT_EQ(record.value(), "value");
  EXPECT_EQ(record.meta(), "0|o=1");
  EXPECT_FALSE(record.tombstone());
  EXPECT_EQ(record.hlc(), 42u);
  EXPECT_EQ(record.seq(), 7u);
  EXPECT_EQ(origins.Get(record.origin()), "o");
  record.Assign("", "", true, 43, origins.Intern("p"), 8);
  EXPECT_EQ(record.value(), "");
  EXPECT_EQ(record.meta(), "");
  EXPECT_TRUE(record.tombstone());
  EXPECT_EQ(origins.Get(record.origin()), "p");
  const std::string binary("a\0b", 3);
  record.Assign(binary, "", false, 1, origins.Intern("o"), 1);
  EXPECT_EQ(record.value(), binary);
  EXPECT_EQ(record.meta(), "");
  EXPECT_FALSE(record.tombstone());
  Record moved = std::move(record);
  EXPECT_EQ(moved.value(), binary);
  EXPECT_EQ(record.value(), "");  // NOLINT(bugprone-use-after-move): moved-from is empty
}

TEST(RecordTest, OverwritesASameSizeBlockInPlace) {
  Record record;
  record.Assign("aaaa", "m1", false, 1, 1, 1);
  const char* block = record.value().data();
  record.Assign("bbbb", "m2", false, 2, 1, 2);  // same value and meta sizes: same block
  EXPECT_EQ(record.value().data(), block);
  EXPECT_EQ(record.value(), "bbbb");
  EXPECT_EQ(record.meta(), "m2");
  EXPECT_EQ(record.hlc(), 2u);
  record.Assign("bbb", "m2x", false, 3, 1, 3);  // same block size, split differently
  EXPECT_EQ(record.value(), "bbb");
  EXPECT_EQ(record.meta(), "m2x");
  record.Assign("longer value", "m", false, 4, 1, 4);  // larger: a new block
  EXPECT_EQ(record.value(), "longer value");
  EXPECT_EQ(record.meta(), "m");
  record.Assign("", "", true, 5, 1, 5);  // a tombstone holds no block
  EXPECT_EQ(record.value().size(), 0u);
  EXPECT_EQ(record.meta(), "");
  EXPECT_TRUE(record.tombstone());
}

TEST(RecordTest, AssignsFromItsOwnBytes) {
  // The new value is the old value's tail and the meta its head, in a block of the same size
  // (2 + 4 + 2 bytes): the block must not be written over while they are read from it.
  Record record;
  record.Assign("abcdefgh", "", false, 1, 1, 1);
  const std::string_view old = record.value();
  record.Assign(old.substr(6), old.substr(0, 2), false, 2, 1, 2);
  EXPECT_EQ(record.value(), "gh");
  EXPECT_EQ(record.meta(), "ab");
}

TEST(MemoryTest, BlocksComeFromAlignedRegions) {
  // A region appears with the first block (unless an earlier test made one), and blocks are
  // usable and 8-byte aligned.
  std::vector<void*> blocks;
  for (int i = 0; i < 20000; ++i) {
    void* block = AllocateBlock(100 + i % 50);
    std::memset(block, i & 0xff, 100 + i % 50);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(block) % 8, 0u);
    blocks.push_back(block);
  }
  const MemoryStats stats = GetMemoryStats();
  EXPECT_GE(stats.mapped_bytes, stats.region_bytes);
#if !KVS_TSAN
  EXPECT_GE(stats.regions, 1u);
  EXPECT_GE(stats.region_bytes, 20000u * 100);
  if (HugePages()) {
    EXPECT_GE(stats.huge_advised, 1u);
  }
#endif
  for (int i = 0; i < 20000; ++i) {
    EXPECT_EQ(static_cast<unsigned char*>(blocks[i])[99], static_cast<unsigned char>(i & 0xff));
    FreeBlock(blocks[i]);
  }
  FreeBlock(nullptr);  // does nothing
}

#if !KVS_TSAN
// Kilobytes in huge pages of the mapping that holds `address` (/proc/self/smaps).
uint64_t AnonHugeKiBAround(const void* address) {
  const auto at = reinterpret_cast<uintptr_t>(address);
  std::ifstream in("/proc/self/smaps");
  std::string line;
  bool inside = false;
  while (std::getline(in, line)) {
    uintptr_t from = 0, to = 0;
    if (std::sscanf(line.c_str(), "%lx-%lx ", &from, &to) == 2 && line.find(':') > line.find(' ')) {
      inside = from <= at && at < to;
    } else if (inside && line.rfind("AnonHugePages:", 0) == 0) {
      return std::stoull(line.substr(14));
    }
  }
  return 0;
}

// Whether this kernel moves a dense 2 MiB range into a huge page on request.
bool KernelCollapses() {
  constexpr size_t kHuge = size_t{2} << 20;
  void* p = ::mmap(nullptr, 2 * kHuge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return false;
  auto* range =
      reinterpret_cast<char*>((reinterpret_cast<uintptr_t>(p) + kHuge - 1) / kHuge * kHuge);
  std::memset(range, 1, kHuge);
  const bool ok = ::madvise(range, kHuge, 25 /* MADV_COLLAPSE */) == 0;
  ::munmap(p, 2 * kHuge);
  return ok;
}

TEST(MemoryTest, DenseRangesWrittenInSmallPagesMoveIntoHugePages) {
  if (!KernelCollapses()) GTEST_SKIP() << "this kernel does not collapse ranges on request";
  const bool was = HugePages();
  SetHugePages(false);  // as after recovery: writes fill 4 KiB pages
  // ~96 MiB: more than one pool mapping (64 MiB), so the last blocks are in one mapped now,
  // without the huge-page advice.
  constexpr int kBlocks = 800000;
  std::vector<char*> blocks;
  for (int i = 0; i < kBlocks; ++i) {
    auto* block = static_cast<char*>(AllocateBlock(120));
    std::memset(block, i & 0xff, 120);
    blocks.push_back(block);
  }
  const char* last = blocks.back();
  EXPECT_EQ(AnonHugeKiBAround(last), 0u);
  const uint64_t stats_before = GetMemoryStats().huge_bytes;
  size_t found = 0;
  while (size_t n = CollapseDenseRanges(8, 90)) found += n;  // a few at a time, until done
  EXPECT_GE(found, 16u);
  EXPECT_EQ(CollapseDenseRanges(100, 90), 0u);  // nothing left: nothing again
  EXPECT_GE(GetMemoryStats().huge_bytes, stats_before + 16 * (size_t{2} << 20));
  EXPECT_GE(AnonHugeKiBAround(last), 8u * 2048);  // that mapping is now mostly huge pages
  for (int i = 0; i < kBlocks; ++i) {
    ASSERT_EQ(blocks[i][0], static_cast<char>(i & 0xff)) << i;
    ASSERT_EQ(blocks[i][119], static_cast<char>(i & 0xff)) << i;
    FreeBlock(blocks[i]);
  }
  SetHugePages(was);
}
#endif

TEST(RecordTest, StaysSmall) {
  // The store's per-entry budget (README "Memory") depends on these sizes.
  EXPECT_EQ(sizeof(Record), 32u);
  EXPECT_EQ(sizeof(StoredKey), 16u);
}

}  // namespace
}  // namespace kvs::store
