// Normalizers, pre-tokenizers, post-processors and decoders of tokenizer.json, ported from the behaviour of
// Hugging Face `tokenizers` (see tests/fixtures/text/README.md for how each is checked against it).
#include <algorithm>
#include <array>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>
#include <utf8proc.h>

#include "base/error.h"
#include "text/pipeline.h"
#include "text/regex.h"
#include "text/unicode.h"

namespace vlm::text {
namespace {

using json = nlohmann::json;
using Ranges = std::vector<std::pair<std::size_t, std::size_t>>;

[[noreturn]] void bad(const std::string& where, const std::string& what) {
  fail(ErrorCode::corrupt_data, "tokenizer.json " + where + ": " + what);
}

const json& member(const json& j, const char* key, const std::string& where) {
  auto it = j.find(key);
  if (it == j.end()) bad(where, std::string("missing key \"") + key + "\"");
  return *it;
}

std::string get_string(const json& j, const char* key, const std::string& where) {
  const json& v = member(j, key, where);
  if (!v.is_string()) bad(where, std::string("\"") + key + "\" must be a string");
  return v.get<std::string>();
}

template <typename T>
T get_or(const json& j, const char* key, T fallback) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  return it->get<T>();
}

char32_t single_char(const std::string& s, const std::string& where) {
  if (s.empty() || count_code_points(s) != 1) bad(where, "expected a single character, got \"" + s + "\"");
  std::size_t i = 0;
  return next_code_point(s, i);
}

// A Split/Replace pattern: {"String": "..."} or {"Regex": "..."}.
struct Pattern {
  std::string literal;
  std::unique_ptr<Regex> regex;

  void find(std::string_view text, Ranges& out) const {
    if (regex) {
      regex->find_all(text, out);
      return;
    }
    if (literal.empty()) return;
    std::size_t pos = 0;
    while ((pos = text.find(literal, pos)) != std::string_view::npos) {
      out.emplace_back(pos, pos + literal.size());
      pos += literal.size();
    }
  }
};

Pattern make_pattern(const json& j, const std::string& where) {
  Pattern p;
  if (j.contains("Regex")) p.regex = std::make_unique<Regex>(j["Regex"].get<std::string>());
  else if (j.contains("String")) p.literal = j["String"].get<std::string>();
  else bad(where, "pattern must be {\"String\": ...} or {\"Regex\": ...}");
  return p;
}

void replace_all(std::string& text, const Pattern& pattern, const std::string& content) {
  Ranges ranges;
  pattern.find(text, ranges);
  if (ranges.empty()) return;
  std::string out;
  out.reserve(text.size());
  std::size_t prev = 0;
  for (auto [s, e] : ranges) {
    out.append(text, prev, s - prev);
    out += content;
    prev = e;
  }
  out.append(text, prev, std::string::npos);
  text.swap(out);
}

// ---------------------------------------------------------------------------------------------- normalizers

class UnicodeNormalizer : public Normalizer {
 public:
  explicit UnicodeNormalizer(NormalForm form) : form_(form) {}
  void normalize(std::string& text) const override { text = normalize_unicode(text, form_); }

 private:
  NormalForm form_;
};

class LowercaseNormalizer : public Normalizer {
 public:
  void normalize(std::string& text) const override {
    std::string out;
    out.reserve(text.size());
    std::size_t i = 0;
    while (i < text.size()) append_lowercase(out, next_code_point(text, i));
    text.swap(out);
  }
};

class PrependNormalizer : public Normalizer {
 public:
  explicit PrependNormalizer(std::string prefix) : prefix_(std::move(prefix)) {}
  void normalize(std::string& text) const override {
    if (!text.empty()) text.insert(0, prefix_);
  }

 private:
  std::string prefix_;
};

class ReplaceNormalizer : public Normalizer {
 public:
  ReplaceNormalizer(Pattern pattern, std::string content) : pattern_(std::move(pattern)), content_(std::move(content)) {}
  void normalize(std::string& text) const override { replace_all(text, pattern_, content_); }

 private:
  Pattern pattern_;
  std::string content_;
};

class StripNormalizer : public Normalizer {
 public:
  StripNormalizer(bool left, bool right) : left_(left), right_(right) {}
  void normalize(std::string& text) const override {
    std::size_t begin = 0, end = text.size();
    if (left_) {
      std::size_t i = 0;
      while (i < text.size()) {
        std::size_t at = i;
        if (!is_whitespace(next_code_point(text, i))) { begin = at; break; }
        begin = i;
      }
    }
    if (right_) {
      while (end > begin) {
        std::size_t start = end - 1;
        while (start > begin && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) --start;
        std::size_t i = start;
        if (!is_whitespace(next_code_point(text, i))) break;
        end = start;
      }
    }
    text = text.substr(begin, end - begin);
  }

