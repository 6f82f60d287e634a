#include "metrics/porter.h"

#include <functional>
#include <unordered_map>
#include <vector>

#include "metrics/unicode.h"

namespace vlm::metrics {
namespace {

using Str = std::u32string;
using Cond = std::function<bool(const Str&)>;

struct Rule {
  Str suffix;
  Str replacement;
  Cond condition;  // empty: always
};

Str u(const char* ascii) {
  Str out;
  for (const char* p = ascii; *p; ++p) out.push_back(static_cast<char32_t>(*p));
  return out;
}

bool is_vowel(char32_t c) { return c == 'a' || c == 'e' || c == 'i' || c == 'o' || c == 'u'; }

bool ends_with(const Str& w, const Str& suffix) {
  return w.size() >= suffix.size() && w.compare(w.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// _is_consonant: a 'y' is a consonant unless preceded by an odd run of y's ending at a consonant...
bool is_consonant(const Str& word, size_t i) {
  if (is_vowel(word[i])) return false;
  if (word[i] == 'y') {
    bool negate = false;
    while (i > 0 && word[i] == 'y') {
      negate = !negate;
      --i;
    }
    return (!is_vowel(word[i])) != negate;
  }
  return true;
}

std::vector<bool> consonant_flags(const Str& word) {
  std::vector<bool> flags;
  flags.reserve(word.size());
  for (size_t i = 0; i < word.size(); ++i) {
    char32_t ch = word[i];
    if (is_vowel(ch)) {
      flags.push_back(false);
    } else if (ch == 'y') {
      flags.push_back(i == 0 ? true : !flags[i - 1]);
    } else {
      flags.push_back(true);
    }
  }
  return flags;
}

int measure(const Str& stem) {
  std::vector<bool> f = consonant_flags(stem);
  int m = 0;
  for (size_t i = 0; i + 1 < f.size(); ++i) {
    if (!f[i] && f[i + 1]) ++m;
  }
  return m;
}

bool has_positive_measure(const Str& stem) { return measure(stem) > 0; }

bool contains_vowel(const Str& stem) {
  for (bool is_cons : consonant_flags(stem)) {
    if (!is_cons) return true;
  }
  return false;
}

bool ends_double_consonant(const Str& w) {
  return w.size() >= 2 && w[w.size() - 1] == w[w.size() - 2] && is_consonant(w, w.size() - 1);
}

bool ends_cvc(const Str& w) {
  size_t n = w.size();
  if (n >= 3 && is_consonant(w, n - 3) && !is_consonant(w, n - 2) && is_consonant(w, n - 1) && w[n - 1] != 'w' &&
      w[n - 1] != 'x' && w[n - 1] != 'y') {
    return true;
  }
  return n == 2 && !is_consonant(w, 0) && is_consonant(w, 1);
}

Str apply_rule_list(const Str& word, const std::vector<Rule>& rules) {
  static const Str star_d = u("*d");
  for (const Rule& rule : rules) {
    if (rule.suffix == star_d && ends_double_consonant(word)) {
      Str stem = word.substr(0, word.size() - 2);
      if (!rule.condition || rule.condition(stem)) return stem + rule.replacement;
      return word;
    }
    if (ends_with(word, rule.suffix)) {
      Str stem = word.substr(0, word.size() - rule.suffix.size());
      if (!rule.condition || rule.condition(stem)) return stem + rule.replacement;
      return word;
    }
  }
  return word;
}

Str step1a(const Str& word) {
  if (ends_with(word, u("ies")) && word.size() == 4) return word.substr(0, 1) + u("ie");
  static const std::vector<Rule> rules = {
      {u("sses"), u("ss"), {}}, {u("ies"), u("i"), {}}, {u("ss"), u("ss"), {}}, {u("s"), u(""), {}}};
  return apply_rule_list(word, rules);
}

Str step1b(const Str& word) {
  if (ends_with(word, u("ied"))) {
    if (word.size() == 4) return word.substr(0, 1) + u("ie");
    return word.substr(0, word.size() - 3) + u("i");
  }
  if (ends_with(word, u("eed"))) {
    Str stem = word.substr(0, word.size() - 3);
    if (measure(stem) > 0) return stem + u("ee");
    return word;
  }
  bool succeeded = false;
  Str intermediate;
  for (const char* suffix : {"ed", "ing"}) {
    Str s = u(suffix);
    if (ends_with(word, s)) {
      intermediate = word.substr(0, word.size() - s.size());
      if (contains_vowel(intermediate)) {
        succeeded = true;
        break;
      }
    }
  }
  if (!succeeded) return word;
  const char32_t last = intermediate.back();
  std::vector<Rule> rules = {
      {u("at"), u("ate"), {}},
      {u("bl"), u("ble"), {}},
      {u("iz"), u("ize"), {}},
      {u("*d"), Str(1, last), [last](const Str&) { return last != 'l' && last != 's' && last != 'z'; }},
      {u(""), u("e"), [](const Str& stem) { return measure(stem) == 1 && ends_cvc(stem); }},
  };
  return apply_rule_list(intermediate, rules);
}

Str step1c(const Str& word) {
  static const std::vector<Rule> rules = {
      {u("y"), u("i"), [](const Str& stem) { return stem.size() > 1 && is_consonant(stem, stem.size() - 1); }}};
  return apply_rule_list(word, rules);
}

Str step2(const Str& word) {
  if (ends_with(word, u("alli")) && has_positive_measure(word.substr(0, word.size() - 4))) {
    return step2(word.substr(0, word.size() - 4) + u("al"));
  }
  static const std::vector<Rule> fixed = [] {
    std::vector<Rule> r;
    const char* table[][2] = {{"ational", "ate"}, {"tional", "tion"}, {"enci", "ence"},   {"anci", "ance"},
                              {"izer", "ize"},    {"bli", "ble"},     {"alli", "al"},     {"entli", "ent"},
                              {"eli", "e"},       {"ousli", "ous"},   {"ization", "ize"}, {"ation", "ate"},
                              {"ator", "ate"},    {"alism", "al"},    {"iveness", "ive"}, {"fulness", "ful"},
                              {"ousness", "ous"}, {"aliti", "al"},    {"iviti", "ive"},   {"biliti", "ble"},
                              {"fulli", "ful"}};
    for (auto& row : table) r.push_back({u(row[0]), u(row[1]), has_positive_measure});
    return r;
  }();
  std::vector<Rule> rules = fixed;
  // NLTK's "logi" rule tests the measure of the word minus "ogi" (keeping the l), as nltk does.
  rules.push_back({u("logi"), u("log"), [&word](const Str&) {
                     return has_positive_measure(word.substr(0, word.size() >= 3 ? word.size() - 3 : 0));
                   }});
  return apply_rule_list(word, rules);
}

Str step3(const Str& word) {
  static const std::vector<Rule> rules = {
      {u("icate"), u("ic"), has_positive_measure}, {u("ative"), u(""), has_positive_measure},
      {u("alize"), u("al"), has_positive_measure}, {u("iciti"), u("ic"), has_positive_measure},
      {u("ical"), u("ic"), has_positive_measure},  {u("ful"), u(""), has_positive_measure},
      {u("ness"), u(""), has_positive_measure}};
  return apply_rule_list(word, rules);
}

Str step4(const Str& word) {
  static const std::vector<Rule> rules = [] {
    auto gt1 = [](const Str& stem) { return measure(stem) > 1; };
    std::vector<Rule> r;
    for (const char* s : {"al", "ance", "ence", "er", "ic", "able", "ible", "ant", "ement", "ment", "ent"}) {
      r.push_back({u(s), u(""), gt1});
    }
    r.push_back({u("ion"), u(""), [](const Str& stem) {
                   return measure(stem) > 1 && !stem.empty() && (stem.back() == 's' || stem.back() == 't');
                 }});
    for (const char* s : {"ou", "ism", "ate", "iti", "ous", "ive", "ize"}) r.push_back({u(s), u(""), gt1});
    return r;
  }();
  return apply_rule_list(word, rules);
}

Str step5a(const Str& word) {
  if (!word.empty() && word.back() == 'e') {
    Str stem = word.substr(0, word.size() - 1);
    int m = measure(stem);
    if (m > 1) return stem;
    if (m == 1 && !ends_cvc(stem)) return stem;
  }
  return word;
}

Str step5b(const Str& word) {
  std::vector<Rule> rules = {
      {u("ll"), u("l"), [&word](const Str&) { return measure(word.substr(0, word.size() - 1)) > 1; }}};
  return apply_rule_list(word, rules);
}

const std::unordered_map<Str, Str>& irregular_pool() {
  static const std::unordered_map<Str, Str> pool = [] {
    std::unordered_map<Str, Str> p;
    const std::pair<const char*, std::vector<const char*>> forms[] = {
        {"sky", {"sky", "skies"}},   {"die", {"dying"}},        {"lie", {"lying"}},
        {"tie", {"tying"}},          {"news", {"news"}},        {"inning", {"innings", "inning"}},
        {"outing", {"outings", "outing"}}, {"canning", {"cannings", "canning"}}, {"howe", {"howe"}},
        {"proceed", {"proceed"}},    {"exceed", {"exceed"}},    {"succeed", {"succeed"}}};
    for (const auto& [key, vals] : forms) {
      for (const char* v : vals) p[u(v)] = u(key);
    }
    return p;
  }();
  return pool;
}

}  // namespace

std::u32string porter_stem(std::u32string_view word) {
  Str stem = python_lower(word);
  const auto& pool = irregular_pool();
  auto it = pool.find(stem);
  if (it != pool.end()) return it->second;
  if (word.size() <= 2) return stem;  // nltk tests the length of the word before lowercasing
  stem = step1a(stem);
  stem = step1b(stem);
  stem = step1c(stem);
  stem = step2(stem);
  stem = step3(stem);
  stem = step4(stem);
  stem = step5a(stem);
  stem = step5b(stem);
  return stem;
}

namespace {
// Texts repeat words a lot; a per-thread memo of recent stems avoids recomputing them.
const std::string& cached_stem(std::string_view word) {
  thread_local std::unordered_map<std::string, std::string> cache;
  auto it = cache.find(std::string(word));
  if (it != cache.end()) return it->second;
  if (cache.size() >= 200000) cache.clear();
  return cache.emplace(std::string(word), encode_utf8(porter_stem(decode_utf8(word)))).first->second;
}
}  // namespace

std::string porter_stem_utf8(std::string_view word) { return cached_stem(word); }

std::string porter_stem_ascii(std::string_view word) { return cached_stem(word); }

}  // namespace vlm::metrics
