// libFuzzer target: the cluster layout codec (bytes from the network: POST /internal/config and
// the answers to GET /internal/config; also the layout record in the data directory).
// Oracles: no crash, leak or uncaught exception; a rejection names its reason; a layout
// DecodeConfig accepts re-encodes to JSON that decodes to an equal layout (epochs and every
// shard's member list), and the re-encoding is stable: Encode(Decode(Encode(c))) == Encode(c).
// The input itself need not equal its re-encoding: JSON whitespace, member order, numbers
// written as strings and ports with leading zeros ("h:080") are accepted and normalised.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "kvs/replication/wire.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  std::string error;
  const auto config = kvs::replication::DecodeConfig(input, error);
  if (!config) {
    if (error.empty()) std::abort();
    return 0;
  }
  const std::string encoded = kvs::replication::EncodeConfig(*config);
  const auto again = kvs::replication::DecodeConfig(encoded, error);
  if (!again || again->epoch != config->epoch || again->barrier_epoch != config->barrier_epoch ||
      again->shards != config->shards) {
    std::abort();
  }
  if (kvs::replication::EncodeConfig(*again) != encoded) std::abort();
  return 0;
}
