// Consistent-hash ring mapping keys to shard ids 0..N-1. Plain immutable value: safe to share
// between threads once built.
// Hash: XXH3_64bits (xxHash 0.8, Debian libxxhash), stable across machines and builds; pinned
// by test vectors. Each shard owns kVirtualNodes points "shard:<id>:<v>"; a key belongs to the
// shard of the first point at or after its hash, wrapping around.
#pragma once

#include <cstdint>
#include <string_view>
#include <utility>
#include <vector>

namespace kvs::cluster {

// XXH3_64bits of `data` (seed 0).
uint64_t StableHash(std::string_view data);

class HashRing {
 public:
  static constexpr int kVirtualNodes = 1024;

  // REQUIRES: shard_count >= 1.
  explicit HashRing(int shard_count);

  int ShardFor(std::string_view key) const;
  int shard_count() const { return shard_count_; }

 private:
  int shard_count_;
  std::vector<std::pair<uint64_t, int>> points_;  // sorted by hash
};

}  // namespace kvs::cluster
