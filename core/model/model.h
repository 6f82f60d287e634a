// The family-agnostic interface every model implements (Qwen2-VL, Qwen2.5-VL, LLaVA, BLIP-2, plain causal
// LMs). The generation engine, scoring, and training talk to models only through this header.
#pragma once

#include <torch/nn/module.h>
#include <torch/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace vlm {

// Image inputs as the family's processor produced them. Each family reads the fields it uses:
//  - Qwen2-VL / Qwen2.5-VL: pixel_values [num_patches, C*T*P*P] float, image_grid_thw [num_images, 3] int64
//  - LLaVA / BLIP-2: pixel_values [num_images, 3, H, W]
//  - LLaVA-NeXT: pixel_values [num_images, num_crops, 3, H, W], image_sizes [num_images, 2]
struct VisionInputs {
  torch::Tensor pixel_values;
  torch::Tensor image_grid_thw;
  torch::Tensor image_sizes;
  // Optional: what encode_images() returns for these images, computed earlier. The model then skips its vision
  // tower and projector (the trainer caches them across epochs when both are frozen). pixel_values and the grids
  // stay set: the model still reads the image layout from them.
  torch::Tensor features;
  bool empty() const { return !pixel_values.defined(); }
};

struct ForwardInputs {
  torch::Tensor input_ids;       // [B, L] int64: the new tokens of this step (the whole prompt at prefill)
  torch::Tensor attention_mask;  // [B, past + L] int64, 1 = real token, 0 = padding; undefined = no padding
  VisionInputs vision;           // only at prefill
  // Which positions to return logits for: all (scoring, training) or only the last (generation).
  bool all_logits = true;
  // When defined, overrides all_logits: int64 [N] indices into the flattened [B * L] positions, and the logits are
  // [1, N, V] for just those positions. Training asks only for the positions that predict a label, so the LM head
  // and the loss cover the response instead of the whole sequence.
  torch::Tensor logit_positions;
};

// hidden [B, L, D] -> the rows whose logits `inputs` asks for: [1, N, D], [B, 1, D] or all of hidden.
inline torch::Tensor rows_for_logits(const torch::Tensor& hidden, const ForwardInputs& inputs) {
  if (inputs.logit_positions.defined()) {
    return hidden.reshape({-1, hidden.size(-1)})
        .index_select(0, inputs.logit_positions.to(hidden.device(), torch::kLong))
        .unsqueeze(0);
  }
  return inputs.all_logits ? hidden : hidden.narrow(1, hidden.size(1) - 1, 1);
}

// What a model remembers between steps of one batch: the KV cache and family-specific state (e.g. Qwen's
// M-RoPE position deltas). Created by VisionLanguageModel::new_state.
class InferenceState {
 public:
  virtual ~InferenceState() = default;
  // Tokens already processed (the same for every row; padding included).
  virtual std::int64_t length() const = 0;
  // Keeps/reorders rows of the batch: row i of the new state is row indices[i] of the old (beam search).
  virtual void reorder(const torch::Tensor& indices) = 0;
};

struct ModelInfo {
  std::string family;                   // "qwen2_vl", "qwen2_5_vl", "llava", "qwen2", "llama", ...
  std::int64_t vocab_size = 0;
  std::int64_t num_layers = 0;
  std::int64_t image_token_id = -1;     // -1 for text-only models
  // Image tokens one image expands to when the model fixes it (LLaVA: (image_size / patch)^2, +1 with the "full"
  // strategy); 0 when the image processor decides per image (Qwen2-VL).
  std::int64_t tokens_per_image = 0;
  std::vector<std::int64_t> eos_token_ids;
  std::int64_t pad_token_id = -1;
  std::int64_t bos_token_id = -1;
  // Module-path prefixes of the parts users freeze or target separately (empty when the family has none), e.g.
  // Qwen2-VL: "model.language_model.", "model.visual.", "model.visual.merger."; the projector prefix may lie
  // inside the vision prefix and wins for its paths. The LM head ("lm_head") belongs to the language model.
  std::string language_model_prefix;
  std::string vision_tower_prefix;
  std::string projector_prefix;
};

class VisionLanguageModel {
 public:
  virtual ~VisionLanguageModel() = default;
  virtual const ModelInfo& info() const = 0;
  virtual std::unique_ptr<InferenceState> new_state(std::int64_t batch_size) = 0;
  // Runs the model: a prefill when `state` is empty, a decode step otherwise; appends to `state`.
  // Returns logits [B, L, V] (or [B, 1, V] when !all_logits) in float32. `state` may be null (no cache).
  virtual torch::Tensor forward(const ForwardInputs& inputs, InferenceState* state) = 0;
  virtual torch::Device device() const = 0;
  virtual torch::ScalarType dtype() const = 0;
  // The image features the language model receives for `vision` ([image tokens, hidden]: the vision tower and the
  // projector, what replaces the image placeholder embeddings). Text-only models throw.
  virtual torch::Tensor encode_images(const VisionInputs& vision) = 0;

  // Training hooks. The module tree whose named_parameters() are the checkpoint keys and whose Projections carry
  // their module paths (see layers.h): the LoRA engine attaches adapters and enumerates parameters through it.
  // forward() records autograd history when grad mode is on (the generation engine turns it off).
  virtual torch::nn::Module& module() = 0;
  // Recomputes each decoder layer in the backward pass instead of keeping its activations (same gradients).
  virtual void set_gradient_checkpointing(bool enabled) = 0;
  // The current module path for a path in an older checkpoint layout of the family (adapters saved against
  // older transformers releases); identity by default.
  virtual std::string canonical_module_path(const std::string& path) const { return path; }
};

}  // namespace vlm
