// Times vlmrt's model forward, the native half of tools/bench/bench_model.py (which times transformers on the same
// checkpoint in the same run and prints the ratios):
//  - prefill of one prompt (text, plus one image of --grid-h x --grid-w patches when the model has a vision tower),
//  - decode steps of one token through the KV cache,
//  - the KV cache itself: vlmrt's preallocated buffer against re-concatenating the past at every step.
// With --generate N it instead runs the generation engine (greedy, exactly N new tokens) on --batch rows, each
// the same prompt with its own image, and reports time to first token, decode tokens/s and the peak RSS, and the
// memory's read rate around each run (a read of the language model's weights, which each decode step streams):
// batch-1 decoding cannot beat read_GBps / decode_read_bytes steps per second (decode_read_bytes: the weights'
// size, with the coded copies' size for the projections that have one; VLMRT_CODED_WEIGHTS=0 turns those off).
//
//   bench_model --model DIR [--prompt N] [--grid-h N] [--grid-w N] [--steps N] [--iters N] [--threads N]
//               [--dtype float32|bfloat16] [--generate N] [--batch B] [--serve] [--isa NAME]
//
// --isa caps the decode kernels' instruction set (portable, avx2, avx512, avx512_bf16; default: the best the CPU
// has); the JSON line says which one ran. The coded weights of a bfloat16 model (model/matvec.h; VLMRT_CODED_WEIGHTS=0
// leaves them out) are made after the load and timed apart from it (coding_ms).
//
// Prints one JSON line.
#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "base/error.h"
#include "generate/generate.h"
#include "model/layers.h"
#include "model/matvec.h"
#include "model/registry.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace {

constexpr const char* kUsage =
    "usage: bench_model --model DIR [--prompt N] [--grid-h N] [--grid-w N] [--steps N] [--iters N] [--threads N] "
    "[--dtype float32|bfloat16] [--generate N] [--batch B] [--serve] [--isa NAME]\n";

[[noreturn]] void usage(const std::string& message) {
  std::fprintf(stderr, "%s\n%s", message.c_str(), kUsage);
  std::exit(2);
}

double now_ms() {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// VmHWM of this process: unlike getrusage's ru_maxrss it is not inherited across exec from the parent (here a
// Python driver that built the checkpoint).
double peak_rss_mb() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;  // kB
  }
  return -1.0;
}

// The language model's weights, each once (a tied LM head is its embedding): what every decode step reads from
// memory. The vision tower's parameters are left out (names with "visual" or "vision").
std::vector<torch::Tensor> decode_weights(vlm::VisionLanguageModel& model) {
  std::vector<torch::Tensor> weights;
  std::vector<const void*> seen;
  for (const auto& item : model.module().named_parameters()) {
    const auto& name = item.key();
    if (name.find("visual") != std::string::npos || name.find("vision") != std::string::npos) continue;
    const void* data = item.value().data_ptr();
    if (std::find(seen.begin(), seen.end(), data) != seen.end()) continue;
    seen.push_back(data);
    weights.push_back(item.value());
  }
  return weights;
}

// The bytes a decode step reads of `weights`: a projection weight with a coded copy (model/matvec.h) counts that
// copy's size instead of its own.
double read_bytes_of(vlm::VisionLanguageModel& model, const std::vector<torch::Tensor>& weights) {
  std::vector<std::pair<const void*, double>> coded;
  for (const auto& item : model.module().named_modules("", /*include_self=*/false)) {
    auto projection = std::dynamic_pointer_cast<vlm::ProjectionImpl>(item.value());
    if (projection && projection->coded_weight()) {
      coded.emplace_back(projection->weight.data_ptr(), static_cast<double>(projection->coded_weight()->coded_bytes()));
    }
  }
  double bytes = 0;
  for (const auto& t : weights) {
    auto found = std::find_if(coded.begin(), coded.end(), [&](const auto& c) { return c.first == t.data_ptr(); });
    bytes += found != coded.end() ? found->second : static_cast<double>(t.nbytes());
  }
  return bytes;
}

double bytes_of(const std::vector<torch::Tensor>& tensors) {
  double bytes = 0;
  for (const auto& t : tensors) bytes += static_cast<double>(t.nbytes());
  return bytes;
}

#if defined(__x86_64__)
// GCC 12 flags the deliberately undefined source operand inside _mm512_reduce_add_epi64, as in matvec.cpp.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

