#include "metrics/wordnet.h"

#include <cstdlib>
#include <unordered_set>

#include "base/error.h"
#include "base/fs.h"
#include "metrics/unicode.h"

namespace vlm::metrics {
namespace {

const char* const kPosFile[4] = {"noun", "verb", "adj", "adv"};
const char kPosChar[4] = {'n', 'v', 'a', 'r'};

std::string read_wordnet_file(const std::string& dir, const std::string& name) {
  std::string path = join_path(dir, name);
  if (!is_regular_file(path)) {
    fail(ErrorCode::not_found,
         "WordNet file " + path + " is missing: METEOR needs the WordNet 3.0 database (Debian packages wordnet-base "
         "and wordnet-sense-index, installed by scripts/install_deps.sh), or set the WordNet folder option to a "
         "folder that has it, or choose the METEOR variant without WordNet explicitly");
  }
  return read_file(path);
}

// Splits on ASCII whitespace (the WordNet files are ASCII; Python's split() agrees on them).
void fields(std::string_view line, std::vector<std::string_view>& out) {
  out.clear();
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r' || line[i] == '\n')) ++i;
    size_t start = i;
    while (i < line.size() && !(line[i] == ' ' || line[i] == '\t' || line[i] == '\r' || line[i] == '\n')) ++i;
    if (i > start) out.push_back(line.substr(start, i - start));
  }
}

std::vector<std::string_view> fields(std::string_view line) {
  std::vector<std::string_view> out;
  fields(line, out);
  return out;
}

unsigned long parse_number(std::string_view text, int base, const std::string& where) {
  if (base == 10 && !text.empty() && text.size() < 19) {
    unsigned long v = 0;
    bool ok = true;
    for (char c : text) {
      if (c < '0' || c > '9') {
        ok = false;
        break;
      }
      v = v * 10 + static_cast<unsigned long>(c - '0');
    }
    if (ok) return v;
  }
  std::string s(text);
  char* end = nullptr;
  unsigned long v = std::strtoul(s.c_str(), &end, base);
  if (s.empty() || *end != '\0') {
    fail(ErrorCode::corrupt_data, (where.empty() ? std::string("WordNet index") : where) +
                                      ": expected a number, found '" + s + "'");
  }
  return v;
}

// nltk strips a trailing syntactic marker such as "(a)", "(p)" or "(ip)" from adjective lemma names.
std::string strip_marker(std::string_view name) {
  if (!name.empty() && name.back() == ')') {
    size_t open = name.rfind('(');
    if (open != std::string_view::npos && name.find(')', open) == name.size() - 1) return std::string(name.substr(0, open));
  }
  return std::string(name);
}

}  // namespace

int WordNet::pos_index(char pos) {
  for (int i = 0; i < 4; ++i) {
    if (kPosChar[i] == pos) return i;
  }
  fail(ErrorCode::invalid_argument, std::string("WordNet part of speech '") + pos + "' is not one of n, v, a, r");
}

std::shared_ptr<const WordNet> WordNet::load(const std::string& dir) {
  std::shared_ptr<WordNet> wn(new WordNet());
  wn->dir_ = dir;
  if (!is_directory(dir)) {
    fail(ErrorCode::not_found, "WordNet folder " + dir + " does not exist: install the Debian packages wordnet-base "
                               "and wordnet-sense-index (scripts/install_deps.sh), or point the WordNet folder option "
                               "at a WordNet 3.0 database");
  }
  for (int p = 0; p < 4; ++p) {
    const std::string index_name = std::string("index.") + kPosFile[p];
    std::string index = read_wordnet_file(dir, index_name);
    size_t pos = 0;
    size_t line_no = 0;
    std::vector<std::string_view> f;
    while (pos < index.size()) {
      size_t eol = index.find('\n', pos);
      if (eol == std::string::npos) eol = index.size();
      std::string_view line(index.data() + pos, eol - pos);
      pos = eol + 1;
      ++line_no;
      if (line.empty() || line[0] == ' ') continue;  // license header
      fields(line, f);
      auto where = [&] { return dir + "/" + index_name + " line " + std::to_string(line_no); };
      // parse_number's fast path needs no message; the slow path (an error) names the line.
      auto num = [&](std::string_view t) {
        for (char c : t) {
          if (c < '0' || c > '9') return parse_number(t, 10, where());
        }
        return parse_number(t, 10, "");
      };
      if (f.size() < 4) fail(ErrorCode::corrupt_data, where() + ": too few fields");
      unsigned long n_synsets = num(f[2]);
      unsigned long n_pointers = num(f[3]);
      size_t k = 4 + n_pointers;
      if (f.size() < k + 2 + n_synsets) fail(ErrorCode::corrupt_data, where() + ": too few synset offsets");
      if (f[1].size() != 1) fail(ErrorCode::corrupt_data, where() + ": bad part of speech");
      int line_pos = pos_index(f[1][0]);
      auto& offsets = wn->index_[std::string(f[0])][line_pos];
      offsets.clear();
      for (unsigned long s = 0; s < n_synsets; ++s) offsets.push_back(num(f[k + 2 + s]));
    }
    const std::string exc_name = std::string(kPosFile[p]) + ".exc";
    std::string exc = read_wordnet_file(dir, exc_name);
    pos = 0;
    while (pos < exc.size()) {
      size_t eol = exc.find('\n', pos);
      if (eol == std::string::npos) eol = exc.size();
      fields(std::string_view(exc.data() + pos, eol - pos), f);
      pos = eol + 1;
      if (f.empty()) continue;
      std::vector<std::string> bases;
      for (size_t i = 1; i < f.size(); ++i) bases.emplace_back(f[i]);
      wn->pos_[p].exceptions[std::string(f[0])] = std::move(bases);  // a later line wins, as in nltk's dict
    }
    wn->pos_[p].data = read_wordnet_file(dir, std::string("data.") + kPosFile[p]);
  }
  const std::string& adj = wn->pos_[2].data;
  size_t at = adj.find("WordNet ");
  while (at != std::string::npos) {
    size_t end = adj.find(' ', at + 8);
    std::string candidate = adj.substr(at + 8, end - at - 8);
    if (adj.compare(end, 10, " Copyright") == 0) {
      wn->version_ = candidate;
      break;
    }
    at = adj.find("WordNet ", at + 1);
  }
  return wn;
}