 private:
  bool left_, right_;
};

class StripAccentsNormalizer : public Normalizer {
 public:
  void normalize(std::string& text) const override {
    if (is_ascii(text)) return;
    std::string out;
    out.reserve(text.size());
    std::size_t i = 0;
    while (i < text.size()) {
      std::size_t at = i;
      const char32_t c = next_code_point(text, i);
      if (!is_mark(c)) out.append(text, at, i - at);
    }
    text.swap(out);
  }
};

std::string base64_decode(const std::string& in, const std::string& where) {
  std::string out;
  out.reserve(in.size() * 3 / 4);
  std::uint32_t buffer = 0;
  int bits = 0;
  for (char c : in) {
    int v;
    if (c >= 'A' && c <= 'Z') v = c - 'A';
    else if (c >= 'a' && c <= 'z') v = c - 'a' + 26;
    else if (c >= '0' && c <= '9') v = c - '0' + 52;
    else if (c == '+') v = 62;
    else if (c == '/') v = 63;
    else if (c == '=' || c == '\n' || c == '\r') continue;
    else bad(where, "precompiled_charsmap is not valid base64");
    buffer = (buffer << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((buffer >> bits) & 0xFF);
    }
  }
  return out;
}

// SentencePiece's compiled normalization rules (T5, mT5, XLM-R, ...): a Darts double-array trie mapping UTF-8
// prefixes to replacement strings, applied per grapheme cluster as tokenizers' spm_precompiled does.
class PrecompiledNormalizer : public Normalizer {
 public:
  PrecompiledNormalizer(const std::string& base64, const std::string& where) {
    const std::string blob = base64_decode(base64, where);
    if (blob.size() < 4) bad(where, "precompiled_charsmap is truncated");
    const std::uint32_t trie_bytes = static_cast<std::uint8_t>(blob[0]) | (static_cast<std::uint8_t>(blob[1]) << 8) |
                                     (static_cast<std::uint8_t>(blob[2]) << 16) |
                                     (static_cast<std::uint32_t>(static_cast<std::uint8_t>(blob[3])) << 24);
    if (trie_bytes % 4 != 0 || 4 + static_cast<std::size_t>(trie_bytes) > blob.size() || trie_bytes == 0)
      bad(where, "precompiled_charsmap has an invalid trie size");
    trie_.resize(trie_bytes / 4);
    for (std::size_t k = 0; k < trie_.size(); ++k) {
      const auto* p = reinterpret_cast<const unsigned char*>(blob.data()) + 4 + 4 * k;
      trie_[k] = p[0] | (p[1] << 8) | (p[2] << 16) | (static_cast<std::uint32_t>(p[3]) << 24);
    }
    normalized_ = blob.substr(4 + trie_bytes);
  }

  void normalize(std::string& text) const override {
    std::string out;
    out.reserve(text.size());
    std::size_t i = 0;
    bool modified = false;
    while (i < text.size()) {
      // One extended grapheme cluster [i, end).
      const std::size_t start = i;
      utf8proc_int32_t state = 0;
      char32_t prev = next_code_point(text, i);
      while (i < text.size()) {
        std::size_t j = i;
        const char32_t c = next_code_point(text, j);
        if (utf8proc_grapheme_break_stateful(static_cast<utf8proc_int32_t>(prev), static_cast<utf8proc_int32_t>(c), &state))
          break;
        prev = c;
        i = j;
      }
      const std::string_view grapheme(text.data() + start, i - start);
      if (grapheme.size() < 6) {
        if (auto norm = transform(grapheme)) {
          out += *norm;
          modified = true;
          continue;
        }
      }
      std::size_t k = 0;
      while (k < grapheme.size()) {
        const std::size_t at = k;
        next_code_point(grapheme, k);
        const std::string_view part = grapheme.substr(at, k - at);
        if (auto norm = transform(part)) {
          out += *norm;
          modified = true;
        } else {
          out += part;
        }
      }
    }
    if (modified) text.swap(out);
  }

 private:
  // The replacement for the SHORTEST rule that is a prefix of `chunk` (what spm_precompiled takes).
  std::optional<std::string_view> transform(std::string_view chunk) const {
    auto offset = [](std::uint32_t unit) -> std::size_t { return (unit >> 10) << ((unit & (1u << 9)) >> 6); };
    std::size_t node = 0;
    std::uint32_t unit = trie_[0];
    node ^= offset(unit);
    for (unsigned char c : chunk) {
      if (c == 0) break;
      node ^= c;
      if (node >= trie_.size()) return std::nullopt;
      unit = trie_[node];
      if ((unit & ((1u << 31) | 0xFF)) != c) return std::nullopt;
      node ^= offset(unit);
      if ((unit >> 8) & 1) {
        if (node >= trie_.size()) return std::nullopt;
        const std::size_t index = trie_[node] & ((1u << 31) - 1);
        if (index >= normalized_.size()) return std::nullopt;
        const std::size_t end = normalized_.find('\0', index);
        return std::string_view(normalized_).substr(index, (end == std::string::npos ? normalized_.size() : end) - index);
      }
    }
    return std::nullopt;
  }

