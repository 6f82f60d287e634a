// The worked vectors of shared/docs/metrics-notes.md (numbers from the reference packages) and error handling.
#include <doctest/doctest.h>

#include <cmath>

#include "metrics/metrics.h"
#include "metrics/tokenize.h"
#include "metrics/wordnet.h"
#include "metrics_test_util.h"

using namespace vlm::metrics;

namespace {
const std::vector<std::string> kHyps = {"The cat sat on the mat.", "A quick brown dog jumps over the lazy fox!",
                                        "Hello world"};
const std::vector<std::string> kRefs = {"The cat is sitting on the mat.", "A fast brown fox jumps over the lazy dog.",
                                        "Hello there world"};

Example ex(std::string prediction, std::vector<std::string> references) {
  Example e;
  e.prediction = std::move(prediction);
  e.references = std::move(references);
  return e;
}

std::vector<std::string> split_ws(const std::string& s) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < s.size()) {
    size_t j = s.find(' ', i);
    if (j == std::string::npos) j = s.size();
    if (j > i) out.push_back(s.substr(i, j - i));
    i = j + 1;
  }
  return out;
}
}  // namespace

TEST_CASE("13a tokenizer: the worked example") {
  CHECK(tokenize_13a("Hello, world! It's 3.14 or 1,000 - a-b 5-3 (x) &amp; \"q\"") ==
        "Hello , world ! It's 3.14 or 1,000 - a-b 5 - 3 ( x ) & \" q \"");
}

TEST_CASE("sacrebleu corpus and sentence BLEU: the worked vectors") {
  std::vector<std::vector<std::string>> refs;
  for (const auto& r : kRefs) refs.push_back({r});
  BleuScore corpus = corpus_bleu(kHyps, refs);
  CHECK(corpus.score == doctest::Approx(34.10431952042834).epsilon(1e-12));
  const double expected[] = {42.38365628278778, 31.239399369202552, 42.88819424803536};
  for (size_t i = 0; i < 3; ++i) {
    CHECK(sentence_bleu(kHyps[i], {kRefs[i]}) == doctest::Approx(expected[i]).epsilon(1e-12));
  }
}

TEST_CASE("BLEU edge cases: empty hypothesis and no match give 0") {
  CHECK(sentence_bleu("", {"a b c"}) == 0.0);
  CHECK(sentence_bleu("x y z", {"a b c"}) == 0.0);
  CHECK(sentence_bleu("a b c d", {"a b c d"}) == doctest::Approx(100.0).epsilon(1e-12));
  vlm::test::expect_error([] { bleu_statistics("a", {}); }, vlm::ErrorCode::invalid_argument, {"reference"});
}

TEST_CASE("nltk METEOR on whitespace tokens: the HF doctest and the worked vectors") {
  auto wn = WordNet::shared(vlm::test::wordnet_dir());
  CHECK(wn->version() == "3.0");
  auto hyp = split_ws("It is a guide to action which ensures that the military always obeys the commands of the party");
  auto ref = split_ws("It is a guide to action that ensures that the military will forever heed Party commands");
  CHECK(single_meteor_score(ref, hyp, wn.get()) == doctest::Approx(0.6944444444444445).epsilon(1e-12));
  const double expected[] = {0.8534621578099838, 0.7687074829931974, 0.3448275862068965};
  for (size_t i = 0; i < 3; ++i) {
    CHECK(single_meteor_score(split_ws(kRefs[i]), split_ws(kHyps[i]), wn.get()) ==
          doctest::Approx(expected[i]).epsilon(1e-12));
  }
  // No word in common and empty sides score 0 (nltk's ZeroDivisionError branch).
  CHECK(single_meteor_score({"this", "is", "a", "cat"}, {"non", "matching", "hypothesis"}, wn.get()) == 0.0);
  CHECK(single_meteor_score({}, {"a"}, wn.get()) == 0.0);
  CHECK(single_meteor_score({"a"}, {}, wn.get()) == 0.0);
}

