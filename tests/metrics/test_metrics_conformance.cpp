// Conformance: 2,228 prediction/reference pairs (captions, short answers, empty strings, punctuation only, numbers,
// case and Unicode variants, tokenizer and sentence-splitting edge cases, very long texts, 1-5 references) scored by the reference
// packages (tools/oracle/gen_metrics_fixtures.py). Every metric must agree within 1e-9 per example and per corpus.
#include <doctest/doctest.h>

#include <cmath>

#include "metrics/metrics.h"
#include "metrics_test_util.h"

using namespace vlm::metrics;

namespace {

constexpr double kTolerance = 1e-9;

struct Corpus {
  std::vector<nlohmann::json> rows;
  nlohmann::json expected;
  std::vector<Example> examples;
};

const Corpus& corpus() {
  static const Corpus c = [] {
    Corpus c;
    c.rows = vlm::test::read_jsonl(vlm::test::fixture("metrics/conformance.jsonl"));
    c.expected = vlm::test::read_json(vlm::test::fixture("metrics/conformance_corpus.json"));
    for (const auto& row : c.rows) {
      Example ex;
      ex.prediction = row["prediction"];
      ex.references = row["references"].get<std::vector<std::string>>();
      ex.prediction_tokens = row["prediction_tokens"];
      ex.reference_tokens = row["reference_tokens"].get<std::vector<std::int64_t>>();
      c.examples.push_back(std::move(ex));
    }
    return c;
  }();
  return c;
}

// Compares one per-example metric over the whole corpus; reports the first few differences.
void check_per_example(const std::vector<ExampleScores>& got, const char* key,
                       double (*field)(const ExampleScores&)) {
  const Corpus& c = corpus();
  REQUIRE(got.size() == c.rows.size());
  size_t bad = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double expected = c.rows[i][key].get<double>();
    const double value = field(got[i]);
    if (!(std::fabs(value - expected) <= kTolerance) && ++bad <= 5) {
      FAIL_CHECK(std::string(key) << " of example " << i << " (" << c.rows[i]["kind"].get<std::string>()
                     << "): got " << value << ", reference " << expected << "; prediction "
                     << c.rows[i]["prediction"].dump() << " references " << c.rows[i]["references"].dump());
    }
  }
  CHECK_MESSAGE(bad == 0, bad << " examples differ in " << std::string(key));
}

void check_corpus_value(const CorpusScores& r, const char* name, const char* key) {
  const NamedValue* v = r.find(name);
  REQUIRE_MESSAGE(v != nullptr, std::string(name));
  const double expected = corpus().expected[key].get<double>();
  CHECK_MESSAGE(std::fabs(v->value - expected) <= kTolerance, std::string(name) << ": " << v->value << " vs " << expected);
}

}  // namespace

TEST_CASE("conformance corpus: default options (HF evaluate settings)") {
  const Corpus& c = corpus();
  REQUIRE(c.examples.size() >= 2000);
  MetricsOptions o;
  o.wordnet_dir = vlm::test::wordnet_dir();
  o.max_new_tokens = c.expected["max_new_tokens"];
  MetricsScorer scorer(o);
  CorpusScores r = scorer.score(c.examples);

  check_per_example(r.examples, "exact_match", [](const ExampleScores& s) { return s.exact_match; });
  check_per_example(r.examples, "exact_match_normalized",
                    [](const ExampleScores& s) { return s.exact_match_normalized; });
  check_per_example(r.examples, "sentence_bleu", [](const ExampleScores& s) { return s.sentence_bleu; });
  check_per_example(r.examples, "meteor", [](const ExampleScores& s) { return s.meteor; });
  check_per_example(r.examples, "rougeL", [](const ExampleScores& s) { return s.rouge_l; });
  check_per_example(r.examples, "rougeLsum", [](const ExampleScores& s) { return s.rouge_lsum; });

  check_corpus_value(r, "bleu", "bleu");
  check_corpus_value(r, "sentence_bleu", "sentence_bleu");
  check_corpus_value(r, "exact_match", "exact_match");
  check_corpus_value(r, "exact_match_normalized", "exact_match_normalized");
  check_corpus_value(r, "meteor", "meteor");
  check_corpus_value(r, "rougeL", "rougeL");
  check_corpus_value(r, "rougeLsum", "rougeLsum");

  const auto& e = c.expected;
  CHECK(std::fabs(r.bleu.bp - e["bleu_bp"].get<double>()) <= kTolerance);
  CHECK(r.bleu.stats.sys_len == e["bleu_sys_len"].get<std::int64_t>());
  CHECK(r.bleu.stats.ref_len == e["bleu_ref_len"].get<std::int64_t>());
  for (int n = 0; n < 4; ++n) {
    CHECK(r.bleu.stats.correct[n] == e["bleu_counts"][n].get<std::int64_t>());
    CHECK(r.bleu.stats.total[n] == e["bleu_totals"][n].get<std::int64_t>());
  }
  CHECK(r.find("bleu")->implementation.find(e["bleu_signature"].get<std::string>()) != std::string::npos);

  // Token statistics (numpy mean / median / max over the given counts and str.split() words).
  auto check_summary = [&](const LengthSummary& s, const char* key) {
    REQUIRE_MESSAGE(s.available, key);
    CHECK_MESSAGE(std::fabs(s.mean - e[key]["mean"].get<double>()) <= kTolerance, key);
    CHECK_MESSAGE(s.median == e[key]["median"].get<double>(), key);
    CHECK_MESSAGE(s.max == e[key]["max"].get<std::int64_t>(), key);
  };
  check_summary(r.tokens.prediction_words, "prediction_words");
  check_summary(r.tokens.reference_words, "reference_words");
  check_summary(r.tokens.prediction_tokens, "prediction_tokens");
  check_summary(r.tokens.reference_tokens, "reference_tokens");
  CHECK(std::fabs(r.tokens.empty_prediction_share - e["empty_prediction_share"].get<double>()) <= kTolerance);
  REQUIRE(r.tokens.truncated_share.has_value());
  CHECK(std::fabs(*r.tokens.truncated_share - e["truncated_share"].get<double>()) <= kTolerance);
  for (size_t i = 0; i < r.examples.size(); ++i) {
    CHECK(r.examples[i].prediction_words == c.rows[i]["prediction_words"].get<std::int64_t>());
  }
}

