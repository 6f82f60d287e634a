// LoRA fine-tuning of one model with one LoRA variant, with the Hugging Face Trainer's semantics (see
// core/train/README.md): data from a CSV, AdamW, warmup + decay schedule, gradient accumulation normalised by the
// number of predicted tokens, clipping, checkpoints with resume, and the outputs of a run folder:
//   <run_dir>/checkpoints/checkpoint-<step>/   adapter, optimizer, scheduler, RNG, data position, trainer_state.json
//   <run_dir>/lora_adapter/                    adapter_config.json + adapter_model.safetensors (PEFT format)
//   <run_dir>/final/                           the merged model in the Hugging Face format
//   <run_dir>/metrics.json                     loss history, runtime, samples/s, steps, trainable parameters
#pragma once

#include <nlohmann/json.hpp>

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>

#include "model/registry.h"
#include "pipeline/config.h"
#include "processor/image_processor.h"

namespace vlm {

struct TrainingProgress {
  std::int64_t step = 0;         // optimizer updates done
  std::int64_t total_steps = 0;  // planned updates
  double epoch = 0;              // fractional
  double loss = 0;               // the last update's loss
  double learning_rate = 0;      // the rate the last update used
  double grad_norm = 0;          // before clipping
  double elapsed_seconds = 0;
};

struct TrainingJob {
  std::string model;                 // a model folder or an offline Hub id
  LoadOptions load;                  // dtype and device of the base weights
  ImageProcessorOverrides image;     // pixel limits
  DataConfig data;                   // train_csv and its columns, num_workers, max_train_samples
  std::string data_base_dir;         // relative image paths and CSV paths resolve against it ("" = cwd)
  LoraVariant lora;
  // Start from this PEFT adapter folder instead of freshly initialised adapters (its adapter_config.json then
  // decides the LoRA settings; `lora` is ignored).
  std::string init_adapter_dir;
  bool freeze_vision_tower = true;   // no adapter in the vision tower unless targeted explicitly and unfrozen
  bool freeze_projector = true;
  bool freeze_language_model = false;
  TrainingConfig training;
  std::string run_dir;               // created when missing
  bool write_merged = true;          // <run_dir>/final/
  // Called after every optimizer update and for every log line. Returning false from on_progress stops the run
  // after saving a checkpoint (a later run with resume_from_checkpoint "latest" continues it).
  std::function<bool(const TrainingProgress&)> on_progress;
  std::function<void(const std::string&)> on_log;
  const std::atomic<bool>* cancel = nullptr;
};

struct TrainingSummary {
  nlohmann::ordered_json metrics;    // the content of metrics.json
  std::string adapter_dir;           // <run_dir>/lora_adapter
  std::string merged_dir;            // <run_dir>/final, "" when not written
  std::int64_t trainable_parameters = 0, total_parameters = 0;
  bool completed = false;            // false when stopped by on_progress or cancel (a checkpoint was saved)
};

// Trains and writes the run folder. Every problem with the data (missing image, row too long for max_seq_length)
// is reported by a preflight pass before the first step, all of them in one vlm::Error naming the CSV rows.
TrainingSummary run_training(const TrainingJob& job);

}  // namespace vlm
