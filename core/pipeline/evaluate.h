// Evaluation of a model (with its adapters already attached) on a CSV file: each row's image and query become a
// conversation, the session generates the answers in batches, and core/metrics scores them against the rows'
// references. Writes, atomically, into job.output_dir:
//   predictions.jsonl        one line per row: {"index", "csv_line", "image", "query", "prediction", "reference",
//                            "finish_reason", "scores": {per-example metrics}}
//   generation_metrics.json  the corpus metrics (core/metrics' corpus_scores_json: "num_examples", "metrics" with
//                            each value's reference implementation, "bleu_details", "token_statistics") and an
//                            "evaluation" block saying what was evaluated (model, adapters, CSV, options, runtime)
//
// Rows are checked before anything is generated: every row must have an image reference, a reference answer,
// and an image that loads (local files, file:// URLs and http(s) URLs, downloaded into the cache). A bad row fails
// the evaluation with an error naming the CSV file, the row and its line; no output is written then.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "generate/generate.h"
#include "metrics/metrics.h"
#include "pipeline/config.h"
#include "pipeline/image_source.h"

namespace vlm {

class Session;

struct EvaluationJob {
  std::string csv;
  std::string base_dir;  // relative image paths are resolved here; "" = the CSV's folder
  std::string image_column = "url";  // "" = text-only prompts (no image column is read)
  // The evaluation columns first; when the file lacks them, the training columns.
  std::string query_column = "query";
  std::string annotation_column = "annotation";
  std::string instruction_column = "instruction";
  std::string response_column = "response";
  // The user text of each row: every "{query}" replaced by the row's query (no other braces are special).
  std::string prompt_template = "{query}";
  std::string system_message;  // "" = none (the chat template's default)
  int batch_size = 1;
  std::optional<std::int64_t> max_samples;  // the first N rows
  GenerationOptions generation;
  std::string output_dir;
  ImageFetchOptions fetch;
  // Metric settings; count_tokens and max_new_tokens are filled in by the evaluation (model tokenizer, the
  // generation's max_new_tokens).
  metrics::MetricsOptions metrics;
  // Recorded in generation_metrics.json's "evaluation" block (the caller loaded them into the session).
  std::string model_label;
  std::vector<std::string> adapters;
  // Called after each batch; return false to stop (the evaluation then throws vlm::Error(cancelled)).
  std::function<bool(std::int64_t done, std::int64_t total)> on_progress;
  std::function<void(const std::string&)> on_log;
  const std::atomic<bool>* cancel = nullptr;
};

struct EvaluationSummary {
  nlohmann::ordered_json metrics;  // content of generation_metrics.json
  std::int64_t examples = 0;
  std::string predictions_path, metrics_path;
};

EvaluationSummary run_evaluation(Session& session, const EvaluationJob& job);

// ---- building blocks, exposed for tests ----------------------------------------------------------------------

// One evaluation row after validation.
struct EvaluationRow {
  std::int64_t index = 0;     // 0-based among the CSV's data rows
  std::int64_t csv_line = 0;  // 1-based line where the row starts
  std::string image;          // the reference as written ("" for text-only)
  std::string query;
  std::string reference;
};

// Reads and validates the rows (columns, empty cells, max_samples); images are not loaded.
std::vector<EvaluationRow> read_evaluation_rows(const EvaluationJob& job);
std::string apply_prompt_template(const std::string& prompt_template, const std::string& query);

// A finished training run named by vlm_evaluate --run: <results_dir>/<run>/, where results_dir is given or is the
// experiment config's output_dir. The model comes from the run's metrics.json (written by the trainer: "model",
// "model_type", "adapter_dir") or run.json, else from the config's models[] entry named by the run's
// "<model>__<variant>" prefix; the adapter is <run>/lora_adapter (else metrics.json's adapter_dir).
struct EvaluationRun {
  std::string run_dir;
  std::string model;        // "" when nothing names it
  std::string model_type;   // "" when unknown
  std::string adapter_dir;  // "" when the run has none (e.g. a baseline run)
  std::optional<ExperimentConfig> config;  // when a config was given
  std::optional<ModelEntry> model_entry;   // the config's entry of the run's model
};
// `config_path` or `results_dir` (or both; results_dir wins for the folder) must be given. Errors list the runs
// that exist.
EvaluationRun resolve_evaluation_run(const std::string& run, const std::string& config_path, const std::string& results_dir);

// Whether a checkpoint of `family` (ModelInfo::family) is what `model_type` (any spelling the config accepts, or
// "causal_lm") names; `text_only` says the model has no image token.
bool model_type_matches(const std::string& model_type, const std::string& family, bool text_only);

}  // namespace vlm
