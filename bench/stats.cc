#include "kvs/bench/stats.h"

namespace kvs::bench {

std::string_view TransportErrorName(TransportError error) {
  switch (error) {
    case TransportError::kConnect:
      return "connect";
    case TransportError::kConnectTimeout:
      return "connect_timeout";
    case TransportError::kReset:
      return "reset";
    case TransportError::kClosed:
      return "closed";
    case TransportError::kTimeout:
      return "timeout";
    case TransportError::kProtocol:
      return "protocol";
    case TransportError::kTls:
      return "tls";
  }
  return "?";
}

uint64_t Stats::transport_errors() const {
  uint64_t total = 0;
  for (uint64_t n : transport) total += n;
  return total;
}

uint64_t Stats::requests() const {
  return responses() + transport[static_cast<int>(TransportError::kReset)] +
         transport[static_cast<int>(TransportError::kClosed)] +
         transport[static_cast<int>(TransportError::kTimeout)] +
         transport[static_cast<int>(TransportError::kProtocol)];
}

std::string Stats::StatusSummary(std::string_view item_separator,
                                 std::string_view count_separator) const {
  std::string out;
  for (int code = 1; code <= kMaxStatus; ++code) {
    const int index = code % kMaxStatus;  // the "other" slot 0 goes last
    if (status[index] == 0) continue;
    if (!out.empty()) out.append(item_separator);
    out.append(index == 0 ? "other" : std::to_string(index));
    out.append(count_separator).append(std::to_string(status[index]));
  }
  return out;
}

void Stats::Merge(const Stats& other) {
  latency.Merge(other.latency);
  for (int i = 0; i < kOpCount; ++i) {
    op_latency[i].Merge(other.op_latency[i]);
    op_responses[i] += other.op_responses[i];
  }
  for (int i = 0; i < kMaxStatus; ++i) status[i] += other.status[i];
  ok += other.ok;
  not_found += other.not_found;
  http_errors += other.http_errors;
  for (int i = 0; i < kTransportErrorCount; ++i) transport[i] += other.transport[i];
  reconnects += other.reconnects;
  bytes_sent += other.bytes_sent;
  bytes_received += other.bytes_received;
  if (tls_error.empty()) tls_error = other.tls_error;
}

void Stats::Reset() {
  latency.Reset();
  for (auto& histogram : op_latency) histogram.Reset();
  op_responses.fill(0);
  status.fill(0);
  ok = not_found = http_errors = 0;
  transport.fill(0);
  reconnects = bytes_sent = bytes_received = 0;
  tls_error.clear();
}

}  // namespace kvs::bench
