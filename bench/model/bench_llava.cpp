// LLaVA inference speed, the native half of tools/bench/bench_llava.py (which writes the checkpoint, times
// transformers on it in the same run and prints the ratios):
//  - time to first token: prefill of one prompt with one image (CLIP tower + projector + language model) and the
//    argmax of the last logits,
//  - decode: one-token steps through the KV cache, reported as tokens per second.
//
//   bench_llava --model DIR [--prompt N] [--steps N] [--iters N] [--threads N] [--dtype float32|bfloat16]
//
// Prints one JSON line.
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "base/error.h"
#include "io/hf_files.h"
#include "model/llava.h"
#include "model/registry.h"

namespace {

[[noreturn]] void usage(const std::string& message) {
  std::fprintf(stderr,
               "%s\nusage: bench_llava --model DIR [--prompt N] [--steps N] [--iters N] [--threads N] "
               "[--dtype float32|bfloat16]\n",
               message.c_str());
  std::exit(2);
}

double now_ms() {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  std::string model_dir, dtype_name = "float32";
  long prompt = 640, steps = 32, iters = 3, threads = 0;
  for (int i = 1; i < argc; i += 2) {
    const std::string arg = argv[i];
    if (i + 1 >= argc) usage("missing value after " + arg);
    const std::string value = argv[i + 1];
    if (arg == "--model") model_dir = value;
    else if (arg == "--dtype") dtype_name = value;
    else if (arg == "--prompt") prompt = std::stol(value);
    else if (arg == "--steps") steps = std::stol(value);
    else if (arg == "--iters") iters = std::stol(value);
    else if (arg == "--threads") threads = std::stol(value);
    else usage("unknown option " + arg);
  }
  if (model_dir.empty()) usage("--model is required");
  try {
    const auto config = vlm::LlavaConfig::parse(vlm::ModelConfig::load(model_dir + "/config.json"));
    vlm::LoadOptions options;
    options.dtype = vlm::parse_model_dtype(dtype_name);
    const double load_start = now_ms();
    auto model = vlm::load_model(model_dir, options);
    const double load_ms = now_ms() - load_start;
    // After loading: the first load_model sets libtorch's thread count to every CPU unless the environment names
    // one (VLMRT_NUM_THREADS, OMP_NUM_THREADS), which would override a count set before it.
    if (threads > 0) torch::set_num_threads(static_cast<int>(threads));
    const auto& info = model->info();

    // The prompt as tools/bench/bench_llava.py builds it: BOS, text, the image's tokens, text; `prompt` tokens.
    const long image_tokens = info.tokens_per_image;
    if (prompt <= image_tokens + 2) usage("--prompt must exceed the image's tokens + 2");
    const long head = 6;
    std::vector<std::int64_t> ids{1};
    for (long i = 1; i < prompt; ++i) {
      const bool image = i >= head && i < head + image_tokens;
      ids.push_back(image ? info.image_token_id : 3 + (i * 7919) % 200);
    }
    vlm::ForwardInputs prefill;
    prefill.input_ids = torch::tensor(ids).unsqueeze(0);
    prefill.all_logits = false;
    torch::manual_seed(0);
    const auto size = config.vision.image_size;
    prefill.vision.pixel_values = torch::randn({1, 3, size, size});

    torch::NoGradGuard no_grad;
    std::vector<double> ttft_ms, step_ms;
    for (long it = 0; it < iters + 1; ++it) {  // the first iteration warms up
      auto state = model->new_state(1);
      double t0 = now_ms();
      auto logits = model->forward(prefill, state.get());
      auto next = logits.select(1, 0).argmax(-1).unsqueeze(1);
      if (it > 0) ttft_ms.push_back(now_ms() - t0);
      for (long s = 0; s < steps; ++s) {
        vlm::ForwardInputs step;
        step.input_ids = next;
        step.all_logits = false;
        t0 = now_ms();
        auto out = model->forward(step, state.get());
        next = out.select(1, 0).argmax(-1).unsqueeze(1);
        if (it > 0) step_ms.push_back(now_ms() - t0);
      }
    }
    const double step = median(step_ms);
    std::printf(
        "{\"family\": \"%s\", \"dtype\": \"%s\", \"threads\": %d, \"prompt\": %ld, \"image_tokens\": %ld, "
        "\"load_ms\": %.2f, \"ttft_ms_median\": %.3f, \"ttft_ms_min\": %.3f, \"decode_step_ms_median\": %.3f, "
        "\"decode_tokens_per_s\": %.3f, \"decode_steps\": %zu}\n",
        info.family.c_str(), dtype_name.c_str(), torch::get_num_threads(), prompt, image_tokens, load_ms,
        median(ttft_ms), *std::min_element(ttft_ms.begin(), ttft_ms.end()), step, 1000.0 / step, step_ms.size());
  } catch (const vlm::Error& e) {
    std::fprintf(stderr, "bench_llava: %s\n", e.what());
    return 1;
  }
  return 0;
}
