#include "kvs/cluster/address.h"

#include <algorithm>
#include <cctype>
#include <charconv>

namespace kvs::cluster {
namespace {

std::optional<uint32_t> ParseIpv4(std::string_view host) {
  uint32_t value = 0;
  int parts = 0;
  while (true) {
    const size_t dot = host.find('.');
    const std::string_view part = host.substr(0, dot);
    unsigned octet = 0;
    if (part.empty() || part.size() > 3) return std::nullopt;
    const auto [end, ec] = std::from_chars(part.data(), part.data() + part.size(), octet);
    if (ec != std::errc() || end != part.data() + part.size() || octet > 255) return std::nullopt;
    value = (value << 8) | octet;
    ++parts;
    if (dot == std::string_view::npos) break;
    host.remove_prefix(dot + 1);
  }
  if (parts != 4) return std::nullopt;
  return value;
}

bool ValidHostName(std::string_view host) {
  if (host.empty() || host.size() > 253 || host.front() == '-' || host.front() == '.') {
    return false;
  }
  return std::all_of(host.begin(), host.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_';
  });
}

bool AllDigitsAndDots(std::string_view host) {
  return std::all_of(host.begin(), host.end(), [](char c) {
    return c == '.' || std::isdigit(static_cast<unsigned char>(c));
  });
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

}  // namespace

std::optional<Address> Address::Parse(std::string_view text) {
  const size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) return std::nullopt;
  const std::string_view host = text.substr(0, colon);
  const std::string_view port_text = text.substr(colon + 1);
  unsigned port = 0;
  const auto [end, ec] =
      std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_text.empty() || ec != std::errc() || end != port_text.data() + port_text.size() ||
      port == 0 || port > 65535) {
    return std::nullopt;
  }
  // Something that looks numeric must be a real IPv4 address (rejects "1.2.3.999").
  if (AllDigitsAndDots(host) ? !ParseIpv4(host) : !ValidHostName(host)) return std::nullopt;
  return Address{std::string(host), static_cast<uint16_t>(port)};
}

std::strong_ordering operator<=>(const Address& a, const Address& b) {
  const auto ia = ParseIpv4(a.host);
  const auto ib = ParseIpv4(b.host);
  if (ia && ib) {
    if (auto c = *ia <=> *ib; c != 0) return c;
  } else if (ia.has_value() != ib.has_value()) {
    return ia.has_value() ? std::strong_ordering::less : std::strong_ordering::greater;
  } else if (auto c = a.host <=> b.host; c != 0) {
    return c;
  }
  return a.port <=> b.port;
}

std::optional<std::vector<Address>> ParseAddressList(std::string_view text, std::string& bad) {
  std::vector<Address> out;
  while (true) {
    const size_t comma = text.find(',');
    const std::string_view item = Trim(text.substr(0, comma));
    auto address = Address::Parse(item);
    if (!address) {
      bad = std::string(item);
      return std::nullopt;
    }
    out.push_back(std::move(*address));
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return out;
}

std::string JoinAddresses(const std::vector<Address>& addresses) {
  std::vector<Address> sorted = addresses;
  std::sort(sorted.begin(), sorted.end());
  sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
  std::string out;
  for (const Address& a : sorted) {
    if (!out.empty()) out.push_back(',');
    out += a.ToString();
  }
  return out;
}

}  // namespace kvs::cluster