  std::vector<std::uint32_t> trie_;
  std::string normalized_;
};

// BERT's normalizer: control characters dropped, whitespace to ' ', CJK ideographs padded with spaces,
// accents stripped (nonspacing marks after NFD; default: when lowercasing), lowercase.
class BertNormalizer : public Normalizer {
 public:
  BertNormalizer(bool clean_text, bool chinese, bool strip_accents, bool lowercase)
      : clean_text_(clean_text), chinese_(chinese), strip_accents_(strip_accents), lowercase_(lowercase) {}
  void normalize(std::string& text) const override {
    std::string out;
    out.reserve(text.size() + 8);
    std::size_t i = 0;
    while (i < text.size()) {
      const std::size_t at = i;
      const char32_t c = next_code_point(text, i);
      if (clean_text_) {
        if (c == 0 || c == 0xFFFD || (c != '\t' && c != '\n' && c != '\r' && is_other(c))) continue;
        if (c == '\t' || c == '\n' || c == '\r' || is_whitespace(c)) {
          out += ' ';
          continue;
        }
      }
      if (chinese_ && is_chinese_char(c)) {
        out += ' ';
        out.append(text, at, i - at);
        out += ' ';
        continue;
      }
      out.append(text, at, i - at);
    }
    if (strip_accents_) {
      out = normalize_unicode(out, NormalForm::nfd);
      std::string kept;
      kept.reserve(out.size());
      std::size_t k = 0;
      while (k < out.size()) {
        const std::size_t at = k;
        const char32_t c = next_code_point(out, k);
        if (c < 0x80 || utf8proc_category(static_cast<utf8proc_int32_t>(c)) != UTF8PROC_CATEGORY_MN)
          kept.append(out, at, k - at);
      }
      out.swap(kept);
    }
    if (lowercase_) LowercaseNormalizer().normalize(out);
    text.swap(out);
  }

