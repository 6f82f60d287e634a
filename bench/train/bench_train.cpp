// LoRA training throughput on the checkpoint and CSV that tools/bench/bench_train.py writes (--model-dir): batch 1 x
// accumulation --grad-accum, LoRA r 16 / alpha 32 on q_proj + v_proj, AdamW lr 2e-4, clipping 1.0, the same examples in
// the same order as the Python peer. One untimed warm-up update, then --steps timed updates. Prints one JSON line with
// the fields the Python peer prints: samples/s, tokens/s, seconds per update, peak RSS, and the share of time spent in
// data preparation, the vision tower + projector, the LM forward, backward and the optimizer.
//
// The step is the trainer's: logits only for the labelled positions, and image features from the trainer's
// ImageFeatureCache, which computes each example's features once and reuses them in later epochs (the 8-row CSV
// means each update of 8 samples is one epoch, so after the warm-up update every feature is reused).
// --feature-cache-mb 0 keeps nothing: every step runs the vision tower, as in a first epoch.
// --feature-store DIR puts an ImageFeatureStore behind the cache: an earlier run with the same folder (another LoRA
// variant of an experiment grid) has stored the features, so even a first epoch reads them instead of running the
// tower; features computed here are stored for the next run.
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "model/lora.h"
#include "session/session.h"
#include "train/data.h"
#include "train/image_features.h"
#include "train/optimizer.h"
#include "train/training_step.h"

using namespace vlm;
using Clock = std::chrono::steady_clock;

namespace {
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Peak resident set (VmHWM) in MiB; not ru_maxrss, which a child inherits from the process that forked it.
double peak_rss_mib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
  }
  return -1;
}
}  // namespace

int main(int argc, char** argv) {
  std::string model_dir, dtype = "fp32", store_dir;
  int steps = 3, warmup = 1, grad_accum = 8, threads = 0;
  std::int64_t cache_mb = 4096;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", arg.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (arg == "--model-dir") model_dir = value();
    else if (arg == "--steps") steps = std::stoi(value());
    else if (arg == "--warmup") warmup = std::stoi(value());
    else if (arg == "--grad-accum") grad_accum = std::stoi(value());
    else if (arg == "--dtype") dtype = value();
    else if (arg == "--threads") threads = std::stoi(value());
    else if (arg == "--feature-cache-mb") cache_mb = std::stoll(value());
    else if (arg == "--feature-store") store_dir = value();
    else {
      std::fprintf(stderr, "usage: bench_train --model-dir DIR [--steps N] [--warmup N] [--grad-accum N] [--dtype fp32|bf16] "
                           "[--threads N] [--feature-cache-mb N] [--feature-store DIR]\n");
      return 2;
    }
  }
  if (model_dir.empty()) {
    std::fprintf(stderr, "bench_train: --model-dir is required (made by tools/bench/bench_train.py)\n");
    return 2;
  }
  if (threads > 0) torch::set_num_threads(threads);
  try {
    SessionOptions options;
    options.model = model_dir;
    auto session = Session::open(options);
    auto& model = session->model();
    TrainingDataOptions data_options;
    data_options.csv = model_dir + "/bench_data/train.csv";
    auto data = TrainingDataset::build(*session, data_options);

    LoraConfig lora_config;
    lora_config.r = 16;
    lora_config.alpha = 32;
    torch::manual_seed(0);
    auto lora = LoraModel::create(model, lora_config);
    lora->set_training(true);
    AdamWOptions adam;
    adam.learning_rate = 2e-4;
    AdamW optimizer(lora->parameters(), adam);
    std::vector<torch::Tensor> trainable;
    for (const auto& [name, t] : lora->parameters()) trainable.push_back(t);
    const std::string mixed = dtype == "bf16" ? "bf16" : "no";
    const std::string frozen = image_features_frozen_reason(model, *lora);
    if (!frozen.empty()) throw std::runtime_error("image features are not frozen: " + frozen);
    std::unique_ptr<ImageFeatureStore> store;
    if (!store_dir.empty()) {
      store = std::make_unique<ImageFeatureStore>(store_dir, image_feature_fingerprint(session->folder(), model, mixed),
                                                  std::int64_t{1} << 40);
    }
    ImageFeatureCache cache(cache_mb * 1024 * 1024, store.get());

    double t_data = 0, t_vision = 0, t_forward = 0, t_backward = 0, t_optimizer = 0, t_total = 0;
    std::int64_t samples = 0, tokens = 0;
    std::size_t next = 0;
    for (int update = 0; update < warmup + steps; ++update) {
      const bool timed = update >= warmup;
      const auto start = Clock::now();
      std::int64_t window_tokens = 0;
      std::vector<std::size_t> window;
      for (int m = 0; m < grad_accum; ++m) {
        window.push_back(next % data.size());
        window_tokens += data[window.back()].predicted_tokens;
        ++next;
      }
      double d = 0, f = 0, b = 0;
      const double vision_before = cache.encode_seconds();
      for (auto index : window) {
        auto t0 = Clock::now();
        torch::Tensor labels;
        std::vector<VisionInputs> example_vision;
        auto batch = data.collate(*session, {index}, labels, &example_vision);
        d += seconds_since(t0);
        t0 = Clock::now();
        auto loss = micro_batch_loss(model, batch, labels, window_tokens, mixed, &cache, {index}, example_vision);
        f += seconds_since(t0);
        t0 = Clock::now();
        loss.backward();
        b += seconds_since(t0);
        if (timed) {
          ++samples;
          tokens += batch.input_ids.numel();
        }
      }
      auto t0 = Clock::now();
      clip_grad_norm(trainable, 1.0);
      optimizer.step(2e-4);
      optimizer.zero_grad();
      const double o = seconds_since(t0);
      const double v = cache.encode_seconds() - vision_before;
      if (timed) {
        t_data += d;
        t_vision += v;
        t_forward += f - v;
        t_backward += b;
        t_optimizer += o;
        t_total += seconds_since(start);
      }
      std::fprintf(stderr, "update %d%s: %.2f s\n", update + 1, timed ? "" : " (warm-up)", seconds_since(start));
    }
    std::printf(
        "{\"impl\": \"vlmrt\", \"dtype\": \"%s\", \"updates\": %d, \"grad_accum\": %d, \"samples_per_second\": %.4f, "
        "\"tokens_per_second\": %.2f, \"seconds_per_update\": %.3f, \"peak_rss_mib\": %.1f, \"share\": {\"data\": %.3f, "
        "\"vision\": %.3f, \"lm_forward\": %.3f, \"backward\": %.3f, \"optimizer\": %.3f}, \"feature_cache_mb\": %lld, "
        "\"features_computed\": %lld, \"features_read_from_store\": %lld, \"trainable_parameters\": %lld, "
        "\"threads\": %d}\n",
        dtype.c_str(), steps, grad_accum, samples / t_total, tokens / t_total, t_total / steps, peak_rss_mib(),
        t_data / t_total, t_vision / t_total, t_forward / t_total, t_backward / t_total, t_optimizer / t_total,
        static_cast<long long>(cache_mb), static_cast<long long>(cache.misses()),
        static_cast<long long>(cache.store_hits()), static_cast<long long>(lora->trainable_parameter_count()),
        torch::get_num_threads());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_train: %s\n", e.what());
    return 1;
  }
  return 0;
}
