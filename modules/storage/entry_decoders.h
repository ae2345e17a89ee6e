// Decodes chunks of entry records on worker threads while one thread reads a file: what lets
// recovery load a snapshot, and replay the log between its non-entry records, on every core.
// A chunk has the payload of a snapshot's kSnapshotEntries record (type byte, entry count, the
// entry bodies); a replayed stretch of log is packed into the same form. Private to the storage
// module (snapshot.cc, journal.cc).
// Thread-safety: Submit*/Finish/entries are called by one thread (the reader); `on_entry` runs
// on the workers, several at once, in no set order, so it must be thread-safe and the entries
// of the chunks in flight must not depend on each other's order (snapshot chunks hold distinct
// keys; log entries are applied last-writer-wins, which gives the same store in any order).
// Invariant: at most kQueued chunks wait, so memory stays bounded whatever the file's size.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "kvs/storage/log_format.h"

namespace kvs::storage {

// Decodes the entries of one chunk (`in` just past its type byte) into `scratch` and hands
// them to `on_entries` at once; counts them into `n`. False when the chunk is malformed
// (nothing is handed over then).
bool DecodeChunk(PayloadReader& in, const EntriesFn& on_entries, uint64_t& n,
                 std::vector<LoggedEntryRef>& scratch);

class EntryDecoders {
 public:
  EntryDecoders(unsigned threads, const EntriesFn& on_entries);
  ~EntryDecoders();  // decodes what is queued, then joins the workers
  EntryDecoders(const EntryDecoders&) = delete;
  EntryDecoders& operator=(const EntryDecoders&) = delete;

  // Queues a copy of `payload` (a whole chunk record, identified by `tag`, e.g. its file
  // offset); waits while the queue is full. False once a worker found a bad chunk (nothing more
  // is queued then).
  bool Submit(std::string_view payload, uint64_t tag) { return Queue(payload, 0, false, tag); }
  // The same for `count` entry bodies back to back (no type byte, no count): queued as a chunk.
  bool SubmitBodies(std::string_view bodies, uint64_t count, uint64_t tag) {
    return Queue(bodies, count, true, tag);
  }
  // Waits until every queued chunk is decoded. False with the first bad chunk's tag (the
  // smallest one, when several were bad).
  bool Finish(uint64_t& bad_tag);
  // Entries decoded so far; complete once Finish() returned.
  uint64_t entries();

 private:
  static constexpr size_t kQueued = 8;
  struct Job {
    std::string payload;
    uint64_t tag;
  };

  bool Queue(std::string_view bytes, uint64_t count, bool bodies, uint64_t tag);
  void Work();

  const EntriesFn& on_entries_;
  std::mutex mu_;
  std::condition_variable has_work_, has_room_, idle_;
  std::deque<Job> jobs_;            // GUARDED_BY(mu_)
  std::vector<std::string> spare_;  // GUARDED_BY(mu_): emptied buffers to reuse
  size_t busy_ = 0;                 // GUARDED_BY(mu_): chunks being decoded
  bool closing_ = false;            // GUARDED_BY(mu_)
  bool failed_ = false;             // GUARDED_BY(mu_)
  uint64_t bad_tag_ = 0;            // GUARDED_BY(mu_)
  uint64_t entries_ = 0;            // GUARDED_BY(mu_)
  std::vector<std::thread> workers_;
};

}  // namespace kvs::storage
