#include "kvs/storage/wal.h"

#include <Poco/Logger.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "kvs/storage/data_dir.h"
#include "kvs/storage/log_format.h"

namespace kvs::storage {
namespace {

Poco::Logger& Log() { return Poco::Logger::get("kvs.storage"); }

using Clock = std::chrono::steady_clock;

// kInterval/kNever: nobody waits for a record, so the writer lets records gather this long (or
// up to this many bytes) and writes them with one call: a process crash can lose at most the
// records of the last linger; a machine crash, what the fsync policy allows.
constexpr std::chrono::microseconds kLinger{1000};
constexpr size_t kLingerMaxBytes = 1 << 20;
// kAlways: the longest a group waits for as many records as the last one had (a writer
// waiting for its answer pays at most this on top of the fsync).
constexpr std::chrono::microseconds kGroupLinger{150};
// kAlways: how long records nobody waits for (Urgency::kRelaxed) may wait for a prompt record to
// share a group with before they are synced on their own. A node killed meanwhile loses at most
// these replicated changes, which its peers hold durably and send again when it catches up.
constexpr std::chrono::microseconds kRelaxedLinger{10000};
// An emptied buffer keeps at most this much capacity: a burst must not stay allocated for good.
constexpr size_t kKeepCapacity = 1 << 20;
// kInterval: the written but unsynced bytes are kept (to be written again should the sync fail)
// up to about this much; past it the writer syncs before the interval is up. The buffer keeps
// its capacity, so a steady load neither grows nor reallocates it (nor faults in fresh pages).
constexpr size_t kMaxUnsynced = 2 << 20;
constexpr size_t kUnsyncedCapacity = kMaxUnsynced + kLingerMaxBytes;

// Direct writes: offsets, lengths and memory aligned to this (the largest logical block size
// a device here may have; the page size).
constexpr size_t kDirectBlock = 4096;

void Shrink(std::string& buffer, size_t keep = kKeepCapacity) {
  if (buffer.empty() && buffer.capacity() > keep) std::string().swap(buffer);
}

// Whether the file system holding `dir` has room for `bytes` and as much again to spare: the
// zeros of a preallocated segment must never be what fills a disk.
bool HasRoomFor(const std::string& dir, uint64_t bytes) {
  struct statvfs st {};
  if (::statvfs(dir.c_str(), &st) != 0) return false;
  return static_cast<uint64_t>(st.f_bavail) * st.f_frsize >= 2 * bytes;
}

// Writes `bytes` zeros to the empty file `fd` and fdatasyncs it. The blocks are then allocated
// and written, so that overwriting them later (the log's groups) makes an fdatasync flush only
// the data: no file size, block allocation or unwritten-extent conversion to journal, which on
// ext4 here made each group's fsync ~1.5x slower (README "Durability"). On failure (a full
// disk) the file is cut back to empty and grows as written instead.
bool FillWithZeros(int fd, uint64_t bytes) {
  static const std::string zeros(1 << 20, '\0');
  uint64_t at = 0;
  while (at < bytes) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(zeros.size(), bytes - at));
    const ssize_t wrote = ::pwrite(fd, zeros.data(), n, static_cast<off_t>(at));
    if (wrote < 0 && errno == EINTR) continue;
    if (wrote <= 0) break;
    at += static_cast<uint64_t>(wrote);
  }
  if (at == bytes && ::fdatasync(fd) == 0) return true;
  if (::ftruncate(fd, 0) != 0) {
    // Nothing more to do: the segment keeps its zeros (read as the end of the records).
  }
  return false;
}

int CreateSegment(const std::string& dir, uint64_t segment, uint64_t preallocate,
                  std::string& error) {
  const std::string path = dir + "/" + SegmentName(segment);
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) {
    error = "cannot create " + path + ": " + std::strerror(errno);
    return -1;
  }
  if (preallocate > 0 && !(HasRoomFor(dir, preallocate) && FillWithZeros(fd, preallocate))) {
    static std::atomic<bool> told{false};
    if (!told.exchange(true)) {
      Log().warning(
          "storage: cannot preallocate %s (too little free space): log segments grow "
          "as written, and each fsync costs more",
          path);
    }
  }
  if (!SyncDirectory(dir, error)) {
    ::close(fd);
    return -1;
  }
  return fd;
}

}  // namespace

std::optional<FsyncPolicy> ParseFsyncPolicy(std::string_view text) {
  if (text == "always") return FsyncPolicy::kAlways;
  if (text == "interval") return FsyncPolicy::kInterval;
  if (text == "never") return FsyncPolicy::kNever;
  return std::nullopt;
}

