// What one run measured: latency histograms, status codes, outcomes, transport errors and
// bytes. Not thread-safe: each event-loop thread fills its own Stats; they are merged after
// the threads have been joined.
// Invariant: requests() == responses + request-level transport errors (connect failures are
// not requests: no request had been sent yet).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "kvs/bench/histogram.h"
#include "kvs/bench/options.h"

namespace kvs::bench {

enum class TransportError {
  kConnect = 0,     // connect() failed (refused, unreachable, ...)
  kConnectTimeout,  // connect did not finish within --timeout
  kReset,           // send/recv error on an established connection (ECONNRESET, EPIPE, ...)
  kClosed,          // the server closed the connection before the response ended
  kTimeout,         // no complete response within --timeout
  kProtocol,        // unparsable response
  kTls,             // TLS handshake failed (certificate not trusted or misnamed, protocol)
};
inline constexpr int kTransportErrorCount = 7;
std::string_view TransportErrorName(TransportError error);

struct Stats {
  static constexpr int kMaxStatus = 600;  // codes >= 600 are counted under 0

  LatencyHistogram latency;                           // every complete response
  std::array<LatencyHistogram, kOpCount> op_latency;  // the same, by operation
  std::array<uint64_t, kOpCount> op_responses{};
  std::array<uint64_t, kMaxStatus> status{};
  uint64_t ok = 0;           // success by the protocol's rules
  uint64_t not_found = 0;    // kvs GET/DELETE 404, etcd range with no kvs: key absent
  uint64_t http_errors = 0;  // any other status
  std::array<uint64_t, kTransportErrorCount> transport{};
  uint64_t reconnects = 0;  // connections re-established after a close or an error
  uint64_t bytes_sent = 0;
  uint64_t bytes_received = 0;
  std::string tls_error;  // why the first failed TLS handshake failed (OpenSSL's words)

  uint64_t responses() const { return ok + not_found + http_errors; }
  uint64_t transport_errors() const;
  // Requests sent that ended in a response or a request-level transport error.
  uint64_t requests() const;
  // "200: 123, 201: 45, 404: 3" (codes >= 600 as "other")
  std::string StatusSummary(std::string_view item_separator = ", ",
                            std::string_view count_separator = ": ") const;

  void Merge(const Stats& other);
  void Reset();
};

}  // namespace kvs::bench
