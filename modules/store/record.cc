#include "kvs/store/record.h"

#include <cstdlib>
#include <new>
#include <stdexcept>
#include <utility>

namespace kvs::store {
namespace {

std::atomic<uint64_t> next_table_id{1};

// The origin this thread interned last, per table: local writes intern the same origin over
// and over, and this spares them the table's lock.
struct LastOrigin {
  uint64_t table = 0;
  const std::string* origin = nullptr;
  uint32_t id = 0;
};
thread_local LastOrigin tls_last_origin;

}  // namespace

OriginTable::OriginTable() : table_id_(next_table_id.fetch_add(1, std::memory_order_relaxed)) {}

OriginTable::~OriginTable() {
  for (auto& chunk : chunks_) delete chunk.load(std::memory_order_relaxed);
}

const std::string& OriginTable::Empty() {
  static const std::string kEmpty;
  return kEmpty;
}

uint32_t OriginTable::Intern(std::string_view origin) {
  if (origin.empty()) return kNone;
  LastOrigin& last = tls_last_origin;
  if (last.table == table_id_ && *last.origin == origin) return last.id;
  std::pair<const std::string*, uint32_t> found{nullptr, kNone};
  {
    std::shared_lock lock(mu_);
    auto it = ids_.find(origin);
    if (it != ids_.end()) found = {&it->first, it->second};
  }
  if (found.first == nullptr) {
    std::unique_lock lock(mu_);
    auto it = ids_.find(origin);
    if (it == ids_.end()) {
      const uint32_t id = static_cast<uint32_t>(ids_.size()) + 1;
      if (id > kMaxOrigins) throw std::length_error("too many write origins");
      it = ids_.emplace(std::string(origin), id).first;
      std::atomic<Chunk*>& slot = chunks_[id >> kChunkBits];
      Chunk* chunk = slot.load(std::memory_order_relaxed);
      if (chunk == nullptr) {
        chunk = new Chunk;
        slot.store(chunk, std::memory_order_release);
      }
      chunk->slots[id & (kChunkSize - 1)].store(&it->first, std::memory_order_release);
    }
    found = {&it->first, it->second};
  }
  last = LastOrigin{table_id_, found.first, found.second};
  return found.second;
}

size_t OriginTable::size() const {
  std::shared_lock lock(mu_);
  return ids_.size();
}

Record& Record::operator=(Record&& other) noexcept {
  if (this != &other) {
    Free();
    data_ = std::exchange(other.data_, nullptr);
    hlc_ = std::exchange(other.hlc_, 0);
    seq_ = std::exchange(other.seq_, 0);
    origin_ = std::exchange(other.origin_, OriginTable::kNone);
    size_and_flags_ = std::exchange(other.size_and_flags_, 0);
  }
  return *this;
}

void Record::Assign(std::string_view value, std::string_view meta, bool tombstone, uint64_t hlc,
                    uint32_t origin, uint64_t seq) {
  if (value.size() > kSizeMask) throw std::length_error("value too large for the store");
  const uint32_t meta_size = static_cast<uint32_t>(meta.size());
  const size_t bytes = value.size() + (meta.empty() ? 0 : sizeof meta_size + meta.size());
  // A block of the same size is written over in place (an overwrite of a value with one of the
  // same length, the common case): no allocation, no free, no fresh memory. Not when the new
  // bytes come from the block itself.
  const size_t old_bytes = BlockBytes();
  const auto inside_block = [&](std::string_view bytes_in) {
    return !bytes_in.empty() && bytes_in.data() < data_ + old_bytes &&
           bytes_in.data() + bytes_in.size() > data_;
  };
  const bool reuse =
      bytes != 0 && bytes == old_bytes && !inside_block(value) && !inside_block(meta);
  char* data = reuse || bytes == 0 ? data_ : static_cast<char*>(AllocateBlock(bytes));
  if (!value.empty()) std::memcpy(data, value.data(), value.size());
  if (!meta.empty()) {
    std::memcpy(data + value.size(), &meta_size, sizeof meta_size);
    std::memcpy(data + value.size() + sizeof meta_size, meta.data(), meta.size());
  }
  if (!reuse) {
    Free();
    data_ = bytes == 0 ? nullptr : data;
  }
  hlc_ = hlc;
  seq_ = seq;
  origin_ = origin;
  size_and_flags_ = static_cast<uint32_t>(value.size()) | (tombstone ? kTombstone : 0) |
                    (meta.empty() ? 0 : kHasMeta);
}

void Record::Free() {
  FreeBlock(data_);
  data_ = nullptr;
}

}  // namespace kvs::store
