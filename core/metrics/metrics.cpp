#include "metrics/metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <cstring>
#include <atomic>
#include <exception>
#include <set>
#include <thread>
#include <tuple>
#include <sstream>

#include "base/error.h"
#include "metrics/regex.h"
#include "metrics/tokenize.h"
#include "metrics/unicode.h"
#include "metrics/wordnet.h"

namespace vlm::metrics {
namespace {

const char kAsciiPunctuation[] = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

std::string py_bool(bool b) { return b ? "True" : "False"; }

std::string py_repr_list(const std::vector<std::string>& items) {
  nlohmann::json j = items;
  return j.dump();
}

double mean_of(const std::vector<double>& values) {
  if (values.empty()) return 0.0;
  double sum = 0.0;
  for (double v : values) sum += v;
  return sum / static_cast<double>(values.size());
}

LengthSummary summarize(std::vector<std::int64_t> values) {
  LengthSummary s;
  if (values.empty()) return s;
  s.available = true;
  double sum = 0.0;
  for (std::int64_t v : values) sum += static_cast<double>(v);
  s.mean = sum / static_cast<double>(values.size());
  std::sort(values.begin(), values.end());
  size_t n = values.size();
  s.median = n % 2 ? static_cast<double>(values[n / 2])
                   : (static_cast<double>(values[n / 2 - 1]) + static_cast<double>(values[n / 2])) / 2.0;
  s.max = values.back();
  return s;
}

}  // namespace

const NamedValue* CorpusScores::find(std::string_view name) const {
  for (const NamedValue& m : metrics) {
    if (m.name == name) return &m;
  }
  return nullptr;
}

struct MetricsScorer::Impl {
  std::vector<Regex> ignore;
  std::shared_ptr<const WordNet> wordnet;

  // HF evaluate exact_match's preprocessing of one string.
  std::string em_normalize(std::string_view text, const ExactMatchOptions& o, bool collapse_whitespace) const {
    std::string s;
    if (collapse_whitespace) {
      for (std::string_view piece : python_split(text)) {
        if (!s.empty()) s.push_back(' ');
        s.append(piece);
      }
    } else {
      s.assign(text);
    }
    for (const Regex& r : ignore) s = r.replace_all(s, "");
    if (o.ignore_case) s = python_lower_utf8(s);
    if (o.ignore_punctuation) {
      s.erase(std::remove_if(s.begin(), s.end(),
                             [](char c) { return c != '\0' && std::strchr(kAsciiPunctuation, c) != nullptr; }),
              s.end());
    }
    if (o.ignore_numbers) {
      s.erase(std::remove_if(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; }), s.end());
    }
    // numpy's fixed-width unicode arrays drop trailing NUL characters, so "a\0" == "a" there.
    while (!s.empty() && s.back() == '\0') s.pop_back();
    return s;
  }
};

MetricsScorer::MetricsScorer(MetricsOptions options) : options_(std::move(options)), impl_(std::make_unique<Impl>()) {
  const auto& regexes = options_.exact_match.regexes_to_ignore;
  for (size_t i = 0; i < regexes.size(); ++i) {
    const std::string what = "exact_match.regexes_to_ignore[" + std::to_string(i) + "]";
    check_utf8(regexes[i], what);
    impl_->ignore.emplace_back(regexes[i], what, /*unicode_classes=*/true);
  }
  if (!(options_.meteor_alpha >= 0 && options_.meteor_alpha <= 1)) {
    fail(ErrorCode::invalid_argument, "meteor_alpha must lie in [0, 1] (HF evaluate's default is 0.9)");
  }
  if (!std::isfinite(options_.meteor_beta) || !std::isfinite(options_.meteor_gamma)) {
    fail(ErrorCode::invalid_argument, "meteor_beta and meteor_gamma must be finite (defaults 3.0 and 0.5)");
  }
  if (options_.max_new_tokens < 0) {
    fail(ErrorCode::invalid_argument, "max_new_tokens must be >= 0 (0 when unknown)");
  }
  if (options_.meteor == MeteorMode::full) impl_->wordnet = WordNet::shared(options_.wordnet_dir);
}

