#include "train/optimizer.h"

#include <torch/torch.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <regex>

#include "base/error.h"

namespace vlm {

bool AdamW::no_weight_decay(const std::string& name) {
  std::string lower = name;
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  static const std::regex norm_segment(R"((?:^|\.)norm(?:$|\.)|_norm(?:$|\.))");
  return lower.find("bias") != std::string::npos || lower.find("layernorm") != std::string::npos ||
         lower.find("rmsnorm") != std::string::npos || std::regex_search(lower, norm_segment);
}

AdamW::AdamW(std::vector<std::pair<std::string, torch::Tensor>> parameters, AdamWOptions options)
    : options_(options) {
  for (auto& [name, param] : parameters) {
    Slot slot;
    slot.name = name;
    slot.param = param;
    slot.exp_avg = torch::zeros_like(param, torch::MemoryFormat::Preserve);
    slot.exp_avg_sq = torch::zeros_like(param, torch::MemoryFormat::Preserve);
    slot.decay = !no_weight_decay(name);
    slots_.push_back(std::move(slot));
  }
}

void AdamW::step(double lr) {
  torch::NoGradGuard no_grad;
  ++steps_;
  const double b1 = options_.beta1, b2 = options_.beta2;
  // torch.optim.AdamW's single-tensor update, operation for operation.
  const double bias_correction1 = 1 - std::pow(b1, static_cast<double>(steps_));
  const double bias_correction2 = 1 - std::pow(b2, static_cast<double>(steps_));
  const double step_size = lr / bias_correction1;
  const double bias_correction2_sqrt = std::sqrt(bias_correction2);
  for (auto& slot : slots_) {
    const auto& grad = slot.param.grad();
    if (!grad.defined()) continue;
    if (slot.decay && options_.weight_decay != 0) slot.param.mul_(1 - lr * options_.weight_decay);
    slot.exp_avg.lerp_(grad, 1 - b1);
    slot.exp_avg_sq.mul_(b2).addcmul_(grad, grad, 1 - b2);
    auto denom = (slot.exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(options_.epsilon);
    slot.param.addcdiv_(slot.exp_avg, denom, -step_size);
  }
}

void AdamW::zero_grad() {
  for (auto& slot : slots_) {
    auto& grad = slot.param.mutable_grad();
    if (grad.defined()) grad = torch::Tensor();  // set_to_none, as PyTorch >= 2.0
  }
}

std::vector<std::pair<std::string, torch::Tensor>> AdamW::state() const {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& slot : slots_) {
    out.emplace_back("exp_avg." + slot.name, slot.exp_avg);
    out.emplace_back("exp_avg_sq." + slot.name, slot.exp_avg_sq);
  }
  return out;
}

void AdamW::load_state(const std::vector<std::pair<std::string, torch::Tensor>>& state, std::int64_t steps) {
  torch::NoGradGuard no_grad;
  for (auto& slot : slots_) {
    bool avg = false, sq = false;
    for (const auto& [name, tensor] : state) {
      if (name == "exp_avg." + slot.name) {
        if (tensor.sizes() != slot.exp_avg.sizes()) break;
        slot.exp_avg.copy_(tensor);
        avg = true;
      } else if (name == "exp_avg_sq." + slot.name) {
        if (tensor.sizes() != slot.exp_avg_sq.sizes()) break;
        slot.exp_avg_sq.copy_(tensor);
        sq = true;
      }
    }
    if (!avg || !sq) {
      fail(ErrorCode::corrupt_data, "optimizer state has no (or a wrongly shaped) entry for " + slot.name +
                                        "; the checkpoint belongs to a different LoRA configuration");
    }
  }
  steps_ = steps;
}

double schedule_multiplier(const std::string& type, std::int64_t step, std::int64_t warmup, std::int64_t total) {
  const double s = static_cast<double>(step);
  if (type != "constant" && step < warmup) return s / static_cast<double>(std::max<std::int64_t>(1, warmup));
  if (type == "linear") {
    return std::max(0.0, static_cast<double>(total - step) / static_cast<double>(std::max<std::int64_t>(1, total - warmup)));
  }
  if (type == "cosine") {
    const double progress = static_cast<double>(step - warmup) / static_cast<double>(std::max<std::int64_t>(1, total - warmup));
    return std::max(0.0, 0.5 * (1.0 + std::cos(M_PI * 0.5 * 2.0 * progress)));
  }
  if (type == "constant" || type == "constant_with_warmup") return 1.0;
  fail(ErrorCode::invalid_argument, "lr_scheduler_type '" + type + "' is not supported (linear, cosine, constant, constant_with_warmup)");
}

std::int64_t warmup_steps_for(std::int64_t total, double ratio, std::int64_t warmup_steps) {
  if (warmup_steps > 0) return warmup_steps;
  return static_cast<std::int64_t>(std::ceil(static_cast<double>(total) * ratio));
}

DynamicLossScaler::DynamicLossScaler(LossScalerOptions options) : options_(options), scale_(options.init_scale) {
  if (!(options.init_scale > 0) || !(options.growth_factor > 1) || !(options.backoff_factor > 0) ||
      !(options.backoff_factor < 1) || options.growth_interval < 1) {
    fail(ErrorCode::invalid_argument,
         "loss scaler: init_scale must be positive, growth_factor > 1, backoff_factor in (0, 1) and growth_interval "
         ">= 1");
  }
}

bool DynamicLossScaler::unscale(const std::vector<torch::Tensor>& parameters) const {
  torch::NoGradGuard no_grad;
  // GradScaler: inv_scale = scale.double().reciprocal().float(), grads multiplied in place, then checked.
  const float inverse = static_cast<float>(1.0 / static_cast<double>(static_cast<float>(scale_)));
  bool finite = true;
  for (const auto& p : parameters) {
    auto grad = p.grad();
    if (!grad.defined()) continue;
    grad.mul_(inverse);
    if (finite && !torch::isfinite(grad).all().item<bool>()) finite = false;
  }
  return finite;
}

void DynamicLossScaler::update(bool found_inf) {
  // torch._amp_update_scale_ on a float32 scale.
  if (found_inf) {
    scale_ = static_cast<float>(scale_ * options_.backoff_factor);
    growth_tracker_ = 0;
    return;
  }
  if (++growth_tracker_ == options_.growth_interval) {
    const float grown = static_cast<float>(scale_ * options_.growth_factor);
    if (std::isfinite(grown)) scale_ = grown;
    growth_tracker_ = 0;
  }
}

void DynamicLossScaler::restore(double scale, std::int64_t growth_tracker) {
  if (!(scale > 0) || !std::isfinite(scale) || growth_tracker < 0) {
    fail(ErrorCode::corrupt_data, "loss scaler state: scale " + std::to_string(scale) + " and growth tracker " +
                                      std::to_string(growth_tracker) + " are not a valid state");
  }
  scale_ = scale;
  growth_tracker_ = growth_tracker;
}

double clip_grad_norm(const std::vector<torch::Tensor>& parameters, double max_norm) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> grads, norms;
  for (const auto& p : parameters) {
    if (p.grad().defined()) grads.push_back(p.grad());
  }
  if (grads.empty()) return 0.0;
  for (const auto& g : grads) norms.push_back(torch::linalg_vector_norm(g, 2, c10::nullopt, false, c10::nullopt));
  auto total = torch::linalg_vector_norm(torch::stack(norms), 2, c10::nullopt, false, c10::nullopt);
  if (max_norm > 0) {
    auto coef = torch::clamp(max_norm / (total + 1e-6), c10::nullopt, 1.0);
    for (auto& g : grads) g.mul_(coef.to(g.device()));
  }
  return total.item<double>();
}

}  // namespace vlm
