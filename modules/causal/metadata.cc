#include "kvs/causal/metadata.h"

#include <charconv>

namespace kvs::causal {
namespace {

// Parses a positive decimal uint64 that is the whole of `text` (no sign, no leading zero).
bool ParseCounter(std::string_view text, uint64_t& out, bool allow_zero) {
  if (text.empty() || (text.size() > 1 && text[0] == '0')) return false;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  if (ec != std::errc() || end != text.data() + text.size()) return false;
  return allow_zero || out > 0;
}

// An origin is "<host>:<port>#<incarnation>" with none of the separators of the wire form.
bool ValidOrigin(std::string_view origin) {
  if (origin.empty() || origin.size() > 300) return false;
  const size_t hash = origin.find('#');
  if (hash == std::string_view::npos || hash == 0 || hash + 1 == origin.size()) return false;
  for (char c : origin) {
    if (c == ',' || c == '=' || c == '|' || c == '"' || c == '\\' ||
        static_cast<unsigned char>(c) <= ' ' || static_cast<unsigned char>(c) >= 0x7f) {
      return false;
    }
  }
  return true;
}

}  // namespace

std::optional<DecodeError> ScanEntries(std::string_view wire, uint64_t& epoch,
                                       FunctionRef<void(std::string_view, uint64_t)> visit) {
  epoch = 0;
  if (wire.empty()) return std::nullopt;
  const size_t bar = wire.find('|');
  if (bar == std::string_view::npos) return DecodeError{"expected \"<epoch>|<entries>\""};
  if (!ParseCounter(wire.substr(0, bar), epoch, /*allow_zero=*/true)) {
    return DecodeError{"epoch is not a number"};
  }
  std::string_view rest = wire.substr(bar + 1);
  std::string_view previous;
  bool any = false;
  while (!rest.empty()) {
    const size_t comma = rest.find(',');
    const std::string_view item = rest.substr(0, comma);
    const size_t eq = item.rfind('=');
    if (eq == std::string_view::npos) return DecodeError{"entry without '='"};
    const std::string_view origin = item.substr(0, eq);
    uint64_t seq = 0;
    if (!ValidOrigin(origin)) return DecodeError{"malformed origin"};
    if (!ParseCounter(item.substr(eq + 1), seq, /*allow_zero=*/false)) {
      return DecodeError{"sequence number is not a positive integer"};
    }
    if (any && !(previous < origin)) return DecodeError{"origins not in canonical order"};
    visit(origin, seq);
    previous = origin;
    any = true;
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
    if (rest.empty()) return DecodeError{"trailing ','"};
  }
  if (epoch == 0 && !any) return DecodeError{"empty metadata must be \"\""};
  return std::nullopt;
}

std::variant<Metadata, DecodeError> Decode(std::string_view wire) {
  Metadata out;
  std::optional<DecodeError> error =
      ScanEntries(wire, out.epoch, [&](std::string_view origin, uint64_t seq) {
        out.vv.emplace_hint(out.vv.end(), std::string(origin), seq);
      });
  if (error) return std::move(*error);
  return out;
}

std::string Encode(const Metadata& metadata) {
  if (metadata.empty()) return std::string();
  std::string out = std::to_string(metadata.epoch);
  out.push_back('|');
  bool first = true;
  for (const auto& [origin, seq] : metadata.vv) {
    if (!first) out.push_back(',');
    first = false;
    out.append(origin);
    out.push_back('=');
    out.append(std::to_string(seq));
  }
  return out;
}

bool Observe(Metadata& into, std::string_view origin, uint64_t seq) {
  auto it = into.vv.find(origin);
  if (it == into.vv.end()) {
    into.vv.emplace(std::string(origin), seq);
    return true;
  }
  if (it->second >= seq) return false;
  it->second = seq;
  return true;
}

bool MergeInto(Metadata& into, const Metadata& from) {
  bool changed = false;
  if (from.epoch > into.epoch) {
    into.epoch = from.epoch;
    changed = true;
  }
  for (const auto& [origin, seq] : from.vv) changed |= Observe(into, origin, seq);
  return changed;
}

uint64_t OriginEpoch(std::string_view origin) {
  const size_t hash = origin.rfind('#');
  const size_t dot = origin.rfind('.');
  if (hash == std::string_view::npos || dot == std::string_view::npos || dot < hash) return 0;
  uint64_t epoch = 0;
  const std::string_view text = origin.substr(dot + 1);
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), epoch);
  return ec == std::errc() && end == text.data() + text.size() ? epoch : 0;
}

bool Dominates(const VersionVector& a, const VersionVector& b) {
  for (const auto& [origin, seq] : b) {
    auto it = a.find(origin);
    if (it == a.end() || it->second < seq) return false;
  }
  return true;
}

}  // namespace kvs::causal