TEST_CASE("bad input gives clear errors") {
  MetricsOptions bad_regex;
  bad_regex.meteor = MeteorMode::off;
  bad_regex.exact_match.regexes_to_ignore = {"(unclosed"};
  vlm::test::expect_error([&] { MetricsScorer s(bad_regex); }, vlm::ErrorCode::invalid_argument,
                          {"regexes_to_ignore[0]", "does not compile"});

  MetricsOptions missing_wordnet;
  missing_wordnet.wordnet_dir = "/nonexistent/wordnet";
  vlm::test::expect_error([&] { MetricsScorer s(missing_wordnet); }, vlm::ErrorCode::not_found,
                          {"/nonexistent/wordnet", "wordnet-base"});

  MetricsOptions off;
  off.meteor = MeteorMode::off;
  MetricsScorer scorer(off);
  vlm::test::expect_error([&] { scorer.score({ex("a", {})}); }, vlm::ErrorCode::invalid_argument,
                          {"example 0", "reference"});
  vlm::test::expect_error([&] { scorer.score({ex("ok", {"x"}), ex("bad \xff", {"x"})}); },
                          vlm::ErrorCode::invalid_argument, {"example 1 prediction", "UTF-8"});
  Example mismatched = ex("a", {"a", "b"});
  mismatched.reference_tokens = {1};
  vlm::test::expect_error([&] { scorer.score({mismatched}); }, vlm::ErrorCode::invalid_argument,
                          {"2 references", "1 reference token counts"});
}

TEST_CASE("METEOR without WordNet is reported under its own name, and off means absent") {
  MetricsOptions o;
  o.meteor = MeteorMode::without_wordnet;
  o.wordnet_dir = "/nonexistent/wordnet";  // not read in this mode
  MetricsScorer scorer(o);
  CorpusScores r = scorer.score({ex("A quick brown dog", {"A fast brown dog"})});
  REQUIRE(r.find("meteor_no_wordnet") != nullptr);
  CHECK(r.find("meteor") == nullptr);
  CHECK(r.find("meteor_no_wordnet")->implementation.find("WordNet synonym stage disabled") != std::string::npos);
  o.meteor = MeteorMode::off;
  MetricsScorer off(o);
  r = off.score({ex("a", {"a"})});
  CHECK(r.find("meteor") == nullptr);
  CHECK(r.find("meteor_no_wordnet") == nullptr);
  CHECK(std::isnan(r.examples[0].meteor));
}

TEST_CASE("every corpus metric names its reference implementation") {
  MetricsOptions o;
  o.wordnet_dir = vlm::test::wordnet_dir();
  MetricsScorer scorer(o);
  CorpusScores r = scorer.score({ex("The cat sat on the mat.", {"The cat is sitting on the mat."})});
  const char* expected[][2] = {{"exact_match", "HF evaluate exact_match"},
                               {"exact_match_normalized", "' '.join(text.split())"},
                               {"bleu", "sacrebleu 2.6.0 corpus_bleu (nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp"},
                               {"sentence_bleu", "sacrebleu 2.6.0 sentence_bleu"},
                               {"meteor", "nltk 3.10.4 meteor_score (alpha=0.9, beta=3, gamma=0.5"},
                               {"rougeL", "rouge_score 0.1.2 rougeL F-measure (use_stemmer=False)"},
                               {"rougeLsum", "rouge_score 0.1.2 rougeLsum"}};
  for (auto& [name, implementation] : expected) {
    const NamedValue* v = r.find(name);
    REQUIRE_MESSAGE(v != nullptr, std::string(name));
    CHECK_MESSAGE(v->implementation.find(implementation) != std::string::npos, v->implementation);
  }
  nlohmann::json j = corpus_scores_json(r);
  CHECK(j["metrics"]["bleu"]["value"].get<double>() == doctest::Approx(r.bleu.score));
  CHECK(j["num_examples"] == 1);
  CHECK(j["token_statistics"]["prediction_tokens"].is_null());  // no counts and no callback given
}
