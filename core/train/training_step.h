// The pieces of a training step, exposed so tests can pin each one against the reference: the loss, mixed
// precision, the data order, the step plan, the LoRA settings of a variant and writing a merged model.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "model/lora.h"
#include "model/model.h"
#include "pipeline/config.h"

namespace vlm {

// The variant of an experiment config as a LoRA configuration.
LoraConfig lora_config_from_variant(const LoraVariant& variant);

// Autocast for the forward pass: "bf16" (CPU and CUDA) or "fp16" (CUDA); "no" does nothing. Restores the previous
// state on destruction, as torch.autocast's context manager.
class AutocastGuard {
 public:
  AutocastGuard(const std::string& mixed_precision, torch::Device device);
  ~AutocastGuard();
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  bool active_ = false, cpu_ = true, previous_enabled_ = false;
  torch::ScalarType previous_dtype_ = torch::kBFloat16;
};

// Sum of the token cross-entropies of logits [B, L, V] against labels [B, L] shifted by one (ignore -100), in
// float32. The Trainer's loss for an accumulation window is the sum over its micro-batches divided by the number of
// predicted tokens in the window.
torch::Tensor causal_lm_loss_sum(const torch::Tensor& logits, const torch::Tensor& labels);

// The same sum, from a forward pass that computes only the logits of the positions whose next token carries a label
// (ForwardInputs::logit_positions): the LM head and the softmax then cover the response instead of the whole
// sequence, with the same terms. `inputs` is the collated batch; its logit selection is replaced.
torch::Tensor training_loss_sum(VisionLanguageModel& model, ForwardInputs inputs, const torch::Tensor& labels);

class ImageFeatureCache;
// One micro-batch's share of its accumulation window's loss: training_loss_sum / window_tokens under the run's
// autocast. With `cache`, the image features come from it (the rows are the dataset examples `examples`, each
// row's own images in `example_vision`).
torch::Tensor micro_batch_loss(VisionLanguageModel& model, ForwardInputs inputs, const torch::Tensor& labels,
                               std::int64_t window_tokens, const std::string& mixed_precision,
                               ImageFeatureCache* cache = nullptr, const std::vector<std::size_t>& examples = {},
                               const std::vector<VisionInputs>& example_vision = {});
std::int64_t predicted_token_count(const torch::Tensor& labels);

// torch.randperm(n) from a CPU generator seeded with seed + epoch.
std::vector<std::size_t> epoch_order(std::size_t n, std::uint64_t seed, std::int64_t epoch);

struct TrainingPlan {
  std::int64_t micro_batches_per_epoch = 0;  // ceil(N / batch), no drop_last
  std::int64_t updates_per_epoch = 0;        // ceil(micro_batches / accumulation), at least 1
  std::int64_t total_updates = 0;            // max_steps, else ceil(epochs * updates_per_epoch)
  std::int64_t epochs = 0;                   // epochs the loop visits
  std::int64_t warmup_steps = 0;
};
TrainingPlan plan_training(std::size_t examples, const TrainingConfig& training);

// The model's current weights as a Hugging Face model folder: sharded safetensors under the checkpoint key names
// (a tied head omitted), config.json (dtype updated) and the tokenizer/processor/chat-template files of the base.
void write_merged_model(VisionLanguageModel& model, const std::string& base_folder, const std::string& folder);

}  // namespace vlm
