// Component vectors from the reference packages: sacrebleu's 13a tokenizer, nltk's word tokenizer, rouge_score's
// tokenizer on every text of the conformance corpus; nltk's PorterStemmer, WordNet morphy and synsets on every
// distinct word (tests/fixtures/metrics/{tokenization,words}.jsonl).
#include <doctest/doctest.h>

#include <algorithm>
#include <set>

#include "metrics/metrics.h"
#include "metrics/porter.h"
#include "metrics/punkt.h"
#include "metrics/tokenize.h"
#include "metrics/unicode.h"
#include "metrics/wordnet.h"
#include "metrics_test_util.h"

using namespace vlm::metrics;

TEST_CASE("tokenizers equal sacrebleu 13a, nltk word_tokenize (with and without Punkt) and rouge_score") {
  auto rows = vlm::test::read_jsonl(vlm::test::fixture("metrics/tokenization.jsonl"));
  REQUIRE(rows.size() > 3000);
  size_t bad_13a = 0, bad_nltk = 0, bad_rouge = 0, bad_punkt = 0, bad_sentences = 0;
  for (const auto& row : rows) {
    const std::string text = row["text"];
    const std::string expected_13a = row["13a"];
    if (tokenize_13a(python_rstrip(text)) != expected_13a && ++bad_13a <= 5) {
      FAIL_CHECK("13a differs for " << nlohmann::json(text).dump() << ": got "
                                    << nlohmann::json(tokenize_13a(python_rstrip(text))).dump());
    }
    const auto expected_nltk = row["nltk"].get<std::vector<std::string>>();
    auto got_nltk = nltk_word_tokenize(text);
    if (got_nltk != expected_nltk && ++bad_nltk <= 5) {
      FAIL_CHECK("nltk differs for " << nlohmann::json(text).dump() << ": got " << nlohmann::json(got_nltk).dump()
                                     << " expected " << nlohmann::json(expected_nltk).dump());
    }
    const auto expected_sentences = row["punkt_sentences"].get<std::vector<std::string>>();
    auto got_sentences = punkt_sentences(text);
    if (got_sentences != expected_sentences && ++bad_sentences <= 5) {
      FAIL_CHECK("Punkt sentences differ for " << nlohmann::json(text).dump() << ": got "
                                               << nlohmann::json(got_sentences).dump() << " expected "
                                               << nlohmann::json(expected_sentences).dump());
    }
    const auto expected_punkt = row["nltk_punkt"].get<std::vector<std::string>>();
    auto got_punkt = nltk_word_tokenize_sentences(text);
    if (got_punkt != expected_punkt && ++bad_punkt <= 5) {
      FAIL_CHECK("word_tokenize differs for " << nlohmann::json(text).dump() << ": got "
                                              << nlohmann::json(got_punkt).dump() << " expected "
                                              << nlohmann::json(expected_punkt).dump());
    }
    const auto expected_rouge = row["rouge"].get<std::vector<std::string>>();
    if (rouge_tokenize(text, false) != expected_rouge && ++bad_rouge <= 5) {
      FAIL_CHECK("rouge tokens differ for " << nlohmann::json(text).dump());
    }
  }
  CHECK(bad_13a == 0);
  CHECK(bad_nltk == 0);
  CHECK(bad_rouge == 0);
  CHECK(bad_sentences == 0);
  CHECK(bad_punkt == 0);
}

TEST_CASE("PorterStemmer, WordNet morphy and lemma names equal nltk on every corpus word") {
  auto rows = vlm::test::read_jsonl(vlm::test::fixture("metrics/words.jsonl"));
  REQUIRE(rows.size() > 1000);
  auto wn = WordNet::shared(vlm::test::wordnet_dir());
  size_t bad_stem = 0, bad_morphy = 0, bad_names = 0;
  for (const auto& row : rows) {
    const std::string word = row["word"];
    const std::string stem = porter_stem_utf8(word);
    if (stem != row["porter"].get<std::string>() && ++bad_stem <= 5) {
      FAIL_CHECK("porter(" << word << ") = " << stem << ", nltk: " << row["porter"].get<std::string>());
    }
    for (char pos : {'n', 'v', 'a', 'r'}) {
      auto expected = row["morphy"][std::string(1, pos)].get<std::vector<std::string>>();
      auto got = wn->morphy(python_lower_utf8(word), pos);
      if (got != expected && ++bad_morphy <= 5) {
        FAIL_CHECK("morphy(" << word << ", " << pos << ") = " << nlohmann::json(got).dump());
      }
    }
    auto names = wn->lemma_names(word);
    std::sort(names.begin(), names.end());
    auto expected_names = row["lemma_names"].get<std::vector<std::string>>();
    if (names != expected_names && ++bad_names <= 5) {
      FAIL_CHECK("lemma names of " << word << ": " << nlohmann::json(names).dump() << " expected "
                                   << nlohmann::json(expected_names).dump());
    }
  }
  CHECK(bad_stem == 0);
  CHECK(bad_morphy == 0);
  CHECK(bad_names == 0);
}

