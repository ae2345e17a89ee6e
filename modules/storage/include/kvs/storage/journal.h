// The node's durability: what the replication layer calls to log every change it applies
// (entries, applied marks, vector raises, tombstone purges, layouts), recovery at start
// (newest snapshot + every whole log record after it), and background snapshots that keep the
// log short. A default-constructed Journal is disabled (kvs.storage.mode=memory): every Log*
// call is a no-op returning LSN 0.
// Thread-safety: Log*, Check/Wait and the accessors from any thread; Recover, Start and Stop
// from the owning thread, in that order.
// Invariant: a change is logged only after the store holds it (so a snapshot started after a
// log rotation reflects every record of the segments before the rotation), and the applied
// vector a snapshot records is read after that rotation and before the store is walked.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "kvs/causal/metadata.h"
#include "kvs/storage/data_dir.h"
#include "kvs/storage/log_format.h"
#include "kvs/storage/wal.h"
#include "kvs/store/store.h"

namespace kvs::storage {

struct JournalOptions {
  WalOptions wal;
  // A snapshot is taken when the log holds this many bytes and at least snapshot_log_percent
  // of the last snapshot's size (so log + snapshot stay within about 1.25x the snapshot, and
  // recovery replays at most that much log).
  uint64_t snapshot_min_log_bytes = 8ull << 20;
  uint64_t snapshot_log_percent = 25;
  // ... or once it holds this many bytes, whatever the snapshot's size (>= snapshot_min_log_
  // bytes): a restart's log replay is then bounded in time, not only relative to the snapshot
  // (128 MiB: ~760k records of 100-byte values, ~0.9 s of replay on this project's VMs).
  uint64_t snapshot_max_log_bytes = 128ull << 20;
  std::chrono::milliseconds snapshot_check_period{500};
  // Damaged log or snapshot: cut there and go on (the node then catches up from its peers)
  // instead of refusing to start.
  bool repair = false;
  // Threads that decode a snapshot's entries at recovery (for a sink whose OnEntry is
  // thread-safe); 0: one per core.
  unsigned recovery_threads = 0;
};

// Receives what recovery reads, in order; an entry's views are valid during the call only.
// A sink that says ConcurrentEntries() gets a snapshot's entries on several threads at once
// and in no set order (each key appears once in a snapshot); everything else, and every log
// record, comes on one thread in log order, after the snapshot's entries.
class RecoverySink {
 public:
  virtual ~RecoverySink() = default;
  virtual void OnEntry(const LoggedEntryRef& entry) = 0;
  virtual bool ConcurrentEntries() const { return false; }
  // A run of entries (a chunk of a snapshot or of the log), in no order that matters: what
  // recovery hands over with ConcurrentEntries, from the same threads as OnEntry would be. By
  // default, OnEntry for each.
  virtual void OnEntries(std::span<const LoggedEntryRef> entries) {
    for (const LoggedEntryRef& e : entries) OnEntry(e);
  }
  // About how many entries are coming (a snapshot's estimate), before the first of them.
  virtual void ExpectEntries(uint64_t /*entries*/) {}
  virtual void OnApplied(std::string_view origin, uint64_t seq) = 0;
  // OnApplied for each of first..last of one origin (consecutive log records). By default, one
  // by one.
  virtual void OnAppliedRange(std::string_view origin, uint64_t first, uint64_t last) {
    for (uint64_t seq = first; seq <= last && seq != 0; ++seq) OnApplied(origin, seq);
  }
  virtual void OnRaise(const causal::VersionVector& vv) = 0;
  virtual void OnPurge(const std::string& key, std::string_view origin, uint64_t seq) = 0;
  virtual void OnLayout(std::string&& layout) = 0;
};

struct RecoveryReport {
  bool ok = true;
  std::string error;  // !ok: what is damaged, where, and what to do
  uint64_t snapshot_entries = 0;
  uint64_t log_records = 0;
  uint64_t segments = 0;
  uint64_t torn_bytes_cut = 0;  // torn tail truncated
  bool repaired = false;        // --storage-repair cut damaged data: catch up from peers
  std::chrono::milliseconds took{0};
};

class Journal {
 public:
  Journal() = default;  // disabled
  Journal(std::unique_ptr<DataDir> dir, JournalOptions options);
  ~Journal();
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  bool enabled() const { return dir_ != nullptr; }
  const DataDir* dir() const { return dir_.get(); }

  RecoveryReport Recover(RecoverySink& sink);
  // Opens the next log segment and starts writing. False with `error` on failure.
  bool Start(std::string& error);
  // Starts the snapshot thread; `applied` and `layout` give the state a snapshot records.
  void StartSnapshots(const store::Store& store, std::function<causal::VersionVector()> applied,
                      std::function<std::string()> layout);
  // Stops snapshots, writes and syncs what is queued, closes the log.
  void Stop();

  // --- logging (0 when disabled) ---
  // `urgency`: kRelaxed for changes applied from a peer's broadcast (nobody waits for them; see
  // Wal::Urgency), kPrompt otherwise.
  uint64_t LogEntry(std::string_view key, const store::Entry& entry, bool record_applied = true,
                    Wal::Urgency urgency = Wal::Urgency::kPrompt);
  uint64_t LogApplied(std::string_view origin, uint64_t seq,
                      Wal::Urgency urgency = Wal::Urgency::kPrompt);
  uint64_t LogRaise(const causal::VersionVector& vv);
  uint64_t LogPurge(std::string_view key, std::string_view origin, uint64_t seq);
  uint64_t LogLayout(std::string_view layout);

