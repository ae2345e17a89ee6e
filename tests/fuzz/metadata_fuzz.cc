// libFuzzer target: the causal metadata codec (bytes from the network: every client request may
// carry a "causal-metadata" string). Oracles: Decode never crashes; a string it accepts
// re-encodes to exactly itself (the header promises a canonical form, and Decode accepts only
// canonical strings: sorted distinct origins, no leading zeros, seq > 0), the re-encoding
// decodes again to an equal Metadata, and encoding is stable:
// Encode(Decode(Encode(m))) == Encode(m). ScanEntries (the in-place reading) agrees with Decode
// on every input.
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "kvs/causal/metadata.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using kvs::causal::DecodeError;
  using kvs::causal::Metadata;
  const std::string_view wire(reinterpret_cast<const char*>(data), size);
  const auto decoded = kvs::causal::Decode(wire);
  // ScanEntries reads the same string in place: the same verdict, epoch and entries.
  uint64_t epoch = 0;
  std::vector<std::pair<std::string_view, uint64_t>> scanned;
  const std::optional<DecodeError> scan_error = kvs::causal::ScanEntries(
      wire, epoch,
      [&](std::string_view origin, uint64_t seq) { scanned.emplace_back(origin, seq); });
  if (const auto* bad = std::get_if<DecodeError>(&decoded)) {
    if (bad->reason.empty()) std::abort();  // every rejection names its reason
    if (!scan_error || scan_error->reason != bad->reason) std::abort();
    return 0;
  }
  const Metadata& m = std::get<Metadata>(decoded);
  if (scan_error || epoch != m.epoch || scanned.size() != m.vv.size()) std::abort();
  size_t i = 0;
  for (const auto& [origin, seq] : m.vv) {
    if (scanned[i].first != origin || scanned[i].second != seq) std::abort();
    ++i;
  }
  const std::string encoded = kvs::causal::Encode(m);
  if (encoded != wire) std::abort();
  const auto again = kvs::causal::Decode(encoded);
  const Metadata* m2 = std::get_if<Metadata>(&again);
  if (m2 == nullptr || !(*m2 == m)) std::abort();
  if (kvs::causal::Encode(*m2) != encoded) std::abort();
  // Merging a decoded vector into itself or into nothing must not change or lose it.
  Metadata copy = m;
  if (kvs::causal::MergeInto(copy, m) || !(copy == m)) std::abort();
  Metadata empty;
  kvs::causal::MergeInto(empty, m);
  if (!(empty == m) || !kvs::causal::Dominates(m.vv, empty.vv)) std::abort();
  return 0;
}
