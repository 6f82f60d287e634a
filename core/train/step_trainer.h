// Training driven step by step by a host program (the C API's vlm_trainer): LoRA on a session's model, AdamW, a
// schedule, and one optimizer update per call on the examples given (one accumulation window, loss normalised by
// its predicted tokens as the Trainer does). State can be saved and restored; the adapters stay attached to the
// session's model, so the session generates with them between steps.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "image/image.h"
#include "model/lora.h"
#include "session/session.h"
#include "train/optimizer.h"

namespace vlm {

struct StepTrainerOptions {
  LoraConfig lora;
  LoraScope scope;
  std::string init_adapter_dir;         // start from a PEFT adapter instead of fresh adapters
  AdamWOptions adam;
  std::string lr_scheduler_type = "constant";
  std::int64_t warmup_steps = 0;
  std::int64_t total_steps = 0;         // needed by linear and cosine
  double max_grad_norm = 1.0;           // <= 0: no clipping
  std::string mixed_precision = "no";   // no | bf16 | fp16 (CUDA)
  bool gradient_checkpointing = false;
  bool loss_on_response_only = true;
  std::optional<int> max_seq_length;
  int micro_batch_size = 0;             // examples per forward pass; 0 = all at once
  std::uint64_t seed = 42;
};

struct StepExample {
  std::string instruction, response;
  std::optional<RgbImage> image;
};

struct StepResult {
  double loss = 0, grad_norm = 0, learning_rate = 0;
  std::int64_t step = 0;                // updates done, this one included
  std::int64_t predicted_tokens = 0;
};

class StepTrainer {
 public:
  StepTrainer(Session& session, StepTrainerOptions options);
  ~StepTrainer();

  // One update. With fp16 (CUDA) an update whose gradients overflow is skipped: grad_norm is NaN, step is
  // unchanged and the loss scale halves (torch's GradScaler).
  StepResult step(const std::vector<StepExample>& examples);
  void save_adapter(const std::string& folder) const;
  // Adapter, optimizer moments, step and RNG state: load_state() continues exactly where save_state() was.
  void save_state(const std::string& folder) const;
  void load_state(const std::string& folder);
  // Writes the merged model (Hugging Face folder). The adapters are folded into the session's model, so no
  // further step is possible; the session then generates with the merged weights.
  void export_merged(const std::string& folder);
  std::int64_t trainable_parameters() const { return lora_->trainable_parameter_count(); }
  std::int64_t total_parameters() const { return lora_->total_parameter_count(); }
  std::int64_t steps() const { return optimizer_->steps(); }

 private:
  Session& session_;
  StepTrainerOptions options_;
  std::unique_ptr<LoraModel> lora_;
  std::unique_ptr<AdamW> optimizer_;
  std::optional<DynamicLossScaler> scaler_;  // fp16 (CUDA)
  std::vector<torch::Tensor> trainable_;
  bool merged_ = false;
};

}  // namespace vlm
