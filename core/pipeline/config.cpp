#include "pipeline/config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <functional>
#include <map>
#include <set>

#include "base/error.h"
#include "base/fs.h"

namespace vlm {
namespace {

std::size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

// Collects every problem of a config file, each as "<file>:<line>: <key path>: <what>".
class Problems {
 public:
  explicit Problems(std::string label) : label_(std::move(label)) {}
  void add(const YAML::Node& node, const std::string& path, const std::string& what) {
    const int line = node.IsDefined() && node.Mark().line >= 0 ? node.Mark().line + 1 : 0;
    messages_.push_back(label_ + (line > 0 ? ":" + std::to_string(line) : "") + ": " + path + ": " + what);
  }
  void add_plain(const std::string& what) { messages_.push_back(label_ + ": " + what); }
  bool empty() const { return messages_.empty(); }
  [[noreturn]] void raise(ErrorCode code) const {
    std::string text = "invalid experiment config (" + std::to_string(messages_.size()) + " problem" +
                       (messages_.size() == 1 ? "" : "s") + "):";
    for (const auto& m : messages_) text += "\n  " + m;
    fail(code, text);
  }
  const std::string& label() const { return label_; }

  // Unknown keys are reported once every section has been read, so that a key placed in the wrong section can
  // name the section it belongs to (evaluation.generation_max_new_tokens -> training.generation_max_new_tokens).
  // section: the key path of the mapping with list indices dropped ("", "data", "models[]", "training").
  void known_keys(const std::string& section, const std::set<std::string>& keys) {
    known_[section].insert(keys.begin(), keys.end());
  }
  void unknown_key(const YAML::Node& node, const std::string& section, const std::string& path,
                   const std::string& key, const std::string& closest_hint) {
    unknown_.push_back({node, section, path, key, closest_hint});
  }
  void report_unknown_keys() {
    for (const auto& u : unknown_) {
      std::string hint = u.closest_hint;
      for (const auto& [section, keys] : known_) {
        if (section == u.section || !keys.count(u.key)) continue;
        hint = "; it belongs " + describe_section(section) + " (" + (section.empty() ? "" : section + ".") + u.key + ")";
        break;
      }
      add(u.node, u.path, "unknown key" + hint);
    }
    unknown_.clear();
  }

 private:
  static std::string describe_section(const std::string& section) {
    if (section.empty()) return "at the top level";
    const auto bracket = section.find("[]");
    if (bracket != std::string::npos) return "in each entry of " + section.substr(0, bracket);
    return "under " + section;
  }
  struct UnknownKey {
    YAML::Node node;
    std::string section, path, key, closest_hint;
  };
  std::string label_;
  std::vector<std::string> messages_;
  std::map<std::string, std::set<std::string>> known_;
  std::vector<UnknownKey> unknown_;
};

// A view of one YAML mapping with typed readers that record problems instead of throwing, so one run reports
// everything that is wrong.
class Section {
 public:
  Section(YAML::Node node, std::string path, Problems& problems) : node_(std::move(node)), path_(std::move(path)), p_(problems) {}

  std::string key_path(const std::string& key) const { return path_.empty() ? key : path_ + "." + key; }
  YAML::Node get(const std::string& key) {
    seen_.insert(key);
    return node_.IsMap() ? node_[key] : YAML::Node();
  }
  bool present(const std::string& key) {
    YAML::Node n = get(key);
    return n.IsDefined() && !n.IsNull();
  }

