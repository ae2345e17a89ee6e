// A tiny blocking HTTP/1.1 server for the engine tests: listens on 127.0.0.1 (port 0 = any),
// a thread per connection, answers each request according to its Mode. Thread-safe: the
// counters and the request log may be read while it serves; Stop() (or the destructor) ends
// every thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace kvs::bench::testing {

class TestHttpServer {
 public:
  enum class Mode {
    kOk,      // 200 OK, Content-Length, keep-alive
    kSilent,  // reads requests, never answers
    kCausal,  // 200 with a fresh "causal-metadata" per answer; checks the client echoes it
    kShards,  // kvs on two shards: a PUT of keyN gets 201 with "shard-id": N % 2, else 200
  };

  explicit TestHttpServer(Mode mode, int close_every = 0);
  ~TestHttpServer();

  uint16_t port() const { return port_; }
  std::string Target() const { return "127.0.0.1:" + std::to_string(port_); }
  void Stop();

  uint64_t requests() const { return requests_.load(); }
  uint64_t connections() const { return connections_.load(); }
  uint64_t bytes_received() const { return bytes_received_.load(); }
  uint64_t bytes_sent() const { return bytes_sent_.load(); }
  uint64_t metadata_mismatches() const { return metadata_mismatches_.load(); }
  // "METHOD path" of every request in the order they were answered.
  std::vector<std::string> Log() const;

  static const std::string& OkResponse();

 private:
  void AcceptLoop();
  void Serve(int fd);

  const Mode mode_;
  const int close_every_;  // every Nth answer on a connection says Connection: close; 0 = never
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  std::thread acceptor_;
  mutable std::mutex mutex_;
  std::vector<std::thread> threads_;  // guarded by mutex_
  std::vector<int> fds_;              // guarded by mutex_
  std::vector<std::string> log_;      // guarded by mutex_
  std::atomic<uint64_t> requests_{0};
  std::atomic<uint64_t> connections_{0};
  std::atomic<uint64_t> bytes_received_{0};
  std::atomic<uint64_t> bytes_sent_{0};
  std::atomic<uint64_t> metadata_mismatches_{0};
};

}  // namespace kvs::bench::testing
