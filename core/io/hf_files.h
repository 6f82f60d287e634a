// Typed readers for the JSON files a Hugging Face checkpoint folder carries. Each struct holds the fields the
// runtime uses, with Hugging Face's defaults, plus the parsed file (`raw`) for family-specific keys that model
// code reads through its own config struct.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/json_config.h"

namespace vlm {

// config.json: the architecture-independent part. Families parse their own fields from `raw` (and from
// raw.child("text_config") / raw.child("vision_config")).
struct ModelConfig {
  std::string model_type;                  // "qwen2_vl", "llava", ...
  std::vector<std::string> architectures;  // "Qwen2VLForConditionalGeneration", ...
  std::string torch_dtype;                 // "bfloat16"...; transformers 5 writes "dtype", older "torch_dtype"
  bool tie_word_embeddings = true;         // PretrainedConfig's default
  ConfigObject raw;

  static ModelConfig load(const std::string& path);
};

// generation_config.json. Unset fields stay empty; the generation engine applies transformers' defaults.
struct GenerationDefaults {
  std::optional<int> max_new_tokens, max_length, min_new_tokens, min_length, num_beams, top_k, no_repeat_ngram_size;
  std::optional<double> temperature, top_p, repetition_penalty, length_penalty;
  std::optional<bool> do_sample;
  // early_stopping is true, false or the string "never".
  std::optional<std::string> early_stopping;
  std::vector<std::int64_t> eos_token_ids;
  std::optional<std::int64_t> pad_token_id, bos_token_id, decoder_start_token_id;
  ConfigObject raw;

  static GenerationDefaults load(const std::string& path);
};

// preprocessor_config.json (image processors).
struct PreprocessorConfig {
  std::string image_processor_type;  // "Qwen2VLImageProcessor", "CLIPImageProcessor", ...
  bool do_resize = true, do_rescale = true, do_normalize = true, do_convert_rgb = true, do_center_crop = false;
  double rescale_factor = 1.0 / 255.0;
  std::vector<double> image_mean, image_std;
  int resample = 3;                     // PIL.Image.BICUBIC
  std::map<std::string, std::int64_t> size, crop_size;  // {"shortest_edge": 336} / {"height":..,"width":..}
  std::optional<std::int64_t> min_pixels, max_pixels;   // Qwen2-VL
  std::optional<int> patch_size, temporal_patch_size, merge_size;
  ConfigObject raw;

  static PreprocessorConfig load(const std::string& path);
};

// tokenizer_config.json. Special tokens may be written as strings or as {"content": ...} objects.
struct TokenizerConfig {
  std::optional<bool> add_bos_token, add_eos_token;
  std::optional<std::string> bos_token, eos_token, unk_token, pad_token;
  std::optional<bool> clean_up_tokenization_spaces;
  std::optional<std::string> padding_side, tokenizer_class;
  std::optional<double> model_max_length;  // often 1e30 ("unlimited"), so a double
  // chat_template: a single string, or named templates ("default", "tool_use", ...).
  std::map<std::string, std::string> chat_templates;
  ConfigObject raw;

  static TokenizerConfig load(const std::string& path);
};

}  // namespace vlm
