// HTTP/1.1 framing for the event-driven front end, without sockets: parses a request head
// (RFC 9112 §2–§7) from the bytes received so far, decodes chunked bodies incrementally, and
// writes response heads. Pure functions and a small decoder object; thread-compatible.
// Invariant: every string_view in a RequestHead points into the bytes it was parsed from.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace kvs::api {

// What the front end needs from a request head.
struct RequestHead {
  std::string_view method;
  std::string_view target;
  int minor_version = 1;  // HTTP/1.<minor>
  bool keep_alive = true;
  bool chunked = false;
  bool has_content_length = false;
  uint64_t content_length = 0;
  bool expect_continue = false;
  uint64_t hops = 0;               // X-Kvs-Hops, 0 when absent or malformed
  uint64_t epoch = 0;              // X-Kvs-Epoch, 0 when absent or malformed
  std::string_view authorization;  // Authorization, "" when absent
  std::string_view cluster_proof;  // X-Kvs-Auth, "" when absent
  std::string_view request_id;     // X-Request-Id as sent, "" when absent (validated later)
  size_t head_bytes = 0;           // bytes of the head, final empty line included
};

enum class HeadStatus {
  kIncomplete,      // no end of head yet: read more
  kComplete,        // `head` is filled
  kBad,             // malformed: 400, then close
  kTooLarge,        // head longer than allowed: 431, then close
  kBadVersion,      // not HTTP/1.x: 505, then close
  kNotImplemented,  // a transfer coding other than chunked: 501, then close
};

// Parses the head at the start of `data` (empty lines before the request line are skipped and
// counted in head_bytes). `error` receives a short reason for the failure statuses.
HeadStatus ParseRequestHead(std::string_view data, size_t max_head_bytes, RequestHead& head,
                            std::string& error);

// Decodes a chunked body (RFC 9112 §7.1) fed incrementally: each call passes every body byte
// received so far (starting right after the head; the memory may move between calls) and the
// decoder continues where it stopped. Chunk extensions and trailers are skipped.
class ChunkedDecoder {
 public:
  enum class Status { kIncomplete, kComplete, kBad, kTooLarge };

  // Appends newly decoded bytes to `body`; kTooLarge once `body` would exceed `limit`.
  Status Feed(std::string_view raw, size_t limit, std::string& body);
  // Raw bytes the complete body took (valid after kComplete).
  size_t consumed() const { return pos_; }
  void Reset() { *this = ChunkedDecoder(); }

 private:
  enum class State { kSize, kData, kDataEnd, kTrailer, kDone };
  State state_ = State::kSize;
  size_t pos_ = 0;          // raw bytes consumed
  uint64_t remaining_ = 0;  // data bytes left in the current chunk
};

// Standard reason phrase for `status` ("Unknown" for codes kvs never sends).
std::string_view ReasonPhrase(int status);

// An IMF-fixdate for `unix_seconds`, e.g. "Sun, 06 Nov 1994 08:49:37 GMT".
std::string HttpDate(int64_t unix_seconds);

// Appends a response head with Content-Length `body_size`. `date` may be empty (no Date
// header); `allow` is added when non-empty, and `extra` as it is: zero or more complete
// "Name: value\r\n" lines. `keep_alive` false adds "Connection: close"; an HTTP/1.0 client that
// asked for keep-alive (`http10_keep_alive`) gets "Connection: keep-alive".
void AppendResponseHead(std::string& out, int status, std::string_view content_type,
                        std::string_view allow, size_t body_size, bool keep_alive,
                        bool http10_keep_alive, std::string_view date, std::string_view extra = {});

}  // namespace kvs::api
