// Decode-step projection shapes: which libtorch call is fastest for x [1, K] times a weight [N, K]^T.
// Compares torch::linear (what ProjectionImpl::forward calls), torch::mv on the weight, torch::addmv with the bias,
// torch::matmul(x, weight.t()), vlmrt's few-row kernel (model/matvec.h) for 1 and 8 rows, and 8-row linear for
// scale. Prints one JSON line per shape; --shape KxN (repeatable) replaces the default decode shapes.
//
//   bench_matvec [--threads N] [--reps N] [--dtype float32|bfloat16|float16] [--shape KxN]...
#include <torch/torch.h>

#include "model/matvec.h"

#include <algorithm>
#include <chrono>
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

}  // namespace

int main(int argc, char** argv) {
  long threads = 2, reps = 200;
  std::string dtype_name = "float32";
  std::vector<std::pair<long, long>> shapes;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string arg = argv[i], value = argv[i + 1];
    if (arg == "--threads") threads = std::stol(value);
    else if (arg == "--reps") reps = std::stol(value);
    else if (arg == "--dtype") dtype_name = value;
    else if (arg == "--shape" && value.find('x') != std::string::npos)
      shapes.emplace_back(std::stol(value.substr(0, value.find('x'))), std::stol(value.substr(value.find('x') + 1)));
    else {
      std::fprintf(stderr, "unknown option %s\nusage: bench_matvec [--threads N] [--reps N] [--dtype float32|bfloat16|float16] "
                   "[--shape KxN]...\n",
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
    const double linear = time_if_supported([&] { return torch::linear(x, w, b); }, reps);
    const double mv = time_if_supported([&] { return torch::mv(w, x1).add_(b).view({1, 1, n}); }, reps);
    const double addmv = time_if_supported([&] { return torch::addmv(b, w, x1).view({1, 1, n}); }, reps);
    const double matmul_t = time_if_supported([&] { return torch::matmul(x, w.t()).add_(b); }, reps);
    const double mm_wt = time_if_supported([&] { return torch::addmm(b, x.view({1, k}), wt).view({1, 1, n}); }, reps);
    const double mv_wt = time_if_supported([&] { return torch::mv(wt.t(), x1).add_(b).view({1, 1, n}); }, reps);
    auto x8 = torch::randn({8, 1, k}).to(dtype);
    const double linear8 = time_if_supported([&] { return torch::linear(x8, w, b); }, reps);
    const double addmm8 = time_if_supported([&] { return torch::addmm(b, x8.view({8, k}), w.t()).view({8, 1, n}); }, reps);
    const double kernel = time_call([&] { return vlm::few_row_linear(x, w, b); }, reps);
    // -1 where the kernel does not take 8 rows (bfloat16: at most 4, where oneDNN's gemm is as fast).
    const double kernel8 = vlm::few_row_linear_applies(x8, w) ? time_call([&] { return vlm::few_row_linear(x8, w, b); }, reps) : -1;
    const double gbps = static_cast<double>(w.numel() * w.element_size()) / (kernel * 1e6);
    std::printf(
        "{\"dtype\": \"%s\", \"threads\": %d, \"K\": %ld, \"N\": %ld, \"linear_ms\": %.4f, \"mv_ms\": %.4f, "
        "\"addmv_ms\": %.4f, \"matmul_wT_ms\": %.4f, \"addmm_Wt_contig_ms\": %.4f, \"mv_Wt_contig_ms\": %.4f, "
        "\"linear_B8_ms\": %.4f, \"addmm_B8_ms\": %.4f, \"few_row_ms\": %.4f, \"few_row_B8_ms\": %.4f, "
        "\"few_row_weight_GBps\": %.1f}\n",
        dtype_name.c_str(), torch::get_num_threads(), k, n, linear, mv, addmv, matmul_t, mm_wt, mv_wt, linear8,
        addmm8, kernel, kernel8, gbps);
    std::fflush(stdout);
  }
  return 0;
}
