#include "kvs/api/request_body.h"

#include <algorithm>
#include <cctype>
#include <charconv>

namespace kvs::api {
namespace {

constexpr int kMaxDepth = 64;

// One pass over a JSON text. Every method returns false on a syntax error and leaves `pos_`
// somewhere inside the text; values are decoded only where the caller asks for them.
class Parser {
 public:
  explicit Parser(std::string_view text) : text_(text) {}

  void SkipSpace() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t' ||
                                   text_[pos_] == '\n' || text_[pos_] == '\r')) {
      ++pos_;
    }
  }
  bool AtEnd() {
    SkipSpace();
    return pos_ == text_.size();
  }
  char Peek() {
    SkipSpace();
    return pos_ < text_.size() ? text_[pos_] : '\0';
  }
  bool Consume(char c) {
    if (Peek() != c) return false;
    ++pos_;
    return true;
  }

  // A string token, decoded into `out` (UTF-8).
  bool String(std::string& out) {
    if (!Consume('"')) return false;
    out.clear();
    while (pos_ < text_.size()) {
      // Copy the run of characters that need no decoding in one append (values are mostly
      // plain text).
      size_t run_end = pos_;
      while (run_end < text_.size()) {
        const char r = text_[run_end];
        if (r == '"' || r == '\\' || static_cast<unsigned char>(r) < 0x20) break;
        ++run_end;
      }
      out.append(text_.data() + pos_, run_end - pos_);
      pos_ = run_end;
      if (pos_ >= text_.size()) return false;
      const char c = text_[pos_++];
      if (c == '"') return true;
      if (static_cast<unsigned char>(c) < 0x20) return false;
      // c is a backslash: an escape sequence follows.
      if (pos_ >= text_.size()) return false;
      switch (text_[pos_++]) {
        case '"':
          out.push_back('"');
          break;
        case '\\':
          out.push_back('\\');
          break;
        case '/':
          out.push_back('/');
          break;
        case 'b':
          out.push_back('\b');
          break;
        case 'f':
          out.push_back('\f');
          break;
        case 'n':
          out.push_back('\n');
          break;
        case 'r':
          out.push_back('\r');
          break;
        case 't':
          out.push_back('\t');
          break;
        case 'u': {
          uint32_t code = 0;
          if (!Hex4(code)) return false;
          if (code >= 0xD800 && code <= 0xDBFF) {  // high surrogate: a low one must follow
            uint32_t low = 0;
            if (pos_ + 1 >= text_.size() || text_[pos_] != '\\' || text_[pos_ + 1] != 'u') {
              return false;
            }
            pos_ += 2;
            if (!Hex4(low) || low < 0xDC00 || low > 0xDFFF) return false;
            code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
          } else if (code >= 0xDC00 && code <= 0xDFFF) {
            return false;
          }
          AppendUtf8(out, code);
          break;
        }
        default:
          return false;
      }
    }
    return false;
  }

  // A number token; `is_integer` when it has no fraction or exponent and fits int64.
  bool Number(bool& is_integer, int64_t& value) {
    SkipSpace();
    const size_t start = pos_;
    if (pos_ < text_.size() && text_[pos_] == '-') ++pos_;
    if (pos_ >= text_.size() || !std::isdigit(static_cast<unsigned char>(text_[pos_]))) {
      return false;
    }
    if (text_[pos_] == '0') {
      ++pos_;
    } else {
      while (pos_ < text_.size() && std::isdigit(static_cast<unsigned char>(text_[pos_]))) ++pos_;
    }
    bool plain = true;
    if (pos_ < text_.size() && text_[pos_] == '.') {
      plain = false;
      ++pos_;
      if (!Digits()) return false;
    }
    if (pos_ < text_.size() && (text_[pos_] == 'e' || text_[pos_] == 'E')) {
      plain = false;
      ++pos_;
      if (pos_ < text_.size() && (text_[pos_] == '+' || text_[pos_] == '-')) ++pos_;
      if (!Digits()) return false;
    }
    is_integer = false;
    if (plain) {
      const auto [end, ec] = std::from_chars(text_.data() + start, text_.data() + pos_, value);
      is_integer = ec == std::errc() && end == text_.data() + pos_;
    }
    return true;
  }

  bool Literal(std::string_view word) {
    SkipSpace();
    if (text_.substr(pos_, word.size()) != word) return false;
    pos_ += word.size();
    return true;
  }

  // Any value, validated and skipped.
  bool SkipValue(int depth) {
    if (depth > kMaxDepth) return false;
    std::string scratch;
    bool is_integer = false;
    int64_t number = 0;
    switch (Peek()) {
      case '"':
        return String(scratch);
      case '{': {
        ++pos_;
        if (Consume('}')) return true;
        do {
          if (!String(scratch) || !Consume(':') || !SkipValue(depth + 1)) return false;
        } while (Consume(','));
        return Consume('}');
      }
      case '[': {
        ++pos_;
        if (Consume(']')) return true;
        do {
          if (!SkipValue(depth + 1)) return false;
        } while (Consume(','));
        return Consume(']');
      }
      case 't':
        return Literal("true");
      case 'f':
        return Literal("false");
      case 'n':
        return Literal("null");
      default:
        return Number(is_integer, number);
    }
  }

 private:
  bool Digits() {
    const size_t start = pos_;
    while (pos_ < text_.size() && std::isdigit(static_cast<unsigned char>(text_[pos_]))) ++pos_;
    return pos_ > start;
  }
  bool Hex4(uint32_t& code) {
    if (pos_ + 4 > text_.size()) return false;
    const auto [end, ec] = std::from_chars(text_.data() + pos_, text_.data() + pos_ + 4, code, 16);
    if (ec != std::errc() || end != text_.data() + pos_ + 4) return false;
    pos_ += 4;
    return true;
  }
  static void AppendUtf8(std::string& out, uint32_t code) {
    if (code < 0x80) {
      out.push_back(static_cast<char>(code));
    } else if (code < 0x800) {
      out.push_back(static_cast<char>(0xC0 | (code >> 6)));
      out.push_back(static_cast<char>(0x80 | (code & 0x3F)));
    } else if (code < 0x10000) {
      out.push_back(static_cast<char>(0xE0 | (code >> 12)));
      out.push_back(static_cast<char>(0x80 | ((code >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (code & 0x3F)));
    } else {
      out.push_back(static_cast<char>(0xF0 | (code >> 18)));
      out.push_back(static_cast<char>(0x80 | ((code >> 12) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | ((code >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (code & 0x3F)));
    }
  }

  std::string_view text_;
  size_t pos_ = 0;
};

}  // namespace

std::variant<RequestBody, std::string> RequestBody::Parse(std::string_view text) {
  static const std::string kNotJson = "Body is not valid JSON";
  static const std::string kNotObject = "Body must be a JSON object";
  RequestBody body;
  Parser parser(text);
  if (parser.AtEnd()) return body;  // no body at all
  if (parser.Peek() != '{') {
    return parser.SkipValue(0) && parser.AtEnd() ? kNotObject : kNotJson;
  }
  parser.Consume('{');
  if (!parser.Consume('}')) {
    do {
      Member member;
      if (!parser.String(member.name) || !parser.Consume(':')) return kNotJson;
      bool is_integer = false;
      switch (parser.Peek()) {
        case '"':
          if (!parser.String(member.text)) return kNotJson;
          member.kind = Field::kString;
          break;
        case 'n':
          if (!parser.Literal("null")) return kNotJson;
          member.kind = Field::kNull;
          break;
        case '-':
        case '0':
        case '1':
        case '2':
        case '3':
        case '4':
        case '5':
        case '6':
        case '7':
        case '8':
        case '9':
          if (!parser.Number(is_integer, member.integer)) return kNotJson;
          member.kind = is_integer ? Field::kInteger : Field::kOther;
          break;
        default:
          if (!parser.SkipValue(1)) return kNotJson;
          member.kind = Field::kOther;
      }
      body.members_.push_back(std::move(member));
    } while (parser.Consume(','));
    if (!parser.Consume('}')) return kNotJson;
  }
  if (!parser.AtEnd()) return kNotJson;
  return body;
}

const RequestBody::Member* RequestBody::Find(std::string_view name) const {
  for (auto it = members_.rbegin(); it != members_.rend(); ++it) {
    if (it->name == name) return &*it;
  }
  return nullptr;
}

RequestBody::Field RequestBody::GetString(std::string_view name, std::string& out) const {
  const Member* member = Find(name);
  if (member == nullptr) return Field::kMissing;
  if (member->kind == Field::kString) out = member->text;
  return member->kind;
}

RequestBody::Field RequestBody::GetInteger(std::string_view name, int64_t& out) const {
  const Member* member = Find(name);
  if (member == nullptr) return Field::kMissing;
  if (member->kind == Field::kInteger) out = member->integer;
  return member->kind;
}

}  // namespace kvs::api
