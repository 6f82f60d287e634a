// Qwen2-VL and Qwen2.5-VL: the typed config (both config.json layouts) and the M-RoPE position computation that
// transformers 5.23.0's get_rope_index performs. The model itself lives in qwen2_vl.cpp behind
// VisionLanguageModel (created through model/registry.h).
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "io/hf_files.h"
#include "model/layers.h"

namespace vlm {

struct QwenVisionConfig {
  bool window_attention = false;  // Qwen2.5-VL: RMSNorm + SwiGLU blocks, window attention
  std::int64_t depth = 32, embed_dim = 1280, num_heads = 16, out_hidden_size = 3584;
  std::int64_t mlp_hidden = 5120;  // Qwen2-VL: embed_dim * mlp_ratio; Qwen2.5-VL: intermediate_size
  std::string hidden_act = "quick_gelu";
  std::int64_t in_channels = 3, patch_size = 14, temporal_patch_size = 2, spatial_merge_size = 2;
  std::int64_t window_size = 112;
  std::vector<std::int64_t> fullatt_block_indexes;
  double rope_theta = 10000.0;
};

struct QwenVLConfig {
  std::string model_type;  // qwen2_vl | qwen2_5_vl
  DecoderConfig text;
  double rope_theta = 1e6;
  std::vector<std::int64_t> mrope_section{16, 24, 24};
  QwenVisionConfig vision;
  std::int64_t image_token_id = 151655, video_token_id = 151656, vision_start_token_id = 151652;
  bool tie_word_embeddings = false;
  std::vector<std::int64_t> eos_token_ids;
  std::int64_t bos_token_id = -1, pad_token_id = -1;

  // Reads the Hub layout (LM keys at the top level, rope_scaling {type: mrope}) and the transformers 5 layout
  // (text_config / vision_config, rope_parameters).
  static QwenVLConfig parse(const ModelConfig& config);
};

struct RopeIndex {
  torch::Tensor position_ids;  // [3, B, L] int64; padding positions 0
  torch::Tensor rope_deltas;   // [B, 1] int64: max position + 1 - number of real tokens
};

// M-RoPE positions of a prefill, per row on its non-padded tokens, as transformers 5.23.0 get_rope_index with
// mm_token_type_ids = (input_ids == image_token_id): text runs count up on all three axes; an image run of
// grid (t, h, w) gets (t, h/merge, w/merge) coordinates offset by the running position, which then advances by
// max(h, w)/merge. Throws vlm::Error when image runs and image_grid_thw rows disagree.
RopeIndex qwen_rope_index(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                          const torch::Tensor& image_grid_thw, std::int64_t image_token_id,
                          std::int64_t spatial_merge_size);

// Qwen2.5-VL window attention order: the permutation of merged patch units (window-major) and the cumulative
// window lengths in patches, as transformers' get_vision_window_index.
struct WindowIndex {
  torch::Tensor window_index;       // [num_patches / merge^2] int64
  torch::Tensor cu_window_seqlens;  // [num_windows + 1] int64, zero-length windows removed
};
WindowIndex qwen_window_index(const torch::Tensor& grid_thw, std::int64_t spatial_merge_size,
                              std::int64_t window_size, std::int64_t patch_size);

}  // namespace vlm
