// WordNet 3.0 read from the Princeton database files (Debian's wordnet-base: /usr/share/wordnet), answering the one
// question METEOR asks: the lemma names of every synset of a word, found the way nltk's
// WordNetCorpusReader.synsets(word) finds them (morphy: exception lists, then suffix rules, for n, v, a, r).
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace vlm::metrics {

class WordNet {
 public:
  // Loads index.{noun,verb,adj,adv}, {noun,verb,adj,adv}.exc and data.{noun,verb,adj,adv} from `dir`.
  // Throws vlm::Error(not_found) naming the missing file and the Debian packages to install.
  static std::shared_ptr<const WordNet> load(const std::string& dir);
  // The same folder loaded once per process and shared.
  static std::shared_ptr<const WordNet> shared(const std::string& dir);

  // nltk: [l.name() for s in wordnet.synsets(word) for l in s.lemmas()], duplicates removed, in first-seen order.
  std::vector<std::string> lemma_names(std::string_view word) const;
  // nltk: wordnet._morphy(word.lower(), pos) for pos one of 'n', 'v', 'a', 'r'.
  std::vector<std::string> morphy(std::string_view lowered_word, char pos) const;

  const std::string& directory() const { return dir_; }
  // The version named in data.adj's license header ("3.0").
  const std::string& version() const { return version_; }

 private:
  WordNet() = default;
  struct PosData {
    std::string data;  // data.<pos>, whole file
    std::unordered_map<std::string, std::vector<std::string>> exceptions;
  };
  static int pos_index(char pos);
  const std::vector<std::string>& synset_lemmas(int pos, unsigned long offset) const;

  std::string dir_;
  std::string version_;
  PosData pos_[4];  // n, v, a, r
  // lemma -> offsets per pos (n, v, a, r); an empty vector when the lemma lacks that pos.
  std::unordered_map<std::string, std::vector<unsigned long>[4]> index_;
  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<unsigned long long, std::vector<std::string>> synset_cache_;
};

}  // namespace vlm::metrics
