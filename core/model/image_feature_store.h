// Image features on disk, shared between runs. An experiment grid trains and evaluates several LoRA variants of
// one model on the same images; with the vision tower and the projector frozen, each image's features (what
// VisionLanguageModel::encode_images returns) are the same in every one of those runs, and on the Qwen2-VL layouts
// computing them is most of a training step. The store keeps them in files named by a hash of the pixels, in a
// folder per model fingerprint: the weight files (path, size, modification time), the dtype, the device, the
// autocast mode and the vlmrt and libtorch versions. A later run with the same fingerprint reads the features
// instead of running the tower; any change to those inputs lands in another folder.
//
// Entries are computed for one example's images alone, so a value read back is the very value the run would
// compute. Files are written atomically; a damaged or foreign entry is removed and recomputed, never used.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <string>

#include "model/model.h"

namespace vlm {

class ImageFeatureStore {
 public:
  // Opens (creating when missing) the folder for `fingerprint` (image_feature_fingerprint) under `root`, which may
  // hold folders of other fingerprints. New entries are written while the files under `root` stay within
  // `budget_bytes`; past it the store only reads. Throws vlm::Error(io) naming the folder when it cannot be created.
  ImageFeatureStore(const std::string& root, const std::string& fingerprint, std::int64_t budget_bytes);

  // The stored features of `images` (one example's images) on `device`, or an undefined tensor.
  torch::Tensor find(const VisionInputs& images, torch::Device device);
  // Stores `features` as the features of `images` (skipped past the budget; a write error is logged, not thrown).
  void put(const VisionInputs& images, const torch::Tensor& features);
  // find(), else model.encode_images() with grad mode off, stored with put(); the pixels are hashed once.
  torch::Tensor features(VisionLanguageModel& model, const VisionInputs& images);

  const std::string& directory() const { return directory_; }
  std::int64_t hits() const { return hits_; }
  std::int64_t writes() const { return writes_; }
  std::int64_t computed() const { return computed_; }
  // Seconds spent in the vision tower and projector by features() (the entries not found).
  double encode_seconds() const { return encode_seconds_; }

 private:
  std::string entry_path(const std::string& key) const;
  torch::Tensor find_entry(const std::string& key, torch::Device device);
  void put_entry(const std::string& key, const torch::Tensor& features);
  std::string directory_, fingerprint_hash_;
  std::int64_t budget_bytes_, used_bytes_ = 0;
  std::int64_t hits_ = 0, writes_ = 0, computed_ = 0;
  double encode_seconds_ = 0;
  bool full_reported_ = false;
};

// What a model's image features depend on besides the pixels, as one JSON text: the canonical model folder and
// its weight and config files (name, size, modification time), the model's dtype and device, the autocast mode
// the features are computed under ("no", "bf16", "fp16") and the vlmrt and libtorch versions.
std::string image_feature_fingerprint(const std::string& model_folder, const VisionLanguageModel& model,
                                      const std::string& autocast);

class LoraModel;
// Whether a module path lies under the model's vision tower or projector prefix (ModelInfo).
bool in_vision_path(const ModelInfo& info, const std::string& path);
// "" when `lora` leaves the vision tower and the projector untouched, else what touches them ("an adapter on
// <path>" or "a trained tensor <key>"): stored features are valid only while it is "".
std::string lora_vision_path_use(const ModelInfo& info, const LoraModel& lora);

// A 128-bit content hash of one example's image inputs (pixel values, grids, image sizes: bytes, dtypes and
// shapes) as 32 hex digits; the name of its store entry.
std::string image_inputs_key(const VisionInputs& images);

}  // namespace vlm
