#include "kvs/auth/cluster_auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <charconv>
#include <cstring>
#include <random>
#include <stdexcept>

namespace kvs::auth {
namespace {

constexpr std::string_view kVersion = "v1";
constexpr size_t kNonceHex = 32;
constexpr size_t kSigHex = 64;
constexpr char kHexDigits[] = "0123456789abcdef";

std::string Hex(const unsigned char* bytes, size_t n) {
  std::string out(n * 2, '0');
  for (size_t i = 0; i < n; ++i) {
    out[2 * i] = kHexDigits[bytes[i] >> 4];
    out[2 * i + 1] = kHexDigits[bytes[i] & 0xf];
  }
  return out;
}

// Lower-case hex only: the signer writes lower case, and one spelling per value keeps the
// signed text canonical.
bool IsLowerHex(std::string_view text) {
  for (const char c : text) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

uint64_t HexWord(std::string_view sixteen) {
  uint64_t value = 0;
  std::from_chars(sixteen.data(), sixteen.data() + sixteen.size(), value, 16);
  return value;
}

// Splits off the next space-separated field "<name>=<value>" and returns its value, or nullopt.
bool TakeField(std::string_view& rest, std::string_view name, std::string_view& value) {
  const size_t space = rest.find(' ');
  const std::string_view field = rest.substr(0, space);
  rest = space == std::string_view::npos ? std::string_view() : rest.substr(space + 1);
  if (field.size() <= name.size() || !field.starts_with(name) || field[name.size()] != '=') {
    return false;
  }
  value = field.substr(name.size() + 1);
  return true;
}

}  // namespace

std::string_view FailureName(Failure failure) {
  switch (failure) {
    case Failure::kNone:
      return "none";
    case Failure::kMissing:
      return "missing";
    case Failure::kMalformed:
      return "malformed";
    case Failure::kExpired:
      return "expired";
    case Failure::kBadSignature:
      return "bad-signature";
    case Failure::kReplayed:
      return "replayed";
  }
  return "unknown";
}

int64_t UnixMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

ClusterAuth::ClusterAuth(std::string secret, std::chrono::milliseconds window)
    : secret_(std::move(secret)),
      window_(window),
      stripes_(std::make_unique<std::array<Stripe, kStripes>>()) {}

ClusterAuth::~ClusterAuth() = default;

std::string ClusterAuth::Sign(std::string_view method, std::string_view target,
                              std::string_view body) const {
  if (!enabled()) return {};
  unsigned char nonce[kNonceHex / 2];
  if (RAND_bytes(nonce, sizeof nonce) != 1) {
    // OpenSSL's generator failed (no entropy?): fall back to the C++ one rather than send an
    // unsigned call; a nonce needs to be unique, not secret.
    static thread_local std::mt19937_64 fallback{std::random_device{}()};
    for (unsigned char& b : nonce) b = static_cast<unsigned char>(fallback());
  }
  return SignAt(method, target, body, UnixMillis(), Hex(nonce, sizeof nonce));
}

std::string ClusterAuth::SignAt(std::string_view method, std::string_view target,
                                std::string_view body, int64_t unix_ms,
                                std::string_view nonce) const {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int digest_size = 0;
  if (EVP_Digest(body.data(), body.size(), digest, &digest_size, EVP_sha256(), nullptr) != 1) {
    throw std::runtime_error("SHA-256 failed");
  }
  std::string text;
  text.reserve(64 + method.size() + target.size() + 2 * digest_size);
  text.append("kvs-v1\n").append(method).append("\n").append(target).append("\n");
  text.append(std::to_string(unix_ms)).append("\n").append(nonce).append("\n");
  text.append(Hex(digest, digest_size));
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_size = 0;
  if (HMAC(EVP_sha256(), secret_.data(), static_cast<int>(secret_.size()),
           reinterpret_cast<const unsigned char*>(text.data()), text.size(), mac,
           &mac_size) == nullptr) {
    throw std::runtime_error("HMAC-SHA256 failed");
  }
  std::string header(kVersion);
  header.append(" ts=").append(std::to_string(unix_ms));
  header.append(" nonce=").append(nonce);
  header.append(" sig=").append(Hex(mac, mac_size));
  return header;
}

Failure ClusterAuth::Verify(std::string_view method, std::string_view target, std::string_view body,
                            std::string_view header, int64_t now_ms) {
  if (!enabled()) return Failure::kNone;
  if (header.empty()) return Failure::kMissing;
  std::string_view rest = header;
  std::string_view ts_text, nonce, sig;
  if (!rest.starts_with(kVersion) || rest.size() <= kVersion.size() ||
      rest[kVersion.size()] != ' ') {
    return Failure::kMalformed;
  }
  rest.remove_prefix(kVersion.size() + 1);
  if (!TakeField(rest, "ts", ts_text) || !TakeField(rest, "nonce", nonce) ||
      !TakeField(rest, "sig", sig) || !rest.empty()) {
    return Failure::kMalformed;
  }
  int64_t ts = 0;
  const auto [end, ec] = std::from_chars(ts_text.data(), ts_text.data() + ts_text.size(), ts);
  if (ec != std::errc() || end != ts_text.data() + ts_text.size() || ts < 0 ||
      ts_text.size() > 15 || nonce.size() != kNonceHex || !IsLowerHex(nonce) ||
      sig.size() != kSigHex || !IsLowerHex(sig)) {
    return Failure::kMalformed;
  }
  const int64_t window = window_.count();
  if (ts > now_ms + window || ts < now_ms - window) return Failure::kExpired;
  const std::string expected = SignAt(method, target, body, ts, nonce);
  const std::string_view expected_sig =
      std::string_view(expected).substr(expected.size() - kSigHex);
  if (CRYPTO_memcmp(expected_sig.data(), sig.data(), kSigHex) != 0) return Failure::kBadSignature;
  const Nonce key = {HexWord(nonce.substr(0, 16)), HexWord(nonce.substr(16))};
  if (!Remember(key, ts + window, now_ms)) return Failure::kReplayed;
  return Failure::kNone;
}

bool ClusterAuth::Remember(const Nonce& nonce, int64_t expires_ms, int64_t now_ms) {
  Stripe& stripe = (*stripes_)[NonceHash{}(nonce) % kStripes];
  std::lock_guard lock(stripe.mu);
  auto [it, inserted] = stripe.expiry.try_emplace(nonce, expires_ms);
  if (!inserted) {
    if (it->second >= now_ms) return false;
    it->second = expires_ms;  // expired entry not yet pruned: the nonce is new again
  }
  if (stripe.expiry.size() >= stripe.prune_at) {
    std::erase_if(stripe.expiry, [now_ms](const auto& entry) { return entry.second < now_ms; });
    stripe.prune_at = std::max<size_t>(1024, 2 * stripe.expiry.size());
  }
  return true;
}

size_t ClusterAuth::remembered() const {
  size_t n = 0;
  for (const Stripe& stripe : *stripes_) {
    std::lock_guard lock(stripe.mu);
    n += stripe.expiry.size();
  }
  return n;
}

bool BearerMatches(std::string_view authorization, std::string_view token) {
  constexpr std::string_view kScheme = "Bearer ";
  if (token.empty() || authorization.size() != kScheme.size() + token.size()) return false;
  // The scheme is case-insensitive (RFC 9110 §11.1); the token is compared in constant time.
  for (size_t i = 0; i < kScheme.size(); ++i) {
    const char c = authorization[i];
    const char lower = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    const char want = (kScheme[i] >= 'A' && kScheme[i] <= 'Z')
                          ? static_cast<char>(kScheme[i] - 'A' + 'a')
                          : kScheme[i];
    if (lower != want) return false;
  }
  return CRYPTO_memcmp(authorization.data() + kScheme.size(), token.data(), token.size()) == 0;
}

}  // namespace kvs::auth
