// Text primitives that behave exactly like CPython 3.11's str methods, as the reference metrics use them.
//
// The reference packages work on Python str (code points), so "lower", "split" and the regex classes must follow
// Python's Unicode database, not the C locale or another library's Unicode version. The tables behind these
// functions are generated from the pinned interpreter (tools/oracle/gen_metrics_unicode_tables.py).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace vlm::metrics {

// Throws vlm::Error(invalid_argument) naming `what` and the byte offset when `text` is not valid UTF-8.
void check_utf8(std::string_view text, const std::string& what);

// Decodes valid UTF-8 (check_utf8 first) into code points, and back.
std::u32string decode_utf8(std::string_view text);
std::string encode_utf8(std::u32string_view text);
void append_utf8(std::string& out, char32_t cp);

// str.isspace() for one code point.
bool python_isspace(char32_t cp);
// str.isupper() / str.islower() of a single character.
bool python_isupper(char32_t cp);
bool python_islower(char32_t cp);
// str.lower(), with the full mappings (U+0130) and the final-sigma rule.
std::u32string python_lower(std::u32string_view text);
std::string python_lower_utf8(std::string_view text);
// str.split() with no argument: runs of Python whitespace separate, no empty pieces.
std::vector<std::string_view> python_split(std::string_view text);
// str.rstrip() / str.strip() with no argument.
std::string_view python_rstrip(std::string_view text);
std::string_view python_strip(std::string_view text);

// Character classes of the regex engines as PCRE2 class bodies (without the brackets), e.g. "\x{30}-\x{39}...".
enum class CharClass { python_space, regex_module_word, regex_module_space, regex_module_digit, std_re_word };
const std::string& pcre2_class_body(CharClass cls);
bool in_char_class(CharClass cls, char32_t cp);

}  // namespace vlm::metrics
