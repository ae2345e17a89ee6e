// libFuzzer target: the write-ahead log reader and record decoder (bytes from the disk).
// Oracles: the reader never crashes or hangs, never returns a record whose checksum does not
// match (it re-frames to the same bytes), and every record it decodes re-encodes to the same
// payload (one encoding per record).
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <string>

#include "kvs/storage/log_format.h"

namespace {

std::string TempPath() {
  static const std::string path = "/tmp/kvs-fuzz-log-" + std::to_string(::getpid());
  return path;
}

std::string Reencode(const kvs::storage::LogRecord& r) {
  using kvs::storage::RecordType;
  switch (r.type) {
    case RecordType::kEntry:
      return kvs::storage::EncodeEntry(r.entry.key, r.entry.entry, r.entry.record_applied);
    case RecordType::kApplied:
      return kvs::storage::EncodeApplied(r.origin, r.seq);
    case RecordType::kRaise:
      return kvs::storage::EncodeRaise(r.vv);
    case RecordType::kPurge:
      return kvs::storage::EncodePurge(r.key, r.origin, r.seq);
    case RecordType::kLayout:
      return kvs::storage::EncodeLayout(r.layout);
    default:
      return {};
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = TempPath();
  {
    FILE* f = std::fopen(path.c_str(), "wb");
    if (f == nullptr) std::abort();
    if (size > 0 && std::fwrite(data, 1, size, f) != size) std::abort();
    std::fclose(f);
  }
  kvs::storage::RecordFileReader reader;
  if (!reader.Open(path)) std::abort();
  std::string_view payload;
  uint64_t records = 0;
  while (reader.Next(payload) == kvs::storage::RecordFileReader::Status::kRecord) {
    if (++records > size) std::abort();  // no progress would mean a loop
    std::string framed;
    kvs::storage::AppendFramed(framed, payload);
    const std::string_view in(reinterpret_cast<const char*>(data), size);
    if (in.substr(reader.offset(), framed.size()) != framed) std::abort();
    kvs::storage::LogRecord record;
    if (kvs::storage::DecodeLogRecord(payload, record) && Reencode(record) != payload) {
      std::abort();
    }
  }
  return 0;
}
