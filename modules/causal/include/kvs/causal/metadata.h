// Causal metadata: a version vector over write origins plus the cluster epoch it was made in.
// Plain values; no shared state. Encoding is canonical (origins sorted, no duplicates, seq > 0),
// so decode(encode(m)) == m and encode(decode(s)) == s for every string a node returns.
//
// Wire form (opaque to clients, a JSON string):  ""  or  "<epoch>|<origin>=<seq>,..."
// e.g. "0|10.10.0.2:8080#1732492800123=4,10.10.0.3:8080#1732492801456=2".
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <variant>

namespace kvs::causal {

// origin ("address#incarnation") -> highest sequence number seen from it (a prefix: seeing
// seq n of an origin implies seeing 1..n).
using VersionVector = std::map<std::string, uint64_t, std::less<>>;

struct Metadata {
  uint64_t epoch = 0;
  VersionVector vv;

  bool empty() const { return epoch == 0 && vv.empty(); }
  friend bool operator==(const Metadata&, const Metadata&) = default;
};

// Why a metadata string was rejected.
struct DecodeError {
  std::string reason;
};

// Parses the wire form. "" decodes to the empty metadata.
std::variant<Metadata, DecodeError> Decode(std::string_view wire);

// Canonical wire form.
std::string Encode(const Metadata& metadata);

// Pointwise maximum; epoch is the maximum of both. Returns true when `into` changed.
bool MergeInto(Metadata& into, const Metadata& from);

// Raises `into.vv[origin]` to at least `seq`. Returns true when it changed.
bool Observe(Metadata& into, std::string_view origin, uint64_t seq);

// The configuration epoch an origin "address#incarnation.epoch" started writing in; 0 when the
// origin carries no epoch.
uint64_t OriginEpoch(std::string_view origin);

// True when every entry of `b` is <= the matching entry of `a` (a has seen all b has).
bool Dominates(const VersionVector& a, const VersionVector& b);

}  // namespace kvs::causal
