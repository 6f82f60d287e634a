// LoRA (Hu et al., 2021) with PEFT's semantics and file format: adapters attached to the model's Projections by
// module path, trained, saved as adapter_config.json + adapter_model.safetensors that PeftModel.from_pretrained
// loads, loaded from PEFT-written folders, and merged into the base weights.
//
//   y = W x + b + scaling * B(A(dropout(x)))          scaling = alpha / r, or alpha / sqrt(r) with use_rslora
//   DoRA: y = m / ||W + scaling B A||_row * (W x + scaling B A x) + b   (the norm is not differentiated)
//
// Adapter tensors are kept in float32 whatever the base dtype (PEFT's autocast_adapter_dtype); the input is cast to
// float32 for the adapter and the sum is cast back to the base output's dtype, as PEFT's Linear.forward does.
#pragma once

#include <nlohmann/json.hpp>
#include <torch/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "model/layers.h"
#include "model/model.h"

namespace vlm {

struct LoraConfig {
  int r = 8;
  double alpha = 8;
  double dropout = 0.0;
  // Which Projections get an adapter (PEFT's check_target_module_exists):
  //  - target_regex: the module path must fully match it (a string target_modules in PEFT);
  //  - target_modules: a path equal to an entry or ending with "." + entry; {"all-linear"}: every Linear except
  //    the output head;
  //  - neither: the family's default, the language model's q_proj and v_proj.
  std::optional<std::vector<std::string>> target_modules;
  std::optional<std::string> target_regex;
  std::vector<std::string> exclude_modules;      // same rules as a target list
  std::optional<std::string> exclude_regex;
  std::vector<int> layers_to_transform;          // only with a target list: the first numbered path segment
  std::vector<std::string> layers_pattern;       // the segment name before the layer index ("layers")
  // Per-module rank and alpha: the first key k (in order) with re.match("(.*\.)?(k)$", path) wins.
  std::vector<std::pair<std::string, int>> rank_pattern;
  std::vector<std::pair<std::string, double>> alpha_pattern;
  bool use_rslora = false;
  bool use_dora = false;
  bool lora_bias = false;                        // lora_B with a bias
  std::string init = "kaiming";                  // kaiming (PEFT's `true`) | gaussian
  std::string bias = "none";                     // none | all | lora_only: which base biases are trained
  std::vector<std::string> modules_to_save;      // modules trained in full (a trainable copy)
  std::string base_model_name_or_path;

  // PEFT's adapter_config.json, strictly: unknown peft_type, unsupported options (fan_in_fan_out, loftq, ...) and
  // wrong types are vlm::Error naming `file` and the key.
  static LoraConfig from_peft_json(const nlohmann::ordered_json& json, const std::string& file);
  nlohmann::ordered_json to_peft_json() const;
  // Rank and alpha for one module path (the patterns applied).
  std::pair<int, double> rank_alpha_for(const std::string& path) const;
};

// Which parts of the model adapters and trained modules may touch (the freeze controls). A frozen part never
// gets an adapter: the default targets and all-linear skip it, and an explicit target that only matches frozen
// modules is an error that says which switch to turn.
struct LoraScope {
  bool language_model = true;
  bool vision_tower = false;
  bool projector = false;
};

// One adapted Projection.
class LoraLinear : public ProjectionAdapter {
 public:
  LoraLinear(ProjectionImpl* base, int r, double alpha, const LoraConfig& config);
  torch::Tensor delta(const torch::Tensor& x, const torch::Tensor& y) override;
  // W + scaling B A (DoRA: rescaled by m / ||.||): the merged weight, in the base dtype; and the merged bias.
  std::pair<torch::Tensor, torch::Tensor> merged_weight_and_bias() const;

  ProjectionImpl* base;
  torch::Tensor lora_A;     // [r, in]
  torch::Tensor lora_B;     // [out, r]
  torch::Tensor lora_B_bias;  // [out] with lora_bias
  torch::Tensor magnitude;  // [out] with DoRA
  int r;
  double scaling;
  double dropout;
  bool training = false;
};

class LoraModel {
 public:
  // Attaches freshly initialised adapters (A: Kaiming-uniform with a = sqrt(5), or normal with std 1/r; B zero;
  // DoRA magnitude = the row norms of W) drawing from torch's default generator. Throws when a requested target
  // matched nothing.
  static std::unique_ptr<LoraModel> create(VisionLanguageModel& model, const LoraConfig& config,
                                           const LoraScope& scope = {});
  // Loads a PEFT adapter folder. Keys may use the current module layout or an older one the family knows
  // (e.g. base_model.model.model.layers.N for Qwen2-VL); a key that matches no module is an error, as is a file
  // with no LoRA key at all. `trainable`: the tensors require grad (resume, continued training).
  static std::unique_ptr<LoraModel> load(VisionLanguageModel& model, const std::string& folder, bool trainable = false);

  ~LoraModel();
  LoraModel(const LoraModel&) = delete;
  LoraModel& operator=(const LoraModel&) = delete;

  // adapter_config.json + adapter_model.safetensors, atomically (PEFT's key names; tensors in float32).
  void save(const std::string& folder) const;
  // Every trained tensor under its PEFT key ("base_model.model.<path>.lora_A.weight", ...), in a fixed order.
  const std::vector<std::pair<std::string, torch::Tensor>>& parameters() const { return parameters_; }
  std::int64_t trainable_parameter_count() const;
  // All parameters of the model with the adapters (tied tensors counted once), as PEFT's print_trainable_parameters.
  std::int64_t total_parameter_count() const;
  std::vector<std::string> adapted_paths() const;
  const LoraConfig& config() const { return config_; }

  // Dropout on (training) or off.
  void set_training(bool training);
  // Folds the adapters into the base weights and detaches them; modules_to_save copies replace the originals.
  // The model then computes what it computed with the adapters (up to rounding).
  void merge_and_unload();
  // Removes the adapters from the model and restores trained copies' originals.
  void unload();

 private:
  LoraModel(VisionLanguageModel& model, LoraConfig config) : model_(model), config_(std::move(config)) {}
  void attach(const std::string& path, ProjectionImpl* projection, bool fresh);
  void add_saved_module(const std::string& path, torch::nn::Module& module);
  void add_bias_parameters(const LoraScope& scope);
  void collect_parameters();

  VisionLanguageModel& model_;
  LoraConfig config_;
  std::vector<std::pair<std::string, std::shared_ptr<LoraLinear>>> adapters_;  // by module path
  struct SavedModule {
    std::string path;
    std::vector<std::pair<std::string, torch::Tensor>> originals;  // param name -> original tensor data
    std::vector<std::pair<std::string, torch::Tensor>> trained;    // param name -> the trainable parameter
  };
  std::vector<SavedModule> saved_modules_;
  std::vector<std::pair<std::string, torch::Tensor>> trained_biases_;  // path.bias -> the base bias parameter
  std::vector<std::pair<std::string, torch::Tensor>> parameters_;
  bool attached_ = true;
};

// The module path a PEFT key names: "base_model.model.X.lora_A.weight" -> "X" (also lora_B, lora_magnitude_vector,
// and bias/modules_to_save keys), with the family's legacy layouts mapped to the current one. "" when the key is
// not an adapter key.
std::string lora_module_path_of_key(const std::string& key);

// Does PEFT's target rule (list or regex, exclusions, layers) select `path`? Exposed for tests.
bool lora_targets(const LoraConfig& config, const std::string& path);

}  // namespace vlm
