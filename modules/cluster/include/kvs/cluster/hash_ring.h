// Consistent-hash ring mapping keys to shard ids 0..N-1. Plain immutable value: safe to share
// between threads once built.
// Hash: XXH3_64bits (xxHash 0.8, Debian libxxhash), stable across machines and builds; pinned
// by test vectors. Each shard owns kVirtualNodes points "shard:<id>:<v>"; a key belongs to the
// shard of the first point at or after its hash, wrapping around. A lookup starts from an
// index of where each 1/4096 of the hash space begins among the points (about half a point
// per slot), so it costs the hash and a comparison or two, not a binary search of every point.
#pragma once

#include <cstddef>
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
  static constexpr int kIndexBits = 12;

  int shard_count_;
  std::vector<std::pair<uint64_t, int>> points_;  // sorted by hash
  // index_[b]: the first point whose hash is at or after b << (64 - kIndexBits); one slot more
  // at the end (= points_.size()).
  std::vector<uint32_t> index_;
};

}  // namespace kvs::cluster
