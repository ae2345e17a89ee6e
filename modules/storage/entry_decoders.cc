#include "entry_decoders.h"

#include <algorithm>
#include <exception>

namespace kvs::storage {

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

bool DecodeChunkPrefetching(PayloadReader& in,
                            const std::function<void(const LoggedEntryRef&)>& on_entry,
                            const PrefetchFn& prefetch, uint64_t& n,
                            std::vector<LoggedEntryRef>& scratch) {
  uint64_t count = 0;
  if (!in.Varint(count)) return false;
  scratch.clear();
  LoggedEntryRef entry;
  for (uint64_t i = 0; i < count; ++i) {
    if (!DecodeEntryBody(in, entry)) return false;
    scratch.push_back(entry);
  }
  if (!in.done()) return false;
  // Entry i is applied while the node of entry i + kAhead and the bucket of entry i + 2 kAhead
  // are on their way into the cache.
  constexpr size_t kAhead = 8;
  const size_t total = scratch.size();
  for (size_t i = 0; i < std::min(total, 2 * kAhead); ++i) prefetch(scratch[i].key, false);
  for (size_t i = 0; i < std::min(total, kAhead); ++i) prefetch(scratch[i].key, true);
  for (size_t i = 0; i < total; ++i) {
    if (i + 2 * kAhead < total) prefetch(scratch[i + 2 * kAhead].key, false);
    if (i + kAhead < total) prefetch(scratch[i + kAhead].key, true);
    on_entry(scratch[i]);
    ++n;
  }
  return true;
}

EntryDecoders::EntryDecoders(unsigned threads,
                             const std::function<void(const LoggedEntryRef&)>& on_entry,
                             PrefetchFn prefetch)
    : on_entry_(on_entry), prefetch_(std::move(prefetch)) {
  for (unsigned i = 0; i < threads; ++i) workers_.emplace_back([this] { Work(); });
}

EntryDecoders::~EntryDecoders() {
  {
    std::lock_guard lock(mu_);
    closing_ = true;
  }
  has_work_.notify_all();
  for (std::thread& t : workers_) t.join();
}

bool EntryDecoders::Queue(std::string_view bytes, uint64_t count, bool bodies, uint64_t tag) {
  std::unique_lock lock(mu_);
  has_room_.wait(lock, [&] { return jobs_.size() < kQueued || failed_; });
  if (failed_) return false;
  std::string buffer;
  if (!spare_.empty()) {
    buffer = std::move(spare_.back());
    spare_.pop_back();
  }
  lock.unlock();
  // The copy is made outside the lock: the workers keep decoding meanwhile.
  if (bodies) {
    buffer.assign(1, static_cast<char>(RecordType::kSnapshotEntries));
    PutVarint(buffer, count);
    buffer.append(bytes);
  } else {
    buffer.assign(bytes);
  }
  lock.lock();
  jobs_.push_back(Job{std::move(buffer), tag});
  lock.unlock();
  has_work_.notify_one();
  return true;
}

bool EntryDecoders::Finish(uint64_t& bad_tag) {
  std::unique_lock lock(mu_);
  idle_.wait(lock, [&] { return jobs_.empty() && busy_ == 0; });
  bad_tag = bad_tag_;
  return !failed_;
}

uint64_t EntryDecoders::entries() {
  std::lock_guard lock(mu_);
  return entries_;
}

void EntryDecoders::Work() {
  std::vector<LoggedEntryRef> scratch;
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
      ok =
          in.Byte(type) && (prefetch_ ? DecodeChunkPrefetching(in, on_entry_, prefetch_, n, scratch)
                                      : DecodeChunk(in, on_entry_, n));
    } catch (const std::exception&) {
      // on_entry could not take an entry (e.g. too many origins): the chunk is refused.
    }
    lock.lock();
    entries_ += n;
    --busy_;
    if (!ok && (!failed_ || job.tag < bad_tag_)) {
      failed_ = true;
      bad_tag_ = job.tag;
      has_room_.notify_all();
    }
    if (spare_.size() < kQueued) spare_.push_back(std::move(job.payload));
    if (jobs_.empty() && busy_ == 0) idle_.notify_all();
  }
}

}  // namespace kvs::storage
