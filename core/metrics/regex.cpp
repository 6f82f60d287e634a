#define PCRE2_CODE_UNIT_WIDTH 8
#include "metrics/regex.h"

#include <pcre2.h>

#include "base/error.h"

namespace vlm::metrics {

struct Regex::Impl {
  pcre2_code* code = nullptr;
  std::string pattern;
  std::string what;
  ~Impl() {
    if (code) pcre2_code_free(code);
  }
};

namespace {
std::string pcre2_message(int rc) {
  PCRE2_UCHAR buf[256];
  pcre2_get_error_message(rc, buf, sizeof buf);
  return reinterpret_cast<const char*>(buf);
}

// One match-data block per thread, reused by every pattern with at most 15 capture groups (all of ours); a user
// pattern with more gets its own block.
struct MatchData {
  explicit MatchData(const pcre2_code* code) {
    uint32_t captures = 0;
    pcre2_pattern_info(code, PCRE2_INFO_CAPTURECOUNT, &captures);
    if (captures < 16) {
      thread_local struct Holder {
        pcre2_match_data* data = pcre2_match_data_create(16, nullptr);
        ~Holder() { pcre2_match_data_free(data); }
      } holder;
      data = holder.data;
    } else {
      owned = pcre2_match_data_create_from_pattern(code, nullptr);
      data = owned;
    }
    if (!data) fail(ErrorCode::out_of_memory, "PCRE2 could not allocate match data");
  }
  ~MatchData() {
    if (owned) pcre2_match_data_free(owned);
  }
  MatchData(const MatchData&) = delete;
  MatchData& operator=(const MatchData&) = delete;
  pcre2_match_data* data = nullptr;
  pcre2_match_data* owned = nullptr;
};
}  // namespace

Regex::Regex(const std::string& pattern, const std::string& what, bool unicode_classes, bool multiline)
    : impl_(std::make_unique<Impl>()) {
  impl_->pattern = pattern;
  impl_->what = what;
  int err = 0;
  PCRE2_SIZE offset = 0;
  uint32_t options = PCRE2_UTF;
  if (unicode_classes) options |= PCRE2_UCP;
  if (multiline) options |= PCRE2_MULTILINE;
  impl_->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), options, &err, &offset,
                              nullptr);
  if (!impl_->code) {
    fail(ErrorCode::invalid_argument, what + ": the regular expression does not compile at offset " +
                                          std::to_string(offset) + ": " + pcre2_message(err) +
                                          " (PCRE2 syntax; pattern: " + pattern.substr(0, 200) + ")");
  }
  pcre2_jit_compile(impl_->code, PCRE2_JIT_COMPLETE);  // falls back to the interpreter when JIT is unavailable
}

Regex::~Regex() = default;
Regex::Regex(Regex&&) noexcept = default;
Regex& Regex::operator=(Regex&&) noexcept = default;

bool Regex::search(std::string_view subject) const {
  MatchData md(impl_->code);
  int rc = pcre2_match(impl_->code, reinterpret_cast<PCRE2_SPTR>(subject.data()), subject.size(), 0,
                       PCRE2_NO_UTF_CHECK, md.data, nullptr);
  if (rc == PCRE2_ERROR_NOMATCH) return false;
  if (rc < 0) fail(ErrorCode::limit_exceeded, impl_->what + ": matching failed: " + pcre2_message(rc));
  return true;
}

bool Regex::find(std::string_view subject, size_t start, std::vector<std::pair<size_t, size_t>>& groups,
                 bool anchored) const {
  MatchData md(impl_->code);
  int rc = pcre2_match(impl_->code, reinterpret_cast<PCRE2_SPTR>(subject.data()), subject.size(), start,
                       PCRE2_NO_UTF_CHECK | (anchored ? PCRE2_ANCHORED : 0u), md.data, nullptr);
  if (rc == PCRE2_ERROR_NOMATCH) return false;
  if (rc < 0) fail(ErrorCode::limit_exceeded, impl_->what + ": matching failed: " + pcre2_message(rc));
  uint32_t captures = 0;
  pcre2_pattern_info(impl_->code, PCRE2_INFO_CAPTURECOUNT, &captures);
  const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md.data);
  const uint32_t pairs = pcre2_get_ovector_count(md.data);
  groups.assign(captures + 1, {std::string_view::npos, std::string_view::npos});
  for (uint32_t g = 0; g <= captures && g < pairs && g < static_cast<uint32_t>(rc); ++g) {
    if (ov[2 * g] != PCRE2_UNSET) groups[g] = {ov[2 * g], ov[2 * g + 1]};
  }
  return true;
}

bool Regex::replace_all_in_place(std::string& text, std::string_view replacement) const {
  MatchData md(impl_->code);
  auto* subj = reinterpret_cast<PCRE2_SPTR>(text.data());
  // Most rules match nothing in most texts: skip the substitution machinery then.
  int rc = pcre2_match(impl_->code, subj, text.size(), 0, PCRE2_NO_UTF_CHECK, md.data, nullptr);
  if (rc == PCRE2_ERROR_NOMATCH) return false;
  if (rc < 0) fail(ErrorCode::limit_exceeded, impl_->what + ": matching failed: " + pcre2_message(rc));

  std::string out(text.size() * 2 + 64, '\0');
  for (int attempt = 0; attempt < 2; ++attempt) {
    PCRE2_SIZE out_len = out.size();
    rc = pcre2_substitute(impl_->code, subj, text.size(), 0,
                          PCRE2_SUBSTITUTE_GLOBAL | PCRE2_SUBSTITUTE_OVERFLOW_LENGTH | PCRE2_NO_UTF_CHECK, md.data,
                          nullptr, reinterpret_cast<PCRE2_SPTR>(replacement.data()), replacement.size(),
                          reinterpret_cast<PCRE2_UCHAR*>(out.data()), &out_len);
    if (rc >= 0) {
      out.resize(out_len);
      text.swap(out);
      return true;
    }
    if (rc == PCRE2_ERROR_NOMEMORY) {
      out.assign(out_len, '\0');  // out_len now holds the size needed
      continue;
    }
    fail(ErrorCode::invalid_argument, impl_->what + ": substitution failed: " + pcre2_message(rc));
  }
  fail(ErrorCode::internal, impl_->what + ": substitution output size changed between attempts");
}

std::string Regex::replace_all(std::string_view subject, std::string_view replacement) const {
  std::string text(subject);
  replace_all_in_place(text, replacement);
  return text;
}

}  // namespace vlm::metrics
