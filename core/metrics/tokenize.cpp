#include "metrics/tokenize.h"

#include <array>
#include <utility>

#include "base/error.h"
#include "metrics/porter.h"
#include "metrics/punkt.h"
#include "metrics/regex.h"
#include "metrics/unicode.h"

namespace vlm::metrics {
namespace {

void replace_all_literal(std::string& s, std::string_view from, std::string_view to) {
  if (s.find(from) == std::string::npos) return;
  std::string out;
  out.reserve(s.size());
  size_t pos = 0;
  while (true) {
    size_t hit = s.find(from, pos);
    if (hit == std::string::npos) break;
    out.append(s, pos, hit - pos);
    out.append(to);
    pos = hit + from.size();
  }
  out.append(s, pos, std::string::npos);
  s.swap(out);
}

// The 13a regex class [\{-\~\[-\` -\&\(-\+\:-\@\/]: ASCII punctuation except ' , - . and the space itself.
bool in_13a_class(unsigned char c) {
  return (c >= '{' && c <= '~') || (c >= '[' && c <= '`') || (c >= ' ' && c <= '&') || (c >= '(' && c <= '+') ||
         (c >= ':' && c <= '@') || c == '/';
}
bool is_ascii_digit(unsigned char c) { return c >= '0' && c <= '9'; }

}  // namespace

std::string tokenize_13a(std::string_view input) {
  std::string line(input);
  if (line.find('<') != std::string::npos) replace_all_literal(line, "<skipped>", "");
  if (line.find('\n') != std::string::npos) {
    replace_all_literal(line, "-\n", "");
    replace_all_literal(line, "\n", " ");
  }
  if (line.find('&') != std::string::npos) {
    replace_all_literal(line, "&quot;", "\"");
    replace_all_literal(line, "&amp;", "&");
    replace_all_literal(line, "&lt;", "<");
    replace_all_literal(line, "&gt;", ">");
  }
  // The four regex passes of TokenizerRegexp, done by hand: each only looks at ASCII bytes, and a UTF-8
  // continuation byte can never be one of them, so scanning bytes gives the same result as scanning code points.
  const std::string padded = " " + line + " ";
  std::string a;
  a.reserve(padded.size() * 2);
  for (unsigned char c : padded) {
    if (in_13a_class(c)) {
      a.push_back(' ');
      a.push_back(static_cast<char>(c));
      a.push_back(' ');
    } else {
      a.push_back(static_cast<char>(c));
    }
  }
  // ([^0-9])([\.,]) -> '\1 \2 '
  std::string b;
  b.reserve(a.size() * 2);
  for (size_t i = 0; i < a.size();) {
    unsigned char c = a[i];
    if (i + 1 < a.size() && !is_ascii_digit(c) && (a[i + 1] == '.' || a[i + 1] == ',')) {
      b.push_back(static_cast<char>(c));
      b.push_back(' ');
      b.push_back(a[i + 1]);
      b.push_back(' ');
      i += 2;
    } else {
      b.push_back(static_cast<char>(c));
      ++i;
    }
  }
  // ([\.,])([^0-9]) -> ' \1 \2'
  std::string c3;
  c3.reserve(b.size() * 2);
  for (size_t i = 0; i < b.size();) {
    unsigned char c = b[i];
    if ((c == '.' || c == ',') && i + 1 < b.size() && !is_ascii_digit(b[i + 1])) {
      c3.push_back(' ');
      c3.push_back(static_cast<char>(c));
      c3.push_back(' ');
      c3.push_back(b[i + 1]);
      i += 2;
    } else {
      c3.push_back(static_cast<char>(c));
      ++i;
    }
  }
  // ([0-9])(-) -> '\1 \2 '
  std::string d;
  d.reserve(c3.size() * 2);
  for (size_t i = 0; i < c3.size();) {
    unsigned char c = c3[i];
    if (is_ascii_digit(c) && i + 1 < c3.size() && c3[i + 1] == '-') {
      d.push_back(static_cast<char>(c));
      d.push_back(' ');
      d.push_back('-');
      d.push_back(' ');
      i += 2;
    } else {
      d.push_back(static_cast<char>(c));
      ++i;
    }
  }
  std::string out;
  out.reserve(d.size());
  for (std::string_view tok : python_split(d)) {
    if (!out.empty()) out.push_back(' ');
    out.append(tok);
  }
  return out;
}

namespace {

// A regex rule and the substrings one of which must occur for it to match (a cheap pre-check; empty = always
// run). Contraction rules check an ASCII-lowercased copy, with triggers that avoid the letters i, s and k, whose
// case-insensitive matches include non-ASCII characters.
struct Rule {
  Regex regex;
  std::string replacement;
  std::vector<std::string> triggers;
  bool may_apply(const std::string& text) const {
    if (triggers.empty()) return true;
    for (const std::string& t : triggers) {
      if (text.find(t) != std::string::npos) return true;
    }
    return false;
  }
};

std::string ascii_lower(const std::string& s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
  }
  return out;
}

// Whether \s+ -> " " can change the text: any whitespace other than a lone ASCII space, or any non-ASCII byte.
bool needs_space_collapse(const std::string& text) {
  char prev = 0;
  for (char ch : text) {
    unsigned char c = static_cast<unsigned char>(ch);
    if (c >= 0x80 || (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x1F)) return true;
    if (ch == ' ' && prev == ' ') return true;
    prev = ch;
  }
  return false;
}

// A letter as Python's IGNORECASE sees it (stdlib re also folds U+0130/U+0131 to i, both engines fold U+017F to s).
std::string caseless_word(std::string_view word, bool std_re) {
  std::string out;
  for (char c : word) {
    if (c >= 'a' && c <= 'z') {
      out += '[';
      out += c;
      out += static_cast<char>(c - 32);
      if (c == 'i' && std_re) out += "\\x{130}\\x{131}";
      if (c == 's') out += "\\x{17F}";
      if (c == 'k') out += "\\x{212A}";
      out += ']';
    } else {
      out += c;
    }
  }
  return out;
}

class NltkRules {
 public:
  NltkRules() {
    const std::string w = "[" + pcre2_class_body(CharClass::regex_module_word) + "]";
    const std::string s = "[" + pcre2_class_body(CharClass::regex_module_space) + "]";
    const std::string d = "[" + pcre2_class_body(CharClass::regex_module_digit) + "]";
    const std::string re_w = "[" + pcre2_class_body(CharClass::std_re_word) + "]";
    const std::string re_space = "[" + pcre2_class_body(CharClass::python_space) + "]";
    const std::string b = "(?:(?<=" + w + ")(?!" + w + ")|(?<!" + w + ")(?=" + w + "))";
    const std::string re_b = "(?:(?<=" + re_w + ")(?!" + re_w + ")|(?<!" + re_w + ")(?=" + re_w + "))";

    auto add = [](std::vector<Rule>& v, const std::string& pattern, const std::string& repl, const char* name,
                  std::vector<std::string> triggers = {}) {
      v.push_back(Rule{Regex(pattern, std::string("nltk rule ") + name), repl, std::move(triggers)});
    };
    const std::string e280 = "\xE2\x80";  // U+2000..U+203F (quotes, dashes, spaces)
    // STARTING_QUOTES
    add(starting_, "([\\x{AB}\\x{201C}\\x{2018}\\x{201E}]|[`]+)", " $1 ", "starting_quotes[0]", {"`", "\xC2\xAB", e280});
    add(starting_, "^\"", "``", "starting_quotes[1]", {"\""});
    add(starting_, "(``)", " $1 ", "starting_quotes[2]", {"``"});
    add(starting_, "([ \\(\\[{<])(\"|'{2})", "$1 `` ", "starting_quotes[3]", {"\"", "''"});
    {
      std::string alts;
      for (const char* a : {"re", "ve", "ll", "m", "t", "s", "d", "n"}) {
        if (!alts.empty()) alts += '|';
        alts += caseless_word(a, false);
      }
      add(starting_, "(?<!" + w + ")(')(?!(?:" + alts + ")" + b + ")(?=" + w + ")", "$1 ", "starting_quotes[4]", {"'"});
    }
    // PUNCTUATION
    const std::string closers = "\\]\\)}>\"'\\x{BB}\\x{201D}\\x{2019} ";
    add(punctuation_, "([^\\.])(\\.)([" + closers + "]*+)" + s + "*$", "$1 $2 $3 ", "punctuation[0]", {"."});
    add(punctuation_, "([:,])([^" + pcre2_class_body(CharClass::regex_module_digit) + "])", " $1 $2",
        "punctuation[1]", {":", ","});
    add(punctuation_, "([:,])$", " $1 ", "punctuation[2]", {":", ","});
    add(punctuation_, "\\.{2,}", " $0 ", "punctuation[3]", {".."});
    add(punctuation_, "[;@#$%&]", " $0 ", "punctuation[4]", {";", "@", "#", "$", "%", "&"});
    add(punctuation_, "[\\x{2012}-\\x{2015}]", " $0 ", "punctuation[5]", {e280});
    add(punctuation_, "([^\\.])(\\.)([\\]\\)}>\"']*)" + s + "*$", "$1 $2$3 ", "punctuation[6]", {"."});
    add(punctuation_, "[?!]", " $0 ", "punctuation[7]", {"?", "!"});
    add(punctuation_, "([^'])' ", "$1 ' ", "punctuation[8]", {"' "});
    add(punctuation_, "[*]", " $0 ", "punctuation[9]", {"*"});
    (void)d;
    // PARENS_BRACKETS and DOUBLE_DASHES
    add(middle_, "[\\]\\[\\(\\)\\{\\}\\<\\>]", " $0 ", "parens_brackets", {"[", "]", "(", ")", "{", "}", "<", ">"});
    add(middle_, "--", " -- ", "double_dashes", {"--"});
    // ENDING_QUOTES
    add(ending_, "([\\x{BB}\\x{201D}\\x{2019}])", " $1 ", "ending_quotes[0]", {"\xC2\xBB", e280});
    add(ending_, "''", " '' ", "ending_quotes[1]", {"''"});
    add(ending_, "\"", " '' ", "ending_quotes[2]", {"\""});
    add(ending_, s + "+", " ", "ending_quotes[3]");
    space_collapse_index_ = ending_.size() - 1;
    add(ending_, "([^' ])('[sS]|'[mM]|'[dD]|') ", "$1 $2 ", "ending_quotes[4]", {"'"});
    add(ending_, "([^' ])('ll|'LL|'re|'RE|'ve|'VE|n't|N'T) ", "$1 $2 ", "ending_quotes[5]", {"'"});
    // CONTRACTIONS2 / CONTRACTIONS3 (stdlib re, case-insensitive)
    auto cw = [](const char* word) { return caseless_word(word, true); };
    struct Contraction {
      const char* first;
      const char* second;
      const char* trigger;  // lowercase ASCII, no i/s/k
    };
    const Contraction pairs[] = {{"can", "not", "cannot"}, {"d", "'ye", "'ye"},    {"gim", "me", "mme"},
                                 {"gon", "na", "onna"},    {"got", "ta", "otta"},  {"lem", "me", "mme"},
                                 {"more", "'n", "ore'n"}};
    for (const auto& c : pairs) {
      add(contractions_, re_b + "(" + cw(c.first) + ")(" + cw(c.second) + ")" + re_b, " $1 $2 ", "contractions2",
          {c.trigger});
    }
    add(contractions_, re_b + "(" + cw("wan") + ")(" + cw("na") + ")(?=" + re_space + ")", " $1 $2 ",
        "contractions2", {"anna"});
    add(contractions_, " (" + cw("'t") + ")(" + cw("is") + ")" + re_b, " $1 $2 ", "contractions3", {" 't"});
    add(contractions_, " (" + cw("'t") + ")(" + cw("was") + ")" + re_b, " $1 $2 ", "contractions3", {" 'twa"});
  }

