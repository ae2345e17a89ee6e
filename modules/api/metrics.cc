#include "kvs/api/metrics.h"

#include <utility>

#include "kvs/store/memory.h"

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

void Metrics::SetOpenConnectionsGauge(std::function<int64_t()> gauge) {
  std::lock_guard lock(gauge_mu_);
  open_connections_ = std::move(gauge);
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
  out +=
      "# HELP kvs_http_connections_evicted_total Idle keep-alive connections closed to make room "
      "for a new one (kvs.http.max_connections reached).\n"
      "# TYPE kvs_http_connections_evicted_total counter\n"
      "kvs_http_connections_evicted_total " +
      std::to_string(evicted_.load(std::memory_order_relaxed)) + "\n";
  out +=
      "# HELP kvs_forwarded_requests_total Client requests the epoll front end relayed to "
      "another shard (kvs.http.loop_forwarding): on=\"loop\" from the event loop itself, "
      "on=\"worker\" through a worker thread (a member named by a host name that is not "
      "resolved yet, or cannot be).\n"
      "# TYPE kvs_forwarded_requests_total counter\n"
      "kvs_forwarded_requests_total{on=\"loop\"} " +
      std::to_string(forwarded_[0].load(std::memory_order_relaxed)) +
      "\nkvs_forwarded_requests_total{on=\"worker\"} " +
      std::to_string(forwarded_[1].load(std::memory_order_relaxed)) + "\n";
  out +=
      "# HELP kvs_http_connections_refused_total New connections closed at once: limit "
      "(kvs.http.max_connections reached, none idle) or per_ip "
      "(kvs.http.max_connections_per_ip reached).\n"
      "# TYPE kvs_http_connections_refused_total counter\n";
  constexpr std::array<std::string_view, 2> kReasons = {"limit", "per_ip"};
  for (size_t r = 0; r < kReasons.size(); ++r) {
    out += "kvs_http_connections_refused_total{reason=\"";
    out += kReasons[r];
    out += "\"} " + std::to_string(refused_[r].load(std::memory_order_relaxed)) + "\n";
  }
  out +=
      "# HELP kvs_auth_failures_total Requests refused with 401, by credential (cluster: the "
      "node-to-node proof of kvs.cluster.secret on /internal/ paths; admin: kvs.admin.token) "
      "and reason.\n"
      "# TYPE kvs_auth_failures_total counter\n";
  for (size_t f = 1; f < static_cast<size_t>(auth::kFailureKinds); ++f) {
    out += "kvs_auth_failures_total{credential=\"cluster\",reason=\"";
    out += auth::FailureName(static_cast<auth::Failure>(f));
    out += "\"} " + std::to_string(auth_failures_[0][f].load(std::memory_order_relaxed)) + "\n";
  }
  constexpr std::array<std::pair<auth::Failure, std::string_view>, 2> kAdminReasons = {
      {{auth::Failure::kMissing, "missing"}, {auth::Failure::kBadSignature, "wrong-token"}}};
  for (const auto& [failure, name] : kAdminReasons) {
    out += "kvs_auth_failures_total{credential=\"admin\",reason=\"";
    out += name;
    out += "\"} " +
           std::to_string(
               auth_failures_[1][static_cast<size_t>(failure)].load(std::memory_order_relaxed)) +
           "\n";
  }
  out +=
      "# HELP kvs_forwarding_failures_total Client requests this node could not forward to the "
      "owning shard (no member answered; the request got a 503), by the last member's failure.\n"
      "# TYPE kvs_forwarding_failures_total counter\n";
  for (size_t f = 1; f < forwarding_failures_.size(); ++f) {
    out += "kvs_forwarding_failures_total{reason=\"";
    out += net::CallFailureName(static_cast<net::CallFailure>(f));
    out += "\"} " + std::to_string(forwarding_failures_[f].load(std::memory_order_relaxed)) + "\n";
  }
  {
    std::lock_guard lock(gauge_mu_);
    if (open_connections_) {
      out +=
          "# HELP kvs_http_connections_open Client connections open now (epoll front end).\n"
          "# TYPE kvs_http_connections_open gauge\n"
          "kvs_http_connections_open " +
          std::to_string(open_connections_()) + "\n";
    }
  }
  out += "# HELP kvs_keys_live Live (non-deleted) keys held by this node.\n";
  out += "# TYPE kvs_keys_live gauge\n";
  out += "kvs_keys_live " + std::to_string(live_keys) + "\n";
  const store::MemoryStats memory = store::GetMemoryStats();
  out +=
      "# HELP kvs_store_memory_bytes Bytes of the regions the store's memory pool holds.\n"
      "# TYPE kvs_store_memory_bytes gauge\nkvs_store_memory_bytes " +
      std::to_string(memory.region_bytes) +
      "\n# HELP kvs_store_memory_huge_bytes Of the pool's memory, bytes known to be in huge "
      "pages.\n# TYPE kvs_store_memory_huge_bytes gauge\nkvs_store_memory_huge_bytes " +
      std::to_string(memory.huge_bytes) + "\n";
  return out;
}

}  // namespace kvs::api