  void string(const std::string& key, std::string& out, bool required = false) {
    YAML::Node n = get(key);
    if (!n.IsDefined() || n.IsNull()) {
      if (required) p_.add(node_, key_path(key), "is required");
      return;
    }
    if (!n.IsScalar()) return p_.add(n, key_path(key), "must be a string");
    out = n.Scalar();
    if (required && out.empty()) p_.add(n, key_path(key), "must not be empty");
  }
  void choice(const std::string& key, std::string& out, const std::vector<std::string>& allowed) {
    std::string value = out;
    string(key, value);
    if (std::find(allowed.begin(), allowed.end(), value) == allowed.end()) {
      std::string list;
      for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
      return p_.add(get(key), key_path(key), "is \"" + value + "\"; expected one of: " + list);
    }
    out = value;
  }
  template <class T>
  void number(const std::string& key, T& out, std::function<bool(double)> valid = nullptr, const char* rule = nullptr) {
    std::optional<T> v;
    number_optional(key, v, valid, rule);
    if (v) out = *v;
  }
  template <class T>
  void number_optional(const std::string& key, std::optional<T>& out, std::function<bool(double)> valid = nullptr,
                       const char* rule = nullptr) {
    YAML::Node n = get(key);
    if (!n.IsDefined() || n.IsNull()) return;
    double value = 0;
    if (!parse_number(n, value)) return p_.add(n, key_path(key), "must be a number, found \"" + scalar_text(n) + "\"");
    if (std::is_integral<T>::value && value != std::floor(value)) {
      return p_.add(n, key_path(key), "must be an integer, found " + scalar_text(n));
    }
    if (valid && !valid(value)) return p_.add(n, key_path(key), std::string("must be ") + rule + ", found " + scalar_text(n));
    out = static_cast<T>(value);
  }
  void boolean(const std::string& key, bool& out) {
    YAML::Node n = get(key);
    if (!n.IsDefined() || n.IsNull()) return;
    const std::string s = n.IsScalar() ? n.Scalar() : "";
    if (s == "true" || s == "True" || s == "TRUE") {
      out = true;
    } else if (s == "false" || s == "False" || s == "FALSE") {
      out = false;
    } else {
      p_.add(n, key_path(key), "must be true or false, found \"" + scalar_text(n) + "\"");
    }
  }
  void string_list(const std::string& key, std::vector<std::string>& out) {
    YAML::Node n = get(key);
    if (!n.IsDefined() || n.IsNull()) return;
    if (n.IsScalar()) {
      out = {n.Scalar()};
      return;
    }
    if (!n.IsSequence()) return p_.add(n, key_path(key), "must be a string or a list of strings");
    out.clear();
    for (const auto& item : n) {
      if (!item.IsScalar()) return p_.add(item, key_path(key), "must contain only strings");
      out.push_back(item.Scalar());
    }
  }

  // Reports keys of this mapping that no reader asked for, with the closest known key (or, once every section
  // is read, the section where the key belongs: Problems::report_unknown_keys).
  void reject_unknown() {
    if (!node_.IsMap()) return;
    p_.known_keys(section_kind(), seen_);
    for (const auto& kv : node_) {
      const std::string key = kv.first.Scalar();
      if (seen_.count(key)) continue;
      std::string best;
      std::size_t best_distance = 1000;
      for (const auto& known : seen_) {
        std::size_t d = edit_distance(key, known);
        if (d < best_distance) best_distance = d, best = known;
      }
      std::string hint = (!best.empty() && best_distance <= std::max<std::size_t>(2, key.size() / 3))
                             ? "; did you mean '" + key_path(best) + "'?"
                             : "";
      p_.unknown_key(kv.first, section_kind(), key_path(key), key, hint);
    }
  }

  const YAML::Node& node() const { return node_; }

 private:
  // The path with list indices dropped: "models[2]" -> "models[]".
  std::string section_kind() const {
    std::string out;
    for (std::size_t i = 0; i < path_.size(); ++i) {
      if (path_[i] != '[') {
        out += path_[i];
        continue;
      }
      out += "[]";
      while (i < path_.size() && path_[i] != ']') ++i;
    }
    return out;
  }
  static std::string scalar_text(const YAML::Node& n) { return n.IsScalar() ? n.Scalar() : "(a list or mapping)"; }
  // YAML 1.2 numbers: 5e-5, 1.0e-4, 32, -1, .5 (YAML 1.1 readers mistake 5e-5 for a string; this one does not).
  static bool parse_number(const YAML::Node& n, double& out) {
    if (!n.IsScalar()) return false;
    const std::string& s = n.Scalar();
    if (s.empty()) return false;
    char* end = nullptr;
    out = std::strtod(s.c_str(), &end);
    return end == s.c_str() + s.size() && std::isfinite(out);
  }