 private:
  // unicode_categories' is_other: Cc, Cf, Co, Cs (unassigned code points are kept).
  static bool is_other(char32_t c) {
    const auto cat = utf8proc_category(static_cast<utf8proc_int32_t>(c));
    return cat == UTF8PROC_CATEGORY_CC || cat == UTF8PROC_CATEGORY_CF ||
           cat == UTF8PROC_CATEGORY_CO || cat == UTF8PROC_CATEGORY_CS;
  }
  static bool is_chinese_char(char32_t c) {
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
           (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
           (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
  }
  bool clean_text_, chinese_, strip_accents_, lowercase_;
};

class SequenceNormalizer : public Normalizer {
 public:
  explicit SequenceNormalizer(std::vector<std::unique_ptr<Normalizer>> steps) : steps_(std::move(steps)) {}
  void normalize(std::string& text) const override {
    for (const auto& s : steps_) s->normalize(text);
  }

 private:
  std::vector<std::unique_ptr<Normalizer>> steps_;
};

// ------------------------------------------------------------------------------------------ pre-tokenizers

enum class Behavior { removed, isolated, merged_with_previous, merged_with_next, contiguous };

Behavior parse_behavior(const json& j, const std::string& where, Behavior fallback) {
  if (j.is_null()) return fallback;
  const std::string s = j.get<std::string>();
  if (s == "Removed") return Behavior::removed;
  if (s == "Isolated") return Behavior::isolated;
  if (s == "MergedWithPrevious") return Behavior::merged_with_previous;
  if (s == "MergedWithNext") return Behavior::merged_with_next;
  if (s == "Contiguous") return Behavior::contiguous;
  bad(where, "unknown split behavior \"" + s + "\"");
}

struct Segment {
  std::size_t start, end;
  bool flag;  // is_match before the behaviour; "remove" after it
};

// Turns match ranges into the covering list of (range, is_match), as tokenizers' Pattern::find_matches.
void matches_to_segments(std::size_t size, const Ranges& matches, bool invert, std::vector<Segment>& segs) {
  segs.clear();
  if (size == 0) {
    segs.push_back({0, 0, invert});
    return;
  }
  std::size_t prev = 0;
  for (auto [s, e] : matches) {
    if (prev != s) segs.push_back({prev, s, invert});
    segs.push_back({s, e, !invert});
    prev = e;
  }
  if (prev != size) segs.push_back({prev, size, invert});
}

// Applies a split behaviour and appends the non-empty resulting pieces to `out`.
void split_piece(const Piece& piece, std::vector<Segment>& segs, Behavior behavior, std::vector<Piece>& out) {
  std::vector<Segment> result;
  result.reserve(segs.size());
  switch (behavior) {
    case Behavior::isolated:
      for (auto s : segs) result.push_back({s.start, s.end, false});
      break;
    case Behavior::removed:
      result = segs;
      break;
    case Behavior::contiguous: {
      bool previous_match = false;
      for (auto s : segs) {
        if (s.flag == previous_match && !result.empty()) result.back().end = s.end;
        else result.push_back({s.start, s.end, false});
        previous_match = s.flag;
      }
      break;
    }
    case Behavior::merged_with_previous: {
      bool previous_match = false;
      for (auto s : segs) {
        if (s.flag && !previous_match && !result.empty()) result.back().end = s.end;
        else result.push_back({s.start, s.end, false});
        previous_match = s.flag;
      }
      break;
    }
    case Behavior::merged_with_next: {
      bool previous_match = false;
      for (auto it = segs.rbegin(); it != segs.rend(); ++it) {
        if (it->flag && !previous_match && !result.empty()) result.back().start = it->start;
        else result.push_back({it->start, it->end, false});
        previous_match = it->flag;
      }
      std::reverse(result.begin(), result.end());
      break;
    }
  }
  for (auto s : result) {
    if (s.flag || s.end == s.start) continue;
    out.push_back({piece.text.substr(s.start, s.end - s.start), piece.at_start && s.start == 0});
  }
}

// Each character for which `pred` holds is one match (tokenizers' char-predicate patterns).
template <typename Pred>
void char_matches(std::string_view text, Pred pred, Ranges& out) {
  std::size_t i = 0;
  while (i < text.size()) {
    const std::size_t at = i;
    const char32_t c = next_code_point(text, i);
    if (pred(c)) out.emplace_back(at, i);
  }
}

template <typename Finder>
void split_all(std::vector<Piece>& pieces, Behavior behavior, bool invert, Finder find) {
  std::vector<Piece> out;
  out.reserve(pieces.size() * 2);
  Ranges ranges;
  std::vector<Segment> segs;
  for (const Piece& p : pieces) {
    ranges.clear();
    find(p.text, ranges);
    matches_to_segments(p.text.size(), ranges, invert, segs);
    split_piece(p, segs, behavior, out);
  }
  pieces.swap(out);
}

class SplitPreTokenizer : public PreTokenizer {
 public:
  SplitPreTokenizer(Pattern pattern, Behavior behavior, bool invert)
      : pattern_(std::move(pattern)), behavior_(behavior), invert_(invert) {}
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    split_all(pieces, behavior_, invert_, [&](std::string_view t, Ranges& r) { pattern_.find(t, r); });
  }

 private:
  Pattern pattern_;
  Behavior behavior_;
  bool invert_;
};

class CharPreTokenizer : public PreTokenizer {
 public:
  enum class Kind { whitespace_split, digits, punctuation, delimiter, bert };
  CharPreTokenizer(Kind kind, Behavior behavior, char32_t delimiter = 0)
      : kind_(kind), behavior_(behavior), delimiter_(delimiter) {}
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    switch (kind_) {
      case Kind::whitespace_split:
        split_all(pieces, Behavior::removed, false,
                  [](std::string_view t, Ranges& r) { char_matches(t, is_whitespace, r); });
        break;
      case Kind::digits:
        split_all(pieces, behavior_, false, [](std::string_view t, Ranges& r) { char_matches(t, is_numeric, r); });
        break;
      case Kind::punctuation:
        split_all(pieces, behavior_, false,
                  [](std::string_view t, Ranges& r) { char_matches(t, is_punctuation, r); });
        break;
      case Kind::delimiter: {
        const char32_t d = delimiter_;
        split_all(pieces, Behavior::removed, false,
                  [d](std::string_view t, Ranges& r) { char_matches(t, [d](char32_t c) { return c == d; }, r); });
        break;
      }
      case Kind::bert:
        split_all(pieces, Behavior::removed, false,
                  [](std::string_view t, Ranges& r) { char_matches(t, is_whitespace, r); });
        split_all(pieces, Behavior::isolated, false,
                  [](std::string_view t, Ranges& r) { char_matches(t, is_punctuation, r); });
        break;
    }
  }

 private:
  Kind kind_;
  Behavior behavior_;
  char32_t delimiter_;
};

class WhitespacePreTokenizer : public PreTokenizer {
 public:
  WhitespacePreTokenizer() : regex_("\\w+|[^\\w\\s]+", /*rust_classes=*/true) {}
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    split_all(pieces, Behavior::removed, true, [&](std::string_view t, Ranges& r) { regex_.find_all(t, r); });
  }

 private:
  Regex regex_;
};

constexpr const char* kGpt2Pattern =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

class ByteLevelPreTokenizer : public PreTokenizer {
 public:
  ByteLevelPreTokenizer(bool add_prefix_space, bool use_regex)
      : add_prefix_space_(add_prefix_space), regex_(use_regex ? std::make_unique<Regex>(kGpt2Pattern) : nullptr) {}
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    if (add_prefix_space_) {
      for (Piece& p : pieces)
        if (p.text.empty() || p.text[0] != ' ') p.text.insert(0, 1, ' ');
    }
    if (regex_) {
      split_all(pieces, Behavior::isolated, false, [&](std::string_view t, Ranges& r) { regex_->find_all(t, r); });
    }
    for (Piece& p : pieces) {
      std::string mapped;
      mapped.reserve(p.text.size() * 2);
      for (unsigned char b : p.text) mapped += byte_to_char(b);
      p.text.swap(mapped);
    }
  }

 private:
  bool add_prefix_space_;
  std::unique_ptr<Regex> regex_;
};

