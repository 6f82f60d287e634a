#include "metrics/punkt.h"

#include <memory>
#include <unordered_map>
#include <unordered_set>

#include "metrics/regex.h"
#include "metrics/unicode.h"

namespace vlm::metrics {
namespace {

#include "metrics/punkt_english.inc"

constexpr int kOrthoBegUc = 1 << 1, kOrthoMidUc = 1 << 2, kOrthoUnkUc = 1 << 3;
constexpr int kOrthoBegLc = 1 << 4, kOrthoMidLc = 1 << 5, kOrthoUnkLc = 1 << 6;
constexpr int kOrthoUc = kOrthoBegUc + kOrthoMidUc + kOrthoUnkUc;
constexpr int kOrthoLc = kOrthoBegLc + kOrthoMidLc + kOrthoUnkLc;

using Groups = std::vector<std::pair<size_t, size_t>>;
constexpr size_t npos = std::string_view::npos;

char32_t first_code_point(std::string_view s) {
  std::u32string cps = decode_utf8(s.substr(0, std::min<size_t>(4, s.size())));
  return cps.empty() ? 0 : cps[0];
}

struct Token {
  std::string tok;
  std::string type;
  bool period_final = false;
  bool sentbreak = false;
  bool abbr = false;
  bool ellipsis = false;

  std::string type_no_period() const {
    if (type.size() > 1 && type.back() == '.') return type.substr(0, type.size() - 1);
    return type;
  }
  std::string type_no_sentperiod() const { return sentbreak ? type_no_period() : type; }
  bool first_upper() const { return python_isupper(first_code_point(tok)); }
  bool first_lower() const { return python_islower(first_code_point(tok)); }
};

enum class Tri { no, yes, unknown };

class Punkt {
 public:
  Punkt() {
    for (const char* s : kPunktAbbrevTypes) abbrev_.insert(s);
    for (const char* s : kPunktSentStarters) starters_.insert(s);
    for (const auto& c : kPunktCollocations) collocations_.insert(std::string(c[0]) + '\t' + c[1]);
    for (const auto& o : kPunktOrthoContext) ortho_[o.type] = o.flags;

    const std::string space = pcre2_class_body(CharClass::regex_module_space);
    const std::string s = "[" + space + "]";
    const std::string ns = "[^" + space + "]";
    const std::string d = pcre2_class_body(CharClass::regex_module_digit);
    const std::string non_word = "(?:[)\";}\\]*:@'({\\[\\x{2018}\\x{2019}\\x{201C}\\x{201D}\\x{AB}\\x{BB}?!])";
    const std::string multi_char = "(?:-{2,}|\\.{2,}|(?:\\." + s + "){2,}\\.)";
    const std::string word_start = "[^(\"`{\\[:;&#*@)}\\]\\-,]";
    word_re_ = std::make_unique<Regex>(
        "(" + multi_char + "|(?=" + word_start + ")" + ns + "+?(?=" + s + "|$|" + non_word + "|" + multi_char +
            "|,(?=$|" + s + "|" + non_word + "|" + multi_char + "))|" + ns + ")",
        "punkt word tokenizer");
    period_context_re_ = std::make_unique<Regex>(
        "[\\.\\?!](?=(" + non_word + "|" + s + "+(" + ns + "+)))", "punkt period context");
    realign_re_ = std::make_unique<Regex>(
        "[\"')\\]}\\x{2018}\\x{2019}\\x{201C}\\x{201D}\\x{AB}\\x{BB}]+?(?:" + s + "+|(?=--)|$)",
        "punkt boundary realignment", false, /*multiline=*/true);
    numeric_re_ = std::make_unique<Regex>("^-?[\\.,]?[" + d + "][" + d + ",\\.\\-]*\\.?$", "punkt numeric");
  }

