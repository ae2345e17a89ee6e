// The on-disk record format shared by the write-ahead log and snapshots, and the reader that
// walks a file of records. Socket- and thread-free: plain functions over bytes and one file.
//
// A record is a 12-byte header and a payload:
//   u32 length      payload bytes (little-endian)
//   u32 length_crc  crc32(length bytes) ^ kLengthMask: a damaged length is caught before it
//                   is trusted to find the next record
//   u32 crc         crc32(payload)
//   payload         first byte: RecordType; the rest as the type says (varints and
//                   length-prefixed strings, see Encode*/Decode* below)
// A log segment also holds sync marks (RecordType::kSyncMark), one at the start of every group
// the writer writes: "bytes [0, synced) of this file were fsynced before this group was
// written". They are framing, not data: the reader consumes them and never returns one.
//
// Invariant: a reader never returns a record whose checksums do not match. A file ends
// cleanly (at its end, or where only zeros follow: a preallocated segment), or in a torn tail,
// or in damage, and the reader says which, with the offset. A bad record at offset X is a torn
// tail (a group whose write a crash cut short; writeback need not go in page order, so later
// pages of it may have reached the disk while earlier ones did not) only when
//   - a piece of it between sector boundaries is all zero (never written), and
//   - no sync mark after it says X had been fsynced (then it was acknowledged: damage), and
//   - in a file with no sync mark before X (written before marks existed), only zeros follow it.
// A record cut short by the end of the file is a torn tail too. Anything else is damage.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "kvs/causal/metadata.h"
#include "kvs/store/store.h"

namespace kvs::storage {

inline constexpr size_t kHeaderBytes = 12;
// Larger than any record kvs writes (values are limited to 1 GiB by the store).
inline constexpr uint32_t kMaxPayloadBytes = (1u << 30) + (64u << 20);

enum class RecordType : uint8_t {
  kEntry = 1,     // a stored entry (local write, replicated update, repair, moved key)
  kApplied = 2,   // an update applied without changing the store (older than what it has)
  kRaise = 3,     // the applied vector raised to a peer's after a state sync
  kPurge = 4,     // a tombstone purged after every replica applied it
  kLayout = 5,    // the cluster layout (configuration) this node adopted
  kSyncMark = 6,  // framing: bytes of the file fsynced before this group (u64, little-endian)
  kSnapshotHeader = 10,
  kSnapshotEntries = 11,
  kSnapshotFooter = 12,
};

uint32_t Crc32(std::string_view bytes);

// An entry body's first byte: these flags.
inline constexpr uint8_t kEntryFlagTombstone = 1;
inline constexpr uint8_t kEntryFlagRecordApplied = 2;  // the write also advanced the applied vector

// A whole framed sync mark is this long; WriteSyncMark fills one in place.
inline constexpr size_t kSyncMarkPayloadBytes = 9;
inline constexpr size_t kSyncMarkBytes = kHeaderBytes + kSyncMarkPayloadBytes;
void WriteSyncMark(char* at, uint64_t synced);

// Appends header + payload to `out`.
void AppendFramed(std::string& out, std::string_view payload);
// The header of a record holding `payload`.
void FrameHeader(char (&header)[kHeaderBytes], std::string_view payload);

// --- payload codec ------------------------------------------------------------------------
void PutVarint(std::string& out, uint64_t v);
void PutString(std::string& out, std::string_view s);

// Reads from a payload, front to back; every getter returns false past the end or on a
// malformed value, and the reader stays failed.
class PayloadReader {
 public:
  explicit PayloadReader(std::string_view bytes) : rest_(bytes) {}
  bool Varint(uint64_t& v);
  bool String(std::string_view& s);
  bool Byte(uint8_t& b);
  bool done() const { return rest_.empty() && !failed_; }

 private:
  bool Fail();
  std::string_view rest_;
  bool failed_ = false;
};

// An entry as logged: `record_applied` says whether replay also records (origin, seq) as
// applied (false for keys moved by a reshard, whose origins are satisfied by the barrier).
struct LoggedEntry {
  std::string key;
  store::Entry entry;
  bool record_applied = true;
};

void EncodeEntryBody(std::string& out, std::string_view key, std::string_view value,
                     std::string_view meta, bool tombstone, uint64_t hlc, std::string_view origin,
                     uint64_t seq, bool record_applied);
bool DecodeEntryBody(PayloadReader& in, LoggedEntry& out);

// An entry record decoded in place: views into the payload it was decoded from (valid while
// that is). Recovery applies these straight to the store: no copies per entry.
struct LoggedEntryRef {
  std::string_view key;
  store::EntryRef entry;
  bool record_applied = true;

