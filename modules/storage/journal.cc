#include "kvs/storage/journal.h"

#include <Poco/Logger.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <thread>

#include "entry_decoders.h"
#include "kvs/json/json_writer.h"
#include "kvs/storage/snapshot.h"

namespace kvs::storage {
namespace {

Poco::Logger& Log() { return Poco::Logger::get("kvs.storage"); }

using Clock = std::chrono::steady_clock;

uint64_t FileSize(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
}

// Log replay hands entries to the decoder threads in batches of about this size.
constexpr uint64_t kReplayBatchEntries = 8192;
constexpr size_t kReplayBatchBytes = 1 << 20;

constexpr char kRepairHint[] =
    "; start with --storage-repair to cut the data there and catch up from the shard's peers";

}  // namespace

Journal::Journal(std::unique_ptr<DataDir> dir, JournalOptions options)
    : dir_(std::move(dir)), options_(options) {}

Journal::~Journal() { Stop(); }

unsigned Journal::RecoveryThreads() const {
  if (options_.recovery_threads > 0) return options_.recovery_threads;
  return std::max(1u, std::thread::hardware_concurrency());
}

// Asks the kernel to read `paths` into the page cache, in order, a piece at a time, until
// `stop`: recovery's files are then read from the disk while the reading thread decodes
// what came before, instead of one read at a time as it gets there (a restart often finds its
// snapshot no longer cached). Only hints: nothing here fails recovery.
static void ReadAhead(const std::vector<std::string>& paths, const std::atomic<bool>& stop) {
  constexpr off_t kPiece = 16 << 20;
  for (const std::string& path : paths) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    struct stat st {};
    const off_t size = ::fstat(fd, &st) == 0 ? st.st_size : 0;
    for (off_t at = 0; at < size && !stop.load(std::memory_order_relaxed); at += kPiece) {
      (void)::posix_fadvise(fd, at, std::min(kPiece, size - at), POSIX_FADV_WILLNEED);
    }
    ::close(fd);
    if (stop.load(std::memory_order_relaxed)) return;
  }
}