enum class PrependScheme { always, first, never };

PrependScheme parse_prepend_scheme(const json& j, const std::string& where) {
  auto it = j.find("prepend_scheme");
  if (it != j.end() && !it->is_null()) {
    const std::string s = it->get<std::string>();
    if (s == "always") return PrependScheme::always;
    if (s == "first") return PrependScheme::first;
    if (s == "never") return PrependScheme::never;
    bad(where, "unknown prepend_scheme \"" + s + "\"");
  }
  return get_or<bool>(j, "add_prefix_space", true) ? PrependScheme::always : PrependScheme::never;
}

class MetaspacePreTokenizer : public PreTokenizer {
 public:
  MetaspacePreTokenizer(std::string replacement, PrependScheme scheme, bool split)
      : replacement_(std::move(replacement)), scheme_(scheme), split_(split) {}
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    Pattern space;
    space.literal = " ";
    for (Piece& p : pieces) {
      replace_all(p.text, space, replacement_);
      const bool starts = p.text.compare(0, replacement_.size(), replacement_) == 0;
      if (!starts && (scheme_ == PrependScheme::always || (scheme_ == PrependScheme::first && p.at_start)))
        p.text.insert(0, replacement_);
    }
    if (split_) {
      const std::string& rep = replacement_;
      split_all(pieces, Behavior::merged_with_next, false, [&rep](std::string_view t, Ranges& r) {
        std::size_t pos = 0;
        while ((pos = t.find(rep, pos)) != std::string_view::npos) {
          r.emplace_back(pos, pos + rep.size());
          pos += rep.size();
        }
      });
    } else {
      pieces.erase(std::remove_if(pieces.begin(), pieces.end(), [](const Piece& p) { return p.text.empty(); }),
                   pieces.end());
    }
  }

 private:
  std::string replacement_;
  PrependScheme scheme_;
  bool split_;
};

class SequencePreTokenizer : public PreTokenizer {
 public:
  explicit SequencePreTokenizer(std::vector<std::unique_ptr<PreTokenizer>> steps) : steps_(std::move(steps)) {}
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    for (const auto& s : steps_) s->pre_tokenize(pieces);
  }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> steps_;
};

// ----------------------------------------------------------------------------------------- post-processors

class TemplatePostProcessor : public PostProcessor {
 public:
  // Each item is either a run of special ids or the sequence itself (marked by `is_sequence`).
  struct Item {
    bool is_sequence;
    std::vector<std::int32_t> ids;
  };
  explicit TemplatePostProcessor(std::vector<Item> items) : items_(std::move(items)) {}
  void process(std::vector<std::int32_t>& ids) const override {
    std::vector<std::int32_t> out;
    out.reserve(ids.size() + 4);
    for (const Item& item : items_) {
      if (item.is_sequence) out.insert(out.end(), ids.begin(), ids.end());
      else out.insert(out.end(), item.ids.begin(), item.ids.end());
    }
    ids.swap(out);
  }

 private:
  std::vector<Item> items_;
};

class NoopPostProcessor : public PostProcessor {
 public:
  void process(std::vector<std::int32_t>&) const override {}
};

class SequencePostProcessor : public PostProcessor {
 public:
  explicit SequencePostProcessor(std::vector<std::unique_ptr<PostProcessor>> steps) : steps_(std::move(steps)) {}
  void process(std::vector<std::int32_t>& ids) const override {
    for (const auto& s : steps_) s->process(ids);
  }

 private:
  std::vector<std::unique_ptr<PostProcessor>> steps_;
};

// ---------------------------------------------------------------------------------------------- decoders

class ByteLevelDecoder : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string bytes;
    for (const std::string& t : tokens) {
      const std::size_t mark = bytes.size();
      std::size_t i = 0;
      bool all_mapped = true;
      while (i < t.size()) {
        const int b = char_to_byte(next_code_point(t, i));
        if (b < 0) { all_mapped = false; break; }
        bytes += static_cast<char>(b);
      }
      if (!all_mapped) {  // a token outside the byte alphabet (an added token) keeps its own bytes
        bytes.resize(mark);
        bytes += t;
      }
    }
    tokens.assign(1, to_valid_utf8(bytes));
  }
};

class MetaspaceDecoder : public Decoder {
 public:
  MetaspaceDecoder(char32_t replacement, PrependScheme scheme) : replacement_(replacement), scheme_(scheme) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (std::size_t k = 0; k < tokens.size(); ++k) {
      std::string out;
      const std::string& t = tokens[k];
      std::size_t i = 0;
      while (i < t.size()) {
        const std::size_t at = i;
        const char32_t c = next_code_point(t, i);
        if (c == replacement_) {
          if (!(k == 0 && scheme_ != PrependScheme::never)) out += ' ';
        } else {
          out.append(t, at, i - at);
        }
      }
      tokens[k].swap(out);
    }
  }

 private:
  char32_t replacement_;
  PrependScheme scheme_;
};

