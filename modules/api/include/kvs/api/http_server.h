// The POCO HTTPServer front end: accepts connections on a bounded thread pool (keep-alive on),
// reads each request body within the configured limit, and hands the request to Service.
// Thread-safety: Start/Stop from one (the main) thread; requests run on the pool's threads.
#pragma once

#include <Poco/Net/HTTPServer.h>
#include <Poco/ThreadPool.h>

#include <chrono>
#include <memory>
#include <string>

#include "kvs/api/service.h"

namespace kvs::net {
class Tls;
}

namespace kvs::api {

struct HttpOptions {
  std::string bind_host = "0.0.0.0";
  uint16_t port = 8080;
  int threads = 64;      // worker threads (one per active connection)
  int max_queued = 256;  // accepted connections waiting for a worker
  int backlog = 512;     // listen(2) backlog
  std::chrono::milliseconds receive_timeout{10000};
  std::chrono::milliseconds keepalive_timeout{5000};
  int max_keepalive_requests = 0;  // 0: unlimited
  const net::Tls* tls = nullptr;   // HTTPS when set (not owned)
};

class HttpServer {
 public:
  HttpServer(Service& service, const HttpOptions& options);
  ~HttpServer();

  // Binds and starts serving; throws Poco::Exception when the address cannot be bound.
  void Start();
  // Stops accepting, lets in-flight requests finish for up to `grace`, then aborts the rest.
  void Stop(std::chrono::milliseconds grace);

 private:
  Service& service_;
  HttpOptions options_;
  std::unique_ptr<Poco::ThreadPool> pool_;
  std::unique_ptr<Poco::Net::HTTPServer> server_;
};

}  // namespace kvs::api
