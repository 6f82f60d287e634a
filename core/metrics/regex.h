// A compiled PCRE2 pattern (UTF mode, JIT when available) with Python re.sub-like global substitution.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace vlm::metrics {

class Regex {
 public:
  // `pattern` uses PCRE2 syntax. `what` names the pattern in error messages (e.g. "regexes_to_ignore[2]").
  // `unicode_classes` makes \w, \d, \s and \b Unicode-aware (PCRE2_UCP), as they are in Python's re for str.
  Regex(const std::string& pattern, const std::string& what, bool unicode_classes = false, bool multiline = false);
  ~Regex();
  Regex(Regex&&) noexcept;
  Regex& operator=(Regex&&) noexcept;
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  bool search(std::string_view subject) const;
  // The first match at or after byte `start`: fills `groups` with (begin, end) byte offsets of the whole match
  // and each capture group (npos when a group did not take part). `anchored`: only a match starting at `start`.
  bool find(std::string_view subject, size_t start, std::vector<std::pair<size_t, size_t>>& groups,
            bool anchored = false) const;
  // Replaces every non-overlapping match, left to right. `replacement` uses PCRE2 syntax: $0, $1, ${1}, $$.
  // The subject must be valid UTF-8 (checked by the caller).
  std::string replace_all(std::string_view subject, std::string_view replacement) const;
  // The same on `text` itself; returns false (leaving `text` alone) when nothing matched.
  bool replace_all_in_place(std::string& text, std::string_view replacement) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace vlm::metrics