RecoveryReport Journal::Recover(RecoverySink& sink) {
  const auto start = Clock::now();
  RecoveryReport report;
  auto fail = [&](std::string why) {
    report.ok = false;
    report.error = std::move(why);
    return report;
  };
  const std::vector<uint64_t> snapshots = dir_->Snapshots();
  std::vector<uint64_t> segments = dir_->Segments();
  uint64_t first_segment = segments.empty() ? 1 : segments.front();
  std::atomic<bool> stop_read_ahead{false};
  std::jthread read_ahead;
  {
    std::vector<std::string> paths;
    if (!snapshots.empty()) paths.push_back(dir_->SnapshotPath(snapshots.back()));
    for (uint64_t n : segments) {
      if (snapshots.empty() || n >= snapshots.back()) paths.push_back(dir_->SegmentPath(n));
    }
    read_ahead = std::jthread(
        [paths = std::move(paths), &stop_read_ahead] { ReadAhead(paths, stop_read_ahead); });
  }
  struct StopReadAhead {
    std::atomic<bool>& stop;
    ~StopReadAhead() { stop.store(true); }
  } stop_on_return{stop_read_ahead};

  if (!snapshots.empty()) {
    const uint64_t newest = snapshots.back();
    const std::string path = dir_->SnapshotPath(newest);
    SnapshotHeader header;
    std::string error;
    const bool loaded = LoadSnapshot(
        path,
        [&](SnapshotHeader&& h) {
          header = std::move(h);
          sink.OnLayout(std::string(header.layout));
          sink.ExpectEntries(header.estimated_entries);
        },
        [&](std::span<const LoggedEntryRef> entries) { sink.OnEntries(entries); },
        report.snapshot_entries, error, sink.ConcurrentEntries() ? RecoveryThreads() : 1);
    if (loaded) {
      sink.OnRaise(header.applied);  // after its entries: the vector never claims more
    } else if (options_.repair) {
      Log().warning(
          "storage repair: snapshot damaged (%s); kept its %s entries before the "
          "damage, its applied vector dropped; the shard's peers fill in the rest",
          error, std::to_string(report.snapshot_entries));
      report.repaired = true;
    } else {
      return fail("damaged snapshot " + error + kRepairHint);
    }
    Log().information(
        "storage: snapshot %s read: %s entries in %s ms", SnapshotName(newest),
        std::to_string(report.snapshot_entries),
        std::to_string(
            std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count()));
    first_segment = newest;
    recovered_log_bytes_ = 0;
    last_snapshot_bytes_ = FileSize(path);
  }

  // Segments from first_segment on must all be there, in order.
  uint64_t expected = first_segment;
  std::vector<uint64_t> replay;
  for (uint64_t n : segments) {
    if (n < first_segment) continue;
    if (n != expected) {
      if (!options_.repair) {
        return fail("log segment " + dir_->SegmentPath(expected) + " is missing (next is " +
                    SegmentName(n) + ")" + kRepairHint);
      }
      Log().warning("storage repair: log segment %s missing: later segments ignored",
                    SegmentName(expected));
      report.repaired = true;
      break;
    }
    replay.push_back(n);
    ++expected;
  }

  LogRecord record;
  LoggedEntryRef entry;
  bool cut = false;
  uint64_t log_bytes = 0;
  // With a sink that takes entries concurrently, runs of entry records go to decoder threads
  // in batches, and every other record waits until the entries before it are in (a purge or a
  // layout depends on them). Entries are applied last-writer-wins, so a batch's order does not
  // matter; the applied vector, which does care, is fed here, in log order.
  const EntriesFn on_entries = [&](std::span<const LoggedEntryRef> entries) {
    sink.OnEntries(entries);
  };
  std::optional<EntryDecoders> decoders;
  if (sink.ConcurrentEntries() && RecoveryThreads() > 1) {
    decoders.emplace(RecoveryThreads(), on_entries);
  }
  std::string batch;
  uint64_t batch_entries = 0;
  std::vector<std::string> batch_starts;  // "segment at offset" of each batch's first record
  auto submit_batch = [&] {
    if (batch_entries == 0) return true;
    const bool queued = decoders->SubmitBodies(batch, batch_entries, batch_starts.size() - 1);
    batch.clear();
    batch_entries = 0;
    return queued;
  };
  // Applied marks of consecutive entry records of one origin with consecutive seqs (a
  // broadcast batch, a run of local writes) go to the sink as one range.
  std::string run_origin;
  uint64_t run_first = 0, run_last = 0;
  auto flush_run = [&] {
    if (run_first != 0) sink.OnAppliedRange(run_origin, run_first, run_last);
    run_first = 0;
  };
  auto mark_applied = [&](std::string_view origin, uint64_t seq) {
    if (run_first != 0 && seq == run_last + 1 && origin == run_origin) {
      run_last = seq;
      return;
    }
    flush_run();
    if (seq == 0) {
      sink.OnApplied(origin, seq);  // not a sequence number a run can hold
      return;
    }
    run_origin.assign(origin);
    run_first = run_last = seq;
  };
  // Everything batched so far is in the store: true, or false with `why` set.
  std::string why_not_applied;
  auto drain = [&] {
    flush_run();
    if (!decoders) return true;
    submit_batch();  // refused only after a failed batch, which Finish reports
    uint64_t bad = 0;
    if (decoders->Finish(bad)) return true;
    why_not_applied = "log entries from " + batch_starts.at(bad) + " could not be applied";
    return false;
  };
  RecordFileReader reader;  // one for every segment: its buffer is reused
  for (size_t i = 0; i < replay.size(); ++i) {
    const std::string path = dir_->SegmentPath(replay[i]);
    const bool last = i + 1 == replay.size();
    if (!reader.Open(path)) return fail(path + ": " + reader.error());
    ++report.segments;
    std::string_view payload;
    while (true) {
      const auto status = reader.Next(payload);
      if (status == RecordFileReader::Status::kEnd) {
        log_bytes += reader.offset();  // where the records end (a segment is preallocated)
        break;
      }
      if (status == RecordFileReader::Status::kRecord) {
        // Entries, nearly every record, are decoded in place; the rest into `record`.
        if (DecodeEntryRecord(payload, entry)) {
          ++report.log_records;
          if (!decoders) {
            sink.OnEntry(entry);
            continue;
          }
          if (entry.record_applied) mark_applied(entry.entry.origin, entry.entry.seq);
          if (batch_entries == 0) {
            batch_starts.push_back(path + " offset " + std::to_string(reader.offset()));
          }
          // The body without its type byte, and without the "record applied" flag: that
          // part is done above.
          const size_t at = batch.size();
          batch.append(payload.substr(1));
          batch[at] = static_cast<char>(batch[at] & ~kEntryFlagRecordApplied);
          if (++batch_entries >= kReplayBatchEntries || batch.size() >= kReplayBatchBytes) {
            if (!submit_batch()) {
              drain();
              return fail(why_not_applied);
            }
          }
          continue;
        }
        if (DecodeLogRecord(payload, record) && record.type != RecordType::kEntry) {
          ++report.log_records;
          if (!drain()) return fail(why_not_applied);
          switch (record.type) {
            case RecordType::kApplied:
              sink.OnApplied(record.origin, record.seq);
              break;
            case RecordType::kRaise:
              sink.OnRaise(record.vv);
              break;
            case RecordType::kPurge:
              sink.OnPurge(record.key, record.origin, record.seq);
              break;
            case RecordType::kLayout:
              sink.OnLayout(std::move(record.layout));
              break;
            default:
              break;
          }
          continue;
        }
        // A whole, checksummed record that is not one of ours: damage, not a torn write.
      }
      if (status == RecordFileReader::Status::kIoError) return fail(path + ": " + reader.error());
      const std::string where = path + " at offset " + std::to_string(reader.offset());
      const std::string why =
          status == RecordFileReader::Status::kRecord ? "undecodable record" : reader.error();
      if (status == RecordFileReader::Status::kTorn && last) {
        report.torn_bytes_cut = reader.file_size() - reader.offset();
        Log().warning(
            "storage: torn tail in %s: %s; truncating %s bytes after the last whole "
            "record",
            where, why, std::to_string(report.torn_bytes_cut));
      } else if (options_.repair) {
        Log().warning(
            "storage repair: %s: %s; truncating there and dropping %z later "
            "segment(s); the shard's peers fill in the rest",
            where, why, replay.size() - i - 1);
        report.repaired = true;
        for (size_t j = i + 1; j < replay.size(); ++j) {
          ::unlink(dir_->SegmentPath(replay[j]).c_str());
        }
        replay.resize(i + 1);
      } else {
        return fail("damaged log " + where + ": " + why + kRepairHint);
      }
      if (::truncate(path.c_str(), static_cast<off_t>(reader.offset())) != 0) {
        return fail("cannot truncate " + path + ": " + std::strerror(errno));
      }
      log_bytes += reader.offset();
      cut = true;
      break;
    }
    if (cut) break;
  }
  if (!drain()) return fail(why_not_applied);
  recovered_log_bytes_ += log_bytes;

  // Leftovers: segments a finished snapshot covers, older snapshots, temporary files.
  if (!snapshots.empty()) {
    for (uint64_t n : segments) {
      if (n < snapshots.back()) ::unlink(dir_->SegmentPath(n).c_str());
    }
    for (uint64_t n : snapshots) {
      if (n < snapshots.back()) ::unlink(dir_->SnapshotPath(n).c_str());
    }
  }
  // A snapshot that was being written when the process stopped is incomplete: never used.
  std::error_code ec;
  for (const auto& file : std::filesystem::directory_iterator(dir_->path(), ec)) {
    const std::string name = file.path().filename().string();
    if (name == kPreparedSegmentName) {  // being zero-filled ahead of use: never used yet
      std::filesystem::remove(file.path(), ec);
    } else if (name.starts_with("snap-") && name.ends_with(".kvs.tmp")) {
      Log().information("storage: removing %s, a snapshot left unfinished", name);
      std::filesystem::remove(file.path(), ec);
    }
  }
  uint64_t highest = snapshots.empty() ? 0 : snapshots.back() - 1;
  if (!replay.empty()) highest = std::max(highest, replay.back());
  if (!segments.empty() && !report.repaired) highest = std::max(highest, segments.back());
  next_segment_ = highest + 1;
  report.took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
  {
    std::lock_guard lock(recovery_mu_);
    recovery_ = report;
  }
  return report;
}

