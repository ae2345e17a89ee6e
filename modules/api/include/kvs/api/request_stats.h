// Request timing for GET /status and GET /metrics: a sliding ~10 s window of client requests
// (rate and latency percentiles, from a ring of per-second buckets each holding a log-linear
// latency histogram) and the Prometheus histogram kvs_http_request_duration_seconds by route
// and by local or forwarded path.
// Thread-safe and lock-free: Record() from every request thread, Window() / RenderMetrics()
// from any thread. A bucket is reused for a new second by whoever first records in it; a
// request counted by another thread during that reset may be lost (a figure for operators,
// not an account).
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace kvs::api {

// Which part of the API a request went to (the `route` label).
enum class ApiRoute { kKeyValue, kView, kShard, kHealth, kMetrics, kStatus, kInternal, kOther };
inline constexpr size_t kRouteCount = 8;
std::string_view RouteName(ApiRoute route);
// The route of a request path (no query).
ApiRoute RouteOf(std::string_view path);
// Whether requests of `route` count as client traffic in the window (not probes, scrapes,
// status polls or node-to-node calls).
inline bool IsClientRoute(ApiRoute route) {
  return route == ApiRoute::kKeyValue || route == ApiRoute::kView || route == ApiRoute::kShard;
}

// Log-linear latency buckets over microseconds: values below 16 us get a bucket each, then
// every power of two is split into 8 equal buckets (relative error under 12.5%).
class LatencyBuckets {
 public:
  static constexpr int kSubBits = 3;  // 8 buckets per power of two
  static constexpr size_t kCount = 16 + (40 - 4) * 8;
  static size_t Index(uint64_t micros);
  // The middle of bucket `index`'s range, in microseconds.
  static double Middle(size_t index);
  // The lower bound of bucket `index`, in microseconds.
  static uint64_t Lower(size_t index);
};

// What the window saw: requests per second and latency percentiles (ms; 0 with no request).
struct WindowSummary {
  double requests_per_s = 0;
  double p50_ms = 0;
  double p99_ms = 0;
  uint64_t requests = 0;
};

// Percentile `q` (0..1) of a histogram of LatencyBuckets counts, in milliseconds.
double PercentileMs(const std::array<uint64_t, LatencyBuckets::kCount>& counts, uint64_t total,
                    double q);

// How a request was served: here, relayed to the owning shard, or here after pulling causal
// dependencies it found missing from a shard peer (the slow local case).
enum class RequestPath { kLocal = 0, kForwarded = 1, kPulled = 2 };
inline constexpr size_t kRequestPathCount = 3;

class RequestStats {
 public:
  static constexpr int kWindowSeconds = 10;

  // One answered request: its route, how it was served, its latency and the second (any
  // monotonic clock, in whole seconds) it ended in.
  void Record(ApiRoute route, RequestPath path, uint64_t micros, int64_t now_s);
  // The last kWindowSeconds whole seconds before `now_s` plus the current one, rated over
  // the window's length (or the time since `start_s`, if shorter, at least one second).
  WindowSummary Window(int64_t now_s, int64_t start_s) const;
  // kvs_http_request_duration_seconds in the Prometheus text format.
  std::string RenderMetrics() const;

 private:
  struct Second {
    std::atomic<int64_t> stamp{-1};
    std::array<std::atomic<uint32_t>, LatencyBuckets::kCount> buckets{};
  };
  static constexpr size_t kRing = 16;  // > kWindowSeconds + 1: a reset never hits the window
  std::array<Second, kRing> ring_{};

  static constexpr std::array<double, 14> kBounds = {
      0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
  struct Series {
    std::array<std::atomic<uint64_t>, kBounds.size() + 1> buckets{};  // last: +Inf
    std::atomic<uint64_t> sum_micros{0};
  };
  std::array<std::array<Series, kRequestPathCount>, kRouteCount> series_{};
};

}  // namespace kvs::api