const char* ToString(FsyncPolicy policy) {
  switch (policy) {
    case FsyncPolicy::kAlways:
      return "always";
    case FsyncPolicy::kInterval:
      return "interval";
    case FsyncPolicy::kNever:
      return "never";
  }
  return "?";
}

std::string SegmentName(uint64_t n) {
  char name[40];
  std::snprintf(name, sizeof name, "wal-%016" PRIu64 ".log", n);
  return name;
}

std::unique_ptr<Wal> Wal::Open(const std::string& dir, uint64_t segment, const WalOptions& options,
                               std::string& error) {
  const int fd = CreateSegment(dir, segment, options.segment_bytes, error);
  if (fd < 0) return nullptr;
  return std::unique_ptr<Wal>(new Wal(dir, segment, fd, options));
}

Wal::Wal(std::string dir, uint64_t segment, int fd, const WalOptions& options)
    : dir_(std::move(dir)), options_(options), segment_(segment), fd_(fd) {
  ChooseIoMode();
  writer_ = std::thread([this] { Run(); });
  if (options_.segment_bytes > 0) preparer_ = std::thread([this] { Prepare(); });
}

std::string Wal::PreparedPath() const { return dir_ + "/" + kPreparedSegmentName; }

void Wal::Prepare() {
  pthread_setname_np(pthread_self(), "kvs-wal-prep");
  std::unique_lock lock(prep_mu_);
  while (true) {
    prep_cv_.wait(lock, [&] { return prep_stop_ || !prepared_; });
    if (prep_stop_) break;
    lock.unlock();
    // A full disk gets no zeros from us: the writer creates the next segment itself then.
    bool ok = false;
    if (HasRoomFor(dir_, options_.segment_bytes)) {
      const int fd = ::open(PreparedPath().c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
      if (fd >= 0) {
        ok = FillWithZeros(fd, options_.segment_bytes);
        ::close(fd);
      }
      if (!ok) ::unlink(PreparedPath().c_str());
    }
    lock.lock();
    if (ok) {
      prepared_ = true;
    } else {
      // Tried again at the next rotation.
      prep_cv_.wait(lock, [&] { return prep_stop_ || prep_retry_; });
      prep_retry_ = false;
    }
  }
  ::unlink(PreparedPath().c_str());
}

Wal::~Wal() { Close(); }

void Wal::SetListener(std::function<void()> listener) {
  std::lock_guard lock(listener_mu_);
  listener_ = std::move(listener);
}

uint64_t Wal::Append(std::string_view payload, Urgency urgency) {
  char header[kHeaderBytes];
  FrameHeader(header, payload);
  std::lock_guard lock(mu_);
  const bool was_empty = buf_.empty();
  if (was_empty) {
    // Room for the group's sync mark, which the writer fills in when it takes the group.
    buf_.append(kSyncMarkBytes, '\0');
    appended_ += kSyncMarkBytes;
  }
  buf_.append(header, kHeaderBytes);
  buf_.append(payload);
  appended_ += kHeaderBytes + payload.size();
  ++group_records_;
  const bool prompt = urgency == Urgency::kPrompt;
  if (prompt) ++prompt_records_;
  // kAlways: the writer starts a group with the first prompt record and takes it once as many
  // records as the last group had are in (or a short linger passed): concurrent writers then
  // share one fsync instead of half of them waiting for the next. Otherwise nobody waits:
  // wake the writer only to start its linger (or when a lot piled up).
  const bool wake = options_.fsync == FsyncPolicy::kAlways && prompt
                        ? was_empty || prompt_records_ == 1 || group_records_ >= group_target_
                        : was_empty || buf_.size() >= kLingerMaxBytes;
  if (writer_idle_ && wake) {
    writer_idle_ = false;
    writer_cv_.notify_one();
  }
  return appended_;
}

uint64_t Wal::appended_lsn() const {
  std::lock_guard lock(mu_);
  return appended_;
}

Wal::State Wal::Check(uint64_t lsn) const {
  if (durable_.load(std::memory_order_acquire) >= lsn) return State::kDurable;
  if (failed_through_.load(std::memory_order_acquire) >= lsn) return State::kFailed;
  return State::kPending;
}

Wal::State Wal::Wait(uint64_t lsn, std::chrono::milliseconds timeout) {
  State state = Check(lsn);
  if (state != State::kPending) return state;
  std::unique_lock lock(mu_);
  ++waiters_;
  if (!prompt_wanted_ && options_.fsync == FsyncPolicy::kAlways) {
    // Someone waits: whatever is buffered (relaxed records too) goes in the next group.
    prompt_wanted_ = true;
    if (writer_idle_) {
      writer_idle_ = false;
      writer_cv_.notify_one();
    }
  }
  done_cv_.wait_for(lock, timeout, [&] { return (state = Check(lsn)) != State::kPending; });
  --waiters_;
  return state;
}

std::optional<uint64_t> Wal::Rotate(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  if (stop_) return std::nullopt;
  const uint64_t target = rotations_ + 1;
  rotate_requested_ = true;
  writer_idle_ = false;
  writer_cv_.notify_one();
  ++waiters_;
  const bool done = done_cv_.wait_for(lock, timeout, [&] { return rotations_ >= target; });
  --waiters_;
  if (!done) return std::nullopt;
  return segment_.load(std::memory_order_acquire);
}

Wal::Stats Wal::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

void Wal::Close() {
  {
    std::lock_guard lock(mu_);
    if (stop_ && !writer_.joinable()) return;
    stop_ = true;
    writer_cv_.notify_one();
  }
  if (writer_.joinable()) writer_.join();
  {
    std::lock_guard lock(prep_mu_);
    prep_stop_ = true;
  }
  prep_cv_.notify_all();
  if (preparer_.joinable()) preparer_.join();
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
}

void Wal::FreeDeleter::operator()(char* p) const { std::free(p); }

void Wal::ChooseIoMode() {
  direct_ = false;
  if (!options_.direct_io || options_.fsync != FsyncPolicy::kAlways) return;
  const int flags = ::fcntl(fd_, F_GETFL);
  if (flags >= 0 && ::fcntl(fd_, F_SETFL, flags | O_DIRECT) == 0) {
    direct_ = true;
    return;
  }
  const std::string why = std::strerror(errno);
  static std::atomic<bool> told{false};
  if (!told.exchange(true)) {
    Log().information(
        "storage: %s takes no O_DIRECT (%s): the log is written through the page "
        "cache",
        dir_, why);
  }
}

Wal::DirectResult Wal::WriteDirect() {
  if (pending_.empty()) return DirectResult::kOk;  // a rotation or a stop with nothing new
  const uint64_t start = file_offset_ - tail_.size();
  const size_t used = tail_.size() + pending_.size();
  const size_t bytes = (used + kDirectBlock - 1) / kDirectBlock * kDirectBlock;
  if (direct_buf_bytes_ < bytes || direct_buf_bytes_ > std::max(bytes, kKeepCapacity)) {
    direct_buf_.reset(static_cast<char*>(std::aligned_alloc(kDirectBlock, bytes)));
    direct_buf_bytes_ = direct_buf_ ? bytes : 0;
    if (!direct_buf_) return DirectResult::kFallBack;
  }
  char* buf = direct_buf_.get();
  std::memcpy(buf, tail_.data(), tail_.size());
  std::memcpy(buf + tail_.size(), pending_.data(), pending_.size());
  // Zeros after the records: what a preallocated segment holds there anyway (the end of the
  // records to recovery), and what the next group overwrites.
  std::memset(buf + used, 0, bytes - used);
  size_t done = 0;
  while (done < bytes) {
    const ssize_t n = ::pwrite(fd_, buf + done, bytes - done, static_cast<off_t>(start + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EINVAL && done == 0) return DirectResult::kFallBack;
    if (n <= 0) {
      SetError(std::string("write failed: ") + (n < 0 ? std::strerror(errno) : "no progress"));
      return DirectResult::kError;
    }
    done += static_cast<size_t>(n);
  }
  file_offset_ += pending_.size();
  const size_t in_block = static_cast<size_t>(file_offset_ % kDirectBlock);
  tail_.assign(buf + used - in_block, in_block);
  return DirectResult::kOk;
}

bool Wal::WritePending() {
  bool written = false;
  if (direct_) {
    const DirectResult result = WriteDirect();
    if (result == DirectResult::kError) return false;
    written = result == DirectResult::kOk;
    if (!written) {
      // EINVAL: the file system (or a file size limit cutting the write short) refuses this
      // direct write; the page cache takes it and every later one.
      const std::string why = std::strerror(errno);
      Log().warning(
          "storage: a direct write to the log failed (%s); writing through the page "
          "cache from now on",
          why);
      const int flags = ::fcntl(fd_, F_GETFL);
      if (flags >= 0) ::fcntl(fd_, F_SETFL, flags & ~O_DIRECT);
      direct_ = false;
      direct_buf_.reset();
      direct_buf_bytes_ = 0;
    }
  }
  for (size_t done = 0; !written && done < pending_.size();) {
    const ssize_t n = ::pwrite(fd_, pending_.data() + done, pending_.size() - done,
                               static_cast<off_t>(file_offset_));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      SetError(std::string("write failed: ") + (n < 0 ? std::strerror(errno) : "no progress"));
      // What was written of pending_ is not durable either: all of it is written again.
      return false;
    }
    done += static_cast<size_t>(n);
    file_offset_ += static_cast<uint64_t>(n);
  }
  if (options_.fsync == FsyncPolicy::kInterval) {
    // Copied into a buffer that keeps its capacity (kUnsyncedCapacity) rather than swapped:
    // pending_ goes back to the appenders, unsynced_ stays warm.
    if (unsynced_.capacity() < kUnsyncedCapacity) unsynced_.reserve(kUnsyncedCapacity);
    unsynced_ += pending_;
  } else if (unsynced_.empty()) {
    unsynced_.swap(pending_);
  } else {
    unsynced_ += pending_;
  }
  pending_.clear();
  return true;
}

void Wal::SetError(std::string error) {
  std::lock_guard lock(mu_);
  last_error_ = std::move(error);
}

bool Wal::Sync() {
  const auto start = Clock::now();
  if (::fdatasync(fd_) != 0) {
    SetError(std::string("fdatasync failed: ") + std::strerror(errno));
    return false;
  }
  const auto micros = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start).count());
  std::lock_guard lock(mu_);
  ++stats_.fsyncs;
  const auto bucket =
      std::lower_bound(kFsyncBucketMicros.begin(), kFsyncBucketMicros.end(), micros);
  ++stats_.fsync_buckets[static_cast<size_t>(bucket - kFsyncBucketMicros.begin())];
  stats_.fsync_micros_total += micros;
  stats_.fsync_micros_max = std::max(stats_.fsync_micros_max, micros);
  return true;
}