  // Whether a client's write must wait for its record's fsync before it is acknowledged.
  bool AckWaits() const { return wal() != nullptr && options_.wal.fsync == FsyncPolicy::kAlways; }
  // False while the log cannot be written (disk full, I/O error): writes are refused then.
  bool Writable() const {
    const Wal* w = wal();
    return w == nullptr || w->healthy();
  }
  Wal::State Check(uint64_t lsn) const {
    Wal* w = wal();
    return w == nullptr || lsn == 0 ? Wal::State::kDurable : w->Check(lsn);
  }
  Wal::State Wait(uint64_t lsn, std::chrono::milliseconds timeout) {
    Wal* w = wal();
    return w == nullptr || lsn == 0 ? Wal::State::kDurable : w->Wait(lsn, timeout);
  }
  // Blocks until everything logged so far is durable (or failed, or `timeout`); true if durable.
  bool Flush(std::chrono::milliseconds timeout);
  // Called on the log's writer thread after each group is durable or failed; an empty
  // function removes it (after which it is no longer running or called).
  void SetDurabilityListener(std::function<void()> listener) {
    listener_ = listener;
    if (Wal* w = wal()) w->SetListener(std::move(listener));
  }
  std::string last_error() const;

  // Takes a snapshot now (tests, tools). False with `error` when it could not.
  bool SnapshotNow(std::string& error);

  // While a hold lives, the log's size triggers no snapshot: a bulk transfer (a bootstrap, a
  // full catch-up, a reshard's staging pull) would otherwise snapshot the growing store again
  // and again (each a copy of all of it) while it loads. The log then holds the transfer, and
  // the first check after the last hold ends snapshots as usual. Holds are counted; any thread.
  class SnapshotHold {
   public:
    explicit SnapshotHold(Journal* journal) : journal_(journal) {
      if (journal_ != nullptr) journal_->snapshot_holds_.fetch_add(1);
    }
    ~SnapshotHold() {
      if (journal_ != nullptr) journal_->snapshot_holds_.fetch_sub(1);
    }
    SnapshotHold(const SnapshotHold&) = delete;
    SnapshotHold& operator=(const SnapshotHold&) = delete;

   private:
    Journal* journal_;
  };
  // Snapshots taken, and snapshot checks that found the log due for one but a hold in place.
  uint64_t snapshots() const { return snapshots_.load(); }
  uint64_t snapshots_deferred() const { return snapshots_deferred_.load(); }

  // What recovery read (zeros until it has run).
  RecoveryReport recovery_report() const;
  std::string MetricsText() const;
  // {"mode":...,"dir":...,...} for /health.
  std::string HealthJson() const;
  // Bytes the data directory's files take on disk (allocated blocks, as du counts them); 0 in
  // memory mode. Cached: the directory is listed again at most every kDiskBytesRefresh, by
  // the caller that finds the figure stale (the others get the cached one at once).
  uint64_t DiskBytes() const;
  static constexpr std::chrono::seconds kDiskBytesRefresh{5};

 private:
  void SnapshotLoop();
  uint64_t LogBytes() const;
  // Log bytes at which the snapshot loop starts the next snapshot.
  uint64_t SnapshotThreshold() const;
  unsigned RecoveryThreads() const;
  // Appends a record payload to the log; 0 when there is none (disabled, not started).
  uint64_t Append(std::string_view payload);

  std::unique_ptr<DataDir> dir_;
  JournalOptions options_;
  // The log once Start() opened it: owned by wal_owned_, published through wal_ (release),
  // since threads serving /health and /metrics during recovery look at it. It lives until the
  // journal is destroyed (Stop only closes it).
  Wal* wal() const { return wal_.load(std::memory_order_acquire); }
  std::unique_ptr<Wal> wal_owned_;
  std::atomic<Wal*> wal_{nullptr};
  std::function<void()> listener_;
  mutable std::mutex recovery_mu_;
  RecoveryReport recovery_;  // GUARDED_BY(recovery_mu_)
  uint64_t next_segment_ = 1;

  const store::Store* store_ = nullptr;
  std::function<causal::VersionVector()> applied_;
  std::function<std::string()> layout_;
  std::mutex snapshot_mu_;  // one snapshot at a time
  std::mutex loop_mu_;
  std::condition_variable loop_cv_;
  bool stop_ = false;  // GUARDED_BY(loop_mu_)
  std::thread snapshot_thread_;
  std::atomic<uint64_t> log_base_lsn_{0};         // appended LSN at the last snapshot's rotation
  std::atomic<uint64_t> recovered_log_bytes_{0};  // log bytes found at start, not yet snapshotted
  std::atomic<uint64_t> last_snapshot_bytes_{0};
  std::atomic<int> snapshot_holds_{0};
  std::atomic<uint64_t> snapshots_deferred_{0};
  std::atomic<bool> snapshot_running_{false};
  std::atomic<uint64_t> snapshots_{0};
  std::atomic<uint64_t> snapshot_failures_{0};
  std::atomic<uint64_t> last_snapshot_micros_{0};
  mutable std::mutex disk_bytes_mu_;  // held by the one refreshing the figure
  mutable std::atomic<uint64_t> disk_bytes_{0};
  mutable std::atomic<int64_t> disk_bytes_at_ns_{0};  // steady clock; 0: never measured
};

}  // namespace kvs::storage