  static LoggedEntryRef Of(const LoggedEntry& e) {
    return LoggedEntryRef{e.key, store::EntryRef::Of(e.entry), e.record_applied};
  }
  LoggedEntry ToOwned() const {
    return LoggedEntry{std::string(key), entry.ToEntry(), record_applied};
  }
};
bool DecodeEntryBody(PayloadReader& in, LoggedEntryRef& out);
// Takes a run of decoded entries (a chunk's worth), valid during the call.
using EntriesFn = std::function<void(std::span<const LoggedEntryRef>)>;
// An EntriesFn that hands the entries to `on_entry` one by one.
inline EntriesFn EachEntry(std::function<void(const LoggedEntryRef&)> on_entry) {
  return [on_entry = std::move(on_entry)](std::span<const LoggedEntryRef> entries) {
    for (const LoggedEntryRef& e : entries) on_entry(e);
  };
}
// A whole kEntry record (type byte, body, nothing after it) decoded in place.
bool DecodeEntryRecord(std::string_view payload, LoggedEntryRef& out);

std::string EncodeEntry(std::string_view key, const store::Entry& entry, bool record_applied);
// EncodeEntry into `out` (cleared first), so a caller can reuse one buffer.
void EncodeEntryTo(std::string& out, std::string_view key, const store::Entry& entry,
                   bool record_applied);
std::string EncodeApplied(std::string_view origin, uint64_t seq);
std::string EncodeRaise(const causal::VersionVector& vv);
std::string EncodePurge(std::string_view key, std::string_view origin, uint64_t seq);
std::string EncodeLayout(std::string_view layout);
void PutVector(std::string& out, const causal::VersionVector& vv);
bool GetVector(PayloadReader& in, causal::VersionVector& vv);

// One decoded log record.
struct LogRecord {
  RecordType type = RecordType::kEntry;
  LoggedEntry entry;         // kEntry
  std::string origin;        // kApplied, kPurge
  uint64_t seq = 0;          // kApplied, kPurge
  std::string key;           // kPurge
  causal::VersionVector vv;  // kRaise
  std::string layout;        // kLayout
};
// Decodes a log payload (types 1-5). False when it is not a well-formed log record.
bool DecodeLogRecord(std::string_view payload, LogRecord& out);

// --- reading a file of records ------------------------------------------------------------

// Walks a file of records from the start, reading it in bounded pieces (memory does not grow
// with the file). Not thread-safe.
class RecordFileReader {
 public:
  enum class Status { kRecord, kEnd, kTorn, kDamaged, kIoError };

  RecordFileReader() = default;
  ~RecordFileReader();
  RecordFileReader(const RecordFileReader&) = delete;
  RecordFileReader& operator=(const RecordFileReader&) = delete;

  // False (with error()) when the file cannot be opened. A reader may be opened again on
  // another file: it starts afresh there, keeping only its buffer's memory.
  bool Open(const std::string& path);
  // The next record's payload in `payload` (valid until the next call). On kTorn/kDamaged,
  // offset() is where the bad record starts and error() says why.
  Status Next(std::string_view& payload);
  // Start of the record Next() last returned or stopped at.
  uint64_t offset() const { return record_offset_; }
  uint64_t file_size() const { return file_size_; }
  const std::string& error() const { return error_; }

 private:
  // Makes bytes [pos_, pos_ + n) available in buf_; false if the file has fewer.
  bool Fill(size_t n);
  bool RestIsZero(uint64_t from);
  // Whether a sync mark starting after `bad` says that `bad` had been fsynced. Reads the rest
  // of the file (only ever after a bad record).
  bool LaterMarkCovers(uint64_t bad);
  // The verdict on a bad record at pos_ spanning `bytes` (whole header, and payload if known):
  // kTorn or kDamaged, with error_ set from `what`.
  Status Judge(std::string_view bytes, const std::string& what);
  // Whether `bytes`, which start at `file_offset`, cut at the file's 512-byte sector
  // boundaries, have a piece that is all zero.
  static bool HasZeroSector(std::string_view bytes, uint64_t file_offset);

  int fd_ = -1;
  uint64_t file_size_ = 0;
  uint64_t pos_ = 0;            // file offset of the next unread record
  uint64_t record_offset_ = 0;  // start of the last record looked at
  bool saw_mark_ = false;       // a sync mark was read before pos_
  // File bytes from buf_offset_: buf_size_ of them in a buffer of buf_capacity_ (not a string:
  // growing one zero-fills what is read over at once).
  std::unique_ptr<char[]> buf_;
  size_t buf_size_ = 0;
  size_t buf_capacity_ = 0;
  uint64_t buf_offset_ = 0;
  std::string error_;
};

}  // namespace kvs::storage
