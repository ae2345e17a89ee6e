#include "kvs/api/request_log.h"

#include <Poco/DateTimeFormatter.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <random>

#include "kvs/json/json_writer.h"

namespace kvs::api {
namespace {

thread_local const RequestId* current_request_id = nullptr;

bool IdChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == ':' || c == '-';
}

uint32_t ProcessPrefix() {
  static const uint32_t prefix = [] {
    std::random_device device;
    return static_cast<uint32_t>(device());
  }();
  return prefix;
}

std::atomic<uint64_t> next_request{0};

std::string_view LevelName(Poco::Message::Priority priority) {
  switch (priority) {
    case Poco::Message::PRIO_FATAL:
      return "fatal";
    case Poco::Message::PRIO_CRITICAL:
      return "critical";
    case Poco::Message::PRIO_ERROR:
      return "error";
    case Poco::Message::PRIO_WARNING:
      return "warning";
    case Poco::Message::PRIO_NOTICE:
      return "notice";
    case Poco::Message::PRIO_INFORMATION:
      return "information";
    case Poco::Message::PRIO_DEBUG:
      return "debug";
    case Poco::Message::PRIO_TRACE:
      return "trace";
  }
  return "information";
}

std::string_view TextLevelName(Poco::Message::Priority priority) {
  switch (priority) {
    case Poco::Message::PRIO_FATAL:
      return "Fatal";
    case Poco::Message::PRIO_CRITICAL:
      return "Critical";
    case Poco::Message::PRIO_ERROR:
      return "Error";
    case Poco::Message::PRIO_WARNING:
      return "Warning";
    case Poco::Message::PRIO_NOTICE:
      return "Notice";
    case Poco::Message::PRIO_INFORMATION:
      return "Information";
    case Poco::Message::PRIO_DEBUG:
      return "Debug";
    case Poco::Message::PRIO_TRACE:
      return "Trace";
  }
  return "Information";
}

// Length of the valid UTF-8 sequence at the start of `text`, 0 if it does not start with one
// (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF).
size_t Utf8Sequence(std::string_view text) {
  const auto byte = [&](size_t i) { return static_cast<unsigned char>(text[i]); };
  const unsigned char b0 = byte(0);
  if (b0 < 0x80) return 1;
  size_t n = 0;
  unsigned char lo = 0x80;
  unsigned char hi = 0xbf;
  if (b0 >= 0xc2 && b0 <= 0xdf) {
    n = 2;
  } else if (b0 >= 0xe0 && b0 <= 0xef) {
    n = 3;
    if (b0 == 0xe0) lo = 0xa0;
    if (b0 == 0xed) hi = 0x9f;
  } else if (b0 >= 0xf0 && b0 <= 0xf4) {
    n = 4;
    if (b0 == 0xf0) lo = 0x90;
    if (b0 == 0xf4) hi = 0x8f;
  } else {
    return 0;
  }
  if (text.size() < n) return 0;
  if (byte(1) < lo || byte(1) > hi) return 0;
  for (size_t i = 2; i < n; ++i) {
    if (byte(i) < 0x80 || byte(i) > 0xbf) return 0;
  }
  return n;
}

}  // namespace

std::string ValidUtf8(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  while (!text.empty()) {
    const size_t n = Utf8Sequence(text);
    if (n == 0) {
      out += "\xEF\xBF\xBD";  // U+FFFD for each byte that starts no valid sequence
      text.remove_prefix(1);
    } else {
      out.append(text.data(), n);
      text.remove_prefix(n);
    }
  }
  return out;
}

bool RequestId::Valid(std::string_view text) {
  if (text.empty() || text.size() > kMaxLength) return false;
  for (char c : text) {
    if (!IdChar(c)) return false;
  }
  return true;
}

RequestId RequestId::New() {
  RequestId id;
  char* const begin = id.data_;
  char* end = begin + id.kMaxLength;
  // 8 hex digits of the prefix (zero-padded), '-', the counter in hex: at most 8 + 1 + 16.
  const uint32_t prefix = ProcessPrefix();
  for (int i = 7; i >= 0; --i) begin[7 - i] = "0123456789abcdef"[(prefix >> (4 * i)) & 0xf];
  begin[8] = '-';
  const uint64_t n = next_request.fetch_add(1, std::memory_order_relaxed) + 1;
  const auto result = std::to_chars(begin + 9, end, n, 16);
  id.size_ = static_cast<uint8_t>(result.ptr - begin);
  return id;
}

RequestId RequestId::FromHeader(std::string_view text) {
  if (!Valid(text)) return New();
  RequestId id;
  text.copy(id.data_, text.size());
  id.size_ = static_cast<uint8_t>(text.size());
  return id;
}

std::string_view CurrentRequestId() {
  return current_request_id == nullptr ? std::string_view() : current_request_id->view();
}

ScopedRequestId::ScopedRequestId(const RequestId& id) : previous_(current_request_id) {
  current_request_id = &id;
}

ScopedRequestId::~ScopedRequestId() { current_request_id = previous_; }

std::optional<RequestLogMode> ParseRequestLogMode(std::string_view text) {
  if (text == "off") return RequestLogMode::kOff;
  if (text == "errors") return RequestLogMode::kErrors;
  if (text == "all") return RequestLogMode::kAll;
  return std::nullopt;
}

std::optional<LogFormat> ParseLogFormat(std::string_view text) {
  if (text == "text") return LogFormat::kText;
  if (text == "json") return LogFormat::kJson;
  return std::nullopt;
}

void FormatLogLine(LogFormat format, const Poco::Message& message, std::string_view request_id,
                   std::string& out) {
  const std::string ts =
      Poco::DateTimeFormatter::format(message.getTime(), "%Y-%m-%dT%H:%M:%S.%iZ");
  if (format == LogFormat::kJson) {
    json::JsonObject object;
    // A message may quote bytes a client sent: the line stays valid JSON (valid UTF-8) anyway.
    const std::string& text = message.getText();
    const bool ascii = std::all_of(text.begin(), text.end(),
                                   [](char c) { return static_cast<unsigned char>(c) < 0x80; });
    const std::string cleaned = ascii ? std::string() : ValidUtf8(text);
    object.Str("ts", ts)
        .Str("level", LevelName(message.getPriority()))
        .Str("logger", message.getSource())
        .Str("msg", ascii ? std::string_view(text) : std::string_view(cleaned));
    if (!request_id.empty()) object.Str("request_id", request_id);
    out += object.Finish();
    return;
  }
  out += ts;
  out += ' ';
  out += TextLevelName(message.getPriority());
  out += ' ';
  out += message.getSource();
  out += ": ";
  out += message.getText();
  if (!request_id.empty()) {
    out += " request_id=";
    out += request_id;
  }
}

void LogFormatter::format(const Poco::Message& message, std::string& text) {
  FormatLogLine(format_, message, CurrentRequestId(), text);
}

}  // namespace kvs::api
