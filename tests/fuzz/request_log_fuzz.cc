// libFuzzer target: what the logs take from the network (issue 13, "Logs"): an X-Request-Id
// header value (RequestId::FromHeader) and message text quoting client bytes (a request
// target) written as a JSON log line (FormatLogLine with ValidUtf8).
// Oracles:
//  - no crash, hang or leak, and no sanitizer report;
//  - FromHeader keeps the input exactly when it is 1-64 of [A-Za-z0-9._:-], and otherwise
//    returns a fresh id that is valid;
//  - ValidUtf8 keeps ASCII as it is, is idempotent (its output is valid by its own measure),
//    and never outputs a byte that UTF-8 forbids (C0, C1, F5-FF);
//  - the JSON line is one line: no byte below 0x20 in it, starting with '{' and ending with
//    '}', holding the id when one was given.
#include <Poco/Message.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "kvs/api/request_log.h"

namespace {

void Check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  using kvs::api::RequestId;

  const RequestId id = RequestId::FromHeader(input);
  Check(RequestId::Valid(id.view()));
  Check((id.view() == input) == RequestId::Valid(input));

  const std::string clean = kvs::api::ValidUtf8(input);
  Check(kvs::api::ValidUtf8(clean) == clean);
  bool ascii = true;
  for (char c : input) ascii = ascii && static_cast<unsigned char>(c) < 0x80;
  if (ascii) Check(clean == input);
  // Bytes that never occur in UTF-8.
  for (char c : clean) {
    const auto b = static_cast<unsigned char>(c);
    Check(b != 0xc0 && b != 0xc1 && b < 0xf5);
  }

  std::string line;
  const Poco::Message message("kvs.api", std::string(input), Poco::Message::PRIO_WARNING);
  kvs::api::FormatLogLine(kvs::api::LogFormat::kJson, message, id.view(), line);
  Check(!line.empty() && line.front() == '{' && line.back() == '}');
  for (char c : line) Check(static_cast<unsigned char>(c) >= 0x20);
  Check(line.find(std::string("\"request_id\":\"") + std::string(id.view()) + "\"") !=
        std::string::npos);
  return 0;
}
