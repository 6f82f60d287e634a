// The few-row decode kernel (model/matvec.h) against a float64 reference: every row count it takes, K with and
// without a 16- and 32-element tail (and long enough for the four-column path), with and without bias, float32 /
// bfloat16 / float16 weights, on every instruction set the CPU has (portable, AVX2, AVX-512, AVX-512 BF16); and
// when Projection routes to it.
#include <torch/torch.h>

#include <cstring>
#include <vector>

#include "model/layers.h"
#include "model/matvec.h"
#include "model/simd.h"
#include "test_util.h"

// doctest last: its CHECK must replace the glog CHECK that the torch headers define.
#include <doctest/doctest.h>

using namespace vlm;

namespace {
// The exact product of the (already rounded) inputs, in float64.
torch::Tensor reference(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b) {
  auto y = torch::matmul(x.to(torch::kDouble), w.to(torch::kDouble).t());
  return b.defined() ? y + b.to(torch::kDouble) : y;
}

// sum_k |x[m, k] w[n, k]| + |b[n]| in float64: the scale of a float32 sum's rounding error, whatever its order.
torch::Tensor magnitude(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b) {
  return reference(x.abs(), w.abs(), b.defined() ? b.abs() : b);
}

// Half a unit in the last place of `dtype` (bfloat16: 8 significant bits, float16: 11, no smaller than its
// subnormal spacing) at each value of v, in float64.
torch::Tensor half_ulp(const torch::Tensor& v, torch::ScalarType dtype) {
  const double bits = dtype == torch::kHalf ? 11 : 8, min_exponent = dtype == torch::kHalf ? -14 : -126;
  auto exponent = torch::floor(torch::log2(v.abs().clamp_min(1e-300))).clamp_min(min_exponent);
  return torch::pow(2.0, exponent - bits);
}
}  // namespace

// Every instruction set this CPU can run, best last (the kernel paths differ in how they split K).
std::vector<KernelIsa> isas_here() {
  const auto best = kernel_isa();
  std::vector<KernelIsa> isas;
  for (auto isa : {KernelIsa::portable, KernelIsa::avx2, KernelIsa::avx512, KernelIsa::avx512_bf16}) {
    if (static_cast<int>(isa) <= static_cast<int>(best)) isas.push_back(isa);
  }
  return isas;
}

// Restores the best instruction set when a test case ends, also when it fails.
struct IsaLimit {
  explicit IsaLimit(KernelIsa isa) { CHECK(limit_kernel_isa(isa) == isa); }
  ~IsaLimit() { limit_kernel_isa(KernelIsa::avx512_bf16); }
};

#if defined(__x86_64__)
// GCC 12 flags the deliberately undefined source operand inside _mm512_reduce_add_ps, as in matvec.cpp.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
// simd::reduce_add16 on 16 vectors of 16 floats, and _mm512_reduce_add_ps of each.
VLM_AVX512 void reduce_both(const float* values, float* got, float* want) {
  __m512 acc[16];
  for (int j = 0; j < 16; ++j) {
    acc[j] = _mm512_loadu_ps(values + 16 * j);
    want[j] = _mm512_reduce_add_ps(acc[j]);
  }
  vlm::simd::reduce_add16(acc, got);
}
#endif

TEST_CASE("few_row_linear equals the float64 product for every row count, tail, dtype and instruction set") {
  torch::NoGradGuard no_grad;
  torch::manual_seed(3);
  for (auto isa : isas_here()) {
    IsaLimit limit(isa);
    const std::string isa_name = kernel_isa_name(isa);
    CAPTURE(isa_name);
    for (auto dtype : {torch::kFloat, torch::kBFloat16, torch::kHalf}) {
      for (std::int64_t k : {1, 15, 16, 31, 32, 33, 64, 97, 100, 896, 1030}) {
        for (std::int64_t n : {1, 7, 130}) {
          auto w = torch::randn({n, k}).to(dtype);
          auto b = torch::randn({n}).to(dtype);
          for (std::int64_t rows = 1; rows <= few_row_linear_max_rows(dtype); ++rows) {
            auto x = torch::randn({rows, 1, k}).to(dtype);
            REQUIRE(few_row_linear_applies(x, w));
            for (bool with_bias : {false, true}) {
              auto y = few_row_linear(x, w, with_bias ? b : torch::Tensor());
              const std::string dtype_name = c10::toString(dtype);
              CAPTURE(dtype_name);
              CAPTURE(k);
              CAPTURE(n);
              CAPTURE(rows);
              REQUIRE(y.sizes() == torch::IntArrayRef({rows, 1, n}));
              REQUIRE((y.scalar_type() == dtype));
              auto want = reference(x, w, with_bias ? b : torch::Tensor());
              // float32 accumulation (error ~ sqrt(k) ulp of the terms), then one rounding to the output dtype.
              const double scale = std::sqrt(static_cast<double>(k)) + 1;
              const double tol = dtype == torch::kFloat ? 1e-5 * scale
                                 : dtype == torch::kHalf ? 1e-2 * scale
                                                         : 4e-2 * scale;
              CHECK((y.to(torch::kDouble) - want).abs().max().item<double>() <= tol);
              if (dtype != torch::kFloat) {
                // Bias widened and output rounded once inside the kernel: y is the float32 product rounded to
                // nearest, so within half an ulp of it. The slack covers only the summation order, which differs
                // between the kernels (bfloat16 on AVX2 reads x in pair order); a second rounding, such as a bias
                // added after the product was rounded, would miss by up to a whole ulp.
                auto wide = few_row_linear(x.to(torch::kFloat), w.to(torch::kFloat),
                                           with_bias ? b.to(torch::kFloat) : torch::Tensor())
                                .to(torch::kDouble);
                auto order_slack = 1e-6 * magnitude(x, w, with_bias ? b : torch::Tensor());
                auto miss = (y.to(torch::kDouble) - wide).abs() - half_ulp(wide, dtype) - order_slack;
                CHECK(miss.max().item<double>() <= 0);
              }
              // The raw entry of the fused decode step: float32 rows of the same values, rounded like y.
              auto xf = x.to(torch::kFloat).reshape({rows, k}).contiguous();
              auto raw = torch::empty({rows, n}, torch::kFloat);
              few_row_linear_into(xf.data_ptr<float>(), rows, w, with_bias ? b : torch::Tensor(),
                                  raw.data_ptr<float>());
              CHECK(torch::equal(raw, y.reshape({rows, n}).to(torch::kFloat)));
            }
          }
        }
      }
    }
  }
}