TEST_CASE("Python str semantics: lower, split, strip") {
  CHECK(python_lower_utf8("İSTANBUL") == "i\xCC\x87stanbul");           // U+0130 lowers to i + U+0307
  CHECK(python_lower_utf8("ΟΔΟΣ ΟΔΟΣ.") == "οδος οδος.");                // final sigma
  CHECK(python_lower_utf8("ΣΑ") == "σα");
  CHECK(python_lower_utf8("\xE2\x84\xAA") == "k");                       // KELVIN SIGN
  auto pieces = python_split("a\xC2\xA0" "b\x1c" "c\xE2\x80\x8B" "d\xC2\x85" "e");  // NBSP, FS, ZWSP (not space), NEL
  CHECK(pieces == std::vector<std::string_view>{"a", "b", "c\xE2\x80\x8B" "d", "e"});
  CHECK(python_strip(" \t x y \n") == "x y");
  CHECK(python_rstrip("x \xE3\x80\x80") == "x");  // ideographic space
  CHECK(rouge_tokenize("İstanbul KELVIN \xE2\x84\xAA", false) == std::vector<std::string>{"i", "stanbul", "kelvin", "k"});
  CHECK(rouge_tokenize("Running dogs quickly", true) == std::vector<std::string>{"run", "dog", "quickli"});
}

TEST_CASE("UTF-8 validation names the offset") {
  vlm::test::expect_error([] { check_utf8("ab\xC3", "text"); }, vlm::ErrorCode::invalid_argument, {"offset 2"});
  vlm::test::expect_error([] { check_utf8("\xED\xA0\x80", "text"); }, vlm::ErrorCode::invalid_argument,
                          {"UTF-8"});  // a surrogate
  vlm::test::expect_error([] { check_utf8("\xC0\xAF", "text"); }, vlm::ErrorCode::invalid_argument,
                          {"UTF-8"});  // overlong
  check_utf8("héllo 🙂", "text");
}

TEST_CASE("rougeL's bit-parallel LCS equals the dynamic programme of rouge_score on random sequences") {
  unsigned seed = 12345;
  auto next = [&seed] {
    seed = seed * 1103515245u + 12345u;
    return (seed >> 16) & 0x7FFF;
  };
  for (int trial = 0; trial < 300; ++trial) {
    const size_t n = next() % 200, m = next() % 200;
    const unsigned alphabet = 1 + next() % 6;  // few symbols: many matches, long carries across 64-bit words
    std::vector<std::string> a(n), b(m);
    for (auto& t : a) t = std::string(1, static_cast<char>('a' + next() % alphabet));
    for (auto& t : b) t = std::string(1, static_cast<char>('a' + next() % alphabet));
    std::vector<std::vector<int>> dp(n + 1, std::vector<int>(m + 1, 0));
    for (size_t i = 1; i <= n; ++i) {
      for (size_t j = 1; j <= m; ++j) {
        dp[i][j] = a[i - 1] == b[j - 1] ? dp[i - 1][j - 1] + 1 : std::max(dp[i - 1][j], dp[i][j - 1]);
      }
    }
    const int lcs = dp[n][m];
    double expected = 0.0;
    if (n > 0 && m > 0) {
      const double p = static_cast<double>(lcs) / m, r = static_cast<double>(lcs) / n;
      expected = p + r > 0 ? 2 * p * r / (p + r) : 0.0;
    }
    REQUIRE_MESSAGE(rouge_lcs_f(a, b) == expected, "trial " << trial << " n=" << n << " m=" << m);
  }
}
