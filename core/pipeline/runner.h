// The ablation runner behind vlm_finetune_and_eval and vlm_pipeline_run: every model x LoRA variant of an
// experiment config is trained and evaluated in its own run folder, and the runs are put side by side.
//
//   <output_dir>/<model>__<variant>/        one run
//     checkpoints/ lora_adapter/ final/ metrics.json         written by the trainer (core/train/trainer.h)
//     predictions.jsonl generation_metrics.json              validation set (evaluation.enabled)
//     test/predictions.jsonl test/generation_metrics.json    test set (data.test_csv)
//     run_config.json                                        the settings the run was made with
//     run_state.json                                         which stages finished (the "done" marker)
//     run.log                                                every log and progress line of the run
//     error.json                                             only while the run's last attempt failed
//   <output_dir>/<model>__baseline/         the untuned model evaluated (evaluation.baseline)
//   <output_dir>/ablation_summary.json, ablation_summary.md  every run side by side
//
// Re-running the same config skips finished stages and resumes interrupted training from its latest checkpoint.
// A run that fails is recorded (error.json, the summary) and the grid goes on. Every file is written atomically.
#pragma once

#include <nlohmann/json.hpp>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "generate/generate.h"
#include "model/registry.h"
#include "pipeline/config.h"
#include "pipeline/progress.h"
#include "processor/image_processor.h"
#include "train/trainer.h"

namespace vlm {

struct PipelineProgress {
  std::string run;     // "<model>__<variant>" or "<model>__baseline"
  std::string stage;   // "train", "evaluate" (validation set) or "test"
  std::size_t run_index = 0, num_runs = 0;  // 0-based index among the runs of this invocation
  std::int64_t done = 0, total = 0;         // optimizer steps (train) or examples (evaluate, test)
  std::optional<double> loss, learning_rate;  // train only
  double elapsed_seconds = 0;
};

struct PipelineOptions {
  std::string config_path;
  std::string output_dir;               // "" = the config's output_dir
  // Run names ("<model>__<variant>", "<model>__baseline"), model names or variant names; empty = every run.
  std::vector<std::string> only_runs;
  bool validate_only = false;           // check the config, its files and that every model resolves; run nothing
  bool evaluate = true;                 // false: train only, even when evaluation.enabled
  bool check_files = true;              // see ConfigCheckOptions
  ProgressDisplay::Mode display = ProgressDisplay::Mode::off;  // progress drawn on display_stream
  std::FILE* display_stream = stderr;
  // Return false to stop: training stops after saving a checkpoint, evaluation after the current batch.
  std::function<bool(const PipelineProgress&)> on_progress;
  std::function<void(const std::string& run, const std::string& line)> on_log;
  const std::atomic<bool>* cancel = nullptr;  // checked like on_progress returning false
};

struct PipelineResult {
  nlohmann::ordered_json summary;      // the content of ablation_summary.json
  std::string summary_path, markdown_path;  // "" when validate_only
  std::string table;                   // the summary as a text table
  std::size_t total = 0, completed = 0, failed = 0, skipped = 0;  // runs selected in this invocation
  bool cancelled = false;
};

// One evaluation of a model (with a LoRA adapter, or the base model for a baseline) on a CSV.
struct EvaluationRequest {
  std::string run;
  std::string model;              // folder or offline Hub id
  LoadOptions load;
  ImageProcessorOverrides image;
  std::string adapter_dir;        // "" = the base model
  std::string csv, base_dir;      // base_dir: the CSV's folder, for relative image paths
  std::string output_dir;         // predictions.jsonl and generation_metrics.json go here
  DataConfig data;                // column names, max_eval_samples
  int batch_size = 1;
  GenerationOptions generation;
  // Image features of a frozen vision path shared with the other runs ("" = none; see
  // TrainingConfig::store_image_features).
  std::string image_feature_store_dir;
  std::int64_t image_feature_store_mb = 0;
  std::function<bool(std::int64_t done, std::int64_t total)> on_progress;
  std::function<void(const std::string&)> on_log;
  const std::atomic<bool>* cancel = nullptr;
};

struct EvaluationOutcome {
  nlohmann::ordered_json metrics;  // the content of generation_metrics.json
  std::int64_t examples = 0;
  std::string predictions_path, metrics_path;
};

// Training and evaluation as the runner calls them; tests substitute their own.
struct PipelineBackend {
  std::function<TrainingSummary(const TrainingJob&)> train;
  std::function<EvaluationOutcome(const EvaluationRequest&)> evaluate;
};

// run_training, and Session::open + load_adapter + run_evaluation (core/pipeline/runner_backend.cpp).
PipelineBackend default_pipeline_backend();

// Throws vlm::Error for a bad config or option (nothing has been written then). Problems of single runs are
// recorded in the result instead.
PipelineResult run_pipeline(const PipelineOptions& options, const PipelineBackend& backend);
PipelineResult run_pipeline(const PipelineOptions& options);

// Parts of the runner, exposed for tests.
// The resolved dtype name for a model entry: "auto" -> float32 on the CPU (libtorch's CPU kernels train in
// float32; a float16 checkpoint is upcast), else the checkpoint config.json's dtype.
std::string resolve_torch_dtype(const std::string& requested, const std::string& checkpoint_dtype, bool on_cuda);
// The summary as a text table and as Markdown.
std::string format_summary_table(const nlohmann::ordered_json& summary, bool markdown);
// Extracts first/final loss, steps, runtime, samples/s and trainable parameters from a metrics.json.
nlohmann::ordered_json training_overview(const nlohmann::ordered_json& metrics);

}  // namespace vlm
