#include "kvs/api/http_codec.h"

#include <charconv>
#include <ctime>

namespace kvs::api {
namespace {

// RFC 9110 §5.6.2 token characters.
bool IsTokenChar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return c != '\0' && std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool IsToken(std::string_view text) {
  if (text.empty()) return false;
  for (char c : text) {
    if (!IsTokenChar(c)) return false;
  }
  return true;
}

char Lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (Lower(a[i]) != Lower(b[i])) return false;
  }
  return true;
}

std::string_view TrimWhitespace(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

// The line starting at `pos` without its CRLF (or bare LF); false when no LF has arrived yet.
bool NextLine(std::string_view data, size_t pos, std::string_view& line, size_t& next) {
  const size_t lf = data.find('\n', pos);
  if (lf == std::string_view::npos) return false;
  line = data.substr(pos, lf - pos);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  next = lf + 1;
  return true;
}

bool ParseDecimal(std::string_view text, uint64_t& value) {
  if (text.empty()) return false;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  return ec == std::errc() && end == text.data() + text.size();
}

uint64_t HeaderNumber(std::string_view text) {
  uint64_t value = 0;
  return ParseDecimal(text, value) ? value : 0;
}

bool ParseRequestLine(std::string_view line, RequestHead& head, HeadStatus& status,
                      std::string& error) {
  const size_t sp1 = line.find(' ');
  const size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos) {
    error = "malformed request line";
    status = HeadStatus::kBad;
    return false;
  }
  head.method = line.substr(0, sp1);
  head.target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  const std::string_view version = line.substr(sp2 + 1);
  if (!IsToken(head.method) || head.target.empty()) {
    error = "malformed request line";
    status = HeadStatus::kBad;
    return false;
  }
  for (char c : head.target) {
    if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f) {
      error = "malformed request target";
      status = HeadStatus::kBad;
      return false;
    }
  }
  if (version.size() != 8 || !version.starts_with("HTTP/") || version[6] != '.' ||
      version[5] < '0' || version[5] > '9' || version[7] < '0' || version[7] > '9') {
    error = "malformed HTTP version";
    status = HeadStatus::kBad;
    return false;
  }
  if (version[5] != '1') {
    error = "only HTTP/1.x is supported";
    status = HeadStatus::kBadVersion;
    return false;
  }
  head.minor_version = version[7] - '0';
  return true;
}

}  // namespace

HeadStatus ParseRequestHead(std::string_view data, size_t max_head_bytes, RequestHead& head,
                            std::string& error) {
  head = RequestHead();
  size_t pos = 0;
  // RFC 9112 §2.2: ignore empty lines received before the request line.
  while (pos < data.size() && (data[pos] == '\n' || data[pos] == '\r')) {
    if (data[pos] == '\r' && pos + 1 == data.size()) return HeadStatus::kIncomplete;
    if (data[pos] == '\r' && data[pos + 1] != '\n') {
      error = "stray carriage return";
      return HeadStatus::kBad;
    }
    pos += data[pos] == '\r' ? 2 : 1;
    if (pos > max_head_bytes) break;
  }
  const std::string_view window = data.substr(0, std::min(data.size(), max_head_bytes));
  auto incomplete = [&] {
    if (data.size() >= max_head_bytes) {
      error = "request head too large";
      return HeadStatus::kTooLarge;
    }
    return HeadStatus::kIncomplete;
  };

  std::string_view line;
  size_t next = 0;
  if (!NextLine(window, pos, line, next)) return incomplete();
  HeadStatus status = HeadStatus::kBad;
  if (!ParseRequestLine(line, head, status, error)) return status;
  pos = next;

  bool connection_close = false;
  bool connection_keep_alive = false;
  while (true) {
    if (!NextLine(window, pos, line, next)) return incomplete();
    pos = next;
    if (line.empty()) break;
    if (line.front() == ' ' || line.front() == '\t') {
      error = "obsolete header line folding";
      return HeadStatus::kBad;
    }
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos || !IsToken(line.substr(0, colon))) {
      error = "malformed header field";
      return HeadStatus::kBad;
    }
    const std::string_view name = line.substr(0, colon);
    const std::string_view value = TrimWhitespace(line.substr(colon + 1));
    if (EqualsIgnoreCase(name, "Content-Length")) {
      uint64_t length = 0;
      if (!ParseDecimal(value, length) ||
          (head.has_content_length && length != head.content_length)) {
        error = "invalid Content-Length";
        return HeadStatus::kBad;
      }
      head.has_content_length = true;
      head.content_length = length;
    } else if (EqualsIgnoreCase(name, "Transfer-Encoding")) {
      if (!EqualsIgnoreCase(value, "chunked")) {
        error = "unsupported transfer coding";
        return HeadStatus::kNotImplemented;
      }
      if (head.chunked) {
        error = "chunked applied twice";
        return HeadStatus::kBad;
      }
      head.chunked = true;
    } else if (EqualsIgnoreCase(name, "Connection")) {
      std::string_view rest = value;
      while (!rest.empty()) {
        const size_t comma = rest.find(',');
        const std::string_view option = TrimWhitespace(rest.substr(0, comma));
        if (EqualsIgnoreCase(option, "close")) connection_close = true;
        if (EqualsIgnoreCase(option, "keep-alive")) connection_keep_alive = true;
        if (comma == std::string_view::npos) break;
        rest.remove_prefix(comma + 1);
      }
    } else if (EqualsIgnoreCase(name, "Expect")) {
      head.expect_continue = EqualsIgnoreCase(value, "100-continue");
    } else if (EqualsIgnoreCase(name, "X-Kvs-Hops")) {
      head.hops = HeaderNumber(value);
    } else if (EqualsIgnoreCase(name, "X-Kvs-Epoch")) {
      head.epoch = HeaderNumber(value);
    } else if (EqualsIgnoreCase(name, "Authorization")) {
      head.authorization = value;
    } else if (EqualsIgnoreCase(name, "X-Kvs-Auth")) {
      head.cluster_proof = value;
    } else if (EqualsIgnoreCase(name, "X-Request-Id")) {
      head.request_id = value;
    }
  }
  // RFC 9112 §6.1: a request with both framings is a smuggling attempt or a broken client.
  if (head.chunked && head.has_content_length) {
    error = "both Content-Length and Transfer-Encoding";
    return HeadStatus::kBad;
  }
  head.keep_alive = !connection_close && (head.minor_version >= 1 || connection_keep_alive);
  head.head_bytes = pos;
  return HeadStatus::kComplete;
}

