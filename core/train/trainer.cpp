#include "train/trainer.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/autocast_mode.h>
#include <torch/torch.h>
#include <torch/version.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <future>
#include <limits>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>

#include "base/error.h"
#include "base/fs.h"
#include "io/checkpoint.h"
#include "model/lora.h"
#include "session/session.h"
#include "tensor/tensor_io.h"
#include "train/data.h"
#include "train/image_features.h"
#include "train/optimizer.h"
#include "train/training_step.h"

namespace vlm {
namespace fs = std::filesystem;

LoraConfig lora_config_from_variant(const LoraVariant& v) {
  LoraConfig c;
  c.r = v.r;
  c.alpha = v.alpha;
  c.dropout = v.dropout;
  if (v.target_modules) {
    if (v.target_modules_is_regex && v.target_modules->size() == 1 && v.target_modules->front() != "all-linear") {
      c.target_regex = v.target_modules->front();
    } else {
      c.target_modules = *v.target_modules;
    }
  }
  c.exclude_modules = v.exclude_modules;
  c.use_rslora = v.use_rslora;
  c.use_dora = v.use_dora;
  c.init = v.init_lora_weights;
  c.bias = v.bias;
  c.modules_to_save = v.modules_to_save;
  c.layers_to_transform = v.layers_to_transform;
  return c;
}

// ---------------------------------------------------------------------------------------------------------------
// Mixed precision

AutocastGuard::AutocastGuard(const std::string& mixed_precision, torch::Device device) {
  if (mixed_precision == "no" || mixed_precision.empty()) return;
  const auto dtype = mixed_precision == "bf16" ? torch::kBFloat16 : torch::kHalf;
  cpu_ = device.is_cpu();
  active_ = true;
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
  const auto type = cpu_ ? at::kCPU : at::kCUDA;
  previous_enabled_ = at::autocast::is_autocast_enabled(type);
  previous_dtype_ = at::autocast::get_autocast_dtype(type);
  at::autocast::set_autocast_enabled(type, true);
  at::autocast::set_autocast_dtype(type, dtype);
#else
  if (cpu_) {
    previous_enabled_ = at::autocast::is_cpu_enabled();
    previous_dtype_ = at::autocast::get_autocast_cpu_dtype();
    at::autocast::set_cpu_enabled(true);
    at::autocast::set_autocast_cpu_dtype(dtype);
  } else {
    previous_enabled_ = at::autocast::is_enabled();
    previous_dtype_ = at::autocast::get_autocast_gpu_dtype();
    at::autocast::set_enabled(true);
    at::autocast::set_autocast_gpu_dtype(dtype);
  }
#endif
  at::autocast::increment_nesting();
}

AutocastGuard::~AutocastGuard() {
  if (!active_) return;
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
  const auto type = cpu_ ? at::kCPU : at::kCUDA;
  at::autocast::set_autocast_enabled(type, previous_enabled_);
  at::autocast::set_autocast_dtype(type, previous_dtype_);
#else
  if (cpu_) {
    at::autocast::set_cpu_enabled(previous_enabled_);
    at::autocast::set_autocast_cpu_dtype(previous_dtype_);
  } else {
    at::autocast::set_enabled(previous_enabled_);
    at::autocast::set_autocast_gpu_dtype(previous_dtype_);
  }
#endif
}

// ---------------------------------------------------------------------------------------------------------------
// Loss

torch::Tensor causal_lm_loss_sum(const torch::Tensor& logits, const torch::Tensor& labels) {
  auto shifted_logits = logits.narrow(1, 0, logits.size(1) - 1).to(torch::kFloat);
  auto shifted_labels = labels.narrow(1, 1, labels.size(1) - 1).to(logits.device());
  return torch::nn::functional::cross_entropy(
      shifted_logits.reshape({-1, shifted_logits.size(-1)}), shifted_labels.reshape({-1}),
      torch::nn::functional::CrossEntropyFuncOptions().ignore_index(kIgnoreIndex).reduction(torch::kSum));
}

torch::Tensor training_loss_sum(VisionLanguageModel& model, ForwardInputs inputs, const torch::Tensor& labels) {
  const auto length = labels.size(1);
  auto next = labels.narrow(1, 1, length - 1);           // the label each position predicts
  auto predicted = (next != kIgnoreIndex).nonzero();       // [N, 2] (row, position), row-major
  inputs.logit_positions = predicted.select(1, 0) * length + predicted.select(1, 1);
  auto targets = next.index({predicted.select(1, 0), predicted.select(1, 1)});
  auto logits = model.forward(inputs, nullptr);            // [1, N, V]
  return torch::nn::functional::cross_entropy(
      logits.squeeze(0).to(torch::kFloat), targets.to(logits.device()),
      torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum));
}

