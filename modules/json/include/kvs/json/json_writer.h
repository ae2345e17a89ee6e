// Builds one flat JSON object as a string without a DOM (the hot path answers with these).
// Not thread-safe; one writer per response.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace kvs::json {

// Appends `text` to `out` as a quoted, escaped JSON string.
void AppendJsonString(std::string& out, std::string_view text);

class JsonObject {
 public:
  JsonObject() {
    out_.reserve(256);
    out_.push_back('{');
  }

  JsonObject& Str(std::string_view name, std::string_view value);
  JsonObject& Int(std::string_view name, int64_t value);
  JsonObject& Bool(std::string_view name, bool value);
  JsonObject& Null(std::string_view name);
  // `json` must already be valid JSON (a nested object built elsewhere); copied as it is.
  JsonObject& RawJson(std::string_view name, std::string_view json);
  JsonObject& IntArray(std::string_view name, const std::vector<int64_t>& values);
  JsonObject& StrArray(std::string_view name, const std::vector<std::string>& values);

  // The finished object; the writer must not be used afterwards.
  std::string Finish();

 private:
  void Name(std::string_view name);
  std::string out_;
  bool first_ = true;
};

}  // namespace kvs::json
