#include "model/matvec.h"

#include <ATen/Parallel.h>
#include <ATen/autocast_mode.h>
#include <torch/torch.h>

#include "base/error.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace vlm {

namespace {

// Each output column n of every row m: y[m, n] = sum_k x[m, k] * w[n, k] + bias[n], float32 accumulation. The bias
// and y have the weight's dtype W: the bias is widened exactly, y rounded once (to nearest even, as Tensor::to),
// so a decode step needs no separate cast of either.
struct Job {
  const float* x;     // [rows, K]
  const void* bias;   // W [N] or null
  void* y;            // W [rows, N]
  std::int64_t rows, K, N;
};

inline float widen(float v) { return v; }
inline float widen(c10::BFloat16 v) { return static_cast<float>(v); }
inline float widen(c10::Half v) { return static_cast<float>(v); }

template <typename W>
inline float bias_of(const Job& job, std::int64_t n) {
  return job.bias ? widen(static_cast<const W*>(job.bias)[n]) : 0.f;
}
template <typename W>
inline void store(const Job& job, std::int64_t m, std::int64_t n, float value) {
  static_cast<W*>(job.y)[m * job.N + n] = W(value);
}

template <typename W>
void columns_portable(const Job& job, const W* w, std::int64_t n0, std::int64_t n1) {
  for (std::int64_t n = n0; n < n1; ++n) {
    const W* row = w + n * job.K;
    for (std::int64_t m = 0; m < job.rows; ++m) {
      const float* x = job.x + m * job.K;
      float acc = 0.f;
      for (std::int64_t k = 0; k < job.K; ++k) acc += widen(row[k]) * x[k];
      store<W>(job, m, n, acc + bias_of<W>(job, n));
    }
  }
}

#if defined(__x86_64__)
// GCC 12 flags the deliberately undefined source operand inside _mm512_reduce_add_ps's extract.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#define VLM_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl")))

VLM_AVX512 inline __m512 load16(const float* p, __mmask16 mask) { return _mm512_maskz_loadu_ps(mask, p); }
VLM_AVX512 inline __m512 load16(const c10::BFloat16* p, __mmask16 mask) {
  // bfloat16 is the high half of a float32: widen to 32 bits and shift into place.
  const __m256i raw = _mm256_maskz_loadu_epi16(mask, p);
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(raw), 16));
}
VLM_AVX512 inline __m512 load16(const c10::Half* p, __mmask16 mask) {
  return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mask, p));
}

// ROWS rows of x at once, so each weight row is read from memory once for all of them; two accumulators per row
// hide the FMA latency.
template <int ROWS, typename W>
VLM_AVX512 void columns_avx512(const Job& job, const W* w, std::int64_t n0, std::int64_t n1) {
  const std::int64_t K = job.K;
  for (std::int64_t n = n0; n < n1; ++n) {
    const W* row = w + n * K;
    __m512 acc0[ROWS], acc1[ROWS];
#pragma GCC unroll 8
    for (int m = 0; m < ROWS; ++m) acc0[m] = acc1[m] = _mm512_setzero_ps();
    std::int64_t k = 0;
    for (; k + 32 <= K; k += 32) {
      const __m512 w0 = load16(row + k, 0xFFFF), w1 = load16(row + k + 16, 0xFFFF);
#pragma GCC unroll 8
      for (int m = 0; m < ROWS; ++m) {
        const float* x = job.x + m * K + k;
        acc0[m] = _mm512_fmadd_ps(w0, _mm512_loadu_ps(x), acc0[m]);
        acc1[m] = _mm512_fmadd_ps(w1, _mm512_loadu_ps(x + 16), acc1[m]);
      }
    }
    for (; k < K; k += 16) {
      const std::int64_t left = K - k;
      const __mmask16 mask = left >= 16 ? __mmask16(0xFFFF) : static_cast<__mmask16>((1u << left) - 1u);
      const __m512 w0 = load16(row + k, mask);
#pragma GCC unroll 8
      for (int m = 0; m < ROWS; ++m) acc0[m] = _mm512_fmadd_ps(w0, load16(job.x + m * K + k, mask), acc0[m]);
    }
    const float b = bias_of<W>(job, n);
#pragma GCC unroll 8
    for (int m = 0; m < ROWS; ++m) store<W>(job, m, n, _mm512_reduce_add_ps(_mm512_add_ps(acc0[m], acc1[m])) + b);
  }
}

