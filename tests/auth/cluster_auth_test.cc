#include "kvs/auth/cluster_auth.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <string>

namespace kvs::auth {
namespace {

using std::chrono::milliseconds;

constexpr int64_t kNow = 1'796'560'210'954;  // a fixed "now" (unix ms)
constexpr char kNonce[] = "00112233445566778899aabbccddeeff";

class ClusterAuthTest : public ::testing::Test {
 protected:
  ClusterAuth auth_{"s3cret", milliseconds(30000)};
};

TEST_F(ClusterAuthTest, ASignedCallVerifies) {
  const std::string proof = auth_.Sign("POST", "/internal/replicate", R"({"updates":[]})");
  EXPECT_TRUE(proof.starts_with("v1 ts="));
  EXPECT_EQ(proof.find("s3cret"), std::string::npos);
  EXPECT_EQ(auth_.Verify("POST", "/internal/replicate", R"({"updates":[]})", proof, UnixMillis()),
            Failure::kNone);
}

TEST_F(ClusterAuthTest, EveryFieldIsCoveredBySignature) {
  const std::string proof = auth_.SignAt("POST", "/internal/sync?x=1", "body", kNow, kNonce);
  EXPECT_EQ(auth_.Verify("GET", "/internal/sync?x=1", "body", proof, kNow), Failure::kBadSignature);
  EXPECT_EQ(auth_.Verify("POST", "/internal/sync?x=2", "body", proof, kNow),
            Failure::kBadSignature);
  EXPECT_EQ(auth_.Verify("POST", "/internal/sync?x=1", "bod", proof, kNow),  // truncated
            Failure::kBadSignature);
  EXPECT_EQ(auth_.Verify("POST", "/internal/sync?x=1", "body!", proof, kNow),
            Failure::kBadSignature);
  // A changed timestamp or nonce in the header.
  std::string later = proof;
  later.replace(later.find("ts=") + 3, 13, std::to_string(kNow + 1));
  EXPECT_EQ(auth_.Verify("POST", "/internal/sync?x=1", "body", later, kNow),
            Failure::kBadSignature);
  std::string other_nonce = proof;
  other_nonce[other_nonce.find("nonce=") + 6] = 'f';
  EXPECT_EQ(auth_.Verify("POST", "/internal/sync?x=1", "body", other_nonce, kNow),
            Failure::kBadSignature);
  // None of the refused ones was remembered; the genuine one still passes, once.
  EXPECT_EQ(auth_.remembered(), 0u);
  EXPECT_EQ(auth_.Verify("POST", "/internal/sync?x=1", "body", proof, kNow), Failure::kNone);
}

TEST_F(ClusterAuthTest, AnotherSecretIsABadSignature) {
  ClusterAuth other("not-the-secret", milliseconds(30000));
  const std::string proof = other.SignAt("GET", "/internal/heartbeat", "", kNow, kNonce);
  EXPECT_EQ(auth_.Verify("GET", "/internal/heartbeat", "", proof, kNow), Failure::kBadSignature);
}

TEST_F(ClusterAuthTest, AReplayIsRefusedWithinTheWindow) {
  const std::string proof = auth_.SignAt("POST", "/internal/replicate", "b", kNow, kNonce);
  EXPECT_EQ(auth_.Verify("POST", "/internal/replicate", "b", proof, kNow), Failure::kNone);
  EXPECT_EQ(auth_.Verify("POST", "/internal/replicate", "b", proof, kNow + 10), Failure::kReplayed);
  EXPECT_EQ(auth_.Verify("POST", "/internal/replicate", "b", proof, kNow + 30000),
            Failure::kReplayed);
  // Past the window the timestamp alone refuses it.
  EXPECT_EQ(auth_.Verify("POST", "/internal/replicate", "b", proof, kNow + 30001),
            Failure::kExpired);
}

TEST_F(ClusterAuthTest, TimestampsOutsideTheWindowExpire) {
  const std::string old_proof =
      auth_.SignAt("GET", "/internal/heartbeat", "", kNow - 30001, kNonce);
  EXPECT_EQ(auth_.Verify("GET", "/internal/heartbeat", "", old_proof, kNow), Failure::kExpired);
  const std::string future_proof =
      auth_.SignAt("GET", "/internal/heartbeat", "", kNow + 30001, kNonce);
  EXPECT_EQ(auth_.Verify("GET", "/internal/heartbeat", "", future_proof, kNow), Failure::kExpired);
  const std::string edge = auth_.SignAt("GET", "/internal/heartbeat", "", kNow - 30000, kNonce);
  EXPECT_EQ(auth_.Verify("GET", "/internal/heartbeat", "", edge, kNow), Failure::kNone);
}

TEST_F(ClusterAuthTest, MissingAndMalformedProofs) {
  EXPECT_EQ(auth_.Verify("GET", "/internal/heartbeat", "", "", kNow), Failure::kMissing);
  const std::string good = auth_.SignAt("GET", "/internal/heartbeat", "", kNow, kNonce);
  const std::string sig = good.substr(good.find("sig=") + 4);
  const std::string ts = std::to_string(kNow);
  for (const std::string& bad : {
           std::string("v1"),
           std::string("v2 ts=") + ts + " nonce=" + kNonce + " sig=" + sig,
           std::string("v1 ts=") + ts + " nonce=" + kNonce,
           std::string("v1 nonce=") + kNonce + " ts=" + ts + " sig=" + sig,
           std::string("v1 ts=") + ts + " nonce=" + kNonce + " sig=" + sig + " extra=1",
           std::string("v1 ts=") + ts + " nonce=" + kNonce + " sig=" + sig.substr(1),
           std::string("v1 ts=-5 nonce=") + kNonce + " sig=" + sig,
           std::string("v1 ts=99999999999999999999 nonce=") + kNonce + " sig=" + sig,
           std::string("v1 ts=12x nonce=") + kNonce + " sig=" + sig,
           std::string("v1 ts=") + ts + " nonce=00112233445566778899AABBCCDDEEFF sig=" + sig,
           std::string("v1 ts=") + ts + " nonce=0011 sig=" + sig,
           std::string("v1  ts=") + ts + " nonce=" + kNonce + " sig=" + sig,
       }) {
    EXPECT_EQ(auth_.Verify("GET", "/internal/heartbeat", "", bad, kNow), Failure::kMalformed)
        << bad;
  }
  EXPECT_EQ(auth_.Verify("GET", "/internal/heartbeat", "", good, kNow), Failure::kNone);
}

TEST_F(ClusterAuthTest, EachSignatureHasItsOwnNonce) {
  const std::string a = auth_.Sign("GET", "/internal/heartbeat", "");
  const std::string b = auth_.Sign("GET", "/internal/heartbeat", "");
  EXPECT_NE(a, b);
  const int64_t now = UnixMillis();
  EXPECT_EQ(auth_.Verify("GET", "/internal/heartbeat", "", a, now), Failure::kNone);
  EXPECT_EQ(auth_.Verify("GET", "/internal/heartbeat", "", b, now), Failure::kNone);
}

TEST_F(ClusterAuthTest, ExpiredNoncesAreForgotten) {
  // Many calls over time: the cache keeps about the window's worth, not every nonce ever seen.
  ClusterAuth auth("s3cret", milliseconds(100));
  for (int i = 0; i < 40000; ++i) {
    char nonce[33];
    std::snprintf(nonce, sizeof nonce, "%032x", i);
    const int64_t t = kNow + i;  // one call per ms
    ASSERT_EQ(auth.Verify("GET", "/internal/heartbeat", "",
                          auth.SignAt("GET", "/internal/heartbeat", "", t, nonce), t),
              Failure::kNone);
  }
  EXPECT_LE(auth.remembered(), 16u * 1024u);  // 40,000 without pruning
  EXPECT_GE(auth.remembered(), 100u);
}

TEST_F(ClusterAuthTest, WithoutASecretEverythingPasses) {
  ClusterAuth off("", milliseconds(30000));
  EXPECT_FALSE(off.enabled());
  EXPECT_EQ(off.Sign("GET", "/internal/heartbeat", ""), "");
  EXPECT_EQ(off.Verify("GET", "/internal/heartbeat", "", "", kNow), Failure::kNone);
}

TEST(BearerTest, MatchesOnlyTheExactToken) {
  EXPECT_TRUE(BearerMatches("Bearer tok-123", "tok-123"));
  EXPECT_TRUE(BearerMatches("bearer tok-123", "tok-123"));
  EXPECT_FALSE(BearerMatches("Bearer tok-12", "tok-123"));
  EXPECT_FALSE(BearerMatches("Bearer tok-1234", "tok-123"));
  EXPECT_FALSE(BearerMatches("Bearer tok-124", "tok-123"));
  EXPECT_FALSE(BearerMatches("Basic tok-123", "tok-123"));
  EXPECT_FALSE(BearerMatches("tok-123", "tok-123"));
  EXPECT_FALSE(BearerMatches("", "tok-123"));
  EXPECT_FALSE(BearerMatches("Bearer ", ""));
}

}  // namespace
}  // namespace kvs::auth
