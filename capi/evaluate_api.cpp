// C API: evaluation on a CSV file (include/vlmrt.h, "Evaluation on a CSV file"): a session-less call that loads the
// model and adapters, runs core/pipeline/evaluate and returns the metrics document.
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <torch/cuda.h>

#include "base/fs.h"
#include "capi_internal.h"
#include "session_handle.h"
#include "model/registry.h"
#include "pipeline/evaluate.h"
#include "session/session.h"

struct vlm_evaluate_result {
  std::string metrics_json;
  std::string predictions_path;
  std::string metrics_path;
  std::int64_t num_examples = 0;
  nlohmann::ordered_json metrics;
};

using namespace vlm::capi;

namespace {

std::string or_default(const char* s, const char* fallback) { return s != nullptr && *s != '\0' ? s : fallback; }

}  // namespace

extern "C" {

void vlm_evaluate_options_init(vlm_evaluate_options* options) {
  if (options == nullptr) return;
  std::memset(options, 0, sizeof *options);
  options->struct_size = sizeof *options;
  vlm::ImageFetchOptions fetch;
  options->fetch_connect_timeout_ms = fetch.connect_timeout_ms;
  options->fetch_timeout_ms = fetch.timeout_ms;
  options->fetch_retries = fetch.retries;
  options->fetch_max_bytes = fetch.max_bytes;
  options->meteor_mode = VLM_METEOR_FULL;
}

vlm_status vlm_evaluate_run(const vlm_evaluate_options* options, vlm_evaluate_result** out_result) {
  return guard([&] {
    check_struct_size(options, sizeof *options, "options");
    require(out_result, "out_result");
    if (options->num_adapters > 0) require(options->adapter_paths, "options->adapter_paths");
    if (options->max_samples < 0)
      vlm::fail(vlm::ErrorCode::invalid_argument,
                "max_samples must be 0 (every row) or positive, not " + std::to_string(options->max_samples));
    if (options->batch_size < 0)
      vlm::fail(vlm::ErrorCode::invalid_argument,
                "batch_size must be positive (0: the default), not " + std::to_string(options->batch_size));
    if (options->fetch_timeout_ms <= 0 || options->fetch_connect_timeout_ms <= 0 || options->fetch_retries < 0)
      vlm::fail(vlm::ErrorCode::invalid_argument,
                "the download timeouts must be positive and the retries not negative (initialise the options with "
                "vlm_evaluate_options_init)");
    if (options->meteor_mode < VLM_METEOR_FULL || options->meteor_mode > VLM_METEOR_OFF)
      vlm::fail(vlm::ErrorCode::invalid_argument,
                "meteor_mode must be a vlm_meteor_mode, not " + std::to_string(options->meteor_mode));

    // A run (and its config) fills in whatever the options leave unset.
    std::optional<vlm::EvaluationRun> run;
    std::optional<vlm::ExperimentConfig> config;
    if (options->run != nullptr && *options->run != '\0') {
      run = vlm::resolve_evaluation_run(options->run, or_default(options->config_path, ""),
                                        or_default(options->results_dir, ""));
      config = run->config;
    } else if (options->config_path != nullptr && *options->config_path != '\0') {
      config = vlm::load_experiment_config(options->config_path);
    }
    const vlm::ModelEntry* entry = run && run->model_entry ? &*run->model_entry : nullptr;

    std::string model = or_default(options->model, "");
    if (model.empty() && run) model = run->model;
    if (model.empty())
      vlm::fail(vlm::ErrorCode::invalid_argument,
                run ? "run '" + std::string(options->run) + "' does not name its model (no metrics.json \"model\"); "
                      "give the model"
                    : std::string("no model given; name a model folder or Hugging Face id, or a run"));
    std::vector<std::string> adapters;
    for (size_t i = 0; i < options->num_adapters; ++i) {
      require(options->adapter_paths[i], ("options->adapter_paths[" + std::to_string(i) + "]").c_str());
      adapters.push_back(options->adapter_paths[i]);
    }
    if (adapters.empty() && run && !run->adapter_dir.empty()) adapters.push_back(run->adapter_dir);
    std::string model_type = or_default(options->model_type, "");
    if (model_type.empty() && run) model_type = run->model_type;

    vlm::EvaluationJob job;
    job.csv = or_default(options->csv, "");
    if (job.csv.empty() && config) job.csv = config->data.val_csv;
    if (job.csv.empty())
      vlm::fail(vlm::ErrorCode::invalid_argument,
                config ? "the config has no data.val_csv; name the CSV to evaluate" : "no CSV given; name the CSV to evaluate");
    job.output_dir = or_default(options->output_dir, "");
    if (job.output_dir.empty() && run) job.output_dir = run->run_dir;
    if (job.output_dir.empty()) vlm::fail(vlm::ErrorCode::invalid_argument, "no output folder given for the results");
    if (options->image_base_dir != nullptr) job.base_dir = options->image_base_dir;
    if (config) {
      job.image_column = config->data.image_column;
      job.query_column = config->data.query_column;
      job.annotation_column = config->data.annotation_column;
      job.instruction_column = config->data.instruction_column;
      job.response_column = config->data.response_column;
      job.max_samples = config->data.max_eval_samples;
      job.batch_size = config->training.per_device_eval_batch_size;
      const vlm::TrainingConfig& t = config->training;
      job.generation.max_new_tokens = t.generation_max_new_tokens;
      if (t.generation_min_new_tokens > 0) job.generation.min_new_tokens = t.generation_min_new_tokens;
      job.generation.num_beams = t.generation_num_beams;
      job.generation.do_sample = t.generation_do_sample;
      if (t.generation_temperature) job.generation.temperature = *t.generation_temperature;
      if (t.generation_top_p) job.generation.top_p = *t.generation_top_p;
      if (t.generation_top_k) job.generation.top_k = *t.generation_top_k;
      if (t.generation_repetition_penalty) job.generation.repetition_penalty = *t.generation_repetition_penalty;
    }
    if (options->image_column != nullptr) job.image_column = options->image_column;
    if (options->query_column != nullptr) job.query_column = options->query_column;
    if (options->annotation_column != nullptr) job.annotation_column = options->annotation_column;
    if (options->instruction_column != nullptr) job.instruction_column = options->instruction_column;
    if (options->response_column != nullptr) job.response_column = options->response_column;
    if (options->max_samples > 0) job.max_samples = options->max_samples;
    if (options->batch_size > 0) job.batch_size = options->batch_size;
    apply_generation_options(options->generation, "options->generation", job.generation);
    job.prompt_template = or_default(options->prompt_template, "{query}");
    if (options->system_message != nullptr) job.system_message = options->system_message;
    if (options->image_cache_dir != nullptr) job.fetch.cache_dir = options->image_cache_dir;
    job.fetch.connect_timeout_ms = static_cast<long>(options->fetch_connect_timeout_ms);
    job.fetch.timeout_ms = static_cast<long>(options->fetch_timeout_ms);
    job.fetch.retries = options->fetch_retries;
    job.fetch.max_bytes = options->fetch_max_bytes;
    job.metrics.meteor = options->meteor_mode == VLM_METEOR_FULL ? vlm::metrics::MeteorMode::full
                         : options->meteor_mode == VLM_METEOR_WITHOUT_WORDNET ? vlm::metrics::MeteorMode::without_wordnet
                                                                               : vlm::metrics::MeteorMode::off;
    if (options->wordnet_dir != nullptr) job.metrics.wordnet_dir = options->wordnet_dir;
    job.model_label = model;
    job.adapters = adapters;
    void* user_data = options->user_data;
    if (options->on_progress != nullptr) {
      vlm_evaluate_progress_fn progress = options->on_progress;
      job.on_progress = [progress, user_data](std::int64_t done, std::int64_t total) {
        return progress(done, total, user_data) != 0;
      };
    }
    if (options->on_log != nullptr) {
      vlm_evaluate_log_fn log = options->on_log;
      job.on_log = [log, user_data](const std::string& line) { log(line.c_str(), user_data); };
    }

    // Rows and the output folder are validated before the model loads: bad input fails in milliseconds.
    if (!job.output_dir.empty()) vlm::check_output_folder(job.output_dir, "the output folder (--output-dir)");
    vlm::read_evaluation_rows(job);
    if (job.batch_size < 1) job.batch_size = 1;

    vlm::SessionOptions session_options;
    session_options.model = model;
    std::string device = or_default(options->device, "");
    if (device.empty() && entry != nullptr && entry->device != "auto") device = entry->device;
    session_options.load.device = parse_device(device.empty() ? "cpu" : device);
    std::string dtype = or_default(options->dtype, "");
    if (dtype.empty() && entry != nullptr && entry->torch_dtype != "auto") dtype = entry->torch_dtype;
    session_options.load.dtype = vlm::parse_model_dtype(dtype.empty() ? "float32" : dtype);
    if (entry != nullptr && entry->min_pixels) session_options.image.min_pixels = *entry->min_pixels;
    if (entry != nullptr && entry->max_pixels) session_options.image.max_pixels = *entry->max_pixels;
    if (options->min_pixels > 0) session_options.image.min_pixels = static_cast<std::int64_t>(options->min_pixels);
    if (options->max_pixels > 0) session_options.image.max_pixels = static_cast<std::int64_t>(options->max_pixels);
    session_options.image.num_threads = options->num_threads;
    // Decode steps of more rows than coded_weight_max_rows() never read coded weights: make none for them.
    session_options.load.coded_decode_weights =
        vlm::coded_weights_serve(std::int64_t{job.batch_size} * job.generation.num_beams.value_or(1));
    if (job.on_log) job.on_log("loading " + model);
    std::unique_ptr<vlm::Session> session = vlm::Session::open(session_options);
    const vlm::ModelInfo& info = session->model().info();
    if (!vlm::model_type_matches(model_type, info.family, info.image_token_id < 0))
      vlm::fail(vlm::ErrorCode::invalid_argument, "model type '" + model_type + "' was asked for but " + model +
                                                      " is a '" + info.family + "' checkpoint; fix the model type or the model");
    for (const auto& adapter : adapters) {
      if (job.on_log) job.on_log("loading the adapter " + adapter);
      session->load_adapter(adapter);
    }

    vlm::EvaluationSummary summary = vlm::run_evaluation(*session, job);
    auto result = std::make_unique<vlm_evaluate_result>();
    result->metrics_json = summary.metrics.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
    result->predictions_path = summary.predictions_path;
    result->metrics_path = summary.metrics_path;
    result->num_examples = summary.examples;
    result->metrics = std::move(summary.metrics);
    *out_result = result.release();
  });
}

const char* vlm_evaluate_result_metrics_json(const vlm_evaluate_result* result) {
  return result != nullptr ? result->metrics_json.c_str() : "";
}

const char* vlm_evaluate_result_predictions_path(const vlm_evaluate_result* result) {
  return result != nullptr ? result->predictions_path.c_str() : "";
}

const char* vlm_evaluate_result_metrics_path(const vlm_evaluate_result* result) {
  return result != nullptr ? result->metrics_path.c_str() : "";
}

int64_t vlm_evaluate_result_num_examples(const vlm_evaluate_result* result) {
  return result != nullptr ? result->num_examples : 0;
}

vlm_status vlm_evaluate_result_metric(const vlm_evaluate_result* result, const char* name, double* out_value) {
  return guard([&] {
    require(result, "result");
    require(name, "name");
    require(out_value, "out_value");
    const auto& metrics = result->metrics.at("metrics");
    auto it = metrics.find(name);
    if (it == metrics.end()) {
      std::string have;
      for (auto m = metrics.begin(); m != metrics.end(); ++m) have += (have.empty() ? "" : ", ") + m.key();
      vlm::fail(vlm::ErrorCode::not_found, std::string("no metric '") + name + "' in the result; it has " + have);
    }
    *out_value = it->at("value").get<double>();
  });
}

void vlm_evaluate_result_free(vlm_evaluate_result* result) { delete result; }

}  // extern "C"
