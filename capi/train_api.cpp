// C API: step-by-step LoRA training on a session (include/vlmrt.h, "LoRA training, step by step").
#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "capi_internal.h"
#include "image/image.h"
#include "session_handle.h"
#include "train/step_trainer.h"

struct vlm_trainer {
  vlm_session* session = nullptr;
  std::unique_ptr<vlm::StepTrainer> trainer;
};

using namespace vlm::capi;

namespace {

std::string text_or(const char* s, const char* fallback) { return s != nullptr && *s != '\0' ? s : fallback; }

vlm::StepTrainerOptions step_options_of(const vlm_train_options& o) {
  vlm::StepTrainerOptions s;
  s.lora.r = o.r;
  s.lora.alpha = o.alpha;
  s.lora.dropout = o.dropout;
  if (o.target_regex != nullptr && *o.target_regex != '\0') {
    s.lora.target_regex = std::string(o.target_regex);
  } else if (o.num_target_modules > 0) {
    require(o.target_modules, "options->target_modules");
    std::vector<std::string> targets;
    for (size_t i = 0; i < o.num_target_modules; ++i) {
      require(o.target_modules[i], ("options->target_modules[" + std::to_string(i) + "]").c_str());
      targets.emplace_back(o.target_modules[i]);
    }
    s.lora.target_modules = targets;
  }
  s.lora.use_rslora = o.use_rslora != 0;
  s.lora.use_dora = o.use_dora != 0;
  s.scope.vision_tower = o.train_vision_tower != 0;
  s.scope.projector = o.train_projector != 0;
  if (o.init_adapter != nullptr) s.init_adapter_dir = o.init_adapter;
  s.adam.learning_rate = o.learning_rate;
  s.adam.weight_decay = o.weight_decay;
  s.adam.beta1 = o.adam_beta1;
  s.adam.beta2 = o.adam_beta2;
  s.adam.epsilon = o.adam_epsilon;
  s.lr_scheduler_type = text_or(o.lr_scheduler_type, "constant");
  if (s.lr_scheduler_type != "constant" && s.lr_scheduler_type != "constant_with_warmup" &&
      s.lr_scheduler_type != "linear" && s.lr_scheduler_type != "cosine") {
    vlm::fail(vlm::ErrorCode::invalid_argument, "options->lr_scheduler_type must be constant, constant_with_warmup, "
                                                "linear or cosine, not \"" + s.lr_scheduler_type + "\"");
  }
  if ((s.lr_scheduler_type == "linear" || s.lr_scheduler_type == "cosine") && o.total_steps <= 0) {
    vlm::fail(vlm::ErrorCode::invalid_argument, "options->total_steps must be > 0 for the " + s.lr_scheduler_type + " schedule");
  }
  s.warmup_steps = o.warmup_steps;
  s.total_steps = o.total_steps;
  s.max_grad_norm = o.max_grad_norm;
  s.mixed_precision = text_or(o.mixed_precision, "no");
  if (s.mixed_precision != "no" && s.mixed_precision != "bf16" && s.mixed_precision != "fp16") {
    vlm::fail(vlm::ErrorCode::invalid_argument, "options->mixed_precision must be \"no\", \"bf16\" or \"fp16\"");
  }
  s.gradient_checkpointing = o.gradient_checkpointing != 0;
  s.loss_on_response_only = o.loss_on_response_only != 0;
  if (o.max_seq_length < 0) vlm::fail(vlm::ErrorCode::invalid_argument, "options->max_seq_length must be >= 0");
  if (o.max_seq_length > 0) s.max_seq_length = o.max_seq_length;
  if (o.micro_batch_size < 0) vlm::fail(vlm::ErrorCode::invalid_argument, "options->micro_batch_size must be >= 0");
  s.micro_batch_size = o.micro_batch_size;
  s.seed = o.seed;
  if (!(o.learning_rate >= 0) || !std::isfinite(o.learning_rate)) {
    vlm::fail(vlm::ErrorCode::invalid_argument, "options->learning_rate must be a finite number >= 0");
  }
  return s;
}

}  // namespace

