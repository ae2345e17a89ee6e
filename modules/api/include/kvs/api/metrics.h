// Request counters for GET /metrics (Prometheus text format), and the connection counters of the
// epoll front end (overload defence). Thread-safe: lock-free counters; the open-connections
// gauge is read under a mutex.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>

#include "kvs/auth/cluster_auth.h"
#include "kvs/net/peer_client.h"

namespace kvs::api {

// Which credential a refused request lacked.
enum class AuthScope {
  kCluster,  // the node-to-node proof of the cluster secret (/internal/ paths)
  kAdmin,    // the admin token (view changes, add-member, reshard)
};

// Why a new client connection was closed as soon as it was accepted.
enum class ConnectionRefusal {
  kLimit,  // kvs.http.max_connections reached and no idle connection to close instead
  kPerIp,  // its address already had kvs.http.max_connections_per_ip connections
};

class Metrics {
 public:
  // Counts one answered request. `method` is the HTTP method, `status` the answer's code.
  void Count(std::string_view method, int status);
  // An idle keep-alive connection closed to make room for a new one.
  void CountEvicted() { evicted_.fetch_add(1, std::memory_order_relaxed); }
  // A request refused with 401: `failure` is kMissing or kBadSignature (a wrong token) for
  // kAdmin, any reason for kCluster.
  void CountAuthFailure(AuthScope scope, auth::Failure failure) {
    auth_failures_[static_cast<size_t>(scope)][static_cast<size_t>(failure)].fetch_add(
        1, std::memory_order_relaxed);
  }
  // A client request this node could not forward to the owning shard (no member answered):
  // `failure` is the last member's (kvs_forwarding_failures_total{reason}).
  void CountForwardingFailure(net::CallFailure failure) {
    forwarding_failures_[static_cast<size_t>(failure)].fetch_add(1, std::memory_order_relaxed);
  }
  // A client request the epoll front end relayed to another shard: from the event loop itself,
  // or through a worker thread (a member named by a host name not resolved yet).
  void CountForwarded(bool on_loop) {
    forwarded_[on_loop ? 0 : 1].fetch_add(1, std::memory_order_relaxed);
  }
  void CountRefused(ConnectionRefusal reason) {
    refused_[static_cast<size_t>(reason)].fetch_add(1, std::memory_order_relaxed);
  }
  // While set, Render reports what `gauge` returns as kvs_http_connections_open. The front end
  // sets it after it started and clears it (an empty function) before it is destroyed.
  void SetOpenConnectionsGauge(std::function<int64_t()> gauge);
  // Prometheus exposition text; `live_keys` is added as a gauge.
  std::string Render(int64_t live_keys) const;

 private:
  static constexpr std::array<std::string_view, 5> kMethods = {"GET", "PUT", "DELETE", "POST",
                                                               "OTHER"};
  static constexpr int kStatusClasses = 5;  // 1xx..5xx
  std::array<std::array<std::atomic<uint64_t>, kStatusClasses>, kMethods.size()> requests_{};
  std::atomic<uint64_t> evicted_{0};
  std::array<std::atomic<uint64_t>, 2> refused_{};    // by ConnectionRefusal
  std::array<std::atomic<uint64_t>, 2> forwarded_{};  // on the loop, through a worker
  std::array<std::atomic<uint64_t>, net::kCallFailureKinds> forwarding_failures_{};
  std::array<std::array<std::atomic<uint64_t>, auth::kFailureKinds>, 2> auth_failures_{};
  mutable std::mutex gauge_mu_;
  std::function<int64_t()> open_connections_;  // GUARDED_BY(gauge_mu_)
};

}  // namespace kvs::api