ChunkedDecoder::Status ChunkedDecoder::Feed(std::string_view raw, size_t limit, std::string& body) {
  // Longest chunk-size line or trailer line we wait for before calling the body malformed.
  // Lines are looked for in the next kMaxLine + 1 bytes only, so that a line is too long (or
  // not) however the bytes were split into reads.
  constexpr size_t kMaxLine = 4096;
  while (true) {
    switch (state_) {
      case State::kSize: {
        std::string_view line;
        size_t next = 0;
        if (!NextLine(raw.substr(0, pos_ + kMaxLine + 1), pos_, line, next)) {
          return raw.size() - pos_ > kMaxLine ? Status::kBad : Status::kIncomplete;
        }
        line = TrimWhitespace(line.substr(0, line.find(';')));
        uint64_t size = 0;
        const auto [end, ec] = std::from_chars(line.data(), line.data() + line.size(), size, 16);
        if (line.empty() || ec != std::errc() || end != line.data() + line.size()) {
          return Status::kBad;
        }
        if (size > limit || body.size() + size > limit) return Status::kTooLarge;
        pos_ = next;
        remaining_ = size;
        state_ = size == 0 ? State::kTrailer : State::kData;
        break;
      }
      case State::kData: {
        const size_t take = static_cast<size_t>(std::min<uint64_t>(remaining_, raw.size() - pos_));
        body.append(raw.data() + pos_, take);
        pos_ += take;
        remaining_ -= take;
        if (remaining_ > 0) return Status::kIncomplete;
        state_ = State::kDataEnd;
        break;
      }
      case State::kDataEnd: {
        if (pos_ >= raw.size()) return Status::kIncomplete;
        if (raw[pos_] == '\n') {
          pos_ += 1;
        } else if (raw[pos_] == '\r') {
          if (pos_ + 1 >= raw.size()) return Status::kIncomplete;
          if (raw[pos_ + 1] != '\n') return Status::kBad;
          pos_ += 2;
        } else {
          return Status::kBad;
        }
        state_ = State::kSize;
        break;
      }
      case State::kTrailer: {
        std::string_view line;
        size_t next = 0;
        if (!NextLine(raw.substr(0, pos_ + kMaxLine + 1), pos_, line, next)) {
          return raw.size() - pos_ > kMaxLine ? Status::kBad : Status::kIncomplete;
        }
        pos_ = next;
        if (line.empty()) state_ = State::kDone;
        break;
      }
      case State::kDone:
        return Status::kComplete;
    }
  }
}

std::string_view ReasonPhrase(int status) {
  switch (status) {
    case 100:
      return "Continue";
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 204:
      return "No Content";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 413:
      return "Content Too Large";
    case 417:
      return "Expectation Failed";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Unknown";
  }
}

std::string HttpDate(int64_t unix_seconds) {
  static constexpr const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  const std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char text[40];
  std::snprintf(text, sizeof text, "%s, %02d %s %04d %02d:%02d:%02d GMT", kDays[tm.tm_wday % 7],
                tm.tm_mday, kMonths[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                tm.tm_sec);
  return text;
}

void AppendResponseHead(std::string& out, int status, std::string_view content_type,
                        std::string_view allow, size_t body_size, bool keep_alive,
                        bool http10_keep_alive, std::string_view date, std::string_view extra) {
  char number[24];
  out += "HTTP/1.1 ";
  auto end = std::to_chars(number, number + sizeof number, status).ptr;
  out.append(number, end);
  out += ' ';
  out += ReasonPhrase(status);
  out += "\r\nServer: kvs\r\n";
  if (!date.empty()) {
    out += "Date: ";
    out += date;
    out += "\r\n";
  }
  out += "Content-Type: ";
  out += content_type;
  out += "\r\nContent-Length: ";
  end = std::to_chars(number, number + sizeof number, body_size).ptr;
  out.append(number, end);
  out += "\r\n";
  if (!allow.empty()) {
    out += "Allow: ";
    out += allow;
    out += "\r\n";
  }
  out += extra;
  if (!keep_alive) {
    out += "Connection: close\r\n";
  } else if (http10_keep_alive) {
    out += "Connection: keep-alive\r\n";
  }
  out += "\r\n";
}

}  // namespace kvs::api