MetricsScorer::~MetricsScorer() = default;

double MetricsScorer::exact_match(std::string_view prediction, const std::vector<std::string>& references,
                                  bool normalized) const {
  const std::string p = impl_->em_normalize(prediction, options_.exact_match, normalized);
  for (const std::string& r : references) {
    if (impl_->em_normalize(r, options_.exact_match, normalized) == p) return 1.0;
  }
  return 0.0;
}

double MetricsScorer::meteor(std::string_view prediction, const std::vector<std::string>& references) const {
  const WordNet* wn = options_.meteor == MeteorMode::full ? impl_->wordnet.get() : nullptr;
  const bool punkt = options_.meteor_tokenizer == MeteorTokenizer::punkt;
  auto tokenize = [punkt](std::string_view text) {
    return punkt ? nltk_word_tokenize_sentences(text) : nltk_word_tokenize(text);
  };
  const std::vector<std::string> hyp = tokenize(prediction);
  double best = 0.0;
  bool first = true;
  for (const std::string& r : references) {
    double s = single_meteor_score(tokenize(r), hyp, wn, options_.meteor_alpha, options_.meteor_beta,
                                   options_.meteor_gamma);
    if (first || s > best) best = s;
    first = false;
  }
  return best;
}

namespace {
std::vector<std::vector<std::string>> rouge_sentences(std::string_view text, bool stem) {
  std::vector<std::vector<std::string>> out;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    std::string_view sent = text.substr(pos, nl - pos);
    if (!sent.empty()) out.push_back(rouge_tokenize(sent, stem));  // rouge_score drops empty lines
    pos = nl + 1;
  }
  return out;
}
}  // namespace

std::pair<double, double> MetricsScorer::rouge(std::string_view prediction,
                                               const std::vector<std::string>& references) const {
  const bool stem = options_.rouge_use_stemmer;
  const auto pred = rouge_tokenize(prediction, stem);
  const bool pred_one_line = prediction.find('\n') == std::string_view::npos;
  std::vector<std::vector<std::string>> pred_sents;
  if (!pred_one_line) pred_sents = rouge_sentences(prediction, stem);
  double best_l = 0.0, best_lsum = 0.0;
  for (size_t i = 0; i < references.size(); ++i) {
    const auto target = rouge_tokenize(references[i], stem);
    const double l = rouge_lcs_f(target, pred);
    double lsum;
    if (pred_one_line && references[i].find('\n') == std::string::npos) {
      // One sentence on each side: the union LCS is the LCS, so rougeLsum's arithmetic gives rougeL's value.
      lsum = l;
    } else {
      if (pred_one_line && pred_sents.empty() && !prediction.empty()) pred_sents.push_back(pred);
      lsum = rouge_summary_lcs_f(rouge_sentences(references[i], stem), pred_sents);
    }
    if (i == 0 || l > best_l) best_l = l;  // np.argmax: the first maximum
    if (i == 0 || lsum > best_lsum) best_lsum = lsum;
  }
  return {best_l, best_lsum};
}

double MetricsScorer::rouge_l(std::string_view prediction, const std::vector<std::string>& references) const {
  return rouge(prediction, references).first;
}

double MetricsScorer::rouge_lsum(std::string_view prediction, const std::vector<std::string>& references) const {
  return rouge(prediction, references).second;
}

namespace {
struct ScoredExample {
  ExampleScores scores;
  BleuStatistics bleu;
  std::vector<std::int64_t> reference_words;
  std::vector<std::int64_t> reference_tokens;
  bool reference_tokens_known = true;
};
}  // namespace

