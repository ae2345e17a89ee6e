// HTTP client for node-to-node calls: keeps idle keep-alive connections per peer and puts a
// deadline on every call. No POCO type crosses this header.
// Thread-safe: any thread may call Call() concurrently; each call uses its own connection.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kvs::auth {
class ClusterAuth;
}

namespace kvs::net {

class Tls;

// Why no HTTP answer came (CallResult::failure), for metrics.
enum class CallFailure : uint8_t {
  kNone,     // an answer came
  kTimeout,  // connect, send or receive timed out
  kRefused,  // the connection was refused (nothing listens there)
  kTls,      // the TLS handshake or a TLS read/write failed
  kOther,    // reset, unreachable, a bad address, a malformed answer, ...
};
inline constexpr int kCallFailureKinds = 5;
// "none", "timeout", "refused", "tls", "other".
std::string_view CallFailureName(CallFailure failure);

struct CallResult {
  int status = 0;  // 0 when no HTTP answer came (see error)
  std::string body;
  std::string error;  // transport failure: refused, timed out, reset, ...
  CallFailure failure = CallFailure::kNone;

  bool ok() const { return status >= 200 && status < 300; }
  // For logs and errors: the transport failure, or the status and the start of the body.
  std::string Describe() const {
    if (status == 0) return error;
    return "status " + std::to_string(status) + " " + body.substr(0, 200);
  }
};

class PeerClient {
 public:
  // `connect_timeout` bounds connection set-up; each call's `timeout` bounds send and receive.
  // With `auth` (not owned; must outlive the client) enabled, every call is signed with the
  // cluster secret (header X-Kvs-Auth, a fresh signature per attempt). With `tls` (not owned)
  // enabled, calls go over TLS (peers verified against its CA, its certificate presented).
  explicit PeerClient(std::chrono::milliseconds connect_timeout = std::chrono::milliseconds(500),
                      size_t max_idle_per_peer = 8, const auth::ClusterAuth* auth = nullptr,
                      const Tls* tls = nullptr);
  ~PeerClient();
  PeerClient(const PeerClient&) = delete;
  PeerClient& operator=(const PeerClient&) = delete;

  using Headers = std::vector<std::pair<std::string, std::string>>;

  // One request to `peer` ("host:port"). Never throws.
  CallResult Call(const std::string& peer, std::string_view method, const std::string& path,
                  std::string_view body, std::chrono::milliseconds timeout,
                  const Headers& headers = {});

  // Drops idle connections to `peer` (e.g. after it restarted).
  void Forget(const std::string& peer);

 private:
  struct Session;
  std::unique_ptr<Session> Acquire(const std::string& peer);
  void Release(const std::string& peer, std::unique_ptr<Session> session);
  // Logs (at most every 10 s) a call the peer refused (401) or a failed TLS handshake.
  void WarnRefused(const std::string& peer, const CallResult& result);

  const std::chrono::milliseconds connect_timeout_;
  const size_t max_idle_per_peer_;
  const auth::ClusterAuth* const auth_;
  const Tls* const tls_;                         // null: plain HTTP
  std::atomic<int64_t> last_refusal_log_ms_{0};  // steady clock, for WarnRefused
  std::mutex mu_;
  std::map<std::string, std::vector<std::unique_ptr<Session>>> idle_;  // GUARDED_BY(mu_)
};

}  // namespace kvs::net
