// The write-ahead log: records appended by any thread are written by one writer thread in
// groups (group commit) to numbered segment files, wal-<n>.log, with the fsync policy chosen.
// An appender gets a log sequence number (LSN: bytes appended since the log was opened) and
// may wait, or ask later, until its record is durable; a listener is told after every group,
// so an event loop can release answers without ever blocking on the disk.
// Thread-safety: every public method may be called from any thread; the file is touched only
// by the writer thread.
// Invariant: durable_lsn() only grows, and a record at or below it is on disk (kAlways:
// fsynced; kInterval/kNever: handed to the kernel). After a failed write or fsync, the bytes
// not known to be durable are kept in memory and written again from the last durable offset,
// so a failure never leaves a hole before later records.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

namespace kvs::storage {

enum class FsyncPolicy { kAlways, kInterval, kNever };
std::optional<FsyncPolicy> ParseFsyncPolicy(std::string_view text);
const char* ToString(FsyncPolicy policy);

struct WalOptions {
  FsyncPolicy fsync = FsyncPolicy::kAlways;
  std::chrono::milliseconds fsync_interval{1000};
  std::chrono::milliseconds retry_after_error{200};
  // A segment is preallocated (zero-filled) to this size and, once full, synced and followed
  // by the next one, which a background thread zero-fills ahead of time; 0: neither (a
  // segment changes only on Rotate).
  uint64_t segment_bytes = 4ull << 20;
  // kAlways: groups are written with O_DIRECT (whole 4 KiB blocks, the last block's records
  // again each time) where the file system takes it, so the fsync after them only flushes
  // the device: no page cache copy, no writeback. Falls back to buffered writes by itself.
  bool direct_io = true;
};

// File name of segment `n` in a data directory.
std::string SegmentName(uint64_t n);
// File name of the segment a log zero-fills ahead of use (not a segment yet: recovery
// removes one left behind).
inline constexpr const char* kPreparedSegmentName = "wal-next.tmp";

class Wal {
 public:
  enum class State { kDurable, kPending, kFailed };
  // Upper bounds (µs) of the fsync latency histogram's buckets; one more bucket is +Inf.
  static constexpr std::array<uint64_t, 12> kFsyncBucketMicros = {
      100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 1000000};
  struct Stats {
    std::array<uint64_t, kFsyncBucketMicros.size() + 1> fsync_buckets{};  // not cumulative
    uint64_t fsyncs = 0;
    uint64_t fsync_micros_total = 0;
    uint64_t fsync_micros_max = 0;
    uint64_t groups = 0;
    uint64_t bytes_written = 0;
    uint64_t errors = 0;
  };

  // Creates segment `segment` in `dir` and starts the writer. nullptr with `error` set when the
  // file cannot be created.
  static std::unique_ptr<Wal> Open(const std::string& dir, uint64_t segment,
                                   const WalOptions& options, std::string& error);
  ~Wal();
  Wal(const Wal&) = delete;
  Wal& operator=(const Wal&) = delete;

  // How soon a record must reach the disk under FsyncPolicy::kAlways.
  enum class Urgency {
    // Someone (a client's write) waits for it: written and synced in the next group.
    kPrompt,
    // Nobody waits for it (a change applied from a peer's broadcast, which the peer already
    // made durable before acknowledging it): it rides along with the next prompt record's group,
    // or is synced within kRelaxedLinger if none comes, so that records no one waits for do not
    // each cost a group fsync. Wait() on it makes it prompt.
    kRelaxed,
  };
  // Frames `payload` as a record and queues it; returns its LSN.
  uint64_t Append(std::string_view payload, Urgency urgency = Urgency::kPrompt);
  State Check(uint64_t lsn) const;
  // Blocks until the record at `lsn` is durable or failed, or `timeout` passes (kPending).
  State Wait(uint64_t lsn, std::chrono::milliseconds timeout);
  // False after a write or fsync error until a retry succeeds.
  bool healthy() const { return healthy_.load(std::memory_order_acquire); }
  uint64_t appended_lsn() const;
  // Starts a new segment after writing and syncing what was appended so far; returns the new
  // segment's number (every record appended before the call is in an earlier segment), or
  // nullopt when the log cannot be written within `timeout`.
  std::optional<uint64_t> Rotate(std::chrono::milliseconds timeout);
  uint64_t segment() const { return segment_.load(std::memory_order_acquire); }
  // Called on the writer thread after each group is durable or has failed. Once SetListener
  // returns, the previous listener is no longer running and will not be called again.
  void SetListener(std::function<void()> listener);
  Stats stats() const;
  // Whether groups are written with O_DIRECT now (WalOptions::direct_io).
  bool direct_io() const { return direct_.load(std::memory_order_relaxed); }
  // The last write/fsync error (empty if none yet); any thread.
  std::string last_error() const {
    std::lock_guard lock(mu_);
    return last_error_;
  }
  // Writes and syncs everything appended (bounded retries on error), then stops the writer.
  void Close();