torch::Tensor micro_batch_loss(VisionLanguageModel& model, ForwardInputs inputs, const torch::Tensor& labels,
                               std::int64_t window_tokens, const std::string& mixed_precision,
                               ImageFeatureCache* cache, const std::vector<std::size_t>& examples,
                               const std::vector<VisionInputs>& example_vision) {
  AutocastGuard autocast(mixed_precision, model.device());
  if (cache && !inputs.vision.empty()) inputs.vision.features = cache->features(model, examples, example_vision);
  return training_loss_sum(model, std::move(inputs), labels) / static_cast<double>(window_tokens);
}

std::int64_t predicted_token_count(const torch::Tensor& labels) {
  return (labels.narrow(1, 1, labels.size(1) - 1) != kIgnoreIndex).sum().item<std::int64_t>();
}

namespace {

// ---------------------------------------------------------------------------------------------------------------
// Run folder helpers

void replace_directory(const fs::path& staged, const fs::path& target) {
  std::error_code ec;
  const fs::path old = target.string() + ".old";
  fs::remove_all(old, ec);
  if (fs::exists(target)) fs::rename(target, old);
  fs::rename(staged, target);
  fs::remove_all(old, ec);
}

fs::path staging_dir_for(const fs::path& target) {
  fs::path staged = target.string() + ".partial";
  std::error_code ec;
  fs::remove_all(staged, ec);
  fs::create_directories(staged);
  return staged;
}

std::vector<fs::path> list_checkpoints(const fs::path& dir) {
  std::vector<std::pair<std::int64_t, fs::path>> found;
  if (!fs::is_directory(dir)) return {};
  for (const auto& entry : fs::directory_iterator(dir)) {
    const auto name = entry.path().filename().string();
    if (!entry.is_directory() || name.rfind("checkpoint-", 0) != 0) continue;
    const auto digits = name.substr(11);
    if (digits.empty() || digits.find_first_not_of("0123456789") != std::string::npos) continue;
    if (!fs::exists(entry.path() / "trainer_state.json")) continue;  // incomplete
    found.emplace_back(std::stoll(digits), entry.path());
  }
  std::sort(found.begin(), found.end());
  std::vector<fs::path> out;
  for (auto& [step, path] : found) out.push_back(path);
  return out;
}

// Files a merged model folder needs besides the weights, copied from the base model.
const char* kModelSideFiles[] = {"generation_config.json", "tokenizer.json", "tokenizer_config.json",
                                 "special_tokens_map.json", "tokenizer.model", "vocab.json", "merges.txt",
                                 "added_tokens.json", "chat_template.jinja", "chat_template.json",
                                 "preprocessor_config.json", "processor_config.json", "video_preprocessor_config.json"};

void copy_side_files(const std::string& from, const fs::path& to) {
  for (const char* name : kModelSideFiles) {
    const fs::path source = fs::path(from) / name;
    if (fs::exists(source)) fs::copy_file(source, to / name, fs::copy_options::overwrite_existing);
  }
}

nlohmann::ordered_json read_json_file(const std::string& path) {
  try {
    return nlohmann::ordered_json::parse(read_file(path));
  } catch (const nlohmann::json::exception& e) {
    fail(ErrorCode::corrupt_data, path + ": invalid JSON (" + e.what() + ")");
  }
}

std::string resolve_data_path(const std::string& path, const std::string& base_dir) {
  if (path.empty() || fs::path(path).is_absolute() || base_dir.empty()) return path;
  if (fs::exists(path)) return path;
  return (fs::path(base_dir) / path).string();
}

torch::Tensor generator_state() {
  auto generator = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(generator.mutex());
  return generator.get_state();
}

void set_generator_state(const torch::Tensor& state) {
  auto generator = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(generator.mutex());
  generator.set_state(state);
}

}  // namespace

