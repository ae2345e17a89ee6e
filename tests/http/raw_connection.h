// A raw HTTP/1.1 client connection for tests that need control over the bytes on the wire
// (tests/http/overload_test.cc: connections held idle or mid-request at the connection limit).
// One thread uses a RawConnection at a time; every wait is bounded.
#ifndef KVS_TESTS_HTTP_RAW_CONNECTION_H_
#define KVS_TESTS_HTTP_RAW_CONNECTION_H_

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "http_client.h"

namespace kvs::http_test {

struct RawResponse {
  int status = 0;       // 0: none (closed, or timed out)
  bool closed = false;  // the server closed or reset the connection before a whole answer
  bool timed_out = false;
  std::string body;
  std::string error;

  std::string Describe() const;
};

// A non-blocking client TCP connection to 127.0.0.1:`port`, optionally from `source_ip`. Closed
// by the destructor.
class RawConnection {
 public:
  explicit RawConnection(uint16_t port, const char* source_ip = nullptr);
  ~RawConnection();
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;

  bool connected() const { return connected_; }
  const std::string& error() const { return error_; }

  // Writes all of `bytes`; false if the peer is gone (or the time is up).
  bool Send(std::string_view bytes);

  // Reads one whole answer (framed by Content-Length) within `timeout`.
  RawResponse Read(std::chrono::milliseconds timeout);

  RawResponse Exchange(std::string_view request, std::chrono::milliseconds timeout = kIoTimeout);

  // True once the peer closed (or reset) the connection, false if it stayed open for `timeout`
  // or sent something instead.
  bool WaitClosed(std::chrono::milliseconds timeout);

 private:
  enum class ReceiveResult { kData, kClosed, kTimeout };

  ReceiveResult Receive(std::chrono::steady_clock::time_point deadline, std::string* error);

  int fd_ = -1;
  bool connected_ = false;
  std::string error_;
  std::string buffer_;  // received, not yet returned
};

}  // namespace kvs::http_test

#endif  // KVS_TESTS_HTTP_RAW_CONNECTION_H_
