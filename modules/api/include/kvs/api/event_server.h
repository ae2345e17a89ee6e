// The event-driven HTTP/1.1 front end: a few epoll loops (half the cores by default) share one
// listening socket, read and parse requests on non-blocking keep-alive connections, and answer
// the ones Service can serve without waiting (a key this node owns, dependencies present, no
// reshard barrier) on the loop itself, and relays requests for other shards to their members
// on the loop too (Forwarder). Every other request (waits, node-to-node calls, view and shard
// operations) runs on a worker pool, and its answer is handed back to the connection's loop. See
// README "HTTP front end" for why this replaced POCO's HTTPServer as the default
// (kvs.http.frontend=poco still selects that one). Thread-safety: Start/Stop from one thread; each
// connection belongs to one loop thread. Invariant: a connection has at most one request in flight
// (on a worker, or relayed to another node); its input buffer is left untouched until that
// request's answer is back (the request points into it). Overload: at max_connections the oldest
// idle keep-alive connection is closed to make room for a new one (never one with a request in
// flight); max_connections_per_ip caps one address.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "kvs/api/metrics.h"
#include "kvs/api/service.h"

namespace kvs::net {
class Tls;
}

namespace kvs::api {

struct EventServerOptions {
  std::string bind_host = "0.0.0.0";
  uint16_t port = 8080;
  int loops = 0;                   // event loop threads; 0: half the cores, at least one
  int workers = 64;                // threads for requests that may block
  int backlog = 512;               // listen(2) backlog
  int max_connections = 10000;     // at the limit the oldest idle connection makes room
  int max_connections_per_ip = 0;  // per client address; 0: no cap
  size_t max_head_bytes = 64 * 1024;
  std::chrono::milliseconds receive_timeout{10000};   // a started request must progress
  std::chrono::milliseconds keepalive_timeout{5000};  // idle connections close after this
  int max_keepalive_requests = 0;                     // 0: unlimited
  Metrics* metrics = nullptr;  // connection counters and the open-connections gauge, if set
  // HTTPS instead of HTTP when set (kvs.tls.*; not owned). A plain-HTTP request gets a plain
  // 400 that says so, then the connection closes.
  const net::Tls* tls = nullptr;
  // Requests for another shard are relayed by the loops themselves over pooled non-blocking
  // connections (modules/api/forwarder.h; TLS with `tls`) instead of a worker's blocking call.
  // Not to members named by DNS names (kvs.http.loop_forwarding).
  bool forward_on_loops = true;
};

class EventServer {
 public:
  EventServer(Service& service, const EventServerOptions& options);
  ~EventServer();
  EventServer(const EventServer&) = delete;
  EventServer& operator=(const EventServer&) = delete;

  // Binds and starts the loops; throws Poco::Exception when the address cannot be bound.
  void Start();
  // Stops accepting, closes idle connections, lets in-flight requests finish for up to
  // `grace`, then closes every connection and joins the threads.
  void Stop(std::chrono::milliseconds grace);

  int loop_count() const { return static_cast<int>(loops_.size()); }

 private:
  class Loop;
  struct Shared;

  Service& service_;
  EventServerOptions options_;
  std::unique_ptr<Shared> shared_;
  std::vector<std::unique_ptr<Loop>> loops_;
  bool started_ = false;
};

}  // namespace kvs::api