// Sums 64-byte blocks [begin, end) of `p` as 64-bit lanes, four vectors per step, asking for the data 4 KB ahead as
// the decode kernels do (without that a Zen 5 EPYC streams 10-25 % slower).
__attribute__((target("avx512f"))) std::uint64_t sum_blocks_avx512(const char* p, std::int64_t begin,
                                                                    std::int64_t end) {
  __m512i a = _mm512_setzero_si512(), b = a, c = a, d = a;
  std::int64_t i = begin;
  for (; i + 4 <= end; i += 4) {
    const char* at = p + i * 64;
    _mm_prefetch(at + 4096, _MM_HINT_T0);
    _mm_prefetch(at + 4096 + 64, _MM_HINT_T0);
    _mm_prefetch(at + 4096 + 128, _MM_HINT_T0);
    _mm_prefetch(at + 4096 + 192, _MM_HINT_T0);
    a = _mm512_add_epi64(a, _mm512_loadu_si512(at));
    b = _mm512_add_epi64(b, _mm512_loadu_si512(at + 64));
    c = _mm512_add_epi64(c, _mm512_loadu_si512(at + 128));
    d = _mm512_add_epi64(d, _mm512_loadu_si512(at + 192));
  }
  for (; i < end; ++i) a = _mm512_add_epi64(a, _mm512_loadu_si512(p + i * 64));
  const __m512i sum = _mm512_add_epi64(_mm512_add_epi64(a, b), _mm512_add_epi64(c, d));
  return static_cast<std::uint64_t>(_mm512_reduce_add_epi64(sum));
}
#endif

std::uint64_t sum_blocks(const char* p, std::int64_t begin, std::int64_t end) {
#if defined(__x86_64__)
  if (__builtin_cpu_supports("avx512f")) return sum_blocks_avx512(p, begin, end);
#endif
  std::uint64_t a = 0, b = 0;
  for (std::int64_t i = begin * 8; i < end * 8; i += 2) {
    std::uint64_t x, y;
    std::memcpy(&x, p + i * 8, 8);
    std::memcpy(&y, p + i * 8 + 8, 8);
    a += x;
    b += y;
  }
  return a + b;
}

// The memory's read rate at this moment, in GB/s: libtorch's threads read every whole 64-byte block of `weights`
// once, each tensor split between them as the decode kernels split a projection. On a shared host this rate moves
// by half within minutes, and batch-1 decoding runs at it; printed next to each generation so its speed can be read
// against it.
double read_rate_gbps(const std::vector<torch::Tensor>& weights) {
  std::atomic<std::uint64_t> checksum{0};
  double bytes = 0;
  const double start = now_ms();
  for (const auto& t : weights) {
    const auto* p = static_cast<const char*>(t.data_ptr());
    const auto blocks = static_cast<std::int64_t>(t.nbytes() / 64);
    bytes += static_cast<double>(blocks * 64);
    at::parallel_for(0, blocks, 1024, [&](std::int64_t begin, std::int64_t end) {
      checksum.fetch_add(sum_blocks(p, begin, end), std::memory_order_relaxed);
    });
  }
  const double seconds = (now_ms() - start) / 1000.0;
  volatile std::uint64_t sink = checksum.load();  // keeps the reads
  (void)sink;
  return bytes / seconds / 1e9;
}

// Greedy generation of exactly `new_tokens` tokens (EOS suppressed, as min_new_tokens does in transformers) for the
// batch; returns {time to first token, seconds from the first to the last token} and checks every row got them.
std::pair<double, double> timed_generate(vlm::VisionLanguageModel& model, const vlm::ForwardInputs& prompt,
                                         int new_tokens) {
  vlm::GenerationOptions options;
  options.max_new_tokens = new_tokens;
  options.min_new_tokens = new_tokens;
  options.do_sample = false;
  std::vector<double> step_done;  // when row 0 received each token (rows of one step arrive together)
  options.on_token = [&](std::int64_t row, std::int64_t) {
    if (row == 0) step_done.push_back(now_ms());
    return true;
  };
  const double t0 = now_ms();
  auto result = vlm::generate(model, prompt, options);
  for (const auto& row : result.tokens) {
    if (static_cast<int>(row.size()) != new_tokens) vlm::fail(vlm::ErrorCode::internal, "generate stopped early");
  }
  return {step_done.front() - t0, (step_done.back() - step_done.front()) / 1000.0};
}

}  // namespace

