// LLaVA-1.5 (model_type "llava"): the typed config. The model (CLIP vision tower, two-layer projector, Llama
// language model) lives in llava.cpp behind VisionLanguageModel, created through model/registry.h.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "io/hf_files.h"
#include "model/families.h"

namespace vlm {

// CLIPVisionConfig (transformers' class defaults where config.json leaves keys out).
struct ClipVisionConfig {
  std::int64_t hidden_size = 768, intermediate_size = 3072, num_layers = 12, num_heads = 12;
  std::int64_t num_channels = 3, image_size = 224, patch_size = 32;
  std::string hidden_act = "quick_gelu";
  double layer_norm_eps = 1e-5;
  std::int64_t patches_per_side() const { return image_size / patch_size; }
};

struct LlavaConfig {
  std::string text_model_type = "llama";
  TextModelConfig text;
  ClipVisionConfig vision;
  std::int64_t image_token_id = 32000;
  // Hidden states of the vision tower that feed the projector, as indices into CLIP's hidden_states tuple
  // (0 = embeddings after pre_layrnorm, i = output of layer i; negative counts from the end). Several layers are
  // concatenated along the hidden dimension.
  std::vector<std::int64_t> vision_feature_layers{-2};
  bool feature_layer_is_list = false;
  std::string select_strategy = "default";  // "default" drops the CLS position, "full" keeps it
  std::string projector_act = "gelu";
  bool projector_bias = true;
  bool tie_word_embeddings = false;

  // Image tokens per image: (image_size / patch_size)^2, plus the CLS position with the "full" strategy.
  std::int64_t tokens_per_image() const;
  // The vision_feature_layers as non-negative hidden-state indices (0..num_layers).
  std::vector<std::int64_t> resolved_feature_layers() const;

  // Reads the llava-hf Hub layout (image_token_index, partial text_config / vision_config) and transformers 5's
  // (image_token_id, full sub-configs). Unsupported settings are errors naming the key.
  static LlavaConfig parse(const ModelConfig& config);
};

// Checkpoint key or module path of any LLaVA layout -> the transformers 5.23 module path: "language_model.model.X"
// -> "model.language_model.X", "language_model.lm_head.X" -> "lm_head.X", "vision_tower.X" /
// "multi_modal_projector.X" -> "model.<...>", and CLIPVisionModel's "vision_model." level dropped.
std::string llava_module_key(const std::string& key);

}  // namespace vlm
