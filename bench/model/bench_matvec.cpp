// Decode-step projection shapes: which libtorch call is fastest for x [1, K] times a weight [N, K]^T.
// Compares torch::linear (what ProjectionImpl::forward calls), torch::mv on the weight, torch::addmv with the bias,
// torch::matmul(x, weight.t()), vlmrt's few-row kernel (model/matvec.h) for 1 and 8 rows, and 8-row linear for
// scale. Prints one JSON line per shape; --shape KxN (repeatable) replaces the default decode shapes.
//
// --stream-mb M also times the kernel the way a decode step meets its weights: from memory, not from the cache
// (a model's weights are far larger than the last-level cache). It cycles through enough copies of the weight to
// fill M MB and reports the kernel's GB/s over them; bytes per token / that rate bounds a decode step from below.
// In bfloat16 each line also times the weight's 12-bit coded form (CodedBf16Weight, model/matvec.h): encoding it
// (coded_encode_ms), one call from the cache (few_row_coded_ms) and, with --stream-mb, passes over the coded copies
// alternating with passes over the plain ones (coded_stream_GBps next to few_row_stream_GBps, both in bytes of
// bfloat16 weights per second, so their ratio is the speed-up; coded_escaped_blocks is the share kept whole).
// --kernel-only skips the libtorch calls (bfloat16 mv takes seconds per shape on CPUs without AVX-512).
// --isa caps the kernel's instruction set (portable, avx2, avx512, avx512_bf16; default: the best the CPU has),
// to compare the paths on one machine; each line says which one ran.
//
//   bench_matvec [--threads N] [--reps N] [--dtype float32|bfloat16|float16] [--shape KxN]... [--stream-mb M]
//                [--kernel-only] [--isa NAME]
#include <torch/torch.h>

#include "model/matvec.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

