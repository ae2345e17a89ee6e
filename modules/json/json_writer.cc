#include "kvs/json/json_writer.h"

namespace kvs::json {

namespace {

// True for the bytes JSON requires escaped: '"', '\\' and control characters.
constexpr bool NeedsEscape(char c) {
  return c == '"' || c == '\\' || static_cast<unsigned char>(c) < 0x20;
}

void AppendEscaped(std::string& out, char c) {
  static constexpr char kHex[] = "0123456789abcdef";
  switch (c) {
    case '"':
      out += "\\\"";
      break;
    case '\\':
      out += "\\\\";
      break;
    case '\n':
      out += "\\n";
      break;
    case '\r':
      out += "\\r";
      break;
    case '\t':
      out += "\\t";
      break;
    case '\b':
      out += "\\b";
      break;
    case '\f':
      out += "\\f";
      break;
    default:
      out += "\\u00";
      out.push_back(kHex[(c >> 4) & 0xf]);
      out.push_back(kHex[c & 0xf]);
  }
}

}  // namespace

void AppendJsonString(std::string& out, std::string_view text) {
  out.push_back('"');
  // Values are mostly plain text: copy runs that need no escape in one append.
  size_t run = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    if (!NeedsEscape(text[i])) continue;
    out.append(text.data() + run, i - run);
    AppendEscaped(out, text[i]);
    run = i + 1;
  }
  out.append(text.data() + run, text.size() - run);
  out.push_back('"');
}

void JsonObject::Name(std::string_view name) {
  if (!first_) out_.push_back(',');
  first_ = false;
  AppendJsonString(out_, name);
  out_.push_back(':');
}

JsonObject& JsonObject::Str(std::string_view name, std::string_view value) {
  Name(name);
  AppendJsonString(out_, value);
  return *this;
}

JsonObject& JsonObject::Int(std::string_view name, int64_t value) {
  Name(name);
  out_ += std::to_string(value);
  return *this;
}

JsonObject& JsonObject::Bool(std::string_view name, bool value) {
  Name(name);
  out_ += value ? "true" : "false";
  return *this;
}

JsonObject& JsonObject::Null(std::string_view name) {
  Name(name);
  out_ += "null";
  return *this;
}

JsonObject& JsonObject::RawJson(std::string_view name, std::string_view json) {
  Name(name);
  out_ += json;
  return *this;
}

JsonObject& JsonObject::IntArray(std::string_view name, const std::vector<int64_t>& values) {
  Name(name);
  out_.push_back('[');
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out_.push_back(',');
    out_ += std::to_string(values[i]);
  }
  out_.push_back(']');
  return *this;
}

JsonObject& JsonObject::StrArray(std::string_view name, const std::vector<std::string>& values) {
  Name(name);
  out_.push_back('[');
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out_.push_back(',');
    AppendJsonString(out_, values[i]);
  }
  out_.push_back(']');
  return *this;
}

std::string JsonObject::Finish() {
  out_.push_back('}');
  return std::move(out_);
}

}  // namespace kvs::json
