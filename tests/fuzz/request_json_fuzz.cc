// libFuzzer target: the request body JSON parser (RequestBody::Parse; bytes from the network:
// the body of every client request). The parser keeps only top-level members, so its results
// are checked against itself and against the JSON writer:
//  - the outcome is a RequestBody or one of the two documented client-facing errors;
//  - nesting: when <input> is a JSON value (an object, or the "must be a JSON object" case) far
//    from the depth limit, `{"x":<input>}` parses too and member "x" has the kind the value's
//    first character announces;
//  - whenever `{"x":<input>}` parses, a string (integer) member "x", re-written with
//    AppendJsonString (std::to_chars) and parsed again, gives the same value;
//  - the input as raw bytes, written as a JSON string with AppendJsonString, parses back to
//    exactly those bytes.
#include <algorithm>
#include <charconv>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <variant>

#include "kvs/api/request_body.h"
#include "kvs/json/json_writer.h"

namespace {

using kvs::api::RequestBody;
using Field = RequestBody::Field;

void Check(bool condition) {
  if (!condition) std::abort();
}

const std::string kNotJson = "Body is not valid JSON";
const std::string kNotObject = "Body must be a JSON object";

bool AllJsonSpace(std::string_view text) {
  return std::all_of(text.begin(), text.end(),
                     [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; });
}

// Parses `{"x":<value>}` and returns the parsed body (or aborts when it does not parse).
RequestBody ParseWrapped(const std::string& value) {
  auto parsed = RequestBody::Parse("{\"x\":" + value + "}");
  auto* body = std::get_if<RequestBody>(&parsed);
  Check(body != nullptr);
  return std::move(*body);
}

// Member "x" of `body`, re-written from its decoded value, must decode to the same value.
void CheckMemberRoundTrip(const RequestBody& body) {
  std::string text;
  int64_t integer = 0;
  const Field kind = body.GetString("x", text);
  Check(body.GetInteger("x", integer) == kind);  // both lookups see the same member
  if (kind == Field::kString) {
    std::string json;
    kvs::json::AppendJsonString(json, text);
    std::string again;
    Check(ParseWrapped(json).GetString("x", again) == Field::kString && again == text);
  } else if (kind == Field::kInteger) {
    char digits[24];
    const auto end = std::to_chars(digits, digits + sizeof digits, integer).ptr;
    int64_t again = 0;
    Check(ParseWrapped(std::string(digits, end)).GetInteger("x", again) == Field::kInteger &&
          again == integer);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);

  const auto top = RequestBody::Parse(input);
  const auto* error = std::get_if<std::string>(&top);
  Check(error == nullptr || *error == kNotJson || *error == kNotObject);
  const bool is_value = error == nullptr || *error == kNotObject;
  if (const auto* body = std::get_if<RequestBody>(&top)) {
    std::string text;
    int64_t integer = 0;
    for (std::string_view name : {"value", "causal-metadata", "socket-address", "shard-count"}) {
      Check(body->GetString(name, text) == body->GetInteger(name, integer));
    }
  }

  // The same text one level down. Only "valid alone => valid nested" holds: an invalid text can
  // become valid inside the wrapper (`1,"y":2`). An empty body is a valid request but no JSON
  // value, and the depth limit (64) may refuse a value one level deeper than it accepted.
  const size_t openers = static_cast<size_t>(std::count(input.begin(), input.end(), '[') +
                                             std::count(input.begin(), input.end(), '{'));
  const auto nested = RequestBody::Parse("{\"x\":" + std::string(input) + "}");
  if (is_value && !AllJsonSpace(input) && openers < 60) {
    const auto* body = std::get_if<RequestBody>(&nested);
    Check(body != nullptr);
    // Member "x" has the kind the value's first character announces.
    std::string text;
    const Field kind = body->GetString("x", text);
    const size_t first = input.find_first_not_of(" \t\r\n");
    const char c = input[first];
    if (c == '"') {
      Check(kind == Field::kString);
    } else if (c == 'n') {
      Check(kind == Field::kNull);
    } else if (c == '-' || (c >= '0' && c <= '9')) {
      Check(kind == Field::kInteger || kind == Field::kOther);  // a fraction or exponent
    } else {
      Check(kind == Field::kOther);
    }
  }
  if (const auto* body = std::get_if<RequestBody>(&nested)) CheckMemberRoundTrip(*body);

  // Writer -> parser: any bytes survive being written as a JSON string value.
  std::string json = "{\"value\":";
  kvs::json::AppendJsonString(json, input);
  json += "}";
  const auto written = RequestBody::Parse(json);
  const auto* body = std::get_if<RequestBody>(&written);
  std::string value;
  Check(body != nullptr && body->GetString("value", value) == Field::kString && value == input);
  return 0;
}
