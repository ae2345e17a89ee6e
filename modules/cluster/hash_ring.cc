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
}

int HashRing::ShardFor(std::string_view key) const {
  const uint64_t h = StableHash(key);
  auto it = std::lower_bound(points_.begin(), points_.end(), std::make_pair(h, -1));
  if (it == points_.end()) it = points_.begin();
  return it->second;
}

}  // namespace kvs::cluster