template <typename W>
void columns_avx512_dispatch(const Job& job, const W* w, std::int64_t n0, std::int64_t n1) {
  switch (job.rows) {
    case 1: return columns_avx512<1>(job, w, n0, n1);
    case 2: return columns_avx512<2>(job, w, n0, n1);
    case 3: return columns_avx512<3>(job, w, n0, n1);
    case 4: return columns_avx512<4>(job, w, n0, n1);
    case 5: return columns_avx512<5>(job, w, n0, n1);
    case 6: return columns_avx512<6>(job, w, n0, n1);
    case 7: return columns_avx512<7>(job, w, n0, n1);
    default: return columns_avx512<8>(job, w, n0, n1);
  }
}

bool cpu_has_avx512() {
  static const bool has = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                          __builtin_cpu_supports("avx512vl");
  return has;
}
#endif

template <typename W>
void run_columns(const Job& job, const W* w) {
  // Chunks of whole output columns per thread; small enough that every thread gets work on the narrow k/v
  // projections, large enough that the fork costs nothing next to the memory traffic.
  at::parallel_for(0, job.N, 64, [&](std::int64_t n0, std::int64_t n1) {
#if defined(__x86_64__)
    if (cpu_has_avx512()) return columns_avx512_dispatch(job, w, n0, n1);
#endif
    columns_portable(job, w, n0, n1);
  });
}

// The shapes, dtypes and devices the kernel computes, whatever the autograd state.
bool kernel_takes(const torch::Tensor& x, const torch::Tensor& weight) {
  const auto dtype = weight.scalar_type();
  if (x.scalar_type() != dtype || !x.device().is_cpu() || !weight.device().is_cpu()) return false;
  if (weight.dim() != 2 || !weight.is_contiguous() || x.dim() == 0 || x.size(-1) != weight.size(1)) return false;
  return x.numel() > 0 && x.numel() / weight.size(1) <= few_row_linear_max_rows(dtype);
}

}  // namespace

std::int64_t few_row_linear_max_rows(torch::ScalarType weight_dtype) {
  switch (weight_dtype) {
    case torch::kFloat: return 8;
    case torch::kBFloat16: return 4;
    case torch::kHalf: return 8;
    default: return 0;
  }
}

bool few_row_linear_applies(const torch::Tensor& x, const torch::Tensor& weight) {
  // Inference only: autograd and autocast go through torch::linear.
  return kernel_takes(x, weight) && !torch::GradMode::is_enabled() && !at::autocast::is_cpu_enabled();
}

torch::Tensor few_row_linear(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias) {
  if (!kernel_takes(x, weight)) {
    fail(ErrorCode::internal, "few_row_linear: x " + c10::str(x.sizes()) + " " + c10::str(x.scalar_type()) +
                                  " and weight " + c10::str(weight.sizes()) + " " + c10::str(weight.scalar_type()) +
                                  " are outside the kernel's shapes and dtypes");
  }
  const auto N = weight.size(0), K = weight.size(1), rows = x.numel() / K;
  const auto dtype = weight.scalar_type();
  auto xf = x.reshape({rows, K}).to(torch::kFloat).contiguous();
  torch::Tensor b;
  if (bias.defined()) b = bias.to(torch::kCPU, dtype).contiguous();  // a no-op for a module's own bias
  auto y = torch::empty({rows, N}, torch::TensorOptions().dtype(dtype));
  const Job job{xf.data_ptr<float>(), b.defined() ? b.data_ptr() : nullptr, y.data_ptr(), rows, K, N};
  if (dtype == torch::kFloat) run_columns(job, weight.data_ptr<float>());
  else if (dtype == torch::kBFloat16) run_columns(job, weight.data_ptr<c10::BFloat16>());
  else run_columns(job, weight.data_ptr<c10::Half>());
  auto shape = x.sizes().vec();
  shape.back() = N;
  return y.view(shape);
}

}  // namespace vlm
