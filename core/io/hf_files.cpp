#include "io/hf_files.h"

#include "base/error.h"

namespace vlm {
namespace {

std::map<std::string, std::int64_t> int_map(const ConfigObject& cfg, const std::string& key) {
  std::map<std::string, std::int64_t> out;
  if (!cfg.has(key)) return out;
  if (cfg.raw().at(key).is_number_integer()) {
    // Old processors write a plain integer size (a square).
    const auto v = cfg.get<std::int64_t>(key);
    out["height"] = v;
    out["width"] = v;
    return out;
  }
  auto child = cfg.child_optional(key);
  for (auto it = child->raw().begin(); it != child->raw().end(); ++it) {
    if (it->is_null()) continue;
    out[it.key()] = child->get<std::int64_t>(it.key());
  }
  return out;
}

// A special token is written either as "<s>" or as {"content": "<s>", "lstrip": false, ...}.
std::optional<std::string> special_token(const ConfigObject& cfg, const std::string& key) {
  if (!cfg.has(key)) return std::nullopt;
  const auto& v = cfg.raw().at(key);
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object()) return cfg.child(key).get<std::string>("content");
  fail(ErrorCode::invalid_argument, cfg.describe(key) + " must be a string or an object with \"content\"");
}

}  // namespace

ModelConfig ModelConfig::load(const std::string& path) {
  ModelConfig c;
  c.raw = ConfigObject::load(path);
  c.model_type = c.raw.get_or<std::string>("model_type", "");
  c.architectures = c.raw.get_or<std::vector<std::string>>("architectures", {});
  c.torch_dtype = c.raw.get_or<std::string>("dtype", c.raw.get_or<std::string>("torch_dtype", ""));
  c.tie_word_embeddings = c.raw.get_or<bool>("tie_word_embeddings", true);
  return c;
}

GenerationDefaults GenerationDefaults::load(const std::string& path) {
  GenerationDefaults g;
  g.raw = ConfigObject::load(path);
  const ConfigObject& r = g.raw;
  g.max_new_tokens = r.get_optional<int>("max_new_tokens");
  g.max_length = r.get_optional<int>("max_length");
  g.min_new_tokens = r.get_optional<int>("min_new_tokens");
  g.min_length = r.get_optional<int>("min_length");
  g.num_beams = r.get_optional<int>("num_beams");
  g.top_k = r.get_optional<int>("top_k");
  g.no_repeat_ngram_size = r.get_optional<int>("no_repeat_ngram_size");
  g.temperature = r.get_optional<double>("temperature");
  g.top_p = r.get_optional<double>("top_p");
  g.repetition_penalty = r.get_optional<double>("repetition_penalty");
  g.length_penalty = r.get_optional<double>("length_penalty");
  g.do_sample = r.get_optional<bool>("do_sample");
  if (r.has("early_stopping")) {
    const auto& v = r.raw().at("early_stopping");
    if (v.is_boolean()) {
      g.early_stopping = v.get<bool>() ? "true" : "false";
    } else if (v.is_string() && v.get<std::string>() == "never") {
      g.early_stopping = "never";
    } else {
      fail(ErrorCode::invalid_argument, r.describe("early_stopping") + " must be true, false or \"never\"");
    }
  }
  g.eos_token_ids = r.get_or<std::vector<std::int64_t>>("eos_token_id", {});
  g.pad_token_id = r.get_optional<std::int64_t>("pad_token_id");
  g.bos_token_id = r.get_optional<std::int64_t>("bos_token_id");
  g.decoder_start_token_id = r.get_optional<std::int64_t>("decoder_start_token_id");
  return g;
}

PreprocessorConfig PreprocessorConfig::load(const std::string& path) {
  PreprocessorConfig p;
  p.raw = ConfigObject::load(path);
  const ConfigObject& r = p.raw;
  p.image_processor_type = r.get_or<std::string>("image_processor_type", "");
  p.do_resize = r.get_or<bool>("do_resize", true);
  p.do_rescale = r.get_or<bool>("do_rescale", true);
  p.do_normalize = r.get_or<bool>("do_normalize", true);
  p.do_convert_rgb = r.get_or<bool>("do_convert_rgb", true);
  p.do_center_crop = r.get_or<bool>("do_center_crop", false);
  p.rescale_factor = r.get_or<double>("rescale_factor", 1.0 / 255.0);
  p.image_mean = r.get_or<std::vector<double>>("image_mean", {});
  p.image_std = r.get_or<std::vector<double>>("image_std", {});
  if (!p.image_mean.empty() && p.image_mean.size() != 3) {
    fail(ErrorCode::invalid_argument, r.describe("image_mean") + " must have 3 values (R, G, B)");
  }
  if (!p.image_std.empty() && p.image_std.size() != 3) {
    fail(ErrorCode::invalid_argument, r.describe("image_std") + " must have 3 values (R, G, B)");
  }
  for (double s : p.image_std) {
    if (s == 0.0) fail(ErrorCode::invalid_argument, r.describe("image_std") + " must not contain 0");
  }
  p.resample = r.get_or<int>("resample", 3);
  p.size = int_map(r, "size");
  p.crop_size = int_map(r, "crop_size");
  p.min_pixels = r.get_optional<std::int64_t>("min_pixels");
  p.max_pixels = r.get_optional<std::int64_t>("max_pixels");
  p.patch_size = r.get_optional<int>("patch_size");
  p.temporal_patch_size = r.get_optional<int>("temporal_patch_size");
  p.merge_size = r.get_optional<int>("merge_size");
  return p;
}

TokenizerConfig TokenizerConfig::load(const std::string& path) {
  TokenizerConfig t;
  t.raw = ConfigObject::load(path);
  const ConfigObject& r = t.raw;
  t.add_bos_token = r.get_optional<bool>("add_bos_token");
  t.add_eos_token = r.get_optional<bool>("add_eos_token");
  t.bos_token = special_token(r, "bos_token");
  t.eos_token = special_token(r, "eos_token");
  t.unk_token = special_token(r, "unk_token");
  t.pad_token = special_token(r, "pad_token");
  t.clean_up_tokenization_spaces = r.get_optional<bool>("clean_up_tokenization_spaces");
  t.padding_side = r.get_optional<std::string>("padding_side");
  t.tokenizer_class = r.get_optional<std::string>("tokenizer_class");
  t.model_max_length = r.get_optional<double>("model_max_length");
  if (r.has("chat_template")) {
    const auto& v = r.raw().at("chat_template");
    if (v.is_string()) {
      t.chat_templates["default"] = v.get<std::string>();
    } else if (v.is_array()) {
      for (const auto& item : v) {
        if (!item.is_object() || !item.contains("name") || !item.contains("template") || !item["name"].is_string() ||
            !item["template"].is_string()) {
          fail(ErrorCode::invalid_argument, r.describe("chat_template") +
                                                " must be a string or a list of {\"name\": ..., \"template\": ...}");
        }
        t.chat_templates[item["name"].get<std::string>()] = item["template"].get<std::string>();
      }
    } else {
      fail(ErrorCode::invalid_argument, r.describe("chat_template") + " must be a string or a list of named templates");
    }
  }
  return t;
}

}  // namespace vlm
