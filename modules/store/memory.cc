#include "kvs/store/memory.h"

#define TBB_PREVIEW_MEMORY_POOL 1
#include <sys/mman.h>
#include <tbb/memory_pool.h>

#include <atomic>
#include <cstdlib>
#include <mutex>
#include <new>

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
  regions.fetch_add(1, std::memory_order_relaxed);
  region_bytes.fetch_add(size, std::memory_order_relaxed);
  return region;
}

void RegionSource::deallocate(char* region, size_t bytes) {
  const size_t size = RoundUp(bytes, kPage);
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

MemoryStats GetMemoryStats() {
  return MemoryStats{
      mapped_bytes.load(std::memory_order_relaxed), regions.load(std::memory_order_relaxed),
      region_bytes.load(std::memory_order_relaxed), huge_advised.load(std::memory_order_relaxed)};
}

}  // namespace kvs::store