namespace {

double now_ms() {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Median time of one call, in milliseconds, over `reps` calls after 5 warm-up calls.
double time_call(const std::function<torch::Tensor()>& f, long reps) {
  for (int i = 0; i < 5; ++i) f();
  std::vector<double> t;
  for (long i = 0; i < reps; ++i) {
    const double t0 = now_ms();
    f();
    t.push_back(now_ms() - t0);
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

// -1 where libtorch has no kernel for the dtype (float16 matmul on the CPU).
double time_if_supported(const std::function<torch::Tensor()>& f, long reps) {
  try {
    return time_call(f, reps);
  } catch (const c10::Error&) {
    return -1;
  }
}

// Median seconds of one pass of `pass` over every copy, after one warm-up pass.
double time_passes(const std::vector<torch::Tensor>& copies, const std::function<void(const torch::Tensor&)>& pass,
                   long reps) {
  for (const auto& w : copies) pass(w);
  std::vector<double> t;
  for (long i = 0; i < reps; ++i) {
    const double t0 = now_ms();
    for (const auto& w : copies) pass(w);
    t.push_back((now_ms() - t0) / 1e3);
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  long threads = 2, reps = 200, stream_mb = 0;
  bool kernel_only = false;
  std::string dtype_name = "float32";
  std::vector<std::pair<long, long>> shapes;
  for (int i = 1; i < argc; i += 2) {
    const std::string arg = argv[i];
    if (arg == "--kernel-only") {
      kernel_only = true;
      --i;
      continue;
    }
    if (i + 1 >= argc) {
      std::fprintf(stderr, "option %s needs a value\n", arg.c_str());
      return 2;
    }
    const std::string value = argv[i + 1];
    if (arg == "--threads") threads = std::stol(value);
    else if (arg == "--stream-mb") stream_mb = std::stol(value);
    else if (arg == "--reps") reps = std::stol(value);
    else if (arg == "--dtype") dtype_name = value;
    else if (arg == "--isa") {
      const auto isa = vlm::kernel_isa_named(value);
      if (!isa) {
        std::fprintf(stderr, "--isa takes portable, avx2, avx512 or avx512_bf16, not %s\n", value.c_str());
        return 2;
      }
      vlm::limit_kernel_isa(*isa);
    }
    else if (arg == "--shape" && value.find('x') != std::string::npos)
      shapes.emplace_back(std::stol(value.substr(0, value.find('x'))), std::stol(value.substr(value.find('x') + 1)));
    else {
      std::fprintf(stderr, "unknown option %s\nusage: bench_matvec [--threads N] [--reps N] [--dtype float32|bfloat16|float16] "
                   "[--shape KxN]... [--stream-mb M] [--kernel-only] [--isa portable|avx2|avx512|avx512_bf16]\n",
                   arg.c_str());
      return 2;
    }
  }
  torch::set_num_threads(static_cast<int>(threads));
  torch::NoGradGuard no_grad;
  const auto dtype = dtype_name == "bfloat16" ? torch::kBFloat16 : dtype_name == "float16" ? torch::kHalf : torch::kFloat;
  // Qwen2-VL issue config (hidden 896, 14/2 heads of 64, intermediate 4864, vocab 151936) decode shapes: q, kv, o,
  // gate/up, down, the LM head.
  if (shapes.empty()) shapes = {{896, 896}, {896, 128}, {896, 4864}, {4864, 896}, {512, 1536}, {896, 151936}};
  for (const auto& [k, n] : shapes) {
    auto w = torch::randn({n, k}).to(dtype), b = torch::randn({n}).to(dtype);
    auto x = torch::randn({1, 1, k}).to(dtype);
    auto x1 = x.view({k});
    auto wt = w.t().contiguous();  // [K, N] copy: row-major x @ wt
    auto x8 = torch::randn({8, 1, k}).to(dtype);
    // -1: skipped (--kernel-only), or no libtorch kernel for the dtype.
    auto time_libtorch = [&](const std::function<torch::Tensor()>& f) { return kernel_only ? -1 : time_if_supported(f, reps); };
    const double linear = time_libtorch([&] { return torch::linear(x, w, b); });
    const double mv = time_libtorch([&] { return torch::mv(w, x1).add_(b).view({1, 1, n}); });
    const double addmv = time_libtorch([&] { return torch::addmv(b, w, x1).view({1, 1, n}); });
    const double matmul_t = time_libtorch([&] { return torch::matmul(x, w.t()).add_(b); });
    const double mm_wt = time_libtorch([&] { return torch::addmm(b, x.view({1, k}), wt).view({1, 1, n}); });
    const double mv_wt = time_libtorch([&] { return torch::mv(wt.t(), x1).add_(b).view({1, 1, n}); });
    const double linear8 = time_libtorch([&] { return torch::linear(x8, w, b); });
    const double addmm8 = time_libtorch([&] { return torch::addmm(b, x8.view({8, k}), w.t()).view({8, 1, n}); });
    const double kernel = time_call([&] { return vlm::few_row_linear(x, w, b); }, reps);
    // The kernel computes 8 rows on every CPU, also where a model gives them to libtorch's gemm (bfloat16 on CPUs
    // with oneDNN bfloat16 support, where the model's calls take at most 4).
    const double kernel8 = time_call([&] { return vlm::few_row_linear(x8, w, b); }, reps);
    const double encode_start = now_ms();
    const auto coded_w = vlm::CodedBf16Weight::encode(w);
    const double encode_ms = now_ms() - encode_start;
    const double kernel_coded =
        coded_w ? time_call([&] { return vlm::few_row_linear(x, w, b, coded_w.get()); }, reps) : -1;
    const double weight_bytes = static_cast<double>(w.numel() * w.element_size());
    const double gbps = weight_bytes / (kernel * 1e6);
    double stream_gbps = -1, coded_gbps = -1, coded_escaped = -1;
    if (stream_mb > 0) {
      const auto count = std::max<long>(2, static_cast<long>(std::ceil(stream_mb * 1e6 / weight_bytes)));
      std::vector<torch::Tensor> copies;
      for (long c = 0; c < count; ++c) copies.push_back(w.clone());
      const long passes = std::max<long>(3, std::min<long>(reps, 20));
      const double kernel_s = time_passes(copies, [&](const torch::Tensor& c) { vlm::few_row_linear(x, c, b); }, passes);
      stream_gbps = weight_bytes * static_cast<double>(count) / (kernel_s * 1e9);
      // The same copies read through their 12-bit coded form (CodedBf16Weight), alternating with the plain
      // ones so both see the same memory phases; in bfloat16 bytes per second, so the two rates compare directly.
      if (dtype == torch::kBFloat16) {
        std::vector<std::shared_ptr<const vlm::CodedBf16Weight>> coded;
        for (const auto& c : copies) coded.push_back(vlm::CodedBf16Weight::encode(c));
        if (coded.front()) {
          coded_escaped = coded.front()->escaped_block_fraction();
          std::vector<double> plain_s, coded_s;
          for (long p = 0; p < passes; ++p) {
            plain_s.push_back(time_passes(copies, [&](const torch::Tensor& c) { vlm::few_row_linear(x, c, b); }, 1));
            std::size_t i = 0;
            coded_s.push_back(time_passes(copies, [&](const torch::Tensor& c) {
              vlm::few_row_linear(x, c, b, coded[i++ % coded.size()].get());
            }, 1));
          }
          std::sort(plain_s.begin(), plain_s.end());
          std::sort(coded_s.begin(), coded_s.end());
          const double total = weight_bytes * static_cast<double>(count) / 1e9;
          stream_gbps = total / plain_s[plain_s.size() / 2];
          coded_gbps = total / coded_s[coded_s.size() / 2];
        }
      }
    }
    std::printf(
        "{\"dtype\": \"%s\", \"isa\": \"%s\", \"threads\": %d, \"K\": %ld, \"N\": %ld, \"linear_ms\": %.4f, "
        "\"mv_ms\": %.4f, "
        "\"addmv_ms\": %.4f, \"matmul_wT_ms\": %.4f, \"addmm_Wt_contig_ms\": %.4f, \"mv_Wt_contig_ms\": %.4f, "
        "\"linear_B8_ms\": %.4f, \"addmm_B8_ms\": %.4f, \"few_row_ms\": %.4f, \"few_row_B8_ms\": %.4f, "
        "\"few_row_weight_GBps\": %.1f, \"stream_mb\": %ld, \"few_row_stream_GBps\": %.1f, "
        "\"coded_stream_GBps\": %.1f, \"coded_escaped_blocks\": %.5f, \"few_row_coded_ms\": %.4f, "
        "\"coded_encode_ms\": %.2f}\n",
        dtype_name.c_str(), vlm::kernel_isa_name(vlm::kernel_isa()), torch::get_num_threads(), k, n, linear, mv,
        addmv, matmul_t, mm_wt, mv_wt, linear8, addmm8, kernel, kernel8, gbps, stream_mb, stream_gbps, coded_gbps,
        coded_escaped, kernel_coded, encode_ms);
    std::fflush(stdout);
  }
  return 0;
}
