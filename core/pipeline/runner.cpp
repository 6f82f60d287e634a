#include "pipeline/runner.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <sstream>

#include "base/error.h"
#include "base/fs.h"
#include "io/hub.h"

namespace vlm {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

std::string now_utc() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string absolute_path(const std::string& path) {
  if (path.empty()) return path;
  return fs::absolute(fs::path(path)).lexically_normal().string();
}

std::string parent_dir(const std::string& path) { return fs::path(path).parent_path().string(); }

void write_json(const std::string& path, const json& value) { write_file_atomic(path, value.dump(2) + "\n"); }

// A JSON file written by an earlier invocation; nullopt when absent or unreadable (every file is written
// atomically, so unreadable means someone edited it: the runner then redoes that stage).
std::optional<json> read_json(const std::string& path) {
  if (!is_regular_file(path)) return std::nullopt;
  try {
    return json::parse(read_file(path));
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

// The first key path where two settings documents differ, "" when equal.
std::string first_difference(const json& before, const json& now, const std::string& path = "") {
  if (before.is_object() && now.is_object()) {
    for (const auto& item : now.items()) {
      const std::string key = path.empty() ? item.key() : path + "." + item.key();
      if (!before.contains(item.key())) return key;
      std::string d = first_difference(before[item.key()], item.value(), key);
      if (!d.empty()) return d;
    }
    for (const auto& item : before.items()) {
      if (!now.contains(item.key())) return path.empty() ? item.key() : path + "." + item.key();
    }
    return "";
  }
  return before == now ? "" : (path.empty() ? "(settings)" : path);
}

const json* find_path(const json& doc, const std::string& dotted) {
  const json* node = &doc;
  std::size_t start = 0;
  while (start <= dotted.size()) {
    const std::size_t dot = dotted.find('.', start);
    const std::string key = dotted.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (!node->is_object() || !node->contains(key)) return nullptr;
    node = &(*node)[key];
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return node;
}

template <class T>
json optional_json(const std::optional<T>& v) {
  return v ? json(*v) : json(nullptr);
}

json lora_json(const LoraVariant& v) {
  json j;
  j["r"] = v.r;
  j["alpha"] = v.alpha;
  j["dropout"] = v.dropout;
  j["target_modules"] = v.target_modules ? json(*v.target_modules) : json(nullptr);
  j["target_modules_is_regex"] = v.target_modules_is_regex;
  j["exclude_modules"] = v.exclude_modules;
  j["use_rslora"] = v.use_rslora;
  j["use_dora"] = v.use_dora;
  j["init_lora_weights"] = v.init_lora_weights;
  j["bias"] = v.bias;
  j["modules_to_save"] = v.modules_to_save;
  j["layers_to_transform"] = v.layers_to_transform;
  return j;
}

// The training settings that change what a run produces (logging, saving and resume settings do not).
json training_json(const TrainingConfig& t) {
  json j;
  j["num_train_epochs"] = t.num_train_epochs;
  j["max_steps"] = t.max_steps;
  j["per_device_train_batch_size"] = t.per_device_train_batch_size;
  j["gradient_accumulation_steps"] = t.gradient_accumulation_steps;
  j["learning_rate"] = t.learning_rate;
  j["weight_decay"] = t.weight_decay;
  j["adam_beta1"] = t.adam_beta1;
  j["adam_beta2"] = t.adam_beta2;
  j["adam_epsilon"] = t.adam_epsilon;
  j["warmup_ratio"] = t.warmup_ratio;
  j["warmup_steps"] = t.warmup_steps;
  j["lr_scheduler_type"] = t.lr_scheduler_type;
  j["mixed_precision"] = t.mixed_precision;
  j["gradient_checkpointing"] = t.gradient_checkpointing;
  j["max_grad_norm"] = t.max_grad_norm;
  j["seed"] = t.seed;
  j["max_seq_length"] = optional_json(t.max_seq_length);
  j["loss_on_response_only"] = t.loss_on_response_only;
  return j;
}

json generation_json(const TrainingConfig& t) {
  json j;
  j["max_new_tokens"] = t.generation_max_new_tokens;
  j["min_new_tokens"] = t.generation_min_new_tokens;
  j["num_beams"] = t.generation_num_beams;
  j["do_sample"] = t.generation_do_sample;
  j["temperature"] = optional_json(t.generation_temperature);
  j["top_p"] = optional_json(t.generation_top_p);
  j["top_k"] = optional_json(t.generation_top_k);
  j["repetition_penalty"] = optional_json(t.generation_repetition_penalty);
  j["seed"] = t.seed;
  return j;
}

GenerationOptions generation_options(const TrainingConfig& t) {
  GenerationOptions g;
  g.max_new_tokens = t.generation_max_new_tokens;
  g.min_new_tokens = t.generation_min_new_tokens;
  g.num_beams = t.generation_num_beams;
  g.do_sample = t.generation_do_sample;
  if (t.generation_temperature) g.temperature = *t.generation_temperature;
  if (t.generation_top_p) g.top_p = *t.generation_top_p;
  if (t.generation_top_k) g.top_k = *t.generation_top_k;
  if (t.generation_repetition_penalty) g.repetition_penalty = *t.generation_repetition_penalty;
  g.seed = t.seed;
  return g;
}


// One run of the grid.
struct RunSpec {
  std::string name;
  std::size_t model = 0;
  std::optional<std::size_t> variant;  // nullopt: the baseline (untuned model) evaluation
};

// The model as the runs load it.
struct ResolvedModel {
  std::string folder;
  std::string checkpoint_model_type;  // config.json model_type
  std::string dtype;                  // resolved name
  LoadOptions load;
  ImageProcessorOverrides image;
  std::string device_name;
};

bool is_qwen_vl_type(const std::string& t) { return t == "qwen2_vl" || t == "qwen2_5_vl"; }

// A relative model folder is looked up like the data files: the current directory, then the config's folder;
// anything else is a Hub id for the offline cache.
std::string model_reference(const std::string& id, const std::string& config_path) {
  if (id.empty() || id[0] == '/' || is_directory(id)) return id;
  const std::string beside = join_path(parent_dir(absolute_path(config_path)), id);
  return is_directory(beside) ? beside : id;
}

ResolvedModel resolve_model(const ModelEntry& entry, const std::string& experiment_config) {
  ResolvedModel r;
  r.folder = absolute_path(locate_model(model_reference(entry.hf_model_id, experiment_config)).folder);
  const std::string config_path = join_path(r.folder, "config.json");
  json config;
  try {
    config = json::parse(read_file(config_path));
  } catch (const nlohmann::json::exception& e) {
    fail(ErrorCode::corrupt_data, config_path + ": not valid JSON (" + e.what() + ")");
  }
  r.checkpoint_model_type = config.value("model_type", std::string());
  const std::string declared = entry.model_type;
  const std::string actual = normalize_model_type(r.checkpoint_model_type);
  const bool compatible = declared == "auto-detect" || declared == "causal_lm" || declared == actual ||
                          (declared == "qwen_vl" && is_qwen_vl_type(r.checkpoint_model_type));
  if (!compatible) {
    fail(ErrorCode::invalid_argument, "model \"" + entry.name + "\": model_type is \"" + entry.model_type_as_written +
                                          "\" but " + config_path + " says \"" + r.checkpoint_model_type +
                                          "\"; correct models[].model_type (or remove it to use the checkpoint's)");
  }
  // Device.
  bool on_cuda = false;
  if (entry.device == "auto") {
    on_cuda = torch::cuda::is_available();
    r.device_name = on_cuda ? "cuda" : "cpu";
  } else {
    r.device_name = entry.device;
    on_cuda = entry.device.rfind("cuda", 0) == 0;
    if (on_cuda && !torch::cuda::is_available()) {
      fail(ErrorCode::unsupported, "model \"" + entry.name + "\": device \"" + entry.device +
                                       "\" was requested but this build of libtorch sees no CUDA device; use "
                                       "device: cpu or auto");
    }
  }
  try {
    r.load.device = torch::Device(r.device_name);
  } catch (const std::exception&) {
    fail(ErrorCode::invalid_argument, "model \"" + entry.name + "\": device \"" + entry.device + "\" is not valid");
  }
  std::string checkpoint_dtype = config.value("torch_dtype", std::string());
  if (checkpoint_dtype.empty()) checkpoint_dtype = config.value("dtype", std::string());
  r.dtype = resolve_torch_dtype(entry.torch_dtype, checkpoint_dtype, on_cuda);
  r.load.dtype = parse_model_dtype(r.dtype);
  // Pixel limits: the seed pins Qwen models to the fixed 224x224 mode.
  if (is_qwen_vl_type(r.checkpoint_model_type) && !entry.min_pixels && !entry.max_pixels) {
    r.image.min_pixels = 224 * 224;
    r.image.max_pixels = 224 * 224;
  } else {
    r.image.min_pixels = entry.min_pixels;
    r.image.max_pixels = entry.max_pixels;
  }
  return r;
}

// run.log: earlier content is kept; the file is rewritten atomically at most once a second and at every
// stage boundary, so it never holds a torn line.
class RunLog {
 public:
  explicit RunLog(std::string path) : path_(std::move(path)) {
    if (is_regular_file(path_)) {
      try {
        text_ = read_file(path_);
      } catch (const Error&) {
      }
    }
  }
  ~RunLog() {
    try {
      flush();
    } catch (...) {
    }
  }
  void add(const std::string& line) {
    text_ += "[" + now_utc() + "] " + line + "\n";
    dirty_ = true;
    const auto now = std::chrono::steady_clock::now();
    if (std::chrono::duration<double>(now - last_flush_).count() >= 1.0) flush();
  }
  void flush() {
    if (!dirty_) return;
    write_file_atomic(path_, text_);
    dirty_ = false;
    last_flush_ = std::chrono::steady_clock::now();
  }

 private:
  std::string path_, text_;
  bool dirty_ = false;
  std::chrono::steady_clock::time_point last_flush_{};
};

struct RunPaths {
  std::string dir, checkpoints, adapter, merged, metrics, predictions, generation_metrics, test_dir,
      test_predictions, test_metrics, run_config, state, log, error;
  explicit RunPaths(const std::string& run_dir)
      : dir(run_dir),
        checkpoints(join_path(run_dir, "checkpoints")),
        adapter(join_path(run_dir, "lora_adapter")),
        merged(join_path(run_dir, "final")),
        metrics(join_path(run_dir, "metrics.json")),
        predictions(join_path(run_dir, "predictions.jsonl")),
        generation_metrics(join_path(run_dir, "generation_metrics.json")),
        test_dir(join_path(run_dir, "test")),
        test_predictions(join_path(join_path(run_dir, "test"), "predictions.jsonl")),
        test_metrics(join_path(join_path(run_dir, "test"), "generation_metrics.json")),
        run_config(join_path(run_dir, "run_config.json")),
        state(join_path(run_dir, "run_state.json")),
        log(join_path(run_dir, "run.log")),
        error(join_path(run_dir, "error.json")) {}
};

bool has_checkpoints(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return false;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (entry.is_directory() && entry.path().filename().string().rfind("checkpoint-", 0) == 0) return true;
  }
  return false;
}

json flat_metrics(const json& generation_metrics) {
  json out = json::object();
  const json* metrics = generation_metrics.contains("metrics") ? &generation_metrics["metrics"] : nullptr;
  if (!metrics || !metrics->is_object()) return out;
  for (const auto& item : metrics->items()) {
    if (item.value().is_number()) {
      out[item.key()] = item.value();
    } else if (item.value().is_object() && item.value().contains("value")) {
      out[item.key()] = item.value()["value"];
    }
  }
  return out;
}

std::int64_t count_lines(const std::string& path) {
  if (!is_regular_file(path)) return 0;
  const std::string text = read_file(path);
  std::int64_t n = 0;
  for (char c : text) n += c == '\n';
  if (!text.empty() && text.back() != '\n') ++n;
  return n;
}

class Runner {
 public:
  Runner(const PipelineOptions& options, const PipelineBackend& backend) : options_(options), backend_(backend) {}

  PipelineResult run();

 private:
  void select_runs();
  PipelineResult validate_only();
  void run_one(const RunSpec& spec, std::size_t index, std::size_t count);
  void train_stage(const RunSpec& spec, const ResolvedModel& model, const RunPaths& paths, json& state, RunLog& log,
                   std::size_t index, std::size_t count);
  bool evaluate_stage(const RunSpec& spec, const ResolvedModel& model, const RunPaths& paths, json& state,
                      RunLog& log, const std::string& split, std::size_t index, std::size_t count);
  json run_settings(const RunSpec& spec, const ResolvedModel& model) const;
  // The experiment's image feature store folder, "" when store_image_features is off.
  std::string image_feature_store_dir() const {
    const TrainingConfig& t = config_.training;
    if (!t.store_image_features) return "";
    return t.image_feature_store_dir.empty() ? join_path(output_dir_, "image_features")
                                             : absolute_path(t.image_feature_store_dir);
  }
  json evaluation_settings(const RunSpec& spec, const std::string& split) const;
  json describe_run(const RunSpec& spec) const;
  json build_summary() const;
  void write_summary(PipelineResult& result) const;
  bool cancelled() {
    if (options_.cancel && options_.cancel->load()) stop_.store(true);
    return stop_.load();
  }
  void say(const std::string& line) {
    if (display_) display_->log(line);
    if (options_.on_log) options_.on_log("", line);
  }

  const PipelineOptions& options_;
  const PipelineBackend& backend_;
  ExperimentConfig config_;
  std::string output_dir_;
  std::vector<RunSpec> all_runs_, selected_;
  std::map<std::string, std::string> invocation_;  // run name -> what this invocation did
  std::atomic<bool> stop_{false};
  std::unique_ptr<ProgressDisplay> display_;
};

void Runner::select_runs() {
  for (std::size_t m = 0; m < config_.models.size(); ++m) {
    if (config_.evaluation.enabled && config_.evaluation.baseline) {
      all_runs_.push_back({config_.models[m].name + "__baseline", m, std::nullopt});
    }
    for (std::size_t v = 0; v < config_.lora_variants.size(); ++v) {
      all_runs_.push_back({config_.models[m].name + "__" + config_.lora_variants[v].name, m, v});
    }
  }
  if (options_.only_runs.empty()) {
    selected_ = all_runs_;
    return;
  }
  std::set<std::string> wanted(options_.only_runs.begin(), options_.only_runs.end());
  std::set<std::string> used;
  for (const auto& spec : all_runs_) {
    const std::string& model = config_.models[spec.model].name;
    const std::string variant = spec.variant ? config_.lora_variants[*spec.variant].name : "";
    bool take = false;
    for (const std::string& key : {spec.name, model, variant}) {
      if (!key.empty() && wanted.count(key)) {
        take = true;
        used.insert(key);
      }
    }
    if (take) selected_.push_back(spec);
  }
  std::string unknown;
  for (const auto& w : wanted) {
    if (!used.count(w)) unknown += (unknown.empty() ? "\"" : ", \"") + w + "\"";
  }
  if (!unknown.empty()) {
    std::string names;
    for (const auto& spec : all_runs_) names += (names.empty() ? "" : ", ") + spec.name;
    fail(ErrorCode::invalid_argument, "--only " + unknown + " matches no run of " + config_.source_path +
                                          "; runs are: " + names + " (a model or variant name selects all its runs)");
  }
}

PipelineResult Runner::validate_only() {
  std::vector<std::string> problems;
  json models = json::array();
  for (std::size_t i = 0; i < config_.models.size(); ++i) {
    const ModelEntry& entry = config_.models[i];
    const std::string where = config_.source_path + ":" + std::to_string(entry.line) + ": models[" +
                              std::to_string(i) + "] (" + entry.name + ")";
    json m;
    m["name"] = entry.name;
    m["hf_model_id"] = entry.hf_model_id;
    try {
      ResolvedModel r = resolve_model(entry, config_.source_path);
      const auto types = supported_model_types();
      if (std::find(types.begin(), types.end(), r.checkpoint_model_type) == types.end()) {
        std::string list;
        for (const auto& t : types) list += (list.empty() ? "" : ", ") + t;
        fail(ErrorCode::unsupported, "model_type \"" + r.checkpoint_model_type + "\" of " + r.folder +
                                         " is not supported by this build (supported: " + list + ")");
      }
      m["folder"] = r.folder;
      m["model_type"] = r.checkpoint_model_type;
      m["dtype"] = r.dtype;
      m["device"] = r.device_name;
    } catch (const Error& e) {
      problems.push_back(where + ": " + e.what());
    }
    models.push_back(m);
  }
  if (!problems.empty()) {
    std::string text = "the config is valid but " + std::to_string(problems.size()) + " model" +
                       (problems.size() == 1 ? "" : "s") + " cannot be used:";
    for (const auto& p : problems) text += "\n  " + p;
    fail(ErrorCode::not_found, text);
  }
  PipelineResult result;
  json& s = result.summary;
  s["experiment_name"] = config_.experiment_name;
  s["config"] = absolute_path(config_.source_path);
  s["output_dir"] = output_dir_;
  s["valid"] = true;
  s["models"] = models;
  json runs = json::array();
  for (const auto& spec : selected_) runs.push_back(spec.name);
  s["runs"] = runs;
  result.total = selected_.size();
  result.table = "config " + config_.source_path + " is valid: " + std::to_string(selected_.size()) + " run" +
                 (selected_.size() == 1 ? "" : "s") + ", every model found\n";
  return result;
}

json Runner::run_settings(const RunSpec& spec, const ResolvedModel& model) const {
  const ModelEntry& entry = config_.models[spec.model];
  json j;
  j["run"] = spec.name;
  j["kind"] = spec.variant ? "lora" : "baseline";
  json m;
  m["name"] = entry.name;
  m["hf_model_id"] = entry.hf_model_id;
  m["model_type"] = model.checkpoint_model_type;
  m["dtype"] = model.dtype;
  m["min_pixels"] = optional_json(model.image.min_pixels);
  m["max_pixels"] = optional_json(model.image.max_pixels);
  m["freeze_vision_tower"] = entry.freeze_vision_tower;
  m["freeze_projector"] = entry.freeze_projector;
  m["freeze_language_model"] = entry.freeze_language_model;
  j["model"] = m;
  if (spec.variant) {
    j["lora"] = lora_json(config_.lora_variants[*spec.variant]);
    json d;
    d["train_csv"] = absolute_path(config_.data.train_csv);
    d["image_column"] = config_.data.image_column;
    d["instruction_column"] = config_.data.instruction_column;
    d["response_column"] = config_.data.response_column;
    d["max_train_samples"] = optional_json(config_.data.max_train_samples);
    j["data"] = d;
    j["training"] = training_json(config_.training);
  }
  return j;
}

json Runner::evaluation_settings(const RunSpec&, const std::string& split) const {
  json j;
  j["csv"] = absolute_path(split == "test" ? config_.data.test_csv : config_.data.val_csv);
  j["image_column"] = config_.data.image_column;
  j["query_column"] = config_.data.query_column;
  j["annotation_column"] = config_.data.annotation_column;
  j["instruction_column"] = config_.data.instruction_column;
  j["response_column"] = config_.data.response_column;
  j["max_eval_samples"] = optional_json(config_.data.max_eval_samples);
  j["batch_size"] = config_.training.per_device_eval_batch_size;
  j["generation"] = generation_json(config_.training);
  return j;
}

void Runner::train_stage(const RunSpec& spec, const ResolvedModel& model, const RunPaths& paths, json& state,
                         RunLog& log, std::size_t index, std::size_t count) {
  const ModelEntry& entry = config_.models[spec.model];
  TrainingJob job;
  job.model = model.folder;
  job.load = model.load;
  job.image = model.image;
  job.data = config_.data;
  job.data.train_csv = absolute_path(config_.data.train_csv);
  job.data_base_dir = parent_dir(job.data.train_csv);
  job.lora = config_.lora_variants[*spec.variant];
  job.freeze_vision_tower = entry.freeze_vision_tower;
  job.freeze_projector = entry.freeze_projector;
  job.freeze_language_model = entry.freeze_language_model;
  job.training = config_.training;
  job.training.image_feature_store_dir = image_feature_store_dir();
  job.run_dir = paths.dir;
  job.cancel = &stop_;
  const bool resuming = has_checkpoints(paths.checkpoints);
  if (resuming && job.training.resume_from_checkpoint.empty()) job.training.resume_from_checkpoint = "latest";
  if (resuming) invocation_[spec.name] = "resumed";
  log.add(resuming ? "training: resuming from the latest checkpoint in " + paths.checkpoints
                   : "training: " + model.folder + " (" + model.dtype + " on " + model.device_name + ")");
  say(spec.name + ": " + (resuming ? "resuming training from its latest checkpoint" : "training"));
  state["status"] = "running";
  state["training"] = json{{"status", "running"}, {"started_at", now_utc()}, {"resumed", resuming}};
  write_json(paths.state, state);

  bool bar_started = false;
  job.on_log = [&](const std::string& line) {
    log.add(line);
    if (display_) display_->log(spec.name + ": " + line);
    if (options_.on_log) options_.on_log(spec.name, line);
  };
  job.on_progress = [&](const TrainingProgress& p) {
    char extra[96];
    std::snprintf(extra, sizeof extra, "loss %.4f lr %.3g", p.loss, p.learning_rate);
    log.add("train step " + std::to_string(p.step) + "/" + std::to_string(p.total_steps) + " epoch " +
            std::to_string(p.epoch) + " " + extra + " grad_norm " + std::to_string(p.grad_norm));
    if (display_) {
      if (!bar_started) display_->begin("train " + spec.name, p.total_steps);
      bar_started = true;
      display_->update(p.step, extra);
    }
    bool keep_going = true;
    if (options_.on_progress) {
      PipelineProgress pp;
      pp.run = spec.name;
      pp.stage = "train";
      pp.run_index = index;
      pp.num_runs = count;
      pp.done = p.step;
      pp.total = p.total_steps;
      pp.loss = p.loss;
      pp.learning_rate = p.learning_rate;
      pp.elapsed_seconds = p.elapsed_seconds;
      keep_going = options_.on_progress(pp);
    }
    if (!keep_going) stop_.store(true);
    return !cancelled();
  };
  TrainingSummary summary = backend_.train(job);
  if (display_ && bar_started) display_->end();
  if (!summary.completed || cancelled()) {
    stop_.store(true);
    state["training"]["status"] = "interrupted";
    state["status"] = "interrupted";
    write_json(paths.state, state);
    log.add("training stopped on request after saving a checkpoint; run the same command again to resume");
    log.flush();
    fail(ErrorCode::cancelled, spec.name + ": stopped on request (a checkpoint was saved; run again to resume)");
  }
  state["training"]["status"] = "completed";
  state["training"]["finished_at"] = now_utc();
  state["training"]["trainable_parameters"] = summary.trainable_parameters;
  state["training"]["total_parameters"] = summary.total_parameters;
  write_json(paths.state, state);
  log.add("training finished: adapter in " + summary.adapter_dir);
  log.flush();
}

bool Runner::evaluate_stage(const RunSpec& spec, const ResolvedModel& model, const RunPaths& paths, json& state,
                            RunLog& log, const std::string& split, std::size_t index, std::size_t count) {
  const json settings = evaluation_settings(spec, split);
  const bool is_test = split == "test";
  const std::string metrics_path = is_test ? paths.test_metrics : paths.generation_metrics;
  const std::string predictions_path = is_test ? paths.test_predictions : paths.predictions;
  const json* previous = find_path(state, "evaluation." + split);
  if (previous && previous->value("status", "") == "completed" && previous->contains("settings") &&
      (*previous)["settings"] == settings && is_regular_file(metrics_path) && is_regular_file(predictions_path)) {
    log.add("evaluation (" + split + "): already done, skipped");
    return false;
  }
  if (previous && previous->contains("settings") && (*previous)["settings"] != settings) {
    log.add("evaluation (" + split + "): settings changed (" + first_difference((*previous)["settings"], settings) +
            "), evaluating again");
  }
  EvaluationRequest request;
  request.run = spec.name;
  request.model = model.folder;
  request.load = model.load;
  request.image = model.image;
  request.adapter_dir = spec.variant ? paths.adapter : "";
  request.csv = settings["csv"].get<std::string>();
  request.base_dir = parent_dir(request.csv);
  request.output_dir = is_test ? paths.test_dir : paths.dir;
  request.data = config_.data;
  request.batch_size = config_.training.per_device_eval_batch_size;
  request.generation = generation_options(config_.training);
  request.image_feature_store_dir = image_feature_store_dir();
  request.image_feature_store_mb = config_.training.image_feature_store_mb;
  request.cancel = &stop_;
  create_directories(request.output_dir);
  const std::string label = std::string(is_test ? "test " : "eval ") + spec.name;
  log.add("evaluation (" + split + "): " + request.csv + (spec.variant ? " with adapter " + paths.adapter : " (untuned model)"));
  say(spec.name + ": evaluating on " + request.csv);
  bool bar_started = false;
  const auto start = std::chrono::steady_clock::now();
  request.on_log = [&](const std::string& line) {
    log.add(line);
    if (display_) display_->log(spec.name + ": " + line);
    if (options_.on_log) options_.on_log(spec.name, line);
  };
  request.on_progress = [&](std::int64_t done, std::int64_t total) {
    log.add(split + " " + std::to_string(done) + "/" + std::to_string(total));
    if (display_) {
      if (!bar_started) display_->begin(label, total);
      bar_started = true;
      display_->update(done);
    }
    bool keep_going = true;
    if (options_.on_progress) {
      PipelineProgress pp;
      pp.run = spec.name;
      pp.stage = is_test ? "test" : "evaluate";
      pp.run_index = index;
      pp.num_runs = count;
      pp.done = done;
      pp.total = total;
      pp.elapsed_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      keep_going = options_.on_progress(pp);
    }
    if (!keep_going) stop_.store(true);
    return !cancelled();
  };
  EvaluationOutcome outcome = backend_.evaluate(request);
  if (display_ && bar_started) display_->end();
  if (cancelled()) {
    log.flush();
    fail(ErrorCode::cancelled, spec.name + ": evaluation stopped on request (run again to evaluate)");
  }
  if (!is_regular_file(metrics_path) || !is_regular_file(predictions_path)) {
    fail(ErrorCode::internal, spec.name + ": the evaluation did not write " + metrics_path + " and " + predictions_path);
  }
  json done;
  done["status"] = "completed";
  done["finished_at"] = now_utc();
  done["examples"] = outcome.examples;
  done["settings"] = settings;
  if (!state.contains("evaluation") || !state["evaluation"].is_object()) state["evaluation"] = json::object();
  state["evaluation"][split] = done;
  write_json(paths.state, state);
  log.add("evaluation (" + split + ") finished: " + std::to_string(outcome.examples) + " examples, metrics in " +
          metrics_path);
  log.flush();
  return true;
}

void Runner::run_one(const RunSpec& spec, std::size_t index, std::size_t count) {
  const RunPaths paths(join_path(output_dir_, spec.name));
  create_directories(paths.dir);
  RunLog log(paths.log);
  log.add("=== " + spec.name + " (run " + std::to_string(index + 1) + "/" + std::to_string(count) + " of " +
          config_.experiment_name + ", config " + absolute_path(config_.source_path) + ")");
  json state = read_json(paths.state).value_or(json::object());
  if (!state.is_object()) state = json::object();
  state["run"] = spec.name;
  std::string stage = "setup";
  try {
    const ModelEntry& entry = config_.models[spec.model];
    const ResolvedModel model = resolve_model(entry, config_.source_path);
    const json settings = run_settings(spec, model);
    if (auto before = read_json(paths.run_config)) {
      const std::string diff = first_difference(*before, settings);
      const bool has_results = has_checkpoints(paths.checkpoints) || is_regular_file(paths.metrics) ||
                               is_regular_file(paths.generation_metrics);
      if (!diff.empty() && !has_results) {
        log.add("settings changed (" + diff + ") before anything was saved; starting afresh");
        write_json(paths.run_config, settings);
      } else if (!diff.empty()) {
        const json* was = find_path(*before, diff);
        const json* now = find_path(settings, diff);
        fail(ErrorCode::invalid_argument,
             "run folder " + paths.dir + " was made with different settings: " + diff + " was " +
                 (was ? was->dump() : "absent") + ", now " + (now ? now->dump() : "absent") +
                 "; delete the folder to start this run again, or set another output_dir");
      }
    } else {
      write_json(paths.run_config, settings);
    }
    const bool evaluate = options_.evaluate && config_.evaluation.enabled;
    bool did_something = false;
    if (spec.variant) {
      stage = "train";
      const json* training = find_path(state, "training.status");
      const bool trained = training && *training == "completed" && is_regular_file(paths.metrics) &&
                           is_regular_file(join_path(paths.adapter, "adapter_config.json")) &&
                           is_regular_file(join_path(paths.adapter, "adapter_model.safetensors"));
      if (trained) {
        log.add("training: already done, skipped");
      } else {
        train_stage(spec, model, paths, state, log, index, count);
        did_something = true;
      }
    }
    if (evaluate) {
      stage = "evaluate";
      did_something |= evaluate_stage(spec, model, paths, state, log, "val", index, count);
      if (!config_.data.test_csv.empty()) {
        stage = "test";
        did_something |= evaluate_stage(spec, model, paths, state, log, "test", index, count);
      }
    }
    state["status"] = "completed";
    state["finished_at"] = now_utc();
    write_json(paths.state, state);
    if (is_regular_file(paths.error)) fs::remove(paths.error);
    if (!did_something) {
      invocation_[spec.name] = "skipped";
      say(spec.name + ": already finished, skipped");
    } else if (!invocation_.count(spec.name)) {
      invocation_[spec.name] = "ran";
    }
    log.add("run completed");
  } catch (const std::exception& e) {
    const auto* error = dynamic_cast<const Error*>(&e);
    const bool stopped = (error && error->code() == ErrorCode::cancelled) || cancelled();
    json err;
    err["run"] = spec.name;
    err["stage"] = stage;
    err["code"] = error ? error_code_name(error->code()) : "internal";
    err["message"] = e.what();
    err["time"] = now_utc();
    if (stopped) {
      stop_.store(true);
      state["status"] = "interrupted";
      invocation_[spec.name] = "interrupted";
      log.add(std::string("stopped: ") + e.what());
      say(spec.name + ": stopped; run the same command again to continue");
    } else {
      state["status"] = "failed";
      invocation_[spec.name] = "failed";
      log.add(std::string("FAILED (") + stage + "): " + e.what());
      say(spec.name + ": FAILED (" + stage + "): " + e.what());
      try {
        write_json(paths.error, err);
      } catch (const std::exception&) {
      }
    }
    state["updated_at"] = now_utc();
    try {
      write_json(paths.state, state);
    } catch (const std::exception&) {
    }
  }
}

json Runner::describe_run(const RunSpec& spec) const {
  const RunPaths paths(join_path(output_dir_, spec.name));
  const ModelEntry& entry = config_.models[spec.model];
  json r;
  r["name"] = spec.name;
  r["model"] = entry.name;
  r["hf_model_id"] = entry.hf_model_id;
  r["variant"] = spec.variant ? json(config_.lora_variants[*spec.variant].name) : json(nullptr);
  r["kind"] = spec.variant ? "lora" : "baseline";
  const auto state = read_json(paths.state);
  std::string status = state ? state->value("status", "pending") : "pending";
  if (status == "running") status = "interrupted";  // an invocation that died mid-run
  r["status"] = status;
  auto inv = invocation_.find(spec.name);
  r["this_invocation"] = inv == invocation_.end() ? "not_run" : inv->second;
  r["lora"] = spec.variant ? lora_json(config_.lora_variants[*spec.variant]) : json(nullptr);
  if (spec.variant) {
    if (auto metrics = read_json(paths.metrics)) {
      json overview = training_overview(*metrics);
      if (state && overview["trainable_parameters"].is_null()) {
        if (const json* p = find_path(*state, "training.trainable_parameters")) overview["trainable_parameters"] = *p;
      }
      r["training"] = overview;
    } else {
      r["training"] = nullptr;
    }
  } else {
    r["training"] = nullptr;
  }
  json evaluation = json::object();
  for (const std::string split : {"val", "test"}) {
    const std::string metrics_path = split == "test" ? paths.test_metrics : paths.generation_metrics;
    const std::string predictions_path = split == "test" ? paths.test_predictions : paths.predictions;
    auto metrics = read_json(metrics_path);
    if (!metrics) continue;
    json e;
    e["examples"] = count_lines(predictions_path);
    e["metrics"] = flat_metrics(*metrics);
    evaluation[split] = e;
  }
  r["evaluation"] = evaluation.empty() ? json(nullptr) : evaluation;
  auto error = status == "failed" ? read_json(paths.error) : std::nullopt;
  r["error"] = error ? *error : json(nullptr);
  json p;
  p["run_dir"] = paths.dir;
  if (spec.variant) {
    p["checkpoints"] = paths.checkpoints;
    p["lora_adapter"] = paths.adapter;
    p["final"] = paths.merged;
    p["metrics"] = paths.metrics;
  }
  p["predictions"] = paths.predictions;
  p["generation_metrics"] = paths.generation_metrics;
  if (!config_.data.test_csv.empty()) {
    p["test_predictions"] = paths.test_predictions;
    p["test_generation_metrics"] = paths.test_metrics;
  }
  p["log"] = paths.log;
  r["paths"] = p;
  return r;
}

json Runner::build_summary() const {
  json s;
  s["experiment_name"] = config_.experiment_name;
  s["config"] = absolute_path(config_.source_path);
  s["output_dir"] = output_dir_;
  s["updated_at"] = now_utc();
  s["evaluation_enabled"] = config_.evaluation.enabled;
  json runs = json::array();
  std::map<std::string, int> counts;
  for (const auto& spec : all_runs_) {
    json r = describe_run(spec);
    counts[r["status"].get<std::string>()]++;
    runs.push_back(std::move(r));
  }
  json c;
  c["runs"] = all_runs_.size();
  for (const char* k : {"completed", "failed", "interrupted", "pending"}) c[k] = counts[k];
  s["counts"] = c;
  s["runs"] = runs;
  return s;
}

void Runner::write_summary(PipelineResult& result) const {
  result.summary = build_summary();
  result.summary_path = join_path(output_dir_, "ablation_summary.json");
  result.markdown_path = join_path(output_dir_, "ablation_summary.md");
  write_json(result.summary_path, result.summary);
  std::string md = "# " + config_.experiment_name + "\n\nConfig: `" + absolute_path(config_.source_path) +
                   "`, updated " + result.summary["updated_at"].get<std::string>() + ".\n\n" +
                   format_summary_table(result.summary, true);
  write_file_atomic(result.markdown_path, md);
  result.table = format_summary_table(result.summary, false);
}

PipelineResult Runner::run() {
  ConfigCheckOptions check;
  check.check_files = options_.check_files;
  if (options_.config_path.empty()) fail(ErrorCode::invalid_argument, "no config file given (--config PATH)");
  config_ = load_experiment_config(options_.config_path, check);
  output_dir_ = absolute_path(options_.output_dir.empty() ? config_.output_dir : options_.output_dir);
  check_output_folder(output_dir_, options_.output_dir.empty() ? options_.config_path + ": output_dir" : "the output folder");
  select_runs();
  if (options_.validate_only) return validate_only();
  if (options_.display != ProgressDisplay::Mode::off) {
    display_ = std::make_unique<ProgressDisplay>(options_.display_stream, options_.display);
  }
  create_directories(output_dir_);
  PipelineResult result;
  result.total = selected_.size();
  say(config_.experiment_name + ": " + std::to_string(selected_.size()) + " run" + (selected_.size() == 1 ? "" : "s") +
      ", outputs in " + output_dir_);
  for (std::size_t i = 0; i < selected_.size() && !cancelled(); ++i) {
    say("[" + std::to_string(i + 1) + "/" + std::to_string(selected_.size()) + "] " + selected_[i].name);
    run_one(selected_[i], i, selected_.size());
    write_summary(result);  // after every run, so a crash keeps what finished
  }
  write_summary(result);
  result.cancelled = cancelled();
  for (const auto& spec : selected_) {
    auto it = invocation_.find(spec.name);
    if (it == invocation_.end()) continue;
    if (it->second == "failed") {
      ++result.failed;
    } else if (it->second == "skipped") {
      ++result.skipped;
      ++result.completed;
    } else if (it->second == "ran" || it->second == "resumed") {
      ++result.completed;
    }
  }
  display_.reset();
  return result;
}

std::string pad(const std::string& s, std::size_t width) {
  // Widths count code points so that non-ASCII names line up.
  std::size_t cps = 0;
  for (unsigned char c : s) cps += (c & 0xC0) != 0x80;
  return cps >= width ? s : s + std::string(width - cps, ' ');
}

std::string fixed(const json& v, int digits) {
  if (!v.is_number()) return "-";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v.get<double>());
  return buf;
}

}  // namespace

std::string resolve_torch_dtype(const std::string& requested, const std::string& checkpoint_dtype, bool on_cuda) {
  if (requested != "auto") return requested;
  if (!on_cuda) return "float32";
  if (checkpoint_dtype == "bfloat16" || checkpoint_dtype == "float16" || checkpoint_dtype == "float32") {
    return checkpoint_dtype;
  }
  return "float32";
}

json training_overview(const json& metrics) {
  json o;
  auto first_of = [&](std::initializer_list<const char*> keys) -> json {
    for (const char* k : keys) {
      if (metrics.contains(k) && metrics[k].is_number()) return metrics[k];
    }
    return nullptr;
  };
  json first_loss = nullptr, final_loss = nullptr, last_step = nullptr;
  for (const char* key : {"loss_history", "log_history", "history"}) {
    if (!metrics.contains(key) || !metrics[key].is_array()) continue;
    for (const auto& item : metrics[key]) {
      json loss = item.is_number() ? item : (item.is_object() && item.contains("loss") ? item["loss"] : json(nullptr));
      if (!loss.is_number()) continue;
      if (first_loss.is_null()) first_loss = loss;
      final_loss = loss;
      if (item.is_object() && item.contains("step")) last_step = item["step"];
    }
    if (!first_loss.is_null()) break;
  }
  json steps = first_of({"global_step", "steps", "total_steps"});
  o["steps"] = steps.is_null() ? last_step : steps;
  o["first_loss"] = first_loss;
  o["final_loss"] = final_loss;
  o["train_loss"] = first_of({"train_loss"});
  o["runtime_seconds"] = first_of({"train_runtime", "runtime_seconds", "runtime"});
  o["samples_per_second"] = first_of({"train_samples_per_second", "samples_per_second"});
  o["trainable_parameters"] = first_of({"trainable_parameters", "trainable_params"});
  o["total_parameters"] = first_of({"total_parameters", "all_params"});
  return o;
}

std::string format_summary_table(const json& summary, bool markdown) {
  auto text = [](const json& obj, const char* key) -> std::string {
    return obj.is_object() && obj.contains(key) && obj[key].is_string() ? obj[key].get<std::string>() : "";
  };
  std::ostringstream out;
  if (summary.is_object() && summary.value("valid", false)) {
    // A validate-only result.
    const json runs = summary.contains("runs") && summary["runs"].is_array() ? summary["runs"] : json::array();
    out << "config " << text(summary, "config") << " is valid: " << runs.size() << " run" << (runs.size() == 1 ? "" : "s")
        << ", outputs would go to " << text(summary, "output_dir") << "\n";
    if (summary.contains("models") && summary["models"].is_array()) {
      for (const auto& m : summary["models"]) {
        out << "  model " << text(m, "name") << ": " << text(m, "folder") << " (" << text(m, "model_type") << ", "
            << text(m, "dtype") << " on " << text(m, "device") << ")\n";
      }
    }
    for (const auto& r : runs) out << "  run " << (r.is_string() ? r.get<std::string>() : r.dump()) << "\n";
    return out.str();
  }
  const std::vector<std::string> head = {"run", "status", "steps", "loss first -> final", "EM", "BLEU-4", "METEOR",
                                         "ROUGE-L", "examples"};
  std::vector<std::vector<std::string>> rows;
  if (summary.is_object() && summary.contains("runs") && summary["runs"].is_array()) {
    for (const auto& r : summary["runs"]) {
      if (!r.is_object()) continue;
      const json t = r.contains("training") ? r["training"] : json(nullptr);
      json val = nullptr;
      if (r.contains("evaluation") && r["evaluation"].is_object() && r["evaluation"].contains("val")) {
        val = r["evaluation"]["val"];
      }
      const json metrics = val.is_object() && val.contains("metrics") && val["metrics"].is_object() ? val["metrics"]
                                                                                                     : json::object();
      auto metric = [&](const char* name, int digits) -> std::string {
        return metrics.contains(name) ? fixed(metrics[name], digits) : "-";
      };
      auto integer = [](const json& obj, const char* key) -> std::string {
        return obj.is_object() && obj.contains(key) && obj[key].is_number()
                   ? std::to_string(static_cast<long long>(obj[key].get<double>()))
                   : "-";
      };
      std::string loss = "-";
      if (t.is_object() && t.contains("final_loss") && t["final_loss"].is_number()) {
        loss = fixed(t.value("first_loss", json(nullptr)), 4) + " -> " + fixed(t["final_loss"], 4);
      }
      rows.push_back({text(r, "name"), text(r, "status"), integer(t, "steps"), loss, metric("exact_match", 4),
                      metric("bleu", 2), metric("meteor", 4), metric("rougeL", 4), integer(val, "examples")});
    }
  }
  std::vector<std::size_t> width(head.size());
  for (std::size_t c = 0; c < head.size(); ++c) {
    width[c] = head[c].size();
    for (const auto& row : rows) {
      std::size_t cps = 0;
      for (unsigned char ch : row[c]) cps += (ch & 0xC0) != 0x80;
      width[c] = std::max(width[c], cps);
    }
  }
  auto line = [&](const std::vector<std::string>& cells) {
    for (std::size_t c = 0; c < cells.size(); ++c) {
      if (markdown) {
        out << "| " << cells[c] << " ";
      } else {
        out << (c ? "  " : "") << (c + 1 == cells.size() ? cells[c] : pad(cells[c], width[c]));
      }
    }
    out << (markdown ? "|\n" : "\n");
  };
  line(head);
  if (markdown) {
    line(std::vector<std::string>(head.size(), "---"));
  } else {
    std::size_t total = 0;
    for (auto w : width) total += w + 2;
    out << std::string(total - 2, '-') << "\n";
  }
  for (const auto& row : rows) line(row);
  if (!markdown && summary.is_object() && summary.contains("output_dir")) {
    const std::string dir = text(summary, "output_dir");
    out << "\noutputs: " << dir << "/<run>/ (lora_adapter/, final/, metrics.json, predictions.jsonl, "
        << "generation_metrics.json, run.log)\nsummary: " << join_path(dir, "ablation_summary.json") << " and "
        << join_path(dir, "ablation_summary.md") << "\n";
  }
  return out.str();
}

PipelineResult run_pipeline(const PipelineOptions& options, const PipelineBackend& backend) {
  if (!backend.train || !backend.evaluate) fail(ErrorCode::internal, "run_pipeline: incomplete backend");
  Runner runner(options, backend);
  return runner.run();
}

PipelineResult run_pipeline(const PipelineOptions& options) {
  const PipelineBackend backend = default_pipeline_backend();
  return run_pipeline(options, backend);
}

}  // namespace vlm
