// Helper program of test_train: trains the curve job of test_trainer.cpp into argv[1] with checkpoints every 2
// updates and kills itself with SIGKILL right after update argv[2], as a crash or an OOM kill would.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "train/trainer.h"

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: train_until_killed RUN_DIR KILL_AFTER_UPDATE FIXTURES_DIR\n");
    return 2;
  }
  const std::string fixtures = argv[3];
  const long kill_after = std::atol(argv[2]);
  vlm::TrainingJob job;
  job.model = fixtures + "/session/qwen2_vl_tiny";
  job.data.train_csv = fixtures + "/train/data/train.csv";
  job.lora.r = 4;
  job.lora.alpha = 8;
  job.lora.dropout = 0.1;
  job.lora.target_modules = std::vector<std::string>{"q_proj", "v_proj"};
  auto& t = job.training;
  t.per_device_train_batch_size = 2;
  t.gradient_accumulation_steps = 2;
  t.max_steps = 6;
  t.learning_rate = 2e-3;
  t.warmup_ratio = 0.1;
  t.weight_decay = 0.01;
  t.max_grad_norm = 0.05;
  t.logging_steps = 1;
  t.save_strategy = "steps";
  t.save_steps = 2;
  t.resume_from_checkpoint = "latest";
  job.run_dir = argv[1];
  job.write_merged = false;
  job.on_progress = [&](const vlm::TrainingProgress& p) {
    if (p.step == kill_after) std::raise(SIGKILL);
    return true;
  };
  try {
    vlm::run_training(job);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  return 0;
}