class ReplaceDecoder : public Decoder {
 public:
  ReplaceDecoder(Pattern pattern, std::string content) : pattern_(std::move(pattern)), content_(std::move(content)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (std::string& t : tokens) replace_all(t, pattern_, content_);
  }

 private:
  Pattern pattern_;
  std::string content_;
};

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

class ByteFallbackDecoder : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::vector<std::string> out;
    out.reserve(tokens.size());
    std::string pending;
    std::size_t pending_count = 0;
    auto flush = [&] {
      if (pending_count == 0) return;
      if (is_valid_utf8(pending)) out.push_back(pending);
      else
        for (std::size_t k = 0; k < pending_count; ++k) out.emplace_back("\xEF\xBF\xBD");
      pending.clear();
      pending_count = 0;
    };
    for (std::string& t : tokens) {
      int value = -1;
      if (t.size() == 6 && t.compare(0, 3, "<0x") == 0 && t[5] == '>') {
        const int hi = hex_value(t[3]), lo = hex_value(t[4]);
        if (hi >= 0 && lo >= 0) value = hi * 16 + lo;
      }
      if (value >= 0) {
        pending += static_cast<char>(value);
        ++pending_count;
      } else {
        flush();
        out.push_back(std::move(t));
      }
    }
    flush();
    tokens.swap(out);
  }
};

class FuseDecoder : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string all;
    for (const auto& t : tokens) all += t;
    tokens.assign(1, std::move(all));
  }
};

class StripDecoder : public Decoder {
 public:
  StripDecoder(char32_t content, std::size_t start, std::size_t stop) : content_(content), start_(start), stop_(stop) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (std::string& t : tokens) {
      std::vector<std::size_t> bounds;  // byte offset of each char, plus the end
      std::vector<char32_t> chars;
      std::size_t i = 0;
      while (i < t.size()) {
        bounds.push_back(i);
        chars.push_back(next_code_point(t, i));
      }
      bounds.push_back(t.size());
      std::size_t start_cut = 0;
      for (std::size_t k = 0; k < std::min(start_, chars.size()); ++k) {
        if (chars[k] != content_) break;
        start_cut = k + 1;
      }
      std::size_t stop_cut = chars.size();
      for (std::size_t k = 0; k < stop_ && k < chars.size(); ++k) {
        const std::size_t index = chars.size() - k - 1;
        if (chars[index] != content_) break;
        stop_cut = index;
      }
      if (stop_cut < start_cut) stop_cut = start_cut;
      t = t.substr(bounds[start_cut], bounds[stop_cut] - bounds[start_cut]);
    }
  }

 private:
  char32_t content_;
  std::size_t start_, stop_;
};

void replace_literal(std::string& s, std::string_view from, std::string_view to) {
  std::size_t pos = 0;
  std::string out;
  bool any = false;
  std::size_t prev = 0;
  while ((pos = s.find(from, pos)) != std::string::npos) {
    any = true;
    out.append(s, prev, pos - prev);
    out += to;
    pos += from.size();
    prev = pos;
  }
  if (!any) return;
  out.append(s, prev, std::string::npos);
  s.swap(out);
}

class WordPieceDecoder : public Decoder {
 public:
  WordPieceDecoder(std::string prefix, bool cleanup) : prefix_(std::move(prefix)), cleanup_(cleanup) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (std::size_t i = 0; i < tokens.size(); ++i) {
      std::string& t = tokens[i];
      if (i != 0) {
        if (t.compare(0, prefix_.size(), prefix_) == 0) t.erase(0, prefix_.size());
        else t.insert(0, 1, ' ');
      }
      if (cleanup_) {
        static const std::pair<const char*, const char*> kRules[] = {
            {" .", "."}, {" ?", "?"}, {" !", "!"}, {" ,", ","}, {" ' ", "'"}, {" n't", "n't"},
            {" 'm", "'m"}, {" do not", " don't"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"}};
        for (auto [from, to] : kRules) replace_literal(t, from, to);
      }
    }
  }

 private:
  std::string prefix_;
  bool cleanup_;
};

class BpeSuffixDecoder : public Decoder {
 public:
  explicit BpeSuffixDecoder(std::string suffix) : suffix_(std::move(suffix)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (std::size_t i = 0; i < tokens.size(); ++i)
      replace_literal(tokens[i], suffix_, i + 1 == tokens.size() ? "" : " ");
  }

 private:
  std::string suffix_;
};

class SequenceDecoder : public Decoder {
 public:
  explicit SequenceDecoder(std::vector<std::unique_ptr<Decoder>> steps) : steps_(std::move(steps)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (const auto& s : steps_) s->decode_chain(tokens);
  }

 private:
  std::vector<std::unique_ptr<Decoder>> steps_;
};

std::string type_of(const json& j, const std::string& where) {
  if (!j.is_object()) bad(where, "expected an object");
  return get_string(j, "type", where);
}

template <typename T, typename Make>
std::vector<std::unique_ptr<T>> make_list(const json& j, const char* key, const std::string& where, Make make) {
  std::vector<std::unique_ptr<T>> steps;
  const json& list = member(j, key, where);
  if (!list.is_array()) bad(where, std::string("\"") + key + "\" must be a list");
  for (std::size_t i = 0; i < list.size(); ++i) {
    auto step = make(list[i], where + "." + key + "[" + std::to_string(i) + "]");
    if (step) steps.push_back(std::move(step));
  }
  return steps;
}

}  // namespace

