// The store's compact in-memory forms: StoredKey (a key in 16 bytes, short keys inline),
// Record (one entry in 32 bytes plus one heap block for value and metadata) and OriginTable
// (each write origin kept once, entries hold its id). They exist to keep a million small keys
// within about twice their raw bytes (README "Memory").
// Thread-safety: StoredKey and Record are values guarded by their map's locks; OriginTable is
// thread-safe. Invariant: an interned origin string never moves or dies before its table.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "kvs/store/memory.h"

namespace kvs::store {

// A key of the map. Keys of up to 15 bytes live inside the object; longer ones in a heap
// block it owns. A "borrowed" key only points at someone else's bytes: it is what lookups
// pass to the map (no copy, no allocation), and copying any key makes an owning one.
class StoredKey {
 public:
  StoredKey() { SetInline({}); }
  // Borrows `text`: valid only while `text` is.
  static StoredKey Borrow(std::string_view text) {
    StoredKey key;
    key.SetHeap(text.data(), static_cast<uint32_t>(text.size()), kBorrowed);
    return key;
  }
  StoredKey(const StoredKey& other) { CopyFrom(other.view()); }
  StoredKey& operator=(const StoredKey& other) {
    if (this != &other) {
      Release();
      CopyFrom(other.view());
    }
    return *this;
  }
  ~StoredKey() { Release(); }

  std::string_view view() const {
    if (IsInline()) return {bytes_, static_cast<size_t>(static_cast<uint8_t>(bytes_[kTag]))};
    return {HeapPointer(), HeapSize()};
  }
  bool operator==(const StoredKey& other) const { return view() == other.view(); }

 private:
  static constexpr size_t kSize = 16;
  static constexpr size_t kTag = kSize - 1;  // inline: the length; else kOwned or kBorrowed
  static constexpr size_t kInlineMax = kSize - 1;
  static constexpr uint8_t kOwned = 0xFE;
  static constexpr uint8_t kBorrowed = 0xFF;

  bool IsInline() const { return static_cast<uint8_t>(bytes_[kTag]) <= kInlineMax; }
  const char* HeapPointer() const {
    const char* p;
    std::memcpy(&p, bytes_, sizeof p);
    return p;
  }
  uint32_t HeapSize() const {
    uint32_t n;
    std::memcpy(&n, bytes_ + sizeof(char*), sizeof n);
    return n;
  }
  void SetInline(std::string_view text) {
    std::memset(bytes_, 0, kSize);
    if (!text.empty()) std::memcpy(bytes_, text.data(), text.size());  // data() may be null
    bytes_[kTag] = static_cast<char>(text.size());
  }
  void SetHeap(const char* p, uint32_t n, uint8_t tag) {
    std::memset(bytes_, 0, kSize);
    std::memcpy(bytes_, &p, sizeof p);
    std::memcpy(bytes_ + sizeof(char*), &n, sizeof n);
    bytes_[kTag] = static_cast<char>(tag);
  }
  void CopyFrom(std::string_view text) {
    if (text.size() <= kInlineMax) {
      SetInline(text);
      return;
    }
    char* p = static_cast<char*>(AllocateBlock(text.size()));
    std::memcpy(p, text.data(), text.size());
    SetHeap(p, static_cast<uint32_t>(text.size()), kOwned);
  }
  void Release() {
    if (static_cast<uint8_t>(bytes_[kTag]) == kOwned) FreeBlock(const_cast<char*>(HeapPointer()));
  }

  char bytes_[kSize];
};
static_assert(sizeof(StoredKey) == 16);

// Write origins ("address#incarnation.epoch"), each stored once for the life of the table
// and known by a small id; entries hold the id instead of a copy of the string.
class OriginTable {
 public:
  // Id 0 is the empty origin.
  static constexpr uint32_t kNone = 0;

  OriginTable();
  ~OriginTable();
  OriginTable(const OriginTable&) = delete;
  OriginTable& operator=(const OriginTable&) = delete;

  // The id of `origin` (added on first use). Throws std::length_error past kMaxOrigins.
  uint32_t Intern(std::string_view origin);
  // The origin of `id` (from Intern; kNone gives ""). Lock-free.
  const std::string& Get(uint32_t id) const {
    if (id == kNone) return Empty();
    const Chunk* chunk = chunks_[id >> kChunkBits].load(std::memory_order_acquire);
    return *chunk->slots[id & (kChunkSize - 1)].load(std::memory_order_acquire);
  }
  size_t size() const;

  static constexpr uint32_t kChunkBits = 10;
  static constexpr uint32_t kChunkSize = 1u << kChunkBits;
  static constexpr uint32_t kChunks = 4096;
  static constexpr uint32_t kMaxOrigins = kChunks * kChunkSize - 1;

 private:
  struct Chunk {
    std::atomic<const std::string*> slots[kChunkSize] = {};
  };
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  struct Equal {
    using is_transparent = void;
    bool operator()(std::string_view a, std::string_view b) const { return a == b; }
  };
  static const std::string& Empty();

  const uint64_t table_id_;  // tells tables apart in the per-thread cache of the last origin
  mutable std::shared_mutex mu_;
  // GUARDED_BY(mu_); the strings (map nodes) never move, Get() points at them.
  std::unordered_map<std::string, uint32_t, Hash, Equal> ids_;
  std::atomic<Chunk*> chunks_[kChunks] = {};
};

// One stored entry in 32 bytes: version (hlc, origin id, seq), tombstone flag, and value +
// metadata bytes in a single heap block (none when both are empty).
class Record {
 public:
  Record() = default;
  Record(Record&& other) noexcept { *this = std::move(other); }
  Record& operator=(Record&& other) noexcept;
  Record(const Record&) = delete;
  Record& operator=(const Record&) = delete;
  ~Record() { Free(); }

  // Replaces the contents; `origin` is an OriginTable id. Values are limited to 1 GiB.
  void Assign(std::string_view value, std::string_view meta, bool tombstone, uint64_t hlc,
              uint32_t origin, uint64_t seq);

  std::string_view value() const { return {data_, ValueSize()}; }
  std::string_view meta() const {
    if ((size_and_flags_ & kHasMeta) == 0) return {};
    uint32_t n;
    std::memcpy(&n, data_ + ValueSize(), sizeof n);
    return {data_ + ValueSize() + sizeof n, n};
  }
  bool tombstone() const { return (size_and_flags_ & kTombstone) != 0; }
  uint64_t hlc() const { return hlc_; }
  uint64_t seq() const { return seq_; }
  uint32_t origin() const { return origin_; }

 private:
  static constexpr uint32_t kTombstone = 1u << 31;
  static constexpr uint32_t kHasMeta = 1u << 30;
  static constexpr uint32_t kSizeMask = kHasMeta - 1;

  size_t ValueSize() const { return size_and_flags_ & kSizeMask; }
  // Size of the heap block (0 when there is none).
  size_t BlockBytes() const {
    if ((size_and_flags_ & kHasMeta) == 0) return ValueSize();
    return ValueSize() + sizeof(uint32_t) + meta().size();
  }
  void Free();

  char* data_ = nullptr;  // value bytes, then (with kHasMeta) a 4-byte length and the meta
  uint64_t hlc_ = 0;
  uint64_t seq_ = 0;
  uint32_t origin_ = OriginTable::kNone;
  uint32_t size_and_flags_ = 0;  // value size | kTombstone | kHasMeta
};

}  // namespace kvs::store
