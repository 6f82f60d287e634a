// A compiled regular expression (PCRE2, UTF + UCP, JIT) with the matching semantics the Hugging Face tokenizers
// rely on: Oniguruma's find_iter (non-overlapping, leftmost, empty matches not adjacent to the previous match).
// Patterns are written for Oniguruma / Rust regex; the few classes whose Unicode meaning differs in PCRE2
// (\s, \S, \w, \W) are rewritten to explicit classes with the Oniguruma meaning.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace vlm::text {

class Regex {
 public:
  // rust_classes: give \w the meaning of Rust's regex crate (adds Nl and Other_Alphabetic symbols), for the
  // pre-tokenizers tokenizers implements with that crate instead of Oniguruma.
  explicit Regex(const std::string& pattern, bool rust_classes = false);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // Appends the [start, end) byte ranges of all matches in `text` (valid UTF-8) to `out`.
  void find_all(std::string_view text, std::vector<std::pair<std::size_t, std::size_t>>& out) const;
  const std::string& pattern() const { return pattern_; }

 private:
  std::string pattern_;
  void* code_ = nullptr;  // pcre2_code_8*
};

// The regex text for a literal string (for Split with a String pattern).
std::string regex_escape(std::string_view literal);

}  // namespace vlm::text