  std::vector<std::string> sentences(std::string_view text) const {
    std::vector<std::pair<size_t, size_t>> slices = slices_from_text(text);
    std::vector<std::string> out;
    // _realign_boundaries over (slice, next slice) pairs.
    size_t realign = 0;
    for (size_t i = 0; i < slices.size(); ++i) {
      std::pair<size_t, size_t> s1{slices[i].first + realign, slices[i].second};
      auto nonempty = [&](std::pair<size_t, size_t> sl) { return sl.first < sl.second && sl.first < text.size(); };
      if (i + 1 == slices.size()) {
        if (nonempty(s1)) out.emplace_back(text.substr(s1.first, s1.second - s1.first));
        continue;
      }
      const auto& s2 = slices[i + 1];
      std::string_view t2 = s2.first < s2.second ? text.substr(s2.first, s2.second - s2.first) : std::string_view();
      Groups g;
      if (realign_re_->find(t2, 0, g, /*anchored=*/true)) {
        std::string_view m = t2.substr(g[0].first, g[0].second - g[0].first);
        const size_t end = s2.first + python_rstrip(m).size();
        // Yielded even when empty, as nltk does.
        out.emplace_back(s1.first < end ? text.substr(s1.first, end - s1.first) : std::string_view());
        realign = g[0].second;
      } else {
        realign = 0;
        if (nonempty(s1)) out.emplace_back(text.substr(s1.first, s1.second - s1.first));
      }
    }
    return out;
  }

 private:
  bool is_ellipsis(const std::string& tok) const {
    if (tok.size() < 2) return false;
    for (char c : tok) {
      if (c != '.') return false;
    }
    return true;
  }
  // [^\W\d]\.$ : one word character that is not a digit, then the period.
  bool is_initial(const std::string& tok) const {
    std::u32string cps = decode_utf8(tok);
    return cps.size() == 2 && cps[1] == '.' && in_char_class(CharClass::regex_module_word, cps[0]) &&
           !in_char_class(CharClass::regex_module_digit, cps[0]);
  }

  Token make_token(std::string tok) const {
    Token t;
    t.type = python_lower_utf8(tok);
    if (numeric_re_->search(t.type)) t.type = "##number##";
    t.period_final = !tok.empty() && tok.back() == '.';
    t.tok = std::move(tok);
    return t;
  }

  // _tokenize_words: PunktLanguageVars.word_tokenize on every non-blank line.
  std::vector<Token> tokenize_words(std::string_view text) const {
    std::vector<Token> out;
    size_t pos = 0;
    while (pos <= text.size()) {
      size_t nl = text.find('\n', pos);
      if (nl == npos) nl = text.size();
      std::string_view line = text.substr(pos, nl - pos);
      if (!python_strip(line).empty()) {
        Groups g;
        size_t at = 0;
        while (at < line.size() && word_re_->find(line, at, g)) {
          out.push_back(make_token(std::string(line.substr(g[0].first, g[0].second - g[0].first))));
          at = g[0].second > g[0].first ? g[0].second : g[0].second + 1;
        }
      }
      pos = nl + 1;
    }
    return out;
  }

  void first_pass(Token& t) const {
    const std::string& tok = t.tok;
    if (tok == "." || tok == "?" || tok == "!") {
      t.sentbreak = true;
    } else if (is_ellipsis(tok)) {
      t.ellipsis = true;
    } else if (t.period_final && !(tok.size() >= 2 && tok.compare(tok.size() - 2, 2, "..") == 0)) {
      const std::string stem = python_lower_utf8(std::string_view(tok).substr(0, tok.size() - 1));
      const size_t dash = stem.rfind('-');
      const std::string last = dash == npos ? stem : stem.substr(dash + 1);
      if (abbrev_.count(stem) || abbrev_.count(last)) {
        t.abbr = true;
      } else {
        t.sentbreak = true;
      }
    }
  }

  int ortho(const std::string& type) const {
    auto it = ortho_.find(type);
    return it == ortho_.end() ? 0 : it->second;
  }

  Tri ortho_heuristic(const Token& t) const {
    if (t.tok.size() == 1 && std::string_view(";:,.!?").find(t.tok[0]) != npos) return Tri::no;
    const int ctx = ortho(t.type_no_sentperiod());
    if (t.first_upper() && (ctx & kOrthoLc) && !(ctx & kOrthoMidUc)) return Tri::yes;
    if (t.first_lower() && ((ctx & kOrthoUc) || !(ctx & kOrthoBegLc))) return Tri::no;
    return Tri::unknown;
  }

