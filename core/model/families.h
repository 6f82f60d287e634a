// Factories of the model families, used by the registry table (model/registry.cpp). Internal to core/model.
#pragma once

#include <memory>

#include "base/error.h"
#include "model/layers.h"
#include "model/registry.h"

namespace vlm {

// model_type qwen2_vl and qwen2_5_vl.
std::unique_ptr<VisionLanguageModel> create_qwen2_vl(const ModelConfig& config, const Checkpoint& checkpoint,
                                                     const LoadOptions& options);
// Text-only decoders: model_type qwen2 and llama.
std::unique_ptr<VisionLanguageModel> create_causal_lm(const ModelConfig& config, const Checkpoint& checkpoint,
                                                      const LoadOptions& options);
// model_type llava (LLaVA-1.5: CLIP vision tower, projector, Llama language model).
std::unique_ptr<VisionLanguageModel> create_llava(const ModelConfig& config, const Checkpoint& checkpoint,
                                                  const LoadOptions& options);

// The language-model settings of a Llama / Qwen2 config object: the top level of a causal LM's config.json or the
// text_config of a multimodal one. `model_type` "qwen2" turns on Qwen2's biases; other types read Llama's keys.
// With `class_defaults`, missing keys take LlamaConfig's defaults (LLaVA's text_config lists only what differs);
// otherwise the size keys are required.
struct TextModelConfig {
  DecoderConfig decoder;
  double rope_theta = 10000.0;
  RopeScaling scaling;
  std::vector<std::int64_t> eos_token_ids;
  std::int64_t bos_token_id = -1, pad_token_id = -1;
};
TextModelConfig parse_text_model_config(const ConfigObject& raw, const std::string& model_type, bool class_defaults);

// The family's own state behind the InferenceState its new_state() made (null stays null); a state made by
// another model is an error.
template <class State>
State* state_cast(InferenceState* state) {
  if (state == nullptr) return nullptr;
  auto* own = dynamic_cast<State*>(state);
  if (own == nullptr) fail(ErrorCode::invalid_argument, "forward: the state was not created by this model's new_state()");
  return own;
}

// Shared config helpers.
std::vector<std::int64_t> read_token_ids(const ConfigObject& object, const std::string& key);
void check_dtype_supported(const LoadOptions& options);

}  // namespace vlm
