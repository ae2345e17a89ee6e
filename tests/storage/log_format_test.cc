#include "kvs/storage/log_format.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "temp_dir.h"

namespace kvs::storage {
namespace {

store::Entry MakeEntry(std::string value, uint64_t hlc, std::string origin, uint64_t seq,
                       bool tombstone = false, std::string meta = "") {
  store::Entry e;
  e.value = std::move(value);
  e.tombstone = tombstone;
  e.version = store::Version{hlc, std::move(origin), seq};
  e.meta = std::move(meta);
  return e;
}

// Every record and snapshot on disk carries this checksum: its values must never change
// (CRC-32 as zlib and gzip compute it; "123456789" is the standard check string).
TEST(LogFormatTest, Crc32IsZlibsCrc32) {
  EXPECT_EQ(Crc32(""), 0x00000000u);
  EXPECT_EQ(Crc32("123456789"), 0xcbf43926u);
  EXPECT_EQ(Crc32("a"), 0xe8b7be43u);
  // Long enough for the folding code path, with a tail that is not a multiple of 16 bytes.
  EXPECT_EQ(Crc32(std::string(1000, 'x')), 0x3b41c9e6u);
}

// Reads every record of `path`; returns the payloads and the final status.
std::vector<std::string> ReadAll(const std::string& path, RecordFileReader::Status& end,
                                 uint64_t* end_offset = nullptr) {
  RecordFileReader reader;
  EXPECT_TRUE(reader.Open(path));
  std::vector<std::string> out;
  std::string_view payload;
  while ((end = reader.Next(payload)) == RecordFileReader::Status::kRecord) {
    out.emplace_back(payload);
  }
  if (end_offset != nullptr) *end_offset = reader.offset();
  return out;
}

TEST(LogFormatTest, EntryRoundTrips) {
  const store::Entry e = MakeEntry("value \x01\xff", 77, "10.0.0.1:8080#5.2", 9, false, "0|x=1");
  LogRecord record;
  ASSERT_TRUE(DecodeLogRecord(EncodeEntry("key/é", e, true), record));
  EXPECT_EQ(record.type, RecordType::kEntry);
  EXPECT_EQ(record.entry.key, "key/é");
  EXPECT_EQ(record.entry.entry.value, e.value);
  EXPECT_EQ(record.entry.entry.meta, e.meta);
  EXPECT_EQ(record.entry.entry.version.hlc, 77u);
  EXPECT_EQ(record.entry.entry.version.origin, e.version.origin);
  EXPECT_EQ(record.entry.entry.version.seq, 9u);
  EXPECT_FALSE(record.entry.entry.tombstone);
  EXPECT_TRUE(record.entry.record_applied);

  ASSERT_TRUE(DecodeLogRecord(EncodeEntry("k", MakeEntry("", 1, "o", 2, true), false), record));
  EXPECT_TRUE(record.entry.entry.tombstone);
  EXPECT_FALSE(record.entry.record_applied);
}

TEST(LogFormatTest, OtherRecordsRoundTrip) {
  LogRecord record;
  ASSERT_TRUE(DecodeLogRecord(EncodeApplied("o#1", 1ull << 40), record));
  EXPECT_EQ(record.type, RecordType::kApplied);
  EXPECT_EQ(record.origin, "o#1");
  EXPECT_EQ(record.seq, 1ull << 40);

  const causal::VersionVector vv{{"a#1", 3}, {"b#2", UINT64_MAX}};
  ASSERT_TRUE(DecodeLogRecord(EncodeRaise(vv), record));
  EXPECT_EQ(record.type, RecordType::kRaise);
  EXPECT_EQ(record.vv, vv);

  ASSERT_TRUE(DecodeLogRecord(EncodePurge("key", "o#1", 5), record));
  EXPECT_EQ(record.type, RecordType::kPurge);
  EXPECT_EQ(record.key, "key");
  EXPECT_EQ(record.origin, "o#1");
  EXPECT_EQ(record.seq, 5u);

  ASSERT_TRUE(DecodeLogRecord(EncodeLayout("{\"epoch\":3}"), record));
  EXPECT_EQ(record.type, RecordType::kLayout);
  EXPECT_EQ(record.layout, "{\"epoch\":3}");
}

TEST(LogFormatTest, MalformedPayloadsAreRejected) {
  LogRecord record;
  EXPECT_FALSE(DecodeLogRecord("", record));
  EXPECT_FALSE(DecodeLogRecord(std::string(1, '\x63'), record));  // unknown type
  std::string entry = EncodeEntry("k", MakeEntry("v", 1, "o", 1), true);
  for (size_t cut = 1; cut < entry.size(); ++cut) {
    EXPECT_FALSE(DecodeLogRecord(entry.substr(0, cut), record)) << "cut at " << cut;
  }
  EXPECT_FALSE(DecodeLogRecord(entry + "x", record));  // trailing bytes
  std::string varint_overflow(1, static_cast<char>(RecordType::kApplied));
  varint_overflow += std::string("\x01o", 2) + std::string(10, '\xff');
  EXPECT_FALSE(DecodeLogRecord(varint_overflow, record));
}

class RecordFileTest : public ::testing::Test {
 protected:
  // Three records; returns the file bytes.
  std::string WriteThree() {
    payloads_ = {EncodeEntry("a", MakeEntry("1", 1, "o", 1), true),
                 EncodeEntry("b", MakeEntry(std::string(300, 'x'), 2, "o", 2), true),
                 EncodeApplied("o", 3)};
    std::string bytes;
    for (const std::string& p : payloads_) {
      ends_.push_back(bytes.size());  // start of each record
      AppendFramed(bytes, p);
    }
    ends_.push_back(bytes.size());
    WriteFile(path_, bytes);
    return bytes;
  }
  TempDir dir_;
  std::string path_ = dir_.path() + "/log";
  std::vector<std::string> payloads_;
  std::vector<size_t> ends_;  // record boundaries: 0, end of 1st, end of 2nd, end of 3rd
};

TEST_F(RecordFileTest, ReadsWholeFile) {
  WriteThree();
  RecordFileReader::Status end;
  EXPECT_EQ(ReadAll(path_, end), payloads_);
  EXPECT_EQ(end, RecordFileReader::Status::kEnd);
}

TEST_F(RecordFileTest, AReaderOpenedAgainReadsOnlyTheNewFile) {
  // A big file first (its buffer grows past one read), then a small one, then the big again.
  const std::string big_path = dir_.path() + "/big";
  std::vector<std::string> big;
  std::string bytes;
  for (int i = 0; i < 3000; ++i) {
    big.push_back(
        EncodeEntry("k" + std::to_string(i), MakeEntry(std::string(700, 'v'), i, "o", i), true));
    AppendFramed(bytes, big.back());
  }
  WriteFile(big_path, bytes);
  WriteThree();
  RecordFileReader reader;
  for (const auto& [path, want] : std::vector<std::pair<std::string, std::vector<std::string>>>{
           {big_path, big}, {path_, payloads_}, {big_path, big}}) {
    ASSERT_TRUE(reader.Open(path));
    std::vector<std::string> got;
    std::string_view payload;
    RecordFileReader::Status end;
    while ((end = reader.Next(payload)) == RecordFileReader::Status::kRecord) {
      got.emplace_back(payload);
    }
    EXPECT_EQ(end, RecordFileReader::Status::kEnd) << path << ": " << reader.error();
    EXPECT_EQ(got, want) << path;
  }
  EXPECT_FALSE(reader.Open(dir_.path() + "/missing"));
}

TEST_F(RecordFileTest, EveryCutInsideTheLastRecordsIsATornTailAtTheLastWholeRecord) {
  const std::string bytes = WriteThree();
  // Every byte offset inside the last two records.
  for (size_t cut = ends_[1] + 1; cut < bytes.size(); ++cut) {
    if (cut == ends_[2]) continue;  // a clean boundary: not torn
    WriteFile(path_, bytes.substr(0, cut));
    RecordFileReader::Status end;
    uint64_t at = 0;
    const auto got = ReadAll(path_, end, &at);
    const size_t whole = cut < ends_[2] ? 1 : 2;
    ASSERT_EQ(end, RecordFileReader::Status::kTorn) << "cut at " << cut;
    ASSERT_EQ(got.size(), whole) << "cut at " << cut;
    EXPECT_EQ(at, ends_[whole]) << "cut at " << cut;
  }
}

TEST_F(RecordFileTest, ZerosAfterTheLastRecordAreTheEnd) {
  // A preallocated segment: its records, then space never written.
  const std::string bytes = WriteThree();
  for (size_t zeros : {1, 11, 12, 100, 5000}) {
    WriteFile(path_, bytes + std::string(zeros, '\0'));
    RecordFileReader::Status end;
    uint64_t at = 0;
    EXPECT_EQ(ReadAll(path_, end, &at), payloads_) << zeros;
    EXPECT_EQ(end, RecordFileReader::Status::kEnd) << zeros;
    EXPECT_EQ(at, bytes.size()) << zeros;
  }
}

std::string SyncMark(uint64_t synced) {
  std::string mark(kSyncMarkBytes, '\0');
  WriteSyncMark(mark.data(), synced);
  return mark;
}

TEST_F(RecordFileTest, SyncMarksAreFramingNotRecords) {
  const std::string a = EncodeApplied("o", 1), b = EncodeApplied("o", 2);
  std::string bytes = SyncMark(0);
  AppendFramed(bytes, a);
  const size_t b_at = bytes.size() + kSyncMarkBytes;
  bytes += SyncMark(bytes.size());
  AppendFramed(bytes, b);
  WriteFile(path_, bytes);
  RecordFileReader reader;
  ASSERT_TRUE(reader.Open(path_));
  std::string_view payload;
  ASSERT_EQ(reader.Next(payload), RecordFileReader::Status::kRecord);
  EXPECT_EQ(payload, a);
  EXPECT_EQ(reader.offset(), kSyncMarkBytes);
  ASSERT_EQ(reader.Next(payload), RecordFileReader::Status::kRecord);
  EXPECT_EQ(payload, b);
  EXPECT_EQ(reader.offset(), b_at);
  EXPECT_EQ(reader.Next(payload), RecordFileReader::Status::kEnd);
}

// A preallocated segment whose last group a crash cut short out of page order: a sector in
// the middle of the group never reached the disk, the pages after it did.
TEST_F(RecordFileTest, HoleInTheLastGroupIsTornEvenWithItsLaterPagesWritten) {
  const std::string first = EncodeApplied("o", 1);
  const std::string big = EncodeEntry("b", MakeEntry(std::string(2000, 'x'), 2, "o", 2), true);
  const std::string after = EncodeApplied("o", 3);
  std::string bytes = SyncMark(0);
  AppendFramed(bytes, first);
  const uint64_t first_group_end = bytes.size();
  bytes += SyncMark(first_group_end);  // the first group was fsynced before this one
  const size_t big_at = bytes.size();
  AppendFramed(bytes, big);
  AppendFramed(bytes, after);
  const size_t hole = 1024;  // a sector inside the big record
  ASSERT_LT(big_at + 100, hole);
  ASSERT_LT(hole + 512, big_at + big.size());
  std::string holed = bytes;
  std::fill(holed.begin() + hole, holed.begin() + hole + 512, '\0');
  WriteFile(path_, holed + std::string(4096, '\0'));
  RecordFileReader::Status end;
  uint64_t at = 0;
  EXPECT_EQ(ReadAll(path_, end, &at), std::vector<std::string>{first});
  EXPECT_EQ(end, RecordFileReader::Status::kTorn);
  EXPECT_EQ(at, big_at);

  // A later group whose mark says the big record had been fsynced: the hole is damage.
  std::string later = holed;
  later += SyncMark(later.size());
  AppendFramed(later, EncodeApplied("o", 4));
  WriteFile(path_, later + std::string(4096, '\0'));
  EXPECT_EQ(ReadAll(path_, end, &at).size(), 1u);
  EXPECT_EQ(end, RecordFileReader::Status::kDamaged);
  EXPECT_EQ(at, big_at);

  // A later group whose mark claims only the first group (it was written before the big
  // record's group was fsynced, as with kInterval): still a torn tail.
  std::string unsynced = holed;
  unsynced += SyncMark(first_group_end);
  AppendFramed(unsynced, EncodeApplied("o", 4));
  WriteFile(path_, unsynced);
  EXPECT_EQ(ReadAll(path_, end, &at).size(), 1u);
  EXPECT_EQ(end, RecordFileReader::Status::kTorn);

  // A changed byte instead of a hole: damage, whatever follows.
  std::string flipped = bytes;
  flipped[hole + 7] = 'y';
  WriteFile(path_, flipped + std::string(4096, '\0'));
  EXPECT_EQ(ReadAll(path_, end, &at).size(), 1u);
  EXPECT_EQ(end, RecordFileReader::Status::kDamaged);
}

TEST_F(RecordFileTest, LastRecordWithAZeroSectorIsTornButNotWhenMoreFollows) {
  // A last record spanning several sectors, one of which a crash left unwritten (zero).
  const std::string first = EncodeEntry("a", MakeEntry("1", 1, "o", 1), true);
  const std::string big = EncodeEntry("b", MakeEntry(std::string(2000, 'x'), 2, "o", 2), true);
  std::string bytes;
  AppendFramed(bytes, first);
  const size_t big_at = bytes.size();
  AppendFramed(bytes, big);
  const size_t hole = 1024;  // the file's third sector, inside the big record
  ASSERT_LT(big_at + 100, hole);
  ASSERT_LT(hole + 512, bytes.size());
  std::string holed = bytes;
  std::fill(holed.begin() + hole, holed.begin() + hole + 512, '\0');

  WriteFile(path_, holed);
  RecordFileReader::Status end;
  uint64_t at = 0;
  EXPECT_EQ(ReadAll(path_, end, &at), std::vector<std::string>{first});
  EXPECT_EQ(end, RecordFileReader::Status::kTorn);
  EXPECT_EQ(at, big_at);

  // The same hole with a whole record after it: damage.
  std::string followed = holed;
  AppendFramed(followed, EncodeApplied("o", 3));
  WriteFile(path_, followed);
  EXPECT_EQ(ReadAll(path_, end, &at).size(), 1u);
  EXPECT_EQ(end, RecordFileReader::Status::kDamaged);

  // A changed byte (no zero sector) in the last record: damage, not a torn tail.
  std::string flipped = bytes;
  flipped[hole + 7] = 'y';
  WriteFile(path_, flipped);
  EXPECT_EQ(ReadAll(path_, end, &at).size(), 1u);
  EXPECT_EQ(end, RecordFileReader::Status::kDamaged);
}

TEST_F(RecordFileTest, EveryFlippedBitIsDetectedNeverAccepted) {
  const std::string bytes = WriteThree();
  // Flip each bit of the first two records: the reader must stop at or before the damaged
  // record, never return a changed payload, and (damage followed by whole records) report
  // damage rather than a torn tail.
  for (size_t i = 0; i < ends_[2]; ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string flipped = bytes;
      flipped[i] = static_cast<char>(flipped[i] ^ (1 << bit));
      WriteFile(path_, flipped);
      RecordFileReader::Status end;
      uint64_t at = 0;
      const auto got = ReadAll(path_, end, &at);
      const size_t damaged_record = i < ends_[1] ? 0 : 1;
      ASSERT_EQ(got.size(), damaged_record) << "byte " << i << " bit " << bit;
      for (size_t r = 0; r < got.size(); ++r) ASSERT_EQ(got[r], payloads_[r]);
      // A flipped length bit can make the record look longer than the file: that reads as a
      // cut-short record, but its header checksum catches it first.
      ASSERT_EQ(end, RecordFileReader::Status::kDamaged) << "byte " << i << " bit " << bit;
      EXPECT_EQ(at, ends_[damaged_record]);
    }
  }
}

TEST_F(RecordFileTest, MissingFileIsAnError) {
  RecordFileReader reader;
  EXPECT_FALSE(reader.Open(dir_.path() + "/nope"));
  EXPECT_FALSE(reader.error().empty());
}

}  // namespace
}  // namespace kvs::storage