bool Journal::Start(std::string& error) {
  // A repair may have left segments above next_segment_ unreplayed; remove them so that
  // numbering stays contiguous.
  for (uint64_t n : dir_->Segments()) {
    if (n >= next_segment_) ::unlink(dir_->SegmentPath(n).c_str());
  }
  wal_owned_ = Wal::Open(dir_->path(), next_segment_, options_.wal, error);
  if (!wal_owned_) return false;
  if (listener_) wal_owned_->SetListener(listener_);
  // Published last: /health and /metrics, served during recovery, read it from other threads.
  wal_.store(wal_owned_.get(), std::memory_order_release);
  return true;
}

void Journal::StartSnapshots(const store::Store& store,
                             std::function<causal::VersionVector()> applied,
                             std::function<std::string()> layout) {
  if (!wal()) return;
  store_ = &store;
  applied_ = std::move(applied);
  layout_ = std::move(layout);
  snapshot_thread_ = std::thread([this] { SnapshotLoop(); });
}

void Journal::Stop() {
  {
    std::lock_guard lock(loop_mu_);
    stop_ = true;
  }
  loop_cv_.notify_all();
  if (snapshot_thread_.joinable()) snapshot_thread_.join();
  if (Wal* w = wal()) w->Close();
}

uint64_t Journal::LogEntry(std::string_view key, const store::Entry& entry, bool record_applied,
                           Wal::Urgency urgency) {
  Wal* w = wal();
  if (w == nullptr) return 0;
  // One buffer per thread: the write path allocates nothing here once it is warm.
  thread_local std::string payload;
  EncodeEntryTo(payload, key, entry, record_applied);
  const uint64_t lsn = w->Append(payload, urgency);
  if (payload.capacity() > (1u << 16)) std::string().swap(payload);  // after a big value
  return lsn;
}
uint64_t Journal::Append(std::string_view payload) {
  Wal* w = wal();
  return w != nullptr ? w->Append(payload) : 0;
}
uint64_t Journal::LogApplied(std::string_view origin, uint64_t seq, Wal::Urgency urgency) {
  Wal* w = wal();
  return w != nullptr ? w->Append(EncodeApplied(origin, seq), urgency) : 0;
}
uint64_t Journal::LogRaise(const causal::VersionVector& vv) { return Append(EncodeRaise(vv)); }
uint64_t Journal::LogPurge(std::string_view key, std::string_view origin, uint64_t seq) {
  return Append(EncodePurge(key, origin, seq));
}
uint64_t Journal::LogLayout(std::string_view layout) { return Append(EncodeLayout(layout)); }

