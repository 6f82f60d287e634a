// metrics_probe: reads JSON Lines {"text", "ref"} on stdin and prints, per line, what the C++ side computes for the
// text (13a tokens, nltk tokens with and without Punkt, rouge tokens with and without stemming, str.lower, Porter stems of str.split(),
// sentence BLEU and METEOR without WordNet against "ref"). tools/oracle/fuzz_metrics.py compares it with the
// Python packages on random strings: a differential check beyond the committed fixtures.
#include <iostream>
#include <string>

#include <nlohmann/json.hpp>

#include "metrics/metrics.h"
#include "metrics/porter.h"
#include "metrics/tokenize.h"
#include "metrics/unicode.h"

int main() {
  using namespace vlm::metrics;
  std::string line;
  while (std::getline(std::cin, line)) {
    try {
      auto j = nlohmann::json::parse(line);
      const std::string t = j.at("text");
      const std::string r = j.at("ref");
      check_utf8(t, "text");
      check_utf8(r, "ref");
      nlohmann::json o;
      o["13a"] = tokenize_13a(python_rstrip(t));
      o["nltk"] = nltk_word_tokenize(t);
      o["nltk_punkt"] = nltk_word_tokenize_sentences(t);
      o["rouge"] = rouge_tokenize(t, false);
      o["rouge_stem"] = rouge_tokenize(t, true);
      o["lower"] = python_lower_utf8(t);
      std::vector<std::string> stems;
      for (auto w : python_split(t)) stems.push_back(porter_stem_utf8(w));
      o["stems"] = stems;
      o["bleu"] = sentence_bleu(t, {r});
      o["meteor_nown"] = single_meteor_score(nltk_word_tokenize(r), nltk_word_tokenize(t), nullptr);
      std::cout << o.dump() << "\n";
    } catch (const std::exception& e) {
      std::cout << nlohmann::json{{"error", e.what()}}.dump() << "\n";
    }
  }
  return 0;
}
