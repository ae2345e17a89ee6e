// Causal metadata: a version vector over write origins plus the cluster epoch it was made in.
// Plain values; no shared state. Encoding is canonical (origins sorted, no duplicates, seq > 0),
// so decode(encode(m)) == m and encode(decode(s)) == s for every string a node returns.
//
// Wire form (opaque to clients, a JSON string):  ""  or  "<epoch>|<origin>=<seq>,..."
// e.g. "0|10.10.0.2:8080#1732492800123=4,10.10.0.3:8080#1732492801456=2".
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>

namespace kvs::causal {

// A non-owning reference to a callable (no allocation, unlike std::function): valid only
// while the callable it was made from lives, as for an argument of the call it is passed to.
template <class Signature>
class FunctionRef;
template <class R, class... Args>
class FunctionRef<R(Args...)> {
 public:
  template <class F>
  FunctionRef(F&& f)  // NOLINT(google-explicit-constructor): passed like a lambda
      : object_(const_cast<void*>(static_cast<const void*>(&f))),
        call_([](void* object, Args... args) -> R {
          return (*static_cast<std::remove_reference_t<F>*>(object))(std::forward<Args>(args)...);
        }) {}
  R operator()(Args... args) const { return call_(object_, std::forward<Args>(args)...); }

 private:
  void* object_;
  R (*call_)(void*, Args...);
};

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

// Reads the wire form in place, without copying or allocating: sets `epoch` and calls
// visit(origin, seq) for each entry in order (the views point into `wire`). Accepts exactly
// what Decode accepts; on a malformed string it returns the reason, having visited a prefix
// of the entries. For the paths that only look (a route's layout check, a replica's
// dependency check) and would otherwise build a map of strings per request.
std::optional<DecodeError> ScanEntries(std::string_view wire, uint64_t& epoch,
                                       FunctionRef<void(std::string_view, uint64_t)> visit);

// Canonical wire form.
std::string Encode(const Metadata& metadata);

// Pointwise maximum; epoch is the maximum of both. Returns true when `into` changed.
bool MergeInto(Metadata& into, const Metadata& from);

// Raises `into.vv[origin]` to at least `seq`. Returns true when it changed.
bool Observe(Metadata& into, std::string_view origin, uint64_t seq);

// The configuration epoch an origin "address#incarnation.epoch" started writing in; 0 when the
// origin carries no epoch.
uint64_t OriginEpoch(std::string_view origin);

// The node address of an origin "address#incarnation.epoch" (all of it when there is no '#').
inline std::string_view OriginAddress(std::string_view origin) {
  return origin.substr(0, origin.rfind('#'));
}

// True when every entry of `b` is <= the matching entry of `a` (a has seen all b has).
bool Dominates(const VersionVector& a, const VersionVector& b);

}  // namespace kvs::causal
