#include "kvs/cluster/address.h"

#include <gtest/gtest.h>

namespace kvs::cluster {
namespace {

TEST(AddressTest, ParsesIpAndPort) {
  auto a = Address::Parse("10.10.0.2:8080");
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->host, "10.10.0.2");
  EXPECT_EQ(a->port, 8080);
  EXPECT_EQ(a->ToString(), "10.10.0.2:8080");
}

TEST(AddressTest, ParsesHostName) {
  auto a = Address::Parse("node1:8080");
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->host, "node1");
}

TEST(AddressTest, RejectsMalformed) {
  for (const char* bad :
       {"", "nonsense", "1.2.3.4", "1.2.3.4:", ":8080", "1.2.3.4:0", "1.2.3.4:99999", "1.2.3.4:80x",
        "1.2.3.999:80", "1.2.3:80", "a b:80", "1.2.3.4:-1"}) {
    EXPECT_FALSE(Address::Parse(bad).has_value()) << bad;
  }
}

TEST(AddressTest, OrdersIpv4Numerically) {
  EXPECT_LT(*Address::Parse("10.10.0.2:8080"), *Address::Parse("10.10.0.10:8080"));
  EXPECT_LT(*Address::Parse("10.10.0.2:80"), *Address::Parse("10.10.0.2:8080"));
}

TEST(AddressTest, ParsesListAndJoinsSorted) {
  std::string bad;
  auto list = ParseAddressList("10.10.0.3:8080, 10.10.0.2:8080,10.10.0.10:8080", bad);
  ASSERT_TRUE(list.has_value());
  EXPECT_EQ(list->size(), 3u);
  EXPECT_EQ(JoinAddresses(*list), "10.10.0.2:8080,10.10.0.3:8080,10.10.0.10:8080");
}

TEST(AddressTest, ListReportsBadItem) {
  std::string bad;
  EXPECT_FALSE(ParseAddressList("10.10.0.2:8080,oops", bad).has_value());
  EXPECT_EQ(bad, "oops");
  EXPECT_FALSE(ParseAddressList("10.10.0.2:8080,", bad).has_value());
}

}  // namespace
}  // namespace kvs::cluster
