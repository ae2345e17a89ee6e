#include "kvs/bench/request_builder.h"

#include <charconv>
#include <initializer_list>

namespace kvs::bench {
namespace {

constexpr char kContentType[] = "Content-Type: application/json\r\n";

// Appends "METHOD target HTTP/1.1", Host, and (with a body) Content-Type/Length, then the
// blank line and the body made of `pieces`.
void AppendRequest(std::string& out, std::string_view method, std::string_view target_a,
                   std::string_view target_b, std::string_view host_header,
                   std::initializer_list<std::string_view> pieces) {
  size_t body_size = 0;
  for (std::string_view piece : pieces) body_size += piece.size();
  out.append(method).append(" ").append(target_a).append(target_b);
  out.append(" HTTP/1.1\r\nHost: ").append(host_header).append("\r\n");
  if (body_size > 0) {
    char digits[24];
    const auto [end, ec] = std::to_chars(digits, digits + sizeof(digits), body_size);
    out.append(kContentType).append("Content-Length: ").append(digits, end).append("\r\n");
  }
  out.append("\r\n");
  for (std::string_view piece : pieces) out.append(piece);
}

}  // namespace

Outcome Classify(Protocol protocol, Op op, int status, std::string_view body) {
  switch (protocol) {
    case Protocol::kKvs:
      if (status == 200 || (status == 201 && op == Op::kPut)) return Outcome::kOk;
      if (status == 404 && op != Op::kPut) return Outcome::kNotFound;
      return Outcome::kHttpError;
    case Protocol::kRaw:
      return status >= 200 && status < 300 ? Outcome::kOk : Outcome::kHttpError;
    case Protocol::kEtcd:
      if (status != 200) return Outcome::kHttpError;
      if (op == Op::kGet && body.find("\"kvs\"") == std::string_view::npos) {
        return Outcome::kNotFound;
      }
      return Outcome::kOk;
  }
  return Outcome::kHttpError;
}

size_t EncodeBase64(std::string_view data, char* out) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  char* const begin = out;
  size_t i = 0;
  for (; i + 3 <= data.size(); i += 3) {
    const uint32_t n = (static_cast<uint8_t>(data[i]) << 16) |
                       (static_cast<uint8_t>(data[i + 1]) << 8) | static_cast<uint8_t>(data[i + 2]);
    *out++ = kAlphabet[(n >> 18) & 63];
    *out++ = kAlphabet[(n >> 12) & 63];
    *out++ = kAlphabet[(n >> 6) & 63];
    *out++ = kAlphabet[n & 63];
  }
  const size_t rest = data.size() - i;
  if (rest > 0) {
    uint32_t n = static_cast<uint8_t>(data[i]) << 16;
    if (rest == 2) n |= static_cast<uint8_t>(data[i + 1]) << 8;
    *out++ = kAlphabet[(n >> 18) & 63];
    *out++ = kAlphabet[(n >> 12) & 63];
    *out++ = rest == 2 ? kAlphabet[(n >> 6) & 63] : '=';
    *out++ = '=';
  }
  return static_cast<size_t>(out - begin);
}

void AppendBase64(std::string_view data, std::string& out) {
  const size_t old_size = out.size();
  out.resize(old_size + (data.size() + 2) / 3 * 4);
  EncodeBase64(data, out.data() + old_size);
}

std::optional<std::string_view> ExtractCausalMetadata(std::string_view body) {
  static constexpr std::string_view kName = "\"causal-metadata\"";
  const size_t at = body.find(kName);
  if (at == std::string_view::npos) return std::nullopt;
  size_t i = at + kName.size();
  auto skip_space = [&] {
    while (i < body.size() &&
           (body[i] == ' ' || body[i] == '\t' || body[i] == '\n' || body[i] == '\r')) {
      ++i;
    }
  };
  skip_space();
  if (i >= body.size() || body[i] != ':') return std::nullopt;
  ++i;
  skip_space();
  if (i >= body.size() || body[i] != '"') return std::nullopt;
  const size_t start = ++i;
  for (; i < body.size(); ++i) {
    if (body[i] == '\\') {
      ++i;  // the escaped character, whatever it is, cannot end the string
    } else if (body[i] == '"') {
      return body.substr(start, i - start);
    }
  }
  return std::nullopt;  // unterminated
}

