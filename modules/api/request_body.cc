#include "kvs/api/request_body.h"

#include <Poco/Exception.h>
#include <Poco/JSON/Parser.h>

#include <algorithm>
#include <cctype>

namespace kvs::api {
namespace {

bool TryParse(const std::string& text, Poco::Dynamic::Var& out) {
  try {
    Poco::JSON::Parser parser;
    out = parser.parse(text);
    return true;
  } catch (const Poco::Exception&) {
    return false;
  } catch (const std::exception&) {
    return false;
  }
}

}  // namespace

std::variant<RequestBody, std::string> RequestBody::Parse(std::string_view text) {
  RequestBody body;
  const bool blank = std::all_of(
      text.begin(), text.end(), [](char c) { return std::isspace(static_cast<unsigned char>(c)); });
  if (blank) return body;
  Poco::Dynamic::Var parsed;
  if (!TryParse(std::string(text), parsed)) {
    // POCO refuses a top-level scalar ("text", 5, null), which is valid JSON but no object:
    // wrapped in brackets it parses, and the client deserves the more precise error.
    Poco::Dynamic::Var wrapped;
    return TryParse("[" + std::string(text) + "]", wrapped) ? "Body must be a JSON object"
                                                            : "Body is not valid JSON";
  }
  if (parsed.type() != typeid(Poco::JSON::Object::Ptr)) {
    return std::string("Body must be a JSON object");
  }
  body.object_ = parsed.extract<Poco::JSON::Object::Ptr>();
  return body;
}

RequestBody::Field RequestBody::GetString(const std::string& name, std::string& out) const {
  if (object_.isNull() || !object_->has(name)) return Field::kMissing;
  const Poco::Dynamic::Var& value = object_->get(name);
  if (value.isEmpty()) return Field::kNull;
  if (!value.isString()) return value.isInteger() ? Field::kInteger : Field::kOther;
  out = value.extract<std::string>();
  return Field::kString;
}

RequestBody::Field RequestBody::GetInteger(const std::string& name, int64_t& out) const {
  if (object_.isNull() || !object_->has(name)) return Field::kMissing;
  const Poco::Dynamic::Var& value = object_->get(name);
  if (value.isEmpty()) return Field::kNull;
  if (value.isString()) return Field::kString;
  if (!value.isInteger()) return Field::kOther;
  try {
    out = value.convert<int64_t>();
  } catch (const Poco::Exception&) {
    return Field::kOther;  // out of range
  }
  return Field::kInteger;
}

}  // namespace kvs::api
