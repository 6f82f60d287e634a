// C API of the evaluation metrics (include/vlmrt.h, between VLM_METRICS_API_BEGIN/END).
#include <cstring>
#include <string>
#include <vector>

#include "capi_internal.h"
#include "metrics/metrics.h"
#include "vlmrt.h"

struct vlm_metrics_result {
  vlm::metrics::CorpusScores scores;
  bool with_meteor = true;
};

using namespace vlm::capi;

void vlm_metrics_options_init(vlm_metrics_options* options) {
  if (options == nullptr) return;
  std::memset(options, 0, sizeof *options);
  options->struct_size = sizeof *options;
  const vlm::metrics::MetricsOptions defaults;
  options->em_ignore_case = defaults.exact_match.ignore_case ? 1 : 0;
  options->em_ignore_punctuation = defaults.exact_match.ignore_punctuation ? 1 : 0;
  options->em_ignore_numbers = defaults.exact_match.ignore_numbers ? 1 : 0;
  options->rouge_use_stemmer = defaults.rouge_use_stemmer ? 1 : 0;
  options->meteor_mode = VLM_METEOR_FULL;
  options->wordnet_dir = nullptr;
  options->meteor_alpha = defaults.meteor_alpha;
  options->meteor_beta = defaults.meteor_beta;
  options->meteor_gamma = defaults.meteor_gamma;
  options->meteor_preserve_line = defaults.meteor_tokenizer == vlm::metrics::MeteorTokenizer::preserve_line ? 1 : 0;
  options->max_new_tokens = defaults.max_new_tokens;
  options->num_threads = defaults.num_threads;
  options->per_example = defaults.per_example ? 1 : 0;
}

namespace {

vlm::metrics::MetricsOptions to_options(const vlm_metrics_options* c) {
  vlm::metrics::MetricsOptions o;
  if (c == nullptr) return o;
  check_struct_size(c, sizeof *c, "options");
  if (c->em_num_regexes_to_ignore > 0) require(c->em_regexes_to_ignore, "options->em_regexes_to_ignore");
  for (size_t i = 0; i < c->em_num_regexes_to_ignore; ++i) {
    if (c->em_regexes_to_ignore[i] == nullptr) {
      vlm::fail(vlm::ErrorCode::invalid_argument,
                "options->em_regexes_to_ignore[" + std::to_string(i) + "] is NULL");
    }
    o.exact_match.regexes_to_ignore.emplace_back(c->em_regexes_to_ignore[i]);
  }
  o.exact_match.ignore_case = c->em_ignore_case != 0;
  o.exact_match.ignore_punctuation = c->em_ignore_punctuation != 0;
  o.exact_match.ignore_numbers = c->em_ignore_numbers != 0;
  o.rouge_use_stemmer = c->rouge_use_stemmer != 0;
  switch (c->meteor_mode) {
    case VLM_METEOR_FULL: o.meteor = vlm::metrics::MeteorMode::full; break;
    case VLM_METEOR_WITHOUT_WORDNET: o.meteor = vlm::metrics::MeteorMode::without_wordnet; break;
    case VLM_METEOR_OFF: o.meteor = vlm::metrics::MeteorMode::off; break;
    default:
      vlm::fail(vlm::ErrorCode::invalid_argument, "options->meteor_mode is " + std::to_string(c->meteor_mode) +
                                                      "; use VLM_METEOR_FULL, VLM_METEOR_WITHOUT_WORDNET or "
                                                      "VLM_METEOR_OFF");
  }
  if (c->wordnet_dir != nullptr) o.wordnet_dir = c->wordnet_dir;
  o.meteor_alpha = c->meteor_alpha;
  o.meteor_beta = c->meteor_beta;
  o.meteor_gamma = c->meteor_gamma;
  o.meteor_tokenizer = c->meteor_preserve_line ? vlm::metrics::MeteorTokenizer::preserve_line
                                               : vlm::metrics::MeteorTokenizer::punkt;
  o.max_new_tokens = c->max_new_tokens;
  if (c->num_threads < 0) {
    vlm::fail(vlm::ErrorCode::invalid_argument, "options->num_threads must be >= 0 (0 = one per hardware thread)");
  }
  o.num_threads = c->num_threads;
  o.per_example = c->per_example != 0;
  if (c->count_tokens != nullptr) {
    vlm_count_tokens_fn fn = c->count_tokens;
    void* user = c->count_tokens_user_data;
    o.count_tokens = [fn, user](std::string_view text) -> std::int64_t { return fn(text.data(), text.size(), user); };
  }
  return o;
}

}  // namespace

