// libFuzzer target: net::ResponseParser, which reads other nodes' answers to forwarded requests
// on the event loops (and any server's answers in kvs-bench). The input is the byte stream of one
// keep-alive connection (pipelined answers allowed), then an end of stream. It is read twice:
// once in one piece and once in small pieces (sizes drawn from a generator seeded with the input,
// so every run of an input is the same), the parser reset after each complete answer.
// Oracles:
//  - no crash, hang or leak, and no sanitizer report;
//  - Feed never consumes more than it was given, and consumes something unless it completes or
//    fails (no endless loop on the same bytes);
//  - a complete answer has a status in 100..999 and the body it reports; a failure names a
//    reason;
//  - the answers (status, body, keep-alive) and how the stream ends do not depend on how the
//    bytes were split into reads.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "kvs/net/http_response_parser.h"

namespace {

using kvs::net::ResponseParser;

struct Outcome {
  std::vector<std::string> answers;  // "status keep-alive body" per complete answer
  std::string end;                   // how the stream ended

  bool operator==(const Outcome&) const = default;
};

void Check(bool condition) {
  if (!condition) std::abort();
}

Outcome Read(std::string_view stream, const std::vector<size_t>& pieces) {
  Outcome outcome;
  ResponseParser parser;
  parser.Reset(/*capture_body=*/true);
  auto record = [&] {
    Check(parser.status() >= 100 && parser.status() <= 999);
    outcome.answers.push_back(std::to_string(parser.status()) + " " +
                              (parser.keep_alive() ? "1 " : "0 ") + std::string(parser.body()));
    parser.Reset(/*capture_body=*/true);
  };
  size_t offset = 0;
  size_t next_piece = 0;
  while (offset < stream.size()) {
    size_t size = stream.size() - offset;
    if (!pieces.empty()) size = std::min(size, pieces[next_piece++ % pieces.size()]);
    std::string_view piece = stream.substr(offset, size);
    offset += size;
    while (!piece.empty()) {
      size_t consumed = 0;
      const ResponseParser::Result result = parser.Feed(piece, consumed);
      Check(consumed <= piece.size());
      piece.remove_prefix(consumed);
      if (result == ResponseParser::Result::kError) {
        Check(!parser.error().empty());
        outcome.end = "error";
        return outcome;
      }
      if (result == ResponseParser::Result::kComplete) {
        record();
        continue;
      }
      Check(consumed > 0 || piece.empty());
      Check(piece.empty());  // kNeedMore takes everything it was given
    }
  }
  const ResponseParser::Result last = parser.FinishOnEof();
  if (last == ResponseParser::Result::kComplete) {
    record();
    outcome.end = "eof after an answer";
  } else {
    outcome.end = parser.started() ? "cut short" : "eof";
  }
  return outcome;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view stream(reinterpret_cast<const char*>(data), size);
  uint64_t seed = 1469598103934665603ull;
  for (unsigned char c : stream) seed = (seed ^ c) * 1099511628211ull;
  std::vector<size_t> pieces;
  for (int i = 0; i < 16; ++i) {
    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
    pieces.push_back(1 + (seed >> 33) % 7);
  }
  const Outcome whole = Read(stream, {});
  const Outcome split = Read(stream, pieces);
  Check(whole == split);
  return 0;
}
