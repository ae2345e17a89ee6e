// libFuzzer target: the HTTP/1.1 request framing of the event-driven front end (bytes from the
// network): ParseRequestHead and ChunkedDecoder, driven the way EventServer::ProcessInput drives
// them. The input is the byte stream of one client connection (pipelined requests allowed); it
// is served twice, once received in one piece and once in small pieces (sizes drawn from a
// generator seeded with the input, so every run of an input is the same), and each time the
// head is parsed again from the start of the unconsumed bytes on every arrival, the chunked
// decoder is fed every body byte received so far, and a request is consumed once complete.
// Oracles:
//  - no crash, hang or leak, and no sanitizer report;
//  - a complete head ends with LF within the bytes and the head limit; its method and target
//    point into its bytes (also after a failure: the server puts the method in its error
//    reply), the method is a token, the target has no controls or spaces, the minor version is
//    a digit, and it never has both Content-Length and chunked; parsing just its bytes gives
//    the same head, and parsing one byte less says "incomplete";
//  - while a head is incomplete the connection holds at most the head limit (+1: a lone CR)
//    bytes; every failure names its reason;
//  - the chunked decoder never consumes more than it was given, never outputs more than it
//    consumed or more than the body limit, and a complete body ends with LF;
//  - what the server does with the stream (each request it dispatches: head fields, body and
//    bytes consumed; then the error it answers or how the stream ends) does not depend on how
//    the bytes were split into reads.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "kvs/api/http_codec.h"

namespace {

using kvs::api::ChunkedDecoder;
using kvs::api::HeadStatus;
using kvs::api::RequestHead;

// Smaller than the server's defaults (64 KiB head, 1 MiB body) so that the limits are reachable
// within the 64 KiB inputs tests/run.sh uses.
constexpr size_t kMaxHead = 4096;
constexpr size_t kBodyLimit = 16384;

void Check(bool condition) {
  if (!condition) std::abort();
}

bool Within(std::string_view part, std::string_view whole) {
  if (part.empty()) return true;
  return part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size();
}

bool SameHead(const RequestHead& a, const RequestHead& b) {
  return a.method == b.method && a.target == b.target && a.minor_version == b.minor_version &&
         a.keep_alive == b.keep_alive && a.chunked == b.chunked &&
         a.has_content_length == b.has_content_length && a.content_length == b.content_length &&
         a.expect_continue == b.expect_continue && a.hops == b.hops && a.epoch == b.epoch &&
         a.head_bytes == b.head_bytes;
}

// ParseRequestHead plus the checks on its result.
HeadStatus ParseHead(std::string_view data, RequestHead& head) {
  std::string error;
  const HeadStatus status = kvs::api::ParseRequestHead(data, kMaxHead, head, error);
  Check(Within(head.method, data));
  if (status == HeadStatus::kIncomplete) {
    Check(data.size() <= kMaxHead + 1);
    return status;
  }
  if (status != HeadStatus::kComplete) {
    Check(!error.empty());
    return status;
  }
  Check(head.head_bytes > 0 && head.head_bytes <= std::min(data.size(), kMaxHead));
  Check(data[head.head_bytes - 1] == '\n');
  const std::string_view bytes = data.substr(0, head.head_bytes);
  Check(!head.method.empty() && Within(head.method, bytes));
  Check(!head.target.empty() && Within(head.target, bytes));
  for (char c : head.method) Check(static_cast<unsigned char>(c) > ' ' && c != 0x7f && c != ':');
  for (char c : head.target) Check(static_cast<unsigned char>(c) > ' ' && c != 0x7f);
  Check(head.minor_version >= 0 && head.minor_version <= 9);
  Check(!(head.chunked && head.has_content_length));
  // The head depends on its own bytes only, and ends exactly where it says.
  RequestHead alone;
  std::string ignored;
  Check(kvs::api::ParseRequestHead(bytes, kMaxHead, alone, ignored) == HeadStatus::kComplete &&
        SameHead(alone, head));
  Check(kvs::api::ParseRequestHead(bytes.substr(0, bytes.size() - 1), kMaxHead, alone, ignored) ==
        HeadStatus::kIncomplete);
  return status;
}

// ChunkedDecoder::Feed plus the checks on its result.
ChunkedDecoder::Status Feed(ChunkedDecoder& decoder, std::string_view raw, std::string& body) {
  const size_t consumed_before = decoder.consumed();
  const size_t body_before = body.size();
  const ChunkedDecoder::Status status = decoder.Feed(raw, kBodyLimit, body);
  Check(decoder.consumed() >= consumed_before && decoder.consumed() <= raw.size());
  Check(body.size() - body_before <= decoder.consumed() - consumed_before);
  Check(body.size() <= kBodyLimit);
  if (status == ChunkedDecoder::Status::kComplete) {
    Check(decoder.consumed() > 0 && raw[decoder.consumed() - 1] == '\n');
  }
  return status;
}

std::string Describe(const RequestHead& head, std::string_view body, size_t request_bytes) {
  std::string out = "request ";
  out.append(head.method).append(" ").append(head.target);
  out += " 1." + std::to_string(head.minor_version) +
         " keep_alive=" + std::to_string(head.keep_alive) +
         " continue=" + std::to_string(head.expect_continue) +
         " hops=" + std::to_string(head.hops) + " epoch=" + std::to_string(head.epoch) +
         " bytes=" + std::to_string(request_bytes) + " body=" + std::to_string(body.size()) + ":";
  out.append(body);
  return out;
}

// Deterministic read sizes: xorshift64 seeded with an FNV-1a hash of the input.
class Splitter {
 public:
  explicit Splitter(std::string_view input) {
    for (char c : input) state_ = (state_ ^ static_cast<uint8_t>(c)) * 0x100000001b3ULL;
    if (state_ == 0) state_ = 1;
  }
  size_t Next() {
    state_ ^= state_ << 13;
    state_ ^= state_ >> 7;
    state_ ^= state_ << 17;
    // Mostly short reads (splits inside lines and CRLFs), sometimes longer ones.
    return (state_ & 3) == 0 ? 1 + (state_ >> 8) % 1024 : 1 + (state_ >> 8) % 8;
  }

