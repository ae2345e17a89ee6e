#include "kvs/storage/snapshot.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cinttypes>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <exception>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

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

namespace {

// Decodes the entries of one kSnapshotEntries record (`in` just past its type byte) and hands
// each to `on_entry`; counts them into `n`. False when the record is malformed.
bool DecodeChunk(PayloadReader& in, const std::function<void(const LoggedEntryRef&)>& on_entry,
                 uint64_t& n) {
  uint64_t count = 0;
  if (!in.Varint(count)) return false;
  LoggedEntryRef entry;
  for (uint64_t i = 0; i < count; ++i) {
    if (!DecodeEntryBody(in, entry)) return false;
    on_entry(entry);
    ++n;
  }
  return in.done();
}

// Decodes entry chunks on worker threads while the caller reads the file: chunks are whole,
// checksummed records and hold distinct keys, so the order in which they reach the store does
// not matter. At most kQueued chunks wait (bounded memory); their buffers are reused.
class ChunkDecoders {
 public:
  ChunkDecoders(unsigned threads, const std::function<void(const LoggedEntryRef&)>& on_entry)
      : on_entry_(on_entry) {
    for (unsigned i = 0; i < threads; ++i) workers_.emplace_back([this] { Work(); });
  }
  ~ChunkDecoders() {
    {
      std::lock_guard lock(mu_);
      closing_ = true;
    }
    has_work_.notify_all();
    for (std::thread& t : workers_) t.join();
  }
  ChunkDecoders(const ChunkDecoders&) = delete;
  ChunkDecoders& operator=(const ChunkDecoders&) = delete;

  // Queues a copy of `payload` (a chunk record at file offset `offset`); waits while the queue
  // is full. False once a worker found a bad chunk (nothing more is queued then).
  bool Submit(std::string_view payload, uint64_t offset) {
    std::unique_lock lock(mu_);
    has_room_.wait(lock, [&] { return jobs_.size() < kQueued || failed_; });
    if (failed_) return false;
    std::string buffer;
    if (!spare_.empty()) {
      buffer = std::move(spare_.back());
      spare_.pop_back();
    }
    lock.unlock();
    buffer.assign(payload);
    lock.lock();
    jobs_.push_back(Job{std::move(buffer), offset});
    lock.unlock();
    has_work_.notify_one();
    return true;
  }

  // Waits until every queued chunk is decoded. False with the first bad chunk's offset.
  bool Finish(uint64_t& bad_offset) {
    std::unique_lock lock(mu_);
    idle_.wait(lock, [&] { return jobs_.empty() && busy_ == 0; });
    bad_offset = bad_offset_;
    return !failed_;
  }
  // Entries decoded so far; complete once Finish() returned.
  uint64_t entries() {
    std::lock_guard lock(mu_);
    return entries_;
  }

 private:
  static constexpr size_t kQueued = 8;
  struct Job {
    std::string payload;
    uint64_t offset;
  };

  void Work() {
    std::unique_lock lock(mu_);
    while (true) {
      has_work_.wait(lock, [&] { return closing_ || !jobs_.empty(); });
      if (jobs_.empty()) return;  // closing
      Job job = std::move(jobs_.front());
      jobs_.pop_front();
      ++busy_;
      lock.unlock();
      has_room_.notify_one();
      PayloadReader in(job.payload);
      uint8_t type = 0;
      uint64_t n = 0;
      bool ok = false;
      try {
        ok = in.Byte(type) && DecodeChunk(in, on_entry_, n);
      } catch (const std::exception&) {
        // on_entry could not take an entry (e.g. too many origins): the chunk is refused.
      }
      lock.lock();
      entries_ += n;
      --busy_;
      if (!ok && (!failed_ || job.offset < bad_offset_)) {
        failed_ = true;
        bad_offset_ = job.offset;
        has_room_.notify_all();
      }
      if (spare_.size() < kQueued) spare_.push_back(std::move(job.payload));
      if (jobs_.empty() && busy_ == 0) idle_.notify_all();
    }
  }

  const std::function<void(const LoggedEntryRef&)>& on_entry_;
  std::mutex mu_;
  std::condition_variable has_work_, has_room_, idle_;
  std::deque<Job> jobs_;            // GUARDED_BY(mu_)
  std::vector<std::string> spare_;  // GUARDED_BY(mu_): emptied buffers to reuse
  size_t busy_ = 0;                 // GUARDED_BY(mu_): chunks being decoded
  bool closing_ = false;            // GUARDED_BY(mu_)
  bool failed_ = false;             // GUARDED_BY(mu_)
  uint64_t bad_offset_ = 0;         // GUARDED_BY(mu_)
  uint64_t entries_ = 0;            // GUARDED_BY(mu_)
  std::vector<std::thread> workers_;
};

}  // namespace

bool LoadSnapshot(const std::string& path, const std::function<void(SnapshotHeader&&)>& on_header,
                  const std::function<void(const LoggedEntryRef&)>& on_entry, uint64_t& entries,
                  std::string& error, unsigned threads) {
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
  std::optional<ChunkDecoders> decoders;
  if (threads > 1) decoders.emplace(threads, on_entry);
  // Entries decoded on this thread (threads == 1) or by the decoders, once they are done.
  auto finish = [&](uint64_t& bad_offset) {
    if (!decoders) return true;
    const bool ok = decoders->Finish(bad_offset);
    entries += decoders->entries();
    return ok;
  };
  uint64_t bad_offset = 0;
  bool have_header = false;
  uint64_t chunks = 0;
  std::string_view payload;
  while (true) {
    const auto status = reader.Next(payload);
    if (status != RecordFileReader::Status::kRecord) {
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
      on_header(std::move(header));
      have_header = true;
      continue;
    }
    if (type == static_cast<uint8_t>(RecordType::kSnapshotEntries)) {
      if (decoders) {
        if (!decoders->Submit(payload, reader.offset())) {
          finish(bad_offset);
          return damaged_at(bad_offset, "bad entry chunk");
        }
      } else if (!DecodeChunk(in, on_entry, entries)) {
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
