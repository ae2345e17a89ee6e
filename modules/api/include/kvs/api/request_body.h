// A request's JSON body, parsed once, with typed field lookups. Plain value; not shared.
// An empty (or all-whitespace) body parses as an object with no members.
#pragma once

#include <Poco/JSON/Object.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

namespace kvs::api {

class RequestBody {
 public:
  enum class Field { kMissing, kNull, kString, kInteger, kOther };

  // Parses `text`; on failure returns the client-facing error ("Body is not valid JSON",
  // "Body must be a JSON object").
  static std::variant<RequestBody, std::string> Parse(std::string_view text);

  // Kind of member `name`; fills `out` for kString / kInteger.
  Field GetString(const std::string& name, std::string& out) const;
  Field GetInteger(const std::string& name, int64_t& out) const;

 private:
  Poco::JSON::Object::Ptr object_;  // null for an empty body
};

}  // namespace kvs::api
