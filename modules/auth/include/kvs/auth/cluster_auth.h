// Proof of the cluster secret on node-to-node calls, and the admin bearer token.
//
// A signed call carries the header
//   X-Kvs-Auth: v1 ts=<unix ms> nonce=<32 hex> sig=<64 hex>
// where sig = HMAC-SHA256(secret, "kvs-v1\n" method "\n" target "\n" ts "\n" nonce "\n"
// hex(SHA-256(body))). The receiver refuses a call whose timestamp is more than the window away
// from its own clock, whose signature does not match, or whose nonce it already accepted within
// the window (a replay). Only calls that pass every check are remembered, so forged calls cannot
// fill the replay cache; its size is bounded by the legitimate call rate times the window.
//
// Thread-safe: Sign and Verify may be called from any thread concurrently.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace kvs::auth {

inline constexpr char kAuthHeader[] = "X-Kvs-Auth";

// Why a call's proof was refused.
enum class Failure {
  kNone = 0,
  kMissing,       // no proof at all
  kMalformed,     // not of the form above
  kExpired,       // timestamp outside the window
  kBadSignature,  // wrong secret, or method/path/body/timestamp/nonce changed on the way
  kReplayed,      // a nonce already accepted within the window
};
inline constexpr int kFailureKinds = 6;

// A short reason for logs, metrics labels and 401 bodies ("missing", "expired", ...).
std::string_view FailureName(Failure failure);

// Milliseconds since the Unix epoch, from the system clock.
int64_t UnixMillis();

class ClusterAuth {
 public:
  // An empty `secret` turns authentication off: Sign returns "" and Verify accepts anything.
  ClusterAuth(std::string secret, std::chrono::milliseconds window);
  ~ClusterAuth();
  ClusterAuth(const ClusterAuth&) = delete;
  ClusterAuth& operator=(const ClusterAuth&) = delete;

  bool enabled() const { return !secret_.empty(); }
  std::chrono::milliseconds window() const { return window_; }

  // The X-Kvs-Auth value for one call (a fresh nonce and the current time each time).
  std::string Sign(std::string_view method, std::string_view target, std::string_view body) const;
  // The same with a given time and nonce (32 lower-case hex digits); for tests.
  std::string SignAt(std::string_view method, std::string_view target, std::string_view body,
                     int64_t unix_ms, std::string_view nonce) const;

  // Checks `header` (the X-Kvs-Auth value, empty when absent) at the receiver's time `now_ms`.
  // kNone when authentication is off or the proof is valid (its nonce is then remembered).
  Failure Verify(std::string_view method, std::string_view target, std::string_view body,
                 std::string_view header, int64_t now_ms);

  // Nonces remembered at the moment (for metrics and tests).
  size_t remembered() const;

 private:
  using Nonce = std::array<uint64_t, 2>;
  struct NonceHash {
    size_t operator()(const Nonce& n) const { return static_cast<size_t>(n[0] ^ (n[1] * 31)); }
  };
  // One stripe of the replay cache: nonce -> time (unix ms) after which it may be forgotten.
  struct Stripe {
    mutable std::mutex mu;
    std::unordered_map<Nonce, int64_t, NonceHash> expiry;  // GUARDED_BY(mu)
    size_t prune_at = 1024;                                // GUARDED_BY(mu)
  };
  static constexpr size_t kStripes = 16;

  // false when `nonce` was already accepted and has not expired; else records it.
  bool Remember(const Nonce& nonce, int64_t expires_ms, int64_t now_ms);

  const std::string secret_;
  const std::chrono::milliseconds window_;
  std::unique_ptr<std::array<Stripe, kStripes>> stripes_;
};

// True when `authorization` (the Authorization header's value) is "Bearer <token>" for exactly
// `token` (compared in constant time). `token` must not be empty.
bool BearerMatches(std::string_view authorization, std::string_view token);

}  // namespace kvs::auth
