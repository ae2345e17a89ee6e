// A node's data directory: an exclusive lock (one process per directory), the IDENTITY file
// (which node and which cluster wrote it, and the last incarnation it started), and the
// listing of log segments and snapshots.
// Thread-safety: immutable after Open, except the listings, which read the directory.
// Invariant: while a DataDir is open no other kvs process uses the directory, and every
// incarnation it hands out is larger than any it handed out before (persisted before use).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace kvs::storage {

// fsyncs directory `dir` (so that files created, renamed or removed in it stay so after a
// crash). False with `error` set on failure.
bool SyncDirectory(const std::string& dir, std::string& error);

class DataDir {
 public:
  // Creates `path` if needed, locks it and checks IDENTITY: a directory written for another
  // node address or another cluster id is refused (nullptr, `error` says which). Then records
  // a new incarnation, max(now_ms, last + 1), durably, before returning.
  static std::unique_ptr<DataDir> Open(const std::string& path, const std::string& address,
                                       const std::string& cluster, uint64_t now_ms,
                                       std::string& error);
  ~DataDir();
  DataDir(const DataDir&) = delete;
  DataDir& operator=(const DataDir&) = delete;

  const std::string& path() const { return path_; }
  uint64_t incarnation() const { return incarnation_; }
  // Sorted numbers of the wal-<n>.log / snap-<n>.kvs files present.
  std::vector<uint64_t> Segments() const;
  std::vector<uint64_t> Snapshots() const;
  std::string SegmentPath(uint64_t n) const;
  std::string SnapshotPath(uint64_t n) const;

 private:
  DataDir(std::string path, int lock_fd, uint64_t incarnation)
      : path_(std::move(path)), lock_fd_(lock_fd), incarnation_(incarnation) {}
  std::vector<uint64_t> List(const char* prefix, const char* suffix) const;

  std::string path_;
  int lock_fd_;
  uint64_t incarnation_;
};

}  // namespace kvs::storage