const std::string& byte_to_char(unsigned char b) {
  static const std::array<std::string, 256> table = [] {
    std::array<std::string, 256> t;
    int n = 0;
    for (int c = 0; c < 256; ++c) {
      const bool printable = (c >= '!' && c <= '~') || (c >= 0xA1 && c <= 0xAC) || (c >= 0xAE && c <= 0xFF);
      std::string s;
      append_utf8(s, printable ? static_cast<char32_t>(c) : static_cast<char32_t>(256 + n++));
      t[c] = s;
    }
    return t;
  }();
  return table[b];
}

int char_to_byte(char32_t c) {
  static const std::array<int, 324> table = [] {
    std::array<int, 324> t;
    t.fill(-1);
    for (int b = 0; b < 256; ++b) {
      std::size_t i = 0;
      t[next_code_point(byte_to_char(static_cast<unsigned char>(b)), i)] = b;
    }
    return t;
  }();
  return c < table.size() ? table[c] : -1;
}

std::unique_ptr<Normalizer> make_normalizer(const json& j, const std::string& where) {
  if (j.is_null()) return nullptr;
  const std::string type = type_of(j, where);
  if (type == "NFC") return std::make_unique<UnicodeNormalizer>(NormalForm::nfc);
  if (type == "NFD") return std::make_unique<UnicodeNormalizer>(NormalForm::nfd);
  if (type == "NFKC") return std::make_unique<UnicodeNormalizer>(NormalForm::nfkc);
  if (type == "NFKD") return std::make_unique<UnicodeNormalizer>(NormalForm::nfkd);
  if (type == "Lowercase") return std::make_unique<LowercaseNormalizer>();
  if (type == "StripAccents") return std::make_unique<StripAccentsNormalizer>();
  if (type == "Prepend") return std::make_unique<PrependNormalizer>(get_string(j, "prepend", where));
  if (type == "Replace")
    return std::make_unique<ReplaceNormalizer>(make_pattern(member(j, "pattern", where), where),
                                               get_string(j, "content", where));
  if (type == "Strip")
    return std::make_unique<StripNormalizer>(get_or<bool>(j, "strip_left", true), get_or<bool>(j, "strip_right", true));
  if (type == "BertNormalizer") {
    const bool lowercase = get_or<bool>(j, "lowercase", true);
    return std::make_unique<BertNormalizer>(get_or<bool>(j, "clean_text", true),
                                            get_or<bool>(j, "handle_chinese_chars", true),
                                            get_or<bool>(j, "strip_accents", lowercase), lowercase);
  }
  if (type == "Precompiled")
    return std::make_unique<PrecompiledNormalizer>(get_string(j, "precompiled_charsmap", where), where);
  if (type == "Sequence")
    return std::make_unique<SequenceNormalizer>(make_list<Normalizer>(j, "normalizers", where, make_normalizer));
  fail(ErrorCode::unsupported, "tokenizer.json " + where + ": normalizer type \"" + type +
                                   "\" is not supported (supported: NFC, NFD, NFKC, NFKD, Lowercase, StripAccents, "
                                   "Prepend, Replace, Strip, Precompiled, BertNormalizer, Sequence)");
}

std::unique_ptr<PreTokenizer> make_pre_tokenizer(const json& j, const std::string& where) {
  if (j.is_null()) return nullptr;
  const std::string type = type_of(j, where);
  if (type == "Split")
    return std::make_unique<SplitPreTokenizer>(make_pattern(member(j, "pattern", where), where),
                                               parse_behavior(member(j, "behavior", where), where, Behavior::isolated),
                                               get_or<bool>(j, "invert", false));
  if (type == "ByteLevel")
    return std::make_unique<ByteLevelPreTokenizer>(get_or<bool>(j, "add_prefix_space", true),
                                                   get_or<bool>(j, "use_regex", true));
  if (type == "Metaspace")
    return std::make_unique<MetaspacePreTokenizer>(get_or<std::string>(j, "replacement", "\xE2\x96\x81"),
                                                   parse_prepend_scheme(j, where), get_or<bool>(j, "split", true));
  if (type == "Whitespace") return std::make_unique<WhitespacePreTokenizer>();
  if (type == "WhitespaceSplit")
    return std::make_unique<CharPreTokenizer>(CharPreTokenizer::Kind::whitespace_split, Behavior::removed);
  if (type == "BertPreTokenizer")
    return std::make_unique<CharPreTokenizer>(CharPreTokenizer::Kind::bert, Behavior::removed);
  if (type == "Digits")
    return std::make_unique<CharPreTokenizer>(CharPreTokenizer::Kind::digits,
                                              get_or<bool>(j, "individual_digits", false) ? Behavior::isolated
                                                                                          : Behavior::contiguous);
  if (type == "Punctuation")
    return std::make_unique<CharPreTokenizer>(
        CharPreTokenizer::Kind::punctuation,
        parse_behavior(j.contains("behavior") ? j["behavior"] : json(), where, Behavior::isolated));
  if (type == "CharDelimiterSplit")
    return std::make_unique<CharPreTokenizer>(CharPreTokenizer::Kind::delimiter, Behavior::removed,
                                              single_char(get_string(j, "delimiter", where), where));
  if (type == "Sequence")
    return std::make_unique<SequencePreTokenizer>(make_list<PreTokenizer>(j, "pretokenizers", where, make_pre_tokenizer));
  fail(ErrorCode::unsupported, "tokenizer.json " + where + ": pre-tokenizer type \"" + type +
                                   "\" is not supported (supported: Split, ByteLevel, Metaspace, Whitespace, "
                                   "WhitespaceSplit, BertPreTokenizer, Digits, Punctuation, CharDelimiterSplit, Sequence)");
}