bool Journal::Flush(std::chrono::milliseconds timeout) {
  Wal* w = wal();
  return w == nullptr || w->Wait(w->appended_lsn(), timeout) == Wal::State::kDurable;
}

std::string Journal::last_error() const {
  const Wal* w = wal();
  return w != nullptr ? w->last_error() : std::string();
}

uint64_t Journal::LogBytes() const {
  const Wal* w = wal();
  if (w == nullptr) return 0;
  return recovered_log_bytes_.load() + (w->appended_lsn() - log_base_lsn_.load());
}

bool Journal::SnapshotNow(std::string& error) {
  Wal* w = wal();
  if (w == nullptr || store_ == nullptr) {
    error = "storage is not running";
    return false;
  }
  std::lock_guard one(snapshot_mu_);
  snapshot_running_.store(true);
  struct Done {
    std::atomic<bool>& running;
    ~Done() { running.store(false); }
  } done{snapshot_running_};
  const auto start = Clock::now();
  const uint64_t lsn_before = w->appended_lsn();
  const std::optional<uint64_t> segment = w->Rotate(std::chrono::seconds(10));
  if (!segment) {
    error = "the log could not be rotated: " + w->last_error();
    return false;
  }
  // Read after the rotation, before the walk: the vector never claims more than the walk sees.
  const causal::VersionVector applied = applied_();
  const std::string layout = layout_();
  const std::optional<SnapshotInfo> info =
      WriteSnapshot(dir_->path(), *segment, layout, applied, *store_, error);
  if (!info) return false;
  for (uint64_t n : dir_->Segments()) {
    if (n < *segment) ::unlink(dir_->SegmentPath(n).c_str());
  }
  for (uint64_t n : dir_->Snapshots()) {
    if (n < *segment) ::unlink(dir_->SnapshotPath(n).c_str());
  }
  recovered_log_bytes_ = 0;
  log_base_lsn_ = lsn_before;
  // The walk's buffers (MiBs) are freed now; give the pages back rather than let the
  // allocator keep them (they showed as RSS above memory mode).
  ::malloc_trim(0);
  last_snapshot_bytes_ = info->bytes;
  snapshots_.fetch_add(1);
  const auto micros =
      std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start).count();
  last_snapshot_micros_ = static_cast<uint64_t>(micros);
  Log().information(
      "storage: snapshot %s written: %s entries, %s bytes in %s ms; log "
      "segments before %s removed",
      SnapshotName(*segment), std::to_string(info->entries), std::to_string(info->bytes),
      std::to_string(micros / 1000), SegmentName(*segment));
  return true;
}