  std::vector<std::string> tokenize(std::string_view input) const {
    std::string text(input);
    auto apply = [&text](const Rule& r) {
      if (r.may_apply(text)) r.regex.replace_all_in_place(text, r.replacement);
    };
    for (const Rule& r : starting_) apply(r);
    for (const Rule& r : punctuation_) apply(r);
    for (const Rule& r : middle_) apply(r);
    text = " " + text + " ";
    for (size_t i = 0; i < ending_.size(); ++i) {
      if (i == space_collapse_index_ && !needs_space_collapse(text)) continue;
      apply(ending_[i]);
    }
    // Inserting spaces never creates a trigger substring, so one lowered copy serves all contraction rules.
    const std::string lowered = ascii_lower(text);
    for (const Rule& r : contractions_) {
      if (r.may_apply(lowered)) r.regex.replace_all_in_place(text, r.replacement);
    }
    std::vector<std::string> out;
    for (std::string_view tok : python_split(text)) out.emplace_back(tok);
    return out;
  }

 private:
  std::vector<Rule> starting_;
  std::vector<Rule> punctuation_;
  std::vector<Rule> middle_;
  std::vector<Rule> ending_;
  std::vector<Rule> contractions_;
  size_t space_collapse_index_ = 0;
};

}  // namespace

std::vector<std::string> nltk_word_tokenize(std::string_view text) {
  static const NltkRules rules;
  return rules.tokenize(text);
}

std::vector<std::string> nltk_word_tokenize_sentences(std::string_view text) {
  std::vector<std::string> out;
  for (const std::string& sentence : punkt_sentences(text)) {
    for (std::string& tok : nltk_word_tokenize(sentence)) out.push_back(std::move(tok));
  }
  return out;
}

std::vector<std::string> rouge_tokenize(std::string_view text, bool use_stemmer) {
  // lower() first (U+0130 and U+212A lower into ASCII letters), then every run outside [a-z0-9] separates.
  std::string lowered = python_lower_utf8(text);
  std::vector<std::string> tokens;
  std::string cur;
  for (char ch : lowered) {
    if ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9')) {
      cur.push_back(ch);
    } else if (!cur.empty()) {
      tokens.push_back(std::move(cur));
      cur.clear();
    }
  }
  if (!cur.empty()) tokens.push_back(std::move(cur));
  if (use_stemmer) {
    for (std::string& t : tokens) {
      if (t.size() > 3) t = porter_stem_ascii(t);
    }
  }
  return tokens;
}

}  // namespace vlm::metrics
