#include "kvs/causal/metadata.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace kvs::causal {
namespace {

Metadata Decoded(std::string_view wire) {
  auto result = Decode(wire);
  EXPECT_TRUE(std::holds_alternative<Metadata>(result)) << wire;
  return std::holds_alternative<Metadata>(result) ? std::get<Metadata>(result) : Metadata{};
}

std::string DecodeFailure(std::string_view wire) {
  auto result = Decode(wire);
  return std::holds_alternative<DecodeError>(result) ? std::get<DecodeError>(result).reason : "";
}

TEST(MetadataTest, EmptyStringIsEmptyMetadata) {
  Metadata m = Decoded("");
  EXPECT_TRUE(m.empty());
  EXPECT_EQ(Encode(m), "");
}

TEST(MetadataTest, EncodeIsSortedAndRoundTrips) {
  Metadata m;
  m.epoch = 3;
  m.vv["10.0.0.3:8080#5"] = 2;
  m.vv["10.0.0.2:8080#7"] = 9;
  const std::string wire = Encode(m);
  EXPECT_EQ(wire, "3|10.0.0.2:8080#7=9,10.0.0.3:8080#5=2");
  EXPECT_EQ(Decoded(wire), m);
  EXPECT_EQ(Encode(Decoded(wire)), wire);
}

TEST(MetadataTest, RejectsMalformedInput) {
  EXPECT_NE(DecodeFailure("garbage"), "");
  EXPECT_NE(DecodeFailure("x|a:1#1=1"), "");
  EXPECT_NE(DecodeFailure("0|a:1#1"), "");    // no '='
  EXPECT_NE(DecodeFailure("0|a:1#1=0"), "");  // seq must be positive
  EXPECT_NE(DecodeFailure("0|a:1#1=-1"), "");
  EXPECT_NE(DecodeFailure("0|a:1#1=01"), "");                       // not canonical
  EXPECT_NE(DecodeFailure("0|a:1=1"), "");                          // origin without incarnation
  EXPECT_NE(DecodeFailure("0|b:1#1=1,a:1#1=1"), "");                // unsorted
  EXPECT_NE(DecodeFailure("0|a:1#1=1,a:1#1=2"), "");                // duplicate
  EXPECT_NE(DecodeFailure("0|a:1#1=1,"), "");                       // trailing comma
  EXPECT_NE(DecodeFailure("0|"), "");                               // empty must be ""
  EXPECT_NE(DecodeFailure("0|a b:1#1=1"), "");                      // whitespace in origin
  EXPECT_NE(DecodeFailure("0|a:1#1=99999999999999999999999"), "");  // overflow
}

// ScanEntries reads what Decode decodes, in place: the same entries in the same order, the same
// epoch, and the same verdict (and reason) on every malformed string.
TEST(MetadataTest, ScanEntriesAgreesWithDecode) {
  for (const std::string_view wire :
       {"", "3|10.0.0.2:8080#7=9,10.0.0.3:8080#5=2", "0|a:1#1.4=12", "7|a:1#1=1,b:2#3.1=5,c:3#9=8",
        "garbage", "x|a:1#1=1", "0|a:1#1", "0|a:1#1=0", "0|a:1#1=01", "0|b:1#1=1,a:1#1=1",
        "0|a:1#1=1,a:1#1=2", "0|a:1#1=1,", "0|", "0|a b:1#1=1", "2|a:1#1=1,b:1#1=x"}) {
    const auto decoded = Decode(wire);
    std::vector<std::pair<std::string, uint64_t>> scanned;
    uint64_t epoch = 99;
    const std::optional<DecodeError> error =
        ScanEntries(wire, epoch, [&](std::string_view origin, uint64_t seq) {
          EXPECT_GE(origin.data(), wire.data()) << "a view into the string itself";
          scanned.emplace_back(origin, seq);
        });
    if (const auto* bad = std::get_if<DecodeError>(&decoded)) {
      ASSERT_TRUE(error.has_value()) << wire;
      EXPECT_EQ(error->reason, bad->reason) << wire;
      continue;
    }
    ASSERT_FALSE(error.has_value()) << wire << ": " << error->reason;
    const Metadata& m = std::get<Metadata>(decoded);
    EXPECT_EQ(epoch, m.epoch) << wire;
    EXPECT_EQ(scanned, (std::vector<std::pair<std::string, uint64_t>>(m.vv.begin(), m.vv.end())))
        << wire;
  }
}

TEST(MetadataTest, MergeTakesPointwiseMaximum) {
  Metadata a = Decoded("1|a:1#1=3,b:1#1=1");
  Metadata b = Decoded("2|b:1#1=4,c:1#1=2");
  EXPECT_TRUE(MergeInto(a, b));
  EXPECT_EQ(Encode(a), "2|a:1#1=3,b:1#1=4,c:1#1=2");
  EXPECT_FALSE(MergeInto(a, b));  // idempotent
}

TEST(MetadataTest, MergeOfDominatedChangesNothing) {
  Metadata a = Decoded("1|a:1#1=3,b:1#1=5");
  EXPECT_FALSE(MergeInto(a, Decoded("1|a:1#1=2")));
  EXPECT_EQ(Encode(a), "1|a:1#1=3,b:1#1=5");
}

TEST(MetadataTest, ObserveRaisesOnly) {
  Metadata m;
  EXPECT_TRUE(Observe(m, "a:1#1", 4));
  EXPECT_FALSE(Observe(m, "a:1#1", 2));
  EXPECT_EQ(m.vv.at("a:1#1"), 4u);
}

TEST(MetadataTest, Dominates) {
  const VersionVector a = Decoded("0|a:1#1=3,b:1#1=5").vv;
  const VersionVector b = Decoded("0|a:1#1=3").vv;
  EXPECT_TRUE(Dominates(a, b));
  EXPECT_FALSE(Dominates(b, a));
  EXPECT_TRUE(Dominates(a, a));
  EXPECT_TRUE(Dominates(b, VersionVector{}));
}

}  // namespace
}  // namespace kvs::causal

namespace kvs::causal {
namespace {

TEST(OriginEpochTest, ReadsTheSuffixAfterTheIncarnation) {
  EXPECT_EQ(OriginEpoch("10.10.0.2:8080#1795565398806.4"), 4u);
  EXPECT_EQ(OriginEpoch("10.10.0.2:8080#1795565398806"), 0u);
  EXPECT_EQ(OriginEpoch("10.10.0.2:8080#17.x"), 0u);
  EXPECT_EQ(OriginEpoch("host.name:1#5"), 0u);  // a dot before '#' is not an epoch
}

}  // namespace
}  // namespace kvs::causal
