// Snapshots: the whole store written to snap-<n>.kvs, where n is the first log segment NOT
// covered (recovery loads the snapshot, then replays segments n, n+1, ...). The file is a
// record file (log_format.h): a header (segment, layout, applied vector), chunks of entries of
// at most ~1 MiB, and a footer with the entry count; it is written as a temporary file, synced
// and renamed, so a snapshot file that exists is complete unless the disk damaged it.
// Thread-safety: free functions; WriteSnapshot may run while the store is being written
// (it visits one stripe at a time).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "kvs/causal/metadata.h"
#include "kvs/storage/log_format.h"
#include "kvs/store/store.h"

namespace kvs::storage {

std::string SnapshotName(uint64_t segment);

struct SnapshotInfo {
  uint64_t entries = 0;
  uint64_t bytes = 0;
};

// Writes `store` to dir/snap-<segment>.kvs. Returns nullopt with `error` on failure (the
// temporary file is removed; an existing snapshot is left as it was).
std::optional<SnapshotInfo> WriteSnapshot(const std::string& dir, uint64_t segment,
                                          const std::string& layout,
                                          const causal::VersionVector& applied,
                                          const store::Store& store, std::string& error);

struct SnapshotHeader {
  uint64_t segment = 0;
  std::string layout;
  causal::VersionVector applied;
  // Not stored: how many entries the file holds, estimated from its size and its first chunk
  // (0 when it has none), so that a reader can size its map before the entries arrive.
  uint64_t estimated_entries = 0;
};

// Reads a snapshot: `on_header` once (once the first chunk is read: see estimated_entries),
// then `on_entries` for each chunk's entries (views into the file's bytes, valid during the
// call; EachEntry for one at a time). False
// with `error` (naming the offset) when the file is damaged or incomplete; entries before the
// damage have been delivered.
// threads > 1: that many threads decode the entry chunks while the caller reads the file, so
// `on_entries` runs on several threads at once, in no set order (each key appears once in a
// snapshot), and must be thread-safe; on damage, entries of whole chunks after it may have
// been delivered too. threads <= 1: all on the calling thread, in file order.
bool LoadSnapshot(const std::string& path, const std::function<void(SnapshotHeader&&)>& on_header,
                  const EntriesFn& on_entries, uint64_t& entries, std::string& error,
                  unsigned threads = 1);

}  // namespace kvs::storage
