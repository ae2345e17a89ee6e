// A request's JSON body, parsed once, with typed lookups of its top-level members. Plain value;
// not shared. An empty (or all-whitespace) body parses as an object with no members.
// The parser is a strict RFC 8259 recursive-descent parser written for the request path: it
// validates the whole document but keeps only the top-level members' kinds and their decoded
// string / integer values (no DOM, one pass, no exceptions).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace kvs::api {

class RequestBody {
 public:
  enum class Field { kMissing, kNull, kString, kInteger, kOther };

  // Parses `text`; on failure returns the client-facing error ("Body is not valid JSON",
  // "Body must be a JSON object").
  static std::variant<RequestBody, std::string> Parse(std::string_view text);

  // Kind of member `name`; fills `out` for kString / kInteger.
  Field GetString(std::string_view name, std::string& out) const;
  Field GetInteger(std::string_view name, int64_t& out) const;

 private:
  struct Member {
    std::string name;
    Field kind = Field::kOther;
    std::string text;     // kString: the decoded string
    int64_t integer = 0;  // kInteger
  };
  const Member* Find(std::string_view name) const;

  std::vector<Member> members_;  // in order; a repeated name: the last one counts
};

}  // namespace kvs::api