vlm_status vlm_metrics_score(const vlm_metrics_example* examples, size_t num_examples,
                             const vlm_metrics_options* options, vlm_metrics_result** out_result) {
  return guard([&] {
    require(out_result, "out_result");
    if (num_examples > 0) require(examples, "examples");
    vlm::metrics::MetricsOptions o = to_options(options);
    std::vector<vlm::metrics::Example> list;
    list.reserve(num_examples);
    for (size_t i = 0; i < num_examples; ++i) {
      const vlm_metrics_example& e = examples[i];
      const std::string where = "examples[" + std::to_string(i) + "]";
      if (e.prediction == nullptr) vlm::fail(vlm::ErrorCode::invalid_argument, where + ".prediction is NULL");
      if (e.num_references == 0 || e.references == nullptr) {
        vlm::fail(vlm::ErrorCode::invalid_argument, where + " has no references; give at least one");
      }
      vlm::metrics::Example ex;
      ex.prediction = e.prediction;
      for (size_t r = 0; r < e.num_references; ++r) {
        if (e.references[r] == nullptr) {
          vlm::fail(vlm::ErrorCode::invalid_argument, where + ".references[" + std::to_string(r) + "] is NULL");
        }
        ex.references.emplace_back(e.references[r]);
      }
      ex.prediction_tokens = e.prediction_tokens;
      if (e.reference_tokens != nullptr) ex.reference_tokens.assign(e.reference_tokens, e.reference_tokens + e.num_references);
      list.push_back(std::move(ex));
    }
    auto result = std::make_unique<vlm_metrics_result>();
    result->with_meteor = o.meteor != vlm::metrics::MeteorMode::off;
    vlm::metrics::MetricsScorer scorer(std::move(o));
    result->scores = scorer.score(list);
    *out_result = result.release();
  });
}

void vlm_metrics_result_free(vlm_metrics_result* result) { delete result; }

vlm_status vlm_metrics_result_corpus_json(const vlm_metrics_result* result, char** out_json) {
  return guard([&] {
    require(result, "result");
    require(out_json, "out_json");
    std::string text = vlm::metrics::corpus_scores_json(result->scores).dump(2);
    *out_json = copy_string(text);
  });
}

vlm_status vlm_metrics_result_example_json(const vlm_metrics_result* result, size_t index, char** out_json) {
  return guard([&] {
    require(result, "result");
    require(out_json, "out_json");
    const auto& examples = result->scores.examples;
    if (examples.empty() && result->scores.num_examples > 0) {
      vlm::fail(vlm::ErrorCode::invalid_argument, "the result has no per-example scores: score with "
                                                  "options->per_example = 1");
    }
    if (index >= examples.size()) {
      vlm::fail(vlm::ErrorCode::invalid_argument, "example index " + std::to_string(index) + " is out of range (" +
                                                      std::to_string(examples.size()) + " examples)");
    }
    *out_json = copy_string(vlm::metrics::example_scores_json(examples[index], result->with_meteor).dump());
  });
}

vlm_status vlm_metrics_result_value(const vlm_metrics_result* result, const char* name, double* out_value,
                                    const char** out_implementation) {
  return guard([&] {
    require(result, "result");
    require(name, "name");
    require(out_value, "out_value");
    const vlm::metrics::NamedValue* v = result->scores.find(name);
    if (v == nullptr) {
      std::string names;
      for (const auto& m : result->scores.metrics) names += (names.empty() ? "" : ", ") + m.name;
      vlm::fail(vlm::ErrorCode::not_found, std::string("no metric named '") + name + "' in this result (it has: " +
                                               names + ")");
    }
    *out_value = v->value;
    if (out_implementation != nullptr) *out_implementation = v->implementation.c_str();
  });
}

size_t vlm_metrics_result_num_examples(const vlm_metrics_result* result) {
  return result == nullptr ? 0 : result->scores.num_examples;
}
