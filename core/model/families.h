// Factories of the model families, used by the registry table (model/registry.cpp). Internal to core/model.
#pragma once

#include <memory>

#include "model/registry.h"

namespace vlm {

// model_type qwen2_vl and qwen2_5_vl.
std::unique_ptr<VisionLanguageModel> create_qwen2_vl(const ModelConfig& config, const Checkpoint& checkpoint,
                                                     const LoadOptions& options);
// Text-only decoders: model_type qwen2 and llama.
std::unique_ptr<VisionLanguageModel> create_causal_lm(const ModelConfig& config, const Checkpoint& checkpoint,
                                                      const LoadOptions& options);

// Shared config helpers.
std::vector<std::int64_t> read_token_ids(const ConfigObject& object, const std::string& key);
void check_dtype_supported(const LoadOptions& options);

}  // namespace vlm
