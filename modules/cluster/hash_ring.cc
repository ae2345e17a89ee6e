#include "kvs/cluster/hash_ring.h"

#include <xxhash.h>

#include <algorithm>
#include <string>

namespace kvs::cluster {

uint64_t StableHash(std::string_view data) { return XXH3_64bits(data.data(), data.size()); }

HashRing::HashRing(int shard_count) : shard_count_(shard_count) {
  points_.reserve(static_cast<size_t>(shard_count) * kVirtualNodes);
  for (int shard = 0; shard < shard_count; ++shard) {
    for (int v = 0; v < kVirtualNodes; ++v) {
      const std::string label = "shard:" + std::to_string(shard) + ":" + std::to_string(v);
      points_.emplace_back(StableHash(label), shard);
    }
  }
  std::sort(points_.begin(), points_.end());
  const size_t slots = size_t{1} << kIndexBits;
  index_.resize(slots + 1);
  size_t point = 0;
  for (size_t slot = 0; slot < slots; ++slot) {
    const uint64_t start = uint64_t{slot} << (64 - kIndexBits);
    while (point < points_.size() && points_[point].first < start) ++point;
    index_[slot] = static_cast<uint32_t>(point);
  }
  index_[slots] = static_cast<uint32_t>(points_.size());
}

int HashRing::ShardFor(std::string_view key) const {
  if (shard_count_ == 1) return points_.front().second;
  const uint64_t h = StableHash(key);
  const size_t slot = static_cast<size_t>(h >> (64 - kIndexBits));
  // The first point at or after h is in h's slot, or else it is the first point of a later
  // slot: index_[slot + 1] (the end of the points: wrap around to the first).
  const auto begin = points_.begin() + index_[slot];
  const auto end = points_.begin() + index_[slot + 1];
  auto it = std::lower_bound(begin, end, std::make_pair(h, -1));
  if (it == points_.end()) it = points_.begin();
  return it->second;
}

}  // namespace kvs::cluster