CorpusScores MetricsScorer::score(const std::vector<Example>& examples) const {
  CorpusScores out;
  out.num_examples = examples.size();
  const bool with_meteor = options_.meteor != MeteorMode::off;

  auto score_one = [&](size_t i) {
    const Example& ex = examples[i];
    const std::string where = "example " + std::to_string(i);
    if (ex.references.empty()) {
      fail(ErrorCode::invalid_argument, where + " has no reference; every prediction needs at least one");
    }
    if (!ex.reference_tokens.empty() && ex.reference_tokens.size() != ex.references.size()) {
      fail(ErrorCode::invalid_argument, where + " has " + std::to_string(ex.references.size()) + " references but " +
                                            std::to_string(ex.reference_tokens.size()) + " reference token counts");
    }
    check_utf8(ex.prediction, where + " prediction");
    for (size_t r = 0; r < ex.references.size(); ++r) {
      check_utf8(ex.references[r], where + " reference " + std::to_string(r));
    }
    ScoredExample se;
    ExampleScores& es = se.scores;
    es.exact_match = exact_match(ex.prediction, ex.references, false);
    es.exact_match_normalized = exact_match(ex.prediction, ex.references, true);
    se.bleu = bleu_statistics(ex.prediction, ex.references);
    es.sentence_bleu = bleu_from_statistics(se.bleu, true).score;
    es.meteor = with_meteor ? meteor(ex.prediction, ex.references) : std::numeric_limits<double>::quiet_NaN();
    std::tie(es.rouge_l, es.rouge_lsum) = rouge(ex.prediction, ex.references);
    es.prediction_words = static_cast<std::int64_t>(python_split(ex.prediction).size());
    es.empty_prediction = es.prediction_words == 0;
    for (const std::string& r : ex.references) {
      se.reference_words.push_back(static_cast<std::int64_t>(python_split(r).size()));
    }
    std::int64_t pt = ex.prediction_tokens;
    if (pt < 0 && options_.count_tokens) pt = options_.count_tokens(ex.prediction);
    es.prediction_tokens = pt;
    for (size_t r = 0; r < ex.references.size(); ++r) {
      std::int64_t rt = ex.reference_tokens.empty() ? -1 : ex.reference_tokens[r];
      if (rt < 0 && options_.count_tokens) rt = options_.count_tokens(ex.references[r]);
      if (rt < 0) {
        se.reference_tokens_known = false;
      } else {
        se.reference_tokens.push_back(rt);
      }
    }
    es.truncated = options_.max_new_tokens > 0 && pt >= options_.max_new_tokens;
    return se;
  };

  // Examples are independent: score them on several threads, then aggregate in example order (deterministic).
  std::vector<ScoredExample> scored(examples.size());
  size_t threads = options_.num_threads > 0 ? static_cast<size_t>(options_.num_threads)
                                            : std::max(1u, std::thread::hardware_concurrency());
  threads = std::min(threads, std::max<size_t>(1, examples.size() / 64));
  if (threads <= 1) {
    for (size_t i = 0; i < examples.size(); ++i) scored[i] = score_one(i);
  } else {
    std::atomic<size_t> next{0};
    std::vector<std::exception_ptr> errors(examples.size() / 64 + 1);
    std::vector<std::thread> pool;
    for (size_t t = 0; t < threads; ++t) {
      pool.emplace_back([&] {
        for (;;) {
          const size_t block = next.fetch_add(1);
          const size_t begin = block * 64;
          if (begin >= examples.size()) return;
          try {
            for (size_t i = begin; i < std::min(begin + 64, examples.size()); ++i) scored[i] = score_one(i);
          } catch (...) {
            errors[block] = std::current_exception();
          }
        }
      });
    }
    for (std::thread& th : pool) th.join();
    for (const auto& e : errors) {
      if (e) std::rethrow_exception(e);  // the error of the earliest failing block
    }
  }

  std::vector<double> em, em_norm, sbleu, met, rl, rlsum;
  BleuStatistics total;
  std::vector<std::int64_t> pred_words, ref_words, pred_tokens, ref_tokens;
  bool pred_tokens_known = true, ref_tokens_known = true;
  size_t empty = 0, truncated = 0;
  std::set<size_t> ref_counts;
  for (size_t i = 0; i < examples.size(); ++i) {
    const ScoredExample& se = scored[i];
    const ExampleScores& es = se.scores;
    ref_counts.insert(examples[i].references.size());
    total.sys_len += se.bleu.sys_len;
    total.ref_len += se.bleu.ref_len;
    for (int n = 0; n < 4; ++n) {
      total.correct[n] += se.bleu.correct[n];
      total.total[n] += se.bleu.total[n];
    }
    pred_words.push_back(es.prediction_words);
    ref_words.insert(ref_words.end(), se.reference_words.begin(), se.reference_words.end());
    if (es.prediction_tokens < 0) {
      pred_tokens_known = false;
    } else {
      pred_tokens.push_back(es.prediction_tokens);
    }
    ref_tokens_known = ref_tokens_known && se.reference_tokens_known;
    ref_tokens.insert(ref_tokens.end(), se.reference_tokens.begin(), se.reference_tokens.end());
    if (es.empty_prediction) ++empty;
    if (es.truncated) ++truncated;
    em.push_back(es.exact_match);
    em_norm.push_back(es.exact_match_normalized);
    sbleu.push_back(es.sentence_bleu);
    if (with_meteor) met.push_back(es.meteor);
    rl.push_back(es.rouge_l);
    rlsum.push_back(es.rouge_lsum);
    if (options_.per_example) out.examples.push_back(es);
  }

  out.bleu = bleu_from_statistics(total, false);
  const ExactMatchOptions& o = options_.exact_match;
  const std::string em_args = "regexes_to_ignore=" + py_repr_list(o.regexes_to_ignore) +
                              ", ignore_case=" + py_bool(o.ignore_case) +
                              ", ignore_punctuation=" + py_bool(o.ignore_punctuation) +
                              ", ignore_numbers=" + py_bool(o.ignore_numbers);
  const std::string nrefs = ref_counts.size() == 1 ? std::to_string(*ref_counts.begin()) : "var";
  std::ostringstream meteor_params;
  meteor_params << "alpha=" << options_.meteor_alpha << ", beta=" << options_.meteor_beta
                << ", gamma=" << options_.meteor_gamma;
  const std::string rouge_stem = py_bool(options_.rouge_use_stemmer);

  out.metrics.push_back({"exact_match",
                         "HF evaluate exact_match (" + em_args + "); best over references; mean over examples (0-1)",
                         mean_of(em)});
  out.metrics.push_back({"exact_match_normalized",
                         "HF evaluate exact_match (" + em_args + ") on ' '.join(text.split()) of both sides; best "
                         "over references; mean over examples (0-1)",
                         mean_of(em_norm)});
  out.metrics.push_back({"bleu",
                         std::string("sacrebleu ") + kSacrebleuVersion + " corpus_bleu (nrefs:" + nrefs +
                             "|case:mixed|eff:no|tok:13a|smooth:exp|version:" + kSacrebleuVersion + "), 0-100",
                         out.bleu.score});
  out.metrics.push_back({"sentence_bleu",
                         std::string("sacrebleu ") + kSacrebleuVersion +
                             " sentence_bleu (tok:13a|smooth:exp|eff:yes) per example; mean over examples (0-100)",
                         mean_of(sbleu)});
  const std::string meteor_tokens = options_.meteor_tokenizer == MeteorTokenizer::punkt
                                        ? "nltk word_tokenize tokens (Punkt, English punkt_tab parameters)"
                                        : "nltk word_tokenize(preserve_line=True) tokens (no sentence split)";
  if (options_.meteor == MeteorMode::full) {
    const std::string version = impl_->wordnet->version().empty() ? "?" : impl_->wordnet->version();
    out.metrics.push_back({"meteor",
                           std::string("nltk ") + kNltkVersion + " meteor_score (" + meteor_params.str() +
                               "; exact, PorterStemmer NLTK_EXTENSIONS, WordNet " + version + " synonyms from " +
                               impl_->wordnet->directory() + ") on " + meteor_tokens +
                               "; best over references; mean over examples" +
                               (options_.meteor_tokenizer == MeteorTokenizer::punkt
                                    ? " (= HF evaluate 'meteor')"
                                    : " (HF evaluate 'meteor' without its sentence split)"),
                           mean_of(met)});
  } else if (options_.meteor == MeteorMode::without_wordnet) {
    out.metrics.push_back({"meteor_no_wordnet",
                           std::string("nltk ") + kNltkVersion + " meteor_score (" + meteor_params.str() +
                               "; exact and PorterStemmer stages only: WordNet synonym stage disabled) on " +
                               meteor_tokens + "; best over references; mean over examples",
                           mean_of(met)});
  }
  out.metrics.push_back({"rougeL",
                         std::string("rouge_score ") + kRougeScoreVersion + " rougeL F-measure (use_stemmer=" +
                             rouge_stem + "); best over references (score_multi); plain mean over examples, no "
                             "bootstrap",
                         mean_of(rl)});
  out.metrics.push_back({"rougeLsum",
                         std::string("rouge_score ") + kRougeScoreVersion + " rougeLsum F-measure (use_stemmer=" +
                             rouge_stem + ", sentences split on newlines); best over references; plain mean over "
                             "examples, no bootstrap",
                         mean_of(rlsum)});

  TokenStatistics& ts = out.tokens;
  ts.prediction_words = summarize(pred_words);
  ts.reference_words = summarize(ref_words);
  if (pred_tokens_known) ts.prediction_tokens = summarize(pred_tokens);
  if (ref_tokens_known) ts.reference_tokens = summarize(ref_tokens);
  ts.empty_prediction_share = examples.empty() ? 0.0 : static_cast<double>(empty) / examples.size();
  ts.max_new_tokens = options_.max_new_tokens;
  if (options_.max_new_tokens > 0 && pred_tokens_known) {
    ts.truncated_share = examples.empty() ? 0.0 : static_cast<double>(truncated) / examples.size();
  }
  return out;
}

