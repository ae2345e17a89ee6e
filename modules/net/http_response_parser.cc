#include "kvs/net/http_response_parser.h"

#include <algorithm>
#include <charconv>
#include <cstring>

namespace kvs::net {
namespace {

constexpr size_t kMaxLine = 64 * 1024;

bool EqualsNoCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return (x | 0x20) == (y | 0x20);  // ASCII letters and '-' only in the names we test
         });
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Calls f on each comma-separated, trimmed token of a header value.
template <typename F>
void ForEachToken(std::string_view value, F f) {
  while (true) {
    const size_t comma = value.find(',');
    f(Trim(value.substr(0, comma)));
    if (comma == std::string_view::npos) return;
    value.remove_prefix(comma + 1);
  }
}

}  // namespace

void ResponseParser::Reset(bool capture_body) {
  state_ = State::kStatusLine;
  capture_body_ = capture_body;
  started_ = false;
  status_ = 0;
  http10_ = false;
  keep_alive_ = true;
  connection_close_ = false;
  connection_keep_alive_ = false;
  chunked_ = false;
  has_length_ = false;
  until_close_ = false;
  remaining_ = 0;
  line_.clear();
  body_.clear();
  error_.clear();
}

ResponseParser::Result ResponseParser::Fail(std::string_view why) {
  state_ = State::kError;
  error_ = std::string(why);
  return Result::kError;
}

bool ResponseParser::TakeLine(std::string_view data, size_t& pos, std::string_view& line) {
  const char* start = data.data() + pos;
  const size_t available = data.size() - pos;
  const void* newline = std::memchr(start, '\n', available);
  if (newline == nullptr) {
    line_.append(start, available);
    pos = data.size();
    return false;
  }
  const size_t length = static_cast<const char*>(newline) - start;
  pos += length + 1;
  if (line_.empty()) {
    line = std::string_view(start, length);  // the common case: no copy
  } else {
    line_.append(start, length);
    line = line_;
  }
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return true;
}

bool ResponseParser::OnStatusLine(std::string_view line) {
  // HTTP/1.x SP 3DIGIT [SP reason]
  if (line.size() < 12 || !line.starts_with("HTTP/1.") || line[8] != ' ') return false;
  if (line[7] != '0' && line[7] != '1') return false;
  http10_ = line[7] == '0';
  int status = 0;
  const auto [end, ec] = std::from_chars(line.data() + 9, line.data() + 12, status);
  if (ec != std::errc() || end != line.data() + 12 || status < 100 || status > 999) return false;
  if (line.size() > 12 && line[12] != ' ') return false;
  status_ = status;
  return true;
}

bool ResponseParser::OnHeader(std::string_view line) {
  const size_t colon = line.find(':');
  if (colon == std::string_view::npos || colon == 0) return false;
  const std::string_view name = line.substr(0, colon);
  const std::string_view value = Trim(line.substr(colon + 1));
  if (EqualsNoCase(name, "content-length")) {
    uint64_t length = 0;
    const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), length);
    if (value.empty() || ec != std::errc() || end != value.data() + value.size()) return false;
    if (has_length_ && length != remaining_) return false;  // conflicting lengths
    has_length_ = true;
    remaining_ = length;
  } else if (EqualsNoCase(name, "transfer-encoding")) {
    ForEachToken(value, [&](std::string_view token) { chunked_ = EqualsNoCase(token, "chunked"); });
  } else if (EqualsNoCase(name, "connection")) {
    ForEachToken(value, [&](std::string_view token) {
      if (EqualsNoCase(token, "close")) connection_close_ = true;
      if (EqualsNoCase(token, "keep-alive")) connection_keep_alive_ = true;
    });
  }
  return true;
}

void ResponseParser::OnHeadersEnd() {
  keep_alive_ = !connection_close_ && (!http10_ || connection_keep_alive_);
  if (status_ < 200) {
    // An interim 1xx answer: the real response follows on the same connection.
    state_ = State::kStatusLine;
    has_length_ = chunked_ = connection_close_ = connection_keep_alive_ = false;
    remaining_ = 0;
  } else if (status_ == 204 || status_ == 304) {
    state_ = State::kDone;
  } else if (chunked_) {
    state_ = State::kChunkSize;
  } else if (has_length_) {
    state_ = remaining_ == 0 ? State::kDone : State::kBody;
  } else {
    until_close_ = true;
    state_ = State::kUntilClose;
  }
}

void ResponseParser::TakeBody(std::string_view data, size_t& pos, uint64_t& remaining) {
  const size_t take = static_cast<size_t>(std::min<uint64_t>(remaining, data.size() - pos));
  if (capture_body_) body_.append(data.data() + pos, take);
  pos += take;
  remaining -= take;
}

ResponseParser::Result ResponseParser::Feed(std::string_view data, size_t& consumed) {
  size_t pos = 0;
  if (!data.empty()) started_ = true;
  Result result = Result::kNeedMore;
  while (result == Result::kNeedMore) {
    if (state_ == State::kDone) {
      result = Result::kComplete;
      break;
    }
    if (state_ == State::kError) {
      result = Result::kError;
      break;
    }
    if (pos == data.size()) break;
    std::string_view line;
    switch (state_) {
      case State::kStatusLine:
      case State::kHeaders:
      case State::kChunkSize:
      case State::kChunkDataEnd:
      case State::kTrailers: {
        if (!TakeLine(data, pos, line)) {
          if (line_.size() > kMaxLine) result = Fail("header line too long");
          break;
        }
        const State state = state_;
        if (state == State::kStatusLine) {
          if (!OnStatusLine(line)) {
            result = Fail("bad status line");
          } else {
            state_ = State::kHeaders;
          }
        } else if (state == State::kHeaders) {
          if (line.empty()) {
            OnHeadersEnd();
          } else if (!OnHeader(line)) {
            result = Fail("bad header line");
          }
        } else if (state == State::kChunkSize) {
          const std::string_view hex = Trim(line.substr(0, line.find(';')));
          uint64_t size = 0;
          const auto [end, ec] = std::from_chars(hex.data(), hex.data() + hex.size(), size, 16);
          if (hex.empty() || ec != std::errc() || end != hex.data() + hex.size()) {
            result = Fail("bad chunk size");
          } else if (size == 0) {
            state_ = State::kTrailers;
          } else {
            remaining_ = size;
            state_ = State::kChunkData;
          }
        } else if (state == State::kChunkDataEnd) {
          if (!line.empty()) {
            result = Fail("chunk data longer than its size");
          } else {
            state_ = State::kChunkSize;
          }
        } else if (line.empty()) {  // kTrailers: an empty line ends the message
          state_ = State::kDone;
        }
        line_.clear();
        break;
      }
      case State::kBody:
        TakeBody(data, pos, remaining_);
        if (remaining_ == 0) state_ = State::kDone;
        break;
      case State::kChunkData:
        TakeBody(data, pos, remaining_);
        if (remaining_ == 0) state_ = State::kChunkDataEnd;
        break;
      case State::kUntilClose: {
        uint64_t all = data.size() - pos;
        TakeBody(data, pos, all);
        break;
      }
      case State::kDone:
      case State::kError:
        break;
    }
  }
  consumed = pos;
  return result;
}

ResponseParser::Result ResponseParser::FinishOnEof() {
  if (state_ == State::kDone) return Result::kComplete;
  if (state_ == State::kUntilClose) {
    state_ = State::kDone;
    return Result::kComplete;
  }
  return Fail(started_ ? "connection closed in the middle of a response"
                       : "connection closed before any response byte");
}

}  // namespace kvs::net