uint64_t Journal::SnapshotThreshold() const {
  return std::max(options_.snapshot_min_log_bytes,
                  std::min(options_.snapshot_max_log_bytes,
                           last_snapshot_bytes_.load() / 100 * options_.snapshot_log_percent));
}

void Journal::SnapshotLoop() {
  pthread_setname_np(pthread_self(), "kvs-snapshot");  // top -H, perf --sort comm
  auto next_try = Clock::now();
  std::unique_lock lock(loop_mu_);
  while (!stop_) {
    loop_cv_.wait_for(lock, options_.snapshot_check_period, [&] { return stop_; });
    if (stop_) break;
    if (LogBytes() < SnapshotThreshold() || Clock::now() < next_try || !wal()->healthy()) continue;
    if (snapshot_holds_.load() > 0) {
      snapshots_deferred_.fetch_add(1);
      continue;
    }
    lock.unlock();
    std::string error;
    if (!SnapshotNow(error)) {
      snapshot_failures_.fetch_add(1);
      Log().warning(
          "storage: snapshot failed (%s); the log is kept and a snapshot is tried "
          "again in 10 s",
          error);
      next_try = Clock::now() + std::chrono::seconds(10);
    }
    lock.lock();
  }
}

std::string Journal::MetricsText() const {
  std::string out;
  auto metric = [&](const char* name, const char* type, const char* help, double value) {
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n" +
           name + " ";
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.17g", value);
    out += buf;
    out += "\n";
  };
  metric("kvs_storage_enabled", "gauge", "1 when data is kept on disk (kvs.storage.mode=disk).",
         enabled() ? 1 : 0);
  const Wal* w = wal();
  if (w == nullptr) return out;
  const Wal::Stats s = w->stats();
  metric("kvs_storage_healthy", "gauge", "0 while the log cannot be written (writes refused).",
         w->healthy() ? 1 : 0);
  metric("kvs_storage_direct_io", "gauge",
         "1 while the log's groups are written with O_DIRECT (kvs.storage.direct_io).",
         w->direct_io() ? 1 : 0);
  metric("kvs_storage_fsyncs_total", "counter", "fdatasync calls on the log.",
         static_cast<double>(s.fsyncs));
  metric("kvs_storage_fsync_seconds_total", "counter", "Time spent in fdatasync on the log.",
         static_cast<double>(s.fsync_micros_total) / 1e6);
  metric("kvs_storage_fsync_max_seconds", "gauge", "Longest fdatasync on the log so far.",
         static_cast<double>(s.fsync_micros_max) / 1e6);
  out +=
      "# HELP kvs_storage_fsync_duration_seconds fdatasync latency of the log's group commits.\n"
      "# TYPE kvs_storage_fsync_duration_seconds histogram\n";
  uint64_t cumulative = 0;
  for (size_t i = 0; i < s.fsync_buckets.size(); ++i) {
    cumulative += s.fsync_buckets[i];
    char le[32];
    if (i < Wal::kFsyncBucketMicros.size()) {
      std::snprintf(le, sizeof le, "%g", static_cast<double>(Wal::kFsyncBucketMicros[i]) / 1e6);
    } else {
      std::snprintf(le, sizeof le, "+Inf");
    }
    out += std::string("kvs_storage_fsync_duration_seconds_bucket{le=\"") + le + "\"} " +
           std::to_string(cumulative) + "\n";
  }
  {
    char sum[64];
    std::snprintf(sum, sizeof sum, "%.17g", static_cast<double>(s.fsync_micros_total) / 1e6);
    out += std::string("kvs_storage_fsync_duration_seconds_sum ") + sum + "\n";
    out += "kvs_storage_fsync_duration_seconds_count " + std::to_string(s.fsyncs) + "\n";
  }
  metric("kvs_storage_log_groups_total", "counter", "Group commits written to the log.",
         static_cast<double>(s.groups));
  metric("kvs_storage_log_written_bytes_total", "counter", "Bytes written to the log.",
         static_cast<double>(s.bytes_written));
  metric("kvs_storage_write_errors_total", "counter", "Failed log writes or fsyncs.",
         static_cast<double>(s.errors));
  metric("kvs_storage_log_bytes", "gauge", "Log bytes not yet covered by a snapshot.",
         static_cast<double>(LogBytes()));
  metric("kvs_storage_snapshots_total", "counter", "Snapshots written.",
         static_cast<double>(snapshots_.load()));
  metric("kvs_storage_snapshot_running", "gauge", "1 while a snapshot is being written.",
         snapshot_running_.load() ? 1.0 : 0.0);
  metric("kvs_storage_snapshots_deferred_total", "counter",
         "Snapshot checks that found the log due for a snapshot during a bulk transfer "
         "(snapshots wait for its end).",
         static_cast<double>(snapshots_deferred_.load()));
  metric("kvs_storage_snapshot_failures_total", "counter", "Snapshots that failed.",
         static_cast<double>(snapshot_failures_.load()));
  metric("kvs_storage_snapshot_bytes", "gauge", "Size of the newest snapshot.",
         static_cast<double>(last_snapshot_bytes_.load()));
  metric("kvs_storage_snapshot_threshold_bytes", "gauge",
         "Log bytes at which the next snapshot starts (kvs_storage_log_bytes grows to it).",
         static_cast<double>(SnapshotThreshold()));
  metric("kvs_storage_last_snapshot_seconds", "gauge", "Time the newest snapshot took.",
         static_cast<double>(last_snapshot_micros_.load()) / 1e6);
  const RecoveryReport recovery = recovery_report();
  metric("kvs_storage_recovery_seconds", "gauge", "Time recovery from disk took at start.",
         static_cast<double>(recovery.took.count()) / 1e3);
  metric("kvs_storage_recovered_records", "gauge",
         "Snapshot entries plus log records read at start.",
         static_cast<double>(recovery.snapshot_entries + recovery.log_records));
  return out;
}

