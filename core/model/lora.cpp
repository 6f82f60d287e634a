#include "model/lora.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "base/error.h"
#include "base/fs.h"
#include "io/checkpoint.h"
#include "tensor/tensor_io.h"

namespace vlm {
namespace {

const std::string kPrefix = "base_model.model.";

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}
bool starts_with(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

// A list entry selects a path equal to it or ending with "." + entry.
bool list_selects(const std::vector<std::string>& names, const std::string& path) {
  for (const auto& name : names) {
    if (path == name || ends_with(path, "." + name)) return true;
  }
  return false;
}

std::regex compile(const std::string& pattern, const std::string& what) {
  try {
    return std::regex(pattern, std::regex::ECMAScript);
  } catch (const std::regex_error& e) {
    fail(ErrorCode::invalid_argument, what + ": '" + pattern + "' is not a valid regular expression (" + e.what() + ")");
  }
}

// PEFT: the first numbered segment ("...layers.3.") or the one after a layers_pattern name.
std::optional<int> layer_index_of(const std::string& path, const std::vector<std::string>& patterns) {
  std::smatch match;
  if (patterns.empty()) {
    static const std::regex any(R"(^.*?\.[^.]*\.(\d+)\.)");
    if (std::regex_search(path, match, any)) return std::stoi(match[1].str());
    return std::nullopt;
  }
  for (const auto& pattern : patterns) {
    std::regex re("^(?:|.*?\\.)" + pattern + "\\.(\\d+)\\.");
    if (std::regex_search(path, match, re)) return std::stoi(match[1].str());
  }
  return std::nullopt;
}

// The part of the model a path belongs to (the projector prefix may lie inside the vision prefix and wins).
enum class Part { language_model, vision_tower, projector, other };
Part part_of(const ModelInfo& info, const std::string& path) {
  if (!info.projector_prefix.empty() && starts_with(path, info.projector_prefix)) return Part::projector;
  if (!info.vision_tower_prefix.empty() && starts_with(path, info.vision_tower_prefix)) return Part::vision_tower;
  if (path == "lm_head" || starts_with(path, "lm_head.")) return Part::language_model;
  if (info.language_model_prefix.empty() || starts_with(path, info.language_model_prefix)) return Part::language_model;
  return Part::other;
}
bool in_scope(const LoraScope& scope, Part part) {
  switch (part) {
    case Part::language_model: return scope.language_model;
    case Part::vision_tower: return scope.vision_tower;
    case Part::projector: return scope.projector;
    case Part::other: return true;
  }
  return true;
}
const char* part_switch(Part part) {
  switch (part) {
    case Part::vision_tower: return "freeze_vision_tower: false";
    case Part::projector: return "freeze_projector: false";
    default: return "freeze_language_model: false";
  }
}

std::map<std::string, ProjectionImpl*> projections_of(VisionLanguageModel& model) {
  std::map<std::string, ProjectionImpl*> found;
  for (auto& [path, projection] : set_projection_paths(model.module())) found[path] = projection.get();
  return found;
}

torch::Tensor to_float_on(const torch::Tensor& t, torch::Device device) {
  return t.to(device, torch::kFloat).contiguous();
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------------
// Configuration

std::pair<int, double> LoraConfig::rank_alpha_for(const std::string& path) const {
  int rank = r;
  double a = alpha;
  for (const auto& [key, value] : rank_pattern) {
    if (std::regex_match(path, compile("(.*\\.)?(" + key + ")", "rank_pattern"))) {
      rank = value;
      break;
    }
  }
  for (const auto& [key, value] : alpha_pattern) {
    if (std::regex_match(path, compile("(.*\\.)?(" + key + ")", "alpha_pattern"))) {
      a = value;
      break;
    }
  }
  return {rank, a};
}

bool lora_targets(const LoraConfig& config, const std::string& path) {
  if (config.exclude_regex && std::regex_match(path, compile(*config.exclude_regex, "exclude_modules"))) return false;
  if (list_selects(config.exclude_modules, path)) return false;
  for (const auto& saved : config.modules_to_save) {
    if (path == saved || ends_with(path, "." + saved) || path.find("." + saved + ".") != std::string::npos ||
        starts_with(path, saved + ".")) {
      return false;
    }
  }
  if (config.target_regex) return std::regex_match(path, compile(*config.target_regex, "target_modules"));
  const auto targets = config.target_modules.value_or(std::vector<std::string>{"q_proj", "v_proj"});
  if (!list_selects(targets, path)) return false;
  if (!config.layers_to_transform.empty()) {
    auto index = layer_index_of(path, config.layers_pattern);
    if (!index) return false;
    return std::find(config.layers_to_transform.begin(), config.layers_to_transform.end(), *index) !=
           config.layers_to_transform.end();
  }
  return true;
}

namespace {

std::vector<std::string> string_or_list(const nlohmann::ordered_json& value, const std::string& file, const std::string& key,
                                        std::optional<std::string>* regex) {
  std::vector<std::string> out;
  if (value.is_null()) return out;
  if (value.is_string()) {
    if (regex) {
      *regex = value.get<std::string>();
      return out;
    }
    out.push_back(value.get<std::string>());
    return out;
  }
  if (!value.is_array()) fail(ErrorCode::corrupt_data, file + ": " + key + " must be a string or a list of strings");
  for (const auto& item : value) {
    if (!item.is_string()) fail(ErrorCode::corrupt_data, file + ": " + key + " must hold strings");
    out.push_back(item.get<std::string>());
  }
  std::sort(out.begin(), out.end());  // PEFT stores sets; the order carries no meaning
  return out;
}

}  // namespace

LoraConfig LoraConfig::from_peft_json(const nlohmann::ordered_json& j, const std::string& file) {
  if (!j.is_object()) fail(ErrorCode::corrupt_data, file + ": expected a JSON object");
  auto get = [&](const char* key) -> const nlohmann::ordered_json& {
    static const nlohmann::ordered_json null_value;
    auto it = j.find(key);
    return it == j.end() ? null_value : *it;
  };
  auto type_error = [&](const std::string& key, const char* expected) {
    fail(ErrorCode::corrupt_data, file + ": '" + key + "' must be " + expected);
  };
  const auto& peft_type = get("peft_type");
  if (!peft_type.is_null() && peft_type != "LORA") {
    fail(ErrorCode::unsupported, file + ": peft_type " + peft_type.dump() + " is not supported (only LORA adapters)");
  }
  LoraConfig c;
  if (!get("r").is_null()) {
    if (!get("r").is_number_integer()) type_error("r", "an integer");
    c.r = get("r").get<int>();
  }
  if (!get("lora_alpha").is_null()) {
    if (!get("lora_alpha").is_number()) type_error("lora_alpha", "a number");
    c.alpha = get("lora_alpha").get<double>();
  }
  if (!get("lora_dropout").is_null()) {
    if (!get("lora_dropout").is_number()) type_error("lora_dropout", "a number");
    c.dropout = get("lora_dropout").get<double>();
  }
  std::optional<std::string> regex;
  auto targets = string_or_list(get("target_modules"), file, "target_modules", &regex);
  if (regex) {
    if (*regex == "all-linear") c.target_modules = std::vector<std::string>{"all-linear"};
    else c.target_regex = regex;
  } else if (!get("target_modules").is_null()) {
    c.target_modules = targets;
  }
  std::optional<std::string> exclude_regex;
  c.exclude_modules = string_or_list(get("exclude_modules"), file, "exclude_modules", &exclude_regex);
  c.exclude_regex = exclude_regex;
  const auto& layers = get("layers_to_transform");
  if (layers.is_number_integer()) c.layers_to_transform = {layers.get<int>()};
  else if (layers.is_array()) c.layers_to_transform = layers.get<std::vector<int>>();
  else if (!layers.is_null()) type_error("layers_to_transform", "an integer or a list of integers");
  c.layers_pattern = string_or_list(get("layers_pattern"), file, "layers_pattern", nullptr);
  if (get("rank_pattern").is_object()) {
    for (auto it = get("rank_pattern").begin(); it != get("rank_pattern").end(); ++it) {
      if (!it.value().is_number_integer()) type_error("rank_pattern." + it.key(), "an integer");
      c.rank_pattern.emplace_back(it.key(), it.value().get<int>());
    }
  }
  if (get("alpha_pattern").is_object()) {
    for (auto it = get("alpha_pattern").begin(); it != get("alpha_pattern").end(); ++it) {
      if (!it.value().is_number()) type_error("alpha_pattern." + it.key(), "a number");
      c.alpha_pattern.emplace_back(it.key(), it.value().get<double>());
    }
  }
  auto flag = [&](const char* key, bool& out) {
    const auto& v = get(key);
    if (v.is_null()) return;
    if (!v.is_boolean()) type_error(key, "true or false");
    out = v.get<bool>();
  };
  flag("use_rslora", c.use_rslora);
  flag("use_dora", c.use_dora);
  flag("lora_bias", c.lora_bias);
  bool fan_in_fan_out = false;
  flag("fan_in_fan_out", fan_in_fan_out);
  if (fan_in_fan_out) fail(ErrorCode::unsupported, file + ": fan_in_fan_out (Conv1D models such as GPT-2) is not supported");
  const auto& init = get("init_lora_weights");
  if (init.is_boolean()) c.init = init.get<bool>() ? "kaiming" : "zeros";
  else if (init == "gaussian") c.init = "gaussian";
  else if (!init.is_null()) {
    fail(ErrorCode::unsupported, file + ": init_lora_weights " + init.dump() + " is not supported (true, false, \"gaussian\")");
  }
  if (!get("bias").is_null()) {
    c.bias = get("bias").get<std::string>();
    if (c.bias != "none" && c.bias != "all" && c.bias != "lora_only") {
      fail(ErrorCode::corrupt_data, file + ": bias must be none, all or lora_only, not '" + c.bias + "'");
    }
  }
  c.modules_to_save = string_or_list(get("modules_to_save"), file, "modules_to_save", nullptr);
  for (const char* key : {"layer_replication", "megatron_config", "trainable_token_indices", "target_parameters"}) {
    const auto& v = get(key);
    if (!v.is_null() && !(v.is_array() && v.empty()) && !(v.is_object() && v.empty())) {
      fail(ErrorCode::unsupported, file + ": '" + key + "' is not supported");
    }
  }
  if (get("base_model_name_or_path").is_string()) c.base_model_name_or_path = get("base_model_name_or_path");
  if (c.r <= 0) fail(ErrorCode::corrupt_data, file + ": r must be positive");
  return c;
}

nlohmann::ordered_json LoraConfig::to_peft_json() const {
  nlohmann::ordered_json j;
  nlohmann::ordered_json alpha_json = nlohmann::ordered_json::object(), rank_json = nlohmann::ordered_json::object();
  for (const auto& [k, v] : alpha_pattern) alpha_json[k] = v;
  for (const auto& [k, v] : rank_pattern) rank_json[k] = v;
  auto number = [](double v) -> nlohmann::ordered_json {
    if (std::floor(v) == v && std::fabs(v) < 1e15) return static_cast<std::int64_t>(v);
    return v;
  };
  j["alpha_pattern"] = alpha_json;
  j["auto_mapping"] = nullptr;
  j["base_model_name_or_path"] = base_model_name_or_path.empty() ? nlohmann::ordered_json(nullptr)
                                                                 : nlohmann::ordered_json(base_model_name_or_path);
  j["bias"] = bias;
  j["exclude_modules"] = exclude_regex ? nlohmann::ordered_json(*exclude_regex)
                         : exclude_modules.empty() ? nlohmann::ordered_json(nullptr)
                                                   : nlohmann::ordered_json(exclude_modules);
  j["fan_in_fan_out"] = false;
  j["inference_mode"] = true;
  j["init_lora_weights"] = init == "gaussian" ? nlohmann::ordered_json("gaussian") : nlohmann::ordered_json(init != "zeros");
  j["layer_replication"] = nullptr;
  j["layers_pattern"] = layers_pattern.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(layers_pattern);
  j["layers_to_transform"] =
      layers_to_transform.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(layers_to_transform);
  j["lora_alpha"] = number(alpha);
  j["lora_bias"] = lora_bias;
  j["lora_dropout"] = dropout;
  j["modules_to_save"] = modules_to_save.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(modules_to_save);
  j["peft_type"] = "LORA";
  j["r"] = r;
  j["rank_pattern"] = rank_json;
  j["revision"] = nullptr;
  if (target_regex) j["target_modules"] = *target_regex;
  else if (target_modules && target_modules->size() == 1 && target_modules->front() == "all-linear") j["target_modules"] = "all-linear";
  else j["target_modules"] = target_modules.value_or(std::vector<std::string>{"q_proj", "v_proj"});
  j["task_type"] = nullptr;
  j["use_dora"] = use_dora;
  j["use_rslora"] = use_rslora;
  return j;
}

// ---------------------------------------------------------------------------------------------------------------
// One adapted projection

LoraLinear::LoraLinear(ProjectionImpl* base_projection, int rank, double lora_alpha, const LoraConfig& config)
    : base(base_projection), r(rank), dropout(config.dropout) {
  scaling = config.use_rslora ? lora_alpha / std::sqrt(static_cast<double>(rank)) : lora_alpha / rank;
}

torch::Tensor LoraLinear::delta(const torch::Tensor& x_in, const torch::Tensor& y) {
  auto x = x_in.to(lora_A.scalar_type());
  const bool drop = training && dropout > 0;
  if (!magnitude.defined()) {
    auto h = drop ? torch::dropout(x, dropout, /*train=*/true) : x;
    return precise_linear(precise_linear(h, lora_A), lora_B, lora_B_bias) * scaling;
  }
  // DoRA, as PEFT's DoraLinearLayer.forward.
  torch::Tensor base_result;
  auto weight = base->weight.to(x.scalar_type());
  if (drop) {
    x = torch::dropout(x, dropout, /*train=*/true);
    base_result = precise_linear(x, weight);
  } else {
    base_result = base->bias.defined() ? y - base->bias : y;
  }
  auto eye = torch::eye(lora_A.size(1), lora_A.options());
  auto lora_weight = precise_linear(precise_linear(eye, lora_A), lora_B, lora_B_bias).t();
  auto weight_norm = torch::linalg_norm(weight + scaling * lora_weight.detach(), c10::nullopt, {1}, false, c10::nullopt)
                         .to(weight.scalar_type())
                         .detach();
  auto mag_norm_scale = (magnitude / weight_norm).view({1, -1});
  auto lora_result = precise_linear(precise_linear(x, lora_A), lora_B, lora_B_bias);
  return (mag_norm_scale - 1) * base_result + mag_norm_scale * lora_result * scaling;
}

std::pair<torch::Tensor, torch::Tensor> LoraLinear::merged_weight_and_bias() const {
  torch::NoGradGuard no_grad;
  const auto dtype = base->weight.scalar_type();
  auto weight = base->weight.to(torch::kFloat);
  auto delta = torch::matmul(lora_B, lora_A) * scaling;
  torch::Tensor merged;
  if (magnitude.defined()) {
    auto norm = torch::linalg_norm(weight + delta, c10::nullopt, {1}, false, c10::nullopt);
    merged = (magnitude / norm).view({-1, 1}) * (weight + delta);
  } else {
    merged = weight + delta;
  }
  torch::Tensor bias = base->bias;
  if (lora_B_bias.defined()) {
    auto delta_bias = lora_B_bias * scaling;
    bias = bias.defined() ? (bias.to(torch::kFloat) + delta_bias).to(dtype) : delta_bias.to(dtype);
  }
  return {merged.to(dtype), bias};
}

// ---------------------------------------------------------------------------------------------------------------
// The adapters of one model

LoraModel::~LoraModel() = default;

void LoraModel::attach(const std::string& path, ProjectionImpl* projection, bool fresh) {
  auto [rank, lora_alpha] = config_.rank_alpha_for(path);
  if (rank <= 0) fail(ErrorCode::invalid_argument, "LoRA rank for " + path + " must be positive (rank_pattern / r)");
  auto adapter = std::make_shared<LoraLinear>(projection, rank, lora_alpha, config_);
  const auto device = projection->weight.device();
  auto opts = torch::TensorOptions().dtype(torch::kFloat).device(device);
  const auto in = projection->in_features(), out = projection->out_features();
  adapter->lora_A = torch::zeros({rank, in}, opts);
  adapter->lora_B = torch::zeros({out, rank}, opts);
  if (config_.lora_bias) adapter->lora_B_bias = torch::zeros({out}, opts);
  if (fresh) {
    torch::NoGradGuard no_grad;
    if (config_.init == "gaussian") {
      adapter->lora_A.normal_(0.0, 1.0 / rank);
    } else if (config_.init == "kaiming") {
      torch::nn::init::kaiming_uniform_(adapter->lora_A, std::sqrt(5.0));
    }  // "zeros": A = 0 too (PEFT's init_lora_weights=false is the identity-free random init; here both are zero)
    if (config_.use_dora) {
      adapter->magnitude =
          torch::linalg_norm(projection->weight.to(torch::kFloat), c10::nullopt, {1}, false, c10::nullopt).contiguous();
    }
  } else if (config_.use_dora) {
    adapter->magnitude = torch::zeros({out}, opts);
  }
  projection->add_adapter(adapter);
  adapters_.emplace_back(path, adapter);
}

void LoraModel::add_saved_module(const std::string& path, torch::nn::Module& module) {
  SavedModule saved;
  saved.path = path;
  for (auto& item : module.named_parameters(/*recurse=*/true)) {
    auto param = item.value();
    saved.originals.emplace_back(item.key(), param.data());
    param.set_data(param.detach().clone());
    param.set_requires_grad(true);
    saved.trained.emplace_back(item.key(), param);
  }
  saved_modules_.push_back(std::move(saved));
}

void LoraModel::add_bias_parameters(const LoraScope& scope) {
  if (config_.bias == "none") return;
  std::set<std::string> adapted;
  for (const auto& [path, adapter] : adapters_) adapted.insert(path);
  for (auto& [path, projection] : projections_of(model_)) {
    if (!projection->bias.defined()) continue;
    if (config_.bias == "lora_only" && !adapted.count(path)) continue;
    if (config_.bias == "all" && !in_scope(scope, part_of(model_.info(), path))) continue;
    trained_biases_.emplace_back(path + ".bias", projection->bias);
  }
}

void LoraModel::collect_parameters() {
  parameters_.clear();
  for (const auto& [path, a] : adapters_) {
    parameters_.emplace_back(kPrefix + path + ".lora_A.weight", a->lora_A);
    parameters_.emplace_back(kPrefix + path + ".lora_B.weight", a->lora_B);
    if (a->lora_B_bias.defined()) parameters_.emplace_back(kPrefix + path + ".lora_B.bias", a->lora_B_bias);
    if (a->magnitude.defined()) parameters_.emplace_back(kPrefix + path + ".lora_magnitude_vector", a->magnitude);
  }
  for (const auto& [name, bias] : trained_biases_) parameters_.emplace_back(kPrefix + name, bias);
  for (const auto& saved : saved_modules_) {
    for (const auto& [name, param] : saved.trained) parameters_.emplace_back(kPrefix + saved.path + "." + name, param);
  }
}

std::unique_ptr<LoraModel> LoraModel::create(VisionLanguageModel& model, const LoraConfig& config,
                                             const LoraScope& scope) {
  if (config.r <= 0) fail(ErrorCode::invalid_argument, "LoRA r must be a positive integer (got " + std::to_string(config.r) + ")");
  if (config.dropout < 0 || config.dropout >= 1) fail(ErrorCode::invalid_argument, "LoRA dropout must be in [0, 1)");
  if (config.use_dora && config.lora_bias) fail(ErrorCode::unsupported, "LoRA: use_dora and lora_bias cannot be combined (PEFT refuses it too)");
  std::unique_ptr<LoraModel> lora(new LoraModel(model, config));
  const auto& info = model.info();
  const bool all_linear = config.target_modules && config.target_modules->size() == 1 &&
                          config.target_modules->front() == "all-linear";
  const bool defaulted = !config.target_modules && !config.target_regex;
  std::vector<std::string> frozen_matches;
  for (auto& [path, projection] : projections_of(model)) {
    const Part part = part_of(info, path);
    bool selected;
    if (all_linear) {
      selected = path != "lm_head" && !ends_with(path, ".lm_head") && lora_targets([&] {
                   LoraConfig c = config;
                   c.target_modules = std::vector<std::string>{path};
                   return c;
                 }(), path);
    } else {
      selected = lora_targets(config, path);
    }
    if (!selected) continue;
    if (defaulted && part != Part::language_model) continue;
    if (!in_scope(scope, part)) {
      frozen_matches.push_back(path);  // reported only when nothing else matched
      continue;
    }
    lora->attach(path, projection, /*fresh=*/true);
  }
  if (lora->adapters_.empty()) {
    std::ostringstream msg;
    msg << "LoRA: target_modules ";
    if (config.target_regex) msg << "'" << *config.target_regex << "'";
    else {
      const auto t = config.target_modules.value_or(std::vector<std::string>{"q_proj", "v_proj"});
      msg << "[";
      for (std::size_t i = 0; i < t.size(); ++i) msg << (i ? ", " : "") << t[i];
      msg << "]";
    }
    if (!frozen_matches.empty()) {
      msg << " matched only modules of frozen parts (e.g. " << frozen_matches.front() << "); set "
          << part_switch(part_of(info, frozen_matches.front())) << " to adapt them";
    } else {
      msg << " matched no linear layer of the " << info.family << " model; module paths look like ";
      auto all = projections_of(model);
      int shown = 0;
      for (const auto& [path, p] : all) {
        if (shown++ == 3) break;
        msg << (shown > 1 ? ", " : "") << path;
      }
    }
    fail(ErrorCode::invalid_argument, msg.str());
  }
  auto& root = model.module();
  for (const auto& name : config.modules_to_save) {
    bool found = false;
    for (auto& item : root.named_modules("", /*include_self=*/false)) {
      const auto& path = item.key();
      if (path == name || ends_with(path, "." + name)) {
        lora->add_saved_module(path, *item.value());
        found = true;
      }
    }
    if (!found) fail(ErrorCode::invalid_argument, "LoRA: modules_to_save entry '" + name + "' matched no module of the model");
  }
  lora->add_bias_parameters(scope);
  lora->collect_parameters();
  for (auto& [name, tensor] : lora->parameters_) tensor.set_requires_grad(true);
  return lora;
}

std::string lora_module_path_of_key(const std::string& key) {
  if (!starts_with(key, kPrefix)) return "";
  auto rest = key.substr(kPrefix.size());
  for (const char* suffix : {".lora_A.weight", ".lora_B.weight", ".lora_B.bias", ".lora_magnitude_vector"}) {
    if (ends_with(rest, suffix)) return rest.substr(0, rest.size() - std::string(suffix).size());
  }
  return "";
}

std::unique_ptr<LoraModel> LoraModel::load(VisionLanguageModel& model, const std::string& folder, bool trainable) {
  namespace fs = std::filesystem;
  const auto config_path = (fs::path(folder) / "adapter_config.json").string();
  if (!fs::exists(config_path)) {
    fail(ErrorCode::not_found, folder + ": no adapter_config.json; expected a PEFT LoRA adapter folder "
                               "(adapter_config.json + adapter_model.safetensors)");
  }
  nlohmann::ordered_json config_json;  // file order: PEFT takes the first rank_pattern / alpha_pattern key that matches
  try {
    config_json = nlohmann::ordered_json::parse(read_file(config_path));
  } catch (const nlohmann::json::exception& e) {
    fail(ErrorCode::corrupt_data, config_path + ": invalid JSON (" + e.what() + ")");
  }
  auto config = LoraConfig::from_peft_json(config_json, config_path);
  const auto weights_path = (fs::path(folder) / "adapter_model.safetensors").string();
  if (!fs::exists(weights_path)) {
    if (fs::exists(fs::path(folder) / "adapter_model.bin")) {
      fail(ErrorCode::unsupported, folder + ": adapter_model.bin (pickle) is not read for safety; convert it with "
                                            "PeftModel.from_pretrained(...).save_pretrained(dir, safe_serialization=True)");
    }
    fail(ErrorCode::not_found, folder + ": no adapter_model.safetensors");
  }
  auto checkpoint = Checkpoint::open(weights_path, "adapter_model");
  auto tensors = load_all_tensors(*checkpoint);

  std::unique_ptr<LoraModel> lora(new LoraModel(model, config));
  auto projections = projections_of(model);
  const auto device = model.device();
  std::map<std::string, std::string> canonical;  // key path -> model path
  auto resolve = [&](const std::string& path) -> std::string {
    if (projections.count(path)) return path;
    auto mapped = model.canonical_module_path(path);
    if (projections.count(mapped)) return mapped;
    return "";
  };
  std::vector<std::string> unmatched, wrong_shape, rank_mismatch;
  std::map<std::string, std::shared_ptr<LoraLinear>> by_path;
  // Pass 1: the adapters (by their lora_A keys).
  for (const auto& [key, tensor] : tensors) {
    if (!ends_with(key, ".lora_A.weight")) continue;
    const auto key_path = lora_module_path_of_key(key);
    const auto path = resolve(key_path);
    if (path.empty()) {
      unmatched.push_back(key);
      continue;
    }
    // PEFT stores the effective rank in the tensor shapes; rank_pattern in the config agrees with them.
    lora->attach(path, projections.at(path), /*fresh=*/false);
    by_path[key_path] = lora->adapters_.back().second;
  }
  // Pass 2: every key lands somewhere.
  std::set<std::string> saved_paths;
  for (const auto& [key, tensor] : tensors) {
    if (!starts_with(key, kPrefix)) {
      unmatched.push_back(key);
      continue;
    }
    const auto key_path = lora_module_path_of_key(key);
    if (!key_path.empty()) {
      auto it = by_path.find(key_path);
      if (it == by_path.end()) {
        unmatched.push_back(key);
        continue;
      }
      auto& a = *it->second;
      torch::Tensor* target = ends_with(key, ".lora_A.weight")   ? &a.lora_A
                              : ends_with(key, ".lora_B.weight") ? &a.lora_B
                              : ends_with(key, ".lora_B.bias")   ? &a.lora_B_bias
                                                                 : &a.magnitude;
      if (ends_with(key, ".lora_A.weight")) {
        if (tensor.dim() != 2 || tensor.size(1) != a.base->in_features()) {
          wrong_shape.push_back(key);
          continue;
        }
        a.r = static_cast<int>(tensor.size(0));
        auto [rank, lora_alpha] = config.rank_alpha_for(a.base->path());
        // PEFT builds each module with the config's rank (r, or its rank_pattern entry) and refuses a tensor of
        // another shape ("size mismatch" in load_state_dict); so does vlmrt.
        if (a.r != rank) {
          rank_mismatch.push_back(key + " has rank " + std::to_string(a.r) + ", adapter_config.json gives " +
                                  std::to_string(rank));
          continue;
        }
        a.scaling = config.use_rslora ? lora_alpha / std::sqrt(static_cast<double>(a.r)) : lora_alpha / a.r;
      } else if (ends_with(key, ".lora_B.weight")) {
        if (tensor.dim() != 2 || tensor.size(0) != a.base->out_features()) {
          wrong_shape.push_back(key);
          continue;
        }
      } else if (tensor.dim() != 1 || tensor.size(0) != a.base->out_features()) {
        wrong_shape.push_back(key);
        continue;
      }
      *target = to_float_on(tensor, device);
      continue;
    }
    // A base bias (bias: all / lora_only) or a parameter of a modules_to_save module.
    const auto rest = key.substr(kPrefix.size());
    bool placed = false;
    for (const auto& name : config.modules_to_save) {
      const auto pos = rest.find(name + ".");
      if (pos == std::string::npos || (pos > 0 && rest[pos - 1] != '.')) continue;
      auto module_path = rest.substr(0, pos + name.size());
      const auto param_name = rest.substr(pos + name.size() + 1);
      auto mapped = module_path;
      if (!model.module().named_modules("", false).contains(mapped)) mapped = model.canonical_module_path(module_path);
      auto modules = model.module().named_modules("", false);
      if (!modules.contains(mapped)) break;
      if (!saved_paths.count(mapped)) {
        lora->add_saved_module(mapped, *modules[mapped]);
        saved_paths.insert(mapped);
      }
      for (auto& saved : lora->saved_modules_) {
        if (saved.path != mapped) continue;
        for (auto& [pname, param] : saved.trained) {
          if (pname != param_name) continue;
          if (param.sizes() != tensor.sizes()) {
            wrong_shape.push_back(key);
          } else {
            torch::NoGradGuard no_grad;
            param.set_data(tensor.to(param.device(), param.scalar_type()).clone());
          }
          placed = true;
        }
      }
      break;
    }
    if (!placed && ends_with(rest, ".bias") && config.bias != "none") {
      const auto path = resolve(rest.substr(0, rest.size() - 5));
      if (!path.empty() && projections.at(path)->bias.defined() &&
          projections.at(path)->bias.sizes() == tensor.sizes()) {
        auto bias = projections.at(path)->bias;
        torch::NoGradGuard no_grad;
        bias.set_data(tensor.to(bias.device(), bias.scalar_type()).clone());
        lora->trained_biases_.emplace_back(path + ".bias", bias);
        placed = true;
      }
    }
    if (!placed) unmatched.push_back(key);
  }
  for (const auto& [path, a] : lora->adapters_) {
    if (a->lora_A.size(0) != a->lora_B.size(1)) wrong_shape.push_back(kPrefix + path + " (lora_A rank != lora_B rank)");
    if (config.use_dora && !a->magnitude.defined()) wrong_shape.push_back(kPrefix + path + ".lora_magnitude_vector (missing)");
  }
  if (lora->adapters_.empty() || !unmatched.empty() || !wrong_shape.empty() || !rank_mismatch.empty()) {
    std::ostringstream msg;
    msg << weights_path << ": ";
    if (lora->adapters_.empty()) msg << "no adapter key matches a module of the " << model.info().family << " model";
    else msg << "the adapter does not fit the " << model.info().family << " model";
    auto list = [&](const char* title, const std::vector<std::string>& keys) {
      if (keys.empty()) return;
      msg << "; " << title << " (" << keys.size() << "): ";
      for (std::size_t i = 0; i < keys.size() && i < 5; ++i) msg << (i ? ", " : "") << keys[i];
      if (keys.size() > 5) msg << ", ...";
    };
    list("keys without a matching module", unmatched);
    list("wrongly shaped tensors", wrong_shape);
    list("ranks that disagree with adapter_config.json (r / rank_pattern)", rank_mismatch);
    msg << ". Check that the adapter was trained on this base model (" << config.base_model_name_or_path << ")";
    lora->unload();
    fail(ErrorCode::corrupt_data, msg.str());
  }
  lora->collect_parameters();
  for (auto& [name, tensor] : lora->parameters_) {
    if (name.find(".lora_") != std::string::npos) tensor.set_requires_grad(trainable);
  }
  return lora;
}

void LoraModel::save(const std::string& folder) const {
  namespace fs = std::filesystem;
  fs::create_directories(folder);
  NamedTensors tensors;
  for (const auto& [name, tensor] : parameters_) {
    const bool adapter_tensor = name.find(".lora_") != std::string::npos;
    tensors.emplace_back(name, adapter_tensor ? tensor.detach().to(torch::kCPU, torch::kFloat).contiguous()
                                              : tensor.detach().to(torch::kCPU).contiguous());
  }
  save_tensors((fs::path(folder) / "adapter_model.safetensors").string(), tensors, {{"format", "pt"}});
  write_file_atomic((fs::path(folder) / "adapter_config.json").string(), config_.to_peft_json().dump(2) + "\n");
}

std::int64_t LoraModel::trainable_parameter_count() const {
  std::int64_t n = 0;
  for (const auto& [name, tensor] : parameters_) n += tensor.numel();
  return n;
}

std::int64_t LoraModel::total_parameter_count() const {
  // As PEFT's print_trainable_parameters: the base model's parameters (tied ones once, a trained module's
  // originals rather than its copies) plus the adapters and the trained copies.
  std::set<const void*> copies;
  for (const auto& saved : saved_modules_) {
    for (const auto& [name, t] : saved.trained) copies.insert(t.data_ptr());
  }
  std::set<std::pair<const void*, std::int64_t>> seen;
  std::int64_t n = 0;
  auto count = [&](const torch::Tensor& t) {
    if (seen.insert({t.data_ptr(), t.numel()}).second) n += t.numel();
  };
  for (const auto& param : model_.module().parameters(/*recurse=*/true)) {
    if (!copies.count(param.data_ptr())) count(param);
  }
  for (const auto& saved : saved_modules_) {
    for (const auto& [name, t] : saved.originals) count(t);
  }
  for (const auto& [name, t] : parameters_) {
    if (name.find(".lora_") != std::string::npos || copies.count(t.data_ptr())) n += t.numel();
  }
  return n;
}

std::vector<std::string> LoraModel::adapted_paths() const {
  std::vector<std::string> out;
  for (const auto& [path, a] : adapters_) out.push_back(path);
  return out;
}

void LoraModel::set_training(bool training) {
  for (auto& [path, a] : adapters_) a->training = training;
}

void LoraModel::merge_and_unload() {
  if (!attached_) return;
  torch::NoGradGuard no_grad;
  for (auto& [path, a] : adapters_) {
    auto [weight, bias] = a->merged_weight_and_bias();
    a->base->remove_adapter(a.get());
    a->base->weight.set_data(weight);
    if (bias.defined()) {
      if (a->base->bias.defined()) a->base->bias.set_data(bias);
      else fail(ErrorCode::unsupported, "merge: " + path + " has no bias to merge lora_B's bias into");
    }
  }
  for (auto& saved : saved_modules_) {
    for (auto& [name, param] : saved.trained) param.set_requires_grad(false);
  }
  for (auto& [name, bias] : trained_biases_) bias.set_requires_grad(false);
  adapters_.clear();
  saved_modules_.clear();
  trained_biases_.clear();
  parameters_.clear();
  attached_ = false;
}

void LoraModel::unload() {
  if (!attached_) return;
  torch::NoGradGuard no_grad;
  for (auto& [path, a] : adapters_) a->base->remove_adapter(a.get());
  for (auto& saved : saved_modules_) {
    for (std::size_t i = 0; i < saved.trained.size(); ++i) {
      saved.trained[i].second.set_requires_grad(false);
      saved.trained[i].second.set_data(saved.originals[i].second);
    }
  }
  for (auto& [name, bias] : trained_biases_) bias.set_requires_grad(false);
  adapters_.clear();
  saved_modules_.clear();
  trained_biases_.clear();
  parameters_.clear();
  attached_ = false;
}

}  // namespace vlm
