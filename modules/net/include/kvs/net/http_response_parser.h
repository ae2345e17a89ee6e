// Incremental HTTP/1.1 response parser for a client with one request in flight: status line,
// headers (Content-Length, Transfer-Encoding: chunked, Connection), and the body, fed in
// arbitrary pieces as they come off the socket. Not thread-safe; one per connection.
// Invariant: after kComplete or kError, Reset() must be called before the next Feed().
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace kvs::net {

class ResponseParser {
 public:
  enum class Result { kNeedMore, kComplete, kError };

  // Prepares for the next response; with `capture_body` the body is kept for body().
  void Reset(bool capture_body);

  // Consumes bytes of `data`; `consumed` tells how many (less than data.size() only when the
  // response completed or failed before the end of `data`).
  Result Feed(std::string_view data, size_t& consumed);

  // The peer closed the connection: completes a body delimited by the close; any other
  // unfinished response is kError (started() tells "nothing came" from "cut short").
  Result FinishOnEof();

  int status() const { return status_; }
  // False when the server will close the connection after this response.
  bool keep_alive() const { return keep_alive_ && !until_close_; }
  bool started() const { return started_; }
  std::string_view body() const { return body_; }
  std::string_view error() const { return error_; }

 private:
  enum class State {
    kStatusLine,
    kHeaders,
    kBody,
    kChunkSize,
    kChunkData,
    kChunkDataEnd,
    kTrailers,
    kUntilClose,
    kDone,
    kError
  };

  Result Fail(std::string_view why);
  // Takes one CRLF- (or LF-) terminated line out of `data` starting at `pos`; false when the
  // line is not complete yet (the partial line is buffered).
  bool TakeLine(std::string_view data, size_t& pos, std::string_view& line);
  bool OnStatusLine(std::string_view line);
  bool OnHeader(std::string_view line);
  void OnHeadersEnd();
  void TakeBody(std::string_view data, size_t& pos, uint64_t& remaining);

  State state_ = State::kStatusLine;
  bool capture_body_ = false;
  bool started_ = false;
  int status_ = 0;
  bool http10_ = false;
  bool keep_alive_ = true;
  bool connection_close_ = false;
  bool connection_keep_alive_ = false;
  bool chunked_ = false;
  bool has_length_ = false;
  bool until_close_ = false;
  uint64_t remaining_ = 0;
  std::string line_;
  std::string body_;
  std::string error_;
};

}  // namespace kvs::net