  void second_pass(Token& t1, const Token& t2) const {
    if (!t1.period_final) return;
    const std::string typ = t1.type_no_period();
    const std::string next_typ = t2.type_no_sentperiod();
    const bool initial = is_initial(t1.tok);
    if (collocations_.count(typ + '\t' + next_typ)) {
      t1.sentbreak = false;
      t1.abbr = true;
      return;
    }
    if ((t1.abbr || t1.ellipsis) && !initial) {
      if (ortho_heuristic(t2) == Tri::yes) {
        t1.sentbreak = true;
        return;
      }
      if (t2.first_upper() && starters_.count(next_typ)) {
        t1.sentbreak = true;
        return;
      }
    }
    if (initial || typ == "##number##") {
      const Tri s = ortho_heuristic(t2);
      if (s == Tri::no) {
        t1.sentbreak = false;
        t1.abbr = true;
        return;
      }
      if (s == Tri::unknown && initial && t2.first_upper() && !(ortho(next_typ) & kOrthoLc)) {
        t1.sentbreak = false;
        t1.abbr = true;
        return;
      }
    }
  }

  bool text_contains_sentbreak(std::string_view text) const {
    std::vector<Token> toks = tokenize_words(text);
    for (Token& t : toks) first_pass(t);
    for (size_t i = 0; i < toks.size(); ++i) {
      if (i + 1 < toks.size()) second_pass(toks[i], toks[i + 1]);
      if (toks[i].sentbreak && i + 1 < toks.size()) return true;
    }
    return false;
  }

  // _get_last_whitespace_index: the last ASCII whitespace (string.whitespace), or 0 when there is none.
  static size_t last_whitespace_index(std::string_view s) {
    for (size_t i = s.size(); i-- > 0;) {
      char c = s[i];
      if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\x0b' || c == '\x0c') return i;
    }
    return 0;
  }

  struct EndContext {
    Groups match;  // [0] the end character, [1] after_tok, [2] next_tok
    std::string context;
  };

  std::vector<EndContext> match_potential_end_contexts(std::string_view text) const {
    std::vector<EndContext> out;
    std::pair<size_t, size_t> previous_slice{0, 0};
    Groups previous_match;
    bool have_previous = false;
    auto context_of = [&](const std::pair<size_t, size_t>& sl, const Groups& m) {
      std::string c;
      if (sl.first < sl.second) c.append(text.substr(sl.first, sl.second - sl.first));
      c.append(text.substr(m[0].first, m[0].second - m[0].first));
      if (m[1].first != npos) c.append(text.substr(m[1].first, m[1].second - m[1].first));
      return c;
    };
    Groups g;
    size_t at = 0;
    while (at <= text.size() && period_context_re_->find(text, at, g)) {
      const size_t start = g[0].first;
      std::string_view before = start > previous_slice.second
                                    ? text.substr(previous_slice.second, start - previous_slice.second)
                                    : std::string_view();
      size_t index_after_last_space = last_whitespace_index(before);
      if (index_after_last_space) {
        index_after_last_space += previous_slice.second + 1;
      } else {
        index_after_last_space = previous_slice.first;
      }
      std::pair<size_t, size_t> prev_word_slice{index_after_last_space, start};
      if (have_previous && previous_slice.second <= prev_word_slice.first) {
        out.push_back({previous_match, context_of(previous_slice, previous_match)});
      }
      previous_match = g;
      have_previous = true;
      previous_slice = prev_word_slice;
      at = g[0].second > g[0].first ? g[0].second : g[0].second + 1;
    }
    if (have_previous) out.push_back({previous_match, context_of(previous_slice, previous_match)});
    return out;
  }

  std::vector<std::pair<size_t, size_t>> slices_from_text(std::string_view text) const {
    std::vector<std::pair<size_t, size_t>> out;
    size_t last_break = 0;
    for (const EndContext& ec : match_potential_end_contexts(text)) {
      if (text_contains_sentbreak(ec.context)) {
        out.emplace_back(last_break, ec.match[0].second);
        last_break = ec.match[2].first != npos ? ec.match[2].first : ec.match[0].second;
      }
    }
    out.emplace_back(last_break, python_rstrip(text).size());
    return out;
  }

  std::unordered_set<std::string> abbrev_, starters_, collocations_;
  std::unordered_map<std::string, int> ortho_;
  std::unique_ptr<Regex> word_re_, period_context_re_, realign_re_, numeric_re_;
};

}  // namespace

std::vector<std::string> punkt_sentences(std::string_view text) {
  static const Punkt punkt;
  return punkt.sentences(text);
}

}  // namespace vlm::metrics
