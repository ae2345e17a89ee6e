#include "kvs/store/memory.h"

#define TBB_PREVIEW_MEMORY_POOL 1
#include <sys/mman.h>
#include <tbb/memory_pool.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <map>
#include <mutex>
#include <new>
#include <set>
#include <vector>

// Linux 6.1; glibc's headers name it from 2.37 on.
#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif

namespace kvs::store {
namespace {

constexpr size_t kPage = 4096;
constexpr size_t kHugePage = size_t{2} << 20;
// Regions (tbbmalloc asks for 1 MiB at a time) are carved out of mappings of this size, so that
// a 2 MiB-aligned range is wholly inside one mapping when its first page is touched: only then
// can the kernel back it with one huge page. A larger request gets a mapping of its own.
constexpr size_t kMapping = size_t{64} << 20;
constexpr size_t kOwnMappingAbove = kMapping / 4;

size_t RoundUp(size_t n, size_t to) { return (n + to - 1) / to * to; }

std::atomic<bool> huge_pages{true};
std::atomic<uint64_t> mapped_bytes{0};
std::atomic<uint64_t> regions{0};
std::atomic<uint64_t> region_bytes{0};
std::atomic<uint64_t> huge_advised{0};
std::atomic<uint64_t> huge_collapsed{0};  // ranges CollapseDenseRanges saw in huge pages
std::atomic<bool> collapse_works{true};

// Every live region (start -> bytes), and the 2 MiB ranges found in huge pages, so that
// CollapseDenseRanges looks only inside the pool's memory and only at ranges not done yet.
struct RegionBook {
  std::mutex mu;
  std::map<uintptr_t, size_t> live;  // GUARDED_BY(mu)
  std::set<uintptr_t> huge;          // GUARDED_BY(mu)
};
// Never destroyed, as the pool: tbbmalloc gives its regions back while the process exits,
// after static objects are gone.
RegionBook& Book() {
  static auto* book = new RegionBook();
  return *book;
}

// `bytes` (a multiple of kHugePage) of fresh memory, 2 MiB-aligned; nullptr when none.
char* MapAligned(size_t bytes) {
  void* p = ::mmap(nullptr, bytes + kHugePage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                   -1, 0);
  if (p == MAP_FAILED) return nullptr;
  const auto start = reinterpret_cast<uintptr_t>(p);
  const uintptr_t aligned = RoundUp(start, kHugePage);
  if (aligned > start) ::munmap(p, aligned - start);
  const uintptr_t end = start + bytes + kHugePage;
  if (end > aligned + bytes)
    ::munmap(reinterpret_cast<void*>(aligned + bytes), end - aligned - bytes);
  auto* region = reinterpret_cast<char*>(aligned);
  // Advice only: without it (or where THP is off) the memory is simply in 4 KiB pages.
  if (huge_pages.load(std::memory_order_relaxed) && ::madvise(region, bytes, MADV_HUGEPAGE) == 0) {
    huge_advised.fetch_add(1, std::memory_order_relaxed);
  }
  mapped_bytes.fetch_add(bytes, std::memory_order_relaxed);
  return region;
}

std::mutex carve_mu;
char* carve_next = nullptr;  // GUARDED_BY(carve_mu)
size_t carve_left = 0;       // GUARDED_BY(carve_mu)

#if !KVS_TSAN
// Never destroyed: blocks may still be freed while static objects are destroyed at exit.
tbb::memory_pool<detail::RegionSource>& Pool() {
  static auto* pool = new tbb::memory_pool<detail::RegionSource>();
  return *pool;
}
#endif

}  // namespace

namespace detail {

char* RegionSource::allocate(size_t bytes) {
  const size_t size = RoundUp(bytes, kPage);
  char* region = nullptr;
  if (size > kOwnMappingAbove) {
    region = MapAligned(RoundUp(size, kHugePage));
  } else {
    std::lock_guard lock(carve_mu);
    if (carve_left < size) {
      // The rest of the old mapping stays unused: address space only, never touched.
      carve_next = MapAligned(kMapping);
      carve_left = carve_next != nullptr ? kMapping : 0;
    }
    if (carve_next != nullptr) {
      region = carve_next;
      carve_next += size;
      carve_left -= size;
    }
  }
  if (region == nullptr) throw std::bad_alloc();
  {
    RegionBook& book = Book();
    std::lock_guard lock(book.mu);
    book.live.emplace(reinterpret_cast<uintptr_t>(region), size);
  }
  regions.fetch_add(1, std::memory_order_relaxed);
  region_bytes.fetch_add(size, std::memory_order_relaxed);
  return region;
}

void RegionSource::deallocate(char* region, size_t bytes) {
  const size_t size = RoundUp(bytes, kPage);
  {
    RegionBook& book = Book();
    std::lock_guard lock(book.mu);
    const auto start = reinterpret_cast<uintptr_t>(region);
    book.live.erase(start);
    const uintptr_t first = start / kHugePage * kHugePage;
    book.huge.erase(book.huge.lower_bound(first), book.huge.lower_bound(start + size));
    huge_collapsed.store(book.huge.size(), std::memory_order_relaxed);
  }
  ::munmap(region, size > kOwnMappingAbove ? RoundUp(size, kHugePage) : size);
  regions.fetch_sub(1, std::memory_order_relaxed);
  region_bytes.fetch_sub(size, std::memory_order_relaxed);
}

}  // namespace detail

void SetHugePages(bool on) { huge_pages.store(on, std::memory_order_relaxed); }
bool HugePages() { return huge_pages.load(std::memory_order_relaxed); }

void* AllocateBlock(size_t bytes) {
#if KVS_TSAN
  void* block = std::malloc(bytes);
#else
  void* block = Pool().malloc(bytes);
#endif
  if (block == nullptr) throw std::bad_alloc();
  return block;
}

void FreeBlock(void* block) {
  if (block == nullptr) return;
#if KVS_TSAN
  std::free(block);
#else
  Pool().free(block);
#endif
}

size_t CollapseDenseRanges(size_t max_ranges, unsigned min_resident_percent) {
  if (!collapse_works.load(std::memory_order_relaxed) || max_ranges == 0) return 0;
  // The 2 MiB ranges wholly inside runs of adjacent live regions, not known huge yet.
  std::vector<uintptr_t> candidates;
  RegionBook& book = Book();
  {
    std::lock_guard lock(book.mu);
    uintptr_t run_start = 0, run_end = 0;
    auto add_run = [&] {
      for (uintptr_t at = RoundUp(run_start, kHugePage); at + kHugePage <= run_end;
           at += kHugePage) {
        if (!book.huge.contains(at)) candidates.push_back(at);
      }
    };
    for (const auto& [start, size] : book.live) {
      if (start != run_end) {
        add_run();
        run_start = start;
      }
      run_end = start + size;
    }
    add_run();
  }
  constexpr size_t kPages = kHugePage / kPage;
  const size_t needed = (kPages * std::min(min_resident_percent, 100u) + 99) / 100;
  unsigned char resident[kPages];
  size_t collapsed = 0;
  std::vector<uintptr_t> now_huge;
  // Every attempt counts against the budget, failed or not: a collapse may make the kernel
  // compact memory to find a huge page, and a machine short of them must not pay for that
  // on every range every round.
  size_t attempts = 0;
  for (uintptr_t at : candidates) {
    if (attempts >= max_ranges) break;
    void* range = reinterpret_cast<void*>(at);
    if (::mincore(range, kHugePage, resident) != 0) continue;  // freed meanwhile
    size_t in_core = 0;
    for (unsigned char r : resident) in_core += r & 1;
    if (in_core < needed) continue;  // sparse: a huge page would add to the RSS
    ++attempts;
    if (::madvise(range, kHugePage, MADV_COLLAPSE) != 0) {
      // EINVAL: a kernel without it (or THP off): stop trying for good. ENOMEM: no huge page
      // to be had now: try again next round. EAGAIN (pages busy): the next range.
      if (errno == EINVAL) collapse_works.store(false, std::memory_order_relaxed);
      if (errno == EINVAL || errno == ENOMEM) break;
      continue;
    }
    now_huge.push_back(at);
    ++collapsed;  // or found already huge (a recovery's memory): counted the same
  }
  if (!now_huge.empty()) {
    std::lock_guard lock(book.mu);
    for (uintptr_t at : now_huge) {
      // Still the pool's (not freed and mapped again meanwhile)?
      auto it = book.live.upper_bound(at);
      if (it != book.live.begin() && std::prev(it)->first + std::prev(it)->second > at) {
        book.huge.insert(at);
      }
    }
    huge_collapsed.store(book.huge.size(), std::memory_order_relaxed);
  }
  return collapsed;
}

MemoryStats GetMemoryStats() {
  return MemoryStats{
      mapped_bytes.load(std::memory_order_relaxed), regions.load(std::memory_order_relaxed),
      region_bytes.load(std::memory_order_relaxed), huge_advised.load(std::memory_order_relaxed),
      huge_collapsed.load(std::memory_order_relaxed) * kHugePage};
}

}  // namespace kvs::store
