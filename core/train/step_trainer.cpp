#include "train/step_trainer.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <mutex>

#include "base/error.h"
#include "base/fs.h"
#include "io/checkpoint.h"
#include "tensor/tensor_io.h"
#include "train/data.h"
#include "train/training_step.h"

namespace vlm {
namespace fs = std::filesystem;

StepTrainer::StepTrainer(Session& session, StepTrainerOptions options) : session_(session), options_(std::move(options)) {
  if (options_.mixed_precision == "fp16" && session_.model().device().is_cpu()) {
    fail(ErrorCode::unsupported, "mixed_precision fp16 needs a CUDA device (dynamic loss scaling); use bf16 or no on the CPU");
  }
  if (options_.mixed_precision == "fp16") scaler_.emplace();
  torch::manual_seed(options_.seed);
  auto& model = session_.model();
  lora_ = options_.init_adapter_dir.empty() ? LoraModel::create(model, options_.lora, options_.scope)
                                            : LoraModel::load(model, options_.init_adapter_dir, /*trainable=*/true);
  lora_->set_training(true);
  model.set_gradient_checkpointing(options_.gradient_checkpointing);
  optimizer_ = std::make_unique<AdamW>(lora_->parameters(), options_.adam);
  for (const auto& [name, tensor] : lora_->parameters()) trainable_.push_back(tensor);
}

StepTrainer::~StepTrainer() {
  if (lora_ && !merged_) {
    session_.model().set_gradient_checkpointing(false);
    lora_->unload();
  }
}

StepResult StepTrainer::step(const std::vector<StepExample>& inputs) {
  if (merged_) fail(ErrorCode::invalid_argument, "train step: the adapters were merged by export_merged; create a new trainer");
  if (inputs.empty()) fail(ErrorCode::invalid_argument, "train step: no examples");
  TrainingDataOptions data_options;
  data_options.loss_on_response_only = options_.loss_on_response_only;
  data_options.max_seq_length = options_.max_seq_length;
  std::vector<TrainingExample> examples;
  std::int64_t window_tokens = 0;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const auto& in = inputs[i];
    examples.push_back(make_training_example(session_, in.instruction, in.response, in.image ? &*in.image : nullptr,
                                             data_options, "example " + std::to_string(i)));
    window_tokens += examples.back().predicted_tokens;
  }
  auto& model = session_.model();
  const std::size_t micro = options_.micro_batch_size > 0 ? static_cast<std::size_t>(options_.micro_batch_size) : inputs.size();
  double loss_value = 0;
  for (std::size_t begin = 0; begin < examples.size(); begin += micro) {
    const std::size_t end = std::min(examples.size(), begin + micro);
    std::vector<const TrainingExample*> chosen;
    std::vector<const RgbImage*> images;
    for (std::size_t i = begin; i < end; ++i) {
      chosen.push_back(&examples[i]);
      images.push_back(inputs[i].image ? &*inputs[i].image : nullptr);
    }
    torch::Tensor labels;
    ForwardInputs batch = collate_examples(session_, chosen, images, labels);
    auto loss = micro_batch_loss(model, batch, labels, window_tokens, options_.mixed_precision);
    (scaler_ ? loss * scaler_->scale() : loss).backward();
    loss_value += loss.item<double>();
  }
  StepResult result;
  result.predicted_tokens = window_tokens;
  result.loss = loss_value;
  if (scaler_ && !scaler_->unscale(trainable_)) {
    // fp16 overflow: skip the update and back the loss scale off, as GradScaler does.
    optimizer_->zero_grad();
    scaler_->update(/*found_inf=*/true);
    result.grad_norm = std::numeric_limits<double>::quiet_NaN();
    result.step = optimizer_->steps();
    return result;
  }
  result.grad_norm = clip_grad_norm(trainable_, options_.max_grad_norm);
  if (!std::isfinite(loss_value) || !std::isfinite(result.grad_norm)) {
    optimizer_->zero_grad();
    fail(ErrorCode::internal, "train step: the loss or the gradients are not finite (loss " + std::to_string(loss_value) +
                                  "); the update was skipped. Lower the learning rate or disable mixed precision");
  }
  result.learning_rate = options_.adam.learning_rate * schedule_multiplier(options_.lr_scheduler_type, optimizer_->steps(),
                                                                           options_.warmup_steps, options_.total_steps);
  optimizer_->step(result.learning_rate);
  optimizer_->zero_grad();
  if (scaler_) scaler_->update(/*found_inf=*/false);
  result.step = optimizer_->steps();
  return result;
}

void StepTrainer::save_adapter(const std::string& folder) const {
  if (merged_) fail(ErrorCode::invalid_argument, "save adapter: the adapters were merged by export_merged");
  lora_->save(folder);
}

void StepTrainer::save_state(const std::string& folder) const {
  save_adapter(folder);
  save_tensors((fs::path(folder) / "optimizer.safetensors").string(), optimizer_->state());
  torch::Tensor rng;
  {
    auto generator = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(generator.mutex());
    rng = generator.get_state();
  }
  save_tensors((fs::path(folder) / "rng_state.safetensors").string(), {{"cpu", rng}});
  nlohmann::ordered_json state = {{"global_step", optimizer_->steps()}};
  write_file_atomic((fs::path(folder) / "trainer_state.json").string(), state.dump(2) + "\n");
}

void StepTrainer::load_state(const std::string& folder) {
  if (merged_) fail(ErrorCode::invalid_argument, "load state: the adapters were merged by export_merged");
  const auto state_path = (fs::path(folder) / "trainer_state.json").string();
  if (!fs::exists(state_path)) fail(ErrorCode::not_found, folder + ": no trainer_state.json; not a saved training state");
  nlohmann::json state;
  try {
    state = nlohmann::json::parse(read_file(state_path));
  } catch (const nlohmann::json::exception& e) {
    fail(ErrorCode::corrupt_data, state_path + ": invalid JSON (" + e.what() + ")");
  }
  auto adapter = load_all_tensors(*Checkpoint::open((fs::path(folder) / "adapter_model.safetensors").string(), "adapter_model"));
  torch::NoGradGuard no_grad;
  for (const auto& [name, tensor] : lora_->parameters()) {
    auto it = adapter.find(name);
    if (it == adapter.end() || it->second.sizes() != tensor.sizes()) {
      fail(ErrorCode::corrupt_data, folder + ": the saved adapter lacks " + name + " (or has another shape); it was saved "
                                             "with another LoRA configuration");
    }
    const_cast<torch::Tensor&>(tensor).copy_(it->second);
  }
  auto moments = load_all_tensors(*Checkpoint::open((fs::path(folder) / "optimizer.safetensors").string(), "optimizer"));
  optimizer_->load_state({moments.begin(), moments.end()}, state.value("global_step", std::int64_t{0}));
  auto rng = load_all_tensors(*Checkpoint::open((fs::path(folder) / "rng_state.safetensors").string(), "rng_state"));
  auto generator = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(generator.mutex());
  generator.set_state(rng.at("cpu"));
}

void StepTrainer::export_merged(const std::string& folder) {
  if (merged_) fail(ErrorCode::invalid_argument, "export merged: already merged");
  lora_->set_training(false);
  session_.model().set_gradient_checkpointing(false);
  lora_->merge_and_unload();
  merged_ = true;
  fs::create_directories(folder);
  write_merged_model(session_.model(), session_.folder(), folder);
}

}  // namespace vlm
