// Request ids and the log's formats (issue 13, "Logs"): a client request carries an id
// (X-Request-Id, or one this node makes) through every node that touches it; the thread
// serving it publishes the id, and the log formatter adds it to every line it writes.
// RequestId is a value type; ScopedRequestId and the formatter are per thread / thread-safe.
#pragma once

#include <Poco/Formatter.h>
#include <Poco/Message.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace kvs::api {

inline constexpr char kRequestIdHeader[] = "X-Request-Id";

// A request id held inline (no allocation): 1-64 characters of [A-Za-z0-9._:-].
class RequestId {
 public:
  static constexpr size_t kMaxLength = 64;

  RequestId() = default;
  // Whether `text` is acceptable as a client's (or a forwarding peer's) id.
  static bool Valid(std::string_view text);
  // A fresh id: this process's random 32-bit prefix and a counter, in hex ("9f3a01c2-1b").
  static RequestId New();
  // `text` when Valid, else a fresh id (a bad id is replaced, never an error).
  static RequestId FromHeader(std::string_view text);

  std::string_view view() const { return {data_, size_}; }
  bool empty() const { return size_ == 0; }

 private:
  char data_[kMaxLength] = {};
  uint8_t size_ = 0;
};

// The id of the request the calling thread serves now, "" when none.
std::string_view CurrentRequestId();

// Publishes `id` as the calling thread's current request id for its lifetime (the previous
// one comes back afterwards). `id` must outlive it.
class ScopedRequestId {
 public:
  explicit ScopedRequestId(const RequestId& id);
  ~ScopedRequestId();
  ScopedRequestId(const ScopedRequestId&) = delete;
  ScopedRequestId& operator=(const ScopedRequestId&) = delete;

 private:
  const RequestId* previous_;
};

// kvs.log.requests: which client requests get an access-log line.
enum class RequestLogMode { kOff, kErrors, kAll };
std::optional<RequestLogMode> ParseRequestLogMode(std::string_view text);

// kvs.log.format.
enum class LogFormat { kText, kJson };
std::optional<LogFormat> ParseLogFormat(std::string_view text);

// One log line (no newline) for `message`, with `request_id` when not empty:
//   text: 2026-12-06T16:53:50.123Z Information kvs.api: message request_id=ID
//   json: {"ts":"2026-12-06T16:53:50.123Z","level":"information","logger":"kvs.api",
//          "msg":"message","request_id":"ID"} (msg made valid UTF-8: ValidUtf8)
void FormatLogLine(LogFormat format, const Poco::Message& message, std::string_view request_id,
                   std::string& out);

// `text` with every byte that starts no valid UTF-8 sequence replaced by U+FFFD.
std::string ValidUtf8(std::string_view text);

// The Poco formatter of the server's log: FormatLogLine with the thread's CurrentRequestId().
class LogFormatter final : public Poco::Formatter {
 public:
  explicit LogFormatter(LogFormat format) : format_(format) {}
  void format(const Poco::Message& message, std::string& text) override;

 private:
  const LogFormat format_;
};

}  // namespace kvs::api