std::optional<int> ExtractShardId(std::string_view body) {
  static constexpr std::string_view kName = "\"shard-id\"";
  const size_t at = body.find(kName);
  if (at == std::string_view::npos) return std::nullopt;
  size_t i = body.find_first_not_of(" \t\r\n", at + kName.size());
  if (i == std::string_view::npos || body[i] != ':') return std::nullopt;
  i = body.find_first_not_of(" \t\r\n", i + 1);
  if (i == std::string_view::npos) return std::nullopt;
  int id = 0;
  const auto [end, ec] = std::from_chars(body.data() + i, body.data() + body.size(), id);
  if (ec != std::errc() || end == body.data() + i || id < 0) return std::nullopt;
  // "1.5" or "1e3" is a number, but not a shard id.
  if (end != body.data() + body.size() && (*end == '.' || *end == 'e' || *end == 'E')) {
    return std::nullopt;
  }
  return id;
}

RequestBuilder::RequestBuilder(const Options& options)
    : protocol_(options.protocol), causal_(options.causal), path_(options.path) {
  static constexpr char kChars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  value_.resize(options.value_size);
  uint64_t state = options.seed * 0x9E3779B97F4A7C15ull + 1;
  for (char& c : value_) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    c = kChars[state % (sizeof(kChars) - 1)];
  }
  if (protocol_ == Protocol::kEtcd) AppendBase64(value_, value_base64_);
}

bool RequestBuilder::WantsBody(Op op) const {
  return causal_ || (protocol_ == Protocol::kEtcd && op == Op::kGet);
}

void RequestBuilder::Build(Op op, uint64_t key, std::string_view host_header,
                           std::string_view metadata, std::string& out) const {
  out.clear();
  if (protocol_ == Protocol::kRaw) {
    AppendRequest(out, "GET", path_, {}, host_header, {});
    return;
  }
  char key_text[24] = {'k', 'e', 'y'};
  const auto [end, ec] = std::to_chars(key_text + 3, key_text + sizeof(key_text), key);
  const std::string_view key_view(key_text, end - key_text);
  if (protocol_ == Protocol::kEtcd) {
    BuildEtcd(op, key_view, host_header, out);
  } else {
    BuildKvs(op, key_view, host_header, metadata, out);
  }
}

void RequestBuilder::BuildKvs(Op op, std::string_view key, std::string_view host_header,
                              std::string_view metadata, std::string& out) const {
  static constexpr std::string_view kPrefix = "/key-value-store/";
  const std::string_view method = OpName(op);
  if (op == Op::kPut) {
    if (causal_) {
      AppendRequest(out, method, kPrefix, key, host_header,
                    {R"({"value":")", value_, R"(","causal-metadata":")", metadata, "\"}"});
    } else {
      AppendRequest(out, method, kPrefix, key, host_header, {R"({"value":")", value_, "\"}"});
    }
  } else if (causal_) {
    AppendRequest(out, method, kPrefix, key, host_header,
                  {R"({"causal-metadata":")", metadata, "\"}"});
  } else {
    AppendRequest(out, method, kPrefix, key, host_header, {});
  }
}

void RequestBuilder::BuildEtcd(Op op, std::string_view key, std::string_view host_header,
                               std::string& out) const {
  char buffer[32];  // base64 of "key" + up to 20 digits
  const std::string_view encoded(buffer, EncodeBase64(key, buffer));
  switch (op) {
    case Op::kPut:
      AppendRequest(out, "POST", "/v3/kv/put", {}, host_header,
                    {R"({"key":")", encoded, R"(","value":")", value_base64_, "\"}"});
      break;
    case Op::kGet:
      AppendRequest(out, "POST", "/v3/kv/range", {}, host_header, {R"({"key":")", encoded, "\"}"});
      break;
    case Op::kDelete:
      AppendRequest(out, "POST", "/v3/kv/deleterange", {}, host_header,
                    {R"({"key":")", encoded, "\"}"});
      break;
  }
}

}  // namespace kvs::bench