 private:
  Wal(std::string dir, uint64_t segment, int fd, const WalOptions& options);
  void Run();
  // Writes pending_ at file_offset_; false on error (errno-based message in last_error_).
  bool WritePending();
  // WritePending's O_DIRECT path; kFallBack when the file system refuses the direct write.
  enum class DirectResult { kOk, kError, kFallBack };
  DirectResult WriteDirect();
  // Turns O_DIRECT on for fd_ when the options ask for it and the file system allows it.
  void ChooseIoMode();
  bool Sync();
  bool OpenNextSegment();
  void Notify();
  // The preparer thread: keeps one zero-filled segment ready under kPreparedSegmentName.
  void Prepare();
  std::string PreparedPath() const;

  const std::string dir_;
  const WalOptions options_;
  std::mutex listener_mu_;          // held while the listener runs
  std::function<void()> listener_;  // GUARDED_BY(listener_mu_)

  mutable std::mutex mu_;
  std::condition_variable writer_cv_;  // wakes the writer
  std::condition_variable done_cv_;    // wakes Wait()/Rotate() callers
  std::string buf_;                    // GUARDED_BY(mu_): appended, not yet taken by the writer
  uint64_t appended_ = 0;              // GUARDED_BY(mu_)
  bool writer_idle_ = false;           // GUARDED_BY(mu_)
  bool stop_ = false;                  // GUARDED_BY(mu_)
  bool rotate_requested_ = false;      // GUARDED_BY(mu_)
  uint64_t group_records_ = 0;         // GUARDED_BY(mu_): records in buf_
  uint64_t prompt_records_ = 0;        // GUARDED_BY(mu_): kPrompt records in buf_
  bool prompt_wanted_ = false;         // GUARDED_BY(mu_): a Wait() for a record in buf_
  uint64_t group_target_ = 1;          // GUARDED_BY(mu_): records the last group took
  uint64_t rotations_ = 0;             // GUARDED_BY(mu_)
  int waiters_ = 0;                    // GUARDED_BY(mu_)
  Stats stats_;                        // GUARDED_BY(mu_)

  std::atomic<uint64_t> durable_{0};
  std::atomic<uint64_t> failed_through_{0};
  std::atomic<bool> healthy_{true};
  std::atomic<uint64_t> segment_;

  // Writer thread only.
  int fd_ = -1;
  std::string pending_;   // taken from buf_, not yet written
  std::string unsynced_;  // written since the last sync (rewritten after an error)
  uint64_t file_offset_ = 0;
  uint64_t synced_offset_ = 0;       // durable as the policy makes it (kNever: written)
  uint64_t fsynced_offset_ = 0;      // fsynced: what a group's sync mark says
  uint64_t pending_lsn_ = 0;         // LSN at the end of pending_
  std::atomic<bool> direct_{false};  // fd_ has O_DIRECT (changed by the writer thread only)
  // Direct writes start at a block boundary: the bytes of file_offset_'s block before it
  // (tail_), and the same at synced_offset_ (synced_tail_, what a rewrite after an error
  // starts from).
  std::string tail_;
  std::string synced_tail_;
  struct FreeDeleter {
    void operator()(char* p) const;
  };
  std::unique_ptr<char, FreeDeleter> direct_buf_;  // block-aligned staging for direct writes
  size_t direct_buf_bytes_ = 0;
  // Set by the writer thread under mu_ (SetError), which alone also reads it without mu_.
  std::string last_error_;
  void SetError(std::string error);

  std::thread writer_;

  std::mutex prep_mu_;
  std::condition_variable prep_cv_;
  bool prepared_ = false;    // GUARDED_BY(prep_mu_): kPreparedSegmentName is ready to be used
  bool prep_retry_ = false;  // GUARDED_BY(prep_mu_): a failed preparation may be tried again
  bool prep_stop_ = false;   // GUARDED_BY(prep_mu_)
  std::thread preparer_;
};

}  // namespace kvs::storage
