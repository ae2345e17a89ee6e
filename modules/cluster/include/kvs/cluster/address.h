// A node's socket address "host:port" as peers reach it. Plain value type.
// Invariant: host is a dotted IPv4 address or a DNS name, 1 <= port <= 65535.
#pragma once

#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kvs::cluster {

struct Address {
  std::string host;
  uint16_t port = 0;

  std::string ToString() const { return host + ":" + std::to_string(port); }

  // Parses "host:port"; nullopt when malformed.
  static std::optional<Address> Parse(std::string_view text);

  // Orders numerically for IPv4 hosts (10.10.0.2 < 10.10.0.10), then by name, then port.
  friend std::strong_ordering operator<=>(const Address& a, const Address& b);
  friend bool operator==(const Address& a, const Address& b) = default;
};

// Parses a comma-separated address list (spaces around items allowed). On error, `bad` holds
// the offending item and nullopt is returned.
std::optional<std::vector<Address>> ParseAddressList(std::string_view text, std::string& bad);

// Sorted, de-duplicated, comma-joined.
std::string JoinAddresses(const std::vector<Address>& addresses);

}  // namespace kvs::cluster