int main(int argc, char** argv) {
  std::string model_dir, dtype_name = "float32";
  long prompt = 128, grid_h = 16, grid_w = 16, steps = 32, iters = 5, threads = 0, generate = 0, batch = 1;
  bool serve = false;
  for (int i = 1; i < argc; i += 2) {
    const std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::printf("%s", kUsage);
      return 0;
    }
    if (arg == "--serve") {
      serve = true;
      --i;  // takes no value
      continue;
    }
    if (i + 1 >= argc) usage("missing value after " + arg);
    const std::string value = argv[i + 1];
    auto count = [&](long least) {
      char* end = nullptr;
      const long n = std::strtol(value.c_str(), &end, 10);
      if (value.empty() || *end != '\0' || n < least) {
        usage(arg + " takes a whole number of at least " + std::to_string(least) + ", not '" + value + "'");
      }
      return n;
    };
    if (arg == "--model") model_dir = value;
    else if (arg == "--dtype") dtype_name = value;
    else if (arg == "--prompt") prompt = count(1);
    else if (arg == "--grid-h") grid_h = count(0);
    else if (arg == "--grid-w") grid_w = count(0);
    else if (arg == "--steps") steps = count(1);
    else if (arg == "--iters") iters = count(1);
    else if (arg == "--threads") threads = count(0);
    else if (arg == "--generate") generate = count(0);
    else if (arg == "--batch") batch = count(1);
    else if (arg == "--isa") {
      const auto isa = vlm::kernel_isa_named(value);
      if (!isa) usage("--isa takes portable, avx2, avx512 or avx512_bf16, not " + value);
      vlm::limit_kernel_isa(*isa);
    } else usage("unknown option " + arg);
  }
  if (model_dir.empty()) usage("--model is required");
  if (serve && generate == 0) usage("--serve times generations: give --generate N");
  try {
    vlm::LoadOptions options;
    options.dtype = vlm::parse_model_dtype(dtype_name);
    // The coded weights (on by default, VLMRT_CODED_WEIGHTS=0 off) are made after the load, to time them apart;
    // as evaluation does, only where the decode steps read them (at most the few-row kernel's rows).
    const bool coded = vlm::coded_weights_allowed_by_environment() && vlm::coded_weights_serve(generate > 0 ? batch : 1);
    options.coded_decode_weights = false;
    const double load_start = now_ms();
    auto model = vlm::load_model(model_dir, options);
    const double coding_start = now_ms();
    if (coded) vlm::code_decode_weights(*model);
    const double load_ms = now_ms() - load_start, coding_ms = now_ms() - coding_start;
    // After loading: the first load_model sets libtorch's thread count to every CPU unless the environment names
    // one (VLMRT_NUM_THREADS, OMP_NUM_THREADS), which would override a count set before it.
    if (threads > 0) torch::set_num_threads(static_cast<int>(threads));
    const auto& info = model->info();
    torch::manual_seed(0);

    // Prompt: text, then (vision models) <image tokens>, then text, `prompt` tokens in all.
    std::vector<std::int64_t> ids;
    vlm::ForwardInputs prefill;
    const long image_tokens = info.image_token_id >= 0 ? grid_h * grid_w / 4 : 0;
    if (prompt <= image_tokens + 2) usage("--prompt must exceed the image's tokens + 2");
    const long head = (prompt - image_tokens) / 2;
    for (long i = 0; i < prompt; ++i) {
      const bool image = i >= head && i < head + image_tokens;
      ids.push_back(image ? info.image_token_id : 3 + (i * 7919) % 200);
    }
    prefill.input_ids = torch::tensor(ids).unsqueeze(0);
    if (image_tokens > 0) {
      prefill.vision.image_grid_thw = torch::tensor(std::vector<std::int64_t>{1, grid_h, grid_w}).unsqueeze(0);
      prefill.vision.pixel_values = torch::randn({grid_h * grid_w, 3 * 2 * 14 * 14});
    }

    if (generate > 0) {
      torch::NoGradGuard no_grad;
      vlm::ForwardInputs rows;
      rows.input_ids = prefill.input_ids.repeat({batch, 1});
      if (image_tokens > 0) {
        rows.vision.image_grid_thw = prefill.vision.image_grid_thw.repeat({batch, 1});
        rows.vision.pixel_values = torch::randn({batch * grid_h * grid_w, 3 * 2 * 14 * 14});
      }
      timed_generate(*model, rows, 2);  // warm-up
      const auto weights = decode_weights(*model);
      std::vector<double> ttft_ms, rate, read_gbps;
      auto timed = [&] {
        // The median of three reads (one takes ~25 ms and can meet a dip or a burst), before and after the run.
        auto read_rate = [&] {
          std::vector<double> reads{read_rate_gbps(weights), read_rate_gbps(weights), read_rate_gbps(weights)};
          return median(reads);
        };
        const double before = read_rate();
        const auto [ttft, decode_s] = timed_generate(*model, rows, static_cast<int>(generate));
        ttft_ms.push_back(ttft);
        rate.push_back(batch * (generate - 1) / decode_s);
        read_gbps.push_back((before + read_rate()) / 2);
      };
      if (serve) {
        // One timed generation per "run" line on stdin, each answered by a JSON line; the summary below at EOF.
        // Each answer also gives the memory's read rate around that run (the mean of the medians of three reads of
        // the decode weights before and after it); the ready line gives their size.
        std::printf("{\"ready\": true, \"load_ms\": %.2f, \"coding_ms\": %.2f, \"decode_weight_bytes\": %.0f, "
                    "\"decode_read_bytes\": %.0f}\n", load_ms, coding_ms, bytes_of(weights),
                    read_bytes_of(*model, weights));
        std::fflush(stdout);
        for (std::string line; std::getline(std::cin, line) && line != "quit";) {
          if (line != "run") usage("--serve reads 'run' or 'quit' lines, not '" + line + "'");
          timed();
          std::printf("{\"ttft_ms\": %.3f, \"decode_tokens_per_s\": %.3f, \"read_GBps\": %.2f}\n",
                      ttft_ms.back(), rate.back(), read_gbps.back());
          std::fflush(stdout);
        }
        if (rate.empty()) usage("--serve: no 'run' line before the end of input");
      } else {
        for (long it = 0; it < iters; ++it) timed();
      }
      std::printf(
          "{\"family\": \"%s\", \"dtype\": \"%s\", \"isa\": \"%s\", \"threads\": %d, \"batch\": %ld, \"prompt\": %ld, "
          "\"image_tokens\": %ld, \"new_tokens\": %ld, \"load_ms\": %.2f, \"coding_ms\": %.2f, \"ttft_ms_median\": %.3f, "
          "\"decode_tokens_per_s_median\": %.3f, \"peak_rss_mb\": %.1f, \"decode_weight_bytes\": %.0f, "
          "\"decode_read_bytes\": %.0f, \"read_GBps_median\": %.2f}\n",
          info.family.c_str(), dtype_name.c_str(), vlm::kernel_isa_name(vlm::kernel_isa()), torch::get_num_threads(),
          batch, prompt, image_tokens, generate,
          load_ms, coding_ms, median(ttft_ms), median(rate), peak_rss_mb(), bytes_of(weights), read_bytes_of(*model, weights),
          median(read_gbps));
      return 0;
    }

    // Inference, as generate() and transformers' side (torch.no_grad()) run it: with grad mode on, the decode steps
    // would take the autograd path, op by op: 44 against 24 ms a bfloat16 step of the issue model on a Zen 5 EPYC.
    torch::NoGradGuard no_grad;
    std::vector<double> prefill_ms, step_ms;
    for (long it = 0; it < iters + 1; ++it) {  // the first iteration warms up
      auto state = model->new_state(1);
      double t0 = now_ms();
      auto logits = model->forward(prefill, state.get());
      if (it > 0) prefill_ms.push_back(now_ms() - t0);
      auto next = logits.select(1, logits.size(1) - 1).argmax(-1).unsqueeze(1);
      for (long s = 0; s < steps; ++s) {
        vlm::ForwardInputs step;
        step.input_ids = next;
        step.all_logits = false;
        t0 = now_ms();
        auto out = model->forward(step, state.get());
        if (it > 0) step_ms.push_back(now_ms() - t0);
        next = out.select(1, 0).argmax(-1).unsqueeze(1);
      }
    }

    // KV cache strategies on this model's shapes: append into vlmrt's buffer vs torch::cat of the whole past.
    const long kv_steps = 512;
    auto k = torch::randn({1, 4, 1, 64}), v = torch::randn({1, 4, 1, 64});
    double t0 = now_ms();
    vlm::KVCache cache(1);
    cache.append(0, torch::randn({1, 4, prompt, 64}), torch::randn({1, 4, prompt, 64}));
    for (long s = 0; s < kv_steps; ++s) cache.append(0, k, v);
    const double buffer_ms = now_ms() - t0;
    t0 = now_ms();
    auto ck = torch::randn({1, 4, prompt, 64}), cv = torch::randn({1, 4, prompt, 64});
    for (long s = 0; s < kv_steps; ++s) {
      ck = torch::cat({ck, k}, 2);
      cv = torch::cat({cv, v}, 2);
    }
    const double concat_ms = now_ms() - t0;

    std::printf(
        "{\"family\": \"%s\", \"dtype\": \"%s\", \"isa\": \"%s\", \"threads\": %d, \"prompt\": %ld, \"image_tokens\": %ld, "
        "\"load_ms\": %.2f, \"prefill_ms_median\": %.3f, \"prefill_ms_min\": %.3f, \"decode_step_ms_median\": %.3f, "
        "\"decode_steps\": %zu, \"kv_append_512_buffer_ms\": %.3f, \"kv_append_512_concat_ms\": %.3f}\n",
        info.family.c_str(), dtype_name.c_str(), vlm::kernel_isa_name(vlm::kernel_isa()), torch::get_num_threads(),
        prompt, image_tokens, load_ms,
        median(prefill_ms), *std::min_element(prefill_ms.begin(), prefill_ms.end()), median(step_ms), step_ms.size(),
        buffer_ms, concat_ms);
  } catch (const vlm::Error& e) {
    std::fprintf(stderr, "bench_model: %s\n", e.what());
    return 1;
  }
  return 0;
}