  YAML::Node node_;
  std::string path_;
  Problems& p_;
  std::set<std::string> seen_;
};

bool is_valid_name(const std::string& s) {
  if (s.empty() || s.size() > 100) return false;
  for (char c : s) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.')) return false;
  }
  return s != "." && s != "..";
}

const std::map<std::string, std::string>& model_type_aliases() {
  static const std::map<std::string, std::string> aliases = {
      {"qwen_vl", "qwen_vl"},       {"qwen-vl", "qwen_vl"},         {"qwen2_vl", "qwen2_vl"},
      {"qwen2-vl", "qwen2_vl"},     {"qwen2_5_vl", "qwen2_5_vl"},   {"qwen2.5_vl", "qwen2_5_vl"},
      {"qwen2.5-vl", "qwen2_5_vl"}, {"llava", "llava"},             {"llava_next", "llava_next"},
      {"llava-next", "llava_next"}, {"llava_gemma", "llava_gemma"}, {"blip2", "blip2"},
      {"blip-2", "blip2"},          {"causal_lm", "causal_lm"},     {"auto", "causal_lm"},
  };
  return aliases;
}

std::string resolve_data_path(const std::string& path, const std::string& config_dir) {
  if (path.empty() || path[0] == '/' || is_regular_file(path)) return path;
  const std::string beside = join_path(config_dir, path);
  return is_regular_file(beside) ? beside : path;
}

}  // namespace

std::string normalize_model_type(const std::string& model_type) {
  std::string lower;
  for (char c : model_type) lower.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  auto it = model_type_aliases().find(lower);
  return it == model_type_aliases().end() ? "" : it->second;
}

std::vector<std::string> ExperimentConfig::run_names() const {
  std::vector<std::string> out;
  for (const auto& m : models)
    for (const auto& v : lora_variants) out.push_back(m.name + "__" + v.name);
  return out;
}

namespace {

// The first line (1-based) whose indentation holds a tab, or 0. YAML indents with spaces only; yaml-cpp's messages
// for a tab ("illegal map value", ...) do not say so.
std::size_t first_tab_indented_line(const std::string& text) {
  std::size_t line = 1;
  bool at_indent = true;
  for (char ch : text) {
    if (ch == '\n') {
      ++line;
      at_indent = true;
    } else if (at_indent && ch == '\t') {
      return line;
    } else if (ch != ' ') {
      at_indent = false;
    }
  }
  return 0;
}

// What yaml-cpp accepts silently but a config must not have: a key given twice in one mapping (yaml-cpp's lookup
// takes the first) and YAML 1.1 merge keys (yaml-cpp keeps "<<" as a plain key). Aliases are followed, so the walk
// stops at a node budget rather than expanding an alias bomb.
class YamlStructureCheck {
 public:
  explicit YamlStructureCheck(Problems& problems) : p_(problems) {}
  void walk(const YAML::Node& node, const std::string& path, int depth = 0) {
    if (++visited_ > kMaxNodes) {
      if (!over_budget_) p_.add_plain("more than " + std::to_string(kMaxNodes) + " YAML nodes (aliases counted where used); an experiment config is far smaller");
      over_budget_ = true;
      return;
    }
    if (depth > 64) return p_.add(node, path, "is nested more than 64 levels deep");
    if (node.IsSequence()) {
      for (std::size_t i = 0; i < node.size() && !over_budget_; ++i)
        walk(node[i], path + "[" + std::to_string(i) + "]", depth + 1);
    } else if (node.IsMap()) {
      std::map<std::string, int> first_line;
      for (const auto& kv : node) {
        if (over_budget_) return;
        const std::string key = kv.first.IsScalar() ? kv.first.Scalar() : "";
        const std::string child = path.empty() ? key : path + "." + key;
        const int line = kv.first.Mark().line + 1;
        // A plain "<<" is a merge key; a quoted one (tag "!") is an ordinary key, reported as unknown later.
        if (kv.first.IsScalar() && key == "<<" && kv.first.Tag() != "!") {
          p_.add(kv.first, child, "YAML merge keys (<<) are not supported; write the merged keys out in this mapping");
          continue;
        }
        auto [it, inserted] = first_line.emplace(key, line);
        if (!inserted) {
          p_.add(kv.first, child, "is given twice (lines " + std::to_string(it->second) + " and " + std::to_string(line) +
                                      "); keep one of them");
        }
        walk(kv.second, child, depth + 1);
      }
    }
  }

