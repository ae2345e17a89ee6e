#include "kvs/storage/snapshot.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <optional>
#include <vector>

#include "entry_decoders.h"
#include "kvs/storage/data_dir.h"

namespace kvs::storage {
namespace {

constexpr char kMagic[] = "KVSSNAP1";
constexpr size_t kChunkBytes = 1 << 20;

class FileWriter {
 public:
  explicit FileWriter(std::string path) : path_(std::move(path)) {
    fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd_ < 0) Fail("cannot create");
  }
  ~FileWriter() {
    if (fd_ >= 0) ::close(fd_);
  }
  bool Write(std::string_view bytes) {
    while (ok() && !bytes.empty()) {
      const ssize_t n = ::write(fd_, bytes.data(), bytes.size());
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return Fail("cannot write");
      bytes.remove_prefix(static_cast<size_t>(n));
      written_ += static_cast<uint64_t>(n);
    }
    return ok();
  }
  bool SyncAndClose() {
    if (!ok()) return false;
    if (::fsync(fd_) != 0) return Fail("cannot sync");
    const int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) return Fail("cannot close");
    return true;
  }
  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }
  uint64_t written() const { return written_; }

 private:
  bool Fail(const char* what) {
    if (error_.empty()) error_ = std::string(what) + " " + path_ + ": " + std::strerror(errno);
    return false;
  }
  std::string path_;
  int fd_ = -1;
  uint64_t written_ = 0;
  std::string error_;
};

}  // namespace

std::string SnapshotName(uint64_t segment) {
  char name[40];
  std::snprintf(name, sizeof name, "snap-%016" PRIu64 ".kvs", segment);
  return name;
}

std::optional<SnapshotInfo> WriteSnapshot(const std::string& dir, uint64_t segment,
                                          const std::string& layout,
                                          const causal::VersionVector& applied,
                                          const store::Store& store, std::string& error) {
  const std::string final_path = dir + "/" + SnapshotName(segment);
  const std::string tmp_path = final_path + ".tmp";
  SnapshotInfo info;
  {
    FileWriter out(tmp_path);
    std::string payload, framed;
    payload.push_back(static_cast<char>(RecordType::kSnapshotHeader));
    PutString(payload, kMagic);
    PutVarint(payload, segment);
    PutString(payload, layout);
    PutVector(payload, applied);
    AppendFramed(framed, payload);
    out.Write(framed);

    uint64_t chunks = 0;
    std::string body;  // entries of the chunk being filled
    uint64_t in_body = 0;
    auto flush_chunk = [&] {
      if (in_body == 0) return;
      payload.clear();
      payload.push_back(static_cast<char>(RecordType::kSnapshotEntries));
      PutVarint(payload, in_body);
      payload += body;
      AppendFramed(framed, payload);
      body.clear();
      in_body = 0;
      ++chunks;
    };
    for (size_t stripe = 0; stripe < store::Store::stripe_count() && out.ok(); ++stripe) {
      framed.clear();
      // Encode under the stripe's lock (quick, in memory); write after releasing it.
      store.ForEachInStripe(stripe, [&](std::string_view key, const store::EntryView& e) {
        EncodeEntryBody(body, key, e.value, e.meta, e.tombstone, e.version.hlc, e.version.origin,
                        e.version.seq, /*record_applied=*/false);
        ++in_body;
        ++info.entries;
        if (body.size() >= kChunkBytes) flush_chunk();
      });
      flush_chunk();
      out.Write(framed);
    }
    framed.clear();
    payload.clear();
    payload.push_back(static_cast<char>(RecordType::kSnapshotFooter));
    PutVarint(payload, info.entries);
    PutVarint(payload, chunks);
    AppendFramed(framed, payload);
    out.Write(framed);
    info.bytes = out.written();
    if (!out.SyncAndClose()) {
      error = out.error();
      ::unlink(tmp_path.c_str());
      return std::nullopt;
    }
  }
  if (::rename(tmp_path.c_str(), final_path.c_str()) != 0) {
    error = "cannot rename " + tmp_path + ": " + std::strerror(errno);
    ::unlink(tmp_path.c_str());
    return std::nullopt;
  }
  if (!SyncDirectory(dir, error)) return std::nullopt;
  return info;
}

