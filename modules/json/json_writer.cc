#include "kvs/json/json_writer.h"

namespace kvs::json {

void AppendJsonString(std::string& out, std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  for (char c : text) {
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
        if (static_cast<unsigned char>(c) < 0x20) {
          out += "\\u00";
          out.push_back(kHex[(c >> 4) & 0xf]);
          out.push_back(kHex[c & 0xf]);
        } else {
          out.push_back(c);
        }
    }
  }
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
