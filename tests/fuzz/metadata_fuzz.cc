// libFuzzer target: the causal metadata codec (bytes from the network: every client request may
// carry a "causal-metadata" string). Oracles: Decode never crashes; a string it accepts
// re-encodes to exactly itself (the header promises a canonical form, and Decode accepts only
// canonical strings: sorted distinct origins, no leading zeros, seq > 0), the re-encoding
// decodes again to an equal Metadata, and encoding is stable:
// Encode(Decode(Encode(m))) == Encode(m).
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <variant>

#include "kvs/causal/metadata.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using kvs::causal::DecodeError;
  using kvs::causal::Metadata;
  const std::string_view wire(reinterpret_cast<const char*>(data), size);
  const auto decoded = kvs::causal::Decode(wire);
  if (const auto* bad = std::get_if<DecodeError>(&decoded)) {
    if (bad->reason.empty()) std::abort();  // every rejection names its reason
    return 0;
  }
  const Metadata& m = std::get<Metadata>(decoded);
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
