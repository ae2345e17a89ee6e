#include "kvs/storage/wal.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <csignal>
#include <set>
#include <thread>
#include <tuple>
#include <vector>

#include "kvs/storage/log_format.h"
#include "temp_dir.h"

namespace kvs::storage {
namespace {

using std::chrono::milliseconds;

std::vector<std::string> Payloads(const std::string& path) {
  RecordFileReader reader;
  EXPECT_TRUE(reader.Open(path));
  std::vector<std::string> out;
  std::string_view payload;
  RecordFileReader::Status status;
  while ((status = reader.Next(payload)) == RecordFileReader::Status::kRecord) {
    out.emplace_back(payload);
  }
  EXPECT_EQ(status, RecordFileReader::Status::kEnd) << reader.error();
  return out;
}

TEST(WalTest, ConcurrentAppendsAllBecomeDurableInLsnOrder) {
  TempDir dir;
  std::string error;
  auto wal = Wal::Open(dir.path(), 1, WalOptions{}, error);
  ASSERT_TRUE(wal) << error;
  constexpr int kThreads = 4, kPerThread = 200;
  std::vector<std::thread> threads;
  std::vector<std::vector<std::pair<uint64_t, std::string>>> appended(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        std::string payload = EncodeApplied("t" + std::to_string(t), static_cast<uint64_t>(i));
        const uint64_t lsn = wal->Append(payload);
        ASSERT_EQ(wal->Wait(lsn, milliseconds(10000)), Wal::State::kDurable);
        appended[t].emplace_back(lsn, std::move(payload));
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_TRUE(wal->healthy());
  const auto stats = wal->stats();
  EXPECT_GE(stats.fsyncs, 1u);
  // Group commit: fewer fsyncs than records (threads wait on shared groups).
  EXPECT_LE(stats.fsyncs, static_cast<uint64_t>(kThreads * kPerThread));
  wal->Close();
  std::map<uint64_t, std::string> by_lsn;
  for (const auto& list : appended) {
    for (const auto& [lsn, payload] : list) by_lsn[lsn] = payload;
  }
  std::vector<std::string> expected;
  for (const auto& [lsn, payload] : by_lsn) expected.push_back(payload);
  EXPECT_EQ(Payloads(dir.path() + "/" + SegmentName(1)), expected);
}

TEST(WalTest, RotateMovesLaterRecordsToTheNextSegment) {
  TempDir dir;
  std::string error;
  auto wal = Wal::Open(dir.path(), 7, WalOptions{}, error);
  ASSERT_TRUE(wal) << error;
  wal->Append(
      "\x02\x01"
      "a\x01");
  const auto next = wal->Rotate(milliseconds(5000));
  ASSERT_TRUE(next.has_value());
  EXPECT_EQ(*next, 8u);
  EXPECT_EQ(wal->segment(), 8u);
  const uint64_t lsn = wal->Append(
      "\x02\x01"
      "b\x02");
  EXPECT_EQ(wal->Wait(lsn, milliseconds(5000)), Wal::State::kDurable);
  wal->Close();
  EXPECT_EQ(Payloads(dir.path() + "/" + SegmentName(7)), std::vector<std::string>{"\x02\x01"
                                                                                  "a\x01"});
  EXPECT_EQ(Payloads(dir.path() + "/" + SegmentName(8)), std::vector<std::string>{"\x02\x01"
                                                                                  "b\x02"});
}

TEST(WalTest, OpenRefusesAnExistingSegment) {
  TempDir dir;
  WriteFile(dir.path() + "/" + SegmentName(1), "x");
  std::string error;
  EXPECT_FALSE(Wal::Open(dir.path(), 1, WalOptions{}, error));
  EXPECT_NE(error.find(SegmentName(1)), std::string::npos);
}

TEST(WalTest, NeverAndIntervalPoliciesWriteWithoutWaitingForFsync) {
  for (FsyncPolicy policy : {FsyncPolicy::kNever, FsyncPolicy::kInterval}) {
    TempDir dir;
    std::string error;
    WalOptions options;
    options.fsync = policy;
    options.fsync_interval = milliseconds(50);
    auto wal = Wal::Open(dir.path(), 1, options, error);
    ASSERT_TRUE(wal) << error;
    uint64_t lsn = 0;
    for (int i = 0; i < 100; ++i) lsn = wal->Append(EncodeApplied("o", static_cast<uint64_t>(i)));
    EXPECT_EQ(wal->Wait(lsn, milliseconds(5000)), Wal::State::kDurable) << ToString(policy);
    wal->Close();
    EXPECT_EQ(Payloads(dir.path() + "/" + SegmentName(1)).size(), 100u);
  }
}

TEST(WalTest, FullSegmentsAreFollowedByNewPreallocatedOnes) {
  TempDir dir;
  std::string error;
  WalOptions options;
  options.segment_bytes = 4096;
  auto wal = Wal::Open(dir.path(), 1, options, error);
  ASSERT_TRUE(wal) << error;
  struct stat st {};
  ASSERT_EQ(::stat((dir.path() + "/" + SegmentName(1)).c_str(), &st), 0);
  EXPECT_EQ(st.st_size, 4096);          // preallocated before anything is written
  EXPECT_GE(st.st_blocks * 512, 4096);  // with its blocks written (zeros), not a sparse file
  std::vector<std::string> expected;
  for (uint64_t i = 0; i < 200; ++i) {
    expected.push_back(EncodeApplied(std::string(80, 'o'), i));
    ASSERT_EQ(wal->Wait(wal->Append(expected.back()), milliseconds(5000)), Wal::State::kDurable);
  }
  const uint64_t last = wal->segment();
  wal->Close();
  EXPECT_GE(last, 4u);  // 200 records of ~100 bytes fill several 4 KiB segments
  for (uint64_t n = 1; n <= last; ++n) {
    ASSERT_EQ(::stat((dir.path() + "/" + SegmentName(n)).c_str(), &st), 0);
    EXPECT_GE(st.st_size, 4096) << n;
    EXPECT_GE(st.st_blocks * 512, 4096) << n;
  }
  // The segment the background thread had ready for the next rotation is gone with the log.
  EXPECT_NE(::stat((dir.path() + "/" + kPreparedSegmentName).c_str(), &st), 0);
  std::vector<std::string> read;
  for (uint64_t n = 1; n <= last; ++n) {
    for (std::string& p : Payloads(dir.path() + "/" + SegmentName(n))) read.push_back(p);
  }
  EXPECT_EQ(read, expected);
}

// Each group starts with a sync mark saying how much of the file was fsynced before it. A
// hole in an earlier group is then damage when a later mark covers it (kAlways), and a torn
// tail when none does (kNever: nothing was fsynced, so nothing was promised).
TEST(WalTest, SyncMarksClaimOnlyWhatWasFsynced) {
  for (FsyncPolicy policy : {FsyncPolicy::kAlways, FsyncPolicy::kNever}) {
    TempDir dir;
    std::string error;
    WalOptions options;
    options.fsync = policy;
    auto wal = Wal::Open(dir.path(), 1, options, error);
    ASSERT_TRUE(wal) << error;
    const std::string big = EncodeApplied(std::string(3000, 'x'), 1);
    ASSERT_EQ(wal->Wait(wal->Append(big), milliseconds(5000)), Wal::State::kDurable);
    ASSERT_EQ(wal->Wait(wal->Append(EncodeApplied("o", 2)), milliseconds(5000)),
              Wal::State::kDurable);
    wal->Close();
    const std::string path = dir.path() + "/" + SegmentName(1);
    std::string bytes = ReadFile(path);
    ASSERT_GT(bytes.size(), 2048u);
    std::fill(bytes.begin() + 1024, bytes.begin() + 1536, '\0');  // inside the big record
    WriteFile(path, bytes);
    RecordFileReader reader;
    ASSERT_TRUE(reader.Open(path));
    std::string_view payload;
    EXPECT_EQ(reader.Next(payload), policy == FsyncPolicy::kAlways
                                        ? RecordFileReader::Status::kDamaged
                                        : RecordFileReader::Status::kTorn)
        << ToString(policy) << ": " << reader.error();
    EXPECT_EQ(reader.offset(), kSyncMarkBytes);
  }
}

// kAlways: records nobody waits for (a replica's copy of a peer's write) need not force a group
// of their own (how many fsyncs that saves is measured by the cluster benchmark, README
// "Forwarding on the event loops"); they must still reach the disk: with the next prompt
// record's group, by themselves when none comes, and at once when someone waits for them.
TEST(WalTest, RelaxedRecordBeforeAPromptOneIsOnDiskWithIt) {
  TempDir dir;
  std::string error;
  auto wal = Wal::Open(dir.path(), 1, WalOptions{}, error);
  ASSERT_TRUE(wal) << error;
  const uint64_t relaxed = wal->Append(EncodeApplied("peer", 1), Wal::Urgency::kRelaxed);
  const uint64_t prompt = wal->Append(EncodeApplied("self", 1));
  ASSERT_EQ(wal->Wait(prompt, milliseconds(5000)), Wal::State::kDurable);
  EXPECT_EQ(wal->Check(relaxed), Wal::State::kDurable);
  wal->Close();
  EXPECT_EQ(Payloads(dir.path() + "/" + SegmentName(1)),
            (std::vector<std::string>{EncodeApplied("peer", 1), EncodeApplied("self", 1)}));
}

TEST(WalTest, RelaxedRecordsReachTheDiskAloneAndAtOnceWhenAwaited) {
  TempDir dir;
  std::string error;
  auto wal = Wal::Open(dir.path(), 1, WalOptions{}, error);
  ASSERT_TRUE(wal) << error;
  // Nobody waits: synced after the relaxed linger, by the writer on its own (polled, bounded).
  const uint64_t alone = wal->Append(EncodeApplied("peer", 1), Wal::Urgency::kRelaxed);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (wal->Check(alone) != Wal::State::kDurable && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
  }
  EXPECT_EQ(wal->Check(alone), Wal::State::kDurable);
  // Someone waits (a peer asking for this replica's vector flushes the journal): durable.
  const uint64_t awaited = wal->Append(EncodeApplied("peer", 2), Wal::Urgency::kRelaxed);
  EXPECT_EQ(wal->Wait(awaited, milliseconds(5000)), Wal::State::kDurable);
  EXPECT_GE(wal->stats().fsyncs, 2u);
  wal->Close();
  EXPECT_EQ(Payloads(dir.path() + "/" + SegmentName(1)).size(), 2u);
}

TEST(WalTest, ListenerRunsAfterGroups) {
  TempDir dir;
  std::string error;
  auto wal = Wal::Open(dir.path(), 1, WalOptions{}, error);
  ASSERT_TRUE(wal) << error;
  std::atomic<int> calls{0};
  wal->SetListener([&] { calls.fetch_add(1); });
  const uint64_t lsn = wal->Append(EncodeApplied("o", 1));
  ASSERT_EQ(wal->Wait(lsn, milliseconds(5000)), Wal::State::kDurable);
  // The listener runs after the durable mark moves; poll for it (bounded).
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (calls.load() == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
  }
  EXPECT_GE(calls.load(), 1);
  wal->SetListener({});
  wal->Close();
}

// Caps the size a write may take a file of this process to (RLIMIT_FSIZE, with SIGXFSZ ignored so
// that a write past it fails with EFBIG, as a full disk fails it with ENOSPC) until Lift() or
// the end of the scope, even when an assertion ends the test early.
class FileSizeLimit {
 public:
  explicit FileSizeLimit(rlim_t bytes) {
    struct sigaction ignore {};
    ignore.sa_handler = SIG_IGN;
    ok_ =
        ::sigaction(SIGXFSZ, &ignore, &old_action_) == 0 && ::getrlimit(RLIMIT_FSIZE, &saved_) == 0;
    rlimit small = saved_;
    small.rlim_cur = bytes;
    ok_ = ok_ && ::setrlimit(RLIMIT_FSIZE, &small) == 0;
  }
  ~FileSizeLimit() { Lift(); }
  FileSizeLimit(const FileSizeLimit&) = delete;
  FileSizeLimit& operator=(const FileSizeLimit&) = delete;
  bool ok() const { return ok_; }
  void Lift() {
    if (lifted_) return;
    lifted_ = true;
    ::setrlimit(RLIMIT_FSIZE, &saved_);
    ::sigaction(SIGXFSZ, &old_action_, nullptr);
  }

 private:
  struct sigaction old_action_ {};
  rlimit saved_{};
  bool ok_ = false;
  bool lifted_ = false;
};

// A write error (here: the file size limit, which fails write(2) with EFBIG just as a full
// disk fails it with ENOSPC) fails the waiting records, marks the log unhealthy, and once
// the limit is lifted the same bytes are written again: no hole, no duplicate.
TEST(WalTest, WriteErrorFailsWaitersThenRecoversWithoutHoles) {
  TempDir dir;
  std::string error;
  WalOptions options;
  options.retry_after_error = milliseconds(20);
  auto wal = Wal::Open(dir.path(), 1, options, error);
  ASSERT_TRUE(wal) << error;
  const uint64_t first = wal->Append(EncodeApplied("o", 1));
  ASSERT_EQ(wal->Wait(first, milliseconds(5000)), Wal::State::kDurable);

  FileSizeLimit limit(first + 100);  // room for a few more small records
  ASSERT_TRUE(limit.ok());

  std::vector<std::string> expected{EncodeApplied("o", 1)};
  Wal::State state = Wal::State::kDurable;
  uint64_t failed_lsn = 0;
  for (uint64_t i = 2; i < 100 && state == Wal::State::kDurable; ++i) {
    expected.push_back(EncodeApplied("o", i));
    failed_lsn = wal->Append(expected.back());
    state = wal->Wait(failed_lsn, milliseconds(5000));
  }
  EXPECT_EQ(state, Wal::State::kFailed);
  EXPECT_FALSE(wal->healthy());
  EXPECT_NE(wal->last_error().find("write failed"), std::string::npos) << wal->last_error();

  limit.Lift();
  expected.push_back(EncodeApplied("o", 1000));
  const uint64_t after = wal->Append(expected.back());
  EXPECT_EQ(wal->Wait(after, milliseconds(5000)), Wal::State::kDurable);
  EXPECT_TRUE(wal->healthy());
  EXPECT_EQ(wal->Check(failed_lsn), Wal::State::kDurable);  // written on the retry
  wal->Close();
  EXPECT_EQ(Payloads(dir.path() + "/" + SegmentName(1)), expected);
}

// Whether files in `dir` can be opened with O_DIRECT (tmpfs before Linux 6.6 cannot).
bool TakesDirectIo(const std::string& dir) {
  const std::string path = dir + "/probe";
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_DIRECT | O_CLOEXEC, 0644);
  if (fd < 0) return false;
  ::close(fd);
  ::unlink(path.c_str());
  return true;
}

// kAlways writes each group with O_DIRECT in whole blocks, rewriting the records already in the
// group's first block: every record must read back, whatever block boundaries groups start,
// end or cross, and across segments.
TEST(WalTest, DirectWritesKeepEveryRecordAcrossBlockBoundaries) {
  // Preallocated 64 KiB segments (several rotations), and one segment that grows as written
  // (each group's padding then extends the file, and the next group writes over it).
  for (const uint64_t segment_bytes : {uint64_t{64} << 10, uint64_t{0}}) {
    TempDir dir;
    if (!TakesDirectIo(dir.path())) GTEST_SKIP() << "no O_DIRECT on " << dir.path();
    std::string error;
    WalOptions options;
    options.segment_bytes = segment_bytes;
    auto wal = Wal::Open(dir.path(), 1, options, error);
    ASSERT_TRUE(wal) << error;
    EXPECT_TRUE(wal->direct_io());
    std::vector<std::string> expected;
    uint64_t n = 0;
    for (int group = 0; group < 120; ++group) {
      uint64_t last = 0;
      for (int k = 0; k <= group % 5; ++k, ++n) {
        // 1 .. ~6000-byte origins: records from a few bytes to past a whole block.
        expected.push_back(EncodeApplied(std::string(1 + (n * 797) % 6000, 'a' + n % 26), n));
        last = wal->Append(expected.back());
      }
      ASSERT_EQ(wal->Wait(last, milliseconds(5000)), Wal::State::kDurable);
    }
    EXPECT_TRUE(wal->direct_io());
    const uint64_t segments = wal->segment();
    wal->Close();
    EXPECT_GE(segments, segment_bytes > 0 ? 3u : 1u);
    std::vector<std::string> read;
    for (uint64_t s = 1; s <= segments; ++s) {
      for (std::string& p : Payloads(dir.path() + "/" + SegmentName(s))) read.push_back(p);
    }
    EXPECT_EQ(read, expected) << segment_bytes;
  }
}

// A direct write cut short at a block boundary (the file size limit; a full disk does the same)
// fails its waiters and is written again, whole, from the start of its first block once the
// limit is lifted: no hole, no duplicate, and still O_DIRECT.
TEST(WalTest, DirectWriteCutShortIsWrittenAgainFromItsBlock) {
  TempDir dir;
  if (!TakesDirectIo(dir.path())) GTEST_SKIP() << "no O_DIRECT on " << dir.path();
  std::string error;
  WalOptions options;
  options.retry_after_error = milliseconds(20);
  auto wal = Wal::Open(dir.path(), 1, options, error);
  ASSERT_TRUE(wal) << error;
  ASSERT_TRUE(wal->direct_io());
  std::vector<std::string> expected;
  uint64_t lsn = 0;
  for (uint64_t i = 0; i < 5; ++i) {  // ~3.5 KiB: the next group starts inside the first block
    expected.push_back(EncodeApplied(std::string(700, 'o'), i));
    lsn = wal->Append(expected.back());
  }
  ASSERT_EQ(wal->Wait(lsn, milliseconds(5000)), Wal::State::kDurable);

  FileSizeLimit limit(8192);  // a block boundary: a write across it stops there
  ASSERT_TRUE(limit.ok());
  Wal::State state = Wal::State::kDurable;
  uint64_t failed_lsn = 0;
  for (uint64_t i = 5; i < 100 && state == Wal::State::kDurable; ++i) {
    expected.push_back(EncodeApplied(std::string(700, 'p'), i));
    failed_lsn = wal->Append(expected.back());
    state = wal->Wait(failed_lsn, milliseconds(5000));
  }
  limit.Lift();
  EXPECT_EQ(state, Wal::State::kFailed);
  EXPECT_NE(wal->last_error().find("write failed"), std::string::npos) << wal->last_error();

  expected.push_back(EncodeApplied("after", 1));
  const uint64_t after = wal->Append(expected.back());
  EXPECT_EQ(wal->Wait(after, milliseconds(5000)), Wal::State::kDurable);
  EXPECT_EQ(wal->Check(failed_lsn), Wal::State::kDurable);  // written on the retry
  EXPECT_TRUE(wal->direct_io());
  wal->Close();
  EXPECT_EQ(Payloads(dir.path() + "/" + SegmentName(1)), expected);
}

TEST(WalTest, DirectIoOnlyWithFsyncAlwaysAndWhenAsked) {
  TempDir dir;
  if (!TakesDirectIo(dir.path())) GTEST_SKIP() << "no O_DIRECT on " << dir.path();
  uint64_t segment = 1;
  for (const auto& [policy, asked, expect] : {std::tuple{FsyncPolicy::kAlways, true, true},
                                              std::tuple{FsyncPolicy::kAlways, false, false},
                                              std::tuple{FsyncPolicy::kInterval, true, false},
                                              std::tuple{FsyncPolicy::kNever, true, false}}) {
    std::string error;
    WalOptions options;
    options.fsync = policy;
    options.direct_io = asked;
    auto wal = Wal::Open(dir.path(), segment++, options, error);
    ASSERT_TRUE(wal) << error;
    EXPECT_EQ(wal->direct_io(), expect) << ToString(policy) << " " << asked;
    wal->Close();
  }
}

}  // namespace
}  // namespace kvs::storage
