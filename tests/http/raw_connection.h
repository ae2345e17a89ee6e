// A raw HTTP/1.1 client connection for tests that need control over the bytes on the wire
// (tests/http/overload_test.cc: connections held idle or mid-request at the connection limit).
// In the secure.* runs with TLS (SecureSuiteCa() set) it speaks TLS through OpenSSL, whose
// records pass through memory buffers: every socket call is the plain one (non-blocking,
// MSG_NOSIGNAL, bounded by poll()). One thread uses a RawConnection at a time; every wait is
// bounded.
#ifndef KVS_TESTS_HTTP_RAW_CONNECTION_H_
#define KVS_TESTS_HTTP_RAW_CONNECTION_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "http_client.h"

typedef struct ssl_st SSL;  // <openssl/ssl.h>

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
// by the destructor. With TLS, the constructor also completes the handshake (the server's
// certificate must chain to SecureSuiteCa() and name IP 127.0.0.1), and Send / Read carry
// plaintext with the same results as without.
class RawConnection {
 public:
  explicit RawConnection(uint16_t port, const char* source_ip = nullptr);
  ~RawConnection();
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;

  // The TCP connection is up (and, with TLS, the handshake did not fail on a TLS error: a server
  // that closes or resets the connection during the handshake, as a refusal at the connection
  // limit does, leaves it connected and closed, as without TLS).
  bool connected() const { return connected_; }
  const std::string& error() const { return error_; }

  // Writes all of `bytes`; false if the peer is gone (or the time is up).
  bool Send(std::string_view bytes);

  // Like Send, but puts only the first `wire_bytes` bytes of what `bytes` become on the wire
  // into the socket: the bytes themselves, or with TLS the first bytes of the one record that
  // carries them (5: its header only). The rest goes with SendRest() (or before the next Send).
  bool SendStart(std::string_view bytes, size_t wire_bytes);
  bool SendRest();

  // Reads one whole answer (framed by Content-Length) within `timeout`.
  RawResponse Read(std::chrono::milliseconds timeout);

  RawResponse Exchange(std::string_view request, std::chrono::milliseconds timeout = kIoTimeout);

  // True once the peer closed (or reset) the connection, false if it stayed open for `timeout`
  // or sent something instead.
  bool WaitClosed(std::chrono::milliseconds timeout);

  // True once the server has taken every byte sent so far out of its socket (its receive
  // queue in /proc/net/tcp is empty), false if it has not within `timeout`: after SendStart,
  // the partial request is then in the server's hands (with TLS, inside OpenSSL).
  bool WaitPeerHasReadAll(std::chrono::milliseconds timeout);

 private:
  enum class ReceiveResult { kData, kClosed, kTimeout };

  struct SslFree {
    void operator()(SSL* ssl) const;
  };

  void StartTls();
  // Plaintext into buffer_ (through OpenSSL with TLS).
  ReceiveResult Receive(std::chrono::steady_clock::time_point deadline, std::string* error);
  // The socket alone.
  ReceiveResult ReceiveRaw(std::chrono::steady_clock::time_point deadline, std::string* into,
                           std::string* error);
  bool SendRaw(std::string_view bytes, std::chrono::steady_clock::time_point deadline);
  // TLS: sends held_, then every byte OpenSSL has written; false (and closed_) if it cannot.
  bool FlushTls(std::chrono::steady_clock::time_point deadline);

  int fd_ = -1;
  bool connected_ = false;
  std::string error_;
  std::string buffer_;  // received, not yet returned
  std::unique_ptr<SSL, SslFree> ssl_;
  bool closed_ = false;  // TLS: the socket failed or was closed; no more I/O through ssl_
  std::string held_;     // wire bytes SendStart kept back
};

}  // namespace kvs::http_test

#endif  // KVS_TESTS_HTTP_RAW_CONNECTION_H_
