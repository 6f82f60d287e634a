// UTF-8 and Unicode character helpers for the tokenizer, with the semantics of the Rust functions that Hugging
// Face `tokenizers` calls (char::is_whitespace, String::from_utf8_lossy, ...), so that ids match exactly.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace vlm::text {

// Length of the valid UTF-8 sequence starting at s[i], or 0 if the bytes there are not one.
std::size_t valid_sequence_length(std::string_view s, std::size_t i);

// True when the whole string is valid UTF-8; otherwise *bad_offset receives the first invalid byte offset.
bool is_valid_utf8(std::string_view s, std::size_t* bad_offset = nullptr);

// Replaces each maximal invalid subsequence with U+FFFD, exactly as Rust's String::from_utf8_lossy.
std::string to_valid_utf8(std::string_view s);

// Decodes the code point at s[i] of a VALID UTF-8 string and advances i.
char32_t next_code_point(std::string_view s, std::size_t& i);
// Byte length of the code point whose lead byte is `lead` (valid UTF-8 assumed).
inline std::size_t lead_length(unsigned char lead) {
  return lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4;
}
void append_utf8(std::string& out, char32_t cp);
std::size_t count_code_points(std::string_view s);
bool is_ascii(std::string_view s);

// Character classes, as Rust's char methods define them.
bool is_whitespace(char32_t c);     // White_Space property (char::is_whitespace)
bool is_numeric(char32_t c);        // general category N* (char::is_numeric)
bool is_alphanumeric(char32_t c);   // approximately Alphabetic || Numeric (L*, N*, Mc)
bool is_word_char(char32_t c);      // Rust regex \w: Alphabetic, M*, Nd, Pc, Join_Control
bool is_punctuation(char32_t c);    // ASCII punctuation or category P* (tokenizers' Punctuation)
bool is_mark(char32_t c);           // category M* (StripAccents)

// Rust's char::to_lowercase (full mapping: U+0130 becomes "i\u0307").
void append_lowercase(std::string& out, char32_t c);

// Unicode normalization forms through utf8proc.
enum class NormalForm { nfc, nfd, nfkc, nfkd };
std::string normalize_unicode(std::string_view s, NormalForm form);

}  // namespace vlm::text
