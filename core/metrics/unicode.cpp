#include "metrics/unicode.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>

#include "base/error.h"

namespace vlm::metrics {
namespace {

struct LowerPair {
  std::uint32_t cp;
  std::uint32_t lower;
};
struct LowerMulti {
  std::uint32_t cp;
  std::uint32_t count;
  std::uint32_t lower[3];
};
struct CodeRange {
  std::uint32_t lo;
  std::uint32_t hi;
};

#include "metrics/unicode_tables.inc"

template <size_t N>
bool in_ranges(const CodeRange (&table)[N], char32_t cp) {
  const CodeRange* end = table + N;
  const CodeRange* it = std::upper_bound(table, end, static_cast<std::uint32_t>(cp),
                                         [](std::uint32_t v, const CodeRange& r) { return v < r.lo; });
  if (it == table) return false;
  --it;
  return cp <= it->hi;
}

template <size_t N>
std::string class_body(const CodeRange (&table)[N]) {
  std::string out;
  char buf[48];
  for (const CodeRange& r : table) {
    if (r.lo == r.hi) {
      std::snprintf(buf, sizeof buf, "\\x{%X}", r.lo);
    } else {
      std::snprintf(buf, sizeof buf, "\\x{%X}-\\x{%X}", r.lo, r.hi);
    }
    out += buf;
  }
  return out;
}

bool is_cased(char32_t cp) { return in_ranges(kPythonCased, cp); }
bool is_case_ignorable(char32_t cp) { return in_ranges(kPythonCaseIgnorable, cp); }

// CPython's handle_capital_sigma: U+03A3 lowercases to final sigma after a cased letter (skipping case-ignorable
// ones) unless a cased letter follows (again skipping case-ignorable ones).
char32_t lower_capital_sigma(std::u32string_view text, size_t i) {
  size_t j = i;
  bool final_sigma = false;
  while (j > 0) {
    char32_t c = text[j - 1];
    if (!is_case_ignorable(c)) {
      final_sigma = is_cased(c);
      break;
    }
    --j;
  }
  if (final_sigma) {
    for (size_t k = i + 1; k < text.size(); ++k) {
      if (!is_case_ignorable(text[k])) {
        final_sigma = !is_cased(text[k]);
        break;
      }
    }
  }
  return final_sigma ? 0x3C2 : 0x3C3;
}

}  // namespace

void check_utf8(std::string_view text, const std::string& what) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    unsigned char c = s[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len = 0;
    std::uint32_t cp = 0;
    if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07;
    }
    bool ok = len != 0 && i + len <= n;
    for (size_t k = 1; ok && k < len; ++k) {
      if ((s[i + k] & 0xC0) != 0x80) ok = false;
      cp = (cp << 6) | (s[i + k] & 0x3F);
    }
    if (ok) {
      static const std::uint32_t min_for_len[5] = {0, 0, 0x80, 0x800, 0x10000};
      ok = cp >= min_for_len[len] && cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF);
    }
    if (!ok) {
      fail(ErrorCode::invalid_argument, what + " is not valid UTF-8 (bad byte at offset " + std::to_string(i) +
                                            "); re-encode the text as UTF-8");
    }
    i += len;
  }
}

std::u32string decode_utf8(std::string_view text) {
  std::u32string out;
  out.reserve(text.size());
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  size_t n = text.size();
  for (size_t i = 0; i < n;) {
    unsigned char c = s[i];
    if (c < 0x80) {
      out.push_back(c);
      ++i;
    } else if ((c & 0xE0) == 0xC0) {
      out.push_back(((c & 0x1F) << 6) | (s[i + 1] & 0x3F));
      i += 2;
    } else if ((c & 0xF0) == 0xE0) {
      out.push_back(((c & 0x0F) << 12) | ((s[i + 1] & 0x3F) << 6) | (s[i + 2] & 0x3F));
      i += 3;
    } else {
      out.push_back(((c & 0x07) << 18) | ((s[i + 1] & 0x3F) << 12) | ((s[i + 2] & 0x3F) << 6) | (s[i + 3] & 0x3F));
      i += 4;
    }
  }
  return out;
}

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

std::string encode_utf8(std::u32string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char32_t cp : text) append_utf8(out, cp);
  return out;
}

bool python_isspace(char32_t cp) {
  if (cp < 0x80) return (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20);
  return in_ranges(kPythonSpace, cp);
}

bool python_isupper(char32_t cp) {
  if (cp < 0x80) return cp >= 'A' && cp <= 'Z';
  return in_ranges(kPythonUpper, cp);
}

bool python_islower(char32_t cp) {
  if (cp < 0x80) return cp >= 'a' && cp <= 'z';
  return in_ranges(kPythonLower, cp);
}

