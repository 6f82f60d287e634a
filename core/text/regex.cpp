#define PCRE2_CODE_UNIT_WIDTH 8
#include "text/regex.h"

#include <pcre2.h>

#include <memory>

#include "base/error.h"
#include "text/unicode.h"

namespace vlm::text {
namespace {

// White_Space, the Unicode meaning of \s in Oniguruma and Rust's regex (PCRE2's \s lacks U+0085).
constexpr const char* kSpaceItems = "\\t\\n\\x{0B}\\f\\r \\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}"
                                    "\\x{202F}\\x{205F}\\x{3000}";
// Word characters: letters, marks, decimal digits, connector punctuation (Oniguruma / Rust \w).
constexpr const char* kWordItems = "\\p{L}\\p{M}\\p{Nd}\\p{Pc}";
// Rust regex \w: Alphabetic (letters, Nl, Other_Alphabetic), marks, Nd, Pc, Join_Control.
constexpr const char* kRustWordItems = "\\p{L}\\p{M}\\p{Nd}\\p{Nl}\\p{Pc}\\x{200C}\\x{200D}\\x{24B6}-\\x{24E9}"
                                       "\\x{1F130}-\\x{1F149}\\x{1F150}-\\x{1F169}\\x{1F170}-\\x{1F189}";

std::string translate(const std::string& pattern, bool rust_classes) {
  const char* word_items = rust_classes ? kRustWordItems : kWordItems;
  std::string out;
  out.reserve(pattern.size() + 32);
  bool in_class = false;
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (c == '\\' && i + 1 < pattern.size()) {
      const char n = pattern[i + 1];
      ++i;
      if (n == 's' || n == 'w') {
        const char* items = n == 's' ? kSpaceItems : word_items;
        if (in_class) out += items;
        else out += std::string("[") + items + "]";
        continue;
      }
      if ((n == 'S' || n == 'W') && !in_class) {
        out += std::string("[^") + (n == 'S' ? kSpaceItems : word_items) + "]";
        continue;
      }
      out += c;
      out += n;
      continue;
    }
    if (c == '[' && !in_class) {
      in_class = true;
      out += c;
      // A ']' right after '[' or '[^' is a literal.
      if (i + 1 < pattern.size() && pattern[i + 1] == '^') { out += '^'; ++i; }
      if (i + 1 < pattern.size() && pattern[i + 1] == ']') { out += "\\]"; ++i; }
      continue;
    }
    if (c == ']' && in_class) in_class = false;
    out += c;
  }
  return out;
}

struct MatchState {
  pcre2_match_data* data = nullptr;
  pcre2_match_context* context = nullptr;
  pcre2_jit_stack* stack = nullptr;
  MatchState() {
    data = pcre2_match_data_create(1, nullptr);
    context = pcre2_match_context_create(nullptr);
    stack = pcre2_jit_stack_create(32 * 1024, 4 * 1024 * 1024, nullptr);
    if (context && stack) pcre2_jit_stack_assign(context, nullptr, stack);
  }
  ~MatchState() {
    pcre2_match_data_free(data);
    pcre2_match_context_free(context);
    pcre2_jit_stack_free(stack);
  }
};

MatchState& match_state() {
  thread_local MatchState state;
  return state;
}

}  // namespace

Regex::Regex(const std::string& pattern, bool rust_classes) : pattern_(pattern) {
  const std::string translated = translate(pattern, rust_classes);
  int error = 0;
  PCRE2_SIZE error_offset = 0;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(translated.data()), translated.size(),
                                   PCRE2_UTF | PCRE2_UCP | PCRE2_NO_UTF_CHECK, &error, &error_offset, nullptr);
  if (!code) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(error, message, sizeof(message));
    fail(ErrorCode::unsupported, "cannot compile the tokenizer regex '" + pattern + "' at offset " +
                                     std::to_string(error_offset) + ": " + reinterpret_cast<char*>(message));
  }
  pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);  // falls back to the interpreter when JIT is unavailable
  code_ = code;
}

Regex::~Regex() { pcre2_code_free(static_cast<pcre2_code*>(code_)); }

void Regex::find_all(std::string_view text, std::vector<std::pair<std::size_t, std::size_t>>& out) const {
  MatchState& state = match_state();
  auto* code = static_cast<pcre2_code*>(code_);
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  std::size_t search_from = 0;
  std::size_t last_match_end = static_cast<std::size_t>(-1);
  while (search_from <= text.size()) {
    const int rc = pcre2_match(code, subject, text.size(), search_from, PCRE2_NO_UTF_CHECK, state.data,
                               state.context);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) {
      PCRE2_UCHAR message[256];
      pcre2_get_error_message(rc, message, sizeof(message));
      fail(ErrorCode::limit_exceeded, "regex '" + pattern_ + "' failed on a " + std::to_string(text.size()) +
                                          "-byte piece: " + reinterpret_cast<char*>(message));
    }
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(state.data);
    const std::size_t start = ov[0], end = ov[1];
    if (start == end && end == last_match_end) {
      // Oniguruma skips an empty match right after the previous match and retries one character later.
      if (search_from >= text.size()) break;
      search_from += lead_length(static_cast<unsigned char>(text[search_from]));
      continue;
    }
    out.emplace_back(start, end);
    last_match_end = end;
    search_from = end;
    if (start == end) {
      if (search_from >= text.size()) break;
    }
  }
}

std::string regex_escape(std::string_view literal) {
  std::string out;
  for (char c : literal) {
    if (std::string_view("\\^$.|?*+()[]{}-#&~ \t\n").find(c) != std::string_view::npos && c != 0) {
      if (c == ' ') { out += "\\x20"; continue; }
      if (c == '\t') { out += "\\t"; continue; }
      if (c == '\n') { out += "\\n"; continue; }
      out += '\\';
    }
    out += c;
  }
  return out;
}

}  // namespace vlm::text
