#include "kvs/storage/journal.h"

#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <map>
#include <mutex>
#include <thread>

#include "temp_dir.h"

namespace kvs::storage {
namespace {

using std::chrono::milliseconds;

// Collects what recovery delivers into a store and a vector, as the node does.
class TestSink : public RecoverySink {
 public:
  explicit TestSink(bool concurrent = false) : concurrent(concurrent) {}
  void OnEntry(const LoggedEntryRef& e) override {
    if (e.record_applied) {
      std::lock_guard lock(mu);
      applied[std::string(e.entry.origin)] = e.entry.seq;
    }
    store.ApplyIfNewer(e.key, e.entry);
  }
  bool ConcurrentEntries() const override { return concurrent; }
  void OnEntries(std::span<const LoggedEntryRef> entries) override {
    batches.fetch_add(1);
    batched_entries.fetch_add(entries.size());
    for (const LoggedEntryRef& e : entries) {
      if (e.record_applied) {
        std::lock_guard lock(mu);
        applied[std::string(e.entry.origin)] = e.entry.seq;
      }
    }
    store.ApplyAllIfNewer(
        entries.size(), [&](size_t i) { return entries[i].key; },
        [&](size_t i) -> const store::EntryRef& { return entries[i].entry; });
  }
  void OnApplied(std::string_view origin, uint64_t seq) override {
    std::lock_guard lock(mu);
    applied[std::string(origin)] = seq;
  }
  void OnRaise(const causal::VersionVector& vv) override {
    for (const auto& [o, s] : vv) applied[o] = std::max(applied[o], s);
  }
  void OnPurge(const std::string& key, std::string_view origin, uint64_t seq) override {
    store.EraseKeyIf(key, [&](const store::EntryView& e) {
      return e.tombstone && e.version.origin == origin && e.version.seq == seq;
    });
  }
  void OnLayout(std::string&& l) override { layout = std::move(l); }

  const bool concurrent;
  std::atomic<uint64_t> batches{0}, batched_entries{0};
  std::mutex mu;
  store::Store store;
  causal::VersionVector applied;
  std::string layout;
};

store::Entry MakeEntry(std::string value, uint64_t seq, bool tombstone = false) {
  store::Entry e;
  e.value = std::move(value);
  e.tombstone = tombstone;
  e.version = store::Version{seq, "n:1#1.0", seq};
  return e;
}

class JournalTest : public ::testing::Test {
 protected:
  std::unique_ptr<Journal> Open(bool repair = false) {
    std::string error;
    auto dir = DataDir::Open(root_.path(), "n:1", "c", ++now_, error);
    EXPECT_TRUE(dir) << error;
    JournalOptions options;
    options.repair = repair;
    options.recovery_threads = recovery_threads_;
    options.snapshot_min_log_bytes = 1ull << 40;  // snapshots only when a test asks
    return std::make_unique<Journal>(std::move(dir), options);
  }
  // Recovers a fresh journal into `sink`, then starts it writing.
  std::unique_ptr<Journal> Reopen(TestSink& sink, RecoveryReport* report = nullptr,
                                  bool repair = false) {
    auto journal = Open(repair);
    const RecoveryReport r = journal->Recover(sink);
    if (report != nullptr) *report = r;
    if (!r.ok) return journal;
    std::string error;
    EXPECT_TRUE(journal->Start(error)) << error;
    return journal;
  }
  // Writes `n` entries k<i> = v<i> (applied to `sink.store` as the node would), then stops.
  void WriteEntries(Journal& journal, TestSink& sink, int from, int n) {
    uint64_t lsn = 0;
    for (int i = from; i < from + n; ++i) {
      const std::string key = "k" + std::to_string(i);
      const store::Entry e = MakeEntry("v" + std::to_string(i), static_cast<uint64_t>(i));
      sink.store.ApplyIfNewer(key, e);
      lsn = journal.LogEntry(key, e);
    }
    EXPECT_EQ(journal.Wait(lsn, milliseconds(5000)), Wal::State::kDurable);
  }
  // Where the records of a (preallocated) segment end.
  static uint64_t RecordsEnd(const std::string& path) {
    RecordFileReader reader;
    EXPECT_TRUE(reader.Open(path));
    std::string_view payload;
    while (reader.Next(payload) == RecordFileReader::Status::kRecord) {
    }
    return reader.offset();
  }
  std::string LastSegmentPath() {
    std::string error;
    auto dir = DataDir::Open(root_.path(), "n:1", "c", ++now_, error);
    return dir->SegmentPath(dir->Segments().back());
  }

