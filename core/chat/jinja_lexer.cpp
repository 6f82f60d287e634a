#include "chat/jinja_lexer.h"

#include <cctype>
#include <cerrno>
#include <cstdlib>

#include "base/error.h"
#include "chat/jinja_value.h"

namespace vlm::jinja {
namespace {

[[noreturn]] void syntax_error(const std::string& name, int line, const std::string& what) {
  fail(ErrorCode::corrupt_data, name + " line " + std::to_string(line) + ": template syntax error: " + what);
}

// Length of the Python whitespace character at s[i] (0 if none). Handles the multi-byte spaces too.
std::size_t space_at(std::string_view s, std::size_t i) {
  unsigned char c = static_cast<unsigned char>(s[i]);
  if (c < 0x80) return py_isspace(c) ? 1 : 0;
  std::size_t len = (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
  if (i + len > s.size()) return 0;
  auto cps = utf8_decode(s.substr(i, len));
  return (cps.size() == 1 && py_isspace(cps[0])) ? len : 0;
}

std::size_t skip_spaces(std::string_view s, std::size_t i) {
  while (i < s.size()) {
    std::size_t n = space_at(s, i);
    if (!n) break;
    i += n;
  }
  return i;
}

// Python's str.rstrip() on UTF-8 text.
std::string_view rstrip_view(std::string_view s) {
  auto cps = utf8_decode(s);
  std::size_t keep = cps.size();
  while (keep > 0 && py_isspace(cps[keep - 1])) --keep;
  std::size_t bytes = 0;
  for (std::size_t i = 0; i < keep; ++i) {
    std::uint32_t cp = cps[i];
    bytes += cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
  }
  return s.substr(0, bytes);
}

// True when s (non-empty) is all whitespace: the `\s+` fullmatch jinja2 uses for lstrip_blocks.
bool all_space(std::string_view s) {
  if (s.empty()) return false;
  return skip_spaces(s, 0) == s.size();
}

int count_newlines(std::string_view s) {
  int n = 0;
  for (char c : s)
    if (c == '\n') ++n;
  return n;
}

// Decodes a string literal's body the way jinja2 does (Python's "unicode-escape").
std::string unescape(std::string_view body, const std::string& name, int line) {
  std::string out;
  for (std::size_t i = 0; i < body.size(); ++i) {
    char c = body[i];
    if (c != '\\' || i + 1 >= body.size()) {
      out += c;
      continue;
    }
    char e = body[++i];
    auto hex = [&](int digits) -> std::uint32_t {
      std::uint32_t v = 0;
      for (int k = 0; k < digits; ++k) {
        std::size_t p = i + 1 + k;
        if (p >= body.size() || !std::isxdigit(static_cast<unsigned char>(body[p])))
          syntax_error(name, line, "truncated \\x, \\u or \\U escape in a string literal");
        v = v * 16 + static_cast<std::uint32_t>(std::strtol(std::string(1, body[p]).c_str(), nullptr, 16));
      }
      i += digits;
      return v;
    };
    switch (e) {
      case '\n': break;  // line continuation
      case '\\': out += '\\'; break;
      case '\'': out += '\''; break;
      case '"': out += '"'; break;
      case 'a': out += '\a'; break;
      case 'b': out += '\b'; break;
      case 'f': out += '\f'; break;
      case 'n': out += '\n'; break;
      case 'r': out += '\r'; break;
      case 't': out += '\t'; break;
      case 'v': out += '\v'; break;
      case 'x': utf8_append(out, hex(2)); break;
      case 'u': utf8_append(out, hex(4)); break;
      case 'U': utf8_append(out, hex(8)); break;
      case 'N': syntax_error(name, line, "\\N{...} escapes are not supported in string literals");
      default:
        if (e >= '0' && e <= '7') {
          std::uint32_t v = static_cast<std::uint32_t>(e - '0');
          for (int k = 0; k < 2 && i + 1 < body.size() && body[i + 1] >= '0' && body[i + 1] <= '7'; ++k)
            v = v * 8 + static_cast<std::uint32_t>(body[++i] - '0');
          utf8_append(out, v);
        } else {
          out += '\\';
          out += e;
        }
    }
  }
  return out;
}

bool is_name_start(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; }
bool is_name_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Matches `(\d+_)*\d+` at i; returns the end or i when nothing matched.
std::size_t match_digits(std::string_view s, std::size_t i) {
  std::size_t j = i;
  if (j >= s.size() || !is_digit(s[j])) return i;
  while (j < s.size() && is_digit(s[j])) ++j;
  while (j + 1 < s.size() && s[j] == '_' && is_digit(s[j + 1])) {
    ++j;
    while (j < s.size() && is_digit(s[j])) ++j;
  }
  return j;
}

class Lexer {
 public:
  Lexer(std::string_view source, const LexOptions& options, const std::string& name)
      : options_(options), name_(name) {
    // Normalise newlines to "\n" and drop one trailing newline (keep_trailing_newline=False).
    src_.reserve(source.size());
    for (std::size_t i = 0; i < source.size(); ++i) {
      if (source[i] == '\r') {
        src_ += '\n';
        if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
      } else {
        src_ += source[i];
      }
    }
    if (!options_.keep_trailing_newline && !src_.empty() && src_.back() == '\n') src_.pop_back();
  }

  std::vector<Token> run() {
    std::string_view s = src_;
    while (pos_ < s.size()) {
      // Find the next tag start: "{{", "{%" or "{#".
      std::size_t tag = s.find('{', pos_);
      while (tag != std::string_view::npos && tag + 1 < s.size() && s[tag + 1] != '{' && s[tag + 1] != '%' &&
             s[tag + 1] != '#')
        tag = s.find('{', tag + 1);
      if (tag == std::string_view::npos || tag + 1 >= s.size()) {
        emit_data(s.substr(pos_));
        line_starting_ = s.back() == '\n';
        pos_ = s.size();
        break;
      }
      char kind = s[tag + 1];
      std::size_t after = tag + 2;
      char sign = 0;
      if (after < s.size() && (s[after] == '-' || s[after] == '+')) sign = s[after++];
      std::string_view text = s.substr(pos_, tag - pos_);
      bool is_raw = kind == '%' && match_raw_begin(s, after);
      text = strip_text(text, sign, kind != '{');
      emit_data(text);
      line_ += count_newlines(s.substr(pos_, tag - pos_)) - count_newlines(text);
      pos_ = after;
      line_starting_ = false;
      if (is_raw) {
        lex_raw(s);
      } else if (kind == '#') {
        lex_comment(s);
      } else {
        lex_tag(s, kind == '{');
      }
    }
    Token eof{Tok::eof, "", 0, 0.0, line_};
    tokens_.push_back(eof);
    return std::move(tokens_);
  }

 private:
  std::string_view strip_text(std::string_view text, char sign, bool lstrip_applies) {
    if (sign == '-') return rstrip_view(text);
    if (sign != '+' && options_.lstrip_blocks && lstrip_applies) {
      std::size_t nl = text.rfind('\n');
      std::size_t l_pos = nl == std::string_view::npos ? 0 : nl + 1;
      if ((l_pos > 0 || line_starting_) && all_space(text.substr(l_pos))) return text.substr(0, l_pos);
    }
    return text;
  }

  void emit_data(std::string_view text) {
    if (text.empty()) return;
    tokens_.push_back(Token{Tok::data, std::string(text), 0, 0.0, line_});
    line_ += count_newlines(text);
  }

  // `\s*raw\s*(-%}\s*|%})` right after "{%" or "{%-".
  bool match_raw_begin(std::string_view s, std::size_t i) {
    i = skip_spaces(s, i);
    if (s.compare(i, 3, "raw") != 0) return false;
    i = skip_spaces(s, i + 3);
    return s.compare(i, 3, "-%}") == 0 || s.compare(i, 2, "%}") == 0;
  }

  // Consumes a block end at pos_ if there is one: "+%}", "-%}" + whitespace, or "%}" + one newline.
  bool match_end(std::string_view s, std::string_view close, bool trim_newline) {
    std::size_t i = pos_;
    if (i < s.size() && s[i] == '+' && s.compare(i + 1, close.size(), close) == 0) {
      pos_ = i + 1 + close.size();
      return true;
    }
    if (i < s.size() && s[i] == '-' && s.compare(i + 1, close.size(), close) == 0) {
      std::size_t end = skip_spaces(s, i + 1 + close.size());
      line_ += count_newlines(s.substr(i, end - i));
      pos_ = end;
      line_starting_ = end > 0 && s[end - 1] == '\n';
      return true;
    }
    if (s.compare(i, close.size(), close) == 0) {
      pos_ = i + close.size();
      if (trim_newline && pos_ < s.size() && s[pos_] == '\n') {
        ++pos_;
        ++line_;
        line_starting_ = true;
      }
      return true;
    }
    return false;
  }

  void lex_raw(std::string_view s) {
    // Skip the rest of the raw-begin tag: `\s*raw\s*(-%}\s*|%})`.
    pos_ = skip_spaces(s, pos_) + 3;
    pos_ = skip_spaces(s, pos_);
    if (!match_end(s, "%}", false)) syntax_error(name_, line_, "malformed raw tag");
    std::size_t search = pos_;
    while (true) {
      std::size_t tag = s.find("{%", search);
      if (tag == std::string_view::npos) syntax_error(name_, line_, "missing end of raw directive");
      std::size_t i = tag + 2;
      char sign = 0;
      if (i < s.size() && (s[i] == '-' || s[i] == '+')) sign = s[i++];
      i = skip_spaces(s, i);
      if (s.compare(i, 6, "endraw") != 0) {
        search = tag + 2;
        continue;
      }
      std::size_t j = skip_spaces(s, i + 6);
      bool closes = j < s.size() && (s.compare(j, 2, "%}") == 0 ||
                                     ((s[j] == '-' || s[j] == '+') && s.compare(j + 1, 2, "%}") == 0));
      if (!closes) {
        search = tag + 2;
        continue;
      }
      std::string_view body = s.substr(pos_, tag - pos_);
      std::string_view kept = strip_text(body, sign, true);
      emit_data(kept);
      line_ += count_newlines(body) - count_newlines(kept);
      pos_ = j;
      match_end(s, "%}", options_.trim_blocks);
      return;
    }
  }

  void lex_comment(std::string_view s) {
    std::size_t i = pos_;
    while (true) {
      std::size_t close = s.find("#}", i);
      if (close == std::string_view::npos) syntax_error(name_, line_, "missing end of comment tag");
      // The earliest of "+#}", "-#}" or "#}" wins, as in jinja2's lazy regex.
      std::size_t start = close;
      if (close > pos_ && (s[close - 1] == '-' || s[close - 1] == '+')) start = close - 1;
      line_ += count_newlines(s.substr(pos_, start - pos_));
      pos_ = start;
      if (!match_end(s, "#}", options_.trim_blocks)) syntax_error(name_, line_, "malformed comment end");
      return;
    }
  }

  void lex_tag(std::string_view s, bool variable) {
    tokens_.push_back(Token{variable ? Tok::variable_begin : Tok::block_begin, "", 0, 0.0, line_});
    std::string_view close = variable ? "}}" : "%}";
    std::vector<char> balance;
    while (true) {
      if (pos_ >= s.size())
        syntax_error(name_, line_, std::string("unexpected end of template, expected '") + std::string(close) + "'");
      if (balance.empty()) {
        int line = line_;
        bool ended = variable ? match_variable_end(s) : match_end(s, close, options_.trim_blocks);
        if (ended) {
          tokens_.push_back(Token{variable ? Tok::variable_end : Tok::block_end, "", 0, 0.0, line});
          return;
        }
      }
      std::size_t ws = skip_spaces(s, pos_);
      if (ws != pos_) {
        line_ += count_newlines(s.substr(pos_, ws - pos_));
        pos_ = ws;
        continue;
      }
      char c = s[pos_];
      if (lex_number(s)) continue;
      if (is_name_start(c)) {
        std::size_t j = pos_;
        while (j < s.size() && is_name_char(s[j])) ++j;
        tokens_.push_back(Token{Tok::name, std::string(s.substr(pos_, j - pos_)), 0, 0.0, line_});
        pos_ = j;
        continue;
      }
      if (c == '\'' || c == '"') {
        std::size_t j = pos_ + 1;
        while (j < s.size() && s[j] != c) j += (s[j] == '\\') ? 2 : 1;
        if (j >= s.size()) syntax_error(name_, line_, "unterminated string literal");
        std::string_view body = s.substr(pos_ + 1, j - pos_ - 1);
        tokens_.push_back(Token{Tok::string, unescape(body, name_, line_), 0, 0.0, line_});
        line_ += count_newlines(body);
        pos_ = j + 1;
        continue;
      }
      static const char* two_char_ops[] = {"//", "**", "==", "!=", ">=", "<="};
      std::string op;
      for (const char* candidate : two_char_ops)
        if (s.compare(pos_, 2, candidate) == 0) op = candidate;
      if (op.empty()) {
        if (std::string_view("+-/*%~[](){}><=.:|,;").find(c) == std::string_view::npos)
          syntax_error(name_, line_, std::string("unexpected char '") + c + "'");
        op = std::string(1, c);
      }
      if (op == "(" || op == "[" || op == "{") {
        balance.push_back(op == "(" ? ')' : op == "[" ? ']' : '}');
      } else if (op == ")" || op == "]" || op == "}") {
        if (balance.empty()) syntax_error(name_, line_, "unexpected '" + op + "'");
        if (balance.back() != op[0])
          syntax_error(name_, line_, "unexpected '" + op + "', expected '" + std::string(1, balance.back()) + "'");
        balance.pop_back();
      }
      tokens_.push_back(Token{Tok::op, op, 0, 0.0, line_});
      pos_ += op.size();
    }
  }

  bool match_variable_end(std::string_view s) {
    if (s.compare(pos_, 3, "-}}") == 0) {
      std::size_t end = skip_spaces(s, pos_ + 3);
      line_ += count_newlines(s.substr(pos_, end - pos_));
      pos_ = end;
      line_starting_ = end > 0 && s[end - 1] == '\n';
      return true;
    }
    if (s.compare(pos_, 2, "}}") == 0) {
      pos_ += 2;
      return true;
    }
    return false;
  }

  bool lex_number(std::string_view s) {
    char c = s[pos_];
    if (!is_digit(c)) return false;
    bool after_dot = pos_ > 0 && s[pos_ - 1] == '.';
    // Float first (as jinja2 orders its rules): digits with a fraction and/or an exponent.
    if (!after_dot) {
      std::size_t j = match_digits(s, pos_);
      std::size_t k = j;
      bool has_fraction = false;
      if (k < s.size() && s[k] == '.') {
        std::size_t f = match_digits(s, k + 1);
        if (f != k + 1) {
          has_fraction = true;
          k = f;
        }
      }
      bool has_exponent = false;
      if (k < s.size() && (s[k] == 'e' || s[k] == 'E')) {
        std::size_t e = k + 1;
        if (e < s.size() && (s[e] == '+' || s[e] == '-')) ++e;
        std::size_t x = match_digits(s, e);
        if (x != e) {
          has_exponent = true;
          k = x;
        }
      }
      if (has_fraction || has_exponent) {
        std::string text;
        for (std::size_t i = pos_; i < k; ++i)
          if (s[i] != '_') text += s[i];
        tokens_.push_back(Token{Tok::floating, text, 0, std::strtod(text.c_str(), nullptr), line_});
        pos_ = k;
        return true;
      }
    }
    std::size_t j = pos_;
    int base = 10;
    if (c == '0' && j + 1 < s.size() && std::string_view("bBoOxX").find(s[j + 1]) != std::string_view::npos) {
      char b = static_cast<char>(std::tolower(static_cast<unsigned char>(s[j + 1])));
      base = b == 'b' ? 2 : b == 'o' ? 8 : 16;
      j += 2;
      std::size_t start = j;
      while (j < s.size() && (std::isxdigit(static_cast<unsigned char>(s[j])) || s[j] == '_')) ++j;
      if (j == start) syntax_error(name_, line_, "malformed integer literal");
    } else if (c == '0') {
      ++j;
      while (j + 1 < s.size() && (s[j] == '0' || (s[j] == '_' && s[j + 1] == '0'))) ++j;
      if (j < s.size() && s[j] == '0') ++j;
    } else {
      j = match_digits(s, pos_);
    }
    std::string text;
    for (std::size_t i = (base == 10 ? pos_ : pos_ + 2); i < j; ++i)
      if (s[i] != '_') text += s[i];
    Token t{Tok::integer, std::string(s.substr(pos_, j - pos_)), 0, 0.0, line_};
    errno = 0;
    t.int_value = std::strtoll(text.c_str(), nullptr, base);
    if (errno == ERANGE)
      fail(ErrorCode::limit_exceeded, name_ + " line " + std::to_string(line_) + ": integer literal " + t.text +
                                          " does not fit in 64 bits");
    tokens_.push_back(t);
    pos_ = j;
    return true;
  }

  LexOptions options_;
  std::string name_;
  std::string src_;
  std::size_t pos_ = 0;
  int line_ = 1;
  bool line_starting_ = true;
  std::vector<Token> tokens_;
};

}  // namespace

std::vector<Token> tokenize(std::string_view source, const LexOptions& options, const std::string& name) {
  return Lexer(source, options, name).run();
}

}  // namespace vlm::jinja
