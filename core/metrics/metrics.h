// Evaluation metrics equal to named reference implementations (pinned versions in tools/oracle/requirements.txt):
//
//   exact_match             HF evaluate 'exact_match' (regexes_to_ignore, ignore_case, ignore_punctuation,
//                           ignore_numbers), best over the references of an example, mean over examples (0-1)
//   exact_match_normalized  the same after ' '.join(text.split()) on both sides (strip + collapse whitespace)
//   bleu                    sacrebleu 2.6.0 corpus_bleu: 13a tokenizer, exp smoothing, 0-100 (the headline number)
//   sentence_bleu           sacrebleu 2.6.0 sentence_bleu per example (effective order), mean over examples
//   meteor                  nltk 3.10.4 meteor_score with HF evaluate's settings (alpha 0.9, beta 3, gamma 0.5;
//                           exact, Porter stem, WordNet synonym stages) over nltk word_tokenize tokens (Punkt
//                           sentence split with nltk's English punkt_tab parameters, then NLTKWordTokenizer), mean
//   rougeL / rougeLsum      rouge_score 0.1.2 F-measure (its tokenizer; optional Porter stemming), best over the
//                           references, mean over examples (plain mean, no bootstrap)
//   token statistics        lengths in words (str.split()) and in model tokens (a callback or precomputed counts)
//
// Every corpus value carries the name of its reference implementation, so reports say what they measured.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace vlm::metrics {

// Versions of the reference packages these metrics are equal to (what the conformance fixtures were made with).
inline constexpr const char* kSacrebleuVersion = "2.6.0";
inline constexpr const char* kNltkVersion = "3.10.4";
inline constexpr const char* kRougeScoreVersion = "0.1.2";

struct Example {
  std::string prediction;
  std::vector<std::string> references;  // at least one
  // Token counts in the model tokenizer; -1 = unknown (then MetricsOptions::count_tokens is asked, if set).
  // For predictions this is best the number of generated tokens, which is what max_new_tokens limits.
  std::int64_t prediction_tokens = -1;
  std::vector<std::int64_t> reference_tokens;  // empty, or one per reference
};

struct ExactMatchOptions {
  std::vector<std::string> regexes_to_ignore;  // PCRE2 syntax; each match is deleted, in order, before comparing
  bool ignore_case = false;
  bool ignore_punctuation = false;  // ASCII punctuation (Python's string.punctuation)
  bool ignore_numbers = false;      // ASCII digits
};

// How METEOR tokenizes, before nltk's meteor_score.
enum class MeteorTokenizer {
  punkt,          // nltk word_tokenize(text): Punkt sentences, then NLTKWordTokenizer (HF evaluate exactly)
  preserve_line,  // nltk word_tokenize(text, preserve_line=True): no sentence split
};

enum class MeteorMode {
  full,             // exact + stem + WordNet synonyms: equal to nltk; fails when WordNet is missing
  without_wordnet,  // exact + stem only, reported under its own name ("meteor_no_wordnet")
  off,
};

struct MetricsOptions {
  ExactMatchOptions exact_match;
  bool rouge_use_stemmer = false;  // rouge_score's use_stemmer (HF evaluate's default: False)
  MeteorMode meteor = MeteorMode::full;
  MeteorTokenizer meteor_tokenizer = MeteorTokenizer::punkt;
  std::string wordnet_dir = "/usr/share/wordnet";
  double meteor_alpha = 0.9;
  double meteor_beta = 3.0;
  double meteor_gamma = 0.5;
  // Token statistics. A prediction counts as truncated when its token count is >= max_new_tokens (> 0).
  std::int64_t max_new_tokens = 0;
  // Counts model-tokenizer tokens of a text; used for counts not given in Example. May be empty.
  std::function<std::int64_t(std::string_view text)> count_tokens;
  bool per_example = true;  // keep per-example scores in the result
  // Threads scoring examples in parallel (results do not depend on it); 0 = one per hardware thread.
  // count_tokens must be thread-safe when this is not 1.
  int num_threads = 1;
};

struct ExampleScores {
  double exact_match = 0;
  double exact_match_normalized = 0;
  double sentence_bleu = 0;
  double meteor = 0;  // NaN when METEOR is off
  double rouge_l = 0;
  double rouge_lsum = 0;
  std::int64_t prediction_words = 0;
  std::int64_t prediction_tokens = -1;
  bool empty_prediction = false;
  bool truncated = false;
};