extern "C" {

void vlm_train_options_init(vlm_train_options* options) {
  if (options == nullptr) return;
  std::memset(options, 0, sizeof(*options));
  options->struct_size = sizeof(*options);
  options->r = 8;
  options->alpha = 8;
  options->learning_rate = 5e-5;
  options->adam_beta1 = 0.9;
  options->adam_beta2 = 0.999;
  options->adam_epsilon = 1e-8;
  options->max_grad_norm = 1.0;
  options->loss_on_response_only = 1;
  options->seed = 42;
}

vlm_status vlm_trainer_create(vlm_session* session, const vlm_train_options* options, vlm_trainer** out_trainer) {
  return guard([&] {
    require(session, "session");
    require(out_trainer, "out_trainer");
    check_struct_size(options, sizeof(vlm_train_options), "vlm_train_options");
    if (session->has_trainer) {
      vlm::fail(vlm::ErrorCode::invalid_argument, "this session already has a trainer; free it first (vlm_trainer_free)");
    }
    auto handle = std::make_unique<vlm_trainer>();
    handle->session = session;
    handle->trainer = std::make_unique<vlm::StepTrainer>(*session->session, step_options_of(*options));
    session->has_trainer = true;
    *out_trainer = handle.release();
  });
}

void vlm_trainer_free(vlm_trainer* trainer) {
  if (trainer == nullptr) return;
  try {
    trainer->session->has_trainer = false;
    delete trainer;
  } catch (...) {
  }
}

vlm_status vlm_train_step(vlm_trainer* trainer, const vlm_train_example* examples, size_t num_examples,
                          vlm_train_step_result* out_result) {
  return guard([&] {
    require(trainer, "trainer");
    require(out_result, "out_result");
    if (num_examples == 0) vlm::fail(vlm::ErrorCode::invalid_argument, "num_examples must be > 0");
    require(examples, "examples");
    std::vector<vlm::StepExample> inputs(num_examples);
    for (size_t i = 0; i < num_examples; ++i) {
      const auto& e = examples[i];
      const std::string where = "examples[" + std::to_string(i) + "]";
      require(e.instruction, (where + ".instruction").c_str());
      require(e.response, (where + ".response").c_str());
      inputs[i].instruction = e.instruction;
      inputs[i].response = e.response;
      if (e.image_path != nullptr && e.rgb != nullptr) {
        vlm::fail(vlm::ErrorCode::invalid_argument, where + ": give image_path or rgb, not both");
      }
      if (e.image_path != nullptr) {
        inputs[i].image = vlm::load_image(e.image_path);
      } else if (e.rgb != nullptr) {
        if (e.width == 0 || e.height == 0) vlm::fail(vlm::ErrorCode::invalid_argument, where + ": width and height must be > 0");
        const size_t row = static_cast<size_t>(e.width) * 3;
        const size_t stride = e.stride == 0 ? row : e.stride;
        if (stride < row) vlm::fail(vlm::ErrorCode::invalid_argument, where + ": stride is smaller than width * 3");
        vlm::RgbImage image;
        image.width = static_cast<int>(e.width);
        image.height = static_cast<int>(e.height);
        image.pixels.resize(row * e.height);
        for (uint32_t y = 0; y < e.height; ++y) std::memcpy(image.pixels.data() + y * row, e.rgb + y * stride, row);
        inputs[i].image = std::move(image);
      }
    }
    auto result = trainer->trainer->step(inputs);
    out_result->loss = result.loss;
    out_result->grad_norm = result.grad_norm;
    out_result->learning_rate = result.learning_rate;
    out_result->step = result.step;
    out_result->num_predicted_tokens = result.predicted_tokens;
  });
}

vlm_status vlm_trainer_save_adapter(vlm_trainer* trainer, const char* folder) {
  return guard([&] {
    require(trainer, "trainer");
    require(folder, "folder");
    trainer->trainer->save_adapter(folder);
  });
}

vlm_status vlm_trainer_save_state(vlm_trainer* trainer, const char* folder) {
  return guard([&] {
    require(trainer, "trainer");
    require(folder, "folder");
    trainer->trainer->save_state(folder);
  });
}

vlm_status vlm_trainer_load_state(vlm_trainer* trainer, const char* folder) {
  return guard([&] {
    require(trainer, "trainer");
    require(folder, "folder");
    trainer->trainer->load_state(folder);
  });
}

vlm_status vlm_trainer_export_merged(vlm_trainer* trainer, const char* folder) {
  return guard([&] {
    require(trainer, "trainer");
    require(folder, "folder");
    trainer->trainer->export_merged(folder);
  });
}

vlm_status vlm_trainer_parameter_counts(const vlm_trainer* trainer, int64_t* out_trainable, int64_t* out_total) {
  return guard([&] {
    require(trainer, "trainer");
    const auto trainable = trainer->trainer->trainable_parameters();
    const auto total = trainer->trainer->total_parameters();
    if (out_trainable != nullptr) *out_trainable = trainable;
    if (out_total != nullptr) *out_total = total;
  });
}

vlm_status vlm_session_load_adapter(vlm_session* session, const char* adapter_folder) {
  return guard([&] {
    require(session, "session");
    require(adapter_folder, "adapter_folder");
    session->session->load_adapter(adapter_folder);
  });
}

}  // extern "C"
