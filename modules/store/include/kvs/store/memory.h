// Where the store's memory comes from: its map nodes, value blocks and long keys are carved by
// oneTBB's scalable allocator (the engine of scalable_malloc) out of a memory pool of its own,
// whose raw regions are 2 MiB-aligned pieces of larger mappings that the kernel is asked to
// back with transparent huge pages (madvise MADV_HUGEPAGE). The kernel's default here is
// THP "madvise", and tbbmalloc's own huge-page mode only uses THP when the default is
// "always", so without this every 4 KiB page of the store is its own page fault: a restart
// that loads 10M keys (~2.5 GB) took 5-7 s in faults alone on this machine's VM, ~2.5 s with
// huge pages (README "Memory").
// Thread-safety: every function is thread-safe. Under ThreadSanitizer the store does not use
// the pool (tbbmalloc is not instrumented; store.h, record.cc).
#pragma once

// KVS_TSAN: this translation unit is built with ThreadSanitizer (GCC or clang).
#if defined(__SANITIZE_THREAD__)
#define KVS_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define KVS_TSAN 1
#endif
#endif
#ifndef KVS_TSAN
#define KVS_TSAN 0
#endif

#include <cstddef>
#include <cstdint>

namespace kvs::store {

// Whether regions mapped from now on ask for huge pages (on by default; the server turns it
// on for its recovery only: kvs.store.huge_pages).
void SetHugePages(bool on);
bool HugePages();

// A block of `bytes` (> 0) from the store's pool, at least 8-byte aligned (throws
// std::bad_alloc when none can be had), and its release. FreeBlock(nullptr) does nothing.
// Under ThreadSanitizer: malloc and free.
void* AllocateBlock(size_t bytes);
void FreeBlock(void* block);

struct MemoryStats {
  uint64_t mapped_bytes = 0;  // address space mapped for the pool (touched or not)
  uint64_t regions = 0;       // raw regions the pool has taken and not given back
  uint64_t region_bytes = 0;  // their bytes
  uint64_t huge_advised = 0;  // mappings the kernel was asked to back with huge pages
  uint64_t huge_bytes = 0;    // bytes of the ranges CollapseDenseRanges found in huge pages
};
MemoryStats GetMemoryStats();

// Asks the kernel (madvise MADV_COLLAPSE, Linux 6.1) to move into huge pages the 2 MiB ranges of
// the pool that are at least `min_resident_percent` in use (so the RSS grows by at most the
// rest: tbbmalloc leaves 3-4 pages of each 1 MiB region untouched, ~1.5%), trying at most
// `max_ranges` of them per call (failed tries count); returns how many it found in huge pages,
// newly or already. Memory that writes filled a little at a time is in 4 KiB pages, and on this
// project's VMs a process with 2 GB in 4 KiB pages pays several times as much CPU for each
// wake-up as one whose memory is in huge pages (idle at 10M keys: 1.2-1.4% of a core against
// 0.27%; README "Memory"). Does nothing where the kernel cannot (and under ThreadSanitizer,
// where the store does not use the pool). Meant for a background timer: each range costs a
// copy of 2 MiB.
size_t CollapseDenseRanges(size_t max_ranges, unsigned min_resident_percent = 97);

// An allocator of the store's pool, for containers (the map's nodes).
template <typename T>
struct PoolAllocator {
  using value_type = T;
  PoolAllocator() = default;
  template <typename U>
  PoolAllocator(const PoolAllocator<U>&) {}  // NOLINT: rebinding converts implicitly
  T* allocate(size_t n) { return static_cast<T*>(AllocateBlock(n * sizeof(T))); }
  void deallocate(T* p, size_t) { FreeBlock(p); }
  template <typename U>
  bool operator==(const PoolAllocator<U>&) const {
    return true;
  }
};

namespace detail {
// The pool's source of raw regions (an allocator of bytes, as tbb::memory_pool expects).
struct RegionSource {
  using value_type = char;
  RegionSource() = default;
  template <typename U>
  explicit RegionSource(const U&) {}
  char* allocate(size_t bytes);
  void deallocate(char* region, size_t bytes);
  bool operator==(const RegionSource&) const { return true; }
};
}  // namespace detail

}  // namespace kvs::store