std::unique_ptr<PostProcessor> make_post_processor(const json& j, const std::string& where) {
  if (j.is_null()) return nullptr;
  const std::string type = type_of(j, where);
  if (type == "ByteLevel") return std::make_unique<NoopPostProcessor>();
  if (type == "RobertaProcessing" || type == "BertProcessing") {
    const json& cls = member(j, "cls", where);
    const json& sep = member(j, "sep", where);
    if (!cls.is_array() || cls.size() != 2 || !sep.is_array() || sep.size() != 2)
      bad(where, "\"cls\" and \"sep\" must be [token, id] pairs");
    std::vector<TemplatePostProcessor::Item> items = {{false, {cls[1].get<std::int32_t>()}},
                                                      {true, {}},
                                                      {false, {sep[1].get<std::int32_t>()}}};
    return std::make_unique<TemplatePostProcessor>(std::move(items));
  }
  if (type == "TemplateProcessing") {
    const json& single = member(j, "single", where);
    const json& specials = member(j, "special_tokens", where);
    std::vector<TemplatePostProcessor::Item> items;
    for (const json& piece : single) {
      if (piece.contains("Sequence")) {
        items.push_back({true, {}});
      } else if (piece.contains("SpecialToken")) {
        const std::string id = get_string(piece["SpecialToken"], "id", where + ".single");
        auto it = specials.find(id);
        if (it == specials.end()) bad(where, "special token \"" + id + "\" used in \"single\" is not in special_tokens");
        items.push_back({false, member(*it, "ids", where + ".special_tokens").get<std::vector<std::int32_t>>()});
      } else {
        bad(where, "each \"single\" item must be a Sequence or a SpecialToken");
      }
    }
    return std::make_unique<TemplatePostProcessor>(std::move(items));
  }
  if (type == "Sequence")
    return std::make_unique<SequencePostProcessor>(make_list<PostProcessor>(j, "processors", where, make_post_processor));
  fail(ErrorCode::unsupported, "tokenizer.json " + where + ": post-processor type \"" + type +
                                   "\" is not supported (supported: TemplateProcessing, ByteLevel, "
                                   "RobertaProcessing, BertProcessing, Sequence)");
}

std::unique_ptr<Decoder> make_decoder(const json& j, const std::string& where) {
  if (j.is_null()) return nullptr;
  const std::string type = type_of(j, where);
  if (type == "ByteLevel") return std::make_unique<ByteLevelDecoder>();
  if (type == "Metaspace")
    return std::make_unique<MetaspaceDecoder>(
        single_char(get_or<std::string>(j, "replacement", "\xE2\x96\x81"), where), parse_prepend_scheme(j, where));
  if (type == "Replace")
    return std::make_unique<ReplaceDecoder>(make_pattern(member(j, "pattern", where), where),
                                            get_string(j, "content", where));
  if (type == "ByteFallback") return std::make_unique<ByteFallbackDecoder>();
  if (type == "Fuse") return std::make_unique<FuseDecoder>();
  if (type == "Strip")
    return std::make_unique<StripDecoder>(single_char(get_string(j, "content", where), where),
                                          get_or<std::size_t>(j, "start", 0), get_or<std::size_t>(j, "stop", 0));
  if (type == "WordPiece")
    return std::make_unique<WordPieceDecoder>(get_or<std::string>(j, "prefix", "##"), get_or<bool>(j, "cleanup", true));
  if (type == "BPEDecoder") return std::make_unique<BpeSuffixDecoder>(get_or<std::string>(j, "suffix", "</w>"));
  if (type == "Sequence")
    return std::make_unique<SequenceDecoder>(make_list<Decoder>(j, "decoders", where, make_decoder));
  fail(ErrorCode::unsupported, "tokenizer.json " + where + ": decoder type \"" + type +
                                   "\" is not supported (supported: ByteLevel, Metaspace, Replace, ByteFallback, "
                                   "Fuse, Strip, WordPiece, BPEDecoder, Sequence)");
}

}  // namespace vlm::text