bool LoadSnapshot(const std::string& path, const std::function<void(SnapshotHeader&&)>& on_header,
                  const EntriesFn& on_entries, uint64_t& entries, std::string& error,
                  unsigned threads) {
  entries = 0;
  RecordFileReader reader;
  if (!reader.Open(path)) {
    error = path + ": " + reader.error();
    return false;
  }
  auto damaged_at = [&](uint64_t offset, const std::string& why) {
    error = path + " at offset " + std::to_string(offset) + ": " + why;
    return false;
  };
  auto damaged = [&](const std::string& why) { return damaged_at(reader.offset(), why); };
  std::optional<EntryDecoders> decoders;
  if (threads > 1) decoders.emplace(threads, on_entries);
  std::vector<LoggedEntryRef> scratch;  // threads <= 1: one chunk's entries
  // Entries decoded on this thread (threads == 1) or by the decoders, once they are done.
  auto finish = [&](uint64_t& bad_offset) {
    if (!decoders) return true;
    const bool ok = decoders->Finish(bad_offset);
    entries += decoders->entries();
    return ok;
  };
  uint64_t bad_offset = 0;
  bool have_header = false;
  std::optional<SnapshotHeader> pending_header;
  uint64_t chunks = 0;
  std::string_view payload;
  while (true) {
    const auto status = reader.Next(payload);
    if (status != RecordFileReader::Status::kRecord) {
      if (pending_header) on_header(std::move(*pending_header));  // damage before any chunk
      // A bad chunk a decoder found lies before this point: report that one.
      if (!finish(bad_offset)) return damaged_at(bad_offset, "bad entry chunk");
      if (status == RecordFileReader::Status::kEnd) return damaged("snapshot has no footer");
      return damaged(reader.error());
    }
    PayloadReader in(payload);
    uint8_t type = 0;
    in.Byte(type);
    if (!have_header) {
      std::string_view magic;
      SnapshotHeader header;
      std::string_view layout;
      if (type != static_cast<uint8_t>(RecordType::kSnapshotHeader) || !in.String(magic) ||
          magic != kMagic || !in.Varint(header.segment) || !in.String(layout) ||
          !GetVector(in, header.applied) || !in.done()) {
        return damaged("not a kvs snapshot header");
      }
      header.layout.assign(layout);
      pending_header = std::move(header);
      have_header = true;
      continue;
    }
    if (pending_header) {
      // Handed over with the first chunk (or the footer), which sizes the estimate.
      uint64_t count = 0;
      PayloadReader peek(payload.substr(1));
      if (type == static_cast<uint8_t>(RecordType::kSnapshotEntries) && peek.Varint(count)) {
        const double per_byte =
            static_cast<double>(count) / static_cast<double>(payload.size() + kHeaderBytes);
        // No entry body is shorter than 16 bytes (flags, four lengths, a 9-byte clock): a
        // count that claims more is damage, and must not size anything.
        pending_header->estimated_entries =
            std::min(static_cast<uint64_t>(per_byte * static_cast<double>(reader.file_size())),
                     reader.file_size() / 16);
      }
      on_header(std::move(*pending_header));
      pending_header.reset();
    }
    if (type == static_cast<uint8_t>(RecordType::kSnapshotEntries)) {
      if (decoders) {
        if (!decoders->Submit(payload, reader.offset())) {
          finish(bad_offset);
          return damaged_at(bad_offset, "bad entry chunk");
        }
      } else if (!DecodeChunk(in, on_entries, entries, scratch)) {
        return damaged("bad entry chunk");
      }
      ++chunks;
      continue;
    }
    const uint64_t offset = reader.offset();
    if (!finish(bad_offset)) return damaged_at(bad_offset, "bad entry chunk");
    if (type == static_cast<uint8_t>(RecordType::kSnapshotFooter)) {
      uint64_t total = 0, total_chunks = 0;
      if (!in.Varint(total) || !in.Varint(total_chunks) || !in.done() || total != entries ||
          total_chunks != chunks) {
        return damaged_at(offset, "footer does not match the entries read");
      }
      if (reader.Next(payload) != RecordFileReader::Status::kEnd) {
        return damaged("bytes after the footer");
      }
      return true;
    }
    return damaged_at(offset, "unexpected record type " + std::to_string(type));
  }
}

}  // namespace kvs::storage
