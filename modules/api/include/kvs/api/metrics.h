// Request counters for GET /metrics (Prometheus text format). Thread-safe: lock-free counters.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>

namespace kvs::api {

class Metrics {
 public:
  // Counts one answered request. `method` is the HTTP method, `status` the answer's code.
  void Count(std::string_view method, int status);
  // Prometheus exposition text; `live_keys` is added as a gauge.
  std::string Render(int64_t live_keys) const;

 private:
  static constexpr std::array<std::string_view, 5> kMethods = {"GET", "PUT", "DELETE", "POST",
                                                               "OTHER"};
  static constexpr int kStatusClasses = 5;  // 1xx..5xx
  std::array<std::array<std::atomic<uint64_t>, kStatusClasses>, kMethods.size()> requests_{};
};

}  // namespace kvs::api
