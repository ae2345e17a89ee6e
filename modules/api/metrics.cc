#include "kvs/api/metrics.h"

namespace kvs::api {

void Metrics::Count(std::string_view method, int status) {
  size_t m = kMethods.size() - 1;
  for (size_t i = 0; i + 1 < kMethods.size(); ++i) {
    if (kMethods[i] == method) m = i;
  }
  int cls = status / 100 - 1;
  if (cls < 0 || cls >= kStatusClasses) cls = kStatusClasses - 1;
  requests_[m][static_cast<size_t>(cls)].fetch_add(1, std::memory_order_relaxed);
}

std::string Metrics::Render(int64_t live_keys) const {
  std::string out =
      "# HELP kvs_http_requests_total HTTP requests answered, by method and status class.\n"
      "# TYPE kvs_http_requests_total counter\n";
  for (size_t m = 0; m < kMethods.size(); ++m) {
    for (int cls = 0; cls < kStatusClasses; ++cls) {
      out += "kvs_http_requests_total{method=\"";
      out += kMethods[m];
      out += "\",code=\"" + std::to_string(cls + 1) + "xx\"} ";
      out += std::to_string(requests_[m][static_cast<size_t>(cls)].load(std::memory_order_relaxed));
      out += '\n';
    }
  }
  out += "# HELP kvs_keys_live Live (non-deleted) keys held by this node.\n";
  out += "# TYPE kvs_keys_live gauge\n";
  out += "kvs_keys_live " + std::to_string(live_keys) + "\n";
  return out;
}

}  // namespace kvs::api