// The epoch's example order: torch.randperm(n) from a generator seeded with seed + epoch (accelerate's
// SeedableRandomSampler), so the order does not depend on anything else the run draws.
std::vector<std::size_t> epoch_order(std::size_t n, std::uint64_t seed, std::int64_t epoch) {
  auto generator = at::detail::createCPUGenerator(seed + static_cast<std::uint64_t>(epoch));
  auto perm = torch::randperm(static_cast<std::int64_t>(n), generator, torch::kLong);
  std::vector<std::size_t> order(n);
  for (std::size_t i = 0; i < n; ++i) order[i] = static_cast<std::size_t>(perm[static_cast<std::int64_t>(i)].item<std::int64_t>());
  return order;
}

TrainingPlan plan_training(std::size_t examples, const TrainingConfig& t) {
  TrainingPlan plan;
  const auto batch = static_cast<std::int64_t>(t.per_device_train_batch_size);
  const auto accumulation = static_cast<std::int64_t>(t.gradient_accumulation_steps);
  plan.micro_batches_per_epoch = (static_cast<std::int64_t>(examples) + batch - 1) / batch;
  plan.updates_per_epoch = std::max<std::int64_t>(
      plan.micro_batches_per_epoch / accumulation + (plan.micro_batches_per_epoch % accumulation > 0), 1);
  plan.total_updates = t.max_steps > 0 ? t.max_steps
                                       : static_cast<std::int64_t>(std::ceil(t.num_train_epochs * plan.updates_per_epoch));
  plan.epochs = (plan.total_updates + plan.updates_per_epoch - 1) / plan.updates_per_epoch;
  plan.warmup_steps = warmup_steps_for(plan.total_updates, t.warmup_ratio, t.warmup_steps);
  return plan;
}

// ---------------------------------------------------------------------------------------------------------------

