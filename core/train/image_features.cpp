#include "train/image_features.h"

#include <torch/torch.h>

#include <chrono>

namespace vlm {

std::string image_features_frozen_reason(VisionLanguageModel& model, const LoraModel& lora) {
  const auto& info = model.info();
  if (info.vision_tower_prefix.empty()) return "the model has no vision tower";
  const std::string adapter_use = lora_vision_path_use(info, lora);
  if (!adapter_use.empty()) return adapter_use;
  for (const auto& item : model.module().named_parameters()) {
    if (item.value().requires_grad() && in_vision_path(info, item.key())) return "a trained tensor " + item.key();
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
    torch::Tensor computed;
    if (store_) {
      // The store looks the entry up and, when it is absent, computes and stores it (hashing the pixels once).
      const auto hits_before = store_->hits();
      const double seconds_before = store_->encode_seconds();
      computed = store_->features(model, example_vision[row]);
      if (store_->hits() > hits_before) {
        ++store_hits_;
      } else {
        ++misses_;
        encode_seconds_ += store_->encode_seconds() - seconds_before;
      }
    } else {
      ++misses_;
      const auto start = std::chrono::steady_clock::now();
      {
        torch::NoGradGuard no_grad;
        computed = model.encode_images(example_vision[row]);
      }
      encode_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
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