std::shared_ptr<const WordNet> WordNet::shared(const std::string& dir) {
  static std::mutex mutex;
  static std::unordered_map<std::string, std::shared_ptr<const WordNet>> loaded;
  std::lock_guard<std::mutex> lock(mutex);
  auto it = loaded.find(dir);
  if (it != loaded.end()) return it->second;
  auto wn = load(dir);
  loaded[dir] = wn;
  return wn;
}

std::vector<std::string> WordNet::morphy(std::string_view form_view, char pos_char) const {
  static const std::vector<std::pair<std::string, std::string>> kSubstitutions[4] = {
      {{"s", ""}, {"ses", "s"}, {"ves", "f"}, {"xes", "x"}, {"zes", "z"}, {"ches", "ch"}, {"shes", "sh"},
       {"men", "man"}, {"ies", "y"}},
      {{"s", ""}, {"ies", "y"}, {"es", "e"}, {"es", ""}, {"ed", "e"}, {"ed", ""}, {"ing", "e"}, {"ing", ""}},
      {{"er", ""}, {"est", ""}, {"er", "e"}, {"est", "e"}},
      {}};
  const int p = pos_index(pos_char);
  const std::string form(form_view);
  std::vector<std::string> candidates{form};
  auto exc = pos_[p].exceptions.find(form);
  if (exc != pos_[p].exceptions.end()) {
    candidates.insert(candidates.end(), exc->second.begin(), exc->second.end());
  } else {
    for (const auto& [old_suffix, new_suffix] : kSubstitutions[p]) {
      if (form.size() >= old_suffix.size() &&
          form.compare(form.size() - old_suffix.size(), old_suffix.size(), old_suffix) == 0) {
        candidates.push_back(form.substr(0, form.size() - old_suffix.size()) + new_suffix);
      }
    }
  }
  std::vector<std::string> result;
  for (const std::string& c : candidates) {
    auto it = index_.find(c);
    if (it == index_.end() || it->second[p].empty()) continue;
    bool seen = false;
    for (const std::string& r : result) seen = seen || r == c;
    if (!seen) result.push_back(c);
  }
  return result;
}

const std::vector<std::string>& WordNet::synset_lemmas(int p, unsigned long offset) const {
  const unsigned long long key = (static_cast<unsigned long long>(p) << 40) | offset;
  std::lock_guard<std::mutex> lock(cache_mutex_);
  auto it = synset_cache_.find(key);
  if (it != synset_cache_.end()) return it->second;
  const std::string& data = pos_[p].data;
  const std::string where = dir_ + "/data." + kPosFile[p] + " offset " + std::to_string(offset);
  if (offset >= data.size()) fail(ErrorCode::corrupt_data, where + ": offset past the end of the file");
  size_t eol = data.find('\n', offset);
  if (eol == std::string::npos) eol = data.size();
  std::string_view line(data.data() + offset, eol - offset);
  size_t bar = line.find('|');
  auto f = fields(line.substr(0, bar));
  if (f.size() < 4 || parse_number(f[0], 10, where) != offset) {
    fail(ErrorCode::corrupt_data, where + ": no synset starts there (index and data files do not belong together)");
  }
  unsigned long n_lemmas = parse_number(f[3], 16, where);
  if (f.size() < 4 + 2 * n_lemmas) fail(ErrorCode::corrupt_data, where + ": too few lemma fields");
  std::vector<std::string> names;
  for (unsigned long i = 0; i < n_lemmas; ++i) names.push_back(strip_marker(f[4 + 2 * i]));
  return synset_cache_.emplace(key, std::move(names)).first->second;
}

std::vector<std::string> WordNet::lemma_names(std::string_view word) const {
  const std::string lowered = python_lower_utf8(word);
  std::vector<std::string> out;
  std::unordered_set<std::string> seen;
  for (int p = 0; p < 4; ++p) {
    for (const std::string& form : morphy(lowered, kPosChar[p])) {
      for (unsigned long offset : index_.at(form)[p]) {
        for (const std::string& name : synset_lemmas(p, offset)) {
          if (seen.insert(name).second) out.push_back(name);
        }
      }
    }
  }
  return out;
}

}  // namespace vlm::metrics