struct BleuStatistics {
  std::int64_t sys_len = 0;
  std::int64_t ref_len = 0;
  std::int64_t correct[4] = {0, 0, 0, 0};
  std::int64_t total[4] = {0, 0, 0, 0};
};

struct BleuScore {
  double score = 0;  // 0-100
  double bp = 0;
  double precisions[4] = {0, 0, 0, 0};
  BleuStatistics stats;
};

struct NamedValue {
  std::string name;            // the key in generation_metrics.json, e.g. "bleu"
  std::string implementation;  // what it equals, e.g. "sacrebleu 2.6.0 corpus_bleu (tokenize=13a, smooth=exp)"
  double value = 0;
};

struct LengthSummary {
  bool available = false;
  double mean = 0;
  double median = 0;
  std::int64_t max = 0;
};

struct TokenStatistics {
  LengthSummary prediction_words, reference_words;
  LengthSummary prediction_tokens, reference_tokens;
  double empty_prediction_share = 0;  // predictions with no word (empty or whitespace only)
  std::optional<double> truncated_share;  // set when max_new_tokens > 0 and every prediction count is known
  std::int64_t max_new_tokens = 0;
};

struct CorpusScores {
  std::size_t num_examples = 0;
  std::vector<NamedValue> metrics;  // in report order; meteor absent when off
  BleuScore bleu;
  TokenStatistics tokens;
  std::vector<ExampleScores> examples;  // when MetricsOptions::per_example
  const NamedValue* find(std::string_view name) const;
};

// Scores predictions against references. Construct once (compiles regexes, loads WordNet) and reuse.
class MetricsScorer {
 public:
  explicit MetricsScorer(MetricsOptions options);
  ~MetricsScorer();
  MetricsScorer(const MetricsScorer&) = delete;
  MetricsScorer& operator=(const MetricsScorer&) = delete;

  CorpusScores score(const std::vector<Example>& examples) const;

  // The single metrics, on one example (for tests and callers that need only one).
  double exact_match(std::string_view prediction, const std::vector<std::string>& references, bool normalized) const;
  double meteor(std::string_view prediction, const std::vector<std::string>& references) const;
  double rouge_l(std::string_view prediction, const std::vector<std::string>& references) const;
  double rouge_lsum(std::string_view prediction, const std::vector<std::string>& references) const;
  // (rougeL, rougeLsum), tokenizing each text once.
  std::pair<double, double> rouge(std::string_view prediction, const std::vector<std::string>& references) const;

  const MetricsOptions& options() const { return options_; }

 private:
  struct Impl;
  MetricsOptions options_;
  std::unique_ptr<Impl> impl_;
};

// sacrebleu's BLEU pieces, exposed for tests.
BleuStatistics bleu_statistics(std::string_view hypothesis, const std::vector<std::string>& references);
BleuScore bleu_from_statistics(const BleuStatistics& stats, bool effective_order);
double sentence_bleu(std::string_view hypothesis, const std::vector<std::string>& references);
BleuScore corpus_bleu(const std::vector<std::string>& hypotheses,
                      const std::vector<std::vector<std::string>>& references_per_hypothesis);

// nltk single_meteor_score on token lists (WordNet may be null: no synonym stage).
class WordNet;
double single_meteor_score(const std::vector<std::string>& reference, const std::vector<std::string>& hypothesis,
                           const WordNet* wordnet, double alpha = 0.9, double beta = 3.0, double gamma = 0.5);

// rouge_score's F-measures on token lists.
double rouge_lcs_f(const std::vector<std::string>& target, const std::vector<std::string>& prediction);
double rouge_summary_lcs_f(const std::vector<std::vector<std::string>>& target_sentences,
                           const std::vector<std::vector<std::string>>& prediction_sentences);

// The JSON documents: corpus scores for generation_metrics.json, one example's scores for predictions.jsonl.
nlohmann::json corpus_scores_json(const CorpusScores& scores);
nlohmann::json example_scores_json(const ExampleScores& scores, bool with_meteor);

}  // namespace vlm::metrics