 private:
  static constexpr std::size_t kMaxNodes = 100000;
  Problems& p_;
  std::size_t visited_ = 0;
  bool over_budget_ = false;
};

}  // namespace

ExperimentConfig parse_experiment_config(const std::string& yaml_text, const std::string& label,
                                         const ConfigCheckOptions& options) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    std::string hint;
    if (const std::size_t tab_line = first_tab_indented_line(yaml_text))
      hint = " (line " + std::to_string(tab_line) + " is indented with a tab; YAML indents with spaces only)";
    fail(ErrorCode::corrupt_data, label + ":" + std::to_string(e.mark.line + 1) + ": not valid YAML: " + e.msg + hint);
  }
  Problems problems(label);
  YamlStructureCheck(problems).walk(root, "");
  if (!root.IsMap()) {
    problems.add_plain("the file must be a YAML mapping with experiment_name, output_dir, data, models, lora_variants and training");
    problems.raise(ErrorCode::invalid_argument);
  }
  ExperimentConfig c;
  c.source_path = label;
  Section top(root, "", problems);
  top.string("experiment_name", c.experiment_name, true);
  top.string("output_dir", c.output_dir, true);

  // data
  YAML::Node data_node = top.get("data");
  if (!data_node.IsDefined() || data_node.IsNull()) {
    problems.add(root, "data", "is required (train_csv, val_csv, column names)");
  } else if (!data_node.IsMap()) {
    problems.add(data_node, "data", "must be a mapping");
  } else {
    Section data(data_node, "data", problems);
    DataConfig& d = c.data;
    data.string("train_csv", d.train_csv, true);
    data.string("val_csv", d.val_csv);
    data.string("test_csv", d.test_csv);
    data.string("image_column", d.image_column);
    data.string("instruction_column", d.instruction_column);
    data.string("response_column", d.response_column);
    data.string("query_column", d.query_column);
    data.string("annotation_column", d.annotation_column);
    data.number("num_workers", d.num_workers, [](double v) { return v >= 0 && v <= 256; }, "between 0 and 256");
    data.number_optional("max_train_samples", d.max_train_samples, [](double v) { return v >= 1; }, "at least 1");
    data.number_optional("max_eval_samples", d.max_eval_samples, [](double v) { return v >= 1; }, "at least 1");
    data.reject_unknown();
  }

  // models
  YAML::Node models = top.get("models");
  std::set<std::string> model_names;
  if (!models.IsDefined() || !models.IsSequence() || models.size() == 0) {
    problems.add(models.IsDefined() ? models : root, "models", "must be a non-empty list of models");
  } else {
    for (std::size_t i = 0; i < models.size(); ++i) {
      const std::string path = "models[" + std::to_string(i) + "]";
      if (!models[i].IsMap()) {
        problems.add(models[i], path, "must be a mapping with name, hf_model_id and model_type");
        continue;
      }
      Section m(models[i], path, problems);
      ModelEntry e;
      e.line = models[i].Mark().line + 1;
      m.string("name", e.name, true);
      m.string("hf_model_id", e.hf_model_id, true);
      m.string("model_type", e.model_type_as_written);
      if (m.present("model_type")) {
        e.model_type = normalize_model_type(e.model_type_as_written);
        if (e.model_type.empty()) {
          problems.add(m.get("model_type"), path + ".model_type",
                       "\"" + e.model_type_as_written +
                           "\" is not supported; expected one of: llava, llava_next, llava_gemma, qwen_vl, qwen2_vl, "
                           "qwen2_5_vl, blip2 (blip-2), causal_lm");
        }
      } else {
        e.model_type = "auto-detect";  // read from the checkpoint's config.json when the model is loaded
      }
      m.choice("torch_dtype", e.torch_dtype, {"auto", "float32", "float16", "bfloat16"});
      m.string("device", e.device);
      if (e.device != "auto" && e.device != "cpu" && e.device.rfind("cuda", 0) != 0) {
        problems.add(m.get("device"), path + ".device", "must be auto, cpu, cuda or cuda:N");
      }
      m.number_optional("min_pixels", e.min_pixels, [](double v) { return v >= 1; }, "positive");
      m.number_optional("max_pixels", e.max_pixels, [](double v) { return v >= 1; }, "positive");
      if (e.min_pixels && e.max_pixels && *e.min_pixels > *e.max_pixels) {
        problems.add(m.get("min_pixels"), path + ".min_pixels", "must not exceed max_pixels");
      }
      m.boolean("freeze_vision_tower", e.freeze_vision_tower);
      m.boolean("freeze_projector", e.freeze_projector);
      m.boolean("freeze_language_model", e.freeze_language_model);
      m.reject_unknown();
      if (!e.name.empty() && !is_valid_name(e.name)) {
        problems.add(m.get("name"), path + ".name", "\"" + e.name + "\" may contain only letters, digits, '_', '-' and '.'");
      }
      if (!e.name.empty() && !model_names.insert(e.name).second) {
        problems.add(m.get("name"), path + ".name", "\"" + e.name + "\" is used by another model; run names must be unique");
      }
      c.models.push_back(e);
    }
  }

  // lora_variants
  YAML::Node variants = top.get("lora_variants");
  std::set<std::string> variant_names;
  if (!variants.IsDefined() || !variants.IsSequence() || variants.size() == 0) {
    problems.add(variants.IsDefined() ? variants : root, "lora_variants", "must be a non-empty list of LoRA settings");
  } else {
    for (std::size_t i = 0; i < variants.size(); ++i) {
      const std::string path = "lora_variants[" + std::to_string(i) + "]";
      if (!variants[i].IsMap()) {
        problems.add(variants[i], path, "must be a mapping with name, r, alpha, dropout, target_modules");
        continue;
      }
      Section v(variants[i], path, problems);
      LoraVariant l;
      l.line = variants[i].Mark().line + 1;
      v.string("name", l.name, true);
      v.number("r", l.r, [](double x) { return x >= 1 && x <= 65536; }, "a positive integer");
      v.number("alpha", l.alpha, [](double x) { return x > 0; }, "positive");
      v.number("dropout", l.dropout, [](double x) { return x >= 0 && x < 1; }, "in [0, 1)");
      YAML::Node targets = v.get("target_modules");
      if (targets.IsDefined() && !targets.IsNull()) {
        if (targets.IsScalar()) {
          l.target_modules = std::vector<std::string>{targets.Scalar()};
          l.target_modules_is_regex = targets.Scalar() != "all-linear";
        } else {
          std::vector<std::string> list;
          v.string_list("target_modules", list);
          if (list.empty()) problems.add(targets, path + ".target_modules", "must not be an empty list (use null for the default)");
          l.target_modules = list;
        }
      }
      v.string_list("exclude_modules", l.exclude_modules);
      v.boolean("use_rslora", l.use_rslora);
      v.boolean("use_dora", l.use_dora);
      YAML::Node init = v.get("init_lora_weights");
      if (init.IsDefined() && !init.IsNull()) {
        const std::string s = init.IsScalar() ? init.Scalar() : "";
        if (s == "true" || s == "True") {
          l.init_lora_weights = "kaiming";
        } else if (s == "gaussian") {
          l.init_lora_weights = "gaussian";
        } else {
          problems.add(init, path + ".init_lora_weights", "must be true (Kaiming-uniform A, zero B) or \"gaussian\"");
        }
      }
      v.choice("bias", l.bias, {"none", "all", "lora_only"});
      v.string_list("modules_to_save", l.modules_to_save);
      YAML::Node layers = v.get("layers_to_transform");
      if (layers.IsDefined() && !layers.IsNull()) {
        YAML::Node list = layers;
        if (layers.IsScalar()) {
          list = YAML::Node(YAML::NodeType::Sequence);
          list.push_back(layers);
        }
        if (!list.IsSequence()) problems.add(layers, path + ".layers_to_transform", "must be an integer or a list of integers");
        for (const auto& item : list) {
          char* end = nullptr;
          const std::string s = item.IsScalar() ? item.Scalar() : "";
          long value = std::strtol(s.c_str(), &end, 10);
          if (s.empty() || *end != '\0' || value < 0) {
            problems.add(item, path + ".layers_to_transform", "must contain non-negative integers, found \"" + s + "\"");
          } else {
            l.layers_to_transform.push_back(static_cast<int>(value));
          }
        }
      }
      v.reject_unknown();
      if (!l.name.empty() && !is_valid_name(l.name)) {
        problems.add(v.get("name"), path + ".name", "\"" + l.name + "\" may contain only letters, digits, '_', '-' and '.'");
      }
      if (!l.name.empty() && !variant_names.insert(l.name).second) {
        problems.add(v.get("name"), path + ".name", "\"" + l.name + "\" is used by another variant; run names must be unique");
      }
      c.lora_variants.push_back(l);
    }
  }

  // training
  YAML::Node training_node = top.get("training");
  if (training_node.IsDefined() && !training_node.IsNull() && !training_node.IsMap()) {
    problems.add(training_node, "training", "must be a mapping");
  } else if (training_node.IsDefined() && !training_node.IsNull()) {
    Section t(training_node, "training", problems);
    TrainingConfig& tc = c.training;
    auto positive = [](double v) { return v > 0; };
    auto at_least_one = [](double v) { return v >= 1; };
    auto non_negative = [](double v) { return v >= 0; };
    t.number("num_train_epochs", tc.num_train_epochs, positive, "positive");
    t.number("max_steps", tc.max_steps, [](double v) { return v == -1 || v >= 1; }, "-1 (use epochs) or at least 1");
    t.number("per_device_train_batch_size", tc.per_device_train_batch_size, at_least_one, "at least 1");
    t.number("per_device_eval_batch_size", tc.per_device_eval_batch_size, at_least_one, "at least 1");
    t.number("gradient_accumulation_steps", tc.gradient_accumulation_steps, at_least_one, "at least 1");
    t.number("learning_rate", tc.learning_rate, positive, "positive");
    t.number("weight_decay", tc.weight_decay, non_negative, "non-negative");
    t.number("adam_beta1", tc.adam_beta1, [](double v) { return v >= 0 && v < 1; }, "in [0, 1)");
    t.number("adam_beta2", tc.adam_beta2, [](double v) { return v >= 0 && v < 1; }, "in [0, 1)");
    t.number("adam_epsilon", tc.adam_epsilon, positive, "positive");
    t.number("warmup_ratio", tc.warmup_ratio, [](double v) { return v >= 0 && v <= 1; }, "in [0, 1]");
    t.number("warmup_steps", tc.warmup_steps, non_negative, "non-negative");
    t.choice("lr_scheduler_type", tc.lr_scheduler_type, {"linear", "cosine", "constant", "constant_with_warmup"});
    t.number("logging_steps", tc.logging_steps, at_least_one, "at least 1");
    t.choice("eval_strategy", tc.eval_strategy, {"no"});
    t.choice("save_strategy", tc.save_strategy, {"no", "epoch", "steps"});
    t.number("save_steps", tc.save_steps, at_least_one, "at least 1");
    t.number_optional("save_total_limit", tc.save_total_limit, at_least_one, "at least 1");
    t.choice("mixed_precision", tc.mixed_precision, {"no", "fp16", "bf16"});
    t.boolean("gradient_checkpointing", tc.gradient_checkpointing);
    t.number("max_grad_norm", tc.max_grad_norm, non_negative, "non-negative (0 disables clipping)");
    t.number("seed", tc.seed, non_negative, "a non-negative integer");
    t.number_optional("max_seq_length", tc.max_seq_length, at_least_one, "at least 1");
    t.boolean("loss_on_response_only", tc.loss_on_response_only);
    t.choice("on_nonfinite", tc.on_nonfinite, {"stop", "skip"});
    t.boolean("cache_image_features", tc.cache_image_features);
    t.number("image_feature_cache_mb", tc.image_feature_cache_mb, non_negative, "a non-negative number of MiB");
    t.boolean("store_image_features", tc.store_image_features);
    t.string("image_feature_store_dir", tc.image_feature_store_dir);
    t.number("image_feature_store_mb", tc.image_feature_store_mb, non_negative, "a non-negative number of MiB");
    t.string("resume_from_checkpoint", tc.resume_from_checkpoint);
    t.number("generation_max_new_tokens", tc.generation_max_new_tokens, at_least_one, "at least 1");
    t.number("generation_min_new_tokens", tc.generation_min_new_tokens, non_negative, "non-negative");
    t.number("generation_num_beams", tc.generation_num_beams, at_least_one, "at least 1");
    t.boolean("generation_do_sample", tc.generation_do_sample);
    t.number_optional("generation_temperature", tc.generation_temperature, positive, "positive");
    t.number_optional("generation_top_p", tc.generation_top_p, [](double v) { return v > 0 && v <= 1; }, "in (0, 1]");
    t.number_optional("generation_top_k", tc.generation_top_k, non_negative, "non-negative");
    t.number_optional("generation_repetition_penalty", tc.generation_repetition_penalty, positive, "positive");
    t.reject_unknown();
    if (tc.generation_min_new_tokens > tc.generation_max_new_tokens) {
      problems.add(t.get("generation_min_new_tokens"), "training.generation_min_new_tokens", "must not exceed generation_max_new_tokens");
    }
  }

  // evaluation
  YAML::Node evaluation_node = top.get("evaluation");
  if (evaluation_node.IsDefined() && !evaluation_node.IsNull()) {
    if (!evaluation_node.IsMap()) {
      problems.add(evaluation_node, "evaluation", "must be a mapping (e.g. enabled: false)");
    } else {
      Section e(evaluation_node, "evaluation", problems);
      e.boolean("enabled", c.evaluation.enabled);
      e.boolean("baseline", c.evaluation.baseline);
      e.reject_unknown();
      // The baseline runs are named "<model>__baseline".
      if (c.evaluation.baseline && c.evaluation.enabled && variant_names.count("baseline")) {
        problems.add(e.get("baseline"), "evaluation.baseline",
                     "needs the run names <model>__baseline, but a LoRA variant is named \"baseline\"; rename it");
      }
    }
  }
  top.reject_unknown();
  problems.report_unknown_keys();

  if (c.evaluation.enabled && c.data.val_csv.empty() && data_node.IsMap()) {
    problems.add(data_node, "data.val_csv", "is required while evaluation.enabled is true (or set evaluation.enabled: false)");
  }
  if (options.check_files && data_node.IsMap()) {
    const std::string dir = label.find('/') == std::string::npos ? "." : label.substr(0, label.find_last_of('/'));
    auto check = [&](const char* key, std::string& path) {
      if (path.empty()) return;
      const std::string resolved = resolve_data_path(path, dir);
      if (!is_regular_file(resolved)) {
        problems.add(data_node[key], std::string("data.") + key,
                     "file \"" + path + "\" not found (looked in the current directory and in " + dir + ")");
      } else {
        path = resolved;
      }
    };
    check("train_csv", c.data.train_csv);
    if (c.evaluation.enabled) check("val_csv", c.data.val_csv);
    check("test_csv", c.data.test_csv);
  }
  if (!problems.empty()) problems.raise(ErrorCode::invalid_argument);
  return c;
}

ExperimentConfig load_experiment_config(const std::string& path, const ConfigCheckOptions& options) {
  return parse_experiment_config(read_file(path), path, options);
}

}  // namespace vlm