namespace {
nlohmann::json summary_json(const LengthSummary& s) {
  if (!s.available) return nullptr;
  return {{"mean", s.mean}, {"median", s.median}, {"max", s.max}};
}
nlohmann::json number_or_null(double v) {
  if (std::isnan(v)) return nullptr;
  return v;
}
}  // namespace

nlohmann::json corpus_scores_json(const CorpusScores& scores) {
  nlohmann::json j;
  j["num_examples"] = scores.num_examples;
  nlohmann::json metrics = nlohmann::json::object();
  for (const NamedValue& m : scores.metrics) metrics[m.name] = {{"value", m.value}, {"implementation", m.implementation}};
  j["metrics"] = metrics;
  const BleuScore& b = scores.bleu;
  j["bleu_details"] = {{"bp", b.bp},
                       {"precisions", {b.precisions[0], b.precisions[1], b.precisions[2], b.precisions[3]}},
                       {"counts", {b.stats.correct[0], b.stats.correct[1], b.stats.correct[2], b.stats.correct[3]}},
                       {"totals", {b.stats.total[0], b.stats.total[1], b.stats.total[2], b.stats.total[3]}},
                       {"sys_len", b.stats.sys_len},
                       {"ref_len", b.stats.ref_len}};
  const TokenStatistics& t = scores.tokens;
  j["token_statistics"] = {
      {"prediction_words", summary_json(t.prediction_words)},
      {"reference_words", summary_json(t.reference_words)},
      {"prediction_tokens", summary_json(t.prediction_tokens)},
      {"reference_tokens", summary_json(t.reference_tokens)},
      {"empty_prediction_share", t.empty_prediction_share},
      {"truncated_share", t.truncated_share ? nlohmann::json(*t.truncated_share) : nlohmann::json(nullptr)},
      {"max_new_tokens", t.max_new_tokens},
      {"words", "str.split() (Python whitespace)"},
      {"empty_prediction", "no word after str.split()"},
      {"truncated", "prediction token count >= max_new_tokens"}};
  return j;
}

nlohmann::json example_scores_json(const ExampleScores& s, bool with_meteor) {
  nlohmann::json j = {{"exact_match", s.exact_match},
                      {"exact_match_normalized", s.exact_match_normalized},
                      {"sentence_bleu", s.sentence_bleu},
                      {"rougeL", s.rouge_l},
                      {"rougeLsum", s.rouge_lsum},
                      {"prediction_words", s.prediction_words},
                      {"empty_prediction", s.empty_prediction}};
  if (with_meteor) j["meteor"] = number_or_null(s.meteor);
  if (s.prediction_tokens >= 0) {
    j["prediction_tokens"] = s.prediction_tokens;
    j["truncated"] = s.truncated;
  }
  return j;
}

}  // namespace vlm::metrics