bool Wal::OpenNextSegment() {
  const uint64_t next = segment_.load(std::memory_order_relaxed) + 1;
  std::string error;
  int fd = -1;
  {
    // The segment the preparer zero-filled, if it is ready: renamed into place (and the
    // directory synced, so that no record goes into a file whose name a crash could undo).
    std::lock_guard lock(prep_mu_);
    const std::string path = dir_ + "/" + SegmentName(next);
    if (prepared_ && ::rename(PreparedPath().c_str(), path.c_str()) == 0) {
      fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
      if (fd >= 0 && !SyncDirectory(dir_, error)) {
        ::close(fd);
        fd = -1;
      }
      if (fd < 0) ::unlink(path.c_str());
    }
    prepared_ = false;
    prep_retry_ = true;
  }
  prep_cv_.notify_all();
  if (fd < 0) fd = CreateSegment(dir_, next, options_.segment_bytes, error);
  if (fd < 0) {
    SetError(std::move(error));
    return false;
  }
  ::close(fd_);
  fd_ = fd;
  file_offset_ = synced_offset_ = fsynced_offset_ = 0;
  tail_.clear();
  synced_tail_.clear();
  if (direct_) ChooseIoMode();
  segment_.store(next, std::memory_order_release);
  return true;
}

void Wal::Notify() {
  {
    std::lock_guard lock(mu_);
    if (waiters_ > 0) done_cv_.notify_all();
  }
  std::lock_guard lock(listener_mu_);
  if (listener_) listener_();
}