#if defined(__x86_64__)
TEST_CASE("simd::reduce_add16 gives each vector's _mm512_reduce_add_ps, bit for bit") {
  if (!simd::cpu_has_avx512()) {
    MESSAGE("this CPU has no AVX-512: reduce_add16 is not used here");
    return;
  }
  torch::manual_seed(5);
  // Magnitudes over many binades, so that a different order of the additions would round differently.
  auto values = (torch::randn({16, 16}) * torch::exp(4 * torch::randn({16, 16}))).contiguous();
  std::vector<float> got(16), want(16);
  reduce_both(values.data_ptr<float>(), got.data(), want.data());
  int same = 0;
  for (int j = 0; j < 16; ++j) same += std::memcmp(&got[j], &want[j], sizeof(float)) == 0;
  CHECK(same == 16);
}
#endif

TEST_CASE("few_row_linear_into keeps float32 rows that are not bfloat16 values as they are") {
  // Pairs (1 + 3/1024, 1) against weights (1, -1): the exact sum is 3/1024 per pair, 3 over 1024 pairs. Rounding x
  // to bfloat16 first (what the AVX-512 BF16 path would do to any x) would give 1 + 3/1024 -> 1 and a sum of 0.
  const std::int64_t K = 2048;
  auto x = torch::ones({1, K});
  x.index_put_({0, torch::indexing::Slice(0, K, 2)}, 1.0f + 3.0f / 1024.0f);
  auto w = torch::ones({3, K});
  w.index_put_({torch::indexing::Slice(), torch::indexing::Slice(1, K, 2)}, -1.0f);
  auto wb = w.to(torch::kBFloat16);
  for (auto isa : isas_here()) {
    IsaLimit limit(isa);
    const std::string isa_name = kernel_isa_name(isa);
    CAPTURE(isa_name);
    auto y = torch::empty({1, 3}, torch::kFloat);
    few_row_linear_into(x.data_ptr<float>(), 1, wb, torch::Tensor(), y.data_ptr<float>());
    CHECK(torch::equal(y, torch::full({1, 3}, 3.0f)));
    // Rows of bfloat16 values give the same result on every path (here exactly 0).
    auto xb = x.to(torch::kBFloat16).to(torch::kFloat);
    few_row_linear_into(xb.data_ptr<float>(), 1, wb, torch::Tensor(), y.data_ptr<float>());
    CHECK(torch::equal(y, torch::zeros({1, 3})));
  }
}

TEST_CASE("few_row_linear applies only to inference-shaped CPU calls") {
  auto w = torch::randn({8, 32});
  auto x = torch::randn({1, 32});
  {
    torch::NoGradGuard no_grad;
    CHECK(few_row_linear_applies(x, w));
    CHECK(few_row_linear_applies(torch::randn({8, 32}), w));
    CHECK_FALSE(few_row_linear_applies(torch::randn({9, 32}), w));                          // gemm is as fast
    const auto bf16_rows = few_row_linear_max_rows(torch::kBFloat16);  // 4 with oneDNN (AVX-512), else 8
    CHECK((bf16_rows == 4 || bf16_rows == 8));
    CHECK(few_row_linear_applies(torch::randn({bf16_rows, 32}).to(torch::kBFloat16), w.to(torch::kBFloat16)));
    CHECK_FALSE(few_row_linear_applies(torch::randn({bf16_rows + 1, 32}).to(torch::kBFloat16), w.to(torch::kBFloat16)));
    CHECK_FALSE(few_row_linear_applies(x.to(torch::kBFloat16), w));                         // mixed dtypes
    CHECK_FALSE(few_row_linear_applies(x.to(torch::kDouble), w.to(torch::kDouble)));        // no kernel
    CHECK_FALSE(few_row_linear_applies(x, w.t().contiguous().t()));                         // strided weight
    CHECK_FALSE(few_row_linear_applies(torch::randn({1, 31}), w));                          // wrong K
    CHECK_THROWS_AS(few_row_linear(torch::randn({1, 31}), w, torch::Tensor()), vlm::Error);
  }
  CHECK_FALSE(few_row_linear_applies(x, w));  // grad mode on: autograd needs torch::linear
}

TEST_CASE("Projection gives the same decode-step output through the kernel as through linear") {
  torch::manual_seed(5);
  Projection p(64, 40, true);
  p->weight.copy_(torch::randn({40, 64}));
  p->bias.copy_(torch::randn({40}));
  auto x = torch::randn({2, 1, 64});
  torch::Tensor through_linear;
  {
    torch::NoGradGuard no_grad;
    through_linear = torch::linear(x, p->weight, p->bias);
    auto through_kernel = p(x);
    CHECK(torch::allclose(through_kernel, through_linear, 1e-5, 1e-5));
  }
  // With grad mode on the projection keeps linear (autograd), and the numbers agree.
  CHECK(torch::allclose(p(x).detach(), through_linear, 1e-5, 1e-5));
}