TEST_CASE("conformance corpus: exact match options, ROUGE with stemming, METEOR without WordNet") {
  const Corpus& c = corpus();
  MetricsOptions o;
  const auto& used = c.expected["exact_match_options_used"];
  o.exact_match.regexes_to_ignore = used["regexes_to_ignore"].get<std::vector<std::string>>();
  o.exact_match.ignore_case = used["ignore_case"];
  o.exact_match.ignore_punctuation = used["ignore_punctuation"];
  o.exact_match.ignore_numbers = used["ignore_numbers"];
  o.rouge_use_stemmer = true;
  o.meteor = MeteorMode::without_wordnet;
  MetricsScorer scorer(o);
  CorpusScores r = scorer.score(c.examples);

  check_per_example(r.examples, "exact_match_options", [](const ExampleScores& s) { return s.exact_match; });
  check_per_example(r.examples, "exact_match_options_normalized",
                    [](const ExampleScores& s) { return s.exact_match_normalized; });
  check_per_example(r.examples, "rougeL_stem", [](const ExampleScores& s) { return s.rouge_l; });
  check_per_example(r.examples, "rougeLsum_stem", [](const ExampleScores& s) { return s.rouge_lsum; });
  check_per_example(r.examples, "meteor_no_wordnet", [](const ExampleScores& s) { return s.meteor; });
  check_corpus_value(r, "exact_match", "exact_match_options");
  check_corpus_value(r, "exact_match_normalized", "exact_match_options_normalized");
  check_corpus_value(r, "rougeL", "rougeL_stem");
  check_corpus_value(r, "rougeLsum", "rougeLsum_stem");
  check_corpus_value(r, "meteor_no_wordnet", "meteor_no_wordnet");
  CHECK(r.find("rougeL")->implementation.find("use_stemmer=True") != std::string::npos);
  CHECK(r.tokens.prediction_tokens.available);  // counts given in the examples
}

TEST_CASE("conformance corpus: METEOR over word_tokenize(preserve_line=True)") {
  const Corpus& c = corpus();
  MetricsOptions o;
  o.wordnet_dir = vlm::test::wordnet_dir();
  o.meteor_tokenizer = MeteorTokenizer::preserve_line;
  CorpusScores r = MetricsScorer(o).score(c.examples);
  check_per_example(r.examples, "meteor_preserve_line", [](const ExampleScores& s) { return s.meteor; });
  check_corpus_value(r, "meteor", "meteor_preserve_line");
  CHECK(r.find("meteor")->implementation.find("preserve_line=True") != std::string::npos);
}

TEST_CASE("threads change nothing: same scores with 1 and 3 threads, same first error") {
  const Corpus& c = corpus();
  MetricsOptions o;
  o.wordnet_dir = vlm::test::wordnet_dir();
  o.num_threads = 1;
  CorpusScores one = MetricsScorer(o).score(c.examples);
  o.num_threads = 3;
  CorpusScores three = MetricsScorer(o).score(c.examples);
  REQUIRE(one.examples.size() == three.examples.size());
  size_t differ = 0;
  for (size_t i = 0; i < one.examples.size(); ++i) {
    const ExampleScores& a = one.examples[i];
    const ExampleScores& b = three.examples[i];
    if (a.exact_match != b.exact_match || a.sentence_bleu != b.sentence_bleu || a.meteor != b.meteor ||
        a.rouge_l != b.rouge_l || a.rouge_lsum != b.rouge_lsum || a.prediction_words != b.prediction_words) {
      ++differ;
    }
  }
  CHECK(differ == 0);
  REQUIRE(one.metrics.size() == three.metrics.size());
  for (size_t m = 0; m < one.metrics.size(); ++m) CHECK(one.metrics[m].value == three.metrics[m].value);

  std::vector<Example> bad = c.examples;
  bad[1500].references.clear();
  bad[1900].prediction = "\xff";
  vlm::test::expect_error([&] { MetricsScorer(o).score(bad); }, vlm::ErrorCode::invalid_argument, {"example 1500"});
}
