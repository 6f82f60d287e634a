#include "text/json_scan.h"

#include "base/error.h"
#include "text/unicode.h"

namespace vlm::text {

void JsonScanner::error(const std::string& what) const {
  fail(ErrorCode::corrupt_data, where_ + ": malformed JSON at byte " + std::to_string(pos_) + ": " + what);
}

void JsonScanner::skip_ws() {
  while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\n' || s_[pos_] == '\r' || s_[pos_] == '\t')) ++pos_;
}

char JsonScanner::peek() {
  skip_ws();
  return pos_ < s_.size() ? s_[pos_] : '\0';
}

void JsonScanner::expect(char c) {
  if (peek() != c) error(std::string("expected '") + c + "'");
  ++pos_;
}

bool JsonScanner::consume(char c) {
  if (peek() != c) return false;
  ++pos_;
  return true;
}

namespace {
int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
}  // namespace

std::string JsonScanner::parse_string() {
  expect('"');
  std::string out;
  while (true) {
    const std::size_t start = pos_;
    while (pos_ < s_.size() && s_[pos_] != '"' && s_[pos_] != '\\') ++pos_;
    out.append(s_.data() + start, pos_ - start);
    if (pos_ >= s_.size()) error("unterminated string");
    if (s_[pos_] == '"') {
      ++pos_;
      return out;
    }
    ++pos_;  // backslash
    if (pos_ >= s_.size()) error("unterminated escape");
    const char e = s_[pos_++];
    switch (e) {
      case '"': out += '"'; break;
      case '\\': out += '\\'; break;
      case '/': out += '/'; break;
      case 'b': out += '\b'; break;
      case 'f': out += '\f'; break;
      case 'n': out += '\n'; break;
      case 'r': out += '\r'; break;
      case 't': out += '\t'; break;
      case 'u': {
        auto read4 = [&]() -> std::uint32_t {
          if (pos_ + 4 > s_.size()) error("truncated \\u escape");
          std::uint32_t v = 0;
          for (int k = 0; k < 4; ++k) {
            const int d = hex_digit(s_[pos_ + k]);
            if (d < 0) error("bad \\u escape");
            v = v * 16 + static_cast<std::uint32_t>(d);
          }
          pos_ += 4;
          return v;
        };
        std::uint32_t cp = read4();
        if (cp >= 0xD800 && cp <= 0xDBFF && pos_ + 6 <= s_.size() && s_[pos_] == '\\' && s_[pos_ + 1] == 'u') {
          pos_ += 2;
          const std::uint32_t low = read4();
          if (low >= 0xDC00 && low <= 0xDFFF) cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
          else error("unpaired surrogate in \\u escape");
        } else if (cp >= 0xD800 && cp <= 0xDFFF) {
          error("unpaired surrogate in \\u escape");
        }
        append_utf8(out, static_cast<char32_t>(cp));
        break;
      }
      default:
        error(std::string("unknown escape \\") + e);
    }
  }
}

void JsonScanner::skip_string() {
  ++pos_;  // opening quote
  while (pos_ < s_.size()) {
    const char c = s_[pos_++];
    if (c == '\\') ++pos_;
    else if (c == '"') return;
  }
  error("unterminated string");
}

std::int64_t JsonScanner::parse_integer() {
  skip_ws();
  bool negative = false;
  if (pos_ < s_.size() && s_[pos_] == '-') {
    negative = true;
    ++pos_;
  }
  const std::size_t start = pos_;
  std::int64_t v = 0;
  while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') {
    v = v * 10 + (s_[pos_] - '0');
    if (v > (std::int64_t{1} << 40)) error("integer too large");
    ++pos_;
  }
  if (pos_ == start) error("expected an integer");
  if (pos_ < s_.size() && (s_[pos_] == '.' || s_[pos_] == 'e' || s_[pos_] == 'E')) error("expected an integer id");
  return negative ? -v : v;
}

std::string_view JsonScanner::value_text() {
  skip_ws();
  const std::size_t start = pos_;
  int depth = 0;
  do {
    if (pos_ >= s_.size()) error("unexpected end of input");
    const char c = s_[pos_];
    if (c == '"') {
      skip_string();
    } else if (c == '{' || c == '[') {
      ++depth;
      ++pos_;
    } else if (c == '}' || c == ']') {
      --depth;
      ++pos_;
    } else if (depth == 0) {  // a scalar at top level: read to the next delimiter
      while (pos_ < s_.size() && s_[pos_] != ',' && s_[pos_] != '}' && s_[pos_] != ']' && s_[pos_] != ' ' &&
             s_[pos_] != '\n' && s_[pos_] != '\r' && s_[pos_] != '\t')
        ++pos_;
    } else {
      ++pos_;
    }
  } while (depth > 0);
  return s_.substr(start, pos_ - start);
}

std::vector<std::pair<std::string, std::int32_t>> scan_vocab_object(JsonScanner& in) {
  std::vector<std::pair<std::string, std::int32_t>> vocab;
  in.expect('{');
  if (in.consume('}')) return vocab;
  do {
    std::string token = in.parse_string();
    in.expect(':');
    const std::int64_t id = in.parse_integer();
    if (id < 0 || id > INT32_MAX) in.error("vocab id out of range for \"" + token + "\"");
    vocab.emplace_back(std::move(token), static_cast<std::int32_t>(id));
  } while (in.consume(','));
  in.expect('}');
  return vocab;
}

std::vector<std::pair<std::string, std::string>> scan_merges(JsonScanner& in) {
  std::vector<std::pair<std::string, std::string>> merges;
  in.expect('[');
  if (in.consume(']')) return merges;
  do {
    if (in.peek() == '[') {
      in.expect('[');
      std::string a = in.parse_string();
      in.expect(',');
      std::string b = in.parse_string();
      in.expect(']');
      merges.emplace_back(std::move(a), std::move(b));
    } else {
      const std::string s = in.parse_string();
      const std::size_t space = s.find(' ');
      if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos)
        in.error("merge \"" + s + "\" must be two tokens separated by one space");
      merges.emplace_back(s.substr(0, space), s.substr(space + 1));
    }
  } while (in.consume(','));
  in.expect(']');
  return merges;
}

}  // namespace vlm::text
