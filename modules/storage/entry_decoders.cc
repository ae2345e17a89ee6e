#include "entry_decoders.h"

#include <pthread.h>

#include <exception>

namespace kvs::storage {

bool DecodeChunk(PayloadReader& in, const EntriesFn& on_entries, uint64_t& n,
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
  on_entries(scratch);
  n += scratch.size();
  return true;
}

EntryDecoders::EntryDecoders(unsigned threads, const EntriesFn& on_entries)
    : on_entries_(on_entries) {
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
  pthread_setname_np(pthread_self(), "kvs-decode");  // top -H, perf --sort comm
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
      ok = in.Byte(type) && DecodeChunk(in, on_entries_, n, scratch);
    } catch (const std::exception&) {
      // on_entries could not take an entry (e.g. too many origins): the chunk is refused.
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
