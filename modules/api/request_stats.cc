#include "kvs/api/request_stats.h"

#include <algorithm>
#include <bit>
#include <cstdio>

namespace kvs::api {

std::string_view RouteName(ApiRoute route) {
  static constexpr std::array<std::string_view, kRouteCount> kNames = {
      "key-value", "view", "shard", "health", "metrics", "status", "internal", "other"};
  return kNames[static_cast<size_t>(route)];
}

ApiRoute RouteOf(std::string_view path) {
  if (path.starts_with("/key-value-store-view")) return ApiRoute::kView;
  if (path.starts_with("/key-value-store-shard")) return ApiRoute::kShard;
  if (path.starts_with("/key-value-store")) return ApiRoute::kKeyValue;
  if (path.starts_with("/internal/")) return ApiRoute::kInternal;
  if (path == "/health" || path == "/health/ready") return ApiRoute::kHealth;
  if (path == "/metrics") return ApiRoute::kMetrics;
  if (path == "/status" || path == "/") return ApiRoute::kStatus;  // "/": the status page
  return ApiRoute::kOther;
}

size_t LatencyBuckets::Index(uint64_t micros) {
  if (micros < 16) return static_cast<size_t>(micros);
  micros = std::min<uint64_t>(micros, (uint64_t{1} << 40) - 1);
  const int e = std::bit_width(micros) - 1;  // 4..39
  const uint64_t sub = (micros >> (e - kSubBits)) & 7;
  return 16 + static_cast<size_t>(e - 4) * 8 + static_cast<size_t>(sub);
}

uint64_t LatencyBuckets::Lower(size_t index) {
  if (index < 16) return index;
  const size_t e = 4 + (index - 16) / 8;
  const uint64_t sub = (index - 16) % 8;
  return (8 + sub) << (e - kSubBits);
}

double LatencyBuckets::Middle(size_t index) {
  if (index < 16) return static_cast<double>(index) + 0.5;
  const size_t e = 4 + (index - 16) / 8;
  const double width = static_cast<double>(uint64_t{1} << (e - kSubBits));
  return static_cast<double>(Lower(index)) + width / 2;
}

double PercentileMs(const std::array<uint64_t, LatencyBuckets::kCount>& counts, uint64_t total,
                    double q) {
  if (total == 0) return 0;
  // The rank of the request at quantile q (1-based), then the bucket that holds it.
  const auto rank =
      std::max<uint64_t>(1, static_cast<uint64_t>(q * static_cast<double>(total) + 0.999999));
  uint64_t seen = 0;
  for (size_t i = 0; i < counts.size(); ++i) {
    seen += counts[i];
    if (seen >= rank) return LatencyBuckets::Middle(i) / 1000.0;
  }
  return LatencyBuckets::Middle(counts.size() - 1) / 1000.0;
}

void RequestStats::Record(ApiRoute route, RequestPath path, uint64_t micros, int64_t now_s) {
  Series& series = series_[static_cast<size_t>(route)][static_cast<size_t>(path)];
  const double seconds = static_cast<double>(micros) / 1e6;
  const size_t b = static_cast<size_t>(std::lower_bound(kBounds.begin(), kBounds.end(), seconds) -
                                       kBounds.begin());
  series.buckets[b].fetch_add(1, std::memory_order_relaxed);
  series.sum_micros.fetch_add(micros, std::memory_order_relaxed);
  if (!IsClientRoute(route)) return;

  Second& second = ring_[static_cast<size_t>(now_s) % kRing];
  int64_t stamp = second.stamp.load(std::memory_order_acquire);
  if (stamp != now_s) {
    if (stamp < now_s && second.stamp.compare_exchange_strong(stamp, now_s)) {
      for (auto& bucket : second.buckets) bucket.store(0, std::memory_order_relaxed);
    } else if (stamp > now_s) {
      return;  // a request that ended a ring's length ago: too old to matter
    }
  }
  second.buckets[LatencyBuckets::Index(micros)].fetch_add(1, std::memory_order_relaxed);
}

WindowSummary RequestStats::Window(int64_t now_s, int64_t start_s) const {
  std::array<uint64_t, LatencyBuckets::kCount> merged{};
  WindowSummary out;
  for (const Second& second : ring_) {
    const int64_t stamp = second.stamp.load(std::memory_order_acquire);
    if (stamp < 0 || stamp > now_s || stamp < now_s - kWindowSeconds) continue;
    for (size_t i = 0; i < merged.size(); ++i) {
      merged[i] += second.buckets[i].load(std::memory_order_relaxed);
    }
  }
  for (uint64_t c : merged) out.requests += c;
  // The window spans kWindowSeconds whole seconds plus the current, partial one: rated over
  // kWindowSeconds + 0.5 s, or over the time since start when that is shorter.
  const double span = std::clamp(static_cast<double>(now_s - start_s) + 0.5, 1.0,
                                 static_cast<double>(kWindowSeconds) + 0.5);
  out.requests_per_s = static_cast<double>(out.requests) / span;
  out.p50_ms = PercentileMs(merged, out.requests, 0.50);
  out.p99_ms = PercentileMs(merged, out.requests, 0.99);
  return out;
}

std::string RequestStats::RenderMetrics() const {
  std::string out =
      "# HELP kvs_http_request_duration_seconds Time from a request's dispatch to its answer, by "
      "route and by path (local: served here; forwarded: relayed to the owning shard; pulled: "
      "served here after pulling missing causal dependencies from a shard peer).\n"
      "# TYPE kvs_http_request_duration_seconds histogram\n";
  char number[32];
  for (size_t r = 0; r < kRouteCount; ++r) {
    for (size_t p = 0; p < kRequestPathCount; ++p) {
      static constexpr std::array<const char*, kRequestPathCount> kPathNames = {
          "local", "forwarded", "pulled"};
      const Series& series = series_[r][p];
      std::string labels = "route=\"";
      labels += RouteName(static_cast<ApiRoute>(r));
      labels += "\",path=\"";
      labels += kPathNames[p];
      labels += "\"";
      uint64_t cumulative = 0;
      for (size_t b = 0; b <= kBounds.size(); ++b) {
        cumulative += series.buckets[b].load(std::memory_order_relaxed);
        if (b < kBounds.size()) {
          std::snprintf(number, sizeof(number), "%g", kBounds[b]);
        } else {
          std::snprintf(number, sizeof(number), "+Inf");
        }
        out += "kvs_http_request_duration_seconds_bucket{" + labels + ",le=\"" + number + "\"} " +
               std::to_string(cumulative) + "\n";
      }
      std::snprintf(number, sizeof(number), "%.6f",
                    static_cast<double>(series.sum_micros.load(std::memory_order_relaxed)) / 1e6);
      out += "kvs_http_request_duration_seconds_sum{" + labels + "} " + number + "\n";
      out += "kvs_http_request_duration_seconds_count{" + labels + "} " +
             std::to_string(cumulative) + "\n";
    }
  }
  return out;
}

}  // namespace kvs::api