TrainingSummary run_training(const TrainingJob& job) {
  const auto t0 = std::chrono::steady_clock::now();
  const TrainingConfig& t = job.training;
  auto log = [&](const std::string& line) {
    if (job.on_log) job.on_log(line);
  };
  if (job.run_dir.empty()) fail(ErrorCode::invalid_argument, "training: no run folder given");
  if (t.per_device_train_batch_size < 1 || t.gradient_accumulation_steps < 1) {
    fail(ErrorCode::invalid_argument, "training: per_device_train_batch_size and gradient_accumulation_steps must be >= 1");
  }
  const fs::path run_dir(job.run_dir);
  fs::create_directories(run_dir);

  SessionOptions session_options;
  session_options.model = job.model;
  session_options.load = job.load;
  // Training reads the weights through autograd, never the decode kernel; no coded copies to hold in memory.
  session_options.load.coded_decode_weights = false;
  session_options.image = job.image;
  auto session = Session::open(session_options);
  auto& model = session->model();

  std::string mixed_precision = t.mixed_precision;
  if (mixed_precision == "fp16" && model.device().is_cpu()) {
    log("mixed_precision fp16 needs a CUDA device (dynamic loss scaling); training in float32 on the CPU instead. "
        "Use bf16 for reduced precision on the CPU.");
    mixed_precision = "no";
  }

  // Preflight: every example is built (images decoded, conversations tokenized) before the first step.
  TrainingDataOptions data_options;
  data_options.csv = resolve_data_path(job.data.train_csv, job.data_base_dir);
  data_options.image_column = job.data.image_column;
  data_options.instruction_column = job.data.instruction_column;
  data_options.response_column = job.data.response_column;
  data_options.max_samples = job.data.max_train_samples;
  data_options.max_seq_length = t.max_seq_length;
  data_options.loss_on_response_only = t.loss_on_response_only;
  log("preflight: reading " + data_options.csv);
  const TrainingDataset data = TrainingDataset::build(*session, data_options);
  log("preflight: " + std::to_string(data.size()) + " examples, " + std::to_string(data.total_tokens()) + " tokens");

  torch::manual_seed(t.seed);
  LoraScope scope;
  scope.vision_tower = !job.freeze_vision_tower;
  scope.projector = !job.freeze_projector;
  scope.language_model = !job.freeze_language_model;
  LoraConfig lora_config = lora_config_from_variant(job.lora);
  lora_config.base_model_name_or_path = job.model;
  auto lora = job.init_adapter_dir.empty() ? LoraModel::create(model, lora_config, scope)
                                           : LoraModel::load(model, job.init_adapter_dir, /*trainable=*/true);
  const auto trainable = lora->trainable_parameter_count();
  const auto total = lora->total_parameter_count();
  {
    std::ostringstream line;
    line << "trainable params: " << trainable << " || all params: " << total << " || trainable%: "
         << 100.0 * static_cast<double>(trainable) / static_cast<double>(total) << " (" << lora->adapted_paths().size()
         << " adapted modules)";
    log(line.str());
  }
  model.set_gradient_checkpointing(t.gradient_checkpointing);
  lora->set_training(true);
  std::unique_ptr<ImageFeatureStore> feature_store;
  std::unique_ptr<ImageFeatureCache> feature_cache;
  const bool use_store = t.store_image_features && !t.image_feature_store_dir.empty();
  if (t.cache_image_features || use_store) {
    const std::string why = image_features_frozen_reason(model, *lora);
    if (why.empty()) {
      if (use_store) {
        feature_store = std::make_unique<ImageFeatureStore>(
            t.image_feature_store_dir, image_feature_fingerprint(session->folder(), model, mixed_precision),
            t.image_feature_store_mb * 1024 * 1024);
        log("image features: shared with the other runs of this model through " + feature_store->directory());
      }
      const std::int64_t budget = t.cache_image_features ? t.image_feature_cache_mb : 0;
      feature_cache = std::make_unique<ImageFeatureCache>(budget * 1024 * 1024, feature_store.get());
      if (t.cache_image_features) {
        log("image features: computed once per example and reused in later epochs (vision tower and projector "
            "frozen; cache budget " + std::to_string(t.image_feature_cache_mb) + " MiB)");
      }
    } else if (!model.info().vision_tower_prefix.empty()) {
      log("image features: recomputed at every step (" + why + ")");
    }
  }

  const TrainingPlan plan = plan_training(data.size(), t);
  std::vector<torch::Tensor> trainable_tensors;
  for (const auto& [name, tensor] : lora->parameters()) trainable_tensors.push_back(tensor);
  AdamWOptions adam;
  adam.learning_rate = t.learning_rate;
  adam.beta1 = t.adam_beta1;
  adam.beta2 = t.adam_beta2;
  adam.epsilon = t.adam_epsilon;
  adam.weight_decay = t.weight_decay;
  AdamW optimizer(lora->parameters(), adam);

  // Resume.
  std::int64_t global_step = 0;
  nlohmann::ordered_json log_history = nlohmann::ordered_json::array();
  double total_loss = 0;  // sum of update losses
  // fp16 (CUDA): dynamic loss scaling. An update whose gradients overflow is skipped and does not advance the
  // learning-rate schedule (accelerate's scheduler skips with the optimizer).
  std::optional<DynamicLossScaler> scaler;
  if (mixed_precision == "fp16") scaler.emplace();
  std::int64_t overflow_skips = 0;
  const fs::path checkpoints_dir = run_dir / "checkpoints";
  if (!t.resume_from_checkpoint.empty()) {
    fs::path checkpoint;
    if (t.resume_from_checkpoint == "latest") {
      auto all = list_checkpoints(checkpoints_dir);
      if (!all.empty()) checkpoint = all.back();
      else log("resume_from_checkpoint latest: no checkpoint in " + checkpoints_dir.string() + "; starting fresh");
    } else {
      checkpoint = t.resume_from_checkpoint;
      if (!fs::exists(checkpoint / "trainer_state.json")) {
        fail(ErrorCode::not_found, "resume_from_checkpoint: " + checkpoint.string() +
                                       " is not a complete checkpoint (no trainer_state.json)");
      }
    }
    if (!checkpoint.empty()) {
      const auto state = read_json_file((checkpoint / "trainer_state.json").string());
      auto saved = load_all_tensors(*Checkpoint::open((checkpoint / "adapter_model.safetensors").string(), "adapter_model"));
      torch::NoGradGuard no_grad;
      for (const auto& [name, tensor] : lora->parameters()) {
        auto it = saved.find(name);
        if (it == saved.end() || it->second.sizes() != tensor.sizes()) {
          fail(ErrorCode::corrupt_data, checkpoint.string() + ": the adapter lacks " + name +
                                            " or has another shape; the checkpoint was made with another LoRA variant");
        }
        const_cast<torch::Tensor&>(tensor).copy_(it->second);
      }
      auto optimizer_state =
          load_all_tensors(*Checkpoint::open((checkpoint / "optimizer.safetensors").string(), "optimizer"));
      std::vector<std::pair<std::string, torch::Tensor>> opt(optimizer_state.begin(), optimizer_state.end());
      global_step = state.at("global_step").get<std::int64_t>();
      const auto& own = state.at("vlmrt");
      optimizer.load_state(opt, own.value("optimizer_steps", global_step));
      log_history = state.at("log_history");
      total_loss = own.at("total_loss").get<double>();
      overflow_skips = own.value("overflow_skips", std::int64_t{0});
      if (scaler && own.contains("loss_scale")) {
        scaler->restore(own.at("loss_scale").get<double>(), own.at("loss_scale_growth_tracker").get<std::int64_t>());
      }
      auto rng = load_all_tensors(*Checkpoint::open((checkpoint / "rng_state.safetensors").string(), "rng_state"));
      set_generator_state(rng.at("cpu"));
      log("resumed from " + checkpoint.string() + " at update " + std::to_string(global_step));
    }
  }

  auto save_checkpoint_folder = [&](double epoch) {
    const fs::path target = checkpoints_dir / ("checkpoint-" + std::to_string(global_step));
    fs::create_directories(checkpoints_dir);
    const fs::path staged = staging_dir_for(target);
    lora->save(staged.string());
    save_tensors((staged / "optimizer.safetensors").string(), optimizer.state());
    save_tensors((staged / "rng_state.safetensors").string(), {{"cpu", generator_state()}});
    nlohmann::ordered_json state;
    state["best_metric"] = nullptr;
    state["best_model_checkpoint"] = nullptr;
    state["epoch"] = epoch;
    state["eval_steps"] = nullptr;
    state["global_step"] = global_step;
    state["is_hyper_param_search"] = false;
    state["is_local_process_zero"] = true;
    state["is_world_process_zero"] = true;
    state["log_history"] = log_history;
    state["logging_steps"] = t.logging_steps;
    state["max_steps"] = plan.total_updates;
    state["num_input_tokens_seen"] = 0;
    state["num_train_epochs"] = plan.epochs;
    state["save_steps"] = t.save_steps;
    state["total_flos"] = 0;
    state["train_batch_size"] = t.per_device_train_batch_size;
    state["vlmrt"] = {{"total_loss", total_loss}, {"seed", t.seed}, {"examples", data.size()},
                      {"optimizer_steps", optimizer.steps()}, {"overflow_skips", overflow_skips}};
    if (scaler) {
      state["vlmrt"]["loss_scale"] = scaler->scale();
      state["vlmrt"]["loss_scale_growth_tracker"] = scaler->growth_tracker();
    }
    write_file_atomic((staged / "trainer_state.json").string(), state.dump(2) + "\n");
    nlohmann::ordered_json scheduler = {{"type", t.lr_scheduler_type}, {"last_epoch", global_step},
                                        {"base_lrs", {t.learning_rate}}, {"warmup_steps", plan.warmup_steps},
                                        {"total_steps", plan.total_updates}};
    write_file_atomic((staged / "scheduler.json").string(), scheduler.dump(2) + "\n");
    replace_directory(staged, target);
    log("saved " + target.string());
    if (t.save_total_limit && *t.save_total_limit > 0) {
      auto all = list_checkpoints(checkpoints_dir);
      while (static_cast<int>(all.size()) > *t.save_total_limit) {
        fs::remove_all(all.front());
        all.erase(all.begin());
      }
    }
  };

  // The loop.
  const auto batch_size = static_cast<std::size_t>(t.per_device_train_batch_size);
  const auto accumulation = static_cast<std::int64_t>(t.gradient_accumulation_steps);
  double loss_since_log = 0;
  std::int64_t updates_since_log = 0;
  bool stopped = false;
  std::int64_t skipped_updates = 0;
  std::int64_t samples_seen = 0, tokens_seen = 0;
  const auto train_start = std::chrono::steady_clock::now();
  const std::int64_t start_step = global_step;
  for (std::int64_t epoch = global_step / plan.updates_per_epoch; epoch < plan.epochs && global_step < plan.total_updates && !stopped;
       ++epoch) {
    const auto order = epoch_order(data.size(), t.seed, epoch);
    std::vector<std::vector<std::size_t>> micro_batches;
    for (std::size_t i = 0; i < order.size(); i += batch_size) {
      micro_batches.emplace_back(order.begin() + static_cast<std::ptrdiff_t>(i),
                                 order.begin() + static_cast<std::ptrdiff_t>(std::min(order.size(), i + batch_size)));
    }
    const std::int64_t first_window = global_step % plan.updates_per_epoch;
    for (std::int64_t window = first_window; window < plan.updates_per_epoch && global_step < plan.total_updates; ++window) {
      const auto begin = static_cast<std::size_t>(window * accumulation);
      const auto end = std::min(micro_batches.size(), static_cast<std::size_t>((window + 1) * accumulation));
      if (begin >= end) break;
      std::int64_t window_tokens = 0;
      for (std::size_t m = begin; m < end; ++m) {
        for (auto i : micro_batches[m]) window_tokens += data[i].predicted_tokens;
      }
      // Decode and process the next micro-batch's images while this one runs.
      struct MicroBatch {
        ForwardInputs inputs;
        torch::Tensor labels;
        std::vector<VisionInputs> example_vision;
      };
      std::future<MicroBatch> next;
      auto prefetch = [&](std::size_t m) {
        return std::async(std::launch::async, [&, m] {
          MicroBatch b;
          b.inputs = data.collate(*session, micro_batches[m], b.labels, feature_cache ? &b.example_vision : nullptr);
          return b;
        });
      };
      next = prefetch(begin);
      double window_loss = 0;
      for (std::size_t m = begin; m < end; ++m) {
        MicroBatch batch = next.get();
        if (m + 1 < end) next = prefetch(m + 1);
        auto& inputs = batch.inputs;
        auto loss = micro_batch_loss(model, inputs, batch.labels, window_tokens, mixed_precision, feature_cache.get(),
                                     micro_batches[m], batch.example_vision);
        (scaler ? loss * scaler->scale() : loss).backward();
        window_loss += loss.item<double>();
        samples_seen += static_cast<std::int64_t>(micro_batches[m].size());
        tokens_seen += inputs.attention_mask.sum().item<std::int64_t>();
      }
      const bool overflow = scaler && !scaler->unscale(trainable_tensors);
      const double grad_norm =
          overflow ? std::numeric_limits<double>::quiet_NaN() : clip_grad_norm(trainable_tensors, t.max_grad_norm);
      if (!overflow && (!std::isfinite(window_loss) || !std::isfinite(grad_norm))) {
        optimizer.zero_grad();
        const std::string what = "the loss or the gradients became non-finite at update " +
                                 std::to_string(global_step + 1) + " (loss " + std::to_string(window_loss) +
                                 ", grad norm " + std::to_string(grad_norm) + ")";
        if (t.on_nonfinite != "skip") {
          fail(ErrorCode::internal, "training: " + what +
                                        "; lower the learning rate, use mixed_precision: no, or set "
                                        "training.on_nonfinite: skip to skip such updates");
        }
        log("skipped: " + what + " (on_nonfinite: skip)");
        ++skipped_updates;
        ++global_step;
        continue;
      }
      const double lr = t.learning_rate * schedule_multiplier(t.lr_scheduler_type, global_step - overflow_skips,
                                                              plan.warmup_steps, plan.total_updates);
      if (overflow) {
        optimizer.zero_grad();
        const double was = scaler->scale();
        scaler->update(/*found_inf=*/true);
        ++overflow_skips;
        log("fp16: the gradients overflowed at loss scale " + std::to_string(was) + "; update " +
            std::to_string(global_step + 1) + " skipped, loss scale now " + std::to_string(scaler->scale()));
      } else {
        optimizer.step(lr);
        optimizer.zero_grad();
        if (scaler) scaler->update(/*found_inf=*/false);
      }
      ++global_step;
      total_loss += window_loss;
      loss_since_log += window_loss;
      ++updates_since_log;
      const double epoch_progress =
          static_cast<double>(epoch) + static_cast<double>(end) / static_cast<double>(micro_batches.size());
      if (t.logging_steps > 0 && (global_step % t.logging_steps == 0 || global_step == plan.total_updates)) {
        log_history.push_back({{"epoch", epoch_progress}, {"grad_norm", grad_norm}, {"learning_rate", lr},
                               {"loss", loss_since_log / static_cast<double>(updates_since_log)}, {"step", global_step}});
        std::ostringstream line;
        line << "step " << global_step << "/" << plan.total_updates << " loss " << loss_since_log / updates_since_log
             << " grad_norm " << grad_norm << " lr " << lr << " epoch " << epoch_progress;
        log(line.str());
        loss_since_log = 0;
        updates_since_log = 0;
      }
      TrainingProgress progress;
      progress.step = global_step;
      progress.total_steps = plan.total_updates;
      progress.epoch = epoch_progress;
      progress.loss = window_loss;
      progress.learning_rate = lr;
      progress.grad_norm = grad_norm;
      progress.elapsed_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      const bool epoch_end = window + 1 == plan.updates_per_epoch;
      if ((t.save_strategy == "steps" && t.save_steps > 0 && global_step % t.save_steps == 0) ||
          (t.save_strategy == "epoch" && epoch_end && global_step < plan.total_updates)) {
        save_checkpoint_folder(epoch_progress);
      }
      const bool keep_going = job.on_progress ? job.on_progress(progress) : true;
      if (!keep_going || (job.cancel && job.cancel->load())) {
        if (t.save_strategy == "no" || list_checkpoints(checkpoints_dir).empty() ||
            list_checkpoints(checkpoints_dir).back().filename() != "checkpoint-" + std::to_string(global_step)) {
          save_checkpoint_folder(epoch_progress);
        }
        log("training stopped at update " + std::to_string(global_step) + "; resume with resume_from_checkpoint: latest");
        stopped = true;
        break;
      }
    }
  }
  const double train_runtime = std::chrono::duration<double>(std::chrono::steady_clock::now() - train_start).count();

  TrainingSummary summary;
  summary.trainable_parameters = trainable;
  summary.total_parameters = total;
  summary.completed = !stopped;
  nlohmann::ordered_json metrics;
  metrics["model"] = job.model;
  metrics["model_type"] = model.info().family;
  metrics["completed"] = !stopped;
  metrics["global_step"] = global_step;
  metrics["max_steps"] = plan.total_updates;
  metrics["epochs"] = plan.epochs;
  metrics["num_examples"] = data.size();
  metrics["train_loss"] = global_step > 0 ? total_loss / static_cast<double>(global_step) : 0.0;
  metrics["train_runtime"] = train_runtime;
  const auto steps_this_run = global_step - start_step;
  metrics["train_samples_per_second"] = train_runtime > 0 ? static_cast<double>(samples_seen) / train_runtime : 0.0;
  metrics["train_tokens_per_second"] = train_runtime > 0 ? static_cast<double>(tokens_seen) / train_runtime : 0.0;
  metrics["train_steps_per_second"] = train_runtime > 0 ? static_cast<double>(steps_this_run) / train_runtime : 0.0;
  metrics["trainable_parameters"] = trainable;
  metrics["total_parameters"] = total;
  metrics["trainable_percent"] = 100.0 * static_cast<double>(trainable) / static_cast<double>(total);
  metrics["adapted_modules"] = lora->adapted_paths().size();
  metrics["loss_on"] = t.loss_on_response_only ? "response tokens" : "all tokens";
  metrics["mixed_precision"] = mixed_precision;
  metrics["gradient_checkpointing"] = t.gradient_checkpointing;
  metrics["skipped_updates"] = skipped_updates;
  if (scaler) {
    metrics["fp16_overflow_skipped_updates"] = overflow_skips;
    metrics["fp16_final_loss_scale"] = scaler->scale();
  }
  if (feature_cache) {
    metrics["image_feature_cache"] = {{"examples_cached_MiB", static_cast<double>(feature_cache->bytes()) / (1 << 20)},
                                      {"computed", feature_cache->misses()},
                                      {"reused", feature_cache->hits()},
                                      {"read_from_store", feature_cache->store_hits()},
                                      {"store", feature_store ? feature_store->directory() : ""},
                                      {"encode_seconds", feature_cache->encode_seconds()}};
  }
  metrics["log_history"] = log_history;

  if (!stopped) {
    lora->set_training(false);
    model.set_gradient_checkpointing(false);
    const fs::path adapter_dir = run_dir / "lora_adapter";
    {
      const fs::path staged = staging_dir_for(adapter_dir);
      lora->save(staged.string());
      replace_directory(staged, adapter_dir);
    }
    summary.adapter_dir = adapter_dir.string();
    metrics["adapter_dir"] = summary.adapter_dir;
    if (job.write_merged) {
      // Merge, then check that the merged weights compute what the adapters computed on a training batch.
      torch::Tensor labels;
      std::vector<std::size_t> probe{0};
      ForwardInputs inputs = data.collate(*session, probe, labels);
      torch::NoGradGuard no_grad;
      auto before = model.forward(inputs, nullptr);
      lora->merge_and_unload();
      auto after = model.forward(inputs, nullptr);
      const double diff = (before - after).abs().max().item<double>();
      metrics["merge_max_abs_logit_diff"] = diff;
      log("merged the adapter; max |logit difference| merged vs adapter: " + std::to_string(diff));
      const fs::path merged_dir = run_dir / "final";
      const fs::path staged = staging_dir_for(merged_dir);
      write_merged_model(model, session->folder(), staged.string());
      replace_directory(staged, merged_dir);
      summary.merged_dir = merged_dir.string();
      metrics["merged_dir"] = summary.merged_dir;
    }
  }
  write_file_atomic((run_dir / "metrics.json").string(), metrics.dump(2) + "\n");
  summary.metrics = metrics;
  return summary;
}