  TempDir root_;
  uint64_t now_ = 1;
  unsigned recovery_threads_ = 0;
};

TEST_F(JournalTest, DisabledJournalLogsNothing) {
  Journal journal;
  EXPECT_FALSE(journal.enabled());
  EXPECT_EQ(journal.LogEntry("k", MakeEntry("v", 1)), 0u);
  EXPECT_TRUE(journal.Writable());
  EXPECT_FALSE(journal.AckWaits());
  EXPECT_EQ(journal.Check(0), Wal::State::kDurable);
}

TEST_F(JournalTest, RecoversEverythingLogged) {
  TestSink live;
  {
    auto journal = Reopen(live);
    journal->LogLayout("L1");
    WriteEntries(*journal, live, 1, 50);
    journal->LogApplied("other#1.0", 7);
    journal->LogRaise({{"peer#1.0", 40}});
    // A delete, then its tombstone purged.
    live.store.ApplyIfNewer("k3", MakeEntry("", 100, true));
    journal->LogEntry("k3", MakeEntry("", 100, true));
    live.store.EraseKeyIf("k3", [](const store::EntryView&) { return true; });
    journal->LogPurge("k3", "n:1#1.0", 100);
    journal->LogLayout("L2");
    journal->Stop();
  }
  TestSink recovered;
  RecoveryReport report;
  auto journal = Reopen(recovered, &report);
  ASSERT_TRUE(report.ok) << report.error;
  EXPECT_EQ(report.log_records, 56u);
  EXPECT_EQ(recovered.layout, "L2");
  EXPECT_EQ(recovered.store.size(), 49u);
  EXPECT_FALSE(recovered.store.Get("k3").has_value());
  EXPECT_EQ(recovered.store.Get("k7")->value, "v7");
  EXPECT_EQ(recovered.applied["other#1.0"], 7u);
  EXPECT_EQ(recovered.applied["peer#1.0"], 40u);
  EXPECT_EQ(recovered.applied["n:1#1.0"], 100u);
}

TEST_F(JournalTest, SnapshotTruncatesTheLogAndRecoveryCombinesBoth) {
  TestSink live;
  auto journal = Reopen(live);
  journal->StartSnapshots(
      live.store,
      [] {
        return causal::VersionVector{{"n:1#1.0", 60}};
      },
      [] { return "LS"; });
  WriteEntries(*journal, live, 1, 60);
  std::string error;
  ASSERT_TRUE(journal->SnapshotNow(error)) << error;
  WriteEntries(*journal, live, 61, 20);
  // Overwrite a snapshotted key after the snapshot.
  live.store.ApplyIfNewer("k5", MakeEntry("new", 500));
  journal->LogEntry("k5", MakeEntry("new", 500));
  journal->Stop();
  journal.reset();

  std::string open_error;
  auto dir = DataDir::Open(root_.path(), "n:1", "c", ++now_, open_error);
  ASSERT_EQ(dir->Snapshots().size(), 1u);
  // A snapshot cut short by a crash while it was being written is ignored and removed.
  const std::string unfinished = root_.path() + "/snap-0000000000000099.kvs.tmp";
  WriteFile(unfinished, "partial");
  EXPECT_EQ(dir->Segments().front(), dir->Snapshots().front());  // older segments are gone
  dir.reset();

  TestSink recovered;
  RecoveryReport report;
  journal = Reopen(recovered, &report);
  ASSERT_TRUE(report.ok) << report.error;
  EXPECT_EQ(report.snapshot_entries, 60u);
  EXPECT_EQ(report.log_records, 21u);
  EXPECT_EQ(recovered.layout, "LS");
  EXPECT_EQ(recovered.store.size(), 80u);
  EXPECT_EQ(recovered.store.Get("k5")->value, "new");
  EXPECT_EQ(recovered.store.Get("k70")->value, "v70");
  EXPECT_FALSE(std::filesystem::exists(unfinished));
  EXPECT_EQ(recovered.applied["n:1#1.0"], 500u);
}

// A sink that takes entries on several threads gets the snapshot from decoder threads and the
// log after it, in order: the result is the store a one-thread recovery rebuilds.
TEST_F(JournalTest, DecoderThreadsRecoverTheSameStoreAsOne) {
  TestSink live;
  auto journal = Reopen(live);
  journal->StartSnapshots(
      live.store,
      [] {
        return causal::VersionVector{{"n:1#1.0", 30000}};
      },
      [] { return "LS"; });
  WriteEntries(*journal, live, 1, 30000);
  std::string error;
  ASSERT_TRUE(journal->SnapshotNow(error)) << error;
  // After the snapshot: overwrites and deletes of snapshotted keys, and new keys.
  uint64_t lsn = 0;
  for (int i = 1; i <= 30000; i += 97) {
    const std::string key = "k" + std::to_string(i);
    const store::Entry e = MakeEntry(i % 2 ? "after" : "", 40000u + i, i % 2 == 0);
    live.store.ApplyIfNewer(key, e);
    lsn = journal->LogEntry(key, e);
  }
  EXPECT_EQ(journal->Wait(lsn, milliseconds(5000)), Wal::State::kDurable);
  WriteEntries(*journal, live, 30001, 500);
  journal->Stop();
  journal.reset();

  for (unsigned threads : {1u, 3u}) {
    recovery_threads_ = threads;
    TestSink recovered(/*concurrent=*/true);
    RecoveryReport report;
    journal = Reopen(recovered, &report);
    ASSERT_TRUE(report.ok) << report.error;
    EXPECT_EQ(report.snapshot_entries, 30000u);
    EXPECT_EQ(recovered.store.size(), live.store.size()) << threads << " threads";
    live.store.ForEach([&](std::string_view key, const store::EntryView& want) {
      const auto got = recovered.store.Get(std::string(key));
      ASSERT_TRUE(got.has_value()) << key;
      EXPECT_EQ(got->value, want.value) << key;
      EXPECT_EQ(got->tombstone, want.tombstone) << key;
      EXPECT_EQ(got->version.hlc, want.version.hlc) << key;
    });
    EXPECT_EQ(recovered.applied["n:1#1.0"], 30500u);
    // The snapshot's entries always come in runs (its chunks; one thread decodes them on the
    // reading thread); the log's, with decoder threads only (one thread applies each record as
    // it is read).
    const uint64_t log_entries = 30000u / 97 + 1 + 500;
    EXPECT_EQ(recovered.batched_entries.load(), 30000u + (threads > 1 ? log_entries : 0u));
    EXPECT_LT(recovered.batches.load(), recovered.batched_entries.load() / 10);
    journal->Stop();
    journal.reset();
  }
}

// Log replay on decoder threads applies every record after the entries before it: a purge
// must find the tombstone it purges, so an older write that follows the purge is what
// remains. Were the purge run before the tombstone was in, the tombstone would win instead.
// Enough keys for several batches between the purges and the layouts.
TEST_F(JournalTest, DecoderThreadsKeepEveryRecordAfterTheEntriesBeforeIt) {
  constexpr int kKeys = 20000;
  {
    TestSink live;
    auto journal = Reopen(live);
    uint64_t lsn = 0;
    for (int i = 0; i < kKeys; ++i) {
      const std::string key = "k" + std::to_string(i);
      lsn = journal->LogEntry(key, MakeEntry("", 100000u + i, /*tombstone=*/true));
    }
    journal->LogLayout("L1");
    for (int i = 0; i < kKeys; ++i) {
      journal->LogPurge("k" + std::to_string(i), "n:1#1.0", 100000u + i);
    }
    for (int i = 0; i < kKeys; ++i) {
      const std::string key = "k" + std::to_string(i);
      lsn = journal->LogEntry(key, MakeEntry("old" + std::to_string(i), 1u + i));
    }
    lsn = journal->LogLayout("L2");
    EXPECT_EQ(journal->Wait(lsn, milliseconds(5000)), Wal::State::kDurable);
    journal->Stop();
  }
  for (unsigned threads : {1u, 2u, 3u}) {
    recovery_threads_ = threads;
    TestSink recovered(/*concurrent=*/true);
    RecoveryReport report;
    auto journal = Reopen(recovered, &report);
    ASSERT_TRUE(report.ok) << report.error;
    EXPECT_EQ(report.log_records, 3u * kKeys + 2) << threads << " threads";
    EXPECT_EQ(recovered.layout, "L2");
    EXPECT_EQ(recovered.store.size(), static_cast<size_t>(kKeys)) << threads << " threads";
    EXPECT_EQ(recovered.store.live_count(), kKeys) << threads << " threads";
    for (int i = 0; i < kKeys; i += 101) {
      const auto got = recovered.store.Get("k" + std::to_string(i));
      ASSERT_TRUE(got.has_value()) << i;
      EXPECT_FALSE(got->tombstone) << i;
      EXPECT_EQ(got->value, "old" + std::to_string(i));
    }
    // The applied vector follows the log's order: the last entry logged sets it.
    EXPECT_EQ(recovered.applied["n:1#1.0"], static_cast<uint64_t>(kKeys));
    journal->Stop();
  }
}

// A bulk transfer holds snapshots: the log, however due, is not snapshotted until the hold
// ends, and then it is.
TEST_F(JournalTest, SnapshotHoldDefersSnapshotsUntilItEnds) {
  std::string error;
  auto dir = DataDir::Open(root_.path(), "n:1", "c", ++now_, error);
  ASSERT_TRUE(dir) << error;
  JournalOptions options;
  options.snapshot_min_log_bytes = 1;  // always due
  options.snapshot_check_period = std::chrono::milliseconds(2);
  Journal journal(std::move(dir), options);
  TestSink live;
  ASSERT_TRUE(journal.Recover(live).ok);
  ASSERT_TRUE(journal.Start(error)) << error;
  auto hold = std::make_unique<Journal::SnapshotHold>(&journal);
  journal.StartSnapshots(
      live.store, [] { return causal::VersionVector{}; }, [] { return "LS"; });
  WriteEntries(journal, live, 1, 10);
  auto poll = [](const std::function<bool()>& done) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!done() && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
    return done();
  };
  ASSERT_TRUE(poll([&] { return journal.snapshots_deferred() >= 3; }));
  EXPECT_EQ(journal.snapshots(), 0u);
  hold.reset();
  EXPECT_TRUE(poll([&] { return journal.snapshots() >= 1; }));
  journal.Stop();
}

TEST_F(JournalTest, LogBytesCapStartsASnapshotWhateverTheSnapshotsSize) {
  // The percentage alone would wait for a log 10x the last snapshot; the cap starts the next
  // snapshot once the log passes 4 KiB.
  std::string error;
  auto dir = DataDir::Open(root_.path(), "n:1", "c", ++now_, error);
  ASSERT_TRUE(dir) << error;
  JournalOptions options;
  options.snapshot_min_log_bytes = 1024;
  options.snapshot_log_percent = 1000;
  options.snapshot_max_log_bytes = 4096;
  options.snapshot_check_period = std::chrono::milliseconds(2);
  Journal journal(std::move(dir), options);
  TestSink live;
  ASSERT_TRUE(journal.Recover(live).ok);
  ASSERT_TRUE(journal.Start(error)) << error;
  auto hold = std::make_unique<Journal::SnapshotHold>(&journal);  // none before the first
  journal.StartSnapshots(
      live.store, [] { return causal::VersionVector{}; }, [] { return "LS"; });
  WriteEntries(journal, live, 1, 400);
  ASSERT_TRUE(journal.SnapshotNow(error)) << error;
  auto metric = [&](const std::string& name) {
    const std::string metrics = journal.MetricsText();
    const size_t at = metrics.find("\n" + name + " ");
    return at == std::string::npos ? -1.0 : std::stod(metrics.substr(at + name.size() + 2));
  };
  EXPECT_EQ(metric("kvs_storage_snapshot_threshold_bytes"), 4096.0);
  WriteEntries(journal, live, 401, 200);  // ~8 KiB of log: past the cap, far below 10x
  ASSERT_LT(metric("kvs_storage_log_bytes"), 10 * 4096.0);
  hold.reset();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (journal.snapshots() < 2 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
  }
  EXPECT_EQ(journal.snapshots(), 2u);
  journal.Stop();
}

TEST_F(JournalTest, TornTailIsCutAtTheLastWholeRecord) {
  TestSink live;
  {
    auto journal = Reopen(live);
    WriteEntries(*journal, live, 1, 10);
    journal->Stop();
  }
  const std::string path = LastSegmentPath();
  // The segment was preallocated: its records, then zeros. Cut it inside a further record.
  const std::string bytes = ReadFile(path).substr(0, RecordsEnd(path));
  ASSERT_GT(bytes.size(), 0u);
  std::string torn;
  AppendFramed(torn, EncodeEntry("k11", MakeEntry("v11", 11), true));
  WriteFile(path, bytes + torn.substr(0, torn.size() - 5));

  TestSink recovered;
  RecoveryReport report;
  auto journal = Reopen(recovered, &report);
  ASSERT_TRUE(report.ok) << report.error;
  EXPECT_EQ(report.torn_bytes_cut, torn.size() - 5);
  EXPECT_EQ(recovered.store.size(), 10u);
  EXPECT_EQ(ReadFile(path), bytes);  // truncated back to the whole records
  // And the node goes on writing after it.
  WriteEntries(*journal, recovered, 11, 1);
  journal->Stop();
  journal.reset();
  TestSink again;
  journal = Reopen(again, &report);
  ASSERT_TRUE(report.ok) << report.error;
  EXPECT_EQ(again.store.size(), 11u);
}

TEST_F(JournalTest, DamageBeforeTheTailRefusesUnlessRepairing) {
  TestSink live;
  {
    auto journal = Reopen(live);
    WriteEntries(*journal, live, 1, 20);
    journal->Stop();
  }
  const std::string path = LastSegmentPath();
  std::string bytes = ReadFile(path);
  bytes[RecordsEnd(path) / 2] ^= 0x04;
  WriteFile(path, bytes);

  TestSink refused;
  RecoveryReport report;
  Reopen(refused, &report);
  ASSERT_FALSE(report.ok);
  EXPECT_NE(report.error.find(path), std::string::npos) << report.error;
  EXPECT_NE(report.error.find("at offset"), std::string::npos) << report.error;
  EXPECT_NE(report.error.find("--storage-repair"), std::string::npos) << report.error;
  EXPECT_EQ(ReadFile(path), bytes);  // refusing changes nothing

  TestSink repaired;
  auto journal = Reopen(repaired, &report, /*repair=*/true);
  ASSERT_TRUE(report.ok) << report.error;
  EXPECT_TRUE(report.repaired);
  EXPECT_GT(repaired.store.size(), 0u);
  EXPECT_LT(repaired.store.size(), 20u);
  EXPECT_EQ(repaired.applied["n:1#1.0"], repaired.store.size());
}

}  // namespace
}  // namespace kvs::storage
