// libFuzzer target: the snapshot loader (bytes from the disk). Oracles: no crash or hang, and
// a snapshot it accepts has exactly as many entries as its footer says (checked inside), each
// of which re-encodes to a body that decodes to the same entry.
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <string>

#include "kvs/storage/snapshot.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = "/tmp/kvs-fuzz-snap-" + std::to_string(::getpid());
  {
    FILE* f = std::fopen(path.c_str(), "wb");
    if (f == nullptr) std::abort();
    if (size > 0 && std::fwrite(data, 1, size, f) != size) std::abort();
    std::fclose(f);
  }
  uint64_t entries = 0, seen = 0;
  std::string error;
  const bool ok = kvs::storage::LoadSnapshot(
      path, [](kvs::storage::SnapshotHeader&&) {},
      kvs::storage::EachEntry([&](const kvs::storage::LoggedEntryRef& e) {
        ++seen;
        std::string body;
        kvs::storage::EncodeEntryBody(body, e.key, e.entry.value, e.entry.meta, e.entry.tombstone,
                                      e.entry.hlc, e.entry.origin, e.entry.seq, e.record_applied);
        kvs::storage::PayloadReader in(body);
        kvs::storage::LoggedEntry again;
        if (!kvs::storage::DecodeEntryBody(in, again) || !in.done() || again.key != e.key ||
            again.entry.value != e.entry.value) {
          std::abort();
        }
      }),
      entries, error);
  if (entries != seen) std::abort();
  if (!ok && error.empty()) std::abort();
  return 0;
}
