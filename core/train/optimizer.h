// AdamW, learning-rate schedules and gradient clipping with the exact arithmetic of torch.optim.AdamW (single-tensor
// path), transformers' schedule functions and torch.nn.utils.clip_grad_norm_, so a run follows the Python loss curve.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace vlm {

struct AdamWOptions {
  double learning_rate = 5e-5;
  double beta1 = 0.9, beta2 = 0.999, epsilon = 1e-8;
  double weight_decay = 0.0;
};

class AdamW {
 public:
  // `parameters`: name -> tensor (requires grad). Names decide the weight-decay group as the Trainer does: no decay
  // for biases and normalisation weights (see no_weight_decay()).
  AdamW(std::vector<std::pair<std::string, torch::Tensor>> parameters, AdamWOptions options);

  // One update with learning rate `lr` on the current .grad() of every parameter (missing grads are skipped, as
  // PyTorch skips parameters whose grad is None).
  void step(double lr);
  void zero_grad();
  std::int64_t steps() const { return steps_; }

  // State for checkpoints: exp_avg.<name>, exp_avg_sq.<name>, and the step count.
  std::vector<std::pair<std::string, torch::Tensor>> state() const;
  void load_state(const std::vector<std::pair<std::string, torch::Tensor>>& state, std::int64_t steps);

  // The Trainer's decay rule on a parameter name (lowercased): bias, layernorm, rmsnorm, "norm" path segments.
  static bool no_weight_decay(const std::string& name);

 private:
  struct Slot {
    std::string name;
    torch::Tensor param, exp_avg, exp_avg_sq;
    bool decay = true;
  };
  std::vector<Slot> slots_;
  AdamWOptions options_;
  std::int64_t steps_ = 0;
};

// Learning-rate multiplier at scheduler step `step` (transformers: linear, cosine, constant,
// constant_with_warmup). Update k (1-based) uses the multiplier of step k - 1.
double schedule_multiplier(const std::string& type, std::int64_t step, std::int64_t warmup_steps, std::int64_t total_steps);
// Warmup steps: warmup_steps when > 0, else ceil(total * warmup_ratio).
std::int64_t warmup_steps_for(std::int64_t total_steps, double warmup_ratio, std::int64_t warmup_steps);

// Dynamic loss scaling for float16 autocast, with torch.amp.GradScaler's defaults and update rule (what the Trainer
// uses through accelerate for fp16): the loss is multiplied by scale() before backward; unscale() multiplies every
// gradient by the float32 reciprocal of the scale before clipping and reports inf/NaN; an update with inf/NaN
// gradients is skipped and halves the scale; growth_interval clean updates in a row double it.
struct LossScalerOptions {
  double init_scale = 65536.0;
  double growth_factor = 2.0;
  double backoff_factor = 0.5;
  std::int64_t growth_interval = 2000;
};

class DynamicLossScaler {
 public:
  explicit DynamicLossScaler(LossScalerOptions options = {});
  double scale() const { return scale_; }
  std::int64_t growth_tracker() const { return growth_tracker_; }
  // Unscales every defined grad in place; false when any grad holds inf or NaN (skip the update).
  bool unscale(const std::vector<torch::Tensor>& parameters) const;
  // After each update window: found_inf backs the scale off and resets the tracker; otherwise the tracker counts up
  // and the scale grows when it reaches growth_interval.
  void update(bool found_inf);
  // Checkpoint state.
  void restore(double scale, std::int64_t growth_tracker);

 private:
  LossScalerOptions options_;
  double scale_;
  std::int64_t growth_tracker_ = 0;
};

// clip_grad_norm_(norm 2): returns the total norm before clipping and multiplies every grad by
// min(max_norm / (total + 1e-6), 1). max_norm <= 0: no clipping, the norm is still returned.
double clip_grad_norm(const std::vector<torch::Tensor>& parameters, double max_norm);

}  // namespace vlm
