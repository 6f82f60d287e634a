// The experiment configuration (configs/vlm_ablation.yaml): models x LoRA variants, data, training and
// generation settings. Parsed and fully validated before any work starts; every error names the key path
// ("training.learning_rate") and the line in the file, and an unknown key suggests the closest valid one.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace vlm {

struct DataConfig {
  std::string train_csv;
  std::string val_csv;   // evaluation rows generated after training; may be empty when evaluation is off
  std::string test_csv;  // optional
  std::string image_column = "url";
  std::string instruction_column = "instruction";
  std::string response_column = "response";
  // Evaluation CSVs use `query` / `annotation`; when a file lacks them the training columns are used.
  std::string query_column = "query";
  std::string annotation_column = "annotation";
  int num_workers = 4;
  std::optional<std::int64_t> max_train_samples, max_eval_samples;
};

struct ModelEntry {
  std::string name;
  std::string hf_model_id;
  // Normalised: qwen_vl (the Qwen-VL family, resolved from the checkpoint's config.json), qwen2_vl, qwen2_5_vl,
  // llava, llava_next, llava_gemma, blip2 (also written blip-2), causal_lm (any other Hugging Face causal LM).
  std::string model_type;
  std::string model_type_as_written;
  std::string torch_dtype = "auto";  // auto, float32, float16, bfloat16
  std::string device = "auto";       // auto, cpu, cuda, cuda:N
  // Image pixel limits (Qwen2-VL family). Unset: the seed's fixed 224x224 mode for Qwen models, the
  // checkpoint's preprocessor_config.json otherwise.
  std::optional<std::int64_t> min_pixels, max_pixels;
  bool freeze_vision_tower = true;
  bool freeze_projector = true;
  bool freeze_language_model = false;  // true: adapters only in the unfrozen vision tower / projector
  int line = 0;
};

struct LoraVariant {
  std::string name;
  int r = 8;
  double alpha = 8;
  double dropout = 0.0;
  // Unset (null): the family's documented default (the language model's q_proj and v_proj).
  std::optional<std::vector<std::string>> target_modules;
  bool target_modules_is_regex = false;  // a single string is a regex full-matched against module paths
  std::vector<std::string> exclude_modules;
  bool use_rslora = false;
  bool use_dora = false;
  std::string init_lora_weights = "kaiming";  // kaiming (PEFT's default, written `true`) or gaussian
  std::string bias = "none";                  // none, all, lora_only
  std::vector<std::string> modules_to_save;
  std::vector<int> layers_to_transform;
  int line = 0;
};

struct TrainingConfig {
  double num_train_epochs = 1;
  std::int64_t max_steps = -1;
  int per_device_train_batch_size = 1;
  int per_device_eval_batch_size = 1;
  int gradient_accumulation_steps = 1;
  double learning_rate = 5e-5;
  double weight_decay = 0.0;
  double adam_beta1 = 0.9, adam_beta2 = 0.999, adam_epsilon = 1e-8;
  double warmup_ratio = 0.0;
  std::int64_t warmup_steps = 0;
  std::string lr_scheduler_type = "linear";  // linear, cosine, constant, constant_with_warmup
  int logging_steps = 10;
  std::string eval_strategy = "no";
  std::string save_strategy = "epoch";       // no, epoch, steps
  std::int64_t save_steps = 500;
  std::optional<int> save_total_limit;
  std::string mixed_precision = "no";        // no, fp16, bf16
  bool gradient_checkpointing = false;
  double max_grad_norm = 1.0;
  std::uint64_t seed = 42;
  std::optional<int> max_seq_length;
  bool loss_on_response_only = true;
  std::string on_nonfinite = "stop";         // a non-finite loss or gradient: stop the run, or skip the update
  // Frozen vision tower and projector: compute each example's image features once and reuse them in later epochs,
  // keeping at most image_feature_cache_mb MiB of them.
  bool cache_image_features = true;
  std::int64_t image_feature_cache_mb = 4096;
  // Frozen vision tower and projector: also keep the image features on disk, shared by every run of the experiment
  // that uses the same model in the same dtype and precision (the other LoRA variants train without running the
  // tower; evaluation and baselines reuse the validation images' features). Entries are files under
  // image_feature_store_dir (empty: <output_dir>/image_features), written while that folder holds at most
  // image_feature_store_mb MiB. Deleting the folder is always safe.
  bool store_image_features = true;
  std::string image_feature_store_dir;
  std::int64_t image_feature_store_mb = 8192;
  std::string resume_from_checkpoint;        // "", a path, or "latest"
  // generation_* keys
  int generation_max_new_tokens = 128;
  int generation_min_new_tokens = 0;
  int generation_num_beams = 1;
  bool generation_do_sample = false;
  std::optional<double> generation_temperature, generation_top_p, generation_repetition_penalty;
  std::optional<int> generation_top_k;
};

struct EvaluationConfig {
  bool enabled = true;
  // Also evaluate each untuned model (run "<model>__baseline"), so the summary shows what fine-tuning changed.
  bool baseline = false;
};

struct ExperimentConfig {
  std::string source_path;  // the YAML file
  std::string experiment_name;
  std::string output_dir;
  DataConfig data;
  std::vector<ModelEntry> models;
  std::vector<LoraVariant> lora_variants;
  TrainingConfig training;
  EvaluationConfig evaluation;

  // "<model name>__<variant name>" for every pair, models outer, variants inner.
  std::vector<std::string> run_names() const;
};

struct ConfigCheckOptions {
  // Check that the CSV files exist (relative paths: first against the current directory, then against the
  // folder of the YAML file). Off for validating a config on a machine without the data.
  bool check_files = true;
};

// Parses and validates. Throws vlm::Error(invalid_argument / not_found / corrupt_data) with every problem found
// (not just the first), each naming "<file>:<line>: <key path>".
ExperimentConfig load_experiment_config(const std::string& path, const ConfigCheckOptions& options = {});
ExperimentConfig parse_experiment_config(const std::string& yaml_text, const std::string& label,
                                         const ConfigCheckOptions& options = {});

// The canonical model_type for an accepted spelling ("blip-2" -> "blip2", "Qwen2.5-VL" -> "qwen2_5_vl"), or "".
std::string normalize_model_type(const std::string& model_type);

}  // namespace vlm
