// Image features kept across epochs. With the vision tower and the projector frozen (no adapter and no trained
// tensor in them), an example's image features are the same in every epoch, so recomputing them each epoch (what
// transformers' Trainer does) is wasted work: on the Qwen2-VL "small" layout the frozen tower is most of a training
// step's forward pass. The cache computes each example's features once, alone (so a resumed run recomputes the
// very same values), and reuses them while they fit in a byte budget; examples past the budget are recomputed.
// With an ImageFeatureStore behind it, features computed by an earlier run of the same model (another LoRA
// variant of the grid) are read from disk instead of computed, and the ones computed here are stored for later runs.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "model/image_feature_store.h"
#include "model/lora.h"
#include "model/model.h"

namespace vlm {

// "" when the image features of `model` cannot change during training with `lora`, else why they can (an
// adapter or a trained tensor under the vision tower or projector prefix, or a text-only model).
std::string image_features_frozen_reason(VisionLanguageModel& model, const LoraModel& lora);

class ImageFeatureCache {
 public:
  // budget_bytes 0 keeps nothing (every call recomputes; the per-example path without reuse).
  // `store` (may be null) must outlive the cache.
  explicit ImageFeatureCache(std::int64_t budget_bytes, ImageFeatureStore* store = nullptr)
      : budget_bytes_(budget_bytes), store_(store) {}

  // The features of a batch whose rows are the dataset examples `examples` with `example_vision[i]` the images
  // of row i (empty for a text-only row), concatenated in row order: the ForwardInputs::vision.features of the
  // collated batch. Computed with grad mode off under the caller's autocast state.
  torch::Tensor features(VisionLanguageModel& model, const std::vector<std::size_t>& examples,
                         const std::vector<VisionInputs>& example_vision);

  std::int64_t bytes() const { return bytes_; }
  std::int64_t hits() const { return hits_; }
  // Features computed here (the vision tower ran), and features read from the store.
  std::int64_t misses() const { return misses_; }
  std::int64_t store_hits() const { return store_hits_; }
  // Seconds spent in the vision tower and projector (the misses).
  double encode_seconds() const { return encode_seconds_; }

 private:
  std::int64_t budget_bytes_;
  ImageFeatureStore* store_;
  std::int64_t bytes_ = 0, hits_ = 0, misses_ = 0, store_hits_ = 0;
  double encode_seconds_ = 0;
  std::unordered_map<std::size_t, torch::Tensor> cached_;
};

}  // namespace vlm