std::u32string python_lower(std::u32string_view text) {
  std::u32string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    char32_t cp = text[i];
    if (cp < 0x80) {
      out.push_back(cp >= 'A' && cp <= 'Z' ? cp + 32 : cp);
      continue;
    }
    if (cp == 0x3A3) {
      out.push_back(lower_capital_sigma(text, i));
      continue;
    }
    const LowerPair* end = kLowerSingle + sizeof(kLowerSingle) / sizeof(kLowerSingle[0]);
    const LowerPair* it =
        std::lower_bound(kLowerSingle, end, cp, [](const LowerPair& p, char32_t v) { return p.cp < v; });
    if (it != end && it->cp == cp) {
      out.push_back(it->lower);
      continue;
    }
    bool multi = false;
    for (const LowerMulti& m : kLowerMulti) {
      if (m.cp == cp) {
        for (std::uint32_t k = 0; k < m.count; ++k) out.push_back(m.lower[k]);
        multi = true;
        break;
      }
    }
    if (!multi) out.push_back(cp);
  }
  return out;
}

std::string python_lower_utf8(std::string_view text) {
  bool ascii = std::all_of(text.begin(), text.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; });
  if (ascii) {
    std::string out(text);
    for (char& c : out) {
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
    }
    return out;
  }
  return encode_utf8(python_lower(decode_utf8(text)));
}

namespace {
// Length of the UTF-8 sequence at s[i] and its code point (input already validated).
inline size_t decode_at(std::string_view s, size_t i, char32_t* cp) {
  unsigned char c = static_cast<unsigned char>(s[i]);
  if (c < 0x80) {
    *cp = c;
    return 1;
  }
  if ((c & 0xE0) == 0xC0) {
    *cp = ((c & 0x1F) << 6) | (s[i + 1] & 0x3F);
    return 2;
  }
  if ((c & 0xF0) == 0xE0) {
    *cp = ((c & 0x0F) << 12) | ((s[i + 1] & 0x3F) << 6) | (s[i + 2] & 0x3F);
    return 3;
  }
  *cp = ((c & 0x07) << 18) | ((s[i + 1] & 0x3F) << 12) | ((s[i + 2] & 0x3F) << 6) | (s[i + 3] & 0x3F);
  return 4;
}
}  // namespace

std::vector<std::string_view> python_split(std::string_view text) {
  // ASCII whitespace per str.isspace(): \t \n \v \f \r, \x1c-\x1f and the space.
  static const auto ascii_space = [] {
    std::array<bool, 128> t{};
    for (int c = 0x09; c <= 0x0D; ++c) t[c] = true;
    for (int c = 0x1C; c <= 0x20; ++c) t[c] = true;
    return t;
  }();
  std::vector<std::string_view> out;
  size_t i = 0;
  size_t start = std::string_view::npos;
  const size_t n = text.size();
  while (i < n) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    bool space;
    size_t len = 1;
    if (c < 0x80) {
      space = ascii_space[c];
    } else {
      char32_t cp;
      len = decode_at(text, i, &cp);
      space = python_isspace(cp);
    }
    if (space) {
      if (start != std::string_view::npos) {
        out.push_back(text.substr(start, i - start));
        start = std::string_view::npos;
      }
    } else if (start == std::string_view::npos) {
      start = i;
    }
    i += len;
  }
  if (start != std::string_view::npos) out.push_back(text.substr(start));
  return out;
}

std::string_view python_rstrip(std::string_view text) {
  size_t end = 0;
  size_t i = 0;
  while (i < text.size()) {
    char32_t cp;
    size_t len = decode_at(text, i, &cp);
    i += len;
    if (!python_isspace(cp)) end = i;
  }
  return text.substr(0, end);
}

std::string_view python_strip(std::string_view text) {
  std::string_view r = python_rstrip(text);
  size_t i = 0;
  while (i < r.size()) {
    char32_t cp;
    size_t len = decode_at(r, i, &cp);
    if (!python_isspace(cp)) break;
    i += len;
  }
  return r.substr(i);
}

const std::string& pcre2_class_body(CharClass cls) {
  static const std::string python_space = class_body(kPythonSpace);
  static const std::string word = class_body(kRegexModuleWord);
  static const std::string space = class_body(kRegexModuleSpace);
  static const std::string digit = class_body(kRegexModuleDigit);
  static const std::string re_word = class_body(kStdReWord);
  switch (cls) {
    case CharClass::python_space: return python_space;
    case CharClass::regex_module_word: return word;
    case CharClass::regex_module_space: return space;
    case CharClass::regex_module_digit: return digit;
    case CharClass::std_re_word: return re_word;
  }
  fail(ErrorCode::internal, "pcre2_class_body: unknown character class");
}

bool in_char_class(CharClass cls, char32_t cp) {
  switch (cls) {
    case CharClass::python_space: return python_isspace(cp);
    case CharClass::regex_module_word: return in_ranges(kRegexModuleWord, cp);
    case CharClass::regex_module_space: return in_ranges(kRegexModuleSpace, cp);
    case CharClass::regex_module_digit: return in_ranges(kRegexModuleDigit, cp);
    case CharClass::std_re_word: return in_ranges(kStdReWord, cp);
  }
  return false;
}

}  // namespace vlm::metrics