void Wal::Run() {
  pthread_setname_np(pthread_self(), "kvs-wal");
  Clock::time_point next_sync = Clock::now() + options_.fsync_interval;
  Clock::time_point retry_at{};
  Clock::time_point linger_until{};  // when the buffered records are written at the latest
  bool linger_relaxed = false;       // linger_until was set for relaxed records only
  const bool lazy = options_.fsync != FsyncPolicy::kAlways;
  bool rotate = false;
  while (true) {
    bool stopping = false;
    {
      std::unique_lock lock(mu_);
      auto has_work = [&] {
        if (!healthy_.load(std::memory_order_relaxed)) return stop_ || Clock::now() >= retry_at;
        if (stop_ || rotate_requested_) return true;
        if (!buf_.empty()) {
          // kAlways with only records nobody waits for: linger as the lazy policies do.
          const bool relaxed = !lazy && prompt_records_ == 0 && !prompt_wanted_;
          if (lazy || relaxed ? buf_.size() >= kLingerMaxBytes : group_records_ >= group_target_) {
            return true;
          }
          if (linger_until != Clock::time_point{} && linger_relaxed && !relaxed) {
            linger_until = Clock::time_point{};  // a prompt record came: group linger from now
          }
          if (linger_until == Clock::time_point{}) {
            linger_relaxed = relaxed;
            linger_until = Clock::now() + (lazy      ? kLinger
                                           : relaxed ? kRelaxedLinger
                                                     : kGroupLinger);
          }
          if (Clock::now() >= linger_until) return true;
        }
        return options_.fsync == FsyncPolicy::kInterval && !unsynced_.empty() &&
               Clock::now() >= next_sync;
      };
      while (!has_work()) {
        writer_idle_ = true;
        Clock::time_point until = Clock::time_point::max();
        if (!healthy_.load(std::memory_order_relaxed)) until = retry_at;
        if (!buf_.empty()) until = std::min(until, linger_until);
        if (options_.fsync == FsyncPolicy::kInterval && !unsynced_.empty()) {
          until = std::min(until, next_sync);
        }
        if (until == Clock::time_point::max()) {
          writer_cv_.wait(lock);
        } else {
          writer_cv_.wait_until(lock, until);
        }
      }
      linger_until = Clock::time_point{};
      writer_idle_ = false;
      stopping = stop_;
      if (!buf_.empty()) WriteSyncMark(buf_.data(), fsynced_offset_);
      if (pending_.empty()) {
        pending_.swap(buf_);
      } else {
        pending_ += buf_;
        buf_.clear();
      }
      Shrink(buf_);
      pending_lsn_ = appended_;
      group_target_ = std::max<uint64_t>(1, group_records_);
      group_records_ = 0;
      prompt_records_ = 0;
      prompt_wanted_ = false;
      if (rotate_requested_) {
        rotate = true;
        rotate_requested_ = false;
      }
    }
    const uint64_t bytes = pending_.size();
    bool ok = WritePending();
    // A full segment is synced and closed; the next group goes to a new one.
    const bool full = options_.segment_bytes > 0 && file_offset_ >= options_.segment_bytes;
    const bool sync_now = options_.fsync == FsyncPolicy::kAlways || rotate || full || stopping ||
                          (options_.fsync == FsyncPolicy::kInterval &&
                           (Clock::now() >= next_sync || unsynced_.size() >= kMaxUnsynced));
    if (ok && sync_now && !unsynced_.empty()) {
      ok = Sync();
      if (ok) {
        next_sync = Clock::now() + options_.fsync_interval;
        fsynced_offset_ = file_offset_;
      }
    }
    if (ok && (sync_now || options_.fsync == FsyncPolicy::kNever)) {
      // Durable (or, with kNever, as durable as this policy makes anything).
      synced_offset_ = file_offset_;
      synced_tail_ = tail_;
      unsynced_.clear();
    }
    if (ok && (rotate || full)) ok = OpenNextSegment();
    if (ok) {
      durable_.store(pending_lsn_, std::memory_order_release);
      if (!healthy_.load(std::memory_order_relaxed)) {
        Log().information("storage: log writes succeed again (segment %s); accepting writes",
                          SegmentName(segment_.load()));
      }
      healthy_.store(true, std::memory_order_release);
      std::lock_guard lock(mu_);
      ++stats_.groups;
      stats_.bytes_written += bytes;
      if (rotate) {
        ++rotations_;
        rotate = false;
      }
    } else {
      // Rewrite from the last durable offset: whatever was written after it may be lost.
      unsynced_ += pending_;
      pending_.swap(unsynced_);
      unsynced_.clear();
      file_offset_ = synced_offset_;
      tail_ = synced_tail_;
      failed_through_.store(pending_lsn_, std::memory_order_release);
      if (healthy_.exchange(false, std::memory_order_acq_rel)) {
        Log().error("storage: %s (segment %s); writes are refused until the log can be written",
                    last_error_, SegmentName(segment_.load()));
      }
      retry_at = Clock::now() + options_.retry_after_error;
      std::lock_guard lock(mu_);
      ++stats_.errors;
    }
    Shrink(pending_);
    Shrink(unsynced_, kUnsyncedCapacity);
    Notify();
    if (stopping) {
      if (!ok)
        Log().error("storage: stopping with %z log bytes not written: %s", pending_.size(),
                    last_error_);
      return;
    }
  }
}

}  // namespace kvs::storage