RecoveryReport Journal::recovery_report() const {
  std::lock_guard lock(recovery_mu_);
  return recovery_;
}

uint64_t Journal::DiskBytes() const {
  if (!enabled()) return 0;
  const int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                          std::chrono::steady_clock::now().time_since_epoch())
                          .count();
  const int64_t at = disk_bytes_at_ns_.load(std::memory_order_acquire);
  const int64_t refresh = std::chrono::nanoseconds(kDiskBytesRefresh).count();
  if (at != 0 && now - at < refresh) return disk_bytes_.load(std::memory_order_relaxed);
  std::unique_lock lock(disk_bytes_mu_, std::try_to_lock);
  if (!lock.owns_lock()) return disk_bytes_.load(std::memory_order_relaxed);
  uint64_t total = 0;
  std::error_code ec;
  for (std::filesystem::directory_iterator it(dir_->path(), ec), end; !ec && it != end;
       it.increment(ec)) {
    struct stat st {};
    if (::lstat(it->path().c_str(), &st) == 0) total += static_cast<uint64_t>(st.st_blocks) * 512;
  }
  disk_bytes_.store(total, std::memory_order_relaxed);
  disk_bytes_at_ns_.store(now, std::memory_order_release);
  return total;
}

std::string Journal::HealthJson() const {
  json::JsonObject out;
  if (!enabled()) return out.Str("mode", "memory").Finish();
  const RecoveryReport recovery = recovery_report();
  return out.Str("mode", "disk")
      .Str("dir", dir_->path())
      .Str("fsync", ToString(options_.wal.fsync))
      .Bool("writable", Writable())
      .Int("recovery_ms", recovery.took.count())
      .Int("recovered_snapshot_entries", static_cast<int64_t>(recovery.snapshot_entries))
      .Int("recovered_log_records", static_cast<int64_t>(recovery.log_records))
      .Int("log_bytes", static_cast<int64_t>(LogBytes()))
      .Finish();
}

}  // namespace kvs::storage
