#include "train/image_features.h"

#include <torch/torch.h>

#include <chrono>

namespace vlm {

namespace {
bool starts_with(const std::string& s, const std::string& prefix) {
  return !prefix.empty() && s.compare(0, prefix.size(), prefix) == 0;
}
}  // namespace

std::string image_features_frozen_reason(VisionLanguageModel& model, const LoraModel& lora) {
  const auto& info = model.info();
  if (info.vision_tower_prefix.empty()) return "the model has no vision tower";
  auto in_vision_path = [&](const std::string& path) {
    return starts_with(path, info.vision_tower_prefix) || starts_with(path, info.projector_prefix);
  };
  for (const auto& path : lora.adapted_paths()) {
    if (in_vision_path(path)) return "an adapter on " + path;
  }
  for (const auto& [key, tensor] : lora.parameters()) {
    const auto path = lora_module_path_of_key(key);
    if (in_vision_path(path)) return "a trained tensor " + key;
  }
  for (const auto& item : model.module().named_parameters()) {
    if (item.value().requires_grad() && in_vision_path(item.key())) return "a trained tensor " + item.key();
  }
  return "";
}

torch::Tensor ImageFeatureCache::features(VisionLanguageModel& model, const std::vector<std::size_t>& examples,
                                          const std::vector<VisionInputs>& example_vision) {
  std::vector<torch::Tensor> parts;
  for (std::size_t row = 0; row < examples.size() && row < example_vision.size(); ++row) {
    if (example_vision[row].empty()) continue;
    auto found = cached_.find(examples[row]);
    if (found != cached_.end()) {
      ++hits_;
      parts.push_back(found->second);
      continue;
    }
    torch::Tensor computed = store_ ? store_->find(example_vision[row], model.device()) : torch::Tensor();
    if (computed.defined()) {
      ++store_hits_;
    } else {
      ++misses_;
      const auto start = std::chrono::steady_clock::now();
      {
        torch::NoGradGuard no_grad;
        computed = model.encode_images(example_vision[row]);
      }
      encode_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      if (store_) store_->put(example_vision[row], computed);
    }
    const auto size = static_cast<std::int64_t>(computed.numel() * computed.element_size());
    if (bytes_ + size <= budget_bytes_) {
      cached_.emplace(examples[row], computed);
      bytes_ += size;
    }
    parts.push_back(computed);
  }
  if (parts.empty()) return torch::Tensor();
  return parts.size() == 1 ? parts[0] : torch::cat(parts, 0);
}

}  // namespace vlm