void write_merged_model(VisionLanguageModel& model, const std::string& base_folder, const std::string& folder) {
  NamedTensors tensors;
  std::set<std::pair<const void*, std::int64_t>> seen;
  auto config = read_json_file((fs::path(base_folder) / "config.json").string());
  bool tied = config.value("tie_word_embeddings", false);
  if (config.contains("text_config") && config["text_config"].is_object() && config["text_config"].contains("tie_word_embeddings")) {
    tied = tied || config["text_config"].value("tie_word_embeddings", false);
  }
  torch::Tensor head, embed;
  for (const auto& item : model.module().named_parameters(/*recurse=*/true)) {
    if (item.key() == "lm_head.weight") head = item.value();
    if (item.key().size() >= 23 && item.key().compare(item.key().size() - 23, 23, "embed_tokens.weight") == 0) embed = item.value();
  }
  const bool still_tied = tied && head.defined() && embed.defined() && head.data_ptr() == embed.data_ptr();
  for (const auto& item : model.module().named_parameters(/*recurse=*/true)) {
    if (still_tied && item.key() == "lm_head.weight") continue;
    tensors.emplace_back(item.key(), item.value().detach().to(torch::kCPU).contiguous());
  }
  save_checkpoint(folder, tensors, 5ull << 30, {{"format", "pt"}});
  if (tied && !still_tied) {
    // modules_to_save trained a copy of the head: the merged model's head is its own tensor now.
    config["tie_word_embeddings"] = false;
    if (config.contains("text_config") && config["text_config"].is_object()) config["text_config"]["tie_word_embeddings"] = false;
  }
  config["dtype"] = model.dtype() == torch::kBFloat16 ? "bfloat16" : model.dtype() == torch::kHalf ? "float16" : "float32";
  write_file_atomic((fs::path(folder) / "config.json").string(), config.dump(2) + "\n");
  copy_side_files(base_folder, folder);
}

}  // namespace vlm
