// libFuzzer target: the node-to-node proof (X-Kvs-Auth) and the admin bearer check, bytes any
// client can send. Input: a header value, then (after the first NUL) a body. Oracles: Verify
// never crashes; a random header is never accepted (the fuzzer cannot forge an HMAC); a header
// the signer made for the same call is accepted exactly once, then refused as a replay; the same
// header on another body is refused; BearerMatches accepts only "Bearer <token>".
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include "kvs/auth/cluster_auth.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using kvs::auth::ClusterAuth;
  using kvs::auth::Failure;
  static ClusterAuth auth("fuzz-secret", std::chrono::milliseconds(30000));
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t nul = input.find('\0');
  const std::string_view header = input.substr(0, nul);
  const std::string_view body = nul == std::string_view::npos ? "" : input.substr(nul + 1);
  const int64_t now = kvs::auth::UnixMillis();

  if (auth.Verify("POST", "/internal/replicate", body, header, now) == Failure::kNone) {
    std::abort();  // a forged proof passed
  }
  // A genuine proof for this body: accepted once, then a replay; refused for another body.
  const std::string proof = auth.Sign("POST", "/internal/replicate", body);
  const std::string other_body = std::string(body) + "x";
  if (auth.Verify("POST", "/internal/replicate", other_body, proof, now) !=
      Failure::kBadSignature) {
    std::abort();
  }
  if (auth.Verify("POST", "/internal/replicate", body, proof, now) != Failure::kNone) std::abort();
  if (auth.Verify("POST", "/internal/replicate", body, proof, now) != Failure::kReplayed) {
    std::abort();
  }

  // The bearer check, with the body as the token: true exactly for "<scheme> <token>" where
  // the scheme is "bearer" in any case.
  if (!body.empty()) {
    if (!kvs::auth::BearerMatches("Bearer " + std::string(body), body)) std::abort();
    bool expected =
        header.size() == 7 + body.size() && header.substr(7) == body && header[6] == ' ';
    for (size_t i = 0; expected && i < 6; ++i) {
      expected = (header[i] | 0x20) == "bearer"[i];
    }
    if (kvs::auth::BearerMatches(header, body) != expected) std::abort();
  }
  return 0;
}
