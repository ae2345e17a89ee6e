// libFuzzer target: what kvsctl parses from the network and the disk: the /status JSON of a
// node or a cluster (rendered as the status table and a progress line), /metrics text, and the
// causal session file. Oracles: no crash, leak or uncaught exception; a rejection names its reason;
// a session the decoder accepts re-encodes to text that decodes to an equal session, and the
// re-encoding is stable.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "kvs/ctl/session.h"
#include "kvs/ctl/status.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  std::string error;
  if (const auto cluster = kvs::ctl::ParseClusterStatus(input, &error)) {
    if (kvs::ctl::RenderStatus(*cluster).empty()) std::abort();
  } else if (error.empty()) {
    std::abort();
  }
  error.clear();
  if (const auto node = kvs::ctl::ParseNodeStatus(input, &error)) {
    if (node->operation && kvs::ctl::RenderProgress(*node->operation, 1.5, 20).empty()) {
      std::abort();
    }
  } else if (error.empty()) {
    std::abort();
  }
  // Prometheus text (kvsctl --json metrics): always a JSON object.
  const std::string metrics = kvs::ctl::PrometheusToJson(input);
  if (metrics.size() < 2 || metrics.front() != '{' || metrics.back() != '}') std::abort();
  error.clear();
  const auto session = kvs::ctl::DecodeSession(input, &error);
  if (!session) {
    if (error.empty()) std::abort();
    return 0;
  }
  const std::string encoded = kvs::ctl::EncodeSession(*session);
  const auto again = kvs::ctl::DecodeSession(encoded, &error);
  if (!again || !(*again == *session)) std::abort();
  if (kvs::ctl::EncodeSession(*again) != encoded) std::abort();
  return 0;
}