 private:
  uint64_t state_ = 0xcbf29ce484222325ULL;
};

// Serves one connection's `stream`, received in one read (`splitter` null) or in the reads
// `splitter` chooses. Returns what the server does, one line per event.
std::vector<std::string> Serve(std::string_view stream, Splitter* splitter) {
  std::vector<std::string> events;
  // Received bytes; [begin, end) is not consumed yet. Compacted before each read, so the bytes
  // move between parses as they may in the server.
  std::string buffer;
  size_t begin = 0, received = 0;
  ChunkedDecoder chunk;
  std::string chunk_body;
  bool chunk_active = false;
  size_t chunk_head_bytes = 0;
  while (true) {
    while (begin < buffer.size()) {
      const std::string_view in = std::string_view(buffer).substr(begin);
      RequestHead head;
      const HeadStatus status = ParseHead(in, head);
      if (status == HeadStatus::kIncomplete) break;
      if (status != HeadStatus::kComplete) {
        events.push_back("fail " + std::to_string(static_cast<int>(status)));
        return events;
      }
      std::string_view body;
      size_t request_bytes = 0;
      if (head.chunked) {
        if (!chunk_active) {
          chunk.Reset();
          chunk_body.clear();
          chunk_active = true;
          chunk_head_bytes = head.head_bytes;
        }
        // The head parsed again on every arrival is the same head.
        Check(head.head_bytes == chunk_head_bytes);
        const ChunkedDecoder::Status fed = Feed(chunk, in.substr(head.head_bytes), chunk_body);
        if (fed == ChunkedDecoder::Status::kIncomplete) break;
        if (fed != ChunkedDecoder::Status::kComplete) {
          events.push_back("chunked fail " + std::to_string(static_cast<int>(fed)));
          return events;
        }
        body = chunk_body;
        request_bytes = head.head_bytes + chunk.consumed();
      } else if (head.has_content_length) {
        if (head.content_length > kBodyLimit) {
          events.push_back("fail 413");
          return events;
        }
        const size_t length = static_cast<size_t>(head.content_length);
        if (in.size() - head.head_bytes < length) break;
        body = in.substr(head.head_bytes, length);
        request_bytes = head.head_bytes + length;
      } else {
        request_bytes = head.head_bytes;
      }
      Check(request_bytes <= in.size());
      events.push_back(Describe(head, body, request_bytes));
      begin += request_bytes;
      chunk_active = false;
      if (!head.keep_alive) {
        events.push_back("close");
        return events;
      }
    }
    if (received == stream.size()) {
      events.push_back("end of stream, " + std::to_string(buffer.size() - begin) +
                       " bytes pending");
      return events;
    }
    const size_t n = splitter == nullptr ? stream.size() : splitter->Next();
    const std::string_view piece = stream.substr(received, n);
    buffer.erase(0, begin);
    begin = 0;
    buffer.append(piece);
    received += piece.size();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view stream(reinterpret_cast<const char*>(data), size);
  const std::vector<std::string> whole = Serve(stream, nullptr);
  Splitter splitter(stream);
  const std::vector<std::string> pieces = Serve(stream, &splitter);
  if (whole != pieces) std::abort();
  return 0;
}
